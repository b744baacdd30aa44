//! What a fired rule does, decided once for every place a fault is
//! applied, and the errors the fault layer injects, built in one place.
//!
//! [`Shared::decision`](super::faults::Shared::decision) turns a rule that
//! fires into a [`Decision`]: a plain value that says what the call must
//! do. An applier (the sync and the tokio [`FaultyDriver`](crate::FaultyDriver)
//! today) only carries it out in its own medium: it sleeps or awaits, it
//! closes its inner connection, it hands the error back. No applier works
//! out an action's meaning or writes an error message of its own:
//! [`Injected`] builds every error a fault causes.

use std::fmt;
use std::time::Duration;

use super::rule::Action;
use crate::{ConnId, Dialect, Error, Op};

/// What one call does because a rule fired on it.
#[derive(Debug, Clone)]
pub(crate) enum Decision {
    /// Fail the call with this error; the connection lives.
    Fail(Error),
    /// Fail the call with this error and kill the connection (a connect
    /// is refused).
    Kill(Error),
    /// Wait this long on the fault layer's clock, then proceed.
    Wait(Duration),
    /// Wait until this rule is disarmed, or the connection is killed, then
    /// proceed (a killed connection's call then fails as dead).
    Hang(u64),
    /// Let the call reach the server, drop its answer, kill the connection
    /// and fail with this error (a connect closes the connection it just
    /// opened and fails with [`Injected::dropped_after_connect`] instead).
    ApplyThenKill(Error),
}

impl Decision {
    /// The decision for `action`, fired by rule `rule` on `op` of `conn`
    /// (`None` for a connect).
    pub(crate) fn of(
        action: &Action,
        rule: u64,
        op: Op,
        conn: Option<ConnId>,
        errors: Injected<'_>,
    ) -> Decision {
        match action {
            Action::Error { class, code, message } => {
                let err = Error::driver(code.clone(), message.clone())
                    .with_class(*class)
                    .injected();
                // An error of class disconnect means what a disconnect
                // means: the connection is dead for good.
                if err.is_disconnect() {
                    Decision::Kill(err)
                } else {
                    Decision::Fail(err)
                }
            }
            Action::Disconnect => Decision::Kill(match conn {
                Some(id) => errors.server_closed(op, id),
                None => errors.connect_refused(),
            }),
            Action::DisconnectAfterApply => Decision::ApplyThenKill(errors.lost_after_apply(op, conn)),
            Action::Delay(d) => Decision::Wait(*d),
            Action::Hang => Decision::Hang(rule),
        }
    }
}

/// Builds the errors the fault layer injects, each with its one message.
///
/// A disconnect has kind [`Closed`](crate::ErrorKind::Closed) and carries
/// the inner dialect's [disconnect code](Dialect::disconnect_code), so that
/// dialect classifies it as a disconnect, and is marked injected.
#[derive(Clone, Copy)]
pub(crate) struct Injected<'a> {
    dialect: &'a dyn Dialect,
}

impl fmt::Debug for Injected<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Injected")
            .field("dialect", &self.dialect.name())
            .finish()
    }
}

impl<'a> Injected<'a> {
    /// Errors as `dialect` classifies them.
    pub(crate) fn new(dialect: &'a dyn Dialect) -> Self {
        Injected { dialect }
    }

    /// The dialect the errors are built for.
    pub(crate) fn dialect(self) -> &'a dyn Dialect {
        self.dialect
    }

    #[cold]
    fn disconnect(self, what: fmt::Arguments<'_>) -> Error {
        let err = Error::closed(what.to_string()).injected();
        match self.dialect.disconnect_code() {
            Some(code) => err.with_code(code),
            None => err,
        }
    }

    /// A connect during an outage.
    #[cold]
    pub(crate) fn server_down(self) -> Error {
        self.disconnect(format_args!("connection refused: server is down"))
    }

    /// A connect a `disconnect` rule refused.
    #[cold]
    pub(crate) fn connect_refused(self) -> Error {
        self.disconnect(format_args!("connection refused"))
    }

    /// A connect a `disconnect_after_apply` rule cut: the server opened
    /// connection `id`, the client never got it.
    #[cold]
    pub(crate) fn dropped_after_connect(self, id: ConnId) -> Error {
        self.disconnect(format_args!("connection {id} dropped right after connect"))
    }

    /// `op` of `id`, cut by a `disconnect` rule before it reached the server.
    #[cold]
    pub(crate) fn server_closed(self, op: Op, id: ConnId) -> Error {
        self.disconnect(format_args!("{op} on {id}: server closed the connection"))
    }

    /// `op` of `id` (a connect: `None`), cut by a `disconnect_after_apply`
    /// rule after the server applied it.
    #[cold]
    pub(crate) fn lost_after_apply(self, op: Op, id: Option<ConnId>) -> Error {
        match id {
            Some(id) => self.disconnect(format_args!(
                "{op} on {id}: connection lost after the server applied it"
            )),
            None => self.disconnect(format_args!("{op}: connection lost after the server applied it")),
        }
    }

    /// `op` of a connection the server side killed (`kill`, `restart`,
    /// `outage`, or a disconnect earlier on it).
    #[cold]
    pub(crate) fn killed(self, op: Op, id: ConnId) -> Error {
        self.disconnect(format_args!("{op} on {id}: the connection was killed"))
    }
}

/// `op` of a connection its owner closed: not a fault, so not injected.
#[cold]
pub(crate) fn closed_by_owner(op: Op, id: ConnId) -> Error {
    Error::closed(format!("{op} on {id}: the connection is closed"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorClass, ErrorKind, MockDialect};

    fn decide(action: Action, conn: Option<ConnId>) -> Decision {
        let dialect = MockDialect::postgres();
        Decision::of(&action, 7, Op::Commit, conn, Injected::new(&dialect))
    }

    #[test]
    fn each_action_becomes_its_decision() {
        let id = ConnId(3);
        assert!(
            matches!(decide(Action::Delay(Duration::from_millis(5)), Some(id)), Decision::Wait(d) if d == Duration::from_millis(5))
        );
        assert!(matches!(decide(Action::Hang, Some(id)), Decision::Hang(7)));
        match decide(Action::Disconnect, Some(id)) {
            Decision::Kill(err) => {
                assert!(err.is_injected() && err.kind() == ErrorKind::Closed);
                assert_eq!(err.code(), Some("57P01"));
                assert_eq!(err.message(), "commit on c3: server closed the connection");
            }
            other => panic!("expected a kill, got {other:?}"),
        }
        match decide(Action::DisconnectAfterApply, Some(id)) {
            Decision::ApplyThenKill(err) => {
                assert!(err.message().contains("after the server applied it"), "{err}");
            }
            other => panic!("expected apply then kill, got {other:?}"),
        }
    }

    #[test]
    fn an_injected_error_kills_only_when_its_class_is_disconnect() {
        let error = |class| Action::Error {
            class,
            code: "X1".into(),
            message: "boom".into(),
        };
        match decide(error(ErrorClass::Transient), Some(ConnId(1))) {
            Decision::Fail(err) => {
                assert_eq!((err.code(), err.class()), (Some("X1"), ErrorClass::Transient));
                assert!(err.is_injected());
            }
            other => panic!("expected a failure, got {other:?}"),
        }
        assert!(matches!(
            decide(error(ErrorClass::Disconnect), Some(ConnId(1))),
            Decision::Kill(_)
        ));
    }

    #[test]
    fn a_connect_disconnect_is_a_refusal() {
        match decide(Action::Disconnect, None) {
            Decision::Kill(err) => assert_eq!(err.message(), "connection refused"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
