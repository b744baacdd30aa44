//! The testing kit: helpers for failure-mode tests.
//!
//! - [`cancel_at_every_await`] (feature `tokio`): cancels a future at each
//!   of its await points in turn, so a test can check that nothing leaks
//!   whichever await a caller gives up at.

#[cfg(feature = "tokio")]
mod cancel;

#[cfg(feature = "tokio")]
pub use cancel::cancel_at_every_await;
