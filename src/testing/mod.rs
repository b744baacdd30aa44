//! The testing kit: helpers for failure-mode tests.
//!
//! - [`expect`], [`ev`], [`Expect`]: journal assertions that read like the
//!   behaviour — events in order with others between, counts by kind,
//!   connection and detail — and fail with the journal as a timeline.
//! - [`cancel_at_every_await`] (feature `tokio`): cancels a future at each
//!   of its await points in turn, so a test can check that nothing leaks
//!   whichever await a caller gives up at.

#[cfg(feature = "tokio")]
mod cancel;
mod expect;

#[cfg(feature = "tokio")]
pub use cancel::cancel_at_every_await;
pub use expect::{EventPattern, Expect, ExpectError, ev, expect};
