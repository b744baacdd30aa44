//! `SqliteDriver` and `SqliteConnection`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::OpenFlags;

use crate::{ConnId, Connection, Dialect, Driver, Error, Result, Row, RowRef, Value};

use super::dialect::*;
use super::error::*;
use super::row::*;

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
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) if `path` is empty or `:memory:`: either would
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
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) if `name` is empty; a classified driver error
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
/// [`ErrorKind::Closed`](crate::ErrorKind::Closed) and the code of that disconnect. After `close`,
/// every operation but `close` fails with [`ErrorKind::Closed`](crate::ErrorKind::Closed) and code
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

    /// Closed, or lost to a disconnect-class error.
    fn is_broken(&self) -> bool {
        self.conn.is_none() || self.dead.is_some()
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

/// The flags every connection opens with: read-write, create, URI names, no
/// per-connection mutex (a connection is used by one thread at a time).
pub(super) fn open_flags() -> OpenFlags {
    OpenFlags::default()
}

/// `file:{name}?mode=memory&cache=shared`, with every byte of `name` that is
/// not unreserved in a URI percent-encoded (SQLite decodes `%HH`).
pub(super) fn memory_uri(name: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
