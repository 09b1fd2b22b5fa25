//! One HTTP/1.1 request, over plain TCP or a TLS session, and what the answer's head said.
//!
//! `HEAD` first: it asks for no body, so nothing large is ever downloaded. Servers that refuse
//! it (405, 501) or fail (5xx) are asked again with `GET` on the same connection — a 5xx body's
//! first bytes name the failing layer (Envoy's `no healthy upstream`), and they are read, at
//! most [`BODY_START_MAX`] bytes, only then. Nothing else of a body is ever read.
//!
//! No credentials are ever sent: the request is built from a host and a path only, so a URL's
//! `user:password@` cannot leak into it.
//!
//! The reply is hostile input: the head is bounded ([`HEAD_MAX`]), parsed by `httparse`, and a
//! reply that is not HTTP is kept (≤ 1 KiB) as a fact — a TLS record in answer to plain HTTP
//! means the port expects TLS ([`HttpFailure::ExpectsTls`]).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::{FIRST_BYTES_MAX, looks_like_tls_record};

/// The largest response head read (status line and headers).
pub(crate) const HEAD_MAX: usize = 64 * 1024;
/// The most of a 5xx body kept.
pub(crate) const BODY_START_MAX: usize = 512;
/// The longest wait for a 5xx body's first bytes after its head.
const BODY_WAIT: Duration = Duration::from_millis(500);
/// The longest header value kept (a `Location` or `Server` longer than this is cut).
const VALUE_MAX: usize = 512;
/// Headers parsed at most; more is [`HttpFailure::TooLarge`].
const HEADERS_MAX: usize = 128;

/// `User-Agent` of every request.
pub(crate) const USER_AGENT: &str = concat!("canreach/", env!("CARGO_PKG_VERSION"));

/// What to ask for: the `Host` header's value and the request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// `example.com`, `example.com:8080`, `[2001:db8::1]:8443`.
    pub host_header: String,
    /// `/path?query` (never a fragment, never userinfo).
    pub path: String,
}

impl HttpTarget {
    /// From a URL: its host, its port when not the scheme's default, its path and query.
    /// Userinfo and fragment are dropped. `None` for a URL without a host.
    pub fn from_url(url: &url::Url) -> Option<HttpTarget> {
        let host = url.host_str()?;
        let host_header = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        let mut path = url.path().to_owned();
        if path.is_empty() {
            path.push('/');
        }
        if let Some(q) = url.query() {
            path.push('?');
            path.push_str(q);
        }
        Some(HttpTarget { host_header, path })
    }

    /// From a host (name or IP literal), a port and the scheme's default port, for `/`.
    pub fn root(host: &str, port: u16, default_port: u16) -> HttpTarget {
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let host_header = if port == default_port {
            host
        } else {
            format!("{host}:{port}")
        };
        HttpTarget {
            host_header,
            path: "/".into(),
        }
    }
}

impl HttpTarget {
    /// The same request for an HTTP proxy: the target in absolute form
    /// (`http://host:port/path`, RFC 9112 §3.2.2), the `Host` header unchanged. Never with
    /// userinfo: the host header carries none.
    pub(crate) fn absolute_form(&self) -> HttpTarget {
        HttpTarget {
            host_header: self.host_header.clone(),
            path: format!("http://{}{}", self.host_header, self.path),
        }
    }
}

/// A request method this stage uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Head,
    Get,
}

impl Method {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Method::Head => "HEAD",
            Method::Get => "GET",
        }
    }
}

/// The head of a response, and a 5xx body's first bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version: u8,
    pub status: u16,
    pub reason: String,
    pub server: Option<String>,
    /// Every `Via` header, joined with ", " (each proxy on the way adds itself).
    pub via: Option<String>,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub content_length: Option<u64>,
    /// The server said `Connection: close` (or HTTP/1.0 without keep-alive).
    pub closes: bool,
    /// `Proxy-Authenticate` challenges (a proxy's 407): the schemes and realms it accepts.
    pub proxy_authenticate: Vec<String>,
    /// `WWW-Authenticate` challenges (a 401): the schemes and realms the server accepts.
    pub www_authenticate: Vec<String>,
    /// The first bytes of the body (≤ 512), only for a 5xx answer to `GET`; raw (a chunked
    /// body keeps its chunk-size lines).
    pub body_start: Option<Vec<u8>>,
}

/// Why no response head was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpFailure {
    /// Nothing came back before the deadline.
    NoReply,
    /// The server closed without a byte.
    Closed,
    /// The server reset the connection.
    Reset,
    /// Part of a head came, then the connection ended or the deadline passed.
    Truncated { first_bytes: Vec<u8> },
    /// The reply is not HTTP (≤ 1 KiB of it).
    NotHttp { first_bytes: Vec<u8> },
    /// The reply is a TLS record: the port expects TLS.
    ExpectsTls { first_bytes: Vec<u8> },
    /// The head is larger than [`HEAD_MAX`] or has too many headers.
    TooLarge,
    /// The request could not be sent, or another I/O error: the OS's errno when there is
    /// one (the diagnosis words it from its errno table; the OS's text is not a fact).
    Io { errno: Option<i32> },
}

/// What the HTTP stage learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpFacts {
    /// The method of the last request sent.
    pub method: Method,
    /// When `HEAD` was followed by `GET`: `HEAD`'s status.
    pub head_status: Option<u16>,
    /// The answer to the last request.
    pub response: Option<HttpResponse>,
    pub failure: Option<HttpFailure>,
    pub elapsed: Duration,
}

/// `HEAD`, then `GET` on the same connection when `HEAD` got 405, 501 or another 5xx and the
/// server keeps the connection open. Everything within `deadline`.
pub async fn request<S>(stream: &mut S, target: &HttpTarget, deadline: Instant) -> HttpFacts
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    let first = exchange(stream, target, Method::Head, deadline).await;
    let mut facts = HttpFacts {
        method: Method::Head,
        head_status: None,
        response: None,
        failure: None,
        elapsed: Duration::ZERO,
    };
    match first {
        Ok(r) if wants_get(r.status) && !r.closes => {
            facts.head_status = Some(r.status);
            facts.method = Method::Get;
            match exchange(stream, target, Method::Get, deadline).await {
                Ok(g) => facts.response = Some(g),
                // The server went away after HEAD: its answer to HEAD is still a fact.
                Err(HttpFailure::Closed | HttpFailure::Reset) => {
                    facts.method = Method::Head;
                    facts.head_status = None;
                    facts.response = Some(r);
                }
                Err(e) => facts.failure = Some(e),
            }
        }
        Ok(r) => facts.response = Some(r),
        Err(e) => facts.failure = Some(e),
    }
    facts.elapsed = start.elapsed();
    facts
}

fn wants_get(status: u16) -> bool {
    status == 405 || (500..600).contains(&status)
}

/// The request's bytes. Only these headers, and never credentials.
pub(crate) fn request_bytes(target: &HttpTarget, method: Method) -> Vec<u8> {
    // `GET` is the last request on this connection: say so, so the server ends the body.
    let connection = match method {
        Method::Head => "",
        Method::Get => "Connection: close\r\n",
    };
    // A hostile URL cannot inject a header: CR and LF are dropped.
    let clean = |s: &str| s.replace(['\r', '\n'], "");
    format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {USER_AGENT}\r\nAccept: */*\r\n{connection}\r\n",
        method.as_str(),
        clean(&target.path),
        clean(&target.host_header),
    )
    .into_bytes()
}

/// One request and its response head (and a 5xx `GET`'s body start).
pub(crate) async fn exchange<S>(
    stream: &mut S,
    target: &HttpTarget,
    method: Method,
    deadline: Instant,
) -> Result<HttpResponse, HttpFailure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let req = request_bytes(target, method);
    match tokio::time::timeout_at(deadline, async {
        stream.write_all(&req).await?;
        stream.flush().await
    })
    .await
    {
        Err(_) => return Err(HttpFailure::NoReply),
        Ok(Err(e)) => return Err(io_failure(&e)),
        Ok(Ok(())) => {}
    }
    let (mut response, mut rest) = read_head(stream, deadline, Response, Vec::new()).await?;
    // Informational answers (103 Early Hints, a stray 100 Continue) come before the real
    // one; 101 would be a protocol switch, which this request never asks for. Bounded, so a
    // server sending them forever cannot hold the stage past a few.
    let mut informational = 0;
    while (100..200).contains(&response.status) && response.status != 101 && informational < 8 {
        (response, rest) = read_head(stream, deadline, Response, rest).await?;
        informational += 1;
    }
    if method == Method::Get && (500..600).contains(&response.status) {
        response.body_start = Some(read_body_start(stream, rest, &response, deadline).await);
    }
    Ok(response)
}

async fn read_body_start<S: AsyncRead + Unpin>(
    stream: &mut S,
    mut body: Vec<u8>,
    response: &HttpResponse,
    deadline: Instant,
) -> Vec<u8> {
    let want = response
        .content_length
        .map_or(BODY_START_MAX, |n| usize::try_from(n).unwrap_or(usize::MAX))
        .min(BODY_START_MAX);
    // The body of an error page comes with, or right after, its head. A server that neither
    // says how long it is nor closes (ignoring `Connection: close`) must not hold the stage
    // until the deadline.
    let until = (Instant::now() + BODY_WAIT).min(deadline);
    let mut buf = [0u8; BODY_START_MAX];
    while body.len() < want && !body.ends_with(b"0\r\n\r\n") {
        match tokio::time::timeout_at(until, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => body.extend_from_slice(&buf[..n]),
            // End of body, error, or time's up: what came is the fact.
            _ => break,
        }
    }
    body.truncate(want);
    body
}

fn io_failure(e: &std::io::Error) -> HttpFailure {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionReset | K::ConnectionAborted => HttpFailure::Reset,
        K::UnexpectedEof | K::BrokenPipe => HttpFailure::Closed,
        _ => HttpFailure::Io {
            errno: e.raw_os_error(),
        },
    }
}

/// How a head is parsed: a response (HTTP stage) or a CONNECT answer (proxy stage) share
/// the bounded reader.
pub(crate) trait HeadParser {
    type Out;
    /// `Ok(None)`: more bytes needed.
    fn parse(&self, buf: &[u8]) -> Result<Option<(Self::Out, usize)>, HttpFailure>;
}

/// Parses an HTTP response head.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Response;

impl HeadParser for Response {
    type Out = HttpResponse;
    fn parse(&self, buf: &[u8]) -> Result<Option<(HttpResponse, usize)>, HttpFailure> {
        parse_response(buf)
    }
}

/// Read a head: bounded by [`HEAD_MAX`] and `deadline`; returns it and the bytes after it.
/// `buf` holds bytes already read (after a previous head), parsed before reading more.
///
/// Reads in chunks, so bytes after the head may be read too: they are returned, never lost.
pub(crate) async fn read_head<S, P>(
    stream: &mut S,
    deadline: Instant,
    parser: P,
    mut buf: Vec<u8>,
) -> Result<(P::Out, Vec<u8>), HttpFailure>
where
    S: AsyncRead + Unpin,
    P: HeadParser,
{
    let mut chunk = vec![0u8; 4096];
    loop {
        if !buf.is_empty() {
            if looks_like_tls_record(&buf) {
                return Err(HttpFailure::ExpectsTls {
                    first_bytes: first(&buf),
                });
            }
            // Fail fast on a reply that cannot become HTTP, without waiting for more.
            let prefix = b"HTTP/";
            let k = buf.len().min(prefix.len());
            if buf[..k] != prefix[..k] {
                return Err(HttpFailure::NotHttp {
                    first_bytes: first(&buf),
                });
            }
            if let Some((out, len)) = parser.parse(&buf)? {
                return Ok((out, buf.split_off(len)));
            }
            if buf.len() >= HEAD_MAX {
                return Err(HttpFailure::TooLarge);
            }
        }
        let want = (HEAD_MAX - buf.len()).min(chunk.len());
        let n = match tokio::time::timeout_at(deadline, stream.read(&mut chunk[..want])).await {
            Err(_) if buf.is_empty() => return Err(HttpFailure::NoReply),
            Err(_) => return Err(truncated(&buf)),
            Ok(Err(e)) => {
                return Err(match io_failure(&e) {
                    // Ended mid-head: keep what came.
                    HttpFailure::Closed if !buf.is_empty() => truncated(&buf),
                    f => f,
                });
            }
            Ok(Ok(n)) => n,
        };
        if n == 0 {
            return Err(if buf.is_empty() {
                HttpFailure::Closed
            } else {
                truncated(&buf)
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn first(buf: &[u8]) -> Vec<u8> {
    buf[..buf.len().min(FIRST_BYTES_MAX)].to_vec()
}

fn truncated(buf: &[u8]) -> HttpFailure {
    HttpFailure::Truncated {
        first_bytes: first(buf),
    }
}

/// Parse a response head. `Ok(None)` when incomplete. Never panics.
pub(crate) fn parse_response(buf: &[u8]) -> Result<Option<(HttpResponse, usize)>, HttpFailure> {
    match parse_head(buf, buf) {
        // httparse refuses a DEL byte (0x7F) in a header value or reason, which browsers, curl
        // and Go's client take: it is still HTTP. Parsed again with each DEL as a byte httparse
        // takes there (0xFF, obs-text); the values are read from `buf` at the same places
        // (`value` then drops the DEL, as any control character).
        Err(HttpFailure::NotHttp { .. }) if buf.contains(&0x7f) => {
            let copy: Vec<u8> = buf
                .iter()
                .map(|&b| if b == 0x7f { 0xff } else { b })
                .collect();
            parse_head(&copy, buf)
        }
        r => r,
    }
}

/// [`parse_response`] of `parse`, a copy of `original` of the same length (or itself): the
/// values are taken from `original`.
fn parse_head(parse: &[u8], original: &[u8]) -> Result<Option<(HttpResponse, usize)>, HttpFailure> {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(parse) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpFailure::TooLarge),
        Err(_) => {
            return Err(HttpFailure::NotHttp {
                first_bytes: first(original),
            });
        }
    };
    // The bytes of `original` where a slice of `parse` is (httparse's slices are of `parse`).
    let at = |s: &[u8]| -> Vec<u8> {
        let start = (s.as_ptr() as usize).saturating_sub(parse.as_ptr() as usize);
        original.get(start..start + s.len()).unwrap_or(s).to_vec()
    };
    let version = resp.version.unwrap_or(1);
    let get = |name: &str| -> Vec<String> {
        resp.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| value(&at(h.value)))
            .collect()
    };
    let one = |name: &str| get(name).into_iter().next();
    let joined = |name: &str| {
        let all = get(name);
        (!all.is_empty()).then(|| all.join(", "))
    };
    let connection = joined("connection")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let closes =
        connection.contains("close") || (version == 0 && !connection.contains("keep-alive"));
    Ok(Some((
        HttpResponse {
            version,
            status: resp.code.unwrap_or(0),
            reason: value(&at(resp.reason.unwrap_or("").as_bytes())),
            server: one("server"),
            via: joined("via"),
            content_type: one("content-type"),
            location: one("location"),
            content_length: one("content-length").and_then(|v| v.trim().parse().ok()),
            closes,
            proxy_authenticate: get("proxy-authenticate"),
            www_authenticate: get("www-authenticate"),
            body_start: None,
        },
        len,
    )))
}

/// A header value as text: invalid UTF-8 replaced, control characters dropped, cut to
/// [`VALUE_MAX`] characters.
fn value(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .chars()
        .filter(|c| !c.is_control())
        .take(VALUE_MAX)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_from_url_drops_credentials_and_fragment() {
        let u = url::Url::parse("https://alice:s3cret@example.com:8443/a/b?x=1#frag").unwrap();
        let t = HttpTarget::from_url(&u).unwrap();
        assert_eq!(t.host_header, "example.com:8443");
        assert_eq!(t.path, "/a/b?x=1");
        let req = String::from_utf8(request_bytes(&t, Method::Head)).unwrap();
        assert!(!req.contains("alice") && !req.contains("s3cret"));
        assert!(!req.to_ascii_lowercase().contains("authorization"));
        assert!(req.starts_with("HEAD /a/b?x=1 HTTP/1.1\r\nHost: example.com:8443\r\n"));
        assert!(req.contains(&format!(
            "User-Agent: canreach/{}\r\n",
            env!("CARGO_PKG_VERSION")
        )));

        let u = url::Url::parse("http://[::1]/").unwrap();
        assert_eq!(HttpTarget::from_url(&u).unwrap().host_header, "[::1]");
        assert_eq!(HttpTarget::root("::1", 8080, 80).host_header, "[::1]:8080");
        assert_eq!(
            HttpTarget::root("example.com", 443, 443).host_header,
            "example.com"
        );
    }

    #[test]
    fn absolute_form_for_a_proxy() {
        let t = HttpTarget::root("::1", 8080, 80);
        let req = String::from_utf8(request_bytes(&t.absolute_form(), Method::Head)).unwrap();
        assert!(
            req.starts_with("HEAD http://[::1]:8080/ HTTP/1.1\r\nHost: [::1]:8080\r\n"),
            "{req}"
        );
    }

    #[test]
    fn header_injection_is_impossible() {
        let t = HttpTarget {
            host_header: "a\r\nX-Evil: 1".into(),
            path: "/\r\nX-Evil: 2".into(),
        };
        let req = String::from_utf8(request_bytes(&t, Method::Get)).unwrap();
        assert_eq!(req.matches("\r\n").count(), 6, "{req}");
    }

    #[test]
    fn parses_a_head() {
        let raw = b"HTTP/1.1 503 Service Unavailable\r\nserver: envoy\r\nVia: 1.1 a\r\nvia: 1.1 b\r\ncontent-length: 19\r\ncontent-type: text/plain\r\n\r\nno healthy upstream";
        let (r, len) = parse_response(raw).unwrap().unwrap();
        assert_eq!(r.status, 503);
        assert_eq!(r.reason, "Service Unavailable");
        assert_eq!(r.server.as_deref(), Some("envoy"));
        assert_eq!(r.via.as_deref(), Some("1.1 a, 1.1 b"));
        assert_eq!(r.content_length, Some(19));
        assert!(!r.closes);
        assert_eq!(&raw[len..], b"no healthy upstream");
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nA: b\r\n").unwrap(),
            None
        );
        assert!(matches!(
            parse_response(b"HTTP/1.1 abc\r\n\r\n"),
            Err(HttpFailure::NotHttp { .. })
        ));
        let (r, _) = parse_response(b"HTTP/1.0 200 OK\r\n\r\n").unwrap().unwrap();
        assert!(r.closes);
    }

    #[test]
    fn a_del_byte_in_a_header_value_is_still_http() {
        // DEL inside header values (one beside a non-UTF-8 byte) and in the reason phrase,
        // which httparse alone refuses.
        let raw = b"HTTP/1.1 302 Fo\x7fund\r\nServer: ngi\x7fnx\r\nLocation: /n\x7fext\xff\r\n\
                    Content-Length: 0\r\n\r\n";
        let (r, len) = parse_response(raw).unwrap().unwrap();
        assert_eq!(len, raw.len());
        assert_eq!(r.status, 302);
        // The DEL is dropped from what is kept (a control character); the rest is as sent.
        assert_eq!(r.server.as_deref(), Some("nginx"));
        assert_eq!(r.location.as_deref(), Some("/next\u{fffd}"));
        assert_eq!(r.content_length, Some(0));
        assert!(r.reason.chars().all(|c| !c.is_control()), "{:?}", r.reason);
        // Still not HTTP: a DEL where a header name goes.
        assert!(matches!(
            parse_response(b"HTTP/1.1 200 OK\r\nSer\x7fver: x\r\n\r\n"),
            Err(HttpFailure::NotHttp { .. })
        ));
    }

    #[test]
    fn too_many_headers() {
        let mut raw = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..200 {
            raw.extend_from_slice(format!("x-{i}: y\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        assert_eq!(parse_response(&raw), Err(HttpFailure::TooLarge));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..4096)) {
            let _ = parse_response(&bytes);
        }

        #[test]
        fn never_panics_after_a_status_line(tail in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let mut b = b"HTTP/1.1 200 OK\r\n".to_vec();
            b.extend_from_slice(&tail);
            let _ = parse_response(&b);
        }
    }
}
