//! Shared harness for the pool and engine tests: one async test body per
//! behaviour, run through both shells (threaded `Pool`, tokio `AsyncPool`)
//! and both drivers (mock, real SQLite), each under the fault layer.
//!
//! The threaded shell runs the body on the test thread with a minimal
//! executor (its calls block, they never return `Pending`), spawns helpers
//! as threads and advances a manual clock. The tokio shell runs the body on
//! a current-thread runtime with a paused clock, spawns tasks and advances
//! tokio's clock. A body sees none of that: it calls the facade below.
#![allow(dead_code, unreachable_pub, unused_imports)]

pub mod shells;

use std::future::Future;
use std::time::Duration;

use dbfault::{
    Clock, ConnId, Connection, EventKind, Faults, Journal, MockServer, PoolConfig, PoolStatus, Result,
    SqliteDriver,
};

pub use shells::{TestConn, TestEngine, TestEngineConn, TestPool, TestTx};

/// Which shell drives the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    Threads,
    Tokio,
}

/// Which driver sits under the fault layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Mock,
    Sqlite,
}

/// A pool over a faulty driver, sharing one journal.
pub struct H<P: TestPool> {
    pub pool: P,
    pub faults: Faults,
    pub journal: Journal,
    pub shell: Shell,
    clock: Clock,
    server: Option<MockServer>,
    sqlite: Option<SqliteDriver>,
}

/// A fresh SQLite database with the fixture schema and seed data.
pub fn sqlite_db() -> SqliteDriver {
    dbfault::testing::fresh_database().expect("the fixture database")
}

/// The statement that writes `tag`.
pub fn write_sql(tag: &str) -> String {
    format!("INSERT INTO writes (tag, step) VALUES ('{tag}', 1)")
}

/// The counters a test compares: (size, checked_in, checked_out, overflow).
pub fn counts(s: PoolStatus) -> (usize, usize, usize, usize) {
    (s.size, s.checked_in, s.checked_out, s.overflow)
}

impl<P: TestPool> H<P> {
    pub fn engine(&self) -> P::Engine {
        self.pool.engine()
    }

    /// Whether the database holds the write `tag`, read outside the pool.
    pub fn committed(&self, tag: &str) -> bool {
        if let Some(server) = &self.server {
            return server.committed_sql().contains(&write_sql(tag));
        }
        let driver = self.sqlite.as_ref().expect("sqlite harness");
        let mut conn = dbfault::Driver::connect(driver).expect("connect");
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
        self.kinds_since(0, conn)
    }

    /// The kinds journaled for `conn` after the first `since` events.
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

    /// Moves the pool's clock forward.
    pub async fn advance(&self, by: Duration) {
        match self.shell {
            Shell::Threads => self.clock.advance(by),
            Shell::Tokio => tokio::time::advance(by).await,
        }
    }

    /// Runs `f` concurrently with the body: a thread, or a task.
    pub fn spawn<T: Send + 'static>(&self, f: impl Future<Output = T> + Send + 'static) -> Joiner<T> {
        match self.shell {
            Shell::Threads => Joiner::Thread(std::thread::spawn(move || shells::block_on(f))),
            Shell::Tokio => Joiner::Task(tokio::spawn(f)),
        }
    }

    /// Waits until `cond` holds (another thread or task got there).
    pub async fn until(&self, mut cond: impl FnMut() -> bool) {
        let mut spins = 0u64;
        while !cond() {
            spins += 1;
            assert!(
                spins < 50_000_000,
                "condition never held\n{}",
                self.journal.timeline()
            );
            match self.shell {
                Shell::Threads => std::thread::yield_now(),
                Shell::Tokio => tokio::task::yield_now().await,
            }
        }
    }

    /// Waits until exactly `n` connections are out: the tokio shell resets
    /// dirty returns on a task of its own.
    pub async fn wait_out(&self, n: usize) {
        self.until(|| self.pool.status().checked_out == n).await;
    }

    /// Waits until the rule behind `guard` fired `n` times.
    pub async fn wait_hits(&self, guard: &dbfault::FaultGuard, n: u64) {
        let reached = match self.shell {
            Shell::Threads => guard.wait_for_hits(n, Duration::from_secs(20)),
            Shell::Tokio => guard.wait_for_hits_async(n, Duration::from_secs(20)).await,
        };
        assert!(reached, "the rule fired {} times, not {n}", guard.hits());
    }
}

/// A spawned thread or task.
pub enum Joiner<T> {
    Thread(std::thread::JoinHandle<T>),
    Task(tokio::task::JoinHandle<T>),
}

impl<T> Joiner<T> {
    pub async fn join(self) -> T {
        match self {
            Joiner::Thread(h) => h.join().expect("the thread panicked"),
            Joiner::Task(h) => h.await.expect("the task panicked"),
        }
    }

    /// Joins a thread or task that must have panicked; returns its payload.
    pub async fn join_panicked(self) -> Box<dyn std::any::Any + Send> {
        match self {
            Joiner::Thread(h) => match h.join() {
                Ok(_) => panic!("the thread must panic"),
                Err(payload) => payload,
            },
            Joiner::Task(h) => match h.await {
                Ok(_) => panic!("the task must panic"),
                Err(e) => e.into_panic(),
            },
        }
    }

    pub fn is_finished(&self) -> bool {
        match self {
            Joiner::Thread(h) => h.is_finished(),
            Joiner::Task(h) => h.is_finished(),
        }
    }
}

/// Runs an async body against every (shell, driver) it is given.
///
/// `on!(shell, kind, config, body)` with `async fn body<P: TestPool>(h: H<P>)`.
#[macro_export]
macro_rules! on {
    ($shell:expr, $kind:expr, $cfg:expr, $body:ident) => {
        $crate::on!($shell, $kind, $cfg, |h| $body(h))
    };
    ($shell:expr, $kind:expr, $cfg:expr, |$h:ident| $call:expr) => {{
        use $crate::common::{Kind, Shell, shells};
        let cfg: dbfault::PoolConfig = $cfg;
        match ($shell, $kind) {
            (Shell::Threads, Kind::Mock) => shells::block_on(async {
                let $h = shells::threads_mock(cfg);
                $call.await
            }),
            (Shell::Threads, Kind::Sqlite) => shells::block_on(async {
                let $h = shells::threads_sqlite(cfg);
                $call.await
            }),
            (Shell::Tokio, Kind::Mock) => shells::paused_runtime().block_on(async {
                let $h = shells::tokio_mock(cfg);
                $call.await
            }),
            (Shell::Tokio, Kind::Sqlite) => shells::paused_runtime().block_on(async {
                let $h = shells::tokio_sqlite(cfg);
                $call.await
            }),
        }
    }};
}

pub(crate) fn harness<P: TestPool>(
    pool_of: impl FnOnce(PoolConfig) -> (P, Faults),
    cfg: PoolConfig,
    shell: Shell,
    clock: Clock,
    journal: Journal,
    server: Option<MockServer>,
    sqlite: Option<SqliteDriver>,
) -> H<P> {
    let (pool, faults) = pool_of(cfg.journal(journal.clone()));
    H {
        pool,
        faults,
        journal,
        shell,
        clock,
        server,
        sqlite,
    }
}

/// Result of a checkout, reduced to the connection id.
pub type IdResult = Result<ConnId>;
