//! The exact driver calls behind the fault layer and the helpers, checked
//! with the mockall mocks: what reaches the inner connection, how often,
//! and in which order.
#![cfg(feature = "mockall")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dbfault::{
    Action, Clock, ConnId, Connection, ConnectionMock, Dialect, DialectMock, Driver, Error, ErrorClass,
    ErrorKind, FaultyDriver, Op, Result, Row, RowRef, Rule, Value, run_script,
};
use mockall::Sequence;
use rstest::rstest;

/// The code the test dialect gives a disconnect.
const GONE: &str = "MOCK_GONE";

/// A driver that hands out one prepared connection and counts connects.
struct OneConnection {
    conn: Mutex<Option<ConnectionMock>>,
    connects: AtomicUsize,
    dialect: Arc<dyn Dialect>,
}

impl OneConnection {
    fn new(conn: ConnectionMock) -> Self {
        let mut dialect = DialectMock::new();
        dialect.expect_disconnect_code().return_const(Some(GONE));
        OneConnection {
            conn: Mutex::new(Some(conn)),
            connects: AtomicUsize::new(0),
            dialect: Arc::new(dialect),
        }
    }
}

impl Driver for OneConnection {
    type Connection = ConnectionMock;

    fn connect(&self) -> Result<ConnectionMock> {
        self.connects.fetch_add(1, Ordering::SeqCst);
        Ok(self.conn.lock().unwrap().take().expect("one connect only"))
    }

    fn dialect(&self) -> Arc<dyn Dialect> {
        Arc::clone(&self.dialect)
    }
}

/// A call on the inner connection after `begin`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Inner {
    Commit,
    Close,
}

/// An inner connection that expects `begin`, then exactly `calls`, in
/// that order, and nothing else: any other commit, close or rollback
/// panics.
fn inner_connection(calls: &[Inner]) -> ConnectionMock {
    let mut seq = Sequence::new();
    let mut conn = ConnectionMock::new();
    conn.expect_id().return_const(ConnId(1));
    conn.expect_begin()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|| Ok(()));
    for call in calls {
        match call {
            Inner::Commit => {
                conn.expect_commit()
                    .times(1)
                    .in_sequence(&mut seq)
                    .returning(|| Ok(()));
            }
            Inner::Close => {
                conn.expect_close()
                    .times(1)
                    .in_sequence(&mut seq)
                    .returning(|| Ok(()));
            }
        }
    }
    if !calls.contains(&Inner::Commit) {
        conn.expect_commit().never();
    }
    if !calls.contains(&Inner::Close) {
        conn.expect_close().never();
    }
    conn.expect_rollback().never();
    conn
}

/// What the caller of `commit` sees.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Seen {
    Ok,
    /// An injected disconnect with the dialect's code; the connection is
    /// dead.
    Disconnect,
    /// An injected error of this class; the connection lives.
    Error(ErrorClass),
}

#[rstest]
#[case::disconnect(Rule::on(Op::Commit).disconnect(), &[Inner::Close], Seen::Disconnect)]
#[case::disconnect_after_apply(
    Rule::on(Op::Commit).disconnect_after_apply(),
    &[Inner::Commit, Inner::Close],
    Seen::Disconnect
)]
#[case::error(Rule::on(Op::Commit).error(ErrorClass::Transient), &[], Seen::Error(ErrorClass::Transient))]
#[case::delay(Rule::on(Op::Commit).delay(Duration::from_millis(250)), &[Inner::Commit], Seen::Ok)]
fn commit_rule_reaches_the_inner_connection_exactly_as_its_action_says(
    #[case] rule: Rule,
    #[case] inner: &[Inner],
    #[case] seen: Seen,
) {
    let waited = match rule.get_action() {
        Action::Delay(d) => *d,
        _ => Duration::ZERO,
    };
    let clock = Clock::manual();
    let start = clock.now();
    let driver = FaultyDriver::new(OneConnection::new(inner_connection(inner))).with_clock(clock.clone());
    let guard = driver.faults().arm(rule).unwrap();
    let mut conn = driver.connect().unwrap();

    conn.begin().unwrap();
    let result = conn.commit();

    assert_eq!(guard.hits(), 1);
    match seen {
        Seen::Ok => assert!(result.is_ok(), "{result:?}"),
        Seen::Disconnect => {
            let err = result.unwrap_err();
            assert!(err.is_disconnect() && err.is_injected(), "{err:?}");
            assert_eq!(err.code(), Some(GONE));
            assert!(conn.is_dead());
            // Answered by the fault layer: the inner connection is not asked.
            assert!(!conn.in_transaction());
        }
        Seen::Error(class) => {
            let err = result.unwrap_err();
            assert_eq!((err.kind(), err.class()), (ErrorKind::Driver, class));
            assert!(err.is_injected() && !conn.is_dead());
        }
    }
    assert_eq!(
        clock.now() - start,
        waited,
        "a delay advances the manual clock, nothing else does"
    );
    // The inner mock checks its counts when dropped: by the kill, or here.
    drop(conn);
}

#[test]
fn outage_refuses_connects_without_reaching_the_inner_driver() {
    let mut conn = ConnectionMock::new();
    conn.expect_id().return_const(ConnId(1));
    let driver = FaultyDriver::new(OneConnection::new(conn));
    let faults = driver.faults();

    faults.outage();
    let err = driver.connect().unwrap_err();
    assert!(err.is_disconnect() && err.is_injected(), "{err:?}");
    assert_eq!(err.code(), Some(GONE), "the inner dialect's disconnect code");
    assert_eq!(driver.inner().connects.load(Ordering::SeqCst), 0);

    faults.restore();
    let conn = driver.connect().unwrap();
    assert_eq!(conn.id(), ConnId(1));
    assert_eq!(driver.inner().connects.load(Ordering::SeqCst), 1);
}

#[test]
fn run_script_executes_in_order_and_stops_at_the_first_failure() {
    let seed = include_str!("../fixtures/seed.sql");
    let mut seq = Sequence::new();
    let mut conn = ConnectionMock::new();
    conn.expect_execute()
        .withf(|sql, params| sql.contains("VALUES (1, 'ann', 100)") && params.is_empty())
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(1));
    conn.expect_execute()
        .withf(|sql, _| sql.contains("VALUES (2, 'bob', 100)"))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| {
            Err(Error::driver(
                "SQLITE_CONSTRAINT_PRIMARYKEY",
                "UNIQUE constraint failed: accounts.id",
            )
            .with_class(ErrorClass::Constraint))
        });
    conn.expect_execute()
        .withf(|sql, _| sql.contains("VALUES (3, 'cyd', 100)"))
        .never();

    let err = run_script(&mut conn, seed).unwrap_err();

    assert_eq!(err.class(), ErrorClass::Constraint);
    assert_eq!(err.code(), Some("SQLITE_CONSTRAINT_PRIMARYKEY"));
    assert!(err.message().starts_with("statement 2 (line 3): "), "{err}");
    conn.checkpoint();
}

#[test]
fn an_error_is_classified_by_the_dialect_once_and_only_when_unclassified() {
    let mut dialect = DialectMock::new();
    dialect
        .expect_classify()
        .withf(|err| err.code() == Some("57P01"))
        .times(1)
        .return_const(ErrorClass::Disconnect);

    let err = Error::driver("57P01", "terminating connection due to administrator command")
        .classified_by(&dialect)
        // Already classified: the dialect is not asked again.
        .classified_by(&dialect);
    assert_eq!(err.class(), ErrorClass::Disconnect);

    let preset = Error::driver("57P01", "terminating").with_class(ErrorClass::Transient);
    assert_eq!(preset.classified_by(&dialect).class(), ErrorClass::Transient);
    dialect.checkpoint();
}

#[test]
fn dialect_mock_answers_as_told_and_derives_is_disconnect_from_classify() {
    let mut dialect = DialectMock::new();
    dialect.expect_name().return_const("mockdb".to_owned());
    dialect.expect_ping_sql().return_const("SELECT 42".to_owned());
    // Expectations match first to last.
    dialect
        .expect_classify()
        .withf(|err| err.kind() == ErrorKind::Closed)
        .return_const(ErrorClass::Disconnect);
    dialect.expect_classify().return_const(ErrorClass::Statement);

    let dialect: Arc<dyn Dialect> = Arc::new(dialect);
    assert_eq!(dialect.name(), "mockdb");
    assert_eq!(dialect.ping_sql(), "SELECT 42");
    assert!(dialect.is_disconnect(&Error::closed("gone")));
    assert!(!dialect.is_disconnect(&Error::driver("42601", "syntax error")));
    assert_eq!(format!("{dialect:?}"), "DialectMock { .. }");
    assert_eq!(format!("{:?}", ConnectionMock::new()), "ConnectionMock { .. }");
}

/// An inner connection whose `query_row_with` runs `times` times, each
/// time reporting `found` after lending `lent` (a row with x = 7) or not;
/// `query` and `query_row` are never called.
fn lending(times: usize, lent: bool, found: bool) -> ConnectionMock {
    let mut conn = ConnectionMock::new();
    conn.expect_id().return_const(ConnId(1));
    conn.expect_query_row_with()
        .times(times)
        .returning(move |_, _, f| {
            if lent {
                let row = Row::new(Arc::from(vec!["x".to_owned()]), vec![Value::Integer(7)]);
                f(RowRef::from(&row));
            }
            Ok(found)
        });
    conn.expect_query().never();
    conn.expect_query_row().never();
    conn
}

#[test]
fn query_row_map_reaches_the_inner_query_row_with_once() {
    let driver = FaultyDriver::new(OneConnection::new(lending(1, true, true)));
    let mut conn = driver.connect().unwrap();
    let x = conn
        .query_row_map("SELECT x", &[], |row| row.get::<i64>("x"))
        .unwrap();
    assert_eq!(x, Some(7));
}

#[test]
fn after_a_disconnect_after_apply_the_query_ran_but_the_callback_is_not_called() {
    let mut inner = lending(1, true, true);
    inner.expect_close().times(1).returning(|| Ok(()));
    let driver = FaultyDriver::new(OneConnection::new(inner));
    let guard = driver
        .faults()
        .arm(Rule::on(Op::Query).disconnect_after_apply())
        .unwrap();
    let mut conn = driver.connect().unwrap();
    let mut called = false;
    let err = conn
        .query_row_map("SELECT x", &[], |_| {
            called = true;
            Ok(())
        })
        .unwrap_err();
    assert!(err.is_disconnect() && err.is_injected(), "{err:?}");
    assert_eq!(guard.hits(), 1);
    assert!(!called, "the answer was lost with the connection");
}

#[rstest]
#[case::row_reported_never_lent(false, true, "reported a row but never lent it to the callback")]
#[case::row_lent_none_reported(true, false, "lent a row to the callback but reported none")]
fn a_driver_that_breaks_query_row_with_s_contract_is_an_error_not_no_row(
    #[case] lent: bool,
    #[case] found: bool,
    #[case] what: &str,
) {
    let mut conn = lending(1, lent, found);
    let err = conn
        .query_row_map("SELECT x", &[], |row| row.get::<i64>(0))
        .unwrap_err();
    assert_eq!(err.code(), Some("DBFAULT_DRIVER"));
    assert_eq!(err.message(), format!("the driver's query_row_with {what}"));
}

#[test]
#[should_panic(expected = "No matching expectation found")]
fn query_row_with_is_mocked_too() {
    let mut conn = ConnectionMock::new();
    conn.expect_query().never();
    let _ = conn.query_row_with("SELECT 1", &[], &mut |_| {});
}
