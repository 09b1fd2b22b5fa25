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
pub const LOCAL_RETRANSMIT_WAIT: Duration = Duration::from_millis(1100);

/// Probe an address of this machine. It answers in microseconds, or not at all: silent for
/// [`liveness::DELAY`], the listener that takes it is looked up with its accept queue, and the
/// listen-drop counters read. No listener: the address is given [`liveness::LOCAL_SILENCE`],
/// as before (a SYN with no listener is answered with a reset: silence is a firewall rule).
/// A listener: the first SYN met a full queue (a busy program, whose queue may have room again
/// now, or a hung one, whose queue stays full) or a firewall rule of this machine; the kernel's
/// retransmission tells, and the address is given [`LOCAL_RETRANSMIT_WAIT`]. The queue and the
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
    let spec = ProbeSpec {
        keep,
        ..ProbeSpec::to(address)
    };
    let mut main = std::pin::pin!(connector.probe(spec, long));
    let quick = short.min(start + liveness::DELAY);
    if let Ok(fact) = tokio::time::timeout_at(quick, &mut main).await {
        return (fact, None);
    }
    let (first, before) = inspector.queue_look(address).await;
    let wait_retransmit = first.is_some();
    let until = if wait_retransmit { long } else { short };
    let fact = match tokio::time::timeout_at(until, &mut main).await {
        Ok(fact) => fact,
        Err(_) => ProbeFact {
            spec: ProbeSpec::to(address),
            result: ConnectResult::TimedOut,
            elapsed: start.elapsed(),
            icmp: None,
            local: None,
        },
    };
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
