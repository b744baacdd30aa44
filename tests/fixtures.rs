//! The rstest fixtures users reach for, used as users would.

use std::time::Duration;

use dbfault::testing::fixtures::*;
use dbfault::testing::{ev, expect};
use dbfault::{Connection, EventKind, MockDriver, Op, Rule, SqliteDriver};
use rstest::rstest;

#[rstest]
fn the_mock_pool_is_fresh_and_permissive(mock_pool: PlainPool<MockDriver>) {
    let mut conn = mock_pool.pool.get().unwrap();
    assert_eq!(conn.execute("INSERT INTO anything VALUES (1)", &[]).unwrap(), 0);
    drop(conn);
    let server = mock_pool.server.as_ref().unwrap();
    assert_eq!(server.committed_sql(), ["INSERT INTO anything VALUES (1)"]);
    expect(&mock_pool.journal).in_order([EventKind::FirstConnect, EventKind::Checkout, EventKind::Checkin]);
}

#[rstest]
fn the_sqlite_pool_holds_the_fixture_data(sqlite_pool: PlainPool<SqliteDriver>) {
    let mut conn = sqlite_pool.engine.connect().unwrap();
    let rows = conn
        .query("SELECT sum(balance) AS total FROM accounts", &[])
        .unwrap();
    assert_eq!(rows[0].get("total").and_then(dbfault::Value::as_i64), Some(300));
}

#[rstest]
fn each_sqlite_fixture_is_a_fresh_database(
    sqlite_pool: PlainPool<SqliteDriver>,
    #[from(sqlite_pool)] other: PlainPool<SqliteDriver>,
) {
    sqlite_pool
        .engine
        .connect()
        .unwrap()
        .execute("DELETE FROM accounts", &[])
        .unwrap();
    let rows = other
        .engine
        .connect()
        .unwrap()
        .query("SELECT id FROM accounts", &[])
        .unwrap();
    assert_eq!(rows.len(), 3);
}

#[rstest]
fn the_faulty_mock_pool_shares_one_journal_with_its_fault_layer(faulty_mock_pool: FaultyPool<MockDriver>) {
    body(faulty_mock_pool);
}

#[rstest]
fn the_faulty_sqlite_pool_shares_one_journal_with_its_fault_layer(
    faulty_sqlite_pool: FaultyPool<SqliteDriver>,
) {
    body(faulty_sqlite_pool);
}

/// One body for both faulty fixtures.
fn body<D: dbfault::Driver>(f: FaultyPool<D>) {
    let _cut = f.faults.arm(Rule::on(Op::Execute).nth(1).disconnect()).unwrap();
    let mut conn = f.engine.connect().unwrap();
    let id = conn.pooled().unwrap().id();
    let err = conn.execute("SELECT 1", &[]).unwrap_err();
    assert!(err.connection_invalidated());
    expect(&f.journal).in_order([
        ev(EventKind::Fault).conn(id),
        ev(EventKind::Invalidate).conn(id),
        ev(EventKind::Close).conn(id),
        ev(EventKind::Checkin).conn(id),
    ]);
    // The manual clock is the pool's: a delay rule advances it.
    let _slow = f
        .faults
        .arm(Rule::on(Op::Execute).delay(Duration::from_secs(2)))
        .unwrap();
    let before = f.clock.now();
    conn.execute("SELECT 1", &[]).unwrap();
    assert_eq!(f.clock.now() - before, Duration::from_secs(2));
}
