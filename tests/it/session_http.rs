//! The HTTP stage against small in-process servers on 127.0.0.1: a hand-rolled HTTP/1.1
//! server (one behaviour per test), a rustls server spoken to in plain text, and HTTP over a
//! TLS session from the TLS stage.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use canreach::session::http::{self, HttpFailure, HttpTarget, Method};
use canreach::session::tls::{self, TlsRequest, TrustStore, Versions};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

type Requests = Arc<Mutex<Vec<String>>>;

/// Serve one connection: read request heads, answer each with `answer(method)`; stop when the
/// answer is `None` or the client goes.
async fn serve<S, F>(mut s: S, requests: Requests, answer: F)
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn(&str) -> Option<Vec<u8>>,
{
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut chunk).await {
                Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return,
            }
        }
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let method = head.split(' ').next().unwrap_or("").to_owned();
        requests.lock().unwrap().push(head);
        match answer(&method) {
            Some(bytes) => {
                if s.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            None => return,
        }
    }
}

async fn http_server<F>(answer: F) -> (SocketAddr, Requests)
where
    F: Fn(&str) -> Option<Vec<u8>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Requests::default();
    let r = Arc::clone(&requests);
    tokio::spawn(async move {
        if let Ok((s, _)) = listener.accept().await {
            let _ = tokio::time::timeout(Duration::from_secs(3), serve(s, r, answer)).await;
        }
    });
    (addr, requests)
}

fn target(addr: SocketAddr) -> HttpTarget {
    HttpTarget::from_url(&url::Url::parse(&format!("http://bob:pw@{addr}/health?x=1")).unwrap())
        .unwrap()
}

async fn ask(addr: SocketAddr) -> http::HttpFacts {
    let mut s = TcpStream::connect(addr).await.unwrap();
    http::request(
        &mut s,
        &target(addr),
        Instant::now() + Duration::from_secs(3),
    )
    .await
}

#[tokio::test]
async fn ok_with_head_only() {
    let (addr, reqs) = http_server(|_| {
        Some(
            b"HTTP/1.1 200 OK\r\nServer: nginx/1.22\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n"
                .to_vec(),
        )
    })
    .await;
    let f = ask(addr).await;
    assert_eq!(f.failure, None);
    assert_eq!(f.method, Method::Head);
    let r = f.response.unwrap();
    assert_eq!((r.status, r.reason.as_str()), (200, "OK"));
    assert_eq!(r.server.as_deref(), Some("nginx/1.22"));
    assert_eq!(r.content_type.as_deref(), Some("text/html"));
    assert_eq!(r.body_start, None);
    let reqs = reqs.lock().unwrap();
    assert_eq!(reqs.len(), 1);
    let req = &reqs[0];
    assert!(req.starts_with("HEAD /health?x=1 HTTP/1.1\r\n"), "{req}");
    assert!(req.contains(&format!("Host: {addr}\r\n")));
    assert!(req.contains(&format!(
        "User-Agent: canreach/{}\r\n",
        env!("CARGO_PKG_VERSION")
    )));
    assert!(!req.contains("bob") && !req.contains("pw") && !req.contains("Authorization"));
}

#[tokio::test]
async fn head_refused_falls_back_to_get_headers_only() {
    let (addr, reqs) = http_server(|m| {
        Some(match m {
            "HEAD" => b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nContent-Length: 0\r\n\r\n".to_vec(),
            _ => b"HTTP/1.1 302 Found\r\nLocation: https://example.test/login\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello".to_vec(),
        })
    })
    .await;
    let f = ask(addr).await;
    assert_eq!(f.failure, None);
    assert_eq!(f.method, Method::Get);
    assert_eq!(f.head_status, Some(405));
    let r = f.response.unwrap();
    assert_eq!(r.status, 302);
    assert_eq!(r.location.as_deref(), Some("https://example.test/login"));
    assert!(r.closes);
    assert_eq!(r.body_start, None);
    let reqs = reqs.lock().unwrap();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[1].starts_with("GET /health?x=1 HTTP/1.1\r\n"));
    assert!(reqs[1].contains("Connection: close\r\n"));
}

#[tokio::test]
async fn envoy_without_upstream() {
    let (addr, _) = http_server(|m| {
        Some(match m {
            "HEAD" => b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 19\r\ncontent-type: text/plain\r\nserver: envoy\r\nvia: 1.1 edge\r\n\r\n".to_vec(),
            _ => b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 19\r\ncontent-type: text/plain\r\nserver: envoy\r\nvia: 1.1 edge\r\n\r\nno healthy upstream".to_vec(),
        })
    })
    .await;
    let f = ask(addr).await;
    assert_eq!(f.method, Method::Get);
    assert_eq!(f.head_status, Some(503));
    let r = f.response.unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(r.server.as_deref(), Some("envoy"));
    assert_eq!(r.via.as_deref(), Some("1.1 edge"));
    assert_eq!(r.body_start.as_deref(), Some(&b"no healthy upstream"[..]));
}

#[tokio::test]
async fn endless_5xx_body_does_not_hold_the_stage() {
    // No length, no chunked end, no close: only the first bytes and a bounded wait.
    let (addr, _) = http_server(|m| {
        Some(match m {
            "HEAD" => b"HTTP/1.1 502 Bad Gateway\r\nServer: edge\r\n\r\n".to_vec(),
            _ => b"HTTP/1.1 502 Bad Gateway\r\nServer: edge\r\n\r\nupstream connect error".to_vec(),
        })
    })
    .await;
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let f = http::request(&mut s, &target(addr), start + Duration::from_secs(5)).await;
    assert!(start.elapsed() < Duration::from_secs(2));
    let r = f.response.unwrap();
    assert_eq!(r.status, 502);
    assert_eq!(
        r.body_start.as_deref(),
        Some(&b"upstream connect error"[..])
    );
}

#[tokio::test]
async fn server_that_closes_after_head_keeps_the_head_answer() {
    let (addr, _) = http_server(|m| match m {
        "HEAD" => Some(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n".to_vec()),
        _ => None,
    })
    .await;
    let f = ask(addr).await;
    assert_eq!(f.method, Method::Head);
    assert_eq!(f.response.unwrap().status, 405);
}

#[tokio::test]
async fn informational_answers_are_skipped() {
    let (addr, _) = http_server(|_| {
        Some(
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 204 No Content\r\nServer: h\r\n\r\n"
                .to_vec(),
        )
    })
    .await;
    let r = ask(addr).await.response.unwrap();
    assert_eq!((r.status, r.server.as_deref()), (204, Some("h")));
}

#[tokio::test]
async fn not_http() {
    let (addr, _) = http_server(|_| Some(b"SSH-2.0-OpenSSH_9.2\r\n".to_vec())).await;
    let f = ask(addr).await;
    assert_eq!(
        f.failure,
        Some(HttpFailure::NotHttp {
            first_bytes: b"SSH-2.0-OpenSSH_9.2\r\n".to_vec()
        })
    );
}

#[tokio::test]
async fn huge_head_is_too_large() {
    let (addr, _) = http_server(|_| {
        let mut b = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
        b.extend(std::iter::repeat_n(b'a', 70 * 1024));
        b.extend_from_slice(b"\r\n\r\n");
        Some(b)
    })
    .await;
    assert_eq!(ask(addr).await.failure, Some(HttpFailure::TooLarge));
}

#[tokio::test]
async fn silent_and_closing_servers() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(s);
    });
    let mut s = TcpStream::connect(addr).await.unwrap();
    let start = Instant::now();
    let f = http::request(&mut s, &target(addr), start + Duration::from_millis(200)).await;
    assert_eq!(f.failure, Some(HttpFailure::NoReply));
    assert!(start.elapsed() < Duration::from_secs(1));

    let (addr, _) = http_server(|_| None).await;
    assert_eq!(ask(addr).await.failure, Some(HttpFailure::Closed));
}

struct Pki {
    root: CertifiedIssuer<'static, KeyPair>,
    leaf: rustls::pki_types::CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(DnType::CommonName, "Http Test CA");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let root = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &root)
        .unwrap();
    Pki {
        leaf: leaf.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        root,
    }
}

/// A rustls server for one connection; over TLS it answers like `http_server`.
async fn tls_http_server(p: &Pki) -> SocketAddr {
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![p.leaf.clone()], p.key.clone_key())
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let Ok((s, _)) = listener.accept().await else {
            return;
        };
        let _ = tokio::time::timeout(Duration::from_secs(3), async move {
            if let Ok(tls) = acceptor.accept(s).await {
                serve(tls, Requests::default(), |_| {
                    Some(
                        b"HTTP/1.1 200 OK\r\nServer: tls-test\r\nContent-Length: 0\r\n\r\n"
                            .to_vec(),
                    )
                })
                .await;
            }
        })
        .await;
    });
    addr
}

#[tokio::test]
async fn plain_http_to_a_tls_port_expects_tls() {
    let p = pki();
    let addr = tls_http_server(&p).await;
    let f = ask(addr).await;
    match f.failure {
        Some(HttpFailure::ExpectsTls { first_bytes }) => assert_eq!(first_bytes[0], 0x15),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn http_over_the_tls_stage() {
    let p = pki();
    let addr = tls_http_server(&p).await;
    let roots = TrustStore::from_certs([p.root.der().clone()]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    let req = TlsRequest {
        server_name: "localhost",
        alpn: &[b"http/1.1"],
        roots: &roots,
        versions: Versions::Any,
    };
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (facts, session) = tls::handshake_session(tcp, &req, deadline).await;
    assert!(facts.ok(), "{facts:?}");
    let mut session = session.unwrap();
    let f = http::request(
        &mut session,
        &HttpTarget::root("localhost", 443, 443),
        deadline,
    )
    .await;
    let r = f.response.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.server.as_deref(), Some("tls-test"));
}
