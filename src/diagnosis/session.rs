//! What happened after the connect: hang-ups, greetings, TLS, HTTP, path-MTU black holes and
//! proxies. Reads the session stage's facts (`crate::session`); ground truth is
//! `docs/ground-truth/beyond-connect.md`. One function per finding (the TLS failure kinds share one,
//! as the DNS failure kinds do: one kind, one id).

use std::time::{SystemTime, UNIX_EPOCH};

use super::advice::{Machine, Step, StepKind};
use super::commands::Command;
use super::finding::{Finding, FindingId, Severity};
use super::{
    AddressResult, Ctx, Evidence, Outcome, classify, errno_name, errno_text, fmt_duration,
};
use crate::escape::escape_bytes;
use crate::facts::ProxyRoute;
pub use crate::facts::utc;
use crate::local::servers::CONTAINER_PROXIES;
use crate::session::http::{HttpFailure, HttpResponse};
use crate::session::mss::MssFailure;
use crate::session::proxy::ProxyChoice;
use crate::session::stage::MssRetry;
use crate::session::status::StatusSet;
use crate::session::tls::{CertFacts, Incompatible, TlsAlert, TlsError, TlsFacts, TlsFailure};
use crate::session::watch::{BannerKind, First};

use super::tls_words::{self, Fixer};
use crate::session::{SessionFacts, ViaProxy};

/// What the session facts make of an address whose TCP handshake completed; `expect`: the
/// HTTP statuses that count as working (`--expect-status`; `None`: 2xx and 3xx).
pub fn outcome(s: &SessionFacts, expect: Option<StatusSet>) -> Outcome {
    // The program behind a port of this machine did not take the connection: clients hang
    // (`diagnosis::local::program_not_accepting`).
    if let Some(n) = &s.not_accepted {
        return if n.cut_short {
            Outcome::Inconclusive
        } else {
            Outcome::ServiceError
        };
    }
    match &s.first {
        First::Reset | First::Closed => return Outcome::ServiceError,
        First::Banner {
            kind: BannerKind::MySqlError { .. },
            ..
        } => return Outcome::ServiceError,
        First::Banner {
            kind: BannerKind::Coded { code, .. },
            ..
        } if *code >= 400 => return Outcome::ServiceError,
        _ => {}
    }
    // The proxy did not open the way: the application's connection fails there.
    if proxy_refusal_id(s).is_some() {
        return Outcome::ServiceError;
    }
    if let Some(f) = s.tls.as_ref().and_then(|t| t.failure.as_ref()) {
        return match f {
            TlsFailure::NoReply | TlsFailure::Stalled { .. } if black_hole(s).is_some() => {
                Outcome::MtuBlackhole
            }
            TlsFailure::NoReply
            | TlsFailure::Stalled { .. }
            | TlsFailure::Closed
            | TlsFailure::Reset => Outcome::ServiceError,
            _ => Outcome::TlsError,
        };
    }
    if let Some(h) = &s.http {
        match (&h.response, &h.failure) {
            // The application that asked for the URL did not get it (a 404, a 503), or got
            // something else than it expects (`--expect-status`).
            (Some(r), _) if !expected(r.status, expect) => return Outcome::ServiceError,
            (None, Some(_)) => return Outcome::ServiceError,
            _ => {}
        }
    }
    Outcome::Open
}

/// The clause a summary uses for the finding that explains a service or TLS error.
pub fn headline(id: FindingId) -> Option<&'static str> {
    use FindingId::*;
    Some(match id {
        ProgramNotAccepting => "it does not take the connection (no accept)",
        AcceptedThenReset => "it resets the connection as soon as it is accepted",
        AcceptedThenClosed => "it closes the connection as soon as it is accepted",
        ServiceRefuses => "it refuses this client",
        ProxyAuthRequired => "the proxy wants credentials (407)",
        ProxyForbidden => "the proxy refuses this destination (403)",
        ProxyUpstreamFailed => "the proxy cannot reach the destination",
        ProxyConnectFailed => "the proxy does not open a tunnel",
        NoReply => "it never replies",
        HttpServerError => "it answers with an HTTP server error",
        HttpClientError => "it refuses the request (HTTP 4xx)",
        HttpUnexpectedStatus => "it answers with a status --expect-status does not list",
        ExpectsTls => "it expects TLS, not plain HTTP",
        NotHttp => "it does not speak HTTP",
        TlsExpired => "the certificate has expired",
        TlsNotYetValid => "the certificate is not valid yet",
        TlsWrongName => "the certificate is for another name",
        TlsSelfSigned => "the certificate is self-signed",
        TlsUnknownIssuer => "the certificate's issuer is not trusted here",
        TlsMissingIntermediate => "the server does not send its intermediate certificate",
        TlsClientCertRequired => "the server wants a client certificate",
        TlsProtocolMismatch => "no TLS version or cipher in common",
        NotTls => "the port does not speak TLS",
        TlsFailed => "the handshake failed",
        _ => return None,
    })
}

/// Is `status` a working answer: in `--expect-status`, or else 2xx or 3xx?
fn expected(status: u16, expect: Option<StatusSet>) -> bool {
    expect.unwrap_or_default().contains(status)
}

/// The evidence of a path-MTU black hole, when all of it is there.
struct BlackHole<'a> {
    first: &'a TlsFacts,
    retry: &'a MssRetry,
    second: &'a TlsFacts,
}

/// A black hole is proven only by evidence that fits one (`docs/verdicts.md`):
/// - the first handshake got nothing, or stalled;
/// - a second connection advertising a smaller MSS received the server's certificate flight
///   (or its whole handshake): the large part of the answer came through in small segments;
/// - within the same wait: when it did, the first connection, opened earlier to the same
///   server, still had nothing — a slow server answers its first connection first;
/// - a path that can be narrower than the first connection's segments: not this machine
///   (loopback is one hop of 64 KiB), and the first connection allowed the server segments
///   larger than the second's.
fn black_hole(s: &SessionFacts) -> Option<BlackHole<'_>> {
    let first = s.tls.as_ref()?;
    if !matches!(
        first.failure,
        Some(TlsFailure::NoReply | TlsFailure::Stalled { .. })
    ) {
        return None;
    }
    let retry = s.mss_retry.as_ref()?;
    let second = retry.tls.as_ref()?;
    let came_through = second.version.is_some() || !second.chain.is_empty();
    let same_wait = first.elapsed >= retry.opened + second.elapsed;
    let narrower_possible =
        !s.address.ip().is_loopback() && first.given_up.is_none_or(|g| g.advmss > retry.mss);
    (came_through && same_wait && narrower_possible).then_some(BlackHole {
        first,
        retry,
        second,
    })
}

/// The first address (in client order) whose session shows `pred`, with its session.
fn first_where<'a>(
    cx: &'a Ctx,
    pred: impl Fn(&AddressResult, &SessionFacts) -> bool,
) -> Option<(&'a AddressResult, &'a SessionFacts)> {
    cx.addresses
        .iter()
        .zip(&cx.facts.addresses)
        .find_map(|(r, a)| a.session.as_ref().filter(|s| pred(r, s)).map(|s| (r, s)))
}

/// The first address's session went past the proxy (an open tunnel, or a forwarded
/// request): what came back after that is the destination's.
pub fn through_proxy(cx: &Ctx) -> bool {
    cx.facts.via.is_some()
        && cx
            .facts
            .addresses
            .first()
            .and_then(|a| a.session.as_ref())
            .is_some_and(passed_proxy)
}

/// Who to ask about the program behind the port: its owner and logs, or, through a proxy, the
/// logs of the destination the proxy reached.
fn program_steps(cx: &Ctx, r: &AddressResult, s: &SessionFacts) -> Vec<Step> {
    if passed_proxy(s) {
        vec![read_logs_on(peer_machine(cx, r, s))]
    } else {
        vec![who_owns(cx, r), read_logs(cx, r)]
    }
}

fn passed_proxy(s: &SessionFacts) -> bool {
    match &s.via {
        Some(ViaProxy::Forward) => proxy_refusal_id(s).is_none(),
        Some(ViaProxy::Tunnel(c)) => c.open(),
        None => false,
    }
}

/// "the proxy 127.0.0.1:3128 (from https_proxy)".
fn proxy_words(v: &ProxyRoute) -> String {
    format!(
        "the proxy {} (from {})",
        v.endpoint.display(),
        v.proxy.variable
    )
}

/// Who answered on `r`'s session: the address itself, or the destination through the proxy.
fn peer(cx: &Ctx, r: &AddressResult, s: &SessionFacts) -> String {
    match (&cx.facts.via, passed_proxy(s)) {
        (Some(v), true) => format!("{}, through {},", cx.facts.target.display(), proxy_words(v)),
        _ => r.address.ip().to_string(),
    }
}

/// The port the session's answers came from: the destination's past a proxy.
fn peer_port(cx: &Ctx, s: &SessionFacts) -> u16 {
    if cx.facts.via.is_some() && passed_proxy(s) {
        cx.facts.target.port.get()
    } else {
        cx.port()
    }
}

/// Where the server behind the session runs: the destination past a proxy.
fn peer_machine(cx: &Ctx, r: &AddressResult, s: &SessionFacts) -> Machine {
    if cx.facts.via.is_some() && passed_proxy(s) {
        Machine::Server(cx.facts.target.host.to_string())
    } else {
        cx.server_of(r.address.ip())
    }
}

/// The id for a proxy that did not let the session through.
fn proxy_refusal_id(s: &SessionFacts) -> Option<FindingId> {
    use FindingId::*;
    match &s.via {
        Some(ViaProxy::Tunnel(c)) => match &c.response {
            Some(r) if r.status / 100 == 2 => None,
            Some(r) => Some(match r.status {
                407 => ProxyAuthRequired,
                403 => ProxyForbidden,
                502..=504 => ProxyUpstreamFailed,
                _ => ProxyConnectFailed,
            }),
            None => Some(ProxyConnectFailed),
        },
        // A forwarded request answered 407 is the proxy's own answer: it names itself.
        Some(ViaProxy::Forward) => s
            .http
            .as_ref()
            .and_then(|h| h.response.as_ref())
            .filter(|r| r.status == 407)
            .map(|_| ProxyAuthRequired),
        None => None,
    }
}

/// At most `n` characters of outside text (escaped when rendered).
fn bounded(text: &str, n: usize) -> String {
    let mut out: String = text.chars().take(n).collect();
    if text.chars().count() > n {
        out.push('…');
    }
    out
}

/// The proxy did not let the session through: credentials (407), policy (403), its own path
/// to the destination (502–504), or anything else.
pub fn proxy_refusal(cx: &Ctx, id: FindingId) -> Option<Finding> {
    let v = cx.facts.via.as_ref()?;
    let (r, s) = first_where(cx, |_, s| proxy_refusal_id(s) == Some(id))?;
    let who = proxy_words(v);
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
    let said = response.map(|r| format!("{} {}", r.status, bounded(&r.reason, 80)));
    let proxy_host = Machine::Server(v.endpoint.host.to_string());
    let proxy_logs = Step::about(
        StepKind::ReadLogs,
        "Read the proxy's access log for this request: it says which rule or upstream failed \
         (ask the proxy's administrators).",
        proxy_host.clone(),
    );
    let direct_open = direct_results(v)
        .first()
        .is_some_and(|a| a.outcome == Outcome::Open);
    let (message, steps): (String, Vec<Step>) = match id {
        FindingId::ProxyAuthRequired => {
            let accepts = response
                .map(|r| {
                    r.proxy_authenticate
                        .iter()
                        .map(|c| bounded(c, 80))
                        .collect::<Vec<_>>()
                })
                .filter(|c| !c.is_empty())
                .map(|c| format!(" (it accepts: {})", c.join("; ")))
                .unwrap_or_default();
            let creds = if v.proxy.has_credentials {
                format!(
                    " The proxy URL in {} carries credentials (masked here), which the \
                     application may send: if it does and still fails, they are wrong; if it \
                     works, only canreach was refused.",
                    v.proxy.variable
                )
            } else {
                format!(
                    " The proxy URL in {} carries none, so the application is refused too \
                     unless it has its own proxy settings.",
                    v.proxy.variable
                )
            };
            (
                format!(
                    "{who} wants credentials: it answered {asked} with {}{accepts}. canreach \
                     never sends credentials.{creds}",
                    said.unwrap_or_default()
                ),
                vec![Step::about(
                    StepKind::CheckProxy,
                    format!(
                        "Give the application the proxy's credentials (in {} as \
                         http://USER:PASSWORD@HOST:PORT, or in its own proxy settings), or ask \
                         the proxy's administrators for access.",
                        v.proxy.variable
                    ),
                    Machine::This,
                )],
            )
        }
        FindingId::ProxyForbidden => {
            let mut steps = vec![Step::about(
                StepKind::AskOwners,
                format!(
                    "Ask the proxy's administrators to allow {dest} (many proxies allow \
                     CONNECT only to port 443, or only to listed domains)."
                ),
                proxy_host.clone(),
            )];
            if direct_open {
                steps.push(Step::about(
                    StepKind::PointClient,
                    format!(
                        "Or, since the direct path is open, exempt the host from the proxy: \
                         add {} to no_proxy.",
                        cx.facts.target.host
                    ),
                    Machine::This,
                ));
            }
            (
                format!(
                    "{who} refuses to open the way to {dest}: it answered {asked} with {}. Its \
                     policy does not allow this destination for this client.",
                    said.unwrap_or_default()
                ),
                steps,
            )
        }
        FindingId::ProxyUpstreamFailed => (
            format!(
                "{who} could not reach {dest}: it answered {asked} with {}. The proxy works; \
                 its own way to the destination failed (the name does not resolve there, the \
                 destination is down, or a firewall beyond the proxy drops it).",
                said.unwrap_or_default()
            ),
            vec![
                proxy_logs,
                Step::run(
                    StepKind::CheckProxy,
                    "Check the destination from the proxy's machine",
                    crate::diagnosis::commands::Command::CanreachPort {
                        host: cx.facts.target.host.to_string(),
                        port: cx.facts.target.port.get(),
                    },
                    proxy_host,
                ),
            ],
        ),
        _ => {
            let what = match (said, failure) {
                (Some(said), _) => format!("answered {asked} with {said}"),
                (None, Some(f)) => match f {
                    HttpFailure::NoReply => format!("sent nothing back to {asked}"),
                    HttpFailure::Closed => format!("closed the connection after {asked}"),
                    HttpFailure::Reset => format!("reset the connection after {asked}"),
                    HttpFailure::ExpectsTls { .. } => format!(
                        "answered {asked} with a TLS record: it is an HTTPS proxy (write \
                         https:// in {})",
                        v.proxy.variable
                    ),
                    HttpFailure::NotHttp { first_bytes } => format!(
                        "answered {asked} with `{}`, which is not HTTP: this port is not an \
                         HTTP proxy",
                        first_line(first_bytes)
                    ),
                    HttpFailure::Truncated { .. } => {
                        format!("sent part of an answer to {asked}, then stopped")
                    }
                    HttpFailure::TooLarge => "sent headers larger than 64 KiB".to_string(),
                    HttpFailure::Io { errno } => format!("failed ({})", io_words(*errno)),
                },
                (None, None) => format!("did not answer {asked}"),
            };
            (
                format!("{who} did not open the way to {dest}: it {what}."),
                vec![
                    Step::about(
                        StepKind::CheckProxy,
                        format!(
                            "Check that {} names the right proxy (scheme, host and port).",
                            v.proxy.variable
                        ),
                        Machine::This,
                    ),
                    proxy_logs,
                ],
            )
        }
    };
    Some(
        Finding::new(id, Severity::Error, message)
            .about(r.address)
            .steps(steps)
            .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// The direct path's probes, judged.
fn direct_results(v: &ProxyRoute) -> Vec<AddressResult> {
    v.direct.probes.iter().map(classify).collect()
}

/// Through a proxy: what a plain connect to the destination got. Words only; the verdict is
/// the proxy path's.
pub fn direct_path(cx: &Ctx) -> Option<Finding> {
    let v = cx.facts.via.as_ref()?;
    let dest = cx.facts.target.display();
    let results = direct_results(v);
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
                    o => o.word().to_string(),
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
        Severity::Info,
        format!(
            "Without the proxy, {what}. This does not change the verdict: the application goes \
             through {}.",
            proxy_words(v)
        ),
    ))
}

/// Who accepted for the port on this machine, when the local stage saw a proxy own it.
fn accepted_by(cx: &Ctx) -> String {
    let proxy = cx.facts.local.as_ref().and_then(|l| {
        l.listeners
            .iter()
            .filter_map(|x| x.process.as_ref())
            .find(|p| CONTAINER_PROXIES.contains(&p.name.as_str()))
    });
    match proxy {
        Some(p) => format!(
            " Here it is {} (pid {}), a container runtime's proxy, that accepted: the container \
             behind it is not serving.",
            p.name, p.pid
        ),
        None => String::new(),
    }
}

fn who_owns(cx: &Ctx, r: &AddressResult) -> Step {
    Step::run(
        StepKind::CheckListening,
        "See which program owns the port (a proxy or load balancer accepts for a backend)",
        Command::SsListening { port: cx.port() },
        cx.server_of(r.address.ip()),
    )
}

fn read_logs(cx: &Ctx, r: &AddressResult) -> Step {
    read_logs_on(cx.server_of(r.address.ip()))
}

fn read_logs_on(on: Machine) -> Step {
    Step::about(
        StepKind::ReadLogs,
        "Read the logs of the program behind the port (and of its backend, when it is a \
         proxy): they say why it drops connections.",
        on,
    )
}

/// The kernel accepted; the program reset the connection at once.
pub fn accepted_then_reset(cx: &Ctx) -> Option<Finding> {
    let (r, _) = cx
        .addresses
        .iter()
        .find(|r| r.evidence == Evidence::AcceptedThenReset)
        .map(|r| (r, None))
        .or_else(|| first_where(cx, |_, s| s.first == First::Reset).map(|(r, s)| (r, Some(s))))?;
    Some(
        Finding::new(
            FindingId::AcceptedThenReset,
            Severity::Error,
            format!(
                "{} accepted the connection on port {}, then reset it at once: the kernel \
                 completed the handshake, but the program behind the port (or a proxy in front \
                 of it — docker-proxy, kube-proxy, a load balancer — whose backend is down) \
                 dropped it. A network problem would not look like this.{}",
                r.address.ip(),
                cx.port(),
                accepted_by(cx)
            ),
        )
        .about(r.address)
        .steps([who_owns(cx, r), read_logs(cx, r)])
        .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// The kernel accepted; the program closed without a word.
pub fn accepted_then_closed(cx: &Ctx) -> Option<Finding> {
    let (r, s) = first_where(cx, |_, s| s.first == First::Closed)?;
    Some(
        Finding::new(
            FindingId::AcceptedThenClosed,
            Severity::Error,
            format!(
                "{} accepted the connection on port {}, then closed it within {} without a \
                 word: the program behind the port (or a proxy whose backend is down) hangs up \
                 on every client. `nc -z` would call this port open.{}",
                r.address.ip(),
                cx.port(),
                fmt_duration(s.window),
                accepted_by(cx)
            ),
        )
        .about(r.address)
        .steps([who_owns(cx, r), read_logs(cx, r)])
        .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// A greeting that is a refusal: a MySQL error packet, an SMTP 421/554.
pub fn service_refuses(cx: &Ctx) -> Option<Finding> {
    let (r, s) = first_where(cx, |_, s| {
        matches!(
            &s.first,
            First::Banner {
                kind: BannerKind::MySqlError { .. },
                ..
            }
        ) || matches!(&s.first, First::Banner { kind: BannerKind::Coded { code, .. }, .. } if *code >= 400)
    })?;
    let First::Banner { kind, .. } = &s.first else {
        return None;
    };
    let (what, step) = match kind {
        BannerKind::MySqlError { code, message } if *code == 1130 => (
            format!("MySQL/MariaDB refuses this client (error {code}: \"{message}\")"),
            Step::about(
                StepKind::AllowPort,
                "On the database, allow this client's address: create the user for it (`CREATE \
                 USER 'app'@'ADDRESS' …` and `GRANT …`), or use an account whose host pattern \
                 matches this machine.",
                cx.server_of(r.address.ip()),
            ),
        ),
        BannerKind::MySqlError { code, message } => (
            format!(
                "MySQL/MariaDB answered with error {code} instead of a greeting (\"{message}\")"
            ),
            read_logs(cx, r),
        ),
        BannerKind::Coded { code, text } => (
            format!("the server greets with a refusal: {code} {text}"),
            read_logs(cx, r),
        ),
        _ => return None,
    };
    Some(
        Finding::new(
            FindingId::ServiceRefuses,
            Severity::Error,
            format!(
                "{}: {what}. The network is fine; the service turns this client away.",
                r.address.ip()
            ),
        )
        .about(r.address)
        .steps([step])
        .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// Nothing came back after the client spoke (TLS ClientHello or HTTP request), or the TLS
/// answer stopped halfway; and a smaller MSS did not help.
pub fn no_reply(cx: &Ctx) -> Option<Finding> {
    let (r, s) = first_where(cx, |r, s| {
        // A connection this machine's program never took: `program_not_accepting` says why.
        r.outcome == Outcome::ServiceError
            && s.not_accepted.is_none()
            && (matches!(
                s.tls.as_ref().and_then(|t| t.failure.as_ref()),
                Some(TlsFailure::NoReply | TlsFailure::Stalled { .. })
            ) || matches!(
                s.http.as_ref().and_then(|h| h.failure.as_ref()),
                Some(HttpFailure::NoReply)
            ))
    })?;
    let (who, port) = (peer(cx, r, s), peer_port(cx, s));
    let tls = s.tls.as_ref().filter(|t| {
        matches!(
            t.failure,
            Some(TlsFailure::NoReply | TlsFailure::Stalled { .. })
        )
    });
    let message = match tls.map(|t| (t, t.failure.as_ref())) {
        Some((t, Some(TlsFailure::Stalled { received }))) => format!(
            "{who} accepted the connection and began its answer to the TLS ClientHello \
             ({received} bytes{}), then stopped: nothing more came in {}. The program behind \
             port {port} (or a TLS terminator in front of it) hangs in the middle of its \
             handshake.{}",
            t.first_answer
                .map(|a| format!(", after {}", fmt_duration(a)))
                .unwrap_or_default(),
            fmt_duration(t.elapsed),
            retry_words(s)
        ),
        Some((t, _)) => format!(
            "{who} accepted the connection, but nothing came back after its TLS ClientHello in \
             {}: the program behind port {port} is hung or overloaded, or speaks another \
             protocol and waits for it.{}",
            fmt_duration(t.elapsed),
            retry_words(s)
        ),
        None => format!(
            "{who} accepted the connection, but nothing came back after its HTTP request \
             (HEAD, then GET on a new connection): the program behind port {port} is hung or \
             overloaded, or speaks another protocol and waits for it."
        ),
    };
    let steps = program_steps(cx, r, s);
    Some(
        Finding::new(FindingId::NoReply, Severity::Error, message)
            .about(r.address)
            .steps(steps)
            .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// What the reduced-MSS retry showed, when it was made and the path is not to blame.
fn retry_words(s: &SessionFacts) -> String {
    let Some(retry) = &s.mss_retry else {
        return String::new();
    };
    let fared = match (&retry.connect_error, &retry.tls) {
        (Some(e), _) => format!("could not be made ({})", mss_failure_words(*e)),
        (None, Some(t)) if t.version.is_some() || !t.chain.is_empty() => {
            return format!(
                " A second connection with smaller segments was answered in {}, while this \
                 one was not: the server answers some connections and not others.",
                fmt_duration(t.elapsed)
            );
        }
        (None, Some(t)) => match &t.failure {
            Some(TlsFailure::Stalled { .. }) => "stopped the same way".to_string(),
            Some(TlsFailure::NoReply) => "got nothing either".to_string(),
            Some(TlsFailure::Closed) => "was closed by the server".to_string(),
            Some(TlsFailure::Reset) => "was reset by the server".to_string(),
            _ => "failed too".to_string(),
        },
        (None, None) => "was not completed".to_string(),
    };
    format!(
        " A second connection with smaller segments (the test for a path-MTU black hole), \
         opened after {}, {fared}.",
        fmt_duration(retry.opened)
    )
}

/// The handshake stalled or got nothing, and a smaller MSS, beside it, got the server's
/// certificates through (see [`black_hole`] for what that takes).
pub fn mtu_blackhole(cx: &Ctx) -> Option<Finding> {
    let (r, s) = first_where(cx, |r, _| r.outcome == Outcome::MtuBlackhole)?;
    let BlackHole {
        first,
        retry,
        second,
    } = black_hole(s)?;
    let got = match &first.failure {
        Some(TlsFailure::Stalled { received }) => {
            format!("{received} bytes of the server's handshake arrived, then nothing")
        }
        _ => "nothing of the server's handshake arrived".to_string(),
    };
    let done = if second.version.is_some() {
        "completed the handshake"
    } else {
        "received the server's certificates"
    };
    let tail = match first.given_up.and_then(|g| g.out_of_order) {
        Some(n) if n > 0 => format!(
            " The first connection did receive {n} later segment(s) of the answer past a gap \
             that never filled: its short end passed, the full-sized segments before it did \
             not."
        ),
        _ => String::new(),
    };
    Some(
        Finding::new(
            FindingId::MtuBlackhole,
            Severity::Error,
            format!(
                "Large packets from {} vanish on the way: the connection opened and the \
                 ClientHello went out, but {got} in {}. A second connection asking for \
                 segments of at most {} bytes (TCP MSS), opened after {}, {done} in {} while \
                 the first still had nothing.{tail} Somewhere on the path a link has a \
                 smaller MTU, and the ICMP \"fragmentation needed\" (IPv6: \"packet too \
                 big\") that should report it is dropped.",
                r.address.ip(),
                fmt_duration(first.elapsed),
                retry.mss,
                fmt_duration(retry.opened),
                fmt_duration(second.elapsed),
            ),
        )
        .about(r.address)
        .steps([
            Step::say(
                StepKind::AskOwners,
                "Send this report to the network team: clamp the TCP MSS on the router or VPN \
                 in front of the narrow link (nftables `tcp flags syn tcp option maxseg size \
                 set rt mtu`), or raise that link's MTU, and let ICMP \"fragmentation needed\" / \
                 \"packet too big\" through every firewall on the path.",
            ),
            Step::run(
                StepKind::CheckRoute,
                "See the MTU this machine uses towards the server",
                Command::IpRouteGet(r.address.ip()),
                Machine::This,
            ),
        ])
        .rules_out(&[StepKind::CheckListening, StepKind::FindDropRule]),
    )
}

/// The first line of what a peer sent, at most 80 bytes, escaped.
fn first_line(bytes: &[u8]) -> String {
    let line = bytes
        .split(|b| *b == b'\n')
        .find(|l| !l.iter().all(u8::is_ascii_whitespace))
        .unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    escape_bytes(&line[..line.len().min(80)])
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn names(c: &CertFacts) -> String {
    let mut n: Vec<String> = c.dns_names.clone();
    n.extend(c.ip_addresses.iter().map(|i| i.to_string()));
    if n.is_empty() {
        format!("no names (subject {})", c.subject)
    } else {
        n.join(", ")
    }
}

/// The id for a TLS failure.
fn tls_id(f: &TlsFailure) -> Option<FindingId> {
    use FindingId::*;
    Some(match f {
        TlsFailure::Expired { .. } => TlsExpired,
        TlsFailure::NotYetValid { .. } => TlsNotYetValid,
        TlsFailure::WrongName { .. } => TlsWrongName,
        TlsFailure::SelfSigned => TlsSelfSigned,
        TlsFailure::UnknownIssuer { .. } => TlsUnknownIssuer,
        TlsFailure::MissingIntermediate { .. } => TlsMissingIntermediate,
        TlsFailure::ClientCertRequired { .. } => TlsClientCertRequired,
        TlsFailure::ProtocolMismatch { .. } => TlsProtocolMismatch,
        TlsFailure::NotTls { .. } => NotTls,
        TlsFailure::Alert { .. } | TlsFailure::Other(_) => TlsFailed,
        // Silence, a stall, a hang-up: the service's failure (`no_reply`, `mtu_blackhole`).
        TlsFailure::NoReply
        | TlsFailure::Stalled { .. }
        | TlsFailure::Closed
        | TlsFailure::Reset => {
            return None;
        }
    })
}

/// The TLS failure of kind `id`.
pub fn tls_failure(cx: &Ctx, id: FindingId) -> Option<Finding> {
    let (r, s) = first_where(cx, |_, s| {
        s.tls
            .as_ref()
            .and_then(|t| t.failure.as_ref())
            .and_then(tls_id)
            == Some(id)
    })?;
    let t: &TlsFacts = s.tls.as_ref()?;
    let f = t.failure.as_ref()?;
    // The certificate is the destination's (through a tunnel too): its name is the target's.
    let host = cx.facts.target.host.to_string();
    let leaf = t.chain.first();
    let on = peer_machine(cx, r, s);
    let renew = |what: &str| {
        Step::about(
            StepKind::FixCertificate,
            format!("{what} — on the server, where its TLS certificate is configured."),
            on.clone(),
        )
    };
    let (message, steps) = match f {
        TlsFailure::Expired { not_after, subject } => {
            let now = now_unix();
            let clock = if now < *not_after {
                format!(
                    " This machine's clock says {}, before that date: if the clock is wrong, fix \
                     it (`timedatectl`).",
                    utc(now)
                )
            } else {
                String::new()
            };
            (
                format!(
                    "The certificate {subject} expired on {}.{clock}",
                    utc(*not_after)
                ),
                vec![renew("Renew the certificate and reload the server")],
            )
        }
        TlsFailure::NotYetValid {
            not_before,
            subject,
        } => (
            format!(
                "The certificate {subject} is valid only from {}; this machine's clock says {}. \
                 Either this machine's clock is behind (check `timedatectl`), or the certificate \
                 was issued for the future.",
                utc(*not_before),
                utc(now_unix())
            ),
            vec![Step::run(
                StepKind::CheckLocalSettings,
                "Check this machine's clock and its time synchronisation",
                Command::Timedatectl,
                Machine::This,
            )],
        ),
        TlsFailure::WrongName { presented } => (
            format!(
                "The certificate is not valid for {host}: it names {}. Either the client uses \
                 another name than the one the certificate was made for, or the server sends the \
                 wrong certificate (a default virtual host, a missing SNI configuration).",
                if presented.is_empty() {
                    leaf.map(names).unwrap_or_else(|| "nothing".into())
                } else {
                    presented.join(", ")
                }
            ),
            vec![
                Step::about(
                    StepKind::PointClient,
                    "Connect with one of the names the certificate is valid for.",
                    Machine::This,
                ),
                renew(&format!(
                    "Or issue a certificate that includes {host}, and make the server send it for \
                     this name (SNI)"
                )),
            ],
        ),
        TlsFailure::SelfSigned => (
            format!(
                "The server presents a self-signed certificate ({}): no client trusts it unless \
                 told to.",
                leaf.map(|c| c.subject.clone()).unwrap_or_default()
            ),
            vec![renew(
                "Use a certificate from a CA the clients trust, or install this one in the \
                 clients' trust stores on purpose",
            )],
        ),
        TlsFailure::UnknownIssuer {
            issuer,
            public_ca_elsewhere,
        } => {
            if *public_ca_elsewhere {
                (
                    format!(
                        "The certificate is issued by {issuer}, a public CA, but this machine's \
                         trust store does not contain it ({} anchors): the store is out of date, \
                         or a proxy intercepts TLS and SSL_CERT_FILE / SSL_CERT_DIR point \
                         elsewhere.",
                        t.trust_anchors
                    ),
                    vec![Step::run(
                        StepKind::CheckLocalSettings,
                        "Update this machine's CA certificates",
                        Command::UpdateCaCertificates,
                        Machine::This,
                    )],
                )
            } else {
                (
                    format!(
                        "The certificate is issued by {issuer}, which this machine does not \
                         trust: a private CA (install its root certificate on this machine if it \
                         is your organisation's) or an intercepting proxy."
                    ),
                    vec![trust_ca()],
                )
            }
        }
        TlsFailure::MissingIntermediate { issuer } => (
            format!(
                "The server sends its certificate without the intermediate certificate that \
                 links it to a trusted root: the leaf is issued by {issuer}, which it did not \
                 send and this machine does not know. Browsers often paper over a missing \
                 intermediate; other clients fail. (If {issuer} is a private CA that issued the \
                 leaf directly, this machine lacks its root certificate instead.)"
            ),
            vec![renew(
                "Configure the server with the full chain (the leaf followed by its \
                 intermediates, e.g. fullchain.pem)",
            )],
        ),
        TlsFailure::ClientCertRequired { issuers } => (
            format!(
                "The server requires a client certificate{}: this client has none configured.",
                if issuers.is_empty() {
                    String::new()
                } else {
                    format!(" issued by {}", issuers.join("; "))
                }
            ),
            vec![Step::about(
                StepKind::CheckLocalSettings,
                "Configure the client with a certificate and key from one of those issuers, or \
                 ask the server's owner for one.",
                Machine::This,
            )],
        ),
        TlsFailure::ProtocolMismatch {
            alert,
            incompatible,
        } => (
            mismatch_words(*alert, *incompatible),
            vec![renew("Enable TLS 1.2 or 1.3 with current cipher suites")],
        ),
        TlsFailure::NotTls { first_bytes } => (
            format!(
                "Port {} does not speak TLS: it answered the TLS ClientHello with `{}`. The \
                 client should speak that protocol (plain HTTP?), or the TLS service is on \
                 another port.",
                peer_port(cx, s),
                first_line(first_bytes)
            ),
            vec![Step::about(
                StepKind::PointClient,
                "Use the plain protocol on this port (e.g. http:// instead of https://), or the \
                 port where the TLS service listens.",
                Machine::This,
            )],
        ),
        TlsFailure::Alert { alert } => tls_error_finding(cx, r, TlsError::Alert(*alert)),
        TlsFailure::Other(e) => tls_error_finding(cx, r, *e),
        _ => return None,
    };
    // A certificate's failure: the command that shows the chain as the server sends it (and,
    // self-signed, how to trust it here on purpose).
    let mut steps = steps;
    if matches!(
        f,
        TlsFailure::Expired { .. }
            | TlsFailure::NotYetValid { .. }
            | TlsFailure::WrongName { .. }
            | TlsFailure::SelfSigned
            | TlsFailure::UnknownIssuer { .. }
            | TlsFailure::MissingIntermediate { .. }
    ) {
        steps.insert(0, show_chain(cx, s));
    }
    if matches!(f, TlsFailure::SelfSigned) {
        steps.push(trust_ca());
    }
    Some(
        Finding::new(id, Severity::Error, message)
            .about(r.address)
            .steps(steps)
            .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// `openssl s_client … -showcerts`: the chain the server sends, from this machine (through
/// the application's proxy, when the check went through one).
fn show_chain(cx: &Ctx, s: &SessionFacts) -> Step {
    let target = &cx.facts.target;
    let proxy = cx
        .facts
        .via
        .as_ref()
        .filter(|_| passed_proxy(s))
        .map(|v| v.endpoint.display());
    Step::run(
        StepKind::ShowCertificates,
        "See the certificates the server sends (the chain, leaf first)",
        Command::TlsChain {
            host: target.host.to_string(),
            port: peer_port(cx, s),
            server_name: match &target.host {
                crate::target::Host::Name(n) => Some(n.clone()),
                crate::target::Host::Ip(_) => None,
            },
            proxy,
        },
        Machine::This,
    )
}

/// Trust a CA here: Debian's and Ubuntu's store, or one client's option.
fn trust_ca() -> Step {
    Step::run(
        StepKind::TrustCa,
        "If you trust this CA (your organisation's, or a test server's own certificate), save \
         its certificate as CA.crt (PEM) and add it to this machine's trust store (Debian, \
         Ubuntu); for one client only, give it the file instead (curl --cacert CA.crt)",
        Command::TrustCa { file: "CA.crt" },
        Machine::This,
    )
}

/// `tls_protocol_mismatch`'s words: the server's alert (by its standard name) or what this
/// client found missing.
fn mismatch_words(alert: Option<TlsAlert>, incompatible: Option<Incompatible>) -> String {
    let what = match (alert, incompatible) {
        (Some(a), _) => {
            let (w, _, _) = tls_words::alert_words(a);
            format!("The server ended the handshake: {w}")
        }
        (None, Some(i)) => format!(
            "The server and this client share {}",
            tls_words::incompatible_words(i)
        ),
        (None, None) => "The server and this client share no TLS version or cipher suite".into(),
    };
    format!(
        "{what}. This client speaks TLS 1.2 and 1.3 with current cipher suites; a server that \
         speaks only TLS 1.0/1.1 or old ciphers is out of date."
    )
}

/// `tls_failed`'s words and steps, from the one table (`tls_words`): what happened, and a step
/// for whoever can fix it.
fn tls_error_finding(cx: &Ctx, r: &AddressResult, e: TlsError) -> (String, Vec<Step>) {
    let (words, fixer, fix) = tls_words::error_words(e);
    let mut first = words.chars();
    let words: String = first
        .next()
        .map(|c| c.to_uppercase().chain(first).collect())
        .unwrap_or_default();
    let server = cx.server_of(r.address.ip());
    let steps = match fixer {
        Fixer::Server => vec![Step::about(StepKind::ReadLogs, fix, server)],
        Fixer::Client => vec![Step::about(
            StepKind::CheckLocalSettings,
            fix,
            Machine::This,
        )],
        Fixer::Either => vec![Step::about(StepKind::ReadLogs, fix, server)],
    };
    let who = match fixer {
        Fixer::Server => " The server's side must change.",
        Fixer::Client => " This client's side must change.",
        Fixer::Either => "",
    };
    (format!("{words}.{who}"), steps)
}

fn http_words(r: &HttpResponse) -> String {
    let by = match (&r.server, &r.via) {
        (Some(s), Some(v)) => format!(" (Server: {s}; Via: {v})"),
        (Some(s), None) => format!(" (Server: {s})"),
        (None, Some(v)) => format!(" (Via: {v})"),
        (None, None) => String::new(),
    };
    format!("HTTP {} {}{by}", r.status, r.reason)
}

/// Plain HTTP sent to a port that speaks TLS; confirmed (or not) by a TLS handshake on a
/// second connection.
pub fn expects_tls(cx: &Ctx) -> Option<Finding> {
    let (r, s) = first_where(cx, |_, s| {
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
                Severity::Error,
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
        Finding::new(FindingId::ExpectsTls, Severity::Error, message)
            .about(r.address)
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

/// The server answered a TLS handshake as a TLS server does: it completed, or the server
/// sent its certificate, an alert, or a refusal in TLS.
fn spoke_tls(t: &TlsFacts) -> bool {
    t.failure.is_none()
        || !t.chain.is_empty()
        || matches!(
            t.failure,
            Some(
                TlsFailure::Alert { .. }
                    | TlsFailure::ProtocolMismatch { .. }
                    | TlsFailure::ClientCertRequired { .. }
            )
        )
}

/// "TLS 1.3, certificate for localhost, 127.0.0.1, not trusted here".
fn tls_confirm_words(t: &TlsFacts) -> String {
    let mut parts = vec![];
    if let Some(v) = version_words(t) {
        parts.push(v);
    }
    if let Some(leaf) = t.chain.first() {
        parts.push(format!("certificate for {}", names(leaf)));
    }
    if let Some(h) = t.failure.as_ref().and_then(tls_id).and_then(headline) {
        parts.push(format!("not accepted here: {h}"));
    }
    if parts.is_empty() {
        parts.push("a TLS answer".into());
    }
    parts.join(", ")
}

/// Why a handshake shows no TLS server.
fn not_tls_words(t: &TlsFacts) -> String {
    match &t.failure {
        Some(TlsFailure::NotTls { first_bytes }) => {
            format!("the port answered `{}`", first_line(first_bytes))
        }
        Some(TlsFailure::NoReply) => "nothing came back".into(),
        Some(TlsFailure::Stalled { .. }) => "the answer stopped halfway".into(),
        Some(TlsFailure::Closed) => "the port closed the connection".into(),
        Some(TlsFailure::Reset) => "the port reset the connection".into(),
        Some(TlsFailure::Other(e)) => tls_words::error_words(*e).0,
        _ => "no TLS answer".into(),
    }
}

fn version_words(t: &TlsFacts) -> Option<String> {
    use crate::session::tls::TlsVersion;
    Some(match t.version? {
        TlsVersion::Tls12 => "TLS 1.2".to_string(),
        TlsVersion::Tls13 => "TLS 1.3".to_string(),
        TlsVersion::Other(v) => format!("TLS 0x{v:04x}"),
    })
}

/// The port answered an HTTP request with something else, or hung up.
pub fn not_http(cx: &Ctx) -> Option<Finding> {
    let (r, s) = first_where(cx, |_, s| {
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
            Severity::Error,
            format!(
                "{} port {} {what}: the program there does not serve HTTP to this client.",
                peer(cx, r, s),
                peer_port(cx, s)
            ),
        )
        .about(r.address)
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
pub fn http_server_error(cx: &Ctx) -> Option<Finding> {
    let (r, s) = first_where(cx, |_, s| unexpected(cx, s).is_some_and(|st| st >= 500))?;
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
            Severity::Error,
            format!("{} answered {}.{meaning}", peer(cx, r, s), http_words(resp)),
        )
        .about(r.address)
        .steps([read_logs_on(peer_machine(cx, r, s))])
        .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// HTTP 4xx: the service answers, and refuses what was asked. The application that asked
/// for this URL does not get it: a service error, worded by status.
pub fn http_client_error(cx: &Ctx) -> Option<Finding> {
    let (r, s) = first_where(cx, |_, s| {
        proxy_refusal_id(s).is_none()
            && unexpected(cx, s).is_some_and(|st| (400..500).contains(&st))
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
            Severity::Error,
            format!(
                "{} answered {} for {path}: {meaning}.{expect}",
                peer(cx, r, s),
                http_words(resp)
            ),
        )
        .about(r.address)
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
pub fn http_unexpected_status(cx: &Ctx) -> Option<Finding> {
    let set = cx.facts.expect_status?;
    let (r, s) = first_where(cx, |_, s| {
        proxy_refusal_id(s).is_none() && unexpected(cx, s).is_some_and(|st| st < 400)
    })?;
    let resp = s.http.as_ref()?.response.as_ref()?;
    Some(
        Finding::new(
            FindingId::HttpUnexpectedStatus,
            Severity::Error,
            format!(
                "{} answered {} for {}, and --expect-status asks for {set}: the service works, \
                 but does not answer as this check expects.",
                peer(cx, r, s),
                http_words(resp),
                target_path(cx)
            ),
        )
        .about(r.address)
        .steps([Step::say(
            StepKind::PointClient,
            "Check the URL and the statuses the check expects.",
        )])
        .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// HTTP 3xx: the server works and sends the client elsewhere; where, with its secrets masked.
pub fn http_redirect(cx: &Ctx) -> Option<Finding> {
    let (r, s) = first_where(cx, |_, s| {
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
    Some(
        Finding::new(
            FindingId::HttpRedirect,
            Severity::Info,
            format!(
                "{} answered {} for {}: it redirects {to}. canreach does not follow redirects: \
                 a client that does goes there next, which this check did not test.",
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

/// The server answered the TLS handshake, but only after the wait that a black hole test
/// allows (1 s): slow, not unreachable.
pub fn slow_handshake(cx: &Ctx) -> Option<Finding> {
    let (r, s) = first_where(cx, |r, s| s.tls.as_ref().is_some_and(|t| slow(t, r)))?;
    let t = s.tls.as_ref()?;
    let answered = t.first_answer.unwrap_or(t.elapsed);
    let finished = if t.elapsed > answered + std::time::Duration::from_millis(100) {
        format!(
            " and finished the handshake after {}",
            fmt_duration(t.elapsed)
        )
    } else {
        String::new()
    };
    let connect = if passed_proxy(s) {
        String::new()
    } else {
        format!(
            ", while the connection itself took {}",
            fmt_duration(r.elapsed)
        )
    };
    Some(
        Finding::new(
            FindingId::SlowHandshake,
            Severity::Warning,
            format!(
                "{} answered the TLS ClientHello only after {}{finished}{connect}: the program \
                 behind port {} (or a TLS terminator in front of it) is slow or busy; the \
                 network carried the connection. canreach waited for it; a client whose TLS \
                 timeout is shorter fails.",
                peer(cx, r, s),
                fmt_duration(answered),
                peer_port(cx, s)
            ),
        )
        .about(r.address)
        .steps([Step::about(
            StepKind::ReadLogs,
            "See why the server is slow to answer a handshake: its load, its number of \
             workers, its logs (a full worker pool, a slow key store, reverse-DNS lookups of \
             clients).",
            peer_machine(cx, r, s),
        )])
        .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// The handshake's answer came through (the certificates at least), but only after the wait
/// the stage allows a handshake before it suspects the path (`max(1 s, 16 × rtt)`, the
/// connect's time standing for the round trip).
fn slow(t: &TlsFacts, r: &AddressResult) -> bool {
    use crate::session::{stage, watch};
    (t.version.is_some() || !t.chain.is_empty())
        && t.elapsed >= stage::handshake_wait(watch::window_for(r.elapsed))
}

/// `--insecure`: verification was skipped; what it would have said.
pub fn tls_not_verified(cx: &Ctx) -> Option<Finding> {
    let (r, s) = first_where(cx, |_, s| {
        s.tls.as_ref().is_some_and(|t| t.unverified.is_some())
    })?;
    let u = s.tls.as_ref()?.unverified.as_ref()?;
    let host = cx.facts.target.host.to_string();
    let (message, steps) = match &u.would_fail {
        Some(f) => (
            format!(
                "Certificate verification was SKIPPED (--insecure): the connection is \
                 encrypted, but nothing proves the server is {host}'s. Verified, it would have \
                 failed: {}. Clients that verify fail here.",
                tls_id(f)
                    .and_then(headline)
                    .unwrap_or("the certificate is not accepted")
            ),
            vec![Step::about(
                StepKind::FixCertificate,
                "Fix the certificate (or trust its CA on purpose, with --cacert FILE) rather \
                 than skip verification.",
                peer_machine(cx, r, s),
            )],
        ),
        None => (
            format!(
                "Certificate verification was SKIPPED (--insecure), though it would have \
                 passed: the certificate is valid for {host} and trusted here. --insecure is \
                 not needed."
            ),
            vec![],
        ),
    };
    Some(
        Finding::new(FindingId::TlsNotVerified, Severity::Warning, message)
            .about(r.address)
            .steps(steps),
    )
}

/// The summary's clause for the finding that explains a service or TLS error, in words
/// fitted to its facts where one fixed clause would say too much ([`headline`]).
pub fn clause(cx: &Ctx, id: FindingId) -> Option<String> {
    match id {
        FindingId::NoReply => {
            let stalled = first_where(cx, |r, s| {
                r.outcome == Outcome::ServiceError
                    && matches!(
                        s.tls.as_ref().and_then(|t| t.failure.as_ref()),
                        Some(TlsFailure::Stalled { .. })
                    )
            })
            .is_some();
            Some(if stalled {
                "it begins its answer, then stops".into()
            } else {
                "it never replies".into()
            })
        }
        FindingId::HttpClientError => {
            let code = first_where(cx, |_, s| {
                unexpected(cx, s).is_some_and(|st| (400..500).contains(&st))
            })
            .and_then(|(_, s)| unexpected(cx, s))?;
            Some(match code {
                401 => "it wants credentials (HTTP 401)".into(),
                407 => "it wants proxy credentials (HTTP 407)".into(),
                404 | 410 => format!("it has nothing at this path (HTTP {code})"),
                _ => format!("it refuses the request (HTTP {code})"),
            })
        }
        _ => headline(id).map(str::to_string),
    }
}

/// The server's greeting, identified (an open port that speaks first).
pub fn service_banner(cx: &Ctx) -> Option<Finding> {
    let (r, s) = first_where(cx, |r, s| {
        r.outcome == Outcome::Open && matches!(s.first, First::Banner { .. })
    })?;
    let First::Banner { kind, bytes } = &s.first else {
        return None;
    };
    let what = match kind {
        BannerKind::Ssh { software, .. } => format!("an SSH server ({software})"),
        BannerKind::Smtp { greeting } => format!("an SMTP server ({greeting})"),
        BannerKind::Ftp { greeting } => format!("an FTP server ({greeting})"),
        BannerKind::Pop3 { greeting } => format!("a POP3 server ({greeting})"),
        BannerKind::Imap { greeting } => format!("an IMAP server ({greeting})"),
        BannerKind::MySql { server_version } => format!("MySQL/MariaDB {server_version}"),
        _ => format!(
            "something that greets with `{}`",
            escape_bytes(&bytes[..bytes.len().min(60)])
        ),
    };
    Some(
        Finding::new(
            FindingId::ServiceBanner,
            Severity::Info,
            format!("{} port {} is {what}.", r.address.ip(), cx.port()),
        )
        .about(r.address),
    )
}

/// An HTTP(S) client here would go through a proxy, or be exempted from one; whether this
/// check followed it.
pub fn proxy_applies(cx: &Ctx) -> Option<Finding> {
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
                    // What went on past the proxy's first moments, when anything did.
                    let session = cx.facts.addresses.first().and_then(|a| a.session.as_ref());
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
                        " So did this check: the name, the connection and the first moments \
                         above are the proxy's{how}."
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
    Some(Finding::new(FindingId::ProxyApplies, Severity::Info, message).steps(step))
}

/// The lines a report shows for one address's session: `(label, text)`, raw (the renderer
/// escapes them).
pub fn lines(s: &SessionFacts) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    match &s.first {
        First::Reset => out.push(("after", "accepted, then reset at once".to_string())),
        First::Closed => out.push(("after", "accepted, then closed without a word".to_string())),
        First::Banner { bytes, .. } => {
            let line = bytes.split(|b| *b == b'\n').next().unwrap_or(&[]);
            out.push(("greeting", escape_bytes(&line[..line.len().min(100)])));
        }
        First::Error { errno } => out.push(("after", socket_error_words(*errno))),
        First::Silent | First::Unwatched => {}
    }
    match (s.accepted, s.at_rest) {
        (Some(a), Some(r)) => out.push((
            "accepted",
            format!(
                "the program took the connection after {} and was back to waiting, \
                 connection held, after {}",
                fmt_duration(a),
                fmt_duration(r)
            ),
        )),
        (Some(a), None) => out.push((
            "accepted",
            format!(
                "the program took the connection after {}, watched for {}",
                fmt_duration(a),
                fmt_duration(s.window)
            ),
        )),
        _ => {}
    }
    match &s.via {
        Some(ViaProxy::Tunnel(c)) => {
            let what = match (&c.response, &c.failure) {
                (Some(r), _) => format!("{} {}", r.status, bounded(&r.reason, 80)),
                (None, Some(f)) => http_failure_words(f),
                (None, None) => "nothing".into(),
            };
            out.push((
                "proxy",
                format!(
                    "CONNECT {} → {what} in {}",
                    c.authority,
                    fmt_duration(c.elapsed)
                ),
            ));
        }
        Some(ViaProxy::Forward) => {
            out.push(("proxy", "request sent to the proxy in absolute form".into()));
        }
        None => {}
    }
    if let Some(t) = &s.tls {
        out.push(("tls", tls_line(t)));
    }
    if let Some(r) = &s.mss_retry {
        let what = match (&r.connect_error, &r.tls) {
            (Some(e), _) => mss_failure_words(*e),
            (None, Some(t)) if t.failure.is_none() => {
                format!("handshake completed in {}", fmt_duration(t.elapsed))
            }
            (None, Some(t)) => tls_line(t),
            (None, None) => "not tried".into(),
        };
        out.push((
            "mss",
            format!(
                "second try with MSS {}, opened after {}: {what}",
                r.mss,
                fmt_duration(r.opened)
            ),
        ));
    }
    if let Some(h) = &s.http {
        let what = match (&h.response, &h.failure) {
            (Some(r), _) => http_words(r),
            (None, Some(f)) => http_failure_words(f),
            (None, None) => "nothing".into(),
        };
        out.push((
            "http",
            format!(
                "{} → {what} in {}",
                h.method.as_str(),
                fmt_duration(h.elapsed)
            ),
        ));
    }
    if let Some(t) = &s.tls_confirm {
        // Its verdict on the certificate is no finding here: only that TLS answered.
        let line = tls_line(t).replace("failed (see below)", "not accepted here");
        out.push(("tls check", format!("second connection: {line}")));
    }
    out
}

/// An I/O error on an HTTP exchange, from the one errno table.
fn io_words(errno: Option<i32>) -> String {
    match errno {
        // An errno outside the table has no name people search for: its text alone.
        Some(e) if errno_name(e) == "error" => errno_text(e),
        Some(e) => format!("{} ({})", errno_text(e), errno_name(e)),
        None => "an I/O error without an error number".into(),
    }
}

/// A socket error in the first moments, from the one errno table.
fn socket_error_words(errno: Option<i32>) -> String {
    match errno {
        Some(e) => format!("socket error: {} ({})", errno_text(e), errno_name(e)),
        None => "socket error (the system gave no error number)".into(),
    }
}

/// Why the reduced-MSS connection was not made.
fn mss_failure_words(f: MssFailure) -> String {
    let errno = |e: Option<i32>| match e {
        Some(e) => format!("{} ({})", errno_text(e), errno_name(e)),
        None => "no error number".into(),
    };
    match f {
        MssFailure::Socket { errno: e } => format!("could not create a socket: {}", errno(e)),
        MssFailure::SetMss { errno: e } => {
            format!("this machine's kernel refused the MSS: {}", errno(e))
        }
        MssFailure::Connect { errno: e } => format!("could not connect: {}", errno(e)),
        MssFailure::TimedOut => "could not connect before the deadline".into(),
    }
}

fn http_failure_words(f: &HttpFailure) -> String {
    match f {
        HttpFailure::NoReply => "no answer".into(),
        HttpFailure::Closed => "closed without an answer".into(),
        HttpFailure::Reset => "reset instead of an answer".into(),
        HttpFailure::ExpectsTls { .. } => "a TLS record: the port speaks TLS".into(),
        HttpFailure::NotHttp { .. } => "not HTTP".into(),
        HttpFailure::Truncated { .. } => "an answer cut short".into(),
        HttpFailure::TooLarge => "headers over 64 KiB".into(),
        HttpFailure::Io { errno } => io_words(*errno),
    }
}

fn tls_line(t: &TlsFacts) -> String {
    use crate::session::tls::TlsVersion;
    let version = match t.version {
        Some(TlsVersion::Tls12) => "TLS 1.2".to_string(),
        Some(TlsVersion::Tls13) => "TLS 1.3".to_string(),
        Some(TlsVersion::Other(v)) => format!("TLS 0x{v:04x}"),
        None => "no session".to_string(),
    };
    let mut parts = vec![version];
    if let Some(c) = &t.cipher_suite {
        parts.push(c.clone());
    }
    if let Some(a) = &t.alpn {
        parts.push(format!("ALPN {}", String::from_utf8_lossy(a)));
    }
    if let Some(leaf) = t.chain.first() {
        parts.push(format!(
            "certificate for {}, valid until {}",
            names(leaf),
            utc(leaf.not_after)
        ));
    }
    if t.failure.is_some() {
        parts.push("failed (see below)".into());
    }
    if t.unverified.is_some() {
        parts.push("certificate NOT VERIFIED (--insecure)".into());
    }
    format!("{} in {}", parts.join("; "), fmt_duration(t.elapsed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::diagnose;
    use crate::facts::{AddressFacts, DirectPath, Facts};
    use crate::probe::{ConnectResult, ProbeFact, ProbeSpec};
    use crate::services::Services;
    use crate::session::http::{HttpFacts, Method, parse_response};
    use crate::session::proxy::{ConnectFacts, proxy_for};
    use crate::session::tls::TlsVersion;
    use std::time::Duration;

    fn probe(addr: &str, result: ConnectResult) -> ProbeFact {
        ProbeFact {
            spec: ProbeSpec::to(addr.parse().unwrap()),
            result,
            elapsed: if result == ConnectResult::TimedOut {
                Duration::from_secs(1)
            } else {
                Duration::from_micros(300)
            },
            icmp: None,
            local: None,
        }
    }

    fn response(raw: &[u8]) -> crate::session::http::HttpResponse {
        parse_response(raw).unwrap().unwrap().0
    }

    fn session(via: Option<ViaProxy>, http: Option<HttpFacts>) -> SessionFacts {
        SessionFacts {
            address: "198.18.0.8:3128".parse().unwrap(),
            window: Duration::from_millis(8),
            accepted: None,
            at_rest: None,
            not_accepted: None,
            first: First::Silent,
            via,
            tls: None,
            mss_retry: None,
            http,
            tls_confirm: None,
            answered: None,
        }
    }

    fn tunnel(raw: &[u8]) -> Option<ViaProxy> {
        Some(ViaProxy::Tunnel(Box::new(ConnectFacts {
            authority: "api.example:443".into(),
            response: Some(response(raw)),
            leftover: vec![],
            failure: None,
            elapsed: Duration::from_millis(2),
        })))
    }

    /// `https://api.example/` through `proxy.corp:3128` (198.18.0.8), whose session is `s`;
    /// the direct path got `direct`.
    fn through(s: SessionFacts, direct: ConnectResult) -> Facts {
        let target =
            crate::target::parse("https://api.example/", None, &Services::parse("")).unwrap();
        let env = |k: &str| (k == "https_proxy").then(|| "http://u:pw@proxy.corp:3128".into());
        let choice = proxy_for("https", "api.example", 443, &env);
        let ProxyChoice::Proxy(p) = choice.clone() else {
            panic!("{choice:?}")
        };
        let endpoint = crate::target::parse("proxy.corp:3128", None, &Services::parse("")).unwrap();
        Facts {
            addresses: vec![AddressFacts {
                probe: probe("198.18.0.8:3128", ConnectResult::Connected),
                silence: None,
                here: false,
                session: Some(s),
                queue: None,
            }],
            proxy: Some(choice),
            via: Some(ProxyRoute {
                proxy: p,
                endpoint,
                direct: DirectPath {
                    lookup_error: None,
                    probes: vec![probe("198.18.0.9:443", direct)],
                    waited: Duration::from_secs(1),
                },
            }),
            ..Facts::new(target, Duration::from_secs(5))
        }
    }

    fn ids(f: &Facts) -> (Outcome, Vec<&'static str>, String) {
        let d = diagnose(f);
        (
            d.addresses[0].outcome,
            d.findings.iter().map(|f| f.id.as_str()).collect(),
            d.findings
                .iter()
                .map(|f| f.message.clone())
                .collect::<Vec<_>>()
                .join("\n"),
        )
    }

    #[test]
    fn a_proxy_refusal_is_a_service_error_naming_the_proxy() {
        let refused = ConnectResult::Failed {
            errno: libc::ECONNREFUSED,
        };
        let cases: [(&[u8], &str, &str); 4] = [
            (
                b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Negotiate\r\n\r\n",
                "proxy_auth_required",
                "Negotiate",
            ),
            (
                b"HTTP/1.1 403 Forbidden\r\n\r\n",
                "proxy_forbidden",
                "403 Forbidden",
            ),
            (
                b"HTTP/1.1 504 Gateway Timeout\r\n\r\n",
                "proxy_upstream_failed",
                "504 Gateway Timeout",
            ),
            (
                b"HTTP/1.1 405 Method Not Allowed\r\n\r\n",
                "proxy_connect_failed",
                "405 Method Not Allowed",
            ),
        ];
        for (raw, id, words) in cases {
            let f = through(session(tunnel(raw), None), refused);
            let (outcome, found, text) = ids(&f);
            assert_eq!(outcome, Outcome::ServiceError, "{id}");
            assert!(found.contains(&id), "{id}: {found:?}");
            assert!(found.contains(&"direct_path"), "{found:?}");
            assert!(!found.contains(&"http_client_error"), "{found:?}");
            assert!(
                text.contains("proxy.corp:3128 (from https_proxy)"),
                "{text}"
            );
            assert!(text.contains(words), "{text}");
            assert!(!text.contains("pw"), "{text}");
            let d = diagnose(&f);
            assert_eq!(d.verdict, crate::diagnosis::Verdict::ServiceError);
            assert!(
                d.summary.contains("which does not open the way"),
                "{}",
                d.summary
            );
        }
    }

    #[test]
    fn a_forwarded_407_is_the_proxy_not_the_server() {
        let h = HttpFacts {
            method: Method::Head,
            head_status: None,
            response: Some(response(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n",
            )),
            failure: None,
            elapsed: Duration::from_millis(1),
        };
        let f = through(
            session(Some(ViaProxy::Forward), Some(h)),
            ConnectResult::Connected,
        );
        let (outcome, found, _) = ids(&f);
        assert_eq!(outcome, Outcome::ServiceError);
        assert!(found.contains(&"proxy_auth_required"), "{found:?}");
        assert!(!found.contains(&"http_client_error"), "{found:?}");
    }

    #[test]
    fn an_open_tunnel_leaves_the_verdict_to_the_destination_and_says_the_direct_path() {
        let h = HttpFacts {
            method: Method::Head,
            head_status: None,
            response: Some(response(b"HTTP/1.1 200 OK\r\n\r\n")),
            failure: None,
            elapsed: Duration::from_millis(1),
        };
        let mut s = session(
            tunnel(b"HTTP/1.1 200 Connection established\r\n\r\n"),
            Some(h),
        );
        s.tls = Some(TlsFacts {
            server_name: "api.example".into(),
            elapsed: Duration::from_millis(3),
            version: Some(TlsVersion::Tls13),
            cipher_suite: None,
            alpn: None,
            chain: vec![],
            verify_error: None,
            trust_anchors: 1,
            client_cert: None,
            after: None,
            failure: None,
            first_answer: None,
            given_up: None,
            unverified: None,
        });
        // A silent direct path does not change an open verdict.
        let f = through(s, ConnectResult::TimedOut);
        let d = diagnose(&f);
        assert_eq!(d.verdict, crate::diagnosis::Verdict::Open);
        let direct = d
            .findings
            .iter()
            .find(|f| f.id == FindingId::DirectPath)
            .unwrap();
        assert!(
            direct.message.contains("198.18.0.9 filtered"),
            "{}",
            direct.message
        );
        assert!(
            d.summary.contains("api.example:443 is open"),
            "{}",
            d.summary
        );
        let applies = d
            .findings
            .iter()
            .find(|f| f.id == FindingId::ProxyApplies)
            .unwrap();
        assert!(
            applies.message.contains("CONNECT tunnel"),
            "{}",
            applies.message
        );
        // The proxy was checked already: no step to check it again.
        assert!(applies.steps.is_empty());
    }

    #[test]
    fn expects_tls_is_confirmed_or_not_by_the_second_connection() {
        let target =
            crate::target::parse("http://h.test:8443/", None, &Services::parse("")).unwrap();
        let h = HttpFacts {
            method: Method::Head,
            head_status: None,
            response: None,
            failure: Some(HttpFailure::ExpectsTls {
                first_bytes: vec![0x15, 0x03, 0x03, 0, 2, 2, 0x28],
            }),
            elapsed: Duration::from_millis(1),
        };
        let confirm = |failure: Option<TlsFailure>, version: Option<TlsVersion>| TlsFacts {
            server_name: "h.test".into(),
            elapsed: Duration::from_millis(3),
            version,
            cipher_suite: None,
            alpn: None,
            chain: vec![],
            verify_error: None,
            trust_anchors: 1,
            client_cert: None,
            after: None,
            failure,
            first_answer: None,
            given_up: None,
            unverified: None,
        };
        let facts_with = |c: TlsFacts| {
            let mut s = session(None, Some(h.clone()));
            s.tls_confirm = Some(c);
            Facts {
                addresses: vec![AddressFacts {
                    probe: probe("198.18.0.7:8443", ConnectResult::Connected),
                    silence: None,
                    here: false,
                    session: Some(s),
                    queue: None,
                }],
                ..Facts::new(target.clone(), Duration::from_secs(5))
            }
        };
        let yes = facts_with(confirm(None, Some(TlsVersion::Tls13)));
        let (_, found, text) = ids(&yes);
        assert!(found.contains(&"expects_tls"));
        assert!(
            text.contains("Confirmed") && text.contains("TLS 1.3"),
            "{text}"
        );
        assert!(text.contains("https://h.test:8443/"), "{text}");
        let no = facts_with(confirm(
            Some(TlsFailure::NotTls {
                first_bytes: b"SSH-2.0-x".to_vec(),
            }),
            None,
        ));
        let (_, _, text) = ids(&no);
        assert!(text.contains("only looked like TLS"), "{text}");
        assert!(text.contains("SSH-2.0-x"), "{text}");
    }

    #[test]
    fn http_io_errors_are_worded_from_the_errno_table() {
        // The fact holds an errno, never the OS's sentence; the words come from the one table.
        assert_eq!(
            http_failure_words(&HttpFailure::Io {
                errno: Some(libc::ENOBUFS)
            }),
            "No buffer space available (ENOBUFS)"
        );
        assert_eq!(
            http_failure_words(&HttpFailure::Io {
                errno: Some(libc::EPIPE)
            }),
            "Broken pipe"
        );
        let none = http_failure_words(&HttpFailure::Io { errno: None });
        assert_eq!(none, "an I/O error without an error number");
        assert!(!none.contains("os error"));
    }

    #[test]
    fn socket_errors_are_worded_from_the_errno_table() {
        assert_eq!(
            socket_error_words(Some(libc::EHOSTUNREACH)),
            "socket error: No route to host (EHOSTUNREACH)"
        );
        assert!(socket_error_words(None).starts_with("socket error"));
        assert_eq!(
            mss_failure_words(MssFailure::Connect {
                errno: Some(libc::ECONNREFUSED)
            }),
            "could not connect: Connection refused (ECONNREFUSED)"
        );
        assert_eq!(
            mss_failure_words(MssFailure::TimedOut),
            "could not connect before the deadline"
        );
        assert!(
            mss_failure_words(MssFailure::SetMss {
                errno: Some(libc::EINVAL)
            })
            .contains("EINVAL")
        );
    }

    #[test]
    fn tls_error_findings_name_who_fixes_it() {
        use crate::session::tls::TlsAlert;
        assert!(
            mismatch_words(Some(TlsAlert(70)), None)
                .starts_with("The server ended the handshake: it does not speak a TLS version")
        );
        assert!(mismatch_words(Some(TlsAlert(70)), None).contains("alert protocol_version"));
        assert!(
            mismatch_words(None, Some(Incompatible::CipherSuite))
                .starts_with("The server and this client share no cipher suite.")
        );
    }

    #[test]
    fn dates_in_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_795_672_800), "2026-11-26 06:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
    }

    fn tls_facts(elapsed_ms: u64, failure: Option<TlsFailure>, crossed: bool) -> TlsFacts {
        TlsFacts {
            server_name: "h.test".into(),
            elapsed: Duration::from_millis(elapsed_ms),
            version: crossed.then_some(TlsVersion::Tls13),
            cipher_suite: None,
            alpn: None,
            chain: vec![],
            verify_error: None,
            trust_anchors: 1,
            client_cert: None,
            after: None,
            failure,
            first_answer: crossed.then(|| Duration::from_millis(elapsed_ms)),
            given_up: None,
            unverified: None,
        }
    }

    /// A TLS check of `address` whose session is `s`.
    fn tls_check(address: &str, s: SessionFacts) -> Facts {
        let target = crate::target::parse("h.test:443", None, &Services::parse("")).unwrap();
        Facts {
            addresses: vec![AddressFacts {
                probe: probe(address, ConnectResult::Connected),
                silence: None,
                here: false,
                queue: None,
                session: Some(SessionFacts {
                    address: address.parse().unwrap(),
                    ..s
                }),
            }],
            ..Facts::new(target, Duration::from_secs(5))
        }
    }

    fn with_retry(first: TlsFacts, opened_ms: u64, second: TlsFacts) -> SessionFacts {
        let mut s = session(None, None);
        s.tls = Some(first);
        s.mss_retry = Some(MssRetry {
            mss: 1200,
            opened: Duration::from_millis(opened_ms),
            connect_error: None,
            tls: Some(second),
        });
        s
    }

    fn segments(advmss: u32, out_of_order: Option<u32>) -> crate::sys::TcpSegments {
        crate::sys::TcpSegments {
            advmss,
            pmtu: 1500,
            bytes_received: 0,
            data_segs_in: out_of_order.unwrap_or(0),
            out_of_order,
            retransmitted: 0,
            unacked: 0,
        }
    }

    #[test]
    fn a_black_hole_needs_all_of_its_evidence() {
        let silent = || {
            let mut t = tls_facts(1010, Some(TlsFailure::NoReply), false);
            t.given_up = Some(segments(1448, Some(1)));
            t
        };
        // All of it: the small one came through while the first, opened earlier, waited.
        let proven = with_retry(silent(), 1000, tls_facts(7, None, true));
        let (outcome, found, text) = ids(&tls_check("198.18.2.2:443", proven.clone()));
        assert_eq!(outcome, Outcome::MtuBlackhole, "{text}");
        assert!(found.contains(&"mtu_blackhole"), "{found:?}");
        assert!(text.contains("while the first still had nothing"), "{text}");
        assert!(text.contains("1 later segment(s)"), "{text}");

        // The retry came through only after the first had given up: not the same wait.
        let late = with_retry(silent(), 1000, tls_facts(300, None, true));
        let (outcome, found, text) = ids(&tls_check("198.18.2.2:443", late));
        assert_eq!(outcome, Outcome::ServiceError, "{text}");
        assert!(!found.contains(&"mtu_blackhole"), "{found:?}");
        assert!(text.contains("some connections and not others"), "{text}");

        // Loopback: no narrower link can be on the way.
        let (outcome, _, _) = ids(&tls_check("127.0.0.1:443", proven.clone()));
        assert_eq!(outcome, Outcome::ServiceError);

        // The first connection did not allow larger segments than the retry's.
        let mut narrow = proven.clone();
        narrow.tls.as_mut().unwrap().given_up = Some(segments(1188, None));
        let (outcome, _, _) = ids(&tls_check("198.18.2.2:443", narrow));
        assert_eq!(outcome, Outcome::ServiceError);

        // The retry got nothing either: no reply, and said so.
        let both = with_retry(
            silent(),
            1000,
            tls_facts(3000, Some(TlsFailure::NoReply), false),
        );
        let (outcome, found, text) = ids(&tls_check("198.18.2.2:443", both));
        assert_eq!(outcome, Outcome::ServiceError);
        assert!(found.contains(&"no_reply"), "{found:?}");
        assert!(text.contains("got nothing either"), "{text}");
    }

    #[test]
    fn a_stall_is_a_begun_answer_and_a_late_one_is_slow() {
        let mut stalled = session(None, None);
        let mut t = tls_facts(2000, Some(TlsFailure::Stalled { received: 21 }), false);
        t.first_answer = Some(Duration::from_micros(400));
        stalled.tls = Some(t);
        let f = tls_check("127.0.0.1:443", stalled);
        let (outcome, _, text) = ids(&f);
        assert_eq!(outcome, Outcome::ServiceError);
        assert!(
            text.contains("began its answer to the TLS ClientHello (21 bytes"),
            "{text}"
        );
        assert!(!text.contains("nothing came back"), "{text}");
        assert!(
            diagnose(&f)
                .summary
                .contains("it begins its answer, then stops")
        );

        let mut slow = session(None, None);
        slow.tls = Some(tls_facts(1300, None, true));
        let (outcome, found, text) = ids(&tls_check("198.18.2.2:443", slow));
        assert_eq!(outcome, Outcome::Open);
        assert!(found.contains(&"slow_handshake"), "{found:?}");
        assert!(text.contains("only after 1.30 s"), "{text}");
        let mut quick = session(None, None);
        quick.tls = Some(tls_facts(20, None, true));
        let (_, found, _) = ids(&tls_check("198.18.2.2:443", quick));
        assert!(!found.contains(&"slow_handshake"), "{found:?}");
    }

    #[test]
    fn http_statuses_against_what_is_expected() {
        let answered = |raw: &[u8], expect: Option<&str>| {
            let h = HttpFacts {
                method: Method::Head,
                head_status: None,
                response: Some(response(raw)),
                failure: None,
                elapsed: Duration::from_millis(1),
            };
            let target =
                crate::target::parse("http://h.test/x", None, &Services::parse("")).unwrap();
            let f = Facts {
                addresses: vec![AddressFacts {
                    probe: probe("198.18.0.7:80", ConnectResult::Connected),
                    silence: None,
                    here: false,
                    queue: None,
                    session: Some(session(None, Some(h))),
                }],
                expect_status: expect.map(|e| StatusSet::parse(e).unwrap()),
                ..Facts::new(target, Duration::from_secs(5))
            };
            ids(&f)
        };
        let (o, found, text) = answered(b"HTTP/1.1 404 Not Found\r\n\r\n", None);
        assert_eq!(o, Outcome::ServiceError);
        assert!(found.contains(&"http_client_error"), "{found:?}");
        assert!(text.contains("--expect-status 404"), "{text}");
        let (o, found, _) = answered(b"HTTP/1.1 404 Not Found\r\n\r\n", Some("404"));
        assert_eq!(o, Outcome::Open);
        assert!(!found.contains(&"http_client_error"), "{found:?}");
        let (o, found, _) = answered(b"HTTP/1.1 200 OK\r\n\r\n", Some("404"));
        assert_eq!(o, Outcome::ServiceError);
        assert!(found.contains(&"http_unexpected_status"), "{found:?}");
        let (o, found, text) = answered(
            b"HTTP/1.1 301 Moved\r\nLocation: //u:pw@elsewhere.test/y?secret=s\r\n\r\n",
            None,
        );
        assert_eq!(o, Outcome::Open);
        assert!(found.contains(&"http_redirect"), "{found:?}");
        assert!(
            text.contains("http://u:***@elsewhere.test/y?secret=***"),
            "{text}"
        );
        let (o, _, text) = answered(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n",
            None,
        );
        assert_eq!(o, Outcome::ServiceError);
        assert!(
            text.contains("HTTP proxy (or has one in front) that wants credentials"),
            "{text}"
        );
        let (o, _, _) = answered(b"HTTP/1.1 503 Busy\r\n\r\n", Some("5xx"));
        assert_eq!(o, Outcome::Open);
    }

    #[test]
    fn the_accept_line_says_when_the_program_was_back_to_waiting() {
        let mut s = session(None, None);
        s.accepted = Some(Duration::from_micros(300));
        let line = |s: &SessionFacts| {
            lines(s)
                .into_iter()
                .find(|(k, _)| *k == "accepted")
                .map(|(_, v)| v)
        };
        assert_eq!(
            line(&s).as_deref(),
            Some("the program took the connection after 0.3 ms, watched for 8.0 ms")
        );
        s.at_rest = Some(Duration::from_micros(1200));
        assert_eq!(
            line(&s).as_deref(),
            Some(
                "the program took the connection after 0.3 ms and was back to waiting, \
                 connection held, after 1.2 ms"
            )
        );
    }
}
