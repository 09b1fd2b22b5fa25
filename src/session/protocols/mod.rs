//! Services in their own words: the opening of each protocol, spoken without credentials.
//!
//! Many servers accept the TCP connection and then refuse the client in their own protocol
//! (PostgreSQL's `no pg_hba.conf entry`, Redis's protected mode, MariaDB's error 1130). Each
//! module here is one protocol, in two halves:
//!
//! - a pure **codec**: the bytes canreach sends, built from typed parameters, and a parser of
//!   what comes back into typed facts (no prose: the words belong to the diagnosis);
//! - an async **conversation** over any `AsyncRead + AsyncWrite + Unpin` stream (plain TCP or
//!   a TLS session), bounded by one deadline (`timeout_at`) and by the size of every read. It
//!   sends nothing that changes state and ends the way the protocol's own client does.
//!
//! | protocol | module | sends | ends with |
//! |---|---|---|---|
//! | PostgreSQL | [`postgres`] | SSLRequest, StartupMessage (user `canreach`) | close after an authentication request (as libpq); Terminate after ReadyForQuery |
//! | Redis, Valkey | [`redis`] | `PING` | close (as `redis-cli`) |
//! | MySQL, MariaDB | [`mysql`] | HandshakeResponse41 as `canreach`, no password | the server closes after ERR; `COM_QUIT` after OK |
//! | MongoDB | [`mongodb`] | OP_MSG `hello` (`isMaster` on an old server), `buildInfo` | close (as the drivers) |
//! | Kafka | [`kafka`] | ApiVersions v0, Metadata (no topics) | close (as the clients) |
//! | AMQP 0-9-1 | [`amqp`] | the protocol header | close without a byte more (the specification's rule) |
//! | SMTP, IMAP, POP3 | [`mail`] | `EHLO` / `CAPABILITY` / `CAPA` | `QUIT` / `LOGOUT` / `QUIT`, or `STARTTLS`/`STLS` handed over |
//! | UDP services | [`udp_payloads`] | one harmless datagram per service | — |
//!
//! Which protocol to speak comes from the URL scheme, `--protocol`, or the port's usual
//! service: [`Selection`].
//!
//! Everything the peer sends is hostile: every read is bounded ([`wire`]), every kept string is
//! cut to a bound, and no parser panics or allocates from a length the peer chose (each has a
//! proptest). Strings are kept raw (lossy UTF-8) in facts: the renderers escape them.

pub(crate) mod amqp;
pub(crate) mod kafka;
pub(crate) mod mail;
pub(crate) mod mongodb;
pub(crate) mod mysql;
pub(crate) mod postgres;
pub(crate) mod redis;
pub(crate) mod udp_payloads;
pub(crate) mod wire;

#[cfg(test)]
mod testing;

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

/// Why a conversation stopped before the service said what it had to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireFailure {
    /// Nothing came back before the deadline.
    NoReply,
    /// The server closed without a byte (at this step).
    Closed,
    /// The server reset the connection.
    Reset,
    /// Part of a message came, then the connection ended or the deadline passed (≤ 1 KiB).
    Truncated { first_bytes: Vec<u8> },
    /// The bytes are not this protocol's (≤ 1 KiB of them).
    NotThisProtocol { first_bytes: Vec<u8> },
    /// The reply is a TLS record: the port expects TLS first.
    ExpectsTls { first_bytes: Vec<u8> },
    /// A message larger than its bound.
    TooLarge,
    /// The request could not be sent, or another I/O error: the OS's errno when there is one.
    Io { errno: Option<i32> },
}

/// Where a conversation failed, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed<Step> {
    pub step: Step,
    pub failure: WireFailure,
}

/// How a conversation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// canreach sent the protocol's goodbye (Terminate, `QUIT`, `LOGOUT`, `COM_QUIT`) and
    /// closed.
    Goodbye,
    /// canreach closed without a goodbye, as the protocol's own client does at that point (a
    /// PostgreSQL client that has no password, `redis-cli`, a Kafka or MongoDB client, an AMQP
    /// client that goes no further than Connection.Start).
    Closed,
    /// The server closed or reset first (after an error, a refusal, or for no reason).
    ByServer,
    /// Stopped at the deadline, mid-conversation; canreach closed.
    Deadline,
    /// The server agreed to TLS (`S`, `220 Ready to start TLS`, `+OK Begin TLS`): the stream is
    /// handed back for the TLS handshake, which the caller makes.
    HandedOver,
}

/// Which protocol a target speaks, and whether TLS comes before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Postgres,
    Redis,
    MySql,
    MongoDb,
    Kafka,
    Amqp,
    Smtp,
    Imap,
    Pop3,
}

/// A protocol to speak and how the connection starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    pub protocol: Protocol,
    /// TLS from the first byte (`rediss://`, `amqps://`, ports 465, 993, 995, 5671): the
    /// caller makes the TLS handshake and runs the conversation inside it.
    pub implicit_tls: bool,
}

impl Selection {
    const fn plain(protocol: Protocol) -> Selection {
        Selection {
            protocol,
            implicit_tls: false,
        }
    }

    const fn tls(protocol: Protocol) -> Selection {
        Selection {
            protocol,
            implicit_tls: true,
        }
    }

    /// From a URL scheme or a `--protocol` name (case-insensitive). `None`: not one of these
    /// protocols (`http`, `https`, `tls`, `tcp` are the session stage's own).
    pub(crate) fn from_name(name: &str) -> Option<Selection> {
        use Protocol::*;
        Some(match name.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" | "pg" => Selection::plain(Postgres),
            "redis" | "valkey" => Selection::plain(Redis),
            "rediss" | "valkeys" => Selection::tls(Redis),
            "mysql" | "mariadb" => Selection::plain(MySql),
            // `mongodb+srv://` names a DNS SRV record, not a host: the caller resolves it
            // (each member is then a `mongodb` target).
            "mongodb" | "mongo" | "mongodb+srv" => Selection::plain(MongoDb),
            "kafka" => Selection::plain(Kafka),
            "amqp" => Selection::plain(Amqp),
            "amqps" => Selection::tls(Amqp),
            "smtp" | "submission" => Selection::plain(Smtp),
            "smtps" | "submissions" => Selection::tls(Smtp),
            "imap" => Selection::plain(Imap),
            "imaps" => Selection::tls(Imap),
            "pop3" | "pop" => Selection::plain(Pop3),
            "pop3s" => Selection::tls(Pop3),
            _ => return None,
        })
    }

    /// The usual service of a port, for a target given as `host port`. Only ports whose usual
    /// service is one of these protocols; others keep the session stage's first-moments watch.
    pub(crate) fn for_port(port: u16) -> Option<Selection> {
        use Protocol::*;
        Some(match port {
            5432 => Selection::plain(Postgres),
            6379 | 26379 => Selection::plain(Redis),
            3306 => Selection::plain(MySql),
            27017..=27019 => Selection::plain(MongoDb),
            9092 => Selection::plain(Kafka),
            5672 => Selection::plain(Amqp),
            5671 => Selection::tls(Amqp),
            25 | 587 => Selection::plain(Smtp),
            465 => Selection::tls(Smtp),
            143 => Selection::plain(Imap),
            993 => Selection::tls(Imap),
            110 => Selection::plain(Pop3),
            995 => Selection::tls(Pop3),
            _ => return None,
        })
    }
}

/// What the caller knows that a conversation may use. Never a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// The user named in the URL (`postgres://alice@db/`); `canreach` otherwise.
    pub user: Option<String>,
    /// The database named in the URL's path (PostgreSQL, MongoDB's `authSource` is not used).
    pub database: Option<String>,
    /// PostgreSQL: ask for TLS first (libpq's default, `sslmode=prefer`).
    pub postgres_ssl: postgres::SslMode,
    /// SMTP: the name given in `EHLO` (the local address as a literal is always valid).
    pub ehlo: mail::EhloName,
    /// SMTP, IMAP, POP3: ask for STARTTLS when the server offers it, and hand the stream back
    /// for the TLS handshake.
    pub starttls: bool,
    /// Redis: listen this long for a line the server sends on its own before `PING`. Zero
    /// sends `PING` at once: protected mode's `-DENIED` and `-ERR max number of clients` are
    /// still the first line read (measured: 50 of 50 on Linux, the line arrives before the
    /// reset that answers `PING`).
    pub redis_listen_first: Duration,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            user: None,
            database: None,
            postgres_ssl: postgres::SslMode::Ask,
            ehlo: mail::EhloName::Domain("canreach.invalid".into()),
            starttls: true,
            redis_listen_first: Duration::ZERO,
        }
    }
}

/// Any protocol's facts.
#[derive(Debug, Clone, PartialEq)]
pub enum ProtocolFacts {
    Postgres(postgres::PgFacts),
    Redis(redis::RedisFacts),
    MySql(mysql::MySqlFacts),
    MongoDb(mongodb::MongoFacts),
    Kafka(kafka::KafkaFacts),
    Amqp(amqp::AmqpFacts),
    Mail(mail::MailFacts),
}

/// Speak `protocol` on `stream` until `deadline`. The stream is plain TCP or, for an implicit
/// TLS [`Selection`], the TLS session the caller made.
pub(crate) async fn converse<S>(
    protocol: Protocol,
    stream: &mut S,
    params: &Params,
    deadline: Instant,
) -> ProtocolFacts
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let user = params.user.clone().unwrap_or_else(|| CLIENT_USER.into());
    match protocol {
        Protocol::Postgres => {
            let startup = postgres::Startup {
                user,
                database: params.database.clone(),
                application_name: Some(CLIENT_USER.into()),
            };
            ProtocolFacts::Postgres(
                postgres::converse(stream, &startup, params.postgres_ssl, deadline).await,
            )
        }
        Protocol::Redis => {
            ProtocolFacts::Redis(redis::converse(stream, params.redis_listen_first, deadline).await)
        }
        Protocol::MySql => ProtocolFacts::MySql(mysql::converse(stream, &user, deadline).await),
        Protocol::MongoDb => ProtocolFacts::MongoDb(mongodb::converse(stream, deadline).await),
        Protocol::Kafka => ProtocolFacts::Kafka(kafka::converse(stream, deadline).await),
        Protocol::Amqp => ProtocolFacts::Amqp(amqp::converse(stream, deadline).await),
        Protocol::Smtp | Protocol::Imap | Protocol::Pop3 => {
            let which = match protocol {
                Protocol::Smtp => mail::Mail::Smtp,
                Protocol::Imap => mail::Mail::Imap,
                _ => mail::Mail::Pop3,
            };
            let req = mail::MailRequest {
                ehlo: params.ehlo.clone(),
                starttls: params.starttls,
            };
            ProtocolFacts::Mail(mail::converse(which, stream, &req, deadline).await)
        }
    }
}

/// How a conversation ended, whatever the protocol.
pub(crate) fn ending(facts: &ProtocolFacts) -> Ending {
    match facts {
        ProtocolFacts::Postgres(f) => f.ended,
        ProtocolFacts::Redis(f) => f.ended,
        ProtocolFacts::MySql(f) => f.ended,
        ProtocolFacts::MongoDb(f) => f.ended,
        ProtocolFacts::Kafka(f) => f.ended,
        ProtocolFacts::Amqp(f) => f.ended,
        ProtocolFacts::Mail(f) => f.ended,
    }
}

/// Why a conversation broke off, whatever the protocol.
pub(crate) fn failure(facts: &ProtocolFacts) -> Option<&WireFailure> {
    match facts {
        ProtocolFacts::Postgres(f) => f.failure.as_ref().map(|f| &f.failure),
        ProtocolFacts::Redis(f) => f.failure.as_ref().map(|f| &f.failure),
        ProtocolFacts::MySql(f) => f.failure.as_ref().map(|f| &f.failure),
        ProtocolFacts::MongoDb(f) => f.failure.as_ref().map(|f| &f.failure),
        ProtocolFacts::Kafka(f) => f.failure.as_ref().map(|f| &f.failure),
        ProtocolFacts::Amqp(f) => f.failure.as_ref().map(|f| &f.failure),
        ProtocolFacts::Mail(f) => f.failure.as_ref().map(|f| &f.failure),
    }
}

/// The user name canreach gives when the URL names none, and its application name.
pub(crate) const CLIENT_USER: &str = "canreach";

/// `raw` as text, at most `max` bytes of it (invalid UTF-8 replaced). Control characters are
/// kept: facts are raw, the renderers escape.
pub(crate) fn text(raw: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&raw[..raw.len().min(max)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_from_schemes_names_and_ports() {
        let s = Selection::from_name("PostgreSQL").unwrap();
        assert_eq!(s, Selection::plain(Protocol::Postgres));
        assert_eq!(
            Selection::from_name("rediss"),
            Some(Selection::tls(Protocol::Redis))
        );
        assert_eq!(
            Selection::from_name("mariadb").map(|s| s.protocol),
            Some(Protocol::MySql)
        );
        assert_eq!(Selection::from_name("https"), None);
        assert_eq!(Selection::from_name("tcp"), None);
        assert_eq!(
            Selection::for_port(993),
            Some(Selection::tls(Protocol::Imap))
        );
        assert_eq!(
            Selection::for_port(27018).map(|s| s.protocol),
            Some(Protocol::MongoDb)
        );
        assert_eq!(Selection::for_port(443), None);
        assert_eq!(Selection::for_port(22), None);
        // Every named protocol's usual port leads back to it (`rediss` has no port of its
        // own: TLS on 6379 is a configuration, not a convention).
        for (name, port) in [
            ("postgres", 5432),
            ("redis", 6379),
            ("mysql", 3306),
            ("mongodb", 27017),
            ("kafka", 9092),
            ("amqp", 5672),
            ("amqps", 5671),
            ("smtp", 25),
            ("smtps", 465),
            ("imap", 143),
            ("imaps", 993),
            ("pop3", 110),
            ("pop3s", 995),
        ] {
            let s = Selection::from_name(name).unwrap();
            assert_eq!(Selection::for_port(port), Some(s), "{name}");
        }
    }

    #[tokio::test]
    async fn converse_speaks_the_protocol_asked_with_the_urls_user() {
        use testing::{Act, fake_server};
        let params = Params {
            user: Some("alice".into()),
            database: Some("orders".into()),
            postgres_ssl: postgres::SslMode::Skip,
            ..Params::default()
        };
        let who = postgres::Startup {
            user: "alice".into(),
            database: Some("orders".into()),
            application_name: Some(CLIENT_USER.into()),
        };
        let (addr, server) = fake_server(vec![
            Act::Read(who.bytes().len()),
            Act::Send(b"R\0\0\0\x08\0\0\0\x03".to_vec()),
        ])
        .await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let facts = converse(Protocol::Postgres, &mut s, &params, deadline).await;
        drop(s);
        let ProtocolFacts::Postgres(pg) = facts else {
            panic!("{facts:?}")
        };
        assert_eq!(
            pg.answer,
            Some(postgres::StartupAnswer::Auth(
                postgres::AuthRequest::CleartextPassword
            ))
        );
        assert_eq!(server.await.unwrap(), who.bytes());

        let (addr, _server) = fake_server(vec![
            Act::Read(redis::PING.len()),
            Act::Send(b"+PONG\r\n".to_vec()),
        ])
        .await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let facts = converse(Protocol::Redis, &mut s, &Params::default(), deadline).await;
        let ProtocolFacts::Redis(r) = facts else {
            panic!("{facts:?}")
        };
        assert_eq!(r.reply.unwrap().kind, redis::ReplyKind::Pong);
    }

    #[test]
    fn text_is_bounded_and_lossy() {
        assert_eq!(text(b"abc", 2), "ab");
        assert_eq!(text(b"a\xffb", 10), "a\u{fffd}b");
        // A cut inside a multi-byte character becomes one replacement character.
        assert_eq!(text("é".as_bytes(), 1), "\u{fffd}");
        assert_eq!(text(b"a\x1b[31m", 10), "a\x1b[31m");
    }
}
