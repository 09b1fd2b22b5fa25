//! MySQL and MariaDB: the server's greeting (or its refusal), then a login as `canreach` with
//! no password.
//!
//! The server speaks first: a `HandshakeV10` greeting (version, capabilities, auth plugin), or
//! an ERR packet instead when it refuses this client's address (1130 no account for this
//! host, 1129 host blocked, 1040 too many connections on servers that check before the
//! greeting).
//!
//! Why canreach logs in instead of hanging up after the greeting: a connection dropped in the
//! middle of the handshake counts toward `max_connect_errors`, and past it the server blocks
//! this machine's address (error 1129) until `FLUSH HOSTS`. Measured on MariaDB 10.11 with
//! Debian's defaults (name resolution on) and `max_connect_errors=10`: 12 connections that
//! read the greeting and closed blocked the host; 30 logins as `canreach` with no password,
//! each refused with `1045 Access denied`, did not (an access-denied login never counts). With
//! `skip-name-resolve` neither blocked. blackbox_exporter #505 was blocked on MySQL.
//!
//! What canreach sends: a `HandshakeResponse41` with `CLIENT_PROTOCOL_41 |
//! CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH`, max packet 16 MiB, charset 33, user
//! `canreach`, an empty auth response, `mysql_native_password`. When the server switches
//! plugin (an account with `ed25519` or `caching_sha2_password`), an empty auth response
//! again. The usual answer is `ERR 1045 #28000 Access denied for user 'canreach'@'…'`: the
//! server works and asks for credentials. An OK (an account `canreach` without a password
//! exists) is followed by `COM_QUIT`. After an ERR the server closes.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::wire::Wire;
use super::{Ending, Failed, WireFailure, text};

pub(crate) const CLIENT_PROTOCOL_41: u32 = 0x0000_0200;
pub(crate) const CLIENT_SSL: u32 = 0x0000_0800;
pub(crate) const CLIENT_SECURE_CONNECTION: u32 = 0x0000_8000;
pub(crate) const CLIENT_PLUGIN_AUTH: u32 = 0x0008_0000;
/// Bit 0 is `CLIENT_LONG_PASSWORD` to MySQL; MariaDB 10.2+ clears it (it calls it
/// `CLIENT_MYSQL`) and puts its own capabilities in the greeting's reserved bytes.
const CLIENT_MYSQL: u32 = 1;

/// What canreach asks for: enough to log in with a plugin name, nothing else.
pub(crate) const CAPABILITIES: u32 =
    CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH;
/// utf8_general_ci.
const CHARSET: u8 = 33;
const MAX_PACKET: u32 = 1 << 24;
/// The plugin named in the response (an empty password needs no computation in any).
pub(crate) const PLUGIN: &str = "mysql_native_password";

/// The largest packet read: a greeting is ~100 bytes, an ERR a sentence.
pub(crate) const PACKET_MAX: usize = 16 * 1024;
/// The most of a version, plugin name or message kept.
pub(crate) const TEXT_MAX: usize = 512;
/// Plugin switches followed at most (a server that switches forever is not waited for).
const SWITCHES_MAX: usize = 2;

/// The greeting (`HandshakeV10`; protocol 9 keeps only the version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// 10 today; 9 before MySQL 3.21.
    pub protocol: u8,
    /// `8.0.36`, `5.5.5-10.11.19-MariaDB-0+deb12u1` (MariaDB's replication prefix kept).
    pub server_version: String,
    pub connection_id: u32,
    /// The capability flags (lower and upper halves).
    pub capabilities: u32,
    /// MariaDB's extended capabilities, when the server is MariaDB 10.2+.
    pub mariadb_capabilities: Option<u32>,
    /// The default authentication plugin (`mysql_native_password`, `caching_sha2_password`).
    pub auth_plugin: Option<String>,
}

impl Greeting {
    /// The version without MariaDB's `5.5.5-` prefix (kept for old replication clients).
    pub(crate) fn version(&self) -> &str {
        self.server_version
            .strip_prefix("5.5.5-")
            .unwrap_or(&self.server_version)
    }
}

/// An ERR packet: `0xFF`, the error code, the SQLSTATE when the server sends one (not before
/// the greeting), the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrPacket {
    /// 1130 host not allowed, 1129 host blocked, 1040 too many connections, 1045 access denied.
    pub code: u16,
    pub sqlstate: Option<String>,
    pub message: String,
}

/// The first packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum First {
    Greeting(Greeting),
    Refused(ErrPacket),
}

/// A packet after the login was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuthReply {
    /// OK: logged in (an account `canreach` with no password).
    Ok,
    Err(ErrPacket),
    /// `AuthSwitchRequest`: the account uses another plugin.
    Switch {
        plugin: String,
    },
    /// `AuthMoreData` (e.g. `caching_sha2_password` asks for the full password).
    MoreData,
}

/// How the login ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Logged in without a password.
    Accepted,
    /// Refused: 1045 (the server asks for credentials), 1040, 1129 …
    Refused(ErrPacket),
    /// The server wants more than an empty password can give (closed there).
    MoreAuthData,
}

/// The login: the plugins the server switched to, and the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub switched_to: Vec<String>,
    pub outcome: LoginOutcome,
}

impl Login {
    /// Refused with 1045 (access denied): the server works and wants credentials canreach
    /// does not send. For an access-denied login MariaDB counts no connect error.
    pub(crate) fn asks_for_credentials(&self) -> bool {
        matches!(&self.outcome, LoginOutcome::Refused(e) if e.code == ER_ACCESS_DENIED)
    }
}

/// `ER_ACCESS_DENIED_ERROR`.
pub(crate) const ER_ACCESS_DENIED: u16 = 1045;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MySqlStep {
    Greeting,
    Login,
}

/// What the MySQL conversation learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MySqlFacts {
    /// The greeting, or the ERR packet sent instead.
    pub first: Option<First>,
    pub login: Option<Login>,
    pub failure: Option<Failed<MySqlStep>>,
    pub ended: Ending,
    pub elapsed: Duration,
}

/// Why bytes are not a MySQL packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParseError {
    NotMySql,
    TooLarge,
}

/// One packet: its sequence number, its payload, and the bytes it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Packet<'a> {
    pub seq: u8,
    pub payload: &'a [u8],
    pub used: usize,
}

/// One packet from the start of `buf`. `Ok(None)`: more bytes needed.
pub(crate) fn split_packet(buf: &[u8]) -> Result<Option<Packet<'_>>, ParseError> {
    let Some(h) = buf.get(..4) else {
        return Ok(None);
    };
    let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
    if len == 0 {
        return Err(ParseError::NotMySql);
    }
    if len > PACKET_MAX {
        return Err(ParseError::TooLarge);
    }
    match buf.get(4..4 + len) {
        Some(payload) => Ok(Some(Packet {
            seq: h[3],
            payload,
            used: 4 + len,
        })),
        None => Ok(None),
    }
}

/// The first packet's payload: a greeting or an ERR.
pub(crate) fn parse_first(payload: &[u8]) -> Result<First, ParseError> {
    match payload.first() {
        Some(0xFF) => parse_err(payload).map(First::Refused),
        Some(9 | 10) => parse_greeting(payload).map(First::Greeting),
        _ => Err(ParseError::NotMySql),
    }
}

fn cstr(buf: &[u8]) -> (&[u8], &[u8]) {
    match buf.iter().position(|&b| b == 0) {
        Some(i) => (&buf[..i], &buf[i + 1..]),
        None => (buf, &[]),
    }
}

fn parse_greeting(p: &[u8]) -> Result<Greeting, ParseError> {
    let protocol = p[0];
    let (version, rest) = cstr(&p[1..]);
    if version.is_empty() || !version.iter().all(|b| b.is_ascii_graphic()) {
        return Err(ParseError::NotMySql);
    }
    let mut g = Greeting {
        protocol,
        server_version: text(version, TEXT_MAX),
        connection_id: 0,
        capabilities: 0,
        mariadb_capabilities: None,
        auth_plugin: None,
    };
    if protocol != 10 {
        return Ok(g);
    }
    // connection id (4), auth data part 1 (8), filler (1), capabilities low (2).
    let Some(fixed) = rest.get(..15) else {
        return Err(ParseError::NotMySql);
    };
    g.connection_id = u32::from_le_bytes([fixed[0], fixed[1], fixed[2], fixed[3]]);
    g.capabilities = u32::from(u16::from_le_bytes([fixed[13], fixed[14]]));
    let rest = &rest[15..];
    // charset (1), status (2), capabilities high (2), auth data length (1), reserved (10).
    let Some(more) = rest.get(..16) else {
        return Ok(g);
    };
    g.capabilities |= u32::from(u16::from_le_bytes([more[3], more[4]])) << 16;
    if g.capabilities & CLIENT_MYSQL == 0 {
        g.mariadb_capabilities = Some(u32::from_le_bytes([more[12], more[13], more[14], more[15]]));
    }
    let data_len = usize::from(more[5]);
    let mut rest = &rest[16..];
    if g.capabilities & CLIENT_SECURE_CONNECTION != 0 {
        let part2 = data_len.saturating_sub(8).max(13);
        rest = rest.get(part2..).unwrap_or_default();
    }
    if g.capabilities & CLIENT_PLUGIN_AUTH != 0 && !rest.is_empty() {
        g.auth_plugin = Some(text(cstr(rest).0, TEXT_MAX));
    }
    Ok(g)
}

/// An ERR packet's payload (`0xFF` first).
pub(crate) fn parse_err(p: &[u8]) -> Result<ErrPacket, ParseError> {
    let [0xFF, lo, hi, rest @ ..] = p else {
        return Err(ParseError::NotMySql);
    };
    let code = u16::from_le_bytes([*lo, *hi]);
    let (sqlstate, message) = match rest {
        [b'#', state @ ..] if state.len() >= 5 => (Some(text(&state[..5], 5)), &state[5..]),
        _ => (None, rest),
    };
    Ok(ErrPacket {
        code,
        sqlstate,
        message: text(message, TEXT_MAX),
    })
}

/// A packet after the login.
pub(crate) fn parse_auth_reply(p: &[u8]) -> Result<AuthReply, ParseError> {
    match p.first() {
        Some(0x00) => Ok(AuthReply::Ok),
        Some(0xFF) => parse_err(p).map(AuthReply::Err),
        Some(0xFE) => Ok(AuthReply::Switch {
            plugin: text(cstr(&p[1..]).0, TEXT_MAX),
        }),
        Some(0x01) => Ok(AuthReply::MoreData),
        _ => Err(ParseError::NotMySql),
    }
}

fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap_or(0).to_le_bytes();
    let mut out = vec![len[0], len[1], len[2], seq];
    out.extend_from_slice(payload);
    out
}

/// The first 32 bytes of a response: capabilities, max packet, charset, 23 zero bytes.
fn response_head(capabilities: u32) -> Vec<u8> {
    let mut p = capabilities.to_le_bytes().to_vec();
    p.extend_from_slice(&MAX_PACKET.to_le_bytes());
    p.push(CHARSET);
    p.extend_from_slice(&[0; 23]);
    p
}

/// `HandshakeResponse41` as `user` with no password, sequence number `seq` (1 in plain text,
/// 2 after an [`ssl_request`] and the TLS handshake). A NUL in the user is dropped (it would end
/// the name), and the name is cut to 80 bytes (MariaDB's limit).
pub(crate) fn handshake_response(user: &str, seq: u8, tls: bool) -> Vec<u8> {
    let caps = CAPABILITIES | if tls { CLIENT_SSL } else { 0 };
    let mut p = response_head(caps);
    p.extend(user.bytes().filter(|&b| b != 0).take(80));
    p.push(0);
    p.push(0); // auth response: length 0
    p.extend_from_slice(PLUGIN.as_bytes());
    p.push(0);
    packet(seq, &p)
}

/// `COM_QUIT`.
pub(crate) const COM_QUIT: [u8; 5] = [1, 0, 0, 0, 0x01];

/// Read one packet. `first`: this is the server's first packet, which is never larger than a
/// few hundred bytes, so a huge length means another protocol (`SSH-2.0-…` reads as 4.7 MB).
async fn read_packet<S>(wire: &mut Wire<'_, S>, first: bool) -> Result<(u8, Vec<u8>), WireFailure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match split_packet(wire.buffered()) {
            Ok(Some(p)) => {
                let (seq, payload, used) = (p.seq, p.payload.to_vec(), p.used);
                wire.consume(used);
                return Ok((seq, payload));
            }
            Ok(None) => {
                let want = wire.buffered().len() + 1;
                wire.fill(want).await?;
            }
            Err(ParseError::TooLarge) if !first => return Err(WireFailure::TooLarge),
            Err(_) => return Err(wire.not_this_protocol()),
        }
    }
}

fn ending(wire_ended: bool, f: &WireFailure) -> Ending {
    match f {
        WireFailure::NoReply => Ending::Deadline,
        _ if wire_ended => Ending::ByServer,
        _ => Ending::Closed,
    }
}

/// Log in as `user` with no password: send the response with sequence `seq`, follow at most
/// two plugin switches with empty answers, and end (`COM_QUIT` after OK; the server closes
/// after ERR). Over plain TCP after the greeting (`seq` 1), or in the TLS session (`seq` 2).
pub(crate) async fn login<S>(
    stream: &mut S,
    user: &str,
    seq: u8,
    tls: bool,
    deadline: Instant,
) -> (Option<Login>, Option<WireFailure>, Ending)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut wire = Wire::new(stream, deadline);
    let mut switched_to = Vec::new();
    if let Err(f) = wire.send(&handshake_response(user, seq, tls)).await {
        let e = ending(wire.peer_ended(), &f);
        wire.close().await;
        return (None, Some(f), e);
    }
    let result = loop {
        let (seq, payload) = match read_packet(&mut wire, false).await {
            Ok(p) => p,
            Err(f) => break (None, Some(f.clone()), ending(wire.peer_ended(), &f)),
        };
        let reply = match parse_auth_reply(&payload) {
            Ok(r) => r,
            Err(_) => {
                let f = wire.not_this_protocol();
                break (None, Some(f), Ending::Closed);
            }
        };
        let login = |outcome| Login {
            switched_to: switched_to.clone(),
            outcome,
        };
        match reply {
            AuthReply::Ok => {
                let e = match wire.send(&COM_QUIT).await {
                    Ok(()) => Ending::Goodbye,
                    Err(_) => Ending::ByServer,
                };
                break (Some(login(LoginOutcome::Accepted)), None, e);
            }
            AuthReply::Err(err) => {
                break (
                    Some(login(LoginOutcome::Refused(err))),
                    None,
                    Ending::ByServer,
                );
            }
            AuthReply::MoreData => {
                break (
                    Some(login(LoginOutcome::MoreAuthData)),
                    None,
                    Ending::Closed,
                );
            }
            AuthReply::Switch { plugin } => {
                if switched_to.len() >= SWITCHES_MAX {
                    break (
                        Some(login(LoginOutcome::MoreAuthData)),
                        None,
                        Ending::Closed,
                    );
                }
                switched_to.push(plugin);
                // An empty password's answer to any plugin: an empty packet.
                if let Err(f) = wire.send(&packet(seq.wrapping_add(1), &[])).await {
                    break (None, Some(f.clone()), ending(wire.peer_ended(), &f));
                }
            }
        }
    };
    wire.close().await;
    result
}

/// The conversation on a fresh plain connection: the greeting (or the ERR sent instead), then
/// the login as `user` with no password.
pub(crate) async fn converse<S>(stream: &mut S, user: &str, deadline: Instant) -> MySqlFacts
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    let mut facts = MySqlFacts {
        first: None,
        login: None,
        failure: None,
        ended: Ending::Closed,
        elapsed: Duration::ZERO,
    };
    let first = {
        let mut wire = Wire::new(stream, deadline);
        let r = match read_packet(&mut wire, true).await {
            Ok((_, payload)) => parse_first(&payload).map_err(|_| wire.not_this_protocol()),
            Err(f) => Err(f),
        };
        if let Err(f) = &r {
            facts.ended = ending(wire.peer_ended(), f);
            wire.close().await;
        }
        r
    };
    match first {
        Err(failure) => {
            facts.failure = Some(Failed {
                step: MySqlStep::Greeting,
                failure,
            });
        }
        Ok(First::Refused(err)) => {
            facts.first = Some(First::Refused(err));
            facts.ended = Ending::ByServer;
            Wire::new(stream, deadline).close().await;
        }
        Ok(First::Greeting(g)) => {
            let can_login = g.protocol == 10 && g.capabilities & CLIENT_PROTOCOL_41 != 0;
            facts.first = Some(First::Greeting(g));
            if can_login {
                let (login, failure, ended) = login(stream, user, 1, false, deadline).await;
                facts.login = login;
                facts.failure = failure.map(|failure| Failed {
                    step: MySqlStep::Login,
                    failure,
                });
                facts.ended = ended;
            } else {
                // A server from before MySQL 4.1: its greeting is the fact; nothing to say.
                Wire::new(stream, deadline).close().await;
            }
        }
    }
    facts.elapsed = start.elapsed();
    facts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::protocols::testing::{Act, fake_server, fixture, measure_bytes};

    fn payload(bytes: &[u8]) -> (u8, Vec<u8>) {
        let p = split_packet(bytes).unwrap().unwrap();
        assert_eq!(p.used, bytes.len());
        (p.seq, p.payload.to_vec())
    }

    #[test]
    fn the_response_is_the_one_sent_to_the_real_server() {
        assert_eq!(
            handshake_response("canreach", 1, false),
            fixture!("mysql/handshake_response.bin")
        );
        let r = handshake_response("a\0b", 1, false);
        assert_eq!(&r[36..40], b"ab\0\0");
    }

    #[test]
    fn mariadb_greeting() {
        let (seq, p) = payload(fixture!("mysql/greeting.bin"));
        assert_eq!(seq, 0);
        let First::Greeting(g) = parse_first(&p).unwrap() else {
            panic!()
        };
        assert_eq!(g.protocol, 10);
        assert_eq!(g.server_version, "5.5.5-10.11.19-MariaDB-0+deb12u1");
        assert_eq!(g.version(), "10.11.19-MariaDB-0+deb12u1");
        assert_eq!(g.connection_id, 5);
        assert_eq!(g.auth_plugin.as_deref(), Some("mysql_native_password"));
        assert!(g.capabilities & CLIENT_PROTOCOL_41 != 0);
        assert!(g.mariadb_capabilities.is_some());
        assert_eq!(
            g.capabilities & CLIENT_SSL,
            0,
            "the lab server had no certificate"
        );
    }

    #[test]
    fn errors_before_the_greeting_have_no_sqlstate() {
        let (_, p) = payload(fixture!("mysql/err_1130.bin"));
        assert_eq!(
            parse_first(&p).unwrap(),
            First::Refused(ErrPacket {
                code: 1130,
                sqlstate: None,
                message: "Host '198.18.0.2' is not allowed to connect to this MariaDB server"
                    .into()
            })
        );
        let (_, p) = payload(fixture!("mysql/err_1129.bin"));
        let First::Refused(e) = parse_first(&p).unwrap() else {
            panic!()
        };
        assert_eq!(e.code, 1129);
        assert!(
            e.message
                .ends_with("unblock with 'mariadb-admin flush-hosts'")
        );
    }

    #[test]
    fn errors_after_the_login() {
        let err = |b: &[u8]| {
            let (seq, p) = payload(b);
            let AuthReply::Err(e) = parse_auth_reply(&p).unwrap() else {
                panic!()
            };
            (seq, e)
        };
        let (seq, e) = err(fixture!("mysql/err_1045.bin"));
        assert_eq!(seq, 2);
        assert_eq!(e.code, 1045);
        assert_eq!(e.sqlstate.as_deref(), Some("28000"));
        assert_eq!(
            e.message,
            "Access denied for user 'canreach'@'198.18.0.2' (using password: NO)"
        );
        let (_, e) = err(fixture!("mysql/err_1040.bin"));
        assert_eq!((e.code, e.sqlstate.as_deref()), (1040, Some("08004")));
        assert_eq!(e.message, "Too many connections");
        let (_, e) = err(fixture!("mysql/err_1043.bin"));
        assert_eq!((e.code, e.message.as_str()), (1043, "Bad handshake"));
    }

    #[test]
    fn ok_and_switch() {
        let (seq, p) = payload(fixture!("mysql/ok.bin"));
        assert_eq!((seq, parse_auth_reply(&p).unwrap()), (2, AuthReply::Ok));
        let (seq, p) = payload(fixture!("mysql/auth_switch_ed25519.bin"));
        assert_eq!(
            (seq, parse_auth_reply(&p).unwrap()),
            (
                2,
                AuthReply::Switch {
                    plugin: "client_ed25519".into()
                }
            )
        );
    }

    #[test]
    fn strangers() {
        assert_eq!(
            split_packet(b"SSH-2.0-OpenSSH\r\n").map(|_| ()),
            Err(ParseError::TooLarge)
        );
        assert_eq!(parse_first(b"HTTP/1.1"), Err(ParseError::NotMySql));
        assert_eq!(parse_first(b"\x0a"), Err(ParseError::NotMySql));
        assert_eq!(parse_first(b"\x0a8.0\0\x01"), Err(ParseError::NotMySql));
        assert_eq!(split_packet(b"\0\0\0\0"), Err(ParseError::NotMySql));
        assert_eq!(parse_err(b"\xff"), Err(ParseError::NotMySql));
        assert_eq!(
            parse_err(b"\xff\x15\x04#28"),
            Ok(ErrPacket {
                code: 1045,
                sqlstate: None,
                message: "#28".into()
            })
        );
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic_nor_allocate_past_their_bound(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2 * PACKET_MAX)
        ) {
            let used = measure_bytes(|| {
                if let Ok(Some(p)) = split_packet(&bytes) {
                    let _ = parse_first(p.payload);
                    let _ = parse_auth_reply(p.payload);
                }
                let _ = parse_first(&bytes);
                let _ = parse_auth_reply(&bytes);
            });
            // Two strings of TEXT_MAX at most, 3 bytes per replaced byte.
            proptest::prop_assert!(used <= 6 * TEXT_MAX as u64 + 256, "{used}");
        }
    }

    async fn run(acts: Vec<Act>) -> (MySqlFacts, Vec<u8>) {
        let (addr, server) = fake_server(acts).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let facts = converse(&mut s, "canreach", Instant::now() + Duration::from_secs(5)).await;
        drop(s);
        (facts, server.await.unwrap())
    }

    #[tokio::test]
    async fn greeting_then_access_denied_is_a_complete_login() {
        let response = handshake_response("canreach", 1, false);
        let (facts, got) = run(vec![
            Act::Send(fixture!("mysql/greeting.bin").to_vec()),
            Act::Read(response.len()),
            Act::Send(fixture!("mysql/err_1045.bin").to_vec()),
            Act::Close,
        ])
        .await;
        assert!(matches!(facts.first, Some(First::Greeting(_))));
        let login = facts.login.unwrap();
        assert!(login.asks_for_credentials());
        assert!(login.switched_to.is_empty());
        assert_eq!(facts.ended, Ending::ByServer);
        assert_eq!(got, response, "the whole handshake, and nothing more");
    }

    #[tokio::test]
    async fn refused_host_1130_is_read_not_answered() {
        let (facts, got) = run(vec![
            Act::Send(fixture!("mysql/err_1130.bin").to_vec()),
            Act::Close,
        ])
        .await;
        let Some(First::Refused(e)) = facts.first else {
            panic!("{facts:?}")
        };
        assert_eq!(e.code, 1130);
        assert_eq!(facts.login, None);
        assert_eq!(facts.ended, Ending::ByServer);
        assert!(got.is_empty());
    }

    #[tokio::test]
    async fn a_plugin_switch_gets_an_empty_answer_then_quit_after_ok() {
        let response = handshake_response("canreach", 1, false);
        let (facts, got) = run(vec![
            Act::Send(fixture!("mysql/greeting.bin").to_vec()),
            Act::Read(response.len()),
            Act::Send(fixture!("mysql/auth_switch_ed25519.bin").to_vec()),
            Act::Read(4),
            // OK, sequence 4.
            Act::Send(vec![7, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0]),
            Act::Read(COM_QUIT.len()),
        ])
        .await;
        let login = facts.login.unwrap();
        assert_eq!(login.switched_to, ["client_ed25519"]);
        assert_eq!(login.outcome, LoginOutcome::Accepted);
        assert_eq!(facts.ended, Ending::Goodbye);
        let mut want = response;
        want.extend_from_slice(&[0, 0, 0, 3]);
        want.extend_from_slice(&COM_QUIT);
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn not_mysql() {
        let (facts, _) = run(vec![
            Act::Send(b"SSH-2.0-OpenSSH_9.2p1\r\n".to_vec()),
            Act::Close,
        ])
        .await;
        let Some(Failed {
            step: MySqlStep::Greeting,
            failure: WireFailure::NotThisProtocol { first_bytes },
        }) = facts.failure
        else {
            panic!("{facts:?}")
        };
        assert!(first_bytes.starts_with(b"SSH-2.0"));
    }
}
