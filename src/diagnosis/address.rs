//! Findings from what the kernel said for each address: a reset, a firewall's reject (and
//! whose), a device that could not deliver, no route here, a local error, silence; and how
//! several addresses of one name compare.
//!
//! Each function is one finding: it looks for its own evidence among the addresses and explains
//! every address that shows it, at once.

use super::advice::{Machine, Step, StepKind};
use super::commands::Command;
use super::context::Ctx;
use super::context::{host_or, list};
use super::finding::{Finding, FindingId};
use super::outcome::{AddressResult, Evidence, Outcome, Sender, Verdict};
use super::words::{errno_name, errno_text, fmt_duration};
use crate::icmp::Meaning;

/// A firewall's reject by ICMP: a reject message, or an unreachable one that `judge` found to
/// be a firewall's (far too fast, and the host answers on other ports).
fn is_reject(a: &AddressResult) -> bool {
    a.evidence.icmp().is_some() && a.outcome == Outcome::Rejected
}

/// An unreachable message judged a reject: "host unreachable" sent in 0.3 ms for a live host.
fn forged_unreachable(a: &AddressResult) -> bool {
    is_reject(a)
        && a.evidence
            .icmp()
            .is_some_and(|i| i.meaning().undeliverable())
}

fn sender(a: &AddressResult) -> Sender {
    a.sender().map_or(Sender::Unknown, |s| s.0)
}

/// A TCP reset: nothing listens there, or a firewall imitates that.
pub(crate) fn port_closed(cx: &Ctx) -> Option<Finding> {
    let same = cx.failed_where(|a| a.evidence == Evidence::TcpReset);
    let a = *same.first()?;
    let port = cx.port();
    let at = list(&same);
    let local = cx.is_here(a.address.ip());
    let inspected_here = local && cx.facts.local.is_some();
    let firewall_read = cx.facts.firewall.as_ref().is_some_and(|f| f.inspected);
    // This machine's own ruleset was read and stops nothing on this port: no forged reset.
    let no_rule_here = inspected_here
        && cx
            .facts
            .firewall
            .as_ref()
            .is_some_and(|f| f.inspected && f.rules.is_empty());
    let server = cx.server_of(a.address.ip());
    let mut steps = Vec::new();
    if !inspected_here {
        steps.push(Step::run(
            StepKind::CheckListening,
            "Check that the service is running and which addresses and ports it listens on",
            Command::SsListening { port },
            server.clone(),
        ));
    }
    if !local {
        steps.push(Step::about(
            StepKind::ListenAddress,
            format!(
                "If it listens only on 127.0.0.1 or ::1, configure it to listen on {at} (or on \
                 all addresses) and restart it."
            ),
            server.clone(),
        ));
    }
    if !(inspected_here && firewall_read) {
        steps.push(Step::run(
            StepKind::FindResetRule,
            "If it does listen there, look for a firewall rule that answers with a reset",
            Command::NftGrep {
                port,
                verdict: None,
            },
            server,
        ));
    }
    Some(
        Finding::new(
            FindingId::PortClosed,
            format!(
                "{at} answered port {port} with a TCP reset: the host is up, but no program \
                 listens on that port there{}.",
                if no_rule_here {
                    ""
                } else {
                    " — or a firewall imitates that with `reject with tcp reset`"
                }
            ),
        )
        .about(a.address)
        .steps(steps),
    )
}

/// The kernel connected the socket to itself: the port is in this machine's range of source
/// ports, nothing listens on it, and the connect was handed that very port as its source, so
/// the SYN met the socket that sent it (TCP's "simultaneous open"). A connection, but to no
/// server: the port is closed. (Reproduced by `tests/it/lab_truth_local.rs`, in a namespace
/// whose only source port is the one dialled.)
pub(crate) fn connected_to_itself(cx: &Ctx) -> Option<Finding> {
    let same = cx.failed_where(|a| a.evidence == Evidence::ConnectedToItself);
    let a = *same.first()?;
    let port = cx.port();
    Some(
        Finding::new(
            FindingId::ConnectedToItself,
            format!(
                "The connection to {} port {port} went from port {port} to port {port} of the \
                 same address: the kernel connected canreach's socket to itself. That happens \
                 when nothing listens on a port that lies in this machine's range of source \
                 ports and a connection is given that very port as its source. No program \
                 answered: the port is closed.",
                list(&same)
            ),
        )
        .about(a.address)
        .explains(
            (cx.verdict == Verdict::Closed
                && cx
                    .first()
                    .is_some_and(|f| f.evidence == Evidence::ConnectedToItself))
            .then_some(
                "nothing listens there; the connection that seemed to succeed was canreach's own \
                 socket, connected to itself by the kernel",
            ),
        )
        .steps([
            source_port_range(),
            Step::about(
                StepKind::CheckLocalSettings,
                format!(
                    "Give the server meant for port {port} a port outside that range, or keep \
                     this one out of it (net.ipv4.ip_local_reserved_ports): a client that \
                     retries the port while its server is down can end up connected to itself \
                     the same way, and believe it is connected."
                ),
                Machine::This,
            ),
        ])
        // No packet left this machine, nothing forged a reset: no rule to hunt, no path.
        .rules_out(&[
            StepKind::FindResetRule,
            StepKind::FindDropRule,
            StepKind::TracePath,
            StepKind::TryOtherPort,
            StepKind::AskOwners,
        ]),
    )
}

fn reject_kind(a: &AddressResult) -> String {
    match a.evidence.icmp().map(|i| i.meaning()) {
        Some(Meaning::PortUnreachable) => "ICMP port-unreachable".into(),
        Some(m) if forged_unreachable(a) => format!(
            "ICMP {} after {} — far sooner than a failed address lookup takes (about 3 s) — \
             while the host answers on other ports",
            m.as_str(),
            fmt_duration(a.elapsed)
        ),
        _ => "ICMP administratively-prohibited".into(),
    }
}

/// The target's own firewall rejected the port with an ICMP error.
pub(crate) fn firewall_reject_on_host(cx: &Ctx) -> Option<Finding> {
    let same = cx.failed_where(|a| is_reject(a) && sender(a) == Sender::Target);
    let a = *same.first()?;
    let port = cx.port();
    let at = list(&same);
    let server = cx.server_of(a.address.ip());
    Some(
        Finding::new(
            FindingId::FirewallRejectOnHost,
            format!(
                "The firewall on {at} itself rejected port {port} ({}). A host with nothing \
                 listening answers with a TCP reset, so this is a firewall rule, not a stopped \
                 service.",
                reject_kind(a)
            ),
        )
        .about(a.address)
        .explains(
            (cx.verdict == Verdict::Rejected
                && cx
                    .first()
                    .is_some_and(|f| is_reject(f) && sender(f) == Sender::Target))
            .then_some("the server's own firewall refused the connection"),
        )
        .steps([
            Step::find_reject_rule(
                format!("Find the rule that rejects port {port}"),
                port,
                server.clone(),
            ),
            Step::run(
                StepKind::FindRejectRule,
                "On hosts with iptables rules, look there too",
                Command::IptablesRules,
                server.clone(),
            ),
            Step::about(
                StepKind::AllowPort,
                format!(
                    "Allow port {port} from this machine in that firewall (or ask its owner to)."
                ),
                server,
            ),
        ])
        .rules_out(&[StepKind::TracePath, StepKind::TryOtherPort]),
    )
}

/// A device on the way rejected the connection with an ICMP error.
pub(crate) fn firewall_reject_on_path(cx: &Ctx) -> Option<Finding> {
    let same = cx
        .failed_where(|a| is_reject(a) && matches!(sender(a), Sender::OnTheWay | Sender::Unknown));
    let a = *same.first()?;
    let port = cx.port();
    let at = list(&same);
    let dev = a.sender().and_then(|s| s.1);
    let dev_words = dev.map_or("an unknown device".to_string(), |d| d.to_string());
    let ask = format!(
        "Ask the team that runs {dev_words} (network or firewall team) to allow TCP port {port} \
         from this machine to {at}; send them this report."
    );
    let mut steps = vec![match dev {
        Some(d) => Step::about(StepKind::AskOwners, ask, Machine::Device(d)),
        None => Step::say(StepKind::AskOwners, ask),
    }];
    if let Some(d) = dev {
        steps.push(Step::find_reject_rule(
            "If you run that device, find the rule",
            port,
            Machine::Device(d),
        ));
    }
    Some(
        Finding::new(
            FindingId::FirewallRejectOnPath,
            format!(
                "A device on the way, {dev_words}, rejected the connection to {at} port {port} \
                 ({}): a firewall between this machine and the server blocks it. The server \
                 itself was never asked.",
                reject_kind(a)
            ),
        )
        .about(a.address)
        .explains(match cx.first().and_then(AddressResult::sender) {
            Some((Sender::OnTheWay, Some(dev))) if cx.verdict == Verdict::Rejected => Some(
                format!("a firewall on the way, at {dev}, refused the connection"),
            ),
            _ => None,
        })
        .steps(steps)
        .rules_out(&[StepKind::TracePath]),
    )
}

/// The reject came only for the kernel's retransmitted SYN: the first SYN went unanswered
/// (checks just before this one had spent the sender's ICMP budget), and the check waited for
/// the retransmission instead of calling the silence a drop.
pub(crate) fn icmp_rate_limited(cx: &Ctx) -> Option<Finding> {
    let a = cx.failed_first().filter(|a| is_reject(a))?;
    // The host had answered on other ports while this port stayed silent through the second
    // SYN's bound, and the check was waiting for the retransmission when the reject came. (A
    // reject that is merely late — a first SYN held up by neighbour discovery, with the
    // other ports' answers as late — is not this.)
    let waited = cx
        .facts
        .silence_of(a.address)
        .is_some_and(|s| s.retransmit_wait.is_some());
    if !waited || a.elapsed < crate::liveness::FIRST_RETRANSMISSION {
        return None;
    }
    let dev = match a.sender() {
        Some((Sender::Target, _)) => format!("the host {}", a.address.ip()),
        Some((_, Some(d))) => d.to_string(),
        _ => "the device that rejected it".to_string(),
    };
    Some(
        Finding::new(
            FindingId::IcmpRateLimited,
            format!(
                "The first SYN to {} port {} got no answer; the kernel's retransmission got the \
                 reject from {dev}, {} after the first. {dev} limits the ICMP errors it sends \
                 to one machine (about six at once, then one a second), and checks run just \
                 before this one had spent them: a check run right after others meets silence \
                 where this reject belongs, so canreach waits for the retransmission before \
                 calling silence a drop.",
                a.address.ip(),
                cx.port(),
                fmt_duration(a.elapsed)
            ),
        )
        .about(a.address),
    )
}

/// This machine refused to send: its own firewall's reject (an ICMP from its own address) or a
/// security policy (EACCES/EPERM with no ICMP).
pub(crate) fn local_policy_reject(cx: &Ctx) -> Option<Finding> {
    let same = cx.failed_where(AddressResult::rejected_by_this_machine);
    let a = *same.first()?;
    let what = if cx.checked().transport.is_udp() {
        "the datagram"
    } else {
        "the connection"
    };
    Some(
        Finding::new(
            FindingId::LocalPolicyReject,
            format!(
                "This machine refused to send {what} to {} port {} ({}): its own firewall \
                 (OUTPUT chain) or a security policy blocks it. Nothing left this machine.",
                list(&same),
                cx.port(),
                a.describe()
            ),
        )
        .about(a.address)
        .explains(
            (cx.verdict == Verdict::Rejected
                && cx
                    .first()
                    .is_some_and(AddressResult::rejected_by_this_machine))
            .then(|| format!("this machine's own firewall refused to send {what}")),
        )
        .steps([Step::run(
            StepKind::CheckLocalOutput,
            "Look for a rule in this machine's output path",
            Command::NftRejectRules,
            Machine::This,
        )])
        .rules_out(&[StepKind::TracePath, StepKind::AskOwners]),
    )
}

/// A device (or this machine's own neighbour lookup) could not deliver to the address.
pub(crate) fn host_unreachable(cx: &Ctx) -> Option<Finding> {
    let same =
        cx.failed_where(|a| a.evidence.icmp().is_some() && a.outcome == Outcome::Unreachable);
    let a = *same.first()?;
    let at = list(&same);
    let port = cx.port();
    let host = cx.checked().host.to_string();
    let (who, ip) = a.sender().unwrap_or((Sender::Unknown, None));
    let dev = ip.map_or("a device".to_string(), |s| s.to_string());
    let what = match a.evidence.icmp().map(|i| i.meaning()) {
        Some(m @ (Meaning::HostUnreachable | Meaning::NetUnreachable)) => m.as_str(),
        _ => "an ICMP error",
    };
    let message = match who {
        Sender::Target => format!(
            "{at} answered with ICMP {what}: a firewall there rejects the connection this way."
        ),
        Sender::ThisMachine => format!(
            "This machine could not deliver to {at} on its own network ({what} from its own \
             address {dev}): nothing answered its ARP/neighbour lookup, so the host is down, \
             disconnected, or not at that address."
        ),
        _ => format!(
            "{dev} reported {what} for {at}: it could not deliver the connection. The host is \
             down, its address is wrong, or a firewall at {dev} answers this way."
        ),
    };
    let mut steps = vec![
        Step::about(
            StepKind::CheckHostUp,
            format!(
                "Check that {host} is switched on and has the address {at} (a stale DNS record or \
                 a changed address gives exactly this)."
            ),
            cx.server_of(a.address.ip()),
        ),
        Step::run(
            StepKind::TracePath,
            "See how far the connection gets",
            Command::Traceroute {
                port,
                address: a.address.ip(),
            },
            Machine::This,
        ),
    ];
    if let (Sender::OnTheWay, Some(d)) = (who, ip) {
        steps.push(Step::about(
            StepKind::AskOwners,
            format!(
                "If {dev} is a firewall, ask its owners whether it rejects this traffic; send \
                 them this report."
            ),
            Machine::Device(d),
        ));
    }
    Some(
        Finding::new(FindingId::HostUnreachable, message)
            .about(a.address)
            .steps(steps)
            .explains(unreachable_why(cx)),
    )
}

/// Why the first address is unreachable, when a device (or this machine's own neighbour
/// lookup) said so.
fn unreachable_why(cx: &Ctx) -> Option<String> {
    let first = cx
        .first()
        .filter(|f| cx.verdict == Verdict::Unreachable && f.evidence.icmp().is_some())?;
    match first.sender()? {
        (Sender::ThisMachine, _) => {
            Some("this machine cannot find the host on its own network".into())
        }
        (_, Some(dev)) => Some(format!("{dev} reports that it cannot reach the host")),
        _ => None,
    }
}

/// No route on this machine.
pub(crate) fn no_route(cx: &Ctx) -> Option<Finding> {
    let same = cx.failed_where(|a| matches!(a.evidence, Evidence::NoRouteHere(_)));
    let a = *same.first()?;
    let at = list(&same);
    Some(
        Finding::new(
            FindingId::NoRoute,
            if a.address.is_ipv6() {
                format!("This machine has no IPv6 route to {at}: it cannot use IPv6 to get there.")
            } else {
                format!("This machine has no route to {at}: the packets never left.")
            },
        )
        .about(a.address)
        .steps([
            Step::run(
                StepKind::CheckRoute,
                "See which route the system would use",
                Command::IpRouteGet(a.address.ip()),
                Machine::This,
            ),
            Step::say(
                StepKind::ConnectNetwork,
                "If the address is on a private network, connect the VPN or network it is on; \
                 otherwise check this machine's network settings.",
            ),
        ])
        .rules_out(&[StepKind::TracePath, StepKind::AskOwners]),
    )
}

/// Any other local error at `connect()`.
pub(crate) fn local_error(cx: &Ctx) -> Option<Finding> {
    let same = cx.failed_where(|a| matches!(a.evidence, Evidence::LocalError(_)));
    let a = *same.first()?;
    let Evidence::LocalError(e) = a.evidence else {
        return None;
    };
    let first_is_it = cx.verdict == Verdict::Inconclusive
        && cx
            .first()
            .is_some_and(|f| matches!(f.evidence, Evidence::LocalError(_)));
    let finding = if e == libc::EADDRNOTAVAIL && a.local.is_none() {
        no_source_address(&same, a.address.is_ipv6(), first_is_it)
    } else if e == libc::EADDRNOTAVAIL {
        // The kernel found no free source port: every port of the range is held by another
        // connection (or kept out of it). Nothing was sent; the target was not asked.
        Finding::new(
            FindingId::LocalError,
            format!(
                "This machine could not start a connection to {}: it has no free local port \
                 to connect from (EADDRNOTAVAIL). Every port of its range of source ports is \
                 in use by other connections. Nothing was sent: this says nothing about the \
                 target.",
                list(&same)
            ),
        )
        .explains(first_is_it.then_some("this machine had no free local port for the check"))
        .steps([
            source_port_range(),
            Step::run(
                StepKind::CheckLocalSettings,
                "Count the connections holding them; close the ones not needed or widen the \
                 range",
                Command::SsSummary,
                Machine::This,
            ),
        ])
    } else {
        Finding::new(
            FindingId::LocalError,
            format!(
                "This machine could not start a connection to {}: {} ({}).",
                list(&same),
                errno_text(e),
                errno_name(e)
            ),
        )
        .explains(first_is_it.then_some("this machine could not open a socket for the check"))
        .steps([Step::say(
            StepKind::CheckLocalSettings,
            "This is a problem on this machine, not the network: check its IPv4/IPv6 settings \
             and open-file limits.",
        )])
    };
    Some(finding.about(a.address))
}

/// EADDRNOTAVAIL with no address the kernel would send from (the probe asked it on a UDP
/// socket): this machine has no address of that family to connect from (IPv6 disabled while
/// the name gives `::1`, an address still tentative), not a lack of source ports.
fn no_source_address(same: &[&AddressResult], v6: bool, first_is_it: bool) -> Finding {
    let (family, other) = if v6 { ("IPv6", "-4") } else { ("IPv4", "-6") };
    Finding::new(
        FindingId::LocalError,
        format!(
            "This machine could not start a connection to {}: it has no {family} address to \
             connect from (EADDRNOTAVAIL). Nothing was sent: this says nothing about the \
             target.",
            list(same)
        ),
    )
    .explains(first_is_it.then_some(if v6 {
        "this machine has no IPv6 address to connect from"
    } else {
        "this machine has no IPv4 address to connect from"
    }))
    .steps([
        Step::run(
            StepKind::CheckLocalSettings,
            format!(
                "See this machine's {family} addresses (none, or only tentative ones, is the \
                 cause)"
            ),
            Command::IpAddresses { v6 },
            Machine::This,
        ),
        Step::say(
            StepKind::CheckLocalSettings,
            format!(
                "If {family} is off on purpose, check the {other} address of the target \
                 (canreach {other}) or make the name give one."
            ),
        ),
    ])
}

/// Nothing answered: something drops the packets.
pub(crate) fn silent_drop(cx: &Ctx) -> Option<Finding> {
    // A listener here with a full accept queue explains its silence (listener_not_accepting).
    let same = cx.failed_where(|a| {
        a.evidence == Evidence::Silence
            && a.outcome == Outcome::Filtered
            && !super::local::full_queue_for(cx, a.address.ip())
    });
    let a = *same.first()?;
    let port = cx.port();
    if cx.is_here(a.address.ip()) {
        return Some(silent_drop_here(cx, &same));
    }
    let target = cx.checked();
    let host = target.host.to_string();
    let walked = cx.path.is_some_and(|p| p.address == a.address);
    Some(
        Finding::new(
            FindingId::SilentDrop,
            format!(
                "No answer from {} port {port} in {}: something drops the packets without a word \
                 — a firewall on the server, one on the way, or this machine's own output \
                 firewall. A stopped service would have answered with a reset.",
                list(&same),
                fmt_duration(a.elapsed)
            ),
        )
        .about(a.address)
        .steps([
            Step::run(
                StepKind::TryOtherPort,
                "Check whether the host answers on another port (a reset proves it is up)",
                Command::CanreachPort {
                    host: host_or(target, a.address.ip()),
                    port: if port == 22 { 443 } else { 22 },
                },
                Machine::This,
            ),
            Step::run(
                StepKind::CheckLocalOutput,
                "Rule out this machine's own firewall",
                Command::NftOutputChains,
                Machine::This,
            ),
            Step::run(
                StepKind::TracePath,
                "See where on the path the packets stop",
                Command::Traceroute {
                    port,
                    address: a.address.ip(),
                },
                Machine::This,
            ),
        ])
        .steps((!walked).then(|| {
            Step::about(
                StepKind::AskOwners,
                format!(
                    "Ask whoever runs {host}'s firewall (and the network team) whether TCP port \
                     {port} from this machine is allowed; send them this report."
                ),
                cx.server_of(a.address.ip()),
            )
        })),
    )
}

/// Silence from an address of this machine: no path, no other team. A SYN to it is answered
/// in microseconds — by the listener, or with a reset when none listens — unless this
/// machine's own firewall drops it, or the listener's accept queue is full (which
/// `listener_not_accepting` says when the queue was seen full or drops were counted; here it
/// had room and none was counted).
fn silent_drop_here(cx: &Ctx, same: &[&AddressResult]) -> Finding {
    let a = same[0];
    let port = cx.port();
    let listened = cx.facts.addresses.iter().any(|f| {
        f.result.address == a.address && f.facts.queue.as_ref().is_some_and(|q| q.first.is_some())
    });
    let why = if listened {
        " A program listens there with room in its accept queue, and no connection attempt was \
         counted as dropped at a full queue meanwhile: the drop is not the program's."
    } else {
        " Nothing listening would have answered with a reset."
    };
    Finding::new(
        FindingId::SilentDrop,
        format!(
            "No answer from {} port {port} in {}: on this machine only a firewall rule of its \
             own (nftables, iptables — also the legacy backend, which canreach does not read — \
             or another packet filter) drops a connection without a word.{why}",
            list(same),
            fmt_duration(a.elapsed)
        ),
    )
    .about(a.address)
    .steps([
        Step::run(
            StepKind::FindDropRule,
            "Look for the rule in this machine's firewall",
            Command::NftGrep {
                port,
                verdict: Some("drop"),
            },
            Machine::This,
        ),
        Step::run(
            StepKind::FindDropRule,
            "On machines with iptables rules, look there too",
            Command::IptablesRules,
            Machine::This,
        ),
    ])
    // This machine is the far end: no path to walk, no other host or team to ask.
    .rules_out(&[
        StepKind::TracePath,
        StepKind::TryOtherPort,
        StepKind::AskOwners,
    ])
}

/// Some addresses of the name accepted, some did not.
pub(crate) fn partial_reachability(cx: &Ctx) -> Option<Finding> {
    if cx.verdict != Verdict::Partial {
        return None;
    }
    let ok: Vec<&AddressResult> = cx
        .results()
        .filter(|a| a.outcome == Outcome::Open)
        .collect();
    let bad: Vec<&AddressResult> = cx
        .results()
        .filter(|a| a.outcome != Outcome::Open)
        .collect();
    let port = cx.port();
    let server = bad
        .first()
        .map_or(Machine::Server(cx.checked().host.to_string()), |a| {
            cx.server_of(a.address.ip())
        });
    let mut message = format!(
        "{} accepted the connection but {} did not.",
        list(&ok),
        list(&bad)
    );
    if cx.failed_first().is_some() {
        message.push_str(
            " The failing address is the one clients try first, so many will fail or stall \
             before falling back (if they fall back at all).",
        );
    }
    let v4_only = ok.iter().all(|a| a.address.is_ipv4()) && bad.iter().all(|a| a.address.is_ipv6());
    let (why, mut steps) = which_addresses_fail(cx, v4_only, &server);
    message.push_str(why);
    // On this machine the listeners are in the report already.
    if !(server == Machine::This && cx.facts.local.is_some()) {
        steps.push(Step::run(
            StepKind::CheckListening,
            "Compare the listening addresses on the server",
            Command::SsListening { port },
            server,
        ));
    }
    Some(Finding::new(FindingId::PartialReachability, message).steps(steps))
}

/// What the failing addresses have in common, and what to do: `localhost`'s ::1 unserved,
/// IPv6 unserved, or just some addresses.
fn which_addresses_fail(cx: &Ctx, v4_only: bool, server: &Machine) -> (&'static str, Vec<Step>) {
    let port = cx.port();
    let localhost =
        matches!(&cx.checked().host, crate::target::Host::Name(n) if crate::dns::is_localhost(n));
    match (localhost, v4_only) {
        (true, true) => (
            " This is the `localhost` trap: the name gives ::1 as well as 127.0.0.1, and the \
             server listens on IPv4 only.",
            vec![
                Step::about(
                    StepKind::ListenAddress,
                    "Make the server listen on ::1 too: bind it to `::` (IPv6 and IPv4 at once) \
                     or list both 127.0.0.1 and ::1.",
                    server.clone(),
                ),
                Step::about(
                    StepKind::PointClient,
                    format!("Or point the client at 127.0.0.1:{port} instead of localhost."),
                    Machine::This,
                ),
            ],
        ),
        (false, true) => (
            " IPv4 works and IPv6 does not: the server (or its firewall) handles IPv4 only.",
            vec![Step::about(
                StepKind::ListenAddress,
                format!(
                    "Make the service listen on IPv6 too and allow port {port} for IPv6 in its \
                     firewall, or remove the AAAA record if the host is not meant to be reached \
                     over IPv6."
                ),
                server.clone(),
            )],
        ),
        (_, false) => (
            "",
            vec![Step::say(
                StepKind::FixAddresses,
                "Every address of a name should serve the same thing: fix the failing ones, or \
                 remove them from DNS.",
            )],
        ),
    }
}

/// No address is open and their failures differ: the verdict follows the first.
pub(crate) fn addresses_disagree(cx: &Ctx) -> Option<Finding> {
    let first = cx.failed_first()?;
    if cx.verdict == Verdict::Partial {
        return None;
    }
    let others: Vec<String> = cx
        .results()
        .skip(1)
        .filter(|a| a.outcome != first.outcome)
        .map(|a| format!("{} is {}", a.address.ip(), a.outcome.verdict().as_str()))
        .collect();
    if others.is_empty() {
        return None;
    }
    Some(
        Finding::new(
            FindingId::AddressesDisagree,
            format!(
                "The addresses disagree: the verdict is that of {}, which clients try first; {}.",
                first.address.ip(),
                others.join(", ")
            ),
        )
        .steps([Step::say(
            StepKind::FixAddresses,
            "Each address is explained above; fix them in the order clients try them.",
        )]),
    )
}

/// A silent probe that could not wait long enough for its silence to mean anything.
pub(crate) fn out_of_time(cx: &Ctx) -> Option<Finding> {
    // (A connection the program had not taken when the deadline came is inconclusive too:
    // `program_not_accepting` says so; a socket this machine could not open: `local_error`.)
    let same =
        cx.failed_where(|a| a.outcome == Outcome::Inconclusive && a.evidence == Evidence::Silence);
    let a = *same.first()?;
    let facts = cx.facts;
    let deadline = fmt_duration(facts.timeout);
    let ate = match facts.dns.system.as_ref().map(|s| s.elapsed) {
        Some(name) if name * 4 >= facts.timeout => format!(
            "looking up the name took {} of the {deadline} deadline",
            fmt_duration(name)
        ),
        _ => format!("the deadline ({deadline}) is shorter than a fair wait"),
    };
    let input = &cx.checked().input;
    Some(
        Finding::new(
            FindingId::OutOfTime,
            format!(
                "The check ran out of time before the evidence was in: {ate}, so the probe of \
                 {} could wait only {} for an answer. Silence is called a drop only after {} \
                 (or sooner, when other ports of the host prove it up); this says nothing about \
                 the port yet.",
                list(&same),
                fmt_duration(a.elapsed),
                fmt_duration(crate::liveness::FAIR_WAIT)
            ),
        )
        .about(a.address)
        .steps([Step::run(
            StepKind::RerunLonger,
            "Check again with a longer deadline",
            Command::Canreach {
                options: "--timeout 10s",
                args: input.clone(),
            },
            Machine::This,
        )])
        .rules_out(&[StepKind::TracePath, StepKind::TryOtherPort]),
    )
}

/// The step that shows this machine's range of source ports.
fn source_port_range() -> Step {
    Step::run(
        StepKind::CheckLocalSettings,
        "See the range of source ports this machine hands out",
        Command::SysctlPortRange,
        Machine::This,
    )
}
