//! An in-process fake name server (hickory-server) that answers every query the same scripted
//! way: a response code, records, and a delay.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Metadata, ResponseCode};
use hickory_proto::rr::{RData, Record};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo, Server};
use hickory_server::zone_handler::MessageResponseBuilder;

/// Answers every query the same scripted way.
#[derive(Clone)]
pub struct Script {
    pub rcode: ResponseCode,
    pub records: Vec<Record>,
    pub delay: Duration,
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
        let wanted = q.query_type();
        // The CNAME chain is always included; address records only of the asked type.
        let answers: Vec<&Record> = self
            .records
            .iter()
            .filter(|r| r.record_type() == wanted || matches!(r.data, RData::CNAME(_)))
            .collect();
        let mut md = Metadata::response_from_request(&request.metadata);
        md.response_code = self.rcode;
        md.recursion_available = true;
        let msg =
            MessageResponseBuilder::new(&request.queries, None).build(md, answers, [], [], []);
        response.send_response(msg).await.expect("send")
    }
}

/// Start a fake server on 127.0.0.1; it lives as long as the returned handle.
pub async fn serve(script: Script) -> (SocketAddr, Server<Script>) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    serve_on(script, socket)
}

/// Serve on an already bound socket (e.g. one opened inside a lab namespace).
pub fn serve_on(script: Script, socket: tokio::net::UdpSocket) -> (SocketAddr, Server<Script>) {
    let addr = socket.local_addr().unwrap();
    let mut server = Server::new(script);
    server.register_socket(socket);
    (addr, server)
}
