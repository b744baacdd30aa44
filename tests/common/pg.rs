//! PostgreSQL for the tests: where the server is ([`pg_url`]), and a
//! fresh schema per test ([`PgBackend`]), so tests run in parallel against
//! one database and leave nothing behind.
//!
//! [`pg_url`] reads `DATABASE_URL`, else tries [`DEFAULT_URL`]. When no
//! server answers, a test prints why it skips and returns; with
//! `CI=true` it fails instead, so CI never passes a PostgreSQL test it did
//! not run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use dbfault::postgres::{LeakReport, find_leaks};
use dbfault::{AsyncPgDriver, Connection, Driver, PgDriver, Row, run_script};

/// Where the tests look for PostgreSQL when `DATABASE_URL` is not set.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The PostgreSQL the tests use: `DATABASE_URL`, else [`DEFAULT_URL`], if
/// a connection to it succeeds. Otherwise `None`, after printing why the
/// test skips; with `CI=true`, a panic instead. Probed once per test
/// binary.
pub fn pg_url() -> Option<String> {
    static PROBED: OnceLock<Result<String, String>> = OnceLock::new();
    let probed = PROBED.get_or_init(|| {
        let (url, from) = match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => (url, "DATABASE_URL"),
            _ => (DEFAULT_URL.to_owned(), "the default, as DATABASE_URL is not set"),
        };
        // On a thread of its own: the sync client cannot start inside a
        // runtime, and a caller may be on one.
        let probe = {
            let url = url.clone();
            std::thread::spawn(move || -> dbfault::Result<()> {
                let mut conn = PgDriver::new(&url)?.connect()?;
                conn.close()
            })
            .join()
            .unwrap_or_else(|_| Err(dbfault::Error::closed("the probe panicked")))
        };
        probe.map(|()| url.clone()).map_err(|err| {
            format!(
                "no PostgreSQL at {} ({from}): {err}. Start one, or point DATABASE_URL at one \
                 (postgres://user@host:port/database)",
                redacted(&url)
            )
        })
    });
    match probed {
        Ok(url) => Some(url.clone()),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true, so a PostgreSQL test may not skip: {why}")
        }
        Err(why) => {
            eprintln!("skipping this PostgreSQL test: {why}");
            None
        }
    }
}

/// `url` with its password, if any, replaced by `***`.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

/// `url` with `application_name` set to `name` (a `postgres://` URL or a
/// `key=value` string).
pub fn with_application_name(url: &str, name: &str) -> String {
    if url.contains("://") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}application_name={name}")
    } else {
        format!("{url} application_name={name}")
    }
}

/// A fresh name, unique in the process and across processes running at
/// once: `dbfault_<pid>_<n>`.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// One test's PostgreSQL: a schema of its own (the fixture tables live
/// there), reached by connections whose `search_path` is that schema and
/// whose `application_name` is its name, so that the leak check looks at
/// this test's backends alone. The schema is dropped when the last clone
/// goes.
#[derive(Debug, Clone)]
pub struct PgBackend {
    /// The server's URL with this test's `application_name`.
    pub url: String,
    /// The schema, also the `application_name`.
    pub schema: String,
    _drop: Arc<DropSchema>,
}

/// Drops the schema when dropped.
#[derive(Debug)]
struct DropSchema {
    url: String,
    schema: String,
}

impl Drop for DropSchema {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        // On a thread of its own: this may run inside a runtime.
        let dropped = std::thread::spawn(move || -> dbfault::Result<()> {
            let mut conn = PgDriver::new(&url)?.connect()?;
            conn.execute("SET lock_timeout = '10s'", &[])?;
            conn.execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"), &[])?;
            conn.close()
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test schema {}: {dropped:?}", self.schema);
        }
    }
}

impl PgBackend {
    /// A fresh schema on the tests' server, or `None` when the test skips
    /// (see [`pg_url`]). `fixture`: with the fixture schema and seed.
    pub fn new(fixture: bool) -> Option<PgBackend> {
        let base = pg_url()?;
        let schema = unique_name("dbfault");
        let url = with_application_name(&base, &schema);
        let created = {
            let (url, schema) = (url.clone(), schema.clone());
            std::thread::spawn(move || -> dbfault::Result<()> {
                let mut conn = PgDriver::new(&url)?.connect()?;
                conn.execute(&format!("CREATE SCHEMA {schema}"), &[])?;
                conn.execute(&format!("SET search_path TO {schema}"), &[])?;
                if fixture {
                    run_script(&mut conn, super::driver::SCHEMA)?;
                    run_script(&mut conn, super::driver::SEED)?;
                }
                conn.close()
            })
            .join()
            .expect("the set-up thread")
        };
        created.unwrap_or_else(|e| panic!("creating the test schema {schema}: {e}"));
        Some(PgBackend {
            _drop: Arc::new(DropSchema {
                url: base,
                schema: schema.clone(),
            }),
            url,
            schema,
        })
    }

    /// The statement every new connection runs: into this schema.
    pub fn init_sql(&self) -> String {
        format!("SET search_path TO {}", self.schema)
    }

    /// A sync driver of this schema.
    pub fn driver(&self) -> PgDriver {
        PgDriver::new(&self.url)
            .expect("a valid URL")
            .init_sql(&self.init_sql())
    }

    /// An async driver of this schema.
    pub fn async_driver(&self) -> AsyncPgDriver {
        AsyncPgDriver::new(&self.url)
            .expect("a valid URL")
            .init_sql(&self.init_sql())
    }

    /// Runs `f` on a connection of its own, on a thread of its own (the
    /// caller may be inside a runtime).
    pub fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dbfault::PgConnection) -> T + Send + 'static,
    ) -> T {
        let driver = self.driver();
        std::thread::spawn(move || {
            let mut conn = driver.connect().expect("an inspection connection");
            let out = f(&mut conn);
            conn.close().expect("close the inspection connection");
            out
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    /// Runs `sql` (no parameters) and returns its rows.
    pub fn query(&self, sql: &str) -> Vec<Row> {
        let sql = sql.to_owned();
        self.with_conn(move |conn| conn.query(&sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e}")))
    }

    /// The leak check over this test's backends, once the server has seen
    /// the connections the test dropped go: their backends end when the
    /// server reads the end of their socket, a moment after the drop, so
    /// this asks again for up to ten seconds of real time (a bound against
    /// a broken build, not a timing assertion).
    pub fn leaks_once_settled(&self) -> LeakReport {
        let url = self.url.clone();
        let started = std::time::Instant::now();
        loop {
            let report = find_leaks(&url).expect("the leak check runs");
            if report.is_clean() || started.elapsed() > std::time::Duration::from_secs(10) {
                return report;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
