//! The members a MongoDB replica set and the brokers a Kafka cluster advertise
//! (`Facts::advertised`), as checked from here: the names clients connect to once the first
//! address has answered.

use std::time::Duration;

use super::advice::{Step, StepKind};
use super::context::Ctx;
use super::dns::error_words;
use super::finding::{Finding, FindingId};
use super::outcome::{AddressResult, Outcome, classify};
use super::words::{bounded, fmt_duration};
use crate::facts::{Advertised, AdvertisedMember, MemberRole};
use crate::session::protocols::{Protocol, ProtocolFacts};

/// The most characters of an advertised name quoted.
const NAME_MAX: usize = 128;

/// What reaching one advertised name from here amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reach {
    /// One of its addresses answered.
    Answers,
    /// It cannot be reached from here, and why (words).
    Fails(String),
    /// Not known: a silence shorter than a fair wait (the deadline came first).
    Unknown,
}

/// Whether `m` can be reached from here, and why not.
pub(crate) fn reach(m: &AdvertisedMember) -> Reach {
    if m.port.is_none() {
        return Reach::Fails("its port is not a port".into());
    }
    if m.host.is_empty() {
        return Reach::Fails("it names no host".into());
    }
    if let Some(e) = &m.lookup_error {
        return Reach::Fails(format!("does not resolve here: {}", error_words(e)));
    }
    if m.probes.is_empty() {
        return Reach::Fails("resolves to no address here".into());
    }
    let results: Vec<AddressResult> = m.probes.iter().map(classify).collect();
    if results.iter().any(|r| r.outcome == Outcome::Open) {
        return Reach::Answers;
    }
    // Silence counts only from a connect that itself waited the fair wait: a name that took
    // most of the window to resolve left its connect too little time to say anything.
    let fair =
        |r: &AddressResult| r.elapsed + Duration::from_millis(10) >= crate::liveness::FAIR_WAIT;
    if results
        .iter()
        .any(|r| r.outcome == Outcome::Inconclusive || (r.outcome == Outcome::Filtered && !fair(r)))
    {
        return Reach::Unknown;
    }
    let literal = m.host.parse::<std::net::IpAddr>().is_ok();
    let each: Vec<String> = results
        .iter()
        .map(|r| {
            let what = match r.outcome {
                Outcome::Closed => "refused",
                Outcome::Filtered => "silent",
                Outcome::Rejected => "rejected",
                Outcome::Unreachable => "unreachable",
                o => o.as_str(),
            };
            // A name that is an address already says where it went.
            if literal {
                format!("{what} ({})", r.describe())
            } else {
                format!("{} {what} ({})", r.address, r.describe())
            }
        })
        .collect();
    let local = results.iter().all(|r| r.address.ip().is_loopback());
    let note = if local {
        ": a loopback address is this machine itself for every client, not the server"
    } else {
        ""
    };
    Reach::Fails(format!("{}{note}", each.join("; ")))
}

fn who(a: &Advertised) -> &'static str {
    match a.protocol {
        Protocol::Kafka => "broker",
        _ => "member",
    }
}

fn role_words(m: &AdvertisedMember) -> String {
    let mut r = match m.role {
        MemberRole::Host | MemberRole::Named => String::new(),
        MemberRole::Passive => "passive member ".into(),
        MemberRole::Arbiter => "arbiter ".into(),
        MemberRole::Broker(id) => format!("broker {id} "),
    };
    if m.primary {
        r.push_str("primary ");
    }
    r
}

/// The replica set's name and this member's state, or the Kafka cluster's id, from the
/// answer of the address the names came from.
fn whose(cx: &Ctx, a: &Advertised) -> String {
    let svc = cx
        .facts
        .addresses
        .iter()
        .filter(|x| x.facts.address() == a.from)
        .find_map(|x| x.facts.session.as_ref()?.service.as_ref());
    match svc.map(|s| s.last()) {
        Some(ProtocolFacts::MongoDb(f)) => {
            let h = f.hello.as_ref();
            let set = h
                .and_then(|h| h.set_name.as_deref())
                .map_or_else(String::new, |s| format!(" \"{}\"", bounded(s, 64)));
            let state = match h.map(|h| (h.writable_primary, h.secondary, h.arbiter_only)) {
                Some((Some(true), _, _)) => "the writable primary",
                Some((_, Some(true), _)) => "a secondary (it takes no writes)",
                Some((_, _, Some(true))) => "an arbiter (it holds no data)",
                _ => "not writable",
            };
            format!(
                "MongoDB replica set{set} ({} answered: {state})",
                a.from.ip()
            )
        }
        Some(ProtocolFacts::Kafka(f)) => {
            let id = f
                .metadata
                .as_ref()
                .and_then(|m| m.cluster_id.as_deref())
                .map_or_else(String::new, |c| format!(" \"{}\"", bounded(c, 64)));
            format!("Kafka cluster{id} (asked at {})", a.from.ip())
        }
        _ => "The service".into(),
    }
}

/// The names the service advertises, and how many of them answer from here.
pub(crate) fn advertised_members(cx: &Ctx) -> Option<Finding> {
    let a = cx.facts.advertised.as_ref()?;
    let n = a.members.len();
    let reaches: Vec<Reach> = a.members.iter().map(reach).collect();
    let ok = reaches.iter().filter(|r| **r == Reach::Answers).count();
    let unknown = reaches.iter().filter(|r| **r == Reach::Unknown).count();
    let names: Vec<String> = a
        .members
        .iter()
        .map(|m| format!("{}{}", role_words(m), bounded(&m.name, NAME_MAX)))
        .collect();
    let mut text = format!(
        "{} advertises {n} {}{}: {}. From here {ok} of them {}",
        whose(cx, a),
        who(a),
        if n == 1 { "" } else { "s" },
        names.join(", "),
        if ok == 1 {
            "resolves and answers"
        } else {
            "resolve and answer"
        },
    );
    if unknown > 0 {
        text.push_str(&format!(
            "; {unknown} gave no answer in the {} left (not proof either way)",
            fmt_duration(a.waited)
        ));
    }
    if a.unchecked > 0 {
        text.push_str(&format!("; {} more not checked", a.unchecked));
    }
    text.push('.');
    Some(Finding::new(FindingId::AdvertisedMembers, text))
}

/// An advertised member or broker that does not resolve or answer from here: the first
/// connect works, the application's next ones fail.
pub(crate) fn advertised_member_unreachable(cx: &Ctx) -> Option<Finding> {
    let a = cx.facts.advertised.as_ref()?;
    let failed: Vec<String> = a
        .members
        .iter()
        .filter_map(|m| match reach(m) {
            Reach::Fails(why) => Some(format!(
                "{}\"{}\" {why}",
                role_words(m),
                bounded(&m.name, NAME_MAX)
            )),
            _ => None,
        })
        .collect();
    if failed.is_empty() {
        return None;
    }
    let server = cx.server_of(a.from.ip());
    let (what, step) = match a.protocol {
        Protocol::Kafka => (
            "Kafka clients connect to the brokers by these advertised names after their first \
             request, so producing and consuming fail from here although the first broker \
             answers",
            "On each broker named, set `advertised.listeners` (server.properties) to a name \
             or address its clients resolve and reach (not `localhost`, not a name only the \
             cluster resolves), then restart the broker.",
        ),
        _ => (
            "MongoDB drivers connect to the members by the names in the replica set's \
             configuration, so the application fails to find a primary from here although \
             this member answers",
            "On the primary, make the host names in the replica set's configuration \
             (`rs.conf()`) names that clients resolve and reach (change them with \
             `rs.reconfig()`), or add them to the clients' DNS; a client that needs only \
             this one member can connect with `directConnection=true`.",
        ),
    };
    Some(
        Finding::new(
            FindingId::AdvertisedMemberUnreachable,
            format!(
                "{}: {} advertised {} cannot be reached from here: {}. {what}.",
                a.from.ip(),
                failed.len(),
                if failed.len() == 1 {
                    who(a).to_string()
                } else {
                    format!("{}s", who(a))
                },
                failed.join("; ")
            ),
        )
        .about(a.from)
        .steps([Step::about(StepKind::PointClient, step, server)]),
    )
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use super::super::diagnose;
    use super::super::finding::FindingId;
    use crate::dns::{DnsErrorKind, LookupError};
    use crate::facts::{AddressFacts, Advertised, AdvertisedMember, Facts, MemberRole};
    use crate::probe::{ConnectResult, ProbeFact, ProbeSpec};
    use crate::services::Services;
    use crate::session::protocols::mongodb::{Hello, MongoFacts};
    use crate::session::protocols::{Ending, Protocol, ProtocolFacts};
    use crate::session::watch::First;
    use crate::session::{ServiceFacts, SessionFacts};

    fn probe(addr: &str, result: ConnectResult, ms: u64) -> ProbeFact {
        ProbeFact {
            spec: ProbeSpec::to(addr.parse().unwrap()),
            result,
            elapsed: Duration::from_millis(ms),
            icmp: None,
            local: None,
        }
    }

    fn member(
        name: &str,
        lookup: Option<DnsErrorKind>,
        probes: Vec<ProbeFact>,
    ) -> AdvertisedMember {
        let (host, port) = name.split_once(':').unwrap();
        AdvertisedMember {
            name: name.into(),
            host: host.into(),
            port: port.parse().ok(),
            role: MemberRole::Host,
            primary: false,
            me: false,
            lookup_error: lookup.map(LookupError::new),
            probes,
        }
    }

    /// `198.18.2.2:27017`, a primary of `rs0`, which named `members`.
    fn report(members: Vec<AdvertisedMember>, waited: Duration) -> super::super::Report {
        let target = crate::target::parse("198.18.2.2:27017", None, &Services::parse("")).unwrap();
        let from: SocketAddr = "198.18.2.2:27017".parse().unwrap();
        let hello = Hello {
            writable_primary: Some(true),
            secondary: Some(false),
            set_name: Some("rs0".into()),
            ..Hello::default()
        };
        let svc = ServiceFacts {
            protocol: Protocol::MongoDb,
            tls_required: false,
            user: None,
            database: None,
            local: None,
            first: ProtocolFacts::MongoDb(MongoFacts {
                hello: Some(hello),
                legacy: false,
                build_info: None,
                failure: None,
                ended: Ending::Closed,
                elapsed: Duration::from_millis(1),
            }),
            after_tls: None,
        };
        let session = SessionFacts {
            address: from,
            window: Duration::ZERO,
            accepted: None,
            waiting_for_client: None,
            not_accepted: None,
            first: First::Unwatched,
            via: None,
            tls: None,
            mss_retry: None,
            http: None,
            tls_confirm: None,
            answered: None,
            service: Some(svc),
        };
        let mut a = AddressFacts::probed(probe("198.18.2.2:27017", ConnectResult::Connected, 1));
        a.session = Some(session);
        diagnose(Facts {
            addresses: vec![a],
            advertised: Some(Advertised {
                protocol: Protocol::MongoDb,
                from,
                members,
                unchecked: 0,
                waited,
            }),
            ..Facts::new(target, Duration::from_secs(5))
        })
    }

    fn message(r: &super::super::Report, id: FindingId) -> Option<String> {
        r.findings
            .iter()
            .find(|f| f.id == id)
            .map(|f| f.message.clone())
    }

    #[test]
    fn members_that_do_not_resolve_or_refuse_are_named_with_what_happened() {
        let refused = ConnectResult::Failed {
            errno: libc::ECONNREFUSED,
        };
        let r = report(
            vec![
                member(
                    "mongo-0.lab:27017",
                    None,
                    vec![probe("198.18.2.2:27017", ConnectResult::Connected, 1)],
                ),
                member(
                    "mongo-2.svc.cluster.local:27017",
                    Some(DnsErrorKind::Nxdomain),
                    vec![],
                ),
                member(
                    "198.18.2.2:27019",
                    None,
                    vec![probe("198.18.2.2:27019", refused, 1)],
                ),
                member(
                    "localhost:27017",
                    None,
                    vec![probe("127.0.0.1:27017", refused, 0)],
                ),
            ],
            Duration::from_secs(1),
        );
        assert_eq!(r.verdict.as_str(), "open");
        let m = message(&r, FindingId::AdvertisedMemberUnreachable).unwrap();
        assert!(
            m.starts_with("198.18.2.2: 3 advertised members cannot be reached"),
            "{m}"
        );
        assert!(
            m.contains("\"mongo-2.svc.cluster.local:27017\" does not resolve here: the name does not exist (NXDOMAIN)"),
            "{m}"
        );
        assert!(m.contains("\"198.18.2.2:27019\" refused (TCP reset"), "{m}");
        assert!(
            m.contains("a loopback address is this machine itself"),
            "{m}"
        );
        assert!(!m.contains("mongo-0.lab"), "{m}");
        let f = r
            .findings
            .iter()
            .find(|f| f.id == FindingId::AdvertisedMemberUnreachable)
            .unwrap();
        assert!(f.steps[0].text.contains("rs.conf()"), "{:?}", f.steps);
        assert!(f.steps[0].text.contains("directConnection=true"));
        let info = message(&r, FindingId::AdvertisedMembers).unwrap();
        assert!(
            info.starts_with(
                "MongoDB replica set \"rs0\" (198.18.2.2 answered: the writable primary) \
                 advertises 4 members"
            ),
            "{info}"
        );
        assert!(
            info.contains("From here 1 of them resolves and answers"),
            "{info}"
        );
    }

    #[test]
    fn a_hostile_name_is_bounded_and_escaped() {
        let name = format!("evil\u{202e}\x1b[31m{}:27017", "x".repeat(500));
        let mut m = member("x:27017", Some(DnsErrorKind::Nxdomain), vec![]);
        m.name = name;
        let r = report(vec![m], Duration::from_secs(1));
        for id in [
            FindingId::AdvertisedMemberUnreachable,
            FindingId::AdvertisedMembers,
        ] {
            let text = message(&r, id).unwrap();
            assert!(
                !text.contains('\u{202e}') && !text.contains('\x1b'),
                "{text}"
            );
            assert!(!text.contains(&"x".repeat(200)), "{text}");
        }
    }

    #[test]
    fn a_silence_cut_short_by_the_deadline_is_not_called_unreachable() {
        let silent = probe("198.18.2.2:27020", ConnectResult::TimedOut, 300);
        let r = report(
            vec![member("198.18.2.2:27020", None, vec![silent.clone()])],
            Duration::from_millis(300),
        );
        assert_eq!(message(&r, FindingId::AdvertisedMemberUnreachable), None);
        let info = message(&r, FindingId::AdvertisedMembers).unwrap();
        assert!(
            info.contains("1 gave no answer in the 300 ms left"),
            "{info}"
        );
        // The whole fair wait: silent.
        let mut fair = silent;
        fair.elapsed = Duration::from_secs(1);
        let r = report(
            vec![member("198.18.2.2:27020", None, vec![fair])],
            Duration::from_secs(1),
        );
        let m = message(&r, FindingId::AdvertisedMemberUnreachable).unwrap();
        assert!(
            m.contains("\"198.18.2.2:27020\" silent (no answer in 1.00 s)"),
            "{m}"
        );
        // The window was whole, but the name took most of it to resolve: its connect waited
        // 50 ms only, too little to call the member silent.
        let mut late = probe("198.18.2.2:27020", ConnectResult::TimedOut, 50);
        late.elapsed = Duration::from_millis(50);
        let r = report(
            vec![member("db2.lab:27020", None, vec![late])],
            Duration::from_secs(1),
        );
        assert_eq!(message(&r, FindingId::AdvertisedMemberUnreachable), None);
    }
}
