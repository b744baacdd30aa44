//! The threaded shell around the pool core.

use std::collections::HashMap;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::core::{Checkin, Core, Meta, Reset, Step, WaiterId};
use super::{PoolConfig, PoolStatus, ResetOnReturn};
use crate::clock::lock;
use crate::{Clock, Connection, Dialect, Driver, Error, EventKind, Journal, Result};

/// A pool of driver connections for threaded code, with SQLAlchemy's
/// QueuePool semantics. Cloning shares the pool.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use dbfault::{Connection, Pool, PoolConfig, SqliteDriver};
///
/// let pool = Pool::new(SqliteDriver::memory("pool-doc").unwrap(), PoolConfig::new().size(2)).unwrap();
/// let mut conn = pool.get().unwrap();
/// conn.execute("CREATE TABLE t (x INTEGER)", &[]).unwrap();
/// drop(conn); // back to the pool
/// assert_eq!(pool.status().checked_in, 1);
/// # }
/// ```
pub struct Pool<D: Driver> {
    inner: Arc<Inner<D>>,
}

struct Inner<D: Driver> {
    driver: D,
    dialect: Arc<dyn Dialect>,
    state: Mutex<State<D::Connection>>,
    journal: Option<Journal>,
    clock: Clock,
    timeout: Duration,
    reset: ResetOnReturn,
}

/// The core and, for each waiting checkout, the condition it sleeps on.
struct State<C> {
    core: Core<C>,
    waiting: HashMap<WaiterId, Arc<Condvar>>,
}

impl<D: Driver> Clone for Pool<D> {
    fn clone(&self) -> Self {
        Pool {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<D: Driver> fmt::Debug for Pool<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("dialect", &self.inner.dialect.name())
            .field("status", &self.status())
            .finish()
    }
}

impl<D: Driver> Pool<D> {
    /// A pool over `driver`. Opens nothing until the first checkout.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) if `config` is
    /// impossible (see [`PoolConfig::validate`]).
    pub fn new(driver: D, config: PoolConfig) -> Result<Self> {
        config.validate()?;
        let dialect = driver.dialect();
        Ok(Pool {
            inner: Arc::new(Inner {
                dialect,
                state: Mutex::new(State {
                    core: Core::new(config.core_config(), config.journal.is_some()),
                    waiting: HashMap::new(),
                }),
                clock: config.effective_clock(),
                journal: config.journal,
                timeout: config.timeout,
                reset: config.reset_on_return,
                driver,
            }),
        })
    }

    /// Checks out a connection: an idle one, or a new one while the pool
    /// has room, or the first one returned within `timeout`.
    ///
    /// # Errors
    ///
    /// The driver's connect error, unchanged; a ping error that was not a
    /// disconnect; or [`ErrorKind::Timeout`](crate::ErrorKind::Timeout)
    /// carrying the last connect error as its source.
    pub fn get(&self) -> Result<PooledConnection<D>> {
        loop {
            let now = self.inner.clock.now();
            let mut state = self.inner.lock();
            let step = state.core.checkout(now);
            let step = match step {
                Step::Wait(id) => self.inner.wait(state, id, now)?,
                other => {
                    self.inner.flush(&mut state);
                    drop(state);
                    other
                }
            };
            if let Some(conn) = self.inner.run(step)? {
                return Ok(conn.into_pooled(self));
            }
        }
    }

    /// The pool's counters, read at one instant.
    pub fn status(&self) -> PoolStatus {
        self.inner.lock().core.status()
    }

    /// Invalidates every connection that exists now: idle ones and the ones
    /// out are replaced at their next checkout.
    pub fn invalidate_all(&self) {
        let mut state = self.inner.lock();
        state.core.invalidate_all();
        self.inner.flush(&mut state);
    }

    /// Closes every idle connection now; connections out are closed when
    /// they come back. The pool stays usable and its counters stay
    /// consistent throughout.
    pub fn dispose(&self) {
        let mut state = self.inner.lock();
        let (idle, woken) = state.core.dispose();
        for w in woken {
            wake(&state, w);
        }
        self.inner.flush(&mut state);
        drop(state);
        // The lock is released before any driver connection is closed.
        for (mut conn, meta) in idle {
            let result = conn.close();
            let mut state = self.inner.lock();
            state.core.record_close(meta.id, result.as_ref().map(|_| ()));
            self.inner.flush(&mut state);
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

    /// Checks the pool's counter invariants at this instant: checked-in
    /// plus checked-out equals the connections owned, never more than
    /// `size + max_overflow`, and no connection idles while a checkout
    /// waits. Returns a description of the first one broken.
    pub fn check_counters(&self) -> std::result::Result<(), String> {
        self.inner.lock().core.check()
    }
}

fn wake<C>(state: &State<C>, waiter: WaiterId) {
    if let Some(cv) = state.waiting.get(&waiter) {
        cv.notify_one();
    }
}

/// A connection ready to hand out, before it is tied to a pool handle.
struct Ready<C> {
    conn: C,
    meta: Meta,
}

impl<C> Ready<C> {
    fn into_pooled<D: Driver<Connection = C>>(self, pool: &Pool<D>) -> PooledConnection<D> {
        PooledConnection {
            pool: pool.clone(),
            conn: Some(self.conn),
            meta: self.meta,
            detached: false,
        }
    }
}

impl<D: Driver> Inner<D> {
    fn lock(&self) -> MutexGuard<'_, State<D::Connection>> {
        lock(&self.state)
    }

    /// Writes the core's pending events to the journal, under the lock so
    /// the journal keeps the core's order.
    fn flush(&self, state: &mut State<D::Connection>) {
        if let Some(journal) = &self.journal {
            state
                .core
                .drain_events(|e| _ = journal.record(e.conn, e.kind, e.detail));
        }
    }

    /// Waits as waiter `id` for a grant, until the timeout.
    fn wait(
        &self,
        mut state: MutexGuard<'_, State<D::Connection>>,
        id: WaiterId,
        start: Instant,
    ) -> Result<Step<D::Connection>> {
        self.flush(&mut state);
        let cv = Arc::new(Condvar::new());
        state.waiting.insert(id, Arc::clone(&cv));
        let deadline = start + self.timeout;
        // A manual clock does not wake anyone: poll it.
        let slice = if self.clock.is_manual() {
            Duration::from_millis(1)
        } else {
            Duration::MAX
        };
        loop {
            if let Some(step) = state.core.take_grant(id) {
                state.waiting.remove(&id);
                self.flush(&mut state);
                return Ok(step);
            }
            let now = self.clock.now();
            if now >= deadline {
                state.waiting.remove(&id);
                if let Some(step) = state.core.cancel_wait(id, true) {
                    self.flush(&mut state);
                    return Ok(step);
                }
                self.flush(&mut state);
                let last = state.core.last_connect_error().cloned();
                return Err(Error::timeout(
                    format!("no connection available within {:?}", self.timeout),
                    last,
                ));
            }
            let wait = (deadline - now).min(slice);
            state = cv
                .wait_timeout(state, wait)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// Performs a checkout step's I/O. `Ok(None)` means "start over" (a
    /// connection found dirty at checkout was invalidated).
    fn run(&self, step: Step<D::Connection>) -> Result<Option<Ready<D::Connection>>> {
        match step {
            Step::Ready { conn, meta, ping } => self.ready(conn, meta, ping),
            Step::Connect => self.connect().map(Some),
            Step::Replace { mut conn, meta } => {
                let result = conn.close();
                drop(conn);
                let mut state = self.lock();
                state.core.record_close(meta.id, result.as_ref().map(|_| ()));
                self.flush(&mut state);
                drop(state);
                self.connect().map(Some)
            }
            Step::Wait(_) => unreachable!("waits are resolved before run"),
        }
    }

    /// Opens a connection for a reserved slot.
    fn connect(&self) -> Result<Ready<D::Connection>> {
        let result = self.driver.connect();
        let now = self.clock.now();
        let mut state = self.lock();
        let (meta, woken) = state.core.connected(result.as_ref().map(|c| c.id()), now);
        if let Some(w) = woken {
            wake(&state, w);
        }
        self.flush(&mut state);
        drop(state);
        let conn = result?;
        let meta = meta.expect("the core returns a record for every successful connect");
        Ok(Ready { conn, meta })
    }

    /// Pings if asked, and makes sure no transaction is open.
    fn ready(&self, mut conn: D::Connection, meta: Meta, ping: bool) -> Result<Option<Ready<D::Connection>>> {
        if ping {
            match conn.ping() {
                Ok(()) => {
                    let mut state = self.lock();
                    state.core.pinged(&meta);
                    self.flush(&mut state);
                }
                Err(err) => {
                    let err = err.classified_by(&*self.dialect);
                    let mut state = self.lock();
                    state.core.ping_failed(&meta, &err);
                    self.flush(&mut state);
                    drop(state);
                    let closed = conn.close();
                    drop(conn);
                    if err.is_disconnect() {
                        // The server went away: reconnect once, silently.
                        let mut state = self.lock();
                        state.core.record_close(meta.id, closed.as_ref().map(|_| ()));
                        self.flush(&mut state);
                        drop(state);
                        return self.connect().map(Some);
                    }
                    self.release(&meta, closed);
                    return Err(err.with_invalidated(true));
                }
            }
        }
        // No connection is handed out with a transaction open, whatever
        // happened on return.
        if conn.in_transaction() {
            if let Err(err) = conn.rollback() {
                let err = err.classified_by(&*self.dialect);
                let mut state = self.lock();
                state.core.reset_failed(&meta, &err);
                self.flush(&mut state);
                drop(state);
                let closed = conn.close();
                self.release(&meta, closed);
                return Ok(None);
            }
            if let Some(journal) = &self.journal {
                journal.record(Some(meta.id), EventKind::Reset, "rollback at checkout");
            }
        }
        Ok(Some(Ready { conn, meta }))
    }

    /// Gives back the slot of a closed connection.
    fn release(&self, meta: &Meta, closed: Result<()>) {
        let mut state = self.lock();
        if let Some(w) = state.core.release(meta, closed.as_ref().map(|_| ())) {
            wake(&state, w);
        }
        self.flush(&mut state);
    }

    /// Invalidates an out connection: journal, close (errors swallowed and
    /// journaled), give the slot back.
    fn invalidate(&self, mut conn: D::Connection, meta: &Meta, cause: Option<&Error>) {
        let mut state = self.lock();
        state.core.invalidate(meta, cause);
        self.flush(&mut state);
        drop(state);
        let closed = conn.close();
        drop(conn);
        self.release(meta, closed);
    }

    /// Returns a connection: reset it, then check it in (or close it).
    fn checkin(&self, mut conn: D::Connection, meta: Meta) {
        let reset = if conn.in_transaction() {
            match self.reset {
                ResetOnReturn::Rollback => conn.rollback().map(|()| Reset::RolledBack),
                ResetOnReturn::Commit => conn.commit().map(|()| Reset::Committed),
                ResetOnReturn::None => Ok(Reset::LeftOpen),
            }
        } else {
            Ok(Reset::Clean)
        };
        let reset = match reset {
            Ok(reset) => reset,
            Err(err) => {
                let err = err.classified_by(&*self.dialect);
                let mut state = self.lock();
                state.core.reset_failed(&meta, &err);
                self.flush(&mut state);
                drop(state);
                let closed = conn.close();
                drop(conn);
                self.release(&meta, closed);
                return;
            }
        };
        let now = self.clock.now();
        let mut state = self.lock();
        match state.core.checkin(conn, meta, reset, now) {
            Checkin::Kept(woken) => {
                if let Some(w) = woken {
                    wake(&state, w);
                }
                self.flush(&mut state);
            }
            Checkin::Close(mut conn) => {
                self.flush(&mut state);
                drop(state);
                let closed = conn.close();
                drop(conn);
                self.release(&meta, closed);
            }
        }
    }
}

/// A connection checked out of a [`Pool`]. Derefs to the driver
/// connection; goes back to the pool when dropped (reset first, or
/// invalidated if the thread is panicking).
pub struct PooledConnection<D: Driver> {
    pool: Pool<D>,
    conn: Option<D::Connection>,
    meta: Meta,
    detached: bool,
}

impl<D: Driver> fmt::Debug for PooledConnection<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledConnection")
            .field("id", &self.meta.id)
            .field("soft_invalidated", &self.meta.soft)
            .field("detached", &self.detached)
            .finish()
    }
}

impl<D: Driver> PooledConnection<D> {
    /// Hard-invalidates the connection: it is closed now (errors swallowed
    /// and journaled) and its slot goes back to the pool; the next checkout
    /// opens a new one.
    pub fn invalidate(mut self) {
        self.invalidate_inner(None);
    }

    /// Invalidates because of `cause`; a disconnect also invalidates every
    /// connection opened before this one.
    pub(crate) fn invalidate_inner(&mut self, cause: Option<&Error>) {
        if let Some(conn) = self.conn.take() {
            if self.detached {
                self.close_detached(conn);
            } else {
                self.pool.inner.invalidate(conn, &self.meta, cause);
            }
        }
    }

    /// Soft-invalidates the connection: usable until returned, then
    /// closed and replaced at its next checkout. A no-op when already soft.
    pub fn invalidate_soft(&mut self) {
        if self.meta.soft || self.detached {
            return;
        }
        let mut state = self.pool.inner.lock();
        state.core.invalidate_soft(&mut self.meta);
        self.pool.inner.flush(&mut state);
    }

    /// Removes the connection from the pool's accounting (its slot is free
    /// at once); it is closed when dropped. A no-op when already detached.
    pub fn detach(&mut self) {
        if self.detached {
            return;
        }
        self.detached = true;
        let mut state = self.pool.inner.lock();
        if let Some(w) = state.core.detach(&self.meta) {
            wake(&state, w);
        }
        self.pool.inner.flush(&mut state);
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
    pub fn pool(&self) -> &Pool<D> {
        &self.pool
    }

    fn close_detached(&self, mut conn: D::Connection) {
        let result = conn.close();
        if let Some(journal) = &self.pool.inner.journal {
            let detail = result.err().map(|e| e.to_string()).unwrap_or_default();
            journal.record(Some(self.meta.id), EventKind::CloseDetached, detail);
        }
    }
}

impl<D: Driver> Deref for PooledConnection<D> {
    type Target = D::Connection;

    fn deref(&self) -> &D::Connection {
        self.conn
            .as_ref()
            .expect("a PooledConnection holds its connection until dropped")
    }
}

impl<D: Driver> DerefMut for PooledConnection<D> {
    fn deref_mut(&mut self) -> &mut D::Connection {
        self.conn
            .as_mut()
            .expect("a PooledConnection holds its connection until dropped")
    }
}

impl<D: Driver> Drop for PooledConnection<D> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if self.detached {
            self.close_detached(conn);
        } else if std::thread::panicking() {
            // Whatever the panic interrupted may have left a transaction
            // half done: never reuse this connection.
            self.pool.inner.invalidate(conn, &self.meta, None);
        } else {
            self.pool.inner.checkin(conn, self.meta);
        }
    }
}
