//! `GET /metrics`: the exporter's own metrics, with `prometheus-client`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `canreach_probes_total` | counter | `module`, `verdict`, `success` (`true`/`false`) |
//! | `canreach_probes_refused_total` | counter | `reason`: `bad_request`, `not_allowed`, `busy` |
//! | `canreach_probes_in_flight` | gauge | |
//! | `canreach_probes_queued` | gauge | |
//! | `canreach_probe_duration_seconds` | histogram | `module` |
//! | `process_*` | (below) | |
//!
//! `module` takes the module names of the file (or the built-in ones), a fixed set.

use std::sync::atomic::AtomicI64;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// Why a probe request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    BadRequest,
    NotAllowed,
    Busy,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::BadRequest => "bad_request",
            Refusal::NotAllowed => "not_allowed",
            Refusal::Busy => "busy",
        }
    }
}

/// The exporter's own metrics.
#[derive(Debug)]
pub(crate) struct Own {
    registry: Registry,
    probes: Family<Labels, Counter>,
    refused: Family<Labels, Counter>,
    pub in_flight: Gauge<i64, AtomicI64>,
    pub queued: Gauge<i64, AtomicI64>,
    durations: Family<Labels, Histogram>,
}

impl Default for Own {
    fn default() -> Self {
        Own::new()
    }
}

fn buckets() -> Histogram {
    Histogram::new([
        0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ])
}

impl Own {
    pub fn new() -> Own {
        let mut registry = Registry::default();
        let probes = Family::<Labels, Counter>::default();
        let refused = Family::<Labels, Counter>::default();
        let in_flight = Gauge::<i64, AtomicI64>::default();
        let queued = Gauge::<i64, AtomicI64>::default();
        let durations =
            Family::<Labels, Histogram>::new_with_constructor(buckets as fn() -> Histogram);
        registry.register(
            "canreach_probes",
            "Probes answered, by module, canreach's verdict and probe_success",
            probes.clone(),
        );
        registry.register(
            "canreach_probes_refused",
            "Probe requests refused before a probe ran, by reason",
            refused.clone(),
        );
        registry.register(
            "canreach_probes_in_flight",
            "Probes running now",
            in_flight.clone(),
        );
        registry.register(
            "canreach_probes_queued",
            "Probes waiting for a free slot (--max-concurrent)",
            queued.clone(),
        );
        registry.register(
            "canreach_probe_duration_seconds",
            "How long probes took, by module",
            durations.clone(),
        );
        registry.register_collector(Box::new(Process));
        Own {
            registry,
            probes,
            refused,
            in_flight,
            queued,
            durations,
        }
    }

    pub(crate) fn probed(&self, module: &str, verdict: &'static str, success: bool, secs: f64) {
        self.probes
            .get_or_create(&vec![
                ("module", module.to_string()),
                ("success", success.to_string()),
                ("verdict", verdict.to_string()),
            ])
            .inc();
        self.durations
            .get_or_create(&vec![("module", module.to_string())])
            .observe(secs);
    }

    pub(crate) fn refused(&self, why: Refusal) {
        self.refused
            .get_or_create(&vec![("reason", why.as_str().to_string())])
            .inc();
    }

    /// Everything, in the Prometheus text format 0.0.4.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// The `process_*` metrics of the Prometheus client libraries, from /proc/self.
#[derive(Debug)]
struct Process;

/// What /proc/self/stat says, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Stat {
    /// User and system time, in clock ticks.
    pub cpu_ticks: u64,
    pub threads: u64,
    /// Start, in clock ticks after boot.
    pub start_ticks: u64,
    pub vsize: u64,
    /// Resident pages.
    pub rss_pages: u64,
}

/// Parse /proc/PID/stat: the fields after the command's closing parenthesis (the command
/// itself may hold spaces and parentheses).
pub(crate) fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state).
    let n = |i: usize| -> Option<u64> { f.get(i - 3)?.parse().ok() };
    Some(Stat {
        cpu_ticks: n(14)? + n(15)?,
        threads: n(20)?,
        start_ticks: n(22)?,
        vsize: n(23)?,
        rss_pages: n(24)?,
    })
}

/// The soft limit on open files from /proc/PID/limits.
pub(crate) fn parse_max_fds(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The boot time (`btime`) from /proc/stat.
pub(crate) fn parse_btime(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// Open descriptors of this process.
pub(crate) fn open_fds() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

/// Linux reports /proc times in USER_HZ, 100 on every architecture it runs on.
const TICKS: f64 = 100.0;
const PAGE: u64 = 4096;

impl Collector for Process {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stat = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|t| parse_stat(&t));
        let btime = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|t| parse_btime(&t));
        let max = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|t| parse_max_fds(&t));
        if let Some(s) = stat {
            let c = ConstCounter::new(s.cpu_ticks as f64 / TICKS);
            c.encode(enc.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                MetricType::Counter,
            )?)?;
            let g = |enc: &mut DescriptorEncoder, name: &str, help: &str, v: f64| {
                ConstGauge::new(v).encode(enc.encode_descriptor(
                    name,
                    help,
                    None,
                    MetricType::Gauge,
                )?)
            };
            g(
                &mut enc,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                (s.rss_pages * PAGE) as f64,
            )?;
            g(
                &mut enc,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                s.vsize as f64,
            )?;
            g(
                &mut enc,
                "process_threads",
                "Number of OS threads in the process.",
                s.threads as f64,
            )?;
            if let Some(b) = btime {
                g(
                    &mut enc,
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.",
                    b as f64 + s.start_ticks as f64 / TICKS,
                )?;
            }
        }
        if let Some(n) = open_fds() {
            ConstGauge::new(n as f64).encode(enc.encode_descriptor(
                "process_open_fds",
                "Number of open file descriptors.",
                None,
                MetricType::Gauge,
            )?)?;
        }
        if let Some(n) = max {
            ConstGauge::new(n as f64).encode(enc.encode_descriptor(
                "process_max_fds",
                "Maximum number of open file descriptors.",
                None,
                MetricType::Gauge,
            )?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_parse() {
        let stat = "4242 (can reach (x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 150 50 0 0 20 0 3 0 123456 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let s = parse_stat(stat).unwrap();
        assert_eq!(s.cpu_ticks, 200);
        assert_eq!(s.threads, 3);
        assert_eq!(s.start_ticks, 123456);
        assert_eq!(s.vsize, 104857600);
        assert_eq!(s.rss_pages, 2560);
        assert_eq!(parse_stat("garbage"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1024                 524288               files     \n";
        assert_eq!(parse_max_fds(limits), Some(1024));
        assert_eq!(
            parse_btime("cpu 1 2\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn own_metrics_are_written() {
        let own = Own::new();
        own.probed("tcp_connect", "open", true, 0.002);
        own.refused(Refusal::Busy);
        let text = own.encode();
        assert!(
            text.contains(
                "canreach_probes_total{module=\"tcp_connect\",success=\"true\",verdict=\"open\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("canreach_probes_refused_total{reason=\"busy\"} 1"));
        assert!(text.contains("canreach_probe_duration_seconds_bucket{"));
        assert!(text.contains("process_open_fds "), "{text}");
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
    }
}
