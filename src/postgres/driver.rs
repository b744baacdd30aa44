//! `PgDriver` and `PgConnection`: the sync driver, over the postgres
//! crate.

use std::fmt;
use std::sync::Arc;

use ::postgres::{Client, NoTls};

use crate::{ConnId, Connection, Dialect, Driver, FaultyDriver, Result, Row, Value};

use super::error::{Phase, from_pg};
use super::session::{Session, Tx};
use super::value::{check_count, column_names, params, refs, to_rows};
use super::{PgDialect, Settings, pid_of};

/// Opens [`PgConnection`]s to one PostgreSQL database, with the postgres
/// crate (no TLS).
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
/// The sync client runs a tokio runtime of its own per connection: use it
/// from threads, not from inside an async runtime (use
/// [`AsyncPgDriver`](crate::AsyncPgDriver) there).
#[derive(Clone)]
pub struct PgDriver {
    settings: Arc<Settings>,
}

impl PgDriver {
    /// A driver for the database `url` names: a `postgres://` URL or a
    /// `key=value` connection string, as tokio-postgres reads them
    /// (`postgres://user@host:port/dbname?application_name=x`).
    ///
    /// Nothing is opened here: a server that cannot be reached fails at
    /// [`connect`](Driver::connect) with a disconnect (`08001`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config), field `url`, if the
    /// string does not parse.
    pub fn new(url: &str) -> Result<PgDriver> {
        Ok(PgDriver {
            settings: Arc::new(Settings::parse(url)?),
        })
    }

    /// SQL (one or more `;`-separated statements) run on every new
    /// connection before `connect` returns it, e.g. `SET search_path TO
    /// app`. If it fails, `connect` fails with its error and the connection
    /// is closed. Default: none.
    #[must_use]
    pub fn init_sql(self, sql: &str) -> PgDriver {
        PgDriver {
            settings: Arc::new(self.settings.with_init_sql(sql)),
        }
    }

    /// This driver under the fault layer, with server-side faults done by
    /// the server: [`Faults::kill`](crate::Faults::kill),
    /// [`restart`](crate::Faults::restart) and
    /// [`outage`](crate::Faults::outage) terminate the connections'
    /// backends with `pg_terminate_backend` over an admin connection (one
    /// per fault, opened with this driver's settings, so its role must be
    /// allowed to signal them: the same role, or a member of
    /// `pg_signal_backend`). The client then meets `FATAL 57P01`
    /// (admin_shutdown) on its next call, as in production. An outage also
    /// refuses new connects in the fault layer until
    /// [`restore`](crate::Faults::restore).
    ///
    /// `FaultyDriver::new(driver)` kills in the fault layer instead: the
    /// next call fails with an injected disconnect of code `57P01`, and
    /// the server only sees the connection close.
    pub fn faulty(&self) -> FaultyDriver<PgDriver> {
        FaultyDriver::new(self.clone()).with_server(self.settings.server())
    }
}

impl fmt::Debug for PgDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PgDriver").field(&self.settings).finish()
    }
}

impl Driver for PgDriver {
    type Connection = PgConnection;

    /// Opens a connection, runs the driver's `init_sql`, and asks the
    /// backend its process id. Blocks on the network.
    fn connect(&self) -> Result<PgConnection> {
        let config = ::postgres::Config::from(self.settings.config.clone());
        let mut client = config.connect(NoTls).map_err(|e| from_pg(e, Phase::Connect))?;
        let op = |e| from_pg(e, Phase::Operation);
        if let Some(sql) = &self.settings.init_sql {
            client.batch_execute(sql).map_err(op)?;
        }
        let pid = pid_of(&client.simple_query("SELECT pg_backend_pid()").map_err(op)?)?;
        Ok(PgConnection {
            session: Session::new(self.settings.next_id(), pid, &self.settings.backends),
            client: Some(client),
        })
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
/// one with `25P01` (PostgreSQL only warns).
///
/// Once an operation failed with a disconnect (see [`PgDialect`]) the
/// connection is dead: every later operation but `close` fails with
/// [`ErrorKind::Closed`](crate::ErrorKind::Closed) and that disconnect's
/// code. After `close`, every operation but `close` fails with
/// [`ErrorKind::Closed`](crate::ErrorKind::Closed) and code `08003`.
pub struct PgConnection {
    session: Session,
    /// `None` once closed.
    client: Option<Client>,
}

impl PgConnection {
    /// The process id of the connection's backend (`pg_backend_pid()`):
    /// what `pg_stat_activity` and `pg_terminate_backend` know it by.
    pub fn backend_pid(&self) -> i32 {
        self.session.pid
    }

    /// The open client, or the error an operation on a closed or dead
    /// connection reports.
    fn client(&mut self) -> Result<&mut Client> {
        self.session.live()?;
        Ok(self.client.as_mut().expect("open while the session is live"))
    }

    /// Runs one transaction-control statement; the session tracks it.
    fn control(&mut self, sql: &str, tx: Tx, failed: bool) -> Result<()> {
        let result = self
            .client()
            .and_then(|c| c.batch_execute(sql).map_err(|e| from_pg(e, Phase::Operation)));
        self.session.settle_control(tx, failed, result)
    }
}

impl fmt::Debug for PgConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConnection")
            .field("session", &self.session)
            .finish()
    }
}

/// Prepares `sql` and checks the count of `values`.
fn prepare(client: &mut Client, sql: &str, values: &[Value]) -> Result<tokio_postgres::Statement> {
    let statement = client.prepare(sql).map_err(|e| from_pg(e, Phase::Operation))?;
    check_count(&statement, values.len())?;
    Ok(statement)
}

impl Connection for PgConnection {
    fn id(&self) -> ConnId {
        self.session.id
    }

    /// Runs one statement; returns the rows it changed (for a `SELECT`,
    /// the rows it returned, which are discarded).
    fn execute(&mut self, sql: &str, values: &[Value]) -> Result<u64> {
        let result = self.client().and_then(|client| {
            let statement = prepare(client, sql, values)?;
            client
                .execute(&statement, &refs(&params(values)))
                .map_err(|e| from_pg(e, Phase::Operation))
        });
        self.session.settle(Some(sql), result)
    }

    /// Runs one statement and collects its rows; the rows share one list
    /// of column names.
    fn query(&mut self, sql: &str, values: &[Value]) -> Result<Vec<Row>> {
        let result = self.client().and_then(|client| {
            let statement = prepare(client, sql, values)?;
            let rows = client
                .query(&statement, &refs(&params(values)))
                .map_err(|e| from_pg(e, Phase::Operation))?;
            to_rows(&rows, &column_names(&statement))
        });
        self.session.settle(Some(sql), result)
    }

    /// `BEGIN`; refused while a transaction is open.
    fn begin(&mut self) -> Result<()> {
        self.session.before_begin()?;
        self.control("BEGIN", Tx::Open, false)
    }

    /// `COMMIT`; refused without a transaction. A transaction an error
    /// aborted is rolled back, and the commit fails with `25P02`.
    fn commit(&mut self) -> Result<()> {
        let failed = self.session.before_commit()?;
        self.control("COMMIT", Tx::None, failed)
    }

    /// `ROLLBACK` if a transaction is open, else nothing.
    fn rollback(&mut self) -> Result<()> {
        self.session.live()?;
        if !self.session.needs_rollback() {
            return Ok(());
        }
        self.control("ROLLBACK", Tx::None, false)
    }

    /// An empty query: one round trip, which PostgreSQL answers even
    /// inside a failed transaction.
    fn ping(&mut self) -> Result<()> {
        let result = self.client().and_then(|c| {
            c.simple_query("")
                .map(drop)
                .map_err(|e| from_pg(e, Phase::Operation))
        });
        self.session.settle(None, result)
    }

    /// As tracked (see [`PgConnection`]). False once closed or dead.
    fn in_transaction(&self) -> bool {
        self.session.in_transaction()
    }

    /// Closed, lost to a disconnect, or the client's connection closed.
    fn is_broken(&self) -> bool {
        self.session.is_broken() || self.client.as_ref().is_none_or(Client::is_closed)
    }

    /// Closes the connection (the server rolls back an open transaction).
    /// The client's error, if closing a live connection failed, is
    /// returned; the connection counts as closed either way. Closing a
    /// dead connection succeeds.
    fn close(&mut self) -> Result<()> {
        let broken = self.is_broken();
        self.session.close();
        match self.client.take() {
            Some(client) if !broken => client.close().map_err(|e| from_pg(e, Phase::Operation)),
            _ => Ok(()),
        }
    }
}
