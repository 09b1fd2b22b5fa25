//! The UDP probe: the port's usual service's harmless request on a connected UDP socket, sent
//! again as UDP clients do, and what came back — a reply, an ICMP error, or nothing.
//!
//! No root: an ordinary connected UDP socket with `IP_RECVERR` / `IPV6_RECVERR` set. The
//! kernel then hands every ICMP error about the datagram to the socket (a port-unreachable
//! as `ECONNREFUSED`, host and network unreachable too, which without the option it keeps to
//! itself), and queues it with the address of the device that sent it
//! (`/work/shared/notes/above-tcp-and-fleets.md`, "UDP"). A connected socket receives only
//! datagrams from the address and port it sent to, so a reply is the port's own.
//!
//! When the port stays silent, a *control* datagram goes to a port of the same host that
//! surely has no program ([`UDP_CONTROL_PORT`]): whether that one comes back as a
//! port-unreachable tells whether the host answers closed ports at all. Facts only
//! ([`UdpExchange`]); the diagnosis says what they mean.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Protocol, SockAddr, Type};
use tokio::time::Instant;

use crate::facts::{UDP_CONTROL_PORT, UdpExchange};
use crate::probe::{Attempt, ConnectResult, ProbeFact, ProbeSpec, failed, probe_socket};
use crate::session::protocols::udp_payloads::{self, Nonce, UdpReply, UdpRequest};

/// The first retransmission comes this long after the first datagram; each later one after
/// twice the wait before it (1 s, 3 s, 7 s …, as `dig` and most stub resolvers retry).
pub(crate) const FIRST_RETRY: Duration = Duration::from_secs(1);

/// How long the port is silent before the control datagram goes out: any service on a
/// reachable host has answered by then, and a check that got its answer sends no control.
pub(crate) const CONTROL_AFTER: Duration = Duration::from_millis(200);

/// The most of a reply read (the largest UDP datagram).
const REPLY_MAX: usize = 65_536;

/// What to send to `port`: `--payload`'s bytes, else the port's usual service's request,
/// else an empty datagram (where any reply counts).
pub(crate) fn request_for(
    port: u16,
    service: Option<&'static udp_payloads::Entry>,
    payload: Option<&[u8]>,
) -> (UdpRequest, Option<udp_payloads::Silence>) {
    if let Some(p) = payload {
        return (udp_payloads::custom(p.to_vec()), None);
    }
    // `--protocol dns` on any port; else the port's usual service.
    let entry = service.or_else(|| udp_payloads::for_port(port));
    // The report names the port's usual service when it says silence is that service's way:
    // kept only when that is the service asked for (`--protocol wireguard` on port 53 is not
    // DNS keeping quiet).
    let ports_own = udp_payloads::for_port(port);
    let known_silence = entry
        .filter(|e| ports_own.is_some_and(|p| p.name == e.name))
        .and_then(|e| e.silence);
    let request = entry
        .and_then(|e| udp_payloads::request(e.service, &nonce()))
        .unwrap_or_else(|| udp_payloads::custom(Vec::new()));
    (request, known_silence)
}

/// Random ids for the request, so that a stale or forged datagram is not taken for its
/// answer (the ids are only compared, never secret: a zero nonce if the system has none).
fn nonce() -> Nonce {
    use ring::rand::SecureRandom;
    let mut n = [0u8; 16];
    let _ = ring::rand::SystemRandom::new().fill(&mut n);
    Nonce(n)
}

/// Send `request` to `address` until it is answered or `deadline`; the control datagram
/// when the port is silent for [`CONTROL_AFTER`]. Returns the exchange as the kernel reported
/// it ([`ProbeFact`]) and its UDP facts.
pub(crate) async fn exchange(
    address: SocketAddr,
    request: &UdpRequest,
    known_silence: Option<udp_payloads::Silence>,
    deadline: Instant,
) -> (ProbeFact, UdpExchange) {
    let control_at = Instant::now() + CONTROL_AFTER;
    let main = talk(address, request, deadline);
    tokio::pin!(main);
    let mut control = None;
    let (probe, talked) = tokio::select! {
        p = &mut main => p,
        _ = tokio::time::sleep_until(control_at), if control_at < deadline => {
            // Silent so far: the control goes out beside the retries, and both end by the
            // deadline (the control is not waited for once the port has answered).
            let empty = udp_payloads::custom(Vec::new());
            let to = SocketAddr::new(address.ip(), control_port(address.port()));
            let c = talk(to, &empty, deadline);
            tokio::pin!(c);
            let mut control_done = None;
            let p = loop {
                tokio::select! {
                    p = &mut main => break p,
                    c = &mut c, if control_done.is_none() => control_done = Some(c.0),
                }
            };
            if p.0.result != ConnectResult::Connected {
                control = Some(match control_done {
                    Some(c) => c,
                    None => c.await.0,
                });
            }
            p
        }
    };
    let facts = UdpExchange {
        service: request.service,
        known_silence,
        payload_len: request.payload.len(),
        sent: talked.sent,
        reply: talked.reply,
        control,
    };
    (probe, facts)
}

/// The control's port: [`UDP_CONTROL_PORT`], or the one below it when that is the port
/// checked.
pub(crate) fn control_port(checked: u16) -> u16 {
    if checked == UDP_CONTROL_PORT {
        UDP_CONTROL_PORT - 1
    } else {
        UDP_CONTROL_PORT
    }
}

/// What one socket's exchange sent and got.
#[derive(Default)]
struct Talked {
    sent: u32,
    reply: Option<UdpReply>,
}

/// One socket's exchange: the datagram, its retransmissions, the first reply or error.
async fn talk(address: SocketAddr, request: &UdpRequest, deadline: Instant) -> (ProbeFact, Talked) {
    let start = Instant::now();
    let mut talked = Talked::default();
    let spec = ProbeSpec::to(address);
    let r = attempt(spec, request, deadline, &mut talked).await;
    (ProbeFact::of_attempt(spec, start, r), talked)
}

/// A probe's UDP socket, connected to its one peer.
struct Connected {
    udp: tokio::net::UdpSocket,
    /// This side's address, as the kernel chose it.
    local: Option<SocketAddr>,
}

impl Connected {
    /// A UDP socket for `spec`, connected; the connect's own failure as the attempt's outcome.
    fn open(spec: ProbeSpec) -> io::Result<Result<Connected, Attempt>> {
        let socket = probe_socket(spec, Type::DGRAM, Protocol::UDP)?;
        // A connect of a UDP socket sends nothing: it picks the route and the source address,
        // and makes the kernel pass on only this peer's datagrams and errors.
        if let Err(e) = socket.connect(&SockAddr::from(spec.address)) {
            return Ok(Err((failed(&e), None, None)));
        }
        let local = socket.local_addr().ok().and_then(|a| a.as_socket());
        let udp = tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(socket))?;
        Ok(Ok(Connected { udp, local }))
    }

    /// A send or receive failed with `e`: the ICMP error behind it, if one is queued.
    fn failed(&self, e: &io::Error) -> Attempt {
        (failed(e), self.queued_icmp(), self.local)
    }

    /// Nothing came by the deadline; an ICMP that arrived just now is still read.
    fn silent(&self) -> Attempt {
        (ConnectResult::TimedOut, self.queued_icmp(), self.local)
    }

    fn queued_icmp(&self) -> Option<crate::icmp::Icmp> {
        crate::probe::read_error_queue(self.udp.as_raw_fd())
    }
}

async fn attempt(
    spec: ProbeSpec,
    request: &UdpRequest,
    deadline: Instant,
    facts: &mut Talked,
) -> io::Result<Attempt> {
    let c = match Connected::open(spec)? {
        Ok(c) => c,
        Err(refused) => return Ok(refused),
    };
    let mut buf = vec![0u8; REPLY_MAX];
    let mut next_send = Instant::now();
    let mut wait = FIRST_RETRY;
    loop {
        if Instant::now() >= next_send {
            if let Err(e) = c.udp.send(&request.payload).await {
                return Ok(c.failed(&e));
            }
            facts.sent += 1;
            next_send += wait;
            wait *= 2;
        }
        tokio::select! {
            r = c.udp.recv(&mut buf) => match r {
                Ok(n) => {
                    facts.reply = Some(request.recognise(&buf[..n]));
                    return Ok((ConnectResult::Connected, None, c.local));
                }
                // ICMP fragmentation-needed (packet-too-big) says the path's MTU is smaller
                // than the datagram: the kernel has learnt it, and the next retransmission goes
                // out fragmented to fit, as a client's would. Not an answer: keep waiting.
                Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => {}
                Err(e) => return Ok(c.failed(&e)),
            },
            _ = tokio::time::sleep_until(next_send.min(deadline)) => {
                if Instant::now() >= deadline {
                    return Ok(c.silent());
                }
            }
        }
    }
}

/// Datagrams with a TTL (IPv6: hop limit), for the path walk (`trace::walk`): hop N answers
/// the request sent with TTL N with ICMP time-exceeded, which arrives in the socket's error
/// queue with the hop's address, as for the TCP walk's SYNs. The request is the check's own,
/// so that a firewall that stops the port stops the walk's datagrams at the same place.
pub(crate) struct UdpWalker {
    pub payload: Vec<u8>,
}

impl crate::probe::Connector for UdpWalker {
    async fn probe(&self, spec: ProbeSpec, deadline: Instant) -> ProbeFact {
        let start = Instant::now();
        let r = one_datagram(spec, &self.payload, deadline).await;
        ProbeFact::of_attempt(spec, start, r)
    }

    /// A walk opens no stream.
    async fn stream(
        &self,
        _address: SocketAddr,
        _deadline: Instant,
    ) -> io::Result<tokio::net::TcpStream> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// One datagram with `spec`'s TTL, and the first reply or error before `deadline`.
async fn one_datagram(spec: ProbeSpec, payload: &[u8], deadline: Instant) -> io::Result<Attempt> {
    let c = match Connected::open(spec)? {
        Ok(c) => c,
        Err(refused) => return Ok(refused),
    };
    if let Err(e) = c.udp.send(payload).await {
        return Ok(c.failed(&e));
    }
    let mut buf = [0u8; 512];
    match tokio::time::timeout_at(deadline, c.udp.recv(&mut buf)).await {
        Ok(Ok(_)) => Ok((ConnectResult::Connected, None, c.local)),
        Ok(Err(e)) => Ok(c.failed(&e)),
        Err(_) => Ok(c.silent()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::protocols::udp_payloads::{Silence, UdpService};

    #[test]
    fn the_request_is_the_ports_service_else_the_payload_else_an_empty_datagram() {
        let (r, s) = request_for(53, None, None);
        assert_eq!(r.service, Some(UdpService::Dns));
        assert_eq!(s, None);
        let (r, _) = request_for(123, None, None);
        assert_eq!(
            (r.service, r.payload.len(), r.payload[0]),
            (Some(UdpService::Ntp), 48, 0xE3)
        );
        // A payload wins over the port's service.
        let (r, _) = request_for(53, None, Some(&[1, 2]));
        assert_eq!((r.service, r.payload.as_slice()), (None, &[1u8, 2][..]));
        // syslog answers nothing: an empty datagram, and the silence is known.
        let (r, s) = request_for(514, None, None);
        assert_eq!((r.service, r.payload.len()), (None, 0));
        assert_eq!(s, Some(Silence::NeverAnswers));
        let (r, s) = request_for(40_000, None, None);
        assert_eq!((r.service, r.payload.len(), s), (None, 0, None));
        // `--protocol dns` on a port with no usual service, or another's.
        let dns = udp_payloads::by_name("dns");
        let (r, s) = request_for(5300, dns, None);
        assert_eq!((r.service, s), (Some(UdpService::Dns), None));
        let (r, _) = request_for(123, dns, None);
        assert_eq!(r.service, Some(UdpService::Dns));
        // `--protocol wireguard` on port 53: no word that DNS keeps quiet (the report would
        // name the port's service); on WireGuard's own port, its silence is known.
        let wg = udp_payloads::by_name("wireguard");
        assert_eq!(request_for(53, wg, None).1, None);
        assert_eq!(
            request_for(51820, wg, None).1,
            Some(Silence::OnlyKnownPeers)
        );
    }

    #[test]
    fn two_requests_carry_different_ids() {
        // NTP's transmit time carries 8 random bytes (a DNS id only 2: equal once in 65,536).
        let a = request_for(123, None, None).0.payload;
        let b = request_for(123, None, None).0.payload;
        assert_ne!(a[40..48], b[40..48]);
    }

    #[test]
    fn the_control_port_is_never_the_port_checked() {
        assert_eq!(control_port(53), UDP_CONTROL_PORT);
        assert_eq!(control_port(UDP_CONTROL_PORT), UDP_CONTROL_PORT - 1);
    }
}
