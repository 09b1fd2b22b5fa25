//! The rules about what a service said in its own protocol, on fixtures: facts in, verdict,
//! findings and summary out.

use std::time::Duration;

use super::diagnose;
use super::finding::FindingId;
use super::report::Report;
use super::{Outcome, Verdict};
use crate::facts::{AddressFacts, Facts};
use crate::probe::{ConnectResult, ProbeFact};
use crate::services::Services;
use crate::session::protocols::postgres::{
    AuthRequest, ErrorFields, PgFacts, SslAnswer, StartupAnswer,
};
use crate::session::protocols::redis::{RedisFacts, Reply, ReplyKind};
use crate::session::protocols::{
    Ending, Failed, Protocol, ProtocolFacts, WireFailure, amqp, mail, mysql,
};
use crate::session::watch::First;
use crate::session::{ServiceFacts, SessionFacts};

const SERVER: &str = "198.18.2.2";

/// `target` (an address of `SERVER`), open, whose service said `first`.
fn report(target: &str, protocol: Protocol, first: ProtocolFacts) -> Report {
    report_with(target, service(protocol, first))
}

fn service(protocol: Protocol, first: ProtocolFacts) -> ServiceFacts {
    ServiceFacts {
        protocol,
        tls_required: false,
        user: None,
        database: None,
        local: Some("198.18.1.2:40000".parse().unwrap()),
        first,
        after_tls: None,
    }
}

fn report_with(target: &str, svc: ServiceFacts) -> Report {
    let target = crate::target::parse(target, None, &Services::parse("")).unwrap();
    let address = format!("{SERVER}:{}", target.port.get()).parse().unwrap();
    let session = SessionFacts {
        service: Some(svc),
        ..SessionFacts::new(address, Duration::ZERO, First::Unwatched)
    };
    let probe = ProbeFact::new(
        address,
        ConnectResult::Connected,
        Duration::from_micros(300),
    );
    let facts = Facts {
        addresses: vec![AddressFacts {
            session: Some(session),
            ..AddressFacts::probed(probe)
        }],
        ..Facts::new(target, Duration::from_secs(5))
    };
    diagnose(facts)
}

fn ids(r: &Report) -> Vec<&'static str> {
    r.findings.iter().map(|f| f.id.as_str()).collect()
}

fn message(r: &Report, id: FindingId) -> String {
    r.findings
        .iter()
        .find(|f| f.id == id)
        .map(|f| f.message.clone())
        .unwrap_or_else(|| panic!("no {id:?} in {:?}", ids(r)))
}

fn steps(r: &Report, id: FindingId) -> String {
    r.findings
        .iter()
        .find(|f| f.id == id)
        .map(|f| {
            f.steps
                .iter()
                .map(|s| s.text.clone())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

fn pg(ssl: Option<SslAnswer>, answer: Option<StartupAnswer>) -> ProtocolFacts {
    ProtocolFacts::Postgres(PgFacts {
        ssl,
        answer,
        notices: vec![],
        failure: None,
        ended: Ending::ByServer,
        elapsed: Duration::from_millis(1),
    })
}

fn pg_error(code: &str, message: &str) -> ProtocolFacts {
    pg(
        Some(SslAnswer::Refused),
        Some(StartupAnswer::Error {
            error: ErrorFields {
                severity: Some("FATAL".into()),
                code: Some(code.into()),
                message: Some(message.into()),
                detail: None,
                hint: None,
            },
            after_auth_ok: false,
        }),
    )
}

fn redis(kind: ReplyKind, text: &str) -> ProtocolFacts {
    let reply = Reply {
        kind,
        text: text.into(),
    };
    let denied = matches!(reply.kind, ReplyKind::Denied);
    ProtocolFacts::Redis(RedisFacts {
        unsolicited: denied.then(|| reply.clone()),
        reply: (!denied).then_some(reply),
        failure: None,
        ended: Ending::Closed,
        elapsed: Duration::from_millis(1),
    })
}

fn mysql_refused(code: u16, message: &str) -> ProtocolFacts {
    ProtocolFacts::MySql(mysql::MySqlFacts {
        first: Some(mysql::First::Refused(mysql::ErrPacket {
            code,
            sqlstate: None,
            message: message.into(),
        })),
        login: None,
        failure: None,
        ended: Ending::ByServer,
        elapsed: Duration::from_millis(1),
    })
}

const NO_HBA: &str = "no pg_hba.conf entry for host \"198.18.1.2\", user \"canreach\", \
                      database \"canreach\", no encryption";

#[test]
fn a_pg_hba_line_that_rejects_is_not_called_a_missing_line() {
    // PostgreSQL's other 28000 about pg_hba.conf: a `reject` line matched (auth.c, uaReject).
    let rejects = "pg_hba.conf rejects connection for host \"198.18.1.2\", user \"canreach\", \
                   database \"canreach\", no encryption";
    let r = report(
        "postgres://198.18.2.2/",
        Protocol::Postgres,
        pg_error("28000", rejects),
    );
    assert_eq!(r.verdict, Verdict::ServiceError);
    assert!(!ids(&r).contains(&"pg_no_hba_entry"), "{:?}", ids(&r));
    let m = message(&r, FindingId::ServiceErrorReply);
    assert!(m.contains("pg_hba.conf rejects connection"), "{m}");
}

#[test]
fn no_pg_hba_entry_quotes_the_host_and_gives_the_line() {
    let r = report(
        "postgres://198.18.2.2/",
        Protocol::Postgres,
        pg_error("28000", NO_HBA),
    );
    assert_eq!(r.verdict, Verdict::ServiceError);
    assert_eq!(ids(&r)[0], "pg_no_hba_entry");
    let m = message(&r, FindingId::PgNoHbaEntry);
    assert!(m.contains("host \"198.18.1.2\""), "{m}");
    assert!(
        !m.contains("NAT"),
        "the server saw this machine's own address: {m}"
    );
    let s = steps(&r, FindingId::PgNoHbaEntry);
    assert!(
        s.contains("`host all all 198.18.1.2/32 scram-sha-256`"),
        "{s}"
    );
    assert!(r.summary.contains("pg_hba.conf"), "{}", r.summary);

    // Seen from another address: a NAT or a proxy in between; the URL's names in the line.
    let nat = NO_HBA.replace("198.18.1.2", "203.0.113.7");
    let mut svc = service(Protocol::Postgres, pg_error("28000", &nat));
    svc.user = Some("app".into());
    svc.database = Some("orders".into());
    let r = report_with("postgres://app@198.18.2.2/orders", svc);
    let m = message(&r, FindingId::PgNoHbaEntry);
    assert!(
        m.contains("203.0.113.7, is not this machine's (198.18.1.2)"),
        "{m}"
    );
    assert!(m.contains("NAT"), "{m}");
    let s = steps(&r, FindingId::PgNoHbaEntry);
    assert!(
        s.contains("`host orders app 203.0.113.7/32 scram-sha-256`"),
        "{s}"
    );
}

#[test]
fn a_password_request_is_open_naming_the_method() {
    let sasl = AuthRequest::Sasl {
        mechanisms: vec!["SCRAM-SHA-256".into()],
    };
    let r = report(
        "198.18.2.2:5432",
        Protocol::Postgres,
        pg(Some(SslAnswer::Refused), Some(StartupAnswer::Auth(sasl))),
    );
    assert_eq!(r.verdict, Verdict::Open);
    let m = message(&r, FindingId::ServiceAnswered);
    assert!(
        m.contains("PostgreSQL answers; it asks for a password (SCRAM-SHA-256)"),
        "{m}"
    );

    let r = report(
        "redis://198.18.2.2/",
        Protocol::Redis,
        redis(ReplyKind::NoAuth, "NOAUTH Authentication required."),
    );
    assert_eq!(r.verdict, Verdict::Open);
    assert!(
        message(&r, FindingId::ServiceAnswered)
            .contains("Redis answers; it asks for a password (AUTH)")
    );

    // MySQL/MariaDB: a greeting, then 1045 to a login without a password.
    let greeting = mysql::Greeting {
        protocol: 10,
        server_version: "5.5.5-10.11.19-MariaDB-0+deb12u1".into(),
        connection_id: 7,
        capabilities: 0,
        mariadb_capabilities: None,
        auth_plugin: Some("mysql_native_password".into()),
    };
    let denied = mysql::ErrPacket {
        code: 1045,
        sqlstate: Some("28000".into()),
        message: "Access denied for user 'canreach'@'198.18.1.2' (using password: NO)".into(),
    };
    let f = ProtocolFacts::MySql(mysql::MySqlFacts {
        first: Some(mysql::First::Greeting(greeting)),
        login: Some(mysql::Login {
            switched_to: vec![],
            outcome: mysql::LoginOutcome::Refused(denied),
        }),
        failure: None,
        ended: Ending::ByServer,
        elapsed: Duration::from_millis(1),
    });
    let r = report("198.18.2.2:3306", Protocol::MySql, f);
    assert_eq!(r.verdict, Verdict::Open);
    let m = message(&r, FindingId::ServiceAnswered);
    assert!(
        m.contains("MariaDB 10.11.19-MariaDB-0+deb12u1 answers; it asks for a password (mysql_native_password)"),
        "{m}"
    );
}

#[test]
fn trust_then_canreachs_own_database_missing_is_open() {
    let mut f = pg_error("3D000", "database \"canreach\" does not exist");
    if let ProtocolFacts::Postgres(p) = &mut f
        && let Some(StartupAnswer::Error { after_auth_ok, .. }) = &mut p.answer
    {
        *after_auth_ok = true;
    }
    let r = report("198.18.2.2:5432", Protocol::Postgres, f.clone());
    assert_eq!(r.verdict, Verdict::Open, "{:?}", ids(&r));
    // The URL's own database: missing is the finding.
    let mut svc = service(Protocol::Postgres, f);
    svc.database = Some("orders".into());
    let r = report_with("postgres://198.18.2.2/orders", svc);
    assert_eq!(r.verdict, Verdict::ServiceError);
    let m = message(&r, FindingId::DatabaseMissing);
    assert!(m.contains("no database \"orders\""), "{m}");
}

#[test]
fn starting_and_too_many_clients_are_named_for_every_service() {
    let r = report(
        "198.18.2.2:5432",
        Protocol::Postgres,
        pg_error("57P03", "the database system is starting up"),
    );
    assert_eq!(r.verdict, Verdict::ServiceError);
    assert!(message(&r, FindingId::ServiceStarting).contains("the database system is starting up"));
    let r = report(
        "198.18.2.2:6379",
        Protocol::Redis,
        redis(
            ReplyKind::Loading,
            "LOADING Redis is loading the dataset in memory",
        ),
    );
    assert_eq!(ids(&r), ["service_starting"]);

    let r = report(
        "198.18.2.2:5432",
        Protocol::Postgres,
        pg_error("53300", "sorry, too many clients already"),
    );
    assert_eq!(ids(&r), ["too_many_clients"]);
    // The server's words in quotes, the code outside them.
    assert!(
        message(&r, FindingId::TooManyClients)
            .contains(": \"sorry, too many clients already\" (SQLSTATE 53300)."),
        "{}",
        message(&r, FindingId::TooManyClients)
    );
    let r = report(
        "198.18.2.2:6379",
        Protocol::Redis,
        redis(ReplyKind::MaxClients, "ERR max number of clients reached"),
    );
    assert_eq!(ids(&r), ["too_many_clients"]);
    let r = report(
        "198.18.2.2:3306",
        Protocol::MySql,
        mysql_refused(1040, "Too many connections"),
    );
    assert_eq!(ids(&r), ["too_many_clients"]);
    assert!(
        message(&r, FindingId::TooManyClients).contains(": \"Too many connections\" (error 1040)."),
        "{}",
        message(&r, FindingId::TooManyClients)
    );
    assert!(steps(&r, FindingId::TooManyClients).contains("max_connections"));
}

#[test]
fn redis_protected_mode_gives_the_fixes() {
    let r = report(
        "198.18.2.2:6379",
        Protocol::Redis,
        redis(
            ReplyKind::Denied,
            "DENIED Redis is running in protected mode because protected mode is enabled and no password is set",
        ),
    );
    assert_eq!(r.verdict, Verdict::ServiceError);
    assert_eq!(ids(&r), ["redis_protected_mode"]);
    let s = steps(&r, FindingId::RedisProtectedMode);
    assert!(
        s.contains("requirepass") && s.contains("protected-mode no"),
        "{s}"
    );
    assert!(r.summary.contains("protected mode"), "{}", r.summary);
}

#[test]
fn mysql_host_refusals_are_decoded_never_raw() {
    let r = report(
        "198.18.2.2:3306",
        Protocol::MySql,
        mysql_refused(
            1130,
            "Host '198.18.1.2' is not allowed to connect to this MariaDB server",
        ),
    );
    assert_eq!(r.verdict, Verdict::ServiceError);
    assert_eq!(ids(&r), ["mysql_host_not_allowed"]);
    let m = message(&r, FindingId::MysqlHostNotAllowed);
    assert!(m.contains("\"Host '198.18.1.2' is not allowed"), "{m}");
    assert!(!m.contains("\\x"), "{m}");
    let r = report(
        "198.18.2.2:3306",
        Protocol::MySql,
        mysql_refused(
            1129,
            "Host '198.18.1.2' is blocked because of many connection errors; unblock with 'mariadb-admin flush-hosts'",
        ),
    );
    assert_eq!(ids(&r), ["mysql_host_blocked"]);
    assert!(steps(&r, FindingId::MysqlHostBlocked).contains("mysqladmin flush-hosts"));
}

#[test]
fn tls_refused_when_the_url_requires_it() {
    let sasl = AuthRequest::Sasl {
        mechanisms: vec!["SCRAM-SHA-256".into()],
    };
    let f = pg(Some(SslAnswer::Refused), Some(StartupAnswer::Auth(sasl)));
    let mut svc = service(Protocol::Postgres, f.clone());
    svc.tls_required = true;
    let r = report_with("postgres://198.18.2.2/?sslmode=require", svc);
    assert_eq!(r.verdict, Verdict::ServiceError);
    assert_eq!(ids(&r), ["pg_tls_refused"]);
    // Without the requirement, `N` is how libpq's `prefer` goes on in plain text.
    let r = report("198.18.2.2:5432", Protocol::Postgres, f);
    assert_eq!(r.verdict, Verdict::Open);
}

#[test]
fn other_errors_are_quoted_bounded_and_escaped() {
    let long = format!("custom \u{1b}[31mfailure {}", "x".repeat(500));
    let r = report(
        "198.18.2.2:5432",
        Protocol::Postgres,
        pg_error("XX000", &long),
    );
    assert_eq!(r.verdict, Verdict::ServiceError);
    let m = message(&r, FindingId::ServiceErrorReply);
    assert!(
        m.contains("(SQLSTATE XX000)") && m.contains("custom \\x1b[31mfailure"),
        "{m}"
    );
    assert!(m.len() < 400 && !m.contains('\u{1b}'), "{m}");
    let r = report(
        "198.18.2.2:6379",
        Protocol::Redis,
        redis(
            ReplyKind::MasterDown,
            "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
        ),
    );
    assert!(message(&r, FindingId::ServiceErrorReply).contains("lost its primary"));
    let close = ProtocolFacts::Amqp(amqp::AmqpFacts {
        answer: Some(amqp::Answer::Close {
            code: 530,
            text: "NOT_ALLOWED - access to vhost refused".into(),
        }),
        failure: None,
        ended: Ending::ByServer,
        elapsed: Duration::from_millis(1),
    });
    let r = report("198.18.2.2:5672", Protocol::Amqp, close);
    assert!(message(&r, FindingId::ServiceErrorReply).contains("(Connection.Close 530)"));
    let g = ProtocolFacts::Mail(mail::MailFacts {
        protocol: mail::Mail::Smtp,
        greeting: Some(mail::Greeting {
            ready: mail::Ready::Refused,
            code: Some(421),
            lines: vec!["mx.example Service not available".into()],
        }),
        capabilities_known: false,
        capabilities: vec![],
        starttls_offered: false,
        ehlo_greeting: None,
        starttls: None,
        failure: None,
        ended: Ending::ByServer,
        elapsed: Duration::from_millis(1),
    });
    let r = report("198.18.2.2:25", Protocol::Smtp, g);
    assert_eq!(r.verdict, Verdict::ServiceError);
    assert!(
        message(&r, FindingId::ServiceErrorReply)
            .contains("\"421 mx.example Service not available\"")
    );
}

#[test]
fn a_conversation_that_breaks_off_is_a_service_error() {
    let f = ProtocolFacts::Redis(RedisFacts {
        unsolicited: None,
        reply: None,
        failure: Some(Failed {
            step: crate::session::protocols::redis::RedisStep::Ping,
            failure: WireFailure::NotThisProtocol {
                first_bytes: b"SSH-2.0-OpenSSH_9.2\r\n".to_vec(),
            },
        }),
        ended: Ending::Closed,
        elapsed: Duration::from_millis(1),
    });
    let r = report("198.18.2.2:6379", Protocol::Redis, f);
    assert_eq!(r.facts.addresses[0].result.outcome, Outcome::ServiceError);
    let m = message(&r, FindingId::ServiceNotAnswering);
    assert!(
        m.contains("what answers is not Redis: it sent \"SSH-2.0-OpenSSH_9.2\""),
        "{m}"
    );
}

#[test]
fn an_answer_cut_off_by_the_server_and_one_still_trickling_are_told_apart() {
    let cut = |ended| {
        ProtocolFacts::Redis(RedisFacts {
            unsolicited: None,
            reply: None,
            failure: Some(Failed {
                step: crate::session::protocols::redis::RedisStep::Ping,
                failure: WireFailure::Truncated {
                    first_bytes: b"-E".to_vec(),
                },
            }),
            ended,
            elapsed: Duration::from_millis(1990),
        })
    };
    let r = report("198.18.2.2:6379", Protocol::Redis, cut(Ending::ByServer));
    let m = message(&r, FindingId::ServiceNotAnswering);
    assert!(
        m.contains("the Redis answer stopped halfway (2 bytes: -E)"),
        "{m}"
    );
    // Still coming when the deadline passed: not "stopped".
    let r = report("198.18.2.2:6379", Protocol::Redis, cut(Ending::Closed));
    let m = message(&r, FindingId::ServiceNotAnswering);
    assert!(
        m.contains(
            "the Redis answer was still incomplete when the time ran out (2 bytes in 1.99 s: -E)"
        ),
        "{m}"
    );
}

#[test]
fn a_tls_handshake_that_failed_after_s_leaves_the_words_to_the_tls_findings() {
    let f = ProtocolFacts::Postgres(PgFacts {
        ssl: Some(SslAnswer::Supported),
        answer: None,
        notices: vec![],
        failure: None,
        ended: Ending::HandedOver,
        elapsed: Duration::from_millis(1),
    });
    let r = report("198.18.2.2:5432", Protocol::Postgres, f);
    // No service finding claims the server closed: the TLS stage's facts explain it.
    assert!(
        !ids(&r).iter().any(|i| i.starts_with("service_")),
        "{:?}",
        ids(&r)
    );
}
