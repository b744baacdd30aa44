//! `FaultyDriver<D>`: any driver, with faults on demand.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::sync::{Arc, Mutex, OnceLock, TryLockError, Weak};

use super::decision::{Decision, Injected, closed_by_owner};
use super::faults::{Faults, Kill, Shared};
use crate::Op;
use crate::lock::lock;
use crate::{Clock, ConnId, Connection, Dialect, Driver, Error, Journal, Result, Row, RowRef, Value};

/// Wraps a [`Driver`] so that a test can make its operations fail.
///
/// With no rule armed and no server-wide fault, a call consults no rule:
/// it reaches the inner driver after a few atomic operations (and, for an
/// operation of a connection, that connection's own uncontended lock).
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use dbfault::{Connection, Driver, FaultyDriver, Op, Rule, SqliteDriver};
///
/// let driver = FaultyDriver::new(SqliteDriver::memory("faulty-doc").unwrap());
/// let faults = driver.faults();
/// let guard = faults.arm(Rule::on(Op::Commit).nth(1).disconnect()).unwrap();
///
/// let mut conn = driver.connect().unwrap();
/// conn.begin().unwrap();
/// let err = conn.commit().unwrap_err();
/// assert!(err.is_disconnect() && err.is_injected());
/// assert_eq!(guard.hits(), 1);
/// # }
/// ```
pub struct FaultyDriver<D> {
    inner: D,
    shared: Arc<Shared>,
    /// The inner driver's dialect, fetched on first use (through whichever
    /// of `Driver` and `AsyncDriver` the inner driver implements).
    dialect: OnceLock<Arc<dyn Dialect>>,
}

impl<D> FaultyDriver<D> {
    /// Wraps `inner` (a [`Driver`], or with feature `tokio` an
    /// `AsyncDriver`) with no rule armed, seed 0, the system clock and no
    /// journal.
    pub fn new(inner: D) -> Self {
        FaultyDriver {
            inner,
            shared: Arc::new(Shared::new()),
            dialect: OnceLock::new(),
        }
    }

    /// Journals to `journal`, and waits on its clock: see
    /// [`Faults::with_journal`](crate::Faults::with_journal).
    #[must_use]
    pub fn with_journal(self, journal: Journal) -> Self {
        self.shared.set_journal(journal);
        self
    }

    /// Waits on `clock`: see [`Faults::with_clock`](crate::Faults::with_clock).
    #[must_use]
    pub fn with_clock(self, clock: Clock) -> Self {
        self.shared.set_clock(clock);
        self
    }

    /// Server-side faults (`kill`, `restart`, `outage`) terminate
    /// connections through `server`, the real one, instead of in the
    /// fault layer.
    #[cfg(feature = "postgres")]
    pub(crate) fn with_server(self, server: Arc<dyn super::Server>) -> Self {
        self.shared.set_server(server);
        self
    }

    /// The handle to arm rules and cause server-wide faults.
    pub fn faults(&self) -> Faults {
        Faults {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The wrapped driver.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    #[cfg(feature = "tokio")]
    pub(super) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The inner dialect, fetched once with `fetch`.
    pub(super) fn dialect_with(&self, fetch: impl FnOnce(&D) -> Arc<dyn Dialect>) -> &Arc<dyn Dialect> {
        self.dialect.get_or_init(|| fetch(&self.inner))
    }
}

impl<D: fmt::Debug> fmt::Debug for FaultyDriver<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyDriver")
            .field("inner", &self.inner)
            .field("faults", &self.faults())
            .finish()
    }
}

impl<D> FaultyDriver<D> {
    /// What a connect must do before it reaches the inner driver: `Err`
    /// refuses it (an outage, or a rule that fails it); otherwise the
    /// decision of the rule that fired, if any, to carry out.
    pub(super) fn connect_decision(&self, errors: Injected<'_>) -> Result<Option<Decision>> {
        if self.shared.in_outage() {
            return Err(errors.server_down());
        }
        match self.shared.decision(Op::Connect, "", None, errors.dialect()) {
            Some(Decision::Fail(err) | Decision::Kill(err)) => Err(err),
            other => Ok(other),
        }
    }

    /// After a rule held a connect: an outage that began meanwhile refuses
    /// it.
    pub(super) fn still_up(&self, errors: Injected<'_>) -> Result<()> {
        if self.shared.in_outage() {
            Err(errors.server_down())
        } else {
            Ok(())
        }
    }

    /// Wraps the connection `inner` (id `id`) the inner driver opened:
    /// closed again with `close` and refused if the connect's rule said
    /// apply-then-kill, or if an outage began while the inner connect was
    /// under way.
    pub(super) fn wrap<C: Send + 'static>(
        &self,
        id: ConnId,
        mut inner: C,
        close: fn(&mut C),
        apply_then_kill: bool,
        dialect: &Arc<dyn Dialect>,
    ) -> Result<FaultyConnection<C>> {
        let errors = Injected::new(&**dialect);
        if apply_then_kill {
            close(&mut inner);
            return Err(errors.dropped_after_connect(id));
        }
        let conn = FaultyConnection::register(id, inner, close, &self.shared, dialect);
        // An outage that began while the inner connect was under way could
        // not kill this connection, unregistered then. `outage` sets its
        // flag before it drains the registry, so either it killed this
        // connection or the flag is seen here.
        if self.shared.in_outage() {
            conn.kill_now();
            return Err(errors.server_down());
        }
        Ok(conn)
    }
}

impl<D: Driver> Driver for FaultyDriver<D> {
    type Connection = FaultyConnection<D::Connection>;

    fn connect(&self) -> Result<Self::Connection> {
        let dialect = self.dialect_with(D::dialect);
        let errors = Injected::new(&**dialect);
        let mut apply_then_kill = false;
        if let Some(decision) = self.connect_decision(errors)? {
            match decision {
                Decision::Wait(d) => self.shared.sleep(d),
                Decision::Hang(rule) => self.shared.wait_disarmed(rule, None),
                Decision::ApplyThenKill(_) => apply_then_kill = true,
                Decision::Fail(err) | Decision::Kill(err) => return Err(err),
            }
            self.still_up(errors)?;
        }
        let inner = self.inner.connect()?;
        let close: fn(&mut D::Connection) = |conn| {
            let _ = conn.close();
        };
        self.wrap(inner.id(), inner, close, apply_then_kill, dialect)
    }

    fn dialect(&self) -> Arc<dyn Dialect> {
        Arc::clone(self.dialect_with(D::dialect))
    }
}

/// A connection of a [`FaultyDriver`].
pub struct FaultyConnection<C> {
    pub(super) id: ConnId,
    /// Closed by its owner (not killed).
    pub(super) closed: bool,
    pub(super) cell: Arc<Cell<C>>,
    pub(super) shared: Arc<Shared>,
    pub(super) dialect: Arc<dyn Dialect>,
}

/// The part of a connection the server side can reach: its death flag and
/// the inner connection.
pub(super) struct Cell<C> {
    pub(super) dead: AtomicBool,
    pub(super) inner: Mutex<Option<C>>,
    /// How a killed connection is closed: the sync `close` for a sync
    /// connection (its error ignored); nothing but the drop for an async
    /// one, which cannot be awaited here.
    pub(super) close: fn(&mut C),
}

impl<C> Cell<C> {
    /// Closes the inner connection, if still there, ignoring the error.
    fn close_inner(&self, inner: &mut Option<C>) {
        if let Some(mut conn) = inner.take() {
            (self.close)(&mut conn);
        }
    }
}

impl<C: Send> Kill for Cell<C> {
    fn dead(&self) -> &AtomicBool {
        &self.dead
    }

    fn kill(&self) {
        self.dead.store(true, Ordering::Release);
        // An operation in flight holds the lock (or, in async code, the
        // connection itself); it closes the inner connection when it sees
        // the flag (`FaultyConnection::call`). The fence pairs with the one
        // there: either that call sees the flag once its operation
        // returned, or this `try_lock` finds the lock free.
        fence(Ordering::SeqCst);
        match self.inner.try_lock() {
            Ok(mut inner) => self.close_inner(&mut inner),
            // A panic in an operation (a driver's, or a `query_row_with`
            // callback run under the lock) does not keep it from closing.
            Err(TryLockError::Poisoned(poisoned)) => self.close_inner(&mut poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => {}
        }
    }
}

impl<C> fmt::Debug for FaultyConnection<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyConnection")
            .field("id", &self.id)
            .field("dead", &self.cell.dead.load(Ordering::Relaxed))
            .finish()
    }
}

impl<C: Send + 'static> FaultyConnection<C> {
    pub(super) fn register(
        id: ConnId,
        inner: C,
        close: fn(&mut C),
        shared: &Arc<Shared>,
        dialect: &Arc<dyn Dialect>,
    ) -> Self {
        let cell = Arc::new(Cell {
            close,
            dead: AtomicBool::new(false),
            inner: Mutex::new(Some(inner)),
        });
        let weak: Weak<dyn Kill> = Arc::downgrade(&(Arc::clone(&cell) as Arc<dyn Kill>));
        shared.register(id, weak);
        FaultyConnection {
            id,
            closed: false,
            cell,
            shared: Arc::clone(shared),
            dialect: Arc::clone(dialect),
        }
    }

    /// Whether the fault layer killed this connection (a connection its
    /// owner closed is not dead).
    pub fn is_dead(&self) -> bool {
        self.cell.dead.load(Ordering::Acquire)
    }

    pub(super) fn dead_error(&self, op: Op) -> Error {
        Injected::new(&*self.dialect).killed(op, self.id)
    }

    /// Kills the connection from its own thread: the inner connection is
    /// closed now, so the server rolls back its open transaction.
    pub(super) fn kill_now(&self) {
        self.shared.unregister(self.id);
        self.cell.kill();
    }

    /// Whether the connection is broken: closed or killed, else as the
    /// inner connection, asked with `broken`, says. Never blocks: while an
    /// operation holds the inner connection, only the flags answer.
    pub(super) fn peek_is_broken(&self, broken: fn(&C) -> bool) -> bool {
        self.closed
            || self.is_dead()
            || self
                .cell
                .inner
                .try_lock()
                .is_ok_and(|inner| inner.as_ref().is_some_and(broken))
    }

    /// The end of `close`, once its call through the rules is over: the
    /// connection is closed and no longer live. Returns the inner
    /// connection when it is still there and the call did not `reach` it
    /// (a rule failed the close first), for the caller to close it once.
    pub(super) fn mark_closed(&mut self, reached: bool) -> Option<C> {
        self.closed = true;
        self.shared.unregister(self.id);
        lock(&self.cell.inner).take().filter(|_| !reached)
    }

    /// Whether the inner connection, asked with `open`, is in a
    /// transaction; a closed or killed connection never is (the server
    /// rolled it back when the connection died).
    pub(super) fn peek_in_transaction(&self, open: fn(&C) -> bool) -> bool {
        if self.closed || self.is_dead() {
            return false;
        }
        let open = lock(&self.cell.inner).as_ref().is_some_and(open);
        self.after_peek(open)
    }

    /// After reading the inner connection's local state under its lock:
    /// a kill that found the lock taken is seen here (the fence pairs with
    /// the one in `Cell::kill`), and the inner connection is closed now.
    pub(super) fn after_peek(&self, answer: bool) -> bool {
        fence(Ordering::SeqCst);
        if self.is_dead() {
            self.cell.close_inner(&mut lock(&self.cell.inner));
            return false;
        }
        answer
    }

    /// What `op` must do before it reaches the inner connection: `Err`
    /// when the connection is closed or dead (a dead one's inner
    /// connection is closed now, if it was not yet); otherwise the decision
    /// of the rule that fired on it, if any.
    #[inline]
    pub(super) fn decide(&self, op: Op, sql: &str) -> Result<Option<Decision>> {
        if self.closed {
            return Err(closed_by_owner(op, self.id));
        }
        if self.is_dead() {
            // Killed while nothing held the lock, or while only a peek did:
            // make sure the inner connection is closed.
            self.cell.close_inner(&mut lock(&self.cell.inner));
            return Err(self.dead_error(op));
        }
        Ok(self.shared.decision(op, sql, Some(self.id), &*self.dialect))
    }
}

impl<C: Connection> FaultyConnection<C> {
    /// Runs `f` on the inner connection unless it is dead.
    ///
    /// If the connection is killed while `f` is in flight, the inner
    /// connection is closed when `f` returns (so the server rolls back the
    /// open transaction now, not when the connection is dropped) and the
    /// caller sees a disconnect, whatever `f` returned.
    fn call<T>(&self, op: Op, f: impl FnOnce(&mut C) -> Result<T>) -> Result<T> {
        let result = {
            let mut inner = lock(&self.cell.inner);
            if self.is_dead() {
                // Killed while another call held the lock: close now.
                self.cell.close_inner(&mut inner);
                return Err(self.dead_error(op));
            }
            match inner.as_mut() {
                Some(conn) => f(conn),
                None => return Err(self.dead_error(op)),
            }
        };
        // Pairs with the fence in `Cell::kill`: a kill that found the lock
        // taken is seen here.
        fence(Ordering::SeqCst);
        if self.is_dead() {
            self.cell.close_inner(&mut lock(&self.cell.inner));
            return Err(self.dead_error(op));
        }
        result
    }

    /// One operation through the fault layer.
    fn run<T>(&self, op: Op, sql: &str, f: impl FnOnce(&mut C) -> Result<T>) -> Result<T> {
        self.run_or_apply(op, sql, f, None::<fn(&mut C) -> Result<()>>)
    }

    /// [`run`](FaultyConnection::run), where a disconnect after apply runs
    /// `apply` rather than `f` when given: the server does the work, but
    /// nothing of its answer reaches the caller (a `query_row_with`
    /// callback is not called).
    fn run_or_apply<T>(
        &self,
        op: Op,
        sql: &str,
        f: impl FnOnce(&mut C) -> Result<T>,
        apply: Option<impl FnOnce(&mut C) -> Result<()>>,
    ) -> Result<T> {
        let Some(decision) = self.decide(op, sql)? else {
            return self.call(op, f);
        };
        match decision {
            Decision::Fail(err) => Err(err),
            Decision::Kill(err) => {
                self.kill_now();
                Err(err)
            }
            Decision::Wait(d) => {
                self.shared.sleep(d);
                self.call(op, f)
            }
            Decision::Hang(rule) => {
                // Until disarmed, or until the connection is killed: then
                // `call` fails with the disconnect.
                self.shared.wait_disarmed(rule, Some(&self.cell.dead));
                self.call(op, f)
            }
            Decision::ApplyThenKill(err) => {
                let _applied = match apply {
                    Some(apply) => self.call(op, apply),
                    None => self.call(op, f).map(drop),
                };
                self.kill_now();
                Err(err)
            }
        }
    }
}

impl<C: Connection> Connection for FaultyConnection<C> {
    fn id(&self) -> ConnId {
        self.id
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        self.run(Op::Execute, sql, |c| c.execute(sql, params))
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        self.run(Op::Query, sql, |c| c.query(sql, params))
    }

    /// A query as far as rules go (`Op::Query`).
    fn query_row(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        self.run(Op::Query, sql, |c| c.query_row(sql, params))
    }

    /// The inner connection's `query_row_with`, as an [`Op::Query`]: rules
    /// fire as for [`query`](Connection::query). After a
    /// `disconnect_after_apply` the query ran, but `f` is not called: its
    /// answer was lost with the connection.
    fn query_row_with(&mut self, sql: &str, params: &[Value], f: &mut dyn FnMut(RowRef<'_>)) -> Result<bool> {
        self.run_or_apply(
            Op::Query,
            sql,
            |c| c.query_row_with(sql, params, f),
            Some(|c: &mut C| c.query_row_with(sql, params, &mut |_| {}).map(drop)),
        )
    }

    fn begin(&mut self) -> Result<()> {
        self.run(Op::Begin, Op::Begin.implied_sql(), C::begin)
    }

    fn commit(&mut self) -> Result<()> {
        self.run(Op::Commit, Op::Commit.implied_sql(), C::commit)
    }

    fn rollback(&mut self) -> Result<()> {
        self.run(Op::Rollback, Op::Rollback.implied_sql(), C::rollback)
    }

    fn ping(&mut self) -> Result<()> {
        let dialect = Arc::clone(&self.dialect);
        self.run(Op::Ping, dialect.ping_sql(), C::ping)
    }

    faulty_conn_items!(peeks);

    /// Closes the inner connection, whatever a `close` rule does to the
    /// result. Closing a killed connection succeeds.
    fn close(&mut self) -> Result<()> {
        faulty_conn_items!(close(
            self,
            |reached| self.run(Op::Close, "", |c| {
                reached = true;
                c.close()
            }),
            |conn| conn.close()
        ))
    }
}

impl<C> Drop for FaultyConnection<C> {
    fn drop(&mut self) {
        self.shared.unregister(self.id);
    }
}
