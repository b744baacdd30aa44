//! The harness's constructors: a pool of each shell over each driver.
pub use dbfault::testing::shell::{
    AnyConn as TestConn, AnyEngine as TestEngine, AnyEngineConn as TestEngineConn, AnyPool as TestPool,
    AnyTx as TestTx, block_on,
};
use dbfault::testing::shell::{AnyEngine, AnyEngineConn, AnyPool, AnyTx};
use dbfault::{
    AsyncDriver, AsyncMockDriver, AsyncPool, Blocking, Clock, Driver, Faults, FaultyDriver, Journal,
    MockDriver, MockServer, Pool, PoolConfig, SqliteDriver,
};

use super::{H, Shell, harness, sqlite_db};

fn sync_pool<D: Driver>(
    driver: D,
    journal: &Journal,
) -> impl FnOnce(PoolConfig) -> (Pool<FaultyDriver<D>>, Faults) + use<D> {
    let faulty = FaultyDriver::new(driver).with_journal(journal.clone());
    move |cfg| {
        let faults = faulty.faults();
        (Pool::new(faulty, cfg).expect("valid config"), faults)
    }
}

fn async_pool<D: AsyncDriver>(
    driver: D,
    journal: &Journal,
) -> impl FnOnce(PoolConfig) -> (AsyncPool<FaultyDriver<D>>, Faults) + use<D> {
    let faulty = FaultyDriver::new(driver).with_journal(journal.clone());
    move |cfg| {
        let faults = faulty.faults();
        (AsyncPool::new(faulty, cfg).expect("valid config"), faults)
    }
}

pub fn threads_mock(cfg: PoolConfig) -> H<Pool<FaultyDriver<MockDriver>>> {
    let server = MockServer::new();
    let clock = Clock::manual();
    let journal = Journal::with_clock(clock.clone());
    let make = sync_pool(server.driver(), &journal);
    harness(make, cfg, Shell::Threads, clock, journal, Some(server), None)
}

pub fn threads_sqlite(cfg: PoolConfig) -> H<Pool<FaultyDriver<SqliteDriver>>> {
    let db = sqlite_db();
    let clock = Clock::manual();
    let journal = Journal::with_clock(clock.clone());
    let make = sync_pool(db.clone(), &journal);
    harness(make, cfg, Shell::Threads, clock, journal, None, Some(db))
}

pub fn tokio_mock(cfg: PoolConfig) -> H<AsyncPool<FaultyDriver<AsyncMockDriver>>> {
    let server = MockServer::new();
    let clock = Clock::tokio();
    let journal = Journal::with_clock(clock.clone());
    let make = async_pool(server.async_driver(), &journal);
    harness(make, cfg, Shell::Tokio, clock, journal, Some(server), None)
}

pub fn tokio_sqlite(cfg: PoolConfig) -> H<AsyncPool<FaultyDriver<Blocking<SqliteDriver>>>> {
    let db = sqlite_db();
    let clock = Clock::tokio();
    let journal = Journal::with_clock(clock.clone());
    let make = async_pool(Blocking::new(db.clone()), &journal);
    harness(make, cfg, Shell::Tokio, clock, journal, None, Some(db))
}

/// A current-thread runtime with a paused clock.
pub fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime")
}
