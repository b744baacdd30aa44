//! `SqliteDialect`: what SQLite's result codes mean.

use crate::{Dialect, Error, ErrorClass, ErrorKind};

/// The code reported by operations on a closed [`SqliteConnection`]: what
/// SQLite itself answers when a closed handle is used.
pub(super) const CLOSED_CODE: &str = "SQLITE_MISUSE";

/// The code of a disconnect the fault layer injects: a code of its own, so
/// an injected disconnect never reads as SQLite's API misuse.
const INJECTED_DISCONNECT_CODE: &str = "DBFAULT_DISCONNECT";

/// The dialect of SQLite: classifies errors by their extended result code
/// name.
///
/// | error | class |
/// | --- | --- |
/// | kind [`ErrorKind::Closed`](crate::ErrorKind::Closed) (use after close, killed connection) | [`Disconnect`](ErrorClass::Disconnect) |
/// | kind other than [`ErrorKind::Driver`](crate::ErrorKind::Driver) (timeout, pending rollback, ...) | [`Other`](ErrorClass::Other) |
/// | `SQLITE_BUSY`, `SQLITE_BUSY_*`, `SQLITE_LOCKED`, `SQLITE_LOCKED_*` | [`Transient`](ErrorClass::Transient) |
/// | `SQLITE_CONSTRAINT`, `SQLITE_CONSTRAINT_*` | [`Constraint`](ErrorClass::Constraint) |
/// | `DBFAULT_DISCONNECT` (an injected disconnect), `SQLITE_MISUSE`, `SQLITE_CANTOPEN`, `SQLITE_CANTOPEN_*`, `SQLITE_READONLY_DBMOVED`, `SQLITE_NOTADB`, `SQLITE_IOERR`, `SQLITE_IOERR_*` (the file is gone or unusable) | [`Disconnect`](ErrorClass::Disconnect) |
/// | any other code, or none (syntax, missing table, `DBFAULT_PARAMETER`, `DBFAULT_TYPE`, ...) | [`Statement`](ErrorClass::Statement) |
///
/// Ping statement: `SELECT 1`. Disconnect code (what the fault layer gives
/// an injected disconnect): `DBFAULT_DISCONNECT`, which SQLite never
/// reports, so a test can tell an injected disconnect from a real one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SqliteDialect;

impl Dialect for SqliteDialect {
    fn name(&self) -> &str {
        "sqlite"
    }

    fn classify(&self, err: &Error) -> ErrorClass {
        match err.kind() {
            ErrorKind::Closed => ErrorClass::Disconnect,
            ErrorKind::Driver => classify_code(err.code().unwrap_or("")),
            _ => ErrorClass::Other,
        }
    }

    fn ping_sql(&self) -> &str {
        "SELECT 1"
    }

    fn disconnect_code(&self) -> Option<&str> {
        Some(INJECTED_DISCONNECT_CODE)
    }
}

/// The class of a driver error with this code.
pub(super) fn classify_code(code: &str) -> ErrorClass {
    let family = |name: &str| {
        code.strip_prefix(name)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('_'))
    };
    if family("SQLITE_BUSY") || family("SQLITE_LOCKED") {
        ErrorClass::Transient
    } else if family("SQLITE_CONSTRAINT") {
        ErrorClass::Constraint
    } else if code == INJECTED_DISCONNECT_CODE
        || code == "SQLITE_MISUSE"
        || code == "SQLITE_READONLY_DBMOVED"
        || code == "SQLITE_NOTADB"
        || family("SQLITE_CANTOPEN")
        || family("SQLITE_IOERR")
    {
        ErrorClass::Disconnect
    } else {
        ErrorClass::Statement
    }
}
