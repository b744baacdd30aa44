//! rstest fixtures (feature `rstest`): ready pools for failure-mode tests.
//!
//! Each fixture builds a fresh pool with its own [`Journal`] on a manual
//! clock (advance it with `fixture.clock.advance(d)`). Name one as the
//! argument of an `#[rstest]` test (here called by hand, as a doctest
//! cannot hold a `#[test]`); the `_with` forms take the pool's
//! configuration (`#[with(PoolConfig::new().size(1))]`).
//!
//! The SQLite fixtures hold dbfault's bank ([`Schema::bank`]) unless given
//! a [`Schema`] of your own: [`sqlite_pool_with_schema`] and
//! [`faulty_sqlite_pool_with_schema`] (threads, manual clock), and with
//! feature `tokio` [`async_sqlite_pool`] and [`async_faulty_sqlite_pool`]
//! (`AsyncPool` over `Blocking<SqliteDriver>`, tokio's clock), each taking
//! `#[with(schema)]` or `#[with(schema, config)]`.
//!
//! # Time
//!
//! Nothing moves a manual clock by itself, so a checkout waiting on an
//! exhausted pool would wait forever. A fixture therefore advances its
//! clock while a checkout waits and nothing else happens in the pool
//! (no event, no change of status, no advance) for about 20 ms of real
//! time: straight to the oldest waiter's deadline, so that checkout fails
//! with [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) after the pool's
//! `timeout` in virtual time, at once in real time — as a paused tokio
//! clock jumps to the next timer when every task is idle. A test that
//! keeps a checkout waiting on purpose while it advances the clock itself
//! turns this off with `auto_advance(false)`.
//!
//! ```
//! use dbfault::testing::fixtures::*;
//! use dbfault::{Connection, EventKind, Op, Rule};
//!
//! // #[rstest]
//! fn a_refused_connect_costs_no_slot(faulty_sqlite_pool: FaultyPool<dbfault::SqliteDriver>) {
//!     let f = faulty_sqlite_pool;
//!     let _refuse = f.faults.arm(Rule::on(Op::Connect).times(1).disconnect()).unwrap();
//!     assert!(f.pool.get().is_err());
//!     assert_eq!(f.pool.status().checked_out, 0);
//!     let mut conn = f.pool.get().unwrap();
//!     assert_eq!(conn.query("SELECT owner FROM accounts", &[]).unwrap().len(), 3);
//!     assert_eq!(f.journal.count(EventKind::ConnectFailed), 1);
//! }
//! a_refused_connect_costs_no_slot(faulty_sqlite_pool::default());
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rstest::fixture;

use super::Schema;

use crate::{
    Clock, Driver, Engine, Faults, FaultyDriver, Journal, MockDriver, MockServer, Pool, PoolConfig,
    PoolStatus, SqliteDriver,
};

/// A pool over a driver, with the journal it writes to.
#[derive(Debug)]
pub struct PlainPool<D: Driver> {
    /// The pool (size 5, overflow 10, the defaults, unless built by a
    /// `_with` fixture).
    pub pool: Pool<D>,
    /// An engine over it.
    pub engine: Engine<D>,
    /// The pool's journal.
    pub journal: Journal,
    /// The journal's (and pool's) manual clock.
    pub clock: Clock,
    /// The mock server, for a mock pool.
    pub server: Option<MockServer>,
    /// The database, for a SQLite pool.
    pub db: Option<SqliteDriver>,
    ticker: Ticker,
}

/// A pool over a driver under the fault layer, sharing one journal.
#[derive(Debug)]
pub struct FaultyPool<D: Driver> {
    /// The pool (size 5, overflow 10, the defaults, unless built by a
    /// `_with` fixture).
    pub pool: Pool<FaultyDriver<D>>,
    /// An engine over it.
    pub engine: Engine<FaultyDriver<D>>,
    /// The fault layer's handle.
    pub faults: Faults,
    /// The journal the pool and the fault layer share.
    pub journal: Journal,
    /// Their manual clock.
    pub clock: Clock,
    /// The mock server, for a mock pool.
    pub server: Option<MockServer>,
    /// The database, for a SQLite pool.
    pub db: Option<SqliteDriver>,
    ticker: Ticker,
}

impl<D: Driver> PlainPool<D> {
    /// Whether the clock moves by itself while a checkout waits and nothing
    /// else happens (see [time](self#time)). Default: on.
    pub fn auto_advance(&self, on: bool) {
        self.ticker.set(on);
    }
}

impl<D: Driver> FaultyPool<D> {
    /// Whether the clock moves by itself while a checkout waits and nothing
    /// else happens (see [time](self#time)). Default: on.
    pub fn auto_advance(&self, on: bool) {
        self.ticker.set(on);
    }
}

/// The fixture's pool configuration: `config` with the fixture's journal
/// and clock.
fn configured(config: PoolConfig, journal: &Journal) -> PoolConfig {
    config.journal(journal.clone()).clock(journal.clock().clone())
}

fn plain<D: Driver>(
    driver: D,
    config: PoolConfig,
    server: Option<MockServer>,
    db: Option<SqliteDriver>,
) -> PlainPool<D> {
    let clock = Clock::manual();
    let journal = Journal::with_clock(clock.clone());
    let pool = Pool::new(driver, configured(config, &journal)).expect("a valid pool configuration");
    PlainPool {
        engine: Engine::new(pool.clone()),
        ticker: Ticker::start(pool.clone(), journal.clone()),
        pool,
        journal,
        clock,
        server,
        db,
    }
}

fn faulty<D: Driver>(
    driver: D,
    config: PoolConfig,
    server: Option<MockServer>,
    db: Option<SqliteDriver>,
) -> FaultyPool<D> {
    let clock = Clock::manual();
    let journal = Journal::with_clock(clock.clone());
    let driver = FaultyDriver::new(driver).with_journal(journal.clone());
    let faults = driver.faults();
    let pool = Pool::new(driver, configured(config, &journal)).expect("a valid pool configuration");
    FaultyPool {
        engine: Engine::new(pool.clone()),
        ticker: Ticker::start(pool.clone(), journal.clone()),
        pool,
        faults,
        journal,
        clock,
        server,
        db,
    }
}

/// A pool over a fresh permissive [`MockServer`].
#[fixture]
pub fn mock_pool() -> PlainPool<MockDriver> {
    mock_pool_with(PoolConfig::new())
}

/// [`mock_pool`] configured by `config` (its journal and clock are the
/// fixture's).
///
/// # Panics
///
/// If `config` is invalid, with the configuration error.
#[fixture]
pub fn mock_pool_with(#[default(PoolConfig::new())] config: PoolConfig) -> PlainPool<MockDriver> {
    let server = MockServer::new();
    plain(server.driver(), config, Some(server), None)
}

/// A pool over a fresh SQLite database loaded from fixtures/schema.sql
/// and fixtures/seed.sql.
#[fixture]
pub fn sqlite_pool() -> PlainPool<SqliteDriver> {
    sqlite_pool_with(PoolConfig::new())
}

/// [`sqlite_pool`] configured by `config` (its journal and clock are the
/// fixture's).
///
/// # Panics
///
/// If `config` is invalid, or the fixture database cannot be built.
#[fixture]
pub fn sqlite_pool_with(#[default(PoolConfig::new())] config: PoolConfig) -> PlainPool<SqliteDriver> {
    sqlite_pool_with_schema(Schema::bank(), config)
}

/// A pool over a fresh SQLite database holding `schema` and its seed
/// (default: [`Schema::bank`]), configured by `config` (its journal and
/// clock are the fixture's): `#[with(Schema::file("tests/ledger.sql"))]`.
///
/// # Panics
///
/// If `config` is invalid, or the schema cannot be loaded: the message
/// names the script and the statement (see [`Schema::load`]).
#[fixture]
pub fn sqlite_pool_with_schema(
    #[default(Schema::bank())] schema: Schema,
    #[default(PoolConfig::new())] config: PoolConfig,
) -> PlainPool<SqliteDriver> {
    let db = schema
        .sqlite()
        .unwrap_or_else(|e| panic!("the fixture database: {e}"));
    plain(db.clone(), config, None, Some(db))
}

/// [`mock_pool`] under the fault layer.
#[fixture]
pub fn faulty_mock_pool() -> FaultyPool<MockDriver> {
    faulty_mock_pool_with(PoolConfig::new())
}

/// [`faulty_mock_pool`] configured by `config` (its journal and clock are
/// the fixture's).
///
/// # Panics
///
/// If `config` is invalid, with the configuration error.
#[fixture]
pub fn faulty_mock_pool_with(#[default(PoolConfig::new())] config: PoolConfig) -> FaultyPool<MockDriver> {
    let server = MockServer::new();
    faulty(server.driver(), config, Some(server), None)
}

/// [`sqlite_pool`] under the fault layer.
#[fixture]
pub fn faulty_sqlite_pool() -> FaultyPool<SqliteDriver> {
    faulty_sqlite_pool_with(PoolConfig::new())
}

/// [`faulty_sqlite_pool`] configured by `config` (its journal and clock
/// are the fixture's).
///
/// # Panics
///
/// If `config` is invalid, or the fixture database cannot be built.
#[fixture]
pub fn faulty_sqlite_pool_with(#[default(PoolConfig::new())] config: PoolConfig) -> FaultyPool<SqliteDriver> {
    faulty_sqlite_pool_with_schema(Schema::bank(), config)
}

/// [`sqlite_pool_with_schema`] under the fault layer.
///
/// # Panics
///
/// As [`sqlite_pool_with_schema`].
#[fixture]
pub fn faulty_sqlite_pool_with_schema(
    #[default(Schema::bank())] schema: Schema,
    #[default(PoolConfig::new())] config: PoolConfig,
) -> FaultyPool<SqliteDriver> {
    let db = schema
        .sqlite()
        .unwrap_or_else(|e| panic!("the fixture database: {e}"));
    faulty(db.clone(), config, None, Some(db))
}

/// An async pool over a driver, with the journal it writes to (feature
/// `tokio`).
#[cfg(feature = "tokio")]
#[derive(Debug)]
pub struct AsyncPlainPool<D: crate::AsyncDriver> {
    /// The pool (size 5, overflow 10, the defaults, unless configured).
    pub pool: crate::AsyncPool<D>,
    /// An engine over it.
    pub engine: crate::AsyncEngine<D>,
    /// The pool's journal, on tokio's clock.
    pub journal: Journal,
    /// The database, for a SQLite pool.
    pub db: Option<SqliteDriver>,
}

/// An async pool over a driver under the fault layer, sharing one journal
/// (feature `tokio`).
#[cfg(feature = "tokio")]
#[derive(Debug)]
pub struct AsyncFaultyPool<D: crate::AsyncDriver> {
    /// The pool (size 5, overflow 10, the defaults, unless configured).
    pub pool: crate::AsyncPool<FaultyDriver<D>>,
    /// An engine over it.
    pub engine: crate::AsyncEngine<FaultyDriver<D>>,
    /// The fault layer's handle.
    pub faults: Faults,
    /// The journal the pool and the fault layer share, on tokio's clock.
    pub journal: Journal,
    /// The database, for a SQLite pool.
    pub db: Option<SqliteDriver>,
}

/// An [`AsyncPool`](crate::AsyncPool) over a fresh SQLite database holding
/// `schema` and its seed (default: [`Schema::bank`]), through
/// [`Blocking`](crate::Blocking), configured by `config` (its journal is
/// the fixture's). Its clock is tokio's: under a paused runtime
/// (`#[tokio::test(start_paused = true)]`) a checkout on an exhausted pool
/// times out at once in real time.
///
/// # Panics
///
/// As [`sqlite_pool_with_schema`].
#[cfg(feature = "tokio")]
#[fixture]
pub fn async_sqlite_pool(
    #[default(Schema::bank())] schema: Schema,
    #[default(PoolConfig::new())] config: PoolConfig,
) -> AsyncPlainPool<crate::Blocking<SqliteDriver>> {
    let db = schema
        .sqlite()
        .unwrap_or_else(|e| panic!("the fixture database: {e}"));
    let journal = Journal::with_clock(Clock::tokio());
    let pool = crate::AsyncPool::new(crate::Blocking::new(db.clone()), config.journal(journal.clone()))
        .expect("a valid pool configuration");
    AsyncPlainPool {
        engine: crate::AsyncEngine::new(pool.clone()),
        pool,
        journal,
        db: Some(db),
    }
}

/// [`async_sqlite_pool`] under the fault layer.
///
/// # Panics
///
/// As [`sqlite_pool_with_schema`].
#[cfg(feature = "tokio")]
#[fixture]
pub fn async_faulty_sqlite_pool(
    #[default(Schema::bank())] schema: Schema,
    #[default(PoolConfig::new())] config: PoolConfig,
) -> AsyncFaultyPool<crate::Blocking<SqliteDriver>> {
    let db = schema
        .sqlite()
        .unwrap_or_else(|e| panic!("the fixture database: {e}"));
    let journal = Journal::with_clock(Clock::tokio());
    let driver = FaultyDriver::new(crate::Blocking::new(db.clone())).with_journal(journal.clone());
    let faults = driver.faults();
    let pool =
        crate::AsyncPool::new(driver, config.journal(journal.clone())).expect("a valid pool configuration");
    AsyncFaultyPool {
        engine: crate::AsyncEngine::new(pool.clone()),
        pool,
        faults,
        journal,
        db: Some(db),
    }
}

/// How often the ticker looks at the pool, in real time.
const POLL: Duration = Duration::from_millis(1);
/// How many looks in a row must find a waiter and nothing else happening
/// before the clock moves.
const IDLE_POLLS: u32 = 20;

/// A thread that advances a fixture's manual clock while a checkout waits
/// on an idle pool (see [time](self#time)). Dropping it stops the thread.
struct Ticker {
    shared: Arc<TickerFlags>,
    thread: Option<JoinHandle<()>>,
}

struct TickerFlags {
    on: AtomicBool,
    stop: AtomicBool,
}

impl Ticker {
    fn start<D: Driver>(pool: Pool<D>, journal: Journal) -> Ticker {
        let shared = Arc::new(TickerFlags {
            on: AtomicBool::new(true),
            stop: AtomicBool::new(false),
        });
        let flags = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("dbfault-fixture-clock".to_owned())
            .spawn(move || {
                let clock = journal.clock().clone();
                let mut idle = Idle::default();
                while !flags.stop.load(Ordering::Acquire) {
                    std::thread::park_timeout(POLL);
                    if !flags.on.load(Ordering::Acquire) {
                        idle = Idle::default();
                        continue;
                    }
                    let seen = Seen {
                        status: pool.status(),
                        events: journal.len(),
                        now: clock.now(),
                        deadline: pool.next_deadline(),
                    };
                    if let Some(by) = idle.observe(seen) {
                        clock.advance(by);
                    }
                }
            })
            .expect("spawn the fixture's clock thread");
        Ticker {
            shared,
            thread: Some(thread),
        }
    }

    fn set(&self, on: bool) {
        self.shared.on.store(on, Ordering::Release);
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            // The thread holds a pool handle: let it go before the
            // fixture is gone. It only ever polls, so this is quick.
            let _ = thread.join();
        }
    }
}

impl fmt::Debug for Ticker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticker")
            .field("on", &self.shared.on.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// What the ticker sees of the pool at one look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    status: PoolStatus,
    events: usize,
    now: Instant,
    /// The earliest waiting checkout's deadline, as the pool's core keeps
    /// it (`None`: none, or one that waits forever).
    deadline: Option<Instant>,
}

/// The ticker's decision, sans IO: given successive looks at the pool,
/// when to advance the clock and by how much.
#[derive(Debug, Default)]
struct Idle {
    last: Option<Seen>,
    unchanged: u32,
}

impl Idle {
    /// Takes one look; returns how far to advance the clock, if at all:
    /// to the earliest waiter's deadline, once [`IDLE_POLLS`] looks in a
    /// row found waiters and nothing else changing. A deadline already
    /// passed needs nothing: the waiting checkout expires it itself.
    fn observe(&mut self, seen: Seen) -> Option<Duration> {
        if self.last == Some(seen) {
            self.unchanged += 1;
        } else {
            self.unchanged = 0;
            self.last = Some(seen);
        }
        if seen.status.waiting == 0 || self.unchanged < IDLE_POLLS {
            return None;
        }
        self.unchanged = 0;
        let by = seen.deadline?.saturating_duration_since(seen.now);
        (!by.is_zero()).then_some(by)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(waiting: usize) -> PoolStatus {
        PoolStatus {
            waiting,
            ..PoolStatus::default()
        }
    }

    #[test]
    fn the_clock_moves_only_after_a_waiter_sat_idle_and_then_to_its_deadline() {
        let t0 = Instant::now();
        let timeout = Duration::from_secs(30);
        let look = |waiting, events, after: u64, deadline: Option<u64>| Seen {
            status: status(waiting),
            events,
            now: t0 + Duration::from_secs(after),
            deadline: deadline.map(|d| t0 + Duration::from_secs(d)),
        };
        // The same look IDLE_POLLS times (nothing moves), then once more.
        let settle = |idle: &mut Idle, seen: Seen| {
            for i in 0..IDLE_POLLS {
                assert_eq!(idle.observe(seen), None, "look {i}");
            }
            idle.observe(seen)
        };
        let mut idle = Idle::default();
        // No waiter: never.
        assert_eq!(settle(&mut idle, look(0, 3, 0, None)), None);
        assert_eq!(settle(&mut idle, look(0, 3, 0, None)), None);
        // A waiter whose deadline is +30s, and an event just before the
        // clock would move.
        for _ in 0..IDLE_POLLS {
            assert_eq!(idle.observe(look(1, 4, 0, Some(30))), None);
        }
        assert_eq!(
            settle(&mut idle, look(1, 5, 0, Some(30))),
            Some(timeout),
            "an event restarts the count"
        );

        // Someone else advanced 10s meanwhile: only 20s are left.
        let mut idle = Idle::default();
        assert_eq!(
            settle(&mut idle, look(1, 5, 10, Some(30))),
            Some(Duration::from_secs(20))
        );
        // The next waiter's deadline, the core's own, is the next stop.
        assert_eq!(
            settle(&mut idle, look(1, 6, 30, Some(50))),
            Some(Duration::from_secs(20))
        );
        // A deadline reached: the waiting checkout expires it; nothing to do.
        assert_eq!(settle(&mut idle, look(1, 6, 50, Some(50))), None);
        // A checkout that waits forever: never.
        assert_eq!(settle(&mut idle, look(1, 7, 50, None)), None);
    }
}
