//! What both shells share: the core behind its lock, the journal, the
//! clock, and the one way they run the core (journal its events under the
//! lock, wake the waiters it granted after releasing it).

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use super::core::{Core, Held, Io, Meta, WaiterId};
use super::{PoolConfig, PoolStatus};
use crate::lock::lock;
use crate::{Clock, Dialect, Error, Journal};

/// How a shell wakes a waiting checkout: a thread's condition, a task's
/// waker.
pub(crate) trait Notify {
    /// Wakes it. Called without the pool's lock.
    fn notify(self);
}

impl Notify for Arc<Condvar> {
    fn notify(self) {
        self.notify_one();
    }
}

#[cfg(feature = "tokio")]
impl Notify for std::task::Waker {
    fn notify(self) {
        self.wake();
    }
}

/// Hashes a [`WaiterId`], a counter the core hands out, with one
/// multiplication (Fibonacci hashing): the waker table is looked up under
/// the pool's lock, where SipHash's cost showed. Ids are not chosen by
/// anyone outside the pool, so no flooding defence is needed.
#[derive(Default)]
pub(crate) struct WaiterHasher(u64);

impl Hasher for WaiterHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// The wake handles of the waiters the core granted something, to notify
/// once the lock is released. Usually one or none: the first needs no
/// allocation under the lock.
pub(crate) struct Woken<W> {
    first: Option<W>,
    rest: Vec<W>,
}

impl<W: Notify> Woken<W> {
    /// Whether nobody is to be woken.
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// Wakes them all (after the lock).
    pub(crate) fn notify(self) {
        self.first.into_iter().chain(self.rest).for_each(W::notify);
    }
}

/// The core and the wake handles of the checkouts waiting in it. The core
/// first, next to the lock word (`repr(C)`; see [`Core`]).
#[repr(C)]
pub(crate) struct State<C, W> {
    pub(crate) core: Core<C>,
    /// By waiter: many checkouts may wait at once.
    pub(crate) wakers: HashMap<WaiterId, W, BuildHasherDefault<WaiterHasher>>,
}

/// Keeps what it holds on cache lines of its own (128 bytes: two lines,
/// for the adjacent-line prefetcher), so threads taking the pool's lock do
/// not also contend for the line of the fields beside it.
#[repr(align(128))]
struct Aligned<T>(T);

/// A shell's state, shared by its handles.
pub(crate) struct Shared<C, W> {
    state: Aligned<Mutex<State<C, W>>>,
    pub(crate) journal: Option<Journal>,
    pub(crate) clock: Clock,
    pub(crate) dialect: Arc<dyn Dialect>,
    /// Whether the core decides anything with `now` ([`Core::uses_time`]);
    /// when not, `epoch` stands in and the clock is read only to wait.
    uses_time: bool,
    epoch: Instant,
}

impl<C, W: Notify> Shared<C, W> {
    pub(crate) fn new(
        config: &PoolConfig,
        clock: Clock,
        dialect: Arc<dyn Dialect>,
        is_broken: fn(&C) -> bool,
    ) -> Self {
        let core = Core::new(config.core_config(), config.journal.is_some(), is_broken);
        Shared {
            uses_time: core.uses_time(),
            epoch: clock.now(),
            state: Aligned(Mutex::new(State {
                core,
                wakers: HashMap::default(),
            })),
            journal: config.journal.clone(),
            clock,
            dialect,
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, State<C, W>> {
        lock(&self.state.0)
    }

    /// The `now` to give the core: the clock's when the core uses it
    /// (reading the clock was a third of an uncontended checkout's cost).
    #[inline]
    pub(crate) fn now(&self) -> Instant {
        if self.uses_time {
            self.clock.now()
        } else {
            self.epoch
        }
    }

    /// Runs `f` on the core: its events are journaled before the lock is
    /// released, the waiters it granted are woken after. What `f` returns
    /// (connections included) is dropped by the caller, outside the lock.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Core<C>) -> R) -> R {
        let mut state = self.lock();
        let r = f(&mut state.core);
        // The common case (no journal, nobody waiting) settles nothing.
        if state.core.has_output() {
            let woken = self.settle(&mut state);
            drop(state);
            woken.notify();
        }
        r
    }

    /// Under the lock: journals the core's events, and takes the wake
    /// handles of the waiters it granted (to notify once it is released).
    pub(crate) fn settle(&self, state: &mut State<C, W>) -> Woken<W> {
        let State { core, wakers } = state;
        if let Some(journal) = &self.journal {
            core.drain_events(|e| _ = journal.record(e.conn, e.kind, e.detail));
        }
        let mut woken = Woken {
            first: None,
            rest: Vec::new(),
        };
        core.drain_woken(|id| {
            if let Some(waker) = wakers.remove(&id) {
                match woken.first {
                    None => woken.first = Some(waker),
                    Some(_) => woken.rest.push(waker),
                }
            }
        });
        woken
    }

    /// A checkout's first decision; a wait's timeout starts at `wait_now`.
    #[inline]
    pub(crate) fn checkout(&self, wait_now: impl FnOnce() -> Instant) -> Io<C> {
        self.checkout_timed(wait_now, &mut None)
    }

    /// [`checkout`](Shared::checkout), writing to `deadline` the deadline
    /// of the wait it may start (left `None`: no wait, or one that never
    /// times out). An out-parameter rather than a returned pair: the pair
    /// made every checkout copy its `Io` once more.
    #[inline]
    pub(crate) fn checkout_timed(
        &self,
        wait_now: impl FnOnce() -> Instant,
        deadline: &mut Option<Instant>,
    ) -> Io<C> {
        let now = self.now();
        self.with(|core| {
            let io = core.checkout(now);
            if let Io::Wait(id) = io {
                *deadline = core.wait_from(id, wait_now());
            }
            io
        })
    }

    /// Gives back what a call that never reported held (a panic, a dropped
    /// future). A connection the core will not keep is dropped here, after
    /// the lock.
    pub(crate) fn abandon(&self, held: Held<C>) {
        let now = self.now();
        // `with` releases the lock before it returns: the connection the
        // core will not keep is dropped after it.
        drop(self.with(|core| core.abandon(held, now)));
    }

    /// The end of a close the core asked for, reported without awaiting
    /// it (`Drop`): dropping the connection closes it.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn close_now(&self, io: Io<C>) {
        if let Io::Close(conn, meta, after) = io {
            drop(conn);
            drop(self.with(|core| core.closed(&meta, after, Ok(()))));
        }
    }

    /// Gives back a connection dropped while its thread panics: it is
    /// invalidated (or, detached, closed) without a driver call, since a
    /// `close` that panicked during the unwinding would abort the process.
    /// The connection is dropped and its close journaled as
    /// `not called: panicking`; its slot goes back at once.
    pub(crate) fn drop_while_panicking(&self, conn: C, meta: Meta, detached: bool) {
        const WHY: &str = "panicking";
        if detached {
            drop(conn);
            return self.with(|core| core.close_detached_not_called(&meta, WHY));
        }
        if let Io::Close(conn, meta, after) = self.with(|core| core.invalidate_out(conn, meta, None)) {
            drop(conn);
            drop(self.with(|core| core.close_not_called(&meta, after, WHY)));
        }
    }

    /// The result of a driver call, classified by the dialect.
    pub(crate) fn classify(&self, result: crate::Result<()>) -> crate::Result<()> {
        result.map_err(|e| e.classified_by(&*self.dialect))
    }

    pub(crate) fn status(&self) -> PoolStatus {
        self.lock().core.status()
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        self.lock().core.check()
    }

    pub(crate) fn invalidate_all(&self) {
        self.with(Core::invalidate_all);
    }

    pub(crate) fn invalidate_soft(&self, meta: &mut Meta, detached: bool) {
        if !detached {
            self.with(|core| core.invalidate_soft(meta));
        }
    }

    /// Detaches once; returns whether it is detached.
    pub(crate) fn detach(&self, meta: &Meta, detached: bool) -> bool {
        if !detached {
            self.with(|core| core.detach(meta));
        }
        true
    }

    pub(crate) fn close_detached(&self, meta: &Meta, result: Result<(), &Error>) {
        self.with(|core| core.close_detached(meta, result));
    }
}

/// A pooled connection's `Debug`, for both shells.
pub(crate) fn debug_lease(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    meta: &Meta,
    detached: bool,
) -> fmt::Result {
    f.debug_struct(name)
        .field("id", &meta.id)
        .field("soft_invalidated", &meta.soft)
        .field("detached", &detached)
        .finish()
}

/// The items both shells share but for their type names: the pool's
/// `Clone`, `Debug` and accessors, and the pooled connection's `Debug`,
/// accessors, `Deref` and `DerefMut`. Each shell's pool holds
/// `inner: Arc<Inner<D>>` (with `driver` and `sh: Shared`); its pooled
/// connection holds `pool`, `conn: Option<_>`, `meta` and `detached`.
macro_rules! shell_items {
    (pool $Pool:ident, connection $Pooled:ident, driver $Driver:ident) => {
        impl<D: $Driver> Clone for $Pool<D> {
            fn clone(&self) -> Self {
                $Pool {
                    inner: ::std::sync::Arc::clone(&self.inner),
                }
            }
        }

        impl<D: $Driver> ::std::fmt::Debug for $Pool<D> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($Pool))
                    .field("dialect", &self.inner.sh.dialect.name())
                    .field("status", &self.status())
                    .finish()
            }
        }

        impl<D: $Driver> $Pool<D> {
            /// The pool's counters, read at one instant.
            pub fn status(&self) -> $crate::PoolStatus {
                self.inner.sh.status()
            }

            /// Invalidates every connection that exists now: idle ones and
            /// the ones out are replaced at their next checkout.
            pub fn invalidate_all(&self) {
                self.inner.sh.invalidate_all();
            }

            /// The journal the pool writes to, if any.
            pub fn journal(&self) -> Option<&$crate::Journal> {
                self.inner.sh.journal.as_ref()
            }

            /// The driver's dialect.
            pub fn dialect(&self) -> &::std::sync::Arc<dyn $crate::Dialect> {
                &self.inner.sh.dialect
            }

            /// The driver.
            pub fn driver(&self) -> &D {
                &self.inner.driver
            }

            /// Checks the pool's counter invariants at this instant:
            /// checked-in plus checked-out equals the connections owned,
            /// never more than `size + max_overflow`, and no connection
            /// idles while a checkout waits. Returns a description of the
            /// first one broken.
            pub fn check_counters(&self) -> ::std::result::Result<(), String> {
                self.inner.sh.check()
            }
        }

        impl<D: $Driver> ::std::fmt::Debug for $Pooled<D> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                $crate::pool::shared::debug_lease(f, stringify!($Pooled), &self.meta, self.detached)
            }
        }

        impl<D: $Driver> $Pooled<D> {
            /// Soft-invalidates the connection: usable until returned, then
            /// closed and replaced at its next checkout. A no-op when
            /// already soft.
            pub fn invalidate_soft(&mut self) {
                self.pool
                    .inner
                    .sh
                    .invalidate_soft(&mut self.meta, self.detached);
            }

            /// Removes the connection from the pool's accounting (its slot
            /// is free at once); it is closed when dropped. A no-op when
            /// already detached.
            pub fn detach(&mut self) {
                self.detached = self.pool.inner.sh.detach(&self.meta, self.detached);
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
            pub fn pool(&self) -> &$Pool<D> {
                &self.pool
            }
        }

        impl<D: $Driver> ::std::ops::Deref for $Pooled<D> {
            type Target = D::Connection;

            fn deref(&self) -> &D::Connection {
                self.conn.as_ref().expect(concat!(
                    "a ",
                    stringify!($Pooled),
                    " holds its connection until dropped"
                ))
            }
        }

        impl<D: $Driver> ::std::ops::DerefMut for $Pooled<D> {
            fn deref_mut(&mut self) -> &mut D::Connection {
                self.conn.as_mut().expect(concat!(
                    "a ",
                    stringify!($Pooled),
                    " holds its connection until dropped"
                ))
            }
        }
    };
}
pub(crate) use shell_items;
