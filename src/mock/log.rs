//! What the mock server records: the per-connection operation log and the
//! committed statements.

use std::fmt;

use super::expect::ParamList;
use crate::{ConnId, Op, Value};

/// One operation that reached the mock server.
///
/// Operations on a closed or dead connection fail before they reach the
/// server and are not logged; a second `close` is not logged either.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LogEntry {
    /// Position in the server's log, from 1 (shared by all connections).
    pub seq: u64,
    /// The connection.
    pub conn: ConnId,
    /// What it did.
    pub op: Op,
    /// The statement as the connection sent it, for `execute` and `query`.
    pub sql: Option<String>,
    /// The statement's parameters (empty for other operations).
    pub params: Vec<Value>,
    /// The error the operation returned (its `Display`), if it failed.
    pub error: Option<String>,
}

impl LogEntry {
    /// Whether the operation succeeded.
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }
}

impl fmt::Display for LogEntry {
    /// E.g. `#4 c1 execute "INSERT INTO t VALUES (?)" [1] -> error: ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} {} {}", self.seq, self.conn, self.op)?;
        if let Some(sql) = &self.sql {
            write!(f, " {:?}", super::expect::normalize_sql(sql))?;
            if !self.params.is_empty() {
                write!(f, " {}", ParamList(&self.params))?;
            }
        }
        if let Some(e) = &self.error {
            write!(f, " -> {e}")?;
        }
        Ok(())
    }
}

/// A statement the server committed: an `execute` that succeeded in
/// autocommit mode, or one of a transaction that committed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CommittedStatement {
    /// The connection that ran it.
    pub conn: ConnId,
    /// The statement as the connection sent it.
    pub sql: String,
    /// Its parameters.
    pub params: Vec<Value>,
}

impl fmt::Display for CommittedStatement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.conn, super::expect::normalize_sql(&self.sql))?;
        if !self.params.is_empty() {
            write!(f, " {}", ParamList(&self.params))?;
        }
        Ok(())
    }
}
