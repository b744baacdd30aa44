//! The threaded shell around the pool core.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::core::{Checkin, Core, Meta, Reset, Step, WaiterId};
use super::{PoolConfig, PoolStatus, ResetOnReturn};
use crate::lock::lock;
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
    state: Mutex<State<Boxed<D>>>,
    journal: Option<Journal>,
    clock: Clock,
    /// Whether the core decides anything with `now` (see
    /// [`Core::uses_time`]); when it does not, checkouts and returns pass
    /// `epoch` instead of reading the clock.
    uses_time: bool,
    /// The instant the pool was built, on its clock.
    epoch: Instant,
    reset: ResetOnReturn,
}

/// A driver connection as the pool holds it: boxed once when opened, so
/// that checkouts and returns move a pointer, not the connection.
type Boxed<D> = Box<<D as Driver>::Connection>;

/// The core and, for each waiting checkout, the condition it sleeps on.
struct State<C> {
    core: Core<C>,
    /// The waiting checkouts and their conditions. Few and short-lived: a
    /// list searched linearly.
    waiting: Vec<(WaiterId, Arc<Condvar>)>,
    /// Conditions of finished waits, reused by the next ones.
    spare: Vec<Arc<Condvar>>,
}

impl<C> State<C> {
    /// The condition waiter `id` sleeps on, to notify once the lock is
    /// released (so that the woken thread does not block on it at once).
    fn waker(&self, id: WaiterId) -> Option<Arc<Condvar>> {
        self.waiting
            .iter()
            .find(|(w, _)| *w == id)
            .map(|(_, cv)| Arc::clone(cv))
    }

    /// Waiter `id` stops waiting; its condition is kept for the next one.
    /// A late notification on it only wakes that next waiter spuriously.
    fn end_wait(&mut self, id: WaiterId) {
        if let Some(i) = self.waiting.iter().position(|(w, _)| *w == id) {
            let (_, cv) = self.waiting.swap_remove(i);
            self.spare.push(cv);
        }
    }
}

/// Wakes the waiter a [`State::waker`] found, if any. Call without the lock.
fn notify(waker: Option<Arc<Condvar>>) {
    if let Some(cv) = waker {
        cv.notify_one();
    }
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
        let core = Core::new(config.core_config(), config.journal.is_some(), |c: &Boxed<D>| {
            c.is_broken()
        });
        let clock = config.effective_clock();
        Ok(Pool {
            inner: Arc::new(Inner {
                dialect,
                uses_time: core.uses_time(),
                epoch: clock.now(),
                state: Mutex::new(State {
                    core,
                    waiting: Vec::new(),
                    spare: Vec::new(),
                }),
                clock,
                journal: config.journal,
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
            let now = self.inner.now();
            let mut state = self.inner.lock();
            let step = state.core.checkout(now);
            let step = match step {
                Step::Wait(id) => self.inner.wait(state, id)?,
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
        let wakers: Vec<_> = woken.into_iter().map(|w| state.waker(w)).collect();
        self.inner.flush(&mut state);
        drop(state);
        wakers.into_iter().for_each(notify);
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

/// A connection ready to hand out, before it is tied to a pool handle.
struct Ready<C> {
    conn: C,
    meta: Meta,
}

impl<C> Ready<Box<C>> {
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
    #[inline]
    fn lock(&self) -> MutexGuard<'_, State<Boxed<D>>> {
        lock(&self.state)
    }

    /// The `now` to give the core: the clock's, when the core uses it.
    #[inline]
    fn now(&self) -> Instant {
        if self.uses_time {
            self.clock.now()
        } else {
            self.epoch
        }
    }

    /// Writes the core's pending events to the journal, under the lock so
    /// the journal keeps the core's order.
    fn flush(&self, state: &mut State<Boxed<D>>) {
        if let Some(journal) = &self.journal {
            state
                .core
                .drain_events(|e| _ = journal.record(e.conn, e.kind, e.detail));
        }
    }

    /// Waits as waiter `id` for a grant: a connection, a slot, or the
    /// timeout error once the core expired the wait. The timeout runs from
    /// now, on the pool's clock (a manual one is polled: it wakes no one).
    fn wait(&self, mut state: MutexGuard<'_, State<Boxed<D>>>, id: WaiterId) -> Result<Step<Boxed<D>>> {
        let mut now = self.clock.now();
        state.core.wait_from(id, now);
        self.flush(&mut state);
        let cv = state.spare.pop().unwrap_or_default();
        state.waiting.push((id, Arc::clone(&cv)));
        let slice = self.clock.is_manual().then_some(Duration::from_millis(1));
        loop {
            if let Some(step) = state.core.take_grant(id) {
                state.end_wait(id);
                self.flush(&mut state);
                return match step {
                    Step::Fail(err) => Err(err),
                    step => Ok(step),
                };
            }
            // Every waiter past its deadline is expired (and finds its
            // answer when its own timer wakes it, at once).
            if !state.core.handle_timeout(now).is_empty() {
                continue;
            }
            let left = state
                .core
                .poll_timeout()
                .map(|d| d.saturating_duration_since(now));
            state = match left.into_iter().chain(slice).min() {
                Some(wait) => match cv.wait_timeout(state, wait) {
                    Ok((state, _)) => state,
                    Err(poisoned) => poisoned.into_inner().0,
                },
                None => cv.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner),
            };
            now = self.clock.now();
        }
    }

    /// Performs a checkout step's I/O. `Ok(None)` means "start over" (a
    /// connection found dirty at checkout was invalidated).
    fn run(&self, step: Step<Boxed<D>>) -> Result<Option<Ready<Boxed<D>>>> {
        match step {
            Step::Ready { conn, meta, ping } => self.ready(conn, meta, ping),
            Step::Connect => self.connect().map(Some),
            Step::Replace { mut conn, meta } => {
                let guard = PanicGuard::new(self, Held::Reserved);
                let result = conn.close();
                drop(conn);
                guard.disarm();
                let mut state = self.lock();
                state.core.record_close(meta.id, result.as_ref().map(|_| ()));
                self.flush(&mut state);
                drop(state);
                self.connect().map(Some)
            }
            Step::Fail(err) => Err(err),
            Step::Wait(_) => unreachable!("waits are resolved before run"),
        }
    }

    /// Opens a connection for a reserved slot.
    fn connect(&self) -> Result<Ready<Boxed<D>>> {
        let guard = PanicGuard::new(self, Held::Reserved);
        let result = self.driver.connect();
        guard.disarm();
        let now = self.now();
        let mut state = self.lock();
        let (meta, woken) = state.core.connected(result.as_ref().map(|c| c.id()), now);
        let waker = woken.and_then(|w| state.waker(w));
        self.flush(&mut state);
        drop(state);
        notify(waker);
        let conn = Box::new(result?);
        let meta = meta.expect("the core returns a record for every successful connect");
        Ok(Ready { conn, meta })
    }

    /// Pings if asked, and makes sure no transaction is open.
    fn ready(&self, mut conn: Boxed<D>, meta: Meta, ping: bool) -> Result<Option<Ready<Boxed<D>>>> {
        let guard = PanicGuard::new(self, Held::Out(meta));
        if ping {
            match conn.ping() {
                Ok(()) => {
                    let mut state = self.lock();
                    state.core.pinged(&meta);
                    self.flush(&mut state);
                }
                Err(err) => {
                    guard.disarm();
                    let err = err.classified_by(&*self.dialect);
                    let mut state = self.lock();
                    state.core.ping_failed(&meta, &err);
                    self.flush(&mut state);
                    drop(state);
                    let closed = self.close_out(conn, meta);
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
                guard.disarm();
                let err = err.classified_by(&*self.dialect);
                let mut state = self.lock();
                state.core.reset_failed(&meta, &err);
                self.flush(&mut state);
                drop(state);
                self.close_and_release(conn, &meta);
                return Ok(None);
            }
            if let Some(journal) = &self.journal {
                journal.record(Some(meta.id), EventKind::Reset, "rollback at checkout");
            }
        }
        guard.disarm();
        Ok(Some(Ready { conn, meta }))
    }

    /// Closes a connection that is out, its slot still held (and given
    /// back if the close panics).
    fn close_out(&self, mut conn: Boxed<D>, meta: Meta) -> Result<()> {
        let closing = PanicGuard::new(self, Held::Closing(meta));
        let closed = conn.close();
        drop(conn);
        closing.disarm();
        closed
    }

    /// Closes a connection that is out and gives its slot back.
    fn close_and_release(&self, conn: Boxed<D>, meta: &Meta) {
        let closed = self.close_out(conn, *meta);
        self.release(meta, closed);
    }

    /// Gives back the slot of a closed connection.
    fn release(&self, meta: &Meta, closed: Result<()>) {
        let mut state = self.lock();
        let woken = state.core.release(meta, closed.as_ref().map(|_| ()));
        let waker = woken.and_then(|w| state.waker(w));
        self.flush(&mut state);
        drop(state);
        notify(waker);
    }

    /// Invalidates an out connection: journal, close (errors swallowed and
    /// journaled), give the slot back.
    fn invalidate(&self, conn: Boxed<D>, meta: &Meta, cause: Option<&Error>) {
        let mut state = self.lock();
        state.core.invalidate(meta, cause);
        self.flush(&mut state);
        drop(state);
        self.close_and_release(conn, meta);
    }

    /// Returns a connection: reset it, then check it in (or close it).
    fn checkin(&self, mut conn: Boxed<D>, meta: Meta) {
        let guard = PanicGuard::new(self, Held::Out(meta));
        let reset = if conn.in_transaction() {
            match self.reset {
                ResetOnReturn::Rollback => conn.rollback().map(|()| Reset::RolledBack),
                ResetOnReturn::Commit => conn.commit().map(|()| Reset::Committed),
                ResetOnReturn::None => Ok(Reset::LeftOpen),
            }
        } else {
            Ok(Reset::Clean)
        };
        guard.disarm();
        let reset = match reset {
            Ok(reset) => reset,
            Err(err) => {
                let err = err.classified_by(&*self.dialect);
                let mut state = self.lock();
                state.core.reset_failed(&meta, &err);
                self.flush(&mut state);
                drop(state);
                self.close_and_release(conn, &meta);
                return;
            }
        };
        let now = self.now();
        let mut state = self.lock();
        match state.core.checkin(conn, meta, reset, now) {
            Checkin::Kept(woken) => {
                let waker = woken.and_then(|w| state.waker(w));
                self.flush(&mut state);
                drop(state);
                notify(waker);
            }
            Checkin::Close(conn) => {
                self.flush(&mut state);
                drop(state);
                self.close_and_release(conn, &meta);
            }
        }
    }
}

/// What a driver call holds of the pool while it runs.
enum Held {
    /// A slot reserved for a connect.
    Reserved,
    /// A connection counted out.
    Out(Meta),
    /// A connection being closed, already invalidated or being released.
    Closing(Meta),
}

/// Gives back what a driver call held if the call panics (a mock that
/// panics on an unexpected call, say): the slot is never lost. Disarmed
/// once the call returned and the core was told.
struct PanicGuard<'a, D: Driver> {
    inner: &'a Inner<D>,
    held: Option<Held>,
}

impl<'a, D: Driver> PanicGuard<'a, D> {
    fn new(inner: &'a Inner<D>, held: Held) -> Self {
        PanicGuard {
            inner,
            held: Some(held),
        }
    }

    fn disarm(mut self) {
        self.held = None;
    }
}

impl<D: Driver> Drop for PanicGuard<'_, D> {
    fn drop(&mut self) {
        let Some(held) = self.held.take() else { return };
        let now = self.inner.now();
        let mut state = self.inner.lock();
        let woken = match held {
            Held::Reserved => state.core.give_back(Step::<Boxed<D>>::Connect, now),
            Held::Out(meta) => {
                state.core.invalidate(&meta, None);
                state.core.release(&meta, Ok(()))
            }
            Held::Closing(meta) => state.core.release(&meta, Ok(())),
        };
        let waker = woken.and_then(|w| state.waker(w));
        self.inner.flush(&mut state);
        drop(state);
        notify(waker);
    }
}

/// A connection checked out of a [`Pool`]. Derefs to the driver
/// connection; goes back to the pool when dropped (reset first, or
/// invalidated if the thread is panicking).
pub struct PooledConnection<D: Driver> {
    pool: Pool<D>,
    conn: Option<Boxed<D>>,
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
        let woken = state.core.detach(&self.meta);
        let waker = woken.and_then(|w| state.waker(w));
        self.pool.inner.flush(&mut state);
        drop(state);
        notify(waker);
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

    fn close_detached(&self, mut conn: Boxed<D>) {
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

#[cfg(test)]
mod tests {
    //! The shell's waiting paths and its use of the clock.

    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::thread;

    use super::*;
    use crate::{ConnId, ErrorClass, ErrorKind, Row, Value};

    static NEXT_ID: AtomicU64 = AtomicU64::new(1);

    #[derive(Debug)]
    struct TestDialect;

    impl Dialect for TestDialect {
        fn name(&self) -> &str {
            "test"
        }
        fn classify(&self, err: &Error) -> ErrorClass {
            match err.kind() {
                ErrorKind::Closed => ErrorClass::Disconnect,
                _ => ErrorClass::Other,
            }
        }
    }

    /// Connections that do nothing but count their pings.
    #[derive(Debug, Default)]
    struct TestDriver {
        pings: Arc<AtomicUsize>,
    }

    #[derive(Debug)]
    struct TestConn {
        id: ConnId,
        pings: Arc<AtomicUsize>,
    }

    impl Driver for TestDriver {
        type Connection = TestConn;
        fn connect(&self) -> Result<TestConn> {
            Ok(TestConn {
                id: ConnId(NEXT_ID.fetch_add(1, Ordering::Relaxed)),
                pings: Arc::clone(&self.pings),
            })
        }
        fn dialect(&self) -> Arc<dyn Dialect> {
            Arc::new(TestDialect)
        }
    }

    impl Connection for TestConn {
        fn id(&self) -> ConnId {
            self.id
        }
        fn execute(&mut self, _: &str, _: &[Value]) -> Result<u64> {
            Ok(0)
        }
        fn query(&mut self, _: &str, _: &[Value]) -> Result<Vec<Row>> {
            Ok(Vec::new())
        }
        fn begin(&mut self) -> Result<()> {
            Ok(())
        }
        fn commit(&mut self) -> Result<()> {
            Ok(())
        }
        fn rollback(&mut self) -> Result<()> {
            Ok(())
        }
        fn ping(&mut self) -> Result<()> {
            self.pings.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        fn in_transaction(&self) -> bool {
            false
        }
        fn close(&mut self) -> Result<()> {
            Ok(())
        }
    }

    fn pool(config: PoolConfig) -> Pool<TestDriver> {
        Pool::new(TestDriver::default(), config).unwrap()
    }

    /// Waits until `n` checkouts wait.
    fn until_waiting(pool: &Pool<TestDriver>, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while pool.status().waiting != n {
            assert!(
                Instant::now() < deadline,
                "{n} waiters expected: {:?}",
                pool.status()
            );
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn waiters_are_served_first_come_first_served() {
        let pool = pool(PoolConfig::new().size(1).max_overflow(0));
        let held = pool.get().unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for i in 0..4 {
            let (pool2, order) = (pool.clone(), Arc::clone(&order));
            threads.push(thread::spawn(move || {
                let conn = pool2.get().unwrap();
                order.lock().unwrap().push(i);
                drop(conn);
            }));
            until_waiting(&pool, i + 1);
        }
        drop(held);
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3]);
        assert_eq!(pool.status().waiting, 0);
        pool.check_counters().unwrap();
    }

    #[test]
    fn a_timed_out_wait_leaves_nothing_behind_and_the_next_wait_is_served() {
        let pool = pool(
            PoolConfig::new()
                .size(1)
                .max_overflow(0)
                .timeout(Duration::from_millis(30)),
        );
        let held = pool.get().unwrap();
        for _ in 0..3 {
            let err = pool.get().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Timeout);
            assert_eq!(pool.status().waiting, 0);
        }
        let pool2 = pool.clone();
        let waiter = thread::spawn(move || pool2.get().map(|c| c.id()));
        until_waiting(&pool, 1);
        let id = held.id();
        drop(held);
        assert_eq!(waiter.join().unwrap().unwrap(), id);
        pool.check_counters().unwrap();
    }

    #[test]
    fn invalidate_and_detach_wake_a_waiter() {
        let pool = pool(PoolConfig::new().size(1).max_overflow(0));
        for detach in [false, true] {
            let mut held = pool.get().unwrap();
            let pool2 = pool.clone();
            let waiter = thread::spawn(move || pool2.get().map(|c| c.id()));
            until_waiting(&pool, 1);
            let id = held.id();
            if detach {
                held.detach();
                assert_ne!(waiter.join().unwrap().unwrap(), id);
                drop(held);
            } else {
                held.invalidate();
                assert_ne!(waiter.join().unwrap().unwrap(), id);
            }
            pool.check_counters().unwrap();
        }
    }

    #[test]
    fn many_threads_never_exceed_the_pool() {
        let pool = pool(PoolConfig::new().size(2).max_overflow(1));
        let out = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        thread::scope(|s| {
            for _ in 0..12 {
                s.spawn(|| {
                    for _ in 0..300 {
                        let conn = pool.get().unwrap();
                        let n = out.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(n, Ordering::SeqCst);
                        thread::yield_now();
                        out.fetch_sub(1, Ordering::SeqCst);
                        drop(conn);
                    }
                });
            }
        });
        assert!(peak.load(Ordering::SeqCst) <= 3);
        let status = pool.status();
        assert_eq!((status.checked_out, status.waiting), (0, 0));
        assert!(status.checked_in <= 2);
        pool.check_counters().unwrap();
    }

    #[test]
    fn recycle_and_pre_ping_idle_still_read_the_clock() {
        let clock = Clock::manual();
        let pool = pool(
            PoolConfig::new()
                .size(1)
                .recycle(Duration::from_secs(60))
                .pre_ping_idle(Duration::from_secs(10))
                .clock(clock.clone()),
        );
        let first = pool.get().unwrap().id();
        // Busy: no ping.
        assert_eq!(pool.get().unwrap().id(), first);
        assert_eq!(pool.driver().pings.load(Ordering::Relaxed), 0);
        // Idle past pre_ping_idle: pinged.
        clock.advance(Duration::from_secs(11));
        assert_eq!(pool.get().unwrap().id(), first);
        assert_eq!(pool.driver().pings.load(Ordering::Relaxed), 1);
        // Older than recycle: replaced.
        clock.advance(Duration::from_secs(50));
        assert_ne!(pool.get().unwrap().id(), first);
    }

    #[test]
    fn without_recycle_or_pre_ping_idle_the_clock_is_not_read_at_checkout() {
        let clock = Clock::manual();
        let pool = pool(PoolConfig::new().size(1).pre_ping(true).clock(clock.clone()));
        assert!(!pool.inner.uses_time);
        let first = pool.get().unwrap().id();
        clock.advance(Duration::from_secs(3600));
        // Still the same connection, pinged at every checkout after its first.
        assert_eq!(pool.get().unwrap().id(), first);
        assert_eq!(pool.get().unwrap().id(), first);
        assert_eq!(pool.driver().pings.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn the_timeout_runs_on_the_pool_clock_without_recycle() {
        let clock = Clock::manual();
        let pool = pool(
            PoolConfig::new()
                .size(1)
                .max_overflow(0)
                .timeout(Duration::from_secs(5))
                .clock(clock.clone()),
        );
        let _held = pool.get().unwrap();
        let pool2 = pool.clone();
        let waiter = thread::spawn(move || pool2.get().map(|c| c.id()));
        until_waiting(&pool, 1);
        clock.advance(Duration::from_secs(4));
        thread::sleep(Duration::from_millis(20));
        assert_eq!(pool.status().waiting, 1);
        clock.advance(Duration::from_secs(1));
        let err = waiter.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
    }
}
