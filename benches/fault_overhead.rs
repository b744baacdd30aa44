//! What the fault layer costs when it injects nothing.
//!
//! One criterion group, `point_select`, runs the same prepared point
//! `SELECT` on one named in-memory SQLite database (fixtures/schema.sql and
//! fixtures/seed.sql), with the id rotating over the seeded rows, through:
//!
//! 1. `rusqlite`: rusqlite itself, `prepare_cached` and `query_row` into a
//!    tuple: the floor;
//! 2. `sqlite_driver`: a [`SqliteDriver`] connection's `query`;
//! 3. `faulty_no_rules`: the same through `FaultyDriver<SqliteDriver>`
//!    with no rule armed;
//! 4. `faulty_10_rules`: the same with ten armed rules that never fire on
//!    this call: six on `query` whose statement or connection filter does
//!    not match, four on other operations.
//!
//! Goal: (3) at most 5% over (2), (4) at most 15% over (2). Compare the
//! `mean.point_estimate` of `target/criterion/point_select/*/new/estimates.json`.
//!
//! Run with `cargo bench --bench fault_overhead` (under a minute).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use dbfault::{
    ConnId, Connection, Driver, ErrorClass, FaultGuard, FaultyDriver, Op, Row, Rule, SqliteDriver, Value,
    run_script,
};

const SELECT: &str = "SELECT id, owner, balance FROM accounts WHERE id = ?1";

/// The name of the shared in-memory database; plain, so its URI needs no
/// escaping.
const DB_NAME: &str = "dbfault_bench_fault_overhead";

/// The ids of fixtures/seed.sql.
const IDS: [i64; 3] = [1, 2, 3];

/// Cycles through [`IDS`].
struct Ids(usize);

impl Ids {
    fn next(&mut self) -> i64 {
        self.0 = (self.0 + 1) % IDS.len();
        IDS[self.0]
    }
}

/// Ten rules that are armed but never fire on [`SELECT`] through a query
/// of connection `conn`: what a test suite typically leaves armed around
/// the statement under test.
fn idle_rules() -> Vec<Rule> {
    vec![
        Rule::on(Op::Query).matching("^INSERT INTO audit").disconnect(),
        Rule::on(Op::Query)
            .matching("DELETE")
            .error(ErrorClass::Transient),
        Rule::on(Op::Query)
            .matching(r"^UPDATE\s+accounts")
            .disconnect_after_apply(),
        Rule::on(Op::Query)
            .matching("FROM transfers")
            .delay(Duration::from_millis(5)),
        Rule::on(Op::Query)
            .matching("(?i)^pragma")
            .error(ErrorClass::Statement),
        Rule::on(Op::Query).conn(ConnId(i64::MAX as u64)).disconnect(),
        Rule::on(Op::Execute)
            .matching("^INSERT")
            .probability(0.5)
            .disconnect(),
        Rule::on(Op::Commit).nth(2).disconnect_after_apply(),
        Rule::on(Op::Ping).every(3).error(ErrorClass::Transient),
        Rule::on(Op::Connect).times(1).disconnect(),
    ]
}

fn seeded_driver() -> SqliteDriver {
    let driver = SqliteDriver::memory(DB_NAME).expect("open the in-memory database");
    let mut conn = driver.connect().expect("connect");
    run_script(&mut conn, include_str!("../fixtures/schema.sql")).expect("schema");
    run_script(&mut conn, include_str!("../fixtures/seed.sql")).expect("seed");
    conn.close().expect("close");
    driver
}

/// One query through a dbfault connection; criterion keeps the rows from
/// being optimised away.
fn select<C: Connection>(conn: &mut C, id: i64) -> Vec<Row> {
    conn.query(SELECT, &[Value::Integer(id)]).expect("query")
}

/// Checks once, outside the measurement, that `conn` sees the seeded row.
fn check<C: Connection>(conn: &mut C) {
    let rows = select(conn, 2);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].values(),
        [Value::Integer(2), Value::from("bob"), Value::Integer(100)]
    );
}

fn point_select(c: &mut Criterion) {
    // Keeps the database alive for the whole group.
    let driver = seeded_driver();

    let mut group = c.benchmark_group("point_select");

    let raw = rusqlite::Connection::open(format!("file:{DB_NAME}?mode=memory&cache=shared"))
        .expect("rusqlite open");
    let mut ids = Ids(0);
    // The floor: no conversion to dbfault's `Value`s and `Row`s.
    group.bench_function("rusqlite", |b| {
        b.iter(|| {
            let id = ids.next();
            let mut stmt = raw.prepare_cached(SELECT).expect("prepare");
            let row: (i64, String, i64) = stmt
                .query_row([black_box(id)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .expect("query_row");
            row
        })
    });

    let mut conn = driver.connect().expect("connect");
    check(&mut conn);
    group.bench_function("sqlite_driver", |b| {
        b.iter(|| select(&mut conn, black_box(ids.next())))
    });

    let faulty = FaultyDriver::new(driver.clone());
    // Connected before the rules are armed: one of them refuses a connect.
    let mut conn = faulty.connect().expect("connect");
    check(&mut conn);
    group.bench_function("faulty_no_rules", |b| {
        b.iter(|| select(&mut conn, black_box(ids.next())))
    });

    let faults = faulty.faults();
    let guards: Vec<FaultGuard> = idle_rules()
        .into_iter()
        .map(|rule| faults.arm(rule).expect("arm"))
        .collect();
    check(&mut conn);
    group.bench_function("faulty_10_rules", |b| {
        b.iter(|| select(&mut conn, black_box(ids.next())))
    });
    assert!(guards.iter().all(|g| g.hits() == 0), "no idle rule may fire");
    drop(guards);

    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = point_select
}
criterion_main!(benches);
