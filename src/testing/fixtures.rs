//! rstest fixtures (feature `rstest`): ready pools for failure-mode tests.
//!
//! Each fixture builds a fresh pool with its own [`Journal`] on a manual
//! clock (advance it with `fixture.clock.advance(d)`). Name one as the
//! argument of an `#[rstest]` test (here called by hand, as a doctest
//! cannot hold a `#[test]`):
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

use rstest::fixture;

use super::fresh_database;

use crate::{
    Clock, Driver, Engine, Faults, FaultyDriver, Journal, MockDriver, MockServer, Pool, PoolConfig,
    SqliteDriver,
};

/// A pool over a driver, with the journal it writes to.
#[derive(Debug)]
pub struct PlainPool<D: Driver> {
    /// The pool (size 5, overflow 10, the defaults).
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
}

/// A pool over a driver under the fault layer, sharing one journal.
#[derive(Debug)]
pub struct FaultyPool<D: Driver> {
    /// The pool (size 5, overflow 10, the defaults).
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
}

fn plain<D: Driver>(driver: D, server: Option<MockServer>, db: Option<SqliteDriver>) -> PlainPool<D> {
    let clock = Clock::manual();
    let journal = Journal::with_clock(clock.clone());
    let pool =
        Pool::new(driver, PoolConfig::new().journal(journal.clone())).expect("the default config is valid");
    PlainPool {
        engine: Engine::new(pool.clone()),
        pool,
        journal,
        clock,
        server,
        db,
    }
}

fn faulty<D: Driver>(driver: D, server: Option<MockServer>, db: Option<SqliteDriver>) -> FaultyPool<D> {
    let clock = Clock::manual();
    let journal = Journal::with_clock(clock.clone());
    let driver = FaultyDriver::new(driver).with_journal(journal.clone());
    let faults = driver.faults();
    let pool =
        Pool::new(driver, PoolConfig::new().journal(journal.clone())).expect("the default config is valid");
    FaultyPool {
        engine: Engine::new(pool.clone()),
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
    let server = MockServer::new();
    plain(server.driver(), Some(server), None)
}

/// A pool over a fresh SQLite database loaded from fixtures/schema.sql
/// and fixtures/seed.sql.
#[fixture]
pub fn sqlite_pool() -> PlainPool<SqliteDriver> {
    let db = fresh_database().expect("the fixture database");
    plain(db.clone(), None, Some(db))
}

/// [`mock_pool`] under the fault layer.
#[fixture]
pub fn faulty_mock_pool() -> FaultyPool<MockDriver> {
    let server = MockServer::new();
    faulty(server.driver(), Some(server), None)
}

/// [`sqlite_pool`] under the fault layer.
#[fixture]
pub fn faulty_sqlite_pool() -> FaultyPool<SqliteDriver> {
    let db = fresh_database().expect("the fixture database");
    faulty(db.clone(), None, Some(db))
}
