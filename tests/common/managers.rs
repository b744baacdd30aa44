//! Pool managers of plain rusqlite connections on one database file, as
//! a user writes them: r2d2's (what r2d2_sqlite's does), bb8's, and
//! deadpool's (what deadpool-sqlite's does). Tests wrap them in
//! `FaultyManager`.

use std::path::{Path, PathBuf};
#[cfg(feature = "bb8")]
use std::time::Duration;

#[cfg(any(feature = "bb8", feature = "deadpool"))]
use dbfault::{Faults, FaultyManager};

use deadpool::managed::{self, Metrics, RecycleResult};
use deadpool_sync::SyncWrapper;
use rusqlite::Connection;

/// Opens `path` in WAL mode, as every manager here does.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.execute_batch("PRAGMA journal_mode = WAL")?;
    Ok(conn)
}

/// r2d2's and bb8's `ManageConnection` ask for the same three methods
/// (bb8's first two async): a manager of rusqlite connections on one file
/// implements them alike for both.
macro_rules! file_manager {
    ($(#[$doc:meta])* $name:ident: $manager:path $(, $async:ident)?) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name(pub PathBuf);

        impl $manager for $name {
            type Connection = Connection;
            type Error = rusqlite::Error;

            $($async)? fn connect(&self) -> Result<Connection, rusqlite::Error> {
                open(&self.0)
            }

            $($async)? fn is_valid(&self, conn: &mut Connection) -> Result<(), rusqlite::Error> {
                conn.execute_batch("")
            }

            fn has_broken(&self, _: &mut Connection) -> bool {
                false
            }
        }
    };
}

file_manager!(
    /// An r2d2 manager of rusqlite connections (what r2d2_sqlite's does).
    R2d2Sqlite: r2d2::ManageConnection
);
file_manager!(
    /// A bb8 manager of rusqlite connections.
    Bb8Sqlite: bb8::ManageConnection, async
);

/// What deadpool-sqlite 0.14 does: rusqlite connections behind
/// deadpool-sync's `SyncWrapper`, recycled with a trivial query.
#[derive(Debug)]
pub struct DeadpoolSqlite(pub PathBuf);

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

/// A bb8 pool of `size` over [`Bb8Sqlite`] on `path`, under `faults`,
/// with a 5 s connection timeout.
#[cfg(feature = "bb8")]
pub async fn bb8_pool(
    path: &Path,
    faults: &Faults,
    size: u32,
) -> Result<bb8::Pool<FaultyManager<Bb8Sqlite>>, dbfault::ManagerError<rusqlite::Error>> {
    bb8::Pool::builder()
        .max_size(size)
        .connection_timeout(Duration::from_secs(5))
        .build(FaultyManager::new(Bb8Sqlite(path.to_owned()), faults))
        .await
}

/// A deadpool pool over [`DeadpoolSqlite`].
#[cfg(feature = "deadpool")]
pub type DeadpoolPool = managed::Pool<FaultyManager<DeadpoolSqlite>>;

/// A deadpool pool of `size` over [`DeadpoolSqlite`] on `path`, under
/// `faults`.
#[cfg(feature = "deadpool")]
pub fn deadpool_pool(path: &Path, faults: &Faults, size: usize) -> Result<DeadpoolPool, managed::BuildError> {
    managed::Pool::builder(FaultyManager::new(DeadpoolSqlite(path.to_owned()), faults))
        .max_size(size)
        .build()
}

/// A database file with accounts 1 (100) and 2 (0).
pub fn bank() -> (tempfile::TempDir, PathBuf) {
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

/// What account `id` holds, read on a connection of its own.
pub fn balance(path: &Path, id: i64) -> i64 {
    open(path)
        .unwrap()
        .query_row("SELECT balance FROM accounts WHERE id = ?1", [id], |r| r.get(0))
        .unwrap()
}

/// The user's transfer of `amount` from account 1 to 2: rusqlite's own
/// API, one transaction.
pub fn transfer(conn: &mut Connection, amount: i64) -> rusqlite::Result<()> {
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
