//! The session stage as one call: what a pipeline runs after a successful connect.
//!
//! Order, and why:
//! 1. **First moments** ([`first::watch`]): a reset, a close or a greeting ends the stage —
//!    speaking TLS or HTTP to an SSH server or a dead backend would only blur the fact.
//! 2. **TLS**, when the application is TLS: the handshake. A handshake that got no reply, or
//!    stalled after part of the server's flight, is tried once more on a new connection with a
//!    reduced MSS ([`mss`]): success there is the proof of a path-MTU black hole. The first
//!    attempt gets half the remaining time so that the retry fits before the deadline.
//! 3. **HTTP**, when the application is HTTP(S): one request over the plain stream or the TLS
//!    session.
//!
//! Which application a port speaks is the caller's choice; [`application_for`] gives the usual
//! answer from the service name and port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::first::{self, First};
use super::http::{self, HttpFacts, HttpTarget};
use super::mss;
use super::tls::{self, TlsFacts, TlsFailure, TlsRequest, TrustStore, Versions};

/// What to speak after the first moments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Application {
    /// Only watch the first moments (databases, SSH, anything unknown).
    Watch,
    /// A TLS handshake, then nothing (implicit-TLS mail and directory ports, unknown TLS).
    Tls,
    /// One plain HTTP request.
    Http(HttpTarget),
    /// A TLS handshake (ALPN `http/1.1`), then one HTTP request over it.
    Https(HttpTarget),
}

/// The usual application for a service name (`/etc/services` or a URL scheme) and port; the
/// HTTP request is for `/` on `host`.
pub fn application_for(service: Option<&str>, host: &str, port: u16) -> Application {
    let by_name = match service.map(str::to_ascii_lowercase).as_deref() {
        Some("https" | "wss") => Some(443),
        Some("http" | "ws" | "http-alt") => Some(80),
        Some("imaps" | "pop3s" | "submissions" | "smtps" | "ldaps" | "ftps" | "amqps") => Some(0),
        _ => None,
    };
    match (by_name, port) {
        (Some(443), _) | (None, 443 | 8443 | 6443) => {
            Application::Https(HttpTarget::root(host, port, 443))
        }
        (Some(80), _) | (None, 80 | 8080 | 8000) => {
            Application::Http(HttpTarget::root(host, port, 80))
        }
        (Some(_), _) | (None, 993 | 995 | 465 | 636 | 990 | 5671) => Application::Tls,
        (None, _) => Application::Watch,
    }
}

/// What to do after the connect.
#[derive(Debug, Clone)]
pub struct SessionRequest {
    /// The host as the user wrote it: the TLS server name (SNI; an IP literal is allowed).
    pub host: String,
    pub application: Application,
    pub roots: Arc<TrustStore>,
    /// Retry a silent or stalled TLS handshake with a reduced MSS.
    pub mss_retry: bool,
}

/// The reduced-MSS retry of a TLS handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MssRetry {
    pub mss: u32,
    /// The new connection failed: which step, and the OS's errno.
    pub connect_error: Option<mss::MssFailure>,
    /// The handshake over it.
    pub tls: Option<TlsFacts>,
}

/// Everything the session stage saw for one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFacts {
    pub address: SocketAddr,
    /// How long the first moments were watched (zero when they were not: [`First::Unwatched`]).
    pub window: Duration,
    pub first: First,
    pub tls: Option<TlsFacts>,
    pub mss_retry: Option<MssRetry>,
    pub http: Option<HttpFacts>,
}

/// Run the session stage over `stream`, just connected to `address` in `connect_rtt`.
pub async fn after_connect(
    stream: TcpStream,
    address: SocketAddr,
    connect_rtt: Duration,
    req: &SessionRequest,
    deadline: Instant,
) -> SessionFacts {
    // Requests go out whole: without TCP_NODELAY a request written in two TLS records waits
    // on the server's delayed ACK (40 ms a time). curl sets it too.
    let _ = stream.set_nodelay(true);
    quickack(&stream);
    // The probe's connect time includes this process's own delays (many targets in one
    // runtime, a busy machine): the kernel's round-trip time is the network's.
    let rtt = {
        use std::os::fd::AsRawFd;
        crate::sys::tcp_rtt(stream.as_raw_fd()).map_or(connect_rtt, |k| k.min(connect_rtt))
    };
    let window = first::window_for(rtt);
    // TLS and HTTP clients speak first: send at once rather than watch a silence that is
    // normal for them (the watch was most of a TLS check on a fast path). What the watch
    // would have shown comes back as the protocol's answer instead.
    let client_first = !matches!(req.application, Application::Watch);
    let first = if client_first {
        First::Unwatched
    } else {
        first::watch(&stream, window, deadline).await
    };
    let mut facts = SessionFacts {
        address,
        window,
        first,
        tls: None,
        mss_retry: None,
        http: None,
    };
    if !matches!(facts.first, First::Silent | First::Unwatched) {
        return facts;
    }
    match &req.application {
        Application::Watch => {}
        Application::Http(target) => {
            let mut stream = stream;
            let head_by = head_deadline(window, deadline);
            let mut h = http::request(&mut stream, target, head_by).await;
            // Closed first: a one-connection-at-a-time server would not take the next.
            drop(stream);
            if unanswered_head(&h) {
                // Some servers never answer HEAD (`openssl s_server -www`): ask once with GET
                // on a new connection before calling the program silent.
                if let Ok(Ok(mut s)) =
                    tokio::time::timeout_at(deadline, TcpStream::connect(address)).await
                {
                    let _ = s.set_nodelay(true);
                    h = get_instead(&mut s, target, h, deadline).await;
                }
            }
            facts.http = Some(h);
        }
        Application::Tls => {
            let _ = tls_with_retry(stream, address, &[], req, deadline, &mut facts).await;
        }
        Application::Https(target) => {
            let alpn: &[&[u8]] = &[b"http/1.1"];
            if let Some(mut session) =
                tls_with_retry(stream, address, alpn, req, deadline, &mut facts).await
            {
                let head_by = head_deadline(window, deadline);
                let mut h = http::request(&mut session, target, head_by).await;
                drop(session);
                if unanswered_head(&h) {
                    let treq = TlsRequest {
                        server_name: &req.host,
                        alpn,
                        roots: &req.roots,
                        versions: Versions::Any,
                    };
                    if let Ok(Ok(s)) =
                        tokio::time::timeout_at(deadline, TcpStream::connect(address)).await
                    {
                        let _ = s.set_nodelay(true);
                        if let (_, Some(mut again)) =
                            tls::handshake_session(s, &treq, deadline).await
                        {
                            h = get_instead(&mut again, target, h, deadline).await;
                        }
                    }
                }
                facts.http = Some(h);
            }
        }
    }
    if client_first {
        settle_first(&mut facts, address, window, deadline).await;
        if facts.first == First::Unwatched {
            facts.window = Duration::ZERO;
        }
    }
    facts
}

/// A reply in another protocol that is a known greeting (SSH, SMTP, …: servers that speak
/// first, whatever the client sent) is the first moments' banner, as a watch would have
/// seen it.
///
/// After a hang-up without a byte in answer to the first message (TLS or HTTP): did the
/// program hang up on that message, or on every connection as soon as it is accepted (a
/// proxy whose backend is down)? A new connection, watched without a word, tells: if it is
/// closed or reset too, the first moments say so (`accepted_then_closed`/`_reset`) in place of
/// the protocol's failure. Otherwise the protocol's failure stands.
async fn settle_first(
    facts: &mut SessionFacts,
    address: SocketAddr,
    window: Duration,
    deadline: Instant,
) {
    let tls_unheard = facts.tls.as_ref().is_some_and(|t| {
        matches!(t.failure, Some(tls::TlsFailure::Closed | tls::TlsFailure::Reset))
            && t.chain.is_empty()
            && t.version.is_none()
    });
    let http_unheard = facts.http.as_ref().is_some_and(|h| {
        h.response.is_none()
            && matches!(
                h.failure,
                Some(http::HttpFailure::Closed | http::HttpFailure::Reset)
            )
    });
    let other = match (&facts.tls, &facts.http) {
        (Some(t), _) => match &t.failure {
            Some(tls::TlsFailure::NotTls { first_bytes }) => Some(first_bytes),
            _ => None,
        },
        (None, Some(h)) => match &h.failure {
            Some(http::HttpFailure::NotHttp { first_bytes }) => Some(first_bytes),
            _ => None,
        },
        _ => None,
    };
    if let Some(bytes) = other {
        let banner = first::banner(bytes);
        if matches!(&banner, First::Banner { kind, .. } if *kind != first::BannerKind::Unknown) {
            facts.first = banner;
            facts.tls = None;
            facts.http = None;
            facts.mss_retry = None;
            return;
        }
    }
    if !(tls_unheard || http_unheard) {
        return;
    }
    let first = match tokio::time::timeout_at(deadline, TcpStream::connect(address)).await {
        Ok(Ok(s)) => first::watch(&s, window, deadline).await,
        Ok(Err(e)) if e.raw_os_error() == Some(libc::ECONNRESET) => First::Reset,
        _ => return,
    };
    if matches!(first, First::Closed | First::Reset) {
        facts.first = first;
        facts.window = window;
        facts.tls = None;
        facts.http = None;
        facts.mss_retry = None;
    }
}

/// Acknowledge at once rather than after the delayed-ACK timer: a server whose small reply
/// waits behind its own unacknowledged segment (Nagle) would otherwise wait 40 ms for us.
fn quickack(s: &TcpStream) {
    let _ = socket2::SockRef::from(s).set_tcp_quickack(true);
}

/// How long a `HEAD` may go unanswered before a `GET` is tried instead (at least; sixteen
/// round trips on a slower path): a server that never answers HEAD is not a silent program.
pub const HEAD_WAIT: Duration = Duration::from_secs(1);

fn head_deadline(window: Duration, deadline: Instant) -> Instant {
    let now = Instant::now();
    let fair = HEAD_WAIT.max(window.saturating_mul(2));
    now + fair.min(deadline.saturating_duration_since(now) / 2)
}

fn unanswered_head(h: &HttpFacts) -> bool {
    h.method == http::Method::Head && h.failure == Some(http::HttpFailure::NoReply)
}

/// The `GET` on a new connection after an unanswered `HEAD`; its answer (or failure) stands.
async fn get_instead<S>(
    stream: &mut S,
    target: &HttpTarget,
    head: HttpFacts,
    deadline: Instant,
) -> HttpFacts
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let started = Instant::now();
    let got = http::exchange(stream, target, http::Method::Get, deadline).await;
    HttpFacts {
        method: http::Method::Get,
        head_status: None,
        response: got.as_ref().ok().cloned(),
        failure: got.err(),
        elapsed: head.elapsed + started.elapsed(),
    }
}

/// How long a first TLS handshake may stay silent or stalled before the reduced-MSS retry
/// (at least; sixteen round trips on a slower path).
pub const HANDSHAKE_WAIT: Duration = Duration::from_secs(1);

/// The handshake, and the reduced-MSS retry when it got nothing or stalled; the usable
/// session, if any.
async fn tls_with_retry(
    stream: TcpStream,
    address: SocketAddr,
    alpn: &[&[u8]],
    req: &SessionRequest,
    deadline: Instant,
    facts: &mut SessionFacts,
) -> Option<tls::TlsSession> {
    let treq = TlsRequest {
        server_name: &req.host,
        alpn,
        roots: &req.roots,
        versions: Versions::Any,
    };
    // A handshake takes a few round trips and the server's signing: a second, or sixteen
    // round trips on a slow path, is plenty. Past that (and never more than half of what is
    // left, so the retry fits), a silent or stalled handshake is retried with a smaller MSS.
    let first_deadline = if req.mss_retry {
        let now = Instant::now();
        let fair = HANDSHAKE_WAIT.max(facts.window.saturating_mul(2));
        now + fair.min(deadline.saturating_duration_since(now) / 2)
    } else {
        deadline
    };
    let (mut tls_facts, mut session) = tls::handshake_session(stream, &treq, first_deadline).await;
    // The quick store (the bundle file alone) did not know the issuer: ask again, on a new
    // connection, with the whole store (its directories too), where OpenSSL would have looked.
    let about_issuer = matches!(
        tls_facts.failure,
        Some(TlsFailure::UnknownIssuer { .. } | TlsFailure::MissingIntermediate { .. })
            | Some(TlsFailure::SelfSigned)
    );
    if about_issuer && req.roots.is_partial() {
        let full = TrustStore::system();
        let treq = TlsRequest {
            roots: &full,
            ..treq
        };
        if let Ok(Ok(s)) = tokio::time::timeout_at(deadline, TcpStream::connect(address)).await {
            let _ = s.set_nodelay(true);
            (tls_facts, session) = tls::handshake_session(s, &treq, first_deadline).await;
        }
    }
    let silent = matches!(
        tls_facts.failure,
        Some(TlsFailure::NoReply | TlsFailure::Stalled { .. })
    );
    facts.tls = Some(tls_facts);
    if !(silent && req.mss_retry) {
        return session;
    }
    let mss = mss::reduced_mss(&address);
    let mut retry = MssRetry {
        mss,
        connect_error: None,
        tls: None,
    };
    let mut usable = None;
    match mss::connect_with_mss(address, mss, deadline).await {
        Err(e) => retry.connect_error = Some(mss::MssFailure::from(&e)),
        Ok(s) => {
            let _ = s.set_nodelay(true);
            let (f, session) = tls::handshake_session(s, &treq, deadline).await;
            retry.tls = Some(f);
            usable = session;
        }
    }
    facts.mss_retry = Some(retry);
    usable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usual_applications() {
        assert_eq!(
            application_for(Some("https"), "example.com", 443),
            Application::Https(HttpTarget::root("example.com", 443, 443))
        );
        assert_eq!(
            application_for(None, "example.com", 8443),
            Application::Https(HttpTarget {
                host_header: "example.com:8443".into(),
                path: "/".into()
            })
        );
        assert_eq!(
            application_for(Some("http"), "::1", 8081),
            Application::Http(HttpTarget {
                host_header: "[::1]:8081".into(),
                path: "/".into()
            })
        );
        assert_eq!(application_for(Some("imaps"), "h", 993), Application::Tls);
        assert_eq!(application_for(None, "h", 636), Application::Tls);
        assert_eq!(
            application_for(Some("postgresql"), "h", 5432),
            Application::Watch
        );
        assert_eq!(application_for(None, "h", 22), Application::Watch);
    }
}
