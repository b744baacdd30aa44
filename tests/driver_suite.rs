//! The `Driver` / `Connection` contract, once, for every driver.
//!
//! Each test is one generic body, `fn body<D: Driver>(h: &Harness<D>)`, run
//! by [`check!`] against four drivers: real SQLite (a fresh named in-memory
//! database per test), the mock, and both of them wrapped in the fault layer
//! with no rule armed. That they all pass the same bodies is the proof that
//! they are interchangeable behind the traits.
//!
//! The bodies assert only on what every driver implements for real:
//! transaction state, ids, close semantics, error classes, and which writes
//! were committed. The last is read through [`Harness::committed_writes`]:
//! the fixture's `writes` table on SQLite, the server's committed statements
//! on the mock. Where a body needs an answer (a row, a row count, a
//! rejected statement), the harness scripts the mock to give the answer
//! SQLite gives for real.
//!
//! After every body the harness checks what the body cannot see: the mock's
//! script was respected and every connection was closed or dropped; the
//! fault layer journaled nothing and tracks no live connection.

#![cfg(feature = "sqlite")]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dbfault::{
    Connection, Dialect, Driver, ErrorClass, ErrorKind, Expectation, Faults, FaultyDriver, Journal,
    MismatchReason, MockDriver, MockServer, Result, SqliteDriver, Value, normalize_sql, run_script,
    split_statements,
};
use rstest::rstest;

// ---------------------------------------------------------------------------
// The harness.

const SCHEMA: &str = include_str!("../fixtures/schema.sql");
const SEED: &str = include_str!("../fixtures/seed.sql");

/// The write the bodies make: one row of the fixture's `writes` table, keyed
/// by its tag. Changes one row on every driver (scripted so on the mock).
const WRITE_SQL: &str = "INSERT INTO writes (tag, step) VALUES (?1, ?2)";

/// A statement every driver answers with one row, `one = 1` (scripted so on
/// the mock).
const PROBE_SQL: &str = "SELECT 1 AS one";

/// A statement every driver rejects: a syntax error on SQLite, scripted to
/// fail with [`MOCK_SYNTAX`] on the mock.
const REJECTED_SQL: &str = "SELEKT one FROM nowhere";

/// The code of the mock's scripted syntax error; in none of the default mock
/// dialect's lists, so it is a statement error.
const MOCK_SYNTAX: &str = "MOCK_SYNTAX";

/// The driver a test body runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sqlite,
    Mock,
    FaultySqlite,
    FaultyMock,
}

/// What the database holds before the body runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    /// The fixture schema (SQLite; the permissive mock needs none).
    Schema,
    /// Nothing.
    Empty,
}

/// Where the harness looks to see what the database really holds, from
/// outside the driver under test.
enum Backend {
    /// A second, unwrapped driver of the same in-memory database.
    Sqlite(SqliteDriver),
    /// The mock's server.
    Mock(MockServer),
}

/// A driver under test plus a way to look behind it.
struct Harness<D: Driver> {
    driver: D,
    backend: Backend,
    /// The fault layer's handle and journal, for the faulty kinds.
    fault_layer: Option<(Faults, Journal)>,
}

/// Runs a generic test body against a fresh harness of `kind`: one
/// monomorphised copy of the body per driver.
///
/// `check!(kind, body)` starts from the fixture schema;
/// `check!(kind, Setup::Empty, body)` from an empty database. `body` is a
/// generic fn item or a closure `|h| body(h, extra)`.
macro_rules! check {
    ($kind:expr, $body:expr) => {
        check!($kind, Setup::Schema, $body)
    };
    ($kind:expr, $setup:expr, $body:expr) => {
        match $kind {
            Kind::Sqlite => {
                let (driver, backend) = sqlite($setup);
                Harness::plain(driver, backend).run($body)
            }
            Kind::Mock => {
                let (driver, backend) = mock();
                Harness::plain(driver, backend).run($body)
            }
            Kind::FaultySqlite => {
                let (driver, backend) = sqlite($setup);
                Harness::faulty(driver, backend).run($body)
            }
            Kind::FaultyMock => {
                let (driver, backend) = mock();
                Harness::faulty(driver, backend).run($body)
            }
        }
    };
}

/// A fresh named in-memory SQLite database, with the schema if asked.
fn sqlite(setup: Setup) -> (SqliteDriver, Backend) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "dbfault-driver-suite-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let driver = SqliteDriver::memory(&name).expect("memory driver");
    if setup == Setup::Schema {
        let mut conn = driver.connect().expect("setup connection");
        run_script(&mut conn, SCHEMA).expect("fixture schema");
        conn.close().expect("close setup connection");
    }
    (driver.clone(), Backend::Sqlite(driver))
}

/// A fresh permissive mock server, scripted to answer the bodies'
/// statements as SQLite does.
fn mock() -> (MockDriver, Backend) {
    let server = MockServer::new();
    server.expect(
        Expectation::exact(PROBE_SQL)
            .returns_rows(["one"], vec![vec![Value::Integer(1)]])
            .any_times(),
    );
    server.expect(Expectation::exact(WRITE_SQL).affects(1).any_times());
    server.expect(
        Expectation::exact(REJECTED_SQL)
            .fails(MOCK_SYNTAX, "near \"SELEKT\": syntax error")
            .any_times(),
    );
    (server.driver(), Backend::Mock(server))
}

impl<D: Driver> Harness<D> {
    fn plain(driver: D, backend: Backend) -> Self {
        Harness {
            driver,
            backend,
            fault_layer: None,
        }
    }

    /// Runs `body`, then checks what it leaves behind (see the module doc).
    fn run(self, body: impl FnOnce(&Self)) {
        body(&self);
        if let Backend::Mock(server) = &self.backend {
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
    }

    fn connect(&self) -> D::Connection {
        self.driver.connect().expect("connect")
    }

    fn dialect(&self) -> Arc<dyn Dialect> {
        self.driver.dialect()
    }

    /// The tags of the committed rows of `writes`, in commit order.
    ///
    /// SQLite: read from the table by a connection of its own (so call it
    /// only while no transaction holds a write lock on the table). Mock: the
    /// server's committed [`WRITE_SQL`] statements.
    fn committed_writes(&self) -> Vec<String> {
        match &self.backend {
            Backend::Sqlite(db) => {
                let mut conn = db.connect().expect("inspection connection");
                let rows = conn
                    .query("SELECT tag FROM writes ORDER BY rowid", &[])
                    .expect("read the writes table");
                conn.close().expect("close inspection connection");
                rows.iter()
                    .map(|row| {
                        row.get("tag")
                            .and_then(Value::as_str)
                            .expect("a text tag")
                            .to_owned()
                    })
                    .collect()
            }
            Backend::Mock(server) => server
                .committed()
                .into_iter()
                .filter(|c| normalize_sql(&c.sql) == normalize_sql(WRITE_SQL))
                .map(|c| c.params[0].as_str().expect("a text tag").to_owned())
                .collect(),
        }
    }

    /// The name the driver's dialect must report: the backend's own.
    fn backend_dialect_name(&self) -> String {
        match &self.backend {
            Backend::Sqlite(_) => "sqlite".to_owned(),
            Backend::Mock(server) => server.dialect().name().to_owned(),
        }
    }

    /// Checks that the fixture schema and seed were applied. SQLite: the
    /// three accounts exist with their balances. Mock: the server committed
    /// exactly the scripts' statements, in order, and the permissive policy
    /// let them through as unscripted, not as failures.
    fn assert_seeded(&self) {
        match &self.backend {
            Backend::Sqlite(db) => {
                let mut conn = db.connect().expect("inspection connection");
                let rows = conn
                    .query("SELECT owner, balance FROM accounts ORDER BY id", &[])
                    .expect("read the accounts");
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
                    conn.query("SELECT tag FROM writes", &[]).is_ok(),
                    "the writes table exists"
                );
            }
            Backend::Mock(server) => {
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
    }
}

impl<D: Driver> Harness<FaultyDriver<D>> {
    /// `inner` wrapped in the fault layer, no rule armed, journaling.
    fn faulty(inner: D, backend: Backend) -> Self {
        let journal = Journal::new();
        let driver = FaultyDriver::new(inner).with_journal(journal.clone());
        let faults = driver.faults();
        Harness {
            driver,
            backend,
            fault_layer: Some((faults, journal)),
        }
    }
}

/// Writes the row tagged `tag` and checks it changed one row.
fn write<C: Connection>(conn: &mut C, tag: &str) {
    let changed = conn
        .execute(WRITE_SQL, &[Value::from(tag), Value::Integer(0)])
        .unwrap_or_else(|e| panic!("write {tag:?} on {}: {e}", conn.id()));
    assert_eq!(changed, 1, "write {tag:?} changes one row");
}

/// Checks that the connection answers a query, with the right row.
fn probe<C: Connection>(conn: &mut C) {
    let rows = conn
        .query(PROBE_SQL, &[])
        .unwrap_or_else(|e| panic!("probe on {}: {e}", conn.id()));
    assert_eq!(rows.len(), 1, "the probe returns one row");
    assert_eq!(rows[0].get("one"), Some(&Value::Integer(1)));
}

/// `committed_writes` for no write.
fn none() -> Vec<String> {
    Vec::new()
}

/// A connection operation other than `close` and `in_transaction`.
#[derive(Debug, Clone, Copy)]
enum Call {
    Execute,
    Query,
    Begin,
    Commit,
    Rollback,
    Ping,
}

impl Call {
    fn run<C: Connection>(self, conn: &mut C) -> Result<()> {
        match self {
            Call::Execute => conn
                .execute(WRITE_SQL, &[Value::from("after-close"), Value::Integer(0)])
                .map(drop),
            Call::Query => conn.query(PROBE_SQL, &[]).map(drop),
            Call::Begin => conn.begin(),
            Call::Commit => conn.commit(),
            Call::Rollback => conn.rollback(),
            Call::Ping => conn.ping(),
        }
    }
}

// ---------------------------------------------------------------------------
// Identity.

#[rstest]
fn ids_are_stable_and_unique_per_connection(
    #[values(Kind::Sqlite, Kind::Mock, Kind::FaultySqlite, Kind::FaultyMock)] kind: Kind,
) {
    fn body<D: Driver>(h: &Harness<D>) {
        let mut a = h.connect();
        let mut b = h.connect();
        let c = h.connect();
        let ids = [a.id(), b.id(), c.id()];
        assert_eq!(
            ids.iter().collect::<BTreeSet<_>>().len(),
            3,
            "distinct ids: {ids:?}"
        );

        a.begin().expect("begin");
        write(&mut a, "a");
        a.commit().expect("commit");
        a.ping().expect("ping");
        probe(&mut a);
        assert_eq!(a.id(), ids[0], "the id survives every operation");

        b.close().expect("close");
        assert_eq!(b.id(), ids[1], "the id survives close");

        drop(c);
        let d = h.connect();
        assert!(
            !ids.contains(&d.id()),
            "a new connection reuses no id, not even a dropped one's"
        );
    }
    check!(kind, body);
}

// ---------------------------------------------------------------------------
// Transaction state.

#[rstest]
fn in_transaction_follows_begin_commit_and_rollback(
    #[values(Kind::Sqlite, Kind::Mock, Kind::FaultySqlite, Kind::FaultyMock)] kind: Kind,
) {
    fn body<D: Driver>(h: &Harness<D>) {
        let mut conn = h.connect();
        assert!(!conn.in_transaction(), "a new connection is in autocommit mode");
        conn.begin().expect("begin");
        assert!(conn.in_transaction(), "after begin");
        conn.commit().expect("commit");
        assert!(!conn.in_transaction(), "after commit");
        conn.begin().expect("begin again");
        assert!(conn.in_transaction(), "after the second begin");
        conn.rollback().expect("rollback");
        assert!(!conn.in_transaction(), "after rollback");
    }
    check!(kind, body);
}

#[rstest]
fn begin_twice_fails_and_the_transaction_stays_usable(
    #[values(Kind::Sqlite, Kind::Mock, Kind::FaultySqlite, Kind::FaultyMock)] kind: Kind,
) {
    fn body<D: Driver>(h: &Harness<D>) {
        let mut conn = h.connect();
        conn.begin().expect("begin");
        write(&mut conn, "before");
        let err = conn.begin().expect_err("begin while a transaction is open");
        assert_eq!(err.kind(), ErrorKind::Driver, "{err}");
        assert_eq!(h.dialect().classify(&err), ErrorClass::Statement, "{err}");
        assert!(
            conn.in_transaction(),
            "the open transaction survives the failed begin"
        );
        write(&mut conn, "after");
        conn.commit().expect("commit");
        assert!(!conn.in_transaction());
        assert_eq!(h.committed_writes(), ["before", "after"]);
    }
    check!(kind, body);
}

#[rstest]
fn rollback_without_a_transaction_is_a_no_op(
    #[values(Kind::Sqlite, Kind::Mock, Kind::FaultySqlite, Kind::FaultyMock)] kind: Kind,
) {
    fn body<D: Driver>(h: &Harness<D>) {
        let mut conn = h.connect();
        conn.rollback().expect("rollback on a new connection");
        assert!(!conn.in_transaction());
        write(&mut conn, "autocommitted");
        conn.rollback().expect("rollback after an autocommit write");
        conn.rollback().expect("and again");
        assert!(!conn.in_transaction());
        probe(&mut conn);
        assert_eq!(
            h.committed_writes(),
            ["autocommitted"],
            "a rollback with no transaction undoes nothing"
        );
    }
    check!(kind, body);
}

#[rstest]
fn commit_without_a_transaction_is_a_statement_error(
    #[values(Kind::Sqlite, Kind::Mock, Kind::FaultySqlite, Kind::FaultyMock)] kind: Kind,
) {
    fn body<D: Driver>(h: &Harness<D>) {
        let mut conn = h.connect();
        let err = conn.commit().expect_err("commit on a new connection");
        assert_eq!(err.kind(), ErrorKind::Driver, "{err}");
        assert_eq!(h.dialect().classify(&err), ErrorClass::Statement, "{err}");
        assert!(!conn.in_transaction());

        conn.begin().expect("begin");
        conn.commit().expect("commit");
        let err = conn.commit().expect_err("commit after the transaction ended");
        assert_eq!(h.dialect().classify(&err), ErrorClass::Statement, "{err}");
        assert!(!conn.in_transaction());

        probe(&mut conn);
        write(&mut conn, "still-usable");
        assert_eq!(h.committed_writes(), ["still-usable"]);
    }
    check!(kind, body);
}

#[rstest]
fn two_connections_have_independent_transaction_state(
    #[values(Kind::Sqlite, Kind::Mock, Kind::FaultySqlite, Kind::FaultyMock)] kind: Kind,
) {
    fn body<D: Driver>(h: &Harness<D>) {
        let mut a = h.connect();
        let mut b = h.connect();

        a.begin().expect("a begins");
        assert!(a.in_transaction());
        assert!(!b.in_transaction(), "a's begin opens nothing on b");
        write(&mut b, "b-autocommit");
        assert!(!b.in_transaction(), "b stays in autocommit mode");
        write(&mut a, "a-rolled-back");
        a.rollback().expect("a rolls back");
        assert_eq!(
            h.committed_writes(),
            ["b-autocommit"],
            "a's rollback undoes a's write, not b's"
        );

        b.begin().expect("b begins");
        assert!(b.in_transaction());
        assert!(!a.in_transaction(), "b's begin opens nothing on a");
        let err = a.commit().expect_err("a has no transaction to commit");
        assert_eq!(h.dialect().classify(&err), ErrorClass::Statement, "{err}");
        assert!(
            b.in_transaction(),
            "a's failed commit leaves b's transaction open"
        );
        write(&mut b, "b-committed");
        b.commit().expect("b commits");
        assert!(!a.in_transaction() && !b.in_transaction());
        assert_eq!(h.committed_writes(), ["b-autocommit", "b-committed"]);
    }
    check!(kind, body);
}

// ---------------------------------------------------------------------------
// What is committed.

#[rstest]
fn a_write_in_a_rolled_back_transaction_is_not_committed(
    #[values(Kind::Sqlite, Kind::Mock, Kind::FaultySqlite, Kind::FaultyMock)] kind: Kind,
) {
    fn body<D: Driver>(h: &Harness<D>) {
        let mut conn = h.connect();
        conn.begin().expect("begin");
        write(&mut conn, "rolled-back");
        conn.rollback().expect("rollback");
        assert!(!conn.in_transaction());
        assert_eq!(h.committed_writes(), none());

        write(&mut conn, "after");
        assert_eq!(
            h.committed_writes(),
            ["after"],
            "the connection keeps working and the rolled-back write stays gone"
        );
    }
    check!(kind, body);
}

#[rstest]
fn writes_in_a_committed_transaction_are_committed(
    #[values(Kind::Sqlite, Kind::Mock, Kind::FaultySqlite, Kind::FaultyMock)] kind: Kind,
) {
    fn body<D: Driver>(h: &Harness<D>) {
        let mut conn = h.connect();
        conn.begin().expect("begin");
        write(&mut conn, "first");
        write(&mut conn, "second");
        conn.commit().expect("commit");
        assert_eq!(h.committed_writes(), ["first", "second"]);
    }
    check!(kind, body);
}

#[rstest]
fn autocommit_writes_are_committed(
    #[values(Kind::Sqlite, Kind::Mock, Kind::FaultySqlite, Kind::FaultyMock)] kind: Kind,
) {
    fn body<D: Driver>(h: &Harness<D>) {
        let mut conn = h.connect();
        write(&mut conn, "one");
        assert!(!conn.in_transaction(), "a write opens no transaction");
        assert_eq!(h.committed_writes(), ["one"], "committed as soon as it ran");
        write(&mut conn, "two");
        drop(conn);
        assert_eq!(
            h.committed_writes(),
            ["one", "two"],
            "and dropping the connection keeps them"
        );
    }
    check!(kind, body);
}

#[rstest]
fn a_connection_dropped_with_an_open_transaction_does_not_commit_it(
    #[values(Kind::Sqlite, Kind::Mock, Kind::FaultySqlite, Kind::FaultyMock)] kind: Kind,
) {
    fn body<D: Driver>(h: &Harness<D>) {
        let mut conn = h.connect();
        conn.begin().expect("begin");
        write(&mut conn, "dropped");
        drop(conn);
        assert_eq!(h.committed_writes(), none());

        let mut next = h.connect();
        write(&mut next, "next");
        assert_eq!(
            h.committed_writes(),
            ["next"],
            "the dropped transaction left no lock behind"
        );
    }
    check!(kind, body);
}

#[rstest]
fn a_connection_closed_with_an_open_transaction_does_not_commit_it(
    #[values(Kind::Sqlite, Kind::Mock, Kind::FaultySqlite, Kind::FaultyMock)] kind: Kind,
) {
    fn body<D: Driver>(h: &Harness<D>) {
        let mut conn = h.connect();
        conn.begin().expect("begin");
        write(&mut conn, "closed");
        conn.close().expect("close");
        assert!(!conn.in_transaction());
        assert_eq!(h.committed_writes(), none());

        let mut next = h.connect();
        write(&mut next, "next");
        assert_eq!(h.committed_writes(), ["next"]);
    }
    check!(kind, body);
}

// ---------------------------------------------------------------------------
// Close.

#[rstest]
fn close_twice_is_ok(#[values(Kind::Sqlite, Kind::Mock, Kind::FaultySqlite, Kind::FaultyMock)] kind: Kind) {
    fn body<D: Driver>(h: &Harness<D>) {
        let mut conn = h.connect();
        probe(&mut conn);
        conn.close().expect("first close");
        conn.close().expect("second close");
        assert!(!conn.in_transaction());
        let err = conn.ping().expect_err("still closed after the second close");
        assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    }
    check!(kind, body);
}

#[rstest]
fn a_connection_is_broken_once_closed(
    #[values(Kind::Sqlite, Kind::Mock, Kind::FaultySqlite, Kind::FaultyMock)] kind: Kind,
) {
    fn body<D: Driver>(h: &Harness<D>) {
        let mut conn = h.connect();
        assert!(!conn.is_broken(), "a fresh connection is not broken");
        conn.begin().expect("begin");
        probe(&mut conn);
        assert!(!conn.is_broken(), "a transaction does not break it");
        conn.close().expect("close");
        assert!(conn.is_broken(), "a closed connection is broken");
        let boxed: Box<D::Connection> = Box::new(conn);
        assert!(boxed.is_broken(), "a box forwards is_broken");
    }
    check!(kind, body);
}

#[rstest]
fn every_operation_after_close_fails_closed_and_is_a_disconnect(
    #[values(Kind::Sqlite, Kind::Mock, Kind::FaultySqlite, Kind::FaultyMock)] kind: Kind,
    #[values(
        Call::Execute,
        Call::Query,
        Call::Begin,
        Call::Commit,
        Call::Rollback,
        Call::Ping
    )]
    call: Call,
) {
    fn body<D: Driver>(h: &Harness<D>, call: Call) {
        let mut conn = h.connect();
        let id = conn.id();
        conn.begin().expect("begin");
        write(&mut conn, "open");
        conn.close().expect("close");
        assert!(!conn.in_transaction(), "no transaction after close");

        let dialect = h.dialect();
        for attempt in 1..=2 {
            let err = call
                .run(&mut conn)
                .expect_err("an operation after close must fail");
            assert_eq!(
                err.kind(),
                ErrorKind::Closed,
                "{call:?} after close, attempt {attempt}: {err}"
            );
            assert_eq!(
                dialect.classify(&err),
                ErrorClass::Disconnect,
                "{call:?} after close, attempt {attempt}: {err}"
            );
            assert!(dialect.is_disconnect(&err));
        }
        assert!(!conn.in_transaction(), "still no transaction after {call:?}");
        assert_eq!(conn.id(), id);
        conn.close().expect("close once more");
        assert_eq!(h.committed_writes(), none(), "close rolled the transaction back");
    }
    check!(kind, |h| body(h, call));
}

// ---------------------------------------------------------------------------
// Liveness, dialect, scripts, errors.

#[rstest]
fn ping_succeeds_on_a_live_connection(
    #[values(Kind::Sqlite, Kind::Mock, Kind::FaultySqlite, Kind::FaultyMock)] kind: Kind,
) {
    fn body<D: Driver>(h: &Harness<D>) {
        let mut conn = h.connect();
        conn.ping().expect("ping a new connection");
        conn.begin().expect("begin");
        write(&mut conn, "in-transaction");
        conn.ping().expect("ping inside a transaction");
        assert!(
            conn.in_transaction(),
            "a ping neither ends nor commits the transaction"
        );
        conn.rollback().expect("rollback");
        conn.ping().expect("ping after rollback");
        assert_eq!(h.committed_writes(), none());
    }
    check!(kind, body);
}

#[rstest]
fn the_dialect_has_a_name_and_a_ping_statement(
    #[values(Kind::Sqlite, Kind::Mock, Kind::FaultySqlite, Kind::FaultyMock)] kind: Kind,
) {
    fn body<D: Driver>(h: &Harness<D>) {
        let dialect = h.dialect();
        assert!(!dialect.name().is_empty());
        assert!(!dialect.ping_sql().trim().is_empty());
        assert_eq!(
            dialect.name(),
            h.backend_dialect_name(),
            "the driver reports its backend's dialect"
        );
        let mut conn = h.connect();
        conn.query(dialect.ping_sql(), &[])
            .expect("the ping statement runs as a query");
    }
    check!(kind, body);
}

#[rstest]
fn run_script_applies_the_fixture_schema_and_seed(
    #[values(Kind::Sqlite, Kind::Mock, Kind::FaultySqlite, Kind::FaultyMock)] kind: Kind,
) {
    fn body<D: Driver>(h: &Harness<D>) {
        let mut conn = h.connect();
        assert_eq!(run_script(&mut conn, SCHEMA).expect("schema"), 3);
        assert_eq!(run_script(&mut conn, SEED).expect("seed"), 3);
        assert!(!conn.in_transaction(), "scripts run in autocommit mode");
        drop(conn);
        h.assert_seeded();
    }
    check!(kind, Setup::Empty, body);
}

#[rstest]
fn a_rejected_statement_is_a_statement_error_and_the_connection_lives(
    #[values(Kind::Sqlite, Kind::Mock, Kind::FaultySqlite, Kind::FaultyMock)] kind: Kind,
) {
    fn body<D: Driver>(h: &Harness<D>) {
        let mut conn = h.connect();
        let dialect = h.dialect();
        let errors = [
            conn.execute(REJECTED_SQL, &[]).map(drop),
            conn.query(REJECTED_SQL, &[]).map(drop),
        ];
        for (method, result) in ["execute", "query"].into_iter().zip(errors) {
            let err = result.expect_err("the driver rejects the statement");
            assert_eq!(err.kind(), ErrorKind::Driver, "{method}: {err}");
            assert_eq!(
                err.class(),
                ErrorClass::Statement,
                "{method}: classified by the driver: {err}"
            );
            assert_eq!(dialect.classify(&err), ErrorClass::Statement, "{method}: {err}");
            assert!(!dialect.is_disconnect(&err), "{method}: {err}");
        }
        assert!(!conn.in_transaction());
        conn.ping().expect("ping after the rejected statements");
        probe(&mut conn);
        write(&mut conn, "after");
        assert_eq!(h.committed_writes(), ["after"]);
    }
    check!(kind, body);
}

#[rstest]
fn a_rejected_statement_inside_a_transaction_leaves_it_open(
    #[values(Kind::Sqlite, Kind::Mock, Kind::FaultySqlite, Kind::FaultyMock)] kind: Kind,
) {
    fn body<D: Driver>(h: &Harness<D>) {
        let mut conn = h.connect();
        conn.begin().expect("begin");
        write(&mut conn, "before");
        let err = conn.execute(REJECTED_SQL, &[]).expect_err("rejected");
        assert_eq!(h.dialect().classify(&err), ErrorClass::Statement, "{err}");
        assert!(
            conn.in_transaction(),
            "the transaction survives the rejected statement"
        );
        write(&mut conn, "after");
        conn.commit().expect("commit");
        assert_eq!(
            h.committed_writes(),
            ["before", "after"],
            "both writes of the transaction commit"
        );
    }
    check!(kind, body);
}
