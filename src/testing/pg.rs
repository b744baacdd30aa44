//! A fresh PostgreSQL schema per test (feature `postgres`): the fixture
//! tables in a schema of their own, reached by connections whose
//! `search_path` is that schema and whose `application_name` is its name,
//! so that tests run in parallel against one database, and
//! [`find_leaks`](crate::postgres::find_leaks) on [`PgSchema::url`] looks
//! at one test's backends alone.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Connection, Driver, PgDriver, Result, Value};

/// A schema of its own on a PostgreSQL server, with dbfault's fixture
/// tables (fixtures/schema.sql and seed.sql) when asked: the database of
/// the model-based test on PostgreSQL and of dbfault's own PostgreSQL
/// tests. Dropping it terminates the backends still open under its name
/// (connections a test dropped inside a runtime that never ran again)
/// and drops the schema.
///
/// Its set-up and clean-up run their connections on threads of their own,
/// so it may be made and dropped inside an async runtime.
#[derive(Debug)]
pub struct PgSchema {
    base: String,
    url: String,
    name: String,
}

impl PgSchema {
    /// A fresh schema `dbfault_<pid>_<n>` on the server at `url` (a
    /// `postgres://` URL or a `key=value` string), holding the fixture
    /// tables and seed data when `fixture` is true.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) if `url` does not
    /// parse; the server's error if the schema cannot be made.
    pub fn new(url: &str, fixture: bool) -> Result<PgSchema> {
        PgSchema::create(url, fixture.then(super::Schema::bank))
    }

    /// A fresh schema `dbfault_<pid>_<n>` on the server at `url`, holding
    /// the user's `schema` and seed instead of dbfault's fixture tables.
    ///
    /// # Errors
    ///
    /// As [`new`](PgSchema::new); a script that cannot be read or a
    /// statement the server rejects is an error naming the script and the
    /// statement (see [`Schema::load`](super::Schema::load)). The schema
    /// made so far is dropped.
    pub fn with_schema(url: &str, schema: &super::Schema) -> Result<PgSchema> {
        PgSchema::create(url, Some(schema.clone()))
    }

    fn create(url: &str, tables: Option<super::Schema>) -> Result<PgSchema> {
        static N: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "dbfault_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let schema = PgSchema {
            base: url.to_owned(),
            url: with_application_name(url, &name),
            name,
        };
        PgDriver::new(&schema.url)?;
        let (base, name) = (schema.base.clone(), schema.name.clone());
        on_a_thread(move || {
            let mut conn = PgDriver::new(&base)?.connect()?;
            conn.execute("SET synchronous_commit = off", &[])?;
            conn.execute(&format!("CREATE SCHEMA {name}"), &[])?;
            conn.execute(&format!("SET search_path TO {name}"), &[])?;
            if let Some(tables) = tables {
                tables.load(&mut conn)?;
            }
            conn.close()
        })?;
        Ok(schema)
    }

    /// The server's URL with `application_name` set to the schema's name.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What every connection runs first: into the schema, and without
    /// waiting for each commit's flush to disk (`synchronous_commit =
    /// off`: a test loses nothing to it, short of a crash of the server,
    /// and a commit takes a round trip instead of an fsync).
    pub fn init_sql(&self) -> String {
        format!("SET search_path TO {}; SET synchronous_commit = off", self.name)
    }

    /// A driver whose connections work in the schema.
    pub fn driver(&self) -> PgDriver {
        PgDriver::new(&self.url)
            .expect("checked when the schema was made")
            .init_sql(&self.init_sql())
    }

    /// An async driver whose connections work in the schema.
    #[cfg(feature = "tokio")]
    pub fn async_driver(&self) -> crate::AsyncPgDriver {
        crate::AsyncPgDriver::new(&self.url)
            .expect("checked when the schema was made")
            .init_sql(&self.init_sql())
    }

    /// The rows of `sql` (with `params`), read by a connection of its own
    /// in the schema, on a thread of its own.
    ///
    /// # Errors
    ///
    /// The connection's or the statement's error.
    pub fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<crate::Row>> {
        let (driver, sql, params) = (self.driver(), sql.to_owned(), params.to_vec());
        on_a_thread(move || {
            let mut conn = driver.connect()?;
            let rows = conn.query(&sql, &params);
            conn.close()?;
            rows
        })
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        let dropped = on_a_thread(move || {
            let mut conn = PgDriver::new(&base)?.connect()?;
            conn.query(
                "SELECT pg_terminate_backend(pid, 5000)::text FROM pg_stat_activity \
                 WHERE application_name = $1 AND pid <> pg_backend_pid()",
                &[Value::from(name.as_str())],
            )?;
            conn.execute("SET lock_timeout = '10s'", &[])?;
            conn.execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"), &[])?;
            conn.close()
        });
        if let Err(err) = dropped {
            eprintln!("dbfault: could not drop the test schema {}: {err}", self.name);
        }
    }
}

/// `url` with `application_name` set to `name`.
fn with_application_name(url: &str, name: &str) -> String {
    if url.contains("://") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}application_name={name}")
    } else {
        format!("{url} application_name={name}")
    }
}

/// Runs `f` on a thread of its own: the sync driver cannot start its
/// runtime inside another.
fn on_a_thread<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    std::thread::spawn(f)
        .join()
        .unwrap_or_else(|_| Err(crate::Error::closed("a schema helper's thread panicked")))
}
