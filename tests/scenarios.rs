//! Every saved scenario under fixtures/scenarios/ replays through the
//! model on every target, and replays by name through the one-line API.

use dbfault::testing::{Target, replay, replay_file};
use rstest::rstest;

#[rstest]
fn every_saved_scenario_replays(#[files("fixtures/scenarios/*.toml")] path: std::path::PathBuf) {
    let reports = replay_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(reports.len(), Target::all().len());
    assert!(
        reports
            .iter()
            .all(|r| r.steps == dbfault::testing::model::DEFAULT_STEPS)
    );
}

#[test]
fn a_scenario_replays_by_name() {
    let reports = replay("commit_cut_after_apply").unwrap_or_else(|e| panic!("{e}"));
    assert!(
        reports.iter().all(|r| r.faults > 0),
        "the plan's rule fired on every target: {reports:?}"
    );
}

#[test]
fn an_unknown_scenario_is_a_scenario_error_listing_those_there_are() {
    let err = replay("no_such_scenario").unwrap_err();
    assert!(err.what().contains("no_such_scenario.toml"), "{err}");
    let cause = err.error().expect("no model ran: the error says why");
    assert_eq!(cause.kind(), dbfault::ErrorKind::Scenario, "{cause}");
    let text = err.to_string();
    assert!(text.contains("no scenario `no_such_scenario`"), "{text}");
    assert!(!text.contains("model check failed"), "{text}");
    for name in dbfault::testing::model::SHIPPED_SCENARIOS {
        assert!(text.contains(name), "{name} not listed: {text}");
    }
    let source = std::error::Error::source(&err).expect("the error is the source");
    assert!(source.downcast_ref::<dbfault::Error>().is_some());
}

#[test]
fn shipped_scenarios_load_by_name() {
    for name in dbfault::testing::model::SHIPPED_SCENARIOS {
        let plan = dbfault::testing::scenario(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        let path = format!("fixtures/scenarios/{name}.toml");
        assert_eq!(plan, dbfault::FaultPlan::from_file(&path).unwrap(), "{name}");
    }
}

#[test]
fn a_failure_prints_its_seed_and_plan_as_toml() {
    // A hang rule cannot run in the model: the failure says so, and the
    // message carries the plan ready to save.
    let plan = dbfault::FaultPlan::new(9).rule(dbfault::Rule::on(dbfault::Op::Ping).hang());
    let err = dbfault::testing::check(Target::ThreadsMock, &plan, 8).unwrap_err();
    assert!(err.what().contains("hang"), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("seed = 9") && text.contains("[[rule]]") && text.contains("op = \"ping\""),
        "{text}"
    );
    assert_eq!(err.plan(), Some(&plan));
    assert!(text.contains("dbfault::testing::replay(\"NAME\")"), "{text}");
}
