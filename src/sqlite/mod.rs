//! The real driver: SQLite through rusqlite, with SQLite compiled in.
//!
//! [`SqliteDriver`] opens [`SqliteConnection`]s to a database file or to a
//! named shared in-memory database; [`SqliteDialect`] classifies SQLite's
//! extended result codes. Every error keeps the `rusqlite::Error` as its
//! [`source`](std::error::Error::source) and reports the SQLite extended
//! result code name (`SQLITE_BUSY`, `SQLITE_CONSTRAINT_UNIQUE`, ...) as its
//! [`code`](Error::code).
//!
//! - `driver.rs`: [`SqliteDriver`] and [`SqliteConnection`].
//! - `dialect.rs`: [`SqliteDialect`], the classification table.
//! - `row.rs`: running statements, binding parameters, lending and
//!   building rows, the per-statement column-name cache.
//! - `error.rs`: rusqlite's errors as this crate's, with SQLite's code
//!   names.

mod dialect;
mod driver;
mod error;
mod row;

pub use self::dialect::SqliteDialect;
pub use self::driver::{SqliteConnection, SqliteDriver};
