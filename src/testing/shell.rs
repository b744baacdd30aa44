//! One test body, both shells: a facade over [`Pool`] and `AsyncPool`
//! (and their connections, engines and transactions) with async methods.
//!
//! The threaded shell's methods block and never return `Pending`, so a body
//! written against [`AnyPool`] runs on a thread through [`block_on`], and the
//! same body runs on tokio against an `AsyncPool`. dbfault's own behaviour
//! tests and its model-based test are written this way; so can yours.
#![allow(clippy::manual_async_fn)] // explicit `impl Future + Send` mirrors the trait declarations

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

#[cfg(feature = "tokio")]
use crate::{
    AsyncConnection, AsyncDriver, AsyncEngine, AsyncEngineConnection, AsyncPool, AsyncPooledConnection,
    AsyncTransaction,
};
use crate::{
    ConnId, Connection, Driver, Engine, EngineConnection, Pool, PoolStatus, PooledConnection, Result,
    Transaction,
};

/// A pool of either shell ([`Pool`] or `AsyncPool`), as a test body sees it.
pub trait AnyPool: Clone + Send + Sync + 'static {
    /// Its pooled connection.
    type Conn: AnyConn;
    /// The engine over it.
    type Engine: AnyEngine;
    /// Checks out a connection (see [`Pool::get`]).
    fn get(&self) -> impl Future<Output = Result<Self::Conn>> + Send + '_;
    /// The counters.
    fn status(&self) -> PoolStatus;
    /// Closes the idle connections; the others when they come back.
    fn dispose(&self) -> impl Future<Output = ()> + Send + '_;
    /// Invalidates every connection that exists now.
    fn invalidate_all(&self);
    /// The core's consistency check.
    fn check_counters(&self) -> std::result::Result<(), String>;
    /// An engine over this pool.
    fn engine(&self) -> Self::Engine;
}

/// A pooled connection of either shell.
pub trait AnyConn: Send + std::fmt::Debug + 'static {
    /// The driver connection's id.
    fn id(&self) -> ConnId;
    /// Whether a transaction is open.
    fn in_transaction(&self) -> bool;
    /// Runs a statement without parameters.
    fn execute<'a>(&'a mut self, sql: &'a str) -> impl Future<Output = Result<u64>> + Send + 'a;
    /// Opens a transaction.
    fn begin(&mut self) -> impl Future<Output = Result<()>> + Send + '_;
    /// Commits it.
    fn commit(&mut self) -> impl Future<Output = Result<()>> + Send + '_;
    /// Hard-invalidates the connection.
    fn invalidate(self) -> impl Future<Output = ()> + Send;
    /// Soft-invalidates the connection.
    fn invalidate_soft(&mut self);
    /// Detaches the connection from the pool.
    fn detach(&mut self);
}

/// An engine of either shell.
pub trait AnyEngine: Clone + Send + Sync + 'static {
    /// Its connection.
    type Conn: AnyEngineConn;
    /// Checks out a connection.
    fn connect(&self) -> impl Future<Output = Result<Self::Conn>> + Send + '_;
}

/// An engine connection of either shell.
pub trait AnyEngineConn: Send + std::fmt::Debug + 'static {
    /// Its transaction.
    type Tx<'a>: AnyTx + std::fmt::Debug
    where
        Self: 'a;
    /// Runs a statement in autocommit mode.
    fn execute<'a>(&'a mut self, sql: &'a str) -> impl Future<Output = Result<u64>> + Send + 'a;
    /// Runs a query in autocommit mode; returns the number of rows.
    fn query<'a>(&'a mut self, sql: &'a str) -> impl Future<Output = Result<usize>> + Send + 'a;
    /// Begins a transaction.
    fn begin(&mut self) -> impl Future<Output = Result<Self::Tx<'_>>> + Send + '_;
    /// Invalidates the driver connection (idempotent).
    fn invalidate(&mut self) -> impl Future<Output = ()> + Send + '_;
    /// Soft-invalidates the driver connection, if one is held.
    fn invalidate_soft(&mut self);
    /// Whether the driver connection was invalidated and not replaced.
    fn is_invalidated(&self) -> bool;
    /// The id of the driver connection held now, if any (no checkout).
    fn held_id(&self) -> Option<ConnId>;
    /// The id of the driver connection (checked out again if invalidated)
    /// and whether it is in a transaction.
    fn current(&mut self) -> impl Future<Output = Result<(ConnId, bool)>> + Send + '_;
}

/// An engine transaction of either shell.
pub trait AnyTx: Send {
    /// Runs a statement in the transaction.
    fn execute<'a>(&'a mut self, sql: &'a str) -> impl Future<Output = Result<u64>> + Send + 'a;
    /// Runs a query in the transaction; returns the number of rows.
    fn query<'a>(&'a mut self, sql: &'a str) -> impl Future<Output = Result<usize>> + Send + 'a;
    /// Commits.
    fn commit(self) -> impl Future<Output = Result<()>> + Send;
    /// Rolls back.
    fn rollback(self) -> impl Future<Output = Result<()>> + Send;
    /// Whether the connection died inside the transaction.
    fn is_pending_rollback(&self) -> bool;
}

// ----- the threaded shell -----

impl<D: Driver> AnyPool for Pool<D> {
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

impl<D: Driver> AnyConn for PooledConnection<D> {
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

impl<D: Driver> AnyEngine for Engine<D> {
    type Conn = EngineConnection<D>;
    fn connect(&self) -> impl Future<Output = Result<Self::Conn>> + Send + '_ {
        async move { Engine::connect(self) }
    }
}

impl<D: Driver> AnyEngineConn for EngineConnection<D> {
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
    fn invalidate_soft(&mut self) {
        if let Some(conn) = self.held_mut() {
            conn.invalidate_soft();
        }
    }
    fn is_invalidated(&self) -> bool {
        EngineConnection::is_invalidated(self)
    }
    fn held_id(&self) -> Option<ConnId> {
        self.held().map(|c| Connection::id(&**c))
    }
    fn current(&mut self) -> impl Future<Output = Result<(ConnId, bool)>> + Send + '_ {
        async move {
            let conn = self.pooled()?;
            Ok((Connection::id(&**conn), Connection::in_transaction(&**conn)))
        }
    }
}

impl<D: Driver> AnyTx for Transaction<'_, D> {
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

#[cfg(feature = "tokio")]
mod tokio_shell {
    use super::*;

    // ----- the tokio shell -----

    impl<D: AsyncDriver> AnyPool for AsyncPool<D> {
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

    impl<D: AsyncDriver> AnyConn for AsyncPooledConnection<D> {
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

    impl<D: AsyncDriver> AnyEngine for AsyncEngine<D> {
        type Conn = AsyncEngineConnection<D>;
        fn connect(&self) -> impl Future<Output = Result<Self::Conn>> + Send + '_ {
            AsyncEngine::connect(self)
        }
    }

    impl<D: AsyncDriver> AnyEngineConn for AsyncEngineConnection<D> {
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
        fn invalidate_soft(&mut self) {
            if let Some(conn) = self.held_mut() {
                conn.invalidate_soft();
            }
        }
        fn is_invalidated(&self) -> bool {
            AsyncEngineConnection::is_invalidated(self)
        }
        fn held_id(&self) -> Option<ConnId> {
            self.held().map(|c| AsyncConnection::id(&**c))
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

    impl<D: AsyncDriver> AnyTx for AsyncTransaction<'_, D> {
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
}

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on the current thread, parking it while
/// the future is pending. Enough for bodies on the threaded shell, whose
/// calls block instead of returning `Pending`.
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
