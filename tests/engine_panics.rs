//! Panics and the engine: a panic inside a transaction invalidates its
//! connection without a rollback (SQLAlchemy's ticket 3803, DESIGN.md
//! behaviour 11 carried to the engine), in both engines; a driver call
//! that panics on tokio's blocking pool discards that connection only.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use dbfault::{
    AsyncConnection, AsyncEngine, AsyncPool, ConnId, Connection, ConnectionMock, Dialect, Driver, Engine,
    EventKind, Expectation, Journal, MockDialect, MockServer, Op, Pool, PoolConfig, Result, RowRef, Value,
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
        let row = dbfault::Row::new(vec!["x".to_owned()].into(), vec![Value::Integer(1)]);
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
