//! Cancellation safety of the tokio shell: every checkout, statement,
//! begin, commit and rollback is dropped at each of its await points in
//! turn (`testing::cancel_at_every_await`), against the mock and real
//! SQLite, and after each drop the pool must have lost no slot and no
//! connection, and hand out no connection inside a transaction (sqlx
//! issues 4385/4393).

mod common;

use std::time::Duration;

use common::{H, Kind, TestConn, TestEngine, TestEngineConn, TestPool, TestTx, write_sql};
use dbfault::testing::cancel_at_every_await;
use dbfault::{EventKind, Op, PoolConfig, Rule};
use rstest::rstest;

/// After a cancellation: nothing out, counters straight, and every slot
/// still serves a clean connection.
async fn check_pool<P: TestPool>(h: &H<P>, k: usize, size: usize) {
    h.wait_out(0).await;
    h.assert_consistent();
    let status = h.pool.status();
    assert_eq!(
        status.waiting, 0,
        "after drop at await {k}: a waiter was left behind"
    );
    let mut conns = Vec::new();
    for _ in 0..size {
        let conn = h
            .pool
            .get()
            .await
            .unwrap_or_else(|e| panic!("after drop at await {k}: {e}"));
        assert!(
            !conn.in_transaction(),
            "after drop at await {k}: handed out inside a transaction"
        );
        conns.push(conn);
    }
    drop(conns);
    h.wait_out(0).await;
}

#[rstest]
fn checkout_cancelled_at_every_await(#[values(Kind::Mock, Kind::Sqlite)] kind: Kind) {
    async fn body<P: TestPool>(h: H<P>) {
        let h = &h;
        // An empty pool: the checkout connects (each run starts from an
        // empty pool again, so every cancellation lands in the connect).
        let yields = cancel_at_every_await(
            || {
                let pool = h.pool.clone();
                async move { pool.get().await.map(|_| ()) }
            },
            |k| async move {
                check_pool(h, k, 2).await;
                h.pool.dispose().await;
                assert_eq!(h.pool.status().checked_in, 0);
            },
        )
        .await;
        assert!(yields > 0, "a checkout that connects awaits the driver");
        // A full pool: the checkout waits (and times out on the paused clock).
        let held: Vec<_> = [h.pool.get().await.unwrap(), h.pool.get().await.unwrap()].into();
        let yields = cancel_at_every_await(
            || {
                let pool = h.pool.clone();
                async move { pool.get().await.map(|_| ()) }
            },
            |k| {
                let status = h.pool.status();
                async move {
                    assert_eq!(status.waiting, 0, "drop at await {k} left a waiter queued");
                    assert_eq!(status.checked_out, 2);
                }
            },
        )
        .await;
        assert!(yields > 0);
        drop(held);
        check_pool(h, usize::MAX, 2).await;
    }
    on!(
        common::Shell::Tokio,
        kind,
        PoolConfig::new()
            .size(2)
            .max_overflow(0)
            .timeout(Duration::from_secs(5)),
        body
    )
}

#[rstest]
fn checkout_with_pre_ping_cancelled_at_every_await(#[values(Kind::Mock, Kind::Sqlite)] kind: Kind) {
    async fn body<P: TestPool>(h: H<P>) {
        let h = &h;
        drop(h.pool.get().await.unwrap());
        let slow_ping = h
            .faults
            .arm(Rule::on(Op::Ping).delay(Duration::from_millis(20)))
            .unwrap();
        let yields = cancel_at_every_await(
            || {
                let pool = h.pool.clone();
                async move { pool.get().await.map(|_| ()) }
            },
            |k| check_pool(h, k, 1),
        )
        .await;
        assert!(yields >= 1, "the ping's delay is an await point");
        assert!(slow_ping.hits() > 0);
    }
    on!(
        common::Shell::Tokio,
        kind,
        PoolConfig::new().size(1).max_overflow(0).pre_ping(true),
        body
    )
}

#[rstest]
fn execute_cancelled_at_every_await(#[values(Kind::Mock, Kind::Sqlite)] kind: Kind) {
    async fn body<P: TestPool>(h: H<P>) {
        let h = &h;
        let engine = h.engine();
        cancel_at_every_await(
            || {
                let engine = engine.clone();
                async move {
                    let mut conn = engine.connect().await?;
                    conn.execute(&write_sql("execute")).await
                }
            },
            |k| check_pool(h, k, 2),
        )
        .await;
    }
    on!(
        common::Shell::Tokio,
        kind,
        PoolConfig::new().size(2).max_overflow(0),
        body
    )
}

#[rstest]
fn begin_cancelled_at_every_await(#[values(Kind::Mock, Kind::Sqlite)] kind: Kind) {
    async fn body<P: TestPool>(h: H<P>) {
        let h = &h;
        let engine = h.engine();
        cancel_at_every_await(
            || {
                let engine = engine.clone();
                async move {
                    let mut conn = engine.connect().await?;
                    let mut tx = conn.begin().await?;
                    tx.execute(&write_sql("begin")).await?;
                    Ok::<_, dbfault::Error>(())
                    // tx dropped uncommitted: rolled back
                }
            },
            |k| async move {
                check_pool(h, k, 1).await;
                assert!(
                    !h.committed("begin"),
                    "after drop at await {k}: an uncommitted write is visible"
                );
            },
        )
        .await;
    }
    on!(
        common::Shell::Tokio,
        kind,
        PoolConfig::new().size(1).max_overflow(0),
        body
    )
}

#[rstest]
fn commit_cancelled_at_every_await(#[values(Kind::Mock, Kind::Sqlite)] kind: Kind) {
    async fn body<P: TestPool>(h: H<P>) {
        let h = &h;
        let engine = h.engine();
        let mut n = 0;
        let yields = cancel_at_every_await(
            || {
                n += 1;
                let tag = format!("commit-{n}");
                let engine = engine.clone();
                async move {
                    let mut conn = engine.connect().await?;
                    let mut tx = conn.begin().await?;
                    tx.execute(&write_sql(&tag)).await?;
                    tx.commit().await
                }
            },
            |k| check_pool(h, k, 1),
        )
        .await;
        // The complete run committed its write; the first cancelled run
        // (dropped before its first poll) wrote nothing.
        assert!(h.committed("commit-1"));
        assert!(!h.committed("commit-2"));
        assert!(yields >= 1, "a commit through the pool awaits");
    }
    on!(
        common::Shell::Tokio,
        kind,
        PoolConfig::new().size(1).max_overflow(0),
        body
    )
}

#[rstest]
fn rollback_cancelled_at_every_await(#[values(Kind::Mock, Kind::Sqlite)] kind: Kind) {
    async fn body<P: TestPool>(h: H<P>) {
        let h = &h;
        let engine = h.engine();
        cancel_at_every_await(
            || {
                let engine = engine.clone();
                async move {
                    let mut conn = engine.connect().await?;
                    let mut tx = conn.begin().await?;
                    tx.execute(&write_sql("rollback")).await?;
                    tx.rollback().await
                }
            },
            |k| async move {
                check_pool(h, k, 1).await;
                assert!(
                    !h.committed("rollback"),
                    "after drop at await {k}: a rolled-back write is visible"
                );
            },
        )
        .await;
        assert_eq!(h.journal.count(EventKind::Timeout), 0);
    }
    on!(
        common::Shell::Tokio,
        kind,
        PoolConfig::new().size(1).max_overflow(0),
        body
    )
}

#[rstest]
fn hung_commit_cancelled_by_a_timeout_never_leaks_its_transaction(
    #[values(Kind::Mock, Kind::Sqlite)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let h = &h;
        let engine = h.engine();
        let hang = h.faults.arm(Rule::on(Op::Commit).hang()).unwrap();
        let mut conn = engine.connect().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        tx.execute(&write_sql("hung")).await.unwrap();
        let gave_up = tokio::time::timeout(Duration::from_secs(3), tx.commit()).await;
        assert!(gave_up.is_err(), "the commit hangs until the caller gives up");
        assert_eq!(hang.hits(), 1);
        drop(conn);
        drop(hang);
        check_pool(h, 0, 1).await;
        assert!(!h.committed("hung"));
    }
    on!(
        common::Shell::Tokio,
        kind,
        PoolConfig::new().size(1).max_overflow(0),
        body
    )
}

/// The sweep over real SQLite on the blocking pool is repeatable: the
/// same await points every run, and an application that reads as soon as
/// its cancelled transaction is dropped never meets the lock that
/// transaction held; so does one under the fault layer with no rule armed.
#[rstest]
fn the_sweep_over_blocking_sqlite_is_the_same_every_run(#[values(false, true)] faulty: bool) {
    use dbfault::{AsyncDriver, AsyncEngine, AsyncPool, Blocking, FaultyDriver, SqliteDriver, Value};

    async fn sweep<D: AsyncDriver>(wrap: fn(Blocking<SqliteDriver>) -> D) -> (usize, usize) {
        let db = dbfault::testing::fresh_database().unwrap();
        let pool =
            AsyncPool::new(wrap(Blocking::new(db)), PoolConfig::new().size(2).max_overflow(0)).unwrap();
        let engine = AsyncEngine::new(pool);
        let reads = std::cell::Cell::new(0);
        let yields = cancel_at_every_await(
            || {
                let engine = engine.clone();
                async move {
                    let mut conn = engine.connect().await?;
                    let mut tx = conn.begin().await?;
                    tx.execute(&write_sql("sweep"), &[]).await?;
                    tx.commit().await
                }
            },
            |k| {
                let engine = engine.clone();
                let reads = &reads;
                async move {
                    // The next borrower reads at once.
                    let mut conn = engine.connect().await.unwrap();
                    let row = conn
                        .query_row("SELECT count(*) FROM writes WHERE tag = 'sweep'", &[])
                        .await
                        .unwrap_or_else(|e| panic!("after drop at await {k}: {e}"));
                    assert!(matches!(row.unwrap().values()[0], Value::Integer(0 | 1)));
                    reads.set(reads.get() + 1);
                }
            },
        )
        .await;
        (yields, reads.get())
    }

    let runs: Vec<(usize, usize)> = (0..50)
        .map(|_| {
            let runtime = common::shells::paused_runtime();
            if faulty {
                runtime.block_on(sweep(FaultyDriver::new))
            } else {
                runtime.block_on(sweep(std::convert::identity))
            }
        })
        .collect();
    let first = runs[0];
    assert!(first.0 > 0);
    assert!(
        runs.iter().all(|r| *r == first),
        "await points differ between runs: {runs:?}"
    );
}
