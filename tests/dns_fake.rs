//! The DNS view against in-process fake name servers (hickory-server on 127.0.0.1, random
//! ports): every response code, NODATA, a CNAME chain with TTLs, a slow server, and servers
//! that disagree — each through the real per-server query code and then the diagnosis.
//! No root and no outside world needed.

use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::Duration;

use canreach::diagnosis::diagnose;
use canreach::dns::files::ResolvConf;
use canreach::dns::servers::{ServerView, query};
use canreach::dns::{DnsErrorKind, DnsFacts, DnsView, Lookup, LookupError};
use canreach::facts::Facts;
use canreach::services::Services;
mod common;

use common::fake_dns::{Script, serve};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, CNAME};
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
    Script {
        rcode,
        records,
        delay: Duration::ZERO,
    }
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
    let tcp = canreach::diagnosis::dns::port53_tcp(&p.tcp);
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
    let d = diagnose(&facts_with(vec![two, one], system_failed));
    // The resolver's reading: the first server's NXDOMAIN is final.
    assert_eq!(d.verdict.as_str(), "dns_error");
    assert_eq!(d.findings[0].id, "dns_nxdomain");
    let f = d
        .findings
        .iter()
        .find(|f| f.id == "servers_disagree")
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
