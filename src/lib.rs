//! dbfault: make database connections fail on purpose, and check that the
//! pool answers the way SQLAlchemy's does.
//!
//! See README.md for the overview and ARCHITECTURE.md for the code map.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod clock;
mod dialect;
mod driver;
mod error;
mod fault;
mod journal;
#[cfg(feature = "mockall")]
mod mocks;
mod script;
#[cfg(feature = "sqlite")]
mod sqlite;
mod value;

pub use clock::Clock;
pub use dialect::Dialect;
pub use driver::{Connection, Driver};
pub use error::{Error, ErrorClass, ErrorKind, Result};
pub use fault::{Action, FaultGuard, FaultPlan, Faults, FaultyConnection, FaultyDriver, Op, PlanGuard, Rule};
pub use journal::{Event, EventKind, Journal, render_timeline};
#[cfg(feature = "mockall")]
pub use mocks::{MockConnectionMock as ConnectionMock, MockDialectMock as DialectMock};
pub use script::{Statement, run_script, split_statements};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteConnection, SqliteDialect, SqliteDriver};
pub use value::{ColumnIndex, ConnId, Row, Value};
