//! Pool invariants: what must hold, whatever faults fired.

use std::collections::HashMap;
use std::fmt;

use crate::{ConnId, Connection, EventKind, Journal, PoolStatus};

/// A pool whose counters [`Invariants`] can read: every
/// [`AnyPool`](super::shell::AnyPool) ([`Pool`](crate::Pool) and, with
/// feature `tokio`, `AsyncPool`), or a stand-in of a test's own.
pub trait InspectPool {
    /// The counters, read at one instant.
    fn status(&self) -> PoolStatus;
    /// The core's own consistency check.
    fn check_counters(&self) -> Result<(), String>;
}

/// Every pool of either shell can be inspected.
impl<P: super::shell::AnyPool> InspectPool for P {
    fn status(&self) -> PoolStatus {
        super::shell::AnyPool::status(self)
    }
    fn check_counters(&self) -> Result<(), String> {
        super::shell::AnyPool::check_counters(self)
    }
}

/// The invariants every failure-mode test can check, at any step:
///
/// - **counters**: checked-in plus checked-out is what the pool owns, never
///   more than `size + max_overflow`, and no connection idles while a
///   checkout waits;
/// - **peak**: checked-out never exceeded `size + max_overflow` at any
///   check;
/// - **clean checkouts**: no connection was handed out inside a transaction
///   ([`checkout`](Invariants::checkout) at each checkout);
/// - **closed once**: every connection closed at most once, and every
///   invalidated one closed exactly once (at quiescence);
/// - **answered faults**: every fault that killed a connection is followed
///   by the pool's answer for it (invalidate or close), and every refused
///   connect by a failed connect (at quiescence, once the workload has used
///   the pool after the faults stopped);
/// - **accounting**: connects minus closes minus detaches is what the pool
///   owns (at quiescence).
///
/// A violation reports what broke and the journal as a timeline.
#[derive(Debug, Default, Clone)]
pub struct Invariants {
    peak: usize,
    checkouts: u64,
}

/// One or more broken invariants, with the timeline that shows how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    broken: Vec<String>,
    timeline: String,
}

impl Violation {
    /// What broke, one line each.
    pub fn broken(&self) -> &[String] {
        &self.broken
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "pool invariants broken:")?;
        for b in &self.broken {
            writeln!(f, "  - {b}")?;
        }
        if !self.timeline.is_empty() {
            writeln!(f, "\n{}", self.timeline)?;
        }
        Ok(())
    }
}

impl std::error::Error for Violation {}

impl Invariants {
    /// A checker with no history.
    pub fn new() -> Self {
        Invariants::default()
    }

    /// The counter invariants, at any moment (connections may be out,
    /// connects in flight).
    ///
    /// # Errors
    ///
    /// The broken invariants, with `journal`'s timeline if given.
    pub fn check_pool(
        &mut self,
        pool: &impl InspectPool,
        journal: Option<&Journal>,
    ) -> Result<(), Violation> {
        let mut broken = Vec::new();
        let status = pool.status();
        if let Err(why) = pool.check_counters() {
            broken.push(format!("counters: {why}"));
        }
        let max = status.limit().unwrap_or(usize::MAX);
        self.peak = self.peak.max(status.checked_out);
        if self.peak > max {
            broken.push(format!(
                "peak: {} connections were out at once, more than {max}",
                self.peak
            ));
        }
        violation(broken, journal)
    }

    /// A connection was just checked out: it must not be inside a
    /// transaction.
    ///
    /// # Errors
    ///
    /// The violation, if it is.
    pub fn checkout<C: Connection + ?Sized>(&mut self, conn: &C) -> Result<(), Violation> {
        self.clean_checkout(conn.id(), conn.in_transaction())
    }

    /// The same for an async connection (feature `tokio`).
    ///
    /// # Errors
    ///
    /// The violation, if it is.
    #[cfg(feature = "tokio")]
    pub fn checkout_async<C: crate::AsyncConnection + ?Sized>(&mut self, conn: &C) -> Result<(), Violation> {
        self.clean_checkout(conn.id(), conn.in_transaction())
    }

    fn clean_checkout(&mut self, id: ConnId, in_transaction: bool) -> Result<(), Violation> {
        self.checkouts += 1;
        if in_transaction {
            let what = format!("clean checkouts: {id} was handed out inside a transaction");
            return violation(vec![what], None);
        }
        Ok(())
    }

    /// Everything, at quiescence: no connection out, no connect or reset
    /// in flight, and the pool used after the last fault (so it had the
    /// chance to notice dead connections).
    ///
    /// # Errors
    ///
    /// The broken invariants, with the timeline.
    pub fn check_quiescent(&mut self, pool: &impl InspectPool, journal: &Journal) -> Result<(), Violation> {
        let mut broken = match self.check_pool(pool, None) {
            Ok(()) => Vec::new(),
            Err(v) => v.broken,
        };
        let status = pool.status();
        broken.extend(journal_problems(journal, status.total()));
        violation(broken, Some(journal))
    }

    /// How many checkouts [`checkout`](Invariants::checkout) saw.
    pub fn checkouts(&self) -> u64 {
        self.checkouts
    }
}

fn violation(broken: Vec<String>, journal: Option<&Journal>) -> Result<(), Violation> {
    if broken.is_empty() {
        return Ok(());
    }
    Err(Violation {
        broken,
        timeline: journal.map(Journal::timeline).unwrap_or_default(),
    })
}

/// Whether a fault event's detail names an action that kills a connection.
fn kills(detail: &str) -> bool {
    detail == "kill" || detail.contains(": disconnect")
}

/// The journal-level invariants, at quiescence.
fn journal_problems(journal: &Journal, owned: usize) -> Vec<String> {
    let events = journal.events();
    let mut broken = Vec::new();
    let mut closes: HashMap<ConnId, usize> = HashMap::new();
    let mut invalidated: HashMap<ConnId, u64> = HashMap::new();
    let (mut connects, mut closed, mut detached) = (0usize, 0usize, 0usize);
    for e in &events {
        match (e.kind, e.conn) {
            (EventKind::Connect, _) => connects += 1,
            (EventKind::Close, Some(c)) | (EventKind::CloseDetached, Some(c)) => {
                *closes.entry(c).or_default() += 1;
                if e.kind == EventKind::Close {
                    closed += 1;
                }
            }
            (EventKind::Detach, _) => detached += 1,
            (EventKind::Invalidate, Some(c)) => {
                invalidated.entry(c).or_insert(e.seq);
            }
            _ => {}
        }
    }
    for (conn, n) in &closes {
        if *n > 1 {
            broken.push(format!("closed once: {conn} was closed {n} times"));
        }
    }
    for (conn, seq) in &invalidated {
        if !closes.contains_key(conn) {
            broken.push(format!(
                "closed once: {conn} was invalidated (#{seq}) but never closed"
            ));
        }
    }
    for (i, e) in events.iter().enumerate() {
        if e.kind != EventKind::Fault {
            continue;
        }
        let later = &events[i + 1..];
        match e.conn {
            Some(c) if kills(&e.detail) => {
                let answered = later.iter().any(|l| {
                    l.conn == Some(c)
                        && matches!(
                            l.kind,
                            EventKind::Invalidate | EventKind::Close | EventKind::CloseDetached
                        )
                });
                if !answered {
                    broken.push(format!(
                        "answered faults: fault #{} killed {c} ({}) and the pool never invalidated or closed it",
                        e.seq, e.detail
                    ));
                }
            }
            None if e.detail.starts_with("connect: ")
                && !e.detail.contains("delay")
                && !e.detail.contains("hang")
                && !later.iter().any(|l| l.kind == EventKind::ConnectFailed) =>
            {
                broken.push(format!(
                    "answered faults: fault #{} refused a connect and no failed connect followed",
                    e.seq
                ));
            }
            _ => {}
        }
    }
    if connects < closed + detached || connects - closed - detached != owned {
        broken.push(format!(
            "accounting: {connects} connects - {closed} closes - {detached} detaches != {owned} connections owned"
        ));
    }
    broken
}
