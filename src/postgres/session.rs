//! What the sync and the async connection keep alike: their id and
//! backend, the transaction's state as tracked, and whether a disconnect
//! killed them or their owner closed them.

use std::sync::Arc;

use crate::{ConnId, Error, Result};

use super::error::{already_open, closed, dead, none_open, rolled_back};
use super::server::Backends;

/// The transaction of a connection, as the driver tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tx {
    /// Autocommit.
    None,
    /// A transaction is open.
    Open,
    /// A transaction is open and an error aborted it: PostgreSQL refuses
    /// every statement but the end of the block (or a rollback to a
    /// savepoint), and a commit ends it with a rollback.
    Failed,
}

/// The state both connections share, and the bookkeeping around each
/// operation.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) id: ConnId,
    /// The backend's process id (`pg_backend_pid()`).
    pub(super) pid: i32,
    tx: Tx,
    /// The disconnect that killed the connection.
    dead: Option<Error>,
    closed: bool,
    /// The driver's registry of live backends, which this one leaves when
    /// closed or dropped.
    backends: Arc<Backends>,
}

impl Session {
    /// A new connection's session, registered with its driver.
    pub(super) fn new(id: ConnId, pid: i32, backends: &Arc<Backends>) -> Self {
        backends.insert(id, pid);
        Session {
            id,
            pid,
            tx: Tx::None,
            dead: None,
            closed: false,
            backends: Arc::clone(backends),
        }
    }

    /// `Ok` when the connection is neither closed nor dead; else the error
    /// every operation but `close` then fails with.
    pub(super) fn live(&self) -> Result<()> {
        if self.closed {
            return Err(closed(self.id));
        }
        match &self.dead {
            Some(cause) => Err(dead(self.id, cause)),
            None => Ok(()),
        }
    }

    /// After an operation: a disconnect kills the connection (the server
    /// ended its transaction with it); another error of the server aborts
    /// an open transaction; a transaction-control statement the caller ran
    /// itself (`sql`) moves the tracked state.
    pub(super) fn settle<T>(&mut self, sql: Option<&str>, result: Result<T>) -> Result<T> {
        match &result {
            Ok(_) => {
                if let Some(sql) = sql {
                    self.tx = after_statement(self.tx, sql);
                }
            }
            Err(err) if err.is_disconnect() => {
                self.dead.get_or_insert_with(|| err.clone());
                self.tx = Tx::None;
            }
            // Refused by the client before it reached the server (a value
            // that does not map, a parameter count): nothing aborted.
            Err(err) if err.code().is_some_and(|c| c.starts_with("DBFAULT_")) => {}
            Err(_) if self.tx == Tx::Open => self.tx = Tx::Failed,
            Err(_) => {}
        }
        result
    }

    /// Before `BEGIN`: refused while a transaction is open.
    pub(super) fn before_begin(&self) -> Result<()> {
        self.live()?;
        match self.tx {
            Tx::None => Ok(()),
            Tx::Open | Tx::Failed => Err(already_open(self.id)),
        }
    }

    /// Before `COMMIT`: refused without a transaction; whether the
    /// transaction had failed (its commit is a rollback).
    pub(super) fn before_commit(&self) -> Result<bool> {
        self.live()?;
        match self.tx {
            Tx::None => Err(none_open(self.id)),
            Tx::Open => Ok(false),
            Tx::Failed => Ok(true),
        }
    }

    /// After `BEGIN`, `COMMIT` or `ROLLBACK` reached the server: `tx` is
    /// the state it leaves. A `COMMIT` or `ROLLBACK` ends the block even
    /// when it fails (a commit refused by a deferred constraint or a
    /// serialization failure rolls back); a failed `BEGIN` opens nothing.
    /// A commit of a failed transaction (`failed`) rolled it back, which
    /// is an error.
    pub(super) fn settle_control(&mut self, tx: Tx, failed: bool, result: Result<()>) -> Result<()> {
        let result = self.settle(None, result);
        if result.is_ok() || tx == Tx::None {
            self.tx = tx;
        }
        match result {
            Ok(()) if failed => Err(rolled_back(self.id)),
            other => other,
        }
    }

    /// Whether a transaction is open (failed or not). False once closed
    /// or dead.
    pub(super) fn in_transaction(&self) -> bool {
        !self.closed && self.dead.is_none() && self.tx != Tx::None
    }

    /// Whether a rollback has anything to do.
    pub(super) fn needs_rollback(&self) -> bool {
        self.tx != Tx::None
    }

    /// Closed by its owner, or killed by a disconnect.
    pub(super) fn is_broken(&self) -> bool {
        self.closed || self.dead.is_some()
    }

    /// Marks the connection closed.
    pub(super) fn close(&mut self) {
        self.closed = true;
        self.tx = Tx::None;
        self.backends.remove(self.id);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.backends.remove(self.id);
    }
}

/// The transaction state after `sql` succeeded in state `tx`: a
/// transaction-control statement the caller ran through `execute` or
/// `query` is recognised by its first words (after blanks and comments).
fn after_statement(tx: Tx, sql: &str) -> Tx {
    let mut words = leading_words(sql);
    let first = words.next().unwrap_or_default().to_ascii_uppercase();
    match first.as_str() {
        "BEGIN" | "START" => Tx::Open,
        "COMMIT" | "END" | "ABORT" => Tx::None,
        "ROLLBACK" => match words.next().map(|w| w.to_ascii_uppercase()).as_deref() {
            Some("TO") => Tx::Open,
            Some("PREPARED") => tx,
            _ => Tx::None,
        },
        "PREPARE"
            if words
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case("TRANSACTION")) =>
        {
            Tx::None
        }
        _ => tx,
    }
}

/// The words `sql` starts with, after blanks and comments.
fn leading_words(sql: &str) -> impl Iterator<Item = &str> {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, tail)| tail);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, tail)| tail);
        } else {
            break;
        }
    }
    rest.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_statements_move_the_tracked_state() {
        assert_eq!(after_statement(Tx::None, "begin"), Tx::Open);
        assert_eq!(
            after_statement(Tx::None, "  -- note\nSTART TRANSACTION READ ONLY"),
            Tx::Open
        );
        assert_eq!(after_statement(Tx::Open, "/* x */ commit"), Tx::None);
        assert_eq!(after_statement(Tx::Failed, "END"), Tx::None);
        assert_eq!(after_statement(Tx::Failed, "ROLLBACK TO SAVEPOINT a"), Tx::Open);
        assert_eq!(after_statement(Tx::Failed, "rollback;"), Tx::None);
        assert_eq!(after_statement(Tx::Open, "ROLLBACK PREPARED 'x'"), Tx::Open);
        assert_eq!(after_statement(Tx::Open, "PREPARE TRANSACTION 'x'"), Tx::None);
        assert_eq!(after_statement(Tx::Open, "PREPARE q AS SELECT 1"), Tx::Open);
        assert_eq!(
            after_statement(Tx::Open, "INSERT INTO begin_log VALUES (1)"),
            Tx::Open
        );
        assert_eq!(after_statement(Tx::None, "-- only a comment"), Tx::None);
        assert_eq!(after_statement(Tx::None, "/* unterminated"), Tx::None);
        assert_eq!(after_statement(Tx::None, ""), Tx::None);
    }
}
