//! The fault layer over async drivers, on tokio's paused clock: delays and
//! hangs wait on virtual time, `wait_for_hits_async` times out exactly,
//! and an injected disconnect kills the connection as it does in sync
//! code. Also: with every trait in scope, no call is ambiguous.

use std::time::Duration;

use dbfault::*;
use rstest::rstest;
use tokio::time::Instant;

fn mock() -> (MockServer, FaultyDriver<AsyncMockDriver>, Faults) {
    let server = MockServer::new();
    let driver = FaultyDriver::new(server.async_driver());
    let faults = driver.faults();
    (server, driver, faults)
}

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

#[rstest]
#[case::sync_mock(false)]
#[case::async_mock(true)]
fn an_injected_error_of_class_disconnect_kills_the_connection(#[case] asynchronous: bool) {
    let rule = Rule::on(Op::Execute).times(1).error_with(
        ErrorClass::Disconnect,
        "57P01",
        "terminating connection due to administrator command",
    );
    if asynchronous {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(async {
                let (_server, driver, faults) = mock();
                let _g = faults.arm(rule).unwrap();
                let mut conn = driver.connect().await.unwrap();
                assert!(!conn.is_broken());
                assert_eq!(
                    conn.execute("SELECT 1", &[]).await.unwrap_err().code(),
                    Some("57P01")
                );
                assert!(conn.is_broken(), "a killed connection is broken");
                assert_eq!(
                    conn.execute("SELECT 1", &[]).await.unwrap_err().kind(),
                    ErrorKind::Closed
                );
            });
    } else {
        let server = MockServer::new();
        let driver = FaultyDriver::new(server.driver());
        let _g = driver.faults().arm(rule).unwrap();
        let mut conn = driver.connect().unwrap();
        assert!(!conn.is_broken());
        assert_eq!(conn.execute("SELECT 1", &[]).unwrap_err().code(), Some("57P01"));
        assert!(conn.is_broken(), "a killed connection is broken");
        assert_eq!(
            conn.execute("SELECT 1", &[]).unwrap_err().kind(),
            ErrorKind::Closed
        );
        assert_eq!(server.open_connections(), 0, "the server side is closed too");
    }
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
