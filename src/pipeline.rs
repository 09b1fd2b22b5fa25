//! The pipeline: run the stages, concurrently where that saves time, under one deadline.
//!
//! ```text
//! target ──► name stage ─┬─ system view (getaddrinfo) ──► probe every address (in parallel)
//!                        └─ DNS view (hickory) ─────────► (joined; never waited on past a grace)
//!                                                   └──► Facts ──► diagnosis ──► renderer
//! ```
//!
//! Stages only gather [`Facts`]; nothing here decides or prints. The side effects come in
//! through the [`Resolver`] and [`Connector`] seams.

use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;

use crate::dns::{DnsFacts, Lookup, Resolver};
use crate::facts::Facts;
use crate::probe::{Connector, ProbeSpec};
use crate::target::{Host, Target};

/// The default deadline for a whole check.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long, once the probes are done, the check still waits for a DNS view it does not need
/// for the verdict. The DNS view only adds comparisons when the system lookup succeeded, and a
/// dead name server behind an /etc/hosts answer must not hold the check to its deadline.
pub const DNS_VIEW_GRACE: Duration = Duration::from_millis(250);

/// What a check may do.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Everything, DNS included, finishes within this.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Run every stage for `target` and collect the facts.
pub async fn gather<R: Resolver, C: Connector>(
    target: Target,
    opts: Options,
    resolver: &R,
    connector: &C,
) -> Facts {
    let start = Instant::now();
    let deadline = start + opts.timeout;
    let port = target.port.get();

    let (dns, probes) = match &target.host {
        Host::Ip(ip) => {
            let probes = connector
                .probe(ProbeSpec::to((*ip, port).into()), deadline)
                .await;
            (DnsFacts::default(), vec![probes])
        }
        Host::Name(name) => {
            let direct = resolver.direct(name, deadline);
            let work = async {
                let system = resolver.system(name, deadline).await;
                let specs = system
                    .addresses
                    .iter()
                    .map(|ip| ProbeSpec::to((*ip, port).into()));
                let probes = join_all(specs.map(|s| connector.probe(s, deadline))).await;
                (system, probes)
            };
            tokio::pin!(direct, work);
            let mut direct_done: Option<Option<Lookup>> = None;
            let (system, probes) = loop {
                tokio::select! {
                    d = &mut direct, if direct_done.is_none() => direct_done = Some(d),
                    w = &mut work => break w,
                };
            };
            let direct = match direct_done {
                Some(d) => d,
                None => {
                    // A failed system lookup needs DNS's precise error kind: wait for it.
                    let wait_until = if system.error.is_some() {
                        deadline
                    } else {
                        deadline.min(Instant::now() + DNS_VIEW_GRACE)
                    };
                    tokio::time::timeout_at(wait_until, direct)
                        .await
                        .ok()
                        .flatten()
                }
            };
            (
                DnsFacts {
                    system: Some(system),
                    direct,
                },
                probes,
            )
        }
    };
    Facts {
        target,
        dns,
        probes,
        timeout: opts.timeout,
        elapsed: start.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::{DnsErrorKind, LookupError};
    use crate::probe::{ConnectResult, ProbeFact};
    use crate::services::Services;
    use std::net::IpAddr;
    use std::sync::Mutex;

    /// Answers from a script; records what was probed.
    struct Fake {
        system: Vec<IpAddr>,
        direct_delay: Duration,
        probed: Mutex<Vec<ProbeSpec>>,
    }
    impl Resolver for Fake {
        async fn system(&self, _: &str, _: Instant) -> Lookup {
            Lookup {
                addresses: self.system.clone(),
                elapsed: Duration::ZERO,
                error: (self.system.is_empty()).then(|| LookupError {
                    kind: DnsErrorKind::Nxdomain,
                    text: "not found".into(),
                }),
            }
        }
        async fn direct(&self, _: &str, deadline: Instant) -> Option<Lookup> {
            let until = deadline.min(Instant::now() + self.direct_delay);
            tokio::time::sleep_until(until).await;
            Some(Lookup {
                addresses: vec![],
                elapsed: self.direct_delay,
                error: Some(LookupError {
                    kind: DnsErrorKind::Servfail,
                    text: "servfail".into(),
                }),
            })
        }
    }
    impl Connector for Fake {
        async fn probe(&self, spec: ProbeSpec, _: Instant) -> ProbeFact {
            self.probed.lock().unwrap().push(spec);
            ProbeFact {
                spec,
                result: ConnectResult::Connected,
                elapsed: Duration::ZERO,
                icmp: None,
            }
        }
    }
    fn fake(system: &[&str], direct_delay: Duration) -> Fake {
        Fake {
            system: system.iter().map(|a| a.parse().unwrap()).collect(),
            direct_delay,
            probed: Mutex::new(vec![]),
        }
    }
    fn target(s: &str) -> Target {
        crate::target::parse(s, None, &Services::parse("")).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn probes_every_address_in_system_order() {
        let f = fake(&["fd00::2", "198.18.0.2"], Duration::from_millis(1));
        let facts = gather(target("db:5432"), Options::default(), &f, &f).await;
        let probed: Vec<String> = facts.addresses().map(|a| a.to_string()).collect();
        assert_eq!(probed, ["[fd00::2]:5432", "198.18.0.2:5432"]);
        assert_eq!(f.probed.lock().unwrap().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_dns_view_does_not_hold_a_successful_check() {
        let f = fake(&["198.18.0.2"], Duration::from_secs(60));
        let facts = gather(target("db:5432"), Options::default(), &f, &f).await;
        assert!(
            facts.elapsed <= DNS_VIEW_GRACE + Duration::from_millis(1),
            "{:?}",
            facts.elapsed
        );
        assert_eq!(facts.dns.direct, None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_lookup_waits_for_the_dns_view_but_not_past_the_deadline() {
        let f = fake(&[], Duration::from_secs(2));
        let opts = Options {
            timeout: Duration::from_secs(3),
        };
        let facts = gather(target("db:5432"), opts, &f, &f).await;
        assert_eq!(
            facts.dns.direct.unwrap().error.unwrap().kind,
            DnsErrorKind::Servfail
        );
        assert!(facts.probes.is_empty());
        let f = fake(&[], Duration::from_secs(60));
        let facts = gather(target("db:5432"), opts, &f, &f).await;
        assert!(facts.elapsed <= opts.timeout, "{:?}", facts.elapsed);
    }

    #[tokio::test(start_paused = true)]
    async fn ip_literals_skip_dns() {
        let f = fake(&["198.18.0.9"], Duration::ZERO);
        let facts = gather(target("198.18.0.2:22"), Options::default(), &f, &f).await;
        assert_eq!(facts.dns, DnsFacts::default());
        assert_eq!(facts.probes[0].spec.address.to_string(), "198.18.0.2:22");
    }
}
