//! The PostgreSQL drivers against a real server (found by `pg_url`: the
//! test skips, saying why, where there is none, and fails under
//! `CI=true`): every row of `PgDialect`'s table with an error the server
//! produced, values both ways, the server-side faults of
//! `PgDriver::faulty` / `AsyncPgDriver::faulty`, and the leak check.
//!
//! Each test works in a schema of its own (`PgBackend`), so they run in
//! parallel against one database.

#![cfg(all(feature = "postgres", feature = "tokio"))]

mod common;

use std::time::{Duration, Instant};

use common::pg::PgBackend;
use dbfault::postgres::{assert_no_leaks, find_leaks};
use dbfault::{
    AsyncConnection, AsyncDriver, Connection, Dialect, Driver, Engine, Error, ErrorClass, ErrorKind,
    FaultyDriver, PgConnection, PgDialect, PgDriver, Pool, PoolConfig, Value,
};

/// A fresh schema with the fixture tables, or `None` when the test skips.
fn backend() -> Option<PgBackend> {
    PgBackend::new(true)
}

/// Asserts the SQLSTATE and class of `err`, and that the dialect agrees.
#[track_caller]
fn assert_code(err: &Error, code: &str, class: ErrorClass) {
    assert_eq!(err.code(), Some(code), "{err}");
    assert_eq!(err.class(), class, "{err}");
    assert_eq!(PgDialect.classify(err), class, "{err}");
    assert!(!err.is_injected(), "{err}");
}

/// Waits (a bounded poll of real time, not a timing assertion) until
/// `sql` returns a row.
fn wait_for(pg: &PgBackend, sql: &str) {
    let started = Instant::now();
    while pg.query(sql).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still no row after 10 s: {sql}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until the server no longer lists backend `pid`: it ended it.
fn wait_gone(pg: &PgBackend, pid: i32) {
    wait_for(
        pg,
        &format!("SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = {pid})"),
    );
}

/// A TCP port on 127.0.0.1 nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = listener.local_addr().expect("its address").port();
    drop(listener);
    port
}

/// Terminates backend `pid` from an admin connection of `pg`'s schema.
fn terminate(pg: &PgBackend, pid: i32) {
    let rows = pg.query(&format!("SELECT pg_terminate_backend({pid}, 5000)"));
    assert_eq!(
        rows[0].get(0),
        Some(&Value::Integer(1)),
        "backend {pid} terminated"
    );
}

/// A current-thread runtime with I/O, for the async driver's tests.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

// ---------------------------------------------------------------------------
// The dialect's table, row by row, with errors the server produced.

#[test]
fn class_08_a_refused_connect_is_a_disconnect() {
    let Some(_pg) = backend() else { return };
    let url = format!("postgres://postgres@127.0.0.1:{}/test", closed_port());
    let err = PgDriver::new(&url).unwrap().connect().unwrap_err();
    assert_code(&err, "08001", ErrorClass::Disconnect);
    assert!(err.message().contains("refused"), "{err}");
    let err = runtime()
        .block_on(dbfault::AsyncPgDriver::new(&url).unwrap().connect())
        .unwrap_err();
    assert_code(&err, "08001", ErrorClass::Disconnect);
}

#[test]
fn a_url_that_does_not_parse_is_a_config_error() {
    let err = PgDriver::new("postgres://host:notaport/db").unwrap_err();
    assert_eq!((err.kind(), err.field()), (ErrorKind::Config, Some("url")));
    let err = dbfault::AsyncPgDriver::new("nonsense=1").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

#[test]
fn p01_a_backend_terminated_mid_statement_is_a_disconnect_and_the_connection_dead() {
    let Some(pg) = backend() else { return };
    let mut conn = pg.driver().connect().unwrap();
    conn.begin().unwrap();
    conn.execute("INSERT INTO writes VALUES ('p01', 1)", &[]).unwrap();
    let pid = conn.backend_pid();
    let sleeping = common::Worker::spawn(move || {
        let result = conn.query("SELECT pg_sleep(30)", &[]);
        (conn, result)
    });
    wait_for(
        &pg,
        &format!("SELECT 1 FROM pg_stat_activity WHERE pid = {pid} AND query LIKE '%pg_sleep%'"),
    );
    terminate(&pg, pid);
    let (mut conn, result) = sleeping.join("the statement the kill cut");
    let err = result.unwrap_err();
    assert_code(&err, "57P01", ErrorClass::Disconnect);
    assert!(err.message().contains("administrator command"), "{err}");
    assert!(conn.is_broken() && !conn.in_transaction());
    let again = conn.ping().unwrap_err();
    assert_eq!((again.kind(), again.code()), (ErrorKind::Closed, Some("57P01")));
    conn.close().expect("closing a dead connection succeeds");
    assert!(pg.query("SELECT tag FROM writes").is_empty(), "rolled back");
}

#[test]
fn p01_an_idle_terminated_backend_the_async_driver_reports_with_the_servers_error() {
    let Some(pg) = backend() else { return };
    runtime().block_on(async {
        let mut conn = pg.async_driver().connect().await.unwrap();
        conn.ping().await.unwrap();
        terminate(&pg, conn.backend_pid());
        // The I/O task has read the FATAL by the time the next call looks.
        let err = conn.query("SELECT 1", &[]).await.unwrap_err();
        assert_code(&err, "57P01", ErrorClass::Disconnect);
        assert!(err.message().contains("administrator command"), "{err}");
        assert!(conn.is_broken());
        let again = conn.execute("SELECT 1", &[]).await.unwrap_err();
        assert_eq!((again.kind(), again.code()), (ErrorKind::Closed, Some("57P01")));
        conn.close().await.unwrap();
    });
}

/// The sync driver reads what the server sent while it was idle before it
/// writes its next request, as the async one does: the server's `FATAL`
/// is never lost to the socket's reset.
#[test]
fn p01_an_idle_terminated_backend_the_sync_driver_reports_with_the_servers_error_too() {
    let Some(pg) = backend() else { return };
    let mut conn = pg.driver().connect().unwrap();
    // A prepared statement last: its `Close` is the write that would lose
    // the `FATAL` were it sent before the read.
    conn.execute("SELECT $1::int8", &[Value::Integer(1)]).unwrap();
    terminate(&pg, conn.backend_pid());
    let err = conn.execute("SELECT 1", &[]).unwrap_err();
    assert_code(&err, "57P01", ErrorClass::Disconnect);
    assert!(conn.is_broken());
}

#[test]
fn p05_an_idle_session_timeout_is_a_disconnect() {
    let Some(pg) = backend() else { return };
    runtime().block_on(async {
        let mut conn = pg.async_driver().connect().await.unwrap();
        conn.execute("SET idle_session_timeout = '20ms'", &[])
            .await
            .unwrap();
        wait_gone(&pg, conn.backend_pid());
        let err = conn.ping().await.unwrap_err();
        assert_code(&err, "57P05", ErrorClass::Disconnect);
    });
}

#[test]
fn p03_in_class_25_an_idle_in_transaction_timeout_is_a_disconnect() {
    let Some(pg) = backend() else { return };
    runtime().block_on(async {
        let mut conn = pg.async_driver().connect().await.unwrap();
        conn.execute("SET idle_in_transaction_session_timeout = '20ms'", &[])
            .await
            .unwrap();
        conn.begin().await.unwrap();
        conn.execute("INSERT INTO writes VALUES ('25p03', 1)", &[])
            .await
            .unwrap();
        wait_gone(&pg, conn.backend_pid());
        let err = conn.commit().await.unwrap_err();
        assert_code(&err, "25P03", ErrorClass::Disconnect);
        assert!(!conn.in_transaction());
    });
    assert!(pg.query("SELECT tag FROM writes").is_empty());
}

#[test]
fn r25006_a_write_in_a_read_only_transaction_is_a_disconnect_by_choice() {
    let Some(pg) = backend() else { return };
    let mut conn = pg.driver().connect().unwrap();
    conn.execute("SET default_transaction_read_only = on", &[])
        .unwrap();
    let err = conn
        .execute("INSERT INTO writes VALUES ('ro', 1)", &[])
        .unwrap_err();
    assert_code(&err, "25006", ErrorClass::Disconnect);

    let mut conn = pg.driver().connect().unwrap();
    conn.begin().unwrap();
    conn.execute("SET TRANSACTION READ ONLY", &[]).unwrap();
    let err = conn.execute("UPDATE accounts SET balance = 0", &[]).unwrap_err();
    assert_code(&err, "25006", ErrorClass::Disconnect);
}

#[test]
fn r40001_two_serializable_transactions_one_fails_transient() {
    let Some(pg) = backend() else { return };
    let driver = pg.driver();
    let (mut a, mut b) = (driver.connect().unwrap(), driver.connect().unwrap());
    for conn in [&mut a, &mut b] {
        conn.begin().unwrap();
        conn.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", &[])
            .unwrap();
        conn.query("SELECT balance FROM accounts WHERE id = 1", &[])
            .unwrap();
    }
    a.execute("UPDATE accounts SET balance = balance + 1 WHERE id = 1", &[])
        .unwrap();
    a.commit().unwrap();
    let err = b
        .execute("UPDATE accounts SET balance = balance + 1 WHERE id = 1", &[])
        .unwrap_err();
    assert_code(&err, "40001", ErrorClass::Transient);
    assert!(b.in_transaction(), "aborted, still to be rolled back");
    b.rollback().unwrap();
    assert!(!b.in_transaction());
}

#[test]
fn r40p01_a_real_deadlock_is_transient_for_its_victim() {
    let Some(pg) = backend() else { return };
    let driver = pg.driver();
    let (mut a, mut b) = (driver.connect().unwrap(), driver.connect().unwrap());
    for conn in [&mut a, &mut b] {
        // Superuser only; where refused, the default (1 s) applies.
        let _ = conn.execute("SET deadlock_timeout = '10ms'", &[]);
        conn.begin().unwrap();
    }
    a.execute("UPDATE accounts SET balance = 1 WHERE id = 1", &[])
        .unwrap();
    b.execute("UPDATE accounts SET balance = 2 WHERE id = 2", &[])
        .unwrap();
    let a_pid = a.backend_pid();
    let a_waits = common::Worker::spawn(move || {
        let result = a.execute("UPDATE accounts SET balance = 1 WHERE id = 2", &[]);
        (a, result)
    });
    // Once `a` waits for `b`'s row, `b` asks for `a`'s: a cycle.
    wait_for(
        &pg,
        &format!("SELECT 1 FROM pg_locks WHERE pid = {a_pid} AND NOT granted"),
    );
    let b_result = b.execute("UPDATE accounts SET balance = 2 WHERE id = 1", &[]);
    let (mut a, a_result) = a_waits.join("a's update");
    let errors: Vec<Error> = [a_result.err(), b_result.err()].into_iter().flatten().collect();
    assert_eq!(errors.len(), 1, "one victim: {errors:?}");
    assert_code(&errors[0], "40P01", ErrorClass::Transient);
    a.rollback().unwrap();
    b.rollback().unwrap();
}

#[test]
fn r55p03_for_update_nowait_on_a_locked_row_is_transient() {
    let Some(pg) = backend() else { return };
    let driver = pg.driver();
    let (mut a, mut b) = (driver.connect().unwrap(), driver.connect().unwrap());
    a.begin().unwrap();
    a.query("SELECT * FROM accounts WHERE id = 1 FOR UPDATE", &[])
        .unwrap();
    let err = b
        .query("SELECT * FROM accounts WHERE id = 1 FOR UPDATE NOWAIT", &[])
        .unwrap_err();
    assert_code(&err, "55P03", ErrorClass::Transient);
    assert!(!b.in_transaction(), "autocommit: nothing left open");
    a.rollback().unwrap();
}

#[test]
fn r23_a_duplicate_key_is_a_constraint_error() {
    let Some(pg) = backend() else { return };
    let mut conn = pg.driver().connect().unwrap();
    let err = conn
        .execute(
            "INSERT INTO accounts (id, owner, balance) VALUES ($1, 'dup', 1)",
            &[Value::Integer(1)],
        )
        .unwrap_err();
    assert_code(&err, "23505", ErrorClass::Constraint);
    let err = conn
        .execute("UPDATE accounts SET balance = -1 WHERE id = 1", &[])
        .unwrap_err();
    assert_code(&err, "23514", ErrorClass::Constraint);
    conn.ping().expect("the connection lives");
}

#[test]
fn r42_syntax_and_missing_tables_are_statement_errors() {
    let Some(pg) = backend() else { return };
    let mut conn = pg.driver().connect().unwrap();
    let err = conn.execute("SELEKT 1", &[]).unwrap_err();
    assert_code(&err, "42601", ErrorClass::Statement);
    let err = conn.query("SELECT * FROM nowhere", &[]).unwrap_err();
    assert_code(&err, "42P01", ErrorClass::Statement);
    assert!(err.message().contains("nowhere"), "{err}");
    let err = conn.query("SELECT 1 / 0", &[]).unwrap_err();
    assert_code(&err, "22012", ErrorClass::Statement);
    conn.ping().expect("the connection lives");
}

#[test]
fn r25_transaction_misuse_is_a_statement_error_and_ping_works_in_an_aborted_one() {
    let Some(pg) = backend() else { return };
    let mut conn = pg.driver().connect().unwrap();
    assert_code(&conn.commit().unwrap_err(), "25P01", ErrorClass::Statement);
    conn.begin().unwrap();
    assert_code(&conn.begin().unwrap_err(), "25001", ErrorClass::Statement);
    conn.execute("INSERT INTO writes VALUES ('t', 1)", &[]).unwrap();
    conn.execute("SELEKT", &[]).unwrap_err();
    conn.ping().expect("a ping answers inside an aborted transaction");
    let err = conn.query("SELECT 1", &[]).unwrap_err();
    assert_code(&err, "25P02", ErrorClass::Statement);
    // A rollback to a savepoint recovers, as the server lets it.
    conn.rollback().unwrap();
    conn.execute("BEGIN", &[]).unwrap();
    assert!(conn.in_transaction(), "a BEGIN through execute counts");
    conn.execute("SAVEPOINT s", &[]).unwrap();
    conn.execute("INSERT INTO writes VALUES ('kept', 1)", &[])
        .unwrap();
    conn.execute("INSERT INTO writes VALUES ('kept', 1)", &[])
        .unwrap_err();
    conn.execute("ROLLBACK TO SAVEPOINT s", &[]).unwrap();
    conn.execute("INSERT INTO writes VALUES ('after', 1)", &[])
        .unwrap();
    conn.execute("COMMIT", &[]).unwrap();
    assert!(!conn.in_transaction(), "a COMMIT through execute counts");
    let tags = pg.query("SELECT tag FROM writes");
    assert_eq!(tags.len(), 1, "the savepoint undid 'kept'");
    assert_eq!(tags[0].get(0), Some(&Value::from("after")));
}

/// A PostgreSQL server of the test's own, on a free port, for what the
/// shared one must not be put through (a shutdown). Stopped at once and
/// removed when dropped.
struct PrivateServer {
    bin: std::path::PathBuf,
    dir: String,
    port: u16,
    /// Runs a server command as the server's owner: `postgres` when the
    /// tests run as root (initdb refuses root).
    as_owner: Vec<String>,
}

impl PrivateServer {
    /// Starts one, or says why it cannot (no server binaries here).
    fn start() -> Result<PrivateServer, String> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|e| format!("no /usr/lib/postgresql: {e}"))?
            .filter_map(|e| Some(e.ok()?.path().join("bin")))
            .find(|bin| bin.join("initdb").is_file())
            .ok_or("no initdb under /usr/lib/postgresql")?;
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| out.stdout.starts_with(b"0\n"));
        let as_owner: Vec<String> = if root {
            ["runuser", "-u", "postgres", "--"].map(String::from).to_vec()
        } else {
            Vec::new()
        };
        let run = |args: &[&str]| -> Result<String, String> {
            let mut cmd = as_owner.iter().map(String::as_str).chain(args.iter().copied());
            let program = cmd.next().expect("a program");
            let out = std::process::Command::new(program)
                .args(cmd)
                .output()
                .map_err(|e| format!("{args:?}: {e}"))?;
            if !out.status.success() {
                return Err(format!("{args:?}: {}", String::from_utf8_lossy(&out.stderr)));
            }
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        };
        let dir = run(&["mktemp", "-d", "/tmp/dbfault-pg-XXXXXX"])?;
        let server = PrivateServer {
            bin,
            dir,
            port: closed_port(),
            as_owner: as_owner.clone(),
        };
        let initdb = server.bin.join("initdb");
        run(&[
            initdb.to_str().expect("a UTF-8 path"),
            "-D",
            &format!("{}/data", server.dir),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-N",
        ])?;
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            server.port, server.dir
        );
        server.pg_ctl(&[
            "-w",
            "-o",
            &options,
            "-l",
            &format!("{}/log", server.dir),
            "start",
        ])?;
        Ok(server)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), String> {
        let pg_ctl = self.bin.join("pg_ctl");
        let data = format!("{}/data", self.dir);
        let mut cmd: Vec<&str> = self.as_owner.iter().map(String::as_str).collect();
        cmd.extend([pg_ctl.to_str().expect("a UTF-8 path"), "-D", &data]);
        cmd.extend(args);
        let out = std::process::Command::new(cmd[0])
            .args(&cmd[1..])
            .output()
            .map_err(|e| format!("pg_ctl {args:?}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "pg_ctl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// 57P03 (cannot_connect_now) needs a server that shuts down, which the
/// shared one must not: a private server of the test's own, stopped in
/// "smart" mode while a session holds it, refuses new connects with
/// `FATAL 57P03` ("the database system is shutting down").
/// A private server, or `None` after saying why there is none (with
/// `CI=true`, a panic).
fn private_server() -> Option<PrivateServer> {
    match PrivateServer::start() {
        Ok(server) => Some(server),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true, so this test may not skip: no private PostgreSQL server: {why}")
        }
        Err(why) => {
            eprintln!("skipping: no private PostgreSQL server: {why}");
            None
        }
    }
}

#[test]
fn p03_a_server_shutting_down_refuses_connects_with_cannot_connect_now() {
    let Some(server) = private_server() else { return };
    let driver = PgDriver::new(&server.url()).unwrap();
    let mut holding = driver.connect().expect("a session on the private server");
    server
        .pg_ctl(&["-m", "smart", "-W", "stop"])
        .expect("a smart shutdown starts");
    let started = Instant::now();
    let err = loop {
        match driver.connect() {
            Err(err) => break err,
            // The postmaster has not seen the signal yet.
            Ok(mut early) => early.close().unwrap(),
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "connects still succeed"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_code(&err, "57P03", ErrorClass::Disconnect);
    assert!(err.message().contains("shutting down"), "{err}");
    holding.ping().expect("the session it waits for lives on");
    holding.close().unwrap();
}

/// 57P02 (crash_shutdown) needs a backend to crash, which the shared
/// server must not see: on a private server, a backend killed with
/// `SIGKILL` makes the server end every other session, with a `WARNING
/// 57P02` before it closes the connection; the driver reports that
/// warning as the error of the close.
///
/// The session stays idle until the server has reset: the server sends
/// its warning only if the backend is not itself sending (a backend
/// answering a ping when the signal lands exits without it, and the
/// client sees a bare close), so a ping during the reset would make the
/// test race the server.
#[test]
fn p02_a_crash_of_another_backend_ends_a_session_with_crash_shutdown() {
    let Some(server) = private_server() else { return };
    let driver = PgDriver::new(&server.url()).unwrap();
    let mut survivor = driver.connect().unwrap();
    let victim = driver.connect().unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-9", &victim.backend_pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success(), "SIGKILL to backend {}", victim.backend_pid());
    // Wait, on connections of its own, until the survivor's backend has
    // gone (meanwhile the server may refuse connects: 57P03, "in recovery
    // mode").
    let started = Instant::now();
    let pid = Value::Integer(i64::from(survivor.backend_pid()));
    loop {
        if let Ok(mut probe) = driver.connect() {
            let sql = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int4";
            let alive = probe.query(sql, std::slice::from_ref(&pid));
            probe.close().unwrap();
            if alive.is_ok_and(|rows| rows[0].get(0) == Some(&Value::Integer(0))) {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the server never reset"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let err = survivor.ping().expect_err("the session ended with the reset");
    assert_code(&err, "57P02", ErrorClass::Disconnect);
    assert!(err.message().contains("crash of another server process"), "{err}");
    assert!(survivor.is_broken());
}

// ---------------------------------------------------------------------------
// Values.

#[test]
fn values_map_both_ways() {
    let Some(pg) = backend() else { return };
    let mut conn = pg.driver().connect().unwrap();
    // Each value comes back as it went, but the integer bound to a float.
    let sent = [
        Value::Integer(-2),
        Value::Integer(1 << 30),
        Value::Integer(i64::MIN),
        Value::Real(1.5),
        Value::Real(-0.25),
        Value::from("héllo"),
        Value::from("v"),
        Value::Blob(vec![0, 255, 7]),
        Value::Integer(1),
        Value::Null,
        Value::Integer(3),
    ];
    let row = conn
        .query_row(
            "SELECT $1::int2 AS a, $2::int4 AS b, $3::int8 AS c, $4::float4 AS d, $5::float8 AS e, \
             $6::text AS f, $7::varchar AS g, $8::bytea AS h, $9::bool AS i, $10::int8 AS j, \
             $11::float8 AS k, 'lit' AS l, 7::oid AS m",
            &sent,
        )
        .unwrap()
        .expect("a row");
    let mut expected = sent[..10].to_vec();
    expected.extend([Value::Real(3.0), Value::from("lit"), Value::Integer(7)]);
    assert_eq!(row.values(), expected);
    assert_eq!(row.columns()[0], "a");
    let mapped = conn
        .query_row_map(
            "SELECT owner, balance FROM accounts WHERE id = $1",
            &[Value::Integer(2)],
            |r| Ok((r.get::<String>("owner")?, r.get::<i64>(1)?)),
        )
        .unwrap();
    assert_eq!(mapped, Some(("bob".to_owned(), 100)));
    assert_eq!(
        conn.execute(
            "UPDATE accounts SET balance = balance WHERE id > $1",
            &[Value::Integer(1)]
        )
        .unwrap(),
        2
    );
}

#[test]
fn a_value_that_does_not_map_is_an_error_naming_it_never_a_panic() {
    let Some(pg) = backend() else { return };
    let mut conn = pg.driver().connect().unwrap();
    let cases: [(&str, Vec<Value>, &str); 7] = [
        ("SELECT 1.5::numeric AS n", vec![], "column 0 (n): "),
        ("SELECT now() AS at", vec![], "timestamptz"),
        (
            "SELECT $1::int4",
            vec![Value::Integer(1 << 40)],
            "out of the range",
        ),
        (
            "SELECT $1::int4",
            vec![Value::from("12")],
            "cannot bind text '12'",
        ),
        ("SELECT $1::bool", vec![Value::Integer(2)], "not a boolean"),
        ("SELECT $1::numeric", vec![Value::Real(1.0)], "numeric"),
        ("SELECT $1::bytea", vec![Value::from("x")], "bytea"),
    ];
    for (sql, params, says) in cases {
        let err = conn.query(sql, &params).unwrap_err();
        assert_eq!(err.code(), Some("DBFAULT_TYPE"), "{sql}: {err}");
        assert_eq!(err.class(), ErrorClass::Statement, "{sql}: {err}");
        assert!(err.message().contains(says), "{sql}: {err}");
    }
    let err = conn
        .query("SELECT $1::int8", &[Value::Integer(1), Value::Integer(2)])
        .unwrap_err();
    assert_eq!(err.code(), Some("DBFAULT_PARAMETER"), "{err}");
    assert!(err.message().contains("takes 1 parameters"), "{err}");
    // None of these reached the server's transaction: it stays usable.
    conn.begin().unwrap();
    conn.query("SELECT now()", &[]).unwrap_err();
    conn.execute("INSERT INTO writes VALUES ($1, 1)", &[Value::from("kept")])
        .expect("a client-side refusal does not abort the transaction");
    conn.commit().unwrap();
    assert_eq!(pg.query("SELECT tag FROM writes").len(), 1);
}

// ---------------------------------------------------------------------------
// Server-side faults done by the server.

/// A connection whose backend the server terminated: its next call fails
/// with the server's `FATAL 57P01`, not an error the fault layer made up.
#[track_caller]
fn assert_terminated(conn: &mut impl Connection) {
    let err = conn.ping().unwrap_err();
    assert_code(&err, "57P01", ErrorClass::Disconnect);
    assert_eq!(err.kind(), ErrorKind::Driver, "the server's error: {err}");
}

#[test]
fn kill_and_restart_terminate_real_backends() {
    let Some(pg) = backend() else { return };
    let driver = pg.driver().faulty();
    let faults = driver.faults();
    let (mut a, mut b, mut c) = (
        driver.connect().unwrap(),
        driver.connect().unwrap(),
        driver.connect().unwrap(),
    );
    a.begin().unwrap();
    a.execute("INSERT INTO writes VALUES ('killed', 1)", &[]).unwrap();
    assert!(faults.kill(a.id()));
    assert!(!faults.kill(a.id()), "already killed");
    assert_terminated(&mut a);
    b.ping().expect("b lives");
    faults.restart();
    assert_terminated(&mut b);
    assert_terminated(&mut c);
    let mut d = driver.connect().expect("a connect after a restart");
    d.ping().unwrap();
    assert!(
        pg.query("SELECT tag FROM writes").is_empty(),
        "the server rolled back"
    );
    drop((a, b, c, d));
    assert!(pg.leaks_once_settled().is_clean());
}

#[test]
fn an_outage_terminates_and_refuses_until_restored() {
    let Some(pg) = backend() else { return };
    let driver = pg.driver().faulty();
    let faults = driver.faults();
    let mut a = driver.connect().unwrap();
    faults.outage();
    assert_terminated(&mut a);
    let err = driver.connect().unwrap_err();
    assert!(err.is_disconnect() && err.is_injected(), "{err}");
    assert_eq!(err.code(), Some("57P01"));
    faults.restore();
    driver.connect().unwrap().ping().unwrap();
}

#[test]
fn the_async_driver_is_killed_by_the_server_too() {
    let Some(pg) = backend() else { return };
    runtime().block_on(async {
        let driver = pg.async_driver().faulty();
        let faults = driver.faults();
        let mut a = driver.connect().await.unwrap();
        let mut b = driver.connect().await.unwrap();
        assert!(faults.kill(a.id()));
        let err = a.execute("SELECT 1", &[]).await.unwrap_err();
        assert_code(&err, "57P01", ErrorClass::Disconnect);
        b.ping().await.expect("b lives");
        faults.restart();
        let err = b.ping().await.unwrap_err();
        assert_code(&err, "57P01", ErrorClass::Disconnect);
        driver.connect().await.unwrap().ping().await.unwrap();
    });
}

#[test]
fn faulty_driver_new_kills_in_the_fault_layer() {
    let Some(pg) = backend() else { return };
    let driver = FaultyDriver::new(pg.driver());
    let faults = driver.faults();
    let mut a = driver.connect().unwrap();
    assert!(faults.kill(a.id()));
    let err = a.ping().unwrap_err();
    assert!(err.is_injected() && err.is_disconnect(), "{err}");
    assert_eq!((err.kind(), err.code()), (ErrorKind::Closed, Some("57P01")));
}

#[test]
fn the_engine_recovers_from_a_real_kill() {
    let Some(pg) = backend() else { return };
    let driver = pg.driver().faulty();
    let faults = driver.faults();
    let engine = Engine::new(Pool::new(driver, PoolConfig::new().size(2)).unwrap());
    let mut conn = engine.connect().unwrap();
    conn.execute("INSERT INTO writes VALUES ('one', 1)", &[]).unwrap();
    for id in faults.live_connections() {
        faults.kill(id);
    }
    let err = conn
        .execute("INSERT INTO writes VALUES ('lost', 1)", &[])
        .unwrap_err();
    assert!(err.is_disconnect() && err.connection_invalidated(), "{err}");
    assert_eq!(err.code(), Some("57P01"));
    assert!(!err.is_injected(), "{err}");
    conn.execute("INSERT INTO writes VALUES ('two', 1)", &[])
        .expect("the engine reconnected");
    assert_eq!(pg.query("SELECT tag FROM writes ORDER BY tag").len(), 2);
}

// ---------------------------------------------------------------------------
// The leak check.

#[test]
fn a_leaked_transaction_is_reported_and_a_clean_state_passes() {
    let Some(pg) = backend() else { return };
    assert_no_leaks(&pg.url);
    let mut leaked: PgConnection = pg.driver().connect().unwrap();
    leaked.begin().unwrap();
    leaked
        .execute("INSERT INTO writes VALUES ('leak', 1)", &[])
        .unwrap();
    let report = find_leaks(&pg.url).unwrap();
    assert_eq!(report.leaks.len(), 1, "{report}");
    let leak = &report.leaks[0];
    assert_eq!(leak.pid, leaked.backend_pid());
    assert_eq!(leak.state, "idle in transaction");
    assert!(leak.last_statement.contains("'leak'"), "{report}");
    assert!(
        leak.locks
            .iter()
            .any(|l| l.starts_with("RowExclusiveLock on relation") && l.ends_with("writes")),
        "{report}"
    );
    let text = report.to_string();
    assert!(
        text.contains("1 backend(s)") && text.contains("idle in transaction"),
        "{text}"
    );
    let panic = std::panic::catch_unwind(|| assert_no_leaks(&pg.url)).unwrap_err();
    let message = panic.downcast_ref::<String>().expect("a message");
    assert!(message.contains(&leaked.backend_pid().to_string()), "{message}");

    leaked.rollback().unwrap();
    let report = find_leaks(&pg.url).unwrap();
    assert!(report.is_clean(), "{report}");
    assert!(
        report.to_string().starts_with("no backend of database"),
        "{report}"
    );
}

#[test]
fn an_aborted_transaction_and_a_session_lock_are_leaks_too() {
    let Some(pg) = backend() else { return };
    let mut aborted = pg.driver().connect().unwrap();
    aborted.begin().unwrap();
    aborted.execute("SELEKT", &[]).unwrap_err();
    let mut locker = pg.driver().connect().unwrap();
    locker
        .query("SELECT pg_advisory_lock(42)::text", &[])
        .expect("a session lock");
    let report = find_leaks(&pg.url).unwrap();
    let states: Vec<&str> = report.leaks.iter().map(|l| l.state.as_str()).collect();
    assert_eq!(report.leaks.len(), 2, "{report}");
    assert!(states.contains(&"idle in transaction (aborted)"), "{report}");
    let session = report
        .leaks
        .iter()
        .find(|l| l.pid == locker.backend_pid())
        .expect("the advisory lock's holder");
    assert_eq!(session.state, "idle");
    assert!(session.locks.iter().any(|l| l.contains("advisory")), "{report}");
    aborted.close().unwrap();
    locker.close().unwrap();
    assert!(pg.leaks_once_settled().is_clean());
}

#[test]
fn the_leak_check_of_an_unreachable_server_is_an_error() {
    let err = find_leaks(&format!("postgres://postgres@127.0.0.1:{}/test", closed_port())).unwrap_err();
    assert!(err.is_disconnect(), "{err}");
    assert_eq!(find_leaks("::").unwrap_err().kind(), ErrorKind::Config);
}

// ---------------------------------------------------------------------------
// Finding the server.

/// Runs this test binary again on one PostgreSQL test, with `DATABASE_URL`
/// at a closed port: without `CI=true` the test skips and says why; with
/// it, the test fails.
#[test]
fn without_a_server_a_test_skips_saying_why_and_fails_under_ci() {
    if std::env::var_os("DBFAULT_PG_CHILD").is_some() {
        return;
    }
    let url = format!("postgres://someone:secret@127.0.0.1:{}/test", closed_port());
    let run = |ci: &str| {
        let out = std::process::Command::new(std::env::current_exe().expect("this test binary"))
            .args([
                "--exact",
                "r23_a_duplicate_key_is_a_constraint_error",
                "--nocapture",
            ])
            .env("DATABASE_URL", &url)
            .env("CI", ci)
            .env("DBFAULT_PG_CHILD", "1")
            .output()
            .expect("the test binary runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let (passed, text) = run("false");
    assert!(passed, "{text}");
    assert!(
        text.contains("skipping this PostgreSQL test: no PostgreSQL at"),
        "{text}"
    );
    assert!(
        text.contains("(DATABASE_URL)") && text.contains("someone:***@"),
        "{text}"
    );
    assert!(!text.contains("secret"), "the password is not printed: {text}");
    let (passed, text) = run("true");
    assert!(!passed, "{text}");
    assert!(
        text.contains("CI=true, so a PostgreSQL test may not skip"),
        "{text}"
    );
}
