//! The proxy path, through the binary: tiny in-process HTTP proxies on 127.0.0.1 (one that
//! tunnels `CONNECT` to a loopback rustls server, ones that answer 407, 403 and 502, one that
//! answers plain HTTP asked in absolute form), a closed proxy port, `no_proxy` and
//! `--no-proxy`; and `expects_tls` confirmed (or not) by a second connection speaking TLS.
//!
//! Every run starts from an environment without proxy variables, then sets the test's own, and
//! its report goes through `common::check_report`.

use crate::common;

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A server on 127.0.0.1 that runs `serve` for every connection.
fn server<F, Fut>(serve: F) -> SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    common::serve_each(serve)
}

/// A request head, read byte by byte (so nothing after it is consumed).
async fn read_head<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> String {
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

/// Answer every request head on the connection with `reply` (its body left out for HEAD).
async fn http_reply<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    reply: &'static [u8],
) {
    let head_end = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(reply.len(), |i| i + 4);
    loop {
        let head = read_head(&mut s).await;
        if !head.ends_with("\r\n\r\n") {
            return;
        }
        let out = if head.starts_with("HEAD") {
            &reply[..head_end]
        } else {
            reply
        };
        if s.write_all(out).await.is_err() {
            return;
        }
    }
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nServer: dest\r\nContent-Length: 0\r\n\r\n";

/// What a proxy does with a request.
#[derive(Clone, Copy)]
enum Mode {
    /// `CONNECT` to a loopback destination: 200, then relay.
    Tunnel,
    /// Answer with these bytes and close.
    Answer(&'static [u8]),
    /// Answer a request in absolute form itself (as if relayed), with a `Via` header.
    Forward,
}

/// Every request head a proxy saw.
type Seen = Arc<Mutex<Vec<String>>>;

fn proxy(mode: Mode) -> (SocketAddr, Seen) {
    let seen = Seen::default();
    let log = Arc::clone(&seen);
    let addr = server(move |mut s| {
        let log = Arc::clone(&log);
        async move {
            let head = read_head(&mut s).await;
            // The probe connects and closes without a word: not a request.
            if head.is_empty() {
                return;
            }
            log.lock().unwrap().push(head.clone());
            match mode {
                Mode::Answer(bytes) => {
                    let _ = s.write_all(bytes).await;
                }
                Mode::Tunnel => {
                    let authority = head.split(' ').nth(1).unwrap_or("").to_owned();
                    let Ok(dest) = authority.parse::<SocketAddr>() else {
                        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
                        return;
                    };
                    // The test proxy only ever reaches loopback.
                    assert!(dest.ip().is_loopback());
                    let Ok(mut up) = TcpStream::connect(dest).await else {
                        let _ = s.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                        return;
                    };
                    let _ = s
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await;
                    let _ = tokio::io::copy_bidirectional(&mut s, &mut up).await;
                }
                Mode::Forward => {
                    let _ = s
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nVia: 1.1 testproxy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        )
                        .await;
                }
            }
        }
    });
    (addr, seen)
}

/// A TLS server for 127.0.0.1 and localhost answering HTTP 200, and its CA as a PEM file.
fn tls_server(tag: &str) -> (SocketAddr, Pem) {
    let tls = common::tls::ca_signed(
        &format!("canreach proxy test CA {tag}"),
        vec!["127.0.0.1".to_string(), "localhost".to_string()],
    );
    let path = std::env::temp_dir().join(format!(
        "canreach-proxy-ca-{}-{tag}.pem",
        std::process::id()
    ));
    std::fs::File::create(&path)
        .unwrap()
        .write_all(tls.ca_pem.as_bytes())
        .unwrap();
    let acceptor = tls.acceptor.clone();
    let addr = server(move |s| {
        let acceptor = acceptor.clone();
        async move {
            if let Ok(t) = acceptor.accept(s).await {
                http_reply(t, OK).await;
            }
        }
    });
    (addr, Pem(path))
}

/// A file removed when dropped.
struct Pem(std::path::PathBuf);
impl Drop for Pem {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A port on 127.0.0.1 where nothing listens (bound, then closed).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Run canreach with no proxy variable but `env`'s; the exit code and the JSON report.
fn check(args: &[&str], env: &[(&str, &str)]) -> (i32, Value, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_canreach"));
    cmd.arg("--json").args(args).env("NO_COLOR", "1");
    // The trust store too: each test names its own CA.
    for k in common::PROXY_VARS
        .iter()
        .chain(&["SSL_CERT_FILE", "SSL_CERT_DIR"])
    {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().map(common::checked).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    common::check_report(&stdout);
    let v: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    (out.status.code().unwrap(), v, stdout)
}

fn message<'a>(v: &'a Value, id: &str) -> &'a str {
    common::finding(v, id)["message"].as_str().unwrap()
}

#[test]
fn https_goes_through_the_tunnel_and_checks_the_destination() {
    let (dest, pem) = tls_server("tunnel");
    let (p, seen) = proxy(Mode::Tunnel);
    let url = format!("https://127.0.0.1:{}/health", dest.port());
    let proxy_url = format!("http://alice:s3cr3t@127.0.0.1:{}", p.port());
    let (code, v, stdout) = check(
        &[&url],
        &[
            ("https_proxy", &proxy_url),
            ("SSL_CERT_FILE", pem.0.to_str().unwrap()),
        ],
    );
    assert_eq!(code, 0, "{stdout}");
    // The application's path: the proxy was probed, the tunnel opened, TLS and HTTP are the
    // destination's, through it.
    assert_eq!(v["proxy"]["followed"], true);
    assert_eq!(v["probes"][0]["port"], p.port());
    let s = &v["probes"][0]["session"];
    assert_eq!(s["via"]["kind"], "tunnel");
    assert_eq!(s["via"]["status"], 200);
    assert_eq!(s["via"]["authority"], format!("127.0.0.1:{}", dest.port()));
    assert_eq!(s["tls"]["version"], "1.3");
    assert!(s["tls"]["failure"].is_null());
    assert_eq!(s["http"]["status"], 200);
    assert_eq!(s["http"]["server"], "dest");
    // The direct path, alongside, for the record.
    assert_eq!(v["proxy"]["direct"]["probes"][0]["outcome"], "open");
    assert!(message(&v, "direct_path").contains("open"));
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .contains(&format!("through the proxy 127.0.0.1:{}", p.port())),
        "{}",
        v["summary"]
    );
    // Credentials: never sent, never shown.
    let heads = seen.lock().unwrap().clone();
    assert!(
        heads[0].starts_with(&format!("CONNECT 127.0.0.1:{} HTTP/1.1\r\n", dest.port())),
        "{heads:?}"
    );
    for h in &heads {
        assert!(!h.to_ascii_lowercase().contains("authorization"), "{h}");
        assert!(!h.contains("s3cr3t") && !h.contains("alice"), "{h}");
    }
    assert!(!stdout.contains("s3cr3t") && !stdout.contains("alice"));
    assert_eq!(
        v["proxy"]["proxy"],
        format!("http://***@127.0.0.1:{}", p.port())
    );
}

#[test]
fn a_proxy_that_wants_credentials_is_a_service_error_naming_it() {
    let (p, _) = proxy(Mode::Answer(
        b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 0\r\n\r\n",
    ));
    let dest = closed_port();
    let url = format!("https://127.0.0.1:{dest}/");
    let (code, v, stdout) = check(
        &[&url],
        &[("HTTPS_PROXY", &format!("http://127.0.0.1:{}", p.port()))],
    );
    assert_eq!(
        (code, v["verdict"].as_str()),
        (10, Some("service_error")),
        "{stdout}"
    );
    let m = message(&v, "proxy_auth_required");
    assert!(m.contains(&format!("127.0.0.1:{}", p.port())), "{m}");
    assert!(m.contains("HTTPS_PROXY") && m.contains("407"), "{m}");
    assert!(m.contains("Basic realm=\"corp\""), "{m}");
    assert_eq!(v["probes"][0]["session"]["via"]["status"], 407);
    // The direct path is said, and does not decide.
    assert!(message(&v, "direct_path").contains("closed"), "{stdout}");
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .contains("the proxy wants credentials")
    );
}

#[test]
fn a_proxy_that_forbids_or_cannot_reach_is_a_service_error_naming_it() {
    for (bytes, id, words) in [
        (
            &b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"[..],
            "proxy_forbidden",
            "403 Forbidden",
        ),
        (
            &b"HTTP/1.1 502 Bad Gateway\r\nVia: 1.1 squid\r\nContent-Length: 0\r\n\r\n"[..],
            "proxy_upstream_failed",
            "502 Bad Gateway",
        ),
    ] {
        let (p, seen) = proxy(Mode::Answer(bytes));
        let url = format!("https://127.0.0.1:{}/", closed_port());
        let (code, v, stdout) = check(
            &[&url],
            &[("https_proxy", &format!("127.0.0.1:{}", p.port()))],
        );
        assert_eq!(code, 10, "{stdout}");
        let m = message(&v, id);
        assert!(
            m.contains(words) && m.contains(&format!("127.0.0.1:{}", p.port())),
            "{m}"
        );
        assert!(seen.lock().unwrap()[0].starts_with("CONNECT "));
        // No TLS was tried past a refusal.
        assert!(v["probes"][0]["session"]["tls"].is_null());
    }
}

#[test]
fn a_closed_proxy_port_is_closed_and_names_the_proxy() {
    let (dest, _pem) = tls_server("closedproxy");
    let port = closed_port();
    let url = format!("https://127.0.0.1:{}/", dest.port());
    let (code, v, stdout) = check(
        &[&url],
        &[("https_proxy", &format!("http://127.0.0.1:{port}"))],
    );
    assert_eq!(
        (code, v["verdict"].as_str()),
        (4, Some("closed")),
        "{stdout}"
    );
    assert_eq!(v["probes"][0]["port"], port);
    let summary = v["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!(
            "through the proxy 127.0.0.1:{port} (from https_proxy)"
        )),
        "{summary}"
    );
    assert!(message(&v, "proxy_applies").contains(&format!("127.0.0.1:{port}")));
    // The destination itself is up: the direct path says so, the verdict stays the proxy's.
    assert_eq!(v["proxy"]["direct"]["probes"][0]["outcome"], "open");
}

#[test]
fn plain_http_is_asked_of_the_proxy_in_absolute_form() {
    let dest = server(|s| http_reply(s, OK));
    let (p, seen) = proxy(Mode::Forward);
    let url = format!("http://127.0.0.1:{}/status", dest.port());
    let (code, v, stdout) = check(
        &[&url],
        &[("http_proxy", &format!("http://127.0.0.1:{}", p.port()))],
    );
    assert_eq!(code, 0, "{stdout}");
    let heads = seen.lock().unwrap().clone();
    assert!(
        heads[0].starts_with(&format!(
            "HEAD http://127.0.0.1:{}/status HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n",
            dest.port(),
            dest.port()
        )),
        "{heads:?}"
    );
    let s = &v["probes"][0]["session"];
    assert_eq!(s["via"]["kind"], "forward");
    assert_eq!(s["http"]["via"], "1.1 testproxy");
    assert_eq!(v["probes"][0]["port"], p.port());
}

#[test]
fn no_proxy_exempts_the_host_and_no_proxy_flag_ignores_the_variables() {
    let (dest, pem) = tls_server("exempt");
    let dead = closed_port();
    let url = format!("https://127.0.0.1:{}/", dest.port());
    let proxy_url = format!("http://127.0.0.1:{dead}");
    let cert = pem.0.to_str().unwrap();
    let (code, v, stdout) = check(
        &[&url],
        &[
            ("https_proxy", &proxy_url),
            ("NO_PROXY", "localhost,127.0.0.0/8"),
            ("SSL_CERT_FILE", cert),
        ],
    );
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(v["proxy"]["choice"], "exempt");
    assert_eq!(v["proxy"]["no_proxy_entry"], "127.0.0.0/8");
    assert_eq!(v["proxy"]["followed"], false);
    assert_eq!(v["probes"][0]["port"], dest.port());

    let (code, v, stdout) = check(
        &["--no-proxy", &url],
        &[("https_proxy", &proxy_url), ("SSL_CERT_FILE", cert)],
    );
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(v["proxy"]["followed"], false);
    assert!(message(&v, "proxy_applies").contains("--no-proxy"));
    assert_eq!(v["probes"][0]["port"], dest.port());
}

#[test]
fn plain_http_to_a_tls_port_is_confirmed_by_a_tls_handshake() {
    let (dest, pem) = tls_server("confirm");
    let url = format!("http://127.0.0.1:{}/", dest.port());
    let (code, v, stdout) = check(&[&url], &[("SSL_CERT_FILE", pem.0.to_str().unwrap())]);
    assert_eq!(code, 10, "{stdout}");
    let m = message(&v, "expects_tls");
    assert!(m.contains("Confirmed") && m.contains("TLS 1.3"), "{m}");
    assert!(
        m.contains(&format!("https://127.0.0.1:{}/", dest.port())),
        "{m}"
    );
    assert_eq!(v["probes"][0]["session"]["tls_confirm"]["version"], "1.3");
}

#[test]
fn a_tls_port_that_hangs_up_on_plain_http_expects_tls() {
    // As OpenSSL-based servers do: plain HTTP is closed without a word, a ClientHello gets
    // the handshake.
    let tls = common::tls::ca_signed("canreach hang-up CA", vec!["127.0.0.1".to_string()]);
    let acceptor = tls.acceptor.clone();
    let dest = server(move |s| {
        let acceptor = acceptor.clone();
        async move {
            let mut first = [0u8; 1];
            if s.peek(&mut first).await.unwrap_or(0) == 1
                && first[0] == 0x16
                && let Ok(t) = acceptor.accept(s).await
            {
                http_reply(t, OK).await;
            }
        }
    });
    let url = format!("http://127.0.0.1:{}/", dest.port());
    let (code, v, stdout) = check(&[&url], &[]);
    assert_eq!(code, 10, "{stdout}");
    let m = message(&v, "expects_tls");
    // Closed with the request unread: the kernel sends a reset.
    assert!(m.contains("the connection without a word"), "{m}");
    assert!(m.contains("certificate for 127.0.0.1"), "{m}");
    assert!(
        !common::ids(&v).contains(&"not_http".to_string()),
        "{stdout}"
    );
}

#[test]
fn a_reply_that_only_looks_like_tls_is_not_confirmed() {
    // Starts like a TLS handshake record, then is not one.
    let dest = server(|mut s| async move {
        // One read: an HTTP request or a ClientHello, whichever comes.
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).await;
        let _ = s.write_all(b"\x16\x03not TLS at all\r\n").await;
    });
    let url = format!("http://127.0.0.1:{}/", dest.port());
    let (code, v, stdout) = check(&[&url], &[]);
    assert_eq!(code, 10, "{stdout}");
    let m = message(&v, "expects_tls");
    assert!(m.contains("only looked like TLS"), "{m}");
    assert!(!v["probes"][0]["session"]["tls_confirm"].is_null());
}
