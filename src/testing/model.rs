//! The model-based test: a seeded workload driven through a pool under a
//! fault plan, checked after every step, then checked for recovery and for
//! the data.
//!
//! [`check`] runs one [`FaultPlan`] on one [`Target`] (shell × driver): it
//! arms the plan, derives the workload from the plan's seed, and after
//! every step checks the pool's [`Invariants`] and that no connection was
//! handed out inside a transaction. The workload also checks out when it
//! holds every connection the pool may open: that checkout must wait its
//! full timeout (virtual time on both shells) and fail with a timeout, so
//! a broken capacity rule fails the run instead of hanging it; and its
//! kill steps kill a connection the fault layer sees alive, held or idle.
//! Once the workload is over the faults
//! stop, and the pool must serve again within a bounded number of
//! checkouts; then the journal invariants must hold, and the data must be
//! what the callers were told: every write whose commit succeeded is
//! present, every write rolled back or never committed is absent, and a
//! transaction whose commit ended [`ErrorKind::CommitUnknown`] is present
//! or absent as a whole.
//!
//! Seed and plan are the whole case: a failure prints the plan as TOML;
//! saved as `fixtures/scenarios/NAME.toml` in the crate under test it
//! replays with [`replay`]`("NAME")`.
//!
//! # Scenarios
//!
//! [`scenario`] and [`replay`] find a scenario by name in two places, in
//! this order:
//!
//! 1. the crate under test's own `fixtures/scenarios/NAME.toml`, under
//!    `CARGO_MANIFEST_DIR` as cargo sets it when it runs the tests (the
//!    current directory when it is not set);
//! 2. the scenarios dbfault ships, compiled into it, so they replay from
//!    any crate: `commit_cut_after_apply`, `connect_storm`, `flaky_writes`
//!    (see [`SHIPPED_SCENARIOS`]).
//!
//! A file of the crate under test shadows a shipped scenario of the same
//! name. A name found in neither place is an
//! [`ErrorKind::Scenario`] error naming it and
//! listing the scenarios there are.

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

/// The names of the scenarios dbfault ships (its `fixtures/scenarios/`),
/// which [`scenario`] and [`replay`] find from any crate.
pub const SHIPPED_SCENARIOS: [&str; 3] = ["commit_cut_after_apply", "connect_storm", "flaky_writes"];

/// The text of each of [`SHIPPED_SCENARIOS`], in the same order.
const SHIPPED_TEXT: [&str; 3] = [
    include_str!("../../fixtures/scenarios/commit_cut_after_apply.toml"),
    include_str!("../../fixtures/scenarios/connect_storm.toml"),
    include_str!("../../fixtures/scenarios/flaky_writes.toml"),
];

/// How many steps a replayed scenario runs.
pub const DEFAULT_STEPS: usize = 64;

/// One step of a workload. Slot numbers pick among the engine
/// connections the workload holds (modulo how many there are; a step on
/// no slot is skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Check out an engine connection into a new slot. When the workload
    /// already holds `size + max_overflow` connections, the checkout must
    /// wait its full timeout and fail with a timeout error.
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
    /// Kill one of the connections the fault layer sees alive (the n-th,
    /// modulo how many there are), held or idle, on the server side; the
    /// kill must take effect.
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
    /// Checkouts that found every connection held, waited their full
    /// timeout, and failed with a timeout error.
    pub timeouts: usize,
    /// Connections killed by `Kill` steps.
    pub kills: usize,
}

/// A failing run: what broke, where, and how to replay it.
#[derive(Debug, Clone)]
pub struct ModelFailure {
    target: Option<Target>,
    step: Option<(usize, Step)>,
    what: String,
    // Boxed, to keep `Result<_, ModelFailure>` small.
    plan: Option<Box<FaultPlan>>,
    timeline: String,
    error: Option<Error>,
}

impl ModelFailure {
    fn new(what: impl Into<String>) -> Self {
        ModelFailure {
            target: None,
            step: None,
            what: what.into(),
            plan: None,
            timeline: String::new(),
            error: None,
        }
    }

    /// A failure to start: `error` says why.
    fn from_error(error: Error) -> Self {
        let mut failure = ModelFailure::new(error.to_string());
        failure.error = Some(error);
        failure
    }

    /// What broke.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// The error behind the failure, when one of this crate's calls failed
    /// rather than a model check: an
    /// [`ErrorKind::Scenario`] error when
    /// [`replay`] finds no such scenario or cannot read it, the setup
    /// error when a database or pool could not be built. Also the
    /// failure's [`source`](std::error::Error::source).
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// The plan that produced it, if the run got that far.
    pub fn plan(&self) -> Option<&FaultPlan> {
        self.plan.as_deref()
    }
}

impl fmt::Display for ModelFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.error.is_some() && self.target.is_none() {
            // No model ran: the error says it all.
            return writeln!(f, "{}", self.what);
        }
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

impl std::error::Error for ModelFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// How long a checkout waits: virtual time, on both shells.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(30);

/// The pool settings a seed stands for: size 2, overflow 1, and recycle,
/// pre-ping and LIFO each on or off by a bit of the seed.
pub fn pool_config(seed: u64) -> PoolConfig {
    let mut cfg = PoolConfig::new()
        .size(2)
        .max_overflow(1)
        .timeout(CHECKOUT_TIMEOUT);
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
    if let Some(failure) = refuse_hang(plan) {
        return Err(failure);
    }
    let cfg = pool_config(plan.seed());
    let result = match target {
        Target::ThreadsMock => {
            let server = MockServer::new();
            on_threads(
                FaultyDriver::new(server.driver()),
                Data::Mock(server),
                cfg,
                plan,
                workload,
            )
        }
        #[cfg(feature = "sqlite")]
        Target::ThreadsSqlite => {
            let db = super::fresh_database().map_err(config_failure)?;
            on_threads(
                FaultyDriver::new(db.clone()),
                Data::Sqlite(db),
                cfg,
                plan,
                workload,
            )
        }
        #[cfg(feature = "tokio")]
        Target::TokioMock => {
            let server = MockServer::new();
            on_tokio(
                FaultyDriver::new(server.async_driver()),
                Data::Mock(server),
                cfg,
                plan,
                workload,
            )
        }
        #[cfg(all(feature = "tokio", feature = "sqlite"))]
        Target::TokioSqlite => {
            let db = super::fresh_database().map_err(config_failure)?;
            on_tokio(
                FaultyDriver::new(crate::Blocking::new(db.clone())),
                Data::Sqlite(db),
                cfg,
                plan,
                workload,
            )
        }
    };
    result.map_err(|mut failure| {
        failure.target = Some(target);
        failure.plan = Some(Box::new(plan.clone()));
        failure
    })
}

/// A shell to run the model on PostgreSQL with ([`check_postgres`]).
#[cfg(feature = "postgres")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PgTarget {
    /// `Pool` over `PgDriver::faulty()`.
    Threads,
    /// `AsyncPool` over `AsyncPgDriver::faulty()`.
    #[cfg(feature = "tokio")]
    Tokio,
}

/// Runs `plan` with a workload of `steps` steps on the PostgreSQL server
/// at `url`, through the shell of `target`: in a fresh schema holding the
/// fixture tables ([`PgSchema`](super::PgSchema), dropped afterwards),
/// with the server-side steps (kill, restart, outage) done by the server
/// (`pg_terminate_backend`, see [`PgDriver::faulty`](crate::PgDriver::faulty)).
/// The checks are [`check`]'s.
///
/// # Errors
///
/// As [`check`]; a server that cannot be reached, or a schema that cannot
/// be made, is a failure saying so (its [`error`](ModelFailure::error)).
#[cfg(feature = "postgres")]
pub fn check_postgres(
    url: &str,
    target: PgTarget,
    plan: &FaultPlan,
    steps: usize,
) -> std::result::Result<Report, ModelFailure> {
    if let Some(failure) = refuse_hang(plan) {
        return Err(failure);
    }
    let workload = Workload::generate(plan.seed(), steps);
    let cfg = pool_config(plan.seed());
    let schema = super::PgSchema::new(url, true).map_err(config_failure)?;
    let result = match target {
        PgTarget::Threads => on_threads(
            schema.driver().faulty(),
            Data::Postgres(&schema),
            cfg,
            plan,
            &workload,
        ),
        #[cfg(feature = "tokio")]
        PgTarget::Tokio => on_tokio(
            schema.async_driver().faulty(),
            Data::Postgres(&schema),
            cfg,
            plan,
            &workload,
        ),
    };
    result.map_err(|mut failure| {
        failure.plan = Some(Box::new(plan.clone()));
        failure.what = format!("on PostgreSQL ({target:?} shell): {}", failure.what);
        failure
    })
}

/// The failure of a plan with a `hang` rule, which the model cannot run.
pub(crate) fn refuse_hang(plan: &FaultPlan) -> Option<ModelFailure> {
    let rule = plan
        .rules()
        .iter()
        .find(|r| matches!(r.get_action(), Action::Hang))?;
    let mut failure = ModelFailure::new(format!(
        "the model cannot run `hang` rules (nothing would disarm {rule}); use `delay`"
    ));
    failure.plan = Some(Box::new(plan.clone()));
    Some(failure)
}

/// Replays the scenario `name` on every target, [`DEFAULT_STEPS`] steps
/// each: the crate under test's `fixtures/scenarios/NAME.toml`, else the
/// shipped scenario of that name (see [Scenarios](self#scenarios)).
///
/// # Errors
///
/// The first target that fails. If no model ran, [`ModelFailure::error`]
/// says why: an [`ErrorKind::Scenario`] error
/// when no scenario has that name (listing those there are) or the
/// scenario does not parse.
pub fn replay(name: &str) -> std::result::Result<Vec<Report>, ModelFailure> {
    let plan = scenario(name).map_err(ModelFailure::from_error)?;
    replay_plan(&plan)
}

/// Replays a scenario file on every target.
///
/// # Errors
///
/// As [`replay`].
pub fn replay_file(path: impl AsRef<Path>) -> std::result::Result<Vec<Report>, ModelFailure> {
    let plan = FaultPlan::from_file(path.as_ref()).map_err(ModelFailure::from_error)?;
    replay_plan(&plan)
}

fn replay_plan(plan: &FaultPlan) -> std::result::Result<Vec<Report>, ModelFailure> {
    Target::all()
        .into_iter()
        .map(|target| check(target, plan, DEFAULT_STEPS))
        .collect()
}

/// The scenario `name`: the crate under test's
/// `fixtures/scenarios/NAME.toml`, else the shipped scenario of that name
/// (see [Scenarios](self#scenarios)).
///
/// # Errors
///
/// [`ErrorKind::Scenario`]: `name` is not a
/// plain file stem; no scenario has that name (the message lists those
/// there are); the scenario file cannot be read or does not parse (with
/// its [`line`](Error::line) and [`field`](Error::field)).
pub fn scenario(name: &str) -> crate::Result<FaultPlan> {
    let root = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from("."), PathBuf::from);
    scenario_in(&root.join("fixtures").join("scenarios"), name)
}

/// [`scenario`], with the crate under test's scenarios in `dir`.
fn scenario_in(dir: &Path, name: &str) -> crate::Result<FaultPlan> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') || name.ends_with(".toml") {
        return Err(Error::scenario(
            None,
            "",
            format!("`{name}` is not a scenario name: give the file stem, such as `commit_cut_after_apply`"),
        ));
    }
    let path = dir.join(format!("{name}.toml"));
    if path.is_file() {
        return FaultPlan::from_file(&path);
    }
    if let Some(i) = SHIPPED_SCENARIOS.iter().position(|s| *s == name) {
        return FaultPlan::from_toml(SHIPPED_TEXT[i])
            .map_err(|e| e.context(format!("dbfault's shipped scenario `{name}`")));
    }
    let own = own_scenarios(dir);
    let own = if own.is_empty() {
        format!("none in {}", dir.display())
    } else {
        format!("{} in {}", own.join(", "), dir.display())
    };
    Err(Error::scenario(
        None,
        "",
        format!(
            "no scenario `{name}`: there is no {} and dbfault ships none by that name; \
             available: {own}; shipped with dbfault: {}",
            path.display(),
            SHIPPED_SCENARIOS.join(", ")
        ),
    ))
}

/// The names of the `*.toml` files in `dir`, sorted; none if it cannot be
/// read.
pub(crate) fn own_scenarios(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            if path.extension()? != "toml" || !path.is_file() {
                return None;
            }
            Some(path.file_stem()?.to_str()?.to_owned())
        })
        .collect();
    names.sort();
    names
}

/// The threaded shell over `driver` (under the fault layer), on a manual
/// clock.
fn on_threads<D: Driver>(
    driver: FaultyDriver<D>,
    data: Data<'_>,
    cfg: PoolConfig,
    plan: &FaultPlan,
    workload: &Workload,
) -> std::result::Result<Report, ModelFailure> {
    let clock = Clock::manual();
    let journal = Journal::with_clock(clock.clone());
    let driver = driver.with_journal(journal.clone());
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

/// The tokio shell over `driver` (under the fault layer), on a paused
/// current-thread runtime.
#[cfg(feature = "tokio")]
fn on_tokio<D: crate::AsyncDriver>(
    driver: FaultyDriver<D>,
    data: Data<'_>,
    cfg: PoolConfig,
    plan: &FaultPlan,
    workload: &Workload,
) -> std::result::Result<Report, ModelFailure> {
    paused_runtime()?.block_on(async {
        let journal = Journal::with_clock(Clock::tokio());
        let driver = driver.with_journal(journal.clone());
        let faults = driver.faults();
        let pool = crate::AsyncPool::new(driver, cfg.journal(journal.clone())).map_err(config_failure)?;
        run(&pool, &faults, &journal, &data, Time::Tokio, plan, workload).await
    })
}

fn config_failure(e: Error) -> ModelFailure {
    let mut failure = ModelFailure::new(format!("setting up: {e}"));
    failure.error = Some(e);
    failure
}

#[cfg(feature = "tokio")]
fn paused_runtime() -> std::result::Result<tokio::runtime::Runtime, ModelFailure> {
    // I/O too: the PostgreSQL driver's connections run on it.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| ModelFailure::new(format!("building a runtime: {e}")))
}

/// Where the data is checked, outside the pool.
enum Data<'a> {
    Mock(MockServer),
    #[cfg(feature = "sqlite")]
    Sqlite(crate::SqliteDriver),
    #[cfg(feature = "postgres")]
    Postgres(&'a super::PgSchema),
    #[cfg(not(feature = "postgres"))]
    #[allow(dead_code)]
    Borrowed(std::marker::PhantomData<&'a ()>),
}

impl Data<'_> {
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
            #[cfg(feature = "postgres")]
            Data::Postgres(schema) => {
                let rows = schema
                    .query("SELECT count(*) FROM writes WHERE tag = $1", &[tag.into()])
                    .map_err(|e| e.to_string())?;
                Ok(rows.first().and_then(|r| r.get(0)).and_then(crate::Value::as_i64) == Some(1))
            }
            #[cfg(not(feature = "postgres"))]
            Data::Borrowed(_) => Ok(false),
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

    /// A checkout on a pool whose every connection the workload holds: it
    /// must wait its full timeout and fail with a timeout error. Tokio's
    /// paused clock moves by itself once every task waits; the threaded
    /// shell's manual clock is moved by this thread, once the checkout is
    /// seen waiting, from a checkout thread it waits on for a bounded real
    /// time, so a checkout that never returns fails the run instead of
    /// hanging it.
    async fn exhausted_checkout<P: AnyPool>(
        &self,
        pool: &P,
        engine: &P::Engine,
    ) -> std::result::Result<crate::Result<<P::Engine as AnyEngine>::Conn>, String> {
        match self {
            #[cfg(feature = "tokio")]
            Time::Tokio => Ok(engine.connect().await),
            Time::Manual(clock) => {
                const REACH: Duration = Duration::from_secs(10);
                let (tx, rx) = std::sync::mpsc::channel();
                let engine = engine.clone();
                std::thread::spawn(move || {
                    // The run may have given up on this checkout.
                    let _ = tx.send(block_on(engine.connect()));
                });
                let started = std::time::Instant::now();
                let mut advanced = false;
                loop {
                    match rx.recv_timeout(Duration::from_micros(200)) {
                        Ok(result) => return Ok(result),
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                            return Err("the checkout thread panicked".to_owned());
                        }
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    }
                    if started.elapsed() > REACH {
                        return Err(format!(
                            "a checkout on an exhausted pool did not return within {REACH:?} of real time \
                             after the clock passed its timeout"
                        ));
                    }
                    if !advanced && pool.status().waiting > 0 {
                        clock.advance(CHECKOUT_TIMEOUT);
                        advanced = true;
                    }
                }
            }
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
    pool: &'a P,
    faults: &'a Faults,
    engine: P::Engine,
    slots: Vec<<P::Engine as AnyEngine>::Conn>,
    told: Vec<(Vec<String>, Told)>,
    next_tag: u64,
    inv: Invariants,
    capacity: usize,
    timeouts: usize,
    kills: usize,
}

async fn run<P: AnyPool>(
    pool: &P,
    faults: &Faults,
    journal: &Journal,
    data: &Data<'_>,
    time: Time,
    plan: &FaultPlan,
    workload: &Workload,
) -> std::result::Result<Report, ModelFailure> {
    let status = pool.status();
    let mut run: Run<'_, P> = Run {
        pool,
        faults,
        engine: pool.engine(),
        slots: Vec::new(),
        told: Vec::new(),
        next_tag: 0,
        inv: Invariants::new(),
        capacity: status.limit().unwrap_or(usize::MAX),
        timeouts: 0,
        kills: 0,
    };
    let fail = |what: String, step: Option<(usize, Step)>| ModelFailure {
        target: None,
        step,
        what,
        plan: None,
        timeline: journal.timeline(),
        error: None,
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
        timeouts: run.timeouts,
        kills: run.kills,
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
            Step::Checkout if self.slots.len() >= self.capacity => {
                if self.held() < self.capacity {
                    // An invalidated slot gave its connection back (or the
                    // tokio shell is still resetting it, on a task of its
                    // own, for whoever waits next).
                    return Ok(());
                }
                match time.exhausted_checkout(self.pool, &self.engine).await? {
                    Ok(conn) => {
                        return Err(format!(
                            "a checkout got {conn:?} while the workload held all {} connections",
                            self.capacity
                        ));
                    }
                    Err(e) if e.kind() == ErrorKind::Timeout => self.timeouts += 1,
                    Err(e) => {
                        return Err(format!(
                            "a checkout on an exhausted pool failed with {e}, not a timeout"
                        ));
                    }
                }
            }
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
                let live = self.faults.live_connections();
                if !live.is_empty() {
                    let id = live[i % live.len()];
                    if !self.faults.kill(id) {
                        return Err(format!("killing {id}, alive a moment ago, had no effect"));
                    }
                    self.kills += 1;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_scenarios_are_the_fixture_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios");
        assert_eq!(own_scenarios(&dir), SHIPPED_SCENARIOS);
        for (name, text) in SHIPPED_SCENARIOS.iter().zip(SHIPPED_TEXT) {
            let on_disk = std::fs::read_to_string(dir.join(format!("{name}.toml"))).unwrap();
            assert_eq!(text, on_disk, "{name}");
            let plan = FaultPlan::from_toml(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!plan.rules().is_empty(), "{name}");
        }
    }

    #[test]
    fn shipped_scenarios_load_from_a_crate_without_them() {
        let dir = tempfile::tempdir().unwrap();
        let scenarios = dir.path().join("fixtures/scenarios");
        for name in SHIPPED_SCENARIOS {
            let plan = scenario_in(&scenarios, name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!plan.rules().is_empty(), "{name}");
        }
    }

    #[test]
    fn the_crates_own_scenarios_come_first() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mine.toml"),
            "seed = 3\n[[rule]]\nop = \"ping\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("connect_storm.toml"), "seed = 4\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a scenario").unwrap();
        assert_eq!(scenario_in(dir.path(), "mine").unwrap().seed(), 3);
        let shadowed = scenario_in(dir.path(), "connect_storm").unwrap();
        assert_eq!((shadowed.seed(), shadowed.rules().len()), (4, 0));
        assert_eq!(scenario_in(dir.path(), "flaky_writes").unwrap().seed(), 42);

        let err = scenario_in(dir.path(), "missing").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Scenario);
        assert_eq!((err.line(), err.field()), (None, None));
        let msg = err.to_string();
        assert!(msg.contains("no scenario `missing`"), "{msg}");
        assert!(msg.contains("connect_storm, mine in "), "{msg}");
        assert!(!msg.contains("notes"), "{msg}");
        for name in SHIPPED_SCENARIOS {
            assert!(msg.contains(name), "{name} not listed: {msg}");
        }
    }

    #[test]
    fn a_broken_own_scenario_names_file_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("bad.toml"),
            "seed = 1\n[[rule]]\nop = \"ping\"\ntimes = 0\n",
        )
        .unwrap();
        let err = scenario_in(dir.path(), "bad").unwrap_err();
        assert_eq!((err.line(), err.field()), (Some(4), Some("times")), "{err}");
        assert!(err.to_string().contains("bad.toml"), "{err}");
    }

    #[test]
    fn a_path_is_not_a_scenario_name() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "../secrets", "a/b", "a\\b", "connect_storm.toml", ".hidden"] {
            let err = scenario_in(dir.path(), bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Scenario, "{bad}");
            assert!(err.to_string().contains("not a scenario name"), "{bad}: {err}");
        }
    }
}
