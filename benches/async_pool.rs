//! `AsyncPool` against bb8 and deadpool (managed) on one no-op connection.
//!
//! The shape of the public rust-pool-benchmark: M tasks on a multi-thread
//! runtime (2 workers), each doing 10 get+return, for (pool, tasks) in
//! (4, 4), (16, 64) and (4, 256); plus one uncontended get+return on a
//! current-thread runtime. All three pools serve the same connection type,
//! whose every operation returns at once; none validates on checkout, none
//! recycles by age, each is pre-filled before measuring and has a 30 s
//! checkout timeout.
//!
//! ```text
//! cargo bench --features tokio --bench async_pool
//! ```

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dbfault::{
    AsyncConnection, AsyncDriver, AsyncPool, ConnId, Dialect, Error, ErrorClass, ErrorKind, PoolConfig, Row,
    Value,
};
use tokio::runtime::{Builder, Runtime};

/// Get+return rounds per task in the contended shapes.
const ROUNDS: usize = 10;
/// (pool size, tasks) for the contended shapes.
const SHAPES: [(usize, usize); 3] = [(4, 4), (16, 64), (4, 256)];
/// Pool size for the uncontended shape.
const UNCONTENDED_POOL: usize = 4;
/// Every pool's checkout timeout: generous, never reached.
const TIMEOUT: Duration = Duration::from_secs(30);

// ----- the one no-op connection, behind the three pools' traits -----

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Debug)]
struct NoopDialect;

impl Dialect for NoopDialect {
    fn name(&self) -> &str {
        "noop"
    }

    fn classify(&self, err: &Error) -> ErrorClass {
        match err.kind() {
            ErrorKind::Closed => ErrorClass::Disconnect,
            _ => ErrorClass::Other,
        }
    }
}

/// A connection whose every operation succeeds without yielding.
#[derive(Debug)]
struct NoopConn {
    id: ConnId,
}

impl NoopConn {
    fn open() -> Self {
        NoopConn {
            id: ConnId(NEXT_ID.fetch_add(1, Ordering::Relaxed)),
        }
    }
}

impl AsyncConnection for NoopConn {
    fn id(&self) -> ConnId {
        self.id
    }
    async fn execute(&mut self, _sql: &str, _params: &[Value]) -> dbfault::Result<u64> {
        Ok(0)
    }
    async fn query(&mut self, _sql: &str, _params: &[Value]) -> dbfault::Result<Vec<Row>> {
        Ok(Vec::new())
    }
    async fn begin(&mut self) -> dbfault::Result<()> {
        Ok(())
    }
    async fn commit(&mut self) -> dbfault::Result<()> {
        Ok(())
    }
    async fn rollback(&mut self) -> dbfault::Result<()> {
        Ok(())
    }
    async fn ping(&mut self) -> dbfault::Result<()> {
        Ok(())
    }
    fn in_transaction(&self) -> bool {
        false
    }
    async fn close(&mut self) -> dbfault::Result<()> {
        Ok(())
    }
}

/// Opens [`NoopConn`]s for dbfault (as its driver), bb8 and deadpool (as
/// their managers).
#[derive(Debug)]
struct Noop {
    dialect: Arc<dyn Dialect>,
}

impl Noop {
    fn new() -> Self {
        Noop {
            dialect: Arc::new(NoopDialect),
        }
    }
}

impl AsyncDriver for Noop {
    type Connection = NoopConn;

    async fn connect(&self) -> dbfault::Result<NoopConn> {
        Ok(NoopConn::open())
    }

    fn dialect(&self) -> Arc<dyn Dialect> {
        Arc::clone(&self.dialect)
    }
}

impl bb8::ManageConnection for Noop {
    type Connection = NoopConn;
    type Error = Error;

    async fn connect(&self) -> Result<NoopConn, Error> {
        Ok(NoopConn::open())
    }

    async fn is_valid(&self, _conn: &mut NoopConn) -> Result<(), Error> {
        Ok(())
    }

    fn has_broken(&self, _conn: &mut NoopConn) -> bool {
        false
    }
}

impl deadpool::managed::Manager for Noop {
    type Type = NoopConn;
    type Error = Error;

    async fn create(&self) -> Result<NoopConn, Error> {
        Ok(NoopConn::open())
    }

    async fn recycle(
        &self,
        _conn: &mut NoopConn,
        _metrics: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<Error> {
        Ok(())
    }
}

// ----- the three pools behind one interface -----

/// What the benchmark does with a pool; the same code drives all three.
trait BenchPool: Clone + Send + Sync + 'static {
    /// A pool of `size` connections, none opened yet. Called inside the
    /// runtime that will drive it.
    fn build(size: usize) -> Self;
    /// Checks out `n` connections at once, then returns them all.
    fn fill(&self, n: usize) -> impl Future<Output = ()> + Send;
    /// One checkout, dropped at once.
    fn get_return(&self) -> impl Future<Output = ()> + Send;
}

type DbfaultPool = AsyncPool<Noop>;
type Bb8Pool = bb8::Pool<Noop>;
type DeadPool = deadpool::managed::Pool<Noop>;

impl BenchPool for DbfaultPool {
    fn build(size: usize) -> Self {
        let config = PoolConfig::new().size(size).max_overflow(0).timeout(TIMEOUT);
        AsyncPool::new(Noop::new(), config).expect("a valid config")
    }

    async fn fill(&self, n: usize) {
        let mut held = Vec::with_capacity(n);
        for _ in 0..n {
            held.push(self.get().await.expect("dbfault checkout"));
        }
    }

    async fn get_return(&self) {
        drop(self.get().await.expect("dbfault checkout"));
    }
}

impl BenchPool for Bb8Pool {
    fn build(size: usize) -> Self {
        bb8::Pool::builder()
            .max_size(u32::try_from(size).expect("a small pool"))
            .test_on_check_out(false)
            .max_lifetime(None)
            .idle_timeout(None)
            .connection_timeout(TIMEOUT)
            .build_unchecked(Noop::new())
    }

    async fn fill(&self, n: usize) {
        let mut held = Vec::with_capacity(n);
        for _ in 0..n {
            held.push(self.get().await.expect("bb8 checkout"));
        }
    }

    async fn get_return(&self) {
        drop(self.get().await.expect("bb8 checkout"));
    }
}

impl BenchPool for DeadPool {
    fn build(size: usize) -> Self {
        deadpool::managed::Pool::builder(Noop::new())
            .max_size(size)
            .wait_timeout(Some(TIMEOUT))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .expect("a valid deadpool config")
    }

    async fn fill(&self, n: usize) {
        let mut held = Vec::with_capacity(n);
        for _ in 0..n {
            held.push(self.get().await.expect("deadpool checkout"));
        }
    }

    async fn get_return(&self) {
        drop(self.get().await.expect("deadpool checkout"));
    }
}

// ----- shapes -----

/// A pool built and pre-filled on `rt`.
fn ready_pool<P: BenchPool>(rt: &Runtime, size: usize) -> P {
    rt.block_on(async {
        let pool = P::build(size);
        pool.fill(size).await;
        pool
    })
}

/// `iters` get+returns by one task.
fn uncontended<P: BenchPool>(rt: &Runtime, pool: &P, iters: u64) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            pool.get_return().await;
        }
        start.elapsed()
    })
}

/// `iters` times: `tasks` tasks each doing [`ROUNDS`] get+returns, all
/// joined.
fn contended<P: BenchPool>(rt: &Runtime, pool: &P, tasks: usize, iters: u64) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            let handles: Vec<_> = (0..tasks)
                .map(|_| {
                    let pool = pool.clone();
                    tokio::spawn(async move {
                        for _ in 0..ROUNDS {
                            pool.get_return().await;
                        }
                    })
                })
                .collect();
            for handle in handles {
                handle.await.expect("a benchmark task panicked");
            }
        }
        start.elapsed()
    })
}

fn current_thread() -> Runtime {
    Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn multi_thread() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

type Group<'a> = BenchmarkGroup<'a, WallTime>;

/// One pool, uncontended: a pre-filled pool, one task.
fn one_uncontended<P: BenchPool>(group: &mut Group<'_>, rt: &Runtime, name: &str) {
    let pool: P = ready_pool(rt, UNCONTENDED_POOL);
    group.bench_function(name, |b| b.iter_custom(|iters| uncontended(rt, &pool, iters)));
}

/// One pool in one contended shape.
fn one_contended<P: BenchPool>(
    group: &mut Group<'_>,
    rt: &Runtime,
    name: &str,
    (size, tasks): (usize, usize),
) {
    let pool: P = ready_pool(rt, size);
    let shape = format!("pool{size}_tasks{tasks}");
    group.bench_function(BenchmarkId::new(name, shape), |b| {
        b.iter_custom(|iters| contended(rt, &pool, tasks, iters))
    });
}

fn bench_uncontended(c: &mut Criterion) {
    let rt = current_thread();
    let mut group = c.benchmark_group("async_pool_uncontended");
    group.throughput(Throughput::Elements(1));
    one_uncontended::<DbfaultPool>(&mut group, &rt, "dbfault");
    one_uncontended::<Bb8Pool>(&mut group, &rt, "bb8");
    one_uncontended::<DeadPool>(&mut group, &rt, "deadpool");
    group.finish();
}

fn bench_contended(c: &mut Criterion) {
    let rt = multi_thread();
    let mut group = c.benchmark_group("async_pool_contended");
    for shape @ (_, tasks) in SHAPES {
        group.throughput(Throughput::Elements((tasks * ROUNDS) as u64));
        one_contended::<DbfaultPool>(&mut group, &rt, "dbfault", shape);
        one_contended::<Bb8Pool>(&mut group, &rt, "bb8", shape);
        one_contended::<DeadPool>(&mut group, &rt, "deadpool", shape);
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = bench_uncontended, bench_contended
}
criterion_main!(benches);
