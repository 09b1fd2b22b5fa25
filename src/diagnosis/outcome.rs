//! What the kernel's answer for one address means: its [`Outcome`] and the [`Evidence`]
//! behind it ([`classify`]), who sent an ICMP error ([`Sender`]), and the [`Verdict`] the
//! outcomes add up to.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::words::{errno_name, errno_text, fmt_duration};
use crate::icmp::Icmp;
use crate::probe::{ConnectResult, ProbeFact};

/// The answer to "can I reach it?". Each has its own exit code (`crate::exit_codes::ExitCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Open,
    Partial,
    Closed,
    Rejected,
    Filtered,
    Unreachable,
    DnsError,
    /// The deadline ended the check before the evidence was in.
    Inconclusive,
    /// TCP connected, then the program behind the port failed.
    ServiceError,
    /// The TLS handshake failed, or the certificate is not valid for this name.
    TlsError,
    /// Small packets pass, large ones vanish: proven by a reduced-MSS retry.
    MtuBlackhole,
}

impl Verdict {
    pub const ALL: [Verdict; 11] = [
        Verdict::Open,
        Verdict::Partial,
        Verdict::Closed,
        Verdict::Rejected,
        Verdict::Filtered,
        Verdict::Unreachable,
        Verdict::DnsError,
        Verdict::Inconclusive,
        Verdict::ServiceError,
        Verdict::TlsError,
        Verdict::MtuBlackhole,
    ];

    /// The connection was made; what failed came after it (the program, TLS, the path's MTU).
    pub(crate) fn after_connect(self) -> bool {
        matches!(
            self,
            Verdict::ServiceError | Verdict::TlsError | Verdict::MtuBlackhole
        )
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
            Verdict::Inconclusive => "inconclusive",
            Verdict::ServiceError => "service_error",
            Verdict::TlsError => "tls_error",
            Verdict::MtuBlackhole => "mtu_blackhole",
        }
    }
}

/// What happened to one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// Silent, but the probe could not wait long enough for silence to mean a drop.
    Inconclusive,
    /// Connected, then the program failed (hung up, never replied, HTTP 5xx, refused us).
    ServiceError,
    /// Connected, then the TLS handshake or the certificate failed.
    TlsError,
    /// Connected; the handshake stalled and completed with a smaller MSS.
    MtuBlackhole,
}

impl Outcome {
    /// The outcome as a word, as in the JSON.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Open => "open",
            Outcome::Closed => "closed",
            Outcome::Rejected => "rejected",
            Outcome::Filtered => "filtered",
            Outcome::Unreachable => "unreachable",
            Outcome::Inconclusive => "inconclusive",
            Outcome::ServiceError => "service_error",
            Outcome::TlsError => "tls_error",
            Outcome::MtuBlackhole => "mtu_blackhole",
        }
    }

    pub(crate) fn verdict(self) -> Verdict {
        match self {
            Outcome::Open => Verdict::Open,
            Outcome::Closed => Verdict::Closed,
            Outcome::Rejected => Verdict::Rejected,
            Outcome::Filtered => Verdict::Filtered,
            Outcome::Unreachable => Verdict::Unreachable,
            Outcome::Inconclusive => Verdict::Inconclusive,
            Outcome::ServiceError => Verdict::ServiceError,
            Outcome::TlsError => Verdict::TlsError,
            Outcome::MtuBlackhole => Verdict::MtuBlackhole,
        }
    }
}

/// The specific evidence behind an [`Outcome`], precise enough to write advice from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    Handshake,
    TcpReset,
    /// The handshake completed between the socket and itself (same address and port on both
    /// ends): nothing listens, and no server took part.
    ConnectedToItself,
    /// An ICMP error; its meaning comes from the one table (`crate::icmp`).
    Icmp(Icmp),
    /// `connect()` failed at once with ENETUNREACH/EHOSTUNREACH and no ICMP: no route here.
    NoRouteHere(i32),
    /// ECONNRESET as the connect completed: the kernel accepted, then the program (or a
    /// proxy in front of it) reset the connection at once (`docs/ground-truth/beyond-connect.md`).
    AcceptedThenReset,
    /// EACCES/EPERM with no ICMP: this machine's own policy refused to send.
    LocalPolicy(i32),
    /// Any other local error (EAFNOSUPPORT, EADDRNOTAVAIL, …).
    LocalError(i32),
    Silence,
    /// UDP: a datagram came back from the port.
    UdpReply,
    /// UDP: `ECONNREFUSED` with no ICMP in the error queue (a port-unreachable whose
    /// details the kernel did not queue).
    UdpRefused,
    /// UDP: no datagram and no ICMP error came back, however often the request was sent.
    UdpSilence,
}

impl Evidence {
    pub(crate) fn icmp(&self) -> Option<&Icmp> {
        match self {
            Evidence::Icmp(i) => Some(i),
            _ => None,
        }
    }
}

/// Who sent an ICMP error, relative to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sender {
    /// The target address itself.
    Target,
    /// This machine: its own firewall, or its own failed neighbour (ARP/ND) lookup.
    ThisMachine,
    /// Another device: a router or firewall on the way.
    OnTheWay,
    /// The ICMP carried no sender address.
    Unknown,
}

impl Sender {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Sender::Target => "target",
            Sender::ThisMachine => "this_machine",
            Sender::OnTheWay => "on_the_way",
            Sender::Unknown => "unknown",
        }
    }
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
    pub(crate) fn sender(&self) -> Option<(Sender, Option<IpAddr>)> {
        let icmp = self.evidence.icmp()?;
        // The plain and v4-mapped forms of one address are one sender (`icmp::same_host`).
        let is = |a: Option<IpAddr>, b: IpAddr| a.is_some_and(|a| crate::icmp::same_host(a, b));
        Some(match icmp.from {
            Some(ip) if is(Some(self.address.ip()), ip) => (Sender::Target, Some(ip)),
            Some(ip) if is(self.local, ip) => (Sender::ThisMachine, Some(ip)),
            Some(ip) => (Sender::OnTheWay, Some(ip)),
            None => (Sender::Unknown, None),
        })
    }

    /// This machine refused to send the connection: its own policy (`EACCES`/`EPERM`), or a
    /// reject sent from its own source address (its output chain's `reject`). Only the person
    /// running canreach can change that; waiting does not.
    pub(crate) fn rejected_by_this_machine(&self) -> bool {
        self.outcome == Outcome::Rejected
            && (matches!(self.evidence, Evidence::LocalPolicy(_))
                || matches!(self.sender(), Some((Sender::ThisMachine, _))))
    }

    /// One line of evidence for people: "TCP reset after 0.3 ms".
    pub(crate) fn describe(&self) -> String {
        let t = fmt_duration(self.elapsed);
        match &self.evidence {
            Evidence::Handshake => format!("connected in {t}"),
            Evidence::TcpReset => format!("TCP reset after {t}"),
            Evidence::ConnectedToItself => format!("connected to itself in {t}"),
            Evidence::Icmp(i) => {
                let from = match self.sender() {
                    Some((Sender::Target, _)) => "from the host itself".to_string(),
                    Some((Sender::ThisMachine, Some(ip))) => format!("from this machine ({ip})"),
                    Some((_, Some(ip))) => format!("from {ip}"),
                    _ => "from an unknown sender".to_string(),
                };
                match i.meaning() {
                    crate::icmp::Meaning::Other => format!(
                        "ICMP{} type {} code {} {from} after {t}",
                        if i.v6 { "v6" } else { "" },
                        i.kind,
                        i.code
                    ),
                    m => format!("ICMP {} {from} after {t}", m.as_str()),
                }
            }
            Evidence::NoRouteHere(e) => {
                format!("{} at once: no route on this machine", errno_name(*e))
            }
            Evidence::AcceptedThenReset => format!("accepted, then reset (ECONNRESET) in {t}"),
            Evidence::LocalPolicy(e) => {
                format!("{} at once: this machine refused to send", errno_name(*e))
            }
            Evidence::LocalError(e) => format!("{} at once ({})", errno_name(*e), errno_text(*e)),
            Evidence::Silence => format!("no answer in {t}"),
            Evidence::UdpReply => format!("a UDP reply in {t}"),
            Evidence::UdpRefused => format!("ECONNREFUSED (port unreachable) after {t}"),
            Evidence::UdpSilence => format!("no UDP reply and no ICMP error in {t}"),
        }
    }
}

/// What the kernel's answer for one address means.
pub(crate) fn classify(p: &ProbeFact) -> AddressResult {
    let (outcome, evidence) = match (p.result, p.icmp) {
        (ConnectResult::Connected, _) => (Outcome::Open, Evidence::Handshake),
        (ConnectResult::ConnectedToItself, _) => (Outcome::Closed, Evidence::ConnectedToItself),
        // An ICMP error decides, whatever errno it was mapped to (ECONNREFUSED, EHOSTUNREACH,
        // EACCES for ICMPv6 prohibited …); so does a late ICMP that arrived as we gave up.
        (ConnectResult::Failed { .. } | ConnectResult::TimedOut, Some(icmp)) => {
            let outcome = if icmp.meaning().is_reject() {
                Outcome::Rejected
            } else {
                Outcome::Unreachable
            };
            (outcome, Evidence::Icmp(icmp))
        }
        (ConnectResult::Failed { errno }, None) => match errno {
            libc::ECONNREFUSED => (Outcome::Closed, Evidence::TcpReset),
            libc::ECONNRESET => (Outcome::ServiceError, Evidence::AcceptedThenReset),
            libc::ENETUNREACH | libc::EHOSTUNREACH => {
                (Outcome::Unreachable, Evidence::NoRouteHere(errno))
            }
            libc::EACCES | libc::EPERM => (Outcome::Rejected, Evidence::LocalPolicy(errno)),
            libc::ETIMEDOUT => (Outcome::Filtered, Evidence::Silence),
            // No socket to probe with says nothing about the target.
            e if out_of_resources(e) => (Outcome::Inconclusive, Evidence::LocalError(e)),
            // No free local port to connect from (the source port range all in use): as
            // little about the target as no descriptor.
            libc::EADDRNOTAVAIL => (Outcome::Inconclusive, Evidence::LocalError(errno)),
            _ => (Outcome::Unreachable, Evidence::LocalError(errno)),
        },
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

/// What the kernel's answer to a UDP exchange means. Unlike TCP, a host with no program on
/// a UDP port answers with ICMP port-unreachable: from the host itself that is `closed`
/// (its own firewall's `reject` says the same, and cannot be told apart), from another
/// device a firewall's `rejected`. Silence is never `closed` and never `open`: a drop and a
/// program that ignored the request look alike (nmap's open|filtered), so it is
/// `inconclusive`.
pub(crate) fn classify_udp(p: &ProbeFact) -> AddressResult {
    let mut r = classify(p);
    let (outcome, evidence) = match (p.result, p.icmp) {
        (ConnectResult::Connected, _) => (Outcome::Open, Evidence::UdpReply),
        (ConnectResult::Failed { .. } | ConnectResult::TimedOut, Some(icmp))
            if icmp.meaning() == crate::icmp::Meaning::PortUnreachable
                && icmp.sent_by(p.spec.address.ip()) =>
        {
            (Outcome::Closed, Evidence::Icmp(icmp))
        }
        (ConnectResult::Failed { errno }, None) if errno == libc::ECONNREFUSED => {
            (Outcome::Closed, Evidence::UdpRefused)
        }
        (ConnectResult::TimedOut, None) => (Outcome::Inconclusive, Evidence::UdpSilence),
        _ => (r.outcome, r.evidence),
    };
    r.outcome = outcome;
    r.evidence = evidence;
    r
}

/// This machine ran out of descriptors or memory (`socket()` failed for want of them).
pub(crate) fn out_of_resources(errno: i32) -> bool {
    matches!(
        errno,
        libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM
    )
}
