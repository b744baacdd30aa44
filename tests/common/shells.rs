//! Pool and engine bodies: one async test body per behaviour, run by
//! [`on!`] through both shells (threaded `Pool`, tokio `AsyncPool`) and
//! both backends (mock, real SQLite), each under the fault layer.
//!
//! The threaded shell runs the body on the test thread with a minimal
//! executor (its calls block, they never return `Pending`), spawns helpers
//! as threads and advances a manual clock. The tokio shell runs the body on
//! a current-thread runtime with a paused clock, spawns tasks and advances
//! tokio's clock. A body sees none of that: it calls the testing kit's
//! facade (`dbfault::testing::shell`, re-exported here under the names the
//! bodies use) and [`H`].

use std::future::Future;
use std::time::Duration;

pub use dbfault::testing::shell::{
    AnyConn as TestConn, AnyEngine as TestEngine, AnyEngineConn as TestEngineConn, AnyPool as TestPool,
    AnyTx as TestTx, block_on,
};
use dbfault::{
    AsyncDriver, AsyncMockDriver, AsyncPool, Clock, ConnId, Driver, EventKind, Faults, FaultyDriver, Journal,
    MockServer, Pool, PoolConfig, PoolStatus, Result,
};

use super::Backend;
pub use super::write_sql;

/// Which shell drives the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    Threads,
    Tokio,
}

/// Runs an async body against every (shell, backend) it is given.
///
/// `on!(shell, kind, config, body)` with `async fn body<P: TestPool>(h:
/// H<P>)`, or `on!(shell, kind, config, |h| call(h, ...))`. The kind names
/// the backend; the shell picks its sync or async form ([`Kind::on`]).
///
/// [`Kind::on`]: super::Kind::on
#[macro_export]
macro_rules! on {
    ($shell:expr, $kind:expr, $cfg:expr, $body:ident) => {
        $crate::on!($shell, $kind, $cfg, |h| $body(h))
    };
    ($shell:expr, $kind:expr, $cfg:expr, |$h:ident| $call:expr) => {{
        let cfg: ::dbfault::PoolConfig = $cfg;
        if !$crate::common::Kind::available($kind) {
            return;
        }
        $crate::with_driver!($crate::common::Kind::on($kind, $shell), |driver, backend|
            sync: $crate::common::shells::block_on(async {
                let $h = $crate::common::shells::threads_pool(driver, backend, cfg);
                $call.await
            }),
            async: $crate::common::shells::paused_runtime().block_on(async {
                let $h = $crate::common::shells::tokio_pool(driver, backend, cfg);
                $call.await
            }),
        )
    }};
}

/// A pool over a faulty driver, sharing one journal, and the backend
/// behind them.
pub struct H<P: TestPool> {
    pub pool: P,
    pub faults: Faults,
    pub journal: Journal,
    pub shell: Shell,
    pub backend: Backend,
    clock: Clock,
}

/// The threaded shell over `driver` under the fault layer, on a manual
/// clock.
pub fn threads_pool<D: Driver>(driver: D, backend: Backend, cfg: PoolConfig) -> H<Pool<FaultyDriver<D>>> {
    harness(driver, backend, cfg, Shell::Threads, Clock::manual(), Pool::new)
}

/// The tokio shell over `driver` under the fault layer, on tokio's clock
/// (call it inside [`paused_runtime`]).
pub fn tokio_pool<D: AsyncDriver>(
    driver: D,
    backend: Backend,
    cfg: PoolConfig,
) -> H<AsyncPool<FaultyDriver<D>>> {
    harness(driver, backend, cfg, Shell::Tokio, Clock::tokio(), AsyncPool::new)
}

/// A pool made by `new` over `driver` under the fault layer; the layer and
/// the pool journal to one journal on `clock`.
fn harness<D, P: TestPool>(
    driver: D,
    backend: Backend,
    cfg: PoolConfig,
    shell: Shell,
    clock: Clock,
    new: impl FnOnce(FaultyDriver<D>, PoolConfig) -> Result<P>,
) -> H<P> {
    let journal = Journal::with_clock(clock.clone());
    let faulty = FaultyDriver::new(driver).with_journal(journal.clone());
    let faults = faulty.faults();
    let pool = new(faulty, cfg.journal(journal.clone())).expect("valid config");
    H {
        pool,
        faults,
        journal,
        shell,
        backend,
        clock,
    }
}

/// A bare `AsyncPool` (no fault layer) over a fresh mock server: for the
/// tests of the tokio shell's own waiting paths.
pub fn bare_async_mock_pool(config: PoolConfig) -> (MockServer, AsyncPool<AsyncMockDriver>) {
    let (driver, _) = Backend::mock();
    let server = driver.server().clone();
    let pool = AsyncPool::new(server.async_driver(), config).expect("a valid config");
    (server, pool)
}

/// A current-thread runtime with a paused clock.
pub fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime")
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
        self.backend.has_committed(tag)
    }

    /// Driver connections open on the database side (SQLite: those the
    /// fault layer counts live).
    pub fn open_connections(&self) -> usize {
        self.backend
            .open_connections()
            .unwrap_or_else(|| self.faults.live_connections().len())
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
            Shell::Threads => Joiner::Thread(std::thread::spawn(move || block_on(f))),
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
