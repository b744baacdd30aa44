//! `FaultyManager` around an r2d2 manager of plain rusqlite connections
//! (the shape of r2d2_sqlite's `SqliteConnectionManager`).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::managers::{R2d2Sqlite, balance, bank, transfer};
use dbfault::testing::{ev, expect};
use dbfault::{ErrorClass, EventKind, Faults, FaultyManager, Journal, JournalEvents, Op, Rule};

struct Bank {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Bank {
    fn new() -> Self {
        let (dir, path) = bank();
        Bank { _dir: dir, path }
    }

    fn pool(&self, faults: &Faults, journal: Option<&Journal>) -> r2d2::Pool<FaultyManager<R2d2Sqlite>> {
        let mut builder = r2d2::Pool::builder()
            .max_size(2)
            .connection_timeout(Duration::from_secs(5));
        if let Some(journal) = journal {
            builder = builder.event_handler(Box::new(JournalEvents::new(journal)));
        }
        builder
            .build(FaultyManager::new(R2d2Sqlite(self.path.clone()), faults))
            .unwrap()
    }

    fn balance(&self, id: i64) -> i64 {
        balance(&self.path, id)
    }
}

#[test]
fn the_users_code_runs_unchanged_on_the_faulty_pool() {
    let bank = Bank::new();
    let faults = Faults::new();
    let pool = bank.pool(&faults, None);
    transfer(&mut pool.get().unwrap(), 10).unwrap();
    assert_eq!((bank.balance(1), bank.balance(2)), (90, 10));
}

#[test]
fn after_a_restart_the_pool_drops_the_dead_connections_and_recovers() {
    let bank = Bank::new();
    let faults = Faults::new();
    let pool = bank.pool(&faults, None);
    let mut conn = pool.get().unwrap();
    let dead = conn.id();
    faults.restart();
    assert!(transfer(&mut conn, 10).is_err());
    drop(conn);
    // r2d2 validates at checkout and asked has_broken on return: the next
    // borrower gets a live connection.
    let mut conn = pool.get().unwrap();
    assert_ne!(conn.id(), dead);
    transfer(&mut conn, 10).unwrap();
    assert_eq!(bank.balance(1), 90);
}

#[test]
fn a_refused_connect_reaches_the_caller_as_r2d2s_last_error() {
    let bank = Bank::new();
    let faults = Faults::new();
    let pool = r2d2::Pool::builder()
        .max_size(1)
        .min_idle(Some(0))
        .connection_timeout(Duration::from_secs(1))
        .build(FaultyManager::new(R2d2Sqlite(bank.path.clone()), &faults))
        .unwrap();
    faults.outage();
    let err = pool.get().unwrap_err();
    assert!(err.to_string().contains("server is down"), "{err}");
    faults.restore();
    assert!(pool.get().is_ok());
}

#[test]
fn a_failed_validation_replaces_the_connection() {
    let bank = Bank::new();
    let faults = Faults::new();
    let pool = bank.pool(&faults, None);
    let first = pool.get().unwrap().id();
    let ping = faults
        .arm(Rule::on(Op::Ping).times(1).error(ErrorClass::Transient))
        .unwrap();
    let conn = pool.get().unwrap();
    assert_eq!(ping.hits(), 1);
    assert_ne!(conn.id(), first, "the one that failed validation was dropped");
}

#[test]
fn each_checkout_is_a_journaled_ping_and_a_connection_killed_while_idle_fails_it() {
    let bank = Bank::new();
    let journal = Journal::new();
    let faults = Faults::new().with_journal(journal.clone());
    let pool = bank.pool(&faults, Some(&journal));
    let first = pool.get().unwrap().id();
    // Back in the pool, idle, when the fault layer kills it: r2d2's next
    // checkout takes it first, validates it and drops it.
    assert!(faults.kill(first));
    let conn = pool.get().unwrap();
    assert_ne!(conn.id(), first);
    expect(&journal).in_order([
        ev(EventKind::Ping).conn(first),
        ev(EventKind::Checkout).conn(first),
        ev(EventKind::Fault).conn(first).detail("kill"),
        ev(EventKind::PingFailed).conn(first),
        ev(EventKind::Ping).conn(conn.id()),
        ev(EventKind::Checkout).conn(conn.id()),
    ]);
}

#[test]
fn a_commit_applied_then_cut_reaches_the_users_transfer() {
    let bank = Bank::new();
    let faults = Faults::new();
    let pool = bank.pool(&faults, None);
    let _cut = faults
        .arm(Rule::on(Op::Commit).times(1).disconnect_after_apply())
        .unwrap();
    let err = transfer(&mut pool.get().unwrap(), 25).unwrap_err();
    assert_eq!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::Unknown),
        "{err}"
    );
    assert_eq!(bank.balance(1), 75, "applied although reported failed");
}

#[test]
fn a_killed_connection_is_reported_broken_and_journaled() {
    let bank = Bank::new();
    let journal = Journal::new();
    let faults = Faults::new().with_journal(journal.clone());
    let pool = bank.pool(&faults, Some(&journal));
    let conn = pool.get().unwrap();
    let id = conn.id();
    assert!(faults.kill(id));
    assert!(conn.is_dead());
    drop(conn);
    assert!(!faults.live_connections().contains(&id));
    expect(&journal).in_order([
        ev(EventKind::Connect).conn(id),
        ev(EventKind::Checkout).conn(id),
        ev(EventKind::Fault).conn(id).detail("kill"),
        ev(EventKind::Checkin).conn(id),
        ev(EventKind::Invalidate).conn(id),
        ev(EventKind::Close).conn(id),
    ]);
}

#[test]
fn a_slow_connect_waits_on_the_fault_clock() {
    let bank = Bank::new();
    let clock = dbfault::Clock::manual();
    let faults = Faults::new().with_clock(clock.clone());
    let _slow = faults
        .arm(Rule::on(Op::Connect).delay(Duration::from_secs(3)))
        .unwrap();
    let start = clock.now();
    let pool = r2d2::Pool::builder()
        .max_size(1)
        .build(FaultyManager::new(R2d2Sqlite(bank.path.clone()), &faults))
        .unwrap();
    drop(pool.get().unwrap());
    assert!(clock.now() - start >= Duration::from_secs(3));
}

#[test]
fn a_connect_cut_after_it_opened_is_journaled_once_under_its_id() {
    let bank = Bank::new();
    let journal = Journal::new();
    let faults = Faults::new().with_journal(journal.clone());
    let cut = faults
        .arm(Rule::on(Op::Connect).times(1).disconnect_after_apply())
        .unwrap();
    let pool = r2d2::Pool::builder()
        .max_size(1)
        .min_idle(Some(0))
        .build(FaultyManager::new(R2d2Sqlite(bank.path.clone()), &faults))
        .unwrap();
    drop(pool.get().unwrap());
    assert_eq!(cut.hits(), 1);
    let failed: Vec<_> = journal
        .events()
        .into_iter()
        .filter(|e| e.kind == EventKind::ConnectFailed)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].conn.is_some(), "{failed:?}");
}
