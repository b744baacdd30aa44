//! Helpers shared by the fault-layer tests: one [`Env`] per test (a fault
//! layer over a fresh SQLite database or a fresh `MockServer`, on a manual
//! clock, journaled), the [`check!`] macro that runs one generic body
//! against each [`Kind`] (sync and async fault layer, each over SQLite and
//! the mock), and the assertions every body shares.
//!
//! A body is generic over a [`Layer`]: a sync `Driver` (the sync
//! `FaultyDriver<D>`, or the async one behind the [`Synced`] adapter, which
//! blocks on each call) plus what the test inspects of the layer. Where the
//! async layer legitimately behaves otherwise, the harness says so in one
//! place, branching on [`Layer::ASYNC`].
//!
//! Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

mod synced;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use dbfault::{
    AsyncDriver, Clock, ConnId, Connection, Driver, Error, ErrorClass, ErrorKind, Faults, FaultyDriver,
    Journal, MockDriver, MockServer, Op, SqliteDriver, Value,
};

pub(crate) use synced::{Layer, LayerConnection, Synced};

/// Which fault layer, over which driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The sync `FaultyDriver<SqliteDriver>`.
    Sqlite,
    /// The sync `FaultyDriver<MockDriver>`.
    Mock,
    /// The async `FaultyDriver<Blocking<SqliteDriver>>`, behind [`Synced`].
    AsyncSqlite,
    /// The async `FaultyDriver<AsyncMockDriver>`, behind [`Synced`].
    AsyncMock,
}

impl Kind {
    /// Every kind, sync first.
    pub(crate) const ALL: [Kind; 4] = [Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock];
}

/// The connection type of a [`Layer`].
pub(crate) type Conn<L> = <L as Driver>::Connection;

/// Runs a generic test body once against the fault layer and driver of
/// `kind`.
///
/// `check!(kind, |env| body(env, ...))` builds a fresh [`Env`] over a fresh
/// SQLite in-memory database or a fresh `MockServer`, through the sync
/// fault layer or the async one (the latter over `Blocking<SqliteDriver>`
/// or `AsyncMockDriver`, behind [`Synced`]), and evaluates the body with
/// it; the body is a generic `fn body<L: Layer>(env: Env<L>, ...)`,
/// instantiated once per kind. `check!(kind, wrap, |env| ...)` first wraps
/// the inner driver (sync or async) with `wrap`, a test-only driver adapter
/// generic enough for all four.
macro_rules! check {
    ($kind:expr, |$env:ident| $body:expr) => {
        check!($kind, ::std::convert::identity, |$env| $body)
    };
    ($kind:expr, $wrap:expr, |$env:ident| $body:expr) => {
        match $kind {
            $crate::common::Kind::Sqlite => {
                let (inner, backend) = $crate::common::Backend::sqlite();
                let $env = $crate::common::Env::sync(($wrap)(inner), backend);
                $body
            }
            $crate::common::Kind::Mock => {
                let (inner, backend) = $crate::common::Backend::mock();
                let $env = $crate::common::Env::sync(($wrap)(inner), backend);
                $body
            }
            $crate::common::Kind::AsyncSqlite => {
                let (inner, backend) = $crate::common::Backend::sqlite();
                let $env =
                    $crate::common::Env::asynchronous(($wrap)(::dbfault::Blocking::new(inner)), backend);
                $body
            }
            $crate::common::Kind::AsyncMock => {
                let (inner, backend) = $crate::common::Backend::mock();
                let $env = $crate::common::Env::asynchronous(($wrap)(inner.server().async_driver()), backend);
                $body
            }
        }
    };
}

/// What a test can see of the database behind the fault layer, without
/// going through it.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    /// A second, unfaulted driver on the same in-memory database.
    Sqlite(SqliteDriver),
    /// The server itself: its log, its open connections, what it committed.
    Mock(MockServer),
}

/// The statement that writes `n` to the test table.
pub(crate) const INSERT: &str = "INSERT INTO t (x) VALUES (?)";
/// The statement that reads the test table.
pub(crate) const SELECT: &str = "SELECT x FROM t ORDER BY x";

impl Backend {
    /// A fresh, uniquely named SQLite in-memory database with table `t`.
    pub(crate) fn sqlite() -> (SqliteDriver, Backend) {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "dbfault-fault-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let driver = SqliteDriver::memory(&name).expect("memory driver");
        let mut setup = driver.connect().expect("setup connection");
        setup
            .execute("CREATE TABLE t (x INTEGER NOT NULL)", &[])
            .expect("create table");
        setup.close().expect("close setup connection");
        (driver.clone(), Backend::Sqlite(driver))
    }

    /// A fresh, permissive mock server.
    pub(crate) fn mock() -> (MockDriver, Backend) {
        let server = MockServer::new();
        (server.driver(), Backend::Mock(server))
    }

    /// The values committed to `t`, ascending. On SQLite a second
    /// connection reads them, so this also proves that no connection still
    /// holds a write lock on `t`; on the mock, the server's committed
    /// `INSERT`s.
    pub(crate) fn committed(&self) -> Vec<i64> {
        match self {
            Backend::Sqlite(driver) => {
                let mut probe = driver.connect().expect("probe connection");
                let rows = probe
                    .query(SELECT, &[])
                    .unwrap_or_else(|e| panic!("a second connection cannot read t: {e}"));
                rows.iter()
                    .map(|row| row.get(0).and_then(Value::as_i64).expect("an integer"))
                    .collect()
            }
            Backend::Mock(server) => {
                let mut values: Vec<i64> = server
                    .committed()
                    .iter()
                    .filter(|c| c.sql.starts_with("INSERT"))
                    .map(|c| c.params[0].as_i64().expect("an integer parameter"))
                    .collect();
                values.sort_unstable();
                values
            }
        }
    }

    /// Asserts that a second connection can take the write lock on `t`
    /// (SQLite); the mock has no locks.
    pub(crate) fn assert_write_lock_free(&self) {
        if let Backend::Sqlite(driver) = self {
            let mut probe = driver.connect().expect("probe connection");
            probe.begin().expect("probe begin");
            probe
                .execute(INSERT, &[Value::Integer(-1)])
                .unwrap_or_else(|e| panic!("a second connection cannot write t: {e}"));
            probe.rollback().expect("probe rollback");
        }
    }

    /// The operations connection `id` performed on the mock server; `None`
    /// on SQLite, which has no such log.
    pub(crate) fn inner_ops(&self, id: ConnId) -> Option<Vec<Op>> {
        match self {
            Backend::Sqlite(_) => None,
            Backend::Mock(server) => Some(server.ops_for(id)),
        }
    }

    /// Whether the mock server still has connection `id` open; `None` on
    /// SQLite.
    pub(crate) fn inner_open(&self, id: ConnId) -> Option<bool> {
        match self {
            Backend::Sqlite(_) => None,
            Backend::Mock(server) => Some(server.open_connection_ids().contains(&id)),
        }
    }

    /// How many connections the mock server has open; `None` on SQLite.
    pub(crate) fn open_connections(&self) -> Option<usize> {
        match self {
            Backend::Sqlite(_) => None,
            Backend::Mock(server) => Some(server.open_connections()),
        }
    }

    /// The mock server, if this is one.
    pub(crate) fn server(&self) -> Option<&MockServer> {
        match self {
            Backend::Sqlite(_) => None,
            Backend::Mock(server) => Some(server),
        }
    }
}

/// One test's world: the fault layer, its handle, its manual clock and
/// journal, and a view of the database behind it.
pub(crate) struct Env<L> {
    /// Shared, so that a worker thread can connect.
    pub(crate) driver: Arc<L>,
    pub(crate) faults: Faults,
    pub(crate) clock: Clock,
    pub(crate) journal: Journal,
    pub(crate) backend: Backend,
}

/// A fault layer over `inner`, journaling on a manual clock (so a `delay`
/// advances the clock instead of sleeping), and its journal.
fn faulty<D>(inner: D) -> (FaultyDriver<D>, Journal) {
    let journal = Journal::with_clock(Clock::manual());
    let driver = FaultyDriver::new(inner).with_journal(journal.clone());
    (driver, journal)
}

impl<D: Driver> Env<FaultyDriver<D>> {
    /// The sync fault layer over `inner`.
    pub(crate) fn sync(inner: D, backend: Backend) -> Self {
        let (driver, journal) = faulty(inner);
        Env::new(driver, journal, backend)
    }
}

impl<A: AsyncDriver> Env<Synced<FaultyDriver<A>>> {
    /// The async fault layer over `inner`, behind [`Synced`].
    pub(crate) fn asynchronous(inner: A, backend: Backend) -> Self {
        let (driver, journal) = faulty(inner);
        Env::new(Synced::new(driver), journal, backend)
    }
}

impl<L: Layer> Env<L> {
    fn new(driver: L, journal: Journal, backend: Backend) -> Self {
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
    pub(crate) fn connect(&self) -> Conn<L> {
        self.driver.connect().expect("connect through the fault layer")
    }

    /// See [`Backend::committed`].
    pub(crate) fn committed(&self) -> Vec<i64> {
        self.backend.committed()
    }

    /// Asserts that `err` is a disconnect by every account: its class, its
    /// kind, the fault layer's dialect and the wrapped driver's dialect. An
    /// injected one also carries the wrapped dialect's disconnect code.
    pub(crate) fn assert_disconnect(&self, err: &Error, injected: bool) {
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
    pub(crate) fn assert_gone(&self, conn: &mut Conn<L>, injected: bool) {
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
pub(crate) fn released_by_kill<L: Layer>() -> (usize, usize) {
    if L::ASYNC { (0, 1) } else { (1, 1) }
}

/// Runs `op` on `conn` the way every action test does: `execute` writes 2,
/// `query` reads `t`.
pub(crate) fn run_op<C: Connection>(conn: &mut C, op: Op) -> dbfault::Result<()> {
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
pub(crate) fn insert<C: Connection>(conn: &mut C, n: i64) -> dbfault::Result<u64> {
    conn.execute(INSERT, &[Value::Integer(n)])
}

/// `before` with `more` appended, when the backend has a log.
pub(crate) fn appended(before: &Option<Vec<Op>>, more: &[Op]) -> Option<Vec<Op>> {
    before
        .as_ref()
        .map(|ops| ops.iter().chain(more).copied().collect())
}

/// How long a test waits for another thread to reach a point or to return.
/// A bound against a broken build, not a timing assertion.
pub(crate) const REACH: Duration = Duration::from_secs(10);

/// Work on a thread of its own, whose result the test waits for at most
/// [`REACH`]: a worker that never returns (a hang nothing releases) fails
/// the test instead of hanging it.
pub(crate) struct Worker<T> {
    handle: JoinHandle<()>,
    result: Receiver<T>,
}

impl<T: Send + 'static> Worker<T> {
    pub(crate) fn spawn(work: impl FnOnce() -> T + Send + 'static) -> Self {
        let (tx, result) = mpsc::channel();
        let handle = thread::spawn(move || {
            // The test may have given up waiting; nothing to tell it then.
            let _ = tx.send(work());
        });
        Worker { handle, result }
    }

    /// Whether the work has returned.
    pub(crate) fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// The work's result, if it returns within [`REACH`].
    pub(crate) fn wait(self) -> Option<T> {
        let result = self.result.recv_timeout(REACH).ok()?;
        self.handle.join().expect("the worker does not panic");
        Some(result)
    }

    /// The work's result; panics naming `what` if it does not return
    /// within [`REACH`].
    pub(crate) fn join(self, what: &str) -> T {
        self.wait()
            .unwrap_or_else(|| panic!("{what} did not return within {REACH:?}"))
    }
}
