//! `AsyncPgDriver` and `AsyncPgConnection` (features `postgres` and
//! `tokio`): the async driver, over tokio-postgres.

use std::fmt;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls};

use crate::{
    AsyncConnection, AsyncDriver, ConnId, Dialect, Error, ErrorKind, FaultyDriver, Result, Row, Value,
};

use super::error::{CONNECTION_CLOSED, Phase, from_pg};
use super::session::{Session, Tx};
use super::value::{check_count, column_names, params, refs, to_rows};
use super::{PgDialect, Settings, pid_of};

/// Opens [`AsyncPgConnection`]s to one PostgreSQL database, with
/// tokio-postgres (no TLS): the async mirror of [`PgDriver`](crate::PgDriver),
/// with the same settings, value mapping, transaction tracking and errors.
///
/// Each connection's I/O runs on a task spawned on the runtime that
/// connected it (tokio-postgres's `Connection`), so connect from inside
/// the runtime that uses the connection.
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

impl AsyncPgDriver {
    /// A driver for the database `url` names; see
    /// [`PgDriver::new`](crate::PgDriver::new).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`], field `url`, if the string does not parse.
    pub fn new(url: &str) -> Result<AsyncPgDriver> {
        Ok(AsyncPgDriver {
            settings: Arc::new(Settings::parse(url)?),
        })
    }

    /// SQL run on every new connection before `connect` returns it; see
    /// [`PgDriver::init_sql`](crate::PgDriver::init_sql).
    #[must_use]
    pub fn init_sql(self, sql: &str) -> AsyncPgDriver {
        AsyncPgDriver {
            settings: Arc::new(self.settings.with_init_sql(sql)),
        }
    }

    /// This driver under the async fault layer, with server-side faults
    /// done by the server (`pg_terminate_backend`); see
    /// [`PgDriver::faulty`](crate::PgDriver::faulty). The kill blocks the
    /// calling thread for the admin connection's round trips (it runs
    /// that connection on a thread of its own).
    pub fn faulty(&self) -> FaultyDriver<AsyncPgDriver> {
        FaultyDriver::new(self.clone()).with_server(self.settings.server())
    }
}

impl fmt::Debug for AsyncPgDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AsyncPgDriver").field(&self.settings).finish()
    }
}

impl AsyncDriver for AsyncPgDriver {
    type Connection = AsyncPgConnection;

    /// Opens a connection, spawns its I/O task, runs the driver's
    /// `init_sql` and asks the backend its process id. Dropped before it
    /// completes, it leaves no connection open (the client is dropped,
    /// which ends the task).
    async fn connect(&self) -> Result<AsyncPgConnection> {
        let (client, connection) = self
            .settings
            .config
            .connect(NoTls)
            .await
            .map_err(|e| from_pg(e, Phase::Connect))?;
        let task = tokio::spawn(async move { connection.await.err() });
        let op = |e| from_pg(e, Phase::Operation);
        if let Some(sql) = &self.settings.init_sql {
            client.batch_execute(sql).await.map_err(op)?;
        }
        let pid = pid_of(&client.simple_query("SELECT pg_backend_pid()").await.map_err(op)?)?;
        Ok(AsyncPgConnection {
            session: Session::new(self.settings.next_id(), pid, &self.settings.backends),
            client: Some(client),
            task: Some(task),
        })
    }

    fn dialect(&self) -> Arc<dyn Dialect> {
        Arc::new(PgDialect)
    }
}

/// One connection of an [`AsyncPgDriver`]; see
/// [`PgConnection`](crate::PgConnection) for the statements, the
/// transaction tracking and the errors, which are the same.
///
/// When the server ends the connection while it is idle (a backend
/// terminated with `pg_terminate_backend`, an idle timeout), the next call
/// fails with the server's own error (`57P01`, `25P03`, `57P05`), which
/// the I/O task received, rather than the client's bare "connection
/// closed".
///
/// A call whose future is dropped leaves the statement applied or not, as
/// tokio-postgres does; the transaction state is then what the tracking
/// last saw.
pub struct AsyncPgConnection {
    session: Session,
    /// `None` once closed.
    client: Option<Client>,
    /// The connection's I/O task; its output is the error that ended the
    /// connection, if one did. Taken once that error has been read.
    task: Option<JoinHandle<Option<tokio_postgres::Error>>>,
}

impl AsyncPgConnection {
    /// The process id of the connection's backend; see
    /// [`PgConnection::backend_pid`](crate::PgConnection::backend_pid).
    pub fn backend_pid(&self) -> i32 {
        self.session.pid
    }

    fn client(&self) -> Result<&Client> {
        self.session.live()?;
        Ok(self.client.as_ref().expect("open while the session is live"))
    }

    /// The client's "connection closed" becomes the error that ended the
    /// connection, as the I/O task received it from the server.
    async fn resolve<T>(&mut self, result: Result<T>) -> Result<T> {
        match result {
            Err(err) if err.kind() == ErrorKind::Driver && err.code() == Some(CONNECTION_CLOSED) => {
                Err(self.ended(err).await)
            }
            other => other,
        }
    }

    /// Why the connection ended: the I/O task's error, once it has
    /// finished (it has, or is about to: the client saw its end).
    async fn ended(&mut self, closed: Error) -> Error {
        match self.task.take() {
            Some(task) => match task.await {
                Ok(Some(cause)) => from_pg(cause, Phase::Operation),
                _ => closed,
            },
            None => closed,
        }
    }

    /// Runs one transaction-control statement; the session tracks it.
    async fn control(&mut self, sql: &str, tx: Tx, failed: bool) -> Result<()> {
        let result = match self.client() {
            Ok(client) => client
                .batch_execute(sql)
                .await
                .map_err(|e| from_pg(e, Phase::Operation)),
            Err(e) => Err(e),
        };
        let result = self.resolve(result).await;
        self.session.settle_control(tx, failed, result)
    }
}

impl fmt::Debug for AsyncPgConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncPgConnection")
            .field("session", &self.session)
            .finish()
    }
}

/// Prepares `sql` and checks the count of `values`.
async fn prepare(client: &Client, sql: &str, values: &[Value]) -> Result<tokio_postgres::Statement> {
    let statement = client
        .prepare(sql)
        .await
        .map_err(|e| from_pg(e, Phase::Operation))?;
    check_count(&statement, values.len())?;
    Ok(statement)
}

async fn execute(client: &Client, sql: &str, values: &[Value]) -> Result<u64> {
    let statement = prepare(client, sql, values).await?;
    client
        .execute(&statement, &refs(&params(values)))
        .await
        .map_err(|e| from_pg(e, Phase::Operation))
}

async fn query(client: &Client, sql: &str, values: &[Value]) -> Result<Vec<Row>> {
    let statement = prepare(client, sql, values).await?;
    let rows = client
        .query(&statement, &refs(&params(values)))
        .await
        .map_err(|e| from_pg(e, Phase::Operation))?;
    to_rows(&rows, &column_names(&statement))
}

impl AsyncConnection for AsyncPgConnection {
    fn id(&self) -> ConnId {
        self.session.id
    }

    async fn execute(&mut self, sql: &str, values: &[Value]) -> Result<u64> {
        let result = match self.client() {
            Ok(client) => execute(client, sql, values).await,
            Err(e) => Err(e),
        };
        let result = self.resolve(result).await;
        self.session.settle(Some(sql), result)
    }

    async fn query(&mut self, sql: &str, values: &[Value]) -> Result<Vec<Row>> {
        let result = match self.client() {
            Ok(client) => query(client, sql, values).await,
            Err(e) => Err(e),
        };
        let result = self.resolve(result).await;
        self.session.settle(Some(sql), result)
    }

    async fn begin(&mut self) -> Result<()> {
        self.session.before_begin()?;
        self.control("BEGIN", Tx::Open, false).await
    }

    async fn commit(&mut self) -> Result<()> {
        let failed = self.session.before_commit()?;
        self.control("COMMIT", Tx::None, failed).await
    }

    async fn rollback(&mut self) -> Result<()> {
        self.session.live()?;
        if !self.session.needs_rollback() {
            return Ok(());
        }
        self.control("ROLLBACK", Tx::None, false).await
    }

    async fn ping(&mut self) -> Result<()> {
        let result = match self.client() {
            Ok(client) => client
                .simple_query("")
                .await
                .map(drop)
                .map_err(|e| from_pg(e, Phase::Operation)),
            Err(e) => Err(e),
        };
        let result = self.resolve(result).await;
        self.session.settle(None, result)
    }

    fn in_transaction(&self) -> bool {
        self.session.in_transaction()
    }

    fn is_broken(&self) -> bool {
        self.session.is_broken() || self.client.as_ref().is_none_or(Client::is_closed)
    }

    /// Drops the client, which ends the connection (the server rolls back
    /// an open transaction), and waits for the I/O task to finish.
    async fn close(&mut self) -> Result<()> {
        self.session.close();
        drop(self.client.take());
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        Ok(())
    }
}
