//! Journal assertions that read like the behaviour they check.
//!
//! A test names the events it expects as patterns — [`ev`]`(kind)`,
//! narrowed with [`.conn(id)`](EventPattern::conn),
//! [`.pool()`](EventPattern::pool) or [`.detail("text")`](EventPattern::detail)
//! — and asserts on a snapshot of the journal ([`Journal::expect`] or
//! [`expect`]): that they occur [in order](Expect::in_order) with anything
//! in between, [how many times](Expect::count), [at least](Expect::at_least)
//! how many, or [not at all](Expect::none). A failed assertion panics with
//! what was expected, how far the journal matched and where it stopped, and
//! the journal as a timeline around that point with the matched events
//! marked (bounded: [`Expect::timeline`]). Each
//! assertion has a `try_` form that returns an [`ExpectError`] instead, for
//! code that checks rather than asserts.
//!
//! # Example
//!
//! ```
//! use dbfault::EventKind::{Checkin, Checkout, Close, Connect, Invalidate, Timeout};
//! use dbfault::testing::ev;
//! use dbfault::{Connection, Journal, MockServer, Pool, PoolConfig};
//!
//! let journal = Journal::new();
//! let config = PoolConfig::new().size(1).journal(journal.clone());
//! let pool = Pool::new(MockServer::new().driver(), config).unwrap();
//! let conn = pool.get().unwrap();
//! let id = conn.id();
//! conn.invalidate();
//! let fresh = pool.get().unwrap();
//!
//! // Invalidating a checked-out connection closes it and gives its slot
//! // back; the next checkout opens a new connection.
//! journal
//!     .expect()
//!     .in_order([
//!         ev(Invalidate).conn(id),
//!         ev(Close).conn(id),
//!         ev(Checkin).conn(id),
//!         ev(Connect).conn(fresh.id()),
//!         ev(Checkout).conn(fresh.id()),
//!     ])
//!     .count(Connect, 2)
//!     .count(ev(Close).conn(fresh.id()), 0)
//!     .none(Timeout);
//!
//! // The same checks without panicking: the error says where the match
//! // stopped and carries the timeline.
//! let err = journal.expect().try_in_order([ev(Close).conn(id), ev(Invalidate).conn(id)]).unwrap_err();
//! assert!(err.found().contains(&format!("`invalidate on {id}`  no match after")));
//! assert!(err.to_string().contains(&err.timeline()));
//! ```

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use crate::journal::render_marked;
use crate::{ConnId, Event, EventKind, Journal, TimelineOptions};

/// A pattern matching events of `kind`; narrow it with
/// [`conn`](EventPattern::conn), [`pool`](EventPattern::pool) and
/// [`detail`](EventPattern::detail).
pub fn ev(kind: EventKind) -> EventPattern {
    EventPattern::new(kind)
}

/// Assertions on `events`: a [`Journal`] (a snapshot of it is taken), or
/// events read back with [`Journal::from_text`].
pub fn expect(events: impl Into<Expect>) -> Expect {
    events.into()
}

/// Which events a pattern matches: a kind, and optionally a connection (or
/// the pool) and a piece of the detail.
///
/// An [`EventKind`] converts into the pattern matching every event of that
/// kind, so `count(EventKind::Fault, 2)` and `count(ev(EventKind::Fault), 2)`
/// say the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPattern {
    kind: EventKind,
    conn: ConnFilter,
    detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnFilter {
    Any,
    Conn(ConnId),
    Pool,
}

impl EventPattern {
    /// Matches every event of `kind`, whatever its connection and detail.
    pub fn new(kind: EventKind) -> Self {
        EventPattern {
            kind,
            conn: ConnFilter::Any,
            detail: None,
        }
    }

    /// Matches only events that concern `conn`.
    #[must_use]
    pub fn conn(mut self, conn: ConnId) -> Self {
        self.conn = ConnFilter::Conn(conn);
        self
    }

    /// Matches only pool-level events, those of no connection (a timeout, a
    /// failed connect, `invalidate_all`, a dispose).
    #[must_use]
    pub fn pool(mut self) -> Self {
        self.conn = ConnFilter::Pool;
        self
    }

    /// Matches only events whose detail contains `needle`.
    #[must_use]
    pub fn detail(mut self, needle: impl Into<String>) -> Self {
        self.detail = Some(needle.into());
        self
    }

    /// The kind this pattern matches.
    pub fn kind(&self) -> EventKind {
        self.kind
    }

    /// Whether `event` matches: same kind, and the connection and detail
    /// if the pattern names them.
    pub fn matches(&self, event: &Event) -> bool {
        event.kind == self.kind
            && match self.conn {
                ConnFilter::Any => true,
                ConnFilter::Conn(c) => event.conn == Some(c),
                ConnFilter::Pool => event.conn.is_none(),
            }
            && self.detail.as_deref().is_none_or(|d| event.detail.contains(d))
    }
}

impl From<EventKind> for EventPattern {
    fn from(kind: EventKind) -> Self {
        EventPattern::new(kind)
    }
}

impl From<&EventPattern> for EventPattern {
    fn from(pattern: &EventPattern) -> Self {
        pattern.clone()
    }
}

impl fmt::Display for EventPattern {
    /// `invalidate on c3`, `timeout on the pool`, `fault with "commit"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.name())?;
        match self.conn {
            ConnFilter::Any => {}
            ConnFilter::Conn(c) => write!(f, " on {c}")?,
            ConnFilter::Pool => f.write_str(" on the pool")?,
        }
        if let Some(d) = &self.detail {
            write!(f, " with {d:?}")?;
        }
        Ok(())
    }
}

/// Assertions on a snapshot of a journal's events.
///
/// The panicking forms return `&Self`, so assertions chain; each has a
/// `try_` twin returning `Result<(), ExpectError>`. Built by
/// [`Journal::expect`], [`expect`], or `From` a journal or events.
#[derive(Debug, Clone)]
pub struct Expect {
    events: Vec<Event>,
    since: usize,
    timeline: TimelineOptions,
}

impl Expect {
    /// Assertions on `events`, in journal order.
    pub fn new(events: impl Into<Vec<Event>>) -> Self {
        Expect {
            events: events.into(),
            since: 0,
            timeline: TimelineOptions::new(),
        }
    }

    /// How much of the journal a failure's timeline shows. Default:
    /// [`TimelineOptions::new`] — at most 24 connection lanes and 60 rows,
    /// around the event where the expectation failed unless `options` name
    /// another with [`around`](TimelineOptions::around);
    /// [`TimelineOptions::unbounded`] shows the whole journal.
    #[must_use]
    pub fn timeline(mut self, options: TimelineOptions) -> Self {
        self.timeline = options;
        self
    }

    /// Considers only the events after the first `n` (take `n` from
    /// [`Journal::len`] before the step under test). A failure's timeline
    /// still shows the events before them.
    #[must_use]
    pub fn since(mut self, n: usize) -> Self {
        self.since = n.min(self.events.len());
        self
    }

    /// The events the assertions consider.
    pub fn events(&self) -> &[Event] {
        &self.events[self.since..]
    }

    /// Asserts that events matching `patterns` occur in this order, other
    /// events allowed between them. Each pattern takes the first matching
    /// event after the previous pattern's.
    ///
    /// # Panics
    ///
    /// When they do not, with the message of
    /// [`try_in_order`](Expect::try_in_order)'s error.
    #[track_caller]
    pub fn in_order<P: Into<EventPattern>>(&self, patterns: impl IntoIterator<Item = P>) -> &Self {
        if let Err(e) = self.try_in_order(patterns) {
            fail(e);
        }
        self
    }

    /// Asserts that exactly `n` events match `pattern`.
    ///
    /// # Panics
    ///
    /// When another number do, listing them, with the timeline.
    #[track_caller]
    pub fn count(&self, pattern: impl Into<EventPattern>, n: usize) -> &Self {
        if let Err(e) = self.try_count(pattern, n) {
            fail(e);
        }
        self
    }

    /// Asserts that at least `n` events match `pattern`.
    ///
    /// # Panics
    ///
    /// When fewer do, listing them, with the timeline.
    #[track_caller]
    pub fn at_least(&self, pattern: impl Into<EventPattern>, n: usize) -> &Self {
        if let Err(e) = self.try_at_least(pattern, n) {
            fail(e);
        }
        self
    }

    /// Asserts that no event matches `pattern`.
    ///
    /// # Panics
    ///
    /// When some do, listing them, with the timeline.
    #[track_caller]
    pub fn none(&self, pattern: impl Into<EventPattern>) -> &Self {
        if let Err(e) = self.try_none(pattern) {
            fail(e);
        }
        self
    }

    /// [`in_order`](Expect::in_order) without the panic.
    ///
    /// # Errors
    ///
    /// An [`ExpectError`] listing each pattern with the event it matched,
    /// the pattern where matching stopped (with the events that match it
    /// only earlier, and the later events of its kind that do not match
    /// it), and the timeline with the matched events marked `1>`, `2>`, ...
    pub fn try_in_order<P: Into<EventPattern>>(
        &self,
        patterns: impl IntoIterator<Item = P>,
    ) -> Result<(), ExpectError> {
        let patterns: Vec<EventPattern> = patterns.into_iter().map(Into::into).collect();
        let window = self.events();
        let mut matched: Vec<usize> = Vec::new();
        let mut next = 0;
        for p in &patterns {
            match window[next..].iter().position(|e| p.matches(e)) {
                Some(i) => {
                    matched.push(next + i);
                    next += i + 1;
                }
                None => break,
            }
        }
        if matched.len() == patterns.len() {
            return Ok(());
        }

        let stop = matched.len();
        let names: Vec<String> = patterns.iter().map(|p| format!("`{p}`")).collect();
        let name_w = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
        let mark_w = patterns.len().to_string().len() + 1;
        let mut found = String::new();
        for (i, (p, name)) in patterns.iter().zip(&names).enumerate() {
            let mark = format!("{}>", i + 1);
            let _ = write!(found, "{mark:>mark_w$} {name:<name_w$}  ");
            if let Some(&at) = matched.get(i) {
                let _ = write!(found, "matched #{}", window[at].seq);
            } else if i == stop {
                let (before, after) = window.split_at(next);
                match matched.last() {
                    Some(&at) => {
                        let _ = write!(found, "no match after #{}", window[at].seq);
                    }
                    None => {
                        let _ = write!(found, "no match{}", self.scope());
                    }
                }
                let earlier: Vec<&Event> = before.iter().filter(|e| p.matches(e)).collect();
                if !earlier.is_empty() {
                    let _ = write!(found, "; it matches only earlier, at {}", seqs(&earlier));
                }
                let near: Vec<&Event> = after
                    .iter()
                    .filter(|e| e.kind == p.kind && !p.matches(e))
                    .collect();
                if !near.is_empty() && near.len() <= 5 {
                    let list: Vec<String> = near.iter().map(|e| near_miss(e)).collect();
                    let _ = write!(
                        found,
                        "; {} events that do not match: {}",
                        p.kind,
                        list.join(", ")
                    );
                } else if !near.is_empty() {
                    let _ = write!(found, "; {} {} events that do not match", near.len(), p.kind);
                }
            } else {
                found.push_str("not reached");
            }
            found.push('\n');
        }
        let marks = matched
            .iter()
            .enumerate()
            .map(|(i, &at)| (window[at].seq, format!("{}>", i + 1)))
            .collect();
        Err(self.error(
            format!(
                "{} events in order{} (others may come between); matched {} of them",
                patterns.len(),
                self.scope(),
                matched.len()
            ),
            found,
            "n> marks the event pattern n matched",
            &marks,
            // Where matching stopped.
            matched.last().map(|&at| window[at].seq),
        ))
    }

    /// [`count`](Expect::count) without the panic.
    ///
    /// # Errors
    ///
    /// An [`ExpectError`] listing the matching events, with the timeline
    /// (matches marked `*`).
    pub fn try_count(&self, pattern: impl Into<EventPattern>, n: usize) -> Result<(), ExpectError> {
        let pattern = pattern.into();
        self.check_count(&pattern, |found| found == n, format!("exactly {n} × `{pattern}`"))
    }

    /// [`at_least`](Expect::at_least) without the panic.
    ///
    /// # Errors
    ///
    /// As [`try_count`](Expect::try_count).
    pub fn try_at_least(&self, pattern: impl Into<EventPattern>, n: usize) -> Result<(), ExpectError> {
        let pattern = pattern.into();
        self.check_count(
            &pattern,
            |found| found >= n,
            format!("at least {n} × `{pattern}`"),
        )
    }

    /// [`none`](Expect::none) without the panic.
    ///
    /// # Errors
    ///
    /// As [`try_count`](Expect::try_count).
    pub fn try_none(&self, pattern: impl Into<EventPattern>) -> Result<(), ExpectError> {
        let pattern = pattern.into();
        self.check_count(&pattern, |found| found == 0, format!("no `{pattern}`"))
    }

    fn check_count(
        &self,
        pattern: &EventPattern,
        ok: impl FnOnce(usize) -> bool,
        expected: String,
    ) -> Result<(), ExpectError> {
        let hits: Vec<&Event> = self.events().iter().filter(|e| pattern.matches(e)).collect();
        if ok(hits.len()) {
            return Ok(());
        }
        let found = if hits.is_empty() {
            "found none\n".to_owned()
        } else {
            format!("found {}: {}\n", hits.len(), seqs(&hits))
        };
        let marks = hits.iter().map(|e| (e.seq, "*".to_owned())).collect();
        Err(self.error(
            format!("{expected}{}", self.scope()),
            found,
            "* marks the matching events",
            &marks,
            hits.first().map(|e| e.seq),
        ))
    }

    /// ` after #n` when the assertions skip the first events.
    fn scope(&self) -> String {
        match self.since.checked_sub(1).and_then(|i| self.events.get(i)) {
            Some(last_skipped) => format!(" after #{}", last_skipped.seq),
            None => String::new(),
        }
    }

    fn error(
        &self,
        expected: String,
        found: String,
        legend: &str,
        marks: &BTreeMap<u64, String>,
        focus: Option<u64>,
    ) -> ExpectError {
        let mut options = self.timeline.clone();
        if let (None, Some(seq)) = (options.focus(), focus) {
            options = options.around(seq);
        }
        ExpectError {
            expected,
            found,
            legend: if marks.is_empty() {
                "nothing matched"
            } else {
                legend
            }
            .to_owned(),
            timeline: render_marked(&self.events, marks, &options),
        }
    }
}

// The testing kit owns `Journal::expect`: the journal knows nothing of the
// kit (imports run testing → journal), yet `journal.expect()` needs no
// trait in scope.
impl Journal {
    /// Assertions on the events so far (a snapshot): see [`Expect`].
    ///
    /// ```
    /// use dbfault::testing::ev;
    /// use dbfault::{Clock, ConnId, EventKind, Journal};
    ///
    /// let journal = Journal::with_clock(Clock::manual());
    /// journal.record(Some(ConnId(1)), EventKind::Invalidate, "execute: connection closed");
    /// journal.record(Some(ConnId(1)), EventKind::Close, "");
    /// journal.record(Some(ConnId(1)), EventKind::Checkin, "");
    /// journal
    ///     .expect()
    ///     .in_order([ev(EventKind::Invalidate).conn(ConnId(1)), ev(EventKind::Checkin)])
    ///     .none(EventKind::Fault);
    /// ```
    pub fn expect(&self) -> Expect {
        Expect::new(self.events())
    }
}

impl From<&Journal> for Expect {
    fn from(journal: &Journal) -> Self {
        Expect::new(journal.events())
    }
}

impl From<Vec<Event>> for Expect {
    fn from(events: Vec<Event>) -> Self {
        Expect::new(events)
    }
}

impl From<&[Event]> for Expect {
    fn from(events: &[Event]) -> Self {
        Expect::new(events)
    }
}

/// A journal expectation that did not hold: what was expected, what the
/// journal had instead, and the timeline. `Display` writes all three, as
/// the panicking assertions do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectError {
    expected: String,
    found: String,
    legend: String,
    timeline: String,
}

impl ExpectError {
    /// What was expected, in one line: `exactly 2 × `fault on c3``.
    pub fn expected(&self) -> &str {
        &self.expected
    }

    /// What the journal had instead, one line per point: for an ordered
    /// expectation, each pattern with its match, where matching stopped and
    /// why.
    pub fn found(&self) -> &str {
        &self.found
    }

    /// The journal as a timeline (see
    /// [`render_timeline`](crate::render_timeline)) around where the
    /// expectation failed, bounded as [`Expect::timeline`] says, with a
    /// gutter marking the events the expectation matched.
    pub fn timeline(&self) -> &str {
        &self.timeline
    }
}

impl fmt::Display for ExpectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "journal expectation failed: expected {}", self.expected)?;
        for line in self.found.lines() {
            writeln!(f, "  {line}")?;
        }
        writeln!(f, "timeline ({}):", self.legend)?;
        f.write_str(&self.timeline)
    }
}

impl std::error::Error for ExpectError {}

/// Panics with `e`, at the caller of the assertion (closures do not carry
/// `#[track_caller]`, so the assertions call this directly).
#[track_caller]
fn fail(e: ExpectError) -> ! {
    panic!("{e}")
}

/// `#3, #7, #9`, at most ten of them.
fn seqs(events: &[&Event]) -> String {
    let mut out: Vec<String> = events.iter().take(10).map(|e| format!("#{}", e.seq)).collect();
    if events.len() > 10 {
        out.push(format!("and {} more", events.len() - 10));
    }
    out.join(", ")
}

/// `#8 on c2 ("rollback")`: an event of the right kind that the pattern
/// rejected, with what it has instead.
fn near_miss(e: &Event) -> String {
    let mut out = format!("#{}", e.seq);
    match e.conn {
        Some(c) => {
            let _ = write!(out, " on {c}");
        }
        None => out.push_str(" on the pool"),
    }
    if !e.detail.is_empty() {
        let _ = write!(out, " ({:?})", e.detail);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::time::Duration;

    use super::*;
    use crate::Clock;
    use crate::EventKind::{
        Checkin, Checkout, Close, Connect, Fault, FirstConnect, Invalidate, Reset, Timeout,
    };

    const C1: ConnId = ConnId(1);
    const C2: ConnId = ConnId(2);

    /// c1 is checked out, hit by a fault, invalidated, closed and returned,
    /// while c2 is checked out and returned normally; then a timeout.
    fn journal() -> Journal {
        let clock = Clock::manual();
        let j = Journal::with_clock(clock.clone());
        j.record(Some(C1), FirstConnect, ""); // 1
        j.record(Some(C1), Connect, ""); // 2
        j.record(Some(C1), Checkout, ""); // 3
        j.record(Some(C2), Connect, ""); // 4
        j.record(Some(C2), Checkout, ""); // 5
        clock.advance(Duration::from_millis(2));
        j.record(Some(C1), Fault, "execute: disconnect (rule 1)"); // 6
        j.record(Some(C1), Invalidate, "execute: connection closed"); // 7
        j.record(Some(C2), Reset, "rollback"); // 8
        j.record(Some(C1), Close, ""); // 9
        j.record(Some(C1), Checkin, ""); // 10
        j.record(Some(C2), Checkin, ""); // 11
        clock.advance(Duration::from_secs(30));
        j.record(None, Timeout, "waited 30s"); // 12
        j
    }

    fn panic_message(f: impl FnOnce()) -> String {
        let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("the assertion should fail");
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .expect("a string payload")
    }

    #[test]
    fn in_order_allows_other_events_between() {
        let j = journal();
        j.expect()
            .in_order([Connect, Fault, Checkin, Timeout])
            .in_order([ev(Invalidate).conn(C1), ev(Close).conn(C1), ev(Checkin).conn(C1)])
            .in_order([ev(Checkout).conn(C2), ev(Checkin).conn(C2)])
            .in_order(Vec::<EventPattern>::new());
        let patterns = [ev(Connect), ev(Connect)];
        j.expect().in_order(&patterns);
    }

    #[test]
    fn in_order_fails_when_out_of_order() {
        let j = journal();
        let err = j
            .expect()
            .try_in_order([ev(Close).conn(C1), ev(Invalidate).conn(C1), ev(Checkin)])
            .unwrap_err();
        assert!(err.expected().contains("3 events in order"), "{err}");
        assert!(err.expected().contains("matched 1 of them"), "{err}");
        let found: Vec<&str> = err.found().lines().collect();
        assert!(
            found[0].contains("1> `close on c1`") && found[0].ends_with("matched #9"),
            "{err}"
        );
        assert!(
            found[1].contains("no match after #9; it matches only earlier, at #7"),
            "{err}"
        );
        assert!(found[2].ends_with("not reached"), "{err}");
        // Matching takes the first event after the previous match, so a
        // repeated kind needs as many events.
        assert!(j.expect().try_in_order([Timeout, Timeout]).is_err());
        assert!(j.expect().try_in_order([FirstConnect, FirstConnect]).is_err());
    }

    #[test]
    fn conn_filter_narrows_and_near_misses_are_named() {
        let j = journal();
        j.expect().in_order([ev(Reset).conn(C2), ev(Checkin).conn(C2)]);
        let err = j.expect().try_in_order([ev(Reset).conn(C1)]).unwrap_err();
        assert!(
            err.found()
                .contains("no match; reset events that do not match: #8 on c2 (\"rollback\")"),
            "{err}"
        );
        j.expect()
            .in_order([ev(Timeout).pool()])
            .none(ev(Checkin).pool())
            .count(ev(Checkin).conn(C2), 1);
        assert!(j.expect().try_none(ev(Fault).conn(C2)).is_ok());
        assert!(j.expect().try_none(ev(Fault).conn(C1)).is_err());
    }

    #[test]
    fn detail_filter_matches_a_substring() {
        let j = journal();
        j.expect()
            .in_order([
                ev(Fault).detail("disconnect"),
                ev(Invalidate).detail("connection closed"),
            ])
            .count(ev(Fault).conn(C1).detail("rule 1"), 1)
            .none(ev(Fault).detail("rule 2"));
        let err = j.expect().try_count(ev(Reset).detail("commit"), 1).unwrap_err();
        assert_eq!(err.expected(), "exactly 1 × `reset with \"commit\"`");
        assert_eq!(err.found(), "found none\n");
    }

    #[test]
    fn counts_by_kind_connection_and_pool() {
        let j = journal();
        j.expect()
            .count(Connect, 2)
            .count(ev(Checkin).conn(C1), 1)
            .count(ev(Timeout).pool(), 1)
            .count(ev(Timeout).conn(C1), 0)
            .at_least(Checkout, 2)
            .at_least(Checkout, 0)
            .none(ev(Reset).conn(C1));
        let err = j.expect().try_count(Checkin, 3).unwrap_err();
        assert_eq!(err.expected(), "exactly 3 × `checkin`");
        assert_eq!(err.found(), "found 2: #10, #11\n");
        let err = j.expect().try_at_least(Connect, 3).unwrap_err();
        assert_eq!(err.expected(), "at least 3 × `connect`");
        let err = j.expect().try_none(Timeout).unwrap_err();
        assert_eq!(err.expected(), "no `timeout`");
        assert_eq!(err.found(), "found 1: #12\n");
        assert_eq!(j.count_for(Checkin, C1), 1);
    }

    #[test]
    fn since_skips_the_events_before_the_step_under_test() {
        let j = journal();
        let mark = 6;
        let after = j.expect().since(mark);
        assert_eq!(after.events().first().map(|e| e.seq), Some(7));
        after
            .none(Fault)
            .count(Connect, 0)
            .in_order([Invalidate, Close, Checkin]);
        let err = after.try_in_order([Checkout]).unwrap_err();
        assert!(err.expected().contains("in order after #6"), "{err}");
        assert!(err.found().contains("no match after #6"), "{err}");
        // The timeline still shows the whole journal.
        assert!(err.timeline().contains("first_connect"), "{err}");
        let err = after.try_count(Connect, 2).unwrap_err();
        assert_eq!(err.expected(), "exactly 2 × `connect` after #6");
        assert!(j.expect().since(100).events().is_empty());
    }

    #[test]
    fn failing_assertion_panics_with_expectation_stop_and_timeline() {
        let j = journal();
        let msg = panic_message(|| {
            j.expect().in_order([
                ev(Invalidate).conn(C1),
                ev(Close).conn(C1),
                ev(Checkin).conn(C2),
                Timeout.into(),
                ev(Close).conn(C2),
            ]);
        });
        assert!(
            msg.starts_with("journal expectation failed: expected 5 events in order"),
            "{msg}"
        );
        let line = |mark: &str| {
            msg.lines()
                .find(|l| l.trim_start().starts_with(mark))
                .unwrap()
                .to_owned()
        };
        assert!(line("4> `timeout`").ends_with("matched #12"), "{msg}");
        assert!(line("5> `close on c2`").ends_with("no match after #12"), "{msg}");
        assert!(
            msg.contains("timeline (n> marks the event pattern n matched):"),
            "{msg}"
        );
        assert!(
            msg.contains(&j.timeline().lines().next().unwrap().to_owned()),
            "{msg}"
        );
        // Matched events are marked in the gutter.
        let row = |seq: &str| {
            msg.lines()
                .find(|l| l.split_whitespace().nth(1) == Some(seq))
                .unwrap()
                .to_owned()
        };
        assert!(row("7").starts_with("1>"), "{msg}");
        assert!(row("11").starts_with("3>"), "{msg}");
        assert!(row("12").contains("timeout"), "{msg}");

        let msg = panic_message(|| {
            j.expect().count(Fault, 2);
        });
        assert!(msg.contains("exactly 2 × `fault`"), "{msg}");
        assert!(msg.contains("found 1: #6"), "{msg}");
        assert!(msg.contains("!! fault"), "{msg}");
        assert!(
            msg.lines().any(|l| l.starts_with('*') && l.contains("!! fault")),
            "{msg}"
        );
    }

    #[test]
    fn expect_accepts_journals_and_saved_events() {
        let j = journal();
        let saved = Journal::from_text(&j.to_text()).unwrap();
        expect(&j).count(Checkin, 2);
        expect(saved.as_slice()).count(Checkin, 2);
        expect(saved.clone()).in_order([Fault, Timeout]);
        let a = expect(&j).try_count(Fault, 3).unwrap_err();
        let b = expect(saved).try_count(Fault, 3).unwrap_err();
        assert_eq!(a, b, "a saved journal fails the same way");
    }

    #[test]
    fn a_failure_in_a_crowded_journal_shows_a_bounded_timeline_around_the_stop() {
        let j = Journal::with_clock(Clock::manual());
        let mut fault = 0;
        for kind in [Connect, Checkout, Checkin] {
            for c in 1..=4000 {
                j.record(Some(ConnId(c)), kind, "");
                if kind == Checkout && c == 2000 {
                    fault = j.record(Some(ConnId(c)), Fault, "execute: disconnect (rule 1)");
                }
            }
        }
        let err = j
            .expect()
            .try_in_order([ev(Fault).conn(ConnId(2000)), ev(Invalidate).conn(ConnId(2000))])
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.len() < 64 * 1024, "{} bytes", msg.len());
        let row = err
            .timeline()
            .lines()
            .find(|l| l.starts_with("1>"))
            .unwrap_or_else(|| panic!("the matched fault is not shown:\n{msg}"));
        assert!(
            row.contains(&format!(" {fault} ")) && row.contains("!! fault"),
            "{msg}"
        );
        assert!(msg.contains("3,976 lanes and 11,941 rows not shown"), "{msg}");

        // A count failure centres on the first hit.
        let err = j.expect().try_none(Fault).unwrap_err();
        assert!(
            err.timeline()
                .lines()
                .any(|l| l.starts_with('*') && l.contains("!! fault"))
        );
    }

    #[test]
    fn the_failure_timeline_can_be_bounded_otherwise_or_not_at_all() {
        let j = journal();
        let err = j
            .expect()
            .timeline(TimelineOptions::new().max_rows(3))
            .try_in_order([ev(Invalidate).conn(C1), ev(Close).conn(C2)])
            .unwrap_err();
        let rows: Vec<&str> = err.timeline().lines().filter(|l| l.contains("ms |")).collect();
        assert_eq!(rows.len(), 3, "{err}");
        assert!(rows[2].starts_with("1>"), "{err}");
        assert!(err.timeline().contains("9 rows not shown"), "{err}");
        let err = j
            .expect()
            .timeline(TimelineOptions::unbounded())
            .try_count(Fault, 2)
            .unwrap_err();
        assert_eq!(err.timeline().lines().count(), 13, "{err}");
        assert!(!err.timeline().contains("not shown"), "{err}");
    }
}
