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

/// What a checkout must do next.
#[derive(Debug)]
pub(crate) enum Step<C> {
    /// Hand out `conn`, after a ping when `ping` is set.
    Ready { conn: C, meta: Meta, ping: bool },
    /// A slot is reserved: open a new connection and report with
    /// [`Core::connected`].
    Connect,
    /// A slot is reserved by a stale connection: close it (report with
    /// [`Core::record_close`]), then connect as for `Connect`.
    Replace { conn: C, meta: Meta },
    /// Nothing available: the checkout is queued under this id. Start its
    /// timeout with [`Core::wait_from`] under the same lock, then wait for
    /// a grant ([`Core::take_grant`]) or give up ([`Core::cancel_wait`]).
    Wait(WaiterId),
    /// The checkout fails with this error (its wait timed out).
    Fail(Error),
}

/// How a returned connection was reset by the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reset {
    /// No transaction was open.
    Clean,
    /// The open transaction was rolled back.
    RolledBack,
    /// The open transaction was committed.
    Committed,
    /// A transaction was left open on purpose (`ResetOnReturn::None`).
    LeftOpen,
}

/// What to do with a returned connection.
#[derive(Debug)]
pub(crate) enum Checkin<C> {
    /// The pool kept it; wake this waiter if any.
    Kept(Option<WaiterId>),
    /// Close it, then report with [`Core::release`].
    Close(C),
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

/// Settings the core decides with.
#[derive(Debug, Clone)]
pub(crate) struct CoreConfig {
    pub(crate) size: usize,
    /// `usize::MAX`: unlimited.
    pub(crate) max_overflow: usize,
    /// How long a checkout waits; `None`: forever.
    pub(crate) timeout: Option<Duration>,
    pub(crate) recycle: Option<Duration>,
    pub(crate) pre_ping: bool,
    pub(crate) pre_ping_idle: Option<Duration>,
    pub(crate) lifo: bool,
}

/// An event the shell writes to the journal.
#[derive(Debug)]
pub(crate) struct PendingEvent {
    pub(crate) conn: Option<ConnId>,
    pub(crate) kind: EventKind,
    pub(crate) detail: Cow<'static, str>,
}

/// The pool's state and decisions.
#[derive(Debug)]
pub(crate) struct Core<C> {
    cfg: CoreConfig,
    idle: VecDeque<(C, Meta)>,
    /// Connections owned: idle, out, being opened.
    total: usize,
    /// Of those, handed out, being prepared or opened.
    out: usize,
    generation: u64,
    /// Returned connections of a generation below this are closed (set by
    /// `dispose`).
    close_below: u64,
    connected_once: bool,
    /// Queued checkouts, first come first, each with its deadline (`None`:
    /// waits forever, or not yet started with [`wait_from`](Core::wait_from)).
    waiters: VecDeque<(WaiterId, Option<Instant>)>,
    /// Steps handed to waiters that have not picked them up yet. Few at a
    /// time (each is taken as soon as its waiter runs), so a list searched
    /// linearly beats a hash map.
    grants: Vec<(WaiterId, Step<C>)>,
    next_waiter: WaiterId,
    last_connect_error: Option<Error>,
    journaling: bool,
    events: Vec<PendingEvent>,
    /// The connection's own `is_broken`: by its contract quick, without
    /// I/O and never blocking, so the core may ask under the pool's lock.
    is_broken: fn(&C) -> bool,
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

    /// A caller wants a connection.
    #[inline]
    pub(crate) fn checkout(&mut self, now: Instant) -> Step<C> {
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
                return Step::Connect;
            }
        }
        let id = self.next_waiter;
        self.next_waiter += 1;
        self.waiters.push_back((id, None));
        Step::Wait(id)
    }

    /// Starts waiter `id`'s timeout at `now` (the shell reads its clock for
    /// a checkout that waits, even when [`uses_time`](Core::uses_time) is
    /// false). A deadline past what an `Instant` can hold means "never".
    pub(crate) fn wait_from(&mut self, id: WaiterId, now: Instant) {
        let deadline = self.cfg.timeout.and_then(|t| now.checked_add(t));
        if let Some(w) = self.waiters.iter_mut().find(|(w, _)| *w == id) {
            w.1 = deadline;
        }
    }

    /// The earliest deadline of a waiting checkout, if any: the shell calls
    /// [`handle_timeout`](Core::handle_timeout) once its clock reaches it.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.waiters.iter().filter_map(|(_, d)| *d).min()
    }

    /// Expires every waiter whose deadline is `now` or earlier: each is
    /// journaled as a timeout and granted [`Step::Fail`] with the timeout
    /// error (carrying the last connect error). Returns the waiters to wake.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Vec<WaiterId> {
        let mut expired = Vec::new();
        self.waiters.retain(|&(id, deadline)| {
            let due = deadline.is_some_and(|d| d <= now);
            if due {
                expired.push(id);
            }
            !due
        });
        for &id in &expired {
            self.emit(None, EventKind::Timeout, "");
            let err = Error::timeout(
                format!(
                    "no connection available within {:?}",
                    self.cfg.timeout.unwrap_or(Duration::MAX)
                ),
                self.last_connect_error.clone(),
            );
            self.grants.push((id, Step::Fail(err)));
        }
        expired
    }

    /// Decides how an idle connection, already counted out, is handed out.
    #[inline]
    fn prepare(&mut self, conn: C, meta: Meta, now: Instant) -> Step<C> {
        if meta.generation < self.generation {
            if !meta.replacement_journaled {
                self.emit(
                    Some(meta.id),
                    EventKind::Invalidate,
                    "pool invalidated since it was opened",
                );
            }
            return Step::Replace { conn, meta };
        }
        if meta.soft {
            return Step::Replace { conn, meta };
        }
        if (self.is_broken)(&conn) {
            // Lost while idle (the server closed it, a fault killed it).
            self.emit(Some(meta.id), EventKind::Invalidate, "broken");
            return Step::Replace { conn, meta };
        }
        if self
            .cfg
            .recycle
            .is_some_and(|age| now.saturating_duration_since(meta.created) >= age)
        {
            if !meta.replacement_journaled {
                self.emit(Some(meta.id), EventKind::Recycle, "");
            }
            return Step::Replace { conn, meta };
        }
        let ping = self.cfg.pre_ping
            && self
                .cfg
                .pre_ping_idle
                .is_none_or(|d| now.saturating_duration_since(meta.last_used) > d);
        if !ping {
            self.emit(Some(meta.id), EventKind::Checkout, "");
        }
        Step::Ready { conn, meta, ping }
    }

    /// A waiter's grant, if one arrived.
    pub(crate) fn take_grant(&mut self, id: WaiterId) -> Option<Step<C>> {
        let i = self.grants.iter().position(|(w, _)| *w == id)?;
        Some(self.grants.swap_remove(i).1)
    }

    /// A waiter gives up (its future was dropped). Returns the grant it
    /// had received in the meantime, which the caller must
    /// [`give_back`](Core::give_back).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn cancel_wait(&mut self, id: WaiterId) -> Option<Step<C>> {
        if let Some(step) = self.take_grant(id) {
            return Some(step);
        }
        self.waiters.retain(|&(w, _)| w != id);
        None
    }

    /// Returns a step a cancelled checkout will not use. Returns the waiter
    /// to wake, if the step went to one.
    pub(crate) fn give_back(&mut self, step: Step<C>, now: Instant) -> Option<WaiterId> {
        match step {
            Step::Ready { conn, meta, ping } => {
                // Journaled as checked out only once its ping passed.
                if !ping {
                    self.emit(Some(meta.id), EventKind::Checkin, "checkout cancelled");
                }
                self.out -= 1;
                self.hand_over(conn, meta, now)
            }
            Step::Replace { conn, mut meta } => {
                // Never journaled as checked out; why it must be replaced
                // was, and the next checkout must not journal that again.
                meta.replacement_journaled = true;
                self.out -= 1;
                self.hand_over(conn, meta, now)
            }
            Step::Connect => {
                self.out -= 1;
                self.free_slot()
            }
            Step::Wait(id) => {
                self.waiters.retain(|&(w, _)| w != id);
                None
            }
            Step::Fail(_) => None,
        }
    }

    /// A ping at checkout succeeded.
    pub(crate) fn pinged(&mut self, meta: &Meta) {
        self.emit(Some(meta.id), EventKind::Ping, "");
        self.emit(Some(meta.id), EventKind::Checkout, "");
    }

    /// A ping at checkout failed. The connection is invalidated; a
    /// disconnect invalidates the whole pool. The shell then closes it and
    /// either reconnects once (disconnect: [`record_close`](Core::record_close),
    /// then [`connected`](Core::connected)) or gives the slot back
    /// ([`release`](Core::release)).
    pub(crate) fn ping_failed(&mut self, meta: &Meta, err: &Error) {
        self.emit(Some(meta.id), EventKind::PingFailed, short(err));
        self.invalidate(meta, Some(err));
    }

    /// The shell closed a connection without giving up its slot.
    pub(crate) fn record_close(&mut self, id: ConnId, result: Result<(), &Error>) {
        match result {
            Ok(()) => self.emit(Some(id), EventKind::Close, ""),
            Err(e) => self.emit(Some(id), EventKind::Close, format!("failed: {}", short(e))),
        }
    }

    /// A connect for a reserved slot finished. On success returns the new
    /// connection's record; on failure frees the slot (every counter as it
    /// was before the checkout) and returns the waiter that inherits it.
    pub(crate) fn connected(
        &mut self,
        result: Result<ConnId, &Error>,
        now: Instant,
    ) -> (Option<Meta>, Option<WaiterId>) {
        match result {
            Ok(id) => {
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
                (Some(meta), None)
            }
            Err(e) => {
                self.emit(None, EventKind::ConnectFailed, short(e));
                self.last_connect_error = Some(e.clone());
                self.out -= 1;
                (None, self.free_slot())
            }
        }
    }

    /// A connection comes back, reset by the shell.
    #[inline]
    pub(crate) fn checkin(&mut self, conn: C, mut meta: Meta, reset: Reset, now: Instant) -> Checkin<C> {
        let detail = match reset {
            Reset::Clean => "",
            Reset::RolledBack => "rollback",
            Reset::Committed => "commit",
            Reset::LeftOpen => "left open",
        };
        if (self.is_broken)(&conn) {
            // Dead (a disconnect, a kill): never back to the idle queue.
            self.emit(Some(meta.id), EventKind::Invalidate, "broken");
            return Checkin::Close(conn);
        }
        self.emit(Some(meta.id), EventKind::Reset, detail);
        meta.last_used = now;
        if meta.generation < self.close_below || (self.waiters.is_empty() && self.idle.len() >= self.cfg.size)
        {
            return Checkin::Close(conn);
        }
        self.emit(Some(meta.id), EventKind::Checkin, "");
        self.out -= 1;
        Checkin::Kept(self.hand_over(conn, meta, now))
    }

    /// Puts a connection that is not out any more in the idle queue, or
    /// hands it to the first waiter.
    #[inline]
    fn hand_over(&mut self, conn: C, meta: Meta, now: Instant) -> Option<WaiterId> {
        match self.waiters.pop_front() {
            Some((waiter, _)) => {
                self.out += 1;
                let step = self.prepare(conn, meta, now);
                self.grants.push((waiter, step));
                Some(waiter)
            }
            None => {
                self.idle.push_back((conn, meta));
                None
            }
        }
    }

    /// The reset on return failed: the connection is invalidated (then
    /// closed and [`release`](Core::release)d by the shell).
    pub(crate) fn reset_failed(&mut self, meta: &Meta, err: &Error) {
        self.emit(Some(meta.id), EventKind::ResetFailed, short(err));
        self.invalidate(meta, Some(err));
    }

    /// Hard-invalidates an out connection: the shell closes it next and
    /// calls [`release`](Core::release). A disconnect (`cause` classified as
    /// one) also invalidates every connection opened before it, once per
    /// burst.
    pub(crate) fn invalidate(&mut self, meta: &Meta, cause: Option<&Error>) {
        let detail = cause.map_or(Cow::Borrowed(""), |e| Cow::Owned(short(e)));
        self.emit(Some(meta.id), EventKind::Invalidate, detail);
        if cause.is_some_and(Error::is_disconnect) && meta.generation >= self.generation {
            self.generation += 1;
        }
    }

    /// Soft-invalidates an out connection: it is replaced at its next
    /// checkout.
    pub(crate) fn invalidate_soft(&mut self, meta: &mut Meta) {
        self.emit(Some(meta.id), EventKind::SoftInvalidate, "");
        meta.soft = true;
    }

    /// Invalidates every connection that exists now: each is replaced at
    /// its next checkout.
    pub(crate) fn invalidate_all(&mut self) {
        self.emit(None, EventKind::Invalidate, "all connections");
        self.generation += 1;
    }

    /// An out connection was closed by the shell; its slot is free.
    /// Returns the waiter that inherits the slot.
    pub(crate) fn release(&mut self, meta: &Meta, close: Result<(), &Error>) -> Option<WaiterId> {
        self.record_close(meta.id, close);
        self.emit(Some(meta.id), EventKind::Checkin, "");
        self.out -= 1;
        self.free_slot()
    }

    /// An out connection leaves the pool's accounting.
    pub(crate) fn detach(&mut self, meta: &Meta) -> Option<WaiterId> {
        self.emit(Some(meta.id), EventKind::Detach, "");
        self.out -= 1;
        self.free_slot()
    }

    /// A slot was given up: the first waiter, if any, inherits it as a
    /// reservation to connect.
    fn free_slot(&mut self) -> Option<WaiterId> {
        match self.waiters.pop_front() {
            Some((waiter, _)) => {
                self.out += 1;
                self.grants.push((waiter, Step::Connect));
                Some(waiter)
            }
            None => {
                self.total -= 1;
                None
            }
        }
    }

    /// Disposes of the pool: the idle connections are returned for the
    /// shell to close (with [`record_close`](Core::record_close)), and every
    /// connection out now is closed when it comes back. The pool stays
    /// usable. Returns the waiters that inherit the freed slots.
    pub(crate) fn dispose(&mut self) -> (Vec<(C, Meta)>, Vec<WaiterId>) {
        self.emit(None, EventKind::Dispose, "");
        self.generation += 1;
        self.close_below = self.generation;
        let idle: Vec<_> = self.idle.drain(..).collect();
        let woken = (0..idle.len()).filter_map(|_| self.free_slot()).collect();
        (idle, woken)
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

/// An error in a few words for the journal: its class and code.
fn short(e: &Error) -> String {
    match e.code() {
        Some(code) => format!("{} {code}", e.class()),
        None => format!("{} ({})", e.class(), e.kind()),
    }
}

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
        }
    }

    fn connect(core: &mut Core<u64>, id: u64, now: Instant) -> Meta {
        assert!(matches!(core.checkout(now), Step::Connect));
        core.connected(Ok(ConnId(id)), now).0.expect("connected")
    }

    fn events(core: &mut Core<u64>) -> Vec<(EventKind, String)> {
        let mut out = Vec::new();
        core.drain_events(|e| out.push((e.kind, e.detail.into_owned())));
        out
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
        assert!(matches!(
            core.checkin(1, a, Reset::Clean, start),
            Checkin::Kept(None)
        ));

        // Young: a checkout that would ping, cancelled before the ping.
        let step = core.checkout(start);
        assert!(matches!(step, Step::Ready { ping: true, .. }));
        drop(events(&mut core));
        assert_eq!(core.give_back(step, start), None);
        assert_eq!(events(&mut core), []);

        // Old: recycled, cancelled, then recycled for good.
        let later = start + Duration::from_secs(2);
        let step = core.checkout(later);
        assert!(matches!(step, Step::Replace { .. }));
        assert_eq!(events(&mut core), [(EventKind::Recycle, String::new())]);
        assert_eq!(core.give_back(step, later), None);
        assert_eq!(events(&mut core), []);
        assert_eq!(core.status().checked_in, 1);
        let step = core.checkout(later);
        assert!(matches!(step, Step::Replace { .. }));
        assert_eq!(events(&mut core), []);
        core.check().unwrap();
    }

    #[test]
    fn failed_connect_leaves_counters_as_they_were() {
        let now = Instant::now();
        let mut core = core(cfg(1, 0), true);
        let before = core.status();
        assert!(matches!(core.checkout(now), Step::Connect));
        let err = Error::closed("refused");
        let (meta, woken) = core.connected(Err(&err), now);
        assert!(meta.is_none() && woken.is_none());
        assert_eq!(core.status(), before);
        assert_eq!(core.last_connect_error().map(Error::message), Some("refused"));
        core.check().unwrap();
    }

    #[test]
    fn return_to_full_idle_queue_closes_and_frees_the_slot() {
        let now = Instant::now();
        let mut core = core(cfg(1, 1), false);
        let a = connect(&mut core, 1, now);
        let b = connect(&mut core, 2, now);
        assert!(matches!(
            core.checkin(1, a, Reset::Clean, now),
            Checkin::Kept(None)
        ));
        let Checkin::Close(2) = core.checkin(2, b, Reset::Clean, now) else {
            panic!("the overflow connection must be closed")
        };
        core.release(&b, Ok(()));
        assert_eq!(
            core.status(),
            PoolStatus {
                size: 1,
                checked_in: 1,
                checked_out: 0,
                overflow: 0,
                waiting: 0,
                max_overflow: 1
            }
        );
        core.check().unwrap();
    }

    #[test]
    fn a_returned_connection_goes_to_the_first_waiter() {
        let now = Instant::now();
        let mut core = core(cfg(1, 0), false);
        let a = connect(&mut core, 1, now);
        let Step::Wait(w1) = core.checkout(now) else {
            panic!()
        };
        let Step::Wait(w2) = core.checkout(now) else {
            panic!()
        };
        assert!(matches!(core.checkin(1, a, Reset::Clean, now), Checkin::Kept(Some(w)) if w == w1));
        assert!(core.take_grant(w2).is_none());
        assert!(matches!(core.take_grant(w1), Some(Step::Ready { conn: 1, .. })));
        assert!(core.cancel_wait(w2).is_none());
        core.check().unwrap();
    }

    #[test]
    fn one_disconnect_burst_bumps_the_generation_once() {
        let now = Instant::now();
        let mut core = core(cfg(3, 0), false);
        let a = connect(&mut core, 1, now);
        let b = connect(&mut core, 2, now);
        let err = Error::closed("gone");
        core.invalidate(&a, Some(&err));
        core.invalidate(&b, Some(&err));
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
        let Checkin::Close(1000) = core.checkin(1000, a, Reset::Clean, now) else {
            panic!("a broken connection must not be kept")
        };
        assert_eq!(events(&mut core), [(EventKind::Invalidate, "broken".to_owned())]);
        core.release(&a, Ok(()));
        assert_eq!(core.status().total(), 0);
        // Broken while idle.
        let b = connect(&mut core, 1001, now);
        core.idle.push_back((1001, b));
        core.out -= 1;
        drop(events(&mut core));
        assert!(matches!(core.checkout(now), Step::Replace { conn: 1001, .. }));
        assert_eq!(events(&mut core), [(EventKind::Invalidate, "broken".to_owned())]);
        assert_eq!(core.generation, 0);
        core.check().unwrap();
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
        let Step::Wait(w1) = core.checkout(start) else {
            panic!()
        };
        core.wait_from(w1, start);
        let Step::Wait(w2) = core.checkout(start) else {
            panic!()
        };
        core.wait_from(w2, start + secs(5));
        assert_eq!(core.poll_timeout(), Some(start + secs(10)));
        drop(events(&mut core));
        assert_eq!(core.handle_timeout(start + secs(9)), Vec::<WaiterId>::new());
        assert_eq!(core.handle_timeout(start + secs(10)), [w1]);
        assert_eq!(events(&mut core), [(EventKind::Timeout, String::new())]);
        let Some(Step::Fail(err)) = core.take_grant(w1) else {
            panic!("w1 timed out")
        };
        assert_eq!(err.kind(), crate::ErrorKind::Timeout);
        assert_eq!(core.poll_timeout(), Some(start + secs(15)));
        assert_eq!(core.status().waiting, 1);
        // The connection goes to the waiter still waiting.
        assert!(matches!(core.checkin(1, a, Reset::Clean, start), Checkin::Kept(Some(w)) if w == w2));
        assert_eq!(core.poll_timeout(), None);
        core.check().unwrap();

        // A timeout no instant can hold: never expires.
        let mut core = core_forever();
        let _a = connect(&mut core, 1, start);
        let Step::Wait(w) = core.checkout(start) else {
            panic!()
        };
        core.wait_from(w, start);
        assert_eq!(core.poll_timeout(), None);
        assert!(core.handle_timeout(start + secs(1 << 40)).is_empty());
        assert_eq!(core.status().waiting, 1);
        assert!(core.cancel_wait(w).is_none());
        assert_eq!(core.status().waiting, 0);
        core.check().unwrap();
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
