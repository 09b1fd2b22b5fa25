//! Which name server said what: each configured server asked on its own, A and AAAA at once.
//!
//! A resolver built on the whole server list hides which server answered; one resolver per
//! server (same search list and `ndots`, one attempt, no cache, no hosts file) shows each
//! server's answer, its CNAME chain with TTLs, the name that finally answered (after search
//! domains), and how long it took. A server that does not answer gets its port 53 probed
//! over TCP and UDP, to tell "down" from "unreachable" from "not a name server".

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::str::FromStr;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RecordType};
use hickory_resolver::{Resolver, lookup::Lookup as HLookup};
use tokio::time::Instant;

use super::files::ResolvConf;
use super::{DnsErrorKind, Lookup, LookupError, classify};
use crate::probe::ProbeFact;

/// One record of an answer, as shown to people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordView {
    pub name: String,
    pub kind: String,
    pub ttl: u32,
    pub data: String,
}

/// One server's view of the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerView {
    pub server: SocketAddr,
    /// What kind of local resolver this is, for loopback servers.
    pub stub: Option<Stub>,
    /// Addresses (A then AAAA), time, or the error.
    pub lookup: Lookup,
    /// The answer: CNAME chain and address records, with TTLs.
    pub records: Vec<RecordView>,
    /// The name that answered, when a search domain was appended to get it.
    pub name_used: Option<String>,
    /// When the server did not answer: what its port 53 does.
    pub port53: Option<Port53>,
}

/// What a silent name server's port 53 does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port53 {
    /// The TCP connection attempt to port 53, as probed (the diagnosis says what it means).
    pub tcp: ProbeFact,
    pub udp: Udp53,
}

/// What one DNS query on a connected UDP socket got back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Udp53 {
    Answered,
    /// ICMP port-unreachable: nothing listens on UDP port 53.
    Refused,
    NoAnswer,
}

/// A name server on this machine: a stub that forwards to the real servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stub {
    /// 127.0.0.53 / 127.0.0.54.
    SystemdResolved,
    /// Another loopback address: dnsmasq, unbound, …
    Local,
}

/// How long the port-53 probes of a silent server may take.
pub const PORT53_BUDGET: Duration = Duration::from_millis(100);

/// Recognise a local stub resolver by its address.
pub fn stub_kind(ip: IpAddr) -> Option<Stub> {
    match ip {
        IpAddr::V4(v4) if v4.octets() == [127, 0, 0, 53] || v4.octets() == [127, 0, 0, 54] => {
            Some(Stub::SystemdResolved)
        }
        ip if ip.is_loopback() => Some(Stub::Local),
        _ => None,
    }
}

/// Ask one server about `name` (A and AAAA at once), within `deadline`.
pub async fn query(
    server: SocketAddr,
    name: &str,
    conf: &ResolvConf,
    deadline: Instant,
) -> ServerView {
    let start = Instant::now();
    // hickory's UDP socket is not connected, so it never hears the ICMP port-unreachable of a
    // server where nothing listens on port 53; it would wait its full timeout. A connected
    // UDP probe, sent at the same time, hears it at once.
    let asking = tokio::time::timeout_at(deadline, ask(server, name, conf));
    let closed = async {
        match udp_probe(server, deadline).await {
            Udp53::Refused => {}
            _ => std::future::pending::<()>().await,
        }
    };
    let (result, udp_refused) = tokio::select! {
        r = asking => (r.ok(), false),
        () = closed => (Some((
            Err(LookupError::new(DnsErrorKind::Timeout)),
            vec![],
            None,
        )), true),
    };
    let (lookup_result, records, name_used) =
        result.unwrap_or_else(|| (Err(LookupError::new(DnsErrorKind::Timeout)), vec![], None));
    let elapsed = start.elapsed();
    let (addresses, error) = match lookup_result {
        Ok(a) => (a, None),
        Err(e) => (vec![], Some(e)),
    };
    let timed_out = error
        .as_ref()
        .is_some_and(|e| e.kind == DnsErrorKind::Timeout);
    let port53 = if timed_out {
        let until = deadline.min(Instant::now() + PORT53_BUDGET);
        Some(probe_port53(server, until, udp_refused).await)
    } else {
        None
    };
    ServerView {
        server,
        stub: stub_kind(server.ip()),
        lookup: Lookup {
            addresses,
            elapsed,
            error,
        },
        records,
        name_used,
        port53,
    }
}

type Asked = (
    Result<Vec<IpAddr>, LookupError>,
    Vec<RecordView>,
    Option<String>,
);

async fn ask(server: SocketAddr, name: &str, conf: &ResolvConf) -> Asked {
    // UDP only: a TCP fallback would double the time a dead server costs.
    let mut ns = NameServerConfig::udp(server.ip());
    for c in &mut ns.connections {
        c.port = server.port();
    }
    let search = conf
        .search
        .iter()
        .filter_map(|s| Name::from_str(s).ok())
        .collect();
    let config = ResolverConfig::from_parts(None, search, vec![ns]);
    let mut builder = Resolver::builder_with_config(config, TokioRuntimeProvider::default());
    let opts = builder.options_mut();
    opts.use_hosts_file = ResolveHosts::Never;
    opts.cache_size = 0;
    // hickory counts retries after the first try; one try per server is what we want.
    opts.attempts = 0;
    opts.ndots = conf.ndots;
    opts.timeout = conf.timeout;
    opts.preserve_intermediates = true;
    let resolver = match builder.build() {
        Ok(r) => r,
        Err(e) => {
            let err = LookupError::new(classify(&e));
            return (Err(err), vec![], None);
        }
    };
    let (a, aaaa) = tokio::join!(
        resolver.lookup(name, RecordType::A),
        resolver.lookup(name, RecordType::AAAA)
    );
    let mut asked = merge(name, a, aaaa);
    // NODATA: the name exists. Which records does it have? (ANY is refused by many servers,
    // RFC 8482; a few common types, asked at once, cost one more round trip on failure only.)
    if matches!(&asked.0, Err(e) if e.kind == DnsErrorKind::Nodata) {
        let types = [
            RecordType::MX,
            RecordType::TXT,
            RecordType::NS,
            RecordType::CAA,
        ];
        let others = futures_util::future::join_all(types.map(|t| resolver.lookup(name, t))).await;
        for l in others.iter().flatten() {
            for r in l.answers() {
                let view = record_view(r);
                if !asked.1.contains(&view) {
                    asked.1.push(view);
                }
            }
        }
    }
    asked
}

fn record_view(r: &hickory_resolver::proto::rr::Record) -> RecordView {
    RecordView {
        name: r.name.to_string(),
        kind: r.record_type().to_string(),
        ttl: r.ttl,
        data: r.data.to_string(),
    }
}

/// Combine the A and AAAA answers into one view.
fn merge(name: &str, a: Result<HLookup, NetError>, aaaa: Result<HLookup, NetError>) -> Asked {
    let mut records = Vec::new();
    let mut addresses = Vec::new();
    let mut name_used = None;
    for l in [&a, &aaaa].into_iter().flatten() {
        let used = l.query().name().to_string();
        if used.trim_end_matches('.') != name.trim_end_matches('.') {
            name_used.get_or_insert(used.trim_end_matches('.').to_string());
        }
        for r in l.answers() {
            let view = record_view(r);
            if !records.contains(&view) {
                records.push(view);
            }
            let is_address = matches!(r.record_type(), RecordType::A | RecordType::AAAA);
            if let Some(ip) = IpAddr::from_str(&r.data.to_string())
                .ok()
                .filter(|ip| is_address && !addresses.contains(ip))
            {
                addresses.push(ip);
            }
        }
    }
    if !addresses.is_empty() {
        return (Ok(addresses), records, name_used);
    }
    // hickory's texts carry its debug output (`Query { name: Name(…) … }`): only the kind
    // goes on; the diagnosis words it.
    let err = |e: &NetError| LookupError::new(classify(e));
    let nodata = |e: &NetError| matches!(e, NetError::Dns(DnsError::NoRecordsFound(nr)) if nr.response_code == ResponseCode::NoError);
    let error = match (&a, &aaaa) {
        (Err(x), Err(y)) if nodata(x) && !nodata(y) => err(y),
        (Err(x), _) => err(x),
        (Ok(_), Err(y)) => err(y),
        // Answers, but no address records (a CNAME to nowhere): no data for this name.
        (Ok(_), Ok(_)) => LookupError::new(DnsErrorKind::Nodata),
    };
    (Err(error), records, name_used)
}

/// A silent server: does anything answer on its port 53? (`udp_refused`: the UDP side is
/// already known to be closed; asking again would only spend the server's ICMP rate limit.)
async fn probe_port53(server: SocketAddr, deadline: Instant, udp_refused: bool) -> Port53 {
    use crate::probe::{Connector, KernelConnector, ProbeSpec};
    let udp = async {
        if udp_refused {
            Udp53::Refused
        } else {
            udp_probe(server, deadline).await
        }
    };
    let (tcp, udp) = tokio::join!(KernelConnector.probe(ProbeSpec::to(server), deadline), udp);
    Port53 { tcp, udp }
}

/// Send one DNS query on a connected UDP socket: an ICMP port-unreachable comes back as
/// ECONNREFUSED on the next receive.
async fn udp_probe(server: SocketAddr, deadline: Instant) -> Udp53 {
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    let Ok(std_sock) = UdpSocket::bind(bind) else {
        return Udp53::NoAnswer;
    };
    let _ = std_sock.set_nonblocking(true);
    let Ok(sock) = tokio::net::UdpSocket::from_std(std_sock) else {
        return Udp53::NoAnswer;
    };
    if sock.connect(server).await.is_err() {
        return Udp53::NoAnswer;
    }
    // A minimal query: id 0x6361, RD, one question "." type NS class IN.
    let query = [
        0x63, 0x61, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1,
    ];
    if let Err(e) = sock.send(&query).await {
        return if e.kind() == std::io::ErrorKind::ConnectionRefused {
            Udp53::Refused
        } else {
            Udp53::NoAnswer
        };
    }
    let mut buf = [0u8; 512];
    match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
        Ok(Ok(_)) => Udp53::Answered,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Udp53::Refused,
        _ => Udp53::NoAnswer,
    }
}
