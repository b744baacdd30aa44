//! Rules: which operation fails, when, and how.

use std::fmt;
use std::time::Duration;

use regex::{Regex, RegexBuilder};

use crate::{ConnId, Error, ErrorClass, Op, Result};

/// What a rule does when it fires: see the [fault model](crate::docs::fault_model).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Action {
    /// The operation fails with this error; the connection lives.
    Error {
        /// The class the error carries.
        class: ErrorClass,
        /// The driver code it carries; default `DBFAULT_INJECTED`.
        code: String,
        /// Its message.
        message: String,
    },
    /// The operation fails with a disconnect; the connection is dead for
    /// good (the inner connection is closed, so an open transaction is
    /// rolled back by the server).
    Disconnect,
    /// The operation reaches the inner driver, then the caller sees a
    /// disconnect: on commit, the server applied what the caller will think
    /// may have failed.
    DisconnectAfterApply,
    /// The operation waits this long, then proceeds.
    Delay(Duration),
    /// The operation waits until the rule is disarmed, then proceeds; if
    /// its connection is killed meanwhile, it stops waiting and fails with
    /// a disconnect.
    Hang,
}

impl Action {
    /// The lower-case name used in fault plans.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Error { .. } => "error",
            Action::Disconnect => "disconnect",
            Action::DisconnectAfterApply => "disconnect_after_apply",
            Action::Delay(_) => "delay",
            Action::Hang => "hang",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Error { class, code, .. } => write!(f, "error {class} [{code}]"),
            Action::Delay(d) => write!(f, "delay {d:?}"),
            other => f.write_str(other.name()),
        }
    }
}

/// One fault rule: an operation, optional filters, and an [`Action`].
///
/// Built with [`Rule::on`] and chained filters, ending with the action:
///
/// ```
/// use dbfault::{Op, Rule};
/// let rule = Rule::on(Op::Commit).nth(2).times(1).disconnect();
/// let flaky = Rule::on(Op::Execute).matching("^INSERT").probability(0.1).disconnect();
/// ```
///
/// Filters combine with *and*. Each call of the rule's operation that passes
/// the statement and connection filters is a *matching call*, counted from
/// 1; `nth`, `every`, `times` and `probability` then decide whether it
/// fires. Without an action the rule fails the operation with a disconnect.
///
/// A rule is checked when it is armed ([`Faults::arm`](crate::Faults::arm),
/// [`Faults::load`](crate::Faults::load)) and when a plan is read
/// ([`FaultPlan::from_toml`](crate::FaultPlan::from_toml)); each of these is
/// an [`ErrorKind::Scenario`](crate::ErrorKind::Scenario) error naming the
/// field:
///
/// - a `matching` regex that does not compile, or that can never match the
///   fixed text of the rule's operation (see [`matching`](Rule::matching));
/// - a probability outside `0..=1`;
/// - `nth`, `every` or `times` of zero (such a rule could never fire);
/// - `nth`, `every`, `times` or `conn` above `i64::MAX`, the largest integer
///   a TOML fault plan can hold;
/// - `conn` on a connect rule;
/// - a delay longer than [`Rule::MAX_DELAY`].
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Rule {
    pub(crate) op: Op,
    pub(crate) matching: Option<String>,
    pub(crate) conn: Option<ConnId>,
    pub(crate) nth: Option<u64>,
    pub(crate) every: Option<u64>,
    pub(crate) times: Option<u64>,
    pub(crate) probability: Option<f64>,
    pub(crate) after: Option<Duration>,
    pub(crate) action: Action,
}

impl Rule {
    /// The longest [`delay`](Rule::delay) a rule may have: one hour.
    ///
    /// On the system clock a delay sleeps the calling thread for real, so a
    /// longer one is a test that hangs rather than one that waits; hold an
    /// operation for good with [`hang`](Rule::hang) instead, which the test
    /// releases by disarming the rule. (On a manual clock a delay advances
    /// the clock; the same limit keeps it far from overflowing.)
    pub const MAX_DELAY: Duration = Duration::from_secs(3600);

    /// A rule on `op` that fires on every call with a disconnect, until
    /// refined.
    pub fn on(op: Op) -> Self {
        Rule {
            op,
            matching: None,
            conn: None,
            nth: None,
            every: None,
            times: None,
            probability: None,
            after: None,
            action: Action::Disconnect,
        }
    }

    /// Only calls whose statement matches this regex ([`regex`] syntax,
    /// unanchored, case-sensitive; `(?i)` makes it case-insensitive).
    /// Default: any.
    ///
    /// Execute and query calls match their SQL; ping calls match the
    /// dialect's [`ping_sql`](crate::Dialect::ping_sql) (`SELECT 1` on SQLite
    /// and the mock). The other operations carry a fixed text,
    /// [`Op::fixed_sql`]: `BEGIN`, `COMMIT`, `ROLLBACK`, and the empty
    /// string for connect and close. On those the regex must match that
    /// text, or arming the rule fails with an
    /// [`ErrorKind::Scenario`](crate::ErrorKind::Scenario) error naming it:
    /// `matching("commit")` on a commit rule is refused (it would never
    /// fire), `matching("(?i)commit")` is accepted.
    pub fn matching(mut self, pattern: impl Into<String>) -> Self {
        self.matching = Some(pattern.into());
        self
    }

    /// Only calls on this connection. Not allowed on [`Op::Connect`], which
    /// has no connection yet. Default: any.
    pub fn conn(mut self, id: ConnId) -> Self {
        self.conn = Some(id);
        self
    }

    /// Only the n-th matching call (1-based; `n` of 0 is refused when the
    /// rule is armed). Default: every call.
    pub fn nth(mut self, n: u64) -> Self {
        self.nth = Some(n);
        self
    }

    /// Only every k-th matching call (the k-th, 2k-th, ...; `k` of 0 is
    /// refused when the rule is armed). Default: every call.
    pub fn every(mut self, k: u64) -> Self {
        self.every = Some(k);
        self
    }

    /// Fire at most `n` times, then stay armed but inert (`n` of 0 is
    /// refused when the rule is armed: the rule could never fire). Default:
    /// no limit.
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }

    /// Fire with probability `p` (drawn from the plan's seeded generator).
    /// Default: 1.
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = Some(p);
        self
    }

    /// Only once `d` has passed since the rule was armed (on the fault
    /// layer's clock). Default: at once.
    pub fn after(mut self, d: Duration) -> Self {
        self.after = Some(d);
        self
    }

    /// Fails the operation with an error of `class`, code
    /// `DBFAULT_INJECTED`; the connection lives, unless `class` is
    /// [`ErrorClass::Disconnect`]: a disconnect kills it, whatever its code.
    pub fn error(self, class: ErrorClass) -> Self {
        self.error_with(class, "DBFAULT_INJECTED", format!("injected {class} error"))
    }

    /// Fails the operation with an error of `class`, `code` and `message`;
    /// the connection lives unless `class` is a disconnect (say a
    /// PostgreSQL `57P01` on a mock dialect told it means disconnect).
    pub fn error_with(
        mut self,
        class: ErrorClass,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        self.action = Action::Error {
            class,
            code: code.into(),
            message: message.into(),
        };
        self
    }

    /// Fails the operation with a disconnect and kills the connection.
    pub fn disconnect(mut self) -> Self {
        self.action = Action::Disconnect;
        self
    }

    /// Runs the operation on the inner driver, then reports a disconnect
    /// and kills the connection.
    pub fn disconnect_after_apply(mut self) -> Self {
        self.action = Action::DisconnectAfterApply;
        self
    }

    /// Delays the operation by `d`, then runs it. `d` may be at most
    /// [`Rule::MAX_DELAY`] (one hour); a longer delay is refused when the
    /// rule is armed.
    pub fn delay(mut self, d: Duration) -> Self {
        self.action = Action::Delay(d);
        self
    }

    /// Holds the operation until the rule is disarmed, then runs it (or
    /// until its connection is killed: then it fails with a disconnect).
    pub fn hang(mut self) -> Self {
        self.action = Action::Hang;
        self
    }

    /// Sets the action directly.
    pub fn action(mut self, action: Action) -> Self {
        self.action = action;
        self
    }

    /// The operation this rule targets.
    pub fn op(&self) -> Op {
        self.op
    }

    /// What the rule does when it fires.
    pub fn get_action(&self) -> &Action {
        &self.action
    }
}

/// The largest count or connection id a fault plan can hold: TOML integers
/// are `i64`.
const MAX_PLAN_INTEGER: u64 = i64::MAX as u64;

impl Rule {
    /// Checks the rule and compiles its regex. `line` gives the 1-based line
    /// of a field in a plan file (`None` outside one); errors name the field
    /// and that line.
    pub(crate) fn check(&self, line: &dyn Fn(&str) -> Option<usize>) -> Result<Option<Regex>> {
        let err = |field: &str, why: String| Error::scenario(line(field), field, why);
        if let Some(p) = self.probability {
            if !(0.0..=1.0).contains(&p) {
                return Err(err("probability", format!("must be within 0..=1, got {p}")));
            }
        }
        let counts = [
            ("nth", self.nth, "counts from 1, got 0"),
            ("every", self.every, "must be at least 1, got 0"),
            (
                "times",
                self.times,
                "must be at least 1, got 0 (the rule could never fire; disarm it instead)",
            ),
            ("conn", self.conn.map(|c| c.0), ""),
        ];
        for (field, value, zero) in counts {
            match value {
                Some(0) if !zero.is_empty() => return Err(err(field, zero.to_owned())),
                Some(v) if v > MAX_PLAN_INTEGER => {
                    return Err(err(
                        field,
                        format!("{v} is above {MAX_PLAN_INTEGER}, the largest integer a fault plan can hold"),
                    ));
                }
                _ => {}
            }
        }
        if self.op == Op::Connect && self.conn.is_some() {
            return Err(err(
                "conn",
                "a connect rule cannot filter by connection: none exists yet".to_owned(),
            ));
        }
        if let Action::Delay(d) = self.action {
            if d > Rule::MAX_DELAY {
                return Err(err(
                    "delay",
                    format!(
                        "{d:?} is longer than the longest delay, {:?} (Rule::MAX_DELAY); \
                         use action `hang` to hold an operation until the rule is disarmed",
                        Rule::MAX_DELAY
                    ),
                ));
            }
        }
        let Some(pattern) = self.matching.as_deref() else {
            return Ok(None);
        };
        let regex = Regex::new(pattern).map_err(|e| {
            err("matching", format!("regex `{pattern}` does not compile: {e}")).with_source(e)
        })?;
        if let Some(text) = self.op.fixed_sql() {
            if !regex.is_match(text) {
                let hint = RegexBuilder::new(pattern)
                    .case_insensitive(true)
                    .build()
                    .is_ok_and(|r| r.is_match(text));
                let hint = if hint {
                    format!(" (matching is case-sensitive: `(?i){pattern}` would match)")
                } else {
                    String::new()
                };
                return Err(err(
                    "matching",
                    format!(
                        "a {op} rule matches the fixed text {text:?}, which regex `{pattern}` \
                         can never match, so the rule would never fire{hint}",
                        op = self.op
                    ),
                ));
            }
        }
        Ok(Some(regex))
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.op)?;
        if let Some(m) = &self.matching {
            write!(f, " ~/{m}/")?;
        }
        if let Some(c) = self.conn {
            write!(f, " on {c}")?;
        }
        if let Some(n) = self.nth {
            write!(f, " nth {n}")?;
        }
        if let Some(k) = self.every {
            write!(f, " every {k}")?;
        }
        if let Some(n) = self.times {
            write!(f, " times {n}")?;
        }
        if let Some(p) = self.probability {
            write!(f, " p={p}")?;
        }
        if let Some(d) = self.after {
            write!(f, " after {d:?}")?;
        }
        write!(f, ": {}", self.action)
    }
}
