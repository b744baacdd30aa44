//! `testing::Invariants`: silent on a pool that answered its faults, loud
//! (with the timeline) on each kind of broken invariant.

use dbfault::testing::{InspectPool, Invariants};
use dbfault::{
    Clock, ConnId, Connection, Driver, Engine, EventKind, FaultyDriver, Journal, MockServer, Op, Pool,
    PoolConfig, PoolStatus, Rule,
};

/// A pool stand-in with whatever counters a test wants.
struct Fake(PoolStatus);

impl InspectPool for Fake {
    fn status(&self) -> PoolStatus {
        self.0
    }
    fn check_counters(&self) -> Result<(), String> {
        Ok(())
    }
}

fn fake(out: usize, idle: usize) -> Fake {
    let mut s = PoolStatus::default();
    s.size = 2;
    s.max_overflow = 0;
    s.checked_out = out;
    s.checked_in = idle;
    Fake(s)
}

#[test]
fn a_pool_that_answered_its_faults_passes() {
    let journal = Journal::with_clock(Clock::manual());
    let driver = FaultyDriver::new(MockServer::new().driver()).with_journal(journal.clone());
    let faults = driver.faults();
    let pool = Pool::new(driver, PoolConfig::new().size(2).journal(journal.clone())).unwrap();
    let engine = Engine::new(pool.clone());
    let mut inv = Invariants::new();
    {
        let _cut = faults.arm(Rule::on(Op::Execute).nth(2).disconnect()).unwrap();
        let _refuse = faults.arm(Rule::on(Op::Connect).nth(2).disconnect()).unwrap();
        let mut conn = engine.connect().unwrap();
        inv.checkout(&**conn.pooled().unwrap()).unwrap();
        conn.execute("SELECT 1", &[]).unwrap();
        assert!(conn.execute("SELECT 1", &[]).is_err());
        assert!(conn.execute("SELECT 1", &[]).is_err(), "the reconnect is refused");
        inv.check_pool(&pool, Some(&journal)).unwrap();
    }
    // Faults stopped: the pool serves again.
    let mut conn = engine.connect().unwrap();
    conn.execute("SELECT 1", &[]).unwrap();
    drop(conn);
    inv.check_quiescent(&pool, &journal).unwrap();
    assert_eq!(inv.checkouts(), 1);
}

#[test]
fn an_unanswered_kill_is_reported_with_the_timeline() {
    let journal = Journal::with_clock(Clock::manual());
    journal.record(Some(ConnId(1)), EventKind::Connect, "");
    journal.record(Some(ConnId(1)), EventKind::Checkout, "");
    journal.record(Some(ConnId(1)), EventKind::Fault, "execute: disconnect (rule 1)");
    journal.record(Some(ConnId(1)), EventKind::Checkin, "");
    let err = Invariants::new()
        .check_quiescent(&fake(0, 1), &journal)
        .unwrap_err();
    assert!(
        err.broken().iter().any(|b| b.starts_with("answered faults")),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("!! fault") && text.contains("execute: disconnect (rule 1)"),
        "the timeline is part of the report:\n{text}"
    );
}

#[test]
fn closing_twice_and_invalidating_without_closing_are_reported() {
    let journal = Journal::with_clock(Clock::manual());
    journal.record(Some(ConnId(1)), EventKind::Connect, "");
    journal.record(Some(ConnId(2)), EventKind::Connect, "");
    journal.record(Some(ConnId(1)), EventKind::Close, "");
    journal.record(Some(ConnId(1)), EventKind::Close, "");
    journal.record(Some(ConnId(2)), EventKind::Invalidate, "");
    let err = Invariants::new()
        .check_quiescent(&fake(0, 1), &journal)
        .unwrap_err();
    let broken = err.broken().join("\n");
    assert!(broken.contains("c1 was closed 2 times"), "{broken}");
    assert!(broken.contains("c2 was invalidated"), "{broken}");
    assert!(broken.contains("accounting"), "{broken}");
}

#[test]
fn a_peak_above_the_bound_is_reported() {
    let mut inv = Invariants::new();
    inv.check_pool(&fake(2, 0), None).unwrap();
    let err = inv.check_pool(&fake(3, 0), None).unwrap_err();
    assert!(err.broken()[0].starts_with("peak"), "{err}");
}

#[test]
fn a_checkout_inside_a_transaction_is_reported() {
    let server = MockServer::new();
    let mut conn = server.driver().connect().unwrap();
    conn.begin().unwrap();
    let err = Invariants::new().checkout(&conn).unwrap_err();
    assert!(err.broken()[0].contains("inside a transaction"), "{err}");
}
