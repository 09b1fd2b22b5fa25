//! Facts in, diagnosis out: the one place where canreach's knowledge lives.
//!
//! [`diagnose`] is a pure function. It classifies each address ([`classify`]), folds the
//! outcomes into one [`Verdict`], then asks every finding rule, strongest first
//! ([`FindingId::ALL`]), whether its evidence is there ([`rule`]: one function per id), and
//! finally plans the steps once ([`advice::plan`]). No I/O happens here, so every rule is
//! unit-tested on fixtures. The evidence behind the rules is in `docs/ground-truth/`; every verdict
//! and finding is listed in `docs/verdicts.md`.
//!
//! | module | findings about |
//! |---|---|
//! | [`address`] | what the kernel said for each address: reset, reject, unreachable, silence |
//! | [`silence`] | a silent or undeliverable address: is the host up, where packets die |
//! | [`local`] | this machine: listeners, owners, usual servers, its firewall |
//! | [`dns`] | the name: failure kinds, hosts file against DNS, servers, search domains |

pub mod address;
pub mod advice;
pub mod commands;
pub mod dns;
pub mod finding;
pub mod local;
pub mod session;
pub mod silence;
pub mod tls_words;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::dns::{DnsErrorKind, Lookup, LookupError};
use crate::exit_codes::ExitCode;
use crate::facts::{AddressFacts, Facts, ms};
use crate::icmp::Icmp;
use crate::probe::{ConnectResult, ProbeFact};
use crate::session::status::StatusSet;
use crate::target::{Host, Target};

pub use advice::{Machine, PlannedStep, Step, StepKind};
pub use finding::{Finding, FindingId, Severity};

/// The answer to "can I reach it?". Each has its own exit code (see [`Verdict::exit_code`]).
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

    /// The process exit code (all of them are in `exit_codes`).
    pub fn exit_code(self) -> i32 {
        ExitCode::from(self).code()
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
    pub fn word(self) -> &'static str {
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

    fn verdict(self) -> Verdict {
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
}

impl Evidence {
    pub fn icmp(&self) -> Option<&Icmp> {
        match self {
            Evidence::Icmp(i) => Some(i),
            _ => None,
        }
    }
}

/// Who sent an ICMP error, relative to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

impl Sender {
    pub fn as_str(self) -> &'static str {
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
    pub fn sender(&self) -> Option<(Sender, Option<IpAddr>)> {
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

    /// One line of evidence for people: "TCP reset after 0.3 ms".
    pub fn describe(&self) -> String {
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
                    m => format!("ICMP {} {from} after {t}", m.words()),
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
        }
    }
}

/// The conclusion of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub verdict: Verdict,
    /// One plain sentence, escaped.
    pub summary: String,
    pub addresses: Vec<AddressResult>,
    /// Strongest first.
    pub findings: Vec<Finding>,
    /// The numbered next steps, planned once over all findings.
    pub steps: Vec<PlannedStep>,
    /// Is the host of the first address up? (Only when that address was slow to answer.)
    pub liveness: Option<silence::Liveness>,
    /// Where packets go on the way to the first address (when the path was walked).
    pub path: Option<silence::Path>,
    /// Why the name gave no address (only with `dns_error`), in canreach's words.
    pub dns_error: Option<LookupError>,
}

/// What the kernel's answer for one address means.
pub fn classify(p: &ProbeFact) -> AddressResult {
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

/// What the kernel's answer for one address means, given what else was learnt about it: a
/// silence the probe could not wait out is `inconclusive`, not a drop; a "host unreachable" from
/// a device on the way that came far sooner than neighbour discovery fails, while the host
/// answers on other ports, is that device's firewall rejecting the port.
pub fn judge(a: &AddressFacts, expect: Option<StatusSet>) -> AddressResult {
    let mut r = classify(&a.probe);
    let liveness = a.silence.as_ref().map(|s| silence::liveness(r.address, s));
    if r.evidence == Evidence::Silence && r.outcome == Outcome::Filtered {
        let decided = a
            .silence
            .as_ref()
            .is_some_and(|s| s.decided_after.is_some());
        // The probe's own clock starts a hair after the pipeline's: allow for it.
        let waited = r.elapsed + Duration::from_millis(10);
        // On this machine the local bound is fair when nothing listens there (a reset would
        // have come). With a listener, the first SYN may have met a queue full for a moment:
        // only the kernel's retransmission, a full queue seen or a drop counted tells.
        let here_fair = a.here
            && waited >= crate::liveness::LOCAL_SILENCE
            && a.queue.as_ref().is_none_or(|q| {
                q.first.is_none()
                    || q.waited_retransmit
                    || q.overflows > Some(0)
                    || [q.first, q.last].iter().flatten().any(|l| l.full())
            });
        let fair = decided || waited >= crate::liveness::FAIR_WAIT || here_fair;
        if !fair {
            r.outcome = Outcome::Inconclusive;
        }
    }
    if let (Outcome::Open, Some(s)) = (r.outcome, &a.session) {
        r.outcome = session::outcome(s, expect);
    }
    let alive = liveness.as_ref().and_then(|l| l.alive) == Some(true);
    if alive
        && r.outcome == Outcome::Unreachable
        && crate::liveness::too_fast_to_be_unreachable(&a.probe, r.address.ip())
    {
        r.outcome = Outcome::Rejected;
    }
    r
}

/// What every rule reads: the facts and what was already concluded from them.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub facts: &'a Facts,
    pub addresses: &'a [AddressResult],
    pub verdict: Verdict,
    pub liveness: Option<&'a silence::Liveness>,
    pub path: Option<&'a silence::Path>,
    pub dns_error: Option<&'a LookupError>,
}

impl Ctx<'_> {
    /// What the name, probe and local stages checked: the target, or the proxy the check
    /// followed (`Facts::checked`). The destination behind a proxy is `facts.target`.
    pub fn target(&self) -> &Target {
        self.facts.checked()
    }

    pub fn port(&self) -> u16 {
        self.facts.checked().port.get()
    }

    /// The address clients try first.
    pub fn first(&self) -> Option<&AddressResult> {
        self.addresses.first()
    }

    /// Is `ip` this machine? Loopback counts even when the interfaces were not read.
    pub fn is_here(&self, ip: IpAddr) -> bool {
        let mine = self
            .facts
            .local
            .as_ref()
            .map_or(&[][..], |l| &l.addresses[..]);
        crate::local::is_local(ip, mine)
    }

    /// Where the server's side of a step runs: this machine for a local address.
    pub fn server_of(&self, ip: IpAddr) -> Machine {
        if self.is_here(ip) {
            Machine::This
        } else {
            Machine::Server(self.facts.checked().host.to_string())
        }
    }

    /// The failed addresses whose evidence satisfies `pred`.
    pub fn failed_where(&self, pred: impl Fn(&AddressResult) -> bool) -> Vec<&AddressResult> {
        self.addresses
            .iter()
            .filter(|a| a.outcome != Outcome::Open && pred(a))
            .collect()
    }

    /// The outcome of the first address, when no address is open (the verdict's evidence).
    pub fn failed_first(&self) -> Option<&AddressResult> {
        self.first().filter(|a| a.outcome != Outcome::Open)
    }
}

/// The one rule of each finding id.
fn rule(id: FindingId, cx: &Ctx) -> Vec<Finding> {
    use FindingId::*;
    let one = |f: Option<Finding>| f.into_iter().collect::<Vec<_>>();
    match id {
        LocalFirewallOutput => one(local::local_firewall_output(cx)),
        LocalFirewallInput => one(local::local_firewall_input(cx)),
        LocalPolicyReject => one(address::local_policy_reject(cx)),
        ListenerNotAccepting => local::listener_not_accepting(cx),
        OutOfTime => one(address::out_of_time(cx)),
        MtuBlackhole => one(session::mtu_blackhole(cx)),
        ProgramNotAccepting => one(local::program_not_accepting(cx)),
        AcceptedThenReset => one(session::accepted_then_reset(cx)),
        AcceptedThenClosed => one(session::accepted_then_closed(cx)),
        ServiceRefuses => one(session::service_refuses(cx)),
        ProxyAuthRequired | ProxyForbidden | ProxyUpstreamFailed | ProxyConnectFailed => {
            one(session::proxy_refusal(cx, id))
        }
        NoReply => one(session::no_reply(cx)),
        TlsExpired
        | TlsNotYetValid
        | TlsWrongName
        | TlsSelfSigned
        | TlsUnknownIssuer
        | TlsMissingIntermediate
        | TlsClientCertRequired
        | TlsProtocolMismatch
        | NotTls
        | TlsFailed => one(session::tls_failure(cx, id)),
        ExpectsTls => one(session::expects_tls(cx)),
        NotHttp => one(session::not_http(cx)),
        HttpServerError => one(session::http_server_error(cx)),
        HttpClientError => one(session::http_client_error(cx)),
        HttpUnexpectedStatus => one(session::http_unexpected_status(cx)),
        SlowHandshake => one(session::slow_handshake(cx)),
        TlsNotVerified => one(session::tls_not_verified(cx)),
        HttpRedirect => one(session::http_redirect(cx)),
        ServiceBanner => one(session::service_banner(cx)),
        ProxyApplies => one(session::proxy_applies(cx)),
        DirectPath => one(session::direct_path(cx)),
        FirstSynDropped => one(local::first_syn_dropped(cx)),
        PartialReachability => one(address::partial_reachability(cx)),
        ConnectedToItself => one(address::connected_to_itself(cx)),
        PortClosed => one(address::port_closed(cx)),
        FirewallRejectOnHost => one(address::firewall_reject_on_host(cx)),
        FirewallRejectOnPath => one(address::firewall_reject_on_path(cx)),
        IcmpRateLimited => one(address::icmp_rate_limited(cx)),
        HostUnreachable => one(address::host_unreachable(cx)),
        NoRoute => one(address::no_route(cx)),
        LocalError => one(address::local_error(cx)),
        HostUpPortDropped => one(silence::host_up_port_dropped(cx)),
        HostDown => one(silence::host_down(cx)),
        SilentDrop => one(address::silent_drop(cx)),
        HostNotAnswering => one(silence::host_not_answering(cx)),
        PathEndsAfter => one(silence::path_ends_after(cx)),
        PathNoAnswer => one(silence::path_no_answer(cx)),
        NothingListensHere => one(local::nothing_listens_here(cx)),
        UsualServerElsewhere => local::usual_server_elsewhere(cx),
        UsualServerNotRunning => one(local::usual_server_not_running(cx)),
        ListensOnLoopbackOnly => local::listens_on_loopback_only(cx),
        ListensOnOtherFamily => local::listens_on_other_family(cx),
        BoundToOtherAddress => local::bound_to_other_address(cx),
        ContainerProxy => one(local::container_proxy(cx)),
        OwnerNameMismatch => local::owner_name_mismatch(cx),
        OwnerHidden => one(local::owner_hidden(cx)),
        FirewallNotInspected => one(local::firewall_not_inspected(cx)),
        AddressesDisagree => one(address::addresses_disagree(cx)),
        DnsNxdomain => one(dns::failure(cx, DnsErrorKind::Nxdomain)),
        DnsNodata => one(dns::failure(cx, DnsErrorKind::Nodata)),
        DnsServfail => one(dns::failure(cx, DnsErrorKind::Servfail)),
        DnsRefused => one(dns::failure(cx, DnsErrorKind::Refused)),
        DnsTimeout => one(dns::failure(cx, DnsErrorKind::Timeout)),
        DnsNoNameservers => one(dns::failure(cx, DnsErrorKind::NoNameservers)),
        DnsFailed => one(dns::failure(cx, DnsErrorKind::Other)),
        Ipv6OnlyName => one(dns::ipv6_only_name(cx)),
        NameOnlyInHosts => one(dns::name_only_in_hosts(cx)),
        HostsOverride => one(dns::hosts_override(cx)),
        SystemDiffersFromDns => one(dns::system_differs_from_dns(cx)),
        ServersDisagree => one(dns::servers_disagree(cx)),
        ExtraNameserversIgnored => one(dns::extra_nameservers_ignored(cx)),
        SearchDomainUsed => one(dns::search_domain_used(cx)),
        NdotsSearchFirst => one(dns::ndots_search_first(cx)),
    }
}

/// A failure that says nothing about the network: this machine could not even make a socket
/// (out of file descriptors, of buffer memory). It is no verdict about the target; the run is
/// an internal error, with this line. (`local_error` keeps the rest: an address family this
/// machine lacks, no free local port.)
pub fn resource_failure(d: &Diagnosis) -> Option<String> {
    d.addresses.iter().find_map(|a| match a.evidence {
        Evidence::LocalError(e) if out_of_resources(e) => Some(format!(
            "this machine could not open a socket to {}: {} ({}) — raise the open-file \
                 limit (ulimit -n) or free resources, then check again",
            a.address,
            errno_text(e),
            errno_name(e)
        )),
        _ => None,
    })
}

/// This machine ran out of descriptors or memory (`socket()` failed for want of them).
fn out_of_resources(errno: i32) -> bool {
    matches!(
        errno,
        libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM
    )
}

/// Fold per-address results into one verdict with findings and planned steps.
pub fn diagnose(facts: &Facts) -> Diagnosis {
    let addresses: Vec<AddressResult> = facts
        .addresses
        .iter()
        .map(|a| judge(a, facts.expect_status))
        .collect();
    let verdict = verdict_of(&addresses);
    let first = addresses.first().map(|a| a.address);
    let liveness = first.and_then(|a| facts.silence_of(a).map(|s| silence::liveness(a, s)));
    let path = facts.trace.as_ref().map(silence::path);
    let dns_error = (verdict == Verdict::DnsError)
        .then(|| dns_failure_of(facts.dns.system.as_ref(), facts.dns.direct.as_ref()));
    let cx = Ctx {
        facts,
        addresses: &addresses,
        verdict,
        liveness: liveness.as_ref(),
        path: path.as_ref(),
        dns_error: dns_error.as_ref(),
    };
    let mut findings: Vec<Finding> = FindingId::ALL
        .iter()
        .flat_map(|id| rule(*id, &cx))
        .collect();
    order_by_address(&mut findings, &addresses);
    let here = advice::Here {
        privileged: facts.privileged,
        systemd: facts.local.as_ref().map(|l| l.systemd),
    };
    let steps = advice::plan(&findings, &ruled_out_by_facts(&cx), here);
    // It names the target and may quote outside text: escaped once, for every format.
    let summary = crate::escape::escape_owned(summarize(&cx, &findings));
    Diagnosis {
        verdict,
        summary,
        findings,
        steps,
        liveness,
        path,
        dns_error,
        addresses,
    }
}

/// Findings about the kernel's answers keep the places the strength order gives them as a
/// group, but among themselves follow the order clients try the addresses: the first address
/// decides the verdict, so its explanation comes first.
fn order_by_address(findings: &mut [Finding], addresses: &[AddressResult]) {
    let index = |f: &Finding| {
        f.about
            .and_then(|a| addresses.iter().position(|r| r.address == a))
    };
    let slots: Vec<usize> = (0..findings.len())
        .filter(|i| index(&findings[*i]).is_some())
        .collect();
    let mut group: Vec<Finding> = slots.iter().map(|i| findings[*i].clone()).collect();
    group.sort_by_key(|f| index(f));
    for (slot, f) in slots.into_iter().zip(group) {
        findings[slot] = f;
    }
}

fn verdict_of(addresses: &[AddressResult]) -> Verdict {
    let Some(first) = addresses.first() else {
        return Verdict::DnsError;
    };
    let open = addresses
        .iter()
        .filter(|a| a.outcome == Outcome::Open)
        .count();
    if open == addresses.len() {
        Verdict::Open
    } else if open > 0 {
        Verdict::Partial
    } else {
        // When the failures disagree, the address the system tries first decides.
        first.outcome.verdict()
    }
}

/// Steps that what was already done makes pointless, whichever finding proposes them.
fn ruled_out_by_facts(cx: &Ctx) -> Vec<StepKind> {
    let mut out = Vec::new();
    // The walk ran: its hops are in the report.
    if cx.path.is_some() {
        out.push(StepKind::TracePath);
    }
    // The host's other ports were probed and one answered or a router spoke for it.
    if cx.liveness.is_some_and(|l| l.alive.is_some()) {
        out.push(StepKind::TryOtherPort);
    }
    // This machine's ruleset was read: its rules, if any, are named by a finding.
    if cx.facts.firewall.as_ref().is_some_and(|f| f.inspected) {
        out.push(StepKind::CheckLocalOutput);
    }
    // Every address is this machine's, and the report names the program and pid of every
    // listener on the port: `ss -ltnp` would show nothing more.
    let here = !cx.addresses.is_empty() && cx.addresses.iter().all(|a| cx.is_here(a.address.ip()));
    if here
        && cx.facts.local.as_ref().is_some_and(|l| {
            !l.listeners.is_empty() && l.listeners.iter().all(|x| x.process.is_some())
        })
    {
        out.push(StepKind::CheckListening);
    }
    out
}

fn summarize(cx: &Ctx, findings: &[Finding]) -> String {
    let plain = summarize_checked(cx, findings);
    let refusal = findings.iter().find(|f| {
        matches!(
            f.id,
            FindingId::ProxyAuthRequired
                | FindingId::ProxyForbidden
                | FindingId::ProxyUpstreamFailed
                | FindingId::ProxyConnectFailed
        )
    });
    match (&cx.facts.via, refusal) {
        // The proxy answered, and did not open the way: that is the whole story.
        (Some(v), Some(f)) if cx.verdict == Verdict::ServiceError => format!(
            "{} goes through the proxy {} (from {}), which does not open the way: {}.",
            cx.facts.target.display(),
            v.endpoint.display(),
            v.proxy.variable,
            session::headline(f.id).unwrap_or("it refuses")
        ),
        // Through a proxy, say so first: the verdict is about the path the application takes.
        (Some(v), _) => format!(
            "{} goes through the proxy {} (from {}): {plain}",
            cx.facts.target.display(),
            v.endpoint.display(),
            v.proxy.variable
        ),
        (None, _) => plain,
    }
}

fn summarize_checked(cx: &Ctx, findings: &[Finding]) -> String {
    let target = cx.target();
    // Past an open tunnel (or a forwarded request) the answers are the destination's.
    let t = if session::through_proxy(cx) {
        cx.facts.target.display()
    } else {
        target.display()
    };
    let addrs = cx.addresses;
    let n = addrs.len();
    let count = |o: Outcome| addrs.iter().filter(|a| a.outcome == o).count();
    let has = |id: FindingId| findings.iter().any(|f| f.id == id);
    // This machine's own firewall, when it explains a failure, is the headline.
    if cx.verdict != Verdict::Open && has(FindingId::LocalFirewallOutput) {
        return format!(
            "{t} is {}: this machine's own firewall stops the connection on its way out.",
            cx.verdict.as_str()
        );
    }
    if cx.verdict == Verdict::Filtered && has(FindingId::ListenerNotAccepting) {
        return format!(
            "{t} is filtered: the program listening there is not accepting connections as \
             fast as they come (its accept queue filled up), so the kernel drops new ones \
             silently."
        );
    }
    if cx.verdict != Verdict::Open && has(FindingId::LocalFirewallInput) {
        return format!(
            "{t} is {}: this machine's own firewall stops the connection on its way in.",
            cx.verdict.as_str()
        );
    }
    match cx.verdict {
        Verdict::Open if n == 1 => format!("{t} is open: the connection was accepted."),
        Verdict::Open => format!("{t} is open: all {n} addresses accepted the connection."),
        Verdict::Partial => format!(
            "{t} is only partly reachable: {} of {n} addresses accepted the connection.",
            count(Outcome::Open)
        ),
        Verdict::Closed
            if addrs.first().map(|a| a.evidence) == Some(Evidence::ConnectedToItself) =>
        {
            format!(
                "{t} is closed: nothing listens there; the connection that seemed to succeed \
                 was canreach's own socket, connected to itself by the kernel."
            )
        }
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
            _ if matches!(
                addrs.first().map(|a| a.evidence),
                Some(Evidence::LocalPolicy(_))
            ) =>
            {
                format!(
                    "{t} is rejected: this machine's own firewall refused to send the connection."
                )
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
        Verdict::Inconclusive => match addrs.first().map(|a| a.evidence) {
            Some(Evidence::LocalError(_)) => {
                format!("{t} is inconclusive: this machine could not open a socket for the check.")
            }
            _ => format!(
                "{t} is inconclusive: the check ran out of time before the evidence was in."
            ),
        },
        Verdict::ServiceError => format!(
            "{t} accepts connections, but the program behind the port fails: {}.",
            findings
                .iter()
                .find_map(|f| session::clause(cx, f.id))
                .unwrap_or_else(|| "it does not serve".into())
        ),
        Verdict::TlsError => format!(
            "{t} accepts connections, but TLS fails: {}.",
            findings
                .iter()
                .find_map(|f| session::clause(cx, f.id))
                .unwrap_or_else(|| "the handshake did not complete".into())
        ),
        Verdict::MtuBlackhole => format!(
            "{t} accepts connections, but large packets vanish on the way (a path-MTU black \
             hole): the handshake stalled, and completed with smaller segments."
        ),
    }
}

/// The kind of a DNS failure, as a finding id.
pub fn dns_finding_id(kind: DnsErrorKind) -> FindingId {
    match kind {
        DnsErrorKind::Nxdomain => FindingId::DnsNxdomain,
        DnsErrorKind::Nodata => FindingId::DnsNodata,
        DnsErrorKind::Servfail => FindingId::DnsServfail,
        DnsErrorKind::Refused => FindingId::DnsRefused,
        DnsErrorKind::Timeout => FindingId::DnsTimeout,
        DnsErrorKind::NoNameservers => FindingId::DnsNoNameservers,
        DnsErrorKind::Other => FindingId::DnsFailed,
    }
}

/// Why a name failed, as one error in canreach's words. The direct DNS view is more precise
/// than `getaddrinfo`'s `EAI_*` codes, so its kind wins when it failed too; when DNS answered
/// but the system did not, the system's own kind stands.
pub fn dns_failure_of(sys: Option<&Lookup>, direct: Option<&Lookup>) -> LookupError {
    let d = direct.and_then(|d| d.error.as_ref());
    let s = sys.and_then(|s| s.error.as_ref());
    let chosen = match (d, s) {
        (Some(e), _) if e.kind != DnsErrorKind::Other => Some(e),
        (_, Some(e)) => Some(e),
        (d, None) => d,
    };
    chosen
        .cloned()
        .unwrap_or_else(|| LookupError::new(DnsErrorKind::Other))
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

/// A duration as a person gives it on the command line: `3s`, `500ms`, `5m`, `1h`.
pub fn fmt_given(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        _ if !ms.is_multiple_of(1000) => format!("{ms}ms"),
        _ if ms >= 3_600_000 && ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms >= 60_000 && ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ => format!("{}s", ms / 1000),
    }
}

/// The symbolic name of an errno, as people search for it.
pub fn errno_name(e: i32) -> &'static str {
    match e {
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ECONNRESET => "ECONNRESET",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EACCES => "EACCES",
        libc::EPERM => "EPERM",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EMFILE => "EMFILE",
        libc::ENFILE => "ENFILE",
        libc::ENOBUFS => "ENOBUFS",
        libc::ENOMEM => "ENOMEM",
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

/// The host as people named it, or the address when they gave one.
pub fn host_or(target: &Target, ip: IpAddr) -> String {
    match &target.host {
        Host::Name(n) => n.clone(),
        Host::Ip(_) => ip.to_string(),
    }
}

/// "198.18.0.2, fd00::2".
pub fn list(addrs: &[&AddressResult]) -> String {
    addrs
        .iter()
        .map(|a| a.address.ip().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod given_tests {
    #[test]
    fn durations_as_typed() {
        use std::time::Duration;
        assert_eq!(super::fmt_given(Duration::from_millis(1500)), "1500ms");
        assert_eq!(super::fmt_given(Duration::from_secs(3)), "3s");
        assert_eq!(super::fmt_given(Duration::from_secs(300)), "5m");
        assert_eq!(super::fmt_given(Duration::from_secs(7200)), "2h");
        assert_eq!(super::fmt_given(Duration::from_secs(90)), "90s");
    }
}
