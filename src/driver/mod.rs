//! The driver layer's traits: what a database connection can do.
//!
//! - `sync`: [`Driver`] and [`Connection`], the blocking traits.
//! - `tokio` (feature `tokio`): [`AsyncDriver`] and [`AsyncConnection`],
//!   their async mirror, and [`Blocking`], which runs a sync driver on
//!   tokio's blocking pool.
//!
//! The concrete drivers live in their own modules (`sqlite`, `mock`); the
//! fault layer wraps any of them.

mod sync;
#[cfg(feature = "tokio")]
mod tokio;

pub use self::sync::{Connection, Driver};

use crate::{Error, ErrorKind};

/// The code of the error a driver call that panicked becomes where the
/// panic is caught ([`Blocking`]'s calls): class
/// [`Other`](crate::ErrorClass::Other), not a disconnect.
pub(crate) const PANIC_CODE: &str = "DBFAULT_PANIC";

/// Whether `err` says its connection is broken without being a disconnect:
/// a driver call panicked and left it in a state nobody knows. The engine
/// invalidates that connection, and only it.
pub(crate) fn is_broken(err: &Error) -> bool {
    err.kind() == ErrorKind::Driver && err.code() == Some(PANIC_CODE)
}
#[cfg(feature = "tokio")]
pub use self::tokio::{AsyncConnection, AsyncDriver, Blocking, BlockingConnection};
