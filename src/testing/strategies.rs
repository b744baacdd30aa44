//! proptest strategies (feature `proptest`) for fault plans and workloads.
//!
//! Nothing drawn by the default strategies can hang a test: [`action`],
//! [`rule`], [`fault_plan`] and [`model_plan`] never draw
//! [`Action::Hang`] (an operation that waits until its rule is disarmed,
//! which in a single-threaded test is forever), and their delays are
//! bounded (at most 200 ms: on a manual clock an instant advance).
//! [`action_with_hang`], [`rule_with_hang`] and [`fault_plan_with_hang`]
//! do draw it, for tests built to release a hang: see
//! [`fault_plan_with_hang`].
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

/// Any action that cannot hang a test: an error of any class, a
/// disconnect, a disconnect after apply, or a delay of 1 to 200 ms. Never
/// `hang` (see [`action_with_hang`]).
pub fn action() -> impl Strategy<Value = Action> {
    action_without_hang()
}

/// Any action, `hang` included: only for a test that releases a hang (see
/// [`fault_plan_with_hang`]).
pub fn action_with_hang() -> impl Strategy<Value = Action> {
    prop_oneof![action_without_hang(), Just(Action::Hang)]
}

/// Any action but `hang`: the same as [`action`].
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

/// Any rule that cannot hang a test: every op, every [`action`] (so no
/// `hang`).
pub fn rule() -> impl Strategy<Value = Rule> {
    rule_with(op(), action())
}

/// Any rule, `hang` included (see [`fault_plan_with_hang`]).
pub fn rule_with_hang() -> impl Strategy<Value = Rule> {
    rule_with(op(), action_with_hang())
}

/// A fault plan that cannot hang a test: a seed and up to four [`rule`]s
/// over every op and every action but `hang`.
pub fn fault_plan() -> impl Strategy<Value = FaultPlan> {
    plan_of(rule())
}

/// A fault plan that may hang: up to four rules over every op and action,
/// `hang` included.
///
/// A hung operation waits until its rule is disarmed (or its connection is
/// killed), so a test drawing these plans must release it — another thread
/// or task that drops the rule's guard or kills the connection — or bound
/// the workload by a timeout: on tokio, `tokio::time::timeout` under a
/// paused clock (`#[tokio::test(start_paused = true)]`) fires as soon as
/// every task is blocked, without real waiting. A plain synchronous
/// property test must use [`fault_plan`].
pub fn fault_plan_with_hang() -> impl Strategy<Value = FaultPlan> {
    plan_of(rule_with_hang())
}

/// A fault plan the model-based test can run: every op and action but
/// `hang`.
pub fn model_plan() -> impl Strategy<Value = FaultPlan> {
    plan_of(rule_with(op(), action_without_hang()))
}

/// A fault plan for a property test over the user's own workload
/// ([`Property`](super::Property)): a seed and one to three rules, each
/// bounded so that any pool that retries gets through.
///
/// - **operations**: all eight (connect, execute, query, begin, commit,
///   rollback, ping, close);
/// - **actions**: an error of class disconnect, transient, constraint,
///   statement or other (code `DBFAULT_INJECTED`), `disconnect`,
///   `disconnect_after_apply`, or a delay of 1 to 200 ms (instant on the
///   property test's clocks). Never `hang`;
/// - **filters**: every rule fires at most 1 to 3 times (`times`), on the
///   n-th call (`nth` 1 to 4) or every k-th (`every` 1 to 3) or every
///   call, with a probability of 0.1 to 0.9 or always; statement regexes
///   are not drawn (they would have to know the workload's SQL).
///
/// Shrinking removes rules, then filters, and lowers counts; the smallest
/// plan that still fails is often one rule on one call.
pub fn property_plan() -> impl Strategy<Value = FaultPlan> {
    let rule = (
        op(),
        action_without_hang(),
        1u64..=3,
        prop::option::of(prop_oneof![(1u64..=4).prop_map(Err), (1u64..=3).prop_map(Ok)]),
        prop::option::of(0.1f64..=0.9),
    )
        .prop_map(|(op, action, times, when, p)| {
            let mut rule = Rule::on(op).action(action).times(times);
            match when {
                Some(Err(nth)) => rule = rule.nth(nth),
                Some(Ok(every)) => rule = rule.every(every),
                None => {}
            }
            if let Some(p) = p {
                rule = rule.probability(p);
            }
            rule
        });
    (0u64..(i64::MAX as u64), prop::collection::vec(rule, 1..=3)).prop_map(|(seed, rules)| {
        rules
            .into_iter()
            .fold(FaultPlan::new(seed), |plan, rule| plan.rule(rule))
    })
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

#[cfg(test)]
mod tests {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    use super::*;

    /// `n` values drawn from `strategy`, reproducibly.
    fn sample<S: Strategy>(strategy: S, n: usize) -> Vec<S::Value> {
        let mut runner = TestRunner::deterministic();
        (0..n)
            .map(|_| strategy.new_tree(&mut runner).expect("a value").current())
            .collect()
    }

    fn hangs(plan: &FaultPlan) -> bool {
        plan.rules()
            .iter()
            .any(|r| matches!(r.get_action(), Action::Hang))
    }

    #[test]
    fn the_default_strategies_never_draw_a_hang() {
        let plans = sample(fault_plan(), 2000);
        assert!(!plans.iter().any(hangs), "a default plan hangs");
        assert!(plans.iter().any(|p| !p.rules().is_empty()));
        assert!(!sample(model_plan(), 500).iter().any(hangs));
        let actions = sample(action(), 2000);
        assert!(!actions.iter().any(|a| matches!(a, Action::Hang)));
        // Every other action is drawn, and delays stay short.
        for name in ["error", "disconnect", "disconnect_after_apply", "delay"] {
            assert!(actions.iter().any(|a| a.name() == name), "{name} never drawn");
        }
        assert!(actions.iter().all(|a| match a {
            Action::Delay(d) => *d <= Duration::from_millis(200),
            _ => true,
        }));
        assert!(
            !sample(rule(), 2000)
                .iter()
                .any(|r| matches!(r.get_action(), Action::Hang))
        );
    }

    #[test]
    fn the_property_plans_never_hang_and_every_rule_is_bounded() {
        let plans = sample(property_plan(), 2000);
        assert!(!plans.iter().any(hangs), "a property plan hangs");
        for plan in &plans {
            assert!((1..=3).contains(&plan.rules().len()), "{plan:?}");
            for rule in plan.rules() {
                let toml = FaultPlan::new(0).rule(rule.clone()).to_toml();
                assert!(
                    ["times = 1", "times = 2", "times = 3"]
                        .iter()
                        .any(|t| toml.contains(t)),
                    "unbounded: {toml}"
                );
                assert!(!toml.contains("matching"), "{toml}");
                if let Action::Delay(d) = rule.get_action() {
                    assert!(*d <= Duration::from_millis(200), "{toml}");
                }
            }
        }
        for op in Op::ALL {
            assert!(
                plans.iter().any(|p| p.rules().iter().any(|r| r.op() == op)),
                "{op:?} never drawn"
            );
        }
        for name in ["error", "disconnect", "disconnect_after_apply", "delay"] {
            assert!(
                plans
                    .iter()
                    .any(|p| p.rules().iter().any(|r| r.get_action().name() == name)),
                "{name} never drawn"
            );
        }
    }

    #[test]
    fn the_hang_strategies_do_draw_hangs() {
        assert!(sample(fault_plan_with_hang(), 500).iter().any(hangs));
        assert!(
            sample(action_with_hang(), 500)
                .iter()
                .any(|a| matches!(a, Action::Hang))
        );
    }
}
