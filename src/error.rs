//! The error model shared by every layer.
//!
//! One [`Error`] type travels from the driver up to the caller. It says *what
//! happened* ([`ErrorKind`]: the driver failed, a checkout timed out, a commit
//! ended with an unknown outcome, ...) and, for driver errors, *what sort of
//! failure it was* ([`ErrorClass`]: disconnect, transient, constraint, ...),
//! as the dialect classified it. The driver's own error is kept as
//! [`std::error::Error::source`], never flattened into a string.

use std::fmt;
use std::sync::Arc;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

type SharedError = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// What happened, one variant per cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The driver (or the server behind it) reported an error; see
    /// [`Error::class`] and [`Error::code`].
    Driver,
    /// A checkout waited its full `timeout` without getting a connection.
    /// The last connect error, if any, is the [`source`](std::error::Error::source).
    Timeout,
    /// The transaction's connection died; it must be rolled back before the
    /// connection can be used again.
    PendingRollback,
    /// A commit was cut off by a disconnect: the server may or may not have
    /// applied it.
    CommitUnknown,
    /// The connection (or pool) was closed or lost: by `close()`, by the
    /// server, or by an injected fault. Every dialect classifies this as
    /// [`ErrorClass::Disconnect`].
    Closed,
    /// An impossible configuration; [`Error::field`] names the setting.
    Config,
    /// A malformed fault scenario or plan; [`Error::line`] and
    /// [`Error::field`] locate the problem, when known.
    Scenario,
    /// A saved journal that cannot be read back (or written);
    /// [`Error::line`] and [`Error::field`] locate the problem, when known.
    Journal,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Driver => "driver error",
            ErrorKind::Timeout => "timed out",
            ErrorKind::PendingRollback => "transaction pending rollback",
            ErrorKind::CommitUnknown => "commit outcome unknown",
            ErrorKind::Closed => "connection closed",
            ErrorKind::Config => "invalid configuration",
            ErrorKind::Scenario => "invalid fault scenario",
            ErrorKind::Journal => "invalid saved journal",
        })
    }
}

/// What sort of failure a driver error is, as a [`Dialect`](crate::Dialect)
/// classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorClass {
    /// The connection is gone: it must be invalidated, and so must every
    /// connection created before it.
    Disconnect,
    /// Worth retrying: a lock was busy, the server was momentarily unable.
    Transient,
    /// A constraint (unique, foreign key, check, not null) was violated.
    Constraint,
    /// The statement itself is wrong: syntax, missing table, type mismatch.
    Statement,
    /// Anything else.
    Other,
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorClass::Disconnect => "disconnect",
            ErrorClass::Transient => "transient",
            ErrorClass::Constraint => "constraint",
            ErrorClass::Statement => "statement",
            ErrorClass::Other => "other",
        })
    }
}

/// The error of every fallible operation in this crate.
///
/// Build one with the constructors ([`Error::driver`], [`Error::closed`],
/// [`Error::config`], ...) and refine it with the `with_*` methods. Cloning
/// is cheap enough for error paths and shares the source.
#[derive(Clone)]
pub struct Error {
    inner: Box<Inner>,
}

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    class: Option<ErrorClass>,
    code: Option<String>,
    message: String,
    source: Option<SharedError>,
    injected: bool,
    invalidated: bool,
    /// Where a config or scenario error is: see [`Error::line`].
    line: Option<usize>,
    /// See [`Error::field`].
    field: Option<Box<str>>,
}

impl Error {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            inner: Box::new(Inner {
                kind,
                class: None,
                code: None,
                message: message.into(),
                source: None,
                injected: false,
                invalidated: false,
                line: None,
                field: None,
            }),
        }
    }

    /// A driver error with the driver's code (an SQLite extended code name,
    /// an SQLSTATE, a mock's code) and message. Unclassified until a dialect
    /// or [`with_class`](Error::with_class) gives it a class.
    pub fn driver(code: impl Into<String>, message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Driver, message).with_code(code)
    }

    /// The connection is closed or lost. Always a disconnect.
    pub fn closed(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Closed, message).with_class(ErrorClass::Disconnect)
    }

    /// A checkout timed out; `last_connect` is the last connect error the
    /// pool saw while waiting, kept as the source.
    pub fn timeout(message: impl Into<String>, last_connect: Option<Error>) -> Self {
        let mut e = Error::new(ErrorKind::Timeout, message);
        if let Some(cause) = last_connect {
            e.inner.source = Some(Arc::new(cause));
        }
        e
    }

    /// The transaction must be rolled back first.
    pub fn pending_rollback(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::PendingRollback, message)
    }

    /// A commit ended without knowing whether the server applied it; `cause`
    /// is the disconnect that cut it off.
    pub fn commit_unknown(cause: Error) -> Self {
        let mut e = Error::new(
            ErrorKind::CommitUnknown,
            "the connection was lost during commit; the server may have applied it",
        )
        .with_class(ErrorClass::Disconnect);
        e.inner.invalidated = cause.connection_invalidated();
        e.inner.injected = cause.is_injected();
        e.inner.code = cause.inner.code.clone();
        e.inner.source = Some(Arc::new(cause));
        e
    }

    /// An impossible configuration: `field` is the setting, `why` the reason.
    /// The message reads ``"`field`: why"``; [`field`](Error::field)
    /// returns `field`.
    pub fn config(field: &str, why: impl fmt::Display) -> Self {
        let mut e = Error::new(ErrorKind::Config, format!("`{field}`: {why}"));
        e.inner.field = Some(field.into());
        e
    }

    /// A malformed fault scenario: `line` (1-based, when known) and `field`
    /// locate the problem; pass an empty `field` when the problem is not in
    /// one field (a TOML syntax error between keys, a missing file). The
    /// message reads ``"line 3, field `nth`: why"``, leaving out what is not
    /// known; [`line`](Error::line) and [`field`](Error::field) return the
    /// location as data.
    pub fn scenario(line: Option<usize>, field: &str, why: impl fmt::Display) -> Self {
        Error::located(ErrorKind::Scenario, line, field, why)
    }

    /// A saved journal that cannot be read: `line` (1-based, when known)
    /// and `field` (empty when the problem is not in one field) locate the
    /// problem, as for [`scenario`](Error::scenario).
    pub fn journal(line: Option<usize>, field: &str, why: impl fmt::Display) -> Self {
        Error::located(ErrorKind::Journal, line, field, why)
    }

    fn located(kind: ErrorKind, line: Option<usize>, field: &str, why: impl fmt::Display) -> Self {
        let mut at = Vec::new();
        if let Some(line) = line {
            at.push(format!("line {line}"));
        }
        if !field.is_empty() {
            at.push(format!("field `{field}`"));
        }
        let message = if at.is_empty() {
            why.to_string()
        } else {
            format!("{}: {why}", at.join(", "))
        };
        let mut e = Error::new(kind, message);
        e.inner.line = line;
        e.inner.field = (!field.is_empty()).then(|| field.into());
        e
    }

    /// Sets the class explicitly; a dialect will not reclassify the error.
    #[must_use]
    pub fn with_class(mut self, class: ErrorClass) -> Self {
        self.inner.class = Some(class);
        self
    }

    /// Sets the driver's code.
    #[must_use]
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.inner.code = Some(code.into());
        self
    }

    /// Keeps `source` as the underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.inner.source = Some(Arc::new(source));
        self
    }

    /// Marks the error as injected by the fault layer.
    #[must_use]
    pub fn injected(mut self) -> Self {
        self.inner.injected = true;
        self
    }

    /// Marks that the pool invalidated the connection because of this error.
    #[must_use]
    pub fn with_invalidated(mut self, invalidated: bool) -> Self {
        self.inner.invalidated = invalidated;
        self
    }

    /// Prefixes the message with `context` (where the error happened),
    /// keeping kind, class, code and source.
    #[must_use]
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.inner.message = if self.inner.message.is_empty() {
            context.to_string()
        } else {
            format!("{context}: {}", self.inner.message)
        };
        self
    }

    /// Classifies the error with `dialect` unless it already has a class.
    #[must_use]
    pub fn classified_by(mut self, dialect: &dyn crate::Dialect) -> Self {
        if self.inner.class.is_none() {
            self.inner.class = Some(dialect.classify(&self));
        }
        self
    }

    /// What happened.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// What sort of failure this is; [`ErrorClass::Other`] until classified.
    pub fn class(&self) -> ErrorClass {
        self.inner.class.unwrap_or(ErrorClass::Other)
    }

    /// Whether a class was set, by a dialect or explicitly.
    pub fn is_classified(&self) -> bool {
        self.inner.class.is_some()
    }

    /// The driver's code: an SQLite extended result code name such as
    /// `SQLITE_BUSY`, an SQLSTATE such as `57P01`, or a mock's code.
    pub fn code(&self) -> Option<&str> {
        self.inner.code.as_deref()
    }

    /// The message, without kind or code.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// Whether the pool invalidated the connection because of this error
    /// (SQLAlchemy's `connection_invalidated`).
    pub fn connection_invalidated(&self) -> bool {
        self.inner.invalidated
    }

    /// Whether the fault layer injected this error rather than the driver
    /// producing it.
    pub fn is_injected(&self) -> bool {
        self.inner.injected
    }

    /// The 1-based line of a scenario, plan or journal text the error is
    /// on, when known ([`ErrorKind::Scenario`] errors only). Kept by
    /// [`context`](Error::context).
    pub fn line(&self) -> Option<usize> {
        self.inner.line
    }

    /// The field (TOML key, journal column, configuration setting) the
    /// error is about, when known ([`ErrorKind::Scenario`] and
    /// [`ErrorKind::Config`] errors only). Kept by
    /// [`context`](Error::context).
    pub fn field(&self) -> Option<&str> {
        self.inner.field.as_deref()
    }

    /// Whether this is a disconnect (by its class).
    pub fn is_disconnect(&self) -> bool {
        self.class() == ErrorClass::Disconnect
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind)
            .field("class", &self.inner.class)
            .field("code", &self.inner.code)
            .field("message", &self.inner.message);
        if self.inner.injected {
            d.field("injected", &true);
        }
        if self.inner.invalidated {
            d.field("invalidated", &true);
        }
        if let Some(line) = self.inner.line {
            d.field("line", &line);
        }
        if let Some(field) = &self.inner.field {
            d.field("field", field);
        }
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner.kind)?;
        if let Some(code) = &self.inner.code {
            write!(f, " [{code}]")?;
        }
        if self.inner.injected {
            f.write_str(" (injected)")?;
        }
        if !self.inner.message.is_empty() {
            write!(f, ": {}", self.inner.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn display_shows_kind_code_and_message() {
        let e = Error::driver("SQLITE_BUSY", "database is locked");
        assert_eq!(e.to_string(), "driver error [SQLITE_BUSY]: database is locked");
        assert_eq!(e.class(), ErrorClass::Other);
        assert!(!e.is_classified());
    }

    #[test]
    fn timeout_keeps_last_connect_error_as_source() {
        let cause = Error::driver("57P03", "the database system is starting up");
        let e = Error::timeout("no connection within 1s", Some(cause));
        let source = e.source().expect("source kept");
        let source = source.downcast_ref::<Error>().expect("an Error");
        assert_eq!(source.code(), Some("57P03"));
    }

    #[test]
    fn commit_unknown_inherits_disconnect_flags() {
        let cause = Error::closed("server closed the connection")
            .injected()
            .with_invalidated(true);
        let e = Error::commit_unknown(cause);
        assert_eq!(e.kind(), ErrorKind::CommitUnknown);
        assert!(e.is_injected());
        assert!(e.connection_invalidated());
        assert!(e.is_disconnect());
    }

    #[test]
    fn scenario_names_line_and_field() {
        let e = Error::scenario(Some(7), "probability", "must be within 0..=1, got 1.5");
        assert_eq!(e.kind(), ErrorKind::Scenario);
        assert!(e.to_string().contains("line 7"));
        assert!(e.to_string().contains("`probability`"));
        assert_eq!(e.line(), Some(7));
        assert_eq!(e.field(), Some("probability"));
    }

    #[test]
    fn scenario_without_field_or_line_says_only_why() {
        let e = Error::scenario(Some(2), "", "expected `]`");
        assert_eq!(e.message(), "line 2: expected `]`");
        assert_eq!((e.line(), e.field()), (Some(2), None));
        let e = Error::scenario(None, "", "no such scenario");
        assert_eq!(e.message(), "no such scenario");
        assert_eq!((e.line(), e.field()), (None, None));
    }

    #[test]
    fn location_survives_context_and_config_has_a_field() {
        let e = Error::scenario(Some(4), "delay", "too long").context("plan.toml");
        assert_eq!(e.message(), "plan.toml: line 4, field `delay`: too long");
        assert_eq!((e.line(), e.field()), (Some(4), Some("delay")));
        let e = Error::config("size", "must be at least 1");
        assert_eq!(e.kind(), ErrorKind::Config);
        assert_eq!((e.line(), e.field()), (None, Some("size")));
        let e = Error::driver("SQLITE_BUSY", "locked");
        assert_eq!((e.line(), e.field()), (None, None));
    }

    #[test]
    fn error_is_small() {
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }
}
