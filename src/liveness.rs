//! Stage 2b: when a port is silent, is the host there at all — and when may we stop waiting?
//!
//! A silent port proves nothing by itself: the host may be down, or a firewall may drop that
//! one port. Other TCP ports of the same host answer just as well as ping (which an
//! unprivileged process cannot send here): a reset from a closed port proves the host is up,
//! and its round-trip time tells how long an answer from the silent port would have taken.
//!
//! This module holds the constants and the two pure rules the pipeline uses; the probes are
//! ordinary [`crate::probe`] probes to other ports.

use std::net::IpAddr;
use std::time::Duration;

use crate::probe::{ConnectResult, ProbeFact};

/// Ports tried for liveness: common services, and a high port that is almost surely closed
/// (its reset proves the host is up as well as any open port).
pub(crate) const PORTS: [u16; 4] = [22, 443, 80, 65533];

/// How long the main probe may stay silent before liveness probes start, concurrently with it.
/// A LAN or a data centre answers in well under a millisecond and a region's network within
/// 10 ms, so a check that is going to answer there costs no extra packets; one whose answer
/// takes longer (another continent) sends the four liveness SYNs alongside it. Every
/// millisecond here is one more before a silent port of a live host is called `filtered`
/// (it was 25 ms: 0.84 × `nmap -sT`'s time to the same verdict, docs/benchmarks.md).
pub(crate) const DELAY: Duration = Duration::from_millis(10);

/// Floor of the silence bound: scheduling noise and a busy server's SYN-ACK latency are in
/// the milliseconds, so no port is called filtered sooner than this after the second SYN.
pub(crate) const MIN_SILENCE: Duration = Duration::from_millis(200);

/// How many round-trip times a second SYN is given before the port is called filtered.
pub(crate) const RTT_FACTOR: u32 = 4;

/// The kernel's first SYN retransmission, after `connect()` (the initial RTO). Later ones come
/// at 3 s (exponential backoff) or 2 s (Linux ≥ 6.x's `tcp_syn_linear_timeouts`).
pub(crate) const FIRST_RETRANSMISSION: Duration = Duration::from_secs(1);

/// How long an address of this machine may stay silent before it is called filtered: loopback
/// and local addresses answer in microseconds (the kernel completes or refuses the handshake
/// inside `connect()`), so silence there is this machine's own firewall or a listener that does
/// not accept — never a slow network.
pub(crate) const LOCAL_SILENCE: Duration = Duration::from_millis(200);

/// How long a silent probe must have waited, without liveness evidence, before its silence
/// counts as a drop (`filtered`) rather than as a probe that ran out of time
/// (`inconclusive`): the kernel's first SYN retransmission is at 1 s, and round trips above
/// a second do not happen on working paths.
pub(crate) const FAIR_WAIT: Duration = Duration::from_secs(1);

/// How long the first address waits for an answer when nothing at all answers (no liveness
/// evidence, no ICMP): a router's neighbour discovery for an absent host gives up after ~3 s
/// (three solicitations 1 s apart) and its host-unreachable then arrives at once, and the
/// kernel's retransmissions (1 s and 3 s; 1, 2 and 3 s with Linux ≥ 6.x's
/// `tcp_syn_linear_timeouts`) are answered within a round trip if at all. Past this nothing
/// new can arrive that an earlier SYN would not have met, so waiting for the deadline would
/// only add time.
pub(crate) const NEIGHBOUR_WAIT: Duration = Duration::from_millis(3100);

/// How long an address other than the first (which decides the verdict) waits without
/// evidence: just under the kernel's first SYN retransmission at 1 s (which still counts as a
/// fair wait, see [`FAIR_WAIT`] and the diagnosis' 10 ms allowance), so that 32 silent
/// addresses cost 32 SYNs, not 96.
pub(crate) const OTHER_WAIT: Duration = Duration::from_millis(990);

/// When the first address's path walk starts if the host has not been proven up: liveness
/// probes silent for [`MIN_SILENCE`] mean the host is absent or drops everything, and the walk
/// then finishes long before [`NEIGHBOUR_WAIT`] and before its SYNs' first retransmission.
pub(crate) const WALK_AFTER: Duration =
    Duration::from_millis(DELAY.as_millis() as u64 + MIN_SILENCE.as_millis() as u64);

/// A router's "host unreachable" for a host that is really absent comes after its neighbour
/// discovery gives up: about 3 s (docs/ground-truth/linux-probing.md). One much sooner is a firewall
/// rule answering that way, unless the host is down — which the liveness probes tell.
pub(crate) const NEIGHBOUR_BOUND: Duration = Duration::from_millis(2500);

/// Did a device on the way report the target undeliverable sooner than its neighbour discovery
/// could have failed? Then it is worth asking other ports whether the host is up.
pub(crate) fn too_fast_to_be_unreachable(fact: &ProbeFact, target: IpAddr) -> bool {
    fact.elapsed < NEIGHBOUR_BOUND
        && fact.icmp.is_some_and(|i| {
            i.meaning().undeliverable()
                && i.from.is_some()
                && !i.sent_by(target)
                && !fact.local.is_some_and(|l| i.sent_by(l.ip()))
        })
}

/// Did this probe get an answer from the target itself (so the host is up)?
/// A handshake, a reset, or an ICMP error sent by the target's own address all count; an ICMP
/// from a router does not: it proves only that the router is up.
pub(crate) fn target_answered(fact: &ProbeFact, target: IpAddr) -> bool {
    match fact.result {
        ConnectResult::Connected => true,
        // Its own socket answered, not the host.
        ConnectResult::ConnectedToItself => false,
        ConnectResult::Failed { errno } => match fact.icmp {
            Some(icmp) => icmp.sent_by(target),
            None => errno == libc::ECONNREFUSED,
        },
        ConnectResult::TimedOut => false,
    }
}

/// Did a router report the target undeliverable (host/net unreachable)?
pub(crate) fn router_says_unreachable(fact: &ProbeFact, target: IpAddr) -> bool {
    fact.icmp
        .is_some_and(|i| !i.sent_by(target) && i.meaning().undeliverable())
}

/// How long a second SYN must go unanswered, given the host's round-trip time, before the port
/// is called `filtered`. Both SYNs would have to be lost for an open or closed port to be
/// misjudged; and the wait is many RTTs, never less than [`MIN_SILENCE`].
pub(crate) fn silence_bound(rtt: Duration) -> Duration {
    (rtt * RTT_FACTOR).max(MIN_SILENCE)
}

/// How long after the first SYN a silent port on a live host is waited for when its silence
/// may be a router's spent ICMP budget rather than a drop: until the kernel's retransmitted SYN
/// has had the same [`silence_bound`] as the second SYN.
///
/// Routers send at most a burst of about six ICMP errors to one peer, then one a second
/// (Linux: `icmp_ratelimit` 1000 ms, burst factor 6; IPv6 alike, faster for shorter routes).
/// Checks run back to back spend that burst, and a reject of this port is then held back as
/// silently as a drop. By the retransmission, one second on, a token has refilled and the
/// reject arrives. The wait adds no packet: the kernel retransmits anyway.
pub(crate) fn retransmit_wait(rtt: Duration) -> Duration {
    FIRST_RETRANSMISSION + silence_bound(rtt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Icmp;

    fn fact(result: ConnectResult, icmp_from: Option<&str>, code: u8) -> ProbeFact {
        ProbeFact {
            icmp: icmp_from.map(|f| Icmp::v4(3, code, f)),
            ..ProbeFact::new(
                "198.18.2.2:22".parse().unwrap(),
                result,
                Duration::from_millis(1),
            )
        }
    }
    const T: &str = "198.18.2.2";

    #[test]
    fn a_reset_or_handshake_or_the_targets_own_icmp_proves_it_is_up() {
        let t: IpAddr = T.parse().unwrap();
        let refused = ConnectResult::Failed {
            errno: libc::ECONNREFUSED,
        };
        let unreach = ConnectResult::Failed {
            errno: libc::EHOSTUNREACH,
        };
        assert!(target_answered(&fact(ConnectResult::Connected, None, 0), t));
        assert!(target_answered(&fact(refused, None, 0), t));
        assert!(target_answered(&fact(unreach, Some(T), 13), t));
        assert!(!target_answered(&fact(unreach, Some("198.18.1.1"), 13), t));
        assert!(!target_answered(&fact(refused, Some("198.18.1.1"), 3), t));
        assert!(!target_answered(&fact(ConnectResult::TimedOut, None, 0), t));
        assert!(router_says_unreachable(
            &fact(unreach, Some("198.18.1.1"), 1),
            t
        ));
        assert!(!router_says_unreachable(
            &fact(unreach, Some("198.18.1.1"), 13),
            t
        ));
    }

    #[test]
    fn the_bound_is_several_rtts_and_never_below_the_floor() {
        assert_eq!(silence_bound(Duration::from_micros(300)), MIN_SILENCE);
        assert_eq!(
            retransmit_wait(Duration::from_micros(300)),
            FIRST_RETRANSMISSION + MIN_SILENCE
        );
        assert_eq!(
            silence_bound(Duration::from_millis(120)),
            Duration::from_millis(480)
        );
    }
}
