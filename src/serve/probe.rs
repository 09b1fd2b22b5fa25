//! One probe: the target read as the module's prober reads it, the deadline, canreach's
//! pipeline (`pipeline::gather_with` → `diagnosis::diagnose`) once per hop of a redirect
//! chain, and the result judged in blackbox_exporter's terms ([`super::metrics::judge`]).
//!
//! No second prober: every connect, handshake and request is the pipeline's; a module only
//! changes what the session stage is asked ([`crate::session::ask`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::diagnosis;
use crate::dns::{DnsErrorKind, DnsView, Lookup, LookupError, Resolver, SystemResolver};
use crate::facts::{AddressEntry, Facts};
use crate::local::shared::Lasting;
use crate::options::{LocalMode, Options, Protocol, TraceMode};
use crate::pipeline;
use crate::probe::KernelConnector;
use crate::services::Services;
use crate::session::ask::{Ask, HttpAsk};
use crate::session::http::HttpTarget;
use crate::session::status::StatusSet;
use crate::target::{self, Target};

use super::allow::Allow;
use super::config::{Ip, Module, Prober};
use super::metrics::{self, Hop, ProbeResult};

/// The longest target accepted (a URL with its query).
pub(crate) const TARGET_MAX: usize = 2048;
/// Redirects followed at most (Go's client, and so blackbox_exporter: 10).
pub(crate) const REDIRECTS_MAX: usize = 10;
/// The deadline when Prometheus sends no `X-Prometheus-Scrape-Timeout-Seconds`: its default
/// scrape timeout (10 s) less the offset. blackbox_exporter assumes 120 s, which holds a
/// socket and a slot for two minutes for a client that would have given up long before.
pub(crate) const NO_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a probe request is refused before it runs (HTTP 400; 403 for `--allow`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BadRequest {
    #[error("the target parameter is missing")]
    NoTarget,
    #[error("the module parameter is missing")]
    NoModule,
    #[error("unknown module `{0}`")]
    UnknownModule(String),
    #[error("the {0} parameter is given more than once")]
    Repeated(&'static str),
    #[error("the {0} is longer than {1} bytes")]
    TooLong(&'static str, usize),
    #[error("the target `{0}` cannot be probed: {1}")]
    Target(String, String),
    #[error("X-Prometheus-Scrape-Timeout-Seconds `{0}` is not a positive number of seconds")]
    Header(String),
    #[error("the target `{0}` is outside this exporter's --allow list")]
    NotAllowed(String),
}

/// The probe's timeout: `X-Prometheus-Scrape-Timeout-Seconds` less `offset` (half the
/// header when the offset would leave nothing), [`NO_HEADER_TIMEOUT`] less `offset` without
/// the header, capped by the module's `timeout` and by 300 s; at least 1 ms.
pub(crate) fn probe_timeout(
    header: Option<&str>,
    offset: Duration,
    module: Option<Duration>,
) -> Result<Duration, BadRequest> {
    let scrape = match header {
        None => NO_HEADER_TIMEOUT.as_secs_f64(),
        Some(h) => {
            let v: f64 = h
                .trim()
                .parse()
                .map_err(|_| BadRequest::Header(shown(h, 40)))?;
            if !v.is_finite() || v <= 0.0 {
                return Err(BadRequest::Header(shown(h, 40)));
            }
            v
        }
    };
    let mut secs = scrape - offset.as_secs_f64();
    if secs <= 0.0 {
        secs = scrape / 2.0;
    }
    let mut t = Duration::from_secs_f64(secs.min(super::config::TIMEOUT_MAX.as_secs_f64()));
    if let Some(m) = module {
        t = t.min(m);
    }
    Ok(t.max(Duration::from_millis(1)))
}

/// Untrusted text for a message: secrets masked and escaped (`escape::line`, as the CLI's
/// usage errors: a refused target's password must not come back in the answer, nor on the
/// page), at most `max` characters.
pub(crate) fn shown(s: &str, max: usize) -> String {
    let visible = crate::escape::line(s);
    let mut out: String = visible.chars().take(max).collect();
    if visible.chars().count() > max {
        out.push('…');
    }
    out
}

/// A target as the module's prober reads it.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub target: Target,
    /// http modules: the URL (with its query).
    pub url: Option<url::Url>,
}

/// Read `raw` as `prober` does: tcp `HOST:PORT`; http a URL (`http://` when no scheme is
/// given, as blackbox_exporter does); canreach the CLI's TARGET.
pub(crate) fn parse_target(
    raw: &str,
    prober: Prober,
    services: &Services,
) -> Result<Parsed, BadRequest> {
    if raw.len() > TARGET_MAX {
        return Err(BadRequest::TooLong("target", TARGET_MAX));
    }
    let bad = |why: String| BadRequest::Target(shown(raw, 80), why);
    if raw.trim().is_empty() {
        return Err(BadRequest::NoTarget);
    }
    match prober {
        Prober::Tcp => {
            if raw.contains("://") {
                return Err(bad("a tcp module takes HOST:PORT, not a URL".into()));
            }
            let target = target::parse(raw, None, services).map_err(|e| bad(e.to_string()))?;
            if target.here {
                return Err(bad("a tcp module takes HOST:PORT".into()));
            }
            Ok(Parsed { target, url: None })
        }
        Prober::Http => {
            let text = if raw.contains("://") {
                raw.to_string()
            } else {
                format!("http://{raw}")
            };
            let url = url::Url::parse(&text).map_err(|e| bad(e.to_string()))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(bad("an http module takes an http:// or https:// URL".into()));
            }
            if url.host_str().is_none_or(str::is_empty) {
                return Err(bad("the URL has no host".into()));
            }
            let target = target::parse(&text, None, services).map_err(|e| bad(e.to_string()))?;
            Ok(Parsed {
                target,
                url: Some(url),
            })
        }
        Prober::Canreach => {
            let target = target::parse(raw, None, services).map_err(|e| bad(e.to_string()))?;
            Ok(Parsed { target, url: None })
        }
    }
}

/// The system resolver, keeping only the module's family when it allows no fallback.
#[derive(Debug, Clone, Copy)]
struct ModuleResolver {
    only: Option<Ip>,
}

impl Resolver for ModuleResolver {
    async fn system(&self, name: &str, deadline: Instant) -> Lookup {
        let mut l = SystemResolver.system(name, deadline).await;
        let Some(only) = self.only else {
            return l;
        };
        if l.error.is_some() {
            return l;
        }
        let had = l.addresses.len();
        l.addresses.retain(|ip| match only {
            Ip::V4 => ip.is_ipv4(),
            Ip::V6 => ip.is_ipv6(),
        });
        if l.addresses.is_empty() && had > 0 {
            l.error = Some(LookupError {
                kind: DnsErrorKind::Nodata,
                detail: Some(format!(
                    "the name has no {} address, and the module allows no other \
                     (ip_protocol_fallback: false)",
                    match only {
                        Ip::V4 => "IPv4",
                        Ip::V6 => "IPv6",
                    }
                )),
            });
        }
        l
    }

    async fn direct(&self, name: &str, deadline: Instant) -> Option<DnsView> {
        SystemResolver.direct(name, deadline).await
    }
}

/// A finished probe.
#[derive(Debug)]
pub(crate) struct Done {
    pub hops: Vec<Hop>,
    pub result: ProbeResult,
    /// Why a redirect was not followed, when that failed the probe.
    pub redirect_note: Option<String>,
}

/// Run one probe of `parsed` with `module`, everything before `deadline`.
pub(crate) async fn run(
    parsed: Parsed,
    module: &Module,
    deadline: Instant,
    inspector: &Lasting,
    allow: &Allow,
    services: &Services,
) -> Done {
    let start = Instant::now();
    let resolver = ModuleResolver {
        only: (!module.fallback).then_some(module.preferred),
    };
    let mut hops: Vec<Hop> = Vec::new();
    let mut current = parsed;
    let mut method = module
        .http_ask()
        .map_or_else(|| "GET".to_string(), |h| h.method.clone());
    let mut redirect_note = None;
    loop {
        let opts = options_for(module, &current, &method, deadline);
        let url = current.url.as_ref().map(|u| u.to_string());
        let facts = pipeline::gather_with(
            current.target.clone(),
            opts,
            &resolver,
            &KernelConnector,
            inspector,
        )
        .await;
        let mut facts = facts;
        // Whether the redirect is followed is decided before the diagnosis, whose words
        // about it depend on that.
        let next = redirect(module, &facts, current.url.as_ref()).map(|location| {
            let at = hops.len() + 1;
            follow(
                location,
                at,
                last_status(&facts),
                &mut method,
                deadline,
                allow,
                services,
            )
        });
        facts.redirect_followed = matches!(next, Some(Ok(_)));
        hops.push(Hop {
            url,
            report: diagnosis::diagnose(facts),
        });
        match next {
            None => break,
            Some(Ok(parsed)) => current = parsed,
            Some(Err(note)) => {
                redirect_note = Some(note);
                break;
            }
        }
    }
    let result = metrics::judge(module, &hops, start.elapsed(), redirect_note.is_some());
    Done {
        hops,
        result,
        redirect_note,
    }
}

/// What a check of this hop may do, as the module says.
fn options_for(module: &Module, current: &Parsed, method: &str, deadline: Instant) -> Options {
    let timeout = deadline.saturating_duration_since(Instant::now());
    let ask = ask_for(module, current, method);
    let protocol = match module.prober {
        Prober::Tcp if module.tls => Protocol::Tls,
        Prober::Tcp => Protocol::Tcp,
        Prober::Http if current.url.as_ref().is_some_and(|u| u.scheme() == "https") => {
            Protocol::Https
        }
        Prober::Http => Protocol::Http,
        Prober::Canreach => Protocol::Auto,
    };
    Options {
        timeout: timeout.max(Duration::from_millis(1)),
        trace: TraceMode::Auto,
        local: LocalMode::Auto,
        protocol,
        // tcp and http: like blackbox_exporter, which uses no proxy unless a module names
        // one; canreach: the CLI's check, which follows the environment's proxy.
        follow_proxy: module.prober == Prober::Canreach,
        trust: Default::default(),
        // The module's valid statuses make canreach's verdict agree with probe_success.
        expect_status: module
            .http_ask()
            .map(|_| StatusSet::valid_codes(&module.valid_status_codes)),
        ask,
        // The failure's reason is the point of the exporter: every fact that explains one.
        report: true,
        payload: None,
    }
}

/// The next hop of a redirect to `location`, or why it is not followed. `method` becomes
/// GET where a client turns a POST into one.
/// `hops`: how many hops were checked, this one included; `status`: this hop's.
fn follow(
    location: Result<url::Url, ()>,
    hops: usize,
    status: Option<u16>,
    method: &mut String,
    deadline: Instant,
    allow: &Allow,
    services: &Services,
) -> Result<Parsed, String> {
    if hops > REDIRECTS_MAX {
        return Err(format!("stopped after {REDIRECTS_MAX} redirects"));
    }
    let Ok(url) = location else {
        return Err("a redirect without a usable Location".into());
    };
    let parsed = parse_target(url.as_str(), Prober::Http, services)
        .map_err(|e| format!("a redirect that cannot be followed: {e}"))?;
    if !allow.admits(&parsed.target.host) {
        return Err("a redirect to a target outside --allow".into());
    }
    // 301, 302 and 303 turn a POST into a GET (as Go's client, and browsers, do).
    let status = status.unwrap_or(0);
    if status == 303 || (matches!(status, 301 | 302) && method == "POST") {
        *method = "GET".into();
    }
    if Instant::now() >= deadline {
        return Err("the deadline came before the redirect".into());
    }
    Ok(parsed)
}

/// What the session stage is asked for this hop.
fn ask_for(module: &Module, parsed: &Parsed, method: &str) -> Option<Arc<Ask>> {
    match module.prober {
        Prober::Canreach => None,
        Prober::Tcp => Some(module.ask.clone()),
        Prober::Http => {
            let url = parsed.url.as_ref()?;
            let host = url.host_str().unwrap_or("");
            let host_header = match url.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.to_string(),
            };
            let mut path = url.path().to_string();
            if path.is_empty() {
                path.push('/');
            }
            if let Some(q) = url.query() {
                path.push('?');
                path.push_str(q);
            }
            let base = module.http_ask().cloned().unwrap_or(HttpAsk {
                method: "GET".into(),
                headers: vec![],
                target: None,
            });
            Some(Arc::new(Ask {
                http: Some(HttpAsk {
                    method: method.to_string(),
                    target: Some(HttpTarget { host_header, path }),
                    ..base
                }),
                ..(*module.ask).clone()
            }))
        }
    }
}

fn last_status<A: AddressEntry>(facts: &Facts<A>) -> Option<u16> {
    facts.addresses.iter().find_map(|a| {
        a.gathered()
            .session
            .as_ref()?
            .answered
            .as_ref()?
            .http
            .as_ref()?
            .response
            .as_ref()
            .map(|r| r.status)
    })
}

/// The URL to follow, when the module follows redirects and the answer is one: `Err` for a
/// redirect whose Location is missing or not a URL.
fn redirect<A: AddressEntry>(
    module: &Module,
    facts: &Facts<A>,
    base: Option<&url::Url>,
) -> Option<Result<url::Url, ()>> {
    if module.prober != Prober::Http || !module.follow_redirects {
        return None;
    }
    let chosen = metrics::chosen_address(facts, module)?;
    let a = metrics::address_facts(facts, chosen)?;
    let r = a
        .session
        .as_ref()?
        .answered
        .as_ref()?
        .http
        .as_ref()?
        .response
        .as_ref()?;
    if !matches!(r.status, 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let Some(loc) = &r.location else {
        return Some(Err(()));
    };
    Some(match base {
        Some(b) => b.join(loc).map_err(|_| ()),
        None => Err(()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn the_deadline_rule() {
        let off = Duration::from_millis(500);
        // Prometheus's header less the offset: blackbox_exporter's rule.
        assert_eq!(
            probe_timeout(Some("2"), off, None),
            Ok(Duration::from_millis(1500))
        );
        // Capped by the module's timeout.
        assert_eq!(probe_timeout(Some("10"), off, Some(3 * S)), Ok(3 * S));
        assert_eq!(
            probe_timeout(Some("2"), off, Some(5 * S)),
            Ok(Duration::from_millis(1500))
        );
        // No header: Prometheus's default scrape timeout, 10 s, less the offset.
        assert_eq!(
            probe_timeout(None, off, None),
            Ok(Duration::from_millis(9500))
        );
        assert_eq!(probe_timeout(None, off, Some(2 * S)), Ok(2 * S));
        // An offset as large as the header leaves half of it.
        assert_eq!(
            probe_timeout(Some("0.4"), off, None),
            Ok(Duration::from_millis(200))
        );
        // A huge header is capped at 300 s.
        assert_eq!(
            probe_timeout(Some("1e9"), off, None),
            Ok(Duration::from_secs(300))
        );
        for bad in ["abc", "-1", "0", "NaN", "inf", ""] {
            assert!(
                matches!(
                    probe_timeout(Some(bad), off, None),
                    Err(BadRequest::Header(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn targets_as_each_prober_reads_them() {
        let s = Services::parse("");
        let t = parse_target("127.0.0.1:22", Prober::Tcp, &s).unwrap();
        assert_eq!(t.target.port.get(), 22);
        assert!(parse_target("127.0.0.1", Prober::Tcp, &s).is_err());
        assert!(parse_target("http://h/", Prober::Tcp, &s).is_err());
        let h = parse_target("example.test:8080/x?y=1", Prober::Http, &s).unwrap();
        assert_eq!(h.url.unwrap().as_str(), "http://example.test:8080/x?y=1");
        assert_eq!(h.target.port.get(), 8080);
        let h = parse_target("https://example.test/", Prober::Http, &s).unwrap();
        assert_eq!(h.target.port.get(), 443);
        assert!(parse_target("ftp://h/", Prober::Http, &s).is_err());
        assert!(parse_target(&"a".repeat(TARGET_MAX + 1), Prober::Tcp, &s).is_err());
        let e = parse_target("bad\u{7}host:1", Prober::Tcp, &s).unwrap_err();
        assert!(!e.to_string().contains('\u{7}'), "{e}");
    }

    #[test]
    fn a_refused_target_is_quoted_without_its_secrets() {
        let s = Services::parse("");
        for (raw, prober) in [
            ("http://u:hunter2@h:99999/", Prober::Http),
            ("https://h:99999/?token=hunter2", Prober::Http),
            ("u:hunter2@h:22", Prober::Tcp),
            ("u:hunter2@h", Prober::Canreach),
        ] {
            let e = parse_target(raw, prober, &s).unwrap_err().to_string();
            assert!(!e.contains("hunter2"), "{raw} → {e}");
            assert!(e.contains("***"), "{raw} → {e}");
        }
        let refused = BadRequest::NotAllowed(shown("http://u:hunter2@10.0.0.1/", 80));
        assert!(!refused.to_string().contains("hunter2"), "{refused}");
    }
}
