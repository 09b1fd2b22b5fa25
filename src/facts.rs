//! The facts a check gathered: plain data, no opinions.
//!
//! Every stage writes into [`Facts`]; [`crate::diagnosis::diagnose`] reads them. Because this is
//! plain data, diagnosis and rendering are tested on hand-written fixtures without a network.
//! Facts carry no serialisation: the JSON contract is its own model (`render::json`), so that
//! renaming a field here cannot change what scripts read.

use std::net::SocketAddr;
use std::time::Duration;

use crate::dns::DnsFacts;
use crate::local::{Firewall, LocalFacts};
use crate::probe::ProbeFact;
use crate::target::Target;
use crate::trace::TraceFacts;

/// Everything one check observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub target: Target,
    pub dns: DnsFacts,
    /// One record per address probed, in the order the system would try them.
    pub addresses: Vec<AddressFacts>,
    /// The path walk, when one was made.
    pub trace: Option<TraceFacts>,
    /// Listeners and owners on this machine, when the target is this machine (or `--local`).
    pub local: Option<LocalFacts>,
    /// This machine's firewall rules for the port, when inspected (local targets, and silent
    /// or locally refused remote ones: an OUTPUT drop looks like remote silence).
    pub firewall: Option<Firewall>,
    /// canreach ran as root: advice for this machine needs no `sudo`.
    pub privileged: bool,
    /// The deadline the check ran under.
    pub timeout: Duration,
    /// Wall time of the whole check.
    pub elapsed: Duration,
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
}

impl AddressFacts {
    /// An address that answered (or failed) without a silence phase.
    pub fn probed(probe: ProbeFact) -> AddressFacts {
        let here = probe.spec.address.ip().is_loopback();
        AddressFacts {
            probe,
            silence: None,
            here,
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.probe.spec.address
    }
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
            privileged: false,
            timeout,
            elapsed: Duration::ZERO,
        }
    }

    /// The main probes, in order.
    pub fn probes(&self) -> impl Iterator<Item = &ProbeFact> + '_ {
        self.addresses.iter().map(|a| &a.probe)
    }

    /// The silence facts of one address, if it had any.
    pub fn silence_of(&self, address: SocketAddr) -> Option<&Silence> {
        self.addresses
            .iter()
            .find(|a| a.address() == address)
            .and_then(|a| a.silence.as_ref())
    }
}

/// Milliseconds with microsecond resolution, the unit of every `*_ms` field in the JSON.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
