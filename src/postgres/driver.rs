//! `PgDriver` and `PgConnection`: the sync driver.

use std::fmt;
use std::sync::Arc;

use tokio::runtime::Runtime;

use crate::{ConnId, Connection, Dialect, Driver, Error, FaultyDriver, Result, Row, Value};

use super::conn::{Conn, connect};
use super::{PgDialect, Settings};

/// Opens [`PgConnection`]s to one PostgreSQL database (no TLS).
///
/// Cloning is cheap; clones share their settings and their registry of
/// live connections (what [`faulty`](PgDriver::faulty)'s kills use).
///
/// ```no_run
/// use dbfault::{Connection, Driver, PgDriver, Value};
///
/// let driver = PgDriver::new("postgres://postgres@127.0.0.1:5432/test")?;
/// let mut conn = driver.connect()?;
/// let rows = conn.query("SELECT $1::int8 + 1 AS n", &[Value::Integer(41)])?;
/// assert_eq!(rows[0].get("n"), Some(&Value::Integer(42)));
/// # Ok::<(), dbfault::Error>(())
/// ```
///
/// Like the postgres crate's client, each connection blocks on a
/// current-thread tokio runtime of its own, which runs tokio-postgres's
/// client and the connection's I/O: use it from threads, not from inside
/// an async runtime (use [`AsyncPgDriver`](crate::AsyncPgDriver) there,
/// which shares this driver's code). The connection is not the postgres
/// crate's because that client writes its next request before it reads
/// what the server sent while it was idle: a `FATAL` of a terminated
/// backend is then lost to the socket's reset, and the caller gets a bare
/// "connection closed" on some runs and the `FATAL` on others. This one
/// reads first, so the server's own error (`57P01`, `25P03`, `57P05`)
/// always reaches the caller.
#[derive(Clone)]
pub struct PgDriver {
    settings: Arc<Settings>,
}

driver_items!(PgDriver);

impl Driver for PgDriver {
    type Connection = PgConnection;

    /// Opens a connection, runs the driver's `init_sql`, and asks the
    /// backend its process id. Blocks on the network.
    fn connect(&self) -> Result<PgConnection> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::driver("08001", format!("no runtime for the connection: {e}")))?;
        let conn = runtime.block_on(connect(&self.settings))?;
        Ok(PgConnection { runtime, conn })
    }

    fn dialect(&self) -> Arc<dyn Dialect> {
        Arc::new(PgDialect)
    }
}

/// One connection of a [`PgDriver`].
///
/// Statements are prepared (unnamed) and then run with their parameters
/// bound as the types the server inferred (see the value table in
/// [the module](crate::postgres)): `$1`, `$2`, ... in the SQL.
///
/// The transaction state is tracked by the driver: `begin`, `commit` and
/// `rollback`, and the same statements run through `execute` or `query`
/// (`BEGIN`, `START TRANSACTION`, `COMMIT`, `END`, `ROLLBACK`, `ABORT`,
/// `ROLLBACK TO SAVEPOINT`). An error inside a transaction aborts it, as
/// PostgreSQL does: it stays open
/// ([`in_transaction`](Connection::in_transaction) is true) until it is
/// rolled back, and its commit fails with `25P02` having rolled it back.
/// `begin` inside a transaction fails with `25001`, and `commit` outside
/// one with `25P01` (PostgreSQL only warns). A value the driver refuses
/// before sending (`DBFAULT_TYPE`, `DBFAULT_PARAMETER`) aborts nothing.
///
/// When the server ends the connection (a backend terminated with
/// `pg_terminate_backend`, an idle timeout), the next call fails with the
/// server's own error (`57P01`, `25P03`, `57P05`). Once an operation
/// failed with a disconnect (see [`PgDialect`]) the connection is dead:
/// every later operation but `close` fails with
/// [`ErrorKind::Closed`](crate::ErrorKind::Closed) and that disconnect's
/// code. After `close`, every operation but `close` fails with
/// [`ErrorKind::Closed`](crate::ErrorKind::Closed) and code `08003`.
pub struct PgConnection {
    runtime: Runtime,
    conn: Conn,
}

connection_items!(PgConnection);

impl Connection for PgConnection {
    fn id(&self) -> ConnId {
        self.conn.id()
    }

    /// Runs one statement; returns the rows it changed (for a `SELECT`,
    /// the rows it returned, which are discarded).
    fn execute(&mut self, sql: &str, values: &[Value]) -> Result<u64> {
        self.runtime.block_on(self.conn.execute(sql, values))
    }

    /// Runs one statement and collects its rows; the rows share one list
    /// of column names.
    fn query(&mut self, sql: &str, values: &[Value]) -> Result<Vec<Row>> {
        self.runtime.block_on(self.conn.query(sql, values))
    }

    /// `BEGIN`; refused while a transaction is open.
    fn begin(&mut self) -> Result<()> {
        self.runtime.block_on(self.conn.begin())
    }

    /// `COMMIT`; refused without a transaction. A transaction an error
    /// aborted is rolled back, and the commit fails with `25P02`.
    fn commit(&mut self) -> Result<()> {
        self.runtime.block_on(self.conn.commit())
    }

    /// `ROLLBACK` if a transaction is open, else nothing.
    fn rollback(&mut self) -> Result<()> {
        self.runtime.block_on(self.conn.rollback())
    }

    /// An empty query: one round trip, which PostgreSQL answers even
    /// inside a failed transaction.
    fn ping(&mut self) -> Result<()> {
        self.runtime.block_on(self.conn.ping())
    }

    /// As tracked (see [`PgConnection`]). False once closed or dead.
    fn in_transaction(&self) -> bool {
        self.conn.in_transaction()
    }

    /// Closed, lost to a disconnect, or the client's connection closed.
    fn is_broken(&self) -> bool {
        self.conn.is_broken()
    }

    /// Ends the connection (the server rolls back an open transaction)
    /// and waits for its I/O to finish. Idempotent; never fails.
    fn close(&mut self) -> Result<()> {
        self.runtime.block_on(self.conn.close())
    }
}
