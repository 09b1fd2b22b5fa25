//! Facts in, diagnosis out: the one place where canreach's knowledge lives.
//!
//! [`diagnose`] is a pure function: it reads [`Facts`], decides what happened to each address
//! ([`classify`]), folds that into one [`Verdict`], and writes the findings and advice a person
//! acts on. No I/O happens here, so every rule is unit-tested on fixtures below. The evidence
//! behind each rule is `shared/notes/linux-probing.md`; every verdict and finding is listed
//! in `docs/verdicts.md`.

pub mod dns;
pub mod local;
pub mod silence;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Serialize;

use crate::dns::{DnsErrorKind, Lookup, LookupError};
use crate::facts::{Facts, ms};
use crate::probe::{ConnectResult, Icmp, ProbeFact};
use crate::target::{Host, Target};

/// The answer to "can I reach it?". Each has its own exit code (see [`Verdict::exit_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Open,
    Partial,
    Closed,
    Rejected,
    Filtered,
    Unreachable,
    DnsError,
}

impl Verdict {
    /// 0 only for `open`; 1 is an internal error, 2 a usage error (see `docs/verdicts.md`).
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Open => 0,
            Verdict::Partial => 3,
            Verdict::Closed => 4,
            Verdict::Rejected => 5,
            Verdict::Filtered => 6,
            Verdict::Unreachable => 7,
            Verdict::DnsError => 8,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Open => "open",
            Verdict::Partial => "partial",
            Verdict::Closed => "closed",
            Verdict::Rejected => "rejected",
            Verdict::Filtered => "filtered",
            Verdict::Unreachable => "unreachable",
            Verdict::DnsError => "dns_error",
        }
    }
}

/// What happened to one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Handshake completed.
    Open,
    /// TCP reset: nothing listens (or `reject with tcp reset`).
    Closed,
    /// A firewall's ICMP error (port-unreachable, prohibited), or this machine's own policy.
    Rejected,
    /// No answer before the deadline.
    Filtered,
    /// Host/network unreachable, or no route here.
    Unreachable,
}

impl Outcome {
    /// The outcome as a word, as in the JSON.
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Open => "open",
            Outcome::Closed => "closed",
            Outcome::Rejected => "rejected",
            Outcome::Filtered => "filtered",
            Outcome::Unreachable => "unreachable",
        }
    }

    fn verdict(self) -> Verdict {
        match self {
            Outcome::Open => Verdict::Open,
            Outcome::Closed => Verdict::Closed,
            Outcome::Rejected => Verdict::Rejected,
            Outcome::Filtered => Verdict::Filtered,
            Outcome::Unreachable => Verdict::Unreachable,
        }
    }
}

/// The specific evidence behind an [`Outcome`], precise enough to write advice from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    Handshake,
    TcpReset,
    /// ICMP port-unreachable for TCP: only a firewall sends that (a host answers with a reset).
    IcmpPortUnreachable(Icmp),
    /// ICMP administratively prohibited (v4 3/9, 3/10, 3/13; v6 1/1, 1/5, 1/6).
    IcmpProhibited(Icmp),
    IcmpHostUnreachable(Icmp),
    IcmpNetUnreachable(Icmp),
    /// Another ICMP error (TTL exceeded, fragmentation needed, …).
    IcmpOther(Icmp),
    /// `connect()` failed at once with ENETUNREACH/EHOSTUNREACH and no ICMP: no route here.
    NoRouteHere(i32),
    /// EACCES/EPERM with no ICMP: this machine's own policy refused to send.
    LocalPolicy(i32),
    /// Any other local error (EAFNOSUPPORT, EADDRNOTAVAIL, …).
    LocalError(i32),
    Silence,
}

impl Evidence {
    pub fn icmp(&self) -> Option<&Icmp> {
        match self {
            Evidence::IcmpPortUnreachable(i)
            | Evidence::IcmpProhibited(i)
            | Evidence::IcmpHostUnreachable(i)
            | Evidence::IcmpNetUnreachable(i)
            | Evidence::IcmpOther(i) => Some(i),
            _ => None,
        }
    }
}

/// Who sent an ICMP error, relative to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sender {
    /// The target address itself.
    Target,
    /// This machine: its own firewall, or its own failed neighbour (ARP/ND) lookup.
    ThisMachine,
    /// Another device: a router or firewall on the way.
    OnTheWay,
    /// The ICMP carried no sender address.
    Unknown,
}

/// One address's classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressResult {
    pub address: SocketAddr,
    pub outcome: Outcome,
    pub evidence: Evidence,
    pub elapsed: Duration,
    /// This machine's source address for the attempt.
    pub local: Option<IpAddr>,
}

impl AddressResult {
    /// Who sent the ICMP behind this result, if one did.
    pub fn sender(&self) -> Option<(Sender, Option<IpAddr>)> {
        let icmp = self.evidence.icmp()?;
        Some(match icmp.from {
            Some(ip) if ip == self.address.ip() => (Sender::Target, Some(ip)),
            Some(ip) if Some(ip) == self.local => (Sender::ThisMachine, Some(ip)),
            Some(ip) => (Sender::OnTheWay, Some(ip)),
            None => (Sender::Unknown, None),
        })
    }

    /// One line of evidence for people: "TCP reset after 0.3 ms".
    pub fn describe(&self) -> String {
        let t = fmt_duration(self.elapsed);
        let from = |i: &Icmp| match i.from {
            Some(ip) if ip == self.address.ip() => "from the host itself".to_string(),
            Some(ip) if Some(ip) == self.local => format!("from this machine ({ip})"),
            Some(ip) => format!("from {ip}"),
            None => "from an unknown sender".to_string(),
        };
        match &self.evidence {
            Evidence::Handshake => format!("connected in {t}"),
            Evidence::TcpReset => format!("TCP reset after {t}"),
            Evidence::IcmpPortUnreachable(i) => {
                format!("ICMP port-unreachable {} after {t}", from(i))
            }
            Evidence::IcmpProhibited(i) => {
                format!("ICMP administratively-prohibited {} after {t}", from(i))
            }
            Evidence::IcmpHostUnreachable(i) => {
                format!("ICMP host-unreachable {} after {t}", from(i))
            }
            Evidence::IcmpNetUnreachable(i) => {
                format!("ICMP network-unreachable {} after {t}", from(i))
            }
            Evidence::IcmpOther(i) => format!(
                "ICMP{} type {} code {} {} after {t}",
                if i.v6 { "v6" } else { "" },
                i.kind,
                i.code,
                from(i)
            ),
            Evidence::NoRouteHere(e) => {
                format!("{} at once: no route on this machine", errno_name(*e))
            }
            Evidence::LocalPolicy(e) => {
                format!("{} at once: this machine refused to send", errno_name(*e))
            }
            Evidence::LocalError(e) => format!("{} at once ({})", errno_name(*e), errno_text(*e)),
            Evidence::Silence => format!("no answer in {t}"),
        }
    }
}

/// How loud a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// One step a person can take; `command` is exact, `on` says on which machine to run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Advice {
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on: Option<String>,
}

impl Advice {
    fn say(text: impl Into<String>) -> Advice {
        Advice {
            text: text.into(),
            command: None,
            on: None,
        }
    }
    fn run(text: impl Into<String>, command: impl Into<String>, on: impl Into<String>) -> Advice {
        Advice {
            text: text.into(),
            command: Some(command.into()),
            on: Some(on.into()),
        }
    }
}

/// Something the check found, with what to do about it. `id` is stable (docs/verdicts.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub id: &'static str,
    pub severity: Severity,
    pub message: String,
    pub advice: Vec<Advice>,
}

/// The conclusion of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub verdict: Verdict,
    /// One plain sentence.
    pub summary: String,
    pub addresses: Vec<AddressResult>,
    pub findings: Vec<Finding>,
    /// Is the host of the first address up? (Only when that address was slow to answer.)
    pub liveness: Option<silence::Liveness>,
    /// Where packets go on the way to the first address (when the path was walked).
    pub path: Option<silence::Path>,
    /// Why the name gave no address (only with `dns_error`).
    pub dns_error: Option<LookupError>,
}

/// What the kernel's answer for one address means.
pub fn classify(p: &ProbeFact) -> AddressResult {
    let (outcome, evidence) = match (p.result, p.icmp) {
        (ConnectResult::Connected, _) => (Outcome::Open, Evidence::Handshake),
        // An ICMP error decides, whatever errno it was mapped to (ECONNREFUSED, EHOSTUNREACH,
        // EACCES for ICMPv6 prohibited …).
        (ConnectResult::Failed { .. }, Some(icmp)) => classify_icmp(icmp),
        (ConnectResult::Failed { errno }, None) => match errno {
            libc::ECONNREFUSED => (Outcome::Closed, Evidence::TcpReset),
            libc::ENETUNREACH | libc::EHOSTUNREACH => {
                (Outcome::Unreachable, Evidence::NoRouteHere(errno))
            }
            libc::EACCES | libc::EPERM => (Outcome::Rejected, Evidence::LocalPolicy(errno)),
            libc::ETIMEDOUT => (Outcome::Filtered, Evidence::Silence),
            _ => (Outcome::Unreachable, Evidence::LocalError(errno)),
        },
        // A late ICMP that arrived as we gave up still says more than silence.
        (ConnectResult::TimedOut, Some(icmp)) => classify_icmp(icmp),
        (ConnectResult::TimedOut, None) => (Outcome::Filtered, Evidence::Silence),
    };
    AddressResult {
        address: p.spec.address,
        outcome,
        evidence,
        elapsed: p.elapsed,
        local: p.local.map(|a| a.ip()),
    }
}

fn classify_icmp(i: Icmp) -> (Outcome, Evidence) {
    use Evidence::*;
    match (i.v6, i.kind, i.code) {
        // ICMPv4 destination unreachable.
        (false, 3, 3) | (true, 1, 4) => (Outcome::Rejected, IcmpPortUnreachable(i)),
        (false, 3, 9 | 10 | 13) | (true, 1, 1 | 5 | 6) => (Outcome::Rejected, IcmpProhibited(i)),
        (false, 3, 1 | 7) | (true, 1, 3) => (Outcome::Unreachable, IcmpHostUnreachable(i)),
        (false, 3, 0 | 6 | 11 | 12) | (true, 1, 0 | 2) => {
            (Outcome::Unreachable, IcmpNetUnreachable(i))
        }
        (false, 3, 2) => (Outcome::Rejected, IcmpProhibited(i)),
        _ => (Outcome::Unreachable, IcmpOther(i)),
    }
}

/// Fold per-address results into one verdict with findings and advice.
pub fn diagnose(facts: &Facts) -> Diagnosis {
    let addresses: Vec<AddressResult> = facts.probes.iter().map(classify).collect();
    let target = &facts.target;
    let Some(first) = addresses.first() else {
        return dns_failure(facts);
    };
    let open = addresses
        .iter()
        .filter(|a| a.outcome == Outcome::Open)
        .count();
    let verdict = if open == addresses.len() {
        Verdict::Open
    } else if open > 0 {
        Verdict::Partial
    } else {
        // When the failures disagree, the address the system tries first decides.
        first.outcome.verdict()
    };

    let mut findings = Vec::new();
    if verdict == Verdict::Partial {
        findings.push(partial_finding(target, &addresses));
    }
    // One finding per distinct failure, explained at the first address that shows it.
    let mut seen: Vec<Outcome> = Vec::new();
    for a in addresses.iter().filter(|a| a.outcome != Outcome::Open) {
        if !seen.contains(&a.outcome) {
            seen.push(a.outcome);
            let same: Vec<&AddressResult> = addresses
                .iter()
                .filter(|b| b.outcome == a.outcome)
                .collect();
            findings.extend(failure_finding(facts, a, &same));
        }
    }
    if verdict != Verdict::Partial && seen.len() > 1 {
        findings.push(disagreement_finding(first, &addresses));
    }
    let liveness = facts.silence_of(first.address).map(silence::liveness);
    let path = facts.trace.as_ref().map(silence::path);
    // Liveness and the path explain silence and undeliverable hosts; a reset or a reject
    // already proves the host (or a firewall) answered.
    if matches!(first.outcome, Outcome::Filtered | Outcome::Unreachable)
        && verdict != Verdict::Partial
    {
        findings.extend(silence::findings(facts, liveness.as_ref(), path.as_ref()));
    }
    if verdict != Verdict::Open {
        if let Some(l) = &facts.local {
            findings.extend(local::listener_findings(facts, l, &addresses));
        }
        if first.outcome != Outcome::Open {
            findings.extend(local::firewall_findings(facts, facts.local.is_some()));
        }
    }
    findings.extend(dns::view_findings(facts, &addresses));

    dedupe_advice(&mut findings);
    let summary = summarize(target, verdict, &addresses);
    Diagnosis {
        verdict,
        summary,
        addresses,
        findings,
        liveness,
        path,
        dns_error: None,
    }
}

/// Several findings can suggest the same command on the same machine (`ss -ltnp` for a closed
/// port and for a partial result): each step is kept where it first appears, so the numbered
/// list never repeats.
fn dedupe_advice(findings: &mut [Finding]) {
    // The same command on another machine is another step.
    let mut seen: Vec<(Option<String>, Option<String>, String)> = Vec::new();
    for f in findings.iter_mut() {
        f.advice.retain(|a| {
            let key = match &a.command {
                Some(c) => (Some(c.clone()), a.on.clone(), String::new()),
                None => (None, None, a.text.clone()),
            };
            let fresh = !seen.contains(&key);
            if fresh {
                seen.push(key);
            }
            fresh
        });
    }
}

fn summarize(target: &Target, verdict: Verdict, addrs: &[AddressResult]) -> String {
    let t = target.display();
    let n = addrs.len();
    let count = |o: Outcome| addrs.iter().filter(|a| a.outcome == o).count();
    match verdict {
        Verdict::Open if n == 1 => format!("{t} is open: the connection was accepted."),
        Verdict::Open => format!("{t} is open: all {n} addresses accepted the connection."),
        Verdict::Partial => format!(
            "{t} is only partly reachable: {} of {n} addresses accepted the connection.",
            count(Outcome::Open)
        ),
        Verdict::Closed => format!(
            "{t} is closed: the host answered, but nothing accepts connections on port {}.",
            target.port
        ),
        Verdict::Rejected => match addrs.first().and_then(AddressResult::sender) {
            Some((Sender::Target, _)) => {
                format!("{t} is rejected: the server's own firewall refused the connection.")
            }
            Some((Sender::ThisMachine, _)) => {
                format!(
                    "{t} is rejected: this machine's own firewall refused to send the connection."
                )
            }
            Some((Sender::OnTheWay, Some(dev))) => {
                format!("{t} is rejected: a firewall on the way, at {dev}, refused the connection.")
            }
            _ => format!("{t} is rejected: a firewall refused the connection."),
        },
        Verdict::Filtered => {
            format!("{t} is filtered: nothing answered, so something drops the packets silently.")
        }
        Verdict::Unreachable => match addrs.first().and_then(AddressResult::sender) {
            Some((Sender::ThisMachine, _)) => {
                format!("{t} is unreachable: this machine cannot find the host on its own network.")
            }
            Some((_, Some(dev))) => {
                format!("{t} is unreachable: {dev} reports that it cannot reach the host.")
            }
            _ => format!("{t} is unreachable: the host cannot be reached from here."),
        },
        Verdict::DnsError => format!("{} does not resolve to any address.", target.host),
    }
}

fn host_label(target: &Target) -> String {
    target.host.to_string()
}

fn list(addrs: &[&AddressResult]) -> String {
    addrs
        .iter()
        .map(|a| a.address.ip().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The finding for one kind of failure; `None` for an open address (nothing to explain).
fn failure_finding(facts: &Facts, a: &AddressResult, same: &[&AddressResult]) -> Option<Finding> {
    let target = &facts.target;
    let port = target.port;
    let host = host_label(target);
    let at = list(same);
    let addresses_here = facts.local.as_ref().map_or(&[][..], |l| &l.addresses[..]);
    // Loopback counts as this machine even when its interfaces were not read.
    let local = crate::local::is_local(a.address.ip(), addresses_here);
    let inspected_here = local && facts.local.is_some();
    // When this machine's firewall was read, the local findings name any rule; no need to
    // send the user looking.
    let firewall_read = facts.firewall.as_ref().is_some_and(|f| f.inspected);
    let server = if local {
        "this machine".to_string()
    } else {
        format!("the server ({host})")
    };
    Some(match a.evidence {
        Evidence::TcpReset => Finding {
            id: "port_closed",
            severity: Severity::Error,
            message: format!(
                "{at} answered port {port} with a TCP reset: the host is up, but no program \
                 listens on that port there{}.",
                // This machine's own ruleset was read and stops nothing on this port.
                if inspected_here
                    && facts
                        .firewall
                        .as_ref()
                        .is_some_and(|f| f.inspected && f.rules.is_empty())
                {
                    ""
                } else {
                    " — or a firewall imitates that with `reject with tcp reset`"
                }
            ),
            advice: [
                (!inspected_here).then(|| Advice::run(
                    "Check that the service is running and which addresses and ports it listens on",
                    format!("sudo ss -ltnp 'sport = :{port}'"),
                    &server,
                )),
                (!local).then(|| Advice::say(format!(
                    "If it listens only on 127.0.0.1 or ::1, configure it to listen on {at} (or 0.0.0.0 / ::) and restart it."
                ))),
                (!(inspected_here && firewall_read)).then(|| Advice::run(
                    "If it does listen there, look for a firewall rule that answers with a reset",
                    format!("sudo nft list ruleset | grep -n -w {port}"),
                    &server,
                )),
            ]
            .into_iter()
            .flatten()
            .collect(),
        },
        Evidence::IcmpPortUnreachable(_) | Evidence::IcmpProhibited(_)
            if matches!(a.sender(), Some((Sender::ThisMachine, _))) =>
        {
            local_policy_finding(a, port)
        }
        Evidence::IcmpPortUnreachable(_) | Evidence::IcmpProhibited(_) => {
            let (who, ip) = a.sender().unwrap_or((Sender::Unknown, None));
            let kind = if matches!(a.evidence, Evidence::IcmpPortUnreachable(_)) {
                "ICMP port-unreachable"
            } else {
                "ICMP administratively-prohibited"
            };
            let (message, advice) = match (who, ip) {
                (Sender::Target, _) => (
                    format!(
                        "The firewall on {at} itself rejected port {port} ({kind}). A host with \
                         nothing listening answers with a TCP reset, so this is a firewall rule, \
                         not a stopped service."
                    ),
                    vec![
                        Advice::run(
                            format!("Find the rule that rejects port {port}"),
                            format!("sudo nft list ruleset | grep -n -w -e {port} -e reject"),
                            &server,
                        ),
                        Advice::run(
                            "On hosts with iptables rules, look there too",
                            "sudo iptables -S; sudo ip6tables -S",
                            &server,
                        ),
                        Advice::say(format!(
                            "Allow port {port} from this machine in that firewall (or ask its owner to)."
                        )),
                    ],
                ),
                (_, sender) => {
                    let dev = sender.map_or("an unknown device".to_string(), |s| s.to_string());
                    (
                        format!(
                            "A device on the way, {dev}, rejected the connection to {at} port \
                             {port} ({kind}): a firewall between this machine and the server \
                             blocks it. The server itself was never asked."
                        ),
                        vec![
                            Advice::say(format!(
                                "Ask the team that runs {dev} (network or firewall team) to allow \
                                 TCP port {port} from this machine to {at}; send them this report."
                            )),
                            Advice::run(
                                "If you run that device, find the rule",
                                format!("sudo nft list ruleset | grep -n -w -e {port} -e reject"),
                                dev,
                            ),
                        ],
                    )
                }
            };
            Finding {
                id: if who == Sender::Target {
                    "firewall_reject_on_host"
                } else {
                    "firewall_reject_on_path"
                },
                severity: Severity::Error,
                message,
                advice,
            }
        }
        Evidence::LocalPolicy(_) => local_policy_finding(a, port),
        Evidence::IcmpHostUnreachable(_) | Evidence::IcmpNetUnreachable(_) | Evidence::IcmpOther(_) => {
            let (who, ip) = a.sender().unwrap_or((Sender::Unknown, None));
            let dev = ip.map_or("a device".to_string(), |s| s.to_string());
            let what = match a.evidence {
                Evidence::IcmpHostUnreachable(_) => "host-unreachable",
                Evidence::IcmpNetUnreachable(_) => "network-unreachable",
                _ => "an ICMP error",
            };
            let message = if who == Sender::Target {
                format!("{at} answered with ICMP {what}: a firewall there rejects the connection this way.")
            } else if who == Sender::ThisMachine {
                format!(
                    "This machine could not deliver to {at} on its own network ({what} from its \
                     own address {dev}): nothing answered its ARP/neighbour lookup, so the host is \
                     down, disconnected, or not at that address."
                )
            } else {
                format!(
                    "{dev} reported {what} for {at}: it could not deliver the connection. The \
                     host is down, its address is wrong, or a firewall at {dev} answers this way."
                )
            };
            Finding {
                id: "host_unreachable",
                severity: Severity::Error,
                message,
                advice: vec![
                    Advice::say(format!(
                        "Check that {host} is switched on and has the address {at} (a stale DNS record or a changed address gives exactly this)."
                    )),
                    Advice::run(
                        "See how far the connection gets",
                        format!("traceroute -T -p {port} {}", a.address.ip()),
                        "this machine",
                    ),
                    Advice::say(format!(
                        "If {dev} is a firewall, ask its owners whether it rejects this traffic; send them this report."
                    )),
                ],
            }
        }
        Evidence::NoRouteHere(_) => {
            let v6 = a.address.is_ipv6();
            Finding {
                id: "no_route",
                severity: Severity::Error,
                message: if v6 {
                    format!("This machine has no IPv6 route to {at}: it cannot use IPv6 to get there.")
                } else {
                    format!("This machine has no route to {at}: the packets never left.")
                },
                advice: vec![
                    Advice::run(
                        "See which route the system would use",
                        format!("ip route get {}", a.address.ip()),
                        "this machine",
                    ),
                    Advice::say(
                        "If the address is on a private network, connect the VPN or network it is on; otherwise check this machine's network settings.",
                    ),
                ],
            }
        }
        Evidence::LocalError(e) => Finding {
            id: "local_error",
            severity: Severity::Error,
            message: format!(
                "This machine could not start a connection to {at}: {} ({}).",
                errno_text(e),
                errno_name(e)
            ),
            advice: vec![Advice::say(
                "This is a problem on this machine, not the network: check its IPv4/IPv6 settings and open-file limits.",
            )],
        },
        Evidence::Silence => {
            let silence = facts.silence_of(a.address);
            let knows_liveness = silence.is_some_and(|s| s.liveness.iter().any(|(_, f)| f.is_some()));
            let walked = facts.trace.as_ref().is_some_and(|t| t.address == a.address);
            // A hop that answered a SYN to this very port proves this machine's output
            // firewall let it out.
            let left_this_machine = facts.trace.as_ref().is_some_and(|t| {
                t.address == a.address && t.hops.iter().any(|(_, f)| f.as_ref().is_some_and(|f| f.icmp.is_some()))
            });
            let mut advice = Vec::new();
            if !knows_liveness {
                advice.push(Advice::run(
                    "Check whether the host answers on another port (a reset proves it is up)",
                    format!("canreach {} 22", hostish(target, a)),
                    "this machine",
                ));
            }
            if !left_this_machine {
                advice.push(Advice::run(
                    "Rule out this machine's own firewall",
                    "sudo nft list ruleset | grep -n -A3 'hook output'",
                    "this machine",
                ));
            }
            if !walked {
                advice.push(Advice::run(
                    "See where on the path the packets stop",
                    format!("sudo traceroute -T -p {port} {}", a.address.ip()),
                    "this machine",
                ));
                advice.push(Advice::say(format!(
                    "Ask whoever runs {host}'s firewall (and the network team) whether TCP port \
                     {port} from this machine is allowed; send them this report."
                )));
            }
            Finding {
                id: "silent_drop",
                severity: Severity::Error,
                message: format!(
                    "No answer from {at} port {port} in {}: something drops the packets without \
                     a word — a firewall on the server, one on the way, or this machine's own \
                     output firewall. A stopped service would have answered with a reset.",
                    fmt_duration(a.elapsed)
                ),
                advice,
            }
        }
        Evidence::Handshake => return None,
    })
}

/// This machine refused to send: its own firewall's reject (an ICMP from its own address) or
/// a security policy (EACCES/EPERM with no ICMP).
fn local_policy_finding(a: &AddressResult, port: crate::target::Port) -> Finding {
    Finding {
        id: "local_policy_reject",
        severity: Severity::Error,
        message: format!(
            "This machine refused to send the connection to {} port {port} ({}): its own \
             firewall (OUTPUT chain) or a security policy blocks it. Nothing left this machine.",
            a.address.ip(),
            a.describe()
        ),
        advice: vec![Advice::run(
            "Look for a rule in this machine's output path",
            "sudo nft list ruleset | grep -n -B3 -w reject",
            "this machine",
        )],
    }
}

fn hostish(target: &Target, a: &AddressResult) -> String {
    match &target.host {
        Host::Name(n) => n.clone(),
        Host::Ip(_) => a.address.ip().to_string(),
    }
}

fn partial_finding(target: &Target, addrs: &[AddressResult]) -> Finding {
    let ok: Vec<&AddressResult> = addrs
        .iter()
        .filter(|a| a.outcome == Outcome::Open)
        .collect();
    let bad: Vec<&AddressResult> = addrs
        .iter()
        .filter(|a| a.outcome != Outcome::Open)
        .collect();
    let first_fails = addrs.first().is_some_and(|a| a.outcome != Outcome::Open);
    let v4_ok = ok.iter().all(|a| a.address.is_ipv4());
    let v6_bad = bad.iter().all(|a| a.address.is_ipv6());
    let localhost = matches!(&target.host, Host::Name(n) if crate::dns::is_localhost(n));
    let port = target.port;
    let mut message = format!(
        "{} accepted the connection but {} did not.",
        list(&ok),
        list(&bad)
    );
    if first_fails {
        message.push_str(
            " The failing address is the one clients try first, so many will fail or stall \
             before falling back (if they fall back at all).",
        );
    }
    let mut advice = Vec::new();
    if localhost && v4_ok && v6_bad {
        message.push_str(
            " This is the `localhost` trap: the name gives ::1 as well as 127.0.0.1, and the \
             server listens on IPv4 only.",
        );
        advice.push(Advice::say(format!(
            "Make the server listen on ::1 too (e.g. bind to `::` or list both addresses), or \
             point the client at 127.0.0.1:{port} instead of localhost."
        )));
    } else if v4_ok && v6_bad {
        message.push_str(
            " IPv4 works and IPv6 does not: the server (or its firewall) handles IPv4 only.",
        );
        advice.push(Advice::say(format!(
            "Make the service listen on IPv6 too and allow port {port} for IPv6 in its firewall, \
             or remove the AAAA record if the host is not meant to be reached over IPv6."
        )));
    } else {
        advice.push(Advice::say(
            "Every address of a name should serve the same thing: fix the failing ones, or remove \
             them from DNS.",
        ));
    }
    advice.push(Advice::run(
        "Compare the listening addresses on the server",
        format!("sudo ss -ltnp 'sport = :{port}'"),
        format!("the server ({})", target.host),
    ));
    Finding {
        id: "partial_reachability",
        severity: Severity::Warning,
        message,
        advice,
    }
}

fn disagreement_finding(first: &AddressResult, addrs: &[AddressResult]) -> Finding {
    let others: Vec<String> = addrs
        .iter()
        .skip(1)
        .filter(|a| a.outcome != first.outcome)
        .map(|a| format!("{} is {}", a.address.ip(), a.outcome.verdict().as_str()))
        .collect();
    Finding {
        id: "addresses_disagree",
        severity: Severity::Warning,
        message: format!(
            "The addresses disagree: the verdict is that of {}, which clients try first; {}.",
            first.address.ip(),
            others.join(", ")
        ),
        advice: vec![Advice::say(
            "Each address is explained above; fix them in the order clients try them.",
        )],
    }
}

fn dns_failure(facts: &Facts) -> Diagnosis {
    let error = dns_failure_of(facts.dns.system.as_ref(), facts.dns.direct.as_ref());
    Diagnosis {
        verdict: Verdict::DnsError,
        summary: summarize(&facts.target, Verdict::DnsError, &[]),
        addresses: vec![],
        findings: dns::failure_findings(facts, &error),
        liveness: None,
        path: None,
        dns_error: Some(error),
    }
}

pub(crate) fn dns_finding_id(kind: DnsErrorKind) -> &'static str {
    match kind {
        DnsErrorKind::Nxdomain => "dns_nxdomain",
        DnsErrorKind::Nodata => "dns_nodata",
        DnsErrorKind::Servfail => "dns_servfail",
        DnsErrorKind::Refused => "dns_refused",
        DnsErrorKind::Timeout => "dns_timeout",
        DnsErrorKind::NoNameservers => "dns_no_nameservers",
        DnsErrorKind::Other => "dns_failed",
    }
}

/// Why a name failed, as one error. The direct DNS view is more precise than `getaddrinfo`'s
/// `EAI_*` codes, so its kind wins when it failed too; when DNS answered but the system did not,
/// the system's own kind stands. The text is that of the view the kind came from.
pub fn dns_failure_of(sys: Option<&Lookup>, direct: Option<&Lookup>) -> LookupError {
    let d = direct.and_then(|d| d.error.as_ref());
    let s = sys.and_then(|s| s.error.as_ref());
    let chosen = match (d, s) {
        (Some(e), _) if e.kind != DnsErrorKind::Other => Some(e),
        (_, Some(e)) => Some(e),
        (d, None) => d,
    };
    chosen.cloned().unwrap_or_else(|| LookupError {
        kind: DnsErrorKind::Other,
        text: "no address".into(),
    })
}

/// "0.3 ms", "12 ms", "1.50 s".
pub fn fmt_duration(d: Duration) -> String {
    let m = ms(d);
    if m < 10.0 {
        format!("{m:.1} ms")
    } else if m < 1000.0 {
        format!("{m:.0} ms")
    } else {
        format!("{:.2} s", m / 1000.0)
    }
}

/// The symbolic name of an errno, as people search for it.
pub fn errno_name(e: i32) -> &'static str {
    match e {
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EACCES => "EACCES",
        libc::EPERM => "EPERM",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EMFILE => "EMFILE",
        libc::ENFILE => "ENFILE",
        libc::EINVAL => "EINVAL",
        _ => "error",
    }
}

/// The system's text for an errno ("Connection refused").
pub fn errno_text(e: i32) -> String {
    let s = std::io::Error::from_raw_os_error(e).to_string();
    // std appends " (os error N)"; people know the text.
    s.split(" (os error").next().unwrap_or(&s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::LookupError;
    use crate::probe::ProbeSpec;
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
        }
    }
    fn probe(addr: &str, result: ConnectResult, icmp: Option<Icmp>) -> ProbeFact {
        ProbeFact {
            spec: ProbeSpec::to(addr.parse().unwrap()),
            result,
            elapsed: Duration::from_micros(300),
            icmp,
            local: None,
        }
    }
    fn icmp4(code: u8, from: &str) -> Option<Icmp> {
        Some(Icmp {
            v6: false,
            kind: 3,
            code,
            from: Some(from.parse().unwrap()),
        })
    }
    fn facts(t: Target, probes: Vec<ProbeFact>) -> Facts {
        Facts {
            probes,
            ..Facts::new(t, Duration::from_secs(5))
        }
    }
    fn failed(e: i32) -> ConnectResult {
        ConnectResult::Failed { errno: e }
    }
    fn ids(d: &Diagnosis) -> Vec<&str> {
        d.findings.iter().map(|f| f.id).collect()
    }

    #[test]
    fn handshake_is_open_and_exits_zero() {
        let d = diagnose(&facts(
            target("198.18.0.2", 80),
            vec![probe("198.18.0.2:80", ConnectResult::Connected, None)],
        ));
        assert_eq!(d.verdict, Verdict::Open);
        assert_eq!(d.verdict.exit_code(), 0);
        assert!(d.findings.is_empty());
    }

    #[test]
    fn reset_without_icmp_is_closed() {
        let d = diagnose(&facts(
            target("198.18.0.2", 5432),
            vec![probe("198.18.0.2:5432", failed(libc::ECONNREFUSED), None)],
        ));
        assert_eq!(d.verdict, Verdict::Closed);
        assert_eq!(ids(&d), ["port_closed"]);
        assert!(d.findings[0].message.contains("reject with tcp reset"));
    }

    #[test]
    fn econnrefused_with_icmp_port_unreachable_is_a_firewall_not_closed() {
        let d = diagnose(&facts(
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
        let d = diagnose(&facts(
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
            d.addresses[0].sender(),
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
        let d = diagnose(&facts(
            target("fd00::2", 22),
            vec![probe("[fd00::2]:22", failed(libc::EACCES), icmp)],
        ));
        assert_eq!(d.verdict, Verdict::Rejected);
        assert_eq!(ids(&d), ["firewall_reject_on_host"]);
    }

    #[test]
    fn host_unreachable_from_router_is_unreachable() {
        let d = diagnose(&facts(
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
        let d = diagnose(&facts(
            target("198.19.9.9", 22),
            vec![probe("198.19.9.9:22", failed(libc::ENETUNREACH), None)],
        ));
        assert_eq!(d.verdict, Verdict::Unreachable);
        assert_eq!(ids(&d), ["no_route"]);
        assert_eq!(
            d.findings[0].advice[0].command.as_deref(),
            Some("ip route get 198.19.9.9")
        );
    }

    #[test]
    fn silence_is_filtered() {
        let d = diagnose(&facts(
            target("198.18.0.2", 5432),
            vec![probe("198.18.0.2:5432", ConnectResult::TimedOut, None)],
        ));
        assert_eq!(d.verdict, Verdict::Filtered);
        assert_eq!(d.verdict.exit_code(), 6);
        assert_eq!(ids(&d), ["silent_drop"]);
    }

    #[test]
    fn localhost_trap_is_partial_with_its_own_explanation() {
        let d = diagnose(&facts(
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
        let d = diagnose(&facts(
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

    #[test]
    fn every_verdict_has_a_distinct_exit_code() {
        let all = [
            Verdict::Open,
            Verdict::Partial,
            Verdict::Closed,
            Verdict::Rejected,
            Verdict::Filtered,
            Verdict::Unreachable,
            Verdict::DnsError,
        ];
        let mut codes: Vec<i32> = all.iter().map(|v| v.exit_code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        assert!(
            !codes.contains(&1) && !codes.contains(&2),
            "1 and 2 are errors, not verdicts"
        );
    }

    fn lookup_err(kind: DnsErrorKind) -> Option<crate::dns::Lookup> {
        Some(crate::dns::Lookup {
            addresses: vec![],
            elapsed: Duration::from_millis(3),
            error: Some(LookupError {
                kind,
                text: "x".into(),
            }),
        })
    }

    #[test]
    fn dns_failures_prefer_the_precise_direct_kind() {
        let mut f = facts(target("nosuch.example", 80), vec![]);
        f.dns.system = lookup_err(DnsErrorKind::Timeout); // EAI_AGAIN folds SERVFAIL in
        f.dns.direct = lookup_err(DnsErrorKind::Servfail);
        let d = diagnose(&f);
        assert_eq!(d.verdict, Verdict::DnsError);
        assert_eq!(d.verdict.exit_code(), 8);
        assert_eq!(ids(&d), ["dns_servfail"]);
        f.dns.direct = None;
        assert_eq!(ids(&diagnose(&f)), ["dns_timeout"]);
        f.dns.system = lookup_err(DnsErrorKind::Nxdomain);
        assert_eq!(ids(&diagnose(&f)), ["dns_nxdomain"]);
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
        assert_eq!(ids(&diagnose(&f)), ["system_differs_from_dns"]);
    }

    #[test]
    fn an_icmp_from_this_machines_own_address_is_its_own_firewall() {
        let mut p = probe(
            "198.18.2.2:5440",
            failed(libc::ECONNREFUSED),
            icmp4(3, "198.18.1.2"),
        );
        p.local = Some("198.18.1.2:40000".parse().unwrap());
        let d = diagnose(&facts(target("198.18.2.2", 5440), vec![p]));
        assert_eq!(d.verdict, Verdict::Rejected);
        assert_eq!(ids(&d), ["local_policy_reject"]);
        assert_eq!(d.addresses[0].sender().unwrap().0, Sender::ThisMachine);
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
        let d = diagnose(&facts(target("198.18.1.99", 22), vec![p]));
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
        let d = diagnose(&facts(
            target("198.18.2.2", 22),
            vec![probe("198.18.2.2:22", failed(libc::EPERM), None)],
        ));
        assert_eq!(
            (d.verdict, ids(&d)),
            (Verdict::Rejected, vec!["local_policy_reject"])
        );
        let d = diagnose(&facts(
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
            let d = diagnose(&f);
            assert_eq!(d.verdict, Verdict::DnsError);
            assert_eq!(ids(&d)[0], id, "{kind:?}");
            assert!(!d.findings[0].advice.is_empty(), "{id} gives advice");
        }
    }

    #[test]
    fn a_command_is_advised_once() {
        let d = diagnose(&facts(
            target("dual.lab", 8080),
            vec![
                probe("[fd00:2::2]:8080", failed(libc::ECONNREFUSED), None),
                probe("198.18.2.2:8080", ConnectResult::Connected, None),
            ],
        ));
        let cmds: Vec<&str> = d
            .findings
            .iter()
            .flat_map(|f| &f.advice)
            .filter_map(|a| a.command.as_deref())
            .collect();
        let mut unique = cmds.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(cmds.len(), unique.len(), "{cmds:?}");
        assert!(cmds.contains(&"sudo ss -ltnp 'sport = :8080'"));
    }
}
