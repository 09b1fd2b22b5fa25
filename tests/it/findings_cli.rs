//! Findings through the binary, each produced by a real server on loopback that fails the way
//! the finding names: a certificate not valid yet, a chain without its intermediate, a server
//! that wants a client certificate (rustls servers, rcgen certificates made here), a plain
//! HTTP server asked for TLS, a program that answers HTTP with something else, and greetings
//! that turn the client away (an SMTP-style 421, MariaDB's captured error 1130). Each test
//! asserts the verdict, the exit code and the finding's words; where a control is cheap, the
//! same server without the fault is checked too.

use crate::common;

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, date_time_ymd,
};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Issuer = CertifiedIssuer<'static, KeyPair>;

/// A CA named `name`, signed by `parent` (an intermediate) or by itself (a root).
fn ca(name: &str, parent: Option<&Issuer>) -> Issuer {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    match parent {
        None => CertifiedIssuer::self_signed(p, key).unwrap(),
        Some(parent) => CertifiedIssuer::signed_by(p, key, parent).unwrap(),
    }
}

/// A leaf for 127.0.0.1 signed by `issuer`, valid from January 1st of `from` to January 1st
/// of `to`: its certificate and key.
fn leaf(issuer: &Issuer, from: i32, to: i32) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    p.distinguished_name
        .push(DnType::CommonName, "findings test leaf");
    p.not_before = date_time_ymd(from, 1, 1);
    p.not_after = date_time_ymd(to, 1, 1);
    let cert = p.signed_by(&key, issuer).unwrap();
    (
        cert.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

/// A file removed when dropped.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `root`'s certificate as a PEM file, for `SSL_CERT_FILE`.
fn trust_file(root: &Issuer) -> TempFile {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let path =
        std::env::temp_dir().join(format!("canreach-findings-{}-{n}.pem", std::process::id()));
    std::fs::File::create(&path)
        .unwrap()
        .write_all(root.pem().as_bytes())
        .unwrap();
    TempFile(path)
}

/// A rustls server on 127.0.0.1 sending `chain`, asking for a client certificate from
/// `client_ca` when given; it answers one HTTP request with 200.
fn tls_server(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_ca: Option<&Issuer>,
) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(ca.der().clone()).unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let cfg = builder.with_single_cert(chain, key).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    common::serve_each(move |s| {
        let acceptor = acceptor.clone();
        async move {
            if let Ok(mut tls) = acceptor.accept(s).await {
                let mut buf = [0u8; 1024];
                if tls.read(&mut buf).await.is_ok_and(|n| n > 0) {
                    let _ = tls
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                        .await;
                }
                let _ = tls.shutdown().await;
            }
        }
    })
}

/// Run canreach with `--json` and `args`, trusting `trust` (else no trust store at all); its
/// exit code and report.
fn check(trust: Option<&TempFile>, args: &[&str]) -> (i32, Value) {
    let empty;
    let file = match trust {
        Some(t) => t.0.to_str().unwrap(),
        None => {
            // A trust store of no certificates: nothing of this machine's is trusted.
            empty = "/dev/null";
            empty
        }
    };
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let r = common::run_in_env(None, &all, &[("SSL_CERT_FILE", file), ("SSL_CERT_DIR", "")]);
    let v = r.json();
    (r.code, v)
}

fn message<'a>(v: &'a Value, id: &str) -> &'a str {
    common::finding(v, id)["message"].as_str().unwrap()
}

#[test]
fn a_certificate_not_valid_yet_is_tls_not_yet_valid() {
    let root = ca("Findings Future CA", None);
    let (cert, key) = leaf(&root, 2090, 2099);
    let addr = tls_server(vec![cert], key, None);
    let trust = trust_file(&root);
    let (code, v) = check(Some(&trust), &["--protocol", "tls", &addr.to_string()]);
    assert_eq!(
        (code, v["verdict"].as_str()),
        (11, Some("tls_error")),
        "{v}"
    );
    assert_eq!(common::ids(&v)[0], "tls_not_yet_valid", "{v}");
    let m = message(&v, "tls_not_yet_valid");
    assert!(
        m.contains("is valid only from 2090-01-01") && m.contains("this machine's clock"),
        "{m}"
    );
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .contains("the certificate is not valid yet"),
        "{}",
        v["summary"]
    );
}

#[test]
fn a_chain_without_its_intermediate_is_tls_missing_intermediate() {
    let root = ca("Findings Root CA", None);
    let int = ca("Findings Intermediate CA", Some(&root));
    let trust = trust_file(&root);
    // The leaf alone: the intermediate that links it to the trusted root is not sent.
    let (cert, key) = leaf(&int, 2000, 2099);
    let addr = tls_server(vec![cert.clone()], key.clone_key(), None);
    let (code, v) = check(Some(&trust), &["--protocol", "tls", &addr.to_string()]);
    assert_eq!(
        (code, v["verdict"].as_str()),
        (11, Some("tls_error")),
        "{v}"
    );
    assert_eq!(common::ids(&v)[0], "tls_missing_intermediate", "{v}");
    let m = message(&v, "tls_missing_intermediate");
    assert!(
        m.contains("without the intermediate certificate")
            && m.contains("issued by CN=Findings Intermediate CA"),
        "{m}"
    );
    // The control: the same leaf with its intermediate is open.
    let addr = tls_server(vec![cert, int.der().clone()], key, None);
    let (code, v) = check(Some(&trust), &["--protocol", "tls", &addr.to_string()]);
    assert_eq!((code, v["verdict"].as_str()), (0, Some("open")), "{v}");
}

#[test]
fn a_server_that_wants_a_client_certificate_is_tls_client_cert_required() {
    let root = ca("Findings Server CA", None);
    let clients = ca("Findings Client CA", None);
    let (cert, key) = leaf(&root, 2000, 2099);
    let addr = tls_server(vec![cert], key, Some(&clients));
    let trust = trust_file(&root);
    let (code, v) = check(Some(&trust), &["--protocol", "tls", &addr.to_string()]);
    assert_eq!(
        (code, v["verdict"].as_str()),
        (11, Some("tls_error")),
        "{v}"
    );
    assert_eq!(common::ids(&v)[0], "tls_client_cert_required", "{v}");
    let m = message(&v, "tls_client_cert_required");
    assert!(
        m.contains("requires a client certificate issued by")
            && m.contains("Findings Client CA")
            && m.contains("this client has none configured"),
        "{m}"
    );
}

#[test]
fn a_plain_http_server_asked_for_tls_is_not_tls() {
    let addr = common::serve_each(|mut s| async move {
        let mut buf = [0u8; 1024];
        if s.read(&mut buf).await.is_ok_and(|n| n > 0) {
            let _ = s
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .await;
        }
    });
    let url = format!("https://127.0.0.1:{}/", addr.port());
    let (code, v) = check(None, &[&url]);
    assert_eq!(
        (code, v["verdict"].as_str()),
        (11, Some("tls_error")),
        "{v}"
    );
    assert!(common::ids(&v).contains(&"not_tls".to_string()), "{v}");
    let m = message(&v, "not_tls");
    assert!(
        m.contains("does not speak TLS")
            && m.contains("answered the TLS ClientHello with `HTTP/1.1 400 Bad Request`"),
        "{m}"
    );
}

#[test]
fn a_program_that_answers_http_with_something_else_is_not_http() {
    let addr = common::serve_each(|mut s| async move {
        let mut buf = [0u8; 1024];
        if s.read(&mut buf).await.is_ok_and(|n| n > 0) {
            let _ = s.write_all(b"hello there, stranger\r\n").await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let url = format!("http://127.0.0.1:{}/", addr.port());
    let (code, v) = check(None, &[&url]);
    assert_eq!(
        (code, v["verdict"].as_str()),
        (10, Some("service_error")),
        "{v}"
    );
    assert!(common::ids(&v).contains(&"not_http".to_string()), "{v}");
    let m = message(&v, "not_http");
    assert!(
        m.contains("answered with `hello there, stranger`, which is not HTTP"),
        "{m}"
    );
}

/// A server that writes `greeting` as soon as it accepts, then waits.
fn greeter(greeting: &'static [u8]) -> SocketAddr {
    common::serve_each(move |mut s| async move {
        let _ = s.write_all(greeting).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    })
}

#[test]
fn a_greeting_that_turns_the_client_away_is_service_refuses() {
    let addr = greeter(b"421 4.3.2 Service not available, closing channel\r\n");
    let (code, v) = check(None, &[&addr.to_string()]);
    assert_eq!(
        (code, v["verdict"].as_str()),
        (10, Some("service_error")),
        "{v}"
    );
    let m = message(&v, "service_refuses");
    assert!(
        m.contains("the server greets with a refusal: 421")
            && m.contains("the service turns this client away"),
        "{m}"
    );
    // The control: the same kind of greeting, saying yes, is no refusal.
    let addr = greeter(b"220 mx.example ESMTP ready\r\n");
    let (code, v) = check(None, &[&addr.to_string()]);
    assert_eq!(code, 0, "{v}");
    assert!(
        !common::ids(&v).contains(&"service_refuses".to_string()),
        "{v}"
    );
}

#[test]
fn mariadb_refusing_this_clients_host_is_service_refuses() {
    // What MariaDB 10.11 sent a client whose host has no account (tests/fixtures/protocols).
    let bytes: &'static [u8] = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/protocols/mysql/err_1130.bin"
    ))
    .unwrap()
    .leak();
    let addr = greeter(bytes);
    let (code, v) = check(None, &[&addr.to_string()]);
    assert_eq!(
        (code, v["verdict"].as_str()),
        (10, Some("service_error")),
        "{v}"
    );
    let m = message(&v, "service_refuses");
    assert!(
        m.contains("MySQL/MariaDB refuses this client (error 1130")
            && m.contains("is not allowed to connect to this MariaDB server"),
        "{m}"
    );
}
