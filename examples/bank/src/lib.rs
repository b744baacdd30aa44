//! A small bank: accounts and transfers, on r2d2 and r2d2_sqlite, written
//! with rusqlite's own API. Nothing here knows of dbfault: its tests put
//! the faults around the pool it ships.

use std::borrow::BorrowMut;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use r2d2::ManageConnection;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OptionalExtension, params};

/// What can go wrong in a bank operation.
#[derive(Debug)]
pub enum BankError {
    /// No connection could be had from the pool.
    Pool(r2d2::Error),
    /// The database refused or failed a statement.
    Sql(rusqlite::Error),
    /// The account does not exist.
    NoAccount(i64),
    /// The account holds less than the amount.
    Insufficient {
        /// The account.
        account: i64,
        /// What it holds.
        balance: i64,
    },
}

impl fmt::Display for BankError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BankError::Pool(err) => write!(f, "no connection: {err}"),
            BankError::Sql(err) => write!(f, "database error: {err}"),
            BankError::NoAccount(id) => write!(f, "no account {id}"),
            BankError::Insufficient { account, balance } => {
                write!(f, "account {account} holds only {balance}")
            }
        }
    }
}

impl std::error::Error for BankError {}

impl From<r2d2::Error> for BankError {
    fn from(err: r2d2::Error) -> Self {
        BankError::Pool(err)
    }
}

impl From<rusqlite::Error> for BankError {
    fn from(err: rusqlite::Error) -> Self {
        BankError::Sql(err)
    }
}

/// The manager the bank ships with: a database file in WAL mode.
pub fn manager(path: &Path) -> SqliteConnectionManager {
    SqliteConnectionManager::file(path).with_init(|conn| conn.execute_batch("PRAGMA journal_mode = WAL;"))
}

/// The bank, over any r2d2 manager of rusqlite connections.
pub struct Bank<M: ManageConnection = SqliteConnectionManager> {
    pool: r2d2::Pool<M>,
}

impl Bank {
    /// Opens the bank's database file with the manager it ships with.
    pub fn open(path: &Path) -> Result<Bank, BankError> {
        Bank::with_manager(manager(path))
    }
}

impl<M> Bank<M>
where
    M: ManageConnection,
    M::Connection: BorrowMut<Connection>,
{
    /// The bank over `manager`'s connections: a pool of four, that waits
    /// at most a second for a connection, and creates its table.
    pub fn with_manager(manager: M) -> Result<Self, BankError> {
        let pool = r2d2::Pool::builder()
            .max_size(4)
            .connection_timeout(Duration::from_secs(1))
            .build(manager)?;
        db(&mut pool.get()?).execute_batch(
            "CREATE TABLE IF NOT EXISTS accounts (
                 id INTEGER PRIMARY KEY,
                 balance INTEGER NOT NULL CHECK (balance >= 0)
             );",
        )?;
        Ok(Bank { pool })
    }

    /// The pool, for what the bank does not wrap.
    pub fn pool(&self) -> &r2d2::Pool<M> {
        &self.pool
    }

    /// Opens an account holding `balance`.
    pub fn open_account(&self, id: i64, balance: i64) -> Result<(), BankError> {
        db(&mut self.pool.get()?).execute(
            "INSERT INTO accounts (id, balance) VALUES (?1, ?2)",
            params![id, balance],
        )?;
        Ok(())
    }

    /// What account `id` holds.
    pub fn balance(&self, id: i64) -> Result<i64, BankError> {
        db(&mut self.pool.get()?)
            .query_row("SELECT balance FROM accounts WHERE id = ?1", [id], |row| {
                row.get(0)
            })
            .optional()?
            .ok_or(BankError::NoAccount(id))
    }

    /// Moves `amount` from one account to another, all or nothing.
    pub fn transfer(&self, from: i64, to: i64, amount: i64) -> Result<(), BankError> {
        transfer(db(&mut self.pool.get()?), from, to, amount)
    }
}

/// The rusqlite connection behind a pooled one, whatever the manager.
fn db<M>(conn: &mut r2d2::PooledConnection<M>) -> &mut Connection
where
    M: ManageConnection,
    M::Connection: BorrowMut<Connection>,
{
    (**conn).borrow_mut()
}

/// The transfer itself, on one connection, in one transaction.
pub fn transfer(conn: &mut Connection, from: i64, to: i64, amount: i64) -> Result<(), BankError> {
    let tx = conn.transaction()?;
    let balance: i64 = tx
        .query_row("SELECT balance FROM accounts WHERE id = ?1", [from], |row| {
            row.get(0)
        })
        .optional()?
        .ok_or(BankError::NoAccount(from))?;
    if balance < amount {
        return Err(BankError::Insufficient {
            account: from,
            balance,
        });
    }
    tx.execute(
        "UPDATE accounts SET balance = balance - ?1 WHERE id = ?2",
        params![amount, from],
    )?;
    if tx.execute(
        "UPDATE accounts SET balance = balance + ?1 WHERE id = ?2",
        params![amount, to],
    )? != 1
    {
        return Err(BankError::NoAccount(to));
    }
    tx.commit()?;
    Ok(())
}
