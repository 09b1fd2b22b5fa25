//! The JSON renderer: one object per check, the contract in `docs/json.md`.
//!
//! The shape is a set of view structs built from facts and diagnosis, so the contract is
//! visible in one place and does not move when internal types do. Bump [`SCHEMA_VERSION`] on
//! any change that removes or renames a field or changes a meaning; adding fields does not.

use std::io::{self, Write};

use serde::Serialize;

use crate::diagnosis::silence::{Liveness, Path};
use crate::diagnosis::{Diagnosis, Finding, Outcome, Sender, Verdict, errno_name};
use crate::dns::files::{HostsLine, ResolvConf};
use crate::dns::servers::ServerView;
use crate::dns::{Lookup, LookupError};
use crate::facts::{Facts, ms};
use crate::local::{Firewall, LocalFacts};
use crate::probe::{ConnectResult, Icmp};
use crate::target::{Host, PortSource};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
struct Report<'a> {
    schema_version: u32,
    target: TargetView<'a>,
    verdict: Verdict,
    exit_code: i32,
    summary: &'a str,
    dns: DnsView<'a>,
    probes: Vec<ProbeView>,
    /// Present when the first address was slow to answer: is its host up?
    liveness: Option<&'a Liveness>,
    /// Present when the path was walked.
    trace: Option<&'a Path>,
    /// Present when this machine was inspected (listeners and/or firewall).
    local: Option<LocalView<'a>>,
    findings: &'a [Finding],
    elapsed_ms: f64,
    timeout_ms: f64,
}

#[derive(Serialize)]
struct LocalView<'a> {
    /// Listeners, owners and usual servers, when this machine is the target (or `--local`).
    #[serde(flatten)]
    listeners: Option<&'a LocalFacts>,
    /// This machine's firewall rules for the port, when read.
    firewall: Option<&'a Firewall>,
}

#[derive(Serialize)]
struct TargetView<'a> {
    input: &'a str,
    host: String,
    port: u16,
    port_source: PortSource,
    service: Option<&'a str>,
}

#[derive(Serialize)]
struct DnsView<'a> {
    /// `literal` (no lookup) or `resolver`.
    source: &'static str,
    /// The addresses probed, in the order the system tries them.
    addresses: Vec<String>,
    /// Why there is no address (present only on failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a LookupError>,
    /// What applications see (getaddrinfo).
    system: Option<&'a Lookup>,
    /// What the name servers say; null when not asked or not finished.
    direct: Option<&'a Lookup>,
    /// Each configured name server's own answer.
    servers: &'a [ServerView],
    /// /etc/resolv.conf as read.
    resolv: Option<&'a ResolvConf>,
    /// /etc/hosts lines naming the target.
    hosts: &'a [HostsLine],
}

#[derive(Serialize)]
struct ProbeView {
    address: String,
    port: u16,
    family: &'static str,
    outcome: Outcome,
    evidence: String,
    elapsed_ms: f64,
    /// The errno connect() ended with, by name; absent when it connected or timed out.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp: Option<IcmpView>,
}

#[derive(Serialize)]
struct IcmpView {
    #[serde(flatten)]
    icmp: Icmp,
    sender: Sender,
}

/// Write the report as one JSON object and a newline.
pub fn render(facts: &Facts, diag: &Diagnosis, w: &mut dyn Write) -> io::Result<()> {
    let report = build(facts, diag);
    serde_json::to_writer_pretty(&mut *w, &report)?;
    writeln!(w)
}

fn build<'a>(facts: &'a Facts, diag: &'a Diagnosis) -> Report<'a> {
    let t = &facts.target;
    let literal = matches!(t.host, Host::Ip(_));
    let probes = facts
        .probes
        .iter()
        .zip(&diag.addresses)
        .map(|(p, a)| ProbeView {
            address: a.address.ip().to_string(),
            port: a.address.port(),
            family: if a.address.is_ipv4() { "ipv4" } else { "ipv6" },
            outcome: a.outcome,
            evidence: a.describe(),
            elapsed_ms: ms(a.elapsed),
            error: match p.result {
                ConnectResult::Failed { errno } => Some(errno_name(errno)),
                _ => None,
            },
            icmp: p.icmp.map(|icmp| IcmpView {
                icmp,
                sender: a.sender().map_or(Sender::Unknown, |s| s.0),
            }),
        })
        .collect();
    Report {
        schema_version: SCHEMA_VERSION,
        target: TargetView {
            input: &t.input,
            host: t.host.to_string(),
            port: t.port.get(),
            port_source: t.port_source,
            service: t.service.as_deref(),
        },
        verdict: diag.verdict,
        exit_code: diag.verdict.exit_code(),
        summary: &diag.summary,
        dns: DnsView {
            source: if literal { "literal" } else { "resolver" },
            addresses: facts.addresses().map(|a| a.ip().to_string()).collect(),
            error: diag.dns_error.as_ref(),
            system: facts.dns.system.as_ref(),
            direct: facts.dns.direct.as_ref(),
            servers: &facts.dns.servers,
            resolv: facts.dns.resolv.as_ref(),
            hosts: &facts.dns.hosts,
        },
        probes,
        liveness: diag.liveness.as_ref(),
        trace: diag.path.as_ref(),
        local: (facts.local.is_some() || facts.firewall.is_some()).then_some(LocalView {
            listeners: facts.local.as_ref(),
            firewall: facts.firewall.as_ref(),
        }),
        findings: &diag.findings,
        elapsed_ms: ms(facts.elapsed),
        timeout_ms: ms(facts.timeout),
    }
}
