//! [`FaultyManager`] as an r2d2 `ManageConnection`, and r2d2's pool
//! events in the journal.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use r2d2::event::{AcquireEvent, CheckinEvent, CheckoutEvent, HandleEvent, ReleaseEvent, TimeoutEvent};

use super::{Faulted, FaultyManager, ManagerError, Waiting};
use crate::lock::lock;
use crate::{ConnId, EventKind, Journal, Op};

thread_local! {
    /// The connection this thread's last connect made: r2d2 reports the
    /// acquire on the thread that connected, right after, under an id of
    /// its own.
    static CONNECTED: Cell<Option<ConnId>> = const { Cell::new(None) };
}

impl<M> FaultyManager<M> {
    /// Waits as a sync pool does: blocking the thread.
    fn wait_blocking(&self, waiting: Waiting, dead: Option<&std::sync::atomic::AtomicBool>) {
        match waiting {
            Waiting::Sleep(d) => self.faults.shared.sleep(d),
            Waiting::Hang(rule) => self.faults.shared.wait_disarmed(rule, dead),
        }
    }
}

impl<M: r2d2::ManageConnection> FaultyManager<M> {
    /// `is_valid` when a rule on pings is armed or the connection is
    /// dead: the rules first, then the inner validation.
    #[inline(never)]
    fn is_valid_with_rules(&self, conn: &mut Faulted<M::Connection>) -> Result<(), ManagerError<M::Error>> {
        let prelude = self.before_ping(&conn.life)?;
        if let Some(waiting) = prelude.wait {
            self.wait_blocking(waiting, Some(conn.life.kill.dead()));
        }
        let result = self.inner.is_valid(&mut conn.conn);
        self.ping_done(conn, result, prelude.cut)
    }
}

impl<M: r2d2::ManageConnection> r2d2::ManageConnection for FaultyManager<M> {
    type Connection = Faulted<M::Connection>;
    type Error = ManagerError<M::Error>;

    fn connect(&self) -> Result<Self::Connection, Self::Error> {
        let prelude = self
            .before_connect()
            .map_err(|err| self.failed_connect(err.into()))?;
        if let Some(waiting) = prelude.wait {
            self.wait_blocking(waiting, None);
            self.still_up().map_err(|err| self.failed_connect(err.into()))?;
        }
        let conn = self
            .inner
            .connect()
            .map_err(|err| self.failed_connect(ManagerError::Inner(err)))?;
        let conn = self
            .adopt(conn, prelude.cut.is_some())
            .map_err(ManagerError::Fault)?;
        CONNECTED.set(Some(conn.id()));
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        // The common case, kept small: no rule on pings and a live
        // connection, so nothing happens before the inner validation
        // (`before_ping` would answer an empty prelude), and a validation
        // that passed on a connection still alive is what `ping_done`
        // answers `Ok` for.
        if !self.faults.shared.any_armed(Op::Ping) && !conn.is_dead() {
            let result = self.inner.is_valid(&mut conn.conn);
            if result.is_ok() && !conn.is_dead() {
                self.faults
                    .shared
                    .record(Some(conn.id()), EventKind::Ping, String::new());
                return Ok(());
            }
            return self.ping_done(conn, result, None);
        }
        self.is_valid_with_rules(conn)
    }

    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        let inner = self.inner.has_broken(&mut conn.conn);
        self.broken(conn, inner)
    }
}

/// r2d2's pool events, written to a [`Journal`] under the ids the fault
/// layer gives the connections a [`FaultyManager`] makes, so
/// [`testing::expect`](crate::testing::expect) and the timeline work on
/// the user's own r2d2 pool.
///
/// Give it to the pool with `r2d2::Builder::event_handler`:
/// `Pool::builder().event_handler(Box::new(JournalEvents::new(&journal)))`.
/// Acquires are `connect` (the manager journals them with its own
/// details, so they are not written twice), releases `close`, checkouts
/// `checkout`, checkins `checkin`, timeouts `timeout`.
pub struct JournalEvents {
    journal: Journal,
    /// r2d2's connection ids to the fault layer's.
    ids: Mutex<HashMap<u64, ConnId>>,
}

impl JournalEvents {
    /// Writes r2d2's events to `journal` (shared).
    pub fn new(journal: &Journal) -> Self {
        JournalEvents {
            journal: journal.clone(),
            ids: Mutex::new(HashMap::new()),
        }
    }

    fn id(&self, r2d2_id: u64) -> Option<ConnId> {
        lock(&self.ids).get(&r2d2_id).copied()
    }
}

impl fmt::Debug for JournalEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JournalEvents")
            .field("connections", &lock(&self.ids).len())
            .finish_non_exhaustive()
    }
}

impl HandleEvent for JournalEvents {
    fn handle_acquire(&self, event: AcquireEvent) {
        if let Some(id) = CONNECTED.take() {
            lock(&self.ids).insert(event.connection_id(), id);
        }
    }

    fn handle_release(&self, event: ReleaseEvent) {
        let id = lock(&self.ids).remove(&event.connection_id());
        self.journal.record(id, EventKind::Close, String::new());
    }

    fn handle_checkout(&self, event: CheckoutEvent) {
        self.journal
            .record(self.id(event.connection_id()), EventKind::Checkout, String::new());
    }

    fn handle_timeout(&self, event: TimeoutEvent) {
        self.journal
            .record(None, EventKind::Timeout, format!("after {:?}", event.timeout()));
    }

    fn handle_checkin(&self, event: CheckinEvent) {
        self.journal
            .record(self.id(event.connection_id()), EventKind::Checkin, String::new());
    }
}
