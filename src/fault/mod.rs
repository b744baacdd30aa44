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

/// The parts of a faulty connection's `Connection` impl that the sync and
/// the tokio layer share word for word: the two local peeks, and `close`
/// around its one call through the rules. `$call` runs that call, setting
/// `$reached` when it got as far as the inner connection; `$close` closes
/// the inner connection `$conn` when the call did not.
macro_rules! faulty_conn_items {
    (close($this:ident, |$reached:ident| $call:expr, |$conn:ident| $close:expr)) => {{
        if $this.closed {
            return Ok(());
        }
        let mut $reached = false;
        let result = if $this.is_dead() { Ok(()) } else { $call };
        if let Some(mut $conn) = $this.mark_closed($reached) {
            let _ = $close;
        }
        result
    }};
    (peeks) => {
        /// A killed connection is never in a transaction: the server
        /// rolled it back when the connection died.
        fn in_transaction(&self) -> bool {
            self.peek_in_transaction(C::in_transaction)
        }

        /// Closed, or killed (a fired disconnect, `kill`, an outage); else
        /// what the inner connection says. Never blocks: while an
        /// operation holds the inner connection, only the flags answer.
        fn is_broken(&self) -> bool {
            self.peek_is_broken(C::is_broken)
        }
    };
}

mod decision;
mod faults;
#[cfg(feature = "sqlite")]
mod hooks;
mod plan;
mod rule;
mod sync;
#[cfg(feature = "tokio")]
mod tokio;

pub use self::sync::{FaultyConnection, FaultyDriver};
#[cfg(any(feature = "r2d2", feature = "bb8", feature = "deadpool"))]
pub(crate) use decision::Injected;
#[cfg(feature = "postgres")]
pub(crate) use faults::Server;
pub(crate) use faults::SplitMix64;
pub use faults::{FaultGuard, Faults, PlanGuard};
// What the appliers outside this module (the faulty pool managers, the
// wire proxy) carry out and register.
pub use plan::FaultPlan;
pub use rule::{Action, Rule};
#[cfg(any(feature = "r2d2", feature = "bb8", feature = "deadpool", feature = "proxy"))]
pub(crate) use {decision::Decision, faults::Kill, faults::Shared};
