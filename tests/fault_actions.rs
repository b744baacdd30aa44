//! The fault layer's rules, through both fault layers (sync and async)
//! over both drivers each can wrap: `FaultyDriver<SqliteDriver>` and the
//! async `FaultyDriver<Blocking<SqliteDriver>>` over a fresh fixture
//! database (with the test table `t`), `FaultyDriver<MockDriver>` and `FaultyDriver<AsyncMockDriver>`
//! over a fresh `MockServer`. Each behaviour is one generic body run
//! through `check!` for every [`Kind`]:
//!
//! - every action (error, disconnect, disconnect_after_apply, delay, hang)
//!   on every operation (connect, execute, query, begin, commit, rollback,
//!   ping, close), asserting what the caller sees and what the database
//!   behind the fault layer saw;
//! - the filters: nth, every, times, conn, matching (including the implied
//!   SQL of begin, commit, rollback, ping, connect and close), after (on a
//!   manual clock), probability with a seed; the first rule that fires wins
//!   and later rules do not count the call;
//! - the guards: dropping disarms, hits, `keep` until `disarm_all`,
//!   `wait_for_hits` timing out.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Conn, Env, Kind, Layer, LayerConnection, REACH, Worker, appended, insert, run_op};
use dbfault::{Action, ConnId, Connection, ErrorClass, ErrorKind, Op, Rule, Value};
use rstest::rstest;

/// How long a `delay` rule waits (on the manual clock: no real waiting).
const DELAY: Duration = Duration::from_millis(250);

/// The error action of the matrix: a class, code and message the drivers
/// would never produce themselves.
fn error_action() -> Action {
    Action::Error {
        class: ErrorClass::Transient,
        code: "DBFAULT_TEST_BUSY".to_owned(),
        message: "injected by the test: busy".to_owned(),
    }
}

// ---------------------------------------------------------------------------
// Every action on every operation.

/// Whether the action test opens a transaction holding a pending write of
/// 1 before running `op`: for every operation that makes sense inside one,
/// so that a killed connection's rollback (and, on SQLite, its released
/// write lock) is visible.
fn opens_transaction(op: Op) -> bool {
    matches!(op, Op::Query | Op::Commit | Op::Rollback | Op::Ping | Op::Close)
}

/// Whether a transaction is open once `op` succeeded from its start state.
fn in_transaction_after(op: Op) -> bool {
    matches!(op, Op::Begin | Op::Query | Op::Ping)
}

/// What `t` holds once `op` succeeded and a transaction it left open was
/// committed.
fn committed_after_success(op: Op) -> Vec<i64> {
    match op {
        Op::Execute => vec![2],
        Op::Query | Op::Commit | Op::Ping => vec![1],
        _ => vec![],
    }
}

/// What `t` holds once `op` reached the server and then the connection
/// died, its open transaction rolled back.
fn committed_after_apply(op: Op) -> Vec<i64> {
    match op {
        Op::Execute => vec![2],
        Op::Commit => vec![1],
        _ => vec![],
    }
}

#[rstest]
fn action_on_op(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
    #[values(
        Op::Connect,
        Op::Execute,
        Op::Query,
        Op::Begin,
        Op::Commit,
        Op::Rollback,
        Op::Ping,
        Op::Close
    )]
    op: Op,
    #[values(
        error_action(),
        Action::Disconnect,
        Action::DisconnectAfterApply,
        Action::Delay(DELAY),
        Action::Hang
    )]
    action: Action,
) {
    if op == Op::Connect {
        check!(kind, |env| action_on_connect(env, action));
    } else {
        check!(kind, |env| action_on_connection(env, op, action));
    }
}

/// Asserts that `err` is the injected error of `action` (an `Action::Error`).
fn assert_injected_error(err: &dbfault::Error, action: &Action) {
    let Action::Error { class, code, message } = action else {
        panic!("not an error action: {action}");
    };
    assert!(err.is_injected(), "{err}");
    assert_eq!(err.kind(), ErrorKind::Driver, "{err}");
    assert_eq!(err.class(), *class, "{err}");
    assert_eq!(err.code(), Some(code.as_str()), "{err}");
    assert_eq!(err.message(), message, "{err}");
}

/// One action on one operation of a connection.
fn action_on_connection<L: Layer>(env: Env<L>, op: Op, action: Action) {
    let mut conn = env.connect();
    let id = conn.id();
    if opens_transaction(op) {
        conn.begin().expect("begin");
        insert(&mut conn, 1).expect("pending write");
    }
    let in_transaction_before = conn.in_transaction();
    let ops_before = env.backend.inner_ops(id);
    let t0 = env.clock.now();
    let guard = env.faults.arm(Rule::on(op).action(action.clone())).expect("arm");

    match &action {
        Action::Error { .. } => {
            let err = run_op(&mut conn, op).expect_err("the rule fails the operation");
            assert_injected_error(&err, &action);
            assert_eq!(guard.hits(), 1);
            if op == Op::Close {
                // `close` closes the inner connection whatever a rule does
                // to its result.
                assert_eq!(env.backend.inner_ops(id), appended(&ops_before, &[Op::Close]));
                env.assert_gone(&mut conn, false);
                assert_eq!(env.committed(), Vec::<i64>::new());
                return;
            }
            // The server never saw the operation, and the connection lives.
            assert_eq!(env.backend.inner_ops(id), ops_before);
            assert!(!conn.is_dead());
            assert!(!conn.is_broken());
            assert_eq!(conn.in_transaction(), in_transaction_before);
            assert!(env.faults.live_connections().contains(&id));
            drop(guard);
            run_op(&mut conn, op).expect("the operation succeeds once its rule is disarmed");
            assert_succeeded(&env, conn, op, &ops_before);
        }
        Action::Disconnect => {
            let err = run_op(&mut conn, op).expect_err("the rule fails the operation");
            env.assert_disconnect(&err, true);
            assert_eq!(guard.hits(), 1);
            assert!(conn.is_dead());
            assert!(conn.is_broken(), "a killed connection is broken");
            // The server never saw the operation; the fault layer closed the
            // connection, rolling back its transaction.
            assert_eq!(env.backend.inner_ops(id), appended(&ops_before, &[Op::Close]));
            env.assert_gone(&mut conn, op != Op::Close);
            assert_eq!(guard.hits(), 1, "a dead connection consults no rule");
            assert_eq!(env.committed(), Vec::<i64>::new());
        }
        Action::DisconnectAfterApply => {
            let err = run_op(&mut conn, op).expect_err("the caller sees a disconnect");
            env.assert_disconnect(&err, true);
            assert_eq!(guard.hits(), 1);
            assert!(conn.is_dead());
            assert!(conn.is_broken(), "a killed connection is broken");
            // The server ran the operation, then lost the connection.
            let reached: &[Op] = if op == Op::Close {
                &[Op::Close]
            } else {
                &[op, Op::Close]
            };
            assert_eq!(env.backend.inner_ops(id), appended(&ops_before, reached));
            env.assert_gone(&mut conn, op != Op::Close);
            assert_eq!(
                env.committed(),
                committed_after_apply(op),
                "{op} was applied, then its connection died"
            );
        }
        Action::Delay(d) => {
            run_op(&mut conn, op).expect("a delayed operation succeeds");
            assert_eq!(env.clock.now() - t0, *d, "the manual clock advanced by the delay");
            assert_eq!(guard.hits(), 1);
            assert_succeeded(&env, conn, op, &ops_before);
        }
        Action::Hang => {
            let worker = Worker::spawn(move || {
                let result = run_op(&mut conn, op);
                (conn, result)
            });
            assert!(guard.wait_for_hits(1, REACH), "{op} never reached its rule");
            assert!(
                !worker.is_finished(),
                "{op} returned while its hang rule is armed"
            );
            assert_eq!(
                env.backend.inner_ops(id),
                ops_before,
                "a hung operation has not reached the server"
            );
            drop(guard);
            let (conn, result) = worker.join("the hung operation, its rule disarmed,");
            result.expect("a hung operation proceeds once its rule is disarmed");
            assert_eq!(env.clock.now(), t0, "hang does not touch the clock");
            assert_succeeded(&env, conn, op, &ops_before);
        }
        other => panic!("no test for action {other}"),
    }
}

/// After `op` succeeded: the server saw it once, the transaction state is
/// what `op` leaves, the connection still works (or, for close, is gone)
/// and `t` holds what `op` committed.
fn assert_succeeded<L: Layer>(env: &Env<L>, mut conn: Conn<L>, op: Op, ops_before: &Option<Vec<Op>>) {
    let id = conn.id();
    assert_eq!(env.backend.inner_ops(id), appended(ops_before, &[op]));
    assert_eq!(conn.in_transaction(), in_transaction_after(op), "after {op}");
    if op == Op::Close {
        env.assert_gone(&mut conn, false);
    } else {
        assert!(!conn.is_dead());
        if conn.in_transaction() {
            conn.commit().expect("commit what the operation left open");
        }
        conn.ping().expect("the connection still works");
    }
    assert_eq!(env.committed(), committed_after_success(op));
}

/// The mock server's whole log as (connection, operation); `None` on SQLite.
fn server_log<L: Layer>(env: &Env<L>) -> Option<Vec<(ConnId, Op)>> {
    env.backend
        .server()
        .map(|server| server.log().iter().map(|e| (e.conn, e.op)).collect())
}

/// One action on connect.
fn action_on_connect<L: Layer>(env: Env<L>, action: Action) {
    let t0 = env.clock.now();
    let guard = env
        .faults
        .arm(Rule::on(Op::Connect).action(action.clone()))
        .expect("arm");
    let nothing = env.backend.server().map(|_| Vec::new());

    match &action {
        Action::Error { .. } => {
            let err = env.driver.connect().expect_err("the rule refuses the connect");
            assert_injected_error(&err, &action);
            assert_eq!(guard.hits(), 1);
            assert_eq!(server_log(&env), nothing, "the server saw no connect");
            assert!(env.faults.live_connections().is_empty());
            drop(guard);
            env.connect()
                .ping()
                .expect("connects work once the rule is disarmed");
        }
        Action::Disconnect => {
            for attempt in 1..=2 {
                let err = env.driver.connect().expect_err("the rule refuses the connect");
                env.assert_disconnect(&err, true);
                assert_eq!(guard.hits(), attempt);
            }
            assert_eq!(server_log(&env), nothing, "the server saw no connect");
            assert!(env.faults.live_connections().is_empty());
            drop(guard);
            env.connect()
                .ping()
                .expect("connects work once the rule is disarmed");
        }
        Action::DisconnectAfterApply => {
            let err = env.driver.connect().expect_err("the caller sees a disconnect");
            env.assert_disconnect(&err, true);
            assert_eq!(guard.hits(), 1);
            // The error names the connection the server had opened.
            let named = err
                .message()
                .strip_prefix("connection c")
                .and_then(|rest| rest.strip_suffix(" dropped right after connect"))
                .is_some_and(|id| id.parse::<u64>().is_ok());
            assert!(named, "{err}");
            // The server accepted the connection, then lost it.
            assert_eq!(
                server_log(&env),
                nothing.map(|_| vec![(ConnId(1), Op::Connect), (ConnId(1), Op::Close)])
            );
            assert_eq!(env.backend.open_connections().unwrap_or(0), 0);
            assert!(env.faults.live_connections().is_empty());
            drop(guard);
            env.connect()
                .ping()
                .expect("connects work once the rule is disarmed");
        }
        Action::Delay(d) => {
            let mut conn = env.connect();
            assert_eq!(env.clock.now() - t0, *d, "the manual clock advanced by the delay");
            assert_eq!(guard.hits(), 1);
            assert_eq!(server_log(&env), nothing.map(|_| vec![(conn.id(), Op::Connect)]));
            assert_eq!(env.faults.live_connections(), [conn.id()]);
            conn.ping().expect("the connection works");
        }
        Action::Hang => {
            let driver = Arc::clone(&env.driver);
            let worker = Worker::spawn(move || driver.connect());
            assert!(guard.wait_for_hits(1, REACH), "connect never reached its rule");
            assert!(
                !worker.is_finished(),
                "connect returned while its hang rule is armed"
            );
            assert_eq!(
                server_log(&env),
                nothing,
                "a hung connect has not reached the server"
            );
            drop(guard);
            let result = worker.join("the hung connect, its rule disarmed,");
            let mut conn = result.expect("a hung connect proceeds once its rule is disarmed");
            assert_eq!(env.clock.now(), t0, "hang does not touch the clock");
            assert_eq!(env.faults.live_connections(), [conn.id()]);
            conn.ping().expect("the connection works");
        }
        other => panic!("no test for action {other}"),
    }
}

/// `Rule::error` and `Rule::error_with` give the injected error the class
/// asked for, with the default or the given code and message.
#[rstest]
fn error_rules_carry_their_class_code_and_message(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
    #[values(
        ErrorClass::Transient,
        ErrorClass::Constraint,
        ErrorClass::Statement,
        ErrorClass::Other
    )]
    class: ErrorClass,
) {
    check!(kind, |env| error_rules_body(env, class));
}

fn error_rules_body<L: Layer>(env: Env<L>, class: ErrorClass) {
    let mut conn = env.connect();
    {
        let _guard = env.faults.arm(Rule::on(Op::Execute).error(class)).expect("arm");
        let err = insert(&mut conn, 5).expect_err("injected");
        assert!(err.is_injected());
        assert_eq!(err.class(), class);
        assert_eq!(err.code(), Some("DBFAULT_INJECTED"));
        assert_eq!(err.message(), format!("injected {class} error"));
    }
    {
        let _guard = env
            .faults
            .arm(Rule::on(Op::Connect).error_with(class, "E42", "no such luck"))
            .expect("arm");
        let err = env.driver.connect().expect_err("injected");
        assert!(err.is_injected());
        assert_eq!(
            (err.class(), err.code(), err.message()),
            (class, Some("E42"), "no such luck")
        );
    }
    insert(&mut conn, 6).expect("the connection lives");
    assert_eq!(env.committed(), [6]);
}

/// An injected error of class disconnect means what a disconnect means:
/// the connection dies (the server closes it, rolling back its open
/// transaction) and the caller gets the rule's own code and message.
#[rstest]
fn an_error_of_class_disconnect_kills_the_connection(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
) {
    check!(kind, |env| disconnect_class_body(env));
}

fn disconnect_class_body<L: Layer>(env: Env<L>) {
    let mut conn = env.connect();
    let id = conn.id();
    conn.begin().expect("begin");
    insert(&mut conn, 1).expect("pending write");
    let guard = env
        .faults
        .arm(Rule::on(Op::Execute).times(1).error_with(
            ErrorClass::Disconnect,
            "57P01",
            "terminating connection due to administrator command",
        ))
        .expect("arm");
    let err = insert(&mut conn, 2).expect_err("the rule fails the execute");
    assert!(err.is_injected(), "{err}");
    assert_eq!(err.class(), ErrorClass::Disconnect, "{err}");
    assert_eq!(err.code(), Some("57P01"), "{err}");
    assert_eq!(
        err.message(),
        "terminating connection due to administrator command"
    );
    assert_eq!(guard.hits(), 1);
    assert!(conn.is_dead());
    assert_eq!(env.backend.inner_open(id), env.backend.server().map(|_| false));
    assert_eq!(env.committed(), Vec::<i64>::new());
    env.assert_gone(&mut conn, true);
    let mut fresh = env.connect();
    insert(&mut fresh, 3).expect("a new connection works");
    assert_eq!(env.committed(), [3]);
}

// ---------------------------------------------------------------------------
// Filters.

/// Which of `n` pings fail.
fn ping_failures<C: Connection>(conn: &mut C, n: usize) -> Vec<bool> {
    (0..n).map(|_| conn.ping().is_err()).collect()
}

/// Which calls of a pattern fail, as the 1-based numbers of the calls.
fn failing_calls(pattern: &[bool]) -> Vec<usize> {
    pattern
        .iter()
        .enumerate()
        .filter_map(|(i, failed)| failed.then_some(i + 1))
        .collect()
}

#[rstest]
fn nth_fires_on_the_nth_matching_call_only(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
) {
    check!(kind, |env| {
        let mut conn = env.connect();
        let guard = env
            .faults
            .arm(Rule::on(Op::Ping).nth(3).error(ErrorClass::Other))
            .expect("arm");
        assert_eq!(failing_calls(&ping_failures(&mut conn, 6)), [3]);
        assert_eq!(guard.hits(), 1);
        assert!(guard.is_armed(), "an nth rule stays armed after it fired");
    });
}

#[rstest]
fn every_fires_on_every_kth_matching_call(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
) {
    check!(kind, |env| {
        let mut conn = env.connect();
        let guard = env
            .faults
            .arm(Rule::on(Op::Ping).every(3).error(ErrorClass::Other))
            .expect("arm");
        assert_eq!(failing_calls(&ping_failures(&mut conn, 10)), [3, 6, 9]);
        assert_eq!(guard.hits(), 3);
    });
}

#[rstest]
fn times_limits_the_fires_then_the_rule_is_armed_but_inert(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
) {
    check!(kind, |env| {
        let mut conn = env.connect();
        let guard = env
            .faults
            .arm(Rule::on(Op::Ping).times(2).error(ErrorClass::Other))
            .expect("arm");
        assert_eq!(failing_calls(&ping_failures(&mut conn, 5)), [1, 2]);
        assert_eq!(guard.hits(), 2);
        assert!(guard.is_armed());
        drop(guard);
        let guard = env
            .faults
            .arm(Rule::on(Op::Ping).every(2).times(2).error(ErrorClass::Other))
            .expect("arm");
        assert_eq!(failing_calls(&ping_failures(&mut conn, 8)), [2, 4]);
        assert_eq!(guard.hits(), 2);
    });
}

#[rstest]
fn conn_filter_targets_one_connection(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
) {
    check!(kind, |env| {
        let mut a = env.connect();
        let mut b = env.connect();
        let guard = env
            .faults
            .arm(Rule::on(Op::Ping).conn(b.id()).disconnect())
            .expect("arm");
        a.ping().expect("another connection is not affected");
        let err = b.ping().expect_err("the targeted connection fails");
        env.assert_disconnect(&err, true);
        a.ping().expect("another connection is not affected");
        assert_eq!(guard.hits(), 1);
        assert_eq!(env.faults.live_connections(), [a.id()]);
    });
}

#[rstest]
fn matching_filters_statements_and_counts_only_matching_calls(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
) {
    check!(kind, |env| {
        let mut conn = env.connect();
        let guard = env
            .faults
            .arm(
                Rule::on(Op::Execute)
                    .matching("^INSERT")
                    .nth(2)
                    .error(ErrorClass::Transient),
            )
            .expect("arm");
        let update = "UPDATE t SET x = x WHERE x = ?";
        let results = [
            insert(&mut conn, 1).is_err(),
            conn.execute(update, &[Value::Integer(1)]).is_err(),
            conn.execute(update, &[Value::Integer(1)]).is_err(),
            insert(&mut conn, 2).is_err(),
            insert(&mut conn, 3).is_err(),
        ];
        assert_eq!(
            results,
            [false, false, false, true, false],
            "the second INSERT fails"
        );
        assert_eq!(guard.hits(), 1);
        drop(guard);
        assert_eq!(env.committed(), [1, 3]);
    });
}

/// Operations without SQL of their own match on their implied statement:
/// `BEGIN`, `COMMIT`, `ROLLBACK`, the dialect's ping statement, and the
/// empty string for connect and close. (A regex that cannot match the
/// fixed text of begin, commit, rollback, connect or close is refused when
/// armed: see `matching_that_cannot_match_a_fixed_text_is_refused`.)
#[rstest]
#[case::begin(Op::Begin, "^BEGIN$", true)]
#[case::commit(Op::Commit, "^COMMIT$", true)]
#[case::commit_any_case(Op::Commit, "(?i)^commit$", true)]
#[case::rollback(Op::Rollback, "^ROLLBACK$", true)]
#[case::ping(Op::Ping, "^SELECT 1$", true)]
#[case::ping_not_begin(Op::Ping, "BEGIN", false)]
#[case::close(Op::Close, "^$", true)]
#[case::connect(Op::Connect, "^$", true)]
fn matching_sees_the_implied_sql(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
    #[case] op: Op,
    #[case] pattern: &str,
    #[case] fires: bool,
) {
    check!(kind, |env| implied_sql_body(env, op, pattern, fires));
}

fn implied_sql_body<L: Layer>(env: Env<L>, op: Op, pattern: &str, fires: bool) {
    let mut conn = env.connect();
    if matches!(op, Op::Commit | Op::Rollback) {
        conn.begin().expect("begin");
    }
    let guard = env
        .faults
        .arm(Rule::on(op).matching(pattern).error(ErrorClass::Other))
        .expect("arm");
    let result = match op {
        Op::Connect => env.driver.connect().map(drop),
        _ => run_op(&mut conn, op),
    };
    assert_eq!(result.is_err(), fires, "{op} ~ /{pattern}/: {result:?}");
    assert_eq!(guard.hits(), u64::from(fires));
}

/// A rule whose regex can never match its operation's fixed text would
/// never fire: arming refuses it, naming the text.
#[rstest]
#[case::begin_not_commit(Op::Begin, "COMMIT", "\"BEGIN\"")]
#[case::commit_lower_case(Op::Commit, "commit", "`(?i)commit` would match")]
#[case::commit_not_begin(Op::Commit, "BEGIN", "\"COMMIT\"")]
#[case::rollback_not_commit(Op::Rollback, "COMMIT", "\"ROLLBACK\"")]
#[case::close_not_anything(Op::Close, ".", "\"\"")]
#[case::connect_not_anything(Op::Connect, ".", "\"\"")]
fn matching_that_cannot_match_a_fixed_text_is_refused(
    #[values(Kind::Sqlite, Kind::Mock)] kind: Kind,
    #[case] op: Op,
    #[case] pattern: &str,
    #[case] says: &str,
) {
    check!(kind, |env| {
        let err = env
            .faults
            .arm(Rule::on(op).matching(pattern).error(ErrorClass::Other))
            .expect_err("the rule could never fire");
        assert_eq!(err.kind(), ErrorKind::Scenario, "{err}");
        assert_eq!(err.field(), Some("matching"), "{err}");
        assert!(err.to_string().contains(says), "no {says} in: {err}");
    });
}

#[rstest]
fn after_waits_on_the_fault_layers_clock(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
) {
    check!(kind, |env| {
        let mut conn = env.connect();
        let guard = env
            .faults
            .arm(
                Rule::on(Op::Ping)
                    .after(Duration::from_secs(1))
                    .nth(1)
                    .error(ErrorClass::Other),
            )
            .expect("arm");
        conn.ping().expect("not yet");
        env.clock.advance(Duration::from_millis(999));
        conn.ping().expect("not yet");
        env.clock.advance(Duration::from_millis(1));
        // Calls before the delay were not counted: this is the first.
        conn.ping()
            .expect_err("the delay has passed: the first counted call fires");
        conn.ping().expect("nth(1) fired already");
        assert_eq!(guard.hits(), 1);
    });
}

#[rstest]
fn probability_zero_never_fires_and_one_always_fires(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
) {
    check!(kind, |env| {
        let mut conn = env.connect();
        let never = env
            .faults
            .arm(Rule::on(Op::Ping).probability(0.0).error(ErrorClass::Other))
            .expect("arm");
        assert!(failing_calls(&ping_failures(&mut conn, 200)).is_empty());
        assert_eq!(never.hits(), 0);
        drop(never);
        let always = env
            .faults
            .arm(Rule::on(Op::Ping).probability(1.0).error(ErrorClass::Other))
            .expect("arm");
        assert!(ping_failures(&mut conn, 200).into_iter().all(|failed| failed));
        assert_eq!(always.hits(), 200);
    });
}

/// Which of 64 pings a `probability(0.5)` rule fails after seeding with
/// `seed`.
fn seeded_pattern<L: Layer>(env: &Env<L>, seed: u64) -> Vec<bool> {
    let mut conn = env.connect();
    env.faults.seed(seed);
    let _guard = env
        .faults
        .arm(Rule::on(Op::Ping).probability(0.5).error(ErrorClass::Other))
        .expect("arm");
    ping_failures(&mut conn, 64)
}

#[rstest]
fn probability_is_seeded(#[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind) {
    let first = check!(kind, |env| seeded_pattern(&env, 7));
    let again = check!(kind, |env| seeded_pattern(&env, 7));
    let other = check!(kind, |env| seeded_pattern(&env, 8));
    assert_eq!(first, again, "same seed, same calls: same fires");
    assert_ne!(first, other, "another seed draws another sequence");
    let fired = first.iter().filter(|&&f| f).count();
    assert!((8..=56).contains(&fired), "p = 0.5 fired {fired} times in 64");
    // The draws depend on the seed and the calls, not on the driver nor on
    // the fault layer.
    for other in Kind::ALL {
        assert_eq!(check!(other, |env| seeded_pattern(&env, 7)), first, "{other:?}");
    }
}

/// Reseeding restarts the sequence.
#[rstest]
fn reseeding_restarts_the_draws(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
) {
    check!(kind, |env| {
        let mut conn = env.connect();
        let _guard = env
            .faults
            .arm(Rule::on(Op::Ping).probability(0.5).error(ErrorClass::Other))
            .expect("arm");
        env.faults.seed(3);
        let first = ping_failures(&mut conn, 32);
        env.faults.seed(3);
        assert_eq!(ping_failures(&mut conn, 32), first);
    });
}

#[rstest]
fn the_first_rule_that_fires_wins_and_later_rules_do_not_count_the_call(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
) {
    check!(kind, |env| {
        let mut conn = env.connect();
        let first = env
            .faults
            .arm(
                Rule::on(Op::Ping)
                    .nth(2)
                    .error_with(ErrorClass::Other, "FIRST", "first"),
            )
            .expect("arm");
        let second = env
            .faults
            .arm(
                Rule::on(Op::Ping)
                    .nth(2)
                    .error_with(ErrorClass::Other, "SECOND", "second"),
            )
            .expect("arm");
        conn.ping().expect("call 1: neither rule fires");
        let err = conn.ping().expect_err("call 2: the first rule fires");
        assert_eq!(err.code(), Some("FIRST"));
        // The second rule did not see call 2, so call 3 is its second.
        let err = conn.ping().expect_err("call 3: the second rule's second call");
        assert_eq!(err.code(), Some("SECOND"));
        conn.ping().expect("call 4: neither");
        assert_eq!((first.hits(), second.hits()), (1, 1));
    });
}

// ---------------------------------------------------------------------------
// Guards.

#[rstest]
fn dropping_the_guard_disarms_the_rule(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
) {
    check!(kind, |env| {
        let mut conn = env.connect();
        let guard = env
            .faults
            .arm(Rule::on(Op::Ping).error(ErrorClass::Other))
            .expect("arm");
        assert!(guard.is_armed());
        conn.ping().expect_err("armed");
        drop(guard);
        conn.ping().expect("disarmed");
        let guard = env
            .faults
            .arm(Rule::on(Op::Ping).error(ErrorClass::Other))
            .expect("arm");
        conn.ping().expect_err("armed");
        guard.disarm();
        conn.ping().expect("disarmed");
    });
}

#[rstest]
fn hits_count_the_fires(#[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind) {
    check!(kind, |env| {
        let mut conn = env.connect();
        let guard = env
            .faults
            .arm(Rule::on(Op::Ping).every(2).error(ErrorClass::Other))
            .expect("arm");
        assert_eq!(guard.hits(), 0);
        ping_failures(&mut conn, 7);
        assert_eq!(guard.hits(), 3);
        assert!(guard.wait_for_hits(3, Duration::ZERO), "already reached");
    });
}

#[rstest]
fn keep_leaves_the_rule_armed_until_disarm_all(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
) {
    check!(kind, |env| {
        let mut conn = env.connect();
        let other = env
            .faults
            .arm(Rule::on(Op::Begin).error(ErrorClass::Other))
            .expect("arm");
        env.faults
            .arm(Rule::on(Op::Ping).error(ErrorClass::Other))
            .expect("arm")
            .keep();
        conn.ping()
            .expect_err("a kept rule stays armed without its guard");
        conn.ping()
            .expect_err("a kept rule stays armed without its guard");
        env.faults.disarm_all();
        conn.ping().expect("disarm_all disarms kept rules");
        assert!(!other.is_armed(), "disarm_all disarms guarded rules too");
        conn.begin().expect("disarmed");
        drop(other);
        let guard = env
            .faults
            .arm(Rule::on(Op::Ping).error(ErrorClass::Other))
            .expect("arm");
        conn.ping().expect_err("arming works after disarm_all");
        assert_eq!(guard.hits(), 1);
    });
}

#[rstest]
fn wait_for_hits_returns_false_on_timeout(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
) {
    check!(kind, |env| {
        let mut conn = env.connect();
        let guard = env
            .faults
            .arm(Rule::on(Op::Ping).error(ErrorClass::Other))
            .expect("arm");
        assert!(!guard.wait_for_hits(1, Duration::from_millis(50)));
        conn.ping().expect_err("fires");
        assert!(guard.wait_for_hits(1, Duration::from_millis(50)));
        assert!(!guard.wait_for_hits(2, Duration::from_millis(50)));
    });
}

/// A kept hang rule holds its callers until `disarm_all`.
#[rstest]
fn disarm_all_releases_a_kept_hang(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
) {
    check!(kind, |env| {
        let mut conn = env.connect();
        let guard = env.faults.arm(Rule::on(Op::Ping).hang()).expect("arm");
        let worker = Worker::spawn(move || {
            let result = conn.ping();
            (conn, result)
        });
        assert!(guard.wait_for_hits(1, REACH), "ping never reached its rule");
        guard.keep();
        assert!(
            !worker.is_finished(),
            "ping returned while its kept hang rule is armed"
        );
        env.faults.disarm_all();
        let (mut conn, result) = worker.join("the hung ping, after disarm_all,");
        result.expect("the ping proceeds once disarmed");
        conn.ping().expect("no rule left");
    });
}
