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
use crate::diagnosis::service;
use crate::diagnosis::tls::errors::alert_name;
use crate::diagnosis::tls::tls_kind;
use crate::diagnosis::views::{HopKind, Liveness, LivenessProbe, Path};
use crate::diagnosis::words::bounded;
use crate::diagnosis::{
    AddressReport, AddressResult, Machine, Outcome, PlannedStep, Report, Sender, errno_name,
};
use crate::dns::servers::{ServerView, Stub, Udp53};
use crate::dns::{DnsErrorKind, Lookup, LookupError};
use crate::facts::{Advertised, MemberRole, ProxyRoute, WaitEnd, Waited, ms, utc};
use crate::local::{Firewall, Listener, LocalFacts, Process};
use crate::probe::ConnectResult;
use crate::session::ServiceFacts;
use crate::session::http::{HttpFacts, HttpFailure};
use crate::session::mss::MssFailure;
use crate::session::proxy::ProxyChoice;
use crate::session::stage::MssRetry;
use crate::session::tls::{TlsError, TlsFacts, TlsFailure, TlsVersion};
use crate::session::watch::{BannerKind, First};
use crate::session::{SessionFacts, ViaProxy};
use crate::target::{Host, PortSource, Target};

pub(crate) const SCHEMA_VERSION: u32 = 2;

#[derive(Serialize)]
struct ReportJ {
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
    /// For URL targets: the proxy an HTTP client here would use.
    proxy: Option<ProxyJ>,
    findings: Vec<FindingJ>,
    advice: Vec<StepJ>,
    elapsed_ms: f64,
    timeout_ms: f64,
    /// With `--wait`: how the wait this check ended went.
    #[serde(skip_serializing_if = "Option::is_none")]
    wait: Option<WaitJ>,
    /// MongoDB's replica set members or Kafka's brokers, as advertised and checked from here.
    #[serde(skip_serializing_if = "Option::is_none")]
    advertised: Option<AdvertisedJ>,
}

#[derive(Serialize)]
struct AdvertisedJ {
    /// `mongodb` or `kafka`.
    protocol: &'static str,
    /// The address whose answer named them.
    from: String,
    members: Vec<MemberJ>,
    /// Names past the 16 checked.
    unchecked: usize,
    waited_ms: f64,
}

#[derive(Serialize)]
struct MemberJ {
    /// As the server wrote it (≤ 128 characters).
    name: String,
    host: String,
    port: Option<u16>,
    /// `host`, `passive`, `arbiter`, `named` (only as `primary` or `me`), `broker`.
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    node_id: Option<i32>,
    primary: bool,
    me: bool,
    /// `answers`, `fails`, `unknown` (a silence cut short by the deadline).
    reach: &'static str,
    lookup_error: Option<ErrorJ>,
    probes: Vec<DirectProbeJ>,
}

#[derive(Serialize)]
struct WaitJ {
    /// `--wait` and `--timeout` as given.
    wait_ms: f64,
    timeout_ms: f64,
    took_ms: f64,
    checks: u32,
    /// `open`, `will_not_change`, `time_up`.
    ended: &'static str,
}

#[derive(Serialize)]
struct TargetJ {
    input: String,
    host: String,
    port: u16,
    port_source: &'static str,
    service: Option<String>,
    /// `tcp` or `udp`.
    transport: &'static str,
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
    /// After the connect (open addresses only).
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<SessionJ>,
    /// An address of this machine silent for more than 10 ms: its listener's queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    queue: Option<QueueWatchJ>,
    /// A UDP target: the request and what came back.
    #[serde(skip_serializing_if = "Option::is_none")]
    udp: Option<UdpJ>,
}

#[derive(Serialize)]
struct UdpJ {
    /// The request's service (`dns`, `ntp`, …); null for `--payload` or an empty datagram.
    service: Option<&'static str>,
    payload_bytes: usize,
    sent: u32,
    /// `answer` (the service's own), `other` (a datagram, not that service's answer), null.
    reply: Option<&'static str>,
    control: Option<UdpControlJ>,
}

/// The control datagram's raw result.
#[derive(Serialize)]
struct UdpControlJ {
    port: u16,
    /// `reply`, `error` (see `error` and `icmp`), `silence`.
    result: &'static str,
    error: Option<&'static str>,
    icmp: Option<RawIcmpJ>,
    elapsed_ms: f64,
}

#[derive(Serialize)]
struct RawIcmpJ {
    v6: bool,
    #[serde(rename = "type")]
    kind: u8,
    code: u8,
    from: Option<String>,
}

#[derive(Serialize)]
struct QueueLookJ {
    queued: u32,
    backlog: Option<u32>,
}

#[derive(Serialize)]
struct QueueWatchJ {
    first: Option<QueueLookJ>,
    last: Option<QueueLookJ>,
    overflows: Option<u64>,
    drops: Option<u64>,
    waited_retransmit: bool,
}

#[derive(Serialize)]
struct NotAcceptedJ {
    waited_ms: f64,
    queued: Option<u32>,
    backlog: Option<u32>,
    asleep: Option<bool>,
    cut_short: bool,
}

#[derive(Serialize)]
struct SessionJ {
    window_ms: f64,
    /// Connections to this machine: after how long the program took the connection.
    accepted_ms: Option<f64>,
    /// Connections to this machine: after how long every thread of the program (and of its
    /// children) was seen asleep with the connection still held; the watch ended there.
    at_rest_ms: Option<f64>,
    /// Connections to this machine: the program did not take it within the watch.
    #[serde(skip_serializing_if = "Option::is_none")]
    not_accepted: Option<NotAcceptedJ>,
    first: FirstJ,
    tls: Option<TlsJ>,
    mss_retry: Option<MssJ>,
    http: Option<HttpJ>,
    /// Through an HTTP proxy: the tunnel asked for, or a forwarded request.
    #[serde(skip_serializing_if = "Option::is_none")]
    via: Option<ViaJ>,
    /// After `expects_tls`: a TLS handshake on a second connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_confirm: Option<TlsJ>,
    /// A service's own opening (PostgreSQL, Redis, MySQL/MariaDB …): what it said.
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol: Option<ProtocolJ>,
}

#[derive(Serialize)]
struct ProtocolJ {
    /// `postgres`, `redis`, `mysql`, `mongodb`, `kafka`, `amqp`, `smtp`, `imap`, `pop3`.
    name: &'static str,
    /// The service's own version, when it gave one (≤ 64 characters).
    version: Option<String>,
    /// The authentication it asks for, when it answered as itself and asks for one.
    auth_method: Option<String>,
    /// PostgreSQL: the answer to the request for TLS (`accepted`, `refused`).
    tls: Option<&'static str>,
    /// The error it answered with: its code and message (≤ 200 characters).
    error: Option<ProtocolErrorJ>,
    /// How the conversation broke off, when it did.
    failure: Option<&'static str>,
    elapsed_ms: f64,
    /// MongoDB: the replica set named in `hello`, and this member's state.
    #[serde(skip_serializing_if = "Option::is_none")]
    replica_set: Option<ReplicaSetJ>,
}

#[derive(Serialize)]
struct ReplicaSetJ {
    name: String,
    /// `isWritablePrimary` (`ismaster` before 4.4.2).
    writable_primary: Option<bool>,
    secondary: Option<bool>,
    /// `me`: this member's name in the set's configuration.
    me: Option<String>,
}

#[derive(Serialize)]
struct ProtocolErrorJ {
    code: Option<String>,
    message: String,
}

#[derive(Serialize)]
struct ViaJ {
    /// `tunnel` (CONNECT) or `forward` (the HTTP request in absolute form).
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    authority: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    proxy_authenticate: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    elapsed_ms: Option<f64>,
}

#[derive(Serialize)]
struct FirstJ {
    /// `silent`, `reset`, `closed`, `banner`, `error`.
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    banner: Option<String>,
    /// `ssh`, `smtp`, `ftp`, `pop3`, `imap`, `coded`, `mysql`, `mysql_error`, `unknown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<u16>,
    /// For `error`: the errno's name (`EHOSTUNREACH`), when the system gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    errno: Option<&'static str>,
}

#[derive(Serialize)]
struct TlsJ {
    server_name: String,
    version: Option<String>,
    cipher_suite: Option<String>,
    alpn: Option<String>,
    elapsed_ms: f64,
    /// The finding id of the failure (`tls_expired`, `not_tls`, …), or `no_reply`,
    /// `stalled`, `closed`, `reset`.
    failure: Option<&'static str>,
    /// The TLS alert the server ended the handshake with, by its standard name
    /// (`unrecognized_name`), or `alert N` outside the registry.
    alert: Option<String>,
    chain: Vec<CertJ>,
    client_cert_issuers: Option<Vec<String>>,
    /// After how long the server's first byte came.
    first_answer_ms: Option<f64>,
    /// `passed`, `failed`, `skipped` (`--insecure`), or null when no certificate came.
    verification: Option<&'static str>,
    /// With `skipped`: the failure verification would have been (a TLS finding id), or null.
    #[serde(skip_serializing_if = "Option::is_none")]
    would_fail: Option<&'static str>,
    /// When the handshake was given up: the kernel's view of the connection's segments.
    #[serde(skip_serializing_if = "Option::is_none")]
    given_up: Option<SegmentsJ>,
}

#[derive(Serialize)]
struct SegmentsJ {
    advmss: u32,
    pmtu: u32,
    bytes_received: u64,
    data_segments_in: u32,
    out_of_order: Option<u32>,
    retransmitted: u32,
}

#[derive(Serialize)]
struct CertJ {
    subject: String,
    issuer: String,
    dns_names: Vec<String>,
    ip_addresses: Vec<String>,
    not_before: String,
    not_after: String,
    sha256: String,
    self_signed: bool,
    is_ca: bool,
}

#[derive(Serialize)]
struct MssJ {
    mss: u32,
    /// After how long (from the start of the first handshake) it was opened, beside it.
    opened_ms: f64,
    /// `null`, the errno's name (`ECONNREFUSED`), `timed_out`, or `error` without an errno.
    connect_error: Option<&'static str>,
    completed: bool,
    elapsed_ms: Option<f64>,
}

#[derive(Serialize)]
struct HttpJ {
    method: &'static str,
    status: Option<u16>,
    reason: Option<String>,
    server: Option<String>,
    via: Option<String>,
    location: Option<String>,
    content_type: Option<String>,
    /// `no_reply`, `closed`, `reset`, `expects_tls`, `not_http`, `truncated`, `too_large`, `io`.
    failure: Option<&'static str>,
    elapsed_ms: f64,
}

#[derive(Serialize)]
struct ProxyJ {
    /// `proxy`, `exempt`, `direct`, `invalid`.
    choice: &'static str,
    variable: Option<String>,
    /// The proxy URL with credentials masked.
    proxy: Option<String>,
    no_proxy_entry: Option<String>,
    /// The check went through the proxy: `dns`, `probes`, `liveness`, `trace` and `local`
    /// are about it.
    followed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    /// When followed: a plain connect to the destination, without the proxy.
    #[serde(skip_serializing_if = "Option::is_none")]
    direct: Option<DirectJ>,
}

#[derive(Serialize)]
struct DirectJ {
    probes: Vec<DirectProbeJ>,
    error: Option<ErrorJ>,
    waited_ms: f64,
}

#[derive(Serialize)]
struct DirectProbeJ {
    address: String,
    port: u16,
    outcome: &'static str,
    evidence: String,
    elapsed_ms: f64,
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
    retransmit_wait_ms: Option<f64>,
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
    /// The owner search ran out of its time budget (processes may lack their owner).
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_search_incomplete: Option<bool>,
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
    /// Its accept queue when the socket table was read (`ss -ltn`'s Recv-Q and Send-Q).
    queued: u32,
    backlog: Option<u32>,
}

#[derive(Serialize)]
struct ProcessJ {
    pid: u32,
    name: String,
    cmdline: String,
    /// `readlink /proc/PID/exe`; null when not read (only a listener's owner's is) or not
    /// readable (another user's process without root).
    exe: Option<String>,
}

#[derive(Serialize)]
struct RunningJ {
    server: &'static str,
    process: ProcessJ,
    listening: Option<Vec<String>>,
    workers: Vec<u32>,
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
///
/// Sentences (the summary, findings' messages, steps, evidence, error texts) are escaped as in
/// the text report: a reader shows `\u{202e}` where a banner had U+202E. Data fields (a
/// banner, a header, a command line, a certificate's subject) keep the value as received,
/// secrets masked; in the bytes written, their control, bidi and invisible characters are
/// `\uXXXX` escapes ([`crate::escape::json_text`]), so no format writes one raw.
pub fn render(report: &Report, w: &mut dyn Write) -> io::Result<()> {
    let text = serde_json::to_string_pretty(&build(report))?;
    w.write_all(crate::escape::json_text(&text).as_bytes())?;
    writeln!(w)
}

/// A sentence for the JSON: escaped like the text report's (already so when the diagnosis
/// made it; escaping twice changes nothing).
fn sentence(s: impl Into<String>) -> String {
    crate::escape::escape_owned(s.into())
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
        text: sentence(error_words(e)),
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
                Udp53::Unreachable => "unreachable",
                Udp53::NoAnswer => "no_answer",
            },
        }),
    }
}

fn liveness_probe(p: &LivenessProbe) -> LivenessProbeJ {
    LivenessProbeJ {
        port: p.port,
        outcome: p.outcome.map_or("no_answer", Outcome::as_str),
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
        retransmit_wait_ms: opt_ms(l.retransmit_wait),
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
        exe: p.exe.clone(),
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
        queued: l.queued,
        backlog: l.backlog,
    }
}

fn firewall(f: &Firewall) -> FirewallJ {
    FirewallJ {
        inspected: f.inspected,
        reason: (!f.inspected).then(|| sentence(crate::diagnosis::local::unread_words(f))),
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
                    workers: s.workers.clone(),
                })
                .collect()
        }),
        usual_server_names: l.map(|l| l.usual_server_names.clone()),
        privileged: l.map(|l| l.privileged),
        owner_search_incomplete: l.map(|l| l.owner_search_incomplete),
        firewall: fw.map(firewall),
    }
}

fn machine(m: &Machine) -> MachineJ {
    let (machine, address) = match m {
        Machine::This => ("this", None),
        Machine::Server(h) => ("server", Some(h.clone())),
        Machine::Device(ip) => ("device", Some(ip.to_string())),
    };
    MachineJ { machine, address }
}

fn step(i: usize, s: &PlannedStep) -> StepJ {
    StepJ {
        step: i + 1,
        text: sentence(s.text.as_str()),
        command: s.command.as_deref().map(sentence),
        on: s.on.as_ref().map(machine),
        findings: s.findings.iter().map(|f| f.as_str()).collect(),
    }
}

fn session(s: &SessionFacts) -> SessionJ {
    SessionJ {
        window_ms: ms(s.window),
        accepted_ms: s.accepted.map(ms),
        at_rest_ms: s.waiting_for_client.map(ms),
        not_accepted: s.not_accepted.as_ref().map(|n| NotAcceptedJ {
            waited_ms: ms(n.waited),
            queued: n.queued,
            backlog: n.backlog,
            asleep: n.asleep,
            cut_short: n.cut_short,
        }),
        first: first(&s.first),
        tls: s.tls.as_ref().map(tls),
        mss_retry: s.mss_retry.as_ref().map(mss_retry),
        http: s.http.as_ref().map(http),
        via: s.via.as_ref().map(via),
        tls_confirm: s.tls_confirm.as_ref().map(tls),
        protocol: s.service.as_ref().map(protocol),
    }
}

/// What a service said in its own protocol.
fn protocol(svc: &ServiceFacts) -> ProtocolJ {
    use crate::session::protocols::{Protocol, ProtocolFacts, WireFailure, postgres::SslAnswer};
    let name = match svc.protocol {
        Protocol::Postgres => "postgres",
        Protocol::Redis => "redis",
        Protocol::MySql => "mysql",
        Protocol::MongoDb => "mongodb",
        Protocol::Kafka => "kafka",
        Protocol::Amqp => "amqp",
        Protocol::Smtp => "smtp",
        Protocol::Imap => "imap",
        Protocol::Pop3 => "pop3",
    };
    let tls = match &svc.first {
        ProtocolFacts::Postgres(f) => match f.ssl {
            Some(SslAnswer::Supported) => Some("accepted"),
            Some(SslAnswer::Refused) => Some("refused"),
            _ => None,
        },
        _ => None,
    };
    let failure = service::wire_failure(svc).map(|w| match w {
        WireFailure::NoReply => "no_reply",
        WireFailure::Closed => "closed",
        WireFailure::Reset => "reset",
        WireFailure::Truncated { .. } => "truncated",
        WireFailure::NotThisProtocol { .. } => "not_this_protocol",
        WireFailure::ExpectsTls { .. } => "expects_tls",
        WireFailure::TooLarge => "too_large",
        WireFailure::Io { .. } => "io_error",
    });
    ProtocolJ {
        name,
        version: service::version(svc).map(|v| bounded(&v, 64)),
        auth_method: service::auth_method(svc).map(|m| bounded(&m, 64)),
        tls,
        error: service::error_reply(svc).map(|(code, message)| ProtocolErrorJ {
            code: code.map(|c| bounded(&c, 16)),
            message: bounded(&message, service::SERVER_TEXT),
        }),
        failure,
        elapsed_ms: ms(service::elapsed(svc.last())),
        replica_set: match svc.last() {
            ProtocolFacts::MongoDb(f) => f.hello.as_ref().and_then(|h| {
                Some(ReplicaSetJ {
                    name: bounded(h.set_name.as_deref()?, 64),
                    writable_primary: h.writable_primary,
                    secondary: h.secondary,
                    me: h.me.as_deref().map(|m| bounded(m, 128)),
                })
            }),
            _ => None,
        },
    }
}

/// The advertised members or brokers, each with what reaching it from here gave.
fn advertised(a: &Advertised, judged: &[crate::diagnosis::MemberReport]) -> AdvertisedJ {
    use crate::diagnosis::advertised::Reach;
    let member = |j: &crate::diagnosis::MemberReport| {
        let m = &j.member;
        MemberJ {
            name: bounded(&m.name, 128),
            host: bounded(&m.host, 128),
            port: m.port,
            role: match m.role {
                MemberRole::Host => "host",
                MemberRole::Passive => "passive",
                MemberRole::Arbiter => "arbiter",
                MemberRole::Named => "named",
                MemberRole::Broker(_) => "broker",
            },
            node_id: match m.role {
                MemberRole::Broker(id) => Some(id),
                _ => None,
            },
            primary: m.primary,
            me: m.me,
            reach: match j.reach {
                Reach::Answers => "answers",
                Reach::Fails(_) => "fails",
                Reach::Unknown => "unknown",
            },
            lookup_error: m.lookup_error.as_ref().map(error),
            probes: j
                .results
                .iter()
                .map(|r| DirectProbeJ {
                    address: r.address.ip().to_string(),
                    port: r.address.port(),
                    outcome: r.outcome.as_str(),
                    evidence: sentence(r.describe()),
                    elapsed_ms: ms(r.elapsed),
                })
                .collect(),
        }
    };
    AdvertisedJ {
        protocol: match a.protocol {
            crate::session::protocols::Protocol::Kafka => "kafka",
            _ => "mongodb",
        },
        from: a.from.to_string(),
        members: judged.iter().map(member).collect(),
        unchecked: a.unchecked,
        waited_ms: ms(a.waited),
    }
}

/// What the connection brought before the client spoke.
fn first(f: &First) -> FirstJ {
    let (kind, banner, service, error_code) = match f {
        First::Silent => ("silent", None, None, None),
        First::Unwatched => ("not_watched", None, None, None),
        First::Reset => ("reset", None, None, None),
        First::Closed => ("closed", None, None, None),
        First::Error { .. } => ("error", None, None, None),
        First::Banner { bytes, kind } => {
            let (service, code) = match kind {
                BannerKind::Ssh { .. } => ("ssh", None),
                BannerKind::Smtp { .. } => ("smtp", None),
                BannerKind::Ftp { .. } => ("ftp", None),
                BannerKind::Pop3 { .. } => ("pop3", None),
                BannerKind::Imap { .. } => ("imap", None),
                BannerKind::Coded { code, .. } => ("coded", Some(*code)),
                BannerKind::MySql { .. } => ("mysql", None),
                BannerKind::MySqlError { code, .. } => ("mysql_error", Some(*code)),
                BannerKind::Unknown => ("unknown", None),
            };
            (
                "banner",
                Some(String::from_utf8_lossy(bytes).into_owned()),
                Some(service),
                code,
            )
        }
    };
    FirstJ {
        kind,
        banner,
        service,
        error_code,
        errno: match f {
            First::Error { errno: Some(e) } => Some(errno_name(*e)),
            _ => None,
        },
    }
}

fn mss_retry(r: &MssRetry) -> MssJ {
    MssJ {
        mss: r.mss,
        opened_ms: ms(r.opened),
        connect_error: r.connect_error.map(|e| match e.errno() {
            Some(errno) => errno_name(errno),
            None if e == MssFailure::TimedOut => "timed_out",
            None => "error",
        }),
        completed: r.tls.as_ref().is_some_and(|t| {
            !matches!(
                t.failure,
                Some(TlsFailure::NoReply | TlsFailure::Stalled { .. })
            )
        }),
        elapsed_ms: r.tls.as_ref().map(|t| ms(t.elapsed)),
    }
}

fn http(h: &HttpFacts) -> HttpJ {
    HttpJ {
        method: h.method.as_str(),
        status: h.response.as_ref().map(|r| r.status),
        reason: h.response.as_ref().map(|r| r.reason.clone()),
        server: h.response.as_ref().and_then(|r| r.server.clone()),
        via: h.response.as_ref().and_then(|r| r.via.clone()),
        // A redirect may carry credentials or a token (`https://u:pw@h/?token=…`).
        location: h
            .response
            .as_ref()
            .and_then(|r| r.location.as_deref())
            .map(|l| crate::secrets::mask(l).into_owned()),
        content_type: h.response.as_ref().and_then(|r| r.content_type.clone()),
        failure: h.failure.as_ref().map(http_failure),
        elapsed_ms: ms(h.elapsed),
    }
}

/// How the session went through the proxy: a tunnel, or requests forwarded.
fn via(v: &ViaProxy) -> ViaJ {
    match v {
        ViaProxy::Tunnel(c) => ViaJ {
            kind: "tunnel",
            authority: Some(c.authority.clone()),
            status: c.response.as_ref().map(|r| r.status),
            reason: c.response.as_ref().map(|r| r.reason.clone()),
            proxy_authenticate: c
                .response
                .as_ref()
                .map(|r| r.proxy_authenticate.clone())
                .unwrap_or_default(),
            failure: c.failure.as_ref().map(http_failure),
            elapsed_ms: Some(ms(c.elapsed)),
        },
        ViaProxy::Forward => ViaJ {
            kind: "forward",
            authority: None,
            status: None,
            reason: None,
            proxy_authenticate: vec![],
            failure: None,
            elapsed_ms: None,
        },
    }
}

fn http_failure(f: &HttpFailure) -> &'static str {
    match f {
        HttpFailure::NoReply => "no_reply",
        HttpFailure::Closed => "closed",
        HttpFailure::Reset => "reset",
        HttpFailure::ExpectsTls { .. } => "expects_tls",
        HttpFailure::NotHttp { .. } => "not_http",
        HttpFailure::Truncated { .. } => "truncated",
        HttpFailure::TooLarge => "too_large",
        HttpFailure::Io { .. } => "io",
    }
}

fn tls(t: &TlsFacts) -> TlsJ {
    TlsJ {
        server_name: t.server_name.clone(),
        version: t.version.map(|v| match v {
            TlsVersion::Tls12 => "1.2".to_string(),
            TlsVersion::Tls13 => "1.3".to_string(),
            TlsVersion::Other(n) => format!("0x{n:04x}"),
        }),
        cipher_suite: t.cipher_suite.clone(),
        alpn: t
            .alpn
            .as_ref()
            .map(|a| String::from_utf8_lossy(a).into_owned()),
        elapsed_ms: ms(t.elapsed),
        failure: t.failure.as_ref().map(|f| tls_kind(f).as_str()),
        alert: t
            .failure
            .as_ref()
            .and_then(|f| match f {
                TlsFailure::Alert { alert }
                | TlsFailure::ProtocolMismatch {
                    alert: Some(alert), ..
                }
                | TlsFailure::Other(TlsError::Alert(alert)) => Some(*alert),
                _ => None,
            })
            .map(alert_name),
        chain: t
            .chain
            .iter()
            .map(|c| CertJ {
                subject: c.subject.clone(),
                issuer: c.issuer.clone(),
                dns_names: c.dns_names.clone(),
                ip_addresses: strings(&c.ip_addresses),
                not_before: utc(c.not_before),
                not_after: utc(c.not_after),
                sha256: c.fingerprint_hex(),
                self_signed: c.self_signed,
                is_ca: c.is_ca,
            })
            .collect(),
        client_cert_issuers: t.client_cert.as_ref().map(|c| c.issuers.clone()),
        first_answer_ms: t.first_answer.map(ms),
        verification: match (&t.unverified, &t.verify_error) {
            (Some(_), _) => Some("skipped"),
            _ if t.chain.is_empty() => None,
            (None, Some(_)) => Some("failed"),
            (None, None) => Some("passed"),
        },
        would_fail: t
            .unverified
            .as_ref()
            .and_then(|u| u.would_fail.as_ref())
            .map(|f| tls_kind(f).as_str()),
        given_up: t.given_up.map(|g| SegmentsJ {
            advmss: g.advmss,
            pmtu: g.pmtu,
            bytes_received: g.bytes_received,
            data_segments_in: g.data_segs_in,
            out_of_order: g.out_of_order,
            retransmitted: g.retransmitted,
        }),
    }
}

fn proxy(p: &ProxyChoice, via: Option<&ProxyRoute>, direct: &[AddressResult]) -> ProxyJ {
    let none = |choice, variable, entry| ProxyJ {
        choice,
        variable,
        proxy: None,
        no_proxy_entry: entry,
        followed: false,
        host: None,
        port: None,
        direct: None,
    };
    match p {
        ProxyChoice::Proxy(p) => ProxyJ {
            choice: "proxy",
            variable: Some(p.variable.clone()),
            proxy: Some(p.masked.clone()),
            no_proxy_entry: None,
            followed: via.is_some(),
            host: Some(p.host.clone()),
            port: Some(p.port),
            direct: via.map(|v| DirectJ {
                probes: direct
                    .iter()
                    .map(|a| DirectProbeJ {
                        address: a.address.ip().to_string(),
                        port: a.address.port(),
                        outcome: a.outcome.as_str(),
                        evidence: sentence(a.describe()),
                        elapsed_ms: ms(a.elapsed),
                    })
                    .collect(),
                error: v.direct.lookup_error.as_ref().map(error),
                waited_ms: ms(v.direct.waited),
            }),
        },
        ProxyChoice::Exempt {
            variable, entry, ..
        } => none("exempt", Some(variable.clone()), Some(entry.clone())),
        ProxyChoice::Direct { .. } => none("direct", None, None),
        ProxyChoice::Invalid { variable, .. } => none("invalid", Some(variable.clone()), None),
    }
}

/// The report as the contract has it.
fn build(report: &Report) -> ReportJ {
    let (facts, diag) = (&report.facts, report);
    ReportJ {
        schema_version: SCHEMA_VERSION,
        target: target(&facts.target),
        verdict: diag.verdict.as_str(),
        exit_code: crate::exit_codes::ExitCode::from(diag.verdict).code(),
        summary: sentence(diag.summary.as_str()),
        dns: dns(report),
        probes: facts.addresses.iter().map(probe).collect(),
        liveness: diag.liveness.as_ref().map(liveness),
        trace: diag.path.as_ref().map(trace),
        local: (facts.local.is_some() || facts.firewall.is_some())
            .then(|| local(facts.local.as_ref(), facts.firewall.as_ref())),
        proxy: facts
            .proxy
            .as_ref()
            .map(|p| proxy(p, facts.via.as_ref(), &report.direct)),
        findings: findings(report),
        advice: diag
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| step(i, s))
            .collect(),
        elapsed_ms: ms(facts.elapsed),
        timeout_ms: ms(facts.timeout),
        wait: facts.waited.as_ref().map(wait),
        advertised: facts
            .advertised
            .as_ref()
            .map(|a| advertised(a, &report.advertised)),
    }
}

/// A UDP exchange's facts, as they were.
fn udp(u: &crate::facts::UdpExchange) -> UdpJ {
    use crate::session::protocols::udp_payloads::{TABLE, UdpReply};
    UdpJ {
        service: u
            .service
            .and_then(|s| TABLE.iter().find(|e| e.service == s).map(|e| e.name)),
        payload_bytes: u.payload_len,
        sent: u.sent,
        reply: u.reply.as_ref().map(|r| match r {
            UdpReply::Answer(_) => "answer",
            UdpReply::Foreign { .. } => "other",
        }),
        control: u.control.as_ref().map(|c| UdpControlJ {
            port: c.spec.address.port(),
            result: match c.result {
                ConnectResult::Connected | ConnectResult::ConnectedToItself => "reply",
                ConnectResult::Failed { .. } => "error",
                ConnectResult::TimedOut => "silence",
            },
            error: match c.result {
                ConnectResult::Failed { errno } => Some(errno_name(errno)),
                _ => None,
            },
            icmp: c.icmp.map(|i| RawIcmpJ {
                v6: i.v6,
                kind: i.kind,
                code: i.code,
                from: i.from.map(|f| f.to_string()),
            }),
            elapsed_ms: ms(c.elapsed),
        }),
    }
}

/// One address: its probe, what it means, and what followed.
fn probe(e: &AddressReport) -> ProbeJ {
    let (p, a) = (&e.facts.probe, &e.result);
    ProbeJ {
        udp: e.facts.udp.as_ref().map(udp),
        session: e.facts.session.as_ref().map(session),
        queue: e.facts.queue.as_ref().map(|q| {
            let look = |l: &crate::local::QueueLook| QueueLookJ {
                queued: l.queued,
                backlog: l.backlog,
            };
            QueueWatchJ {
                first: q.first.as_ref().map(look),
                last: q.last.as_ref().map(look),
                overflows: q.overflows,
                drops: q.drops,
                waited_retransmit: q.waited_retransmit,
            }
        }),
        address: a.address.ip().to_string(),
        port: a.address.port(),
        family: family(a.address.ip()),
        outcome: a.outcome.as_str(),
        evidence: sentence(a.describe()),
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
            meaning: icmp.meaning().as_str(),
            sender: a.sender().map_or(Sender::Unknown, |s| s.0).as_str(),
        }),
    }
}

/// The findings, each with the numbers of the steps it proposed.
fn findings(diag: &Report) -> Vec<FindingJ> {
    diag.findings
        .iter()
        .map(|f| FindingJ {
            id: f.id.as_str(),
            severity: f.severity.as_str(),
            message: sentence(f.message.as_str()),
            steps: diag
                .steps
                .iter()
                .enumerate()
                .filter(|(_, s)| s.findings.contains(&f.id))
                .map(|(i, _)| i + 1)
                .collect(),
        })
        .collect()
}

fn target(t: &Target) -> TargetJ {
    TargetJ {
        input: t.input.clone(),
        host: t.host.to_string(),
        port: t.port.get(),
        port_source: match t.port_source {
            PortSource::Number => "number",
            PortSource::Service => "service",
            PortSource::Scheme => "scheme",
        },
        service: t.service.clone(),
        transport: t.transport.as_str(),
    }
}

/// The name: the system's view, each server's, the files.
fn dns(report: &Report) -> DnsJ {
    let facts = &report.facts;
    let literal = matches!(facts.checked().host, Host::Ip(_));
    DnsJ {
        source: if literal { "literal" } else { "resolver" },
        addresses: facts
            .addresses
            .iter()
            .map(|a| a.result.address.ip().to_string())
            .collect(),
        error: report.dns_error.as_ref().map(error),
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
    }
}

fn wait(w: &Waited) -> WaitJ {
    WaitJ {
        wait_ms: ms(w.wait),
        timeout_ms: ms(w.timeout),
        took_ms: ms(w.took),
        checks: w.checks,
        ended: match w.ended {
            WaitEnd::Open => "open",
            WaitEnd::WillNotChange => "will_not_change",
            WaitEnd::TimeUp => "time_up",
        },
    }
}
