//! The rules about UDP targets: an answer, a port-unreachable from the host, a reject from a
//! device on the way, an unreachable host, and silence — which for UDP never means `open`
//! and never `closed` (nmap's open|filtered), told apart as far as the control datagram and
//! this machine's socket table allow.

use std::net::{IpAddr, SocketAddr};

use super::advice::{Machine, Step, StepKind};
use super::commands::Command;
use super::context::{Ctx, list};
use super::finding::{Finding, FindingId};
use super::outcome::{AddressResult, Evidence, Outcome, Sender, Verdict};
use super::words::{bounded, fmt_duration};
use crate::facts::UdpExchange;
use crate::icmp::Meaning;
use crate::local::Listener;
use crate::probe::ConnectResult;
use crate::session::protocols::udp_payloads::{self, Answer, UdpReply, UdpService};

/// Whether the rule of `id` runs for a check over UDP (`udp`) or TCP. A UDP check gets its
/// own findings and those about the name and this machine's routes, which say the same for
/// any transport; the TCP rules (resets, SYNs, listeners, the session) say nothing true of a
/// datagram, and the UDP ones nothing of a connection.
pub(crate) fn applies(id: FindingId, udp: bool) -> bool {
    use FindingId::*;
    let own = matches!(
        id,
        UdpProgramSilent | UdpPortClosed | UdpRejected | UdpUnreachable | UdpNoAnswer | UdpAnswered
    );
    let any = matches!(
        id,
        LocalFirewallOutput
            | LocalFirewallInput
            | LocalPolicyReject
            | NoRoute
            | LocalError
            | AddressesDisagree
            | DnsNxdomain
            | DnsNodata
            | DnsServfail
            | DnsRefused
            | DnsTimeout
            | DnsNoNameservers
            | DnsFailed
            | NameOnlyInHosts
            | HostsOverride
            | SystemDiffersFromDns
            | ServersDisagree
            | ExtraNameserversIgnored
            | SearchDomainUsed
            | NdotsSearchFirst
    );
    if udp { own || any } else { !own }
}

/// The service's name as people say it, from the request sent.
fn service_name(s: Option<UdpService>) -> &'static str {
    match s {
        Some(UdpService::Dns) => "DNS",
        Some(UdpService::Mdns) => "mDNS",
        Some(UdpService::Ntp) => "NTP",
        Some(UdpService::Snmp) => "SNMP",
        Some(UdpService::Stun) => "STUN",
        Some(UdpService::NetbiosNs) => "NetBIOS name",
        Some(UdpService::Memcached) => "memcached",
        Some(UdpService::Quic) => "QUIC",
        Some(UdpService::Portmap) => "portmapper",
        Some(UdpService::Coap) => "CoAP",
        Some(UdpService::Syslog) => "syslog",
        Some(UdpService::WireGuard) => "WireGuard",
        Some(UdpService::Radius) => "RADIUS",
        Some(UdpService::Tftp) => "TFTP",
        None => "",
    }
}

/// The request in words: "a DNS query", "the --payload datagram (2 bytes)".
fn request_words(u: &UdpExchange) -> String {
    let what = match u.service {
        Some(UdpService::Dns | UdpService::Mdns) => "query",
        Some(UdpService::Ntp) => "client packet",
        Some(UdpService::Snmp) => "engine discovery request",
        Some(UdpService::Stun) => "binding request",
        Some(_) => "request",
        None if u.payload_len == 0 => return "an empty datagram".to_string(),
        None => return format!("the given datagram ({} bytes)", u.payload_len),
    };
    let name = service_name(u.service);
    // "an NTP client packet", "an SNMP …", "an mDNS query": the article goes by the sound.
    let article = if matches!(name, "NTP" | "SNMP" | "mDNS") {
        "an"
    } else {
        "a"
    };
    format!("{article} {name} {what}")
}

/// What a recognised answer says, in words.
fn answer_words(a: &Answer) -> String {
    match a {
        Answer::Dns {
            rcode,
            answers,
            truncated,
        } => {
            let code = match rcode {
                0 => "NOERROR".to_string(),
                2 => "SERVFAIL".to_string(),
                3 => "NXDOMAIN".to_string(),
                5 => "REFUSED".to_string(),
                n => format!("response code {n}"),
            };
            let t = if *truncated { ", truncated" } else { "" };
            format!("{code}, {answers} record(s){t}")
        }
        Answer::Ntp {
            version,
            stratum,
            kiss_code,
            unsynchronised,
        } => match kiss_code {
            Some(k) => format!("NTP v{version}, kiss-o'-death {}", bounded(k, 16)),
            None if *unsynchronised => format!("NTP v{version}, its clock not synchronised"),
            None => format!("NTP v{version}, stratum {stratum}"),
        },
        Answer::Snmp { .. } => "an SNMPv3 report naming its engine".to_string(),
        Answer::Stun {
            success, mapped, ..
        } => match (success, mapped) {
            (true, Some(m)) => format!("binding success; it sees this machine as {m}"),
            (true, None) => "binding success".to_string(),
            (false, _) => "a binding error".to_string(),
        },
        Answer::Netbios { rcode } => format!("NetBIOS response code {rcode}"),
        Answer::Memcached { version } => match version {
            Some(v) => format!("memcached {}", bounded(v, 64)),
            None => "memcached".to_string(),
        },
        Answer::Quic { versions } => format!("{} QUIC version(s) offered", versions.len()),
        Answer::Rpc { accepted, .. } => {
            if *accepted {
                "RPC call accepted".to_string()
            } else {
                "RPC call denied".to_string()
            }
        }
        Answer::Coap { .. } => "a CoAP reply".to_string(),
        Answer::Any { len } => format!("{len} bytes"),
    }
}

/// The addresses with a UDP exchange and their judgement.
fn udp_results<'a>(cx: &Ctx<'a>) -> impl Iterator<Item = (&'a AddressResult, &'a UdpExchange)> {
    cx.facts
        .addresses
        .iter()
        .filter_map(|a| a.facts.udp.as_ref().map(|u| (&a.result, u)))
}

/// The port answered: what, and whether it was the service's own answer.
pub(crate) fn udp_answered(cx: &Ctx) -> Option<Finding> {
    let (a, u) = udp_results(cx).find(|(a, _)| a.outcome == Outcome::Open)?;
    let port = cx.port();
    let t = fmt_duration(a.elapsed);
    let message = match &u.reply {
        Some(UdpReply::Answer(Answer::Any { len })) => format!(
            "{} UDP port {port} answered {} with a datagram of {len} bytes in {t}.",
            a.address.ip(),
            request_words(u)
        ),
        Some(UdpReply::Answer(ans)) => format!(
            "The {} service on {} UDP port {port} answered {} in {t}: {}.",
            service_name(u.service),
            a.address.ip(),
            request_words(u),
            answer_words(ans)
        ),
        _ => format!(
            "A program on {} UDP port {port} answered {} in {t}, but not as {} does: it is \
             another service, or this one in another protocol.",
            a.address.ip(),
            request_words(u),
            service_name(u.service)
        ),
    };
    let why = match &u.reply {
        Some(UdpReply::Answer(Answer::Any { .. })) | None => "the port answered".to_string(),
        Some(UdpReply::Answer(_)) => format!("the {} service answered", service_name(u.service)),
        Some(UdpReply::Foreign { .. }) => "a program answered, in another protocol".to_string(),
    };
    let first = cx.first().is_some_and(|f| f.address == a.address);
    Some(
        Finding::new(FindingId::UdpAnswered, message)
            .about(a.address)
            .explains((first && cx.verdict == Verdict::Open).then_some(why)),
    )
}

/// ICMP port-unreachable from the host itself: no program receives on the port.
pub(crate) fn udp_port_closed(cx: &Ctx) -> Option<Finding> {
    let same = cx.failed_where(|a| {
        a.outcome == Outcome::Closed
            && matches!(a.evidence, Evidence::Icmp(_) | Evidence::UdpRefused)
    });
    let a = *same.first()?;
    let port = cx.port();
    let at = list(&same);
    let message = format!(
        "{at} answered the datagram with ICMP port-unreachable: no program receives on UDP port \
         {port} there (or its own firewall rejects the port with that same answer)."
    );
    let server = cx.server_of(a.address.ip());
    let steps = [
        Step::run(
            StepKind::CheckListening,
            "Check that the service is running and which UDP port and address it uses",
            Command::SsUdp { port },
            server.clone(),
        ),
        Step::find_reject_rule(
            "If it does, look for a firewall rule that rejects the port",
            port,
            server,
        ),
    ];
    let first_closed = cx.first().is_some_and(|f| f.address == a.address);
    Some(
        Finding::new(FindingId::UdpPortClosed, message)
            .about(a.address)
            .steps(steps)
            .rules_out(&[StepKind::TracePath])
            .explains((first_closed && cx.verdict == Verdict::Closed).then_some(
                "the host answered port-unreachable: no program receives on that UDP port",
            )),
    )
}

/// A reject ICMP: from a device on the way, or a prohibited from the host's own firewall.
pub(crate) fn udp_rejected(cx: &Ctx) -> Option<Finding> {
    let same = cx.failed_where(|a| a.outcome == Outcome::Rejected && a.evidence.icmp().is_some());
    let a = *same.first()?;
    let port = cx.port();
    let at = list(&same);
    let what = a
        .evidence
        .icmp()
        .map_or("an ICMP error", |i| i.meaning().as_str());
    let (who, dev) = a.sender().unwrap_or((Sender::Unknown, None));
    let (message, why, on) = match (who, dev) {
        (Sender::Target, _) => (
            format!(
                "{at} rejected the datagram to UDP port {port} with ICMP {what}: its own \
                 firewall refuses the port."
            ),
            "the server's own firewall rejected the datagram".to_string(),
            cx.server_of(a.address.ip()),
        ),
        (Sender::ThisMachine, _) => (
            format!(
                "This machine's own firewall rejected the datagram to {at} UDP port {port} \
                 (ICMP {what} from its own address): nothing left the machine."
            ),
            "this machine's own firewall rejected the datagram".to_string(),
            Machine::This,
        ),
        (_, Some(d)) => (
            format!(
                "A device on the way, {d}, rejected the datagram to {at} UDP port {port} (ICMP \
                 {what}): a firewall between this machine and the server blocks it. The server \
                 never saw it."
            ),
            format!("a firewall on the way, at {d}, rejected the datagram"),
            Machine::Device(d),
        ),
        (_, None) => (
            format!(
                "An unknown device rejected the datagram to {at} UDP port {port} (ICMP {what})."
            ),
            "a firewall rejected the datagram".to_string(),
            cx.server_of(a.address.ip()),
        ),
    };
    let steps = [
        Step::about(
            StepKind::AskOwners,
            format!(
                "Ask the team that runs {on} to allow UDP port {port} from this machine to \
                 {at}; send them this report."
            ),
            on.clone(),
        ),
        Step::find_reject_rule("If you run that device, find the rule", port, on),
    ];
    let first = cx.first().is_some_and(|f| f.address == a.address);
    Some(
        Finding::new(FindingId::UdpRejected, message)
            .about(a.address)
            .steps(steps)
            .explains((first && cx.verdict == Verdict::Rejected).then_some(why)),
    )
}

/// Host or network unreachable, reported by a device (or this machine's own neighbour
/// lookup).
pub(crate) fn udp_unreachable(cx: &Ctx) -> Option<Finding> {
    let same = cx.failed_where(|a| {
        a.outcome == Outcome::Unreachable
            && a.evidence
                .icmp()
                .is_some_and(|i| i.meaning().undeliverable())
    });
    let a = *same.first()?;
    let at = list(&same);
    let what = a
        .evidence
        .icmp()
        .map_or(Meaning::Other, |i| i.meaning())
        .as_str();
    let from = match a.sender() {
        Some((Sender::ThisMachine, _)) => {
            "this machine (no answer to its ARP/neighbour lookup)".to_string()
        }
        Some((_, Some(ip))) => ip.to_string(),
        _ => "an unknown device".to_string(),
    };
    let message = format!(
        "{from} reported {what} for {at}: the datagram could not be delivered. The host is down, \
         its address is wrong, or a firewall answers this way."
    );
    let first = cx.first().is_some_and(|f| f.address == a.address);
    Some(
        Finding::new(FindingId::UdpUnreachable, message)
            .about(a.address)
            .steps([Step::run(
                StepKind::CheckRoute,
                "See which route the system would use",
                Command::IpRouteGet(a.address.ip()),
                Machine::This,
            )])
            .explains(
                (first && cx.verdict == Verdict::Unreachable)
                    .then(|| format!("{from} reported {what}")),
            ),
    )
}

/// The sockets of this machine bound to the port that take datagrams to `ip`.
fn holders<'a>(cx: &Ctx<'a>, ip: IpAddr) -> Vec<&'a Listener> {
    let Some(local) = cx.facts.local.as_ref() else {
        return vec![];
    };
    local
        .listeners
        .iter()
        .filter(|l| l.address == ip || l.address.is_unspecified())
        .collect()
}

/// "dnsmasq (pid 12, user nobody)", or why the owner is not known.
fn owner_words(l: &Listener) -> String {
    let user = l.user.clone().unwrap_or_else(|| format!("uid {}", l.uid));
    match &l.process {
        Some(p) => format!("{} (pid {}, user {user})", bounded(&p.name, 64), p.pid),
        None => format!("a program of {user} that this user cannot see (run as root to name it)"),
    }
}

/// A silent address of this machine whose port a program holds: it received the request and
/// did not answer.
pub(crate) fn udp_program_silent(cx: &Ctx) -> Option<Finding> {
    let (a, u) = udp_results(cx)
        .find(|(a, _)| a.evidence == Evidence::UdpSilence && cx.is_here(a.address.ip()))?;
    let held = holders(cx, a.address.ip());
    let l = *held.first()?;
    let port = cx.port();
    let unread = if l.queued > 0 {
        format!(
            " Its socket holds {} bytes it has not read: the program is not reading (hung or \
             busy).",
            l.queued
        )
    } else {
        " It read the datagrams (none wait unread) and sent nothing back: it ignores this \
         request, or answers only clients it knows."
            .to_string()
    };
    let message = format!(
        "{} holds UDP port {port} on {}, but did not answer {} ({} sent in {}).{unread}",
        owner_words(l),
        l.address,
        request_words(u),
        u.sent,
        fmt_duration(a.elapsed)
    );
    let mut steps = Vec::new();
    if let Some(p) = &l.process {
        steps.push(Step::run(
            StepKind::InspectProgram,
            "See what the program is doing",
            Command::ProcessState { pid: p.pid },
            Machine::This,
        ));
    }
    steps.push(Step::say(
        StepKind::ReadLogs,
        "Read the program's logs and configuration: which clients and requests it answers",
    ));
    let first = cx.first().is_some_and(|f| f.address == a.address);
    let why = match &l.process {
        Some(p) => format!(
            "{} (pid {}) holds the port but did not answer",
            bounded(&p.name, 64),
            p.pid
        ),
        None => "a program holds the port but did not answer".to_string(),
    };
    Some(
        Finding::new(FindingId::UdpProgramSilent, message)
            .about(a.address)
            .steps(steps)
            .rules_out(&[StepKind::TracePath, StepKind::CheckListening])
            .explains((first && cx.verdict == Verdict::Inconclusive).then_some(why)),
    )
}

/// What the control datagram says about the host, in words.
fn control_words(control: &crate::probe::ProbeFact, address: SocketAddr) -> String {
    let port = control.spec.address.port();
    let t = fmt_duration(control.elapsed);
    let r = super::outcome::classify_udp(control);
    match (r.outcome, control.result) {
        (Outcome::Closed, _) => format!(
            "The host does answer closed ports: a datagram to its UDP port {port}, where no \
             service runs, came back as port-unreachable in {t}. So port {} is not closed: a \
             firewall drops the datagrams, or a program there ignored the request.",
            address.port()
        ),
        (_, ConnectResult::Connected) => format!(
            "A datagram to its UDP port {port} was answered: the host is up and answers \
             datagrams."
        ),
        (_, ConnectResult::TimedOut) if control.icmp.is_none() => format!(
            "A datagram to its UDP port {port}, where no service runs, got no answer either: \
             the host sends no port-unreachables (or a firewall drops everything to it), so \
             its silence says nothing about port {}.",
            address.port()
        ),
        _ => format!("A datagram to its UDP port {port} got: {}.", r.describe()),
    }
}

/// Silence: no reply, no ICMP error. Never `open`, never `closed`.
pub(crate) fn udp_no_answer(cx: &Ctx) -> Option<Finding> {
    let (a, u) = udp_results(cx).find(|(a, _)| a.evidence == Evidence::UdpSilence)?;
    let port = cx.port();
    let ip = a.address.ip();
    let mut message = format!(
        "No reply and no ICMP error came back from {ip} UDP port {port}: {} sent {} time(s) in {}. \
         For UDP, silence does not tell open from filtered: a firewall may drop the datagrams, \
         or a program may receive them and not answer.",
        request_words(u),
        u.sent,
        fmt_duration(a.elapsed)
    );
    if let Some(s) = u.known_silence {
        let name =
            udp_payloads::for_port(port).map_or("This service", |e| service_name(Some(e.service)));
        message.push(' ');
        message.push_str(&match s {
            udp_payloads::Silence::NeverAnswers => {
                format!("{name} never answers anything, so silence is what it always gives.")
            }
            udp_payloads::Silence::OnlyKnownPeers => format!(
                "{name} answers only peers it knows (a key or shared secret), so silence is \
                 what it gives a stranger."
            ),
            udp_payloads::Silence::AnswersFromAnotherPort => {
                format!("{name} answers from another port, which this check does not read.")
            }
        });
    }
    let local_read = cx.is_here(ip) && cx.facts.local.is_some();
    if local_read && holders(cx, ip).is_empty() {
        message.push_str(&format!(
            " No program on this machine holds UDP port {port}, so the kernel itself would \
             have answered port-unreachable: a firewall rule of this machine drops the datagram."
        ));
    } else if let Some(c) = &u.control {
        message.push(' ');
        message.push_str(&control_words(c, a.address));
    }
    let server = cx.server_of(ip);
    let mut steps = vec![
        Step::run(
            StepKind::CheckListening,
            "Check whether a program receives on the port",
            Command::SsUdp { port },
            server.clone(),
        ),
        Step::run(
            StepKind::FindDropRule,
            "Look for a firewall rule that drops the port",
            Command::NftGrep {
                port,
                verdict: Some("drop"),
            },
            server,
        ),
    ];
    if u.service.is_none() && u.payload_len == 0 {
        steps.push(Step::say(
            StepKind::RerunLonger,
            "The port has no known request: give the service's own with --payload HEX",
        ));
    }
    let first = cx.first().is_some_and(|f| f.address == a.address);
    let program = first && !holders(cx, ip).is_empty() && cx.is_here(ip);
    Some(
        Finding::new(FindingId::UdpNoAnswer, message)
            .about(a.address)
            .steps(steps)
            .explains(
                (first && !program && cx.verdict == Verdict::Inconclusive).then_some(
                    "no reply and no error came back: the datagrams are dropped, or a program \
                 ignored them",
                ),
            ),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::diagnosis::{Verdict, diagnose};
    use crate::facts::{AddressFacts, Facts, UdpExchange};
    use crate::icmp::Icmp;
    use crate::probe::{ConnectResult, ProbeFact};
    use crate::services::Services;
    use crate::session::protocols::udp_payloads::{Answer, UdpReply, UdpService};

    fn fact(addr: &str, result: ConnectResult, icmp: Option<(u8, &str)>) -> ProbeFact {
        ProbeFact {
            icmp: icmp.map(|(code, from)| Icmp::v4(3, code, from)),
            local: Some("198.18.1.2:40000".parse().unwrap()),
            ..ProbeFact::new(addr.parse().unwrap(), result, Duration::from_millis(3))
        }
    }

    fn check(probe: ProbeFact, udp: UdpExchange) -> Facts {
        let target = crate::target::parse("udp://198.18.2.2:53", None, &Services::parse(""));
        Facts {
            addresses: vec![AddressFacts {
                udp: Some(udp),
                ..AddressFacts::probed(probe)
            }],
            ..Facts::new(target.unwrap(), Duration::from_secs(2))
        }
    }

    fn dns(sent: u32, reply: Option<UdpReply>, control: Option<ProbeFact>) -> UdpExchange {
        UdpExchange {
            service: Some(UdpService::Dns),
            known_silence: None,
            payload_len: 17,
            sent,
            reply,
            control,
        }
    }

    fn ids(r: &crate::diagnosis::Report) -> Vec<&'static str> {
        r.findings.iter().map(|f| f.id.as_str()).collect()
    }

    #[test]
    fn a_dns_answer_is_open_and_says_what_it_answered() {
        let answer = UdpReply::Answer(Answer::Dns {
            rcode: 0,
            answers: 1,
            truncated: false,
        });
        let p = fact("198.18.2.2:53", ConnectResult::Connected, None);
        let r = diagnose(check(p, dns(1, Some(answer), None)));
        assert_eq!(r.verdict, Verdict::Open);
        assert_eq!(ids(&r), ["udp_answered"]);
        assert!(r.findings[0].message.contains("NOERROR, 1 record(s)"));
        assert_eq!(
            r.summary,
            "UDP 198.18.2.2:53 is open: the DNS service answered."
        );
    }

    #[test]
    fn port_unreachable_from_the_host_is_closed_from_a_router_rejected() {
        let closed = fact(
            "198.18.2.2:53",
            ConnectResult::Failed {
                errno: libc::ECONNREFUSED,
            },
            Some((3, "198.18.2.2")),
        );
        let r = diagnose(check(closed, dns(1, None, None)));
        assert_eq!(r.verdict, Verdict::Closed);
        assert_eq!(ids(&r), ["udp_port_closed"]);
        let rejected = fact(
            "198.18.2.2:53",
            ConnectResult::Failed {
                errno: libc::ECONNREFUSED,
            },
            Some((3, "198.18.1.1")),
        );
        let r = diagnose(check(rejected, dns(1, None, None)));
        assert_eq!(r.verdict, Verdict::Rejected);
        assert_eq!(ids(&r), ["udp_rejected"]);
        assert!(
            r.findings[0]
                .message
                .contains("A device on the way, 198.18.1.1")
        );
    }

    #[test]
    fn silence_is_inconclusive_and_the_control_says_whether_the_host_answers_closed_ports() {
        let silent = fact("198.18.2.2:53", ConnectResult::TimedOut, None);
        let control = fact(
            "198.18.2.2:65533",
            ConnectResult::Failed {
                errno: libc::ECONNREFUSED,
            },
            Some((3, "198.18.2.2")),
        );
        let r = diagnose(check(silent.clone(), dns(2, None, Some(control))));
        assert_eq!(r.verdict, Verdict::Inconclusive);
        assert_eq!(ids(&r), ["udp_no_answer"]);
        let m = &r.findings[0].message;
        assert!(m.contains("a DNS query sent 2 time(s)"), "{m}");
        assert!(m.contains("The host does answer closed ports"), "{m}");
        assert!(
            r.summary.contains("no reply and no error came back"),
            "{}",
            r.summary
        );
        let quiet = fact("198.18.2.2:65533", ConnectResult::TimedOut, None);
        let r = diagnose(check(silent, dns(2, None, Some(quiet))));
        assert!(
            r.findings[0]
                .message
                .contains("the host sends no port-unreachables")
        );
    }

    #[test]
    fn a_tcp_target_gets_no_udp_finding_and_a_udp_one_no_tcp_finding() {
        use crate::diagnosis::FindingId;
        assert!(super::applies(FindingId::UdpNoAnswer, true));
        assert!(!super::applies(FindingId::UdpNoAnswer, false));
        assert!(!super::applies(FindingId::PortClosed, true));
        assert!(super::applies(FindingId::DnsNxdomain, true));
        assert!(super::applies(FindingId::PortClosed, false));
    }
}

#[cfg(test)]
mod known_silence_tests {
    use std::time::Duration;

    use crate::diagnosis::{Verdict, diagnose};
    use crate::facts::{AddressFacts, Facts, UdpExchange};
    use crate::probe::{ConnectResult, ProbeFact};
    use crate::services::Services;
    use crate::session::protocols::udp_payloads::Silence;

    #[test]
    fn a_service_that_never_answers_a_stranger_is_named_in_the_silence() {
        let target = crate::target::parse("udp://198.18.2.2:51820", None, &Services::parse(""));
        let address = "198.18.2.2:51820".parse().unwrap();
        let probe = ProbeFact::new(address, ConnectResult::TimedOut, Duration::from_secs(2));
        let facts = Facts {
            addresses: vec![AddressFacts {
                here: false,
                probe,
                silence: None,
                session: None,
                queue: None,
                udp: Some(UdpExchange {
                    service: None,
                    known_silence: Some(Silence::OnlyKnownPeers),
                    payload_len: 0,
                    sent: 2,
                    reply: None,
                    control: None,
                }),
            }],
            ..Facts::new(target.unwrap(), Duration::from_secs(2))
        };
        let r = diagnose(facts);
        assert_eq!(r.verdict, Verdict::Inconclusive);
        let m = &r.findings[0].message;
        assert_eq!(r.findings[0].id.as_str(), "udp_no_answer");
        assert!(
            m.contains("WireGuard answers only peers it knows (a key or shared secret)"),
            "{m}"
        );
    }
}
