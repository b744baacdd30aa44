//! The part of PostgreSQL's v3 protocol the proxy reads: message framing
//! in both directions, the few frontend messages it looks into, and the
//! backend messages it writes itself.
//!
//! Backend messages are read with `postgres-protocol` (the codec
//! tokio-postgres uses); that crate writes frontend messages but does not
//! read them, so the frontend side is read here. Every read is checked:
//! a length out of range, a string without its terminator or an unknown
//! message type is a [`WireError`], never a panic.

use std::fmt;

use bytes::{Buf, BufMut, BytesMut};

use crate::Op;

/// The protocol number of a v3 StartupMessage.
#[cfg(test)]
pub(crate) const PROTOCOL_V3: i32 = 196_608;
/// The request codes a startup packet can carry instead of a version.
pub(crate) const SSL_REQUEST: i32 = 80_877_103;
pub(crate) const GSSENC_REQUEST: i32 = 80_877_104;
pub(crate) const CANCEL_REQUEST: i32 = 80_877_102;

/// The longest message the proxy accepts, in either direction: a real
/// server caps most messages at 1 GiB.
pub(crate) const MAX_MESSAGE: usize = 1 << 30;
/// The longest startup packet: the server's own cap.
const MAX_STARTUP: usize = 10_000;

/// A message the proxy cannot read: what and which side sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireError {
    /// `client` or `server`.
    pub(crate) side: &'static str,
    pub(crate) what: String,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed message from the {}: {}", self.side, self.what)
    }
}

impl WireError {
    fn client(what: impl Into<String>) -> Self {
        WireError {
            side: "client",
            what: what.into(),
        }
    }

    fn server(what: impl Into<String>) -> Self {
        WireError {
            side: "server",
            what: what.into(),
        }
    }
}

/// The first packet of a connection, which has no type byte.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Startup {
    /// A StartupMessage (or another version number the server will judge).
    Message,
    /// SSLRequest or GSSENCRequest: answered `N`, then the client goes on.
    Encryption,
    /// A CancelRequest, for a backend through another connection.
    Cancel,
}

/// Reads the startup packet at the front of `buf`: `None` until it is
/// whole, then its kind and its length in bytes.
pub(crate) fn startup(buf: &[u8]) -> Result<Option<(Startup, usize)>, WireError> {
    if buf.len() < 8 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let code = i32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let len = usize::try_from(len)
        .ok()
        .filter(|len| (8..=MAX_STARTUP).contains(len))
        .ok_or_else(|| WireError::client(format!("startup packet length {len} (8 to {MAX_STARTUP})")))?;
    if buf.len() < len {
        return Ok(None);
    }
    let kind = match code {
        SSL_REQUEST | GSSENC_REQUEST => Startup::Encryption,
        CANCEL_REQUEST => Startup::Cancel,
        _ => Startup::Message,
    };
    Ok(Some((kind, len)))
}

/// The frontend message types of the v3 protocol, after startup.
const FRONTEND: &[u8] = b"BCdcfDEHFpPQSX";
/// The backend message types of the v3 protocol.
const BACKEND: &[u8] = b"RK23CdcGHWDIEVnNAtS1sZTv";

/// The type and the whole length (type byte included) of the message at
/// the front of `buf`, once it is whole.
fn frame(buf: &[u8], known: &[u8], err: fn(String) -> WireError) -> Result<Option<(u8, usize)>, WireError> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let tag = buf[0];
    if !known.contains(&tag) {
        return Err(err(format!(
            "unknown message type {:?} (0x{tag:02x})",
            char::from(tag)
        )));
    }
    let len = i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    let body = usize::try_from(len)
        .ok()
        .filter(|len| (4..=MAX_MESSAGE).contains(len))
        .ok_or_else(|| err(format!("message {:?} declares length {len}", char::from(tag))))?;
    let whole = body + 1;
    Ok((buf.len() >= whole).then_some((tag, whole)))
}

/// A frontend message at the front of `buf`: see [`frame`].
pub(crate) fn client_frame(buf: &[u8]) -> Result<Option<(u8, usize)>, WireError> {
    frame(buf, FRONTEND, WireError::client)
}

/// A backend message at the front of `buf`: see [`frame`].
pub(crate) fn server_frame(buf: &[u8]) -> Result<Option<(u8, usize)>, WireError> {
    frame(buf, BACKEND, WireError::server)
}

/// Reads the body of one message field by field.
struct Body<'a> {
    rest: &'a [u8],
    tag: u8,
}

impl<'a> Body<'a> {
    /// The body of the whole message `msg` (type byte and length first).
    fn of(msg: &'a [u8]) -> Self {
        Body {
            rest: &msg[5..],
            tag: msg[0],
        }
    }

    fn cstr(&mut self, field: &str) -> Result<&'a str, WireError> {
        let end = self.rest.iter().position(|&b| b == 0).ok_or_else(|| {
            WireError::client(format!(
                "{} message: {field} has no terminating NUL",
                char::from(self.tag)
            ))
        })?;
        let s = std::str::from_utf8(&self.rest[..end]).map_err(|_| {
            WireError::client(format!("{} message: {field} is not UTF-8", char::from(self.tag)))
        })?;
        self.rest = &self.rest[end + 1..];
        Ok(s)
    }
}

/// A Query message's SQL text.
pub(crate) fn query_text(msg: &[u8]) -> Result<&str, WireError> {
    Body::of(msg).cstr("query string")
}

/// A Parse message's statement name and SQL text.
pub(crate) fn parse_message(msg: &[u8]) -> Result<(&str, &str), WireError> {
    let mut body = Body::of(msg);
    Ok((body.cstr("statement name")?, body.cstr("query string")?))
}

/// A Bind message's portal and statement names.
pub(crate) fn bind_names(msg: &[u8]) -> Result<(&str, &str), WireError> {
    let mut body = Body::of(msg);
    Ok((body.cstr("portal name")?, body.cstr("statement name")?))
}

/// The operation a statement is for a rule: `BEGIN`/`START TRANSACTION`
/// is a begin, `COMMIT`/`END` a commit, `ROLLBACK`/`ABORT` a rollback
/// (`ROLLBACK TO` a savepoint is a rollback too), a statement that
/// returns rows (`SELECT`, `WITH`, `SHOW`, `VALUES`, `TABLE`) a query,
/// anything else an execute.
pub(crate) fn classify(sql: &str) -> Op {
    let word = first_word(sql);
    let is = |w: &str| word.eq_ignore_ascii_case(w);
    if is("begin") || is("start") {
        Op::Begin
    } else if is("commit") || is("end") {
        Op::Commit
    } else if is("rollback") || is("abort") {
        Op::Rollback
    } else if is("select") || is("with") || is("show") || is("values") || is("table") {
        Op::Query
    } else {
        Op::Execute
    }
}

/// The first word of `sql`, after blanks and comments.
fn first_word(sql: &str) -> &str {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(line) = rest.strip_prefix("--") {
            rest = line.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(block) = rest.strip_prefix("/*") {
            rest = block.split_once("*/").map_or("", |(_, after)| after);
        } else {
            break;
        }
    }
    let end = rest
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(rest.len());
    &rest[..end]
}

/// Whether `code` is an SQLSTATE: five digits or upper-case letters.
pub(crate) fn is_sqlstate(code: &str) -> bool {
    code.len() == 5 && code.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

/// A statement that makes the real server raise `sqlstate` with
/// `message`, so that its transaction fails exactly as the client is
/// told.
pub(crate) fn raise_sql(sqlstate: &str, message: &str) -> String {
    debug_assert!(is_sqlstate(sqlstate));
    format!(
        "DO $dbfault$ BEGIN RAISE EXCEPTION USING ERRCODE = '{sqlstate}', MESSAGE = '{}'; END $dbfault$",
        message.replace('\'', "''").replace("$dbfault$", "")
    )
}

/// Appends a backend ErrorResponse: `severity` (`ERROR` or `FATAL`),
/// SQLSTATE `code` and `message`.
pub(crate) fn error_response(severity: &str, code: &str, message: &str, out: &mut BytesMut) {
    let start = out.len();
    out.put_u8(b'E');
    out.put_i32(0);
    for (field, value) in [(b'S', severity), (b'V', severity), (b'C', code), (b'M', message)] {
        out.put_u8(field);
        out.put_slice(value.as_bytes());
        out.put_u8(0);
    }
    out.put_u8(0);
    let len = i32::try_from(out.len() - start - 1).unwrap_or(i32::MAX);
    out[start + 1..start + 5].copy_from_slice(&len.to_be_bytes());
}

/// The reply that refuses a startup with SSL or GSS encryption.
pub(crate) const NO_ENCRYPTION: u8 = b'N';

/// A frontend Parse of `sql` as the unnamed statement, then a Bind of it
/// to `portal` with no parameters: what replaces a client's Bind whose
/// statement must fail on the server.
pub(crate) fn parse_and_bind(portal: &str, sql: &str, out: &mut BytesMut) -> Result<(), WireError> {
    let fail = |e: std::io::Error| WireError::client(format!("cannot write the replacement: {e}"));
    postgres_protocol::message::frontend::parse("", sql, std::iter::empty(), out).map_err(fail)?;
    postgres_protocol::message::frontend::bind(
        portal,
        "",
        std::iter::empty::<i16>(),
        std::iter::empty::<()>(),
        |(), _| Ok(postgres_protocol::IsNull::Yes),
        std::iter::empty::<i16>(),
        out,
    )
    .map_err(|_| WireError::client("cannot write the replacement Bind"))?;
    Ok(())
}

/// A frontend Query message of `sql`.
pub(crate) fn query(sql: &str, out: &mut BytesMut) -> Result<(), WireError> {
    postgres_protocol::message::frontend::query(sql, out)
        .map_err(|e| WireError::client(format!("cannot write the replacement query: {e}")))
}

/// What the proxy reads in a backend message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// BackendKeyData: the backend's process id.
    Backend(i32),
    /// CommandComplete and its tag.
    Complete(String),
    /// ReadyForQuery and the transaction status (`I`, `T` or `E`).
    Ready(u8),
    /// ErrorResponse: its severity and SQLSTATE.
    Error { severity: String, code: String },
    /// ParseComplete.
    ParseComplete,
    /// Any other message.
    Other,
}

/// Reads the backend message `msg` (whole, as [`server_frame`] cut it).
pub(crate) fn reply(msg: &[u8]) -> Result<Reply, WireError> {
    use fallible_iterator::FallibleIterator;
    use postgres_protocol::message::backend::Message;

    if !matches!(msg[0], b'K' | b'C' | b'Z' | b'E' | b'1') {
        return Ok(Reply::Other);
    }
    let bad = |e: std::io::Error| WireError::server(format!("{:?} message: {e}", char::from(msg[0])));
    let mut buf = BytesMut::from(msg);
    let parsed = Message::parse(&mut buf).map_err(bad)?;
    if buf.has_remaining() {
        return Err(WireError::server(format!(
            "{:?} message: trailing bytes",
            char::from(msg[0])
        )));
    }
    Ok(match parsed {
        Some(Message::BackendKeyData(body)) => Reply::Backend(body.process_id()),
        Some(Message::CommandComplete(body)) => Reply::Complete(body.tag().map_err(bad)?.to_owned()),
        Some(Message::ReadyForQuery(body)) => Reply::Ready(body.status()),
        Some(Message::ParseComplete) => Reply::ParseComplete,
        Some(Message::ErrorResponse(body)) => {
            let mut severity = String::new();
            let mut code = String::new();
            let mut fields = body.fields();
            while let Some(field) = fields.next().map_err(bad)? {
                let value = String::from_utf8_lossy(field.value_bytes()).into_owned();
                match field.type_() {
                    b'V' => severity = value,
                    b'S' if severity.is_empty() => severity = value,
                    b'C' => code = value,
                    _ => {}
                }
            }
            Reply::Error { severity, code }
        }
        _ => Reply::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        out.extend_from_slice(&(i32::try_from(body.len()).unwrap() + 4).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn frames_wait_for_the_whole_message_and_refuse_bad_lengths_and_types() {
        let q = msg(b'Q', b"SELECT 1\0");
        assert_eq!(client_frame(&q[..4]), Ok(None));
        assert_eq!(client_frame(&q[..q.len() - 1]), Ok(None));
        assert_eq!(client_frame(&q), Ok(Some((b'Q', q.len()))));
        let err = client_frame(b"Q\0\0\0\x02").unwrap_err();
        assert!(err.to_string().contains("declares length 2"), "{err}");
        let err = client_frame(b"Q\xff\xff\xff\xff").unwrap_err();
        assert!(err.to_string().contains("declares length -1"), "{err}");
        let err = client_frame(b"?\0\0\0\x04").unwrap_err();
        assert_eq!(err.side, "client");
        assert!(err.to_string().contains("unknown message type '?'"), "{err}");
        let err = server_frame(b"Q\0\0\0\x04").unwrap_err();
        assert_eq!(err.side, "server");
    }

    #[test]
    fn startup_packets_are_told_apart() {
        let mut ssl = 8i32.to_be_bytes().to_vec();
        ssl.extend_from_slice(&SSL_REQUEST.to_be_bytes());
        assert_eq!(startup(&ssl), Ok(Some((Startup::Encryption, 8))));
        assert_eq!(startup(&ssl[..7]), Ok(None));
        let mut start = 9i32.to_be_bytes().to_vec();
        start.extend_from_slice(&PROTOCOL_V3.to_be_bytes());
        start.push(0);
        assert_eq!(startup(&start), Ok(Some((Startup::Message, 9))));
        let mut huge = i32::MAX.to_be_bytes().to_vec();
        huge.extend_from_slice(&PROTOCOL_V3.to_be_bytes());
        assert!(startup(&huge).is_err());
    }

    #[test]
    fn strings_without_terminator_are_errors_not_panics() {
        let parse = msg(b'P', b"s1\0SELECT 1");
        let err = parse_message(&parse).unwrap_err();
        assert!(
            err.to_string().contains("query string has no terminating NUL"),
            "{err}"
        );
        let parse = msg(b'P', b"s1\0SELECT 1\0\0\0");
        assert_eq!(parse_message(&parse), Ok(("s1", "SELECT 1")));
        let bind = msg(b'B', b"\0s1\0\0\0\0\0\0\0");
        assert_eq!(bind_names(&bind), Ok(("", "s1")));
        assert!(query_text(&msg(b'Q', b"\xff\0")).is_err());
    }

    #[test]
    fn statements_are_classified_by_their_first_word() {
        for (sql, op) in [
            ("BEGIN", Op::Begin),
            ("start transaction isolation level serializable", Op::Begin),
            ("  -- a comment\n COMMIT", Op::Commit),
            ("/* x */ end", Op::Commit),
            ("ROLLBACK TO SAVEPOINT a", Op::Rollback),
            ("abort", Op::Rollback),
            ("SELECT 1", Op::Query),
            ("with t as (select 1) select * from t", Op::Query),
            ("INSERT INTO t VALUES (1)", Op::Execute),
            ("", Op::Execute),
            ("/* unterminated", Op::Execute),
        ] {
            assert_eq!(classify(sql), op, "{sql}");
        }
    }

    #[test]
    fn an_error_response_reads_back() {
        let mut out = BytesMut::new();
        error_response("FATAL", "57P01", "terminating connection", &mut out);
        assert_eq!(server_frame(&out), Ok(Some((b'E', out.len()))));
        assert_eq!(
            reply(&out),
            Ok(Reply::Error {
                severity: "FATAL".to_owned(),
                code: "57P01".to_owned()
            })
        );
    }

    proptest::proptest! {
        /// Whatever either side sends, the readers answer or refuse.
        #[test]
        fn arbitrary_bytes_never_panic_the_readers(data: Vec<u8>) {
            crate::proxy::fuzz_wire(&data);
        }

        /// The same, on well-framed messages of any type and body.
        #[test]
        fn arbitrary_bodies_never_panic_the_readers(tag: u8, body: Vec<u8>) {
            crate::proxy::fuzz_wire(&msg(tag, &body));
        }
    }

    #[test]
    fn a_raise_statement_quotes_the_message() {
        let sql = raise_sql("40001", "it's $dbfault$ injected");
        assert_eq!(
            sql,
            "DO $dbfault$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = 'it''s  injected'; END $dbfault$"
        );
        assert!(is_sqlstate("40P01"));
        assert!(!is_sqlstate("DBFAULT_INJECTED"));
        assert!(!is_sqlstate("40p01"));
    }
}
