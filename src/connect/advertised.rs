//! The members a MongoDB replica set names in its `hello`, and the brokers a Kafka cluster
//! names in its Metadata, each checked from here the way a client reaches them next.
//!
//! A driver or a Kafka client uses the first address only to learn these names; it then
//! connects to each name as the server wrote it. A name that resolves only inside the
//! cluster, `localhost`, or an address this machine cannot reach is the classic failure: the
//! first connect works and the application still fails. So each name is resolved with the
//! system's resolver and connected to once, all of them at once, for at most
//! [`liveness::FAIR_WAIT`] within the check's deadline. Facts only.

use std::net::{IpAddr, SocketAddr};

use futures_util::future::join_all;
use tokio::time::Instant;

use crate::dns::Resolver;
use crate::facts::{ADVERTISED_MAX, AddressFacts, Advertised, AdvertisedMember, MemberRole};
use crate::liveness;
use crate::probe::{Connector, ProbeSpec};
use crate::session::ServiceFacts;
use crate::session::protocols::{Protocol, ProtocolFacts};

/// The most addresses of one name connected to (clients try them in order).
const ADDRESSES_MAX: usize = 4;

/// MongoDB's port when a member's name has none.
const MONGODB_PORT: u16 = 27017;

/// A name as advertised, before it is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Named {
    pub name: String,
    pub host: String,
    pub port: Option<u16>,
    pub role: MemberRole,
    pub primary: bool,
    pub me: bool,
}

/// `host:port`, `[v6]:port`, `host` (the default port) or a bare IPv6 address.
fn split_host_port(name: &str, default: u16) -> (String, Option<u16>) {
    let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p != 0);
    if let Some(rest) = name.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((h, "")) => (h.to_string(), Some(default)),
            Some((h, tail)) => (h.to_string(), tail.strip_prefix(':').and_then(port)),
            None => (name.to_string(), None),
        };
    }
    match name.matches(':').count() {
        0 => (name.to_string(), Some(default)),
        1 => {
            let (h, p) = name.split_once(':').unwrap_or((name, ""));
            (h.to_string(), port(p))
        }
        // An IPv6 address without brackets: no port can be told apart.
        _ => (name.to_string(), Some(default)),
    }
}

/// The names a service's answer gave, in its order, each once.
pub(crate) fn named(svc: &ServiceFacts) -> Vec<Named> {
    let mut out: Vec<Named> = Vec::new();
    match svc.last() {
        ProtocolFacts::MongoDb(f) => {
            let Some(h) = &f.hello else {
                return out;
            };
            let lists = [
                (&h.hosts, MemberRole::Host),
                (&h.passives, MemberRole::Passive),
                (&h.arbiters, MemberRole::Arbiter),
            ];
            let singles = [h.primary.iter(), h.me.iter()];
            let all = lists
                .iter()
                .flat_map(|(l, role)| l.iter().map(move |n| (n, *role)))
                .chain(
                    singles
                        .into_iter()
                        .flatten()
                        .map(|n| (n, MemberRole::Named)),
                );
            for (name, role) in all {
                if out.iter().any(|m| m.name == *name) {
                    continue;
                }
                let (host, port) = split_host_port(name, MONGODB_PORT);
                out.push(Named {
                    name: name.clone(),
                    host,
                    port,
                    role,
                    primary: h.primary.as_ref() == Some(name),
                    me: h.me.as_ref() == Some(name),
                });
            }
        }
        ProtocolFacts::Kafka(f) => {
            for b in f.metadata.iter().flat_map(|m| &m.brokers) {
                let name = format!("{}:{}", b.host, b.port);
                if out.iter().any(|m| m.name == name) {
                    continue;
                }
                out.push(Named {
                    name,
                    host: b.host.clone(),
                    port: u16::try_from(b.port).ok().filter(|p| *p != 0),
                    role: MemberRole::Broker(b.node_id),
                    primary: false,
                    me: false,
                });
            }
        }
        _ => {}
    }
    out
}

/// Check the names the first address's answer gave (in client order), when one gave any.
pub(crate) async fn check<R: Resolver, C: Connector>(
    resolver: &R,
    connector: &C,
    addresses: &[AddressFacts],
    deadline: Instant,
) -> Option<Advertised> {
    let (from, svc) = addresses.iter().find_map(|a| {
        let svc = a.session.as_ref()?.service.as_ref()?;
        matches!(svc.protocol, Protocol::MongoDb | Protocol::Kafka)
            .then(|| (a.address(), svc))
            .filter(|(_, svc)| !named(svc).is_empty())
    })?;
    let names = named(svc);
    let start = Instant::now();
    let until = deadline.min(start + liveness::FAIR_WAIT);
    let unchecked = names.len().saturating_sub(ADVERTISED_MAX);
    let members = join_all(
        names
            .into_iter()
            .take(ADVERTISED_MAX)
            .map(|n| member(resolver, connector, n, until)),
    )
    .await;
    Some(Advertised {
        protocol: svc.protocol,
        from,
        members,
        unchecked,
        waited: until.saturating_duration_since(start),
    })
}

/// Resolve one name and connect to its addresses, until `until`.
async fn member<R: Resolver, C: Connector>(
    resolver: &R,
    connector: &C,
    n: Named,
    until: Instant,
) -> AdvertisedMember {
    let (ips, lookup_error) = match (n.port, n.host.parse::<IpAddr>()) {
        (None, _) => (vec![], None),
        (Some(_), Ok(ip)) => (vec![ip], None),
        (Some(_), Err(_)) if n.host.is_empty() => (vec![], None),
        (Some(_), Err(_)) => {
            let l = resolver.system(&n.host, until).await;
            (l.addresses, l.error)
        }
    };
    let port = n.port.unwrap_or(0);
    let probes = join_all(
        ips.into_iter()
            .take(ADDRESSES_MAX)
            .map(|ip| connector.probe(ProbeSpec::to(SocketAddr::new(ip, port)), until)),
    )
    .await;
    AdvertisedMember {
        name: n.name,
        host: n.host,
        port: n.port,
        role: n.role,
        primary: n.primary,
        me: n.me,
        lookup_error,
        probes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    use crate::dns::{DnsErrorKind, DnsView, Lookup, LookupError};
    use crate::probe::{ConnectResult, ProbeFact};
    use crate::session::protocols::mongodb::{Hello, MongoFacts};
    use crate::session::protocols::{Ending, ProtocolFacts};
    use crate::session::watch::First;
    use crate::session::{ServiceFacts, SessionFacts};

    /// Names under `.lab` resolve to 198.18.2.2; others do not exist. Port 27017 answers,
    /// every other port is silent until the deadline. Records each connect's start.
    struct Fake {
        connects: Mutex<Vec<(SocketAddr, Instant)>>,
    }
    impl Resolver for Fake {
        async fn system(&self, name: &str, _: Instant) -> Lookup {
            let ok = name.ends_with(".lab");
            Lookup {
                addresses: if ok {
                    vec!["198.18.2.2".parse().unwrap()]
                } else {
                    vec![]
                },
                elapsed: Duration::ZERO,
                error: (!ok).then(|| LookupError::new(DnsErrorKind::Nxdomain)),
            }
        }
        async fn direct(&self, _: &str, _: Instant) -> Option<DnsView> {
            None
        }
    }
    impl Connector for Fake {
        async fn stream(
            &self,
            _: SocketAddr,
            _: Instant,
        ) -> std::io::Result<tokio::net::TcpStream> {
            Err(std::io::ErrorKind::Unsupported.into())
        }
        async fn probe(&self, spec: ProbeSpec, deadline: Instant) -> ProbeFact {
            let start = Instant::now();
            self.connects.lock().unwrap().push((spec.address, start));
            let result = if spec.address.port() == 27017 {
                ConnectResult::Connected
            } else {
                tokio::time::sleep_until(deadline).await;
                ConnectResult::TimedOut
            };
            ProbeFact {
                spec,
                result,
                elapsed: start.elapsed(),
                icmp: None,
                local: None,
            }
        }
    }

    /// An open address whose MongoDB `hello` named `hosts`.
    fn answered(hosts: Vec<String>) -> AddressFacts {
        let from: SocketAddr = "198.18.2.2:27017".parse().unwrap();
        let hello = Hello {
            set_name: Some("rs0".into()),
            me: hosts.first().cloned(),
            hosts,
            ..Hello::default()
        };
        let svc = ServiceFacts {
            protocol: Protocol::MongoDb,
            tls_required: false,
            user: None,
            database: None,
            local: None,
            first: ProtocolFacts::MongoDb(MongoFacts {
                hello: Some(hello),
                legacy: false,
                build_info: None,
                failure: None,
                ended: Ending::Closed,
                elapsed: Duration::ZERO,
            }),
            after_tls: None,
        };
        let mut a = AddressFacts {
            probe: ProbeFact {
                spec: ProbeSpec::to(from),
                result: ConnectResult::Connected,
                elapsed: Duration::ZERO,
                icmp: None,
                local: None,
            },
            silence: None,
            here: false,
            session: None,
            queue: None,
            udp: None,
        };
        a.session = Some(SessionFacts {
            address: from,
            window: Duration::ZERO,
            accepted: None,
            waiting_for_client: None,
            not_accepted: None,
            first: First::Unwatched,
            via: None,
            tls: None,
            mss_retry: None,
            http: None,
            tls_confirm: None,
            answered: None,
            service: Some(svc),
        });
        a
    }

    #[tokio::test(start_paused = true)]
    async fn sixteen_names_at_most_all_at_once_within_a_fair_wait() {
        let fake = Fake {
            connects: Mutex::new(vec![]),
        };
        // 20 members: the first answers, 18 are silent, one does not resolve.
        let mut hosts: Vec<String> = (0..19).map(|i| format!("m{i}.lab:{}", 27017 + i)).collect();
        hosts.insert(1, "m-x.svc.cluster.local:27017".into());
        let start = Instant::now();
        let deadline = start + Duration::from_secs(5);
        let a = check(&fake, &fake, &[answered(hosts)], deadline)
            .await
            .unwrap();
        assert_eq!(a.members.len(), ADVERTISED_MAX);
        assert_eq!(a.unchecked, 4);
        assert_eq!(a.waited, liveness::FAIR_WAIT);
        // All at once: 15 connects (one name did not resolve), all begun at the start, and
        // the silent ones ended at the fair wait, not one after another.
        let connects = fake.connects.lock().unwrap().clone();
        assert_eq!(connects.len(), ADVERTISED_MAX - 1);
        assert!(connects.iter().all(|(_, t)| *t == start));
        assert_eq!(start.elapsed(), liveness::FAIR_WAIT);
        assert_eq!(a.members[0].role, MemberRole::Host);
        assert!(a.members[0].me);
        assert_eq!(a.members[0].probes[0].result, ConnectResult::Connected);
        assert_eq!(
            a.members[1].lookup_error.as_ref().map(|e| e.kind),
            Some(DnsErrorKind::Nxdomain)
        );
        assert!(a.members[1].probes.is_empty());
        assert_eq!(a.members[2].probes[0].result, ConnectResult::TimedOut);
        // A deadline nearer than the fair wait bounds the wait.
        let start = Instant::now();
        let near = start + Duration::from_millis(300);
        let a = check(&fake, &fake, &[answered(vec!["m1.lab:27018".into()])], near)
            .await
            .unwrap();
        assert_eq!(a.waited, Duration::from_millis(300));
        assert_eq!(start.elapsed(), Duration::from_millis(300));
        // No names, nothing to check.
        assert_eq!(
            check(&fake, &fake, &[answered(vec![])], deadline).await,
            None
        );
    }

    #[test]
    fn kafka_brokers_are_named_host_colon_port_once_each() {
        use crate::session::protocols::kafka::{Broker, KafkaFacts, Metadata};
        let broker = |node_id, host: &str, port| Broker {
            node_id,
            host: host.into(),
            port,
            rack: None,
        };
        let mut svc = answered(vec![]).session.unwrap().service.unwrap();
        svc.protocol = Protocol::Kafka;
        svc.first = ProtocolFacts::Kafka(KafkaFacts {
            api_versions: None,
            no_common_metadata_version: None,
            metadata: Some(Metadata {
                version: 2,
                brokers: vec![
                    broker(1, "localhost", 9092),
                    broker(2, "kafka-2.lab", 9092),
                    broker(2, "kafka-2.lab", 9092),
                    broker(3, "kafka-3.lab", 70000),
                ],
                brokers_cut: false,
                cluster_id: None,
                controller_id: Some(1),
                error_code: None,
            }),
            failure: None,
            ended: Ending::Closed,
            elapsed: Duration::ZERO,
        });
        let n = named(&svc);
        let got: Vec<(&str, Option<u16>, MemberRole)> = n
            .iter()
            .map(|m| (m.name.as_str(), m.port, m.role))
            .collect();
        assert_eq!(
            got,
            [
                ("localhost:9092", Some(9092), MemberRole::Broker(1)),
                ("kafka-2.lab:9092", Some(9092), MemberRole::Broker(2)),
                ("kafka-3.lab:70000", None, MemberRole::Broker(3)),
            ]
        );
    }

    #[test]
    fn names_split_as_drivers_read_them() {
        let s = |n| split_host_port(n, 27017);
        assert_eq!(s("mongo-0.db:27018"), ("mongo-0.db".into(), Some(27018)));
        assert_eq!(s("mongo-0.db"), ("mongo-0.db".into(), Some(27017)));
        assert_eq!(s("[fd00:2::2]:27019"), ("fd00:2::2".into(), Some(27019)));
        assert_eq!(s("[fd00:2::2]"), ("fd00:2::2".into(), Some(27017)));
        assert_eq!(s("fd00:2::2"), ("fd00:2::2".into(), Some(27017)));
        assert_eq!(s("db:0"), ("db".into(), None));
        assert_eq!(s("db:x"), ("db".into(), None));
        assert_eq!(s("db:70000"), ("db".into(), None));
    }
}
