//! The rules about what happened after the connect (program, proxy, TLS, HTTP, MTU), on
//! fixtures: facts in, verdict, findings and summary out.

use super::diagnose;
use super::finding::FindingId;
use super::outcome::Outcome;
use super::tls::mismatch_words;
use crate::facts::ProxyRoute;
use crate::facts::{AddressFacts, DirectPath, Facts};
use crate::probe::{ConnectResult, ProbeFact};
use crate::services::Services;
use crate::session::http::HttpFailure;
use crate::session::http::{HttpFacts, Method, parse_response};
use crate::session::proxy::ProxyChoice;
use crate::session::proxy::{ConnectFacts, proxy_for};
use crate::session::stage::MssRetry;
use crate::session::status::StatusSet;
use crate::session::tls::TlsVersion;
use crate::session::tls::{Incompatible, TlsFacts, TlsFailure};
use crate::session::watch::First;
use crate::session::{SessionFacts, ViaProxy};
use std::time::Duration;

fn probe(addr: &str, result: ConnectResult) -> ProbeFact {
    let elapsed = if result == ConnectResult::TimedOut {
        Duration::from_secs(1)
    } else {
        Duration::from_micros(300)
    };
    ProbeFact::new(addr.parse().unwrap(), result, elapsed)
}

fn response(raw: &[u8]) -> crate::session::http::HttpResponse {
    parse_response(raw).unwrap().unwrap().0
}

fn session(via: Option<ViaProxy>, http: Option<HttpFacts>) -> SessionFacts {
    let address = "198.18.0.8:3128".parse().unwrap();
    SessionFacts {
        via,
        http,
        ..SessionFacts::new(address, Duration::from_millis(8), First::Silent)
    }
}

fn tunnel(raw: &[u8]) -> Option<ViaProxy> {
    Some(ViaProxy::Tunnel(Box::new(ConnectFacts {
        authority: "api.example:443".into(),
        response: Some(response(raw)),
        leftover: vec![],
        failure: None,
        elapsed: Duration::from_millis(2),
    })))
}

/// `https://api.example/` through `proxy.corp:3128` (198.18.0.8), whose session is `s`;
/// the direct path got `direct`.
fn through(s: SessionFacts, direct: ConnectResult) -> Facts {
    let target = crate::target::parse("https://api.example/", None, &Services::parse("")).unwrap();
    let env = |k: &str| (k == "https_proxy").then(|| "http://u:pw@proxy.corp:3128".into());
    let choice = proxy_for("https", "api.example", 443, &env);
    let ProxyChoice::Proxy(p) = choice.clone() else {
        panic!("{choice:?}")
    };
    let endpoint = crate::target::parse("proxy.corp:3128", None, &Services::parse("")).unwrap();
    Facts {
        addresses: vec![AddressFacts {
            session: Some(s),
            ..AddressFacts::probed(probe("198.18.0.8:3128", ConnectResult::Connected))
        }],
        proxy: Some(choice),
        via: Some(ProxyRoute {
            proxy: p,
            endpoint,
            direct: DirectPath {
                lookup_error: None,
                probes: vec![probe("198.18.0.9:443", direct)],
                waited: Duration::from_secs(1),
            },
        }),
        ..Facts::new(target, Duration::from_secs(5))
    }
}

fn ids(f: &Facts) -> (Outcome, Vec<&'static str>, String) {
    let d = diagnose(f.clone());
    (
        d.facts.addresses[0].result.outcome,
        d.findings.iter().map(|f| f.id.as_str()).collect(),
        d.findings
            .iter()
            .map(|f| f.message.clone())
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

#[test]
fn a_proxy_refusal_is_a_service_error_naming_the_proxy() {
    let refused = ConnectResult::Failed {
        errno: libc::ECONNREFUSED,
    };
    let cases: [(&[u8], &str, &str); 4] = [
        (
            b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Negotiate\r\n\r\n",
            "proxy_auth_required",
            "Negotiate",
        ),
        (
            b"HTTP/1.1 403 Forbidden\r\n\r\n",
            "proxy_forbidden",
            "403 Forbidden",
        ),
        (
            b"HTTP/1.1 504 Gateway Timeout\r\n\r\n",
            "proxy_upstream_failed",
            "504 Gateway Timeout",
        ),
        (
            b"HTTP/1.1 405 Method Not Allowed\r\n\r\n",
            "proxy_connect_failed",
            "405 Method Not Allowed",
        ),
    ];
    for (raw, id, words) in cases {
        let f = through(session(tunnel(raw), None), refused);
        let (outcome, found, text) = ids(&f);
        assert_eq!(outcome, Outcome::ServiceError, "{id}");
        assert!(found.contains(&id), "{id}: {found:?}");
        assert!(found.contains(&"direct_path"), "{found:?}");
        assert!(!found.contains(&"http_client_error"), "{found:?}");
        assert!(
            text.contains("proxy.corp:3128 (from https_proxy)"),
            "{text}"
        );
        assert!(text.contains(words), "{text}");
        assert!(!text.contains("pw"), "{text}");
        let d = diagnose(f.clone());
        assert_eq!(d.verdict, crate::diagnosis::Verdict::ServiceError);
        assert!(
            d.summary.contains("which does not open the way"),
            "{}",
            d.summary
        );
    }
}

#[test]
fn a_forwarded_407_is_the_proxy_not_the_server() {
    let h = HttpFacts {
        method: Method::Head,
        head_status: None,
        response: Some(response(
            b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n",
        )),
        failure: None,
        elapsed: Duration::from_millis(1),
    };
    let f = through(
        session(Some(ViaProxy::Forward), Some(h)),
        ConnectResult::Connected,
    );
    let (outcome, found, _) = ids(&f);
    assert_eq!(outcome, Outcome::ServiceError);
    assert!(found.contains(&"proxy_auth_required"), "{found:?}");
    assert!(!found.contains(&"http_client_error"), "{found:?}");
}

#[test]
fn an_open_tunnel_leaves_the_verdict_to_the_destination_and_says_the_direct_path() {
    let h = HttpFacts {
        method: Method::Head,
        head_status: None,
        response: Some(response(b"HTTP/1.1 200 OK\r\n\r\n")),
        failure: None,
        elapsed: Duration::from_millis(1),
    };
    let mut s = session(
        tunnel(b"HTTP/1.1 200 Connection established\r\n\r\n"),
        Some(h),
    );
    s.tls = Some(TlsFacts {
        version: Some(TlsVersion::Tls13),
        ..TlsFacts::new("api.example".into(), Duration::from_millis(3), 1)
    });
    // A silent direct path does not change an open verdict.
    let f = through(s, ConnectResult::TimedOut);
    let d = diagnose(f.clone());
    assert_eq!(d.verdict, crate::diagnosis::Verdict::Open);
    let direct = d
        .findings
        .iter()
        .find(|f| f.id == FindingId::DirectPath)
        .unwrap();
    assert!(
        direct.message.contains("198.18.0.9 filtered"),
        "{}",
        direct.message
    );
    assert!(
        d.summary.contains("api.example:443 is open"),
        "{}",
        d.summary
    );
    let applies = d
        .findings
        .iter()
        .find(|f| f.id == FindingId::ProxyApplies)
        .unwrap();
    assert!(
        applies.message.contains("CONNECT tunnel"),
        "{}",
        applies.message
    );
    // The proxy was checked already: no step to check it again.
    assert!(applies.steps.is_empty());
}

#[test]
fn expects_tls_is_confirmed_or_not_by_the_second_connection() {
    let target = crate::target::parse("http://h.test:8443/", None, &Services::parse("")).unwrap();
    let h = HttpFacts {
        method: Method::Head,
        head_status: None,
        response: None,
        failure: Some(HttpFailure::ExpectsTls {
            first_bytes: vec![0x15, 0x03, 0x03, 0, 2, 2, 0x28],
        }),
        elapsed: Duration::from_millis(1),
    };
    let confirm = |failure: Option<TlsFailure>, version: Option<TlsVersion>| TlsFacts {
        version,
        failure,
        ..TlsFacts::new("h.test".into(), Duration::from_millis(3), 1)
    };
    let facts_with = |c: TlsFacts| {
        let mut s = session(None, Some(h.clone()));
        s.tls_confirm = Some(c);
        Facts {
            addresses: vec![AddressFacts {
                session: Some(s),
                ..AddressFacts::probed(probe("198.18.0.7:8443", ConnectResult::Connected))
            }],
            ..Facts::new(target.clone(), Duration::from_secs(5))
        }
    };
    let yes = facts_with(confirm(None, Some(TlsVersion::Tls13)));
    let (_, found, text) = ids(&yes);
    assert!(found.contains(&"expects_tls"));
    assert!(
        text.contains("Confirmed") && text.contains("TLS 1.3"),
        "{text}"
    );
    assert!(text.contains("https://h.test:8443/"), "{text}");
    let no = facts_with(confirm(
        Some(TlsFailure::NotTls {
            first_bytes: b"SSH-2.0-x".to_vec(),
        }),
        None,
    ));
    let (_, _, text) = ids(&no);
    assert!(text.contains("only looked like TLS"), "{text}");
    assert!(text.contains("SSH-2.0-x"), "{text}");
}

#[test]
fn tls_error_findings_name_who_fixes_it() {
    use crate::session::tls::TlsAlert;
    assert!(
        mismatch_words(Some(TlsAlert(70)), None)
            .starts_with("The server ended the handshake: it does not speak a TLS version")
    );
    assert!(mismatch_words(Some(TlsAlert(70)), None).contains("alert protocol_version"));
    assert!(
        mismatch_words(None, Some(Incompatible::CipherSuite))
            .starts_with("The server and this client share no cipher suite.")
    );
}

fn tls_facts(elapsed_ms: u64, failure: Option<TlsFailure>, crossed: bool) -> TlsFacts {
    TlsFacts {
        version: crossed.then_some(TlsVersion::Tls13),
        failure,
        first_answer: crossed.then(|| Duration::from_millis(elapsed_ms)),
        ..TlsFacts::new("h.test".into(), Duration::from_millis(elapsed_ms), 1)
    }
}

/// A TLS check of `address` whose session is `s`.
fn tls_check(address: &str, s: SessionFacts) -> Facts {
    let target = crate::target::parse("h.test:443", None, &Services::parse("")).unwrap();
    Facts {
        addresses: vec![AddressFacts {
            probe: probe(address, ConnectResult::Connected),
            silence: None,
            here: false,
            queue: None,
            udp: None,
            session: Some(SessionFacts {
                address: address.parse().unwrap(),
                ..s
            }),
        }],
        ..Facts::new(target, Duration::from_secs(5))
    }
}

fn with_retry(first: TlsFacts, opened_ms: u64, second: TlsFacts) -> SessionFacts {
    let mut s = session(None, None);
    s.tls = Some(first);
    s.mss_retry = Some(MssRetry {
        mss: 1200,
        opened: Duration::from_millis(opened_ms),
        connect_error: None,
        tls: Some(second),
    });
    s
}

fn segments(advmss: u32, out_of_order: Option<u32>) -> crate::sys::TcpSegments {
    crate::sys::TcpSegments {
        advmss,
        pmtu: 1500,
        bytes_received: 0,
        data_segs_in: out_of_order.unwrap_or(0),
        out_of_order,
        retransmitted: 0,
        unacked: 0,
    }
}

#[test]
fn a_black_hole_needs_all_of_its_evidence() {
    let silent = || {
        let mut t = tls_facts(1010, Some(TlsFailure::NoReply), false);
        t.given_up = Some(segments(1448, Some(1)));
        t
    };
    // All of it: the small one came through while the first, opened earlier, waited.
    let proven = with_retry(silent(), 1000, tls_facts(7, None, true));
    let (outcome, found, text) = ids(&tls_check("198.18.2.2:443", proven.clone()));
    assert_eq!(outcome, Outcome::MtuBlackhole, "{text}");
    assert!(found.contains(&"mtu_blackhole"), "{found:?}");
    assert!(text.contains("while the first still had nothing"), "{text}");
    assert!(text.contains("1 later segment(s)"), "{text}");

    // The retry came through only after the first had given up: not the same wait.
    let late = with_retry(silent(), 1000, tls_facts(300, None, true));
    let (outcome, found, text) = ids(&tls_check("198.18.2.2:443", late));
    assert_eq!(outcome, Outcome::ServiceError, "{text}");
    assert!(!found.contains(&"mtu_blackhole"), "{found:?}");
    assert!(text.contains("some connections and not others"), "{text}");

    // Loopback: no narrower link can be on the way.
    let (outcome, _, _) = ids(&tls_check("127.0.0.1:443", proven.clone()));
    assert_eq!(outcome, Outcome::ServiceError);

    // The first connection did not allow larger segments than the retry's.
    let mut narrow = proven.clone();
    narrow.tls.as_mut().unwrap().given_up = Some(segments(1188, None));
    let (outcome, _, _) = ids(&tls_check("198.18.2.2:443", narrow));
    assert_eq!(outcome, Outcome::ServiceError);

    // The retry got nothing either: no reply, and said so.
    let both = with_retry(
        silent(),
        1000,
        tls_facts(3000, Some(TlsFailure::NoReply), false),
    );
    let (outcome, found, text) = ids(&tls_check("198.18.2.2:443", both));
    assert_eq!(outcome, Outcome::ServiceError);
    assert!(found.contains(&"no_reply"), "{found:?}");
    assert!(text.contains("got nothing either"), "{text}");
}

#[test]
fn a_stall_is_a_begun_answer_and_a_late_one_is_slow() {
    let mut stalled = session(None, None);
    let mut t = tls_facts(2000, Some(TlsFailure::Stalled { received: 21 }), false);
    t.first_answer = Some(Duration::from_micros(400));
    stalled.tls = Some(t);
    let f = tls_check("127.0.0.1:443", stalled);
    let (outcome, _, text) = ids(&f);
    assert_eq!(outcome, Outcome::ServiceError);
    assert!(
        text.contains("began its answer to the TLS ClientHello (21 bytes"),
        "{text}"
    );
    assert!(!text.contains("nothing came back"), "{text}");
    assert!(
        diagnose(f.clone())
            .summary
            .contains("it begins its answer, then stops")
    );

    let mut slow = session(None, None);
    slow.tls = Some(tls_facts(1300, None, true));
    let (outcome, found, text) = ids(&tls_check("198.18.2.2:443", slow));
    assert_eq!(outcome, Outcome::Open);
    assert!(found.contains(&"slow_handshake"), "{found:?}");
    assert!(text.contains("only after 1.30 s"), "{text}");
    let mut quick = session(None, None);
    quick.tls = Some(tls_facts(20, None, true));
    let (_, found, _) = ids(&tls_check("198.18.2.2:443", quick));
    assert!(!found.contains(&"slow_handshake"), "{found:?}");
}

#[test]
fn http_statuses_against_what_is_expected() {
    let answered = |raw: &[u8], expect: Option<&str>| {
        let h = HttpFacts {
            method: Method::Head,
            head_status: None,
            response: Some(response(raw)),
            failure: None,
            elapsed: Duration::from_millis(1),
        };
        let target = crate::target::parse("http://h.test/x", None, &Services::parse("")).unwrap();
        let f = Facts {
            addresses: vec![AddressFacts {
                session: Some(session(None, Some(h))),
                ..AddressFacts::probed(probe("198.18.0.7:80", ConnectResult::Connected))
            }],
            expect_status: expect.map(|e| StatusSet::parse(e).unwrap()),
            ..Facts::new(target, Duration::from_secs(5))
        };
        ids(&f)
    };
    let (o, found, text) = answered(b"HTTP/1.1 404 Not Found\r\n\r\n", None);
    assert_eq!(o, Outcome::ServiceError);
    assert!(found.contains(&"http_client_error"), "{found:?}");
    assert!(text.contains("--expect-status 404"), "{text}");
    let (o, found, _) = answered(b"HTTP/1.1 404 Not Found\r\n\r\n", Some("404"));
    assert_eq!(o, Outcome::Open);
    assert!(!found.contains(&"http_client_error"), "{found:?}");
    let (o, found, _) = answered(b"HTTP/1.1 200 OK\r\n\r\n", Some("404"));
    assert_eq!(o, Outcome::ServiceError);
    assert!(found.contains(&"http_unexpected_status"), "{found:?}");
    let (o, found, text) = answered(
        b"HTTP/1.1 301 Moved\r\nLocation: //u:pw@elsewhere.test/y?secret=s\r\n\r\n",
        None,
    );
    assert_eq!(o, Outcome::Open);
    assert!(found.contains(&"http_redirect"), "{found:?}");
    assert!(
        text.contains("http://u:***@elsewhere.test/y?secret=***"),
        "{text}"
    );
    let (o, _, text) = answered(
        b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n",
        None,
    );
    assert_eq!(o, Outcome::ServiceError);
    assert!(
        text.contains("HTTP proxy (or has one in front) that wants credentials"),
        "{text}"
    );
    let (o, _, _) = answered(b"HTTP/1.1 503 Busy\r\n\r\n", Some("5xx"));
    assert_eq!(o, Outcome::Open);
}
