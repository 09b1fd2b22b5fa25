//! A probe's answer in blackbox_exporter's terms: which series, with which values, and what
//! canreach adds (`probe_failure_info`, `canreach_verdict_info`).
//!
//! [`judge`] reads the facts of a probe (one check per hop of an HTTP redirect chain) and the
//! module, and gives a [`ProbeResult`]: `probe_success` with blackbox_exporter's meaning for
//! the module, the values of its series, and canreach's verdict and reason. [`encode`] writes
//! it in the Prometheus text format (0.0.4) through `prometheus-client`, with
//! blackbox_exporter's names, types and help texts (the tests compare them with a captured
//! answer of blackbox_exporter 0.23).
//!
//! Labels of what canreach adds come from fixed sets only: the verdict words
//! ([`Verdict::as_str`]), the finding ids (`FindingId::as_str`, or `none`) and the phases
//! ([`Phase`]). They never carry an address, a name or a message.

use std::net::IpAddr;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

use crate::diagnosis::{Report, Severity, Verdict};
use crate::facts::{AddressEntry, AddressFacts, Facts};
use crate::probe::ConnectResult;
use crate::session::ask::{Answered, BodyEnd};
use crate::session::tls::{TlsFacts, TlsVersion};

use super::config::{Ip, Module, Prober};

/// Where a failed probe stopped: the label `phase` of `probe_failure_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// No address: the name did not resolve (or not in the module's IP family).
    Resolve,
    /// The TCP connect to the address blackbox_exporter would use did not complete.
    Connect,
    /// The TLS handshake failed (or the chain did not verify).
    Tls,
    /// After the connect, without TLS: the program reset, closed or refused.
    Session,
    /// The HTTP answer: none, a status or version not accepted, SSL conditions, the body,
    /// redirects.
    Http,
    /// A `query_response` step failed.
    QueryResponse,
}

impl Phase {
    #[cfg(test)]
    pub(crate) const ALL: [Phase; 6] = [
        Phase::Resolve,
        Phase::Connect,
        Phase::Tls,
        Phase::Session,
        Phase::Http,
        Phase::QueryResponse,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Resolve => "resolve",
            Phase::Connect => "connect",
            Phase::Tls => "tls",
            Phase::Session => "session",
            Phase::Http => "http",
            Phase::QueryResponse => "query_response",
        }
    }
}

/// One check of a probe: the first, or one per redirect followed.
#[derive(Debug)]
pub struct Hop {
    /// The URL asked for (http modules).
    pub url: Option<String>,
    pub report: Report,
}

/// The HTTP series.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HttpSeries {
    pub status: u16,
    /// 1.0, 1.1; 0 without an answer.
    pub version: f64,
    pub ssl: bool,
    pub redirects: u32,
    /// `Content-Length`, or -1.
    pub content_length: i64,
    pub body_length: u64,
    /// resolve, connect, tls, processing, transfer (summed over the redirects).
    pub phases: [f64; 5],
}

/// The TLS series (a handshake that completed).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TlsSeries {
    pub earliest_expiry: f64,
    pub last_chain_expiry: f64,
    pub fingerprint: String,
    pub subject: String,
    pub issuer: String,
    pub alternative: String,
    pub version: String,
    pub cipher: Option<String>,
}

/// A probe, judged.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProbeResult {
    pub success: bool,
    pub duration: f64,
    pub dns_lookup: f64,
    /// 4, 6, or 0 when no address was chosen.
    pub ip_protocol: u8,
    pub ip_hash: f64,
    pub failed_due_to_regex: bool,
    /// `probe_expect_info`'s labels, when a `query_response` step with `labels` matched.
    pub expect_labels: Vec<(String, String)>,
    pub http: Option<HttpSeries>,
    pub tls: Option<TlsSeries>,
    pub verdict: Verdict,
    /// Set when the probe failed: the finding that explains it (or `none`), and the phase.
    pub failure: Option<(&'static str, Phase)>,
}

/// Go's zero time as a unix timestamp: what blackbox_exporter reports as the last chain's
/// expiry when no chain was verified.
const GO_ZERO_TIME: f64 = -62_135_596_800.0;

/// The address blackbox_exporter would probe: the first of the preferred family, else (with
/// fallback) the first of the other.
pub(crate) fn chosen_address<A: AddressEntry>(facts: &Facts<A>, module: &Module) -> Option<IpAddr> {
    let all: Vec<IpAddr> = match &facts.dns.system {
        Some(l) if !l.addresses.is_empty() => l.addresses.clone(),
        _ => facts
            .addresses
            .iter()
            .map(|a| a.gathered().address().ip())
            .collect(),
    };
    let wants = |ip: &IpAddr, family: Ip| match family {
        Ip::V4 => ip.is_ipv4(),
        Ip::V6 => ip.is_ipv6(),
    };
    let other = match module.preferred {
        Ip::V4 => Ip::V6,
        Ip::V6 => Ip::V4,
    };
    all.iter()
        .find(|ip| wants(ip, module.preferred))
        .or_else(|| {
            module
                .fallback
                .then(|| all.iter().find(|ip| wants(ip, other)))
                .flatten()
        })
        .copied()
}

/// blackbox_exporter's `probe_ip_addr_hash`: FNV-1a (32 bits) of the address's bytes (4 for
/// IPv4, 16 for IPv6).
pub(crate) fn ip_hash(ip: IpAddr) -> u32 {
    let bytes: Vec<u8> = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.octets().to_vec(),
            None => v6.octets().to_vec(),
        },
    };
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The finding that explains a failure: the strongest error, else the strongest warning,
/// else `none`.
fn reason(diag: &Report) -> &'static str {
    diag.findings
        .iter()
        .find(|f| f.severity == Severity::Error)
        .or_else(|| {
            diag.findings
                .iter()
                .find(|f| f.severity == Severity::Warning)
        })
        .map_or("none", |f| f.id.as_str())
}

/// Every label value `probe_failure_info{finding}` can take.
#[cfg(test)]
pub(crate) fn finding_values() -> impl Iterator<Item = &'static str> {
    crate::diagnosis::FindingId::ALL
        .iter()
        .map(|f| f.as_str())
        .chain(std::iter::once("none"))
}

/// Judge a probe: `hops` in order (at least one), `elapsed` its whole time.
pub(crate) fn judge(
    module: &Module,
    hops: &[Hop],
    elapsed: Duration,
    redirect_error: bool,
) -> ProbeResult {
    let first = &hops[0];
    let last = hops.last().unwrap_or(first);
    let dns_lookup = first
        .report
        .facts
        .dns
        .system
        .as_ref()
        .map_or(0.0, |l| l.elapsed.as_secs_f64());
    let chosen = chosen_address(&last.report.facts, module);
    let addr = chosen.and_then(|ip| address_facts(&last.report.facts, ip));
    let connected = addr.is_some_and(connected);
    let session = addr.and_then(|a| a.session.as_ref());
    let tls_facts: Option<&TlsFacts> = session.and_then(|s| s.tls.as_ref());
    let answered = session.and_then(|s| s.answered.as_ref());
    let expect_labels = answered
        .and_then(|a| a.dialogue.as_ref())
        .map(|d| d.labels.clone())
        .unwrap_or_default();
    let mut failed_due_to_regex = false;
    let mut http = None;
    // The first phase that failed.
    let phase = if chosen.is_none() {
        Some(Phase::Resolve)
    } else if !connected {
        Some(Phase::Connect)
    } else {
        None
    };
    let later = match module.prober {
        Prober::Tcp => {
            let (p, regex) = tcp_phase(module, tls_facts, answered);
            failed_due_to_regex = regex;
            p
        }
        Prober::Http => {
            let (p, series) = http_phase(module, hops, tls_facts, answered, redirect_error);
            http = Some(series);
            p
        }
        // The whole check: a success is an `open` verdict.
        Prober::Canreach => match last.report.verdict {
            Verdict::Open => None,
            Verdict::DnsError => Some(Phase::Resolve),
            Verdict::TlsError => Some(Phase::Tls),
            Verdict::ServiceError | Verdict::MtuBlackhole => Some(Phase::Session),
            _ => Some(Phase::Connect),
        },
    };
    // A regex failure counts only where the query_response phase was reached.
    failed_due_to_regex &= phase.is_none();
    let phase = phase.or(later);
    let tls = tls_facts
        .filter(|t| t.version.is_some() && !t.chain.is_empty())
        .map(tls_series);
    ProbeResult {
        success: phase.is_none(),
        duration: elapsed.as_secs_f64(),
        dns_lookup,
        ip_protocol: match chosen {
            Some(IpAddr::V4(_)) => 4,
            Some(IpAddr::V6(_)) => 6,
            None => 0,
        },
        ip_hash: chosen.map_or(0.0, |ip| f64::from(ip_hash(ip))),
        failed_due_to_regex,
        expect_labels,
        http,
        tls,
        verdict: last.report.verdict,
        failure: phase.map(|p| (reason(&last.report), p)),
    }
}

/// The facts gathered for `ip`, one of the check's addresses.
pub(crate) fn address_facts<A: AddressEntry>(
    facts: &Facts<A>,
    ip: IpAddr,
) -> Option<&AddressFacts> {
    facts
        .addresses
        .iter()
        .map(AddressEntry::gathered)
        .find(|a| a.address().ip() == ip)
}

/// Connected as blackbox_exporter sees it. ECONNRESET as the connect completes is a
/// handshake the kernel finished, reset by the program at once: blackbox_exporter's dial
/// succeeds or not by a race with that reset, so it counts here as connected whichever came
/// first (`canreach_verdict_info` tells the rest).
fn connected(a: &AddressFacts) -> bool {
    a.probe.result == ConnectResult::Connected
        || (a.probe.result
            == (ConnectResult::Failed {
                errno: libc::ECONNRESET,
            })
            && a.probe.icmp.is_none())
}

/// A handshake counts for blackbox_exporter when it completed and the chain verified, or
/// verification was switched off.
fn tls_ok(module: &Module, tls: Option<&TlsFacts>) -> bool {
    tls.is_some_and(|t| t.ok() || (module.insecure && t.version.is_some()))
}

/// The tcp prober's phase that failed after the connect (TLS, the dialogue), and whether a
/// pattern of the dialogue is why.
fn tcp_phase(
    module: &Module,
    tls: Option<&TlsFacts>,
    answered: Option<&Answered>,
) -> (Option<Phase>, bool) {
    if module.tls && !tls_ok(module, tls) {
        return (Some(Phase::Tls), false);
    }
    if module.ask.dialogue.is_empty() {
        return (None, false);
    }
    match answered.and_then(|a| a.dialogue.as_ref()) {
        Some(d) if d.failure.is_none() && d.done == module.ask.dialogue.len() => (None, false),
        Some(d) => (Some(Phase::QueryResponse), d.failed_on_pattern()),
        None => (Some(Phase::QueryResponse), false),
    }
}

/// The http prober's phase that failed after the connect (TLS, the answer), and its series.
fn http_phase(
    module: &Module,
    hops: &[Hop],
    tls: Option<&TlsFacts>,
    answered: Option<&Answered>,
    redirect_error: bool,
) -> (Option<Phase>, HttpSeries) {
    let last = &hops[hops.len() - 1];
    let https = last
        .url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    let x = answered.and_then(|a| a.http.as_ref());
    let response = x.and_then(|x| x.response.as_ref());
    let status = response.map_or(0, |r| r.status);
    let ssl = https && tls.is_some_and(|t| t.version.is_some());
    let valid_status = match &module.valid_status_codes[..] {
        [] => (200..300).contains(&status),
        codes => codes.contains(&status),
    };
    let version_name = match response.map(|r| r.version) {
        Some(0) => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
    let valid_version = module.valid_http_versions.is_empty()
        || module.valid_http_versions.iter().any(|v| v == version_name);
    let body_ok = x.is_some_and(|x| {
        matches!(
            x.body_end,
            BodyEnd::None | BodyEnd::Complete | BodyEnd::Limit
        )
    });
    let phase = if https && !tls_ok(module, tls) {
        Some(Phase::Tls)
    } else if response.is_none()
        || redirect_error
        || !valid_status
        || !valid_version
        || !body_ok
        || (module.fail_if_ssl && ssl)
        || (module.fail_if_not_ssl && !ssl)
    {
        Some(Phase::Http)
    } else {
        None
    };
    let series = HttpSeries {
        status,
        version: response.map_or(0.0, |r| if r.version == 0 { 1.0 } else { 1.1 }),
        ssl,
        redirects: (hops.len() - 1) as u32,
        // blackbox_exporter: 0 when no answer came, -1 for an answer without a
        // Content-Length.
        content_length: response.map_or(0, |r| {
            r.content_length
                .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX))
        }),
        body_length: x.map_or(0, |x| x.body_bytes),
        phases: http_durations(module, hops),
    };
    (phase, series)
}

/// `probe_http_duration_seconds` by phase (resolve, connect, tls, processing, transfer),
/// summed over the redirect's hops.
fn http_durations(module: &Module, hops: &[Hop]) -> [f64; 5] {
    let mut phases = [0.0f64; 5];
    for hop in hops {
        let h_chosen = chosen_address(&hop.report.facts, module);
        let h_addr = h_chosen.and_then(|ip| address_facts(&hop.report.facts, ip));
        phases[0] += hop
            .report
            .facts
            .dns
            .system
            .as_ref()
            .map_or(0.0, |l| l.elapsed.as_secs_f64());
        let Some(a) = h_addr else { continue };
        if a.probe.result == ConnectResult::Connected {
            phases[1] += a.probe.elapsed.as_secs_f64();
        }
        if let Some(s) = &a.session {
            if let Some(t) = &s.tls {
                phases[2] += t.elapsed.as_secs_f64();
            }
            if let Some(x) = s.answered.as_ref().and_then(|a| a.http.as_ref()) {
                phases[3] += x.processing.as_secs_f64();
                phases[4] += x.transfer.as_secs_f64();
            }
        }
    }
    phases
}

fn tls_series(t: &TlsFacts) -> TlsSeries {
    let earliest = t
        .chain
        .iter()
        .filter(|c| c.parse_error.is_none())
        .map(|c| c.not_after)
        .min()
        .unwrap_or(0);
    let leaf = &t.chain[0];
    TlsSeries {
        earliest_expiry: earliest as f64,
        // The chain as sent, when it verified (rustls does not hand back the path it built).
        // With verification skipped there is no verified chain, as in Go (its VerifiedChains
        // is empty under InsecureSkipVerify), whatever verification would have said.
        last_chain_expiry: if t.ok() && t.unverified.is_none() {
            earliest as f64
        } else {
            GO_ZERO_TIME
        },
        fingerprint: leaf.sha256.iter().map(|b| format!("{b:02x}")).collect(),
        subject: label_text(&leaf.subject),
        issuer: label_text(&leaf.issuer),
        alternative: label_text(&leaf.dns_names.join(",")),
        version: match t.version {
            Some(TlsVersion::Tls12) => "TLS 1.2".into(),
            Some(TlsVersion::Tls13) => "TLS 1.3".into(),
            Some(TlsVersion::Other(n)) => format!("0x{n:04x}"),
            None => "unknown".into(),
        },
        cipher: t
            .cipher_suite
            .as_ref()
            .map(|c| c.replacen("TLS13_", "TLS_", 1)),
    }
}

/// Text from a certificate as a label value: control, bidi and invisible characters
/// (`escape::needs_escape`) dropped, at most 256 characters (the server chose it, and a
/// label value is shown raw by Prometheus's pages and whatever reads its API).
fn label_text(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() && !crate::escape::needs_escape(*c))
        .take(256)
        .collect()
}

/// The help texts, as blackbox_exporter writes them.
pub(crate) mod help {
    pub(crate) const SUCCESS: &str = "Displays whether or not the probe was a success";
    pub(crate) const DURATION: &str = "Returns how long the probe took to complete in seconds";
    pub(crate) const DNS_LOOKUP: &str = "Returns the time taken for probe dns lookup in seconds";
    pub(crate) const IP_PROTOCOL: &str = "Specifies whether probe ip protocol is IP4 or IP6";
    pub(crate) const IP_HASH: &str =
        "Specifies the hash of IP address. It's useful to detect if the IP address changes.";
    pub(crate) const REGEX: &str = "Indicates if probe failed due to regex";
    pub(crate) const HTTP_CONTENT_LENGTH: &str = "Length of http content response";
    pub(crate) const HTTP_DURATION: &str =
        "Duration of http request by phase, summed over all redirects";
    pub(crate) const HTTP_REDIRECTS: &str = "The number of redirects";
    pub(crate) const HTTP_SSL: &str = "Indicates if SSL was used for the final redirect";
    pub(crate) const HTTP_STATUS: &str = "Response HTTP status code";
    pub(crate) const HTTP_BODY: &str = "Length of uncompressed response body";
    pub(crate) const HTTP_VERSION: &str = "Returns the version of HTTP of the probe response";
    pub(crate) const SSL_EARLIEST: &str = "Returns last SSL chain expiry in unixtime";
    pub(crate) const SSL_LAST_CHAIN: &str = "Returns last SSL chain expiry in timestamp";
    pub(crate) const SSL_CHAIN_INFO: &str = "Contains SSL leaf certificate information";
    pub(crate) const TLS_VERSION: &str = "Returns the TLS version used or NaN when unknown";
    pub(crate) const TLS_CIPHER: &str = "Returns the TLS cipher negotiated during handshake";
    pub(crate) const EXPECT: &str = "Explicit content matched";
    pub(crate) const FAILURE: &str = "Why the probe failed: canreach's verdict, the finding that explains it, and the phase it stopped in";
    pub(crate) const VERDICT: &str =
        "canreach's verdict on the target, whatever probe_success says";
}

/// The phases of `probe_http_duration_seconds`, in blackbox_exporter's order of output.
const HTTP_PHASES: [(&str, usize); 5] = [
    ("connect", 1),
    ("processing", 3),
    ("resolve", 0),
    ("tls", 2),
    ("transfer", 4),
];

impl Collector for ProbeResult {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let enc = &mut enc;
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        // Sorted by name, as blackbox_exporter's registry writes them.
        info(
            enc,
            "canreach_verdict_info",
            help::VERDICT,
            &[("verdict", self.verdict.as_str())],
        )?;
        gauge(
            enc,
            "probe_dns_lookup_time_seconds",
            help::DNS_LOOKUP,
            self.dns_lookup,
        )?;
        gauge(enc, "probe_duration_seconds", help::DURATION, self.duration)?;
        if !self.expect_labels.is_empty() {
            let labels: Vec<(&str, &str)> = self
                .expect_labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            info(enc, "probe_expect_info", help::EXPECT, &labels)?;
        }
        let regex = flag(self.failed_due_to_regex);
        gauge(enc, "probe_failed_due_to_regex", help::REGEX, regex)?;
        if let Some((finding, phase)) = self.failure {
            info(
                enc,
                "probe_failure_info",
                help::FAILURE,
                &[
                    ("finding", finding),
                    ("phase", phase.as_str()),
                    ("verdict", self.verdict.as_str()),
                ],
            )?;
        }
        if let Some(h) = &self.http {
            http_series(enc, h)?;
        }
        gauge(enc, "probe_ip_addr_hash", help::IP_HASH, self.ip_hash)?;
        let protocol = f64::from(self.ip_protocol);
        gauge(enc, "probe_ip_protocol", help::IP_PROTOCOL, protocol)?;
        if let Some(t) = &self.tls {
            ssl_series(enc, t)?;
        }
        gauge(enc, "probe_success", help::SUCCESS, flag(self.success))?;
        if let Some(t) = &self.tls {
            if let Some(c) = &t.cipher {
                info(
                    enc,
                    "probe_tls_cipher_info",
                    help::TLS_CIPHER,
                    &[("cipher", c)],
                )?;
            }
            let version = [("version", t.version.as_str())];
            info(enc, "probe_tls_version_info", help::TLS_VERSION, &version)?;
        }
        Ok(())
    }
}

/// A gauge of 1 with `labels` (an `_info` series).
fn info(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    labels: &[(&str, &str)],
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    let labels: Vec<(&str, &str)> = labels.to_vec();
    m.encode_family(&labels)?.encode_gauge(&1i64)
}

/// A gauge of `v`.
fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: f64,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    // Whole numbers as blackbox_exporter writes them (`probe_success 1`, not `1.0`).
    if v.fract() == 0.0 && v.abs() < 1e15 {
        m.encode_gauge(&(v as i64))
    } else {
        m.encode_gauge(&v)
    }
}

/// The `probe_http_*` series, in name order.
fn http_series(enc: &mut DescriptorEncoder, h: &HttpSeries) -> Result<(), std::fmt::Error> {
    let length = h.content_length as f64;
    gauge(
        enc,
        "probe_http_content_length",
        help::HTTP_CONTENT_LENGTH,
        length,
    )?;
    let mut m = enc.encode_descriptor(
        "probe_http_duration_seconds",
        help::HTTP_DURATION,
        None,
        MetricType::Gauge,
    )?;
    for (name, i) in HTTP_PHASES {
        let labels = [("phase", name)];
        m.encode_family(&labels)?.encode_gauge(&h.phases[i])?;
    }
    let redirects = f64::from(h.redirects);
    gauge(enc, "probe_http_redirects", help::HTTP_REDIRECTS, redirects)?;
    let ssl = if h.ssl { 1.0 } else { 0.0 };
    gauge(enc, "probe_http_ssl", help::HTTP_SSL, ssl)?;
    let status = f64::from(h.status);
    gauge(enc, "probe_http_status_code", help::HTTP_STATUS, status)?;
    let body = h.body_length as f64;
    gauge(
        enc,
        "probe_http_uncompressed_body_length",
        help::HTTP_BODY,
        body,
    )?;
    gauge(enc, "probe_http_version", help::HTTP_VERSION, h.version)
}

/// The `probe_ssl_*` series, in name order.
fn ssl_series(enc: &mut DescriptorEncoder, t: &TlsSeries) -> Result<(), std::fmt::Error> {
    gauge(
        enc,
        "probe_ssl_earliest_cert_expiry",
        help::SSL_EARLIEST,
        t.earliest_expiry,
    )?;
    gauge(
        enc,
        "probe_ssl_last_chain_expiry_timestamp_seconds",
        help::SSL_LAST_CHAIN,
        t.last_chain_expiry,
    )?;
    info(
        enc,
        "probe_ssl_last_chain_info",
        help::SSL_CHAIN_INFO,
        &[
            ("fingerprint_sha256", &t.fingerprint),
            ("issuer", &t.issuer),
            ("subject", &t.subject),
            ("subjectalternative", &t.alternative),
        ],
    )
}

/// The result in the Prometheus text format, version 0.0.4.
pub(crate) fn encode(result: &ProbeResult) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(result.clone()));
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
    out
}

/// The content type of [`encode`]'s output.
pub(crate) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// `# HELP` and `# TYPE` lines by metric name.
    fn descriptors(text: &str) -> BTreeMap<String, (String, String)> {
        let mut out: BTreeMap<String, (String, String)> = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap();
                out.entry(name.into()).or_default().0 = help.into();
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, ty) = rest.split_once(' ').unwrap();
                out.entry(name.into()).or_default().1 = ty.into();
            }
        }
        out
    }

    fn full_result() -> ProbeResult {
        ProbeResult {
            success: true,
            duration: 0.0123,
            dns_lookup: 0.001,
            ip_protocol: 4,
            ip_hash: f64::from(ip_hash("127.0.0.1".parse().unwrap())),
            failed_due_to_regex: false,
            expect_labels: vec![],
            http: Some(HttpSeries {
                status: 200,
                version: 1.1,
                ssl: true,
                redirects: 0,
                content_length: -1,
                body_length: 4463,
                phases: [0.1, 0.2, 0.3, 0.4, 0.5],
            }),
            tls: Some(TlsSeries {
                earliest_expiry: 1.8e9,
                last_chain_expiry: GO_ZERO_TIME,
                fingerprint: "ab".into(),
                subject: "CN=localhost".into(),
                issuer: "CN=localhost".into(),
                alternative: "localhost".into(),
                version: "TLS 1.3".into(),
                cipher: Some("TLS_AES_256_GCM_SHA384".into()),
            }),
            verdict: Verdict::Open,
            failure: None,
        }
    }

    /// Every series blackbox_exporter 0.23 wrote for an https probe (captured in
    /// tests/fixtures/blackbox/) is written by canreach with the same help and type.
    #[test]
    fn names_help_and_types_are_blackbox_exporters() {
        let ours = descriptors(&encode(&full_result()));
        for fixture in [
            include_str!("../../tests/fixtures/blackbox/https_insecure.txt"),
            include_str!("../../tests/fixtures/blackbox/http_2xx.txt"),
            include_str!("../../tests/fixtures/blackbox/tcp_connect_open.txt"),
        ] {
            for (name, theirs) in descriptors(fixture) {
                assert_eq!(ours.get(&name), Some(&theirs), "{name}");
            }
        }
    }

    #[test]
    fn the_tcp_series_and_the_failure_reason() {
        let r = ProbeResult {
            success: false,
            http: None,
            tls: None,
            verdict: Verdict::Closed,
            failure: Some(("port_closed", Phase::Connect)),
            ..full_result()
        };
        let text = encode(&r);
        let ours = descriptors(&text);
        let theirs = descriptors(include_str!(
            "../../tests/fixtures/blackbox/tcp_connect_closed.txt"
        ));
        for n in theirs.keys() {
            assert!(ours.contains_key(n), "{n} missing:\n{text}");
        }
        assert!(text.contains("probe_success 0\n"), "{text}");
        assert!(
            text.contains(
                "probe_failure_info{finding=\"port_closed\",phase=\"connect\",verdict=\"closed\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains("canreach_verdict_info{verdict=\"closed\"} 1\n"));
        assert!(text.contains("probe_ip_addr_hash 3668918509\n"), "{text}");
        // No `# EOF`, no `_total`: the 0.0.4 text format.
        assert!(!text.contains("EOF"));
    }

    #[test]
    fn ip_hash_is_blackbox_exporters() {
        // blackbox_exporter 0.23 answered 3.668918509e+09 for 127.0.0.1 (fixture).
        assert_eq!(ip_hash("127.0.0.1".parse().unwrap()), 3_668_918_509);
        assert_ne!(
            ip_hash("::1".parse().unwrap()),
            ip_hash("127.0.0.1".parse().unwrap())
        );
    }

    /// docs/fleet.md's phase table names exactly the phases there are, and the verdict words.
    #[test]
    fn the_docs_name_every_label_value() {
        let doc = include_str!("../../docs/fleet.md");
        let table: Vec<&str> = doc
            .lines()
            .skip_while(|l| !l.starts_with("| phase | when |"))
            .skip(2)
            .take_while(|l| l.starts_with("| `"))
            .map(|l| l.split('`').nth(1).unwrap())
            .collect();
        let ours: Vec<&str> = Phase::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(table, ours);
        for v in Verdict::ALL {
            assert!(doc.contains(&format!("`{}`", v.as_str())), "{v:?}");
        }
        assert!(doc.contains("`none`"));
    }

    #[test]
    fn certificate_text_in_labels_has_no_raw_character() {
        assert_eq!(
            label_text("CN=evil\u{202e}moc.elgoog\u{9b}\u{7f}\u{2066}\u{200e}\n, O=x"),
            "CN=evilmoc.elgoog, O=x"
        );
        assert_eq!(label_text(&"a".repeat(300)).len(), 256);
    }

    #[test]
    fn label_values_come_from_fixed_sets() {
        let findings: Vec<&str> = finding_values().collect();
        assert!(findings.contains(&"none"));
        assert!(findings.contains(&"port_closed"));
        for p in Phase::ALL {
            assert!(
                p.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
        }
    }
}
