//! Scripted expectations: which statement, what it answers, how often, in
//! which order.

use std::fmt;
use std::sync::Arc;

use regex::Regex;

use crate::{Error, Result, Row, Value};

/// Collapses every run of whitespace to one space and trims both ends.
///
/// Whitespace inside string literals is collapsed too: the mock does not
/// parse SQL.
///
/// ```
/// assert_eq!(dbfault::normalize_sql("  SELECT\n\t1 ,  2 "), "SELECT 1 , 2");
/// ```
pub fn normalize_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    for word in sql.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Which statements an [`Expectation`] is for.
///
/// Both kinds look at the statement after [`normalize_sql`]; both are
/// case-sensitive.
#[derive(Debug, Clone)]
pub struct StatementMatcher {
    kind: MatcherKind,
}

#[derive(Debug, Clone)]
enum MatcherKind {
    Exact(String),
    Regex(Regex),
}

impl StatementMatcher {
    /// Matches the statement equal to `sql` once both are normalised.
    pub fn exact(sql: impl AsRef<str>) -> Self {
        StatementMatcher {
            kind: MatcherKind::Exact(normalize_sql(sql.as_ref())),
        }
    }

    /// Matches every statement in which `pattern` (regex 1.x syntax) finds a
    /// match; anchor it with `^`/`$` to match the whole statement.
    ///
    /// # Errors
    ///
    /// A pattern that does not compile is an error of kind
    /// [`ErrorKind::Scenario`](crate::ErrorKind::Scenario) naming the pattern.
    pub fn regex(pattern: &str) -> Result<Self> {
        match Regex::new(pattern) {
            Ok(re) => Ok(StatementMatcher {
                kind: MatcherKind::Regex(re),
            }),
            Err(e) => Err(Error::scenario(
                None,
                "regex",
                format_args!("pattern `{pattern}` does not compile: {e}"),
            )
            .with_source(e)),
        }
    }

    /// Whether `sql` (raw; normalised here) is one of this matcher's.
    pub fn matches(&self, sql: &str) -> bool {
        self.matches_normalized(&normalize_sql(sql))
    }

    pub(crate) fn matches_normalized(&self, normalized: &str) -> bool {
        match &self.kind {
            MatcherKind::Exact(s) => s == normalized,
            MatcherKind::Regex(re) => re.is_match(normalized),
        }
    }
}

impl fmt::Display for StatementMatcher {
    /// `exact "SELECT 1"` or `regex /^INSERT/`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            MatcherKind::Exact(s) => write!(f, "exact {s:?}"),
            MatcherKind::Regex(re) => write!(f, "regex /{}/", re.as_str()),
        }
    }
}

/// How many times an [`Expectation`] must be met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Times {
    /// Exactly this many times: fewer is unmet at
    /// [`verify`](crate::MockServer::verify), one more is a mismatch.
    Exactly(usize),
    /// Any number of times, zero included.
    Any,
}

impl Times {
    /// Whether `calls` calls leave room for one more.
    pub(crate) fn has_room(self, calls: usize) -> bool {
        match self {
            Times::Exactly(n) => calls < n,
            Times::Any => true,
        }
    }

    /// Whether `calls` calls satisfy this.
    pub(crate) fn is_met(self, calls: usize) -> bool {
        match self {
            Times::Exactly(n) => calls >= n,
            Times::Any => true,
        }
    }
}

impl fmt::Display for Times {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Times::Exactly(1) => f.write_str("exactly 1 time"),
            Times::Exactly(n) => write!(f, "exactly {n} times"),
            Times::Any => f.write_str("any number of times"),
        }
    }
}

/// What a matched statement answers.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// Like an unscripted statement: `execute` gives 0, `query` no rows.
    Default,
    /// `query` gives these rows; `execute` gives 0.
    Rows(Vec<Row>),
    /// `execute` gives this count; `query` no rows.
    Affects(u64),
    /// Both fail with `Error::driver(code, message)`, classified by the
    /// server's dialect.
    Fails { code: String, message: String },
    /// The expectation was built wrong (e.g. a row of the wrong width):
    /// matching it fails with a Scenario error with this message.
    Invalid(String),
}

/// One scripted statement: a matcher, optionally the parameters, the reply,
/// how many times, and whether it is part of the ordered script.
///
/// Register it with [`MockServer::expect`](crate::MockServer::expect).
///
/// # Defaults
///
/// [`times(1)`](Expectation::times); unordered; any parameters; the reply of
/// an unscripted statement (`execute` → `Ok(0)`, `query` → `Ok(vec![])`).
///
/// ```
/// use dbfault::{Expectation, Value};
///
/// let select = Expectation::exact("SELECT id FROM t")
///     .returns_rows(["id"], vec![vec![Value::Integer(1)]])
///     .ordered();
/// let insert = Expectation::regex("^INSERT INTO t")?.affects(1).times(2);
/// let busy = Expectation::exact("UPDATE t SET x = 1").fails("MOCK_TRANSIENT", "busy");
/// # Ok::<(), dbfault::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Expectation {
    pub(crate) matcher: StatementMatcher,
    pub(crate) params: Option<Vec<Value>>,
    pub(crate) reply: Reply,
    pub(crate) times: Times,
    pub(crate) ordered: bool,
}

impl Expectation {
    /// An expectation for statements `matcher` matches.
    pub fn new(matcher: StatementMatcher) -> Self {
        Expectation {
            matcher,
            params: None,
            reply: Reply::Default,
            times: Times::Exactly(1),
            ordered: false,
        }
    }

    /// An expectation for the statement equal to `sql` after whitespace
    /// normalisation ([`StatementMatcher::exact`]).
    pub fn exact(sql: impl AsRef<str>) -> Self {
        Expectation::new(StatementMatcher::exact(sql))
    }

    /// An expectation for the statements `pattern` matches
    /// ([`StatementMatcher::regex`]).
    ///
    /// # Errors
    ///
    /// A pattern that does not compile is an error of kind
    /// [`ErrorKind::Scenario`](crate::ErrorKind::Scenario) naming the pattern.
    pub fn regex(pattern: &str) -> Result<Self> {
        StatementMatcher::regex(pattern).map(Expectation::new)
    }

    /// Matches only when the statement's parameters equal `params`.
    /// Default: any parameters.
    ///
    /// A statement the matcher accepts with other parameters is a mismatch
    /// ([`MismatchReason::ParamsDiffer`](crate::MismatchReason::ParamsDiffer)).
    pub fn with_params<I>(mut self, params: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Value>,
    {
        self.params = Some(params.into_iter().map(Into::into).collect());
        self
    }

    /// `query` answers these rows (one `Vec<Value>` per row, one value per
    /// column); `execute` answers `Ok(0)`.
    ///
    /// A row whose width differs from `columns` does not panic: the
    /// expectation is reported by [`verify`](crate::MockServer::verify) and a
    /// statement matching it fails with an error of kind
    /// [`ErrorKind::Scenario`](crate::ErrorKind::Scenario).
    pub fn returns_rows<C, R>(mut self, columns: C, rows: R) -> Self
    where
        C: IntoIterator,
        C::Item: Into<String>,
        R: IntoIterator<Item = Vec<Value>>,
    {
        let columns: Arc<[String]> = columns.into_iter().map(Into::into).collect();
        let mut built = Vec::new();
        for (i, values) in rows.into_iter().enumerate() {
            if values.len() != columns.len() {
                self.reply = Reply::Invalid(format!(
                    "row {} has {} values for {} columns",
                    i + 1,
                    values.len(),
                    columns.len()
                ));
                return self;
            }
            built.push(Row::new(Arc::clone(&columns), values));
        }
        self.reply = Reply::Rows(built);
        self
    }

    /// `execute` answers `Ok(count)`; `query` answers no rows.
    pub fn affects(mut self, count: u64) -> Self {
        self.reply = Reply::Affects(count);
        self
    }

    /// Both `execute` and `query` fail with
    /// [`Error::driver(code, message)`](Error::driver), classified by the
    /// server's [`MockDialect`](crate::MockDialect). A code the dialect calls
    /// a disconnect kills the connection, as the
    /// [`Connection`](crate::Connection) contract says.
    pub fn fails(mut self, code: impl Into<String>, message: impl Into<String>) -> Self {
        self.reply = Reply::Fails {
            code: code.into(),
            message: message.into(),
        };
        self
    }

    /// Must be met exactly `n` times. Default: 1.
    pub fn times(mut self, n: usize) -> Self {
        self.times = Times::Exactly(n);
        self
    }

    /// May be met any number of times, zero included. Default: exactly once.
    pub fn any_times(mut self) -> Self {
        self.times = Times::Any;
        self
    }

    /// Makes this part of the server's ordered script: ordered expectations
    /// are met in the order they were registered, each one's calls before
    /// the next one's. An expectation already met (or met any number of
    /// times) may be passed over; one still short of its count may not. A
    /// statement for an ordered expectation that is not next is a mismatch
    /// ([`MismatchReason::OutOfOrder`](crate::MismatchReason::OutOfOrder)).
    /// Default: unordered.
    pub fn ordered(mut self) -> Self {
        self.ordered = true;
        self
    }

    /// The matcher.
    pub fn matcher(&self) -> &StatementMatcher {
        &self.matcher
    }

    /// The parameters it requires, if any.
    pub fn params(&self) -> Option<&[Value]> {
        self.params.as_deref()
    }

    /// How many times it must be met.
    pub fn expected_times(&self) -> Times {
        self.times
    }

    /// Whether it is part of the ordered script.
    pub fn is_ordered(&self) -> bool {
        self.ordered
    }

    /// Whether `normalized` and `params` are one of this expectation's
    /// statements (ignoring its count).
    pub(crate) fn accepts(&self, normalized: &str, params: &[Value]) -> bool {
        self.matcher.matches_normalized(normalized) && self.params.as_deref().is_none_or(|p| p == params)
    }

    /// Why this expectation cannot be used, if it was built wrong.
    pub(crate) fn invalid(&self) -> Option<&str> {
        match &self.reply {
            Reply::Invalid(why) => Some(why),
            _ => None,
        }
    }
}

impl fmt::Display for Expectation {
    /// E.g. `regex /^INSERT/ with params [1, 'a'] (ordered, exactly 2 times)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.matcher)?;
        if let Some(params) = &self.params {
            write!(f, " with params {}", ParamList(params))?;
        }
        f.write_str(" (")?;
        if self.ordered {
            f.write_str("ordered, ")?;
        }
        write!(f, "{})", self.times)
    }
}

/// Displays parameters as `[1, 'a', NULL]`.
pub(crate) struct ParamList<'a>(pub(crate) &'a [Value]);

impl fmt::Display for ParamList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{v}")?;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_collapses_and_trims() {
        assert_eq!(normalize_sql(" a \n\t b  "), "a b");
        assert_eq!(normalize_sql(""), "");
    }

    #[test]
    fn display_names_matcher_params_and_count() {
        let e = Expectation::regex("^INSERT")
            .unwrap()
            .with_params([Value::Integer(1), Value::from("a")])
            .ordered()
            .times(2);
        assert_eq!(
            e.to_string(),
            "regex /^INSERT/ with params [1, 'a'] (ordered, exactly 2 times)"
        );
    }

    #[test]
    fn wrong_row_width_marks_the_expectation_invalid() {
        let e = Expectation::exact("SELECT 1").returns_rows(["a", "b"], vec![vec![Value::Null]]);
        assert_eq!(e.invalid(), Some("row 1 has 1 values for 2 columns"));
    }
}
