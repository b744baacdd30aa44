//! The threaded shell around the pool core: it performs the I/O the core
//! asks for ([`Io`]) on the caller's thread and waits on a condition.

use std::sync::{Arc, Condvar};
use std::time::Duration;

use super::PoolConfig;
use super::core::{Held, Io, Meta, Phase, WaiterId};
use super::shared::{Shared, shell_items};
use crate::guard::Guard;
use crate::{Connection, Driver, Error, Result};

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

/// A driver connection as the pool holds it: boxed once when opened, so
/// that checkouts and returns move a pointer, not the connection.
type Boxed<D> = Box<<D as Driver>::Connection>;

shell_items!(pool Pool, connection PooledConnection, driver Driver);

struct Inner<D: Driver> {
    driver: D,
    sh: Shared<Boxed<D>, Arc<Condvar>>,
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
        let clock = config.effective_clock();
        let sh = Shared::new(&config, clock, driver.dialect(), |c: &Boxed<D>| c.is_broken());
        Ok(Pool {
            inner: Arc::new(Inner { driver, sh }),
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
            let io = self.inner.sh.checkout(|| self.inner.sh.clock.now());
            // The common case, an idle connection with nothing to do, skips
            // the loop of `drive`.
            let io = match io {
                Io::HandOut(conn, meta) if !conn.in_transaction() => return Ok(self.hand_out(conn, meta)),
                io => io,
            };
            if let Some((conn, meta)) = self.inner.drive(io)? {
                return Ok(self.hand_out(conn, meta));
            }
        }
    }

    fn hand_out(&self, conn: Boxed<D>, meta: Meta) -> PooledConnection<D> {
        PooledConnection {
            pool: self.clone(),
            conn: Some(conn),
            meta,
            detached: false,
        }
    }

    /// The earliest deadline of a waiting checkout, as the core keeps it
    /// (the fixtures' clock moves to it when the pool sits idle).
    #[cfg_attr(not(all(feature = "rstest", feature = "sqlite")), allow(dead_code))]
    pub(crate) fn next_deadline(&self) -> Option<std::time::Instant> {
        self.inner.sh.lock().core.poll_timeout()
    }

    /// Closes every idle connection now; connections out are closed when
    /// they come back. The pool stays usable and its counters stay
    /// consistent throughout.
    pub fn dispose(&self) {
        let sh = &self.inner.sh;
        // The lock is released before any driver connection is closed.
        for (mut conn, meta) in sh.with(|core| core.dispose()) {
            let result = conn.close();
            drop(conn);
            sh.with(|core| core.disposed_closed(meta.id, result.as_ref().map(|_| ())));
        }
    }
}

impl<D: Driver> Inner<D> {
    /// Performs the core's decisions until the checkout or return is
    /// settled: `Some` connection to hand out, `None` to start over (or,
    /// for a return, done). Every driver call that holds something of the
    /// pool sits behind a [`Guard`], so a panicking driver (a mock told to
    /// panic) loses no slot; the lock is never held across one.
    fn drive(&self, mut io: Io<Boxed<D>>) -> Result<Option<(Boxed<D>, Meta)>> {
        let sh = &self.sh;
        loop {
            io = match io {
                // No connection is handed out with a transaction open.
                Io::HandOut(conn, meta) if !conn.in_transaction() => return Ok(Some((conn, meta))),
                Io::HandOut(conn, meta) => sh.with(|core| core.dirty_at_checkout(conn, meta)),
                Io::Connect => {
                    let guard = Guard::new((), |()| sh.abandon(Held::Slot));
                    let result = self.driver.connect().map(Box::new);
                    guard.disarm();
                    let now = sh.now();
                    sh.with(|core| core.connected(result, |c| c.id(), now))
                }
                Io::Ping(mut conn, meta) => {
                    let guard = Guard::new((), |()| sh.abandon(Held::Out(meta)));
                    let result = sh.classify(conn.ping());
                    guard.disarm();
                    sh.with(|core| core.pinged(conn, meta, result))
                }
                Io::Reset(mut conn, meta, phase) => {
                    let guard = Guard::new((), |()| sh.abandon(Held::Out(meta)));
                    let result = sh.classify(match phase {
                        Phase::Commit => conn.commit(),
                        Phase::Rollback | Phase::Checkout => conn.rollback(),
                    });
                    guard.disarm();
                    let now = sh.now();
                    sh.with(|core| core.reset(conn, meta, phase, result, now))
                }
                Io::Close(mut conn, meta, after) => {
                    let guard = Guard::new((), |()| sh.abandon(Held::Closing(meta)));
                    let result = conn.close();
                    drop(conn);
                    guard.disarm();
                    sh.with(|core| core.closed(&meta, after, result.as_ref().map(|_| ())))
                }
                Io::Wait(id) => self.wait(id),
                Io::Fail(err) => return Err(err),
                Io::Retry | Io::Done => return Ok(None),
            }
        }
    }

    /// Waits as waiter `id` until the core grants it something: a
    /// connection, a slot, or the timeout error once it expired the wait.
    /// Sleeps until the core's earliest deadline; a manual clock wakes no
    /// one, so it is polled.
    fn wait(&self, id: WaiterId) -> Io<Boxed<D>> {
        let sh = &self.sh;
        let cv = Arc::new(Condvar::new());
        let slice = sh.clock.is_manual().then_some(Duration::from_millis(1));
        let mut state = sh.lock();
        state.wakers.insert(id, Arc::clone(&cv));
        loop {
            let now = sh.clock.now();
            state.core.handle_timeout(now);
            let granted = state.core.take_grant(id);
            if granted.is_some() {
                state.wakers.remove(&id);
            }
            let woken = sh.settle(&mut state);
            if granted.is_some() || !woken.is_empty() {
                // Others are woken after the lock is released.
                drop(state);
                woken.notify();
                match granted {
                    Some(io) => return io,
                    None => {
                        state = sh.lock();
                        continue;
                    }
                }
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
        }
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
        let Some(mut conn) = self.conn.take() else { return };
        let inner = &self.pool.inner;
        if std::thread::panicking() {
            // No driver call: a close that panics now aborts the process.
            return inner.sh.drop_while_panicking(conn, self.meta, self.detached);
        }
        if self.detached {
            let result = conn.close();
            drop(conn);
            inner.sh.close_detached(&self.meta, result.as_ref().map(|_| ()));
        } else {
            let io = inner.sh.with(|core| core.invalidate_out(conn, self.meta, cause));
            _ = inner.drive(io);
        }
    }
}

impl<D: Driver> Drop for PooledConnection<D> {
    fn drop(&mut self) {
        if self.detached || std::thread::panicking() {
            // Whatever a panic interrupted may have left a transaction
            // half done: never reuse this connection.
            return self.invalidate_inner(None);
        }
        let Some(conn) = self.conn.take() else { return };
        let inner = &self.pool.inner;
        let (dirty, now) = (conn.in_transaction(), inner.sh.now());
        let io = inner.sh.with(|core| core.returned(conn, self.meta, dirty, now));
        // The common case, a clean check-in, has nothing left to do.
        if !matches!(io, Io::Done) {
            _ = inner.drive(io);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The shell's use of the clock at checkout. Its waiting paths are
    //! two-shell tests on a virtual clock in `tests/pool.rs`.

    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    use super::*;

    use crate::{Clock, ConnId, Dialect, ErrorClass, ErrorKind, Row, Value};

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

    /// `pool.get()`, failing the test rather than hanging it if the pool
    /// makes the checkout wait: on a manual clock that nobody advances, a
    /// wait never times out (as when the capacity rule is broken).
    fn get(pool: &Pool<TestDriver>) -> PooledConnection<TestDriver> {
        let (tx, rx) = std::sync::mpsc::channel();
        let pool = pool.clone();
        std::thread::spawn(move || tx.send(pool.get()));
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("the checkout waited: the pool did not hand out a connection")
            .unwrap()
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
        let first = get(&pool).id();
        // Busy: no ping.
        assert_eq!(get(&pool).id(), first);
        assert_eq!(pool.driver().pings.load(Ordering::Relaxed), 0);
        // Idle past pre_ping_idle: pinged.
        clock.advance(Duration::from_secs(11));
        assert_eq!(get(&pool).id(), first);
        assert_eq!(pool.driver().pings.load(Ordering::Relaxed), 1);
        // Older than recycle: replaced.
        clock.advance(Duration::from_secs(50));
        assert_ne!(get(&pool).id(), first);
    }

    #[test]
    fn without_recycle_or_pre_ping_idle_the_clock_is_not_read_at_checkout() {
        let clock = Clock::manual();
        let pool = pool(PoolConfig::new().size(1).pre_ping(true).clock(clock.clone()));
        assert!(!pool.inner.sh.lock().core.uses_time());
        let first = get(&pool).id();
        clock.advance(Duration::from_secs(3600));
        // Still the same connection, pinged at every checkout after its first.
        assert_eq!(get(&pool).id(), first);
        assert_eq!(get(&pool).id(), first);
        assert_eq!(pool.driver().pings.load(Ordering::Relaxed), 2);
    }
}
