//! [`FaultyManager`] as a deadpool `managed::Manager`.
//!
//! deadpool has no `has_broken`: a connection the fault layer killed
//! fails its recycle instead, so the pool drops it at the next checkout.

use std::fmt;

use deadpool::managed::{Manager, Metrics, RecycleError, RecycleResult};

use super::{Faulted, FaultyManager, ManagerError};

impl<M> Manager for FaultyManager<M>
where
    M: Manager,
    M::Type: 'static,
    M::Error: fmt::Display,
{
    type Type = Faulted<M::Type>;
    type Error = ManagerError<M::Error>;

    async fn create(&self) -> Result<Self::Type, Self::Error> {
        self.connect_async(self.inner.create()).await
    }

    /// The validation ([`Op::Ping`](crate::Op::Ping)): fails for a
    /// connection the fault layer killed, or when a rule says so; then
    /// the inner manager's recycle.
    async fn recycle(&self, conn: &mut Self::Type, metrics: &Metrics) -> RecycleResult<Self::Error> {
        let cut = self
            .before_ping_async(&conn.life)
            .await
            .map_err(|err| RecycleError::Backend(ManagerError::Fault(err)))?;
        match self.inner.recycle(&mut conn.conn, metrics).await {
            Ok(()) => self.ping_done(conn, Ok(()), cut).map_err(RecycleError::Backend),
            Err(RecycleError::Backend(err)) => {
                self.ping_done(conn, Err(err), cut).map_err(RecycleError::Backend)
            }
            Err(RecycleError::Message(text)) => {
                // Journaled as a failed validation; passed on as it is.
                let _ = self.ping_done(conn, Err(text.clone()), cut);
                Err(RecycleError::Message(text))
            }
        }
    }

    fn detach(&self, conn: &mut Self::Type) {
        self.inner.detach(&mut conn.conn);
    }
}
