//! Panics and the engine: a panic inside a transaction invalidates its
//! connection without a rollback (SQLAlchemy's ticket 3803, behaviour
//! 11 of docs/pool-behaviours.md carried to the engine), in both engines; a driver call
//! that panics on tokio's blocking pool discards that connection only.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use dbfault::{
    AsyncConnection, AsyncDriver, AsyncEngine, AsyncPool, Blocking, ConnId, Connection, ConnectionMock,
    Dialect, Driver, Engine, ErrorClass, ErrorKind, EventKind, Expectation, Journal, MockConnection,
    MockDialect, MockDriver, MockServer, Op, Pool, PoolConfig, Result, Row, RowRef, Value,
};

const SELECT: &str = "SELECT 1";

/// A server that answers `SELECT 1` with one row, as often as asked.
fn server() -> MockServer {
    let server = MockServer::new();
    server.expect(
        Expectation::exact(SELECT)
            .returns_rows(["x"], vec![vec![Value::Integer(1)]])
            .any_times(),
    );
    server
}

fn panics(_: RowRef<'_>) -> Result<()> {
    panic!("an assertion in the callback failed")
}

#[test]
fn a_panic_in_a_transaction_invalidates_the_connection_without_a_rollback() {
    let server = server();
    let journal = Journal::new();
    let pool = Pool::new(
        server.driver(),
        PoolConfig::new().size(1).journal(journal.clone()),
    )
    .unwrap();
    let engine = Engine::new(pool);
    let mut conn = engine.connect().unwrap();
    let first = conn.held().unwrap().id();

    let caught = catch_unwind(AssertUnwindSafe(|| {
        let mut tx = conn.begin().unwrap();
        tx.query_row_map(SELECT, &[], panics)
    }));

    assert!(caught.is_err());
    assert!(conn.is_invalidated());
    assert_eq!(
        journal.count_for(EventKind::Invalidate, first),
        1,
        "{}",
        journal.timeline()
    );
    assert!(
        !server.ops_for(first).contains(&Op::Rollback),
        "a rollback reached the driver: {:?}",
        server.ops_for(first)
    );
    conn.query_row(SELECT, &[]).unwrap();
    assert_ne!(conn.held().unwrap().id(), first);
    assert_eq!(engine.pool().status().checked_out, 1);
}

#[test]
fn an_async_transaction_dropped_during_a_panic_invalidates_the_connection_without_a_rollback() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = server();
    let journal = Journal::new();
    let pool = AsyncPool::new(
        server.async_driver(),
        PoolConfig::new().size(1).journal(journal.clone()),
    )
    .unwrap();
    let engine = AsyncEngine::new(pool);
    let mut conn = rt.block_on(engine.connect()).unwrap();
    let first = conn.held().unwrap().id();

    let caught = catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async {
            let mut tx = conn.begin().await.unwrap();
            tx.query_row_map(SELECT, &[], panics).await
        })
    }));

    assert!(caught.is_err());
    assert!(conn.is_invalidated());
    assert_eq!(
        journal.count_for(EventKind::Invalidate, first),
        1,
        "{}",
        journal.timeline()
    );
    rt.block_on(conn.query_row(SELECT, &[])).unwrap();
    assert_ne!(conn.held().unwrap().id(), first);
    assert!(
        !server.ops_for(first).contains(&Op::Rollback),
        "a rollback reached the driver: {:?}",
        server.ops_for(first)
    );
}

/// A driver that hands out one [`ConnectionMock`].
struct OneMock {
    conn: std::sync::Mutex<Option<ConnectionMock>>,
}

impl Driver for OneMock {
    type Connection = ConnectionMock;

    fn connect(&self) -> Result<ConnectionMock> {
        let conn = self.conn.lock().unwrap().take();
        Ok(conn.expect("one connect only"))
    }

    fn dialect(&self) -> Arc<dyn Dialect> {
        Arc::new(MockDialect::default())
    }
}

#[test]
fn a_driver_whose_rollback_panics_does_not_abort_a_panicking_transaction() {
    let mut mock = ConnectionMock::new();
    mock.expect_id().return_const(ConnId(1));
    mock.expect_in_transaction().return_const(false);
    mock.expect_begin().times(1).returning(|| Ok(()));
    mock.expect_query_row_with().times(1).returning(|_, _, f| {
        let row = Row::new(vec!["x".to_owned()].into(), vec![Value::Integer(1)]);
        f(RowRef::from(&row));
        Ok(true)
    });
    // Were it called while the thread unwinds, the process would abort.
    mock.expect_rollback()
        .returning(|| panic!("the driver's rollback panicked"));
    mock.expect_close().returning(|| Ok(()));
    let journal = Journal::new();
    let driver = OneMock {
        conn: std::sync::Mutex::new(Some(mock)),
    };
    let engine = Engine::new(Pool::new(driver, PoolConfig::new().size(1).journal(journal.clone())).unwrap());
    let mut conn = engine.connect().unwrap();

    let caught = catch_unwind(AssertUnwindSafe(|| {
        let mut tx = conn.begin().unwrap();
        tx.query_row_map(SELECT, &[], panics)
    }));

    assert!(caught.is_err());
    assert!(conn.is_invalidated());
    assert_eq!(journal.count_for(EventKind::Invalidate, ConnId(1)), 1);
    assert_eq!(engine.pool().status().checked_out, 0);
}

/// The statement [`Panicky`]'s connections panic on.
const PANIC: &str = "PANIC";

/// The mock driver, but a connection panics when asked to run [`PANIC`].
struct Panicky(MockDriver);

struct PanickyConnection(MockConnection);

impl Driver for Panicky {
    type Connection = PanickyConnection;

    fn connect(&self) -> Result<PanickyConnection> {
        self.0.connect().map(PanickyConnection)
    }

    fn dialect(&self) -> Arc<dyn Dialect> {
        self.0.dialect()
    }
}

impl Connection for PanickyConnection {
    fn id(&self) -> ConnId {
        self.0.id()
    }
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        assert_ne!(sql, PANIC, "the driver was told to panic");
        self.0.execute(sql, params)
    }
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        self.0.query(sql, params)
    }
    fn begin(&mut self) -> Result<()> {
        self.0.begin()
    }
    fn commit(&mut self) -> Result<()> {
        self.0.commit()
    }
    fn rollback(&mut self) -> Result<()> {
        self.0.rollback()
    }
    fn ping(&mut self) -> Result<()> {
        self.0.ping()
    }
    fn in_transaction(&self) -> bool {
        self.0.in_transaction()
    }
    fn close(&mut self) -> Result<()> {
        self.0.close()
    }
}

fn assert_panic_error(err: &dbfault::Error) {
    assert_eq!(
        (err.kind(), err.class(), err.code()),
        (ErrorKind::Driver, ErrorClass::Other, Some("DBFAULT_PANIC")),
        "{err:?}"
    );
    assert!(!err.is_disconnect());
    assert!(err.message().contains("the driver was told to panic"), "{err}");
}

#[tokio::test]
async fn a_blocking_call_that_panics_breaks_that_connection_with_an_error_that_is_no_disconnect() {
    let server = server();
    let driver = Blocking::new(Panicky(server.driver()));
    let mut conn = driver.connect().await.unwrap();

    let err = conn.execute(PANIC, &[]).await.unwrap_err();
    assert_panic_error(&err);
    // Broken for good: no later call reaches the driver, and it may be in
    // a transaction for all anyone knows.
    let later = conn.query_row(SELECT, &[]).await.unwrap_err();
    assert_panic_error(&later);
    assert!(later.message().contains("broken by an earlier call"), "{later}");
    assert!(conn.in_transaction());
    conn.close().await.unwrap();
    assert_eq!(server.open_connections(), 0);
}

#[tokio::test]
async fn a_blocking_call_that_panics_invalidates_that_connection_and_not_the_pool() {
    let server = server();
    let journal = Journal::new();
    let pool = AsyncPool::new(
        Blocking::new(Panicky(server.driver())),
        PoolConfig::new().size(2).journal(journal.clone()),
    )
    .unwrap();
    let engine = AsyncEngine::new(pool);
    let mut broken = engine.connect().await.unwrap();
    let other = engine.connect().await.unwrap();
    let (broken_id, other_id) = (broken.held().unwrap().id(), other.held().unwrap().id());

    let err = broken.execute(PANIC, &[]).await.unwrap_err();

    assert_panic_error(&err);
    assert!(err.connection_invalidated());
    assert!(broken.is_invalidated());
    assert_eq!(journal.count_for(EventKind::Invalidate, broken_id), 1);
    // The other connection is not stale: returned and checked out again,
    // it is the same connection, not replaced.
    drop(other);
    let mut other = engine.connect().await.unwrap();
    assert_eq!(other.held().unwrap().id(), other_id, "{}", journal.timeline());
    other.query_row(SELECT, &[]).await.unwrap();
    assert_eq!(journal.count(EventKind::Invalidate), 1, "{}", journal.timeline());
    // The broken one's next call reconnects.
    broken.query_row(SELECT, &[]).await.unwrap();
    assert_ne!(broken.held().unwrap().id(), broken_id);
}

/// A threaded engine's transaction dropped during a panic makes no driver
/// call at all: neither a rollback nor the close of the invalidation (a
/// `close` that panicked while the thread unwinds would abort the
/// process). Every call the driver sees while the thread panics is
/// recorded.
#[test]
fn a_sync_transaction_dropped_during_a_panic_makes_no_driver_call() {
    struct Recording(MockDriver, Arc<AtomicBool>);
    struct RecConn(MockConnection, Arc<AtomicBool>);
    impl RecConn {
        fn mark(&self) {
            if thread::panicking() {
                self.1.store(true, Ordering::SeqCst);
            }
        }
    }
    impl Driver for Recording {
        type Connection = RecConn;
        fn connect(&self) -> Result<RecConn> {
            self.0.connect().map(|c| RecConn(c, Arc::clone(&self.1)))
        }
        fn dialect(&self) -> Arc<dyn Dialect> {
            self.0.dialect()
        }
    }
    impl Connection for RecConn {
        fn id(&self) -> ConnId {
            self.0.id()
        }
        fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
            self.mark();
            self.0.execute(sql, params)
        }
        fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
            self.mark();
            self.0.query(sql, params)
        }
        fn begin(&mut self) -> Result<()> {
            self.mark();
            self.0.begin()
        }
        fn commit(&mut self) -> Result<()> {
            self.mark();
            self.0.commit()
        }
        fn rollback(&mut self) -> Result<()> {
            self.mark();
            self.0.rollback()
        }
        fn ping(&mut self) -> Result<()> {
            self.mark();
            self.0.ping()
        }
        fn in_transaction(&self) -> bool {
            self.0.in_transaction()
        }
        fn close(&mut self) -> Result<()> {
            self.mark();
            self.0.close()
        }
    }
    let called = Arc::new(AtomicBool::new(false));
    let driver = Recording(MockServer::new().driver(), Arc::clone(&called));
    let engine = Engine::new(Pool::new(driver, PoolConfig::new().size(1)).unwrap());
    let mut conn = engine.connect().unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _tx = conn.begin().unwrap();
        panic!("an assertion inside the transaction failed");
    }));
    assert!(caught.is_err());
    assert!(conn.is_invalidated());
    assert!(
        !called.load(Ordering::SeqCst),
        "a driver call (close) ran while the thread was unwinding"
    );
}
