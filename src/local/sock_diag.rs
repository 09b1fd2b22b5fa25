//! Listening TCP sockets through netlink `sock_diag` (what `ss` uses).
//!
//! `/proc/net/tcp` makes the kernel walk its whole connection hash table, which on a machine
//! with much memory costs milliseconds per read even when it holds four sockets. A
//! `sock_diag` dump asked for the LISTEN state only walks the listening table. [`read`] does
//! the netlink exchange; [`parse`] reads the reply bytes and is tested on fixtures.
//! The caller falls back to [`super::proc_net`] when netlink is not available.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::netlink::{self, NLMSG_HDR};
use super::proc_net::{LISTEN, SocketEntry};

const NETLINK_SOCK_DIAG: i32 = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const INET_DIAG_MSG: usize = 72;

/// Every listening TCP socket, IPv4 and IPv6.
pub(crate) fn read() -> io::Result<Vec<SocketEntry>> {
    let mut out = Vec::new();
    let mut buf = Vec::with_capacity(DUMP_BUFFER);
    for family in [libc::AF_INET, libc::AF_INET6] {
        dump(family as u8, &mut buf, &mut out)?;
    }
    Ok(out)
}

/// Every UDP socket bound to a port, IPv4 and IPv6 (a UDP socket has no LISTEN state: a
/// program that receives on a port holds a socket bound to it, connected or not). For these,
/// `queued` is the bytes waiting in the socket's receive queue, unread by its program, and
/// `backlog` is `None`.
pub(crate) fn read_udp() -> io::Result<Vec<SocketEntry>> {
    let mut out = Vec::new();
    let mut buf = Vec::with_capacity(DUMP_BUFFER);
    for family in [libc::AF_INET, libc::AF_INET6] {
        let nl = crate::sys::Netlink::open(NETLINK_SOCK_DIAG)?;
        nl.send_to_kernel(&request(family as u8, libc::IPPROTO_UDP, u32::MAX))?;
        loop {
            let n = nl.recv_into(&mut buf)?;
            match parse(&buf, &mut out)? {
                Done::Yes => break,
                Done::No if n == 0 => break,
                Done::No => {}
            }
        }
    }
    for e in &mut out {
        e.backlog = None;
    }
    Ok(out)
}

/// Room for one datagram of a dump: the kernel makes a dump's datagrams at most 32 KiB
/// (`netlink_recvmsg` caps the size it learns from the reader's buffer there).
pub(crate) const DUMP_BUFFER: usize = 32 * 1024;

fn dump(family: u8, buf: &mut Vec<u8>, out: &mut Vec<SocketEntry>) -> io::Result<()> {
    let nl = crate::sys::Netlink::open(NETLINK_SOCK_DIAG)?;
    nl.send_to_kernel(&request(family, libc::IPPROTO_TCP, 1 << LISTEN))?;
    loop {
        let n = nl.recv_into(buf)?;
        match parse(buf, out)? {
            Done::Yes => return Ok(()),
            Done::No if n == 0 => return Ok(()),
            Done::No => {}
        }
    }
}

/// Has the program behind a listener on this machine accepted the connection `client` →
/// `server`? Asks the kernel for the server's side of that one connection: a connection the
/// kernel completed waits in the listener's accept queue without a socket file (inode 0)
/// until the program calls `accept()`. `Some(true)`: accepted; `Some(false)`: still queued;
/// `None`: not found (not on this machine, or gone).
pub(crate) fn accepted(server: SocketAddr, client: SocketAddr) -> io::Result<Option<bool>> {
    Ok(server_side(server, client)?.map(|e| e.inode != 0))
}

/// Does a program still hold the server's side of `client` → `server` open: established, with
/// a socket file? A program that closed it leaves an orphan (inode 0) in FIN_WAIT or CLOSE,
/// one that reset it leaves nothing; either is `false`.
pub(crate) fn held_open(server: SocketAddr, client: SocketAddr) -> io::Result<bool> {
    Ok(server_side(server, client)?.is_some_and(|e| e.state == ESTABLISHED && e.inode != 0))
}

/// The listener that takes connections to `server` on this machine, with its accept queue
/// (`queued`, `backlog`) as it is now: one lookup, no dump. The kernel answers a lookup of a
/// connection that does not exist (remote port 0) with the listener that would take it.
pub(crate) fn listener_at(server: SocketAddr) -> io::Result<Option<SocketEntry>> {
    Ok(listener_with_drops(server)?.map(|(e, _)| e))
}

/// [`listener_at`], with the listener's own count of dropped packets (`sk_drops`, from
/// `INET_DIAG_SKMEMINFO`): the kernel raises it for every SYN the listener drops (a full
/// accept queue among the causes: `tcp_listendrop`), unlike the namespace's `ListenOverflows`,
/// which every other listener raises too. `None` when the kernel did not give it.
pub(crate) fn listener_with_drops(
    server: SocketAddr,
) -> io::Result<Option<(SocketEntry, Option<u32>)>> {
    let unspecified = match server.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let nl = crate::sys::Netlink::open(NETLINK_SOCK_DIAG)?;
    let mut req = one_request(server, SocketAddr::new(unspecified, 0));
    req[NLMSG_HDR + 2] = SKMEMINFO_EXT;
    nl.send_to_kernel(&req)?;
    let mut buf = Vec::with_capacity(4096);
    nl.recv_into(&mut buf)?;
    match parse_with_drops(&buf) {
        Ok(found) => Ok(found.filter(|(e, _)| e.state == LISTEN)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `idiag_ext`'s bit asking for `INET_DIAG_SKMEMINFO` (attribute 4: bit 4 − 1).
const SKMEMINFO_EXT: u8 = 1 << (INET_DIAG_SKMEMINFO - 1);
const INET_DIAG_SKMEMINFO: u16 = 4;
/// `SK_MEMINFO_DROPS`: the index of `sk_drops` in the `INET_DIAG_SKMEMINFO` array of u32.
const SK_MEMINFO_DROPS: usize = 8;

/// The first socket of a reply, with its `sk_drops` when the reply carries
/// `INET_DIAG_SKMEMINFO`.
fn parse_with_drops(b: &[u8]) -> io::Result<Option<(SocketEntry, Option<u32>)>> {
    let mut found = None;
    netlink::messages(b, |kind, body| {
        if found.is_none()
            && kind == SOCK_DIAG_BY_FAMILY
            && body.len() >= INET_DIAG_MSG
            && let Some(e) = parse_msg(body)
        {
            found = Some((e, drops(&body[INET_DIAG_MSG..])));
        }
    })?;
    Ok(found)
}

/// `sk_drops` from the attributes after an `inet_diag_msg` (rtattrs: u16 length, u16 type,
/// the value, padded to 4 bytes).
fn drops(mut attrs: &[u8]) -> Option<u32> {
    while attrs.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]);
        let value = attrs.get(4..len)?;
        if kind == INET_DIAG_SKMEMINFO {
            let at = SK_MEMINFO_DROPS * 4;
            return value
                .get(at..at + 4)
                .map(|d| u32::from_ne_bytes(d.try_into().expect("4 bytes")));
        }
        attrs = attrs.get((len.max(4) + 3) & !3..).unwrap_or(&[]);
    }
    None
}

/// TCP_ESTABLISHED.
const ESTABLISHED: u8 = 1;

/// The server's side of the connection `client` → `server` on this machine, as the kernel
/// shows it (`None`: no such connection).
fn server_side(server: SocketAddr, client: SocketAddr) -> io::Result<Option<SocketEntry>> {
    let nl = crate::sys::Netlink::open(NETLINK_SOCK_DIAG)?;
    // (A v4 client of a dual-stack listener is found by this AF_INET lookup too.)
    nl.send_to_kernel(&one_request(server, client))?;
    let mut buf = Vec::with_capacity(4096);
    nl.recv_into(&mut buf)?;
    let mut out = Vec::new();
    match parse(&buf, &mut out) {
        // With no connection of these addresses the kernel answers with the *listener* on
        // the port (a redirect or DNAT on this machine makes the addresses differ): that says
        // nothing about this connection.
        Ok(_) => Ok(out.into_iter().next().filter(|e| e.state != LISTEN)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// An `inet_diag_req_v2` request for the one TCP socket bound to `local` and connected to
/// `remote` (no dump: the kernel looks it up by its addresses).
fn one_request(local: SocketAddr, remote: SocketAddr) -> Vec<u8> {
    let family = if local.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    } as u8;
    let mut b = netlink::header(
        NLMSG_HDR + 56,
        SOCK_DIAG_BY_FAMILY,
        libc::NLM_F_REQUEST as u16,
    );
    b.extend_from_slice(&[family, libc::IPPROTO_TCP as u8, 0, 0]);
    b.extend_from_slice(&u32::MAX.to_ne_bytes()); // idiag_states: any
    b.extend_from_slice(&local.port().to_be_bytes());
    b.extend_from_slice(&remote.port().to_be_bytes());
    let addr = |ip: IpAddr| -> [u8; 16] {
        let mut a = [0u8; 16];
        match ip {
            IpAddr::V4(v4) => a[..4].copy_from_slice(&v4.octets()),
            IpAddr::V6(v6) => a = v6.octets(),
        }
        a
    };
    b.extend_from_slice(&addr(local.ip()));
    b.extend_from_slice(&addr(remote.ip()));
    b.extend_from_slice(&0u32.to_ne_bytes()); // interface: any
    b.extend_from_slice(&[0xff; 8]); // cookie: INET_DIAG_NOCOOKIE
    b
}

/// An `inet_diag_req_v2` dump request for the `protocol` sockets of `family` in `states` (a
/// bit per TCP state; `u32::MAX`: any).
fn request(family: u8, protocol: i32, states: u32) -> Vec<u8> {
    let mut b = netlink::header(
        NLMSG_HDR + 56,
        SOCK_DIAG_BY_FAMILY,
        (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16,
    );
    b.extend_from_slice(&[family, protocol as u8, 0, 0]);
    b.extend_from_slice(&states.to_ne_bytes()); // idiag_states
    b.extend_from_slice(&[0u8; 48]); // inet_diag_sockid: any
    b
}

/// Whether the dump is complete.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Done {
    Yes,
    No,
}

/// Parse one datagram of the dump reply, appending sockets to `out`.
pub fn parse(b: &[u8], out: &mut Vec<SocketEntry>) -> io::Result<Done> {
    let end = netlink::messages(b, |kind, body| {
        if kind == SOCK_DIAG_BY_FAMILY
            && body.len() >= INET_DIAG_MSG
            && let Some(e) = parse_msg(body)
        {
            out.push(e);
        }
    })?;
    Ok(if end { Done::Yes } else { Done::No })
}

/// One `inet_diag_msg`.
fn parse_msg(m: &[u8]) -> Option<SocketEntry> {
    let family = i32::from(m[0]);
    let state = m[1];
    let port = u16::from_be_bytes([m[4], m[5]]);
    let src = &m[8..24];
    let ip = match family {
        libc::AF_INET => IpAddr::V4(Ipv4Addr::new(src[0], src[1], src[2], src[3])),
        libc::AF_INET6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(src).ok()?)),
        _ => return None,
    };
    let u32_at = |o: usize| u32::from_ne_bytes(m[o..o + 4].try_into().expect("4 bytes"));
    Some(SocketEntry {
        local: SocketAddr::new(ip, port),
        state,
        uid: u32_at(64),
        inode: u64::from(u32_at(68)),
        // For a listener: the accept queue's length and its limit (what `ss -ltn` shows as
        // Recv-Q and Send-Q).
        queued: u32_at(56),
        backlog: Some(u32_at(60)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(family: u8, port: u16, src: &[u8], uid: u32, inode: u32) -> Vec<u8> {
        let mut m = vec![family, LISTEN, 0, 0];
        m.extend_from_slice(&port.to_be_bytes());
        m.extend_from_slice(&[0, 0]);
        let mut s = [0u8; 16];
        s[..src.len()].copy_from_slice(src);
        m.extend_from_slice(&s);
        m.extend_from_slice(&[0u8; 16 + 4 + 8]); // dst, if, cookie
        m.extend_from_slice(&[0u8; 12]); // expires, rqueue, wqueue
        m.extend_from_slice(&uid.to_ne_bytes());
        m.extend_from_slice(&inode.to_ne_bytes());
        let mut h = ((NLMSG_HDR + m.len()) as u32).to_ne_bytes().to_vec();
        h.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        h.extend_from_slice(&[0u8; 10]);
        h.extend_from_slice(&m);
        h
    }

    #[test]
    fn parses_listeners_of_both_families_and_the_end() {
        let mut bytes = msg(libc::AF_INET as u8, 5432, &[127, 0, 0, 1], 105, 23456);
        let v6: Ipv6Addr = "fd00:2::2".parse().unwrap();
        bytes.extend(msg(libc::AF_INET6 as u8, 443, &v6.octets(), 0, 7));
        let mut out = Vec::new();
        assert_eq!(parse(&bytes, &mut out).unwrap(), Done::No);
        assert_eq!(out[0].local, "127.0.0.1:5432".parse().unwrap());
        assert_eq!(
            (out[0].uid, out[0].inode, out[0].state),
            (105, 23456, LISTEN)
        );
        assert_eq!(out[1].local, "[fd00:2::2]:443".parse().unwrap());
        let mut done = 20u32.to_ne_bytes().to_vec();
        done.extend_from_slice(&netlink::NLMSG_DONE.to_ne_bytes());
        done.extend_from_slice(&[0u8; 14]);
        assert_eq!(parse(&done, &mut out).unwrap(), Done::Yes);
    }

    /// A listener's reply with `INET_DIAG_SKMEMINFO` (9 u32: rmem_alloc … drops, 42 here)
    /// after an attribute of another kind; a reply without it has no count; a short
    /// attribute is no count and no panic.
    #[test]
    fn a_listeners_own_drop_count_is_read_from_its_memory_attribute() {
        let with = |attrs: &[u8]| {
            let mut b = msg(libc::AF_INET as u8, 5432, &[127, 0, 0, 1], 0, 9);
            b.extend_from_slice(attrs);
            let len = (b.len() as u32).to_ne_bytes();
            b[..4].copy_from_slice(&len);
            parse_with_drops(&b).unwrap().unwrap()
        };
        let mut attrs = vec![5, 0, 1, 0, 7, 0, 0, 0]; // a 1-byte attribute of kind 1, padded
        attrs.extend_from_slice(&(4u16 + 36).to_ne_bytes());
        attrs.extend_from_slice(&INET_DIAG_SKMEMINFO.to_ne_bytes());
        for v in [0u32, 1, 2, 3, 4, 5, 6, 7, 42] {
            attrs.extend_from_slice(&v.to_ne_bytes());
        }
        let (e, drops) = with(&attrs);
        assert_eq!((e.local.port(), drops), (5432, Some(42)));
        assert_eq!(with(&[]).1, None);
        assert_eq!(with(&[12, 0, 4, 0, 1, 0, 0, 0]).1, None);
    }

    #[test]
    fn truncated_or_error_replies_are_errors_not_panics() {
        let mut out = Vec::new();
        assert!(
            parse(
                &[40, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                &mut out
            )
            .is_err()
        );
        let mut err = 20u32.to_ne_bytes().to_vec();
        err.extend_from_slice(&netlink::NLMSG_ERROR.to_ne_bytes());
        err.extend_from_slice(&[0u8; 10]);
        err.extend_from_slice(&(-libc::EPERM).to_ne_bytes());
        assert_eq!(
            parse(&err, &mut out).unwrap_err().raw_os_error(),
            Some(libc::EPERM)
        );
    }

    #[test]
    fn agrees_with_proc_net_tcp_on_this_machine() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let netlink = read().unwrap();
        let found = netlink
            .iter()
            .find(|e| e.local == addr)
            .expect("own listener");
        let procfs = super::super::proc_net::read();
        let same = procfs.iter().find(|e| e.local == addr).unwrap();
        assert_eq!((found.uid, found.inode), (same.uid, same.inode));
    }

    /// `listen(0)` holds one connection; once it waits unaccepted, the queue is full
    /// (queued > backlog) and the kernel drops the next SYN.
    #[test]
    fn a_connection_is_seen_queued_then_accepted_and_a_listener_is_not_a_connection() {
        use std::net::{TcpListener, TcpStream};
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = l.local_addr().unwrap();
        let c = TcpStream::connect(server).unwrap();
        let client = c.local_addr().unwrap();
        assert_eq!(accepted(server, client).unwrap(), Some(false));
        let (_s, _) = l.accept().unwrap();
        assert_eq!(accepted(server, client).unwrap(), Some(true));
        // No connection from this port: the kernel's answer would be the listener.
        let nobody = SocketAddr::new(client.ip(), 1);
        assert_eq!(accepted(server, nobody).unwrap(), None);
    }

    #[test]
    fn the_listener_of_an_address_is_found_with_its_queue() {
        use socket2::{Domain, SockAddr, Socket, Type};
        use std::net::TcpStream;
        let l = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        l.bind(&SockAddr::from(SocketAddr::from(([127, 0, 0, 1], 0))))
            .unwrap();
        l.listen(7).unwrap();
        let server = l.local_addr().unwrap().as_socket().unwrap();
        let _waiting = [
            TcpStream::connect(server).unwrap(),
            TcpStream::connect(server).unwrap(),
        ];
        let e = listener_at(server).unwrap().expect("the listener");
        assert_eq!((e.local, e.state, e.queued), (server, LISTEN, 2));
        assert_eq!(e.backlog, Some(7));
        // A port nothing listens on.
        drop(l);
        assert!(listener_at(server).unwrap().is_none());
    }

    #[test]
    fn sees_a_full_accept_queue() {
        use socket2::{Domain, SockAddr, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.bind(&SockAddr::from(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            0,
        ))))
        .unwrap();
        s.listen(0).unwrap();
        let addr = s.local_addr().unwrap().as_socket().unwrap();
        let _waiting = std::net::TcpStream::connect(addr).unwrap();
        let mine = read()
            .unwrap()
            .into_iter()
            .find(|e| e.local == addr)
            .unwrap();
        assert_eq!((mine.queued, mine.backlog), (1, Some(0)));
        let procfs = super::super::proc_net::read();
        assert_eq!(procfs.iter().find(|e| e.local == addr).unwrap().queued, 1);
    }
}
