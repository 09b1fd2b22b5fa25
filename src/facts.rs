//! The facts a check gathered: plain data, no opinions.
//!
//! Every stage writes into [`Facts`]; [`crate::diagnosis::diagnose`] reads them. Because this is
//! plain data, diagnosis and rendering are tested on hand-written fixtures without a network.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serializer;

use crate::dns::DnsFacts;
use crate::probe::ProbeFact;
use crate::target::Target;

/// Everything one check observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub target: Target,
    pub dns: DnsFacts,
    /// One probe per address, in the order the system would try them.
    pub probes: Vec<ProbeFact>,
    /// The deadline the check ran under.
    pub timeout: Duration,
    /// Wall time of the whole check.
    pub elapsed: Duration,
}

impl Facts {
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
