//! What silence means: the host's liveness, the second SYN, and where on the path packets die.
//!
//! Findings from the views of a silent or undeliverable address (`super::views`).

use std::time::Duration;

use super::advice::{Machine, Step, StepKind};
use super::commands::Command;
use super::context::Ctx;
use super::finding::{Finding, FindingId};
use super::outcome::{Outcome, Verdict};
use super::views::{Liveness, Path, Responder};
use super::words::fmt_duration;

/// The liveness of the first address, when the verdict rests on its silence (or on a device
/// that could not deliver to it).
fn silent_liveness<'a>(cx: &'a Ctx) -> Option<&'a Liveness> {
    let first = cx.failed_first()?;
    let silent = matches!(first.outcome, Outcome::Filtered | Outcome::Unreachable);
    (silent && cx.verdict != Verdict::Partial)
        .then_some(cx.liveness)
        .flatten()
}

/// The host answers on other ports; this one gets no answer.
pub(crate) fn host_up_port_dropped(cx: &Ctx) -> Option<Finding> {
    let l = silent_liveness(cx).filter(|l| l.alive == Some(true))?;
    let p = l.probes.iter().find(|p| p.answered_by_target)?;
    let port = cx.port();
    let early = l.decided_after.map_or(String::new(), |b| {
        format!(
            " A second SYN to port {port} also went unanswered for {}, many times the host's \
             round-trip time, so this is not a lost packet.{}",
            fmt_duration(b),
            rate_limit_words(l)
        )
    });
    let server = cx.server_of(l.address);
    Some(
        Finding::new(
            FindingId::HostUpPortDropped,
            format!(
                "The host {} is up (port {} answered: {} in {}) but port {port} gets no answer: \
                 a firewall drops it — on the server, or on the way for this port only — or the \
                 program listening there is not accepting connections (a full accept queue drops \
                 new connections silently too).{early}",
                l.address,
                p.port,
                p.outcome.map_or("answered", |o| o.as_str()),
                p.elapsed.map(fmt_duration).unwrap_or_default(),
            ),
        )
        .steps([
            Step::run(
                StepKind::FindDropRule,
                format!("Look for a rule that drops port {port} in the server's firewall"),
                Command::NftGrep {
                    port,
                    verdict: Some("drop"),
                },
                server.clone(),
            ),
            Step::run(
                StepKind::CheckListening,
                "Check that the service listens at all (a drop hides a closed port too), and \
                 that it accepts: Recv-Q above Send-Q means its accept queue is full",
                Command::SsListening { port },
                server,
            ),
        ])
        .rules_out(&[StepKind::TryOtherPort]),
    )
}

/// What a router's ICMP rate limit may have to do with this silence, after the second SYN's
/// verdict (see `liveness::retransmit_wait`): said once, here, for every silent port on a live
/// host whose routers the walk could not show answering.
fn rate_limit_words(l: &Liveness) -> String {
    let Some(wait) = l.retransmit_wait else {
        // The walk showed every router up to where it ended answering: their budget was not
        // spent, so a reject of theirs would have come.
        return String::new();
    };
    let budget = "Not every router on the way answered the path walk, and routers send only \
                  about six ICMP errors at once to one machine, then one a second: checks run \
                  just before this one may have spent them, and a router's reject of this port \
                  is then held back as silently as a drop.";
    // The probe's own clock starts a hair after the pipeline's: allow for it.
    if wait + Duration::from_millis(10) >= crate::liveness::retransmit_wait(Duration::ZERO) {
        format!(
            " {budget} So the check waited for the kernel's retransmitted SYN ({} after the \
             first), when such a budget has refilled: no reject came either, so this is most \
             likely a drop — unless other checks from this machine keep that budget spent.",
            fmt_duration(wait)
        )
    } else {
        format!(
            " {budget} The deadline came {} after the first SYN, before the kernel's \
             retransmission ({} after it) could meet a refilled budget: this silence may hide \
             such a reject. Check again after a few seconds' pause, with a longer deadline, \
             before blaming a drop.",
            fmt_duration(wait),
            fmt_duration(crate::liveness::FIRST_RETRANSMISSION)
        )
    }
}

/// A router reports the host undeliverable on the liveness ports.
pub(crate) fn host_down(cx: &Ctx) -> Option<Finding> {
    let l = silent_liveness(cx).filter(|l| l.alive == Some(false))?;
    let ports: Vec<String> = l.probes.iter().map(|p| p.port.to_string()).collect();
    Some(
        Finding::new(
            FindingId::HostDown,
            format!(
                "{} is reported unreachable (ICMP host-unreachable from a router, or from this \
                 machine's own failed neighbour lookup) on the ports tried ({}): the host is \
                 down or not at that address.",
                l.address,
                ports.join(", ")
            ),
        )
        .steps([Step::about(
            StepKind::CheckHostUp,
            format!(
                "Check that {} is switched on and has the address {}.",
                cx.checked().host,
                l.address
            ),
            cx.server_of(l.address),
        )])
        // A host that is not there has no firewall rule or listener to hunt for.
        .rules_out(&[
            StepKind::FindDropRule,
            StepKind::FindRejectRule,
            StepKind::CheckListening,
            StepKind::TryOtherPort,
        ]),
    )
}

/// Neither the port nor any other port of the host answered.
pub(crate) fn host_not_answering(cx: &Ctx) -> Option<Finding> {
    let l = silent_liveness(cx).filter(|l| l.alive.is_none())?;
    let ports: Vec<String> = l.probes.iter().map(|p| p.port.to_string()).collect();
    Some(
        Finding::new(
            FindingId::HostNotAnswering,
            format!(
                "Nothing about {} answers: ports {} were silent too. The host is down, or a \
                 firewall drops everything sent to it from here.",
                l.address,
                ports.join(", ")
            ),
        )
        .steps([Step::about(
            StepKind::CheckHostUp,
            format!(
                "Ask whoever runs {} whether it is up, and whether its firewall (or the \
                 network's) drops traffic from this machine.",
                cx.checked().host
            ),
            cx.server_of(l.address),
        )])
        .rules_out(&[StepKind::TryOtherPort]),
    )
}

/// The walk's path when the verdict rests on silence or an undeliverable host.
fn silent_path<'a>(cx: &'a Ctx) -> Option<&'a Path> {
    let first = cx.failed_first()?;
    let silent = matches!(first.outcome, Outcome::Filtered | Outcome::Unreachable);
    (silent && cx.verdict != Verdict::Partial)
        .then_some(cx.path)
        .flatten()
}

/// The last device the SYN reached.
pub(crate) fn path_ends_after(cx: &Ctx) -> Option<Finding> {
    let p = silent_path(cx)?;
    let Responder { ttl, address: dev } = p.last_responding?;
    let port = cx.port();
    let ip = p.address.ip();
    Some(
        Finding::new(
            FindingId::PathEndsAfter,
            format!(
                "Your connection reaches {dev} (hop {ttl}) and goes no further: the block is at \
                 that device's firewall or after it — on the server or just before it."
            ),
        )
        .steps([
            Step::about(
                StepKind::AskOwners,
                format!(
                    "Ask the team that runs {dev} and the network beyond it (the network team), \
                     and whoever runs {}'s firewall, whether TCP port {port} from this machine \
                     to {ip} is blocked; send them this report.",
                    cx.checked().host
                ),
                Machine::Device(dev),
            ),
            Step::run(
                StepKind::FindDropRule,
                "If you run that device, look for the rule",
                Command::NftGrep {
                    port,
                    verdict: Some("drop"),
                },
                Machine::Device(dev),
            ),
        ])
        // A hop answered a SYN to this very port: this machine's output chain let it out.
        .rules_out(&[StepKind::CheckLocalOutput]),
    )
}

/// Not even the first hop answered.
pub(crate) fn path_no_answer(cx: &Ctx) -> Option<Finding> {
    let p = silent_path(cx)?;
    if p.last_responding.is_some() || p.reached_at.is_some() {
        return None;
    }
    // The host answered on other ports, so packets do reach it: a router that stays silent on
    // every TTL may only have spent its ICMP budget (about 6 errors a second per peer) on
    // checks just before this one. What that means for the verdict (the wait for the kernel's
    // retransmission, and what it found) is said once, by `host_up_port_dropped`.
    let host_up = cx
        .liveness
        .is_some_and(|l| l.alive == Some(true) && l.retransmit_wait.is_some());
    let rate_limit = if host_up {
        " The host answers on other ports, so packets reach it: the routers may only have \
         spent their ICMP budget (see above)."
    } else {
        ""
    };
    Some(
        Finding::new(
            FindingId::PathNoAnswer,
            format!(
                "Not even the first hop answered the path walk: this machine's own firewall \
                 (OUTPUT chain) or the first router drops the packets — or the routers on the way \
                 do not send ICMP time-exceeded.{rate_limit}"
            ),
        )
        .steps([Step::run(
            StepKind::CheckLocalOutput,
            "Rule out this machine's own firewall",
            Command::NftOutputChains,
            Machine::This,
        )]),
    )
}
