//! After the connect, through the binary, on loopback: what a slow TLS server, a server that
//! stalls halfway through its ServerHello, a trusted self-signed certificate (made by `openssl
//! req -x509`, and by rcgen), `--cacert`, `--insecure` and HTTP statuses must come out as. Real
//! servers in this test process (served from a background runtime); each test asserts the
//! verdict, the exit code and the finding's words.

use crate::common;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, date_time_ymd};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A file removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str, bytes: &[u8]) -> TempFile {
        let path =
            std::env::temp_dir().join(format!("canreach-truth-{}-{tag}", std::process::id()));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Run canreach with `--json` and `env`; no trust-store variable leaks in from the machine.
fn json(args: &[&str], env: &[(&str, &str)]) -> (i32, Value, Run) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let mut env = env.to_vec();
    if !env.iter().any(|(k, _)| *k == "SSL_CERT_DIR") {
        // An empty value is "not set" to rustls-native-certs and OpenSSL alike.
        env.push(("SSL_CERT_DIR", ""));
    }
    let run = run_in_env(None, &all, &env);
    let v = run.json();
    (run.code, v, run)
}

fn message<'a>(v: &'a Value, id: &str) -> &'a str {
    finding(v, id)["message"].as_str().unwrap()
}

/// A rustls acceptor serving `chain` with `key`.
fn acceptor(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> tokio_rustls::TlsAcceptor {
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
}

/// Answer one request on `s` with `reply` (its body left out for HEAD).
async fn http_reply<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    reply: &'static [u8],
) {
    let mut buf = vec![0u8; 4096];
    let mut got = 0;
    while !buf[..got].windows(4).any(|w| w == b"\r\n\r\n") && got < buf.len() {
        match tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf[got..])).await {
            Ok(Ok(n)) if n > 0 => got += n,
            _ => return,
        }
    }
    let head_end = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(reply.len(), |i| i + 4);
    let out = if buf.starts_with(b"HEAD") {
        &reply[..head_end]
    } else {
        reply
    };
    let _ = s.write_all(out).await;
    let _ = s.shutdown().await;
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// A TLS server that takes `delay` before it answers a ClientHello, then answers HTTP 200;
/// each connection on its own task (a busy multi-threaded server) or, when `one_at_a_time`,
/// one after the other (a single-threaded one). Its CA, as a PEM file.
fn slow_tls_server(delay: Duration, one_at_a_time: bool) -> (SocketAddr, TempFile) {
    let tls = common::tls::ca_signed("Slow CA", vec!["127.0.0.1".into(), "localhost".into()]);
    let ca = TempFile::new(&format!("slow-{one_at_a_time}.pem"), tls.ca_pem.as_bytes());
    let acceptor = tls.acceptor;
    let serve = move |s: tokio::net::TcpStream| {
        let acceptor = acceptor.clone();
        async move {
            tokio::time::sleep(delay).await;
            if let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(2), acceptor.accept(s)).await
            {
                http_reply(tls, OK).await;
            }
        }
    };
    let addr = if one_at_a_time {
        server_rt().block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            tokio::spawn(async move {
                while let Ok((s, _)) = l.accept().await {
                    let _ = tokio::time::timeout(Duration::from_secs(5), serve(s)).await;
                }
            });
            addr
        })
    } else {
        serve_each(serve)
    };
    (addr, ca)
}

/// A server that takes 1.3 s to answer a ClientHello is slow, not a path-MTU black hole:
/// loopback has no narrower link, and the server answers the first connection first. It is
/// waited for, named as slow, and the check is open.
#[test]
fn a_slow_tls_server_is_slow_not_an_mtu_black_hole() {
    for one_at_a_time in [false, true] {
        let (addr, ca) = slow_tls_server(Duration::from_millis(1300), one_at_a_time);
        let url = format!("https://127.0.0.1:{}/", addr.port());
        let (code, v, run) = json(&[&url], &[("SSL_CERT_FILE", ca.path())]);
        assert_eq!(
            (code, v["verdict"].as_str()),
            (0, Some("open")),
            "one at a time: {one_at_a_time}: {}",
            run.stdout
        );
        let ids = ids(&v);
        assert!(!ids.contains(&"mtu_blackhole".to_string()), "{ids:?}");
        let m = message(&v, "slow_handshake");
        assert!(m.contains("answered the TLS ClientHello only after"), "{m}");
        let s = &v["probes"][0]["session"];
        assert!(s["mss_retry"].is_null(), "{s}");
        assert_eq!(s["http"]["status"], 200, "{s}");
        let answered = s["tls"]["first_answer_ms"].as_f64().unwrap();
        // Past the 1 s after which a remote path would get its reduced-MSS connection (the
        // server's 1.3 s count from its accept, a little before the ClientHello left).
        assert!(answered > 1000.0, "{s}");
    }
}

/// A server that sends the first bytes of a ServerHello and then nothing: "began its answer
/// (N bytes) and then stopped", never "nothing came back".
#[test]
fn a_tls_server_that_stalls_in_its_server_hello_began_its_answer() {
    let addr = serve_each(|mut s| async move {
        let mut b = [0u8; 2048];
        let _ = s.read(&mut b).await;
        // A handshake record announcing a 122-byte ServerHello, and only its first bytes.
        let part = [
            0x16, 0x03, 0x03, 0x00, 0x7a, 0x02, 0x00, 0x00, 0x76, 0x03, 0x03, 0x11, 0x22, 0x33,
            0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa,
        ];
        let _ = s.write_all(&part).await;
        tokio::time::sleep(Duration::from_secs(4)).await;
    });
    let (code, v, _) = json(&["-t", "2s", "--protocol", "tls", &addr.to_string()], &[]);
    assert_eq!((code, v["verdict"].as_str()), (10, Some("service_error")));
    let m = message(&v, "no_reply");
    assert!(m.contains("began its answer"), "{m}");
    assert!(m.contains("21 bytes"), "{m}");
    assert!(!m.contains("nothing came back"), "{m}");
    let summary = v["summary"].as_str().unwrap();
    assert!(
        summary.contains("begins its answer, then stops"),
        "{summary}"
    );
    assert_eq!(v["probes"][0]["session"]["tls"]["failure"], "stalled");
}

/// `openssl req -x509` (what most people run) makes a self-signed certificate marked CA:TRUE.
fn openssl_self_signed(tag: &str, names: &str) -> Option<(TempFile, TempFile)> {
    let dir = std::env::temp_dir();
    let cert = dir.join(format!(
        "canreach-truth-{}-{tag}-cert.pem",
        std::process::id()
    ));
    let key = dir.join(format!(
        "canreach-truth-{}-{tag}-key.pem",
        std::process::id()
    ));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "30"])
        .args(["-subj", "/CN=localhost", "-addext"])
        .arg(format!("subjectAltName={names}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!("openssl req: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => {
            // CI installs openssl (.ci/run); a machine without it cannot run this test.
            assert!(
                std::env::var("CANREACH_REQUIRE_LAB").as_deref() != Ok("1"),
                "openssl is needed: {e}"
            );
            eprintln!("SKIPPED: no openssl binary ({e})");
            return None;
        }
    }
    Some((TempFile(cert), TempFile(key)))
}

fn serve_tls_files(cert: &TempFile, key: &TempFile) -> SocketAddr {
    let chain = vec![CertificateDer::from_pem_file(&cert.0).unwrap()];
    let key = PrivateKeyDer::from_pem_file(&key.0).unwrap();
    let acceptor = acceptor(chain, key);
    serve_each(move |s| {
        let acceptor = acceptor.clone();
        async move {
            if let Ok(tls) = acceptor.accept(s).await {
                http_reply(tls, OK).await;
            }
        }
    })
}

/// The user trusts the openssl-made certificate (SSL_CERT_FILE, or --cacert): canreach
/// accepts it, as `curl --cacert` and `openssl verify` do.
#[test]
fn a_trusted_openssl_self_signed_ca_certificate_is_accepted() {
    let Some((cert, key)) = openssl_self_signed("ca-true", "DNS:localhost,IP:127.0.0.1") else {
        return;
    };
    // The ground truth: it is CA:TRUE, and OpenSSL verifies it against itself.
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in", cert.path()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("CA:TRUE"));
    let verify = Command::new("openssl")
        .args(["verify", "-CAfile", cert.path(), cert.path()])
        .output()
        .unwrap();
    assert!(verify.status.success(), "{verify:?}");

    let addr = serve_tls_files(&cert, &key);
    let url = format!("https://127.0.0.1:{}/", addr.port());
    let (code, v, run) = json(&[&url], &[("SSL_CERT_FILE", cert.path())]);
    assert_eq!(code, 0, "{}", run.stdout);
    assert_eq!(v["probes"][0]["session"]["tls"]["verification"], "passed");
    assert_eq!(v["probes"][0]["session"]["http"]["status"], 200);
    // The same with --cacert, and a system store that does not hold it.
    let other = common::tls::ca_signed("Unrelated CA", vec!["x.test".into()]);
    let unrelated = TempFile::new("unrelated.pem", other.ca_pem.as_bytes());
    let (code, _, run) = json(
        &["--cacert", cert.path(), &url],
        &[("SSL_CERT_FILE", unrelated.path())],
    );
    assert_eq!(code, 0, "{}", run.stdout);
    // Without it, the same server is still refused: self-signed, not trusted here.
    let (code, v, _) = json(&[&url], &[("SSL_CERT_FILE", unrelated.path())]);
    assert_eq!(code, 11);
    assert!(ids(&v).contains(&"tls_self_signed".to_string()));
    // Trusted, but not for this name: still the name's failure.
    let (other_cert, other_key) = openssl_self_signed("other-name", "DNS:other.test").unwrap();
    let addr = serve_tls_files(&other_cert, &other_key);
    let (code, v, _) = json(
        &[
            "--cacert",
            other_cert.path(),
            "--protocol",
            "tls",
            &addr.to_string(),
        ],
        &[],
    );
    assert_eq!(code, 11, "{v}");
    assert!(message(&v, "tls_wrong_name").contains("other.test"), "{v}");
}

/// An rcgen-made self-signed certificate (CA:TRUE, and CA:FALSE), served as the server's own:
/// trusted with --cacert when valid; an expired one is still expired.
#[test]
fn a_trusted_rcgen_self_signed_certificate_is_accepted_when_valid() {
    for (tag, ca, to) in [
        ("rcgen-ca", true, 2099),
        ("rcgen-leaf", false, 2099),
        ("rcgen-expired", true, 2001),
    ] {
        let mut p = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, tag);
        if ca {
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        p.not_before = date_time_ymd(2000, 1, 1);
        p.not_after = date_time_ymd(to, 1, 1);
        let key = KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        let pem = TempFile::new(&format!("{tag}.pem"), cert.pem().as_bytes());
        let acceptor = acceptor(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        );
        let addr = serve_each(move |s| {
            let acceptor = acceptor.clone();
            async move {
                let _ = acceptor.accept(s).await;
            }
        });
        let (code, v, run) = json(
            &[
                "--cacert",
                pem.path(),
                "--protocol",
                "tls",
                &addr.to_string(),
            ],
            &[],
        );
        if to == 2001 {
            assert_eq!(code, 11, "{tag}: {}", run.stdout);
            assert!(ids(&v).contains(&"tls_expired".to_string()), "{tag}: {v}");
        } else {
            assert_eq!(code, 0, "{tag}: {}", run.stdout);
        }
    }
}

/// `--insecure` goes on whatever verification says, and says loudly what it would have said,
/// in text and JSON.
#[test]
fn insecure_skips_verification_and_says_so() {
    let Some((cert, key)) = openssl_self_signed("insecure", "DNS:localhost,IP:127.0.0.1") else {
        return;
    };
    let addr = serve_tls_files(&cert, &key);
    let url = format!("https://127.0.0.1:{}/", addr.port());
    let other = common::tls::ca_signed("Unrelated CA", vec!["x.test".into()]);
    let unrelated = TempFile::new("unrelated-k.pem", other.ca_pem.as_bytes());
    let env = [("SSL_CERT_FILE", unrelated.path()), ("SSL_CERT_DIR", "")];
    let (code, v, run) = json(&["--insecure", &url], &env);
    assert_eq!(code, 0, "{}", run.stdout);
    let tls = &v["probes"][0]["session"]["tls"];
    assert_eq!(tls["verification"], "skipped");
    assert_eq!(tls["would_fail"], "tls_self_signed");
    let m = message(&v, "tls_not_verified");
    assert!(m.contains("SKIPPED (--insecure)"), "{m}");
    assert!(m.contains("self-signed"), "{m}");
    assert_eq!(finding(&v, "tls_not_verified")["severity"], "warning");
    let text = run_in_env(None, &["-k", &url], &env);
    assert_eq!(text.code, 0, "{}", text.stdout);
    // The report wraps lines: compare with the whitespace folded.
    let folded = text.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(folded.contains("NOT VERIFIED (--insecure)"), "{folded}");
    assert!(folded.contains("SKIPPED (--insecure)"), "{folded}");
    // Trusted anyway: it says the option was not needed.
    let (code, v, _) = json(&["-k", &url], &[("SSL_CERT_FILE", cert.path())]);
    assert_eq!(code, 0);
    assert!(message(&v, "tls_not_verified").contains("would have passed"));
    assert!(v["probes"][0]["session"]["tls"]["would_fail"].is_null());
}

/// A `--cacert` that cannot be used is one line and exit 2, before any check: missing, not
/// PEM, a directory, a FIFO (which must not block).
#[test]
fn a_cacert_that_cannot_be_used_is_a_usage_error() {
    let not_pem = TempFile::new("not-pem.txt", b"hello\n");
    let fifo = std::env::temp_dir().join(format!("canreach-truth-{}-fifo", std::process::id()));
    let _ = std::fs::remove_file(&fifo);
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    let mut files = vec![
        "/nonexistent/ca.pem".to_string(),
        not_pem.path().to_string(),
        "/".to_string(),
    ];
    if made {
        files.push(fifo.to_str().unwrap().to_string());
    }
    for f in &files {
        let run = run_in(None, &["--cacert", f, "127.0.0.1:9"]);
        assert_eq!(run.code, 2, "{f}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{f}: {}", run.stderr);
        assert!(run.stderr.contains("--cacert"), "{f}: {}", run.stderr);
        assert!(run.took < Duration::from_secs(2), "{f}: {:?}", run.took);
    }
    let _ = std::fs::remove_file(&fifo);
}

/// A plain HTTP server answering every request with `reply`.
fn http_server(reply: &'static [u8]) -> SocketAddr {
    serve_each(move |s| http_reply(s, reply))
}

/// A 4xx or 5xx is not what the application asked for: `service_error`, naming the status;
/// `--expect-status` says otherwise.
#[test]
fn http_errors_are_service_errors_unless_expected() {
    let nf = http_server(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    let url = format!("http://127.0.0.1:{}/nope", nf.port());
    let (code, v, _) = json(&[&url], &[]);
    assert_eq!((code, v["verdict"].as_str()), (10, Some("service_error")));
    let m = message(&v, "http_client_error");
    assert!(
        m.contains("404 Not Found") && m.contains("for /nope: there is nothing at that path"),
        "{m}"
    );
    assert!(m.contains("--expect-status 404"), "{m}");
    assert!(v["summary"].as_str().unwrap().contains("HTTP 404"), "{v}");

    let (code, v, _) = json(&["--expect-status", "404", &url], &[]);
    assert_eq!((code, v["verdict"].as_str()), (0, Some("open")), "{v}");
    assert!(!ids(&v).contains(&"http_client_error".to_string()));
    let (code, v, _) = json(&["--expect-status", "2xx,4xx", &url], &[]);
    assert_eq!(code, 0, "{v}");

    let ok = http_server(OK);
    let (code, v, _) = json(
        &[
            "--expect-status",
            "404",
            &format!("http://127.0.0.1:{}/", ok.port()),
        ],
        &[],
    );
    assert_eq!(code, 10, "{v}");
    assert!(message(&v, "http_unexpected_status").contains("--expect-status asks for 404"));

    let down = http_server(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
    let down_url = format!("http://127.0.0.1:{}/", down.port());
    let (code, _, _) = json(&[&down_url], &[]);
    assert_eq!(code, 10);
    let (code, _, _) = json(&["--expect-status", "503", &down_url], &[]);
    assert_eq!(code, 0);
}

/// 401 says credentials are needed, and which the server accepts.
#[test]
fn http_401_says_credentials_are_needed() {
    let auth = http_server(
        b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"ops\"\r\nContent-Length: 0\r\n\r\n",
    );
    let (code, v, _) = json(&[&format!("http://127.0.0.1:{}/admin", auth.port())], &[]);
    assert_eq!(code, 10, "{v}");
    let m = message(&v, "http_client_error");
    assert!(m.contains("wants credentials"), "{m}");
    assert!(m.contains("Basic realm=\"ops\""), "{m}");
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .contains("it wants credentials (HTTP 401)"),
        "{v}"
    );
}

/// A redirect is the server working: `open`, saying where it points, its secrets masked.
#[test]
fn a_redirect_is_open_and_says_where_it_points_masked() {
    let abs = http_server(
        b"HTTP/1.1 302 Found\r\nLocation: https://admin:PASSW0RD@host.test/next?token=TOK3N&page=2\r\nContent-Length: 0\r\n\r\n",
    );
    let (code, v, _) = json(&[&format!("http://127.0.0.1:{}/", abs.port())], &[]);
    assert_eq!((code, v["verdict"].as_str()), (0, Some("open")), "{v}");
    let m = message(&v, "http_redirect");
    assert!(
        m.contains("https://admin:***@host.test/next?token=***&page=2"),
        "{m}"
    );
    assert!(!m.contains("PASSW0RD") && !m.contains("TOK3N"), "{m}");
    let rel = http_server(
        b"HTTP/1.1 301 Moved Permanently\r\nLocation: /login?api_key=K3Y\r\nContent-Length: 0\r\n\r\n",
    );
    let (code, v, _) = json(&[&format!("http://127.0.0.1:{}/app", rel.port())], &[]);
    assert_eq!(code, 0, "{v}");
    let m = message(&v, "http_redirect");
    assert!(
        m.contains(&format!(
            "http://127.0.0.1:{}/login?api_key=***",
            rel.port()
        )),
        "{m}"
    );
}

/// `--expect-status` values that are not statuses are usage errors.
#[test]
fn bad_expect_status_is_a_usage_error() {
    for bad in ["", "ok", "600", "299-200", "2xxx", "abc-def"] {
        let run = run_in(None, &["--expect-status", bad, "127.0.0.1:9"]);
        assert_eq!(run.code, 2, "{bad}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{bad}: {}", run.stderr);
    }
}
