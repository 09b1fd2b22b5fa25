//! HTTP CONNECT through tiny in-process proxies on 127.0.0.1: one that wants credentials (407),
//! one that opens the tunnel (200) and relays to a loopback destination that greets.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use canreach::session::http::HttpFailure;
use canreach::session::proxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

type Seen = Arc<Mutex<Option<String>>>;

async fn read_head(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") && buf.len() < 8192 {
        if s.read(&mut b).await.unwrap_or(0) == 0 {
            break;
        }
        buf.push(b[0]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// A proxy for one connection. `answer` None: open the tunnel (to a loopback destination
/// only) and relay; Some(bytes): answer with them and close.
async fn proxy_server(answer: Option<&'static [u8]>) -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Seen::default();
    let seen2 = Arc::clone(&seen);
    tokio::spawn(async move {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let head = read_head(&mut s).await;
        *seen2.lock().unwrap() = Some(head.clone());
        let _ = tokio::time::timeout(Duration::from_secs(3), async move {
            match answer {
                Some(bytes) => {
                    let _ = s.write_all(bytes).await;
                }
                None => {
                    let authority = head.split(' ').nth(1).unwrap_or("").to_owned();
                    let dest: SocketAddr = authority.parse().unwrap();
                    assert!(dest.ip().is_loopback());
                    let mut up = TcpStream::connect(dest).await.unwrap();
                    s.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await
                        .unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut s, &mut up).await;
                }
            }
        })
        .await;
    });
    (addr, seen)
}

/// A destination that greets, then echoes.
async fn destination() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let _ = tokio::time::timeout(Duration::from_secs(3), async move {
            s.write_all(b"SSH-2.0-dest\r\n").await.unwrap();
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).await.unwrap_or(0);
            let _ = s.write_all(&buf[..n]).await;
        })
        .await;
    });
    addr
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(3)
}

#[tokio::test]
async fn proxy_wants_credentials() {
    let (addr, seen) = proxy_server(Some(
        b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"corp\"\r\nProxy-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n",
    ))
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let f = proxy::connect_tunnel(&mut s, "db.internal", 5432, deadline()).await;
    assert!(!f.open());
    assert_eq!(f.failure, None);
    let r = f.response.unwrap();
    assert_eq!(r.status, 407);
    assert_eq!(
        r.proxy_authenticate,
        vec!["Basic realm=\"corp\"".to_string(), "Negotiate".to_string()]
    );
    let head = seen.lock().unwrap().clone().unwrap();
    assert!(head.starts_with("CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n"));
    assert!(!head.to_ascii_lowercase().contains("authorization"));
}

#[tokio::test]
async fn proxy_forbids_and_bad_gateway_are_facts() {
    for (bytes, status) in [
        (
            &b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"[..],
            403,
        ),
        (
            &b"HTTP/1.1 502 Bad Gateway\r\nVia: 1.1 squid\r\n\r\n"[..],
            502,
        ),
    ] {
        let (addr, _) = proxy_server(Some(bytes)).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        let f = proxy::connect_tunnel(&mut s, "127.0.0.1", 9, deadline()).await;
        assert_eq!(f.response.unwrap().status, status);
        assert!(f.leftover.is_empty());
    }
}

#[tokio::test]
async fn tunnel_opens_and_relays() {
    let dest = destination().await;
    let (addr, _) = proxy_server(None).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let f = proxy::connect_tunnel(&mut s, "127.0.0.1", dest.port(), deadline()).await;
    assert!(f.open(), "{f:?}");
    assert_eq!(f.authority, format!("127.0.0.1:{}", dest.port()));
    // The destination's greeting, whether it came with the proxy's answer or after.
    let mut got = f.leftover.clone();
    let mut buf = [0u8; 64];
    while !got.ends_with(b"\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"SSH-2.0-dest\r\n");
    s.write_all(b"ping").await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"ping");
}

#[tokio::test]
async fn proxy_that_closes_is_closed() {
    let (addr, _) = proxy_server(Some(b"")).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let f = proxy::connect_tunnel(&mut s, "127.0.0.1", 9, deadline()).await;
    assert_eq!(f.failure, Some(HttpFailure::Closed));
}
