//! A property test of the sans-IO core on a virtual clock.
//!
//! The harness plays both the shell and the driver: it feeds the core
//! random inputs (checkouts, returns clean, dirty or broken, hard, soft and
//! pool-wide invalidations, detaches, disposes, time passing) and performs
//! each [`Io`] the core answers with an outcome it draws (a connect that
//! succeeds or fails, a ping or a reset that passes, fails or disconnects,
//! a close that fails), or abandons it mid-I/O as a dropped future would.
//! After every step it checks:
//!
//! - [`Core::check`] (counter consistency) and `checked_out` within
//!   `size + max_overflow`;
//! - no connection reaches a caller with its transaction open, none is
//!   held by two callers, and with a reset on return (rollback, commit)
//!   no idle connection keeps a transaction open;
//! - every waiter whose deadline has passed has its answer once the
//!   harness reports the time ([`Core::handle_timeout`]);
//! - the journal's events follow each connection's life in a legal order
//!   ([`Lives`]): no second `checkout` without a `checkin`, `invalidate`
//!   or `detach` between, nothing after a connection is gone, one
//!   `first_connect` before the first `connect`.
//!
//! At the end every caller returns what it holds and time runs out: every
//! checkout must settle, and nothing may stay out, waiting or alive but
//! idle. A failure names the minimal step list and the events so far.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::{Core, CoreConfig, Held, Io, Meta, Phase, WaiterId};
use crate::pool::ResetOnReturn;
use crate::{ConnId, Error, ErrorClass, EventKind};

/// A driver connection of the model: its transaction and broken flags,
/// and a count of the live ones (to find leaks).
struct Conn {
    id: u64,
    tx: bool,
    broken: bool,
    live: Rc<Cell<usize>>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.live.set(self.live.get() - 1);
    }
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.id)
    }
}

/// How the harness performs an I/O the core asked for.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Ok,
    /// An error that is no disconnect.
    Fail,
    Disconnect,
}

/// How a caller gives its connection back.
#[derive(Debug, Clone, Copy)]
enum Ret {
    Clean,
    /// With a transaction open.
    Dirty,
    /// Known broken (`is_broken`).
    Broken,
}

/// One input. Indices pick among the pending tasks or the connections
/// held, modulo their number (a step with nothing to pick does nothing).
#[derive(Debug, Clone)]
enum Step {
    Checkout,
    /// Perform the task's I/O (or look for a waiter's grant).
    Perform(u8, Outcome),
    /// Drop the task mid-I/O: what it held goes back ([`Core::abandon`]).
    Abandon(u8),
    Return(u8, Ret),
    Invalidate(u8, bool),
    Soft(u8),
    Detach(u8),
    InvalidateAll,
    Dispose,
    Advance(u16),
    /// Jump to the earliest deadline ([`Core::poll_timeout`]).
    ToDeadline,
}

fn step() -> impl Strategy<Value = Step> {
    let outcome = prop_oneof![Just(Outcome::Ok), Just(Outcome::Fail), Just(Outcome::Disconnect)];
    let ret = prop_oneof![Just(Ret::Clean), Just(Ret::Dirty), Just(Ret::Broken)];
    prop_oneof![
        4 => Just(Step::Checkout),
        8 => (any::<u8>(), outcome).prop_map(|(i, o)| Step::Perform(i, o)),
        1 => any::<u8>().prop_map(Step::Abandon),
        4 => (any::<u8>(), ret).prop_map(|(i, r)| Step::Return(i, r)),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(i, d)| Step::Invalidate(i, d)),
        1 => any::<u8>().prop_map(Step::Soft),
        1 => any::<u8>().prop_map(Step::Detach),
        1 => Just(Step::InvalidateAll),
        1 => Just(Step::Dispose),
        2 => (0u16..12_000).prop_map(Step::Advance),
        1 => Just(Step::ToDeadline),
    ]
}

fn config() -> impl Strategy<Value = CoreConfig> {
    let secs = |s: u64| Duration::from_secs(s);
    (
        (0usize..3, prop_oneof![4 => 0usize..3, 1 => Just(usize::MAX)]),
        prop_oneof![4 => (1u64..10).prop_map(move |s| Some(secs(s))), 1 => Just(None)],
        proptest::option::of((5u64..60).prop_map(secs)),
        any::<bool>(),
        proptest::option::of((1u64..10).prop_map(secs)),
        any::<bool>(),
        prop_oneof![
            Just(ResetOnReturn::Rollback),
            Just(ResetOnReturn::Commit),
            Just(ResetOnReturn::None)
        ],
    )
        .prop_filter("a pool with room for one", |((size, over), ..)| {
            size.saturating_add(*over) > 0
        })
        .prop_map(
            |((size, max_overflow), timeout, recycle, pre_ping, pre_ping_idle, lifo, reset)| CoreConfig {
                size,
                max_overflow,
                timeout,
                recycle,
                pre_ping,
                pre_ping_idle,
                lifo,
                reset,
            },
        )
}

/// Where a connection is in its journaled life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    /// Opened for a checkout, not journaled as checked out yet.
    New,
    Out,
    Idle,
    /// Closed; a `checkin` (its slot freed) may follow.
    Closed,
    Detached,
    Gone,
}

/// The journal's events, checked against each connection's life.
#[derive(Default)]
struct Lives {
    lives: HashMap<ConnId, Life>,
    first_connect: Option<ConnId>,
    log: Vec<String>,
}

impl Lives {
    fn event(&mut self, conn: Option<ConnId>, kind: EventKind, detail: &str) -> Result<(), String> {
        self.log.push(match conn {
            Some(c) => format!("{kind:?} c{} {detail}", c.0),
            None => format!("{kind:?} {detail}"),
        });
        let Some(id) = conn else {
            return match kind {
                EventKind::ConnectFailed
                | EventKind::Timeout
                | EventKind::Dispose
                | EventKind::Invalidate => Ok(()),
                _ => Err(format!("{kind:?} without a connection")),
            };
        };
        let life = self.lives.get(&id).copied();
        let next = match (kind, life) {
            (EventKind::FirstConnect, None) if self.first_connect.is_none() => {
                self.first_connect = Some(id);
                return Ok(());
            }
            (EventKind::Connect, None) if self.first_connect.is_some() => Life::New,
            (EventKind::Checkout, Some(Life::New | Life::Idle)) => Life::Out,
            (EventKind::Checkin, Some(Life::Out)) => Life::Idle,
            (EventKind::Checkin, Some(Life::Closed)) => Life::Gone,
            (EventKind::Close, Some(Life::Out | Life::Idle)) => Life::Closed,
            (
                EventKind::Invalidate | EventKind::Recycle | EventKind::Ping | EventKind::PingFailed,
                Some(Life::Idle),
            ) => Life::Idle,
            (EventKind::Invalidate | EventKind::Reset | EventKind::ResetFailed, Some(Life::Out)) => Life::Out,
            (EventKind::SoftInvalidate, Some(Life::Out)) => Life::Out,
            (EventKind::Detach, Some(Life::Out)) => Life::Detached,
            (EventKind::CloseDetached, Some(Life::Detached)) => Life::Gone,
            _ => return Err(format!("{kind:?} of c{} in state {life:?}", id.0)),
        };
        self.lives.insert(id, next);
        Ok(())
    }

    fn life(&self, id: ConnId) -> Option<Life> {
        self.lives.get(&id).copied()
    }

    /// The last events, for a failure message.
    fn tail(&self) -> String {
        let from = self.log.len().saturating_sub(30);
        self.log[from..].join("\n")
    }
}

/// A checkout or a return under way.
enum Task {
    /// A checkout's or a return's next I/O.
    Io { io: Io<Conn>, checkout: bool },
    /// A checkout waiting for its grant, with the deadline the harness
    /// expects for it.
    Waiting(WaiterId, Option<Instant>),
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Task::Io { io, .. } => write!(f, "{io:?}"),
            Task::Waiting(id, _) => write!(f, "waiter {id}"),
        }
    }
}

struct Harness {
    core: Core<Conn>,
    cfg: CoreConfig,
    now: Instant,
    start: Instant,
    tasks: Vec<Task>,
    held: Vec<(Conn, Meta)>,
    next_id: u64,
    live: Rc<Cell<usize>>,
    lives: Lives,
    /// Connections that existed at an `invalidate_all` or a `dispose`:
    /// never checked out again (one checked out already may still reach
    /// its caller).
    stale: HashSet<u64>,
    /// Those a caller held, was giving back, or was being handed at a
    /// `dispose`: closed when they come back (a checkout cancelled after
    /// the dispose included), never idle again.
    disposed: HashSet<u64>,
}

fn error(outcome: Outcome) -> Error {
    match outcome {
        Outcome::Disconnect => Error::closed("lost"),
        Outcome::Ok | Outcome::Fail => Error::driver("X1", "busy").with_class(ErrorClass::Transient),
    }
}

fn result(outcome: Outcome) -> Result<(), Error> {
    match outcome {
        Outcome::Ok => Ok(()),
        other => Err(error(other)),
    }
}

impl Harness {
    fn new(cfg: CoreConfig) -> Self {
        let start = Instant::now();
        Harness {
            core: Core::new(cfg.clone(), true, |c: &Conn| c.broken),
            cfg,
            now: start,
            start,
            tasks: Vec::new(),
            held: Vec::new(),
            next_id: 1,
            live: Rc::new(Cell::new(0)),
            lives: Lives::default(),
            stale: HashSet::new(),
            disposed: HashSet::new(),
        }
    }

    /// A new checkout; it never overtakes a waiter (first come, first
    /// served).
    fn checkout(&mut self) -> Result<(), String> {
        let waiting = self.core.status().waiting;
        let io = self.core.checkout(self.now);
        if waiting > 0 && !matches!(io, Io::Wait(_)) {
            return Err(format!("a checkout overtook {waiting} waiters: {io:?}"));
        }
        self.begin(io);
        Ok(())
    }

    /// A checkout's first answer: a wait starts its timeout now.
    fn begin(&mut self, io: Io<Conn>) {
        match io {
            Io::Wait(id) => {
                self.core.wait_from(id, self.now);
                let deadline = self.cfg.timeout.and_then(|t| self.now.checked_add(t));
                self.tasks.push(Task::Waiting(id, deadline));
            }
            io => self.tasks.push(Task::Io { io, checkout: true }),
        }
    }

    /// Performs task `i`'s I/O with `outcome`; a waiter looks for its
    /// grant. Returns whether anything moved (a waiter without a grant
    /// does not).
    fn perform(&mut self, i: usize, outcome: Outcome) -> Result<bool, String> {
        let task = self.tasks.swap_remove(i);
        let (io, checkout) = match task {
            Task::Waiting(id, deadline) => {
                return Ok(match self.core.take_grant(id) {
                    Some(io) => {
                        self.tasks.push(Task::Io { io, checkout: true });
                        true
                    }
                    None => {
                        self.tasks.push(Task::Waiting(id, deadline));
                        false
                    }
                });
            }
            Task::Io { io, checkout } => (io, checkout),
        };
        let now = self.now;
        let next = match io {
            Io::HandOut(conn, _) if !checkout => return Err(format!("a return handed out c{}", conn.id)),
            Io::HandOut(conn, meta) if conn.tx => {
                if let Some((c, _)) = self.core.idle.iter().find(|(c, _)| self.disposed.contains(&c.id)) {
                    return Err(format!("c{} idle after a dispose", c.id));
                }
                if self.cfg.reset != ResetOnReturn::None {
                    return Err(format!(
                        "c{} idled with a transaction open despite {:?}",
                        conn.id, self.cfg.reset
                    ));
                }
                self.core.dirty_at_checkout(conn, meta)
            }
            Io::HandOut(conn, meta) => return self.hand_out(conn, meta).map(|()| true),
            Io::Connect => {
                let conn = match outcome {
                    Outcome::Ok => {
                        self.live.set(self.live.get() + 1);
                        self.next_id += 1;
                        Ok(Conn {
                            id: self.next_id,
                            tx: false,
                            broken: false,
                            live: Rc::clone(&self.live),
                        })
                    }
                    other => Err(error(other)),
                };
                self.core.connected(conn, |c| ConnId(c.id), now)
            }
            Io::Ping(mut conn, meta) => {
                if let Outcome::Disconnect = outcome {
                    conn.broken = true;
                }
                self.core.pinged(conn, meta, result(outcome))
            }
            Io::Reset(mut conn, meta, phase) => {
                if let Outcome::Ok = outcome {
                    conn.tx = false;
                }
                self.core.reset(conn, meta, phase, result(outcome), now)
            }
            Io::Close(conn, meta, after) => {
                drop(conn);
                let err = error(Outcome::Fail);
                let result = match outcome {
                    Outcome::Ok => Ok(()),
                    _ => Err(&err),
                };
                self.core.closed(&meta, after, result)
            }
            Io::Wait(id) => {
                self.core.wait_from(id, now);
                let deadline = self.cfg.timeout.and_then(|t| now.checked_add(t));
                self.tasks.push(Task::Waiting(id, deadline));
                return Ok(true);
            }
            Io::Fail(_) | Io::Retry if !checkout => return Err("a return failed or retried".into()),
            Io::Fail(_) => return Ok(true),
            // The shell starts the checkout over.
            Io::Retry => {
                self.checkout()?;
                return Ok(true);
            }
            Io::Done if checkout => return Err("a checkout ended without a connection or an error".into()),
            Io::Done => return Ok(true),
        };
        self.tasks.push(Task::Io { io: next, checkout });
        Ok(true)
    }

    fn hand_out(&mut self, conn: Conn, meta: Meta) -> Result<(), String> {
        if conn.tx {
            return Err(format!("c{} handed out inside a transaction", conn.id));
        }
        if self.held.iter().any(|(c, _)| c.id == conn.id) {
            return Err(format!("c{} handed out twice", conn.id));
        }
        // Journaled as checked out before the caller gets it.
        self.settle()?;
        if self.lives.life(meta.id) != Some(Life::Out) {
            return Err(format!("c{} handed out without a checkout event", conn.id));
        }
        self.held.push((conn, meta));
        Ok(())
    }

    /// Drops task `i` mid-I/O, as a cancelled future or a panic would.
    fn abandon(&mut self, i: usize) {
        let held = match self.tasks.swap_remove(i) {
            Task::Waiting(id, _) => Held::Waiter(id),
            Task::Io { io: Io::Connect, .. } => Held::Slot,
            Task::Io {
                io: Io::Reset(conn, meta, Phase::Rollback | Phase::Commit),
                ..
            } => {
                drop(conn);
                Held::Out(meta)
            }
            Task::Io {
                io: Io::Close(conn, meta, _),
                ..
            } => {
                drop(conn);
                Held::Closing(meta)
            }
            Task::Io { io, .. } => Held::Back(io),
        };
        drop(self.core.abandon(held, self.now));
    }

    fn give_back(&mut self, i: usize, how: Ret) {
        let (mut conn, meta) = self.held.swap_remove(i);
        match how {
            Ret::Clean => {}
            Ret::Dirty => conn.tx = true,
            Ret::Broken => conn.broken = true,
        }
        let dirty = conn.tx;
        let io = self.core.returned(conn, meta, dirty, self.now);
        self.returning(io);
    }

    fn invalidate(&mut self, i: usize, disconnect: bool) {
        let (conn, meta) = self.held.swap_remove(i);
        let cause = disconnect.then(|| Error::closed("lost"));
        let io = self.core.invalidate_out(conn, meta, cause.as_ref());
        self.returning(io);
    }

    /// A return's next I/O, unless it is done already.
    fn returning(&mut self, io: Io<Conn>) {
        if !matches!(io, Io::Done) {
            self.tasks.push(Task::Io { io, checkout: false });
        }
    }

    fn detach(&mut self, i: usize) {
        let (conn, meta) = self.held.swap_remove(i);
        self.core.detach(&meta);
        drop(conn);
        self.core.close_detached(&meta, Ok(()));
    }

    /// The ids of every connection that exists: held, idle, under way.
    fn existing(&self) -> Vec<u64> {
        let io_conn = |io: &Io<Conn>| match io {
            Io::HandOut(c, _) | Io::Ping(c, _) | Io::Reset(c, _, _) | Io::Close(c, _, _) => Some(c.id),
            _ => None,
        };
        let tasks = self.tasks.iter().filter_map(|t| match t {
            Task::Io { io, .. } => io_conn(io),
            Task::Waiting(..) => None,
        });
        let grants = self.core.grants.iter().filter_map(|(_, io)| io_conn(io));
        let held = self.held.iter().map(|(c, _)| c.id);
        let idle = self.core.idle.iter().map(|(c, _)| c.id);
        held.chain(idle).chain(tasks).chain(grants).collect()
    }

    fn invalidate_all(&mut self) {
        self.stale.extend(self.existing());
        self.core.invalidate_all();
    }

    /// The ids of the connections callers hold or are giving back.
    fn with_callers(&self) -> Vec<u64> {
        let returning = self.tasks.iter().filter_map(|t| match t {
            Task::Io {
                io: Io::Reset(c, _, _) | Io::Close(c, _, _) | Io::HandOut(c, _) | Io::Ping(c, _),
                ..
            } => Some(c.id),
            _ => None,
        });
        self.held.iter().map(|(c, _)| c.id).chain(returning).collect()
    }

    fn dispose(&mut self) {
        self.stale.extend(self.existing());
        self.disposed.extend(self.with_callers());
        for (conn, meta) in self.core.dispose() {
            drop(conn);
            self.core.disposed_closed(meta.id, Ok(()));
        }
    }

    /// Time passes to `to`; the shell reports it.
    fn advance(&mut self, to: Instant) -> Result<(), String> {
        self.now = self.now.max(to);
        self.core.handle_timeout(self.now);
        // Every waiter past its deadline has its answer now.
        for task in &mut self.tasks {
            let Task::Waiting(id, Some(deadline)) = *task else {
                continue;
            };
            if deadline <= self.now {
                match self.core.take_grant(id) {
                    Some(io) => *task = Task::Io { io, checkout: true },
                    None => {
                        return Err(format!(
                            "waiter {id} unanswered {:?} past its deadline",
                            self.now - deadline
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Journals the core's events, checking their order; drops the wake
    /// list (the harness polls every waiter).
    fn settle(&mut self) -> Result<(), String> {
        let mut events = Vec::new();
        self.core.drain_events(|e| events.push(e));
        for e in events {
            self.lives.event(e.conn, e.kind, &e.detail)?;
            if e.kind == EventKind::Checkout && e.conn.is_some_and(|c| self.stale.contains(&c.0)) {
                return Err(format!("{e:?}: checked out after the pool invalidated it"));
            }
        }
        self.core.drain_woken(drop);
        Ok(())
    }

    fn check(&mut self) -> Result<(), String> {
        self.settle()?;
        self.core.check()?;
        let status = self.core.status();
        if status.limit().is_some_and(|limit| status.checked_out > limit) {
            return Err(format!("{} out, limit {:?}", status.checked_out, status.limit()));
        }
        if let Some((c, _)) = self.core.idle.iter().find(|(c, _)| self.disposed.contains(&c.id)) {
            return Err(format!("c{} idle after a dispose", c.id));
        }
        if self.cfg.reset != ResetOnReturn::None {
            if let Some((c, _)) = self.core.idle.iter().find(|(c, _)| c.tx) {
                return Err(format!("c{} idle with a transaction open", c.id));
            }
        }
        Ok(())
    }

    fn step(&mut self, step: &Step) -> Result<(), String> {
        let pick = |i: u8, n: usize| (n > 0).then(|| usize::from(i) % n);
        match *step {
            Step::Checkout => self.checkout()?,
            Step::Perform(i, outcome) => {
                if let Some(i) = pick(i, self.tasks.len()) {
                    self.perform(i, outcome)?;
                }
            }
            Step::Abandon(i) => {
                if let Some(i) = pick(i, self.tasks.len()) {
                    self.abandon(i);
                }
            }
            Step::Return(i, how) => {
                if let Some(i) = pick(i, self.held.len()) {
                    self.give_back(i, how);
                }
            }
            Step::Invalidate(i, disconnect) => {
                if let Some(i) = pick(i, self.held.len()) {
                    self.invalidate(i, disconnect);
                }
            }
            Step::Soft(i) => {
                if let Some(i) = pick(i, self.held.len()) {
                    self.core.invalidate_soft(&mut self.held[i].1);
                }
            }
            Step::Detach(i) => {
                if let Some(i) = pick(i, self.held.len()) {
                    self.detach(i);
                }
            }
            Step::InvalidateAll => self.invalidate_all(),
            Step::Dispose => self.dispose(),
            Step::Advance(ms) => self.advance(self.now + Duration::from_millis(u64::from(ms)))?,
            Step::ToDeadline => {
                if let Some(at) = self.core.poll_timeout() {
                    self.advance(at)?;
                }
            }
        }
        self.check()
    }

    /// Every caller gives back what it holds, every I/O succeeds, time
    /// runs to each deadline: every checkout must settle, and the pool
    /// must end with nothing out, no waiter, and no connection alive but
    /// the idle ones.
    fn finish(&mut self) -> Result<(), String> {
        for _ in 0..10_000 {
            if self.tasks.is_empty() && self.held.is_empty() {
                let status = self.core.status();
                if status.checked_out != 0 || status.waiting != 0 {
                    return Err(format!("settled, yet {status:?}"));
                }
                if self.live.get() != status.checked_in {
                    return Err(format!("{} connections alive, {status:?}", self.live.get()));
                }
                return Ok(());
            }
            let mut progressed = !self.held.is_empty();
            while let Some(i) = self.held.len().checked_sub(1) {
                self.give_back(i, Ret::Clean);
            }
            for i in (0..self.tasks.len()).rev() {
                if i < self.tasks.len() {
                    progressed |= self.perform(i, Outcome::Ok)?;
                }
            }
            self.check()?;
            if !progressed {
                match self.core.poll_timeout() {
                    Some(at) => self.advance(at)?,
                    None => return Err(format!("waiters never answered: {:?}", self.tasks)),
                }
                self.check()?;
            }
        }
        Err(format!("no end: {:?}", self.tasks))
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }
}

fn run(cfg: CoreConfig, steps: &[Step]) -> Result<(), String> {
    let mut h = Harness::new(cfg);
    for (n, step) in steps.iter().enumerate() {
        if let Err(why) = h.step(step) {
            return Err(format!(
                "step {n} ({step:?}) at +{:?}: {why}\ntasks {:?}\nlast events:\n{}",
                h.elapsed(),
                h.tasks,
                h.lives.tail()
            ));
        }
    }
    h.finish()
        .map_err(|why| format!("at the end: {why}\nlast events:\n{}", h.lives.tail()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_core_keeps_its_invariants_under_any_inputs(
        cfg in config(),
        steps in proptest::collection::vec(step(), 1..120),
    ) {
        if let Err(why) = run(cfg, &steps) {
            prop_assert!(false, "{}", why);
        }
    }
}

/// The checks can fail: a journal with two checkouts in a row, or a
/// checkout of a closed connection, is refused.
#[test]
fn the_journal_check_refuses_illegal_orders() {
    let c = Some(ConnId(7));
    let mut lives = Lives::default();
    lives.event(c, EventKind::FirstConnect, "").unwrap();
    lives.event(c, EventKind::Connect, "").unwrap();
    lives.event(c, EventKind::Checkout, "").unwrap();
    assert!(lives.event(c, EventKind::Checkout, "").is_err());
    let mut lives = Lives::default();
    for kind in [
        EventKind::FirstConnect,
        EventKind::Connect,
        EventKind::Checkout,
        EventKind::Close,
    ] {
        lives.event(c, kind, "").unwrap();
    }
    lives.event(c, EventKind::Checkin, "").unwrap();
    assert!(lives.event(c, EventKind::Checkout, "").is_err());
    assert!(Lives::default().event(c, EventKind::Connect, "").is_err());
}

/// The model finds a known corruption: a core that forgets to free a
/// slot on a failed connect leaves a waiter unanswered.
#[test]
fn the_model_catches_a_leaked_slot() {
    let cfg = CoreConfig {
        size: 1,
        max_overflow: 0,
        timeout: None,
        recycle: None,
        pre_ping: false,
        pre_ping_idle: None,
        lifo: false,
        reset: ResetOnReturn::Rollback,
    };
    let mut h = Harness::new(cfg);
    h.step(&Step::Checkout).unwrap();
    // The slot's connect never reports, and nothing gives it back.
    h.tasks.clear();
    h.step(&Step::Checkout).unwrap();
    assert!(h.finish().unwrap_err().contains("never answered"));
}
