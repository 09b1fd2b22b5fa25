//! What silence means: the host's liveness, the second SYN, and where on the path packets die.
//!
//! Reads the `Silence` and `TraceFacts` the pipeline gathered for a silent or undeliverable
//! address and turns them into views (for the renderers) and findings (with steps).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::advice::{Machine, Step, StepKind};
use super::commands::Command;
use super::finding::{Finding, FindingId};
use super::{Ctx, Outcome, Verdict, classify, fmt_duration};
use crate::facts::Silence;
use crate::icmp::Meaning;
use crate::liveness::{router_says_unreachable, target_answered};
use crate::probe::{ConnectResult, ProbeFact};
use crate::trace::TraceFacts;

/// Is the host up, and on what evidence?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Liveness {
    pub address: IpAddr,
    /// `Some(true)`: some port of the host answered; `Some(false)`: a router reports it
    /// undeliverable; `None`: nothing answered — down, or everything to it is dropped.
    pub alive: Option<bool>,
    pub probes: Vec<LivenessProbe>,
    /// The second SYN to the silent port, sent once the host was seen up.
    pub second_syn: Option<LivenessProbe>,
    /// When `filtered` was concluded before the deadline: how long the second SYN was given.
    pub decided_after: Option<Duration>,
    /// When the silence may have been a router's spent ICMP budget: how long after the first
    /// SYN the port was given, for the kernel's retransmission to meet a refilled budget.
    pub retransmit_wait: Option<Duration>,
}

/// One liveness probe as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LivenessProbe {
    pub port: u16,
    /// `None`: still no answer when probing ended.
    pub outcome: Option<Outcome>,
    pub elapsed: Option<Duration>,
    /// The answer came from the target itself (so the host is up).
    pub answered_by_target: bool,
}

fn liveness_probe(port: u16, fact: Option<&ProbeFact>, target: IpAddr) -> LivenessProbe {
    match fact {
        Some(f) if f.result != ConnectResult::TimedOut || f.icmp.is_some() => LivenessProbe {
            port,
            outcome: Some(classify(f).outcome),
            elapsed: Some(f.elapsed),
            answered_by_target: target_answered(f, target),
        },
        _ => LivenessProbe {
            port,
            outcome: None,
            elapsed: None,
            answered_by_target: false,
        },
    }
}

/// Interpret one address's silence facts.
pub fn liveness(address: SocketAddr, s: &Silence) -> Liveness {
    let ip = address.ip();
    let probes: Vec<LivenessProbe> = s
        .liveness
        .iter()
        .map(|(port, f)| liveness_probe(*port, f.as_ref(), ip))
        .collect();
    let answered: Vec<&ProbeFact> = s.liveness.iter().filter_map(|(_, f)| f.as_ref()).collect();
    let alive = if probes.iter().any(|p| p.answered_by_target) {
        Some(true)
    } else if answered.iter().any(|f| router_says_unreachable(f, ip)) {
        // A router that cannot deliver to the address at all (ARP/ND failed) settles it, even
        // if ICMP rate limits left the other ports without an answer yet.
        Some(false)
    } else {
        None
    };
    Liveness {
        address: ip,
        alive,
        probes,
        second_syn: s
            .second_syn
            .as_ref()
            .map(|f| liveness_probe(address.port(), Some(f), ip)),
        decided_after: s.decided_after,
        retransmit_wait: s.retransmit_wait,
    }
}

/// What came back for one TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HopKind {
    /// A router on the way: ICMP time-exceeded.
    TimeExceeded,
    /// The target itself answered (handshake, reset, or its own ICMP): the path ends here.
    ReachedTarget,
    /// A device reported the destination unreachable or prohibited.
    Unreachable,
    NoAnswer,
}

/// One hop as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub ttl: u8,
    pub address: Option<IpAddr>,
    pub elapsed: Option<Duration>,
    pub kind: HopKind,
}

/// A device on the path, by its hop number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Responder {
    pub ttl: u8,
    pub address: IpAddr,
}

/// The path walk as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub address: SocketAddr,
    /// Hops up to the first that reached the target, or one past the last that answered.
    pub hops: Vec<Hop>,
    /// The farthest device that answered, when the target was not reached.
    pub last_responding: Option<Responder>,
    /// The TTL at which the target itself answered.
    pub reached_at: Option<u8>,
    pub elapsed: Duration,
}

/// Interpret the raw walk.
pub fn path(t: &TraceFacts) -> Path {
    let target = t.address.ip();
    let all: Vec<Hop> = t
        .hops
        .iter()
        .map(|(ttl, f)| {
            let Some(f) = f else {
                return Hop {
                    ttl: *ttl,
                    address: None,
                    elapsed: None,
                    kind: HopKind::NoAnswer,
                };
            };
            let (address, kind) = match f.icmp {
                Some(i) if i.meaning() == Meaning::TimeExceeded => (i.from, HopKind::TimeExceeded),
                _ if target_answered(f, target) => (Some(target), HopKind::ReachedTarget),
                Some(i) => (i.from, HopKind::Unreachable),
                None if f.result == ConnectResult::TimedOut => (None, HopKind::NoAnswer),
                // A local error (no route): nothing left this machine.
                None => (None, HopKind::Unreachable),
            };
            Hop {
                ttl: *ttl,
                address,
                elapsed: (kind != HopKind::NoAnswer).then_some(f.elapsed),
                kind,
            }
        })
        .collect();
    let reached_at = all
        .iter()
        .find(|h| h.kind == HopKind::ReachedTarget)
        .map(|h| h.ttl);
    let last_responding = all
        .iter()
        .filter(|h| matches!(h.kind, HopKind::TimeExceeded | HopKind::Unreachable))
        .filter(|h| reached_at.is_none_or(|r| h.ttl < r))
        .filter_map(|h| {
            h.address.map(|address| Responder {
                ttl: h.ttl,
                address,
            })
        })
        .next_back();
    let keep = match (reached_at, last_responding) {
        (Some(r), _) => r,
        (None, Some(r)) => r.ttl.saturating_add(1),
        (None, None) => 1,
    };
    Path {
        address: t.address,
        hops: all.into_iter().filter(|h| h.ttl <= keep).collect(),
        last_responding: if reached_at.is_some() {
            None
        } else {
            last_responding
        },
        reached_at,
        elapsed: t.elapsed,
    }
}

/// The liveness of the first address, when the verdict rests on its silence (or on a device
/// that could not deliver to it).
fn silent_liveness<'a>(cx: &'a Ctx) -> Option<&'a Liveness> {
    let first = cx.failed_first()?;
    let silent = matches!(first.outcome, Outcome::Filtered | Outcome::Unreachable);
    (silent && cx.verdict != Verdict::Partial)
        .then_some(cx.liveness)
        .flatten()
}

/// The host answers on other ports; this one is quiet.
pub fn host_up_port_dropped(cx: &Ctx) -> Option<Finding> {
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
pub fn host_down(cx: &Ctx) -> Option<Finding> {
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
                cx.target().host,
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
pub fn host_not_answering(cx: &Ctx) -> Option<Finding> {
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
                cx.target().host
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
pub fn path_ends_after(cx: &Ctx) -> Option<Finding> {
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
                    cx.target().host
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
pub fn path_no_answer(cx: &Ctx) -> Option<Finding> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{Icmp, ProbeSpec};

    const T: &str = "198.18.2.2:5432";

    fn fact(result: ConnectResult, icmp: Option<(u8, u8, &str)>, ttl: Option<u8>) -> ProbeFact {
        ProbeFact {
            spec: ProbeSpec {
                address: T.parse().unwrap(),
                ttl,
            },
            result,
            elapsed: Duration::from_micros(400),
            icmp: icmp.map(|(kind, code, from)| Icmp {
                v6: false,
                kind,
                code,
                from: Some(from.parse().unwrap()),
            }),
            local: None,
        }
    }
    fn refused() -> ConnectResult {
        ConnectResult::Failed {
            errno: libc::ECONNREFUSED,
        }
    }
    fn unreach() -> ConnectResult {
        ConnectResult::Failed {
            errno: libc::EHOSTUNREACH,
        }
    }

    #[test]
    fn a_reset_on_another_port_means_alive() {
        let s = Silence {
            liveness: vec![(22, Some(fact(refused(), None, None))), (443, None)],
            second_syn: Some(fact(ConnectResult::TimedOut, None, None)),
            decided_after: Some(Duration::from_millis(200)),
            retransmit_wait: None,
        };
        let l = liveness(T.parse().unwrap(), &s);
        assert_eq!(l.alive, Some(true));
        assert_eq!(l.probes[0].outcome, Some(Outcome::Closed));
        assert_eq!(l.probes[1].outcome, None);
        assert_eq!(l.second_syn.as_ref().unwrap().outcome, None);
    }

    #[test]
    fn router_unreachable_on_every_port_means_down_and_silence_means_unknown() {
        let ur = || Some(fact(unreach(), Some((3, 1, "198.18.1.1")), None));
        let s = Silence {
            liveness: vec![(22, ur()), (443, ur())],
            second_syn: None,
            decided_after: None,
            retransmit_wait: None,
        };
        assert_eq!(liveness(T.parse().unwrap(), &s).alive, Some(false));
        let s = Silence {
            liveness: vec![(22, None), (443, ur())],
            ..s
        };
        assert_eq!(
            liveness(T.parse().unwrap(), &s).alive,
            Some(false),
            "rate-limited ICMP leaves some unanswered"
        );
        let s = Silence {
            liveness: vec![(22, None), (443, None)],
            ..s
        };
        assert_eq!(liveness(T.parse().unwrap(), &s).alive, None);
    }

    #[test]
    fn path_names_the_last_router_and_trims_the_silence() {
        let mut hops: Vec<(u8, Option<ProbeFact>)> = (1..=16).map(|t| (t, None)).collect();
        hops[0].1 = Some(fact(unreach(), Some((11, 0, "198.18.1.1")), Some(1)));
        let p = path(&TraceFacts {
            address: T.parse().unwrap(),
            hops,
            elapsed: Duration::from_millis(200),
        });
        assert_eq!(
            p.last_responding,
            Some(Responder {
                ttl: 1,
                address: "198.18.1.1".parse().unwrap()
            })
        );
        assert_eq!(p.reached_at, None);
        assert_eq!(p.hops.len(), 2);
        assert_eq!(p.hops[1].kind, HopKind::NoAnswer);
    }

    #[test]
    fn path_that_reaches_the_target_stops_there() {
        let mut hops: Vec<(u8, Option<ProbeFact>)> = (1..=16).map(|t| (t, None)).collect();
        hops[0].1 = Some(fact(unreach(), Some((11, 0, "198.18.1.1")), Some(1)));
        for (i, h) in hops.iter_mut().enumerate().skip(1) {
            h.1 = Some(fact(refused(), None, Some(i as u8 + 1)));
        }
        let p = path(&TraceFacts {
            address: T.parse().unwrap(),
            hops,
            elapsed: Duration::from_millis(1),
        });
        assert_eq!(p.reached_at, Some(2));
        assert_eq!(p.last_responding, None);
        assert_eq!(p.hops.len(), 2);
    }
}
