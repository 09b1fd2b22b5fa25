//! What this machine's listeners and firewall say about a failed connection.
//!
//! Reads `LocalFacts` and `Firewall` and writes the findings of docs/verdicts.md's "local side":
//! nothing listening (and whether the usual server runs elsewhere), loopback-only, the other
//! family, another address, a container's proxy, hidden owners, and firewall rules.

use std::net::IpAddr;

use super::{AddressResult, Advice, Finding, Outcome, Severity};
use crate::facts::Facts;
use crate::local::servers::{self, CONTAINER_PROXIES};
use crate::local::{Listener, LocalFacts, is_local};

/// Does a socket listening on `l` accept a connection to `dialled`?
/// `0.0.0.0` takes any IPv4 address of the machine; `::` any address, IPv4 included (Linux's
/// default `net.ipv6.bindv6only = 0`).
pub fn accepts(l: &Listener, dialled: IpAddr) -> bool {
    if l.address == dialled || l.address.to_canonical() == dialled.to_canonical() {
        return true;
    }
    match l.address {
        IpAddr::V4(a) => a.is_unspecified() && dialled.to_canonical().is_ipv4(),
        IpAddr::V6(a) => a.is_unspecified(),
    }
}

fn show(l: &Listener) -> String {
    match l.address {
        IpAddr::V6(a) => format!("[{a}]:{}", l.port),
        a => format!("{a}:{}", l.port),
    }
}

fn owner(l: &Listener) -> String {
    let user = l.user.clone().unwrap_or_else(|| format!("uid {}", l.uid));
    match &l.process {
        Some(p) => format!("{} (pid {}, user {user})", p.name, p.pid),
        None => format!("a process of user {user}"),
    }
}

/// The setting that moves the listening address, for the owner (or the port's usual server).
fn listen_setting(l: &LocalFacts, listener: &Listener) -> Option<&'static str> {
    listener
        .process
        .as_ref()
        .and_then(|p| servers::for_process(&p.name))
        .or_else(|| servers::for_port(l.port).next())
        .map(|s| s.listen_setting)
}

/// Findings about listeners on this machine.
pub fn listener_findings(facts: &Facts, l: &LocalFacts, addrs: &[AddressResult]) -> Vec<Finding> {
    let port = l.port;
    let mut out = Vec::new();
    let ss = Advice::run(
        "See every listener on the port with its process",
        format!("sudo ss -ltnp 'sport = :{port}'"),
        "this machine",
    );
    if l.listeners.is_empty() {
        let usual = &l.usual_server_names;
        out.push(Finding {
            id: "nothing_listens_here",
            severity: Severity::Error,
            message: format!("Nothing on this machine listens on TCP port {port}."),
            // With a usual server, the next finding says how to find and start it.
            advice: if usual.is_empty() {
                vec![Advice::say(
                    "Start the program that should serve this port, or check the port number \
                     the client uses.",
                )]
            } else {
                vec![]
            },
        });
        for s in &l.usual_servers {
            let known = servers::SERVERS.iter().find(|k| k.name == s.server);
            let where_ = match &s.listening {
                Some(socks) if socks.is_empty() => "but listens on no TCP port".to_string(),
                Some(socks) => format!(
                    "and listens on {} — not on port {port}",
                    socks
                        .iter()
                        .map(|a| a.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None => "(where it listens cannot be seen without root)".to_string(),
            };
            let mut advice = vec![Advice::say(format!(
                "Point the client at the port it really listens on, or change the server's port \
                 setting to {port} and restart it."
            ))];
            if s.listening.is_none() {
                advice.push(Advice::run(
                    "See its listening sockets",
                    format!("sudo ss -ltnp | grep -w 'pid={}'", s.process.pid),
                    "this machine",
                ));
            }
            if let Some(unit) = known.and_then(|k| k.unit) {
                advice.push(Advice::run(
                    "Look at its service status and configuration",
                    format!("systemctl status {unit}"),
                    "this machine",
                ));
            }
            out.push(Finding {
                id: "usual_server_elsewhere",
                severity: Severity::Warning,
                message: format!(
                    "{} is running ({} pid {}: {}) {where_}.",
                    s.server, s.process.name, s.process.pid, s.process.cmdline
                ),
                advice,
            });
        }
        if l.usual_servers.is_empty() {
            let units: Vec<&servers::KnownServer> = servers::for_port(port)
                .filter(|k| k.unit.is_some())
                .collect();
            if let Some(k) = units.first() {
                let unit = k.unit.unwrap_or_default();
                out.push(Finding {
                    id: "usual_server_not_running",
                    severity: Severity::Warning,
                    message: format!(
                        "{}, which usually serves port {port}, is not running on this machine.",
                        units.iter().map(|k| k.name).collect::<Vec<_>>().join(" / ")
                    ),
                    advice: vec![
                        Advice::run(
                            "See whether it is installed and why it stopped",
                            format!("systemctl status {unit}"),
                            "this machine",
                        ),
                        Advice::run(
                            "Start it",
                            format!("sudo systemctl start {unit}"),
                            "this machine",
                        ),
                        Advice::run(
                            "Read its last log lines",
                            format!("journalctl -u {unit} -n 50"),
                            "this machine",
                        ),
                    ],
                });
            }
        }
    }

    // Addresses of this machine that were dialled and not accepted.
    for a in addrs.iter().filter(|a| a.outcome != Outcome::Open) {
        let dialled = a.address.ip();
        if !is_local(dialled, &l.addresses) || l.listeners.is_empty() {
            continue;
        }
        if l.listeners.iter().any(|x| accepts(x, dialled)) {
            continue; // something listens there: a firewall or the backlog is the story
        }
        let list: Vec<String> = l.listeners.iter().map(show).collect();
        let list = list.join(", ");
        let first = &l.listeners[0];
        let setting = listen_setting(l, first);
        let all_loopback = l.listeners.iter().all(|x| x.address.is_loopback());
        let other_family = l
            .listeners
            .iter()
            .all(|x| x.address.is_ipv4() != dialled.to_canonical().is_ipv4());
        let (id, message) = if all_loopback && !dialled.is_loopback() {
            (
                "listens_on_loopback_only",
                format!(
                    "{} listens on port {port} only on loopback ({list}), so connections to \
                     {dialled} — this machine's other address — are refused. Only programs on \
                     this machine can reach it.",
                    owner(first)
                ),
            )
        } else if other_family {
            let fam = if dialled.to_canonical().is_ipv4() {
                "IPv6"
            } else {
                "IPv4"
            };
            (
                "listens_on_other_family",
                format!(
                    "{} listens on port {port} on {fam} only ({list}), but {dialled} was dialled. \
                     Clients that get {dialled} first (as `localhost` often gives ::1) fail.",
                    owner(first)
                ),
            )
        } else {
            (
                "bound_to_other_address",
                format!(
                    "{} listens on port {port} only on {list}, not on {dialled}: it is bound to \
                     another interface's address.",
                    owner(first)
                ),
            )
        };
        let mut advice = vec![Advice::say(match setting {
            Some(s) => format!(
                "Make it listen on {dialled} (or on all addresses) — set {s} — and restart it; \
                 or point the client at {list}."
            ),
            None => format!(
                "Make it listen on {dialled} (or on all addresses: 0.0.0.0 / ::) and restart \
                 it; or point the client at {list}."
            ),
        })];
        advice.push(ss.clone());
        out.push(Finding {
            id,
            severity: Severity::Error,
            message,
            advice,
        });
    }

    for x in &l.listeners {
        if let Some(p) = x
            .process
            .as_ref()
            .filter(|p| CONTAINER_PROXIES.contains(&p.name.as_str()))
        {
            out.push(Finding {
                id: "container_proxy",
                severity: Severity::Info,
                message: format!(
                    "Port {port} on {} is published by a container runtime's proxy ({}, pid {}): \
                     the real server runs inside a container.",
                    show(x),
                    p.name,
                    p.pid
                ),
                advice: vec![
                    Advice::run(
                        "Find the container that publishes the port",
                        format!("docker ps --filter publish={port}"),
                        "this machine",
                    ),
                    Advice::say(format!(
                        "Inside the container the server must listen on 0.0.0.0, not 127.0.0.1; \
                         and `-p 127.0.0.1:{port}:…` publishes it to this machine only."
                    )),
                ],
            });
            break;
        }
    }

    let hidden: Vec<&Listener> = l.listeners.iter().filter(|x| x.process.is_none()).collect();
    if !hidden.is_empty() && !l.privileged {
        out.push(Finding {
            id: "owner_hidden",
            severity: Severity::Info,
            message: format!(
                "{} listens on {}, but which program it is cannot be seen without root.",
                owner(hidden[0]),
                hidden
                    .iter()
                    .map(|x| show(x))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            advice: vec![Advice::run(
                "Run again with sudo to see the process",
                format!("sudo canreach {}", facts.target.input),
                "this machine",
            )],
        });
    }
    out
}

/// Findings about this machine's firewall rules for the port.
pub fn firewall_findings(facts: &Facts, local_target: bool) -> Vec<Finding> {
    let Some(fw) = &facts.firewall else {
        return vec![];
    };
    let port = facts.target.port;
    if !fw.inspected {
        return vec![Finding {
            id: "firewall_not_inspected",
            severity: Severity::Info,
            message: format!(
                "This machine's firewall was not inspected: {}.",
                fw.reason.as_deref().unwrap_or("unknown reason")
            ),
            advice: vec![Advice::run(
                "Include it by running as root",
                format!("sudo canreach {}", facts.target.input),
                "this machine",
            )],
        }];
    }
    let mut out = Vec::new();
    for (hook, id, whose) in [
        (
            "output",
            "local_firewall_output",
            "in its output path (what this machine sends)",
        ),
        (
            "input",
            "local_firewall_input",
            "in its input path (what this machine receives)",
        ),
    ] {
        if hook == "input" && !local_target {
            continue;
        }
        let rules: Vec<_> = fw.rules.iter().filter(|r| r.hook == hook).collect();
        let explicit: Vec<_> = rules.iter().filter(|r| r.handle.is_some()).collect();
        // A drop policy alone only matters when nothing more specific was found; it is still
        // worth naming because an accept rule may not exist.
        let shown: Vec<_> = if explicit.is_empty() {
            rules.clone()
        } else {
            explicit.into_iter().copied().collect()
        };
        if shown.is_empty() {
            continue;
        }
        let texts: Vec<String> = shown
            .iter()
            .map(|r| {
                format!(
                    "`{}` (table {} {}, chain {})",
                    r.text, r.family, r.table, r.chain
                )
            })
            .collect();
        let mut advice = vec![Advice::run(
            "Show the chain with rule handles",
            format!(
                "sudo nft -a list chain {} {} {}",
                shown[0].family, shown[0].table, shown[0].chain
            ),
            "this machine",
        )];
        if let Some(h) = shown[0].handle {
            advice.push(Advice::run(
                "If the rule is not wanted, delete it (and fix wherever it is configured, so it does not return)",
                format!("sudo nft delete rule {} {} {} handle {h}", shown[0].family, shown[0].table, shown[0].chain),
                "this machine",
            ));
        }
        let extra = if hook == "output" && shown.iter().any(|r| r.verdict == "drop") {
            " A drop there looks exactly like silence from the remote side."
        } else {
            ""
        };
        out.push(Finding {
            id,
            severity: Severity::Error,
            message: format!(
                "This machine's own firewall stops TCP port {port} {whose}: {}.{extra}",
                texts.join("; ")
            ),
            advice,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::Process;

    fn listener(addr: &str, name: Option<&str>) -> Listener {
        Listener {
            address: addr.parse().unwrap(),
            port: 5432,
            family: "ipv4",
            uid: 105,
            user: Some("postgres".into()),
            process: name.map(|n| Process {
                pid: 812,
                name: n.into(),
                cmdline: format!("/usr/bin/{n}"),
            }),
        }
    }

    #[test]
    fn wildcards_accept_their_family_and_dual_stack_accepts_both() {
        let v4any = listener("0.0.0.0", None);
        let v6any = listener("::", None);
        let lo = listener("127.0.0.1", None);
        assert!(accepts(&v4any, "198.18.0.5".parse().unwrap()));
        assert!(!accepts(&v4any, "::1".parse().unwrap()));
        assert!(accepts(&v6any, "198.18.0.5".parse().unwrap()));
        assert!(accepts(&v6any, "::1".parse().unwrap()));
        assert!(accepts(&lo, "127.0.0.1".parse().unwrap()));
        assert!(!accepts(&lo, "198.18.0.5".parse().unwrap()));
    }

    #[test]
    fn the_listen_setting_comes_from_the_owner() {
        let l = LocalFacts {
            port: 5432,
            addresses: vec![],
            listeners: vec![],
            owner_other_listeners: vec![],
            usual_servers: vec![],
            usual_server_names: vec![],
            privileged: true,
        };
        let redis = Listener {
            port: 6379,
            ..listener("127.0.0.1", Some("redis-server"))
        };
        assert!(listen_setting(&l, &redis).unwrap().contains("redis.conf"));
        assert!(
            listen_setting(&l, &listener("127.0.0.1", None))
                .unwrap()
                .contains("listen_addresses")
        );
    }

    fn facts_for(local: LocalFacts, firewall: Option<crate::local::Firewall>) -> Facts {
        use crate::probe::{ConnectResult, ProbeFact, ProbeSpec};
        let services = crate::services::Services::parse("");
        let target = crate::target::parse("127.0.0.1:5432", None, &services).unwrap();
        Facts {
            probes: vec![ProbeFact {
                spec: ProbeSpec::to("127.0.0.1:5432".parse().unwrap()),
                result: ConnectResult::Failed {
                    errno: libc::ECONNREFUSED,
                },
                elapsed: std::time::Duration::from_micros(50),
                icmp: None,
                local: None,
            }],
            local: Some(local),
            firewall,
            ..Facts::new(target, std::time::Duration::from_secs(5))
        }
    }

    fn local_with(listeners: Vec<Listener>) -> LocalFacts {
        LocalFacts {
            port: 5432,
            addresses: vec!["127.0.0.1".parse().unwrap()],
            listeners,
            owner_other_listeners: vec![],
            usual_servers: vec![],
            usual_server_names: vec!["PostgreSQL"],
            privileged: true,
        }
    }

    #[test]
    fn a_container_proxy_owner_is_named() {
        let f = facts_for(
            local_with(vec![listener("0.0.0.0", Some("docker-proxy"))]),
            None,
        );
        let d = crate::diagnosis::diagnose(&f);
        let c = d
            .findings
            .iter()
            .find(|f| f.id == "container_proxy")
            .expect("container_proxy");
        assert!(c.message.contains("docker-proxy, pid 812"));
        assert_eq!(
            c.advice[0].command.as_deref(),
            Some("docker ps --filter publish=5432")
        );
    }

    #[test]
    fn an_input_rule_is_reported_for_a_local_target_only() {
        let fw = crate::local::Firewall {
            inspected: true,
            reason: None,
            rules: vec![crate::local::nft::FirewallRule {
                family: "inet".into(),
                table: "filter".into(),
                chain: "input".into(),
                hook: crate::local::nft::Hook::Input,
                verdict: crate::local::nft::RuleVerdict::Reject,
                text: "tcp dport 5432 reject with tcp reset".into(),
                handle: Some(7),
            }],
        };
        let f = facts_for(
            local_with(vec![listener("0.0.0.0", Some("postgres"))]),
            Some(fw),
        );
        let found = firewall_findings(&f, true);
        assert_eq!(found[0].id, "local_firewall_input");
        assert!(
            found[0]
                .message
                .contains("tcp dport 5432 reject with tcp reset")
        );
        assert_eq!(
            found[0].advice[1].command.as_deref(),
            Some("sudo nft delete rule inet filter input handle 7")
        );
        assert!(
            firewall_findings(&f, false).is_empty(),
            "input rules do not concern remote targets"
        );
    }

    #[test]
    fn a_read_firewall_with_no_rule_rules_out_a_forged_reset() {
        let clean = crate::local::Firewall {
            inspected: true,
            reason: None,
            rules: vec![],
        };
        let d = crate::diagnosis::diagnose(&facts_for(local_with(vec![]), Some(clean)));
        assert_eq!(d.findings[0].id, "port_closed");
        assert!(
            !d.findings[0].message.contains("imitates"),
            "{}",
            d.findings[0].message
        );
        let d = crate::diagnosis::diagnose(&facts_for(local_with(vec![]), None));
        assert!(d.findings[0].message.contains("reject with tcp reset"));
    }
}
