//! The DNS view against in-process fake name servers (hickory-server on 127.0.0.1, random
//! ports): every response code, NODATA, a CNAME chain with TTLs, a slow server, servers that
//! disagree, a dead first server under resolv.conf's default timeout, NODATA behind a search
//! domain, unrelated answer records, truncated answers, more than three servers, and record
//! data — each through the real per-server query code and then the diagnosis.
//! No root and no outside world needed.

use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::Duration;

use crate::common;
use canreach::diagnosis::diagnose;
use canreach::dns::files::ResolvConf;
use canreach::dns::servers::{ServerView, query};
use canreach::dns::{DnsErrorKind, DnsFacts, DnsView, Lookup, LookupError};
use canreach::facts::Facts;
use canreach::services::Services;

use common::fake_dns::{Script, serve, serve_with_tcp, silent};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, CAA, CNAME, MX, NS, TXT};
use hickory_proto::rr::{Name, RData, Record};
use tokio::time::Instant;

fn a(name: &str, ttl: u32, ip: [u8; 4]) -> Record {
    Record::from_rdata(
        Name::from_str(name).unwrap(),
        ttl,
        RData::A(A(Ipv4Addr::from(ip))),
    )
}
fn cname(name: &str, ttl: u32, to: &str) -> Record {
    Record::from_rdata(
        Name::from_str(name).unwrap(),
        ttl,
        RData::CNAME(CNAME(Name::from_str(to).unwrap())),
    )
}
fn conf(timeout_ms: u64) -> ResolvConf {
    ResolvConf {
        nameservers: vec![],
        search: vec![],
        ndots: 1,
        timeout: Duration::from_millis(timeout_ms),
        attempts: 1,
    }
}
fn script(rcode: ResponseCode, records: Vec<Record>) -> Script {
    Script::new(rcode, records)
}
async fn ask(s: Script, name: &str) -> ServerView {
    let (addr, _server) = serve(s).await;
    query(
        addr,
        name,
        &conf(1000),
        Instant::now() + Duration::from_secs(3),
    )
    .await
}

fn txt(name: &str, strings: &[&[u8]]) -> Record {
    Record::from_rdata(
        Name::from_str(name).unwrap(),
        60,
        RData::TXT(TXT::from_bytes(strings.to_vec())),
    )
}
fn conf_with(timeout_ms: u64, search: &[&str], ndots: usize) -> ResolvConf {
    ResolvConf {
        search: search.iter().map(|s| s.to_string()).collect(),
        ndots,
        ..conf(timeout_ms)
    }
}

fn kind(v: &ServerView) -> Option<DnsErrorKind> {
    v.lookup.error.as_ref().map(|e| e.kind)
}

#[tokio::test]
async fn an_answer_with_its_cname_chain_and_ttls() {
    let v = ask(
        script(
            ResponseCode::NoError,
            vec![
                cname("www.test.", 300, "web.test."),
                a("web.test.", 60, [198, 18, 2, 2]),
            ],
        ),
        "www.test.",
    )
    .await;
    assert_eq!(kind(&v), None, "{v:?}");
    assert_eq!(v.lookup.addresses, vec![Ipv4Addr::new(198, 18, 2, 2)]);
    assert_eq!(v.records[0].kind, "CNAME");
    assert_eq!(
        (v.records[0].ttl, v.records[0].data.as_str()),
        (300, "web.test.")
    );
    assert!(v.records.iter().any(|r| r.kind == "A" && r.ttl == 60));
    assert!(v.port53.is_none());
}

#[tokio::test]
async fn each_response_code_is_told_apart() {
    for (rcode, expected) in [
        (ResponseCode::NXDomain, DnsErrorKind::Nxdomain),
        (ResponseCode::ServFail, DnsErrorKind::Servfail),
        (ResponseCode::Refused, DnsErrorKind::Refused),
    ] {
        let v = ask(script(rcode, vec![]), "name.test.").await;
        assert_eq!(kind(&v), Some(expected), "{rcode:?}: {v:?}");
    }
    // NOERROR with no records: the name exists, without an address (NODATA).
    let v = ask(script(ResponseCode::NoError, vec![]), "name.test.").await;
    assert_eq!(kind(&v), Some(DnsErrorKind::Nodata), "{v:?}");
}

#[tokio::test]
async fn a_slow_server_times_out_within_the_configured_timeout() {
    let slow = Script {
        delay: Duration::from_secs(2),
        ..script(
            ResponseCode::NoError,
            vec![a("x.test.", 5, [198, 18, 0, 1])],
        )
    };
    let (addr, _server) = serve(slow).await;
    let start = Instant::now();
    let v = query(
        addr,
        "x.test.",
        &conf(300),
        Instant::now() + Duration::from_secs(5),
    )
    .await;
    assert_eq!(kind(&v), Some(DnsErrorKind::Timeout), "{v:?}");
    // The configured timeout, plus the port-53 probes of the silent server.
    let took = start.elapsed();
    assert!(took < Duration::from_millis(300 + 200), "took {took:?}");
    let p = v.port53.expect("a silent server gets its port 53 probed");
    // UDP is not refused (something listens, too slowly); the fake has no TCP listener.
    assert_eq!(p.udp, canreach::dns::servers::Udp53::NoAnswer);
    let tcp = canreach::diagnosis::port53_tcp(&p.tcp);
    assert!(tcp.starts_with("closed"), "{tcp}");
}

fn facts_with(servers: Vec<ServerView>, system: Lookup) -> Facts {
    let target = canreach::target::parse("app.test", Some("443"), &Services::parse("")).unwrap();
    Facts {
        dns: DnsFacts {
            system: Some(system),
            direct: Some(DnsView::combine(&servers)),
            servers,
            resolv: None,
            hosts: vec![],
        },
        ..Facts::new(target, Duration::from_secs(5))
    }
}

#[tokio::test]
async fn disagreeing_servers_are_named_with_what_each_said() {
    let one = ask(
        script(
            ResponseCode::NoError,
            vec![a("app.test.", 60, [198, 18, 2, 2])],
        ),
        "app.test.",
    )
    .await;
    let two = ask(script(ResponseCode::NXDomain, vec![]), "app.test.").await;
    let (ip1, ip2) = (one.server.ip(), two.server.ip());
    let system_failed = Lookup {
        addresses: vec![],
        elapsed: Duration::from_millis(1),
        error: Some(LookupError {
            kind: DnsErrorKind::Nxdomain,
            detail: Some("Name or service not known".into()),
        }),
    };
    let d = diagnose(facts_with(vec![two, one], system_failed));
    // The resolver's reading: the first server's NXDOMAIN is final.
    assert_eq!(d.verdict.as_str(), "dns_error");
    assert_eq!(d.findings[0].id.as_str(), "dns_nxdomain");
    let f = d
        .findings
        .iter()
        .find(|f| f.id.as_str() == "servers_disagree")
        .expect("disagreement");
    assert!(
        f.message.contains("NXDOMAIN") && f.message.contains("198.18.2.2"),
        "{}",
        f.message
    );
    let mine = |a: &&canreach::diagnosis::PlannedStep| a.findings.contains(&f.id);
    for ip in [ip1, ip2] {
        let dig = format!("dig @{ip} app.test");
        assert!(
            d.steps
                .iter()
                .filter(mine)
                .any(|a| a.command.as_deref() == Some(&dig[..])),
            "{dig}"
        );
    }
}

/// resolv.conf's default `timeout:5` outlasts the check's deadline: each server gets its own
/// budget (half the time left), so a dead first server is named, with what the others said,
/// well before the deadline.
#[tokio::test]
async fn a_dead_first_server_with_the_default_timeout_is_named() {
    let (dead, _socket) = silent().await;
    let (alive, _server) = serve(script(
        ResponseCode::NoError,
        vec![a("app.test.", 60, [198, 18, 2, 2])],
    ))
    .await;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(2);
    let view = canreach::dns::view("app.test", conf(5000), &[dead, alive], deadline).await;
    let took = start.elapsed();
    // Half of the 2 s left, plus the port-53 probes (100 ms), plus slack: not the deadline.
    assert!(took < Duration::from_millis(1400), "took {took:?}");
    assert_eq!(kind(&view.servers[0]), Some(DnsErrorKind::Timeout));
    assert!(view.servers[0].port53.is_some(), "{:?}", view.servers[0]);
    assert_eq!(
        view.servers[1].lookup.addresses,
        vec![Ipv4Addr::new(198, 18, 2, 2)]
    );
    assert_eq!(
        view.combined.error, None,
        "the resolver's reading: the answer"
    );
    // What glibc gives applications: it is still waiting on the first server at the deadline.
    let system = Lookup {
        addresses: vec![],
        elapsed: Duration::from_secs(2),
        error: Some(LookupError {
            kind: DnsErrorKind::Timeout,
            detail: Some("Temporary failure in name resolution".into()),
        }),
    };
    let d = diagnose(facts_with(view.servers, system));
    assert_eq!(d.verdict.as_str(), "dns_error");
    let f = d
        .findings
        .iter()
        .find(|f| f.id.as_str() == "dns_timeout")
        .unwrap();
    assert!(
        f.message.contains("127.0.0.1 → no answer (port 53") && f.message.contains("198.18.2.2"),
        "{}",
        f.message
    );
    assert!(f.message.contains("first"), "{}", f.message);
}

/// glibc asks a name with enough dots as given first; its NODATA is what applications see, not
/// the NXDOMAIN of the search-expanded name tried after it.
#[tokio::test]
async fn nodata_as_given_is_not_hidden_by_a_search_domain() {
    let (addr, _server) = serve(Script::zone(vec![
        txt("txtonly.test.", &[b"hello"]),
        txt("bare.corp.test.", &[b"hi"]),
    ]))
    .await;
    let deadline = Instant::now() + Duration::from_secs(3);
    let v = query(
        addr,
        "txtonly.test",
        &conf_with(1000, &["corp.test"], 1),
        deadline,
    )
    .await;
    assert_eq!(kind(&v), Some(DnsErrorKind::Nodata), "{v:?}");
    assert_eq!(
        v.name_used, None,
        "the name as given is the one that matters"
    );
    assert_eq!(v.records[0].kind, "TXT", "{v:?}");
    // Too few dots: the search name first; its NODATA beats the NXDOMAIN of `bare.` itself, and
    // the name that matters is the search name.
    let v = query(addr, "bare", &conf_with(1000, &["corp.test"], 1), deadline).await;
    assert_eq!(kind(&v), Some(DnsErrorKind::Nodata), "{v:?}");
    assert_eq!(v.name_used.as_deref(), Some("bare.corp.test"));
    // A search name that resolves is still found.
    let (addr, _server) = serve(Script::zone(vec![a("app.corp.test.", 60, [198, 18, 2, 2])])).await;
    let v = query(addr, "app", &conf_with(1000, &["corp.test"], 1), deadline).await;
    assert_eq!(v.lookup.addresses, vec![Ipv4Addr::new(198, 18, 2, 2)]);
    assert_eq!(v.name_used.as_deref(), Some("app.corp.test"));
}

/// Only the queried name and its CNAME chain count: an unrelated A record in the answer section
/// is neither an address nor a record, and two servers that agree on the name agree.
#[tokio::test]
async fn an_unrelated_record_in_the_answer_is_ignored() {
    let honest = ask(
        script(
            ResponseCode::NoError,
            vec![
                cname("app.test.", 300, "web.test."),
                a("web.test.", 60, [198, 18, 2, 2]),
            ],
        ),
        "app.test",
    )
    .await;
    let stuffed = ask(
        script(
            ResponseCode::NoError,
            vec![
                cname("app.test.", 300, "web.test."),
                a("web.test.", 60, [198, 18, 2, 2]),
                a("other.test.", 60, [198, 18, 9, 9]),
                cname("stray.test.", 60, "web.test."),
            ],
        ),
        "app.test",
    )
    .await;
    assert_eq!(
        stuffed.lookup.addresses,
        vec![Ipv4Addr::new(198, 18, 2, 2)],
        "{stuffed:?}"
    );
    assert!(
        stuffed
            .records
            .iter()
            .all(|r| !r.name.starts_with("other") && !r.name.starts_with("stray")),
        "{:?}",
        stuffed.records
    );
    assert_eq!(stuffed.records, honest.records);
    let system = Lookup {
        addresses: vec![Ipv4Addr::new(198, 18, 2, 2).into()],
        elapsed: Duration::from_millis(1),
        error: None,
    };
    let d = diagnose(facts_with(vec![honest, stuffed], system));
    assert!(
        d.findings
            .iter()
            .all(|f| f.id.as_str() != "servers_disagree"),
        "{:?}",
        d.findings
    );
    // Only unrelated records: no data for the name.
    let v = ask(
        script(
            ResponseCode::NoError,
            vec![a("other.test.", 60, [198, 18, 9, 9])],
        ),
        "app.test",
    )
    .await;
    assert_eq!(kind(&v), Some(DnsErrorKind::Nodata), "{v:?}");
    assert!(v.lookup.addresses.is_empty());
}

/// A truncated UDP answer (TC bit) is asked again over TCP.
#[tokio::test]
async fn a_truncated_answer_is_retried_over_tcp() {
    let (addr, _server) = serve_with_tcp(Script {
        truncate_udp: true,
        ..script(
            ResponseCode::NoError,
            vec![a("big.test.", 60, [198, 18, 2, 7])],
        )
    })
    .await;
    let v = query(
        addr,
        "big.test",
        &conf(1000),
        Instant::now() + Duration::from_secs(3),
    )
    .await;
    assert_eq!(kind(&v), None, "{v:?}");
    assert_eq!(v.lookup.addresses, vec![Ipv4Addr::new(198, 18, 2, 7)]);
}

/// glibc uses the first three `nameserver` lines (MAXNS); the DNS view asks only those, and the
/// diagnosis says the others are ignored.
#[tokio::test]
async fn only_the_first_three_servers_are_asked() {
    let mut handles = Vec::new();
    let mut addrs = Vec::new();
    for rcode in [
        ResponseCode::NoError,
        ResponseCode::NoError,
        ResponseCode::NoError,
        ResponseCode::NXDomain,
    ] {
        let records = match rcode {
            ResponseCode::NoError => vec![a("app.test.", 60, [198, 18, 2, 2])],
            _ => vec![],
        };
        let (addr, server) = serve(script(rcode, records)).await;
        addrs.push(addr);
        handles.push(server);
    }
    let resolv = ResolvConf {
        nameservers: ["198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.0.4"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect(),
        ..conf(1000)
    };
    let view = canreach::dns::view(
        "app.test",
        resolv,
        &addrs,
        Instant::now() + Duration::from_secs(3),
    )
    .await;
    assert_eq!(view.servers.len(), 3);
    assert_eq!(
        view.servers.iter().map(|s| s.server).collect::<Vec<_>>(),
        addrs[..3]
    );
    let system = Lookup {
        addresses: vec![Ipv4Addr::new(198, 18, 2, 2).into()],
        elapsed: Duration::from_millis(1),
        error: None,
    };
    let mut facts = facts_with(view.servers, system);
    facts.dns.resolv = view.resolv;
    assert_eq!(
        facts.dns.ignored_servers(),
        ["198.18.0.4".parse::<std::net::IpAddr>().unwrap()]
    );
    let d = diagnose(facts);
    let f = d
        .findings
        .iter()
        .find(|f| f.id.as_str() == "extra_nameservers_ignored")
        .expect("the ignored server is named");
    assert!(f.message.contains("198.18.0.4"), "{}", f.message);
    assert!(
        d.findings
            .iter()
            .all(|f| f.id.as_str() != "servers_disagree")
    );
}

/// Record data is presentation text, not a library's Debug output; TXT keeps its bytes
/// (control characters included: the renderer escapes them), each string quoted.
#[tokio::test]
async fn record_data_is_presentation_text() {
    let name = Name::from_str("rec.test.").unwrap();
    let (addr, _server) = serve(Script::zone(vec![
        txt("rec.test.", &[b"v=1 \x1b[31mred", b"say \"hi\""]),
        Record::from_rdata(
            name.clone(),
            60,
            RData::MX(MX::new(10, Name::from_str("mail.test.").unwrap())),
        ),
        Record::from_rdata(
            name.clone(),
            60,
            RData::NS(NS(Name::from_str("ns1.test.").unwrap())),
        ),
        Record::from_rdata(
            name.clone(),
            60,
            RData::CAA(CAA::new_issue(
                false,
                Some(Name::from_str("ca.test").unwrap()),
                vec![],
            )),
        ),
    ]))
    .await;
    let v = query(
        addr,
        "rec.test.",
        &conf(1000),
        Instant::now() + Duration::from_secs(3),
    )
    .await;
    assert_eq!(kind(&v), Some(DnsErrorKind::Nodata), "{v:?}");
    assert_eq!(v.lookup.error.as_ref().unwrap().detail, None);
    let data = |k: &str| {
        v.records
            .iter()
            .find(|r| r.kind == k)
            .map(|r| r.data.clone())
            .unwrap_or_else(|| panic!("no {k} in {:?}", v.records))
    };
    assert_eq!(data("TXT"), "\"v=1 \x1b[31mred\" \"say \\\"hi\\\"\"");
    assert_eq!(data("MX"), "10 mail.test.");
    assert_eq!(data("NS"), "ns1.test.");
    assert_eq!(data("CAA"), "0 issue \"ca.test\"");
    for r in &v.records {
        assert!(
            !r.data.contains("Name(") && !r.data.contains("{") && !r.data.contains("TXT"),
            "{r:?}"
        );
    }
}

/// TCP is for truncated answers only: a server silent over UDP but answering over TCP is "no
/// answer" — hickory does not fall back to TCP on a timeout, so a dead server costs one UDP
/// timeout, not a TCP attempt on top.
#[tokio::test]
async fn a_udp_timeout_is_not_retried_over_tcp() {
    // A silent UDP socket and a TCP listener on the same port (a few tries for a free pair).
    let mut pair = None;
    for _ in 0..20 {
        let (addr, udp) = silent().await;
        if let Ok(listener) = tokio::net::TcpListener::bind(addr).await {
            pair = Some((addr, udp, listener));
            break;
        }
    }
    let (addr, _udp, listener) = pair.expect("a free UDP+TCP port pair");
    let mut server = hickory_server::Server::new(script(
        ResponseCode::NoError,
        vec![a("x.test.", 60, [198, 18, 0, 1])],
    ));
    server.register_listener(listener, Duration::from_secs(5), 4096);
    let start = Instant::now();
    let v = query(
        addr,
        "x.test.",
        &conf(300),
        Instant::now() + Duration::from_secs(3),
    )
    .await;
    assert_eq!(kind(&v), Some(DnsErrorKind::Timeout), "{v:?}");
    let took = start.elapsed();
    assert!(took < Duration::from_millis(300 + 200), "took {took:?}");
    // Its TCP port 53 is open: the port-53 probe says so.
    let tcp = canreach::diagnosis::port53_tcp(&v.port53.unwrap().tcp);
    assert!(tcp.starts_with("open"), "{tcp}");
}
