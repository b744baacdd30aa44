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

use super::state::{self, Abandon, TxState};
use crate::{Connection, Driver, Error, Pool, PooledConnection, Result, Row, RowRef, Value};

shared_items! {
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
    engine Engine over Pool of Driver;
    connection EngineConnection holding PooledConnection;
    /// A transaction on an [`EngineConnection`]. Rolls back when dropped
    /// uncommitted.
    transaction Transaction;
}

impl<D: Driver> Engine<D> {
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

    /// Classifies `err`; invalidates the connection when it must go (see
    /// [`state::classify`]).
    fn handle_error(&mut self, err: Error) -> Error {
        let (err, invalidate) = state::classify(err, &**self.engine.dialect());
        if !invalidate {
            return err;
        }
        if let Some(mut conn) = self.conn.take() {
            conn.invalidate_inner(Some(&err));
        }
        state::invalidated(err)
    }

    /// Rolls back; a connection that cannot roll back is invalidated, so
    /// it is never reused.
    fn rollback_or_invalidate(&mut self) -> Result<()> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        let Err(err) = conn.rollback() else {
            return Ok(());
        };
        let err = self.handle_error(err);
        self.invalidate();
        Err(state::invalidated(err))
    }

    /// Carries out what a dropped transaction's state asks for.
    fn abandon(&mut self, action: Abandon) {
        match action {
            // Errors are dropped with the transaction: the connection was
            // invalidated if the rollback failed, so nothing dirty survives.
            Abandon::Rollback => drop(self.rollback_or_invalidate()),
            // A panic interrupted the transaction: no driver call.
            Abandon::Invalidate => self.invalidate(),
        }
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
        let result = self.run(Connection::commit);
        // A commit that certainly failed leaves the transaction active:
        // drop rolls back what it left open.
        self.state.commit_result(result)
    }

    /// Rolls back. After a disconnect there is nothing left to roll back on
    /// the server: this only ends the pending-rollback state, and the next
    /// call on the connection reconnects.
    ///
    /// # Errors
    ///
    /// The driver's rollback error (the connection is then invalidated).
    pub fn rollback(mut self) -> Result<()> {
        if !self.state.start_rollback() {
            return Ok(());
        }
        self.conn.rollback_or_invalidate()
    }

    fn run<T>(&mut self, f: impl FnOnce(&mut D::Connection) -> Result<T>) -> Result<T> {
        self.state.before_statement()?;
        let conn = self
            .conn
            .conn
            .as_mut()
            .expect("an active transaction holds its connection");
        f(conn).map_err(|err| {
            let err = self.conn.handle_error(err);
            self.state.after_error(&err);
            err
        })
    }
}
