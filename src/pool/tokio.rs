//! The tokio shell around the pool core (feature `tokio`).
//!
//! It drives the same [`Core`] as the threaded [`Pool`](crate::Pool). Every
//! `.await` that holds a slot, a waiter's place or a connection sits behind
//! a drop guard, so dropping a `get()` future at any await point gives back
//! what it held. A connection dropped with a transaction open is rolled
//! back by a spawned task before it is checked in (`Drop` cannot await);
//! outside a runtime it is checked in dirty and rolled back at its next
//! checkout. Either way no borrower ever receives it inside a transaction.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::core::{Checkin, Core, Meta, Reset, Step, WaiterId};
use super::{PoolConfig, PoolStatus, ResetOnReturn};
use crate::lock::lock;
use crate::{AsyncConnection, AsyncDriver, Clock, Dialect, Error, EventKind, Journal, Result};

/// A pool of async driver connections on tokio, with the same semantics as
/// [`Pool`](crate::Pool). Cloning shares the pool.
pub struct AsyncPool<D: AsyncDriver> {
    inner: Arc<Inner<D>>,
}

struct Inner<D: AsyncDriver> {
    driver: D,
    dialect: Arc<dyn Dialect>,
    state: Mutex<State<D::Connection>>,
    journal: Option<Journal>,
    clock: Clock,
    /// Whether the core's decisions read the time (recycle, pre-ping by
    /// idle time); when they do not, the clock is read only to wait.
    timed: bool,
    /// The instant handed to an untimed core, which never looks at it.
    epoch: Instant,
    reset: ResetOnReturn,
}

struct State<C> {
    core: Core<C>,
    /// The wakers of waiting checkouts that found no grant when last
    /// polled. Whoever grants a waiter takes its waker under the lock and
    /// wakes it after releasing the lock.
    wakers: HashMap<WaiterId, Waker>,
}

impl<D: AsyncDriver> Clone for AsyncPool<D> {
    fn clone(&self) -> Self {
        AsyncPool {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<D: AsyncDriver> fmt::Debug for AsyncPool<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncPool")
            .field("dialect", &self.inner.dialect.name())
            .field("status", &self.status())
            .finish()
    }
}

impl<D: AsyncDriver> AsyncPool<D> {
    /// A pool over `driver`. Opens nothing until the first checkout. Time
    /// comes from tokio's clock unless the config names a clock or a
    /// journal.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) if `config` is
    /// impossible.
    pub fn new(driver: D, config: PoolConfig) -> Result<Self> {
        config.validate()?;
        let clock = match (&config.clock, &config.journal) {
            (None, None) => Clock::tokio(),
            _ => config.effective_clock(),
        };
        let core = Core::new(
            config.core_config(),
            config.journal.is_some(),
            |c: &D::Connection| c.is_broken(),
        );
        Ok(AsyncPool {
            inner: Arc::new(Inner {
                dialect: driver.dialect(),
                timed: core.uses_time(),
                epoch: clock.now(),
                state: Mutex::new(State {
                    core,
                    wakers: HashMap::new(),
                }),
                clock,
                journal: config.journal,
                reset: config.reset_on_return,
                driver,
            }),
        })
    }

    /// Checks out a connection, waiting up to `timeout` (on tokio's clock)
    /// when the pool is exhausted. Waiters are served first come, first
    /// served. Dropping the future at any await point loses nothing.
    ///
    /// # Errors
    ///
    /// As [`Pool::get`](crate::Pool::get).
    pub async fn get(&self) -> Result<AsyncPooledConnection<D>> {
        loop {
            let now = self.inner.now();
            let step = {
                let mut state = self.inner.lock();
                let step = state.core.checkout(now);
                if let Step::Wait(id) = step {
                    // The timeout runs from now, whatever the core decides with.
                    state.core.wait_from(id, self.inner.wait_now());
                }
                self.inner.flush(&mut state);
                step
            };
            let step = match step {
                Step::Wait(id) => self.inner.wait(id).await?,
                other => other,
            };
            // The rare paths that await the driver are boxed: inline, they
            // would make every `get()` future (and every task that holds
            // one) three times larger.
            let found = match step {
                // The usual case has nothing to await: hand it out at once.
                Step::Ready {
                    conn,
                    meta,
                    ping: false,
                } if !conn.in_transaction() => Some((conn, meta)),
                Step::Ready {
                    conn,
                    meta,
                    ping: false,
                } => Box::pin(self.inner.reset_at_checkout(conn, meta)).await?,
                other => Box::pin(self.inner.run(other)).await?,
            };
            if let Some((conn, meta)) = found {
                return Ok(AsyncPooledConnection {
                    pool: self.clone(),
                    conn: Some(conn),
                    meta,
                    detached: false,
                });
            }
        }
    }

    /// The pool's counters, read at one instant.
    pub fn status(&self) -> PoolStatus {
        self.inner.lock().core.status()
    }

    /// Invalidates every connection that exists now.
    pub fn invalidate_all(&self) {
        let mut state = self.inner.lock();
        state.core.invalidate_all();
        self.inner.flush(&mut state);
    }

    /// Closes every idle connection now; connections out are closed when
    /// they come back.
    pub async fn dispose(&self) {
        let (idle, wakers) = {
            let mut state = self.inner.lock();
            let (idle, woken) = state.core.dispose();
            let wakers: Vec<_> = woken
                .into_iter()
                .filter_map(|w| state.wakers.remove(&w))
                .collect();
            self.inner.flush(&mut state);
            (idle, wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
        for (mut conn, meta) in idle {
            let result = conn.close().await;
            self.inner.record_close(meta.id, result);
        }
    }

    /// The journal the pool writes to, if any.
    pub fn journal(&self) -> Option<&Journal> {
        self.inner.journal.as_ref()
    }

    /// The driver's dialect.
    pub fn dialect(&self) -> &Arc<dyn Dialect> {
        &self.inner.dialect
    }

    /// The driver.
    pub fn driver(&self) -> &D {
        &self.inner.driver
    }

    /// Checks the pool's counter invariants at this instant; see
    /// [`Pool::check_counters`](crate::Pool::check_counters).
    pub fn check_counters(&self) -> std::result::Result<(), String> {
        self.inner.lock().core.check()
    }
}

/// The waker of the waiter the core just granted, if any; wake it after
/// releasing the lock.
fn take_waker<C>(state: &mut State<C>, woken: Option<WaiterId>) -> Option<Waker> {
    woken.and_then(|w| state.wakers.remove(&w))
}

fn wake(waker: Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// Resolves to waiter `id`'s grant; until one arrives, leaves the task's
/// waker where the granting side finds it. Checking for the grant and
/// leaving the waker happen under one lock, so no wake-up is lost.
struct Granted<'a, D: AsyncDriver> {
    inner: &'a Inner<D>,
    id: WaiterId,
}

impl<D: AsyncDriver> Future for Granted<'_, D> {
    type Output = Step<D::Connection>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.inner.lock();
        if let Some(step) = state.core.take_grant(self.id) {
            let stale = state.wakers.remove(&self.id);
            self.inner.flush(&mut state);
            drop(state);
            drop(stale);
            return Poll::Ready(step);
        }
        let stale = match state.wakers.entry(self.id) {
            Entry::Occupied(mut e) if !e.get().will_wake(cx.waker()) => Some(e.insert(cx.waker().clone())),
            Entry::Occupied(_) => None,
            Entry::Vacant(e) => {
                e.insert(cx.waker().clone());
                None
            }
        };
        drop(state);
        // Dropped after the lock: no destructor under the pool lock.
        drop(stale);
        Poll::Pending
    }
}

/// Gives back what a cancelled checkout held: a waiter's place, a
/// reserved slot, or a connection being prepared.
struct Undo<'a, D: AsyncDriver> {
    inner: &'a Inner<D>,
    held: Option<Held<D::Connection>>,
}

enum Held<C> {
    Waiter(WaiterId),
    Slot,
    Conn(C, Meta),
}

impl<'a, D: AsyncDriver> Undo<'a, D> {
    fn new(inner: &'a Inner<D>, held: Held<D::Connection>) -> Self {
        Undo {
            inner,
            held: Some(held),
        }
    }

    /// The operation completed: nothing to give back.
    fn disarm(mut self) -> Option<Held<D::Connection>> {
        self.held.take()
    }
}

impl<D: AsyncDriver> Drop for Undo<'_, D> {
    fn drop(&mut self) {
        let Some(held) = self.held.take() else { return };
        let now = self.inner.now();
        let mut state = self.inner.lock();
        let mut stale = None;
        let woken = match held {
            Held::Waiter(id) => {
                stale = state.wakers.remove(&id);
                state
                    .core
                    .cancel_wait(id)
                    .and_then(|step| state.core.give_back(step, now))
            }
            Held::Slot => state.core.give_back(Step::Connect, now),
            Held::Conn(conn, meta) => state.core.give_back(
                Step::Ready {
                    conn,
                    meta,
                    ping: false,
                },
                now,
            ),
        };
        let waker = take_waker(&mut state, woken);
        self.inner.flush(&mut state);
        drop(state);
        drop(stale);
        wake(waker);
    }
}

impl<D: AsyncDriver> Inner<D> {
    fn lock(&self) -> MutexGuard<'_, State<D::Connection>> {
        lock(&self.state)
    }

    fn flush(&self, state: &mut State<D::Connection>) {
        if let Some(journal) = &self.journal {
            state
                .core
                .drain_events(|e| _ = journal.record(e.conn, e.kind, e.detail));
        }
    }

    /// The instant the core decides with: the clock's when its decisions
    /// read the time, else a fixed one it never looks at (reading the clock
    /// was a third of an uncontended checkout's cost).
    fn now(&self) -> Instant {
        if self.timed { self.clock.now() } else { self.epoch }
    }

    /// The instant waits are timed with: tokio's clock (virtual under a
    /// paused runtime), or the pool's clock when that is a manual one.
    fn wait_now(&self) -> Instant {
        if self.clock.is_manual() {
            self.clock.now()
        } else {
            tokio::time::Instant::now().into_std()
        }
    }

    /// Waits as waiter `id` for a grant: a connection, a slot, or the
    /// timeout error once the core expired the wait. Sleeps until the
    /// core's earliest deadline on tokio's clock (virtual under a paused
    /// runtime); a manual pool clock wakes no one, so it is polled.
    async fn wait(&self, id: WaiterId) -> Result<Step<D::Connection>> {
        let undo = Undo::new(self, Held::Waiter(id));
        loop {
            let (granted, left) = {
                let mut state = self.lock();
                let now = self.wait_now();
                let expired = state.core.handle_timeout(now);
                let wakers: Vec<_> = expired
                    .into_iter()
                    .filter(|&w| w != id)
                    .filter_map(|w| state.wakers.remove(&w))
                    .collect();
                let granted = state.core.take_grant(id);
                let stale = granted.as_ref().and_then(|_| state.wakers.remove(&id));
                let left = state
                    .core
                    .poll_timeout()
                    .map(|d| d.saturating_duration_since(now));
                self.flush(&mut state);
                drop(state);
                drop(stale);
                wakers.into_iter().for_each(Waker::wake);
                (granted, left)
            };
            let step = match granted {
                Some(step) => step,
                None => {
                    let left = if self.clock.is_manual() {
                        Some(Duration::from_millis(1))
                    } else {
                        left
                    };
                    let granted = Granted { inner: self, id };
                    match left.and_then(|d| tokio::time::Instant::now().checked_add(d)) {
                        Some(until) => match tokio::time::timeout_at(until, granted).await {
                            Ok(step) => step,
                            Err(_) => continue,
                        },
                        None => granted.await,
                    }
                }
            };
            undo.disarm();
            return match step {
                Step::Fail(err) => Err(err),
                step => Ok(step),
            };
        }
    }

    /// Performs a checkout step's I/O; `Ok(None)` means "start over".
    async fn run(&self, step: Step<D::Connection>) -> Result<Option<(D::Connection, Meta)>> {
        match step {
            Step::Ready { conn, meta, ping } => self.ready(conn, meta, ping).await,
            Step::Connect => self.connect(Undo::new(self, Held::Slot)).await.map(Some),
            Step::Replace { mut conn, meta } => {
                let undo = Undo::new(self, Held::Slot);
                let result = conn.close().await;
                drop(conn);
                self.record_close(meta.id, result);
                self.connect(undo).await.map(Some)
            }
            Step::Fail(err) => Err(err),
            Step::Wait(_) => unreachable!("waits are resolved before run"),
        }
    }

    /// Opens a connection for the slot `undo` holds.
    async fn connect(&self, undo: Undo<'_, D>) -> Result<(D::Connection, Meta)> {
        let result = self.driver.connect().await;
        undo.disarm();
        let now = self.now();
        let mut state = self.lock();
        let (meta, woken) = state.core.connected(result.as_ref().map(|c| c.id()), now);
        let waker = take_waker(&mut state, woken);
        self.flush(&mut state);
        drop(state);
        wake(waker);
        let conn = result?;
        Ok((
            conn,
            meta.expect("the core returns a record for every successful connect"),
        ))
    }

    /// Pings if asked and rolls back a transaction left open; the
    /// connection is given back if the future is dropped meanwhile.
    async fn ready(
        &self,
        conn: D::Connection,
        meta: Meta,
        ping: bool,
    ) -> Result<Option<(D::Connection, Meta)>> {
        let conn = if ping {
            let mut undo = Undo::new(self, Held::Conn(conn, meta));
            let Some(Held::Conn(conn, _)) = undo.held.as_mut() else {
                unreachable!()
            };
            match conn.ping().await {
                Ok(()) => {
                    let mut state = self.lock();
                    state.core.pinged(&meta);
                    self.flush(&mut state);
                }
                Err(err) => {
                    let Some(Held::Conn(mut conn, _)) = undo.disarm() else {
                        unreachable!()
                    };
                    let err = err.classified_by(&*self.dialect);
                    {
                        let mut state = self.lock();
                        state.core.ping_failed(&meta, &err);
                        self.flush(&mut state);
                    }
                    let release = Release::new(self, meta);
                    let closed = conn.close().await;
                    drop(conn);
                    if err.is_disconnect() {
                        release.disarm();
                        self.record_close(meta.id, closed);
                        return self.connect(Undo::new(self, Held::Slot)).await.map(Some);
                    }
                    release.finish(closed);
                    return Err(err.with_invalidated(true));
                }
            }
            match undo.disarm() {
                Some(Held::Conn(conn, _)) => conn,
                _ => unreachable!(),
            }
        } else {
            conn
        };
        if conn.in_transaction() {
            self.reset_at_checkout(conn, meta).await
        } else {
            Ok(Some((conn, meta)))
        }
    }

    /// Rolls back the transaction a connection being handed out was left
    /// in; the connection is given back if the future is dropped
    /// meanwhile. `Ok(None)`: the rollback failed, the connection was
    /// invalidated, start over.
    async fn reset_at_checkout(
        &self,
        conn: D::Connection,
        meta: Meta,
    ) -> Result<Option<(D::Connection, Meta)>> {
        let mut undo = Undo::new(self, Held::Conn(conn, meta));
        let Some(Held::Conn(conn, _)) = undo.held.as_mut() else {
            unreachable!()
        };
        if let Err(err) = conn.rollback().await {
            let Some(Held::Conn(mut conn, _)) = undo.disarm() else {
                unreachable!()
            };
            let err = err.classified_by(&*self.dialect);
            {
                let mut state = self.lock();
                state.core.reset_failed(&meta, &err);
                self.flush(&mut state);
            }
            let release = Release::new(self, meta);
            let closed = conn.close().await;
            release.finish(closed);
            return Ok(None);
        }
        if let Some(journal) = &self.journal {
            journal.record(Some(meta.id), EventKind::Reset, "rollback at checkout");
        }
        match undo.disarm() {
            Some(Held::Conn(conn, meta)) => Ok(Some((conn, meta))),
            _ => unreachable!(),
        }
    }

    /// Checks a clean (or deliberately dirty) connection in, from `Drop`.
    fn checkin_now(&self, conn: D::Connection, meta: Meta, reset: Reset) {
        let now = self.now();
        let mut state = self.lock();
        match state.core.checkin(conn, meta, reset, now) {
            Checkin::Kept(woken) => {
                let waker = take_waker(&mut state, woken);
                self.flush(&mut state);
                drop(state);
                wake(waker);
            }
            Checkin::Close(conn) => {
                self.flush(&mut state);
                drop(state);
                // Dropping an async connection closes it.
                drop(conn);
                self.release(&meta, Ok(()));
            }
        }
    }

    fn record_close(&self, id: crate::ConnId, closed: Result<()>) {
        let mut state = self.lock();
        state.core.record_close(id, closed.as_ref().map(|_| ()));
        self.flush(&mut state);
    }

    fn release(&self, meta: &Meta, closed: Result<()>) {
        let mut state = self.lock();
        let woken = state.core.release(meta, closed.as_ref().map(|_| ()));
        let waker = take_waker(&mut state, woken);
        self.flush(&mut state);
        drop(state);
        wake(waker);
    }
}

/// Releases a slot whose connection is being closed, even if the close is
/// cancelled.
struct Release<'a, D: AsyncDriver> {
    inner: &'a Inner<D>,
    meta: Option<Meta>,
}

impl<'a, D: AsyncDriver> Release<'a, D> {
    fn new(inner: &'a Inner<D>, meta: Meta) -> Self {
        Release {
            inner,
            meta: Some(meta),
        }
    }

    fn disarm(mut self) {
        self.meta = None;
    }

    fn finish(mut self, closed: Result<()>) {
        if let Some(meta) = self.meta.take() {
            self.inner.release(&meta, closed);
        }
    }
}

impl<D: AsyncDriver> Drop for Release<'_, D> {
    fn drop(&mut self) {
        if let Some(meta) = self.meta.take() {
            self.inner.release(&meta, Ok(()));
        }
    }
}

/// A connection checked out of an [`AsyncPool`]. Derefs to the driver
/// connection; goes back to the pool when dropped.
pub struct AsyncPooledConnection<D: AsyncDriver> {
    pool: AsyncPool<D>,
    conn: Option<D::Connection>,
    meta: Meta,
    detached: bool,
}

impl<D: AsyncDriver> fmt::Debug for AsyncPooledConnection<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncPooledConnection")
            .field("id", &self.meta.id)
            .field("soft_invalidated", &self.meta.soft)
            .field("detached", &self.detached)
            .finish()
    }
}

impl<D: AsyncDriver> AsyncPooledConnection<D> {
    /// Hard-invalidates the connection: closed (errors swallowed and
    /// journaled) and its slot given back, even if this future is dropped.
    pub async fn invalidate(mut self) {
        self.invalidate_inner(None).await;
    }

    pub(crate) async fn invalidate_inner(&mut self, cause: Option<&Error>) {
        let Some(mut conn) = self.conn.take() else { return };
        if self.detached {
            let result = conn.close().await;
            self.journal_close_detached(result);
            return;
        }
        let inner = &self.pool.inner;
        {
            let mut state = inner.lock();
            state.core.invalidate(&self.meta, cause);
            inner.flush(&mut state);
        }
        let release = Release::new(inner, self.meta);
        let closed = conn.close().await;
        drop(conn);
        release.finish(closed);
    }

    /// Soft-invalidates the connection: replaced at its next checkout.
    pub fn invalidate_soft(&mut self) {
        if self.meta.soft || self.detached {
            return;
        }
        let inner = &self.pool.inner;
        let mut state = inner.lock();
        state.core.invalidate_soft(&mut self.meta);
        inner.flush(&mut state);
    }

    /// Removes the connection from the pool's accounting; closed when
    /// dropped.
    pub fn detach(&mut self) {
        if self.detached {
            return;
        }
        self.detached = true;
        let inner = &self.pool.inner;
        let mut state = inner.lock();
        let woken = state.core.detach(&self.meta);
        let waker = take_waker(&mut state, woken);
        inner.flush(&mut state);
        drop(state);
        wake(waker);
    }

    /// Whether the connection was soft-invalidated.
    pub fn is_soft_invalidated(&self) -> bool {
        self.meta.soft
    }

    /// Whether the connection was detached.
    pub fn is_detached(&self) -> bool {
        self.detached
    }

    /// The pool it came from.
    pub fn pool(&self) -> &AsyncPool<D> {
        &self.pool
    }

    fn journal_close_detached(&self, result: Result<()>) {
        if let Some(journal) = &self.pool.inner.journal {
            let detail = result.err().map(|e| e.to_string()).unwrap_or_default();
            journal.record(Some(self.meta.id), EventKind::CloseDetached, detail);
        }
    }
}

impl<D: AsyncDriver> Deref for AsyncPooledConnection<D> {
    type Target = D::Connection;

    fn deref(&self) -> &D::Connection {
        self.conn
            .as_ref()
            .expect("an AsyncPooledConnection holds its connection until dropped")
    }
}

impl<D: AsyncDriver> DerefMut for AsyncPooledConnection<D> {
    fn deref_mut(&mut self) -> &mut D::Connection {
        self.conn
            .as_mut()
            .expect("an AsyncPooledConnection holds its connection until dropped")
    }
}

impl<D: AsyncDriver> Drop for AsyncPooledConnection<D> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let inner = &self.pool.inner;
        if self.detached {
            drop(conn);
            self.journal_close_detached(Ok(()));
            return;
        }
        if std::thread::panicking() {
            {
                let mut state = inner.lock();
                state.core.invalidate(&self.meta, None);
                inner.flush(&mut state);
            }
            drop(conn);
            inner.release(&self.meta, Ok(()));
            return;
        }
        if !conn.in_transaction() {
            inner.checkin_now(conn, self.meta, Reset::Clean);
            return;
        }
        if inner.reset == ResetOnReturn::None {
            inner.checkin_now(conn, self.meta, Reset::LeftOpen);
            return;
        }
        // Drop cannot await: reset on a task, the connection still counted
        // out, so no one else can get it before it is clean.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                // The guard exists before the task does: a task dropped
                // before it first runs (runtime shutdown) still gives the
                // slot back, invalidating the connection.
                let guard = ResetGuard {
                    pool: self.pool.clone(),
                    conn: Some(conn),
                    meta: self.meta,
                };
                handle.spawn(guard.reset_and_checkin());
            }
            // No runtime: check it in dirty; the next checkout rolls back.
            Err(_) => inner.checkin_now(conn, self.meta, Reset::LeftOpen),
        }
    }
}

/// A dirty connection on its way back to the pool, reset on a task of its
/// own; invalidated and its slot given back if the task never finishes.
struct ResetGuard<D: AsyncDriver> {
    pool: AsyncPool<D>,
    conn: Option<D::Connection>,
    meta: Meta,
}

impl<D: AsyncDriver> ResetGuard<D> {
    /// The reset on return.
    async fn reset_and_checkin(mut self) {
        let inner = &*self.pool.inner;
        let meta = self.meta;
        let conn = self.conn.as_mut().expect("held until the end");
        let result = match inner.reset {
            ResetOnReturn::Commit => conn.commit().await.map(|()| Reset::Committed),
            _ => conn.rollback().await.map(|()| Reset::RolledBack),
        };
        let conn = self.conn.take().expect("held until the end");
        let inner = &*self.pool.inner;
        match result {
            Ok(reset) => inner.checkin_now(conn, meta, reset),
            Err(err) => {
                let err = err.classified_by(&*inner.dialect);
                {
                    let mut state = inner.lock();
                    state.core.reset_failed(&meta, &err);
                    inner.flush(&mut state);
                }
                drop(conn);
                inner.release(&meta, Ok(()));
            }
        }
    }
}

impl<D: AsyncDriver> Drop for ResetGuard<D> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let inner = &*self.pool.inner;
            {
                let mut state = inner.lock();
                state.core.invalidate(&self.meta, None);
                inner.flush(&mut state);
            }
            drop(conn);
            inner.release(&self.meta, Ok(()));
        }
    }
}
