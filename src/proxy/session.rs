//! One client connection through the proxy: its startup, then both
//! directions relayed by one task, message by message, with the fault
//! layer's decisions carried out between them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

use super::wire::{self, Reply, Startup, WireError};
use crate::fault::{Decision, Kill, Shared};
use crate::{ConnId, Dialect, Error, ErrorClass, EventKind, Faults, Op};

/// How a relayed connection ends.
#[derive(Debug)]
enum End {
    /// The client closed (or sent Terminate).
    Client,
    /// The server closed.
    Server,
    /// The fault layer cut it.
    Cut,
    /// The proxy stopped.
    Stopped,
    /// A message neither side should send.
    Wire(WireError),
    /// A socket failed.
    Io(std::io::Error),
}

impl From<std::io::Error> for End {
    fn from(err: std::io::Error) -> Self {
        End::Io(err)
    }
}

impl From<WireError> for End {
    fn from(err: WireError) -> Self {
        End::Wire(err)
    }
}

/// The dialect of the errors the proxy injects: a disconnect carries
/// SQLSTATE 57P01, as a terminated backend's does.
#[derive(Debug)]
struct Wire;

impl Dialect for Wire {
    fn name(&self) -> &str {
        "postgres wire"
    }

    fn classify(&self, err: &Error) -> ErrorClass {
        if err.kind() == crate::ErrorKind::Closed {
            ErrorClass::Disconnect
        } else {
            err.class()
        }
    }

    fn disconnect_code(&self) -> Option<&str> {
        Some(TERMINATED)
    }
}

/// admin_shutdown: what a backend ended by `pg_terminate_backend` sends.
const TERMINATED: &str = "57P01";

/// A relayed connection, as the fault layer's registry holds it.
struct Life {
    dead: AtomicBool,
    /// Wakes the relay when the connection is killed.
    killed: Notify,
}

impl Kill for Life {
    fn kill(&self) {
        self.dead.store(true, Ordering::Release);
        // A permit is kept if the relay is not waiting right now.
        self.killed.notify_one();
    }

    fn dead(&self) -> &AtomicBool {
        &self.dead
    }
}

/// Accepts clients until the task is aborted; each gets a task of its own.
pub(super) async fn accept(
    listener: TcpListener,
    upstream: Arc<str>,
    faults: Faults,
    stop: watch::Receiver<bool>,
) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(err) => {
                faults
                    .shared
                    .record(None, EventKind::ConnectFailed, format!("proxy accept: {err}"));
                // Out of file descriptors, say: give the others time to end.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = client.set_nodelay(true);
        let session = Session::new(client, Arc::clone(&faults.shared));
        tokio::spawn(session.run(Arc::clone(&upstream), stop.clone()));
    }
}

struct Session {
    id: ConnId,
    shared: Arc<Shared>,
    life: Arc<Life>,
    client: TcpStream,
    /// Read from the client, not yet relayed.
    from_client: BytesMut,
    /// Read from the server, not yet relayed.
    from_server: BytesMut,
    /// To write to the server, and to the client.
    to_server: BytesMut,
    to_client: BytesMut,
    /// Prepared statements' SQL, by name (`""`: the unnamed one).
    statements: HashMap<String, String>,
    /// ParseCompletes the server will send for Parses the proxy added.
    swallow: usize,
    /// A `disconnect_after_apply` fired: cut when the server answers.
    cut_at_answer: bool,
}

impl Session {
    fn new(client: TcpStream, shared: Arc<Shared>) -> Self {
        Session {
            id: shared.next_conn_id(),
            shared,
            life: Arc::new(Life {
                dead: AtomicBool::new(false),
                killed: Notify::new(),
            }),
            client,
            from_client: BytesMut::with_capacity(8 * 1024),
            from_server: BytesMut::with_capacity(8 * 1024),
            to_server: BytesMut::with_capacity(8 * 1024),
            to_client: BytesMut::with_capacity(8 * 1024),
            statements: HashMap::new(),
            swallow: 0,
            cut_at_answer: false,
        }
    }

    async fn run(mut self, upstream: Arc<str>, stop: watch::Receiver<bool>) {
        let end = match self.start(&upstream).await {
            Ok(Some(server)) => {
                let weak: std::sync::Weak<dyn Kill> =
                    Arc::downgrade(&(Arc::clone(&self.life) as Arc<dyn Kill>));
                self.shared.register(self.id, weak);
                let end = self.relay(server, stop).await;
                self.shared.unregister(self.id);
                end
            }
            Ok(None) => return,
            Err(end) => end,
        };
        let detail = match end {
            End::Client => "client closed".to_owned(),
            End::Server => "server closed".to_owned(),
            End::Cut => "cut".to_owned(),
            End::Stopped => "proxy stopped".to_owned(),
            End::Wire(err) => err.to_string(),
            End::Io(err) => format!("socket error: {err}"),
        };
        self.shared.record(Some(self.id), EventKind::Close, detail);
    }

    /// The startup: encryption refused, cancel requests passed on, the
    /// connect's rules, then the server. `Ok(None)`: the connection ended
    /// here, as it should (a cancel request, a refused connect).
    async fn start(&mut self, upstream: &str) -> Result<Option<TcpStream>, End> {
        let len = loop {
            match wire::startup(&self.from_client)? {
                Some((Startup::Encryption, len)) => {
                    let _ = self.from_client.split_to(len);
                    self.client.write_all(&[wire::NO_ENCRYPTION]).await?;
                }
                Some((Startup::Cancel, len)) => {
                    // For a backend of another connection: passed on as it is.
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = server.write_all(&self.from_client[..len]).await;
                    }
                    return Ok(None);
                }
                Some((Startup::Message, len)) => break len,
                None => {
                    if self.client.read_buf(&mut self.from_client).await? == 0 {
                        return Err(End::Client);
                    }
                }
            }
        };
        let mut cut = false;
        if !self.shared.in_outage() {
            match self.shared.decision(Op::Connect, "", None, &Wire) {
                None => {}
                Some(Decision::Wait(d)) => self.shared.sleep_async(d).await,
                Some(Decision::Hang(rule)) => self.shared.wait_disarmed_async(rule, None).await,
                Some(Decision::ApplyThenKill(_)) => cut = true,
                Some(Decision::Kill(_)) => return self.refuse(None).await,
                Some(Decision::Fail(err)) => return self.refuse(Some(&err)).await,
            }
        }
        if self.shared.in_outage() {
            return self.refuse(None).await;
        }
        let mut server = match TcpStream::connect(upstream).await {
            Ok(server) => server,
            Err(err) => {
                let message = format!("dbfault proxy: cannot reach the server at {upstream}: {err}");
                wire::error_response("FATAL", "08006", &message, &mut self.to_client);
                let _ = self.client.write_all(&self.to_client).await;
                self.shared.record(None, EventKind::ConnectFailed, message);
                return Ok(None);
            }
        };
        let _ = server.set_nodelay(true);
        server.write_all(&self.from_client.split_to(len)).await?;
        if cut {
            self.shared
                .record(None, EventKind::ConnectFailed, "dropped after connect".to_owned());
            return Ok(None);
        }
        Ok(Some(server))
    }

    /// Refuses a connect: with a FATAL error when `err` says one, else by
    /// closing the socket.
    async fn refuse(&mut self, err: Option<&Error>) -> Result<Option<TcpStream>, End> {
        let detail = match err {
            Some(err) => {
                wire::error_response("FATAL", &sqlstate(err), err.message(), &mut self.to_client);
                let _ = self.client.write_all(&self.to_client).await;
                format!("refused: {err}")
            }
            None if self.shared.in_outage() => "refused: outage".to_owned(),
            None => "refused: socket closed".to_owned(),
        };
        self.shared.record(None, EventKind::ConnectFailed, detail);
        Ok(None)
    }

    async fn relay(&mut self, mut server: TcpStream, mut stop: watch::Receiver<bool>) -> End {
        let end = loop {
            if self.life.dead.load(Ordering::Acquire) {
                break self.terminate().await;
            }
            let step = tokio::select! {
                biased;
                () = self.life.killed.notified() => continue,
                _ = stop.changed() => Err(End::Stopped),
                read = self.client.read_buf(&mut self.from_client) => match read {
                    Ok(0) => Err(End::Client),
                    Ok(_) => self.relay_client(&mut server).await,
                    Err(err) => Err(End::Io(err)),
                },
                read = server.read_buf(&mut self.from_server) => match read {
                    Ok(0) => Err(End::Server),
                    Ok(_) => self.relay_server().await,
                    Err(err) => Err(End::Io(err)),
                },
            };
            if let Err(end) = step {
                break end;
            }
        };
        let _ = server.shutdown().await;
        end
    }

    /// The client is cut as a terminated backend's is: FATAL 57P01.
    async fn terminate(&mut self) -> End {
        self.to_client.clear();
        wire::error_response(
            "FATAL",
            TERMINATED,
            "terminating connection due to administrator command",
            &mut self.to_client,
        );
        let _ = self.client.write_all(&self.to_client).await;
        End::Cut
    }

    /// Relays every whole message the client sent, carrying out the
    /// rules on statements.
    async fn relay_client(&mut self, server: &mut TcpStream) -> Result<(), End> {
        while let Some((tag, len)) = wire::client_frame(&self.from_client)? {
            let msg = self.from_client.split_to(len);
            // The SQL is borrowed, from the message or the statement map:
            // with no rule armed, a statement costs its classification and
            // one atomic load, no copy.
            let decide = |sql: &str| {
                self.shared
                    .decision(wire::classify(sql), sql, Some(self.id), &Wire)
            };
            let decision = match tag {
                b'Q' => decide(wire::query_text(&msg)?),
                b'P' => {
                    let (name, sql) = wire::parse_message(&msg)?;
                    self.statements.insert(name.to_owned(), sql.to_owned());
                    None
                }
                b'B' => {
                    let (_, statement) = wire::bind_names(&msg)?;
                    self.statements.get(statement).and_then(|sql| decide(sql))
                }
                _ => None,
            };
            match decision {
                None => self.to_server.extend_from_slice(&msg),
                Some(decision) => self.carry_out(decision, &msg, server).await?,
            }
            if tag == b'X' {
                server.write_all(&self.to_server).await?;
                return Err(End::Client);
            }
        }
        server.write_all(&self.to_server).await?;
        self.to_server.clear();
        Ok(())
    }

    /// What a fired rule does to the client's message `msg` (a Query or a
    /// Bind).
    async fn carry_out(&mut self, decision: Decision, msg: &[u8], server: &mut TcpStream) -> Result<(), End> {
        match decision {
            Decision::Wait(d) => {
                self.flush(server).await?;
                self.shared.sleep_async(d).await;
                self.to_server.extend_from_slice(msg);
            }
            Decision::Hang(rule) => {
                self.flush(server).await?;
                self.shared.wait_disarmed_async(rule, Some(&self.life.dead)).await;
                if self.life.dead.load(Ordering::Acquire) {
                    return Err(self.terminate().await);
                }
                self.to_server.extend_from_slice(msg);
            }
            Decision::Kill(_) => {
                self.life.kill();
                self.shared.unregister(self.id);
                return Err(self.terminate().await);
            }
            Decision::ApplyThenKill(_) => {
                self.cut_at_answer = true;
                self.to_server.extend_from_slice(msg);
            }
            Decision::Fail(err) => {
                let raise = wire::raise_sql(&sqlstate(&err), err.message());
                if msg[0] == b'Q' {
                    wire::query(&raise, &mut self.to_server)?;
                } else {
                    let (portal, _) = wire::bind_names(msg)?;
                    wire::parse_and_bind(portal, &raise, &mut self.to_server)?;
                    self.swallow += 1;
                }
            }
        }
        Ok(())
    }

    async fn flush(&mut self, server: &mut TcpStream) -> Result<(), End> {
        server.write_all(&self.to_server).await?;
        self.to_server.clear();
        Ok(())
    }

    /// Relays every whole message the server sent, dropping the answers
    /// to what the proxy added, and cutting the client where a
    /// `disconnect_after_apply` said.
    async fn relay_server(&mut self) -> Result<(), End> {
        while let Some((_, len)) = wire::server_frame(&self.from_server)? {
            let msg = self.from_server.split_to(len);
            // Only the messages the proxy acts on are read (by their type
            // byte first): the common CommandComplete and ReadyForQuery are
            // relayed unread.
            match msg[0] {
                b'1' if self.swallow > 0 => {
                    self.swallow -= 1;
                    continue;
                }
                b'C' | b'E' if self.cut_at_answer => {
                    // The server answered; the client never reads it.
                    self.client.write_all(&self.to_client).await?;
                    self.life.kill();
                    self.shared.unregister(self.id);
                    return Err(End::Cut);
                }
                b'K' => {
                    if let Reply::Backend(pid) = wire::reply(&msg)? {
                        self.shared
                            .record(Some(self.id), EventKind::Connect, format!("backend pid {pid}"));
                    }
                }
                _ => {}
            }
            self.to_client.extend_from_slice(&msg);
        }
        self.client.write_all(&self.to_client).await?;
        self.to_client.clear();
        Ok(())
    }
}

/// The SQLSTATE an injected error is raised with: its code when that is
/// one, else one of its class.
fn sqlstate(err: &Error) -> String {
    match err.code() {
        Some(code) if wire::is_sqlstate(code) => code.to_owned(),
        _ => match err.class() {
            ErrorClass::Transient => "40001",
            ErrorClass::Constraint => "23000",
            ErrorClass::Statement => "42000",
            ErrorClass::Disconnect => TERMINATED,
            _ => "P0001",
        }
        .to_owned(),
    }
}
