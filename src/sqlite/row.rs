//! Statements and rows: binding, running, lending rows in place, and the
//! column-name cache.

use std::sync::Arc;

use rusqlite::params_from_iter;
use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};

use crate::row_ref::in_column;
use crate::{Error, Result, Row, RowSource, Value};

use super::dialect::*;
use super::error::*;

/// A parameter, bound without copying.
pub(super) struct Param<'a>(&'a Value);

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(r) => ValueRef::Real(*r),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

pub(super) fn bind(params: &[Value]) -> impl rusqlite::Params + '_ {
    params_from_iter(params.iter().map(Param))
}

pub(super) fn execute(
    conn: &rusqlite::Connection,
    names: &mut ColumnNames,
    sql: &str,
    params: &[Value],
) -> Result<u64> {
    let mut run = || -> rusqlite::Result<u64> {
        let mut stmt = conn.prepare_cached(sql)?;
        names.prepared(&stmt, sql);
        if stmt.column_count() == 0 {
            let changed = stmt.execute(bind(params))?;
            return Ok(u64::try_from(changed).unwrap_or(u64::MAX));
        }
        let readonly = stmt.readonly();
        let mut rows = stmt.query(bind(params))?;
        while rows.next()?.is_some() {}
        Ok(if readonly { 0 } else { conn.changes() })
    };
    run().map_err(from_rusqlite)
}

pub(super) fn query(
    conn: &rusqlite::Connection,
    names: &mut ColumnNames,
    sql: &str,
    params: &[Value],
) -> Result<Vec<Row>> {
    let mut out = Vec::new();
    for_rows(conn, names, sql, params, usize::MAX, |row| out.push(row))?;
    Ok(out)
}

/// The first row of a query; the rest are not read.
pub(super) fn query_first(
    conn: &rusqlite::Connection,
    names: &mut ColumnNames,
    sql: &str,
    params: &[Value],
) -> Result<Option<Row>> {
    let mut first = None;
    for_rows(conn, names, sql, params, 1, |row| first = Some(row))?;
    Ok(first)
}

/// Runs a query and hands at most `limit` rows to `sink`; the rest are
/// not read.
pub(super) fn for_rows(
    conn: &rusqlite::Connection,
    names: &mut ColumnNames,
    sql: &str,
    params: &[Value],
    limit: usize,
    mut sink: impl FnMut(Row),
) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql).map_err(from_rusqlite)?;
    names.prepared(&stmt, sql);
    let mut rows = stmt.query(bind(params)).map_err(from_rusqlite)?;
    let mut columns = None;
    let mut taken = 0;
    while taken < limit {
        let Some(row) = rows.next().map_err(from_rusqlite)? else {
            break;
        };
        // Read once a row is there: SQLite re-prepares a cached statement
        // after a schema change when it is stepped, so only then does it
        // report the columns the rows have.
        if columns.is_none() {
            columns = Some(names.of(row.as_ref(), sql)?);
        }
        let columns = columns.as_ref().expect("read above");
        let mut values = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            let value = read_value(row, i).map_err(|err| in_column(err, i, Some(&columns[i])))?;
            values.push(value.to_value());
        }
        sink(Row::new(Arc::clone(columns), values));
        taken += 1;
    }
    Ok(())
}

/// Runs a query and lends its first row, if any, to `f`; the rest are not
/// read. Returns whether there was a row.
pub(super) fn for_first_row(
    conn: &rusqlite::Connection,
    names: &mut ColumnNames,
    sql: &str,
    params: &[Value],
    f: impl FnOnce(SqliteRow<'_, '_>),
) -> Result<bool> {
    let run = || -> rusqlite::Result<bool> {
        let mut stmt = conn.prepare_cached(sql)?;
        names.prepared(&stmt, sql);
        let mut rows = stmt.query(bind(params))?;
        let Some(row) = rows.next()? else {
            return Ok(false);
        };
        f(SqliteRow(row));
        Ok(true)
    };
    run().map_err(from_rusqlite)
}

/// The row an SQLite statement is on, read in place: names from the
/// statement, values converted only when asked for.
pub(super) struct SqliteRow<'r, 's>(&'r rusqlite::Row<'s>);

impl RowSource for SqliteRow<'_, '_> {
    fn column_count(&self) -> usize {
        self.0.as_ref().column_count()
    }

    /// `None` also for a name that is not UTF-8.
    fn column_name(&self, index: usize) -> Option<&str> {
        column_name(self.0.as_ref(), index)
    }

    fn value(&self, index: usize) -> Result<crate::ValueRef<'_>> {
        read_value(self.0, index)
    }
}

/// The column names of a connection's recent statements, so that a
/// repeated query neither reads its names from SQLite again nor allocates
/// them: its rows share one list.
///
/// A list belongs to one prepared statement object and is trusted only
/// while SQLite's counters show that object unchanged:
///
/// - a statement object that has never completed a run (SQLite's run
///   count is 0 when it comes out of rusqlite's statement cache) is a new
///   one — rusqlite evicted and prepared the text anew — so the list for
///   that text is dropped, whichever path (query or execute) runs it;
/// - a schema change re-prepares a live statement when it is stepped
///   (`ALTER TABLE ... RENAME COLUMN`, from this connection or another),
///   which raises its re-prepare count: the names are read again.
///
/// Lists are keyed as rusqlite keys its statement cache, by the trimmed
/// text, so texts differing only in surrounding whitespace share one
/// statement and one list. Every statement of a connection goes through
/// `execute`, `for_rows` or `for_first_row`, each of which reports it to
/// [`prepared`](ColumnNames::prepared), so no new statement object goes
/// unseen. Rows are exactly what they would be without the cache.
#[derive(Debug, Default)]
pub(super) struct ColumnNames {
    pub(super) recent: Vec<Names>,
}

#[derive(Debug)]
pub(super) struct Names {
    sql: Box<str>,
    reprepared: i32,
    names: Arc<[String]>,
}

impl ColumnNames {
    /// How many statements are remembered (rusqlite's statement cache
    /// holds 16).
    pub(super) const KEEP: usize = 16;

    /// `stmt` (the text `sql`) was just taken from the statement cache,
    /// before it is stepped.
    #[inline]
    pub(super) fn prepared(&mut self, stmt: &rusqlite::Statement<'_>, sql: &str) {
        if stmt.get_status(rusqlite::StatementStatus::Run) == 0 {
            self.forget(sql);
        }
    }

    #[cold]
    pub(super) fn forget(&mut self, sql: &str) {
        let sql = sql.trim();
        self.recent.retain(|n| &*n.sql != sql);
    }

    /// The column names of `stmt`'s result, once it has produced a row.
    pub(super) fn of(&mut self, stmt: &rusqlite::Statement<'_>, sql: &str) -> Result<Arc<[String]>> {
        let sql = sql.trim();
        let reprepared = stmt.get_status(rusqlite::StatementStatus::RePrepare);
        if let Some(i) = self.recent.iter().position(|n| &*n.sql == sql) {
            let known = &mut self.recent[i];
            if known.reprepared != reprepared {
                known.reprepared = reprepared;
                let read = read_names(stmt)?;
                if *read != *known.names {
                    known.names = read;
                }
            }
            let names = Arc::clone(&known.names);
            self.recent[..=i].rotate_right(1);
            return Ok(names);
        }
        let names = read_names(stmt)?;
        self.recent.truncate(Self::KEEP - 1);
        self.recent.insert(
            0,
            Names {
                sql: sql.into(),
                reprepared,
                names: Arc::clone(&names),
            },
        );
        Ok(names)
    }
}

/// The names of `stmt`'s columns.
///
/// # Errors
///
/// A name that is not UTF-8 (a schema written in another encoding):
/// code `DBFAULT_SQL`, class `Statement`.
pub(super) fn read_names(stmt: &rusqlite::Statement<'_>) -> Result<Arc<[String]>> {
    (0..stmt.column_count())
        .map(|i| match column_name(stmt, i) {
            Some(name) => Ok(name.to_owned()),
            // Below the column count, a missing name is one not UTF-8.
            None => Err(
                Error::driver("DBFAULT_SQL", format!("the name of column {i} is not UTF-8"))
                    .classified_by(&SqliteDialect),
            ),
        })
        .collect()
}

/// The name of column `index` of `stmt`: `None` when out of range or not
/// UTF-8.
///
/// rusqlite panics on a name that is not UTF-8 rather than returning an
/// error, and this crate reads names without `unsafe`, so the panic is
/// caught here (the panic hook still reports it).
pub(super) fn column_name<'s>(stmt: &'s rusqlite::Statement<'_>, index: usize) -> Option<&'s str> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| stmt.column_name(index).ok()))
        .ok()
        .flatten()
}

/// Column `index`'s value, borrowed; text that is not UTF-8 is an error
/// (code `DBFAULT_TYPE`), never altered.
#[inline]
pub(super) fn read_value<'r>(row: &'r rusqlite::Row<'_>, index: usize) -> Result<crate::ValueRef<'r>> {
    Ok(match row.get_ref(index).map_err(from_rusqlite)? {
        ValueRef::Null => crate::ValueRef::Null,
        ValueRef::Integer(i) => crate::ValueRef::Integer(i),
        ValueRef::Real(r) => crate::ValueRef::Real(r),
        ValueRef::Text(bytes) => {
            crate::ValueRef::Text(std::str::from_utf8(bytes).map_err(|e| not_utf8(index, e))?)
        }
        ValueRef::Blob(bytes) => crate::ValueRef::Blob(bytes),
    })
}

/// Column `index`'s text is not UTF-8: rusqlite's error as the source, as
/// for every error of this driver.
#[cold]
pub(super) fn not_utf8(index: usize, err: std::str::Utf8Error) -> Error {
    Error::conversion(format!("text that is not UTF-8 ({err})"))
        .with_source(rusqlite::Error::Utf8Error(index, err))
}
