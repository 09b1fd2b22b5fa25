//! Redis and Valkey: the line the server sends on its own, else the answer to `PING`.
//!
//! What canreach sends: `PING\r\n` (inline command; no `AUTH`, no `HELLO`). It changes nothing.
//!
//! What comes back, measured on Redis 7.0 (fixtures in `tests/fixtures/protocols/redis/`):
//!
//! - `-DENIED Redis is running in protected mode …`, written on accept to a client that is not
//!   on loopback when no password is set; then the server closes (without reading);
//! - `-ERR max number of clients reached`, also written on accept;
//! - `+PONG`; `-NOAUTH Authentication required.` (a password is set);
//! - `-LOADING Redis is loading the dataset in memory`;
//! - `-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.`;
//! - `-MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist
//!   to disk. …` (PING is refused like a write).
//!
//! How it ends: canreach closes the connection, as `redis-cli` does (`QUIT` is deprecated since
//! Redis 7.2; clients just close).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::wire::Wire;
use super::{Ending, Failed, WireFailure, text};

/// `PING`, inline.
pub(crate) const PING: &[u8] = b"PING\r\n";
/// The longest line read. Protected mode's `-DENIED` is 1,065 bytes.
pub(crate) const LINE_MAX: usize = 4096;
/// The most of a reply's text kept.
pub(crate) const TEXT_MAX: usize = 2048;
/// The first bytes of RESP2 and RESP3 replies.
const RESP_FIRST: &[u8] = b"+-$*:_,#%~>(=!|";

/// What a reply line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyKind {
    /// `+PONG`.
    Pong,
    /// `-DENIED`: protected mode, no password set, client not on loopback.
    Denied,
    /// `-NOAUTH`: a password (or an ACL user) is needed.
    NoAuth,
    /// `-LOADING`: still loading its data set.
    Loading,
    /// `-ERR max number of clients reached`.
    MaxClients,
    /// `-MASTERDOWN`: a replica that lost its primary and serves no stale data.
    MasterDown,
    /// `-MISCONF`: cannot persist to disk, so it refuses writes (and `PING`).
    Misconf,
    /// `-BUSY`: a script or function is running too long.
    Busy,
    /// Another error: its code (the first word, e.g. `ERR`, `WRONGPASS`).
    Error { code: String },
    /// Another simple string, e.g. `+OK`.
    Status,
    /// RESP, but not a simple string or error (`$`, `*`, `:` …), e.g. a proxy's reply.
    OtherResp { first_byte: u8 },
}

/// A reply line: what it says and its text (after the `+`/`-`, ≤ [`TEXT_MAX`] bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub kind: ReplyKind,
    pub text: String,
}

/// Which step of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisStep {
    /// Listening for a line the server sends on its own.
    Listen,
    Ping,
}

/// What the Redis conversation learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisFacts {
    /// A line the server sent before `PING` was sent (only when listening first).
    pub unsolicited: Option<Reply>,
    /// The first line read after `PING` was sent. `-DENIED` and `-ERR max number of clients`
    /// are written on accept, so when `PING` goes out at once they are this line.
    pub reply: Option<Reply>,
    pub failure: Option<Failed<RedisStep>>,
    pub ended: Ending,
    pub elapsed: Duration,
}

impl RedisFacts {
    /// The line that decides: the unsolicited one, else the reply.
    pub(crate) fn answer(&self) -> Option<&Reply> {
        self.unsolicited.as_ref().or(self.reply.as_ref())
    }
}

/// Why a line is not a RESP reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotResp;

/// One reply line, without its `\r\n`. Never panics; keeps at most [`TEXT_MAX`] bytes.
pub(crate) fn parse_line(line: &[u8]) -> Result<Reply, NotResp> {
    let Some((&first, rest)) = line.split_first() else {
        return Err(NotResp);
    };
    let body = text(rest, TEXT_MAX);
    let kind = match first {
        b'+' if rest == b"PONG" => ReplyKind::Pong,
        b'+' => ReplyKind::Status,
        b'-' => {
            let code = rest.split(|&b| b == b' ').next().unwrap_or_default();
            match code {
                b"DENIED" => ReplyKind::Denied,
                b"NOAUTH" => ReplyKind::NoAuth,
                b"LOADING" => ReplyKind::Loading,
                b"MASTERDOWN" => ReplyKind::MasterDown,
                b"MISCONF" => ReplyKind::Misconf,
                b"BUSY" => ReplyKind::Busy,
                b"ERR" if rest.starts_with(b"ERR max number of clients reached") => {
                    ReplyKind::MaxClients
                }
                _ => ReplyKind::Error {
                    code: text(code, 64),
                },
            }
        }
        b if RESP_FIRST.contains(&b) && rest.first().is_some_and(|b| b.is_ascii_graphic()) => {
            ReplyKind::OtherResp { first_byte: first }
        }
        _ => return Err(NotResp),
    };
    Ok(Reply { kind, text: body })
}

/// The conversation: listen `listen_first` for a line sent on accept (zero: not at all), else
/// send `PING` and read one line; then close.
pub(crate) async fn converse<S>(
    stream: &mut S,
    listen_first: Duration,
    deadline: Instant,
) -> RedisFacts
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    let mut facts = RedisFacts {
        unsolicited: None,
        reply: None,
        failure: None,
        ended: Ending::Closed,
        elapsed: Duration::ZERO,
    };
    let mut wire = Wire::new(stream, deadline);
    let fail = |wire: &Wire<'_, S>, step, failure: WireFailure| {
        let ended = match failure {
            WireFailure::NoReply => Ending::Deadline,
            _ if wire.peer_ended() => Ending::ByServer,
            _ => Ending::Closed,
        };
        (
            Some(Failed {
                step,
                failure: failure.clone(),
            }),
            ended,
        )
    };

    if !listen_first.is_zero() {
        match wire.wait_for_bytes(start + listen_first).await {
            Ok(false) => {}
            Ok(true) => {
                match read_reply(&mut wire).await {
                    Ok(r) => {
                        facts.unsolicited = Some(r);
                        // The server spoke first: it refuses (it closes after these lines).
                        facts.ended = Ending::ByServer;
                    }
                    Err(f) => (facts.failure, facts.ended) = fail(&wire, RedisStep::Listen, f),
                }
                wire.close().await;
                facts.elapsed = start.elapsed();
                return facts;
            }
            Err(f) => {
                (facts.failure, facts.ended) = fail(&wire, RedisStep::Listen, f);
                wire.close().await;
                facts.elapsed = start.elapsed();
                return facts;
            }
        }
    }

    // A send error (the server already closed) is not the end: its line may be waiting.
    let sent = wire.send(PING).await;
    match read_reply(&mut wire).await {
        Ok(r) => {
            facts.ended = if matches!(r.kind, ReplyKind::Denied | ReplyKind::MaxClients) {
                Ending::ByServer
            } else {
                Ending::Closed
            };
            facts.reply = Some(r);
        }
        Err(f) => {
            let f = match (sent, f) {
                (Err(e), WireFailure::Closed | WireFailure::Reset) => e,
                (_, f) => f,
            };
            (facts.failure, facts.ended) = fail(&wire, RedisStep::Ping, f);
        }
    }
    wire.close().await;
    facts.elapsed = start.elapsed();
    facts
}

async fn read_reply<S>(wire: &mut Wire<'_, S>) -> Result<Reply, WireFailure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Fail fast on a first byte that cannot start RESP (a TLS alert, an SSH banner).
    wire.fill(1).await?;
    if !RESP_FIRST.contains(&wire.buffered()[0]) {
        return Err(wire.not_this_protocol());
    }
    let line = wire.line(LINE_MAX).await?;
    parse_line(&line).map_err(|_| wire.not_this_protocol())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::protocols::testing::{Act, fake_server, fixture, measure_bytes};

    fn line(bytes: &[u8]) -> &[u8] {
        bytes.strip_suffix(b"\r\n").unwrap()
    }

    #[test]
    fn captured_replies() {
        let kind = |b: &[u8]| parse_line(line(b)).unwrap().kind;
        assert_eq!(kind(fixture!("redis/pong.bin")), ReplyKind::Pong);
        assert_eq!(kind(fixture!("redis/noauth.bin")), ReplyKind::NoAuth);
        assert_eq!(
            kind(fixture!("redis/max_clients.bin")),
            ReplyKind::MaxClients
        );
        assert_eq!(kind(fixture!("redis/loading.bin")), ReplyKind::Loading);
        assert_eq!(
            kind(fixture!("redis/masterdown.bin")),
            ReplyKind::MasterDown
        );
        assert_eq!(kind(fixture!("redis/misconf.bin")), ReplyKind::Misconf);
        let denied = parse_line(line(fixture!("redis/denied.bin"))).unwrap();
        assert_eq!(denied.kind, ReplyKind::Denied);
        assert!(
            denied
                .text
                .starts_with("DENIED Redis is running in protected mode")
        );
        assert!(denied.text.contains("'--protected-mode no'"));
        assert_eq!(
            parse_line(line(fixture!("redis/noauth.bin"))).unwrap().text,
            "NOAUTH Authentication required."
        );
    }

    #[test]
    fn other_lines() {
        assert_eq!(
            parse_line(b"-WRONGPASS invalid username-password pair")
                .unwrap()
                .kind,
            ReplyKind::Error {
                code: "WRONGPASS".into()
            }
        );
        assert_eq!(parse_line(b"+OK").unwrap().kind, ReplyKind::Status);
        assert_eq!(
            parse_line(b"$4").unwrap().kind,
            ReplyKind::OtherResp { first_byte: b'$' }
        );
        assert_eq!(parse_line(b"SSH-2.0-OpenSSH_9.2"), Err(NotResp));
        assert_eq!(parse_line(b"HTTP/1.1 400 Bad Request"), Err(NotResp));
        assert_eq!(parse_line(b""), Err(NotResp));
        assert_eq!(parse_line(b"$"), Err(NotResp));
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics_nor_allocates_past_its_bound(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..3 * LINE_MAX)
        ) {
            let used = measure_bytes(|| { let _ = parse_line(&bytes); });
            // The text (3 bytes per replaced byte at worst) and a 64-byte code.
            proptest::prop_assert!(used <= (3 * TEXT_MAX + 3 * 64) as u64, "{used}");
        }
    }

    async fn run(acts: Vec<Act>, listen_first: Duration) -> (RedisFacts, Vec<u8>) {
        let (addr, server) = fake_server(acts).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let facts = converse(
            &mut s,
            listen_first,
            Instant::now() + Duration::from_secs(5),
        )
        .await;
        drop(s);
        (facts, server.await.unwrap())
    }

    #[tokio::test]
    async fn protected_mode_denied_heard_first() {
        let (facts, got) = run(
            vec![Act::Send(fixture!("redis/denied.bin").to_vec()), Act::Close],
            Duration::from_millis(500),
        )
        .await;
        assert_eq!(facts.unsolicited.as_ref().unwrap().kind, ReplyKind::Denied);
        assert_eq!(facts.reply, None);
        assert_eq!(facts.ended, Ending::ByServer);
        assert!(
            got.is_empty(),
            "PING is not sent to a server that spoke first"
        );
    }

    #[tokio::test]
    async fn protected_mode_denied_with_ping_at_once() {
        // The server writes and closes without reading, as Redis does.
        let (facts, _) = run(
            vec![Act::Send(fixture!("redis/denied.bin").to_vec()), Act::Close],
            Duration::ZERO,
        )
        .await;
        assert_eq!(facts.answer().unwrap().kind, ReplyKind::Denied);
        assert_eq!(facts.failure, None);
        assert_eq!(facts.ended, Ending::ByServer);
    }

    #[tokio::test]
    async fn pong_and_noauth() {
        for (fixture, kind) in [
            (&fixture!("redis/pong.bin")[..], ReplyKind::Pong),
            (&fixture!("redis/noauth.bin")[..], ReplyKind::NoAuth),
        ] {
            let (facts, got) = run(
                vec![Act::Read(PING.len()), Act::Send(fixture.to_vec())],
                Duration::from_millis(20),
            )
            .await;
            assert_eq!(facts.unsolicited, None);
            assert_eq!(facts.reply.unwrap().kind, kind);
            assert_eq!(facts.ended, Ending::Closed);
            assert_eq!(got, PING, "PING, then nothing but our close");
        }
    }

    #[tokio::test]
    async fn a_tls_server_and_a_silent_one() {
        let (facts, _) = run(
            vec![
                Act::Read(PING.len()),
                Act::Send(vec![0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]),
                Act::Close,
            ],
            Duration::ZERO,
        )
        .await;
        assert!(
            matches!(
                facts.failure,
                Some(Failed {
                    step: RedisStep::Ping,
                    failure: WireFailure::ExpectsTls { .. }
                })
            ),
            "{facts:?}"
        );

        let (addr, _server) = fake_server(vec![Act::Sleep(Duration::from_secs(3))]).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let facts = converse(
            &mut s,
            Duration::from_millis(20),
            Instant::now() + Duration::from_millis(150),
        )
        .await;
        assert_eq!(facts.ended, Ending::Deadline);
        assert_eq!(facts.failure.unwrap().failure, WireFailure::NoReply);
    }
}
