//! rusqlite's errors as this crate's: SQLite's code names, kept source.

use std::borrow::Cow;
use std::ffi::c_int;

use rusqlite::ffi;

use crate::Error;

use super::dialect::*;

/// A rusqlite error as this crate's error: its code, its message, itself as
/// the source, classified by [`SqliteDialect`].
#[cold]
pub(super) fn from_rusqlite(err: rusqlite::Error) -> Error {
    let code = error_code(&err);
    let message = err.to_string();
    Error::driver(code, message)
        .with_source(err)
        .classified_by(&SqliteDialect)
}

/// [`from_rusqlite`] for an error of opening a connection, where a NUL byte
/// can only come from the path.
pub(super) fn from_open_error(err: rusqlite::Error) -> Error {
    if matches!(err, rusqlite::Error::NulError(_)) {
        let message = format!("the database path contains a NUL byte: {err}");
        return Error::driver("DBFAULT_PATH", message)
            .with_source(err)
            .classified_by(&SqliteDialect);
    }
    from_rusqlite(err)
}

/// The code of a rusqlite error: SQLite's extended result code name, or a
/// `DBFAULT_*` code for errors rusqlite raises itself.
pub(super) fn error_code(err: &rusqlite::Error) -> Cow<'static, str> {
    use rusqlite::Error as E;
    match err {
        E::SqliteFailure(e, _) | E::SqlInputError { error: e, .. } => code_name(e.extended_code),
        E::InvalidParameterCount(..) | E::InvalidParameterName(_) => Cow::Borrowed("DBFAULT_PARAMETER"),
        E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..)
        | E::InvalidColumnType(..)
        | E::ToSqlConversionFailure(_)
        | E::Utf8Error(..) => Cow::Borrowed("DBFAULT_TYPE"),
        E::NulError(_) | E::MultipleStatement | E::ExecuteReturnedResults | E::InvalidQuery => {
            Cow::Borrowed("DBFAULT_SQL")
        }
        E::InvalidPath(_) => Cow::Borrowed("DBFAULT_PATH"),
        // `Error::Empty` from rusqlite 0.41 on, named by its text so the
        // crate builds with 0.40 too, which has no such variant.
        _ if err.to_string() == "SQL is empty or comment only" => Cow::Borrowed("DBFAULT_SQL"),
        _ => Cow::Borrowed("DBFAULT_RUSQLITE"),
    }
}

/// The name of an SQLite (extended) result code: `SQLITE_CONSTRAINT_UNIQUE`
/// for 2067. An extended code without a name here is its primary code's
/// name and the number (`SQLITE_IOERR_99999`); a code without even a
/// primary name is `SQLITE_UNKNOWN_<n>`.
pub(super) fn code_name(code: c_int) -> Cow<'static, str> {
    if let Some(name) = extended_name(code) {
        return Cow::Borrowed(name);
    }
    match primary_name(code & 0xff) {
        Some(primary) => Cow::Owned(format!("{primary}_{code}")),
        None => Cow::Owned(format!("SQLITE_UNKNOWN_{code}")),
    }
}

pub(super) fn primary_name(code: c_int) -> Option<&'static str> {
    Some(match code {
        ffi::SQLITE_OK => "SQLITE_OK",
        ffi::SQLITE_ERROR => "SQLITE_ERROR",
        ffi::SQLITE_INTERNAL => "SQLITE_INTERNAL",
        ffi::SQLITE_PERM => "SQLITE_PERM",
        ffi::SQLITE_ABORT => "SQLITE_ABORT",
        ffi::SQLITE_BUSY => "SQLITE_BUSY",
        ffi::SQLITE_LOCKED => "SQLITE_LOCKED",
        ffi::SQLITE_NOMEM => "SQLITE_NOMEM",
        ffi::SQLITE_READONLY => "SQLITE_READONLY",
        ffi::SQLITE_INTERRUPT => "SQLITE_INTERRUPT",
        ffi::SQLITE_IOERR => "SQLITE_IOERR",
        ffi::SQLITE_CORRUPT => "SQLITE_CORRUPT",
        ffi::SQLITE_NOTFOUND => "SQLITE_NOTFOUND",
        ffi::SQLITE_FULL => "SQLITE_FULL",
        ffi::SQLITE_CANTOPEN => "SQLITE_CANTOPEN",
        ffi::SQLITE_PROTOCOL => "SQLITE_PROTOCOL",
        ffi::SQLITE_EMPTY => "SQLITE_EMPTY",
        ffi::SQLITE_SCHEMA => "SQLITE_SCHEMA",
        ffi::SQLITE_TOOBIG => "SQLITE_TOOBIG",
        ffi::SQLITE_CONSTRAINT => "SQLITE_CONSTRAINT",
        ffi::SQLITE_MISMATCH => "SQLITE_MISMATCH",
        ffi::SQLITE_MISUSE => "SQLITE_MISUSE",
        ffi::SQLITE_NOLFS => "SQLITE_NOLFS",
        ffi::SQLITE_AUTH => "SQLITE_AUTH",
        ffi::SQLITE_FORMAT => "SQLITE_FORMAT",
        ffi::SQLITE_RANGE => "SQLITE_RANGE",
        ffi::SQLITE_NOTADB => "SQLITE_NOTADB",
        ffi::SQLITE_NOTICE => "SQLITE_NOTICE",
        ffi::SQLITE_WARNING => "SQLITE_WARNING",
        ffi::SQLITE_ROW => "SQLITE_ROW",
        ffi::SQLITE_DONE => "SQLITE_DONE",
        _ => return None,
    })
}

pub(super) fn extended_name(code: c_int) -> Option<&'static str> {
    if let Some(name) = primary_name(code) {
        return Some(name);
    }
    Some(match code {
        ffi::SQLITE_ERROR_MISSING_COLLSEQ => "SQLITE_ERROR_MISSING_COLLSEQ",
        ffi::SQLITE_ERROR_RETRY => "SQLITE_ERROR_RETRY",
        ffi::SQLITE_ERROR_SNAPSHOT => "SQLITE_ERROR_SNAPSHOT",
        ffi::SQLITE_IOERR_READ => "SQLITE_IOERR_READ",
        ffi::SQLITE_IOERR_SHORT_READ => "SQLITE_IOERR_SHORT_READ",
        ffi::SQLITE_IOERR_WRITE => "SQLITE_IOERR_WRITE",
        ffi::SQLITE_IOERR_FSYNC => "SQLITE_IOERR_FSYNC",
        ffi::SQLITE_IOERR_DIR_FSYNC => "SQLITE_IOERR_DIR_FSYNC",
        ffi::SQLITE_IOERR_TRUNCATE => "SQLITE_IOERR_TRUNCATE",
        ffi::SQLITE_IOERR_FSTAT => "SQLITE_IOERR_FSTAT",
        ffi::SQLITE_IOERR_UNLOCK => "SQLITE_IOERR_UNLOCK",
        ffi::SQLITE_IOERR_RDLOCK => "SQLITE_IOERR_RDLOCK",
        ffi::SQLITE_IOERR_DELETE => "SQLITE_IOERR_DELETE",
        ffi::SQLITE_IOERR_BLOCKED => "SQLITE_IOERR_BLOCKED",
        ffi::SQLITE_IOERR_NOMEM => "SQLITE_IOERR_NOMEM",
        ffi::SQLITE_IOERR_ACCESS => "SQLITE_IOERR_ACCESS",
        ffi::SQLITE_IOERR_CHECKRESERVEDLOCK => "SQLITE_IOERR_CHECKRESERVEDLOCK",
        ffi::SQLITE_IOERR_LOCK => "SQLITE_IOERR_LOCK",
        ffi::SQLITE_IOERR_CLOSE => "SQLITE_IOERR_CLOSE",
        ffi::SQLITE_IOERR_DIR_CLOSE => "SQLITE_IOERR_DIR_CLOSE",
        ffi::SQLITE_IOERR_SHMOPEN => "SQLITE_IOERR_SHMOPEN",
        ffi::SQLITE_IOERR_SHMSIZE => "SQLITE_IOERR_SHMSIZE",
        ffi::SQLITE_IOERR_SHMLOCK => "SQLITE_IOERR_SHMLOCK",
        ffi::SQLITE_IOERR_SHMMAP => "SQLITE_IOERR_SHMMAP",
        ffi::SQLITE_IOERR_SEEK => "SQLITE_IOERR_SEEK",
        ffi::SQLITE_IOERR_DELETE_NOENT => "SQLITE_IOERR_DELETE_NOENT",
        ffi::SQLITE_IOERR_MMAP => "SQLITE_IOERR_MMAP",
        ffi::SQLITE_IOERR_GETTEMPPATH => "SQLITE_IOERR_GETTEMPPATH",
        ffi::SQLITE_IOERR_CONVPATH => "SQLITE_IOERR_CONVPATH",
        ffi::SQLITE_IOERR_VNODE => "SQLITE_IOERR_VNODE",
        ffi::SQLITE_IOERR_AUTH => "SQLITE_IOERR_AUTH",
        ffi::SQLITE_IOERR_BEGIN_ATOMIC => "SQLITE_IOERR_BEGIN_ATOMIC",
        ffi::SQLITE_IOERR_COMMIT_ATOMIC => "SQLITE_IOERR_COMMIT_ATOMIC",
        ffi::SQLITE_IOERR_ROLLBACK_ATOMIC => "SQLITE_IOERR_ROLLBACK_ATOMIC",
        ffi::SQLITE_IOERR_DATA => "SQLITE_IOERR_DATA",
        ffi::SQLITE_IOERR_CORRUPTFS => "SQLITE_IOERR_CORRUPTFS",
        ffi::SQLITE_LOCKED_SHAREDCACHE => "SQLITE_LOCKED_SHAREDCACHE",
        ffi::SQLITE_LOCKED_VTAB => "SQLITE_LOCKED_VTAB",
        ffi::SQLITE_BUSY_RECOVERY => "SQLITE_BUSY_RECOVERY",
        ffi::SQLITE_BUSY_SNAPSHOT => "SQLITE_BUSY_SNAPSHOT",
        ffi::SQLITE_BUSY_TIMEOUT => "SQLITE_BUSY_TIMEOUT",
        ffi::SQLITE_CANTOPEN_NOTEMPDIR => "SQLITE_CANTOPEN_NOTEMPDIR",
        ffi::SQLITE_CANTOPEN_ISDIR => "SQLITE_CANTOPEN_ISDIR",
        ffi::SQLITE_CANTOPEN_FULLPATH => "SQLITE_CANTOPEN_FULLPATH",
        ffi::SQLITE_CANTOPEN_CONVPATH => "SQLITE_CANTOPEN_CONVPATH",
        ffi::SQLITE_CANTOPEN_DIRTYWAL => "SQLITE_CANTOPEN_DIRTYWAL",
        ffi::SQLITE_CANTOPEN_SYMLINK => "SQLITE_CANTOPEN_SYMLINK",
        ffi::SQLITE_CORRUPT_VTAB => "SQLITE_CORRUPT_VTAB",
        ffi::SQLITE_CORRUPT_SEQUENCE => "SQLITE_CORRUPT_SEQUENCE",
        ffi::SQLITE_CORRUPT_INDEX => "SQLITE_CORRUPT_INDEX",
        ffi::SQLITE_READONLY_RECOVERY => "SQLITE_READONLY_RECOVERY",
        ffi::SQLITE_READONLY_CANTLOCK => "SQLITE_READONLY_CANTLOCK",
        ffi::SQLITE_READONLY_ROLLBACK => "SQLITE_READONLY_ROLLBACK",
        ffi::SQLITE_READONLY_DBMOVED => "SQLITE_READONLY_DBMOVED",
        ffi::SQLITE_READONLY_CANTINIT => "SQLITE_READONLY_CANTINIT",
        ffi::SQLITE_READONLY_DIRECTORY => "SQLITE_READONLY_DIRECTORY",
        ffi::SQLITE_ABORT_ROLLBACK => "SQLITE_ABORT_ROLLBACK",
        ffi::SQLITE_CONSTRAINT_CHECK => "SQLITE_CONSTRAINT_CHECK",
        ffi::SQLITE_CONSTRAINT_COMMITHOOK => "SQLITE_CONSTRAINT_COMMITHOOK",
        ffi::SQLITE_CONSTRAINT_FOREIGNKEY => "SQLITE_CONSTRAINT_FOREIGNKEY",
        ffi::SQLITE_CONSTRAINT_FUNCTION => "SQLITE_CONSTRAINT_FUNCTION",
        ffi::SQLITE_CONSTRAINT_NOTNULL => "SQLITE_CONSTRAINT_NOTNULL",
        ffi::SQLITE_CONSTRAINT_PRIMARYKEY => "SQLITE_CONSTRAINT_PRIMARYKEY",
        ffi::SQLITE_CONSTRAINT_TRIGGER => "SQLITE_CONSTRAINT_TRIGGER",
        ffi::SQLITE_CONSTRAINT_UNIQUE => "SQLITE_CONSTRAINT_UNIQUE",
        ffi::SQLITE_CONSTRAINT_VTAB => "SQLITE_CONSTRAINT_VTAB",
        ffi::SQLITE_CONSTRAINT_ROWID => "SQLITE_CONSTRAINT_ROWID",
        ffi::SQLITE_CONSTRAINT_PINNED => "SQLITE_CONSTRAINT_PINNED",
        ffi::SQLITE_CONSTRAINT_DATATYPE => "SQLITE_CONSTRAINT_DATATYPE",
        ffi::SQLITE_NOTICE_RECOVER_WAL => "SQLITE_NOTICE_RECOVER_WAL",
        ffi::SQLITE_NOTICE_RECOVER_ROLLBACK => "SQLITE_NOTICE_RECOVER_ROLLBACK",
        ffi::SQLITE_WARNING_AUTOINDEX => "SQLITE_WARNING_AUTOINDEX",
        ffi::SQLITE_AUTH_USER => "SQLITE_AUTH_USER",
        ffi::SQLITE_OK_LOAD_PERMANENTLY => "SQLITE_OK_LOAD_PERMANENTLY",
        ffi::SQLITE_OK_SYMLINK => "SQLITE_OK_SYMLINK",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorClass;

    #[test]
    fn primary_codes_have_their_names() {
        assert_eq!(code_name(ffi::SQLITE_ERROR), "SQLITE_ERROR");
        assert_eq!(code_name(ffi::SQLITE_BUSY), "SQLITE_BUSY");
        assert_eq!(code_name(ffi::SQLITE_MISUSE), "SQLITE_MISUSE");
        assert_eq!(code_name(ffi::SQLITE_NOTADB), "SQLITE_NOTADB");
        assert_eq!(code_name(ffi::SQLITE_WARNING), "SQLITE_WARNING");
    }

    #[test]
    fn extended_codes_have_their_names() {
        assert_eq!(
            code_name(ffi::SQLITE_CONSTRAINT_UNIQUE),
            "SQLITE_CONSTRAINT_UNIQUE"
        );
        assert_eq!(code_name(ffi::SQLITE_READONLY_DBMOVED), "SQLITE_READONLY_DBMOVED");
        assert_eq!(
            code_name(ffi::SQLITE_LOCKED_SHAREDCACHE),
            "SQLITE_LOCKED_SHAREDCACHE"
        );
        assert_eq!(code_name(ffi::SQLITE_IOERR_SHORT_READ), "SQLITE_IOERR_SHORT_READ");
        assert_eq!(code_name(ffi::SQLITE_BUSY_SNAPSHOT), "SQLITE_BUSY_SNAPSHOT");
        assert_eq!(code_name(ffi::SQLITE_CANTOPEN_ISDIR), "SQLITE_CANTOPEN_ISDIR");
    }

    #[test]
    fn every_named_code_names_its_own_family() {
        for code in 0..=0xffff {
            if let Some(name) = extended_name(code) {
                let primary = primary_name(code & 0xff).expect("an extended code has a primary name");
                assert!(
                    name.starts_with(primary),
                    "{code}: {name} is not of family {primary}"
                );
            }
        }
    }

    #[test]
    fn unknown_codes_fall_back_to_primary_name_and_number() {
        let unnamed_ioerr = (200 << 8) | ffi::SQLITE_IOERR;
        assert_eq!(code_name(unnamed_ioerr), format!("SQLITE_IOERR_{unnamed_ioerr}"));
        assert_eq!(code_name(99), "SQLITE_UNKNOWN_99");
        assert_eq!(code_name(-1), "SQLITE_UNKNOWN_-1");
    }

    #[test]
    fn families_match_whole_words_only() {
        assert_eq!(classify_code("SQLITE_BUSY"), ErrorClass::Transient);
        assert_eq!(classify_code("SQLITE_BUSY_TIMEOUT"), ErrorClass::Transient);
        assert_eq!(classify_code("SQLITE_BUSYX"), ErrorClass::Statement);
        assert_eq!(classify_code("SQLITE_IOERR_99999"), ErrorClass::Disconnect);
        assert_eq!(classify_code("SQLITE_READONLY"), ErrorClass::Statement);
        assert_eq!(classify_code(""), ErrorClass::Statement);
    }
}
