//! The netlink message framing shared by the socket-table dump ([`super::sock_diag`]) and the
//! address dump ([`super::addresses`]): a reply datagram holds several messages, each a
//! 16-byte header (length, type, flags, sequence, port) and a body, 4-byte aligned; a dump ends
//! with `NLMSG_DONE`, a refusal is `NLMSG_ERROR` with a negative errno.

use std::io;

/// `struct nlmsghdr`.
pub(crate) const NLMSG_HDR: usize = 16;
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;

/// Call `each(type, body)` for every message of one reply datagram; `true` at the end of the
/// dump. A truncated message, or `NLMSG_ERROR`, is an error (the errno the kernel gave).
pub(crate) fn messages(mut b: &[u8], mut each: impl FnMut(u16, &[u8])) -> io::Result<bool> {
    while b.len() >= NLMSG_HDR {
        let len = u32::from_ne_bytes(b[0..4].try_into().expect("4 bytes")) as usize;
        let kind = u16::from_ne_bytes(b[4..6].try_into().expect("2 bytes"));
        if len < NLMSG_HDR || len > b.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "truncated netlink message",
            ));
        }
        let body = &b[NLMSG_HDR..len];
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let errno = body
                    .get(0..4)
                    .map_or(0, |e| i32::from_ne_bytes(e.try_into().expect("4 bytes")));
                return Err(io::Error::from_raw_os_error(errno.saturating_abs()));
            }
            _ => each(kind, body),
        }
        b = b.get((len + 3) & !3..).unwrap_or(&[]);
    }
    Ok(false)
}

/// A request's header: `len` bytes in all (header included), of `kind`, with `flags`.
pub(crate) fn header(len: usize, kind: u16, flags: u16) -> Vec<u8> {
    let mut b = Vec::with_capacity(len);
    b.extend_from_slice(&(len as u32).to_ne_bytes());
    b.extend_from_slice(&kind.to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&1u32.to_ne_bytes()); // seq
    b.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel fills it
    b
}
