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
#[cfg(feature = "tokio")]
pub use self::tokio::{AsyncConnection, AsyncDriver, Blocking, BlockingConnection};
