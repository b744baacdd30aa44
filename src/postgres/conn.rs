//! One open connection, once for both drivers: a tokio-postgres client,
//! the task that does its I/O, and the session's bookkeeping. The async
//! connection awaits it on the caller's runtime; the sync one blocks on it
//! with a runtime of its own.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_postgres::tls::NoTlsStream;
use tokio_postgres::{AsyncMessage, Client, Connection, NoTls, Socket};

use crate::{ConnId, Error, ErrorKind, Result, Row, Value};

use super::error::{CONNECTION_CLOSED, Phase, from_pg, from_warning};
use super::session::{Session, Tx};
use super::value::{check_count, column_names, params, refs, to_rows};
use super::{Settings, pid_of};

/// An open connection: see the module docs.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) session: Session,
    /// `None` once closed.
    client: Option<Client>,
    /// The connection's I/O task; its output is the error that ended the
    /// connection, if one did. Taken once that error has been read.
    task: Option<JoinHandle<Option<Error>>>,
    /// The statement the last call prepared, kept until the next call has
    /// read what the server sent meanwhile: dropping a statement sends
    /// its `Close`, and a `Close` written to a server that already ended
    /// the connection would lose its `FATAL` (see [`Conn::ready`]).
    spent: Option<tokio_postgres::Statement>,
}

/// Opens a connection with `settings`: its I/O task is spawned on the
/// current runtime; the driver's `init_sql` runs, and the backend says its
/// process id. Dropped before it completes, it leaves no connection open
/// (the client is dropped, which ends the task).
pub(super) async fn connect(settings: &Arc<Settings>) -> Result<Conn> {
    let (client, connection) = settings
        .config
        .connect(NoTls)
        .await
        .map_err(|e| from_pg(e, Phase::Connect))?;
    let task = tokio::spawn(drive(connection));
    let op = |e| from_pg(e, Phase::Operation);
    if let Some(sql) = &settings.init_sql {
        client.batch_execute(sql).await.map_err(op)?;
    }
    let pid = pid_of(&client.simple_query("SELECT pg_backend_pid()").await.map_err(op)?)?;
    Ok(Conn {
        session: Session::new(settings.next_id(), pid, &settings.backends),
        client: Some(client),
        task: Some(task),
        spent: None,
    })
}

/// Does a connection's I/O until it ends; returns why it ended, if not
/// because the client closed it: the server's error (a `FATAL` such as
/// `57P01`), or the client's, unless the server warned just before it
/// closed the connection with a code of class `57` (operator
/// intervention): then that warning, which says why. A server whose other
/// backend crashed (`57P02`) ends its sessions that way, with a
/// `WARNING`, not an error.
async fn drive(mut connection: Connection<Socket, NoTlsStream>) -> Option<Error> {
    let mut warned = None;
    loop {
        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            None => return None,
            Some(Ok(AsyncMessage::Notice(notice))) if notice.code().code().starts_with("57") => {
                warned = Some(notice);
            }
            Some(Ok(_)) => {}
            Some(Err(err)) => {
                return Some(match warned {
                    Some(notice) if err.as_db_error().is_none() => from_warning(&notice, err),
                    _ => from_pg(err, Phase::Operation),
                });
            }
        }
    }
}

impl Conn {
    pub(super) fn id(&self) -> ConnId {
        self.session.id
    }

    /// The open client, after the I/O task has read what the server sent
    /// while the connection was idle: the call yields once, so that the
    /// runtime polls its I/O driver first, and only then lets the last
    /// call's statement go. A server that ended the connection meanwhile
    /// (`pg_terminate_backend`, an idle timeout) sent its `FATAL` and
    /// closed its socket; were anything written to it first, the peer's
    /// reset would discard that `FATAL`, and the caller would get a bare
    /// "connection closed" instead of the server's error.
    async fn ready(&mut self) -> Result<&Client> {
        self.session.live()?;
        tokio::task::yield_now().await;
        drop(self.spent.take());
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
                Ok(Some(cause)) => cause,
                _ => closed,
            },
            None => closed,
        }
    }

    /// The end of every operation: the error that ended the connection,
    /// then the session's bookkeeping (`sql`: the statement the caller
    /// ran, for the transaction tracking).
    async fn settle<T>(&mut self, sql: Option<&str>, result: Result<T>) -> Result<T> {
        let result = self.resolve(result).await;
        self.session.settle(sql, result)
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

    pub(super) async fn execute(&mut self, sql: &str, values: &[Value]) -> Result<u64> {
        let mut spent = None;
        let result = async {
            let client = self.ready().await?;
            let statement = spent.insert(Self::prepare(client, sql, values).await?);
            client
                .execute(&*statement, &refs(&params(values)))
                .await
                .map_err(|e| from_pg(e, Phase::Operation))
        }
        .await;
        self.spent = spent;
        self.settle(Some(sql), result).await
    }

    pub(super) async fn query(&mut self, sql: &str, values: &[Value]) -> Result<Vec<Row>> {
        let mut spent = None;
        let result = async {
            let client = self.ready().await?;
            let statement = spent.insert(Self::prepare(client, sql, values).await?);
            let rows = client
                .query(&*statement, &refs(&params(values)))
                .await
                .map_err(|e| from_pg(e, Phase::Operation))?;
            to_rows(&rows, &column_names(statement))
        }
        .await;
        self.spent = spent;
        self.settle(Some(sql), result).await
    }

    /// Runs one transaction-control statement; the session tracks it.
    async fn control(&mut self, sql: &str, tx: Tx, failed: bool) -> Result<()> {
        let result = async {
            self.ready()
                .await?
                .batch_execute(sql)
                .await
                .map_err(|e| from_pg(e, Phase::Operation))
        }
        .await;
        let result = self.resolve(result).await;
        self.session.settle_control(tx, failed, result)
    }

    pub(super) async fn begin(&mut self) -> Result<()> {
        self.session.before_begin()?;
        self.control("BEGIN", Tx::Open, false).await
    }

    pub(super) async fn commit(&mut self) -> Result<()> {
        let failed = self.session.before_commit()?;
        self.control("COMMIT", Tx::None, failed).await
    }

    pub(super) async fn rollback(&mut self) -> Result<()> {
        self.session.live()?;
        if !self.session.needs_rollback() {
            return Ok(());
        }
        self.control("ROLLBACK", Tx::None, false).await
    }

    /// An empty query: one round trip, which PostgreSQL answers even
    /// inside a failed transaction.
    pub(super) async fn ping(&mut self) -> Result<()> {
        let result = async {
            self.ready()
                .await?
                .simple_query("")
                .await
                .map(drop)
                .map_err(|e| from_pg(e, Phase::Operation))
        }
        .await;
        self.settle(None, result).await
    }

    pub(super) fn in_transaction(&self) -> bool {
        self.session.in_transaction()
    }

    pub(super) fn is_broken(&self) -> bool {
        self.session.is_broken() || self.client.as_ref().is_none_or(Client::is_closed)
    }

    /// Drops the client, which ends the connection (the server rolls back
    /// an open transaction), and waits for the I/O task to finish.
    pub(super) async fn close(&mut self) -> Result<()> {
        self.session.close();
        drop(self.spent.take());
        drop(self.client.take());
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        Ok(())
    }
}
