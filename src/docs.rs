//! Guides: the pool's numbered behaviours, the fault model, and faults
//! inside your own rusqlite connections.
//!
//! Each is also readable as Markdown under `docs/` in the repository.

#[doc = include_str!("../docs/pool-behaviours.md")]
pub mod pool_behaviours {}

#[doc = include_str!("../docs/fault-model.md")]
pub mod fault_model {}

#[cfg(feature = "sqlite")]
#[doc = include_str!("../docs/hooks.md")]
pub mod hooks {}
