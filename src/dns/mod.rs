//! Stage 1: names to addresses, two ways at once.
//!
//! * The **system view** is what applications get: glibc's `getaddrinfo` (/etc/hosts,
//!   nsswitch, search domains), in its order — the order a client tries addresses in.
//! * The **DNS view** asks the configured name servers directly with hickory-resolver, which,
//!   unlike `getaddrinfo`, tells NXDOMAIN from NODATA from SERVFAIL from a timeout.
//!
//! Both run concurrently and under the check's deadline; `getaddrinfo` cannot be cancelled, so it
//! runs on a blocking thread that is abandoned (not waited for) when the deadline passes.
//! Names under `localhost` (with or without the final dot) never go to DNS (RFC 6761), and IP
//! literals skip this stage.
//!
//! The DNS view asks every server glibc uses (the first [`MAXNS`] of resolv.conf) on its own
//! ([`servers`]), so a report can say which server said what, the way glibc would read each
//! answer (search list, CNAME chain); the resolver's files are read and parsed in [`files`].

pub mod files;
pub mod servers;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use tokio::time::Instant;

/// Why a lookup gave no address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsErrorKind {
    /// The name does not exist.
    Nxdomain,
    /// The name exists but has no A/AAAA record.
    Nodata,
    /// The server could not answer (broken upstream, DNSSEC failure).
    Servfail,
    /// The server will not answer this client.
    Refused,
    /// No answer in time.
    Timeout,
    /// No name server configured.
    NoNameservers,
    /// Anything else (the text says what).
    Other,
}

/// One lookup's failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupError {
    pub kind: DnsErrorKind,
    /// The system's own words, when they add to the kind (`gai_strerror`, an errno); library
    /// debug text never goes here. `None`: the kind says it all.
    pub detail: Option<String>,
}

impl LookupError {
    pub(crate) fn new(kind: DnsErrorKind) -> LookupError {
        LookupError { kind, detail: None }
    }
}

/// One view of the name: the addresses, or why there are none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub addresses: Vec<IpAddr>,
    pub elapsed: Duration,
    pub error: Option<LookupError>,
}

/// What the name stage found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsFacts {
    /// What applications see (`getaddrinfo`). `None` when the target was an IP literal.
    pub system: Option<Lookup>,
    /// What the name servers say, taken together as a resolver would: the first server that
    /// gave an answer (addresses, NXDOMAIN or NODATA), else the first server's failure.
    /// `None` when not asked (literal, `localhost`) or not finished.
    pub direct: Option<Lookup>,
    /// Each configured server's own answer (the first [`MAXNS`] servers: the ones used).
    pub servers: Vec<servers::ServerView>,
    /// /etc/resolv.conf as read for the DNS view.
    pub resolv: Option<files::ResolvConf>,
    /// The lines of /etc/hosts that name the target.
    pub hosts: Vec<files::HostsLine>,
}

impl DnsFacts {
    /// The `nameserver`s of resolv.conf beyond the first [`MAXNS`]: glibc ignores them, and so
    /// does the DNS view ([`view`] asks the first [`MAXNS`] only). Read from the resolv.conf
    /// facts: empty when those keep only the servers used ([`files::parse_resolv_conf`] stops
    /// at [`MAXNS`]; it would need to keep the rest, bounded, for this to name them).
    pub fn ignored_servers(&self) -> &[IpAddr] {
        self.resolv
            .as_ref()
            .and_then(|r| r.nameservers.get(MAXNS..))
            .unwrap_or(&[])
    }
}

/// The DNS view of a name: every server's answer, and the resolver's combined one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsView {
    pub resolv: Option<files::ResolvConf>,
    pub servers: Vec<servers::ServerView>,
    pub combined: Lookup,
}

impl DnsView {
    /// No server answered at all (all timed out, or none is configured).
    pub(crate) fn all_silent(&self) -> bool {
        self.servers.iter().all(|s| {
            s.lookup
                .error
                .as_ref()
                .is_some_and(|e| e.kind == DnsErrorKind::Timeout)
        })
    }

    /// The resolver's reading of the servers' answers, in server order.
    pub fn combine(servers: &[servers::ServerView]) -> Lookup {
        let settled = |s: &&servers::ServerView| match &s.lookup.error {
            None => true,
            Some(e) => matches!(e.kind, DnsErrorKind::Nxdomain | DnsErrorKind::Nodata),
        };
        match servers.iter().find(settled).or(servers.first()) {
            Some(s) => s.lookup.clone(),
            None => Lookup {
                addresses: vec![],
                elapsed: Duration::ZERO,
                error: Some(LookupError::new(DnsErrorKind::NoNameservers)),
            },
        }
    }
}

/// The seam for name resolution, so the pipeline can be exercised with canned answers.
pub(crate) trait Resolver: Sync {
    /// The system view, in the system's order.
    fn system(&self, name: &str, deadline: Instant) -> impl Future<Output = Lookup> + Send;
    /// The DNS view; `None` when DNS is not to be asked for this name.
    fn direct(&self, name: &str, deadline: Instant)
    -> impl Future<Output = Option<DnsView>> + Send;
}

/// The real resolvers: glibc and hickory-resolver with /etc/resolv.conf.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SystemResolver;

impl Resolver for SystemResolver {
    async fn system(&self, name: &str, deadline: Instant) -> Lookup {
        let start = Instant::now();
        let owned = system_name(name).to_string();
        let task = tokio::task::spawn_blocking(move || getaddrinfo(&owned));
        let result = match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(LookupError::new(DnsErrorKind::Other)),
            Err(_) => Err(LookupError::new(DnsErrorKind::Timeout)),
        };
        lookup_from(result, start)
    }

    async fn direct(&self, name: &str, deadline: Instant) -> Option<DnsView> {
        if is_localhost(name) {
            return None;
        }
        let Some(resolv) = files::read_resolv_conf() else {
            return Some(DnsView {
                resolv: None,
                servers: vec![],
                combined: DnsView::combine(&[]),
            });
        };
        let servers: Vec<SocketAddr> = resolv
            .nameservers
            .iter()
            .map(|ip| SocketAddr::new(*ip, 53))
            .collect();
        Some(view(name, resolv, &servers, deadline).await)
    }
}

/// glibc's `MAXNS` (3): only the first `nameserver` lines of resolv.conf are used; the rest are
/// silently ignored by every glibc program. One constant, [`files`]'s.
pub(crate) use files::MAXNS;

/// The DNS view of `name`: the first [`MAXNS`] of `servers` (resolv.conf's, in its order, at
/// port 53 — tests give others) asked at once, each within its own budget
/// ([`servers::server_budget`]), with `resolv`'s search list and options.
pub async fn view(
    name: &str,
    resolv: files::ResolvConf,
    servers: &[SocketAddr],
    deadline: Instant,
) -> DnsView {
    let servers = futures_util::future::join_all(
        servers
            .iter()
            .take(MAXNS)
            .map(|s| servers::query(*s, name, &resolv, deadline)),
    )
    .await;
    DnsView {
        combined: DnsView::combine(&servers),
        resolv: Some(resolv),
        servers,
    }
}

fn lookup_from(result: Result<Vec<IpAddr>, LookupError>, start: Instant) -> Lookup {
    let elapsed = start.elapsed();
    match result {
        Ok(addresses) => Lookup {
            addresses,
            elapsed,
            error: None,
        },
        Err(e) => Lookup {
            addresses: vec![],
            elapsed,
            error: Some(e),
        },
    }
}

/// The name given to `getaddrinfo`. `localhost.` is `localhost` (RFC 6761: localhost names are
/// always loopback), but glibc looks the final-dot form up in /etc/hosts literally, misses, and
/// asks DNS: the final dot of a localhost name is dropped so the system view is the loopback
/// answer applications get for `localhost`.
pub(crate) fn system_name(name: &str) -> &str {
    if is_localhost(name) {
        name.trim_end_matches('.')
    } else {
        name
    }
}

/// RFC 6761: `localhost` and names below it (with or without the final dot) are answered
/// locally, never by DNS.
pub(crate) fn is_localhost(name: &str) -> bool {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    n == "localhost" || n.ends_with(".localhost")
}

/// Map hickory's error to the contract's kinds (table in `docs/ground-truth/linux-probing.md`).
pub(crate) fn classify(e: &NetError) -> DnsErrorKind {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(nr)) => match nr.response_code {
            ResponseCode::NXDomain => DnsErrorKind::Nxdomain,
            ResponseCode::NoError => DnsErrorKind::Nodata,
            _ => DnsErrorKind::Other,
        },
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => DnsErrorKind::Servfail,
        NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => DnsErrorKind::Refused,
        NetError::Timeout => DnsErrorKind::Timeout,
        NetError::NoConnections => DnsErrorKind::NoNameservers,
        _ => DnsErrorKind::Other,
    }
}

/// glibc's resolver, the way applications call it (`sys::getaddrinfo`).
fn getaddrinfo(name: &str) -> Result<Vec<IpAddr>, LookupError> {
    let c_name = crate::sys::c_string(name).ok_or_else(|| LookupError {
        kind: DnsErrorKind::Other,
        detail: Some("the name contains a NUL byte".into()),
    })?;
    crate::sys::getaddrinfo(&c_name).map_err(gai_error)
}

/// glibc's `EAI_*` codes to the contract's kinds. `getaddrinfo` folds SERVFAIL and timeouts into
/// `EAI_AGAIN`, which is why the direct DNS view exists.
fn gai_error(e: crate::sys::GaiError) -> LookupError {
    let kind = match e.code {
        libc::EAI_NONAME => DnsErrorKind::Nxdomain,
        libc::EAI_NODATA => DnsErrorKind::Nodata,
        libc::EAI_AGAIN => DnsErrorKind::Timeout,
        libc::EAI_FAIL => DnsErrorKind::Servfail,
        _ => DnsErrorKind::Other,
    };
    let text = if e.code == libc::EAI_SYSTEM {
        format!("{}: {}", e.text, e.errno)
    } else {
        e.text
    };
    LookupError {
        kind,
        detail: Some(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::net::NoRecords;
    use hickory_resolver::proto::op::Query;

    #[test]
    fn classifies_every_hickory_failure() {
        let nr = |code| {
            NetError::Dns(DnsError::NoRecordsFound(NoRecords::new(
                Query::default(),
                code,
            )))
        };
        assert_eq!(
            classify(&nr(ResponseCode::NXDomain)),
            DnsErrorKind::Nxdomain
        );
        assert_eq!(classify(&nr(ResponseCode::NoError)), DnsErrorKind::Nodata);
        assert_eq!(
            classify(&NetError::Dns(DnsError::ResponseCode(
                ResponseCode::ServFail
            ))),
            DnsErrorKind::Servfail
        );
        assert_eq!(
            classify(&NetError::Dns(DnsError::ResponseCode(
                ResponseCode::Refused
            ))),
            DnsErrorKind::Refused
        );
        assert_eq!(classify(&NetError::Timeout), DnsErrorKind::Timeout);
        assert_eq!(
            classify(&NetError::NoConnections),
            DnsErrorKind::NoNameservers
        );
        assert_eq!(classify(&NetError::Message("x")), DnsErrorKind::Other);
    }

    #[test]
    fn localhost_names_never_go_to_dns() {
        assert!(is_localhost("localhost"));
        assert!(is_localhost("LOCALHOST."));
        assert!(is_localhost("app.localhost"));
        assert!(!is_localhost("localhost.example.com"));
    }

    #[test]
    fn localhost_with_a_final_dot_is_localhost() {
        assert!(is_localhost("localhost."));
        assert_eq!(system_name("localhost."), "localhost");
        assert_eq!(system_name("Db.LocalHost."), "Db.LocalHost");
        assert_eq!(
            system_name("example.com."),
            "example.com.",
            "others keep their dot"
        );
    }

    /// glibc misses `localhost.` in /etc/hosts and asks DNS; the system view must still be the
    /// loopback answer of `localhost`, and the DNS view is not asked.
    #[tokio::test]
    async fn the_system_view_of_localhost_dot_is_loopback() {
        let deadline = Instant::now() + Duration::from_secs(3);
        let l = SystemResolver.system("localhost.", deadline).await;
        assert_eq!(l.error, None, "{l:?}");
        assert!(!l.addresses.is_empty() && l.addresses.iter().all(IpAddr::is_loopback));
        assert_eq!(SystemResolver.direct("localhost.", deadline).await, None);
    }

    #[test]
    fn only_maxns_servers_are_used() {
        let resolv = |n: usize| files::ResolvConf {
            nameservers: (1..=n as u8)
                .map(|i| IpAddr::from([198, 18, 0, i]))
                .collect(),
            search: vec![],
            ndots: 1,
            timeout: Duration::from_secs(5),
            attempts: 2,
        };
        let facts = |n| DnsFacts {
            resolv: Some(resolv(n)),
            ..DnsFacts::default()
        };
        assert!(facts(3).ignored_servers().is_empty());
        assert_eq!(
            facts(5).ignored_servers(),
            [IpAddr::from([198, 18, 0, 4]), IpAddr::from([198, 18, 0, 5])]
        );
        assert!(DnsFacts::default().ignored_servers().is_empty());
    }
}
