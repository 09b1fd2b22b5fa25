//! A connection with a reduced maximum segment size: the unprivileged proof of a path-MTU
//! black hole.
//!
//! When a link on the way has a smaller MTU and the ICMP "fragmentation needed" (ICMPv6
//! "packet too big") its router sends back is dropped, small packets pass — TCP connects, the
//! ClientHello goes out — but the server's full-size segments (the certificate flight) never
//! arrive, and the TLS handshake stalls. The same client with `TCP_MAXSEG` set *before*
//! `connect()` advertises a smaller MSS in its SYN; the server then sends smaller segments and
//! the handshake completes (`docs/ground-truth/beyond-connect.md`). A stalled handshake that
//! succeeds over [`connect_with_mss`] is the fact; the diagnosis words it.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

/// The MSS to retry with over IPv4: 1200 + 40 bytes of headers fits links well below 1500
/// (tunnels, PPPoE, VPNs).
pub(crate) const MSS_V4: u32 = 1200;
/// Over IPv6: 1220 + 60 bytes of headers = 1280, the minimum MTU every IPv6 link carries.
pub(crate) const MSS_V6: u32 = 1220;

/// The reduced MSS for `addr`'s family.
pub fn reduced_mss(addr: &SocketAddr) -> u32 {
    if addr.is_ipv6() { MSS_V6 } else { MSS_V4 }
}

/// Why the reduced-MSS connection was not made.
#[derive(Debug, thiserror::Error)]
pub enum MssError {
    /// The socket could not be created or set up.
    #[error("cannot create the socket: {0}")]
    Socket(#[source] io::Error),
    /// The kernel refused the MSS (out of its accepted range).
    #[error("cannot set TCP_MAXSEG to {mss}: {source}")]
    SetMss {
        mss: u32,
        #[source]
        source: io::Error,
    },
    /// `connect()` failed.
    #[error("connect failed: {0}")]
    Connect(#[source] io::Error),
    /// No answer before the deadline.
    #[error("connect timed out")]
    TimedOut,
}

/// Why the reduced-MSS connection was not made, as a fact kept in the session's facts: the
/// step that failed and the OS's errno (the diagnosis words it; [`MssError`]'s text is not
/// kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MssFailure {
    /// The socket could not be created.
    Socket { errno: Option<i32> },
    /// The kernel refused the MSS.
    SetMss { errno: Option<i32> },
    /// `connect()` failed.
    Connect { errno: Option<i32> },
    /// No answer before the deadline.
    TimedOut,
}

impl From<&MssError> for MssFailure {
    fn from(e: &MssError) -> Self {
        match e {
            MssError::Socket(e) => MssFailure::Socket {
                errno: e.raw_os_error(),
            },
            MssError::SetMss { source, .. } => MssFailure::SetMss {
                errno: source.raw_os_error(),
            },
            MssError::Connect(e) => MssFailure::Connect {
                errno: e.raw_os_error(),
            },
            MssError::TimedOut => MssFailure::TimedOut,
        }
    }
}

impl MssFailure {
    /// The OS's errno, when there is one.
    pub(crate) fn errno(&self) -> Option<i32> {
        match self {
            MssFailure::Socket { errno }
            | MssFailure::SetMss { errno }
            | MssFailure::Connect { errno } => *errno,
            MssFailure::TimedOut => None,
        }
    }
}

/// Connect to `addr` advertising `mss` (see [`reduced_mss`]), within `deadline`.
pub async fn connect_with_mss(
    addr: SocketAddr,
    mss: u32,
    deadline: Instant,
) -> Result<TcpStream, MssError> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )
    .map_err(MssError::Socket)?;
    // Before connect(): the SYN carries the MSS option, which is what the server obeys.
    socket
        .set_tcp_mss(mss)
        .map_err(|source| MssError::SetMss { mss, source })?;
    let socket = TcpSocket::from_std_stream(socket.into());
    match tokio::time::timeout_at(deadline, socket.connect(addr)).await {
        Err(_) => Err(MssError::TimedOut),
        Ok(Err(e)) => Err(MssError::Connect(e)),
        Ok(Ok(s)) => Ok(s),
    }
}

/// The socket's `TCP_MAXSEG` (the MSS in use once connected).
pub fn mss_of(stream: &TcpStream) -> io::Result<u32> {
    SockRef::from(stream).tcp_mss()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_keep_the_step_and_the_errno_only() {
        let refused = MssError::Connect(io::Error::from_raw_os_error(libc::ECONNREFUSED));
        assert_eq!(
            MssFailure::from(&refused),
            MssFailure::Connect {
                errno: Some(libc::ECONNREFUSED)
            }
        );
        let mss = MssError::SetMss {
            mss: 1,
            source: io::Error::from_raw_os_error(libc::EINVAL),
        };
        assert_eq!(MssFailure::from(&mss).errno(), Some(libc::EINVAL));
        assert_eq!(MssFailure::from(&MssError::TimedOut), MssFailure::TimedOut);
        let synthetic = MssError::Socket(io::Error::other("made up"));
        assert_eq!(
            MssFailure::from(&synthetic),
            MssFailure::Socket { errno: None }
        );
    }

    #[test]
    fn per_family() {
        assert_eq!(reduced_mss(&"192.0.2.1:443".parse().unwrap()), 1200);
        assert_eq!(reduced_mss(&"[2001:db8::1]:443".parse().unwrap()), 1220);
    }
}
