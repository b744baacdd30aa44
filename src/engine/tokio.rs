//! `AsyncEngine` (feature `tokio`): the async mirror of [`Engine`](crate::Engine).
//!
//! Same semantics: errors classified by the dialect, invalidation on
//! disconnect, pending rollback, commit outcome unknown. `Drop` cannot
//! await, so an [`AsyncTransaction`] dropped uncommitted is rolled back at
//! once only where the driver can without awaiting
//! ([`AsyncConnection::try_rollback_now`]); otherwise it leaves its
//! connection marked: the next call on the [`AsyncEngineConnection`] rolls
//! back first, and a connection returned to the pool with a transaction
//! open is rolled back by the pool before anyone else gets it.

use std::fmt;

use super::state::{self, Abandon, TxState};
use crate::row_ref::SetAside;
use crate::{AsyncConnection, AsyncDriver, AsyncPool, AsyncPooledConnection, Result, Row, RowRef, Value};

shared_items! {
    /// An async pool and its dialect. Cloning shares the pool.
    engine AsyncEngine over AsyncPool of AsyncDriver;
    connection AsyncEngineConnection holding AsyncPooledConnection;
    /// A transaction on an [`AsyncEngineConnection`]. Dropped uncommitted,
    /// it is rolled back before the connection's next use.
    transaction AsyncTransaction;
}

impl<D: AsyncDriver> AsyncEngine<D> {
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
    /// [`EngineConnection::query_row_map`](crate::EngineConnection::query_row_map),
    /// over [`AsyncConnection::query_row_with`]. `f` and what it returns
    /// are `Send`, so the future is.
    ///
    /// # Errors
    ///
    /// As [`execute`](AsyncEngineConnection::execute); an error `f` returns
    /// is returned as is and never invalidates the connection.
    pub async fn query_row_map<T: Send, F>(&mut self, sql: &str, params: &[Value], f: F) -> Result<Option<T>>
    where
        F: FnOnce(RowRef<'_>) -> Result<T> + Send,
    {
        let mut aside = SetAside::new(f);
        let conn = self.ready().await?;
        let result = conn.query_row_with(sql, params, &mut |row| aside.lend(row)).await;
        let found = self.settle(result).await?;
        aside.finish(found)
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

    /// The pooled connection, checked out again if it was invalidated,
    /// rolled back first if a transaction was abandoned.
    ///
    /// # Errors
    ///
    /// As [`AsyncPool::get`], or the failed rollback.
    pub async fn pooled(&mut self) -> Result<&mut AsyncPooledConnection<D>> {
        self.ready().await
    }

    /// Carries out what a dropped transaction's state asks for. `Drop`
    /// cannot await: the rollback runs now if the driver can without
    /// awaiting ([`AsyncConnection::try_rollback_now`]: a sync driver under
    /// [`Blocking`](crate::Blocking)), so the transaction's locks are gone
    /// before anyone else runs; otherwise it waits for the connection's
    /// next use (or the pool's reset, if the connection is returned
    /// first). Dropped during a panic, the pooled connection is
    /// invalidated by the pool without a driver call.
    fn abandon(&mut self, action: Abandon) {
        match action {
            Abandon::Rollback => {
                let now = self.conn.as_mut().and_then(|conn| conn.try_rollback_now());
                // A failed rollback is tried again, awaited, before the
                // connection's next use, which invalidates it if it fails.
                self.needs_rollback = !matches!(now, Some(Ok(())));
            }
            Abandon::Invalidate => {
                drop(self.conn.take());
                self.needs_rollback = false;
            }
        }
    }

    async fn ready(&mut self) -> Result<&mut AsyncPooledConnection<D>> {
        if self.conn.is_none() {
            self.conn = Some(self.engine.pool.get().await?);
            self.needs_rollback = false;
        }
        if self.needs_rollback {
            self.rollback_or_invalidate().await?;
        }
        if self.conn.is_none() {
            self.conn = Some(self.engine.pool.get().await?);
        }
        Ok(self.conn.as_mut().expect("checked out above"))
    }

    /// Rolls back; a connection that cannot roll back is invalidated, so it
    /// is never reused (as in the threaded engine).
    async fn rollback_or_invalidate(&mut self) -> Result<()> {
        let Some(conn) = self.conn.as_mut() else {
            self.needs_rollback = false;
            return Ok(());
        };
        let result = conn.rollback().await;
        self.needs_rollback = false;
        let Err(err) = self.settle(result).await else {
            return Ok(());
        };
        self.invalidate().await;
        Err(state::invalidated(err))
    }

    /// Classifies an error; invalidates the connection when it must go
    /// (see [`state::classify`]).
    async fn settle<T>(&mut self, result: Result<T>) -> Result<T> {
        let Err(err) = result else { return result };
        let (err, invalidate) = state::classify(err, &**self.engine.dialect());
        if invalidate {
            if let Some(mut conn) = self.conn.take() {
                conn.invalidate_inner(Some(&err)).await;
            }
            self.needs_rollback = false;
            return Err(state::invalidated(err));
        }
        Err(err)
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
    pub async fn query_row_map<T: Send, F>(&mut self, sql: &str, params: &[Value], f: F) -> Result<Option<T>>
    where
        F: FnOnce(RowRef<'_>) -> Result<T> + Send,
    {
        let mut aside = SetAside::new(f);
        let conn = self.active()?;
        let result = conn.query_row_with(sql, params, &mut |row| aside.lend(row)).await;
        let found = self.settle(result).await?;
        aside.finish(found)
    }

    /// Commits.
    ///
    /// # Errors
    ///
    /// As [`Transaction::commit`](crate::Transaction::commit).
    pub async fn commit(mut self) -> Result<()> {
        let conn = self.active()?;
        let result = conn.commit().await;
        let result = self.settle(result).await;
        if result.is_ok() {
            self.conn.needs_rollback = false;
        }
        self.state.commit_result(result)
    }

    /// Rolls back (after a disconnect: only ends the pending-rollback
    /// state).
    ///
    /// # Errors
    ///
    /// The driver's rollback error; the connection is then invalidated.
    pub async fn rollback(mut self) -> Result<()> {
        if !self.state.start_rollback() {
            return Ok(());
        }
        self.conn.rollback_or_invalidate().await
    }

    fn active(&mut self) -> Result<&mut AsyncPooledConnection<D>> {
        self.state.before_statement()?;
        Ok(self
            .conn
            .conn
            .as_mut()
            .expect("an active transaction holds its connection"))
    }

    async fn settle<T>(&mut self, result: Result<T>) -> Result<T> {
        let result = self.conn.settle(result).await;
        if let Err(err) = &result {
            self.state.after_error(err);
        }
        result
    }
}
