//! The pipeline: run the stages, concurrently where that saves time, under one deadline.
//!
//! ```text
//! target ──► name stage ─┬─ system view (getaddrinfo) ──► connect stage (crate::connect):
//!                        │                                 every address in parallel;
//!                        │                                 local inspection alongside
//!                        │                                 └─► session stage (open ones)
//!                        └─ DNS view (hickory) ─────────► (joined; never waited on past a grace)
//!           silent or unreachable ──► path walk (alongside the probes, or after them)
//!           a failure the firewall may explain ──► this machine's firewall (nft)
//!                                                   └──► Facts ──► diagnosis ──► renderer
//! ```
//!
//! Orchestration only: which stage runs when, on what, within which deadline. The stages
//! gather [`Facts`]; nothing here decides or prints. The side effects come in through the
//! [`Resolver`], [`Connector`] and [`Inspector`] seams.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared, join_all};
use tokio::time::Instant;

use crate::connect;
use crate::diagnosis::{Evidence, Outcome, classify};
use crate::dns::{DnsErrorKind, DnsFacts, DnsView, Lookup, LookupError, Resolver};
use crate::facts::{AddressFacts, DirectPath, Facts, ProxyRoute};
use crate::liveness;
use crate::local::shared::Inspector;
use crate::local::{self, Firewall, LocalFacts};
use crate::options::{LocalMode, Options, Protocol, TraceMode};
use crate::probe::{ConnectResult, Connector, ProbeFact, ProbeSpec};
use crate::session::http::HttpTarget;
use crate::session::protocols::postgres::SslMode;
use crate::session::protocols::{Params, Protocol as ServiceProtocol, Selection};
use crate::session::proxy::{Proxy, ProxyChoice};
use crate::session::tls::{Trust, TrustStore};
use crate::session::watch::{self, First};
use crate::session::{
    Application, Destination, ServiceRequest, SessionFacts, SessionRequest, after_connect_via,
};
use crate::target::{Host, Target};
use crate::trace::{self, TraceFacts};

/// How long, once the probes are done, the check still waits for a DNS view it does not need
/// for the verdict. The DNS view only adds comparisons when the system lookup succeeded, and a
/// dead name server behind an /etc/hosts answer must not hold the check to its deadline.
pub(crate) const DNS_VIEW_GRACE: Duration = Duration::from_millis(250);

/// How much earlier than the deadline the probes (and the walk alongside them) end: the waits
/// after them (the other ports' grace, the firewall's read) are on the runtime's timer, which
/// fires up to a millisecond late each.
pub(crate) const FINISH_MARGIN: Duration = Duration::from_millis(5);

/// How much earlier than the deadline a patient owner search returns what it found: the
/// search looks at the time between processes (a process with thousands of descriptors takes
/// milliseconds to read in a debug build), and its listeners must not be lost with it.
pub const PATIENCE_MARGIN: Duration = Duration::from_millis(100);

/// How long the system lookup is still waited for once every name server was found silent.
pub(crate) const SYSTEM_GRACE: Duration = Duration::from_millis(50);

/// Run every stage for `target` and collect the facts, with this machine's listeners and
/// firewall read through `inspector` (a check of its own: [`local::shared::Fresh`]; a run of
/// many targets shares its reads: `local::shared::PerRun`).
///
/// A URL target whose proxy variable names an HTTP proxy is checked the way the application
/// reaches it: every stage runs on the proxy's host and port, the sessions go through it
/// (`CONNECT`, or plain HTTP in absolute form), and the destination is probed directly
/// alongside, for the record ([`crate::facts::ProxyRoute`]).
pub(crate) async fn gather_with<R: Resolver, C: Connector, I: Inspector>(
    target: Target,
    opts: Options,
    resolver: &R,
    connector: &C,
    inspector: &I,
) -> Facts {
    let start = Instant::now();
    if target.transport.is_udp() {
        // No proxy carries it, and no session follows: the datagram's answer is the check.
        return gather_udp(target, start, opts, resolver, inspector).await;
    }
    let deadline = start + opts.timeout;
    let proxy = target.url.as_ref().map(|u| {
        let env = |k: &str| std::env::var(k).ok();
        crate::session::proxy::proxy_for(
            &u.scheme,
            &target.host.to_string(),
            target.port.get(),
            &env,
        )
    });
    // What the application would speak once connected (used by the session stage).
    let app = application(&target, opts.protocol);
    let route = match &proxy {
        Some(ProxyChoice::Proxy(p)) if opts.follow_proxy => proxy_endpoint(p, &target),
        _ => None,
    };
    let Some((p, endpoint)) = route else {
        let mut facts = gather_at(
            target, None, &app, start, opts, resolver, connector, inspector,
        )
        .await;
        facts.proxy = proxy;
        return facts;
    };
    let dest = Destination {
        host: target.host.to_string(),
        port: target.port.get(),
    };
    // The direct path gets a fair wait, within the deadline; the proxy path runs meanwhile.
    let direct_until = deadline.min(start + liveness::FAIR_WAIT);
    let (mut facts, direct) = tokio::join!(
        gather_at(
            endpoint.clone(),
            Some((&target, &dest)),
            &app,
            start,
            opts,
            resolver,
            connector,
            inspector
        ),
        direct_path(resolver, connector, &target, direct_until)
    );
    facts.target = target;
    facts.proxy = proxy;
    facts.via = Some(ProxyRoute {
        proxy: p,
        endpoint,
        direct,
    });
    facts.elapsed = start.elapsed();
    facts
}

/// The proxy as a target, when canreach can follow it: an `http://` proxy (what `CONNECT`
/// and absolute-form requests are spoken to). SOCKS and TLS-wrapped proxies are reported,
/// not followed.
fn proxy_endpoint(p: &Proxy, destination: &Target) -> Option<(Proxy, Target)> {
    if p.scheme != "http" {
        return None;
    }
    let host = match p.host.parse::<std::net::IpAddr>() {
        Ok(ip) => Host::Ip(ip),
        Err(_) => Host::Name(p.host.clone()),
    };
    let endpoint = Target {
        input: destination.input.clone(),
        host,
        port: crate::services::Port::new(p.port)?,
        port_source: crate::target::PortSource::Number,
        service: None,
        here: false,
        url: None,
        transport: crate::target::Transport::Tcp,
    };
    Some((p.clone(), endpoint))
}

/// A plain TCP connect to every address of the destination, without the proxy, until
/// `until`: would the direct path work too?
async fn direct_path<R: Resolver, C: Connector>(
    resolver: &R,
    connector: &C,
    destination: &Target,
    until: Instant,
) -> DirectPath {
    let start = Instant::now();
    let port = destination.port.get();
    let (ips, lookup_error) = match &destination.host {
        Host::Ip(ip) => (vec![*ip], None),
        Host::Name(name) => {
            let l = resolver.system(name, until).await;
            (l.addresses, l.error)
        }
    };
    let probes = join_all(
        ips.into_iter()
            .map(|ip| connector.probe(ProbeSpec::to(SocketAddr::new(ip, port)), until)),
    )
    .await;
    DirectPath {
        lookup_error,
        probes,
        waited: until.saturating_duration_since(start),
    }
}

/// Every stage for `target` (the proxy, when `via` names the destination behind it).
#[allow(clippy::too_many_arguments)]
async fn gather_at<R: Resolver, C: Connector, I: Inspector>(
    target: Target,
    via: Option<(&Target, &Destination)>,
    app: &Application,
    start: Instant,
    opts: Options,
    resolver: &R,
    connector: &C,
    inspector: &I,
) -> Facts {
    let deadline = start + opts.timeout;
    let port = target.port.get();
    let stages = AfterName {
        connector,
        inspector,
        opts: &opts,
        port,
        here: target.here,
        deadline,
        // The probes get all the time that is left: a name that resolved late (a dead first
        // name server, `options timeout:4` of a 5 s deadline) must not leave the probe a
        // fraction of a millisecond. No time is kept back for the path walk: the first
        // address's walk runs alongside its probes (from the moment its host is proven up, or
        // after `liveness::WALK_AFTER` of silence) within the same deadline, and a walk that
        // follows the probes follows a quick answer. They end FINISH_MARGIN early, so that
        // what follows them (each wait on the runtime's millisecond timer) still ends by the
        // deadline.
        probe_deadline: deadline - FINISH_MARGIN.min(opts.timeout / 10),
        // The sessions speak to the destination: the target itself, or the one behind the
        // proxy.
        session_target: via.map_or(&target, |v| v.0),
        app,
        via: via.map(|v| v.1),
    };
    let (dns, after) = match &target.host {
        Host::Ip(ip) => (
            DnsFacts::default(),
            stages.run(vec![(*ip, port).into()]).await,
        ),
        Host::Name(name) => {
            resolve_then(resolver, name, port, start, deadline, |a| stages.run(a)).await
        }
    };
    let probes: Vec<ProbeFact> = after.addresses.iter().map(|a| a.probe.clone()).collect();
    // The members or brokers the service named are what its clients connect to next. Not
    // through a proxy: the names are the destination's, and the application's driver does
    // not go through an HTTP proxy.
    let advertised = async {
        match via {
            None => {
                connect::advertised::check(resolver, connector, &after.addresses, deadline).await
            }
            Some(_) => None,
        }
    };
    let (firewall, advertised) = tokio::join!(
        firewall_read(
            after.firewall,
            &probes,
            &after.local,
            &opts,
            inspector,
            port,
            deadline,
        ),
        advertised
    );
    // A path to this machine does not exist: its listeners and firewall explain it.
    let to_self = after.addresses.first().is_some_and(|a| a.here);
    let trace = match trace_target(&probes, opts.trace).filter(|_| !to_self) {
        // Walked alongside the probes already.
        Some(address) if after.walked.as_ref().is_some_and(|w| w.address == address) => {
            after.walked
        }
        Some(address) => Some(trace::walk(connector, address, deadline).await),
        None => None,
    };
    Facts {
        dns,
        addresses: after.addresses,
        trace,
        local: after.local,
        firewall,
        privileged: crate::sys::is_root(),
        expect_status: opts.expect_status,
        elapsed: start.elapsed(),
        advertised,
        ..Facts::new(target, opts.timeout)
    }
}

/// Every stage of a UDP check: the name, then the service's request to every address
/// (`connect::udp`), this machine's UDP sockets on the port alongside when an address is
/// its own, this machine's `udp dport` firewall rules and the path walk (TTL-limited
/// datagrams) when the first address is silent.
async fn gather_udp<R: Resolver, I: Inspector>(
    mut target: Target,
    start: Instant,
    opts: Options,
    resolver: &R,
    inspector: &I,
) -> Facts {
    // /etc/services is read for TCP names; the usual UDP service of a port is the request's
    // (514 is `shell` over TCP, syslog over UDP).
    let usual = crate::session::protocols::udp_payloads::for_port(target.port.get());
    if let Some(e) = udp_service(&opts).or(usual) {
        target.service = Some(e.name.to_string());
    }
    let deadline = start + opts.timeout;
    let check = UdpCheck {
        inspector,
        opts: &opts,
        port: target.port.get(),
        here: target.here,
        start,
        deadline,
        probe_deadline: deadline - FINISH_MARGIN.min(opts.timeout / 10),
    };
    let (dns, got) = match &target.host {
        Host::Ip(ip) => (
            DnsFacts::default(),
            check.run(vec![(*ip, check.port).into()]).await,
        ),
        Host::Name(name) => {
            resolve_then(resolver, name, check.port, start, deadline, |a| {
                check.run(a)
            })
            .await
        }
    };
    Facts {
        dns,
        addresses: got.addresses,
        local: got.local,
        firewall: got.firewall,
        trace: got.trace,
        privileged: crate::sys::is_root(),
        elapsed: start.elapsed(),
        ..Facts::new(target, opts.timeout)
    }
}

/// The UDP service `--protocol` names (`dns`, `ntp` …), if it names one.
fn udp_service(opts: &Options) -> Option<&'static crate::session::protocols::udp_payloads::Entry> {
    match opts.protocol {
        Protocol::Udp(s) => crate::session::protocols::udp_payloads::TABLE
            .iter()
            .find(|e| e.service == s),
        _ => None,
    }
}

/// One address's facts from its UDP exchange (`mine`: this machine's addresses).
fn udp_address(
    probe: ProbeFact,
    udp: crate::facts::UdpExchange,
    mine: &[std::net::IpAddr],
) -> AddressFacts {
    AddressFacts {
        here: local::is_local(probe.spec.address.ip(), mine),
        probe,
        silence: None,
        session: None,
        queue: None,
        udp: Some(udp),
    }
}

/// What a UDP check runs once the name gave its addresses.
struct UdpCheck<'a, I> {
    inspector: &'a I,
    opts: &'a Options,
    port: u16,
    here: bool,
    start: Instant,
    deadline: Instant,
    probe_deadline: Instant,
}

/// What [`UdpCheck::run`] gathered.
struct UdpGathered {
    addresses: Vec<AddressFacts>,
    local: Option<LocalFacts>,
    firewall: Option<Firewall>,
    trace: Option<TraceFacts>,
}

impl<I: Inspector> UdpCheck<'_, I> {
    async fn run(&self, addrs: Vec<SocketAddr>) -> UdpGathered {
        let (port, opts, deadline) = (self.port, self.opts, self.deadline);
        let mine = self.inspector.addresses();
        let inspect_here = match opts.local {
            LocalMode::Never => false,
            LocalMode::Always => true,
            LocalMode::Auto => self.here || addrs.iter().any(|a| local::is_local(a.ip(), &mine)),
        };
        let inspect = || self.inspector.inspect_udp(port, mine.clone());
        let mut inspection = inspect_here.then(inspect);
        let (request, silence) =
            connect::udp::request_for(port, udp_service(opts), opts.payload.as_deref());
        let exchanging = join_all(
            addrs
                .iter()
                .map(|a| connect::udp::exchange(*a, &request, silence, self.probe_deadline)),
        );
        tokio::pin!(exchanging);
        // The firewall and the walk only explain silence: started once the addresses have
        // been silent as long as the control waits (one `nft` run; a few datagrams).
        let read_at = self.start + connect::udp::CONTROL_AFTER;
        let reads = opts.local != LocalMode::Never && opts.report;
        let remote = addrs
            .first()
            .copied()
            .filter(|a| !local::is_local(a.ip(), &mine));
        let walker = connect::udp::UdpWalker {
            payload: request.payload.clone(),
        };
        let walk_to = remote.filter(|_| opts.trace != TraceMode::Never);
        let mut firewall = None;
        let (exchanged, walked) = tokio::select! {
            e = &mut exchanging => (e, None),
            _ = tokio::time::sleep_until(read_at), if read_at < deadline => {
                if reads {
                    firewall = Some(self.read_firewall());
                }
                // Read again now: a program's socket then holds what it did not read of the
                // datagrams sent (the first read went out with them).
                if inspect_here {
                    inspection = Some(inspect());
                }
                let walk = async {
                    match walk_to {
                        Some(a) => Some(trace::walk(&walker, a, self.probe_deadline).await),
                        None => None,
                    }
                };
                tokio::join!(exchanging, walk)
            }
        };
        let firewall = self
            .firewall_kept(exchanged.first().map(|(p, _)| p.result), firewall, reads)
            .await;
        // `--trace`: walked even when the port answered.
        let trace = match (walked, walk_to) {
            (Some(w), _) => Some(w),
            (None, Some(a)) if opts.trace == TraceMode::Always => {
                Some(trace::walk(&walker, a, self.probe_deadline).await)
            }
            _ => None,
        };
        let addresses = exchanged
            .into_iter()
            .map(|(probe, udp)| udp_address(probe, udp, &mine))
            .collect();
        let local = match inspection {
            Some(task) => tokio::time::timeout_at(deadline, task).await.ok().flatten(),
            None => None,
        };
        UdpGathered {
            addresses,
            local,
            firewall,
            trace,
        }
    }

    /// The firewall's read, kept when it can explain the first address's result: silence,
    /// or this machine refusing to send (an output rule's drop makes `send()` fail with EPERM
    /// at once; then read now).
    async fn firewall_kept(
        &self,
        first: Option<ConnectResult>,
        started: Option<BoxFuture<'static, Option<Firewall>>>,
        reads: bool,
    ) -> Option<Firewall> {
        let refused = matches!(first, Some(ConnectResult::Failed { errno })
            if errno == libc::EPERM || errno == libc::EACCES);
        let explains = first == Some(ConnectResult::TimedOut) || refused;
        let task = match started {
            Some(t) if explains => t,
            None if refused && reads => self.read_firewall(),
            _ => return None,
        };
        tokio::time::timeout_at(self.deadline, task)
            .await
            .ok()
            .flatten()
    }

    fn read_firewall(&self) -> BoxFuture<'static, Option<Firewall>> {
        self.inspector
            .firewall_udp(self.port, self.deadline.into_std())
    }
}

/// The firewall only explains a failure: read it (one `nft` run, a few ms) only then; the
/// connect stage started the read already when the first address's result needed it.
async fn firewall_read<I: Inspector>(
    started: Option<BoxFuture<'static, Option<Firewall>>>,
    probes: &[ProbeFact],
    local: &Option<LocalFacts>,
    opts: &Options,
    inspector: &I,
    port: u16,
    deadline: Instant,
) -> Option<Firewall> {
    let task = match started {
        Some(task) => task,
        None if opts.local != LocalMode::Never
            && opts.report
            && connect::needs_firewall(probes, local.is_some()) =>
        {
            inspector.firewall(port, deadline.into_std())
        }
        None => return None,
    };
    tokio::time::timeout_at(deadline, task).await.ok().flatten()
}

/// The name's stages: the system view first (the probes need it), then `probe` on its
/// addresses while the DNS view (every name server asked directly) may still be on its way.
async fn resolve_then<R: Resolver, T>(
    resolver: &R,
    name: &str,
    port: u16,
    start: Instant,
    deadline: Instant,
    probe: impl AsyncFnOnce(Vec<SocketAddr>) -> T,
) -> (DnsFacts, T) {
    let direct = resolver.direct(name, deadline);
    let system = resolver.system(name, deadline);
    tokio::pin!(direct, system);
    let (system, mut view) = system_lookup(system, direct.as_mut(), start, deadline).await;
    // Probe, while the DNS view may still be on its way.
    let addrs = system
        .addresses
        .iter()
        .map(|ip| (*ip, port).into())
        .collect();
    let probing = probe(addrs);
    tokio::pin!(probing);
    let results = loop {
        tokio::select! {
            r = &mut probing => break r,
            d = &mut direct, if view.is_none() => view = Some(d),
        }
    };
    // The DNS view: needed for the error kind when the system failed; otherwise only for
    // comparisons, so not waited for past a short grace.
    let view = match view {
        Some(v) => v,
        None => {
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
    let (resolv, servers, direct) = match view {
        Some(v) => (v.resolv, v.servers, Some(v.combined)),
        None => (None, vec![], None),
    };
    let dns = DnsFacts {
        system: Some(system),
        direct,
        servers,
        resolv,
        hosts: crate::dns::files::hosts_lines(name),
    };
    (dns, results)
}

/// The system view, and the DNS view if it came first (`Some(None)`: it came, empty). If
/// every name server is silent, the system resolver (asking the same servers) will not
/// answer either: stop waiting for it shortly after, instead of at its own retries' end.
async fn system_lookup(
    system: Pin<&mut impl Future<Output = Lookup>>,
    mut direct: Pin<&mut impl Future<Output = Option<DnsView>>>,
    start: Instant,
    deadline: Instant,
) -> (Lookup, Option<Option<DnsView>>) {
    let mut system = system;
    let mut view: Option<Option<DnsView>> = None;
    let mut cutoff = deadline;
    let lookup = loop {
        tokio::select! {
            s = &mut system => break s,
            d = &mut direct, if view.is_none() => {
                if d.as_ref().is_some_and(DnsView::all_silent) {
                    cutoff = deadline.min(Instant::now() + SYSTEM_GRACE);
                }
                view = Some(d);
            }
            _ = tokio::time::sleep_until(cutoff) => break Lookup {
                addresses: vec![],
                elapsed: start.elapsed(),
                error: Some(LookupError::new(DnsErrorKind::Timeout)),
            },
        }
    };
    (lookup, view)
}

/// What runs once the name gave its addresses: the connect stage, the local inspection
/// alongside, then the session stage on the open addresses.
struct AfterName<'a, C, I> {
    connector: &'a C,
    inspector: &'a I,
    opts: &'a Options,
    port: u16,
    /// The target is surely this machine (`:PORT`).
    here: bool,
    deadline: Instant,
    probe_deadline: Instant,
    session_target: &'a Target,
    app: &'a Application,
    via: Option<&'a Destination>,
}

/// What [`AfterName::run`] gathered.
struct Gathered {
    addresses: Vec<AddressFacts>,
    local: Option<LocalFacts>,
    walked: Option<TraceFacts>,
    firewall: Option<BoxFuture<'static, Option<Firewall>>>,
}

type Inspection = Shared<BoxFuture<'static, Option<LocalFacts>>>;

impl<C: Connector, I: Inspector> AfterName<'_, C, I> {
    async fn run(&self, addrs: Vec<SocketAddr>) -> Gathered {
        // This machine's addresses, read once: for the local inspection and to know which
        // probes go to this machine (no liveness, no walk, a short silence bound).
        let mine = self.inspector.addresses();
        let inspect_here = match self.opts.local {
            LocalMode::Never => false,
            LocalMode::Always => true,
            LocalMode::Auto => self.here || addrs.iter().any(|a| local::is_local(a.ip(), &mine)),
        };
        // Local inspection is a netlink dump and a /proc scan: it goes on a thread of its own,
        // concurrently with the probes, and only for this machine's addresses.
        // `:PORT` probes what `localhost` gives, as `canreach localhost PORT` does: an address
        // the name does not give (::1 when /etc/hosts maps localhost to 127.0.0.1 only) is no
        // client's, and probing it made a `partial` of an open port. Listeners on other
        // addresses are in the inspection's report.
        // Its owner search may go on past its budget while this check waits for its probes
        // and sessions anyway; `sessions` hurries it once they are done.
        let inspection = inspect_here.then(|| {
            // Patient until shortly before the deadline, so that a search still going then
            // ends with what it found (the listeners at least) before the check is cut there.
            let until = self
                .deadline
                .checked_sub(PATIENCE_MARGIN)
                .unwrap_or(self.deadline)
                .max(Instant::now());
            let (read, patience) =
                self.inspector
                    .inspect_patient(self.port, mine.clone(), until.into_std());
            (read.shared(), patience)
        });
        let plan = connect::Plan {
            port: self.port,
            probe_deadline: self.probe_deadline,
            deadline: self.deadline,
            trace: self.opts.trace,
            firewall: self.opts.local != LocalMode::Never && self.opts.report,
            inspect_here,
            // MySQL/MariaDB counts a connection closed before its handshake toward blocking
            // this host (`max_connect_errors`): the probe's own connection is the one that
            // speaks, or, when nothing is said (`--protocol tcp`, the exporter's tcp prober),
            // the one watched, so that a check drops one handshake as a plain connect does,
            // not two. Not through a proxy (the probe's connection is the proxy's).
            keep: self.via.is_none()
                && match self.app {
                    Application::Service(s) => s.selection.protocol == ServiceProtocol::MySql,
                    Application::Watch => Selection::for_port(self.port)
                        .is_some_and(|s| s.protocol == ServiceProtocol::MySql),
                    _ => false,
                },
        };
        let probed = connect::probe_all(self.connector, self.inspector, addrs, &mine, &plan).await;
        let (addresses, local) = self.sessions(probed.addresses, inspection).await;
        Gathered {
            addresses,
            local,
            walked: probed.walked,
            firewall: probed.firewall,
        }
    }

    /// After the connect, on every open address, while the local inspection finishes.
    async fn sessions(
        &self,
        mut addresses: Vec<AddressFacts>,
        inspection: Option<(Inspection, local::Patience)>,
    ) -> (Vec<AddressFacts>, Option<LocalFacts>) {
        let (inspection, patience) = inspection.unzip();
        // The processes behind the port's listener, for the watch after the connect to end
        // once the program is waiting for the client (from the inspection, as soon as it has
        // them).
        // Whoever waits on the owners (the watch's look at the program, its account of a
        // connection not taken) waits for the search: from then on going on would delay the
        // answer, so it keeps to its budget (the search's patience is hurried at the first
        // poll).
        let owners = inspection.as_ref().map(|task| {
            let (task, hurry) = (task.clone(), patience.clone());
            async move {
                if let Some(p) = hurry {
                    p.hurry();
                }
                owner_pids(task.await.as_ref())
            }
            .boxed()
            .shared()
        });
        // Read before the sessions connect (one connect per open address); only when there is
        // a session to watch (the kernel formats all of /proc/net/snmp for it: 12 % of the
        // CPU time of a run of 10,000 closed ports).
        let open = addresses
            .iter()
            .filter(|a| a.probe.result == ConnectResult::Connected)
            .count() as u64;
        // The connects the sessions make: none where the probe's socket was kept.
        let session_connects = addresses
            .iter()
            .filter(|a| a.probe.result == ConnectResult::Connected && !a.probe.spec.keep)
            .count() as u64;
        let program = owners.filter(|_| open > 0).map(|owners| watch::Program {
            owners,
            // The machine's count first: a connect of this process between the two reads is
            // then taken for another program's (a longer watch), never the other way round.
            connects_before: local::tcp_active_opens(),
            process_connects_before: crate::probe::own_connects(),
            own_connects: session_connects,
        });
        let (sessions, local) = tokio::join!(
            async {
                let s = follow_sessions(
                    self.connector,
                    &addresses,
                    self.session_target,
                    self.app,
                    self.via,
                    program,
                    self.opts.trust,
                    self.opts.ask.as_ref(),
                    self.deadline,
                )
                .await;
                // Nothing else to wait for: from now on the owner search would delay the
                // answer, and keeps to its budget.
                if let Some(p) = &patience {
                    p.hurry();
                }
                s
            },
            async {
                match inspection {
                    Some(task) => tokio::time::timeout_at(self.deadline, task)
                        .await
                        .ok()
                        .flatten(),
                    None => None,
                }
            }
        );
        for (a, s) in addresses.iter_mut().zip(sessions) {
            a.session = s;
        }
        (addresses, local)
    }
}

/// What to speak on an open port: the flag, else the URL's scheme, else the usual service.
fn application(target: &Target, protocol: Protocol) -> Application {
    let host = target.host.to_string();
    let port = target.port.get();
    let http = |default: u16| {
        let root = HttpTarget::root(&host, port, default);
        match &target.url {
            Some(u) => HttpTarget {
                path: u.path.clone(),
                ..root
            },
            None => root,
        }
    };
    match protocol {
        // A UDP service's name for a TCP target (one of a targets file's, beside UDP ones):
        // only what the server does unasked.
        Protocol::Tcp | Protocol::Udp(_) => Application::Watch,
        Protocol::Tls => Application::Tls,
        Protocol::Http => Application::Http(http(80)),
        Protocol::Https => Application::Https(http(443)),
        Protocol::Service(sel) => service(target, sel),
        Protocol::Auto => {
            let scheme = target.url.as_ref().map(|u| u.scheme.as_str());
            let usual = crate::session::application_for(target.service.as_deref(), &host, port);
            match scheme {
                Some("https" | "wss") => return Application::Https(http(443)),
                Some("http" | "ws") => return Application::Http(http(80)),
                _ => {}
            }
            // The scheme's protocol, else the port's usual service when nothing else is
            // spoken there. Implicit-TLS mail and AMQP ports keep their TLS check as before;
            // `rediss://` had none.
            let by_port = (usual == Application::Watch)
                .then(|| Selection::for_port(port))
                .flatten();
            match scheme.and_then(Selection::from_name).or(by_port) {
                Some(sel) if !sel.implicit_tls || sel.protocol == ServiceProtocol::Redis => {
                    service(target, sel)
                }
                _ => usual,
            }
        }
    }
}

/// A service's opening: who canreach says it is comes from the URL (its user, its path as the
/// database), never a password.
fn service(target: &Target, selection: Selection) -> Application {
    let url = target.url.as_ref();
    let database = url
        .map(|u| u.path.trim_start_matches('/'))
        .filter(|d| !d.is_empty() && selection.protocol == ServiceProtocol::Postgres)
        .map(crate::target::percent_decoded);
    let sslmode = url.and_then(|u| u.sslmode.as_deref());
    let params = Params {
        user: url.and_then(|u| u.user.clone()),
        database,
        postgres_ssl: if sslmode == Some("disable") {
            SslMode::Skip
        } else {
            SslMode::Ask
        },
        // STARTTLS when offered, then the TLS handshake with its checks (as mail clients
        // that ask for it).
        starttls: true,
        ..Params::default()
    };
    Application::Service(Box::new(ServiceRequest {
        selection,
        params,
        tls_required: matches!(sslmode, Some("require" | "verify-ca" | "verify-full")),
    }))
}

/// Run the session stage on every open address, concurrently, within the deadline. Each
/// gets a new connection (one more round trip), unless its probe's socket was kept
/// (MySQL/MariaDB).
#[allow(clippy::too_many_arguments)]
async fn follow_sessions<C: Connector>(
    connector: &C,
    addresses: &[AddressFacts],
    target: &Target,
    app: &Application,
    via: Option<&Destination>,
    program: Option<watch::Program>,
    trust: Trust,
    ask: Option<&std::sync::Arc<crate::session::ask::Ask>>,
    deadline: Instant,
) -> Vec<Option<SessionFacts>> {
    let open = |a: &AddressFacts| a.probe.result == ConnectResult::Connected;
    if !addresses.iter().any(open) {
        return addresses.iter().map(|_| None).collect();
    }
    // Implicit TLS, and mail's STARTTLS: the certificate is verified as the clients do.
    let tls = matches!(app, Application::Tls | Application::Https(_))
        || matches!(app, Application::Service(s) if s.selection.implicit_tls
            || matches!(s.selection.protocol,
                ServiceProtocol::Smtp | ServiceProtocol::Imap | ServiceProtocol::Pop3));
    let asked_roots = ask.and_then(|a| a.roots.clone());
    // PostgreSQL's TLS (after `S`) is verified only with `sslmode=verify-ca`/`verify-full`
    // (libpq): otherwise the chain is checked for the record and the handshake goes on.
    let pg_tls = match app {
        Application::Service(s) if s.selection.protocol == ServiceProtocol::Postgres => Some(
            target
                .url
                .as_ref()
                .and_then(|u| u.sslmode.as_deref())
                .is_some_and(|m| m.starts_with("verify")),
        ),
        _ => None,
    };
    let req = SessionRequest {
        host: ask
            .and_then(|a| a.server_name.clone())
            .unwrap_or_else(|| target.host.to_string()),
        application: app.clone(),
        // A module's own store (`tls_config`) before the command line's.
        roots: match asked_roots {
            Some(r) if tls => r,
            _ if tls => trust.roots(),
            _ if pg_tls == Some(true) => trust.roots(),
            _ if pg_tls == Some(false) => Arc::new(trust.roots().insecure()),
            _ => TrustStore::empty(),
        },
        mss_retry: true,
        program,
        ask: ask.cloned(),
    };
    let req = &req;
    join_all(addresses.iter().map(|a| async move {
        if !open(a) {
            return None;
        }
        let address = a.address();
        // A SYN to this machine is answered at once unless its listener's queue is full (the
        // probe connected: no firewall drops it): the kernel's first retry (1 s) is waited
        // for, no longer.
        let began = Instant::now();
        let wait = crate::connect::this_machine::LOCAL_RETRANSMIT_WAIT;
        let connect_until = deadline.min(if a.here { began + wait } else { deadline });
        match connector.session_stream(&a.probe, connect_until).await {
            Ok(stream) => {
                Some(after_connect_via(stream, address, a.probe.elapsed, req, via, deadline).await)
            }
            // The second connect met the reset itself: the program accepts and resets at once
            // (the RST often lands before the connect is seen to complete).
            Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => {
                Some(SessionFacts::new(address, Duration::ZERO, First::Reset))
            }
            // The session's own connection got no answer from this machine's listener while
            // the probe's still waits in its queue, never taken: the queue is full and the
            // program does not take connections (the probe took its last slot).
            Err(e) if a.here && e.kind() == std::io::ErrorKind::TimedOut => {
                unanswered_here(a, began, req.program.as_ref(), deadline).await
            }
            Err(_) => None,
        }
    }))
    .await
}

/// The session's connect to `a`, an address of this machine, got no answer since `began`:
/// if the probe's connection still waits in the listener's queue, never taken, the session is
/// that (`not_accepted`); `None` when it was taken, or cannot be seen.
async fn unanswered_here(
    a: &AddressFacts,
    began: Instant,
    program: Option<&watch::Program>,
    deadline: Instant,
) -> Option<SessionFacts> {
    let (address, client) = (a.address(), a.probe.local?);
    let n = watch::still_queued(address, client, began, program, deadline).await?;
    Some(SessionFacts {
        not_accepted: Some(n),
        ..SessionFacts::new(address, Duration::ZERO, First::Silent)
    })
}

/// The pids of the processes found holding the port's listeners; none when a listener's
/// owner was not found (the program that takes the connection may then be that one).
fn owner_pids(local: Option<&LocalFacts>) -> Vec<u32> {
    let listeners = local.map_or(&[][..], |l| &l.listeners[..]);
    let Some(mut pids) = listeners
        .iter()
        .map(|l| l.process.as_ref().map(|p| p.pid))
        .collect::<Option<Vec<u32>>>()
    else {
        return Vec::new();
    };
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Which address, if any, to walk the path to: the first one, when no address is open and it
/// was silent or undeliverable (a walk cannot help with a reset, a reject, or no local route).
fn trace_target(probes: &[ProbeFact], mode: TraceMode) -> Option<SocketAddr> {
    let first = probes.first()?;
    match mode {
        TraceMode::Never => None,
        TraceMode::Always => Some(first.spec.address),
        TraceMode::Auto => {
            let any_open = probes.iter().any(|p| p.result == ConnectResult::Connected);
            let r = classify(first);
            // A device on the way that says it cannot deliver to the host has already named the
            // last device reached: a walk cannot add to that.
            let walkable = matches!(r.outcome, Outcome::Filtered | Outcome::Unreachable)
                && !matches!(
                    r.evidence,
                    Evidence::NoRouteHere(_) | Evidence::LocalError(_)
                )
                && !liveness::router_says_unreachable(first, first.spec.address.ip());
            (!any_open && walkable).then_some(first.spec.address)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::remote::WALK_GRACE;
    use crate::options::DEFAULT_TIMEOUT;
    use crate::probe::{ConnectResult, ProbeFact};

    #[test]
    fn the_service_spoken_comes_from_the_flag_the_scheme_or_the_port() {
        let services = crate::services::Services::parse("");
        let app = |t: &str, protocol| {
            let target = crate::target::parse(t, None, &services).unwrap();
            application(&target, protocol)
        };
        let spoken = |a: Application| match a {
            Application::Service(s) => Some((s.selection.protocol, s.params, s.tls_required)),
            _ => None,
        };
        let (p, params, required) = spoken(app(
            "postgres://app:pw@db/orders?sslmode=require",
            Protocol::Auto,
        ))
        .unwrap();
        assert_eq!(p, ServiceProtocol::Postgres);
        assert_eq!(params.user.as_deref(), Some("app"));
        assert_eq!(params.database.as_deref(), Some("orders"));
        assert!(required);
        // Percent-decoded, as libpq reads a URL's database and user.
        let (_, params, _) =
            spoken(app("postgres://a%40corp@db/my%20orders", Protocol::Auto)).unwrap();
        assert_eq!(params.database.as_deref(), Some("my orders"));
        assert_eq!(params.user.as_deref(), Some("a@corp"));
        assert_eq!(
            spoken(app("db:5432", Protocol::Auto)).unwrap().0,
            ServiceProtocol::Postgres
        );
        assert_eq!(
            spoken(app("rediss://c", Protocol::Auto)).unwrap().0,
            ServiceProtocol::Redis
        );
        assert_eq!(
            spoken(app("mariadb://m", Protocol::Auto)).unwrap().0,
            ServiceProtocol::MySql
        );
        let redis = Protocol::Service(Selection::from_name("redis").unwrap());
        assert_eq!(
            spoken(app("c:8080", redis)).unwrap().0,
            ServiceProtocol::Redis
        );
        // The ports and schemes that were checked otherwise before stay so.
        assert!(matches!(
            app("h:443", Protocol::Auto),
            Application::Https(_)
        ));
        assert_eq!(app("h:993", Protocol::Auto), Application::Tls);
        assert_eq!(app("imaps://h", Protocol::Auto), Application::Tls);
        assert_eq!(app("h:22", Protocol::Auto), Application::Watch);
        assert_eq!(app("h:5432", Protocol::Tcp), Application::Watch);
    }

    /// A check of its own: this machine read afresh.
    async fn gather<R: Resolver, C: Connector>(
        target: Target,
        opts: Options,
        resolver: &R,
        connector: &C,
    ) -> Facts {
        gather_with(target, opts, resolver, connector, &local::shared::Fresh).await
    }
    use crate::services::Services;
    use std::net::IpAddr;
    use std::sync::Mutex;

    /// How the fake network answers a probe: `None` is silence, else (delay, result).
    /// `n` counts earlier probes of the same address and port.
    type Script = fn(&ProbeSpec, usize) -> Option<(Duration, ConnectResult)>;

    /// Answers from a script; records what was probed.
    struct Fake {
        system: Vec<IpAddr>,
        /// How long the system lookup takes (within the deadline).
        system_delay: Duration,
        direct_delay: Duration,
        probed: Mutex<Vec<ProbeSpec>>,
        script: Script,
    }
    impl Resolver for Fake {
        async fn system(&self, _: &str, deadline: Instant) -> Lookup {
            tokio::time::sleep_until(deadline.min(Instant::now() + self.system_delay)).await;
            Lookup {
                addresses: self.system.clone(),
                elapsed: self.system_delay,
                error: (self.system.is_empty()).then(|| LookupError::new(DnsErrorKind::Nxdomain)),
            }
        }
        async fn direct(&self, _: &str, deadline: Instant) -> Option<DnsView> {
            let until = deadline.min(Instant::now() + self.direct_delay);
            tokio::time::sleep_until(until).await;
            Some(DnsView {
                resolv: None,
                servers: vec![],
                combined: Lookup {
                    addresses: vec![],
                    elapsed: self.direct_delay,
                    error: Some(LookupError::new(DnsErrorKind::Servfail)),
                },
            })
        }
    }
    impl Connector for Fake {
        /// The fake network has no streams: the session stage is tested on its own.
        async fn stream(
            &self,
            _: SocketAddr,
            _: Instant,
        ) -> std::io::Result<tokio::net::TcpStream> {
            Err(std::io::ErrorKind::Unsupported.into())
        }
        async fn probe(&self, spec: ProbeSpec, deadline: Instant) -> ProbeFact {
            let n = {
                let mut p = self.probed.lock().unwrap();
                let n = p.iter().filter(|s| s.address == spec.address).count();
                p.push(spec);
                n
            };
            let start = Instant::now();
            let (result, until) = match (self.script)(&spec, n) {
                Some((delay, r)) if start + delay < deadline => (r, start + delay),
                _ => (ConnectResult::TimedOut, deadline),
            };
            tokio::time::sleep_until(until).await;
            // A TTL-limited probe that "fails" with EHOSTUNREACH met hop TTL's time-exceeded
            // (from 198.18.TTL.1), as the kernel reports it.
            let icmp = match (spec.ttl, result) {
                (Some(ttl), ConnectResult::Failed { errno }) if errno == libc::EHOSTUNREACH => {
                    Some(crate::probe::Icmp {
                        v6: false,
                        kind: 11,
                        code: 0,
                        from: Some(IpAddr::from([198, 18, ttl, 1])),
                    })
                }
                _ => None,
            };
            ProbeFact {
                spec,
                result,
                elapsed: start.elapsed(),
                icmp,
                local: None,
            }
        }
    }
    fn open_at_once(_: &ProbeSpec, _: usize) -> Option<(Duration, ConnectResult)> {
        Some((Duration::ZERO, ConnectResult::Connected))
    }
    const REFUSED: ConnectResult = ConnectResult::Failed {
        errno: libc::ECONNREFUSED,
    };
    fn fake(system: &[&str], direct_delay: Duration) -> Fake {
        scripted(system, direct_delay, open_at_once)
    }
    fn scripted(system: &[&str], direct_delay: Duration, script: Script) -> Fake {
        Fake {
            system: system.iter().map(|a| a.parse().unwrap()).collect(),
            system_delay: Duration::ZERO,
            direct_delay,
            probed: Mutex::new(vec![]),
            script,
        }
    }
    fn target(s: &str) -> Target {
        crate::target::parse(s, None, &Services::parse("")).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn probes_every_address_in_system_order() {
        let f = fake(&["fd00::2", "198.18.0.2"], Duration::from_millis(1));
        let facts = gather(target("db:5432"), Options::default(), &f, &f).await;
        let probed: Vec<String> = facts
            .addresses
            .iter()
            .map(|a| a.address().to_string())
            .collect();
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
            trace: TraceMode::Never,
            local: LocalMode::Auto,
            protocol: Protocol::Auto,
            follow_proxy: true,
            trust: Trust::default(),
            expect_status: None,
            ask: None,
            report: true,
            payload: None,
        };
        let facts = gather(target("db:5432"), opts.clone(), &f, &f).await;
        assert_eq!(
            facts.dns.direct.unwrap().error.unwrap().kind,
            DnsErrorKind::Servfail
        );
        assert!(facts.addresses.is_empty());
        let f = fake(&[], Duration::from_secs(60));
        let facts = gather(target("db:5432"), opts.clone(), &f, &f).await;
        assert!(facts.elapsed <= opts.timeout, "{:?}", facts.elapsed);
    }

    #[tokio::test(start_paused = true)]
    async fn ip_literals_skip_dns() {
        let f = fake(&["198.18.0.9"], Duration::ZERO);
        let facts = gather(target("198.18.0.2:22"), Options::default(), &f, &f).await;
        assert_eq!(facts.dns, DnsFacts::default());
        assert_eq!(
            facts.addresses[0].probe.spec.address.to_string(),
            "198.18.0.2:22"
        );
    }

    #[test]
    fn only_http_proxies_are_followed_and_the_endpoint_keeps_the_typed_input() {
        let dest = target("https://api.example/v1");
        let env = |v: &'static str| move |k: &str| (k == "https_proxy").then(|| v.to_string());
        let choice = |v: &'static str| match crate::session::proxy::proxy_for(
            "https",
            "api.example",
            443,
            &env(v),
        ) {
            ProxyChoice::Proxy(p) => p,
            other => panic!("{other:?}"),
        };
        let (p, endpoint) = proxy_endpoint(&choice("http://u:pw@[fd00::8]:3128"), &dest).unwrap();
        assert_eq!(endpoint.host, Host::Ip("fd00::8".parse().unwrap()));
        assert_eq!(endpoint.port.get(), 3128);
        assert_eq!(endpoint.input, dest.input);
        assert!(endpoint.url.is_none() && !endpoint.here);
        assert_eq!(p.masked, "http://***@[fd00::8]:3128");
        assert!(proxy_endpoint(&choice("socks5h://proxy.corp"), &dest).is_none());
        assert!(proxy_endpoint(&choice("https://proxy.corp"), &dest).is_none());
    }

    /// Port 5432 silent; every other port resets after 1 ms (the host is up).
    fn dropped_5432(spec: &ProbeSpec, _: usize) -> Option<(Duration, ConnectResult)> {
        (spec.address.port() != 5432).then_some((Duration::from_millis(1), REFUSED))
    }
    fn no_trace() -> Options {
        Options {
            trace: TraceMode::Never,
            ..Options::default()
        }
    }

    /// Hop 1 answers time-exceeded at once; the target drops 5432 and resets any other port.
    fn router_answers(spec: &ProbeSpec, _: usize) -> Option<(Duration, ConnectResult)> {
        match spec.ttl {
            Some(1) => Some((Duration::from_micros(300), UNREACH)),
            Some(_) => None,
            None => dropped_5432(spec, 0),
        }
    }
    const UNREACH: ConnectResult = ConnectResult::Failed {
        errno: libc::EHOSTUNREACH,
    };

    #[tokio::test(start_paused = true)]
    async fn a_silent_port_on_a_live_host_is_decided_from_its_rtt() {
        let f = scripted(&[], Duration::ZERO, router_answers);
        let facts = gather(target("198.18.2.2:5432"), Options::default(), &f, &f).await;
        let s = facts.addresses[0].silence.as_ref().unwrap();
        assert_eq!(facts.addresses[0].probe.result, ConnectResult::TimedOut);
        assert_eq!(s.decided_after, Some(liveness::MIN_SILENCE));
        assert_eq!(
            s.second_syn.as_ref().unwrap().result,
            ConnectResult::TimedOut
        );
        // The walk showed the router answering: its ICMP budget is not spent, no wait for
        // the kernel's retransmission.
        assert_eq!(s.retransmit_wait, None);
        // Liveness starts at DELAY, answers after 1 ms, then the second SYN gets the bound.
        let expected = liveness::DELAY + Duration::from_millis(1) + liveness::MIN_SILENCE;
        assert!(
            facts.elapsed <= expected + Duration::from_millis(1),
            "{:?}",
            facts.elapsed
        );
        // Bounded: one main SYN, four liveness SYNs, one second SYN, one wave of the walk.
        assert_eq!(f.probed.lock().unwrap().len(), 6 + usize::from(trace::WAVE));
    }

    #[tokio::test(start_paused = true)]
    async fn without_routers_seen_answering_silence_waits_for_the_retransmission() {
        // No walk (`--no-trace`), or a walk nothing answered: a router's spent ICMP budget
        // may be holding back a reject, so the retransmitted SYN's answer is waited for.
        for (opts, script) in [
            (no_trace(), dropped_5432 as Script),
            (Options::default(), dropped_5432 as Script),
        ] {
            let f = scripted(&[], Duration::ZERO, script);
            let facts = gather(target("198.18.2.2:5432"), opts.clone(), &f, &f).await;
            let s = facts.addresses[0].silence.as_ref().unwrap();
            assert_eq!(facts.addresses[0].probe.result, ConnectResult::TimedOut);
            let wait = liveness::retransmit_wait(Duration::from_millis(1));
            assert_eq!(s.retransmit_wait, Some(wait));
            assert_eq!(s.decided_after, Some(liveness::MIN_SILENCE));
            assert_eq!(facts.addresses[0].probe.elapsed, wait);
            // Still reported: the second SYN's silence.
            assert_eq!(
                s.second_syn.as_ref().unwrap().result,
                ConnectResult::TimedOut
            );
            // The wait sends nothing new.
            let walk = if opts.trace == TraceMode::Never {
                0
            } else {
                usize::from(trace::WAVE)
            };
            assert_eq!(f.probed.lock().unwrap().len(), 6 + walk);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_reject_held_back_by_a_spent_budget_is_met_by_the_retransmission() {
        // The first SYN meets silence (the router's budget is spent); the kernel's
        // retransmission, 1 s on, is answered. The walk's router is silent too.
        fn limited(spec: &ProbeSpec, _: usize) -> Option<(Duration, ConnectResult)> {
            match (spec.ttl, spec.address.port()) {
                (Some(_), _) => None,
                (None, 5432) => Some((Duration::from_millis(1001), REFUSED)),
                (None, _) => Some((Duration::from_millis(1), REFUSED)),
            }
        }
        let f = scripted(&[], Duration::ZERO, limited);
        let facts = gather(target("198.18.2.2:5432"), Options::default(), &f, &f).await;
        let a = &facts.addresses[0];
        assert_eq!(
            a.probe.result, REFUSED,
            "the answer, not `filtered` at 0.21 s"
        );
        assert!(a.silence.as_ref().unwrap().retransmit_wait.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_before_the_retransmission_cuts_the_wait_short() {
        let f = scripted(&[], Duration::ZERO, dropped_5432);
        let opts = Options {
            timeout: Duration::from_millis(900),
            ..no_trace()
        };
        let facts = gather(target("198.18.2.2:5432"), opts.clone(), &f, &f).await;
        let s = facts.addresses[0].silence.as_ref().unwrap();
        // Up to the deadline, less what the stages after the probes need.
        assert_eq!(s.retransmit_wait, Some(opts.timeout - FINISH_MARGIN));
        assert_eq!(s.decided_after, Some(liveness::MIN_SILENCE));
        assert!(facts.elapsed <= opts.timeout, "{:?}", facts.elapsed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_answer_inside_the_bound_is_never_called_filtered() {
        // The port resets after 150 ms: slower than the other ports, inside the bound.
        fn slow(spec: &ProbeSpec, _: usize) -> Option<(Duration, ConnectResult)> {
            let ms = if spec.address.port() == 5432 { 150 } else { 1 };
            Some((Duration::from_millis(ms), REFUSED))
        }
        let f = scripted(&[], Duration::ZERO, slow);
        let facts = gather(target("198.18.2.2:5432"), no_trace(), &f, &f).await;
        assert_eq!(facts.addresses[0].probe.result, REFUSED);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_first_syn_is_rescued_by_the_second() {
        fn lossy(spec: &ProbeSpec, n: usize) -> Option<(Duration, ConnectResult)> {
            match (spec.address.port(), n) {
                (5432, 0) => None,
                _ => Some((Duration::from_millis(1), ConnectResult::Connected)),
            }
        }
        let f = scripted(&[], Duration::ZERO, lossy);
        let facts = gather(target("198.18.2.2:5432"), no_trace(), &f, &f).await;
        assert_eq!(facts.addresses[0].probe.result, ConnectResult::Connected);
    }

    fn silent(_: &ProbeSpec, _: usize) -> Option<(Duration, ConnectResult)> {
        None
    }

    #[tokio::test(start_paused = true)]
    async fn with_no_evidence_the_probe_waits_for_neighbour_discovery_not_the_deadline() {
        let f = scripted(&[], Duration::ZERO, silent);
        let opts = Options::default();
        let facts = gather(target("198.18.2.2:5432"), opts, &f, &f).await;
        assert_eq!(
            facts.addresses[0].silence.as_ref().unwrap().decided_after,
            None
        );
        assert_eq!(facts.addresses[0].probe.elapsed, liveness::NEIGHBOUR_WAIT);
        let walk = facts.trace.as_ref().expect("silence is walked");
        // One wave, nothing answered: no further TTLs.
        assert_eq!(walk.hops.len(), usize::from(trace::WAVE));
        assert!(
            facts.elapsed <= liveness::NEIGHBOUR_WAIT + liveness::DELAY * 2,
            "{:?}",
            facts.elapsed
        );
        // The walk ran alongside: 1 main + 4 liveness + one wave.
        assert_eq!(f.probed.lock().unwrap().len(), 5 + usize::from(trace::WAVE));
    }

    #[tokio::test(start_paused = true)]
    async fn many_silent_addresses_cost_one_syn_each_past_the_first_two() {
        let addrs: Vec<String> = (1..=16)
            .map(|i| format!("198.18.2.{i}"))
            .chain((1..=16).map(|i| format!("fd00:2::{i}")))
            .collect();
        let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
        let f = scripted(&refs, Duration::ZERO, silent);
        let facts = gather(target("db:5432"), Options::default(), &f, &f).await;
        assert_eq!(facts.addresses.len(), 32);
        assert!(
            facts.elapsed <= liveness::NEIGHBOUR_WAIT + DNS_VIEW_GRACE,
            "{:?}",
            facts.elapsed
        );
        for a in &facts.addresses[1..] {
            assert!(a.probe.elapsed <= liveness::OTHER_WAIT, "{:?}", a.probe);
        }
        // 32 main SYNs, 4 liveness probes for each of the first two, one wave of the walk.
        let sent = f.probed.lock().unwrap().len();
        assert_eq!(sent, 32 + 8 + usize::from(trace::WAVE));
    }

    #[tokio::test(start_paused = true)]
    async fn the_walk_runs_alongside_the_second_syn_and_stops_at_the_target() {
        // Hop 1 answers time-exceeded at once; the target drops 5432.
        let f = scripted(&[], Duration::ZERO, router_answers);
        let facts = gather(target("198.18.2.2:5432"), Options::default(), &f, &f).await;
        assert_eq!(facts.addresses[0].probe.result, ConnectResult::TimedOut);
        // The verdict's time is the second SYN's bound, not that plus a walk.
        let expected = liveness::DELAY + Duration::from_millis(1) + liveness::MIN_SILENCE;
        assert!(
            facts.elapsed <= expected + WALK_GRACE,
            "{:?}",
            facts.elapsed
        );
        let walk = facts.trace.as_ref().expect("walked");
        assert_eq!(walk.hops.len(), usize::from(trace::WAVE));
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_name_leaves_the_probe_the_time_that_is_left() {
        // The name resolves at 4.00 s of the 5 s deadline: a dead first name server and
        // `options timeout:4`. A second is left, and the probe gets it.
        fn open_soon(_: &ProbeSpec, _: usize) -> Option<(Duration, ConnectResult)> {
            Some((Duration::from_millis(1), ConnectResult::Connected))
        }
        let late = Duration::from_secs(4);
        for (script, verdict) in [
            (open_soon as Script, crate::diagnosis::Verdict::Open),
            // A port the live host drops: the second SYN's bound, ~0.21 s, fits as well.
            (
                router_answers as Script,
                crate::diagnosis::Verdict::Filtered,
            ),
        ] {
            let f = Fake {
                system_delay: late,
                // The DNS view never comes (it is not what is tested here).
                ..scripted(&["198.18.2.2"], Duration::from_secs(60), script)
            };
            let facts = gather(target("db:5432"), Options::default(), &f, &f).await;
            let d = crate::diagnosis::diagnose(facts.clone());
            assert_eq!(d.verdict, verdict, "{:?}", facts.addresses[0].probe);
            assert!(facts.elapsed > late && facts.elapsed <= DEFAULT_TIMEOUT);
        }
    }

    /// This machine seen through a seam that reads nothing and counts the firewall reads.
    #[derive(Default)]
    struct CountingInspector {
        firewall_reads: std::sync::atomic::AtomicUsize,
    }
    impl Inspector for CountingInspector {
        fn addresses(&self) -> Vec<IpAddr> {
            Vec::new()
        }
        fn inspect(
            &self,
            _: u16,
            _: Vec<IpAddr>,
        ) -> futures_util::future::BoxFuture<'static, Option<LocalFacts>> {
            async { None }.boxed()
        }
        fn firewall(
            &self,
            _: u16,
            _: std::time::Instant,
        ) -> futures_util::future::BoxFuture<'static, Option<local::Firewall>> {
            self.firewall_reads
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { None }.boxed()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn only_a_report_reads_the_firewall_and_the_verdict_is_the_same_without() {
        let mut verdicts = Vec::new();
        for report in [true, false] {
            let f = scripted(&[], Duration::ZERO, router_answers);
            let seen = CountingInspector::default();
            let opts = Options {
                report,
                ..Options::default()
            };
            let facts = gather_with(target("198.18.2.2:5432"), opts, &f, &f, &seen).await;
            let reads = seen
                .firewall_reads
                .load(std::sync::atomic::Ordering::SeqCst);
            assert_eq!(reads, usize::from(report), "report: {report}");
            verdicts.push(crate::diagnosis::diagnose(facts.clone()).verdict);
        }
        assert_eq!(verdicts[0], verdicts[1]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_quick_answer_sends_nothing_else() {
        let f = fake(&[], Duration::ZERO);
        let facts = gather(target("198.18.2.2:5432"), Options::default(), &f, &f).await;
        assert!(facts.addresses.iter().all(|a| a.silence.is_none()) && facts.trace.is_none());
        assert_eq!(f.probed.lock().unwrap().len(), 1);
    }
}
