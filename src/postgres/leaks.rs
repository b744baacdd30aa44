//! The leak check a test runs at its end: sessions left in a transaction
//! or holding locks, read from `pg_stat_activity` and `pg_locks`.

use std::fmt;

use ::postgres::NoTls;

use crate::{Error, Result};

use super::error::{Phase, from_pg};

/// The backends of the checker's database (and application name, when
/// its URL sets one) left idle in a transaction or holding a granted lock,
/// the checker itself left out, with the locks each holds.
const LEAKS_SQL: &str = "\
SELECT a.pid,
       coalesce(a.application_name, ''),
       coalesce(a.usename::text, ''),
       coalesce(a.state, ''),
       coalesce(a.query, ''),
       coalesce(array_agg(l.mode || ' on ' || CASE
                    WHEN l.relation IS NOT NULL THEN 'relation ' || l.relation::regclass::text
                    ELSE l.locktype END
                  ORDER BY l.locktype, l.mode) FILTER (WHERE l.pid IS NOT NULL), '{}')
FROM pg_stat_activity a
LEFT JOIN pg_locks l ON l.pid = a.pid AND l.granted
WHERE a.datname = current_database()
  AND a.pid <> pg_backend_pid()
  AND a.backend_type = 'client backend'
  AND ($1 = '' OR a.application_name = $1)
GROUP BY a.pid, a.application_name, a.usename, a.state, a.query
HAVING a.state IN ('idle in transaction', 'idle in transaction (aborted)') OR count(l.pid) > 0
ORDER BY a.pid";

/// One backend a test left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Leak {
    /// The backend's process id.
    pub pid: i32,
    /// Its `application_name`.
    pub application_name: String,
    /// The role it connected as.
    pub user: String,
    /// Its state in `pg_stat_activity`: `idle in transaction`, `idle in
    /// transaction (aborted)`, `active`, `idle` (holding a session lock).
    pub state: String,
    /// The last statement it ran.
    pub last_statement: String,
    /// The locks it holds (`RowExclusiveLock on relation writes`,
    /// `ExclusiveLock on transactionid`, ...).
    pub locks: Vec<String>,
}

impl fmt::Display for Leak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "backend {} (user {:?}, application {:?}): {}; last statement: {:?}",
            self.pid, self.user, self.application_name, self.state, self.last_statement
        )?;
        if self.locks.is_empty() {
            f.write_str("; holds no lock")
        } else {
            write!(f, "; holds {}", self.locks.join(", "))
        }
    }
}

/// What [`find_leaks`] found: empty when the test left nothing behind.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeakReport {
    /// The database checked.
    pub database: String,
    /// The application name the check was limited to; empty for every
    /// backend of the database.
    pub application_name: String,
    /// The backends left behind, by process id.
    pub leaks: Vec<Leak>,
}

impl LeakReport {
    /// Whether nothing was left behind.
    pub fn is_clean(&self) -> bool {
        self.leaks.is_empty()
    }
}

impl fmt::Display for LeakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scope = if self.application_name.is_empty() {
            format!("database {:?}", self.database)
        } else {
            format!(
                "database {:?}, application {:?}",
                self.database, self.application_name
            )
        };
        if self.is_clean() {
            return write!(
                f,
                "no backend of {scope} is left in a transaction or holding a lock"
            );
        }
        write!(
            f,
            "{} backend(s) of {scope} left in a transaction or holding locks:",
            self.leaks.len()
        )?;
        for leak in &self.leaks {
            write!(f, "\n  {leak}")?;
        }
        Ok(())
    }
}

/// Looks for backends a test left behind, over a connection of its own
/// to `url`: every backend of `url`'s database (or, when `url` sets an
/// `application_name`, every backend of that name) that is `idle in
/// transaction` (or aborted) or holds a granted lock in `pg_locks`, the
/// checker's own backend left out.
///
/// The check runs its connection on a thread of its own, so it may be
/// called from inside an async runtime.
///
/// # Errors
///
/// [`ErrorKind::Config`](crate::ErrorKind::Config) if `url` does not
/// parse; the connection's or the query's error, classified by
/// [`PgDialect`](super::PgDialect).
pub fn find_leaks(url: &str) -> Result<LeakReport> {
    let config: ::postgres::Config = url
        .parse()
        .map_err(|e| Error::config("url", format!("not a PostgreSQL connection string: {e}")))?;
    let application_name = config.get_application_name().unwrap_or_default().to_owned();
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let mut client = config.connect(NoTls).map_err(|e| from_pg(e, Phase::Connect))?;
                let op = |e| from_pg(e, Phase::Operation);
                let database: String = client
                    .query_one("SELECT current_database()::text", &[])
                    .map_err(op)?
                    .get(0);
                let leaks = client
                    .query(LEAKS_SQL, &[&application_name])
                    .map_err(op)?
                    .iter()
                    .map(|row| Leak {
                        pid: row.get(0),
                        application_name: row.get(1),
                        user: row.get(2),
                        state: row.get(3),
                        last_statement: row.get(4),
                        locks: row.get(5),
                    })
                    .collect();
                let _ = client.close();
                Ok(LeakReport {
                    database,
                    application_name: application_name.clone(),
                    leaks,
                })
            })
            .join()
            .unwrap_or_else(|_| Err(Error::closed("the leak check's thread panicked")))
    })
}

/// Panics with the report when [`find_leaks`] finds a backend left in a
/// transaction or holding locks, or when it cannot check.
///
/// ```no_run
/// // At the end of a test whose connections all carry this name:
/// dbfault::postgres::assert_no_leaks("postgres://postgres@127.0.0.1/test?application_name=my-test");
/// ```
///
/// # Panics
///
/// When a backend was left behind (the message lists each one, its
/// state, its last statement and its locks), or when the check fails.
#[track_caller]
pub fn assert_no_leaks(url: &str) {
    match find_leaks(url) {
        Ok(report) if report.is_clean() => {}
        Ok(report) => panic!("{report}"),
        Err(err) => panic!("the leak check failed: {err}"),
    }
}
