//! The timeline renderer: a journal's events as a table with a lane per
//! connection, for failure messages.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::text::{escape_into, finish_row};
use super::{Event, EventKind, Journal};
use crate::ConnId;

impl Journal {
    /// Renders the journal as a timeline, one lane per connection.
    pub fn timeline(&self) -> String {
        render_timeline(&self.events())
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
/// It depends on nothing but the events, so events read back with
/// [`Journal::from_text`] render exactly as the journal did.
pub fn render_timeline(events: &[Event]) -> String {
    render_marked(events, &BTreeMap::new())
}

/// [`render_timeline`] with a gutter on the left: `marks` maps a sequence
/// number to a short mark (`1>`, `*`) shown on that event's row.
pub(crate) fn render_marked(events: &[Event], marks: &BTreeMap<u64, String>) -> String {
    let mut lanes: Vec<Option<ConnId>> = vec![None];
    let mut lane_of: BTreeMap<Option<ConnId>, usize> = BTreeMap::from([(None, 0)]);
    for e in events {
        lane_of.entry(e.conn).or_insert_with(|| {
            lanes.push(e.conn);
            lanes.len() - 1
        });
    }
    let cell = |e: &Event| {
        if e.kind == EventKind::Fault {
            "!! fault"
        } else {
            e.kind.name()
        }
    };
    let mut widths: Vec<usize> = lanes.iter().map(|c| lane_name(*c).len()).collect();
    for e in events {
        let lane = lane_of[&e.conn];
        widths[lane] = widths[lane].max(cell(e).len());
    }
    let ats: Vec<String> = events.iter().map(|e| format_at(e.at)).collect();
    let at_w = ats.iter().map(String::len).max().unwrap_or(0).max(2);
    let seq_w = events
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
    for (c, w) in lanes.iter().zip(&widths) {
        let _ = write!(out, " | {:<w$}", lane_name(*c));
    }
    out.push_str(" | detail");
    finish_row(&mut out);
    for (e, at) in events.iter().zip(&ats) {
        if let Some(w) = gutter_w {
            let mark = marks.get(&e.seq).map_or("", String::as_str);
            let _ = write!(out, "{mark:>w$} ");
        }
        let _ = write!(out, "{:>seq_w$}  {at:>at_w$}", e.seq);
        let lane = lane_of[&e.conn];
        for (i, w) in widths.iter().enumerate() {
            let text = if i == lane { cell(e) } else { "" };
            let _ = write!(out, " | {text:<w$}");
        }
        out.push_str(" |");
        if !e.detail.is_empty() {
            out.push(' ');
            escape_into(&mut out, &e.detail, false);
        }
        finish_row(&mut out);
    }
    out
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
        let t = render_marked(&j.events(), &marks);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("    seq"), "{t}");
        assert!(lines[1].starts_with("      1"), "{t}");
        assert!(lines[2].starts_with("10>   2"), "{t}");
    }
}
