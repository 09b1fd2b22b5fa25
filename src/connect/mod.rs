//! The connect stage: a TCP connect to every address of the target, concurrently, and for the
//! ones that do not answer at once what tells why.
//!
//! | part | module | does |
//! |---|---|---|
//! | every address | here ([`probe_all`]) | who gets liveness probes and the walk; the firewall read once the first address is silent |
//! | another host's address | [`remote`] | silent 10 ms: other ports, a second SYN, the walk alongside, the kernel's retransmission |
//! | this machine's address | [`this_machine`] | silent 10 ms: the listener's accept queue, the kernel's retransmission |
//! | names a service advertised | [`advertised`] | after the session: MongoDB's members, Kafka's brokers, each resolved and connected from here |
//!
//! Facts only ([`AddressFacts`]); the session stage, the local inspection and the walk after
//! the probes are the pipeline's to run.

pub(crate) mod advertised;
pub(crate) mod remote;
pub(crate) mod this_machine;
pub(crate) mod udp;

use std::net::{IpAddr, SocketAddr};

use futures_util::future::{BoxFuture, join_all};
use tokio::time::Instant;

use crate::diagnosis::{Evidence, Outcome, Sender, classify};
use crate::facts::AddressFacts;
use crate::liveness;
use crate::local::shared::Inspector;
use crate::local::{self, Firewall};
use crate::options::TraceMode;
use crate::probe::{Connector, ProbeFact};
use crate::trace::TraceFacts;

use remote::Role;

/// Silent addresses whose host gets liveness probes (the ones clients try first).
pub(crate) const LIVENESS_ADDRESSES: usize = 2;

/// What the connect stage needs of the check.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub port: u16,
    /// When the probes (and the walk alongside) end.
    pub probe_deadline: Instant,
    /// The check's own deadline (the firewall's read).
    pub deadline: Instant,
    pub trace: TraceMode,
    /// This machine's firewall may be read to explain a failure (`--local` allows it, and
    /// the facts are for a report).
    pub firewall: bool,
    /// This machine's listeners are inspected for this check.
    pub inspect_here: bool,
    /// Keep each main probe's connected socket for the session stage
    /// ([`crate::probe::ProbeSpec::keep`]).
    pub keep: bool,
}

/// The connect stage's facts: one per address in order, the walk that ran alongside the
/// first address's probes, and the firewall's read when the first address's result needs it.
pub(crate) struct Probed {
    pub addresses: Vec<AddressFacts>,
    pub walked: Option<TraceFacts>,
    pub firewall: Option<BoxFuture<'static, Option<Firewall>>>,
}

/// One address's share of [`Probed`].
struct OneAddress {
    facts: AddressFacts,
    walked: Option<TraceFacts>,
    firewall: Option<BoxFuture<'static, Option<Firewall>>>,
}

/// Probe every address in `addrs` concurrently (`mine`: this machine's addresses).
pub(crate) async fn probe_all<C: Connector, I: Inspector>(
    connector: &C,
    inspector: &I,
    addrs: Vec<SocketAddr>,
    mine: &[IpAddr],
    plan: &Plan,
) -> Probed {
    let done = join_all(addrs.into_iter().enumerate().map(|(i, a)| {
        let here = local::is_local(a.ip(), mine);
        let role = Role {
            liveness: i < LIVENESS_ADDRESSES && !here,
            first: i == 0,
            // The first address's walk runs alongside its probes, from the moment the
            // silence is worth explaining; the pipeline decides later whether it is kept.
            walk: (i == 0 && !here && plan.trace != TraceMode::Never)
                .then_some(plan.probe_deadline),
            keep: plan.keep,
        };
        probe_one(connector, inspector, a, here, role, plan)
    }))
    .await;
    let mut walked = None;
    let mut firewall = None;
    let mut addresses = Vec::with_capacity(done.len());
    for one in done {
        walked = walked.or(one.walked);
        firewall = firewall.or(one.firewall);
        addresses.push(one.facts);
    }
    Probed {
        addresses,
        walked,
        firewall,
    }
}

/// Probe one address; for the first, read the firewall when its result may need it.
async fn probe_one<C: Connector, I: Inspector>(
    connector: &C,
    inspector: &I,
    address: SocketAddr,
    here: bool,
    role: Role,
    plan: &Plan,
) -> OneAddress {
    let read_firewall = || inspector.firewall(plan.port, plan.deadline.into_std());
    let probing = async {
        if here {
            let (fact, queue) = this_machine::probe(
                connector,
                inspector,
                address,
                plan.probe_deadline,
                plan.keep,
            )
            .await;
            (fact, None, None, queue)
        } else {
            let (fact, silence, walk) =
                remote::probe(connector, address, plan.probe_deadline, role).await;
            (fact, silence, walk, None)
        }
    };
    tokio::pin!(probing);
    // A first address still silent after DELAY may well be `filtered`, which the firewall
    // can explain: start reading it now (a process, no packets), so that it is ready with
    // the verdict; it is kept only if the result needs it. This machine's addresses too: a
    // busy listener's wait may run to the deadline, and a read begun then never ends.
    let mut early = None;
    let silent_at = Instant::now() + liveness::DELAY;
    let (probe, silence, walked, queue) = tokio::select! {
        r = &mut probing => r,
        _ = tokio::time::sleep_until(silent_at), if role.first && plan.firewall => {
            early = Some(read_firewall());
            probing.await
        }
    };
    let firewall = (role.first
        && plan.firewall
        && needs_firewall(std::slice::from_ref(&probe), plan.inspect_here))
    .then(|| early.unwrap_or_else(read_firewall));
    OneAddress {
        facts: AddressFacts {
            probe,
            silence,
            here,
            session: None,
            queue,
            udp: None,
        },
        walked,
        firewall,
    }
}

/// Should this machine's firewall be read? For a local target whose first address failed (its
/// input chain may be why); for any target whose first address was silent (an OUTPUT-chain
/// drop looks exactly like remote silence) or that this machine refused to send. Only for a
/// report (`Options::report`): the rules name why, the probes' answers alone give the verdict
/// (`diagnosis::verdict_of`), so `-q` reads no ruleset (a sweep of 10,000 loopback ports ran
/// `nft` ~100 times, a sixth of its CPU time).
pub(crate) fn needs_firewall(probes: &[ProbeFact], local_target: bool) -> bool {
    probes.first().is_some_and(|p| {
        let r = classify(p);
        (local_target && r.outcome != Outcome::Open)
            || r.outcome == Outcome::Filtered
            || matches!(r.evidence, Evidence::LocalPolicy(_))
            || (r.outcome == Outcome::Rejected
                && matches!(r.sender(), Some((Sender::ThisMachine, _))))
    })
}
