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
#[case::malformed("seed = 1\n[[rule]\nop = \"commit\"\n", 2, "rule")]
#[case::unknown_op("seed = 1\n\n[[rule]]\nop = \"comit\"\n", 4, "`op`")]
#[case::unknown_action("[[rule]]\nop = \"commit\"\naction = \"explode\"\n", 3, "`action`")]
#[case::probability("[[rule]]\nop = \"query\"\nprobability = 1.5\n", 3, "`probability`")]
#[case::negative_probability("[[rule]]\nop = \"query\"\nprobability = -0.1\n", 3, "`probability`")]
#[case::bad_regex("[[rule]]\nop = \"query\"\nmatching = \"(unclosed\"\n", 3, "`matching`")]
#[case::unknown_field("[[rule]]\nop = \"query\"\nprobabilty = 0.5\n", 3, "probabilty")]
#[case::delay_without_unit(
    "[[rule]]\nop = \"ping\"\naction = \"delay\"\ndelay = \"250\"\n",
    4,
    "`delay`"
)]
#[case::delay_missing("[[rule]]\nop = \"ping\"\naction = \"delay\"\n", 3, "`delay`")]
#[case::negative_nth("seed = 3\n[[rule]]\nop = \"ping\"\nnth = -1\n", 4, "`nth`")]
#[case::zero_every("[[rule]]\nop = \"ping\"\nevery = 0\n", 1, "`every`")]
#[case::unknown_class(
    "[[rule]]\nop = \"ping\"\naction = \"error\"\nclass = \"cosmic\"\n",
    4,
    "`class`"
)]
#[case::class_on_disconnect("[[rule]]\nop = \"ping\"\nclass = \"transient\"\n", 2, "`class`")]
#[case::connect_with_conn("[[rule]]\nop = \"connect\"\nconn = 3\n", 1, "`conn`")]
#[case::wrong_type("seed = \"many\"\n", 1, "seed")]
#[case::negative_seed("seed = -4\n", 1, "`seed`")]
fn bad_plans_name_line_and_field(#[case] text: &str, #[case] line: usize, #[case] field: &str) {
    let err = FaultPlan::from_toml(text).expect_err("the plan is invalid");
    assert_eq!(err.kind(), ErrorKind::Scenario, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("line {line}")),
        "no `line {line}` in: {msg}"
    );
    assert!(msg.contains(field), "no `{field}` in: {msg}");
}

#[test]
fn unreadable_file_is_a_scenario_error_naming_the_path() {
    let err = FaultPlan::from_file("fixtures/scenarios/no_such_plan.toml").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Scenario);
    assert!(err.to_string().contains("no_such_plan.toml"), "{err}");
}
