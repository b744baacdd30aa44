//! What only the async fault layer has. Everything it shares with the sync
//! one (every action on every operation, the filters, the guards, the
//! server-wide faults, the journal, plans) runs in `fault_actions.rs` and
//! `fault_server.rs`, one body for both layers (`Kind::AsyncSqlite`,
//! `Kind::AsyncMock`). Here, on tokio's paused clock: delays wait on
//! virtual time, `wait_for_hits_async` times out exactly, a caller gives up
//! on a hung call by dropping its future, and an operation dropped at any
//! await leaves its connection usable. Also: with every trait in scope, no
//! call is ambiguous.

mod common;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use common::fault::{async_sqlite as sqlite, faulty_async_mock as mock};
use dbfault::testing::cancel_at_every_await;
use dbfault::*;
use rstest::rstest;
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn a_delay_waits_exactly_on_the_paused_clock() {
    let (_server, driver, faults) = mock();
    let _slow = faults
        .arm(Rule::on(Op::Query).delay(Duration::from_secs(90)))
        .unwrap();
    let mut conn = driver.connect().await.unwrap();
    let start = Instant::now();
    conn.query("SELECT 1", &[]).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(90));
}

#[tokio::test(start_paused = true)]
async fn a_hang_holds_until_disarmed_or_the_caller_gives_up() {
    let (server, driver, faults) = mock();
    let hang = faults.arm(Rule::on(Op::Commit).hang()).unwrap();
    let mut conn = driver.connect().await.unwrap();
    conn.begin().await.unwrap();
    conn.execute("INSERT INTO t VALUES (1)", &[]).await.unwrap();
    // The caller gives up after 5 s of virtual time...
    let gave_up = tokio::time::timeout(Duration::from_secs(5), conn.commit()).await;
    assert!(gave_up.is_err());
    assert_eq!(hang.hits(), 1);
    assert!(server.committed_sql().is_empty());
    // ...and once the rule is disarmed the next commit goes through.
    drop(hang);
    conn.commit().await.unwrap();
    assert_eq!(server.committed_sql(), ["INSERT INTO t VALUES (1)"]);
}

#[tokio::test(start_paused = true)]
async fn wait_for_hits_async_times_out_on_virtual_time() {
    let (_server, driver, faults) = mock();
    let guard = faults
        .arm(Rule::on(Op::Ping).times(1).error(ErrorClass::Transient))
        .unwrap();
    let start = Instant::now();
    assert!(!guard.wait_for_hits_async(1, Duration::from_secs(30)).await);
    assert_eq!(start.elapsed(), Duration::from_secs(30));
    let mut conn = driver.connect().await.unwrap();
    let pinger = tokio::spawn(async move { conn.ping().await });
    assert!(guard.wait_for_hits_async(1, Duration::from_secs(30)).await);
    assert!(pinger.await.unwrap().is_err());
}

/// An operation dropped at any of its awaits, under a rule that does not
/// kill (none, an error, a delay on tokio's paused clock), leaves its
/// connection alive and usable: the next operations reach the server, and
/// no transaction is left open. Over both async drivers.
#[rstest]
#[case::mock_no_rule(false, None)]
#[case::mock_error(false, Some(Rule::on(Op::Execute).error(ErrorClass::Transient)))]
#[case::mock_delay(false, Some(Rule::on(Op::Execute).delay(Duration::from_secs(5))))]
#[case::sqlite_no_rule(true, None)]
#[case::sqlite_error(true, Some(Rule::on(Op::Execute).error(ErrorClass::Transient)))]
#[case::sqlite_delay(true, Some(Rule::on(Op::Execute).delay(Duration::from_secs(5))))]
#[tokio::test(start_paused = true)]
async fn an_operation_cancelled_at_any_await_leaves_its_connection_usable(
    #[case] sqlite: bool,
    #[case] rule: Option<Rule>,
) {
    if sqlite {
        cancelled_body(FaultyDriver::new(self::sqlite()), rule).await;
    } else {
        cancelled_body(FaultyDriver::new(MockServer::new().async_driver()), rule).await;
    }
}

async fn cancelled_body<A: AsyncDriver>(driver: FaultyDriver<A>, rule: Option<Rule>) {
    let faults = driver.faults();
    let guard = rule.map(|rule| faults.arm(rule).unwrap());
    let conn = driver.connect().await.unwrap();
    let id = conn.id();
    let conn = Arc::new(tokio::sync::Mutex::new(conn));
    let mut checks = 0;
    let yields = cancel_at_every_await(
        || {
            let conn = Arc::clone(&conn);
            async move {
                let mut conn = conn.lock().await;
                conn.begin().await?;
                conn.execute("INSERT INTO t (x) VALUES (1)", &[]).await?;
                conn.commit().await
            }
        },
        |k| {
            checks += 1;
            let (conn, faults) = (Arc::clone(&conn), faults.clone());
            async move {
                let mut conn = conn.lock().await;
                assert!(!conn.is_dead(), "cancelled at await {k}");
                assert_eq!(faults.live_connections(), [id], "cancelled at await {k}");
                // Whatever the cancelled call left open is rolled back.
                conn.rollback().await.unwrap();
                assert!(!conn.in_transaction(), "cancelled at await {k}");
                conn.ping().await.unwrap();
                let rows = conn.query("SELECT 1", &[]).await.unwrap();
                assert!(rows.len() <= 1, "cancelled at await {k}");
            }
        },
    )
    .await;
    // Not vacuous: the driver yields at least once (begin awaits it), so
    // at least one run was cancelled midway.
    assert!(yields >= 1, "{yields}");
    assert_eq!(checks, yields + 1);
    if let Some(guard) = guard {
        assert!(guard.hits() > 0, "the rule fired on some run");
    }
    let mut conn = Arc::into_inner(conn).unwrap().into_inner();
    conn.close().await.unwrap();
    assert!(faults.live_connections().is_empty());
}

#[tokio::test]
async fn with_every_trait_in_scope_no_call_is_ambiguous() {
    // `use dbfault::*` brings Driver, Connection, AsyncDriver and
    // AsyncConnection into scope; each type implements one family only.
    let server = MockServer::new();
    let mut sync_conn = server.driver().connect().unwrap();
    let mut async_conn = server.async_driver().connect().await.unwrap();
    sync_conn.execute("SELECT 1", &[]).unwrap();
    async_conn.execute("SELECT 1", &[]).await.unwrap();
    let sqlite = SqliteDriver::memory("no-ambiguity").unwrap();
    let mut blocking = Blocking::new(sqlite.clone()).connect().await.unwrap();
    assert_eq!(blocking.query("SELECT 1", &[]).await.unwrap().len(), 1);
    assert_eq!(sqlite.connect().unwrap().query("SELECT 1", &[]).unwrap().len(), 1);
}

/// A `disconnect_after_apply` rule that fired kills its connection even if
/// the caller drops the call's future before it returns: the server side
/// does not care that the client gave up. The rule fires on the first poll
/// (counted and journaled as a disconnect); the mock then yields before the
/// server applies the commit and once after, so the future is dropped
/// with the commit not yet applied (1 poll) and applied (2 polls).
#[rstest]
#[case::before_the_server_applied(1, false)]
#[case::after_the_server_applied(2, true)]
#[tokio::test(start_paused = true)]
async fn a_cancelled_disconnect_after_apply_still_kills_the_connection(
    #[case] polls: usize,
    #[case] applied: bool,
) {
    let (server, driver, faults) = mock();
    let mut conn = driver.connect().await.unwrap();
    let id = conn.id();
    conn.begin().await.unwrap();
    conn.execute("INSERT INTO t VALUES (1)", &[]).await.unwrap();
    let guard = faults.arm(Rule::on(Op::Commit).disconnect_after_apply()).unwrap();
    {
        let mut commit = std::pin::pin!(conn.commit());
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        for _ in 0..polls {
            assert!(commit.as_mut().poll(&mut cx).is_pending());
        }
    }
    assert_eq!(guard.hits(), 1, "the rule fired");
    let expected: &[&str] = if applied {
        &["INSERT INTO t VALUES (1)"]
    } else {
        &[]
    };
    assert_eq!(server.committed_sql(), expected);
    // The rule fired, so the connection is dead, as it is when the call
    // runs to its end.
    assert!(conn.is_dead(), "a fired disconnect_after_apply left {id} alive");
    assert!(faults.live_connections().is_empty());
    assert_eq!(server.open_connections(), 0);
    let err = conn.ping().await.expect_err("the connection is dead");
    assert!(err.is_disconnect() && err.is_injected(), "{err}");
}

/// A call that a hang rule holds under `Blocking` (here the sync fault
/// layer over SQLite on tokio's blocking pool) can be given up with a
/// timeout: dropping its future waits for the call's end only for a
/// bounded time, so the test goes on, disarms the rule, and the connection
/// serves again. Run on a `Worker`, so a deadlock fails the test.
#[test]
fn a_hung_call_under_blocking_can_be_given_up_with_a_timeout() {
    let done = common::fault::Worker::spawn(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let driver = FaultyDriver::new(SqliteDriver::memory("review-blocking-hang").unwrap());
        let faults = driver.faults();
        let driver = Blocking::new(driver);
        rt.block_on(async move {
            let mut conn = driver.connect().await.unwrap();
            let hang = faults.arm(Rule::on(Op::Execute).hang()).unwrap();
            let gave_up = tokio::time::timeout(
                Duration::from_millis(100),
                conn.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)", &[]),
            )
            .await;
            assert!(gave_up.is_err(), "the hang rule held the call");
            drop(hang);
            conn.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)", &[])
                .await
        })
    })
    .wait();
    assert!(
        done.is_some(),
        "dropping a hung Blocking call blocked until the rule was disarmed: deadlock"
    );
}
