//! A connection given back while its thread panics never reaches the
//! driver: a driver's `close` that panicked during the unwinding would
//! abort the process. Each test's driver panics in `close`; each test
//! panics inside `catch_unwind` with a connection out, and checks that the
//! process lives on, that the slot came back, and that the journal says
//! the close was not called.
#![cfg(all(feature = "mockall", feature = "tokio"))]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dbfault::{
    AsyncPool, Blocking, ConnId, Connection, ConnectionMock, Dialect, Driver, Engine, EventKind, Journal,
    MockDialect, Pool, PoolConfig, Result,
};

/// A driver whose connections do what a pool and an engine ask of them,
/// but panic when closed.
#[derive(Default)]
struct ClosePanics {
    next: AtomicU64,
}

impl Driver for ClosePanics {
    type Connection = ConnectionMock;

    fn connect(&self) -> Result<ConnectionMock> {
        let id = ConnId(self.next.fetch_add(1, Ordering::SeqCst) + 1);
        let mut conn = ConnectionMock::new();
        conn.expect_id().return_const(id);
        conn.expect_in_transaction().return_const(false);
        conn.expect_is_broken().return_const(false);
        conn.expect_begin().returning(|| Ok(()));
        conn.expect_execute().returning(|_, _| Ok(0));
        conn.expect_close()
            .returning(|| panic!("the driver's close panicked"));
        Ok(conn)
    }

    fn dialect(&self) -> Arc<dyn Dialect> {
        Arc::new(MockDialect::default())
    }
}

/// The detail of the one event of `kind` for `conn`.
fn detail(journal: &Journal, conn: ConnId, kind: EventKind) -> String {
    let events: Vec<_> = journal
        .events()
        .into_iter()
        .filter(|e| e.conn == Some(conn) && e.kind == kind)
        .collect();
    assert_eq!(events.len(), 1, "{}", journal.timeline());
    events[0].detail.clone()
}

fn pool() -> (Pool<ClosePanics>, Journal) {
    let journal = Journal::new();
    let config = PoolConfig::new().size(1).max_overflow(0).journal(journal.clone());
    (Pool::new(ClosePanics::default(), config).unwrap(), journal)
}

#[test]
fn a_pooled_connection_dropped_in_a_panic_is_invalidated_without_a_close() {
    let (pool, journal) = pool();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        let _conn = pool.get().unwrap();
        panic!("the test's own panic");
    }));
    assert!(caught.is_err());
    let first = ConnId(1);
    assert_eq!(
        journal.kinds_for(first),
        [
            EventKind::FirstConnect,
            EventKind::Connect,
            EventKind::Checkout,
            EventKind::Invalidate,
            EventKind::Close,
            EventKind::Checkin
        ]
    );
    assert_eq!(detail(&journal, first, EventKind::Close), "not called: panicking");
    let status = pool.status();
    assert_eq!(
        (status.checked_out, status.checked_in),
        (0, 0),
        "the slot came back"
    );
    pool.check_counters().unwrap();
    assert_eq!(pool.get().unwrap().id(), ConnId(2), "a fresh connection");
}

#[test]
fn a_detached_connection_dropped_in_a_panic_is_not_closed_through_the_driver() {
    let (pool, journal) = pool();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        let mut conn = pool.get().unwrap();
        conn.detach();
        panic!("the test's own panic");
    }));
    assert!(caught.is_err());
    assert_eq!(
        detail(&journal, ConnId(1), EventKind::CloseDetached),
        "not called: panicking"
    );
    assert_eq!(pool.status().total(), 0);
    pool.check_counters().unwrap();
}

#[test]
fn an_engine_transaction_dropped_in_a_panic_gives_the_slot_back_without_a_close() {
    let (pool, journal) = pool();
    let engine = Engine::new(pool.clone());
    let mut conn = engine.connect().unwrap();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        let mut tx = conn.begin().unwrap();
        tx.execute("UPDATE t SET x = 1", &[]).unwrap();
        panic!("the test's own panic");
    }));
    assert!(caught.is_err());
    assert!(conn.is_invalidated());
    assert_eq!(
        detail(&journal, ConnId(1), EventKind::Close),
        "not called: panicking"
    );
    assert_eq!(pool.status().checked_out, 0, "the slot came back");
    pool.check_counters().unwrap();
}

#[test]
fn an_async_pooled_connection_dropped_in_a_panic_is_invalidated_without_a_close() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let journal = Journal::new();
    let config = PoolConfig::new().size(1).max_overflow(0).journal(journal.clone());
    let pool = AsyncPool::new(Blocking::new(ClosePanics::default()), config).unwrap();
    let conn = rt.block_on(pool.get()).unwrap();
    let caught = catch_unwind(AssertUnwindSafe(move || {
        let _conn = conn;
        panic!("the test's own panic");
    }));
    assert!(caught.is_err());
    assert_eq!(
        detail(&journal, ConnId(1), EventKind::Close),
        "not called: panicking"
    );
    let status = pool.status();
    assert_eq!(
        (status.checked_out, status.checked_in),
        (0, 0),
        "the slot came back"
    );
    pool.check_counters().unwrap();
}
