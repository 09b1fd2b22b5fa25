//! The JSON renderer: one object per check, the contract in `docs/json.md`.
//!
//! The contract is its own model: the structs below are built from the facts and the
//! diagnosis but share no type with them, so renaming an internal field or variant cannot
//! change what scripts read. Bump [`SCHEMA_VERSION`] on any change that removes or renames a
//! field or changes a meaning; adding fields does not.

use std::io::{self, Write};
use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use crate::diagnosis::dns::{error_words, port53_tcp};
use crate::diagnosis::silence::{HopKind, Liveness, LivenessProbe, Path};
use crate::diagnosis::{Diagnosis, Machine, Outcome, PlannedStep, Sender, errno_name};
use crate::dns::servers::{ServerView, Stub, Udp53};
use crate::dns::{DnsErrorKind, Lookup, LookupError};
use crate::facts::{Facts, ms};
use crate::local::{Firewall, Listener, LocalFacts, Process};
use crate::probe::ConnectResult;
use crate::target::{Host, PortSource};

pub const SCHEMA_VERSION: u32 = 2;

#[derive(Serialize)]
struct Report {
    schema_version: u32,
    target: TargetJ,
    verdict: &'static str,
    exit_code: i32,
    summary: String,
    dns: DnsJ,
    probes: Vec<ProbeJ>,
    /// Present when the first address was slow to answer: is its host up?
    liveness: Option<LivenessJ>,
    /// Present when the path was walked.
    trace: Option<TraceJ>,
    /// Present when this machine was inspected (listeners and/or firewall).
    local: Option<LocalJ>,
    findings: Vec<FindingJ>,
    advice: Vec<StepJ>,
    elapsed_ms: f64,
    timeout_ms: f64,
}

#[derive(Serialize)]
struct TargetJ {
    input: String,
    host: String,
    port: u16,
    port_source: &'static str,
    service: Option<String>,
}

#[derive(Serialize)]
struct DnsJ {
    source: &'static str,
    addresses: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorJ>,
    system: Option<LookupJ>,
    direct: Option<LookupJ>,
    servers: Vec<ServerJ>,
    resolv: Option<ResolvJ>,
    hosts: Vec<HostsJ>,
}

#[derive(Serialize)]
struct ErrorJ {
    kind: &'static str,
    text: String,
}

#[derive(Serialize)]
struct LookupJ {
    addresses: Vec<String>,
    elapsed_ms: f64,
    error: Option<ErrorJ>,
}

#[derive(Serialize)]
struct ServerJ {
    server: String,
    stub: Option<&'static str>,
    addresses: Vec<String>,
    elapsed_ms: f64,
    error: Option<ErrorJ>,
    records: Vec<RecordJ>,
    name_used: Option<String>,
    port53: Option<Port53J>,
}

#[derive(Serialize)]
struct RecordJ {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    ttl: u32,
    data: String,
}

#[derive(Serialize)]
struct Port53J {
    tcp: String,
    udp: &'static str,
}

#[derive(Serialize)]
struct ResolvJ {
    nameservers: Vec<String>,
    search: Vec<String>,
    ndots: usize,
    timeout_ms: f64,
    attempts: usize,
}

#[derive(Serialize)]
struct HostsJ {
    file: String,
    line: usize,
    address: String,
    text: String,
}

#[derive(Serialize)]
struct ProbeJ {
    address: String,
    port: u16,
    family: &'static str,
    outcome: &'static str,
    evidence: String,
    elapsed_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp: Option<IcmpJ>,
}

#[derive(Serialize)]
struct IcmpJ {
    v6: bool,
    #[serde(rename = "type")]
    kind: u8,
    code: u8,
    from: Option<String>,
    meaning: &'static str,
    sender: &'static str,
}

#[derive(Serialize)]
struct LivenessJ {
    address: String,
    alive: Option<bool>,
    probes: Vec<LivenessProbeJ>,
    second_syn: Option<LivenessProbeJ>,
    decided_after_ms: Option<f64>,
}

#[derive(Serialize)]
struct LivenessProbeJ {
    port: u16,
    outcome: &'static str,
    elapsed_ms: Option<f64>,
}

#[derive(Serialize)]
struct TraceJ {
    address: String,
    hops: Vec<HopJ>,
    last_responding: Option<ResponderJ>,
    reached_at: Option<u8>,
    elapsed_ms: f64,
}

#[derive(Serialize)]
struct HopJ {
    ttl: u8,
    address: Option<String>,
    elapsed_ms: Option<f64>,
    kind: &'static str,
}

#[derive(Serialize)]
struct ResponderJ {
    ttl: u8,
    address: String,
}

#[derive(Serialize)]
struct LocalJ {
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    addresses: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    listeners: Option<Vec<ListenerJ>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_other_listeners: Option<Vec<ListenerJ>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usual_servers: Option<Vec<RunningJ>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usual_server_names: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    privileged: Option<bool>,
    firewall: Option<FirewallJ>,
}

#[derive(Serialize)]
struct ListenerJ {
    address: String,
    port: u16,
    family: &'static str,
    uid: u32,
    user: Option<String>,
    process: Option<ProcessJ>,
}

#[derive(Serialize)]
struct ProcessJ {
    pid: u32,
    name: String,
    cmdline: String,
}

#[derive(Serialize)]
struct RunningJ {
    server: &'static str,
    process: ProcessJ,
    listening: Option<Vec<String>>,
}

#[derive(Serialize)]
struct FirewallJ {
    inspected: bool,
    reason: Option<String>,
    rules: Vec<RuleJ>,
}

#[derive(Serialize)]
struct RuleJ {
    family: String,
    table: String,
    chain: String,
    hook: String,
    verdict: String,
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    handle: Option<u64>,
}

#[derive(Serialize)]
struct FindingJ {
    id: &'static str,
    severity: &'static str,
    message: String,
    /// The numbers (1-based, `advice[].step`) of the planned steps this finding proposed.
    steps: Vec<usize>,
}

#[derive(Serialize)]
struct StepJ {
    step: usize,
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    on: Option<MachineJ>,
    findings: Vec<&'static str>,
}

#[derive(Serialize)]
struct MachineJ {
    machine: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<String>,
}

/// Write the report as one JSON object and a newline.
pub fn render(facts: &Facts, diag: &Diagnosis, w: &mut dyn Write) -> io::Result<()> {
    let report = build(facts, diag);
    serde_json::to_writer_pretty(&mut *w, &report)?;
    writeln!(w)
}

fn opt_ms(d: Option<Duration>) -> Option<f64> {
    d.map(ms)
}

fn strings<T: ToString>(xs: &[T]) -> Vec<String> {
    xs.iter().map(ToString::to_string).collect()
}

fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "ipv4" } else { "ipv6" }
}

fn kind_word(k: DnsErrorKind) -> &'static str {
    match k {
        DnsErrorKind::Nxdomain => "nxdomain",
        DnsErrorKind::Nodata => "nodata",
        DnsErrorKind::Servfail => "servfail",
        DnsErrorKind::Refused => "refused",
        DnsErrorKind::Timeout => "timeout",
        DnsErrorKind::NoNameservers => "no_nameservers",
        DnsErrorKind::Other => "other",
    }
}

fn error(e: &LookupError) -> ErrorJ {
    ErrorJ {
        kind: kind_word(e.kind),
        text: error_words(e),
    }
}

fn lookup(l: &Lookup) -> LookupJ {
    LookupJ {
        addresses: strings(&l.addresses),
        elapsed_ms: ms(l.elapsed),
        error: l.error.as_ref().map(error),
    }
}

fn server(s: &ServerView) -> ServerJ {
    ServerJ {
        server: s.server.to_string(),
        stub: s.stub.map(|k| match k {
            Stub::SystemdResolved => "systemd_resolved",
            Stub::Local => "local",
        }),
        addresses: strings(&s.lookup.addresses),
        elapsed_ms: ms(s.lookup.elapsed),
        error: s.lookup.error.as_ref().map(error),
        records: s
            .records
            .iter()
            .map(|r| RecordJ {
                name: r.name.clone(),
                kind: r.kind.clone(),
                ttl: r.ttl,
                data: r.data.clone(),
            })
            .collect(),
        name_used: s.name_used.clone(),
        port53: s.port53.as_ref().map(|p| Port53J {
            tcp: port53_tcp(&p.tcp),
            udp: match p.udp {
                Udp53::Answered => "answered",
                Udp53::Refused => "refused",
                Udp53::NoAnswer => "no_answer",
            },
        }),
    }
}

fn liveness_probe(p: &LivenessProbe) -> LivenessProbeJ {
    LivenessProbeJ {
        port: p.port,
        outcome: p.outcome.map_or("no_answer", Outcome::word),
        elapsed_ms: opt_ms(p.elapsed),
    }
}

fn liveness(l: &Liveness) -> LivenessJ {
    LivenessJ {
        address: l.address.to_string(),
        alive: l.alive,
        probes: l.probes.iter().map(liveness_probe).collect(),
        second_syn: l.second_syn.as_ref().map(liveness_probe),
        decided_after_ms: opt_ms(l.decided_after),
    }
}

fn trace(p: &Path) -> TraceJ {
    TraceJ {
        address: p.address.to_string(),
        hops: p
            .hops
            .iter()
            .map(|h| HopJ {
                ttl: h.ttl,
                address: h.address.map(|a| a.to_string()),
                elapsed_ms: opt_ms(h.elapsed),
                kind: match h.kind {
                    HopKind::TimeExceeded => "time_exceeded",
                    HopKind::ReachedTarget => "reached_target",
                    HopKind::Unreachable => "unreachable",
                    HopKind::NoAnswer => "no_answer",
                },
            })
            .collect(),
        last_responding: p.last_responding.map(|r| ResponderJ {
            ttl: r.ttl,
            address: r.address.to_string(),
        }),
        reached_at: p.reached_at,
        elapsed_ms: ms(p.elapsed),
    }
}

fn process(p: &Process) -> ProcessJ {
    ProcessJ {
        pid: p.pid,
        name: p.name.clone(),
        cmdline: p.cmdline.clone(),
    }
}

fn listener(l: &Listener) -> ListenerJ {
    ListenerJ {
        address: l.address.to_string(),
        port: l.port,
        family: family(l.address),
        uid: l.uid,
        user: l.user.clone(),
        process: l.process.as_ref().map(process),
    }
}

fn firewall(f: &Firewall) -> FirewallJ {
    FirewallJ {
        inspected: f.inspected,
        reason: (!f.inspected).then(|| crate::diagnosis::local::unread_words(f)),
        rules: f
            .rules
            .iter()
            .map(|r| RuleJ {
                family: r.family.clone(),
                table: r.table.clone(),
                chain: r.chain.clone(),
                hook: r.hook.to_string(),
                verdict: r.verdict.to_string(),
                text: r.text.clone(),
                handle: r.handle,
            })
            .collect(),
    }
}

fn local(l: Option<&LocalFacts>, fw: Option<&Firewall>) -> LocalJ {
    LocalJ {
        port: l.map(|l| l.port),
        addresses: l.map(|l| strings(&l.addresses)),
        listeners: l.map(|l| l.listeners.iter().map(listener).collect()),
        owner_other_listeners: l.map(|l| l.owner_other_listeners.iter().map(listener).collect()),
        usual_servers: l.map(|l| {
            l.usual_servers
                .iter()
                .map(|s| RunningJ {
                    server: s.server,
                    process: process(&s.process),
                    listening: s.listening.as_ref().map(|v| strings(v)),
                })
                .collect()
        }),
        usual_server_names: l.map(|l| l.usual_server_names.clone()),
        privileged: l.map(|l| l.privileged),
        firewall: fw.map(firewall),
    }
}

fn machine(m: &Machine) -> MachineJ {
    let (machine, address) = match m {
        Machine::This => ("this", None),
        Machine::Server(h) => ("server", Some(h.clone())),
        Machine::Device(ip) => ("device", Some(ip.to_string())),
        Machine::NameServer(ip) => ("name_server", Some(ip.to_string())),
    };
    MachineJ { machine, address }
}

fn step(i: usize, s: &PlannedStep) -> StepJ {
    StepJ {
        step: i + 1,
        text: s.text.clone(),
        command: s.command.clone(),
        on: s.on.as_ref().map(machine),
        findings: s.findings.iter().map(|f| f.as_str()).collect(),
    }
}

fn build(facts: &Facts, diag: &Diagnosis) -> Report {
    let t = &facts.target;
    let literal = matches!(t.host, Host::Ip(_));
    let probes = facts
        .probes()
        .zip(&diag.addresses)
        .map(|(p, a)| ProbeJ {
            address: a.address.ip().to_string(),
            port: a.address.port(),
            family: family(a.address.ip()),
            outcome: a.outcome.word(),
            evidence: a.describe(),
            elapsed_ms: ms(a.elapsed),
            error: match p.result {
                ConnectResult::Failed { errno } => Some(errno_name(errno)),
                _ => None,
            },
            icmp: p.icmp.map(|icmp| IcmpJ {
                v6: icmp.v6,
                kind: icmp.kind,
                code: icmp.code,
                from: icmp.from.map(|f| f.to_string()),
                meaning: icmp.meaning().words(),
                sender: a.sender().map_or(Sender::Unknown, |s| s.0).as_str(),
            }),
        })
        .collect();
    let findings = diag
        .findings
        .iter()
        .map(|f| FindingJ {
            id: f.id.as_str(),
            severity: f.severity.as_str(),
            message: f.message.clone(),
            steps: diag
                .steps
                .iter()
                .enumerate()
                .filter(|(_, s)| s.findings.contains(&f.id))
                .map(|(i, _)| i + 1)
                .collect(),
        })
        .collect();
    Report {
        schema_version: SCHEMA_VERSION,
        target: TargetJ {
            input: t.input.clone(),
            host: t.host.to_string(),
            port: t.port.get(),
            port_source: match t.port_source {
                PortSource::Number => "number",
                PortSource::Service => "service",
                PortSource::Scheme => "scheme",
            },
            service: t.service.clone(),
        },
        verdict: diag.verdict.as_str(),
        exit_code: diag.verdict.exit_code(),
        summary: diag.summary.clone(),
        dns: DnsJ {
            source: if literal { "literal" } else { "resolver" },
            addresses: facts
                .addresses
                .iter()
                .map(|a| a.address().ip().to_string())
                .collect(),
            error: diag.dns_error.as_ref().map(error),
            system: facts.dns.system.as_ref().map(lookup),
            direct: facts.dns.direct.as_ref().map(lookup),
            servers: facts.dns.servers.iter().map(server).collect(),
            resolv: facts.dns.resolv.as_ref().map(|r| ResolvJ {
                nameservers: strings(&r.nameservers),
                search: r.search.clone(),
                ndots: r.ndots,
                timeout_ms: ms(r.timeout),
                attempts: r.attempts,
            }),
            hosts: facts
                .dns
                .hosts
                .iter()
                .map(|h| HostsJ {
                    file: h.file.to_string(),
                    line: h.line,
                    address: h.address.to_string(),
                    text: h.text.clone(),
                })
                .collect(),
        },
        probes,
        liveness: diag.liveness.as_ref().map(liveness),
        trace: diag.path.as_ref().map(trace),
        local: (facts.local.is_some() || facts.firewall.is_some())
            .then(|| local(facts.local.as_ref(), facts.firewall.as_ref())),
        findings,
        advice: diag
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| step(i, s))
            .collect(),
        elapsed_ms: ms(facts.elapsed),
        timeout_ms: ms(facts.timeout),
    }
}
