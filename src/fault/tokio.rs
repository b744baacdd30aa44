//! The fault layer over async drivers (feature `tokio`): `FaultyDriver<D>`
//! is an [`AsyncDriver`] whenever `D` is. Delays and hangs wait on tokio's
//! clock, so a test with a paused clock runs them instantly and exactly.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::faults::{FaultGuard, Fired, Shared};
use super::rule::Action;
use super::sync::{Cell, FaultyConnection, FaultyDriver, injected_disconnect, injected_error};
use crate::Op;
use crate::lock::lock;
use crate::{AsyncConnection, AsyncDriver, ConnId, Dialect, Error, Result, Row, Value};

impl Shared {
    /// Waits `d` on the fault layer's clock without blocking the thread.
    pub(crate) async fn sleep_async(&self, d: Duration) {
        let clock = self.clock();
        if clock.is_manual() {
            clock.advance(d);
        } else {
            tokio::time::sleep(d).await;
        }
    }

    /// Waits until `rule` is disarmed, or the connection behind `dead`
    /// is killed.
    pub(crate) async fn wait_disarmed_async(&self, rule: u64, dead: Option<&AtomicBool>) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.is_armed(rule) || dead.is_some_and(|d| d.load(Ordering::Acquire)) {
                return;
            }
            notified.await;
        }
    }
}

impl FaultGuard {
    /// Waits (on tokio's clock) until the rule has fired `n` times or
    /// `timeout` passed; returns whether it reached `n`.
    pub async fn wait_for_hits_async(&self, n: u64, timeout: Duration) -> bool {
        let shared = Arc::clone(self.shared());
        let reached = async {
            loop {
                let notified = shared.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.hits() >= n {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, reached).await.is_ok()
    }
}

/// What the fault layer does around one call, once any delay or hang is
/// over.
enum Then {
    Proceed,
    ApplyThenKill,
}

impl<D: AsyncDriver> AsyncDriver for FaultyDriver<D> {
    type Connection = FaultyConnection<D::Connection>;

    async fn connect(&self) -> Result<Self::Connection> {
        let shared = self.shared();
        let dialect = self.dialect_with(D::dialect);
        if shared.in_outage() {
            return Err(injected_disconnect(
                &**dialect,
                "connection refused: server is down",
            ));
        }
        let fired = if shared.any_armed(Op::Connect) {
            shared.decide(Op::Connect, "", None)
        } else {
            None
        };
        let then = match fired {
            None => Then::Proceed,
            Some(fired) => {
                before(shared, None, fired, || {
                    injected_disconnect(&**dialect, "connection refused")
                })
                .await?
            }
        };
        // An outage that began while a rule held this connect refuses it.
        if shared.in_outage() {
            return Err(injected_disconnect(
                &**dialect,
                "connection refused: server is down",
            ));
        }
        let inner = self.inner().connect().await?;
        if let Then::ApplyThenKill = then {
            let id = inner.id();
            drop(inner);
            return Err(injected_disconnect(
                &**dialect,
                format_args!("connection {id} dropped right after connect"),
            ));
        }
        let conn = FaultyConnection::register(inner.id(), inner, |_| {}, shared, dialect);
        // An outage that began while the inner connect was under way could
        // not kill this connection, unregistered then (see the sync
        // connect): refuse it now.
        if shared.in_outage() {
            conn.kill_now();
            return Err(injected_disconnect(
                &**dialect,
                "connection refused: server is down",
            ));
        }
        Ok(conn)
    }

    fn dialect(&self) -> Arc<dyn Dialect> {
        Arc::clone(self.dialect_with(D::dialect))
    }
}

/// Applies a fired rule before the call: fails it, or waits out a delay
/// or a hang, or tells the call to kill the connection afterwards.
async fn before(
    shared: &Shared,
    dead: Option<&AtomicBool>,
    fired: Fired,
    disconnect: impl FnOnce() -> Error,
) -> Result<Then> {
    if let Some(err) = injected_error(&fired.action) {
        return Err(err);
    }
    match fired.action {
        Action::Disconnect => Err(disconnect()),
        Action::DisconnectAfterApply => Ok(Then::ApplyThenKill),
        Action::Delay(d) => {
            shared.sleep_async(d).await;
            Ok(Then::Proceed)
        }
        Action::Hang => {
            shared.wait_disarmed_async(fired.rule, dead).await;
            Ok(Then::Proceed)
        }
        Action::Error { .. } => unreachable!("handled above"),
    }
}

/// The inner connection, taken out of its cell for the length of one async
/// call and put back when dropped, even if the call's future was dropped
/// (unless the connection was killed meanwhile: then it is dropped, which
/// closes it).
struct Taken<'a, C> {
    cell: &'a Cell<C>,
    conn: Option<C>,
}

impl<C> Drop for Taken<'_, C> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut inner = lock(&self.cell.inner);
            if self.cell.dead.load(Ordering::Acquire) {
                drop(inner);
                drop(conn);
            } else {
                *inner = Some(conn);
            }
        }
    }
}

impl<C: AsyncConnection> FaultyConnection<C> {
    fn take(&self, op: Op) -> Result<Taken<'_, C>> {
        let mut inner = lock(&self.cell.inner);
        if self.cell.dead.load(Ordering::Acquire) {
            drop(inner.take());
            return Err(self.dead_error(op));
        }
        match inner.take() {
            Some(conn) => Ok(Taken {
                cell: &self.cell,
                conn: Some(conn),
            }),
            None => Err(self.dead_error(op)),
        }
    }

    /// Checks the connection's state and the rules before a call.
    async fn begin_call(&self, op: Op, sql: &str) -> Result<Then> {
        if self.closed {
            return Err(Error::closed(format!(
                "{op} on {}: the connection is closed",
                self.id
            )));
        }
        if self.is_dead() {
            return Err(self.dead_error(op));
        }
        match self.fired(op, sql) {
            None => Ok(Then::Proceed),
            Some(fired) => {
                let id = self.id;
                let dialect = Arc::clone(&self.dialect);
                let result = before(&self.shared, Some(&self.cell.dead), fired, || {
                    injected_disconnect(
                        &*dialect,
                        format_args!("{op} on {id}: server closed the connection"),
                    )
                })
                .await;
                if result
                    .as_ref()
                    .err()
                    .is_some_and(|e| e.kind() == crate::ErrorKind::Closed || e.is_disconnect())
                {
                    self.kill_now();
                }
                result
            }
        }
    }

    /// Ends a call: kills the connection if the rule said so; a connection
    /// killed while the call was in the inner driver fails the call with a
    /// disconnect, as in sync code (`Taken` already dropped, and so closed,
    /// its inner connection).
    fn end_call<T>(&self, op: Op, then: Then, result: Result<T>) -> Result<T> {
        match then {
            Then::Proceed if self.is_dead() => Err(self.dead_error(op)),
            Then::Proceed => result,
            Then::ApplyThenKill => {
                self.kill_now();
                Err(injected_disconnect(
                    &*self.dialect,
                    format_args!("{op} on {}: connection lost after the server applied it", self.id),
                ))
            }
        }
    }
}

/// One async call through the fault layer.
macro_rules! faulty_call {
    ($self:ident, $op:expr, $sql:expr, |$conn:ident| $call:expr) => {{
        let then = $self.begin_call($op, $sql).await?;
        let result = {
            let mut taken = $self.take($op)?;
            let $conn = taken.conn.as_mut().expect("taken until dropped");
            $call.await
        };
        $self.end_call($op, then, result)
    }};
}

impl<C: AsyncConnection> AsyncConnection for FaultyConnection<C> {
    fn id(&self) -> ConnId {
        self.id
    }

    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        faulty_call!(self, Op::Execute, sql, |c| c.execute(sql, params))
    }

    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        faulty_call!(self, Op::Query, sql, |c| c.query(sql, params))
    }

    async fn query_row(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        faulty_call!(self, Op::Query, sql, |c| c.query_row(sql, params))
    }

    async fn begin(&mut self) -> Result<()> {
        faulty_call!(self, Op::Begin, Op::Begin.implied_sql(), |c| c.begin())
    }

    async fn commit(&mut self) -> Result<()> {
        faulty_call!(self, Op::Commit, Op::Commit.implied_sql(), |c| c.commit())
    }

    async fn rollback(&mut self) -> Result<()> {
        faulty_call!(self, Op::Rollback, Op::Rollback.implied_sql(), |c| c.rollback())
    }

    async fn ping(&mut self) -> Result<()> {
        let dialect = Arc::clone(&self.dialect);
        faulty_call!(self, Op::Ping, dialect.ping_sql(), |c| c.ping())
    }

    fn in_transaction(&self) -> bool {
        if self.closed || self.is_dead() {
            return false;
        }
        let open = lock(&self.cell.inner).as_ref().is_some_and(C::in_transaction);
        self.after_peek(open)
    }

    /// Closed, or killed; else what the inner connection says. Never
    /// blocks.
    fn is_broken(&self) -> bool {
        self.closed
            || self.is_dead()
            || self
                .cell
                .inner
                .try_lock()
                .is_ok_and(|inner| inner.as_ref().is_some_and(C::is_broken))
    }

    async fn close(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        let mut reached = false;
        let result = if self.is_dead() {
            Ok(())
        } else {
            // In a block of its own: a rule that fails the close must not
            // skip the bookkeeping below.
            let reached = &mut reached;
            let this = &*self;
            async move {
                faulty_call!(this, Op::Close, "", |c| {
                    *reached = true;
                    c.close()
                })
            }
            .await
        };
        self.closed = true;
        self.shared.unregister(self.id);
        // Close the inner connection once: here only if the call above did
        // not reach it (a rule failed the close first).
        let conn = lock(&self.cell.inner).take();
        if let Some(mut conn) = conn {
            if !reached {
                let _ = conn.close().await;
            }
        }
        result
    }
}
