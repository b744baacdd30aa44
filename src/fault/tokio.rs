//! The fault layer over async drivers (feature `tokio`): `FaultyDriver<D>`
//! is an [`AsyncDriver`] whenever `D` is. Delays and hangs wait on tokio's
//! clock, so a test with a paused clock runs them instantly and exactly.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::decision::{Decision, Injected};
use super::faults::{FaultGuard, Shared};
use super::sync::{Cell, FaultyConnection, FaultyDriver};
use crate::Op;
use crate::guard::Guard;
use crate::lock::lock;
use crate::{AsyncConnection, AsyncDriver, ConnId, Dialect, Error, Result, Row, Value};

impl Shared {
    /// Waits `d` on the fault layer's clock without blocking the thread.
    pub(crate) async fn sleep_async(&self, d: Duration) {
        if !self.advance_manual(d) {
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

/// What the fault layer does after one call, once any delay or hang is
/// over.
enum Then {
    Proceed,
    /// Kill the connection and fail with this error, whatever the inner
    /// connection answered.
    ApplyThenKill(Error),
}

impl<D: AsyncDriver> AsyncDriver for FaultyDriver<D> {
    type Connection = FaultyConnection<D::Connection>;

    async fn connect(&self) -> Result<Self::Connection> {
        let shared = self.shared();
        let dialect = self.dialect_with(D::dialect);
        let errors = Injected::new(&**dialect);
        let mut apply_then_kill = false;
        if let Some(decision) = self.connect_decision(errors)? {
            match decision {
                Decision::Wait(d) => shared.sleep_async(d).await,
                Decision::Hang(rule) => shared.wait_disarmed_async(rule, None).await,
                Decision::ApplyThenKill(_) => apply_then_kill = true,
                Decision::Fail(err) | Decision::Kill(err) => return Err(err),
            }
            self.still_up(errors)?;
        }
        let inner = self.inner().connect().await?;
        // An async connection cannot be closed here (no await in `kill`):
        // dropping it closes it.
        self.wrap(inner.id(), inner, |_| {}, apply_then_kill, dialect)
    }

    fn dialect(&self) -> Arc<dyn Dialect> {
        Arc::clone(self.dialect_with(D::dialect))
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

    /// Checks the connection's state and the rules before a call, and
    /// carries out what must happen before it.
    async fn begin_call(&self, op: Op, sql: &str) -> Result<Then> {
        let Some(decision) = self.decide(op, sql)? else {
            return Ok(Then::Proceed);
        };
        match decision {
            Decision::Fail(err) => Err(err),
            Decision::Kill(err) => {
                self.kill_now();
                Err(err)
            }
            Decision::Wait(d) => {
                self.shared.sleep_async(d).await;
                Ok(Then::Proceed)
            }
            Decision::Hang(rule) => {
                self.shared.wait_disarmed_async(rule, Some(&self.cell.dead)).await;
                Ok(Then::Proceed)
            }
            Decision::ApplyThenKill(err) => Ok(Then::ApplyThenKill(err)),
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
            Then::ApplyThenKill(err) => {
                self.kill_now();
                Err(err)
            }
        }
    }
}

/// One async call through the fault layer.
///
/// A fired `disconnect_after_apply` kills the connection even if the
/// caller drops the call's future before it ends: the rule fired (it was
/// counted and journaled), and the server does not care that the client
/// gave up.
macro_rules! faulty_call {
    ($self:ident, $op:expr, $sql:expr, |$conn:ident| $call:expr) => {{
        let then = $self.begin_call($op, $sql).await?;
        // Declared before the call's `Taken`, so it drops after it: the
        // inner connection is back in its cell when the kill closes it.
        let kill = Guard::new(matches!(then, Then::ApplyThenKill(_)), |kill| {
            if kill {
                $self.kill_now();
            }
        });
        let result = {
            let mut taken = $self.take($op)?;
            let $conn = taken.conn.as_mut().expect("taken until dropped");
            $call.await
        };
        kill.disarm();
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

    /// The inner connection's `try_rollback_now`, when no rule could touch
    /// the rollback: with a rollback rule armed the answer is `None`, so
    /// the caller's later [`rollback`](AsyncConnection::rollback) goes
    /// through the rules. A closed or dead connection answers `None` too:
    /// it has no transaction to roll back.
    fn try_rollback_now(&mut self) -> Option<Result<()>> {
        if self.closed || self.is_dead() || self.shared.any_armed(Op::Rollback) {
            return None;
        }
        let result = {
            let mut inner = self.cell.inner.try_lock().ok()?;
            inner.as_mut()?.try_rollback_now()?
        };
        // Killed while it ran: the server rolled back with the connection.
        Some(self.end_call(Op::Rollback, Then::Proceed, result))
    }

    async fn ping(&mut self) -> Result<()> {
        let dialect = Arc::clone(&self.dialect);
        faulty_call!(self, Op::Ping, dialect.ping_sql(), |c| c.ping())
    }

    faulty_conn_items!(peeks);

    async fn close(&mut self) -> Result<()> {
        faulty_conn_items!(close(
            self,
            // In a block of its own: a rule that fails the close must not
            // skip the bookkeeping after it.
            |reached| {
                let reached = &mut reached;
                let this = &*self;
                async move {
                    faulty_call!(this, Op::Close, "", |c| {
                        *reached = true;
                        c.close()
                    })
                }
                .await
            },
            |conn| conn.close().await
        ))
    }
}
