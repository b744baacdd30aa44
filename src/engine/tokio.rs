//! `AsyncEngine` (feature `tokio`): the async mirror of [`Engine`](crate::Engine).
//!
//! Same semantics: errors classified by the dialect, invalidation on
//! disconnect, pending rollback, commit outcome unknown. `Drop` cannot
//! await, so an [`AsyncTransaction`] dropped uncommitted leaves its
//! connection marked: the next call on the [`AsyncEngineConnection`] rolls
//! back first, and a connection returned to the pool with a transaction
//! open is rolled back by the pool before anyone else gets it.

use std::fmt;
use std::sync::Arc;

use crate::{
    AsyncConnection, AsyncDriver, AsyncPool, AsyncPooledConnection, Dialect, Error, Result, Row, RowRef,
    Value,
};

/// An async pool and its dialect. Cloning shares the pool.
pub struct AsyncEngine<D: AsyncDriver> {
    pool: AsyncPool<D>,
    dialect: Arc<dyn Dialect>,
}

impl<D: AsyncDriver> Clone for AsyncEngine<D> {
    fn clone(&self) -> Self {
        AsyncEngine {
            pool: self.pool.clone(),
            dialect: Arc::clone(&self.dialect),
        }
    }
}

impl<D: AsyncDriver> fmt::Debug for AsyncEngine<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncEngine").field("pool", &self.pool).finish()
    }
}

impl<D: AsyncDriver> AsyncEngine<D> {
    /// An engine over `pool`.
    pub fn new(pool: AsyncPool<D>) -> Self {
        let dialect = Arc::clone(pool.dialect());
        AsyncEngine { pool, dialect }
    }

    /// Checks out a connection.
    ///
    /// # Errors
    ///
    /// As [`AsyncPool::get`].
    pub async fn connect(&self) -> Result<AsyncEngineConnection<D>> {
        let conn = self.pool.get().await?;
        Ok(AsyncEngineConnection {
            engine: self.clone(),
            conn: Some(conn),
            needs_rollback: false,
        })
    }

    /// The pool.
    pub fn pool(&self) -> &AsyncPool<D> {
        &self.pool
    }

    /// The dialect.
    pub fn dialect(&self) -> &Arc<dyn Dialect> {
        &self.dialect
    }
}

/// A connection checked out through an [`AsyncEngine`].
pub struct AsyncEngineConnection<D: AsyncDriver> {
    engine: AsyncEngine<D>,
    conn: Option<AsyncPooledConnection<D>>,
    /// A transaction was dropped uncommitted: roll back before the next
    /// call.
    needs_rollback: bool,
}

impl<D: AsyncDriver> fmt::Debug for AsyncEngineConnection<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncEngineConnection")
            .field("conn", &self.conn)
            .field("needs_rollback", &self.needs_rollback)
            .finish()
    }
}

impl<D: AsyncDriver> AsyncEngineConnection<D> {
    /// Runs a statement in autocommit mode.
    ///
    /// # Errors
    ///
    /// The driver's error, classified; a disconnect has
    /// `connection_invalidated()` set.
    pub async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        let conn = self.ready().await?;
        let result = conn.execute(sql, params).await;
        self.settle(result).await
    }

    /// Runs a query in autocommit mode.
    ///
    /// # Errors
    ///
    /// As [`execute`](AsyncEngineConnection::execute).
    pub async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let conn = self.ready().await?;
        let result = conn.query(sql, params).await;
        self.settle(result).await
    }

    /// Runs a query in autocommit mode and returns its first row, if any.
    ///
    /// # Errors
    ///
    /// As [`execute`](AsyncEngineConnection::execute).
    pub async fn query_row(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        let conn = self.ready().await?;
        let result = conn.query_row(sql, params).await;
        self.settle(result).await
    }

    /// Runs a query in autocommit mode and hands its first row, if any, to
    /// `f` as a [`RowRef`]: the twin of
    /// [`EngineConnection::query_row_map`](crate::EngineConnection::query_row_map).
    /// The async driver traits return owned rows, so `f` reads the [`Row`]
    /// that [`query_row`](AsyncEngineConnection::query_row) returned.
    ///
    /// # Errors
    ///
    /// As [`execute`](AsyncEngineConnection::execute); an error `f` returns
    /// is returned as is and never invalidates the connection.
    pub async fn query_row_map<T>(
        &mut self,
        sql: &str,
        params: &[Value],
        f: impl FnOnce(RowRef<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        map_row(self.query_row(sql, params).await?, f)
    }

    /// Begins a transaction.
    ///
    /// # Errors
    ///
    /// As [`execute`](AsyncEngineConnection::execute).
    pub async fn begin(&mut self) -> Result<AsyncTransaction<'_, D>> {
        self.ready().await?;
        // Marked first: if this future is dropped after BEGIN reached the
        // server, the next call (or the pool) rolls it back.
        self.needs_rollback = true;
        let conn = self.conn.as_mut().expect("ready checked it out");
        let result = conn.begin().await;
        match self.settle(result).await {
            Ok(()) => Ok(AsyncTransaction {
                conn: self,
                state: TxState::Active,
            }),
            Err(err) => {
                // BEGIN certainly failed: there is nothing to roll back
                // (the mark stays only when this future is dropped).
                self.needs_rollback = false;
                Err(err)
            }
        }
    }

    /// Invalidates the driver connection; idempotent.
    pub async fn invalidate(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.invalidate().await;
        }
        self.needs_rollback = false;
    }

    /// Whether the connection was invalidated and not yet replaced.
    pub fn is_invalidated(&self) -> bool {
        self.conn.is_none()
    }

    /// The pooled connection held now, if any.
    pub fn held(&self) -> Option<&AsyncPooledConnection<D>> {
        self.conn.as_ref()
    }

    /// The pooled connection held now, mutably.
    pub fn held_mut(&mut self) -> Option<&mut AsyncPooledConnection<D>> {
        self.conn.as_mut()
    }

    /// The pooled connection, checked out again if it was invalidated,
    /// rolled back first if a transaction was abandoned.
    ///
    /// # Errors
    ///
    /// As [`AsyncPool::get`], or the failed rollback.
    pub async fn pooled(&mut self) -> Result<&mut AsyncPooledConnection<D>> {
        self.ready().await
    }

    async fn ready(&mut self) -> Result<&mut AsyncPooledConnection<D>> {
        if self.conn.is_none() {
            self.conn = Some(self.engine.pool.get().await?);
            self.needs_rollback = false;
        }
        if self.needs_rollback {
            let conn = self.conn.as_mut().expect("checked out above");
            let result = conn.rollback().await;
            self.needs_rollback = false;
            if let Err(err) = self.settle(result).await {
                // A connection that cannot roll back must not be reused
                // (as in the threaded engine).
                self.invalidate().await;
                return Err(err.with_invalidated(true));
            }
        }
        if self.conn.is_none() {
            self.conn = Some(self.engine.pool.get().await?);
        }
        Ok(self.conn.as_mut().expect("checked out above"))
    }

    /// Classifies an error; on a disconnect (or a connection a panic
    /// broke) invalidates the connection.
    async fn settle<T>(&mut self, result: Result<T>) -> Result<T> {
        match result {
            Ok(v) => Ok(v),
            Err(err) => {
                let err = err.classified_by(&**self.engine.dialect());
                if err.is_disconnect() || crate::driver::is_broken(&err) {
                    if let Some(mut conn) = self.conn.take() {
                        conn.invalidate_inner(Some(&err)).await;
                    }
                    self.needs_rollback = false;
                    return Err(err.with_invalidated(true));
                }
                Err(err)
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxState {
    Active,
    PendingRollback,
    Done,
}

/// A transaction on an [`AsyncEngineConnection`]. Dropped uncommitted, it
/// is rolled back before the connection's next use.
pub struct AsyncTransaction<'c, D: AsyncDriver> {
    conn: &'c mut AsyncEngineConnection<D>,
    state: TxState,
}

impl<D: AsyncDriver> fmt::Debug for AsyncTransaction<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncTransaction")
            .field("state", &self.state)
            .finish()
    }
}

impl<D: AsyncDriver> AsyncTransaction<'_, D> {
    /// Runs a statement in the transaction.
    ///
    /// # Errors
    ///
    /// As [`Transaction::execute`](crate::Transaction::execute).
    pub async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        let conn = self.active()?;
        let result = conn.execute(sql, params).await;
        self.settle(result).await
    }

    /// Runs a query in the transaction.
    ///
    /// # Errors
    ///
    /// As [`Transaction::execute`](crate::Transaction::execute).
    pub async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let conn = self.active()?;
        let result = conn.query(sql, params).await;
        self.settle(result).await
    }

    /// Runs a query in the transaction and returns its first row, if any.
    ///
    /// # Errors
    ///
    /// As [`Transaction::execute`](crate::Transaction::execute).
    pub async fn query_row(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        let conn = self.active()?;
        let result = conn.query_row(sql, params).await;
        self.settle(result).await
    }

    /// Runs a query in the transaction and hands its first row, if any, to
    /// `f` as a [`RowRef`] (see
    /// [`AsyncEngineConnection::query_row_map`]).
    ///
    /// # Errors
    ///
    /// As [`Transaction::execute`](crate::Transaction::execute); an error
    /// `f` returns is returned as is and never invalidates the connection
    /// or ends the transaction.
    pub async fn query_row_map<T>(
        &mut self,
        sql: &str,
        params: &[Value],
        f: impl FnOnce(RowRef<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        map_row(self.query_row(sql, params).await?, f)
    }

    /// Whether the connection died inside this transaction.
    pub fn is_pending_rollback(&self) -> bool {
        self.state == TxState::PendingRollback
    }

    /// Commits.
    ///
    /// # Errors
    ///
    /// As [`Transaction::commit`](crate::Transaction::commit).
    pub async fn commit(mut self) -> Result<()> {
        let conn = self.active()?;
        let result = conn.commit().await;
        match self.conn.settle(result).await {
            Ok(()) => {
                self.state = TxState::Done;
                self.conn.needs_rollback = false;
                Ok(())
            }
            Err(err) if err.connection_invalidated() => {
                self.state = TxState::Done;
                Err(Error::commit_unknown(err))
            }
            Err(err) => Err(err),
        }
    }

    /// Rolls back (after a disconnect: only ends the pending-rollback
    /// state).
    ///
    /// # Errors
    ///
    /// The driver's rollback error; the connection is then invalidated.
    pub async fn rollback(mut self) -> Result<()> {
        let state = std::mem::replace(&mut self.state, TxState::Done);
        if state != TxState::Active {
            return Ok(());
        }
        let Some(conn) = self.conn.conn.as_mut() else {
            self.conn.needs_rollback = false;
            return Ok(());
        };
        let result = conn.rollback().await;
        self.conn.needs_rollback = false;
        match self.conn.settle(result).await {
            Ok(()) => Ok(()),
            Err(err) => {
                self.conn.invalidate().await;
                Err(err.with_invalidated(true))
            }
        }
    }

    fn active(&mut self) -> Result<&mut AsyncPooledConnection<D>> {
        match self.state {
            TxState::Active => Ok(self
                .conn
                .conn
                .as_mut()
                .expect("an active transaction holds its connection")),
            TxState::PendingRollback => Err(Error::pending_rollback(
                "the connection was lost inside this transaction; roll it back first",
            )),
            TxState::Done => Err(Error::pending_rollback("the transaction is already finished")),
        }
    }

    async fn settle<T>(&mut self, result: Result<T>) -> Result<T> {
        let result = self.conn.settle(result).await;
        if let Err(err) = &result {
            if err.connection_invalidated() {
                self.state = TxState::PendingRollback;
            }
        }
        result
    }
}

impl<D: AsyncDriver> Drop for AsyncTransaction<'_, D> {
    fn drop(&mut self) {
        if self.state != TxState::Active {
            return;
        }
        if std::thread::panicking() {
            // A panic interrupted the transaction: no rollback, the
            // connection is invalidated. Dropped during a panic, the pooled
            // connection is invalidated by the pool without a driver call.
            drop(self.conn.conn.take());
            self.conn.needs_rollback = false;
            return;
        }
        // Cannot await here: the connection rolls back before its next use
        // (or the pool does, if the connection is returned first).
        self.conn.needs_rollback = true;
    }
}

/// `f` on an owned `row`, if there is one: `query_row_map` where the
/// driver traits return owned rows.
fn map_row<T>(row: Option<Row>, f: impl FnOnce(RowRef<'_>) -> Result<T>) -> Result<Option<T>> {
    row.map(|row| f(RowRef::from(&row))).transpose()
}
