//! The facade test bodies call, implemented for both shells.
#![allow(clippy::manual_async_fn)] // explicit `impl Future + Send` mirrors the trait declarations

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use dbfault::{
    AsyncConnection, AsyncDriver, AsyncEngine, AsyncEngineConnection, AsyncMockDriver, AsyncPool,
    AsyncPooledConnection, AsyncTransaction, Blocking, Clock, ConnId, Connection, Driver, Engine,
    EngineConnection, Faults, FaultyDriver, Journal, MockDriver, MockServer, Pool, PoolConfig, PoolStatus,
    PooledConnection, Result, SqliteDriver, Transaction,
};

use super::{H, Shell, harness, sqlite_db};

/// A pool, as a test body sees it.
pub trait TestPool: Clone + Send + Sync + 'static {
    type Conn: TestConn;
    type Engine: TestEngine;
    fn get(&self) -> impl Future<Output = Result<Self::Conn>> + Send + '_;
    fn status(&self) -> PoolStatus;
    fn dispose(&self) -> impl Future<Output = ()> + Send + '_;
    fn invalidate_all(&self);
    fn check_counters(&self) -> std::result::Result<(), String>;
    fn engine(&self) -> Self::Engine;
}

/// A pooled connection, as a test body sees it.
pub trait TestConn: Send + std::fmt::Debug + 'static {
    fn id(&self) -> ConnId;
    fn in_transaction(&self) -> bool;
    fn execute<'a>(&'a mut self, sql: &'a str) -> impl Future<Output = Result<u64>> + Send + 'a;
    fn begin(&mut self) -> impl Future<Output = Result<()>> + Send + '_;
    fn commit(&mut self) -> impl Future<Output = Result<()>> + Send + '_;
    fn invalidate(self) -> impl Future<Output = ()> + Send;
    fn invalidate_soft(&mut self);
    fn detach(&mut self);
}

/// An engine, as a test body sees it.
pub trait TestEngine: Clone + Send + Sync + 'static {
    type Conn: TestEngineConn;
    fn connect(&self) -> impl Future<Output = Result<Self::Conn>> + Send + '_;
}

/// An engine connection, as a test body sees it.
pub trait TestEngineConn: Send + std::fmt::Debug + 'static {
    type Tx<'a>: TestTx + std::fmt::Debug
    where
        Self: 'a;
    fn execute<'a>(&'a mut self, sql: &'a str) -> impl Future<Output = Result<u64>> + Send + 'a;
    fn query<'a>(&'a mut self, sql: &'a str) -> impl Future<Output = Result<usize>> + Send + 'a;
    fn begin(&mut self) -> impl Future<Output = Result<Self::Tx<'_>>> + Send + '_;
    fn invalidate(&mut self) -> impl Future<Output = ()> + Send + '_;
    fn is_invalidated(&self) -> bool;
    /// The id of the driver connection (checked out again if invalidated)
    /// and whether it is in a transaction.
    fn current(&mut self) -> impl Future<Output = Result<(ConnId, bool)>> + Send + '_;
}

/// An engine transaction, as a test body sees it.
pub trait TestTx: Send {
    fn execute<'a>(&'a mut self, sql: &'a str) -> impl Future<Output = Result<u64>> + Send + 'a;
    fn query<'a>(&'a mut self, sql: &'a str) -> impl Future<Output = Result<usize>> + Send + 'a;
    fn commit(self) -> impl Future<Output = Result<()>> + Send;
    fn rollback(self) -> impl Future<Output = Result<()>> + Send;
    fn is_pending_rollback(&self) -> bool;
}

// ----- the threaded shell -----

impl<D: Driver> TestPool for Pool<D> {
    type Conn = PooledConnection<D>;
    type Engine = Engine<D>;
    fn get(&self) -> impl Future<Output = Result<Self::Conn>> + Send + '_ {
        async move { Pool::get(self) }
    }
    fn status(&self) -> PoolStatus {
        Pool::status(self)
    }
    fn dispose(&self) -> impl Future<Output = ()> + Send + '_ {
        async move { Pool::dispose(self) }
    }
    fn invalidate_all(&self) {
        Pool::invalidate_all(self)
    }
    fn check_counters(&self) -> std::result::Result<(), String> {
        Pool::check_counters(self)
    }
    fn engine(&self) -> Engine<D> {
        Engine::new(self.clone())
    }
}

impl<D: Driver> TestConn for PooledConnection<D> {
    fn id(&self) -> ConnId {
        Connection::id(&**self)
    }
    fn in_transaction(&self) -> bool {
        Connection::in_transaction(&**self)
    }
    fn execute<'a>(&'a mut self, sql: &'a str) -> impl Future<Output = Result<u64>> + Send + 'a {
        async move { Connection::execute(&mut **self, sql, &[]) }
    }
    fn begin(&mut self) -> impl Future<Output = Result<()>> + Send + '_ {
        async move { Connection::begin(&mut **self) }
    }
    fn commit(&mut self) -> impl Future<Output = Result<()>> + Send + '_ {
        async move { Connection::commit(&mut **self) }
    }
    fn invalidate(self) -> impl Future<Output = ()> + Send {
        async move { PooledConnection::invalidate(self) }
    }
    fn invalidate_soft(&mut self) {
        PooledConnection::invalidate_soft(self)
    }
    fn detach(&mut self) {
        PooledConnection::detach(self)
    }
}

impl<D: Driver> TestEngine for Engine<D> {
    type Conn = EngineConnection<D>;
    fn connect(&self) -> impl Future<Output = Result<Self::Conn>> + Send + '_ {
        async move { Engine::connect(self) }
    }
}

impl<D: Driver> TestEngineConn for EngineConnection<D> {
    type Tx<'a> = Transaction<'a, D>;
    fn execute<'a>(&'a mut self, sql: &'a str) -> impl Future<Output = Result<u64>> + Send + 'a {
        async move { EngineConnection::execute(self, sql, &[]) }
    }
    fn query<'a>(&'a mut self, sql: &'a str) -> impl Future<Output = Result<usize>> + Send + 'a {
        async move { EngineConnection::query(self, sql, &[]).map(|r| r.len()) }
    }
    fn begin(&mut self) -> impl Future<Output = Result<Self::Tx<'_>>> + Send + '_ {
        async move { EngineConnection::begin(self) }
    }
    fn invalidate(&mut self) -> impl Future<Output = ()> + Send + '_ {
        async move { EngineConnection::invalidate(self) }
    }
    fn is_invalidated(&self) -> bool {
        EngineConnection::is_invalidated(self)
    }
    fn current(&mut self) -> impl Future<Output = Result<(ConnId, bool)>> + Send + '_ {
        async move {
            let conn = self.pooled()?;
            Ok((Connection::id(&**conn), Connection::in_transaction(&**conn)))
        }
    }
}

impl<D: Driver> TestTx for Transaction<'_, D> {
    fn execute<'a>(&'a mut self, sql: &'a str) -> impl Future<Output = Result<u64>> + Send + 'a {
        async move { Transaction::execute(self, sql, &[]) }
    }
    fn query<'a>(&'a mut self, sql: &'a str) -> impl Future<Output = Result<usize>> + Send + 'a {
        async move { Transaction::query(self, sql, &[]).map(|r| r.len()) }
    }
    fn commit(self) -> impl Future<Output = Result<()>> + Send {
        async move { Transaction::commit(self) }
    }
    fn rollback(self) -> impl Future<Output = Result<()>> + Send {
        async move { Transaction::rollback(self) }
    }
    fn is_pending_rollback(&self) -> bool {
        Transaction::is_pending_rollback(self)
    }
}

// ----- the tokio shell -----

impl<D: AsyncDriver> TestPool for AsyncPool<D> {
    type Conn = AsyncPooledConnection<D>;
    type Engine = AsyncEngine<D>;
    fn get(&self) -> impl Future<Output = Result<Self::Conn>> + Send + '_ {
        AsyncPool::get(self)
    }
    fn status(&self) -> PoolStatus {
        AsyncPool::status(self)
    }
    fn dispose(&self) -> impl Future<Output = ()> + Send + '_ {
        AsyncPool::dispose(self)
    }
    fn invalidate_all(&self) {
        AsyncPool::invalidate_all(self)
    }
    fn check_counters(&self) -> std::result::Result<(), String> {
        AsyncPool::check_counters(self)
    }
    fn engine(&self) -> AsyncEngine<D> {
        AsyncEngine::new(self.clone())
    }
}

impl<D: AsyncDriver> TestConn for AsyncPooledConnection<D> {
    fn id(&self) -> ConnId {
        AsyncConnection::id(&**self)
    }
    fn in_transaction(&self) -> bool {
        AsyncConnection::in_transaction(&**self)
    }
    fn execute<'a>(&'a mut self, sql: &'a str) -> impl Future<Output = Result<u64>> + Send + 'a {
        AsyncConnection::execute(&mut **self, sql, &[])
    }
    fn begin(&mut self) -> impl Future<Output = Result<()>> + Send + '_ {
        AsyncConnection::begin(&mut **self)
    }
    fn commit(&mut self) -> impl Future<Output = Result<()>> + Send + '_ {
        AsyncConnection::commit(&mut **self)
    }
    fn invalidate(self) -> impl Future<Output = ()> + Send {
        AsyncPooledConnection::invalidate(self)
    }
    fn invalidate_soft(&mut self) {
        AsyncPooledConnection::invalidate_soft(self)
    }
    fn detach(&mut self) {
        AsyncPooledConnection::detach(self)
    }
}

impl<D: AsyncDriver> TestEngine for AsyncEngine<D> {
    type Conn = AsyncEngineConnection<D>;
    fn connect(&self) -> impl Future<Output = Result<Self::Conn>> + Send + '_ {
        AsyncEngine::connect(self)
    }
}

impl<D: AsyncDriver> TestEngineConn for AsyncEngineConnection<D> {
    type Tx<'a> = AsyncTransaction<'a, D>;
    fn execute<'a>(&'a mut self, sql: &'a str) -> impl Future<Output = Result<u64>> + Send + 'a {
        AsyncEngineConnection::execute(self, sql, &[])
    }
    fn query<'a>(&'a mut self, sql: &'a str) -> impl Future<Output = Result<usize>> + Send + 'a {
        async move {
            AsyncEngineConnection::query(self, sql, &[])
                .await
                .map(|r| r.len())
        }
    }
    fn begin(&mut self) -> impl Future<Output = Result<Self::Tx<'_>>> + Send + '_ {
        AsyncEngineConnection::begin(self)
    }
    fn invalidate(&mut self) -> impl Future<Output = ()> + Send + '_ {
        AsyncEngineConnection::invalidate(self)
    }
    fn is_invalidated(&self) -> bool {
        AsyncEngineConnection::is_invalidated(self)
    }
    fn current(&mut self) -> impl Future<Output = Result<(ConnId, bool)>> + Send + '_ {
        async move {
            let conn = self.pooled().await?;
            Ok((
                AsyncConnection::id(&**conn),
                AsyncConnection::in_transaction(&**conn),
            ))
        }
    }
}

impl<D: AsyncDriver> TestTx for AsyncTransaction<'_, D> {
    fn execute<'a>(&'a mut self, sql: &'a str) -> impl Future<Output = Result<u64>> + Send + 'a {
        AsyncTransaction::execute(self, sql, &[])
    }
    fn query<'a>(&'a mut self, sql: &'a str) -> impl Future<Output = Result<usize>> + Send + 'a {
        async move { AsyncTransaction::query(self, sql, &[]).await.map(|r| r.len()) }
    }
    fn commit(self) -> impl Future<Output = Result<()>> + Send {
        AsyncTransaction::commit(self)
    }
    fn rollback(self) -> impl Future<Output = Result<()>> + Send {
        AsyncTransaction::rollback(self)
    }
    fn is_pending_rollback(&self) -> bool {
        AsyncTransaction::is_pending_rollback(self)
    }
}

// ----- constructors and executors -----

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

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future on the current thread (the threaded shell's bodies never
/// wait on anything but the thread itself).
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}
