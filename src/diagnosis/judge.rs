//! What each address's facts mean, all of them taken together: [`judge`] starts from the
//! kernel's answer ([`super::outcome::classify`]) and weighs what else was learnt (a silence
//! the probe could not wait out, a reject too fast to be what it says, what happened after the
//! connect); and why a name gave no address ([`dns_failure_of`]).

use std::time::Duration;

use super::outcome::{AddressResult, Evidence, Outcome, classify};
use super::views;
use crate::dns::{DnsErrorKind, Lookup, LookupError};
use crate::facts::AddressFacts;
use crate::session::stage::MssRetry;
use crate::session::status::StatusSet;
use crate::session::tls::{TlsFacts, TlsFailure};
use crate::session::watch::{BannerKind, First};
use crate::session::{SessionFacts, ViaProxy};

/// What the kernel's answer for one address means, given what else was learnt about it: a
/// silence the probe could not wait out is `inconclusive`, not a drop; a "host unreachable" from
/// a device on the way that came far sooner than neighbour discovery fails, while the host
/// answers on other ports, is that device's firewall rejecting the port.
pub(crate) fn judge(a: &AddressFacts, expect: Option<StatusSet>) -> AddressResult {
    if a.udp.is_some() {
        return super::outcome::classify_udp(&a.probe);
    }
    let mut r = classify(&a.probe);
    let liveness = a.silence.as_ref().map(|s| views::liveness(r.address, s));
    if r.evidence == Evidence::Silence && r.outcome == Outcome::Filtered {
        let decided = a
            .silence
            .as_ref()
            .is_some_and(|s| s.decided_after.is_some());
        // The probe's own clock starts a hair after the pipeline's: allow for it.
        let waited = r.elapsed + Duration::from_millis(10);
        // On this machine the local bound is fair when nothing listens there (a reset would
        // have come). With a listener, the first SYN may have met a queue full for a moment:
        // only the kernel's retransmission, a full queue seen or a drop counted tells.
        let here_fair = a.here
            && waited >= crate::liveness::LOCAL_SILENCE
            && a.queue.as_ref().is_none_or(|q| {
                q.first.is_none()
                    || q.waited_retransmit
                    || q.listener_drops() > Some(0)
                    || [q.first, q.last].iter().flatten().any(|l| l.full())
            });
        let fair = decided || waited >= crate::liveness::FAIR_WAIT || here_fair;
        if !fair {
            r.outcome = Outcome::Inconclusive;
        }
    }
    if let (Outcome::Open, Some(s)) = (r.outcome, &a.session) {
        r.outcome = session_outcome(s, expect);
    }
    let alive = liveness.as_ref().and_then(|l| l.alive) == Some(true);
    if alive
        && r.outcome == Outcome::Unreachable
        && crate::liveness::too_fast_to_be_unreachable(&a.probe, r.address.ip())
    {
        r.outcome = Outcome::Rejected;
    }
    r
}

/// Why a name failed, as one error in canreach's words. The direct DNS view is more precise
/// than `getaddrinfo`'s `EAI_*` codes, so its kind wins when it failed too; when DNS answered
/// but the system did not, the system's own kind stands.
pub(crate) fn dns_failure_of(sys: Option<&Lookup>, direct: Option<&Lookup>) -> LookupError {
    let d = direct.and_then(|d| d.error.as_ref());
    let s = sys.and_then(|s| s.error.as_ref());
    let chosen = match (d, s) {
        (Some(e), _) if e.kind != DnsErrorKind::Other => Some(e),
        (_, Some(e)) => Some(e),
        (d, None) => d,
    };
    chosen
        .cloned()
        .unwrap_or_else(|| LookupError::new(DnsErrorKind::Other))
}

/// What the session facts make of an address whose TCP handshake completed; `expect`: the
/// HTTP statuses that count as working (`--expect-status`; `None`: 2xx and 3xx).
pub(crate) fn session_outcome(s: &SessionFacts, expect: Option<StatusSet>) -> Outcome {
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
    if proxy_refusal(s).is_some() {
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
    // The service's own answer (PostgreSQL, Redis, MySQL …), after its TLS when it had one.
    if let Some(o) = super::service::outcome(s) {
        return o;
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

/// Is `status` a working answer: in `--expect-status`, or else 2xx or 3xx?
pub(crate) fn expected(status: u16, expect: Option<StatusSet>) -> bool {
    expect.unwrap_or_default().contains(status)
}

/// The evidence of a path-MTU black hole, when all of it is there.
pub(crate) struct BlackHole<'a> {
    pub first: &'a TlsFacts,
    pub retry: &'a MssRetry,
    pub second: &'a TlsFacts,
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
pub(crate) fn black_hole(s: &SessionFacts) -> Option<BlackHole<'_>> {
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

/// How a proxy did not let the session through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProxyRefusal {
    /// 407: it wants credentials.
    AuthRequired,
    /// 403: its policy refuses the destination.
    Forbidden,
    /// 502–504: its own way to the destination failed.
    UpstreamFailed,
    /// Another status, or no HTTP answer.
    ConnectFailed,
}

/// Did the proxy refuse the session, and how?
pub(crate) fn proxy_refusal(s: &SessionFacts) -> Option<ProxyRefusal> {
    match &s.via {
        Some(ViaProxy::Tunnel(c)) => match &c.response {
            Some(r) if r.status / 100 == 2 => None,
            Some(r) => Some(match r.status {
                407 => ProxyRefusal::AuthRequired,
                403 => ProxyRefusal::Forbidden,
                502..=504 => ProxyRefusal::UpstreamFailed,
                _ => ProxyRefusal::ConnectFailed,
            }),
            None => Some(ProxyRefusal::ConnectFailed),
        },
        // A forwarded request answered 407 is the proxy's own answer: it names itself.
        Some(ViaProxy::Forward) => s
            .http
            .as_ref()
            .and_then(|h| h.response.as_ref())
            .filter(|r| r.status == 407)
            .map(|_| ProxyRefusal::AuthRequired),
        None => None,
    }
}
