//! What happened after the connect: hang-ups, greetings, TLS, HTTP, path-MTU black holes and
//! proxies. Reads the session stage's facts (`crate::session`); ground truth is
//! `docs/ground-truth/beyond-connect.md`. One function per finding (the TLS failure kinds share one,
//! as the DNS failure kinds do: one kind, one id).

use std::time::{SystemTime, UNIX_EPOCH};

use super::advice::{Machine, Step, StepKind};
use super::commands::Command;
use super::finding::{Finding, FindingId, Severity};
use super::{AddressResult, Ctx, Evidence, Outcome, errno_name, errno_text, fmt_duration};
use crate::escape::escape_bytes;
pub use crate::facts::utc;
use crate::local::servers::CONTAINER_PROXIES;
use crate::session::SessionFacts;
use crate::session::first::{BannerKind, First};
use crate::session::http::{HttpFailure, HttpResponse};
use crate::session::mss::MssFailure;
use crate::session::proxy::ProxyChoice;
use crate::session::tls::{CertFacts, Incompatible, TlsAlert, TlsError, TlsFacts, TlsFailure};

use super::tls_words::{self, Fixer};

/// What the session facts make of an address whose TCP handshake completed.
pub fn outcome(s: &SessionFacts) -> Outcome {
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
    if let Some(f) = s.tls.as_ref().and_then(|t| t.failure.as_ref()) {
        return match f {
            TlsFailure::NoReply | TlsFailure::Stalled { .. } if retry_worked(s) => {
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
            (Some(r), _) if r.status >= 500 => return Outcome::ServiceError,
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
        AcceptedThenReset => "it resets the connection as soon as it is accepted",
        AcceptedThenClosed => "it closes the connection as soon as it is accepted",
        ServiceRefuses => "it refuses this client",
        NoReply => "it never replies",
        HttpServerError => "it answers with an HTTP server error",
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

fn retry_worked(s: &SessionFacts) -> bool {
    s.mss_retry
        .as_ref()
        .and_then(|r| r.tls.as_ref())
        .is_some_and(|t| {
            !matches!(
                t.failure,
                Some(TlsFailure::NoReply | TlsFailure::Stalled { .. })
            )
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
    Step::about(
        StepKind::ReadLogs,
        "Read the logs of the program behind the port (and of its backend, when it is a \
         proxy): they say why it drops connections.",
        cx.server_of(r.address.ip()),
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

/// Nothing came back after the client spoke (TLS ClientHello or HTTP request), and a smaller
/// MSS did not help.
pub fn no_reply(cx: &Ctx) -> Option<Finding> {
    let (r, s) = first_where(cx, |r, s| {
        r.outcome == Outcome::ServiceError
            && (matches!(
                s.tls.as_ref().and_then(|t| t.failure.as_ref()),
                Some(TlsFailure::NoReply | TlsFailure::Stalled { .. })
            ) || matches!(
                s.http.as_ref().and_then(|h| h.failure.as_ref()),
                Some(HttpFailure::NoReply)
            ))
    })?;
    let tls_silent = matches!(
        s.tls.as_ref().and_then(|t| t.failure.as_ref()),
        Some(TlsFailure::NoReply | TlsFailure::Stalled { .. })
    );
    let said = if tls_silent {
        "its TLS ClientHello"
    } else {
        "its HTTP request (HEAD, then GET on a new connection)"
    };
    let retried = if tls_silent && s.mss_retry.is_some() {
        " A second try with smaller segments (a path-MTU black hole test) got nothing either."
    } else {
        ""
    };
    Some(
        Finding::new(
            FindingId::NoReply,
            Severity::Error,
            format!(
                "{} accepted the connection, but nothing came back after {said}: the program \
                 behind port {} is hung or overloaded, or speaks another protocol and waits for \
                 it.{retried}",
                r.address.ip(),
                cx.port()
            ),
        )
        .about(r.address)
        .steps([who_owns(cx, r), read_logs(cx, r)])
        .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// The handshake stalled, and completed with a smaller MSS.
pub fn mtu_blackhole(cx: &Ctx) -> Option<Finding> {
    let (r, s) = first_where(cx, |r, _| r.outcome == Outcome::MtuBlackhole)?;
    let first = s.tls.as_ref()?;
    let retry = s.mss_retry.as_ref()?;
    let got = match &first.failure {
        Some(TlsFailure::Stalled { received }) => {
            format!("{received} bytes of the server's handshake arrived, then nothing")
        }
        _ => "nothing of the server's handshake arrived".to_string(),
    };
    Some(
        Finding::new(
            FindingId::MtuBlackhole,
            Severity::Error,
            format!(
                "Large packets from {} vanish on the way: the connection opened and the \
                 ClientHello went out, but {got} in {}. A second connection asking for segments \
                 of at most {} bytes (TCP MSS) completed the handshake in {}. Somewhere on the \
                 path a link has a smaller MTU, and the ICMP \"fragmentation needed\" (IPv6: \
                 \"packet too big\") that should report it is dropped.",
                r.address.ip(),
                fmt_duration(first.elapsed),
                retry.mss,
                retry
                    .tls
                    .as_ref()
                    .map(|t| fmt_duration(t.elapsed))
                    .unwrap_or_default()
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

fn cert_owner(cx: &Ctx, r: &AddressResult) -> Machine {
    cx.server_of(r.address.ip())
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
    let host = cx.target().host.to_string();
    let leaf = t.chain.first();
    let on = cert_owner(cx, r);
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
                    vec![Step::about(
                        StepKind::CheckLocalSettings,
                        "If the CA is your organisation's, install its root certificate here \
                         (copy it to /usr/local/share/ca-certificates/ and run \
                         update-ca-certificates).",
                        Machine::This,
                    )],
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
                cx.port(),
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
    Some(
        Finding::new(id, Severity::Error, message)
            .about(r.address)
            .steps(steps)
            .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
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

/// Plain HTTP sent to a port that speaks TLS.
pub fn expects_tls(cx: &Ctx) -> Option<Finding> {
    let (r, _) = first_where(cx, |_, s| {
        matches!(
            s.http.as_ref().and_then(|h| h.failure.as_ref()),
            Some(HttpFailure::ExpectsTls { .. })
        )
    })?;
    Some(
        Finding::new(
            FindingId::ExpectsTls,
            Severity::Error,
            format!(
                "Port {} speaks TLS: it answered a plain HTTP request with a TLS record. Use \
                 https:// (or the client's TLS option) for this port.",
                cx.port()
            ),
        )
        .about(r.address)
        .steps([Step::about(
            StepKind::PointClient,
            "Use https:// for this port, or the port where plain HTTP is served.",
            Machine::This,
        )]),
    )
}

/// The port answered an HTTP request with something else, or hung up.
pub fn not_http(cx: &Ctx) -> Option<Finding> {
    let (r, s) = first_where(cx, |_, s| {
        matches!(
            s.http.as_ref().and_then(|h| h.failure.as_ref()),
            Some(
                HttpFailure::NotHttp { .. }
                    | HttpFailure::Closed
                    | HttpFailure::Reset
                    | HttpFailure::Truncated { .. }
                    | HttpFailure::TooLarge
                    | HttpFailure::Io(_)
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
        HttpFailure::Io(e) => format!("failed ({e})"),
        _ => return None,
    };
    Some(
        Finding::new(
            FindingId::NotHttp,
            Severity::Error,
            format!(
                "{} port {} {what}: the program there does not serve HTTP to this client.",
                r.address.ip(),
                cx.port()
            ),
        )
        .about(r.address)
        .steps([who_owns(cx, r), read_logs(cx, r)]),
    )
}

/// HTTP 5xx: the server, or the proxy or load balancer in front of it, failed.
pub fn http_server_error(cx: &Ctx) -> Option<Finding> {
    let (r, s) = first_where(cx, |_, s| {
        s.http
            .as_ref()
            .and_then(|h| h.response.as_ref())
            .is_some_and(|r| r.status >= 500)
    })?;
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
    } else {
        " The server (or a proxy in front of it) reports its own failure.".to_string()
    };
    Some(
        Finding::new(
            FindingId::HttpServerError,
            Severity::Error,
            format!("{} answered {}.{meaning}", r.address.ip(), http_words(resp)),
        )
        .about(r.address)
        .steps([read_logs(cx, r)])
        .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// HTTP 4xx: the service works; the request was not what it wants.
pub fn http_client_error(cx: &Ctx) -> Option<Finding> {
    let (r, s) = first_where(cx, |_, s| {
        s.http
            .as_ref()
            .and_then(|h| h.response.as_ref())
            .is_some_and(|r| (400..500).contains(&r.status))
    })?;
    let resp = s.http.as_ref()?.response.as_ref()?;
    let path = cx.target().url.as_ref().map_or("/", |u| u.path.as_str());
    Some(
        Finding::new(
            FindingId::HttpClientError,
            Severity::Warning,
            format!(
                "{} answered {} for {path}: the service is up and answering; it refuses this \
                 request (wrong path, missing credentials, or a rule that blocks this client).",
                r.address.ip(),
                http_words(resp)
            ),
        )
        .about(r.address)
        .steps([Step::say(
            StepKind::PointClient,
            "Check the path and the credentials the client sends; the network is fine.",
        )]),
    )
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

/// An HTTP(S) client here would go through a proxy, or be exempted from one.
pub fn proxy_applies(cx: &Ctx) -> Option<Finding> {
    let choice = cx.facts.proxy.as_ref()?;
    let message = match choice {
        ProxyChoice::Proxy(p) => format!(
            "{} is set ({}): an HTTP client on this machine (curl, most libraries) would connect \
             to the proxy {}:{} and not to {} directly. canreach checked the direct path; if the \
             application fails while this report is clean, check the proxy{}.",
            p.variable,
            p.masked,
            p.host,
            p.port,
            cx.target().host,
            if p.has_credentials {
                " (it carries credentials, masked here)"
            } else {
                ""
            }
        ),
        ProxyChoice::Exempt {
            variable, entry, ..
        } => format!(
            "A proxy is configured, but {variable} exempts {} (entry `{entry}`): clients connect \
             directly, as this check did.",
            cx.target().host
        ),
        _ => return None,
    };
    let step = match choice {
        ProxyChoice::Proxy(p) => Some(Step::run(
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
    if let Some(t) = &s.tls {
        out.push(("tls", tls_line(t)));
    }
    if let Some(r) = &s.mss_retry {
        let what = match (&r.connect_error, &r.tls) {
            (Some(e), _) => mss_failure_words(*e),
            (None, Some(t)) if t.failure.is_none() => {
                format!("handshake completed in {}", fmt_duration(t.elapsed))
            }
            (None, Some(t)) => format!("{} ({})", tls_line(t), fmt_duration(t.elapsed)),
            (None, None) => "not tried".into(),
        };
        out.push(("mss", format!("second try with MSS {}: {what}", r.mss)));
    }
    if let Some(h) = &s.http {
        let what = match (&h.response, &h.failure) {
            (Some(r), _) => http_words(r),
            (None, Some(f)) => match f {
                HttpFailure::NoReply => "no answer".into(),
                HttpFailure::Closed => "closed without an answer".into(),
                HttpFailure::Reset => "reset instead of an answer".into(),
                HttpFailure::ExpectsTls { .. } => "a TLS record: the port speaks TLS".into(),
                HttpFailure::NotHttp { .. } => "not HTTP".into(),
                HttpFailure::Truncated { .. } => "an answer cut short".into(),
                HttpFailure::TooLarge => "headers over 64 KiB".into(),
                HttpFailure::Io(e) => e.clone(),
            },
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
    out
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
    format!("{} in {}", parts.join("; "), fmt_duration(t.elapsed))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
