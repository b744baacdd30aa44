//! The timeline renderer: a journal's events as a table with a lane per
//! connection, for failure messages.
//!
//! A timeline is bounded by default ([`TimelineOptions`]): a journal of
//! thousands of connections and events renders the rows around the point
//! of interest (or the last rows) and the lanes those rows touch, plus a
//! count of what was left out, so a failure message stays readable and
//! small. [`TimelineOptions::unbounded`] renders everything.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Duration;

use super::text::{escape_into, finish_row};
use super::{Event, EventKind, Journal};
use crate::ConnId;

impl Journal {
    /// Renders the journal as a timeline, one lane per connection, bounded
    /// by the default [`TimelineOptions`] (the last rows, at most 24
    /// connection lanes and 60 rows); see [`render_timeline`].
    pub fn timeline(&self) -> String {
        render_timeline(&self.events())
    }

    /// Renders the journal as a timeline within `options`:
    /// `journal.timeline_with(&TimelineOptions::unbounded())` renders
    /// every event and every connection.
    pub fn timeline_with(&self, options: &TimelineOptions) -> String {
        render_timeline_with(&self.events(), options)
    }
}

/// How much of a journal a timeline shows.
///
/// A timeline has a row per event and a lane per connection, so a large
/// journal makes a huge one; these bounds keep a failure message small.
/// Rows are chosen around the event [`around`](TimelineOptions::around)
/// names (most of them before it), or else the last ones; lanes are those
/// of the connections in the chosen rows, the connection of that event
/// first, then the ones closest to it. An event on a connection whose lane
/// is left out shows in a last `others` lane, with its connection. A line
/// at the end counts the lanes and rows not shown.
///
/// ```
/// use dbfault::{Clock, ConnId, EventKind, Journal, TimelineOptions};
///
/// let journal = Journal::with_clock(Clock::manual());
/// for n in 1..=100 {
///     journal.record(Some(ConnId(n)), EventKind::Connect, "");
/// }
/// let t = journal.timeline_with(&TimelineOptions::new().max_lanes(3).max_rows(5).around(50));
/// assert_eq!(t.lines().filter(|l| l.contains("connect")).count(), 5);
/// assert!(t.contains("… 97 lanes and 95 rows not shown"), "{t}");
/// let all = journal.timeline_with(&TimelineOptions::unbounded());
/// assert_eq!(all.lines().count(), 101);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct TimelineOptions {
    max_lanes: usize,
    max_rows: usize,
    max_detail: usize,
    around: Option<u64>,
}

impl Default for TimelineOptions {
    fn default() -> Self {
        TimelineOptions::new()
    }
}

impl TimelineOptions {
    /// The default number of connection lanes: 24.
    pub const DEFAULT_MAX_LANES: usize = 24;
    /// The default number of rows: 60.
    pub const DEFAULT_MAX_ROWS: usize = 60;
    /// The default length of a detail, in characters: 200.
    pub const DEFAULT_MAX_DETAIL: usize = 200;

    /// The defaults: 24 connection lanes, 60 rows, details cut at 200
    /// characters, the last rows.
    pub fn new() -> Self {
        TimelineOptions {
            max_lanes: Self::DEFAULT_MAX_LANES,
            max_rows: Self::DEFAULT_MAX_ROWS,
            max_detail: Self::DEFAULT_MAX_DETAIL,
            around: None,
        }
    }

    /// No bounds: every event, every connection, every detail whole.
    pub fn unbounded() -> Self {
        TimelineOptions {
            max_lanes: usize::MAX,
            max_rows: usize::MAX,
            max_detail: usize::MAX,
            around: None,
        }
    }

    /// At most `n` connection lanes; the pool's lane is always shown, and
    /// an `others` lane when some connection's lane is left out. Default:
    /// 24.
    pub fn max_lanes(mut self, n: usize) -> Self {
        self.max_lanes = n;
        self
    }

    /// At most `n` rows (events). Default: 60.
    pub fn max_rows(mut self, n: usize) -> Self {
        self.max_rows = n;
        self
    }

    /// Cuts a detail longer than `n` characters (after escaping), ending it
    /// with `…`. Default: 200.
    pub fn max_detail(mut self, n: usize) -> Self {
        self.max_detail = n;
        self
    }

    /// Shows the rows around the event with sequence number `seq` (a
    /// failure's point): three quarters of them before it, and its
    /// connection's lane. Default: none, the last rows. A `seq` that is not
    /// in the journal counts as none.
    pub fn around(mut self, seq: u64) -> Self {
        self.around = Some(seq);
        self
    }

    /// The event the rows are chosen around, if any.
    pub fn focus(&self) -> Option<u64> {
        self.around
    }
}

/// Renders `events` as a timeline, for failure messages: a row per event, a
/// lane (column) for the pool and one per connection in order of first
/// appearance, each event's kind in its lane, faults marked `!!`, and the
/// event's detail at the end of its row (control characters escaped, so a
/// row is one line and the lanes stay aligned).
///
/// ```text
/// seq       at | pool    | c1            | c2         | detail
///   1  0.000ms |         | first_connect |            |
///   2  0.000ms |         | connect       |            |
///   3  0.000ms |         |               | connect    |
///   4  1.500ms |         |               | !! fault   | execute: disconnect (rule 1)
///   5  1.500ms |         |               | invalidate | execute: connection closed
///   6  1.500ms | timeout |               |            |
/// ```
///
/// Bounded by the default [`TimelineOptions`]: the last 60 rows and at
/// most 24 connection lanes, with a count of what was left out;
/// [`render_timeline_with`] takes other bounds, or none.
///
/// It depends on nothing but the events, so events read back with
/// [`Journal::from_text`] render exactly as the journal did.
pub fn render_timeline(events: &[Event]) -> String {
    render_timeline_with(events, &TimelineOptions::new())
}

/// [`render_timeline`] within `options`
/// ([`TimelineOptions::unbounded`] renders everything).
pub fn render_timeline_with(events: &[Event], options: &TimelineOptions) -> String {
    render_marked(events, &BTreeMap::new(), options)
}

/// [`render_timeline_with`] with a gutter on the left: `marks` maps a
/// sequence number to a short mark (`1>`, `*`) shown on that event's row.
pub(crate) fn render_marked(
    events: &[Event],
    marks: &BTreeMap<u64, String>,
    options: &TimelineOptions,
) -> String {
    let total = events.len();
    let focus = options
        .around
        .and_then(|seq| events.iter().position(|e| e.seq == seq));
    let (start, end) = row_window(total, options.max_rows, focus);
    let rows = &events[start..end];
    // The row the window is about: the focus, else the last one.
    let anchor = focus.map_or(rows.len().saturating_sub(1), |f| f - start);

    // Connection lanes, in order of first appearance among the rows.
    let mut conns: Vec<ConnId> = Vec::new();
    let mut seen: HashMap<ConnId, usize> = HashMap::new();
    for e in rows {
        if let Some(c) = e.conn {
            seen.entry(c).or_insert_with(|| {
                conns.push(c);
                conns.len() - 1
            });
        }
    }
    let shown: HashSet<ConnId> = if conns.len() <= options.max_lanes {
        conns.iter().copied().collect()
    } else {
        pick_lanes(rows, marks, anchor, &conns, options.max_lanes)
    };
    let mut lanes: Vec<Option<ConnId>> = vec![None];
    lanes.extend(conns.iter().filter(|c| shown.contains(c)).map(|c| Some(*c)));
    let lane_of: HashMap<Option<ConnId>, usize> = lanes.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    let others = rows.iter().any(|e| e.conn.is_some_and(|c| !shown.contains(&c)));

    // Each row's cell and its lane (`lanes.len()` is the others lane).
    let cells: Vec<(usize, String)> = rows
        .iter()
        .map(|e| {
            let kind = if e.kind == EventKind::Fault {
                "!! fault"
            } else {
                e.kind.name()
            };
            match lane_of.get(&e.conn) {
                Some(&lane) => (lane, kind.to_owned()),
                None => (lanes.len(), format!("{} {kind}", lane_name(e.conn))),
            }
        })
        .collect();
    let mut widths: Vec<usize> = lanes.iter().map(|c| lane_name(*c).len()).collect();
    if others {
        widths.push("others".len());
    }
    for (lane, cell) in &cells {
        widths[*lane] = widths[*lane].max(cell.len());
    }
    let ats: Vec<String> = rows.iter().map(|e| format_at(e.at)).collect();
    let at_w = ats.iter().map(String::len).max().unwrap_or(0).max(2);
    let seq_w = rows
        .iter()
        .map(|e| e.seq.to_string().len())
        .max()
        .unwrap_or(0)
        .max(3);
    let gutter_w = marks.values().map(|m| m.chars().count()).max();

    let mut out = String::new();
    if let Some(w) = gutter_w {
        let _ = write!(out, "{:w$} ", "");
    }
    let _ = write!(out, "{:>seq_w$}  {:>at_w$}", "seq", "at");
    for (i, w) in widths.iter().enumerate() {
        let name = lanes
            .get(i)
            .map_or_else(|| "others".to_owned(), |c| lane_name(*c));
        let _ = write!(out, " | {name:<w$}");
    }
    out.push_str(" | detail");
    finish_row(&mut out);
    if start > 0 {
        let _ = writeln!(out, "… {} not shown", count(start, "earlier row"));
    }
    let mut detail = String::new();
    for ((e, at), (lane, cell)) in rows.iter().zip(&ats).zip(&cells) {
        if let Some(w) = gutter_w {
            let mark = marks.get(&e.seq).map_or("", String::as_str);
            let _ = write!(out, "{mark:>w$} ");
        }
        let _ = write!(out, "{:>seq_w$}  {at:>at_w$}", e.seq);
        for (i, w) in widths.iter().enumerate() {
            let text = if i == *lane { cell.as_str() } else { "" };
            let _ = write!(out, " | {text:<w$}");
        }
        out.push_str(" |");
        if !e.detail.is_empty() {
            out.push(' ');
            detail.clear();
            escape_into(&mut detail, &e.detail, false);
            push_cut(&mut out, &detail, options.max_detail);
        }
        finish_row(&mut out);
    }
    if end < total {
        let _ = writeln!(out, "… {} not shown", count(total - end, "later row"));
    }
    let hidden_rows = total - rows.len();
    let hidden_lanes = events
        .iter()
        .filter_map(|e| e.conn)
        .collect::<HashSet<ConnId>>()
        .len()
        - shown.len();
    if hidden_rows > 0 || hidden_lanes > 0 {
        let _ = writeln!(
            out,
            "… {} and {} not shown (TimelineOptions::unbounded() renders them all)",
            count(hidden_lanes, "lane"),
            count(hidden_rows, "row")
        );
    }
    out
}

/// The rows to show, `start..end`: all of them if they fit; else
/// `max_rows` around `focus` (a quarter of them after it), or the last.
fn row_window(total: usize, max_rows: usize, focus: Option<usize>) -> (usize, usize) {
    if total <= max_rows {
        return (0, total);
    }
    let start = match focus {
        Some(f) if max_rows > 0 => {
            let after = max_rows / 4;
            f.saturating_sub(max_rows - 1 - after).min(total - max_rows)
        }
        _ => total - max_rows,
    };
    (start, start + max_rows)
}

/// The `max` connections whose lanes are shown when more appear in `rows`:
/// the anchor row's first, then those with a marked event, then the
/// nearest to the anchor row.
fn pick_lanes(
    rows: &[Event],
    marks: &BTreeMap<u64, String>,
    anchor: usize,
    conns: &[ConnId],
    max: usize,
) -> HashSet<ConnId> {
    // (rank, distance to the anchor row) per connection; lower is better.
    let mut best: HashMap<ConnId, (u8, usize)> = HashMap::new();
    for (i, e) in rows.iter().enumerate() {
        let Some(c) = e.conn else { continue };
        let rank = if i == anchor {
            0
        } else if marks.contains_key(&e.seq) {
            1
        } else {
            2
        };
        let key = (rank, i.abs_diff(anchor));
        best.entry(c).and_modify(|k| *k = (*k).min(key)).or_insert(key);
    }
    let mut order: Vec<(u8, usize, usize, ConnId)> = conns
        .iter()
        .enumerate()
        .map(|(first, c)| {
            let (rank, distance) = best[c];
            (rank, distance, first, *c)
        })
        .collect();
    order.sort_unstable();
    order.into_iter().take(max).map(|(.., c)| c).collect()
}

/// Appends `text`, cut to `max` characters with `…` when longer.
fn push_cut(out: &mut String, text: &str, max: usize) {
    match text.char_indices().nth(max) {
        None => out.push_str(text),
        Some((cut, _)) => {
            out.push_str(&text[..cut]);
            out.push('…');
        }
    }
}

/// `1 row`, `3,976 lanes`.
fn count(n: usize, noun: &str) -> String {
    let digits = n.to_string();
    let mut grouped = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(d);
    }
    let s = if n == 1 { "" } else { "s" };
    format!("{grouped} {noun}{s}")
}

fn lane_name(conn: Option<ConnId>) -> String {
    conn.map_or_else(|| "pool".to_owned(), |c| c.to_string())
}

fn format_at(at: Duration) -> String {
    let ms = at.as_secs_f64() * 1000.0;
    format!("{ms:.3}ms")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Clock;

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
        // The fault is marked in c2's lane, its detail at the end of the row.
        assert!(lines[3].contains("!! fault"), "{t}");
        assert!(lines[3].ends_with("| execute: disconnect"), "{t}");
        assert_eq!(lines[3].find("!!"), lines[0].find("c2"), "{t}");
        assert_eq!(lines[1].find("connect"), lines[0].find("c1"), "{t}");
        // Pool-level events sit in the pool lane.
        assert_eq!(lines[4].find("dispose"), lines[0].find("pool"), "{t}");
    }

    #[test]
    fn timeline_lanes_stay_aligned_whatever_the_details() {
        let clock = Clock::manual();
        let j = Journal::with_clock(clock.clone());
        j.record(Some(ConnId(1)), EventKind::FirstConnect, "");
        j.record(Some(ConnId(12)), EventKind::Reset, "rollback\tafter\na panic");
        clock.advance(Duration::from_secs(31));
        j.record(
            None,
            EventKind::Timeout,
            "waited 30s for a connection; the last connect error was long",
        );
        j.record(Some(ConnId(1)), EventKind::SoftInvalidate, "");
        let t = j.timeline();
        let bars = |line: &str| {
            line.match_indices(" | ")
                .map(|(i, _)| i)
                .take(3)
                .collect::<Vec<_>>()
        };
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 5, "a detail never breaks a row:\n{t}");
        for line in &lines {
            assert_eq!(bars(line), bars(lines[0]), "misaligned:\n{t}");
        }
        assert!(lines[2].ends_with("rollback\\tafter\\na panic"), "{t}");
    }

    #[test]
    fn timeline_gutter_marks_events() {
        let j = Journal::with_clock(Clock::manual());
        j.record(Some(ConnId(1)), EventKind::Connect, "");
        j.record(Some(ConnId(1)), EventKind::Checkout, "");
        let marks = BTreeMap::from([(2, "10>".to_owned())]);
        let t = render_marked(&j.events(), &marks, &TimelineOptions::new());
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("    seq"), "{t}");
        assert!(lines[1].starts_with("      1"), "{t}");
        assert!(lines[2].starts_with("10>   2"), "{t}");
    }

    /// 4,000 connections, each connected, checked out and checked in, round
    /// by round (so any 60 rows touch 60 connections), with one fault on
    /// c2000 in the middle. Returns the journal and the fault's seq.
    fn crowded_journal() -> (Journal, u64) {
        let clock = Clock::manual();
        let j = Journal::with_clock(clock.clone());
        let mut fault = 0;
        for kind in [EventKind::Connect, EventKind::Checkout, EventKind::Checkin] {
            for c in 1..=4000 {
                clock.advance(Duration::from_micros(10));
                j.record(Some(ConnId(c)), kind, "");
                if kind == EventKind::Checkout && c == 2000 {
                    fault = j.record(Some(ConnId(c)), EventKind::Fault, "execute: disconnect (rule 1)");
                }
            }
        }
        (j, fault)
    }

    #[test]
    fn a_crowded_journal_renders_small_around_the_marked_failure() {
        let (j, fault) = crowded_journal();
        assert_eq!(j.len(), 12_001);
        let marks = BTreeMap::from([(fault, "*".to_owned())]);
        let t = render_marked(&j.events(), &marks, &TimelineOptions::new().around(fault));
        assert!(t.len() < 64 * 1024, "{} bytes", t.len());
        let lines: Vec<&str> = t.lines().collect();
        // Header, the earlier-rows line, 60 rows, the later-rows line, the count.
        assert_eq!(lines.len(), 64, "{t}");
        let row = lines
            .iter()
            .find(|l| l.starts_with('*'))
            .unwrap_or_else(|| panic!("the marked row is missing:\n{t}"));
        assert!(
            row.contains("!! fault") && row.ends_with("| execute: disconnect (rule 1)"),
            "{t}"
        );
        // The fault sits in its connection's own lane, three quarters down.
        assert_eq!(row.find("!! fault"), lines[0].find("c2000"), "{t}");
        let at = lines.iter().position(|l| l.starts_with('*')).unwrap();
        assert_eq!(at, 2 + 44, "{t}");
        assert!(lines[1].starts_with("… 5,956 earlier rows not shown"), "{t}");
        assert!(lines[62].starts_with("… 5,985 later rows not shown"), "{t}");
        // 24 connection lanes, the pool's, and the others lane.
        assert_eq!(lines[0].matches(" | ").count(), 24 + 3, "{}", lines[0]);
        assert!(lines[0].contains("| others"), "{}", lines[0]);
        assert!(lines.iter().any(|l| l.contains("| c1957 checkout |")), "{t}");
        assert!(
            lines[63].starts_with("… 3,976 lanes and 11,941 rows not shown"),
            "{}",
            lines[63]
        );
    }

    #[test]
    fn without_a_focus_the_last_rows_show() {
        let (j, _) = crowded_journal();
        let t = j.timeline();
        assert!(t.len() < 64 * 1024, "{} bytes", t.len());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 63, "{t}");
        assert!(lines[1].starts_with("… 11,941 earlier rows not shown"), "{t}");
        assert!(
            lines[61].starts_with("12001") && lines[61].find("checkin") == lines[0].find("c4000"),
            "{t}"
        );
        // A saved journal renders the same.
        let saved = Journal::from_text(&j.to_text()).unwrap();
        assert_eq!(render_timeline(&saved), t);
    }

    #[test]
    fn options_bound_lanes_rows_and_details_or_nothing() {
        let j = Journal::with_clock(Clock::manual());
        for c in 1..=30 {
            j.record(Some(ConnId(c)), EventKind::Connect, "x".repeat(300));
        }
        j.record(None, EventKind::Dispose, "");
        let all = j.timeline_with(&TimelineOptions::unbounded());
        let lines: Vec<&str> = all.lines().collect();
        assert_eq!(lines.len(), 32, "{all}");
        assert_eq!(lines[0].matches(" | ").count(), 32, "{}", lines[0]);
        assert!(lines[1].ends_with(&"x".repeat(300)), "{all}");
        assert!(!all.contains('…'), "{all}");

        let t = j.timeline();
        assert!(lines.len() < 60 && t.lines().count() == 33, "{t}");
        assert!(
            t.lines()
                .nth(1)
                .unwrap()
                .ends_with(&format!("{}…", "x".repeat(200))),
            "{t}"
        );
        assert!(
            t.ends_with("… 6 lanes and 0 rows not shown (TimelineOptions::unbounded() renders them all)\n"),
            "{t}"
        );

        let t = j.timeline_with(&TimelineOptions::new().max_lanes(0).max_rows(2).max_detail(3));
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].ends_with("| pool    | others      | detail"), "{t}");
        assert!(lines[2].ends_with("| c30 connect | xxx…"), "{t}");
        assert!(lines[3].contains("| dispose |"), "{t}");
        assert!(lines[4].starts_with("… 30 lanes and 29 rows not shown"), "{t}");
        let t = j.timeline_with(&TimelineOptions::new().max_rows(0));
        assert_eq!(t.lines().count(), 3, "{t}");
        // A focus not in the journal counts as none.
        assert_eq!(
            j.timeline_with(&TimelineOptions::new().max_rows(2).around(999)),
            j.timeline_with(&TimelineOptions::new().max_rows(2))
        );
    }
}
