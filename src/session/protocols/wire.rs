//! One bounded, deadline-bound reader and writer for every conversation.
//!
//! Reading and parsing stay apart: a conversation asks this reader for "at least n bytes" or
//! "one line of at most n bytes", then hands the bytes to its protocol's pure parser. The
//! reader never holds more than what was asked for plus one read's chunk, so a peer that
//! announces a gigabyte gets a [`WireFailure::TooLarge`] from the parser's bound, not an
//! allocation.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::WireFailure;
use crate::session::{FIRST_BYTES_MAX, looks_like_tls_record};

/// The most bytes one read asks the socket for.
const CHUNK: usize = 4096;

/// A stream with the bytes received and not yet consumed, and one deadline.
#[derive(Debug)]
pub(crate) struct Wire<'s, S> {
    stream: &'s mut S,
    buf: Vec<u8>,
    deadline: Instant,
    /// The first bytes received over the whole conversation, kept for a
    /// [`WireFailure::NotThisProtocol`] or [`WireFailure::Truncated`] fact.
    first: Vec<u8>,
    /// The peer ended the stream (EOF or reset) while we read.
    ended: bool,
}

impl<'s, S> Wire<'s, S> {
    /// Whether the peer closed or reset the stream during a read.
    pub(crate) fn peer_ended(&self) -> bool {
        self.ended
    }

    /// The bytes received and not consumed.
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Drop the first `n` buffered bytes (they were parsed).
    pub(crate) fn consume(&mut self, n: usize) {
        self.buf.drain(..n.min(self.buf.len()));
    }

    /// A failure for bytes that are not this protocol's: a TLS record says the port wants TLS.
    pub(crate) fn not_this_protocol(&self) -> WireFailure {
        // The bytes that failed to parse are the ones still buffered; after a message was
        // consumed the buffer may be empty, and the conversation's first bytes tell more.
        let src = if self.buf.is_empty() {
            &self.first
        } else {
            &self.buf
        };
        let first_bytes = src[..src.len().min(FIRST_BYTES_MAX)].to_vec();
        if looks_like_tls_record(&first_bytes) {
            WireFailure::ExpectsTls { first_bytes }
        } else {
            WireFailure::NotThisProtocol { first_bytes }
        }
    }

    fn truncated(&self) -> WireFailure {
        if looks_like_tls_record(&self.buf) {
            return WireFailure::ExpectsTls {
                first_bytes: self.buf[..self.buf.len().min(FIRST_BYTES_MAX)].to_vec(),
            };
        }
        WireFailure::Truncated {
            first_bytes: self.buf[..self.buf.len().min(FIRST_BYTES_MAX)].to_vec(),
        }
    }
}

impl<'s, S: AsyncRead + AsyncWrite + Unpin> Wire<'s, S> {
    pub(crate) fn new(stream: &'s mut S, deadline: Instant) -> Self {
        Wire {
            stream,
            buf: Vec::new(),
            deadline,
            first: Vec::new(),
            ended: false,
        }
    }

    /// Write all of `bytes` and flush, within the deadline.
    pub(crate) async fn send(&mut self, bytes: &[u8]) -> Result<(), WireFailure> {
        let stream = &mut *self.stream;
        match tokio::time::timeout_at(self.deadline, async {
            stream.write_all(bytes).await?;
            stream.flush().await
        })
        .await
        {
            Err(_) => Err(WireFailure::NoReply),
            Ok(Err(e)) => {
                let f = io_failure(&e);
                if matches!(f, WireFailure::Reset | WireFailure::Closed) {
                    self.ended = true;
                }
                Err(f)
            }
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Wait until at least `n` bytes are buffered. The caller bounds `n` (a parsed length is
    /// checked against the protocol's bound before it is asked for).
    pub(crate) async fn fill(&mut self, n: usize) -> Result<(), WireFailure> {
        while self.buf.len() < n {
            self.read_once(self.deadline).await?;
        }
        Ok(())
    }

    /// Wait until bytes are buffered or `until` passes (at most the deadline): `Ok(true)` when
    /// bytes are there, `Ok(false)` when none came in time.
    pub(crate) async fn wait_for_bytes(&mut self, until: Instant) -> Result<bool, WireFailure> {
        if !self.buf.is_empty() {
            return Ok(true);
        }
        match self.read_once(until.min(self.deadline)).await {
            Ok(()) => Ok(true),
            Err(WireFailure::NoReply) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One line, without its line end (`\r\n` or a bare `\n`), at most `max` bytes before the
    /// line end; longer is [`WireFailure::TooLarge`].
    pub(crate) async fn line(&mut self, max: usize) -> Result<Vec<u8>, WireFailure> {
        let mut searched = 0;
        loop {
            if let Some(i) = self.buf[searched..].iter().position(|&b| b == b'\n') {
                let end = searched + i;
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.len() > max {
                    return Err(WireFailure::TooLarge);
                }
                return Ok(line);
            }
            searched = self.buf.len();
            // `max` + the line end.
            if self.buf.len() > max + 1 {
                return Err(WireFailure::TooLarge);
            }
            self.read_once(self.deadline).await?;
        }
    }

    /// Close our side (FIN), within the deadline; errors are of no interest any more.
    pub(crate) async fn close(&mut self) {
        let _ = tokio::time::timeout_at(self.deadline, self.stream.shutdown()).await;
    }

    async fn read_once(&mut self, until: Instant) -> Result<(), WireFailure> {
        let mut chunk = [0u8; CHUNK];
        let n = match tokio::time::timeout_at(until, self.stream.read(&mut chunk)).await {
            Err(_) if self.buf.is_empty() => return Err(WireFailure::NoReply),
            Err(_) => return Err(self.truncated()),
            Ok(Err(e)) => {
                let f = io_failure(&e);
                if matches!(f, WireFailure::Reset | WireFailure::Closed) {
                    self.ended = true;
                }
                return Err(match f {
                    WireFailure::Closed if !self.buf.is_empty() => self.truncated(),
                    f => f,
                });
            }
            Ok(Ok(n)) => n,
        };
        if n == 0 {
            self.ended = true;
            return Err(if self.buf.is_empty() {
                WireFailure::Closed
            } else {
                self.truncated()
            });
        }
        let got = &chunk[..n];
        let room = FIRST_BYTES_MAX.saturating_sub(self.first.len());
        self.first.extend_from_slice(&got[..n.min(room)]);
        self.buf.extend_from_slice(got);
        Ok(())
    }
}

/// An I/O error as a failure: the OS's errno is the fact, its text is not.
pub(crate) fn io_failure(e: &std::io::Error) -> WireFailure {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionReset | K::ConnectionAborted => WireFailure::Reset,
        K::UnexpectedEof | K::BrokenPipe => WireFailure::Closed,
        _ => WireFailure::Io {
            errno: e.raw_os_error(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test]
    async fn lines_split_on_crlf_and_bare_lf() {
        let (mut a, mut b) = tokio::io::duplex(64);
        b.write_all(b"one\r\ntwo\nthree").await.unwrap();
        drop(b);
        let mut w = Wire::new(&mut a, soon());
        assert_eq!(w.line(10).await.unwrap(), b"one");
        assert_eq!(w.line(10).await.unwrap(), b"two");
        assert_eq!(
            w.line(10).await,
            Err(WireFailure::Truncated {
                first_bytes: b"three".to_vec()
            })
        );
        assert!(w.peer_ended());
    }

    #[tokio::test]
    async fn a_line_longer_than_its_bound_stops_without_reading_on() {
        let (mut a, mut b) = tokio::io::duplex(16 * 1024);
        b.write_all(&[b'x'; 9000]).await.unwrap();
        let mut w = Wire::new(&mut a, soon());
        assert_eq!(w.line(100).await, Err(WireFailure::TooLarge));
        // One chunk read, never the whole 9000 bytes.
        assert!(w.buffered().len() <= CHUNK);
    }

    #[tokio::test]
    async fn silence_is_no_reply_and_close_is_closed() {
        let (mut a, _b) = tokio::io::duplex(64);
        let mut w = Wire::new(&mut a, Instant::now() + Duration::from_millis(20));
        assert_eq!(w.fill(1).await, Err(WireFailure::NoReply));

        let (mut a, b) = tokio::io::duplex(64);
        drop(b);
        let mut w = Wire::new(&mut a, soon());
        assert_eq!(w.fill(1).await, Err(WireFailure::Closed));
    }

    #[tokio::test]
    async fn a_tls_record_is_named() {
        let (mut a, mut b) = tokio::io::duplex(64);
        b.write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02])
            .await
            .unwrap();
        drop(b);
        let mut w = Wire::new(&mut a, soon());
        assert!(matches!(
            w.fill(100).await,
            Err(WireFailure::ExpectsTls { .. })
        ));
    }

    #[tokio::test]
    async fn waiting_for_bytes_ends_at_its_own_instant() {
        let (mut a, _b) = tokio::io::duplex(64);
        let mut w = Wire::new(&mut a, soon());
        let t = Instant::now();
        assert_eq!(
            w.wait_for_bytes(Instant::now() + Duration::from_millis(10))
                .await,
            Ok(false)
        );
        assert!(t.elapsed() < Duration::from_secs(4));
    }
}
