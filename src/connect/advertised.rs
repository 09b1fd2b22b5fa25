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
pub struct Named {
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
pub fn named(svc: &ServiceFacts) -> Vec<Named> {
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
pub async fn check<R: Resolver, C: Connector>(
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
