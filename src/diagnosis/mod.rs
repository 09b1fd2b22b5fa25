//! Facts in, report out: the one place where canreach's knowledge lives.
//!
//! [`diagnose`] is a pure function. It judges each address (`judge`, from the kernel's answer
//! and all that was learnt about it), folds the outcomes into one [`Verdict`], then asks every
//! finding's rule, strongest first, whether its evidence is there (`rule`, made from the
//! catalog: one entry per finding, `catalog.rs`), plans the steps once (`plan`) and writes the
//! summary from the strongest finding that explains the verdict (`summary`). The result is a
//! [`Report`]: renderers, workflows and the exporter read it and judge nothing again. No I/O
//! happens here, so every rule is unit-tested on fixtures. The evidence behind the rules is in
//! `docs/ground-truth/`; every verdict and finding is listed in `docs/verdicts.md`.
//!
//! | module | findings about |
//! |---|---|
//! | `address` | what the kernel said for each address: reset, reject, unreachable, silence |
//! | `silence` | a silent or undeliverable address: is the host up, where packets die |
//! | `local` | this machine: listeners, owners, usual servers, its firewall |
//! | `dns` | the name: failure kinds, hosts file against DNS, servers, search domains |
//! | `program` | what the program behind an open port did: hung up, greeted, refused, never replied, never took the connection |
//! | `proxy` | the application's proxy: which applies, its refusals, the direct path |
//! | `tls` | the handshake and the certificate, a slow handshake, `--insecure` |
//! | `http` | statuses, redirects, not HTTP, plain HTTP to a TLS port |
//! | `mtu` | path-MTU black holes |
//! | `udp` | UDP targets: an answer, port-unreachable, a reject, silence (open\|filtered) |
//! | `service` | what a service said in its own protocol (PostgreSQL, Redis, MySQL/MariaDB …) |
//! | `advertised` | the members a MongoDB replica set and the brokers a Kafka cluster advertise, as reached from here |

mod address;
pub(crate) mod advertised;
mod advice;
mod catalog;
mod commands;
mod context;
pub(crate) mod dns;
mod finding;
pub(crate) mod http;
mod judge;
pub(crate) mod local;
pub(crate) mod mtu;
mod outcome;
mod plan;
mod program;
mod proxy;
mod report;
pub(crate) mod service;
mod silence;
mod summary;
pub(crate) mod tls;
mod udp;
pub(crate) mod views;
pub(crate) mod words;

use crate::dns::DnsErrorKind;
use crate::facts::Facts;
use judge::ProxyRefusal;

pub(crate) use advice::{Machine, StepKind};
use context::Ctx;
pub use dns::port53_tcp;
pub use finding::FindingId;
pub(crate) use finding::{Finding, Severity};
use judge::{dns_failure_of, judge};
pub(crate) use outcome::Sender;
pub(crate) use outcome::{AddressResult, Evidence, Outcome, Verdict, classify};
pub use plan::PlannedStep;
pub(crate) use report::{AddressReport, MemberReport, Report};
pub(crate) use words::{errno_name, errno_text, fmt_duration, fmt_given};

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
    let advertised: Vec<report::MemberReport> = facts
        .advertised
        .iter()
        .flat_map(|a| &a.members)
        .map(|m| report::MemberReport {
            member: m.clone(),
            reach: advertised::reach(m),
            results: m.probes.iter().map(classify).collect(),
        })
        .collect();
    let cx = Ctx {
        facts: &facts,
        verdict,
        liveness: liveness.as_ref(),
        path: path.as_ref(),
        dns_error: dns_error.as_ref(),
        direct: &direct,
    };
    let udp = facts.checked().transport.is_udp();
    let mut findings: Vec<Finding> = FindingId::ALL
        .iter()
        .filter(|id| udp::applies(**id, udp))
        .flat_map(|id| rule(*id, &cx))
        .collect();
    order_by_address(&mut findings, &facts.addresses);
    let here = plan::Here {
        privileged: facts.privileged,
        systemd: facts.local.as_ref().map(|l| l.systemd),
    };
    let steps = plan::plan(&findings, &ruled_out_by_facts(&cx), here);
    // It names the target and may quote outside text: escaped once, for every format.
    let summary = crate::escape::escape_owned(summary::summarize(&cx, &findings));
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
        advertised,
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

#[cfg(test)]
mod service_tests;
#[cfg(test)]
mod session_tests;
#[cfg(test)]
mod tests;
