//! The user's schema and seed data, from strings or files: what a fixture
//! or a property test loads into a fresh database before it starts.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{Connection, Error, Result, split_statements};

/// A database schema and its seed data, as SQL scripts given as strings
/// or files: the tables a fixture or a property test starts from.
///
/// Scripts run in the order they were given: the schema, then each seed.
/// Statements are split at each `;` outside strings, quoted identifiers
/// and comments ([`split_statements`]). A file is read when the schema is
/// loaded, so each fresh database sees its current text; a relative path
/// is taken from the crate under test's directory (`CARGO_MANIFEST_DIR`,
/// which cargo sets for tests, examples and `cargo run`), else from the
/// current directory.
///
/// [`bank`](Schema::bank) is dbfault's own fixture (three accounts); it
/// is one example, not a requirement.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use dbfault::testing::Schema;
/// use dbfault::{Connection, Driver};
///
/// let ledger = Schema::new("CREATE TABLE ledger (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL)")
///     .seed("INSERT INTO ledger (amount) VALUES (10), (-10)");
/// let db = ledger.sqlite().unwrap(); // a fresh database each call
/// let rows = db.connect().unwrap().query("SELECT sum(amount) FROM ledger", &[]).unwrap();
/// assert_eq!(rows[0].get(0).and_then(dbfault::Value::as_i64), Some(0));
///
/// // SQL the driver rejects names the script and the statement.
/// let err = Schema::new("CREATE TABLE t (x INTEGER);\nCREATE TABLE t (x INTEGER)").sqlite().unwrap_err();
/// assert!(err.to_string().contains("schema (string), statement 2 (line 2)"), "{err}");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Schema {
    scripts: Vec<Script>,
}

#[derive(Debug, Clone)]
struct Script {
    role: Role,
    source: Source,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Schema,
    Seed,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Schema => "schema",
            Role::Seed => "seed",
        })
    }
}

#[derive(Debug, Clone)]
enum Source {
    Text(Arc<str>),
    File(PathBuf),
    /// Text compiled into dbfault, with the file it came from.
    Shipped(&'static str, &'static str),
}

/// One script, read: where it came from (for errors) and its text.
struct Loaded {
    origin: String,
    text: Arc<str>,
}

impl Schema {
    /// A schema from SQL text.
    pub fn new(sql: impl Into<String>) -> Schema {
        Schema {
            scripts: vec![Script {
                role: Role::Schema,
                source: Source::Text(Arc::from(sql.into())),
            }],
        }
    }

    /// A schema from an SQL file, read each time the schema is loaded (see
    /// the type's docs for where a relative path points).
    pub fn file(path: impl Into<PathBuf>) -> Schema {
        Schema {
            scripts: vec![Script {
                role: Role::Schema,
                source: Source::File(path.into()),
            }],
        }
    }

    /// dbfault's own fixture: fixtures/schema.sql (tables `accounts`,
    /// `transfers`, `writes`) and fixtures/seed.sql (three accounts of 100
    /// each), compiled into dbfault. The database of
    /// [`fresh_database`](super::fresh_database), the bank fixtures and the
    /// model-based test.
    pub fn bank() -> Schema {
        Schema {
            scripts: vec![
                Script {
                    role: Role::Schema,
                    source: Source::Shipped("fixtures/schema.sql", include_str!("../../fixtures/schema.sql")),
                },
                Script {
                    role: Role::Seed,
                    source: Source::Shipped("fixtures/seed.sql", include_str!("../../fixtures/seed.sql")),
                },
            ],
        }
    }

    /// Adds seed data from SQL text, run after the schema and any seed
    /// given before.
    #[must_use]
    pub fn seed(mut self, sql: impl Into<String>) -> Schema {
        self.scripts.push(Script {
            role: Role::Seed,
            source: Source::Text(Arc::from(sql.into())),
        });
        self
    }

    /// Adds seed data from an SQL file (read each time the schema is
    /// loaded).
    #[must_use]
    pub fn seed_file(mut self, path: impl Into<PathBuf>) -> Schema {
        self.scripts.push(Script {
            role: Role::Seed,
            source: Source::File(path.into()),
        });
        self
    }

    /// Reads every script, checking each holds a statement.
    fn read(&self) -> Result<Vec<Loaded>> {
        self.scripts.iter().map(Script::read).collect()
    }

    /// Runs the schema, then the seed, on `conn`; returns how many
    /// statements ran.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config), with the field
    /// `schema` or `seed`, when a file cannot be read or a script holds no
    /// statement; the driver's error for the first statement it rejects,
    /// its message prefixed with the script (`schema tests/ledger.sql` or
    /// `seed (string)`), the statement's number and line, and its text.
    /// Statements before it stay applied.
    pub fn load<C: Connection + ?Sized>(&self, conn: &mut C) -> Result<usize> {
        let mut ran = 0;
        for script in self.read()? {
            for (n, stmt) in split_statements(&script.text).iter().enumerate() {
                conn.execute(stmt.sql, &[])
                    .map_err(|e| e.context(statement_context(&script.origin, n, stmt)))?;
                ran += 1;
            }
        }
        Ok(ran)
    }

    /// [`load`](Schema::load) on an async connection (feature `tokio`).
    ///
    /// # Errors
    ///
    /// As [`load`](Schema::load).
    #[cfg(feature = "tokio")]
    pub async fn load_async<C: crate::AsyncConnection + ?Sized>(&self, conn: &mut C) -> Result<usize> {
        let mut ran = 0;
        for script in self.read()? {
            for (n, stmt) in split_statements(&script.text).iter().enumerate() {
                conn.execute(stmt.sql, &[])
                    .await
                    .map_err(|e| e.context(statement_context(&script.origin, n, stmt)))?;
                ran += 1;
            }
        }
        Ok(ran)
    }

    /// A fresh named in-memory SQLite database holding this schema and
    /// seed: a different database on every call, alive while a clone of
    /// the driver is.
    ///
    /// # Errors
    ///
    /// If SQLite cannot open it, or as [`load`](Schema::load).
    #[cfg(feature = "sqlite")]
    pub fn sqlite(&self) -> Result<crate::SqliteDriver> {
        use crate::Driver;
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let db = crate::SqliteDriver::memory(&format!("dbfault-fixture-{}-{n}", std::process::id()))?;
        let mut conn = db.connect()?;
        self.load(&mut conn)?;
        conn.close()?;
        Ok(db)
    }

    /// A fresh schema of its own on the PostgreSQL server at `url`,
    /// holding this schema and seed (see [`PgSchema`](super::PgSchema);
    /// dropped with it). The SQL must be PostgreSQL's.
    ///
    /// # Errors
    ///
    /// As [`PgSchema::with_schema`](super::PgSchema::with_schema).
    #[cfg(feature = "postgres")]
    pub fn postgres(&self, url: &str) -> Result<super::PgSchema> {
        super::PgSchema::with_schema(url, self)
    }
}

impl Script {
    fn read(&self) -> Result<Loaded> {
        let (origin, text) = match &self.source {
            Source::Text(text) => (format!("{} (string)", self.role), Arc::clone(text)),
            Source::Shipped(path, text) => (format!("{} {path}", self.role), Arc::from(*text)),
            Source::File(path) => {
                let full = resolve(path);
                let text = std::fs::read_to_string(&full).map_err(|e| {
                    Error::config(
                        &self.role.to_string(),
                        format!("cannot read {} ({}): {e}", path.display(), full.display()),
                    )
                })?;
                (format!("{} {}", self.role, path.display()), Arc::from(text))
            }
        };
        if split_statements(&text).is_empty() {
            return Err(Error::config(
                &self.role.to_string(),
                format!("{origin} holds no SQL statement"),
            ));
        }
        Ok(Loaded { origin, text })
    }
}

/// Where a relative script path points: under `CARGO_MANIFEST_DIR` when
/// cargo set it, else under the current directory.
fn resolve(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_owned();
    }
    match std::env::var_os("CARGO_MANIFEST_DIR") {
        Some(root) => PathBuf::from(root).join(path),
        None => path.to_owned(),
    }
}

/// `schema tests/ledger.sql, statement 2 (line 4): `CREATE …``, the
/// statement cut at 80 characters.
fn statement_context(origin: &str, n: usize, stmt: &crate::Statement<'_>) -> String {
    const MAX: usize = 80;
    let sql: String = stmt.sql.chars().take(MAX).collect();
    let cut = if stmt.sql.chars().nth(MAX).is_some() {
        "…"
    } else {
        ""
    };
    format!("{origin}, statement {} (line {}): `{sql}{cut}`", n + 1, stmt.line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn a_missing_file_names_itself_and_its_role() {
        let err = Schema::file("no/such/schema.sql").read().err().unwrap();
        assert_eq!((err.kind(), err.field()), (ErrorKind::Config, Some("schema")));
        assert!(
            err.to_string().contains("cannot read no/such/schema.sql"),
            "{err}"
        );
        let err = Schema::new("CREATE TABLE t (x INTEGER)")
            .seed_file("no/such/seed.sql")
            .read()
            .err()
            .unwrap();
        assert_eq!(err.field(), Some("seed"), "{err}");
        assert!(err.to_string().contains("no/such/seed.sql"), "{err}");
    }

    #[test]
    fn an_empty_script_is_refused() {
        let err = Schema::new("  -- nothing\n").read().err().unwrap();
        assert!(
            err.to_string().contains("schema (string) holds no SQL statement"),
            "{err}"
        );
        let err = Schema::new("CREATE TABLE t (x INTEGER)")
            .seed(";")
            .read()
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("seed (string) holds no SQL statement"),
            "{err}"
        );
    }

    #[test]
    fn a_long_statement_is_cut_in_the_message() {
        let sql = format!("SELECT {}", "x".repeat(200));
        let stmt = crate::Statement { sql: &sql, line: 3 };
        let context = statement_context("seed (string)", 0, &stmt);
        assert!(
            context.starts_with("seed (string), statement 1 (line 3): `SELECT xx"),
            "{context}"
        );
        assert!(context.ends_with("x…`"), "{context}");
        assert_eq!(context.matches('x').count(), 80 - "SELECT ".len(), "{context}");
    }
}
