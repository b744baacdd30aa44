//! The model-based property test: random fault plans (every op, every
//! action but hang) and the workloads their seeds stand for, driven
//! through `Pool` and `AsyncPool` over the mock and real SQLite. After
//! every step: the invariants; at the end: recovery within a bounded
//! number of checkouts, the journal invariants, and the data.
//!
//! Cases per target: `DBFAULT_MODEL_CASES` (default 256), steps per case:
//! `DBFAULT_MODEL_STEPS` (default 64). A failure prints its seed and plan
//! as TOML, ready to save under fixtures/scenarios/ and replay.

use dbfault::testing::{Target, check, strategies};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn env(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run_model(target: Target) {
    let cases = env("DBFAULT_MODEL_CASES", 256);
    let steps = env("DBFAULT_MODEL_STEPS", 64) as usize;
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategies::model_plan(), |plan| {
        let outcome = check(target, &plan, steps);
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn model_threads_mock() {
    run_model(Target::ThreadsMock);
}

#[test]
fn model_threads_sqlite() {
    run_model(Target::ThreadsSqlite);
}

#[test]
fn model_tokio_mock() {
    run_model(Target::TokioMock);
}

#[test]
fn model_tokio_sqlite() {
    run_model(Target::TokioSqlite);
}

#[test]
fn the_model_sees_faults_and_unknown_commits() {
    // Not a vacuous pass: over many seeds the workload really meets faults,
    // commits writes and ends some commits in an unknown outcome.
    let plan = dbfault::FaultPlan::from_toml(
        "seed = 11\n[[rule]]\nop = \"commit\"\nevery = 3\naction = \"disconnect_after_apply\"\n\
         [[rule]]\nop = \"execute\"\nprobability = 0.1\naction = \"disconnect\"\n",
    )
    .unwrap();
    let mut faults = 0;
    let mut committed = 0;
    let mut unknown = 0;
    for seed in 0..16 {
        let plan = plan
            .clone()
            .rules()
            .iter()
            .cloned()
            .fold(dbfault::FaultPlan::new(seed), |p, r| p.rule(r));
        let report = check(Target::ThreadsSqlite, &plan, 64).unwrap_or_else(|e| panic!("{e}"));
        faults += report.faults;
        committed += report.committed;
        unknown += report.unknown;
    }
    assert!(
        faults > 0 && committed > 0 && unknown > 0,
        "faults {faults}, committed {committed}, unknown {unknown}"
    );
}

#[test]
fn the_model_waits_times_out_and_kills_on_every_target() {
    // Checkouts on an exhausted pool wait their full (virtual) timeout and
    // fail with a timeout error; kill steps kill a live connection. Over a
    // handful of seeds, every target does both.
    for target in Target::all() {
        let (mut timeouts, mut kills) = (0, 0);
        for seed in 0..16 {
            let report = check(target, &dbfault::FaultPlan::new(seed), 64).unwrap_or_else(|e| panic!("{e}"));
            timeouts += report.timeouts;
            kills += report.kills;
        }
        assert!(
            timeouts > 0 && kills > 0,
            "{target:?}: timeouts {timeouts}, kills {kills}"
        );
    }
}
