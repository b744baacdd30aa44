//! The tokio shell around the pool core (feature `tokio`).
//!
//! It drives the same core as the threaded [`Pool`](crate::Pool): it
//! performs the I/O the core asks for ([`Io`]) and awaits. Every `.await`
//! that holds a slot, a waiter's place or a connection sits behind a
//! [`Guard`], so dropping a `get()` future at any await point gives back
//! what it held. A connection dropped with a transaction open is reset by
//! a spawned task before it is checked in (`Drop` cannot await); outside a
//! runtime it is checked in dirty and rolled back at its next checkout.
//! Either way no borrower ever receives it inside a transaction.

use std::collections::hash_map::Entry;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::PoolConfig;
use super::core::{Held, Io, Meta, Phase, WaiterId};
use super::shared::{Shared, shell_items};
use crate::guard::Guard;
use crate::{AsyncConnection, AsyncDriver, Clock, Error, Result};

/// A pool of async driver connections on tokio, with the same semantics as
/// [`Pool`](crate::Pool). Cloning shares the pool.
pub struct AsyncPool<D: AsyncDriver> {
    inner: Arc<Inner<D>>,
}

shell_items!(pool AsyncPool, connection AsyncPooledConnection, driver AsyncDriver);

struct Inner<D: AsyncDriver> {
    driver: D,
    sh: Shared<D::Connection, Waker>,
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
        let sh = Shared::new(&config, clock, driver.dialect(), |c: &D::Connection| {
            c.is_broken()
        });
        Ok(AsyncPool {
            inner: Arc::new(Inner { driver, sh }),
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
        let inner = &*self.inner;
        loop {
            // The usual case has nothing to await and returns from the
            // first match. The rare paths that await the driver are boxed:
            // inline, they would make every `get()` future (and every task
            // that holds one) three times larger.
            let mut deadline = None;
            let mut io = inner.sh.checkout_timed(|| inner.wait_now(), &mut deadline);
            // A wait's grant is looked at like a checkout's first answer.
            let io = loop {
                io = match io {
                    Io::HandOut(conn, meta) if !conn.in_transaction() => return Ok(self.hand_out(conn, meta)),
                    Io::Wait(id) => inner.wait(id, deadline).await,
                    io => break io,
                };
            };
            if let Some((conn, meta)) = Box::pin(inner.drive(io)).await? {
                return Ok(self.hand_out(conn, meta));
            }
        }
    }

    /// The checked-out connection `get` returns.
    #[inline]
    fn hand_out(&self, conn: D::Connection, meta: Meta) -> AsyncPooledConnection<D> {
        AsyncPooledConnection {
            pool: self.clone(),
            conn: Some(conn),
            meta,
            detached: false,
        }
    }

    /// Closes every idle connection now; connections out are closed when
    /// they come back.
    pub async fn dispose(&self) {
        let sh = &self.inner.sh;
        for (mut conn, meta) in sh.with(|core| core.dispose()) {
            let result = conn.close().await;
            drop(conn);
            sh.with(|core| core.disposed_closed(meta.id, result.as_ref().map(|_| ())));
        }
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
    type Output = Io<D::Connection>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let id = self.id;
        let mut state = self.inner.sh.lock();
        let (poll, stale) = match state.core.take_grant(id) {
            Some(io) => (Poll::Ready(io), state.wakers.remove(&id)),
            None => match state.wakers.entry(id) {
                Entry::Occupied(waker) if waker.get().will_wake(cx.waker()) => (Poll::Pending, None),
                Entry::Occupied(mut waker) => (Poll::Pending, Some(waker.insert(cx.waker().clone()))),
                Entry::Vacant(slot) => {
                    slot.insert(cx.waker().clone());
                    (Poll::Pending, None)
                }
            },
        };
        drop(state);
        // Dropped after the lock: no destructor under the pool lock.
        drop(stale);
        poll
    }
}

impl<D: AsyncDriver> Inner<D> {
    /// The instant waits are timed with: tokio's clock (virtual under a
    /// paused runtime), or the pool's clock when that is a manual one.
    fn wait_now(&self) -> Instant {
        if self.sh.clock.is_manual() {
            self.sh.clock.now()
        } else {
            tokio::time::Instant::now().into_std()
        }
    }

    /// Waits as waiter `id` until the core grants it something: a
    /// connection, a slot, or the timeout error once it expired the wait.
    /// Sleeps until `deadline`, the wait's own (the core's answer to its
    /// checkout), then has the core expire what is due and sleeps until
    /// the core's earliest deadline; a manual pool clock wakes no one, so
    /// it is polled.
    async fn wait(&self, id: WaiterId, mut deadline: Option<Instant>) -> Io<D::Connection> {
        let guard = Guard::new((), |()| self.sh.abandon(Held::Waiter(id)));
        let manual = self.sh.clock.is_manual();
        loop {
            let granted = Granted { inner: self, id };
            let until = if manual {
                tokio::time::Instant::now().checked_add(Duration::from_millis(1))
            } else {
                // The pool's clock is tokio's here (see `wait_now`).
                deadline.map(tokio::time::Instant::from_std)
            };
            let io = match until {
                Some(until) => match tokio::time::timeout_at(until, granted).await {
                    Ok(io) => io,
                    Err(_) => {
                        deadline = self.sh.with(|core| {
                            core.handle_timeout(self.wait_now());
                            core.poll_timeout()
                        });
                        continue;
                    }
                },
                None => granted.await,
            };
            guard.disarm();
            return io;
        }
    }

    /// Performs the core's decisions until the checkout or return is
    /// settled: `Some` connection to hand out, `None` to start over (or,
    /// for a return, done). A connection being prepared is held by a
    /// [`Guard`] that gives it back if the future is dropped.
    async fn drive(&self, mut io: Io<D::Connection>) -> Result<Option<(D::Connection, Meta)>> {
        let sh = &self.sh;
        loop {
            io = match io {
                // No connection is handed out with a transaction open.
                Io::HandOut(conn, meta) if !conn.in_transaction() => return Ok(Some((conn, meta))),
                Io::HandOut(conn, meta) => sh.with(|core| core.dirty_at_checkout(conn, meta)),
                Io::Connect => {
                    let guard = Guard::new((), |()| sh.abandon(Held::Slot));
                    let result = self.driver.connect().await;
                    guard.disarm();
                    let now = sh.now();
                    sh.with(|core| core.connected(result, |c| c.id(), now))
                }
                Io::Ping(conn, meta) => {
                    let mut conn = Guard::new(conn, |c| sh.abandon(Held::Back(Io::Ping(c, meta))));
                    let result = sh.classify(conn.ping().await);
                    let conn = conn.disarm();
                    sh.with(|core| core.pinged(conn, meta, result))
                }
                Io::Reset(conn, meta, phase) => {
                    // Cut short: at checkout the connection goes back (the
                    // next checkout rolls back again); on return it is
                    // invalidated.
                    let mut conn = Guard::new(conn, |c| match phase {
                        Phase::Checkout => sh.abandon(Held::Back(Io::Reset(c, meta, phase))),
                        Phase::Rollback | Phase::Commit => {
                            drop(c);
                            sh.abandon(Held::Out(meta));
                        }
                    });
                    let result = sh.classify(match phase {
                        Phase::Commit => conn.commit().await,
                        Phase::Rollback | Phase::Checkout => conn.rollback().await,
                    });
                    let conn = conn.disarm();
                    let now = sh.now();
                    sh.with(|core| core.reset(conn, meta, phase, result, now))
                }
                Io::Close(conn, meta, after) => {
                    let mut conn = Guard::new(conn, |c| {
                        drop(c);
                        sh.abandon(Held::Closing(meta));
                    });
                    let result = conn.close().await;
                    drop(conn.disarm());
                    sh.with(|core| core.closed(&meta, after, result.as_ref().map(|_| ())))
                }
                // Only a checkout starts a wait (`get` handles it); should a
                // decision ever start one, it wakes at the core's earliest
                // deadline and looks again.
                Io::Wait(id) => {
                    let deadline = sh.with(|core| core.poll_timeout());
                    self.wait(id, deadline).await
                }
                Io::Fail(err) => return Err(err),
                Io::Retry | Io::Done => return Ok(None),
            }
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

impl<D: AsyncDriver> AsyncPooledConnection<D> {
    /// Hard-invalidates the connection: closed (errors swallowed and
    /// journaled) and its slot given back, even if this future is dropped.
    pub async fn invalidate(mut self) {
        self.invalidate_inner(None).await;
    }

    pub(crate) async fn invalidate_inner(&mut self, cause: Option<&Error>) {
        let Some(mut conn) = self.conn.take() else { return };
        let inner = &self.pool.inner;
        if self.detached {
            let result = conn.close().await;
            inner.sh.close_detached(&self.meta, result.as_ref().map(|_| ()));
        } else {
            let io = inner.sh.with(|core| core.invalidate_out(conn, self.meta, cause));
            _ = inner.drive(io).await;
        }
    }

    /// A return the core wants reset. `Drop` cannot await: the reset runs
    /// on a task, the connection still counted out, so no one else can get
    /// it before it is clean. Without a runtime it is checked in dirty and
    /// the next checkout rolls it back. Out of line: most returns are clean.
    #[cold]
    #[inline(never)]
    fn reset_on_task(&self, conn: D::Connection, meta: Meta, phase: Phase, now: Instant) {
        let sh = &self.pool.inner.sh;
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                // The guard exists before the task does: a task dropped
                // before it first runs (runtime shutdown) still gives the
                // slot back, invalidating the connection.
                let pool = self.pool.clone();
                let guard = Guard::new(conn, move |c| {
                    drop(c);
                    pool.inner.sh.abandon(Held::Out(meta));
                });
                let pool = self.pool.clone();
                handle.spawn(async move {
                    let io = Io::Reset(guard.disarm(), meta, phase);
                    _ = pool.inner.drive(io).await;
                });
            }
            Err(_) => sh.close_now(sh.with(|core| core.left_open(conn, meta, now))),
        }
    }
}

impl<D: AsyncDriver> Drop for AsyncPooledConnection<D> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let (sh, meta) = (&self.pool.inner.sh, self.meta);
        if std::thread::panicking() {
            return sh.drop_while_panicking(conn, meta, self.detached);
        }
        if self.detached {
            // Dropping an async connection closes it.
            drop(conn);
            return sh.close_detached(&meta, Ok(()));
        }
        let (dirty, now) = (conn.in_transaction(), sh.now());
        match sh.with(|core| core.returned(conn, meta, dirty, now)) {
            // Checked in: the usual return.
            Io::Done => {}
            Io::Reset(conn, meta, phase) => self.reset_on_task(conn, meta, phase, now),
            io => sh.close_now(io),
        }
    }
}
