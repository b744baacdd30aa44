//! Faulty managers for the pools users already run: r2d2, bb8 and
//! deadpool, each behind its cargo feature. See [`FaultyManager`].

use std::any::Any;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::fault::{Decision, Injected, Kill, Shared};
use crate::{ConnId, Dialect, Error, ErrorClass, EventKind, Faults, Op};

#[cfg(feature = "bb8")]
mod bb8;
#[cfg(feature = "deadpool")]
mod deadpool;
#[cfg(feature = "r2d2")]
mod r2d2;

#[cfg(feature = "r2d2")]
pub use self::r2d2::JournalEvents;

/// A pool manager with a fault layer around the user's own, for r2d2,
/// bb8 and deadpool, each behind its cargo feature.
///
/// [`FaultyManager`] wraps the user's own manager (r2d2_sqlite's,
/// deadpool-sqlite's, or any other) and implements the same manager trait,
/// so the user's pool is built as before, around it. The connections it
/// makes are [`Faulted`]: the user's connection type behind `Deref`, with
/// the id the fault layer knows it by. Through the [`Faults`] it was given:
///
/// - a connect ([`Op::Connect`]) is refused in an outage, and a rule can
///   fail it, make it slow or hang it;
/// - a validation ([`Op::Ping`]: r2d2's `is_valid`, bb8's `is_valid`,
///   deadpool's `recycle`) can fail, be slow or hang, and fails for a
///   killed connection;
/// - a connection killed by the fault layer (a fired disconnect,
///   [`Faults::kill`], [`restart`](Faults::restart), [`outage`](Faults::outage))
///   is reported broken on return (`has_broken`), so the pool drops it;
/// - a `rusqlite::Connection` is attached (`Faults::attach`) as it is made,
///   so every fault of [`docs::hooks`](crate::docs::hooks) reaches the
///   statements the user's code runs on it.
///
/// Without hooks (any other connection type), a killed connection is seen
/// at its next validation or return; the calls in between reach the
/// server.
///
/// Connects, validations and broken connections are journaled (`connect`,
/// `connect_failed`, `ping`, `ping_failed`, `invalidate`) when the
/// [`Faults`] has a journal; r2d2's own pool events join them through
/// `JournalEvents` (feature `r2d2`).
///
/// Per pool:
/// - **r2d2** (`ManageConnection`): `connect`, `is_valid` (a ping) and
///   `has_broken` as above; waits block the thread.
/// - **bb8** (`ManageConnection`): the same, async; waits are on tokio's
///   clock (or the fault layer's manual one).
/// - **deadpool** (`managed::Manager`): `create` is the connect; `recycle`
///   is the ping, and since deadpool has no `has_broken`, it is also where
///   a killed connection is refused, so the pool drops it at its next
///   checkout. deadpool-sqlite's connections (`SyncWrapper<rusqlite::Connection>`)
///   are attached under their lock as they are made.
///
/// ```
/// # #[cfg(feature = "r2d2")]
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use dbfault::{FaultyManager, Faults, Op, Rule};
///
/// # struct Opener;
/// # impl r2d2::ManageConnection for Opener {
/// #     type Connection = rusqlite::Connection;
/// #     type Error = rusqlite::Error;
/// #     fn connect(&self) -> Result<rusqlite::Connection, rusqlite::Error> { rusqlite::Connection::open_in_memory() }
/// #     fn is_valid(&self, conn: &mut rusqlite::Connection) -> Result<(), rusqlite::Error> { conn.execute_batch("") }
/// #     fn has_broken(&self, _: &mut rusqlite::Connection) -> bool { false }
/// # }
/// # let manager = Opener; // r2d2_sqlite's SqliteConnectionManager, say
/// let faults = Faults::new();
/// let pool = r2d2::Pool::builder()
///     .max_size(2)
///     .build(FaultyManager::new(manager, &faults))?;
///
/// let conn = pool.get()?; // a plain rusqlite::Connection behind Deref
/// conn.execute_batch("CREATE TABLE t (x INTEGER)")?;
/// faults.restart(); // the server restarts: every connection dies
/// assert!(conn.execute("INSERT INTO t VALUES (1)", []).is_err());
/// drop(conn); // reported broken on return: the pool drops it
/// # Ok(())
/// # }
/// # #[cfg(not(feature = "r2d2"))]
/// # fn main() {}
/// ```
pub struct FaultyManager<M> {
    inner: M,
    faults: Faults,
}

impl<M: fmt::Debug> fmt::Debug for FaultyManager<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyManager")
            .field("inner", &self.inner)
            .field("faults", &self.faults)
            .finish()
    }
}

impl<M> FaultyManager<M> {
    /// Wraps `inner`, the manager the user's pool runs, with the fault
    /// layer `faults` (shared: the test keeps its own handle).
    pub fn new(inner: M, faults: &Faults) -> Self {
        FaultyManager {
            inner,
            faults: faults.clone(),
        }
    }

    /// The wrapped manager.
    pub fn inner(&self) -> &M {
        &self.inner
    }

    /// The fault layer's handle.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// What a connect must do before it reaches the inner manager: `Err`
    /// refuses it (an outage, a rule that fails it); otherwise how long to
    /// wait first, and whether to drop what it opens.
    fn before_connect(&self) -> Result<Prelude, Error> {
        let shared = &self.faults.shared;
        if shared.in_outage() {
            return Err(Injected::new(&Managed).server_down());
        }
        Prelude::of(shared.decision(Op::Connect, "", None, &Managed))
    }

    /// After a rule held a connect: an outage that began meanwhile
    /// refuses it.
    fn still_up(&self) -> Result<(), Error> {
        if self.faults.shared.in_outage() {
            Err(Injected::new(&Managed).server_down())
        } else {
            Ok(())
        }
    }

    /// Takes in a connection the inner manager made: attaches the hooks
    /// to a `rusqlite::Connection`, registers any other one, and refuses
    /// it when the connect's rule said apply-then-kill or an outage began
    /// meanwhile. A refusal is journaled here, once, under the id the
    /// connection had (callers do not journal it again).
    fn adopt<C: Any>(&self, mut conn: C, cut: bool) -> Result<Faulted<C>, Error> {
        let shared = &self.faults.shared;
        let errors = Injected::new(&Managed);
        let life = self.life_of(&mut conn).inspect_err(|err| {
            shared.record(None, EventKind::ConnectFailed, err.to_string());
        })?;
        let id = life.id;
        let refused = if cut {
            Some(errors.dropped_after_connect(id))
        } else if shared.in_outage() {
            Some(errors.server_down())
        } else {
            None
        };
        if let Some(err) = refused {
            life.kill_now(shared);
            shared.record(Some(id), EventKind::ConnectFailed, err.to_string());
            return Err(err);
        }
        shared.record(Some(id), EventKind::Connect, String::new());
        Ok(Faulted { conn, life })
    }

    fn life_of<C: Any>(&self, conn: &mut C) -> Result<Life, Error> {
        #[cfg(all(feature = "deadpool", feature = "sqlite"))]
        if let Some(wrapper) =
            (conn as &mut dyn Any).downcast_mut::<deadpool_sync::SyncWrapper<rusqlite::Connection>>()
        {
            // deadpool-sqlite's connection: attached under its lock, which
            // nothing else holds yet.
            let mut guard = wrapper
                .lock()
                .map_err(|_| Error::config("attach", "the new connection's mutex is poisoned"))?;
            let (id, kill) = self.faults.attach_hooks(&mut guard)?;
            return Ok(Life {
                id,
                kill,
                shared: Arc::clone(&self.faults.shared),
            });
        }
        #[cfg(feature = "sqlite")]
        if let Some(sqlite) = (conn as &mut dyn Any).downcast_mut::<rusqlite::Connection>() {
            let (id, kill) = self.faults.attach_hooks(sqlite)?;
            return Ok(Life {
                id,
                kill,
                shared: Arc::clone(&self.faults.shared),
            });
        }
        let _ = conn;
        Ok(Life::plain(&self.faults))
    }

    /// What a validation must do before it reaches the inner manager:
    /// `Err` fails it (journaled), for a dead connection or a rule that
    /// fails it.
    fn before_ping(&self, life: &Life) -> Result<Prelude, Error> {
        let shared = &self.faults.shared;
        let prelude = if life.kill.is_dead() {
            Err(Injected::new(&Managed).killed(Op::Ping, life.id))
        } else {
            let decision = shared.decision(Op::Ping, "", Some(life.id), &Managed);
            if let Some(Decision::Kill(_)) = decision {
                life.kill_now(shared);
            }
            Prelude::of(decision)
        };
        if let Err(err) = &prelude {
            shared.record(Some(life.id), EventKind::PingFailed, err.to_string());
        }
        prelude
    }

    /// The end of a validation the inner manager answered.
    fn ping_done<C, E>(
        &self,
        conn: &Faulted<C>,
        result: Result<(), E>,
        cut: Option<Error>,
    ) -> Result<(), ManagerError<E>>
    where
        E: fmt::Display,
    {
        let shared = &self.faults.shared;
        let result = match (result, cut) {
            (Err(err), _) => Err(ManagerError::Inner(err)),
            (Ok(()), Some(err)) => {
                conn.life.kill_now(shared);
                Err(ManagerError::Fault(err))
            }
            (Ok(()), None) if conn.is_dead() => Err(ManagerError::Fault(
                Injected::new(&Managed).killed(Op::Ping, conn.id()),
            )),
            (Ok(()), None) => Ok(()),
        };
        match &result {
            Ok(()) => shared.record(Some(conn.id()), EventKind::Ping, String::new()),
            Err(err) => shared.record(Some(conn.id()), EventKind::PingFailed, err.to_string()),
        }
        result
    }

    /// `has_broken`: a connection the fault layer killed is broken.
    #[cfg_attr(not(any(feature = "r2d2", feature = "bb8")), allow(dead_code))]
    fn broken<C>(&self, conn: &Faulted<C>, inner_says: bool) -> bool {
        let broken = inner_says || conn.is_dead();
        if broken {
            self.faults.shared.record(
                Some(conn.id()),
                EventKind::Invalidate,
                "broken on return".to_owned(),
            );
        }
        broken
    }

    /// A connect, for the async pools: the rules, then `connect`, the
    /// inner manager's.
    #[cfg(feature = "tokio")]
    async fn connect_async<C, E, F>(&self, connect: F) -> Result<Faulted<C>, ManagerError<E>>
    where
        C: Any,
        E: fmt::Display,
        F: std::future::Future<Output = Result<C, E>>,
    {
        let prelude = self
            .before_connect()
            .map_err(|err| self.failed_connect(err.into()))?;
        if let Some(waiting) = prelude.wait {
            self.wait_async(waiting, None).await;
            self.still_up().map_err(|err| self.failed_connect(err.into()))?;
        }
        let conn = connect
            .await
            .map_err(|err| self.failed_connect(ManagerError::Inner(err)))?;
        self.adopt(conn, prelude.cut.is_some())
            .map_err(ManagerError::Fault)
    }

    /// What a validation does before the inner manager's, for the async
    /// pools: the rules and their waits. `Ok` holds the error to cut the
    /// connection with once the inner validation is done, if a rule said
    /// so (see [`ping_done`](Self::ping_done)).
    #[cfg(feature = "tokio")]
    async fn before_ping_async(&self, life: &Life) -> Result<Option<Error>, Error> {
        let prelude = self.before_ping(life)?;
        if let Some(waiting) = prelude.wait {
            self.wait_async(waiting, Some(life.kill.dead())).await;
        }
        Ok(prelude.cut)
    }

    /// Waits as an async pool does: on tokio's clock, or the fault
    /// layer's manual one.
    #[cfg(feature = "tokio")]
    async fn wait_async(&self, waiting: Waiting, dead: Option<&AtomicBool>) {
        match waiting {
            Waiting::Sleep(d) => self.faults.shared.sleep_async(d).await,
            Waiting::Hang(rule) => self.faults.shared.wait_disarmed_async(rule, dead).await,
        }
    }

    fn failed_connect<E: fmt::Display>(&self, err: ManagerError<E>) -> ManagerError<E> {
        self.faults
            .shared
            .record(None, EventKind::ConnectFailed, err.to_string());
        err
    }
}

/// What a connect or a validation does before it reaches the inner
/// manager, once no rule failed it.
struct Prelude {
    /// Wait first.
    wait: Option<Waiting>,
    /// Let the call run, then fail it with this error and kill the
    /// connection.
    cut: Option<Error>,
}

/// How a call waits: the sync managers block, the async ones await.
enum Waiting {
    Sleep(std::time::Duration),
    /// Until this rule is disarmed (or the connection dies).
    Hang(u64),
}

impl Prelude {
    fn of(decision: Option<Decision>) -> Result<Prelude, Error> {
        let (wait, cut) = match decision {
            None => (None, None),
            Some(Decision::Fail(err) | Decision::Kill(err)) => return Err(err),
            Some(Decision::Wait(d)) => (Some(Waiting::Sleep(d)), None),
            Some(Decision::Hang(rule)) => (Some(Waiting::Hang(rule)), None),
            Some(Decision::ApplyThenKill(err)) => (None, Some(err)),
        };
        Ok(Prelude { wait, cut })
    }
}

/// The dialect of the errors a faulty manager injects: it knows nothing
/// of the backend behind the user's manager, so an injected disconnect
/// carries no driver code and is told by its kind alone.
#[derive(Debug)]
struct Managed;

impl Dialect for Managed {
    fn name(&self) -> &str {
        "pool manager"
    }

    fn classify(&self, err: &Error) -> ErrorClass {
        if err.kind() == crate::ErrorKind::Closed {
            ErrorClass::Disconnect
        } else {
            err.class()
        }
    }
}

/// What the fault layer knows of one connection a [`FaultyManager`]
/// made: its id and its death flag (shared with its hooks when it is an
/// attached rusqlite connection).
struct Life {
    id: ConnId,
    kill: Arc<dyn Kill>,
    shared: Arc<Shared>,
}

/// The life of a connection without hooks: a flag the fault layer sets.
struct Plain {
    dead: AtomicBool,
}

impl Kill for Plain {
    fn kill(&self) {
        self.dead.store(true, std::sync::atomic::Ordering::Release);
    }

    fn dead(&self) -> &AtomicBool {
        &self.dead
    }
}

impl Life {
    fn plain(faults: &Faults) -> Life {
        let id = faults.shared.next_conn_id();
        let kill: Arc<dyn Kill> = Arc::new(Plain {
            dead: AtomicBool::new(false),
        });
        faults.shared.register(id, Arc::downgrade(&kill));
        Life {
            id,
            kill,
            shared: Arc::clone(&faults.shared),
        }
    }

    fn kill_now(&self, shared: &Shared) {
        self.kill.dead().store(true, std::sync::atomic::Ordering::Release);
        shared.unregister(self.id);
    }
}

impl Drop for Life {
    /// The pool dropped the connection: no longer live. (An attached
    /// rusqlite connection also unregisters when SQLite drops its hooks;
    /// twice does no harm.)
    fn drop(&mut self) {
        self.shared.unregister(self.id);
    }
}

/// A connection a [`FaultyManager`] made: the inner manager's connection
/// (a `rusqlite::Connection` for r2d2_sqlite) behind `Deref` and
/// `DerefMut`, so the user's code uses it as before.
pub struct Faulted<C> {
    conn: C,
    life: Life,
}

impl<C> Faulted<C> {
    /// The id the fault layer knows this connection by: in the journal, in
    /// [`Faults::kill`] and in [`Faults::live_connections`].
    pub fn id(&self) -> ConnId {
        self.life.id
    }

    /// Whether the fault layer killed this connection.
    pub fn is_dead(&self) -> bool {
        self.life.kill.is_dead()
    }

    /// The inner connection.
    pub fn inner(&self) -> &C {
        &self.conn
    }

    /// The inner connection, mutably.
    pub fn inner_mut(&mut self) -> &mut C {
        &mut self.conn
    }
}

impl<C> Deref for Faulted<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.conn
    }
}

impl<C> DerefMut for Faulted<C> {
    fn deref_mut(&mut self) -> &mut C {
        &mut self.conn
    }
}

/// So code generic over `M::Connection: BorrowMut<rusqlite::Connection>`
/// takes the plain manager's connection and this one alike.
impl<C> std::borrow::Borrow<C> for Faulted<C> {
    fn borrow(&self) -> &C {
        &self.conn
    }
}

impl<C> std::borrow::BorrowMut<C> for Faulted<C> {
    fn borrow_mut(&mut self) -> &mut C {
        &mut self.conn
    }
}

impl<C> AsRef<C> for Faulted<C> {
    fn as_ref(&self) -> &C {
        &self.conn
    }
}

impl<C> AsMut<C> for Faulted<C> {
    fn as_mut(&mut self) -> &mut C {
        &mut self.conn
    }
}

impl<C> fmt::Debug for Faulted<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Faulted")
            .field("id", &self.id())
            .field("dead", &self.is_dead())
            .finish_non_exhaustive()
    }
}

/// The error of a [`FaultyManager`]: the inner manager's own, untouched,
/// or one the fault layer injected.
#[derive(Debug)]
pub enum ManagerError<E> {
    /// The inner manager's error.
    Inner(E),
    /// An error the fault layer injected: a refused connect, a failed
    /// validation, a killed connection.
    Fault(Error),
}

impl<E> ManagerError<E> {
    /// The injected error, if this is one.
    pub fn fault(&self) -> Option<&Error> {
        match self {
            ManagerError::Fault(err) => Some(err),
            ManagerError::Inner(_) => None,
        }
    }
}

impl<E> From<Error> for ManagerError<E> {
    fn from(err: Error) -> Self {
        ManagerError::Fault(err)
    }
}

impl<E: fmt::Display> fmt::Display for ManagerError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManagerError::Inner(err) => err.fmt(f),
            ManagerError::Fault(err) => err.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for ManagerError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ManagerError::Inner(err) => err.source(),
            ManagerError::Fault(err) => err.source(),
        }
    }
}
