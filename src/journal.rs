//! The journal: one totally ordered log of what the pool, the engine and the
//! fault layer did.
//!
//! The pool and the fault layer know nothing of each other; they meet here.
//! Each [`Event`] has a sequence number, a time offset from the journal's
//! start, the connection it concerns and what happened. [`Journal::timeline`]
//! renders the log with one lane per connection, for failure messages.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::ConnId;
use crate::clock::{Clock, lock};

/// What happened, one variant per event of DESIGN.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum EventKind {
    /// The pool's very first successful connect (followed by `Connect`).
    FirstConnect,
    /// A new driver connection was opened.
    Connect,
    /// Opening a driver connection failed.
    ConnectFailed,
    /// A connection was handed to a caller.
    Checkout,
    /// A connection came back to the pool.
    Checkin,
    /// The connection was reset on return (rollback, commit, or nothing).
    Reset,
    /// The reset on return failed; the connection is invalidated.
    ResetFailed,
    /// A pre-ping succeeded.
    Ping,
    /// A pre-ping failed.
    PingFailed,
    /// A connection was invalidated (hard).
    Invalidate,
    /// A connection was soft-invalidated: replaced at its next checkout.
    SoftInvalidate,
    /// A driver connection was closed.
    Close,
    /// A connection was detached from the pool's accounting.
    Detach,
    /// A detached connection was closed.
    CloseDetached,
    /// A connection past its recycle age was replaced.
    Recycle,
    /// A checkout timed out.
    Timeout,
    /// The pool was disposed.
    Dispose,
    /// The fault layer fired a rule or a server-wide fault.
    Fault,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [EventKind; 18] = [
        EventKind::FirstConnect,
        EventKind::Connect,
        EventKind::ConnectFailed,
        EventKind::Checkout,
        EventKind::Checkin,
        EventKind::Reset,
        EventKind::ResetFailed,
        EventKind::Ping,
        EventKind::PingFailed,
        EventKind::Invalidate,
        EventKind::SoftInvalidate,
        EventKind::Close,
        EventKind::Detach,
        EventKind::CloseDetached,
        EventKind::Recycle,
        EventKind::Timeout,
        EventKind::Dispose,
        EventKind::Fault,
    ];

    /// The snake_case name DESIGN.md uses (`first_connect`, `fault`, ...).
    pub fn name(self) -> &'static str {
        match self {
            EventKind::FirstConnect => "first_connect",
            EventKind::Connect => "connect",
            EventKind::ConnectFailed => "connect_failed",
            EventKind::Checkout => "checkout",
            EventKind::Checkin => "checkin",
            EventKind::Reset => "reset",
            EventKind::ResetFailed => "reset_failed",
            EventKind::Ping => "ping",
            EventKind::PingFailed => "ping_failed",
            EventKind::Invalidate => "invalidate",
            EventKind::SoftInvalidate => "soft_invalidate",
            EventKind::Close => "close",
            EventKind::Detach => "detach",
            EventKind::CloseDetached => "close_detached",
            EventKind::Recycle => "recycle",
            EventKind::Timeout => "timeout",
            EventKind::Dispose => "dispose",
            EventKind::Fault => "fault",
        }
    }

    /// The kind with this snake_case name.
    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event {
    /// Position in the journal's total order, from 1.
    pub seq: u64,
    /// Time since the journal was created, on its clock.
    pub at: Duration,
    /// The connection concerned, if any.
    pub conn: Option<ConnId>,
    /// What happened.
    pub kind: EventKind,
    /// A short free-form detail: the fault fired, the error, the reset mode.
    pub detail: String,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} +{:?} ", self.seq, self.at)?;
        match self.conn {
            Some(c) => write!(f, "{c} ")?,
            None => f.write_str("pool ")?,
        }
        f.write_str(self.kind.name())?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

/// A shared, ordered event log. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    clock: Clock,
    start: Instant,
    events: Mutex<Vec<Event>>,
}

impl Default for Journal {
    fn default() -> Self {
        Journal::new()
    }
}

impl Journal {
    /// An empty journal on the system clock.
    pub fn new() -> Self {
        Journal::with_clock(Clock::system())
    }

    /// An empty journal whose time offsets come from `clock` (a manual or a
    /// paused tokio clock makes them reproducible).
    pub fn with_clock(clock: Clock) -> Self {
        let start = clock.now();
        Journal {
            inner: Arc::new(Inner {
                clock,
                start,
                events: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The journal's clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Appends an event and returns its sequence number.
    pub fn record(&self, conn: Option<ConnId>, kind: EventKind, detail: impl Into<String>) -> u64 {
        let at = self.inner.clock.now().saturating_duration_since(self.inner.start);
        let detail = detail.into();
        let mut events = lock(&self.inner.events);
        let seq = events.len() as u64 + 1;
        events.push(Event {
            seq,
            at,
            conn,
            kind,
            detail,
        });
        seq
    }

    /// A copy of every event so far, in order.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.inner.events).clone()
    }

    /// How many events so far.
    pub fn len(&self) -> usize {
        lock(&self.inner.events).len()
    }

    /// Whether nothing was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The kinds of the events so far, in order (handy in assertions).
    pub fn kinds(&self) -> Vec<EventKind> {
        lock(&self.inner.events).iter().map(|e| e.kind).collect()
    }

    /// The kinds of the events that concern `conn`, in order.
    pub fn kinds_for(&self, conn: ConnId) -> Vec<EventKind> {
        lock(&self.inner.events)
            .iter()
            .filter(|e| e.conn == Some(conn))
            .map(|e| e.kind)
            .collect()
    }

    /// How many events of `kind` were recorded.
    pub fn count(&self, kind: EventKind) -> usize {
        lock(&self.inner.events).iter().filter(|e| e.kind == kind).count()
    }

    /// Renders the journal as a timeline, one lane per connection.
    pub fn timeline(&self) -> String {
        render_timeline(&self.events())
    }
}

/// Renders `events` as a timeline: a row per event, a lane (column) per
/// connection plus one for the pool, faults marked with `!!`.
pub fn render_timeline(events: &[Event]) -> String {
    let mut lanes: BTreeMap<Option<ConnId>, usize> = BTreeMap::new();
    lanes.insert(None, 0);
    for e in events {
        let next = lanes.len();
        lanes.entry(e.conn).or_insert(next);
    }
    // Lanes in order of first appearance, pool first.
    let mut order: Vec<(Option<ConnId>, usize)> = lanes.into_iter().collect();
    order.sort_by_key(|&(_, i)| i);
    let label = |e: &Event| {
        let mark = if e.kind == EventKind::Fault { "!! " } else { "" };
        if e.detail.is_empty() {
            format!("{mark}{}", e.kind)
        } else {
            format!("{mark}{}: {}", e.kind, e.detail)
        }
    };
    let mut widths: Vec<usize> = order
        .iter()
        .map(|(c, _)| c.map_or(4, |c| c.to_string().len()))
        .collect();
    for e in events {
        let lane = order.iter().position(|(c, _)| *c == e.conn).unwrap_or(0);
        widths[lane] = widths[lane].max(label(e).chars().count().min(48));
    }
    let mut out = String::new();
    let _ = write!(out, "{:>5}  {:>10}", "seq", "at");
    for ((c, _), w) in order.iter().zip(&widths) {
        let name = c.map_or_else(|| "pool".to_owned(), |c| c.to_string());
        let _ = write!(out, " | {name:<w$}");
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out.push('\n');
    for e in events {
        let _ = write!(out, "{:>5}  {:>10}", e.seq, format_at(e.at));
        for ((c, _), w) in order.iter().zip(&widths) {
            let cell = if *c == e.conn { label(e) } else { String::new() };
            let cell: String = cell.chars().take(48).collect();
            let _ = write!(out, " | {cell:<w$}");
        }
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        out.push('\n');
    }
    out
}

fn format_at(at: Duration) -> String {
    let ms = at.as_secs_f64() * 1000.0;
    format!("{ms:.3}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_numbered_in_order_with_clock_offsets() {
        let clock = Clock::manual();
        let j = Journal::with_clock(clock.clone());
        j.record(Some(ConnId(1)), EventKind::Connect, "");
        clock.advance(Duration::from_millis(5));
        j.record(Some(ConnId(1)), EventKind::Fault, "commit: disconnect");
        let ev = j.events();
        assert_eq!(ev.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(ev[1].at, Duration::from_millis(5));
        assert_eq!(j.kinds_for(ConnId(1)), [EventKind::Connect, EventKind::Fault]);
        assert_eq!(j.count(EventKind::Fault), 1);
    }

    #[test]
    fn timeline_has_a_lane_per_connection_and_marks_faults() {
        let j = Journal::with_clock(Clock::manual());
        j.record(Some(ConnId(1)), EventKind::Connect, "");
        j.record(Some(ConnId(2)), EventKind::Connect, "");
        j.record(Some(ConnId(2)), EventKind::Fault, "execute: disconnect");
        j.record(None, EventKind::Dispose, "");
        let t = j.timeline();
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].contains("pool") && lines[0].contains("c1") && lines[0].contains("c2"));
        assert_eq!(lines.len(), 5);
        assert!(lines[3].contains("!! fault: execute: disconnect"));
        // c2's events sit in c2's lane, to the right of c1's.
        assert!(lines[3].find("!!").unwrap() > lines[1].find("connect").unwrap());
    }

    #[test]
    fn event_kind_names_round_trip() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::from_name(k.name()), Some(k));
        }
    }
}
