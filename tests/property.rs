//! Property tests over a user's own workload: a ledger whose transfer is
//! written two ways. Two autocommit UPDATEs lose money when a fault falls
//! between them; one transaction never does. dbfault must find the first
//! (and shrink it to one rule) and pass the second, on every target.

mod common;

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::managers::{Bb8Sqlite, DeadpoolPool, DeadpoolSqlite, R2d2Sqlite, bb8_pool, deadpool_pool, open};
use dbfault::testing::{AsyncRecovers, Property, PropertyFailure, PropertyReport, Recovers, Schema};
use dbfault::{
    Action, AsyncDriver, AsyncEngine, Driver, Engine, ErrorKind, Faults, FaultyManager, MockServer, Op, Value,
};
use deadpool::managed;

const LEDGER: &str = "CREATE TABLE ledger (account INTEGER PRIMARY KEY, balance INTEGER NOT NULL)";
const SEED: &str = "INSERT INTO ledger (account, balance) VALUES (1, 100), (2, 100)";
const DEBIT: &str = "UPDATE ledger SET balance = balance - 10 WHERE account = 1";
const CREDIT: &str = "UPDATE ledger SET balance = balance + 10 WHERE account = 2";

fn ledger() -> Schema {
    Schema::new(LEDGER).seed(SEED)
}

/// A property with no saved plans, a fixed seed and `cases` draws.
fn property(cases: u32) -> Property {
    Property::new().cases(cases).seed(11).scenarios(empty_dir())
}

fn empty_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("dbfault-property-no-scenarios")
}

/// The bug: two statements, each committed on its own.
fn transfer_buggy<D: Driver>(engine: &Engine<D>) -> dbfault::Result<()> {
    let mut conn = engine.connect()?;
    conn.execute(DEBIT, &[])?;
    conn.execute(CREDIT, &[])?;
    Ok(())
}

/// The fix: both in one transaction.
fn transfer<D: Driver>(engine: &Engine<D>) -> dbfault::Result<()> {
    let mut conn = engine.connect()?;
    let mut tx = conn.begin()?;
    tx.execute(DEBIT, &[])?;
    tx.execute(CREDIT, &[])?;
    tx.commit()
}

fn total_of(rows: &[dbfault::Row]) -> Option<i64> {
    rows.first()?.get(0).and_then(Value::as_i64)
}

fn conserved<D: Driver>(engine: &Engine<D>) -> Result<(), String> {
    let rows = engine
        .connect()
        .and_then(|mut c| c.query("SELECT sum(balance) FROM ledger", &[]))
        .map_err(|e| e.to_string())?;
    match total_of(&rows) {
        Some(200) => Ok(()),
        total => Err(format!("the total balance is {total:?}, not 200")),
    }
}

/// What every failure of the buggy transfer must show: the smallest plan
/// is one execute rule, and the message has its seed, its TOML and how to
/// save it.
fn assert_caught(failure: &PropertyFailure) {
    let text = failure.to_string();
    let plan = failure.plan().unwrap_or_else(|| panic!("no plan: {text}"));
    assert_eq!(plan.rules().len(), 1, "not shrunk to one rule:\n{text}");
    assert_eq!(plan.rules()[0].op(), Op::Execute, "{text}");
    assert!(
        !matches!(plan.rules()[0].get_action(), Action::Delay(_)),
        "a delay cannot lose money:\n{text}"
    );
    assert!(failure.run_seed() == Some(11), "{text}");
    assert!(text.contains(&format!("seed {}", plan.seed())), "{text}");
    assert!(text.contains(&plan.to_toml()), "{text}");
    assert!(text.contains("DBFAULT_PROPERTY_SEED=11"), "{text}");
    assert!(text.contains("fixtures/scenarios/NAME.toml"), "{text}");
    assert!(text.contains("the total balance is Some(190)"), "{text}");
}

#[test]
fn sqlite_two_autocommit_updates_fail_and_shrink_to_one_rule() {
    let failure = property(64)
        .sqlite(&ledger(), transfer_buggy, conserved)
        .unwrap_err();
    assert_caught(&failure);
}

#[test]
fn sqlite_one_transaction_passes() {
    let report = property(64)
        .sqlite(&ledger(), transfer, conserved)
        .unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(report.cases, 65);
    assert!(report.faults > 0, "no fault fired in 64 plans: {report:?}");
    assert_eq!(report.seed, 11);
}

async fn transfer_buggy_async<D: AsyncDriver>(engine: AsyncEngine<D>) -> dbfault::Result<()> {
    let mut conn = engine.connect().await?;
    conn.execute(DEBIT, &[]).await?;
    conn.execute(CREDIT, &[]).await?;
    Ok(())
}

async fn transfer_async<D: AsyncDriver>(engine: AsyncEngine<D>) -> dbfault::Result<()> {
    let mut conn = engine.connect().await?;
    let mut tx = conn.begin().await?;
    tx.execute(DEBIT, &[]).await?;
    tx.execute(CREDIT, &[]).await?;
    tx.commit().await
}

async fn conserved_async<D: AsyncDriver>(engine: AsyncEngine<D>) -> Result<(), String> {
    let mut conn = engine.connect().await.map_err(|e| e.to_string())?;
    let rows = conn
        .query("SELECT sum(balance) FROM ledger", &[])
        .await
        .map_err(|e| e.to_string())?;
    match total_of(&rows) {
        Some(200) => Ok(()),
        total => Err(format!("the total balance is {total:?}, not 200")),
    }
}

#[test]
fn async_sqlite_catches_the_bug_and_passes_the_fix() {
    let failure = property(64)
        .async_sqlite(&ledger(), transfer_buggy_async, conserved_async)
        .unwrap_err();
    assert_caught(&failure);
    let report = property(64)
        .async_sqlite(&ledger(), transfer_async, conserved_async)
        .unwrap_or_else(|f| panic!("{f}"));
    assert!(report.faults > 0, "{report:?}");
}

/// On the mock, the invariant reads what the server committed: every
/// debit must have been committed with its credit.
fn debits_match_credits(server: &MockServer) -> Result<(), String> {
    let committed = server.committed_sql();
    let debits = committed.iter().filter(|s| s.as_str() == DEBIT).count();
    let credits = committed.iter().filter(|s| s.as_str() == CREDIT).count();
    if debits == credits {
        Ok(())
    } else {
        Err(format!("{debits} debits but {credits} credits committed"))
    }
}

#[test]
fn the_mock_form_checks_what_the_server_committed() {
    let failure = property(64)
        .mock(transfer_buggy, debits_match_credits)
        .unwrap_err();
    let text = failure.to_string();
    assert_eq!(failure.plan().map(|p| p.rules().len()), Some(1), "{text}");
    assert!(text.contains("1 debits but 0 credits committed"), "{text}");
    property(64)
        .mock(transfer, debits_match_credits)
        .unwrap_or_else(|f| panic!("{f}"));

    let failure = property(64)
        .async_mock(transfer_buggy_async, debits_match_credits)
        .unwrap_err();
    assert_eq!(failure.plan().map(|p| p.rules().len()), Some(1), "{failure}");
    property(64)
        .async_mock(transfer_async, debits_match_credits)
        .unwrap_or_else(|f| panic!("{f}"));
}

#[test]
fn a_saved_plan_is_replayed_first() {
    let dir = tempfile::tempdir().unwrap();
    let cut = "seed = 3\n\n[[rule]]\nop = \"execute\"\nnth = 2\naction = \"disconnect\"\n";
    std::fs::write(dir.path().join("cut_between_updates.toml"), cut).unwrap();
    // No draws: only the case without faults and the saved plan run.
    let saved = || property(0).scenarios(dir.path());

    let failure = saved().sqlite(&ledger(), transfer_buggy, conserved).unwrap_err();
    let text = failure.to_string();
    assert_eq!(
        failure.saved(),
        Some(dir.path().join("cut_between_updates.toml").as_path())
    );
    assert_eq!(failure.plan().map(|p| p.seed()), Some(3));
    assert!(text.contains("saved plan"), "{text}");
    assert!(text.contains("the total balance is Some(190)"), "{text}");

    let report = saved()
        .sqlite(&ledger(), transfer, conserved)
        .unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(report.saved, ["cut_between_updates"]);
    assert_eq!((report.cases, report.faults), (2, 1));
}

#[test]
fn a_saved_plan_that_hangs_or_does_not_parse_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("stuck.toml"),
        "seed = 1\n[[rule]]\nop = \"commit\"\naction = \"hang\"\n",
    )
    .unwrap();
    let failure = property(0)
        .scenarios(dir.path())
        .sqlite(&ledger(), transfer, conserved)
        .unwrap_err();
    assert!(failure.to_string().contains("stuck.toml"), "{failure}");
    assert!(failure.what().contains("`hang`"), "{failure}");

    std::fs::write(
        dir.path().join("stuck.toml"),
        "seed = 1\n[[rule]]\nop = \"commit\"\ntimes = 0\n",
    )
    .unwrap();
    let failure = property(0)
        .scenarios(dir.path())
        .sqlite(&ledger(), transfer, conserved)
        .unwrap_err();
    let err = failure.error().expect("the parse error");
    assert_eq!(
        (err.kind(), err.line(), err.field()),
        (ErrorKind::Scenario, Some(4), Some("times"))
    );
    assert!(failure.to_string().contains("stuck.toml"), "{failure}");
}

#[test]
fn an_async_workload_that_never_ends_fails_instead_of_hanging() {
    // Waits on nothing that will ever come: the paused clock reaches the
    // property's hour of virtual time at once.
    let failure = property(1)
        .async_sqlite(
            &ledger(),
            |_engine| async { std::future::pending::<Result<(), String>>().await },
            conserved_async,
        )
        .unwrap_err();
    assert!(failure.what().contains("virtual time"), "{failure}");
    assert!(failure.plan().is_none(), "the case without faults: {failure}");
}

#[test]
fn the_workload_must_succeed_without_faults() {
    let failure = property(4)
        .sqlite(
            &ledger(),
            |engine| {
                engine
                    .connect()?
                    .execute("UPDATE ledgr SET balance = 0", &[])
                    .map(drop)
            },
            conserved,
        )
        .unwrap_err();
    assert!(failure.plan().is_none(), "{failure}");
    let text = failure.to_string();
    assert!(text.contains("the workload failed with no fault armed"), "{text}");
    assert!(text.contains("ledgr"), "{text}");
}

#[test]
fn bad_schema_input_is_an_error_naming_the_script_and_statement() {
    let failure = property(4)
        .sqlite(&Schema::file("tests/no_such_ledger.sql"), transfer, conserved)
        .unwrap_err();
    assert!(
        failure
            .to_string()
            .contains("cannot read tests/no_such_ledger.sql"),
        "{failure}"
    );

    let schema =
        Schema::new(LEDGER).seed("INSERT INTO ledger VALUES (1, 100);\nINSERT INTO ledgr VALUES (2, 100)");
    let failure = property(4).sqlite(&schema, transfer, conserved).unwrap_err();
    let text = failure.to_string();
    assert!(
        text.contains("seed (string), statement 2 (line 2): `INSERT INTO ledgr VALUES (2, 100)`"),
        "{text}"
    );
    assert!(text.contains("no such table"), "{text}");
}

/// The user's database file, holding the ledger.
struct LedgerFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl LedgerFile {
    fn new() -> Result<LedgerFile, Box<dyn Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("ledger.db");
        open(&path)?.execute_batch(&format!("{LEDGER}; {SEED};"))?;
        Ok(LedgerFile { _dir: dir, path })
    }
}

/// The user's application: its database file, its pool of plain rusqlite
/// connections over `FaultyManager`, and the fault handle its tests keep.
struct App<P> {
    db: LedgerFile,
    pool: P,
    faults: Faults,
}

impl<P> App<P> {
    fn new(db: LedgerFile, pool: P, faults: &Faults) -> App<P> {
        App {
            db,
            pool,
            faults: faults.clone(),
        }
    }
}

type R2d2Pool = r2d2::Pool<FaultyManager<R2d2Sqlite>>;
type Bb8Pool = bb8::Pool<FaultyManager<Bb8Sqlite>>;

fn r2d2_app(faults: &Faults) -> Result<App<R2d2Pool>, Box<dyn Error>> {
    let db = LedgerFile::new()?;
    let pool = r2d2::Pool::builder()
        .max_size(2)
        .connection_timeout(Duration::from_secs(5))
        .build(FaultyManager::new(R2d2Sqlite(db.path.clone()), faults))?;
    Ok(App::new(db, pool, faults))
}

async fn bb8_app(faults: &Faults) -> Result<App<Bb8Pool>, Box<dyn Error>> {
    let db = LedgerFile::new()?;
    let pool = bb8_pool(&db.path, faults, 2).await?;
    Ok(App::new(db, pool, faults))
}

async fn deadpool_app(faults: &Faults) -> Result<App<DeadpoolPool>, Box<dyn Error>> {
    let db = LedgerFile::new()?;
    let pool = deadpool_pool(&db.path, faults, 2)?;
    Ok(App::new(db, pool, faults))
}

impl<P: Recovers> Recovers for App<P> {
    fn fresh_checkout(&self) -> Result<(), String> {
        self.pool.fresh_checkout()
    }
}

impl<P: AsyncRecovers> AsyncRecovers for App<P> {
    async fn fresh_checkout(&self) -> Result<(), String> {
        self.pool.fresh_checkout().await
    }
}

fn app_conserved<P>(app: &App<P>) -> Result<(), String> {
    let total =
        open(&app.db.path).and_then(|c| c.query_row("SELECT sum(balance) FROM ledger", [], |r| r.get(0)));
    match total {
        Ok(200) => Ok(()),
        total => Err(format!("the total balance is {total:?}, not 200")),
    }
}

async fn app_conserved_async<P>(app: &App<P>) -> Result<(), String> {
    app_conserved(app)
}

/// The user's transfer, on a plain rusqlite connection.
type Transfer = fn(&mut rusqlite::Connection) -> rusqlite::Result<()>;

/// The bug: two statements, each committed on its own.
fn two_autocommits(conn: &mut rusqlite::Connection) -> rusqlite::Result<()> {
    conn.execute(DEBIT, [])?;
    conn.execute(CREDIT, [])?;
    Ok(())
}

/// The fix: both in one transaction.
fn one_transaction(conn: &mut rusqlite::Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute(DEBIT, [])?;
    tx.execute(CREDIT, [])?;
    tx.commit()
}

/// What a property over the user's own pool must find in the bug: a
/// plan, shrunk to one rule, under which money was lost.
fn assert_own_pool_caught(result: Result<PropertyReport, PropertyFailure>) {
    let failure = result.expect_err("the two autocommit statements were not caught");
    let text = failure.to_string();
    assert_eq!(failure.plan().map(|p| p.rules().len()), Some(1), "{text}");
    assert!(text.contains("the total balance is Ok(190)"), "{text}");
}

/// What it must find in the fix: every case passed, and faults fired.
fn assert_own_pool_passed(result: Result<PropertyReport, PropertyFailure>) {
    let report = result.unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(report.cases, 49, "{report:?}");
    assert!(report.faults > 0, "{report:?}");
}

/// Runs the property over the bug, which it must catch, and over the fix,
/// which must pass.
fn catches_the_bug_and_passes_the_fix(run: impl Fn(Transfer) -> Result<PropertyReport, PropertyFailure>) {
    assert_own_pool_caught(run(two_autocommits));
    assert_own_pool_passed(run(one_transaction));
}

fn r2d2_transfer(app: &App<R2d2Pool>, transfer: Transfer) -> Result<(), Box<dyn Error>> {
    let mut conn = app.pool.get()?;
    Ok(transfer(&mut conn)?)
}

async fn bb8_transfer(app: &App<Bb8Pool>, transfer: Transfer) -> Result<(), Box<dyn Error>> {
    let mut conn = app.pool.get().await?;
    Ok(transfer(&mut conn)?)
}

async fn deadpool_transfer(app: &App<DeadpoolPool>, transfer: Transfer) -> Result<(), Box<dyn Error>> {
    Ok(app.pool.get().await?.interact(transfer).await??)
}

#[test]
fn an_r2d2_pool_of_the_users_own_is_checked_the_same_way() {
    catches_the_bug_and_passes_the_fix(|transfer| {
        property(48).with_faults(r2d2_app, |app| r2d2_transfer(app, transfer), app_conserved)
    });
}

#[test]
fn a_bb8_pool_of_the_users_own_is_checked_the_same_way() {
    catches_the_bug_and_passes_the_fix(|transfer| {
        let workload = async |app: &App<Bb8Pool>| bb8_transfer(app, transfer).await;
        property(48).async_with_faults(bb8_app, workload, app_conserved_async)
    });
}

#[test]
fn a_deadpool_pool_of_the_users_own_is_checked_the_same_way() {
    catches_the_bug_and_passes_the_fix(|transfer| {
        let workload = async |app: &App<DeadpoolPool>| deadpool_transfer(app, transfer).await;
        property(48).async_with_faults(deadpool_app, workload, app_conserved_async)
    });
}

/// bb8's connection timeout and deadpool's wait timeout run on tokio's
/// clock: on the property's paused runtime a checkout that waits for them
/// waits in virtual time, and the case goes on at once.
#[test]
fn an_async_pools_own_timeouts_pass_in_virtual_time() {
    let timed_out = |what: &str, waited: Duration, limit: u64| -> Result<(), String> {
        if waited >= Duration::from_secs(limit) {
            Ok(())
        } else {
            Err(format!(
                "{what} after {waited:?} of virtual time, before its {limit} s timeout"
            ))
        }
    };
    // In an outage, bb8 retries the refused connect until its 5 s
    // connection timeout.
    let bb8_outage = async |app: &App<Bb8Pool>| -> Result<(), String> {
        let start = tokio::time::Instant::now();
        app.faults.outage();
        match app.pool.get().await {
            Err(bb8::RunError::TimedOut) => timed_out("bb8 timed out", start.elapsed(), 5),
            Err(bb8::RunError::User(e)) => Err(format!("bb8 answered {e} instead of timing out")),
            Ok(_) => Err("bb8 handed out a connection in an outage".to_owned()),
        }
    };
    property(0)
        .async_with_faults(bb8_app, bb8_outage, app_conserved_async)
        .unwrap_or_else(|f| panic!("{f}"));

    // deadpool, its one connection held, waits its 30 s wait timeout.
    let deadpool_timed = async |faults: &Faults| -> Result<App<DeadpoolPool>, Box<dyn Error>> {
        let db = LedgerFile::new()?;
        let pool = managed::Pool::builder(FaultyManager::new(DeadpoolSqlite(db.path.clone()), faults))
            .max_size(1)
            .runtime(deadpool::Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .build()?;
        Ok(App::new(db, pool, faults))
    };
    let held = async |app: &App<DeadpoolPool>| -> Result<(), String> {
        let _held = app.pool.get().await.map_err(|e| e.to_string())?;
        let start = tokio::time::Instant::now();
        match app.pool.get().await {
            Err(managed::PoolError::Timeout(_)) => timed_out("deadpool timed out", start.elapsed(), 30),
            Err(e) => Err(format!("deadpool answered {e} instead of timing out")),
            Ok(_) => Err("deadpool handed out a connection it had not got".to_owned()),
        }
    };
    property(0)
        .async_with_faults(deadpool_timed, held, app_conserved_async)
        .unwrap_or_else(|f| panic!("{f}"));
}

#[test]
fn an_async_workload_over_the_users_own_pool_that_never_ends_fails() {
    let failure = property(1)
        .async_with_faults(
            deadpool_app,
            async |_: &App<DeadpoolPool>| std::future::pending::<Result<(), String>>().await,
            app_conserved_async,
        )
        .unwrap_err();
    assert!(
        failure
            .what()
            .contains("the workload still ran after 3600s of virtual time"),
        "{failure}"
    );
    assert!(failure.plan().is_none(), "the case without faults: {failure}");
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use common::pg::pg_url;

    #[test]
    fn postgres_catches_the_bug_and_passes_the_fix() {
        let Some(url) = pg_url() else { return };
        let failure = property(64)
            .postgres(&url, &ledger(), transfer_buggy, conserved)
            .unwrap_err();
        assert_caught(&failure);
        let report = property(64)
            .postgres(&url, &ledger(), transfer, conserved)
            .unwrap_or_else(|f| panic!("{f}"));
        assert!(report.faults > 0, "{report:?}");
    }

    #[test]
    fn async_postgres_catches_the_bug_and_passes_the_fix() {
        let Some(url) = pg_url() else { return };
        let failure = property(64)
            .async_postgres(&url, &ledger(), transfer_buggy_async, conserved_async)
            .unwrap_err();
        assert_caught(&failure);
        property(64)
            .async_postgres(&url, &ledger(), transfer_async, conserved_async)
            .unwrap_or_else(|f| panic!("{f}"));
    }
}
