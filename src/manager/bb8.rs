//! [`FaultyManager`] as a bb8 `ManageConnection`.

use std::fmt;

use super::{Faulted, FaultyManager, ManagerError};

impl<M> bb8::ManageConnection for FaultyManager<M>
where
    M: bb8::ManageConnection,
    M::Error: fmt::Display,
{
    type Connection = Faulted<M::Connection>;
    type Error = ManagerError<M::Error>;

    async fn connect(&self) -> Result<Self::Connection, Self::Error> {
        self.connect_async(self.inner.connect()).await
    }

    async fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        let cut = self.before_ping_async(&conn.life).await?;
        let result = self.inner.is_valid(&mut conn.conn).await;
        self.ping_done(conn, result, cut)
    }

    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        let inner = self.inner.has_broken(&mut conn.conn);
        self.broken(conn, inner)
    }
}
