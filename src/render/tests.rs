//! Renderers on fixtures: hand-built facts (no network), diagnosed, then rendered; the output
//! is compared with reviewed snapshots (`insta`), so any change to what people or scripts read
//! shows up in review.

use std::time::Duration;

use crate::diagnosis::diagnose;
use crate::dns::servers::{Port53, ServerView, Udp53};
use crate::dns::{DnsErrorKind, DnsFacts, Lookup, LookupError};
use crate::facts::{AddressFacts, Facts, Silence};
use crate::probe::{ConnectResult, Icmp, ProbeFact};
use crate::services::Services;
use crate::trace::TraceFacts;

pub(super) fn target(args: &str) -> crate::target::Target {
    let (t, p) = args.split_once(' ').unwrap();
    crate::target::parse(t, Some(p), &Services::parse("postgresql 5432/tcp\n")).unwrap()
}

pub(super) fn fact(
    addr: &str,
    result: ConnectResult,
    us: u64,
    icmp: Option<(u8, u8, &str)>,
) -> ProbeFact {
    ProbeFact {
        icmp: icmp.map(|(kind, code, from)| Icmp::v4(kind, code, from)),
        local: Some("198.18.1.2:40000".parse().unwrap()),
        ..ProbeFact::new(addr.parse().unwrap(), result, Duration::from_micros(us))
    }
}

pub(super) fn render(facts: &Facts, json: bool) -> String {
    colored::control::set_override(false);
    let d = diagnose(facts.clone());
    let mut out = Vec::new();
    if json {
        super::json::render(&d, &mut out).unwrap();
    } else {
        super::text::render(&d, &mut out).unwrap();
    }
    String::from_utf8(out).unwrap()
}

fn rejected_on_path() -> Facts {
    Facts {
        addresses: vec![AddressFacts::probed(fact(
            "198.18.2.2:5432",
            ConnectResult::Failed {
                errno: libc::EHOSTUNREACH,
            },
            310,
            Some((3, 13, "198.18.1.1")),
        ))],
        elapsed: Duration::from_micros(420),
        ..Facts::new(target("198.18.2.2 5432"), Duration::from_secs(5))
    }
}

#[test]
fn text_rejected_by_a_router() {
    insta::assert_snapshot!(render(&rejected_on_path(), false));
}

#[test]
fn json_rejected_by_a_router() {
    insta::assert_snapshot!(render(&rejected_on_path(), true));
}

#[test]
fn text_filtered_with_liveness_and_path() {
    let silent = |us| fact("198.18.2.2:5433", ConnectResult::TimedOut, us, None);
    let refused = ConnectResult::Failed {
        errno: libc::ECONNREFUSED,
    };
    let mut hops: Vec<(u8, Option<ProbeFact>)> = (1..=16).map(|t| (t, None)).collect();
    let mut hop1 = fact(
        "198.18.2.2:5433",
        ConnectResult::Failed {
            errno: libc::EHOSTUNREACH,
        },
        300,
        Some((11, 0, "198.18.1.1")),
    );
    hop1.spec.ttl = Some(1);
    hops[0].1 = Some(hop1);
    let facts = Facts {
        addresses: vec![AddressFacts {
            here: false,
            session: None,
            queue: None,
            udp: None,
            probe: silent(228_000),
            silence: Some(Silence {
                liveness: vec![
                    (22, Some(fact("198.18.2.2:22", refused, 200, None))),
                    (443, Some(fact("198.18.2.2:443", refused, 150, None))),
                    (80, None),
                    (65533, Some(fact("198.18.2.2:65533", refused, 100, None))),
                ],
                second_syn: Some(silent(200_000)),
                decided_after: Some(Duration::from_millis(200)),
                retransmit_wait: None,
            }),
        }],
        trace: Some(TraceFacts {
            address: "198.18.2.2:5433".parse().unwrap(),
            hops,
            elapsed: Duration::from_millis(200),
        }),
        elapsed: Duration::from_millis(431),
        ..Facts::new(target("198.18.2.2 5433"), Duration::from_secs(5))
    };
    insta::assert_snapshot!(render(&facts, false));
}

#[test]
fn text_dns_timeout_names_the_silent_server() {
    let failed = |kind, ms| Lookup {
        addresses: vec![],
        elapsed: Duration::from_millis(ms),
        error: Some(LookupError::new(kind)),
    };
    let server = ServerView {
        server: "198.18.2.2:53".parse().unwrap(),
        stub: None,
        lookup: failed(DnsErrorKind::Timeout, 1000),
        records: vec![],
        name_used: None,
        port53: Some(Port53 {
            tcp: fact("198.18.2.2:53", ConnectResult::TimedOut, 100_000, None),
            udp: Udp53::NoAnswer,
        }),
    };
    let facts = Facts {
        dns: DnsFacts {
            system: Some(failed(DnsErrorKind::Timeout, 1050)),
            direct: Some(server.lookup.clone()),
            servers: vec![server],
            resolv: None,
            hosts: vec![],
        },
        elapsed: Duration::from_millis(1108),
        ..Facts::new(target("app.lab 80"), Duration::from_secs(5))
    };
    insta::assert_snapshot!(render(&facts, false));
}

/// The plugin output of checks (`--format nagios`).
fn nagios(checks: &[Facts]) -> String {
    let diags: Vec<_> = checks.iter().cloned().map(diagnose).collect();
    let rows: Vec<_> = diags.iter().collect();
    let mut out = Vec::new();
    super::nagios::render(&rows, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn nagios_rejected_by_a_router() {
    insta::assert_snapshot!(nagios(&[rejected_on_path()]));
}

#[test]
fn nagios_a_dns_timeout_is_critical_with_the_lookup_time() {
    let timed_out = Lookup {
        addresses: vec![],
        elapsed: Duration::from_millis(1050),
        error: Some(LookupError::new(DnsErrorKind::Timeout)),
    };
    let facts = Facts {
        dns: DnsFacts {
            system: Some(timed_out.clone()),
            direct: Some(timed_out),
            ..DnsFacts::default()
        },
        elapsed: Duration::from_millis(1108),
        ..Facts::new(target("app.lab 80"), Duration::from_secs(5))
    };
    let out = nagios(&[facts]);
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with("CANREACH CRITICAL: app.lab does not resolve"),
        "{out}"
    );
    assert!(
        first.ends_with(" | 'time'=1.108s;;;0 'dns'=1.05s;;;0"),
        "{out}"
    );
}

#[test]
fn nagios_several_targets_one_status_line_worst_first_bounded() {
    let open = |port: u16| Facts {
        addresses: vec![AddressFacts::probed(fact(
            &format!("198.18.2.2:{port}"),
            ConnectResult::Connected,
            200,
            None,
        ))],
        elapsed: Duration::from_micros(300),
        ..Facts::new(
            target(&format!("198.18.2.2 {port}")),
            Duration::from_secs(5),
        )
    };
    let out = nagios(&[open(22), rejected_on_path(), open(80)]);
    let mut lines = out.lines();
    assert_eq!(
        lines.next().unwrap(),
        "CANREACH CRITICAL: 3 targets: 198.18.2.2:5432 rejected, 198.18.2.2:22 open, \
         198.18.2.2:80 open | '198.18.2.2:22 time'=0.0003s;;;0 \
         '198.18.2.2:22 connect'=0.0002s;;;0 '198.18.2.2:5432 time'=0.00042s;;;0 \
         '198.18.2.2:5432 connect'=0.00031s;;;0 '198.18.2.2:80 time'=0.0003s;;;0 \
         '198.18.2.2:80 connect'=0.0002s;;;0"
    );
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("[CRITICAL] 198.18.2.2:5432 is rejected")
    );
    assert!(out.contains("\n[OK] 198.18.2.2:22 is open"), "{out}");
    // No `|` past the first line's: a scheduler would read the rest as perfdata.
    assert!(out.lines().skip(1).all(|l| !l.contains('|')), "{out}");

    // 400 failing targets: cut before a scheduler's 8 KiB, saying so; the first line too
    // (it held every target and every target's perfdata: 10 KB for 100 targets).
    let many: Vec<Facts> = (0..400).map(|_| rejected_on_path()).collect();
    let out = nagios(&many);
    assert!(out.len() <= super::nagios::MAX_OUTPUT, "{}", out.len());
    let (first, long) = out.split_once('\n').unwrap();
    assert!(
        first.len() <= super::nagios::MAX_FIRST_LINE,
        "{}",
        first.len()
    );
    assert!(first.starts_with("CANREACH CRITICAL: 400 targets: 198.18.2.2:5432 rejected, "));
    assert!(first.contains(" more | '198.18.2.2:5432 time'="), "{first}");
    assert!(first.ends_with("s;;;0"), "{first}");
    assert!(long.trim_end().ends_with("the whole report)"), "{long}");
}

/// Every fixture's report is consistent by construction: no finding twice, no step twice (the
/// same command on the same machine), only documented ids — the lab checks the same of every
/// real report (`tests/it/common::check_report`).
#[test]
fn fixture_reports_have_no_step_or_finding_twice() {
    use crate::diagnosis::FindingId;
    let fixtures = [rejected_on_path()];
    for f in fixtures {
        let d = diagnose(f.clone());
        let mut seen = std::collections::HashSet::new();
        for x in &d.findings {
            assert!(FindingId::ALL.contains(&x.id));
            assert!(seen.insert((x.id, x.message.clone())), "{:?} twice", x.id);
        }
        let mut steps = std::collections::HashSet::new();
        for s in &d.steps {
            assert!(
                steps.insert((s.command.clone(), format!("{:?}", s.on), s.kind)),
                "step twice: {s:?}"
            );
        }
        let json = render(&f, true);
        assert!(
            !json.contains("Query {") && !json.contains("Some("),
            "{json}"
        );
    }
}

/// Outside text as hostile as it gets: every character class a terminal acts on or that
/// reorders text (C0, DEL, C1, bidi, invisible), around plain words, a Markdown link and a
/// secret-looking word.
fn hostile_text() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::strategy::Strategy;
    proptest::collection::vec(
        proptest::prop_oneof![
            proptest::sample::select(vec![
                "\u{1b}[31m",
                "\r",
                "\n",
                "\t",
                "\u{c}",
                "\u{7f}",
                "\u{9b}2J",
                "\u{85}",
                "\u{202e}",
                "\u{2066}",
                "\u{2069}",
                "\u{200e}",
                "\u{200b}",
                "\u{feff}",
                "\u{2028}",
                "[x](https://evil)",
                "`",
                "*",
            ])
            .prop_map(str::to_string),
            "[a-z ]{1,6}",
        ],
        1..8,
    )
    .prop_map(|v| v.concat())
}

/// Checks of one address's facts, each with `h` in every field of outside text it has: a
/// greeting, an HTTP answer's head, a certificate, listeners' processes and users, a usual
/// server elsewhere, firewall rules, /etc/hosts lines and DNS records.
fn hostile_facts(h: &str) -> Vec<Facts> {
    use crate::dns::files::HostsLine;
    use crate::dns::servers::RecordView;
    use crate::local::nft::{FirewallRule, Hook, RuleVerdict};
    use crate::local::{Firewall, Listener, LocalFacts, Process, RunningServer};
    use crate::session::SessionFacts;
    use crate::session::http::{HttpFacts, HttpResponse, Method};
    use crate::session::tls::{CertFacts, TlsFacts, TlsFailure};
    use crate::session::watch::{BannerKind, First};

    let addr = "127.0.0.1:8443";
    let session = |first, tls, http| SessionFacts {
        accepted: Some(Duration::from_micros(300)),
        tls,
        http,
        ..SessionFacts::new(addr.parse().unwrap(), Duration::from_millis(10), first)
    };
    let open = |s: SessionFacts| {
        let mut a = AddressFacts::probed(fact(addr, ConnectResult::Connected, 200, None));
        a.session = Some(s);
        a
    };
    let cert = CertFacts {
        subject: format!("CN={h}"),
        issuer: format!("CN={h} CA"),
        dns_names: vec![h.to_string()],
        ip_addresses: vec![],
        not_before: 0,
        not_after: 1,
        sha256: [7; 32],
        self_signed: false,
        is_ca: false,
        parse_error: None,
    };
    let tls = |failure| TlsFacts {
        alpn: Some(h.as_bytes().to_vec()),
        chain: vec![cert.clone()],
        failure,
        ..TlsFacts::new("app.lab".into(), Duration::from_millis(2), 140)
    };
    let http = HttpFacts {
        method: Method::Get,
        head_status: None,
        response: Some(HttpResponse {
            version: 1,
            status: 503,
            reason: h.to_string(),
            server: Some(h.to_string()),
            via: Some(h.to_string()),
            content_type: Some(h.to_string()),
            location: Some(format!("https://u:s3cr3t@{h}/?token=s3cr3t")),
            content_length: None,
            closes: true,
            proxy_authenticate: vec![],
            www_authenticate: vec![h.to_string()],
            body_start: Some(h.as_bytes().to_vec()),
        }),
        failure: None,
        elapsed: Duration::from_millis(3),
    };
    let process = Process {
        pid: 4242,
        name: h.to_string(),
        cmdline: format!("{h} --port 8443 {h}"),
        exe: Some(format!("/usr/bin/{h}")),
    };
    let listener = Listener {
        address: "127.0.0.1".parse().unwrap(),
        port: 8443,
        uid: 1000,
        queued: 0,
        backlog: Some(128),
        user: Some(h.to_string()),
        process: Some(process.clone()),
    };
    let local = |listeners: Vec<Listener>, usual: Vec<RunningServer>| LocalFacts {
        port: 8443,
        addresses: vec!["127.0.0.1".parse().unwrap()],
        listeners,
        owner_other_listeners: vec![],
        usual_servers: usual,
        usual_server_names: vec!["PostgreSQL"],
        privileged: true,
        listen_drops: None,
        owner_search_incomplete: false,
        systemd: true,
    };
    let firewall = Firewall {
        inspected: true,
        reason: None,
        privileged: true,
        rules: vec![FirewallRule {
            family: "inet".into(),
            table: h.to_string(),
            chain: h.to_string(),
            hook: Hook::Input,
            verdict: RuleVerdict::Reject,
            text: format!("tcp dport 8443 reject {h}"),
            handle: Some(7),
        }],
    };
    let name = |mut f: Facts| {
        f.dns.system = Some(Lookup {
            addresses: vec!["127.0.0.1".parse().unwrap()],
            elapsed: Duration::from_micros(300),
            error: None,
        });
        f.dns.hosts = vec![HostsLine {
            file: "/etc/hosts",
            line: 3,
            address: "127.0.0.1".parse().unwrap(),
            text: format!("127.0.0.1 app.lab {h}"),
        }];
        f.dns.servers = vec![ServerView {
            server: "127.0.0.53:53".parse().unwrap(),
            stub: None,
            lookup: Lookup {
                addresses: vec!["198.18.0.9".parse().unwrap()],
                elapsed: Duration::from_millis(1),
                error: None,
            },
            records: vec![RecordView {
                name: "app.lab.".into(),
                kind: "CNAME".into(),
                ttl: 60,
                data: format!("{h}."),
            }],
            name_used: Some(h.to_string()),
            port53: None,
        }];
        f
    };
    let base = || Facts::new(target("app.lab 8443"), Duration::from_secs(5));
    let banner = First::Banner {
        bytes: h.as_bytes().to_vec(),
        kind: BannerKind::Ssh {
            protocol: "2.0".into(),
            software: h.to_string(),
        },
    };
    let unknown = First::Banner {
        bytes: h.as_bytes().to_vec(),
        kind: BannerKind::Unknown,
    };
    let closed = AddressFacts::probed(fact(
        addr,
        ConnectResult::Failed {
            errno: libc::ECONNREFUSED,
        },
        100,
        None,
    ));
    vec![
        Facts {
            addresses: vec![open(session(banner, None, Some(http.clone())))],
            local: Some(local(vec![listener.clone()], vec![])),
            firewall: Some(firewall.clone()),
            ..name(base())
        },
        Facts {
            addresses: vec![open(session(
                unknown,
                Some(tls(Some(TlsFailure::Expired {
                    not_after: 1,
                    subject: format!("CN={h}"),
                }))),
                None,
            ))],
            ..name(base())
        },
        Facts {
            addresses: vec![open(session(
                First::Unwatched,
                Some(tls(Some(TlsFailure::WrongName {
                    presented: vec![h.to_string()],
                }))),
                None,
            ))],
            ..base()
        },
        Facts {
            addresses: vec![closed],
            local: Some(local(
                vec![],
                vec![RunningServer {
                    server: "PostgreSQL",
                    process,
                    workers: vec![],
                    listening: Some(vec!["127.0.0.1:5433".parse().unwrap()]),
                }],
            )),
            firewall: Some(firewall),
            ..name(base())
        },
    ]
    .into_iter()
    .chain(hostile_services(h).into_iter().map(|svc| Facts {
        addresses: vec![open(SessionFacts {
            service: Some(svc),
            ..session(First::Unwatched, None, None)
        })],
        ..base()
    }))
    .collect()
}

/// Services that answer with hostile text: an error, a version, another protocol's bytes.
fn hostile_services(h: &str) -> Vec<crate::session::ServiceFacts> {
    use crate::session::protocols::postgres::{ErrorFields, PgFacts, SslAnswer, StartupAnswer};
    use crate::session::protocols::redis::{RedisFacts, Reply, ReplyKind};
    use crate::session::protocols::{Ending, Failed, Protocol, ProtocolFacts, WireFailure, mysql};
    let svc = |protocol, first| crate::session::ServiceFacts {
        protocol,
        tls_required: false,
        user: Some(h.to_string()),
        database: Some(h.to_string()),
        local: None,
        first,
        after_tls: None,
    };
    let ms = Duration::from_millis(1);
    let pg = |code: &str| {
        ProtocolFacts::Postgres(PgFacts {
            ssl: Some(SslAnswer::Refused),
            answer: Some(StartupAnswer::Error {
                error: ErrorFields {
                    severity: Some(h.to_string()),
                    code: Some(code.to_string()),
                    message: Some(format!("no pg_hba.conf entry for host \"{h}\" {h}")),
                    detail: None,
                    hint: None,
                },
                after_auth_ok: false,
            }),
            notices: vec![],
            failure: None,
            ended: Ending::ByServer,
            elapsed: ms,
        })
    };
    let greeting = mysql::Greeting {
        protocol: 10,
        server_version: h.to_string(),
        connection_id: 1,
        capabilities: 0,
        mariadb_capabilities: None,
        auth_plugin: Some(h.to_string()),
    };
    let denied = mysql::ErrPacket {
        code: 1045,
        sqlstate: None,
        message: h.to_string(),
    };
    vec![
        svc(Protocol::Postgres, pg("28000")),
        svc(Protocol::Postgres, pg(h)),
        svc(
            Protocol::MySql,
            ProtocolFacts::MySql(mysql::MySqlFacts {
                first: Some(mysql::First::Greeting(greeting)),
                login: Some(mysql::Login {
                    switched_to: vec![h.to_string()],
                    outcome: mysql::LoginOutcome::Refused(denied),
                }),
                failure: None,
                ended: Ending::ByServer,
                elapsed: ms,
            }),
        ),
        svc(
            Protocol::Redis,
            ProtocolFacts::Redis(RedisFacts {
                unsolicited: None,
                reply: Some(Reply {
                    kind: ReplyKind::Error {
                        code: h.to_string(),
                    },
                    text: h.to_string(),
                }),
                failure: None,
                ended: Ending::Closed,
                elapsed: ms,
            }),
        ),
        svc(
            Protocol::Redis,
            ProtocolFacts::Redis(RedisFacts {
                unsolicited: None,
                reply: None,
                failure: Some(Failed {
                    step: crate::session::protocols::redis::RedisStep::Ping,
                    failure: WireFailure::NotThisProtocol {
                        first_bytes: h.as_bytes().to_vec(),
                    },
                }),
                ended: Ending::Closed,
                elapsed: ms,
            }),
        ),
    ]
}

/// Every human sentence as the JSON has it, and as the text report's "What this means"
/// bullets and numbered steps show it (lines joined, whitespace collapsed).
fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn text_bullets(text: &str) -> Vec<String> {
    let Some(means) = text.split("\nWhat this means\n").nth(1) else {
        return vec![];
    };
    let means = means.split("\n\n").next().unwrap_or("");
    means
        .split("  • ")
        .map(collapse)
        .filter(|s| !s.is_empty())
        .collect()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// In every format — text, JSON, Markdown, the table of several targets — no control, bidi
    /// or invisible character from outside reaches the output raw, no secret of a redirect is
    /// shown, and the findings' sentences are escaped the same way in JSON as in text.
    #[test]
    fn no_format_writes_outside_text_raw(h in hostile_text()) {
        use proptest::{prop_assert, prop_assert_eq};
        colored::control::set_override(false);
        let raw = |s: &str| s.chars().any(|c| c != '\n' && (c.is_control() || crate::escape::needs_escape(c)));
        for facts in hostile_facts(&h) {
            let d = diagnose(facts.clone());
            let mut text = Vec::new();
            super::text::render(&d, &mut text).unwrap();
            let text = String::from_utf8(text).unwrap();
            let mut json = Vec::new();
            super::json::render(&d, &mut json).unwrap();
            let json = String::from_utf8(json).unwrap();
            let mut md = Vec::new();
            let host = crate::hostinfo::HostInfo {
                host_name: Some(h.clone()),
                interfaces: vec![(h.clone(), vec![h.clone()])],
                ..Default::default()
            };
            super::markdown::render(&[&d, &d], &host, &mut md).unwrap();
            let md = String::from_utf8(md).unwrap();
            let mut table = Vec::new();
            let row = super::table::Row::new(&d);
            super::table::render(&[row.clone(), row], &mut table).unwrap();
            let table = String::from_utf8(table).unwrap();
            for (format, out) in [("text", &text), ("json", &json), ("markdown", &md), ("table", &table)] {
                prop_assert!(!raw(out), "{format}: raw character in\n{out}");
                prop_assert!(!out.contains("s3cr3t"), "{format}: a secret in\n{out}");
            }
            let v: serde_json::Value = serde_json::from_str(&json).unwrap();
            let sentences = std::iter::once(&v["summary"])
                .chain(v["findings"].as_array().unwrap().iter().map(|f| &f["message"]))
                .chain(v["advice"].as_array().unwrap().iter().flat_map(|s| [&s["text"], &s["command"]]))
                .chain(v["probes"].as_array().unwrap().iter().map(|p| &p["evidence"]));
            for s in sentences.filter_map(|s| s.as_str()) {
                prop_assert!(!raw(s) && !s.contains('\n'), "a sentence not escaped: {s:?}");
            }
            let messages: Vec<String> = v["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| collapse(f["message"].as_str().unwrap()))
                .collect();
            prop_assert_eq!(text_bullets(&text), messages);
        }
    }
}

/// A listener whose owner was not found: without root, sudo would show it; as root it was
/// not found (the owner search cut short), and sudo is never advised to root.
#[test]
fn an_owner_not_found_as_root_is_not_a_matter_of_sudo() {
    let mut f = Facts {
        addresses: vec![AddressFacts::probed(fact(
            "127.0.0.1:443",
            ConnectResult::Connected,
            200,
            None,
        ))],
        ..Facts::new(target("127.0.0.1 443"), Duration::from_secs(5))
    };
    let local = |privileged| crate::local::LocalFacts {
        port: 443,
        addresses: vec!["127.0.0.1".parse().unwrap()],
        listeners: vec![crate::local::Listener {
            address: "127.0.0.1".parse().unwrap(),
            port: 443,
            uid: 0,
            queued: 0,
            backlog: Some(100),
            user: Some("root".into()),
            process: None,
        }],
        owner_other_listeners: vec![],
        usual_servers: vec![],
        usual_server_names: vec![],
        privileged,
        listen_drops: None,
        owner_search_incomplete: privileged,
        systemd: true,
    };
    f.local = Some(local(true));
    f.privileged = true;
    let text = render(&f, false);
    assert!(text.contains("a process of root (not found)"), "{text}");
    assert!(!text.contains("sudo"), "{text}");
    f.local = Some(local(false));
    f.privileged = false;
    assert!(render(&f, false).contains("(run with sudo to see which)"));
}
