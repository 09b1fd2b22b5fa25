//! The pipeline: run the stages, concurrently where that saves time, under one deadline.
//!
//! ```text
//! target ──► name stage ─┬─ system view (getaddrinfo) ──► probe every address (in parallel)
//!                        │                                 └─ silent > 10 ms: liveness probes
//!                        │                                    of other ports, a second SYN,
//!                        │                                    `filtered` after a bound from RTT
//!                        └─ DNS view (hickory) ─────────► (joined; never waited on past a grace)
//!           silent or unreachable ──► path walk (TTL-limited SYNs, in parallel)
//!                                                   └──► Facts ──► diagnosis ──► renderer
//! ```
//!
//! Stages only gather [`Facts`]; nothing here decides or prints. The side effects come in
//! through the [`Resolver`] and [`Connector`] seams.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use futures_util::future::join_all;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use tokio::time::Instant;

use crate::diagnosis::{Evidence, Outcome, Sender, classify};
use crate::dns::{DnsErrorKind, DnsFacts, DnsView, Lookup, LookupError, Resolver};
use crate::facts::{AddressFacts, DirectPath, Facts, ProxyRoute, QueueWatch, Silence};
use crate::liveness;
use crate::local;
use crate::local::LocalFacts;
use crate::local::netstat::ListenCounters;
use crate::local::shared::Inspector;
use crate::options::{LocalMode, Options, Protocol, TraceMode};
use crate::probe::{ConnectResult, Connector, ProbeFact, ProbeSpec};
use crate::session::first::{self, First};
use crate::session::http::HttpTarget;
use crate::session::proxy::{Proxy, ProxyChoice};
use crate::session::tls::{Trust, TrustStore};
use crate::session::{Application, Destination, SessionFacts, SessionRequest, after_connect_via};
use crate::target::{Host, Target};
use crate::trace;

/// How long, once the probes are done, the check still waits for a DNS view it does not need
/// for the verdict. The DNS view only adds comparisons when the system lookup succeeded, and a
/// dead name server behind an /etc/hosts answer must not hold the check to its deadline.
pub const DNS_VIEW_GRACE: Duration = Duration::from_millis(250);

/// How much earlier than the deadline the probes (and the walk alongside them) end: the waits
/// after them (the other ports' grace, the firewall's read) are on the runtime's timer, which
/// fires up to a millisecond late each.
pub const FINISH_MARGIN: Duration = Duration::from_millis(5);

/// How long the system lookup is still waited for once every name server was found silent.
pub const SYSTEM_GRACE: Duration = Duration::from_millis(50);

/// Silent addresses whose host gets liveness probes (the ones clients try first).
pub const LIVENESS_ADDRESSES: usize = 2;

/// Run every stage for `target` and collect the facts.
///
/// A URL target whose proxy variable names an HTTP proxy is checked the way the application
/// reaches it: every stage runs on the proxy's host and port, the sessions go through it
/// (`CONNECT`, or plain HTTP in absolute form), and the destination is probed directly
/// alongside, for the record ([`crate::facts::ProxyRoute`]).
pub async fn gather<R: Resolver, C: Connector>(
    target: Target,
    opts: Options,
    resolver: &R,
    connector: &C,
) -> Facts {
    gather_with(target, opts, resolver, connector, &local::shared::Fresh).await
}

/// [`gather`], with this machine's listeners and firewall read through `inspector` (a run of
/// many targets shares its reads: [`local::shared::PerRun`]).
pub async fn gather_with<R: Resolver, C: Connector, I: Inspector>(
    target: Target,
    opts: Options,
    resolver: &R,
    connector: &C,
    inspector: &I,
) -> Facts {
    let start = Instant::now();
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
    // The probes get all the time that is left: a name that resolved late (a dead first name
    // server, `options timeout:4` of a 5 s deadline) must not leave the probe a fraction of a
    // millisecond. No time is kept back for the path walk: the first address's walk runs
    // alongside its probes (from the moment its host is proven up, or after
    // `liveness::WALK_AFTER` of silence) within the same deadline, and a walk that follows
    // the probes follows a quick answer. They end FINISH_MARGIN early, so that what follows
    // them (each wait on the runtime's millisecond timer) still ends by the deadline.
    let probe_deadline = deadline - FINISH_MARGIN.min(opts.timeout / 10);
    let port = target.port.get();
    let local_mode = opts.local;
    let here = target.here;
    // The sessions speak to the destination: the target itself, or the one behind the proxy.
    let (target_ref, app_ref) = (via.map_or(&target, |v| v.0), app);
    let via_ref = via.map(|v| v.1);
    let probe_all = |addrs: Vec<SocketAddr>| async move {
        // This machine's addresses, read once: for the local inspection and to know which
        // probes go to this machine (no liveness, no walk, a short silence bound).
        let mine = inspector.addresses();
        let inspect_here = match local_mode {
            LocalMode::Never => false,
            LocalMode::Always => true,
            LocalMode::Auto => here || addrs.iter().any(|a| local::is_local(a.ip(), &mine)),
        };
        // Local inspection is a netlink dump and a /proc scan: it goes on a thread of its own,
        // concurrently with the probes, and only for this machine's addresses.
        // `:PORT` probes what `localhost` gives, as `canreach localhost PORT` does: an address
        // the name does not give (::1 when /etc/hosts maps localhost to 127.0.0.1 only) is no
        // client's, and probing it made a `partial` of an open port. Listeners on other
        // addresses are in the inspection's report.
        let inspection = inspect_here.then(|| inspector.inspect(port, mine.clone()).shared());
        let walked = std::cell::RefCell::new(None);
        let walked_ref = &walked;
        // The firewall (one `nft` run, a few ms) is read as soon as the first address's result
        // shows it can explain it, concurrently with the local inspection's /proc scan.
        let firewall_task = std::cell::RefCell::new(None);
        let firewall_ref = &firewall_task;
        let results = join_all(addrs.into_iter().enumerate().map(|(i, a)| {
            let local = local::is_local(a.ip(), &mine);
            let role = Role {
                liveness: i < LIVENESS_ADDRESSES && !local,
                here: local,
                first: i == 0,
                // The first address's walk runs alongside its probes, from the moment the
                // silence is worth explaining; `trace_target` decides later whether it is kept.
                walk: (i == 0 && !local && opts.trace != TraceMode::Never)
                    .then_some(probe_deadline),
            };
            async move {
                let read_firewall = move || inspector.firewall(port, deadline.into_std());
                let probing = async {
                    if role.here {
                        let (fact, queue) =
                            probe_here(connector, inspector, a, probe_deadline).await;
                        (fact, None, None, queue)
                    } else {
                        let (fact, silence, walk) =
                            probe_address(connector, a, probe_deadline, role).await;
                        (fact, silence, walk, None)
                    }
                };
                tokio::pin!(probing);
                // A first address still silent after DELAY may well be `filtered`, which the
                // firewall can explain: start reading it now (a process, no packets), so that
                // it is ready with the verdict; it is kept only if the result needs it.
                let mut early = None;
                let silent_at = Instant::now() + liveness::DELAY;
                let (probe, silence, walk, queue) = tokio::select! {
                    r = &mut probing => r,
                    _ = tokio::time::sleep_until(silent_at),
                        if i == 0 && local_mode != LocalMode::Never && opts.report && !local =>
                    {
                        early = Some(read_firewall());
                        probing.await
                    }
                };
                if walk.is_some() {
                    *walked_ref.borrow_mut() = walk;
                }
                if i == 0
                    && local_mode != LocalMode::Never
                    && opts.report
                    && needs_firewall(std::slice::from_ref(&probe), inspect_here)
                {
                    *firewall_ref.borrow_mut() = Some(early.unwrap_or_else(read_firewall));
                }
                AddressFacts {
                    probe,
                    silence,
                    here: local,
                    session: None,
                    queue,
                }
            }
        }))
        .await;
        let walked = walked.into_inner();
        let firewall_task = firewall_task.into_inner();
        // After the connect, on every open address, while the local inspection finishes.
        // The processes behind the port's listener, for the first moments to end once the
        // program is back to waiting (from the inspection, as soon as it has them).
        let owners = inspection.as_ref().map(|task| {
            task.clone()
                .map(|l| owner_pids(l.as_ref()))
                .boxed()
                .shared()
        });
        // Read before the sessions connect (one connect per open address); only when there is
        // a session to watch (the kernel formats all of /proc/net/snmp for it: 12 % of the
        // CPU time of a run of 10,000 closed ports).
        let open = results
            .iter()
            .filter(|a| a.probe.result == ConnectResult::Connected)
            .count() as u64;
        let program = owners.filter(|_| open > 0).map(|owners| first::Program {
            owners,
            // The machine's count first: a connect of this process between the two reads is
            // then taken for another program's (a longer watch), never the other way round.
            connects_before: local::tcp_active_opens(),
            process_connects_before: crate::probe::own_connects(),
            own_connects: open,
        });
        let (sessions, late) = tokio::join!(
            follow_sessions(
                connector,
                &results,
                target_ref,
                app_ref,
                via_ref,
                program,
                opts.trust,
                opts.ask.as_ref(),
                deadline
            ),
            async {
                match inspection {
                    Some(task) => tokio::time::timeout_at(deadline, task).await.ok().flatten(),
                    None => None,
                }
            }
        );
        let mut results = results;
        for (a, s) in results.iter_mut().zip(sessions) {
            a.session = s;
        }
        (results, late, walked, firewall_task)
    };

    let (dns, (results, inspected, walked, firewall_task)) = match &target.host {
        Host::Ip(ip) => (
            DnsFacts::default(),
            probe_all(vec![(*ip, port).into()]).await,
        ),
        Host::Name(name) => {
            let direct = resolver.direct(name, deadline);
            let system = resolver.system(name, deadline);
            tokio::pin!(direct, system);
            let mut view: Option<Option<DnsView>> = None;
            let mut cutoff = deadline;
            // 1. The system view, which the probes need. If every name server is silent, the
            //    system resolver (asking the same servers) will not answer either: stop
            //    waiting for it shortly after, instead of at its own retries' end.
            let system = loop {
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
            // 2. Probe, while the DNS view may still be on its way.
            let addrs = system
                .addresses
                .iter()
                .map(|ip| (*ip, port).into())
                .collect();
            let probing = probe_all(addrs);
            tokio::pin!(probing);
            let results = loop {
                tokio::select! {
                    r = &mut probing => break r,
                    d = &mut direct, if view.is_none() => view = Some(d),
                }
            };
            // 3. The DNS view: needed for the error kind when the system failed; otherwise
            //    only for comparisons, so not waited for past a short grace.
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
            (
                DnsFacts {
                    system: Some(system),
                    direct,
                    servers,
                    resolv,
                    hosts: crate::dns::files::hosts_lines(name),
                },
                results,
            )
        }
    };
    let addresses: Vec<AddressFacts> = results;
    let probes: Vec<ProbeFact> = addresses.iter().map(|a| a.probe.clone()).collect();
    let local = inspected;
    // The firewall only explains a failure: read it (one `nft` run, a few ms) only then.
    let firewall = if let Some(task) = firewall_task {
        tokio::time::timeout_at(deadline, task).await.ok().flatten()
    } else if opts.local != LocalMode::Never
        && opts.report
        && needs_firewall(&probes, local.is_some())
    {
        let task = inspector.firewall(port, deadline.into_std());
        tokio::time::timeout_at(deadline, task).await.ok().flatten()
    } else {
        None
    };
    // A path to this machine does not exist: its listeners and firewall explain it.
    let to_self = addresses.first().is_some_and(|a| a.here);
    let trace = match trace_target(&probes, opts.trace).filter(|_| !to_self) {
        // Walked alongside the probes already.
        Some(address) if walked.as_ref().is_some_and(|w| w.address == address) => walked,
        Some(address) => Some(trace::walk(connector, address, deadline).await),
        None => None,
    };
    Facts {
        dns,
        addresses,
        trace,
        local,
        firewall,
        privileged: crate::sys::is_root(),
        expect_status: opts.expect_status,
        elapsed: start.elapsed(),
        ..Facts::new(target, opts.timeout)
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
        Protocol::Tcp => Application::Watch,
        Protocol::Tls => Application::Tls,
        Protocol::Http => Application::Http(http(80)),
        Protocol::Https => Application::Https(http(443)),
        Protocol::Auto => match target.url.as_ref().map(|u| u.scheme.as_str()) {
            Some("https" | "wss") => Application::Https(http(443)),
            Some("http" | "ws") => Application::Http(http(80)),
            _ => crate::session::application_for(target.service.as_deref(), &host, port),
        },
    }
}

/// Run the session stage on every open address, concurrently, within the deadline. The
/// probe's socket is not kept, so each gets a new connection (one more round trip).
#[allow(clippy::too_many_arguments)]
async fn follow_sessions<C: Connector>(
    connector: &C,
    addresses: &[AddressFacts],
    target: &Target,
    app: &Application,
    via: Option<&Destination>,
    program: Option<first::Program>,
    trust: Trust,
    ask: Option<&std::sync::Arc<crate::session::ask::Ask>>,
    deadline: Instant,
) -> Vec<Option<SessionFacts>> {
    let open = |a: &AddressFacts| a.probe.result == ConnectResult::Connected;
    if !addresses.iter().any(open) {
        return addresses.iter().map(|_| None).collect();
    }
    let tls = matches!(app, Application::Tls | Application::Https(_));
    let asked_roots = ask.and_then(|a| a.roots.clone());
    let req = SessionRequest {
        host: ask
            .and_then(|a| a.server_name.clone())
            .unwrap_or_else(|| target.host.to_string()),
        application: app.clone(),
        // A module's own store (`tls_config`) before the command line's.
        roots: match asked_roots {
            Some(r) if tls => r,
            _ if tls => trust.roots(),
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
        match connector.stream(address, deadline).await {
            Ok(stream) => {
                Some(after_connect_via(stream, address, a.probe.elapsed, req, via, deadline).await)
            }
            // The second connect met the reset itself: the program accepts and resets at once
            // (the RST often lands before the connect is seen to complete).
            Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => Some(SessionFacts {
                address,
                window: Duration::ZERO,
                accepted: None,
                at_rest: None,
                not_accepted: None,
                first: First::Reset,
                via: None,
                tls: None,
                mss_retry: None,
                http: None,
                tls_confirm: None,
                answered: None,
            }),
            Err(_) => None,
        }
    }))
    .await
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

/// Should this machine's firewall be read? For a local target whose first address failed (its
/// input chain may be why); for any target whose first address was silent (an OUTPUT-chain
/// drop looks exactly like remote silence) or that this machine refused to send. Only for a
/// report (`Options::report`): the rules name why, the probes' answers alone give the verdict
/// (`diagnosis::verdict_of`), so `-q` reads no ruleset (a sweep of 10,000 loopback ports ran
/// `nft` ~100 times, a sixth of its CPU time).
fn needs_firewall(probes: &[ProbeFact], local_target: bool) -> bool {
    probes.first().is_some_and(|p| {
        let r = classify(p);
        (local_target && r.outcome != Outcome::Open)
            || r.outcome == Outcome::Filtered
            || matches!(r.evidence, Evidence::LocalPolicy(_))
            || (r.outcome == Outcome::Rejected
                && matches!(r.sender(), Some((Sender::ThisMachine, _))))
    })
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

/// Probe the host's other ports until one answers from the host itself, or `until`.
async fn check_liveness<C: Connector>(
    connector: &C,
    address: SocketAddr,
    until: Instant,
) -> Silence {
    let ip = address.ip();
    let ports: Vec<u16> = liveness::PORTS
        .iter()
        .copied()
        .filter(|p| *p != address.port())
        .collect();
    let mut others: FuturesUnordered<_> = ports
        .iter()
        .map(|p| {
            let spec = ProbeSpec::to((ip, *p).into());
            async move { (spec.address.port(), connector.probe(spec, until).await) }
        })
        .collect();
    let mut silence = Silence {
        liveness: ports.iter().map(|p| (*p, None)).collect(),
        ..Silence::default()
    };
    while let Ok(Some((port, f))) = tokio::time::timeout_at(until, others.next()).await {
        let answered = liveness::target_answered(&f, ip);
        if let Some(slot) = silence.liveness.iter_mut().find(|(p, _)| *p == port) {
            slot.1 = Some(f);
        }
        if answered {
            break;
        }
    }
    silence
}

type ProbeFuture<'a> = Pin<Box<dyn Future<Output = ProbeFact> + Send + 'a>>;
type WalkFuture<'a> = Pin<Box<dyn Future<Output = trace::TraceFacts> + Send + 'a>>;

/// What one address's probing may do.
#[derive(Debug, Clone, Copy)]
struct Role {
    /// Probe other ports of the host when the port is silent (the first addresses only).
    liveness: bool,
    /// This machine's own address.
    here: bool,
    /// The address that decides the verdict.
    first: bool,
    /// Walk the path alongside the probes, within this deadline.
    walk: Option<Instant>,
}

/// A walk running alongside an address's probes, and the means to cut it short.
struct Walk<'a> {
    running: Option<WalkFuture<'a>>,
    cut: tokio::sync::watch::Sender<Instant>,
    done: Option<trace::TraceFacts>,
}

impl<'a> Walk<'a> {
    fn start<C: Connector>(&mut self, connector: &'a C, address: SocketAddr, deadline: Instant) {
        if self.running.is_none() && self.done.is_none() {
            let cut = self.cut.subscribe();
            self.running = Some(Box::pin(trace::walk_until(
                connector, address, deadline, cut,
            )));
        }
    }

    /// The walk's result, waiting for it at most until `until`.
    async fn finish(mut self, until: Instant) -> Option<trace::TraceFacts> {
        if let Some(w) = self.running.take() {
            let _ = self.cut.send(until);
            self.done = Some(w.await);
        }
        self.done
    }
}

/// How long an address of this machine with a listener is given when it stays silent: until
/// the kernel's retransmitted SYN (1 s after the first, [`liveness::FIRST_RETRANSMISSION`]) has
/// had its answer, which on this machine comes within microseconds of it (the 100 ms allow for
/// the kernel's timer and this process's wake-up under load). A SYN dropped at a full queue is
/// retried then: a busy program's queue may have room again by then, and the retry is what a
/// client's own meets; a hung program's is still full.
pub const LOCAL_RETRANSMIT_WAIT: Duration = Duration::from_millis(1100);

/// Probe an address of this machine. It answers in microseconds, or not at all: silent for
/// [`liveness::DELAY`], the listener that takes it is looked up with its accept queue, and the
/// listen-drop counters read. No listener: the address is given [`liveness::LOCAL_SILENCE`],
/// as before (a SYN with no listener is answered with a reset: silence is a firewall rule).
/// A listener: the first SYN met a full queue (a busy program, whose queue may have room again
/// now, or a hung one, whose queue stays full) or a firewall rule of this machine; the kernel's
/// retransmission tells, and the address is given [`LOCAL_RETRANSMIT_WAIT`]. The queue and the
/// counters are looked at again when the probe ends ([`QueueWatch`]). Never past `deadline`.
async fn probe_here<C: Connector, I: Inspector>(
    connector: &C,
    inspector: &I,
    address: SocketAddr,
    deadline: Instant,
) -> (ProbeFact, Option<QueueWatch>) {
    let start = Instant::now();
    let long = deadline.min(start + LOCAL_RETRANSMIT_WAIT);
    let short = deadline.min(start + liveness::LOCAL_SILENCE);
    let mut main = std::pin::pin!(connector.probe(ProbeSpec::to(address), long));
    let quick = short.min(start + liveness::DELAY);
    if let Ok(fact) = tokio::time::timeout_at(quick, &mut main).await {
        return (fact, None);
    }
    let (first, before) = inspector.queue_look(address).await;
    let wait_retransmit = first.is_some();
    let until = if wait_retransmit { long } else { short };
    let fact = match tokio::time::timeout_at(until, &mut main).await {
        Ok(fact) => fact,
        Err(_) => ProbeFact {
            spec: ProbeSpec::to(address),
            result: ConnectResult::TimedOut,
            elapsed: start.elapsed(),
            icmp: None,
            local: None,
        },
    };
    let (last, after) = inspector.queue_look(address).await;
    let delta = |f: fn(&ListenCounters) -> u64| {
        Some(f(after.as_ref()?).saturating_sub(f(before.as_ref()?)))
    };
    let queue = QueueWatch {
        first,
        last,
        overflows: delta(|c| c.overflows),
        drops: delta(|c| c.drops),
        waited_retransmit: wait_retransmit && long >= start + LOCAL_RETRANSMIT_WAIT,
    };
    (fact, Some(queue))
}

/// Probe one address. If it stays silent for [`liveness::DELAY`], probe other ports of the same
/// host concurrently (when `role.liveness`); once one of them proves the host up, send a
/// second SYN and call the port filtered when both stay silent for
/// [`liveness::silence_bound`] of the host's round-trip time. Without such evidence the first
/// address waits [`liveness::NEIGHBOUR_WAIT`] (after which nothing new can arrive), the others
/// [`liveness::OTHER_WAIT`] (just before the kernel's first retransmission: they cannot change
/// the verdict, and their retransmissions would multiply the packets by the addresses); never
/// past `deadline`. (An address of this machine is probed by [`probe_here`].) A fast "host
/// unreachable" from a device on the way
/// gets the liveness probes too: a host that answers on other ports is not unreachable, and that
/// device is a firewall.
///
/// With `role.walk`, the path walk runs alongside: from the moment the host is proven up (with
/// the second SYN), or after [`liveness::WALK_AFTER`] of silence without evidence; once the
/// verdict is in it gets at most [`WALK_GRACE`] more.
///
/// Before the first address is called filtered at the second SYN's bound, the walk is cut and
/// read: unless it shows every router up to where it ended answering
/// ([`trace::routers_answered`]), the silence may be a router's spent ICMP budget holding back
/// a reject, and the port is given until the kernel's retransmitted SYN has been answered
/// ([`liveness::retransmit_wait`], recorded in `Silence::retransmit_wait`).
async fn probe_address<C: Connector>(
    connector: &C,
    address: SocketAddr,
    deadline: Instant,
    role: Role,
) -> (ProbeFact, Option<Silence>, Option<trace::TraceFacts>) {
    let start = Instant::now();
    let deadline = if role.first {
        deadline.min(start + liveness::NEIGHBOUR_WAIT)
    } else {
        deadline.min(start + liveness::OTHER_WAIT)
    };
    let mut main = std::pin::pin!(connector.probe(ProbeSpec::to(address), deadline));
    let quick = deadline.min(start + liveness::DELAY);
    tokio::select! {
        fact = &mut main => {
            if role.liveness && liveness::too_fast_to_be_unreachable(&fact, address.ip()) {
                let until = deadline.min(Instant::now() + liveness::silence_bound(fact.elapsed));
                let s = check_liveness(connector, address, until).await;
                return (fact, Some(s), None);
            }
            return (fact, None, None);
        }
        _ = tokio::time::sleep_until(quick) => {}
    }
    if !role.liveness {
        return (main.await, None, None);
    }

    let walk_deadline = role.walk.unwrap_or(deadline);
    let mut walk = Walk {
        running: None,
        cut: tokio::sync::watch::channel(walk_deadline).0,
        done: None,
    };
    let walk_at = role
        .walk
        .map(|_| deadline.min(start + liveness::WALK_AFTER));

    let ip = address.ip();
    let mut others: FuturesUnordered<_> = liveness::PORTS
        .iter()
        .filter(|p| **p != address.port())
        .map(|p| {
            let spec = ProbeSpec::to((ip, *p).into());
            async move { (*p, connector.probe(spec, deadline).await) }
        })
        .collect();
    let mut silence = Silence {
        liveness: liveness::PORTS
            .iter()
            .filter(|p| **p != address.port())
            .map(|p| (*p, None))
            .collect(),
        second_syn: None,
        decided_after: None,
        retransmit_wait: None,
    };
    let mut second: Option<ProbeFuture<'_>> = None;
    let mut decide_at: Option<(Instant, Duration)> = None;
    // The host's round-trip time, from the liveness answer that proved it up.
    let mut rtt = Duration::ZERO;
    let fact = loop {
        let wake = decide_at.map_or(deadline, |(t, _)| t);
        let walk_pending = walk_at.is_some() && walk.running.is_none() && walk.done.is_none();
        tokio::select! {
            // In this order: the second SYN is sent before the walk's TTLs that start with it,
            // so a router's ICMP token that refilled since the first SYN goes to the probe that
            // decides the verdict (its reject), not to the walk's time-exceeded.
            biased;
            fact = &mut main => break fact,
            Some((port, fact)) = others.next() => {
                if second.is_none() && liveness::target_answered(&fact, ip) {
                    rtt = fact.elapsed;
                    let bound = liveness::silence_bound(rtt);
                    second = Some(Box::pin(connector.probe(ProbeSpec::to(address), deadline)));
                    decide_at = Some((deadline.min(Instant::now() + bound), bound));
                    if role.walk.is_some() {
                        walk.start(connector, address, walk_deadline);
                    }
                }
                if let Some(slot) = silence.liveness.iter_mut().find(|(p, _)| *p == port) {
                    slot.1 = Some(fact);
                }
            }
            fact = async { second.as_mut().expect("guarded").await }, if second.is_some() => {
                second = None;
                silence.second_syn = Some(fact.clone());
                if fact.result != ConnectResult::TimedOut {
                    // The first SYN was lost and the second answered: that answer is the truth.
                    break fact;
                }
            }
            t = async { walk.running.as_mut().expect("guarded").await }, if walk.running.is_some() => {
                walk.running = None;
                walk.done = Some(t);
            }
            _ = tokio::time::sleep_until(walk_at.unwrap_or(deadline)), if walk_pending => {
                walk.start(connector, address, walk_deadline);
            }
            _ = tokio::time::sleep_until(wake) => {
                if let Some((_, bound)) = decide_at
                    && role.first
                    && silence.retransmit_wait.is_none()
                {
                    // Before calling the port filtered: is this silence perhaps a router's
                    // spent ICMP budget? The walk's answers so far tell whether the routers
                    // still answer; cut it now and read them.
                    if let Some(w) = walk.running.as_mut() {
                        let _ = walk.cut.send(walk_deadline.min(Instant::now() + WALK_GRACE));
                        tokio::select! {
                            biased;
                            fact = &mut main => break fact,
                            t = w => {
                                walk.running = None;
                                walk.done = Some(t);
                            }
                        }
                    }
                    if !walk.done.as_ref().is_some_and(trace::routers_answered) {
                        // They may not: wait for the kernel's retransmitted SYN, which meets a
                        // refilled budget (no packet of ours: the kernel sends it anyway).
                        let until = deadline.min(start + liveness::retransmit_wait(rtt));
                        silence.retransmit_wait = Some(until - start);
                        decide_at = Some((until, bound));
                        // Only the main SYN's retransmission is waited for: the second SYN
                        // has had its bound, and the other ports proved the host up. Their
                        // sockets close now (a SYN_SENT socket closes without a packet), so
                        // the wait adds nothing but that one retransmission.
                        if second.take().is_some() {
                            silence.second_syn.get_or_insert(ProbeFact {
                                spec: ProbeSpec::to(address),
                                result: ConnectResult::TimedOut,
                                elapsed: bound,
                                icmp: None,
                                local: None,
                            });
                        }
                        others.clear();
                        continue;
                    }
                }
                let elapsed = start.elapsed();
                if let Some((_, bound)) = decide_at {
                    silence.decided_after = Some(bound);
                }
                break ProbeFact {
                    spec: ProbeSpec::to(address),
                    result: ConnectResult::TimedOut,
                    elapsed,
                    icmp: None,
                    local: None,
                };
            }
        }
    };
    if fact.result == ConnectResult::TimedOut
        && fact.icmp.is_none()
        && silence.retransmit_wait.is_some()
    {
        // The wait for the retransmission ended at the deadline, where the main probe gives up
        // at the same instant: the second SYN's bound had passed all the same.
        silence.decided_after = decide_at.map(|(_, b)| b);
    }
    let walking = walk.finish(walk_deadline.min(Instant::now() + WALK_GRACE));
    let answered = liveness::target_answered(&fact, ip);
    let others_grace = async {
        if !answered {
            // The host is not proven up: the other ports' answers were sent DELAY later than
            // the main SYN, so give them as long again to arrive (an ARP failure answers them
            // all).
            let grace = deadline.min(Instant::now() + liveness::DELAY + liveness::DELAY / 2);
            let mut grace = grace;
            while let Ok(Some((port, f))) = tokio::time::timeout_at(grace, others.next()).await {
                // One router's host-unreachable settles it (the host is down), whatever ICMP
                // rate limits do to the others' answers: take only those already arriving.
                if liveness::router_says_unreachable(&f, ip) {
                    grace = grace.min(Instant::now() + SETTLED_GRACE);
                }
                if let Some(slot) = silence.liveness.iter_mut().find(|(p, _)| *p == port) {
                    slot.1 = Some(f);
                }
            }
        }
    };
    let (walked, ()) = tokio::join!(walking, others_grace);
    drop(others);
    if let Some(s) = second.take() {
        // The second SYN's own fate at the moment of decision, for the report.
        let now = ProbeFact {
            spec: ProbeSpec::to(address),
            result: ConnectResult::TimedOut,
            elapsed: decide_at.map_or(Duration::ZERO, |(_, b)| b),
            icmp: None,
            local: None,
        };
        drop(s);
        silence.second_syn.get_or_insert(now);
    }
    (fact, Some(silence), walked)
}

/// How long the other ports' answers are still taken once one of them is a router's
/// host-unreachable (the ARP/ND failure answers them all at the same moment).
const SETTLED_GRACE: Duration = Duration::from_millis(2);

/// How long a walk running alongside the probes may go on once the verdict is in: its hops
/// answer within the same round trips as the probes, so what has not come back by then is
/// not coming (a router's spent ICMP budget, a dropping device).
pub const WALK_GRACE: Duration = Duration::from_millis(20);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::DEFAULT_TIMEOUT;
    use crate::probe::{ConnectResult, ProbeFact};
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
            let d = crate::diagnosis::diagnose(&facts);
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
            verdicts.push(crate::diagnosis::diagnose(&facts).verdict);
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
