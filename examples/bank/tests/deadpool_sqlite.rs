//! The same bank data on deadpool-sqlite 0.14, the other pool most
//! rusqlite applications run, with `FaultyManager` around its manager.

use dbfault::{Faults, FaultyManager, Op, Rule};
use deadpool_sqlite::{Config, Manager, Runtime};

type Pool = deadpool::managed::Pool<FaultyManager<Manager>>;

/// A pool of deadpool-sqlite's own manager with a fault layer around it,
/// over a WAL database holding accounts 1 (100) and 2 (0).
async fn pool(dir: &tempfile::TempDir, faults: &Faults) -> Pool {
    let path = dir.path().join("bank.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
         INSERT INTO accounts VALUES (1, 100), (2, 0);",
    )
    .unwrap();
    let manager = Manager::from_config(&Config::new(path), Runtime::Tokio1);
    deadpool::managed::Pool::builder(FaultyManager::new(manager, faults))
        .max_size(1)
        .build()
        .unwrap()
}

async fn run<R: Send + 'static>(
    pool: &Pool,
    f: impl FnOnce(&mut rusqlite::Connection) -> R + Send + 'static,
) -> R {
    pool.get().await.unwrap().interact(f).await.unwrap()
}

#[tokio::test]
async fn a_restart_is_survived_and_a_cut_commit_was_applied() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let pool = pool(&dir, &faults).await;
    let _cut = faults
        .arm(Rule::on(Op::Commit).times(1).disconnect_after_apply())
        .unwrap();
    let result = run(&pool, |c| bank::transfer(c, 1, 2, 30)).await;
    assert!(result.is_err(), "reported failed");
    faults.restart();
    // The recycle refuses the dead connection; a new one is made.
    let moved = run(&pool, |c| {
        c.query_row("SELECT balance FROM accounts WHERE id = 2", [], |r| {
            r.get::<_, i64>(0)
        })
    })
    .await;
    assert_eq!(moved.unwrap(), 30, "though it was applied");
}

#[tokio::test]
async fn deadpool_sqlite_hands_the_next_borrower_a_transaction_left_open() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(&dir, &Faults::new()).await;
    run(&pool, |c| {
        c.execute_batch("BEGIN; UPDATE accounts SET balance = 0 WHERE id = 1;")
    })
    .await
    .unwrap();
    assert!(
        !run(&pool, |c| c.is_autocommit()).await,
        "its recycle does not roll back"
    );
}
