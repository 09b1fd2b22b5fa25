//! One JSON report per verdict, from hand-built facts (no network, every duration fixed),
//! compared with a reviewed snapshot (`insta`): what a script reads for each verdict shows in
//! review when it changes. The table must cover `Verdict::ALL`, and each fixture must come out
//! as the verdict it stands for.

use std::time::Duration;

use super::tests::{fact, render, target};
use crate::diagnosis::{Verdict, diagnose};
use crate::dns::{DnsErrorKind, Lookup, LookupError};
use crate::facts::{AddressFacts, Facts};
use crate::probe::ConnectResult;
use crate::session::SessionFacts;
use crate::session::stage::MssRetry;
use crate::session::tls::{CertFacts, TlsFacts, TlsFailure, TlsVersion};
use crate::session::watch::First;

fn failed(errno: i32) -> ConnectResult {
    ConnectResult::Failed { errno }
}

/// One address's facts, its probe `result` after `us` µs (with an ICMP `(type, code, from)`).
fn probed(
    addr: &str,
    result: ConnectResult,
    us: u64,
    icmp: Option<(u8, u8, &str)>,
) -> AddressFacts {
    AddressFacts::probed(fact(addr, result, us, icmp))
}

/// A check of `target` (`"host port"`) over `addresses`, that took `ms` in all.
fn check(target_: &str, addresses: Vec<AddressFacts>, ms: u64) -> Facts {
    Facts {
        addresses,
        elapsed: Duration::from_millis(ms),
        ..Facts::new(target(target_), Duration::from_secs(5))
    }
}

/// The system resolver's answer for a name: `addresses` after 2 ms.
fn resolved(mut f: Facts, addresses: &[&str]) -> Facts {
    f.dns.system = Some(Lookup {
        addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
        elapsed: Duration::from_millis(2),
        error: None,
    });
    f
}

/// A connected address whose session is `session` (accepted after 0.3 ms).
fn connected(addr: &str, edit: impl FnOnce(&mut SessionFacts)) -> AddressFacts {
    let mut a = probed(addr, ConnectResult::Connected, 400, None);
    let mut s = SessionFacts {
        accepted: Some(Duration::from_micros(300)),
        ..SessionFacts::new(
            addr.parse().unwrap(),
            Duration::from_millis(8),
            First::Unwatched,
        )
    };
    edit(&mut s);
    a.session = Some(s);
    a
}

/// A certificate for `name`, issued by a private CA, valid 2024–2034.
fn cert(name: &str) -> CertFacts {
    CertFacts {
        subject: format!("CN={name}"),
        issuer: "CN=Example Private CA".into(),
        dns_names: vec![name.to_string()],
        ip_addresses: vec![],
        not_before: 1_704_067_200,
        not_after: 2_019_686_400,
        sha256: [0x5a; 32],
        self_signed: false,
        is_ca: false,
        parse_error: None,
    }
}

/// A TLS handshake with `app.example` that took `ms`, ending in `failure` (`None`: done,
/// TLS 1.3).
fn tls(ms: u64, chain: Vec<CertFacts>, failure: Option<TlsFailure>) -> TlsFacts {
    TlsFacts {
        version: failure.is_none().then_some(TlsVersion::Tls13),
        chain,
        failure,
        ..TlsFacts::new("app.example".into(), Duration::from_millis(ms), 140)
    }
}

/// Each verdict with the facts that give it.
fn fixtures() -> Vec<(Verdict, Facts)> {
    let refused = failed(libc::ECONNREFUSED);
    vec![
        (
            Verdict::Open,
            check(
                "198.18.2.2 5432",
                vec![probed(
                    "198.18.2.2:5432",
                    ConnectResult::Connected,
                    350,
                    None,
                )],
                9,
            ),
        ),
        (
            Verdict::Partial,
            resolved(
                check(
                    "db.example 5432",
                    vec![
                        probed("[fd00:2::2]:5432", refused, 300, None),
                        probed("198.18.2.2:5432", ConnectResult::Connected, 350, None),
                    ],
                    12,
                ),
                &["fd00:2::2", "198.18.2.2"],
            ),
        ),
        (
            Verdict::Closed,
            check(
                "198.18.2.2 5432",
                vec![probed("198.18.2.2:5432", refused, 310, None)],
                2,
            ),
        ),
        (
            Verdict::Rejected,
            check(
                "198.18.2.2 5432",
                vec![probed(
                    "198.18.2.2:5432",
                    failed(libc::EHOSTUNREACH),
                    310,
                    Some((3, 13, "198.18.1.1")),
                )],
                2,
            ),
        ),
        (
            Verdict::Filtered,
            check(
                "198.18.2.2 5432",
                vec![probed(
                    "198.18.2.2:5432",
                    ConnectResult::TimedOut,
                    4_000_000,
                    None,
                )],
                4_010,
            ),
        ),
        (
            Verdict::Unreachable,
            check(
                "198.18.2.99 22",
                vec![probed(
                    "198.18.2.99:22",
                    failed(libc::EHOSTUNREACH),
                    3_050_000,
                    Some((3, 1, "198.18.1.1")),
                )],
                3_060,
            ),
        ),
        (Verdict::DnsError, {
            let mut f = check("nosuch.example 443", vec![], 25);
            f.dns.system = Some(Lookup {
                addresses: vec![],
                elapsed: Duration::from_millis(24),
                error: Some(LookupError::new(DnsErrorKind::Nxdomain)),
            });
            f
        }),
        (Verdict::Inconclusive, {
            // The name took 4.9 s of the 5 s deadline; the probe had 0.1 ms left.
            let mut f = check(
                "app.example 443",
                vec![probed("198.18.2.2:443", ConnectResult::TimedOut, 100, None)],
                5_000,
            );
            f.dns.system = Some(Lookup {
                addresses: vec!["198.18.2.2".parse().unwrap()],
                elapsed: Duration::from_millis(4_900),
                error: None,
            });
            f
        }),
        (
            Verdict::ServiceError,
            check(
                "198.18.2.2 5432",
                vec![connected("198.18.2.2:5432", |s| s.first = First::Closed)],
                10,
            ),
        ),
        (
            Verdict::TlsError,
            resolved(
                check(
                    "app.example 443",
                    vec![connected("198.18.2.2:443", |s| {
                        s.tls = Some(tls(
                            4,
                            vec![cert("other.example")],
                            Some(TlsFailure::WrongName {
                                presented: vec!["other.example".into()],
                            }),
                        ));
                    })],
                    15,
                ),
                &["198.18.2.2"],
            ),
        ),
        (
            Verdict::MtuBlackhole,
            resolved(
                check(
                    "app.example 443",
                    vec![connected("198.18.2.2:443", |s| {
                        // Nothing of the server's handshake in 3 s; a connection asking for
                        // 1200-byte segments, opened after 1 s, got the whole of it in 30 ms.
                        s.tls = Some(tls(3_000, vec![], Some(TlsFailure::NoReply)));
                        s.mss_retry = Some(MssRetry {
                            mss: 1200,
                            opened: Duration::from_millis(1_000),
                            connect_error: None,
                            tls: Some(tls(30, vec![cert("app.example")], None)),
                        });
                    })],
                    3_020,
                ),
                &["198.18.2.2"],
            ),
        ),
    ]
}

#[test]
fn one_json_snapshot_per_verdict() {
    let fixtures = fixtures();
    for v in Verdict::ALL {
        assert!(
            fixtures.iter().any(|(f, _)| *f == v),
            "no fixture for the verdict {}",
            v.as_str()
        );
    }
    for (verdict, facts) in fixtures {
        let got = diagnose(facts.clone()).verdict;
        assert_eq!(got, verdict, "the {} fixture", verdict.as_str());
        let json = render(&facts, true);
        insta::assert_snapshot!(format!("json_verdict_{}", verdict.as_str()), json);
    }
}
