//! Shared harness for the pool and engine tests: one generic test body per
//! behaviour, run for every driver it applies to.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU64, Ordering};

use dbfault::{
    Clock, ConnId, Connection, Driver, Engine, EventKind, Faults, FaultyDriver, Journal, MockDriver,
    MockServer, Pool, PoolConfig, SqliteDriver,
};

/// Which driver a test body runs against (always under the fault layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Mock,
    Sqlite,
}

/// A pool over a faulty driver, sharing one journal on a manual clock.
pub struct H<D: Driver> {
    pub pool: Pool<FaultyDriver<D>>,
    pub faults: Faults,
    pub journal: Journal,
    pub clock: Clock,
    pub server: Option<MockServer>,
    sqlite: Option<SqliteDriver>,
}

fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn build<D: Driver>(driver: D, cfg: PoolConfig) -> (Pool<FaultyDriver<D>>, Faults, Journal, Clock) {
    let clock = Clock::manual();
    let journal = Journal::with_clock(clock.clone());
    let faulty = FaultyDriver::new(driver).with_journal(journal.clone());
    let faults = faulty.faults();
    let pool = Pool::new(faulty, cfg.journal(journal.clone())).expect("valid config");
    (pool, faults, journal, clock)
}

impl H<MockDriver> {
    pub fn mock(cfg: PoolConfig) -> Self {
        let server = MockServer::new();
        let (pool, faults, journal, clock) = build(server.driver(), cfg);
        H {
            pool,
            faults,
            journal,
            clock,
            server: Some(server),
            sqlite: None,
        }
    }
}

impl H<SqliteDriver> {
    pub fn sqlite(cfg: PoolConfig) -> Self {
        let driver = SqliteDriver::memory(&unique("pooltest")).expect("memory db");
        let mut setup = driver.connect().expect("connect");
        dbfault::run_script(&mut setup, include_str!("../../fixtures/schema.sql")).expect("schema");
        dbfault::run_script(&mut setup, include_str!("../../fixtures/seed.sql")).expect("seed");
        setup.close().expect("close");
        let (pool, faults, journal, clock) = build(driver.clone(), cfg);
        H {
            pool,
            faults,
            journal,
            clock,
            server: None,
            sqlite: Some(driver),
        }
    }
}

impl<D: Driver> H<D> {
    pub fn engine(&self) -> Engine<FaultyDriver<D>> {
        Engine::new(self.pool.clone())
    }

    /// The statement that writes `tag`.
    pub fn write_sql(tag: &str) -> String {
        format!("INSERT INTO writes (tag, step) VALUES ('{tag}', 1)")
    }

    /// Whether the database holds the write `tag`, read outside the pool.
    pub fn committed(&self, tag: &str) -> bool {
        if let Some(server) = &self.server {
            return server.committed_sql().contains(&Self::write_sql(tag));
        }
        let driver = self.sqlite.as_ref().expect("sqlite harness");
        let mut conn = driver.connect().expect("connect");
        let rows = conn
            .query("SELECT count(*) FROM writes WHERE tag = ?1", &[tag.into()])
            .expect("count");
        rows[0].get(0).and_then(dbfault::Value::as_i64) == Some(1)
    }

    /// Driver connections open on the database side.
    pub fn open_connections(&self) -> usize {
        match &self.server {
            Some(server) => server.open_connections(),
            None => self.faults.live_connections().len(),
        }
    }

    /// The event kinds journaled for `conn`, skipping faults.
    pub fn kinds_for(&self, conn: ConnId) -> Vec<EventKind> {
        self.journal
            .kinds_for(conn)
            .into_iter()
            .filter(|k| *k != EventKind::Fault)
            .collect()
    }

    /// The kinds journaled for `conn` since event `since` (exclusive).
    pub fn kinds_since(&self, since: usize, conn: ConnId) -> Vec<EventKind> {
        self.journal
            .events()
            .into_iter()
            .skip(since)
            .filter(|e| e.conn == Some(conn) && e.kind != EventKind::Fault)
            .map(|e| e.kind)
            .collect()
    }

    pub fn assert_consistent(&self) {
        if let Err(why) = self.pool.check_counters() {
            panic!("pool counters broken: {why}\n{}", self.journal.timeline());
        }
    }
}

/// Runs a generic body against the harness for `kind`.
#[macro_export]
macro_rules! on {
    ($kind:expr, $cfg:expr, $body:ident) => {
        match $kind {
            $crate::common::Kind::Mock => $body(&$crate::common::H::mock($cfg)),
            $crate::common::Kind::Sqlite => $body(&$crate::common::H::sqlite($cfg)),
        }
    };
}
