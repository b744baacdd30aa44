//! [`MockDriver`] and [`MockConnection`]: the [`Driver`] and [`Connection`]
//! traits over a [`MockServer`], as thin wrappers over its per-connection
//! operations.

use std::sync::Arc;

use super::server::MockServer;
use crate::{ConnId, Connection, Dialect, Driver, Result, Row, Value};

/// A [`Driver`] whose connections are connections to one [`MockServer`].
///
/// Cloning shares the server. Connecting never fails (the mock is perfect
/// unless scripted; wrap it in the fault layer to refuse connects) and never
/// blocks beyond a short lock.
#[derive(Debug, Clone)]
pub struct MockDriver {
    server: MockServer,
}

impl MockDriver {
    pub(crate) fn new(server: MockServer) -> Self {
        MockDriver { server }
    }

    /// The server this driver connects to.
    pub fn server(&self) -> &MockServer {
        &self.server
    }
}

impl Driver for MockDriver {
    type Connection = MockConnection;

    /// Opens a connection with a fresh id and logs `Connect`.
    fn connect(&self) -> Result<MockConnection> {
        Ok(MockConnection {
            id: self.server.open(),
            server: self.server.clone(),
        })
    }

    /// The server's current [`MockDialect`](crate::MockDialect).
    fn dialect(&self) -> Arc<dyn Dialect> {
        self.server.dialect()
    }
}

/// One connection to a [`MockServer`].
///
/// Dropping it unclosed closes it (the server logs `Close` and drops its open
/// transaction), as a real server would when the socket goes away.
#[derive(Debug)]
pub struct MockConnection {
    id: ConnId,
    server: MockServer,
}

impl MockConnection {
    /// The server this connection belongs to.
    pub fn server(&self) -> &MockServer {
        &self.server
    }
}

impl Connection for MockConnection {
    fn id(&self) -> ConnId {
        self.id
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        self.server.execute(self.id, sql, params)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        self.server.query(self.id, sql, params)
    }

    fn begin(&mut self) -> Result<()> {
        self.server.begin(self.id)
    }

    fn commit(&mut self) -> Result<()> {
        self.server.commit(self.id)
    }

    fn rollback(&mut self) -> Result<()> {
        self.server.rollback(self.id)
    }

    fn ping(&mut self) -> Result<()> {
        self.server.ping(self.id)
    }

    /// Asks the server, under its lock held only for the look-up.
    fn in_transaction(&self) -> bool {
        self.server.in_transaction(self.id)
    }

    /// Closed or lost, as the server knows (its lock held only for the
    /// look-up).
    fn is_broken(&self) -> bool {
        self.server.is_broken(self.id)
    }

    fn close(&mut self) -> Result<()> {
        self.server.close(self.id)
    }
}

impl Drop for MockConnection {
    fn drop(&mut self) {
        // Never fails; a no-op when already closed.
        let _ = self.server.close(self.id);
    }
}
