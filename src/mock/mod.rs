//! The mock layer: an in-memory database stand-in with scripted answers.
//!
//! - [`MockServer`] (server.rs): the shared state: expectations, connections
//!   and their transactions, the log, the committed statements. A cloneable
//!   handle; every per-connection operation is a `&self` method taking a
//!   [`ConnId`](crate::ConnId), so sync and async connections can share it.
//! - [`MockDriver`], [`MockConnection`] (driver.rs): the [`Driver`](crate::Driver)
//!   and [`Connection`](crate::Connection) traits, thin wrappers over the server.
//! - [`Expectation`], [`StatementMatcher`], [`Times`] (expect.rs): the script.
//! - [`MockDialect`] (dialect.rs): error classification by configurable code
//!   lists, with PostgreSQL and SQLite presets.
//! - [`LogEntry`], [`Op`], [`CommittedStatement`] (log.rs): what the
//!   server recorded.
//! - [`Unexpected`], [`Mismatch`], [`VerifyError`] (verify.rs): the policy
//!   for unscripted statements and the verification report.
//!
//! The mock knows nothing of faults: it behaves perfectly unless an
//! expectation scripts an error. The fault layer wraps it like any driver.

mod dialect;
mod driver;
mod expect;
mod log;
mod server;
mod verify;

pub use dialect::MockDialect;
pub use driver::{MockConnection, MockDriver};
pub use expect::{Expectation, StatementMatcher, Times, normalize_sql};
pub use log::{CommittedStatement, LogEntry};
pub use server::MockServer;
pub use verify::{Mismatch, MismatchReason, Unexpected, UnmetExpectation, VerifyError};
