//! The bank's failure modes, tested on the pool it ships (r2d2 +
//! r2d2_sqlite) with dbfault's `FaultyManager` around its manager.

use bank::{Bank, BankError, manager};
use dbfault::{Faults, FaultyManager, Op, Rule};
use r2d2_sqlite::SqliteConnectionManager;

type TestBank = Bank<FaultyManager<SqliteConnectionManager>>;

/// The bank as it ships, with a fault layer around its manager; accounts
/// 1 (holding 100) and 2 (empty).
fn bank() -> (Faults, tempfile::TempDir, TestBank) {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let bank = Bank::with_manager(FaultyManager::new(manager(&dir.path().join("bank.db")), &faults)).unwrap();
    bank.open_account(1, 100).unwrap();
    bank.open_account(2, 0).unwrap();
    (faults, dir, bank)
}

/// `n` transfers at once, each on its own thread; what each failed with.
fn storm(bank: &TestBank, n: usize) -> Vec<String> {
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..n).map(|_| s.spawn(|| bank.transfer(1, 2, 1))).collect();
        let results = workers.into_iter().map(|w| w.join().unwrap());
        results
            .map(|r| r.err().map_or_else(String::new, |e| e.to_string()))
            .collect()
    })
}

#[test]
fn a_server_restart_is_survived() {
    let (faults, _dir, bank) = bank();
    bank.transfer(1, 2, 10).unwrap();
    faults.restart();
    // r2d2 validates each connection at checkout: the dead ones are
    // replaced, and the next transfer goes through.
    bank.transfer(1, 2, 10).unwrap();
    assert_eq!(bank.balance(2).unwrap(), 20);
}

#[test]
fn a_commit_applied_then_cut_is_reported_failed_though_the_money_moved() {
    let (faults, _dir, bank) = bank();
    let _cut = faults
        .arm(Rule::on(Op::Commit).times(1).disconnect_after_apply())
        .unwrap();
    let err = bank.transfer(1, 2, 30).unwrap_err();
    assert!(matches!(err, BankError::Sql(_)), "{err}");
    // The transfer happened: a caller that retries on this error pays twice.
    assert_eq!((bank.balance(1).unwrap(), bank.balance(2).unwrap()), (70, 30));
}

#[test]
fn a_connect_storm_in_an_outage_times_out_hiding_the_cause_then_recovers() {
    let (faults, _dir, bank) = bank();
    faults.outage();
    let errors = storm(&bank, 8);
    assert!(
        errors
            .iter()
            .all(|e| e.contains("timed out waiting for connection"))
    );
    // r2d2 hands its last connect error to one waiter; the rest get a bare
    // timeout (r2d2 #51).
    let told = errors.iter().filter(|e| e.contains("server is down")).count();
    assert!((1..errors.len()).contains(&told), "{errors:#?}");
    faults.restore();
    bank.transfer(1, 2, 1).unwrap();
}

#[test]
fn a_panic_mid_transfer_leaves_the_next_borrower_no_open_transaction() {
    let (_faults, _dir, bank) = bank();
    let handler = std::thread::scope(|s| {
        s.spawn(|| {
            let mut conn = bank.pool().get().unwrap();
            let tx = conn.transaction().unwrap();
            tx.execute("UPDATE accounts SET balance = 0 WHERE id = 1", [])
                .unwrap();
            panic!("a bug between the two updates");
        })
        .join()
    });
    assert!(handler.is_err(), "the request handler panicked");
    // rusqlite's Transaction rolled back as the panic unwound it.
    assert!(bank.pool().get().unwrap().is_autocommit());
    assert_eq!(bank.balance(1).unwrap(), 100);
}

#[test]
fn r2d2_hands_the_next_borrower_a_transaction_left_open() {
    let (_faults, _dir, bank) = bank();
    let conn = bank.pool().get().unwrap();
    conn.execute_batch("BEGIN; UPDATE accounts SET balance = 0 WHERE id = 1;")
        .unwrap();
    let id = conn.id();
    drop(conn); // back to the pool without COMMIT or ROLLBACK
    let next = bank.pool().get().unwrap();
    assert_eq!(next.id(), id);
    assert!(
        !next.is_autocommit(),
        "r2d2 does not roll back what is returned dirty"
    );
}
