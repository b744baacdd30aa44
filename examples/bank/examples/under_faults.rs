//! The bank as it ships (r2d2 + r2d2_sqlite, rusqlite's API) run under
//! faults: dbfault's `FaultyManager` wraps its manager, and nothing else
//! changes. A server restart, a commit applied then cut, and an outage,
//! each with what the application saw, then the journal as a timeline.
//!
//! Run with `cargo run --manifest-path examples/bank/Cargo.toml --example under_faults`.

use bank::{Bank, manager};
use dbfault::{Faults, FaultyManager, Journal, Op, Rule};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let journal = Journal::new();
    let faults = Faults::new().with_journal(journal.clone());
    let bank = Bank::with_manager(FaultyManager::new(manager(&dir.path().join("bank.db")), &faults))?;
    bank.open_account(1, 100)?;
    bank.open_account(2, 0)?;
    let balances =
        |bank: &Bank<_>| -> Result<(i64, i64), bank::BankError> { Ok((bank.balance(1)?, bank.balance(2)?)) };

    bank.transfer(1, 2, 10)?;
    println!("a transfer:                    balances {:?}", balances(&bank)?);

    // Every connection dies at once. r2d2 validates at checkout, so the
    // dead ones are replaced before the application sees them.
    faults.restart();
    bank.transfer(1, 2, 10)?;
    println!("after a restart:               balances {:?}", balances(&bank)?);

    // SQLite applies the COMMIT, then the connection drops: the
    // application gets an error for a transfer that happened.
    let cut = faults.arm(Rule::on(Op::Commit).times(1).disconnect_after_apply())?;
    let err = bank.transfer(1, 2, 10).expect_err("the commit is cut");
    drop(cut);
    let after = balances(&bank)?;
    println!("a commit cut after it applied: the application got \"{err}\"");
    println!("                               balances {after:?}: it was applied; a retry would pay twice");
    if after != (70, 30) {
        return Err(format!("expected (70, 30) after three transfers, found {after:?}").into());
    }

    // Connects are refused: r2d2 retries for its one second, then answers
    // a timeout carrying the last refused connect's error (to one waiter:
    // in a storm the others get a bare timeout, see tests/failure_modes.rs).
    faults.outage();
    let err = bank.transfer(1, 2, 10).expect_err("the server is down");
    println!("during an outage:              the application got \"{err}\"");
    faults.restore();
    bank.transfer(1, 2, 10)?;
    println!("after the outage:              balances {:?}", balances(&bank)?);

    println!("\n{}", journal.timeline());
    Ok(())
}
