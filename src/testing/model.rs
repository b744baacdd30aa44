//! The model-based test: a seeded workload driven through a pool under a
//! fault plan, checked after every step, then checked for recovery and for
//! the data.
//!
//! [`check`] runs one [`FaultPlan`] on one [`Target`] (shell × driver): it
//! arms the plan, derives the workload from the plan's seed, and after
//! every step checks the pool's [`Invariants`] and that no connection was
//! handed out inside a transaction. Once the workload is over the faults
//! stop, and the pool must serve again within a bounded number of
//! checkouts; then the journal invariants must hold, and the data must be
//! what the callers were told: every write whose commit succeeded is
//! present, every write rolled back or never committed is absent, and a
//! transaction whose commit ended [`ErrorKind::CommitUnknown`] is present
//! or absent as a whole.
//!
//! Seed and plan are the whole case: a failure prints the plan as TOML;
//! saved as `fixtures/scenarios/NAME.toml` it replays with
//! [`replay`]`("NAME")`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Invariants;
use super::shell::{AnyEngine, AnyEngineConn, AnyPool, AnyTx, block_on};
use crate::fault::SplitMix64;
use crate::{
    Action, Clock, Driver, Error, ErrorClass, ErrorKind, EventKind, FaultPlan, Faults, FaultyDriver, Journal,
    MockServer, Pool, PoolConfig,
};

/// How many steps a replayed scenario runs.
pub const DEFAULT_STEPS: usize = 64;

/// One step of a workload. Slot numbers pick among the engine
/// connections the workload holds (modulo how many there are; a step on
/// no slot is skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Check out an engine connection into a new slot (skipped when the
    /// workload already holds `size + max_overflow`).
    Checkout,
    /// Return a slot's connection to the pool.
    Return(usize),
    /// One write in autocommit mode.
    Write(usize),
    /// Begin, `writes` writes, then end; the connection is killed after the
    /// write numbered `kill_at`, if given.
    Transaction {
        /// The slot.
        slot: usize,
        /// How many writes.
        writes: u8,
        /// How it ends.
        end: End,
        /// Kill the connection after this many writes.
        kill_at: Option<u8>,
    },
    /// Hard-invalidate a slot's connection.
    Invalidate(usize),
    /// Soft-invalidate a slot's connection.
    SoftInvalidate(usize),
    /// Restart the server.
    Restart,
    /// Take the server down.
    Outage,
    /// Bring it back.
    Restore,
    /// Kill a slot's connection on the server side.
    Kill(usize),
    /// Let time pass.
    Advance(Duration),
}

/// How a workload transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// `commit()`.
    Commit,
    /// `rollback()`.
    Rollback,
    /// Dropped uncommitted.
    Drop,
}

/// A sequence of steps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Workload {
    steps: Vec<Step>,
}

impl Workload {
    /// A workload of these steps.
    pub fn new(steps: Vec<Step>) -> Self {
        Workload { steps }
    }

    /// The workload a seed stands for: `len` steps drawn from a seeded
    /// generator, so seed and plan reproduce a case exactly.
    pub fn generate(seed: u64, len: usize) -> Self {
        let mut rng = SplitMix64(seed ^ 0x005E_ED0F_D8FA);
        let mut pick = |n: u64| (rng.next_u64() % n) as usize;
        let steps = (0..len)
            .map(|_| match pick(100) {
                0..=17 => Step::Checkout,
                18..=29 => Step::Return(pick(8)),
                30..=47 => Step::Write(pick(8)),
                48..=71 => Step::Transaction {
                    slot: pick(8),
                    writes: 1 + pick(3) as u8,
                    end: [End::Commit, End::Commit, End::Rollback, End::Drop][pick(4)],
                    kill_at: (pick(10) == 0).then(|| pick(3) as u8),
                },
                72..=77 => Step::Invalidate(pick(8)),
                78..=82 => Step::SoftInvalidate(pick(8)),
                83..=85 => Step::Restart,
                86..=87 => Step::Outage,
                88..=91 => Step::Restore,
                92..=95 => Step::Kill(pick(8)),
                _ => Step::Advance(Duration::from_millis(500 * (1 + pick(8) as u64))),
            })
            .collect();
        Workload { steps }
    }

    /// The steps.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }
}

/// A shell and a driver to run the model on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// `Pool` over `FaultyDriver<MockDriver>`.
    ThreadsMock,
    /// `Pool` over `FaultyDriver<SqliteDriver>`.
    #[cfg(feature = "sqlite")]
    ThreadsSqlite,
    /// `AsyncPool` over `FaultyDriver<AsyncMockDriver>`.
    #[cfg(feature = "tokio")]
    TokioMock,
    /// `AsyncPool` over `FaultyDriver<Blocking<SqliteDriver>>`.
    #[cfg(all(feature = "tokio", feature = "sqlite"))]
    TokioSqlite,
}

impl Target {
    /// Every target the enabled features allow.
    pub fn all() -> Vec<Target> {
        #[allow(unused_mut)] // without features there is one target
        let mut all = vec![Target::ThreadsMock];
        #[cfg(feature = "sqlite")]
        all.push(Target::ThreadsSqlite);
        #[cfg(feature = "tokio")]
        all.push(Target::TokioMock);
        #[cfg(all(feature = "tokio", feature = "sqlite"))]
        all.push(Target::TokioSqlite);
        all
    }
}

/// What a passing run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// Steps run.
    pub steps: usize,
    /// Faults fired (journal `fault` events).
    pub faults: usize,
    /// Writes whose commit succeeded.
    pub committed: usize,
    /// Transactions whose commit outcome was unknown.
    pub unknown: usize,
    /// Checkouts it took to serve again after the faults stopped.
    pub recovery_checkouts: usize,
}

/// A failing run: what broke, where, and how to replay it.
#[derive(Debug, Clone)]
pub struct ModelFailure {
    target: Option<Target>,
    step: Option<(usize, Step)>,
    what: String,
    plan: Option<FaultPlan>,
    timeline: String,
}

impl ModelFailure {
    fn new(what: impl Into<String>) -> Self {
        ModelFailure {
            target: None,
            step: None,
            what: what.into(),
            plan: None,
            timeline: String::new(),
        }
    }

    /// What broke.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// The plan that produced it, if the run got that far.
    pub fn plan(&self) -> Option<&FaultPlan> {
        self.plan.as_ref()
    }
}

impl fmt::Display for ModelFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "model check failed")?;
        if let Some(target) = self.target {
            write!(f, " on {target:?}")?;
        }
        if let Some((n, step)) = &self.step {
            write!(f, " at step {n} ({step:?})")?;
        }
        writeln!(f, ": {}", self.what)?;
        if let Some(plan) = &self.plan {
            writeln!(
                f,
                "\nseed {} and plan (save as fixtures/scenarios/NAME.toml, replay with \
                 dbfault::testing::replay(\"NAME\")):\n\n{}",
                plan.seed(),
                plan.to_toml()
            )?;
        }
        if !self.timeline.is_empty() {
            writeln!(f, "{}", self.timeline)?;
        }
        Ok(())
    }
}

impl std::error::Error for ModelFailure {}

/// The pool settings a seed stands for: size 2, overflow 1, and recycle,
/// pre-ping and LIFO each on or off by a bit of the seed.
pub fn pool_config(seed: u64) -> PoolConfig {
    let mut cfg = PoolConfig::new()
        .size(2)
        .max_overflow(1)
        .timeout(Duration::from_secs(30));
    if seed & 1 == 1 {
        cfg = cfg.recycle(Duration::from_secs(3));
    }
    if seed & 2 == 2 {
        cfg = cfg.pre_ping(true);
    }
    cfg.lifo(seed & 4 == 4)
}

/// Runs `plan` with a workload of `steps` steps on `target`.
///
/// # Errors
///
/// The first broken invariant, with the step, the plan and the timeline.
pub fn check(target: Target, plan: &FaultPlan, steps: usize) -> std::result::Result<Report, ModelFailure> {
    check_with(target, plan, &Workload::generate(plan.seed(), steps))
}

/// Runs `plan` with the given workload on `target` (the pool settings
/// still come from the plan's seed).
///
/// # Errors
///
/// As [`check`]. A failure's plan alone does not replay a workload given
/// here: print the workload too.
pub fn check_with(
    target: Target,
    plan: &FaultPlan,
    workload: &Workload,
) -> std::result::Result<Report, ModelFailure> {
    if let Some(rule) = plan
        .rules()
        .iter()
        .find(|r| matches!(r.get_action(), Action::Hang))
    {
        let mut failure = ModelFailure::new(format!(
            "the model cannot run `hang` rules (nothing would disarm {rule}); use `delay`"
        ));
        failure.plan = Some(plan.clone());
        return Err(failure);
    }
    let cfg = pool_config(plan.seed());
    let result = match target {
        Target::ThreadsMock => {
            let server = MockServer::new();
            on_threads(server.driver(), Data::Mock(server), cfg, plan, workload)
        }
        #[cfg(feature = "sqlite")]
        Target::ThreadsSqlite => {
            let db = super::fresh_database().map_err(config_failure)?;
            on_threads(db.clone(), Data::Sqlite(db), cfg, plan, workload)
        }
        #[cfg(feature = "tokio")]
        Target::TokioMock => {
            let server = MockServer::new();
            on_tokio(server.async_driver(), Data::Mock(server), cfg, plan, workload)
        }
        #[cfg(all(feature = "tokio", feature = "sqlite"))]
        Target::TokioSqlite => {
            let db = super::fresh_database().map_err(config_failure)?;
            on_tokio(
                crate::Blocking::new(db.clone()),
                Data::Sqlite(db),
                cfg,
                plan,
                workload,
            )
        }
    };
    result.map_err(|mut failure| {
        failure.target = Some(target);
        failure.plan = Some(plan.clone());
        failure
    })
}

/// Replays the scenario `fixtures/scenarios/NAME.toml` of the crate under
/// test (found from `CARGO_MANIFEST_DIR`, else the current directory) on
/// every target, [`DEFAULT_STEPS`] steps each.
///
/// # Errors
///
/// The scenario cannot be read, or a target fails.
pub fn replay(name: &str) -> std::result::Result<Vec<Report>, ModelFailure> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from("."), PathBuf::from);
    replay_file(
        dir.join("fixtures")
            .join("scenarios")
            .join(format!("{name}.toml")),
    )
}

/// Replays a scenario file on every target.
///
/// # Errors
///
/// As [`replay`].
pub fn replay_file(path: impl AsRef<Path>) -> std::result::Result<Vec<Report>, ModelFailure> {
    let plan = FaultPlan::from_file(path.as_ref()).map_err(|e| ModelFailure::new(e.to_string()))?;
    Target::all()
        .into_iter()
        .map(|target| check(target, &plan, DEFAULT_STEPS))
        .collect()
}

/// The threaded shell over `driver`, on a manual clock.
fn on_threads<D: Driver>(
    driver: D,
    data: Data,
    cfg: PoolConfig,
    plan: &FaultPlan,
    workload: &Workload,
) -> std::result::Result<Report, ModelFailure> {
    let clock = Clock::manual();
    let journal = Journal::with_clock(clock.clone());
    let driver = FaultyDriver::new(driver).with_journal(journal.clone());
    let faults = driver.faults();
    let pool = Pool::new(driver, cfg.journal(journal.clone())).map_err(config_failure)?;
    block_on(run(
        &pool,
        &faults,
        &journal,
        &data,
        Time::Manual(clock),
        plan,
        workload,
    ))
}

/// The tokio shell over `driver`, on a paused current-thread runtime.
#[cfg(feature = "tokio")]
fn on_tokio<D: crate::AsyncDriver>(
    driver: D,
    data: Data,
    cfg: PoolConfig,
    plan: &FaultPlan,
    workload: &Workload,
) -> std::result::Result<Report, ModelFailure> {
    paused_runtime()?.block_on(async {
        let journal = Journal::with_clock(Clock::tokio());
        let driver = FaultyDriver::new(driver).with_journal(journal.clone());
        let faults = driver.faults();
        let pool = crate::AsyncPool::new(driver, cfg.journal(journal.clone())).map_err(config_failure)?;
        run(&pool, &faults, &journal, &data, Time::Tokio, plan, workload).await
    })
}

fn config_failure(e: Error) -> ModelFailure {
    ModelFailure::new(format!("setting up: {e}"))
}

#[cfg(feature = "tokio")]
fn paused_runtime() -> std::result::Result<tokio::runtime::Runtime, ModelFailure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| ModelFailure::new(format!("building a runtime: {e}")))
}

/// Where the data is checked, outside the pool.
enum Data {
    Mock(MockServer),
    #[cfg(feature = "sqlite")]
    Sqlite(crate::SqliteDriver),
}

impl Data {
    fn holds(&self, tag: &str) -> std::result::Result<bool, String> {
        match self {
            Data::Mock(server) => {
                let quoted = format!("'{tag}'");
                Ok(server.committed_sql().iter().any(|s| s.contains(&quoted)))
            }
            #[cfg(feature = "sqlite")]
            Data::Sqlite(db) => {
                use crate::Connection;
                let mut conn = db.connect().map_err(|e| e.to_string())?;
                let rows = conn
                    .query("SELECT count(*) FROM writes WHERE tag = ?1", &[tag.into()])
                    .map_err(|e| e.to_string())?;
                Ok(rows.first().and_then(|r| r.get(0)).and_then(crate::Value::as_i64) == Some(1))
            }
        }
    }
}

/// How the workload moves time.
enum Time {
    Manual(Clock),
    #[cfg(feature = "tokio")]
    Tokio,
}

impl Time {
    async fn advance(&self, by: Duration) {
        match self {
            Time::Manual(clock) => clock.advance(by),
            #[cfg(feature = "tokio")]
            Time::Tokio => tokio::time::advance(by).await,
        }
    }

    /// Lets work spawned by the pool (the tokio shell's resets) finish:
    /// waits until only the `held` connections are out.
    async fn settle<P: AnyPool>(&self, pool: &P, held: usize) {
        #[cfg(feature = "tokio")]
        if let Time::Tokio = self {
            for _ in 0..100_000 {
                if pool.status().checked_out <= held {
                    return;
                }
                tokio::task::yield_now().await;
            }
        }
        let _ = (pool, held);
    }
}

/// What the callers were told about a group of writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Told {
    Committed,
    Absent,
    /// All or none.
    Unknown,
}

struct Run<'a, P: AnyPool> {
    faults: &'a Faults,
    engine: P::Engine,
    slots: Vec<<P::Engine as AnyEngine>::Conn>,
    told: Vec<(Vec<String>, Told)>,
    next_tag: u64,
    inv: Invariants,
    capacity: usize,
}

async fn run<P: AnyPool>(
    pool: &P,
    faults: &Faults,
    journal: &Journal,
    data: &Data,
    time: Time,
    plan: &FaultPlan,
    workload: &Workload,
) -> std::result::Result<Report, ModelFailure> {
    let status = pool.status();
    let mut run: Run<'_, P> = Run {
        faults,
        engine: pool.engine(),
        slots: Vec::new(),
        told: Vec::new(),
        next_tag: 0,
        inv: Invariants::new(),
        capacity: status.limit().unwrap_or(usize::MAX),
    };
    let fail = |what: String, step: Option<(usize, Step)>| ModelFailure {
        target: None,
        step,
        what,
        plan: None,
        timeline: journal.timeline(),
    };
    let armed = faults
        .load(plan)
        .map_err(|e| fail(format!("loading the plan: {e}"), None))?;
    for (n, step) in workload.steps().iter().enumerate() {
        run.step(step, &time)
            .await
            .map_err(|what| fail(what, Some((n, step.clone()))))?;
        time.settle(pool, run.held()).await;
        if let Err(v) = run.inv.check_pool(pool, None) {
            return Err(fail(v.broken().join("; "), Some((n, step.clone()))));
        }
    }
    // The faults stop.
    drop(armed);
    faults.disarm_all();
    faults.restore();
    run.slots.clear();
    time.settle(pool, 0).await;
    let recovery_checkouts = run.recover().await.map_err(|what| fail(what, None))?;
    time.settle(pool, 0).await;
    if let Err(v) = run.inv.check_quiescent(pool, journal) {
        return Err(fail(v.broken().join("; "), None));
    }
    let mut report = Report {
        steps: workload.steps().len(),
        faults: journal.count(EventKind::Fault),
        recovery_checkouts,
        ..Report::default()
    };
    for (tags, told) in &run.told {
        let mut present = 0;
        for tag in tags {
            if data
                .holds(tag)
                .map_err(|e| fail(format!("reading the data: {e}"), None))?
            {
                present += 1;
            }
        }
        let ok = match told {
            Told::Committed => present == tags.len(),
            Told::Absent => present == 0,
            Told::Unknown => present == 0 || present == tags.len(),
        };
        if !ok {
            return Err(fail(
                format!(
                    "data: writes {tags:?} were reported {told:?} but {present} of them are in the database"
                ),
                None,
            ));
        }
        match told {
            Told::Committed => report.committed += tags.len(),
            Told::Unknown => report.unknown += 1,
            Told::Absent => {}
        }
    }
    Ok(report)
}

impl<P: AnyPool> Run<'_, P> {
    fn tag(&mut self) -> String {
        self.next_tag += 1;
        format!("w{}", self.next_tag)
    }

    /// Pooled connections the workload holds right now.
    fn held(&self) -> usize {
        self.slots.iter().filter(|c| c.held_id().is_some()).count()
    }

    fn slot(&self, i: usize) -> Option<usize> {
        (!self.slots.is_empty()).then(|| i % self.slots.len())
    }

    async fn step(&mut self, step: &Step, time: &Time) -> std::result::Result<(), String> {
        match *step {
            Step::Checkout => {
                if self.slots.len() < self.capacity {
                    if let Ok(mut conn) = self.engine.connect().await {
                        if let Ok((id, in_tx)) = conn.current().await {
                            if in_tx {
                                return Err(format!("{id} was handed out inside a transaction"));
                            }
                        }
                        self.slots.push(conn);
                    }
                }
            }
            Step::Return(i) => {
                if let Some(i) = self.slot(i) {
                    self.slots.swap_remove(i);
                }
            }
            Step::Write(i) => {
                if let Some(i) = self.slot(i) {
                    let tag = self.tag();
                    let result = self.slots[i].execute(&write_sql(&tag)).await;
                    let told = match result {
                        Ok(_) => Told::Committed,
                        Err(e) if e.class() == ErrorClass::Disconnect => Told::Unknown,
                        Err(_) => Told::Absent,
                    };
                    self.told.push((vec![tag], told));
                }
            }
            Step::Transaction {
                slot,
                writes,
                end,
                kill_at,
            } => {
                if let Some(i) = self.slot(slot) {
                    self.transaction(i, writes, end, kill_at).await?;
                }
            }
            Step::Invalidate(i) => {
                if let Some(i) = self.slot(i) {
                    self.slots[i].invalidate().await;
                }
            }
            Step::SoftInvalidate(i) => {
                if let Some(i) = self.slot(i) {
                    self.slots[i].invalidate_soft();
                }
            }
            Step::Restart => self.faults.restart(),
            Step::Outage => self.faults.outage(),
            Step::Restore => self.faults.restore(),
            Step::Kill(i) => {
                if let Some(id) = self.slot(i).and_then(|i| self.slots[i].held_id()) {
                    self.faults.kill(id);
                }
            }
            Step::Advance(d) => time.advance(d).await,
        }
        Ok(())
    }

    async fn transaction(
        &mut self,
        i: usize,
        writes: u8,
        end: End,
        kill_at: Option<u8>,
    ) -> std::result::Result<(), String> {
        let tags: Vec<String> = (0..writes).map(|_| self.tag()).collect();
        let faults = self.faults;
        let conn = &mut self.slots[i];
        // The transaction borrows the connection: learn its id first.
        let id = match kill_at {
            Some(_) => conn.current().await.ok().map(|(id, _)| id),
            None => None,
        };
        let Ok(mut tx) = conn.begin().await else {
            return Ok(());
        };
        let mut applied = Vec::new();
        let mut failed = Vec::new();
        for (n, tag) in tags.iter().enumerate() {
            if kill_at == Some(n as u8) {
                if let Some(id) = id {
                    faults.kill(id);
                }
            }
            match tx.execute(&write_sql(tag)).await {
                Ok(_) => applied.push(tag.clone()),
                Err(_) => failed.push(tag.clone()),
            }
        }
        let outcome = match end {
            End::Commit => match tx.commit().await {
                Ok(()) => Told::Committed,
                Err(e) if e.kind() == ErrorKind::CommitUnknown => Told::Unknown,
                Err(_) => Told::Absent,
            },
            End::Rollback => {
                let _ = tx.rollback().await;
                Told::Absent
            }
            End::Drop => {
                drop(tx);
                Told::Absent
            }
        };
        if !applied.is_empty() {
            self.told.push((applied, outcome));
        }
        if !failed.is_empty() {
            self.told.push((failed, Told::Absent));
        }
        Ok(())
    }

    /// After the faults stopped: the pool must serve within a bounded
    /// number of checkouts; then every connection it holds is used once, so
    /// the dead ones are noticed. Returns the checkouts recovery took.
    async fn recover(&mut self) -> std::result::Result<usize, String> {
        let bound = self.capacity + 2;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let served = match self.engine.connect().await {
                Ok(mut conn) => conn.execute("SELECT 1").await.is_ok(),
                Err(_) => false,
            };
            if served {
                break;
            }
            if attempts >= bound {
                return Err(format!(
                    "the pool did not serve again within {bound} checkouts after the faults stopped"
                ));
            }
        }
        let mut held = Vec::new();
        for _ in 0..self.capacity {
            if let Ok(mut conn) = self.engine.connect().await {
                if conn.execute("SELECT 1").await.is_err() {
                    // A dead one, now invalidated: the next call reconnects.
                    let _ = conn.execute("SELECT 1").await;
                }
                held.push(conn);
            }
        }
        drop(held);
        Ok(attempts)
    }
}

fn write_sql(tag: &str) -> String {
    format!("INSERT INTO writes (tag, step) VALUES ('{tag}', 1)")
}
