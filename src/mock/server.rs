//! [`MockServer`]: the shared, in-memory database stand-in.
//!
//! All state sits behind one std `Mutex`. Every critical section only reads
//! and updates that state (no I/O, no callbacks, no waiting), so the lock is
//! never held across anything that can block. The per-connection operations
//! are `&self` methods taking a [`ConnId`]; [`MockConnection`] is a thin
//! wrapper over them, so an async connection can wrap the same methods.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use super::dialect::MockDialect;
use super::driver::MockDriver;
use super::expect::{Expectation, Reply, Times, normalize_sql};
use super::log::{CommittedStatement, LogEntry};
use super::verify::{Mismatch, MismatchReason, Unexpected, UnmetExpectation, VerifyError};
use crate::Op;
use crate::lock::lock;
use crate::{ConnId, Error, ErrorClass, Result, Row, Value};

#[cfg(doc)]
use super::driver::MockConnection;

/// A mock database server: scripted answers, per-connection identity and
/// transaction state, a log of what every connection did, and the list of
/// what was committed.
///
/// A cheap, cloneable handle: clones share one server, and so do all the
/// connections its [`driver`](MockServer::driver)s open. It behaves
/// perfectly unless an [`Expectation`] scripts a failure.
///
/// ```
/// use dbfault::{Connection, Driver, Expectation, MockServer, Value};
///
/// let server = MockServer::new();
/// server.expect(Expectation::exact("SELECT 1").returns_rows(["one"], vec![vec![Value::Integer(1)]]));
/// server.expect(Expectation::regex("^INSERT")?.affects(1));
///
/// let mut conn = server.driver().connect()?;
/// assert_eq!(conn.query("SELECT   1", &[])?[0].get("one"), Some(&Value::Integer(1)));
/// assert_eq!(conn.execute("INSERT INTO t VALUES (1)", &[])?, 1);
/// server.verify()?;
/// assert_eq!(server.committed_sql(), ["INSERT INTO t VALUES (1)"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Statements
///
/// A statement (`execute` or `query`) goes to the first expectation that
/// accepts it: the next one of the ordered script (see
/// [`Expectation::ordered`]), else the first unordered one, in registration
/// order, that still has calls left. A statement none accepts is a
/// [`Mismatch`], answered as the [`Unexpected`] policy says.
///
/// What counts as a write is the method: a successful `execute` is a write,
/// a `query` never is. A write in autocommit mode is committed at once; one
/// inside a transaction is committed when the transaction commits, and
/// dropped when it rolls back, when its connection closes, or when its
/// connection dies.
///
/// # Transactions
///
/// `begin` while a transaction is open fails with code
/// [`TRANSACTION_OPEN_CODE`](MockServer::TRANSACTION_OPEN_CODE); `commit`
/// with none open fails with code
/// [`NO_TRANSACTION_CODE`](MockServer::NO_TRANSACTION_CODE) (as SQLite
/// does); `rollback` with none open is a no-op. Both errors are of class
/// [`Statement`](ErrorClass::Statement) and leave the connection usable. A
/// statement failing inside a transaction leaves the transaction open.
///
/// # Dead connections
///
/// A scripted error the server's dialect classifies as a disconnect kills
/// the connection: its transaction is lost, and every later operation but
/// `close` fails with [`ErrorKind::Closed`](crate::ErrorKind::Closed).
#[derive(Clone, Default)]
pub struct MockServer {
    shared: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    dialect: Arc<MockDialect>,
    policy: Unexpected,
    /// The last id handed out; ids start at 1.
    last_conn: u64,
    /// The last log sequence number; entries start at 1.
    last_seq: u64,
    conns: BTreeMap<ConnId, ConnState>,
    expectations: Vec<Slot>,
    /// Indexes into `expectations` of the ordered ones, in order.
    ordered: Vec<usize>,
    /// Position in `ordered` of the expectation met last (0 before any).
    cursor: usize,
    log: Vec<LogEntry>,
    committed: Vec<CommittedStatement>,
    mismatches: Vec<Mismatch>,
}

#[derive(Debug)]
struct Slot {
    exp: Expectation,
    calls: usize,
}

#[derive(Debug, Default)]
struct ConnState {
    closed: bool,
    /// Why the connection died, if it did.
    dead: Option<String>,
    /// The writes of the open transaction, if one is open.
    txn: Option<Vec<CommittedStatement>>,
}

/// Where a statement went.
enum Dispatch {
    Matched(usize),
    Mismatch(MismatchReason, Vec<String>),
}

impl fmt::Debug for MockServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.shared);
        f.debug_struct("MockServer")
            .field("dialect", &state.dialect.as_ref())
            .field("policy", &state.policy)
            .field("open_connections", &state.open_ids().len())
            .field("expectations", &state.expectations.len())
            .field("log_len", &state.log.len())
            .finish()
    }
}

impl MockServer {
    /// The code of the error an unexpected statement gets under
    /// [`Unexpected::Strict`].
    pub const UNEXPECTED_CODE: &'static str = "MOCK_UNEXPECTED";
    /// The code of the error `begin` gets while a transaction is open.
    pub const TRANSACTION_OPEN_CODE: &'static str = "MOCK_TRANSACTION_OPEN";
    /// The code of the error `commit` gets with no transaction open.
    pub const NO_TRANSACTION_CODE: &'static str = "MOCK_NO_TRANSACTION";

    /// A server with the default [`MockDialect`], no expectations, and the
    /// [`Unexpected::Permissive`] policy.
    pub fn new() -> Self {
        MockServer::default()
    }

    /// A server with the [`Unexpected::Strict`] policy.
    pub fn strict() -> Self {
        MockServer::new().with_policy(Unexpected::Strict)
    }

    /// Uses `dialect` to classify scripted errors, and as the dialect of
    /// every driver of this server. Default: [`MockDialect::new`].
    #[must_use]
    pub fn with_dialect(self, dialect: MockDialect) -> Self {
        self.set_dialect(dialect);
        self
    }

    /// Sets the policy for unexpected statements. Default:
    /// [`Unexpected::Permissive`].
    #[must_use]
    pub fn with_policy(self, policy: Unexpected) -> Self {
        self.set_policy(policy);
        self
    }

    /// Replaces the dialect (see [`with_dialect`](MockServer::with_dialect));
    /// errors produced from now on are classified by it.
    ///
    /// Layers over the driver take the dialect once: a [`Pool`](crate::Pool)
    /// and an [`Engine`](crate::Engine) when they are built, a
    /// [`FaultyDriver`](crate::FaultyDriver) at its first use. Set the
    /// dialect before building them; they keep the one they took.
    pub fn set_dialect(&self, dialect: MockDialect) {
        lock(&self.shared).dialect = Arc::new(dialect);
    }

    /// Replaces the policy for unexpected statements from now on.
    pub fn set_policy(&self, policy: Unexpected) {
        lock(&self.shared).policy = policy;
    }

    /// The current dialect.
    pub fn dialect(&self) -> Arc<MockDialect> {
        Arc::clone(&lock(&self.shared).dialect)
    }

    /// The current policy for unexpected statements.
    pub fn policy(&self) -> Unexpected {
        lock(&self.shared).policy
    }

    /// A driver whose connections are connections to this server.
    pub fn driver(&self) -> MockDriver {
        MockDriver::new(self.clone())
    }

    /// Adds an expectation to the script.
    pub fn expect(&self, expectation: Expectation) {
        let mut state = lock(&self.shared);
        let index = state.expectations.len();
        if expectation.ordered {
            state.ordered.push(index);
        }
        state.expectations.push(Slot {
            exp: expectation,
            calls: 0,
        });
    }

    /// Checks the script: every expectation met as many times as it must be,
    /// no statement that contradicted it (see [`Mismatch::is_failure`]), no
    /// expectation built wrong. Does not reset anything.
    ///
    /// # Errors
    ///
    /// A [`VerifyError`] listing every problem; its `Display` is a readable
    /// multi-line report.
    pub fn verify(&self) -> Result<(), VerifyError> {
        let state = lock(&self.shared);
        let unmet = state
            .expectations
            .iter()
            .filter_map(|slot| match slot.exp.times {
                Times::Exactly(n) if slot.calls < n => Some(UnmetExpectation {
                    expectation: slot.exp.to_string(),
                    expected: n,
                    calls: slot.calls,
                }),
                _ => None,
            })
            .collect();
        let mismatches = state
            .mismatches
            .iter()
            .filter(|m| m.is_failure())
            .cloned()
            .collect();
        let invalid = state
            .expectations
            .iter()
            .filter_map(|slot| slot.exp.invalid().map(|why| format!("{}: {why}", slot.exp)))
            .collect();
        drop(state);
        let report = VerifyError {
            unmet,
            mismatches,
            invalid,
        };
        if report.is_empty() { Ok(()) } else { Err(report) }
    }

    /// Every statement no expectation accepted, in arrival order, including
    /// those [`verify`](MockServer::verify) tolerates.
    pub fn mismatches(&self) -> Vec<Mismatch> {
        lock(&self.shared).mismatches.clone()
    }

    /// Everything every connection did, in order.
    pub fn log(&self) -> Vec<LogEntry> {
        lock(&self.shared).log.clone()
    }

    /// Everything connection `conn` did, in order.
    pub fn log_for(&self, conn: ConnId) -> Vec<LogEntry> {
        lock(&self.shared)
            .log
            .iter()
            .filter(|e| e.conn == conn)
            .cloned()
            .collect()
    }

    /// The operations connection `conn` did, in order (handy in assertions).
    pub fn ops_for(&self, conn: ConnId) -> Vec<Op> {
        lock(&self.shared)
            .log
            .iter()
            .filter(|e| e.conn == conn)
            .map(|e| e.op)
            .collect()
    }

    /// What the server committed, in commit order: each successful `execute`
    /// in autocommit mode when it ran, each committed transaction's writes
    /// when it committed.
    pub fn committed(&self) -> Vec<CommittedStatement> {
        lock(&self.shared).committed.clone()
    }

    /// The statements of [`committed`](MockServer::committed), as sent.
    pub fn committed_sql(&self) -> Vec<String> {
        lock(&self.shared)
            .committed
            .iter()
            .map(|c| c.sql.clone())
            .collect()
    }

    /// How many connections are open (not closed; a dead connection counts
    /// until it is closed or dropped).
    pub fn open_connections(&self) -> usize {
        lock(&self.shared).open_ids().len()
    }

    /// The ids of the open connections, ascending.
    pub fn open_connection_ids(&self) -> Vec<ConnId> {
        lock(&self.shared).open_ids()
    }
}

/// The per-connection operations, shared by the sync connection (and, later,
/// the async one). Each takes the lock once and releases it before
/// returning.
impl MockServer {
    /// Opens a connection and logs `Connect`.
    pub(crate) fn open(&self) -> ConnId {
        let mut state = lock(&self.shared);
        state.last_conn += 1;
        let id = ConnId(state.last_conn);
        state.conns.insert(id, ConnState::default());
        state.record(id, Op::Connect, None, Vec::new(), None);
        id
    }

    pub(crate) fn execute(&self, id: ConnId, sql: &str, params: &[Value]) -> Result<u64> {
        match self.statement(id, Op::Execute, sql, params)? {
            Reply::Affects(n) => Ok(n),
            _ => Ok(0),
        }
    }

    pub(crate) fn query(&self, id: ConnId, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        match self.statement(id, Op::Query, sql, params)? {
            Reply::Rows(rows) => Ok(rows),
            _ => Ok(Vec::new()),
        }
    }

    pub(crate) fn begin(&self, id: ConnId) -> Result<()> {
        let mut state = lock(&self.shared);
        let conn = state.usable(id)?;
        let result = if conn.txn.is_some() {
            Err(Error::driver(
                MockServer::TRANSACTION_OPEN_CODE,
                format!("{id}: begin while a transaction is already open"),
            )
            .with_class(ErrorClass::Statement))
        } else {
            conn.txn = Some(Vec::new());
            Ok(())
        };
        state.record_result(id, Op::Begin, None, Vec::new(), &result);
        result
    }

    pub(crate) fn commit(&self, id: ConnId) -> Result<()> {
        let mut state = lock(&self.shared);
        let conn = state.usable(id)?;
        let result = match conn.txn.take() {
            Some(writes) => {
                state.committed.extend(writes);
                Ok(())
            }
            None => Err(Error::driver(
                MockServer::NO_TRANSACTION_CODE,
                format!("{id}: commit with no transaction open"),
            )
            .with_class(ErrorClass::Statement)),
        };
        state.record_result(id, Op::Commit, None, Vec::new(), &result);
        result
    }

    pub(crate) fn rollback(&self, id: ConnId) -> Result<()> {
        let mut state = lock(&self.shared);
        state.usable(id)?.txn = None;
        state.record(id, Op::Rollback, None, Vec::new(), None);
        Ok(())
    }

    pub(crate) fn ping(&self, id: ConnId) -> Result<()> {
        let mut state = lock(&self.shared);
        state.usable(id)?;
        state.record(id, Op::Ping, None, Vec::new(), None);
        Ok(())
    }

    /// Closes the connection (dropping its open transaction); a no-op if it
    /// is closed already.
    pub(crate) fn close(&self, id: ConnId) -> Result<()> {
        let mut state = lock(&self.shared);
        let Some(conn) = state.conns.get_mut(&id) else {
            return Ok(());
        };
        if conn.closed {
            return Ok(());
        }
        conn.closed = true;
        conn.txn = None;
        state.record(id, Op::Close, None, Vec::new(), None);
        Ok(())
    }

    /// Whether the connection is closed, lost (a scripted disconnect) or
    /// unknown to this server.
    pub(crate) fn is_broken(&self, id: ConnId) -> bool {
        lock(&self.shared)
            .conns
            .get(&id)
            .is_none_or(|c| c.closed || c.dead.is_some())
    }

    pub(crate) fn in_transaction(&self, id: ConnId) -> bool {
        lock(&self.shared)
            .conns
            .get(&id)
            .is_some_and(|c| !c.closed && c.dead.is_none() && c.txn.is_some())
    }

    /// Runs `execute` or `query`: finds the expectation, applies the policy,
    /// records the write, the log entry and any mismatch.
    fn statement(&self, id: ConnId, op: Op, sql: &str, params: &[Value]) -> Result<Reply> {
        let mut state = lock(&self.shared);
        state.usable(id)?;
        let normalized = normalize_sql(sql);
        let result = match state.dispatch(&normalized, params) {
            Dispatch::Matched(index) => match &state.expectations[index].exp.reply {
                Reply::Fails { code, message } => {
                    Err(Error::driver(code.clone(), message.clone()).classified_by(state.dialect.as_ref()))
                }
                Reply::Invalid(why) => Err(Error::scenario(
                    None,
                    "returns_rows",
                    format_args!("expectation {}: {why}", state.expectations[index].exp),
                )),
                reply => Ok(reply.clone()),
            },
            Dispatch::Mismatch(reason, expected) => {
                let seq = state.last_seq + 1;
                let mismatch = Mismatch {
                    seq,
                    conn: id,
                    op,
                    sql: sql.to_owned(),
                    params: params.to_vec(),
                    reason,
                    expected,
                    policy: state.policy,
                };
                let result = match state.policy {
                    Unexpected::Strict => Err(Error::driver(
                        MockServer::UNEXPECTED_CODE,
                        format!(
                            "{reason}: {}; expected {}",
                            mismatch.received(),
                            mismatch.expected_line()
                        ),
                    )
                    .with_class(ErrorClass::Statement)),
                    _ => Ok(Reply::Default),
                };
                state.mismatches.push(mismatch);
                result
            }
        };
        match &result {
            Ok(_) if op == Op::Execute => {
                let write = CommittedStatement {
                    conn: id,
                    sql: sql.to_owned(),
                    params: params.to_vec(),
                };
                match state.conns.get_mut(&id).and_then(|c| c.txn.as_mut()) {
                    Some(txn) => txn.push(write),
                    None => state.committed.push(write),
                }
            }
            Err(e) if e.is_disconnect() => {
                if let Some(conn) = state.conns.get_mut(&id) {
                    conn.dead = Some(e.to_string());
                    conn.txn = None;
                }
            }
            _ => {}
        }
        state.record_result(id, op, Some(sql.to_owned()), params.to_vec(), &result);
        result
    }
}

impl State {
    fn open_ids(&self) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| !c.closed)
            .map(|(id, _)| *id)
            .collect()
    }

    /// The connection's state, if it can still be used.
    fn usable(&mut self, id: ConnId) -> Result<&mut ConnState> {
        let Some(conn) = self.conns.get_mut(&id) else {
            return Err(Error::closed(format!("{id}: no such connection on this server")));
        };
        if conn.closed {
            return Err(Error::closed(format!("{id}: connection is closed")));
        }
        if let Some(why) = &conn.dead {
            return Err(Error::closed(format!("{id}: connection was lost ({why})")));
        }
        Ok(conn)
    }

    fn record(
        &mut self,
        conn: ConnId,
        op: Op,
        sql: Option<String>,
        params: Vec<Value>,
        error: Option<String>,
    ) {
        self.last_seq += 1;
        self.log.push(LogEntry {
            seq: self.last_seq,
            conn,
            op,
            sql,
            params,
            error,
        });
    }

    fn record_result<T>(
        &mut self,
        conn: ConnId,
        op: Op,
        sql: Option<String>,
        params: Vec<Value>,
        result: &Result<T>,
    ) {
        let error = result.as_ref().err().map(ToString::to_string);
        self.record(conn, op, sql, params, error);
    }

    /// Finds the expectation for a statement and counts the call, or says
    /// why there is none.
    fn dispatch(&mut self, normalized: &str, params: &[Value]) -> Dispatch {
        // The ordered script: from the cursor, pass over expectations that
        // are met (or any-times) until one accepts; stop at the first one
        // still short of its count.
        let mut blocking = None;
        for pos in self.cursor..self.ordered.len() {
            let index = self.ordered[pos];
            let slot = &self.expectations[index];
            if slot.exp.times.has_room(slot.calls) && slot.exp.accepts(normalized, params) {
                self.cursor = pos;
                self.expectations[index].calls += 1;
                return Dispatch::Matched(index);
            }
            if !slot.exp.times.is_met(slot.calls) {
                blocking = Some(index);
                break;
            }
        }
        // Unordered expectations, first come first served.
        if let Some(index) = self.expectations.iter().position(|slot| {
            !slot.exp.ordered && slot.exp.times.has_room(slot.calls) && slot.exp.accepts(normalized, params)
        }) {
            self.expectations[index].calls += 1;
            return Dispatch::Matched(index);
        }

        let describe = |slot: &Slot| slot.exp.to_string();
        let with_calls = |slot: &Slot| format!("{}, already met {} times", slot.exp, slot.calls);
        let out_of_order = self
            .ordered
            .iter()
            .map(|&i| &self.expectations[i])
            .any(|slot| slot.exp.times.has_room(slot.calls) && slot.exp.accepts(normalized, params));
        if out_of_order {
            let expected = match blocking {
                Some(index) => vec![format!("next in order: {}", describe(&self.expectations[index]))],
                None => {
                    vec!["no further ordered statement (the script has moved past it)".to_owned()]
                }
            };
            return Dispatch::Mismatch(MismatchReason::OutOfOrder, expected);
        }
        let exhausted: Vec<String> = self
            .expectations
            .iter()
            .filter(|slot| slot.exp.accepts(normalized, params))
            .map(with_calls)
            .collect();
        if !exhausted.is_empty() {
            return Dispatch::Mismatch(MismatchReason::Exhausted, exhausted);
        }
        let params_differ: Vec<String> = self
            .expectations
            .iter()
            .filter(|slot| slot.exp.matcher.matches_normalized(normalized))
            .map(describe)
            .collect();
        if !params_differ.is_empty() {
            return Dispatch::Mismatch(MismatchReason::ParamsDiffer, params_differ);
        }
        // Nothing mentions it: list what the script was waiting for.
        let mut expected: Vec<String> = blocking
            .map(|index| format!("next in order: {}", describe(&self.expectations[index])))
            .into_iter()
            .collect();
        expected.extend(
            self.expectations
                .iter()
                .filter(|slot| !slot.exp.ordered && !slot.exp.times.is_met(slot.calls))
                .map(describe),
        );
        Dispatch::Mismatch(MismatchReason::Unscripted, expected)
    }
}
