//! The live backends of a driver's connections, and killing them for real
//! with `pg_terminate_backend` over an admin connection: what the fault
//! layer's server-side faults do to PostgreSQL connections
//! ([`PgDriver::faulty`](super::PgDriver::faulty)).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use crate::ConnId;
use crate::fault::Server;
use crate::lock::lock;

/// How long a kill waits for the terminated backends to exit: a kill
/// returns once they are gone (or this passed), so the client's next call
/// meets the `FATAL 57P01` they sent.
const TERMINATE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A driver's live connections and their backends' process ids, and the
/// configuration an admin connection opens with.
pub(super) struct Backends {
    config: tokio_postgres::Config,
    pids: Mutex<HashMap<ConnId, i32>>,
}

impl fmt::Debug for Backends {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backends")
            .field("live", &lock(&self.pids).len())
            .finish()
    }
}

impl Backends {
    pub(super) fn new(config: tokio_postgres::Config) -> Self {
        Backends {
            config,
            pids: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn insert(&self, id: ConnId, pid: i32) {
        lock(&self.pids).insert(id, pid);
    }

    pub(super) fn remove(&self, id: ConnId) {
        lock(&self.pids).remove(&id);
    }

    /// The backend of connection `id`, while it is open.
    pub(super) fn pid(&self, id: ConnId) -> Option<i32> {
        lock(&self.pids).get(&id).copied()
    }

    /// Terminates `pids` over one admin connection, opened on a thread of
    /// its own (the sync client runs a runtime of its own, which cannot
    /// start inside the caller's if it is on one). Returns which were
    /// terminated; the reason when none could be.
    fn terminate_pids(&self, pids: &[i32]) -> Result<Vec<bool>, String> {
        let config = ::postgres::Config::from(self.config.clone());
        let pids = pids.to_vec();
        let admin = std::thread::Builder::new()
            .name("dbfault-pg-admin".to_owned())
            .spawn(move || -> Result<Vec<bool>, String> {
                let mut client = config
                    .connect(::postgres::NoTls)
                    .map_err(|e| format!("the admin connection failed: {e}"))?;
                let rows = client
                    .query(
                        "SELECT pg_terminate_backend(p) FROM unnest($1::int4[]) WITH ORDINALITY AS t(p, n) ORDER BY n",
                        &[&pids],
                    )
                    .map_err(|e| format!("pg_terminate_backend failed: {e}"))?;
                // pg_terminate_backend's own wait polls every 100 ms; this
                // one asks again after a millisecond.
                let started = std::time::Instant::now();
                while started.elapsed() < TERMINATE_WAIT {
                    let left: i64 = client
                        .query_one("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)", &[&pids])
                        .map_err(|e| format!("waiting for the backends to exit: {e}"))?
                        .get(0);
                    if left == 0 {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                let _ = client.close();
                Ok(rows.iter().map(|row| row.get::<_, bool>(0)).collect())
            })
            .map_err(|e| format!("no thread for the admin connection: {e}"))?;
        admin
            .join()
            .unwrap_or_else(|_| Err("the admin connection's thread panicked".to_owned()))
    }
}

impl Server for Backends {
    fn terminate(&self, ids: &[ConnId]) -> Result<Vec<bool>, String> {
        let known: Vec<(usize, i32)> = ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| self.pid(*id).map(|pid| (i, pid)))
            .collect();
        let mut done = vec![false; ids.len()];
        if !known.is_empty() {
            let pids: Vec<i32> = known.iter().map(|(_, pid)| *pid).collect();
            for ((i, _), ok) in known.iter().zip(self.terminate_pids(&pids)?) {
                done[*i] = ok;
            }
        }
        Ok(done)
    }
}
