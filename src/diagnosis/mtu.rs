//! Path-MTU black holes: the TLS handshake stalled and a connection with a smaller MSS, beside
//! it, got the server's certificates through (`judge::black_hole` holds the evidence).

use super::advice::{Machine, Step, StepKind};
use super::commands::Command;
use super::context::Ctx;
use super::finding::{Finding, FindingId};
use super::judge::{BlackHole, black_hole};
use super::outcome::{Outcome, Verdict};
use super::words::{errno_name, errno_text, fmt_duration};
use crate::session::SessionFacts;
use crate::session::mss::MssFailure;
use crate::session::tls::TlsFailure;

/// The handshake stalled or got nothing, and a smaller MSS, beside it, got the server's
/// certificates through (see [`black_hole`] for what that takes).
pub(crate) fn mtu_blackhole(cx: &Ctx) -> Option<Finding> {
    let (r, s) = cx.session_where(|r, _| r.outcome == Outcome::MtuBlackhole)?;
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
        .explains((cx.verdict == Verdict::MtuBlackhole).then_some(
            "large packets vanish on the way (a path-MTU black hole): the handshake stalled, and \
             completed with smaller segments",
        ))
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

/// What the reduced-MSS retry showed, when it was made and the path is not to blame.
pub(super) fn retry_words(s: &SessionFacts) -> String {
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

/// Why the reduced-MSS connection was not made.
pub(crate) fn mss_failure_words(f: MssFailure) -> String {
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
