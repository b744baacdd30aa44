//! The engine: a pool plus its dialect.
//!
//! - `sync`: [`Engine`], [`EngineConnection`], [`Transaction`] over a
//!   threaded [`Pool`](crate::Pool).
//! - `tokio` (feature `tokio`): [`AsyncEngine`], [`AsyncEngineConnection`],
//!   [`AsyncTransaction`] over an [`AsyncPool`](crate::AsyncPool).

mod sync;
#[cfg(feature = "tokio")]
mod tokio;

pub use self::sync::{Engine, EngineConnection, Transaction};
#[cfg(feature = "tokio")]
pub use self::tokio::{AsyncEngine, AsyncEngineConnection, AsyncTransaction};
