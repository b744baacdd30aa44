//! What `Faults::attach` and `FaultyManager` cost when they inject nothing.
//!
//! Three criterion groups, each against its peer in the same run:
//!
//! - `point_select`: `SELECT id, owner, balance FROM accounts WHERE id = ?1`
//!   on an in-memory SQLite database of 1000 rows, the id rotating over
//!   them, with rusqlite's `prepare_cached` + `query_row`:
//!   `plain` (a rusqlite connection) against `attached` (a connection just
//!   like it, with `Faults::attach` and no rule armed). Goal: at most 5%
//!   over `plain`. `plain_uncached` and `attached_uncached` run the same
//!   with `Connection::query_row`, which prepares the statement each time
//!   (so SQLite asks the authorizer), for reference.
//! - `point_select_10_rules`: the same, with ten rules armed on the
//!   attached connection's fault layer that never fire on it (three on
//!   `query` whose connection or statement filter does not match, seven on
//!   other operations). Goal: at most 15% over `plain`. A cached statement
//!   is not prepared again, so the authorizer does not run and the rules
//!   are never looked at; `*_uncached` prepare each time, and so check the
//!   rules on `query` once per call: both are reported.
//! - `r2d2_get_return`: `pool.get()` then drop, on an r2d2 pool of 4
//!   rusqlite connections over a database file in WAL mode (the shape of
//!   r2d2_sqlite's manager), through `FaultyManager` against plain r2d2
//!   with the same inner manager. Goal: at most 10% over plain. `validated`
//!   is r2d2's default (`test_on_check_out`: `is_valid` at each checkout);
//!   `unvalidated` turns that off.
//!
//! Compare the `mean.point_estimate` of
//! `target/criterion/<group>/<bench>/new/estimates.json`.
//!
//! Run with `cargo bench --features sqlite,r2d2 --bench hooks` (about a
//! minute).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime};
use dbfault::{ConnId, ErrorClass, FaultGuard, Faults, FaultyManager, Op, Rule};
use rusqlite::Connection;

const SELECT: &str = "SELECT id, owner, balance FROM accounts WHERE id = ?1";

/// Rows in the table.
const ROWS: i64 = 1000;

const SCHEMA: &str = "CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    owner TEXT NOT NULL,
    balance INTEGER NOT NULL
);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
INSERT INTO accounts SELECT i, 'owner-' || i, i * 10 FROM n;";

/// Walks the ids 1..=[`ROWS`] with a prime stride, so consecutive
/// lookups land on different pages of the table's b-tree.
struct Ids(i64);

impl Ids {
    fn next(&mut self) -> i64 {
        self.0 = (self.0 + 379) % ROWS;
        self.0 + 1
    }
}

type Account = (i64, String, i64);

fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

/// The lookup as applications write it: a cached statement.
fn cached(conn: &Connection, id: i64) -> Account {
    let mut stmt = conn.prepare_cached(SELECT).expect("prepare");
    stmt.query_row([id], read).expect("query_row")
}

/// The same, prepared on each call: SQLite asks the authorizer each time.
fn uncached(conn: &Connection, id: i64) -> Account {
    conn.query_row(SELECT, [id], read).expect("query_row")
}

/// A private in-memory database with the 1000 accounts.
fn seeded() -> Connection {
    let conn = Connection::open_in_memory().expect("open");
    conn.execute_batch(SCHEMA).expect("schema");
    let n: i64 = conn
        .query_row("SELECT count(*) FROM accounts", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n, ROWS);
    conn
}

/// Checks once, outside the measurement, that `conn` answers the lookup.
fn check(conn: &Connection) {
    let want = (7, "owner-7".to_owned(), 70);
    assert_eq!(cached(conn, 7), want);
    assert_eq!(uncached(conn, 7), want);
}

/// Ten rules a test suite might leave armed around the statement under
/// test, none of which fires on the lookup: three on `query` (another
/// connection; statements the hooks never report as a query's text),
/// seven on other operations.
fn idle_rules() -> Vec<Rule> {
    vec![
        Rule::on(Op::Query).conn(ConnId(999_999)).disconnect(),
        Rule::on(Op::Query)
            .matching("FROM transfers")
            .delay(Duration::from_millis(5)),
        Rule::on(Op::Query)
            .matching("(?i)^pragma")
            .error(ErrorClass::Statement),
        Rule::on(Op::Execute).matching("^INSERT INTO audit").disconnect(),
        Rule::on(Op::Execute)
            .matching(r"^UPDATE\s+accounts")
            .error(ErrorClass::Transient),
        Rule::on(Op::Execute)
            .matching("DELETE")
            .probability(0.5)
            .disconnect(),
        Rule::on(Op::Commit).nth(2).disconnect(),
        Rule::on(Op::Begin).every(3).error(ErrorClass::Transient),
        Rule::on(Op::Rollback).delay(Duration::from_millis(1)),
        Rule::on(Op::Connect).times(1).disconnect(),
    ]
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
}

/// Benches `plain` and `attached` in `group`, cached then uncached, under
/// the names `plain`, `<name>`, `plain_uncached`, `<name>_uncached`.
fn peers(group: &mut BenchmarkGroup<'_, WallTime>, plain: &Connection, attached: &Connection, name: &str) {
    let mut ids = Ids(0);
    group.bench_function("plain", |b| b.iter(|| cached(plain, black_box(ids.next()))));
    group.bench_function(name, |b| b.iter(|| cached(attached, black_box(ids.next()))));
    group.bench_function("plain_uncached", |b| {
        b.iter(|| uncached(plain, black_box(ids.next())))
    });
    group.bench_function(format!("{name}_uncached"), |b| {
        b.iter(|| uncached(attached, black_box(ids.next())))
    });
}

fn point_select(c: &mut Criterion) {
    let plain = seeded();
    check(&plain);
    let faults = Faults::new();
    let mut attached = seeded();
    faults.attach(&mut attached).expect("attach");
    check(&attached);

    let mut group = c.benchmark_group("point_select");
    configure(&mut group);
    peers(&mut group, &plain, &attached, "attached");
    group.finish();

    let mut group = c.benchmark_group("point_select_10_rules");
    configure(&mut group);
    let guards: Vec<FaultGuard> = idle_rules()
        .into_iter()
        .map(|rule| faults.arm(rule).expect("arm"))
        .collect();
    check(&attached);
    peers(&mut group, &plain, &attached, "attached_10_rules");
    assert!(guards.iter().all(|g| g.hits() == 0), "no idle rule may fire");
    group.finish();
}

/// What r2d2_sqlite's manager does: open the file, validate with an empty
/// batch, never report a connection broken.
#[derive(Debug)]
struct FileManager(PathBuf);

impl r2d2::ManageConnection for FileManager {
    type Connection = Connection;
    type Error = rusqlite::Error;

    fn connect(&self) -> Result<Connection, rusqlite::Error> {
        let conn = Connection::open(&self.0)?;
        conn.execute_batch("PRAGMA journal_mode = WAL")?;
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut Connection) -> Result<(), rusqlite::Error> {
        conn.execute_batch("")
    }

    fn has_broken(&self, _: &mut Connection) -> bool {
        false
    }
}

const POOL_SIZE: u32 = 4;

/// A pool of [`POOL_SIZE`] connections, all opened before it returns, so
/// nothing connects while measured.
fn pool<M: r2d2::ManageConnection>(manager: M, validated: bool) -> r2d2::Pool<M> {
    let pool = r2d2::Pool::builder()
        .max_size(POOL_SIZE)
        .min_idle(Some(POOL_SIZE))
        .test_on_check_out(validated)
        .connection_timeout(Duration::from_secs(30))
        .build(manager)
        .expect("r2d2 pool");
    assert_eq!(pool.state().idle_connections, POOL_SIZE);
    pool
}

fn r2d2_get_return(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.db");
    seed_file(&path);

    let mut group = c.benchmark_group("r2d2_get_return");
    configure(&mut group);
    for validated in [true, false] {
        let shape = if validated { "validated" } else { "unvalidated" };
        let faults = Faults::new();
        let plain = pool(FileManager(path.clone()), validated);
        group.bench_function(format!("plain/{shape}"), |b| {
            b.iter(|| drop(black_box(plain.get().expect("checkout"))))
        });
        let faulty = pool(FaultyManager::new(FileManager(path.clone()), &faults), validated);
        group.bench_function(format!("faulty/{shape}"), |b| {
            b.iter(|| drop(black_box(faulty.get().expect("checkout"))))
        });
        // The faulty pool's connections are attached and alive: none was
        // dropped as broken on the way.
        assert_eq!(faults.live_connections().len(), POOL_SIZE as usize);
        drop(faulty);
    }
    group.finish();
}

fn seed_file(path: &Path) {
    let conn = Connection::open(path).expect("open");
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .expect("wal");
    assert_eq!(mode, "wal");
    conn.execute_batch(SCHEMA).expect("schema");
}

criterion_group!(benches, point_select, r2d2_get_return);
criterion_main!(benches);
