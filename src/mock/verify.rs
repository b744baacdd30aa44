//! What [`MockServer::verify`](crate::MockServer::verify) reports: unmet
//! expectations, statements that contradicted the script, expectations built
//! wrong.

use std::fmt;

use super::expect::{ParamList, normalize_sql};
use crate::Op;
use crate::{ConnId, Value};

/// What the server does with a statement no expectation accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Unexpected {
    /// The statement succeeds like a no-op: `execute` returns `Ok(0)`, `query`
    /// `Ok(vec![])`. A statement no expectation mentions
    /// ([`MismatchReason::Unscripted`]) is then not a
    /// [`verify`](crate::MockServer::verify) failure; one that contradicts
    /// the script (out of order, one call too many, other parameters) still
    /// is. The default.
    #[default]
    Permissive,
    /// The statement fails with a driver error of class
    /// [`Statement`](crate::ErrorClass::Statement) and code
    /// [`MockServer::UNEXPECTED_CODE`](crate::MockServer::UNEXPECTED_CODE), and
    /// [`verify`](crate::MockServer::verify) reports it.
    Strict,
}

/// Why a statement was not accepted by any expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MismatchReason {
    /// No expectation mentions the statement.
    Unscripted,
    /// An ordered expectation accepts it, but another one comes first.
    OutOfOrder,
    /// An expectation accepts it, but has already been met `times(n)` times.
    Exhausted,
    /// An expectation's matcher accepts the statement, but its parameters
    /// differ.
    ParamsDiffer,
}

impl fmt::Display for MismatchReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MismatchReason::Unscripted => "unexpected statement",
            MismatchReason::OutOfOrder => "out of order",
            MismatchReason::Exhausted => "called more times than expected",
            MismatchReason::ParamsDiffer => "parameters differ",
        })
    }
}

/// A statement no expectation accepted.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Mismatch {
    /// Its position in the server's log ([`LogEntry::seq`](crate::LogEntry::seq)).
    pub seq: u64,
    /// The connection that sent it.
    pub conn: ConnId,
    /// `Execute` or `Query`.
    pub op: Op,
    /// The statement as sent.
    pub sql: String,
    /// Its parameters.
    pub params: Vec<Value>,
    /// Why it was not accepted.
    pub reason: MismatchReason,
    /// What the script expected instead, one description per expectation
    /// (see [`Expectation`](crate::Expectation)'s `Display`).
    pub expected: Vec<String>,
    /// The policy in force when it arrived.
    pub policy: Unexpected,
}

impl Mismatch {
    /// Whether [`verify`](crate::MockServer::verify) reports it: always,
    /// except an unscripted statement under [`Unexpected::Permissive`].
    pub fn is_failure(&self) -> bool {
        self.reason != MismatchReason::Unscripted || self.policy == Unexpected::Strict
    }

    /// The received side, on one line: `execute "SQL" with params [..]`.
    pub(crate) fn received(&self) -> String {
        let mut s = format!("{} {:?}", self.op, normalize_sql(&self.sql));
        if !self.params.is_empty() {
            s.push_str(&format!(" with params {}", ParamList(&self.params)));
        }
        s
    }

    /// The expected side, on one line: the first candidate, and how many
    /// more there are.
    pub(crate) fn expected_line(&self) -> String {
        match self.expected.as_slice() {
            [] => NOTHING_EXPECTED.to_owned(),
            [one] => one.clone(),
            [first, rest @ ..] => format!("{first} (or {} more)", rest.len()),
        }
    }

    /// Writes the expected and the received side one above the other, the
    /// labels indented by `indent`, one line per expected candidate.
    fn write_sides(&self, f: &mut fmt::Formatter<'_>, indent: usize) -> fmt::Result {
        let pad = " ".repeat(indent);
        match self.expected.as_slice() {
            [] => write!(f, "\n{pad}expected: {NOTHING_EXPECTED}")?,
            [first, rest @ ..] => {
                write!(f, "\n{pad}expected: {first}")?;
                for other in rest {
                    write!(f, "\n{pad}      or: {other}")?;
                }
            }
        }
        write!(f, "\n{pad}received: {}", self.received())
    }
}

const NOTHING_EXPECTED: &str = "nothing (no expectation left)";

impl fmt::Display for Mismatch {
    /// The reason, then the expected and the received statement one above
    /// the other.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} {} {}: {}", self.seq, self.conn, self.op, self.reason)?;
        self.write_sides(f, 2)
    }
}

/// An expectation met fewer times than it must be.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnmetExpectation {
    /// The expectation (its `Display`).
    pub expectation: String,
    /// How many times it must be met.
    pub expected: usize,
    /// How many times it was.
    pub calls: usize,
}

impl fmt::Display for UnmetExpectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let times = |n: usize| if n == 1 { "time" } else { "times" };
        write!(
            f,
            "{}: expected {} {}, got {}",
            self.expectation,
            self.expected,
            times(self.expected),
            self.calls
        )
    }
}

/// The report of a failed [`verify`](crate::MockServer::verify).
///
/// Its `Display` is a multi-line report: each unmet expectation with the
/// expected and actual counts, each mismatched statement with the expected
/// and the received statement one above the other, and each expectation that
/// was built wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyError {
    pub(crate) unmet: Vec<UnmetExpectation>,
    pub(crate) mismatches: Vec<Mismatch>,
    pub(crate) invalid: Vec<String>,
}

impl VerifyError {
    /// Expectations met fewer times than required, in registration order.
    pub fn unmet(&self) -> &[UnmetExpectation] {
        &self.unmet
    }

    /// Statements that failed verification, in arrival order.
    pub fn mismatches(&self) -> &[Mismatch] {
        &self.mismatches
    }

    /// Expectations built wrong (their description and what is wrong).
    pub fn invalid(&self) -> &[String] {
        &self.invalid
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.unmet.is_empty() && self.mismatches.is_empty() && self.invalid.is_empty()
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.unmet.is_empty() {
            parts.push(plural(
                self.unmet.len(),
                "unmet expectation",
                "unmet expectations",
            ));
        }
        if !self.mismatches.is_empty() {
            parts.push(plural(
                self.mismatches.len(),
                "unexpected statement",
                "unexpected statements",
            ));
        }
        if !self.invalid.is_empty() {
            parts.push(plural(
                self.invalid.len(),
                "invalid expectation",
                "invalid expectations",
            ));
        }
        write!(f, "mock server verification failed: {}", parts.join(", "))?;
        if !self.unmet.is_empty() {
            f.write_str("\n\nunmet expectations:")?;
            for (i, u) in self.unmet.iter().enumerate() {
                write!(f, "\n  {}. {u}", i + 1)?;
            }
        }
        if !self.mismatches.is_empty() {
            f.write_str("\n\nunexpected statements:")?;
            for (i, m) in self.mismatches.iter().enumerate() {
                write!(f, "\n  {}. #{} {} {}: {}", i + 1, m.seq, m.conn, m.op, m.reason)?;
                m.write_sides(f, 7)?;
            }
        }
        if !self.invalid.is_empty() {
            f.write_str("\n\ninvalid expectations:")?;
            for (i, why) in self.invalid.iter().enumerate() {
                write!(f, "\n  {}. {why}", i + 1)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for VerifyError {}
