//! The facts a check gathered: plain data, no opinions.
//!
//! Every stage writes into [`Facts`]; [`crate::diagnosis::diagnose`] reads them. Because this is
//! plain data, diagnosis and rendering are tested on hand-written fixtures without a network.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serializer;

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
    /// One probe per address, in the order the system would try them.
    pub probes: Vec<ProbeFact>,
    /// For each address whose probe was slow: liveness of the host and the second SYN.
    pub silence: Vec<Silence>,
    /// The path walk, when one was made.
    pub trace: Option<TraceFacts>,
    /// Listeners and owners on this machine, when the target is this machine (or `--local`).
    pub local: Option<LocalFacts>,
    /// This machine's firewall rules for the port, when inspected (local targets, and silent
    /// or locally refused remote ones: an OUTPUT drop looks like remote silence).
    pub firewall: Option<Firewall>,
    /// The deadline the check ran under.
    pub timeout: Duration,
    /// Wall time of the whole check.
    pub elapsed: Duration,
}

/// What was learnt while an address stayed silent (see `liveness`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silence {
    pub address: SocketAddr,
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
            probes: vec![],
            silence: vec![],
            trace: None,
            local: None,
            firewall: None,
            timeout,
            elapsed: Duration::ZERO,
        }
    }

    /// The silence facts of one address, if it had any.
    pub fn silence_of(&self, address: SocketAddr) -> Option<&Silence> {
        self.silence.iter().find(|s| s.address == address)
    }

    /// The addresses probed, in order.
    pub fn addresses(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.probes.iter().map(|p| p.spec.address)
    }
}

/// Milliseconds with microsecond resolution, the unit of every `*_ms` field in the JSON.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// `serialize_with` helper for durations as `ms`.
pub fn ser_ms<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(ms(*d))
}
