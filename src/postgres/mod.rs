//! The PostgreSQL drivers (feature `postgres`): [`PgDriver`] over the
//! postgres crate, and with feature `tokio` [`AsyncPgDriver`] over
//! tokio-postgres; [`PgDialect`], which classifies PostgreSQL's errors by
//! SQLSTATE; [`PgDriver::faulty`] and [`AsyncPgDriver::faulty`], the fault
//! layer with server-side faults done by the server
//! (`pg_terminate_backend`); and [`find_leaks`] / [`assert_no_leaks`], the
//! check a test runs at its end for sessions left in a transaction or
//! holding locks.
//!
//! Every error of these drivers has the SQLSTATE as its
//! [`code`](crate::Error::code) (`23505`, `40001`, `57P01`, ...) and keeps
//! the client's error as its [`source`](std::error::Error::source).
//!
//! # Errors, by SQLSTATE
//!
//! | SQLSTATE | class | example |
//! | --- | --- | --- |
//! | class `08`, `57P01`, `57P02`, `57P03`, `57P05`, `25P03` | disconnect | a refused connect (`08001`), `pg_terminate_backend` (`57P01`), a connect to a server shutting down (`57P03`), a session the server resets after another backend crashed (`57P02`, sent as a warning before the close, reported as the close's error), `idle_in_transaction_session_timeout` (`25P03`), `idle_session_timeout` (`57P05`) |
//! | `25006` read_only_sql_transaction | disconnect (a choice: after a failover the connection is alive but on the wrong node; see [`PgDialect`]) | a write in a read-only transaction |
//! | `40001`, `40P01`, `55P03` | transient | two serializable transactions, a deadlock, `FOR UPDATE NOWAIT` on a locked row |
//! | class `23` | constraint | a duplicate key (`23505`) |
//! | class `42`, class `22`, `25001`, `25P01`, `25P02` | statement | a syntax error (`42601`), a missing table (`42P01`), a division by zero (`22012`), a commit of a failed transaction (`25P02`) |
//! | anything else | other | |
//!
//! [`PgDialect`] has the full table, including the codes this driver
//! gives its client-side errors.
//!
//! # Values
//!
//! | PostgreSQL type | read as | a parameter of that type takes |
//! | --- | --- | --- |
//! | any, SQL NULL | `Value::Null` | `Value::Null` |
//! | `smallint`, `integer`, `bigint`, `oid` | `Value::Integer` | `Value::Integer` within the type's range |
//! | `real`, `double precision` | `Value::Real` | `Value::Real`, `Value::Integer` |
//! | `boolean` | `Value::Integer` 0 or 1 | `Value::Integer` 0 or 1 |
//! | `text`, `varchar`, `char(n)`, `name`, `citext`, an untyped literal | `Value::Text` | `Value::Text` |
//! | `bytea` | `Value::Blob` | `Value::Blob` |
//! | any other (`numeric`, `timestamptz`, `uuid`, `json`, arrays, ...) | an error | an error |
//!
//! A value that does not fit is an error of code `DBFAULT_TYPE` naming the
//! column or the parameter and both types, never a panic; so is a
//! parameter count the statement does not take (`DBFAULT_PARAMETER`).
//! Cast a column of another type in SQL (`SELECT created::text`), or a
//! parameter (`$1::text::numeric` takes a `Value::Text`).
//!
//! # Leaks
//!
//! [`assert_no_leaks`] (or [`find_leaks`], which returns the report)
//! reads `pg_stat_activity` and `pg_locks` at a test's end: no backend of
//! the database may be left `idle in transaction`, and none may hold a
//! lock, except the checker itself. When the URL sets an
//! `application_name`, only backends of that name are looked at, so tests
//! that run in parallel against one database each check their own.

/// The items both drivers have but for their type name: `new`,
/// `init_sql`, `faulty` and `Debug`. The async driver's
/// [`faulty`](AsyncPgDriver::faulty) kill blocks the calling thread for
/// the admin connection's round trips.
macro_rules! driver_items {
    ($driver:ident) => {
        impl $driver {
            /// A driver for the database `url` names: a `postgres://` URL
            /// or a `key=value` connection string, as tokio-postgres reads
            /// them (`postgres://user@host:port/dbname?application_name=x`).
            ///
            /// Nothing is opened here: a server that cannot be reached
            /// fails at `connect` with a disconnect (`08001`).
            ///
            /// # Errors
            ///
            /// [`ErrorKind::Config`](crate::ErrorKind::Config), field
            /// `url`, if the string does not parse.
            pub fn new(url: &str) -> Result<$driver> {
                Ok($driver {
                    settings: Arc::new(Settings::parse(url)?),
                })
            }

            /// SQL (one or more `;`-separated statements) run on every new
            /// connection before `connect` returns it, e.g. `SET
            /// search_path TO app`. If it fails, `connect` fails with its
            /// error and the connection is closed. Default: none.
            #[must_use]
            pub fn init_sql(self, sql: &str) -> $driver {
                $driver {
                    settings: Arc::new(self.settings.with_init_sql(sql)),
                }
            }

            /// This driver under the fault layer, with server-side faults
            /// done by the server: [`Faults::kill`](crate::Faults::kill),
            /// [`restart`](crate::Faults::restart) and
            /// [`outage`](crate::Faults::outage) terminate the
            /// connections' backends with `pg_terminate_backend` over an
            /// admin connection (one per fault, opened with this driver's
            /// settings on a thread of its own, so its role must be
            /// allowed to signal them: the same role, or a member of
            /// `pg_signal_backend`), and wait until they are gone. The
            /// client then meets `FATAL 57P01` (admin_shutdown) on its
            /// next call, as in production. An outage also refuses new
            /// connects in the fault layer until
            /// [`restore`](crate::Faults::restore).
            ///
            /// `FaultyDriver::new(driver)` kills in the fault layer
            /// instead: the next call fails with an injected disconnect of
            /// code `57P01`, and the server only sees the connection close.
            pub fn faulty(&self) -> FaultyDriver<$driver> {
                FaultyDriver::new(self.clone()).with_server(self.settings.server())
            }
        }

        impl fmt::Debug for $driver {
            /// The settings, the password redacted.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($driver))
                    .field(&self.settings)
                    .finish()
            }
        }
    };
}

/// The items both connections have but for their type name:
/// `backend_pid` and `Debug`, over their `conn` field.
macro_rules! connection_items {
    ($conn:ident) => {
        impl $conn {
            /// The process id of the connection's backend
            /// (`pg_backend_pid()`): what `pg_stat_activity` and
            /// `pg_terminate_backend` know it by.
            pub fn backend_pid(&self) -> i32 {
                self.conn.session.pid
            }
        }

        impl fmt::Debug for $conn {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($conn))
                    .field("session", &self.conn.session)
                    .finish()
            }
        }
    };
}

mod conn;
mod dialect;
mod driver;
mod error;
mod leaks;
mod server;
mod session;
#[cfg(feature = "tokio")]
mod tokio;
mod value;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{ConnId, Error, Result};

pub use self::dialect::PgDialect;
pub use self::driver::{PgConnection, PgDriver};
pub use self::leaks::{Leak, LeakReport, assert_no_leaks, find_leaks};
#[cfg(feature = "tokio")]
pub use self::tokio::{AsyncPgConnection, AsyncPgDriver};

use self::server::Backends;

/// Ids of every PostgreSQL connection of the process, whatever its driver.
static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// What a driver connects with, shared by its clones: the parsed
/// configuration, the SQL run on each new connection, and the registry of
/// live backends.
struct Settings {
    config: tokio_postgres::Config,
    init_sql: Option<Arc<str>>,
    backends: Arc<Backends>,
}

impl Settings {
    /// The settings of `url`, with no `init_sql`.
    fn parse(url: &str) -> Result<Settings> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| Error::config("url", format!("not a PostgreSQL connection string: {e}")))?;
        Ok(Settings {
            backends: Arc::new(Backends::new(config.clone())),
            config,
            init_sql: None,
        })
    }

    /// The same settings, with `init_sql`; the registry is shared.
    fn with_init_sql(&self, sql: &str) -> Settings {
        Settings {
            config: self.config.clone(),
            init_sql: Some(sql.into()),
            backends: Arc::clone(&self.backends),
        }
    }

    /// A fresh connection id.
    fn next_id(&self) -> ConnId {
        ConnId(NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed))
    }

    /// The registry, as the fault layer's real server.
    fn server(&self) -> Arc<dyn crate::fault::Server> {
        Arc::clone(&self.backends) as Arc<dyn crate::fault::Server>
    }
}

impl fmt::Debug for Settings {
    /// The configuration with its password redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("config", &self.config)
            .field("init_sql", &self.init_sql)
            .field("backends", &self.backends)
            .finish()
    }
}

/// The backend's process id from the answer to `SELECT pg_backend_pid()`.
fn pid_of(messages: &[tokio_postgres::SimpleQueryMessage]) -> Result<i32> {
    messages
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0),
            _ => None,
        })
        .and_then(|pid| pid.parse().ok())
        .ok_or_else(|| {
            Error::driver("08P01", "the server did not say its backend's process id")
                .classified_by(&PgDialect)
        })
}
