//! The facts a check gathered: plain data, no opinions.
//!
//! Every stage writes into [`Facts`]; [`crate::diagnosis::diagnose`] reads them. Because this is
//! plain data, diagnosis and rendering are tested on hand-written fixtures without a network.
//! Facts carry no serialisation: the JSON contract is its own model (`render::json`), so that
//! renaming a field here cannot change what scripts read.

use std::net::SocketAddr;
use std::time::Duration;

use crate::dns::DnsFacts;
use crate::local::{Firewall, LocalFacts, QueueLook};
use crate::probe::ProbeFact;
use crate::session::SessionFacts;
use crate::target::Target;
use crate::trace::TraceFacts;

/// Everything one check observed. `A` is what is kept per address: its facts as gathered
/// ([`AddressFacts`]), or, in a diagnosis's report, those facts with their judgement beside
/// them (`diagnosis::AddressReport`): one entry per address, never two lists side by side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts<A = AddressFacts> {
    pub target: Target,
    pub dns: DnsFacts,
    /// One entry per address probed, in the order the system would try them.
    pub addresses: Vec<A>,
    /// The path walk, when one was made.
    pub trace: Option<TraceFacts>,
    /// Listeners and owners on this machine, when the target is this machine (or `--local`).
    pub local: Option<LocalFacts>,
    /// This machine's firewall rules for the port, when inspected (local targets, and silent
    /// or locally refused remote ones: an OUTPUT drop looks like remote silence).
    pub firewall: Option<Firewall>,
    /// The proxy an HTTP(S) client would use for this target, from the environment (`None`
    /// for other targets).
    pub proxy: Option<crate::session::proxy::ProxyChoice>,
    /// Set when the check followed that proxy, as the application would: then `dns`,
    /// `addresses`, `trace`, `local` and `firewall` are about the proxy ([`ProxyRoute::endpoint`]),
    /// and the sessions went through it to `target`.
    pub via: Option<ProxyRoute>,
    /// `--expect-status`: the HTTP statuses that count as working (`None`: 2xx and 3xx).
    pub expect_status: Option<crate::session::status::StatusSet>,
    /// The HTTP redirect this check got is followed by what asked for the check (`canreach
    /// serve`'s http module, whose next hop is checked next); the CLI never follows one.
    pub redirect_followed: bool,
    /// canreach ran as root: advice for this machine needs no `sudo`.
    pub privileged: bool,
    /// The deadline the check ran under.
    pub timeout: Duration,
    /// Wall time of the whole check.
    pub elapsed: Duration,
    /// With `--wait`: how the wait that this check ended went (set by the workflow).
    pub waited: Option<Waited>,
    /// The other members a MongoDB replica set or the brokers a Kafka cluster named in its
    /// answer, each resolved and connected from here as a client would.
    pub advertised: Option<Advertised>,
}

/// The members (MongoDB) or brokers (Kafka) a service names for its clients to connect to
/// next, each checked from here: a client that reached the first one fails on these when
/// their names do not resolve or their addresses do not answer here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertised {
    pub protocol: crate::session::protocols::Protocol,
    /// The address whose answer named them.
    pub from: SocketAddr,
    /// Each name, in the order the answer gave it (at most `ADVERTISED_MAX`).
    pub members: Vec<AdvertisedMember>,
    /// Names past `ADVERTISED_MAX`, not checked.
    pub unchecked: usize,
    /// How long each connect was given (a silence shorter than a fair wait proves little).
    pub waited: Duration,
}

/// The most advertised names checked per target.
pub(crate) const ADVERTISED_MAX: usize = 16;

/// One advertised member or broker, and what reaching it from here gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvertisedMember {
    /// As the server wrote it (`mongo-1.db.svc:27017`, `localhost:9092`): raw, untrusted.
    pub name: String,
    pub host: String,
    /// `None`: the name has no usable port.
    pub port: Option<u16>,
    pub role: MemberRole,
    /// MongoDB: the member the set names as its primary.
    pub primary: bool,
    /// MongoDB: the member that answered (`me`).
    pub me: bool,
    /// The system resolver's failure for the host (none for an address).
    pub lookup_error: Option<crate::dns::LookupError>,
    /// One connect per address the name gave (at most 4), in the system's order.
    pub probes: Vec<ProbeFact>,
}

/// What an advertised name is in the service's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberRole {
    /// MongoDB `hosts`: a member that can become primary.
    Host,
    /// MongoDB `passives`: a member with priority 0.
    Passive,
    /// MongoDB `arbiters`.
    Arbiter,
    /// MongoDB: named only as `primary` or `me`.
    Named,
    /// Kafka: a broker, by node id.
    Broker(i32),
}

/// How a `--wait` ended, for the report of its last check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waited {
    /// What the user gave: `--wait` and `--timeout`.
    pub wait: Duration,
    pub timeout: Duration,
    /// From the first check's start to the end of the last.
    pub took: Duration,
    /// Checks made, the last included.
    pub checks: u32,
    pub ended: WaitEnd,
}

/// Why a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitEnd {
    /// The target is open.
    Open,
    /// Its verdict will not change by waiting (a certificate, this machine's own reject).
    WillNotChange,
    /// The time given ran out (no check had time to start before it).
    TimeUp,
}

/// Everything learnt about one address. Room for what comes after `connect()` as well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressFacts {
    /// The main connection attempt.
    pub probe: ProbeFact,
    /// What was learnt while the address stayed silent, when it did (see `liveness`).
    pub silence: Option<Silence>,
    /// The address is this machine's own (loopback or a local interface's).
    pub here: bool,
    /// After a connect: what the server did before the client spoke, TLS, HTTP (`session`),
    /// when the address was open.
    pub session: Option<SessionFacts>,
    /// For an address of this machine that stayed silent past `liveness::DELAY` (10 ms): its
    /// listener's accept queue and this machine's listen-drop counters while it was silent.
    pub queue: Option<QueueWatch>,
    /// A UDP target: the datagrams sent and what came back (`probe` then records the same
    /// exchange as the kernel reported it: a reply is `Connected`, an ICMP error `Failed`
    /// with its error queue, silence `TimedOut`).
    pub udp: Option<UdpExchange>,
}

/// A UDP check of one address: the service's request, sent again as UDP clients do, and
/// what came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpExchange {
    /// The request's service (`None`: `--payload`, or a port with no known request: an
    /// empty datagram, where any reply counts).
    pub service: Option<crate::session::protocols::udp_payloads::UdpService>,
    /// The port's usual service answers no harmless datagram (syslog, WireGuard, …): its
    /// silence is normal.
    pub known_silence: Option<crate::session::protocols::udp_payloads::Silence>,
    /// The request's size in bytes.
    pub payload_len: usize,
    /// Datagrams sent (the first and its retransmissions).
    pub sent: u32,
    /// The first datagram that came back, as the request's recogniser read it.
    pub reply: Option<crate::session::protocols::udp_payloads::UdpReply>,
    /// The control: one datagram to a port of the same host that surely has no program
    /// ([`UDP_CONTROL_PORT`], or the one below it), sent when the port stayed silent. A
    /// port-unreachable from the host says the host does answer closed ports, so the
    /// silence is a drop or a program that ignored the request; silence there too says it
    /// does not (or a firewall drops everything).
    pub control: Option<ProbeFact>,
}

/// The port a UDP control datagram goes to (a high port no usual service uses).
pub(crate) const UDP_CONTROL_PORT: u16 = 65_533;

/// A silent address of this machine, and the listener that takes it: a SYN to a port of this
/// machine that has a listener is answered in microseconds unless the listener's accept queue
/// is full (the kernel then drops it without a word) or a firewall rule of this machine drops
/// it. Looked at once the probe had been silent for `liveness::DELAY`, and when it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueWatch {
    /// The listener that takes the address then (`None`: none does, or the kernel did not
    /// say).
    pub first: Option<QueueLook>,
    /// The same when the probe ended.
    pub last: Option<QueueLook>,
    /// SYNs this network namespace dropped at full accept queues (`ListenOverflows`) and at
    /// listeners for any reason (`ListenDrops`) between the two reads; `None` when the
    /// counters could not be read.
    pub overflows: Option<u64>,
    pub drops: Option<u64>,
    /// The probe waited until the kernel's retransmitted SYN (1 s after the first) had had its
    /// answer: what a client's own retry meets.
    pub waited_retransmit: bool,
}

impl QueueWatch {
    /// The packets the listener itself dropped between the first look and the last (its
    /// `sk_drops`; a retried SYN at its full queue among them); `None` when not counted.
    pub fn listener_drops(&self) -> Option<u32> {
        Some(self.last?.drops?.saturating_sub(self.first?.drops?))
    }
}

impl AddressFacts {
    /// An address that answered (or failed) without a silence phase.
    #[cfg(test)]
    pub(crate) fn probed(probe: ProbeFact) -> AddressFacts {
        let here = probe.spec.address.ip().is_loopback();
        AddressFacts {
            probe,
            silence: None,
            here,
            session: None,
            queue: None,
            udp: None,
        }
    }

    pub(crate) fn address(&self) -> SocketAddr {
        self.probe.spec.address
    }
}

/// The path through an HTTP proxy, as checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRoute {
    /// The proxy (its variable, its URL masked).
    pub proxy: crate::session::proxy::Proxy,
    /// The proxy as a target: what the name, probe and local stages checked. Its `input` is
    /// the user's (commands that re-run the check re-run what was typed).
    pub endpoint: Target,
    /// The destination probed directly, alongside (it never changes the verdict).
    pub direct: DirectPath,
}

/// A plain TCP connect to the destination, without the proxy: would the direct path work?
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirectPath {
    /// The destination's name did not resolve here (within the direct path's wait).
    pub lookup_error: Option<crate::dns::LookupError>,
    /// One connect per address, in the system's order; each waited at most `waited`.
    pub probes: Vec<ProbeFact>,
    /// How long the direct path was given (a silence shorter than a fair wait proves little).
    pub waited: Duration,
}

/// What was learnt while an address stayed silent (see `liveness`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Silence {
    /// Probes of other ports of the same host: `(port, fact)`, `None` if unanswered when the
    /// address's probing ended.
    pub liveness: Vec<(u16, Option<ProbeFact>)>,
    /// The second SYN to the same port, sent once the host's round-trip time was known.
    pub second_syn: Option<ProbeFact>,
    /// Set when `filtered` was concluded before the deadline: the silence bound that was
    /// waited after the second SYN.
    pub decided_after: Option<Duration>,
    /// Set when the silence may have been a router's spent ICMP budget (the walk did not show
    /// every router up to where it ended answering, or no walk ran): how long after the first
    /// SYN the port was given, so that the kernel's retransmitted SYN could meet a refilled
    /// budget (`liveness::retransmit_wait`, cut by the deadline).
    pub retransmit_wait: Option<Duration>,
}

/// One address's entry in [`Facts`]: its facts as gathered, alone or with more beside them.
pub trait AddressEntry {
    /// The facts gathered for the address.
    fn gathered(&self) -> &AddressFacts;
}

impl AddressEntry for AddressFacts {
    fn gathered(&self) -> &AddressFacts {
        self
    }
}

impl Facts {
    /// The facts of a check of `target` before any stage has run: no lookup, no probe.
    pub fn new(target: Target, timeout: Duration) -> Facts {
        Facts {
            target,
            dns: DnsFacts::default(),
            addresses: vec![],
            trace: None,
            local: None,
            firewall: None,
            proxy: None,
            via: None,
            expect_status: None,
            redirect_followed: false,
            privileged: false,
            timeout,
            elapsed: Duration::ZERO,
            waited: None,
            advertised: None,
        }
    }
}

impl<A> Facts<A> {
    /// What the name, probe and local stages checked: the proxy when the check followed one,
    /// else the target.
    pub(crate) fn checked(&self) -> &Target {
        self.via.as_ref().map_or(&self.target, |v| &v.endpoint)
    }

    /// The same facts with each address's entry made by `f` (in order).
    pub(crate) fn map_addresses<B>(self, f: impl FnMut(A) -> B) -> Facts<B> {
        // Every field named: a new one cannot be forgotten here.
        let Facts {
            target,
            dns,
            addresses,
            trace,
            local,
            firewall,
            proxy,
            via,
            expect_status,
            redirect_followed,
            privileged,
            timeout,
            elapsed,
            waited,
            advertised,
        } = self;
        Facts {
            target,
            dns,
            addresses: addresses.into_iter().map(f).collect(),
            trace,
            local,
            firewall,
            proxy,
            via,
            expect_status,
            redirect_followed,
            privileged,
            timeout,
            elapsed,
            waited,
            advertised,
        }
    }
}

impl<A: AddressEntry> Facts<A> {
    /// The silence facts of one address, if it had any.
    pub(crate) fn silence_of(&self, address: SocketAddr) -> Option<&Silence> {
        self.addresses
            .iter()
            .map(AddressEntry::gathered)
            .find(|a| a.address() == address)
            .and_then(|a| a.silence.as_ref())
    }
}

/// Milliseconds with microsecond resolution, the unit of every `*_ms` field in the JSON.
pub(crate) fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// A unix time as a UTC date and time to the minute (`2026-11-26 06:04 UTC`), without a date
/// crate: Howard Hinnant's civil-from-days.
pub(crate) fn utc(t: i64) -> String {
    let (date, secs) = civil(t);
    format!("{date} {:02}:{:02} UTC", secs / 3600, secs % 3600 / 60)
}

/// The same to the second (`2026-11-26 06:04:05 UTC`).
pub(crate) fn utc_seconds(t: i64) -> String {
    let (date, secs) = civil(t);
    format!(
        "{date} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// `YYYY-MM-DD` and the seconds into that day.
fn civil(t: i64) -> (String, i64) {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (format!("{y:04}-{m:02}-{d:02}"), secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_795_672_800), "2026-11-26 06:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
    }
}
