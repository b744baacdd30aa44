//! The mock layer: scripted expectations, unexpected-statement policy,
//! verification report, per-connection state and log, committed writes, and
//! the mock dialect's presets.

use dbfault::{
    Connection, Dialect, Driver, Error, ErrorClass, ErrorKind, Expectation, MismatchReason, MockConnection,
    MockDialect, MockServer, Op, StatementMatcher, Unexpected, Value,
};
use rstest::rstest;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn connect(server: &MockServer) -> MockConnection {
    server.driver().connect().expect("the mock always connects")
}

fn one_row(value: i64) -> Vec<Vec<Value>> {
    vec![vec![Value::Integer(value)]]
}

// --- matching -------------------------------------------------------------

#[rstest]
#[case::same("SELECT id FROM t WHERE x = 1")]
#[case::extra_spaces("SELECT   id  FROM t   WHERE x = 1")]
#[case::newlines_and_tabs("\n  SELECT id\n\tFROM t\n  WHERE x = 1  \n")]
fn exact_match_normalises_whitespace(#[case] sent: &str) -> TestResult {
    let server = MockServer::strict();
    server.expect(Expectation::exact(" SELECT id FROM t\nWHERE x = 1").returns_rows(["id"], one_row(7)));
    let mut conn = connect(&server);
    let rows = conn.query(sent, &[])?;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get("id"), Some(&Value::Integer(7)));
    server.verify()?;
    Ok(())
}

#[test]
fn exact_match_is_case_sensitive() {
    let server = MockServer::strict();
    server.expect(Expectation::exact("SELECT 1"));
    let mut conn = connect(&server);
    let err = conn.query("select 1", &[]).unwrap_err();
    assert_eq!(err.code(), Some(MockServer::UNEXPECTED_CODE));
    assert!(server.verify().is_err());
}

#[test]
fn regex_match_on_the_normalised_statement() -> TestResult {
    let server = MockServer::strict();
    server.expect(
        Expectation::regex(r"^INSERT INTO t \(a\) VALUES")?
            .affects(3)
            .times(2),
    );
    let mut conn = connect(&server);
    assert_eq!(conn.execute("  INSERT INTO t (a)\n VALUES (1)", &[])?, 3);
    assert_eq!(conn.execute("INSERT INTO t (a) VALUES (2)", &[])?, 3);
    server.verify()?;
    assert!(StatementMatcher::regex("^SELECT")?.matches("  SELECT\n1"));
    Ok(())
}

#[rstest]
#[case("(unclosed")]
#[case("a{2,1}")]
#[case("[z-a]")]
fn bad_regex_is_a_scenario_error_naming_the_pattern(#[case] pattern: &str) {
    let err = Expectation::regex(pattern).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Scenario);
    assert!(err.to_string().contains(pattern), "{err}");
    let err = StatementMatcher::regex(pattern).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Scenario);
}

#[test]
fn params_are_matched_when_given() -> TestResult {
    let server = MockServer::new();
    server.expect(
        Expectation::exact("DELETE FROM t WHERE id = ?")
            .with_params([5])
            .affects(1),
    );
    let mut conn = connect(&server);
    assert_eq!(
        conn.execute("DELETE FROM t WHERE id = ?", &[Value::Integer(6)])?,
        0
    );
    assert_eq!(
        conn.execute("DELETE FROM t WHERE id = ?", &[Value::Integer(5)])?,
        1
    );
    let mismatches = server.mismatches();
    assert_eq!(mismatches.len(), 1);
    assert_eq!(mismatches[0].reason, MismatchReason::ParamsDiffer);
    let report = server.verify().unwrap_err().to_string();
    assert!(report.contains("with params [5]"), "{report}");
    assert!(report.contains("with params [6]"), "{report}");
    Ok(())
}

// --- replies --------------------------------------------------------------

#[test]
fn scripted_error_is_classified_by_the_servers_dialect() {
    let server = MockServer::new().with_dialect(MockDialect::postgres());
    server.expect(Expectation::exact("UPDATE t SET a = 1").fails("40001", "could not serialize access"));
    server.expect(Expectation::exact("INSERT INTO t VALUES (1)").fails("23505", "duplicate key"));
    let mut conn = connect(&server);
    let err = conn.execute("UPDATE t SET a = 1", &[]).unwrap_err();
    assert_eq!(
        (err.kind(), err.class(), err.code()),
        (ErrorKind::Driver, ErrorClass::Transient, Some("40001"))
    );
    let err = conn.execute("INSERT INTO t VALUES (1)", &[]).unwrap_err();
    assert_eq!(err.class(), ErrorClass::Constraint);
    // A non-disconnect error leaves the connection usable.
    conn.ping().expect("still alive");
    assert!(server.committed().is_empty());
}

#[test]
fn scripted_disconnect_kills_the_connection_and_its_transaction() -> TestResult {
    let server = MockServer::new().with_dialect(MockDialect::postgres());
    server.expect(Expectation::exact("SELECT pg_sleep(1)").fails("57P01", "terminating connection"));
    let mut conn = connect(&server);
    conn.begin()?;
    conn.execute("INSERT INTO t VALUES (1)", &[])?;
    let err = conn.query("SELECT pg_sleep(1)", &[]).unwrap_err();
    assert!(err.is_disconnect());
    assert!(!conn.in_transaction());
    assert!(conn.is_broken(), "a connection lost to a disconnect is broken");
    for result in [
        conn.ping(),
        conn.commit(),
        conn.execute("SELECT 1", &[]).map(drop),
    ] {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Closed);
        assert!(server.dialect().is_disconnect(&err));
    }
    assert_eq!(server.open_connections(), 1, "dead but not closed yet");
    conn.close()?;
    assert_eq!(server.open_connections(), 0);
    assert!(server.committed().is_empty());
    Ok(())
}

#[test]
fn rows_of_the_wrong_width_are_an_error_not_a_panic() {
    let server = MockServer::new();
    server.expect(Expectation::exact("SELECT a, b").returns_rows(["a", "b"], one_row(1)));
    let mut conn = connect(&server);
    let err = conn.query("SELECT a, b", &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Scenario);
    let report = server.verify().unwrap_err();
    assert_eq!(report.invalid().len(), 1);
    assert!(
        report.to_string().contains("row 1 has 1 values for 2 columns"),
        "{report}"
    );
}

#[test]
fn execute_of_a_rows_expectation_and_query_of_a_count_give_defaults() -> TestResult {
    let server = MockServer::new();
    server.expect(Expectation::exact("SELECT 1").returns_rows(["x"], one_row(1)));
    server.expect(Expectation::exact("UPDATE t SET a = 1").affects(4));
    let mut conn = connect(&server);
    assert_eq!(conn.execute("SELECT 1", &[])?, 0);
    assert!(conn.query("UPDATE t SET a = 1", &[])?.is_empty());
    server.verify()?;
    Ok(())
}

// --- counts, order, policy ------------------------------------------------

#[rstest]
fn times_exhausted_then_the_next_one_is_unexpected(
    #[values(Unexpected::Permissive, Unexpected::Strict)] policy: Unexpected,
) -> TestResult {
    let server = MockServer::new().with_policy(policy);
    server.expect(Expectation::exact("UPDATE t SET a = 1").affects(1).times(2));
    let mut conn = connect(&server);
    assert_eq!(conn.execute("UPDATE t SET a = 1", &[])?, 1);
    assert_eq!(conn.execute("UPDATE t SET a = 1", &[])?, 1);
    let third = conn.execute("UPDATE t SET a = 1", &[]);
    match policy {
        Unexpected::Strict => {
            let err = third.unwrap_err();
            assert_eq!(
                (err.class(), err.code()),
                (ErrorClass::Statement, Some("MOCK_UNEXPECTED"))
            );
        }
        _ => assert_eq!(third?, 0),
    }
    let report = server.verify().unwrap_err();
    assert_eq!(report.mismatches().len(), 1);
    assert_eq!(report.mismatches()[0].reason, MismatchReason::Exhausted);
    assert!(report.unmet().is_empty());
    Ok(())
}

#[test]
fn unmet_expectations_report_expected_and_actual_counts() {
    let server = MockServer::new();
    server.expect(Expectation::exact("SELECT 1").times(3));
    server.expect(Expectation::exact("SELECT 2").any_times());
    let mut conn = connect(&server);
    conn.query("SELECT 1", &[]).unwrap();
    let report = server.verify().unwrap_err();
    assert_eq!(report.unmet().len(), 1);
    assert_eq!((report.unmet()[0].expected, report.unmet()[0].calls), (3, 1));
    assert!(report.to_string().contains("expected 3 times, got 1"), "{report}");
}

#[test]
fn ordered_expectations_are_met_in_sequence() -> TestResult {
    let server = MockServer::strict();
    server.expect(Expectation::exact("BEGIN WORK").ordered());
    server.expect(Expectation::exact("SELECT 1").ordered().times(2));
    server.expect(Expectation::exact("END WORK").ordered());
    let mut conn = connect(&server);
    conn.execute("BEGIN WORK", &[])?;
    conn.query("SELECT 1", &[])?;
    conn.query("SELECT 1", &[])?;
    conn.execute("END WORK", &[])?;
    server.verify()?;
    Ok(())
}

#[test]
fn ordered_violation_is_reported_with_what_was_next() -> TestResult {
    let server = MockServer::new();
    server.expect(Expectation::exact("SELECT a FROM t").ordered());
    server.expect(Expectation::exact("UPDATE t SET a = 2").affects(1).ordered());
    let mut conn = connect(&server);
    // Out of order: permissive, so the caller gets the default answer...
    assert_eq!(conn.execute("UPDATE t SET a = 2", &[])?, 0);
    conn.query("SELECT a FROM t", &[])?;
    assert_eq!(conn.execute("UPDATE t SET a = 2", &[])?, 1);
    // ...but verify reports it.
    let report = server.verify().unwrap_err();
    assert_eq!(report.mismatches().len(), 1);
    let m = &report.mismatches()[0];
    assert_eq!(m.reason, MismatchReason::OutOfOrder);
    assert_eq!(m.sql, "UPDATE t SET a = 2");
    assert!(m.expected[0].contains("SELECT a FROM t"), "{:?}", m.expected);
    Ok(())
}

#[test]
fn an_ordered_statement_after_the_script_moved_past_it_is_out_of_order() {
    let server = MockServer::new();
    server.expect(Expectation::exact("SELECT 1").ordered().any_times());
    server.expect(Expectation::exact("SELECT 2").ordered());
    let mut conn = connect(&server);
    conn.query("SELECT 2", &[]).unwrap(); // passes over the any-times SELECT 1
    conn.query("SELECT 1", &[]).unwrap();
    let mismatches = server.mismatches();
    assert_eq!(mismatches.len(), 1);
    assert_eq!(mismatches[0].reason, MismatchReason::OutOfOrder);
}

#[test]
fn unordered_expectations_may_come_in_any_order() -> TestResult {
    let server = MockServer::strict();
    server.expect(Expectation::exact("SELECT 1"));
    server.expect(Expectation::exact("SELECT 2"));
    let mut conn = connect(&server);
    conn.query("SELECT 2", &[])?;
    conn.query("SELECT 1", &[])?;
    server.verify()?;
    Ok(())
}

#[test]
fn permissive_answers_unscripted_statements_and_verify_tolerates_them() -> TestResult {
    let server = MockServer::new();
    assert_eq!(server.policy(), Unexpected::Permissive);
    let mut conn = connect(&server);
    assert_eq!(conn.execute("CREATE TABLE t (a)", &[])?, 0);
    assert!(conn.query("SELECT * FROM t", &[])?.is_empty());
    assert_eq!(server.mismatches().len(), 2);
    server.verify()?;
    assert_eq!(server.committed_sql(), ["CREATE TABLE t (a)"]);
    Ok(())
}

#[test]
fn strict_fails_unscripted_statements_and_verify_reports_them() {
    let server = MockServer::strict();
    let mut conn = connect(&server);
    let err = conn.execute("CREATE TABLE t (a)", &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Driver);
    assert_eq!(err.class(), ErrorClass::Statement);
    assert_eq!(err.code(), Some(MockServer::UNEXPECTED_CODE));
    conn.ping()
        .expect("an unexpected statement does not kill the connection");
    assert!(server.committed().is_empty());
    let report = server.verify().unwrap_err();
    assert_eq!(report.mismatches()[0].reason, MismatchReason::Unscripted);
}

#[test]
fn verify_report_shows_expected_and_received_side_by_side() {
    let server = MockServer::strict();
    server.expect(
        Expectation::exact("SELECT name FROM users WHERE id = ?")
            .with_params([1])
            .ordered(),
    );
    let mut conn = connect(&server);
    let _ = conn.query("SELECT  email FROM users WHERE id = ?", &[Value::Integer(1)]);
    let report = server.verify().unwrap_err().to_string();
    let lines: Vec<&str> = report.lines().collect();
    let expected = lines
        .iter()
        .position(|l| l.trim_start().starts_with("expected:"))
        .expect("an expected line");
    assert!(
        lines[expected].contains(r#"exact "SELECT name FROM users WHERE id = ?" with params [1]"#),
        "{report}"
    );
    assert!(
        lines[expected + 1].trim_start().starts_with("received:"),
        "{report}"
    );
    assert!(
        lines[expected + 1].contains(r#"query "SELECT email FROM users WHERE id = ?" with params [1]"#),
        "{report}"
    );
    // The labels line up, so the two statements sit one above the other.
    assert_eq!(lines[expected].find(':'), lines[expected + 1].find(':'));
    assert!(report.contains("unmet expectations:"), "{report}");
    assert!(report.contains("expected 1 time, got 0"), "{report}");
}

// --- transactions and committed ---------------------------------------------

#[test]
fn committed_has_autocommit_and_committed_transactions_in_commit_order() -> TestResult {
    let server = MockServer::new();
    let mut a = connect(&server);
    let mut b = connect(&server);
    a.execute("INSERT 1 autocommit", &[])?;
    a.begin()?;
    a.execute("INSERT 2 in a's txn", &[])?;
    b.begin()?;
    b.execute("INSERT 3 in b's txn", &[])?;
    b.query("SELECT read only", &[])?;
    b.commit()?; // b commits first
    a.execute("INSERT 4 in a's txn", &[])?;
    b.execute("INSERT 5 autocommit", &[])?;
    a.commit()?;
    b.begin()?;
    b.execute("INSERT 6 rolled back", &[])?;
    b.rollback()?;
    a.begin()?;
    a.execute("INSERT 7 open at close", &[])?;
    a.close()?;
    assert_eq!(
        server.committed_sql(),
        [
            "INSERT 1 autocommit",
            "INSERT 3 in b's txn",
            "INSERT 5 autocommit",
            "INSERT 2 in a's txn",
            "INSERT 4 in a's txn",
        ]
    );
    let committed = server.committed();
    assert_eq!(committed[1].conn, b.id());
    assert_eq!(committed[3].conn, a.id());
    Ok(())
}

#[test]
fn failed_statements_are_not_committed_and_leave_the_transaction_open() -> TestResult {
    let server = MockServer::new();
    server.expect(Expectation::exact("INSERT bad").fails("MOCK_CONSTRAINT", "unique"));
    let mut conn = connect(&server);
    conn.begin()?;
    conn.execute("INSERT good", &[Value::Integer(1)])?;
    assert_eq!(
        conn.execute("INSERT bad", &[]).unwrap_err().class(),
        ErrorClass::Constraint
    );
    assert!(conn.in_transaction());
    conn.commit()?;
    assert_eq!(server.committed_sql(), ["INSERT good"]);
    assert_eq!(server.committed()[0].params, [Value::Integer(1)]);
    Ok(())
}

#[test]
fn dropping_a_connection_discards_its_transaction_and_closes_it() -> TestResult {
    let server = MockServer::new();
    let id = {
        let mut conn = connect(&server);
        conn.begin()?;
        conn.execute("INSERT lost", &[])?;
        conn.id()
    };
    assert!(server.committed().is_empty());
    assert_eq!(server.open_connections(), 0);
    assert_eq!(server.ops_for(id).last(), Some(&Op::Close));
    Ok(())
}

#[test]
fn connections_have_distinct_ids_and_independent_transactions() -> TestResult {
    let server = MockServer::new();
    let driver = server.driver();
    let mut a = driver.connect()?;
    let mut b = driver.clone().connect()?;
    let c = connect(&server);
    assert!(a.id() != b.id() && b.id() != c.id() && a.id() != c.id());
    a.begin()?;
    assert!(a.in_transaction());
    assert!(!b.in_transaction());
    b.begin()?; // independent of a's
    b.commit()?;
    assert!(a.in_transaction());
    assert!(!b.in_transaction());
    a.rollback()?;
    assert!(!a.in_transaction());
    assert_eq!(server.open_connection_ids(), [a.id(), b.id(), c.id()]);
    Ok(())
}

#[test]
fn begin_twice_fails_and_keeps_the_transaction() -> TestResult {
    let server = MockServer::new();
    let mut conn = connect(&server);
    conn.begin()?;
    let err = conn.begin().unwrap_err();
    assert_eq!(err.class(), ErrorClass::Statement);
    assert_eq!(err.code(), Some(MockServer::TRANSACTION_OPEN_CODE));
    assert!(conn.in_transaction());
    conn.commit()?;
    Ok(())
}

#[test]
fn commit_without_a_transaction_fails_rollback_without_one_is_a_no_op() -> TestResult {
    let server = MockServer::new();
    let mut conn = connect(&server);
    let err = conn.commit().unwrap_err();
    assert_eq!(err.code(), Some(MockServer::NO_TRANSACTION_CODE));
    assert_eq!(err.class(), ErrorClass::Statement);
    conn.rollback()?;
    assert!(!conn.in_transaction());
    Ok(())
}

// --- close ------------------------------------------------------------------

#[rstest]
#[case::execute(|c: &mut MockConnection| c.execute("SELECT 1", &[]).map(drop))]
#[case::query(|c: &mut MockConnection| c.query("SELECT 1", &[]).map(drop))]
#[case::begin(|c: &mut MockConnection| c.begin())]
#[case::commit(|c: &mut MockConnection| c.commit())]
#[case::rollback(|c: &mut MockConnection| c.rollback())]
#[case::ping(|c: &mut MockConnection| c.ping())]
fn ops_after_close_fail_with_closed(#[case] op: fn(&mut MockConnection) -> dbfault::Result<()>) {
    let server = MockServer::new();
    let mut conn = connect(&server);
    conn.close().unwrap();
    let logged = server.log().len();
    let err: Error = op(&mut conn).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
    assert!(err.is_disconnect());
    assert!(!conn.in_transaction());
    assert_eq!(server.log().len(), logged, "nothing reaches the server");
}

#[test]
fn close_twice_is_ok_and_logged_once() {
    let server = MockServer::new();
    let mut conn = connect(&server);
    conn.close().unwrap();
    conn.close().unwrap();
    drop(conn);
    assert_eq!(server.open_connections(), 0);
    let closes = server.log().iter().filter(|e| e.op == Op::Close).count();
    assert_eq!(closes, 1);
}

// --- log ----------------------------------------------------------------------

#[test]
fn log_records_each_connections_operations() -> TestResult {
    let server = MockServer::new();
    let mut a = connect(&server);
    let mut b = connect(&server);
    a.ping()?;
    b.execute("INSERT INTO t VALUES (?)", &[Value::from("x")])?;
    a.begin()?;
    a.query("SELECT 1", &[])?;
    a.commit()?;
    b.begin()?;
    b.rollback()?;
    a.close()?;
    use Op::*;
    assert_eq!(
        server.ops_for(a.id()),
        [Connect, Ping, Begin, Query, Commit, Close]
    );
    assert_eq!(server.ops_for(b.id()), [Connect, Execute, Begin, Rollback]);
    let b_log = server.log_for(b.id());
    assert_eq!(b_log[1].sql.as_deref(), Some("INSERT INTO t VALUES (?)"));
    assert_eq!(b_log[1].params, [Value::from("x")]);
    assert!(b_log.iter().all(|e| e.conn == b.id() && e.is_ok()));
    let seqs: Vec<u64> = server.log().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    assert!(
        b_log[1]
            .to_string()
            .contains(r#"execute "INSERT INTO t VALUES (?)" ['x']"#)
    );
    Ok(())
}

#[test]
fn the_log_records_failures() {
    let server = MockServer::new();
    let mut conn = connect(&server);
    conn.begin().unwrap();
    let _ = conn.begin();
    let log = server.log_for(conn.id());
    assert!(log[1].is_ok());
    assert!(
        log[2]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("MOCK_TRANSACTION_OPEN"))
    );
}

// --- driver and dialect ---------------------------------------------------------

#[test]
fn driver_reports_the_servers_dialect_and_is_send_sync() {
    fn assert_send_sync<T: Send + Sync + Clone>(_: &T) {}
    let server = MockServer::new();
    let driver = server.driver();
    assert_send_sync(&driver);
    assert_eq!(driver.dialect().name(), "mock");
    server.set_dialect(MockDialect::sqlite());
    assert_eq!(driver.dialect().name(), "sqlite");
    let server = MockServer::new().with_dialect(MockDialect::new().with_name("custom"));
    assert_eq!(server.driver().dialect().name(), "custom");
}

#[test]
fn connections_work_across_threads() {
    let server = MockServer::new();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let driver = server.driver();
            std::thread::spawn(move || {
                let mut conn = driver.connect().unwrap();
                conn.execute("INSERT", &[]).unwrap();
                conn.id()
            })
        })
        .collect();
    let mut ids: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4);
    assert_eq!(server.committed().len(), 4);
    assert_eq!(server.open_connections(), 0);
}

#[rstest]
#[case::postgres_admin_shutdown(MockDialect::postgres(), "57P01", ErrorClass::Disconnect)]
#[case::postgres_connection_failure(MockDialect::postgres(), "08006", ErrorClass::Disconnect)]
#[case::postgres_serialization(MockDialect::postgres(), "40001", ErrorClass::Transient)]
#[case::postgres_deadlock(MockDialect::postgres(), "40P01", ErrorClass::Transient)]
#[case::postgres_unique(MockDialect::postgres(), "23505", ErrorClass::Constraint)]
#[case::postgres_syntax(MockDialect::postgres(), "42601", ErrorClass::Statement)]
#[case::sqlite_busy(MockDialect::sqlite(), "SQLITE_BUSY", ErrorClass::Transient)]
#[case::sqlite_busy_snapshot(MockDialect::sqlite(), "SQLITE_BUSY_SNAPSHOT", ErrorClass::Transient)]
#[case::sqlite_locked(MockDialect::sqlite(), "SQLITE_LOCKED", ErrorClass::Transient)]
#[case::sqlite_unique(MockDialect::sqlite(), "SQLITE_CONSTRAINT_UNIQUE", ErrorClass::Constraint)]
#[case::sqlite_misuse(MockDialect::sqlite(), "SQLITE_MISUSE", ErrorClass::Disconnect)]
#[case::sqlite_error(MockDialect::sqlite(), "SQLITE_ERROR", ErrorClass::Statement)]
#[case::mock_disconnect(MockDialect::new(), "MOCK_DISCONNECT", ErrorClass::Disconnect)]
#[case::mock_transient(MockDialect::new(), "MOCK_TRANSIENT", ErrorClass::Transient)]
#[case::mock_constraint(MockDialect::new(), "MOCK_CONSTRAINT", ErrorClass::Constraint)]
#[case::mock_other_code(MockDialect::new(), "57P01", ErrorClass::Statement)]
fn presets_classify_codes(#[case] dialect: MockDialect, #[case] code: &str, #[case] class: ErrorClass) {
    assert_eq!(dialect.classify(&Error::driver(code, "boom")), class);
    assert_eq!(Error::driver(code, "boom").classified_by(&dialect).class(), class);
}

#[rstest]
fn closed_is_a_disconnect_in_every_preset(
    #[values(MockDialect::new(), MockDialect::postgres(), MockDialect::sqlite())] dialect: MockDialect,
) {
    assert_eq!(dialect.classify(&Error::closed("gone")), ErrorClass::Disconnect);
    assert!(dialect.is_disconnect(&Error::closed("gone")));
    let code = dialect
        .disconnect_code()
        .expect("every preset has a disconnect code");
    assert_eq!(
        dialect.classify(&Error::driver(code, "gone")),
        ErrorClass::Disconnect
    );
    assert_eq!(
        dialect.classify(&Error::config("size", "zero")),
        ErrorClass::Other
    );
}

#[test]
fn presets_names_and_disconnect_codes() {
    assert_eq!(MockDialect::default().name(), "mock");
    assert_eq!(MockDialect::postgres().name(), "postgresql");
    assert_eq!(MockDialect::sqlite().name(), "sqlite");
    assert_eq!(MockDialect::new().disconnect_code(), Some("MOCK_DISCONNECT"));
    assert_eq!(MockDialect::postgres().disconnect_code(), Some("57P01"));
    let custom = MockDialect::new()
        .disconnect_codes(["X1", "X2*"])
        .transient_codes(["T"]);
    assert_eq!(custom.disconnect_code(), Some("X1"));
    assert_eq!(custom.classify_code("X2_ANYTHING"), ErrorClass::Disconnect);
    assert_eq!(custom.classify_code("MOCK_TRANSIENT"), ErrorClass::Statement);
}

// --- scripts ---------------------------------------------------------------

/// A piece of a script holding only comments is not a statement: the mock
/// must not be sent one (SQLite refuses them as "empty or comment only").
#[rstest]
#[case::trailing_block_comment("CREATE TABLE t (x INTEGER);/**/", 1)]
#[case::smallest("'';/**/", 1)]
#[case::comments_between("INSERT INTO t VALUES (1);\n/* a; b */\n-- c;\n;INSERT INTO t VALUES (2);", 2)]
#[case::only_comments("/* nothing */ -- at all\n/* unterminated", 0)]
fn run_script_sends_no_comment_only_statement(#[case] script: &str, #[case] statements: usize) -> TestResult {
    let server = MockServer::new();
    let mut conn = connect(&server);
    assert_eq!(dbfault::run_script(&mut conn, script)?, statements);
    let sent: Vec<String> = server.log().into_iter().filter_map(|e| e.sql).collect();
    assert_eq!(sent.len(), statements, "{sent:?}");
    assert!(
        sent.iter()
            .all(|sql| !sql.trim().is_empty() && !sql.starts_with("/*") && !sql.starts_with("--")),
        "{sent:?}"
    );
    Ok(())
}
