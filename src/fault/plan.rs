//! Fault plans: a seed and a list of rules, as data, in TOML.
//!
//! ```toml
//! seed = 7
//!
//! [[rule]]
//! op = "commit"
//! nth = 2
//! action = "disconnect_after_apply"
//!
//! [[rule]]
//! op = "execute"
//! matching = "^INSERT"
//! probability = 0.25
//! action = "error"
//! class = "transient"
//! code = "SQLITE_BUSY"
//! message = "database is locked"
//!
//! [[rule]]
//! op = "ping"
//! action = "delay"
//! delay = "250ms"
//! ```
//!
//! Fields of a rule: `op` (connect, execute, query, begin, commit,
//! rollback, ping, close), `action` (error, disconnect,
//! disconnect_after_apply, delay, hang; default disconnect), and the
//! optional filters `matching`, `conn`, `nth`, `every`, `times`,
//! `probability`, `after`; `error` takes `class` (disconnect, transient,
//! constraint, statement, other), `code` and `message`; `delay` takes
//! `delay`. Durations are strings with a unit, exact to the nanosecond:
//! `"150us"`, `"250ms"`, `"2s"`, `"1.5s"`. A rule is checked as
//! [`Faults::arm`](crate::Faults::arm) checks it (see [`Rule`]): counts
//! start at 1, `delay` is at most one hour ([`Rule::MAX_DELAY`]), and a
//! `matching` regex on begin, commit, rollback, connect or close must match
//! that operation's fixed text ([`Op::fixed_sql`]).
//!
//! Every error is an [`ErrorKind::Scenario`](crate::ErrorKind::Scenario)
//! error whose [`line`](Error::line) is the line of the offending field
//! (of the `[[rule]]` header when the field is missing) and whose
//! [`field`](Error::field) is that field's key; a TOML syntax error names
//! the key on its line, if there is one.

use std::fmt::Write as _;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::rule::{Action, Rule};
use crate::Op;
use crate::{ConnId, Error, ErrorClass, Result};

/// A seed and the rules to arm with it. Same seed, same calls, same faults.
#[derive(Debug, Clone, PartialEq, Default)]
#[must_use]
pub struct FaultPlan {
    seed: u64,
    rules: Vec<Rule>,
}

impl FaultPlan {
    /// An empty plan with this seed (kept to 63 bits, the range of a TOML
    /// integer).
    pub fn new(seed: u64) -> Self {
        FaultPlan {
            seed: seed & (i64::MAX as u64),
            rules: Vec::new(),
        }
    }

    /// Adds a rule.
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// The seed of `probability` draws.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The rules, in arming order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Parses a plan.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Scenario`](crate::ErrorKind::Scenario) with the
    /// [`line`](Error::line) and [`field`](Error::field) of the problem:
    /// malformed TOML, an unknown field, op, action or class, a field the
    /// rule's action does not take, a negative number, a duration without
    /// a unit, or a rule [`Faults::arm`](crate::Faults::arm) would refuse.
    pub fn from_toml(text: &str) -> Result<FaultPlan> {
        let raw: RawPlan = toml::from_str(text).map_err(|e| syntax_error(text, e))?;
        let seed = match raw.seed {
            None => 0,
            Some(s) if *s.get_ref() < 0 => {
                return Err(Error::scenario(
                    Some(line_of(text, s.span().start)),
                    "seed",
                    format!("must not be negative, got {}", s.get_ref()),
                ));
            }
            Some(s) => s.into_inner() as u64,
        };
        let mut plan = FaultPlan::new(seed);
        for raw_rule in raw.rule {
            let header = line_of(text, raw_rule.span().start);
            plan.rules.push(raw_rule.into_inner().into_rule(text, header)?);
        }
        Ok(plan)
    }

    /// Reads and parses a plan file; errors name the file too, and keep
    /// the [`line`](Error::line) and [`field`](Error::field).
    ///
    /// # Errors
    ///
    /// As [`from_toml`](FaultPlan::from_toml), or the file cannot be read.
    pub fn from_file(path: impl AsRef<Path>) -> Result<FaultPlan> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::scenario(None, "", format!("cannot read {}: {e}", path.display())).with_source(e)
        })?;
        FaultPlan::from_toml(&text).map_err(|e| e.context(path.display()))
    }

    /// Writes the plan as TOML; [`from_toml`](FaultPlan::from_toml) reads
    /// it back equal when every rule is one [`Faults::arm`](crate::Faults::arm)
    /// accepts.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "seed = {}", self.seed);
        for rule in &self.rules {
            out.push_str("\n[[rule]]\n");
            let _ = writeln!(out, "op = \"{}\"", rule.op);
            let _ = writeln!(out, "action = \"{}\"", rule.action.name());
            match &rule.action {
                Action::Error { class, code, message } => {
                    let _ = writeln!(out, "class = \"{class}\"");
                    let _ = writeln!(out, "code = {}", quote(code));
                    let _ = writeln!(out, "message = {}", quote(message));
                }
                Action::Delay(d) => {
                    let _ = writeln!(out, "delay = \"{}\"", format_duration(*d));
                }
                _ => {}
            }
            if let Some(m) = &rule.matching {
                let _ = writeln!(out, "matching = {}", quote(m));
            }
            if let Some(ConnId(c)) = rule.conn {
                let _ = writeln!(out, "conn = {c}");
            }
            for (name, value) in [("nth", rule.nth), ("every", rule.every), ("times", rule.times)] {
                if let Some(v) = value {
                    let _ = writeln!(out, "{name} = {v}");
                }
            }
            if let Some(p) = rule.probability {
                let _ = writeln!(out, "probability = {p:?}");
            }
            if let Some(d) = rule.after {
                let _ = writeln!(out, "after = \"{}\"", format_duration(d));
            }
        }
        out
    }
}

/// A TOML basic string, escaped.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    seed: Option<Spanned<i64>>,
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    op: Spanned<String>,
    action: Option<Spanned<String>>,
    matching: Option<Spanned<String>>,
    conn: Option<Spanned<i64>>,
    nth: Option<Spanned<i64>>,
    every: Option<Spanned<i64>>,
    times: Option<Spanned<i64>>,
    probability: Option<Spanned<f64>>,
    after: Option<Spanned<String>>,
    delay: Option<Spanned<String>>,
    class: Option<Spanned<String>>,
    code: Option<Spanned<String>>,
    message: Option<Spanned<String>>,
}

/// The actions a plan can name, in the order error messages list them.
const ACTIONS: [&str; 5] = ["error", "disconnect", "disconnect_after_apply", "delay", "hang"];

impl RawRule {
    /// The rule, checked; `header` is the line of its `[[rule]]`.
    fn into_rule(self, text: &str, header: usize) -> Result<Rule> {
        let line = |span: Range<usize>| line_of(text, span.start);
        // The line of every field present, for errors found later.
        let str_line = |v: &Option<Spanned<String>>| v.as_ref().map(|v| line(v.span()));
        let int_line = |v: &Option<Spanned<i64>>| v.as_ref().map(|v| line(v.span()));
        let lines: Vec<(&str, Option<usize>)> = vec![
            ("op", Some(line(self.op.span()))),
            ("action", str_line(&self.action)),
            ("matching", str_line(&self.matching)),
            ("conn", int_line(&self.conn)),
            ("nth", int_line(&self.nth)),
            ("every", int_line(&self.every)),
            ("times", int_line(&self.times)),
            ("probability", self.probability.as_ref().map(|v| line(v.span()))),
            ("after", str_line(&self.after)),
            ("delay", str_line(&self.delay)),
            ("class", str_line(&self.class)),
            ("code", str_line(&self.code)),
            ("message", str_line(&self.message)),
        ];
        // A field's own line; the header's when the field is missing.
        let at = |field: &str| -> Option<usize> {
            Some(
                lines
                    .iter()
                    .find(|(name, _)| *name == field)
                    .and_then(|(_, l)| *l)
                    .unwrap_or(header),
            )
        };
        let op = Op::from_name(self.op.get_ref()).ok_or_else(|| {
            Error::scenario(
                at("op"),
                "op",
                format!(
                    "unknown operation `{}`; expected one of {}",
                    self.op.get_ref(),
                    Op::ALL.map(Op::name).join(", ")
                ),
            )
        })?;
        let action_name = self
            .action
            .as_ref()
            .map_or("disconnect", |a| a.get_ref().as_str());
        if !ACTIONS.contains(&action_name) {
            return Err(Error::scenario(
                at("action"),
                "action",
                format!(
                    "unknown action `{action_name}`; expected one of {}",
                    ACTIONS.join(", ")
                ),
            ));
        }
        let misplaced = |field: &str, present: bool| {
            if present {
                Err(Error::scenario(
                    at(field),
                    field,
                    format!("does not apply to action `{action_name}`"),
                ))
            } else {
                Ok(())
            }
        };
        if action_name != "error" {
            misplaced("class", self.class.is_some())?;
            misplaced("code", self.code.is_some())?;
            misplaced("message", self.message.is_some())?;
        }
        if action_name != "delay" {
            misplaced("delay", self.delay.is_some())?;
        }
        let mut rule = Rule::on(op);
        let count = |field: &str, v: Option<Spanned<i64>>| -> Result<Option<u64>> {
            v.map(|v| {
                u64::try_from(*v.get_ref()).map_err(|_| {
                    Error::scenario(
                        at(field),
                        field,
                        format!("must not be negative, got {}", v.get_ref()),
                    )
                })
            })
            .transpose()
        };
        rule.conn = count("conn", self.conn)?.map(ConnId);
        rule.nth = count("nth", self.nth)?;
        rule.every = count("every", self.every)?;
        rule.times = count("times", self.times)?;
        rule.matching = self.matching.map(Spanned::into_inner);
        rule.probability = self.probability.map(Spanned::into_inner);
        let duration = |field: &str, d: &Spanned<String>| {
            parse_duration(d.get_ref()).map_err(|why| Error::scenario(at(field), field, why))
        };
        rule.after = self.after.as_ref().map(|d| duration("after", d)).transpose()?;
        rule.action = match action_name {
            "disconnect" => Action::Disconnect,
            "disconnect_after_apply" => Action::DisconnectAfterApply,
            "hang" => Action::Hang,
            "delay" => {
                let d = self.delay.as_ref().ok_or_else(|| {
                    Error::scenario(at("action"), "delay", "action `delay` needs a `delay` duration")
                })?;
                Action::Delay(duration("delay", d)?)
            }
            _ => {
                let class = match &self.class {
                    None => ErrorClass::Other,
                    Some(c) => parse_class(c.get_ref()).ok_or_else(|| {
                        Error::scenario(
                            at("class"),
                            "class",
                            format!(
                                "unknown error class `{}`; expected disconnect, transient, constraint, statement or other",
                                c.get_ref()
                            ),
                        )
                    })?,
                };
                Action::Error {
                    class,
                    code: self
                        .code
                        .map_or_else(|| "DBFAULT_INJECTED".to_owned(), Spanned::into_inner),
                    message: self
                        .message
                        .map_or_else(|| format!("injected {class} error"), Spanned::into_inner),
                }
            }
        };
        rule.check(&at)?;
        Ok(rule)
    }
}

fn parse_class(name: &str) -> Option<ErrorClass> {
    Some(match name {
        "disconnect" => ErrorClass::Disconnect,
        "transient" => ErrorClass::Transient,
        "constraint" => ErrorClass::Constraint,
        "statement" => ErrorClass::Statement,
        "other" => ErrorClass::Other,
        _ => return None,
    })
}

/// Parses `"250ms"`, `"2s"`, `"150us"`, `"10ns"`, `"1.5s"`: a decimal
/// number and a unit, read exactly (no floating point), so that every
/// [`format_duration`] reads back equal.
pub(crate) fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("duration `{text}` needs a unit: ns, us, ms or s"))?;
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(format!("duration `{text}` does not start with a number"));
    }
    let unit_nanos: u128 = match unit.trim() {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown unit `{other}` in duration `{text}`; expected ns, us, ms or s"
            ));
        }
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return Err(format!("duration `{text}` does not start with a number"));
    }
    let too_long = || format!("duration `{text}` is too long");
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_long())?
    };
    let mut nanos = whole.checked_mul(unit_nanos).ok_or_else(too_long)?;
    let fraction = fraction.trim_end_matches('0');
    if !fraction.is_empty() {
        let finer = || format!("duration `{text}` is finer than a nanosecond");
        // Nine digits of a second are nanoseconds; more cannot be exact.
        if fraction.len() > 9 {
            return Err(finer());
        }
        let scale = 10u128.pow(fraction.len() as u32);
        let part = fraction.parse::<u128>().map_err(|_| finer())? * unit_nanos;
        if part % scale != 0 {
            return Err(finer());
        }
        nanos = nanos.checked_add(part / scale).ok_or_else(too_long)?;
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| too_long())?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// The shortest exact spelling of `d`.
pub(crate) fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos % 1_000_000_000 == 0 {
        format!("{}s", nanos / 1_000_000_000)
    } else if nanos % 1_000_000 == 0 {
        format!("{}ms", nanos / 1_000_000)
    } else if nanos % 1_000 == 0 {
        format!("{}us", nanos / 1_000)
    } else {
        format!("{nanos}ns")
    }
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// A TOML parse error as a scenario error: the line it points to, and the
/// field when known (the key on that line, or the field a `missing field`
/// error names).
fn syntax_error(text: &str, e: toml::de::Error) -> Error {
    let line = e.span().map(|s| line_of(text, s.start));
    let missing = e
        .message()
        .split_once("missing field `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(name, _)| name.to_owned());
    let field = missing
        .or_else(|| e.span().and_then(|s| key_on_line(text, s.start)))
        .unwrap_or_default();
    let why = e.message().trim().to_owned();
    Error::scenario(line, &field, why).with_source(e)
}

/// The key a `key = value` line starts with, or the name of a well-formed
/// `[name]` or `[[name]]` header, if the line holding byte `offset` is one
/// (bare keys, and quoted keys without escapes).
fn key_on_line(text: &str, offset: usize) -> Option<String> {
    let bytes = text.as_bytes();
    let offset = offset.min(bytes.len());
    // Just after a `\n` byte, or 0: a char boundary either way.
    let start = bytes[..offset]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("").trim();
    let bare = |name: &str| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if let Some(name) = line
        .strip_prefix("[[")
        .and_then(|l| l.strip_suffix("]]"))
        .or_else(|| line.strip_prefix('[').and_then(|l| l.strip_suffix(']')))
    {
        return bare(name.trim()).then(|| name.trim().to_owned());
    }
    let (key, rest) = if let Some(quoted) = line.strip_prefix('"') {
        let end = quoted.find(['"', '\\'])?;
        (&quoted[..end], quoted.get(end + 1..)?)
    } else {
        let end = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(line.len());
        (&line[..end], &line[end..])
    };
    (!key.is_empty() && rest.trim_start().starts_with('=')).then(|| key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip() {
        for d in [
            Duration::from_secs(2),
            Duration::from_millis(250),
            Duration::from_micros(150),
            Duration::from_nanos(7),
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("250").unwrap_err().contains("unit"));
        assert!(parse_duration("3 hours").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn durations_read_exactly_and_refuse_what_they_cannot_hold() {
        for d in [
            Duration::MAX,
            Duration::new(u64::MAX, 0),
            Duration::from_nanos(123_456_789_123_456_789),
            Duration::ZERO,
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{d:?}");
        }
        assert_eq!(parse_duration("0.000000001s"), Ok(Duration::from_nanos(1)));
        assert_eq!(parse_duration(".5ms"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("2.50us"), Ok(Duration::from_nanos(2500)));
        assert!(
            parse_duration("1.5ns")
                .unwrap_err()
                .contains("finer than a nanosecond")
        );
        assert!(parse_duration("0.0000000001s").unwrap_err().contains("finer"));
        assert!(
            parse_duration("18446744073709551616s")
                .unwrap_err()
                .contains("too long")
        );
        assert!(
            parse_duration(&format!("{}ns", "9".repeat(60)))
                .unwrap_err()
                .contains("too long")
        );
        for bad in ["s", ".s", "1.2.3s", "-1s", "1..s"] {
            assert!(parse_duration(bad).unwrap_err().contains("number"), "{bad}");
        }
    }

    #[test]
    fn keys_are_read_off_the_line_without_slicing_inside_a_char() {
        let text = "seed = 1\n\"op\" = 2\n[[rule]]\nnth=\"é\"\n  é = 1\n";
        assert_eq!(key_on_line(text, 3).as_deref(), Some("seed"));
        assert_eq!(key_on_line(text, 12).as_deref(), Some("op"));
        assert_eq!(key_on_line(text, 20).as_deref(), Some("rule"));
        assert_eq!(key_on_line("[[rule]\n", 2), None, "a malformed header");
        assert_eq!(key_on_line("[rule] # c\n", 2), None, "not worth parsing");
        assert_eq!(key_on_line(text, 29).as_deref(), Some("nth"));
        // An offset inside a multi-byte character, a non-ASCII bare key
        // (not TOML), past the end.
        assert_eq!(key_on_line(text, 33).as_deref(), Some("nth"));
        assert_eq!(key_on_line(text, 38), None);
        assert_eq!(key_on_line(text, 10_000), None);
    }

    #[test]
    fn line_of_counts_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
    }
}
