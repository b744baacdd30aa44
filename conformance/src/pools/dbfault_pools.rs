//! This crate's own `Pool` and `AsyncPool`, each under its `Engine`, over
//! SQLite through the `FaultyDriver`.

use super::{checkout_on_task, checkout_on_thread};
use std::sync::Arc;

use dbfault::{
    AsyncEngine, AsyncEngineConnection, AsyncPool, Blocking, Clock, Engine, EngineConnection, Faults,
    FaultyDriver, Journal, Pool, PoolConfig, SqliteDriver,
};
use tokio::runtime::Runtime;

use super::sqlite::Db;
use super::{InRt, dbfault_fail, panic_while, paused_runtime, until_async, until_blocking};
use crate::subject::{Fail, Joiner, Setup, Subject, Target};

const DOWN: &str = "server is down";

fn config(setup: Setup, journal: &Journal) -> PoolConfig {
    PoolConfig::new()
        .size(setup.size)
        .max_overflow(0)
        .pre_ping(setup.validate)
        .timeout(setup.timeout)
        .journal(journal.clone())
}

fn is_query(sql: &str) -> bool {
    sql.trim_start().to_ascii_uppercase().starts_with("SELECT")
}

/// A transaction's control statement: run as the driver's own call, so
/// the fault layer's rules on `Op::Begin`, `Op::Commit` and
/// `Op::Rollback` see it.
enum Control {
    Begin,
    Commit,
    Rollback,
}

impl Control {
    fn of(sql: &str) -> Option<Control> {
        match sql.trim().to_ascii_uppercase().as_str() {
            "BEGIN" => Some(Control::Begin),
            "COMMIT" => Some(Control::Commit),
            "ROLLBACK" => Some(Control::Rollback),
            _ => None,
        }
    }
}

async fn exec_async(conn: &mut AsyncEngineConnection<Async>, sql: &str) -> dbfault::Result<()> {
    use dbfault::AsyncConnection as _;
    match Control::of(sql) {
        Some(control) => {
            let c = conn.pooled().await?;
            match control {
                Control::Begin => c.begin().await,
                Control::Commit => c.commit().await,
                Control::Rollback => c.rollback().await,
            }
        }
        None if is_query(sql) => conn.query(sql, &[]).await.map(drop),
        None => conn.execute(sql, &[]).await.map(drop),
    }
}

// ---- Pool ----

/// dbfault's threaded `Pool` under its `Engine`.
pub struct DbfaultPool;

type Sync = FaultyDriver<SqliteDriver>;

pub struct PoolSubject {
    db: Db,
    faults: Faults,
    engine: Engine<Sync>,
}

impl Target for DbfaultPool {
    type S = PoolSubject;

    fn name(&self) -> &'static str {
        "dbfault Pool"
    }

    fn crates(&self) -> &'static [&'static str] {
        &["dbfault"]
    }

    fn build(&self, setup: Setup) -> Result<PoolSubject, String> {
        let db = Db::new()?;
        let sqlite = SqliteDriver::open(&db.path).map_err(|e| e.to_string())?;
        let driver = FaultyDriver::new(sqlite).with_journal(db.journal.clone());
        let faults = driver.faults();
        let pool = Pool::new(driver, config(setup, &db.journal)).map_err(|e| e.to_string())?;
        Ok(PoolSubject {
            db,
            faults,
            engine: Engine::new(pool),
        })
    }
}

impl Subject for PoolSubject {
    type Conn = EngineConnection<Sync>;

    fn table(&self) -> &str {
        "t"
    }

    fn checkout(&self) -> Result<Self::Conn, Fail> {
        self.engine.connect().map_err(|e| dbfault_fail(&e))
    }

    fn exec(&self, conn: &mut Self::Conn, sql: &str) -> Result<(), Fail> {
        use dbfault::Connection as _;
        let done = match Control::of(sql) {
            Some(control) => conn.pooled().and_then(|c| match control {
                Control::Begin => c.begin(),
                Control::Commit => c.commit(),
                Control::Rollback => c.rollback(),
            }),
            None if is_query(sql) => conn.query(sql, &[]).map(drop),
            None => conn.execute(sql, &[]).map(drop),
        };
        done.map_err(|e| dbfault_fail(&e))
    }

    fn transaction(&self, conn: &mut Self::Conn, sql: &str) -> Result<(), Fail> {
        let mut tx = conn.begin().map_err(|e| dbfault_fail(&e))?;
        tx.execute(sql, &[]).map_err(|e| dbfault_fail(&e))?;
        tx.commit().map_err(|e| dbfault_fail(&e))
    }

    fn in_tx(&self, conn: &mut Self::Conn) -> Result<bool, Fail> {
        use dbfault::Connection as _;
        let pooled = conn.pooled().map_err(|e| dbfault_fail(&e))?;
        Ok(pooled.in_transaction())
    }

    fn give_back(&self, conn: Self::Conn) {
        drop(conn);
    }

    fn panic_holding(&self, conn: Self::Conn) {
        panic_while(conn);
    }

    fn kill(&self, conn: &mut Self::Conn) {
        use dbfault::Connection as _;
        if let Ok(pooled) = conn.pooled() {
            self.faults.kill(pooled.id());
        }
    }

    fn cancel(&self, _: &mut Self::Conn, _: &str) -> Option<()> {
        None
    }

    fn background_checkout(&self, marker: &'static str) -> Joiner {
        let engine = self.engine.clone();
        checkout_on_thread(self.db.journal.clone(), marker, move || {
            engine.connect().map_err(|e| dbfault_fail(&e))
        })
    }

    fn until(&self, done: &dyn Fn() -> bool) {
        until_blocking(done);
    }

    fn faults(&self) -> &Faults {
        &self.faults
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

// ---- AsyncPool ----

/// dbfault's tokio `AsyncPool` under its `AsyncEngine`, on a paused clock.
pub struct DbfaultAsyncPool;

type Async = FaultyDriver<Blocking<SqliteDriver>>;

pub struct AsyncSubject {
    db: Db,
    faults: Faults,
    engine: InRt<AsyncEngine<Async>>,
    rt: Arc<Runtime>,
}

impl Target for DbfaultAsyncPool {
    type S = AsyncSubject;

    fn name(&self) -> &'static str {
        "dbfault AsyncPool"
    }

    fn crates(&self) -> &'static [&'static str] {
        &["dbfault"]
    }

    fn build(&self, setup: Setup) -> Result<AsyncSubject, String> {
        let db = Db::new()?;
        let rt = paused_runtime()?;
        let _in = rt.enter();
        let sqlite = SqliteDriver::open(&db.path).map_err(|e| e.to_string())?;
        let driver = FaultyDriver::new(Blocking::new(sqlite))
            .with_journal(db.journal.clone())
            .with_clock(Clock::tokio());
        let faults = driver.faults();
        let pool = AsyncPool::new(driver, config(setup, &db.journal).clock(Clock::tokio()))
            .map_err(|e| e.to_string())?;
        drop(_in);
        Ok(AsyncSubject {
            db,
            faults,
            engine: InRt::new(AsyncEngine::new(pool), &rt),
            rt,
        })
    }
}

impl Subject for AsyncSubject {
    type Conn = AsyncEngineConnection<Async>;

    fn table(&self) -> &str {
        "t"
    }

    fn checkout(&self) -> Result<Self::Conn, Fail> {
        self.rt
            .block_on(self.engine.connect())
            .map_err(|e| dbfault_fail(&e))
    }

    fn exec(&self, conn: &mut Self::Conn, sql: &str) -> Result<(), Fail> {
        let done = self.rt.block_on(exec_async(conn, sql));
        done.map_err(|e| dbfault_fail(&e))
    }

    fn transaction(&self, conn: &mut Self::Conn, sql: &str) -> Result<(), Fail> {
        self.rt.block_on(async {
            let mut tx = conn.begin().await.map_err(|e| dbfault_fail(&e))?;
            tx.execute(sql, &[]).await.map_err(|e| dbfault_fail(&e))?;
            tx.commit().await.map_err(|e| dbfault_fail(&e))
        })
    }

    fn in_tx(&self, conn: &mut Self::Conn) -> Result<bool, Fail> {
        use dbfault::AsyncConnection as _;
        self.rt.block_on(async {
            let pooled = conn.pooled().await.map_err(|e| dbfault_fail(&e))?;
            Ok(pooled.in_transaction())
        })
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
        use dbfault::AsyncConnection as _;
        let id = self.rt.block_on(async { conn.pooled().await.map(|p| p.id()) });
        if let Ok(id) = id {
            self.faults.kill(id);
        }
    }

    fn cancel(&self, conn: &mut Self::Conn, sql: &str) -> Option<()> {
        self.rt.block_on(async {
            let _ = tokio::time::timeout(std::time::Duration::from_millis(50), exec_async(conn, sql)).await;
        });
        Some(())
    }

    fn background_checkout(&self, marker: &'static str) -> Joiner {
        let engine = self.engine.clone();
        checkout_on_task(&self.rt, self.db.journal.clone(), marker, async move {
            engine.connect().await.map_err(|e| dbfault_fail(&e))
        })
    }

    fn until(&self, done: &dyn Fn() -> bool) {
        until_async(&self.rt, done);
    }

    fn faults(&self) -> &Faults {
        &self.faults
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
