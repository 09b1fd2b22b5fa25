//! PostgreSQL: SSLRequest, StartupMessage, the server's first answer.
//!
//! What canreach sends (protocol 3.0, the PostgreSQL documentation's "Message Formats"):
//!
//! 1. `SSLRequest` (`00 00 00 08 04 D2 16 2F`), as libpq's default `sslmode=prefer` does. The
//!    answer is one byte: `S` (the server will speak TLS: the caller makes the TLS handshake
//!    on this stream, then calls [`startup`] inside it) or `N` (plain text, on the same
//!    connection).
//! 2. `StartupMessage`: user `canreach` (or the URL's user), the URL's database if it names
//!    one, `application_name=canreach`. Never a password.
//!
//! The server answers with an authentication request (`R`: which method it wants, or 0 when
//! it let us in without one), or an `ErrorResponse` (`E`: SQLSTATE 28000 `no pg_hba.conf
//! entry`, 57P03 starting up or shutting down, 53300 too many clients, 3D000 no such
//! database …). Nothing canreach sends changes state.
//!
//! How it ends, as libpq ends (measured on PostgreSQL 15): after an authentication request
//! canreach closes the connection without a word — the server takes end-of-file there as a
//! client that gave up, and logs nothing, while a `Terminate` at that point is logged as
//! `FATAL: expected SASL response, got message type 88`. After `ReadyForQuery` (a `trust`
//! entry let us in) it sends `Terminate` (`X`, length 4). After an `ErrorResponse` the server
//! closes.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::wire::Wire;
use super::{Ending, Failed, WireFailure, text};

/// `SSLRequest`: length 8, the code 1234/5679.
pub(crate) const SSL_REQUEST: [u8; 8] = [0x00, 0x00, 0x00, 0x08, 0x04, 0xD2, 0x16, 0x2F];
/// `Terminate`.
pub(crate) const TERMINATE: [u8; 5] = [b'X', 0, 0, 0, 4];
/// Protocol 3.0.
const PROTOCOL_3_0: u32 = 196_608;
/// PostgreSQL's identifiers are at most 63 bytes (`NAMEDATALEN` − 1).
const NAME_MAX: usize = 63;
/// The longest message read: an `ErrorResponse` is a few hundred bytes, the longest field a
/// `detail` or `hint` of a sentence or two.
pub(crate) const MESSAGE_MAX: usize = 8 * 1024;
/// The most of one field (message, detail, hint …) kept.
pub(crate) const FIELD_MAX: usize = 1024;
/// The most SASL mechanisms kept (PostgreSQL 15 offers two at most).
const MECHANISMS_MAX: usize = 8;
/// After `AuthenticationOk`: the most messages read before `ReadyForQuery` (PostgreSQL 15
/// sends 14 `ParameterStatus`, one `BackendKeyData`).
const AFTER_OK_MAX: usize = 64;

/// Ask for TLS first, or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// `SSLRequest` first (libpq's default, `sslmode=prefer`, and what `require` needs).
    Ask,
    /// Straight to `StartupMessage` (`sslmode=disable`).
    Skip,
}

/// Who canreach says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Startup {
    pub user: String,
    /// `None`: the server takes the user's name as the database's.
    pub database: Option<String>,
    /// Shown in `pg_stat_activity` and the server's log.
    pub application_name: Option<String>,
}

impl Startup {
    /// User `canreach`, no database named, application `canreach`. Only the tests need it:
    /// the session builds its `Startup` from the URL's user and database.
    #[cfg(test)]
    pub(crate) fn canreach() -> Startup {
        Startup {
            user: super::CLIENT_USER.into(),
            database: None,
            application_name: Some(super::CLIENT_USER.into()),
        }
    }

    /// The `StartupMessage`. A NUL inside a value would end it early and let a URL inject a
    /// parameter: NULs are dropped, and each value is cut to 63 bytes.
    pub(crate) fn bytes(&self) -> Vec<u8> {
        fn put(body: &mut Vec<u8>, key: &str, value: &str) {
            body.extend_from_slice(key.as_bytes());
            body.push(0);
            let clean: Vec<u8> = value.bytes().filter(|&b| b != 0).take(NAME_MAX).collect();
            body.extend_from_slice(&clean);
            body.push(0);
        }
        let mut body = PROTOCOL_3_0.to_be_bytes().to_vec();
        put(&mut body, "user", &self.user);
        if let Some(db) = &self.database {
            put(&mut body, "database", db);
        }
        if let Some(app) = &self.application_name {
            put(&mut body, "application_name", app);
        }
        body.push(0);
        let mut msg = u32::try_from(body.len() + 4)
            .unwrap_or(u32::MAX)
            .to_be_bytes()
            .to_vec();
        msg.extend_from_slice(&body);
        msg
    }
}

/// The one-byte answer to `SSLRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SslAnswer {
    /// `S`: TLS next.
    Supported,
    /// `N`: no TLS on this server; the startup goes on in plain text.
    Refused,
    /// An `ErrorResponse` instead (a server older than 7.0, or a refusal before TLS).
    Error(ErrorFields),
    /// Any other byte: not PostgreSQL.
    Other(u8),
}

/// The fields of an `ErrorResponse` or `NoticeResponse` the diagnosis needs, each ≤
/// [`FIELD_MAX`] bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorFields {
    /// `V` (never translated), else `S`: `FATAL`, `ERROR`, `PANIC` …
    pub severity: Option<String>,
    /// `C`: SQLSTATE, e.g. `28000`.
    pub code: Option<String>,
    /// `M`: e.g. `no pg_hba.conf entry for host "198.18.1.2", user "canreach", …`.
    pub message: Option<String>,
    /// `D`.
    pub detail: Option<String>,
    /// `H`.
    pub hint: Option<String>,
}

/// What an `R` message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRequest {
    /// 0: let in, no password (a `trust` entry).
    Ok,
    /// 2.
    KerberosV5,
    /// 3: a password in clear text (`password` in pg_hba.conf).
    CleartextPassword,
    /// 5: an MD5 hash (the salt is not kept: it is of no use to anyone).
    Md5Password,
    /// 7.
    Gss,
    /// 9.
    Sspi,
    /// 10: SASL, and the mechanisms offered (`SCRAM-SHA-256`, `SCRAM-SHA-256-PLUS`).
    Sasl { mechanisms: Vec<String> },
    /// Another code (SASL's continue/final codes 11/12 never come first).
    Other(u32),
}

/// One backend message, as far as this conversation cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    Auth(AuthRequest),
    Error(ErrorFields),
    Notice(ErrorFields),
    /// `S`: a run-time parameter (name, value).
    ParameterStatus(String, String),
    BackendKeyData,
    /// `Z`, with the transaction status byte.
    ReadyForQuery(u8),
    /// `v`: the server speaks an older minor version (it sent its newest).
    NegotiateProtocolVersion,
}

/// Why bytes are not a backend message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// The type byte is not one a server sends before ReadyForQuery, or the length is below
    /// 4: not PostgreSQL.
    NotPostgres,
    /// The length is over [`MESSAGE_MAX`].
    TooLarge,
}

/// What the server said once it was introduced to canreach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupAnswer {
    /// It wants credentials: which method.
    Auth(AuthRequest),
    /// It let canreach in without a password and is ready (`trust`): what it said of itself.
    Ready(ServerParams),
    /// It refused: `after_auth_ok` when the refusal came after `AuthenticationOk` (a `trust`
    /// entry let us in, then a missing role or database, or too many clients).
    Error {
        error: ErrorFields,
        after_auth_ok: bool,
    },
}

/// Run-time parameters reported after `AuthenticationOk` that tell about the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerParams {
    /// `server_version`, e.g. `15.18 (Debian 15.18-0+deb12u1)`.
    pub server_version: Option<String>,
    /// `in_hot_standby` (PostgreSQL 14+): a read-only replica.
    pub in_hot_standby: Option<bool>,
    /// `default_transaction_read_only`.
    pub default_read_only: Option<bool>,
}

/// Which step of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgStep {
    SslRequest,
    Startup,
}

/// What the PostgreSQL conversation learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgFacts {
    /// The answer to `SSLRequest`, when it was sent.
    pub ssl: Option<SslAnswer>,
    /// The answer to `StartupMessage`, when it came.
    pub answer: Option<StartupAnswer>,
    /// Notices the server sent before its answer (≤ 4).
    pub notices: Vec<ErrorFields>,
    pub failure: Option<Failed<PgStep>>,
    pub ended: Ending,
    pub elapsed: Duration,
}

/// The answer byte to `SSLRequest`. An `E` needs the message after it: see [`request_ssl`].
pub(crate) fn parse_ssl_answer(byte: u8) -> SslAnswer {
    match byte {
        b'S' => SslAnswer::Supported,
        b'N' => SslAnswer::Refused,
        b => SslAnswer::Other(b),
    }
}

/// One backend message from the start of `buf`: `Ok(None)` when more bytes are needed,
/// else the message and its length. Never panics; allocates only bounded fields.
pub(crate) fn parse_message(buf: &[u8]) -> Result<Option<(Message, usize)>, ParseError> {
    let Some(&kind) = buf.first() else {
        return Ok(None);
    };
    // Only these come before ReadyForQuery; any other first byte (`H` of `HTTP/1.1`, a TLS
    // record's 0x15) is another protocol.
    if !b"RENSKZv".contains(&kind) {
        return Err(ParseError::NotPostgres);
    }
    let Some(len) = buf.get(1..5) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    if len < 4 {
        return Err(ParseError::NotPostgres);
    }
    if len > MESSAGE_MAX {
        return Err(ParseError::TooLarge);
    }
    let Some(body) = buf.get(5..1 + len) else {
        return Ok(None);
    };
    let msg = match kind {
        b'R' => Message::Auth(parse_auth(body)),
        b'E' => Message::Error(parse_fields(body)),
        b'N' => Message::Notice(parse_fields(body)),
        b'S' => {
            let mut parts = body.split(|&b| b == 0);
            let name = text(parts.next().unwrap_or_default(), FIELD_MAX);
            let value = text(parts.next().unwrap_or_default(), FIELD_MAX);
            Message::ParameterStatus(name, value)
        }
        b'K' => Message::BackendKeyData,
        b'Z' => Message::ReadyForQuery(body.first().copied().unwrap_or(0)),
        _ => Message::NegotiateProtocolVersion,
    };
    Ok(Some((msg, 1 + len)))
}

fn parse_auth(body: &[u8]) -> AuthRequest {
    let Some(code) = body.get(..4) else {
        return AuthRequest::Other(u32::MAX);
    };
    match u32::from_be_bytes([code[0], code[1], code[2], code[3]]) {
        0 => AuthRequest::Ok,
        2 => AuthRequest::KerberosV5,
        3 => AuthRequest::CleartextPassword,
        5 => AuthRequest::Md5Password,
        7 => AuthRequest::Gss,
        9 => AuthRequest::Sspi,
        10 => AuthRequest::Sasl {
            mechanisms: body[4..]
                .split(|&b| b == 0)
                .take_while(|m| !m.is_empty())
                .take(MECHANISMS_MAX)
                .map(|m| text(m, FIELD_MAX))
                .collect(),
        },
        other => AuthRequest::Other(other),
    }
}

/// The fields of an `ErrorResponse`/`NoticeResponse` body: a type byte, a NUL-terminated
/// string, …, a final NUL.
pub(crate) fn parse_fields(body: &[u8]) -> ErrorFields {
    let mut f = ErrorFields::default();
    let mut s_severity = None;
    let mut rest = body;
    while let Some((&kind, tail)) = rest.split_first() {
        if kind == 0 {
            break;
        }
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        let value = &tail[..end];
        let keep = || Some(text(value, FIELD_MAX));
        match kind {
            b'V' => f.severity = keep(),
            b'S' => s_severity = keep(),
            b'C' => f.code = keep(),
            b'M' => f.message = keep(),
            b'D' => f.detail = keep(),
            b'H' => f.hint = keep(),
            _ => {}
        }
        rest = tail.get(end + 1..).unwrap_or_default();
    }
    if f.severity.is_none() {
        f.severity = s_severity;
    }
    f
}

/// Send `SSLRequest` and read its one-byte answer (or the `ErrorResponse` an old server sends).
pub(crate) async fn request_ssl<S>(
    stream: &mut S,
    deadline: Instant,
) -> Result<SslAnswer, WireFailure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut wire = Wire::new(stream, deadline);
    wire.send(&SSL_REQUEST).await?;
    wire.fill(1).await?;
    let byte = wire.buffered()[0];
    if byte != b'E' {
        // Exactly one byte: anything more before our next message would be an attack
        // (CVE-2021-23222: bytes injected before TLS), and is not read here.
        wire.consume(1);
        if wire.buffered().is_empty() {
            return Ok(parse_ssl_answer(byte));
        }
        return Err(wire.not_this_protocol());
    }
    match read_message(&mut wire).await? {
        Message::Error(e) => Ok(SslAnswer::Error(e)),
        _ => Err(wire.not_this_protocol()),
    }
}

async fn read_message<S>(wire: &mut Wire<'_, S>) -> Result<Message, WireFailure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match parse_message(wire.buffered()) {
            Ok(Some((msg, len))) => {
                wire.consume(len);
                return Ok(msg);
            }
            Ok(None) => {
                let want = wire.buffered().len() + 1;
                wire.fill(want).await?;
            }
            Err(ParseError::TooLarge) => return Err(WireFailure::TooLarge),
            Err(ParseError::NotPostgres) => return Err(wire.not_this_protocol()),
        }
    }
}

/// What [`startup`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StartupOutcome {
    pub answer: Option<StartupAnswer>,
    pub notices: Vec<ErrorFields>,
    pub failure: Option<WireFailure>,
    pub ended: Ending,
}

/// Send `StartupMessage`, read the answer, and end as libpq does (see the module's notes).
/// Over plain TCP after `N`, or inside the TLS session after `S`.
pub(crate) async fn startup<S>(stream: &mut S, who: &Startup, deadline: Instant) -> StartupOutcome
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut wire = Wire::new(stream, deadline);
    let mut out = StartupOutcome {
        answer: None,
        notices: Vec::new(),
        failure: None,
        ended: Ending::Closed,
    };
    if let Err(f) = wire.send(&who.bytes()).await {
        out.ended = ended_by(&wire, &f);
        out.failure = Some(f);
        wire.close().await;
        return out;
    }
    let mut auth_ok = false;
    let mut params = ServerParams::default();
    let mut after_ok = 0;
    loop {
        let msg = match read_message(&mut wire).await {
            Ok(m) => m,
            Err(f) => {
                out.ended = ended_by(&wire, &f);
                out.failure = Some(f);
                break;
            }
        };
        if auth_ok {
            after_ok += 1;
        }
        match msg {
            Message::Auth(AuthRequest::Ok) => auth_ok = true,
            Message::Auth(other) => {
                // The server waits for a password we do not have: close, as libpq does.
                out.answer = Some(StartupAnswer::Auth(other));
                out.ended = Ending::Closed;
                break;
            }
            Message::Error(error) => {
                out.answer = Some(StartupAnswer::Error {
                    error,
                    after_auth_ok: auth_ok,
                });
                out.ended = Ending::ByServer;
                break;
            }
            Message::Notice(n) if out.notices.len() < 4 => out.notices.push(n),
            Message::ParameterStatus(name, value) => match name.as_str() {
                "server_version" => params.server_version = Some(value),
                "in_hot_standby" => params.in_hot_standby = Some(value == "on"),
                "default_transaction_read_only" => {
                    params.default_read_only = Some(value == "on");
                }
                _ => {}
            },
            Message::ReadyForQuery(_) if auth_ok => {
                out.answer = Some(StartupAnswer::Ready(params.clone()));
                // A session exists: end it properly.
                out.ended = match wire.send(&TERMINATE).await {
                    Ok(()) => Ending::Goodbye,
                    Err(_) => Ending::ByServer,
                };
                break;
            }
            Message::NegotiateProtocolVersion
            | Message::BackendKeyData
            | Message::Notice(_)
            | Message::ReadyForQuery(_) => {}
        }
        if after_ok > AFTER_OK_MAX {
            out.failure = Some(WireFailure::TooLarge);
            break;
        }
    }
    wire.close().await;
    out
}

fn ended_by<S>(wire: &Wire<'_, S>, f: &WireFailure) -> Ending {
    match f {
        WireFailure::NoReply => Ending::Deadline,
        _ if wire.peer_ended() => Ending::ByServer,
        _ => Ending::Closed,
    }
}

/// The whole conversation on a fresh connection: `SSLRequest` (unless `ssl` is
/// [`SslMode::Skip`]), then the startup on the same connection after `N`. After `S` it stops
/// with [`Ending::HandedOver`]: the caller makes the TLS handshake on the same stream, then
/// calls [`startup`] inside the TLS session.
pub(crate) async fn converse<S>(
    stream: &mut S,
    who: &Startup,
    ssl: SslMode,
    deadline: Instant,
) -> PgFacts
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    let mut facts = PgFacts {
        ssl: None,
        answer: None,
        notices: Vec::new(),
        failure: None,
        ended: Ending::Closed,
        elapsed: Duration::ZERO,
    };
    if ssl == SslMode::Ask {
        match request_ssl(stream, deadline).await {
            Ok(SslAnswer::Refused) => facts.ssl = Some(SslAnswer::Refused),
            Ok(SslAnswer::Supported) => {
                facts.ssl = Some(SslAnswer::Supported);
                facts.ended = Ending::HandedOver;
                facts.elapsed = start.elapsed();
                return facts;
            }
            Ok(other) => {
                // An error or a stranger: the server closes (or is not PostgreSQL).
                facts.ended = match other {
                    SslAnswer::Error(_) => Ending::ByServer,
                    _ => Ending::Closed,
                };
                facts.ssl = Some(other);
                Wire::new(stream, deadline).close().await;
                facts.elapsed = start.elapsed();
                return facts;
            }
            Err(failure) => {
                facts.ended = match failure {
                    WireFailure::NoReply => Ending::Deadline,
                    WireFailure::Closed | WireFailure::Reset => Ending::ByServer,
                    _ => Ending::Closed,
                };
                facts.failure = Some(Failed {
                    step: PgStep::SslRequest,
                    failure,
                });
                Wire::new(stream, deadline).close().await;
                facts.elapsed = start.elapsed();
                return facts;
            }
        }
    }
    let out = startup(stream, who, deadline).await;
    facts.answer = out.answer;
    facts.notices = out.notices;
    facts.ended = out.ended;
    facts.failure = out.failure.map(|failure| Failed {
        step: PgStep::Startup,
        failure,
    });
    facts.elapsed = start.elapsed();
    facts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::protocols::testing::{
        Act, fake_server, fixture, fixture_hex, measure_bytes,
    };

    fn parse_all(mut buf: &[u8]) -> Vec<Message> {
        let mut out = Vec::new();
        while !buf.is_empty() {
            let (m, len) = parse_message(buf).unwrap().unwrap();
            out.push(m);
            buf = &buf[len..];
        }
        out
    }

    #[test]
    fn startup_bytes_are_the_captured_request() {
        // The request sent to the real server when the fixtures were captured.
        let who = Startup {
            user: "canreach".into(),
            database: Some("canreach".into()),
            application_name: None,
        };
        assert_eq!(who.bytes(), fixture!("postgres/startup_request.bin"));
        assert_eq!(SSL_REQUEST, *fixture!("postgres/ssl_request.bin"));
    }

    #[test]
    fn startup_values_cannot_inject_a_parameter() {
        let who = Startup {
            user: "a\0database\0postgres".into(),
            database: None,
            application_name: None,
        };
        let b = who.bytes();
        // user, value, and the terminator: three NULs, no more.
        assert_eq!(b[8..].iter().filter(|&&c| c == 0).count(), 3, "{b:?}");
        let long = Startup {
            user: "x".repeat(500),
            database: None,
            application_name: None,
        };
        assert!(long.bytes().len() < 100);
    }

    #[test]
    fn hba_reject_is_28000_with_the_host_the_server_saw() {
        assert_eq!(
            parse_ssl_answer(fixture!("postgres/hba_reject.ssl.bin")[0]),
            SslAnswer::Refused
        );
        let msgs = parse_all(fixture!("postgres/hba_reject.bin"));
        let [Message::Error(e)] = msgs.as_slice() else {
            panic!("{msgs:?}")
        };
        assert_eq!(e.severity.as_deref(), Some("FATAL"));
        assert_eq!(e.code.as_deref(), Some("28000"));
        assert_eq!(
            e.message.as_deref(),
            Some(
                "no pg_hba.conf entry for host \"198.18.0.2\", user \"canreach\", \
                 database \"canreach\", no encryption"
            )
        );
        assert_eq!((e.detail.as_ref(), e.hint.as_ref()), (None, None));
    }

    #[test]
    fn authentication_methods() {
        assert_eq!(
            parse_all(fixture!("postgres/scram.bin")),
            [Message::Auth(AuthRequest::Sasl {
                mechanisms: vec!["SCRAM-SHA-256".into()]
            })]
        );
        assert_eq!(
            parse_all(fixture!("postgres/md5.bin")),
            [Message::Auth(AuthRequest::Md5Password)]
        );
        assert_eq!(
            parse_all(fixture!("postgres/password.bin")),
            [Message::Auth(AuthRequest::CleartextPassword)]
        );
    }

    #[test]
    fn refusals_by_sqlstate() {
        let code = |bytes: &[u8]| -> (String, String) {
            let msgs = parse_all(bytes);
            let e = msgs
                .iter()
                .find_map(|m| match m {
                    Message::Error(e) => Some(e.clone()),
                    _ => None,
                })
                .unwrap();
            (e.code.unwrap(), e.message.unwrap())
        };
        assert_eq!(
            code(fixture!("postgres/too_many.bin")),
            ("53300".into(), "sorry, too many clients already".into())
        );
        assert_eq!(
            code(fixture!("postgres/shutting_down.bin")),
            (
                "57P03".into(),
                "the database system is shutting down".into()
            )
        );
        // With `trust`, the database check comes after AuthenticationOk.
        let nodb = parse_all(fixture!("postgres/no_database.bin"));
        assert_eq!(nodb[0], Message::Auth(AuthRequest::Ok));
        assert_eq!(
            code(fixture!("postgres/no_database.bin")),
            ("3D000".into(), "database \"nosuch\" does not exist".into())
        );
        assert_eq!(
            code(fixture!("postgres/trust_no_role.bin")),
            ("28000".into(), "role \"canreach\" does not exist".into())
        );
    }

    #[test]
    fn trust_reports_the_server_and_is_ready() {
        let msgs = parse_all(fixture!("postgres/trust_ok.bin"));
        assert_eq!(msgs[0], Message::Auth(AuthRequest::Ok));
        assert!(msgs.contains(&Message::ParameterStatus(
            "server_version".into(),
            "15.18 (Debian 15.18-0+deb12u1)".into()
        )));
        assert!(msgs.contains(&Message::BackendKeyData));
        assert_eq!(msgs.last(), Some(&Message::ReadyForQuery(b'I')));
    }

    #[test]
    fn fields_are_bounded_and_odd_bodies_survive() {
        let mut body = b"C28000\0M".to_vec();
        body.extend(std::iter::repeat_n(b'x', 5000));
        let f = parse_fields(&body);
        assert_eq!(f.code.as_deref(), Some("28000"));
        assert_eq!(f.message.unwrap().len(), FIELD_MAX);
        assert_eq!(parse_fields(b""), ErrorFields::default());
        assert_eq!(parse_fields(b"S").severity.as_deref(), Some(""));
        assert_eq!(
            parse_message(b"R\0\0\0\x02"),
            Err(ParseError::NotPostgres),
            "a length below 4"
        );
        assert_eq!(
            parse_message(b"E\x7f\xff\xff\xff"),
            Err(ParseError::TooLarge)
        );
        assert_eq!(parse_message(b"E\0\0"), Ok(None));
        assert_eq!(parse_message(b"HTTP/1.1 400"), Err(ParseError::NotPostgres));
        assert_eq!(parse_message(b"\x16\x03\x01"), Err(ParseError::NotPostgres));
    }

    #[test]
    fn spec_fixture_of_a_hint_and_detail() {
        // An ErrorResponse with every field kept, built from the protocol documentation.
        let msgs = parse_all(&fixture_hex!("postgres/error_all_fields.hex"));
        let [Message::Error(e)] = msgs.as_slice() else {
            panic!("{msgs:?}")
        };
        assert_eq!(e.severity.as_deref(), Some("FATAL"));
        assert_eq!(e.code.as_deref(), Some("57P03"));
        assert_eq!(e.detail.as_deref(), Some("Hot standby mode is disabled."));
        assert_eq!(e.hint.as_deref(), Some("wait"));
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics_nor_allocates_past_its_bound(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..16 * 1024)
        ) {
            let used = measure_bytes(|| {
                let mut buf = bytes.as_slice();
                while let Ok(Some((_, len))) = parse_message(buf) {
                    buf = &buf[len..];
                }
            });
            // One message at a time, its text at most MESSAGE_MAX bytes (3 bytes for one
            // invalid byte at worst once replaced).
            proptest::prop_assert!(used <= (3 * MESSAGE_MAX + 1024) as u64, "{used}");
        }

        #[test]
        fn well_framed_messages_of_any_body_are_bounded(
            kind in proptest::sample::select(b"RENSKZv".to_vec()),
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..MESSAGE_MAX - 4),
        ) {
            let mut msg = vec![kind];
            msg.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_be_bytes());
            msg.extend_from_slice(&body);
            let mut parsed = None;
            let used = measure_bytes(|| parsed = Some(parse_message(&msg)));
            let parsed = parsed.unwrap();
            proptest::prop_assert!(matches!(parsed, Ok(Some((_, n))) if n == msg.len()));
            // Fields are cut to FIELD_MAX: 5 of them, or 8 mechanisms, or a parameter's two.
            proptest::prop_assert!(used <= (8 * 3 * FIELD_MAX + 512) as u64, "{used}");
        }

        #[test]
        fn error_bodies_never_panic(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..4096)
        ) {
            let f = parse_fields(&bytes);
            for v in [f.severity, f.code, f.message, f.detail, f.hint].into_iter().flatten() {
                proptest::prop_assert!(v.len() <= 3 * FIELD_MAX);
            }
        }
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    async fn converse_with(acts: Vec<Act>, ssl: SslMode) -> (PgFacts, Vec<u8>) {
        let (addr, server) = fake_server(acts).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let facts = converse(&mut s, &Startup::canreach(), ssl, soon()).await;
        drop(s);
        (facts, server.await.unwrap())
    }

    #[tokio::test]
    async fn hba_rejection_over_loopback() {
        let startup_len = Startup::canreach().bytes().len();
        let (facts, got) = converse_with(
            vec![
                Act::Read(8),
                Act::Send(b"N".to_vec()),
                Act::Read(startup_len),
                Act::Send(fixture!("postgres/hba_reject.bin").to_vec()),
                Act::Close,
            ],
            SslMode::Ask,
        )
        .await;
        assert_eq!(facts.ssl, Some(SslAnswer::Refused));
        let Some(StartupAnswer::Error {
            error,
            after_auth_ok: false,
        }) = &facts.answer
        else {
            panic!("{facts:?}")
        };
        assert_eq!(error.code.as_deref(), Some("28000"));
        assert_eq!(facts.ended, Ending::ByServer);
        assert_eq!(facts.failure, None);
        // What went out: SSLRequest, then the startup, and nothing else.
        let mut want = SSL_REQUEST.to_vec();
        want.extend(Startup::canreach().bytes());
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn sasl_request_is_answered_by_closing_without_terminate() {
        let startup_len = Startup::canreach().bytes().len();
        let (facts, got) = converse_with(
            vec![
                Act::Read(8),
                Act::Send(b"N".to_vec()),
                Act::Read(startup_len),
                Act::Send(fixture!("postgres/scram.bin").to_vec()),
            ],
            SslMode::Ask,
        )
        .await;
        assert_eq!(
            facts.answer,
            Some(StartupAnswer::Auth(AuthRequest::Sasl {
                mechanisms: vec!["SCRAM-SHA-256".into()]
            }))
        );
        assert_eq!(facts.ended, Ending::Closed);
        assert!(
            !got.ends_with(&TERMINATE),
            "no Terminate during authentication"
        );
        assert_eq!(got.len(), 8 + startup_len);
    }

    #[tokio::test]
    async fn starting_up_57p03() {
        let (facts, _) = converse_with(
            vec![
                Act::Read(Startup::canreach().bytes().len()),
                Act::Send(fixture!("postgres/shutting_down.bin").to_vec()),
                Act::Close,
            ],
            SslMode::Skip,
        )
        .await;
        assert_eq!(facts.ssl, None);
        let Some(StartupAnswer::Error { error, .. }) = facts.answer else {
            panic!()
        };
        assert_eq!(error.code.as_deref(), Some("57P03"));
    }

    #[tokio::test]
    async fn trust_ends_with_terminate() {
        let (facts, got) = converse_with(
            vec![
                Act::Read(Startup::canreach().bytes().len()),
                Act::Send(fixture!("postgres/trust_ok.bin").to_vec()),
                Act::Read(5),
            ],
            SslMode::Skip,
        )
        .await;
        let Some(StartupAnswer::Ready(p)) = facts.answer else {
            panic!("{facts:?}")
        };
        assert_eq!(
            p.server_version.as_deref(),
            Some("15.18 (Debian 15.18-0+deb12u1)")
        );
        assert_eq!(p.in_hot_standby, Some(false));
        assert_eq!(facts.ended, Ending::Goodbye);
        assert!(got.ends_with(&TERMINATE));
    }

    #[tokio::test]
    async fn s_hands_the_stream_over_for_tls() {
        let (facts, got) =
            converse_with(vec![Act::Read(8), Act::Send(b"S".to_vec())], SslMode::Ask).await;
        assert_eq!(facts.ssl, Some(SslAnswer::Supported));
        assert_eq!(facts.ended, Ending::HandedOver);
        assert_eq!(facts.answer, None);
        assert_eq!(got, SSL_REQUEST);
    }

    #[tokio::test]
    async fn a_stranger_and_a_silent_server() {
        let (facts, _) = converse_with(
            vec![
                Act::Read(8),
                Act::Send(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()),
            ],
            SslMode::Ask,
        )
        .await;
        assert!(
            matches!(
                facts.failure,
                Some(Failed {
                    step: PgStep::SslRequest,
                    failure: WireFailure::NotThisProtocol { .. }
                })
            ),
            "{facts:?}"
        );

        let (addr, _server) = fake_server(vec![Act::Sleep(Duration::from_secs(3))]).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let t = Instant::now();
        let facts = converse(
            &mut s,
            &Startup::canreach(),
            SslMode::Ask,
            Instant::now() + Duration::from_millis(150),
        )
        .await;
        assert!(t.elapsed() < Duration::from_secs(2));
        assert_eq!(facts.ended, Ending::Deadline);
        assert_eq!(facts.failure.map(|f| f.failure), Some(WireFailure::NoReply));
    }
}
