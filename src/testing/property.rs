//! Property tests over your own workload (feature `proptest`): dbfault
//! draws fault plans, runs your code under each, and checks your
//! invariant and the pool's.
//!
//! You give three things:
//!
//! - **the system under test**: your schema for one of dbfault's pools
//!   ([`sqlite`](Property::sqlite), [`postgres`](Property::postgres),
//!   [`mock`](Property::mock), and their `async_` forms), or a function
//!   that builds your own pool from a [`Faults`] handle, such as an r2d2
//!   pool over [`FaultyManager`](crate::FaultyManager)
//!   ([`with_faults`](Property::with_faults)), or a bb8 or deadpool pool
//!   over it (`async_with_faults`, feature `tokio`);
//! - **the workload**: your code, run once per case. Errors from injected
//!   faults are expected: what the workload returns is ignored, except in
//!   the first case, which runs with no fault armed and must succeed (so a
//!   typo in the SQL is not mistaken for a fault);
//! - **the invariant**: what must hold afterwards, such as "the total
//!   balance is conserved". It runs with every fault disarmed.
//!
//! For each case dbfault builds a fresh system (a fresh database for its
//! own pools), arms the plan, runs the workload, and checks, in order:
//! the pool's [`Invariants`] while the plan is armed (dbfault's pools);
//! then, with every rule disarmed and any outage over, that the pool
//! recovers (a fresh checkout works within a few tries, for every
//! target); that every connection the pool kept was answered for and
//! counted (dbfault's pools, [`Invariants::check_quiescent`]); and last
//! your invariant.
//!
//! # Order of the cases
//!
//! 1. one case with no fault armed: the workload must return `Ok`, and
//!    every check must pass;
//! 2. every plan saved in the crate under test's `fixtures/scenarios/*.toml`
//!    (under `CARGO_MANIFEST_DIR`; another directory with
//!    [`scenarios`](Property::scenarios)), in name order;
//! 3. [`cases`](Property::cases) plans drawn by
//!    [`strategies::property_plan`](super::strategies::property_plan),
//!    which draws every operation, every action but `hang`, and bounds
//!    every rule to at most three hits, so nothing drawn can hang a test.
//!
//! A failing drawn plan is shrunk by proptest to the smallest plan that
//! still fails. The [`PropertyFailure`] prints what failed, that plan's
//! seed and TOML, the run's seed, and how to save the plan as
//! `fixtures/scenarios/NAME.toml` so that every later run replays it
//! first.
//!
//! # Time
//!
//! Nothing a case does waits for real time because of a fault: the sync
//! forms give the fault layer a manual clock (a drawn `delay` is an
//! instant advance), and the async forms run on a paused current-thread
//! tokio runtime, where a workload still waiting after an hour of virtual
//! time fails the case instead of hanging it (on PostgreSQL, whose
//! connections do real I/O, the runtime's clock runs, delays stay
//! instant, and the bound is a minute). An r2d2 pool of your own keeps its
//! own timeouts in real time: give it a short one. bb8's and deadpool's
//! timeouts run on tokio's clock, so under `async_with_faults` they pass
//! in virtual time and need no change.
//!
//! # Settings from the environment
//!
//! `DBFAULT_PROPERTY_CASES` overrides [`cases`](Property::cases) (a soak
//! in CI), and `DBFAULT_PROPERTY_SEED` the run's seed (to draw the same
//! plans again).

use std::cell::Cell;
use std::fmt;
#[cfg(feature = "tokio")]
use std::future::Future;
use std::path::{Path, PathBuf};
#[cfg(feature = "tokio")]
use std::time::Duration;

use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};

use super::Invariants;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use super::Schema;
use crate::{
    Clock, Driver, Engine, Error, FaultPlan, Faults, FaultyDriver, Journal, MockDriver, MockServer, Pool,
    PoolConfig,
};

/// The environment variable that overrides [`Property::cases`].
pub const CASES_VAR: &str = "DBFAULT_PROPERTY_CASES";
/// The environment variable that sets the run's seed.
pub const SEED_VAR: &str = "DBFAULT_PROPERTY_SEED";
/// How many plans a property draws unless told.
pub const DEFAULT_CASES: u32 = 64;
/// How many checkouts the pool gets to serve again once the faults stop.
const RECOVERY_TRIES: usize = 5;
/// How long, in virtual time, an async workload or invariant may take.
#[cfg(feature = "tokio")]
const VIRTUAL_LIMIT: Duration = Duration::from_secs(3600);
/// How long, in real time, an async workload or invariant doing real I/O
/// (PostgreSQL) may take.
#[cfg(feature = "tokio")]
const REAL_LIMIT: Duration = Duration::from_secs(60);

/// A property test over your own workload: how many plans to draw, from
/// which seed, which saved plans to replay first, and the pool settings
/// of dbfault's own pools. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Property {
    cases: u32,
    seed: Option<u64>,
    scenarios: Option<PathBuf>,
    config: PoolConfig,
}

impl Default for Property {
    fn default() -> Self {
        Property::new()
    }
}

/// What a passing property did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PropertyReport {
    /// Plans run: the case without faults, the saved ones and the drawn
    /// ones.
    pub cases: u32,
    /// The saved plans replayed, by file name.
    pub saved: Vec<String>,
    /// Faults fired over every case.
    pub faults: u64,
    /// The run's seed (set `DBFAULT_PROPERTY_SEED` to it to draw the same
    /// plans).
    pub seed: u64,
}

/// A failing property: what failed, under which plan, and how to replay
/// it. Its `Display` is the message to print.
#[derive(Debug, Clone)]
pub struct PropertyFailure {
    what: String,
    plan: Option<FaultPlan>,
    saved: Option<PathBuf>,
    seed: Option<u64>,
    error: Option<Error>,
}

impl PropertyFailure {
    fn new(what: impl Into<String>) -> Self {
        PropertyFailure {
            what: what.into(),
            plan: None,
            saved: None,
            seed: None,
            error: None,
        }
    }

    fn from_error(error: Error) -> Self {
        let mut failure = PropertyFailure::new(error.to_string());
        failure.error = Some(error);
        failure
    }

    /// What failed: the check and its message (for a failure under a
    /// plan, that of the smallest plan found).
    pub fn what(&self) -> &str {
        &self.what
    }

    /// The plan it failed under: the smallest one found for a drawn plan,
    /// the file's for a saved one; `None` for the case without faults or a
    /// set-up error.
    pub fn plan(&self) -> Option<&FaultPlan> {
        self.plan.as_ref()
    }

    /// The saved plan's file, when a saved plan failed.
    pub fn saved(&self) -> Option<&Path> {
        self.saved.as_deref()
    }

    /// The run's seed, when a drawn plan failed.
    pub fn run_seed(&self) -> Option<u64> {
        self.seed
    }

    /// The error behind a failure to start (a saved plan that does not
    /// parse, a bad environment variable), also the failure's `source`.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }
}

impl fmt::Display for PropertyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.saved, &self.plan) {
            (Some(path), _) => writeln!(f, "property failed under the saved plan {}:", path.display())?,
            (None, Some(_)) => writeln!(f, "property failed under a drawn fault plan:")?,
            (None, None) => writeln!(f, "property failed:")?,
        }
        writeln!(f, "{}", self.what.trim_end())?;
        if let (None, Some(plan)) = (&self.saved, &self.plan) {
            writeln!(
                f,
                "\nThe smallest failing plan has seed {}; the run's seed is {} ({SEED_VAR}={} draws the same \
                 plans). Save the plan as fixtures/scenarios/NAME.toml: every run replays the saved plans \
                 first.\n\n{}",
                plan.seed(),
                self.seed.unwrap_or_default(),
                self.seed.unwrap_or_default(),
                plan.to_toml()
            )?;
        } else if let Some(plan) = &self.plan {
            writeln!(f, "\nseed {} and plan:\n\n{}", plan.seed(), plan.to_toml())?;
        }
        Ok(())
    }
}

impl std::error::Error for PropertyFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A pool of your own that can tell whether it serves: the recovery
/// check of [`Property::with_faults`]. Implemented for r2d2's pool
/// (feature `r2d2`) and dbfault's [`Engine`]; implement it for the type
/// your build function returns (an application struct holding its pool)
/// by checking out one connection and using it.
pub trait Recovers {
    /// Checks out a connection and uses it once.
    ///
    /// # Errors
    ///
    /// Why the pool did not serve.
    fn fresh_checkout(&self) -> Result<(), String>;
}

#[cfg(feature = "r2d2")]
impl<M: r2d2::ManageConnection> Recovers for r2d2::Pool<M> {
    /// r2d2 validates the connection at checkout (unless turned off).
    fn fresh_checkout(&self) -> Result<(), String> {
        self.get().map(drop).map_err(|e| e.to_string())
    }
}

impl<D: Driver> Recovers for Engine<D> {
    fn fresh_checkout(&self) -> Result<(), String> {
        let mut conn = self.connect().map_err(|e| e.to_string())?;
        conn.execute("SELECT 1", &[]).map(drop).map_err(|e| e.to_string())
    }
}

/// The async form of [`Recovers`], the recovery check of
/// [`Property::async_with_faults`]: a fresh checkout that works once the
/// plan is disarmed. Implemented for bb8's pool (feature `bb8`),
/// deadpool's managed pool (feature `deadpool`) and dbfault's
/// [`AsyncEngine`](crate::AsyncEngine); implement it for the type your
/// build function returns (an application struct holding its pool) by
/// checking out one connection and using it. An `async fn` in your impl
/// is fine: the property runs it on a current-thread runtime, so the
/// future need not be `Send`.
#[cfg(feature = "tokio")]
pub trait AsyncRecovers {
    /// Checks out a connection and uses it once.
    ///
    /// # Errors
    ///
    /// Why the pool did not serve.
    fn fresh_checkout(&self) -> impl Future<Output = Result<(), String>>;
}

#[cfg(feature = "bb8")]
impl<M> AsyncRecovers for bb8::Pool<M>
where
    M: bb8::ManageConnection,
    M::Error: fmt::Display,
{
    /// bb8 validates the connection at checkout (unless
    /// `test_on_check_out` is off).
    async fn fresh_checkout(&self) -> Result<(), String> {
        match self.get().await {
            Ok(_) => Ok(()),
            Err(bb8::RunError::User(e)) => Err(e.to_string()),
            Err(bb8::RunError::TimedOut) => Err("bb8 timed out (its connection_timeout) waiting for a \
                                                 connection"
                .to_owned()),
        }
    }
}

#[cfg(feature = "deadpool")]
impl<M, W> AsyncRecovers for deadpool::managed::Pool<M, W>
where
    M: deadpool::managed::Manager,
    M::Error: fmt::Display,
    W: From<deadpool::managed::Object<M>>,
{
    /// deadpool recycles (validates) an idle connection at checkout.
    async fn fresh_checkout(&self) -> Result<(), String> {
        self.get().await.map(drop).map_err(|e| e.to_string())
    }
}

#[cfg(feature = "tokio")]
impl<D: crate::AsyncDriver> AsyncRecovers for crate::AsyncEngine<D> {
    async fn fresh_checkout(&self) -> Result<(), String> {
        let mut conn = self.connect().await.map_err(|e| e.to_string())?;
        conn.execute("SELECT 1", &[])
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// How one case ended short of passing.
enum Stop {
    /// A check failed.
    Fail(String),
    /// The target cannot run this plan (a rule it refuses): not a case.
    Reject(String),
}

type CaseResult = Result<u64, Stop>;

fn fail(what: impl fmt::Display) -> Stop {
    Stop::Fail(what.to_string())
}

/// The message of a failed check, with the journal's timeline.
fn with_timeline(what: impl fmt::Display, journal: &Journal) -> Stop {
    Stop::Fail(format!("{what}\n\n{}", journal.timeline()))
}

/// What the workload returned: an error fails the case without faults
/// only (so a typo in the SQL is not taken for a fault).
fn check_ran<E: fmt::Display>(
    plan: Option<&FaultPlan>,
    ran: Result<(), E>,
    journal: &Journal,
) -> Result<(), Stop> {
    match ran {
        Err(e) if plan.is_none() => Err(with_timeline(
            format!("the workload failed with no fault armed: {e}"),
            journal,
        )),
        _ => Ok(()),
    }
}

/// The user's invariant failed.
fn invariant_failed(e: impl fmt::Display, journal: &Journal) -> Stop {
    with_timeline(format!("your invariant: {e}"), journal)
}

impl Property {
    /// [`DEFAULT_CASES`] drawn plans, a random seed, the crate under
    /// test's saved plans, and dbfault's default pool settings.
    pub fn new() -> Self {
        Property {
            cases: DEFAULT_CASES,
            seed: None,
            scenarios: None,
            config: PoolConfig::new(),
        }
    }

    /// How many plans to draw (after the case without faults and the
    /// saved plans). `DBFAULT_PROPERTY_CASES` overrides it.
    #[must_use]
    pub fn cases(mut self, n: u32) -> Self {
        self.cases = n;
        self
    }

    /// The run's seed: the same seed draws the same plans.
    /// `DBFAULT_PROPERTY_SEED` overrides it. Default: random.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Where the saved plans are (`*.toml`). Default: `fixtures/scenarios`
    /// of the crate under test (`CARGO_MANIFEST_DIR`, else the current
    /// directory). A directory that does not exist holds none.
    #[must_use]
    pub fn scenarios(mut self, dir: impl Into<PathBuf>) -> Self {
        self.scenarios = Some(dir.into());
        self
    }

    /// The settings of dbfault's pool in the `sqlite`, `postgres` and
    /// `mock` forms (default: [`PoolConfig::new`]; the journal is the
    /// property's own).
    #[must_use]
    pub fn pool(mut self, config: PoolConfig) -> Self {
        self.config = config;
        self
    }

    /// Runs the property over an [`Engine`] on a fresh SQLite database
    /// holding `schema`, for each case.
    ///
    /// # Errors
    ///
    /// The first failing case (see [`PropertyFailure`]); a schema that
    /// cannot be loaded fails the first case, naming the script and the
    /// statement.
    #[cfg(feature = "sqlite")]
    pub fn sqlite<W, I, E1, E2>(
        &self,
        schema: &Schema,
        workload: W,
        invariant: I,
    ) -> Result<PropertyReport, PropertyFailure>
    where
        W: Fn(&Engine<FaultyDriver<crate::SqliteDriver>>) -> Result<(), E1>,
        I: Fn(&Engine<FaultyDriver<crate::SqliteDriver>>) -> Result<(), E2>,
        E1: fmt::Display,
        E2: fmt::Display,
    {
        self.engine(
            &|| Ok((FaultyDriver::new(schema.sqlite()?), ())),
            &|engine, ()| workload(engine).map_err(|e| e.to_string()),
            &|engine, ()| invariant(engine).map_err(|e| e.to_string()),
        )
    }

    /// Runs the property over an [`Engine`] on a fresh schema holding
    /// `schema` on the PostgreSQL server at `url`, for each case (see
    /// [`PgSchema`](super::PgSchema)); server-side kills terminate real
    /// backends ([`PgDriver::faulty`](crate::PgDriver::faulty)).
    ///
    /// # Errors
    ///
    /// As [`sqlite`](Property::sqlite); a server that cannot be reached
    /// fails the first case saying so.
    #[cfg(feature = "postgres")]
    pub fn postgres<W, I, E1, E2>(
        &self,
        url: &str,
        schema: &Schema,
        workload: W,
        invariant: I,
    ) -> Result<PropertyReport, PropertyFailure>
    where
        W: Fn(&Engine<FaultyDriver<crate::PgDriver>>) -> Result<(), E1>,
        I: Fn(&Engine<FaultyDriver<crate::PgDriver>>) -> Result<(), E2>,
        E1: fmt::Display,
        E2: fmt::Display,
    {
        self.engine(
            &|| {
                let pg = schema.postgres(url)?;
                Ok((pg.driver().faulty(), pg))
            },
            &|engine, _| workload(engine).map_err(|e| e.to_string()),
            &|engine, _| invariant(engine).map_err(|e| e.to_string()),
        )
    }

    /// Runs the property over an [`Engine`] on a fresh permissive
    /// [`MockServer`], for each case. The mock runs no SQL, so it holds no
    /// schema: every statement succeeds (a query returns no row), and the
    /// invariant reads what the server committed
    /// ([`MockServer::committed`]: autocommit statements and those of
    /// committed transactions), such as "every debit was committed with its
    /// credit".
    ///
    /// # Errors
    ///
    /// As [`sqlite`](Property::sqlite).
    pub fn mock<W, I, E1, E2>(&self, workload: W, invariant: I) -> Result<PropertyReport, PropertyFailure>
    where
        W: Fn(&Engine<FaultyDriver<MockDriver>>) -> Result<(), E1>,
        I: Fn(&MockServer) -> Result<(), E2>,
        E1: fmt::Display,
        E2: fmt::Display,
    {
        self.engine(
            &|| {
                let server = MockServer::new();
                Ok((FaultyDriver::new(server.driver()), server))
            },
            &|engine, _| workload(engine).map_err(|e| e.to_string()),
            &|_, server| invariant(server).map_err(|e| e.to_string()),
        )
    }

    /// Runs the property over a system of your own, built afresh for each
    /// case by `build` from the case's [`Faults`] (on a manual clock, with
    /// a journal): an r2d2 pool over
    /// [`FaultyManager::new(manager, faults)`](crate::FaultyManager::new),
    /// or an application struct holding one. After the workload, with the
    /// faults disarmed, [`Recovers::fresh_checkout`] must succeed within a
    /// few tries. A plan the system refuses to arm (an action its
    /// connections cannot carry out, see docs/hooks.md) is not a case:
    /// another is drawn.
    ///
    /// Build the pool with a short checkout timeout (r2d2's
    /// `connection_timeout`): a refused connect makes it wait that long in
    /// real time.
    ///
    /// # Errors
    ///
    /// As [`sqlite`](Property::sqlite); an error from `build` fails the
    /// case.
    pub fn with_faults<S, B, W, I, E0, E1, E2>(
        &self,
        build: B,
        workload: W,
        invariant: I,
    ) -> Result<PropertyReport, PropertyFailure>
    where
        S: Recovers,
        B: Fn(&Faults) -> Result<S, E0>,
        W: Fn(&S) -> Result<(), E1>,
        I: Fn(&S) -> Result<(), E2>,
        E0: fmt::Display,
        E1: fmt::Display,
        E2: fmt::Display,
    {
        self.drive(&|plan| {
            let journal = Journal::with_clock(Clock::manual());
            let faults = Faults::new().with_journal(journal.clone());
            let system = build(&faults).map_err(|e| fail(format!("building the system under test: {e}")))?;
            let armed = arm(&faults, plan)?;
            check_ran(plan, workload(&system), &journal)?;
            let hits = armed.as_ref().map_or(0, crate::PlanGuard::hits);
            stop_faults(&faults, armed);
            serves_again(&system).map_err(|what| with_timeline(what, &journal))?;
            invariant(&system).map_err(|e| invariant_failed(e, &journal))?;
            Ok(hits)
        })
    }

    /// The threaded shell: a fresh driver (and what the invariant needs)
    /// per case from `setup`, then the checks.
    fn engine<D: Driver, G>(
        &self,
        setup: &dyn Fn() -> crate::Result<(FaultyDriver<D>, G)>,
        workload: &SyncBody<'_, D, G>,
        invariant: &SyncBody<'_, D, G>,
    ) -> Result<PropertyReport, PropertyFailure> {
        self.drive(&|plan| {
            let (driver, guard) = setup().map_err(|e| fail(format!("setting up: {e}")))?;
            // The fault layer's clock is the journal's: manual, so a delay
            // is an instant advance. The pool keeps real time.
            let journal = Journal::with_clock(Clock::manual());
            let driver = driver.with_journal(journal.clone());
            let faults = driver.faults();
            let config = self
                .config
                .clone()
                .journal(journal.clone())
                .clock(Clock::system());
            let pool = Pool::new(driver, config).map_err(|e| fail(format!("the pool settings: {e}")))?;
            let engine = Engine::new(pool);
            let armed = arm(&faults, plan)?;
            check_ran(plan, workload(&engine, &guard), &journal)?;
            let hits = armed.as_ref().map_or(0, crate::PlanGuard::hits);
            let mut inv = Invariants::new();
            inv.check_pool(engine.pool(), None)
                .map_err(|v| with_timeline(v.broken().join("; "), &journal))?;
            stop_faults(&faults, armed);
            recover_sync(&engine).map_err(|what| with_timeline(what, &journal))?;
            inv.check_quiescent(engine.pool(), &journal)
                .map_err(|v| with_timeline(v.broken().join("; "), &journal))?;
            invariant(&engine, &guard).map_err(|e| invariant_failed(e, &journal))?;
            Ok(hits)
        })
    }

    /// The run: the case without faults, the saved plans, the drawn ones.
    fn drive(
        &self,
        case: &dyn Fn(Option<&FaultPlan>) -> CaseResult,
    ) -> Result<PropertyReport, PropertyFailure> {
        let cases = env_number(CASES_VAR)?.map_or(self.cases, |n| u32::try_from(n).unwrap_or(u32::MAX));
        let seed = env_number(SEED_VAR)?.or(self.seed).unwrap_or_else(random_seed);
        let mut report = PropertyReport {
            seed,
            ..PropertyReport::default()
        };

        match case(None) {
            Ok(hits) => report.faults += hits,
            Err(Stop::Fail(what) | Stop::Reject(what)) => {
                return Err(PropertyFailure::new(format!("with no fault armed: {what}")));
            }
        }
        report.cases += 1;

        let dir = self.scenarios.clone().unwrap_or_else(default_scenarios);
        for name in super::model::own_scenarios(&dir) {
            let path = dir.join(format!("{name}.toml"));
            let plan = FaultPlan::from_file(&path).map_err(PropertyFailure::from_error)?;
            let saved_failure = |what: String| {
                let mut failure = PropertyFailure::new(what);
                failure.plan = Some(plan.clone());
                failure.saved = Some(path.clone());
                failure
            };
            if let Some(refused) = super::model::refuse_hang(&plan) {
                return Err(saved_failure(format!(
                    "{}: a property test cannot run it",
                    refused.what()
                )));
            }
            match case(Some(&plan)) {
                Ok(hits) => report.faults += hits,
                Err(Stop::Fail(what)) => return Err(saved_failure(what)),
                Err(Stop::Reject(why)) => {
                    return Err(saved_failure(format!(
                        "the system under test refuses this plan: {why}"
                    )));
                }
            }
            report.cases += 1;
            report.saved.push(name);
        }

        let config = Config {
            cases,
            failure_persistence: None,
            rng_seed: RngSeed::Fixed(seed),
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        let hits = Cell::new(0u64);
        let drawn = Cell::new(0u32);
        let result = runner.run(&super::strategies::property_plan(), |plan| {
            match case(Some(&plan)) {
                Ok(n) => {
                    hits.set(hits.get() + n);
                    drawn.set(drawn.get() + 1);
                    Ok(())
                }
                Err(Stop::Fail(what)) => Err(TestCaseError::fail(what)),
                Err(Stop::Reject(why)) => Err(TestCaseError::reject(why)),
            }
        });
        match result {
            Ok(()) => {
                report.faults += hits.get();
                report.cases += cases;
                Ok(report)
            }
            Err(TestError::Fail(reason, plan)) => {
                let mut failure = PropertyFailure::new(reason.message().to_owned());
                failure.plan = Some(plan);
                failure.seed = Some(seed);
                Err(failure)
            }
            Err(TestError::Abort(reason)) => Err(PropertyFailure::new(format!(
                "proptest gave up: {} (the system under test refused too many drawn plans)",
                reason.message()
            ))),
        }
    }
}

#[cfg(feature = "tokio")]
impl Property {
    /// [`sqlite`](Property::sqlite) on the tokio shell: an
    /// [`AsyncEngine`](crate::AsyncEngine) over
    /// [`Blocking`](crate::Blocking)`<SqliteDriver>`, on a paused
    /// current-thread runtime of its own (so call it from a plain
    /// `#[test]`, not from inside a runtime). The workload and the
    /// invariant get a clone of the engine.
    ///
    /// # Errors
    ///
    /// As [`sqlite`](Property::sqlite); a workload or invariant still
    /// running after an hour of virtual time fails the case.
    #[cfg(feature = "sqlite")]
    pub fn async_sqlite<'f, W, Fw, I, Fi, E1, E2>(
        &self,
        schema: &Schema,
        workload: W,
        invariant: I,
    ) -> Result<PropertyReport, PropertyFailure>
    where
        W: Fn(crate::AsyncEngine<FaultyDriver<crate::Blocking<crate::SqliteDriver>>>) -> Fw,
        Fw: Future<Output = Result<(), E1>> + 'f,
        I: Fn(crate::AsyncEngine<FaultyDriver<crate::Blocking<crate::SqliteDriver>>>) -> Fi,
        Fi: Future<Output = Result<(), E2>> + 'f,
        E1: fmt::Display + 'f,
        E2: fmt::Display + 'f,
    {
        self.async_engine(
            false,
            &|| Ok((FaultyDriver::new(crate::Blocking::new(schema.sqlite()?)), ())),
            &|engine, ()| {
                let run = workload(engine);
                Box::pin(async move { run.await.map_err(|e| e.to_string()) })
            },
            &|engine, ()| {
                let run = invariant(engine);
                Box::pin(async move { run.await.map_err(|e| e.to_string()) })
            },
        )
    }

    /// [`postgres`](Property::postgres) on the tokio shell
    /// ([`AsyncPgDriver`](crate::AsyncPgDriver)), on a current-thread
    /// runtime of its own. Its clock runs (the connections do real I/O), so
    /// a workload or invariant still running after a minute fails the case;
    /// the fault layer's delays are instant all the same.
    ///
    /// # Errors
    ///
    /// As [`postgres`](Property::postgres).
    #[cfg(feature = "postgres")]
    pub fn async_postgres<'f, W, Fw, I, Fi, E1, E2>(
        &self,
        url: &str,
        schema: &Schema,
        workload: W,
        invariant: I,
    ) -> Result<PropertyReport, PropertyFailure>
    where
        W: Fn(crate::AsyncEngine<FaultyDriver<crate::AsyncPgDriver>>) -> Fw,
        Fw: Future<Output = Result<(), E1>> + 'f,
        I: Fn(crate::AsyncEngine<FaultyDriver<crate::AsyncPgDriver>>) -> Fi,
        Fi: Future<Output = Result<(), E2>> + 'f,
        E1: fmt::Display + 'f,
        E2: fmt::Display + 'f,
    {
        self.async_engine(
            true,
            &|| {
                let pg = schema.postgres(url)?;
                Ok((pg.async_driver().faulty(), pg))
            },
            &|engine, _| {
                let run = workload(engine);
                Box::pin(async move { run.await.map_err(|e| e.to_string()) })
            },
            &|engine, _| {
                let run = invariant(engine);
                Box::pin(async move { run.await.map_err(|e| e.to_string()) })
            },
        )
    }

    /// [`mock`](Property::mock) on the tokio shell
    /// ([`AsyncMockDriver`](crate::AsyncMockDriver)), as
    /// [`async_sqlite`](Property::async_sqlite); the invariant reads the
    /// server.
    ///
    /// # Errors
    ///
    /// As [`mock`](Property::mock).
    pub fn async_mock<'f, W, Fw, I, E1, E2>(
        &self,
        workload: W,
        invariant: I,
    ) -> Result<PropertyReport, PropertyFailure>
    where
        W: Fn(crate::AsyncEngine<FaultyDriver<crate::AsyncMockDriver>>) -> Fw,
        Fw: Future<Output = Result<(), E1>> + 'f,
        I: Fn(&MockServer) -> Result<(), E2>,
        E1: fmt::Display + 'f,
        E2: fmt::Display + 'f,
    {
        self.async_engine(
            false,
            &|| {
                let server = MockServer::new();
                Ok((FaultyDriver::new(server.async_driver()), server))
            },
            &|engine, _| {
                let run = workload(engine);
                Box::pin(async move { run.await.map_err(|e| e.to_string()) })
            },
            &|_, server| {
                let checked = invariant(server).map_err(|e| e.to_string());
                Box::pin(std::future::ready(checked))
            },
        )
    }

    /// [`with_faults`](Property::with_faults) for an async pool of your
    /// own: a bb8 or deadpool pool over
    /// [`FaultyManager::new(manager, faults)`](crate::FaultyManager::new),
    /// or an application struct holding one. `build`, the workload and
    /// the invariant are async closures (`async |faults: &Faults| ...`,
    /// `async |app: &App| ...`) or `async fn`s taking a reference; after
    /// the workload, with the faults disarmed,
    /// [`AsyncRecovers::fresh_checkout`] must succeed within a few tries.
    ///
    /// Each case runs on a paused current-thread runtime of its own (so
    /// call it from a plain `#[test]`, not from inside a runtime), dropped
    /// at the end of the case with any task your pool left behind. A
    /// build, workload, recovery check or invariant still running after an
    /// hour of virtual time fails the case instead of hanging it.
    ///
    /// Your pool's own timeouts need no shortening: bb8's
    /// `connection_timeout` and deadpool's `timeouts` (with
    /// `Runtime::Tokio1`) are waited on tokio's clock, so on the paused
    /// runtime they pass in virtual time, at once when every task waits.
    /// A checkout that waits for a connection in an outage costs no real
    /// time. bb8 keeps retrying a refused connect in the background until
    /// `connection_timeout` of real time has passed (it measures that with
    /// the system clock), sleeping on tokio's clock between tries; the
    /// tries end once the plan is disarmed, or with the case's runtime.
    /// deadpool without timeouts waits for a free connection for ever,
    /// and the hour bounds that too.
    ///
    /// # Errors
    ///
    /// As [`with_faults`](Property::with_faults); a step still running
    /// after an hour of virtual time fails the case.
    pub fn async_with_faults<S: AsyncRecovers, E0: fmt::Display, E1: fmt::Display, E2: fmt::Display>(
        &self,
        build: impl AsyncFn(&Faults) -> Result<S, E0>,
        workload: impl AsyncFn(&S) -> Result<(), E1>,
        invariant: impl AsyncFn(&S) -> Result<(), E2>,
    ) -> Result<PropertyReport, PropertyFailure> {
        self.drive(&|plan| {
            // A runtime per case: the tasks a pool of the user's own
            // spawns (bb8's connects, its reaper) go with it.
            let shell = Shell::new(false).map_err(fail)?;
            shell.runtime.block_on(async {
                let journal = Journal::with_clock(shell.fault_clock());
                let faults = Faults::new().with_journal(journal.clone());
                let building = "building the system under test";
                let system = shell
                    .within(building, build(&faults), &journal)
                    .await?
                    .map_err(|e| with_timeline(format!("{building}: {e}"), &journal))?;
                let armed = arm(&faults, plan)?;
                let ran = shell.within("the workload", workload(&system), &journal).await?;
                check_ran(plan, ran, &journal)?;
                let hits = armed.as_ref().map_or(0, crate::PlanGuard::hits);
                stop_faults(&faults, armed);
                shell
                    .within("the recovery check", serves_again_async(&system), &journal)
                    .await?
                    .map_err(|what| with_timeline(what, &journal))?;
                shell
                    .within("your invariant", invariant(&system), &journal)
                    .await?
                    .map_err(|e| invariant_failed(e, &journal))?;
                Ok(hits)
            })
        })
    }

    /// The tokio shell: as [`engine`](Property::engine), each case on one
    /// paused runtime.
    #[allow(clippy::type_complexity)]
    fn async_engine<'f, D: crate::AsyncDriver, G>(
        &self,
        real_io: bool,
        setup: &dyn Fn() -> crate::Result<(FaultyDriver<D>, G)>,
        workload: &dyn Fn(crate::AsyncEngine<FaultyDriver<D>>, &G) -> BoxFuture<'f>,
        invariant: &dyn Fn(crate::AsyncEngine<FaultyDriver<D>>, &G) -> BoxFuture<'f>,
    ) -> Result<PropertyReport, PropertyFailure> {
        let shell = Shell::new(real_io).map_err(PropertyFailure::new)?;
        self.drive(&|plan| {
            shell.runtime.block_on(async {
                let (driver, guard) = setup().map_err(|e| fail(format!("setting up: {e}")))?;
                let journal = Journal::with_clock(shell.fault_clock());
                let driver = driver.with_journal(journal.clone());
                let faults = driver.faults();
                let config = self.config.clone().journal(journal.clone()).clock(Clock::tokio());
                let pool = crate::AsyncPool::new(driver, config)
                    .map_err(|e| fail(format!("the pool settings: {e}")))?;
                let engine = crate::AsyncEngine::new(pool);
                let armed = arm(&faults, plan)?;
                let ran = shell
                    .within("the workload", workload(engine.clone(), &guard), &journal)
                    .await?;
                check_ran(plan, ran, &journal)?;
                let hits = armed.as_ref().map_or(0, crate::PlanGuard::hits);
                let mut inv = Invariants::new();
                settle(engine.pool()).await;
                inv.check_pool(engine.pool(), None)
                    .map_err(|v| with_timeline(v.broken().join("; "), &journal))?;
                stop_faults(&faults, armed);
                recover_async(&engine)
                    .await
                    .map_err(|what| with_timeline(what, &journal))?;
                settle(engine.pool()).await;
                inv.check_quiescent(engine.pool(), &journal)
                    .map_err(|v| with_timeline(v.broken().join("; "), &journal))?;
                shell
                    .within("your invariant", invariant(engine.clone(), &guard), &journal)
                    .await?
                    .map_err(|e| invariant_failed(e, &journal))?;
                Ok(hits)
            })
        })
    }
}

/// The runtime of the async forms, and how long a step may take on it.
#[cfg(feature = "tokio")]
struct Shell {
    runtime: tokio::runtime::Runtime,
    real_io: bool,
}

#[cfg(feature = "tokio")]
impl Shell {
    /// A current-thread runtime, its clock paused unless the system does
    /// real I/O (PostgreSQL).
    fn new(real_io: bool) -> Result<Shell, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(!real_io)
            .build()
            .map_err(|e| format!("building a runtime: {e}"))?;
        Ok(Shell { runtime, real_io })
    }

    /// The fault layer's clock: tokio's when paused, else a manual clock
    /// (a delay is an instant advance).
    fn fault_clock(&self) -> Clock {
        if self.real_io {
            Clock::manual()
        } else {
            Clock::tokio()
        }
    }

    /// Runs `step`, failing the case if it still runs after the limit: on
    /// a paused clock an hour, which passes at once when every task waits;
    /// with real I/O the clock runs, and a minute.
    async fn within<T>(
        &self,
        what: &str,
        step: impl Future<Output = T>,
        journal: &Journal,
    ) -> Result<T, Stop> {
        let (limit, of) = if self.real_io {
            (REAL_LIMIT, "real time")
        } else {
            (VIRTUAL_LIMIT, "virtual time")
        };
        tokio::time::timeout(limit, step).await.map_err(|_| {
            with_timeline(
                format!("{what} still ran after {limit:?} of {of}: it waits on something nothing releases"),
                journal,
            )
        })
    }
}

/// A boxed future of a workload or invariant, its error as text.
#[cfg(feature = "tokio")]
type BoxFuture<'a> = std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + 'a>>;

/// A workload or invariant of the threaded shell, its error as text.
type SyncBody<'a, D, G> = dyn Fn(&Engine<FaultyDriver<D>>, &G) -> Result<(), String> + 'a;

/// Arms `plan`, if any; a plan the system refuses rejects the case.
fn arm(faults: &Faults, plan: Option<&FaultPlan>) -> Result<Option<crate::PlanGuard>, Stop> {
    plan.map(|plan| faults.load(plan).map_err(|e| Stop::Reject(e.to_string())))
        .transpose()
}

/// Disarms the plan and ends any outage.
fn stop_faults(faults: &Faults, armed: Option<crate::PlanGuard>) {
    drop(armed);
    faults.disarm_all();
    if faults.is_down() {
        faults.restore();
    }
}

/// After the faults stopped: a fresh checkout works within a few tries.
fn serves_again<S: Recovers>(system: &S) -> Result<(), String> {
    let mut last = String::new();
    if (0..RECOVERY_TRIES).any(|_| system.fresh_checkout().map_err(|e| last = e).is_ok()) {
        Ok(())
    } else {
        Err(not_recovered(&last))
    }
}

/// [`serves_again`] for the async pools.
#[cfg(feature = "tokio")]
async fn serves_again_async<S: AsyncRecovers>(system: &S) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..RECOVERY_TRIES {
        match system.fresh_checkout().await {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
    }
    Err(not_recovered(&last))
}

fn not_recovered(last: &str) -> String {
    format!(
        "recovery: the pool did not serve within {RECOVERY_TRIES} checkouts after the faults stopped; the \
         last said: {last}"
    )
}

/// After the faults stopped: the pool serves within a few checkouts, then
/// every idle connection is used once, so the dead ones are noticed and
/// answered for before the quiescent check.
fn recover_sync<D: Driver>(engine: &Engine<D>) -> Result<(), String> {
    serves_again(engine)?;
    let idle = engine.pool().status().checked_in;
    let mut held = Vec::new();
    for _ in 0..idle {
        if let Ok(mut conn) = engine.connect() {
            if conn.execute("SELECT 1", &[]).is_err() {
                // A dead one, now invalidated: the next call reconnects.
                let _ = conn.execute("SELECT 1", &[]);
            }
            held.push(conn);
        }
    }
    Ok(())
}

#[cfg(feature = "tokio")]
async fn recover_async<D: crate::AsyncDriver>(engine: &crate::AsyncEngine<D>) -> Result<(), String> {
    serves_again_async(engine).await?;
    settle(engine.pool()).await;
    let idle = engine.pool().status().checked_in;
    let mut held = Vec::new();
    for _ in 0..idle {
        if let Ok(mut conn) = engine.connect().await {
            if conn.execute("SELECT 1", &[]).await.is_err() {
                let _ = conn.execute("SELECT 1", &[]).await;
            }
            held.push(conn);
        }
    }
    drop(held);
    Ok(())
}

/// Lets the tokio shell's resets of returned connections (tasks of their
/// own) finish: yields until no connection is out, a bounded number of
/// times.
#[cfg(feature = "tokio")]
async fn settle<D: crate::AsyncDriver>(pool: &crate::AsyncPool<D>) {
    for _ in 0..100_000 {
        if pool.status().checked_out == 0 {
            return;
        }
        tokio::task::yield_now().await;
    }
}

/// `fixtures/scenarios` under the crate under test.
fn default_scenarios() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from("."), PathBuf::from)
        .join("fixtures")
        .join("scenarios")
}

/// The number in the environment variable `name`, if set.
fn env_number(name: &str) -> Result<Option<u64>, PropertyFailure> {
    match std::env::var(name) {
        Ok(text) => text.trim().parse().map(Some).map_err(|_| {
            PropertyFailure::from_error(Error::config(
                name,
                format!("`{text}` is not a whole number from 0 to {}", u64::MAX),
            ))
        }),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(PropertyFailure::from_error(Error::config(
            name,
            "is not valid UTF-8",
        ))),
    }
}

/// A seed that differs from run to run.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}
