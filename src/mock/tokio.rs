//! The mock's async driver (feature `tokio`): [`AsyncMockDriver`] and
//! [`AsyncMockConnection`], natively async over the same [`MockServer`]
//! as the sync [`MockDriver`](crate::MockDriver).

use std::sync::Arc;

use crate::{AsyncConnection, AsyncDriver, ConnId, Dialect, MockServer, Result, Row, Value};

impl MockServer {
    /// An async driver on this server: same state, same log, same
    /// committed statements as [`driver`](MockServer::driver).
    pub fn async_driver(&self) -> AsyncMockDriver {
        AsyncMockDriver { server: self.clone() }
    }
}

/// The [`AsyncDriver`] over a [`MockServer`]. Each operation yields once
/// before the server applies it (the request in flight) and once after
/// (the reply in flight), so a test can cancel it at either point.
#[derive(Debug, Clone)]
pub struct AsyncMockDriver {
    server: MockServer,
}

impl AsyncMockDriver {
    /// The server this driver connects to.
    pub fn server(&self) -> &MockServer {
        &self.server
    }
}

impl AsyncDriver for AsyncMockDriver {
    type Connection = AsyncMockConnection;

    async fn connect(&self) -> Result<AsyncMockConnection> {
        tokio::task::yield_now().await;
        Ok(AsyncMockConnection {
            id: self.server.open(),
            server: self.server.clone(),
        })
    }

    fn dialect(&self) -> Arc<dyn Dialect> {
        self.server.dialect()
    }
}

/// One async connection to a [`MockServer`]. Dropping it closes it.
#[derive(Debug)]
pub struct AsyncMockConnection {
    id: ConnId,
    server: MockServer,
}

impl AsyncMockConnection {
    /// Runs one server operation between two yields.
    async fn round_trip<T>(&self, f: impl FnOnce(&MockServer, ConnId) -> Result<T>) -> Result<T> {
        tokio::task::yield_now().await;
        let result = f(&self.server, self.id);
        tokio::task::yield_now().await;
        result
    }
}

impl AsyncConnection for AsyncMockConnection {
    fn id(&self) -> ConnId {
        self.id
    }
    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        self.round_trip(|s, id| s.execute(id, sql, params)).await
    }
    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        self.round_trip(|s, id| s.query(id, sql, params)).await
    }
    async fn begin(&mut self) -> Result<()> {
        self.round_trip(MockServer::begin).await
    }
    async fn commit(&mut self) -> Result<()> {
        self.round_trip(MockServer::commit).await
    }
    async fn rollback(&mut self) -> Result<()> {
        self.round_trip(MockServer::rollback).await
    }
    async fn ping(&mut self) -> Result<()> {
        self.round_trip(MockServer::ping).await
    }
    fn in_transaction(&self) -> bool {
        self.server.in_transaction(self.id)
    }
    fn is_broken(&self) -> bool {
        self.server.is_broken(self.id)
    }
    async fn close(&mut self) -> Result<()> {
        self.server.close(self.id)
    }
}

impl Drop for AsyncMockConnection {
    fn drop(&mut self) {
        let _ = self.server.close(self.id);
    }
}
