//! Fault plans as TOML: round trips, the fixture scenarios, and a clear
//! error naming the line and the field for every kind of bad input.

use std::time::Duration;

use dbfault::{ConnId, ErrorClass, ErrorKind, FaultPlan, Op, Rule};
use rstest::rstest;

fn full_plan() -> FaultPlan {
    FaultPlan::new(99)
        .rule(Rule::on(Op::Commit).nth(2).times(1).disconnect_after_apply())
        .rule(
            Rule::on(Op::Execute)
                .matching(r#"^INSERT INTO "t" VALUES \('a\b'\)"#)
                .probability(0.125)
                .error_with(ErrorClass::Transient, "SQLITE_BUSY", "database is \"locked\""),
        )
        .rule(Rule::on(Op::Ping).every(3).delay(Duration::from_micros(1500)))
        .rule(
            Rule::on(Op::Query)
                .conn(ConnId(4))
                .after(Duration::from_secs(2))
                .hang(),
        )
        .rule(Rule::on(Op::Connect).times(3).disconnect())
        .rule(Rule::on(Op::Rollback).error(ErrorClass::Other))
}

#[test]
fn plan_round_trips_through_toml() {
    let plan = full_plan();
    let text = plan.to_toml();
    let back = FaultPlan::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(back, plan);
    assert_eq!(back.to_toml(), text, "writing is deterministic");
}

#[rstest]
fn fixture_scenarios_load(#[files("fixtures/scenarios/*.toml")] path: std::path::PathBuf) {
    let plan = FaultPlan::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(!plan.rules().is_empty(), "{} has no rule", path.display());
    assert_eq!(FaultPlan::from_toml(&plan.to_toml()).unwrap(), plan);
}

#[rstest]
#[case::malformed("seed = 1\n[[rule]\nop = \"commit\"\n", 2, None)]
#[case::unterminated_string(
    "[[rule]]\nop = \"ping\"\naction = \"delay\"\ndelay = \"5s\n",
    4,
    Some("delay")
)]
#[case::missing_value("seed = 1\n[[rule]]\nop =\n", 3, Some("op"))]
#[case::missing_op("seed = 1\n\n[[rule]]\nnth = 2\n", 3, Some("op"))]
#[case::unknown_op("seed = 1\n\n[[rule]]\nop = \"comit\"\n", 4, Some("op"))]
#[case::unknown_action("[[rule]]\nop = \"commit\"\naction = \"explode\"\n", 3, Some("action"))]
#[case::probability("[[rule]]\nop = \"query\"\nprobability = 1.5\n", 3, Some("probability"))]
#[case::negative_probability("[[rule]]\nop = \"query\"\nprobability = -0.1\n", 3, Some("probability"))]
#[case::bad_regex("[[rule]]\nop = \"query\"\nmatching = \"(unclosed\"\n", 3, Some("matching"))]
#[case::unknown_field("[[rule]]\nop = \"query\"\nprobabilty = 0.5\n", 3, Some("probabilty"))]
#[case::delay_without_unit(
    "[[rule]]\nop = \"ping\"\naction = \"delay\"\ndelay = \"250\"\n",
    4,
    Some("delay")
)]
#[case::delay_missing("[[rule]]\nop = \"ping\"\naction = \"delay\"\n", 3, Some("delay"))]
#[case::negative_nth("seed = 3\n[[rule]]\nop = \"ping\"\nnth = -1\n", 4, Some("nth"))]
#[case::nth_too_large("[[rule]]\nop = \"ping\"\nnth = 9223372036854775808\n", 3, Some("nth"))]
#[case::zero_nth("[[rule]]\nop = \"ping\"\naction = \"hang\"\nnth = 0\n", 4, Some("nth"))]
#[case::zero_every("[[rule]]\nop = \"ping\"\nevery = 0\n", 3, Some("every"))]
#[case::zero_times("[[rule]]\nop = \"ping\"\n\ntimes = 0\n", 4, Some("times"))]
#[case::unknown_class(
    "[[rule]]\nop = \"ping\"\naction = \"error\"\nclass = \"cosmic\"\n",
    4,
    Some("class")
)]
#[case::class_on_disconnect("[[rule]]\nop = \"ping\"\nclass = \"transient\"\n", 3, Some("class"))]
#[case::code_on_delay(
    "[[rule]]\nop = \"ping\"\naction = \"delay\"\ndelay = \"1s\"\n\ncode = \"X\"\n",
    6,
    Some("code")
)]
#[case::delay_on_error(
    "[[rule]]\nop = \"ping\"\naction = \"error\"\nmessage = \"m\"\ndelay = \"1s\"\n",
    5,
    Some("delay")
)]
#[case::connect_with_conn("[[rule]]\nop = \"connect\"\nconn = 3\n", 3, Some("conn"))]
#[case::commit_matching_lower_case(
    "[[rule]]\nop = \"commit\"\nmatching = \"^commit$\"\n",
    3,
    Some("matching")
)]
#[case::rule_not_an_array("seed = 1\n[rule]\nop = \"ping\"\n", 2, Some("rule"))]
#[case::wrong_type("seed = \"many\"\n", 1, Some("seed"))]
#[case::negative_seed("seed = -4\n", 1, Some("seed"))]
fn bad_plans_name_line_and_field(#[case] text: &str, #[case] line: usize, #[case] field: Option<&str>) {
    let err = FaultPlan::from_toml(text).expect_err("the plan is invalid");
    assert_eq!(err.kind(), ErrorKind::Scenario, "{err}");
    assert_eq!((err.line(), err.field()), (Some(line), field), "{err}\n{text}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("line {line}")),
        "no `line {line}` in: {msg}"
    );
    match field {
        Some(field) => assert!(msg.contains(&format!("field `{field}`")), "{msg}"),
        None => assert!(!msg.contains("field `"), "{msg}"),
    }
}

#[test]
fn a_delay_over_the_limit_names_its_own_line_field_and_the_limit() {
    let text = "# Two hours is too long.\nseed = 5\n\n[[rule]]\nop = \"ping\"\ndelay = \"7200s\"\naction = \"delay\"\n";
    let err = FaultPlan::from_toml(text).unwrap_err();
    assert_eq!((err.line(), err.field()), (Some(6), Some("delay")), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("7200s") && msg.contains("3600s") && msg.contains("MAX_DELAY"),
        "{msg}"
    );
    assert!(!msg.contains("delay_ms"), "{msg}");
    // The limit itself is accepted.
    let at_limit = text.replace("7200s", "3600s");
    let plan = FaultPlan::from_toml(&at_limit).unwrap();
    assert_eq!(
        plan.rules()[0].get_action(),
        &dbfault::Action::Delay(Rule::MAX_DELAY)
    );
}

#[test]
fn an_unknown_action_is_blamed_even_with_an_error_field_present() {
    let text = "[[rule]]\nop = \"query\"\nclass = \"transient\"\naction = \"eror\"\n";
    let err = FaultPlan::from_toml(text).unwrap_err();
    assert_eq!((err.line(), err.field()), (Some(4), Some("action")), "{err}");
    let msg = err.to_string();
    for action in ["error", "disconnect", "disconnect_after_apply", "delay", "hang"] {
        assert!(msg.contains(action), "{action} missing from: {msg}");
    }
}

#[test]
fn a_file_error_keeps_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.toml");
    std::fs::write(&path, "seed = 1\n[[rule]]\nop = \"ping\"\nevery = 0\n").unwrap();
    let err = FaultPlan::from_file(&path).unwrap_err();
    assert_eq!((err.line(), err.field()), (Some(4), Some("every")), "{err}");
    assert!(err.to_string().contains("plan.toml"), "{err}");
}

#[test]
fn unreadable_file_is_a_scenario_error_naming_the_path() {
    let err = FaultPlan::from_file("fixtures/scenarios/no_such_plan.toml").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Scenario);
    assert!(err.to_string().contains("no_such_plan.toml"), "{err}");
}

/// A fault layer's handle, over a mock server nobody connects to.
fn faults() -> dbfault::Faults {
    dbfault::FaultyDriver::new(dbfault::MockServer::new().driver()).faults()
}

#[rstest]
#[case::nth(Rule::on(Op::Query).nth(0), "nth")]
#[case::every(Rule::on(Op::Query).every(0), "every")]
#[case::times(Rule::on(Op::Query).times(0), "times")]
#[case::times_with_other_filters(Rule::on(Op::Commit).every(2).times(0).disconnect_after_apply(), "times")]
fn zero_counts_are_refused_when_armed(#[case] rule: Rule, #[case] field: &str) {
    let err = faults().arm(rule.clone()).expect_err("the rule could never fire");
    assert_eq!(err.kind(), ErrorKind::Scenario, "{err}");
    assert_eq!((err.line(), err.field()), (None, Some(field)), "{err}");
    assert!(err.to_string().contains("got 0"), "{err}");
    let plan = FaultPlan::new(1).rule(rule);
    let err = faults()
        .load(&plan)
        .expect_err("a plan holding it is refused too");
    assert_eq!(err.field(), Some(field), "{err}");
}

#[rstest]
#[case::nth(Rule::on(Op::Query).nth(u64::MAX), "nth")]
#[case::every(Rule::on(Op::Query).every(1 << 63), "every")]
#[case::times(Rule::on(Op::Query).times(u64::MAX), "times")]
#[case::conn(Rule::on(Op::Query).conn(ConnId(u64::MAX)), "conn")]
#[case::delay(Rule::on(Op::Ping).delay(Duration::MAX), "delay")]
#[case::delay_just_over(Rule::on(Op::Ping).delay(Rule::MAX_DELAY + Duration::from_nanos(1)), "delay")]
fn rules_a_plan_cannot_hold_are_refused_when_armed(#[case] rule: Rule, #[case] field: &str) {
    let err = faults()
        .arm(rule)
        .expect_err("the rule cannot be written as a plan");
    assert_eq!(err.kind(), ErrorKind::Scenario, "{err}");
    assert_eq!(err.field(), Some(field), "{err}");
}

#[test]
fn the_largest_values_a_plan_holds_round_trip() {
    let max = i64::MAX as u64;
    let plan = FaultPlan::new(u64::MAX)
        .rule(
            Rule::on(Op::Query)
                .conn(ConnId(max))
                .nth(max)
                .every(max)
                .times(max)
                .after(Duration::MAX)
                .probability(f64::MIN_POSITIVE),
        )
        .rule(Rule::on(Op::Ping).delay(Rule::MAX_DELAY))
        .rule(
            Rule::on(Op::Begin)
                .after(Duration::from_nanos(1))
                .delay(Duration::from_nanos(1)),
        );
    let guard = faults().load(&plan).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(guard.guards().len(), 3);
    let text = plan.to_toml();
    assert_eq!(
        FaultPlan::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}")),
        plan
    );
}

// Its strategies are the crate's own (feature `proptest`).
#[cfg(feature = "proptest")]
mod round_trip {
    use super::*;
    use dbfault::Action;
    use proptest::prelude::*;

    /// Any duration: small ones, around the delay limit, and up to
    /// `Duration::MAX`.
    fn duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            (0u64..5_000_000_000).prop_map(Duration::from_nanos),
            (3_599u64..3_601, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
            (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
            Just(Duration::MAX),
        ]
    }

    /// Any count: the small ones rules use, the edges, and any `u64`.
    fn count() -> impl Strategy<Value = u64> {
        prop_oneof![
            0u64..10,
            Just(i64::MAX as u64),
            Just(i64::MAX as u64 + 1),
            any::<u64>()
        ]
    }

    fn probability() -> impl Strategy<Value = f64> {
        prop_oneof![
            0.0f64..=1.0,
            Just(0.0),
            Just(1.0),
            Just(-0.0),
            Just(f64::MIN_POSITIVE),
            any::<f64>()
        ]
    }

    fn matching() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "^INSERT",
                "(?i)commit",
                "^COMMIT$",
                "BEGIN",
                "^$",
                ".",
                r#"a\b"'\n"#,
                "(unclosed",
                "ROLLBACK|x",
            ])
            .prop_map(str::to_owned),
            "\\PC{0,12}",
            any::<String>(),
        ]
    }

    fn action() -> impl Strategy<Value = Action> {
        prop_oneof![
            (
                dbfault::testing::strategies::error_class(),
                any::<String>(),
                any::<String>()
            )
                .prop_map(|(class, code, message)| Action::Error { class, code, message }),
            Just(Action::Disconnect),
            Just(Action::DisconnectAfterApply),
            duration().prop_map(Action::Delay),
            Just(Action::Hang),
        ]
    }

    fn rule() -> impl Strategy<Value = Rule> {
        (
            dbfault::testing::strategies::op(),
            action(),
            prop::option::of(matching()),
            prop::option::of(count()),
            (
                prop::option::of(count()),
                prop::option::of(count()),
                prop::option::of(count()),
            ),
            prop::option::of(probability()),
            prop::option::of(duration()),
        )
            .prop_map(|(op, action, matching, conn, (nth, every, times), p, after)| {
                let mut rule = Rule::on(op).action(action);
                if let Some(m) = matching {
                    rule = rule.matching(m);
                }
                if let Some(c) = conn {
                    rule = rule.conn(ConnId(c));
                }
                if let Some(n) = nth {
                    rule = rule.nth(n);
                }
                if let Some(k) = every {
                    rule = rule.every(k);
                }
                if let Some(n) = times {
                    rule = rule.times(n);
                }
                if let Some(p) = p {
                    rule = rule.probability(p);
                }
                if let Some(d) = after {
                    rule = rule.after(d);
                }
                rule
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

        /// Every rule `Faults::arm` accepts is written as TOML that reads
        /// back equal; every rule it refuses, the plan reader refuses too.
        #[test]
        fn every_armable_rule_round_trips(seed in any::<u64>(), rule in rule()) {
            let armed = faults().arm(rule.clone());
            let plan = FaultPlan::new(seed).rule(rule.clone());
            let text = plan.to_toml();
            let back = FaultPlan::from_toml(&text);
            match (&armed, &back) {
                (Ok(_), Ok(back)) => {
                    prop_assert_eq!(back, &plan, "{}", text);
                    prop_assert_eq!(back.to_toml(), text);
                }
                (Err(_), Err(e)) => prop_assert_eq!(e.kind(), ErrorKind::Scenario),
                (Ok(_), Err(e)) => prop_assert!(false, "armed, but its TOML is refused: {e}\n{text}"),
                (Err(e), Ok(_)) => prop_assert!(false, "refused ({e}), but its TOML reads\n{text}"),
            }
        }
    }
}
