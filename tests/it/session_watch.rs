//! The watch right after the connect, against real loopback servers: reset, close, greetings,
//! silence — watched without writing.

use std::net::SocketAddr;
use std::time::Duration;

use canreach::probe::ConnectResult;
use canreach::session::watch::{self, BannerKind, First};
use socket2::SockRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// A server for one connection that does `act` with it.
async fn server<F, Fut>(act: F) -> SocketAddr
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        if let Ok((s, _)) = listener.accept().await {
            act(s).await;
        }
    });
    addr
}

/// Connect and watch; a reset that lands before the connect completes counts as the same
/// fact (`accepted_then_reset`).
async fn watch(addr: SocketAddr, window: Duration) -> (First, Option<TcpStream>) {
    let deadline = Instant::now() + Duration::from_secs(3);
    match TcpStream::connect(addr).await {
        Ok(s) => (watch::watch(&s, window, deadline).await, Some(s)),
        Err(e) => {
            let errno = e.raw_os_error().unwrap();
            assert!(watch::accepted_then_reset(&ConnectResult::Failed { errno }));
            (First::Reset, None)
        }
    }
}

async fn greet(bytes: &'static [u8]) -> First {
    let addr = server(move |mut s| async move {
        s.write_all(bytes).await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
    })
    .await;
    watch(addr, Duration::from_millis(500)).await.0
}

#[tokio::test]
async fn accept_then_reset() {
    let addr = server(|s| async move {
        SockRef::from(&s).set_linger(Some(Duration::ZERO)).unwrap();
        drop(s);
    })
    .await;
    assert_eq!(
        watch(addr, Duration::from_millis(500)).await.0,
        First::Reset
    );
}

#[tokio::test]
async fn accept_then_close() {
    let addr = server(|s| async move { drop(s) }).await;
    assert_eq!(
        watch(addr, Duration::from_millis(500)).await.0,
        First::Closed
    );
}

#[tokio::test]
async fn ssh_banner_is_identified_and_left_to_read() {
    let addr = server(|mut s| async move {
        s.write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
    })
    .await;
    let (f, s) = watch(addr, Duration::from_millis(500)).await;
    assert_eq!(
        f,
        First::Banner {
            bytes: b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n".to_vec(),
            kind: BannerKind::Ssh {
                protocol: "2.0".into(),
                software: "OpenSSH_9.2p1 Debian-2".into()
            }
        }
    );
    // Peeked, not consumed.
    let mut buf = [0u8; 8];
    s.unwrap().read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"SSH-2.0-");
}

#[tokio::test]
async fn greeting_in_pieces_is_waited_for() {
    let addr = server(|mut s| async move {
        s.write_all(b"220 mx.example ").await.unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        s.write_all(b"ESMTP Postfix\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
    })
    .await;
    let (f, _) = watch(addr, Duration::from_millis(500)).await;
    assert!(
        matches!(&f, First::Banner { kind: BannerKind::Smtp { greeting }, .. } if greeting == "mx.example ESMTP Postfix"),
        "{f:?}"
    );
}

#[tokio::test]
async fn mysql_greeting() {
    // A MySQL 8 handshake packet, as captured (salt bytes arbitrary).
    const GREETING: &[u8] = b"\x4a\x00\x00\x00\x0a8.0.36\x00\x0d\x00\x00\x00\x10\x22\x33\x44\x55\x66\x77\x08\x00\xff\xff\xff\x02\x00\xff\xdf\x15\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x11\x22\x33\x44\x55\x66\x77\x08\x09\x0a\x0b\x0c\x00caching_sha2_password\x00";
    let f = greet(GREETING).await;
    assert!(
        matches!(&f, First::Banner { kind: BannerKind::MySql { server_version }, .. } if server_version == "8.0.36"),
        "{f:?}"
    );
}

#[tokio::test]
async fn mysql_host_not_allowed() {
    const ERR: &[u8] =
        b"\x44\x00\x00\x00\xff\x6a\x04Host '127.0.0.1' is not allowed to connect to this MySQL server";
    let f = greet(ERR).await;
    assert!(
        matches!(&f, First::Banner { kind: BannerKind::MySqlError { code: 1130, message }, .. }
            if message == "Host '127.0.0.1' is not allowed to connect to this MySQL server"),
        "{f:?}"
    );
}

#[tokio::test]
async fn silent_server_within_the_window() {
    let addr = server(|s| async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(s);
    })
    .await;
    let start = Instant::now();
    let (f, _) = watch(addr, watch::window_for(Duration::from_micros(100))).await;
    assert_eq!(f, First::Silent);
    let took = start.elapsed();
    assert!(
        took >= watch::WINDOW_MIN && took < Duration::from_millis(600),
        "{took:?}"
    );
}

#[tokio::test]
async fn deadline_caps_the_window() {
    let addr = server(|s| async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(s);
    })
    .await;
    let s = TcpStream::connect(addr).await.unwrap();
    let start = Instant::now();
    let f = watch::watch(
        &s,
        Duration::from_secs(1),
        start + Duration::from_millis(50),
    )
    .await;
    assert_eq!(f, First::Silent);
    assert!(start.elapsed() < Duration::from_millis(400));
}
