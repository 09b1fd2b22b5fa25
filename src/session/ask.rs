//! What a prober asks of the session stage beyond the CLI's own check, and what came of it.
//!
//! The CLI asks one question after the connect (`HEAD /`, a handshake, a watch before speaking). A
//! blackbox_exporter module (`canreach serve`, see `src/serve/`) asks its own: a method, extra
//! headers and the whole body of one HTTP exchange; a TLS server name or trust store of its
//! own; a `query_response` dialogue (expect a line matching a pattern, send a line). These
//! are still the session stage's facts — what was sent, what came back, how long each part
//! took — and like every stage this one never decides: `probe_success` is the exporter's.
//!
//! Everything the peer sends is hostile: a body is counted, never kept (at most
//! [`BODY_MAX`] bytes are read), a dialogue line is at most [`LINE_MAX`] bytes, and
//! everything stops at the caller's deadline.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::FIRST_BYTES_MAX;
use super::http::{self, HttpFailure, HttpResponse, HttpTarget};
use super::tls::TrustStore;

/// The most body bytes read (and counted) of one answer; a longer body is cut there.
pub(crate) const BODY_MAX: u64 = 16 * 1024 * 1024;
/// The longest line a dialogue reads (blackbox_exporter's scanner: 64 KiB).
pub(crate) const LINE_MAX: usize = 64 * 1024;
/// The most bytes a dialogue reads in all.
pub(crate) const DIALOGUE_MAX: usize = 256 * 1024;

/// What a prober asks beyond the usual check.
#[derive(Debug, Clone, Default)]
pub struct Ask {
    /// The TLS server name to send and verify, instead of the target's host.
    pub server_name: Option<String>,
    /// The trust anchors, instead of this machine's store.
    pub roots: Option<Arc<TrustStore>>,
    /// One HTTP exchange of this shape instead of the usual `HEAD /`.
    pub http: Option<HttpAsk>,
    /// A dialogue after the connect (and the handshake, over TLS).
    pub dialogue: Vec<Step>,
}

/// One HTTP request as a module describes it.
#[derive(Debug, Clone)]
pub struct HttpAsk {
    /// `GET`, `POST`, … (checked to be a token when the module was read).
    pub method: String,
    /// Extra headers, in order (a `Host` here replaces the URL's).
    pub headers: Vec<(String, String)>,
    /// The request target and `Host`, when not the check's own (a URL's query is kept here:
    /// the check's own target drops it, for the report).
    pub target: Option<HttpTarget>,
}

/// One step of a dialogue: wait for a line matching `expect`, then send `send` (with `$1`,
/// `${name}` from the match) and a newline.
#[derive(Debug, Clone)]
pub struct Step {
    pub expect: Option<regex::bytes::Regex>,
    pub send: Option<String>,
    /// Labels to report when `expect` matched: names, and values with `$1`, `${name}` from
    /// the match (blackbox_exporter's `probe_expect_info`).
    pub labels: Vec<(String, String)>,
}

/// What the asked-for work gave.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Answered {
    pub http: Option<HttpExchange>,
    pub dialogue: Option<Dialogue>,
}

/// One HTTP exchange: the head, how the body ended, and the time of each part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpExchange {
    pub method: String,
    pub response: Option<HttpResponse>,
    pub failure: Option<HttpFailure>,
    /// From the request written to the answer's head read.
    pub processing: Duration,
    /// From the head to the body's end (or where reading stopped).
    pub transfer: Duration,
    /// Body bytes received (after undoing chunked framing).
    pub body_bytes: u64,
    /// How the body ended.
    pub body_end: BodyEnd,
}

/// How reading a body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEnd {
    /// No body was read (no answer, or an answer that has none: HEAD, 204, 304).
    None,
    /// As long as announced, the last chunk, or the server closed a body of unknown length.
    Complete,
    /// The connection ended before the announced length.
    Truncated,
    /// The deadline came first.
    Deadline,
    /// [`BODY_MAX`] bytes were counted: the rest was not read.
    Limit,
    /// Chunked framing that does not parse.
    BadFraming,
}

/// What a dialogue did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialogue {
    /// Steps completed.
    pub done: usize,
    /// Why the next step failed, if one did.
    pub failure: Option<DialogueFailure>,
    /// The labels of the steps whose pattern matched, their values expanded from what the
    /// peer sent (control, bidi and invisible characters dropped, at most [`LABEL_MAX`]
    /// characters each).
    pub labels: Vec<(String, String)>,
}

/// The longest label value kept from a match (the peer's text).
pub(crate) const LABEL_MAX: usize = 128;

/// `template` expanded with `caps`, as a label value.
fn label_value(caps: &regex::bytes::Captures<'_>, template: &str) -> String {
    let mut out = Vec::new();
    caps.expand(template.as_bytes(), &mut out);
    String::from_utf8_lossy(&out)
        .chars()
        // Control characters, and bidi and invisible ones (`escape::needs_escape`): a label
        // value is shown raw by Prometheus's pages and whatever reads its API.
        .filter(|c| !c.is_control() && !crate::escape::needs_escape(*c))
        .take(LABEL_MAX)
        .collect()
}

/// Why a dialogue step failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialogueFailure {
    /// The peer ended the connection with no line matching (the last bytes read, ≤ 1 KiB).
    NoMatch { last: Vec<u8> },
    /// The deadline came before a matching line.
    Deadline,
    /// A line longer than [`LINE_MAX`], or more than [`DIALOGUE_MAX`] read.
    TooLong,
    /// Reading or writing failed (the OS's errno when there is one).
    Io { errno: Option<i32> },
}

impl HttpExchange {
    /// The exchange as the HTTP stage's facts, for the diagnosis (a method other than
    /// `HEAD` is reported as the `GET` it stands for).
    pub(crate) fn as_http_facts(&self) -> http::HttpFacts {
        http::HttpFacts {
            method: if self.method.eq_ignore_ascii_case("HEAD") {
                http::Method::Head
            } else {
                http::Method::Get
            },
            head_status: None,
            response: self.response.clone(),
            failure: self.failure.clone(),
            elapsed: self.processing + self.transfer,
        }
    }
}

impl Dialogue {
    /// No line matched before the peer ended the connection: blackbox_exporter's
    /// `probe_failed_due_to_regex`.
    pub(crate) fn failed_on_pattern(&self) -> bool {
        matches!(self.failure, Some(DialogueFailure::NoMatch { .. }))
    }
}

/// Run `steps` over `stream` until `deadline`.
pub(crate) async fn dialogue<S>(stream: &mut S, steps: &[Step], deadline: Instant) -> Dialogue
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut lines = Lines::default();
    let mut labels = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let mut send = step.send.clone();
        if let Some(re) = &step.expect {
            let line = match expect(&mut lines, stream, re, deadline).await {
                Ok(line) => line,
                Err(failure) => {
                    return Dialogue {
                        done: i,
                        failure: Some(failure),
                        labels,
                    };
                }
            };
            if let Some(caps) = re.captures(&line) {
                for (name, value) in &step.labels {
                    labels.push((name.clone(), label_value(&caps, value)));
                }
                if let Some(s) = &send {
                    let mut out = Vec::new();
                    caps.expand(s.as_bytes(), &mut out);
                    send = Some(String::from_utf8_lossy(&out).into_owned());
                }
            }
        }
        if let Some(s) = send
            && let Some(failure) = send_line(stream, s, deadline).await
        {
            return Dialogue {
                done: i,
                failure: Some(failure),
                labels,
            };
        }
    }
    Dialogue {
        done: steps.len(),
        failure: None,
        labels,
    }
}

/// Lines until one matches `re`; the peer's end without a match is
/// [`DialogueFailure::NoMatch`] with the last line's end.
async fn expect<S>(
    lines: &mut Lines,
    stream: &mut S,
    re: &regex::bytes::Regex,
    deadline: Instant,
) -> Result<Vec<u8>, DialogueFailure>
where
    S: AsyncRead + Unpin,
{
    loop {
        match lines.next(stream, deadline).await? {
            Line::Whole(line) if re.is_match(&line) => return Ok(line),
            Line::Whole(_) => {}
            // The last, unterminated line counts too.
            Line::Last(line) if !line.is_empty() && re.is_match(&line) => return Ok(line),
            Line::Last(line) => {
                let keep = line.len().saturating_sub(FIRST_BYTES_MAX);
                return Err(DialogueFailure::NoMatch {
                    last: line[keep..].to_vec(),
                });
            }
        }
    }
}

/// `s` and a newline, within the deadline; the failure, if any.
async fn send_line<S>(stream: &mut S, s: String, deadline: Instant) -> Option<DialogueFailure>
where
    S: AsyncWrite + Unpin,
{
    let mut line = s.into_bytes();
    line.push(b'\n');
    let wrote = tokio::time::timeout_at(deadline, async {
        stream.write_all(&line).await?;
        stream.flush().await
    })
    .await;
    match wrote {
        Err(_) => Some(DialogueFailure::Deadline),
        Ok(Err(e)) => Some(DialogueFailure::Io {
            errno: e.raw_os_error(),
        }),
        Ok(Ok(())) => None,
    }
}

/// The peer's bytes cut into lines (`\n`-separated, a trailing `\r` dropped, as
/// blackbox_exporter's scanner reads them), bounded by [`LINE_MAX`] and [`DIALOGUE_MAX`].
#[derive(Debug, Default)]
struct Lines {
    buf: Vec<u8>,
    read_total: usize,
}

/// One line of the peer's.
enum Line {
    Whole(Vec<u8>),
    /// What was left when the peer ended the connection (possibly empty).
    Last(Vec<u8>),
}

impl Lines {
    async fn next<S>(&mut self, stream: &mut S, deadline: Instant) -> Result<Line, DialogueFailure>
    where
        S: AsyncRead + Unpin,
    {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Line::Whole(line));
            }
            if self.buf.len() > LINE_MAX || self.read_total > DIALOGUE_MAX {
                return Err(DialogueFailure::TooLong);
            }
            match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
                Err(_) => return Err(DialogueFailure::Deadline),
                Ok(Err(e)) => {
                    return Err(DialogueFailure::Io {
                        errno: e.raw_os_error(),
                    });
                }
                Ok(Ok(0)) => {
                    let mut line = std::mem::take(&mut self.buf);
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    return Ok(Line::Last(line));
                }
                Ok(Ok(n)) => {
                    self.read_total += n;
                    self.buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }
}

/// The request's bytes: the method, the target, `Host`, the module's headers (CR and LF
/// dropped: no header can be injected), and `Connection: close` (the body of unknown length
/// then ends with the connection).
pub(crate) fn request_bytes(ask: &HttpAsk, target: &HttpTarget) -> Vec<u8> {
    let clean = |s: &str| s.replace(['\r', '\n'], "");
    let target = ask.target.as_ref().unwrap_or(target);
    let has = |name: &str| {
        ask.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    };
    let mut out = format!(
        "{} {} HTTP/1.1\r\n",
        clean(&ask.method),
        clean(&target.path)
    );
    if !has("host") {
        out.push_str(&format!("Host: {}\r\n", clean(&target.host_header)));
    }
    if !has("user-agent") {
        out.push_str(&format!("User-Agent: {}\r\n", http::USER_AGENT));
    }
    if !has("accept") {
        out.push_str("Accept: */*\r\n");
    }
    for (k, v) in &ask.headers {
        out.push_str(&format!("{}: {}\r\n", clean(k), clean(v)));
    }
    // A request that may carry a body says it has none (Go's client does the same).
    if matches!(ask.method.as_str(), "POST" | "PUT" | "PATCH") && !has("content-length") {
        out.push_str("Content-Length: 0\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

/// A response head and whether its body is chunked.
struct HeadWithFraming;

impl http::HeadParser for HeadWithFraming {
    type Out = (HttpResponse, bool);
    fn parse(&self, buf: &[u8]) -> Result<Option<((HttpResponse, bool), usize)>, HttpFailure> {
        let Some((r, len)) = http::parse_response(buf)? else {
            return Ok(None);
        };
        Ok(Some(((r, is_chunked(&buf[..len])), len)))
    }
}

/// Does this head say `Transfer-Encoding: chunked` (its last coding)?
fn is_chunked(head: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut resp = httparse::Response::new(&mut headers);
    if !matches!(resp.parse(head), Ok(httparse::Status::Complete(_))) {
        return false;
    }
    resp.headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("transfer-encoding"))
        .filter_map(|h| std::str::from_utf8(h.value).ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .next_back()
        .is_some_and(|c| c.eq_ignore_ascii_case("chunked"))
}

/// One exchange as asked: the request, the head (past informational answers), the body
/// counted to its end, all before `deadline`.
pub(crate) async fn http_exchange<S>(
    stream: &mut S,
    ask: &HttpAsk,
    target: &HttpTarget,
    deadline: Instant,
) -> HttpExchange
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut facts = HttpExchange {
        method: ask.method.clone(),
        response: None,
        failure: None,
        processing: Duration::ZERO,
        transfer: Duration::ZERO,
        body_bytes: 0,
        body_end: BodyEnd::None,
    };
    let req = request_bytes(ask, target);
    let sent = tokio::time::timeout_at(deadline, async {
        stream.write_all(&req).await?;
        stream.flush().await
    })
    .await;
    let start = Instant::now();
    match sent {
        Err(_) => {
            facts.failure = Some(HttpFailure::NoReply);
            return facts;
        }
        Ok(Err(e)) => {
            facts.failure = Some(HttpFailure::Io {
                errno: e.raw_os_error(),
            });
            return facts;
        }
        Ok(Ok(())) => {}
    }
    let mut rest = Vec::new();
    let mut informational = 0;
    let (response, chunked) = loop {
        match http::read_head(stream, deadline, HeadWithFraming, rest).await {
            Err(f) => {
                facts.processing = start.elapsed();
                facts.failure = Some(f);
                return facts;
            }
            // 1xx answers come before the real one (bounded: a server sending them forever
            // cannot hold the exchange).
            Ok(((r, _), more)) if (100..200).contains(&r.status) && informational < 8 => {
                informational += 1;
                rest = more;
            }
            Ok(((r, c), more)) => {
                rest = more;
                break (r, c);
            }
        }
    };
    facts.processing = start.elapsed();
    let head_at = Instant::now();
    let no_body = ask.method.eq_ignore_ascii_case("HEAD")
        || response.status == 204
        || response.status == 304
        || (100..200).contains(&response.status);
    if !no_body {
        let (bytes, end) = if chunked {
            read_chunked(stream, rest, deadline).await
        } else {
            read_plain(stream, rest, response.content_length, deadline).await
        };
        facts.body_bytes = bytes;
        facts.body_end = end;
    }
    facts.transfer = head_at.elapsed();
    facts.response = Some(response);
    facts
}

/// A body of `length` bytes, or until the connection ends: counted, not kept.
async fn read_plain<S: AsyncRead + Unpin>(
    stream: &mut S,
    already: Vec<u8>,
    length: Option<u64>,
    deadline: Instant,
) -> (u64, BodyEnd) {
    let want = length.unwrap_or(u64::MAX);
    let mut got = (already.len() as u64).min(want);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        if got >= want {
            return (got, BodyEnd::Complete);
        }
        if got >= BODY_MAX {
            return (got, BodyEnd::Limit);
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => return (got, BodyEnd::Deadline),
            Ok(Ok(0)) if length.is_none() => return (got, BodyEnd::Complete),
            Ok(Ok(0)) | Ok(Err(_)) => return (got, BodyEnd::Truncated),
            Ok(Ok(n)) => got = (got + n as u64).min(want),
        }
    }
}

/// A chunked body: its data counted, its framing checked.
async fn read_chunked<S: AsyncRead + Unpin>(
    stream: &mut S,
    already: Vec<u8>,
    deadline: Instant,
) -> (u64, BodyEnd) {
    let mut dec = Chunked::default();
    if let Err(()) = dec.feed(&already) {
        return (dec.data, BodyEnd::BadFraming);
    }
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        if dec.done() {
            return (dec.data, BodyEnd::Complete);
        }
        if dec.data >= BODY_MAX {
            return (dec.data, BodyEnd::Limit);
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => return (dec.data, BodyEnd::Deadline),
            Ok(Ok(0)) | Ok(Err(_)) => return (dec.data, BodyEnd::Truncated),
            Ok(Ok(n)) => {
                if dec.feed(&chunk[..n]).is_err() {
                    return (dec.data, BodyEnd::BadFraming);
                }
            }
        }
    }
}

/// An incremental reader of chunked framing (RFC 9112 §7.1) that counts the data bytes.
#[derive(Debug, Default)]
pub(crate) struct Chunked {
    state: ChunkState,
    /// Data bytes seen.
    pub data: u64,
    /// The size line (or trailer line) read so far.
    line: Vec<u8>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading a size line.
    #[default]
    Size,
    /// Inside a chunk's data: bytes left.
    Data(u64),
    /// The CRLF after a chunk's data: bytes of it left.
    DataEnd(u8),
    /// Trailer lines after the last chunk, until an empty one.
    Trailer,
    Done,
}

/// The longest size or trailer line accepted.
const CHUNK_LINE_MAX: usize = 4096;

impl Chunked {
    /// The last chunk and its trailers have been read.
    pub(crate) fn done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Take more bytes; `Err` when the framing is not chunked framing.
    #[allow(clippy::result_unit_err)]
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) -> Result<(), ()> {
        while !bytes.is_empty() {
            match self.state {
                ChunkState::Done => return Ok(()),
                ChunkState::Data(left) => {
                    let n = (bytes.len() as u64).min(left);
                    self.data += n;
                    bytes = &bytes[n as usize..];
                    self.state = if left == n {
                        ChunkState::DataEnd(2)
                    } else {
                        ChunkState::Data(left - n)
                    };
                }
                ChunkState::DataEnd(left) => {
                    let want: &[u8] = if left == 2 { b"\r\n" } else { b"\n" };
                    if bytes[0] != want[0] {
                        return Err(());
                    }
                    bytes = &bytes[1..];
                    self.state = if left == 2 {
                        ChunkState::DataEnd(1)
                    } else {
                        ChunkState::Size
                    };
                }
                ChunkState::Size | ChunkState::Trailer => {
                    let Some(pos) = bytes.iter().position(|b| *b == b'\n') else {
                        self.line.extend_from_slice(bytes);
                        if self.line.len() > CHUNK_LINE_MAX {
                            return Err(());
                        }
                        return Ok(());
                    };
                    self.line.extend_from_slice(&bytes[..pos]);
                    bytes = &bytes[pos + 1..];
                    if self.line.len() > CHUNK_LINE_MAX {
                        return Err(());
                    }
                    let mut line = std::mem::take(&mut self.line);
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    if self.state == ChunkState::Trailer {
                        if line.is_empty() {
                            self.state = ChunkState::Done;
                        }
                        continue;
                    }
                    let size = line.split(|b| *b == b';').next().unwrap_or(&[]);
                    let size = std::str::from_utf8(size).map_err(|_| ())?.trim();
                    if size.is_empty() || size.len() > 16 {
                        return Err(());
                    }
                    let n = u64::from_str_radix(size, 16).map_err(|_| ())?;
                    self.state = if n == 0 {
                        ChunkState::Trailer
                    } else {
                        ChunkState::Data(n)
                    };
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_counts_data_across_any_split() {
        let body =
            b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\n";
        for split in 0..body.len() {
            let mut c = Chunked::default();
            c.feed(&body[..split]).unwrap();
            c.feed(&body[split..]).unwrap();
            assert!(c.done(), "split at {split}");
            assert_eq!(c.data, 23);
        }
        let mut c = Chunked::default();
        assert!(c.feed(b"zz\r\n").is_err());
        let mut c = Chunked::default();
        assert!(c.feed(b"3\r\nabcX").is_err());
        let mut c = Chunked::default();
        assert!(c.feed(&[b'1'; 5000]).is_err());
    }

    #[test]
    fn request_has_the_modules_method_and_headers_and_no_injection() {
        let ask = HttpAsk {
            method: "POST".into(),
            headers: vec![
                ("X-Probe".into(), "a\r\nEvil: 1".into()),
                ("Host".into(), "vhost.example".into()),
            ],
            target: None,
        };
        let t = HttpTarget {
            host_header: "h:8080".into(),
            path: "/x?y=1".into(),
        };
        let req = String::from_utf8(request_bytes(&ask, &t)).unwrap();
        assert!(req.starts_with("POST /x?y=1 HTTP/1.1\r\n"), "{req}");
        assert!(!req.contains("Host: h:8080"));
        assert!(req.contains("Host: vhost.example\r\n"));
        assert!(req.contains("X-Probe: aEvil: 1\r\n"));
        assert!(req.contains("Content-Length: 0\r\n"));
        assert!(req.ends_with("Connection: close\r\n\r\n"));
    }

    fn step(expect: Option<&str>, send: Option<&str>) -> Step {
        Step {
            expect: expect.map(|e| regex::bytes::Regex::new(e).unwrap()),
            send: send.map(str::to_string),
            labels: vec![],
        }
    }

    #[tokio::test]
    async fn a_dialogue_expects_sends_and_expands() {
        let (mut client, mut server) = tokio::io::duplex(4096);
        let deadline = Instant::now() + Duration::from_secs(5);
        let srv = tokio::spawn(async move {
            server.write_all(b"hello\r\nPING :abc\r\n").await.unwrap();
            let mut got = vec![0u8; 64];
            let n = server.read(&mut got).await.unwrap();
            got.truncate(n);
            server.write_all(b"001 welcome\n").await.unwrap();
            drop(server);
            got
        });
        let mut ping = step(Some("PING :(?P<token>[^ ]+)"), Some("PONG ${1}"));
        ping.labels = vec![("token".into(), "t=${token}\u{7}\u{202e}\u{9b}".into())];
        let d = dialogue(&mut client, &[ping, step(Some("^001"), None)], deadline).await;
        assert_eq!(
            d,
            Dialogue {
                done: 2,
                failure: None,
                labels: vec![("token".into(), "t=abc".into())],
            }
        );
        assert_eq!(srv.await.unwrap(), b"PONG abc\n");
    }

    #[tokio::test]
    async fn a_dialogue_that_never_matches_fails_on_the_pattern() {
        let (mut client, mut server) = tokio::io::duplex(4096);
        server.write_all(b"SSH-1.99-old\r\n").await.unwrap();
        drop(server);
        let deadline = Instant::now() + Duration::from_secs(5);
        let d = dialogue(&mut client, &[step(Some("^SSH-2.0-"), None)], deadline).await;
        assert!(d.failed_on_pattern(), "{d:?}");
        assert_eq!(d.done, 0);
    }
}
