//! The fault layer's server-wide faults, journal, determinism and plans,
//! through both fault layers (sync and async) over both drivers each can
//! wrap (SQLite: `SqliteDriver`, `Blocking<SqliteDriver>`; the mock:
//! `MockDriver`, `AsyncMockDriver`), each behaviour one generic body run
//! through `check!` for every [`Kind`]:
//!
//! - `outage` kills live connections and refuses connects until `restore`;
//!   `restart` kills live connections and accepts new ones; `kill(id)`
//!   kills one; a killed connection's open transaction is rolled back;
//!   `live_connections`;
//! - a kill reaches operations under way: one in flight inside the wrapped
//!   driver (held there by the test-only [`Gated`] adapter), one held by a
//!   hang rule, a connect that waited through the start of an outage;
//! - every fired rule and every server-wide fault is journaled;
//! - the same plan and seed over the same workload give byte-for-byte the
//!   same journal, through either fault layer, and the same journal from
//!   one to the other (mock server ids restart at 1 per server, so no id
//!   needs normalising);
//! - plans: `load` arms every rule and reseeds, dropping the `PlanGuard`
//!   disarms, and the fixture scenarios do what their comments say.

mod common;

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use common::{Conn, Env, INSERT, Kind, Layer, LayerConnection, REACH, Worker, insert, released_by_kill};
use dbfault::{
    AsyncConnection, AsyncDriver, ConnId, Connection, Dialect, Driver, Event, EventKind, FaultPlan, Faults,
    LogEntry, Op, Row, Rule, Value,
};
use rstest::rstest;

fn fixture(name: &str) -> FaultPlan {
    let path = format!("{}/fixtures/scenarios/{name}", env!("CARGO_MANIFEST_DIR"));
    FaultPlan::from_file(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

// ---------------------------------------------------------------------------
// Server-wide faults.

#[rstest]
fn outage_kills_live_connections_and_refuses_connects_until_restore(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
) {
    check!(kind, |env| outage_body(env));
}

fn outage_body<L: Layer>(env: Env<L>) {
    let mut idle = env.connect();
    let mut busy = env.connect();
    busy.begin().expect("begin");
    insert(&mut busy, 7).expect("pending write");
    let mut ids = vec![idle.id(), busy.id()];
    ids.sort();
    assert_eq!(env.faults.live_connections(), ids);
    assert_eq!(env.backend.open_connections().unwrap_or(2), 2);
    assert!(!env.faults.is_down());

    env.faults.outage();
    assert!(env.faults.is_down());
    assert!(env.faults.live_connections().is_empty());
    assert_eq!(
        env.backend.open_connections().unwrap_or(0),
        0,
        "the server closed both"
    );
    assert!(idle.is_dead() && busy.is_dead());
    assert_eq!(
        env.committed(),
        Vec::<i64>::new(),
        "the open transaction was rolled back"
    );
    env.assert_gone(&mut idle, true);
    env.assert_gone(&mut busy, true);
    let log_len = env.backend.server().map(|s| s.log().len());
    for _ in 0..3 {
        let err = env
            .driver
            .connect()
            .expect_err("connects are refused during an outage");
        env.assert_disconnect(&err, true);
    }
    assert_eq!(
        env.backend.server().map(|s| s.log().len()),
        log_len,
        "no connect reached the server"
    );

    env.faults.restore();
    assert!(!env.faults.is_down());
    let mut fresh = env.connect();
    insert(&mut fresh, 8).expect("the restored server works");
    assert_eq!(env.faults.live_connections(), [fresh.id()]);
    assert_eq!(env.committed(), [8]);
}

#[rstest]
fn restart_kills_live_connections_and_accepts_new_ones(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
) {
    check!(kind, |env| restart_body(env));
}

fn restart_body<L: Layer>(env: Env<L>) {
    let mut idle = env.connect();
    let mut busy = env.connect();
    busy.begin().expect("begin");
    insert(&mut busy, 7).expect("pending write");

    env.faults.restart();
    assert!(!env.faults.is_down(), "a restart is not an outage");
    assert!(env.faults.live_connections().is_empty());
    assert_eq!(env.backend.open_connections().unwrap_or(0), 0);
    assert!(idle.is_dead() && busy.is_dead());
    assert_eq!(
        env.committed(),
        Vec::<i64>::new(),
        "the open transaction was rolled back"
    );
    env.assert_gone(&mut idle, true);
    env.assert_gone(&mut busy, true);

    let mut fresh = env.connect();
    insert(&mut fresh, 9).expect("new connections work at once");
    assert_eq!(env.faults.live_connections(), [fresh.id()]);
    assert_eq!(env.committed(), [9]);
}

#[rstest]
fn kill_kills_one_connection_and_rolls_back_its_transaction(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
) {
    check!(kind, |env| kill_body(env));
}

fn kill_body<L: Layer>(env: Env<L>) {
    let mut victim = env.connect();
    let mut bystander = env.connect();
    victim.begin().expect("begin");
    insert(&mut victim, 5).expect("pending write");
    let id = victim.id();

    assert!(env.faults.kill(id), "the connection was alive");
    assert!(victim.is_dead());
    assert!(!bystander.is_dead());
    assert_eq!(env.faults.live_connections(), [bystander.id()]);
    assert_eq!(env.backend.inner_open(id), env.backend.server().map(|_| false));
    assert_eq!(env.backend.open_connections().unwrap_or(1), 1);
    // Its uncommitted write is gone, and its lock with it.
    assert_eq!(env.committed(), Vec::<i64>::new());
    insert(&mut bystander, 6).expect("the other connection works");
    assert_eq!(env.committed(), [6]);
    env.assert_gone(&mut victim, true);

    assert!(!env.faults.kill(id), "killing a dead connection again");
    assert!(
        !env.faults.kill(ConnId(u64::MAX)),
        "killing an unknown connection"
    );
    let mut closed = env.connect();
    let closed_id = closed.id();
    closed.close().expect("close");
    assert!(!env.faults.kill(closed_id), "killing a closed connection");
    bystander.ping().expect("still alive");
}

#[rstest]
fn live_connections_are_the_open_unkilled_ones_sorted(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
) {
    check!(kind, |env| live_body(env));
}

fn live_body<L: Layer>(env: Env<L>) {
    assert!(env.faults.live_connections().is_empty());
    let conns: Vec<_> = (0..4).map(|_| env.connect()).collect();
    let mut ids: Vec<ConnId> = conns.iter().map(Connection::id).collect();
    ids.sort();
    assert_eq!(env.faults.live_connections(), ids);
    let mut conns = conns.into_iter();
    let mut closed = conns.next().expect("four");
    let dropped = conns.next().expect("four");
    let killed = conns.next().expect("four");
    let alive = conns.next().expect("four");
    closed.close().expect("close");
    drop(dropped);
    assert!(env.faults.kill(killed.id()));
    assert_eq!(env.faults.live_connections(), [alive.id()]);
    // The kill closed the inner connection although its handle is held.
    assert_eq!(env.backend.open_connections().unwrap_or(1), 1);
    drop(killed);
    assert_eq!(env.faults.live_connections(), [alive.id()]);
    assert_eq!(env.backend.open_connections().unwrap_or(1), 1);
}

/// The inner connection of a killed connection is released once, at the
/// kill (how: see [`released_by_kill`]), and not again when its owner
/// closes or drops it; one its owner closes is closed once and dropped.
#[rstest]
fn a_killed_connection_is_released_once_at_the_kill(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
    #[values(Killer::Kill, Killer::Restart, Killer::Outage)] killer: Killer,
) {
    check!(kind, Gated::new, |env| released_body(env, killer));
}

fn released_body<L: Layer<Inner = Gated<D>>, D>(env: Env<L>, killer: Killer) {
    let gate = Arc::clone(&env.driver.inner().gate);
    let mut conn = env.connect();
    let id = conn.id();
    assert_eq!(gate.released(), (0, 0));
    killer.strike(&env.faults, id);
    assert_eq!(gate.released(), released_by_kill::<L>());
    assert_eq!(env.backend.inner_open(id), env.backend.server().map(|_| false));
    conn.close().expect("closing a killed connection succeeds");
    drop(conn);
    assert_eq!(gate.released(), released_by_kill::<L>(), "released once");

    env.faults.restore();
    let mut owned = env.connect();
    let before = gate.released();
    owned.close().expect("close");
    drop(owned);
    assert_eq!(
        gate.released(),
        (before.0 + 1, before.1 + 1),
        "an owner's close closes the inner connection once, then drops it"
    );
}

// ---------------------------------------------------------------------------
// Kills reach operations under way.

/// How a test kills a connection from the server side.
#[derive(Debug, Clone, Copy)]
enum Killer {
    Kill,
    Restart,
    Outage,
}

impl Killer {
    fn strike(self, faults: &Faults, id: ConnId) {
        match self {
            Killer::Kill => assert!(faults.kill(id), "{id} was alive"),
            Killer::Restart => faults.restart(),
            Killer::Outage => faults.outage(),
        }
    }
}

/// The marker that makes [`Gated`] hold an `execute` inside the wrapped
/// driver.
const GATE: &str = "/* gate */";

/// A test-only driver adapter: an `execute` whose statement contains
/// [`GATE`], and (once [`Gate::hold_connects`] was called) a `connect`,
/// runs in the wrapped driver and then waits there until the test opens
/// the gate. That is an operation in flight, deterministically. It also
/// counts how its connections are released: `close` calls and drops. Like the
/// crate's own wrappers, it is a sync driver over a sync one and an async
/// driver over an async one (waiting without blocking the thread).
#[derive(Debug)]
struct Gated<D> {
    inner: D,
    gate: Arc<Gate>,
}

impl<D> Gated<D> {
    fn new(inner: D) -> Self {
        Gated {
            inner,
            gate: Arc::new(Gate::default()),
        }
    }
}

#[derive(Debug, Default)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
    /// Wakes the async operations waiting in [`Gate::pass_async`].
    opened: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct GateState {
    hold_connects: bool,
    inside: usize,
    open: bool,
    /// How many times an inner connection's `close` was called.
    closes: usize,
    /// How many inner connections were dropped.
    drops: usize,
}

impl Gate {
    fn state(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn hold_connects(&self) {
        self.state().hold_connects = true;
    }

    fn holds_connects(&self) -> bool {
        self.state().hold_connects
    }

    /// Called by an operation in flight: counts it in, waits for `open`.
    fn pass(&self) {
        let mut state = self.enter();
        while !state.open {
            state = self.changed.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// [`pass`](Gate::pass) for an async operation: waits without blocking
    /// the thread.
    async fn pass_async(&self) {
        drop(self.enter());
        loop {
            let opened = self.opened.notified();
            tokio::pin!(opened);
            opened.as_mut().enable();
            if self.state().open {
                return;
            }
            opened.await;
        }
    }

    /// Counts an operation in.
    fn enter(&self) -> MutexGuard<'_, GateState> {
        let mut state = self.state();
        state.inside += 1;
        self.changed.notify_all();
        state
    }

    /// Waits until `n` operations are held; whether they are.
    fn wait_inside(&self, n: usize) -> bool {
        let deadline = Instant::now() + REACH;
        let mut state = self.state();
        while state.inside < n {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// How the inner connections were released so far: `close` calls and
    /// drops.
    fn released(&self) -> (usize, usize) {
        let state = self.state();
        (state.closes, state.drops)
    }

    fn open(&self) {
        self.state().open = true;
        self.changed.notify_all();
        self.opened.notify_waiters();
    }
}

impl<D: Driver> Driver for Gated<D> {
    type Connection = GatedConnection<D::Connection>;

    fn connect(&self) -> dbfault::Result<Self::Connection> {
        let inner = self.inner.connect()?;
        if self.gate.holds_connects() {
            self.gate.pass();
        }
        Ok(GatedConnection {
            inner,
            gate: Arc::clone(&self.gate),
        })
    }

    fn dialect(&self) -> Arc<dyn Dialect> {
        self.inner.dialect()
    }
}

#[derive(Debug)]
struct GatedConnection<C> {
    inner: C,
    gate: Arc<Gate>,
}

impl<C: Connection> Connection for GatedConnection<C> {
    fn id(&self) -> ConnId {
        self.inner.id()
    }
    fn execute(&mut self, sql: &str, params: &[Value]) -> dbfault::Result<u64> {
        let result = self.inner.execute(sql, params);
        if sql.contains(GATE) {
            self.gate.pass();
        }
        result
    }
    fn query(&mut self, sql: &str, params: &[Value]) -> dbfault::Result<Vec<Row>> {
        self.inner.query(sql, params)
    }
    fn begin(&mut self) -> dbfault::Result<()> {
        self.inner.begin()
    }
    fn commit(&mut self) -> dbfault::Result<()> {
        self.inner.commit()
    }
    fn rollback(&mut self) -> dbfault::Result<()> {
        self.inner.rollback()
    }
    fn ping(&mut self) -> dbfault::Result<()> {
        self.inner.ping()
    }
    fn in_transaction(&self) -> bool {
        self.inner.in_transaction()
    }
    fn close(&mut self) -> dbfault::Result<()> {
        self.gate.state().closes += 1;
        self.inner.close()
    }
}

impl<C> Drop for GatedConnection<C> {
    fn drop(&mut self) {
        self.gate.state().drops += 1;
    }
}

impl<D: AsyncDriver> AsyncDriver for Gated<D> {
    type Connection = GatedConnection<D::Connection>;

    async fn connect(&self) -> dbfault::Result<Self::Connection> {
        let inner = self.inner.connect().await?;
        if self.gate.holds_connects() {
            self.gate.pass_async().await;
        }
        Ok(GatedConnection {
            inner,
            gate: Arc::clone(&self.gate),
        })
    }

    fn dialect(&self) -> Arc<dyn Dialect> {
        self.inner.dialect()
    }
}

impl<C: AsyncConnection> AsyncConnection for GatedConnection<C> {
    fn id(&self) -> ConnId {
        self.inner.id()
    }
    async fn execute(&mut self, sql: &str, params: &[Value]) -> dbfault::Result<u64> {
        let result = self.inner.execute(sql, params).await;
        if sql.contains(GATE) {
            self.gate.pass_async().await;
        }
        result
    }
    async fn query(&mut self, sql: &str, params: &[Value]) -> dbfault::Result<Vec<Row>> {
        self.inner.query(sql, params).await
    }
    async fn begin(&mut self) -> dbfault::Result<()> {
        self.inner.begin().await
    }
    async fn commit(&mut self) -> dbfault::Result<()> {
        self.inner.commit().await
    }
    async fn rollback(&mut self) -> dbfault::Result<()> {
        self.inner.rollback().await
    }
    async fn ping(&mut self) -> dbfault::Result<()> {
        self.inner.ping().await
    }
    fn in_transaction(&self) -> bool {
        self.inner.in_transaction()
    }
    async fn close(&mut self) -> dbfault::Result<()> {
        self.gate.state().closes += 1;
        self.inner.close().await
    }
}

/// A connection killed while an operation is in flight in the wrapped
/// driver: the operation's end closes the inner connection (rolling back
/// its transaction) and the caller sees a disconnect.
#[rstest]
fn a_kill_reaches_an_operation_in_flight(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
    #[values(Killer::Kill, Killer::Restart, Killer::Outage)] killer: Killer,
) {
    check!(kind, Gated::new, |env| in_flight_body(env, killer));
}

fn in_flight_body<L: Layer<Inner = Gated<D>>, D>(env: Env<L>, killer: Killer) {
    let gate = Arc::clone(&env.driver.inner().gate);
    let mut conn = env.connect();
    let id = conn.id();
    conn.begin().expect("begin");
    insert(&mut conn, 1).expect("pending write");
    let worker = Worker::spawn(move || {
        let result = conn.execute(&format!("{INSERT} {GATE}"), &[Value::Integer(2)]);
        (conn, result)
    });
    let reached = gate.wait_inside(1);
    if reached {
        killer.strike(&env.faults, id);
    }
    gate.open();
    let (mut conn, result) = worker.join("the gated execute, its gate open,");
    assert!(reached, "the execute never reached the wrapped driver");
    let err = result.expect_err("an operation cut off by a kill reports a disconnect");
    env.assert_disconnect(&err, true);
    assert!(conn.is_dead());
    // Closed at the operation's end, not when the connection is closed or
    // dropped: the transaction is rolled back and its lock released now.
    assert_eq!(env.backend.inner_open(id), env.backend.server().map(|_| false));
    assert_eq!(env.committed(), Vec::<i64>::new());
    assert_eq!(gate.released(), released_by_kill::<L>());
    env.assert_gone(&mut conn, true);
    assert_eq!(gate.released(), released_by_kill::<L>(), "released once");
}

/// A hang rule holds an operation until the rule is disarmed, or until its
/// connection dies: a killed connection's caller hears of it at once.
#[rstest]
fn a_kill_ends_a_hang_on_that_connection(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
    #[values(Killer::Kill, Killer::Restart, Killer::Outage)] killer: Killer,
) {
    check!(kind, |env| hang_killed_body(env, killer));
}

fn hang_killed_body<L: Layer>(env: Env<L>, killer: Killer) {
    let mut conn = env.connect();
    let id = conn.id();
    conn.begin().expect("begin");
    insert(&mut conn, 1).expect("pending write");
    let guard = env.faults.arm(Rule::on(Op::Ping).hang()).expect("arm");
    let worker = Worker::spawn(move || {
        let result = conn.ping();
        (conn, result)
    });
    assert!(guard.wait_for_hits(1, REACH), "ping never reached its rule");
    killer.strike(&env.faults, id);
    let outcome = worker.wait();
    assert!(guard.is_armed(), "the rule was not disarmed");
    drop(guard);
    let (mut conn, result) = outcome.expect("the hung ping returns once its connection is killed");
    let err = result.expect_err("the ping's connection was killed");
    env.assert_disconnect(&err, true);
    assert_eq!(env.committed(), Vec::<i64>::new());
    env.assert_gone(&mut conn, true);
}

/// A connect held by a hang rule while an outage begins is refused once
/// released: it never reaches the server.
#[rstest]
fn a_connect_held_through_the_start_of_an_outage_is_refused(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
) {
    check!(kind, |env| connect_hang_outage_body(env));
}

fn connect_hang_outage_body<L: Layer>(env: Env<L>) {
    let guard = env.faults.arm(Rule::on(Op::Connect).hang()).expect("arm");
    let driver = Arc::clone(&env.driver);
    let worker = Worker::spawn(move || driver.connect());
    assert!(guard.wait_for_hits(1, REACH), "connect never reached its rule");
    env.faults.outage();
    drop(guard);
    let result = worker.join("the hung connect, its rule disarmed,");
    let err = result.expect_err("the server went down while the connect waited");
    env.assert_disconnect(&err, true);
    assert!(env.faults.live_connections().is_empty());
    assert_eq!(
        env.backend.server().map(|s| s.log().len()),
        env.backend.server().map(|_| 0)
    );
    env.faults.restore();
    env.connect().ping().expect("connects work after restore");
}

/// A connect in flight in the wrapped driver while an outage begins (so
/// the outage cannot kill it yet) fails, and its connection is closed.
#[rstest]
fn a_connect_in_flight_at_the_start_of_an_outage_is_refused(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
) {
    check!(kind, Gated::new, |env| connect_in_flight_body(env));
}

fn connect_in_flight_body<L: Layer<Inner = Gated<D>>, D>(env: Env<L>) {
    let gate = Arc::clone(&env.driver.inner().gate);
    gate.hold_connects();
    let driver = Arc::clone(&env.driver);
    let worker = Worker::spawn(move || driver.connect());
    let reached = gate.wait_inside(1);
    env.faults.outage();
    gate.open();
    let result = worker.join("the gated connect, its gate open,");
    assert!(reached, "connect never reached the wrapped driver");
    let err = result.expect_err("the server went down while the connect was under way");
    env.assert_disconnect(&err, true);
    assert!(env.faults.live_connections().is_empty());
    assert_eq!(
        env.backend.open_connections().unwrap_or(0),
        0,
        "the server closed it"
    );
    assert_eq!(gate.released(), released_by_kill::<L>());
    env.faults.restore();
    env.connect().ping().expect("connects work after restore");
}

// ---------------------------------------------------------------------------
// Journal.

#[rstest]
fn every_fired_rule_writes_a_fault_event(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
) {
    check!(kind, |env| journal_rules_body(env));
}

fn journal_rules_body<L: Layer>(env: Env<L>) {
    let mut conn = env.connect();
    let id = conn.id();
    env.clock.advance(Duration::from_millis(5));
    let ping = env
        .faults
        .arm(Rule::on(Op::Ping).nth(2).error(dbfault::ErrorClass::Other))
        .expect("arm");
    conn.ping().expect("call 1 does not fire");
    assert!(env.journal.is_empty(), "a rule that does not fire writes nothing");
    conn.ping().expect_err("call 2 fires");
    let events = env.journal.events();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(
        (event.seq, event.kind, event.conn),
        (1, EventKind::Fault, Some(id))
    );
    assert_eq!(
        event.at,
        Duration::from_millis(5),
        "stamped on the fault layer's clock"
    );
    assert!(event.detail.starts_with("ping: "), "{event}");
    assert!(
        event.detail.contains(&format!("(rule {})", ping.rule_id())),
        "{event}"
    );

    let refuse = env
        .faults
        .arm(Rule::on(Op::Connect).nth(1).disconnect())
        .expect("arm");
    env.driver.connect().expect_err("refused");
    let cut = env
        .faults
        .arm(Rule::on(Op::Commit).disconnect_after_apply())
        .expect("arm");
    conn.begin().expect("begin");
    conn.commit().expect_err("cut");
    let events = env.journal.events();
    let faults: Vec<(Option<ConnId>, &str)> = events.iter().map(|e| (e.conn, e.detail.as_str())).collect();
    assert_eq!(
        faults,
        [
            (
                Some(id),
                format!("ping: error other [DBFAULT_INJECTED] (rule {})", ping.rule_id()).as_str()
            ),
            (
                None,
                format!("connect: disconnect (rule {})", refuse.rule_id()).as_str()
            ),
            (
                Some(id),
                format!("commit: disconnect_after_apply (rule {})", cut.rule_id()).as_str()
            ),
        ]
    );
    assert!(events.iter().all(|e| e.kind == EventKind::Fault));
    assert_eq!(ping.hits() + refuse.hits() + cut.hits(), events.len() as u64);
}

#[rstest]
fn server_wide_faults_are_journaled(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
) {
    check!(kind, |env| journal_server_body(env));
}

fn journal_server_body<L: Layer>(env: Env<L>) {
    let a = env.connect();
    let _b = env.connect();
    assert!(env.faults.kill(a.id()));
    assert!(!env.faults.kill(ConnId(u64::MAX)), "an unknown id");
    env.faults.restart();
    env.faults.outage();
    env.faults.restore();
    let events: Vec<(EventKind, Option<ConnId>, String)> = env
        .journal
        .events()
        .into_iter()
        .map(|e| (e.kind, e.conn, e.detail))
        .collect();
    let fault = |conn, detail: &str| (EventKind::Fault, conn, detail.to_owned());
    assert_eq!(
        events,
        [
            fault(Some(a.id()), "kill"),
            fault(None, "restart"),
            fault(None, "outage"),
            fault(None, "restore"),
        ]
    );
}

// ---------------------------------------------------------------------------
// Determinism.

/// What one run of the flaky workload leaves behind.
#[derive(Debug, PartialEq)]
struct Run {
    timeline: String,
    events: Vec<Event>,
    log: Vec<LogEntry>,
    committed: Vec<String>,
}

/// A fixed workload of writes over two connections, autocommit and in
/// transactions, reconnecting after a disconnect, against a fresh mock
/// server (`kind`: through the sync or the async fault layer) with `plan`
/// loaded.
fn flaky_run(kind: Kind, plan: &FaultPlan) -> Run {
    check!(kind, |env| flaky_body(env, plan))
}

/// The workload of [`flaky_run`]. It journals its own connects and closes
/// next to the fault layer's events.
fn flaky_body<L: Layer>(env: Env<L>, plan: &FaultPlan) -> Run {
    let server = env.backend.server().expect("a mock").clone();
    let _plan = env.faults.load(plan).expect("load");
    let mut slots: [Option<Conn<L>>; 2] = [None, None];
    for step in 0..300_i64 {
        env.clock.advance(Duration::from_millis(1));
        let slot = &mut slots[(step % 2) as usize];
        let conn = slot.get_or_insert_with(|| {
            let conn = env.connect();
            env.journal.record(Some(conn.id()), EventKind::Connect, "");
            conn
        });
        let sql = if step % 3 == 0 {
            "UPDATE t SET x = x + 1 WHERE x = ?"
        } else {
            INSERT
        };
        let params = [Value::Integer(step)];
        let result = if step % 5 == 0 {
            conn.begin()
                .and_then(|()| conn.execute(sql, &params))
                .and_then(|_| conn.commit())
        } else {
            conn.execute(sql, &params).map(drop)
        };
        match result {
            Err(err) if err.is_disconnect() => {
                env.journal
                    .record(Some(conn.id()), EventKind::Close, err.to_string());
                *slot = None;
            }
            Err(_) if conn.in_transaction() => conn.rollback().expect("rollback"),
            _ => {}
        }
    }
    Run {
        timeline: env.journal.timeline(),
        events: env.journal.events(),
        log: server.log(),
        committed: server.committed_sql(),
    }
}

#[rstest]
fn the_same_plan_and_workload_give_the_same_journal(#[values(Kind::Mock, Kind::AsyncMock)] kind: Kind) {
    let plan = fixture("flaky_writes.toml");
    let first = flaky_run(kind, &plan);
    let second = flaky_run(kind, &plan);
    assert_eq!(
        first.timeline, second.timeline,
        "timelines differ:\n{}\n---\n{}",
        first.timeline, second.timeline
    );
    assert_eq!(first.events, second.events);
    assert_eq!(first.log, second.log);
    assert_eq!(first.committed, second.committed);

    // Not vacuous: both rules fired, and another seed gives another run.
    let fired = |rule: u64| {
        let tag = format!("(rule {rule})");
        first.events.iter().filter(|e| e.detail.contains(&tag)).count()
    };
    assert!(fired(1) > 0 && fired(2) > 0, "{}", first.timeline);
    let reseeded = plan
        .rules()
        .iter()
        .fold(FaultPlan::new(plan.seed() + 1), |p, r| p.rule(r.clone()));
    assert_ne!(flaky_run(kind, &reseeded).timeline, first.timeline);

    // The sync and the async fault layer decide alike: the same faults at
    // the same calls, so the same journal, server log and commits.
    let sync = flaky_run(Kind::Mock, &plan);
    assert_eq!(
        first.timeline, sync.timeline,
        "{kind:?} and the sync layer differ:\n{}\n---\n{}",
        first.timeline, sync.timeline
    );
    assert_eq!(first, sync);
}

// ---------------------------------------------------------------------------
// Plans.

#[rstest]
fn load_arms_every_rule_reseeds_and_the_plan_guard_disarms(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
) {
    let plan = fixture("flaky_writes.toml");
    // What the plan's first rule does, armed alone after seeding by hand.
    let reference = check!(kind, |env| {
        env.faults.seed(plan.seed());
        let _guard = env.faults.arm(plan.rules()[0].clone()).expect("arm");
        let mut conn = env.connect();
        (0..40)
            .map(|i| insert(&mut conn, i).is_err())
            .collect::<Vec<bool>>()
    });
    check!(kind, |env| load_body(env, &plan, &reference));
}

fn load_body<L: Layer>(env: Env<L>, plan: &FaultPlan, reference: &[bool]) {
    env.faults.seed(plan.seed() + 1000);
    let loaded = env.faults.load(plan).expect("load");
    assert_eq!(loaded.guards().len(), plan.rules().len());
    assert!(loaded.guards().iter().all(|g| g.is_armed()));

    let mut conn = env.connect();
    let inserts: Vec<bool> = (0..40).map(|i| insert(&mut conn, i).is_err()).collect();
    assert_eq!(inserts, reference, "load reseeded with the plan's seed");
    let busy = inserts.iter().filter(|&&failed| failed).count() as u64;
    assert!(busy > 0, "a quarter of 40 inserts should fail");
    let update = "UPDATE t SET x = x WHERE x = ?";
    for i in 1..10 {
        conn.execute(update, &[Value::Integer(i)])
            .expect("updates 1 to 9 pass");
    }
    let err = conn
        .execute(update, &[Value::Integer(10)])
        .expect_err("the 10th update");
    env.assert_disconnect(&err, true);
    assert_eq!(loaded.guards()[0].hits(), busy);
    assert_eq!(loaded.guards()[1].hits(), 1);
    assert_eq!(loaded.hits(), busy + 1);

    drop(loaded);
    let mut conn = env.connect();
    for i in 100..140 {
        insert(&mut conn, i).expect("the plan is disarmed");
    }
    for i in 0..20 {
        conn.execute(update, &[Value::Integer(i)])
            .expect("the plan is disarmed");
    }
}

/// `commit_cut_after_apply.toml`: the second commit reaches the server,
/// which applies it, then the connection drops.
#[rstest]
fn the_ambiguous_commit_scenario(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
) {
    check!(kind, |env| ambiguous_commit_body(env));
}

fn ambiguous_commit_body<L: Layer>(env: Env<L>) {
    let _plan = env
        .faults
        .load(&fixture("commit_cut_after_apply.toml"))
        .expect("load");
    let mut conn = env.connect();
    conn.begin().expect("begin");
    insert(&mut conn, 1).expect("write");
    conn.commit().expect("the first commit passes");
    conn.begin().expect("begin");
    insert(&mut conn, 2).expect("write");
    let err = conn.commit().expect_err("the second commit is cut");
    env.assert_disconnect(&err, true);
    assert!(conn.is_dead());
    assert_eq!(env.committed(), [1, 2], "the server applied the cut commit");
    if let Some(server) = env.backend.server() {
        assert!(server.ops_for(conn.id()).ends_with(&[Op::Commit, Op::Close]));
    }
}

/// `connect_storm.toml`: the first three connects are refused, and two
/// pings are slow.
#[rstest]
fn the_connect_storm_scenario(
    #[values(Kind::Sqlite, Kind::Mock, Kind::AsyncSqlite, Kind::AsyncMock)] kind: Kind,
) {
    check!(kind, |env| connect_storm_body(env));
}

fn connect_storm_body<L: Layer>(env: Env<L>) {
    let _plan = env.faults.load(&fixture("connect_storm.toml")).expect("load");
    for _ in 0..3 {
        let err = env.driver.connect().expect_err("refused");
        env.assert_disconnect(&err, true);
    }
    let mut conn = env.connect();
    let t0 = env.clock.now();
    conn.ping().expect("slow ping");
    conn.ping().expect("slow ping");
    assert_eq!(env.clock.now() - t0, Duration::from_millis(100));
    conn.ping().expect("ping");
    assert_eq!(
        env.clock.now() - t0,
        Duration::from_millis(100),
        "only two pings are slow"
    );
    env.connect().ping().expect("connects work after the storm");
}
