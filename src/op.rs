//! The operations of the driver traits, named once for the layers that
//! talk about them (the fault layer's rules, the mock's log).

use std::fmt;

/// An operation of the driver traits: what a fault rule targets and what
/// the mock server logs.
///
/// The text a rule's [`matching`](crate::Rule::matching) regex sees for each
/// operation:
///
/// | operation | text |
/// |---|---|
/// | `Execute`, `Query` | the statement's SQL, as the caller passed it |
/// | `Ping` | the dialect's [`ping_sql`](crate::Dialect::ping_sql) (`SELECT 1` on SQLite and the mock) |
/// | `Begin`, `Commit`, `Rollback` | `BEGIN`, `COMMIT`, `ROLLBACK`, upper case |
/// | `Connect`, `Close` | the empty string |
///
/// The last two rows are [`fixed_sql`](Op::fixed_sql): a rule whose regex
/// cannot match them is refused when armed.
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

    /// The text a rule's [`matching`](crate::Rule::matching) regex sees on
    /// every call of this operation, when it is always the same: `BEGIN`,
    /// `COMMIT`, `ROLLBACK`, and the empty string for connect and close.
    /// `None` for execute and query (their SQL) and ping (the dialect's
    /// [`ping_sql`](crate::Dialect::ping_sql)).
    pub fn fixed_sql(self) -> Option<&'static str> {
        match self {
            Op::Begin => Some("BEGIN"),
            Op::Commit => Some("COMMIT"),
            Op::Rollback => Some("ROLLBACK"),
            Op::Connect | Op::Close => Some(""),
            Op::Execute | Op::Query | Op::Ping => None,
        }
    }

    /// The statement text a rule's `matching` regex sees for operations
    /// that carry no SQL of their own: [`fixed_sql`](Op::fixed_sql), and
    /// empty for the others (ping's callers pass the dialect's statement
    /// instead).
    pub(crate) fn implied_sql(self) -> &'static str {
        self.fixed_sql().unwrap_or("")
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
