//! The real SQLite driver: every row of `SqliteDialect`'s classification
//! table with an error SQLite really produced, the connection contract
//! (transactions, close, dead after a disconnect), shared in-memory
//! databases and value round trips.

#![cfg(feature = "sqlite")]

use std::error::Error as _;
use std::sync::atomic::{AtomicUsize, Ordering};

use dbfault::{
    Connection, Dialect, Driver, Error, ErrorClass, ErrorKind, FaultyDriver, Row, SqliteConnection,
    SqliteDialect, SqliteDriver, Value,
};
use rstest::rstest;
use tempfile::TempDir;

// ---------------------------------------------------------------------------
// Helpers.

/// Which kind of database a test body runs against.
#[derive(Debug, Clone, Copy)]
enum Kind {
    File,
    Memory,
}

/// A driver plus whatever keeps its database alive.
struct Db {
    driver: SqliteDriver,
    _dir: Option<TempDir>,
}

fn db(kind: Kind) -> Db {
    match kind {
        Kind::File => {
            let dir = tempfile::tempdir().expect("temp dir");
            let driver = SqliteDriver::open(dir.path().join("test.db")).expect("file driver");
            Db {
                driver,
                _dir: Some(dir),
            }
        }
        Kind::Memory => Db {
            driver: SqliteDriver::memory(&unique_name("mem")).expect("memory driver"),
            _dir: None,
        },
    }
}

/// A memory database name no other test uses.
fn unique_name(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "dbfault-test-{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn connect(driver: &SqliteDriver) -> SqliteConnection {
    driver.connect().expect("connect")
}

/// Checks the error's code and class, that the class is what the dialect
/// says, and that a driver error keeps the rusqlite error as its source.
#[track_caller]
fn assert_error(err: &Error, code: &str, class: ErrorClass) {
    assert_eq!(err.code(), Some(code), "code of {err:?}");
    assert_eq!(err.class(), class, "class of {err:?}");
    assert!(err.is_classified(), "{err:?} is classified");
    assert_eq!(
        err.class(),
        SqliteDialect.classify(err),
        "class of {err:?} is the dialect's"
    );
    if err.kind() == ErrorKind::Driver {
        let source = err.source().expect("a driver error keeps its source");
        assert!(
            source.downcast_ref::<rusqlite::Error>().is_some(),
            "source of {err:?} is a rusqlite::Error"
        );
    }
}

fn count(conn: &mut SqliteConnection, table: &str) -> i64 {
    let rows = conn
        .query(&format!("SELECT count(*) AS n FROM {table}"), &[])
        .expect("count");
    rows[0]
        .get("n")
        .and_then(Value::as_i64)
        .expect("an integer count")
}

// ---------------------------------------------------------------------------
// The classification table, row by row, with real SQLite errors.

#[test]
fn write_against_a_reserved_file_lock_is_busy_and_transient() {
    let db = db(Kind::File);
    let mut a = connect(&db.driver);
    let mut b = connect(&db.driver);
    a.execute("CREATE TABLE t (x INTEGER)", &[]).unwrap();
    a.execute("BEGIN IMMEDIATE", &[]).unwrap();
    a.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
    assert!(a.in_transaction(), "BEGIN IMMEDIATE through execute counts");

    let err = b.execute("INSERT INTO t VALUES (2)", &[]).unwrap_err();
    assert_error(&err, "SQLITE_BUSY", ErrorClass::Transient);
    assert_eq!(err.kind(), ErrorKind::Driver);

    // Transient: the connection lives, and succeeds once the lock is gone.
    a.commit().unwrap();
    assert_eq!(b.execute("INSERT INTO t VALUES (2)", &[]).unwrap(), 1);
    assert_eq!(count(&mut b, "t"), 2);
}

#[test]
fn shared_cache_table_lock_is_locked_sharedcache_and_transient() {
    let driver = SqliteDriver::memory(&unique_name("locked")).unwrap();
    let mut a = connect(&driver);
    let mut b = connect(&driver);
    a.execute("CREATE TABLE t (x INTEGER)", &[]).unwrap();
    a.begin().unwrap();
    a.execute("INSERT INTO t VALUES (1)", &[]).unwrap();

    let err = b.query("SELECT x FROM t", &[]).unwrap_err();
    assert_error(&err, "SQLITE_LOCKED_SHAREDCACHE", ErrorClass::Transient);

    a.rollback().unwrap();
    assert_eq!(count(&mut b, "t"), 0);
}

#[rstest]
#[case::unique("INSERT INTO t (id, u, n) VALUES (2, 'dup', 1)", "SQLITE_CONSTRAINT_UNIQUE")]
#[case::primary_key(
    "INSERT INTO t (id, u, n) VALUES (1, 'other', 1)",
    "SQLITE_CONSTRAINT_PRIMARYKEY"
)]
#[case::not_null("INSERT INTO t (id, u, n) VALUES (3, 'x', NULL)", "SQLITE_CONSTRAINT_NOTNULL")]
#[case::check("INSERT INTO t (id, u, n) VALUES (4, 'y', -1)", "SQLITE_CONSTRAINT_CHECK")]
fn constraint_violations_are_constraint(
    #[case] sql: &str,
    #[case] code: &str,
    #[values(Kind::File, Kind::Memory)] kind: Kind,
) {
    let db = db(kind);
    let mut conn = connect(&db.driver);
    conn.execute(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, u TEXT UNIQUE, n INTEGER NOT NULL CHECK (n >= 0))",
        &[],
    )
    .unwrap();
    conn.execute("INSERT INTO t (id, u, n) VALUES (1, 'dup', 1)", &[])
        .unwrap();

    let err = conn.execute(sql, &[]).unwrap_err();
    assert_error(&err, code, ErrorClass::Constraint);
    // Not a disconnect: the connection goes on.
    assert_eq!(count(&mut conn, "t"), 1);
}

#[test]
fn foreign_key_violation_with_init_sql_is_constraint() {
    let driver = SqliteDriver::memory(&unique_name("fk"))
        .unwrap()
        .init_sql("PRAGMA foreign_keys = ON");
    let mut conn = connect(&driver);
    conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)", &[])
        .unwrap();
    conn.execute("CREATE TABLE child (pid INTEGER REFERENCES parent (id))", &[])
        .unwrap();
    let err = conn
        .execute("INSERT INTO child VALUES (?1)", &[Value::Integer(42)])
        .unwrap_err();
    assert_error(&err, "SQLITE_CONSTRAINT_FOREIGNKEY", ErrorClass::Constraint);
}

#[rstest]
#[case::absolute_path_in_missing_dir(None)]
#[case::missing_dir_under_temp(Some("missing/x.db"))]
fn connect_in_a_missing_directory_is_cantopen_and_a_disconnect(#[case] under_temp: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let path = match under_temp {
        Some(rel) => dir.path().join(rel),
        None => "/nonexistent-dir/x.db".into(),
    };
    let driver = SqliteDriver::open(path).expect("open does not touch the file system");
    let err = driver.connect().unwrap_err();
    assert_error(&err, "SQLITE_CANTOPEN", ErrorClass::Disconnect);
    assert_eq!(err.kind(), ErrorKind::Driver);
}

#[test]
fn a_path_with_a_nul_byte_fails_the_connect_not_the_process() {
    let driver = SqliteDriver::open("bad\0path.db").unwrap();
    let err = driver.connect().unwrap_err();
    assert_error(&err, "DBFAULT_PATH", ErrorClass::Statement);
}

#[test]
fn write_after_the_file_was_deleted_is_readonly_dbmoved_and_the_connection_is_dead() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gone.db");
    let driver = SqliteDriver::open(&path).unwrap();
    let mut conn = connect(&driver);
    conn.execute("CREATE TABLE t (x INTEGER)", &[]).unwrap();
    std::fs::remove_file(&path).unwrap();

    let err = conn.execute("INSERT INTO t VALUES (1)", &[]).unwrap_err();
    assert_error(&err, "SQLITE_READONLY_DBMOVED", ErrorClass::Disconnect);

    // Dead for good: every later operation but close is a disconnect, and
    // keeps the code of the disconnect that killed it.
    assert!(!conn.in_transaction());
    for err in [
        conn.query("SELECT 1", &[]).unwrap_err(),
        conn.ping().unwrap_err(),
        conn.begin().unwrap_err(),
        conn.rollback().unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::Closed);
        assert_error(&err, "SQLITE_READONLY_DBMOVED", ErrorClass::Disconnect);
    }
    conn.close().unwrap();
    conn.close().unwrap();
}

#[test]
fn a_file_that_is_not_a_database_is_notadb_and_a_disconnect() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.db");
    std::fs::write(&path, vec![0x5a_u8; 4096]).unwrap();
    let driver = SqliteDriver::open(&path).unwrap();
    // SQLite reads the header lazily: the connect succeeds, the first
    // statement fails.
    let mut conn = connect(&driver);
    let err = conn.query("SELECT * FROM sqlite_master", &[]).unwrap_err();
    assert_error(&err, "SQLITE_NOTADB", ErrorClass::Disconnect);
    assert_eq!(conn.ping().unwrap_err().kind(), ErrorKind::Closed);
}

#[rstest]
#[case::syntax("SELEC 1")]
#[case::missing_table("SELECT * FROM no_such_table")]
#[case::missing_column("SELECT no_such_column FROM sqlite_master")]
fn bad_statements_are_sqlite_error_and_statement(
    #[case] sql: &str,
    #[values(Kind::File, Kind::Memory)] kind: Kind,
) {
    let db = db(kind);
    let mut conn = connect(&db.driver);
    let err = conn.query(sql, &[]).unwrap_err();
    assert_error(&err, "SQLITE_ERROR", ErrorClass::Statement);
    let err = conn.execute(sql, &[]).unwrap_err();
    assert_error(&err, "SQLITE_ERROR", ErrorClass::Statement);
    conn.ping()
        .expect("a statement error leaves the connection alive");
}

#[test]
fn errors_rusqlite_raises_itself_are_statement() {
    let db = db(Kind::Memory);
    let mut conn = connect(&db.driver);

    let err = conn.query("SELECT ?1, ?2", &[Value::Integer(1)]).unwrap_err();
    assert_error(&err, "DBFAULT_PARAMETER", ErrorClass::Statement);

    let err = conn.query("SELECT CAST(x'ff' AS TEXT)", &[]).unwrap_err();
    assert_error(&err, "DBFAULT_TYPE", ErrorClass::Statement);

    let err = conn.execute("SELECT 1; SELECT 2", &[]).unwrap_err();
    assert_error(&err, "DBFAULT_SQL", ErrorClass::Statement);

    conn.ping().expect("alive");
}

#[test]
fn bad_init_sql_fails_the_connect_with_a_classified_error() {
    let driver = SqliteDriver::memory(&unique_name("init"))
        .unwrap()
        .init_sql("PRAGMA nonsense = ; SELEC");
    let err = driver.connect().unwrap_err();
    assert_error(&err, "SQLITE_ERROR", ErrorClass::Statement);
}

// ---------------------------------------------------------------------------
// Close.

/// An operation of the `Connection` trait other than `close`.
#[derive(Debug, Clone, Copy)]
enum Op {
    Execute,
    Query,
    Begin,
    Commit,
    Rollback,
    Ping,
}

impl Op {
    fn run(self, conn: &mut SqliteConnection) -> Result<(), Error> {
        match self {
            Op::Execute => conn.execute("SELECT 1", &[]).map(drop),
            Op::Query => conn.query("SELECT 1", &[]).map(drop),
            Op::Begin => conn.begin(),
            Op::Commit => conn.commit(),
            Op::Rollback => conn.rollback(),
            Op::Ping => conn.ping(),
        }
    }
}

#[rstest]
fn every_operation_after_close_is_closed_and_a_disconnect(
    #[values(Op::Execute, Op::Query, Op::Begin, Op::Commit, Op::Rollback, Op::Ping)] op: Op,
    #[values(Kind::File, Kind::Memory)] kind: Kind,
) {
    let db = db(kind);
    let mut conn = connect(&db.driver);
    conn.close().unwrap();
    let err = op.run(&mut conn).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
    assert_error(&err, "SQLITE_MISUSE", ErrorClass::Disconnect);
    assert!(!conn.in_transaction());
    assert!(db.driver.dialect().is_disconnect(&err));
}

#[rstest]
fn close_twice_is_ok_and_rolls_back(#[values(Kind::File, Kind::Memory)] kind: Kind) {
    let db = db(kind);
    let mut setup = connect(&db.driver);
    setup.execute("CREATE TABLE t (x INTEGER)", &[]).unwrap();

    let mut conn = connect(&db.driver);
    conn.begin().unwrap();
    conn.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
    conn.close().unwrap();
    conn.close().unwrap();
    assert_eq!(count(&mut setup, "t"), 0, "closing rolled back");
}

// ---------------------------------------------------------------------------
// Transactions.

#[rstest]
fn in_transaction_follows_begin_commit_rollback(#[values(Kind::File, Kind::Memory)] kind: Kind) {
    let db = db(kind);
    let mut conn = connect(&db.driver);
    conn.execute("CREATE TABLE t (x INTEGER)", &[]).unwrap();
    assert!(!conn.in_transaction());

    conn.begin().unwrap();
    assert!(conn.in_transaction());
    conn.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
    conn.commit().unwrap();
    assert!(!conn.in_transaction());

    conn.begin().unwrap();
    conn.execute("INSERT INTO t VALUES (2)", &[]).unwrap();
    conn.rollback().unwrap();
    assert!(!conn.in_transaction());
    assert_eq!(count(&mut conn, "t"), 1);

    // Rollback without a transaction is a no-op.
    conn.rollback().unwrap();
}

#[test]
fn begin_inside_a_transaction_is_a_statement_error() {
    let db = db(Kind::Memory);
    let mut conn = connect(&db.driver);
    conn.begin().unwrap();
    let err = conn.begin().unwrap_err();
    assert_error(&err, "SQLITE_ERROR", ErrorClass::Statement);
    assert!(conn.in_transaction());
    let err = {
        conn.rollback().unwrap();
        conn.commit().unwrap_err()
    };
    assert_error(&err, "SQLITE_ERROR", ErrorClass::Statement);
}

#[test]
fn a_commit_refused_with_busy_leaves_the_transaction_open() {
    let db = db(Kind::File);
    let mut reader = connect(&db.driver);
    let mut writer = connect(&db.driver);
    writer.execute("CREATE TABLE t (x INTEGER)", &[]).unwrap();

    // The reader holds a SHARED lock for as long as its transaction is open.
    reader.begin().unwrap();
    assert_eq!(count(&mut reader, "t"), 0);

    writer.begin().unwrap();
    writer.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
    let err = writer.commit().unwrap_err();
    assert_error(&err, "SQLITE_BUSY", ErrorClass::Transient);
    assert!(
        writer.in_transaction(),
        "a busy COMMIT leaves the transaction open"
    );

    writer.rollback().unwrap();
    assert!(!writer.in_transaction());
    reader.commit().unwrap();
    assert_eq!(count(&mut reader, "t"), 0, "the refused write was rolled back");
}

// ---------------------------------------------------------------------------
// Shared in-memory databases.

#[test]
fn a_memory_database_is_shared_and_outlives_its_connections() {
    let driver = SqliteDriver::memory(&unique_name("shared")).unwrap();
    let mut a = connect(&driver);
    let mut b = connect(&driver);
    a.execute("CREATE TABLE t (x INTEGER)", &[]).unwrap();
    a.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
    assert_eq!(count(&mut b, "t"), 1, "b sees a's write");
    a.close().unwrap();
    b.close().unwrap();

    let mut c = connect(&driver);
    assert_eq!(
        count(&mut c, "t"),
        1,
        "the data survived every connection closing"
    );
    let mut d = connect(&driver.clone());
    assert_eq!(count(&mut d, "t"), 1, "a clone shares the database");
}

#[test]
fn memory_databases_with_different_names_are_separate() {
    let one = SqliteDriver::memory(&unique_name("one")).unwrap();
    let two = SqliteDriver::memory(&unique_name("two")).unwrap();
    connect(&one).execute("CREATE TABLE t (x INTEGER)", &[]).unwrap();
    let err = connect(&two).query("SELECT * FROM t", &[]).unwrap_err();
    assert_error(&err, "SQLITE_ERROR", ErrorClass::Statement);
    assert!(err.message().contains("no such table"), "{err}");
}

#[test]
fn a_memory_database_is_gone_once_its_driver_and_connections_are() {
    let name = unique_name("gone");
    let driver = SqliteDriver::memory(&name).unwrap();
    connect(&driver)
        .execute("CREATE TABLE t (x INTEGER)", &[])
        .unwrap();
    drop(driver);

    let again = SqliteDriver::memory(&name).unwrap();
    let err = connect(&again).query("SELECT * FROM t", &[]).unwrap_err();
    assert!(err.message().contains("no such table"), "{err}");
}

#[test]
fn memory_names_with_uri_characters_are_escaped() {
    let base = unique_name("uri");
    let odd = SqliteDriver::memory(&format!("{base}?mode=ro&x=/é #")).unwrap();
    let plain = SqliteDriver::memory(&base).unwrap();
    connect(&odd).execute("CREATE TABLE t (x INTEGER)", &[]).unwrap();
    assert!(connect(&plain).query("SELECT * FROM t", &[]).is_err());
}

#[rstest]
#[case::empty_path(SqliteDriver::open(""))]
#[case::memory_path(SqliteDriver::open(":memory:"))]
#[case::empty_name(SqliteDriver::memory(""))]
fn impossible_targets_are_config_errors(#[case] result: dbfault::Result<SqliteDriver>) {
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Config);
}

// ---------------------------------------------------------------------------
// Values, rows, ids.

#[rstest]
fn values_round_trip(#[values(Kind::File, Kind::Memory)] kind: Kind) {
    let db = db(kind);
    let mut conn = connect(&db.driver);
    conn.execute("CREATE TABLE v (n, i, r, t, b)", &[]).unwrap();
    let values = vec![
        Value::Null,
        Value::Integer(i64::MIN),
        Value::Real(-1.5e300),
        Value::Text("héllo 'quoted' \0 nul".to_owned()),
        Value::Blob(vec![0, 1, 255, 0]),
    ];
    assert_eq!(
        conn.execute("INSERT INTO v VALUES (?1, ?2, ?3, ?4, ?5)", &values)
            .unwrap(),
        1
    );

    let rows = conn.query("SELECT n, i, r, t, b FROM v", &[]).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].values(), values.as_slice());
    assert_eq!(rows[0].columns(), ["n", "i", "r", "t", "b"]);
}

#[test]
fn rows_are_addressable_by_name_and_share_their_columns() {
    let db = db(Kind::Memory);
    let mut conn = connect(&db.driver);
    let rows: Vec<Row> = conn
        .query(
            "SELECT value AS id, 'name-' || value AS name FROM (SELECT 1 AS value UNION ALL SELECT 2) WHERE value >= ?1 ORDER BY id",
            &[Value::Integer(1)],
        )
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].get("id"), Some(&Value::Integer(2)));
    assert_eq!(rows[1].get("name").and_then(Value::as_str), Some("name-2"));
    assert_eq!(rows[0].get("missing"), None);
    assert!(std::ptr::eq(rows[0].columns(), rows[1].columns()));
}

#[test]
fn a_repeated_point_select_reuses_its_statement_and_sees_new_data() {
    let db = db(Kind::Memory);
    let mut conn = connect(&db.driver);
    conn.execute("CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT)", &[])
        .unwrap();
    for k in 0..50_i64 {
        conn.execute(
            "INSERT INTO kv VALUES (?1, ?2)",
            &[k.into(), format!("v{k}").into()],
        )
        .unwrap();
    }
    for k in 0..50_i64 {
        let rows = conn.query("SELECT v FROM kv WHERE k = ?1", &[k.into()]).unwrap();
        assert_eq!(
            rows[0].get(0).and_then(Value::as_str),
            Some(format!("v{k}").as_str())
        );
    }
}

#[test]
fn execute_runs_statements_that_return_rows() {
    let db = db(Kind::File);
    let mut conn = connect(&db.driver);
    assert_eq!(conn.execute("PRAGMA journal_mode = WAL", &[]).unwrap(), 0);
    let mode = conn.query("PRAGMA journal_mode", &[]).unwrap();
    assert_eq!(mode[0].get(0).and_then(Value::as_str), Some("wal"));

    conn.execute("CREATE TABLE t (x INTEGER)", &[]).unwrap();
    let changed = conn
        .execute("INSERT INTO t VALUES (1), (2) RETURNING x", &[])
        .unwrap();
    assert_eq!(changed, 2);
    assert_eq!(conn.execute("UPDATE t SET x = x + 1", &[]).unwrap(), 2);
}

#[test]
fn connection_ids_are_unique_across_drivers() {
    let one = db(Kind::Memory);
    let two = db(Kind::File);
    let conns = [connect(&one.driver), connect(&two.driver), connect(&one.driver)];
    let mut ids: Vec<_> = conns.iter().map(Connection::id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    assert_eq!(conns[0].id(), conns[0].id(), "stable");
}

#[test]
fn dialect_describes_sqlite() {
    let db = db(Kind::Memory);
    let dialect = db.driver.dialect();
    assert_eq!(dialect.name(), "sqlite");
    assert_eq!(dialect.ping_sql(), "SELECT 1");
    assert_eq!(dialect.disconnect_code(), Some("DBFAULT_DISCONNECT"));
}

/// An injected disconnect on SQLite carries a code of its own, not
/// SQLite's API misuse, and still reads as a disconnect.
#[test]
fn an_injected_disconnect_is_not_api_misuse() {
    let db = db(Kind::Memory);
    let driver = FaultyDriver::new(db.driver.clone());
    let faults = driver.faults();
    let mut conn = driver.connect().expect("connect");
    assert!(faults.kill(conn.id()));
    let err = conn.execute("SELECT 1", &[]).unwrap_err();
    assert_eq!(err.code(), Some("DBFAULT_DISCONNECT"));
    assert!(err.is_injected());
    assert_eq!(SqliteDialect.classify(&err), ErrorClass::Disconnect);
    assert_eq!(
        SqliteDialect.classify(&Error::driver("DBFAULT_DISCONNECT", "")),
        ErrorClass::Disconnect
    );
}

#[rstest]
#[case::closed(Error::closed("gone"), ErrorClass::Disconnect)]
#[case::closed_with_busy_code(Error::closed("gone").with_code("SQLITE_BUSY"), ErrorClass::Disconnect)]
#[case::timeout(Error::timeout("no connection", None), ErrorClass::Other)]
#[case::pending_rollback(Error::pending_rollback("roll back first"), ErrorClass::Other)]
#[case::busy_timeout(Error::driver("SQLITE_BUSY_TIMEOUT", ""), ErrorClass::Transient)]
#[case::locked(Error::driver("SQLITE_LOCKED", ""), ErrorClass::Transient)]
#[case::constraint(Error::driver("SQLITE_CONSTRAINT", ""), ErrorClass::Constraint)]
#[case::misuse(Error::driver("SQLITE_MISUSE", ""), ErrorClass::Disconnect)]
#[case::injected(Error::driver("DBFAULT_DISCONNECT", ""), ErrorClass::Disconnect)]
#[case::cantopen_isdir(Error::driver("SQLITE_CANTOPEN_ISDIR", ""), ErrorClass::Disconnect)]
#[case::ioerr_short_read(Error::driver("SQLITE_IOERR_SHORT_READ", ""), ErrorClass::Disconnect)]
#[case::readonly(Error::driver("SQLITE_READONLY", ""), ErrorClass::Statement)]
#[case::corrupt(Error::driver("SQLITE_CORRUPT", ""), ErrorClass::Statement)]
fn classification_table(#[case] err: Error, #[case] class: ErrorClass) {
    assert_eq!(SqliteDialect.classify(&err), class);
}

#[test]
fn driver_and_connection_are_send_and_sync_where_needed() {
    fn send_sync<T: Send + Sync + 'static>() {}
    fn send<T: Send + 'static>() {}
    send_sync::<SqliteDriver>();
    send::<SqliteConnection>();
    send_sync::<SqliteDialect>();
}
