//! Small fake servers for services Debian packages no server of: MongoDB (OP_MSG `hello` and
//! `buildInfo`) and Kafka (ApiVersions v0 and Metadata v2), speaking the minimum canreach
//! asks, with the replies a real server sends for them (MongoDB Wire Protocol, BSON 1.1; the
//! Kafka protocol guide). Each serves every connection on a thread of its own until dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A BSON value, as far as these replies need one.
pub enum Bson {
    Str(String),
    Bool(bool),
    I32(i32),
    F64(f64),
    Arr(Vec<Bson>),
}

/// A BSON document of `elems`.
pub fn bson(elems: &[(&str, Bson)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, v) in elems {
        let kind: u8 = match v {
            Bson::F64(_) => 0x01,
            Bson::Str(_) => 0x02,
            Bson::Arr(_) => 0x04,
            Bson::Bool(_) => 0x08,
            Bson::I32(_) => 0x10,
        };
        body.push(kind);
        body.extend_from_slice(name.as_bytes());
        body.push(0);
        match v {
            Bson::F64(f) => body.extend_from_slice(&f.to_le_bytes()),
            Bson::Str(s) => {
                body.extend_from_slice(&(s.len() as i32 + 1).to_le_bytes());
                body.extend_from_slice(s.as_bytes());
                body.push(0);
            }
            Bson::Arr(items) => {
                let names: Vec<String> = (0..items.len()).map(|i| i.to_string()).collect();
                let pairs: Vec<(&str, Bson)> = names
                    .iter()
                    .zip(items)
                    .map(|(n, v)| (n.as_str(), copy(v)))
                    .collect();
                body.extend(bson(&pairs));
            }
            Bson::Bool(b) => body.push(u8::from(*b)),
            Bson::I32(i) => body.extend_from_slice(&i.to_le_bytes()),
        }
    }
    let mut doc = ((body.len() + 5) as i32).to_le_bytes().to_vec();
    doc.extend(body);
    doc.push(0);
    doc
}

fn copy(v: &Bson) -> Bson {
    match v {
        Bson::Str(s) => Bson::Str(s.clone()),
        Bson::Bool(b) => Bson::Bool(*b),
        Bson::I32(i) => Bson::I32(*i),
        Bson::F64(f) => Bson::F64(*f),
        Bson::Arr(a) => Bson::Arr(a.iter().map(copy).collect()),
    }
}

/// Strings as a BSON array.
pub fn names(list: &[&str]) -> Bson {
    Bson::Arr(list.iter().map(|s| Bson::Str(s.to_string())).collect())
}

/// An OP_MSG carrying `doc`, in answer to request `response_to`.
fn op_msg(doc: &[u8], response_to: i32) -> Vec<u8> {
    let len = (16 + 4 + 1 + doc.len()) as i32;
    let mut m = Vec::new();
    m.extend_from_slice(&len.to_le_bytes());
    m.extend_from_slice(&7i32.to_le_bytes());
    m.extend_from_slice(&response_to.to_le_bytes());
    m.extend_from_slice(&2013i32.to_le_bytes());
    m.extend_from_slice(&0u32.to_le_bytes());
    m.push(0);
    m.extend_from_slice(doc);
    m
}

/// A server on `listener` that runs `serve` for every connection, until dropped.
pub struct FakeServer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeServer {
    fn start(l: TcpListener, serve: impl Fn(TcpStream) + Send + Sync + 'static) -> FakeServer {
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let serve = Arc::new(serve);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, _)) => {
                        let serve = serve.clone();
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                        std::thread::spawn(move || serve(s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_micros(500)),
                }
            }
        });
        FakeServer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A MongoDB member that answers `hello` (and `isMaster`) with `hello`, and `buildInfo`
/// with version 7.0.5.
pub fn mongodb(l: TcpListener, hello: Vec<u8>) -> FakeServer {
    let build = bson(&[
        ("version", Bson::Str("7.0.5".into())),
        ("ok", Bson::F64(1.0)),
    ]);
    FakeServer::start(l, move |mut s| {
        loop {
            let mut h = [0u8; 16];
            if s.read_exact(&mut h).is_err() {
                return;
            }
            let len = i32::from_le_bytes(h[0..4].try_into().unwrap()) as usize;
            let id = i32::from_le_bytes(h[4..8].try_into().unwrap());
            if !(21..=65536).contains(&len) {
                return;
            }
            let mut body = vec![0u8; len - 16];
            if s.read_exact(&mut body).is_err() {
                return;
            }
            // flags (4), kind 0 (1), the document's length (4), then its first element:
            // the type byte and the command's name.
            let name_at = 4 + 1 + 4 + 1;
            let name_end = body[name_at..].iter().position(|&b| b == 0).unwrap_or(0);
            let reply = match &body[name_at..name_at + name_end] {
                b"buildInfo" => &build,
                _ => &hello,
            };
            if s.write_all(&op_msg(reply, id)).is_err() {
                return;
            }
        }
    })
}

/// A `hello` reply of a replica set member.
pub fn hello_reply(set: &str, me: &str, primary: &str, hosts: &[&str], writable: bool) -> Vec<u8> {
    bson(&[
        ("isWritablePrimary", Bson::Bool(writable)),
        ("secondary", Bson::Bool(!writable)),
        ("setName", Bson::Str(set.into())),
        ("hosts", names(hosts)),
        ("primary", Bson::Str(primary.into())),
        ("me", Bson::Str(me.into())),
        ("maxWireVersion", Bson::I32(21)),
        ("minWireVersion", Bson::I32(0)),
        ("ok", Bson::F64(1.0)),
    ])
}

/// A Kafka broker whose Metadata (v2) names `brokers` (node id, host, port) in cluster
/// `cluster`.
pub fn kafka(l: TcpListener, cluster: &str, brokers: &[(i32, &str, i32)]) -> FakeServer {
    let mut meta = Vec::new();
    meta.extend_from_slice(&(brokers.len() as i32).to_be_bytes());
    for (id, host, port) in brokers {
        meta.extend_from_slice(&id.to_be_bytes());
        meta.extend_from_slice(&(host.len() as i16).to_be_bytes());
        meta.extend_from_slice(host.as_bytes());
        meta.extend_from_slice(&port.to_be_bytes());
        meta.extend_from_slice(&(-1i16).to_be_bytes()); // rack: null
    }
    meta.extend_from_slice(&(cluster.len() as i16).to_be_bytes());
    meta.extend_from_slice(cluster.as_bytes());
    meta.extend_from_slice(&brokers[0].0.to_be_bytes()); // controller
    meta.extend_from_slice(&0i32.to_be_bytes()); // no topics
    // ApiVersions v0: no error; Metadata 0 to 2, ApiVersions 0 to 3.
    let mut versions = 0i16.to_be_bytes().to_vec();
    versions.extend_from_slice(&2i32.to_be_bytes());
    for (key, min, max) in [(3i16, 0i16, 2i16), (18, 0, 3)] {
        for v in [key, min, max] {
            versions.extend_from_slice(&v.to_be_bytes());
        }
    }
    FakeServer::start(l, move |mut s| {
        loop {
            let mut len = [0u8; 4];
            if s.read_exact(&mut len).is_err() {
                return;
            }
            let len = u32::from_be_bytes(len) as usize;
            if !(8..=65536).contains(&len) {
                return;
            }
            let mut m = vec![0u8; len];
            if s.read_exact(&mut m).is_err() {
                return;
            }
            let key = i16::from_be_bytes([m[0], m[1]]);
            let body = match key {
                18 => &versions,
                3 => &meta,
                _ => return,
            };
            let mut out = ((body.len() + 4) as u32).to_be_bytes().to_vec();
            out.extend_from_slice(&m[4..8]); // the correlation id
            out.extend_from_slice(body);
            if s.write_all(&out).is_err() {
                return;
            }
        }
    })
}
