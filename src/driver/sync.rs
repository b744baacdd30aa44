//! The DB-API layer: [`Driver`] opens [`Connection`]s.
//!
//! Both traits are small and synchronous; every method of a real driver may
//! block on I/O unless its doc says otherwise. The pool calls them from the
//! caller's thread, never while holding its own lock.

use std::sync::Arc;

use crate::{ConnId, Dialect, Result, Row, RowRef, Value};

/// Opens connections to one database.
///
/// A driver is shared by every thread of a pool, so it is `Send + Sync`;
/// `connect` may be called concurrently.
pub trait Driver: Send + Sync + 'static {
    /// The connection type this driver opens.
    type Connection: Connection;

    /// Opens a new connection. May block (network, file system).
    ///
    /// An error here means no connection exists: nothing needs closing.
    fn connect(&self) -> Result<Self::Connection>;

    /// The dialect that classifies this driver's errors. Cheap; must not
    /// block.
    fn dialect(&self) -> Arc<dyn Dialect>;
}

/// One open connection to the database.
///
/// # Contract
///
/// - `id` is stable for the connection's life and unique within its driver.
/// - Statements run in autocommit mode unless `begin` opened a transaction;
///   `in_transaction` reports whether one is open. After a failed `commit`,
///   `in_transaction` reports what the driver knows: a transaction the
///   server rolled back (or a dead connection) is no longer open; a commit
///   refused with the transaction still open (SQLite's `SQLITE_BUSY`) leaves
///   it open, and the caller must roll back.
/// - Once an operation failed with a disconnect, the connection is dead:
///   every later operation but `close` fails with a disconnect too.
/// - `close` releases the connection. Closing twice is a no-op returning
///   `Ok(())`; every other operation after `close` fails with
///   [`ErrorKind::Closed`](crate::ErrorKind::Closed).
pub trait Connection: Send + 'static {
    /// The connection's stable id. Must not block.
    fn id(&self) -> ConnId;

    /// Runs a statement that returns no rows; returns the number of rows it
    /// changed. May block.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64>;

    /// Runs a statement and collects its rows. May block.
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>>;

    /// Runs a statement and returns its first row, if any; a driver may
    /// leave the other rows unread. May block. Default: [`query`](Connection::query)
    /// and keep the first row.
    fn query_row(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Runs a statement and lends its first row, if any, to `f` as a
    /// [`RowRef`] valid for the call; returns whether there was a row. `f`
    /// is called exactly once when there was a row, never otherwise
    /// ([`query_row_map`](Connection::query_row_map) reports a driver that
    /// breaks this as an error with code `DBFAULT_DRIVER`). May block.
    ///
    /// The object-safe primitive under
    /// [`query_row_map`](Connection::query_row_map): a driver overrides
    /// this one to read its row in place (the SQLite driver does: it builds
    /// no [`Row`] and converts only the columns `f` reads). Default:
    /// [`query_row`](Connection::query_row), then `f` on that owned row.
    ///
    /// # Errors
    ///
    /// The driver's error. `f` cannot fail: what it makes of the row is
    /// its own business, never taken for the driver's error.
    fn query_row_with(&mut self, sql: &str, params: &[Value], f: &mut dyn FnMut(RowRef<'_>)) -> Result<bool> {
        match self.query_row(sql, params)? {
            Some(row) => {
                f(RowRef::from(&row));
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Runs a statement and hands its first row, if any, to `f` as a
    /// borrowed [`RowRef`]; returns what `f` returned, or `None` when there
    /// was no row: a point lookup that reads typed columns in place, like
    /// rusqlite's `query_row`. May block.
    ///
    /// Provided on top of [`query_row_with`](Connection::query_row_with),
    /// which is what a driver overrides. Where the driver reads its row in
    /// place, a value it cannot read (SQLite text that is not UTF-8) fails
    /// only the `get` that reads it; where it builds an owned row first
    /// (the default, so the mock and the async engine), such a value fails
    /// the whole call, naming its column either way.
    ///
    /// # Errors
    ///
    /// The driver's error, or the error `f` returned, as it returned it.
    fn query_row_map<T, F>(&mut self, sql: &str, params: &[Value], f: F) -> Result<Option<T>>
    where
        Self: Sized,
        F: FnOnce(RowRef<'_>) -> Result<T>,
    {
        crate::row_ref::set_aside(f, |f| self.query_row_with(sql, params, f))
    }

    /// Opens a transaction. Fails if one is already open. May block.
    fn begin(&mut self) -> Result<()>;

    /// Commits the open transaction. May block.
    fn commit(&mut self) -> Result<()>;

    /// Rolls back the open transaction; a no-op when none is open. May
    /// block.
    fn rollback(&mut self) -> Result<()>;

    /// Checks that the connection is alive with a round trip (the dialect's
    /// `ping_sql` or the driver's native ping). May block.
    fn ping(&mut self) -> Result<()>;

    /// Whether a transaction is open. Answers from local state; must not
    /// block.
    fn in_transaction(&self) -> bool;

    /// Whether the connection is known to be unusable (closed, or lost to
    /// a disconnect), so that a pool must not keep it. Like r2d2's
    /// `has_broken`, it must decide quickly from local state: no I/O, and
    /// it must not block (a pool may ask while holding its own lock). A
    /// connection that cannot tell answers `false`; a pool that wants
    /// certainty pings. Default: `false`.
    fn is_broken(&self) -> bool {
        false
    }

    /// Closes the connection. Idempotent. May block.
    fn close(&mut self) -> Result<()>;
}

impl<C: Connection + ?Sized> Connection for Box<C> {
    fn id(&self) -> ConnId {
        (**self).id()
    }
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        (**self).execute(sql, params)
    }
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        (**self).query(sql, params)
    }
    fn query_row(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        (**self).query_row(sql, params)
    }
    fn query_row_with(&mut self, sql: &str, params: &[Value], f: &mut dyn FnMut(RowRef<'_>)) -> Result<bool> {
        (**self).query_row_with(sql, params, f)
    }
    fn begin(&mut self) -> Result<()> {
        (**self).begin()
    }
    fn commit(&mut self) -> Result<()> {
        (**self).commit()
    }
    fn rollback(&mut self) -> Result<()> {
        (**self).rollback()
    }
    fn ping(&mut self) -> Result<()> {
        (**self).ping()
    }
    fn in_transaction(&self) -> bool {
        (**self).in_transaction()
    }
    fn is_broken(&self) -> bool {
        (**self).is_broken()
    }
    fn close(&mut self) -> Result<()> {
        (**self).close()
    }
}
