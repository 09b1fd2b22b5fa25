//! One address of this machine: it answers in microseconds, or not at all, and the
//! kernel shows why it did not (the listener's accept queue, the listen-drop counters).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::facts::QueueWatch;
use crate::liveness;
use crate::local::netstat::ListenCounters;
use crate::local::shared::Inspector;
use crate::probe::{ConnectResult, Connector, ProbeFact, ProbeSpec};

/// How long an address of this machine with a listener is given when it stays silent: until
/// the kernel's retransmitted SYN (1 s after the first, [`liveness::FIRST_RETRANSMISSION`]) has
/// had its answer, which on this machine comes within microseconds of it (the 100 ms allow for
/// the kernel's timer and this process's wake-up under load). A SYN dropped at a full queue is
/// retried then: a busy program's queue may have room again by then, and the retry is what a
/// client's own meets; a hung program's is still full.
pub(crate) const LOCAL_RETRANSMIT_WAIT: Duration = Duration::from_millis(1100);

/// How long after the first retransmission each later one is looked for while the queue is
/// still full or dropping: Linux ≥ 6.x retransmits a SYN every second for the first
/// `tcp_syn_linear_timeouts` (4) tries; older kernels at 3 s and 7 s, whose answers a look
/// each second still meets.
pub(crate) const LATER_RETRANSMIT_STEP: Duration = Duration::from_secs(1);

/// Probe an address of this machine. It answers in microseconds, or not at all: silent for
/// [`liveness::DELAY`], the listener that takes it is looked up with its accept queue, and the
/// listen-drop counters read. No listener: the address is given [`liveness::LOCAL_SILENCE`],
/// as before (a SYN with no listener is answered with a reset: silence is a firewall rule).
/// A listener: the first SYN met a full queue (a busy program, whose queue may have room again
/// now, or a hung one, whose queue stays full) or a firewall rule of this machine; the kernel's
/// retransmission tells, and the address is given [`LOCAL_RETRANSMIT_WAIT`]. While the queue
/// is still seen full, or SYNs are still dropped at full queues, that is a queue, not a
/// firewall: the probe waits through the next retransmissions ([`wait_out_queue`]). The queue
/// and the counters are looked at again when the probe ends ([`QueueWatch`]). Never past
/// `deadline`.
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
    let answer = if wait_retransmit {
        let counted = before.as_ref().map(|c| c.overflows);
        wait_out_queue(inspector, address, &mut main, long, deadline, counted).await
    } else {
        tokio::time::timeout_at(short, &mut main).await.ok()
    };
    let fact =
        answer.unwrap_or_else(|| ProbeFact::new(address, ConnectResult::TimedOut, start.elapsed()));
    let (last, after) = inspector.queue_look(address).await;
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

/// Wait for `main` until `first_until` (the first retransmission's answer), then on through
/// the later retransmissions while the listener's queue is still seen full or SYNs were
/// dropped at full queues since the last look (`counted`: `ListenOverflows` then): a busy
/// program that gets to the connection late is open, not filtered. A queue with room and no
/// drop while the probe is silent is not the queue's doing (a firewall rule of this machine):
/// it stops there. Never past `deadline`; `None` when the probe did not end.
async fn wait_out_queue<I: Inspector>(
    inspector: &I,
    address: SocketAddr,
    mut main: impl std::future::Future<Output = ProbeFact> + Unpin,
    first_until: Instant,
    deadline: Instant,
    mut counted: Option<u64>,
) -> Option<ProbeFact> {
    let mut until = first_until;
    loop {
        if let Ok(fact) = tokio::time::timeout_at(until, &mut main).await {
            return Some(fact);
        }
        if until >= deadline {
            return None;
        }
        let (look, counters) = inspector.queue_look(address).await;
        let now = counters.as_ref().map(|c| c.overflows);
        let dropping = matches!((counted, now), (Some(a), Some(b)) if b > a);
        let full = look.is_some_and(|l| l.full());
        if !(dropping || full) {
            return None;
        }
        counted = now.or(counted);
        until = deadline.min(until + LATER_RETRANSMIT_STEP);
    }
}
