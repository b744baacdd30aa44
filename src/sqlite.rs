//! The real driver: SQLite through rusqlite, with SQLite compiled in.
//!
//! [`SqliteDriver`] opens [`SqliteConnection`]s to a database file or to a
//! named shared in-memory database; [`SqliteDialect`] classifies SQLite's
//! extended result codes. Every error keeps the `rusqlite::Error` as its
//! [`source`](std::error::Error::source) and reports the SQLite extended
//! result code name (`SQLITE_BUSY`, `SQLITE_CONSTRAINT_UNIQUE`, ...) as its
//! [`code`](Error::code).

use std::borrow::Cow;
use std::ffi::c_int;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};
use rusqlite::{OpenFlags, ffi, params_from_iter};

use crate::row_ref::in_column;
use crate::{
    ConnId, Connection, Dialect, Driver, Error, ErrorClass, ErrorKind, Result, Row, RowRef, RowSource, Value,
};

/// The code reported by operations on a closed [`SqliteConnection`]: what
/// SQLite itself answers when a closed handle is used.
const CLOSED_CODE: &str = "SQLITE_MISUSE";

/// The longest busy timeout SQLite accepts (`int` milliseconds).
const MAX_BUSY_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// Ids of every SQLite connection of the process, whatever its driver.
static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// Opens [`SqliteConnection`]s to one SQLite database: a file
/// ([`open`](SqliteDriver::open)) or a named shared in-memory database
/// ([`memory`](SqliteDriver::memory)).
///
/// Cloning is cheap and shares the database: clones of a memory driver keep
/// the same in-memory database alive.
///
/// Every new connection gets the driver's [busy
/// timeout](SqliteDriver::busy_timeout) (default: none, so a lock conflict
/// fails at once with `SQLITE_BUSY`) and then runs its
/// [`init_sql`](SqliteDriver::init_sql), if any.
#[derive(Clone)]
pub struct SqliteDriver {
    target: Target,
    busy_timeout: Duration,
    init_sql: Option<Arc<str>>,
    dialect: Arc<SqliteDialect>,
}

#[derive(Clone)]
enum Target {
    File(PathBuf),
    Memory {
        name: Arc<str>,
        uri: Arc<str>,
        /// A connection held open for the driver's life, so the shared
        /// in-memory database survives while no pooled connection is open.
        /// Never used; behind a mutex only so the driver is `Sync`.
        _anchor: Arc<Mutex<rusqlite::Connection>>,
    },
}

impl SqliteDriver {
    /// A driver for the database file at `path`, created by the first
    /// connect if it does not exist.
    ///
    /// Nothing is opened here: a path SQLite cannot open (say, in a missing
    /// directory) fails at [`connect`](Driver::connect) with
    /// `SQLITE_CANTOPEN`, classified as a disconnect. A path starting with
    /// `file:` is read as an SQLite URI.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] if `path` is empty or `:memory:`: either would
    /// give every connection its own private database. Use
    /// [`memory`](SqliteDriver::memory) for an in-memory database.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteDriver> {
        let path = path.as_ref();
        if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
            return Err(Error::config(
                "path",
                format!(
                    "{:?} gives every connection a private database; use SqliteDriver::memory(name)",
                    path
                ),
            ));
        }
        Ok(SqliteDriver::with_target(Target::File(path.to_owned())))
    }

    /// A driver for the shared in-memory database called `name`
    /// (URI `file:{name}?mode=memory&cache=shared`).
    ///
    /// The database lives as long as the driver (and its clones): the driver
    /// keeps one connection of its own open, so the data survives while no
    /// pooled connection is open, and is gone once the driver and every
    /// connection are dropped. All connections of the driver see the same
    /// data. Two drivers with different names have separate databases; two
    /// live drivers with the same name in one process share one.
    ///
    /// Connections of a shared-cache database lock tables, not the file: a
    /// conflict fails with `SQLITE_LOCKED_SHAREDCACHE` (transient), which
    /// the busy timeout does not wait for.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] if `name` is empty; a classified driver error
    /// if SQLite cannot open the database.
    pub fn memory(name: &str) -> Result<SqliteDriver> {
        if name.is_empty() {
            return Err(Error::config("name", "an in-memory database needs a name"));
        }
        let uri = memory_uri(name);
        let anchor = rusqlite::Connection::open_with_flags(&uri, open_flags()).map_err(from_rusqlite)?;
        Ok(SqliteDriver::with_target(Target::Memory {
            name: name.into(),
            uri: uri.into(),
            _anchor: Arc::new(Mutex::new(anchor)),
        }))
    }

    fn with_target(target: Target) -> SqliteDriver {
        SqliteDriver {
            target,
            busy_timeout: Duration::ZERO,
            init_sql: None,
            dialect: Arc::new(SqliteDialect),
        }
    }

    /// How long a connection waits for a lock held by another connection
    /// before failing with `SQLITE_BUSY`. SQLite counts whole milliseconds;
    /// longer than `i32::MAX` milliseconds is capped there.
    ///
    /// Applies to connections opened after this call.
    ///
    /// Default: zero: no waiting, a lock conflict fails at once, so tests
    /// are deterministic (rusqlite's own default of 5 s is overridden).
    #[must_use]
    pub fn busy_timeout(mut self, timeout: Duration) -> SqliteDriver {
        self.busy_timeout = timeout.min(MAX_BUSY_TIMEOUT);
        self
    }

    /// SQL (one or more `;`-separated statements) run on every new
    /// connection before `connect` returns it, e.g.
    /// `PRAGMA foreign_keys = ON`. If it fails, `connect` fails with its
    /// error and the connection is closed.
    ///
    /// Default: none.
    #[must_use]
    pub fn init_sql(mut self, sql: &str) -> SqliteDriver {
        self.init_sql = Some(sql.into());
        self
    }

    /// The target SQLite opens: the file path, or the in-memory URI.
    fn target_path(&self) -> &Path {
        match &self.target {
            Target::File(path) => path,
            Target::Memory { uri, .. } => Path::new(&**uri),
        }
    }

    fn open_connection(&self) -> Result<rusqlite::Connection> {
        let conn = rusqlite::Connection::open_with_flags(self.target_path(), open_flags())
            .map_err(from_open_error)?;
        conn.busy_timeout(self.busy_timeout).map_err(from_rusqlite)?;
        if let Some(sql) = &self.init_sql {
            conn.execute_batch(sql).map_err(from_rusqlite)?;
        }
        Ok(conn)
    }
}

impl fmt::Debug for SqliteDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SqliteDriver");
        match &self.target {
            Target::File(path) => d.field("path", path),
            Target::Memory { name, .. } => d.field("memory", name),
        };
        d.field("busy_timeout", &self.busy_timeout)
            .field("init_sql", &self.init_sql)
            .finish()
    }
}

impl Driver for SqliteDriver {
    type Connection = SqliteConnection;

    /// Opens a connection. Blocks on the file system.
    fn connect(&self) -> Result<SqliteConnection> {
        let conn = self.open_connection()?;
        Ok(SqliteConnection {
            id: ConnId(NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed)),
            conn: Some(conn),
            dead: None,
            columns: ColumnNames::default(),
        })
    }

    fn dialect(&self) -> Arc<dyn Dialect> {
        self.dialect.clone()
    }
}

/// One connection of a [`SqliteDriver`].
///
/// Statements are prepared through rusqlite's statement cache, so a
/// repeated statement is prepared once. `begin` issues `BEGIN` (deferred),
/// `commit` `COMMIT`, `rollback` `ROLLBACK` when a transaction is open;
/// [`in_transaction`](Connection::in_transaction) asks SQLite, so it reports
/// the real state: after a `COMMIT` refused with `SQLITE_BUSY` the
/// transaction is still open and must be rolled back, and a transaction
/// opened with `execute("BEGIN IMMEDIATE")` counts too.
///
/// Once an operation failed with a disconnect (see [`SqliteDialect`]), the
/// connection is dead: every later operation but `close` fails with
/// [`ErrorKind::Closed`] and the code of that disconnect. After `close`,
/// every operation but `close` fails with [`ErrorKind::Closed`] and code
/// `SQLITE_MISUSE`.
pub struct SqliteConnection {
    id: ConnId,
    /// `None` once closed.
    conn: Option<rusqlite::Connection>,
    /// The code of the disconnect that killed the connection.
    dead: Option<String>,
    /// Column-name lists of recent results, for their rows to share.
    columns: ColumnNames,
}

impl SqliteConnection {
    /// The open rusqlite connection, or the error an operation on a closed
    /// or dead connection reports.
    fn live(&self) -> Result<&rusqlite::Connection> {
        match (&self.conn, &self.dead) {
            (None, _) => {
                Err(Error::closed(format!("connection {} is closed", self.id)).with_code(CLOSED_CODE))
            }
            (Some(_), Some(code)) => Err(Error::closed(format!(
                "connection {} is dead after a disconnect ({code})",
                self.id
            ))
            .with_code(code.clone())),
            (Some(conn), None) => Ok(conn),
        }
    }

    /// [`live`](SqliteConnection::live), with the column-name lists that
    /// [`query`] keeps.
    #[inline]
    fn live_with_names(&mut self) -> Result<(&rusqlite::Connection, &mut ColumnNames)> {
        if self.dead.is_none() {
            if let Some(conn) = &self.conn {
                return Ok((conn, &mut self.columns));
            }
        }
        Err(self.not_live())
    }

    #[cold]
    fn not_live(&self) -> Error {
        self.live().expect_err("a connection that is closed or dead")
    }

    /// Records a disconnect: the connection is dead from now on.
    #[inline]
    fn check<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(err) = &result {
            self.failed(err);
        }
        result
    }

    #[cold]
    fn failed(&mut self, err: &Error) {
        if err.is_disconnect() && self.dead.is_none() {
            self.dead = Some(err.code().unwrap_or(CLOSED_CODE).to_owned());
        }
    }

    /// Runs one statement of no parameters (transaction control).
    fn run(&mut self, sql: &str) -> Result<()> {
        let result = self
            .live_with_names()
            .and_then(|(conn, names)| execute(conn, names, sql, &[]).map(drop));
        self.check(result)
    }
}

impl fmt::Debug for SqliteConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteConnection")
            .field("id", &self.id)
            .field("closed", &self.conn.is_none())
            .field("dead", &self.dead)
            .field("in_transaction", &self.in_transaction())
            .finish()
    }
}

impl Connection for SqliteConnection {
    fn id(&self) -> ConnId {
        self.id
    }

    /// Runs one statement. A statement that returns rows (a `PRAGMA`,
    /// `INSERT ... RETURNING`) is run to completion and its rows discarded;
    /// the count is then the rows it changed (0 for a read-only statement).
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        let result = self
            .live_with_names()
            .and_then(|(conn, names)| execute(conn, names, sql, params));
        self.check(result)
    }

    /// Runs one statement and collects its rows; the rows share one list of
    /// column names.
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let result = self
            .live_with_names()
            .and_then(|(conn, names)| query(conn, names, sql, params));
        self.check(result)
    }

    /// Steps the statement once: the rows after the first are not read.
    fn query_row(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        let result = self
            .live_with_names()
            .and_then(|(conn, names)| query_first(conn, names, sql, params));
        self.check(result)
    }

    /// Steps the statement once and lends `f` SQLite's row in place: no
    /// [`Row`] is built, and only the columns `f` reads are converted.
    fn query_row_with(&mut self, sql: &str, params: &[Value], f: &mut dyn FnMut(RowRef<'_>)) -> Result<bool> {
        let result = self
            .live_with_names()
            .and_then(|(conn, names)| for_first_row(conn, names, sql, params, |row| f(RowRef::new(&row))));
        self.check(result)
    }

    /// `BEGIN` (deferred: locks are taken by the first read or write).
    fn begin(&mut self) -> Result<()> {
        self.run("BEGIN")
    }

    /// `COMMIT`. When it fails with `SQLITE_BUSY` the transaction stays
    /// open.
    fn commit(&mut self) -> Result<()> {
        self.run("COMMIT")
    }

    /// `ROLLBACK` if a transaction is open, else nothing.
    fn rollback(&mut self) -> Result<()> {
        if self.live()?.is_autocommit() {
            return Ok(());
        }
        self.run("ROLLBACK")
    }

    /// Runs [`SqliteDialect`]'s ping statement, `SELECT 1`.
    fn ping(&mut self) -> Result<()> {
        let result = self
            .live_with_names()
            .and_then(|(conn, names)| query(conn, names, SqliteDialect.ping_sql(), &[]).map(drop));
        self.check(result)
    }

    /// Whether SQLite is outside autocommit mode. False once closed or dead.
    fn in_transaction(&self) -> bool {
        match (&self.conn, &self.dead) {
            (Some(conn), None) => !conn.is_autocommit(),
            _ => false,
        }
    }

    /// Closes the SQLite handle, rolling back an open transaction. If
    /// SQLite refuses to close, the error is returned and the handle is
    /// dropped anyway: the connection counts as closed either way.
    fn close(&mut self) -> Result<()> {
        let Some(conn) = self.conn.take() else {
            return Ok(());
        };
        conn.close().map_err(|(conn, err)| {
            drop(conn);
            from_rusqlite(err)
        })
    }
}

/// The dialect of SQLite: classifies errors by their extended result code
/// name.
///
/// | error | class |
/// | --- | --- |
/// | kind [`ErrorKind::Closed`] (use after close, killed connection) | [`Disconnect`](ErrorClass::Disconnect) |
/// | kind other than [`ErrorKind::Driver`] (timeout, pending rollback, ...) | [`Other`](ErrorClass::Other) |
/// | `SQLITE_BUSY`, `SQLITE_BUSY_*`, `SQLITE_LOCKED`, `SQLITE_LOCKED_*` | [`Transient`](ErrorClass::Transient) |
/// | `SQLITE_CONSTRAINT`, `SQLITE_CONSTRAINT_*` | [`Constraint`](ErrorClass::Constraint) |
/// | `SQLITE_MISUSE`, `SQLITE_CANTOPEN`, `SQLITE_CANTOPEN_*`, `SQLITE_READONLY_DBMOVED`, `SQLITE_NOTADB`, `SQLITE_IOERR`, `SQLITE_IOERR_*` (the file is gone or unusable) | [`Disconnect`](ErrorClass::Disconnect) |
/// | any other code, or none (syntax, missing table, `DBFAULT_PARAMETER`, `DBFAULT_TYPE`, ...) | [`Statement`](ErrorClass::Statement) |
///
/// Ping statement: `SELECT 1`. Disconnect code (what the fault layer gives
/// an injected disconnect): `SQLITE_MISUSE`.
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
        Some(CLOSED_CODE)
    }
}

/// The class of a driver error with this code.
fn classify_code(code: &str) -> ErrorClass {
    let family = |name: &str| {
        code.strip_prefix(name)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('_'))
    };
    if family("SQLITE_BUSY") || family("SQLITE_LOCKED") {
        ErrorClass::Transient
    } else if family("SQLITE_CONSTRAINT") {
        ErrorClass::Constraint
    } else if code == "SQLITE_MISUSE"
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

// ---------------------------------------------------------------------------
// Statements and values.

/// The flags every connection opens with: read-write, create, URI names, no
/// per-connection mutex (a connection is used by one thread at a time).
fn open_flags() -> OpenFlags {
    OpenFlags::default()
}

/// `file:{name}?mode=memory&cache=shared`, with every byte of `name` that is
/// not unreserved in a URI percent-encoded (SQLite decodes `%HH`).
fn memory_uri(name: &str) -> String {
    let mut uri = String::with_capacity(name.len() + 32);
    uri.push_str("file:");
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri.push_str("?mode=memory&cache=shared");
    uri
}

/// A parameter, bound without copying.
struct Param<'a>(&'a Value);

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

fn bind(params: &[Value]) -> impl rusqlite::Params + '_ {
    params_from_iter(params.iter().map(Param))
}

fn execute(conn: &rusqlite::Connection, names: &mut ColumnNames, sql: &str, params: &[Value]) -> Result<u64> {
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

fn query(
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
fn query_first(
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
fn for_rows(
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
fn for_first_row(
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
struct SqliteRow<'r, 's>(&'r rusqlite::Row<'s>);

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
struct ColumnNames {
    recent: Vec<Names>,
}

#[derive(Debug)]
struct Names {
    sql: Box<str>,
    reprepared: i32,
    names: Arc<[String]>,
}

impl ColumnNames {
    /// How many statements are remembered (rusqlite's statement cache
    /// holds 16).
    const KEEP: usize = 16;

    /// `stmt` (the text `sql`) was just taken from the statement cache,
    /// before it is stepped.
    #[inline]
    fn prepared(&mut self, stmt: &rusqlite::Statement<'_>, sql: &str) {
        if stmt.get_status(rusqlite::StatementStatus::Run) == 0 {
            self.forget(sql);
        }
    }

    #[cold]
    fn forget(&mut self, sql: &str) {
        let sql = sql.trim();
        self.recent.retain(|n| &*n.sql != sql);
    }

    /// The column names of `stmt`'s result, once it has produced a row.
    fn of(&mut self, stmt: &rusqlite::Statement<'_>, sql: &str) -> Result<Arc<[String]>> {
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
fn read_names(stmt: &rusqlite::Statement<'_>) -> Result<Arc<[String]>> {
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
fn column_name<'s>(stmt: &'s rusqlite::Statement<'_>, index: usize) -> Option<&'s str> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| stmt.column_name(index).ok()))
        .ok()
        .flatten()
}

/// Column `index`'s value, borrowed; text that is not UTF-8 is an error
/// (code `DBFAULT_TYPE`), never altered.
#[inline]
fn read_value<'r>(row: &'r rusqlite::Row<'_>, index: usize) -> Result<crate::ValueRef<'r>> {
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
fn not_utf8(index: usize, err: std::str::Utf8Error) -> Error {
    Error::conversion(format!("text that is not UTF-8 ({err})"))
        .with_source(rusqlite::Error::Utf8Error(index, err))
}

// ---------------------------------------------------------------------------
// Errors.

/// A rusqlite error as this crate's error: its code, its message, itself as
/// the source, classified by [`SqliteDialect`].
#[cold]
fn from_rusqlite(err: rusqlite::Error) -> Error {
    let code = error_code(&err);
    let message = err.to_string();
    Error::driver(code, message)
        .with_source(err)
        .classified_by(&SqliteDialect)
}

/// [`from_rusqlite`] for an error of opening a connection, where a NUL byte
/// can only come from the path.
fn from_open_error(err: rusqlite::Error) -> Error {
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
fn error_code(err: &rusqlite::Error) -> Cow<'static, str> {
    use rusqlite::Error as E;
    match err {
        E::SqliteFailure(e, _) | E::SqlInputError { error: e, .. } => code_name(e.extended_code),
        E::InvalidParameterCount(..) | E::InvalidParameterName(_) => Cow::Borrowed("DBFAULT_PARAMETER"),
        E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..)
        | E::InvalidColumnType(..)
        | E::ToSqlConversionFailure(_)
        | E::Utf8Error(..) => Cow::Borrowed("DBFAULT_TYPE"),
        E::NulError(_) | E::Empty | E::MultipleStatement | E::ExecuteReturnedResults | E::InvalidQuery => {
            Cow::Borrowed("DBFAULT_SQL")
        }
        E::InvalidPath(_) => Cow::Borrowed("DBFAULT_PATH"),
        _ => Cow::Borrowed("DBFAULT_RUSQLITE"),
    }
}

/// The name of an SQLite (extended) result code: `SQLITE_CONSTRAINT_UNIQUE`
/// for 2067. An extended code without a name here is its primary code's
/// name and the number (`SQLITE_IOERR_99999`); a code without even a
/// primary name is `SQLITE_UNKNOWN_<n>`.
fn code_name(code: c_int) -> Cow<'static, str> {
    if let Some(name) = extended_name(code) {
        return Cow::Borrowed(name);
    }
    match primary_name(code & 0xff) {
        Some(primary) => Cow::Owned(format!("{primary}_{code}")),
        None => Cow::Owned(format!("SQLITE_UNKNOWN_{code}")),
    }
}

fn primary_name(code: c_int) -> Option<&'static str> {
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

fn extended_name(code: c_int) -> Option<&'static str> {
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

    #[test]
    fn memory_uri_escapes_reserved_bytes() {
        assert_eq!(memory_uri("db-1"), "file:db-1?mode=memory&cache=shared");
        assert_eq!(
            memory_uri("a?b&c/é"),
            "file:a%3Fb%26c%2F%C3%A9?mode=memory&cache=shared"
        );
    }

    #[test]
    fn huge_busy_timeout_is_capped_not_a_panic() {
        let driver = SqliteDriver::memory("sqlite-unit-huge-timeout")
            .expect("memory driver")
            .busy_timeout(Duration::MAX);
        let mut conn = driver.connect().expect("connect");
        conn.ping().expect("ping");
    }

    #[test]
    fn repeated_queries_share_column_names_until_a_schema_change_renames_them() {
        let driver = SqliteDriver::memory("sqlite-unit-column-names").expect("memory driver");
        let mut conn = driver.connect().expect("connect");
        conn.execute("CREATE TABLE t (a INTEGER, b TEXT)", &[])
            .expect("create");
        conn.execute("INSERT INTO t VALUES (1, 'x')", &[])
            .expect("insert");
        let first = conn.query("SELECT * FROM t", &[]).expect("query");
        let other = conn.query("SELECT b AS c FROM t", &[]).expect("query");
        let again = conn.query("SELECT * FROM t", &[]).expect("query");
        assert_eq!(first[0].columns(), ["a", "b"]);
        assert_eq!(other[0].columns(), ["c"]);
        assert!(std::ptr::eq(first[0].columns(), again[0].columns()));
        conn.execute("ALTER TABLE t RENAME COLUMN b TO renamed", &[])
            .expect("rename");
        let renamed = conn.query("SELECT * FROM t", &[]).expect("query");
        assert_eq!(renamed[0].columns(), ["a", "renamed"]);
        assert_eq!(renamed[0].get("renamed"), Some(&Value::from("x")));
        for _ in 0..2 * ColumnNames::KEEP {
            conn.query("SELECT 1 AS one, 2 AS two", &[]).expect("query");
        }
        assert!(conn.columns.recent.len() <= ColumnNames::KEEP);
    }

    /// The hole a name cache could have: rusqlite evicts a statement, the
    /// schema changes, and the text is prepared anew. The new statement
    /// object is recognised (it has never run) and its names read again,
    /// whether a query, an execute or a `query_row_map` prepares it first.
    #[test]
    fn column_names_are_read_again_for_a_statement_prepared_anew() {
        for first in ["query", "execute", "query_row_map"] {
            let name = format!("sqlite-unit-evicted-{first}");
            let driver = SqliteDriver::memory(&name).expect("memory driver");
            let mut conn = driver.connect().expect("connect");
            conn.execute("CREATE TABLE t (a INTEGER, b TEXT)", &[])
                .expect("create");
            conn.execute("INSERT INTO t VALUES (1, 'x')", &[])
                .expect("insert");
            let before = conn
                .query_row("SELECT * FROM t", &[])
                .expect("query")
                .expect("row");
            assert_eq!(before.columns(), ["a", "b"]);
            // Enough other statements to push it out of rusqlite's cache
            // (run by execute, so they do not push it out of the names').
            for n in 0..40 {
                conn.execute(&format!("SELECT {n} AS n"), &[]).expect("execute");
            }
            let other = driver.connect().expect("connect");
            let mut other = other;
            other
                .execute("ALTER TABLE t RENAME COLUMN b TO renamed", &[])
                .expect("rename");
            match first {
                "execute" => {
                    conn.execute("SELECT * FROM t", &[]).expect("execute");
                }
                "query_row_map" => {
                    let name = conn
                        .query_row_map("SELECT * FROM t", &[], |row| {
                            Ok(row.column_name(1).map(str::to_owned))
                        })
                        .expect("query_row_map");
                    assert_eq!(name, Some(Some("renamed".to_owned())));
                }
                _ => {}
            }
            let after = conn
                .query_row("SELECT * FROM t", &[])
                .expect("query")
                .expect("row");
            assert_eq!(after.columns(), ["a", "renamed"], "prepared first by {first}");
            // And the next run of the same, now live, statement reuses them.
            let again = conn
                .query_row("SELECT * FROM t", &[])
                .expect("query")
                .expect("row");
            assert!(std::ptr::eq(after.columns(), again.columns()));
        }
    }
}
