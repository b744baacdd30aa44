//! The fault proxy for PostgreSQL: see [`FaultProxy`].

mod session;
mod wire;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Faults;

/// A fault proxy for PostgreSQL: an in-process TCP proxy that any client
/// can be pointed at, with the fault layer on the wire.
///
/// [`FaultProxy`] listens on a local port and relays each client
/// connection to a real PostgreSQL server, reading enough of the v3
/// protocol to know each connection's backend, each statement (simple and
/// extended protocol) and each reply. The rules armed on its [`Faults`]
/// apply there:
///
/// | rule on | checked at | text seen by `matching` |
/// | --- | --- | --- |
/// | [`Op::Connect`](crate::Op::Connect) | the client's StartupMessage | empty |
/// | [`Op::Begin`](crate::Op::Begin), [`Op::Commit`](crate::Op::Commit), [`Op::Rollback`](crate::Op::Rollback), [`Op::Query`](crate::Op::Query), [`Op::Execute`](crate::Op::Execute) | a simple Query, or the Bind that starts an extended-protocol execution | the statement's SQL |
///
/// A statement is a begin (`BEGIN`, `START TRANSACTION`), a commit
/// (`COMMIT`, `END`), a rollback (`ROLLBACK`, `ABORT`), a query (`SELECT`,
/// `WITH`, `SHOW`, `VALUES`, `TABLE`) or else an execute, by its first
/// word. A simple Query holding several statements is checked by its
/// first.
///
/// What each action does:
///
/// - **error** on a statement: the statement is replaced by one that makes
///   the real server raise the rule's SQLSTATE (its `code`, when it is one;
///   else 40001 for a transient class, 23000 constraint, 42000 statement,
///   P0001 other), so the server's transaction fails exactly as the client
///   is told, and a later COMMIT answers ROLLBACK with nothing applied. On
///   a connect: a FATAL ErrorResponse with that SQLSTATE (53300 or 57P03,
///   say), then the socket closes.
/// - **disconnect**: a FATAL 57P01 to the client, as a terminated backend
///   sends, then both sockets close; the server rolls back. On a connect:
///   the socket closes at once.
/// - **disconnect_after_apply**: the statement goes to the server, and the
///   client is cut when the server's CommandComplete for it comes back,
///   before the client reads it: a COMMIT is applied, and the client
///   never hears.
/// - **delay** and **hang**: the message waits, then goes on.
/// - [`Faults::kill`] cuts one connection (FATAL 57P01 first),
///   [`restart`](Faults::restart) every one, [`outage`](Faults::outage)
///   every one and refuses new connects until [`restore`](Faults::restore).
///
/// SSLRequest and GSSENCRequest are answered `N`, so clients fall back to
/// plain TCP. A malformed message from either side, an unknown message
/// type or an unreachable server is journaled and closes that connection
/// alone.
///
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use dbfault::{FaultProxy, Faults, Op, Rule};
///
/// let faults = Faults::new();
/// let proxy = FaultProxy::start("127.0.0.1:5432", &faults).await?;
/// // Point any client at the proxy instead of the server:
/// let url = proxy.url("postgres", "test");
/// let _cut = faults.arm(Rule::on(Op::Commit).disconnect_after_apply());
/// # let _ = url;
/// # Ok(())
/// # }
/// ```
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: String,
    faults: Faults,
    accept: JoinHandle<()>,
    /// Dropped with the proxy: every connection under way ends.
    _stop: watch::Sender<bool>,
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}

impl FaultProxy {
    /// Starts a proxy to the server at `upstream` (`host:port`), listening
    /// on a free port of 127.0.0.1, on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// The listening socket could not be bound. The server is not
    /// contacted until a client connects; if it is down then, that client
    /// gets a FATAL error and the journal says why.
    pub async fn start(upstream: impl Into<String>, faults: &Faults) -> io::Result<FaultProxy> {
        FaultProxy::start_on("127.0.0.1:0", upstream, faults).await
    }

    /// As [`start`](FaultProxy::start), listening on `listen`.
    ///
    /// # Errors
    ///
    /// The listening socket could not be bound.
    pub async fn start_on(
        listen: &str,
        upstream: impl Into<String>,
        faults: &Faults,
    ) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let upstream: String = upstream.into();
        let (stop, stopped) = watch::channel(false);
        let accept = tokio::spawn(session::accept(
            listener,
            Arc::from(upstream.as_str()),
            faults.clone(),
            stopped,
        ));
        Ok(FaultProxy {
            addr,
            upstream,
            faults: faults.clone(),
            accept,
            _stop: stop,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A connection URL through the proxy, for `user` and database `dbname`.
    pub fn url(&self, user: &str, dbname: &str) -> String {
        format!("postgres://{user}@{}/{dbname}", self.addr)
    }

    /// The server the proxy relays to.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// The fault layer's handle.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }
}

/// Runs the proxy's message readers over `data` as each side would send
/// it: the startup packet, then frontend messages (and the Query, Parse
/// and Bind readers), then, separately, backend messages. For the fuzz
/// target: whatever the bytes, this returns, and never panics.
#[doc(hidden)]
pub fn fuzz_wire(data: &[u8]) {
    let mut rest = data;
    if let Ok(Some((_, len))) = wire::startup(rest) {
        rest = &rest[len..];
    }
    while let Ok(Some((tag, len))) = wire::client_frame(rest) {
        let msg = &rest[..len];
        let _ = match tag {
            b'Q' => wire::query_text(msg).map(|sql| {
                let _ = wire::classify(sql);
            }),
            b'P' => wire::parse_message(msg).map(drop),
            b'B' => wire::bind_names(msg).map(drop),
            _ => Ok(()),
        };
        rest = &rest[len..];
    }
    let mut rest = data;
    while let Ok(Some((_, len))) = wire::server_frame(rest) {
        let _ = wire::reply(&rest[..len]);
        rest = &rest[len..];
    }
}

impl Drop for FaultProxy {
    /// Stops accepting, and ends every connection under way (their
    /// sockets close; the server rolls back what they left open).
    fn drop(&mut self) {
        self.accept.abort();
    }
}
