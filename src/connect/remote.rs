//! One address of another host: its connect, and when it stays silent, what tells a drop
//! from a slow or dead host (other ports, a second SYN, the path walk alongside, the kernel's
//! retransmission).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::time::Instant;

use crate::facts::Silence;
use crate::liveness;
use crate::probe::{ConnectResult, Connector, ProbeFact, ProbeSpec};
use crate::trace::{self, TraceFacts};

/// How long the other ports' answers are still taken once one of them is a router's
/// host-unreachable (the ARP/ND failure answers them all at the same moment).
const SETTLED_GRACE: Duration = Duration::from_millis(2);

/// How long a walk running alongside the probes may go on once the verdict is in: its hops
/// answer within the same round trips as the probes, so what has not come back by then is
/// not coming (a router's spent ICMP budget, a dropping device).
pub(crate) const WALK_GRACE: Duration = Duration::from_millis(20);

type ProbeFuture<'a> = Pin<Box<dyn Future<Output = ProbeFact> + Send + 'a>>;
type PortProbe<'a> = Pin<Box<dyn Future<Output = (u16, ProbeFact)> + Send + 'a>>;
type WalkFuture<'a> = Pin<Box<dyn Future<Output = TraceFacts> + Send + 'a>>;

/// What one address's probing may do.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Role {
    /// Probe other ports of the host when the port is silent (the first addresses only).
    pub liveness: bool,
    /// The address that decides the verdict.
    pub first: bool,
    /// Walk the path alongside the probes, within this deadline.
    pub walk: Option<Instant>,
    /// Keep the main probe's connected socket for the session stage.
    pub keep: bool,
}

/// Probe one address. If it stays silent for [`liveness::DELAY`], probe other ports of the same
/// host concurrently (when `role.liveness`); once one of them proves the host up, send a
/// second SYN and call the port filtered when both stay silent for
/// [`liveness::silence_bound`] of the host's round-trip time. Without such evidence the first
/// address waits [`liveness::NEIGHBOUR_WAIT`] (after which nothing new can arrive), the others
/// [`liveness::OTHER_WAIT`] (just before the kernel's first retransmission: they cannot change
/// the verdict, and their retransmissions would multiply the packets by the addresses); never
/// past `deadline`. (An address of this machine is probed by
/// [`super::this_machine::probe`].) A fast "host unreachable" from a device on the way gets
/// the liveness probes too: a host that answers on other ports is not unreachable, and that
/// device is a firewall.
///
/// With `role.walk`, the path walk runs alongside: from the moment the host is proven up (with
/// the second SYN), or after [`liveness::WALK_AFTER`] of silence without evidence; once the
/// verdict is in it gets at most [`WALK_GRACE`] more.
///
/// Before the first address is called filtered at the second SYN's bound, the walk is cut and
/// read: unless it shows every router up to where it ended answering
/// ([`trace::routers_answered`]), the silence may be a router's spent ICMP budget holding back
/// a reject, and the port is given until the kernel's retransmitted SYN has been answered
/// ([`liveness::retransmit_wait`], recorded in `Silence::retransmit_wait`).
pub(crate) async fn probe<C: Connector>(
    connector: &C,
    address: SocketAddr,
    deadline: Instant,
    role: Role,
) -> (ProbeFact, Option<Silence>, Option<TraceFacts>) {
    let start = Instant::now();
    let deadline = if role.first {
        deadline.min(start + liveness::NEIGHBOUR_WAIT)
    } else {
        deadline.min(start + liveness::OTHER_WAIT)
    };
    let spec = ProbeSpec {
        keep: role.keep,
        ..ProbeSpec::to(address)
    };
    let mut main = std::pin::pin!(connector.probe(spec, deadline));
    let quick = deadline.min(start + liveness::DELAY);
    tokio::select! {
        fact = &mut main => {
            if role.liveness && liveness::too_fast_to_be_unreachable(&fact, address.ip()) {
                let until = deadline.min(Instant::now() + liveness::silence_bound(fact.elapsed));
                let s = check_liveness(connector, address, until).await;
                return (fact, Some(s), None);
            }
            return (fact, None, None);
        }
        _ = tokio::time::sleep_until(quick) => {}
    }
    if !role.liveness {
        return (main.await, None, None);
    }
    let mut port = SilentPort::new(connector, address, start, deadline, role);
    let fact = port.watch(main).await;
    port.finish(fact).await
}

/// Probe the host's other ports until one answers from the host itself, or `until`.
async fn check_liveness<C: Connector>(
    connector: &C,
    address: SocketAddr,
    until: Instant,
) -> Silence {
    let ip = address.ip();
    let ports: Vec<u16> = liveness::PORTS
        .iter()
        .copied()
        .filter(|p| *p != address.port())
        .collect();
    let mut others: FuturesUnordered<_> = ports
        .iter()
        .map(|p| {
            let spec = ProbeSpec::to((ip, *p).into());
            async move { (spec.address.port(), connector.probe(spec, until).await) }
        })
        .collect();
    let mut silence = Silence {
        liveness: ports.iter().map(|p| (*p, None)).collect(),
        ..Silence::default()
    };
    while let Ok(Some((port, f))) = tokio::time::timeout_at(until, others.next()).await {
        let answered = liveness::target_answered(&f, ip);
        record(&mut silence, port, f);
        if answered {
            break;
        }
    }
    silence
}

/// Keep a liveness probe's answer in its port's slot.
fn record(silence: &mut Silence, port: u16, fact: ProbeFact) {
    if let Some(slot) = silence.liveness.iter_mut().find(|(p, _)| *p == port) {
        slot.1 = Some(fact);
    }
}

/// A silent answer of `address` after `elapsed`.
fn timed_out(address: SocketAddr, elapsed: Duration) -> ProbeFact {
    ProbeFact::new(address, ConnectResult::TimedOut, elapsed)
}

/// A walk running alongside an address's probes, and the means to cut it short.
struct Walk<'a> {
    running: Option<WalkFuture<'a>>,
    cut: tokio::sync::watch::Sender<Instant>,
    done: Option<TraceFacts>,
}

impl<'a> Walk<'a> {
    fn start<C: Connector>(&mut self, connector: &'a C, address: SocketAddr, deadline: Instant) {
        if self.running.is_none() && self.done.is_none() {
            let cut = self.cut.subscribe();
            self.running = Some(Box::pin(trace::walk_until(
                connector, address, deadline, cut,
            )));
        }
    }

    /// The walk's result, waiting for it at most until `until`.
    async fn finish(mut self, until: Instant) -> Option<TraceFacts> {
        if let Some(w) = self.running.take() {
            let _ = self.cut.send(until);
            self.done = Some(w.await);
        }
        self.done
    }
}

/// What woke a silent port's watch.
enum Event {
    /// The first SYN's own answer (or its timeout at the deadline).
    Answered(ProbeFact),
    /// Another port of the host answered.
    Liveness(u16, ProbeFact),
    /// The second SYN's answer.
    Second(ProbeFact),
    /// The walk alongside ended.
    Walked(TraceFacts),
    /// Time to start the walk: silent for [`liveness::WALK_AFTER`].
    StartWalk,
    /// The moment to decide: the second SYN's bound, the retransmission's, or the deadline.
    Decide,
}

/// The probing of an address silent past [`liveness::DELAY`]: the other ports, the second
/// SYN, the walk, and when to decide.
struct SilentPort<'a, C> {
    connector: &'a C,
    address: SocketAddr,
    start: Instant,
    deadline: Instant,
    role: Role,
    others: FuturesUnordered<PortProbe<'a>>,
    silence: Silence,
    second: Option<ProbeFuture<'a>>,
    /// When to decide, and the silence bound that gives it.
    decide_at: Option<(Instant, Duration)>,
    /// The host's round-trip time, from the liveness answer that proved it up.
    rtt: Duration,
    walk: Walk<'a>,
    walk_at: Option<Instant>,
    walk_deadline: Instant,
}

impl<'a, C: Connector> SilentPort<'a, C> {
    /// The other ports' probes sent; the walk waits for its moment.
    fn new(
        connector: &'a C,
        address: SocketAddr,
        start: Instant,
        deadline: Instant,
        role: Role,
    ) -> Self {
        let walk_deadline = role.walk.unwrap_or(deadline);
        let ip = address.ip();
        let ports: Vec<u16> = liveness::PORTS
            .iter()
            .copied()
            .filter(|p| *p != address.port())
            .collect();
        let others = ports
            .iter()
            .map(|p| {
                let spec = ProbeSpec::to((ip, *p).into());
                let port = *p;
                Box::pin(async move { (port, connector.probe(spec, deadline).await) })
                    as PortProbe<'a>
            })
            .collect();
        SilentPort {
            connector,
            address,
            start,
            deadline,
            role,
            others,
            silence: Silence {
                liveness: ports.iter().map(|p| (*p, None)).collect(),
                ..Silence::default()
            },
            second: None,
            decide_at: None,
            rtt: Duration::ZERO,
            walk: Walk {
                running: None,
                cut: tokio::sync::watch::channel(walk_deadline).0,
                done: None,
            },
            walk_at: role
                .walk
                .map(|_| deadline.min(start + liveness::WALK_AFTER)),
            walk_deadline,
        }
    }

    /// Watch until the port's fate is known: its answer (first or second SYN), or silence
    /// at the moment to decide.
    async fn watch<F: Future<Output = ProbeFact>>(&mut self, mut main: Pin<&mut F>) -> ProbeFact {
        loop {
            match self.next_event(main.as_mut()).await {
                Event::Answered(fact) => return fact,
                Event::Liveness(port, fact) => self.liveness_answered(port, fact),
                Event::Second(fact) => {
                    self.second = None;
                    self.silence.second_syn = Some(fact.clone());
                    if fact.result != ConnectResult::TimedOut {
                        // The first SYN was lost and the second answered: that answer is the
                        // truth.
                        return fact;
                    }
                }
                Event::Walked(t) => {
                    self.walk.running = None;
                    self.walk.done = Some(t);
                }
                Event::StartWalk => {
                    self.walk
                        .start(self.connector, self.address, self.walk_deadline)
                }
                Event::Decide => {
                    if let Some(fact) = self.decide(main.as_mut()).await {
                        return fact;
                    }
                }
            }
        }
    }

    async fn next_event<F: Future<Output = ProbeFact>>(&mut self, main: Pin<&mut F>) -> Event {
        let wake = self.decide_at.map_or(self.deadline, |(t, _)| t);
        let walk_pending =
            self.walk_at.is_some() && self.walk.running.is_none() && self.walk.done.is_none();
        let walk_at = self.walk_at.unwrap_or(self.deadline);
        let SilentPort {
            others,
            second,
            walk,
            ..
        } = self;
        tokio::select! {
            // In this order: the second SYN is sent before the walk's TTLs that start with it,
            // so a router's ICMP token that refilled since the first SYN goes to the probe that
            // decides the verdict (its reject), not to the walk's time-exceeded.
            biased;
            fact = main => Event::Answered(fact),
            Some((port, fact)) = others.next() => Event::Liveness(port, fact),
            fact = async { second.as_mut().expect("guarded").await }, if second.is_some() => {
                Event::Second(fact)
            }
            t = async { walk.running.as_mut().expect("guarded").await },
                if walk.running.is_some() => Event::Walked(t),
            _ = tokio::time::sleep_until(walk_at), if walk_pending => Event::StartWalk,
            _ = tokio::time::sleep_until(wake) => Event::Decide,
        }
    }

    /// Another port answered: the first answer from the host itself proves it up, and gives
    /// the round-trip time that bounds the second SYN's silence.
    fn liveness_answered(&mut self, port: u16, fact: ProbeFact) {
        if self.second.is_none() && liveness::target_answered(&fact, self.address.ip()) {
            self.rtt = fact.elapsed;
            let bound = liveness::silence_bound(self.rtt);
            let spec = ProbeSpec::to(self.address);
            self.second = Some(Box::pin(self.connector.probe(spec, self.deadline)));
            self.decide_at = Some((self.deadline.min(Instant::now() + bound), bound));
            if self.role.walk.is_some() {
                self.walk
                    .start(self.connector, self.address, self.walk_deadline);
            }
        }
        record(&mut self.silence, port, fact);
    }

    /// The moment to decide: the port's answer if it came meanwhile, `None` to wait on for
    /// the kernel's retransmission, else silence (`filtered` once the bound passed).
    async fn decide<F: Future<Output = ProbeFact>>(
        &mut self,
        mut main: Pin<&mut F>,
    ) -> Option<ProbeFact> {
        if let Some((_, bound)) = self.decide_at
            && self.role.first
            && self.silence.retransmit_wait.is_none()
        {
            // Before calling the port filtered: is this silence perhaps a router's spent ICMP
            // budget? The walk's answers so far tell whether the routers still answer; cut it
            // now and read them.
            if let Some(w) = self.walk.running.as_mut() {
                let _ = self
                    .walk
                    .cut
                    .send(self.walk_deadline.min(Instant::now() + WALK_GRACE));
                tokio::select! {
                    biased;
                    fact = &mut main => return Some(fact),
                    t = w => {
                        self.walk.running = None;
                        self.walk.done = Some(t);
                    }
                }
            }
            if !self.walk.done.as_ref().is_some_and(trace::routers_answered) {
                self.wait_for_retransmission(bound);
                return None;
            }
        }
        if let Some((_, bound)) = self.decide_at {
            self.silence.decided_after = Some(bound);
        }
        Some(timed_out(self.address, self.start.elapsed()))
    }

    /// The routers may not answer: wait for the kernel's retransmitted SYN, which meets a
    /// refilled budget (no packet of ours: the kernel sends it anyway).
    fn wait_for_retransmission(&mut self, bound: Duration) {
        let until = self
            .deadline
            .min(self.start + liveness::retransmit_wait(self.rtt));
        self.silence.retransmit_wait = Some(until - self.start);
        self.decide_at = Some((until, bound));
        // Only the main SYN's retransmission is waited for: the second SYN has had its
        // bound, and the other ports proved the host up. Their sockets close now (a
        // SYN_SENT socket closes without a packet), so the wait adds nothing but that one
        // retransmission.
        if self.second.take().is_some() {
            self.silence
                .second_syn
                .get_or_insert(timed_out(self.address, bound));
        }
        self.others.clear();
    }

    /// The port's fate is known: the walk gets its grace, the other ports theirs when the
    /// host is not proven up, and the second SYN's fate is recorded.
    async fn finish(self, fact: ProbeFact) -> (ProbeFact, Option<Silence>, Option<TraceFacts>) {
        let SilentPort {
            address,
            deadline,
            mut others,
            mut silence,
            mut second,
            decide_at,
            walk,
            walk_deadline,
            ..
        } = self;
        if fact.result == ConnectResult::TimedOut
            && fact.icmp.is_none()
            && silence.retransmit_wait.is_some()
        {
            // The wait for the retransmission ended at the deadline, where the main probe
            // gives up at the same instant: the second SYN's bound had passed all the same.
            silence.decided_after = decide_at.map(|(_, b)| b);
        }
        let walking = walk.finish(walk_deadline.min(Instant::now() + WALK_GRACE));
        let answered = liveness::target_answered(&fact, address.ip());
        let others_grace = async {
            if !answered {
                late_answers(&mut others, &mut silence, address, deadline).await;
            }
        };
        let (walked, ()) = tokio::join!(walking, others_grace);
        drop(others);
        if let Some(s) = second.take() {
            // The second SYN's own fate at the moment of decision, for the report.
            let now = timed_out(address, decide_at.map_or(Duration::ZERO, |(_, b)| b));
            drop(s);
            silence.second_syn.get_or_insert(now);
        }
        (fact, Some(silence), walked)
    }
}

/// The host is not proven up: the other ports' answers were sent DELAY later than the main
/// SYN, so give them as long again to arrive (an ARP failure answers them all).
async fn late_answers(
    others: &mut FuturesUnordered<PortProbe<'_>>,
    silence: &mut Silence,
    address: SocketAddr,
    deadline: Instant,
) {
    let mut grace = deadline.min(Instant::now() + liveness::DELAY + liveness::DELAY / 2);
    while let Ok(Some((port, f))) = tokio::time::timeout_at(grace, others.next()).await {
        // One router's host-unreachable settles it (the host is down), whatever ICMP rate
        // limits do to the others' answers: take only those already arriving.
        if liveness::router_says_unreachable(&f, address.ip()) {
            grace = grace.min(Instant::now() + SETTLED_GRACE);
        }
        record(silence, port, f);
    }
}
