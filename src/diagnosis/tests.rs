//! The diagnosis on fixtures: facts in, verdict, findings and planned steps out.

use std::net::IpAddr;
use std::time::Duration;

use super::*;
use crate::dns::DnsErrorKind;
use crate::dns::LookupError;
use crate::facts::AddressFacts;
use crate::icmp::Icmp;
use crate::probe::{ConnectResult, ProbeFact};
use crate::target::{Host, Target};
use crate::target::{Port, PortSource};

fn target(host: &str, port: u16) -> Target {
    Target {
        input: format!("{host} {port}"),
        host: host
            .parse::<IpAddr>()
            .map_or_else(|_| Host::Name(host.into()), Host::Ip),
        port: Port::new(port).unwrap(),
        port_source: PortSource::Number,
        service: None,
        here: false,
        url: None,
        transport: crate::target::Transport::Tcp,
    }
}
fn probe(addr: &str, result: ConnectResult, icmp: Option<Icmp>) -> ProbeFact {
    // A silent probe waited for most of the default deadline.
    let elapsed = if result == ConnectResult::TimedOut {
        Duration::from_secs(4)
    } else {
        Duration::from_micros(300)
    };
    ProbeFact {
        icmp,
        ..ProbeFact::new(addr.parse().unwrap(), result, elapsed)
    }
}
fn icmp4(code: u8, from: &str) -> Option<Icmp> {
    Some(Icmp::v4(3, code, from))
}
fn facts(t: Target, probes: Vec<ProbeFact>) -> Facts {
    Facts {
        addresses: probes.into_iter().map(AddressFacts::probed).collect(),
        ..Facts::new(t, Duration::from_secs(5))
    }
}
fn failed(e: i32) -> ConnectResult {
    ConnectResult::Failed { errno: e }
}
fn ids(d: &Report) -> Vec<&str> {
    d.findings.iter().map(|f| f.id.as_str()).collect()
}

#[test]
fn handshake_is_open_and_exits_zero() {
    let d = diagnose(facts(
        target("198.18.0.2", 80),
        vec![probe("198.18.0.2:80", ConnectResult::Connected, None)],
    ));
    assert_eq!(d.verdict, Verdict::Open);
    assert_eq!(crate::exit_codes::ExitCode::from(d.verdict).code(), 0);
    assert!(d.findings.is_empty());
}

#[test]
fn reset_without_icmp_is_closed() {
    let d = diagnose(facts(
        target("198.18.0.2", 5432),
        vec![probe("198.18.0.2:5432", failed(libc::ECONNREFUSED), None)],
    ));
    assert_eq!(d.verdict, Verdict::Closed);
    assert_eq!(ids(&d), ["port_closed"]);
    assert!(d.findings[0].message.contains("reject with tcp reset"));
}

#[test]
fn econnrefused_with_icmp_port_unreachable_is_a_firewall_not_closed() {
    let d = diagnose(facts(
        target("198.18.0.2", 5432),
        vec![probe(
            "198.18.0.2:5432",
            failed(libc::ECONNREFUSED),
            icmp4(3, "198.18.0.2"),
        )],
    ));
    assert_eq!(d.verdict, Verdict::Rejected);
    assert_eq!(ids(&d), ["firewall_reject_on_host"]);
}

#[test]
fn admin_prohibited_from_a_router_names_the_router() {
    let d = diagnose(facts(
        target("198.18.2.2", 443),
        vec![probe(
            "198.18.2.2:443",
            failed(libc::EHOSTUNREACH),
            icmp4(13, "198.18.1.1"),
        )],
    ));
    assert_eq!(d.verdict, Verdict::Rejected);
    assert_eq!(ids(&d), ["firewall_reject_on_path"]);
    assert!(d.findings[0].message.contains("198.18.1.1"));
    assert_eq!(
        d.facts.addresses[0].result.sender(),
        Some((Sender::OnTheWay, Some("198.18.1.1".parse().unwrap())))
    );
}

#[test]
fn icmpv6_prohibited_arrives_as_eacces_and_is_rejected() {
    let icmp = Some(Icmp {
        v6: true,
        kind: 1,
        code: 1,
        from: Some("fd00::2".parse().unwrap()),
    });
    let d = diagnose(facts(
        target("fd00::2", 22),
        vec![probe("[fd00::2]:22", failed(libc::EACCES), icmp)],
    ));
    assert_eq!(d.verdict, Verdict::Rejected);
    assert_eq!(ids(&d), ["firewall_reject_on_host"]);
}

#[test]
fn host_unreachable_from_router_is_unreachable() {
    let d = diagnose(facts(
        target("198.18.2.99", 22),
        vec![probe(
            "198.18.2.99:22",
            failed(libc::EHOSTUNREACH),
            icmp4(1, "198.18.1.1"),
        )],
    ));
    assert_eq!(d.verdict, Verdict::Unreachable);
    assert_eq!(ids(&d), ["host_unreachable"]);
    assert!(
        d.findings[0]
            .message
            .contains("198.18.1.1 reported host-unreachable")
    );
}

#[test]
fn enetunreach_without_icmp_is_no_route_here() {
    let d = diagnose(facts(
        target("198.19.9.9", 22),
        vec![probe("198.19.9.9:22", failed(libc::ENETUNREACH), None)],
    ));
    assert_eq!(d.verdict, Verdict::Unreachable);
    assert_eq!(ids(&d), ["no_route"]);
    assert_eq!(
        d.steps[0].command.as_deref(),
        Some("ip route get 198.19.9.9")
    );
}

#[test]
fn silence_is_filtered() {
    let d = diagnose(facts(
        target("198.18.0.2", 5432),
        vec![probe("198.18.0.2:5432", ConnectResult::TimedOut, None)],
    ));
    assert_eq!(d.verdict, Verdict::Filtered);
    assert_eq!(crate::exit_codes::ExitCode::from(d.verdict).code(), 6);
    assert_eq!(ids(&d), ["silent_drop"]);
}

#[test]
fn localhost_trap_is_partial_with_its_own_explanation() {
    let d = diagnose(facts(
        target("localhost", 8080),
        vec![
            probe("[::1]:8080", failed(libc::ECONNREFUSED), None),
            probe("127.0.0.1:8080", ConnectResult::Connected, None),
        ],
    ));
    assert_eq!(d.verdict, Verdict::Partial);
    assert_eq!(ids(&d), ["partial_reachability", "port_closed"]);
    assert!(d.findings[0].message.contains("localhost` trap"));
    assert!(d.findings[0].message.contains("clients try first"));
}

#[test]
fn disagreeing_failures_take_the_first_address_and_name_the_others() {
    let d = diagnose(facts(
        target("db", 5432),
        vec![
            probe("[fd00::2]:5432", ConnectResult::TimedOut, None),
            probe("198.18.0.2:5432", failed(libc::ECONNREFUSED), None),
        ],
    ));
    assert_eq!(d.verdict, Verdict::Filtered);
    assert_eq!(
        ids(&d),
        ["silent_drop", "port_closed", "addresses_disagree"]
    );
    assert!(d.findings[2].message.contains("198.18.0.2 is closed"));
}

fn lookup_err(kind: DnsErrorKind) -> Option<crate::dns::Lookup> {
    Some(crate::dns::Lookup {
        addresses: vec![],
        elapsed: Duration::from_millis(3),
        error: Some(LookupError::new(kind)),
    })
}

#[test]
fn dns_failures_prefer_the_precise_direct_kind() {
    let mut f = facts(target("nosuch.example", 80), vec![]);
    f.dns.system = lookup_err(DnsErrorKind::Timeout); // EAI_AGAIN folds SERVFAIL in
    f.dns.direct = lookup_err(DnsErrorKind::Servfail);
    let d = diagnose(f.clone());
    assert_eq!(d.verdict, Verdict::DnsError);
    assert_eq!(crate::exit_codes::ExitCode::from(d.verdict).code(), 8);
    assert_eq!(ids(&d), ["dns_servfail"]);
    f.dns.direct = None;
    assert_eq!(ids(&diagnose(f.clone())), ["dns_timeout"]);
    f.dns.system = lookup_err(DnsErrorKind::Nxdomain);
    assert_eq!(ids(&diagnose(f.clone())), ["dns_nxdomain"]);
}

#[test]
fn hosts_file_override_is_noticed() {
    let mut f = facts(
        target("app.example", 80),
        vec![probe("198.18.0.9:80", ConnectResult::Connected, None)],
    );
    let ok = |a: &str| crate::dns::Lookup {
        addresses: vec![a.parse().unwrap()],
        elapsed: Duration::from_millis(1),
        error: None,
    };
    f.dns.system = Some(ok("198.18.0.9"));
    f.dns.direct = Some(ok("198.18.0.2"));
    assert_eq!(ids(&diagnose(f.clone())), ["system_differs_from_dns"]);
}

#[test]
fn an_icmp_from_this_machines_own_address_is_its_own_firewall() {
    let mut p = probe(
        "198.18.2.2:5440",
        failed(libc::ECONNREFUSED),
        icmp4(3, "198.18.1.2"),
    );
    p.local = Some("198.18.1.2:40000".parse().unwrap());
    let d = diagnose(facts(target("198.18.2.2", 5440), vec![p]));
    assert_eq!(d.verdict, Verdict::Rejected);
    assert_eq!(ids(&d), ["local_policy_reject"]);
    assert_eq!(
        d.facts.addresses[0].result.sender().unwrap().0,
        Sender::ThisMachine
    );
    assert!(
        d.summary.contains("this machine's own firewall"),
        "{}",
        d.summary
    );
}

#[test]
fn a_failed_neighbour_lookup_here_is_this_machine_not_a_router() {
    let mut p = probe(
        "198.18.1.99:22",
        failed(libc::EHOSTUNREACH),
        icmp4(1, "198.18.1.2"),
    );
    p.local = Some("198.18.1.2:40000".parse().unwrap());
    let d = diagnose(facts(target("198.18.1.99", 22), vec![p]));
    assert_eq!(d.verdict, Verdict::Unreachable);
    assert!(
        d.findings[0].message.contains("ARP/neighbour lookup"),
        "{}",
        d.findings[0].message
    );
    assert!(
        d.summary
            .contains("cannot find the host on its own network")
    );
}

#[test]
fn local_errors_without_icmp() {
    let d = diagnose(facts(
        target("198.18.2.2", 22),
        vec![probe("198.18.2.2:22", failed(libc::EPERM), None)],
    ));
    assert_eq!(
        (d.verdict, ids(&d)),
        (Verdict::Rejected, vec!["local_policy_reject"])
    );
    let d = diagnose(facts(
        target("fd00::2", 22),
        vec![probe("[fd00::2]:22", failed(libc::EAFNOSUPPORT), None)],
    ));
    assert_eq!(
        (d.verdict, ids(&d)),
        (Verdict::Unreachable, vec!["local_error"])
    );
    assert!(d.findings[0].message.contains("EAFNOSUPPORT"));
}

#[test]
fn every_dns_failure_kind_has_its_finding() {
    for (kind, id) in [
        (DnsErrorKind::Nxdomain, "dns_nxdomain"),
        (DnsErrorKind::Nodata, "dns_nodata"),
        (DnsErrorKind::Servfail, "dns_servfail"),
        (DnsErrorKind::Refused, "dns_refused"),
        (DnsErrorKind::Timeout, "dns_timeout"),
        (DnsErrorKind::NoNameservers, "dns_no_nameservers"),
        (DnsErrorKind::Other, "dns_failed"),
    ] {
        let mut f = facts(target("app.example", 80), vec![]);
        f.dns.system = lookup_err(kind);
        let d = diagnose(f.clone());
        assert_eq!(d.verdict, Verdict::DnsError);
        assert_eq!(ids(&d)[0], id, "{kind:?}");
        assert!(
            d.steps.iter().any(|s| s.findings[0] == d.findings[0].id),
            "{id} gives advice"
        );
    }
}

#[test]
fn a_command_is_advised_once() {
    let d = diagnose(facts(
        target("dual.lab", 8080),
        vec![
            probe("[fd00:2::2]:8080", failed(libc::ECONNREFUSED), None),
            probe("198.18.2.2:8080", ConnectResult::Connected, None),
        ],
    ));
    let cmds: Vec<&str> = d
        .steps
        .iter()
        .filter_map(|a| a.command.as_deref())
        .collect();
    let mut unique = cmds.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(cmds.len(), unique.len(), "{cmds:?}");
    assert!(cmds.contains(&"sudo ss -ltnp 'sport = :8080'"));
}

#[test]
fn a_probe_without_a_fair_chance_is_inconclusive_not_filtered() {
    // The name took 4.9 s of a 5 s deadline; the probe then waited 0.1 ms.
    let mut p = probe("198.18.0.2:443", ConnectResult::TimedOut, None);
    p.elapsed = Duration::from_micros(100);
    let mut f = facts(target("app.example", 443), vec![p]);
    f.dns.system = Some(crate::dns::Lookup {
        addresses: vec!["198.18.0.2".parse().unwrap()],
        elapsed: Duration::from_millis(4900),
        error: None,
    });
    let d = diagnose(f.clone());
    assert_eq!(d.verdict, Verdict::Inconclusive);
    assert_eq!(crate::exit_codes::ExitCode::from(d.verdict).code(), 9);
    assert_eq!(ids(&d), ["out_of_time"]);
    assert!(
        d.findings[0]
            .message
            .contains("4.90 s of the 5.00 s deadline")
    );
    assert_eq!(
        d.steps[0].command.as_deref(),
        Some("canreach --timeout 10s app.example 443")
    );
    // This machine's own address answers in microseconds: 200 ms of silence is fair there.
    let mut p = probe("127.0.0.1:443", ConnectResult::TimedOut, None);
    p.elapsed = Duration::from_millis(200);
    let mut f = facts(target("127.0.0.1", 443), vec![p]);
    assert!(f.addresses[0].here);
    assert_eq!(diagnose(f.clone()).verdict, Verdict::Filtered);
    f.addresses[0].here = false;
    assert_eq!(diagnose(f.clone()).verdict, Verdict::Inconclusive);
}

#[test]
fn a_host_unreachable_far_too_fast_for_a_live_host_is_a_firewall_on_the_way() {
    let mut p = probe(
        "198.18.2.2:5432",
        failed(libc::EHOSTUNREACH),
        icmp4(1, "198.18.1.1"),
    );
    p.elapsed = Duration::from_micros(400);
    let reset = probe("198.18.2.2:22", failed(libc::ECONNREFUSED), None);
    let mut f = facts(target("198.18.2.2", 5432), vec![p]);
    f.addresses[0].silence = Some(crate::facts::Silence {
        liveness: vec![(22, Some(reset)), (443, None)],
        ..Default::default()
    });
    let d = diagnose(f.clone());
    assert_eq!(d.verdict, Verdict::Rejected);
    assert_eq!(ids(&d), ["firewall_reject_on_path"]);
    assert!(
        d.findings[0]
            .message
            .contains("far sooner than a failed address lookup"),
        "{}",
        d.findings[0].message
    );
    // Without the host's answer on another port, it is what it says: unreachable.
    f.addresses[0].silence = None;
    assert_eq!(diagnose(f.clone()).verdict, Verdict::Unreachable);
}

#[test]
fn out_of_descriptors_is_no_verdict_about_the_target() {
    let d = diagnose(facts(
        target("198.18.0.2", 443),
        vec![probe("198.18.0.2:443", failed(libc::EMFILE), None)],
    ));
    let why = d.resource_failure().expect("an internal error");
    assert!(why.contains("EMFILE") && why.contains("ulimit -n"), "{why}");
    // Among many targets it is reported as what it is: no evidence, no time ran out.
    assert_eq!(d.verdict, Verdict::Inconclusive);
    assert!(
        d.summary.contains("could not open a socket"),
        "{}",
        d.summary
    );
    let ids: Vec<FindingId> = d.findings.iter().map(|f| f.id).collect();
    assert_eq!(ids, [FindingId::LocalError], "{ids:?}");
    assert!(d.findings[0].message.contains("EMFILE"));
    let d = diagnose(facts(
        target("fd00::2", 443),
        vec![probe("[fd00::2]:443", failed(libc::EAFNOSUPPORT), None)],
    ));
    assert_eq!(
        d.resource_failure(),
        None,
        "a missing family is this machine's setting"
    );
}

/// No free local port (every source port in use: EADDRNOTAVAIL at `connect()`) is this
/// machine's lack, like no descriptor: no verdict about the target, and words that say which
/// lack and how to see it.
#[test]
fn no_free_local_port_is_no_verdict_about_the_target() {
    // The kernel would send from 198.18.0.1 (the probe's UDP look): an address exists, the
    // ports ran out.
    let mut p = probe("198.18.0.2:443", failed(libc::EADDRNOTAVAIL), None);
    p.local = Some("198.18.0.1:0".parse().unwrap());
    let d = diagnose(facts(target("198.18.0.2", 443), vec![p]));
    assert_eq!(d.verdict, Verdict::Inconclusive);
    assert_eq!(ids(&d), ["local_error"]);
    let m = &d.findings[0].message;
    assert!(
        m.contains("no free local port") && m.contains("EADDRNOTAVAIL"),
        "{m}"
    );
    assert!(d.summary.contains("no free local port"), "{}", d.summary);
    let commands: Vec<&String> = d.steps.iter().filter_map(|s| s.command.as_ref()).collect();
    assert!(
        commands
            .iter()
            .any(|c| c.contains("sysctl net.ipv4.ip_local_port_range")),
        "{commands:?}"
    );
}

/// EADDRNOTAVAIL where the kernel has no address to send from (IPv6 disabled while the
/// target is `::1`): no port is lacking, and the words and advice say what is: an address of
/// that family.
#[test]
fn no_address_of_the_family_is_not_called_a_lack_of_ports() {
    let d = diagnose(facts(
        target("::1", 80),
        vec![probe("[::1]:80", failed(libc::EADDRNOTAVAIL), None)],
    ));
    assert_eq!(d.verdict, Verdict::Inconclusive);
    assert_eq!(ids(&d), ["local_error"]);
    let m = &d.findings[0].message;
    assert!(m.contains("no IPv6 address to connect from"), "{m}");
    assert!(!m.contains("port"), "{m}");
    assert!(d.summary.contains("no IPv6 address"), "{}", d.summary);
    let commands: Vec<&String> = d.steps.iter().filter_map(|s| s.command.as_ref()).collect();
    assert_eq!(commands, ["ip -6 addr show"]);
}

/// A silent first address on a live host: the liveness facts the pipeline gathers.
fn live_host_silence(retransmit_wait: Option<Duration>) -> crate::facts::Silence {
    let reset = probe("198.18.2.2:22", failed(libc::ECONNREFUSED), None);
    crate::facts::Silence {
        liveness: vec![(22, Some(reset)), (443, None)],
        second_syn: None,
        decided_after: Some(Duration::from_millis(200)),
        retransmit_wait,
    }
}

#[test]
fn a_reject_that_answered_only_the_retransmission_names_the_rate_limit() {
    // The first SYN met a router's spent ICMP budget; the kernel's retransmission, 1 s on,
    // got the reject.
    let mut p = probe(
        "198.18.2.2:5432",
        failed(libc::EHOSTUNREACH),
        icmp4(13, "198.18.1.1"),
    );
    p.elapsed = Duration::from_millis(1002);
    let mut f = facts(target("198.18.2.2", 5432), vec![p]);
    f.addresses[0].silence = Some(live_host_silence(Some(Duration::from_millis(1200))));
    let d = diagnose(f.clone());
    assert_eq!(d.verdict, Verdict::Rejected);
    assert_eq!(ids(&d), ["firewall_reject_on_path", "icmp_rate_limited"]);
    let m = &d.findings[1].message;
    assert!(
        m.contains("198.18.1.1") && m.contains("retransmission") && m.contains("1.00 s"),
        "{m}"
    );
    // A reject as late whose host had not been seen up before it (the first SYN held up by
    // neighbour discovery, say): late, not rate-limited.
    f.addresses[0].silence = Some(live_host_silence(None));
    assert_eq!(ids(&diagnose(f.clone())), ["firewall_reject_on_path"]);
    // The same reject answering the first SYN at once: no rate limit to speak of.
    f.addresses[0].probe.elapsed = Duration::from_micros(400);
    f.addresses[0].silence = None;
    assert_eq!(ids(&diagnose(f.clone())), ["firewall_reject_on_path"]);
    // A router's host-unreachable that came with the retransmission, while the host answers
    // on other ports: still that router's firewall, and still rate-limited.
    let mut p = probe(
        "198.18.2.2:5432",
        failed(libc::EHOSTUNREACH),
        icmp4(1, "198.18.1.1"),
    );
    p.elapsed = Duration::from_millis(1002);
    let mut f = facts(target("198.18.2.2", 5432), vec![p]);
    f.addresses[0].silence = Some(live_host_silence(Some(Duration::from_millis(1200))));
    let d = diagnose(f.clone());
    assert_eq!(d.verdict, Verdict::Rejected);
    assert_eq!(ids(&d), ["firewall_reject_on_path", "icmp_rate_limited"]);
}

#[test]
fn silence_on_a_live_host_says_what_the_rate_limit_may_hide_once() {
    let silent = || {
        let mut p = probe("198.18.2.2:5432", ConnectResult::TimedOut, None);
        p.elapsed = Duration::from_millis(1225);
        p
    };
    let message = |wait: Option<Duration>| {
        let mut f = facts(target("198.18.2.2", 5432), vec![silent()]);
        f.addresses[0].silence = Some(live_host_silence(wait));
        let d = diagnose(f.clone());
        assert_eq!(d.verdict, Verdict::Filtered);
        d.findings
            .iter()
            .find(|f| f.id == FindingId::HostUpPortDropped)
            .unwrap()
            .message
            .clone()
    };
    // The walk showed the routers answering: nothing about budgets.
    let m = message(None);
    assert!(
        m.contains("not a lost packet") && !m.contains("ICMP errors"),
        "{m}"
    );
    // Waited for the retransmission: no reject came, most likely a drop.
    let m = message(Some(Duration::from_millis(1200)));
    assert!(
        m.contains("retransmitted SYN (1.20 s after the first)") && m.contains("no reject came"),
        "{m}"
    );
    // The deadline cut the wait short: the silence may hide a held-back reject.
    let m = message(Some(Duration::from_millis(800)));
    assert!(
        m.contains("may hide such a reject") && !m.contains("no reject came"),
        "{m}"
    );
}

#[test]
fn a_socket_connected_to_itself_is_closed_and_says_why() {
    let mut p = probe("127.0.0.1:40000", ConnectResult::ConnectedToItself, None);
    p.local = Some("127.0.0.1:40000".parse().unwrap());
    let d = diagnose(facts(target("127.0.0.1", 40000), vec![p]));
    assert_eq!(d.verdict, Verdict::Closed);
    assert_eq!(ids(&d), ["connected_to_itself"]);
    let m = &d.findings[0].message;
    assert!(m.contains("connected canreach's socket to itself"), "{m}");
    assert!(d.summary.contains("connected to itself"), "{}", d.summary);
    assert!(
        d.facts.addresses[0]
            .result
            .describe()
            .starts_with("connected to itself")
    );
    let cmds: Vec<&str> = d
        .steps
        .iter()
        .filter_map(|s| s.command.as_deref())
        .collect();
    assert_eq!(
        cmds,
        ["sysctl net.ipv4.ip_local_port_range net.ipv4.ip_local_reserved_ports"]
    );
    // A real handshake stays open.
    let d = diagnose(facts(
        target("127.0.0.1", 40000),
        vec![probe("127.0.0.1:40000", ConnectResult::Connected, None)],
    ));
    assert_eq!(d.verdict, Verdict::Open);
}

/// `::ffff:198.18.2.2` is 198.18.2.2: the kernel names an ICMPv4 sender in the plain form,
/// and when it is the target (or this machine), it is not "a device on the way".
#[test]
fn a_v4_mapped_target_rejected_by_itself_is_the_target() {
    let mut p = probe(
        "[::ffff:198.18.2.2]:5432",
        failed(libc::ECONNREFUSED),
        icmp4(3, "198.18.2.2"),
    );
    p.local = Some("[::ffff:198.18.1.2]:40000".parse().unwrap());
    let d = diagnose(facts(target("::ffff:198.18.2.2", 5432), vec![p.clone()]));
    assert_eq!(d.verdict, Verdict::Rejected);
    assert_eq!(ids(&d), ["firewall_reject_on_host"]);
    assert_eq!(
        d.facts.addresses[0].result.sender().unwrap().0,
        Sender::Target
    );
    assert!(
        d.facts.addresses[0]
            .result
            .describe()
            .contains("from the host itself")
    );
    assert!(
        d.summary.contains("the server's own firewall"),
        "{}",
        d.summary
    );
    // Its own OUTPUT reject: the ICMP comes from this machine's plain address.
    p.icmp = icmp4(3, "198.18.1.2");
    let d = diagnose(facts(target("::ffff:198.18.2.2", 5432), vec![p]));
    assert_eq!(
        d.facts.addresses[0].result.sender().unwrap().0,
        Sender::ThisMachine
    );
    assert_eq!(ids(&d), ["local_policy_reject"]);
}

/// A connection to this machine that the program did not take within the watch: the kernel
/// completed the handshake, so the probe says connected; the program is named with its queue.
fn not_taken_facts(n: crate::session::watch::NotAccepted) -> Facts {
    use crate::local::{Listener, LocalFacts, Process};
    use crate::session::watch::First;
    let mut f = facts(
        target("127.0.0.1", 22300),
        vec![probe("127.0.0.1:22300", ConnectResult::Connected, None)],
    );
    let address = "127.0.0.1:22300".parse().unwrap();
    f.addresses[0].session = Some(crate::session::SessionFacts {
        not_accepted: Some(n),
        ..crate::session::SessionFacts::new(address, Duration::from_millis(500), First::Silent)
    });
    f.local = Some(LocalFacts {
        port: 22300,
        addresses: vec!["127.0.0.1".parse().unwrap()],
        listeners: vec![Listener {
            address: "127.0.0.1".parse().unwrap(),
            port: 22300,
            uid: 0,
            queued: 1,
            backlog: Some(16),
            user: Some("root".into()),
            process: Some(Process {
                pid: 4242,
                name: "python3".into(),
                cmdline: "python3 hung.py".into(),
                exe: Some("/usr/bin/python3.11".into()),
            }),
        }],
        owner_other_listeners: vec![],
        usual_servers: vec![],
        usual_server_names: vec![],
        privileged: true,
        listen_drops: None,
        owner_search_incomplete: false,
        systemd: true,
    });
    f.privileged = true;
    f
}

#[test]
fn a_program_that_does_not_take_the_connection_is_a_service_error_naming_it() {
    let n = crate::session::watch::NotAccepted {
        waited: Duration::from_millis(901),
        queued: Some(2),
        backlog: Some(16),
        asleep: Some(true),
        cut_short: false,
    };
    let d = diagnose(not_taken_facts(n.clone()));
    assert_eq!(d.verdict, Verdict::ServiceError);
    assert_eq!(ids(&d), ["program_not_accepting"]);
    let m = &d.findings[0].message;
    assert!(m.starts_with("python3 (pid 4242, user root, /usr/bin/python3.11) listens on 127.0.0.1:22300, but did not take the connection: it waited 901 ms"), "{m}");
    assert!(
        m.contains("(2 waiting, this check's among them; room for 16)"),
        "{m}"
    );
    assert!(m.contains("not calling accept()"), "{m}");
    assert!(
        d.summary.contains("it does not take the connection"),
        "{}",
        d.summary
    );
    let cmds: Vec<&str> = d
        .steps
        .iter()
        .filter_map(|s| s.command.as_deref())
        .collect();
    assert_eq!(
        cmds,
        [
            "ps -o pid,stat,etime,wchan:32,args -p 4242",
            "ss -ltn 'sport = :22300'"
        ]
    );
    // No local facts (the inspection did not finish): still a sentence.
    let mut f = not_taken_facts(n.clone());
    f.local = None;
    let d = diagnose(f);
    assert!(
        d.findings[0].message.starts_with(
            "A program listens on 127.0.0.1:22300, but did not take the connection: it waited"
        ),
        "{}",
        d.findings[0].message
    );
    // Busy rather than asleep: said so.
    let d = diagnose(not_taken_facts(crate::session::watch::NotAccepted {
        asleep: Some(false),
        ..n.clone()
    }));
    assert!(
        d.findings[0].message.contains("too busy"),
        "{}",
        d.findings[0].message
    );
    // The deadline ended the watch first: no verdict on the program, and no word on silence.
    let d = diagnose(not_taken_facts(crate::session::watch::NotAccepted {
        waited: Duration::from_millis(290),
        cut_short: true,
        ..n
    }));
    assert_eq!(d.verdict, Verdict::Inconclusive);
    assert_eq!(ids(&d), ["program_not_accepting"]);
    assert_eq!(d.findings[0].severity, Severity::Warning);
    assert!(
        d.findings[0]
            .message
            .contains("when the deadline ended the watch after 290 ms")
    );
    assert!(
        d.steps
            .iter()
            .any(|s| s.command.as_deref() == Some("canreach --timeout 10s 127.0.0.1 22300"))
    );
}

/// An address of this machine silent for more than 10 ms, with what its listener's queue
/// showed meanwhile; the listener table as the inspection read it (or not at all).
fn silent_here(
    queue: crate::facts::QueueWatch,
    elapsed_ms: u64,
    table: Option<(u32, u32)>,
) -> Facts {
    let mut p = probe("127.0.0.1:22500", ConnectResult::TimedOut, None);
    p.elapsed = Duration::from_millis(elapsed_ms);
    let mut f = not_taken_facts(crate::session::watch::NotAccepted {
        waited: Duration::ZERO,
        queued: None,
        backlog: None,
        asleep: None,
        cut_short: false,
    });
    f.target = target("127.0.0.1", 22500);
    f.addresses = vec![AddressFacts {
        queue: Some(queue),
        udp: None,
        here: true,
        ..AddressFacts::probed(p)
    }];
    match table {
        Some((queued, backlog)) => {
            let l = f.local.as_mut().unwrap();
            l.port = 22500;
            l.listeners[0].port = 22500;
            l.listeners[0].queued = queued;
            l.listeners[0].backlog = Some(backlog);
        }
        None => f.local = None,
    }
    f.firewall = Some(crate::local::Firewall {
        inspected: true,
        reason: None,
        privileged: true,
        rules: vec![],
    });
    f
}

fn look(queued: u32, backlog: u32) -> Option<crate::local::QueueLook> {
    Some(crate::local::QueueLook {
        queued,
        backlog: Some(backlog),
        drops: None,
    })
}

/// The words and commands a silence on this machine must never come with: a firewall hunt
/// elsewhere, a path to walk, another team, sudo for a root process.
fn no_firewall_story(d: &Report) {
    assert!(!ids(d).contains(&"silent_drop"), "{:?}", ids(d));
    for s in &d.steps {
        let c = s.command.as_deref().unwrap_or("");
        assert!(
            !c.contains("traceroute") && !c.contains("sudo") && !c.contains("-e drop"),
            "{c}"
        );
        assert!(s.kind != StepKind::AskOwners, "{}", s.text);
    }
    assert!(!d.summary.contains("something drops"), "{}", d.summary);
}

#[test]
fn a_busy_listener_whose_queue_filled_during_the_check_is_not_a_firewall() {
    use crate::facts::QueueWatch;
    // Room when first looked at (the queue had drained), full again at the kernel's retry,
    // 51 drops counted meanwhile; the socket table (read under load) missing altogether.
    let q = QueueWatch {
        first: look(2, 100),
        last: look(101, 100),
        overflows: Some(51),
        drops: Some(51),
        waited_retransmit: true,
    };
    let d = diagnose(silent_here(q.clone(), 1104, None));
    assert_eq!(d.verdict, Verdict::Filtered);
    assert_eq!(ids(&d), ["listener_not_accepting"]);
    let m = &d.findings[0].message;
    assert!(
        m.starts_with("The program listening on 127.0.0.1:22500 is not accepting connections: its accept queue is full (101 waiting, room for 100)"),
        "{m}"
    );
    assert!(
        m.contains("dropped 51 connection attempts at full accept queues"),
        "{m}"
    );
    no_firewall_story(&d);
    // With the table: the program is named.
    let d = diagnose(silent_here(q, 1104, Some((3, 100))));
    assert!(
        d.findings[0].message.starts_with("python3 (pid 4242, user root, /usr/bin/python3.11) listens on 127.0.0.1:22500, but it is not accepting"),
        "{}",
        d.findings[0].message
    );
    no_firewall_story(&d);
    // Full for a moment only: room at both looks, the listener's own drops counted while
    // the check waited (its retry dropped).
    let counted = |queued, drops| {
        look(queued, 100).map(|l| crate::local::QueueLook {
            drops: Some(drops),
            ..l
        })
    };
    let d = diagnose(silent_here(
        QueueWatch {
            first: counted(0, 7),
            last: counted(4, 9),
            overflows: Some(3),
            drops: Some(3),
            waited_retransmit: true,
        },
        1104,
        Some((4, 100)),
    ));
    assert_eq!(d.verdict, Verdict::Filtered);
    let m = &d.findings[0].message;
    assert!(
        m.contains("does not take connections as fast as they come")
            && m.contains("this listener dropped 2 connection attempts"),
        "{m}"
    );
    assert!(
        m.contains("It has room again now (4 waiting, room for 100)"),
        "{m}"
    );
    no_firewall_story(&d);
}

/// Other listeners of the machine overflowing while the check waited (ListenOverflows rose)
/// say nothing of this one: its own count did not rise and it had room, so its silence is
/// this machine's firewall's, not its queue's.
#[test]
fn other_listeners_overflowing_do_not_explain_this_ones_silence() {
    use crate::facts::QueueWatch;
    let room = look(0, 128).map(|l| crate::local::QueueLook {
        drops: Some(5),
        ..l
    });
    let q = QueueWatch {
        first: room,
        last: room,
        overflows: Some(300),
        drops: Some(300),
        waited_retransmit: true,
    };
    let d = diagnose(silent_here(q, 1101, Some((0, 128))));
    assert_eq!(d.verdict, Verdict::Filtered);
    assert_eq!(ids(&d), ["silent_drop"]);
}

#[test]
fn a_listener_with_room_and_no_drop_counted_leaves_this_machines_firewall() {
    use crate::facts::QueueWatch;
    let q = QueueWatch {
        first: look(0, 128),
        last: look(0, 128),
        overflows: Some(0),
        drops: Some(0),
        waited_retransmit: true,
    };
    let d = diagnose(silent_here(q.clone(), 1101, Some((0, 128))));
    assert_eq!(d.verdict, Verdict::Filtered);
    assert_eq!(ids(&d), ["silent_drop"]);
    let m = &d.findings[0].message;
    assert!(m.contains("only a firewall rule of its own"), "{m}");
    assert!(m.contains("the drop is not the program's"), "{m}");
    let cmds: Vec<&str> = d
        .steps
        .iter()
        .filter_map(|s| s.command.as_deref())
        .collect();
    assert_eq!(
        cmds,
        [
            "nft list ruleset | grep -n -w -e 22500 -e drop",
            "iptables -S; ip6tables -S"
        ]
    );
    // The deadline came before the kernel's retry: the first SYN may have met a queue full
    // for a moment; the evidence is not in.
    let d = diagnose(silent_here(
        QueueWatch {
            waited_retransmit: false,
            ..q
        },
        480,
        Some((0, 128)),
    ));
    assert_eq!(d.verdict, Verdict::Inconclusive);
    assert_eq!(ids(&d), ["out_of_time"]);
}

#[test]
fn a_first_syn_dropped_at_a_full_queue_and_the_retry_accepted_is_open_and_said() {
    use crate::facts::QueueWatch;
    let mut f = silent_here(
        QueueWatch {
            first: look(89, 100),
            last: look(0, 100),
            overflows: Some(0),
            drops: Some(0),
            waited_retransmit: true,
        },
        1012,
        Some((0, 100)),
    );
    f.addresses[0].probe.result = ConnectResult::Connected;
    let d = diagnose(f.clone());
    assert_eq!(d.verdict, Verdict::Open);
    assert_eq!(ids(&d), ["first_syn_dropped"]);
    let m = &d.findings[0].message;
    assert!(
        m.contains("the kernel's retry was accepted, 1.01 s after the first"),
        "{m}"
    );
    assert!(m.contains("python3 (pid 4242"), "{m}");
    assert!(
        m.contains("(its queue when looked at: 89 waiting, room for 100)"),
        "{m}"
    );
    // Connected quickly: nothing was dropped, nothing said.
    f.addresses[0].probe.elapsed = Duration::from_millis(30);
    assert!(diagnose(f.clone()).findings.is_empty());
}
