//! The driver contract's runner: [`contract!`] runs one generic body,
//! `fn body<D: Driver>(h: &Harness<D>)`, over the driver of a [`Kind`],
//! bare or under the fault layer with no rule armed ([`Stack`]). The async
//! drivers (and the async fault layer) run the same bodies behind
//! [`Synced`], which blocks on each call: that every driver passes the same
//! bodies is the proof that they are interchangeable behind the traits.
//!
//! The bodies assert only on what every driver implements for real:
//! transaction state, ids, close semantics, error classes, and which writes
//! were committed ([`write_sql`] and [`Backend::committed_tags`]). Where a body needs an
//! answer (a row, a row count, a rejected statement), the harness scripts
//! the mock to give the answer SQLite gives for real.
//!
//! After every body the harness checks what the body cannot see: the mock's
//! script was respected and every connection was closed or dropped; the
//! fault layer journaled nothing and tracks no live connection.
//!
//! [`Kind`]: super::Kind
//! [`contract!`]: crate::contract

use std::sync::Arc;

use dbfault::{
    AsyncDriver, Connection, Dialect, Driver, Expectation, Faults, FaultyDriver, Journal, MismatchReason,
    Value, split_statements,
};

use super::{Backend, Synced, fault, write_sql};

/// The fixture schema, as the bodies that apply it themselves read it.
pub const SCHEMA: &str = include_str!("../../fixtures/schema.sql");
/// The fixture seed data.
pub const SEED: &str = include_str!("../../fixtures/seed.sql");

/// A statement every driver answers with one row, `one = 1` (scripted so on
/// the mock).
pub const PROBE_SQL: &str = "SELECT 1 AS one";

/// A statement every driver rejects: a syntax error on SQLite, scripted to
/// fail with [`MOCK_SYNTAX`] on the mock.
pub const REJECTED_SQL: &str = "SELEKT one FROM nowhere";

/// The code of the mock's scripted syntax error; in none of the default mock
/// dialect's lists, so it is a statement error.
pub const MOCK_SYNTAX: &str = "MOCK_SYNTAX";

/// Whether the driver runs bare or under the fault layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// The driver itself.
    Bare,
    /// The driver under `FaultyDriver`, with no rule armed.
    Faulty,
}

/// What the database holds before the body runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// The fixture schema and seed (SQLite; the permissive mock needs none).
    Schema,
    /// Nothing: the fixture database emptied, for a body that applies the
    /// fixture scripts itself.
    Empty,
}

/// Runs a generic driver-contract body against a fresh harness of `kind`
/// and `stack`: one monomorphised copy of the body per driver.
///
/// `contract!(kind, stack, body)` starts from the fixture schema;
/// `contract!(kind, stack, Setup::Empty, body)` from an empty database.
/// `body` is a generic fn item or a closure `|h| body(h, extra)`.
#[macro_export]
macro_rules! contract {
    ($kind:expr, $stack:expr, $body:expr) => {
        $crate::contract!($kind, $stack, $crate::common::driver::Setup::Schema, $body)
    };
    ($kind:expr, $stack:expr, $setup:expr, $body:expr) => {{
        use $crate::common::driver::{Harness, Stack};
        if !$crate::common::Kind::available($kind) {
            return;
        }
        $crate::with_driver!($kind, |driver, backend|
            sync: match $stack {
                Stack::Bare => Harness::new(driver, backend, $setup, None).run($body),
                Stack::Faulty => Harness::faulty(driver, backend, $setup).run($body),
            },
            async: match $stack {
                Stack::Bare => {
                    Harness::new($crate::common::Synced::new(driver), backend, $setup, None).run($body)
                }
                Stack::Faulty => Harness::faulty_async(driver, backend, $setup).run($body),
            },
        )
    }};
}

/// A driver under test plus a way to look behind it.
pub struct Harness<D: Driver> {
    driver: D,
    backend: Backend,
    /// The fault layer's handle and journal, under [`Stack::Faulty`].
    fault_layer: Option<(Faults, Journal)>,
}

impl<D: Driver> Harness<D> {
    /// `driver` over `backend`, prepared as `setup` says; the mock is
    /// scripted to answer the bodies' statements as SQLite does.
    pub fn new(driver: D, backend: Backend, setup: Setup, fault_layer: Option<(Faults, Journal)>) -> Self {
        if setup == Setup::Empty {
            for table in ["transfers", "writes", "accounts"] {
                backend.prepare(&format!("DROP TABLE {table}"));
            }
        }
        if let Some(server) = backend.server() {
            server.expect(
                Expectation::exact(PROBE_SQL)
                    .returns_rows(["one"], vec![vec![Value::Integer(1)]])
                    .any_times(),
            );
            // Every write changes one row.
            let writes = Expectation::regex("^INSERT INTO writes ").expect("a valid pattern");
            server.expect(writes.affects(1).any_times());
            server.expect(
                Expectation::exact(REJECTED_SQL)
                    .fails(MOCK_SYNTAX, "near \"SELEKT\": syntax error")
                    .any_times(),
            );
        }
        Harness {
            driver,
            backend,
            fault_layer,
        }
    }

    /// Runs `body`, then checks what it leaves behind (see the module doc).
    pub fn run(self, body: impl FnOnce(&Self)) {
        body(&self);
        #[cfg(feature = "postgres")]
        let pg = self.backend.pg().cloned();
        if let Some(server) = self.backend.server() {
            if let Err(report) = server.verify() {
                panic!("the mock's script was not respected:\n{report}");
            }
            assert_eq!(
                server.open_connection_ids(),
                [],
                "every connection the body opened is closed once it is closed or dropped"
            );
        }
        if let Some((faults, journal)) = &self.fault_layer {
            assert!(
                journal.is_empty(),
                "no rule is armed, yet the fault layer journaled:\n{}",
                journal.timeline()
            );
            assert_eq!(
                faults.live_connections(),
                [],
                "the fault layer forgets connections that were closed or dropped"
            );
        }
        // Everything the body opened is dropped (an async driver's runtime
        // with it): the server must hold no session of the test in a
        // transaction, nor any lock.
        #[cfg(feature = "postgres")]
        if let Some(pg) = pg {
            drop(self);
            let report = pg.leaks_once_settled();
            assert!(report.is_clean(), "{report}");
        }
    }

    /// The backend behind the driver.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    pub fn connect(&self) -> D::Connection {
        self.driver.connect().expect("connect")
    }

    pub fn dialect(&self) -> Arc<dyn Dialect> {
        self.driver.dialect()
    }

    /// The tags of the committed rows of `writes`, in commit order (see
    /// [`Backend::committed_tags`]).
    pub fn committed_writes(&self) -> Vec<String> {
        self.backend.committed_tags()
    }

    /// The name the driver's dialect must report: the backend's own.
    pub fn backend_dialect_name(&self) -> String {
        self.backend.dialect_name()
    }

    /// Checks that the fixture schema and seed were applied. SQLite: the
    /// three accounts exist with their balances. Mock: the server committed
    /// exactly the scripts' statements, in order, and the permissive policy
    /// let them through as unscripted, not as failures.
    pub fn assert_seeded(&self) {
        if let Some(rows) = self
            .backend
            .inspect("SELECT owner, balance FROM accounts ORDER BY id")
        {
            let accounts: Vec<(String, i64)> = rows
                .iter()
                .map(|row| {
                    let owner = row.get("owner").and_then(Value::as_str).expect("owner");
                    let balance = row.get("balance").and_then(Value::as_i64).expect("balance");
                    (owner.to_owned(), balance)
                })
                .collect();
            assert_eq!(
                accounts,
                [
                    ("ann".to_owned(), 100),
                    ("bob".to_owned(), 100),
                    ("cyd".to_owned(), 100)
                ]
            );
            assert!(
                self.backend.inspect("SELECT tag FROM writes").is_some(),
                "the writes table exists"
            );
            return;
        }
        let server = self.backend.server().expect("the mock");
        let expected: Vec<&str> = split_statements(SCHEMA)
            .into_iter()
            .chain(split_statements(SEED))
            .map(|s| s.sql)
            .collect();
        assert_eq!(server.committed_sql(), expected);
        let mismatches = server.mismatches();
        assert_eq!(mismatches.len(), expected.len());
        assert!(
            mismatches
                .iter()
                .all(|m| m.reason == MismatchReason::Unscripted && !m.is_failure()),
            "{mismatches:#?}"
        );
    }
}

impl<D: Driver> Harness<FaultyDriver<D>> {
    /// `inner` under the sync fault layer, no rule armed, journaling.
    pub fn faulty(inner: D, backend: Backend, setup: Setup) -> Self {
        let (driver, journal) = fault::faulty(inner);
        let faults = driver.faults();
        Harness::new(driver, backend, setup, Some((faults, journal)))
    }
}

impl<A: AsyncDriver> Harness<Synced<FaultyDriver<A>>> {
    /// `inner` under the async fault layer, no rule armed, journaling,
    /// behind [`Synced`].
    pub fn faulty_async(inner: A, backend: Backend, setup: Setup) -> Self {
        let (driver, journal) = fault::faulty(inner);
        let faults = driver.faults();
        Harness::new(Synced::new(driver), backend, setup, Some((faults, journal)))
    }
}
