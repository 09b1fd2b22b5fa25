//! AMQP 0-9-1 (RabbitMQ and others): the protocol header, and the server's Connection.Start.
//!
//! What canreach sends: the protocol header `AMQP 0 0 9 1`. The server answers with a
//! Connection.Start method frame (its product, version, platform, cluster name, the SASL
//! mechanisms and locales it accepts), or, when it does not speak 0-9-1, with the header of a
//! version it does speak, and closes (an AMQP 1.0 broker answers `AMQP 0 1 0 0` or
//! `AMQP 3 1 0 0`).
//!
//! How it ends: canreach closes the socket without sending anything more, which is the
//! specification's rule for a client that will not go on ("If the client cannot handle the
//! protocol version suggested by the server it MUST close the socket connection without
//! sending any further data"). Measured on RabbitMQ 3.10: that is logged as a warning
//! ("client unexpectedly closed TCP connection"); a Connection.Close sent instead is logged as
//! an error ("unexpected method in connection state starting"). No credentials are ever sent.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::wire::Wire;
use super::{Ending, Failed, WireFailure, text};

/// `AMQP`, protocol id 0, version 0-9-1.
pub(crate) const PROTOCOL_HEADER: [u8; 8] = *b"AMQP\x00\x00\x09\x01";
/// The end of every frame.
const FRAME_END: u8 = 0xCE;
/// The largest frame read: RabbitMQ's Connection.Start is about 500 bytes.
pub(crate) const FRAME_MAX: usize = 64 * 1024;
/// The most of a property, mechanism list or reply text kept.
pub(crate) const TEXT_MAX: usize = 512;

/// What a server's Connection.Start says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Start {
    pub version_major: u8,
    pub version_minor: u8,
    /// `server-properties`: `product` (`RabbitMQ`), `version` (`3.10.8`), `platform`
    /// (`Erlang/OTP 25.2.3`), `cluster_name`.
    pub product: Option<String>,
    pub version: Option<String>,
    pub platform: Option<String>,
    pub cluster_name: Option<String>,
    /// The SASL mechanisms, space-separated by the server (`PLAIN AMQPLAIN`).
    pub mechanisms: Vec<String>,
    pub locales: Vec<String>,
}

/// The server's first answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Connection.Start: it speaks 0-9-1 and waits for credentials.
    Start(Start),
    /// Connection.Close on channel 0: a refusal, with its reply code and text.
    Close { code: u16, text: String },
    /// A protocol header: the version the server speaks instead (protocol id, major, minor,
    /// revision), then it closes.
    OtherVersion([u8; 4]),
}

/// Why bytes are not an AMQP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParseError {
    NotAmqp,
    TooLarge,
}

/// The answer at the start of `buf`: `Ok(None)` when more bytes are needed, else the answer
/// and the bytes used.
pub(crate) fn parse_answer(buf: &[u8]) -> Result<Option<(Answer, usize)>, ParseError> {
    if buf.first() == Some(&b'A') {
        let Some(h) = buf.get(..8) else {
            let k = buf.len().min(4);
            return if buf[..k] == b"AMQP"[..k] {
                Ok(None)
            } else {
                Err(ParseError::NotAmqp)
            };
        };
        if &h[..4] != b"AMQP" {
            return Err(ParseError::NotAmqp);
        }
        return Ok(Some((Answer::OtherVersion([h[4], h[5], h[6], h[7]]), 8)));
    }
    // A method frame on channel 0.
    let Some(h) = buf.get(..7) else {
        return match buf.first() {
            None | Some(1) => Ok(None),
            _ => Err(ParseError::NotAmqp),
        };
    };
    if h[0] != 1 || h[1] != 0 || h[2] != 0 {
        return Err(ParseError::NotAmqp);
    }
    let size = u32::from_be_bytes([h[3], h[4], h[5], h[6]]) as usize;
    if size > FRAME_MAX {
        return Err(ParseError::TooLarge);
    }
    let Some(frame) = buf.get(..7 + size + 1) else {
        return Ok(None);
    };
    if frame[7 + size] != FRAME_END {
        return Err(ParseError::NotAmqp);
    }
    let payload = &frame[7..7 + size];
    let mut c = Cursor { b: payload };
    let (class, method) = (c.u16()?, c.u16()?);
    let answer = match (class, method) {
        (10, 10) => Answer::Start(parse_start(&mut c)?),
        (10, 50) => {
            let code = c.u16()?;
            let t = c.shortstr()?;
            Answer::Close {
                code,
                text: text(t, TEXT_MAX),
            }
        }
        _ => return Err(ParseError::NotAmqp),
    };
    Ok(Some((answer, frame.len())))
}

struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        if n > self.b.len() {
            return Err(ParseError::NotAmqp);
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u8(&mut self) -> Result<u8, ParseError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, ParseError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<usize, ParseError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    fn shortstr(&mut self) -> Result<&'a [u8], ParseError> {
        let n = usize::from(self.u8()?);
        self.take(n)
    }
    fn longstr(&mut self) -> Result<&'a [u8], ParseError> {
        let n = self.u32()?;
        self.take(n)
    }
}

fn parse_start(c: &mut Cursor<'_>) -> Result<Start, ParseError> {
    let mut s = Start {
        version_major: c.u8()?,
        version_minor: c.u8()?,
        ..Start::default()
    };
    let table = c.longstr()?;
    let mut t = Cursor { b: table };
    // Field table entries: name (shortstr), type, value. Types as RabbitMQ and every client
    // library encode them (the 0-9-1 errata); an unknown type ends the walk (its length is
    // unknown), keeping what was read.
    while !t.b.is_empty() {
        let Ok(name) = t.shortstr() else { break };
        let Ok(kind) = t.u8() else { break };
        let skip = |t: &mut Cursor<'_>, n: usize| t.take(n).map(|_| ());
        let value = match kind {
            b'S' | b'x' => match t.longstr() {
                Ok(v) => Some(v),
                Err(_) => break,
            },
            b'A' | b'F' => {
                if t.longstr().is_err() {
                    break;
                }
                None
            }
            b't' | b'b' | b'B' => {
                if skip(&mut t, 1).is_err() {
                    break;
                }
                None
            }
            b's' | b'u' => {
                if skip(&mut t, 2).is_err() {
                    break;
                }
                None
            }
            b'I' | b'i' | b'f' => {
                if skip(&mut t, 4).is_err() {
                    break;
                }
                None
            }
            b'D' => {
                if skip(&mut t, 5).is_err() {
                    break;
                }
                None
            }
            b'l' | b'L' | b'd' | b'T' => {
                if skip(&mut t, 8).is_err() {
                    break;
                }
                None
            }
            b'V' => None,
            _ => break,
        };
        let Some(v) = value else { continue };
        let keep = Some(text(v, TEXT_MAX));
        match name {
            b"product" => s.product = keep,
            b"version" => s.version = keep,
            b"platform" => s.platform = keep,
            b"cluster_name" => s.cluster_name = keep,
            _ => {}
        }
    }
    let words = |b: &[u8]| -> Vec<String> {
        text(b, TEXT_MAX)
            .split_ascii_whitespace()
            .take(32)
            .map(str::to_owned)
            .collect()
    };
    s.mechanisms = words(c.longstr()?);
    s.locales = words(c.longstr()?);
    Ok(s)
}

/// What the AMQP conversation learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpFacts {
    pub answer: Option<Answer>,
    pub failure: Option<Failed<()>>,
    pub ended: Ending,
    pub elapsed: Duration,
}

/// The conversation: the protocol header, the server's answer, close.
pub(crate) async fn converse<S>(stream: &mut S, deadline: Instant) -> AmqpFacts
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    let mut facts = AmqpFacts {
        answer: None,
        failure: None,
        ended: Ending::Closed,
        elapsed: Duration::ZERO,
    };
    let mut wire = Wire::new(stream, deadline);
    let result = async {
        wire.send(&PROTOCOL_HEADER).await?;
        loop {
            match parse_answer(wire.buffered()) {
                Ok(Some((a, used))) => {
                    wire.consume(used);
                    return Ok(a);
                }
                Ok(None) => {
                    let want = wire.buffered().len() + 1;
                    wire.fill(want).await?;
                }
                Err(ParseError::TooLarge) => return Err(WireFailure::TooLarge),
                Err(ParseError::NotAmqp) => return Err(wire.not_this_protocol()),
            }
        }
    }
    .await;
    match result {
        Ok(a) => {
            facts.ended = match a {
                Answer::Start(_) => Ending::Closed,
                _ => Ending::ByServer,
            };
            facts.answer = Some(a);
        }
        Err(failure) => {
            facts.ended = match failure {
                WireFailure::NoReply => Ending::Deadline,
                _ if wire.peer_ended() => Ending::ByServer,
                _ => Ending::Closed,
            };
            facts.failure = Some(Failed { step: (), failure });
        }
    }
    wire.close().await;
    facts.elapsed = start.elapsed();
    facts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::protocols::testing::{
        Act, fake_server, fixture, fixture_hex, measure_bytes,
    };

    #[test]
    fn rabbitmq_connection_start() {
        let bytes = fixture!("amqp/connection_start.bin");
        let (a, used) = parse_answer(bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        let Answer::Start(s) = a else { panic!("{a:?}") };
        assert_eq!((s.version_major, s.version_minor), (0, 9));
        assert_eq!(s.product.as_deref(), Some("RabbitMQ"));
        assert_eq!(s.version.as_deref(), Some("3.10.8"));
        assert_eq!(s.platform.as_deref(), Some("Erlang/OTP 25.2.3"));
        assert_eq!(s.cluster_name.as_deref(), Some("rabbit@vm"));
        assert_eq!(s.mechanisms, ["PLAIN", "AMQPLAIN"]);
        assert_eq!(s.locales, ["en_US"]);
        // Partial frames wait for more.
        assert_eq!(parse_answer(&bytes[..100]), Ok(None));
        assert_eq!(parse_answer(&bytes[..3]), Ok(None));
    }

    #[test]
    fn other_versions_and_refusals() {
        assert_eq!(
            parse_answer(fixture!("amqp/protocol_header_reply.bin")),
            Ok(Some((Answer::OtherVersion([0, 0, 9, 1]), 8)))
        );
        assert_eq!(
            parse_answer(b"AMQP\x03\x01\x00\x00"),
            Ok(Some((Answer::OtherVersion([3, 1, 0, 0]), 8)))
        );
        assert_eq!(parse_answer(b"AM"), Ok(None));
        assert_eq!(parse_answer(b"AB"), Err(ParseError::NotAmqp));
        let close = fixture_hex!("amqp/connection_close.hex");
        assert_eq!(
            parse_answer(&close),
            Ok(Some((
                Answer::Close {
                    code: 530,
                    text: "NOT_ALLOWED - access to vhost '/' refused".into()
                },
                close.len()
            )))
        );
        assert_eq!(parse_answer(b"HTTP/1.1 400"), Err(ParseError::NotAmqp));
        assert_eq!(
            parse_answer(b"\x01\x00\x00\x7f\xff\xff\xff"),
            Err(ParseError::TooLarge)
        );
        // A frame that does not end with 0xCE.
        assert_eq!(
            parse_answer(b"\x01\x00\x00\x00\x00\x00\x04\x00\x0a\x00\x0a\x00"),
            Err(ParseError::NotAmqp)
        );
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics_nor_allocates_past_its_bound(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..4096)
        ) {
            let used = measure_bytes(|| { let _ = parse_answer(&bytes); });
            // Four properties and two word lists of TEXT_MAX (3 bytes per replaced byte).
            proptest::prop_assert!(used <= (6 * 3 * TEXT_MAX + 2 * 32 * 64) as u64, "{used}");
        }

        #[test]
        fn start_frames_with_any_table_never_panic(
            table in proptest::collection::vec(proptest::num::u8::ANY, 0..1024)
        ) {
            let mut payload = vec![0, 10, 0, 10, 0, 9];
            payload.extend_from_slice(&u32::try_from(table.len()).unwrap().to_be_bytes());
            payload.extend_from_slice(&table);
            payload.extend_from_slice(&[0, 0, 0, 5]);
            payload.extend_from_slice(b"PLAIN");
            payload.extend_from_slice(&[0, 0, 0, 0]);
            let mut frame = vec![1, 0, 0];
            frame.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
            frame.extend_from_slice(&payload);
            frame.push(FRAME_END);
            let (a, _) = parse_answer(&frame).unwrap().unwrap();
            let Answer::Start(s) = a else { panic!() };
            proptest::prop_assert_eq!(s.mechanisms, ["PLAIN"]);
        }
    }

    #[tokio::test]
    async fn start_then_close_without_a_byte_more() {
        let (addr, server) = fake_server(vec![
            Act::Read(8),
            Act::Send(fixture!("amqp/connection_start.bin").to_vec()),
        ])
        .await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let facts = converse(&mut s, Instant::now() + Duration::from_secs(5)).await;
        drop(s);
        let Some(Answer::Start(start)) = facts.answer else {
            panic!("{facts:?}")
        };
        assert_eq!(start.product.as_deref(), Some("RabbitMQ"));
        assert_eq!(facts.ended, Ending::Closed);
        assert_eq!(server.await.unwrap(), PROTOCOL_HEADER);
    }

    #[tokio::test]
    async fn an_amqp_1_0_broker() {
        let (addr, _server) = fake_server(vec![
            Act::Read(8),
            Act::Send(b"AMQP\x00\x01\x00\x00".to_vec()),
            Act::Close,
        ])
        .await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let facts = converse(&mut s, Instant::now() + Duration::from_secs(5)).await;
        assert_eq!(facts.answer, Some(Answer::OtherVersion([0, 1, 0, 0])));
        assert_eq!(facts.ended, Ending::ByServer);
    }
}
