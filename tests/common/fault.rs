//! The fault layer's bodies: one [`Env`] per test (a fault layer over a
//! fresh [`Backend`], on a manual clock, journaled), the [`check!`] macro
//! that runs one generic body against each [`Kind`] (the sync fault layer
//! over SQLite and the mock, the async one over their async forms), and
//! the assertions every body shares.
//!
//! A body is generic over a [`Layer`]: a sync `Driver` (the sync
//! `FaultyDriver<D>`, or the async one behind the [`Synced`] adapter, which
//! blocks on each call) plus what the test inspects of the layer. Where the
//! async layer legitimately behaves otherwise, the harness says so in one
//! place, branching on [`Layer::ASYNC`].
//!
//! [`Kind`]: super::Kind

use std::fmt;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use dbfault::{
    AsyncConnection, AsyncDriver, AsyncMockDriver, Blocking, Clock, Connection, Dialect, Driver, Error,
    ErrorClass, ErrorKind, Faults, FaultyConnection, FaultyDriver, Journal, MockServer, Op, SqliteDriver,
    Value,
};

use super::{Backend, Synced, SyncedConnection};

/// A fault layer as the bodies see it: a sync [`Driver`] whose connections
/// the test uses, plus what the test inspects of the layer.
pub trait Layer: Driver<Connection: LayerConnection> {
    /// The driver the fault layer wraps.
    type Inner;
    /// Whether this is the async fault layer (behind [`Synced`]).
    const ASYNC: bool;
    /// The handle to arm rules and cause server-wide faults.
    fn faults(&self) -> Faults;
    /// The driver the fault layer wraps.
    fn inner(&self) -> &Self::Inner;
    /// The wrapped driver's dialect.
    fn inner_dialect(&self) -> Arc<dyn Dialect>;
}

/// A connection of a [`Layer`].
pub trait LayerConnection: Connection + fmt::Debug {
    /// Whether the fault layer killed this connection.
    fn is_dead(&self) -> bool;
}

impl<D: Driver> Layer for FaultyDriver<D> {
    type Inner = D;
    const ASYNC: bool = false;
    fn faults(&self) -> Faults {
        FaultyDriver::faults(self)
    }
    fn inner(&self) -> &D {
        FaultyDriver::inner(self)
    }
    fn inner_dialect(&self) -> Arc<dyn Dialect> {
        Driver::dialect(FaultyDriver::inner(self))
    }
}

impl<C: Connection> LayerConnection for FaultyConnection<C> {
    fn is_dead(&self) -> bool {
        FaultyConnection::is_dead(self)
    }
}

impl<A: AsyncDriver> Layer for Synced<FaultyDriver<A>> {
    type Inner = A;
    const ASYNC: bool = true;
    fn faults(&self) -> Faults {
        self.inner.faults()
    }
    fn inner(&self) -> &A {
        self.inner.inner()
    }
    fn inner_dialect(&self) -> Arc<dyn Dialect> {
        AsyncDriver::dialect(self.inner.inner())
    }
}

impl<C: AsyncConnection> LayerConnection for SyncedConnection<FaultyConnection<C>> {
    fn is_dead(&self) -> bool {
        self.inner.is_dead()
    }
}

/// The connection type of a [`Layer`].
pub type Conn<L> = <L as Driver>::Connection;

/// Runs a generic test body once against the fault layer and driver of
/// `kind`.
///
/// `check!(kind, |env| body(env, ...))` builds a fresh [`Env`] over a fresh
/// backend ([`with_driver!`]): the sync fault layer over a sync kind, the
/// async one over an async kind, behind [`Synced`]; and evaluates the body
/// with it. The body is a generic `fn body<L: Layer>(env: Env<L>, ...)`,
/// instantiated once per kind. `check!(kind, wrap, |env| ...)` first wraps
/// the inner driver (sync or async) with `wrap`, a test-only driver adapter
/// generic enough for all four.
///
/// [`with_driver!`]: crate::with_driver
#[macro_export]
macro_rules! check {
    ($kind:expr, |$env:ident| $body:expr) => {
        $crate::check!($kind, ::std::convert::identity, |$env| $body)
    };
    ($kind:expr, $wrap:expr, |$env:ident| $body:expr) => {
        $crate::with_driver!($kind, |inner, backend|
            sync: {
                let $env = $crate::common::Env::sync(($wrap)(inner), backend);
                $body
            },
            async: {
                let $env = $crate::common::Env::asynchronous(($wrap)(inner), backend);
                $body
            },
        )
    };
}

/// The fault tests' table, made in the fixture database before each body.
pub const TABLE: &str = "CREATE TABLE t (x INTEGER NOT NULL)";
/// The statement that writes `n` to the test table.
pub const INSERT: &str = "INSERT INTO t (x) VALUES (?)";
/// The statement that reads the test table.
pub const SELECT: &str = "SELECT x FROM t ORDER BY x";

/// One test's world: the fault layer, its handle, its manual clock and
/// journal, and a view of the database behind it.
pub struct Env<L> {
    /// Shared, so that a worker thread can connect.
    pub driver: Arc<L>,
    pub faults: Faults,
    pub clock: Clock,
    pub journal: Journal,
    pub backend: Backend,
}

/// A fault layer over `inner`, journaling on a manual clock (so a `delay`
/// advances the clock instead of sleeping), and its journal.
pub fn faulty<D>(inner: D) -> (FaultyDriver<D>, Journal) {
    let journal = Journal::with_clock(Clock::manual());
    let driver = FaultyDriver::new(inner).with_journal(journal.clone());
    (driver, journal)
}

impl<D: Driver> Env<FaultyDriver<D>> {
    /// The sync fault layer over `inner`.
    pub fn sync(inner: D, backend: Backend) -> Self {
        let (driver, journal) = faulty(inner);
        Env::new(driver, journal, backend)
    }
}

impl<A: AsyncDriver> Env<Synced<FaultyDriver<A>>> {
    /// The async fault layer over `inner`, behind [`Synced`].
    pub fn asynchronous(inner: A, backend: Backend) -> Self {
        let (driver, journal) = faulty(inner);
        Env::new(Synced::new(driver), journal, backend)
    }
}

impl<L: Layer> Env<L> {
    fn new(driver: L, journal: Journal, backend: Backend) -> Self {
        backend.prepare(TABLE);
        let clock = journal.clock().clone();
        let faults = driver.faults();
        Env {
            driver: Arc::new(driver),
            faults,
            clock,
            journal,
            backend,
        }
    }

    /// Connects through the fault layer; the connect must succeed.
    pub fn connect(&self) -> Conn<L> {
        self.driver.connect().expect("connect through the fault layer")
    }

    /// See [`Backend::committed_values`].
    pub fn committed(&self) -> Vec<i64> {
        self.backend.committed_values()
    }

    /// Asserts that `err` is a disconnect by every account: its class, its
    /// kind, the fault layer's dialect and the wrapped driver's dialect. An
    /// injected one also carries the wrapped dialect's disconnect code.
    pub fn assert_disconnect(&self, err: &Error, injected: bool) {
        assert!(err.is_disconnect(), "not a disconnect: {err}");
        assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
        assert_eq!(
            self.driver.dialect().classify(err),
            ErrorClass::Disconnect,
            "{err}"
        );
        assert_eq!(
            self.driver.inner_dialect().classify(err),
            ErrorClass::Disconnect,
            "{err}"
        );
        assert!(self.driver.dialect().is_disconnect(err), "{err}");
        assert_eq!(err.is_injected(), injected, "{err}");
        if injected {
            assert_eq!(err.code(), self.driver.inner_dialect().disconnect_code(), "{err}");
        }
    }

    /// Asserts that `conn` is gone for good: every operation but `close`
    /// fails with a disconnect (`injected`: one the fault layer made, as
    /// for a killed connection, rather than a use-after-close), it is in no
    /// transaction, the fault layer no longer counts it live, the inner
    /// connection is closed (mock: the server closed it; SQLite: a second
    /// connection can take the write lock), and closing it succeeds.
    pub fn assert_gone(&self, conn: &mut Conn<L>, injected: bool) {
        let id = conn.id();
        for op in [
            Op::Execute,
            Op::Query,
            Op::Begin,
            Op::Commit,
            Op::Rollback,
            Op::Ping,
        ] {
            let err = run_op(conn, op).expect_err("an operation on a gone connection fails");
            self.assert_disconnect(&err, injected);
        }
        assert!(!conn.in_transaction());
        assert!(!self.faults.live_connections().contains(&id));
        if let Some(open) = self.backend.inner_open(id) {
            assert!(!open, "the mock server still has {id} open");
        }
        self.backend.assert_write_lock_free();
        conn.close().expect("closing a gone connection succeeds");
    }
}

// ---------------------------------------------------------------------------
// Where the async fault layer legitimately differs from the sync one. Each
// difference is one function here, named for what it answers; a body asks
// it rather than branching on the kind itself.

/// How the fault layer releases the inner connection of a connection it
/// kills (by a rule, `kill`, `restart`, `outage`, or an outage that began
/// during the connect): `(close calls, drops)` of that inner connection.
///
/// The sync layer calls the inner connection's `close` (ignoring its
/// error), then drops it. The async layer cannot await in a kill (it runs
/// on the killer's thread, perhaps in no runtime), so it only drops the
/// inner connection; the async drivers close on drop (`AsyncMockConnection`
/// and `BlockingConnection` both do), so the server sees the connection
/// closed at the same moment either way.
pub fn released_by_kill<L: Layer>() -> (usize, usize) {
    if L::ASYNC { (0, 1) } else { (1, 1) }
}

/// Runs `op` on `conn` the way every action test does: `execute` writes 2,
/// `query` reads `t`.
pub fn run_op<C: Connection>(conn: &mut C, op: Op) -> dbfault::Result<()> {
    match op {
        Op::Execute => conn.execute(INSERT, &[Value::Integer(2)]).map(drop),
        Op::Query => conn.query(SELECT, &[]).map(drop),
        Op::Begin => conn.begin(),
        Op::Commit => conn.commit(),
        Op::Rollback => conn.rollback(),
        Op::Ping => conn.ping(),
        Op::Close => conn.close(),
        Op::Connect => panic!("connect is not an operation of a connection"),
    }
}

/// Writes `n` to `t` on `conn`.
pub fn insert<C: Connection>(conn: &mut C, n: i64) -> dbfault::Result<u64> {
    conn.execute(INSERT, &[Value::Integer(n)])
}

/// `before` with `more` appended, when the backend has a log.
pub fn appended(before: &Option<Vec<Op>>, more: &[Op]) -> Option<Vec<Op>> {
    before
        .as_ref()
        .map(|ops| ops.iter().chain(more).copied().collect())
}

/// How long a test waits for another thread to reach a point or to return.
/// A bound against a broken build, not a timing assertion.
pub const REACH: Duration = Duration::from_secs(10);

/// Work on a thread of its own, whose result the test waits for at most
/// [`REACH`]: a worker that never returns (a hang nothing releases) fails
/// the test instead of hanging it.
pub struct Worker<T> {
    handle: JoinHandle<()>,
    result: Receiver<T>,
}

impl<T: Send + 'static> Worker<T> {
    pub fn spawn(work: impl FnOnce() -> T + Send + 'static) -> Self {
        let (tx, result) = mpsc::channel();
        let handle = thread::spawn(move || {
            // The test may have given up waiting; nothing to tell it then.
            let _ = tx.send(work());
        });
        Worker { handle, result }
    }

    /// Whether the work has returned.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// The work's result, if it returns within [`REACH`].
    pub fn wait(self) -> Option<T> {
        let result = self.result.recv_timeout(REACH).ok()?;
        self.handle.join().expect("the worker does not panic");
        Some(result)
    }

    /// The work's result; panics naming `what` if it does not return
    /// within [`REACH`].
    pub fn join(self, what: &str) -> T {
        self.wait()
            .unwrap_or_else(|| panic!("{what} did not return within {REACH:?}"))
    }
}

/// The async fault layer over a fresh mock server, with no journal: for
/// the tests of what only the async layer has.
pub fn faulty_async_mock() -> (MockServer, FaultyDriver<AsyncMockDriver>, Faults) {
    let (driver, _) = Backend::mock();
    let server = driver.server().clone();
    let faulty = FaultyDriver::new(server.async_driver());
    let faults = faulty.faults();
    (server, faulty, faults)
}

/// A fresh fixture database with the test table `t`, on tokio's blocking
/// pool.
pub fn async_sqlite() -> Blocking<SqliteDriver> {
    let (driver, backend) = Backend::sqlite();
    backend.prepare(TABLE);
    Blocking::new(driver)
}
