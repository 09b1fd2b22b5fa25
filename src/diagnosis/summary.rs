//! The report's one-sentence summary: the verdict, framed for the target, with why — in the
//! words of the strongest finding that explains it (its [`Headline`]), else the verdict's own.
//! No finding is named here: each rule decides whether its finding explains the verdict.

use super::context::Ctx;
use super::finding::{Finding, Headline};
use super::outcome::{Outcome, Verdict};
use super::proxy::through_proxy;

/// The summary of the check that `cx` describes, `findings` strongest first.
pub(crate) fn summarize(cx: &Ctx, findings: &[Finding]) -> String {
    let headline = findings.iter().find_map(|f| f.headline.as_ref());
    let Some(v) = &cx.facts.via else {
        return checked(cx, headline);
    };
    let dest = cx.facts.target.display();
    let proxy = format!(
        "{dest} goes through the proxy {} (from {})",
        v.endpoint.display(),
        v.proxy.variable
    );
    match headline {
        // The proxy answered, and did not open the way: that is the whole story.
        Some(Headline::ProxyRefused(why)) => {
            format!("{proxy}, which does not open the way: {why}.")
        }
        // Through a proxy, say so first: the verdict is about the path the application takes.
        _ => format!("{proxy}: {}", checked(cx, headline)),
    }
}

/// "db:5432 is rejected: why." — about what was checked (past an open tunnel, the
/// destination).
fn checked(cx: &Ctx, headline: Option<&Headline>) -> String {
    // Past an open tunnel (or a forwarded request) the answers are the destination's.
    let t = if through_proxy(cx) {
        cx.facts.target.display()
    } else if cx.checked().transport.is_udp() {
        format!("UDP {}", cx.checked().display())
    } else {
        cx.checked().display()
    };
    let why = match headline {
        Some(Headline::Why(why) | Headline::ProxyRefused(why)) => why.clone(),
        None => verdict_words(cx),
    };
    match cx.verdict {
        Verdict::Open => format!("{t} is open: {why}."),
        Verdict::Partial => format!("{t} is only partly reachable: {why}."),
        Verdict::DnsError => format!("{} {why}.", cx.checked().host),
        Verdict::ServiceError => {
            format!("{t} accepts connections, but the program behind the port fails: {why}.")
        }
        Verdict::TlsError => format!("{t} accepts connections, but TLS fails: {why}."),
        Verdict::MtuBlackhole => format!("{t} accepts connections, but {why}."),
        Verdict::Closed
        | Verdict::Rejected
        | Verdict::Filtered
        | Verdict::Unreachable
        | Verdict::Inconclusive => format!("{t} is {}: {why}.", cx.verdict.as_str()),
    }
}

/// Why, in the verdict's own words, when no finding explains it.
fn verdict_words(cx: &Ctx) -> String {
    let n = cx.results().count();
    match cx.verdict {
        Verdict::Open if n == 1 => "the connection was accepted".into(),
        Verdict::Open => format!("all {n} addresses accepted the connection"),
        Verdict::Partial => {
            let open = cx.results().filter(|a| a.outcome == Outcome::Open).count();
            format!("{open} of {n} addresses accepted the connection")
        }
        Verdict::Closed => format!(
            "the host answered, but nothing accepts connections on port {}",
            cx.port()
        ),
        Verdict::Rejected => "a firewall refused the connection".into(),
        Verdict::Filtered => "nothing answered, so something drops the packets silently".into(),
        Verdict::Unreachable => "the host cannot be reached from here".into(),
        Verdict::DnsError => "does not resolve to any address".into(),
        Verdict::Inconclusive => "the check ran out of time before the evidence was in".into(),
        Verdict::ServiceError => "it does not serve".into(),
        Verdict::TlsError => "the handshake did not complete".into(),
        Verdict::MtuBlackhole => "large packets vanish on the way".into(),
    }
}
