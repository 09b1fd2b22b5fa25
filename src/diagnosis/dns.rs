//! What the name stage's facts mean: the failure kinds told apart, which server said what (a
//! dead first server named), /etc/hosts against DNS, search domains, name servers glibc ignores,
//! and local stub resolvers. One function per finding; every library error reaches people in
//! canreach's words ([`kind_words`]).

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::advice::{Machine, Step, StepKind};
use super::commands::{Command, DigMode};
use super::context::Ctx;
use super::finding::Finding;
use super::finding::FindingId;
use super::outcome::{Evidence, classify};
use super::words::fmt_duration;
use crate::dns::servers::{ServerView, Stub, Udp53};
use crate::dns::{DnsErrorKind, Lookup, LookupError, MAXNS};
use crate::probe::ProbeFact;

/// A failure kind in words: what a report says where a resolver would print its error.
pub(crate) fn kind_words(kind: DnsErrorKind) -> &'static str {
    match kind {
        DnsErrorKind::Nxdomain => "the name does not exist (NXDOMAIN)",
        DnsErrorKind::Nodata => "no A/AAAA record (NODATA)",
        DnsErrorKind::Servfail => "the server failed (SERVFAIL)",
        DnsErrorKind::Refused => "the server refused (REFUSED)",
        DnsErrorKind::Timeout => "no answer in time",
        DnsErrorKind::NoNameservers => "no name server configured",
        DnsErrorKind::Other => "the lookup failed",
    }
}

/// A lookup failure in words, with the system's own detail when it has one.
pub(crate) fn error_words(e: &LookupError) -> String {
    match &e.detail {
        Some(d) => format!("{} ({d})", kind_words(e.kind)),
        None => kind_words(e.kind).to_string(),
    }
}

/// What kind of stub a local name server is, in words.
pub(crate) fn stub_words(s: Stub) -> &'static str {
    match s {
        Stub::SystemdResolved => "systemd-resolved",
        Stub::Local => "a local resolver (dnsmasq, unbound, …)",
    }
}

/// A UDP port-53 probe's answer in words.
pub(crate) fn udp53_words(u: Udp53) -> &'static str {
    match u {
        Udp53::Answered => "answered",
        Udp53::Refused => "refused",
        Udp53::Unreachable => "host unreachable",
        Udp53::NoAnswer => "no answer",
    }
}

/// A silent name server's TCP port 53, in words: `closed (TCP reset after 0.2 ms)`.
pub fn port53_tcp(p: &ProbeFact) -> String {
    let r = classify(p);
    format!("{} ({})", r.outcome.as_str(), r.describe())
}

fn servers_said(servers: &[ServerView]) -> String {
    servers
        .iter()
        .map(|s| {
            let what = match &s.lookup.error {
                None => s
                    .lookup
                    .addresses
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                Some(e) => match e.kind {
                    DnsErrorKind::Nxdomain => "NXDOMAIN".into(),
                    DnsErrorKind::Nodata => "no A/AAAA record (NODATA)".into(),
                    DnsErrorKind::Servfail => "SERVFAIL".into(),
                    DnsErrorKind::Refused => "REFUSED".into(),
                    DnsErrorKind::Timeout => match &s.port53 {
                        Some(p) => format!(
                            "no answer (port 53: TCP {}, UDP {})",
                            port53_tcp(&p.tcp),
                            udp53_words(p.udp)
                        ),
                        None => "no answer".into(),
                    },
                    _ => error_words(e),
                },
            };
            // The name the answer is for, when the search list made it another one.
            let name = match (&s.name_used, &s.lookup.error) {
                (Some(n), Some(e)) if e.kind != DnsErrorKind::Timeout => format!(" for {n}"),
                _ => String::new(),
            };
            format!("{} → {what}{name}", s.server.ip())
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The first server said nothing while another gave an answer: applications wait resolv.conf's
/// whole `timeout` on the first server before they ask the next.
fn first_server_dead<'a>(cx: &'a Ctx) -> Option<&'a ServerView> {
    let servers = &cx.facts.dns.servers;
    let first = servers.first()?;
    let silent = |s: &ServerView| {
        s.lookup
            .error
            .as_ref()
            .is_some_and(|e| e.kind == DnsErrorKind::Timeout)
    };
    let answered = servers[1..].iter().any(|s| match &s.lookup.error {
        None => true,
        Some(e) => matches!(e.kind, DnsErrorKind::Nxdomain | DnsErrorKind::Nodata),
    });
    (silent(first) && answered).then_some(first)
}

/// The search-expanded name a NODATA is for, from the first server that said NODATA (the
/// resolver's reading), when it is not the name as given.
fn nodata_name(cx: &Ctx) -> Option<String> {
    let first = cx
        .facts
        .dns
        .servers
        .iter()
        .find(|s| match &s.lookup.error {
            None => true,
            Some(e) => matches!(e.kind, DnsErrorKind::Nxdomain | DnsErrorKind::Nodata),
        })?;
    let nodata = first
        .lookup
        .error
        .as_ref()
        .is_some_and(|e| e.kind == DnsErrorKind::Nodata);
    first.name_used.clone().filter(|_| nodata)
}

/// `dig @SERVER NAME` for the first server, the exact way to see its answer.
fn dig(cx: &Ctx, name: &str) -> Step {
    let server = cx.facts.dns.servers.first().map(|s| s.server.ip());
    Step::run(
        StepKind::AskNameServer,
        "Ask the name server directly and read the status line",
        Command::Dig {
            server,
            name: name.to_string(),
            mode: DigMode::Plain,
        },
        Machine::This,
    )
}

fn stub_step(cx: &Ctx, name: &str) -> Option<Step> {
    let s = cx.facts.dns.servers.iter().find(|s| s.stub.is_some())?;
    Some(match s.stub {
        Some(Stub::SystemdResolved) => Step::run(
            StepKind::AskStubResolver,
            format!(
                "{} is systemd-resolved, a local stub: the real servers are its upstreams; see \
                 them and ask through it",
                s.server.ip()
            ),
            Command::Resolvectl {
                name: name.to_string(),
            },
            Machine::This,
        ),
        _ => Step::about(
            StepKind::AskStubResolver,
            format!(
                "{} is a resolver on this machine (dnsmasq, unbound, …): its own configuration \
                 names the upstream servers that really answer (e.g. /etc/dnsmasq.conf, \
                 /etc/unbound/unbound.conf).",
                s.server.ip()
            ),
            Machine::This,
        ),
    })
}

/// " It has MX and TXT records only." — the non-address types the servers showed for the name.
fn other_types(cx: &Ctx) -> String {
    let mut kinds: Vec<&str> = cx
        .facts
        .dns
        .servers
        .iter()
        .flat_map(|s| &s.records)
        .map(|r| r.kind.as_str())
        .filter(|k| !matches!(*k, "A" | "AAAA" | "CNAME"))
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    match kinds.as_slice() {
        [] => String::new(),
        [one] => format!(" It has {one} records only."),
        [rest @ .., last] => format!(" It has {} and {last} records only.", rest.join(", ")),
    }
}

/// The kind of a DNS failure, as a finding id.
fn dns_finding_id(kind: DnsErrorKind) -> FindingId {
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

/// The finding for a name that gave no address, when it failed with `kind`.
pub(crate) fn failure(cx: &Ctx, kind: DnsErrorKind) -> Option<Finding> {
    let error = cx.dns_error.filter(|e| e.kind == kind)?;
    let name = cx.checked().host.to_string();
    let said = if cx.facts.dns.servers.is_empty() {
        String::new()
    } else {
        format!(" Name servers: {}.", servers_said(&cx.facts.dns.servers))
    };
    let (message, mut steps) = match kind {
        DnsErrorKind::Nxdomain => (
            format!("The name {name} does not exist in DNS (NXDOMAIN).{said}"),
            nxdomain_steps(cx, &name),
        ),
        DnsErrorKind::Nodata => nodata(cx, &name, &said),
        DnsErrorKind::Servfail => (
            format!(
                "The name server failed to answer for {name} (SERVFAIL): its own upstream \
                 servers are broken or unreachable, or DNSSEC validation failed.{said}"
            ),
            servfail_steps(cx, &name),
        ),
        DnsErrorKind::Refused => (
            format!(
                "The name server refused to answer for {name} (REFUSED): it does not serve this \
                 client or this name.{said}"
            ),
            vec![
                see_resolvers(),
                Step::say(
                    StepKind::UseInternalResolver,
                    "Use a name server that serves you (the VPN's or the company's).",
                ),
            ],
        ),
        DnsErrorKind::Timeout => (timeout_words(cx, &name, &said), timeout_steps(cx, &name)),
        DnsErrorKind::NoNameservers => (
            format!("This machine has no name server configured, so {name} cannot be looked up."),
            vec![
                see_resolvers(),
                Step::say(
                    StepKind::FixResolverConfig,
                    "Add a `nameserver` line, or fix the network settings that should write it.",
                ),
            ],
        ),
        DnsErrorKind::Other => (
            format!("Looking up {name} failed: {}.{said}", error_words(error)),
            vec![getent(&name)],
        ),
    };
    steps.extend(stub_step(cx, &name));
    Some(Finding::new(dns_finding_id(kind), message).steps(steps))
}

/// `getent ahosts NAME`: what applications get.
fn getent(name: &str) -> Step {
    Step::run(
        StepKind::SeeApplicationView,
        "See what applications get for the name",
        Command::Getent {
            name: name.to_string(),
        },
        Machine::This,
    )
}

/// `cat /etc/resolv.conf`.
fn see_resolvers() -> Step {
    Step::run(
        StepKind::SeeResolvers,
        "See which name servers this machine uses",
        Command::ResolvConf,
        Machine::This,
    )
}

fn nxdomain_steps(cx: &Ctx, name: &str) -> Vec<Step> {
    vec![
        Step::say(
            StepKind::CheckSpelling,
            format!("Check the spelling of {name}."),
        ),
        Step::say(
            StepKind::UseInternalResolver,
            "If it is an internal name, connect to the VPN or use the company's name server: \
             public DNS does not know internal names.",
        ),
        dig(cx, name),
        getent(name),
    ]
}

/// `dns_nodata`: the name (with the search domain that made it the name that matters) and the
/// records it does have.
fn nodata(cx: &Ctx, name: &str, said: &str) -> (String, Vec<Step>) {
    let full = nodata_name(cx).unwrap_or_else(|| name.to_string());
    let which = if full == name {
        format!("The name {name}")
    } else {
        format!("The name {full} ({name} with the search domain)")
    };
    (
        format!(
            "{which} exists but has no address record (A or AAAA) (NODATA).{}{said}",
            other_types(cx)
        ),
        vec![
            Step::run(
                StepKind::SeeRecords,
                "See which records the name does have",
                Command::Dig {
                    server: None,
                    name: full,
                    mode: DigMode::Any,
                },
                Machine::This,
            ),
            Step::say(
                StepKind::AddRecord,
                "Ask the owner of the DNS zone to add an A (IPv4) or AAAA (IPv6) record.",
            ),
        ],
    )
}

fn servfail_steps(cx: &Ctx, name: &str) -> Vec<Step> {
    vec![
        dig(cx, name),
        Step::run(
            StepKind::CheckDnssec,
            "If the name is DNSSEC-signed, see whether validation is the problem",
            Command::Dig {
                server: None,
                name: name.to_string(),
                mode: DigMode::NoDnssecCheck,
            },
            Machine::This,
        ),
        Step::say(
            StepKind::RetryLater,
            "Try again in a minute; if it persists, tell whoever runs your DNS.",
        ),
    ]
}

/// `dns_timeout`: a dead first server (the others answered) costs every application its whole
/// timeout; else no server answered.
fn timeout_words(cx: &Ctx, name: &str, said: &str) -> String {
    let Some(first) = first_server_dead(cx) else {
        return format!(
            "No name server answered for {name} in time: the name server is down or \
             unreachable.{said}"
        );
    };
    let wait = cx
        .facts
        .dns
        .resolv
        .as_ref()
        .map(|r| format!(" ({} s)", r.timeout.as_secs_f64()))
        .unwrap_or_default();
    format!(
        "The first name server, {}, does not answer for {name} (nothing in {}): applications \
         ask it first and wait resolv.conf's timeout{wait} for it before they ask the next, so \
         the lookup did not finish in time. The other servers answered.{said}",
        first.server.ip(),
        fmt_duration(first.lookup.elapsed)
    )
}

fn timeout_steps(cx: &Ctx, name: &str) -> Vec<Step> {
    vec![
        see_resolvers(),
        dig(cx, name),
        Step::say(
            StepKind::FixResolverConfig,
            "If its port 53 is closed or refused, it runs no name server (any more): fix \
             /etc/resolv.conf or the network settings that write it (DHCP, VPN client).",
        ),
    ]
}

/// The system view, when the name resolved.
fn resolved<'a>(cx: &'a Ctx) -> Option<&'a Lookup> {
    cx.facts.dns.system.as_ref().filter(|s| s.error.is_none())
}

/// The IPv6-only name on a machine without IPv6.
pub(crate) fn ipv6_only_name(cx: &Ctx) -> Option<Finding> {
    let sys = resolved(cx)?;
    let only_v6 = !sys.addresses.is_empty() && sys.addresses.iter().all(IpAddr::is_ipv6);
    let no_route = cx
        .first()
        .is_some_and(|a| matches!(a.evidence, Evidence::NoRouteHere(_)));
    if !(only_v6 && no_route) {
        return None;
    }
    let name = cx.checked().host.to_string();
    Some(
        Finding::new(
            super::FindingId::Ipv6OnlyName,
            format!(
                "{name} has only IPv6 addresses (no A record), and this machine has no IPv6 \
                 route: it cannot reach the name at all."
            ),
        )
        .steps([
            Step::say(
                StepKind::AddRecord,
                format!(
                    "Ask the owner of {name} to add an A (IPv4) record, or give this machine IPv6 \
                     connectivity."
                ),
            ),
            Step::run(
                StepKind::SeeRecords,
                "Confirm which records exist",
                Command::Dig {
                    server: None,
                    name,
                    mode: DigMode::AddressRecords,
                },
                Machine::This,
            ),
        ]),
    )
}

/// The name is in /etc/hosts; DNS says it does not exist.
pub(crate) fn name_only_in_hosts(cx: &Ctx) -> Option<Finding> {
    resolved(cx)?;
    let direct = cx.facts.dns.direct.as_ref()?;
    let h = cx.facts.dns.hosts.first()?;
    if !direct
        .error
        .as_ref()
        .is_some_and(|e| e.kind == DnsErrorKind::Nxdomain)
    {
        return None;
    }
    let name = cx.checked().host.to_string();
    Some(
        Finding::new(
            super::FindingId::NameOnlyInHosts,
            format!(
                "{name} exists only in {} (line {}: `{}`): DNS says it does not exist (NXDOMAIN). \
                 Only this machine can use the name.",
                h.file, h.line, h.text
            ),
        )
        .steps([Step::about(
            StepKind::FixHostsFile,
            format!(
                "If other machines need {name}, add it to DNS; if the entry is left over, remove \
                 line {} of {}.",
                h.line, h.file
            ),
            Machine::This,
        )]),
    )
}

/// An /etc/hosts line gives the name an address DNS does not.
pub(crate) fn hosts_override(cx: &Ctx) -> Option<Finding> {
    resolved(cx)?;
    let direct = cx.facts.dns.direct.as_ref()?;
    let h = cx.facts.dns.hosts.first()?;
    let dns: BTreeSet<IpAddr> = direct.addresses.iter().copied().collect();
    if dns.is_empty() || dns.contains(&h.address) {
        return None;
    }
    let name = cx.checked().host.to_string();
    let dns_list: Vec<String> = dns.iter().map(|a| a.to_string()).collect();
    Some(
        Finding::new(
            super::FindingId::HostsOverride,
            format!(
                "{} line {} pins {name} to {} (`{}`), but DNS says {}: applications use the hosts \
                 file's address, and that entry may be stale. The address probed is the one \
                 applications use.",
                h.file,
                h.line,
                h.address,
                h.text,
                dns_list.join(", ")
            ),
        )
        .steps([
            Step::run(
                StepKind::FixHostsFile,
                format!(
                    "If the entry is stale, remove or correct line {} of {}",
                    h.line, h.file
                ),
                Command::ShowLine {
                    file: h.file.to_string(),
                    line: h.line,
                },
                Machine::This,
            ),
            Step::run(
                StepKind::SeeApplicationView,
                "Compare what applications get with what DNS says",
                Command::GetentAndDig { name },
                Machine::This,
            ),
        ]),
    )
}

/// No hosts line, yet the system's answer is not DNS's: nsswitch, mDNS, a cache.
pub(crate) fn system_differs_from_dns(cx: &Ctx) -> Option<Finding> {
    let sys = resolved(cx)?;
    let direct = cx.facts.dns.direct.as_ref()?;
    if !cx.facts.dns.hosts.is_empty() || direct.error.is_some() {
        return None;
    }
    let dns: BTreeSet<IpAddr> = direct.addresses.iter().copied().collect();
    let missing: Vec<String> = sys
        .addresses
        .iter()
        .filter(|a| !dns.contains(a))
        .map(|a| a.to_string())
        .collect();
    if dns.is_empty() || missing.is_empty() {
        return None;
    }
    let name = cx.checked().host.to_string();
    Some(
        Finding::new(
            super::FindingId::SystemDiffersFromDns,
            format!(
                "Applications get {} for {name}, but DNS says {}: something local (nsswitch, \
                 mDNS, a cache) answers instead of DNS.",
                missing.join(", "),
                dns.iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .steps([Step::run(
            StepKind::SeeNameSources,
            "See which sources the system consults, in order",
            Command::NsswitchHosts,
            Machine::This,
        )]),
    )
}

/// Servers that answered differently: split horizon, or a stale secondary.
pub(crate) fn servers_disagree(cx: &Ctx) -> Option<Finding> {
    let answers: Vec<(&ServerView, String)> = cx
        .facts
        .dns
        .servers
        .iter()
        .filter_map(|s| {
            let key = match &s.lookup.error {
                None => {
                    let set: BTreeSet<String> =
                        s.lookup.addresses.iter().map(|a| a.to_string()).collect();
                    set.into_iter().collect::<Vec<_>>().join(", ")
                }
                Some(e) if e.kind == DnsErrorKind::Nxdomain => "NXDOMAIN".into(),
                Some(e) if e.kind == DnsErrorKind::Nodata => "NODATA".into(),
                _ => return None, // a failure is not an opinion about the name
            };
            Some((s, key))
        })
        .collect();
    let distinct: BTreeSet<&String> = answers.iter().map(|(_, k)| k).collect();
    if distinct.len() < 2 {
        return None;
    }
    let name = cx.checked().host.to_string();
    let said: Vec<String> = answers
        .iter()
        .map(|(s, k)| format!("{} says {k}", s.server.ip()))
        .collect();
    Some(
        Finding::new(
            super::FindingId::ServersDisagree,
            format!(
                "The configured name servers disagree about {name}: {}. Clients get whichever \
                 answers first — a split-horizon setup or a stale secondary.",
                said.join("; ")
            ),
        )
        .steps(answers.iter().map(|(s, _)| {
            Step::run(
                StepKind::AskNameServer,
                format!("Ask {} directly", s.server.ip()),
                Command::Dig {
                    server: Some(s.server.ip()),
                    name: name.clone(),
                    mode: DigMode::Plain,
                },
                Machine::This,
            )
        })),
    )
}

/// resolv.conf lists more than [`MAXNS`] name servers: glibc uses the first three only.
pub(crate) fn extra_nameservers_ignored(cx: &Ctx) -> Option<Finding> {
    let ignored = cx.facts.dns.ignored_servers();
    if ignored.is_empty() {
        return None;
    }
    let list: Vec<String> = ignored.iter().map(|a| a.to_string()).collect();
    Some(
        Finding::new(
            super::FindingId::ExtraNameserversIgnored,
            format!(
                "/etc/resolv.conf lists {} name servers, but the system resolver (glibc) uses \
                 only the first {MAXNS}: {} {} never asked, by applications or by this check.",
                MAXNS + ignored.len(),
                list.join(", "),
                if ignored.len() == 1 { "is" } else { "are" }
            ),
        )
        .steps([Step::run(
            StepKind::SeeResolvers,
            format!(
                "Keep at most {MAXNS} `nameserver` lines, the ones that matter first (or fix \
                 what writes the file: DHCP, VPN client)"
            ),
            Command::ResolvConf,
            Machine::This,
        )]),
    )
}

/// The search list applies to the name (it has no final dot and a list exists).
fn searched<'a>(cx: &'a Ctx) -> Option<&'a crate::dns::files::ResolvConf> {
    let name = cx.checked().host.to_string();
    let resolv = cx.facts.dns.resolv.as_ref()?;
    (!name.ends_with('.') && !resolv.search.is_empty()).then_some(resolv)
}

/// The name resolved only with a search domain appended.
pub(crate) fn search_domain_used(cx: &Ctx) -> Option<Finding> {
    let resolv = searched(cx)?;
    let name = cx.checked().host.to_string();
    // Only an answer with addresses: a search name's NODATA is said by the failure finding.
    let full = cx
        .facts
        .dns
        .servers
        .iter()
        .filter(|s| s.lookup.error.is_none())
        .find_map(|s| s.name_used.clone())?;
    Some(
        Finding::new(
            super::FindingId::SearchDomainUsed,
            format!(
                "{name} resolved only as {full}: the search domain from /etc/resolv.conf ({}) was \
                 appended. Machines with other search domains will not find it.",
                resolv.search.join(", ")
            ),
        )
        .steps([Step::say(
            StepKind::UseFullName,
            format!("Use the full name {full} in configurations."),
        )]),
    )
}

/// ndots made the resolver try search names first.
pub(crate) fn ndots_search_first(cx: &Ctx) -> Option<Finding> {
    let resolv = searched(cx)?;
    // A search name that answered is `search_domain_used`'s; one that failed says nothing here.
    let search_answered = |s: &ServerView| s.name_used.is_some() && s.lookup.error.is_none();
    if cx.facts.dns.servers.iter().any(search_answered) {
        return None;
    }
    let name = cx.checked().host.to_string();
    let dots = name.matches('.').count();
    let resolved = cx
        .facts
        .dns
        .direct
        .as_ref()
        .is_some_and(|d| d.error.is_none());
    if !(resolved && dots < resolv.ndots) {
        return None;
    }
    let tried: Vec<String> = resolv
        .search
        .iter()
        .map(|s| format!("{name}.{s}"))
        .collect();
    Some(
        Finding::new(
            super::FindingId::NdotsSearchFirst,
            format!(
                "{name} has fewer dots than ndots:{}, so the resolver first tried {} (a round \
                 trip each) before {name} itself.",
                resolv.ndots,
                tried.join(", ")
            ),
        )
        .steps([Step::say(
            StepKind::UseFullName,
            format!(
                "Write {name}. (with a final dot) to skip the search list, or lower `options \
                 ndots` in /etc/resolv.conf."
            ),
        )]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::FindingId;
    use crate::dns::files::{HostsLine, ResolvConf};
    use crate::dns::{DnsFacts, LookupError};
    use crate::facts::{AddressFacts, Facts};
    use crate::probe::{ConnectResult, ProbeFact};
    use crate::services::Services;
    use std::time::Duration;

    fn ok(addrs: &[&str]) -> Lookup {
        Lookup {
            addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
            elapsed: Duration::from_millis(1),
            error: None,
        }
    }
    fn failed(kind: DnsErrorKind) -> Lookup {
        Lookup {
            addresses: vec![],
            elapsed: Duration::from_millis(1),
            error: Some(LookupError::new(kind)),
        }
    }
    fn server(ip: &str, lookup: Lookup) -> ServerView {
        ServerView {
            server: (ip.parse::<IpAddr>().unwrap(), 53).into(),
            stub: crate::dns::servers::stub_kind(ip.parse().unwrap()),
            lookup,
            records: vec![],
            name_used: None,
            port53: None,
        }
    }
    fn facts(name: &str, dns: DnsFacts, probes: Vec<ProbeFact>) -> Facts {
        let target = crate::target::parse(name, Some("443"), &Services::parse("")).unwrap();
        Facts {
            dns,
            addresses: probes.into_iter().map(AddressFacts::probed).collect(),
            ..Facts::new(target, Duration::from_secs(5))
        }
    }
    fn hosts(line: usize, addr: &str) -> HostsLine {
        HostsLine {
            file: "/etc/hosts",
            line,
            address: addr.parse().unwrap(),
            text: format!("{addr} app.lab"),
        }
    }
    fn ids(fs: &[Finding]) -> Vec<&str> {
        fs.iter().map(|f| f.id.as_str()).collect()
    }
    /// The findings of a name that resolved and whose address answered.
    fn view_findings(f: &Facts) -> Vec<Finding> {
        let mut f = f.clone();
        if f.addresses.is_empty() {
            let address = "198.18.2.9:443".parse().unwrap();
            let open = ProbeFact::new(address, ConnectResult::Connected, Duration::from_micros(20));
            f.addresses.push(AddressFacts::probed(open));
        }
        crate::diagnosis::diagnose(f.clone()).findings
    }
    fn resolv(search: &[&str], ndots: usize) -> ResolvConf {
        ResolvConf {
            nameservers: vec![],
            search: search.iter().map(|s| s.to_string()).collect(),
            ndots,
            timeout: Duration::from_secs(1),
            attempts: 1,
        }
    }

    #[test]
    fn a_name_only_in_the_hosts_file() {
        let dns = DnsFacts {
            system: Some(ok(&["198.18.2.9"])),
            direct: Some(failed(DnsErrorKind::Nxdomain)),
            hosts: vec![hosts(3, "198.18.2.9")],
            ..DnsFacts::default()
        };
        let f = view_findings(&facts("app.lab", dns, vec![]));
        assert_eq!(ids(&f), ["name_only_in_hosts"]);
        assert!(f[0].message.contains("line 3"));
    }

    #[test]
    fn a_hosts_line_that_agrees_with_dns_is_no_finding() {
        let dns = DnsFacts {
            system: Some(ok(&["198.18.2.2"])),
            direct: Some(ok(&["198.18.2.2"])),
            hosts: vec![hosts(2, "198.18.2.2")],
            ..DnsFacts::default()
        };
        assert!(view_findings(&facts("app.lab", dns, vec![])).is_empty());
    }

    #[test]
    fn ndots_made_the_resolver_try_search_names_first() {
        let dns = DnsFacts {
            system: Some(ok(&["198.18.2.2"])),
            direct: Some(ok(&["198.18.2.2"])),
            resolv: Some(resolv(&["corp.example", "lab"], 3)),
            ..DnsFacts::default()
        };
        let f = view_findings(&facts("db.internal", dns, vec![]));
        assert_eq!(ids(&f), ["ndots_search_first"]);
        assert!(
            f[0].message
                .contains("db.internal.corp.example, db.internal.lab")
        );
        // Another server's NODATA for a search name does not hide it.
        let mut failed_search = server("198.18.2.3", failed(DnsErrorKind::Nodata));
        failed_search.name_used = Some("db.internal.lab".into());
        let dns = DnsFacts {
            system: Some(ok(&["198.18.2.2"])),
            direct: Some(ok(&["198.18.2.2"])),
            servers: vec![server("198.18.2.2", ok(&["198.18.2.2"])), failed_search],
            resolv: Some(resolv(&["corp.example", "lab"], 3)),
            ..DnsFacts::default()
        };
        let f = view_findings(&facts("db.internal", dns, vec![]));
        assert!(ids(&f).contains(&"ndots_search_first"), "{:?}", ids(&f));
        assert!(!ids(&f).contains(&"search_domain_used"), "{:?}", ids(&f));
        // A trailing dot means "no search list": nothing to say.
        let dns = DnsFacts {
            system: Some(ok(&["198.18.2.2"])),
            direct: Some(ok(&["198.18.2.2"])),
            resolv: Some(resolv(&["lab"], 3)),
            ..DnsFacts::default()
        };
        assert!(view_findings(&facts("db.internal.", dns, vec![])).is_empty());
    }

    #[test]
    fn an_ipv6_only_name_on_a_machine_without_ipv6() {
        let dns = DnsFacts {
            system: Some(ok(&["fd00:2::2"])),
            direct: Some(ok(&["fd00:2::2"])),
            ..DnsFacts::default()
        };
        let no_route = ConnectResult::Failed {
            errno: libc::ENETUNREACH,
        };
        let address = "[fd00:2::2]:443".parse().unwrap();
        let probe = ProbeFact::new(address, no_route, Duration::from_micros(20));
        let f = facts("v6only.lab", dns, vec![probe]);
        let d = crate::diagnosis::diagnose(f.clone());
        assert_eq!(d.verdict.as_str(), "unreachable");
        assert!(d.findings.iter().any(|f| f.id == FindingId::Ipv6OnlyName));
    }

    #[test]
    fn a_local_stub_resolver_gets_its_own_advice() {
        let dns = DnsFacts {
            system: Some(failed(DnsErrorKind::Timeout)),
            direct: Some(failed(DnsErrorKind::Servfail)),
            servers: vec![server("127.0.0.53", failed(DnsErrorKind::Servfail))],
            ..DnsFacts::default()
        };
        let d = crate::diagnosis::diagnose(facts("app.lab", dns, vec![]));
        let f = &d.findings;
        assert_eq!(f[0].id, FindingId::DnsServfail);
        assert!(f[0].message.contains("127.0.0.53 → SERVFAIL"));
        let cmds: Vec<&str> = d
            .steps
            .iter()
            .filter_map(|a| a.command.as_deref())
            .collect();
        assert!(
            cmds.contains(&"resolvectl status; resolvectl query app.lab"),
            "{cmds:?}"
        );
        assert!(cmds.contains(&"dig @127.0.0.53 app.lab"), "{cmds:?}");
    }

    #[test]
    fn more_than_three_servers_are_named_as_ignored() {
        let mut r = resolv(&[], 1);
        r.nameservers = ["198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.0.4"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let dns = DnsFacts {
            system: Some(ok(&["198.18.2.2"])),
            direct: Some(ok(&["198.18.2.2"])),
            resolv: Some(r.clone()),
            ..DnsFacts::default()
        };
        let f = view_findings(&facts("app.lab", dns, vec![]));
        assert_eq!(ids(&f), ["extra_nameservers_ignored"]);
        assert!(
            f[0].message.contains("lists 4 name servers")
                && f[0].message.contains("198.18.0.4 is never asked"),
            "{}",
            f[0].message
        );
        r.nameservers.truncate(3);
        let dns = DnsFacts {
            system: Some(ok(&["198.18.2.2"])),
            direct: Some(ok(&["198.18.2.2"])),
            resolv: Some(r),
            ..DnsFacts::default()
        };
        assert!(view_findings(&facts("app.lab", dns, vec![])).is_empty());
    }

    /// A search name's NODATA is not "resolved only as": the failure says which name it is for.
    #[test]
    fn a_search_name_that_failed_is_not_search_domain_used() {
        let mut sv = server("198.18.2.2", failed(DnsErrorKind::Nodata));
        sv.name_used = Some("app.lab".into());
        let dns = DnsFacts {
            system: Some(failed(DnsErrorKind::Nodata)),
            direct: Some(failed(DnsErrorKind::Nodata)),
            servers: vec![sv],
            resolv: Some(resolv(&["lab"], 1)),
            ..DnsFacts::default()
        };
        let d = crate::diagnosis::diagnose(facts("app", dns, vec![]));
        assert_eq!(ids(&d.findings), ["dns_nodata"]);
        let msg = &d.findings[0].message;
        assert!(
            msg.starts_with("The name app.lab (app with the search domain) exists")
                && msg.contains("198.18.2.2 → no A/AAAA record (NODATA) for app.lab"),
            "{msg}"
        );
        let cmds: Vec<&str> = d
            .steps
            .iter()
            .filter_map(|a| a.command.as_deref())
            .collect();
        assert!(
            cmds.iter().any(|c| c.starts_with("dig app.lab ANY")),
            "{cmds:?}"
        );
    }

    #[test]
    fn servers_that_agree_are_no_finding_and_failures_are_not_opinions() {
        let dns = DnsFacts {
            servers: vec![
                server("198.18.2.2", ok(&["198.18.2.2"])),
                server("198.18.2.3", ok(&["198.18.2.2"])),
                server("198.18.2.4", failed(DnsErrorKind::Timeout)),
            ],
            ..DnsFacts::default()
        };
        let f = view_findings(&facts("app.lab", dns, vec![]));
        assert!(!ids(&f).contains(&"servers_disagree"), "{:?}", ids(&f));
    }
}
