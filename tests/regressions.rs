//! Regressions found by a review of the shells, the fault layer and the
//! engines: each test failed before its fix.
mod common;

use common::fault::faulty_async_mock as mock;
use dbfault::*;
use std::time::Duration;

// F-A: async connect held by a delay rule is not refused by an outage that began meanwhile.
#[tokio::test(start_paused = true)]
async fn async_connect_under_way_is_refused_by_outage() {
    let (_server, driver, faults) = mock();
    let _slow = faults
        .arm(Rule::on(Op::Connect).delay(Duration::from_secs(5)))
        .unwrap();
    let f2 = faults.clone();
    let t = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        f2.outage();
    });
    let r = driver.connect().await;
    t.await.unwrap();
    assert!(faults.is_down());
    assert!(
        r.is_err(),
        "connect succeeded during an outage; live = {:?}",
        faults.live_connections()
    );
}

// F-B: async op in flight when the connection is killed returns Ok.
#[tokio::test(flavor = "current_thread")]
async fn async_op_in_flight_at_kill_fails_with_disconnect() {
    let (server, driver, faults) = mock();
    let mut conn = driver.connect().await.unwrap();
    let id = conn.id();
    let t = tokio::spawn(async move { conn.execute("INSERT INTO t VALUES (1)", &[]).await });
    tokio::task::yield_now().await; // the task is now inside the inner round trip
    assert!(faults.kill(id));
    let r = t.await.unwrap();
    assert!(
        r.is_err(),
        "in-flight execute returned {r:?} after kill; server committed {:?}",
        server.committed_sql()
    );
}

// F-C: async close() with an error rule returns early: not marked closed, inner not closed, still live.
#[tokio::test]
async fn async_close_failed_by_rule_still_closes_inner() {
    let (server, driver, faults) = mock();
    let _g = faults
        .arm(Rule::on(Op::Close).times(1).error(ErrorClass::Other))
        .unwrap();
    let mut conn = driver.connect().await.unwrap();
    assert!(conn.close().await.is_err());
    assert_eq!(
        faults.live_connections(),
        Vec::<ConnId>::new(),
        "still registered"
    );
    assert_eq!(server.open_connections(), 0, "inner connection still open");
}

// sync twin of F-C passes
#[test]
fn sync_close_failed_by_rule_closes_inner() {
    let server = MockServer::new();
    let driver = FaultyDriver::new(server.driver());
    let faults = driver.faults();
    let _g = faults
        .arm(Rule::on(Op::Close).times(1).error(ErrorClass::Other))
        .unwrap();
    let mut conn = driver.connect().unwrap();
    assert!(conn.close().is_err());
    assert_eq!(faults.live_connections(), Vec::<ConnId>::new());
    assert_eq!(server.open_connections(), 0);
}

// F-D: a dirty AsyncPooledConnection dropped just before the runtime shuts down leaks its slot.
#[test]
fn dirty_drop_before_runtime_shutdown_leaks_slot() {
    let server = MockServer::new();
    let pool = AsyncPool::new(
        server.async_driver(),
        PoolConfig::new()
            .size(1)
            .max_overflow(0)
            .timeout(Duration::from_millis(50)),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = pool.get().await.unwrap();
        c.begin().await.unwrap();
        drop(c); // spawns the reset task, which never runs
    });
    drop(rt);
    let s = pool.status();
    assert_eq!(
        (s.checked_out, s.checked_in),
        (0, 0),
        "slot leaked: {s:?}; open on server: {}",
        server.open_connections()
    );
}

// F-E: async engine: a lazy rollback that fails keeps the connection (sync engine invalidates it).
#[tokio::test]
async fn async_engine_failed_lazy_rollback_invalidates() {
    let (_server, driver, faults) = mock();
    let engine = AsyncEngine::new(AsyncPool::new(driver, PoolConfig::new().size(1)).unwrap());
    let mut conn = engine.connect().await.unwrap();
    let first = conn.held().unwrap().id();
    let tx = conn.begin().await.unwrap();
    let _g = faults
        .arm(Rule::on(Op::Rollback).error(ErrorClass::Other))
        .unwrap();
    drop(tx);
    let r1 = conn.execute("SELECT 1", &[]).await;
    let r2 = conn.execute("SELECT 1", &[]).await;
    assert!(r1.is_err());
    assert!(
        r2.is_ok(),
        "second call after a failed rollback: {r2:?}; still on {first}? {:?}",
        conn.held().map(|c| c.id())
    );
}

#[test]
fn sync_engine_failed_rollback_invalidates() {
    let server = MockServer::new();
    let driver = FaultyDriver::new(server.driver());
    let faults = driver.faults();
    let engine = Engine::new(Pool::new(driver, PoolConfig::new().size(1)).unwrap());
    let mut conn = engine.connect().unwrap();
    let tx = conn.begin().unwrap();
    let _g = faults
        .arm(Rule::on(Op::Rollback).error(ErrorClass::Other))
        .unwrap();
    drop(tx);
    assert!(conn.execute("SELECT 1", &[]).is_ok());
}

// F-F: a panicking connect leaks its slot in the threaded pool.
#[derive(Debug)]
struct Panicky(MockDriver, std::sync::Arc<std::sync::atomic::AtomicBool>);
impl Driver for Panicky {
    type Connection = MockConnection;
    fn connect(&self) -> Result<MockConnection> {
        if self.1.swap(false, std::sync::atomic::Ordering::SeqCst) {
            panic!("mock expectation failed")
        }
        self.0.connect()
    }
    fn dialect(&self) -> std::sync::Arc<dyn Dialect> {
        self.0.dialect()
    }
}
#[test]
fn panicking_connect_does_not_leak_a_slot() {
    let server = MockServer::new();
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let pool = Pool::new(
        Panicky(server.driver(), flag),
        PoolConfig::new()
            .size(1)
            .max_overflow(0)
            .timeout(Duration::from_millis(50)),
    )
    .unwrap();
    let p2 = pool.clone();
    assert!(
        std::thread::spawn(move || {
            let _ = p2.get();
        })
        .join()
        .is_err()
    );
    let s = pool.status();
    assert_eq!(s.checked_out, 0, "slot leaked: {s:?}");
}

// F-G: AsyncPool with a journal on the system clock under a paused runtime: the timeout is in real time (spinning).
#[tokio::test(start_paused = true)]
async fn async_timeout_with_journal_is_on_tokio_clock() {
    let server = MockServer::new();
    let pool = AsyncPool::new(
        server.async_driver(),
        PoolConfig::new()
            .size(1)
            .max_overflow(0)
            .timeout(Duration::from_millis(500))
            .journal(Journal::new()),
    )
    .unwrap();
    let _held = pool.get().await.unwrap();
    // On tokio's paused clock the checkout times out at 500 ms of virtual
    // time. Timed on the system clock it spun in 1 ms virtual slices, so
    // virtual time ran past this bound long before 500 real ms had passed.
    let start = tokio::time::Instant::now();
    let got = tokio::time::timeout(Duration::from_millis(501), pool.get()).await;
    let waited = start.elapsed();
    match got {
        Ok(Err(e)) => assert_eq!(e.kind(), ErrorKind::Timeout, "{e}"),
        Ok(Ok(_)) => panic!("an exhausted pool handed out a connection"),
        Err(_) => panic!("no timeout within 501 ms of tokio's clock"),
    }
    assert!(waited >= Duration::from_millis(500), "timed out after {waited:?}");
}

/// `wait_for_hits` with a timeout too long to add to an `Instant`
/// (`Duration::MAX`) waits as long as it takes instead of panicking on the
/// overflow; a rule that already fired `n` times answers at once.
#[test]
fn wait_for_hits_with_duration_max_does_not_panic() {
    let driver = FaultyDriver::new(MockServer::new().driver());
    let guard = driver
        .faults()
        .arm(Rule::on(Op::Connect).times(1).disconnect())
        .unwrap();
    assert!(driver.connect().is_err());
    assert_eq!(guard.hits(), 1);
    let reached = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        guard.wait_for_hits(1, Duration::MAX)
    }));
    assert!(
        matches!(reached, Ok(true)),
        "wait_for_hits(1, Duration::MAX) on a rule that already fired once panicked"
    );
}

/// A pre-ping at checkout that a `disconnect_after_apply` rule cuts, its
/// `get()` future dropped at every await: the connection goes back to the
/// idle queue already killed (the fault layer kills on a dropped future),
/// and the next checkout replaces it (`is_broken`) with the counters
/// consistent.
#[tokio::test(start_paused = true)]
async fn a_ping_killed_by_a_cancelled_checkout_is_never_handed_out() {
    use dbfault::testing::cancel_at_every_await;
    let server = MockServer::new();
    let driver = FaultyDriver::new(server.async_driver());
    let faults = driver.faults();
    let pool = AsyncPool::new(driver, PoolConfig::new().size(2).max_overflow(0).pre_ping(true)).unwrap();
    {
        let a = pool.get().await.unwrap();
        let b = pool.get().await.unwrap();
        drop((a, b));
    }
    faults
        .arm(Rule::on(Op::Ping).delay(Duration::from_millis(5)))
        .unwrap()
        .keep();
    faults
        .arm(Rule::on(Op::Ping).every(2).disconnect_after_apply())
        .unwrap()
        .keep();
    let yields = cancel_at_every_await(
        || {
            let pool = pool.clone();
            async move { drop(pool.get().await) }
        },
        |k| {
            let pool = pool.clone();
            async move {
                tokio::task::yield_now().await;
                pool.check_counters().unwrap();
                assert_eq!(pool.status().checked_out, 0, "cancelled at {k}");
                let conn = pool.get().await.unwrap();
                assert!(!conn.is_broken() && !conn.in_transaction(), "cancelled at {k}");
            }
        },
    )
    .await;
    assert!(yields >= 1);
    faults.disarm_all();
}
