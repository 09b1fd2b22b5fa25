//! The TLS handshake and the certificate: one finding per kind of failure ([`tls_kind`], the
//! one table from failures to ids), a slow handshake, `--insecure`. The words for alerts and
//! handshake errors are one table too ([`errors`]).

pub(crate) mod errors;

use super::advice::{Machine, Step, StepKind};
use super::commands::Command;
use super::context::Ctx;
use super::finding::{Finding, FindingId};
use super::outcome::{AddressResult, Verdict};
use super::proxy::{passed_proxy, peer, peer_machine, peer_port};
use super::words::{first_line, fmt_duration};
use crate::facts::utc;
use crate::session::SessionFacts;
use crate::session::tls::{CertFacts, Incompatible, TlsAlert, TlsError, TlsFacts, TlsFailure};
use errors::Fixer;
use std::time::{SystemTime, UNIX_EPOCH};

/// What a TLS failure is: the finding that reports it, with its words for the summary; or,
/// for a handshake the server never answered, stopped or hung up on, the service's failure
/// (`no_reply`, `mtu_blackhole`, a hang-up), by its name. The one table from TLS failures to
/// finding ids: the JSON's `tls.failure` is read from it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsKind {
    Finding(FindingId, &'static str),
    NoAnswer(&'static str),
}

impl TlsKind {
    /// The finding that reports this failure, if one does.
    pub(crate) fn finding(self) -> Option<FindingId> {
        match self {
            TlsKind::Finding(id, _) => Some(id),
            TlsKind::NoAnswer(_) => None,
        }
    }

    /// The failure's words for the summary ("the certificate has expired").
    pub(crate) fn headline(self) -> Option<&'static str> {
        match self {
            TlsKind::Finding(_, words) => Some(words),
            TlsKind::NoAnswer(_) => None,
        }
    }

    /// Its name: the finding id, or the kind of silence or hang-up.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TlsKind::Finding(id, _) => id.as_str(),
            TlsKind::NoAnswer(name) => name,
        }
    }
}

/// The kind of a TLS failure (see [`TlsKind`]).
pub(crate) fn tls_kind(f: &TlsFailure) -> TlsKind {
    use FindingId::*;
    use TlsKind::{Finding as F, NoAnswer};
    match f {
        TlsFailure::Expired { .. } => F(TlsExpired, "the certificate has expired"),
        TlsFailure::NotYetValid { .. } => F(TlsNotYetValid, "the certificate is not valid yet"),
        TlsFailure::WrongName { .. } => F(TlsWrongName, "the certificate is for another name"),
        TlsFailure::SelfSigned => F(TlsSelfSigned, "the certificate is self-signed"),
        TlsFailure::UnknownIssuer { .. } => F(
            TlsUnknownIssuer,
            "the certificate's issuer is not trusted here",
        ),
        TlsFailure::MissingIntermediate { .. } => F(
            TlsMissingIntermediate,
            "the server does not send its intermediate certificate",
        ),
        TlsFailure::ClientCertRequired { .. } => F(
            TlsClientCertRequired,
            "the server wants a client certificate",
        ),
        TlsFailure::ProtocolMismatch { .. } => {
            F(TlsProtocolMismatch, "no TLS version or cipher in common")
        }
        TlsFailure::NotTls { .. } => F(NotTls, "the port does not speak TLS"),
        TlsFailure::Alert { .. } | TlsFailure::Other(_) => F(TlsFailed, "the handshake failed"),
        TlsFailure::NoReply => NoAnswer("no_reply"),
        TlsFailure::Stalled { .. } => NoAnswer("stalled"),
        TlsFailure::Closed => NoAnswer("closed"),
        TlsFailure::Reset => NoAnswer("reset"),
    }
}

/// The TLS failure of kind `id`.
pub(crate) fn tls_failure(cx: &Ctx, id: FindingId) -> Option<Finding> {
    let (r, s) = cx.session_where(|_, s| {
        s.tls
            .as_ref()
            .and_then(|t| t.failure.as_ref())
            .and_then(|f| tls_kind(f).finding())
            == Some(id)
    })?;
    let t: &TlsFacts = s.tls.as_ref()?;
    let f = t.failure.as_ref()?;
    let h = Failed { cx, r, s, t };
    let (message, mut steps) = what_failed(&h, f)?;
    // A certificate's failure: the command that shows the chain as the server sends it (and,
    // self-signed, how to trust it here on purpose).
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
        Finding::new(id, message)
            .about(r.address)
            .explains(
                (cx.verdict == Verdict::TlsError)
                    .then(|| tls_kind(f).headline())
                    .flatten(),
            )
            .steps(steps)
            .rules_out(&[StepKind::TracePath, StepKind::FindDropRule]),
    )
}

/// A failed handshake, as its finding reads it: the check, the address, its session and TLS
/// facts.
struct Failed<'a, 'c> {
    cx: &'a Ctx<'c>,
    r: &'a AddressResult,
    s: &'a SessionFacts,
    t: &'a TlsFacts,
}

impl Failed<'_, '_> {
    /// The name the certificate must carry: the destination's (through a tunnel too).
    fn host(&self) -> String {
        self.cx.facts.target.host.to_string()
    }

    /// A step for the server's administrators, where its certificate is configured.
    fn renew(&self, what: &str) -> Step {
        Step::about(
            StepKind::FixCertificate,
            format!("{what} — on the server, where its TLS certificate is configured."),
            peer_machine(self.cx, self.r, self.s),
        )
    }
}

/// The words and steps for a failure of the handshake or the certificate; `None` for the
/// failures that are the service's (silence, a stall, a hang-up: `tls_kind`).
fn what_failed(h: &Failed, f: &TlsFailure) -> Option<(String, Vec<Step>)> {
    Some(match f {
        TlsFailure::Expired { not_after, subject } => expired(h, *not_after, subject),
        TlsFailure::NotYetValid {
            not_before,
            subject,
        } => not_yet_valid(*not_before, subject),
        TlsFailure::WrongName { presented } => wrong_name(h, presented),
        TlsFailure::SelfSigned => (
            format!(
                "The server presents a self-signed certificate ({}): no client trusts it unless \
                 told to.",
                h.t.chain
                    .first()
                    .map(|c| c.subject.clone())
                    .unwrap_or_default()
            ),
            vec![h.renew(
                "Use a certificate from a CA the clients trust, or install this one in the \
                 clients' trust stores on purpose",
            )],
        ),
        TlsFailure::UnknownIssuer {
            issuer,
            public_ca_elsewhere,
        } => unknown_issuer(h, issuer, *public_ca_elsewhere),
        TlsFailure::MissingIntermediate { issuer } => (
            format!(
                "The server sends its certificate without the intermediate certificate that \
                 links it to a trusted root: the leaf is issued by {issuer}, which it did not \
                 send and this machine does not know. Browsers often paper over a missing \
                 intermediate; other clients fail. (If {issuer} is a private CA that issued the \
                 leaf directly, this machine lacks its root certificate instead.)"
            ),
            vec![h.renew(
                "Configure the server with the full chain (the leaf followed by its \
                 intermediates, e.g. fullchain.pem)",
            )],
        ),
        TlsFailure::ClientCertRequired { issuers } => client_cert_required(issuers),
        TlsFailure::ProtocolMismatch {
            alert,
            incompatible,
        } => (
            mismatch_words(*alert, *incompatible),
            vec![h.renew("Enable TLS 1.2 or 1.3 with current cipher suites")],
        ),
        TlsFailure::NotTls { first_bytes } => not_tls(h, first_bytes),
        TlsFailure::Alert { alert } => tls_error_finding(h.cx, h.r, TlsError::Alert(*alert)),
        TlsFailure::Other(e) => tls_error_finding(h.cx, h.r, *e),
        TlsFailure::NoReply
        | TlsFailure::Stalled { .. }
        | TlsFailure::Closed
        | TlsFailure::Reset => return None,
    })
}

/// `tls_expired`: when, and whether this machine's clock is the one that is wrong.
fn expired(h: &Failed, not_after: i64, subject: &str) -> (String, Vec<Step>) {
    let now = now_unix();
    let clock = if now < not_after {
        format!(
            " This machine's clock says {}, before that date: if the clock is wrong, fix it \
             (`timedatectl`).",
            utc(now)
        )
    } else {
        String::new()
    };
    (
        format!(
            "The certificate {subject} expired on {}.{clock}",
            utc(not_after)
        ),
        vec![h.renew("Renew the certificate and reload the server")],
    )
}

/// `tls_not_yet_valid`: this machine's clock, or a certificate issued for the future.
fn not_yet_valid(not_before: i64, subject: &str) -> (String, Vec<Step>) {
    (
        format!(
            "The certificate {subject} is valid only from {}; this machine's clock says {}. \
             Either this machine's clock is behind (check `timedatectl`), or the certificate was \
             issued for the future.",
            utc(not_before),
            utc(now_unix())
        ),
        vec![Step::run(
            StepKind::CheckLocalSettings,
            "Check this machine's clock and its time synchronisation",
            Command::Timedatectl,
            Machine::This,
        )],
    )
}

/// `tls_wrong_name`: the names it has, and two ways out.
fn wrong_name(h: &Failed, presented: &[String]) -> (String, Vec<Step>) {
    let host = h.host();
    let has = if presented.is_empty() {
        h.t.chain
            .first()
            .map(names)
            .unwrap_or_else(|| "nothing".into())
    } else {
        presented.join(", ")
    };
    (
        format!(
            "The certificate is not valid for {host}: it names {has}. Either the client uses \
             another name than the one the certificate was made for, or the server sends the \
             wrong certificate (a default virtual host, a missing SNI configuration)."
        ),
        vec![
            Step::about(
                StepKind::PointClient,
                "Connect with one of the names the certificate is valid for.",
                Machine::This,
            ),
            h.renew(&format!(
                "Or issue a certificate that includes {host}, and make the server send it for \
                 this name (SNI)"
            )),
        ],
    )
}

/// `tls_unknown_issuer`: a public CA this machine lacks (its store is stale, or TLS is
/// intercepted), or a private one.
fn unknown_issuer(h: &Failed, issuer: &str, public_ca_elsewhere: bool) -> (String, Vec<Step>) {
    if public_ca_elsewhere {
        (
            format!(
                "The certificate is issued by {issuer}, a public CA, but this machine's trust \
                 store does not contain it ({} anchors): the store is out of date, or a proxy \
                 intercepts TLS and SSL_CERT_FILE / SSL_CERT_DIR point elsewhere.",
                h.t.trust_anchors
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
                "The certificate is issued by {issuer}, which this machine does not trust: a \
                 private CA (install its root certificate on this machine if it is your \
                 organisation's) or an intercepting proxy."
            ),
            vec![trust_ca()],
        )
    }
}

/// `tls_client_cert_required`: the issuers the server accepts.
fn client_cert_required(issuers: &[String]) -> (String, Vec<Step>) {
    (
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
            "Configure the client with a certificate and key from one of those issuers, or ask \
             the server's owner for one.",
            Machine::This,
        )],
    )
}

/// `not_tls`: what the port answered instead.
fn not_tls(h: &Failed, first_bytes: &[u8]) -> (String, Vec<Step>) {
    (
        format!(
            "Port {} does not speak TLS: it answered the TLS ClientHello with `{}`. The client \
             should speak that protocol (plain HTTP?), or the TLS service is on another port.",
            peer_port(h.cx, h.s),
            first_line(first_bytes)
        ),
        vec![Step::about(
            StepKind::PointClient,
            "Use the plain protocol on this port (e.g. http:// instead of https://), or the port \
             where the TLS service listens.",
            Machine::This,
        )],
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
pub(super) fn mismatch_words(
    alert: Option<TlsAlert>,
    incompatible: Option<Incompatible>,
) -> String {
    let what = match (alert, incompatible) {
        (Some(a), _) => {
            let (w, _, _) = errors::alert_words(a);
            format!("The server ended the handshake: {w}")
        }
        (None, Some(i)) => format!(
            "The server and this client share {}",
            errors::incompatible_words(i)
        ),
        (None, None) => "The server and this client share no TLS version or cipher suite".into(),
    };
    format!(
        "{what}. This client speaks TLS 1.2 and 1.3 with current cipher suites; a server that \
         speaks only TLS 1.0/1.1 or old ciphers is out of date."
    )
}

/// `tls_failed`'s words and steps, from the one table (`errors`): what happened, and a step
/// for whoever can fix it.
fn tls_error_finding(cx: &Ctx, r: &AddressResult, e: TlsError) -> (String, Vec<Step>) {
    let (words, fixer, fix) = errors::error_words(e);
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

pub(crate) fn names(c: &CertFacts) -> String {
    let mut n: Vec<String> = c.dns_names.clone();
    n.extend(c.ip_addresses.iter().map(|i| i.to_string()));
    if n.is_empty() {
        format!("no names (subject {})", c.subject)
    } else {
        n.join(", ")
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The server answered a TLS handshake as a TLS server does: it completed, or the server
/// sent its certificate, an alert, or a refusal in TLS.
pub(super) fn spoke_tls(t: &TlsFacts) -> bool {
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
pub(super) fn tls_confirm_words(t: &TlsFacts) -> String {
    let mut parts = vec![];
    if let Some(v) = version_words(t) {
        parts.push(v);
    }
    if let Some(leaf) = t.chain.first() {
        parts.push(format!("certificate for {}", names(leaf)));
    }
    if let Some(h) = t.failure.as_ref().and_then(|f| tls_kind(f).headline()) {
        parts.push(format!("not accepted here: {h}"));
    }
    if parts.is_empty() {
        parts.push("a TLS answer".into());
    }
    parts.join(", ")
}

/// Why a handshake shows no TLS server.
pub(super) fn not_tls_words(t: &TlsFacts) -> String {
    match &t.failure {
        Some(TlsFailure::NotTls { first_bytes }) => {
            format!("the port answered `{}`", first_line(first_bytes))
        }
        Some(TlsFailure::NoReply) => "nothing came back".into(),
        Some(TlsFailure::Stalled { .. }) => "the answer stopped halfway".into(),
        Some(TlsFailure::Closed) => "the port closed the connection".into(),
        Some(TlsFailure::Reset) => "the port reset the connection".into(),
        Some(TlsFailure::Other(e)) => errors::error_words(*e).0,
        _ => "no TLS answer".into(),
    }
}

pub(super) fn version_words(t: &TlsFacts) -> Option<String> {
    use crate::session::tls::TlsVersion;
    Some(match t.version? {
        TlsVersion::Tls12 => "TLS 1.2".to_string(),
        TlsVersion::Tls13 => "TLS 1.3".to_string(),
        TlsVersion::Other(v) => format!("TLS 0x{v:04x}"),
    })
}

/// The server answered the TLS handshake, but only after the wait that a black hole test
/// allows (1 s): slow, not unreachable.
pub(crate) fn slow_handshake(cx: &Ctx) -> Option<Finding> {
    let (r, s) = cx.session_where(|r, s| s.tls.as_ref().is_some_and(|t| slow(t, r)))?;
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
pub(crate) fn tls_not_verified(cx: &Ctx) -> Option<Finding> {
    let (r, s) = cx.session_where(|_, s| s.tls.as_ref().is_some_and(|t| t.unverified.is_some()))?;
    let u = s.tls.as_ref()?.unverified.as_ref()?;
    let host = cx.facts.target.host.to_string();
    let (message, steps) = match &u.would_fail {
        Some(f) => (
            format!(
                "Certificate verification was SKIPPED (--insecure): the connection is \
                 encrypted, but nothing proves the server is {host}'s. Verified, it would have \
                 failed: {}. Clients that verify fail here.",
                tls_kind(f)
                    .headline()
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
        Finding::new(FindingId::TlsNotVerified, message)
            .about(r.address)
            .steps(steps),
    )
}
