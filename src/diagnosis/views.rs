//! What a silent or undeliverable address's facts show, as reports show them: is the host up
//! ([`Liveness`], from the other ports and the second SYN), and where packets go ([`Path`],
//! from the walk).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::outcome::{Outcome, classify};
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
pub(crate) fn liveness(address: SocketAddr, s: &Silence) -> Liveness {
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
pub(crate) fn path(t: &TraceFacts) -> Path {
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
                keep: false,
            },
            result,
            elapsed: Duration::from_micros(400),
            icmp: icmp.map(|(kind, code, from)| Icmp::v4(kind, code, from)),
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
