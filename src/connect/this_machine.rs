//! One address of this machine: it answers in microseconds, or not at all, and the
//! kernel shows why it did not (the listener's accept queue, the listen-drop counters).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::facts::QueueWatch;
use crate::liveness;
use crate::local::QueueLook;
use crate::local::netstat::ListenCounters;
use crate::local::shared::Inspector;
use crate::probe::{ConnectResult, Connector, ProbeFact, ProbeSpec};

/// How long an address of this machine with a listener is given when it stays silent: until
/// the kernel's retransmitted SYN (1 s after the first, [`liveness::FIRST_RETRANSMISSION`]) has
/// had its answer, which on this machine comes within microseconds of it ([`RETRY_ANSWER`]
/// allows for the kernel's timer and this process's wake-up under load). A SYN dropped at a full queue is
/// retried then: a busy program's queue may have room again by then, and the retry is what a
/// client's own meets; a hung program's is still full.
pub(crate) const LOCAL_RETRANSMIT_WAIT: Duration = Duration::from_millis(1100);

/// How long after a retried SYN is sent its answer is looked for: on this machine it comes
/// within microseconds; the 100 ms allow for the kernel's timer and this process's wake-up.
const RETRY_ANSWER: Duration = Duration::from_millis(100);

/// When a connecting socket's SYN retries are sent, from its first SYN: the first after 1 s
/// (the initial timeout), then each after the same second for the first
/// `tcp_syn_linear_timeouts` retries (Linux ≥ 6.7, 4 by default: 1, 2, 3, 4, 5 s), the waits
/// doubling after that (7, 11 s …); where the setting is absent or 0, doubling from the first
/// (1, 3, 7 s), as older kernels do. The kernel's timeouts are capped at 120 s.
pub(crate) fn syn_retries(linear: Option<u32>) -> impl Iterator<Item = Duration> {
    let linear = linear.unwrap_or(0);
    let mut wait = liveness::FIRST_RETRANSMISSION;
    let mut at = Duration::ZERO;
    (1u32..).map(move |k| {
        at += wait;
        if k > linear {
            wait = (wait * 2).min(Duration::from_secs(120));
        }
        at
    })
}

/// Probe an address of this machine. It answers in microseconds, or not at all: silent for
/// [`liveness::DELAY`], the listener that takes it is looked up with its accept queue, and the
/// listen-drop counters read. No listener: the address is given [`liveness::LOCAL_SILENCE`],
/// as before (a SYN with no listener is answered with a reset: silence is a firewall rule).
/// A listener: the first SYN met a full queue (a busy program, whose queue may have room again
/// now, or a hung one, whose queue stays full) or a firewall rule of this machine; the kernel's
/// retransmission tells, and the address is given [`LOCAL_RETRANSMIT_WAIT`]. While the queue
/// is still seen full, or this listener still drops the retried SYNs, that is a queue, not a
/// firewall: the probe waits through the next retries ([`wait_out_queue`]). The queue and the
/// counters are looked at again when the probe ends ([`QueueWatch`]). Never past `deadline`.
pub(crate) async fn probe<C: Connector, I: Inspector>(
    connector: &C,
    inspector: &I,
    address: SocketAddr,
    deadline: Instant,
    keep: bool,
) -> (ProbeFact, Option<QueueWatch>) {
    let start = Instant::now();
    let long = deadline.min(start + LOCAL_RETRANSMIT_WAIT);
    let short = deadline.min(start + liveness::LOCAL_SILENCE);
    // The connect itself may run to the deadline: how long it is waited for is decided here.
    let spec = ProbeSpec {
        keep,
        ..ProbeSpec::to(address)
    };
    let mut main = std::pin::pin!(connector.probe(spec, deadline));
    let quick = short.min(start + liveness::DELAY);
    if let Ok(fact) = tokio::time::timeout_at(quick, &mut main).await {
        return (fact, None);
    }
    let (first, before) = inspector.queue_look(address).await;
    let wait_retransmit = first.is_some();
    let (answer, looked) = if wait_retransmit {
        let retries = syn_retries(crate::local::netstat::syn_linear_timeouts());
        wait_out_queue(
            inspector, address, &mut main, start, deadline, first, retries,
        )
        .await
    } else {
        (tokio::time::timeout_at(short, &mut main).await.ok(), None)
    };
    let fact =
        answer.unwrap_or_else(|| ProbeFact::new(address, ConnectResult::TimedOut, start.elapsed()));
    // The last look: anew, unless that would pass the deadline (the wait ran to it), when the
    // wait's own last look stands (without the counters).
    let (last, after) = if Instant::now() >= deadline {
        (looked.unwrap_or(first), None)
    } else {
        inspector.queue_look(address).await
    };
    let delta = |f: fn(&ListenCounters) -> u64| {
        Some(f(after.as_ref()?).saturating_sub(f(before.as_ref()?)))
    };
    let queue = QueueWatch {
        first,
        last,
        overflows: delta(|c| c.overflows),
        drops: delta(|c| c.drops),
        waited_retransmit: wait_retransmit && long >= start + LOCAL_RETRANSMIT_WAIT,
    };
    (fact, Some(queue))
}

/// Wait for `main` until the first retry's answer (`retries`: when the kernel sends them,
/// from `start`), then on through the later retries while, at the look after each, this
/// listener's queue is still seen full or its own count of drops rose since the last look (it
/// dropped that retry): a busy program that gets to the connection late is open, not
/// filtered. A retry that was neither dropped by the listener nor answered is not the queue's
/// doing (a firewall rule of this machine): it stops there. It stops too when the next retry
/// would come at or past `deadline` (no SYN, no answer). Never past `deadline`; the probe's
/// fact when it ended, and the last look taken (`None`: none was).
async fn wait_out_queue<I: Inspector>(
    inspector: &I,
    address: SocketAddr,
    mut main: impl std::future::Future<Output = ProbeFact> + Unpin,
    start: Instant,
    deadline: Instant,
    first: Option<QueueLook>,
    retries: impl Iterator<Item = Duration>,
) -> (Option<ProbeFact>, Option<Option<QueueLook>>) {
    let mut counted = first.and_then(|l| l.drops);
    let mut looked = None;
    for (n, retry) in retries.enumerate() {
        // The first retry is waited for whatever the deadline (the probe is cut there).
        if n > 0 && start + retry >= deadline {
            break;
        }
        let until = deadline.min(start + retry + RETRY_ANSWER);
        if let Ok(fact) = tokio::time::timeout_at(until, &mut main).await {
            return (Some(fact), looked);
        }
        if until >= deadline {
            break;
        }
        let (look, _) = inspector.queue_look(address).await;
        looked = Some(look);
        let now = look.and_then(|l| l.drops);
        let dropped = matches!((counted, now), (Some(a), Some(b)) if b > a);
        let full = look.is_some_and(|l| l.full());
        if !(dropped || full) {
            break;
        }
        counted = now.or(counted);
    }
    (None, looked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(linear: Option<u32>, n: usize) -> Vec<u64> {
        syn_retries(linear).take(n).map(|d| d.as_secs()).collect()
    }

    /// The kernel's documented SYN timeouts (Documentation/networking/ip-sysctl.rst,
    /// tcp_syn_linear_timeouts): with 4, RTOs 1, 1, 1, 1, 1, 2, 4 s; with 0 or on a kernel
    /// without the setting, 1, 2, 4, 8 s.
    #[test]
    fn syn_retries_follow_the_kernels_schedule() {
        assert_eq!(secs(Some(4), 7), [1, 2, 3, 4, 5, 7, 11]);
        assert_eq!(secs(Some(0), 4), [1, 3, 7, 15]);
        assert_eq!(secs(None, 3), [1, 3, 7]);
        assert_eq!(
            syn_retries(None).nth(12),
            Some(Duration::from_secs(127 + 120 * 6))
        );
    }
}
