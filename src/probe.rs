//! Stage 2: one TCP connection attempt, and everything the kernel says about it.
//!
//! The socket is an ordinary, non-blocking TCP socket (no root) with `IP_RECVERR` /
//! `IPV6_RECVERR` set before `connect()`, so that an ICMP error arriving while the socket is in
//! SYN_SENT is queued with the address of the device that sent it. `ECONNREFUSED` alone cannot
//! tell a TCP reset from a firewall's ICMP port-unreachable; the error queue can (see
//! `docs/ground-truth/linux-probing.md`). This module only records facts ([`ProbeFact`]); what they
//! mean is decided in `diagnosis`.
//!
//! An optional TTL (hop limit) turns the same probe into one step of a TCP traceroute: hop N
//! answers with ICMP time-exceeded, which arrives in the same queue.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::time::Instant;

pub(crate) use crate::icmp::Icmp;

/// One connection attempt to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSpec {
    pub address: SocketAddr,
    /// IPv4 TTL / IPv6 hop limit; `None` leaves the system default.
    pub ttl: Option<u8>,
    /// Keep the connected socket for the session stage ([`Connector::stream`] hands it
    /// out) instead of closing it: a MySQL/MariaDB server counts a connection closed before
    /// its handshake toward blocking this host (`max_connect_errors`).
    pub keep: bool,
}

impl ProbeSpec {
    pub(crate) fn to(address: SocketAddr) -> Self {
        ProbeSpec {
            address,
            ttl: None,
            keep: false,
        }
    }
}

/// Connected probe sockets kept for the session stage ([`ProbeSpec::keep`]): the server's
/// address and this side's (which tell the one check the socket is for: another check of
/// the same address in the process, the exporter's tcp prober, must not take it), and when
/// it was kept. One not taken within [`KEPT_FOR`] is closed by the next keep or take.
static KEPT: std::sync::Mutex<Vec<Kept>> = std::sync::Mutex::new(Vec::new());

type Kept = ((SocketAddr, Option<SocketAddr>), std::time::Instant, Socket);

/// How long a kept socket waits for its session (longer than any check's deadline).
const KEPT_FOR: std::time::Duration = std::time::Duration::from_secs(120);

fn kept() -> std::sync::MutexGuard<'static, Vec<Kept>> {
    let mut k = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    k.retain(|(_, at, _)| at.elapsed() < KEPT_FOR);
    k
}

/// The probe's connected socket, when it was kept for the session.
fn take_kept(probe: &ProbeFact) -> Option<Socket> {
    let mut k = kept();
    let key = (probe.spec.address, probe.local);
    let i = k.iter().position(|(a, _, _)| *a == key)?;
    Some(k.swap_remove(i).2)
}

/// How `connect()` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectResult {
    /// The three-way handshake completed.
    Connected,
    /// The kernel connected the socket to itself: its own address and its peer's are the same
    /// (`getsockname() == getpeername()`). With nothing listening on a port of this machine
    /// that lies in its ephemeral range, a connect can be given that very port as its source,
    /// and the SYN meets the socket that sent it (TCP's "simultaneous open"). No server took
    /// part.
    ConnectedToItself,
    /// The kernel reported an error (`SO_ERROR`, or `connect()` itself failed at once).
    Failed { errno: i32 },
    /// Nothing came back before the deadline.
    TimedOut,
}

/// Everything observed about one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeFact {
    pub spec: ProbeSpec,
    pub result: ConnectResult,
    pub elapsed: Duration,
    /// The first ICMP error queued for the socket, if any.
    pub icmp: Option<Icmp>,
    /// This side's address, as the kernel chose it: an ICMP "from" it was sent by this
    /// machine itself (its own firewall, or its own failed neighbour lookup). After
    /// EADDRNOTAVAIL, the address it would send from (port 0), `None` when it has none.
    pub local: Option<SocketAddr>,
}

/// The seam between the pipeline and the network: the real one is [`KernelConnector`];
/// tests substitute one that replays facts.
pub trait Connector: Sync {
    fn probe(&self, spec: ProbeSpec, deadline: Instant) -> impl Future<Output = ProbeFact> + Send;

    /// A new connected stream to `address`, for what comes after the handshake (never a
    /// probe's kept socket: see [`Connector::session_stream`]); the error when it cannot be
    /// had by `deadline`.
    fn stream(
        &self,
        address: SocketAddr,
        deadline: Instant,
    ) -> impl Future<Output = io::Result<tokio::net::TcpStream>> + Send;

    /// The stream for the session after `probe`: the probe's own connection when it was kept
    /// ([`ProbeSpec::keep`]), else a new one as [`Connector::stream`] makes.
    fn session_stream(
        &self,
        probe: &ProbeFact,
        deadline: Instant,
    ) -> impl Future<Output = io::Result<tokio::net::TcpStream>> + Send {
        self.stream(probe.spec.address, deadline)
    }
}

/// TCP connects this process has begun through [`KernelConnector`] (probes and session
/// streams; counted once the `connect()` was issued, so that the count never runs ahead of
/// the machine's). The machine's count of connects
/// (`ActiveOpens`) moves with them too: a check that watches a program of this machine
/// subtracts these, so that other checks of the same process (a run of many targets, the
/// exporter) do not make the program's rest unknown. A connect made elsewhere in the
/// process and not counted here only makes the watch longer, never shorter.
static OWN_CONNECTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// TCP connects this process has begun through [`KernelConnector`], as a watch subtracts them
/// from the machine's count (see `OWN_CONNECTS`).
pub(crate) fn own_connects() -> u64 {
    OWN_CONNECTS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Probes with real sockets.
#[derive(Debug, Clone, Copy, Default)]
pub struct KernelConnector;

impl Connector for KernelConnector {
    async fn stream(
        &self,
        address: SocketAddr,
        deadline: Instant,
    ) -> io::Result<tokio::net::TcpStream> {
        let connected = tokio::time::timeout_at(deadline, tokio::net::TcpStream::connect(address))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut));
        // Counted once the SYN is surely out (a connect abandoned at the deadline is not
        // counted: the watch is then longer, never shorter).
        if matches!(connected, Ok(Ok(_))) {
            OWN_CONNECTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let stream = connected??;
        // A stream connected to itself would read back what it writes (a ClientHello, a
        // request) as if a server had sent it: it is no connection to the server. Nothing
        // listened there, as a reset would have said.
        if is_self_connect(stream.local_addr().ok(), stream.peer_addr().ok()) {
            return Err(io::Error::from_raw_os_error(libc::ECONNREFUSED));
        }
        Ok(stream)
    }

    async fn session_stream(
        &self,
        probe: &ProbeFact,
        deadline: Instant,
    ) -> io::Result<tokio::net::TcpStream> {
        if probe.spec.keep
            && let Some(socket) = take_kept(probe)
        {
            return tokio::net::TcpStream::from_std(socket.into());
        }
        self.stream(probe.spec.address, deadline).await
    }

    async fn probe(&self, spec: ProbeSpec, deadline: Instant) -> ProbeFact {
        let start = Instant::now();
        ProbeFact::of_attempt(spec, start, attempt(spec, deadline).await)
    }
}

impl ProbeFact {
    /// A probe of `address` that ended in `result` after `elapsed`, with no ICMP error queued
    /// and no source address seen.
    pub(crate) fn new(address: SocketAddr, result: ConnectResult, elapsed: Duration) -> Self {
        ProbeFact {
            spec: ProbeSpec::to(address),
            result,
            elapsed,
            icmp: None,
            local: None,
        }
    }

    /// The fact of an attempt with `spec` begun at `start`; an attempt whose socket could not
    /// be made or set up (EMFILE, EAFNOSUPPORT when IPv6 is off, …) failed with that error.
    pub(crate) fn of_attempt(spec: ProbeSpec, start: Instant, r: io::Result<Attempt>) -> Self {
        let (result, icmp, local) = r.unwrap_or_else(|e| (failed(&e), None, None));
        ProbeFact {
            spec,
            result,
            elapsed: start.elapsed(),
            icmp,
            local,
        }
    }
}

/// An attempt's outcome: the result, the first ICMP error queued, this side's address.
pub(crate) type Attempt = (ConnectResult, Option<Icmp>, Option<SocketAddr>);

/// The failure `e` as a result (EIO when it carries no errno).
pub(crate) fn failed(e: &io::Error) -> ConnectResult {
    ConnectResult::Failed {
        errno: e.raw_os_error().unwrap_or(libc::EIO),
    }
}

/// A non-blocking probe socket of type `kind` for `spec`: ICMP errors queued
/// (`IP_RECVERR`), the TTL (hop limit) set when `spec` has one.
pub(crate) fn probe_socket(spec: ProbeSpec, kind: Type, protocol: Protocol) -> io::Result<Socket> {
    let addr = spec.address;
    let socket = Socket::new(
        Domain::for_address(addr),
        kind.nonblocking().cloexec(),
        Some(protocol),
    )?;
    let v6 = addr.is_ipv6();
    set_recverr(socket.as_raw_fd(), v6)?;
    if let Some(ttl) = spec.ttl {
        if v6 {
            socket.set_unicast_hops_v6(u32::from(ttl))?;
        } else {
            socket.set_ttl_v4(u32::from(ttl))?;
        }
    }
    Ok(socket)
}

async fn attempt(spec: ProbeSpec, deadline: Instant) -> io::Result<Attempt> {
    let addr = spec.address;
    let socket = probe_socket(spec, Type::STREAM, Protocol::TCP)?;
    let connecting = socket.connect(&SockAddr::from(addr));
    OWN_CONNECTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // The source address is chosen by connect(); read it before a failure can reset it.
    let local = socket.local_addr().ok().and_then(|a| a.as_socket());
    let keep = |socket: Socket, r: &Attempt| {
        if spec.keep && r.0 == ConnectResult::Connected {
            kept().push(((addr, local), std::time::Instant::now(), socket));
        }
    };
    match connecting {
        Ok(()) => {
            let r = (connected(&socket, local), None, local);
            keep(socket, &r);
            return Ok(r);
        }
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        // ENETUNREACH (no route), EACCES (local policy) and friends come back at once.
        Err(e) => {
            let icmp = read_error_queue(socket.as_raw_fd());
            let failure = failed(&e);
            let local = if failure
                == (ConnectResult::Failed {
                    errno: libc::EADDRNOTAVAIL,
                }) {
                source_address(addr)
            } else {
                local
            };
            return Ok((failure, icmp, local));
        }
    }
    // This machine's own addresses answer inside connect() (the reset or the handshake is
    // processed before it returns): then there is nothing to wait for, and no registration
    // with the runtime's poll (two epoll_ctl calls and a wake-up; a sweep of 10,000 loopback
    // ports makes 10,000 of these).
    if let Some(done) = settled(&socket, local)? {
        keep(socket, &done);
        return Ok(done);
    }
    let fd = crate::sys::async_socket(socket)?;
    let outcome = tokio::time::timeout_at(deadline, async {
        loop {
            let mut guard = fd.writable().await?;
            match settled(guard.get_inner(), local)? {
                Some(done) => return Ok::<_, io::Error>(done),
                // Spurious wake-up: still in SYN_SENT.
                None => guard.clear_ready(),
            }
        }
    })
    .await;
    match outcome {
        Ok(Ok(r)) => {
            keep(fd.into_inner(), &r);
            Ok(r)
        }
        Ok(Err(e)) => Err(e),
        // The SYN went unanswered; a late ICMP may still have been queued just now.
        Err(_) => Ok((
            ConnectResult::TimedOut,
            read_error_queue(fd.get_ref().as_raw_fd()),
            local,
        )),
    }
}

/// The source address this machine would send from to `addr` (port 0), or `None` when it has
/// none. EADDRNOTAVAIL at `connect()` means either no free source port or no address of the
/// family to send from (IPv6 disabled while `localhost` gives `::1`, an address still
/// tentative); the kernel's own choice on a UDP socket, whose ports are not TCP's, tells which.
/// (A UDP socket with no free port either, EAGAIN, tells nothing of the address: the lack of
/// ports stands, with the unspecified address.)
fn source_address(addr: SocketAddr) -> Option<SocketAddr> {
    let udp = Socket::new(Domain::for_address(addr), Type::DGRAM.cloexec(), None).ok()?;
    let unspecified = || match addr {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    match udp.connect(&SockAddr::from(addr)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return Some(unspecified()),
        Err(_) => return None,
    }
    let ip = udp.local_addr().ok()?.as_socket()?.ip();
    (!ip.is_unspecified()).then_some(SocketAddr::new(ip, 0))
}

/// How a connecting socket stands: failed (with its error queue), connected, or `None` while
/// still in SYN_SENT.
fn settled(sock: &Socket, local: Option<SocketAddr>) -> io::Result<Option<Attempt>> {
    if let Some(e) = sock.take_error()? {
        let icmp = read_error_queue(sock.as_raw_fd());
        return Ok(Some((failed(&e), icmp, local)));
    }
    match sock.peer_addr() {
        Ok(_) => Ok(Some((connected(sock, local), None, local))),
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A completed connect: to a peer, or to itself (its peer is its own address).
fn connected(socket: &Socket, local: Option<SocketAddr>) -> ConnectResult {
    let peer = socket.peer_addr().ok().and_then(|a| a.as_socket());
    if is_self_connect(local, peer) {
        ConnectResult::ConnectedToItself
    } else {
        ConnectResult::Connected
    }
}

/// Are this side's address and the peer's one and the same? (A v6 socket's v4-mapped form and
/// the plain v4 form are one address.)
pub(crate) fn is_self_connect(local: Option<SocketAddr>, peer: Option<SocketAddr>) -> bool {
    let canonical = |a: SocketAddr| (a.ip().to_canonical(), a.port());
    matches!((local, peer), (Some(l), Some(p)) if canonical(l) == canonical(p))
}

pub(crate) fn set_recverr(fd: RawFd, v6: bool) -> io::Result<()> {
    let (level, name) = if v6 {
        (libc::SOL_IPV6, libc::IPV6_RECVERR)
    } else {
        (libc::SOL_IP, libc::IP_RECVERR)
    };
    crate::sys::set_int_option(fd, level, name, 1)
}

/// Drain the socket's error queue; return the first ICMP entry. Bounded: a SYN_SENT socket
/// collects at most a handful of entries.
pub(crate) fn read_error_queue(fd: RawFd) -> Option<Icmp> {
    crate::sys::error_queue(fd, 8)
        .iter()
        .find_map(|(level, kind, bytes)| parse_recverr(*level, *kind, bytes))
}

const SOCK_EXTENDED_ERR_LEN: usize = 16;

/// Parse one `IP_RECVERR` / `IPV6_RECVERR` control message: a `sock_extended_err` followed by
/// the offender's `sockaddr`. Pure, so it is tested on captured bytes.
pub(crate) fn parse_recverr(level: i32, kind: i32, bytes: &[u8]) -> Option<Icmp> {
    let ours = (level == libc::SOL_IP && kind == libc::IP_RECVERR)
        || (level == libc::SOL_IPV6 && kind == libc::IPV6_RECVERR);
    if !ours || bytes.len() < SOCK_EXTENDED_ERR_LEN {
        return None;
    }
    let origin = bytes[4];
    let v6 = match origin {
        libc::SO_EE_ORIGIN_ICMP => false,
        libc::SO_EE_ORIGIN_ICMP6 => true,
        // Local errors (e.g. EMSGSIZE) are not news from the network.
        _ => return None,
    };
    Some(Icmp {
        v6,
        kind: bytes[5],
        code: bytes[6],
        from: parse_sockaddr(&bytes[SOCK_EXTENDED_ERR_LEN..]),
    })
}

/// A `sockaddr_in` / `sockaddr_in6` in host layout; `None` for AF_UNSPEC or short input.
fn parse_sockaddr(b: &[u8]) -> Option<IpAddr> {
    let family = i32::from(u16::from_ne_bytes(b.get(0..2)?.try_into().ok()?));
    match family {
        libc::AF_INET => {
            let o: [u8; 4] = b.get(4..8)?.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(o)))
        }
        libc::AF_INET6 => {
            let o: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            let ip = Ipv6Addr::from(o);
            Some(ip.to_ipv4_mapped().map_or(IpAddr::V6(ip), IpAddr::V4))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ee(origin: u8, kind: u8, code: u8) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(libc::EHOSTUNREACH as u32).to_ne_bytes());
        b.extend_from_slice(&[origin, kind, code, 0]);
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b
    }

    #[test]
    fn parses_an_icmp_admin_prohibited_from_a_router() {
        let mut b = ee(libc::SO_EE_ORIGIN_ICMP, 3, 13);
        b.extend_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        b.extend_from_slice(&0u16.to_be_bytes());
        b.extend_from_slice(&[198, 18, 1, 1]);
        b.extend_from_slice(&[0; 8]);
        let icmp = parse_recverr(libc::SOL_IP, libc::IP_RECVERR, &b).unwrap();
        assert_eq!(
            icmp,
            Icmp {
                v6: false,
                kind: 3,
                code: 13,
                from: Some("198.18.1.1".parse().unwrap())
            }
        );
    }

    #[test]
    fn parses_icmpv6_with_offender() {
        let mut b = ee(libc::SO_EE_ORIGIN_ICMP6, 1, 4);
        b.extend_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        b.extend_from_slice(&[0; 6]); // port + flowinfo
        b.extend_from_slice(&"fd00::1".parse::<Ipv6Addr>().unwrap().octets());
        b.extend_from_slice(&[0; 4]); // scope id
        let icmp = parse_recverr(libc::SOL_IPV6, libc::IPV6_RECVERR, &b).unwrap();
        assert_eq!((icmp.v6, icmp.kind, icmp.code), (true, 1, 4));
        assert_eq!(icmp.from, Some("fd00::1".parse().unwrap()));
    }

    #[test]
    fn ignores_local_errors_other_cmsgs_and_short_input() {
        assert_eq!(
            parse_recverr(libc::SOL_IP, libc::IP_RECVERR, &ee(1, 0, 0)),
            None
        );
        assert_eq!(parse_recverr(libc::SOL_SOCKET, 1, &ee(2, 3, 3)), None);
        assert_eq!(parse_recverr(libc::SOL_IP, libc::IP_RECVERR, &[2, 3]), None);
        // No offender address: still an ICMP, sender unknown.
        let icmp = parse_recverr(libc::SOL_IP, libc::IP_RECVERR, &ee(2, 3, 3)).unwrap();
        assert_eq!(icmp.from, None);
    }

    #[test]
    fn a_peer_that_is_the_socket_itself_is_a_self_connect() {
        let a = |s: &str| Some(s.parse::<SocketAddr>().unwrap());
        assert!(is_self_connect(a("127.0.0.1:40000"), a("127.0.0.1:40000")));
        assert!(is_self_connect(
            a("[::ffff:127.0.0.1]:40000"),
            a("127.0.0.1:40000")
        ));
        assert!(!is_self_connect(a("127.0.0.1:40001"), a("127.0.0.1:40000")));
        assert!(!is_self_connect(a("127.0.0.2:40000"), a("127.0.0.1:40000")));
        assert!(!is_self_connect(None, a("127.0.0.1:40000")));
    }

    #[tokio::test]
    async fn loopback_open_and_closed() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = l.local_addr().unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        let f = KernelConnector.probe(ProbeSpec::to(open), deadline).await;
        assert_eq!(f.result, ConnectResult::Connected);
        assert_eq!(f.local.map(|a| a.ip()), Some(open.ip()));
        // A bound socket that does not listen holds its port (no SO_REUSEADDR, so no other
        // test can take it) and answers with a reset.
        let held = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        held.bind(&SockAddr::from(SocketAddr::from(([127, 0, 0, 1], 0))))
            .unwrap();
        let closed = held.local_addr().unwrap().as_socket().unwrap();
        let f = KernelConnector.probe(ProbeSpec::to(closed), deadline).await;
        assert_eq!(
            f.result,
            ConnectResult::Failed {
                errno: libc::ECONNREFUSED
            }
        );
        assert_eq!(f.icmp, None, "a TCP reset queues no ICMP");
    }

    /// A listener on loopback, and a probe of it that keeps its socket.
    async fn kept_probe(deadline: Instant) -> (std::net::TcpListener, ProbeFact) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let spec = ProbeSpec {
            keep: true,
            ..ProbeSpec::to(l.local_addr().unwrap())
        };
        let f = KernelConnector.probe(spec, deadline).await;
        (l, f)
    }

    #[tokio::test]
    async fn a_kept_probe_socket_goes_only_to_its_own_checks_session() {
        let deadline = Instant::now() + Duration::from_secs(2);
        let (_l, mine) = kept_probe(deadline).await;
        // Another check of the same address in the same process (the exporter's tcp
        // prober, another target of a run) gets a connection of its own.
        let other = KernelConnector
            .stream(mine.spec.address, deadline)
            .await
            .unwrap();
        assert_ne!(other.local_addr().ok(), mine.local);
        let s = KernelConnector
            .session_stream(&mine, deadline)
            .await
            .unwrap();
        assert_eq!(s.local_addr().ok(), mine.local);
    }

    #[tokio::test]
    async fn a_kept_probe_socket_is_the_sessions_stream() {
        let deadline = Instant::now() + Duration::from_secs(2);
        let (l, f) = kept_probe(deadline).await;
        assert_eq!(f.result, ConnectResult::Connected);
        let s = KernelConnector.session_stream(&f, deadline).await.unwrap();
        // The same connection: the server accepted one, from the probe's source port.
        assert_eq!(s.local_addr().ok(), f.local);
        let (_, peer) = l.accept().unwrap();
        assert_eq!(Some(peer), f.local);
        l.set_nonblocking(true).unwrap();
        assert!(l.accept().is_err(), "no second connection");
        // Taken once: the next stream is a new connection.
        let again = KernelConnector.session_stream(&f, deadline).await.unwrap();
        assert_ne!(again.local_addr().ok(), f.local);
    }
}
