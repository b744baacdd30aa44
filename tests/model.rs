//! The model-based property test: random fault plans (every op, every
//! action but hang) and the workloads their seeds stand for, driven
//! through `Pool` and `AsyncPool` over the mock and real SQLite. After
//! every step: the invariants; at the end: recovery within a bounded
//! number of checkouts, the journal invariants, and the data.
//!
//! Cases per target: `DBFAULT_MODEL_CASES` (default 256), steps per case:
//! `DBFAULT_MODEL_STEPS` (default 64). A failure prints its seed and plan
//! as TOML, ready to save under fixtures/scenarios/ and replay.
//!
//! On PostgreSQL (feature `postgres`, the server `pg_url` finds; a fresh
//! schema per case, kills done by the server): `DBFAULT_MODEL_PG_CASES`
//! cases per shell (default 4: a case takes about half a second of real
//! connects, kills and commits).

mod common;

use dbfault::FaultPlan;
use dbfault::testing::{ModelFailure, Report, Target, check, strategies};
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
    run_cases(cases, |plan, steps| check(target, plan, steps));
}

/// Runs `cases` generated plans through `check`.
fn run_cases(cases: u32, check: impl Fn(&FaultPlan, usize) -> Result<Report, ModelFailure>) {
    let steps = env("DBFAULT_MODEL_STEPS", 64) as usize;
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategies::model_plan(), |plan| {
        let outcome = check(&plan, steps);
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

#[cfg(feature = "postgres")]
fn run_model_postgres(target: dbfault::testing::PgTarget) {
    let Some(url) = common::pg::pg_url() else {
        return;
    };
    let cases = env("DBFAULT_MODEL_PG_CASES", 4);
    run_cases(cases, |plan, steps| {
        dbfault::testing::check_postgres(&url, target, plan, steps)
    });
}

#[cfg(feature = "postgres")]
#[test]
fn model_threads_postgres() {
    run_model_postgres(dbfault::testing::PgTarget::Threads);
}

#[cfg(feature = "postgres")]
#[test]
fn model_tokio_postgres() {
    run_model_postgres(dbfault::testing::PgTarget::Tokio);
}

/// Not a vacuous pass on PostgreSQL either: the workload meets faults,
/// commits, ends commits unknown, and its kills terminate real backends.
#[cfg(feature = "postgres")]
#[test]
fn the_model_on_postgres_sees_faults_unknown_commits_and_kills() {
    let Some(url) = common::pg::pg_url() else {
        return;
    };
    let plan = dbfault::FaultPlan::from_toml(
        "seed = 11\n[[rule]]\nop = \"commit\"\nevery = 3\naction = \"disconnect_after_apply\"\n",
    )
    .unwrap();
    let (mut faults, mut committed, mut unknown, mut kills) = (0, 0, 0, 0);
    for seed in [0] {
        let plan = plan
            .rules()
            .iter()
            .cloned()
            .fold(dbfault::FaultPlan::new(seed), |p, r| p.rule(r));
        for target in [
            dbfault::testing::PgTarget::Threads,
            dbfault::testing::PgTarget::Tokio,
        ] {
            let report =
                dbfault::testing::check_postgres(&url, target, &plan, 64).unwrap_or_else(|e| panic!("{e}"));
            faults += report.faults;
            committed += report.committed;
            unknown += report.unknown;
            kills += report.kills;
        }
    }
    assert!(
        faults > 0 && committed > 0 && unknown > 0 && kills > 0,
        "faults {faults}, committed {committed}, unknown {unknown}, kills {kills}"
    );
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
