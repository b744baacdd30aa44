//! `FaultyManager` around bb8 and deadpool managers of real rusqlite
//! connections, on tokio's paused clock.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dbfault::{ErrorClass, EventKind, Faulted, Faults, FaultyManager, Journal, Op, Rule};
use deadpool::managed::{self, Metrics, RecycleResult};
use deadpool_sync::SyncWrapper;
use rusqlite::Connection;

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.execute_batch("PRAGMA journal_mode = WAL")?;
    Ok(conn)
}

/// A database file with accounts 1 (100) and 2 (0).
fn bank() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bank.db");
    open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
             INSERT INTO accounts VALUES (1, 100), (2, 0);",
        )
        .unwrap();
    (dir, path)
}

fn balance(path: &Path, id: i64) -> i64 {
    open(path)
        .unwrap()
        .query_row("SELECT balance FROM accounts WHERE id = ?1", [id], |r| r.get(0))
        .unwrap()
}

fn transfer(conn: &mut Connection, amount: i64) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute(
        "UPDATE accounts SET balance = balance - ?1 WHERE id = 1",
        [amount],
    )?;
    tx.execute(
        "UPDATE accounts SET balance = balance + ?1 WHERE id = 2",
        [amount],
    )?;
    tx.commit()
}

/// A bb8 manager of rusqlite connections, as a user would write one.
#[derive(Debug)]
struct Bb8Sqlite(PathBuf);

impl bb8::ManageConnection for Bb8Sqlite {
    type Connection = Connection;
    type Error = rusqlite::Error;

    async fn connect(&self) -> Result<Connection, rusqlite::Error> {
        open(&self.0)
    }

    async fn is_valid(&self, conn: &mut Connection) -> Result<(), rusqlite::Error> {
        conn.execute_batch("")
    }

    fn has_broken(&self, _: &mut Connection) -> bool {
        false
    }
}

async fn bb8_pool(path: &Path, faults: &Faults, size: u32) -> bb8::Pool<FaultyManager<Bb8Sqlite>> {
    bb8::Pool::builder()
        .max_size(size)
        .connection_timeout(Duration::from_secs(5))
        .build(FaultyManager::new(Bb8Sqlite(path.to_owned()), faults))
        .await
        .unwrap()
}

/// What deadpool-sqlite 0.14 does: rusqlite connections behind
/// deadpool-sync's `SyncWrapper`, recycled with a trivial query.
#[derive(Debug)]
struct DeadpoolSqlite(PathBuf);

impl managed::Manager for DeadpoolSqlite {
    type Type = SyncWrapper<Connection>;
    type Error = rusqlite::Error;

    async fn create(&self) -> Result<Self::Type, rusqlite::Error> {
        let path = self.0.clone();
        SyncWrapper::new(deadpool::Runtime::Tokio1, move || open(&path)).await
    }

    async fn recycle(&self, conn: &mut Self::Type, _: &Metrics) -> RecycleResult<rusqlite::Error> {
        let answer = conn
            .interact(|conn| conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)))
            .await
            .map_err(|err| managed::RecycleError::message(err.to_string()))?;
        answer.map(drop).map_err(managed::RecycleError::Backend)
    }
}

type DeadpoolPool = managed::Pool<FaultyManager<DeadpoolSqlite>>;

fn deadpool_pool(path: &Path, faults: &Faults, size: usize) -> DeadpoolPool {
    managed::Pool::builder(FaultyManager::new(DeadpoolSqlite(path.to_owned()), faults))
        .max_size(size)
        .build()
        .unwrap()
}

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
    let pool = bb8_pool(&path, &faults, 2).await;
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
    let pool = bb8_pool(&path, &faults, 1).await;
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
    let pool = bb8_pool(&path, &faults, 1).await;
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
    let pool = bb8_pool(&path, &faults, 1).await;
    drop(pool.get().await.unwrap());
    assert!(start.elapsed() >= Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn bb8_hands_the_next_borrower_a_transaction_left_open() {
    let (_dir, path) = bank();
    let faults = Faults::new();
    let pool = bb8_pool(&path, &faults, 1).await;
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
    let pool = deadpool_pool(&path, &faults, 2);
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
    let pool = deadpool_pool(&path, &faults, 1);
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
    let pool = deadpool_pool(&path, &faults, 1);
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
    let pool = deadpool_pool(&path, &faults, 1);
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
