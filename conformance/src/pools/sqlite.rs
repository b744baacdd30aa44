//! r2d2 + r2d2_sqlite, bb8 (with a rusqlite manager written as a user
//! would) and deadpool-sqlite, each around dbfault's `FaultyManager`
//! over one SQLite database file in WAL mode.

use super::{checkout_on_task, checkout_on_thread};
use std::path::PathBuf;
use std::sync::Arc;

use dbfault::{Faults, FaultyManager, Journal};
use rusqlite::Connection;
use tokio::runtime::Runtime;

use super::{InRt, panic_while, paused_runtime, sqlite_fail, until_async, until_blocking};
use crate::subject::{Fail, Joiner, Setup, Subject, Target};

/// The cause a checkout should carry in an outage: what the faulty
/// manager's refused connect says.
const DOWN: &str = "server is down";

/// A fresh database file holding the empty table `t`, in WAL mode (which
/// the hooks need to cut a commit after it was applied; it stays set in
/// the file for every connection).
pub struct Db {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub faults: Faults,
    pub journal: Journal,
}

impl Db {
    pub fn new() -> Result<Db, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("no temporary directory: {e}"))?;
        let path = dir.path().join("conformance.db");
        Connection::open(&path)
            .and_then(|c| c.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER)"))
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let journal = Journal::new();
        let faults = Faults::new().with_journal(journal.clone());
        Ok(Db {
            _dir: dir,
            path,
            faults,
            journal,
        })
    }

    pub fn rows(&self) -> i64 {
        Connection::open(&self.path)
            .and_then(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)))
            .unwrap_or(-1)
    }
}

fn exec_sqlite(conn: &Connection, sql: &str) -> Result<(), Fail> {
    conn.execute_batch(sql).map_err(|e| sqlite_fail(&e))
}

// ---- r2d2 ----

/// r2d2 0.8 with r2d2_sqlite's manager.
pub struct R2d2Sqlite;

type R2d2Manager = FaultyManager<r2d2_sqlite::SqliteConnectionManager>;

pub struct R2d2Subject {
    db: Db,
    pool: r2d2::Pool<R2d2Manager>,
}

impl Target for R2d2Sqlite {
    type S = R2d2Subject;

    fn name(&self) -> &'static str {
        "r2d2 + r2d2_sqlite"
    }

    fn crates(&self) -> &'static [&'static str] {
        &["r2d2", "r2d2_sqlite"]
    }

    fn build(&self, setup: Setup) -> Result<R2d2Subject, String> {
        let db = Db::new()?;
        let manager = r2d2_sqlite::SqliteConnectionManager::file(&db.path);
        let pool = r2d2::Pool::builder()
            .max_size(setup.size as u32)
            .min_idle(Some(0))
            .test_on_check_out(setup.validate)
            .connection_timeout(setup.timeout)
            .build(FaultyManager::new(manager, &db.faults))
            .map_err(|e| format!("r2d2 pool: {e}"))?;
        Ok(R2d2Subject { db, pool })
    }
}

fn r2d2_fail(err: &r2d2::Error) -> Fail {
    Fail::of("r2d2::Error (timeout)", err)
}

impl Subject for R2d2Subject {
    type Conn = r2d2::PooledConnection<R2d2Manager>;

    fn table(&self) -> &str {
        "t"
    }

    fn checkout(&self) -> Result<Self::Conn, Fail> {
        self.pool.get().map_err(|e| r2d2_fail(&e))
    }

    fn exec(&self, conn: &mut Self::Conn, sql: &str) -> Result<(), Fail> {
        exec_sqlite(conn, sql)
    }

    fn in_tx(&self, conn: &mut Self::Conn) -> Result<bool, Fail> {
        Ok(!conn.is_autocommit())
    }

    fn give_back(&self, conn: Self::Conn) {
        drop(conn);
    }

    fn panic_holding(&self, conn: Self::Conn) {
        panic_while(conn);
    }

    fn kill(&self, conn: &mut Self::Conn) {
        self.db.faults.kill(conn.id());
    }

    fn cancel(&self, _: &mut Self::Conn, _: &str) -> Option<()> {
        None
    }

    fn background_checkout(&self, marker: &'static str) -> Joiner {
        let pool = self.pool.clone();
        checkout_on_thread(self.db.journal.clone(), marker, move || {
            pool.get().map_err(|e| r2d2_fail(&e))
        })
    }

    fn until(&self, done: &dyn Fn() -> bool) {
        until_blocking(done);
    }

    fn faults(&self) -> &Faults {
        &self.db.faults
    }

    fn journal(&self) -> &Journal {
        &self.db.journal
    }

    fn cause(&self) -> String {
        DOWN.to_owned()
    }

    fn rows(&self) -> i64 {
        self.db.rows()
    }
}

// ---- bb8 ----

/// bb8 0.9 with a rusqlite manager written as a user would: open the
/// file, validate with `SELECT 1`, never broken by itself.
pub struct Bb8Sqlite;

#[derive(Debug)]
pub struct Bb8Manager(PathBuf);

impl bb8::ManageConnection for Bb8Manager {
    type Connection = Connection;
    type Error = rusqlite::Error;

    async fn connect(&self) -> Result<Connection, rusqlite::Error> {
        Connection::open(&self.0)
    }

    async fn is_valid(&self, conn: &mut Connection) -> Result<(), rusqlite::Error> {
        conn.query_row("SELECT 1", [], |_| Ok(()))
    }

    fn has_broken(&self, _: &mut Connection) -> bool {
        false
    }
}

type Bb8Pool = bb8::Pool<FaultyManager<Bb8Manager>>;

pub struct Bb8Subject {
    db: Db,
    pool: InRt<Bb8Pool>,
    rt: Arc<Runtime>,
}

impl Target for Bb8Sqlite {
    type S = Bb8Subject;

    fn name(&self) -> &'static str {
        "bb8 + rusqlite"
    }

    fn crates(&self) -> &'static [&'static str] {
        &["bb8"]
    }

    fn build(&self, setup: Setup) -> Result<Bb8Subject, String> {
        let db = Db::new()?;
        let rt = paused_runtime()?;
        let manager = FaultyManager::new(Bb8Manager(db.path.clone()), &db.faults);
        let pool = rt.block_on(
            bb8::Pool::builder()
                .max_size(setup.size as u32)
                .test_on_check_out(setup.validate)
                .connection_timeout(setup.timeout)
                .build(manager),
        );
        let pool = pool.map_err(|e| format!("bb8 pool: {e}"))?;
        Ok(Bb8Subject {
            db,
            pool: InRt::new(pool, &rt),
            rt,
        })
    }
}

fn bb8_fail<E: std::error::Error + 'static>(err: &bb8::RunError<E>) -> Fail {
    let code = match err {
        bb8::RunError::User(_) => "RunError::User",
        bb8::RunError::TimedOut => "RunError::TimedOut",
    };
    Fail::of(code, err)
}

impl Subject for Bb8Subject {
    type Conn = bb8::PooledConnection<'static, FaultyManager<Bb8Manager>>;

    fn table(&self) -> &str {
        "t"
    }

    fn checkout(&self) -> Result<Self::Conn, Fail> {
        self.rt.block_on(self.pool.get_owned()).map_err(|e| bb8_fail(&e))
    }

    fn exec(&self, conn: &mut Self::Conn, sql: &str) -> Result<(), Fail> {
        exec_sqlite(conn, sql)
    }

    fn in_tx(&self, conn: &mut Self::Conn) -> Result<bool, Fail> {
        Ok(!conn.is_autocommit())
    }

    fn give_back(&self, conn: Self::Conn) {
        let _in = self.rt.enter();
        drop(conn);
        self.rt.block_on(tokio::task::yield_now());
    }

    fn panic_holding(&self, conn: Self::Conn) {
        let _in = self.rt.enter();
        panic_while(conn);
        self.rt.block_on(tokio::task::yield_now());
    }

    fn kill(&self, conn: &mut Self::Conn) {
        self.db.faults.kill(conn.id());
    }

    fn cancel(&self, _: &mut Self::Conn, _: &str) -> Option<()> {
        None
    }

    fn background_checkout(&self, marker: &'static str) -> Joiner {
        let pool = self.pool.clone();
        checkout_on_task(&self.rt, self.db.journal.clone(), marker, async move {
            pool.get_owned().await.map_err(|e| bb8_fail(&e))
        })
    }

    fn until(&self, done: &dyn Fn() -> bool) {
        until_async(&self.rt, done);
    }

    fn faults(&self) -> &Faults {
        &self.db.faults
    }

    fn journal(&self) -> &Journal {
        &self.db.journal
    }

    fn cause(&self) -> String {
        DOWN.to_owned()
    }

    fn rows(&self) -> i64 {
        self.db.rows()
    }
}

// ---- deadpool-sqlite ----

/// deadpool 0.13 with deadpool-sqlite 0.14's own manager.
pub struct DeadpoolSqlite;

type DpManager = FaultyManager<deadpool_sqlite::Manager>;

pub struct DeadpoolSubject {
    db: Db,
    pool: InRt<deadpool::managed::Pool<DpManager>>,
    rt: Arc<Runtime>,
}

impl Target for DeadpoolSqlite {
    type S = DeadpoolSubject;

    fn name(&self) -> &'static str {
        "deadpool-sqlite"
    }

    fn crates(&self) -> &'static [&'static str] {
        &["deadpool", "deadpool-sqlite"]
    }

    fn build(&self, setup: Setup) -> Result<DeadpoolSubject, String> {
        let db = Db::new()?;
        let rt = paused_runtime()?;
        let manager = deadpool_sqlite::Manager::from_config(
            &deadpool_sqlite::Config::new(&db.path),
            deadpool::Runtime::Tokio1,
        );
        let pool = deadpool::managed::Pool::builder(FaultyManager::new(manager, &db.faults))
            .max_size(setup.size)
            .wait_timeout(Some(setup.timeout))
            .create_timeout(Some(setup.timeout * 10))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|e| format!("deadpool pool: {e}"))?;
        Ok(DeadpoolSubject {
            db,
            pool: InRt::new(pool, &rt),
            rt,
        })
    }
}

fn deadpool_fail<E: std::error::Error + 'static>(err: &deadpool::managed::PoolError<E>) -> Fail {
    use deadpool::managed::PoolError;
    let code = match err {
        PoolError::Timeout(_) => "PoolError::Timeout",
        PoolError::Backend(_) => "PoolError::Backend",
        PoolError::Closed => "PoolError::Closed",
        PoolError::NoRuntimeSpecified => "PoolError::NoRuntimeSpecified",
        PoolError::PostCreateHook(_) => "PoolError::PostCreateHook",
    };
    Fail::of(code, err)
}

/// Runs `f` on a deadpool-sqlite connection, on its blocking thread.
fn interact<R: Send + 'static>(
    rt: &Runtime,
    conn: &deadpool::managed::Object<DpManager>,
    f: impl FnOnce(&mut Connection) -> Result<R, Fail> + Send + 'static,
) -> Result<R, Fail> {
    rt.block_on(conn.interact(f))
        .unwrap_or_else(|e| Err(Fail::new("InteractError", e.to_string())))
}

impl Subject for DeadpoolSubject {
    type Conn = deadpool::managed::Object<DpManager>;

    fn table(&self) -> &str {
        "t"
    }

    fn checkout(&self) -> Result<Self::Conn, Fail> {
        self.rt.block_on(self.pool.get()).map_err(|e| deadpool_fail(&e))
    }

    fn exec(&self, conn: &mut Self::Conn, sql: &str) -> Result<(), Fail> {
        let sql = sql.to_owned();
        interact(&self.rt, conn, move |c| exec_sqlite(c, &sql))
    }

    fn in_tx(&self, conn: &mut Self::Conn) -> Result<bool, Fail> {
        interact(&self.rt, conn, |c| Ok(!c.is_autocommit()))
    }

    fn give_back(&self, conn: Self::Conn) {
        let _in = self.rt.enter();
        drop(conn);
    }

    fn panic_holding(&self, conn: Self::Conn) {
        let _in = self.rt.enter();
        panic_while(conn);
    }

    fn kill(&self, conn: &mut Self::Conn) {
        self.db.faults.kill(conn.id());
    }

    fn cancel(&self, _: &mut Self::Conn, _: &str) -> Option<()> {
        None
    }

    fn background_checkout(&self, marker: &'static str) -> Joiner {
        let pool = self.pool.clone();
        checkout_on_task(&self.rt, self.db.journal.clone(), marker, async move {
            pool.get().await.map_err(|e| deadpool_fail(&e))
        })
    }

    fn until(&self, done: &dyn Fn() -> bool) {
        until_async(&self.rt, done);
    }

    fn faults(&self) -> &Faults {
        &self.db.faults
    }

    fn journal(&self) -> &Journal {
        &self.db.journal
    }

    fn cause(&self) -> String {
        DOWN.to_owned()
    }

    fn rows(&self) -> i64 {
        self.db.rows()
    }
}
