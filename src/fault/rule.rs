//! Rules: which operation fails, when, and how.

use std::fmt;
use std::time::Duration;

use crate::{ConnId, ErrorClass, Op};

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
/// A rule is checked when it is armed: a regex that does not compile or a
/// probability outside `0..=1` is an [`ErrorKind::Scenario`](crate::ErrorKind::Scenario)
/// error then.
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

    /// Only calls whose statement matches this regex (see
    /// [`Op`] for the text of operations without SQL). Default: any.
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

    /// Only the n-th matching call (1-based). Default: every call.
    pub fn nth(mut self, n: u64) -> Self {
        self.nth = Some(n);
        self
    }

    /// Only every k-th matching call (the k-th, 2k-th, ...). Default: every
    /// call.
    pub fn every(mut self, k: u64) -> Self {
        self.every = Some(k);
        self
    }

    /// Fire at most `n` times, then stay armed but inert. Default: no limit.
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

    /// Delays the operation by `d`, then runs it.
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
