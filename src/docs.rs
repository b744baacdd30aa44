//! Guides: the pool's numbered behaviours and the fault model.
//!
//! Both are also readable as Markdown under `docs/` in the repository.

#[doc = include_str!("../docs/pool-behaviours.md")]
pub mod pool_behaviours {}

#[doc = include_str!("../docs/fault-model.md")]
pub mod fault_model {}
