//! The fault scenarios: each a function from a pool to the outcome that
//! goes in its cell.

use std::time::Duration;

use dbfault::{EventKind, Op, Rule};

use crate::subject::{Fail, Setup, Subject, Target};

/// What a scenario found, or why it could not run.
pub type Cell = Result<String, String>;

/// One row of the table.
pub struct Scenario {
    /// The row's short name.
    pub name: &'static str,
    /// What was done and how to read the cell (a paragraph of the
    /// document).
    pub about: &'static str,
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "Open transaction after a plain drop",
        about: "Pool of 1. A connection runs `BEGIN` and an `INSERT`, and is dropped without \
                `COMMIT` or `ROLLBACK`. The next checkout asks whether a transaction is open. \
                **yes**: the next borrower gets the first one's transaction, and its writes \
                with it.",
    },
    Scenario {
        name: "Open transaction after a panic",
        about: "The same, but the connection is dropped while a panic unwinds (the `BEGIN` was \
                a plain statement: no transaction guard rolls it back on the way).",
    },
    Scenario {
        name: "Open transaction after a cancelled BEGIN",
        about: "Async pools only. The `BEGIN` is held for 1 s by the fault layer and its future \
                is dropped after 50 ms; the connection goes back; the next checkout asks \
                whether a transaction is open. dbfault's pool holds the statement before its \
                driver; for the PostgreSQL pools the proxy holds it after the client sent it, \
                so the server runs it later. **n/a**: the pool's statements are synchronous \
                calls and cannot be cancelled. **next checkout: …**: the next checkout \
                failed, with that error.",
    },
    Scenario {
        name: "Open transaction after a cancelled COMMIT",
        about: "As above with `BEGIN`, `INSERT`, then a held `COMMIT` whose future is dropped.",
    },
    Scenario {
        name: "Restart, 4 idle, validation off",
        about: "Pool of 4 with its 4 connections idle; the server restarts (every connection \
                dies). Then 20 checkouts, each running `SELECT 1` and giving the connection \
                back. The cell counts the statements that failed and the validations (pings) \
                the pool ran, failed ones included, from the journal; **ok from #n**: the \
                first checkout whose statement succeeded.",
    },
    Scenario {
        name: "Restart, 4 idle, validation on",
        about: "The same with the pool's validation at checkout on (r2d2 and bb8 \
                `test_on_check_out`, deadpool-postgres `RecyclingMethod::Verified`, sqlx \
                `test_before_acquire`, dbfault `pre_ping`; deadpool-sqlite's recycle always \
                runs a query).",
    },
    Scenario {
        name: "Pool-wide invalidation after a failover",
        about: "From the validation-off restart above: after the first statement failed on a \
                dead connection, how many more dead connections the pool still handed out. \
                **yes**: none, the pool dropped all of them at the first error; **none \
                handed out**: no statement failed at all, the pool found every dead \
                connection before handing it out.",
    },
    Scenario {
        name: "One connection killed mid-transaction",
        about: "Pool of 2. A connection runs `BEGIN` and an `INSERT`, is killed, then runs \
                another `INSERT` and `COMMIT`, and goes back. The cell shows what the \
                `INSERT` and the `COMMIT` answered, then how many of the next 4 checkouts \
                failed their `SELECT 1`.",
    },
    Scenario {
        name: "Commit applied, then cut",
        about: "A transaction's `COMMIT` reaches the server, which applies it; the connection \
                is cut before the answer arrives. The cell shows what the caller got and \
                whether the row is in the table: **error, applied** means a caller that \
                retries on error writes twice.",
    },
    Scenario {
        name: "Connect storm: slots after the outage",
        about: "Pool of 2, checkout timeout 300 ms. During an outage (every connect refused), \
                3 checkouts at once, then the outage ends. The cell says how many of them \
                failed, then the most connections the pool gives at once in 10 tries right after: \
                **2 of 2** means no refused connect cost a slot and the pool recovered by \
                itself.",
    },
    Scenario {
        name: "Exhausted pool: the error carries the cause",
        about: "From the storm above: how many of the 3 failed checkouts' errors (their whole \
                `source()` chain) contain the connect's own error, the real cause. **some**: more than none, \
                fewer than all; the exact count depends on when the pool's retries fail \
                relative to each waiter's deadline.",
    },
    Scenario {
        name: "Slow connect blocks returns",
        about: "Pool of 2 with one connection, held. Connects now take 1 s. A second checkout \
                starts a connect; meanwhile the held connection is given back. **no**: the \
                return did not wait for the connect; then whether the waiting checkout got the \
                returned connection or waited for its own connect.",
    },
];

/// Runs every scenario on `target`: the column of cells, in the order of
/// [`SCENARIOS`].
pub fn column<T: Target>(target: &T) -> Vec<Cell> {
    let (off, failover) = restart_pair(target, false);
    let (on, _) = restart_pair(target, true);
    let (storm, cause) = storm(target);
    vec![
        tx_after(target, End::Drop),
        tx_after(target, End::Panic),
        cancelled(target, "BEGIN"),
        cancelled(target, "COMMIT"),
        off,
        on,
        failover,
        killed_mid_tx(target),
        commit_cut(target),
        storm,
        cause,
        slow_connect(target),
    ]
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn short(err: &Fail) -> String {
    format!("failed: {err}")
}

enum End {
    Drop,
    Panic,
}

fn tx_after<T: Target>(target: &T, end: End) -> Cell {
    let s = target.build(Setup::new(1))?;
    let t = s.table().to_owned();
    let mut c = s.checkout().map_err(|e| short(&e))?;
    s.exec(&mut c, "BEGIN").map_err(|e| short(&e))?;
    s.exec(&mut c, &format!("INSERT INTO {t} VALUES (1)"))
        .map_err(|e| short(&e))?;
    match end {
        End::Drop => s.give_back(c),
        End::Panic => s.panic_holding(c),
    }
    let mut next = s.checkout().map_err(|e| short(&e))?;
    let open = s.in_tx(&mut next).map_err(|e| short(&e))?;
    if open {
        let _ = s.exec(&mut next, "ROLLBACK");
    }
    s.give_back(next);
    Ok(yes_no(open).to_owned())
}

fn cancelled<T: Target>(target: &T, statement: &str) -> Cell {
    let s = target.build(Setup::new(1))?;
    let t = s.table().to_owned();
    let op = if statement == "BEGIN" {
        Op::Begin
    } else {
        Op::Commit
    };
    let mut c = s.checkout().map_err(|e| short(&e))?;
    if op == Op::Commit {
        s.exec(&mut c, "BEGIN").map_err(|e| short(&e))?;
        s.exec(&mut c, &format!("INSERT INTO {t} VALUES (1)"))
            .map_err(|e| short(&e))?;
    }
    let rule = s
        .faults()
        .arm(Rule::on(op).times(1).delay(Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;
    if s.cancel(&mut c, statement).is_none() {
        s.give_back(c);
        return Ok("n/a".to_owned());
    }
    s.give_back(c);
    // A pool may still be busy with the cancelled call: the next checkout
    // failing is an outcome too.
    let mut next = match s.checkout() {
        Ok(next) => next,
        Err(e) => return Ok(format!("next checkout: {}", e.code)),
    };
    let open = s.in_tx(&mut next).map_err(|e| short(&e))?;
    if open {
        let _ = s.exec(&mut next, "ROLLBACK");
    }
    s.give_back(next);
    drop(rule);
    Ok(yes_no(open).to_owned())
}

fn pings(s: &impl Subject) -> usize {
    s.journal().count(EventKind::Ping) + s.journal().count(EventKind::PingFailed)
}

/// The restart scenario: its cell, and the failover cell derived from it.
fn restart_pair<T: Target>(target: &T, validate: bool) -> (Cell, Cell) {
    match restart(target, validate) {
        Ok((cell, failed)) => {
            let failover = match failed {
                0 => "none handed out".to_owned(),
                1 => "yes".to_owned(),
                n => format!("no: {} more", n - 1),
            };
            (Ok(cell), Ok(failover))
        }
        Err(why) => (Err(why.clone()), Err(why)),
    }
}

fn restart<T: Target>(target: &T, validate: bool) -> Result<(String, usize), String> {
    let s = target.build(Setup::new(4).validate(validate))?;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut c = s.checkout().map_err(|e| short(&e))?;
        s.exec(&mut c, "SELECT 1").map_err(|e| short(&e))?;
        held.push(c);
    }
    for c in held {
        s.give_back(c);
    }
    s.settle();
    let before = pings(&s);
    s.restart();
    let mut failed = 0;
    let mut first_ok = None;
    let mut checkout_errors = 0;
    for n in 1..=20 {
        match s.checkout() {
            Ok(mut c) => {
                match s.exec(&mut c, "SELECT 1") {
                    Ok(()) => {
                        first_ok.get_or_insert(n);
                    }
                    Err(_) => failed += 1,
                }
                s.give_back(c);
            }
            Err(_) => checkout_errors += 1,
        }
    }
    let pinged = pings(&s) - before;
    let mut cell = if s.pings_counted() {
        format!("{failed} failed / {pinged} pings")
    } else {
        format!("{failed} failed / pings not counted")
    };
    if checkout_errors > 0 {
        cell.push_str(&format!(" / {checkout_errors} checkouts failed"));
    }
    match first_ok {
        Some(n) => cell.push_str(&format!("; ok from #{n}")),
        None => cell.push_str("; never ok"),
    }
    Ok((cell, failed))
}

fn killed_mid_tx<T: Target>(target: &T) -> Cell {
    let s = target.build(Setup::new(2))?;
    let t = s.table().to_owned();
    let mut c = s.checkout().map_err(|e| short(&e))?;
    s.exec(&mut c, "BEGIN").map_err(|e| short(&e))?;
    s.exec(&mut c, &format!("INSERT INTO {t} VALUES (1)"))
        .map_err(|e| short(&e))?;
    s.kill(&mut c);
    let insert = s.exec(&mut c, &format!("INSERT INTO {t} VALUES (2)"));
    let commit = s.exec(&mut c, "COMMIT");
    s.give_back(c);
    let mut failed = 0;
    for _ in 0..4 {
        match s.checkout() {
            Ok(mut c) => {
                if s.exec(&mut c, "SELECT 1").is_err() {
                    failed += 1;
                }
                s.give_back(c);
            }
            Err(_) => failed += 1,
        }
    }
    let answer = |r: &Result<(), Fail>| match r {
        Ok(()) => "ok".to_owned(),
        Err(e) => e.code.clone(),
    };
    Ok(format!(
        "INSERT {}, COMMIT {}; next 4: {failed} failed",
        answer(&insert),
        answer(&commit)
    ))
}

fn commit_cut<T: Target>(target: &T) -> Cell {
    let s = target.build(Setup::new(1))?;
    let t = s.table().to_owned();
    let mut c = s.checkout().map_err(|e| short(&e))?;
    let rule = s
        .faults()
        .arm(Rule::on(Op::Commit).times(1).disconnect_after_apply())
        .map_err(|e| e.to_string())?;
    let answer = s.transaction(&mut c, &format!("INSERT INTO {t} VALUES (1)"));
    drop(rule);
    s.give_back(c);
    let applied = if s.rows() == 1 { "applied" } else { "not applied" };
    Ok(match answer {
        Ok(()) => format!("success, {applied}"),
        Err(e) => format!("error {}, {applied}", e.code),
    })
}

/// The connect storm: its cell and the cause cell.
fn storm<T: Target>(target: &T) -> (Cell, Cell) {
    match storm_run(target) {
        Ok((a, b)) => (Ok(a), Ok(b)),
        Err(why) => (Err(why.clone()), Err(why)),
    }
}

fn storm_run<T: Target>(target: &T) -> Result<(String, String), String> {
    let s = target.build(Setup::new(2))?;
    s.faults().outage();
    let cause = s.cause();
    let joins: Vec<_> = (0..3).map(|_| s.background_checkout("storm")).collect();
    let results: Vec<_> = joins.into_iter().map(|join| join()).collect();
    s.faults().restore();
    let errors: Vec<&Fail> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let carry = errors.iter().filter(|e| e.text.contains(&cause)).count();
    // Up to 10 tries (each waits up to the checkout timeout) to hold both
    // slots at once: r2d2, for one, reconnects on a backoff of its own.
    let mut slots = 0;
    for _ in 0..10 {
        let mut held = Vec::new();
        for _ in 0..2 {
            match s.checkout() {
                Ok(c) => held.push(c),
                Err(_) => break,
            }
        }
        slots = slots.max(held.len());
        for c in held {
            s.give_back(c);
        }
        if slots == 2 {
            break;
        }
    }
    let codes = {
        let mut codes: Vec<&str> = errors.iter().map(|e| e.code.as_str()).collect();
        codes.dedup();
        codes.join(", ")
    };
    let storm = format!("{} of 3 failed ({codes}); then {slots} of 2", errors.len());
    // A count between none and all depends on when the pool's retries
    // fail relative to each waiter's deadline: "some" is what holds.
    let carried = match (carry, errors.len()) {
        (_, 0) => "no error".to_owned(),
        (0, n) => format!("none of {n}"),
        (c, n) if c == n => format!("all {n}"),
        (_, n) => format!("some of {n}"),
    };
    Ok((storm, carried))
}

fn slow_connect<T: Target>(target: &T) -> Cell {
    let s = target.build(Setup::new(2))?;
    let c = s.checkout().map_err(|e| short(&e))?;
    let rule = s
        .faults()
        .arm(Rule::on(Op::Connect).delay(Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;
    let start = s.journal().len();
    let join = s.background_checkout("waiter");
    s.until(&|| rule.hits() > 0);
    s.give_back(c);
    s.journal().record(None, EventKind::Checkin, "returned");
    let waited = join();
    drop(rule);
    // A connect still under way journals later than both marks.
    let events = s.journal().events();
    let pos = |f: &dyn Fn(&dbfault::Event) -> bool| events.iter().skip(start).position(f);
    let connected = pos(&|e| e.kind == EventKind::Connect);
    let returned = pos(&|e| e.kind == EventKind::Checkin && e.detail == "returned");
    let waiter = pos(&|e| e.kind == EventKind::Checkout && e.detail == "waiter");
    let before = |a: Option<usize>| match (a, connected) {
        (Some(a), Some(c)) => a < c,
        (Some(_), None) => true,
        _ => false,
    };
    let blocked = if before(returned) { "no" } else { "yes" };
    let got = match waited {
        Err(e) => format!("the waiter failed: {}", e.code),
        Ok(()) if before(waiter) => "the waiter took the returned one".to_owned(),
        Ok(()) => "the waiter waited for its connect".to_owned(),
    };
    Ok(format!("{blocked}; {got}"))
}
