//! The pool's decisions, sans IO.
//!
//! [`Core`] owns the idle connections and the counters and decides what
//! each checkout, return, invalidation and failure means. It never calls a
//! driver, never sleeps, never reads a clock (every input that needs time
//! takes `now`), spawns nothing and imports no tokio. The threaded
//! [`Pool`](crate::Pool) and the tokio `AsyncPool` are thin shells around
//! it: they hold it behind a lock, perform the I/O it asks for outside that
//! lock, and report the outcome back.
//!
//! Method groups, as in quinn-proto: getters (`status`), inputs
//! (`checkout`, `connected`, `checkin`, `release`, ...), and the outputs the
//! shell drains after every input (`drain_events`; waiters to wake are
//! returned directly).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::ResetOnReturn;
use crate::{ConnId, Error, EventKind};

/// Identifies a checkout waiting for a connection.
pub(crate) type WaiterId = u64;

/// What the pool knows about one connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    pub(crate) id: ConnId,
    pub(crate) created: Instant,
    pub(crate) last_used: Instant,
    /// The pool's invalidation generation when the connection was opened.
    pub(crate) generation: u64,
    /// Soft-invalidated: replace at the next checkout.
    pub(crate) soft: bool,
    /// Why it must be replaced (invalidated by the pool, recycled) is
    /// journaled already: a checkout that decided so was cancelled.
    pub(crate) replacement_journaled: bool,
}

/// What a shell must do next for a checkout or a return: the core's
/// decision, carried out by the shell outside the lock and reported back
/// with the input the variant names.
#[derive(Debug)]
pub(crate) enum Io<C> {
    /// Hand the connection out: the checkout is done. The shell still asks
    /// it `in_transaction` (outside the lock) and reports a transaction
    /// left open with [`Core::dirty_at_checkout`].
    HandOut(C, Meta),
    /// A slot is reserved: open a connection, report with
    /// [`Core::connected`].
    Connect,
    /// Ping it, report with [`Core::pinged`].
    Ping(C, Meta),
    /// Roll back (or, on return with `ResetOnReturn::Commit`, commit) its
    /// transaction, report with [`Core::reset`].
    Reset(C, Meta, Phase),
    /// Close it, report with [`Core::closed`].
    Close(C, Meta, After),
    /// No connection yet: wait for a grant ([`Core::take_grant`]) or give
    /// up ([`Core::cancel_wait`]).
    Wait(WaiterId),
    /// The checkout fails with this error.
    Fail(Error),
    /// The checkout starts over (a connection found dirty at checkout
    /// could not be rolled back).
    Retry,
    /// The return is done.
    Done,
}

/// Why a connection is being reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Rolled back at checkout: it was returned with a transaction open.
    Checkout,
    /// Reset on return, by rollback.
    Rollback,
    /// Reset on return, by commit.
    Commit,
}

/// What follows a close the core asked for.
#[derive(Debug)]
pub(crate) enum After {
    /// The slot stays reserved: connect next (a replacement).
    Reconnect,
    /// The slot is freed; the checkout starts over.
    Retry,
    /// The slot is freed; the checkout fails with this error.
    Fail(Error),
    /// The slot is freed; nothing else (a return, an invalidation).
    Done,
}

/// What a driver call holds of the pool, given back if the call never
/// reports (it panicked, or its future was dropped).
#[derive(Debug)]
pub(crate) enum Held<C> {
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    /// A waiter's place.
    Waiter(WaiterId),
    /// A slot reserved for a connect.
    Slot,
    /// A connection counted out whose call was cut short: invalidated.
    Out(Meta),
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    /// A connection being prepared for a checkout that was cancelled: it
    /// goes back to the pool (the connection is still usable).
    Back(Io<C>),
    /// A connection being closed: its slot is freed.
    Closing(Meta),
}

/// Counters a pool reports. Always consistent: `checked_in + checked_out`
/// is the number of connections the pool owns (including connects in
/// progress), never more than `size + max_overflow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PoolStatus {
    /// The configured size.
    pub size: usize,
    /// Idle connections.
    pub checked_in: usize,
    /// Connections handed out, being prepared or being opened.
    pub checked_out: usize,
    /// Connections beyond `size`.
    pub overflow: usize,
    /// Checkouts waiting for a connection.
    pub waiting: usize,
    /// The configured overflow limit: `total()` never exceeds
    /// `size + max_overflow`. `usize::MAX` when overflow is unlimited
    /// (see [`limit`](PoolStatus::limit)).
    pub max_overflow: usize,
}

impl PoolStatus {
    /// Every connection the pool owns.
    pub fn total(&self) -> usize {
        self.checked_in + self.checked_out
    }

    /// The most connections the pool may own, `size + max_overflow`;
    /// `None` when overflow is unlimited.
    pub fn limit(&self) -> Option<usize> {
        if self.max_overflow == usize::MAX {
            None
        } else {
            Some(self.size.saturating_add(self.max_overflow))
        }
    }
}

/// Settings the core decides with. `repr(C)`, its flags first: they fall
/// within the lock's block, right after the core's hot fields (see
/// [`Core`]).
#[derive(Debug, Clone)]
#[repr(C)]
pub(crate) struct CoreConfig {
    pub(crate) lifo: bool,
    pub(crate) pre_ping: bool,
    pub(crate) reset: ResetOnReturn,
    pub(crate) size: usize,
    /// `usize::MAX`: unlimited.
    pub(crate) max_overflow: usize,
    pub(crate) recycle: Option<Duration>,
    pub(crate) pre_ping_idle: Option<Duration>,
    /// How long a checkout waits; `None`: forever.
    pub(crate) timeout: Option<Duration>,
}

/// An event the shell writes to the journal.
#[derive(Debug)]
pub(crate) struct PendingEvent {
    pub(crate) conn: Option<ConnId>,
    pub(crate) kind: EventKind,
    pub(crate) detail: Cow<'static, str>,
}

/// The pool's state and decisions.
///
/// `repr(C)`, with the fields every checkout and return touches first: the
/// shells keep the core right after the lock word, so under contention a
/// checkout or a return moves as few cache lines between threads as it can.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Core<C> {
    idle: VecDeque<(C, Meta)>,
    /// Queued checkouts, first come first, each with its deadline (`None`:
    /// waits forever, or not yet started with [`wait_from`](Core::wait_from)).
    waiters: VecDeque<(WaiterId, Option<Instant>)>,
    /// Of `total`, handed out, being prepared or opened.
    out: usize,
    /// Connections owned: idle, out, being opened.
    total: usize,
    generation: u64,
    /// Returned connections of a generation below this are closed (set by
    /// `dispose`).
    close_below: u64,
    /// The connection's own `is_broken`: by its contract quick, without
    /// I/O and never blocking, so the core may ask under the pool's lock.
    is_broken: fn(&C) -> bool,
    journaling: bool,
    connected_once: bool,
    cfg: CoreConfig,
    events: Vec<PendingEvent>,
    /// Waiters granted something since the shell last drained them.
    woken: Vec<WaiterId>,
    /// Steps handed to waiters that have not picked them up yet. Few at a
    /// time (each is taken as soon as its waiter runs), so a list searched
    /// linearly beats a hash map.
    grants: Vec<(WaiterId, Io<C>)>,
    next_waiter: WaiterId,
    last_connect_error: Option<Error>,
}

impl<C> Core<C> {
    /// A core deciding with `cfg`; `is_broken` asks a connection whether
    /// it is known to be unusable (the driver trait's `is_broken`).
    pub(crate) fn new(cfg: CoreConfig, journaling: bool, is_broken: fn(&C) -> bool) -> Self {
        Core {
            idle: VecDeque::with_capacity(cfg.size),
            cfg,
            total: 0,
            out: 0,
            generation: 0,
            close_below: 0,
            connected_once: false,
            waiters: VecDeque::new(),
            grants: Vec::new(),
            next_waiter: 1,
            last_connect_error: None,
            journaling,
            events: Vec::new(),
            woken: Vec::new(),
            is_broken,
        }
    }

    // ----- getters -----

    pub(crate) fn status(&self) -> PoolStatus {
        PoolStatus {
            size: self.cfg.size,
            checked_in: self.idle.len(),
            checked_out: self.out,
            overflow: self.total.saturating_sub(self.cfg.size),
            waiting: self.waiters.len(),
            max_overflow: self.cfg.max_overflow,
        }
    }

    /// Whether any decision reads the `now` the inputs take (recycle age,
    /// idle time before a pre-ping). When none does, a shell may pass any
    /// instant and skip reading its clock.
    pub(crate) fn uses_time(&self) -> bool {
        self.cfg.recycle.is_some() || (self.cfg.pre_ping && self.cfg.pre_ping_idle.is_some())
    }

    fn max(&self) -> usize {
        self.cfg.size.saturating_add(self.cfg.max_overflow)
    }

    #[cfg(test)]
    pub(crate) fn last_connect_error(&self) -> Option<&Error> {
        self.last_connect_error.as_ref()
    }

    // ----- outputs -----

    /// Hands every pending event to `f`, in order. The shell calls this
    /// before releasing its lock so the journal keeps the core's order.
    pub(crate) fn drain_events(&mut self, mut f: impl FnMut(PendingEvent)) {
        for e in self.events.drain(..) {
            f(e);
        }
    }

    /// Whether the core has events to journal or waiters to wake.
    #[inline]
    pub(crate) fn has_output(&self) -> bool {
        !self.events.is_empty() || !self.woken.is_empty()
    }

    /// Hands every waiter granted something since the last call to `f`:
    /// the shell wakes them once its lock is released.
    pub(crate) fn drain_woken(&mut self, f: impl FnMut(WaiterId)) {
        self.woken.drain(..).for_each(f);
    }

    #[inline]
    fn emit(&mut self, conn: Option<ConnId>, kind: EventKind, detail: impl Into<Cow<'static, str>>) {
        if self.journaling {
            self.events.push(PendingEvent {
                conn,
                kind,
                detail: detail.into(),
            });
        }
    }

    // ----- inputs -----

    /// A caller wants a connection. A [`Io::Wait`] must be followed by
    /// [`wait_from`](Core::wait_from) under the same lock.
    #[inline]
    pub(crate) fn checkout(&mut self, now: Instant) -> Io<C> {
        // First come, first served: a newcomer never overtakes a waiter.
        if self.waiters.is_empty() {
            let next = if self.cfg.lifo {
                self.idle.pop_back()
            } else {
                self.idle.pop_front()
            };
            if let Some((conn, meta)) = next {
                self.out += 1;
                return self.prepare(conn, meta, now);
            }
            if self.total < self.max() {
                self.total += 1;
                self.out += 1;
                return Io::Connect;
            }
        }
        let id = self.next_waiter;
        self.next_waiter += 1;
        self.waiters.push_back((id, None));
        Io::Wait(id)
    }

    /// Starts waiter `id`'s timeout at `now` (the shell reads its clock for
    /// a checkout that waits, even when [`uses_time`](Core::uses_time) is
    /// false). A deadline past what an `Instant` can hold means "never".
    ///
    /// Deadlines never decrease along the queue: waiters are served first
    /// come, first served, with one timeout, so a later waiter's deadline
    /// is raised to the one before it if a clock ever stepped back. That
    /// keeps [`poll_timeout`](Core::poll_timeout) and
    /// [`handle_timeout`](Core::handle_timeout) at the queue's front, however
    /// many checkouts wait.
    /// Returns the deadline set (`None`: never).
    pub(crate) fn wait_from(&mut self, id: WaiterId, now: Instant) -> Option<Instant> {
        let deadline = self.cfg.timeout.and_then(|t| now.checked_add(t));
        // The waiter was just queued: look from the back.
        let at = self.waiters.iter().rposition(|(w, _)| *w == id)?;
        let floor = self.waiters.range(..at).rev().find_map(|(_, d)| *d);
        self.waiters[at].1 = match (deadline, floor) {
            (Some(d), Some(f)) => Some(d.max(f)),
            (deadline, _) => deadline,
        };
        self.waiters[at].1
    }

    /// The earliest deadline of a waiting checkout, if any: the shell calls
    /// [`handle_timeout`](Core::handle_timeout) once its clock reaches it.
    /// The first started waiter's, since deadlines never decrease along
    /// the queue.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.waiters.iter().find_map(|(_, d)| *d)
    }

    /// Expires every waiter whose deadline is `now` or earlier: each is
    /// journaled as a timeout, granted [`Io::Fail`] with the timeout error
    /// (carrying the last connect error) and queued to wake. Stops at the
    /// first deadline still ahead: the later ones are no earlier.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        let mut expired = Vec::new();
        let mut i = 0;
        while let Some(&(id, deadline)) = self.waiters.get(i) {
            match deadline {
                Some(d) if d <= now => {
                    self.waiters.remove(i);
                    expired.push(id);
                }
                Some(_) => break,
                // Waits forever, or not started yet: never due.
                None => i += 1,
            }
        }
        for id in expired {
            self.emit(None, EventKind::Timeout, "");
            let err = Error::timeout(
                format!(
                    "no connection available within {:?}",
                    self.cfg.timeout.unwrap_or(Duration::MAX)
                ),
                self.last_connect_error.clone(),
            );
            self.grant(id, Io::Fail(err));
        }
    }

    /// Decides how an idle connection, already counted out, is handed out.
    ///
    /// Out of line on purpose: inlined into a shell's `get`, the compiler
    /// split the connection's [`Meta`] into scalars and copied them field
    /// by field along the hand-out path (12 more instructions in a
    /// get+return of about 420, counted with callgrind).
    #[inline(never)]
    fn prepare(&mut self, conn: C, meta: Meta, now: Instant) -> Io<C> {
        if let Some(why) = self.must_replace(&conn, &meta, now) {
            return self.replace(conn, meta, why);
        }
        let ping = self.cfg.pre_ping
            && self
                .cfg
                .pre_ping_idle
                .is_none_or(|d| now.saturating_duration_since(meta.last_used) > d);
        if ping {
            return Io::Ping(conn, meta);
        }
        self.emit(Some(meta.id), EventKind::Checkout, "");
        Io::HandOut(conn, meta)
    }

    /// Why an idle connection must be replaced rather than handed out, if
    /// it must: the event to journal, or `None` for a soft invalidation
    /// (journaled when it was asked for).
    #[inline]
    fn must_replace(&self, conn: &C, meta: &Meta, now: Instant) -> Option<Option<(EventKind, &'static str)>> {
        if meta.generation < self.generation {
            Some(Some((
                EventKind::Invalidate,
                "pool invalidated since it was opened",
            )))
        } else if meta.soft {
            Some(None)
        } else if (self.is_broken)(conn) {
            // Lost while idle (the server closed it, a fault killed it).
            Some(Some((EventKind::Invalidate, "broken")))
        } else if self
            .cfg
            .recycle
            .is_some_and(|age| now.saturating_duration_since(meta.created) >= age)
        {
            Some(Some((EventKind::Recycle, "")))
        } else {
            None
        }
    }

    /// [`prepare`](Core::prepare)'s rare branch: close the connection and
    /// connect a replacement in its slot. Out of line, so the usual
    /// hand-out does not carry this branch's moves.
    #[cold]
    #[inline(never)]
    fn replace(&mut self, conn: C, mut meta: Meta, why: Option<(EventKind, &'static str)>) -> Io<C> {
        // A checkout that decided so and was cancelled journaled it.
        if let Some((kind, detail)) = why.filter(|_| !meta.replacement_journaled) {
            self.emit(Some(meta.id), kind, detail);
        }
        meta.replacement_journaled = true;
        Io::Close(conn, meta, After::Reconnect)
    }

    /// A waiter's grant, if one arrived.
    pub(crate) fn take_grant(&mut self, id: WaiterId) -> Option<Io<C>> {
        let i = self.grants.iter().position(|(w, _)| *w == id)?;
        Some(self.grants.swap_remove(i).1)
    }

    /// A waiter gives up (its future was dropped): whatever it was granted
    /// meanwhile is given back. Returns a connection the pool will not
    /// keep, for the caller to drop once the lock is released.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    #[must_use = "a connection the pool will not keep is dropped outside the lock"]
    pub(crate) fn cancel_wait(&mut self, id: WaiterId, now: Instant) -> Option<C> {
        match self.take_grant(id) {
            Some(io) => self.give_back(io, now),
            None => {
                self.waiters.retain(|&(w, _)| w != id);
                None
            }
        }
    }

    /// Returns what a checkout that stopped (cancelled, or its driver call
    /// panicked) held. A connection being prepared goes back to the pool;
    /// one whose call was cut short is invalidated and its slot freed.
    /// Returns such a connection, for the caller to drop once the lock is
    /// released (its destructor may call into the driver).
    #[must_use = "a connection the pool will not keep is dropped outside the lock"]
    pub(crate) fn abandon(&mut self, held: Held<C>, now: Instant) -> Option<C> {
        match held {
            Held::Waiter(id) => self.cancel_wait(id, now),
            Held::Slot => self.give_back(Io::Connect, now),
            Held::Out(meta) => {
                self.invalidate(&meta, None);
                self.release(&meta, Cow::Borrowed(""));
                None
            }
            Held::Back(io) => self.give_back(io, now),
            Held::Closing(meta) => {
                self.release(&meta, Cow::Borrowed(""));
                None
            }
        }
    }

    fn give_back(&mut self, io: Io<C>, now: Instant) -> Option<C> {
        match io {
            // Opened before a dispose: closed (by the caller's drop, after
            // the lock), never idle again.
            Io::HandOut(conn, meta) | Io::Reset(conn, meta, Phase::Checkout)
                if meta.generation < self.close_below =>
            {
                self.release(&meta, Cow::Borrowed("disposed"));
                return Some(conn);
            }
            Io::Ping(conn, meta) | Io::Close(conn, meta, After::Reconnect)
                if meta.generation < self.close_below =>
            {
                // Never journaled as checked out: no check-in either.
                self.emit(Some(meta.id), EventKind::Close, "disposed");
                self.out -= 1;
                self.free_slot();
                return Some(conn);
            }
            Io::HandOut(conn, meta) | Io::Reset(conn, meta, Phase::Checkout) => {
                // Journaled as checked out already.
                self.emit(Some(meta.id), EventKind::Checkin, "checkout cancelled");
                self.out -= 1;
                self.hand_over(conn, meta, now);
            }
            // Not journaled as checked out; a replacement's reason was, and
            // the next checkout does not journal it again.
            Io::Ping(conn, meta) | Io::Close(conn, meta, After::Reconnect) => {
                self.out -= 1;
                self.hand_over(conn, meta, now);
            }
            Io::Connect => {
                self.out -= 1;
                self.free_slot();
            }
            Io::Reset(conn, meta, _) | Io::Close(conn, meta, _) => {
                // Not from a checkout: cut short, so never reused; the
                // caller drops it after the lock.
                self.invalidate(&meta, None);
                self.release(&meta, Cow::Borrowed(""));
                return Some(conn);
            }
            Io::Wait(id) => self.waiters.retain(|&(w, _)| w != id),
            Io::Fail(_) | Io::Retry | Io::Done => {}
        }
        None
    }

    /// A ping at checkout answered. A failure invalidates the connection
    /// (a disconnect, the whole pool) and closes it; then the checkout
    /// reconnects once (disconnect) or fails with the ping's error. A
    /// connection the pool invalidated while it was pinged (or while its
    /// grant waited to be taken) is replaced, ping or not.
    pub(crate) fn pinged(&mut self, conn: C, mut meta: Meta, result: Result<(), Error>) -> Io<C> {
        match result {
            Ok(()) if meta.generation < self.generation => {
                self.emit(Some(meta.id), EventKind::Ping, "");
                self.emit(
                    Some(meta.id),
                    EventKind::Invalidate,
                    "pool invalidated since it was opened",
                );
                meta.replacement_journaled = true;
                Io::Close(conn, meta, After::Reconnect)
            }
            Ok(()) => {
                self.emit(Some(meta.id), EventKind::Ping, "");
                self.emit(Some(meta.id), EventKind::Checkout, "");
                Io::HandOut(conn, meta)
            }
            Err(err) => {
                self.emit(Some(meta.id), EventKind::PingFailed, short(&err));
                self.invalidate(&meta, Some(&err));
                let after = if err.is_disconnect() {
                    After::Reconnect
                } else {
                    After::Fail(err.with_invalidated(true))
                };
                Io::Close(conn, meta, after)
            }
        }
    }

    /// The connection being handed out has a transaction open (returned so
    /// on purpose, or reset outside a runtime): roll it back first.
    pub(crate) fn dirty_at_checkout(&mut self, conn: C, meta: Meta) -> Io<C> {
        Io::Reset(conn, meta, Phase::Checkout)
    }

    /// A connection comes back: `dirty` says whether a transaction is open
    /// (asked outside the lock). A broken one is closed; a dirty one is
    /// reset as configured; the rest are checked in.
    #[inline]
    pub(crate) fn returned(&mut self, conn: C, meta: Meta, dirty: bool, now: Instant) -> Io<C> {
        if (self.is_broken)(&conn) {
            // Dead (a disconnect, a kill): never back to the idle queue.
            self.emit(Some(meta.id), EventKind::Invalidate, "broken");
            return Io::Close(conn, meta, After::Done);
        }
        match (dirty, self.cfg.reset) {
            (false, _) => self.checkin(conn, meta, "", now),
            (true, ResetOnReturn::Rollback) => Io::Reset(conn, meta, Phase::Rollback),
            (true, ResetOnReturn::Commit) => Io::Reset(conn, meta, Phase::Commit),
            (true, ResetOnReturn::None) => self.checkin(conn, meta, "left open", now),
        }
    }

    /// A connection that could not be reset (no runtime to await it on)
    /// is checked in with its transaction open; the next checkout rolls
    /// it back.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn left_open(&mut self, conn: C, meta: Meta, now: Instant) -> Io<C> {
        self.checkin(conn, meta, "left open", now)
    }

    /// A reset finished. A failure invalidates the connection and closes
    /// it (a checkout then starts over).
    pub(crate) fn reset(
        &mut self,
        conn: C,
        meta: Meta,
        phase: Phase,
        result: Result<(), Error>,
        now: Instant,
    ) -> Io<C> {
        match (result, phase) {
            (Ok(()), Phase::Checkout) => {
                self.emit(Some(meta.id), EventKind::Reset, "rollback at checkout");
                Io::HandOut(conn, meta)
            }
            (Ok(()), Phase::Rollback) => self.checkin(conn, meta, "rollback", now),
            (Ok(()), Phase::Commit) => self.checkin(conn, meta, "commit", now),
            (Err(err), phase) => {
                self.emit(Some(meta.id), EventKind::ResetFailed, short(&err));
                self.invalidate(&meta, Some(&err));
                let after = if phase == Phase::Checkout {
                    After::Retry
                } else {
                    After::Done
                };
                Io::Close(conn, meta, after)
            }
        }
    }

    /// Keeps a returned connection, or closes it (idle queue full, pool
    /// disposed since it was opened). Inlined: it is most of every
    /// return's work, and a call here showed in the contended benchmark.
    #[inline(always)]
    fn checkin(&mut self, conn: C, mut meta: Meta, detail: &'static str, now: Instant) -> Io<C> {
        self.emit(Some(meta.id), EventKind::Reset, detail);
        meta.last_used = now;
        if meta.generation < self.close_below || (self.waiters.is_empty() && self.idle.len() >= self.cfg.size)
        {
            return Io::Close(conn, meta, After::Done);
        }
        self.emit(Some(meta.id), EventKind::Checkin, "");
        self.out -= 1;
        self.hand_over(conn, meta, now);
        Io::Done
    }

    /// A close the core asked for finished (its error is journaled, never
    /// raised).
    pub(crate) fn closed(&mut self, meta: &Meta, after: After, result: Result<(), &Error>) -> Io<C> {
        self.closed_with(meta, after, close_detail(result))
    }

    /// A close the core asked for was not called: the shell dropped the
    /// connection instead, for the reason `why` (the thread is panicking,
    /// and a driver call could panic again and abort the process). The
    /// `close` event says `not called: {why}`; the rest is as
    /// [`closed`](Core::closed).
    pub(crate) fn close_not_called(&mut self, meta: &Meta, after: After, why: &'static str) -> Io<C> {
        self.closed_with(meta, after, format!("not called: {why}").into())
    }

    fn closed_with(&mut self, meta: &Meta, after: After, detail: Cow<'static, str>) -> Io<C> {
        if let After::Reconnect = after {
            self.emit(Some(meta.id), EventKind::Close, detail);
            return Io::Connect;
        }
        self.release(meta, detail);
        match after {
            After::Retry => Io::Retry,
            After::Fail(err) => Io::Fail(err),
            After::Reconnect | After::Done => Io::Done,
        }
    }

    /// A connect for a reserved slot finished: on success the checkout
    /// hands the new connection out; on failure the slot is freed (every
    /// counter as it was before the checkout) and the checkout fails with
    /// the driver's error, unchanged.
    pub(crate) fn connected(
        &mut self,
        result: Result<C, Error>,
        id: impl FnOnce(&C) -> ConnId,
        now: Instant,
    ) -> Io<C> {
        match result {
            Ok(conn) => {
                let id = id(&conn);
                if !self.connected_once {
                    self.connected_once = true;
                    self.emit(Some(id), EventKind::FirstConnect, "");
                }
                self.emit(Some(id), EventKind::Connect, "");
                self.emit(Some(id), EventKind::Checkout, "");
                self.last_connect_error = None;
                let meta = Meta {
                    id,
                    created: now,
                    last_used: now,
                    generation: self.generation,
                    soft: false,
                    replacement_journaled: false,
                };
                Io::HandOut(conn, meta)
            }
            Err(err) => {
                self.emit(None, EventKind::ConnectFailed, short(&err));
                self.last_connect_error = Some(err.clone());
                self.out -= 1;
                self.free_slot();
                Io::Fail(err)
            }
        }
    }

    /// An idle connection closed by `dispose`.
    pub(crate) fn disposed_closed(&mut self, id: ConnId, result: Result<(), &Error>) {
        self.emit(Some(id), EventKind::Close, close_detail(result));
    }

    /// A detached connection was closed (its error journaled, never
    /// raised).
    pub(crate) fn close_detached(&mut self, meta: &Meta, result: Result<(), &Error>) {
        let detail = result.err().map(Error::to_string).unwrap_or_default();
        self.emit(Some(meta.id), EventKind::CloseDetached, detail);
    }

    /// A detached connection was dropped without its close being called,
    /// for the reason `why` (see [`close_not_called`](Core::close_not_called)).
    pub(crate) fn close_detached_not_called(&mut self, meta: &Meta, why: &'static str) {
        self.emit(
            Some(meta.id),
            EventKind::CloseDetached,
            format!("not called: {why}"),
        );
    }

    /// Gives a connection that is not out any more to the first waiter, or
    /// puts it in the idle queue.
    #[inline]
    fn hand_over(&mut self, conn: C, meta: Meta, now: Instant) {
        match self.waiters.pop_front() {
            Some((waiter, _)) => self.hand_to_waiter(waiter, conn, meta, now),
            None => self.idle.push_back((conn, meta)),
        }
    }

    /// [`hand_over`](Core::hand_over)'s rarer branch, kept out of line so
    /// the usual return (to the idle queue) stays small.
    #[inline(never)]
    fn hand_to_waiter(&mut self, waiter: WaiterId, conn: C, meta: Meta, now: Instant) {
        self.out += 1;
        let io = self.prepare(conn, meta, now);
        self.grant(waiter, io);
    }

    fn grant(&mut self, waiter: WaiterId, io: Io<C>) {
        self.grants.push((waiter, io));
        self.woken.push(waiter);
    }

    /// Hard-invalidates an out connection: journaled; a disconnect
    /// (`cause` classified as one) also invalidates every connection opened
    /// before it, once per burst. Close it next ([`Io::Close`]).
    fn invalidate(&mut self, meta: &Meta, cause: Option<&Error>) {
        let detail = cause.map_or(Cow::Borrowed(""), |e| Cow::Owned(short(e)));
        self.emit(Some(meta.id), EventKind::Invalidate, detail);
        if cause.is_some_and(Error::is_disconnect) && meta.generation >= self.generation {
            self.generation += 1;
        }
    }

    /// The caller invalidates an out connection (`cause`: the error that
    /// showed it dead): close it, then its slot is freed.
    pub(crate) fn invalidate_out(&mut self, conn: C, meta: Meta, cause: Option<&Error>) -> Io<C> {
        self.invalidate(&meta, cause);
        Io::Close(conn, meta, After::Done)
    }

    /// Soft-invalidates an out connection: it is replaced at its next
    /// checkout. A no-op when already soft.
    pub(crate) fn invalidate_soft(&mut self, meta: &mut Meta) {
        if !meta.soft {
            self.emit(Some(meta.id), EventKind::SoftInvalidate, "");
            meta.soft = true;
        }
    }

    /// Invalidates every connection that exists now: each is replaced at
    /// its next checkout.
    pub(crate) fn invalidate_all(&mut self) {
        self.emit(None, EventKind::Invalidate, "all connections");
        self.generation += 1;
    }

    /// An out connection was closed; its slot is free (the first waiter
    /// inherits it).
    fn release(&mut self, meta: &Meta, close: Cow<'static, str>) {
        self.emit(Some(meta.id), EventKind::Close, close);
        self.emit(Some(meta.id), EventKind::Checkin, "");
        self.out -= 1;
        self.free_slot();
    }

    /// An out connection leaves the pool's accounting.
    pub(crate) fn detach(&mut self, meta: &Meta) {
        self.emit(Some(meta.id), EventKind::Detach, "");
        self.out -= 1;
        self.free_slot();
    }

    /// A slot was given up: the first waiter, if any, inherits it as a
    /// reservation to connect.
    fn free_slot(&mut self) {
        match self.waiters.pop_front() {
            Some((waiter, _)) => {
                self.out += 1;
                self.grant(waiter, Io::Connect);
            }
            None => self.total -= 1,
        }
    }

    /// Disposes of the pool: the idle connections are returned for the
    /// shell to close (reported with [`disposed_closed`](Core::disposed_closed)),
    /// and every connection out now is closed when it comes back. The pool
    /// stays usable.
    pub(crate) fn dispose(&mut self) -> Vec<(C, Meta)> {
        self.emit(None, EventKind::Dispose, "");
        self.generation += 1;
        self.close_below = self.generation;
        let idle: Vec<_> = self.idle.drain(..).collect();
        for _ in 0..idle.len() {
            self.free_slot();
        }
        idle
    }

    /// Checks the counters' invariants (tests and debug builds).
    pub(crate) fn check(&self) -> Result<(), String> {
        let s = self.status();
        if self.total != s.checked_in + s.checked_out {
            return Err(format!(
                "total {} != checked_in + checked_out in {s:?}",
                self.total
            ));
        }
        if self.total > self.max() {
            return Err(format!(
                "total {} exceeds size + max_overflow {}",
                self.total,
                self.max()
            ));
        }
        if !self.waiters.is_empty() && !self.idle.is_empty() {
            return Err(format!(
                "{} idle connections while {} waiters wait",
                self.idle.len(),
                self.waiters.len()
            ));
        }
        Ok(())
    }
}

/// A close's detail in the journal: empty, or `failed: ` and its error.
fn close_detail(result: Result<(), &Error>) -> Cow<'static, str> {
    match result {
        Ok(()) => Cow::Borrowed(""),
        Err(e) => Cow::Owned(format!("failed: {}", short(e))),
    }
}

/// An error in a few words for the journal: its class and code.
fn short(e: &Error) -> String {
    match e.code() {
        Some(code) => format!("{} {code}", e.class()),
        None => format!("{} ({})", e.class(), e.kind()),
    }
}

#[cfg(test)]
mod model;

#[cfg(test)]
mod tests {
    use super::*;

    fn core(cfg: CoreConfig, journaling: bool) -> Core<u64> {
        // Connection ids of 1000 and more are broken.
        Core::new(cfg, journaling, |c| *c >= 1000)
    }

    fn cfg(size: usize, max_overflow: usize) -> CoreConfig {
        CoreConfig {
            size,
            max_overflow,
            recycle: None,
            pre_ping: false,
            pre_ping_idle: None,
            lifo: false,
            timeout: Some(Duration::from_secs(30)),
            reset: ResetOnReturn::Rollback,
        }
    }

    /// Checks out a new connection `id`.
    fn connect(core: &mut Core<u64>, id: u64, now: Instant) -> Meta {
        assert!(matches!(core.checkout(now), Io::Connect));
        handed_out(core.connected(Ok(id), |c| ConnId(*c), now))
    }

    fn handed_out(io: Io<u64>) -> Meta {
        match io {
            Io::HandOut(_, meta) => meta,
            other => panic!("expected a hand-out, got {other:?}"),
        }
    }

    fn events(core: &mut Core<u64>) -> Vec<(EventKind, String)> {
        let mut out = Vec::new();
        core.drain_events(|e| out.push((e.kind, e.detail.into_owned())));
        out
    }

    fn woken(core: &mut Core<u64>) -> Vec<WaiterId> {
        let mut out = Vec::new();
        core.drain_woken(|w| out.push(w));
        out
    }

    fn ev(kind: EventKind, detail: &str) -> (EventKind, String) {
        (kind, detail.to_owned())
    }

    /// A checkout cancelled while it held a hand-out gives the connection
    /// back to the idle queue, unless a dispose came first; a connection
    /// opened after the dispose is not the dispose's to close.
    #[test]
    fn a_cancelled_hand_out_goes_back_unless_disposed_before_it_opened() {
        let now = Instant::now();
        let mut core = core(cfg(1, 0), false);
        let a = connect(&mut core, 1, now);
        assert!(matches!(core.returned(1, a, false, now), Io::Done));
        let io = core.checkout(now);
        assert!(matches!(io, Io::HandOut(..)));
        assert_eq!(core.abandon(Held::Back(io), now), None, "kept: no dispose");
        assert_eq!(core.status().checked_in, 1);

        let closed = core.dispose();
        assert_eq!(closed.len(), 1);
        let b = connect(&mut core, 2, now);
        assert!(matches!(core.returned(2, b, false, now), Io::Done));
        let io = core.checkout(now);
        assert!(matches!(io, Io::HandOut(..)));
        assert_eq!(
            core.abandon(Held::Back(io), now),
            None,
            "opened after the dispose: kept"
        );
        assert_eq!(core.status().checked_in, 1);
        core.check().unwrap();
    }

    /// `pre_ping_idle` pings a connection idle for longer than it, not one
    /// idle for exactly that long.
    #[test]
    fn pre_ping_idle_pings_only_past_its_bound() {
        let start = Instant::now();
        let idle = Duration::from_secs(10);
        let mut core = core(
            CoreConfig {
                pre_ping: true,
                pre_ping_idle: Some(idle),
                ..cfg(1, 0)
            },
            false,
        );
        let a = connect(&mut core, 1, start);
        assert!(matches!(core.returned(1, a, false, start), Io::Done));
        let Io::HandOut(_, a) = core.checkout(start + idle) else {
            panic!("idle exactly `pre_ping_idle`: handed out unpinged");
        };
        assert!(matches!(core.returned(1, a, false, start + idle), Io::Done));
        let later = start + idle + idle + Duration::from_nanos(1);
        assert!(
            matches!(core.checkout(later), Io::Ping(..)),
            "idle past it: pinged"
        );
    }

    /// `handle_timeout` steps over a waiter whose wait has not started
    /// (no deadline yet) to time out the one behind it; it must return,
    /// so the test watches it from another thread.
    #[test]
    fn handle_timeout_steps_over_a_waiter_not_yet_started() {
        let now = Instant::now();
        let mut core = core(cfg(1, 0), false);
        connect(&mut core, 1, now);
        let Io::Wait(unstarted) = core.checkout(now) else {
            panic!("a full pool makes the checkout wait");
        };
        let Io::Wait(started) = core.checkout(now) else {
            panic!("a full pool makes the checkout wait");
        };
        core.wait_from(started, now);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            core.handle_timeout(now + Duration::from_secs(31));
            tx.send(woken(&mut core)).unwrap();
        });
        let woken = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("handle_timeout did not return");
        assert_eq!(woken, [started]);
        assert_ne!(woken, [unstarted]);
    }

    /// The closes the shells report are journaled with the connection,
    /// and a failure with its error.
    #[test]
    fn reported_closes_are_journaled_with_their_outcome() {
        let now = Instant::now();
        let mut core = core(cfg(1, 0), true);
        let a = connect(&mut core, 1, now);
        drop(events(&mut core));
        let err = Error::driver("X", "boom");
        core.disposed_closed(ConnId(1), Err(&err));
        core.close_detached(&a, Ok(()));
        core.close_detached_not_called(&a, "panicking");
        let journaled = events(&mut core);
        assert_eq!(journaled.len(), 3, "{journaled:?}");
        assert_eq!(journaled[0].0, EventKind::Close);
        assert!(journaled[0].1.starts_with("failed: "), "{journaled:?}");
        assert_eq!(journaled[1], ev(EventKind::CloseDetached, ""));
        assert_eq!(
            journaled[2],
            ev(EventKind::CloseDetached, "not called: panicking")
        );
    }

    /// A cancelled wait leaves the queue; the waiters behind it keep
    /// their places.
    #[test]
    fn abandoning_a_wait_removes_only_that_waiter() {
        let now = Instant::now();
        let mut core = core(cfg(1, 0), false);
        let a = connect(&mut core, 1, now);
        let Io::Wait(first) = core.checkout(now) else {
            panic!("a full pool makes the checkout wait");
        };
        core.wait_from(first, now);
        let Io::Wait(second) = core.checkout(now) else {
            panic!("a full pool makes the checkout wait");
        };
        core.wait_from(second, now);
        assert_eq!(core.abandon(Held::Back(Io::Wait(first)), now), None);
        core.returned(1, a, false, now);
        assert_eq!(woken(&mut core), [second]);
    }

    /// A soft invalidation is journaled once and replaces the connection
    /// at its next checkout, not before it comes back.
    #[test]
    fn a_soft_invalidation_is_journaled_once_and_replaces_at_the_next_checkout() {
        let now = Instant::now();
        let mut core = core(cfg(1, 0), true);
        let mut a = connect(&mut core, 1, now);
        drop(events(&mut core));
        core.invalidate_soft(&mut a);
        core.invalidate_soft(&mut a);
        assert_eq!(events(&mut core), [ev(EventKind::SoftInvalidate, "")]);
        core.returned(1, a, false, now);
        drop(events(&mut core));
        assert!(
            matches!(core.checkout(now), Io::Close(_, _, After::Reconnect)),
            "replaced at its next checkout"
        );
    }

    /// `has_output` is what lets a shell skip settling: true exactly while
    /// an event waits to be journaled or a granted waiter to be woken.
    #[test]
    fn has_output_is_pending_events_or_pending_wake_ups() {
        let now = Instant::now();
        let mut quiet = core(cfg(1, 0), false);
        assert!(!quiet.has_output());
        let a = connect(&mut quiet, 1, now);
        assert!(!quiet.has_output(), "not journaling: no events");
        let Io::Wait(waiter) = quiet.checkout(now) else {
            panic!("a full pool makes the checkout wait");
        };
        quiet.wait_from(waiter, now);
        assert!(!quiet.has_output());
        // The return grants the waiter: a wake-up to hand out.
        quiet.returned(1, a, false, now);
        assert!(quiet.has_output());
        assert_eq!(woken(&mut quiet), [waiter]);
        assert!(!quiet.has_output());

        let mut journaling = core(cfg(1, 0), true);
        connect(&mut journaling, 1, now);
        assert!(journaling.has_output(), "the connect's events");
        assert!(!events(&mut journaling).is_empty());
        assert!(!journaling.has_output());
    }

    /// A checkout cancelled after it decided to replace a stale connection
    /// gives the connection back; the next checkout replaces it without
    /// journaling the reason twice, and nothing journals a check-in of a
    /// connection never journaled as checked out.
    #[test]
    fn a_cancelled_checkout_journals_each_decision_once() {
        let start = Instant::now();
        let mut core = core(
            CoreConfig {
                recycle: Some(Duration::from_secs(1)),
                pre_ping: true,
                ..cfg(1, 0)
            },
            true,
        );
        let a = connect(&mut core, 1, start);
        assert!(matches!(core.returned(1, a, false, start), Io::Done));

        // Young: a checkout that would ping, cancelled before the ping.
        let io = core.checkout(start);
        assert!(matches!(io, Io::Ping(..)));
        drop(events(&mut core));
        assert!(
            core.abandon(Held::Back(io), start).is_none(),
            "a checkout's connection goes back to the pool"
        );
        assert_eq!(events(&mut core), []);

        // Old: recycled, cancelled, then recycled for good.
        let later = start + Duration::from_secs(2);
        let io = core.checkout(later);
        assert!(matches!(io, Io::Close(_, _, After::Reconnect)));
        assert_eq!(events(&mut core), [ev(EventKind::Recycle, "")]);
        assert!(
            core.abandon(Held::Back(io), later).is_none(),
            "a checkout's connection goes back to the pool"
        );
        assert_eq!(events(&mut core), []);
        assert_eq!(core.status().checked_in, 1);
        let io = core.checkout(later);
        assert!(matches!(io, Io::Close(_, _, After::Reconnect)));
        assert_eq!(events(&mut core), []);
        core.check().unwrap();
    }

    #[test]
    fn failed_connect_leaves_counters_as_they_were_and_journals_the_error() {
        let now = Instant::now();
        let mut core = core(cfg(1, 0), true);
        let before = core.status();
        assert!(matches!(core.checkout(now), Io::Connect));
        let err = Error::closed("refused");
        let Io::Fail(got) = core.connected(Err(err), |c| ConnId(*c), now) else {
            panic!("the connect error is the checkout's")
        };
        assert_eq!(got.message(), "refused");
        assert_eq!(core.status(), before);
        assert_eq!(core.last_connect_error().map(Error::message), Some("refused"));
        assert_eq!(
            events(&mut core),
            [ev(EventKind::ConnectFailed, "disconnect (connection closed)")]
        );
        core.check().unwrap();
    }

    #[test]
    fn return_to_full_idle_queue_closes_and_frees_the_slot() {
        let now = Instant::now();
        let mut core = core(cfg(1, 1), false);
        let a = connect(&mut core, 1, now);
        let b = connect(&mut core, 2, now);
        assert!(matches!(core.returned(1, a, false, now), Io::Done));
        let Io::Close(2, meta, after) = core.returned(2, b, false, now) else {
            panic!("the overflow connection must be closed")
        };
        assert!(matches!(core.closed(&meta, after, Ok(())), Io::Done));
        let status = core.status();
        assert_eq!(
            status,
            PoolStatus {
                size: 1,
                checked_in: 1,
                checked_out: 0,
                overflow: 0,
                waiting: 0,
                max_overflow: 1
            }
        );
        assert_eq!((status.total(), status.limit()), (1, Some(2)));
        core.check().unwrap();
    }

    #[test]
    fn a_returned_connection_goes_to_the_first_waiter() {
        let now = Instant::now();
        let mut core = core(cfg(1, 0), false);
        let a = connect(&mut core, 1, now);
        let Io::Wait(w1) = core.checkout(now) else {
            panic!()
        };
        let Io::Wait(w2) = core.checkout(now) else {
            panic!()
        };
        assert!(matches!(core.returned(1, a, false, now), Io::Done));
        assert_eq!(woken(&mut core), [w1]);
        assert!(core.take_grant(w2).is_none());
        assert!(matches!(core.take_grant(w1), Some(Io::HandOut(1, _))));
        assert_eq!(core.cancel_wait(w2, now), None);
        assert_eq!(core.status().waiting, 0);
        core.check().unwrap();
    }

    #[test]
    fn one_disconnect_burst_bumps_the_generation_once() {
        let now = Instant::now();
        let mut core = core(cfg(3, 0), false);
        let a = connect(&mut core, 1, now);
        let b = connect(&mut core, 2, now);
        let err = Error::closed("gone");
        drop(core.invalidate_out(1, a, Some(&err)));
        drop(core.invalidate_out(2, b, Some(&err)));
        assert_eq!(core.generation, 1);
    }

    /// A broken connection returned is closed, never kept; a broken idle
    /// one is replaced at checkout. Neither bumps the generation.
    #[test]
    fn a_broken_connection_is_closed_on_return_and_replaced_at_checkout() {
        let now = Instant::now();
        let mut core = core(cfg(2, 0), true);
        let a = connect(&mut core, 1000, now);
        drop(events(&mut core));
        let Io::Close(1000, meta, after) = core.returned(1000, a, true, now) else {
            panic!("a broken connection must not be kept (nor reset)")
        };
        assert_eq!(events(&mut core), [ev(EventKind::Invalidate, "broken")]);
        assert!(matches!(core.closed(&meta, after, Ok(())), Io::Done));
        assert_eq!(core.status().total(), 0);
        // Broken while idle.
        let b = connect(&mut core, 1001, now);
        core.idle.push_back((1001, b));
        core.out -= 1;
        drop(events(&mut core));
        assert!(matches!(core.checkout(now), Io::Close(1001, _, After::Reconnect)));
        assert_eq!(events(&mut core), [ev(EventKind::Invalidate, "broken")]);
        assert_eq!(core.generation, 0);
        core.check().unwrap();
    }

    /// The details journaled for ping and reset failures name the error's
    /// class and code; a failed ping that is no disconnect fails the
    /// checkout, a failed rollback at checkout starts it over.
    #[test]
    fn ping_and_reset_failures_are_journaled_with_their_error() {
        let now = Instant::now();
        let mut core = pre_ping_core_with_one_idle(2, now);
        let Io::Ping(1, meta) = core.checkout(now) else {
            panic!()
        };
        drop(events(&mut core));
        let err = Error::driver("X1", "busy").with_class(crate::ErrorClass::Transient);
        let Io::Close(1, meta, after) = core.pinged(1, meta, Err(err)) else {
            panic!()
        };
        assert_eq!(
            events(&mut core),
            [
                ev(EventKind::PingFailed, "transient X1"),
                ev(EventKind::Invalidate, "transient X1")
            ]
        );
        let Io::Fail(err) = core.closed(&meta, after, Ok(())) else {
            panic!()
        };
        assert!(err.connection_invalidated());
        assert_eq!(core.generation, 0, "not a disconnect");

        let b = connect(&mut core, 2, now);
        drop(events(&mut core));
        let Io::Reset(2, meta, Phase::Rollback) = core.returned(2, b, true, now) else {
            panic!()
        };
        let err = Error::closed("lost");
        let Io::Close(2, meta, after) = core.reset(2, meta, Phase::Rollback, Err(err.clone()), now) else {
            panic!()
        };
        assert_eq!(
            events(&mut core),
            [
                ev(EventKind::ResetFailed, "disconnect (connection closed)"),
                ev(EventKind::Invalidate, "disconnect (connection closed)")
            ]
        );
        let failed = Error::driver("E9", "no").with_class(crate::ErrorClass::Other);
        assert!(matches!(core.closed(&meta, after, Err(&failed)), Io::Done));
        assert_eq!(events(&mut core)[0], ev(EventKind::Close, "failed: other E9"));

        // Dirty at checkout: rolled back (journaled), or on failure retried.
        let c = connect(&mut core, 3, now);
        let Io::Reset(3, meta, Phase::Checkout) = core.dirty_at_checkout(3, c) else {
            panic!()
        };
        drop(events(&mut core));
        assert!(matches!(
            core.reset(3, meta, Phase::Checkout, Ok(()), now),
            Io::HandOut(3, _)
        ));
        assert_eq!(events(&mut core), [ev(EventKind::Reset, "rollback at checkout")]);
        let Io::Close(3, meta, after) = core.reset(3, meta, Phase::Checkout, Err(err), now) else {
            panic!()
        };
        assert!(matches!(core.closed(&meta, after, Ok(())), Io::Retry));
        core.check().unwrap();
    }

    /// A connection the pool invalidates while it is pinged at checkout
    /// (found by the model in `core/model.rs`: a grant to ping, taken
    /// after an `invalidate_all`) is replaced, not handed out, though the
    /// ping passed.
    #[test]
    fn a_connection_invalidated_while_pinged_is_replaced() {
        let now = Instant::now();
        let mut core = pre_ping_core_with_one_idle(1, now);
        let Io::Ping(1, meta) = core.checkout(now) else {
            panic!("an idle connection is pinged")
        };
        core.invalidate_all();
        drop(events(&mut core));
        let Io::Close(1, meta, after) = core.pinged(1, meta, Ok(())) else {
            panic!("a stale connection must not be handed out")
        };
        assert_eq!(
            events(&mut core),
            [
                ev(EventKind::Ping, ""),
                ev(EventKind::Invalidate, "pool invalidated since it was opened")
            ]
        );
        assert!(matches!(core.closed(&meta, after, Ok(())), Io::Connect));
        core.check().unwrap();
    }

    #[test]
    fn invalidate_all_replaces_every_existing_connection_once() {
        let now = Instant::now();
        let mut core = core(cfg(2, 0), true);
        let a = connect(&mut core, 1, now);
        let b = connect(&mut core, 2, now);
        assert!(matches!(core.returned(1, a, false, now), Io::Done));
        core.invalidate_all();
        assert_eq!(core.generation, 1);
        assert!(matches!(core.returned(2, b, false, now), Io::Done));
        drop(events(&mut core));
        for _ in 0..2 {
            let Io::Close(_, meta, after) = core.checkout(now) else {
                panic!("replaced")
            };
            assert!(matches!(core.closed(&meta, after, Ok(())), Io::Connect));
        }
        assert_eq!(core.generation, 1);
        core.check().unwrap();
    }

    /// `check` is shown to fail on each corruption it looks for.
    #[test]
    fn check_reports_each_broken_counter() {
        let now = Instant::now();
        let mut core = core(cfg(1, 1), false);
        let a = connect(&mut core, 1, now);
        core.check().unwrap();
        core.total += 1;
        assert!(core.check().unwrap_err().contains("!= checked_in + checked_out"));
        core.total -= 1;
        core.out += 2;
        core.total += 2;
        assert!(
            core.check()
                .unwrap_err()
                .contains("exceeds size + max_overflow 2")
        );
        core.out -= 2;
        core.total -= 2;
        core.idle.push_back((1, a));
        core.out -= 1;
        core.waiters.push_back((9, None));
        assert!(
            core.check()
                .unwrap_err()
                .contains("1 idle connections while 1 waiters wait")
        );
    }

    /// Deadlines: the earliest is polled, expired waiters get the timeout
    /// error, and a deadline too far to add means "never".
    #[test]
    fn waiters_expire_at_their_deadlines_and_an_overflowing_one_never() {
        let start = Instant::now();
        let secs = Duration::from_secs;
        let mut core = core(
            CoreConfig {
                timeout: Some(secs(10)),
                ..cfg(1, 0)
            },
            true,
        );
        let a = connect(&mut core, 1, start);
        let Io::Wait(w1) = core.checkout(start) else {
            panic!()
        };
        core.wait_from(w1, start);
        let Io::Wait(w2) = core.checkout(start) else {
            panic!()
        };
        core.wait_from(w2, start + secs(5));
        assert_eq!(core.poll_timeout(), Some(start + secs(10)));
        drop(events(&mut core));
        core.handle_timeout(start + secs(9));
        assert_eq!(woken(&mut core), []);
        core.handle_timeout(start + secs(10));
        assert_eq!(woken(&mut core), [w1]);
        assert_eq!(events(&mut core), [ev(EventKind::Timeout, "")]);
        let Some(Io::Fail(err)) = core.take_grant(w1) else {
            panic!("w1 timed out")
        };
        assert_eq!(err.kind(), crate::ErrorKind::Timeout);
        assert_eq!(core.poll_timeout(), Some(start + secs(15)));
        assert_eq!(core.status().waiting, 1);
        // The connection goes to the waiter still waiting.
        assert!(matches!(core.returned(1, a, false, start), Io::Done));
        assert_eq!(woken(&mut core), [w2]);
        assert_eq!(core.poll_timeout(), None);
        core.check().unwrap();

        // A timeout no instant can hold: never expires.
        let mut core = core_forever();
        let _a = connect(&mut core, 1, start);
        let Io::Wait(w) = core.checkout(start) else {
            panic!()
        };
        core.wait_from(w, start);
        assert_eq!(core.poll_timeout(), None);
        core.handle_timeout(start + secs(1 << 40));
        assert_eq!(woken(&mut core), []);
        assert_eq!(core.status().waiting, 1);
        assert_eq!(core.cancel_wait(w, start), None);
        assert_eq!(core.status().waiting, 0);
        core.check().unwrap();
    }

    /// A connection whose reset or close was cut short (a panic, a dropped
    /// future) is never kept: the core hands it back to the caller, which
    /// drops it after releasing the lock (its destructor may call the
    /// driver), and frees its slot.
    #[test]
    fn a_connection_cut_short_is_handed_back_to_drop_outside_the_lock() {
        let now = Instant::now();
        let mut core = core(cfg(1, 0), false);
        let a = connect(&mut core, 7, now);
        let io = core.invalidate_out(7, a, None);
        assert_eq!(core.abandon(Held::Back(io), now), Some(7));
        assert_eq!(core.status().checked_out, 0);
        core.check().unwrap();
    }

    /// A checkout cancelled after a dispose does not put the connection
    /// it was preparing back idle: opened before the dispose, it is closed
    /// (handed back to be dropped after the lock), and its slot is freed.
    #[test]
    fn a_checkout_cancelled_after_a_dispose_does_not_idle_its_connection() {
        let now = Instant::now();
        let mut core = pre_ping_core_with_one_idle(1, now);
        // Cancelled while its ping was due, then once the ping passed.
        for hand_out in [false, true] {
            let io = core.checkout(now);
            let io = if hand_out {
                // A ping that passed: the connection is being handed out.
                match io {
                    Io::Ping(conn, meta) => core.pinged(conn, meta, Ok(())),
                    other => panic!("expected a ping, got {other:?}"),
                }
            } else {
                io
            };
            assert!(core.dispose().is_empty(), "the connection is out, being prepared");
            drop(events(&mut core));
            assert_eq!(core.abandon(Held::Back(io), now), Some(1));
            assert_eq!(core.status().checked_in, 0, "idle after a dispose");
            assert_eq!(core.status().checked_out, 0);
            let closes = events(&mut core)
                .iter()
                .filter(|(k, _)| *k == EventKind::Close)
                .count();
            assert_eq!(closes, 1);
            core.check().unwrap();
            let b = connect(&mut core, 1, now);
            assert!(matches!(core.returned(1, b, false, now), Io::Done));
        }
    }

    /// The fields every checkout and return reads or writes lie within
    /// the first 120 bytes of the core, so with the 8-byte lock word
    /// before it they share the lock's 128-byte-aligned block
    /// (`pool::shared::Aligned`). A reordering that moves one out fails
    /// here instead of showing only in the contended benchmarks.
    #[test]
    fn the_fields_every_checkout_and_return_touches_sit_beside_the_lock() {
        use std::mem::{offset_of, size_of};
        type C = Core<u64>;
        let ends = [
            ("idle", offset_of!(C, idle) + size_of::<VecDeque<(u64, Meta)>>()),
            (
                "waiters",
                offset_of!(C, waiters) + size_of::<VecDeque<(WaiterId, Option<Instant>)>>(),
            ),
            ("out", offset_of!(C, out) + size_of::<usize>()),
            ("total", offset_of!(C, total) + size_of::<usize>()),
            ("generation", offset_of!(C, generation) + size_of::<u64>()),
            ("close_below", offset_of!(C, close_below) + size_of::<u64>()),
            (
                "is_broken",
                offset_of!(C, is_broken) + size_of::<fn(&u64) -> bool>(),
            ),
            ("journaling", offset_of!(C, journaling) + size_of::<bool>()),
            (
                "cfg.lifo, cfg.pre_ping, cfg.reset",
                offset_of!(C, cfg) + offset_of!(CoreConfig, reset) + size_of::<ResetOnReturn>(),
            ),
        ];
        for (field, end) in ends {
            assert!(
                end <= 120,
                "Core::{field} ends at byte {end}, past the lock's block"
            );
        }
    }

    /// `total` adds what is idle and what is out.
    #[test]
    fn total_counts_idle_and_out_connections() {
        let status = PoolStatus {
            checked_in: 2,
            checked_out: 3,
            ..PoolStatus::default()
        };
        assert_eq!(status.total(), 5);
    }

    /// The core reads `now` only for recycle and for a pre-ping limited to
    /// idle connections; each alone is enough.
    #[test]
    fn uses_time_only_for_recycle_or_a_pre_ping_by_idle_time() {
        let with = |recycle: bool, pre_ping: bool, idle: bool| {
            core(
                CoreConfig {
                    recycle: recycle.then_some(Duration::from_secs(1)),
                    pre_ping,
                    pre_ping_idle: idle.then_some(Duration::from_secs(1)),
                    ..cfg(1, 0)
                },
                false,
            )
            .uses_time()
        };
        assert!(with(true, false, false));
        assert!(with(false, true, true));
        assert!(with(true, true, true));
        assert!(!with(false, true, false));
        assert!(!with(false, false, true));
        assert!(!with(false, false, false));
    }

    /// A journaling core of `size` with pre-ping on, its connection 1
    /// opened and returned idle at `now`.
    fn pre_ping_core_with_one_idle(size: usize, now: Instant) -> Core<u64> {
        let mut core = core(
            CoreConfig {
                pre_ping: true,
                ..cfg(size, 0)
            },
            true,
        );
        let a = connect(&mut core, 1, now);
        assert!(matches!(core.returned(1, a, false, now), Io::Done));
        core
    }

    fn core_forever() -> Core<u64> {
        core(
            CoreConfig {
                timeout: Some(Duration::MAX),
                ..cfg(1, 0)
            },
            false,
        )
    }

    #[test]
    fn unlimited_overflow_never_waits() {
        let now = Instant::now();
        let mut core = core(cfg(1, usize::MAX), false);
        for id in 0..100 {
            connect(&mut core, id, now);
        }
        let status = core.status();
        assert_eq!(
            (status.checked_out, status.overflow, status.limit()),
            (100, 99, None)
        );
        core.check().unwrap();
    }
}
