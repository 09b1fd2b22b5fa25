//! The HTTP answer: statuses (4xx, 5xx, what `--expect-status` lists), redirects, a port that
//! does not speak HTTP, plain HTTP sent to a TLS port.

use super::advice::{Machine, Step, StepKind};
use super::context::Ctx;
use super::finding::{Finding, FindingId};
use super::judge::{expected, proxy_refusal};
use super::outcome::Verdict;
use super::program::{program_steps, read_logs, read_logs_on, who_owns};
use super::proxy::{peer, peer_machine, peer_port};
use super::tls::{not_tls_words, spoke_tls, tls_confirm_words};
use super::words::{bounded, first_line, io_words};
use crate::session::http::{HttpFailure, HttpResponse};
use crate::session::{SessionFacts, ViaProxy};

pub(crate) fn http_words(r: &HttpResponse) -> String {
    let by = match (&r.server, &r.via) {
        (Some(s), Some(v)) => format!(" (Server: {s}; Via: {v})"),
        (Some(s), None) => format!(" (Server: {s})"),
        (None, Some(v)) => format!(" (Via: {v})"),
        (None, None) => String::new(),
    };
    format!("HTTP {} {}{by}", r.status, r.reason)
}

/// `expects_tls`'s words for the summary.
const EXPECTS_TLS: &str = "it expects TLS, not plain HTTP";

/// Plain HTTP sent to a port that speaks TLS; confirmed (or not) by a TLS handshake on a
/// second connection.
pub(crate) fn expects_tls(cx: &Ctx) -> Option<Finding> {
    let (r, s) = cx.session_where(|_, s| {
        matches!(
            s.http.as_ref().and_then(|h| h.failure.as_ref()),
            Some(HttpFailure::ExpectsTls { .. })
        ) || hung_up_on_http_but_speaks_tls(s)
    })?;
    let port = peer_port(cx, s);
    let url = https_url(cx);
    if hung_up_on_http_but_speaks_tls(s) {
        let t = s.tls_confirm.as_ref()?;
        let hung = match s.http.as_ref().and_then(|h| h.failure.as_ref()) {
            Some(HttpFailure::Reset) => "reset the connection",
            _ => "closed the connection",
        };
        return Some(
            Finding::new(
                FindingId::ExpectsTls,
                format!(
                    "Port {port} speaks TLS: it {hung} without a word on a plain HTTP request, \
                     and a second connection {} ({}). Use {url}, or the client's TLS option.",
                    if t.ok() {
                        "completed a TLS handshake"
                    } else {
                        "got the server's TLS handshake back"
                    },
                    tls_confirm_words(t)
                ),
            )
            .about(r.address)
            .explains((cx.verdict == Verdict::ServiceError).then_some(EXPECTS_TLS))
            .steps([use_tls_step(cx)]),
        );
    }
    let use_tls = use_tls_step(cx);
    let (message, steps) = match &s.tls_confirm {
        Some(t) if spoke_tls(t) => (
            format!(
                "Port {port} speaks TLS: it answered a plain HTTP request with a TLS record. \
                 Confirmed: a second connection {} ({}). Use {url}, or the client's TLS option.",
                if t.ok() {
                    "completed a TLS handshake"
                } else {
                    "got the server's TLS handshake back"
                },
                tls_confirm_words(t)
            ),
            vec![use_tls],
        ),
        Some(t) => (
            format!(
                "Port {port} answered a plain HTTP request with bytes that look like a TLS \
                 record, but a TLS handshake on a second connection did not complete ({}): the \
                 reply only looked like TLS, and the program there speaks something else.",
                not_tls_words(t)
            ),
            vec![who_owns(cx, r), read_logs(cx, r)],
        ),
        None => (
            format!(
                "Port {port} speaks TLS: it answered a plain HTTP request with a TLS record \
                 (not confirmed by a handshake: no second connection was made). Use {url}, or \
                 the client's TLS option."
            ),
            vec![use_tls],
        ),
    };
    Some(
        Finding::new(FindingId::ExpectsTls, message)
            .about(r.address)
            .explains((cx.verdict == Verdict::ServiceError).then_some(EXPECTS_TLS))
            .steps(steps),
    )
}

/// The target as an https:// URL (its path kept).
fn https_url(cx: &Ctx) -> String {
    let path = cx
        .facts
        .target
        .url
        .as_ref()
        .map_or("/", |u| u.path.as_str());
    format!("https://{}{path}", cx.facts.target.display())
}

fn use_tls_step(cx: &Ctx) -> Step {
    Step::about(
        StepKind::PointClient,
        format!(
            "Use {} (TLS) for this port, or the port where plain HTTP is served.",
            https_url(cx)
        ),
        Machine::This,
    )
}

/// The server hung up on the plain HTTP request without a word, and answered a TLS handshake.
fn hung_up_on_http_but_speaks_tls(s: &SessionFacts) -> bool {
    matches!(
        s.http.as_ref().and_then(|h| h.failure.as_ref()),
        Some(HttpFailure::Closed | HttpFailure::Reset)
    ) && s.tls_confirm.as_ref().is_some_and(spoke_tls)
}

/// The port answered an HTTP request with something else, or hung up.
pub(crate) fn not_http(cx: &Ctx) -> Option<Finding> {
    let (r, s) = cx.session_where(|_, s| {
        !hung_up_on_http_but_speaks_tls(s)
            && matches!(
                s.http.as_ref().and_then(|h| h.failure.as_ref()),
                Some(
                    HttpFailure::NotHttp { .. }
                        | HttpFailure::Closed
                        | HttpFailure::Reset
                        | HttpFailure::Truncated { .. }
                        | HttpFailure::TooLarge
                        | HttpFailure::Io { .. }
                )
            )
    })?;
    let what = match s.http.as_ref().and_then(|h| h.failure.as_ref())? {
        HttpFailure::NotHttp { first_bytes } => format!(
            "answered with `{}`, which is not HTTP",
            first_line(first_bytes)
        ),
        HttpFailure::Closed => "closed the connection without an answer".into(),
        HttpFailure::Reset => "reset the connection instead of answering".into(),
        HttpFailure::Truncated { .. } => "sent part of an answer, then stopped".into(),
        HttpFailure::TooLarge => "sent headers larger than 64 KiB".into(),
        HttpFailure::Io { errno } => format!("failed ({})", io_words(*errno)),
        _ => return None,
    };
    let steps = program_steps(cx, r, s);
    Some(
        Finding::new(
            FindingId::NotHttp,
            format!(
                "{} port {} {what}: the program there does not serve HTTP to this client.",
                peer(cx, r, s),
                peer_port(cx, s)
            ),
        )
        .about(r.address)
        .explains((cx.verdict == Verdict::ServiceError).then_some("it does not speak HTTP"))
        .steps(steps),
    )
}

/// The status of an address's HTTP answer, when it is not one `--expect-status` (or the
/// default, 2xx and 3xx) accepts.
fn unexpected(cx: &Ctx, s: &SessionFacts) -> Option<u16> {
    s.http
        .as_ref()
        .and_then(|h| h.response.as_ref())
        .map(|r| r.status)
        .filter(|st| !expected(*st, cx.facts.expect_status))
}

/// HTTP 5xx: the server, or the proxy or load balancer in front of it, failed.
pub(crate) fn http_server_error(cx: &Ctx) -> Option<Finding> {
    let (r, s) = cx.session_where(|_, s| unexpected(cx, s).is_some_and(|st| st >= 500))?;
    let resp = s.http.as_ref()?.response.as_ref()?;
    let body = resp
        .body_start
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let proxy = resp.server.as_deref().or(resp.via.as_deref()).unwrap_or("");
    let lb = [
        "envoy",
        "nginx",
        "haproxy",
        "traefik",
        "awselb",
        "cloudflare",
        "varnish",
    ]
    .iter()
    .find(|p| proxy.to_ascii_lowercase().contains(*p));
    let meaning = if body.contains("no healthy upstream") {
        " \"no healthy upstream\" is Envoy's word for a backend that is down: the proxy works, \
         the application behind it does not."
            .to_string()
    } else if let (Some(lb), 502..=504) = (lb, resp.status) {
        format!(
            " {} answers {} when the backend behind it is down or too slow: the proxy works, the \
             application behind it does not.",
            lb, resp.status
        )
    } else if matches!(s.via, Some(ViaProxy::Forward)) && (502..=504).contains(&resp.status) {
        " Through a proxy, a 502–504 may be the proxy's own: it could not reach the destination."
            .to_string()
    } else {
        " The server (or a proxy in front of it) reports its own failure.".to_string()
    };
    Some(
        Finding::new(
            FindingId::HttpServerError,
            format!("{} answered {}.{meaning}", peer(cx, r, s), http_words(resp)),
        )
        .about(r.address)
        .explains(
            (cx.verdict == Verdict::ServiceError).then_some("it answers with an HTTP server error"),
        )
        .steps([read_logs_on(peer_machine(cx, r, s))])
        .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// HTTP 4xx: the service answers, and refuses what was asked. The application that asked
/// for this URL does not get it: a service error, worded by status.
pub(crate) fn http_client_error(cx: &Ctx) -> Option<Finding> {
    let (r, s) = cx.session_where(|_, s| {
        proxy_refusal(s).is_none() && unexpected(cx, s).is_some_and(|st| (400..500).contains(&st))
    })?;
    let resp = s.http.as_ref()?.response.as_ref()?;
    let path = target_path(cx);
    let challenges = |c: &[String]| {
        let c: Vec<String> = c.iter().take(4).map(|c| bounded(c, 80)).collect();
        if c.is_empty() {
            String::new()
        } else {
            format!(" (it accepts: {})", c.join("; "))
        }
    };
    let meaning = match resp.status {
        401 => format!(
            "it wants credentials{}. The service is up; canreach never sends credentials, so \
             an application that sends valid ones gets in, and one without them is refused",
            challenges(&resp.www_authenticate)
        ),
        407 => format!(
            "it is an HTTP proxy (or has one in front) that wants credentials{}. canreach \
             never sends them",
            challenges(&resp.proxy_authenticate)
        ),
        403 => "it refuses this client or this path: a rule on the server (an address \
                allow-list, a web application firewall) or missing permissions"
            .into(),
        404 | 410 => "there is nothing at that path: the service is up, but the path is \
                       wrong, or the application is not deployed there"
            .into(),
        429 => "it is limiting this client's rate (too many requests)".into(),
        _ => "it is up and answering, and refuses this request".into(),
    };
    let expect = match cx.facts.expect_status {
        Some(set) => format!(" (--expect-status asks for {set})"),
        None => format!(
            " If this answer is what the check should expect, say so: --expect-status {}.",
            resp.status
        ),
    };
    let step = match resp.status {
        401 | 407 => Step::say(
            StepKind::PointClient,
            "Give the application its credentials (the service works); to accept this answer \
             in a check, add --expect-status with its status.",
        ),
        _ => Step::say(
            StepKind::PointClient,
            "Check the URL's path and what the client sends (credentials, headers); the \
             network is fine.",
        ),
    };
    Some(
        Finding::new(
            FindingId::HttpClientError,
            format!(
                "{} answered {} for {path}: {meaning}.{expect}",
                peer(cx, r, s),
                http_words(resp)
            ),
        )
        .about(r.address)
        .explains(
            (cx.verdict == Verdict::ServiceError).then(|| match resp.status {
                401 => "it wants credentials (HTTP 401)".to_string(),
                407 => "it wants proxy credentials (HTTP 407)".to_string(),
                code @ (404 | 410) => format!("it has nothing at this path (HTTP {code})"),
                code => format!("it refuses the request (HTTP {code})"),
            }),
        )
        .steps([step])
        .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// The URL's path (`/` for a target without one).
fn target_path(cx: &Ctx) -> String {
    cx.facts
        .target
        .url
        .as_ref()
        .map_or("/".to_string(), |u| u.path.clone())
}

/// `--expect-status` lists other statuses than the one that came (a 1xx, 2xx or 3xx; 4xx
/// and 5xx have findings of their own).
pub(crate) fn http_unexpected_status(cx: &Ctx) -> Option<Finding> {
    let set = cx.facts.expect_status?;
    let (r, s) = cx.session_where(|_, s| {
        proxy_refusal(s).is_none() && unexpected(cx, s).is_some_and(|st| st < 400)
    })?;
    let resp = s.http.as_ref()?.response.as_ref()?;
    Some(
        Finding::new(
            FindingId::HttpUnexpectedStatus,
            format!(
                "{} answered {} for {}, and --expect-status asks for {set}: the service works, \
                 but does not answer as this check expects.",
                peer(cx, r, s),
                http_words(resp),
                target_path(cx)
            ),
        )
        .about(r.address)
        .explains(
            (cx.verdict == Verdict::ServiceError)
                .then_some("it answers with a status --expect-status does not list"),
        )
        .steps([Step::say(
            StepKind::PointClient,
            "Check the URL and the statuses the check expects.",
        )])
        .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// HTTP 3xx: the server works and sends the client elsewhere; where, with its secrets masked.
pub(crate) fn http_redirect(cx: &Ctx) -> Option<Finding> {
    let (r, s) = cx.session_where(|_, s| {
        s.http
            .as_ref()
            .and_then(|h| h.response.as_ref())
            .is_some_and(|r| (300..400).contains(&r.status))
    })?;
    let resp = s.http.as_ref()?.response.as_ref()?;
    let to = match &resp.location {
        Some(l) => format!("to {}", bounded(&redirect_target(cx, l), 200)),
        None => "but names no Location to go to".to_string(),
    };
    let next = if cx.facts.redirect_followed {
        "The probe follows it: what the next address answered is checked next."
    } else {
        "canreach does not follow redirects: a client that does goes there next, which this \
         check did not test."
    };
    Some(
        Finding::new(
            FindingId::HttpRedirect,
            format!(
                "{} answered {} for {}: it redirects {to}. {next}",
                peer(cx, r, s),
                http_words(resp),
                target_path(cx)
            ),
        )
        .about(r.address),
    )
}

/// Where a `Location` points, as an absolute URL (a relative one is resolved against the
/// target's), with its secrets masked (userinfo, token-like parameters).
fn redirect_target(cx: &Ctx, location: &str) -> String {
    let base = cx.facts.target.url.as_ref().and_then(|u| {
        url::Url::parse(&format!(
            "{}://{}{}",
            u.scheme,
            cx.facts.target.display(),
            u.path
        ))
        .ok()
    });
    let absolute = base
        .and_then(|b| b.join(location).ok())
        .map_or_else(|| location.to_string(), String::from);
    crate::target::mask_secrets(&absolute).into_owned()
}
