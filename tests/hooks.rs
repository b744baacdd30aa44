//! Faults inside a plain `rusqlite::Connection` the test's code owns,
//! through `Faults::attach`: every row of the action table in
//! `dbfault::docs::hooks`, on real SQLite.

use std::time::Duration;

use dbfault::{Clock, ErrorClass, Faults, Journal, Op, Rule};
use rusqlite::{Connection, ErrorCode, params};

fn accounts(conn: &Connection) {
    conn.execute_batch(
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
         INSERT INTO accounts VALUES (1, 100), (2, 0);",
    )
    .unwrap();
}

/// An in-memory database with the accounts table, attached.
fn attached() -> (Faults, Connection) {
    let faults = Faults::new();
    let mut conn = Connection::open_in_memory().unwrap();
    accounts(&conn);
    faults.attach(&mut conn).unwrap();
    (faults, conn)
}

/// A database file in WAL mode, with a second connection to read it back.
struct WalDb {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl WalDb {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bank.db");
        let conn = Connection::open(&path).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        accounts(&conn);
        WalDb { _dir: dir, path }
    }

    fn open(&self) -> Connection {
        Connection::open(&self.path).unwrap()
    }

    fn balance(&self, id: i64) -> i64 {
        self.open()
            .query_row("SELECT balance FROM accounts WHERE id = ?1", [id], |r| r.get(0))
            .unwrap()
    }
}

fn balance(conn: &Connection, id: i64) -> i64 {
    conn.query_row("SELECT balance FROM accounts WHERE id = ?1", [id], |r| r.get(0))
        .unwrap()
}

fn code(err: &rusqlite::Error) -> Option<ErrorCode> {
    err.sqlite_error_code()
}

fn extended(err: &rusqlite::Error) -> Option<i32> {
    err.sqlite_error().map(|e| e.extended_code)
}

#[test]
fn with_no_rule_armed_the_connection_works_as_before() {
    let (_faults, mut conn) = attached();
    let tx = conn.transaction().unwrap();
    tx.execute("UPDATE accounts SET balance = balance - 30 WHERE id = 1", [])
        .unwrap();
    tx.execute("UPDATE accounts SET balance = balance + 30 WHERE id = 2", [])
        .unwrap();
    tx.commit().unwrap();
    assert_eq!((balance(&conn, 1), balance(&conn, 2)), (70, 30));
}

#[test]
fn a_statement_error_is_denied_at_prepare_and_leaves_the_transaction_open() {
    let (faults, mut conn) = attached();
    let rule = faults
        .arm(
            Rule::on(Op::Execute)
                .matching("INSERT INTO accounts")
                .error(ErrorClass::Transient),
        )
        .unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute("UPDATE accounts SET balance = 1 WHERE id = 1", [])
        .unwrap();
    let err = tx.execute("INSERT INTO accounts VALUES (3, 5)", []).unwrap_err();
    assert_eq!(code(&err), Some(ErrorCode::AuthorizationForStatementDenied));
    assert_eq!(extended(&err), Some(23), "{err}");
    assert!(!tx.is_autocommit(), "the transaction is still open");
    assert_eq!(rule.hits(), 1);
    drop(rule);
    tx.execute("INSERT INTO accounts VALUES (3, 5)", []).unwrap();
    tx.commit().unwrap();
    assert_eq!(balance(&conn, 1), 1);
    assert_eq!(balance(&conn, 3), 5);
}

#[test]
fn a_query_rule_fails_selects_and_not_writes() {
    let (faults, conn) = attached();
    let _rule = faults
        .arm(Rule::on(Op::Query).error(ErrorClass::Transient))
        .unwrap();
    conn.execute("UPDATE accounts SET balance = 7 WHERE id = 2", [])
        .unwrap();
    let err = conn
        .query_row("SELECT balance FROM accounts WHERE id = 2", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap_err();
    assert_eq!(code(&err), Some(ErrorCode::AuthorizationForStatementDenied));
}

#[test]
fn an_update_is_checked_once_whatever_columns_it_sets() {
    let (faults, conn) = attached();
    conn.execute_batch("ALTER TABLE accounts ADD COLUMN note TEXT")
        .unwrap();
    let rule = faults
        .arm(
            Rule::on(Op::Execute)
                .matching("^UPDATE accounts$")
                .nth(2)
                .error(ErrorClass::Transient),
        )
        .unwrap();
    conn.execute("UPDATE accounts SET balance = 1, note = 'a' WHERE id = 1", [])
        .unwrap();
    let err = conn
        .execute("UPDATE accounts SET balance = 2, note = 'b' WHERE id = 1", [])
        .unwrap_err();
    assert_eq!(code(&err), Some(ErrorCode::AuthorizationForStatementDenied));
    assert_eq!(rule.hits(), 1);
    assert_eq!(balance(&conn, 1), 1);
}

#[test]
fn a_disconnect_kills_the_connection_for_every_later_statement_cached_ones_too() {
    let (faults, mut conn) = attached();
    // Prepared (and authorized) before the fault: the authorizer never
    // sees it again.
    conn.prepare_cached("SELECT balance FROM accounts WHERE id = ?1")
        .unwrap();
    let id = faults.live_connections()[0];
    let _rule = faults
        .arm(Rule::on(Op::Execute).matching("UPDATE").disconnect())
        .unwrap();
    let tx = conn.transaction().unwrap();
    let err = tx
        .execute("UPDATE accounts SET balance = 0 WHERE id = 1", [])
        .unwrap_err();
    assert_eq!(code(&err), Some(ErrorCode::AuthorizationForStatementDenied));
    assert!(!faults.live_connections().contains(&id), "dead: no longer live");
    let err = tx.execute("INSERT INTO accounts VALUES (9, 9)", []).unwrap_err();
    assert_eq!(code(&err), Some(ErrorCode::AuthorizationForStatementDenied));
    let cached = tx
        .prepare_cached("SELECT balance FROM accounts WHERE id = ?1")
        .unwrap()
        .query_row([1], |r| r.get::<_, i64>(0))
        .unwrap_err();
    assert_eq!(code(&cached), Some(ErrorCode::OperationInterrupted), "{cached}");
    assert!(tx.commit().is_err(), "a dead connection commits nothing");
}

#[test]
fn a_commit_error_rolls_the_transaction_back() {
    let (faults, mut conn) = attached();
    let rule = faults
        .arm(Rule::on(Op::Commit).error(ErrorClass::Transient))
        .unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute("UPDATE accounts SET balance = 0 WHERE id = 1", [])
        .unwrap();
    let err = tx.commit().unwrap_err();
    assert_eq!(code(&err), Some(ErrorCode::ConstraintViolation), "{err}");
    assert_eq!(extended(&err), Some(rusqlite::ffi::SQLITE_CONSTRAINT_COMMITHOOK));
    assert_eq!(rule.hits(), 1);
    drop(rule);
    assert!(conn.is_autocommit(), "rolled back, not left open");
    assert_eq!(balance(&conn, 1), 100, "not applied");
}

#[test]
fn an_autocommit_write_is_a_commit_too() {
    let (faults, conn) = attached();
    let rule = faults
        .arm(Rule::on(Op::Commit).error(ErrorClass::Transient))
        .unwrap();
    let err = conn
        .execute("UPDATE accounts SET balance = 0 WHERE id = 1", [])
        .unwrap_err();
    assert_eq!(extended(&err), Some(rusqlite::ffi::SQLITE_CONSTRAINT_COMMITHOOK));
    drop(rule);
    assert_eq!(balance(&conn, 1), 100);
}

#[test]
fn a_commit_disconnect_rolls_back_and_kills() {
    let db = WalDb::new();
    let faults = Faults::new();
    let mut conn = db.open();
    faults.attach(&mut conn).unwrap();
    let _rule = faults.arm(Rule::on(Op::Commit).disconnect()).unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute("UPDATE accounts SET balance = 0 WHERE id = 1", [])
        .unwrap();
    let err = tx.commit().unwrap_err();
    // The commit hook refused the commit and killed the connection; the
    // progress handler then interrupted the COMMIT statement.
    assert_eq!(code(&err), Some(ErrorCode::OperationInterrupted), "{err}");
    assert_eq!(db.balance(1), 100, "not applied");
    assert!(faults.live_connections().is_empty());
    let err = conn.execute("SELECT 1", []).unwrap_err();
    assert_eq!(code(&err), Some(ErrorCode::AuthorizationForStatementDenied));
}

#[test]
fn a_commit_applied_then_cut_is_in_the_database_and_reported_as_failed() {
    let db = WalDb::new();
    let faults = Faults::new();
    let mut conn = db.open();
    faults.attach(&mut conn).unwrap();
    let rule = faults.arm(Rule::on(Op::Commit).disconnect_after_apply()).unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute("UPDATE accounts SET balance = 0 WHERE id = 1", [])
        .unwrap();
    let err = tx.commit().unwrap_err();
    // SQLite reports the WAL hook's error as a plain SQLITE_ERROR.
    assert_eq!(code(&err), Some(ErrorCode::Unknown), "{err}");
    assert_eq!(extended(&err), Some(rusqlite::ffi::SQLITE_ERROR), "{err}");
    assert_eq!(rule.hits(), 1);
    assert_eq!(db.balance(1), 0, "applied: another connection sees it");
    assert!(faults.live_connections().is_empty(), "and the connection is dead");
    assert!(
        conn.execute("UPDATE accounts SET balance = 5 WHERE id = 2", [])
            .is_err()
    );
    assert_eq!(db.balance(2), 0);
}

#[test]
fn a_cut_commit_outside_wal_mode_is_refused_at_arm_and_at_attach() {
    let (faults, _conn) = attached();
    let err = faults
        .arm(Rule::on(Op::Commit).disconnect_after_apply())
        .unwrap_err();
    assert_eq!(err.field(), Some("action"));
    assert!(err.to_string().contains("WAL mode"), "{err}");

    let faults = Faults::new();
    let _rule = faults.arm(Rule::on(Op::Commit).disconnect_after_apply()).unwrap();
    let mut conn = Connection::open_in_memory().unwrap();
    let err = faults.attach(&mut conn).unwrap_err();
    assert_eq!(err.field(), Some("attach"));
    assert!(err.to_string().contains("WAL mode"), "{err}");
}

#[test]
fn apply_then_kill_on_a_statement_is_refused_the_hooks_cannot_cut_it() {
    let db = WalDb::new();
    let faults = Faults::new();
    let mut conn = db.open();
    faults.attach(&mut conn).unwrap();
    let err = faults
        .arm(Rule::on(Op::Execute).disconnect_after_apply())
        .unwrap_err();
    assert!(err.to_string().contains("no hook after a statement"), "{err}");
}

#[test]
fn a_delay_waits_on_the_fault_clock_then_proceeds() {
    let clock = Clock::manual();
    let faults = Faults::new().with_clock(clock.clone());
    let mut conn = Connection::open_in_memory().unwrap();
    accounts(&conn);
    faults.attach(&mut conn).unwrap();
    let before = clock.now();
    let _rule = faults
        .arm(Rule::on(Op::Commit).delay(Duration::from_secs(5)))
        .unwrap();
    conn.execute("UPDATE accounts SET balance = 1 WHERE id = 1", [])
        .unwrap();
    assert_eq!(clock.now() - before, Duration::from_secs(5));
    assert_eq!(balance(&conn, 1), 1);
}

#[test]
fn a_hang_holds_the_statement_until_disarmed() {
    let (faults, conn) = attached();
    let rule = faults.arm(Rule::on(Op::Execute).hang()).unwrap();
    let worker = std::thread::spawn(move || {
        conn.execute("UPDATE accounts SET balance = 3 WHERE id = 1", [])?;
        Ok::<_, rusqlite::Error>(balance(&conn, 1))
    });
    assert!(rule.wait_for_hits(1, Duration::from_secs(10)));
    assert!(!worker.is_finished());
    drop(rule);
    assert_eq!(worker.join().unwrap().unwrap(), 3);
}

#[test]
fn a_kill_ends_a_hang_with_a_failed_statement() {
    let (faults, conn) = attached();
    let id = faults.live_connections()[0];
    let rule = faults.arm(Rule::on(Op::Execute).hang()).unwrap();
    let worker = std::thread::spawn(move || conn.execute("UPDATE accounts SET balance = 3 WHERE id = 1", []));
    assert!(rule.wait_for_hits(1, Duration::from_secs(10)));
    assert!(faults.kill(id));
    let err = worker.join().unwrap().unwrap_err();
    assert_eq!(code(&err), Some(ErrorCode::AuthorizationForStatementDenied));
}

#[test]
fn restart_and_outage_kill_every_attached_connection() {
    let faults = Faults::new();
    let mut a = Connection::open_in_memory().unwrap();
    let mut b = Connection::open_in_memory().unwrap();
    faults.attach(&mut a).unwrap();
    faults.attach(&mut b).unwrap();
    assert_eq!(faults.live_connections().len(), 2);
    faults.restart();
    assert!(a.execute("CREATE TABLE t (x)", []).is_err());
    assert!(b.execute("CREATE TABLE t (x)", []).is_err());
    faults.outage();
    let mut c = Connection::open_in_memory().unwrap();
    faults.attach(&mut c).unwrap();
    assert!(
        c.execute("CREATE TABLE t (x)", []).is_err(),
        "attached during an outage: dead"
    );
}

#[test]
fn begin_and_rollback_rules_reach_rusqlites_transactions() {
    let (faults, mut conn) = attached();
    let begin = faults
        .arm(Rule::on(Op::Begin).error(ErrorClass::Transient))
        .unwrap();
    assert!(conn.transaction().is_err());
    drop(begin);
    let rollback = faults
        .arm(Rule::on(Op::Rollback).times(1).error(ErrorClass::Transient))
        .unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute("UPDATE accounts SET balance = 0 WHERE id = 1", [])
        .unwrap();
    let err = tx.rollback().unwrap_err();
    assert_eq!(code(&err), Some(ErrorCode::AuthorizationForStatementDenied));
    assert_eq!(rollback.hits(), 1);
    // The failed ROLLBACK left the transaction open; rusqlite's drop of
    // the transaction then rolled it back.
    assert!(conn.is_autocommit());
    assert_eq!(balance(&conn, 1), 100);
}

#[test]
fn attaching_twice_is_refused_and_the_first_attachment_stays() {
    let faults = Faults::new();
    let other = Faults::new();
    let mut conn = Connection::open_in_memory().unwrap();
    accounts(&conn);
    let id = faults.attach(&mut conn).unwrap();
    for again in [&faults, &other] {
        let err = again.attach(&mut conn).unwrap_err();
        assert_eq!(err.field(), Some("attach"));
        assert!(
            err.to_string()
                .contains(&format!("attached already (as connection {id})")),
            "{err}"
        );
    }
    let rule = faults
        .arm(Rule::on(Op::Query).error(ErrorClass::Transient))
        .unwrap();
    assert!(conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)).is_err());
    assert_eq!(rule.hits(), 1);
    assert_eq!(faults.live_connections(), vec![id]);
    assert!(other.live_connections().is_empty());
}

#[test]
fn a_hook_the_users_code_replaces_later_is_reported_when_a_rule_is_armed() {
    let (faults, mut conn) = attached();
    conn.commit_hook(Some(|| false)).unwrap();
    let err = faults
        .arm(Rule::on(Op::Commit).error(ErrorClass::Transient))
        .unwrap_err();
    assert!(err.to_string().contains("commit hook was replaced"), "{err}");
}

#[test]
fn a_dropped_connection_is_no_longer_live() {
    let (faults, conn) = attached();
    assert_eq!(faults.live_connections().len(), 1);
    drop(conn);
    assert!(faults.live_connections().is_empty());
    // All its hooks went with it: that is not a hook replaced.
    let rule = faults.arm(Rule::on(Op::Commit).error(ErrorClass::Transient));
    assert!(rule.is_ok_and(|rule| rule.is_armed()));
}

#[test]
fn fired_rules_and_kills_are_journaled_with_the_attached_id() {
    let journal = Journal::new();
    let faults = Faults::new().with_journal(journal.clone());
    let mut conn = Connection::open_in_memory().unwrap();
    accounts(&conn);
    let id = faults.attach(&mut conn).unwrap();
    let _rule = faults
        .arm(
            Rule::on(Op::Execute)
                .matching("DELETE FROM accounts")
                .disconnect(),
        )
        .unwrap();
    assert!(
        conn.execute("DELETE FROM accounts WHERE id = ?1", params![2])
            .is_err()
    );
    let text = journal.to_text();
    assert!(text.contains(&format!("{id}")), "{text}");
    assert!(
        text.contains("Execute: disconnect (rule 1)") || text.contains("execute: disconnect"),
        "{text}"
    );
}
