//! The async driver traits (feature `tokio`), and [`Blocking`], which runs
//! any sync driver on tokio's blocking pool.
//!
//! [`AsyncDriver`] and [`AsyncConnection`] mirror [`Driver`] and
//! [`Connection`] method for method. No concrete type implements both a
//! sync and an async trait, so their method names never clash where both
//! are in scope; generic wrappers ([`FaultyDriver`](crate::FaultyDriver))
//! implement whichever their inner driver does.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use super::PANIC_CODE;
use crate::guard::Guard;
use crate::row_ref::SetAside;
use crate::{ConnId, Connection, Dialect, Driver, Error, ErrorClass, Result, Row, RowRef, Value};

/// Opens [`AsyncConnection`]s; the async mirror of [`Driver`].
pub trait AsyncDriver: Send + Sync + 'static {
    /// The connection type this driver opens.
    type Connection: AsyncConnection;

    /// Opens a new connection. If the future is dropped before it
    /// completes, no connection is left open.
    fn connect(&self) -> impl Future<Output = Result<Self::Connection>> + Send;

    /// The dialect that classifies this driver's errors. Must not block.
    fn dialect(&self) -> Arc<dyn Dialect>;
}

/// One open connection; the async mirror of [`Connection`], with the same
/// contract.
///
/// Dropping an operation's future before it completes (cancellation) may
/// leave the operation applied or not; the connection stays usable, and
/// `in_transaction` reports what is true once the operation is settled (a
/// wrapper that cannot tell yet reports `true`, so a pool resets it).
pub trait AsyncConnection: Send + 'static {
    /// The connection's stable id. Must not block.
    fn id(&self) -> ConnId;
    /// Runs a statement that returns no rows.
    fn execute(&mut self, sql: &str, params: &[Value]) -> impl Future<Output = Result<u64>> + Send;
    /// Runs a statement and collects its rows.
    fn query(&mut self, sql: &str, params: &[Value]) -> impl Future<Output = Result<Vec<Row>>> + Send;
    /// Runs a statement and returns its first row, if any. Default:
    /// `query` and keep the first row.
    fn query_row(&mut self, sql: &str, params: &[Value]) -> impl Future<Output = Result<Option<Row>>> + Send {
        async move { Ok(self.query(sql, params).await?.into_iter().next()) }
    }
    /// Runs a statement and lends its first row, if any, to `f` as a
    /// [`RowRef`] valid for the call; returns whether there was a row: the
    /// mirror of [`Connection::query_row_with`], with the same contract
    /// (`f` is called exactly once when there was a row, never otherwise).
    /// Default: [`query_row`](AsyncConnection::query_row), then `f` on that
    /// owned row once the call has settled.
    ///
    /// # Errors
    ///
    /// The driver's error. `f` cannot fail.
    fn query_row_with(
        &mut self,
        sql: &str,
        params: &[Value],
        f: &mut (dyn FnMut(RowRef<'_>) + Send),
    ) -> impl Future<Output = Result<bool>> + Send {
        async move {
            let row = self.query_row(sql, params).await?;
            Ok(row.map(|row| f(RowRef::from(&row))).is_some())
        }
    }
    /// Runs a statement and hands its first row, if any, to `f` as a
    /// borrowed [`RowRef`]; returns what `f` returned, or `None` when there
    /// was no row: the mirror of [`Connection::query_row_map`], provided on
    /// top of [`query_row_with`](AsyncConnection::query_row_with). `f` and
    /// its result are `Send`, so the future is.
    ///
    /// # Errors
    ///
    /// The driver's error, or the error `f` returned, as it returned it.
    fn query_row_map<T, F>(
        &mut self,
        sql: &str,
        params: &[Value],
        f: F,
    ) -> impl Future<Output = Result<Option<T>>> + Send
    where
        Self: Sized,
        F: FnOnce(RowRef<'_>) -> Result<T> + Send,
        T: Send,
    {
        async move {
            let mut aside = SetAside::new(f);
            let found = self
                .query_row_with(sql, params, &mut |row| aside.lend(row))
                .await?;
            aside.finish(found)
        }
    }
    /// Opens a transaction.
    fn begin(&mut self) -> impl Future<Output = Result<()>> + Send;
    /// Commits the open transaction.
    fn commit(&mut self) -> impl Future<Output = Result<()>> + Send;
    /// Rolls back the open transaction; a no-op when none is open.
    fn rollback(&mut self) -> impl Future<Output = Result<()>> + Send;
    /// Checks that the connection is alive with a round trip.
    fn ping(&mut self) -> impl Future<Output = Result<()>> + Send;
    /// Rolls back the open transaction at once, without awaiting, when the
    /// driver can; `None` when it cannot, and the caller awaits
    /// [`rollback`](AsyncConnection::rollback) later instead. For `Drop`,
    /// which cannot await: the engine calls it for a transaction dropped
    /// uncommitted, so that its locks are gone before anyone else runs.
    /// It blocks the calling thread for the rollback. Default: `None`.
    fn try_rollback_now(&mut self) -> Option<Result<()>> {
        None
    }
    /// Whether a transaction is (or may be) open. Must not block.
    fn in_transaction(&self) -> bool;
    /// Whether the connection is known to be unusable (closed, or lost to
    /// a disconnect); see [`Connection::is_broken`]. Must decide quickly
    /// from local state: no I/O, no await, and it must not block. Default:
    /// `false`.
    fn is_broken(&self) -> bool {
        false
    }
    /// Closes the connection. Idempotent.
    fn close(&mut self) -> impl Future<Output = Result<()>> + Send;
}

// ----- any sync driver on the blocking pool -----

/// Runs a sync [`Driver`] on tokio's blocking pool, as an [`AsyncDriver`].
/// `Blocking<SqliteDriver>` is how the async pool uses real SQLite.
pub struct Blocking<D> {
    inner: Arc<D>,
}

impl<D> Blocking<D> {
    /// Wraps `driver`.
    pub fn new(driver: D) -> Self {
        Blocking {
            inner: Arc::new(driver),
        }
    }

    /// The wrapped driver.
    pub fn inner(&self) -> &D {
        &self.inner
    }
}

impl<D> Clone for Blocking<D> {
    fn clone(&self) -> Self {
        Blocking {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<D: fmt::Debug> fmt::Debug for Blocking<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Blocking").field(&self.inner).finish()
    }
}

/// A blocking task that never ran to its end: the runtime shut down
/// (panics are caught inside the task, by [`blocking`] and [`Slot::call`]).
fn join_error(e: tokio::task::JoinError) -> Error {
    Error::closed(format!("the blocking task failed: {e}"))
}

/// The error a driver call that panicked becomes: code `DBFAULT_PANIC`,
/// class [`Other`](ErrorClass::Other) (not a disconnect: the pool is not
/// invalidated for it), the panic's message when it has one.
fn panicked(payload: Box<dyn Any + Send>) -> Error {
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
    let message = match what {
        Some(what) => format!("the driver panicked: {what}"),
        None => "the driver panicked".to_owned(),
    };
    Error::driver(PANIC_CODE, message).with_class(ErrorClass::Other)
}

/// Runs `f` on tokio's blocking pool; a panic in it becomes an error.
///
/// Deterministic, so that a cancellation sweep on a paused clock sees the
/// same await points every run: the call is one await point, however fast
/// the blocking thread is ([`OnePending`]), and a future dropped while its
/// call runs waits for the call to end ([`Ended`]), so a cancelled call
/// never goes on after its future is gone: what it did is settled (and
/// its connection's lock free) when the drop returns. The wait is bounded
/// by [`SETTLE`] of real time: a call still running then (one a hang rule
/// holds, say) goes on in the background, still ahead of its connection's
/// next operation, and the caller who gave up is not held with it.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    let ended = Arc::new(Ended::default());
    let signal = EndOnDrop(Arc::clone(&ended));
    let handle = tokio::task::spawn_blocking(move || {
        // Signals the end when dropped: after `f` ran (and dropped what it
        // held), or unrun if the runtime shuts down first.
        let _signal = signal;
        catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(panicked(p)))
    });
    // Dropped before the call ended (a cancellation): wait for its end.
    let wait = Guard::new(ended, |ended| ended.wait(SETTLE));
    let result = OnePending::new(handle).await;
    wait.disarm();
    result.map_err(join_error)?
}

/// Whether a blocking call has ended, and a way to wait for it.
#[derive(Default)]
struct Ended {
    ended: std::sync::Mutex<bool>,
    changed: std::sync::Condvar,
}

/// Held by the blocking task: marks its call ended when dropped.
struct EndOnDrop(Arc<Ended>);

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        *crate::lock::lock(&self.0.ended) = true;
        self.0.changed.notify_all();
    }
}

/// How long a dropped call's future waits for the call to end (real
/// time): far longer than any call that is not held on purpose.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(1);

impl Ended {
    /// Waits until the call has ended, for at most `limit` of real time.
    fn wait(&self, limit: std::time::Duration) {
        let done = crate::lock::lock(&self.ended);
        // Ended, or given up on after `limit`: either way, return.
        let _ = self
            .changed
            .wait_timeout_while(done, limit, |done| !*done)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
    }
}

/// A future that returns `Pending` exactly once before it is ready, however
/// early its inner future is: a call that ended before the first poll
/// still yields once (and wakes itself), so the count of await points does
/// not depend on the blocking thread's speed.
struct OnePending<F: Future + Unpin> {
    inner: F,
    early: Option<F::Output>,
    polled: bool,
}

impl<F: Future + Unpin> OnePending<F> {
    fn new(inner: F) -> Self {
        OnePending {
            inner,
            early: None,
            polled: false,
        }
    }
}

// The output is never pinned: it is only moved in and out.
impl<F: Future + Unpin> Unpin for OnePending<F> {}

impl<F: Future + Unpin> Future for OnePending<F> {
    type Output = F::Output;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<F::Output> {
        use std::task::Poll;
        let this = self.get_mut();
        if let Some(output) = this.early.take() {
            return Poll::Ready(output);
        }
        let polled = std::mem::replace(&mut this.polled, true);
        match std::pin::Pin::new(&mut this.inner).poll(cx) {
            Poll::Ready(output) if polled => Poll::Ready(output),
            Poll::Ready(output) => {
                this.early = Some(output);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<D: Driver> AsyncDriver for Blocking<D> {
    type Connection = BlockingConnection<D::Connection>;

    async fn connect(&self) -> Result<Self::Connection> {
        let driver = Arc::clone(&self.inner);
        let conn = blocking(move || driver.connect()).await?;
        Ok(BlockingConnection {
            id: conn.id(),
            inner: Arc::new(tokio::sync::Mutex::new(Slot {
                conn: Some(conn),
                broken: None,
            })),
        })
    }

    fn dialect(&self) -> Arc<dyn Dialect> {
        self.inner.dialect()
    }
}

/// A sync connection driven on tokio's blocking pool.
///
/// An operation whose future is dropped still runs to its end on the
/// blocking pool; the drop waits for that end, for up to a second of real
/// time (a call a hang rule holds goes on in the background after that).
/// Until it has ended, `in_transaction` answers `true` (it cannot know),
/// so a pool rolls the connection back before reusing it.
///
/// A call that panics fails with an error of code `DBFAULT_PANIC`, class
/// [`Other`](ErrorClass::Other) (not a disconnect), carrying the panic's
/// message. The connection is broken from then on: every later call but
/// `close` fails with that error, and `in_transaction` answers `true`, so
/// an engine or a pool discards it; the pool's other connections are kept.
///
/// `query_row_with` keeps the trait's default (the sync `query_row` on
/// the blocking pool, then the callback on the owned row): the callback is
/// borrowed, and a call whose future is dropped runs on, so it must never
/// be sent to the blocking thread.
pub struct BlockingConnection<C> {
    id: ConnId,
    /// A fair (FIFO) async lock: operations reach the connection in the
    /// order they were issued, and a cancelled one that already started
    /// keeps the lock until it ends, so it can never run after a later
    /// operation (a rollback, say).
    inner: Arc<tokio::sync::Mutex<Slot<C>>>,
}

/// What a [`BlockingConnection`]'s lock guards.
struct Slot<C> {
    /// `None` once closed.
    conn: Option<C>,
    /// The error of the call that panicked, once one did.
    broken: Option<Error>,
}

impl<C: Connection> Slot<C> {
    /// Runs `f` on the connection, on the blocking thread; a panic marks
    /// the connection broken before the lock is released, so no later
    /// call runs on it.
    fn call<T>(&mut self, id: ConnId, f: impl FnOnce(&mut C) -> Result<T>) -> Result<T> {
        if let Some(err) = &self.broken {
            return Err(err.clone());
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(Error::closed(format!("{id}: the connection is closed")));
        };
        catch_unwind(AssertUnwindSafe(|| f(conn))).unwrap_or_else(|payload| {
            let err = panicked(payload);
            self.broken = Some(
                err.clone()
                    .context(format_args!("{id} is broken by an earlier call")),
            );
            Err(err)
        })
    }
}

impl<C> fmt::Debug for BlockingConnection<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingConnection")
            .field("id", &self.id)
            .finish()
    }
}

impl<C: Connection> BlockingConnection<C> {
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut C) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let id = self.id;
        // Dropped while waiting for the lock: the operation never starts.
        let mut slot = Arc::clone(&self.inner).lock_owned().await;
        // Dropped from here on: the operation runs to its end, holding the
        // lock until then.
        blocking(move || slot.call(id, f)).await
    }
}

impl<C: Connection> AsyncConnection for BlockingConnection<C> {
    fn id(&self) -> ConnId {
        self.id
    }
    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        let (sql, params) = (sql.to_owned(), params.to_vec());
        self.run(move |c| c.execute(&sql, &params)).await
    }
    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let (sql, params) = (sql.to_owned(), params.to_vec());
        self.run(move |c| c.query(&sql, &params)).await
    }
    async fn query_row(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        let (sql, params) = (sql.to_owned(), params.to_vec());
        self.run(move |c| c.query_row(&sql, &params)).await
    }
    async fn begin(&mut self) -> Result<()> {
        self.run(C::begin).await
    }
    async fn commit(&mut self) -> Result<()> {
        self.run(C::commit).await
    }
    async fn rollback(&mut self) -> Result<()> {
        self.run(C::rollback).await
    }
    async fn ping(&mut self) -> Result<()> {
        self.run(C::ping).await
    }
    /// The sync rollback, run on this thread, when no other call holds the
    /// connection (a cancelled call never does: its dropped future waited
    /// for it to end).
    fn try_rollback_now(&mut self) -> Option<Result<()>> {
        let mut slot = self.inner.try_lock().ok()?;
        Some(slot.call(self.id, C::rollback))
    }
    fn in_transaction(&self) -> bool {
        match self.inner.try_lock() {
            // A broken connection may be in one; nobody knows.
            Ok(slot) => slot.broken.is_some() || slot.conn.as_ref().is_some_and(C::in_transaction),
            // An operation is still running on the blocking pool.
            Err(_) => true,
        }
    }
    /// Closed, broken by a call that panicked, or broken as the sync
    /// connection says. While an operation runs on the blocking pool it
    /// cannot tell: `false`.
    fn is_broken(&self) -> bool {
        match self.inner.try_lock() {
            Ok(slot) => slot.broken.is_some() || slot.conn.as_ref().is_none_or(C::is_broken),
            Err(_) => false,
        }
    }
    async fn close(&mut self) -> Result<()> {
        let mut slot = Arc::clone(&self.inner).lock_owned().await;
        blocking(move || match slot.conn.take() {
            Some(mut conn) => conn.close(),
            None => Ok(()),
        })
        .await
    }
}
