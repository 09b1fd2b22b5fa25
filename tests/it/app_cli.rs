//! After the connect, through the binary: real servers on loopback (in this test process,
//! served from a background runtime), TLS certificates made at test time, and a trust store
//! handed to canreach through `SSL_CERT_FILE` as a person would. Each test asserts the verdict,
//! the exit code and the finding that names what broke.

use crate::common;

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, date_time_ymd,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server on 127.0.0.1 that runs `serve` for every connection.
fn server<F, Fut>(serve: F) -> SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    common::serve_each(serve)
}

/// Answer up to three requests on the connection (keep-alive, as real servers do) with
/// `reply`, its body left out for HEAD.
async fn http_reply<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    reply: &'static [u8],
) {
    let head_end = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(reply.len(), |i| i + 4);
    for _ in 0..3 {
        let mut buf = vec![0u8; 4096];
        let mut got = 0;
        while !buf[..got].windows(4).any(|w| w == b"\r\n\r\n") && got < buf.len() {
            match tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf[got..])).await {
                Ok(Ok(n)) if n > 0 => got += n,
                _ => return,
            }
        }
        let out = if buf.starts_with(b"HEAD") {
            &reply[..head_end]
        } else {
            reply
        };
        if s.write_all(out).await.is_err() {
            return;
        }
    }
    let _ = s.shutdown().await;
}

/// A CA, written as a PEM file for `SSL_CERT_FILE`.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    pem: tempfile_path::Path,
}

mod tempfile_path {
    /// A file removed when dropped.
    pub struct Path(pub std::path::PathBuf);
    impl Drop for Path {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

fn pki(tag: &str) -> Pki {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(DnType::CommonName, format!("canreach test CA {tag}"));
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
    let path = std::env::temp_dir().join(format!("canreach-ca-{}-{tag}.pem", std::process::id()));
    std::fs::File::create(&path)
        .unwrap()
        .write_all(ca.pem().as_bytes())
        .unwrap();
    Pki {
        ca,
        pem: tempfile_path::Path(path),
    }
}

/// A TLS server with a leaf for `names`, valid from January 1st of year `from` to January 1st
/// of year `to`, answering HTTP 200 to one request.
fn tls_server(pki: &Pki, names: &[&str], from: i32, to: i32) -> SocketAddr {
    tls_server_chain(pki, names, from, to, false)
}

/// The same, sending the CA's own certificate after the leaf when `with_ca`.
fn tls_server_chain(pki: &Pki, names: &[&str], from: i32, to: i32, with_ca: bool) -> SocketAddr {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.not_before = date_time_ymd(from, 1, 1);
    params.not_after = date_time_ymd(to, 1, 1);
    let leaf = params.signed_by(&key, &pki.ca).unwrap();
    let mut chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone()];
    if with_ca {
        chain.push(pki.ca.der().clone());
    }
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        chain,
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    server(move |s| {
        let acceptor = acceptor.clone();
        async move {
            if let Ok(tls) = acceptor.accept(s).await {
                http_reply(
                    tls,
                    b"HTTP/1.1 200 OK\r\nServer: test\r\nContent-Length: 0\r\n\r\n",
                )
                .await;
            }
        }
    })
}

/// Run canreach with `SSL_CERT_FILE` set; the JSON report and the exit code.
fn check(pki: Option<&Pki>, args: &[&str]) -> (i32, Value) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_canreach"));
    cmd.arg("--json").args(args).env("NO_COLOR", "1");
    // URL targets follow proxy variables: the CI machine's must not decide a test.
    for k in common::PROXY_VARS {
        cmd.env_remove(k);
    }
    if let Some(p) = pki {
        cmd.env("SSL_CERT_FILE", &p.pem.0)
            .env_remove("SSL_CERT_DIR");
    }
    let out = cmd.output().map(common::checked).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    (out.status.code().unwrap(), v)
}

fn ids(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

fn message<'a>(v: &'a Value, id: &str) -> &'a str {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {:?}", ids(v)))["message"]
        .as_str()
        .unwrap()
}

#[test]
fn a_valid_https_server_is_open_with_its_tls_and_http_facts() {
    let p = pki("valid");
    let addr = tls_server(&p, &["127.0.0.1", "localhost"], 2000, 2099);
    let url = format!("https://127.0.0.1:{}/health", addr.port());
    let (code, v) = check(Some(&p), &[&url]);
    assert_eq!(code, 0, "{}", v["summary"]);
    let s = &v["probes"][0]["session"];
    assert_eq!(s["tls"]["version"], "1.3");
    assert!(s["tls"]["failure"].is_null());
    assert_eq!(s["tls"]["chain"][0]["dns_names"][0], "localhost");
    assert_eq!(s["http"]["status"], 200);
    assert_eq!(s["http"]["server"], "test");
}

#[test]
fn an_expired_certificate_is_a_tls_error_with_its_date() {
    let p = pki("expired");
    let addr = tls_server(&p, &["127.0.0.1"], 2000, 2001);
    let (code, v) = check(Some(&p), &["--protocol", "tls", &addr.to_string()]);
    assert_eq!((code, v["verdict"].as_str()), (11, Some("tls_error")));
    assert!(message(&v, "tls_expired").contains("expired on"));
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .contains("the certificate has expired")
    );
}

#[test]
fn a_certificate_for_another_name_names_what_it_is_for() {
    let p = pki("wrongname");
    let addr = tls_server(&p, &["other.test"], 2000, 2099);
    let (code, v) = check(Some(&p), &["--protocol", "tls", &addr.to_string()]);
    assert_eq!(code, 11, "{}", v["summary"]);
    assert!(message(&v, "tls_wrong_name").contains("other.test"));
}

#[test]
fn an_unknown_issuer_is_named() {
    let p = pki("unknown");
    let other = pki("trusted-but-other");
    // The whole chain is sent, up to its root: that root is what this machine lacks.
    let addr = tls_server_chain(&p, &["127.0.0.1"], 2000, 2099, true);
    let (code, v) = check(Some(&other), &["--protocol", "tls", &addr.to_string()]);
    assert_eq!(code, 11, "{}", v["summary"]);
    assert!(
        message(&v, "tls_unknown_issuer").contains("canreach test CA unknown"),
        "{}",
        message(&v, "tls_unknown_issuer")
    );
}

#[test]
fn plain_http_to_a_tls_port_expects_tls() {
    let p = pki("expects");
    let addr = tls_server(&p, &["127.0.0.1"], 2000, 2099);
    let url = format!("http://127.0.0.1:{}/", addr.port());
    let (code, v) = check(Some(&p), &[&url]);
    assert!(
        ids(&v).contains(&"expects_tls".to_string()),
        "{:?}",
        ids(&v)
    );
    assert_eq!(code, 10, "{}", v["summary"]);
}

#[test]
fn accept_then_close_and_accept_then_reset_are_service_errors_not_open() {
    let close = server(|s| async move { drop(s) });
    let (code, v) = check(None, &[&close.to_string()]);
    assert_eq!((code, v["verdict"].as_str()), (10, Some("service_error")));
    assert!(ids(&v).contains(&"accepted_then_closed".to_string()));
    let reset = server(|s| async move {
        // SO_LINGER {1, 0}: close sends a reset.
        let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
        drop(s);
    });
    let (code, v) = check(None, &[&reset.to_string()]);
    assert_eq!(code, 10, "{}", v["summary"]);
    assert!(
        ids(&v).contains(&"accepted_then_reset".to_string()),
        "{:?}",
        ids(&v)
    );
}

#[test]
fn an_envoy_503_is_a_backend_down_not_the_proxy() {
    let addr = server(|s| {
        http_reply(
            s,
            b"HTTP/1.1 503 Service Unavailable\r\nserver: envoy\r\ncontent-length: 19\r\n\r\nno healthy upstream",
        )
    });
    let url = format!("http://127.0.0.1:{}/api", addr.port());
    let (code, v) = check(None, &[&url]);
    assert_eq!(code, 10, "{}", v["summary"]);
    let m = message(&v, "http_server_error");
    assert!(
        m.contains("503") && m.contains("no healthy upstream"),
        "{m}"
    );
}

#[test]
fn a_404_is_a_service_error_and_a_banner_is_named() {
    let addr = server(|s| http_reply(s, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"));
    let (code, v) = check(None, &[&format!("http://127.0.0.1:{}/nope", addr.port())]);
    // The application that asked for /nope does not get it (tests/it/app_truth.rs has more).
    assert_eq!(code, 10);
    assert!(message(&v, "http_client_error").contains("404"));
    let ssh = server(|mut s| async move {
        let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
    let (code, v) = check(None, &[&ssh.to_string()]);
    assert_eq!(code, 0, "{}", v["summary"]);
    assert!(message(&v, "service_banner").contains("OpenSSH_9.2p1"));
    // --tcp stops right after the connect: no TLS or HTTP on a port that would get them.
    let (_, v) = check(None, &["--tcp", &format!("127.0.0.1:{}", addr.port())]);
    assert!(v["probes"][0]["session"]["http"].is_null());
}

#[test]
fn a_proxy_in_the_environment_is_said_with_its_password_masked() {
    let addr = server(|s| http_reply(s, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_canreach"));
    for k in common::PROXY_VARS {
        cmd.env_remove(k);
    }
    let out = cmd
        .args(["--json", &format!("http://127.0.0.1:{}/", addr.port())])
        .env("http_proxy", "http://user:s3cr3t@127.0.0.1:1")
        .output()
        .map(common::checked)
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("s3cr3t"), "{stdout}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["proxy"]["choice"], "proxy");
    assert!(message(&v, "proxy_applies").contains("127.0.0.1:1"));
}
