//! Journal assertions and the saved journal, through the public API: a real
//! pool and engine over the mock server, under the fault layer.

use dbfault::EventKind::{Checkin, Checkout, Close, Connect, Fault, FirstConnect, Invalidate, Timeout};
use dbfault::testing::{ev, expect};
use dbfault::{
    Clock, ConnId, Engine, EventKind, FaultyDriver, Journal, MockServer, Op, Pool, PoolConfig, Rule,
    render_timeline,
};

/// One connection, cut by an injected disconnect on its second statement;
/// the engine invalidates it and the next statement runs on a fresh one.
/// Returns the journal and the two connections' ids.
fn disconnect_then_recover() -> (Journal, ConnId, ConnId) {
    let journal = Journal::with_clock(Clock::manual());
    let driver = FaultyDriver::new(MockServer::new().driver()).with_journal(journal.clone());
    let faults = driver.faults();
    let pool = Pool::new(driver, PoolConfig::new().size(1).journal(journal.clone())).unwrap();
    let engine = Engine::new(pool);
    let mut conn = engine.connect().unwrap();
    conn.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
    let cut = faults.arm(Rule::on(Op::Execute).times(1).disconnect()).unwrap();
    let err = conn.execute("INSERT INTO t VALUES (2)", &[]).unwrap_err();
    assert!(err.is_disconnect() && err.connection_invalidated(), "{err}");
    drop(cut);
    conn.execute("INSERT INTO t VALUES (3)", &[]).unwrap();
    drop(conn);
    let connects: Vec<ConnId> = journal
        .events()
        .iter()
        .filter(|e| e.kind == Connect)
        .filter_map(|e| e.conn)
        .collect();
    assert_eq!(connects.len(), 2, "{}", journal.timeline());
    (journal, connects[0], connects[1])
}

#[test]
fn a_disconnect_reads_as_fault_invalidate_close_checkin_then_a_fresh_connection() {
    let (journal, old, new) = disconnect_then_recover();
    journal
        .expect()
        .in_order([
            ev(FirstConnect).conn(old),
            ev(Fault).conn(old).detail("execute: disconnect"),
            ev(Invalidate).conn(old),
            ev(Close).conn(old),
            ev(Checkin).conn(old),
            ev(Connect).conn(new),
            ev(Checkout).conn(new),
            ev(Checkin).conn(new),
        ])
        .count(Fault, 1)
        .count(ev(Invalidate).conn(old), 1)
        .none(ev(Invalidate).conn(new))
        .none(Timeout);
    assert_eq!(journal.count_for(Connect, old), 1);
}

#[test]
fn a_saved_journal_reads_back_renders_and_fails_the_same() {
    let (journal, old, new) = disconnect_then_recover();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("disconnect.journal");
    journal.save(&path).unwrap();

    let saved = Journal::load(&path).unwrap();
    assert_eq!(saved, journal.events());
    assert_eq!(render_timeline(&saved), journal.timeline());

    let expectation = [ev(Checkin).conn(new), ev(Invalidate).conn(old)];
    let live = journal.expect().try_in_order(&expectation).unwrap_err();
    let loaded = expect(saved).try_in_order(&expectation).unwrap_err();
    assert_eq!(live.to_string(), loaded.to_string());
    assert!(live.found().contains(&format!("`invalidate on {old}`")), "{live}");
    assert!(live.timeline().contains("!! fault"), "{live}");
}

#[test]
fn a_failed_assertion_shows_the_timeline() {
    let (journal, old, _) = disconnect_then_recover();
    let payload = std::panic::catch_unwind(|| {
        journal
            .expect()
            .in_order([ev(Close).conn(old), ev(Invalidate).conn(old)]);
    })
    .unwrap_err();
    let msg = payload.downcast_ref::<String>().unwrap();
    assert!(msg.contains("journal expectation failed"), "{msg}");
    assert!(msg.contains("it matches only earlier"), "{msg}");
    for kind in [FirstConnect, Fault, Invalidate, Close] {
        let name = if kind == EventKind::Fault {
            "!! fault"
        } else {
            kind.name()
        };
        assert!(msg.contains(name), "{kind} missing from the timeline:\n{msg}");
    }
}
