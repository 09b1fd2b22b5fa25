//! Facts in, diagnosis out: the one place where canreach's knowledge lives.
//!
//! [`diagnose`] is a pure function. It classifies each address ([`classify`]), folds the
//! outcomes into one [`Verdict`], then asks every finding rule, strongest first
//! ([`FindingId::ALL`]), whether its evidence is there ([`rule`]: one function per id), and
//! finally plans the steps once ([`plan::plan`]). No I/O happens here, so every rule is
//! unit-tested on fixtures. The evidence behind the rules is in `docs/ground-truth/`; every verdict
//! and finding is listed in `docs/verdicts.md`.
//!
//! | module | findings about |
//! |---|---|
//! | [`address`] | what the kernel said for each address: reset, reject, unreachable, silence |
//! | [`silence`] | a silent or undeliverable address: is the host up, where packets die |
//! | [`local`] | this machine: listeners, owners, usual servers, its firewall |
//! | [`dns`] | the name: failure kinds, hosts file against DNS, servers, search domains |

pub mod address;
pub mod advice;
mod catalog;
pub mod commands;
mod context;
pub mod dns;
pub mod finding;
mod judge;
pub mod local;
mod outcome;
pub mod plan;
mod report;
pub mod session;
pub mod silence;
pub mod tls_words;
pub mod views;
mod words;

use crate::dns::DnsErrorKind;
use crate::facts::Facts;

pub use advice::{Machine, Step, StepKind};
pub use context::Ctx;
pub use finding::{Finding, FindingId, Severity};
pub use judge::{dns_failure_of, judge};
pub use outcome::{AddressResult, Evidence, Outcome, Sender, Verdict, classify};
pub use plan::PlannedStep;
pub use report::{AddressReport, Report};
pub use words::{errno_name, errno_text, fmt_duration, fmt_given};

/// Makes [`rule`], the dispatch from each id to its rule, from the catalog's entries.
macro_rules! define_rule {
    ($(
        $variant:ident = $id:literal, $severity:ident $(($note:literal))? {
            evidence: $evidence:literal,
            says: $says:literal,
            advice: $advice:literal,
            rule: $rule:expr,
        },
    )*) => {
        /// The findings of id `id`: what its rule (the catalog's) finds in `cx`.
        fn rule(id: FindingId, cx: &Ctx) -> Vec<Finding> {
            match id {
                $(FindingId::$variant => ($rule)(cx).into_iter().collect(),)*
            }
        }
    };
}

catalog::catalog!(define_rule);

/// Judge each address, fold the results into one verdict, ask every rule (strongest first),
/// plan the steps once, and write the summary: the check's [`Report`].
pub fn diagnose(facts: Facts) -> Report {
    let expect = facts.expect_status;
    let facts = facts.map_addresses(|a| AddressReport {
        result: judge(&a, expect),
        facts: a,
    });
    let verdict = verdict_of(facts.addresses.iter().map(|a| &a.result));
    let first = facts.addresses.first().map(|a| a.result.address);
    let liveness = first.and_then(|a| facts.silence_of(a).map(|s| views::liveness(a, s)));
    let path = facts.trace.as_ref().map(views::path);
    let dns_error = (verdict == Verdict::DnsError)
        .then(|| dns_failure_of(facts.dns.system.as_ref(), facts.dns.direct.as_ref()));
    let direct: Vec<AddressResult> = facts
        .via
        .iter()
        .flat_map(|v| v.direct.probes.iter().map(classify))
        .collect();
    let cx = Ctx {
        facts: &facts,
        verdict,
        liveness: liveness.as_ref(),
        path: path.as_ref(),
        dns_error: dns_error.as_ref(),
        direct: &direct,
    };
    let mut findings: Vec<Finding> = FindingId::ALL
        .iter()
        .flat_map(|id| rule(*id, &cx))
        .collect();
    order_by_address(&mut findings, &facts.addresses);
    let here = plan::Here {
        privileged: facts.privileged,
        systemd: facts.local.as_ref().map(|l| l.systemd),
    };
    let steps = plan::plan(&findings, &ruled_out_by_facts(&cx), here);
    // It names the target and may quote outside text: escaped once, for every format.
    let summary = crate::escape::escape_owned(summarize(&cx, &findings));
    Report {
        facts,
        verdict,
        summary,
        findings,
        steps,
        liveness,
        path,
        dns_error,
        direct,
    }
}

/// Findings about the kernel's answers keep the places the strength order gives them as a
/// group, but among themselves follow the order clients try the addresses: the first address
/// decides the verdict, so its explanation comes first.
fn order_by_address(findings: &mut [Finding], addresses: &[AddressReport]) {
    let index = |f: &Finding| {
        f.about
            .and_then(|a| addresses.iter().position(|r| r.result.address == a))
    };
    let slots: Vec<usize> = (0..findings.len())
        .filter(|i| index(&findings[*i]).is_some())
        .collect();
    let mut group: Vec<Finding> = slots.iter().map(|i| findings[*i].clone()).collect();
    group.sort_by_key(|f| index(f));
    for (slot, f) in slots.into_iter().zip(group) {
        findings[slot] = f;
    }
}

fn verdict_of<'a>(addresses: impl Iterator<Item = &'a AddressResult>) -> Verdict {
    let addresses: Vec<&AddressResult> = addresses.collect();
    let Some(first) = addresses.first() else {
        return Verdict::DnsError;
    };
    let open = addresses
        .iter()
        .filter(|a| a.outcome == Outcome::Open)
        .count();
    if open == addresses.len() {
        Verdict::Open
    } else if open > 0 {
        Verdict::Partial
    } else {
        // When the failures disagree, the address the system tries first decides.
        first.outcome.verdict()
    }
}

/// Steps that what was already done makes pointless, whichever finding proposes them.
fn ruled_out_by_facts(cx: &Ctx) -> Vec<StepKind> {
    let mut out = Vec::new();
    // The walk ran: its hops are in the report.
    if cx.path.is_some() {
        out.push(StepKind::TracePath);
    }
    // The host's other ports were probed and one answered or a router spoke for it.
    if cx.liveness.is_some_and(|l| l.alive.is_some()) {
        out.push(StepKind::TryOtherPort);
    }
    // This machine's ruleset was read: its rules, if any, are named by a finding.
    if cx.facts.firewall.as_ref().is_some_and(|f| f.inspected) {
        out.push(StepKind::CheckLocalOutput);
    }
    // Every address is this machine's, and the report names the program and pid of every
    // listener on the port: `ss -ltnp` would show nothing more.
    let here = cx.first().is_some() && cx.results().all(|a| cx.is_here(a.address.ip()));
    if here
        && cx.facts.local.as_ref().is_some_and(|l| {
            !l.listeners.is_empty() && l.listeners.iter().all(|x| x.process.is_some())
        })
    {
        out.push(StepKind::CheckListening);
    }
    out
}

fn summarize(cx: &Ctx, findings: &[Finding]) -> String {
    let plain = summarize_checked(cx, findings);
    let refusal = findings.iter().find(|f| {
        matches!(
            f.id,
            FindingId::ProxyAuthRequired
                | FindingId::ProxyForbidden
                | FindingId::ProxyUpstreamFailed
                | FindingId::ProxyConnectFailed
        )
    });
    match (&cx.facts.via, refusal) {
        // The proxy answered, and did not open the way: that is the whole story.
        (Some(v), Some(f)) if cx.verdict == Verdict::ServiceError => format!(
            "{} goes through the proxy {} (from {}), which does not open the way: {}.",
            cx.facts.target.display(),
            v.endpoint.display(),
            v.proxy.variable,
            session::headline(f.id).unwrap_or("it refuses")
        ),
        // Through a proxy, say so first: the verdict is about the path the application takes.
        (Some(v), _) => format!(
            "{} goes through the proxy {} (from {}): {plain}",
            cx.facts.target.display(),
            v.endpoint.display(),
            v.proxy.variable
        ),
        (None, _) => plain,
    }
}

fn summarize_checked(cx: &Ctx, findings: &[Finding]) -> String {
    let target = cx.checked();
    // Past an open tunnel (or a forwarded request) the answers are the destination's.
    let t = if session::through_proxy(cx) {
        cx.facts.target.display()
    } else {
        target.display()
    };
    let addrs: Vec<&AddressResult> = cx.results().collect();
    let n = addrs.len();
    let count = |o: Outcome| addrs.iter().filter(|a| a.outcome == o).count();
    let has = |id: FindingId| findings.iter().any(|f| f.id == id);
    // This machine's own firewall, when it explains a failure, is the headline.
    if cx.verdict != Verdict::Open && has(FindingId::LocalFirewallOutput) {
        return format!(
            "{t} is {}: this machine's own firewall stops the connection on its way out.",
            cx.verdict.as_str()
        );
    }
    if cx.verdict == Verdict::Filtered && has(FindingId::ListenerNotAccepting) {
        return format!(
            "{t} is filtered: the program listening there is not accepting connections as \
             fast as they come (its accept queue filled up), so the kernel drops new ones \
             silently."
        );
    }
    if cx.verdict != Verdict::Open && has(FindingId::LocalFirewallInput) {
        return format!(
            "{t} is {}: this machine's own firewall stops the connection on its way in.",
            cx.verdict.as_str()
        );
    }
    match cx.verdict {
        Verdict::Open if n == 1 => format!("{t} is open: the connection was accepted."),
        Verdict::Open => format!("{t} is open: all {n} addresses accepted the connection."),
        Verdict::Partial => format!(
            "{t} is only partly reachable: {} of {n} addresses accepted the connection.",
            count(Outcome::Open)
        ),
        Verdict::Closed if cx.first().map(|a| a.evidence) == Some(Evidence::ConnectedToItself) => {
            format!(
                "{t} is closed: nothing listens there; the connection that seemed to succeed \
                 was canreach's own socket, connected to itself by the kernel."
            )
        }
        Verdict::Closed => format!(
            "{t} is closed: the host answered, but nothing accepts connections on port {}.",
            target.port
        ),
        Verdict::Rejected => match cx.first().and_then(AddressResult::sender) {
            Some((Sender::Target, _)) => {
                format!("{t} is rejected: the server's own firewall refused the connection.")
            }
            Some((Sender::ThisMachine, _)) => {
                format!(
                    "{t} is rejected: this machine's own firewall refused to send the connection."
                )
            }
            Some((Sender::OnTheWay, Some(dev))) => {
                format!("{t} is rejected: a firewall on the way, at {dev}, refused the connection.")
            }
            _ if matches!(
                cx.first().map(|a| a.evidence),
                Some(Evidence::LocalPolicy(_))
            ) =>
            {
                format!(
                    "{t} is rejected: this machine's own firewall refused to send the connection."
                )
            }
            _ => format!("{t} is rejected: a firewall refused the connection."),
        },
        Verdict::Filtered => {
            format!("{t} is filtered: nothing answered, so something drops the packets silently.")
        }
        Verdict::Unreachable => match cx.first().and_then(AddressResult::sender) {
            Some((Sender::ThisMachine, _)) => {
                format!("{t} is unreachable: this machine cannot find the host on its own network.")
            }
            Some((_, Some(dev))) => {
                format!("{t} is unreachable: {dev} reports that it cannot reach the host.")
            }
            _ => format!("{t} is unreachable: the host cannot be reached from here."),
        },
        Verdict::DnsError => format!("{} does not resolve to any address.", target.host),
        Verdict::Inconclusive => match cx.first().map(|a| a.evidence) {
            Some(Evidence::LocalError(_)) => {
                format!("{t} is inconclusive: this machine could not open a socket for the check.")
            }
            _ => format!(
                "{t} is inconclusive: the check ran out of time before the evidence was in."
            ),
        },
        Verdict::ServiceError => format!(
            "{t} accepts connections, but the program behind the port fails: {}.",
            findings
                .iter()
                .find_map(|f| session::clause(cx, f.id))
                .unwrap_or_else(|| "it does not serve".into())
        ),
        Verdict::TlsError => format!(
            "{t} accepts connections, but TLS fails: {}.",
            findings
                .iter()
                .find_map(|f| session::clause(cx, f.id))
                .unwrap_or_else(|| "the handshake did not complete".into())
        ),
        Verdict::MtuBlackhole => format!(
            "{t} accepts connections, but large packets vanish on the way (a path-MTU black \
             hole): the handshake stalled, and completed with smaller segments."
        ),
    }
}

/// The kind of a DNS failure, as a finding id.
pub fn dns_finding_id(kind: DnsErrorKind) -> FindingId {
    match kind {
        DnsErrorKind::Nxdomain => FindingId::DnsNxdomain,
        DnsErrorKind::Nodata => FindingId::DnsNodata,
        DnsErrorKind::Servfail => FindingId::DnsServfail,
        DnsErrorKind::Refused => FindingId::DnsRefused,
        DnsErrorKind::Timeout => FindingId::DnsTimeout,
        DnsErrorKind::NoNameservers => FindingId::DnsNoNameservers,
        DnsErrorKind::Other => FindingId::DnsFailed,
    }
}

#[cfg(test)]
mod tests;
