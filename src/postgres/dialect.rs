//! `PgDialect`: what PostgreSQL's SQLSTATEs mean.

use crate::{Dialect, Error, ErrorClass, ErrorKind};

/// The code of a disconnect the fault layer injects into a PostgreSQL
/// connection: `57P01` (admin_shutdown), what a client sees when the
/// server terminates its backend. [`Error::is_injected`] tells an injected
/// one from a real one.
pub(super) const INJECTED_DISCONNECT_CODE: &str = "57P01";

/// The dialect of PostgreSQL: classifies errors by their SQLSTATE, which
/// is their [`code`](Error::code).
///
/// | error | class |
/// | --- | --- |
/// | kind [`ErrorKind::Closed`] (use after close) | [`Disconnect`](ErrorClass::Disconnect) |
/// | kind other than [`ErrorKind::Driver`] (timeout, pending rollback, ...) | [`Other`](ErrorClass::Other) |
/// | class `08` (connection exception), `57P01` admin_shutdown, `57P02` crash_shutdown, `57P03` cannot_connect_now, `57P05` idle_session_timeout, `25P03` idle_in_transaction_session_timeout | [`Disconnect`](ErrorClass::Disconnect) |
/// | `25006` read_only_sql_transaction (see below) | [`Disconnect`](ErrorClass::Disconnect) |
/// | `40001` serialization_failure, `40P01` deadlock_detected, `55P03` lock_not_available | [`Transient`](ErrorClass::Transient) |
/// | class `23` (integrity constraint violation) | [`Constraint`](ErrorClass::Constraint) |
/// | class `42` (syntax error or access rule violation), class `22` (data exception), `25001` active_sql_transaction, `25P01` no_active_sql_transaction, `25P02` in_failed_sql_transaction, `DBFAULT_TYPE`, `DBFAULT_PARAMETER` | [`Statement`](ErrorClass::Statement) |
/// | any other code, or none | [`Other`](ErrorClass::Other) |
///
/// `25006` is a choice: a write refused because the transaction is
/// read-only. In production that is what a client gets after a failover
/// sent its connection to a node that is now a standby (or a primary
/// demoted under it): the connection is alive but points at the wrong
/// server, and no retry on it can succeed. Classifying it as a disconnect
/// makes the pool replace it (and, like any disconnect, every connection
/// opened before it), which is the remedy. A transaction the application
/// itself declared `READ ONLY` gets the same code; there, the error is a
/// bug of the application, and the replacement costs one reconnect.
///
/// The driver's client-side errors carry SQLSTATEs of class `08` too:
/// `08001` when no connection could be opened (refused, unreachable,
/// authentication failed), `08003` when the client's connection is
/// already closed, `08006` when the socket failed during an operation.
///
/// Ping statement: `SELECT 1`. Disconnect code (what the fault layer gives
/// an injected disconnect): `57P01`, as a terminated backend reports it;
/// the error says it is injected ([`Error::is_injected`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PgDialect;

impl Dialect for PgDialect {
    fn name(&self) -> &str {
        "postgresql"
    }

    fn classify(&self, err: &Error) -> ErrorClass {
        match err.kind() {
            ErrorKind::Closed => ErrorClass::Disconnect,
            ErrorKind::Driver => classify_sqlstate(err.code().unwrap_or("")),
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

/// The class of a driver error with this SQLSTATE (or `DBFAULT_*` code).
pub(super) fn classify_sqlstate(code: &str) -> ErrorClass {
    let class = code.get(..2).unwrap_or("");
    match code {
        "57P01" | "57P02" | "57P03" | "57P05" | "25P03" | "25006" => ErrorClass::Disconnect,
        "40001" | "40P01" | "55P03" => ErrorClass::Transient,
        "25001" | "25P01" | "25P02" | "DBFAULT_TYPE" | "DBFAULT_PARAMETER" => ErrorClass::Statement,
        _ if code.len() != 5 => ErrorClass::Other,
        _ => match class {
            "08" => ErrorClass::Disconnect,
            "23" => ErrorClass::Constraint,
            "42" | "22" => ErrorClass::Statement,
            _ => ErrorClass::Other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_by_code() {
        for code in [
            "08000", "08001", "08003", "08006", "08P01", "57P01", "57P02", "57P03", "57P05", "25P03", "25006",
        ] {
            assert_eq!(classify_sqlstate(code), ErrorClass::Disconnect, "{code}");
        }
        for code in ["40001", "40P01", "55P03"] {
            assert_eq!(classify_sqlstate(code), ErrorClass::Transient, "{code}");
        }
        for code in ["23000", "23505", "23503", "23502", "23514", "23P01"] {
            assert_eq!(classify_sqlstate(code), ErrorClass::Constraint, "{code}");
        }
        for code in [
            "42601",
            "42P01",
            "42703",
            "22012",
            "25001",
            "25P01",
            "25P02",
            "DBFAULT_TYPE",
        ] {
            assert_eq!(classify_sqlstate(code), ErrorClass::Statement, "{code}");
        }
        for code in [
            "57P04", "57014", "40003", "53300", "XX000", "", "08", "0800X1", "é8001",
        ] {
            assert_eq!(classify_sqlstate(code), ErrorClass::Other, "{code:?}");
        }
    }

    #[test]
    fn kinds_other_than_driver_are_not_read_by_code() {
        let closed = Error::closed("gone").with_code("42601");
        assert_eq!(PgDialect.classify(&closed), ErrorClass::Disconnect);
        let timeout = Error::timeout("no connection", None).with_code("08001");
        assert_eq!(PgDialect.classify(&timeout), ErrorClass::Other);
        assert_eq!(
            PgDialect.classify(&Error::driver("23505", "dup")),
            ErrorClass::Constraint
        );
    }
}
