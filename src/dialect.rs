//! The dialect layer: what a backend's errors mean.

use std::fmt::Debug;

use crate::{Error, ErrorClass};

/// Knows a backend's errors and its liveness check.
///
/// Every method is cheap and must not block.
///
/// # Contract
///
/// `classify` must return [`ErrorClass::Disconnect`] for every error of kind
/// [`ErrorKind::Closed`](crate::ErrorKind::Closed): that is how a connection
/// killed by the fault layer, or used after `close`, is recognised whatever
/// the backend. Other errors are classified by their [`code`](Error::code).
pub trait Dialect: Send + Sync + Debug + 'static {
    /// The backend's name, e.g. `"sqlite"`.
    fn name(&self) -> &str;

    /// What sort of failure `err` is.
    fn classify(&self, err: &Error) -> ErrorClass;

    /// Whether `err` means the connection is gone.
    fn is_disconnect(&self, err: &Error) -> bool {
        self.classify(err) == ErrorClass::Disconnect
    }

    /// The statement a ping runs. Default: `SELECT 1`.
    fn ping_sql(&self) -> &str {
        "SELECT 1"
    }

    /// The code this backend reports when the server drops a connection,
    /// used by the fault layer so that an injected disconnect looks like a
    /// real one. Default: none.
    fn disconnect_code(&self) -> Option<&str> {
        None
    }
}
