//! Services with no Debian server in the lab, spoken to by fake servers on loopback that send
//! the captured replies of `tests/fixtures/protocols/`: AMQP's Connection.Start (open, with
//! the product and version) and Connection.Close (refused, in its words); IMAP's and POP3's
//! STARTTLS, followed by the TLS checks as for SMTP (`service_starttls`).

use crate::common;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Hex text with `#` comments to bytes (the fixtures' `.hex` form).
fn from_hex(text: &str) -> Vec<u8> {
    let digits: String = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("")
        .split_whitespace()
        .collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

/// An AMQP server that answers the protocol header with `reply`, then waits for the client
/// to close.
fn amqp(reply: Vec<u8>) -> std::net::SocketAddr {
    serve_each(move |mut s| {
        let reply = reply.clone();
        async move {
            let mut header = [0u8; 8];
            // The probe's own connection closes without a word.
            if s.read_exact(&mut header).await.is_err() || &header != b"AMQP\x00\x00\x09\x01" {
                return;
            }
            let _ = s.write_all(&reply).await;
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest).await;
        }
    })
}

#[test]
fn amqp_connection_start_is_open_naming_the_product_and_its_mechanisms() {
    let start = include_bytes!("../fixtures/protocols/amqp/connection_start.bin").to_vec();
    let addr = amqp(start);
    let port = addr.port().to_string();
    let v = run_in(None, &["--json", "--protocol", "amqp", "127.0.0.1", &port]).json();
    assert_eq!(v["verdict"], "open", "{v}");
    let p = &v["probes"][0]["session"]["protocol"];
    assert_eq!(p["name"], "amqp");
    assert_eq!(p["version"], "RabbitMQ 3.10.8", "{p}");
    assert_eq!(p["auth_method"], "PLAIN AMQPLAIN", "{p}");
    let m = finding(&v, "service_answered")["message"].as_str().unwrap();
    assert!(m.contains("AMQP RabbitMQ 3.10.8 answers"), "{m}");
}

#[test]
fn amqp_connection_close_is_a_service_error_in_its_words() {
    let close = from_hex(include_str!(
        "../fixtures/protocols/amqp/connection_close.hex"
    ));
    let addr = amqp(close);
    let port = addr.port().to_string();
    let v = run_in(None, &["--json", "--protocol", "amqp", "127.0.0.1", &port]).json();
    assert_eq!(v["verdict"], "service_error", "{v}");
    assert_eq!(ids(&v)[0], "service_error_reply", "{:?}", ids(&v));
    let m = finding(&v, "service_error_reply")["message"]
        .as_str()
        .unwrap();
    assert!(
        m.contains("AMQP answered with an error: \"NOT_ALLOWED - access to vhost '/' refused\" (Connection.Close 530)"),
        "{m}"
    );
    let p = &v["probes"][0]["session"]["protocol"];
    assert_eq!(p["error"]["code"], "530", "{p}");
}

/// One line from the client (up to its `\n`), at most 512 bytes.
async fn read_line<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Vec<u8> {
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

/// A mail server (`imap` or `pop3`) that offers STARTTLS, then completes a TLS handshake with
/// a certificate of a CA made at test time; its CA's PEM.
fn mail_with_starttls(imap: bool) -> (std::net::SocketAddr, String) {
    let tls = common::tls::ca_signed("Mail CA", vec!["127.0.0.1".into()]);
    let acceptor = tls.acceptor;
    let addr = serve_each(move |mut s| {
        let acceptor = acceptor.clone();
        async move {
            if imap {
                let _ = s
                    .write_all(b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n")
                    .await;
                if read_line(&mut s).await != b"a002 STARTTLS\r\n" {
                    return;
                }
                let _ = s.write_all(b"a002 OK Begin TLS negotiation now\r\n").await;
            } else {
                let _ = s.write_all(b"+OK POP3 ready\r\n").await;
                if read_line(&mut s).await != b"CAPA\r\n" {
                    return;
                }
                let _ = s.write_all(b"+OK\r\nTOP\r\nUIDL\r\nSTLS\r\n.\r\n").await;
                if read_line(&mut s).await != b"STLS\r\n" {
                    return;
                }
                let _ = s.write_all(b"+OK Begin TLS negotiation\r\n").await;
            }
            if let Ok(mut tls) = acceptor.accept(s).await {
                let mut rest = Vec::new();
                let _ = tls.read_to_end(&mut rest).await;
            }
        }
    });
    (addr, tls.ca_pem)
}

fn starttls_is_followed(protocol: &str) {
    let (addr, ca_pem) = mail_with_starttls(protocol == "imap");
    let ca =
        std::env::temp_dir().join(format!("canreach-{protocol}-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, ca_pem).unwrap();
    let port = addr.port().to_string();
    let args = ["--json", "--protocol", protocol, "127.0.0.1", &port];
    // Trusted: open, the handshake's facts beside the greeting's.
    let r = run_in_env(None, &args, &[("SSL_CERT_FILE", ca.to_str().unwrap())]);
    let v = r.json();
    assert_eq!(v["verdict"], "open", "{}", r.stdout);
    let s = &v["probes"][0]["session"];
    assert_eq!(s["protocol"]["name"], protocol);
    assert!(s["tls"]["version"].is_string(), "{s}");
    assert_eq!(s["tls"]["chain"][0]["issuer"], "CN=Mail CA");
    // This machine does not trust that CA: the TLS that STARTTLS began fails its checks.
    let r = run_in(None, &args);
    let v = r.json();
    let _ = std::fs::remove_file(&ca);
    assert_eq!(v["verdict"], "tls_error", "{}", r.stdout);
    assert_eq!(ids(&v)[0], "tls_missing_intermediate", "{:?}", ids(&v));
}

#[test]
fn imap_starttls_is_followed_by_the_tls_checks() {
    starttls_is_followed("imap");
}

#[test]
fn pop3_stls_is_followed_by_the_tls_checks() {
    starttls_is_followed("pop3");
}
