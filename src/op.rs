//! The operations of the driver traits, named once for the layers that
//! talk about them (the fault layer's rules, the mock's log).

use std::fmt;

/// An operation of the driver traits: what a fault rule targets and what
/// the mock server logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `Driver::connect`.
    Connect,
    /// `Connection::execute`.
    Execute,
    /// `Connection::query`.
    Query,
    /// `Connection::begin`.
    Begin,
    /// `Connection::commit`.
    Commit,
    /// `Connection::rollback`.
    Rollback,
    /// `Connection::ping`.
    Ping,
    /// `Connection::close`.
    Close,
}

impl Op {
    /// Every operation, in declaration order.
    pub const ALL: [Op; 8] = [
        Op::Connect,
        Op::Execute,
        Op::Query,
        Op::Begin,
        Op::Commit,
        Op::Rollback,
        Op::Ping,
        Op::Close,
    ];

    /// The lower-case name used in fault plans (`"commit"`).
    pub fn name(self) -> &'static str {
        match self {
            Op::Connect => "connect",
            Op::Execute => "execute",
            Op::Query => "query",
            Op::Begin => "begin",
            Op::Commit => "commit",
            Op::Rollback => "rollback",
            Op::Ping => "ping",
            Op::Close => "close",
        }
    }

    /// The operation with this name.
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }

    /// The statement text a rule's `matching` regex sees for operations
    /// that carry no SQL of their own (`BEGIN`, `COMMIT`, `ROLLBACK`; empty
    /// for connect and close; the dialect's ping statement for ping).
    pub(crate) fn implied_sql(self) -> &'static str {
        match self {
            Op::Begin => "BEGIN",
            Op::Commit => "COMMIT",
            Op::Rollback => "ROLLBACK",
            _ => "",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
