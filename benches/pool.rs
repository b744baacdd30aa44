//! Pool and engine overhead, against r2d2 0.8 and raw rusqlite.
//!
//! - `uncontended`: one thread, get + return, dbfault's `Pool` vs r2d2 on the
//!   same no-op connection.
//! - `contended`: the shape of the public rust-pool-benchmark: `workers`
//!   threads each doing 10 get + return per iteration, for (pool 4, workers
//!   4) and (pool 16, workers 64). One iteration is `workers * 10`
//!   checkouts.
//! - `engine_point_select` (feature `sqlite`): `SELECT id, owner, balance
//!   FROM accounts WHERE id = ?1` through raw rusqlite (`prepare_cached`,
//!   `query_row`; and, for reference, `query_map` collected into a `Vec`);
//!   through `SqliteConnection::query_row_map` alone (what pool and engine
//!   add); through one `EngineConnection` held across iterations, reading
//!   the row in place (`query_row_map`, the goal's comparison: the same
//!   typed reads as the rusqlite case), as an owned `Row` (`query_row`) and
//!   as a `Vec<Row>` (`query`); and through `engine.connect()` + query per
//!   iteration (includes the pool checkout).
//!
//! The comparison is kept fair: r2d2 without validation on checkout
//! (`test_on_check_out(false)`) and dbfault without pre-ping or journal;
//! both pools are filled before measuring, so neither connects while timed;
//! both have a 30 s checkout timeout.
//!
//! Run: `cargo bench --bench pool`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime};
use dbfault::{ConnId, Connection, Dialect, Driver, ErrorClass, ErrorKind, Pool, PoolConfig, Row, Value};

/// Checkout timeout of both pools.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Get + return per worker per iteration in the contended shape.
const GETS_PER_WORKER: u64 = 10;

// ---------------------------------------------------------------------------
// The no-op connection both pools manage.

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A connection that does nothing and never fails.
#[derive(Debug)]
struct NoopConn {
    id: ConnId,
}

impl NoopConn {
    fn new() -> Self {
        NoopConn {
            id: ConnId(NEXT_ID.fetch_add(1, Ordering::Relaxed)),
        }
    }
}

impl Connection for NoopConn {
    fn id(&self) -> ConnId {
        self.id
    }
    fn execute(&mut self, _sql: &str, _params: &[Value]) -> dbfault::Result<u64> {
        Ok(0)
    }
    fn query(&mut self, _sql: &str, _params: &[Value]) -> dbfault::Result<Vec<Row>> {
        Ok(Vec::new())
    }
    fn begin(&mut self) -> dbfault::Result<()> {
        Ok(())
    }
    fn commit(&mut self) -> dbfault::Result<()> {
        Ok(())
    }
    fn rollback(&mut self) -> dbfault::Result<()> {
        Ok(())
    }
    fn ping(&mut self) -> dbfault::Result<()> {
        Ok(())
    }
    fn in_transaction(&self) -> bool {
        false
    }
    fn close(&mut self) -> dbfault::Result<()> {
        Ok(())
    }
}

/// The trivial dialect of the no-op driver.
#[derive(Debug)]
struct NoopDialect;

impl Dialect for NoopDialect {
    fn name(&self) -> &str {
        "noop"
    }
    fn classify(&self, err: &dbfault::Error) -> ErrorClass {
        match err.kind() {
            ErrorKind::Closed => ErrorClass::Disconnect,
            _ => ErrorClass::Other,
        }
    }
}

/// Opens [`NoopConn`]s for dbfault's pool.
#[derive(Debug)]
struct NoopDriver;

impl Driver for NoopDriver {
    type Connection = NoopConn;

    fn connect(&self) -> dbfault::Result<NoopConn> {
        Ok(NoopConn::new())
    }

    fn dialect(&self) -> Arc<dyn Dialect> {
        Arc::new(NoopDialect)
    }
}

/// Opens [`NoopConn`]s for r2d2.
#[derive(Debug)]
struct NoopManager;

impl r2d2::ManageConnection for NoopManager {
    type Connection = NoopConn;
    type Error = dbfault::Error;

    fn connect(&self) -> Result<NoopConn, dbfault::Error> {
        Ok(NoopConn::new())
    }

    fn is_valid(&self, _conn: &mut NoopConn) -> Result<(), dbfault::Error> {
        Ok(())
    }

    fn has_broken(&self, _conn: &mut NoopConn) -> bool {
        false
    }
}

// ---------------------------------------------------------------------------
// The two pools, behind one interface.

/// A pool under test: get a connection, drop it to return it.
trait BenchPool: Sync {
    /// Checks out a connection and returns it at once.
    fn get_and_return(&self);

    /// Holds `n` connections at once, then returns them: fills the pool so
    /// nothing connects while measured.
    fn fill(&self, n: usize);
}

fn dbfault_pool(n: usize) -> Pool<NoopDriver> {
    let config = PoolConfig::new()
        .size(n)
        .max_overflow(0)
        .timeout(TIMEOUT)
        .pre_ping(false);
    let pool = Pool::new(NoopDriver, config).expect("pool config");
    pool.fill(n);
    assert_eq!(pool.status().checked_in, n);
    pool
}

impl BenchPool for Pool<NoopDriver> {
    fn get_and_return(&self) {
        drop(std::hint::black_box(self.get().expect("dbfault checkout")));
    }

    fn fill(&self, n: usize) {
        let held: Vec<_> = (0..n).map(|_| self.get().expect("dbfault checkout")).collect();
        drop(held);
    }
}

fn r2d2_pool(n: usize) -> r2d2::Pool<NoopManager> {
    let size = u32::try_from(n).expect("pool size fits u32");
    let pool = r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(size))
        .test_on_check_out(false)
        .connection_timeout(TIMEOUT)
        .build(NoopManager)
        .expect("r2d2 pool");
    pool.fill(n);
    assert_eq!(pool.state().idle_connections, size);
    pool
}

impl BenchPool for r2d2::Pool<NoopManager> {
    fn get_and_return(&self) {
        drop(std::hint::black_box(self.get().expect("r2d2 checkout")));
    }

    fn fill(&self, n: usize) {
        let held: Vec<_> = (0..n).map(|_| self.get().expect("r2d2 checkout")).collect();
        drop(held);
    }
}

// ---------------------------------------------------------------------------
// Groups.

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40);
}

fn uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("uncontended");
    configure(&mut group);
    let dbfault = dbfault_pool(1);
    group.bench_function("dbfault", |b| b.iter(|| dbfault.get_and_return()));
    let r2d2 = r2d2_pool(1);
    group.bench_function("r2d2", |b| b.iter(|| r2d2.get_and_return()));
    group.finish();
}

/// `workers` threads, each doing [`GETS_PER_WORKER`] get + return per
/// iteration. The threads are spawned before the clock starts and released
/// together by a barrier, so thread creation is not measured.
fn run_workers<P: BenchPool>(pool: &P, workers: usize, iters: u64) -> Duration {
    let barrier = Barrier::new(workers);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters * GETS_PER_WORKER {
                        pool.get_and_return();
                    }
                    (start, Instant::now())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("worker")).collect()
    });
    // From the first worker's start to the last one's end: each worker reads
    // its start before its first checkout, so no work escapes the span, even
    // when a thread is descheduled right after the barrier.
    let start = spans.iter().map(|s| s.0).min().expect("at least one worker");
    let end = spans.iter().map(|s| s.1).max().expect("at least one worker");
    end - start
}

fn contended(c: &mut Criterion) {
    let mut group = c.benchmark_group("contended");
    configure(&mut group);
    for (size, workers) in [(4, 4), (16, 64)] {
        let shape = format!("pool{size}_workers{workers}");
        let dbfault = dbfault_pool(size);
        group.bench_function(format!("dbfault/{shape}"), |b| {
            b.iter_custom(|iters| run_workers(&dbfault, workers, iters))
        });
        drop(dbfault);
        let r2d2 = r2d2_pool(size);
        group.bench_function(format!("r2d2/{shape}"), |b| {
            b.iter_custom(|iters| run_workers(&r2d2, workers, iters))
        });
    }
    group.finish();
}

#[cfg(feature = "sqlite")]
mod engine {
    //! `Engine` over SQLite against raw rusqlite, one point SELECT.

    use super::configure;
    use criterion::Criterion;
    use dbfault::{Connection, Driver, Engine, Pool, PoolConfig, SqliteDriver, Value};
    use std::hint::black_box;

    const SELECT: &str = "SELECT id, owner, balance FROM accounts WHERE id = ?1";

    /// The account ids the SELECT rotates through.
    fn next_id(i: &mut i64) -> i64 {
        *i = *i % 3 + 1;
        *i
    }

    pub(super) fn point_select(c: &mut Criterion) {
        // One named shared in-memory database; raw rusqlite opens the same
        // one, so both read the same pages the same way.
        let name = "dbfault-bench-point-select";
        let driver = SqliteDriver::memory(name).expect("sqlite memory database");
        let engine = Engine::new(Pool::new(driver.clone(), PoolConfig::new().size(1)).expect("pool"));
        {
            let mut conn = engine.connect().expect("connect");
            conn.run_script(include_str!("../fixtures/schema.sql"))
                .expect("schema");
            conn.run_script(include_str!("../fixtures/seed.sql"))
                .expect("seed");
        }
        let uri = format!("file:{name}?mode=memory&cache=shared");
        let raw = rusqlite::Connection::open(&uri).expect("raw rusqlite connection");

        let mut group = c.benchmark_group("engine_point_select");
        configure(&mut group);

        let mut i = 0;
        group.bench_function("rusqlite", |b| {
            b.iter(|| {
                let id = next_id(&mut i);
                let mut stmt = raw.prepare_cached(SELECT).expect("prepare");
                let row: (i64, String, i64) = stmt
                    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .expect("row");
                black_box(row)
            })
        });

        // Raw rusqlite collecting every row, as a query returning a list
        // must (it steps once more to see the end): a reference, not a goal.
        group.bench_function("rusqlite_collect", |b| {
            b.iter(|| {
                let id = next_id(&mut i);
                let mut stmt = raw.prepare_cached(SELECT).expect("prepare");
                let rows: Vec<(i64, String, i64)> = stmt
                    .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .expect("query")
                    .collect::<rusqlite::Result<_>>()
                    .expect("rows");
                assert_eq!(rows.len(), 1);
                black_box(rows)
            })
        });

        // The driver alone, without pool or engine: what they add.
        let mut direct = driver.connect().expect("connect");
        group.bench_function("driver_query_row_map", |b| {
            b.iter(|| {
                let id = next_id(&mut i);
                let row = direct
                    .query_row_map(SELECT, &[Value::Integer(id)], |r| {
                        Ok((r.get::<i64>(0)?, r.get::<String>(1)?, r.get::<i64>(2)?))
                    })
                    .expect("query");
                black_box(row.expect("a row"))
            })
        });
        drop(direct);

        let mut conn = engine.connect().expect("connect");
        // The point lookup as users write it: one row, like `query_row`.
        group.bench_function("engine_query_row", |b| {
            b.iter(|| {
                let id = next_id(&mut i);
                let row = conn.query_row(SELECT, &[Value::Integer(id)]).expect("query");
                black_box(row.expect("a row"))
            })
        });
        // The same, read in place as the rusqlite case reads it.
        group.bench_function("engine_query_row_map", |b| {
            b.iter(|| {
                let id = next_id(&mut i);
                let row = conn
                    .query_row_map(SELECT, &[Value::Integer(id)], |r| {
                        Ok((r.get::<i64>(0)?, r.get::<String>(1)?, r.get::<i64>(2)?))
                    })
                    .expect("query");
                black_box(row.expect("a row"))
            })
        });
        group.bench_function("engine_held_connection", |b| {
            b.iter(|| {
                let id = next_id(&mut i);
                let rows = conn.query(SELECT, &[Value::Integer(id)]).expect("query");
                assert_eq!(rows.len(), 1);
                black_box(rows)
            })
        });
        drop(conn);

        group.bench_function("engine_connect_per_query", |b| {
            b.iter(|| {
                let id = next_id(&mut i);
                let mut conn = engine.connect().expect("connect");
                let rows = conn.query(SELECT, &[Value::Integer(id)]).expect("query");
                assert_eq!(rows.len(), 1);
                black_box(rows)
            })
        });
        group.finish();
    }
}

#[cfg(feature = "sqlite")]
fn engine_point_select(c: &mut Criterion) {
    engine::point_select(c);
}

#[cfg(not(feature = "sqlite"))]
fn engine_point_select(_c: &mut Criterion) {}

criterion_group!(benches, uncontended, contended, engine_point_select);
criterion_main!(benches);
