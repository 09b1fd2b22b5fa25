//! The session stage as one call, against loopback servers: a greeting ends it, HTTP and HTTPS
//! get one request, and a silent TLS port gets the reduced-MSS retry within the deadline.

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use canreach::session::http::HttpTarget;
use canreach::session::tls::{TlsFailure, TrustStore};
use canreach::session::watch::{BannerKind, First};
use canreach::session::{Application, SessionRequest, after_connect};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nServer: after-test\r\nContent-Length: 0\r\n\r\n";

/// Answer every request head with 200.
async fn answer_http<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while let Ok(n) = s.read(&mut chunk).await {
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..end + 4);
            if s.write_all(OK).await.is_err() {
                return;
            }
        }
    }
}

/// Accept up to `n` connections; each handled by `act`, within 3 s.
async fn server<F, Fut>(n: usize, act: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for _ in 0..n {
            let Ok((s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(tokio::time::timeout(Duration::from_secs(3), act(s)));
        }
    });
    addr
}

fn request(app: Application, roots: Arc<TrustStore>) -> SessionRequest {
    SessionRequest {
        host: "localhost".into(),
        application: app,
        roots,
        mss_retry: true,
        program: None,
        ask: None,
    }
}

async fn run(
    addr: SocketAddr,
    req: &SessionRequest,
    budget: Duration,
) -> canreach::session::SessionFacts {
    let start = Instant::now();
    let s = TcpStream::connect(addr).await.unwrap();
    let rtt = start.elapsed();
    after_connect(s, addr, rtt, req, start + budget).await
}

#[tokio::test]
async fn greeting_ends_the_stage() {
    let addr = server(1, |mut s| async move {
        let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    })
    .await;
    let app = Application::Https(HttpTarget::root("localhost", addr.port(), 443));
    let f = run(
        addr,
        &request(app, TrustStore::system()),
        Duration::from_secs(3),
    )
    .await;
    assert!(matches!(
        f.first,
        First::Banner {
            kind: BannerKind::Ssh { .. },
            ..
        }
    ));
    assert_eq!((f.tls, f.http), (None, None));
}

#[tokio::test]
async fn plain_http() {
    let addr = server(1, answer_http::<TcpStream>).await;
    let app = Application::Http(HttpTarget::root("localhost", addr.port(), 80));
    let f = run(
        addr,
        &request(app, TrustStore::system()),
        Duration::from_secs(3),
    )
    .await;
    // HTTP's client speaks first: no watch, the request goes out at once.
    assert_eq!((f.first, f.window), (First::Unwatched, Duration::ZERO));
    assert_eq!(f.http.unwrap().response.unwrap().status, 200);
}

#[tokio::test]
async fn https() {
    let tls = common::tls::ca_signed("After CA", vec!["localhost".to_string()]);
    let acceptor = tls.acceptor;
    let addr = server(1, move |s| {
        let acceptor = acceptor.clone();
        async move {
            if let Ok(tls) = acceptor.accept(s).await {
                answer_http(tls).await;
            }
        }
    })
    .await;
    let roots = Arc::new(TrustStore::from_certs([tls.ca_der]).unwrap());
    let app = Application::Https(HttpTarget::root("localhost", addr.port(), 443));
    let f = run(addr, &request(app, roots), Duration::from_secs(3)).await;
    assert!(f.tls.as_ref().unwrap().ok(), "{f:?}");
    assert_eq!(f.mss_retry, None);
    let r = f.http.unwrap().response.unwrap();
    assert_eq!((r.status, r.server.as_deref()), (200, Some("after-test")));
}

#[tokio::test]
async fn a_silent_tls_port_here_is_waited_for_without_an_mss_retry() {
    // On this machine no narrower link can be on the way: no reduced-MSS retry, the
    // handshake is waited for until the deadline.
    let addr = server(1, |s| async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(s);
    })
    .await;
    let start = Instant::now();
    let f = run(
        addr,
        &request(Application::Tls, TrustStore::system()),
        Duration::from_millis(800),
    )
    .await;
    assert!(start.elapsed() < Duration::from_millis(1500));
    assert_eq!(f.first, First::Unwatched);
    let tls = f.tls.unwrap();
    assert_eq!(tls.failure, Some(TlsFailure::NoReply));
    // The whole deadline, not half of it.
    assert!(tls.elapsed >= Duration::from_millis(700), "{tls:?}");
    // What the kernel had received when the handshake was given up: nothing.
    assert_eq!(tls.given_up.map(|g| g.bytes_received), Some(0));
    assert_eq!(f.mss_retry, None);
}

#[tokio::test]
async fn a_tls_server_slower_than_the_retry_wait_is_waited_for() {
    // 1.3 s before the handshake: past the 1 s after which a remote path gets its
    // reduced-MSS connection; here it is simply waited for.
    let tls = common::tls::ca_signed("Slow CA", vec!["localhost".to_string()]);
    let acceptor = tls.acceptor;
    let addr = server(1, move |s| {
        let acceptor = acceptor.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(1300)).await;
            let _ = acceptor.accept(s).await;
        }
    })
    .await;
    let roots = Arc::new(TrustStore::from_certs([tls.ca_der]).unwrap());
    let f = run(
        addr,
        &request(Application::Tls, roots),
        Duration::from_secs(3),
    )
    .await;
    let t = f.tls.unwrap();
    assert!(t.ok(), "{t:?}");
    assert!(
        t.first_answer.unwrap() > Duration::from_millis(1000),
        "{t:?}"
    );
    assert_eq!(f.mss_retry, None);
}

#[tokio::test]
async fn closed_ends_the_stage() {
    // Two connections: the handshake's, then the one that is watched to tell a hang-up on
    // every client from one on the ClientHello.
    let addr = server(2, |s| async move { drop(s) }).await;
    let f = run(
        addr,
        &request(Application::Tls, TrustStore::system()),
        Duration::from_secs(2),
    )
    .await;
    assert!(matches!(f.first, First::Closed | First::Reset));
    assert_eq!(f.tls, None);
}

#[tokio::test]
async fn a_hang_up_on_the_client_hello_only_is_the_handshake_s_failure() {
    // Closes a connection once it has read something: silent to a client that waits.
    let addr = server(2, |mut s| async move {
        let mut b = [0u8; 1];
        let _ = tokio::io::AsyncReadExt::read(&mut s, &mut b).await;
        drop(s);
    })
    .await;
    let f = run(
        addr,
        &request(Application::Tls, TrustStore::system()),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(f.first, First::Unwatched);
    assert!(
        matches!(
            f.tls.as_ref().and_then(|t| t.failure.clone()),
            Some(TlsFailure::Closed | TlsFailure::Reset)
        ),
        "{f:?}"
    );
}

#[tokio::test]
async fn on_this_machine_the_watch_ends_soon_after_the_program_accepts() {
    // A program that accepts and waits: watched until shortly after its accept().
    let addr = server(1, |s| async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(s);
    })
    .await;
    // As over a 50 ms round trip: the window is 400 ms (8 round trips), far longer than the
    // grace, so that ending at the grace and ending at the window's end cannot be mistaken
    // for each other, even when a busy machine wakes the watch late.
    let s = TcpStream::connect(addr).await.unwrap();
    let rtt = Duration::from_millis(50);
    let req = request(Application::Watch, TrustStore::empty());
    let f = after_connect(s, addr, rtt, &req, Instant::now() + Duration::from_secs(2)).await;
    assert_eq!(f.first, First::Silent);
    let accepted = f.accepted.expect("the kernel showed the accept");
    assert!(accepted <= f.window, "{f:?}");
    // Ends the grace after the accept, give or take a late wake-up; not at the window's end.
    let bound = accepted + canreach::session::watch::ACCEPTED_GRACE + Duration::from_millis(100);
    assert!(
        f.window <= bound && f.window < Duration::from_millis(400),
        "watched past the grace: {f:?}"
    );

    // A program that never accepts: watched for the accept up to ACCEPT_WAIT, then recorded
    // as not taking the connection, with its queue.
    let idle = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = idle.local_addr().unwrap();
    let f = run(
        addr,
        &request(Application::Watch, TrustStore::empty()),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!((&f.first, f.accepted), (&First::Silent, None));
    let wait = canreach::session::watch::ACCEPT_WAIT;
    let n = f.not_accepted.clone().expect("not accepted");
    assert!(
        n.waited + Duration::from_millis(2) >= wait && !n.cut_short,
        "{n:?}"
    );
    assert!(f.window <= n.waited, "{f:?}");
    assert!(n.queued >= Some(1), "{n:?}");
    assert!(n.backlog.is_some(), "{n:?}");
    // With a deadline shorter than the wait: said to be cut short.
    let f = run(
        addr,
        &request(Application::Watch, TrustStore::empty()),
        Duration::from_millis(100),
    )
    .await;
    assert!(f.not_accepted.expect("not accepted").cut_short);
    drop(idle);
}

/// A program slow to accept (busy: it takes the connection after 150 ms, far past the 8 ms
/// window) is watched until it does, and is not said to refuse connections.
#[tokio::test]
async fn a_program_slow_to_accept_is_waited_for_not_called_hung() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let Ok((s, _)) = listener.accept().await else {
            return;
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(s);
    });
    let f = run(
        addr,
        &request(Application::Watch, TrustStore::empty()),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(f.first, First::Silent);
    assert_eq!(f.not_accepted, None, "{f:?}");
    let accepted = f.accepted.expect("the accept was seen");
    assert!(accepted >= Duration::from_millis(140), "{f:?}");
    // Watched the grace after the accept, not to the end of the wait for it.
    assert!(
        f.window <= accepted + canreach::session::watch::ACCEPTED_GRACE + Duration::from_millis(20),
        "{f:?}"
    );
}
