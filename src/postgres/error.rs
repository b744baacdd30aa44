//! tokio-postgres's errors (the postgres crate's are the same type) as
//! this crate's: the SQLSTATE as the code, the client's error kept as the
//! source, classified by [`PgDialect`].

use std::error::Error as _;

use crate::{ConnId, Error};

use super::PgDialect;
use super::value::Mismatch;

/// The code of a value that cannot be bound or read.
pub(super) const TYPE_CODE: &str = "DBFAULT_TYPE";

/// No connection could be opened (refused, unreachable, a handshake or
/// authentication the client gave up on).
pub(super) const CONNECT_FAILED: &str = "08001";

/// The client's connection is already closed.
pub(super) const CONNECTION_CLOSED: &str = "08003";

/// The socket failed during an operation.
pub(super) const CONNECTION_FAILURE: &str = "08006";

/// The server sent what the client could not read.
const PROTOCOL_VIOLATION: &str = "08P01";

/// A client error no other code fits (class [`Other`](crate::ErrorClass::Other)).
const OTHER_CODE: &str = "DBFAULT_POSTGRES";

/// Where an error happened: opening the connection, or an operation on
/// an open one (client-side failures get a different code in each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Connect,
    Operation,
}

/// A tokio-postgres error as this crate's error: the server's SQLSTATE
/// and message (with its detail and hint) when the server sent one; else
/// a code for what failed on the client's side (see [`PgDialect`]).
#[cold]
pub(super) fn from_pg(err: tokio_postgres::Error, phase: Phase) -> Error {
    let (code, message) = describe(&err, phase);
    Error::driver(code, message)
        .with_source(err)
        .classified_by(&PgDialect)
}

/// The warning the server sent just before it closed the connection
/// (`57P02`: another backend crashed), as the error of the close the client
/// then met (`closed`, kept as the source).
#[cold]
pub(super) fn from_warning(warning: &tokio_postgres::error::DbError, closed: tokio_postgres::Error) -> Error {
    Error::driver(warning.code().code(), warning.to_string())
        .with_source(closed)
        .classified_by(&PgDialect)
}

/// The code and message of `err`.
fn describe(err: &tokio_postgres::Error, phase: Phase) -> (String, String) {
    if let Some(db) = err.as_db_error() {
        return (db.code().code().to_owned(), db.to_string());
    }
    let source = err.source();
    if let Some(mismatch) = source.and_then(|s| s.downcast_ref::<Mismatch>()) {
        return (TYPE_CODE.to_owned(), mismatch.to_string());
    }
    let message = match source {
        Some(source) => format!("{err}: {source}"),
        None => err.to_string(),
    };
    let io = source.is_some_and(|s| s.is::<std::io::Error>());
    let code = if err.is_closed() {
        CONNECTION_CLOSED
    } else if phase == Phase::Connect {
        CONNECT_FAILED
    } else if io {
        CONNECTION_FAILURE
    } else if message.starts_with("unexpected message from server")
        || message.starts_with("error parsing response from server")
    {
        PROTOCOL_VIOLATION
    } else {
        OTHER_CODE
    };
    (code.to_owned(), message)
}

/// An operation on a connection its owner closed.
#[cold]
pub(super) fn closed(id: ConnId) -> Error {
    Error::closed(format!("connection {id} is closed")).with_code(CONNECTION_CLOSED)
}

/// An operation on a connection a disconnect killed: kind
/// [`Closed`](crate::ErrorKind::Closed), the code of that disconnect.
#[cold]
pub(super) fn dead(id: ConnId, cause: &Error) -> Error {
    let err = Error::closed(format!("connection {id} is dead after a disconnect: {cause}"));
    match cause.code() {
        Some(code) => err.with_code(code),
        None => err,
    }
}

/// `BEGIN` while a transaction is open: PostgreSQL only warns
/// (`25001`), this driver refuses it, as the [`Connection`](crate::Connection)
/// contract says.
#[cold]
pub(super) fn already_open(id: ConnId) -> Error {
    Error::driver(
        "25001",
        format!("connection {id}: a transaction is already open (active_sql_transaction)"),
    )
    .classified_by(&PgDialect)
}

/// `COMMIT` with no transaction open: PostgreSQL only warns (`25P01`).
#[cold]
pub(super) fn none_open(id: ConnId) -> Error {
    Error::driver(
        "25P01",
        format!("connection {id}: no transaction is open (no_active_sql_transaction)"),
    )
    .classified_by(&PgDialect)
}

/// `COMMIT` of a transaction an earlier error aborted: PostgreSQL ends
/// it with a rollback and answers `ROLLBACK`; this driver reports it.
#[cold]
pub(super) fn rolled_back(id: ConnId) -> Error {
    Error::driver(
        "25P02",
        format!(
            "connection {id}: the commit rolled the transaction back: an earlier statement failed in it \
             (in_failed_sql_transaction)"
        ),
    )
    .classified_by(&PgDialect)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorClass, ErrorKind};

    #[test]
    fn the_driver_refusals_are_statement_errors_with_sqlstates() {
        let id = ConnId(4);
        for (err, code) in [
            (already_open(id), "25001"),
            (none_open(id), "25P01"),
            (rolled_back(id), "25P02"),
        ] {
            assert_eq!(err.code(), Some(code));
            assert_eq!(err.class(), ErrorClass::Statement, "{err}");
            assert!(err.message().contains("c4"), "{err}");
        }
    }

    #[test]
    fn closed_and_dead_are_disconnects_with_a_code() {
        let err = closed(ConnId(1));
        assert_eq!((err.kind(), err.code()), (ErrorKind::Closed, Some("08003")));
        assert!(err.is_disconnect());
        let cause = Error::driver("57P01", "terminating connection due to administrator command")
            .classified_by(&PgDialect);
        let err = dead(ConnId(1), &cause);
        assert_eq!((err.kind(), err.code()), (ErrorKind::Closed, Some("57P01")));
        assert!(err.message().contains("administrator command"), "{err}");
    }
}
