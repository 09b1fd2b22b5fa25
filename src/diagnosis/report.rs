//! [`Report`]: a check's facts and everything the diagnosis made of them, in one value. It is
//! what the renderers, the workflows and the exporter read: each address's facts sit beside
//! their judgement ([`AddressReport`]), so nothing downstream pairs two lists or judges a fact
//! again.

use super::finding::Finding;
use super::outcome::{AddressResult, Evidence, Verdict, out_of_resources};
use super::plan::PlannedStep;
use super::views::{Liveness, Path};
use super::words::{errno_name, errno_text};
use crate::dns::LookupError;
use crate::facts::{AddressEntry, AddressFacts, Facts};

/// One address: what was gathered about it, and what that means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressReport {
    pub facts: AddressFacts,
    pub result: AddressResult,
}

impl AddressEntry for AddressReport {
    fn gathered(&self) -> &AddressFacts {
        &self.facts
    }
}

/// A finished check: the facts (each address with its judgement), the verdict, the summary,
/// the findings and the planned steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// What the check gathered, each address with what it means.
    pub facts: Facts<AddressReport>,
    pub verdict: Verdict,
    /// One plain sentence, escaped.
    pub summary: String,
    /// Strongest first.
    pub findings: Vec<Finding>,
    /// The numbered next steps, planned once over all findings.
    pub steps: Vec<PlannedStep>,
    /// Is the host of the first address up? (Only when that address was slow to answer.)
    pub liveness: Option<Liveness>,
    /// Where packets go on the way to the first address (when the path was walked).
    pub path: Option<Path>,
    /// Why the name gave no address (only with `dns_error`), in canreach's words.
    pub dns_error: Option<LookupError>,
    /// Through a proxy: what each plain connect to the destination got, in the order of
    /// `facts.via`'s direct probes (it never decides the verdict).
    pub direct: Vec<AddressResult>,
    /// The members or brokers the service advertised (`facts.advertised`), each with what
    /// reaching it from here gave.
    pub(crate) advertised: Vec<MemberReport>,
}

/// One advertised member or broker, judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemberReport {
    pub member: crate::facts::AdvertisedMember,
    pub reach: super::advertised::Reach,
    /// Each of its addresses' connects, judged as the check's own addresses are.
    pub results: Vec<AddressResult>,
}

impl Report {
    /// Each address's judgement, in the order clients try them.
    pub(crate) fn results(&self) -> impl Iterator<Item = &AddressResult> + '_ {
        self.facts.addresses.iter().map(|a| &a.result)
    }

    /// A failure that says nothing about the network: this machine could not even make a
    /// socket (out of file descriptors, of buffer memory). It is no verdict about the target;
    /// the run is an internal error, with this line. (`local_error` keeps the rest: an
    /// address family this machine lacks, no free local port.)
    pub(crate) fn resource_failure(&self) -> Option<String> {
        self.results().find_map(|a| match a.evidence {
            Evidence::LocalError(e) if out_of_resources(e) => Some(format!(
                "this machine could not open a socket to {}: {} ({}) — raise the open-file \
                 limit (ulimit -n) or free resources, then check again",
                a.address,
                errno_text(e),
                errno_name(e)
            )),
            _ => None,
        })
    }
}
