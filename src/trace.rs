//! Stage 3: where on the path do the packets die? A TCP traceroute without root.
//!
//! Every hop is probed at once with a SYN to the target port whose TTL (IPv6: hop limit) is the
//! hop number, on an ordinary socket with `IP_RECVERR`: hop N answers with ICMP time-exceeded,
//! which lands in the socket's error queue with the hop's address (Linux ≥ 5.8; see
//! `docs/ground-truth/linux-probing.md`). A router sends time-exceeded before its forward-chain
//! firewall runs, so the last hop that answers is the last device the SYN reached.
//!
//! Packets: at most [`MAX_HOPS`] SYNs (plus the kernel's own SYN retransmissions for hops that
//! stay silent past one second, which the budget below rarely allows).

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::time::Instant;

use crate::liveness::silence_bound;
use crate::probe::{Connector, ProbeFact, ProbeSpec};

/// Hops probed. Paths inside an organisation are short; the internet's median is ~15.
pub const MAX_HOPS: u8 = 16;

/// The longest a trace may take (it also ends at the check's deadline).
pub const BUDGET: Duration = Duration::from_millis(1500);

/// The raw facts of one walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceFacts {
    pub address: SocketAddr,
    /// One entry per TTL, 1..=MAX_HOPS; `None` where nothing came back before the walk ended.
    pub hops: Vec<(u8, Option<ProbeFact>)>,
    pub elapsed: Duration,
}

/// Walk the path to `address`. Ends when every hop has answered, or once some hop has answered
/// and the rest stayed silent for [`silence_bound`] of the slowest answer, or at `deadline`.
pub async fn walk<C: Connector>(
    connector: &C,
    address: SocketAddr,
    deadline: Instant,
) -> TraceFacts {
    let start = Instant::now();
    let deadline = deadline.min(start + BUDGET);
    let mut pending: FuturesUnordered<_> = (1..=MAX_HOPS)
        .map(|ttl| async move {
            let spec = ProbeSpec {
                address,
                ttl: Some(ttl),
            };
            (ttl, connector.probe(spec, deadline).await)
        })
        .collect();
    let mut hops: Vec<(u8, Option<ProbeFact>)> = (1..=MAX_HOPS).map(|t| (t, None)).collect();
    let mut quiet_until: Option<Instant> = None;
    loop {
        let stop = quiet_until.unwrap_or(deadline).min(deadline);
        tokio::select! {
            next = pending.next() => match next {
                Some((ttl, fact)) => {
                    if fact.result != crate::probe::ConnectResult::TimedOut || fact.icmp.is_some() {
                        let slowest = hops
                            .iter()
                            .filter_map(|(_, f)| f.as_ref().map(|f| f.elapsed))
                            .chain([fact.elapsed])
                            .max()
                            .unwrap_or_default();
                        quiet_until = Some(start + silence_bound(slowest));
                        hops[usize::from(ttl - 1)].1 = Some(fact);
                    }
                }
                None => break,
            },
            _ = tokio::time::sleep_until(stop) => break,
        }
    }
    TraceFacts {
        address,
        hops,
        elapsed: start.elapsed(),
    }
}
