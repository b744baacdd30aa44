//! The one small interface every pool under test implements, so each
//! scenario is written once.

use std::fmt;
use std::time::Duration;

use dbfault::{Faults, Journal};

/// A failed call, as the caller saw it.
#[derive(Debug, Clone)]
pub struct Fail {
    /// A short name for the table: an SQLite result code, a SQLSTATE, a
    /// pool's error variant.
    pub code: String,
    /// The whole error, its sources included.
    pub text: String,
}

impl Fail {
    pub fn new(code: impl Into<String>, text: impl Into<String>) -> Fail {
        Fail {
            code: code.into(),
            text: text.into(),
        }
    }

    /// An error with the text of its whole `source()` chain.
    pub fn of(code: impl Into<String>, err: &(dyn std::error::Error + 'static)) -> Fail {
        Fail::new(code, chain(err))
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code, self.text)
    }
}

/// `err` and every source under it, joined by ": ".
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(source) = next {
        let more = source.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        next = source.source();
    }
    text
}

/// How a scenario wants its pool built.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// The pool's maximum size.
    pub size: usize,
    /// Validate (ping) each connection at checkout.
    pub validate: bool,
    /// How long a checkout waits for a connection.
    pub timeout: Duration,
}

impl Setup {
    pub fn new(size: usize) -> Setup {
        Setup {
            size,
            validate: false,
            timeout: Duration::from_millis(300),
        }
    }

    pub fn validate(mut self, on: bool) -> Setup {
        self.validate = on;
        self
    }
}

/// Something run in the background: joined for its result.
pub type Joiner = Box<dyn FnOnce() -> Result<(), Fail>>;

/// One pool, built for one scenario, with its fault layer and its journal.
pub trait Subject {
    /// A checked-out connection.
    type Conn;

    /// The table the scenarios write to (one INTEGER column `x`).
    fn table(&self) -> &str;
    /// Checks out a connection.
    fn checkout(&self) -> Result<Self::Conn, Fail>;
    /// Runs one statement on it.
    fn exec(&self, conn: &mut Self::Conn, sql: &str) -> Result<(), Fail>;
    /// Whether a transaction is open on it.
    fn in_tx(&self, conn: &mut Self::Conn) -> Result<bool, Fail>;
    /// Gives it back by a plain drop.
    fn give_back(&self, conn: Self::Conn);
    /// Drops it while a panic unwinds.
    fn panic_holding(&self, conn: Self::Conn);
    /// Kills its connection on the server side.
    fn kill(&self, conn: &mut Self::Conn);
    /// Runs `BEGIN`, `sql` and `COMMIT` on it, as the pool's users write a
    /// transaction; the answer is the first failure.
    fn transaction(&self, conn: &mut Self::Conn, sql: &str) -> Result<(), Fail> {
        self.exec(conn, "BEGIN")?;
        self.exec(conn, sql)?;
        self.exec(conn, "COMMIT")
    }
    /// Restarts the server: every connection dies.
    fn restart(&self) {
        self.faults().restart();
    }
    /// Starts `sql` and cancels it (drops the call's future) while the
    /// statement is held for a while: `None` when the pool's calls are
    /// synchronous and cannot be cancelled.
    fn cancel(&self, conn: &mut Self::Conn, sql: &str) -> Option<()>;
    /// Starts a checkout in the background (a thread or a task) that
    /// journals `marker` when it returns, then gives its connection back.
    fn background_checkout(&self, marker: &'static str) -> Joiner;
    /// Waits (on the pool's own clock) until `done` holds.
    fn until(&self, done: &dyn Fn() -> bool);
    /// The fault layer the scenarios arm.
    fn faults(&self) -> &Faults;
    /// The one journal of the pool, its manager and the fault layer.
    fn journal(&self) -> &Journal;
    /// Waits until every connection given back is idle in the pool again
    /// (a pool that checks a connection on its return does it in the
    /// background).
    fn settle(&self) {}
    /// Whether the journal sees the pool's validations.
    fn pings_counted(&self) -> bool {
        true
    }
    /// What the pool's connect answered in the outage, as text: the real
    /// cause a checkout's error should carry.
    fn cause(&self) -> String;
    /// The rows in the table, read from outside the pool.
    fn rows(&self) -> i64;
}

/// A pool, as a column of the table: builds a fresh subject per scenario.
pub trait Target {
    /// The subject it builds.
    type S: Subject;
    /// The column's name.
    fn name(&self) -> &'static str;
    /// The crates (from this package's Cargo.lock) whose versions name it.
    fn crates(&self) -> &'static [&'static str];
    /// Builds the pool as `setup` says; `Err` says why it cannot run here.
    fn build(&self, setup: Setup) -> Result<Self::S, String>;
}
