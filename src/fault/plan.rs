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
//! disconnect_after_apply, delay, hang), and the optional filters
//! `matching`, `conn`, `nth`, `every`, `times`, `probability`, `after`;
//! `error` takes `class` (disconnect, transient, constraint, statement,
//! other), `code` and `message`; `delay` takes `delay`. Durations are
//! strings with a unit: `"150us"`, `"250ms"`, `"2s"`.

use std::fmt::Write as _;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::faults::validate;
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
    /// [`ErrorKind::Scenario`](crate::ErrorKind::Scenario) naming the line
    /// and the field: malformed TOML, an unknown field, op, action or class,
    /// a probability outside `0..=1`, a regex that does not compile, a
    /// duration without a unit.
    pub fn from_toml(text: &str) -> Result<FaultPlan> {
        let raw: RawPlan = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            Error::scenario(line, &field_of(text, e.span()), e.message().trim()).with_source(e)
        })?;
        let seed = match raw.seed {
            None => 0,
            Some(s) if *s.get_ref() < 0 => {
                return Err(Error::scenario(
                    Some(line_of(text, s.span().start)),
                    "seed",
                    "must not be negative",
                ));
            }
            Some(s) => s.into_inner() as u64,
        };
        let mut plan = FaultPlan::new(seed);
        for raw_rule in raw.rule {
            let line = line_of(text, raw_rule.span().start);
            let rule = raw_rule.into_inner().into_rule(text)?;
            validate(&rule, Some(line))?;
            plan.rules.push(rule);
        }
        Ok(plan)
    }

    /// Reads and parses a plan file; errors name the file too.
    ///
    /// # Errors
    ///
    /// As [`from_toml`](FaultPlan::from_toml), or the file cannot be read.
    pub fn from_file(path: impl AsRef<Path>) -> Result<FaultPlan> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::scenario(None, "file", format!("cannot read {}: {e}", path.display())).with_source(e)
        })?;
        FaultPlan::from_toml(&text).map_err(|e| {
            Error::scenario(None, "file", format!("{}: {}", path.display(), e.message())).with_source(e)
        })
    }

    /// Writes the plan as TOML; [`from_toml`](FaultPlan::from_toml) reads
    /// it back equal.
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
    code: Option<String>,
    message: Option<String>,
}

impl RawRule {
    fn into_rule(self, text: &str) -> Result<Rule> {
        let at = |span: Range<usize>| Some(line_of(text, span.start));
        let op = Op::from_name(self.op.get_ref()).ok_or_else(|| {
            Error::scenario(
                at(self.op.span()),
                "op",
                format!(
                    "unknown operation `{}`; expected one of {}",
                    self.op.get_ref(),
                    Op::ALL.map(Op::name).join(", ")
                ),
            )
        })?;
        let mut rule = Rule::on(op);
        let count = |field: &str, v: Option<Spanned<i64>>| -> Result<Option<u64>> {
            v.map(|v| {
                u64::try_from(*v.get_ref()).map_err(|_| {
                    Error::scenario(
                        at(v.span()),
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
        if let Some(m) = self.matching {
            // Checked here, where the field's own line is known.
            regex::Regex::new(m.get_ref()).map_err(|e| {
                Error::scenario(
                    at(m.span()),
                    "matching",
                    format!("regex `{}` does not compile: {e}", m.get_ref()),
                )
                .with_source(e)
            })?;
            rule.matching = Some(m.into_inner());
        }
        if let Some(p) = self.probability {
            if !(0.0..=1.0).contains(p.get_ref()) {
                let why = format!("must be within 0..=1, got {}", p.get_ref());
                return Err(Error::scenario(at(p.span()), "probability", why));
            }
            rule.probability = Some(p.into_inner());
        }
        rule.after = self
            .after
            .map(|d| parse_duration(d.get_ref()).map_err(|why| Error::scenario(at(d.span()), "after", why)))
            .transpose()?;
        let rule_line = at(self.op.span());
        let action_name = self
            .action
            .as_ref()
            .map_or("disconnect", |a| a.get_ref().as_str());
        let action_line = self.action.as_ref().map_or(rule_line, |a| at(a.span()));
        let misplaced = |field: &str, present: bool| {
            if present {
                Err(Error::scenario(
                    rule_line,
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
        rule.action = match action_name {
            "disconnect" => Action::Disconnect,
            "disconnect_after_apply" => Action::DisconnectAfterApply,
            "hang" => Action::Hang,
            "delay" => {
                let d = self.delay.ok_or_else(|| {
                    Error::scenario(action_line, "delay", "action `delay` needs a `delay` duration")
                })?;
                Action::Delay(
                    parse_duration(d.get_ref()).map_err(|why| Error::scenario(at(d.span()), "delay", why))?,
                )
            }
            "error" => {
                let class = match self.class {
                    None => ErrorClass::Other,
                    Some(c) => parse_class(c.get_ref()).ok_or_else(|| {
                        Error::scenario(
                            at(c.span()),
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
                    code: self.code.unwrap_or_else(|| "DBFAULT_INJECTED".to_owned()),
                    message: self.message.unwrap_or_else(|| format!("injected {class} error")),
                }
            }
            other => {
                return Err(Error::scenario(
                    action_line,
                    "action",
                    format!(
                        "unknown action `{other}`; expected error, disconnect, disconnect_after_apply, delay or hang"
                    ),
                ));
            }
        };
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

/// Parses `"250ms"`, `"2s"`, `"150us"`, `"10ns"`, `"1.5s"`.
pub(crate) fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("duration `{text}` needs a unit: ns, us, ms or s"))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("duration `{text}` does not start with a number"))?;
    let scale = match unit.trim() {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in duration `{text}`; expected ns, us, ms or s"
            ));
        }
    };
    Duration::try_from_secs_f64(number * scale).map_err(|e| format!("duration `{text}`: {e}"))
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

/// The key at the start of the line a parse error points to, if any.
fn field_of(text: &str, span: Option<Range<usize>>) -> String {
    let Some(span) = span else {
        return "plan".to_owned();
    };
    let start = text[..span.start.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("");
    match line.split_once('=') {
        Some((key, _)) if !key.trim().is_empty() => key.trim().to_owned(),
        _ => line.trim().trim_matches(['[', ']']).to_owned(),
    }
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
    fn line_of_counts_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
    }
}
