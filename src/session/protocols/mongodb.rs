//! MongoDB: `hello` over OP_MSG, then `buildInfo`.
//!
//! What canreach sends (MongoDB Wire Protocol, OP_MSG, opcode 2013; BSON 1.1):
//!
//! 1. `{hello: 1, $db: "admin"}`: the handshake every driver makes, allowed before
//!    authentication. A server older than 4.4.2 answers `CommandNotFound` (59): canreach asks
//!    the older name, `{isMaster: 1, $db: "admin"}`.
//! 2. `{buildInfo: 1, $db: "admin"}`: the version (also allowed before authentication).
//!
//! The answer names the replica set (`setName`), its members as they are configured
//! (`hosts`, `passives`, `arbiters`: the names clients must reach, the classic trap when they
//! resolve or route only inside the cluster), the primary, this member's own name (`me`), and
//! whether it takes writes (`isWritablePrimary`, `ismaster` before 4.4.2). A `mongos` says
//! `msg: "isdbgrid"`.
//!
//! How it ends: canreach closes the connection, as the drivers do (no goodbye exists).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::wire::Wire;
use super::{Ending, Failed, WireFailure, text};

/// OP_MSG.
pub(crate) const OP_MSG: i32 = 2013;
/// The largest reply read: a `hello` reply is under 1 KiB, `buildInfo` a few KiB.
pub(crate) const REPLY_MAX: usize = 64 * 1024;
/// The most member names kept per list.
pub(crate) const HOSTS_MAX: usize = 64;
/// The most of a name, version or message kept.
pub(crate) const TEXT_MAX: usize = 256;
/// MongoDB's `CommandNotFound`.
const COMMAND_NOT_FOUND: i32 = 59;

/// A command canreach sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    Hello,
    IsMaster,
    BuildInfo,
}

impl Command {
    fn name(self) -> &'static str {
        match self {
            Command::Hello => "hello",
            Command::IsMaster => "isMaster",
            Command::BuildInfo => "buildInfo",
        }
    }
}

/// The OP_MSG for `command` with `request_id`: `{<command>: 1, $db: "admin"}`, no checksum.
pub(crate) fn request(command: Command, request_id: i32) -> Vec<u8> {
    let mut doc = Vec::new();
    doc.push(0x10); // int32
    doc.extend_from_slice(command.name().as_bytes());
    doc.push(0);
    doc.extend_from_slice(&1i32.to_le_bytes());
    doc.push(0x02); // string
    doc.extend_from_slice(b"$db\0");
    doc.extend_from_slice(&6i32.to_le_bytes());
    doc.extend_from_slice(b"admin\0");
    doc.push(0);
    let doc_len = i32::try_from(doc.len() + 4).unwrap_or(i32::MAX);
    let body_len = 4 + 1 + 4 + doc.len();
    let msg_len = i32::try_from(16 + body_len).unwrap_or(i32::MAX);
    let mut out = Vec::with_capacity(16 + body_len);
    out.extend_from_slice(&msg_len.to_le_bytes());
    out.extend_from_slice(&request_id.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // responseTo
    out.extend_from_slice(&OP_MSG.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // flagBits
    out.push(0); // section kind 0: the body
    out.extend_from_slice(&doc_len.to_le_bytes());
    out.extend_from_slice(&doc);
    out
}

/// Why bytes are not a MongoDB reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParseError {
    NotMongo,
    TooLarge,
    /// A well-formed message that answers another request id.
    NotOurs,
    /// A reply whose BSON is broken.
    BadBson,
}

/// One reply from the start of `buf`: the body document's bytes and the bytes used.
/// `Ok(None)`: more bytes needed.
pub(crate) fn parse_reply(
    buf: &[u8],
    request_id: i32,
) -> Result<Option<(&[u8], usize)>, ParseError> {
    let Some(h) = buf.get(..16) else {
        return Ok(None);
    };
    let len = i32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let response_to = i32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    let opcode = i32::from_le_bytes([h[12], h[13], h[14], h[15]]);
    // The smallest OP_MSG: header, flags, one section kind and an empty document.
    let Ok(len) = usize::try_from(len) else {
        return Err(ParseError::NotMongo);
    };
    if len < 16 + 4 + 1 + 5 || opcode != OP_MSG {
        return Err(ParseError::NotMongo);
    }
    if len > REPLY_MAX {
        return Err(ParseError::TooLarge);
    }
    let Some(msg) = buf.get(..len) else {
        return Ok(None);
    };
    if response_to != request_id {
        return Err(ParseError::NotOurs);
    }
    let flags = u32::from_le_bytes([msg[16], msg[17], msg[18], msg[19]]);
    // checksumPresent: a CRC-32C at the end, not part of the sections.
    let end = if flags & 1 != 0 { len - 4 } else { len };
    let mut at = 20;
    while at < end {
        let kind = msg[at];
        at += 1;
        let size = doc_len(msg.get(at..end).unwrap_or_default()).ok_or(ParseError::BadBson)?;
        if kind == 0 {
            return Ok(Some((&msg[at..at + size], len)));
        }
        if kind != 1 {
            return Err(ParseError::BadBson);
        }
        at += size;
    }
    Err(ParseError::BadBson)
}

/// The length a BSON document (or a kind-1 section) says it has, when it fits in `buf`.
fn doc_len(buf: &[u8]) -> Option<usize> {
    let l = buf.get(..4)?;
    let n = usize::try_from(i32::from_le_bytes([l[0], l[1], l[2], l[3]])).ok()?;
    (n >= 5 && n <= buf.len()).then_some(n)
}

/// A BSON value, as far as these replies need one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    Double(f64),
    String(&'a [u8]),
    Document(&'a [u8]),
    Array(&'a [u8]),
    Bool(bool),
    Int32(i32),
    Int64(i64),
    /// Any other type (skipped by its length).
    Other,
}

impl Value<'_> {
    fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Double(d) => Some(d),
            Value::Int32(i) => Some(f64::from(i)),
            #[allow(clippy::cast_precision_loss)]
            Value::Int64(i) => Some(i as f64),
            _ => None,
        }
    }

    fn as_i32(&self) -> Option<i32> {
        match *self {
            Value::Int32(i) => Some(i),
            Value::Int64(i) => i32::try_from(i).ok(),
            #[allow(clippy::cast_possible_truncation)]
            Value::Double(d) if d.fract() == 0.0 && d.abs() < 2e9 => Some(d as i32),
            _ => None,
        }
    }
}

/// The elements of a BSON document (or array), in order; stops at the first malformed one.
/// Borrowing: allocates nothing.
#[derive(Debug, Clone)]
pub(crate) struct Elements<'a> {
    rest: &'a [u8],
}

/// Iterate the elements of the document `doc` (its length prefix included).
pub(crate) fn elements(doc: &[u8]) -> Elements<'_> {
    let body = match doc_len(doc) {
        Some(n) => &doc[4..n - 1],
        None => &[],
    };
    Elements { rest: body }
}

impl<'a> Iterator for Elements<'a> {
    type Item = (&'a [u8], Value<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let (&kind, tail) = self.rest.split_first()?;
        let name_end = tail.iter().position(|&b| b == 0)?;
        let name = &tail[..name_end];
        let v = &tail[name_end + 1..];
        let fixed = |n: usize| v.get(..n);
        let string = |v: &'a [u8]| -> Option<(&'a [u8], usize)> {
            let n = usize::try_from(i32::from_le_bytes(v.get(..4)?.try_into().ok()?)).ok()?;
            let s = v.get(4..4 + n)?;
            Some((s.strip_suffix(&[0]).unwrap_or(s), 4 + n))
        };
        let (value, used) = match kind {
            0x01 => {
                let b = fixed(8)?;
                (Value::Double(f64::from_le_bytes(b.try_into().ok()?)), 8)
            }
            0x02 => {
                let (s, used) = string(v)?;
                (Value::String(s), used)
            }
            0x03 | 0x04 => {
                let n = doc_len(v)?;
                let d = &v[..n];
                (
                    if kind == 0x03 {
                        Value::Document(d)
                    } else {
                        Value::Array(d)
                    },
                    n,
                )
            }
            0x05 => {
                let n = usize::try_from(i32::from_le_bytes(fixed(4)?.try_into().ok()?)).ok()?;
                (Value::Other, 5 + n)
            }
            0x06 | 0x0A | 0xFF | 0x7F => (Value::Other, 0),
            0x07 => (Value::Other, 12),
            0x08 => (Value::Bool(*fixed(1)?.first()? != 0), 1),
            0x09 | 0x11 => (Value::Other, 8),
            0x0B => {
                let a = v.iter().position(|&b| b == 0)?;
                let b = v[a + 1..].iter().position(|&b| b == 0)?;
                (Value::Other, a + b + 2)
            }
            0x0C => (Value::Other, string(v)?.1 + 12),
            0x0D | 0x0E => (Value::Other, string(v)?.1),
            0x0F => (Value::Other, doc_len(v)?),
            0x10 => (
                Value::Int32(i32::from_le_bytes(fixed(4)?.try_into().ok()?)),
                4,
            ),
            0x12 => (
                Value::Int64(i64::from_le_bytes(fixed(8)?.try_into().ok()?)),
                8,
            ),
            0x13 => (Value::Other, 16),
            _ => return None,
        };
        if used > v.len() {
            self.rest = &[];
            return None;
        }
        self.rest = &v[used..];
        Some((name, value))
    }
}

/// A command's error (`ok: 0`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandError {
    pub code: Option<i32>,
    /// `codeName`, e.g. `CommandNotFound`, `Unauthorized`.
    pub code_name: Option<String>,
    pub errmsg: Option<String>,
}

/// What `hello` (or `isMaster`) said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hello {
    /// `isWritablePrimary` (`ismaster` from `isMaster`): this member takes writes.
    pub writable_primary: Option<bool>,
    pub secondary: Option<bool>,
    pub arbiter_only: Option<bool>,
    /// `setName`: the replica set.
    pub set_name: Option<String>,
    /// `hosts`: the members that can become primary, as configured.
    pub hosts: Vec<String>,
    /// `passives`: members with priority 0.
    pub passives: Vec<String>,
    pub arbiters: Vec<String>,
    /// `primary`: the member the set reports as primary.
    pub primary: Option<String>,
    /// `me`: this member's name in the configuration.
    pub me: Option<String>,
    /// `msg`: `isdbgrid` from a `mongos` router.
    pub msg: Option<String>,
    pub min_wire_version: Option<i32>,
    /// 21 is MongoDB 7.0, 25 is 8.0: the version range, when `buildInfo` is refused.
    pub max_wire_version: Option<i32>,
    /// `ok: 0`: the command failed.
    pub error: Option<CommandError>,
}

fn strings(array: &[u8]) -> Vec<String> {
    elements(array)
        .filter_map(|(_, v)| match v {
            Value::String(s) => Some(text(s, TEXT_MAX)),
            _ => None,
        })
        .take(HOSTS_MAX)
        .collect()
}

fn error_of(doc: &[u8]) -> Option<CommandError> {
    let mut ok = None;
    let mut e = CommandError::default();
    for (name, v) in elements(doc) {
        match (name, v) {
            (b"ok", v) => ok = v.as_f64(),
            (b"code", v) => e.code = v.as_i32(),
            (b"codeName", Value::String(s)) => e.code_name = Some(text(s, TEXT_MAX)),
            (b"errmsg", Value::String(s)) => e.errmsg = Some(text(s, TEXT_MAX)),
            _ => {}
        }
    }
    (ok != Some(1.0)).then_some(e)
}

/// The facts of a `hello`/`isMaster` reply document.
pub(crate) fn parse_hello(doc: &[u8]) -> Hello {
    let mut h = Hello {
        error: error_of(doc),
        ..Hello::default()
    };
    let s = |s: &[u8]| Some(text(s, TEXT_MAX));
    for (name, v) in elements(doc) {
        match (name, v) {
            (b"isWritablePrimary" | b"ismaster", Value::Bool(b)) => h.writable_primary = Some(b),
            (b"secondary", Value::Bool(b)) => h.secondary = Some(b),
            (b"arbiterOnly", Value::Bool(b)) => h.arbiter_only = Some(b),
            (b"setName", Value::String(v)) => h.set_name = s(v),
            (b"hosts", Value::Array(a)) => h.hosts = strings(a),
            (b"passives", Value::Array(a)) => h.passives = strings(a),
            (b"arbiters", Value::Array(a)) => h.arbiters = strings(a),
            (b"primary", Value::String(v)) => h.primary = s(v),
            (b"me", Value::String(v)) => h.me = s(v),
            (b"msg", Value::String(v)) => h.msg = s(v),
            (b"minWireVersion", v) => h.min_wire_version = v.as_i32(),
            (b"maxWireVersion", v) => h.max_wire_version = v.as_i32(),
            _ => {}
        }
    }
    h
}

/// What `buildInfo` said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildInfo {
    /// `version`, e.g. `7.0.5`.
    pub version: Option<String>,
    pub error: Option<CommandError>,
}

pub(crate) fn parse_build_info(doc: &[u8]) -> BuildInfo {
    BuildInfo {
        version: elements(doc).find_map(|(n, v)| match (n, v) {
            (b"version", Value::String(s)) => Some(text(s, TEXT_MAX)),
            _ => None,
        }),
        error: error_of(doc),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MongoStep {
    Hello,
    IsMaster,
    BuildInfo,
}

/// What the MongoDB conversation learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MongoFacts {
    /// The answer to `hello`, or to `isMaster` when `hello` was not known.
    pub hello: Option<Hello>,
    /// `hello` was not known (a server older than 4.4.2): `isMaster` answered.
    pub legacy: bool,
    pub build_info: Option<BuildInfo>,
    pub failure: Option<Failed<MongoStep>>,
    pub ended: Ending,
    pub elapsed: Duration,
}

async fn exchange<S>(
    wire: &mut Wire<'_, S>,
    command: Command,
    request_id: i32,
) -> Result<Vec<u8>, WireFailure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    wire.send(&request(command, request_id)).await?;
    loop {
        match parse_reply(wire.buffered(), request_id) {
            Ok(Some((doc, used))) => {
                let doc = doc.to_vec();
                wire.consume(used);
                return Ok(doc);
            }
            Ok(None) => {
                let want = wire.buffered().len() + 1;
                wire.fill(want).await?;
            }
            Err(ParseError::TooLarge) => return Err(WireFailure::TooLarge),
            Err(_) => return Err(wire.not_this_protocol()),
        }
    }
}

/// The conversation: `hello` (or `isMaster`), `buildInfo`, close.
pub(crate) async fn converse<S>(stream: &mut S, deadline: Instant) -> MongoFacts
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    let mut facts = MongoFacts {
        hello: None,
        legacy: false,
        build_info: None,
        failure: None,
        ended: Ending::Closed,
        elapsed: Duration::ZERO,
    };
    let mut wire = Wire::new(stream, deadline);
    let steps = [
        (MongoStep::Hello, Command::Hello, 1),
        (MongoStep::IsMaster, Command::IsMaster, 2),
        (MongoStep::BuildInfo, Command::BuildInfo, 3),
    ];
    for (step, command, id) in steps {
        if step == MongoStep::IsMaster && !facts.legacy {
            continue;
        }
        let doc = match exchange(&mut wire, command, id).await {
            Ok(d) => d,
            Err(failure) => {
                facts.ended = match failure {
                    WireFailure::NoReply => Ending::Deadline,
                    _ if wire.peer_ended() => Ending::ByServer,
                    _ => Ending::Closed,
                };
                facts.failure = Some(Failed { step, failure });
                break;
            }
        };
        match command {
            Command::Hello => {
                let h = parse_hello(&doc);
                facts.legacy = h
                    .error
                    .as_ref()
                    .is_some_and(|e| e.code == Some(COMMAND_NOT_FOUND));
                if !facts.legacy {
                    facts.hello = Some(h);
                }
            }
            Command::IsMaster => facts.hello = Some(parse_hello(&doc)),
            Command::BuildInfo => facts.build_info = Some(parse_build_info(&doc)),
        }
    }
    wire.close().await;
    facts.elapsed = start.elapsed();
    facts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::protocols::testing::{Act, fake_server, fixture_hex, measure_bytes};

    #[test]
    fn the_hello_request_by_the_specification() {
        assert_eq!(
            request(Command::Hello, 1),
            fixture_hex!("mongodb/hello_request.hex")
        );
    }

    #[test]
    fn replica_set_primary() {
        let reply = fixture_hex!("mongodb/hello_reply_primary.hex");
        let (doc, used) = parse_reply(&reply, 1).unwrap().unwrap();
        assert_eq!(used, reply.len());
        let h = parse_hello(doc);
        assert_eq!(h.error, None);
        assert_eq!(h.set_name.as_deref(), Some("rs0"));
        assert_eq!(h.writable_primary, Some(true));
        assert_eq!(h.secondary, Some(false));
        assert_eq!(
            h.hosts,
            [
                "mongo-0.mongo.svc.cluster.local:27017",
                "mongo-1.mongo.svc.cluster.local:27017"
            ]
        );
        assert_eq!(h.arbiters, ["mongo-arb.mongo.svc.cluster.local:27017"]);
        assert_eq!(
            h.primary.as_deref(),
            Some("mongo-0.mongo.svc.cluster.local:27017")
        );
        assert_eq!(
            h.me.as_deref(),
            Some("mongo-0.mongo.svc.cluster.local:27017")
        );
        assert_eq!(h.max_wire_version, Some(21));
        assert_eq!(parse_reply(&reply, 2), Err(ParseError::NotOurs));
    }

    #[test]
    fn mongos_old_server_and_build_info() {
        let reply = fixture_hex!("mongodb/hello_reply_mongos.hex");
        let h = parse_hello(parse_reply(&reply, 1).unwrap().unwrap().0);
        assert_eq!(h.msg.as_deref(), Some("isdbgrid"));
        assert_eq!(h.set_name, None);

        let reply = fixture_hex!("mongodb/hello_reply_command_not_found.hex");
        let h = parse_hello(parse_reply(&reply, 1).unwrap().unwrap().0);
        let e = h.error.unwrap();
        assert_eq!(e.code, Some(59));
        assert_eq!(e.code_name.as_deref(), Some("CommandNotFound"));

        let reply = fixture_hex!("mongodb/build_info_reply.hex");
        let b = parse_build_info(parse_reply(&reply, 3).unwrap().unwrap().0);
        assert_eq!(b.version.as_deref(), Some("7.0.5"));
        assert_eq!(b.error, None);
    }

    #[test]
    fn broken_replies() {
        assert_eq!(
            parse_reply(b"HTTP/1.1 200 OK\r\n\r\n", 1),
            Err(ParseError::NotMongo)
        );
        let mut reply = fixture_hex!("mongodb/hello_reply_primary.hex");
        assert_eq!(parse_reply(&reply[..40], 1), Ok(None));
        // A body that claims more than the message holds.
        reply[21] = 0xff;
        assert_eq!(parse_reply(&reply, 1), Err(ParseError::BadBson));
        assert_eq!(elements(b"\x05\0\0\0\0").count(), 0);
        assert_eq!(elements(b"\x04\0\0\0").count(), 0);
        // An element whose string runs past the end stops the walk.
        assert_eq!(elements(b"\x0d\0\0\0\x02a\0\xff\0\0\0\0").count(), 0);
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic_nor_allocate_past_their_bound(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..8192)
        ) {
            let used = measure_bytes(|| {
                let _ = parse_reply(&bytes, 1);
                let _ = parse_hello(&bytes);
                let _ = parse_build_info(&bytes);
            });
            // Three lists of HOSTS_MAX names, seven strings, of TEXT_MAX (3 bytes per
            // replaced byte), and the lists' own room.
            let bound = (3 * HOSTS_MAX + 7) * 3 * TEXT_MAX + 3 * HOSTS_MAX * 64;
            proptest::prop_assert!(used <= bound as u64, "{used}");
        }

        #[test]
        fn documents_with_a_valid_header_never_panic(
            tail in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)
        ) {
            let mut doc = u32::try_from(tail.len() + 5).unwrap().to_le_bytes().to_vec();
            doc.extend_from_slice(&tail);
            doc.push(0);
            let _ = parse_hello(&doc);
        }
    }

    async fn run(acts: Vec<Act>) -> (MongoFacts, Vec<u8>) {
        let (addr, server) = fake_server(acts).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let facts = converse(&mut s, Instant::now() + Duration::from_secs(5)).await;
        drop(s);
        (facts, server.await.unwrap())
    }

    #[tokio::test]
    async fn hello_then_build_info() {
        let hello = request(Command::Hello, 1);
        let build = request(Command::BuildInfo, 3);
        let (facts, got) = run(vec![
            Act::Read(hello.len()),
            Act::Send(fixture_hex!("mongodb/hello_reply_primary.hex")),
            Act::Read(build.len()),
            Act::Send(fixture_hex!("mongodb/build_info_reply.hex")),
        ])
        .await;
        assert_eq!(facts.failure, None);
        assert!(!facts.legacy);
        assert_eq!(facts.hello.unwrap().set_name.as_deref(), Some("rs0"));
        assert_eq!(facts.build_info.unwrap().version.as_deref(), Some("7.0.5"));
        assert_eq!(facts.ended, Ending::Closed);
        let mut want = hello;
        want.extend(build);
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn an_old_server_is_asked_is_master() {
        let hello = request(Command::Hello, 1);
        let is_master = request(Command::IsMaster, 2);
        let mut reply = fixture_hex!("mongodb/hello_reply_mongos.hex");
        reply[8] = 2; // responseTo 2
        let (facts, got) = run(vec![
            Act::Read(hello.len()),
            Act::Send(fixture_hex!("mongodb/hello_reply_command_not_found.hex")),
            Act::Read(is_master.len()),
            Act::Send(reply),
            Act::Close,
        ])
        .await;
        assert!(facts.legacy);
        assert_eq!(facts.hello.unwrap().msg.as_deref(), Some("isdbgrid"));
        // buildInfo went out and the server closed instead of answering.
        assert_eq!(
            facts.failure.map(|f| (f.step, f.failure)),
            Some((MongoStep::BuildInfo, WireFailure::Closed))
        );
        assert_eq!(facts.ended, Ending::ByServer);
        assert!(got.starts_with(&[hello, is_master].concat()));
    }
}
