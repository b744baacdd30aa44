//! `query_row` and `query_row_map`: the first row of a query, through
//! every layer that has them (drivers, the fault layer, both engines), and a
//! rule on `Op::Query` catches both.

use std::panic::{AssertUnwindSafe, catch_unwind};

use dbfault::testing::fresh_database;
use dbfault::*;

/// An engine over SQLite under the fault layer, and its faults.
fn faulty_engine() -> (Faults, Engine<FaultyDriver<SqliteDriver>>) {
    let driver = FaultyDriver::new(fresh_database().unwrap());
    let faults = driver.faults();
    (faults, Engine::new(Pool::new(driver, PoolConfig::new()).unwrap()))
}

const ALL: &str = "SELECT owner FROM accounts ORDER BY id";

#[test]
fn sqlite_query_row_returns_the_first_row_or_none() {
    let db = fresh_database().unwrap();
    let mut conn = db.connect().unwrap();
    let row = conn.query_row(ALL, &[]).unwrap().unwrap();
    assert_eq!(row.get("owner").and_then(Value::as_str), Some("ann"));
    assert!(
        conn.query_row("SELECT id FROM accounts WHERE id = 99", &[])
            .unwrap()
            .is_none()
    );
    // The statement was reset: the same query again starts from the top.
    assert_eq!(conn.query_row(ALL, &[]).unwrap(), Some(row));
    assert_eq!(conn.query(ALL, &[]).unwrap().len(), 3);
}

#[test]
fn the_mock_answers_query_row_from_its_script() {
    let server = MockServer::new();
    server.expect(
        Expectation::exact(ALL)
            .returns_rows(["owner"], [vec![Value::from("ann")], vec![Value::from("bob")]])
            .times(1),
    );
    let mut conn = server.driver().connect().unwrap();
    let row = conn.query_row(ALL, &[]).unwrap().unwrap();
    assert_eq!(row.get(0).and_then(Value::as_str), Some("ann"));
    server.verify().unwrap();
}

#[test]
fn a_query_rule_fires_on_query_row_and_the_engine_invalidates() {
    let (faults, engine) = faulty_engine();
    let mut conn = engine.connect().unwrap();
    let guard = faults
        .arm(
            Rule::on(Op::Query)
                .matching("FROM accounts")
                .times(1)
                .disconnect(),
        )
        .unwrap();
    let err = conn.query_row(ALL, &[]).unwrap_err();
    assert!(err.connection_invalidated());
    assert_eq!(guard.hits(), 1);
    let row = conn.query_row(ALL, &[]).unwrap().unwrap();
    assert_eq!(row.get(0).and_then(Value::as_str), Some("ann"));
    let mut tx = conn.begin().unwrap();
    assert!(tx.query_row(ALL, &[]).unwrap().is_some());
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn the_async_engine_has_query_row_on_blocking_sqlite() {
    let driver = FaultyDriver::new(Blocking::new(fresh_database().unwrap()));
    let engine = AsyncEngine::new(AsyncPool::new(driver, PoolConfig::new()).unwrap());
    let mut conn = engine.connect().await.unwrap();
    let row = conn.query_row(ALL, &[]).await.unwrap().unwrap();
    assert_eq!(row.get(0).and_then(Value::as_str), Some("ann"));
    let mut tx = conn.begin().await.unwrap();
    assert!(tx.query_row("SELECT 1 WHERE 0", &[]).await.unwrap().is_none());
    tx.rollback().await.unwrap();
}

// ---------------------------------------------------------------------------
// query_row_map: the row read in place.

const ONE: &str = "SELECT id, owner, balance, NULL AS note FROM accounts WHERE id = ?1";

/// The first row as `query_row_map` lends it, copied out.
fn mapped<C: Connection>(conn: &mut C, sql: &str, params: &[Value]) -> Result<Option<Row>> {
    conn.query_row_map(sql, params, |row| row.to_row())
}

fn seeded_mock() -> MockServer {
    let server = MockServer::new();
    let row = vec![
        Value::Integer(1),
        Value::from("ann"),
        Value::Integer(100),
        Value::Null,
    ];
    server.expect(
        Expectation::exact(ONE)
            .returns_rows(["id", "owner", "balance", "note"], [row])
            .times(2),
    );
    server
}

#[test]
fn query_row_map_reads_typed_columns_by_position_and_name() {
    let db = fresh_database().unwrap();
    let mut conn = db.connect().unwrap();
    let (id, owner, balance, note) = conn
        .query_row_map(ONE, &[Value::Integer(2)], |row| {
            assert_eq!(row.len(), 4);
            assert_eq!(row.column_name(1), Some("owner"));
            // Text borrowed from SQLite's row, for the length of the call.
            let owner: &str = row.get("owner")?;
            Ok((
                row.get::<i64>(0)?,
                owner.to_uppercase(),
                row.get::<u32>("balance")?,
                row.get::<Option<String>>("note")?,
            ))
        })
        .unwrap()
        .unwrap();
    assert_eq!((id, owner.as_str(), balance, note), (2, "BOB", 100, None));
    // No row: the callback is not called.
    let none = conn
        .query_row_map(ONE, &[Value::Integer(99)], |_| -> Result<()> {
            panic!("called without a row")
        })
        .unwrap();
    assert_eq!(none, None);
}

#[test]
fn query_row_map_sees_what_query_row_sees_on_every_driver() {
    let sqlite = fresh_database().unwrap();
    let server = seeded_mock();
    let params = [Value::Integer(1)];
    let expected = sqlite.connect().unwrap().query_row(ONE, &params).unwrap();
    assert!(expected.is_some());

    assert_eq!(
        mapped(&mut sqlite.connect().unwrap(), ONE, &params).unwrap(),
        expected
    );
    let faulty = FaultyDriver::new(sqlite.clone());
    assert_eq!(
        mapped(&mut faulty.connect().unwrap(), ONE, &params).unwrap(),
        expected
    );
    // The mock and the fault layer over it take the default path, through
    // an owned row: the same values.
    assert_eq!(
        mapped(&mut server.driver().connect().unwrap(), ONE, &params).unwrap(),
        expected
    );
    let faulty = FaultyDriver::new(server.driver());
    assert_eq!(
        mapped(&mut faulty.connect().unwrap(), ONE, &params).unwrap(),
        expected
    );
    server.verify().unwrap();
    // A boxed connection forwards to the connection it holds.
    let mut boxed: Box<SqliteConnection> = Box::new(sqlite.connect().unwrap());
    assert_eq!(mapped(&mut boxed, ONE, &params).unwrap(), expected);
}

#[test]
fn a_value_of_the_wrong_type_is_an_error_naming_the_column_and_the_connection_lives_on() {
    let db = fresh_database().unwrap();
    let mut conn = db.connect().unwrap();
    let err = conn
        .query_row_map(ONE, &[Value::Integer(1)], |row| row.get::<i64>("owner"))
        .unwrap_err();
    assert_eq!(err.code(), Some("DBFAULT_TYPE"));
    assert_eq!(err.class(), ErrorClass::Statement);
    assert_eq!(err.message(), "column 1 (owner): expected integer, found text");

    let err = conn
        .query_row_map(ONE, &[Value::Integer(1)], |row| row.get::<i64>("missing"))
        .unwrap_err();
    assert_eq!(err.code(), Some("DBFAULT_COLUMN"));
    assert!(err.message().contains("\"missing\""), "{err}");

    // Text that is not UTF-8 is an error, not a panic and not altered.
    let err = conn
        .query_row_map("SELECT CAST(x'ff' AS TEXT)", &[], |row| row.get::<String>(0))
        .unwrap_err();
    assert_eq!(err.code(), Some("DBFAULT_TYPE"));
    // Its bytes are still there for a caller that asks for them as a blob
    // through SQL.
    let bytes = conn
        .query_row_map("SELECT CAST(CAST(x'ff' AS TEXT) AS BLOB)", &[], |row| {
            row.get::<Vec<u8>>(0)
        })
        .unwrap();
    assert_eq!(bytes, Some(vec![0xff]));
    assert!(conn.query_row(ONE, &[Value::Integer(1)]).unwrap().is_some());
}

#[test]
fn an_error_the_callback_returns_comes_back_as_is_and_the_connection_stays() {
    let journal = Journal::new();
    let driver = FaultyDriver::new(fresh_database().unwrap()).with_journal(journal.clone());
    let pool = Pool::new(driver, PoolConfig::new().journal(journal.clone())).unwrap();
    let engine = Engine::new(pool);
    let mut conn = engine.connect().unwrap();
    let id = conn.pooled().unwrap().id();
    // Even an error of class disconnect: it is the callback's, not the
    // driver's, so nothing is invalidated.
    let err = conn
        .query_row_map(ONE, &[Value::Integer(1)], |_| -> Result<()> {
            Err(Error::closed("the callback gave up"))
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
    assert_eq!(err.message(), "the callback gave up");
    assert!(!err.connection_invalidated());
    assert!(!conn.is_invalidated());
    assert_eq!(conn.pooled().unwrap().id(), id);
    assert_eq!(journal.count(EventKind::Invalidate), 0);

    let mut tx = conn.begin().unwrap();
    let err = tx
        .query_row_map(ONE, &[Value::Integer(1)], |row| row.get::<Vec<u8>>("owner"))
        .unwrap_err();
    assert_eq!(err.code(), Some("DBFAULT_TYPE"));
    assert!(!tx.is_pending_rollback());
    tx.execute("UPDATE accounts SET balance = 90 WHERE id = 1", &[])
        .unwrap();
    tx.commit().unwrap();
    let balance = conn
        .query_row_map(ONE, &[Value::Integer(1)], |row| row.get::<i64>("balance"))
        .unwrap();
    assert_eq!(balance, Some(90));
}

#[test]
fn a_query_rule_fires_on_query_row_map_and_a_transaction_goes_pending_rollback() {
    let (faults, engine) = faulty_engine();
    let mut conn = engine.connect().unwrap();
    let guard = faults
        .arm(
            Rule::on(Op::Query)
                .matching("FROM accounts")
                .times(2)
                .disconnect(),
        )
        .unwrap();

    let mut called = false;
    let err = conn
        .query_row_map(ONE, &[Value::Integer(1)], |_| {
            called = true;
            Ok(())
        })
        .unwrap_err();
    assert!(err.is_disconnect() && err.connection_invalidated());
    assert!(!called, "the fault came before the server ran the query");

    // The next call reconnects by itself; inside a transaction the same
    // fault leaves the transaction pending rollback.
    let mut tx = conn.begin().unwrap();
    let err = tx
        .query_row_map(ONE, &[Value::Integer(1)], |row| row.get::<i64>(0))
        .unwrap_err();
    assert!(err.connection_invalidated());
    assert!(tx.is_pending_rollback());
    let err = tx
        .query_row_map(ONE, &[Value::Integer(1)], |row| row.get::<i64>(0))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PendingRollback);
    tx.rollback().unwrap();
    assert_eq!(guard.hits(), 2);
    let owner = conn
        .query_row_map(ONE, &[Value::Integer(3)], |row| row.get::<String>("owner"))
        .unwrap();
    assert_eq!(owner.as_deref(), Some("cyd"));
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn the_async_engine_has_query_row_map() {
    let driver = FaultyDriver::new(Blocking::new(fresh_database().unwrap()));
    let engine = AsyncEngine::new(AsyncPool::new(driver, PoolConfig::new()).unwrap());
    let mut conn = engine.connect().await.unwrap();
    let owner = conn
        .query_row_map(ONE, &[Value::Integer(2)], |row| row.get::<String>("owner"))
        .await
        .unwrap();
    assert_eq!(owner.as_deref(), Some("bob"));
    let err = conn
        .query_row_map(ONE, &[Value::Integer(2)], |row| row.get::<f64>("owner"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("DBFAULT_TYPE"));
    assert!(!err.connection_invalidated());

    let mut tx = conn.begin().await.unwrap();
    let none = tx
        .query_row_map(ONE, &[Value::Integer(99)], |row| row.get::<i64>(0))
        .await
        .unwrap();
    assert_eq!(none, None);
    tx.rollback().await.unwrap();
}

// ---------------------------------------------------------------------------
// The edges: what a lost answer, a panicking callback, unreadable text and a
// text variant do.

const BAD_TEXT: &str = "SELECT 1 AS id, CAST(x'ff' AS TEXT) AS note";

#[test]
fn a_lost_answer_is_not_handed_to_the_callback() {
    let (faults, engine) = faulty_engine();
    let mut conn = engine.connect().unwrap();
    let guard = faults
        .arm(
            Rule::on(Op::Query)
                .matching("FROM accounts")
                .times(1)
                .disconnect_after_apply(),
        )
        .unwrap();
    let mut seen = None;
    let err = conn
        .query_row_map(ONE, &[Value::Integer(1)], |row| {
            seen = Some(row.get::<String>("owner")?);
            Ok(())
        })
        .unwrap_err();
    assert!(err.is_disconnect() && err.connection_invalidated());
    assert_eq!(guard.hits(), 1);
    assert_eq!(seen, None, "the answer was lost with the connection");
}

#[test]
fn a_callback_that_panics_does_not_keep_kill_from_closing_the_connection() {
    let sqlite = fresh_database().unwrap();
    let faulty = FaultyDriver::new(sqlite.clone());
    let faults = faulty.faults();
    let mut conn = faulty.connect().unwrap();
    conn.begin().unwrap();
    conn.execute("INSERT INTO writes (tag, step) VALUES ('held', 1)", &[])
        .unwrap();
    // A failed assertion inside the callback, caught by a test harness.
    let caught = catch_unwind(AssertUnwindSafe(|| {
        conn.query_row_map(ONE, &[Value::Integer(1)], |_| -> Result<()> {
            panic!("an assertion in the callback failed")
        })
    }));
    assert!(caught.is_err());

    // Killed, the connection is closed now: SQLite rolls its transaction
    // back and another connection can write.
    assert!(faults.kill(conn.id()));
    let mut other = sqlite.connect().unwrap();
    other
        .execute("INSERT INTO writes (tag, step) VALUES ('other', 2)", &[])
        .unwrap();
    assert!(
        conn.query_row(ONE, &[Value::Integer(1)])
            .unwrap_err()
            .is_disconnect()
    );
}

#[test]
fn text_that_is_not_utf8_fails_only_the_get_that_reads_it_where_rows_are_read_in_place() {
    let sqlite = fresh_database().unwrap();
    let engine = Engine::new(Pool::new(sqlite.clone(), PoolConfig::new()).unwrap());
    let mut conn = engine.connect().unwrap();
    assert_eq!(
        conn.query_row_map(BAD_TEXT, &[], |row| row.get::<i64>(0))
            .unwrap(),
        Some(1)
    );
    let err = conn
        .query_row_map(BAD_TEXT, &[], |row| row.get::<String>("note"))
        .unwrap_err();
    assert_eq!(err.code(), Some("DBFAULT_TYPE"));
    assert!(
        err.message()
            .starts_with("column 1 (note): text that is not UTF-8"),
        "{err}"
    );

    // A boxed connection, even a trait object, forwards to the fast path.
    let mut boxed: Box<dyn Connection> = Box::new(sqlite.connect().unwrap());
    assert_eq!(
        boxed
            .query_row_map(BAD_TEXT, &[], |row| row.get::<i64>(0))
            .unwrap(),
        Some(1)
    );

    // An owned row cannot hold it: query_row fails, naming the column.
    let err = conn.query_row(BAD_TEXT, &[]).unwrap_err();
    assert_eq!(err.code(), Some("DBFAULT_TYPE"));
    assert!(
        err.message()
            .starts_with("column 1 (note): text that is not UTF-8"),
        "{err}"
    );
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn on_the_async_engine_unreadable_text_fails_the_call_naming_its_column() {
    let sqlite = fresh_database().unwrap();
    let engine = AsyncEngine::new(AsyncPool::new(Blocking::new(sqlite), PoolConfig::new()).unwrap());
    let mut conn = engine.connect().await.unwrap();
    // The async engine reads owned rows: the whole row must be readable.
    let err = conn
        .query_row_map(BAD_TEXT, &[], |row| row.get::<i64>(0))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("DBFAULT_TYPE"));
    assert!(err.message().starts_with("column 1 (note)"), "{err}");
    assert!(!err.connection_invalidated());
    let id = conn
        .query_row_map("SELECT 7", &[], |row| row.get::<i64>(0))
        .await
        .unwrap();
    assert_eq!(id, Some(7));
}

#[test]
fn column_names_stay_right_when_a_whitespace_variant_prepares_the_statement_anew() {
    let driver = SqliteDriver::memory("query-row-map-names-trim").unwrap();
    let mut conn = driver.connect().unwrap();
    conn.execute("CREATE TABLE t (a INTEGER, b TEXT)", &[]).unwrap();
    conn.execute("INSERT INTO t VALUES (1, 'x')", &[]).unwrap();
    let sql = "SELECT * FROM t";
    assert_eq!(conn.query_row(sql, &[]).unwrap().unwrap().columns(), ["a", "b"]);
    // Out of rusqlite's statement cache (execute keeps the names' list).
    for n in 0..40 {
        conn.execute(&format!("SELECT {n} AS n"), &[]).unwrap();
    }
    driver
        .connect()
        .unwrap()
        .execute("ALTER TABLE t RENAME COLUMN b TO renamed", &[])
        .unwrap();
    // The same statement for rusqlite, which trims the text, prepared anew
    // by each path in turn.
    let name = conn
        .query_row_map(&format!("{sql}\n"), &[], |row| {
            Ok(row.column_name(1).map(str::to_owned))
        })
        .unwrap();
    assert_eq!(name, Some(Some("renamed".to_owned())));
    let after = conn.query_row(sql, &[]).unwrap().unwrap();
    assert_eq!(after.columns(), ["a", "renamed"]);
    assert_eq!(after.get("renamed"), Some(&Value::from("x")));
    assert_eq!(
        conn.query(&format!("  {sql}"), &[]).unwrap()[0].columns(),
        ["a", "renamed"]
    );
}

#[test]
fn unreadable_text_names_its_column_through_get_ref_and_to_row_too() {
    let mut conn = fresh_database().unwrap().connect().unwrap();
    let err = conn
        .query_row_map(BAD_TEXT, &[], |row| row.get_ref("note").map(ValueRef::to_value))
        .unwrap_err();
    assert_eq!(err.code(), Some("DBFAULT_TYPE"));
    assert!(err.message().starts_with("column 1 (note): "), "{err}");
    let err = conn.query_row_map(BAD_TEXT, &[], |row| row.to_row()).unwrap_err();
    assert!(err.message().starts_with("column 1 (note): "), "{err}");
}

/// A schema whose identifiers are not UTF-8 (a database written in
/// Latin-1), made here through `writable_schema`: rusqlite panics on such
/// a column name; dbfault answers with errors.
#[test]
fn a_column_name_that_is_not_utf8_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let driver = SqliteDriver::open(dir.path().join("latin1.db")).unwrap();
    {
        let mut conn = driver.connect().unwrap();
        conn.execute("CREATE TABLE t (a INTEGER)", &[]).unwrap();
        conn.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
        conn.execute("PRAGMA writable_schema = ON", &[]).unwrap();
        // The column renamed to Latin-1 "é" (byte 0xe9).
        conn.execute(
            "UPDATE sqlite_schema SET sql = 'CREATE TABLE t (' || CAST(x'e9' AS TEXT) || ' INTEGER)' \
             WHERE name = 't'",
            &[],
        )
        .unwrap();
        conn.close().unwrap();
    }
    let mut conn = driver.connect().unwrap();
    let sql = "SELECT * FROM t";
    // In place, by position: the value is there.
    assert_eq!(
        conn.query_row_map(sql, &[], |row| row.get::<i64>(0)).unwrap(),
        Some(1)
    );
    // An error about the column cannot name it, but says which it is.
    let err = conn
        .query_row_map(sql, &[], |row| row.get::<String>(0))
        .unwrap_err();
    assert_eq!(err.code(), Some("DBFAULT_TYPE"));
    assert_eq!(err.message(), "column 0: expected text, found integer");
    let err = conn
        .query_row_map(sql, &[], |row| row.get::<i64>("a"))
        .unwrap_err();
    assert_eq!(err.code(), Some("DBFAULT_COLUMN"));
    // An owned row needs the names: the query fails, saying why.
    for err in [
        conn.query_row(sql, &[]).unwrap_err(),
        conn.query(sql, &[]).unwrap_err(),
    ] {
        assert_eq!(err.code(), Some("DBFAULT_SQL"));
        assert_eq!(err.class(), ErrorClass::Statement);
        assert_eq!(err.message(), "the name of column 0 is not UTF-8");
    }
    // The connection stays usable.
    let row = conn.query_row("SELECT rowid AS n FROM t", &[]).unwrap().unwrap();
    assert_eq!(row.columns(), ["n"]);
}

// ---------------------------------------------------------------------------
// The async traits' `query_row_with` and `query_row_map`: the mirror of the
// sync ones, on every async driver and through the async fault layer.

#[cfg(feature = "tokio")]
async fn mapped_async<C: AsyncConnection>(conn: &mut C, sql: &str, params: &[Value]) -> Result<Option<Row>> {
    conn.query_row_map(sql, params, |row| row.to_row()).await
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn async_query_row_map_sees_what_query_row_sees_on_every_async_driver() {
    let sqlite = Blocking::new(fresh_database().unwrap());
    let server = seeded_mock();
    let params = [Value::Integer(1)];
    let expected = sqlite
        .connect()
        .await
        .unwrap()
        .query_row(ONE, &params)
        .await
        .unwrap();
    assert!(expected.is_some());

    let got = mapped_async(&mut sqlite.connect().await.unwrap(), ONE, &params).await;
    assert_eq!(got.unwrap(), expected);
    let faulty = FaultyDriver::new(sqlite.clone());
    let got = mapped_async(&mut faulty.connect().await.unwrap(), ONE, &params).await;
    assert_eq!(got.unwrap(), expected);
    let got = mapped_async(&mut server.async_driver().connect().await.unwrap(), ONE, &params).await;
    assert_eq!(got.unwrap(), expected);
    let faulty = FaultyDriver::new(server.async_driver());
    let got = mapped_async(&mut faulty.connect().await.unwrap(), ONE, &params).await;
    assert_eq!(got.unwrap(), expected);
    server.verify().unwrap();

    // No row: `f` is never called; `query_row_with` says there was none.
    let mut conn = sqlite.connect().await.unwrap();
    let mut calls = 0;
    let found = conn
        .query_row_with(ONE, &[Value::Integer(99)], &mut |_| calls += 1)
        .await
        .unwrap();
    assert_eq!((found, calls), (false, 0));
    let found = conn
        .query_row_with(ONE, &[Value::Integer(2)], &mut |_| calls += 1)
        .await
        .unwrap();
    assert_eq!((found, calls), (true, 1));
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn the_async_fault_layer_fires_query_rules_on_query_row_map_and_loses_the_answer_after_apply() {
    let faulty = FaultyDriver::new(Blocking::new(fresh_database().unwrap()));
    let faults = faulty.faults();
    let mut conn = faulty.connect().await.unwrap();
    let refused = faults
        .arm(
            Rule::on(Op::Query)
                .matching("FROM accounts")
                .times(1)
                .error(ErrorClass::Transient),
        )
        .unwrap();
    let err = conn
        .query_row_map(ONE, &[Value::Integer(1)], |row| row.get::<String>("owner"))
        .await
        .unwrap_err();
    assert!(err.is_injected() && err.class() == ErrorClass::Transient, "{err}");
    assert_eq!(refused.hits(), 1);

    let lost = faults
        .arm(
            Rule::on(Op::Query)
                .matching("FROM accounts")
                .times(1)
                .disconnect_after_apply(),
        )
        .unwrap();
    let mut seen = None;
    let err = conn
        .query_row_map(ONE, &[Value::Integer(1)], |row| {
            seen = Some(row.get::<String>("owner")?);
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(err.is_disconnect());
    assert_eq!(lost.hits(), 1);
    assert_eq!(seen, None, "the answer was lost with the connection");
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn on_the_async_engine_an_error_the_callback_returns_comes_back_as_is_and_the_connection_stays() {
    let server = seeded_mock();
    let engine = AsyncEngine::new(AsyncPool::new(server.async_driver(), PoolConfig::new()).unwrap());
    let mut conn = engine.connect().await.unwrap();
    // Even an error that looks like a disconnect: it is `f`'s, not the
    // driver's, so no layer classifies it.
    let err = conn
        .query_row_map(ONE, &[Value::Integer(1)], |_| -> Result<()> {
            Err(Error::closed("mine"))
        })
        .await
        .unwrap_err();
    assert_eq!(err.message(), "mine");
    assert!(!err.connection_invalidated());
    assert!(!conn.is_invalidated());
    let mut tx = conn.begin().await.unwrap();
    let err = tx
        .query_row_map(ONE, &[Value::Integer(1)], |_| -> Result<()> {
            Err(Error::closed("mine"))
        })
        .await
        .unwrap_err();
    assert_eq!(err.message(), "mine");
    assert!(!tx.is_pending_rollback());
    tx.commit().await.unwrap();
}
