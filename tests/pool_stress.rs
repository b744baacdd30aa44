//! Concurrency: 16 threads on a pool of 4 (+2 overflow) under random
//! connect refusals, disconnects and commit failures. After every
//! operation: never more than 6 out, counters consistent, and no thread
//! ever received a connection inside a transaction. The test finishing is
//! the proof that nothing deadlocked.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use dbfault::{
    Connection, Engine, ErrorClass, ErrorKind, FaultPlan, FaultyDriver, MockServer, Op, Pool, PoolConfig,
    Rule,
};

const THREADS: usize = 16;
const ROUNDS: usize = 1000;

#[test]
fn sixteen_threads_under_random_faults() {
    let server = MockServer::new();
    let driver = FaultyDriver::new(server.driver());
    let faults = driver.faults();
    let plan = FaultPlan::new(2024)
        .rule(
            Rule::on(Op::Connect)
                .probability(0.05)
                .error(ErrorClass::Disconnect),
        )
        .rule(Rule::on(Op::Execute).probability(0.02).disconnect())
        .rule(Rule::on(Op::Commit).probability(0.03).disconnect_after_apply())
        .rule(
            Rule::on(Op::Commit)
                .probability(0.03)
                .error(ErrorClass::Transient),
        )
        .rule(Rule::on(Op::Rollback).probability(0.01).error(ErrorClass::Other));
    let _armed = faults.load(&plan).unwrap();
    let pool = Pool::new(
        driver,
        PoolConfig::new()
            .size(4)
            .max_overflow(2)
            .timeout(Duration::from_secs(60)),
    )
    .unwrap();
    let engine = Engine::new(pool.clone());
    let ops = AtomicUsize::new(0);
    let failures = AtomicUsize::new(0);

    let check = |pool: &Pool<_>| {
        let status = pool.status();
        assert!(status.checked_out <= 6, "{status:?}");
        if let Err(why) = pool.check_counters() {
            panic!("counters broken: {why}");
        }
    };

    thread::scope(|s| {
        for t in 0..THREADS {
            let (pool, engine, ops, failures) = (&pool, &engine, &ops, &failures);
            s.spawn(move || {
                for round in 0..ROUNDS {
                    match (t + round) % 3 {
                        // Raw pool: a dirty return must be rolled back.
                        0 => match pool.get() {
                            Ok(mut conn) => {
                                assert!(!conn.in_transaction(), "handed out inside a transaction");
                                if conn.begin().is_ok() {
                                    let _ = conn.execute("INSERT INTO writes VALUES ('raw', 1)", &[]);
                                }
                                ops.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                assert_ne!(e.kind(), ErrorKind::Timeout, "{e}");
                                failures.fetch_add(1, Ordering::Relaxed);
                            }
                        },
                        // Engine transaction, committed.
                        1 => {
                            let result = engine.connect().and_then(|mut conn| {
                                assert!(
                                    !conn.pooled()?.in_transaction(),
                                    "handed out inside a transaction"
                                );
                                let mut tx = conn.begin()?;
                                tx.execute("INSERT INTO writes VALUES ('tx', 1)", &[])?;
                                tx.commit()
                            });
                            ops.fetch_add(1, Ordering::Relaxed);
                            if result.is_err() {
                                failures.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        // Engine transaction, abandoned.
                        _ => {
                            if let Ok(mut conn) = engine.connect() {
                                if let Ok(mut tx) = conn.begin() {
                                    let _ = tx.execute("INSERT INTO writes VALUES ('abandoned', 1)", &[]);
                                }
                            }
                            ops.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    check(pool);
                }
            });
        }
    });

    let ops = ops.into_inner();
    assert!(ops >= THREADS * ROUNDS * 9 / 10, "only {ops} operations ran");
    assert!(failures.into_inner() > 0, "the faults fired");
    // Everything came back: nothing out, nothing leaked on the server.
    let status = pool.status();
    assert_eq!(status.checked_out, 0, "{status:?}");
    assert_eq!(server.open_connections(), status.checked_in);
    // No abandoned or raw (rolled back on return) write was ever committed.
    let committed = server.committed_sql();
    assert!(
        committed.iter().all(|s| s.contains("'tx'")),
        "a rolled-back write was committed"
    );
    assert!(!committed.is_empty());
}
