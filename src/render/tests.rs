//! Renderers on fixtures: hand-built facts (no network), diagnosed, then rendered; the output
//! is compared with reviewed snapshots (`insta`), so any change to what people or scripts read
//! shows up in review.

use std::time::Duration;

use crate::diagnosis::diagnose;
use crate::dns::servers::{Port53, ServerView, Udp53};
use crate::dns::{DnsErrorKind, DnsFacts, Lookup, LookupError};
use crate::facts::{AddressFacts, Facts, Silence};
use crate::probe::{ConnectResult, Icmp, ProbeFact, ProbeSpec};
use crate::services::Services;
use crate::trace::TraceFacts;

fn target(args: &str) -> crate::target::Target {
    let (t, p) = args.split_once(' ').unwrap();
    crate::target::parse(t, Some(p), &Services::parse("postgresql 5432/tcp\n")).unwrap()
}

fn fact(addr: &str, result: ConnectResult, us: u64, icmp: Option<(u8, u8, &str)>) -> ProbeFact {
    ProbeFact {
        spec: ProbeSpec::to(addr.parse().unwrap()),
        result,
        elapsed: Duration::from_micros(us),
        icmp: icmp.map(|(kind, code, from)| Icmp {
            v6: false,
            kind,
            code,
            from: Some(from.parse().unwrap()),
        }),
        local: Some("198.18.1.2:40000".parse().unwrap()),
    }
}

fn render(facts: &Facts, json: bool) -> String {
    colored::control::set_override(false);
    let d = diagnose(facts);
    let mut out = Vec::new();
    if json {
        super::json::render(facts, &d, &mut out).unwrap();
    } else {
        super::text::render(facts, &d, &mut out).unwrap();
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

/// Every fixture's report is consistent by construction: no finding twice, no step twice (the
/// same command on the same machine), only documented ids — the lab checks the same of every
/// real report (`tests/common::check_report`).
#[test]
fn fixture_reports_have_no_step_or_finding_twice() {
    use crate::diagnosis::FindingId;
    let fixtures = [rejected_on_path()];
    for f in fixtures {
        let d = diagnose(&f);
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
