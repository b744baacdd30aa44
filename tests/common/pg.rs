//! PostgreSQL for the tests: where the server is ([`pg_url`]), and a
//! fresh schema per test ([`PgBackend`]), so tests run in parallel against
//! one database and leave nothing behind.
//!
//! [`pg_url`] reads `DATABASE_URL`, else tries [`DEFAULT_URL`]. When no
//! server answers, a test prints why it skips and returns; with
//! `CI=true` it fails instead, so CI never passes a PostgreSQL test it did
//! not run.

use std::sync::{Arc, OnceLock};

use dbfault::postgres::{LeakReport, find_leaks};
use dbfault::testing::PgSchema;
use dbfault::{AsyncPgDriver, Connection, Driver, PgDriver, Row};

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

/// One test's PostgreSQL: a [`PgSchema`] of its own (the fixture tables
/// live there), reached by connections whose `search_path` is that schema
/// and whose `application_name` is its name, so that the leak check looks
/// at this test's backends alone. The schema is dropped, with the test's
/// sessions still open, when the last clone goes.
#[derive(Debug, Clone)]
pub struct PgBackend {
    /// The server's URL with this test's `application_name`.
    pub url: String,
    schema: Arc<PgSchema>,
}

impl PgBackend {
    /// A fresh schema on the tests' server, or `None` when the test skips
    /// (see [`pg_url`]). `fixture`: with the fixture schema and seed.
    pub fn new(fixture: bool) -> Option<PgBackend> {
        let base = pg_url()?;
        let schema = PgSchema::new(&base, fixture)
            .unwrap_or_else(|e| panic!("creating a test schema on {}: {e}", redacted(&base)));
        Some(PgBackend {
            url: schema.url().to_owned(),
            schema: Arc::new(schema),
        })
    }

    /// A sync driver of this schema.
    pub fn driver(&self) -> PgDriver {
        self.schema.driver()
    }

    /// An async driver of this schema.
    pub fn async_driver(&self) -> AsyncPgDriver {
        self.schema.async_driver()
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
