//! An async driver presented as a sync one, so that a body written
//! against the sync `Driver` trait runs over the async drivers (and the
//! async fault layer) too.

use std::sync::Arc;

use dbfault::{AsyncConnection, AsyncDriver, ConnId, Connection, Dialect, Driver, Row, Value};
use tokio::runtime::Runtime;

/// An async driver presented as a sync one: each call runs to its end with
/// `block_on` on a current-thread tokio runtime the driver shares with its
/// connections. Several threads may block on it at once (a worker held by
/// a hang while the test strikes); the runtime's blocking pool runs
/// `Blocking`'s operations. Nothing is spawned on the runtime itself, and
/// the tests' clock is manual, so no call waits on tokio's timer.
#[derive(Debug)]
pub struct Synced<A> {
    pub inner: A,
    runtime: Arc<Runtime>,
}

impl<A> Synced<A> {
    pub fn new(inner: A) -> Self {
        // I/O too: tokio-postgres's connections run on it.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime");
        Synced {
            inner,
            runtime: Arc::new(runtime),
        }
    }

    /// The async driver.
    pub fn get(&self) -> &A {
        &self.inner
    }
}

impl<A: AsyncDriver> Driver for Synced<A> {
    type Connection = SyncedConnection<A::Connection>;

    fn connect(&self) -> dbfault::Result<Self::Connection> {
        let inner = self.runtime.block_on(self.inner.connect())?;
        Ok(SyncedConnection {
            inner,
            runtime: Arc::clone(&self.runtime),
        })
    }

    fn dialect(&self) -> Arc<dyn Dialect> {
        self.inner.dialect()
    }
}

/// A connection of a [`Synced`] driver: each operation blocks on the
/// driver's runtime until the async one completes.
#[derive(Debug)]
pub struct SyncedConnection<C> {
    pub inner: C,
    runtime: Arc<Runtime>,
}

impl<C: AsyncConnection> Connection for SyncedConnection<C> {
    fn id(&self) -> ConnId {
        self.inner.id()
    }
    fn execute(&mut self, sql: &str, params: &[Value]) -> dbfault::Result<u64> {
        self.runtime.block_on(self.inner.execute(sql, params))
    }
    fn query(&mut self, sql: &str, params: &[Value]) -> dbfault::Result<Vec<Row>> {
        self.runtime.block_on(self.inner.query(sql, params))
    }
    fn query_row(&mut self, sql: &str, params: &[Value]) -> dbfault::Result<Option<Row>> {
        self.runtime.block_on(self.inner.query_row(sql, params))
    }
    fn begin(&mut self) -> dbfault::Result<()> {
        self.runtime.block_on(self.inner.begin())
    }
    fn commit(&mut self) -> dbfault::Result<()> {
        self.runtime.block_on(self.inner.commit())
    }
    fn rollback(&mut self) -> dbfault::Result<()> {
        self.runtime.block_on(self.inner.rollback())
    }
    fn ping(&mut self) -> dbfault::Result<()> {
        self.runtime.block_on(self.inner.ping())
    }
    fn in_transaction(&self) -> bool {
        self.inner.in_transaction()
    }
    fn is_broken(&self) -> bool {
        self.inner.is_broken()
    }
    fn close(&mut self) -> dbfault::Result<()> {
        self.runtime.block_on(self.inner.close())
    }
}
