//! The engine's behaviours 19-21 (docs/pool-behaviours.md), each body run through both
//! shells (`Engine` on threads, `AsyncEngine` on tokio) and both drivers
//! (mock, real SQLite) under the fault layer.

mod common;

use common::{H, Kind, Shell, TestEngine, TestEngineConn, TestPool, TestTx, write_sql};
use dbfault::{ErrorClass, ErrorKind, EventKind as E, Op, PoolConfig, Rule};
use rstest::rstest;

#[rstest]
fn b19_execute_error_says_whether_the_connection_was_invalidated(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let engine = h.engine();
        let mut conn = engine.connect().await.unwrap();
        let guard = h
            .faults
            .arm(Rule::on(Op::Execute).times(1).error(ErrorClass::Constraint))
            .unwrap();
        let err = conn.execute(&write_sql("b19")).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Constraint);
        assert!(!err.connection_invalidated());
        assert!(!conn.is_invalidated());
        drop(guard);
        let _guard = h.faults.arm(Rule::on(Op::Execute).times(1).disconnect()).unwrap();
        let err = conn.execute(&write_sql("b19")).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Disconnect);
        assert!(err.connection_invalidated());
        assert!(conn.is_invalidated());
        // The next call reconnects by itself.
        conn.execute(&write_sql("b19")).await.unwrap();
        assert!(h.committed("b19"));
        assert_eq!(h.journal.count(E::Connect), 2);
    }
    on!(shell, kind, PoolConfig::new(), body)
}

#[rstest]
fn b20_disconnect_in_a_transaction_leaves_it_pending_rollback(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let engine = h.engine();
        let mut conn = engine.connect().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        tx.execute(&write_sql("b20-a")).await.unwrap();
        let _cut = h
            .faults
            .arm(Rule::on(Op::Execute).matching("b20-b").disconnect())
            .unwrap();
        let err = tx.execute(&write_sql("b20-b")).await.unwrap_err();
        assert!(err.connection_invalidated());
        assert!(tx.is_pending_rollback());
        let again = tx.execute(&write_sql("b20-c")).await.unwrap_err();
        assert_eq!(again.kind(), ErrorKind::PendingRollback);
        assert_eq!(
            tx.query("SELECT 1").await.unwrap_err().kind(),
            ErrorKind::PendingRollback
        );
        tx.rollback().await.unwrap();
        // Then the connection reconnects transparently.
        conn.execute(&write_sql("b20-d")).await.unwrap();
        assert!(!h.committed("b20-a"));
        assert!(h.committed("b20-d"));
    }
    on!(shell, kind, PoolConfig::new(), body)
}

#[rstest]
fn b20_commit_of_a_pending_rollback_transaction_fails(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let engine = h.engine();
        let mut conn = engine.connect().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        let id = h.faults.live_connections()[0];
        h.faults.kill(id);
        assert!(tx.execute(&write_sql("b20")).await.unwrap_err().is_disconnect());
        assert_eq!(tx.commit().await.unwrap_err().kind(), ErrorKind::PendingRollback);
        assert!(!h.committed("b20"));
        conn.execute("SELECT 1").await.unwrap();
        h.assert_consistent();
    }
    on!(shell, kind, PoolConfig::new(), body)
}

#[rstest]
fn b21_commit_cut_by_a_disconnect_is_outcome_unknown(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
    #[values(false, true)] applied: bool,
) {
    async fn body<P: TestPool>(h: H<P>, applied: bool) {
        let engine = h.engine();
        let mut conn = engine.connect().await.unwrap();
        let rule = Rule::on(Op::Commit);
        let rule = if applied {
            rule.disconnect_after_apply()
        } else {
            rule.disconnect()
        };
        let _cut = h.faults.arm(rule).unwrap();
        let mut tx = conn.begin().await.unwrap();
        tx.execute(&write_sql("b21")).await.unwrap();
        let err = tx.commit().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CommitUnknown, "{err}");
        assert!(err.connection_invalidated());
        // Both real cases are reachable: the server did or did not apply it.
        assert_eq!(h.committed("b21"), applied);
        h.assert_consistent();
    }
    on!(shell, kind, PoolConfig::new(), |h| body(h, applied))
}

#[rstest]
fn b21_commit_that_certainly_failed_is_not_outcome_unknown(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let engine = h.engine();
        let mut conn = engine.connect().await.unwrap();
        let _busy = h
            .faults
            .arm(Rule::on(Op::Commit).times(1).error_with(
                ErrorClass::Transient,
                "SQLITE_BUSY",
                "database is locked",
            ))
            .unwrap();
        let mut tx = conn.begin().await.unwrap();
        tx.execute(&write_sql("b21")).await.unwrap();
        let err = tx.commit().await.unwrap_err();
        assert_eq!(
            (err.kind(), err.class()),
            (ErrorKind::Driver, ErrorClass::Transient)
        );
        assert!(!err.connection_invalidated());
        // The failed transaction is rolled back, and the connection lives.
        let mut tx = conn.begin().await.unwrap();
        tx.execute(&write_sql("b21-retry")).await.unwrap();
        tx.commit().await.unwrap();
        assert!(!h.committed("b21"));
        assert!(h.committed("b21-retry"));
        assert_eq!(h.journal.count(E::Invalidate), 0);
    }
    on!(shell, kind, PoolConfig::new(), body)
}

#[rstest]
fn abandoned_transaction_rolls_back_before_anyone_else_gets_the_connection(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let engine = h.engine();
        {
            let mut conn = engine.connect().await.unwrap();
            let mut tx = conn.begin().await.unwrap();
            tx.execute(&write_sql("abandoned")).await.unwrap();
            // tx and conn dropped without commit
        }
        h.wait_out(0).await;
        let mut next = engine.connect().await.unwrap();
        let (_, in_tx) = next.current().await.unwrap();
        assert!(!in_tx);
        assert!(!h.committed("abandoned"));
    }
    on!(shell, kind, PoolConfig::new().size(1), body)
}

#[rstest]
fn abandoned_transaction_is_rolled_back_before_the_connections_next_use(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let engine = h.engine();
        let mut conn = engine.connect().await.unwrap();
        {
            let mut tx = conn.begin().await.unwrap();
            tx.execute(&write_sql("dropped")).await.unwrap();
        }
        conn.execute(&write_sql("after")).await.unwrap();
        assert!(!h.committed("dropped"));
        assert!(h.committed("after"));
    }
    on!(shell, kind, PoolConfig::new(), body)
}

#[rstest]
fn a_rollback_that_fails_reaches_the_caller_and_invalidates_the_connection(
    #[values(Shell::Threads, Shell::Tokio)] shell: Shell,
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    async fn body<P: TestPool>(h: H<P>) {
        let engine = h.engine();
        let mut conn = engine.connect().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        tx.execute(&write_sql("rolled-back")).await.unwrap();
        let refused = h
            .faults
            .arm(Rule::on(Op::Rollback).times(1).error(ErrorClass::Other))
            .unwrap();
        let err = tx.rollback().await.unwrap_err();
        assert_eq!(refused.hits(), 1);
        assert!(err.is_injected(), "{err}");
        assert_eq!((err.kind(), err.class()), (ErrorKind::Driver, ErrorClass::Other));
        // A connection that cannot roll back is never reused.
        assert!(err.connection_invalidated());
        assert!(conn.is_invalidated());
        assert_eq!(h.journal.count(E::Invalidate), 1, "{}", h.journal.timeline());
        conn.execute(&write_sql("after")).await.unwrap();
        assert_eq!(h.journal.count(E::Connect), 2);
        assert!(!h.committed("rolled-back"));
        assert!(h.committed("after"));
        h.assert_consistent();
    }
    on!(shell, kind, PoolConfig::new(), body)
}

/// `EngineConnection::run_script` (the threaded engine has it): every
/// statement runs, a disconnect is classified and invalidates.
#[rstest]
fn run_script_runs_every_statement_and_a_disconnect_invalidates(
    #[values(Kind::Mock, Kind::Sqlite, Kind::Postgres)] kind: Kind,
) {
    fn check<D: dbfault::Driver>(h: H<dbfault::Pool<D>>) {
        let engine = dbfault::Engine::new(h.pool.clone());
        let mut conn = engine.connect().unwrap();
        let script = format!("{};\n{};\n", write_sql("script-1"), write_sql("script-2"));
        assert_eq!(conn.run_script(&script).unwrap(), 2);
        assert!(h.committed("script-1") && h.committed("script-2"));

        let _cut = h
            .faults
            .arm(Rule::on(Op::Execute).matching("script-4").disconnect())
            .unwrap();
        let script = format!("{};\n{};\n", write_sql("script-3"), write_sql("script-4"));
        let err = conn.run_script(&script).unwrap_err();
        assert!(err.is_disconnect() && err.connection_invalidated(), "{err}");
        assert!(conn.is_invalidated());
        assert!(h.committed("script-3"));
        assert!(!h.committed("script-4"));
        assert_eq!(h.journal.count(E::Invalidate), 1);
    }
    with_driver!(kind, |driver, backend|
        sync: check(common::shells::threads_pool(driver, backend, PoolConfig::new())),
        async: unreachable!("run_script is the threaded engine's"),
    )
}

/// `query` returns the driver's rows, on both engines, and an engine
/// connection debug-prints as what it is.
#[tokio::test]
async fn query_returns_the_rows_on_both_engines() {
    use dbfault::{AsyncEngine, AsyncPool, Blocking, Engine, Pool, Value};
    const SQL: &str = "SELECT 1 UNION ALL SELECT 2";
    let db = dbfault::testing::fresh_database().expect("the fixture database");

    let engine = Engine::new(Pool::new(db.clone(), PoolConfig::new()).unwrap());
    let mut conn = engine.connect().unwrap();
    let rows = conn.query(SQL, &[]).unwrap();
    let values: Vec<_> = rows.iter().map(|r| r.get(0).and_then(Value::as_i64)).collect();
    assert_eq!(values, [Some(1), Some(2)]);
    let shown = format!("{conn:?}");
    assert!(shown.starts_with("EngineConnection"), "{shown}");

    let engine = AsyncEngine::new(AsyncPool::new(Blocking::new(db), PoolConfig::new()).unwrap());
    let mut conn = engine.connect().await.unwrap();
    let rows = conn.query(SQL, &[]).await.unwrap();
    let values: Vec<_> = rows.iter().map(|r| r.get(0).and_then(Value::as_i64)).collect();
    assert_eq!(values, [Some(1), Some(2)]);
    let shown = format!("{conn:?}");
    assert!(shown.starts_with("AsyncEngineConnection"), "{shown}");
}
