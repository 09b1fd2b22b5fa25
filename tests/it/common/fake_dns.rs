//! An in-process fake name server (hickory-server) that answers every query the same scripted
//! way: a response code, records, and a delay — or, as a small zone, by name (NXDOMAIN for names
//! it has no record of), and optionally truncated over UDP (the full answer over TCP only).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Metadata, ResponseCode};
use hickory_proto::rr::{Name, RData, Record};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo, Server};
use hickory_server::zone_handler::MessageResponseBuilder;

/// Answers every query the same scripted way.
#[derive(Clone)]
pub struct Script {
    pub rcode: ResponseCode,
    pub records: Vec<Record>,
    pub delay: Duration,
    /// Answer as a zone: the query name's CNAME chain and the asked type at its end; NXDOMAIN
    /// when no record has the query name. `rcode` is then unused.
    pub zone: bool,
    /// Over UDP, answer with the TC bit and no records (the answer "did not fit"); over TCP,
    /// answer in full.
    pub truncate_udp: bool,
}

impl Script {
    pub fn new(rcode: ResponseCode, records: Vec<Record>) -> Script {
        Script {
            rcode,
            records,
            delay: Duration::ZERO,
            zone: false,
            truncate_udp: false,
        }
    }

    /// A zone of `records` (see [`Script::zone`]).
    pub fn zone(records: Vec<Record>) -> Script {
        Script {
            zone: true,
            ..Script::new(ResponseCode::NoError, records)
        }
    }

    /// What to answer for `name` and `wanted`: the response code and the answer section.
    fn answer(
        &self,
        name: &Name,
        wanted: hickory_proto::rr::RecordType,
    ) -> (ResponseCode, Vec<&Record>) {
        if !self.zone {
            // The CNAME chain is always included; address records only of the asked type.
            let answers = self
                .records
                .iter()
                .filter(|r| r.record_type() == wanted || matches!(r.data, RData::CNAME(_)))
                .collect();
            return (self.rcode, answers);
        }
        if !self.records.iter().any(|r| &r.name == name) {
            return (ResponseCode::NXDomain, vec![]);
        }
        let mut answers = Vec::new();
        let mut current = name.clone();
        for _ in 0..8 {
            match self
                .records
                .iter()
                .find(|r| r.name == current && matches!(r.data, RData::CNAME(_)))
            {
                Some(r) => {
                    answers.push(r);
                    if let RData::CNAME(c) = &r.data {
                        current = c.0.clone();
                    }
                }
                None => break,
            }
        }
        answers.extend(
            self.records
                .iter()
                .filter(|r| r.name == current && r.record_type() == wanted),
        );
        (ResponseCode::NoError, answers)
    }
}

#[async_trait::async_trait]
impl RequestHandler for Script {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        tokio::time::sleep(self.delay).await;
        let q = &request.queries.queries()[0];
        let (rcode, mut answers) = self.answer(q.name(), q.query_type());
        let mut md = Metadata::response_from_request(&request.metadata);
        md.response_code = rcode;
        md.recursion_available = true;
        if self.truncate_udp && request.protocol() == Protocol::Udp {
            md.truncation = true;
            answers.clear();
        }
        let msg =
            MessageResponseBuilder::new(&request.queries, None).build(md, answers, [], [], []);
        response.send_response(msg).await.expect("send")
    }
}

/// Start a fake server on 127.0.0.1, UDP only (its TCP port 53 is closed); it lives as long as
/// the returned handle.
pub async fn serve(script: Script) -> (SocketAddr, Server<Script>) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    serve_on(script, socket)
}

/// Start a fake server on 127.0.0.1 over UDP and TCP on the same port.
pub async fn serve_with_tcp(script: Script) -> (SocketAddr, Server<Script>) {
    // The TCP port must be free too: a few tries with fresh UDP ports.
    for _ in 0..20 {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let Ok(listener) = tokio::net::TcpListener::bind(addr).await else {
            continue;
        };
        let (addr, mut server) = serve_on(script, socket);
        server.register_listener(listener, Duration::from_secs(5), 4096);
        return (addr, server);
    }
    panic!("no free UDP+TCP port pair on 127.0.0.1");
}

/// Serve on an already bound socket (e.g. one opened inside a lab namespace).
pub fn serve_on(script: Script, socket: tokio::net::UdpSocket) -> (SocketAddr, Server<Script>) {
    let addr = socket.local_addr().unwrap();
    let mut server = Server::new(script);
    server.register_socket(socket);
    (addr, server)
}

/// A name server that never answers: a bound UDP socket nobody reads (no ICMP comes back, as
/// from a host whose firewall drops port 53). It is silent as long as the socket lives.
pub async fn silent() -> (SocketAddr, tokio::net::UdpSocket) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    (socket.local_addr().unwrap(), socket)
}
