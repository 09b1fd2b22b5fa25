//! Mail's STARTTLS, followed: a fake SMTP server on loopback that offers STARTTLS and then
//! completes a TLS handshake with a certificate of a CA made at test time. canreach checks
//! that certificate as for https.

use crate::common;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One line from the client (up to its `\n`), at most 512 bytes.
async fn read_line(s: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while line.len() < 512 && s.read(&mut b).await.unwrap_or(0) == 1 {
        line.push(b[0]);
        if b[0] == b'\n' {
            break;
        }
    }
    line
}

/// An SMTP server that offers STARTTLS; its CA's PEM.
fn smtp_with_starttls() -> (std::net::SocketAddr, String) {
    let tls = common::tls::ca_signed("Mail CA", vec!["127.0.0.1".into()]);
    let acceptor = tls.acceptor;
    let addr = serve_each(move |mut s| {
        let acceptor = acceptor.clone();
        async move {
            let _ = s.write_all(b"220 mx.test ESMTP\r\n").await;
            // The probe's own connection closes without a word.
            if !read_line(&mut s).await.starts_with(b"EHLO ") {
                return;
            }
            let _ = s.write_all(b"250-mx.test\r\n250 STARTTLS\r\n").await;
            if read_line(&mut s).await != b"STARTTLS\r\n" {
                return;
            }
            let _ = s.write_all(b"220 2.0.0 Ready to start TLS\r\n").await;
            if let Ok(mut tls) = acceptor.accept(s).await {
                let mut rest = Vec::new();
                let _ = tls.read_to_end(&mut rest).await;
            }
        }
    });
    (addr, tls.ca_pem)
}

#[test]
fn smtp_starttls_is_followed_by_the_tls_checks() {
    let (addr, ca_pem) = smtp_with_starttls();
    let ca = std::env::temp_dir().join(format!("canreach-mail-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, ca_pem).unwrap();
    let port = addr.port().to_string();
    let args = ["--json", "--protocol", "smtp", "127.0.0.1", &port];
    // Trusted: open, the handshake's facts beside the greeting's.
    let r = run_in_env(None, &args, &[("SSL_CERT_FILE", ca.to_str().unwrap())]);
    let v = r.json();
    assert_eq!(v["verdict"], "open", "{}", r.stdout);
    let s = &v["probes"][0]["session"];
    assert_eq!(s["protocol"]["name"], "smtp");
    assert!(s["tls"]["version"].is_string(), "{s}");
    assert_eq!(s["tls"]["chain"][0]["issuer"], "CN=Mail CA");
    // This machine does not trust that CA: the TLS that STARTTLS began fails its checks.
    let r = run_in(None, &args);
    let v = r.json();
    let _ = std::fs::remove_file(&ca);
    assert_eq!(v["verdict"], "tls_error", "{}", r.stdout);
    // (A leaf whose issuer this machine lacks: the same finding as over https.)
    assert_eq!(ids(&v)[0], "tls_missing_intermediate", "{:?}", ids(&v));
}
