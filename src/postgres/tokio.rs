//! `AsyncPgDriver` and `AsyncPgConnection` (features `postgres` and
//! `tokio`): the async driver, over tokio-postgres.

use std::fmt;
use std::sync::Arc;

use crate::{AsyncConnection, AsyncDriver, ConnId, Dialect, FaultyDriver, Result, Row, Value};

use super::conn::{Conn, connect};
use super::{PgDialect, Settings};

/// Opens [`AsyncPgConnection`]s to one PostgreSQL database, with
/// tokio-postgres (no TLS): the async mirror of [`PgDriver`](crate::PgDriver),
/// with the same settings, value mapping, transaction tracking and errors.
///
/// Each connection's I/O runs on a task spawned on the runtime that
/// connected it (tokio-postgres's `Connection`), so connect from inside
/// the runtime that uses the connection. A kill of
/// [`faulty`](AsyncPgDriver::faulty) blocks the calling thread for the
/// admin connection's round trips.
///
/// ```no_run
/// # async fn doc() -> dbfault::Result<()> {
/// use dbfault::{AsyncConnection, AsyncDriver, AsyncPgDriver, Value};
///
/// let driver = AsyncPgDriver::new("postgres://postgres@127.0.0.1:5432/test")?;
/// let mut conn = driver.connect().await?;
/// let rows = conn.query("SELECT $1::text AS s", &[Value::from("hi")]).await?;
/// assert_eq!(rows[0].get("s"), Some(&Value::from("hi")));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct AsyncPgDriver {
    settings: Arc<Settings>,
}

driver_items!(AsyncPgDriver);

impl AsyncDriver for AsyncPgDriver {
    type Connection = AsyncPgConnection;

    /// Opens a connection, spawns its I/O task, runs the driver's
    /// `init_sql` and asks the backend its process id. Dropped before it
    /// completes, it leaves no connection open.
    async fn connect(&self) -> Result<AsyncPgConnection> {
        Ok(AsyncPgConnection {
            conn: connect(&self.settings).await?,
        })
    }

    fn dialect(&self) -> Arc<dyn Dialect> {
        Arc::new(PgDialect)
    }
}

/// One connection of an [`AsyncPgDriver`]; see
/// [`PgConnection`](crate::PgConnection) for the statements, the
/// transaction tracking and the errors, which are the same (the sync
/// connection blocks on this one's code).
///
/// Each call yields to the runtime once before it writes its request, so
/// that the I/O task reads first what the server sent while the
/// connection was idle: the `FATAL` of a backend the server ended reaches
/// the caller as the server's error (`57P01`, `25P03`, `57P05`), not as a
/// bare "connection closed".
///
/// A call whose future is dropped leaves the statement applied or not, as
/// tokio-postgres does; the transaction state is then what the tracking
/// last saw.
pub struct AsyncPgConnection {
    conn: Conn,
}

connection_items!(AsyncPgConnection);

impl AsyncConnection for AsyncPgConnection {
    fn id(&self) -> ConnId {
        self.conn.id()
    }

    async fn execute(&mut self, sql: &str, values: &[Value]) -> Result<u64> {
        self.conn.execute(sql, values).await
    }

    async fn query(&mut self, sql: &str, values: &[Value]) -> Result<Vec<Row>> {
        self.conn.query(sql, values).await
    }

    async fn begin(&mut self) -> Result<()> {
        self.conn.begin().await
    }

    async fn commit(&mut self) -> Result<()> {
        self.conn.commit().await
    }

    async fn rollback(&mut self) -> Result<()> {
        self.conn.rollback().await
    }

    async fn ping(&mut self) -> Result<()> {
        self.conn.ping().await
    }

    fn in_transaction(&self) -> bool {
        self.conn.in_transaction()
    }

    fn is_broken(&self) -> bool {
        self.conn.is_broken()
    }

    /// Drops the client, which ends the connection (the server rolls back
    /// an open transaction), and waits for the I/O task to finish.
    async fn close(&mut self) -> Result<()> {
        self.conn.close().await
    }
}
