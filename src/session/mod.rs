//! The session stage: what happens *after* the TCP handshake.
//!
//! "Open" proves only that a listening socket exists: the kernel completes the handshake before
//! the program calls `accept()` (see `docs/ground-truth/beyond-connect.md`). This stage looks at the
//! connection before the client speaks and at the application protocols on top of it, and records
//! what it saw as typed facts. Like every stage it never prints and never decides: the words
//! ("the certificate expired on …", "the server answered plain HTTP") belong to the diagnosis.
//!
//! | part | module | facts |
//! |---|---|---|
//! | the stage as one call | `stage` | [`SessionFacts`]: what the server does unasked, then TLS (+ MSS retry), then HTTP |
//! | before the client speaks (nothing written) | [`watch`] | [`watch::First`]: reset, closed, banner (SSH, SMTP, MySQL …), silent |
//! | TLS handshake | [`tls`] | [`tls::TlsFacts`]: version, suite, ALPN, chain, [`tls::TlsFailure`] |
//! | one HTTP request | [`http`] | [`http::HttpFacts`]: status, `Server`, `Via`, `Location` …, [`http::HttpFailure`] |
//! | proxy environment, CONNECT | [`proxy`] | [`proxy::ProxyChoice`], [`proxy::ConnectFacts`] |
//! | reduced-MSS retry | [`mss`] | a connected stream, or [`mss::MssError`] |
//! | a service's own opening (PostgreSQL, Redis, MySQL …) | [`protocols`] | [`ServiceFacts`]: what the service said, in its protocol's terms |
//! | a prober's own questions | `ask` | `ask::Answered`: one HTTP exchange as a module asks it, a `query_response` dialogue |
//!
//! ## For the pipeline
//!
//! After a probe connected to an address, connect again (the probe's socket is not kept) and
//! hand the stream to [`after_connect`] with the connect time as the round-trip estimate:
//!
//! ```ignore
//! let req = SessionRequest {
//!     host: target.host.to_string(),                       // SNI and Host header
//!     application: application_for(target.service.as_deref(), &host, port),
//!     roots: TrustStore::system(),                         // loaded once per process
//!     mss_retry: true,
//!     program: None,                                       // this machine: the listener's processes
//! };
//! let facts: SessionFacts = after_connect(stream, address, rtt, &req, deadline).await;
//! ```
//!
//! A completed connect that reported ECONNRESET never gets here: [`watch::accepted_then_reset`]
//! says what that fact means. [`proxy::proxy_for`] is independent of any connection (pure, from
//! the environment).
//!
//! Everything the peer sends is hostile input: every read is bounded in size and by the
//! caller's deadline, and no parser panics on garbage.

pub(crate) mod ask;
pub mod http;
pub mod mss;
pub(crate) mod protocols;
pub mod proxy;
pub(crate) mod stage;
pub(crate) mod status;
pub mod tls;
pub mod watch;

pub use stage::{Application, SessionFacts, SessionRequest, after_connect};
pub(crate) use stage::{
    Destination, ServiceFacts, ServiceRequest, ViaProxy, after_connect_via, application_for,
};

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most bytes of a peer's unsolicited or unexpected reply kept in facts: enough for a
/// status line and a few headers, or a banner, and small enough to keep in every report.
pub(crate) const FIRST_BYTES_MAX: usize = 1024;

/// What a [`Recording`] stream saw come in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Recorded {
    /// The first [`FIRST_BYTES_MAX`] bytes received.
    pub first: Vec<u8>,
    /// All bytes received, counted (not kept).
    pub total: u64,
    /// When the first byte came.
    pub first_at: Option<tokio::time::Instant>,
}

/// A stream wrapper that keeps the first bytes the peer sent.
///
/// Why: a TLS library that fails on "not a TLS record" drops what it read; the diagnosis wants
/// to say "the server answered `HTTP/1.1 400 Bad Request`". The record is shared (not owned by
/// the wrapper) because on a failed handshake the wrapper itself is dropped inside the TLS
/// library.
#[derive(Debug)]
pub struct Recording<S> {
    inner: S,
    seen: Arc<Mutex<Recorded>>,
}

impl<S> Recording<S> {
    /// Wrap `inner`; read what came in through [`Recording::handle`].
    pub(crate) fn new(inner: S) -> Self {
        Recording {
            inner,
            seen: Arc::default(),
        }
    }

    /// A handle to the record that outlives the stream.
    pub(crate) fn handle(&self) -> Arc<Mutex<Recorded>> {
        Arc::clone(&self.seen)
    }
}

/// A snapshot of a shared record (a poisoned lock still holds valid bytes).
pub(crate) fn snapshot(seen: &Mutex<Recorded>) -> Recorded {
    match seen.lock() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Recording<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            let new = &buf.filled()[before..];
            if !new.is_empty() {
                let mut seen = match self.seen.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                let room = FIRST_BYTES_MAX.saturating_sub(seen.first.len());
                seen.first.extend_from_slice(&new[..new.len().min(room)]);
                seen.total += new.len() as u64;
                if seen.first_at.is_none() {
                    seen.first_at = Some(tokio::time::Instant::now());
                }
            }
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Recording<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Whether `bytes` start like a TLS record: a content type of 20–24 (change-cipher-spec,
/// alert, handshake, application data, heartbeat) and a major version of 3.
///
/// Used both ways: a TLS client that got something else met a plain-text server; a plain-text
/// client that got this met a TLS server.
pub(crate) fn looks_like_tls_record(bytes: &[u8]) -> bool {
    match bytes {
        [t, rest @ ..] if (0x14..=0x18).contains(t) => rest.first().is_none_or(|&v| v == 0x03),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_record_detection() {
        assert!(looks_like_tls_record(&[
            0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28
        ]));
        assert!(looks_like_tls_record(&[0x16, 0x03, 0x01]));
        assert!(looks_like_tls_record(&[0x16]));
        assert!(!looks_like_tls_record(b"HTTP/1.1 400 Bad Request\r\n"));
        assert!(!looks_like_tls_record(&[0x16, 0x02]));
        assert!(!looks_like_tls_record(&[]));
    }
}
