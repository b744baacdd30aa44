//! Quickstart: a real SQLite database, a transfer cut by an injected
//! disconnect, and the journal printed as a timeline.
//!
//! Run with `cargo run --example quickstart`.

use dbfault::{Engine, ErrorKind, FaultyDriver, Journal, Op, Pool, PoolConfig, Rule, SqliteDriver, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bank.db");

    // One journal for the fault layer and the pool: one ordered story.
    let journal = Journal::new();
    let driver = FaultyDriver::new(SqliteDriver::open(&path)?).with_journal(journal.clone());
    let faults = driver.faults();
    let pool = Pool::new(driver, PoolConfig::new().size(2).journal(journal.clone()))?;
    let engine = Engine::new(pool);

    let mut conn = engine.connect()?;
    conn.run_script(include_str!("../fixtures/schema.sql"))?;
    conn.run_script(include_str!("../fixtures/seed.sql"))?;

    // The server drops the connection on the credit half of the transfer.
    let cut = faults.arm(
        Rule::on(Op::Execute)
            .matching(r"^UPDATE accounts SET balance = balance \+")
            .disconnect(),
    )?;

    let outcome = transfer(&mut conn, 1, 2, 50);
    let err = outcome.expect_err("the injected disconnect cuts the transfer");
    println!("transfer failed: {err}");
    println!(
        "  class: {}, connection invalidated: {}",
        err.class(),
        err.connection_invalidated()
    );
    drop(cut);

    // The debit was rolled back with the dead connection; the engine
    // reconnects by itself.
    println!("balances after the cut:   {:?}", balances(&mut conn)?);
    transfer(&mut conn, 1, 2, 50)?;
    println!("balances after the retry: {:?}", balances(&mut conn)?);
    drop(conn);

    println!("\npool status: {:?}\n", engine.pool().status());
    println!("{}", journal.timeline());
    Ok(())
}

/// Moves `amount` from one account to another, all or nothing.
fn transfer<D: dbfault::Driver>(
    conn: &mut dbfault::EngineConnection<D>,
    from: i64,
    to: i64,
    amount: i64,
) -> dbfault::Result<()> {
    let mut tx = conn.begin()?;
    tx.execute(
        "UPDATE accounts SET balance = balance - ?1 WHERE id = ?2",
        &[Value::Integer(amount), Value::Integer(from)],
    )?;
    if let Err(err) = tx.execute(
        "UPDATE accounts SET balance = balance + ?1 WHERE id = ?2",
        &[Value::Integer(amount), Value::Integer(to)],
    ) {
        // The transaction is pending rollback until we say so.
        assert_eq!(tx.commit().unwrap_err().kind(), ErrorKind::PendingRollback);
        return Err(err);
    }
    tx.commit()
}

fn balances<D: dbfault::Driver>(
    conn: &mut dbfault::EngineConnection<D>,
) -> dbfault::Result<Vec<(String, i64)>> {
    let rows = conn.query("SELECT owner, balance FROM accounts ORDER BY id", &[])?;
    Ok(rows
        .iter()
        .map(|r| {
            let owner = r.get("owner").and_then(Value::as_str).unwrap_or("?").to_owned();
            (owner, r.get("balance").and_then(Value::as_i64).unwrap_or(0))
        })
        .collect())
}
