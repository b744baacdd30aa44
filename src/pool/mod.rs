//! The pool: a sans-IO core and the shells that drive it.
//!
//! - `core`: every decision (counters, idle queue, waiters, invalidation
//!   generation, events). No I/O, no clock, no threads, no tokio.
//! - `sync`: [`Pool`], the threaded shell.
//!
//! The shells hold the core behind a lock, call the driver only after
//! releasing it, and report each outcome back to the core.

mod config;
pub(crate) mod core;
mod shared;
mod sync;
#[cfg(feature = "tokio")]
mod tokio;

pub use self::config::{PoolConfig, ResetOnReturn};
pub use self::core::PoolStatus;
pub use self::sync::{Pool, PooledConnection};
#[cfg(feature = "tokio")]
pub use self::tokio::{AsyncPool, AsyncPooledConnection};

use self::core::CoreConfig;

impl PoolConfig {
    pub(crate) fn core_config(&self) -> CoreConfig {
        CoreConfig {
            size: self.size,
            max_overflow: self.max_overflow,
            timeout: self.timeout,
            recycle: self.recycle,
            pre_ping: self.pre_ping,
            pre_ping_idle: self.pre_ping_idle,
            lifo: self.lifo,
            reset: self.reset_on_return,
        }
    }
}
