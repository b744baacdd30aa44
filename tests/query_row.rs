//! `query_row`: the first row of a query, through every layer that has it
//! (drivers, the fault layer, both engines), and a rule on `Op::Query`
//! catches it.

use dbfault::*;

fn db(name: &str) -> SqliteDriver {
    let db = SqliteDriver::memory(name).unwrap();
    let mut conn = db.connect().unwrap();
    run_script(&mut conn, include_str!("../fixtures/schema.sql")).unwrap();
    run_script(&mut conn, include_str!("../fixtures/seed.sql")).unwrap();
    db
}

const ALL: &str = "SELECT owner FROM accounts ORDER BY id";

#[test]
fn sqlite_query_row_returns_the_first_row_or_none() {
    let db = db("query-row-sqlite");
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
    let driver = FaultyDriver::new(db("query-row-faulty"));
    let faults = driver.faults();
    let engine = Engine::new(Pool::new(driver, PoolConfig::new()).unwrap());
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
    let driver = FaultyDriver::new(Blocking::new(db("query-row-async")));
    let engine = AsyncEngine::new(AsyncPool::new(driver, PoolConfig::new()).unwrap());
    let mut conn = engine.connect().await.unwrap();
    let row = conn.query_row(ALL, &[]).await.unwrap().unwrap();
    assert_eq!(row.get(0).and_then(Value::as_str), Some("ann"));
    let mut tx = conn.begin().await.unwrap();
    assert!(tx.query_row("SELECT 1 WHERE 0", &[]).await.unwrap().is_none());
    tx.rollback().await.unwrap();
}
