//! A property test over your own code, run from `main`: a ledger, a
//! transfer written in one transaction, and the invariant that money is
//! neither made nor lost, checked under fault plans dbfault draws.
//!
//! `cargo run --features proptest --example property` prints what ran and
//! exits 0; change `transfer` to two autocommit statements (drop the
//! `begin` and `commit`) and it prints the smallest failing plan and exits 1.

use dbfault::testing::{Property, Schema};
use dbfault::{Driver, Engine};

/// Moves 10 from account 1 to account 2, all or nothing.
fn transfer<D: Driver>(db: &Engine<D>) -> dbfault::Result<()> {
    let mut conn = db.connect()?;
    let mut tx = conn.begin()?;
    tx.execute("UPDATE ledger SET balance = balance - 10 WHERE account = 1", &[])?;
    tx.execute("UPDATE ledger SET balance = balance + 10 WHERE account = 2", &[])?;
    tx.commit()
}

/// The total never changes.
fn conserved<D: Driver>(db: &Engine<D>) -> Result<(), Box<dyn std::error::Error>> {
    let total = db
        .connect()?
        .query_row_map("SELECT sum(balance) FROM ledger", &[], |r| r.get::<i64>(0))?;
    match total {
        Some(200) => Ok(()),
        _ => Err(format!("the total is {total:?}, not 200").into()),
    }
}

fn main() -> std::process::ExitCode {
    let ledger = Schema::new("CREATE TABLE ledger (account INTEGER PRIMARY KEY, balance INTEGER NOT NULL)")
        .seed("INSERT INTO ledger VALUES (1, 100), (2, 100)");
    match Property::new().sqlite(&ledger, transfer, conserved) {
        Ok(report) => {
            println!(
                "transfer conserves the total: {} cases ({} saved plans replayed), {} faults fired, seed {}",
                report.cases,
                report.saved.len(),
                report.faults,
                report.seed
            );
            std::process::ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("{failure}");
            std::process::ExitCode::FAILURE
        }
    }
}
