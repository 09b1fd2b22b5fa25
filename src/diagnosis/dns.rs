//! What the name stage's facts mean: the failure kinds told apart, which server said what,
//! /etc/hosts against DNS, search domains, and local stub resolvers.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::{AddressResult, Advice, Evidence, Finding, Severity, classify, dns_finding_id};
use crate::dns::servers::ServerView;
use crate::dns::{DnsErrorKind, Lookup, LookupError};
use crate::facts::Facts;
use crate::probe::ProbeFact;

const HERE: &str = "this machine";

/// A silent name server's TCP port 53, in words: `closed (TCP reset after 0.2 ms)`.
pub fn port53_tcp(p: &ProbeFact) -> String {
    let r = classify(p);
    format!("{} ({})", r.outcome.word(), r.describe())
}

/// `serialize_with` for `Port53::tcp`: the JSON carries the words, not the raw attempt.
pub fn ser_port53_tcp<S: serde::Serializer>(p: &ProbeFact, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&port53_tcp(p))
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
                            p.udp.replace('_', " ")
                        ),
                        None => "no answer".into(),
                    },
                    _ => e.text.clone(),
                },
            };
            format!("{} → {what}", s.server.ip())
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `dig @SERVER NAME` for the first server, the exact way to see its answer.
fn dig(facts: &Facts, name: &str) -> Advice {
    let at = facts
        .dns
        .servers
        .first()
        .map(|s| format!("@{} ", s.server.ip()))
        .unwrap_or_default();
    Advice::run(
        "Ask the name server directly and read the status line",
        format!("dig {at}{name}"),
        HERE,
    )
}

fn stub_advice(facts: &Facts, name: &str) -> Option<Advice> {
    let s = facts.dns.servers.iter().find(|s| s.stub.is_some())?;
    Some(match s.stub {
        Some("systemd-resolved") => Advice::run(
            format!(
                "{} is systemd-resolved, a local stub: the real servers are its upstreams; see them and ask through it",
                s.server.ip()
            ),
            format!("resolvectl status; resolvectl query {name}"),
            HERE,
        ),
        _ => Advice::say(format!(
            "{} is a resolver on this machine (dnsmasq, unbound, …): its own configuration \
             names the upstream servers that really answer (e.g. /etc/dnsmasq.conf, \
             /etc/unbound/unbound.conf).",
            s.server.ip()
        )),
    })
}

/// " It has MX and TXT records only." — the non-address types the servers showed for the name.
fn other_types(facts: &Facts) -> String {
    let mut kinds: Vec<&str> = facts
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

/// The finding(s) for a name that gave no address.
pub fn failure_findings(facts: &Facts, error: &LookupError) -> Vec<Finding> {
    let name = facts.target.host.to_string();
    let kind = error.kind;
    let said = if facts.dns.servers.is_empty() {
        String::new()
    } else {
        format!(" Name servers: {}.", servers_said(&facts.dns.servers))
    };
    let getent = Advice::run(
        "See what applications get for the name",
        format!("getent ahosts {name}"),
        HERE,
    );
    let resolv = Advice::run(
        "See which name servers this machine uses",
        "cat /etc/resolv.conf",
        HERE,
    );
    let (message, mut advice) = match kind {
        DnsErrorKind::Nxdomain => (
            format!("The name {name} does not exist in DNS (NXDOMAIN).{said}"),
            vec![
                Advice::say(format!("Check the spelling of {name}.")),
                Advice::say(
                    "If it is an internal name, connect to the VPN or use the company's name \
                     server: public DNS does not know internal names.",
                ),
                dig(facts, &name),
                getent,
            ],
        ),
        DnsErrorKind::Nodata => (
            format!(
                "The name {name} exists but has no address record (A or AAAA) (NODATA).{}{said}",
                other_types(facts)
            ),
            vec![
                Advice::run(
                    "See which records the name does have",
                    format!("dig {name} ANY +noall +answer"),
                    HERE,
                ),
                Advice::say(
                    "Ask the owner of the DNS zone to add an A (IPv4) or AAAA (IPv6) record.",
                ),
            ],
        ),
        DnsErrorKind::Servfail => (
            format!(
                "The name server failed to answer for {name} (SERVFAIL): its own upstream \
                 servers are broken or unreachable, or DNSSEC validation failed.{said}"
            ),
            vec![
                dig(facts, &name),
                Advice::run(
                    "If the name is DNSSEC-signed, see whether validation is the problem",
                    format!("dig +cd {name}"),
                    HERE,
                ),
                Advice::say("Try again in a minute; if it persists, tell whoever runs your DNS."),
            ],
        ),
        DnsErrorKind::Refused => (
            format!(
                "The name server refused to answer for {name} (REFUSED): it does not serve this \
                 client or this name.{said}"
            ),
            vec![
                resolv,
                Advice::say("Use a name server that serves you (the VPN's or the company's)."),
            ],
        ),
        DnsErrorKind::Timeout => (
            format!(
                "No name server answered for {name} in time: the name server is down or \
                 unreachable.{said}"
            ),
            vec![
                resolv,
                dig(facts, &name),
                Advice::say(
                    "If its port 53 is closed or refused, it runs no name server (any more): fix \
                     /etc/resolv.conf or the network settings that write it (DHCP, VPN client).",
                ),
            ],
        ),
        DnsErrorKind::NoNameservers => (
            format!("This machine has no name server configured, so {name} cannot be looked up."),
            vec![
                Advice::run(
                    "Look at the resolver configuration",
                    "cat /etc/resolv.conf",
                    HERE,
                ),
                Advice::say(
                    "Add a `nameserver` line, or fix the network settings that should write it.",
                ),
            ],
        ),
        DnsErrorKind::Other => (
            format!("Looking up {name} failed: {}.{said}", error.text),
            vec![getent],
        ),
    };
    advice.extend(stub_advice(facts, &name));
    let mut out = vec![Finding {
        id: dns_finding_id(kind),
        severity: Severity::Error,
        message,
        advice,
    }];
    out.extend(disagreement(facts));
    out.extend(search_findings(facts));
    out
}

/// Findings from comparing the system view, /etc/hosts and the name servers, for a name that
/// resolved.
pub fn view_findings(facts: &Facts, addrs: &[AddressResult]) -> Vec<Finding> {
    let mut out = Vec::new();
    let name = facts.target.host.to_string();
    let (Some(sys), direct) = (&facts.dns.system, facts.dns.direct.as_ref()) else {
        return out;
    };
    if sys.error.is_some() {
        return out;
    }
    out.extend(hosts_findings(facts, sys, direct));
    out.extend(disagreement(facts));
    out.extend(search_findings(facts));
    // The IPv6-only name on a machine without IPv6.
    let only_v6 = !sys.addresses.is_empty() && sys.addresses.iter().all(IpAddr::is_ipv6);
    if only_v6
        && addrs
            .first()
            .is_some_and(|a| matches!(a.evidence, Evidence::NoRouteHere(_)))
    {
        out.push(Finding {
            id: "ipv6_only_name",
            severity: Severity::Error,
            message: format!(
                "{name} has only IPv6 addresses (no A record), and this machine has no IPv6 \
                 route: it cannot reach the name at all."
            ),
            advice: vec![
                Advice::say(format!(
                    "Ask the owner of {name} to add an A (IPv4) record, or give this machine IPv6 \
                     connectivity."
                )),
                Advice::run(
                    "Confirm which records exist",
                    format!("dig {name} A; dig {name} AAAA"),
                    HERE,
                ),
            ],
        });
    }
    out
}

fn hosts_findings(facts: &Facts, sys: &Lookup, direct: Option<&Lookup>) -> Vec<Finding> {
    let name = facts.target.host.to_string();
    let hosts = &facts.dns.hosts;
    let Some(direct) = direct else {
        return vec![];
    };
    let dns: BTreeSet<IpAddr> = direct.addresses.iter().copied().collect();
    if let Some(h) = hosts.first() {
        if direct
            .error
            .as_ref()
            .is_some_and(|e| e.kind == DnsErrorKind::Nxdomain)
        {
            return vec![Finding {
                id: "name_only_in_hosts",
                severity: Severity::Warning,
                message: format!(
                    "{name} exists only in {} (line {}: `{}`): DNS says it does not exist \
                     (NXDOMAIN). Only this machine can use the name.",
                    h.file, h.line, h.text
                ),
                advice: vec![Advice::say(format!(
                    "If other machines need {name}, add it to DNS; if the entry is left over, remove line {} of {}.",
                    h.line, h.file
                ))],
            }];
        }
        if !dns.is_empty() && !dns.contains(&h.address) {
            let dns_list: Vec<String> = dns.iter().map(|a| a.to_string()).collect();
            return vec![Finding {
                id: "hosts_override",
                severity: Severity::Warning,
                message: format!(
                    "{} line {} pins {name} to {} (`{}`), but DNS says {}: applications use the \
                     hosts file's address, and that entry may be stale. The address probed is \
                     the one applications use.",
                    h.file,
                    h.line,
                    h.address,
                    h.text,
                    dns_list.join(", ")
                ),
                advice: vec![
                    Advice::run(
                        format!(
                            "If the entry is stale, remove or correct line {} of {}",
                            h.line, h.file
                        ),
                        format!("sudo sed -n '{}p' {}", h.line, h.file),
                        HERE,
                    ),
                    Advice::run(
                        "Compare what applications get with what DNS says",
                        format!("getent ahosts {name}; dig +short {name}"),
                        HERE,
                    ),
                ],
            }];
        }
        return vec![];
    }
    // No hosts line, yet the system's answer is not DNS's: nsswitch, mDNS, a cache.
    let missing: Vec<String> = sys
        .addresses
        .iter()
        .filter(|a| !dns.contains(a))
        .map(|a| a.to_string())
        .collect();
    if direct.error.is_some() || dns.is_empty() || missing.is_empty() {
        return vec![];
    }
    vec![Finding {
        id: "system_differs_from_dns",
        severity: Severity::Warning,
        message: format!(
            "Applications get {} for {name}, but DNS says {}: something local (nsswitch, mDNS, \
             a cache) answers instead of DNS.",
            missing.join(", "),
            dns.iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        advice: vec![Advice::run(
            "See which sources the system consults, in order",
            "grep '^hosts:' /etc/nsswitch.conf",
            HERE,
        )],
    }]
}

/// Servers that answered differently: split horizon, or a stale secondary.
fn disagreement(facts: &Facts) -> Option<Finding> {
    let answers: Vec<(&ServerView, String)> = facts
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
    let name = facts.target.host.to_string();
    let said: Vec<String> = answers
        .iter()
        .map(|(s, k)| format!("{} says {k}", s.server.ip()))
        .collect();
    Some(Finding {
        id: "servers_disagree",
        severity: Severity::Warning,
        message: format!(
            "The configured name servers disagree about {name}: {}. Clients get whichever \
             answers first — a split-horizon setup or a stale secondary.",
            said.join("; ")
        ),
        advice: answers
            .iter()
            .map(|(s, _)| {
                Advice::run(
                    format!("Ask {} directly", s.server.ip()),
                    format!("dig @{} {name}", s.server.ip()),
                    HERE,
                )
            })
            .collect(),
    })
}

/// Search domains: the name only resolved with one appended, or `ndots` made the resolver try
/// search names first.
fn search_findings(facts: &Facts) -> Option<Finding> {
    let name = facts.target.host.to_string();
    let resolv = facts.dns.resolv.as_ref()?;
    if name.ends_with('.') || resolv.search.is_empty() {
        return None;
    }
    let used = facts.dns.servers.iter().find_map(|s| s.name_used.clone());
    if let Some(full) = used {
        return Some(Finding {
            id: "search_domain_used",
            severity: Severity::Info,
            message: format!(
                "{name} resolved only as {full}: the search domain from /etc/resolv.conf \
                 ({}) was appended. Machines with other search domains will not find it.",
                resolv.search.join(", ")
            ),
            advice: vec![Advice::say(format!(
                "Use the full name {full} in configurations."
            ))],
        });
    }
    let dots = name.matches('.').count();
    let resolved = facts.dns.direct.as_ref().is_some_and(|d| d.error.is_none());
    if resolved && dots < resolv.ndots {
        let tried: Vec<String> = resolv
            .search
            .iter()
            .map(|s| format!("{name}.{s}"))
            .collect();
        return Some(Finding {
            id: "ndots_search_first",
            severity: Severity::Info,
            message: format!(
                "{name} has fewer dots than ndots:{}, so the resolver first tried {} (a round \
                 trip each) before {name} itself.",
                resolv.ndots,
                tried.join(", ")
            ),
            advice: vec![Advice::say(format!(
                "Write {name}. (with a final dot) to skip the search list, or lower `options ndots` in /etc/resolv.conf."
            ))],
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::files::{HostsLine, ResolvConf};
    use crate::dns::{DnsFacts, LookupError};
    use crate::probe::{ConnectResult, ProbeFact, ProbeSpec};
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
            error: Some(LookupError {
                kind,
                text: "x".into(),
            }),
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
            probes,
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
        fs.iter().map(|f| f.id).collect()
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
        let f = view_findings(&facts("app.lab", dns, vec![]), &[]);
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
        assert!(view_findings(&facts("app.lab", dns, vec![]), &[]).is_empty());
    }

    #[test]
    fn ndots_made_the_resolver_try_search_names_first() {
        let dns = DnsFacts {
            system: Some(ok(&["198.18.2.2"])),
            direct: Some(ok(&["198.18.2.2"])),
            resolv: Some(resolv(&["corp.example", "lab"], 3)),
            ..DnsFacts::default()
        };
        let f = view_findings(&facts("db.internal", dns, vec![]), &[]);
        assert_eq!(ids(&f), ["ndots_search_first"]);
        assert!(
            f[0].message
                .contains("db.internal.corp.example, db.internal.lab")
        );
        // A trailing dot means "no search list": nothing to say.
        let dns = DnsFacts {
            system: Some(ok(&["198.18.2.2"])),
            direct: Some(ok(&["198.18.2.2"])),
            resolv: Some(resolv(&["lab"], 3)),
            ..DnsFacts::default()
        };
        assert!(view_findings(&facts("db.internal.", dns, vec![]), &[]).is_empty());
    }

    #[test]
    fn an_ipv6_only_name_on_a_machine_without_ipv6() {
        let dns = DnsFacts {
            system: Some(ok(&["fd00:2::2"])),
            direct: Some(ok(&["fd00:2::2"])),
            ..DnsFacts::default()
        };
        let probe = ProbeFact {
            spec: ProbeSpec::to("[fd00:2::2]:443".parse().unwrap()),
            result: ConnectResult::Failed {
                errno: libc::ENETUNREACH,
            },
            elapsed: Duration::from_micros(20),
            icmp: None,
            local: None,
        };
        let f = facts("v6only.lab", dns, vec![probe]);
        let d = crate::diagnosis::diagnose(&f);
        assert_eq!(d.verdict.as_str(), "unreachable");
        assert!(d.findings.iter().any(|f| f.id == "ipv6_only_name"));
    }

    #[test]
    fn a_local_stub_resolver_gets_its_own_advice() {
        let dns = DnsFacts {
            system: Some(failed(DnsErrorKind::Timeout)),
            direct: Some(failed(DnsErrorKind::Servfail)),
            servers: vec![server("127.0.0.53", failed(DnsErrorKind::Servfail))],
            ..DnsFacts::default()
        };
        let f = crate::diagnosis::diagnose(&facts("app.lab", dns, vec![])).findings;
        assert_eq!(f[0].id, "dns_servfail");
        assert!(f[0].message.contains("127.0.0.53 → SERVFAIL"));
        let cmds: Vec<&str> = f[0]
            .advice
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
    fn servers_that_agree_are_no_finding_and_failures_are_not_opinions() {
        let dns = DnsFacts {
            servers: vec![
                server("198.18.2.2", ok(&["198.18.2.2"])),
                server("198.18.2.3", ok(&["198.18.2.2"])),
                server("198.18.2.4", failed(DnsErrorKind::Timeout)),
            ],
            ..DnsFacts::default()
        };
        assert!(disagreement(&facts("app.lab", dns, vec![])).is_none());
    }
}
