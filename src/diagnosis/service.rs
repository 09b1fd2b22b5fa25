//! What a service said in its own protocol (PostgreSQL, Redis, MySQL/MariaDB, AMQP, mail …):
//! [`reading`] turns the conversation's facts into one [`Said`], which decides the address's
//! outcome (`judge`) and which finding explains it (the rules below).
//!
//! Every text the server sent is bounded here ([`SERVER_TEXT`]) and escaped where the finding
//! is made (`Finding::new`).

use std::net::IpAddr;

use super::advice::{Machine, Step, StepKind};
use super::context::Ctx;
use super::finding::{Finding, FindingId};
use super::outcome::{AddressResult, Outcome, Verdict};
use super::words::{bounded, first_line, fmt_duration, io_words};
use crate::escape::escape_bytes;
use crate::session::ServiceFacts;
use crate::session::SessionFacts;
use crate::session::protocols::postgres::{AuthRequest, ErrorFields, SslAnswer, StartupAnswer};
use crate::session::protocols::redis::{Reply, ReplyKind};
use crate::session::protocols::{
    Ending, Protocol, ProtocolFacts, WireFailure, amqp, ending, mail, mysql,
};

/// The most characters of a server's own message quoted in a finding.
pub(crate) const SERVER_TEXT: usize = 200;

/// What the service's answer amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Said<'a> {
    /// It answers as itself and would serve a proper client; `auth`: the method it asks
    /// for, when it asks for one.
    Serves {
        auth: Option<String>,
    },
    /// PostgreSQL's `ErrorResponse`.
    PgError(&'a ErrorFields),
    /// PostgreSQL said `N` to SSLRequest while the URL requires TLS.
    PgTlsRefused,
    /// A Redis error line.
    Redis(&'a Reply),
    /// A MySQL/MariaDB ERR packet (instead of the greeting, or to the login; not 1045).
    MySql(&'a mysql::ErrPacket),
    /// AMQP's Connection.Close, or the protocol header of another version.
    AmqpClose {
        code: u16,
        text: &'a str,
    },
    AmqpVersion([u8; 4]),
    /// A mail greeting that refuses (`421`, `-ERR`, `* BYE`).
    Mail(&'a mail::Greeting),
    /// The conversation broke off: nothing, a hang-up, or bytes of another protocol.
    Wire(WireFailure),
    /// The server agreed to TLS (PostgreSQL's `S`) and the handshake did not complete: the
    /// TLS facts and findings say why.
    TlsUnfinished,
}

impl Said<'_> {
    /// The address's outcome: only a service that would serve a proper client is open.
    pub(crate) fn outcome(&self) -> Outcome {
        match self {
            Said::Serves { .. } => Outcome::Open,
            _ => Outcome::ServiceError,
        }
    }
}

/// The protocol's name as people say it.
pub(crate) fn name(svc: &ServiceFacts) -> &'static str {
    match svc.protocol {
        Protocol::Postgres => "PostgreSQL",
        Protocol::Redis => "Redis",
        Protocol::MySql => match svc.last() {
            ProtocolFacts::MySql(f) if mysql_version(f).is_some_and(|v| v.contains("MariaDB")) => {
                "MariaDB"
            }
            _ => "MySQL/MariaDB",
        },
        Protocol::MongoDb => "MongoDB",
        Protocol::Kafka => "Kafka",
        Protocol::Amqp => "AMQP",
        Protocol::Smtp => "SMTP",
        Protocol::Imap => "IMAP",
        Protocol::Pop3 => "POP3",
    }
}

/// The version the server gave of itself, when it gave one (raw; bounded and escaped by
/// whoever shows it).
pub(crate) fn version(svc: &ServiceFacts) -> Option<String> {
    match svc.last() {
        ProtocolFacts::Postgres(f) => match &f.answer {
            Some(StartupAnswer::Ready(p)) => p.server_version.clone(),
            _ => None,
        },
        ProtocolFacts::MySql(f) => mysql_version(f).map(str::to_string),
        ProtocolFacts::Amqp(f) => match &f.answer {
            Some(amqp::Answer::Start(s)) => {
                let v = [s.product.as_deref(), s.version.as_deref()];
                let v: Vec<&str> = v.into_iter().flatten().collect();
                (!v.is_empty()).then(|| v.join(" "))
            }
            _ => None,
        },
        ProtocolFacts::MongoDb(f) => f.build_info.as_ref().and_then(|b| b.version.clone()),
        _ => None,
    }
}

fn mysql_version(f: &mysql::MySqlFacts) -> Option<&str> {
    match &f.first {
        Some(mysql::First::Greeting(g)) => Some(g.version()),
        _ => None,
    }
}

/// What the conversation amounts to.
pub(crate) fn reading(svc: &ServiceFacts) -> Said<'_> {
    match svc.last() {
        ProtocolFacts::Postgres(f) => {
            if let (Some(SslAnswer::Refused), true) = (first_pg_ssl(svc), svc.tls_required) {
                return Said::PgTlsRefused;
            }
            if svc.after_tls.is_none() && f.ended == crate::session::protocols::Ending::HandedOver {
                return Said::TlsUnfinished;
            }
            match (&f.ssl, &f.answer, &f.failure) {
                (Some(SslAnswer::Error(e)), _, _) => Said::PgError(e),
                (Some(SslAnswer::Other(b)), _, _) => Said::Wire(WireFailure::NotThisProtocol {
                    first_bytes: vec![*b],
                }),
                (_, Some(StartupAnswer::Auth(a)), _) => Said::Serves { auth: pg_auth(a) },
                (_, Some(StartupAnswer::Ready(_)), _) => Said::Serves { auth: None },
                (
                    _,
                    Some(StartupAnswer::Error {
                        error,
                        after_auth_ok,
                    }),
                    _,
                ) => {
                    // Let in without a password (`trust`), then canreach's own role or
                    // database is missing: the service works; the application's own names
                    // are not canreach's.
                    let own = match error.code.as_deref() {
                        Some("3D000") => svc.database.is_none(),
                        Some("28000") => svc.user.is_none(),
                        _ => false,
                    };
                    if *after_auth_ok && own {
                        Said::Serves { auth: None }
                    } else {
                        Said::PgError(error)
                    }
                }
                (_, None, Some(w)) => Said::Wire(w.failure.clone()),
                (_, None, None) => Said::Wire(WireFailure::Closed),
            }
        }
        ProtocolFacts::Redis(f) => match (f.answer(), &f.failure) {
            (Some(r), _) => match r.kind {
                ReplyKind::Pong | ReplyKind::Status | ReplyKind::OtherResp { .. } => {
                    Said::Serves { auth: None }
                }
                ReplyKind::NoAuth => Said::Serves {
                    auth: Some("AUTH".into()),
                },
                _ => Said::Redis(r),
            },
            (None, Some(w)) => Said::Wire(w.failure.clone()),
            (None, None) => Said::Wire(WireFailure::Closed),
        },
        ProtocolFacts::MySql(f) => mysql_reading(f),
        ProtocolFacts::Amqp(f) => match (&f.answer, &f.failure) {
            (Some(amqp::Answer::Start(s)), _) => Said::Serves {
                auth: (!s.mechanisms.is_empty()).then(|| s.mechanisms.join(" ")),
            },
            (Some(amqp::Answer::Close { code, text }), _) => Said::AmqpClose { code: *code, text },
            (Some(amqp::Answer::OtherVersion(v)), _) => Said::AmqpVersion(*v),
            (None, Some(w)) => Said::Wire(w.failure.clone()),
            (None, None) => Said::Wire(WireFailure::Closed),
        },
        ProtocolFacts::Mail(f) => match (&f.greeting, &f.failure) {
            (Some(g), _) if g.ready == mail::Ready::Refused => Said::Mail(g),
            (Some(_), _) => Said::Serves { auth: None },
            (None, Some(w)) => Said::Wire(w.failure.clone()),
            (None, None) => Said::Wire(WireFailure::Closed),
        },
        ProtocolFacts::MongoDb(f) => match (&f.hello, &f.failure) {
            (Some(_), _) => Said::Serves { auth: None },
            (None, Some(w)) => Said::Wire(w.failure.clone()),
            (None, None) => Said::Wire(WireFailure::Closed),
        },
        ProtocolFacts::Kafka(f) => match (&f.api_versions, &f.failure) {
            (Some(_), _) => Said::Serves { auth: None },
            (None, Some(w)) => Said::Wire(w.failure.clone()),
            (None, None) => Said::Wire(WireFailure::Closed),
        },
    }
}

fn mysql_reading(f: &mysql::MySqlFacts) -> Said<'_> {
    let plugin = |g: &mysql::Greeting| {
        let p = f
            .login
            .as_ref()
            .and_then(|l| l.switched_to.last().cloned())
            .or_else(|| g.auth_plugin.clone());
        Some(p.unwrap_or_else(|| "password".into()))
    };
    match (&f.first, &f.login, &f.failure) {
        (Some(mysql::First::Refused(e)), _, _) => Said::MySql(e),
        (Some(mysql::First::Greeting(g)), Some(l), _) => match &l.outcome {
            mysql::LoginOutcome::Accepted => Said::Serves { auth: None },
            _ if l.asks_for_credentials() => Said::Serves { auth: plugin(g) },
            mysql::LoginOutcome::MoreAuthData => Said::Serves { auth: plugin(g) },
            mysql::LoginOutcome::Refused(e) => Said::MySql(e),
        },
        (_, _, Some(w)) => Said::Wire(w.failure.clone()),
        _ => Said::Wire(WireFailure::Closed),
    }
}

/// PostgreSQL's authentication request as a method name (pg_hba.conf's, or the SASL
/// mechanisms).
fn pg_auth(a: &AuthRequest) -> Option<String> {
    Some(match a {
        AuthRequest::Ok => return None,
        AuthRequest::CleartextPassword => "password".into(),
        AuthRequest::Md5Password => "md5".into(),
        AuthRequest::Sasl { mechanisms } => mechanisms.join(" "),
        AuthRequest::KerberosV5 => "krb5".into(),
        AuthRequest::Gss => "gss".into(),
        AuthRequest::Sspi => "sspi".into(),
        AuthRequest::Other(n) => format!("method {n}"),
    })
}

/// What an authentication method asks of the client, in words.
fn auth_words(method: &str) -> String {
    match method {
        "gss" => "GSSAPI (Kerberos) credentials".into(),
        "sspi" => "Windows (SSPI) credentials".into(),
        "krb5" => "Kerberos V5 credentials".into(),
        "password" => "a password in clear text".into(),
        m => format!("a password ({})", bounded(m, 64)),
    }
}

/// The authentication method the service asks for, when it answered as itself and asks for
/// one (`SCRAM-SHA-256`, `md5`, `AUTH`, `mysql_native_password`, `PLAIN AMQPLAIN`).
pub(crate) fn auth_method(svc: &ServiceFacts) -> Option<String> {
    match reading(svc) {
        Said::Serves { auth } => auth,
        _ => None,
    }
}

/// The error the service answered with, as it sent it: its code (SQLSTATE, Redis's first
/// word, MySQL's number, AMQP's reply code, the mail reply code) and its message, raw.
pub(crate) fn error_reply(svc: &ServiceFacts) -> Option<(Option<String>, String)> {
    Some(match reading(svc) {
        Said::PgError(e) => (e.code.clone(), e.message.clone().unwrap_or_default()),
        Said::Redis(x) => (x.text.split(' ').next().map(str::to_string), x.text.clone()),
        Said::MySql(e) => (Some(e.code.to_string()), e.message.clone()),
        Said::AmqpClose { code, text } => (Some(code.to_string()), text.to_string()),
        Said::Mail(g) => (
            g.code.map(|c| c.to_string()),
            g.lines.first().cloned().unwrap_or_default(),
        ),
        _ => return None,
    })
}

/// The wire failure that broke the conversation off, when one did.
pub(crate) fn wire_failure(svc: &ServiceFacts) -> Option<WireFailure> {
    match reading(svc) {
        Said::Wire(w) => Some(w),
        _ => None,
    }
}

/// The first address (in client order) whose service said something matching `pred`.
fn said_where<'a>(
    cx: &Ctx<'a>,
    pred: impl Fn(&ServiceFacts, &Said) -> bool,
) -> Option<(&'a AddressResult, &'a SessionFacts, &'a ServiceFacts)> {
    let (r, s) = cx.session_where(|_, s| {
        s.service
            .as_ref()
            .is_some_and(|svc| pred(svc, &reading(svc)))
    })?;
    Some((r, s, s.service.as_ref()?))
}

fn pg_code<'a>(said: &Said<'a>) -> Option<(&'a str, &'a ErrorFields)> {
    match said {
        Said::PgError(e) => Some((e.code.as_deref()?, e)),
        _ => None,
    }
}

/// A server's message, bounded (escaped by `Finding::new`).
fn quoted(text: Option<&str>) -> String {
    bounded(text.unwrap_or(""), SERVER_TEXT)
}

fn on_server(cx: &Ctx, r: &AddressResult) -> Machine {
    cx.server_of(r.address.ip())
}

fn refuses(cx: &Ctx, why: &'static str) -> Option<&'static str> {
    (cx.verdict == Verdict::ServiceError).then_some(why)
}

/// PostgreSQL 28000 `no pg_hba.conf entry`: quote the host the server saw, say when it is not
/// this machine's address, give the line to add.
pub(crate) fn pg_no_hba_entry(cx: &Ctx) -> Option<Finding> {
    let (r, _, svc) = said_where(cx, |_, said| {
        pg_code(said).is_some_and(|(c, e)| {
            c == "28000"
                && e.message
                    .as_deref()
                    .is_some_and(|m| m.contains("no pg_hba.conf entry"))
        })
    })?;
    let Said::PgError(e) = reading(svc) else {
        return None;
    };
    let message = e.message.as_deref().unwrap_or("");
    let seen = quoted_after(message, "host \"");
    let seen_ip = seen.as_deref().and_then(|h| h.parse::<IpAddr>().ok());
    let mut text = format!(
        "{}: PostgreSQL refuses this client: \"{}\" (SQLSTATE 28000). Its pg_hba.conf has no \
         line for the address it saw",
        r.address.ip(),
        quoted(Some(message))
    );
    match (seen_ip, svc.local) {
        (Some(ip), Some(local)) if ip != local.ip() && !cx.is_here(ip) => text.push_str(&format!(
            "; that address, {ip}, is not this machine's ({}): a NAT or a proxy in between \
             changes it, so the line must name the address the server sees",
            local.ip()
        )),
        _ => {}
    }
    text.push('.');
    let who = seen_ip.map_or_else(
        || "ADDRESS/32".to_string(),
        |ip| match ip {
            IpAddr::V4(_) => format!("{ip}/32"),
            IpAddr::V6(_) => format!("{ip}/128"),
        },
    );
    let db = svc.database.as_deref().unwrap_or("all");
    let user = svc.user.as_deref().unwrap_or("all");
    let step = Step::about(
        StepKind::AllowPort,
        format!(
            "On the database server, add to pg_hba.conf (before any line that rejects): `host \
             {db} {user} {who} scram-sha-256`, then reload: `SELECT pg_reload_conf();` or \
             `systemctl reload postgresql`."
        ),
        on_server(cx, r),
    );
    Some(
        Finding::new(FindingId::PgNoHbaEntry, text)
            .about(r.address)
            .explains(refuses(
                cx,
                "PostgreSQL has no pg_hba.conf entry for this client",
            ))
            .steps([step])
            .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// The text between `start` and the next `"` in `message`.
fn quoted_after(message: &str, start: &str) -> Option<String> {
    let rest = &message[message.find(start)? + start.len()..];
    Some(rest[..rest.find('"')?].to_string())
}

/// PostgreSQL 57P03, Redis `-LOADING`: the service cannot serve anyone yet (or any more).
pub(crate) fn service_starting(cx: &Ctx) -> Option<Finding> {
    let (r, _, svc) = said_where(cx, |_, said| {
        pg_code(said).is_some_and(|(c, _)| c == "57P03")
            || matches!(said, Said::Redis(x) if x.kind == ReplyKind::Loading)
    })?;
    let (what, step) = match reading(svc) {
        Said::PgError(e) => (
            format!(
                "PostgreSQL is starting up, shutting down or in recovery: \"{}\" (SQLSTATE \
                 57P03). It serves no one until it is done",
                quoted(e.message.as_deref())
            ),
            "On the database server, see its state and why: `systemctl status postgresql` \
             and its log (a long recovery, a standby without `hot_standby = on`).",
        ),
        Said::Redis(x) => (
            format!(
                "Redis is still loading its data set into memory: \"{}\". It answers \
                 commands once the load ends",
                quoted(Some(&x.text))
            ),
            "Wait for the load to end (`redis-cli INFO persistence`: `loading:0`); a large \
             data set takes minutes.",
        ),
        _ => return None,
    };
    Some(
        Finding::new(
            FindingId::ServiceStarting,
            format!("{}: {what}.", r.address.ip()),
        )
        .about(r.address)
        .explains(refuses(
            cx,
            "the service is starting up and serves no one yet",
        ))
        .steps([Step::about(StepKind::ServiceStatus, step, on_server(cx, r))])
        .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// PostgreSQL 53300, Redis's max clients, MySQL 1040: every connection slot is taken.
pub(crate) fn too_many_clients(cx: &Ctx) -> Option<Finding> {
    let (r, _, svc) = said_where(cx, |_, said| {
        pg_code(said).is_some_and(|(c, _)| c == "53300")
            || matches!(said, Said::Redis(x) if x.kind == ReplyKind::MaxClients)
            || matches!(said, Said::MySql(e) if e.code == 1040)
    })?;
    let (said, setting) = match reading(svc) {
        Said::PgError(e) => (
            format!("\"{}\" (SQLSTATE 53300)", quoted(e.message.as_deref())),
            "`max_connections` in postgresql.conf (a restart), or a pooler such as PgBouncer",
        ),
        Said::Redis(x) => (
            format!("\"{}\"", quoted(Some(&x.text))),
            "`maxclients` (`redis-cli CONFIG SET maxclients N`) and the open-file limit",
        ),
        Said::MySql(e) => (
            format!("\"{}\" (error 1040)", quoted(Some(&e.message))),
            "`max_connections` (`SET GLOBAL max_connections = N`)",
        ),
        _ => return None,
    };
    let name = name(svc);
    Some(
        Finding::new(
            FindingId::TooManyClients,
            format!(
                "{}: {name} has no connection left for anyone: {said}. The network is fine.",
                r.address.ip()
            ),
        )
        .about(r.address)
        .explains(refuses(cx, "every connection slot of the service is taken"))
        .steps([Step::about(
            StepKind::ServiceStatus,
            format!(
                "On the server, see who holds the connections (an application that leaks \
                 them, no pool), then raise the limit if the load is real: {setting}."
            ),
            on_server(cx, r),
        )])
        .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// PostgreSQL 3D000 for the database the URL names.
pub(crate) fn database_missing(cx: &Ctx) -> Option<Finding> {
    let (r, _, svc) = said_where(cx, |svc, said| {
        svc.database.is_some() && pg_code(said).is_some_and(|(c, _)| c == "3D000")
    })?;
    let Said::PgError(e) = reading(svc) else {
        return None;
    };
    let db = svc.database.as_deref().unwrap_or("");
    Some(
        Finding::new(
            FindingId::DatabaseMissing,
            format!(
                "{}: PostgreSQL has no database \"{}\": \"{}\" (SQLSTATE 3D000).",
                r.address.ip(),
                bounded(db, 64),
                quoted(e.message.as_deref())
            ),
        )
        .about(r.address)
        .explains(refuses(
            cx,
            "the database named in the URL does not exist there",
        ))
        .steps([Step::about(
            StepKind::PointClient,
            "Check the database name in the application's URL (`psql -l` on the server lists \
             them), or create it (`createdb NAME`).",
            on_server(cx, r),
        )])
        .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// PostgreSQL said `N` to SSLRequest while the URL requires TLS (`sslmode=require`).
pub(crate) fn pg_tls_refused(cx: &Ctx) -> Option<Finding> {
    let (r, _, _) = said_where(cx, |_, said| matches!(said, Said::PgTlsRefused))?;
    Some(
        Finding::new(
            FindingId::PgTlsRefused,
            format!(
                "{}: PostgreSQL does not speak TLS here (it answered `N` to the request for \
                 TLS), and the URL requires it (sslmode). libpq fails with \"server does not \
                 support SSL, but SSL was required\".",
                r.address.ip()
            ),
        )
        .about(r.address)
        .explains(refuses(
            cx,
            "the server does not offer the TLS the URL requires",
        ))
        .steps([Step::about(
            StepKind::FixCertificate,
            "On the database server, turn TLS on (`ssl = on` with `ssl_cert_file` and \
             `ssl_key_file` in postgresql.conf, then reload), or check that the URL points at \
             the right server.",
            on_server(cx, r),
        )])
        .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// Redis in protected mode: no password and a client from another host.
pub(crate) fn redis_protected_mode(cx: &Ctx) -> Option<Finding> {
    let (r, _, _) = said_where(
        cx,
        |_, said| matches!(said, Said::Redis(x) if x.kind == ReplyKind::Denied),
    )?;
    Some(
        Finding::new(
            FindingId::RedisProtectedMode,
            format!(
                "{}: Redis is in protected mode: it has no password and refuses every client \
                 that is not on its own machine (it answered -DENIED and closed).",
                r.address.ip()
            ),
        )
        .about(r.address)
        .explains(refuses(
            cx,
            "Redis is in protected mode and refuses remote clients",
        ))
        .steps([Step::about(
            StepKind::ListenAddress,
            "On the Redis server, do one of Redis's three fixes: set a password (`requirepass` \
             in redis.conf, or `CONFIG SET requirepass …` from the server itself) and give it \
             to the application; or `protected-mode no` in redis.conf when only trusted \
             networks can reach it; then restart Redis (or start it with \
             `--protected-mode no`).",
            on_server(cx, r),
        )])
        .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// MySQL/MariaDB 1130: no account matches this client's host.
pub(crate) fn mysql_host_not_allowed(cx: &Ctx) -> Option<Finding> {
    let (r, _, svc) = said_where(
        cx,
        |_, said| matches!(said, Said::MySql(e) if e.code == 1130),
    )?;
    let Said::MySql(e) = reading(svc) else {
        return None;
    };
    Some(
        Finding::new(
            FindingId::MysqlHostNotAllowed,
            format!(
                "{}: {} refuses this client's host: \"{}\" (error 1130). No account matches \
                 the address it saw.",
                r.address.ip(),
                name(svc),
                quoted(Some(&e.message))
            ),
        )
        .about(r.address)
        .explains(refuses(
            cx,
            "the database has no account for this client's host",
        ))
        .steps([Step::about(
            StepKind::AllowPort,
            "On the database, create the application's account for this client's address \
             (`CREATE USER 'app'@'ADDRESS' IDENTIFIED BY …` and `GRANT …`), or use an account \
             whose host pattern matches it.",
            on_server(cx, r),
        )])
        .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// MySQL/MariaDB 1129: the host is blocked after too many broken connections.
pub(crate) fn mysql_host_blocked(cx: &Ctx) -> Option<Finding> {
    let (r, _, svc) = said_where(
        cx,
        |_, said| matches!(said, Said::MySql(e) if e.code == 1129),
    )?;
    let Said::MySql(e) = reading(svc) else {
        return None;
    };
    Some(
        Finding::new(
            FindingId::MysqlHostBlocked,
            format!(
                "{}: {} has blocked this client's host after too many broken connections: \
                 \"{}\" (error 1129). It stays blocked until the host cache is flushed.",
                r.address.ip(),
                name(svc),
                quoted(Some(&e.message))
            ),
        )
        .about(r.address)
        .explains(refuses(cx, "the database has blocked this client's host"))
        .steps([Step::about(
            StepKind::RestartServer,
            "On the database server, unblock it: `mysqladmin flush-hosts` (or `FLUSH HOSTS;`, \
             `TRUNCATE performance_schema.host_cache;` on MySQL 8); then find what breaks \
             connections (a health check that drops the handshake) or raise \
             `max_connect_errors`.",
            on_server(cx, r),
        )])
        .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// Any other refusal in the service's words: PostgreSQL's other SQLSTATEs, Redis's other
/// errors (`-MASTERDOWN`, `-MISCONF` …), MySQL's other codes, AMQP's Close, a mail `421`.
pub(crate) fn service_error_reply(cx: &Ctx) -> Option<Finding> {
    let known_pg = ["28000", "57P03", "53300", "3D000"];
    let (r, _, svc) = said_where(cx, |svc, said| match said {
        Said::PgError(e) => {
            let c = e.code.as_deref().unwrap_or("");
            !known_pg.contains(&c)
                || (c == "3D000" && svc.database.is_none())
                // "pg_hba.conf rejects connection …" is a `reject` line that matched, not a missing
                // one: the server's own words say it (`service_error_reply`).
                || (c == "28000"
                    && !e
                        .message
                        .as_deref()
                        .unwrap_or("")
                        .contains("no pg_hba.conf entry"))
        }
        Said::Redis(x) => !matches!(
            x.kind,
            ReplyKind::Denied | ReplyKind::Loading | ReplyKind::MaxClients
        ),
        Said::MySql(e) => ![1130, 1129, 1040].contains(&e.code),
        Said::AmqpClose { .. } | Said::AmqpVersion(_) | Said::Mail(_) => true,
        _ => false,
    })?;
    let said = match reading(svc) {
        Said::PgError(e) => format!(
            "{} \"{}\" (SQLSTATE {})",
            quoted(e.severity.as_deref()),
            quoted(e.message.as_deref()),
            quoted(e.code.as_deref())
        ),
        Said::Redis(x) => format!("\"{}\"{}", quoted(Some(&x.text)), redis_meaning(x)),
        Said::MySql(e) => format!("\"{}\" (error {})", quoted(Some(&e.message)), e.code),
        Said::AmqpClose { code, text } => {
            format!("\"{}\" (Connection.Close {code})", quoted(Some(text)))
        }
        Said::AmqpVersion(v) => format!("only AMQP {}-{}-{}", v[1], v[2], v[3]),
        Said::Mail(g) => format!(
            "\"{}{}\"",
            g.code.map(|c| format!("{c} ")).unwrap_or_default(),
            quoted(g.lines.first().map(String::as_str))
        ),
        _ => return None,
    };
    Some(
        Finding::new(
            FindingId::ServiceErrorReply,
            format!(
                "{}: {} answered with an error: {said}.",
                r.address.ip(),
                name(svc)
            ),
        )
        .about(r.address)
        .explains(refuses(cx, "the service answers with an error"))
        .steps([Step::about(
            StepKind::ReadLogs,
            format!(
                "On the server, read {}'s log around this time: it says why.",
                name(svc)
            ),
            on_server(cx, r),
        )])
        .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

fn redis_meaning(x: &Reply) -> &'static str {
    match x.kind {
        ReplyKind::MasterDown => {
            ": a replica that lost its primary and serves no stale data \
             (`replica-serve-stale-data no`)"
        }
        ReplyKind::Misconf => ": it cannot save its data set to disk (see its log)",
        ReplyKind::Busy => ": a script or module is running and blocks it",
        _ => "",
    }
}

/// The conversation broke off: nothing came back, a hang-up, or another protocol answered.
pub(crate) fn service_not_answering(cx: &Ctx) -> Option<Finding> {
    // A connection this machine's program never took: `program_not_accepting` says why.
    let (r, s) = cx.session_where(|_, s| {
        s.not_accepted.is_none()
            && s.service
                .as_ref()
                .is_some_and(|svc| matches!(reading(svc), Said::Wire(_)))
    })?;
    let svc = s.service.as_ref()?;
    let Said::Wire(w) = reading(svc) else {
        return None;
    };
    let name = name(svc);
    let what = match &w {
        WireFailure::NoReply => format!(
            "{name} did not answer: nothing came back in {}",
            fmt_duration(elapsed(svc.last()))
        ),
        WireFailure::Closed => format!("the server closed the connection without a {name} answer"),
        WireFailure::Reset => format!("the server reset the connection without a {name} answer"),
        // The server closed mid-answer; else it was still sending when the time ran out (a
        // server that trickles).
        WireFailure::Truncated { first_bytes } if ending(svc.last()) == Ending::ByServer => {
            format!(
                "the {name} answer stopped halfway ({} bytes: {})",
                first_bytes.len(),
                escape_bytes(&first_bytes[..first_bytes.len().min(40)])
            )
        }
        WireFailure::Truncated { first_bytes } => format!(
            "the {name} answer was still incomplete when the time ran out ({} bytes in {}: {})",
            first_bytes.len(),
            fmt_duration(elapsed(svc.last())),
            escape_bytes(&first_bytes[..first_bytes.len().min(40)])
        ),
        WireFailure::NotThisProtocol { first_bytes } => format!(
            "what answers is not {name}: it sent \"{}\"",
            first_line(first_bytes)
        ),
        WireFailure::ExpectsTls { .. } => {
            format!("the port answered with TLS: it expects TLS before {name}")
        }
        WireFailure::TooLarge => format!("the {name} answer is larger than any real one"),
        WireFailure::Io { errno } => format!("the {name} exchange failed: {}", io_words(*errno)),
    };
    Some(
        Finding::new(
            FindingId::ServiceNotAnswering,
            format!("{}: {what}.", r.address.ip()),
        )
        .about(r.address)
        .explains(refuses(cx, "it does not answer as the service"))
        .steps([Step::about(
            StepKind::CheckListening,
            format!(
                "On the server, check that {name} is what listens on port {} (`ss -ltnp`), \
                 and read its log.",
                cx.port()
            ),
            on_server(cx, r),
        )])
        .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// How long the conversation took.
pub(crate) fn elapsed(f: &ProtocolFacts) -> std::time::Duration {
    match f {
        ProtocolFacts::Postgres(f) => f.elapsed,
        ProtocolFacts::Redis(f) => f.elapsed,
        ProtocolFacts::MySql(f) => f.elapsed,
        ProtocolFacts::MongoDb(f) => f.elapsed,
        ProtocolFacts::Kafka(f) => f.elapsed,
        ProtocolFacts::Amqp(f) => f.elapsed,
        ProtocolFacts::Mail(f) => f.elapsed,
    }
}

/// The service answered as itself: which, its version, and the method it asks for.
pub(crate) fn service_answered(cx: &Ctx) -> Vec<Finding> {
    cx.facts
        .addresses
        .iter()
        .filter_map(|a| {
            let svc = a.facts.session.as_ref()?.service.as_ref()?;
            let Said::Serves { auth } = reading(svc) else {
                return None;
            };
            let version = version(svc)
                .map(|v| format!(" {}", bounded(&v, 64)))
                .unwrap_or_default();
            let asks = match auth {
                Some(m) => format!("; it asks for {} (canreach sends none)", auth_words(&m)),
                None => String::new(),
            };
            Some(
                Finding::new(
                    FindingId::ServiceAnswered,
                    format!(
                        "{}: {}{version} answers{asks}.",
                        a.result.address.ip(),
                        name(svc)
                    ),
                )
                .about(a.result.address),
            )
        })
        .collect()
}

/// PostgreSQL's answer to SSLRequest on the connection as it came.
fn first_pg_ssl(svc: &ServiceFacts) -> Option<&SslAnswer> {
    match &svc.first {
        ProtocolFacts::Postgres(f) => f.ssl.as_ref(),
        _ => None,
    }
}

/// What the service said, in one line for the report (raw: the renderer escapes it).
pub(crate) fn said_line(svc: &ServiceFacts) -> String {
    let name = name(svc);
    let version = version(svc)
        .map(|v| format!(" {}", bounded(&v, 64)))
        .unwrap_or_default();
    let tls = match first_pg_ssl(svc) {
        Some(SslAnswer::Supported) => " (after TLS)",
        _ => "",
    };
    let what = match reading(svc) {
        Said::Serves { auth: Some(m) } => format!("answers; asks for {}", auth_words(&m)),
        Said::Serves { auth: None } => "answers".to_string(),
        Said::PgTlsRefused => "does not speak TLS (answered N)".to_string(),
        Said::TlsUnfinished => "agreed to TLS; the handshake did not complete".to_string(),
        Said::AmqpVersion(v) => format!("speaks only AMQP {}-{}-{}", v[1], v[2], v[3]),
        Said::Wire(w) => match w {
            WireFailure::NoReply => "no answer".to_string(),
            WireFailure::Closed => "closed without an answer".to_string(),
            WireFailure::Reset => "reset without an answer".to_string(),
            WireFailure::NotThisProtocol { first_bytes } => {
                format!("not this protocol: \"{}\"", first_line(&first_bytes))
            }
            WireFailure::ExpectsTls { .. } => "answered with TLS".to_string(),
            WireFailure::Truncated { .. } => "stopped mid-answer".to_string(),
            WireFailure::TooLarge => "answer too large".to_string(),
            WireFailure::Io { errno } => io_words(errno),
        },
        _ => match error_reply(svc) {
            Some((code, message)) => format!(
                "error {}: {}",
                code.as_deref().map_or("", |c| c),
                bounded(&message, SERVER_TEXT)
            ),
            None => "an error".to_string(),
        },
    };
    format!("{name}{version}{tls}: {what}")
}

/// The address's outcome from its service conversation, when there was one.
pub(crate) fn outcome(s: &SessionFacts) -> Option<Outcome> {
    s.service.as_ref().map(|svc| reading(svc).outcome())
}
