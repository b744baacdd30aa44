//! dbfault: make database connections fail on purpose, and check that the
//! pool answers the way SQLAlchemy's does.
//!
//! The layers, bottom up: a [`Driver`] opens [`Connection`]s (the real
//! [`SqliteDriver`], with feature `postgres` the real [`PgDriver`], or the
//! scripted [`MockDriver`]); a [`Dialect`] says
//! what their errors mean; a [`FaultyDriver`] wraps either and makes
//! operations fail on a test's command ([`Faults`], [`Rule`],
//! [`FaultPlan`]); a [`Pool`] with SQLAlchemy's QueuePool semantics hands
//! connections out; an [`Engine`] classifies errors, invalidates dead
//! connections and guards transactions. Everything that happens lands in
//! one [`Journal`].
//!
//! # Example
//!
//! A server restart in the middle of a workload: every connection dies,
//! the pool notices at the next use, and recovers by itself.
//!
//! ```
//! # #[cfg(feature = "sqlite")] {
//! use dbfault::{Engine, EventKind, FaultyDriver, Journal, Pool, PoolConfig, SqliteDriver};
//!
//! let journal = Journal::new();
//! let driver = FaultyDriver::new(SqliteDriver::memory("lib-doc").unwrap()).with_journal(journal.clone());
//! let faults = driver.faults();
//! let pool = Pool::new(driver, PoolConfig::new().size(2).journal(journal.clone())).unwrap();
//! let engine = Engine::new(pool);
//!
//! let mut conn = engine.connect().unwrap();
//! conn.execute("CREATE TABLE t (x INTEGER)", &[]).unwrap();
//!
//! faults.restart();
//! let err = conn.execute("INSERT INTO t VALUES (1)", &[]).unwrap_err();
//! assert!(err.is_disconnect() && err.connection_invalidated());
//!
//! // The next call checks out a fresh connection: the pool recovered.
//! conn.execute("INSERT INTO t VALUES (2)", &[]).unwrap();
//! assert_eq!(journal.count(EventKind::Invalidate), 1);
//! assert_eq!(engine.pool().status().checked_out, 1);
//! # }
//! ```
//!
//! The guides in [`docs`] give the pool's numbered behaviours and the
//! fault model. See README.md for more and ARCHITECTURE.md for the code
//! map.

#![cfg_attr(docsrs, feature(doc_cfg))]
// Links to items behind a feature resolve when it is on (docs.rs builds with
// every feature); without it they are left as text.
#![cfg_attr(
    not(all(
        feature = "sqlite",
        feature = "tokio",
        feature = "proptest",
        feature = "rstest",
        feature = "postgres"
    )),
    allow(rustdoc::broken_intra_doc_links)
)]

mod clock;
mod dialect;
pub mod docs;
mod driver;
mod engine;
mod error;
mod fault;
mod guard;
mod journal;
mod lock;
#[cfg(any(feature = "r2d2", feature = "bb8", feature = "deadpool"))]
mod manager;
mod mock;
mod op;
mod pool;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "proxy")]
mod proxy;
mod row_ref;
mod script;
#[cfg(feature = "sqlite")]
mod sqlite;
pub mod testing;
mod value;

#[cfg(all(feature = "postgres", feature = "tokio"))]
pub use crate::postgres::{AsyncPgConnection, AsyncPgDriver};
#[cfg(feature = "postgres")]
pub use crate::postgres::{PgConnection, PgDialect, PgDriver};
pub use clock::Clock;
pub use dialect::Dialect;
#[cfg(feature = "tokio")]
pub use driver::{AsyncConnection, AsyncDriver, Blocking, BlockingConnection};
pub use driver::{Connection, Driver};
#[cfg(feature = "tokio")]
pub use engine::{AsyncEngine, AsyncEngineConnection, AsyncTransaction};
pub use engine::{Engine, EngineConnection, Transaction};
pub use error::{Error, ErrorClass, ErrorKind, Result};
pub use fault::{Action, FaultGuard, FaultPlan, Faults, FaultyConnection, FaultyDriver, PlanGuard, Rule};
pub use journal::{
    Event, EventKind, Journal, TimelineOptions, events_to_text, render_timeline, render_timeline_with,
};
#[cfg(feature = "r2d2")]
pub use manager::JournalEvents;
#[cfg(any(feature = "r2d2", feature = "bb8", feature = "deadpool"))]
pub use manager::{Faulted, FaultyManager, ManagerError};
#[cfg(feature = "tokio")]
pub use mock::{AsyncMockConnection, AsyncMockDriver};
pub use mock::{
    CommittedStatement, Expectation, LogEntry, Mismatch, MismatchReason, MockConnection, MockDialect,
    MockDriver, MockServer, StatementMatcher, Times, Unexpected, UnmetExpectation, VerifyError,
    normalize_sql,
};
#[cfg(feature = "mockall")]
pub use mock::{ConnectionMock, DialectMock};
pub use op::Op;
#[cfg(feature = "tokio")]
pub use pool::{AsyncPool, AsyncPooledConnection};
pub use pool::{Pool, PoolConfig, PoolStatus, PooledConnection, ResetOnReturn};
#[cfg(feature = "proxy")]
pub use proxy::FaultProxy;
#[cfg(feature = "proxy")]
#[doc(hidden)]
pub use proxy::fuzz_wire;
pub use row_ref::{FromValue, RowRef, RowSource, ValueRef};
pub use script::{Statement, run_script, split_statements};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteConnection, SqliteDialect, SqliteDriver};
pub use value::{ColumnIndex, ConnId, Row, Value};

// The README's examples use the SQLite driver, the rstest fixtures and the
// property tests.
#[cfg(all(doctest, feature = "sqlite", feature = "rstest", feature = "proptest"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
