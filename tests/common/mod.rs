//! The one harness of dbfault's integration tests: a test is one generic
//! body per behaviour, run through every driver (and shell) it applies to.
//!
//! This module holds what every runner shares:
//!
//! - [`Kind`], which drivers exist: the mock and SQLite, and their async
//!   forms (`AsyncMockDriver`, `Blocking<SqliteDriver>`); with feature
//!   `postgres`, PostgreSQL too (`PgDriver`, `AsyncPgDriver`);
//! - [`Backend`], a fresh database and the view of its data from behind
//!   every layer: the fixture database (`dbfault::testing::fresh_database`),
//!   a fresh `MockServer`, or a fresh schema on the tests' PostgreSQL
//!   ([`pg`]: found by `pg_url`, which skips or, with `CI=true`, fails
//!   when there is none);
//! - [`with_driver!`], the one place a `Kind` becomes a driver over a fresh
//!   backend;
//! - [`Synced`], an async driver presented as a sync one, so that a sync
//!   body runs over the async drivers too.
//!
//! The runners, by concern:
//!
//! - [`shells`]: pool and engine bodies, run by [`on!`] through both
//!   shells (threads on a manual clock, tokio on a paused clock) over both
//!   backends, under the fault layer;
//! - [`fault`]: the fault layer's bodies, run by [`check!`] through the
//!   sync and the async fault layer over both backends;
//! - [`driver`]: the driver contract, run by [`contract!`] over every
//!   `Kind`, bare and under the fault layer.
//!
//! Beside them, [`managers`]: r2d2, bb8 and deadpool managers of plain
//! rusqlite connections, as a user writes them.
//!
//! Each test binary uses a different subset of these helpers.
#![allow(dead_code, unreachable_pub, unused_imports, unused_macros)]

pub mod driver;
pub mod fault;
#[cfg(feature = "sqlite")]
pub mod managers;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod shells;
mod synced;

use dbfault::{ConnId, Connection, Dialect, Driver, MockDriver, MockServer, Op, SqliteDriver, Value};

pub use fault::{
    Conn, Env, INSERT, Layer, LayerConnection, REACH, Worker, appended, insert, released_by_kill, run_op,
};
pub use shells::{H, Joiner, Shell, TestConn, TestEngine, TestEngineConn, TestPool, TestTx, counts};
pub use synced::{Synced, SyncedConnection};

/// Which driver a body runs over: a backend (mock or SQLite) in its sync
/// or its async form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `SqliteDriver`.
    Sqlite,
    /// `MockDriver`.
    Mock,
    /// `Blocking<SqliteDriver>`.
    AsyncSqlite,
    /// `AsyncMockDriver`.
    AsyncMock,
    /// `PgDriver` over a fresh schema of the tests' PostgreSQL (a test of
    /// this kind skips, saying so, in a build without feature `postgres`).
    Postgres,
    /// `AsyncPgDriver` over a fresh schema of the tests' PostgreSQL.
    AsyncPostgres,
}

impl Kind {
    /// Every kind, sync first.
    pub const ALL: [Kind; 4] = [Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock];

    /// Whether this kind can run here: a PostgreSQL kind needs feature
    /// `postgres` and a server ([`pg::pg_url`]); when it cannot, this says
    /// why on stderr (and with `CI=true`, a missing server panics).
    pub fn available(self) -> bool {
        match self {
            Kind::Postgres | Kind::AsyncPostgres => {
                #[cfg(feature = "postgres")]
                return pg::pg_url().is_some();
                #[cfg(not(feature = "postgres"))]
                {
                    eprintln!("skipping this PostgreSQL test: built without feature `postgres`");
                    false
                }
            }
            _ => true,
        }
    }

    /// The same backend in the form `shell` runs: sync on the threaded
    /// shell, async on the tokio one. A pool or engine test names the
    /// backend (`Kind::Mock`, `Kind::Sqlite`) and the shell picks the form.
    pub fn on(self, shell: Shell) -> Kind {
        match (self, shell) {
            (Kind::Postgres | Kind::AsyncPostgres, Shell::Threads) => Kind::Postgres,
            (Kind::Postgres | Kind::AsyncPostgres, Shell::Tokio) => Kind::AsyncPostgres,
            (Kind::Sqlite | Kind::AsyncSqlite, Shell::Threads) => Kind::Sqlite,
            (Kind::Mock | Kind::AsyncMock, Shell::Threads) => Kind::Mock,
            (Kind::Sqlite | Kind::AsyncSqlite, Shell::Tokio) => Kind::AsyncSqlite,
            (Kind::Mock | Kind::AsyncMock, Shell::Tokio) => Kind::AsyncMock,
        }
    }
}

/// Evaluates an expression with a fresh driver of a [`Kind`] and the
/// [`Backend`] behind it: the one place a kind becomes a driver.
///
/// `with_driver!(kind, |driver, backend| sync: expr, async: expr)`: `driver`
/// is a `SqliteDriver`, `MockDriver` or `PgDriver` in `sync`, a
/// `Blocking<SqliteDriver>`, `AsyncMockDriver` or `AsyncPgDriver` in
/// `async`; each expression is instantiated once per driver type, so it
/// may be generic. A runner first asks [`Kind::available`], and returns
/// from its test when the kind cannot run here.
#[macro_export]
macro_rules! with_driver {
    ($kind:expr, |$driver:ident, $backend:ident| sync: $sync:expr, async: $async:expr $(,)?) => {
        match $kind {
            $crate::common::Kind::Sqlite => {
                #[allow(unused_variables)]
                let ($driver, $backend) = $crate::common::Backend::sqlite();
                $sync
            }
            $crate::common::Kind::Mock => {
                #[allow(unused_variables)]
                let ($driver, $backend) = $crate::common::Backend::mock();
                $sync
            }
            $crate::common::Kind::AsyncSqlite => {
                #[allow(unused_variables)]
                let (sync, $backend) = $crate::common::Backend::sqlite();
                #[allow(unused_variables)]
                let $driver = ::dbfault::Blocking::new(sync);
                $async
            }
            $crate::common::Kind::AsyncMock => {
                #[allow(unused_variables)]
                let (sync, $backend) = $crate::common::Backend::mock();
                #[allow(unused_variables)]
                let $driver = sync.server().async_driver();
                $async
            }
            #[cfg(feature = "postgres")]
            $crate::common::Kind::Postgres => {
                let pg = $crate::common::pg::PgBackend::new(true)
                    .expect("a PostgreSQL kind is run only where Kind::available says so");
                #[allow(unused_variables)]
                let $driver = pg.driver();
                #[allow(unused_variables)]
                let $backend = $crate::common::Backend::Postgres(pg);
                $sync
            }
            #[cfg(feature = "postgres")]
            $crate::common::Kind::AsyncPostgres => {
                let pg = $crate::common::pg::PgBackend::new(true)
                    .expect("a PostgreSQL kind is run only where Kind::available says so");
                #[allow(unused_variables)]
                let $driver = pg.async_driver();
                #[allow(unused_variables)]
                let $backend = $crate::common::Backend::Postgres(pg);
                $async
            }
            #[cfg(not(feature = "postgres"))]
            $crate::common::Kind::Postgres | $crate::common::Kind::AsyncPostgres => {
                unreachable!("Kind::available says no PostgreSQL kind runs without feature `postgres`")
            }
        }
    };
}

/// The statement that writes `tag`: one row of the fixture's `writes`
/// table, keyed by its tag (see [`Backend::committed_tags`]).
pub fn write_sql(tag: &str) -> String {
    format!("INSERT INTO writes (tag, step) VALUES ('{tag}', 1)")
}

/// A fresh database, as the test sees it from behind every layer (the
/// fault layer, the pool, the engine).
#[derive(Debug, Clone)]
pub enum Backend {
    /// A second, unwrapped driver of the same in-memory database.
    Sqlite(SqliteDriver),
    /// The server itself: its script, its log, its open connections, what
    /// it committed.
    Mock(MockServer),
    /// A schema of its own on the tests' PostgreSQL, read by connections
    /// of its own.
    #[cfg(feature = "postgres")]
    Postgres(pg::PgBackend),
}

impl Backend {
    /// A fresh fixture database (schema and seed data), and a driver of it.
    pub fn sqlite() -> (SqliteDriver, Backend) {
        let driver = dbfault::testing::fresh_database().expect("the fixture database");
        (driver.clone(), Backend::Sqlite(driver))
    }

    /// A fresh, permissive mock server, and a driver of it.
    pub fn mock() -> (MockDriver, Backend) {
        let server = MockServer::new();
        (server.driver(), Backend::Mock(server))
    }

    /// Runs `sql` on the database from outside the layers, before the body
    /// starts (SQLite: on a connection of its own). The permissive mock
    /// needs no schema: nothing is sent to it, so its log stays the body's.
    pub fn prepare(&self, sql: &str) {
        match self {
            Backend::Sqlite(driver) => {
                let mut setup = driver.connect().expect("setup connection");
                setup
                    .execute(sql, &[])
                    .unwrap_or_else(|e| panic!("setup {sql:?}: {e}"));
                setup.close().expect("close setup connection");
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => {
                pg.query(sql);
            }
            Backend::Mock(_) => {}
        }
    }

    /// The rows of `sql`, read outside the layers by a connection of its
    /// own; `None` on the mock.
    pub fn inspect(&self, sql: &str) -> Option<Vec<dbfault::Row>> {
        match self {
            Backend::Sqlite(db) => {
                let mut conn = db.connect().expect("inspection connection");
                let rows = conn
                    .query(sql, &[])
                    .unwrap_or_else(|e| panic!("inspecting with {sql:?}: {e}"));
                conn.close().expect("close inspection connection");
                Some(rows)
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => Some(pg.query(sql)),
            Backend::Mock(_) => None,
        }
    }

    /// Whether a statement error inside a transaction aborts it, so that
    /// the rest of it fails and its commit rolls back (PostgreSQL), rather
    /// than leaving it usable (SQLite, the mock).
    pub fn errors_abort_transactions(&self) -> bool {
        match self {
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => true,
            _ => false,
        }
    }

    /// The tags of the committed rows of the fixture's `writes` table, in
    /// commit order. SQLite: read by a connection of its own (so call it
    /// only while no transaction holds a write lock on the table). Mock:
    /// the server's committed [`write_sql`] statements.
    pub fn committed_tags(&self) -> Vec<String> {
        // Commit order is insertion order: SQLite's rowid; PostgreSQL's
        // heap order, as tests only insert.
        let order = match self {
            Backend::Sqlite(_) => "rowid",
            _ => "ctid",
        };
        let sql = format!("SELECT tag FROM writes ORDER BY {order}");
        match self.inspect(&sql) {
            Some(rows) => rows
                .iter()
                .map(|row| {
                    row.get("tag")
                        .and_then(Value::as_str)
                        .expect("a text tag")
                        .to_owned()
                })
                .collect(),
            None => self
                .server()
                .expect("the mock")
                .committed()
                .into_iter()
                .filter(|c| dbfault::normalize_sql(&c.sql).starts_with("INSERT INTO writes"))
                .map(|c| c.sql.split('\'').nth(1).expect("a quoted tag").to_owned())
                .collect(),
        }
    }

    /// Whether the write tagged `tag` was committed.
    pub fn has_committed(&self, tag: &str) -> bool {
        self.committed_tags().iter().any(|t| t == tag)
    }

    /// The values committed to the fault tests' table `t`
    /// ([`fault::TABLE`]), ascending. On SQLite a second connection reads
    /// them, so this also proves that no connection still holds a write
    /// lock on `t`; on the mock, the server's committed `INSERT`s.
    pub fn committed_values(&self) -> Vec<i64> {
        match self.inspect(fault::SELECT) {
            Some(rows) => rows
                .iter()
                .map(|row| row.get(0).and_then(Value::as_i64).expect("an integer"))
                .collect(),
            None => {
                let mut values: Vec<i64> = self
                    .server()
                    .expect("the mock")
                    .committed()
                    .iter()
                    .filter(|c| c.sql.starts_with("INSERT"))
                    .map(|c| c.params[0].as_i64().expect("an integer parameter"))
                    .collect();
                values.sort_unstable();
                values
            }
        }
    }

    /// Asserts that a second connection can take the write lock on `t`
    /// (SQLite; PostgreSQL: an exclusive lock on the table, which any
    /// transaction that wrote to it would hold off); the mock has no locks.
    pub fn assert_write_lock_free(&self) {
        match self {
            Backend::Sqlite(driver) => {
                let mut probe = driver.connect().expect("probe connection");
                probe.begin().expect("probe begin");
                probe
                    .execute(fault::INSERT, &[Value::Integer(-1)])
                    .unwrap_or_else(|e| panic!("a second connection cannot write t: {e}"));
                probe.rollback().expect("probe rollback");
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => pg.with_conn(|probe| {
                probe.begin().expect("probe begin");
                probe
                    .execute("LOCK TABLE t IN EXCLUSIVE MODE NOWAIT", &[])
                    .unwrap_or_else(|e| panic!("a second connection cannot lock t: {e}"));
                probe.rollback().expect("probe rollback");
            }),
            Backend::Mock(_) => {}
        }
    }

    /// The operations connection `id` performed on the mock server; `None`
    /// on SQLite, which has no such log.
    pub fn inner_ops(&self, id: ConnId) -> Option<Vec<Op>> {
        self.server().map(|server| server.ops_for(id))
    }

    /// Whether the mock server still has connection `id` open; `None` on
    /// SQLite.
    pub fn inner_open(&self, id: ConnId) -> Option<bool> {
        self.server()
            .map(|server| server.open_connection_ids().contains(&id))
    }

    /// How many connections the mock server has open; `None` on SQLite.
    pub fn open_connections(&self) -> Option<usize> {
        self.server().map(MockServer::open_connections)
    }

    /// The mock server, if this is one.
    pub fn server(&self) -> Option<&MockServer> {
        match self {
            Backend::Mock(server) => Some(server),
            _ => None,
        }
    }

    /// The PostgreSQL schema, if this is one.
    #[cfg(feature = "postgres")]
    pub fn pg(&self) -> Option<&pg::PgBackend> {
        match self {
            Backend::Postgres(pg) => Some(pg),
            _ => None,
        }
    }

    /// The name of the backend's dialect: what every driver over it must
    /// report.
    pub fn dialect_name(&self) -> String {
        match self {
            Backend::Sqlite(_) => "sqlite".to_owned(),
            Backend::Mock(server) => server.dialect().name().to_owned(),
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => "postgresql".to_owned(),
        }
    }
}
