//! The journal's saved text form: [`Journal::to_text`], [`Journal::save`],
//! [`Journal::from_text`], [`Journal::load`] and [`events_to_text`]. The
//! format is documented on [`Journal`].

use std::fmt::{self, Write as _};
use std::path::Path;
use std::time::Duration;

use super::{Event, EventKind, Journal};
use crate::{ConnId, Error, Result};

impl Journal {
    /// The journal in its saved form (see [saving and
    /// loading](Journal#saving-and-loading)): [`from_text`](Journal::from_text)
    /// reads it back into equal events.
    pub fn to_text(&self) -> String {
        events_to_text(&self.events())
    }

    /// Writes [`to_text`](Journal::to_text) to `path`.
    ///
    /// # Errors
    ///
    /// An [`ErrorKind::Journal`](crate::ErrorKind::Journal) error naming the
    /// file, when it cannot be written.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_text()).map_err(|e| {
            saved_journal_error(Some(path), None, "", format!("cannot write it: {e}")).with_source(e)
        })
    }

    /// Reads a saved journal's events (see [saving and
    /// loading](Journal#saving-and-loading) for the format).
    /// [`render_timeline`](crate::render_timeline) renders them exactly as
    /// it rendered the journal they were saved from.
    ///
    /// ```
    /// use dbfault::{Clock, ConnId, EventKind, Journal, render_timeline};
    ///
    /// let journal = Journal::with_clock(Clock::manual());
    /// journal.record(Some(ConnId(3)), EventKind::Fault, "commit: disconnect\n(rule 1)");
    /// let events = Journal::from_text(&journal.to_text()).unwrap();
    /// assert_eq!(events, journal.events());
    /// assert_eq!(render_timeline(&events), journal.timeline());
    ///
    /// let err = Journal::from_text("1 0.000 c3 explode").unwrap_err();
    /// assert_eq!(err.kind(), dbfault::ErrorKind::Journal);
    /// assert_eq!((err.line(), err.field()), (Some(1), Some("kind")));
    /// assert!(err.to_string().contains("invalid saved journal: line 1, field `kind`: unknown kind `explode`"));
    /// ```
    ///
    /// # Errors
    ///
    /// An [`ErrorKind::Journal`](crate::ErrorKind::Journal) error that names
    /// the line and the field, as data ([`Error::line`], [`Error::field`])
    /// and in its message (`invalid saved journal: line 3, field ``kind``:
    /// unknown kind ...`): too few fields or text
    /// after the detail (`fields`), a sequence number that is not a
    /// positive integer greater than the one before (`seq`), a malformed
    /// time (`at_us`), a connection that is neither `cN` nor `-` (`conn`),
    /// an unknown kind (`kind`), an unquoted, unterminated or badly escaped
    /// detail (`detail`), a version other than 1 (`version`).
    pub fn from_text(text: &str) -> Result<Vec<Event>> {
        parse_text(text).map_err(|(line, field, why)| saved_journal_error(None, Some(line), field, why))
    }

    /// Reads a saved journal's events from `path`.
    ///
    /// # Errors
    ///
    /// As [`from_text`](Journal::from_text), the message naming the file
    /// first (`invalid saved journal: runs/a.journal: line 3, ...`); or the
    /// file cannot be read (no line, no field).
    pub fn load(path: impl AsRef<Path>) -> Result<Vec<Event>> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            saved_journal_error(Some(path), None, "", format!("cannot read it: {e}")).with_source(e)
        })?;
        parse_text(&text)
            .map_err(|(line, field, why)| saved_journal_error(Some(path), Some(line), field, why))
    }
}

/// The error for a saved journal that cannot be read or written: `path`
/// (when it came from a file), `line` (1-based) and `field` locate it.
///
/// Its kind is [`ErrorKind::Journal`](crate::ErrorKind::Journal), so it
/// never reads as a fault scenario's error; a file's path heads its message.
fn saved_journal_error(
    path: Option<&Path>,
    line: Option<usize>,
    field: &str,
    why: impl fmt::Display,
) -> Error {
    let err = Error::journal(line, field, why);
    match path {
        Some(path) => err.context(path.display()),
        None => err,
    }
}

/// A parse failure: the line (1-based), the field, why.
type ParseError = (usize, &'static str, String);

/// Reads the events of a saved journal's text.
fn parse_text(text: &str) -> std::result::Result<Vec<Event>, ParseError> {
    let mut events: Vec<Event> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = line.trim();
        if let Some(version) = line.strip_prefix(HEADER_PREFIX) {
            if version.trim() != "1" {
                return Err((
                    line_no,
                    "version",
                    format!(
                        "unsupported journal version `{}`; this reader knows 1",
                        version.trim()
                    ),
                ));
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let event = parse_event(line).map_err(|(field, why)| (line_no, field, why))?;
        if let Some(prev) = events.last() {
            if event.seq <= prev.seq {
                return Err((
                    line_no,
                    "seq",
                    format!(
                        "{} does not follow {}: sequence numbers must increase",
                        event.seq, prev.seq
                    ),
                ));
            }
        }
        events.push(event);
    }
    Ok(events)
}

/// Writes `events` in the journal's saved form (see [saving and
/// loading](Journal#saving-and-loading)); [`Journal::from_text`] reads them
/// back equal. Handy for saving a slice of a journal, or events read from
/// one.
pub fn events_to_text(events: &[Event]) -> String {
    let at: Vec<String> = events.iter().map(|e| format_at_us(e.at)).collect();
    let conn: Vec<String> = events
        .iter()
        .map(|e| e.conn.map_or_else(|| "-".to_owned(), |c| c.to_string()))
        .collect();
    let seq_w = events.iter().map(|e| e.seq.to_string().len()).max().unwrap_or(0);
    let at_w = at.iter().map(String::len).max().unwrap_or(0);
    let conn_w = conn.iter().map(String::len).max().unwrap_or(0);
    let kind_w = events.iter().map(|e| e.kind.name().len()).max().unwrap_or(0);
    let mut out = format!("{HEADER_PREFIX}1\n# seq at_us conn kind \"detail\"\n");
    for ((e, at), conn) in events.iter().zip(&at).zip(&conn) {
        let _ = write!(
            out,
            "{:<seq_w$} {at:>at_w$} {conn:<conn_w$} {:<kind_w$}",
            e.seq,
            e.kind.name()
        );
        if !e.detail.is_empty() {
            out.push_str(" \"");
            escape_into(&mut out, &e.detail, true);
            out.push('"');
        }
        finish_row(&mut out);
    }
    out
}

const HEADER_PREFIX: &str = "# dbfault journal v";

/// Parses one non-comment line; the error names the field.
fn parse_event(line: &str) -> std::result::Result<Event, (&'static str, String)> {
    let mut rest = line;
    let mut fields = [""; 4];
    for (i, field) in fields.iter_mut().enumerate() {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Err((
                "fields",
                format!("expected `seq at_us conn kind [\"detail\"]`, found {i} field(s)"),
            ));
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        *field = &rest[..end];
        rest = &rest[end..];
    }
    let [seq, at, conn, kind] = fields;
    let seq = match seq.parse::<u64>() {
        Ok(n) if n > 0 && seq.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => return Err(("seq", format!("`{seq}` is not a positive integer"))),
    };
    let at = parse_at_us(at).map_err(|why| ("at_us", why))?;
    let conn = match conn {
        "-" => None,
        c => match c
            .strip_prefix('c')
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        {
            Some(n) => Some(ConnId(n.parse().map_err(|_| {
                (
                    "conn",
                    format!("`{c}`: expected `cN` (a connection) or `-` (the pool)"),
                )
            })?)),
            None => {
                return Err((
                    "conn",
                    format!("`{c}`: expected `cN` (a connection) or `-` (the pool)"),
                ));
            }
        },
    };
    let kind = EventKind::from_name(kind).ok_or_else(|| {
        let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.name()).collect();
        (
            "kind",
            format!("unknown kind `{kind}`; known kinds: {}", known.join(", ")),
        )
    })?;
    let rest = rest.trim();
    let detail = if rest.is_empty() {
        String::new()
    } else if let Some(quoted) = rest.strip_prefix('"') {
        let (detail, after) = unescape(quoted).map_err(|why| ("detail", why))?;
        if !after.trim().is_empty() {
            return Err((
                "fields",
                format!(
                    "unexpected `{}` after the detail: a line has at most 5 fields",
                    after.trim()
                ),
            ));
        }
        detail
    } else {
        return Err((
            "detail",
            format!("must be a double-quoted string, found `{rest}` (a line has at most 5 fields)"),
        ));
    };
    Ok(Event {
        seq,
        at,
        conn,
        kind,
        detail,
    })
}

/// `at` as microseconds with exactly three decimals: `1500.000`.
fn format_at_us(at: Duration) -> String {
    let nanos = at.as_nanos();
    format!("{}.{:03}", nanos / 1000, nanos % 1000)
}

fn parse_at_us(text: &str) -> std::result::Result<Duration, String> {
    let bad = || {
        format!("`{text}`: expected microseconds, digits with up to three decimals (`1500` or `1500.250`)")
    };
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(frac) || frac.len() > 3 || text.ends_with('.') {
        return Err(bad());
    }
    let micros: u128 = whole.parse().map_err(|_| bad())?;
    let frac_nanos: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse::<u128>().map_err(|_| bad())? * 10u128.pow(3 - frac.len() as u32)
    };
    let nanos = micros
        .checked_mul(1000)
        .and_then(|n| n.checked_add(frac_nanos))
        .ok_or_else(|| format!("`{text}` is too large"))?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| format!("`{text}` is too large"))?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// Escapes `text` into `out`: backslash, newline, carriage return, tab and
/// other control characters always; the double quote when `quote`.
pub(super) fn escape_into(out: &mut String, text: &str, quote: bool) {
    for c in text.chars() {
        match c {
            '\\' if quote => out.push_str("\\\\"),
            '"' if quote => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// Ends a row: no trailing blanks, a newline.
pub(super) fn finish_row(out: &mut String) {
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out.push('\n');
}

/// Reads a quoted detail whose opening quote is already consumed; returns
/// it and what follows the closing quote.
fn unescape(text: &str) -> std::result::Result<(String, &str), String> {
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &text[i + 1..])),
            '\\' => match chars.next().map(|(_, c)| c) {
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('u') => {
                    let rest = &text[i + 2..];
                    let hex = rest
                        .strip_prefix('{')
                        .and_then(|r| r.split_once('}'))
                        .map(|(hex, _)| hex)
                        .ok_or_else(|| "`\\u` must be followed by `{hex}`".to_owned())?;
                    let c = Some(hex)
                        .filter(|h| (1..=6).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit()))
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                        .and_then(char::from_u32)
                        .ok_or_else(|| format!("`\\u{{{hex}}}` is not a character"))?;
                    out.push(c);
                    // Skip `{hex}`.
                    for _ in 0..hex.len() + 2 {
                        chars.next();
                    }
                }
                Some(other) => {
                    return Err(format!(
                        "unknown escape `\\{other}`; known: \\\\ \\\" \\n \\r \\t \\u{{hex}}"
                    ));
                }
                None => return Err("ends with a lone backslash".to_owned()),
            },
            c => out.push(c),
        }
    }
    Err("unterminated: no closing `\"`".to_owned())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::Clock;
    use crate::render_timeline;

    /// A journal with every awkward thing a detail or a time can hold.
    fn awkward_journal() -> Journal {
        let clock = Clock::manual();
        let j = Journal::with_clock(clock.clone());
        j.record(Some(ConnId(1)), EventKind::FirstConnect, "");
        j.record(Some(ConnId(1)), EventKind::Connect, "");
        clock.advance(Duration::from_nanos(1_234_567));
        j.record(
            Some(ConnId(1)),
            EventKind::Fault,
            "commit: disconnect_after_apply (rule 1)",
        );
        j.record(
            Some(ConnId(1)),
            EventKind::Invalidate,
            "line one\nline two\ttabbed\r",
        );
        j.record(
            Some(ConnId(1)),
            EventKind::Close,
            r#"failed: "quoted" and \back\slash"#,
        );
        clock.advance(Duration::from_secs(90_000));
        j.record(None, EventKind::ConnectFailed, "  padded  ");
        j.record(
            Some(ConnId(u64::MAX)),
            EventKind::Checkout,
            "bell \u{7} nul \0 é ✓",
        );
        j.record(None, EventKind::Dispose, "\"");
        j
    }

    #[test]
    fn saved_journal_reads_back_equal_and_renders_identically() {
        let j = awkward_journal();
        let text = j.to_text();
        assert_eq!(text.lines().count(), 2 + j.len(), "one line per event:\n{text}");
        let events = Journal::from_text(&text).unwrap();
        assert_eq!(events, j.events());
        assert_eq!(render_timeline(&events), j.timeline());
        assert_eq!(events_to_text(&events), text);
    }

    #[test]
    fn saved_form_is_aligned_and_readable() {
        let clock = Clock::manual();
        let j = Journal::with_clock(clock.clone());
        j.record(Some(ConnId(1)), EventKind::Connect, "");
        clock.advance(Duration::from_micros(1500));
        j.record(Some(ConnId(1)), EventKind::Fault, "commit: disconnect (rule 1)");
        j.record(None, EventKind::Dispose, "");
        assert_eq!(
            j.to_text(),
            "# dbfault journal v1\n\
             # seq at_us conn kind \"detail\"\n\
             1    0.000 c1 connect\n\
             2 1500.000 c1 fault   \"commit: disconnect (rule 1)\"\n\
             3 1500.000 -  dispose\n"
        );
    }

    #[test]
    fn hand_written_journals_are_read_leniently() {
        let text =
            "\n  # a comment\n1\t0 c1 connect\n\n5   12.5  -   timeout   \"\"  \n# dbfault journal v1\n";
        let events = Journal::from_text(text).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].at, Duration::ZERO);
        assert_eq!(events[1].seq, 5);
        assert_eq!(events[1].at, Duration::from_nanos(12_500));
        assert_eq!(events[1].conn, None);
        assert_eq!(events[1].kind, EventKind::Timeout);
        assert_eq!(events[1].detail, "");
        assert!(Journal::from_text("").unwrap().is_empty());
    }

    #[test]
    fn save_and_load_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.journal");
        let j = awkward_journal();
        j.save(&path).unwrap();
        assert_eq!(Journal::load(&path).unwrap(), j.events());

        std::fs::write(&path, "1 0 c1 connect\n2 0 c1 boom\n").unwrap();
        let err = Journal::load(&path).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Journal);
        assert_eq!((err.line(), err.field()), (Some(2), Some("kind")));
        assert!(
            err.to_string().contains(&format!(
                "invalid saved journal: {}: line 2, field `kind`: unknown kind `boom`",
                path.display()
            )),
            "{err}"
        );
        let err = Journal::load(dir.path().join("missing")).unwrap_err();
        assert!(err.to_string().contains("missing: cannot read it"), "{err}");
        assert_eq!(err.kind(), crate::ErrorKind::Journal);
        assert_eq!((err.line(), err.field()), (None, None));
        let err = j.save(dir.path().join("no-such-dir").join("x")).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Journal);
        assert!(err.to_string().starts_with("invalid saved journal: "), "{err}");
        assert!(err.to_string().contains("x: cannot write it"), "{err}");
    }

    #[test]
    fn malformed_lines_are_errors_naming_line_and_field() {
        let cases: &[(&str, &str, &str)] = &[
            // (bad line, field, a piece of the reason)
            ("x 0 c1 connect", "seq", "`x` is not a positive integer"),
            ("0 0 c1 connect", "seq", "`0`"),
            ("-3 0 c1 connect", "seq", "`-3`"),
            ("+3 0 c1 connect", "seq", "`+3`"),
            ("1 0 c1 connect", "seq", "1 does not follow 1"),
            (
                "3 0 c1 explode",
                "kind",
                "unknown kind `explode`; known kinds: first_connect",
            ),
            ("3 0 c1 Connect", "kind", "unknown kind `Connect`"),
            ("3 0 7 connect", "conn", "`7`: expected `cN`"),
            ("3 0 c connect", "conn", "`c`"),
            ("3 0 cx connect", "conn", "`cx`"),
            ("3 0 pool connect", "conn", "`pool`"),
            (
                "3 0 c99999999999999999999 connect",
                "conn",
                "c99999999999999999999",
            ),
            ("3 1.5ms c1 connect", "at_us", "`1.5ms`: expected microseconds"),
            ("3 1.2345 c1 connect", "at_us", "`1.2345`"),
            ("3 -1 c1 connect", "at_us", "`-1`"),
            ("3 .5 c1 connect", "at_us", "`.5`"),
            ("3 1. c1 connect", "at_us", "`1.`"),
            (
                "3 99999999999999999999999999999999 c1 connect",
                "at_us",
                "too large",
            ),
            ("3 0 c1", "fields", "found 3 field(s)"),
            ("3", "fields", "found 1 field(s)"),
            (
                "3 0 c1 connect \"x\" extra",
                "fields",
                "unexpected `extra` after the detail",
            ),
            (
                "3 0 c1 connect extra",
                "detail",
                "must be a double-quoted string, found `extra`",
            ),
            ("3 0 c1 connect \"open", "detail", "unterminated"),
            ("3 0 c1 connect \"bad \\q\"", "detail", "unknown escape `\\q`"),
            ("3 0 c1 connect \"bad \\u{110000}\"", "detail", "not a character"),
            ("3 0 c1 connect \"bad \\u{+41}\"", "detail", "not a character"),
            ("3 0 c1 connect \"bad \\u41\"", "detail", "must be followed by"),
            ("3 0 c1 connect \"lone \\", "detail", "lone backslash"),
            (
                "# dbfault journal v2",
                "version",
                "unsupported journal version `2`",
            ),
        ];
        for (bad, field, why) in cases {
            let text = format!("# dbfault journal v1\n1 0 c1 connect\n{bad}\n4 0 c1 checkout\n");
            let err = Journal::from_text(&text).expect_err(bad);
            assert_eq!(err.kind(), crate::ErrorKind::Journal, "{bad}");
            assert_eq!((err.line(), err.field()), (Some(3), Some(*field)), "{bad}");
            let msg = err.to_string();
            // Headed as a saved journal's error, never as a fault scenario's.
            assert!(
                msg.starts_with(&format!("invalid saved journal: line 3, field `{field}`: ")),
                "{bad}: {msg}"
            );
            assert!(msg.contains(why), "{bad}: {msg}");
        }
    }

    /// Characters and tokens a saved journal is made of, in any order.
    const JOURNAL_SOUP: &str = "(\\PC|[ \t\n\"\\\\{}]|[0-9]+|c[0-9]+|connect|\\\\u)*";

    proptest::proptest! {
        #[test]
        fn any_events_round_trip(
            raw in proptest::collection::vec(
                (0u64..1 << 40, proptest::option::of(0u64..), 0..EventKind::ALL.len(), ".*"),
                0..8,
            ),
        ) {
            let mut seq = 0;
            let events: Vec<Event> = raw
                .into_iter()
                .map(|(nanos, conn, kind, detail)| {
                    seq += 1 + nanos % 3;
                    let at = Duration::from_nanos(nanos);
                    Event { seq, at, conn: conn.map(ConnId), kind: EventKind::ALL[kind], detail }
                })
                .collect();
            let text = events_to_text(&events);
            proptest::prop_assert_eq!(text.lines().count(), 2 + events.len());
            let back = Journal::from_text(&text).unwrap();
            proptest::prop_assert_eq!(&back, &events);
            proptest::prop_assert_eq!(render_timeline(&back), render_timeline(&events));
        }

        #[test]
        fn any_text_is_read_or_refused_without_panicking(text in JOURNAL_SOUP) {
            let _ = Journal::from_text(&text);
        }
    }
}
