//! The engine's behaviours 19-21 of DESIGN.md, against the mock and real
//! SQLite under the fault layer.

mod common;

use common::{H, Kind};
use dbfault::{Driver, ErrorClass, ErrorKind, EventKind as E, Op, PoolConfig, Rule};
use rstest::rstest;

#[rstest]
fn b19_execute_error_says_whether_the_connection_was_invalidated(
    #[values(Kind::Mock, Kind::Sqlite)] kind: Kind,
) {
    fn body<D: Driver>(h: &H<D>) {
        let engine = h.engine();
        let mut conn = engine.connect().unwrap();
        let guard = h
            .faults
            .arm(Rule::on(Op::Execute).times(1).error(ErrorClass::Constraint))
            .unwrap();
        let err = conn.execute(&H::<D>::write_sql("b19"), &[]).unwrap_err();
        assert_eq!(err.class(), ErrorClass::Constraint);
        assert!(!err.connection_invalidated());
        assert!(!conn.is_invalidated());
        drop(guard);
        let _guard = h.faults.arm(Rule::on(Op::Execute).times(1).disconnect()).unwrap();
        let err = conn.execute(&H::<D>::write_sql("b19"), &[]).unwrap_err();
        assert_eq!(err.class(), ErrorClass::Disconnect);
        assert!(err.connection_invalidated());
        assert!(conn.is_invalidated());
        // The next call reconnects by itself.
        conn.execute(&H::<D>::write_sql("b19"), &[]).unwrap();
        assert!(h.committed("b19"));
        assert_eq!(h.journal.count(E::Connect), 2);
    }
    on!(kind, PoolConfig::new(), body)
}

#[rstest]
fn b20_disconnect_in_a_transaction_leaves_it_pending_rollback(
    #[values(Kind::Mock, Kind::Sqlite)] kind: Kind,
) {
    fn body<D: Driver>(h: &H<D>) {
        let engine = h.engine();
        let mut conn = engine.connect().unwrap();
        let mut tx = conn.begin().unwrap();
        tx.execute(&H::<D>::write_sql("b20-a"), &[]).unwrap();
        let _cut = h
            .faults
            .arm(Rule::on(Op::Execute).matching("b20-b").disconnect())
            .unwrap();
        let err = tx.execute(&H::<D>::write_sql("b20-b"), &[]).unwrap_err();
        assert!(err.connection_invalidated());
        assert!(tx.is_pending_rollback());
        let again = tx.execute(&H::<D>::write_sql("b20-c"), &[]).unwrap_err();
        assert_eq!(again.kind(), ErrorKind::PendingRollback);
        assert_eq!(
            tx.query("SELECT 1", &[]).unwrap_err().kind(),
            ErrorKind::PendingRollback
        );
        tx.rollback().unwrap();
        // Then the connection reconnects transparently.
        conn.execute(&H::<D>::write_sql("b20-d"), &[]).unwrap();
        assert!(!h.committed("b20-a"));
        assert!(h.committed("b20-d"));
    }
    on!(kind, PoolConfig::new(), body)
}

#[rstest]
fn b20_commit_of_a_pending_rollback_transaction_fails(#[values(Kind::Mock, Kind::Sqlite)] kind: Kind) {
    fn body<D: Driver>(h: &H<D>) {
        let engine = h.engine();
        let mut conn = engine.connect().unwrap();
        let mut tx = conn.begin().unwrap();
        let id = h.faults.live_connections()[0];
        h.faults.kill(id);
        assert!(
            tx.execute(&H::<D>::write_sql("b20"), &[])
                .unwrap_err()
                .is_disconnect()
        );
        assert_eq!(tx.commit().unwrap_err().kind(), ErrorKind::PendingRollback);
        assert!(!h.committed("b20"));
        conn.execute("SELECT 1", &[]).unwrap();
        h.assert_consistent();
    }
    on!(kind, PoolConfig::new(), body)
}

#[rstest]
#[case::before_apply(false)]
#[case::after_apply(true)]
fn b21_commit_cut_by_a_disconnect_is_outcome_unknown(
    #[values(Kind::Mock, Kind::Sqlite)] kind: Kind,
    #[case] applied: bool,
) {
    fn body<D: Driver>(h: &H<D>, applied: bool) {
        let engine = h.engine();
        let mut conn = engine.connect().unwrap();
        let rule = Rule::on(Op::Commit);
        let rule = if applied {
            rule.disconnect_after_apply()
        } else {
            rule.disconnect()
        };
        let _cut = h.faults.arm(rule).unwrap();
        let mut tx = conn.begin().unwrap();
        tx.execute(&H::<D>::write_sql("b21"), &[]).unwrap();
        let err = tx.commit().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CommitUnknown, "{err}");
        assert!(err.connection_invalidated());
        // Both real cases are reachable: the server did or did not apply it.
        assert_eq!(h.committed("b21"), applied);
        h.assert_consistent();
    }
    match kind {
        Kind::Mock => body(&H::mock(PoolConfig::new()), applied),
        Kind::Sqlite => body(&H::sqlite(PoolConfig::new()), applied),
    }
}

#[rstest]
fn b21_commit_that_certainly_failed_is_not_outcome_unknown(#[values(Kind::Mock, Kind::Sqlite)] kind: Kind) {
    fn body<D: Driver>(h: &H<D>) {
        let engine = h.engine();
        let mut conn = engine.connect().unwrap();
        let _busy = h
            .faults
            .arm(Rule::on(Op::Commit).times(1).error_with(
                ErrorClass::Transient,
                "SQLITE_BUSY",
                "database is locked",
            ))
            .unwrap();
        let mut tx = conn.begin().unwrap();
        tx.execute(&H::<D>::write_sql("b21"), &[]).unwrap();
        let err = tx.commit().unwrap_err();
        assert_eq!(
            (err.kind(), err.class()),
            (ErrorKind::Driver, ErrorClass::Transient)
        );
        assert!(!err.connection_invalidated());
        // The failed transaction was rolled back, and the connection lives.
        assert!(!h.committed("b21"));
        let mut tx = conn.begin().unwrap();
        tx.execute(&H::<D>::write_sql("b21-retry"), &[]).unwrap();
        tx.commit().unwrap();
        assert!(h.committed("b21-retry"));
        assert_eq!(h.journal.count(E::Invalidate), 0);
    }
    on!(kind, PoolConfig::new(), body)
}

#[rstest]
fn abandoned_transaction_rolls_back_before_anyone_else_gets_the_connection(
    #[values(Kind::Mock, Kind::Sqlite)] kind: Kind,
) {
    fn body<D: Driver>(h: &H<D>) {
        let engine = h.engine();
        {
            let mut conn = engine.connect().unwrap();
            let mut tx = conn.begin().unwrap();
            tx.execute(&H::<D>::write_sql("abandoned"), &[]).unwrap();
            // tx and conn dropped without commit
        }
        let mut next = engine.connect().unwrap();
        assert!(!dbfault::Connection::in_transaction(&**next.pooled().unwrap()));
        assert!(!h.committed("abandoned"));
    }
    on!(kind, PoolConfig::new().size(1), body)
}
