//! [`MockDialect`]: a dialect whose error codes a test chooses, with presets
//! that make a mock stand in for PostgreSQL or SQLite.

use crate::{Dialect, Error, ErrorClass, ErrorKind};

/// A [`Dialect`] that classifies errors by code lists the test configures.
///
/// Classification, in order:
///
/// 1. an error of kind [`ErrorKind::Closed`] is a [`ErrorClass::Disconnect`]
///    (the [`Dialect`] contract);
/// 2. a [`ErrorKind::Driver`] error whose code is in the disconnect codes is a
///    disconnect, else in the transient codes a [`ErrorClass::Transient`],
///    else in the constraint codes a [`ErrorClass::Constraint`];
/// 3. any other driver error (with another code, or none) is a
///    [`ErrorClass::Statement`];
/// 4. every other kind is [`ErrorClass::Other`].
///
/// # Code patterns
///
/// An entry matches a code exactly (case-sensitive), except that an entry
/// ending in `*` matches every code starting with what precedes the `*`:
/// `"23*"` matches PostgreSQL's whole integrity-constraint class (`23505`,
/// `23503`, ...), `"SQLITE_BUSY*"` matches `SQLITE_BUSY` and
/// `SQLITE_BUSY_SNAPSHOT`. A lone `"*"` matches every code.
///
/// # Defaults
///
/// [`MockDialect::new`]: name `"mock"`, disconnect codes `["MOCK_DISCONNECT"]`,
/// transient codes `["MOCK_TRANSIENT"]`, constraint codes
/// `["MOCK_CONSTRAINT"]`, ping statement `SELECT 1`.
///
/// ```
/// use dbfault::{Dialect, Error, ErrorClass, MockDialect};
///
/// let pg = MockDialect::postgres();
/// assert_eq!(pg.classify(&Error::driver("57P01", "terminating connection")), ErrorClass::Disconnect);
/// assert_eq!(pg.classify(&Error::driver("23505", "duplicate key")), ErrorClass::Constraint);
/// assert_eq!(pg.disconnect_code(), Some("57P01"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct MockDialect {
    name: String,
    disconnect: Vec<String>,
    transient: Vec<String>,
    constraint: Vec<String>,
    ping_sql: String,
}

impl Default for MockDialect {
    /// Same as [`MockDialect::new`].
    fn default() -> Self {
        MockDialect::new()
    }
}

impl MockDialect {
    /// The default mock dialect; see [Defaults](MockDialect#defaults).
    pub fn new() -> Self {
        MockDialect {
            name: "mock".to_owned(),
            disconnect: vec!["MOCK_DISCONNECT".to_owned()],
            transient: vec!["MOCK_TRANSIENT".to_owned()],
            constraint: vec!["MOCK_CONSTRAINT".to_owned()],
            ping_sql: "SELECT 1".to_owned(),
        }
    }

    /// PostgreSQL's SQLSTATEs: name `"postgresql"`; disconnect `57P01`
    /// (admin shutdown, the [`disconnect_code`](Dialect::disconnect_code)),
    /// `57P02`, `57P03`, `08000`, `08003`, `08006`, `08001`, `08004`;
    /// transient `40001` (serialization failure), `40P01` (deadlock),
    /// `55P03` (lock not available); constraint: class `23` (`23*`).
    pub fn postgres() -> Self {
        MockDialect::new()
            .with_name("postgresql")
            .disconnect_codes([
                "57P01", "57P02", "57P03", "08000", "08003", "08006", "08001", "08004",
            ])
            .transient_codes(["40001", "40P01", "55P03"])
            .constraint_codes(["23*"])
    }

    /// SQLite's extended result code names: name `"sqlite"`; transient
    /// `SQLITE_BUSY*` and `SQLITE_LOCKED*`; constraint `SQLITE_CONSTRAINT*`;
    /// disconnect `DBFAULT_DISCONNECT` (the
    /// [`disconnect_code`](Dialect::disconnect_code), as
    /// [`SqliteDialect`](crate::SqliteDialect)'s), `SQLITE_MISUSE` and
    /// `SQLITE_CANTOPEN`.
    pub fn sqlite() -> Self {
        MockDialect::new()
            .with_name("sqlite")
            .disconnect_codes(["DBFAULT_DISCONNECT", "SQLITE_MISUSE", "SQLITE_CANTOPEN"])
            .transient_codes(["SQLITE_BUSY*", "SQLITE_LOCKED*"])
            .constraint_codes(["SQLITE_CONSTRAINT*"])
    }

    /// Sets the name [`Dialect::name`] reports. Default: `"mock"`.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Replaces the codes classified as [`ErrorClass::Disconnect`] (see
    /// [Code patterns](MockDialect#code-patterns)); the first one is the
    /// [`disconnect_code`](Dialect::disconnect_code). Default:
    /// `["MOCK_DISCONNECT"]`.
    pub fn disconnect_codes<I>(mut self, codes: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.disconnect = codes.into_iter().map(Into::into).collect();
        self
    }

    /// Replaces the codes classified as [`ErrorClass::Transient`] (see
    /// [Code patterns](MockDialect#code-patterns)). Default:
    /// `["MOCK_TRANSIENT"]`.
    pub fn transient_codes<I>(mut self, codes: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.transient = codes.into_iter().map(Into::into).collect();
        self
    }

    /// Replaces the codes classified as [`ErrorClass::Constraint`] (see
    /// [Code patterns](MockDialect#code-patterns)). Default:
    /// `["MOCK_CONSTRAINT"]`.
    pub fn constraint_codes<I>(mut self, codes: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.constraint = codes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the statement [`Dialect::ping_sql`] reports. Default: `SELECT 1`.
    pub fn with_ping_sql(mut self, sql: impl Into<String>) -> Self {
        self.ping_sql = sql.into();
        self
    }

    /// The class a driver error with `code` gets (step 2 and 3 of the
    /// classification).
    pub fn classify_code(&self, code: &str) -> ErrorClass {
        if matches_any(&self.disconnect, code) {
            ErrorClass::Disconnect
        } else if matches_any(&self.transient, code) {
            ErrorClass::Transient
        } else if matches_any(&self.constraint, code) {
            ErrorClass::Constraint
        } else {
            ErrorClass::Statement
        }
    }
}

/// Whether `code` matches one of `patterns` (exactly, or by prefix for an
/// entry ending in `*`).
fn matches_any(patterns: &[String], code: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => code.starts_with(prefix),
        None => p == code,
    })
}

impl Dialect for MockDialect {
    fn name(&self) -> &str {
        &self.name
    }

    fn classify(&self, err: &Error) -> ErrorClass {
        match err.kind() {
            ErrorKind::Closed => ErrorClass::Disconnect,
            ErrorKind::Driver => match err.code() {
                Some(code) => self.classify_code(code),
                None => ErrorClass::Statement,
            },
            _ => ErrorClass::Other,
        }
    }

    fn ping_sql(&self) -> &str {
        &self.ping_sql
    }

    /// The first disconnect code, if any.
    fn disconnect_code(&self) -> Option<&str> {
        self.disconnect.first().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_entries_match_by_prefix_and_others_exactly() {
        let d = MockDialect::new().transient_codes(["BUSY*", "LOCKED"]);
        assert_eq!(d.classify_code("BUSY_SNAPSHOT"), ErrorClass::Transient);
        assert_eq!(d.classify_code("BUSY"), ErrorClass::Transient);
        assert_eq!(d.classify_code("LOCKED"), ErrorClass::Transient);
        assert_eq!(d.classify_code("LOCKED_SHAREDCACHE"), ErrorClass::Statement);
    }

    #[test]
    fn disconnect_wins_over_later_lists() {
        let d = MockDialect::new().disconnect_codes(["X"]).transient_codes(["X"]);
        assert_eq!(d.classify_code("X"), ErrorClass::Disconnect);
    }

    #[test]
    fn unclassified_kinds_are_other_and_driver_without_code_is_statement() {
        let d = MockDialect::new();
        assert_eq!(d.classify(&Error::config("size", "zero")), ErrorClass::Other);
        assert_eq!(d.classify(&Error::closed("gone")), ErrorClass::Disconnect);
        assert_eq!(d.disconnect_code(), Some("MOCK_DISCONNECT"));
        assert_eq!(
            MockDialect::new()
                .disconnect_codes(Vec::<String>::new())
                .disconnect_code(),
            None
        );
    }
}
