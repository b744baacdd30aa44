//! The testing kit: helpers for failure-mode tests.
//!
//! - [`expect`], [`ev`], [`Expect`]: journal assertions that read like the
//!   behaviour — events in order with others between, counts by kind,
//!   connection and detail — and fail with the journal as a timeline.
//! - [`Invariants`]: what must hold of a pool and its journal whatever
//!   faults fired; a violation prints the timeline.
//! - [`shell`]: one test body for both shells ([`shell::AnyPool`] over
//!   `Pool` and `AsyncPool`).
//! - [`model`]: the model-based test — a seeded workload under a fault
//!   plan, checked step by step, for recovery and for the data — with
//!   [`check`] and [`replay`] by scenario name.
//! - [`strategies`] (feature `proptest`): fault plans and workloads.
//! - `fixtures` (feature `rstest`): rstest fixtures for a mock pool, a
//!   SQLite pool on a fresh fixture database, and their faulty variants.
//! - [`cancel_at_every_await`] (feature `tokio`): cancels a future at each
//!   of its await points in turn, so a test can check that nothing leaks
//!   whichever await a caller gives up at.

#[cfg(feature = "tokio")]
mod cancel;
mod expect;
#[cfg(all(feature = "rstest", feature = "sqlite"))]
pub mod fixtures;
mod invariants;
pub mod model;
pub mod shell;
#[cfg(feature = "proptest")]
pub mod strategies;

#[cfg(feature = "tokio")]
pub use cancel::cancel_at_every_await;
pub use expect::{EventPattern, Expect, ExpectError, ev, expect};
pub use invariants::{InspectPool, Invariants, Violation};
pub use model::{ModelFailure, Report, Target, check, check_with, replay, replay_file};
