//! proptest strategies (feature `proptest`) for fault plans and workloads.
//!
//! ```
//! use dbfault::testing::{Target, check, strategies};
//! use proptest::prelude::*;
//!
//! // In a test file, put `#[test]` on the function inside `proptest!`.
//! proptest! {
//!     #![proptest_config(ProptestConfig::with_cases(4))]
//!     fn the_pool_survives_any_plan(plan in strategies::model_plan()) {
//!         let outcome = check(Target::ThreadsMock, &plan, 32);
//!         prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
//!     }
//! }
//! the_pool_survives_any_plan();
//! ```

use std::time::Duration;

use proptest::prelude::*;

use super::model::{End, Step, Workload};
use crate::{Action, ErrorClass, FaultPlan, Op, Rule};

/// Any operation.
pub fn op() -> impl Strategy<Value = Op> {
    proptest::sample::select(Op::ALL.to_vec())
}

/// Any error class.
pub fn error_class() -> impl Strategy<Value = ErrorClass> {
    proptest::sample::select(vec![
        ErrorClass::Disconnect,
        ErrorClass::Transient,
        ErrorClass::Constraint,
        ErrorClass::Statement,
        ErrorClass::Other,
    ])
}

/// Any action, `hang` included.
pub fn action() -> impl Strategy<Value = Action> {
    prop_oneof![action_without_hang(), Just(Action::Hang)]
}

/// Any action but `hang` (which only a concurrent test can release).
pub fn action_without_hang() -> impl Strategy<Value = Action> {
    prop_oneof![
        error_class().prop_map(|class| Action::Error {
            class,
            code: "DBFAULT_INJECTED".to_owned(),
            message: format!("injected {class} error"),
        }),
        Just(Action::Disconnect),
        Just(Action::DisconnectAfterApply),
        (1u64..=200).prop_map(|ms| Action::Delay(Duration::from_millis(ms))),
    ]
}

/// A rule over `op` and `action` with random filters: a statement regex
/// (on execute and query), nth, every, times, probability.
pub fn rule_with(
    op: impl Strategy<Value = Op>,
    action: impl Strategy<Value = Action>,
) -> impl Strategy<Value = Rule> {
    (
        op,
        action,
        prop::option::of(prop::sample::select(vec!["^INSERT", "writes", "^SELECT", "w1"])),
        prop::option::of(1u64..=6),
        prop::option::of(1u64..=4),
        prop::option::of(1u64..=3),
        prop::option::of(0.05f64..=0.6),
    )
        .prop_map(|(op, action, matching, nth, every, times, p)| {
            let mut rule = Rule::on(op).action(action);
            if let (Some(m), Op::Execute | Op::Query) = (matching, op) {
                rule = rule.matching(m);
            }
            if let Some(n) = nth {
                rule = rule.nth(n);
            } else if let Some(k) = every {
                rule = rule.every(k);
            }
            if let Some(n) = times {
                rule = rule.times(n);
            }
            if let Some(p) = p {
                rule = rule.probability(p);
            }
            rule
        })
}

/// Any rule: every op, every action.
pub fn rule() -> impl Strategy<Value = Rule> {
    rule_with(op(), action())
}

/// A fault plan: a seed and up to four rules over every op and action.
pub fn fault_plan() -> impl Strategy<Value = FaultPlan> {
    plan_of(rule())
}

/// A fault plan the model-based test can run: every op and action but
/// `hang`.
pub fn model_plan() -> impl Strategy<Value = FaultPlan> {
    plan_of(rule_with(op(), action_without_hang()))
}

fn plan_of(rule: impl Strategy<Value = Rule>) -> impl Strategy<Value = FaultPlan> {
    (0u64..(i64::MAX as u64), prop::collection::vec(rule, 0..=4)).prop_map(|(seed, rules)| {
        rules
            .into_iter()
            .fold(FaultPlan::new(seed), |plan, rule| plan.rule(rule))
    })
}

/// One workload step.
pub fn step() -> impl Strategy<Value = Step> {
    let slot = 0usize..8;
    prop_oneof![
        3 => Just(Step::Checkout),
        2 => slot.clone().prop_map(Step::Return),
        3 => slot.clone().prop_map(Step::Write),
        4 => (slot.clone(), 1u8..=3, prop::sample::select(vec![End::Commit, End::Rollback, End::Drop]),
              prop::option::weighted(0.1, 0u8..3))
            .prop_map(|(slot, writes, end, kill_at)| Step::Transaction { slot, writes, end, kill_at }),
        1 => slot.clone().prop_map(Step::Invalidate),
        1 => slot.clone().prop_map(Step::SoftInvalidate),
        1 => Just(Step::Restart),
        1 => Just(Step::Outage),
        1 => Just(Step::Restore),
        1 => slot.prop_map(Step::Kill),
        1 => (1u64..=8).prop_map(|n| Step::Advance(Duration::from_millis(500 * n))),
    ]
}

/// A workload of up to `max_len` steps.
pub fn workload(max_len: usize) -> impl Strategy<Value = Workload> {
    prop::collection::vec(step(), 0..=max_len).prop_map(Workload::new)
}
