//! A path-MTU black hole against a real kernel: the link between router and client carries
//! only 1300-byte packets and the router's "fragmentation needed" / "packet too big" is
//! dropped. The TCP handshake and the ClientHello pass; the server's full-size certificate
//! flight does not, so the TLS handshake gets nothing. The reduced-MSS retry completes it:
//! the fact the diagnosis turns into "path-MTU black hole".
// The client joins a namespace (setns): a test-only libc call.
#![allow(unsafe_code)]

use crate::common;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use canreach::session::tls::{TlsFailure, TrustStore};
use canreach::session::{Application, SessionRequest, after_connect};
use common::*;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// Run `f` on a thread inside namespace `ns`, with its own current-thread runtime: every
/// socket the session stage opens (the reduced-MSS retry too) belongs to that namespace.
fn in_ns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T>>> + Send + 'static,
) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = File::open(path).unwrap();
        // SAFETY: only this thread changes namespace, and it ends with the test.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f())
    })
    .join()
    .unwrap()
}

/// A TLS server whose certificate flight is several full-size segments (many names).
fn tls_acceptor() -> (tokio_rustls::TlsAcceptor, TrustStore) {
    let tls = common::tls::ca_signed("Lab MTU CA", common::tls::many_names());
    (tls.acceptor, TrustStore::from_certs([tls.ca_der]).unwrap())
}

#[test]
fn mtu_black_hole_is_crossed_by_the_reduced_mss_v4_and_v6() {
    require_lab!();
    let lab = Lab::new();
    lab.black_hole_mtu();
    for (server, port) in [("198.18.2.2", 8443u16), ("fd00:2::2", 8444)] {
        let bind = if server.contains(':') {
            format!("[{server}]:{port}")
        } else {
            format!("{server}:{port}")
        };
        let listener = lab.listen(&lab.server, &bind);
        let addr = listener.local_addr().unwrap();
        let (acceptor, roots) = tls_acceptor();
        let host = server.to_string();
        let facts = in_ns(&lab.client, move || {
            Box::pin(async move {
                listener.set_nonblocking(true).unwrap();
                let listener = TcpListener::from_std(listener).unwrap();
                // The server: every connection gets a handshake and is held open.
                tokio::spawn(async move {
                    while let Ok((s, _)) = listener.accept().await {
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            if let Ok(mut tls) = acceptor.accept(s).await {
                                let mut b = [0u8; 16];
                                let _ =
                                    tokio::time::timeout(Duration::from_secs(2), tls.read(&mut b))
                                        .await;
                            }
                        });
                    }
                });
                let req = SessionRequest {
                    host,
                    application: Application::Tls,
                    roots: Arc::new(roots),
                    mss_retry: true,
                    program: None,
                    ask: None,
                };
                let start = Instant::now();
                let s = TcpStream::connect(addr).await.unwrap();
                let rtt = start.elapsed();
                let facts = after_connect(s, addr, rtt, &req, start + Duration::from_secs(3)).await;
                (facts, start.elapsed())
            })
        });
        let (facts, took) = facts;
        let first = facts.tls.as_ref().unwrap();
        assert!(
            matches!(
                first.failure,
                Some(TlsFailure::NoReply | TlsFailure::Stalled { .. })
            ),
            "{server}: {facts:?}"
        );
        let retry = facts.mss_retry.as_ref().unwrap();
        assert_eq!(retry.mss, if server.contains(':') { 1220 } else { 1200 });
        let tls = retry.tls.as_ref().unwrap();
        assert!(tls.ok(), "{server}: {facts:?}");
        // Opened beside the first after its wait, and through while the first still waited:
        // the first was given up then, with the kernel's view of its segments.
        assert!(retry.opened >= Duration::from_millis(900), "{facts:?}");
        assert!(first.elapsed >= retry.opened + tls.elapsed, "{facts:?}");
        let seen = first.given_up.expect("TCP_INFO of the first connection");
        assert!(seen.advmss > retry.mss, "{seen:?}");
        assert!(took < Duration::from_millis(3500), "{took:?}");
    }
}
