//! Faults inside a plain `rusqlite::Connection` the user's code owns,
//! carried out through SQLite's own hooks: the third applier of
//! [`Decision`]s, beside the sync and the tokio [`FaultyDriver`](crate::FaultyDriver).
//!
//! [`Faults::attach`] installs four hooks on the connection:
//!
//! - the **authorizer**, asked while SQLite prepares a statement, checks
//!   the rules on [`Op::Execute`], [`Op::Query`], [`Op::Begin`] and
//!   [`Op::Rollback`], and refuses every statement of a dead connection;
//! - the **commit hook** checks the rules on [`Op::Commit`]: returning
//!   `true` turns the commit into a rollback;
//! - the **WAL hook** reports a commit that was applied as failed
//!   (`disconnect_after_apply`), which only a database in WAL mode can do;
//! - the **progress handler** interrupts the statements of a dead
//!   connection that the authorizer no longer sees (cached ones).
//!
//! The table of what the user's code sees for each action is in
//! [`docs::hooks`](crate::docs::hooks).

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Weak};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization, TransactionOperation};

use super::decision::Decision;
use super::faults::{Kill, Shared};
use super::rule::{Action, Rule};
use crate::{ConnId, Error, Faults, Op, Result, SqliteDialect};

/// The hooks of one attachment that hold a closure, one bit each in
/// [`Hooked::gone`]. (The WAL hook is a plain function: rusqlite 0.40
/// takes nothing else, so it holds nothing that could tell when it goes.)
const AUTHORIZER: u8 = 1;
const COMMIT_HOOK: u8 = 2;
const PROGRESS_HANDLER: u8 = 4;
const ALL_HOOKS: u8 = AUTHORIZER | COMMIT_HOOK | PROGRESS_HANDLER;

/// How many virtual-machine steps apart SQLite asks the progress handler
/// whether to interrupt: every check it makes, so a dead connection's
/// cached statement stops at its first jump.
const PROGRESS_STEPS: std::ffi::c_int = 1;

thread_local! {
    /// The connection whose commit, now being applied on this thread, a
    /// `disconnect_after_apply` rule cut: set by its commit hook, taken by
    /// the WAL hook that SQLite calls on the same thread once the commit is
    /// in the log. The WAL hook takes a plain function in rusqlite 0.40, so
    /// this is how it learns which connection it runs for.
    static CUT: RefCell<Option<Arc<Hooked>>> = const { RefCell::new(None) };
    /// While `attach` installs its authorizer (`Some`), the attachment
    /// whose authorizer that replaced, if any: how `attach` finds that the
    /// connection was attached already.
    static DISPLACED: RefCell<Option<Option<Arc<Hooked>>>> = const { RefCell::new(None) };
}

/// One attached connection: what its hooks share with the fault layer.
struct Hooked {
    id: ConnId,
    shared: Arc<Shared>,
    dead: AtomicBool,
    /// Interrupts the statement running when the connection is killed.
    interrupt: rusqlite::InterruptHandle,
    /// The database was in WAL mode at attach.
    wal: bool,
    /// The hooks of this attachment that SQLite has let go of (bits as
    /// [`ALL_HOOKS`]): all of them once the connection is dropped; some
    /// when the user's code replaced one.
    gone: AtomicU8,
}

impl Hooked {
    /// Kills the connection from one of its own hooks.
    fn kill_now(&self) {
        self.dead.store(true, Ordering::Release);
        self.shared.unregister(self.id);
    }

    /// What a fired rule does here, after the connection's own state.
    fn decision(&self, op: Op, text: &str) -> Option<Decision> {
        self.shared.decision(op, text, Some(self.id), &SqliteDialect)
    }

    /// Carries out a decision for a statement being prepared: `Deny`
    /// fails the prepare (SQLite's `SQLITE_AUTH`).
    fn authorize(&self, op: Op, text: &str) -> Authorization {
        let Some(decision) = self.decision(op, text) else {
            return Authorization::Allow;
        };
        match decision {
            Decision::Fail(_) => Authorization::Deny,
            Decision::Kill(_) => {
                self.kill_now();
                Authorization::Deny
            }
            // Refused when armed or attached (`refuses`): allowed if the
            // rule got here all the same, as the statement runs.
            Decision::ApplyThenKill(_) => Authorization::Allow,
            Decision::Wait(d) => {
                self.shared.sleep(d);
                self.allow_unless_dead()
            }
            Decision::Hang(rule) => {
                self.shared.wait_disarmed(rule, Some(&self.dead));
                self.allow_unless_dead()
            }
        }
    }

    fn allow_unless_dead(&self) -> Authorization {
        if self.is_dead() {
            Authorization::Deny
        } else {
            Authorization::Allow
        }
    }

    /// The commit hook: `true` turns the commit into a rollback.
    fn commit(self: &Arc<Self>) -> bool {
        CUT.with_borrow_mut(|cut| *cut = None);
        if self.is_dead() {
            return true;
        }
        let Some(decision) = self.decision(Op::Commit, Op::Commit.implied_sql()) else {
            return false;
        };
        match decision {
            Decision::Fail(_) => true,
            Decision::Kill(_) => {
                self.kill_now();
                true
            }
            Decision::ApplyThenKill(_) => {
                CUT.with_borrow_mut(|cut| *cut = Some(Arc::clone(self)));
                false
            }
            Decision::Wait(d) => {
                self.shared.sleep(d);
                self.is_dead()
            }
            Decision::Hang(rule) => {
                self.shared.wait_disarmed(rule, Some(&self.dead));
                self.is_dead()
            }
        }
    }

    /// Why the hooks of this connection cannot carry out `rule`, if they
    /// cannot.
    fn cannot_carry(&self, rule: &Rule) -> Option<String> {
        if *rule.get_action() != Action::DisconnectAfterApply {
            return None;
        }
        let op = rule.op();
        if matches!(op, Op::Connect | Op::Ping | Op::Close) {
            // Carried out by a faulty pool manager, not by the hooks.
            return None;
        }
        if op != Op::Commit {
            return Some(format!(
                "disconnect_after_apply on {op} cannot be carried out inside an attached rusqlite \
                 connection ({}): SQLite has no hook after a statement; only a commit can be \
                 applied, then reported as failed",
                self.id
            ));
        }
        if !self.wal {
            return Some(format!(
                "disconnect_after_apply on commit needs the attached connection {} in WAL mode \
                 (PRAGMA journal_mode = WAL before Faults::attach): SQLite reports a commit as \
                 failed after applying it only through its WAL hook",
                self.id
            ));
        }
        None
    }
}

impl Kill for Hooked {
    fn dead(&self) -> &AtomicBool {
        &self.dead
    }

    fn kill(&self) {
        self.dead.store(true, Ordering::Release);
        self.interrupt.interrupt();
    }

    fn refuses(&self, rule: &Rule) -> Option<String> {
        self.cannot_carry(rule)
    }

    fn lost_hook(&self) -> Option<String> {
        let gone = self.gone.load(Ordering::Acquire);
        if gone == 0 || gone == ALL_HOOKS {
            return None;
        }
        let names = [
            (AUTHORIZER, "authorizer"),
            (COMMIT_HOOK, "commit hook"),
            (PROGRESS_HANDLER, "progress handler"),
        ];
        let lost: Vec<_> = names
            .iter()
            .filter(|(bit, _)| gone & bit != 0)
            .map(|(_, name)| *name)
            .collect();
        Some(format!(
            "connection {}: its {} was replaced after Faults::attach, so the faults that need it no \
             longer reach that connection; set your own hooks before attaching, or not at all",
            self.id,
            lost.join(" and ")
        ))
    }
}

/// Held by each hook's closure: when SQLite drops the closure (the
/// connection closed, or the hook was replaced), it marks its hook gone.
struct Slot {
    hooked: Arc<Hooked>,
    bit: u8,
}

impl Slot {
    fn new(hooked: &Arc<Hooked>, bit: u8) -> Self {
        Slot {
            hooked: Arc::clone(hooked),
            bit,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let gone = self.hooked.gone.fetch_or(self.bit, Ordering::AcqRel) | self.bit;
        if gone == ALL_HOOKS {
            self.hooked.shared.unregister(self.hooked.id);
        }
        if self.bit == AUTHORIZER {
            DISPLACED.with_borrow_mut(|listening| {
                if let Some(displaced) = listening {
                    *displaced = Some(Arc::clone(&self.hooked));
                }
            });
        }
    }
}

/// The authorizer of one attachment, with what it remembers between two
/// of SQLite's questions.
struct Authorizer {
    slot: Slot,
    /// The table and the columns of the UPDATE being prepared: SQLite asks
    /// once per column it sets, and the rules are checked once per UPDATE.
    update: Option<(String, Vec<String>)>,
}

impl Authorizer {
    fn authorize(&mut self, ctx: &AuthContext<'_>) -> Authorization {
        let hooked = &self.slot.hooked;
        if hooked.is_dead() {
            return Authorization::Deny;
        }
        // Most of SQLite's questions: one per column a statement reads.
        // No rule is checked on them, and they do not end the run of an
        // UPDATE's columns.
        if matches!(ctx.action, AuthAction::Read { .. } | AuthAction::Function { .. }) {
            return Authorization::Allow;
        }
        // What triggers and views do inside a statement is that
        // statement's business, checked once at its top.
        if ctx.accessor.is_some() {
            return Authorization::Allow;
        }
        if let AuthAction::Update {
            table_name,
            column_name,
        } = ctx.action
        {
            let same_statement = self.update.as_ref().is_some_and(|(table, columns)| {
                table == table_name && !columns.iter().any(|c| c == column_name)
            });
            if same_statement {
                if let Some((_, columns)) = &mut self.update {
                    columns.push(column_name.to_owned());
                }
                return Authorization::Allow;
            }
            self.update = Some((table_name.to_owned(), vec![column_name.to_owned()]));
        } else {
            self.update = None;
        }
        let Some((op, text)) = checked(&ctx.action) else {
            return Authorization::Allow;
        };
        if !hooked.shared.any_armed(op) {
            return Authorization::Allow;
        }
        hooked.authorize(op, &text.to_cow())
    }
}

/// The text the rules see for one of the authorizer's questions, written
/// out only when a rule on its operation is armed.
#[derive(Clone, Copy)]
enum Text<'a> {
    /// A fixed text: `SELECT`, `BEGIN`, `ROLLBACK`, or the empty text.
    Fixed(&'static str),
    /// A statement's first words and the name they act on:
    /// `INSERT INTO ` and `t`.
    Named(&'static str, &'a str),
}

impl Text<'_> {
    fn to_cow(self) -> Cow<'static, str> {
        match self {
            Text::Fixed(text) => Cow::Borrowed(text),
            Text::Named(words, name) => Cow::Owned(format!("{words}{name}")),
        }
    }
}

/// The operation and the text the rules see for one of the authorizer's
/// questions; `None` for those no rule is checked on (column reads,
/// function calls, the COMMIT statement, whose commit the commit hook
/// checks).
fn checked<'a>(action: &AuthAction<'a>) -> Option<(Op, Text<'a>)> {
    use AuthAction as A;
    use Text::{Fixed, Named};
    Some(match *action {
        A::Select => (Op::Query, Fixed("SELECT")),
        A::Insert { table_name } => (Op::Execute, Named("INSERT INTO ", table_name)),
        A::Update { table_name, .. } => (Op::Execute, Named("UPDATE ", table_name)),
        A::Delete { table_name } => (Op::Execute, Named("DELETE FROM ", table_name)),
        A::Transaction { operation } => match operation {
            TransactionOperation::Begin => (Op::Begin, Fixed("BEGIN")),
            TransactionOperation::Rollback => (Op::Rollback, Fixed("ROLLBACK")),
            _ => return None,
        },
        A::Savepoint {
            operation,
            savepoint_name,
        } => match operation {
            TransactionOperation::Begin => (Op::Execute, Named("SAVEPOINT ", savepoint_name)),
            TransactionOperation::Release => (Op::Execute, Named("RELEASE ", savepoint_name)),
            TransactionOperation::Rollback => (Op::Rollback, Named("ROLLBACK TO ", savepoint_name)),
            _ => return None,
        },
        A::CreateTable { table_name } | A::CreateTempTable { table_name } => {
            (Op::Execute, Named("CREATE TABLE ", table_name))
        }
        A::DropTable { table_name } | A::DropTempTable { table_name } => {
            (Op::Execute, Named("DROP TABLE ", table_name))
        }
        A::CreateIndex { index_name, .. } | A::CreateTempIndex { index_name, .. } => {
            (Op::Execute, Named("CREATE INDEX ", index_name))
        }
        A::DropIndex { index_name, .. } | A::DropTempIndex { index_name, .. } => {
            (Op::Execute, Named("DROP INDEX ", index_name))
        }
        A::AlterTable { table_name, .. } => (Op::Execute, Named("ALTER TABLE ", table_name)),
        A::Pragma { pragma_name, .. } => (Op::Execute, Named("PRAGMA ", pragma_name)),
        A::Read { .. } | A::Function { .. } | A::Recursive => return None,
        _ => (Op::Execute, Fixed("")),
    })
}

/// The WAL hook: SQLite calls it on the committing thread once a commit
/// is in the log. An error it returns becomes the COMMIT's error, though
/// the commit stays applied. A plain function, as rusqlite 0.40 wants.
fn wal_written() -> rusqlite::Result<()> {
    match CUT.with_borrow_mut(Option::take) {
        Some(hooked) => {
            hooked.kill_now();
            Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
                None,
            ))
        }
        None => Ok(()),
    }
}

/// Installs the WAL hook. rusqlite 0.40 takes a function pointer to a
/// hook given `&Wal`; 0.41 on take a closure given `&mut Wal` and answer a
/// `Result`. The build script tells which is here
/// (`dbfault_rusqlite_wal_fn` for the former).
#[cfg(dbfault_rusqlite_wal_fn)]
fn install_wal_hook(conn: &mut rusqlite::Connection) -> rusqlite::Result<()> {
    conn.wal_hook(Some(|_: &rusqlite::hooks::Wal, _| wal_written()));
    Ok(())
}

#[cfg(not(dbfault_rusqlite_wal_fn))]
fn install_wal_hook(conn: &mut rusqlite::Connection) -> rusqlite::Result<()> {
    conn.wal_hook(Some(|_: &mut rusqlite::hooks::Wal, _| wal_written()))
}

fn hook_error(hook: &str, err: rusqlite::Error) -> Error {
    Error::config("attach", format!("installing the {hook} failed: {err}")).with_source(err)
}

impl Faults {
    /// Attaches this fault layer to a `rusqlite::Connection` the user's
    /// code opened and owns, through SQLite's hooks, and returns the id the
    /// connection has in the journal and in [`kill`](Faults::kill).
    ///
    /// From then on the armed rules reach what the user's code does on
    /// that connection with rusqlite's own API, [`kill`](Faults::kill),
    /// [`restart`](Faults::restart) and [`outage`](Faults::outage) kill it,
    /// and every fired rule is journaled. What each action does there, and
    /// the exact error the code sees, is in [`docs::hooks`](crate::docs::hooks).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use dbfault::{Faults, Op, Rule};
    ///
    /// let faults = Faults::new();
    /// let mut conn = rusqlite::Connection::open_in_memory()?;
    /// faults.attach(&mut conn)?;
    /// conn.execute_batch("CREATE TABLE t (x INTEGER)")?;
    ///
    /// let _rule = faults.arm(Rule::on(Op::Execute).matching("INSERT INTO t").error(dbfault::ErrorClass::Transient))?;
    /// let err = conn.execute("INSERT INTO t VALUES (1)", []).unwrap_err();
    /// assert_eq!(err.sqlite_error_code(), Some(rusqlite::ErrorCode::AuthorizationForStatementDenied));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// The hooks stay until the connection is dropped.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) with field `attach`
    /// when the connection is attached already (to this or another fault
    /// layer; the first attachment stays), or when an armed rule is one
    /// the hooks cannot carry out on it (`disconnect_after_apply` on an
    /// operation other than a commit, or on a commit outside WAL mode).
    ///
    /// SQLite cannot tell whether the user's code set an authorizer, a
    /// commit hook or a WAL hook of its own *before* this call (its C API
    /// reports none of them without removing it): attaching replaces them.
    /// One replaced *after* this call is noticed: [`arm`](Faults::arm)
    /// then fails, naming the connection and the hook.
    pub fn attach(&self, conn: &mut rusqlite::Connection) -> Result<ConnId> {
        self.attach_hooks(conn).map(|(id, _)| id)
    }

    /// [`attach`](Faults::attach), answering the attachment's life (its
    /// death flag), as a faulty pool manager keeps it.
    pub(crate) fn attach_hooks(&self, conn: &mut rusqlite::Connection) -> Result<(ConnId, Arc<dyn Kill>)> {
        let wal = conn
            .pragma_query_value(None, "journal_mode", |row| row.get::<_, String>(0))
            .is_ok_and(|mode| mode.eq_ignore_ascii_case("wal"));
        let hooked = Arc::new(Hooked {
            id: self.shared.next_conn_id(),
            shared: Arc::clone(&self.shared),
            dead: AtomicBool::new(false),
            interrupt: conn.get_interrupt_handle(),
            wal,
            gone: AtomicU8::new(0),
        });
        if let Some(why) = self
            .shared
            .armed_rules()
            .iter()
            .find_map(|rule| hooked.cannot_carry(rule))
        {
            return Err(Error::config("attach", why));
        }
        // The authorizer first: if it replaced another attachment's, that
        // one is put back and this attach refused before anything else of
        // the connection changed.
        DISPLACED.with_borrow_mut(|listening| *listening = Some(None));
        let installed = install_authorizer(conn, &hooked);
        let displaced = DISPLACED.with_borrow_mut(Option::take).flatten();
        installed?;
        if let Some(earlier) = displaced {
            install_authorizer(conn, &earlier)?;
            earlier.gone.fetch_and(!AUTHORIZER, Ordering::AcqRel);
            return Err(Error::config(
                "attach",
                format!(
                    "this rusqlite connection is attached already (as connection {}); attach \
                     each connection once",
                    earlier.id
                ),
            ));
        }
        let commit = Slot::new(&hooked, COMMIT_HOOK);
        conn.commit_hook(Some(move || commit.hooked.commit()))
            .map_err(|err| hook_error("commit hook", err))?;
        let progress = Slot::new(&hooked, PROGRESS_HANDLER);
        conn.progress_handler(PROGRESS_STEPS, Some(move || progress.hooked.is_dead()))
            .map_err(|err| hook_error("progress handler", err))?;
        install_wal_hook(conn).map_err(|err| hook_error("WAL hook", err))?;
        let weak: Weak<dyn Kill> = Arc::downgrade(&(Arc::clone(&hooked) as Arc<dyn Kill>));
        self.shared.register(hooked.id, weak);
        if self.shared.in_outage() {
            hooked.kill();
        }
        self.shared.journal(Some(hooked.id), "attach".to_owned());
        Ok((hooked.id, hooked))
    }
}

fn install_authorizer(conn: &mut rusqlite::Connection, hooked: &Arc<Hooked>) -> Result<()> {
    let mut authorizer = Authorizer {
        slot: Slot::new(hooked, AUTHORIZER),
        update: None,
    };
    conn.authorizer(Some(move |ctx: AuthContext<'_>| authorizer.authorize(&ctx)))
        .map_err(|err| hook_error("authorizer", err))
}

impl fmt::Debug for Hooked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooked")
            .field("id", &self.id)
            .field("dead", &self.is_dead())
            .field("wal", &self.wal)
            .finish()
    }
}
