//! `FaultPlan::from_toml` on any text: it never panics; an error is a
//! scenario error whose line lies within the text; a plan it reads is
//! written by `to_toml` as text it reads back into an equal plan.

#![no_main]

use dbfault::{ErrorKind, FaultPlan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match FaultPlan::from_toml(text) {
        Ok(plan) => {
            let written = plan.to_toml();
            let back = FaultPlan::from_toml(&written)
                .unwrap_or_else(|e| panic!("to_toml wrote a plan from_toml refuses: {e}\n{written}"));
            assert_eq!(back, plan, "the plan changed through\n{written}");
            assert_eq!(back.to_toml(), written, "writing is not deterministic");
        }
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Scenario, "{e}");
            let lines = text.matches('\n').count() + 1;
            if let Some(line) = e.line() {
                assert!((1..=lines).contains(&line), "line {line} of {lines}: {e}");
            }
            assert!(e.field() != Some(""), "an empty field: {e}");
        }
    }
});
