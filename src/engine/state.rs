//! The engine's decisions, sans-IO: what a driver error means for the
//! connection, and the transaction's state machine with its errors, built
//! once for both shells ([`Engine`](crate::Engine) on threads,
//! [`AsyncEngine`](crate::AsyncEngine) on tokio).
//!
//! Nothing here calls a driver, a pool or a clock. A shell feeds it what
//! happened (an error, a commit's result, a drop) and carries out what it
//! answers: invalidate the connection, issue a rollback, return this error.

use crate::{Dialect, Error, Result};

/// A driver error, classified by `dialect`, and whether the connection
/// must be invalidated for it: a disconnect (which, through the pool's
/// generation, also invalidates every connection opened before it), or a
/// connection a panicking driver call left broken (that one alone).
///
/// The shell invalidates the connection when told to, with the error as
/// the cause, and returns [`invalidated`] of it.
pub(crate) fn classify(err: Error, dialect: &dyn Dialect) -> (Error, bool) {
    let err = err.classified_by(dialect);
    let invalidate = err.is_disconnect() || crate::driver::is_broken(&err);
    (err, invalidate)
}

/// `err`, saying that the engine invalidated its connection.
pub(crate) fn invalidated(err: Error) -> Error {
    err.with_invalidated(true)
}

/// Where a transaction is.
///
/// Inputs: [`before_statement`](TxState::before_statement),
/// [`after_error`](TxState::after_error),
/// [`commit_result`](TxState::commit_result),
/// [`start_rollback`](TxState::start_rollback),
/// [`on_drop`](TxState::on_drop).
/// Every error a shell passes in has been through [`classify`] (and the
/// invalidation it asked for), so
/// [`connection_invalidated`](Error::connection_invalidated) says whether
/// the connection is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxState {
    /// Open; statements run in it.
    Active,
    /// The connection died inside the transaction: only a rollback is
    /// accepted.
    PendingRollback,
    /// Committed, rolled back, or its commit's outcome reported unknown.
    Done,
}

/// What a shell does when a transaction is dropped unfinished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Abandon {
    /// Roll back (now, or before the connection's next use).
    Rollback,
    /// Invalidate the connection without a call to the driver: a panic
    /// interrupted the transaction (SQLAlchemy's ticket 3803), and a
    /// rollback that panicked too would abort the process.
    Invalidate,
}

impl TxState {
    /// A statement (or the commit) is about to run.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PendingRollback`](crate::ErrorKind::PendingRollback)
    /// unless the transaction is active.
    pub(crate) fn before_statement(self) -> Result<()> {
        match self {
            TxState::Active => Ok(()),
            TxState::PendingRollback => Err(Error::pending_rollback(
                "the connection was lost inside this transaction; roll it back first",
            )),
            TxState::Done => Err(Error::pending_rollback("the transaction is already finished")),
        }
    }

    /// A statement failed with `err`: if its connection is gone, so is the
    /// transaction, pending rollback.
    pub(crate) fn after_error(&mut self, err: &Error) {
        if err.connection_invalidated() {
            *self = TxState::PendingRollback;
        }
    }

    /// The commit ended with `result`; returns what `commit` returns.
    ///
    /// # Errors
    ///
    /// A commit cut off by a disconnect becomes
    /// [`ErrorKind::CommitUnknown`](crate::ErrorKind::CommitUnknown) (the
    /// server may have applied it); one that certainly failed keeps its
    /// error, and the transaction stays open for the shell to roll back.
    pub(crate) fn commit_result(&mut self, result: Result<()>) -> Result<()> {
        match result {
            Ok(()) => {
                *self = TxState::Done;
                Ok(())
            }
            Err(err) if err.connection_invalidated() => {
                *self = TxState::Done;
                Err(Error::commit_unknown(err))
            }
            Err(err) => Err(err),
        }
    }

    /// A rollback was asked for; returns whether it must reach the driver
    /// (after a disconnect there is nothing left to roll back). The
    /// transaction is done either way.
    ///
    /// A rollback that fails leaves a connection that must not be reused:
    /// the shell invalidates it and returns [`invalidated`] of the error.
    pub(crate) fn start_rollback(&mut self) -> bool {
        std::mem::replace(self, TxState::Done) == TxState::Active
    }

    /// The transaction is dropped, while the thread is `panicking` or not;
    /// returns what to do about it, if anything.
    pub(crate) fn on_drop(&mut self, panicking: bool) -> Option<Abandon> {
        match (std::mem::replace(self, TxState::Done), panicking) {
            (TxState::Active, false) => Some(Abandon::Rollback),
            (TxState::Active, true) => Some(Abandon::Invalidate),
            _ => None,
        }
    }

    /// Whether the connection died inside the transaction.
    pub(crate) fn is_pending_rollback(self) -> bool {
        self == TxState::PendingRollback
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorClass, ErrorKind, MockDialect};

    fn lost() -> Error {
        invalidated(Error::closed("gone"))
    }

    #[test]
    fn a_lost_connection_leaves_the_transaction_pending_rollback_until_rolled_back() {
        let mut tx = TxState::Active;
        tx.after_error(&Error::driver("X", "refused").with_class(ErrorClass::Constraint));
        assert_eq!(tx, TxState::Active);
        tx.after_error(&lost());
        assert!(tx.is_pending_rollback());
        assert_eq!(
            tx.before_statement().unwrap_err().kind(),
            ErrorKind::PendingRollback
        );
        assert!(!tx.start_rollback(), "nothing is left to roll back");
        assert_eq!(tx, TxState::Done);
        assert_eq!(tx.on_drop(false), None);
    }

    #[test]
    fn a_commit_cut_off_is_outcome_unknown_and_one_that_failed_is_not() {
        let mut tx = TxState::Active;
        let failed = tx
            .commit_result(Err(Error::driver("SQLITE_BUSY", "locked")))
            .unwrap_err();
        assert_eq!(failed.kind(), ErrorKind::Driver);
        assert_eq!(tx, TxState::Active);
        assert_eq!(
            tx.commit_result(Err(lost())).unwrap_err().kind(),
            ErrorKind::CommitUnknown
        );
        assert_eq!(tx, TxState::Done);
        let err = tx.before_statement().unwrap_err();
        assert!(err.message().contains("already finished"), "{err}");
    }

    #[test]
    fn an_open_transaction_dropped_rolls_back_or_during_a_panic_invalidates() {
        assert_eq!(TxState::Active.on_drop(false), Some(Abandon::Rollback));
        assert_eq!(TxState::Active.on_drop(true), Some(Abandon::Invalidate));
        let mut tx = TxState::Active;
        assert!(tx.commit_result(Ok(())).is_ok());
        assert_eq!(tx.on_drop(true), None);
    }

    #[test]
    fn disconnects_and_broken_connections_are_invalidated_other_errors_not() {
        let dialect = MockDialect::default();
        assert!(classify(Error::closed("gone"), &dialect).1);
        let panic = Error::driver(crate::driver::PANIC_CODE, "boom").with_class(ErrorClass::Other);
        let (panic, invalidate) = classify(panic, &dialect);
        assert!(invalidate && !panic.is_disconnect());
        let (err, invalidate) = classify(Error::driver("23505", "duplicate"), &dialect);
        assert!(!invalidate);
        assert!(err.is_classified());
    }
}
