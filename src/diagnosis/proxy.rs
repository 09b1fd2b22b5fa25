//! The proxy the application goes through: which one applies, whether it let the session
//! through (`proxy_auth_required`, `proxy_forbidden`, `proxy_upstream_failed`,
//! `proxy_connect_failed`), what the direct path did beside it, and who answered past it.

use super::advice::{Machine, Step, StepKind};
use super::commands::Command;
use super::context::Ctx;
use super::finding::{Finding, FindingId};
use super::judge::{ProxyRefusal, proxy_refusal};
use super::outcome::{AddressResult, Outcome, Verdict};
use super::words::{bounded, first_line, io_words};
use crate::facts::ProxyRoute;
use crate::session::http::{HttpFailure, HttpResponse};
use crate::session::proxy::ProxyChoice;
use crate::session::{SessionFacts, ViaProxy};

/// The first address's session went past the proxy (an open tunnel, or a forwarded
/// request): what came back after that is the destination's.
pub(crate) fn through_proxy(cx: &Ctx) -> bool {
    cx.facts.via.is_some()
        && cx
            .facts
            .addresses
            .first()
            .and_then(|a| a.facts.session.as_ref())
            .is_some_and(passed_proxy)
}

pub(super) fn passed_proxy(s: &SessionFacts) -> bool {
    match &s.via {
        Some(ViaProxy::Forward) => proxy_refusal(s).is_none(),
        Some(ViaProxy::Tunnel(c)) => c.open(),
        None => false,
    }
}

/// "the proxy 127.0.0.1:3128 (from https_proxy)".
pub(super) fn proxy_words(v: &ProxyRoute) -> String {
    format!(
        "the proxy {} (from {})",
        v.endpoint.display(),
        v.proxy.variable
    )
}

/// Who answered on `r`'s session: the address itself, or the destination through the proxy.
pub(super) fn peer(cx: &Ctx, r: &AddressResult, s: &SessionFacts) -> String {
    match (&cx.facts.via, passed_proxy(s)) {
        (Some(v), true) => format!("{}, through {},", cx.facts.target.display(), proxy_words(v)),
        _ => r.address.ip().to_string(),
    }
}

/// The port the session's answers came from: the destination's past a proxy.
pub(super) fn peer_port(cx: &Ctx, s: &SessionFacts) -> u16 {
    if cx.facts.via.is_some() && passed_proxy(s) {
        cx.facts.target.port.get()
    } else {
        cx.port()
    }
}

/// Where the server behind the session runs: the destination past a proxy.
pub(super) fn peer_machine(cx: &Ctx, r: &AddressResult, s: &SessionFacts) -> Machine {
    if cx.facts.via.is_some() && passed_proxy(s) {
        Machine::Server(cx.facts.target.host.to_string())
    } else {
        cx.server_of(r.address.ip())
    }
}

/// What a refusing proxy was asked and said, for the words of its finding.
struct Refusal<'a> {
    route: &'a ProxyRoute,
    /// "the proxy 127.0.0.1:3128 (from https_proxy)".
    who: String,
    /// The destination, as the application names it.
    dest: String,
    /// "`CONNECT api.example:443`", or the forwarded request.
    asked: String,
    /// Its status line, bounded ("407 Proxy Authentication Required").
    said: Option<String>,
    response: Option<&'a HttpResponse>,
    failure: Option<&'a HttpFailure>,
}

/// The proxy did not let the session through: credentials (407), policy (403), its own path
/// to the destination (502–504), or anything else.
pub(crate) fn proxy_refused(cx: &Ctx, kind: ProxyRefusal) -> Option<Finding> {
    let route = cx.facts.via.as_ref()?;
    let (r, s) = cx.session_where(|_, s| proxy_refusal(s) == Some(kind))?;
    let dest = cx.facts.target.display();
    let (asked, response, failure) = match &s.via {
        Some(ViaProxy::Tunnel(c)) => (
            format!("`CONNECT {}`", c.authority),
            c.response.as_ref(),
            c.failure.as_ref(),
        ),
        _ => (
            format!("the request for http://{dest}"),
            s.http.as_ref().and_then(|h| h.response.as_ref()),
            None,
        ),
    };
    let refusal = Refusal {
        route,
        who: proxy_words(route),
        dest,
        asked,
        said: response.map(|r| format!("{} {}", r.status, bounded(&r.reason, 80))),
        response,
        failure,
    };
    let (id, message, steps, why) = match kind {
        ProxyRefusal::AuthRequired => (
            FindingId::ProxyAuthRequired,
            auth_required_words(&refusal),
            vec![give_credentials(route)],
            "the proxy wants credentials (407)",
        ),
        ProxyRefusal::Forbidden => (
            FindingId::ProxyForbidden,
            forbidden_words(&refusal),
            forbidden_steps(cx, &refusal),
            "the proxy refuses this destination (403)",
        ),
        ProxyRefusal::UpstreamFailed => (
            FindingId::ProxyUpstreamFailed,
            upstream_words(&refusal),
            upstream_steps(cx, route),
            "the proxy cannot reach the destination",
        ),
        ProxyRefusal::ConnectFailed => (
            FindingId::ProxyConnectFailed,
            format!(
                "{} did not open the way to {}: it {}.",
                refusal.who,
                refusal.dest,
                what_it_did(&refusal)
            ),
            vec![check_variable(route), proxy_logs(route)],
            "the proxy does not open a tunnel",
        ),
    };
    Some(
        Finding::new(id, message)
            .about(r.address)
            .steps(steps)
            .proxy_refused((cx.verdict == Verdict::ServiceError).then_some(why))
            .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// `proxy_auth_required`: what it accepts, and whether the application has credentials to
/// send (canreach never sends any).
fn auth_required_words(r: &Refusal) -> String {
    let accepts = r
        .response
        .map(|r| {
            r.proxy_authenticate
                .iter()
                .map(|c| bounded(c, 80))
                .collect::<Vec<_>>()
        })
        .filter(|c| !c.is_empty())
        .map(|c| format!(" (it accepts: {})", c.join("; ")))
        .unwrap_or_default();
    let variable = &r.route.proxy.variable;
    let creds = if r.route.proxy.has_credentials {
        format!(
            " The proxy URL in {variable} carries credentials (masked here), which the \
             application may send: if it does and still fails, they are wrong; if it works, \
             only canreach was refused."
        )
    } else {
        format!(
            " The proxy URL in {variable} carries none, so the application is refused too \
             unless it has its own proxy settings."
        )
    };
    format!(
        "{} wants credentials: it answered {} with {}{accepts}. canreach never sends \
         credentials.{creds}",
        r.who,
        r.asked,
        r.said.as_deref().unwrap_or_default()
    )
}

fn give_credentials(route: &ProxyRoute) -> Step {
    Step::about(
        StepKind::CheckProxy,
        format!(
            "Give the application the proxy's credentials (in {} as \
             http://USER:PASSWORD@HOST:PORT, or in its own proxy settings), or ask the proxy's \
             administrators for access.",
            route.proxy.variable
        ),
        Machine::This,
    )
}

fn forbidden_words(r: &Refusal) -> String {
    format!(
        "{} refuses to open the way to {}: it answered {} with {}. Its policy does not allow \
         this destination for this client.",
        r.who,
        r.dest,
        r.asked,
        r.said.as_deref().unwrap_or_default()
    )
}

/// Ask the proxy's owners; or, when the direct path is open, go around it.
fn forbidden_steps(cx: &Ctx, r: &Refusal) -> Vec<Step> {
    let mut steps = vec![Step::about(
        StepKind::AskOwners,
        format!(
            "Ask the proxy's administrators to allow {} (many proxies allow CONNECT only to port \
             443, or only to listed domains).",
            r.dest
        ),
        proxy_host(r.route),
    )];
    if cx
        .direct
        .first()
        .is_some_and(|a| a.outcome == Outcome::Open)
    {
        steps.push(Step::about(
            StepKind::PointClient,
            format!(
                "Or, since the direct path is open, exempt the host from the proxy: add {} to \
                 no_proxy.",
                cx.facts.target.host
            ),
            Machine::This,
        ));
    }
    steps
}

fn upstream_words(r: &Refusal) -> String {
    format!(
        "{} could not reach {}: it answered {} with {}. The proxy works; its own way to the \
         destination failed (the name does not resolve there, the destination is down, or a \
         firewall beyond the proxy drops it).",
        r.who,
        r.dest,
        r.asked,
        r.said.as_deref().unwrap_or_default()
    )
}

fn upstream_steps(cx: &Ctx, route: &ProxyRoute) -> Vec<Step> {
    vec![
        proxy_logs(route),
        Step::run(
            StepKind::CheckProxy,
            "Check the destination from the proxy's machine",
            Command::CanreachPort {
                host: cx.facts.target.host.to_string(),
                port: cx.facts.target.port.get(),
            },
            proxy_host(route),
        ),
    ]
}

/// What a proxy that opened no tunnel did instead: its status, or how its answer failed.
fn what_it_did(r: &Refusal) -> String {
    let asked = &r.asked;
    match (&r.said, r.failure) {
        (Some(said), _) => format!("answered {asked} with {said}"),
        (None, None) => format!("did not answer {asked}"),
        (None, Some(f)) => match f {
            HttpFailure::NoReply => format!("sent nothing back to {asked}"),
            HttpFailure::Closed => format!("closed the connection after {asked}"),
            HttpFailure::Reset => format!("reset the connection after {asked}"),
            HttpFailure::ExpectsTls { .. } => format!(
                "answered {asked} with a TLS record: it is an HTTPS proxy (write https:// in {})",
                r.route.proxy.variable
            ),
            HttpFailure::NotHttp { first_bytes } => format!(
                "answered {asked} with `{}`, which is not HTTP: this port is not an HTTP proxy",
                first_line(first_bytes)
            ),
            HttpFailure::Truncated { .. } => {
                format!("sent part of an answer to {asked}, then stopped")
            }
            HttpFailure::TooLarge => "sent headers larger than 64 KiB".to_string(),
            HttpFailure::Io { errno } => format!("failed ({})", io_words(*errno)),
        },
    }
}

fn check_variable(route: &ProxyRoute) -> Step {
    Step::about(
        StepKind::CheckProxy,
        format!(
            "Check that {} names the right proxy (scheme, host and port).",
            route.proxy.variable
        ),
        Machine::This,
    )
}

/// The proxy's machine, as its URL names it.
fn proxy_host(route: &ProxyRoute) -> Machine {
    Machine::Server(route.endpoint.host.to_string())
}

fn proxy_logs(route: &ProxyRoute) -> Step {
    Step::about(
        StepKind::ReadLogs,
        "Read the proxy's access log for this request: it says which rule or upstream failed \
         (ask the proxy's administrators).",
        proxy_host(route),
    )
}

/// Through a proxy: what a plain connect to the destination got. Words only; the verdict is
/// the proxy path's.
pub(crate) fn direct_path(cx: &Ctx) -> Option<Finding> {
    let v = cx.facts.via.as_ref()?;
    let dest = cx.facts.target.display();
    let results = cx.direct;
    let what = if let Some(e) = &v.direct.lookup_error {
        format!(
            "{} does not resolve here ({}): only the proxy can reach it by name",
            cx.facts.target.host,
            super::dns::error_words(e)
        )
    } else if results.is_empty() {
        format!("the direct path to {dest} was not tried")
    } else {
        let each: Vec<String> = results
            .iter()
            .map(|a| {
                let word = match a.outcome {
                    Outcome::Filtered
                        if a.elapsed + std::time::Duration::from_millis(10)
                            < crate::liveness::FAIR_WAIT =>
                    {
                        "not answered yet".to_string()
                    }
                    o => o.as_str().to_string(),
                };
                format!("{} {word} ({})", a.address.ip(), a.describe())
            })
            .collect();
        let open = results.iter().any(|a| a.outcome == Outcome::Open);
        let meaning = if open {
            "the destination can be reached without the proxy too"
        } else if each.iter().any(|e| e.contains("not answered yet")) {
            "no proof either way in the time it was given"
        } else {
            "the direct path would not work either"
        };
        format!(
            "the direct path to {dest} is {} — {meaning}",
            each.join("; ")
        )
    };
    Some(Finding::new(
        FindingId::DirectPath,
        format!(
            "Without the proxy, {what}. This does not change the verdict: the application goes \
             through {}.",
            proxy_words(v)
        ),
    ))
}

/// An HTTP(S) client here would go through a proxy, or be exempted from one; whether this
/// check followed it.
pub(crate) fn proxy_applies(cx: &Ctx) -> Option<Finding> {
    let choice = cx.facts.proxy.as_ref()?;
    let dest = &cx.facts.target.host;
    let message = match choice {
        ProxyChoice::Proxy(p) => {
            let creds = if p.has_credentials {
                " The proxy URL carries credentials (masked here); canreach never sends them."
            } else {
                ""
            };
            let ignored = if p.ignored_no_proxy.is_empty() {
                String::new()
            } else {
                format!(
                    " no_proxy entries with a port ({}) do not exempt it for curl, though some \
                     other clients (Go programs) honour them.",
                    p.ignored_no_proxy.join(", ")
                )
            };
            let checked = match (&cx.facts.via, p.scheme.as_str()) {
                (Some(_), _) => {
                    // What went on past the proxy once connected, when anything did.
                    let session = cx
                        .facts
                        .addresses
                        .first()
                        .and_then(|a| a.facts.session.as_ref());
                    let how = match session.and_then(|s| s.via.as_ref()) {
                        Some(ViaProxy::Forward) => {
                            ", and the HTTP request went to it in absolute form"
                        }
                        Some(ViaProxy::Tunnel(c)) if c.open() => {
                            ", and the rest went through its CONNECT tunnel"
                        }
                        _ => "",
                    };
                    format!(
                        " So did this check: the name and the connection above are the \
                         proxy's, and so is what came back before the request went out{how}."
                    )
                }
                (None, "http") => " This check took the direct path (--no-proxy), as asked: if \
                     the application fails while this report is clean, check the proxy."
                    .to_string(),
                (None, scheme) => format!(
                    " canreach does not speak {scheme} proxies, so this check took the direct \
                     path: if the application fails while this report is clean, check the proxy."
                ),
            };
            format!(
                "{} is set ({}): an HTTP client on this machine (curl, most libraries) connects \
                 to the proxy {}:{}, not to {dest} directly.{checked}{creds}{ignored}",
                p.variable, p.masked, p.host, p.port,
            )
        }
        ProxyChoice::Exempt {
            variable, entry, ..
        } => format!(
            "A proxy is configured, but {variable} exempts {dest} (entry `{entry}`): clients \
             connect directly, as this check did."
        ),
        _ => return None,
    };
    let step = match choice {
        ProxyChoice::Proxy(p) if cx.facts.via.is_none() => Some(Step::run(
            StepKind::CheckProxy,
            "Check the proxy itself",
            Command::CanreachPort {
                host: p.host.clone(),
                port: p.port,
            },
            Machine::This,
        )),
        _ => None,
    };
    Some(Finding::new(FindingId::ProxyApplies, message).steps(step))
}
