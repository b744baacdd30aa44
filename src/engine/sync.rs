//! The engine: a pool plus its dialect, with SQLAlchemy's error handling.
//!
//! Every error is classified by the driver's dialect. A disconnect
//! invalidates the connection (and, through the pool's generation, every
//! connection opened before it) and is returned with
//! [`connection_invalidated`](crate::Error::connection_invalidated) set; the
//! next use of the [`EngineConnection`] reconnects by itself. An error
//! saying a driver call panicked (code `DBFAULT_PANIC`, as
//! [`Blocking`](crate::Blocking) reports one) invalidates that connection
//! only, with `connection_invalidated` set too. Inside a
//! [`Transaction`], a disconnect leaves the transaction *pending rollback*,
//! and a commit cut off by one is reported as
//! [`ErrorKind::CommitUnknown`](crate::ErrorKind::CommitUnknown).

use std::fmt;
use std::sync::Arc;

use crate::{Connection, Dialect, Driver, Error, Pool, PooledConnection, Result, Row, RowRef, Value};

/// A pool and its dialect. Cloning shares the pool.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use dbfault::{Engine, Pool, PoolConfig, SqliteDriver, Value};
///
/// let pool = Pool::new(SqliteDriver::memory("engine-doc").unwrap(), PoolConfig::new()).unwrap();
/// let engine = Engine::new(pool);
/// let mut conn = engine.connect().unwrap();
/// conn.execute("CREATE TABLE t (x INTEGER)", &[]).unwrap();
/// let mut tx = conn.begin().unwrap();
/// tx.execute("INSERT INTO t VALUES (?1)", &[Value::Integer(1)]).unwrap();
/// tx.commit().unwrap();
/// # }
/// ```
pub struct Engine<D: Driver> {
    pool: Pool<D>,
    dialect: Arc<dyn Dialect>,
}

impl<D: Driver> Clone for Engine<D> {
    fn clone(&self) -> Self {
        Engine {
            pool: self.pool.clone(),
            dialect: Arc::clone(&self.dialect),
        }
    }
}

impl<D: Driver> fmt::Debug for Engine<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine").field("pool", &self.pool).finish()
    }
}

impl<D: Driver> Engine<D> {
    /// An engine over `pool`, classifying errors with the driver's dialect.
    pub fn new(pool: Pool<D>) -> Self {
        let dialect = Arc::clone(pool.dialect());
        Engine { pool, dialect }
    }

    /// Checks out a connection.
    ///
    /// # Errors
    ///
    /// As [`Pool::get`].
    pub fn connect(&self) -> Result<EngineConnection<D>> {
        let conn = self.pool.get()?;
        Ok(EngineConnection {
            engine: self.clone(),
            conn: Some(conn),
        })
    }

    /// The pool.
    pub fn pool(&self) -> &Pool<D> {
        &self.pool
    }

    /// The dialect.
    pub fn dialect(&self) -> &Arc<dyn Dialect> {
        &self.dialect
    }
}

/// A connection checked out through an [`Engine`]. After its driver
/// connection was invalidated, the next call checks out a new one.
pub struct EngineConnection<D: Driver> {
    engine: Engine<D>,
    conn: Option<PooledConnection<D>>,
}

impl<D: Driver> fmt::Debug for EngineConnection<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineConnection")
            .field("conn", &self.conn)
            .finish()
    }
}

impl<D: Driver> EngineConnection<D> {
    /// Runs a statement outside any transaction (autocommit); returns the
    /// rows it changed.
    ///
    /// # Errors
    ///
    /// The driver's error, classified; a disconnect has
    /// `connection_invalidated()` set.
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        self.run(|c| c.execute(sql, params))
    }

    /// Runs a query outside any transaction.
    ///
    /// # Errors
    ///
    /// As [`execute`](EngineConnection::execute).
    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        self.run(|c| c.query(sql, params))
    }

    /// Runs every statement of a SQL script in autocommit mode (see
    /// [`run_script`](crate::run_script)); returns how many ran.
    ///
    /// # Errors
    ///
    /// The first statement the driver rejects, with its number and line.
    pub fn run_script(&mut self, script: &str) -> Result<usize> {
        self.run(|c| crate::run_script(c, script))
    }

    /// Runs a query outside any transaction and returns its first row, if
    /// any (a point lookup; the driver may leave the rest unread).
    ///
    /// # Errors
    ///
    /// As [`execute`](EngineConnection::execute).
    pub fn query_row(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        self.run(|c| c.query_row(sql, params))
    }

    /// Runs a query outside any transaction and hands its first row, if
    /// any, to `f` as a borrowed [`RowRef`] (see
    /// [`Connection::query_row_map`]): a point lookup that reads typed
    /// columns in place.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] {
    /// use dbfault::{Engine, Pool, PoolConfig, SqliteDriver, Value};
    ///
    /// let pool = Pool::new(SqliteDriver::memory("query-row-map-doc").unwrap(), PoolConfig::new()).unwrap();
    /// let mut conn = Engine::new(pool).connect().unwrap();
    /// conn.run_script("CREATE TABLE t (id INTEGER, name TEXT); INSERT INTO t VALUES (1, 'ann');").unwrap();
    ///
    /// let sql = "SELECT id, name FROM t WHERE id = ?1";
    /// let found = conn.query_row_map(sql, &[Value::Integer(1)], |row| {
    ///     Ok((row.get::<i64>(0)?, row.get::<String>("name")?))
    /// });
    /// assert_eq!(found.unwrap(), Some((1, "ann".to_owned())));
    /// assert_eq!(conn.query_row_map(sql, &[Value::Integer(2)], |row| row.get::<i64>(0)).unwrap(), None);
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`execute`](EngineConnection::execute); an error `f` returns is
    /// returned as is and never invalidates the connection.
    pub fn query_row_map<T>(
        &mut self,
        sql: &str,
        params: &[Value],
        f: impl FnOnce(RowRef<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        crate::row_ref::set_aside(f, |f| self.run(|c| c.query_row_with(sql, params, f)))
    }

    /// Begins a transaction. It rolls back when dropped uncommitted.
    ///
    /// # Errors
    ///
    /// As [`execute`](EngineConnection::execute).
    pub fn begin(&mut self) -> Result<Transaction<'_, D>> {
        self.run(|c| c.begin())?;
        Ok(Transaction {
            conn: self,
            state: TxState::Active,
        })
    }

    /// Invalidates the driver connection: closed now, replaced at the next
    /// call. Invalidating twice is a no-op.
    pub fn invalidate(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.invalidate();
        }
    }

    /// Whether the connection was invalidated and not yet replaced.
    pub fn is_invalidated(&self) -> bool {
        self.conn.is_none()
    }

    /// The pooled connection held now, if any (none after invalidation,
    /// until the next call checks out another).
    pub fn held(&self) -> Option<&PooledConnection<D>> {
        self.conn.as_ref()
    }

    /// The pooled connection held now, mutably.
    pub fn held_mut(&mut self) -> Option<&mut PooledConnection<D>> {
        self.conn.as_mut()
    }

    /// The pooled connection, checked out again if it was invalidated.
    ///
    /// # Errors
    ///
    /// As [`Pool::get`].
    pub fn pooled(&mut self) -> Result<&mut PooledConnection<D>> {
        if self.conn.is_none() {
            self.conn = Some(self.engine.pool.get()?);
        }
        Ok(self.conn.as_mut().expect("just checked out"))
    }

    /// Runs one driver call, classifying its error and invalidating on a
    /// disconnect.
    #[inline(always)]
    fn run<T>(&mut self, f: impl FnOnce(&mut D::Connection) -> Result<T>) -> Result<T> {
        let conn = self.pooled()?;
        match f(conn) {
            Ok(v) => Ok(v),
            Err(err) => Err(self.handle_error(err)),
        }
    }

    /// Classifies `err`; on a disconnect (or a connection a panic broke),
    /// invalidates the connection.
    fn handle_error(&mut self, err: Error) -> Error {
        let err = err.classified_by(&**self.engine.dialect());
        if err.is_disconnect() || crate::driver::is_broken(&err) {
            if let Some(mut conn) = self.conn.take() {
                conn.invalidate_inner(Some(&err));
            }
            return err.with_invalidated(true);
        }
        err
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxState {
    Active,
    /// The connection died inside the transaction.
    PendingRollback,
    Done,
}

/// A transaction on an [`EngineConnection`]. Rolls back when dropped
/// uncommitted.
pub struct Transaction<'c, D: Driver> {
    conn: &'c mut EngineConnection<D>,
    state: TxState,
}

impl<D: Driver> fmt::Debug for Transaction<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction").field("state", &self.state).finish()
    }
}

impl<D: Driver> Transaction<'_, D> {
    /// Runs a statement in the transaction.
    ///
    /// # Errors
    ///
    /// The driver's error, classified. After a disconnect, this and every
    /// later call but `rollback` fail with
    /// [`ErrorKind::PendingRollback`](crate::ErrorKind::PendingRollback).
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        self.run(|c| c.execute(sql, params))
    }

    /// Runs a query in the transaction.
    ///
    /// # Errors
    ///
    /// As [`execute`](Transaction::execute).
    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        self.run(|c| c.query(sql, params))
    }

    /// Runs a query in the transaction and returns its first row, if any.
    ///
    /// # Errors
    ///
    /// As [`execute`](Transaction::execute).
    pub fn query_row(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        self.run(|c| c.query_row(sql, params))
    }

    /// Runs a query in the transaction and hands its first row, if any, to
    /// `f` as a borrowed [`RowRef`] (see [`Connection::query_row_map`]).
    ///
    /// # Errors
    ///
    /// As [`execute`](Transaction::execute); an error `f` returns is
    /// returned as is and never invalidates the connection or ends the
    /// transaction.
    pub fn query_row_map<T>(
        &mut self,
        sql: &str,
        params: &[Value],
        f: impl FnOnce(RowRef<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        crate::row_ref::set_aside(f, |f| self.run(|c| c.query_row_with(sql, params, f)))
    }

    /// Whether the connection died inside this transaction.
    pub fn is_pending_rollback(&self) -> bool {
        self.state == TxState::PendingRollback
    }

    /// Commits.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PendingRollback`](crate::ErrorKind::PendingRollback) if
    /// the connection died earlier in the transaction;
    /// [`ErrorKind::CommitUnknown`](crate::ErrorKind::CommitUnknown) if a
    /// disconnect cut the commit off (the server may have applied it); the
    /// driver's error if the commit certainly failed (the transaction is
    /// then rolled back).
    pub fn commit(mut self) -> Result<()> {
        self.check_active()?;
        let conn = self
            .conn
            .conn
            .as_mut()
            .expect("an active transaction holds its connection");
        match conn.commit() {
            Ok(()) => {
                self.state = TxState::Done;
                Ok(())
            }
            Err(err) => {
                let err = self.conn.handle_error(err);
                if err.connection_invalidated() {
                    self.state = TxState::Done;
                    return Err(Error::commit_unknown(err));
                }
                // Drop rolls back what the failed commit left open.
                Err(err)
            }
        }
    }

    /// Rolls back. After a disconnect there is nothing left to roll back on
    /// the server: this only ends the pending-rollback state, and the next
    /// call on the connection reconnects.
    ///
    /// # Errors
    ///
    /// The driver's rollback error (the connection is then invalidated).
    pub fn rollback(mut self) -> Result<()> {
        self.finish_rollback()
    }

    fn finish_rollback(&mut self) -> Result<()> {
        let state = std::mem::replace(&mut self.state, TxState::Done);
        if state != TxState::Active {
            return Ok(());
        }
        let Some(conn) = self.conn.conn.as_mut() else {
            return Ok(());
        };
        match conn.rollback() {
            Ok(()) => Ok(()),
            Err(err) => {
                let err = self.conn.handle_error(err);
                // A connection that cannot roll back must not be reused.
                self.conn.invalidate();
                Err(err.with_invalidated(true))
            }
        }
    }

    fn check_active(&self) -> Result<()> {
        match self.state {
            TxState::Active => Ok(()),
            TxState::PendingRollback => Err(Error::pending_rollback(
                "the connection was lost inside this transaction; roll it back first",
            )),
            TxState::Done => Err(Error::pending_rollback("the transaction is already finished")),
        }
    }

    fn run<T>(&mut self, f: impl FnOnce(&mut D::Connection) -> Result<T>) -> Result<T> {
        self.check_active()?;
        let conn = self
            .conn
            .conn
            .as_mut()
            .expect("an active transaction holds its connection");
        match f(conn) {
            Ok(v) => Ok(v),
            Err(err) => {
                let err = self.conn.handle_error(err);
                if err.connection_invalidated() {
                    self.state = TxState::PendingRollback;
                }
                Err(err)
            }
        }
    }
}

impl<D: Driver> Drop for Transaction<'_, D> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // A panic interrupted the transaction (SQLAlchemy's ticket
            // 3803): never roll back here (a driver that panics again
            // would abort the process); invalidate the connection instead,
            // as the pool does a connection dropped during a panic.
            if self.state == TxState::Active {
                self.state = TxState::Done;
                self.conn.invalidate();
            }
            return;
        }
        // Errors are dropped with the transaction: the connection was
        // invalidated if the rollback failed, so nothing dirty survives.
        let _ = self.finish_rollback();
    }
}
