//! This machine's interface addresses, from one netlink `RTM_GETADDR` dump.
//!
//! `getifaddrs` dumps the links as well (`RTM_GETLINK`: every interface's statistics), which
//! is half its cost and nothing canreach uses; it is the fallback where the dump fails.
//! [`read`] does the exchange; [`parse`] reads the reply bytes and is tested on built messages.

use std::io;
use std::net::IpAddr;

use super::netlink::{self, NLMSG_HDR};

const NETLINK_ROUTE: i32 = 0;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
/// `struct ifaddrmsg`: family, prefix length, flags, scope, interface index.
const IFADDRMSG: usize = 8;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;

/// Every address of every interface, each once (the netlink dump, else `getifaddrs`).
pub(crate) fn read() -> Vec<IpAddr> {
    dump().unwrap_or_else(|_| crate::sys::interface_addresses())
}

fn dump() -> io::Result<Vec<IpAddr>> {
    let nl = crate::sys::Netlink::open(NETLINK_ROUTE)?;
    let mut req = netlink::header(
        NLMSG_HDR + IFADDRMSG,
        RTM_GETADDR,
        (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16,
    );
    req.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    req.extend_from_slice(&0u32.to_ne_bytes()); // any interface
    nl.send_to_kernel(&req)?;
    let mut out = Vec::new();
    let mut buf = Vec::with_capacity(super::sock_diag::DUMP_BUFFER);
    loop {
        let n = nl.recv_into(&mut buf)?;
        if n == 0 || parse(&buf, &mut out)? {
            return Ok(out);
        }
    }
}

/// Parse one datagram of the reply, adding each address not yet in `out`; `true` at the end
/// of the dump. An address is the interface's own: `IFA_LOCAL` where there is one (on a
/// point-to-point link `IFA_ADDRESS` is the peer's), else `IFA_ADDRESS`.
pub fn parse(b: &[u8], out: &mut Vec<IpAddr>) -> io::Result<bool> {
    let mut bad = false;
    let end = netlink::messages(b, |kind, body| {
        if kind != RTM_NEWADDR {
            return;
        }
        if body.len() < IFADDRMSG {
            bad = true;
            return;
        }
        if let Some(ip) = own_address(body).filter(|ip| !out.contains(ip)) {
            out.push(ip);
        }
    })?;
    if bad {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "truncated netlink message",
        ));
    }
    Ok(end)
}

/// The address of one `RTM_NEWADDR` body (an `ifaddrmsg` and its attributes).
fn own_address(body: &[u8]) -> Option<IpAddr> {
    let family = i32::from(body[0]);
    let (mut address, mut local) = (None, None);
    let mut attrs = &body[IFADDRMSG..];
    while attrs.len() >= 4 {
        let alen = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
        let atype = u16::from_ne_bytes([attrs[2], attrs[3]]);
        if alen < 4 || alen > attrs.len() {
            break;
        }
        let data = &attrs[4..alen];
        let ip = match (family, data.len()) {
            (libc::AF_INET, 4) => <[u8; 4]>::try_from(data).ok().map(IpAddr::from),
            (libc::AF_INET6, 16) => <[u8; 16]>::try_from(data).ok().map(IpAddr::from),
            _ => None,
        };
        match atype {
            IFA_ADDRESS => address = ip,
            IFA_LOCAL => local = ip,
            _ => {}
        }
        attrs = attrs.get((alen + 3) & !3..).unwrap_or(&[]);
    }
    local.or(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RTM_NEWADDR message with the given attributes.
    fn newaddr(family: u8, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = vec![family, 24, 0, 0, 1, 0, 0, 0];
        for (t, data) in attrs {
            let alen = 4 + data.len();
            body.extend_from_slice(&(alen as u16).to_ne_bytes());
            body.extend_from_slice(&t.to_ne_bytes());
            body.extend_from_slice(data);
            body.resize((body.len() + 3) & !3, 0);
        }
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDR + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&RTM_NEWADDR.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&body);
        m
    }

    fn done() -> Vec<u8> {
        let mut m = (NLMSG_HDR as u32 + 4).to_ne_bytes().to_vec();
        m.extend_from_slice(&netlink::NLMSG_DONE.to_ne_bytes());
        m.extend_from_slice(&[0; 14]);
        m
    }

    #[test]
    fn local_beats_the_peer_address_and_each_address_comes_once() {
        let v6: [u8; 16] = "fd00::2".parse::<std::net::Ipv6Addr>().unwrap().octets();
        let mut b = newaddr(libc::AF_INET as u8, &[(IFA_ADDRESS, &[127, 0, 0, 1])]);
        // Point to point: IFA_ADDRESS is the peer, IFA_LOCAL ours.
        b.extend(newaddr(
            libc::AF_INET as u8,
            &[
                (IFA_ADDRESS, &[198, 18, 0, 9]),
                (IFA_LOCAL, &[198, 18, 0, 1]),
            ],
        ));
        b.extend(newaddr(libc::AF_INET6 as u8, &[(IFA_ADDRESS, &v6)]));
        b.extend(newaddr(
            libc::AF_INET as u8,
            &[(IFA_ADDRESS, &[127, 0, 0, 1])],
        ));
        let mut out = Vec::new();
        assert!(!parse(&b, &mut out).unwrap());
        assert!(parse(&done(), &mut out).unwrap());
        let want: Vec<IpAddr> = vec![
            "127.0.0.1".parse().unwrap(),
            "198.18.0.1".parse().unwrap(),
            "fd00::2".parse().unwrap(),
        ];
        assert_eq!(out, want);
    }

    #[test]
    fn truncated_messages_are_errors_not_panics() {
        let b = newaddr(libc::AF_INET as u8, &[(IFA_ADDRESS, &[127, 0, 0, 1])]);
        for cut in 1..b.len() {
            let _ = parse(&b[..cut], &mut Vec::new());
        }
        assert!(parse(&b[..b.len() - 1], &mut Vec::new()).is_err());
    }

    #[test]
    fn agrees_with_getifaddrs_on_this_machine() {
        let mut mine = read();
        let mut theirs = crate::sys::interface_addresses();
        mine.sort();
        theirs.sort();
        assert_eq!(mine, theirs);
    }
}
