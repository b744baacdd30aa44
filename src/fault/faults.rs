//! The test's handle on the fault layer: armed rules, server-wide faults,
//! and the shared state every faulty connection consults.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use regex::Regex;

use super::decision::{Decision, Injected};
use super::plan::FaultPlan;
use super::rule::Rule;
use crate::Op;
use crate::lock::lock;
use crate::{Clock, ConnId, Dialect, EventKind, Journal, Result};

/// The handle a test uses to make faults happen. Cloning shares it.
///
/// Obtained from [`FaultyDriver::faults`](crate::FaultyDriver::faults).
/// Rules are consulted in the order they were armed; the first that fires
/// decides what happens to the call, and later rules do not see it.
#[derive(Clone)]
pub struct Faults {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.shared.state);
        f.debug_struct("Faults")
            .field(
                "rules",
                &state.rules.iter().map(|r| r.rule.to_string()).collect::<Vec<_>>(),
            )
            .field("outage", &self.shared.outage.load(Ordering::Relaxed))
            .field("seed", &state.seed)
            .finish()
    }
}

pub(crate) struct Shared {
    state: Mutex<State>,
    /// Signalled when a rule is disarmed or fires.
    changed: Condvar,
    #[cfg(feature = "tokio")]
    pub(crate) notify: tokio::sync::Notify,
    /// The operations that have at least one armed rule, one bit each
    /// ([`op_bit`]): a call of any other operation reads only this and
    /// skips the state lock. Rewritten under the state lock whenever the
    /// rules change.
    armed_ops: AtomicU32,
    /// Whether the state has a journal: set, under the state lock, when
    /// one is given (never unset), so that journaling a connection's
    /// routine events (a faulty pool manager's pings) skips the lock when
    /// nothing would be written.
    journaled: AtomicBool,
    outage: AtomicBool,
    /// Live connections, so `kill`, `restart` and `outage` can close them.
    live: Mutex<HashMap<ConnId, Weak<dyn Kill>>>,
    /// The last id given to a connection this fault layer numbers itself
    /// (one attached through hooks, or made by a faulty pool manager).
    last_conn: AtomicU64,
    /// The real server behind the wrapped driver, when it can terminate
    /// connections itself: `kill`, `restart` and `outage` then go through
    /// it instead of killing in the fault layer.
    server: OnceLock<Arc<dyn Server>>,
}

struct State {
    rules: Vec<Armed>,
    next_rule: u64,
    seed: u64,
    rng: SplitMix64,
    journal: Option<Journal>,
    clock: Clock,
}

struct Armed {
    id: u64,
    rule: Rule,
    regex: Option<Regex>,
    /// The last statement `regex` was tried on and whether it matched.
    memo: Option<Memo>,
    calls: u64,
    hits: Arc<AtomicU64>,
    armed_at: Instant,
}

/// A regex verdict kept for the next call: connections repeat their
/// statements, and a verdict depends on the statement's text alone.
struct Memo {
    sql: String,
    matched: bool,
}

/// Statements longer than this are matched afresh on every call rather
/// than copied into a [`Memo`].
const MEMO_MAX_LEN: usize = 4096;

impl Armed {
    /// Whether `sql` passes the rule's statement filter. Same answer as
    /// `regex.is_match(sql)`; a repeated statement is answered from the
    /// memo.
    fn statement_matches(&mut self, sql: &str) -> bool {
        let Some(regex) = &self.regex else {
            return true;
        };
        if let Some(memo) = &self.memo {
            if memo.sql == sql {
                return memo.matched;
            }
        }
        let matched = regex.is_match(sql);
        if sql.len() <= MEMO_MAX_LEN {
            match &mut self.memo {
                Some(memo) => {
                    memo.sql.clear();
                    memo.sql.push_str(sql);
                    memo.matched = matched;
                }
                None => {
                    self.memo = Some(Memo {
                        sql: sql.to_owned(),
                        matched,
                    });
                }
            }
        }
        matched
    }
}

/// The bit of `op` in [`Shared::armed_ops`].
fn op_bit(op: Op) -> u32 {
    const _: () = assert!(Op::ALL.len() <= 32);
    1 << (op as u32)
}

/// The real server behind a driver, which terminates connections the way
/// an administrator does (PostgreSQL's `pg_terminate_backend`): the
/// client then meets the server's own error on its next call.
pub(crate) trait Server: Send + Sync {
    /// Terminates the server side of connections `ids`; for each, whether
    /// it was terminated (`false` for one the server does not know). `Err`
    /// says why none could be.
    fn terminate(&self, ids: &[ConnId]) -> std::result::Result<Vec<bool>, String>;
}

/// A live connection the server side can kill.
pub(crate) trait Kill: Send + Sync {
    /// Marks the connection dead and closes its inner connection if no
    /// operation is in flight (otherwise the operation's end closes it).
    /// The caller then wakes operations held by a hang rule
    /// ([`Shared::wake_killed`]).
    fn kill(&self);

    /// The connection's death flag: set by [`kill`](Kill::kill), and by
    /// the connection itself when a rule kills it.
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "r2d2", feature = "bb8", feature = "deadpool")),
        allow(dead_code)
    )]
    fn dead(&self) -> &AtomicBool;

    /// Whether the connection is dead.
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "r2d2", feature = "bb8", feature = "deadpool")),
        allow(dead_code)
    )]
    fn is_dead(&self) -> bool {
        self.dead().load(Ordering::Acquire)
    }

    /// Why this connection cannot carry out `rule`, if it cannot: a
    /// rusqlite connection attached through hooks cannot cut every
    /// operation after applying it.
    fn refuses(&self, _rule: &Rule) -> Option<String> {
        None
    }

    /// What no longer reaches this connection because the user's code
    /// replaced one of the hooks it was attached through.
    fn lost_hook(&self) -> Option<String> {
        None
    }
}

impl Shared {
    pub(crate) fn new() -> Self {
        Shared {
            state: Mutex::new(State {
                rules: Vec::new(),
                next_rule: 1,
                seed: 0,
                rng: SplitMix64(0),
                journal: None,
                clock: Clock::system(),
            }),
            changed: Condvar::new(),
            #[cfg(feature = "tokio")]
            notify: tokio::sync::Notify::new(),
            armed_ops: AtomicU32::new(0),
            journaled: AtomicBool::new(false),
            outage: AtomicBool::new(false),
            live: Mutex::new(HashMap::new()),
            last_conn: AtomicU64::new(0),
            server: OnceLock::new(),
        }
    }

    /// Kills go through `server` from now on (set once).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn set_server(&self, server: Arc<dyn Server>) {
        let _ = self.server.set(server);
    }

    /// A fresh id for a connection this fault layer numbers itself.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn next_conn_id(&self) -> ConnId {
        ConnId(self.last_conn.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// The rules armed now, in the order they were armed.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn armed_rules(&self) -> Vec<Rule> {
        lock(&self.state)
            .rules
            .iter()
            .map(|armed| armed.rule.clone())
            .collect()
    }

    /// Why a live connection cannot carry out `rule`, or no longer hears
    /// the rules at all; checked when a rule is armed.
    fn refusal(&self, rule: &Rule) -> Option<String> {
        let live: Vec<_> = lock(&self.live).values().filter_map(Weak::upgrade).collect();
        live.iter()
            .find_map(|conn| conn.lost_hook().or_else(|| conn.refuses(rule)))
    }

    pub(crate) fn set_journal(&self, journal: Journal) {
        let mut state = lock(&self.state);
        state.clock = journal.clock().clone();
        state.journal = Some(journal);
        self.journaled.store(true, Ordering::Release);
    }

    pub(crate) fn set_clock(&self, clock: Clock) {
        lock(&self.state).clock = clock;
    }

    pub(crate) fn clock(&self) -> Clock {
        lock(&self.state).clock.clone()
    }

    /// Whether any rule on `op` is armed; the fast path of every
    /// operation: without one, [`decide`](Shared::decide) would find
    /// nothing, so the caller skips it and its lock.
    #[inline]
    pub(crate) fn any_armed(&self, op: Op) -> bool {
        self.armed_ops.load(Ordering::Acquire) & op_bit(op) != 0
    }

    /// Rewrites [`armed_ops`](Shared::armed_ops) after the rules changed.
    /// The caller holds the state lock, so rewrites do not race.
    fn update_armed_ops(&self, state: &State) {
        let ops = state
            .rules
            .iter()
            .fold(0, |ops, armed| ops | op_bit(armed.rule.op));
        self.armed_ops.store(ops, Ordering::Release);
    }

    pub(crate) fn in_outage(&self) -> bool {
        self.outage.load(Ordering::Acquire)
    }

    /// What this call must do: `None` when no rule fires on it. The fast
    /// path of every operation: without a rule armed on `op`, one atomic
    /// load answers, and the state lock is not taken.
    #[inline]
    pub(crate) fn decision(
        &self,
        op: Op,
        sql: &str,
        conn: Option<ConnId>,
        dialect: &dyn Dialect,
    ) -> Option<Decision> {
        if self.any_armed(op) {
            self.decide(op, sql, conn, Injected::new(dialect))
        } else {
            None
        }
    }

    /// Decides whether a rule fires on this call, counting it, journaling
    /// it and waking `wait_for_hits` waiters when one does.
    fn decide(&self, op: Op, sql: &str, conn: Option<ConnId>, errors: Injected<'_>) -> Option<Decision> {
        let mut guard = lock(&self.state);
        let state = &mut *guard;
        // Read once, when the first `after` filter needs it.
        let mut now = None;
        let mut fired = None;
        for armed in &mut state.rules {
            let rule = &armed.rule;
            if rule.op != op
                || rule.conn.is_some_and(|c| Some(c) != conn)
                || rule.after.is_some_and(|d| {
                    let now = *now.get_or_insert_with(|| state.clock.now());
                    now.saturating_duration_since(armed.armed_at) < d
                })
                || !armed.statement_matches(sql)
            {
                continue;
            }
            let rule = &armed.rule;
            armed.calls += 1;
            let hits = armed.hits.load(Ordering::Relaxed);
            if rule.nth.is_some_and(|n| armed.calls != n)
                || rule.every.is_some_and(|k| armed.calls % k != 0)
                || rule.times.is_some_and(|n| hits >= n)
            {
                continue;
            }
            if let Some(p) = rule.probability {
                if state.rng.next_f64() >= p {
                    continue;
                }
            }
            armed.hits.store(hits + 1, Ordering::Release);
            fired = Some(Decision::of(&rule.action, armed.id, op, conn, errors));
            if let Some(journal) = &state.journal {
                journal.record(
                    conn,
                    EventKind::Fault,
                    format!("{op}: {} (rule {})", rule.action, armed.id),
                );
            }
            break;
        }
        drop(guard);
        if fired.is_some() {
            self.wake();
        }
        fired
    }

    /// Journals an event of a connection this fault layer made or
    /// attached (a faulty pool manager's connects and pings), or a
    /// server-side fault; nothing, without taking the lock, when there is
    /// no journal.
    #[inline]
    pub(crate) fn record(&self, conn: Option<ConnId>, kind: EventKind, detail: String) {
        if self.journaled.load(Ordering::Acquire) {
            self.record_journaled(conn, kind, detail);
        }
    }

    fn record_journaled(&self, conn: Option<ConnId>, kind: EventKind, detail: String) {
        if let Some(journal) = &lock(&self.state).journal {
            journal.record(conn, kind, detail);
        }
    }

    /// Journals a server-side fault that no rule caused.
    pub(crate) fn journal(&self, conn: Option<ConnId>, detail: String) {
        self.record(conn, EventKind::Fault, detail);
    }

    fn wake(&self) {
        self.changed.notify_all();
        #[cfg(feature = "tokio")]
        self.notify.notify_waiters();
    }

    pub(crate) fn is_armed(&self, rule: u64) -> bool {
        lock(&self.state).rules.iter().any(|r| r.id == rule)
    }

    /// Blocks the calling thread until `rule` is disarmed or, for an
    /// operation of a connection, until `dead` (that connection's flag) is
    /// set: a killed connection's caller hears of it at once.
    pub(crate) fn wait_disarmed(&self, rule: u64, dead: Option<&AtomicBool>) {
        let mut state = lock(&self.state);
        while state.rules.iter().any(|r| r.id == rule) && !dead.is_some_and(|d| d.load(Ordering::Acquire)) {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// Waits `d` on the fault layer's clock: advances a manual clock,
    /// sleeps the thread otherwise.
    pub(crate) fn sleep(&self, d: Duration) {
        if !self.advance_manual(d) {
            std::thread::sleep(d);
        }
    }

    /// Advances the fault layer's clock by `d` if it is manual (a wait on
    /// a manual clock takes no time); returns whether it was.
    pub(crate) fn advance_manual(&self, d: Duration) -> bool {
        let clock = self.clock();
        if clock.is_manual() {
            clock.advance(d);
        }
        clock.is_manual()
    }

    fn disarm(&self, rule: u64) {
        let mut state = lock(&self.state);
        state.rules.retain(|r| r.id != rule);
        self.update_armed_ops(&state);
        drop(state);
        self.wake();
    }

    pub(crate) fn register(&self, id: ConnId, conn: Weak<dyn Kill>) {
        lock(&self.live).insert(id, conn);
    }

    pub(crate) fn unregister(&self, id: ConnId) {
        lock(&self.live).remove(&id);
    }

    /// Kills every live connection. The registry lock is released before
    /// any connection is closed.
    fn kill_all(&self) {
        let live: Vec<_> = lock(&self.live)
            .drain()
            .filter_map(|(id, w)| Some((id, w.upgrade()?)))
            .collect();
        self.kill_these(live);
    }

    /// Kills `conns`: through the real server when there is one (each
    /// connection it could not terminate is killed in the fault layer
    /// instead, and the journal says why), else in the fault layer. Then
    /// wakes the operations hang rules hold.
    fn kill_these(&self, conns: Vec<(ConnId, Arc<dyn Kill>)>) {
        let terminated = match self.server.get() {
            Some(server) if !conns.is_empty() => {
                let ids: Vec<ConnId> = conns.iter().map(|(id, _)| *id).collect();
                server.terminate(&ids).unwrap_or_else(|why| {
                    self.journal(
                        None,
                        format!("server-side kill failed ({why}): killed in the fault layer"),
                    );
                    vec![false; ids.len()]
                })
            }
            _ => Vec::new(),
        };
        for (i, (_, conn)) in conns.into_iter().enumerate() {
            if !terminated.get(i).copied().unwrap_or(false) {
                conn.kill();
            }
        }
        self.wake_killed();
    }

    /// Wakes the operations a hang rule holds, after connections were
    /// killed, so those of a dead connection stop waiting. Taking the state
    /// lock first orders the kill before a waiter's next look at its flag
    /// (a waiter looks at it under that lock), so no wake-up is lost.
    fn wake_killed(&self) {
        drop(lock(&self.state));
        self.wake();
    }
}

impl Default for Faults {
    fn default() -> Self {
        Faults::new()
    }
}

impl Faults {
    /// Arms `rule` and returns the guard that disarms it on drop.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Scenario`](crate::ErrorKind::Scenario), naming the
    /// field, for each of the problems listed in [`Rule`]'s docs: a regex
    /// that does not compile or can never match, a probability outside
    /// `0..=1`, `nth`, `every` or `times` of zero, a count or connection id
    /// above `i64::MAX`, a connect rule that filters by connection, a delay
    /// above [`Rule::MAX_DELAY`].
    pub fn arm(&self, rule: Rule) -> Result<FaultGuard> {
        let regex = validate(&rule, None)?;
        if let Some(why) = self.shared.refusal(&rule) {
            return Err(crate::Error::scenario(None, "action", why));
        }
        let hits = Arc::new(AtomicU64::new(0));
        let mut state = lock(&self.shared.state);
        let id = state.next_rule;
        state.next_rule += 1;
        let armed_at = state.clock.now();
        state.rules.push(Armed {
            id,
            rule,
            regex,
            memo: None,
            calls: 0,
            hits: Arc::clone(&hits),
            armed_at,
        });
        self.shared.update_armed_ops(&state);
        drop(state);
        Ok(FaultGuard {
            shared: Arc::clone(&self.shared),
            id,
            hits,
            keep: false,
        })
    }

    /// A fault layer of its own, with no rule armed, seed 0, the system
    /// clock and no journal: for connections the test's code opens itself
    /// and [attaches](Faults::attach). A [`FaultyDriver`](crate::FaultyDriver)
    /// makes its own; [`FaultyDriver::faults`](crate::FaultyDriver::faults)
    /// hands it out.
    pub fn new() -> Self {
        Faults {
            shared: Arc::new(Shared::new()),
        }
    }

    /// Writes every fired fault and every server-side fault to `journal`,
    /// and takes the journal's clock for delays and `after` filters.
    #[must_use]
    pub fn with_journal(self, journal: Journal) -> Self {
        self.shared.set_journal(journal);
        self
    }

    /// Uses `clock` for delays and `after` filters. A manual clock turns a
    /// `delay` into an instant advance of that clock.
    #[must_use]
    pub fn with_clock(self, clock: Clock) -> Self {
        self.shared.set_clock(clock);
        self
    }

    /// Reseeds the generator behind `probability` filters.
    pub fn seed(&self, seed: u64) {
        let mut state = lock(&self.shared.state);
        state.seed = seed;
        state.rng = SplitMix64(seed);
    }

    /// Arms every rule of `plan` after reseeding with its seed.
    ///
    /// # Errors
    ///
    /// As [`arm`](Faults::arm); no rule is armed if one is invalid.
    pub fn load(&self, plan: &FaultPlan) -> Result<PlanGuard> {
        for rule in plan.rules() {
            validate(rule, None)?;
        }
        self.seed(plan.seed());
        let guards = plan
            .rules()
            .iter()
            .map(|rule| self.arm(rule.clone()))
            .collect::<Result<Vec<_>>>()?;
        Ok(PlanGuard { guards })
    }

    /// Disarms every rule, including kept ones.
    pub fn disarm_all(&self) {
        let mut state = lock(&self.shared.state);
        state.rules.clear();
        self.shared.update_armed_ops(&state);
        drop(state);
        self.shared.wake();
    }

    /// Takes the server down: live connections die and connects are
    /// refused with a disconnect until [`restore`](Faults::restore),
    /// including connects already under way (held by a rule, or inside the
    /// wrapped driver) when the outage began.
    ///
    /// Over a real server that can terminate connections itself
    /// ([`PgDriver::faulty`](crate::PgDriver::faulty)), the live
    /// connections are terminated by the server, as for
    /// [`restart`](Faults::restart); connects are refused here, before
    /// they reach it.
    pub fn outage(&self) {
        self.shared.outage.store(true, Ordering::Release);
        self.shared.journal(None, "outage".to_owned());
        self.shared.kill_all();
    }

    /// Ends an outage: connects succeed again.
    pub fn restore(&self) {
        self.shared.outage.store(false, Ordering::Release);
        self.shared.journal(None, "restore".to_owned());
    }

    /// Restarts the server: every live connection dies, new connects
    /// succeed. Over a real server that can terminate connections itself
    /// ([`PgDriver::faulty`](crate::PgDriver::faulty)), the server
    /// terminates them, as [`kill`](Faults::kill) does.
    pub fn restart(&self) {
        self.shared.journal(None, "restart".to_owned());
        self.shared.kill_all();
    }

    /// Kills one connection, as the server would (`pg_terminate_backend`).
    /// Returns whether that connection was alive.
    ///
    /// An operation of that connection under way fails with a disconnect:
    /// one held by a hang rule at once, one in flight in the wrapped driver
    /// when the driver returns (its inner connection is closed then).
    ///
    /// Over a real server that can terminate connections itself
    /// ([`PgDriver::faulty`](crate::PgDriver::faulty),
    /// [`AsyncPgDriver::faulty`](crate::AsyncPgDriver::faulty)), the
    /// server terminates it (`pg_terminate_backend`), and the connection's
    /// next call, or the one in flight, fails with the server's own error
    /// (`FATAL 57P01`), not one the fault layer made; the fault layer
    /// leaves the connection alone, so an operation a hang rule holds
    /// stays held until the rule is disarmed, and then meets that error.
    /// If the server cannot terminate it (the admin connection fails), it
    /// is killed in the fault layer instead, and the journal says why.
    pub fn kill(&self, id: ConnId) -> bool {
        let conn = lock(&self.shared.live).remove(&id).and_then(|w| w.upgrade());
        match conn {
            Some(conn) => {
                self.shared.journal(Some(id), "kill".to_owned());
                self.shared.kill_these(vec![(id, conn)]);
                true
            }
            None => false,
        }
    }

    /// Ids of the connections this fault layer sees alive, sorted.
    pub fn live_connections(&self) -> Vec<ConnId> {
        let mut ids: Vec<ConnId> = lock(&self.shared.live).keys().copied().collect();
        ids.sort();
        ids
    }

    /// Whether the server is in an outage.
    pub fn is_down(&self) -> bool {
        self.shared.in_outage()
    }
}

/// Checks a rule and compiles its regex (see [`Rule`]'s docs for what is
/// refused). `line` locates the rule in a plan file; the plan reader passes
/// each field's own line through [`Rule::check`] instead.
pub(crate) fn validate(rule: &Rule, line: Option<usize>) -> Result<Option<Regex>> {
    rule.check(&|_| line)
}

/// Disarms its rule when dropped; counts the rule's hits.
#[must_use = "dropping a FaultGuard disarms its rule at once"]
pub struct FaultGuard {
    shared: Arc<Shared>,
    id: u64,
    hits: Arc<AtomicU64>,
    keep: bool,
}

impl fmt::Debug for FaultGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultGuard")
            .field("rule", &self.id)
            .field("hits", &self.hits())
            .finish()
    }
}

impl FaultGuard {
    #[cfg(feature = "tokio")]
    pub(super) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// How many times the rule has fired.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Acquire)
    }

    /// The rule's number, as journaled (`rule 3`).
    pub fn rule_id(&self) -> u64 {
        self.id
    }

    /// Blocks until the rule has fired `n` times or `timeout` passed (real
    /// time); returns whether it reached `n`. A timeout too long to add to
    /// an [`Instant`] (`Duration::MAX`) waits for as long as it takes.
    pub fn wait_for_hits(&self, n: u64, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = lock(&self.shared.state);
        loop {
            if self.hits() >= n {
                return true;
            }
            let Some(deadline) = deadline else {
                state = self
                    .shared
                    .changed
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            };
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// Whether the rule is still armed.
    pub fn is_armed(&self) -> bool {
        self.shared.is_armed(self.id)
    }

    /// Disarms the rule now (same as dropping the guard).
    pub fn disarm(self) {}

    /// Leaves the rule armed for good (until [`Faults::disarm_all`]).
    pub fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for FaultGuard {
    fn drop(&mut self) {
        if !self.keep {
            self.shared.disarm(self.id);
        }
    }
}

/// The guards of a loaded [`FaultPlan`]: dropping it disarms the plan.
#[must_use = "dropping a PlanGuard disarms the plan at once"]
#[derive(Debug)]
pub struct PlanGuard {
    guards: Vec<FaultGuard>,
}

impl PlanGuard {
    /// One guard per rule, in plan order.
    pub fn guards(&self) -> &[FaultGuard] {
        &self.guards
    }

    /// Total hits over the plan's rules.
    pub fn hits(&self) -> u64 {
        self.guards.iter().map(FaultGuard::hits).sum()
    }
}

/// A small, fast, seedable generator (SplitMix64): same seed, same draws.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float uniform in `[0, 1)`.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults() -> Faults {
        Faults {
            shared: Arc::new(Shared::new()),
        }
    }

    /// Which calls of `calls` a rule fired on (1-based).
    fn fired_on(faults: &Faults, calls: &[(Op, &str)]) -> Vec<usize> {
        calls
            .iter()
            .enumerate()
            .filter(|(_, (op, sql))| {
                faults
                    .shared
                    .decision(*op, sql, Some(ConnId(1)), &crate::MockDialect::new())
                    .is_some()
            })
            .map(|(i, _)| i + 1)
            .collect()
    }

    #[test]
    fn armed_ops_follow_arm_disarm_and_disarm_all() {
        let faults = faults();
        assert!(Op::ALL.iter().all(|op| !faults.shared.any_armed(*op)));
        let commit = faults.arm(Rule::on(Op::Commit)).unwrap();
        let commit_again = faults.arm(Rule::on(Op::Commit).nth(3)).unwrap();
        let ping = faults.arm(Rule::on(Op::Ping)).unwrap();
        let armed = |faults: &Faults| {
            Op::ALL
                .into_iter()
                .filter(|op| faults.shared.any_armed(*op))
                .collect::<Vec<_>>()
        };
        assert_eq!(armed(&faults), [Op::Commit, Op::Ping]);
        drop(commit);
        assert_eq!(
            armed(&faults),
            [Op::Commit, Op::Ping],
            "another commit rule is armed"
        );
        drop(commit_again);
        assert_eq!(armed(&faults), [Op::Ping]);
        faults.arm(Rule::on(Op::Connect)).unwrap().keep();
        assert_eq!(armed(&faults), [Op::Connect, Op::Ping]);
        faults.disarm_all();
        assert_eq!(armed(&faults), []);
        drop(ping);
        assert_eq!(armed(&faults), []);
    }

    #[test]
    fn statement_filter_gives_the_same_verdicts_on_alternating_statements() {
        let faults = faults();
        let _guard = faults
            .arm(Rule::on(Op::Query).matching("^SELECT .* FROM a$").every(2))
            .unwrap();
        let a = "SELECT x FROM a";
        let b = "SELECT x FROM b";
        let long = format!("SELECT {} FROM a", "x, ".repeat(MEMO_MAX_LEN));
        let calls = [
            (Op::Query, a),
            (Op::Query, a),
            (Op::Query, b),
            (Op::Query, b),
            (Op::Execute, a),
            (Op::Query, a),
            (Op::Query, long.as_str()),
            (Op::Query, b),
            (Op::Query, long.as_str()),
            (Op::Query, a),
        ];
        // Matching calls: 1, 2, 6, 7, 9, 10; every second of them fires.
        assert_eq!(fired_on(&faults, &calls), [2, 7, 10]);
    }

    #[test]
    fn after_filter_reads_the_clock_of_the_fault_layer() {
        let faults = faults();
        let clock = Clock::manual();
        faults.shared.set_clock(clock.clone());
        let _later = faults
            .arm(Rule::on(Op::Query).after(Duration::from_secs(2)).times(1))
            .unwrap();
        let _other_op = faults.arm(Rule::on(Op::Ping)).unwrap();
        assert_eq!(fired_on(&faults, &[(Op::Query, "SELECT 1")]), []);
        clock.advance(Duration::from_secs(2));
        assert_eq!(
            fired_on(&faults, &[(Op::Query, "SELECT 1"), (Op::Query, "SELECT 1")]),
            [1]
        );
    }
}
