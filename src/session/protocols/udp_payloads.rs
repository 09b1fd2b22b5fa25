//! UDP: one harmless datagram per usual service, and whether a reply is that service's answer.
//!
//! A UDP port that is open says nothing unless it is asked something it understands, and
//! `nc -u` reports "succeeded" for silence. So each usual service gets a request that makes
//! its server answer without changing anything, built from the protocol's specification (the
//! facts of which services answer what are also in nmap's payload list):
//!
//! | service | port | request | its answer, recognised by |
//! |---|---|---|---|
//! | DNS | 53 | a query for `.` NS, recursion not asked | the id, QR set |
//! | mDNS | 5353 | a query for `_services._dns-sd._udp.local` PTR (a unicast reply, RFC 6762 §6.7) | the id, QR set |
//! | NTP | 123 | a 48-byte client packet (mode 3, version 4) | mode 4, our transmit time as its origin |
//! | SNMP | 161 | SNMPv3 engine discovery: a GET with no user (RFC 3414 §4) | version 3, our msgID (a Report) |
//! | STUN | 3478 | a Binding request (RFC 8489) | the magic cookie and our transaction id |
//! | NetBIOS name | 137 | a node status query for `*` (RFC 1002) | the id, response bit |
//! | memcached | 11211 | `version` in a UDP frame | our request id |
//! | QUIC | 443 | a 1200-byte packet of a reserved version (RFC 9000 §6, §15) | a Version Negotiation echoing our connection ids |
//! | portmapper | 111 | an RPC `NULL` call to program 100000 v2 (RFC 5531) | our xid, a reply |
//! | CoAP | 5683 | an empty confirmable message, a "CoAP ping" (RFC 7252 §4.3) | our message id |
//!
//! Some services answer no harmless datagram at all, and silence from them is normal; the
//! table says so instead of a payload ([`Silence`]): syslog never answers, WireGuard and RADIUS
//! answer only a peer they know, and TFTP answers from another port (which a connected socket
//! never sees). Anything else: `--payload HEX`, where any reply counts ([`custom`]).
//!
//! The ids that make a reply ours come from a caller-supplied [`Nonce`] (random bytes), so a
//! stale or spoofed datagram is not taken for the answer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::text;

/// The most of a reply kept when it is not the service's answer.
pub(crate) const FOREIGN_MAX: usize = 256;
/// The most of a version, software or kiss code kept.
const TEXT_MAX: usize = 128;
/// The most QUIC versions kept.
const VERSIONS_MAX: usize = 16;

/// A service with a known way to make it answer, or a known silence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UdpService {
    Dns,
    Mdns,
    Ntp,
    Snmp,
    Stun,
    NetbiosNs,
    Memcached,
    Quic,
    Portmap,
    Coap,
    Syslog,
    WireGuard,
    Radius,
    Tftp,
}

/// Why a service gives no answer to a harmless datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Silence {
    /// It never answers anything (syslog).
    NeverAnswers,
    /// It answers only a peer it knows: a key (WireGuard) or a shared secret (RADIUS,
    /// RFC 2865 §2: requests from unknown clients are silently discarded).
    OnlyKnownPeers,
    /// It answers from another port (TFTP, RFC 1350 §4), which a connected socket filters out.
    AnswersFromAnotherPort,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub service: UdpService,
    /// The name used by `--protocol` and `udp://` URLs.
    pub name: &'static str,
    pub ports: &'static [u16],
    /// `None`: a request exists ([`request`]). `Some`: why none does.
    pub silence: Option<Silence>,
}

/// Every service, in the order of the module's table.
pub(crate) const TABLE: &[Entry] = &[
    row(UdpService::Dns, "dns", &[53], None),
    row(UdpService::Mdns, "mdns", &[5353], None),
    row(UdpService::Ntp, "ntp", &[123], None),
    row(UdpService::Snmp, "snmp", &[161], None),
    row(UdpService::Stun, "stun", &[3478], None),
    row(UdpService::NetbiosNs, "netbios-ns", &[137], None),
    row(UdpService::Memcached, "memcached", &[11211], None),
    row(UdpService::Quic, "quic", &[443], None),
    row(UdpService::Portmap, "portmap", &[111], None),
    row(UdpService::Coap, "coap", &[5683], None),
    row(
        UdpService::Syslog,
        "syslog",
        &[514],
        Some(Silence::NeverAnswers),
    ),
    row(
        UdpService::WireGuard,
        "wireguard",
        &[51820],
        Some(Silence::OnlyKnownPeers),
    ),
    row(
        UdpService::Radius,
        "radius",
        &[1812, 1813],
        Some(Silence::OnlyKnownPeers),
    ),
    row(
        UdpService::Tftp,
        "tftp",
        &[69],
        Some(Silence::AnswersFromAnotherPort),
    ),
];

const fn row(
    service: UdpService,
    name: &'static str,
    ports: &'static [u16],
    silence: Option<Silence>,
) -> Entry {
    Entry {
        service,
        name,
        ports,
        silence,
    }
}

/// The entry for a port's usual UDP service.
pub(crate) fn for_port(port: u16) -> Option<&'static Entry> {
    TABLE.iter().find(|e| e.ports.contains(&port))
}

/// The entry for a name (`dns`, `ntp` …), case-insensitive.
pub(crate) fn by_name(name: &str) -> Option<&'static Entry> {
    TABLE.iter().find(|e| e.name.eq_ignore_ascii_case(name))
}

/// Random bytes from the caller, for the ids an answer must echo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Nonce(pub [u8; 16]);

impl Nonce {
    fn u16(&self) -> u16 {
        u16::from_be_bytes([self.0[0], self.0[1]])
    }
    fn u32(&self) -> u32 {
        u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }
}

/// What an answer must match.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    Dns { id: u16 },
    Ntp { transmit: [u8; 8] },
    Snmp { msg_id: u32 },
    Stun { txid: [u8; 12] },
    Netbios { id: u16 },
    Memcached { id: u16 },
    Quic { dcid: [u8; 8], scid: [u8; 8] },
    Rpc { xid: u32 },
    Coap { id: u16 },
    Any,
}

/// A request for one service: the datagram, and how to recognise its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UdpRequest {
    pub service: Option<UdpService>,
    pub payload: Vec<u8>,
    expect: Expect,
}

/// A NetBIOS node status query (NBSTAT) for the name `*`, with transaction id `id`.
fn netbios_status_query(id: u16) -> Vec<u8> {
    let mut p = id.to_be_bytes().to_vec();
    p.extend_from_slice(&[0x00, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
    // The name `*` padded with NULs to 16 bytes, first-level encoded (RFC 1001 §14.1): each
    // half-byte becomes 'A' + its value.
    p.push(0x20);
    let mut name = [0u8; 16];
    name[0] = b'*';
    for b in name {
        p.push(b'A' + (b >> 4));
        p.push(b'A' + (b & 0x0F));
    }
    p.push(0);
    p.extend_from_slice(&[0x00, 0x21, 0x00, 0x01]); // NBSTAT, IN
    p
}

/// A QUIC long-header packet of a reserved version, which a server answers with Version
/// Negotiation.
fn quic_version_probe(dcid: &[u8; 8], scid: &[u8; 8]) -> Vec<u8> {
    let mut p = vec![0xC0];
    p.extend_from_slice(&QUIC_RESERVED_VERSION.to_be_bytes());
    p.push(8);
    p.extend_from_slice(dcid);
    p.push(8);
    p.extend_from_slice(scid);
    // Servers answer an unknown version only in a datagram large enough to start a
    // connection (RFC 9000 §5.2.2, §14.1).
    p.resize(1200, 0);
    p
}

/// The request for `service`, its ids from `nonce`. `None` for a service with a known
/// silence.
pub(crate) fn request(service: UdpService, nonce: &Nonce) -> Option<UdpRequest> {
    let n = nonce;
    let (payload, expect) = match service {
        UdpService::Dns => (dns_query(n.u16(), &[], 2), Expect::Dns { id: n.u16() }),
        UdpService::Mdns => (
            dns_query(n.u16(), &["_services", "_dns-sd", "_udp", "local"], 12),
            Expect::Dns { id: n.u16() },
        ),
        UdpService::Ntp => {
            let mut transmit = [0u8; 8];
            transmit.copy_from_slice(&n.0[..8]);
            let mut p = vec![0u8; 48];
            // Leap 3 (unsynchronised), version 4, mode 3 (client).
            p[0] = 0xE3;
            p[40..48].copy_from_slice(&transmit);
            (p, Expect::Ntp { transmit })
        }
        UdpService::Snmp => {
            // A positive 31-bit msgID and request-id.
            let id = n.u32() & 0x7FFF_FFFF;
            let id = if id == 0 { 1 } else { id };
            (snmp_discovery(id), Expect::Snmp { msg_id: id })
        }
        UdpService::Stun => {
            let mut txid = [0u8; 12];
            txid.copy_from_slice(&n.0[..12]);
            let mut p = vec![0x00, 0x01, 0x00, 0x00];
            p.extend_from_slice(&STUN_MAGIC.to_be_bytes());
            p.extend_from_slice(&txid);
            (p, Expect::Stun { txid })
        }
        UdpService::NetbiosNs => (
            netbios_status_query(n.u16()),
            Expect::Netbios { id: n.u16() },
        ),
        UdpService::Memcached => {
            let mut p = n.u16().to_be_bytes().to_vec();
            p.extend_from_slice(&[0, 0, 0, 1, 0, 0]); // sequence 0 of 1 datagram, reserved
            p.extend_from_slice(b"version\r\n");
            (p, Expect::Memcached { id: n.u16() })
        }
        UdpService::Quic => {
            let mut dcid = [0u8; 8];
            let mut scid = [0u8; 8];
            dcid.copy_from_slice(&n.0[..8]);
            scid.copy_from_slice(&n.0[8..16]);
            (
                quic_version_probe(&dcid, &scid),
                Expect::Quic { dcid, scid },
            )
        }
        UdpService::Portmap => {
            let xid = n.u32();
            let mut p = xid.to_be_bytes().to_vec();
            for word in [0u32, 2, 100_000, 2, 0, 0, 0, 0, 0] {
                // CALL, RPC version 2, portmapper v2, NULL, AUTH_NULL credential and verifier.
                p.extend_from_slice(&word.to_be_bytes());
            }
            (p, Expect::Rpc { xid })
        }
        UdpService::Coap => {
            let mut p = vec![0x40, 0x00];
            p.extend_from_slice(&n.u16().to_be_bytes());
            (p, Expect::Coap { id: n.u16() })
        }
        UdpService::Syslog | UdpService::WireGuard | UdpService::Radius | UdpService::Tftp => {
            return None;
        }
    };
    Some(UdpRequest {
        service: Some(service),
        payload,
        expect,
    })
}

/// A request from `--payload HEX`: any reply is an answer.
pub(crate) fn custom(payload: Vec<u8>) -> UdpRequest {
    UdpRequest {
        service: None,
        payload,
        expect: Expect::Any,
    }
}

const STUN_MAGIC: u32 = 0x2112_A442;
/// A version of the form 0x?a?a?a?a, reserved to force version negotiation (RFC 9000 §15).
pub(crate) const QUIC_RESERVED_VERSION: u32 = 0x1A2A_3A4A;

fn dns_query(id: u16, labels: &[&str], qtype: u16) -> Vec<u8> {
    let mut p = id.to_be_bytes().to_vec();
    // No flags (a standard query, recursion not desired), one question.
    p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for l in labels {
        p.push(u8::try_from(l.len()).unwrap_or(0));
        p.extend_from_slice(l.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&1u16.to_be_bytes()); // IN
    p
}

/// BER: a tag, a definite length, the value.
fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = value.len();
    if n < 0x80 {
        out.push(u8::try_from(n).unwrap_or(0));
    } else if n < 0x100 {
        out.extend_from_slice(&[0x81, u8::try_from(n).unwrap_or(0)]);
    } else {
        out.push(0x82);
        out.extend_from_slice(&u16::try_from(n).unwrap_or(0).to_be_bytes());
    }
    out.extend_from_slice(value);
    out
}

/// A BER INTEGER, in the fewest bytes (two's complement, non-negative here).
fn ber_int(v: u32) -> Vec<u8> {
    let b = v.to_be_bytes();
    let mut i = 0;
    while i < 3 && b[i] == 0 && b[i + 1] < 0x80 {
        i += 1;
    }
    let mut value = Vec::new();
    if b[i] >= 0x80 {
        value.push(0);
    }
    value.extend_from_slice(&b[i..]);
    tlv(0x02, &value)
}

/// SNMPv3 engine discovery (RFC 3414 §4): noAuthNoPriv, reportable, an empty user and engine,
/// a GetRequest with no variables. The agent answers with a Report naming its engine.
fn snmp_discovery(id: u32) -> Vec<u8> {
    let header = [
        ber_int(id),
        ber_int(65507),     // msgMaxSize
        tlv(0x04, &[0x04]), // msgFlags: reportable
        ber_int(3),         // msgSecurityModel: USM
    ]
    .concat();
    let usm = tlv(
        0x30,
        &[
            tlv(0x04, &[]), // engine id
            ber_int(0),     // boots
            ber_int(0),     // time
            tlv(0x04, &[]), // user
            tlv(0x04, &[]), // authentication parameters
            tlv(0x04, &[]), // privacy parameters
        ]
        .concat(),
    );
    let pdu = tlv(
        0xA0,
        &[ber_int(id), ber_int(0), ber_int(0), tlv(0x30, &[])].concat(),
    );
    let scoped = tlv(0x30, &[tlv(0x04, &[]), tlv(0x04, &[]), pdu].concat());
    tlv(
        0x30,
        &[ber_int(3), tlv(0x30, &header), tlv(0x04, &usm), scoped].concat(),
    )
}

/// What a reply says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UdpReply {
    /// The service's answer to this request.
    Answer(Answer),
    /// A datagram, but not this service's answer to this request (another protocol, or an id
    /// that is not ours): ≤ [`FOREIGN_MAX`] bytes of it.
    Foreign { first_bytes: Vec<u8> },
}

/// The answer's facts, per service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// DNS or mDNS: the response code (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED), the
    /// answer count, the truncation bit.
    Dns {
        rcode: u8,
        answers: u16,
        truncated: bool,
    },
    /// NTP: version, stratum (0: a kiss-o'-death, its code e.g. `RATE`, `DENY`, `RSTR`), and
    /// the leap indicator 3 (the server's clock is not synchronised).
    Ntp {
        version: u8,
        stratum: u8,
        kiss_code: Option<String>,
        unsynchronised: bool,
    },
    /// SNMPv3: the PDU type (0xA8 Report, 0xA2 Response) and the agent's engine.
    Snmp {
        pdu: u8,
        engine_id: Vec<u8>,
        engine_boots: Option<u32>,
        engine_time: Option<u32>,
    },
    /// STUN: success or error (with its code), this machine's address as the server saw it
    /// (XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS), the server's SOFTWARE.
    Stun {
        success: bool,
        error_code: Option<u16>,
        mapped: Option<SocketAddr>,
        software: Option<String>,
    },
    /// NetBIOS: the response code.
    Netbios { rcode: u8 },
    /// memcached: `VERSION 1.6.18`'s version.
    Memcached { version: Option<String> },
    /// QUIC: the versions the server speaks.
    Quic { versions: Vec<u32> },
    /// RPC: accepted (with its accept status: 0 SUCCESS) or denied.
    Rpc {
        accepted: bool,
        accept_stat: Option<u32>,
    },
    /// CoAP: the message type (2 ACK, 3 RST) and code.
    Coap { kind: u8, code: u8 },
    /// A custom payload's reply: its length.
    Any { len: usize },
}

impl UdpRequest {
    /// Whether `reply` is this request's answer, and what it says. Pure, never panics, and
    /// allocates only bounded facts.
    pub(crate) fn recognise(&self, reply: &[u8]) -> UdpReply {
        let answer = match &self.expect {
            Expect::Dns { id } => dns(reply, *id),
            Expect::Ntp { transmit } => ntp(reply, transmit),
            Expect::Snmp { msg_id } => snmp(reply, *msg_id),
            Expect::Stun { txid } => stun(reply, txid),
            Expect::Netbios { id } => dns(reply, *id).map(|a| match a {
                Answer::Dns { rcode, .. } => Answer::Netbios { rcode },
                a => a,
            }),
            Expect::Memcached { id } => memcached(reply, *id),
            Expect::Quic { dcid, scid } => quic(reply, dcid, scid),
            Expect::Rpc { xid } => rpc(reply, *xid),
            Expect::Coap { id } => coap(reply, *id),
            Expect::Any => Some(Answer::Any { len: reply.len() }),
        };
        match answer {
            Some(a) => UdpReply::Answer(a),
            None => UdpReply::Foreign {
                first_bytes: reply[..reply.len().min(FOREIGN_MAX)].to_vec(),
            },
        }
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn dns(r: &[u8], id: u16) -> Option<Answer> {
    let flags = be16(r, 2)?;
    // Our id, a response (QR), a standard query's opcode, and a whole header.
    if be16(r, 0)? != id || flags & 0x8000 == 0 || (flags >> 11) & 0xF != 0 || r.len() < 12 {
        return None;
    }
    Some(Answer::Dns {
        rcode: u8::try_from(flags & 0xF).unwrap_or(0),
        answers: be16(r, 6)?,
        truncated: flags & 0x0200 != 0,
    })
}

fn ntp(r: &[u8], transmit: &[u8; 8]) -> Option<Answer> {
    if r.len() < 48 || r[0] & 0x07 != 4 || r.get(24..32)? != transmit {
        return None;
    }
    let stratum = r[1];
    let kiss_code = (stratum == 0).then(|| text(&r[12..16], TEXT_MAX));
    Some(Answer::Ntp {
        version: (r[0] >> 3) & 0x07,
        stratum,
        kiss_code,
        unsynchronised: r[0] >> 6 == 3,
    })
}

/// A minimal BER reader: one tag-length-value from the start of `b`.
fn ber(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = rest.get(..n)?;
        let len = bytes.iter().fold(0usize, |a, &x| (a << 8) | usize::from(x));
        (len, &rest[n..])
    };
    let value = rest.get(..len)?;
    Some((tag, value, &rest[len..]))
}

fn ber_uint(v: &[u8]) -> Option<u32> {
    if v.is_empty() || v.len() > 5 || (v.len() == 5 && v[0] != 0) {
        return None;
    }
    Some(v.iter().fold(0u32, |a, &x| (a << 8) | u32::from(x)))
}

fn snmp(r: &[u8], msg_id: u32) -> Option<Answer> {
    let (0x30, msg, _) = ber(r)? else { return None };
    let (0x02, version, rest) = ber(msg)? else {
        return None;
    };
    if ber_uint(version)? != 3 {
        return None;
    }
    let (0x30, header, rest) = ber(rest)? else {
        return None;
    };
    let (0x02, id, _) = ber(header)? else {
        return None;
    };
    if ber_uint(id)? != msg_id {
        return None;
    }
    let (0x04, usm, rest) = ber(rest)? else {
        return None;
    };
    let (mut engine_id, mut engine_boots, mut engine_time) = (Vec::new(), None, None);
    if let Some((0x30, params, _)) = ber(usm)
        && let Some((0x04, engine, params)) = ber(params)
    {
        engine_id = engine[..engine.len().min(32)].to_vec();
        if let Some((0x02, boots, params)) = ber(params) {
            engine_boots = ber_uint(boots);
            if let Some((0x02, time, _)) = ber(params) {
                engine_time = ber_uint(time);
            }
        }
    }
    // The scoped PDU in plain text (noAuthNoPriv): context engine id, context name, the PDU.
    let pdu = match ber(rest) {
        Some((0x30, scoped, _)) => {
            let (_, _, scoped) = ber(scoped)?;
            let (_, _, scoped) = ber(scoped)?;
            ber(scoped)?.0
        }
        _ => 0,
    };
    Some(Answer::Snmp {
        pdu,
        engine_id,
        engine_boots,
        engine_time,
    })
}

fn stun(r: &[u8], txid: &[u8; 12]) -> Option<Answer> {
    let kind = be16(r, 0)?;
    if be32(r, 4)? != STUN_MAGIC || r.get(8..20)? != txid {
        return None;
    }
    let success = match kind {
        0x0101 => true,
        0x0111 => false,
        _ => return None,
    };
    let len = usize::from(be16(r, 2)?);
    let mut attrs = r.get(20..20 + len).unwrap_or(&r[20..]);
    let (mut xor_mapped, mut mapped, mut software, mut error_code) = (None, None, None, None);
    while let (Some(t), Some(l)) = (be16(attrs, 0), be16(attrs, 2)) {
        let l = usize::from(l);
        let Some(v) = attrs.get(4..4 + l) else { break };
        match t {
            0x0020 => xor_mapped = stun_address(v, Some(txid)),
            0x0001 => mapped = stun_address(v, None),
            0x8022 => software = Some(text(v, TEXT_MAX)),
            0x0009 if v.len() >= 4 => {
                error_code = Some(u16::from(v[2] & 7) * 100 + u16::from(v[3]))
            }
            _ => {}
        }
        // Attributes are padded to four bytes.
        let next = 4 + l.div_ceil(4) * 4;
        attrs = attrs.get(next..).unwrap_or_default();
    }
    Some(Answer::Stun {
        success,
        error_code,
        mapped: xor_mapped.or(mapped),
        software,
    })
}

/// A (XOR-)MAPPED-ADDRESS value: reserved, family (1 IPv4, 2 IPv6), port, address. XORed
/// with the magic cookie (and the transaction id for IPv6) when `txid` is given.
fn stun_address(v: &[u8], txid: Option<&[u8; 12]>) -> Option<SocketAddr> {
    let family = *v.get(1)?;
    let mut port = be16(v, 2)?;
    let magic = STUN_MAGIC.to_be_bytes();
    if txid.is_some() {
        port ^= 0x2112;
    }
    let ip = match family {
        1 => {
            let mut a: [u8; 4] = v.get(4..8)?.try_into().ok()?;
            if txid.is_some() {
                for (b, m) in a.iter_mut().zip(magic) {
                    *b ^= m;
                }
            }
            IpAddr::V4(Ipv4Addr::from(a))
        }
        2 => {
            let mut a: [u8; 16] = v.get(4..20)?.try_into().ok()?;
            if let Some(txid) = txid {
                let key: Vec<u8> = magic.iter().chain(txid.iter()).copied().collect();
                for (b, m) in a.iter_mut().zip(key) {
                    *b ^= m;
                }
            }
            IpAddr::V6(Ipv6Addr::from(a))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

fn memcached(r: &[u8], id: u16) -> Option<Answer> {
    if be16(r, 0)? != id || r.len() < 8 {
        return None;
    }
    let body = &r[8..];
    let version = body.strip_prefix(b"VERSION ").map(|v| {
        text(
            v.split(|&b| b == b'\r').next().unwrap_or_default(),
            TEXT_MAX,
        )
    });
    Some(Answer::Memcached { version })
}

fn quic(r: &[u8], dcid: &[u8; 8], scid: &[u8; 8]) -> Option<Answer> {
    if r.first()? & 0x80 == 0 || be32(r, 1)? != 0 {
        return None;
    }
    // The Version Negotiation's destination is our source id, its source our destination.
    let dlen = usize::from(*r.get(5)?);
    let their_dcid = r.get(6..6 + dlen)?;
    let slen = usize::from(*r.get(6 + dlen)?);
    let their_scid = r.get(7 + dlen..7 + dlen + slen)?;
    if their_dcid != scid || their_scid != dcid {
        return None;
    }
    let versions = r[7 + dlen + slen..]
        .chunks_exact(4)
        .take(VERSIONS_MAX)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Some(Answer::Quic { versions })
}

fn rpc(r: &[u8], xid: u32) -> Option<Answer> {
    if be32(r, 0)? != xid || be32(r, 4)? != 1 {
        return None;
    }
    let accepted = be32(r, 8)? == 0;
    let accept_stat = if accepted {
        // The verifier: flavor, length, body (padded to four bytes).
        let len = usize::try_from(be32(r, 16)?).ok()?;
        be32(r, 20usize.checked_add(len.div_ceil(4).checked_mul(4)?)?)
    } else {
        None
    };
    Some(Answer::Rpc {
        accepted,
        accept_stat,
    })
}

fn coap(r: &[u8], id: u16) -> Option<Answer> {
    if r.len() < 4 || r[0] >> 6 != 1 || be16(r, 2)? != id {
        return None;
    }
    Some(Answer::Coap {
        kind: (r[0] >> 4) & 0x03,
        code: r[1],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::protocols::testing::{fixture, fixture_hex, measure_bytes};

    fn nonce(prefix: &[u8]) -> Nonce {
        let mut n = [0u8; 16];
        n[..prefix.len()].copy_from_slice(prefix);
        Nonce(n)
    }

    fn answer(req: &UdpRequest, reply: &[u8]) -> Answer {
        match req.recognise(reply) {
            UdpReply::Answer(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dns_against_dnsmasq() {
        let req = request(UdpService::Dns, &nonce(b"CR")).unwrap();
        assert_eq!(req.payload, fixture!("udp/dns_root_ns.request.bin"));
        assert_eq!(
            answer(&req, fixture!("udp/dns_root_ns.reply.bin")),
            Answer::Dns {
                rcode: 5,
                answers: 0,
                truncated: false
            },
            "dnsmasq without upstream servers refuses"
        );
        let other = request(UdpService::Dns, &nonce(b"XY")).unwrap();
        assert!(matches!(
            other.recognise(fixture!("udp/dns_root_ns.reply.bin")),
            UdpReply::Foreign { .. }
        ));
        // Our own query echoed back is not an answer (QR clear).
        assert!(matches!(
            req.recognise(&req.payload),
            UdpReply::Foreign { .. }
        ));
    }

    #[test]
    fn ntp_against_chrony() {
        let req = request(
            UdpService::Ntp,
            &nonce(&[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]),
        )
        .unwrap();
        assert_eq!(req.payload, fixture!("udp/ntp.request.bin"));
        assert_eq!(
            answer(&req, fixture!("udp/ntp.reply.bin")),
            Answer::Ntp {
                version: 4,
                stratum: 10,
                kiss_code: None,
                unsynchronised: false
            }
        );
        let mut kod = fixture!("udp/ntp.reply.bin").to_vec();
        kod[1] = 0;
        kod[12..16].copy_from_slice(b"RATE");
        let Answer::Ntp { kiss_code, .. } = answer(&req, &kod) else {
            panic!()
        };
        assert_eq!(kiss_code.as_deref(), Some("RATE"));
        // The origin must be our transmit time.
        let stale = request(UdpService::Ntp, &nonce(b"other")).unwrap();
        assert!(matches!(
            stale.recognise(fixture!("udp/ntp.reply.bin")),
            UdpReply::Foreign { .. }
        ));
    }

    #[test]
    fn snmpv3_discovery_against_net_snmp() {
        let req = request(UdpService::Snmp, &nonce(&[0, 0, 0x43, 0x52])).unwrap();
        assert_eq!(req.payload, fixture!("udp/snmpv3_discovery.request.bin"));
        let Answer::Snmp {
            pdu,
            engine_id,
            engine_boots,
            ..
        } = answer(&req, fixture!("udp/snmpv3_discovery.reply.bin"))
        else {
            panic!()
        };
        assert_eq!(pdu, 0xA8, "a Report");
        assert_eq!(engine_id.len(), 17);
        assert_eq!(
            &engine_id[..4],
            [0x80, 0x00, 0x1f, 0x88],
            "net-snmp's enterprise"
        );
        assert_eq!(engine_boots, Some(1));
    }

    #[test]
    fn stun_against_coturn() {
        let req = request(UdpService::Stun, &nonce(b"canreach-txn")).unwrap();
        assert_eq!(req.payload, fixture!("udp/stun_binding.request.bin"));
        let Answer::Stun {
            success,
            mapped,
            software,
            error_code,
        } = answer(&req, fixture!("udp/stun_binding.reply.bin"))
        else {
            panic!()
        };
        assert!(success);
        assert_eq!(error_code, None);
        assert_eq!(
            mapped.unwrap().ip(),
            "198.18.0.2".parse::<IpAddr>().unwrap()
        );
        assert_eq!(software.as_deref(), Some("Coturn-4.6.1 'Gorst'"));
    }

    #[test]
    fn memcached_against_memcached() {
        let req = request(UdpService::Memcached, &nonce(b"CR")).unwrap();
        assert_eq!(req.payload, fixture!("udp/memcached_version.request.bin"));
        assert_eq!(
            answer(&req, fixture!("udp/memcached_version.reply.bin")),
            Answer::Memcached {
                version: Some("1.6.18".into())
            }
        );
    }

    #[test]
    fn spec_built_answers() {
        let n = nonce(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
        let quic = request(UdpService::Quic, &n).unwrap();
        assert_eq!(quic.payload.len(), 1200);
        assert_eq!(
            answer(&quic, &fixture_hex!("udp/quic_version_negotiation.hex")),
            Answer::Quic {
                versions: vec![0x0000_0001, 0x6b33_43cf]
            }
        );
        let rpc = request(UdpService::Portmap, &n).unwrap();
        assert_eq!(rpc.payload.len(), 40);
        assert_eq!(
            answer(&rpc, &fixture_hex!("udp/rpc_null_reply.hex")),
            Answer::Rpc {
                accepted: true,
                accept_stat: Some(0)
            }
        );
        let coap = request(UdpService::Coap, &n).unwrap();
        assert_eq!(coap.payload, [0x40, 0x00, 0x01, 0x02]);
        assert_eq!(
            answer(&coap, &[0x70, 0x00, 0x01, 0x02]),
            Answer::Coap { kind: 3, code: 0 }
        );
        let nb = request(UdpService::NetbiosNs, &n).unwrap();
        assert_eq!(nb.payload.len(), 50);
        assert_eq!(&nb.payload[13..15], b"CK", "'*' first-level encoded");
        assert_eq!(
            answer(&nb, &fixture_hex!("udp/netbios_nbstat_reply.hex")),
            Answer::Netbios { rcode: 0 }
        );
        let mdns = request(UdpService::Mdns, &n).unwrap();
        assert!(mdns.payload.ends_with(b"\x05local\x00\x00\x0c\x00\x01"));
    }

    #[test]
    fn the_table() {
        assert_eq!(for_port(53).unwrap().service, UdpService::Dns);
        assert_eq!(
            for_port(1813).unwrap().silence,
            Some(Silence::OnlyKnownPeers)
        );
        assert_eq!(by_name("NTP").unwrap().ports, [123]);
        assert_eq!(for_port(9), None);
        for e in TABLE {
            // A request exists exactly for the services without a known silence.
            let r = request(e.service, &nonce(b"x"));
            assert_eq!(r.is_some(), e.silence.is_none(), "{}", e.name);
            assert_eq!(by_name(e.name), Some(e));
        }
        let any = custom(vec![1, 2, 3]);
        assert_eq!(
            any.recognise(&[9; 5]),
            UdpReply::Answer(Answer::Any { len: 5 })
        );
    }

    #[test]
    fn ber_integers_are_minimal() {
        assert_eq!(ber_int(0), [2, 1, 0]);
        assert_eq!(ber_int(0x7f), [2, 1, 0x7f]);
        assert_eq!(ber_int(0x80), [2, 2, 0, 0x80]);
        assert_eq!(ber_int(65507), [2, 3, 0, 0xff, 0xe3]);
        assert_eq!(ber_int(0x7fff_ffff), [2, 4, 0x7f, 0xff, 0xff, 0xff]);
        assert_eq!(ber(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(ber(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
    }

    proptest::proptest! {
        #[test]
        fn recognisers_never_panic_nor_allocate_past_their_bound(
            reply in proptest::collection::vec(proptest::num::u8::ANY, 0..2048),
            seed in proptest::array::uniform16(proptest::num::u8::ANY),
        ) {
            let n = Nonce(seed);
            let requests: Vec<UdpRequest> = TABLE
                .iter()
                .filter_map(|e| request(e.service, &n))
                .collect();
            for req in &requests {
                let used = measure_bytes(|| { let _ = req.recognise(&reply); });
                // The foreign bytes, or an answer's few bounded strings and lists.
                proptest::prop_assert!(used <= (FOREIGN_MAX + 3 * TEXT_MAX + 128) as u64, "{used}");
            }
        }

        #[test]
        fn a_reply_with_our_ids_never_panics(
            tail in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
            seed in proptest::array::uniform16(proptest::num::u8::ANY),
        ) {
            // Our request's own first bytes followed by garbage: the parsers go deeper.
            let n = Nonce(seed);
            for e in TABLE {
                if let Some(req) = request(e.service, &n) {
                    let mut reply = req.payload[..req.payload.len().min(24)].to_vec();
                    reply.extend_from_slice(&tail);
                    let _ = req.recognise(&reply);
                }
            }
        }
    }
}
