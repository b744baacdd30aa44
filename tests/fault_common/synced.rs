//! The fault layer under test, whichever it is, as one sync driver: the
//! [`Layer`] trait a body is generic over, implemented by the sync
//! `FaultyDriver<D>` itself and by the async one behind [`Synced`], the
//! test-only adapter that presents an async driver as a sync one.

use std::fmt;
use std::sync::Arc;

use dbfault::{
    AsyncConnection, AsyncDriver, ConnId, Connection, Dialect, Driver, Faults, FaultyConnection,
    FaultyDriver, Row, Value,
};
use tokio::runtime::Runtime;

/// A fault layer as the bodies see it: a sync [`Driver`] whose connections
/// the test uses, plus what the test inspects of the layer.
pub(crate) trait Layer: Driver<Connection: LayerConnection> {
    /// The driver the fault layer wraps.
    type Inner;
    /// Whether this is the async fault layer (behind [`Synced`]).
    const ASYNC: bool;
    /// The handle to arm rules and cause server-wide faults.
    fn faults(&self) -> Faults;
    /// The driver the fault layer wraps.
    fn inner(&self) -> &Self::Inner;
    /// The wrapped driver's dialect.
    fn inner_dialect(&self) -> Arc<dyn Dialect>;
}

/// A connection of a [`Layer`].
pub(crate) trait LayerConnection: Connection + fmt::Debug {
    /// Whether the fault layer killed this connection.
    fn is_dead(&self) -> bool;
}

impl<D: Driver> Layer for FaultyDriver<D> {
    type Inner = D;
    const ASYNC: bool = false;
    fn faults(&self) -> Faults {
        FaultyDriver::faults(self)
    }
    fn inner(&self) -> &D {
        FaultyDriver::inner(self)
    }
    fn inner_dialect(&self) -> Arc<dyn Dialect> {
        Driver::dialect(FaultyDriver::inner(self))
    }
}

impl<C: Connection> LayerConnection for FaultyConnection<C> {
    fn is_dead(&self) -> bool {
        FaultyConnection::is_dead(self)
    }
}

impl<A: AsyncDriver> Layer for Synced<FaultyDriver<A>> {
    type Inner = A;
    const ASYNC: bool = true;
    fn faults(&self) -> Faults {
        self.inner.faults()
    }
    fn inner(&self) -> &A {
        self.inner.inner()
    }
    fn inner_dialect(&self) -> Arc<dyn Dialect> {
        AsyncDriver::dialect(self.inner.inner())
    }
}

impl<C: AsyncConnection> LayerConnection for SyncedConnection<FaultyConnection<C>> {
    fn is_dead(&self) -> bool {
        self.inner.is_dead()
    }
}

/// An async driver presented as a sync one: each call runs to its end with
/// `block_on` on a current-thread tokio runtime the driver shares with its
/// connections. Several threads may block on it at once (a worker held by
/// a hang while the test strikes); the runtime's blocking pool runs
/// `Blocking`'s operations. Nothing is spawned on the runtime itself, and
/// the tests' clock is manual, so no call waits on tokio's timer.
#[derive(Debug)]
pub(crate) struct Synced<A> {
    inner: A,
    runtime: Arc<Runtime>,
}

impl<A> Synced<A> {
    pub(crate) fn new(inner: A) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime");
        Synced {
            inner,
            runtime: Arc::new(runtime),
        }
    }

    /// The async driver.
    pub(crate) fn get(&self) -> &A {
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
pub(crate) struct SyncedConnection<C> {
    inner: C,
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
