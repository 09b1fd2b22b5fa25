//! The session stage as one call: what a pipeline runs after a successful connect.
//!
//! Order, and why:
//! 1. **Before the client speaks** ([`watch::watch`]): a reset, a close or a greeting ends the stage —
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
//!
//! **Through an HTTP proxy** ([`after_connect_via`]): the connected address is the proxy's.
//! After the watch before speaking, TLS and bare TCP go through a tunnel (`CONNECT host:port`, the
//! proxy's answer kept as [`ViaProxy::Tunnel`]; a refusal ends the stage), and plain HTTP is
//! asked of the proxy in absolute form (`HEAD http://host/path`, [`ViaProxy::Forward`]) — what
//! curl does. No reduced-MSS retry then: the retry would go to the proxy without its tunnel.
//!
//! **`expects_tls`, confirmed**: when a plain HTTP request got a TLS record back (or the
//! server hung up on it without a word, as OpenSSL-based servers do), a second connection
//! tries a TLS handshake ([`SessionFacts::tls_confirm`]), so the diagnosis can say whether the
//! port really speaks TLS or its reply only looked like it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::http::{self, HttpFacts, HttpTarget};
use super::mss;
use super::protocols::{self, Ending, Params, Protocol, ProtocolFacts, Selection};
use super::proxy::{self, ConnectFacts};
use super::tls::{self, TlsFacts, TlsFailure, TlsRequest, TrustStore, Versions};
use super::watch::{self, First};

/// What to speak once connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Application {
    /// Only watch what the server does unasked (databases, SSH, anything unknown).
    Watch,
    /// A TLS handshake, then nothing (implicit-TLS mail and directory ports, unknown TLS).
    Tls,
    /// One plain HTTP request.
    Http(HttpTarget),
    /// A TLS handshake (ALPN `http/1.1`), then one HTTP request over it.
    Https(HttpTarget),
    /// A service's own opening, without credentials (PostgreSQL, Redis, MySQL …).
    Service(Box<ServiceRequest>),
}

/// What to say to a service ([`Application::Service`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRequest {
    pub selection: Selection,
    /// Who canreach says it is (the URL's user and database); never a password.
    pub params: Params,
    /// The URL asks for TLS (PostgreSQL `sslmode=require` and stronger): a server that
    /// refuses it fails the application.
    pub tls_required: bool,
}

/// What a service said in its own protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceFacts {
    pub protocol: Protocol,
    /// The URL asks for TLS ([`ServiceRequest::tls_required`]).
    pub tls_required: bool,
    /// The user and database the URL named (canreach's own otherwise).
    pub user: Option<String>,
    pub database: Option<String>,
    /// This side's address of the connection: what the server should have seen, unless
    /// something in between (NAT, a proxy) changed it.
    pub local: Option<SocketAddr>,
    /// The conversation on the connection as it came (after the TLS handshake for implicit
    /// TLS).
    pub first: ProtocolFacts,
    /// When the server agreed to TLS (PostgreSQL's `S`): the conversation inside the TLS
    /// session ([`SessionFacts::tls`] holds the handshake).
    pub after_tls: Option<ProtocolFacts>,
}

// The facts are compared whole in tests; the one float among them (MongoDB's `ok`) is a
// number the server sent, never NaN in practice, and no code relies on `Eq` for it.
impl Eq for ServiceFacts {}

impl ServiceFacts {
    /// The conversation that counts: the one inside TLS when there was one.
    pub(crate) fn last(&self) -> &ProtocolFacts {
        self.after_tls.as_ref().unwrap_or(&self.first)
    }
}

/// The usual application for a service name (`/etc/services` or a URL scheme) and port; the
/// HTTP request is for `/` on `host`.
pub(crate) fn application_for(service: Option<&str>, host: &str, port: u16) -> Application {
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
    /// For a port on this machine: the processes behind its listener, from the local
    /// inspection, so the watch before speaking ends when the program waits for the client to
    /// speak ([`watch::watch_this_machine`]). `None`: not inspected.
    pub program: Option<watch::Program>,
    /// What a prober asks beyond the usual check (`canreach serve`'s modules); `None` for
    /// the CLI.
    pub ask: Option<Arc<super::ask::Ask>>,
}

/// The reduced-MSS retry of a TLS handshake, opened beside the first while it still waited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MssRetry {
    pub mss: u32,
    /// After how long (from the start of the first handshake) the retry was opened.
    pub opened: Duration,
    /// The new connection failed: which step, and the OS's errno.
    pub connect_error: Option<mss::MssFailure>,
    /// The handshake over it.
    pub tls: Option<TlsFacts>,
}

/// Where an HTTP proxy (the connected address) is asked to take the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Destination {
    /// The destination's host as the user wrote it (IPv6 without brackets is fine).
    pub host: String,
    pub port: u16,
}

/// How the session went through an HTTP proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViaProxy {
    /// `CONNECT host:port` and what the proxy said; when it opened the tunnel, the TLS and
    /// HTTP facts are the destination's, through it.
    Tunnel(Box<ConnectFacts>),
    /// The HTTP request went to the proxy in absolute form (`HEAD http://host/path`): the
    /// answer is the destination's as relayed, or the proxy's own.
    Forward,
}

/// Everything the session stage saw for one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFacts {
    pub address: SocketAddr,
    /// How long the connection was watched before the client spoke (zero when it was not:
    /// [`First::Unwatched`]).
    pub window: Duration,
    /// For a connection to this machine: after how long the program took it (`accept()`),
    /// when the kernel showed it within the watch (see [`watch::watch_this_machine`]).
    pub accepted: Option<Duration>,
    /// After how long the program, having accepted the connection and kept it open, was seen
    /// waiting for the client to speak (every thread asleep, see `crate::local::idle`); the
    /// watch ended there. JSON keeps the older name `at_rest_ms`.
    pub waiting_for_client: Option<Duration>,
    /// For a connection to this machine: the program did not take it (`accept()`) within
    /// [`watch::ACCEPT_WAIT`] (see [`watch::watch_this_machine`]).
    pub not_accepted: Option<watch::NotAccepted>,
    pub first: First,
    /// Set when the address is an HTTP proxy the session went through.
    pub via: Option<ViaProxy>,
    pub tls: Option<TlsFacts>,
    pub mss_retry: Option<MssRetry>,
    pub http: Option<HttpFacts>,
    /// After a plain HTTP request got a TLS record back, or a close or reset without an
    /// answer: a TLS handshake on a second connection (this machine's trust store; the outcome
    /// is kept whatever it is).
    pub tls_confirm: Option<TlsFacts>,
    /// What the prober's own questions gave ([`SessionRequest::ask`]).
    pub answered: Option<super::ask::Answered>,
    /// What the service said in its own protocol ([`Application::Service`]).
    pub service: Option<ServiceFacts>,
}

impl SessionFacts {
    /// What a session to `address` saw when it watched for `window` and saw `first`, and
    /// nothing else yet: the stage and the tests fill in the rest.
    pub(crate) fn new(address: SocketAddr, window: Duration, first: First) -> Self {
        SessionFacts {
            address,
            window,
            accepted: None,
            waiting_for_client: None,
            not_accepted: None,
            first,
            via: None,
            tls: None,
            mss_retry: None,
            http: None,
            tls_confirm: None,
            answered: None,
            service: None,
        }
    }
}

/// Run the session stage over `stream`, just connected to `address` in `connect_rtt`.
pub async fn after_connect(
    stream: TcpStream,
    address: SocketAddr,
    connect_rtt: Duration,
    req: &SessionRequest,
    deadline: Instant,
) -> SessionFacts {
    after_connect_via(stream, address, connect_rtt, req, None, deadline).await
}

/// The same, where `address` is an HTTP proxy when `via` is given: the session goes through
/// it to `via` (see the module doc).
pub(crate) async fn after_connect_via(
    stream: TcpStream,
    address: SocketAddr,
    connect_rtt: Duration,
    req: &SessionRequest,
    via: Option<&Destination>,
    deadline: Instant,
) -> SessionFacts {
    let s = Session::new(&stream, address, connect_rtt, req, via, deadline);
    let ends = (stream.local_addr(), stream.peer_addr());
    let connected_at = Instant::now();
    let mut stream = stream;
    let mut facts = s.watch_first(&stream).await;
    if s.wants_plain_dialogue(&facts) {
        let d = super::ask::dialogue(&mut stream, s.dialogue(), deadline).await;
        facts.answered = Some(super::ask::Answered {
            http: None,
            dialogue: Some(d),
        });
        return facts;
    }
    if !matches!(facts.first, First::Silent | First::Unwatched) {
        return facts;
    }
    // Through a proxy: plain HTTP is asked of the proxy in absolute form; everything else
    // goes through a tunnel, which must open first.
    let forward = via.is_some() && matches!(req.application, Application::Http(_));
    if let (Some(dest), false) = (via, forward) {
        let c = proxy::connect_tunnel(&mut stream, &dest.host, dest.port, deadline).await;
        let open = c.open();
        facts.via = Some(ViaProxy::Tunnel(Box::new(c)));
        if !open {
            return facts;
        }
    }
    if forward {
        facts.via = Some(ViaProxy::Forward);
    }
    // A retry with a smaller MSS would reach the proxy, not the destination.
    let no_retry = SessionRequest {
        mss_retry: false,
        ..req.clone()
    };
    let s = Session {
        req: if via.is_some() { &no_retry } else { req },
        ..s
    };
    let asked_only = match &s.req.application {
        Application::Watch => false,
        Application::Http(target) => s.http(stream, target, forward, &mut facts).await,
        Application::Tls => {
            s.tls(stream, &mut facts).await;
            false
        }
        Application::Https(target) => s.https(stream, target, &mut facts).await,
        Application::Service(sr) => {
            s.service(stream, sr, &mut facts).await;
            facts.window = Duration::ZERO;
            // On this machine, an opening that got nothing back: was the connection ever
            // taken from the accept queue? (Still queued, the program does not take
            // connections.)
            let unanswered = facts.service.as_ref().is_some_and(|svc| {
                protocols::failure(svc.last()) == Some(&protocols::WireFailure::NoReply)
            });
            if let (true, true, None, (Ok(client), Ok(server))) =
                (s.here, unanswered, via, (&ends.0, &ends.1))
            {
                let program = req.program.as_ref();
                facts.not_accepted =
                    watch::still_queued(*server, *client, connected_at, program, deadline).await;
            }
            // The protocol's own failures are the facts; no hang-up or greeting to settle.
            true
        }
    };
    if !asked_only {
        s.after_speaking(&mut facts, ends, connected_at).await;
    }
    facts
}

/// One session's fixed parts, for the steps of [`after_connect_via`].
#[derive(Debug, Clone, Copy)]
struct Session<'a> {
    address: SocketAddr,
    req: &'a SessionRequest,
    via: Option<&'a Destination>,
    /// The address is this machine's.
    here: bool,
    /// How long what the server does unasked is watched ([`watch::window_for`]).
    window: Duration,
    /// The client speaks first (TLS, HTTP): nothing is watched before it does.
    client_first: bool,
    deadline: Instant,
}

impl<'a> Session<'a> {
    /// The session over `stream`, just connected in `connect_rtt`; sets its options.
    fn new(
        stream: &TcpStream,
        address: SocketAddr,
        connect_rtt: Duration,
        req: &'a SessionRequest,
        via: Option<&'a Destination>,
        deadline: Instant,
    ) -> Session<'a> {
        // Requests go out whole: without TCP_NODELAY a request written in two TLS records waits
        // on the server's delayed ACK (40 ms a time). curl sets it too.
        let _ = stream.set_nodelay(true);
        quickack(stream);
        // The probe's connect time includes this process's own delays (many targets in one
        // runtime, a busy machine): the kernel's round-trip time is the network's.
        let rtt = {
            use std::os::fd::AsRawFd;
            crate::sys::tcp_rtt(stream.as_raw_fd()).map_or(connect_rtt, |k| k.min(connect_rtt))
        };
        // On this machine the kernel shows when the program takes the connection: watched until
        // shortly after that rather than for the whole window.
        let here = matches!(
            (stream.local_addr(), stream.peer_addr()),
            (Ok(l), Ok(p)) if p.ip().is_loopback() || p.ip() == l.ip()
        );
        Session {
            address,
            req,
            via,
            here,
            window: watch::window_for(rtt),
            // TLS and HTTP clients speak first: send at once rather than watch a silence that
            // is normal for them (the watch was most of a TLS check on a fast path). What the
            // watch would have shown comes back as the protocol's answer instead.
            client_first: !matches!(req.application, Application::Watch),
            deadline,
        }
    }
}

impl Session<'_> {
    /// Before the client speaks: what the server does unasked.
    async fn watch_first(&self, stream: &TcpStream) -> SessionFacts {
        let (window, deadline) = (self.window, self.deadline);
        let seen = if self.client_first {
            watch::Watched::connection_only(First::Unwatched, window)
        } else if self.here {
            let program = self.req.program.clone();
            watch::watch_this_machine(stream, window, deadline, program).await
        } else {
            let first = watch::watch(stream, window, deadline).await;
            watch::Watched::connection_only(first, window)
        };
        SessionFacts {
            accepted: seen.accepted,
            waiting_for_client: seen.waiting_for_client,
            not_accepted: seen.not_accepted,
            ..SessionFacts::new(self.address, seen.watched, seen.first)
        }
    }

    /// The prober's dialogue ([`SessionRequest::ask`]), if any.
    fn dialogue(&self) -> &[super::ask::Step] {
        self.req.ask.as_deref().map_or(&[][..], |a| &a.dialogue[..])
    }

    /// A dialogue asked of a plain connection: after what the server did unasked (a
    /// greeting stays in the socket for it to read), unless the program already hung up.
    fn wants_plain_dialogue(&self, facts: &SessionFacts) -> bool {
        !self.dialogue().is_empty()
            && self.via.is_none()
            && matches!(self.req.application, Application::Watch)
            && matches!(facts.first, First::Silent | First::Banner { .. })
    }

    /// One HTTP request over the plain connection (`forward`: to the proxy, in absolute
    /// form); `true` when it was the prober's own exchange, which ends the session.
    async fn http(
        &self,
        mut stream: TcpStream,
        target: &HttpTarget,
        forward: bool,
        facts: &mut SessionFacts,
    ) -> bool {
        let deadline = self.deadline;
        let target = &if forward {
            target.absolute_form()
        } else {
            target.clone()
        };
        if let Some(asked) = self.req.ask.as_deref().and_then(|a| a.http.as_ref()) {
            let x = super::ask::http_exchange(&mut stream, asked, target, deadline).await;
            facts.http = Some(x.as_http_facts());
            facts.answered = Some(super::ask::Answered {
                http: Some(x),
                dialogue: None,
            });
            return true;
        }
        let head_by = head_deadline(self.window, deadline);
        let mut h = http::request(&mut stream, target, head_by).await;
        // Closed first: a one-connection-at-a-time server would not take the next.
        drop(stream);
        if unanswered_head(&h) {
            // Some servers never answer HEAD (`openssl s_server -www`): ask once with GET on
            // a new connection before calling the program silent.
            if let Ok(Ok(mut s)) =
                tokio::time::timeout_at(deadline, TcpStream::connect(self.address)).await
            {
                let _ = s.set_nodelay(true);
                h = get_instead(&mut s, target, h, deadline).await;
            }
        }
        // A TLS record back, or a hang-up without a word (OpenSSL-based servers close on
        // plain HTTP): does the port complete a TLS handshake?
        let maybe_tls = matches!(
            h.failure,
            Some(
                http::HttpFailure::ExpectsTls { .. }
                    | http::HttpFailure::Closed
                    | http::HttpFailure::Reset
            )
        );
        facts.http = Some(h);
        if maybe_tls && self.via.is_none() {
            facts.tls_confirm = confirm_tls(self.address, &self.req.host, deadline).await;
        }
        false
    }

    /// A TLS handshake, then the prober's dialogue over it if one was asked.
    async fn tls(&self, stream: TcpStream, facts: &mut SessionFacts) {
        let session = tls_with_retry(stream, self, &[], facts).await;
        if let (Some(mut session), false) = (session, self.dialogue().is_empty()) {
            let d = super::ask::dialogue(&mut session, self.dialogue(), self.deadline).await;
            facts.answered = Some(super::ask::Answered {
                http: None,
                dialogue: Some(d),
            });
        }
    }

    /// A TLS handshake, then one HTTP request over it; `true` when it was the prober's own
    /// exchange, which ends the session.
    async fn https(
        &self,
        stream: TcpStream,
        target: &HttpTarget,
        facts: &mut SessionFacts,
    ) -> bool {
        let deadline = self.deadline;
        let alpn: &[&[u8]] = &[b"http/1.1"];
        let Some(mut session) = tls_with_retry(stream, self, alpn, facts).await else {
            return false;
        };
        if let Some(asked) = self.req.ask.as_deref().and_then(|a| a.http.as_ref()) {
            let x = super::ask::http_exchange(&mut session, asked, target, deadline).await;
            facts.http = Some(x.as_http_facts());
            facts.answered = Some(super::ask::Answered {
                http: Some(x),
                dialogue: None,
            });
            return true;
        }
        let head_by = head_deadline(self.window, deadline);
        let mut h = http::request(&mut session, target, head_by).await;
        drop(session);
        if unanswered_head(&h) {
            let treq = TlsRequest {
                server_name: &self.req.host,
                alpn,
                roots: &self.req.roots,
                versions: Versions::Any,
            };
            if let Some(s) = reconnect(self.address, self.via, deadline).await
                && let (_, Some(mut again)) = tls::handshake_session(s, &treq, deadline).await
            {
                h = get_instead(&mut again, target, h, deadline).await;
            }
        }
        facts.http = Some(h);
        false
    }

    /// A service's own opening: TLS first for implicit TLS; after PostgreSQL's `S`, the TLS
    /// handshake on the same connection, then the startup inside it.
    async fn service(&self, stream: TcpStream, sr: &ServiceRequest, facts: &mut SessionFacts) {
        let (deadline, protocol) = (self.deadline, sr.selection.protocol);
        let treq = TlsRequest {
            server_name: &self.req.host,
            alpn: &[],
            roots: &self.req.roots,
            versions: Versions::Any,
        };
        let local = stream.local_addr().ok();
        let service = |first, after_tls| {
            Some(ServiceFacts {
                protocol,
                tls_required: sr.tls_required,
                user: sr.params.user.clone(),
                database: sr.params.database.clone(),
                local,
                first,
                after_tls,
            })
        };
        if sr.selection.implicit_tls {
            let (t, session) = tls::handshake_session(stream, &treq, deadline).await;
            facts.tls = Some(t);
            if let Some(mut session) = session {
                let f = protocols::converse(protocol, &mut session, &sr.params, deadline).await;
                facts.service = service(f, None);
            }
            return;
        }
        let mut stream = stream;
        let first = protocols::converse(protocol, &mut stream, &sr.params, deadline).await;
        let handed = protocols::ending(&first) == Ending::HandedOver;
        if !handed {
            facts.service = service(first, None);
            return;
        }
        let (t, session) = tls::handshake_session(stream, &treq, deadline).await;
        facts.tls = Some(t);
        let after = match (session, &first) {
            (Some(mut session), ProtocolFacts::Postgres(_)) => {
                let params = Params {
                    postgres_ssl: protocols::postgres::SslMode::Skip,
                    ..sr.params.clone()
                };
                Some(protocols::converse(protocol, &mut session, &params, deadline).await)
            }
            _ => None,
        };
        facts.service = service(first, after);
    }

    /// Once the client spoke: on this machine, was an unanswered connection ever taken from
    /// the accept queue; was a hang-up the program's answer to every connection.
    async fn after_speaking(
        &self,
        facts: &mut SessionFacts,
        ends: (std::io::Result<SocketAddr>, std::io::Result<SocketAddr>),
        connected_at: Instant,
    ) {
        // On this machine, a first message that got nothing back: was the connection ever
        // taken from the accept queue? (Still queued, the program does not take connections.)
        let unanswered = matches!(
            facts.tls.as_ref().and_then(|t| t.failure.as_ref()),
            Some(tls::TlsFailure::NoReply)
        ) || matches!(
            facts.http.as_ref().and_then(|h| h.failure.as_ref()),
            Some(http::HttpFailure::NoReply)
        );
        if let (true, true, None, (Ok(client), Ok(server))) =
            (self.here, unanswered, self.via, ends)
        {
            let program = self.req.program.as_ref();
            facts.not_accepted =
                watch::still_queued(server, client, connected_at, program, self.deadline).await;
        }
        // Through a proxy, a hang-up or a greeting is the proxy's or the tunnel's: not
        // watched.
        if self.client_first && self.via.is_none() {
            settle_first(facts, self.address, self.window, self.deadline).await;
        }
        if self.client_first && facts.first == First::Unwatched {
            facts.window = Duration::ZERO;
        }
    }
}

/// A reply in another protocol that is a known greeting (SSH, SMTP, …: servers that speak
/// first, whatever the client sent) is the banner a watch before speaking would have seen.
///
/// After a hang-up without a byte in answer to the first message (TLS or HTTP): did the
/// program hang up on that message, or on every connection as soon as it is accepted (a
/// proxy whose backend is down)? A new connection, watched without a word, tells: if it is
/// closed or reset too, that is recorded (`accepted_then_closed`/`_reset`) in place of the
/// protocol's failure. Otherwise the protocol's failure stands.
async fn settle_first(
    facts: &mut SessionFacts,
    address: SocketAddr,
    window: Duration,
    deadline: Instant,
) {
    let tls_unheard = facts.tls.as_ref().is_some_and(|t| {
        matches!(
            t.failure,
            Some(tls::TlsFailure::Closed | tls::TlsFailure::Reset)
        ) && t.chain.is_empty()
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
        let banner = watch::banner(bytes);
        if matches!(&banner, First::Banner { kind, .. } if *kind != watch::BannerKind::Unknown) {
            facts.first = banner;
            facts.tls = None;
            facts.http = None;
            facts.mss_retry = None;
            return;
        }
    }
    // A port that completed a TLS handshake when asked (`expects_tls`) hung up on plain HTTP.
    let speaks_tls = facts
        .tls_confirm
        .as_ref()
        .is_some_and(|t| t.version.is_some());
    if !(tls_unheard || http_unheard) || speaks_tls {
        return;
    }
    let first = match tokio::time::timeout_at(deadline, TcpStream::connect(address)).await {
        Ok(Ok(s)) => watch::watch(&s, window, deadline).await,
        Ok(Err(e)) if e.raw_os_error() == Some(libc::ECONNRESET) => First::Reset,
        _ => return,
    };
    if matches!(first, First::Closed | First::Reset) {
        facts.first = first;
        facts.window = window;
        facts.tls = None;
        facts.http = None;
        facts.mss_retry = None;
        facts.tls_confirm = None;
    }
}

/// A new connection to `address`, through a new tunnel when it is a proxy; `None` when either
/// fails (the first connection's facts stand).
async fn reconnect(
    address: SocketAddr,
    via: Option<&Destination>,
    deadline: Instant,
) -> Option<TcpStream> {
    let mut s = tokio::time::timeout_at(deadline, TcpStream::connect(address))
        .await
        .ok()?
        .ok()?;
    let _ = s.set_nodelay(true);
    if let Some(dest) = via {
        let c = proxy::connect_tunnel(&mut s, &dest.host, dest.port, deadline).await;
        if !c.open() || !c.leftover.is_empty() {
            return None;
        }
    }
    Some(s)
}

/// A TLS handshake on a new connection to a port that answered plain HTTP with a TLS record:
/// this machine's trust store, any outcome kept (a certificate this machine does not trust
/// still proves the port speaks TLS).
async fn confirm_tls(address: SocketAddr, host: &str, deadline: Instant) -> Option<TlsFacts> {
    let s = tokio::time::timeout_at(deadline, TcpStream::connect(address))
        .await
        .ok()?
        .ok()?;
    let _ = s.set_nodelay(true);
    let roots = TrustStore::system_quick();
    let treq = TlsRequest {
        server_name: host,
        alpn: &[],
        roots: &roots,
        versions: Versions::Any,
    };
    Some(tls::handshake_session(s, &treq, deadline).await.0)
}

/// Acknowledge at once rather than after the delayed-ACK timer: a server whose small reply
/// waits behind its own unacknowledged segment (Nagle) would otherwise wait 40 ms for us.
fn quickack(s: &TcpStream) {
    let _ = socket2::SockRef::from(s).set_tcp_quickack(true);
}

/// How long a `HEAD` may go unanswered before a `GET` is tried instead (at least; sixteen
/// round trips on a slower path): a server that never answers HEAD is not a silent program.
pub(crate) const HEAD_WAIT: Duration = Duration::from_secs(1);

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
/// is opened beside it (at least; sixteen round trips on a slower path).
pub(crate) const HANDSHAKE_WAIT: Duration = Duration::from_secs(1);

/// The wait before the reduced-MSS retry for a connection whose watch window is
/// `window` ([`watch::window_for`]): a handshake takes a few round trips and the server's
/// signing, so a second, or sixteen round trips on a slow path, is plenty. An answer later
/// than this is a slow server's (the diagnosis says so).
pub(crate) fn handshake_wait(window: Duration) -> Duration {
    HANDSHAKE_WAIT.max(window.saturating_mul(2))
}

/// A handshake's outcome: its facts and the usable session.
type Handshake = (TlsFacts, Option<tls::TlsSession>);

/// Did the server's certificate flight (or its whole handshake) come through? Only that is
/// the large part a black hole swallows; an alert or a hang-up is small.
fn crossed(t: &TlsFacts) -> bool {
    t.version.is_some() || !t.chain.is_empty()
}

fn about_issuer(t: &TlsFacts) -> bool {
    matches!(
        t.failure,
        Some(TlsFailure::UnknownIssuer { .. } | TlsFailure::MissingIntermediate { .. })
            | Some(TlsFailure::SelfSigned)
    )
}

/// The handshake, and the reduced-MSS retry beside it when it got nothing or stalled; the
/// usable session, if any.
///
/// Why beside it, and not after: a server that is merely slow answers the first connection
/// first (it came first, to the same server), while a path-MTU black hole never delivers the
/// first connection's full-sized segments however long it waits, and delivers the small ones
/// at once. So the first handshake keeps waiting, within the deadline, while the retry runs:
/// - the first answers before the retry's certificate flight comes through: a slow server,
///   waited for (no retry is recorded);
/// - the retry's flight comes through while the first still has nothing: the first is given
///   up at that moment (its facts say what the kernel had received) and both are recorded —
///   the evidence the diagnosis weighs.
///
/// No retry to this machine (`here`): its path is one hop with a 64 KiB MTU (loopback) or the
/// interface's own, so no narrower link can swallow anything; the handshake is waited for.
async fn tls_with_retry(
    stream: TcpStream,
    s: &Session<'_>,
    alpn: &[&[u8]],
    facts: &mut SessionFacts,
) -> Option<tls::TlsSession> {
    let (address, via, req, deadline) = (s.address, s.via, s.req, s.deadline);
    let treq = TlsRequest {
        server_name: &req.host,
        alpn,
        roots: &req.roots,
        versions: Versions::Any,
    };
    let started = Instant::now();
    let wait_until =
        started + handshake_wait(facts.window).min(deadline.saturating_duration_since(started) / 2);
    let retry_allowed = req.mss_retry && !s.here;
    // The first handshake is given up when `stop` is sent (the retry came through); the
    // sender lives until then, so the first is never given up by accident.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let first = tls::handshake_until(stream, &treq, deadline, async {
        let _ = stopped.await;
    });
    tokio::pin!(first);
    let mut retry = None;
    let (mut tls_facts, mut session) = tokio::select! {
        biased;
        done = &mut first => done,
        _ = tokio::time::sleep_until(wait_until), if retry_allowed => {
            let (done, r) =
                race_retry(first.as_mut(), stop, address, &treq, started, deadline).await;
            retry = r;
            done
        }
    };
    // The quick store (the bundle file alone) did not know the issuer: ask again, on a new
    // connection, with the whole store (its directories too), where OpenSSL would have looked.
    if about_issuer(&tls_facts) && req.roots.is_partial() {
        let full = TrustStore::system();
        let full_req = TlsRequest {
            roots: &full,
            ..treq
        };
        // Through a proxy, the new connection goes through a new tunnel.
        if let Some(s) = reconnect(address, via, deadline).await {
            let (again, again_session) = tls::handshake_session(s, &full_req, deadline).await;
            // Only an answer in TLS replaces the first: a retry that met a hang-up or silence
            // says nothing about the certificate.
            if crossed(&again) {
                (tls_facts, session) = (again, again_session);
            }
        }
    }
    facts.tls = Some(tls_facts);
    let Some((mut r, mut retry_session)) = retry else {
        return session;
    };
    // The same for the reduced-MSS connection's certificate, asked again the same way.
    if r.tls
        .as_ref()
        .is_some_and(|t| about_issuer(t) && req.roots.is_partial())
        && let Ok(s) = mss::connect_with_mss(address, r.mss, deadline).await
    {
        let _ = s.set_nodelay(true);
        let full = TrustStore::system();
        let full_req = TlsRequest {
            roots: &full,
            ..treq
        };
        let (again, again_session) = tls::handshake_session(s, &full_req, deadline).await;
        if crossed(&again) {
            (r.tls, retry_session) = (Some(again), again_session);
        }
    }
    facts.mss_retry = Some(r);
    session.or(retry_session)
}

/// The reduced-MSS retry, run while `first` goes on waiting (see [`tls_with_retry`]). Returns
/// the first's outcome, and the retry's when it was still of use (it came through while the
/// first had nothing, or failed: both are evidence).
async fn race_retry(
    mut first: std::pin::Pin<&mut impl std::future::Future<Output = Handshake>>,
    stop: tokio::sync::oneshot::Sender<()>,
    address: SocketAddr,
    treq: &TlsRequest<'_>,
    started: Instant,
    deadline: Instant,
) -> (Handshake, Option<(MssRetry, Option<tls::TlsSession>)>) {
    let mss = mss::reduced_mss(&address);
    let opened = started.elapsed();
    let retry = async {
        match mss::connect_with_mss(address, mss, deadline).await {
            Err(e) => (Some(mss::MssFailure::from(&e)), None),
            Ok(s) => {
                let _ = s.set_nodelay(true);
                (None, Some(tls::handshake_session(s, treq, deadline).await))
            }
        }
    };
    tokio::pin!(retry);
    tokio::select! {
        biased;
        // The first answered (or failed) before the retry came through: the server is slow,
        // and the path carried its segments. The retry proves nothing; it is dropped.
        done = &mut first => (done, None),
        (connect_error, got) = &mut retry => {
            if got.as_ref().is_some_and(|(t, _)| crossed(t)) {
                // The small segments came through while the first still has nothing: give the
                // first up now; its facts say what it had received by this moment.
                let _ = stop.send(());
            }
            // Else the first goes on waiting, within the deadline: it may yet answer.
            let done = first.await;
            let (tls, session) = match got {
                Some((t, s)) => (Some(t), s),
                None => (None, None),
            };
            let r = MssRetry {
                mss,
                opened,
                connect_error,
                tls,
            };
            (done, Some((r, session)))
        }
    }
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
