//! [`Ctx`]: what every rule reads — the facts, each address with its judgement, and what was
//! already concluded from them.

use std::net::IpAddr;

use super::advice::Machine;
use super::outcome::{AddressResult, Outcome, Verdict};
use super::report::AddressReport;
use super::views::{Liveness, Path};
use crate::dns::LookupError;
use crate::facts::Facts;
use crate::session::SessionFacts;
use crate::target::{Host, Target};

/// What every rule reads: the facts and what was already concluded from them.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    /// The facts, each address with its judgement.
    pub facts: &'a Facts<AddressReport>,
    pub verdict: Verdict,
    pub liveness: Option<&'a Liveness>,
    pub path: Option<&'a Path>,
    pub dns_error: Option<&'a LookupError>,
    /// Through a proxy: the direct path's probes, judged.
    pub direct: &'a [AddressResult],
}

impl<'a> Ctx<'a> {
    /// What the name, probe and local stages checked: the target, or the proxy the check
    /// followed (`Facts::checked`). The destination behind a proxy is `facts.target`.
    pub(crate) fn checked(&self) -> &'a Target {
        self.facts.checked()
    }

    /// The port checked (the proxy's, through one).
    pub(crate) fn port(&self) -> u16 {
        self.facts.checked().port.get()
    }

    /// Each address's judgement, in the order clients try them.
    pub(crate) fn results(&self) -> impl Iterator<Item = &'a AddressResult> + 'a {
        self.facts.addresses.iter().map(|a| &a.result)
    }

    /// The address clients try first.
    pub(crate) fn first(&self) -> Option<&'a AddressResult> {
        self.facts.addresses.first().map(|a| &a.result)
    }

    /// The first address (in client order) whose session shows `pred`, with its session.
    pub(crate) fn session_where(
        &self,
        pred: impl Fn(&AddressResult, &SessionFacts) -> bool,
    ) -> Option<(&'a AddressResult, &'a SessionFacts)> {
        self.facts.addresses.iter().find_map(|a| {
            a.facts
                .session
                .as_ref()
                .filter(|s| pred(&a.result, s))
                .map(|s| (&a.result, s))
        })
    }

    /// Is `ip` this machine? Loopback counts even when the interfaces were not read.
    pub(crate) fn is_here(&self, ip: IpAddr) -> bool {
        let mine = self
            .facts
            .local
            .as_ref()
            .map_or(&[][..], |l| &l.addresses[..]);
        crate::local::is_local(ip, mine)
    }

    /// Where the server's side of a step runs: this machine for a local address.
    pub(crate) fn server_of(&self, ip: IpAddr) -> Machine {
        if self.is_here(ip) {
            Machine::This
        } else {
            Machine::Server(self.facts.checked().host.to_string())
        }
    }

    /// The failed addresses whose evidence satisfies `pred`.
    pub(crate) fn failed_where(
        &self,
        pred: impl Fn(&AddressResult) -> bool,
    ) -> Vec<&'a AddressResult> {
        self.results()
            .filter(|a| a.outcome != Outcome::Open && pred(a))
            .collect()
    }

    /// The outcome of the first address, when no address is open (the verdict's evidence).
    pub(crate) fn failed_first(&self) -> Option<&'a AddressResult> {
        self.first().filter(|a| a.outcome != Outcome::Open)
    }
}

/// The host as people named it, or the address when they gave one.
pub(crate) fn host_or(target: &Target, ip: IpAddr) -> String {
    match &target.host {
        Host::Name(n) => n.clone(),
        Host::Ip(_) => ip.to_string(),
    }
}

/// "198.18.0.2, fd00::2".
pub(crate) fn list(addrs: &[&AddressResult]) -> String {
    addrs
        .iter()
        .map(|a| a.address.ip().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
