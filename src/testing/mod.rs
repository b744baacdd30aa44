//! The testing kit: helpers for failure-mode tests.
//!
//! - [`expect`], [`ev`], [`Expect`]: journal assertions that read like the
//!   behaviour — events in order with others between, counts by kind,
//!   connection and detail — and fail with the journal as a timeline.
//! - [`Invariants`]: what must hold of a pool and its journal whatever
//!   faults fired; a violation prints the timeline.
//! - [`shell`]: one test body for both shells ([`shell::AnyPool`] over
//!   `Pool` and `AsyncPool`).
//! - [`model`]: the model-based test — a seeded workload under a fault
//!   plan, checked step by step, for recovery and for the data — with
//!   [`check`], and [`replay`] or [`scenario`] by scenario name (the
//!   crate under test's `fixtures/scenarios/`, then the scenarios dbfault
//!   ships).
//! - [`PgSchema`] (feature `postgres`): a fresh schema with the fixture
//!   tables on a PostgreSQL server, dropped with its leftover sessions;
//!   [`check_postgres`] runs the model there.
//! - [`Schema`]: your schema and seed data, from strings or files, loaded
//!   into a fresh SQLite database, a fresh PostgreSQL schema, or any
//!   connection; errors name the script and the statement.
//!   [`Schema::bank`] is dbfault's own fixture.
//! - [`property`] (feature `proptest`): [`Property`], property tests over
//!   your own workload and invariant — drawn fault plans that cannot hang,
//!   shrunk on failure, printed with seed and TOML, saved plans replayed
//!   first — on SQLite, PostgreSQL, the mock (sync and async) and a pool
//!   of your own: r2d2 ([`Recovers`]), and on tokio bb8 or deadpool
//!   (`AsyncRecovers`).
//! - [`strategies`] (feature `proptest`): fault plans and workloads.
//! - `fixtures` (feature `rstest`): rstest fixtures for a mock pool, a
//!   SQLite pool on a fresh database (the bank, or a [`Schema`] of yours),
//!   their faulty variants, and with `tokio` their async forms.
//! - [`cancel_at_every_await`] (feature `tokio`): cancels a future at each
//!   of its await points in turn, so a test can check that nothing leaks
//!   whichever await a caller gives up at.

#[cfg(feature = "tokio")]
mod cancel;
mod expect;
#[cfg(all(feature = "rstest", feature = "sqlite"))]
pub mod fixtures;
mod invariants;
pub mod model;
#[cfg(feature = "postgres")]
mod pg;
#[cfg(feature = "proptest")]
pub mod property;
mod schema;
pub mod shell;
#[cfg(feature = "proptest")]
pub mod strategies;

#[cfg(feature = "tokio")]
pub use cancel::cancel_at_every_await;
pub use expect::{EventPattern, Expect, ExpectError, ev, expect};
pub use invariants::{InspectPool, Invariants, Violation};
pub use model::{ModelFailure, Report, Target, check, check_with, replay, replay_file, scenario};
#[cfg(feature = "postgres")]
pub use model::{PgTarget, check_postgres};
#[cfg(feature = "postgres")]
pub use pg::PgSchema;
#[cfg(all(feature = "proptest", feature = "tokio"))]
pub use property::AsyncRecovers;
#[cfg(feature = "proptest")]
pub use property::{Property, PropertyFailure, PropertyReport, Recovers};
pub use schema::Schema;

/// A fresh named in-memory SQLite database holding dbfault's fixture
/// schema (fixtures/schema.sql) and seed data (fixtures/seed.sql): the
/// database of the bank fixtures and of the model-based test. The same as
/// [`Schema::bank`]`().`[`sqlite`](Schema::sqlite)`()`.
///
/// # Errors
///
/// If SQLite cannot open it or a fixture statement fails.
#[cfg(feature = "sqlite")]
pub fn fresh_database() -> crate::Result<crate::SqliteDriver> {
    Schema::bank().sqlite()
}
