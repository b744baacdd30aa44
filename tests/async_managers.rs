//! `FaultyManager` around bb8 and deadpool managers of real rusqlite
//! connections, on tokio's paused clock.

mod common;

use std::time::Duration;

use common::managers::{balance, bank, bb8_pool, deadpool_pool, transfer};
use dbfault::{ErrorClass, EventKind, Faulted, Faults, Journal, Op, Rule};
use deadpool_sync::SyncWrapper;
use rusqlite::Connection;

/// Runs `f` on a deadpool connection's rusqlite connection.
async fn interact<R: Send + 'static>(
    conn: &Faulted<SyncWrapper<Connection>>,
    f: impl FnOnce(&mut Connection) -> R + Send + 'static,
) -> R {
    conn.interact(f).await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn bb8_drops_what_a_restart_killed_and_recovers() {
    let (_dir, path) = bank();
    let faults = Faults::new();
    let pool = bb8_pool(&path, &faults, 2).await.unwrap();
    let mut conn = pool.get().await.unwrap();
    let dead = conn.id();
    faults.restart();
    assert!(
        transfer(&mut conn, 10).is_err(),
        "the hooks refuse a dead connection"
    );
    drop(conn);
    let mut conn = pool.get().await.unwrap();
    assert_ne!(conn.id(), dead);
    transfer(&mut conn, 10).unwrap();
    assert_eq!(balance(&path, 2), 10);
}

#[tokio::test(start_paused = true)]
async fn bb8_times_out_in_an_outage_and_the_cause_is_only_in_the_journal() {
    let (_dir, path) = bank();
    let journal = Journal::new();
    let faults = Faults::new().with_journal(journal.clone());
    let pool = bb8_pool(&path, &faults, 1).await.unwrap();
    drop(pool.get().await.unwrap());
    faults.outage();
    let err = pool.get().await.unwrap_err();
    // bb8 answers a bare timeout (bb8 #141); the refused connects are
    // journaled.
    assert!(matches!(err, bb8::RunError::TimedOut), "{err:?}");
    let refused = journal
        .events()
        .into_iter()
        .filter(|e| e.kind == EventKind::ConnectFailed && e.detail.contains("server is down"))
        .count();
    assert!(refused >= 1, "{}", journal.to_text());
    faults.restore();
    pool.get().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn bb8_replaces_a_connection_whose_validation_fails() {
    let (_dir, path) = bank();
    let faults = Faults::new();
    let pool = bb8_pool(&path, &faults, 1).await.unwrap();
    let first = pool.get().await.unwrap().id();
    let ping = faults
        .arm(Rule::on(Op::Ping).times(1).error(ErrorClass::Transient))
        .unwrap();
    let conn = pool.get().await.unwrap();
    assert_eq!(ping.hits(), 1);
    assert_ne!(conn.id(), first);
}

#[tokio::test(start_paused = true)]
async fn bb8_a_slow_connect_waits_on_tokios_clock() {
    let (_dir, path) = bank();
    let faults = Faults::new();
    let _slow = faults
        .arm(Rule::on(Op::Connect).delay(Duration::from_secs(2)))
        .unwrap();
    let start = tokio::time::Instant::now();
    let pool = bb8_pool(&path, &faults, 1).await.unwrap();
    drop(pool.get().await.unwrap());
    assert!(start.elapsed() >= Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn bb8_hands_the_next_borrower_a_transaction_left_open() {
    let (_dir, path) = bank();
    let faults = Faults::new();
    let pool = bb8_pool(&path, &faults, 1).await.unwrap();
    let conn = pool.get().await.unwrap();
    conn.execute_batch("BEGIN; UPDATE accounts SET balance = 0 WHERE id = 1;")
        .unwrap();
    drop(conn);
    assert!(
        !pool.get().await.unwrap().is_autocommit(),
        "bb8 resets nothing on return"
    );
}

#[tokio::test]
async fn deadpool_drops_what_a_restart_killed_and_recovers() {
    let (_dir, path) = bank();
    let faults = Faults::new();
    let pool = deadpool_pool(&path, &faults, 2).unwrap();
    let conn = pool.get().await.unwrap();
    let dead = conn.id();
    faults.restart();
    assert!(interact(&conn, |c| transfer(c, 10)).await.is_err());
    drop(conn);
    // deadpool has no has_broken: the recycle at the next checkout fails
    // for the dead connection, and the pool makes a new one.
    let conn = pool.get().await.unwrap();
    assert_ne!(conn.id(), dead);
    interact(&conn, |c| transfer(c, 10)).await.unwrap();
    assert_eq!(balance(&path, 2), 10);
}

#[tokio::test]
async fn deadpool_reports_the_refused_connect_itself() {
    let (_dir, path) = bank();
    let faults = Faults::new();
    let pool = deadpool_pool(&path, &faults, 1).unwrap();
    faults.outage();
    let err = pool.get().await.unwrap_err();
    assert!(err.to_string().contains("server is down"), "{err}");
    faults.restore();
    assert!(!pool.get().await.unwrap().is_dead());
}

#[tokio::test]
async fn deadpool_sqlites_connections_are_attached_a_cut_commit_reaches_them() {
    let (_dir, path) = bank();
    let faults = Faults::new();
    let pool = deadpool_pool(&path, &faults, 1).unwrap();
    let _cut = faults
        .arm(Rule::on(Op::Commit).times(1).disconnect_after_apply())
        .unwrap();
    let conn = pool.get().await.unwrap();
    assert!(interact(&conn, |c| transfer(c, 25)).await.is_err());
    assert_eq!(balance(&path, 1), 75, "applied although reported failed");
    assert!(conn.is_dead());
}

#[tokio::test]
async fn deadpool_hands_the_next_borrower_a_transaction_left_open() {
    let (_dir, path) = bank();
    let faults = Faults::new();
    let pool = deadpool_pool(&path, &faults, 1).unwrap();
    let conn = pool.get().await.unwrap();
    interact(&conn, |c| {
        c.execute_batch("BEGIN; UPDATE accounts SET balance = 0 WHERE id = 1;")
    })
    .await
    .unwrap();
    drop(conn);
    let next = pool.get().await.unwrap();
    assert!(
        !interact(&next, |c| c.is_autocommit()).await,
        "deadpool resets nothing on return"
    );
}
