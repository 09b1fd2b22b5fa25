//! Kafka: ApiVersions, then Metadata for no topics: the brokers the cluster advertises.
//!
//! What canreach sends (the Kafka protocol guide and the message schemas in Apache Kafka's
//! `clients/src/main/resources/common/message/`):
//!
//! 1. `ApiVersions` v0 (api key 18; every broker since 0.10 answers it, and answers it in v0
//!    even when it refuses the version). The answer says which `Metadata` versions it speaks.
//! 2. `Metadata` (api key 3), the newest version both sides speak between 1 and 13, asking
//!    for no topics (an empty array: topics are not our business, and an empty list creates
//!    none), `allow_auto_topic_creation` false.
//!
//! The answer lists the brokers as the cluster advertises them (`advertised.listeners`):
//! node id, host, port, rack; the cluster id and the controller. Clients then connect to
//! those names, so a broker that advertises `localhost` or a name only the cluster resolves is
//! the classic failure; the caller checks each broker as a target.
//!
//! How it ends: canreach closes the connection, as Kafka clients do.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::wire::Wire;
use super::{Ending, Failed, WireFailure, text};

pub(crate) const API_METADATA: i16 = 3;
pub(crate) const API_VERSIONS: i16 = 18;
/// The Metadata versions canreach speaks: 1 (empty means "no topics" from v1 on) to 13.
pub(crate) const METADATA_VERSIONS: std::ops::RangeInclusive<i16> = 1..=13;
/// The first flexible (compact, tagged) Metadata version.
const FLEXIBLE_FROM: i16 = 9;
/// The client id sent in every request header.
pub(crate) const CLIENT_ID: &str = "canreach";

/// The largest response read. ApiVersions is about 500 bytes; Metadata without topics ~50
/// bytes per broker.
pub(crate) const RESPONSE_MAX: usize = 256 * 1024;
/// The most brokers kept.
pub(crate) const BROKERS_MAX: usize = 256;
/// The most API ranges kept from ApiVersions.
const APIS_MAX: usize = 128;
/// The most of a host name, rack or cluster id kept.
pub(crate) const TEXT_MAX: usize = 256;

/// One request, framed: size, api key, api version, correlation id, client id, (tagged
/// fields in header v2), body.
fn frame(api_key: i16, version: i16, correlation_id: i32, header_v2: bool, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&api_key.to_be_bytes());
    m.extend_from_slice(&version.to_be_bytes());
    m.extend_from_slice(&correlation_id.to_be_bytes());
    // The client id is a plain nullable string even in header v2.
    m.extend_from_slice(&i16::try_from(CLIENT_ID.len()).unwrap_or(0).to_be_bytes());
    m.extend_from_slice(CLIENT_ID.as_bytes());
    if header_v2 {
        m.push(0); // no tagged fields
    }
    m.extend_from_slice(body);
    let mut out = u32::try_from(m.len()).unwrap_or(0).to_be_bytes().to_vec();
    out.extend(m);
    out
}

/// `ApiVersions` v0 (an empty body).
pub(crate) fn api_versions_request(correlation_id: i32) -> Vec<u8> {
    frame(API_VERSIONS, 0, correlation_id, false, &[])
}

/// `Metadata` at `version` (in [`METADATA_VERSIONS`]) for no topics.
pub(crate) fn metadata_request(version: i16, correlation_id: i32) -> Vec<u8> {
    let flexible = version >= FLEXIBLE_FROM;
    let mut body = Vec::new();
    if flexible {
        body.push(1); // compact array, 0 elements (length + 1)
    } else {
        body.extend_from_slice(&0i32.to_be_bytes()); // array, 0 elements
    }
    if version >= 4 {
        body.push(0); // allow_auto_topic_creation: false
    }
    if (8..=10).contains(&version) {
        body.push(0); // include_cluster_authorized_operations
    }
    if version >= 8 {
        body.push(0); // include_topic_authorized_operations
    }
    if flexible {
        body.push(0); // no tagged fields
    }
    frame(API_METADATA, version, correlation_id, flexible, &body)
}

/// A broker's supported versions of one API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRange {
    pub api_key: i16,
    pub min: i16,
    pub max: i16,
}

/// The answer to ApiVersions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersions {
    /// 0, or 35 (`UNSUPPORTED_VERSION`, with the ranges anyway).
    pub error_code: i16,
    pub apis: Vec<ApiRange>,
}

impl ApiVersions {
    /// The newest Metadata version both sides speak.
    pub(crate) fn metadata_version(&self) -> Option<i16> {
        let r = self.apis.iter().find(|a| a.api_key == API_METADATA)?;
        let hi = r.max.min(*METADATA_VERSIONS.end());
        let lo = r.min.max(*METADATA_VERSIONS.start());
        (lo <= hi).then_some(hi)
    }
}

/// A broker as advertised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// The answer to Metadata (no topics asked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub version: i16,
    pub brokers: Vec<Broker>,
    /// More brokers were listed than kept.
    pub brokers_cut: bool,
    pub cluster_id: Option<String>,
    pub controller_id: Option<i32>,
    /// v13's top-level error code, when the topic list was empty (as asked).
    pub error_code: Option<i16>,
}

/// Why bytes are not the Kafka response expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParseError {
    NotKafka,
    TooLarge,
    /// The body ends early or holds an impossible count.
    Malformed,
}

/// One framed response: its correlation id, the rest of it, and the bytes it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame<'a> {
    pub correlation_id: i32,
    pub body: &'a [u8],
    pub used: usize,
}

/// One framed response from the start of `buf`. `Ok(None)`: more bytes needed.
pub(crate) fn split_response(buf: &[u8]) -> Result<Option<Frame<'_>>, ParseError> {
    let Some(h) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
    if len < 4 {
        return Err(ParseError::NotKafka);
    }
    if len > RESPONSE_MAX {
        return Err(ParseError::TooLarge);
    }
    let Some(m) = buf.get(4..4 + len) else {
        return Ok(None);
    };
    Ok(Some(Frame {
        correlation_id: i32::from_be_bytes([m[0], m[1], m[2], m[3]]),
        body: &m[4..],
        used: 4 + len,
    }))
}

/// A cursor over a response body; every read is checked.
struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        if n > self.b.len() {
            return Err(ParseError::Malformed);
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn i16(&mut self) -> Result<i16, ParseError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Result<i32, ParseError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn uvarint(&mut self) -> Result<u64, ParseError> {
        let mut v = 0u64;
        for shift in (0..35).step_by(7) {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ParseError::Malformed)
    }
    /// An array count, checked against the bytes left (each element takes at least
    /// `min_size` bytes), so a peer's count never sizes an allocation.
    fn count(&mut self, flexible: bool, min_size: usize) -> Result<Option<usize>, ParseError> {
        let n: i64 = if flexible {
            i64::try_from(self.uvarint()?).map_err(|_| ParseError::Malformed)? - 1
        } else {
            i64::from(self.i32()?)
        };
        if n < 0 {
            return Ok(None);
        }
        let n = usize::try_from(n).map_err(|_| ParseError::Malformed)?;
        if n.saturating_mul(min_size) > self.b.len() {
            return Err(ParseError::Malformed);
        }
        Ok(Some(n))
    }
    fn string(&mut self, flexible: bool) -> Result<Option<&'a [u8]>, ParseError> {
        let n: i64 = if flexible {
            i64::try_from(self.uvarint()?).map_err(|_| ParseError::Malformed)? - 1
        } else {
            i64::from(self.i16()?)
        };
        if n < 0 {
            return Ok(None);
        }
        self.take(usize::try_from(n).map_err(|_| ParseError::Malformed)?)
            .map(Some)
    }
    fn tagged_fields(&mut self) -> Result<(), ParseError> {
        let n = self.uvarint()?;
        for _ in 0..n.min(1024) {
            self.uvarint()?; // tag
            let size = usize::try_from(self.uvarint()?).map_err(|_| ParseError::Malformed)?;
            self.take(size)?;
        }
        Ok(())
    }
}

/// The body of an ApiVersions v0 response (after the correlation id).
pub(crate) fn parse_api_versions(body: &[u8]) -> Result<ApiVersions, ParseError> {
    let mut c = Cursor { b: body };
    let error_code = c.i16()?;
    let n = c.count(false, 6)?.unwrap_or(0);
    let mut apis = Vec::new();
    for _ in 0..n {
        let r = ApiRange {
            api_key: c.i16()?,
            min: c.i16()?,
            max: c.i16()?,
        };
        if apis.len() < APIS_MAX {
            apis.push(r);
        }
    }
    Ok(ApiVersions { error_code, apis })
}

/// The body of a Metadata response at `version` (after the correlation id).
pub(crate) fn parse_metadata(version: i16, body: &[u8]) -> Result<Metadata, ParseError> {
    let flexible = version >= FLEXIBLE_FROM;
    let mut c = Cursor { b: body };
    if flexible {
        c.tagged_fields()?; // response header v1
    }
    if version >= 3 {
        c.i32()?; // throttle_time_ms
    }
    let n = c.count(flexible, 10)?.unwrap_or(0);
    let mut brokers = Vec::new();
    for _ in 0..n {
        let node_id = c.i32()?;
        let host = c.string(flexible)?.ok_or(ParseError::Malformed)?;
        let port = c.i32()?;
        let rack = if version >= 1 {
            c.string(flexible)?
        } else {
            None
        };
        if flexible {
            c.tagged_fields()?;
        }
        if brokers.len() < BROKERS_MAX {
            brokers.push(Broker {
                node_id,
                host: text(host, TEXT_MAX),
                port,
                rack: rack.map(|r| text(r, TEXT_MAX)),
            });
        }
    }
    let cluster_id = if version >= 2 {
        c.string(flexible)?.map(|s| text(s, TEXT_MAX))
    } else {
        None
    };
    let controller_id = if version >= 1 { Some(c.i32()?) } else { None };
    // Topics: none were asked. Past them come only fields of no interest here, except v13's
    // error code, read when the list is empty as asked.
    let topics = c.count(flexible, 1)?.unwrap_or(0);
    let mut error_code = None;
    if topics == 0 && version >= 13 {
        error_code = Some(c.i16()?);
    }
    Ok(Metadata {
        version,
        brokers_cut: n > brokers.len(),
        brokers,
        cluster_id,
        controller_id,
        error_code,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KafkaStep {
    ApiVersions,
    Metadata,
}

/// What the Kafka conversation learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaFacts {
    pub api_versions: Option<ApiVersions>,
    /// The broker speaks no Metadata version canreach speaks (its range, when it has one).
    pub no_common_metadata_version: Option<Option<(i16, i16)>>,
    pub metadata: Option<Metadata>,
    pub failure: Option<Failed<KafkaStep>>,
    pub ended: Ending,
    pub elapsed: Duration,
}

async fn exchange<S>(
    wire: &mut Wire<'_, S>,
    request: &[u8],
    correlation_id: i32,
) -> Result<Vec<u8>, WireFailure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    wire.send(request).await?;
    loop {
        match split_response(wire.buffered()) {
            Ok(Some(f)) => {
                if f.correlation_id != correlation_id {
                    return Err(wire.not_this_protocol());
                }
                let (body, used) = (f.body.to_vec(), f.used);
                wire.consume(used);
                return Ok(body);
            }
            Ok(None) => {
                let want = wire.buffered().len() + 1;
                wire.fill(want).await?;
            }
            // A length over the bound in answer to ApiVersions is not Kafka (`HTTP` reads as
            // 1.2 GB); the caller cannot tell better.
            Err(_) => return Err(wire.not_this_protocol()),
        }
    }
}

/// The conversation: ApiVersions, Metadata, close.
pub(crate) async fn converse<S>(stream: &mut S, deadline: Instant) -> KafkaFacts
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    let mut facts = KafkaFacts {
        api_versions: None,
        no_common_metadata_version: None,
        metadata: None,
        failure: None,
        ended: Ending::Closed,
        elapsed: Duration::ZERO,
    };
    let mut wire = Wire::new(stream, deadline);
    let fail = |wire: &Wire<'_, S>, step, failure: WireFailure| {
        let ended = match failure {
            WireFailure::NoReply => Ending::Deadline,
            _ if wire.peer_ended() => Ending::ByServer,
            _ => Ending::Closed,
        };
        (Some(Failed { step, failure }), ended)
    };
    let versions = match exchange(&mut wire, &api_versions_request(1), 1).await {
        Ok(body) => match parse_api_versions(&body) {
            Ok(v) => v,
            Err(_) => {
                let f = wire.not_this_protocol();
                (facts.failure, facts.ended) = fail(&wire, KafkaStep::ApiVersions, f);
                wire.close().await;
                facts.elapsed = start.elapsed();
                return facts;
            }
        },
        Err(f) => {
            (facts.failure, facts.ended) = fail(&wire, KafkaStep::ApiVersions, f);
            wire.close().await;
            facts.elapsed = start.elapsed();
            return facts;
        }
    };
    let version = versions.metadata_version();
    if version.is_none() {
        facts.no_common_metadata_version = Some(
            versions
                .apis
                .iter()
                .find(|a| a.api_key == API_METADATA)
                .map(|a| (a.min, a.max)),
        );
    }
    facts.api_versions = Some(versions);
    if let Some(version) = version {
        match exchange(&mut wire, &metadata_request(version, 2), 2).await {
            Ok(body) => match parse_metadata(version, &body) {
                Ok(m) => facts.metadata = Some(m),
                Err(_) => {
                    let f = WireFailure::NotThisProtocol {
                        first_bytes: body[..body.len().min(crate::session::FIRST_BYTES_MAX)]
                            .to_vec(),
                    };
                    (facts.failure, facts.ended) = fail(&wire, KafkaStep::Metadata, f);
                }
            },
            Err(f) => (facts.failure, facts.ended) = fail(&wire, KafkaStep::Metadata, f),
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

    fn body(framed: &[u8], id: i32) -> Vec<u8> {
        let f = split_response(framed).unwrap().unwrap();
        assert_eq!((f.correlation_id, f.used), (id, framed.len()));
        f.body.to_vec()
    }

    #[test]
    fn requests_by_the_specification() {
        assert_eq!(
            api_versions_request(1),
            fixture_hex!("kafka/api_versions_request.hex")
        );
        assert_eq!(
            metadata_request(8, 2),
            fixture_hex!("kafka/metadata_v8_request.hex")
        );
        assert_eq!(
            metadata_request(12, 2),
            fixture_hex!("kafka/metadata_v12_request.hex")
        );
        // v1: the empty array only.
        assert_eq!(metadata_request(1, 2).len(), 4 + 2 + 2 + 4 + 2 + 8 + 4);
    }

    #[test]
    fn api_versions_pick_the_newest_common_metadata() {
        let v =
            parse_api_versions(&body(&fixture_hex!("kafka/api_versions_response.hex"), 1)).unwrap();
        assert_eq!(v.error_code, 0);
        assert!(v.apis.contains(&ApiRange {
            api_key: 3,
            min: 0,
            max: 12
        }));
        assert_eq!(v.metadata_version(), Some(12));
        let newer = ApiVersions {
            error_code: 0,
            apis: vec![ApiRange {
                api_key: 3,
                min: 4,
                max: 14,
            }],
        };
        assert_eq!(newer.metadata_version(), Some(13));
        let future = ApiVersions {
            error_code: 0,
            apis: vec![ApiRange {
                api_key: 3,
                min: 14,
                max: 15,
            }],
        };
        assert_eq!(future.metadata_version(), None);
        let none = ApiVersions {
            error_code: 0,
            apis: vec![],
        };
        assert_eq!(none.metadata_version(), None);
    }

    #[test]
    fn metadata_lists_the_advertised_brokers() {
        for (fixture, version) in [
            (fixture_hex!("kafka/metadata_v8_response.hex"), 8),
            (fixture_hex!("kafka/metadata_v12_response.hex"), 12),
        ] {
            let m = parse_metadata(version, &body(&fixture, 2)).unwrap();
            assert_eq!(
                m.brokers,
                [
                    Broker {
                        node_id: 1,
                        host: "localhost".into(),
                        port: 9092,
                        rack: None
                    },
                    Broker {
                        node_id: 2,
                        host: "kafka-2.kafka.svc.cluster.local".into(),
                        port: 9092,
                        rack: Some("eu-west-1b".into())
                    },
                ],
                "v{version}"
            );
            assert_eq!(m.cluster_id.as_deref(), Some("MkU3OEVBNTcwNTJENDM2Qk"));
            assert_eq!(m.controller_id, Some(1));
            assert!(!m.brokers_cut);
        }
    }

    #[test]
    fn impossible_counts_are_refused_without_allocating() {
        // throttle, then a broker count of 2^31-1 in a 10-byte body.
        let body = [0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0];
        let used = measure_bytes(|| {
            assert_eq!(parse_metadata(8, &body), Err(ParseError::Malformed));
            assert_eq!(
                parse_api_versions(&[0, 0, 0x7f, 0xff, 0xff, 0xff]),
                Err(ParseError::Malformed)
            );
            // Flexible: a varint count of 2^28.
            assert_eq!(
                parse_metadata(12, &[0, 0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x01]),
                Err(ParseError::Malformed)
            );
        });
        assert_eq!(used, 0);
        assert_eq!(split_response(b"HTTP/1.1 400"), Err(ParseError::TooLarge));
        assert_eq!(split_response(&[0, 0, 0, 1, 0]), Err(ParseError::NotKafka));
    }

    proptest::proptest! {
        #[test]
        fn brokers_of_any_names_are_bounded(
            hosts in proptest::collection::vec(
                proptest::collection::vec(proptest::num::u8::ANY, 0..2000), 0..40),
        ) {
            // A well-formed v8 body with these host names and no racks.
            let mut body = 0i32.to_be_bytes().to_vec();
            body.extend_from_slice(&i32::try_from(hosts.len()).unwrap().to_be_bytes());
            for (i, h) in hosts.iter().enumerate() {
                body.extend_from_slice(&i32::try_from(i).unwrap().to_be_bytes());
                body.extend_from_slice(&i16::try_from(h.len()).unwrap().to_be_bytes());
                body.extend_from_slice(h);
                body.extend_from_slice(&9092i32.to_be_bytes());
                body.extend_from_slice(&(-1i16).to_be_bytes());
            }
            body.extend_from_slice(&(-1i16).to_be_bytes());
            body.extend_from_slice(&1i32.to_be_bytes());
            body.extend_from_slice(&0i32.to_be_bytes());
            let mut m = None;
            let used = measure_bytes(|| m = Some(parse_metadata(8, &body)));
            let m = m.unwrap().unwrap();
            proptest::prop_assert_eq!(m.brokers.len(), hosts.len());
            proptest::prop_assert!(m.brokers.iter().all(|b| b.host.len() <= 3 * TEXT_MAX));
            // Each kept name is cut: never the 2000 bytes given.
            let bound = hosts.len() * (3 * TEXT_MAX + 64) + 4096;
            proptest::prop_assert!(used <= bound as u64, "{used}");
        }

        #[test]
        fn parsers_never_panic_nor_allocate_past_their_bound(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..8192),
            version in 0i16..16,
        ) {
            let used = measure_bytes(|| {
                let _ = parse_api_versions(&bytes);
                let _ = parse_metadata(version, &bytes);
            });
            // The kept brokers (two strings each) and API ranges.
            let bound = BROKERS_MAX * (2 * 3 * TEXT_MAX + 64) + APIS_MAX * 6 + 4096;
            proptest::prop_assert!(used <= bound as u64, "{used}");
        }
    }

    #[tokio::test]
    async fn api_versions_then_metadata_over_loopback() {
        let av = api_versions_request(1);
        let md = metadata_request(12, 2);
        let (addr, server) = fake_server(vec![
            Act::Read(av.len()),
            Act::Send(fixture_hex!("kafka/api_versions_response.hex")),
            Act::Read(md.len()),
            Act::Send(fixture_hex!("kafka/metadata_v12_response.hex")),
        ])
        .await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let facts = converse(&mut s, Instant::now() + Duration::from_secs(5)).await;
        drop(s);
        assert_eq!(facts.failure, None);
        let m = facts.metadata.unwrap();
        assert_eq!(m.version, 12);
        assert_eq!(m.brokers[0].host, "localhost");
        assert_eq!(facts.ended, Ending::Closed);
        assert_eq!(server.await.unwrap(), [av, md].concat());
    }

    #[tokio::test]
    async fn an_http_server_is_not_kafka() {
        let (addr, _server) = fake_server(vec![
            Act::Read(api_versions_request(1).len()),
            Act::Send(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()),
            Act::Close,
        ])
        .await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let facts = converse(&mut s, Instant::now() + Duration::from_secs(5)).await;
        assert!(matches!(
            facts.failure,
            Some(Failed {
                step: KafkaStep::ApiVersions,
                failure: WireFailure::NotThisProtocol { .. }
            })
        ));
    }
}
