//! The reduced-MSS connection on loopback: the option is set before connect (the connected
//! socket's MSS is at most the one asked for, where a normal loopback connection's is ~65 KB),
//! and the connection works.

use crate::common;

use std::net::SocketAddr;
use std::time::Duration;

use canreach::session::mss::{self, MssError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// An echo server for one connection.
async fn echo(bind: &str) -> Option<SocketAddr> {
    let listener = TcpListener::bind(bind).await.ok()?;
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let _ = tokio::time::timeout(Duration::from_secs(3), async move {
            let mut buf = vec![0u8; 8192];
            loop {
                match s.read(&mut buf).await {
                    Ok(n) if n > 0 => {
                        if s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                    _ => return,
                }
            }
        })
        .await;
    });
    Some(addr)
}

async fn check(addr: SocketAddr) {
    let want = mss::reduced_mss(&addr);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut s = mss::connect_with_mss(addr, want, deadline).await.unwrap();
    let got = mss::mss_of(&s).unwrap();
    assert!(got > 0 && got <= want, "MSS {got} with {want} asked");

    // A payload larger than one segment goes through.
    let payload: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    s.write_all(&payload).await.unwrap();
    let mut back = vec![0u8; payload.len()];
    tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, payload);

    // Without the option, loopback's MSS is far larger: the option made the difference.
    let other = echo(&addr.to_string().replace(&format!(":{}", addr.port()), ":0")).await;
    let plain = TcpStream::connect(other.unwrap()).await.unwrap();
    assert!(mss::mss_of(&plain).unwrap() > want);
}

#[tokio::test]
async fn ipv4_mss_1200() {
    check(echo("127.0.0.1:0").await.unwrap()).await;
}

#[tokio::test]
async fn ipv6_mss_1220() {
    let Some(addr) = echo("[::1]:0").await else {
        common::cannot_run(module_path!(), "no IPv6 loopback address (::1) here");
        return;
    };
    check(addr).await;
}

#[tokio::test]
async fn refused_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let r = mss::connect_with_mss(addr, 1200, Instant::now() + Duration::from_secs(2)).await;
    match r {
        Err(MssError::Connect(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn absurd_mss_is_refused_by_the_kernel() {
    let r = mss::connect_with_mss(
        "127.0.0.1:9".parse().unwrap(),
        1,
        Instant::now() + Duration::from_secs(1),
    )
    .await;
    assert!(matches!(r, Err(MssError::SetMss { mss: 1, .. })), "{r:?}");
}
