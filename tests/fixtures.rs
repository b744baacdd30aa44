//! The rstest fixtures users reach for, used as users would.

use std::time::Duration;

use dbfault::testing::fixtures::*;
use dbfault::testing::{ev, expect};
use dbfault::{Connection, ErrorKind, EventKind, MockDriver, Op, PoolConfig, Rule, SqliteDriver};
use rstest::rstest;

#[rstest]
fn the_mock_pool_is_fresh_and_permissive(mock_pool: PlainPool<MockDriver>) {
    let mut conn = mock_pool.pool.get().unwrap();
    assert_eq!(conn.execute("INSERT INTO anything VALUES (1)", &[]).unwrap(), 0);
    drop(conn);
    let server = mock_pool.server.as_ref().unwrap();
    assert_eq!(server.committed_sql(), ["INSERT INTO anything VALUES (1)"]);
    expect(&mock_pool.journal).in_order([EventKind::FirstConnect, EventKind::Checkout, EventKind::Checkin]);
}

#[rstest]
fn the_sqlite_pool_holds_the_fixture_data(sqlite_pool: PlainPool<SqliteDriver>) {
    let mut conn = sqlite_pool.engine.connect().unwrap();
    let rows = conn
        .query("SELECT sum(balance) AS total FROM accounts", &[])
        .unwrap();
    assert_eq!(rows[0].get("total").and_then(dbfault::Value::as_i64), Some(300));
}

#[rstest]
fn each_sqlite_fixture_is_a_fresh_database(
    sqlite_pool: PlainPool<SqliteDriver>,
    #[from(sqlite_pool)] other: PlainPool<SqliteDriver>,
) {
    sqlite_pool
        .engine
        .connect()
        .unwrap()
        .execute("DELETE FROM accounts", &[])
        .unwrap();
    let rows = other
        .engine
        .connect()
        .unwrap()
        .query("SELECT id FROM accounts", &[])
        .unwrap();
    assert_eq!(rows.len(), 3);
}

#[rstest]
fn the_faulty_mock_pool_shares_one_journal_with_its_fault_layer(faulty_mock_pool: FaultyPool<MockDriver>) {
    body(faulty_mock_pool);
}

#[rstest]
fn the_faulty_sqlite_pool_shares_one_journal_with_its_fault_layer(
    faulty_sqlite_pool: FaultyPool<SqliteDriver>,
) {
    body(faulty_sqlite_pool);
}

/// One body for both faulty fixtures.
fn body<D: dbfault::Driver>(f: FaultyPool<D>) {
    let _cut = f.faults.arm(Rule::on(Op::Execute).nth(1).disconnect()).unwrap();
    let mut conn = f.engine.connect().unwrap();
    let id = conn.pooled().unwrap().id();
    let err = conn.execute("SELECT 1", &[]).unwrap_err();
    assert!(err.connection_invalidated());
    expect(&f.journal).in_order([
        ev(EventKind::Fault).conn(id),
        ev(EventKind::Invalidate).conn(id),
        ev(EventKind::Close).conn(id),
        ev(EventKind::Checkin).conn(id),
    ]);
    // The manual clock is the pool's: a delay rule advances it.
    let _slow = f
        .faults
        .arm(Rule::on(Op::Execute).delay(Duration::from_secs(2)))
        .unwrap();
    let before = f.clock.now();
    conn.execute("SELECT 1", &[]).unwrap();
    assert_eq!(f.clock.now() - before, Duration::from_secs(2));
}

/// Runs `checkout` on a thread and waits at most 10 s of real time for it
/// (a hang fails the test instead of stalling it).
fn within_10s<T: Send + 'static>(checkout: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(checkout());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("a checkout on an exhausted fixture pool never returned")
}

/// A size-1 pool whose one connection is held: the next checkout waits,
/// and times out after the pool's timeout in virtual time.
fn an_exhausted_pool_times_out<D: dbfault::Driver>(
    pool: dbfault::Pool<D>,
    journal: dbfault::Journal,
    clock: dbfault::Clock,
) {
    let held = pool.get().unwrap();
    let start = clock.now();
    let pool2 = pool.clone();
    let err = within_10s(move || pool2.get().map(|c| c.id()).unwrap_err());
    assert_eq!(err.kind(), dbfault::ErrorKind::Timeout, "{err}");
    assert_eq!(
        clock.now() - start,
        Duration::from_secs(5),
        "{}",
        journal.timeline()
    );
    expect(&journal).count(ev(EventKind::Timeout).pool(), 1);
    let timeout = journal
        .events()
        .into_iter()
        .find(|e| e.kind == EventKind::Timeout)
        .unwrap();
    assert_eq!(timeout.at, Duration::from_secs(5));
    // The held connection is still good, and once back it is handed out.
    drop(held);
    assert!(pool.get().is_ok());
    assert_eq!(pool.status().waiting, 0);
}

fn size_1() -> dbfault::PoolConfig {
    dbfault::PoolConfig::new()
        .size(1)
        .max_overflow(0)
        .timeout(Duration::from_secs(5))
}

#[rstest]
fn an_exhausted_mock_fixture_pool_times_out(#[with(size_1())] mock_pool_with: PlainPool<MockDriver>) {
    let f = mock_pool_with;
    an_exhausted_pool_times_out(f.pool.clone(), f.journal.clone(), f.clock.clone());
}

#[rstest]
fn an_exhausted_sqlite_fixture_pool_times_out(#[with(size_1())] sqlite_pool_with: PlainPool<SqliteDriver>) {
    let f = sqlite_pool_with;
    an_exhausted_pool_times_out(f.pool.clone(), f.journal.clone(), f.clock.clone());
}

#[rstest]
fn an_exhausted_faulty_mock_fixture_pool_times_out(
    #[with(size_1())] faulty_mock_pool_with: FaultyPool<MockDriver>,
) {
    let f = faulty_mock_pool_with;
    an_exhausted_pool_times_out(f.pool.clone(), f.journal.clone(), f.clock.clone());
}

#[rstest]
fn an_exhausted_faulty_sqlite_fixture_pool_times_out(
    #[with(size_1())] faulty_sqlite_pool_with: FaultyPool<SqliteDriver>,
) {
    let f = faulty_sqlite_pool_with;
    an_exhausted_pool_times_out(f.pool.clone(), f.journal.clone(), f.clock.clone());
}

#[rstest]
fn the_default_fixture_pool_times_out_after_30s_once_all_15_are_held(mock_pool: PlainPool<MockDriver>) {
    let held: Vec<_> = (0..15).map(|_| mock_pool.pool.get().unwrap()).collect();
    let pool = mock_pool.pool.clone();
    let start = mock_pool.clock.now();
    let err = within_10s(move || pool.get().map(|c| c.id()).unwrap_err());
    assert_eq!(err.kind(), dbfault::ErrorKind::Timeout, "{err}");
    assert_eq!(mock_pool.clock.now() - start, Duration::from_secs(30));
    drop(held);
}

/// A timeout of millennia still fits an `Instant`, so it is not "never":
/// the fixture's clock reaches it (a manual clock goes as late as an
/// `Instant` holds), and the checkout times out at once in real time.
#[test]
fn a_fixture_checkout_with_a_timeout_of_millennia_times_out() {
    use dbfault::testing::fixtures::mock_pool_with;
    let years = |n: u64| Duration::from_secs(n * 365 * 24 * 3600);
    let f = mock_pool_with(PoolConfig::new().size(1).max_overflow(0).timeout(years(2_000)));
    let held = f.pool.get().unwrap();
    let pool = f.pool.clone();
    let outcome = within_10s(move || pool.get().map(drop));
    drop(held);
    assert_eq!(outcome.unwrap_err().kind(), ErrorKind::Timeout);
}

/// The user's own `accounts` table, with columns of its own: it would
/// collide with the bank fixture's, and here replaces it.
const USERS_ACCOUNTS: &str = "CREATE TABLE accounts (iban TEXT PRIMARY KEY, cents INTEGER NOT NULL);
CREATE TABLE audit (id INTEGER PRIMARY KEY, note TEXT NOT NULL)";

fn users_schema() -> dbfault::testing::Schema {
    dbfault::testing::Schema::new(USERS_ACCOUNTS)
        .seed("INSERT INTO accounts VALUES ('DE01', 500), ('FR02', 250)")
        .seed("INSERT INTO audit (note) VALUES ('opened')")
}

fn cents<D: dbfault::Driver>(engine: &dbfault::Engine<D>) -> Option<i64> {
    let rows = engine
        .connect()
        .unwrap()
        .query("SELECT sum(cents) FROM accounts", &[])
        .unwrap();
    rows[0].get(0).and_then(dbfault::Value::as_i64)
}

#[rstest]
fn a_fixture_takes_the_users_schema_instead_of_the_bank(
    #[with(users_schema())] sqlite_pool_with_schema: PlainPool<SqliteDriver>,
) {
    let f = sqlite_pool_with_schema;
    assert_eq!(cents(&f.engine), Some(750));
    // The bank's tables are not there.
    let err = f
        .engine
        .connect()
        .unwrap()
        .query("SELECT owner FROM accounts", &[])
        .unwrap_err();
    assert!(err.message().contains("no such column: owner"), "{err}");
}

#[rstest]
fn a_faulty_fixture_takes_a_schema_file_and_a_config(
    #[with(schema_file(), PoolConfig::new().size(1).max_overflow(0))]
    faulty_sqlite_pool_with_schema: FaultyPool<SqliteDriver>,
) {
    let f = faulty_sqlite_pool_with_schema;
    assert_eq!(f.pool.status().size, 1);
    let _cut = f.faults.arm(Rule::on(Op::Execute).times(1).disconnect()).unwrap();
    let mut conn = f.engine.connect().unwrap();
    let err = conn.execute("UPDATE accounts SET cents = 0", &[]).unwrap_err();
    assert!(err.is_disconnect(), "{err}");
    drop(conn);
    assert_eq!(cents(&f.engine), Some(750)); // nothing applied
}

/// The user's schema and seed as files, in a directory that outlives the
/// test (the fixture reads them when it builds the database).
fn schema_file() -> dbfault::testing::Schema {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dbfault-fixtures-schema");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("schema.sql"), USERS_ACCOUNTS).unwrap();
    std::fs::write(
        dir.join("seed.sql"),
        "INSERT INTO accounts VALUES ('DE01', 500), ('FR02', 250);",
    )
    .unwrap();
    dbfault::testing::Schema::file(dir.join("schema.sql")).seed_file(dir.join("seed.sql"))
}

#[rstest]
#[should_panic(expected = "`schema`: cannot read no/such/file.sql")]
fn a_fixture_over_a_missing_schema_file_says_which(
    #[with(dbfault::testing::Schema::file("no/such/file.sql"))] sqlite_pool_with_schema: PlainPool<
        SqliteDriver,
    >,
) {
    drop(sqlite_pool_with_schema);
}

#[rstest]
#[should_panic(expected = "seed (string), statement 1 (line 1): `INSERT INTO acounts VALUES (1)`")]
fn a_fixture_over_a_bad_seed_names_the_statement(
    #[with(dbfault::testing::Schema::new(USERS_ACCOUNTS).seed("INSERT INTO acounts VALUES (1)"))]
    sqlite_pool_with_schema: PlainPool<SqliteDriver>,
) {
    drop(sqlite_pool_with_schema);
}

#[cfg(feature = "tokio")]
mod async_fixtures {
    use super::*;
    use dbfault::{AsyncDriver, AsyncEngine, Blocking};

    async fn async_cents<D: AsyncDriver>(engine: &AsyncEngine<D>) -> Option<i64> {
        let rows = engine
            .connect()
            .await
            .unwrap()
            .query("SELECT sum(cents) FROM accounts", &[])
            .await
            .unwrap();
        rows[0].get(0).and_then(dbfault::Value::as_i64)
    }

    #[rstest]
    #[tokio::test(start_paused = true)]
    async fn the_async_fixture_holds_the_users_schema(
        #[with(users_schema())] async_sqlite_pool: AsyncPlainPool<Blocking<SqliteDriver>>,
    ) {
        assert_eq!(async_cents(&async_sqlite_pool.engine).await, Some(750));
        assert!(async_sqlite_pool.journal.count(EventKind::Connect) >= 1);
    }

    #[rstest]
    #[tokio::test(start_paused = true)]
    async fn the_async_faulty_fixture_defaults_to_the_bank_and_times_out_in_virtual_time(
        #[with(dbfault::testing::Schema::bank(), PoolConfig::new().size(1).max_overflow(0).timeout(Duration::from_secs(30)))]
        async_faulty_sqlite_pool: AsyncFaultyPool<Blocking<SqliteDriver>>,
    ) {
        let f = async_faulty_sqlite_pool;
        let mut held = f.engine.connect().await.unwrap();
        let rows = held.query("SELECT count(*) FROM accounts", &[]).await.unwrap();
        assert_eq!(rows[0].get(0).and_then(dbfault::Value::as_i64), Some(3));
        let started = tokio::time::Instant::now();
        let err = f.engine.connect().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        let _refuse = f.faults.arm(Rule::on(Op::Query).times(1).disconnect()).unwrap();
        assert!(held.query("SELECT 1", &[]).await.unwrap_err().is_disconnect());
    }
}
