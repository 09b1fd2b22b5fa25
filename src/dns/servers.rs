//! Which name server said what: each configured server asked on its own, A and AAAA at once.
//!
//! A resolver built on the whole server list hides which server answered; one resolver per
//! server (one attempt, no cache, no hosts file) shows each server's answer, its CNAME chain with
//! TTLs, the name that answered (after search domains), and how long it took. A server that
//! does not answer gets its port 53 probed over TCP and UDP, to tell "down" from "unreachable"
//! from "not a name server".
//!
//! The rules are glibc's, because the system view (what applications get) is glibc's:
//!
//! * **Search list** (`search`): the walk of `res_search` — the name as given first when it
//!   has at least `ndots` dots (or a final dot), then each search domain, then the name as given
//!   if not yet tried. When nothing gives an answer, the failure reported is the one glibc
//!   reports: the as-given name's, if it was tried first; else NODATA if any name had NODATA;
//!   else SERVFAIL if any had it; else the last one. So `txtonly.test` (TXT only) with
//!   `search corp.test` is NODATA for `txtonly.test`, not the NXDOMAIN of
//!   `txtonly.test.corp.test`.
//! * **Answers** ([`chain`]): only the queried name's records and those of its CNAME chain count;
//!   anything else a server puts in the answer section is ignored (glibc's `getanswer` does the
//!   same), so it can neither become an address nor make servers "disagree".
//! * **Budget** ([`server_budget`]): each server gets `min(timeout, half the time left)`. glibc
//!   waits resolv.conf's `timeout` (default 5 s) on a silent server; with the check's default
//!   5 s deadline that wait would outlast the check and the report could not say which server is
//!   dead. Half the time left leaves the rest for the port-53 probes and the report.
//! * **Transport**: UDP first; TCP only when an answer comes back truncated (TC bit), so a dead
//!   server costs one UDP timeout, never a TCP one on top.
//! * **Record data** ([`rdata_text`]) is in presentation format, written here rather than by
//!   hickory's `Display`, so no library formatting (or panic, for OPT) can reach a report.
//!   TXT strings keep their bytes (control characters included): escaping for a terminal is the
//!   renderer's job.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::str::FromStr;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::rdata::CNAME;
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
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
    /// ICMP host/network unreachable: the server is not there (a failed ARP on its network).
    Unreachable,
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
pub(crate) const PORT53_BUDGET: Duration = Duration::from_millis(100);

/// Recognise a local stub resolver by its address.
pub(crate) fn stub_kind(ip: IpAddr) -> Option<Stub> {
    match ip {
        IpAddr::V4(v4) if v4.octets() == [127, 0, 0, 53] || v4.octets() == [127, 0, 0, 54] => {
            Some(Stub::SystemdResolved)
        }
        ip if ip.is_loopback() => Some(Stub::Local),
        _ => None,
    }
}

/// How much of the time left one server may take: resolv.conf's `timeout`, but never more than
/// half the time left, so a silent server is named (and its port 53 probed) well before the
/// deadline. See the module docs.
pub(crate) fn server_budget(timeout: Duration, left: Duration) -> Duration {
    timeout.min(left / 2)
}

/// What the probes of a timed-out server's port 53 saw. Both end by the query's own end,
/// which has passed or nearly (or UDP already settled it): what they saw is ready; a TCP
/// attempt still pending gets at most [`PORT53_BUDGET`].
async fn port53(
    seen: (Option<Udp53>, Option<crate::probe::ProbeFact>),
    udp: std::pin::Pin<&mut impl std::future::Future<Output = Udp53>>,
    tcp: std::pin::Pin<&mut impl std::future::Future<Output = crate::probe::ProbeFact>>,
    server: SocketAddr,
    start: Instant,
    deadline: Instant,
) -> Port53 {
    let probe_until = deadline.min(Instant::now() + PORT53_BUDGET);
    let udp = match seen.0 {
        Some(u) => u,
        None => tokio::time::timeout_at(probe_until, udp)
            .await
            .unwrap_or(Udp53::NoAnswer),
    };
    let tcp = match seen.1 {
        Some(t) => t,
        None => match tokio::time::timeout_at(probe_until, tcp).await {
            Ok(t) => t,
            // Still no answer: that is what it did.
            Err(_) => {
                let silent = crate::probe::ConnectResult::TimedOut;
                crate::probe::ProbeFact::new(server, silent, start.elapsed())
            }
        },
    };
    Port53 { tcp, udp }
}

/// Ask one server about `name` (A and AAAA at once, through the search list), within
/// [`server_budget`] of the time left until `deadline`.
pub async fn query(
    server: SocketAddr,
    name: &str,
    conf: &ResolvConf,
    deadline: Instant,
) -> ServerView {
    let start = Instant::now();
    let budget = server_budget(conf.timeout, deadline.saturating_duration_since(start));
    let until = start + budget;
    // hickory's UDP socket is not connected, so it never hears the ICMP port-unreachable of a
    // server where nothing listens on port 53 (or a "host unreachable" for one that is not
    // there); it would wait its full timeout. A connected UDP probe, sent at the same time,
    // hears it at once. A TCP connection to port 53 is tried alongside too, so that a silent
    // server's port 53 is described when the timeout ends, not 100 ms after it.
    use crate::probe::{Connector, KernelConnector, ProbeSpec};
    let asking = ask(server, name, conf, budget, until);
    let udp = udp_probe(server, until);
    let tcp = KernelConnector.probe(ProbeSpec::to(server), until);
    tokio::pin!(asking, udp, tcp);
    let (mut udp_seen, mut tcp_seen) = (None, None);
    let answer = loop {
        tokio::select! {
            a = &mut asking => break a,
            u = &mut udp, if udp_seen.is_none() => {
                udp_seen = Some(u);
                if matches!(u, Udp53::Refused | Udp53::Unreachable) {
                    break Answer::failed(DnsErrorKind::Timeout, name);
                }
            }
            t = &mut tcp, if tcp_seen.is_none() => {
                // "Host unreachable" on port 53 over TCP: the server is not there (its
                // neighbour lookup failed), so no UDP answer can come either.
                let gone = t.icmp.is_some_and(|i| i.meaning().undeliverable());
                tcp_seen = Some(t);
                if gone {
                    break Answer::failed(DnsErrorKind::Timeout, name);
                }
            }
        }
    };
    let elapsed = start.elapsed();
    let bare = name.trim_end_matches('.');
    let name_used = (!answer.name.eq_ignore_ascii_case(bare)).then(|| answer.name.clone());
    let (addresses, error) = match answer.result {
        Ok(a) => (a, None),
        Err(e) => (vec![], Some(e)),
    };
    let timed_out = error
        .as_ref()
        .is_some_and(|e| e.kind == DnsErrorKind::Timeout);
    let port53 = if timed_out {
        let seen = (udp_seen, tcp_seen);
        Some(port53(seen, udp, tcp, server, start, deadline).await)
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
        records: answer.records,
        name_used,
        port53,
    }
}

/// One server's answer for one absolute name.
#[derive(Debug, Clone)]
struct Answer {
    result: Result<Vec<IpAddr>, LookupError>,
    records: Vec<RecordView>,
    /// The name asked, without the final dot.
    name: String,
}

impl Answer {
    fn failed(kind: DnsErrorKind, name: &str) -> Answer {
        Answer {
            result: Err(LookupError::new(kind)),
            records: vec![],
            name: name.trim_end_matches('.').to_string(),
        }
    }

    fn kind(&self) -> Option<DnsErrorKind> {
        self.result.as_ref().err().map(|e| e.kind)
    }

    /// glibc's "the query succeeded" (`res_query` > 0): the search stops here. Besides
    /// addresses, a NOERROR answer with records for the name (a CNAME to nowhere) ends it too.
    fn found(&self) -> bool {
        match &self.result {
            Ok(_) => true,
            Err(e) => e.kind == DnsErrorKind::Nodata && !self.records.is_empty(),
        }
    }
}

type HResolver = Resolver<TokioRuntimeProvider>;

async fn ask(
    server: SocketAddr,
    name: &str,
    conf: &ResolvConf,
    budget: Duration,
    until: Instant,
) -> Answer {
    // UDP and TCP: hickory's pool asks over UDP and goes to TCP only for a truncated answer
    // (a timeout moves on to the next server, of which there is none), so a dead server still
    // costs one UDP timeout.
    let mut ns = NameServerConfig::udp_and_tcp(server.ip());
    for c in &mut ns.connections {
        c.port = server.port();
    }
    // No search list here: `search` walks it the way glibc does and asks absolute names.
    let config = ResolverConfig::from_parts(None, vec![], vec![ns]);
    let mut builder = Resolver::builder_with_config(config, TokioRuntimeProvider::default());
    let opts = builder.options_mut();
    opts.use_hosts_file = ResolveHosts::Never;
    opts.cache_size = 0;
    // hickory counts retries after the first try; one try per server is what we want.
    opts.attempts = 0;
    opts.timeout = budget;
    opts.preserve_intermediates = true;
    let resolver = match builder.build() {
        Ok(r) => r,
        Err(e) => return Answer::failed(classify(&e), name),
    };
    // The budget bounds the whole walk of the search list, and, separately, the extra types.
    let mut answer = tokio::time::timeout_at(until, search(&resolver, name, conf))
        .await
        .unwrap_or_else(|_| Answer::failed(DnsErrorKind::Timeout, name));
    // NODATA: the name exists. Which records does it have? (ANY is refused by many servers,
    // RFC 8482; a few common types, asked at once, cost one more round trip on failure only,
    // and only within this server's budget: running out loses the extra types, not the answer.)
    if answer.kind() == Some(DnsErrorKind::Nodata)
        && let Ok(absolute) = absolute(&answer.name)
    {
        let types = [
            RecordType::MX,
            RecordType::TXT,
            RecordType::NS,
            RecordType::CAA,
        ];
        let asked =
            futures_util::future::join_all(types.map(|t| resolver.lookup(absolute.clone(), t)));
        if let Ok(others) = tokio::time::timeout_at(until, asked).await {
            for (t, l) in types.iter().zip(&others) {
                let Ok(l) = l else { continue };
                for r in chain(&absolute, l.answers(), *t) {
                    let view = record_view(r);
                    if !answer.records.contains(&view) {
                        answer.records.push(view);
                    }
                }
            }
        }
    }
    answer
}

/// `name` as an absolute DNS name.
fn absolute(name: &str) -> Result<Name, LookupError> {
    let mut n = Name::from_str(name.trim_end_matches('.'))
        .map_err(|_| LookupError::new(DnsErrorKind::Other))?;
    n.set_fqdn(true);
    Ok(n)
}

/// glibc's `res_search` walk of the search list (resolv/res_query.c), with the default options
/// (`RES_DEFNAMES`, `RES_DNSRCH`). Each step asks A and AAAA for one absolute name.
async fn search(resolver: &HResolver, name: &str, conf: &ResolvConf) -> Answer {
    let trailing_dot = name.ends_with('.');
    let bare = name.trim_end_matches('.');
    let dots = bare.matches('.').count();
    // The as-given name's failure, when it was asked first: the failure glibc reports.
    let mut as_given: Option<Answer> = None;
    if trailing_dot || dots >= conf.ndots {
        let a = ask_name(resolver, bare).await;
        if a.found() || trailing_dot {
            return a;
        }
        as_given = Some(a);
    }
    let tried_as_given = as_given.is_some();
    let mut nodata: Option<Answer> = None;
    let mut servfail: Option<Answer> = None;
    let mut last: Option<Answer> = None;
    let mut root_on_list = false;
    for domain in &conf.search {
        let full = if domain.is_empty() {
            root_on_list = true;
            bare.to_string()
        } else {
            format!("{bare}.{domain}")
        };
        let a = ask_name(resolver, &full).await;
        if a.found() {
            return a;
        }
        // NXDOMAIN and NODATA: keep searching (a wildcard of another type must not hide the
        // name further up); SERVFAIL: try the next domain; anything else (no answer, REFUSED):
        // stop searching, but still try the name as given below.
        let stop = match a.kind() {
            Some(DnsErrorKind::Nodata) => {
                nodata.get_or_insert_with(|| a.clone());
                false
            }
            Some(DnsErrorKind::Nxdomain) => false,
            Some(DnsErrorKind::Servfail) => {
                servfail.get_or_insert_with(|| a.clone());
                false
            }
            _ => true,
        };
        last = Some(a);
        if stop {
            break;
        }
    }
    if !(tried_as_given || root_on_list) {
        let a = ask_name(resolver, bare).await;
        if a.found() {
            return a;
        }
        last = Some(a);
    }
    as_given
        .or(nodata)
        .or(servfail)
        .or(last)
        .unwrap_or_else(|| Answer::failed(DnsErrorKind::Other, bare))
}

/// A and AAAA for one absolute name, at once.
async fn ask_name(resolver: &HResolver, name: &str) -> Answer {
    let absolute = match absolute(name) {
        Ok(n) => n,
        Err(e) => {
            return Answer {
                result: Err(e),
                records: vec![],
                name: name.to_string(),
            };
        }
    };
    let (a, aaaa) = tokio::join!(
        resolver.lookup(absolute.clone(), RecordType::A),
        resolver.lookup(absolute.clone(), RecordType::AAAA)
    );
    let (result, records) = merge(&absolute, a, aaaa);
    Answer {
        result,
        records,
        name: name.to_string(),
    }
}

/// The longest CNAME chain followed (glibc follows fewer; a loop ends here too).
const MAX_CHAIN: usize = 16;

/// The records of an answer that are about `query`: the CNAME chain from it, then the records
/// of type `want` owned by the chain's last name. Anything else in the answer section
/// (unrelated names, records of other names in the chain) is ignored.
pub(crate) fn chain<'a>(query: &Name, answers: &'a [Record], want: RecordType) -> Vec<&'a Record> {
    let mut out: Vec<&Record> = Vec::new();
    let mut current = query.clone();
    for _ in 0..MAX_CHAIN {
        let next = answers
            .iter()
            .find(|r| r.name == current && matches!(&r.data, RData::CNAME(_)) && !out.contains(r));
        match next {
            Some(r) => {
                out.push(r);
                if let RData::CNAME(CNAME(target)) = &r.data {
                    current = target.clone();
                }
            }
            None => break,
        }
    }
    if want != RecordType::CNAME {
        out.extend(
            answers
                .iter()
                .filter(|r| r.name == current && r.record_type() == want),
        );
    }
    out
}

/// Names are kept in their ASCII form (`xn--…` labels as sent, other bytes as `\DDD`):
/// hickory's `Display` decodes `xn--` labels to Unicode, which may hide look-alike letters or
/// carry characters a terminal obeys. What is shown is decided when printing
/// (`escape::display_name`: the ASCII form, with the Unicode one only when it is safe).
fn record_view(r: &Record) -> RecordView {
    RecordView {
        name: r.name.to_ascii(),
        kind: r.record_type().to_string(),
        ttl: r.ttl,
        data: rdata_text(&r.data),
    }
}

/// Record data in presentation format (RFC 1035 §5.1), for the types this stage asks for and
/// CNAME. TXT and CAA values are quoted strings with `"` and `\` escaped; other bytes are kept
/// as they are (non-UTF-8 replaced), so control characters stay data for the renderer to
/// escape. A type this stage never asks for gets no text rather than a library's.
pub(crate) fn rdata_text(data: &RData) -> String {
    fn quoted(bytes: &[u8]) -> String {
        let text = String::from_utf8_lossy(bytes);
        let mut out = String::with_capacity(text.len() + 2);
        out.push('"');
        for c in text.chars() {
            if matches!(c, '"' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        out
    }
    match data {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        // Names in data in their ASCII form too (see `record_view`).
        RData::CNAME(n) => n.0.to_ascii(),
        RData::NS(n) => n.0.to_ascii(),
        RData::PTR(n) => n.0.to_ascii(),
        RData::MX(mx) => format!("{} {}", mx.preference, mx.exchange.to_ascii()),
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|s| quoted(s))
            .collect::<Vec<_>>()
            .join(" "),
        RData::CAA(caa) => format!("{} {} {}", caa.flags(), caa.tag, quoted(&caa.value)),
        _ => String::new(),
    }
}

/// Combine the A and AAAA answers for `name` into one result and its records.
fn merge(
    name: &Name,
    a: Result<HLookup, NetError>,
    aaaa: Result<HLookup, NetError>,
) -> (Result<Vec<IpAddr>, LookupError>, Vec<RecordView>) {
    let mut records = Vec::new();
    let mut addresses = Vec::new();
    for (want, l) in [(RecordType::A, &a), (RecordType::AAAA, &aaaa)] {
        let Ok(l) = l else { continue };
        for r in chain(name, l.answers(), want) {
            let view = record_view(r);
            if !records.contains(&view) {
                records.push(view);
            }
            let ip = match &r.data {
                RData::A(v4) => Some(IpAddr::V4(v4.0)),
                RData::AAAA(v6) => Some(IpAddr::V6(v6.0)),
                _ => None,
            };
            if let Some(ip) = ip.filter(|ip| !addresses.contains(ip)) {
                addresses.push(ip);
            }
        }
    }
    if !addresses.is_empty() {
        return (Ok(addresses), records);
    }
    // hickory's texts carry its debug output (`Query { name: Name(…) … }`): only the kind
    // goes on; the diagnosis words it.
    let err = |e: &NetError| LookupError::new(classify(e));
    let nodata = |e: &NetError| matches!(e, NetError::Dns(DnsError::NoRecordsFound(nr)) if nr.response_code == ResponseCode::NoError);
    let error = match (&a, &aaaa) {
        (Err(x), Err(y)) if nodata(x) && !nodata(y) => err(y),
        (Err(x), _) => err(x),
        (Ok(_), Err(y)) => err(y),
        // Answers, but no address records for the name (a CNAME to nowhere, or only records
        // of other names): no data for this name.
        (Ok(_), Ok(_)) => LookupError::new(DnsErrorKind::Nodata),
    };
    (Err(error), records)
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
    // Without IP_RECVERR a UDP socket ignores ICMP errors that are not "fatal" (host
    // unreachable is not): with it, a failed neighbour lookup comes back as EHOSTUNREACH.
    let (level, opt) = if server.is_ipv4() {
        (libc::SOL_IP, libc::IP_RECVERR)
    } else {
        (libc::SOL_IPV6, libc::IPV6_RECVERR)
    };
    let _ = crate::sys::set_int_option(std::os::fd::AsRawFd::as_raw_fd(&std_sock), level, opt, 1);
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
        return udp_error(&e);
    }
    let mut buf = [0u8; 512];
    match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
        Ok(Ok(_)) => Udp53::Answered,
        Ok(Err(e)) => udp_error(&e),
        Err(_) => Udp53::NoAnswer,
    }
}

/// What an error on the connected UDP socket says about the server.
fn udp_error(e: &std::io::Error) -> Udp53 {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => Udp53::Refused,
        Some(libc::EHOSTUNREACH | libc::ENETUNREACH) => Udp53::Unreachable,
        _ => Udp53::NoAnswer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::rr::rdata::{A, AAAA, CAA, MX, NS, TXT};

    fn name(n: &str) -> Name {
        Name::from_str(n).unwrap()
    }
    fn rec(n: &str, data: RData) -> Record {
        Record::from_rdata(name(n), 60, data)
    }

    #[test]
    fn each_server_gets_its_timeout_or_half_the_time_left() {
        let s = Duration::from_secs;
        assert_eq!(server_budget(s(5), s(5)), Duration::from_millis(2500));
        assert_eq!(server_budget(s(1), s(5)), s(1));
        assert_eq!(server_budget(s(5), s(20)), s(5));
        assert_eq!(server_budget(s(5), Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn only_the_chain_from_the_queried_name_counts() {
        let answers = vec![
            rec("other.test.", RData::A(A([198, 18, 9, 9].into()))),
            rec("app.test.", RData::CNAME(CNAME(name("web.test.")))),
            rec("web.test.", RData::CNAME(CNAME(name("edge.test.")))),
            rec("edge.test.", RData::A(A([198, 18, 2, 2].into()))),
            rec("web.test.", RData::A(A([198, 18, 7, 7].into()))),
            rec("edge.test.", RData::AAAA(AAAA("fd00::2".parse().unwrap()))),
        ];
        let got: Vec<String> = chain(&name("APP.test."), &answers, RecordType::A)
            .iter()
            .map(|r| format!("{} {}", r.name, rdata_text(&r.data)))
            .collect();
        assert_eq!(
            got,
            [
                "app.test. web.test.",
                "web.test. edge.test.",
                "edge.test. 198.18.2.2"
            ]
        );
        // A CNAME loop ends.
        let looped = vec![
            rec("a.test.", RData::CNAME(CNAME(name("b.test.")))),
            rec("b.test.", RData::CNAME(CNAME(name("a.test.")))),
        ];
        assert_eq!(chain(&name("a.test."), &looped, RecordType::A).len(), 2);
    }

    #[test]
    fn record_data_in_presentation_format() {
        let text = |d: RData| rdata_text(&d);
        assert_eq!(text(RData::A(A([198, 18, 0, 1].into()))), "198.18.0.1");
        assert_eq!(
            text(RData::AAAA(AAAA("fd00::1".parse().unwrap()))),
            "fd00::1"
        );
        assert_eq!(text(RData::CNAME(CNAME(name("web.test.")))), "web.test.");
        assert_eq!(text(RData::NS(NS(name("ns.test.")))), "ns.test.");
        assert_eq!(text(RData::MX(MX::new(5, name("mx.test.")))), "5 mx.test.");
        assert_eq!(
            text(RData::TXT(TXT::from_bytes(vec![b"a\x07b", b"q\"\\"]))),
            "\"a\x07b\" \"q\\\"\\\\\"",
            "control characters stay data; quotes and backslashes are escaped"
        );
        assert_eq!(
            text(RData::CAA(CAA::new_issue(
                true,
                Some(name("ca.test")),
                vec![]
            ))),
            "128 issue \"ca.test\""
        );
        // Never a Debug dump, never a panic (OPT's Display is an error).
        assert_eq!(text(RData::Update0(RecordType::A)), "");
    }
}
