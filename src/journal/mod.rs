//! The journal: one totally ordered log of what the pool, the engine and the
//! fault layer did.
//!
//! The pool and the fault layer know nothing of each other; they meet here.
//! Each [`Event`] has a sequence number, a time offset from the journal's
//! start, the connection it concerns and what happened.
//!
//! This module holds the log itself. Two views of it live beside it:
//! `text.rs`, the saved text form ([`Journal::to_text`],
//! [`Journal::from_text`]; the format is on [`Journal`]), and
//! `timeline.rs`, the renderer ([`Journal::timeline`], [`render_timeline`])
//! for failure messages. The journal knows nothing of the testing kit: the
//! kit's assertions (`Journal::expect`) are defined in `testing`.

mod text;
mod timeline;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Clock;
use crate::ConnId;
use crate::lock::lock;

pub use text::events_to_text;
pub(crate) use timeline::render_marked;
pub use timeline::{TimelineOptions, render_timeline, render_timeline_with};

/// What happened, one variant per event of the [pool behaviours](crate::docs::pool_behaviours).
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

    /// The snake_case name the guides and saved journals use (`first_connect`, `fault`, ...).
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
///
/// # Saving and loading
///
/// [`Journal::to_text`] writes a journal as text that a person can read and
/// [`Journal::from_text`] reads back into the same events, so a timeline
/// renders identically from a saved journal. One event per line, five
/// columns separated by spaces (aligned when written, any run of blanks when
/// read):
///
/// ```text
/// # dbfault journal v1
/// # seq at_us conn kind "detail"
/// 1    0.000 c1 first_connect
/// 2    0.000 c1 connect
/// 3    0.000 c1 checkout
/// 4 1500.000 c1 fault         "commit: disconnect (rule 1)"
/// 5 1500.000 -  dispose
/// ```
///
/// - `seq`: the event's sequence number, increasing from line to line;
/// - `at_us`: microseconds since the journal started, with up to three
///   decimals (nanoseconds), written with exactly three;
/// - `conn`: `c7` for connection 7, `-` for the pool itself;
/// - `kind`: the [`EventKind`]'s name (`first_connect`, `fault`, ...);
/// - `detail`: absent when empty, otherwise double-quoted, with `\\`,
///   `\"`, `\n`, `\r`, `\t` and `\u{..}` (any other control character)
///   escaped, so a detail never spans lines.
///
/// Blank lines and lines starting with `#` are comments, except that a
/// `# dbfault journal vN` line must name version 1.
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
    ///
    /// The time offset is read under the journal's lock, so offsets never
    /// go backwards in sequence order.
    pub fn record(&self, conn: Option<ConnId>, kind: EventKind, detail: impl Into<String>) -> u64 {
        let detail = detail.into();
        let mut events = lock(&self.inner.events);
        let at = self.inner.clock.now().saturating_duration_since(self.inner.start);
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

    /// How many events of `kind` concern `conn`.
    pub fn count_for(&self, kind: EventKind, conn: ConnId) -> usize {
        lock(&self.inner.events)
            .iter()
            .filter(|e| e.kind == kind && e.conn == Some(conn))
            .count()
    }
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
    fn event_kind_names_round_trip() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::from_name(k.name()), Some(k));
        }
    }
}
