//! The testing kit: helpers for failure-mode tests.
//!
//! - [`Invariants`]: what must hold of a pool and its journal whatever
//!   faults fired; a violation prints the timeline.
//! - [`cancel_at_every_await`] (feature `tokio`): cancels a future at each
//!   of its await points in turn, so a test can check that nothing leaks
//!   whichever await a caller gives up at.

#[cfg(feature = "tokio")]
mod cancel;
mod invariants;
pub mod model;
pub mod shell;
#[cfg(feature = "proptest")]
pub mod strategies;

pub use invariants::{InspectPool, Invariants, Violation};
pub use model::{ModelFailure, Report, Target, check, check_with, replay, replay_file};

#[cfg(feature = "tokio")]
pub use cancel::cancel_at_every_await;
