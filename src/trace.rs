//! Stage 3: where on the path do the packets die? A TCP traceroute without root.
//!
//! Hops are probed in waves of [`WAVE`] TTLs with a SYN to the target port whose TTL (IPv6:
//! hop limit) is the hop number, on an ordinary socket with `IP_RECVERR`: hop N answers with
//! ICMP time-exceeded, which lands in the socket's error queue with the hop's address (Linux ≥
//! 5.8; see `docs/ground-truth/linux-probing.md`). A router sends time-exceeded before its
//! forward-chain firewall runs, so the last hop that answers is the last device the SYN reached.
//!
//! The walk sends no more TTLs than it needs: the next wave goes out only when the last TTL of
//! the previous one answered time-exceeded, and the walk stops at the first hop that answers
//! with anything else (the target's handshake or reset, an unreachable) — TTLs past it would
//! only meet the same device again. An unreachable from a device already seen as an earlier hop
//! is that hop refusing to forward, not a new hop: it ends the walk without being numbered as
//! one. Routers rate-limit the ICMP they send to one peer (a burst of ~6, then 1/s), so every
//! TTL sent beyond the path's end spends some of the budget the next check needs.
//!
//! Packets: at most [`MAX_HOPS`] SYNs, [`WAVE`] for a path that ends at the first router or the
//! target behind it. A hop that answers only the kernel's retransmission (1 s, 3 s…) is timed
//! from that retransmission.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::icmp::Meaning;
use crate::liveness::{FIRST_RETRANSMISSION, silence_bound};
use crate::probe::{ConnectResult, Connector, ProbeFact, ProbeSpec};

/// Hops probed at most. Paths inside an organisation are short; the internet's median is ~15.
pub(crate) const MAX_HOPS: u8 = 16;

/// TTLs sent at once: most paths a check walks end within the first few hops, and each TTL
/// past the end costs a router ICMP from its rate-limit budget.
pub(crate) const WAVE: u8 = 3;

/// The longest a trace may take (it also ends at the check's deadline).
pub(crate) const BUDGET: Duration = Duration::from_millis(1500);

/// The raw facts of one walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceFacts {
    pub address: SocketAddr,
    /// One entry per TTL sent, from 1; `None` where nothing came back before the walk ended.
    /// A hop's `elapsed` is timed from the SYN it answered (the kernel's retransmission, when
    /// that is what it answered).
    pub hops: Vec<(u8, Option<ProbeFact>)>,
    pub elapsed: Duration,
}

/// The round-trip time of an answer that came `elapsed` after `connect()`: timed from the
/// SYN it answered — the first one, or the retransmission at 1 s (a walk never lasts until
/// the second one, [`BUDGET`]).
pub(crate) fn round_trip(elapsed: Duration) -> Duration {
    if elapsed >= FIRST_RETRANSMISSION && elapsed < BUDGET + FIRST_RETRANSMISSION {
        elapsed - FIRST_RETRANSMISSION
    } else {
        elapsed
    }
}

/// Did anything come back for this probe?
fn answered(f: &ProbeFact) -> bool {
    f.result != ConnectResult::TimedOut || f.icmp.is_some()
}

fn time_exceeded(f: &ProbeFact) -> bool {
    f.icmp.is_some_and(|i| i.meaning() == Meaning::TimeExceeded)
}

/// Does the walk show that every router up to where it ended still answers — so that their
/// ICMP budget (a burst of ~6 errors per peer, then 1 a second) was not spent when the check
/// ran? True when some TTL answered and no TTL before the last that answered stayed silent.
/// A silent hop before an answering one, or a walk where nothing answered, may be a router
/// whose budget earlier checks spent: then a reject of the port may have been held back too.
pub(crate) fn routers_answered(t: &TraceFacts) -> bool {
    let answered = |f: &Option<ProbeFact>| f.as_ref().is_some_and(answered);
    match t.hops.iter().rposition(|(_, f)| answered(f)) {
        Some(last) => t.hops[..=last].iter().all(|(_, f)| answered(f)),
        None => false,
    }
}

/// Walk the path to `address` until `deadline` (see [`walk_until`]).
pub(crate) async fn walk<C: Connector>(
    connector: &C,
    address: SocketAddr,
    deadline: Instant,
) -> TraceFacts {
    let (_keep, cut) = watch::channel(deadline);
    walk_until(connector, address, deadline, cut).await
}

/// An answer other than time-exceeded at `ttl`: the path ends there, or after an earlier
/// hop when that hop is the one refusing to forward (its address answered both).
fn path_ends(
    hops: &mut Vec<(u8, Option<ProbeFact>)>,
    end: &mut Option<u8>,
    ttl: u8,
    fact: ProbeFact,
) {
    let from: Option<IpAddr> = fact.icmp.and_then(|i| i.from);
    let seen = hops.iter().position(|(t, f)| {
        *t < ttl
            && f.as_ref()
                .is_some_and(|f| time_exceeded(f) && f.icmp.and_then(|i| i.from) == from)
    });
    let keep = match (from, seen) {
        // An earlier hop refusing to forward: the path ends after that hop.
        (Some(_), Some(i)) => {
            let hop = hops[i].0;
            *end = Some(end.map_or(hop, |e| e.min(hop)));
            hop + 1
        }
        _ => {
            hops[usize::from(ttl - 1)].1 = Some(fact);
            *end = Some(end.map_or(ttl, |e| e.min(ttl)));
            ttl
        }
    };
    hops.truncate(usize::from(keep.max(end.unwrap_or(keep))));
}

/// Walk the path to `address`. Ends when every TTL up to the path's end has answered, or once
/// the TTLs still silent have been so for [`silence_bound`] of the slowest answer since their
/// wave went out, or after [`BUDGET`], or at `deadline` — or at whatever earlier instant `cut`
/// is set to (the pipeline cuts a walk short once the verdict is in).
pub(crate) async fn walk_until<C: Connector>(
    connector: &C,
    address: SocketAddr,
    deadline: Instant,
    mut cut: watch::Receiver<Instant>,
) -> TraceFacts {
    let start = Instant::now();
    let deadline = deadline.min(start + BUDGET);
    let probe = move |ttl: u8, until: Instant| async move {
        let spec = ProbeSpec {
            address,
            ttl: Some(ttl),
            keep: false,
        };
        (ttl, connector.probe(spec, until).await)
    };
    let mut pending = FuturesUnordered::new();
    let mut hops: Vec<(u8, Option<ProbeFact>)> = Vec::new();
    // The TTL at which the path ends (the first answer other than time-exceeded).
    let mut end: Option<u8> = None;
    let mut wave_start = start;
    let mut slowest: Option<Duration> = None;
    let mut cut_open = true;
    loop {
        let sent = hops.len() as u8;
        let wave_done = sent > 0
            && hops[usize::from(sent - 1)]
                .1
                .as_ref()
                .is_some_and(time_exceeded);
        if end.is_none() && sent < MAX_HOPS && (sent == 0 || wave_done) {
            wave_start = Instant::now();
            for ttl in sent + 1..=(sent + WAVE).min(MAX_HOPS) {
                hops.push((ttl, None));
                pending.push(probe(ttl, deadline));
            }
            continue;
        }
        let limit = end.unwrap_or(sent);
        if hops[..usize::from(limit)].iter().all(|(_, f)| f.is_some()) {
            break;
        }
        let quiet = slowest.map_or(deadline, |s| wave_start + silence_bound(s));
        let stop = quiet.min(deadline).min(*cut.borrow());
        tokio::select! {
            biased;
            next = pending.next() => match next {
                Some((ttl, mut fact)) => {
                    if !answered(&fact) || end.is_some_and(|e| ttl > e) {
                        continue;
                    }
                    fact.elapsed = round_trip(fact.elapsed);
                    slowest = Some(slowest.map_or(fact.elapsed, |s| s.max(fact.elapsed)));
                    if time_exceeded(&fact) {
                        hops[usize::from(ttl - 1)].1 = Some(fact);
                        continue;
                    }
                    path_ends(&mut hops, &mut end, ttl, fact);
                }
                None => break,
            },
            r = cut.changed(), if cut_open => cut_open = r.is_ok(),
            _ = tokio::time::sleep_until(stop) => break,
        }
    }
    TraceFacts {
        address,
        hops,
        elapsed: start.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(ttl: u8, te: bool) -> (u8, Option<ProbeFact>) {
        let fact = te.then(|| ProbeFact {
            spec: ProbeSpec {
                address: "198.18.2.2:5432".parse().unwrap(),
                ttl: Some(ttl),
                keep: false,
            },
            result: ConnectResult::Failed {
                errno: libc::EHOSTUNREACH,
            },
            elapsed: Duration::from_micros(300),
            icmp: Some(crate::probe::Icmp {
                v6: false,
                kind: 11,
                code: 0,
                from: Some(format!("198.18.{ttl}.1").parse().unwrap()),
            }),
            local: None,
        });
        (ttl, fact)
    }

    fn walk(hops: &[bool]) -> TraceFacts {
        TraceFacts {
            address: "198.18.2.2:5432".parse().unwrap(),
            hops: hops
                .iter()
                .enumerate()
                .map(|(i, te)| hop(i as u8 + 1, *te))
                .collect(),
            elapsed: Duration::from_millis(200),
        }
    }

    #[test]
    fn routers_answer_when_no_hop_before_the_last_answer_is_silent() {
        // The first router answered; what lies beyond it is silent (a drop there or after it).
        assert!(routers_answered(&walk(&[true, false, false])));
        assert!(routers_answered(&walk(&[true, true, false])));
        // Nothing answered, or a router before an answering one was silent: its budget may
        // be spent.
        assert!(!routers_answered(&walk(&[false, false, false])));
        assert!(!routers_answered(&walk(&[false, true, false])));
        assert!(!routers_answered(&walk(&[])));
    }

    #[test]
    fn a_hop_is_timed_from_the_syn_it_answered() {
        let ms = Duration::from_millis;
        assert_eq!(round_trip(ms(3)), ms(3));
        assert_eq!(round_trip(ms(1002)), ms(2));
    }
}
