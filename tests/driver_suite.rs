//! The `Driver` / `Connection` contract, once, for every driver.
//!
//! Each test is one generic body, `fn body<D: Driver>(h: &Harness<D>)`, run
//! by `contract!` (tests/common/driver.rs) against every driver kind: real
//! SQLite (a fresh fixture database per test), the mock, real PostgreSQL
//! (a fresh schema per test, found by `pg_url`), their async forms
//! (`Blocking<SqliteDriver>`, `AsyncMockDriver`, `AsyncPgDriver`, behind
//! the `Synced` adapter), each bare and under the fault layer with no rule
//! armed. On PostgreSQL every body ends with the leak check: no session
//! of the test is left in a transaction or holding a lock.

#![cfg(all(feature = "sqlite", feature = "tokio"))]

mod common;

use std::collections::BTreeSet;

use common::Kind::{self, AsyncMock, AsyncPostgres, AsyncSqlite, Mock, Postgres, Sqlite};
use common::driver::{Harness, PROBE_SQL, REJECTED_SQL, SCHEMA, SEED, Setup, Stack};
use common::{run_op, write_sql};
use dbfault::{Connection, Driver, ErrorClass, ErrorKind, Op, Value, run_script};
use rstest::rstest;

// ---------------------------------------------------------------------------
// Body helpers.

/// Writes the row tagged `tag` and checks it changed one row.
fn write<C: Connection>(conn: &mut C, tag: &str) {
    let changed = conn
        .execute(&write_sql(tag), &[])
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

// ---------------------------------------------------------------------------
// Identity.

#[rstest]
fn ids_are_stable_and_unique_per_connection(
    #[values(Sqlite, Mock, AsyncSqlite, AsyncMock, Postgres, AsyncPostgres)] kind: Kind,
    #[values(Stack::Bare, Stack::Faulty)] stack: Stack,
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
    contract!(kind, stack, body);
}

// ---------------------------------------------------------------------------
// Transaction state.

#[rstest]
fn in_transaction_follows_begin_commit_and_rollback(
    #[values(Sqlite, Mock, AsyncSqlite, AsyncMock, Postgres, AsyncPostgres)] kind: Kind,
    #[values(Stack::Bare, Stack::Faulty)] stack: Stack,
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
    contract!(kind, stack, body);
}

#[rstest]
fn begin_twice_fails_and_the_transaction_stays_usable(
    #[values(Sqlite, Mock, AsyncSqlite, AsyncMock, Postgres, AsyncPostgres)] kind: Kind,
    #[values(Stack::Bare, Stack::Faulty)] stack: Stack,
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
    contract!(kind, stack, body);
}

#[rstest]
fn rollback_without_a_transaction_is_a_no_op(
    #[values(Sqlite, Mock, AsyncSqlite, AsyncMock, Postgres, AsyncPostgres)] kind: Kind,
    #[values(Stack::Bare, Stack::Faulty)] stack: Stack,
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
    contract!(kind, stack, body);
}

#[rstest]
fn commit_without_a_transaction_is_a_statement_error(
    #[values(Sqlite, Mock, AsyncSqlite, AsyncMock, Postgres, AsyncPostgres)] kind: Kind,
    #[values(Stack::Bare, Stack::Faulty)] stack: Stack,
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
    contract!(kind, stack, body);
}

#[rstest]
fn two_connections_have_independent_transaction_state(
    #[values(Sqlite, Mock, AsyncSqlite, AsyncMock, Postgres, AsyncPostgres)] kind: Kind,
    #[values(Stack::Bare, Stack::Faulty)] stack: Stack,
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
    contract!(kind, stack, body);
}

// ---------------------------------------------------------------------------
// What is committed.

#[rstest]
fn a_write_in_a_rolled_back_transaction_is_not_committed(
    #[values(Sqlite, Mock, AsyncSqlite, AsyncMock, Postgres, AsyncPostgres)] kind: Kind,
    #[values(Stack::Bare, Stack::Faulty)] stack: Stack,
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
    contract!(kind, stack, body);
}

#[rstest]
fn writes_in_a_committed_transaction_are_committed(
    #[values(Sqlite, Mock, AsyncSqlite, AsyncMock, Postgres, AsyncPostgres)] kind: Kind,
    #[values(Stack::Bare, Stack::Faulty)] stack: Stack,
) {
    fn body<D: Driver>(h: &Harness<D>) {
        let mut conn = h.connect();
        conn.begin().expect("begin");
        write(&mut conn, "first");
        write(&mut conn, "second");
        conn.commit().expect("commit");
        assert_eq!(h.committed_writes(), ["first", "second"]);
    }
    contract!(kind, stack, body);
}

#[rstest]
fn autocommit_writes_are_committed(
    #[values(Sqlite, Mock, AsyncSqlite, AsyncMock, Postgres, AsyncPostgres)] kind: Kind,
    #[values(Stack::Bare, Stack::Faulty)] stack: Stack,
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
    contract!(kind, stack, body);
}

#[rstest]
fn a_connection_dropped_with_an_open_transaction_does_not_commit_it(
    #[values(Sqlite, Mock, AsyncSqlite, AsyncMock, Postgres, AsyncPostgres)] kind: Kind,
    #[values(Stack::Bare, Stack::Faulty)] stack: Stack,
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
    contract!(kind, stack, body);
}

#[rstest]
fn a_connection_closed_with_an_open_transaction_does_not_commit_it(
    #[values(Sqlite, Mock, AsyncSqlite, AsyncMock, Postgres, AsyncPostgres)] kind: Kind,
    #[values(Stack::Bare, Stack::Faulty)] stack: Stack,
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
    contract!(kind, stack, body);
}

// ---------------------------------------------------------------------------
// Close.

#[rstest]
fn close_twice_is_ok(
    #[values(Sqlite, Mock, AsyncSqlite, AsyncMock, Postgres, AsyncPostgres)] kind: Kind,
    #[values(Stack::Bare, Stack::Faulty)] stack: Stack,
) {
    fn body<D: Driver>(h: &Harness<D>) {
        let mut conn = h.connect();
        probe(&mut conn);
        conn.close().expect("first close");
        conn.close().expect("second close");
        assert!(!conn.in_transaction());
        let err = conn.ping().expect_err("still closed after the second close");
        assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    }
    contract!(kind, stack, body);
}

#[rstest]
fn a_connection_is_broken_once_closed(
    #[values(Sqlite, Mock, AsyncSqlite, AsyncMock, Postgres, AsyncPostgres)] kind: Kind,
    #[values(Stack::Bare, Stack::Faulty)] stack: Stack,
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
    contract!(kind, stack, body);
}

#[rstest]
fn every_operation_after_close_fails_closed_and_is_a_disconnect(
    #[values(Sqlite, Mock, AsyncSqlite, AsyncMock, Postgres, AsyncPostgres)] kind: Kind,
    #[values(Stack::Bare, Stack::Faulty)] stack: Stack,
    #[values(Op::Execute, Op::Query, Op::Begin, Op::Commit, Op::Rollback, Op::Ping)] call: Op,
) {
    fn body<D: Driver>(h: &Harness<D>, call: Op) {
        let mut conn = h.connect();
        let id = conn.id();
        conn.begin().expect("begin");
        write(&mut conn, "open");
        conn.close().expect("close");
        assert!(!conn.in_transaction(), "no transaction after close");

        let dialect = h.dialect();
        for attempt in 1..=2 {
            let err = run_op(&mut conn, call).expect_err("an operation after close must fail");
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
    contract!(kind, stack, |h| body(h, call));
}

// ---------------------------------------------------------------------------
// Liveness, dialect, scripts, errors.

#[rstest]
fn ping_succeeds_on_a_live_connection(
    #[values(Sqlite, Mock, AsyncSqlite, AsyncMock, Postgres, AsyncPostgres)] kind: Kind,
    #[values(Stack::Bare, Stack::Faulty)] stack: Stack,
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
    contract!(kind, stack, body);
}

#[rstest]
fn the_dialect_has_a_name_and_a_ping_statement(
    #[values(Sqlite, Mock, AsyncSqlite, AsyncMock, Postgres, AsyncPostgres)] kind: Kind,
    #[values(Stack::Bare, Stack::Faulty)] stack: Stack,
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
    contract!(kind, stack, body);
}

#[rstest]
fn run_script_applies_the_fixture_schema_and_seed(
    #[values(Sqlite, Mock, AsyncSqlite, AsyncMock, Postgres, AsyncPostgres)] kind: Kind,
    #[values(Stack::Bare, Stack::Faulty)] stack: Stack,
) {
    fn body<D: Driver>(h: &Harness<D>) {
        let mut conn = h.connect();
        assert_eq!(run_script(&mut conn, SCHEMA).expect("schema"), 3);
        assert_eq!(run_script(&mut conn, SEED).expect("seed"), 3);
        assert!(!conn.in_transaction(), "scripts run in autocommit mode");
        drop(conn);
        h.assert_seeded();
    }
    contract!(kind, stack, Setup::Empty, body);
}

#[rstest]
fn a_rejected_statement_is_a_statement_error_and_the_connection_lives(
    #[values(Sqlite, Mock, AsyncSqlite, AsyncMock, Postgres, AsyncPostgres)] kind: Kind,
    #[values(Stack::Bare, Stack::Faulty)] stack: Stack,
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
    contract!(kind, stack, body);
}

#[rstest]
fn a_rejected_statement_inside_a_transaction_leaves_it_open(
    #[values(Sqlite, Mock, AsyncSqlite, AsyncMock, Postgres, AsyncPostgres)] kind: Kind,
    #[values(Stack::Bare, Stack::Faulty)] stack: Stack,
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
        if h.backend().errors_abort_transactions() {
            // PostgreSQL aborted the transaction: it refuses the rest of
            // it, and its commit rolls it back.
            let err = conn.execute(&write_sql("after"), &[]).expect_err("aborted");
            assert_eq!(err.code(), Some("25P02"), "{err}");
            assert_eq!(err.class(), ErrorClass::Statement, "{err}");
            assert!(conn.in_transaction(), "still open until it ends");
            let err = conn.commit().expect_err("the commit of an aborted transaction");
            assert_eq!(err.code(), Some("25P02"), "{err}");
            assert!(!conn.in_transaction(), "the commit ended it");
            assert_eq!(h.committed_writes(), none(), "and nothing of it is committed");
            write(&mut conn, "next");
            assert_eq!(h.committed_writes(), ["next"]);
            return;
        }
        write(&mut conn, "after");
        conn.commit().expect("commit");
        assert_eq!(
            h.committed_writes(),
            ["before", "after"],
            "both writes of the transaction commit"
        );
    }
    contract!(kind, stack, body);
}
