//! The fault layer: wraps any [`Driver`](crate::Driver) and makes its
//! operations fail on purpose.
//!
//! - [`FaultyDriver`] wraps a driver; its connections consult the armed
//!   rules on every operation.
//! - [`Faults`] is the test's handle: [`arm`](Faults::arm) a [`Rule`], cause
//!   an [`outage`](Faults::outage), a [`restart`](Faults::restart), or
//!   [`kill`](Faults::kill) one connection.
//! - [`FaultPlan`] is a seed and rules as data, read from and written to
//!   TOML.
//!
//! A connection killed by the fault layer is dead for good: its inner
//! connection is closed (so the server rolls back its transaction), and
//! every later operation fails with an [`ErrorKind::Closed`](crate::ErrorKind::Closed)
//! error that every dialect classifies as a disconnect; so does an
//! operation under way when it was killed (one held by a hang rule stops
//! waiting; one in flight in the wrapped driver closes the inner
//! connection when the driver returns). Every fired rule
//! and every server-wide fault is written to the journal as a `fault`
//! event. The fault layer knows nothing of pools.

mod decision;
mod faults;
mod plan;
mod rule;
mod sync;
#[cfg(feature = "tokio")]
mod tokio;

pub use self::sync::{FaultyConnection, FaultyDriver};
pub(crate) use faults::SplitMix64;
pub use faults::{FaultGuard, Faults, PlanGuard};
pub use plan::FaultPlan;
pub use rule::{Action, Rule};
