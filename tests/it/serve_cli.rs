//! `canreach serve` as a process, on loopback: bad requests and hostile module files, each
//! prober against real servers made here (plain, HTTP, TLS with test-made certificates, a
//! banner), the page, the exporter's own metrics, a clean stop on SIGTERM, and no descriptor
//! left behind after 10,000 probes. The filtered targets are in `tests/it/serve_lab.rs`.

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{CertificateParams, KeyPair, date_time_ymd};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A running exporter, killed (by pid) when dropped.
struct Server {
    _child: common::Started,
    pid: u32,
    addr: SocketAddr,
}

/// Start `canreach serve --listen 127.0.0.1:0 ARGS…` and wait for its "listening" line.
fn serve(args: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_canreach"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let addr = common::exporter_address(&mut child).parse().unwrap();
    Server {
        _child: common::Started(child),
        pid,
        addr,
    }
}

/// One GET; the status and the body.
fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text[9..12].parse().unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n").unwrap();
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
}

fn probe(srv: &Server, module: &str, target: &str) -> String {
    let (status, body) = get(
        srv.addr,
        &format!("/probe?module={module}&target={}", enc(target)),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    body
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The value of an unlabelled series.
fn value(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
        .parse()
        .unwrap()
}

/// A listener that accepts and holds every connection.
fn holding_listener() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = std::collections::VecDeque::new();
        for c in l.incoming().flatten() {
            held.push_back(c);
            if held.len() > 200 {
                held.pop_front();
            }
        }
    });
    addr
}

/// A port with nothing listening.
fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn write_file(name: &str, text: &[u8]) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("canreach-serve-{}-{name}", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn bad_requests_get_400_and_one_line() {
    let srv = serve(&[]);
    let long = "a".repeat(3000);
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "/probe?target=127.0.0.1:1".into(),
            vec![],
            400,
            "module parameter is missing",
        ),
        (
            "/probe?module=tcp_connect".into(),
            vec![],
            400,
            "target parameter is missing",
        ),
        (
            "/probe?module=icmp&target=127.0.0.1:1".into(),
            vec![],
            400,
            "unknown module `icmp`",
        ),
        (
            "/probe?module=tcp_connect&target=127.0.0.1".into(),
            vec![],
            400,
            "cannot be probed",
        ),
        (
            "/probe?module=tcp_connect&target=http://h/".into(),
            vec![],
            400,
            "not a URL",
        ),
        (
            "/probe?module=http_2xx&target=ftp://h/".into(),
            vec![],
            400,
            "http:// or https://",
        ),
        (
            format!("/probe?module=tcp_connect&target={long}"),
            vec![],
            400,
            "longer than",
        ),
        (
            "/probe?module=tcp_connect&target=a:1&target=b:2".into(),
            vec![],
            400,
            "more than once",
        ),
        (
            "/probe?module=tcp_connect&target=bad%1b%5b31mhost:1".into(),
            vec![],
            400,
            "cannot be probed",
        ),
        (
            "/probe?module=tcp_connect&target=127.0.0.1:1".into(),
            vec![("X-Prometheus-Scrape-Timeout-Seconds", "soon")],
            400,
            "not a positive number",
        ),
        ("/nothing-here".into(), vec![], 404, "not found"),
    ];
    for (path, headers, status, words) in cases {
        let (got, body) = get(srv.addr, &path, &headers);
        assert_eq!(got, status, "{path}: {body}");
        assert!(body.contains(words), "{path}: {body}");
        assert_eq!(body.matches('\n').count(), 1, "{path}: one line: {body:?}");
        assert!(
            !body.trim_end().chars().any(|c| c.is_control()),
            "{path}: {body:?}"
        );
    }
}

/// A redirect the http module follows: the debug report's first hop says it was followed
/// (not the CLI's "canreach does not follow redirects"); one the module does not follow
/// keeps those words.
#[test]
fn a_followed_redirect_is_said_to_be_followed() {
    let web = http_server();
    let modules = write_file(
        "follow.yml",
        b"modules:
  http_2xx:
    prober: http
  no_follow:
    prober: http
    http:
      no_follow_redirects: true
",
    );
    let srv = serve(&["--config", modules.to_str().unwrap()]);
    let ask = |module: &str| {
        let (status, dbg) = get(
            srv.addr,
            &format!("/probe?module={module}&debug=true&target=http://{web}/moved"),
            &[],
        );
        assert_eq!(status, 200, "{dbg}");
        // The report wraps its lines: the words are looked for across them.
        common::flat(&dbg)
    };
    let dbg = ask("http_2xx");
    assert!(dbg.contains("redirects to"), "{dbg}");
    assert!(!dbg.contains("does not follow redirects"), "{dbg}");
    assert!(dbg.contains("The probe follows it"), "{dbg}");
    let dbg = ask("no_follow");
    assert!(dbg.contains("does not follow redirects"), "{dbg}");
}

/// A redirect to a host outside `--allow` is not followed (no lookup, no connect).
#[test]
fn a_redirect_outside_allow_is_not_followed() {
    let web = http_server();
    let srv = serve(&["--allow", "127.0.0.0/8"]);
    let (status, dbg) = get(
        srv.addr,
        &format!("/probe?module=http_2xx&debug=true&target=http://{web}/away"),
        &[],
    );
    assert_eq!(status, 200, "{dbg}");
    assert!(
        dbg.contains("a redirect to a target outside --allow"),
        "{dbg}"
    );
    let m = &dbg[dbg.find("Metrics that would have been returned:").unwrap()..];
    assert_eq!(value(m, "probe_success"), 0.0, "{m}");
    assert_eq!(value(m, "probe_http_status_code"), 302.0, "{m}");
    assert!(m.contains("phase=\"http\""), "{m}");
}

#[test]
fn allow_refuses_what_it_does_not_list() {
    let open = holding_listener();
    let srv = serve(&["--allow", "10.0.0.0/8,*.example.test"]);
    let (status, body) = get(
        srv.addr,
        &format!("/probe?module=tcp_connect&target={open}"),
        &[],
    );
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("outside this exporter's --allow list"),
        "{body}"
    );
    let srv = serve(&["--allow", "127.0.0.0/8"]);
    let m = probe(&srv, "tcp_connect", &open.to_string());
    assert_eq!(value(&m, "probe_success"), 1.0, "{m}");
}

/// Each hostile module file: exit 2, one line naming the file and the line.
#[test]
fn hostile_module_files_exit_2_with_one_line() {
    let bomb = {
        let mut b = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
        for i in 0..9u8 {
            let (p, n) = ((b'a' + i) as char, (b'a' + i + 1) as char);
            b.push_str(&format!(
                "{n}: &{n} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
            ));
        }
        b + "modules: {}\n"
    };
    let huge = format!(
        "modules:\n  a:\n    prober: tcp\n    tcp:\n      query_response:\n        - send: \"{}\"\n",
        "x".repeat(100_000)
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("unknown_key", b"modules:\n  a:\n    prober: tcp\n    tcp:\n      bogus: 1\n".to_vec(), ":5: `bogus` is not implemented"),
        ("icmp", b"modules:\n  ping:\n    prober: icmp\n".to_vec(), ":3: prober `icmp` is not implemented"),
        ("regex_body", b"modules:\n  a:\n    prober: http\n    http:\n      fail_if_body_matches_regexp: [x]\n".to_vec(), ":5: `fail_if_body_matches_regexp`"),
        ("timeout", b"modules:\n  a:\n    prober: tcp\n    timeout: 99999h\n".to_vec(), ":4: timeout `99999h` is out of range"),
        ("huge_string", huge.into_bytes(), ":6: send is longer"),
        ("bomb", bomb.into_bytes(), ""),
        ("too_big", vec![b'#'; 2 * 1024 * 1024], "larger than"),
        ("binary", vec![0xff, 0xfe, 0x00, 0x01], "not UTF-8"),
        ("control", b"modules:\n  a\x1b[31m:\n    prober: tcp\n".to_vec(), ""),
        ("empty", b"".to_vec(), ": no module is defined"),
        ("duplicate", b"modules:\n  a:\n    prober: tcp\n  a:\n    prober: http\n".to_vec(), ":4: the key `a` appears twice"),
    ];
    for (name, text, words) in cases {
        let path = write_file(&format!("{name}.yml"), &text);
        let out = Command::new(env!("CARGO_BIN_EXE_canreach"))
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&path)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&path);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert_eq!(err.matches('\n').count(), 1, "{name}: one line: {err:?}");
        assert!(
            err.starts_with(&format!("canreach serve: {}", path.display())),
            "{name}: {err}"
        );
        assert!(err.contains(words), "{name}: {err}");
        assert!(
            !err.trim_end().chars().any(|c| c.is_control()),
            "{name}: {err:?}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_canreach"))
        .args(["serve", "--config", "/nonexistent/blackbox.yml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_canreach"))
        .args(["serve", "--max-concurrent", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).matches('\n').count(),
        1
    );
}

#[test]
fn tcp_connect_open_closed_and_reset_after_accept() {
    let srv = serve(&[]);
    let open = holding_listener();
    let m = probe(&srv, "tcp_connect", &open.to_string());
    assert_eq!(value(&m, "probe_success"), 1.0, "{m}");
    assert_eq!(value(&m, "probe_ip_protocol"), 4.0);
    // FNV-1a of 127.0.0.1, as blackbox_exporter 0.23 answered (tests/fixtures/blackbox).
    assert_eq!(value(&m, "probe_ip_addr_hash"), 3_668_918_509.0);
    assert!(
        m.contains("canreach_verdict_info{verdict=\"open\"} 1"),
        "{m}"
    );
    assert!(!m.contains("probe_failure_info"), "{m}");

    let closed = closed_port();
    let m = probe(&srv, "tcp_connect", &closed.to_string());
    assert_eq!(value(&m, "probe_success"), 0.0, "{m}");
    assert!(
        m.contains(
            "probe_failure_info{finding=\"port_closed\",phase=\"connect\",verdict=\"closed\"} 1"
        ),
        "{m}"
    );

    // Accepted, then reset at once: blackbox_exporter's tcp_connect succeeds; canreach says
    // the service fails.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let reset = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let _ = socket2::SockRef::from(&c).set_linger(Some(Duration::ZERO));
            drop(c);
        }
    });
    let m = probe(&srv, "tcp_connect", &reset.to_string());
    assert_eq!(value(&m, "probe_success"), 1.0, "{m}");
    assert!(
        m.contains("canreach_verdict_info{verdict=\"service_error\"} 1"),
        "{m}"
    );
}

/// An HTTP server for the http prober's tests: `/` 200 with 5 bytes, `/chunked` 200 chunked
/// (11 bytes), `/moved` 302 to `/`, `/loop` 302 to itself, `/missing` 404, `/echo` the
/// request's first line and headers as its body.
fn http_server() -> SocketAddr {
    common::serve_each(|mut s: tokio::net::TcpStream| async move {
        let mut buf = vec![0u8; 8192];
        let mut got = 0;
        while !buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf[got..]).await {
                Ok(n) if n > 0 => got += n,
                _ => return,
            }
        }
        let req = String::from_utf8_lossy(&buf[..got]).into_owned();
        let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
        let reply = match path.split('?').next().unwrap_or("/") {
            "/" => "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_string(),
            "/chunked" => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n".to_string(),
            "/moved" => "HTTP/1.1 302 Found\r\nLocation: /\r\nContent-Length: 0\r\n\r\n".to_string(),
            "/loop" => "HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n".to_string(),
            "/away" => "HTTP/1.1 302 Found\r\nLocation: http://elsewhere.invalid/\r\nContent-Length: 0\r\n\r\n".to_string(),
            "/creds" => "HTTP/1.1 302 Found\r\nLocation: http://admin:hunter2@127.0.0.1:1/next?token=hunter2\r\nContent-Length: 0\r\n\r\n".to_string(),
            "/echo" => {
                let head = req.split("\r\n\r\n").next().unwrap_or("");
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{head}", head.len())
            }
            _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string(),
        };
        let _ = s.write_all(reply.as_bytes()).await;
        let _ = s.shutdown().await;
    })
}

#[test]
fn the_http_prober_follows_blackbox_exporters_rules() {
    let web = http_server();
    let modules = write_file(
        "http.yml",
        b"modules:
  http_2xx:
    prober: http
  post:
    prober: http
    http:
      method: POST
      headers:
        X-Probe: canreach
  not_found_is_fine:
    prober: http
    http:
      valid_status_codes: [404]
  no_follow:
    prober: http
    http:
      no_follow_redirects: true
  only_https:
    prober: http
    http:
      fail_if_not_ssl: true
  only_http10:
    prober: http
    http:
      valid_http_versions: [\"HTTP/1.0\"]
",
    );
    let srv = serve(&["--config", modules.to_str().unwrap()]);
    let url = |p: &str| format!("http://{web}{p}");

    let m = probe(&srv, "http_2xx", &url("/"));
    assert_eq!(value(&m, "probe_success"), 1.0, "{m}");
    assert_eq!(value(&m, "probe_http_status_code"), 200.0);
    assert_eq!(value(&m, "probe_http_content_length"), 5.0);
    assert_eq!(value(&m, "probe_http_uncompressed_body_length"), 5.0);
    assert_eq!(value(&m, "probe_http_version"), 1.1);
    assert_eq!(value(&m, "probe_http_ssl"), 0.0);
    assert_eq!(value(&m, "probe_http_redirects"), 0.0);
    for phase in ["connect", "processing", "resolve", "tls", "transfer"] {
        assert!(
            m.contains(&format!("probe_http_duration_seconds{{phase=\"{phase}\"}}")),
            "{phase}: {m}"
        );
    }
    // Without a scheme, http:// as blackbox_exporter does.
    let m = probe(&srv, "http_2xx", &format!("{web}/chunked"));
    assert_eq!(value(&m, "probe_success"), 1.0, "{m}");
    assert_eq!(value(&m, "probe_http_content_length"), -1.0);
    assert_eq!(value(&m, "probe_http_uncompressed_body_length"), 11.0);

    let m = probe(&srv, "http_2xx", &url("/moved"));
    assert_eq!(value(&m, "probe_success"), 1.0, "{m}");
    assert_eq!(value(&m, "probe_http_redirects"), 1.0);
    assert_eq!(value(&m, "probe_http_status_code"), 200.0);
    let m = probe(&srv, "no_follow", &url("/moved"));
    assert_eq!(value(&m, "probe_success"), 0.0, "{m}");
    assert_eq!(value(&m, "probe_http_status_code"), 302.0);
    assert!(m.contains("phase=\"http\""), "{m}");
    let m = probe(&srv, "http_2xx", &url("/loop"));
    assert_eq!(value(&m, "probe_success"), 0.0, "{m}");
    assert_eq!(value(&m, "probe_http_redirects"), 10.0);

    let m = probe(&srv, "http_2xx", &url("/missing"));
    assert_eq!(value(&m, "probe_success"), 0.0, "{m}");
    assert_eq!(value(&m, "probe_http_status_code"), 404.0);
    assert!(m.contains("probe_failure_info{"), "{m}");
    assert!(m.contains("phase=\"http\""), "{m}");
    let m = probe(&srv, "not_found_is_fine", &url("/missing"));
    assert_eq!(value(&m, "probe_success"), 1.0, "{m}");
    let m = probe(&srv, "only_https", &url("/"));
    assert_eq!(value(&m, "probe_success"), 0.0, "{m}");
    let m = probe(&srv, "only_http10", &url("/"));
    assert_eq!(value(&m, "probe_success"), 0.0, "{m}");

    // The module's method and headers, and the URL's query, are what the server got.
    let (status, dbg) = get(
        srv.addr,
        &format!(
            "/probe?module=post&debug=true&target={}",
            enc(&url("/echo?a=1"))
        ),
        &[],
    );
    assert_eq!(status, 200);
    let report_end = dbg.find("Metrics that would have been returned:").unwrap();
    assert!(dbg[..report_end].contains("OPEN"), "{dbg}");
    let m = &dbg[report_end..];
    assert_eq!(value(m, "probe_success"), 1.0, "{m}");
    // 22 = "POST /echo?a=1 HTTP/1.1": the body is the request's head.
    assert!(
        value(m, "probe_http_uncompressed_body_length") > 22.0,
        "{m}"
    );
    let _ = std::fs::remove_file(&modules);
}

/// A self-signed certificate for `localhost`, valid over the given years; its PEM and a TLS
/// server answering HTTP 200 with it.
fn tls_server(from: i32, to: i32) -> (SocketAddr, String) {
    tls_server_on(from, to, true)
}

/// [`tls_server`] on 127.0.0.1 alone when `both` is false (`localhost`'s ::1 then refuses).
fn tls_server_on(from: i32, to: i32, both: bool) -> (SocketAddr, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.not_before = date_time_ymd(from, 1, 1);
    params.not_after = date_time_ymd(to, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    let pem = cert.pem();
    let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
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
    let serve = move |s: tokio::net::TcpStream| {
        let acceptor = acceptor.clone();
        async move {
            if let Ok(mut tls) = acceptor.accept(s).await {
                let mut buf = vec![0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await;
                let _ = tls.shutdown().await;
            }
        }
    };
    // Its probes name `localhost`: it listens on both of its addresses.
    let addr = if both {
        common::serve_each_localhost(serve)
    } else {
        common::serve_each(serve)
    };
    (addr, pem)
}

/// `localhost` whose ::1 refuses while 127.0.0.1 answers TLS (an expired certificate): the
/// address blackbox_exporter would probe is ::1 (IPv6 preferred), which refused; no TLS
/// series is given for it — never the other address's chain, never a made-up expiry (issue
/// 21's report of `probe_ssl_last_chain_expiry_timestamp_seconds 978307200`, the expired
/// certificate's own date, could not be reproduced this way).
#[test]
fn a_refused_preferred_address_gives_no_tls_series() {
    let (expired, _) = tls_server_on(2000, 2001, false);
    let modules = write_file(
        "v6_refused.yml",
        b"modules:\n  https_insecure:\n    prober: http\n    http:\n      tls_config:\n        insecure_skip_verify: true\n",
    );
    let srv = serve(&["--config", modules.to_str().unwrap()]);
    let m = probe(
        &srv,
        "https_insecure",
        &format!("https://localhost:{}/", expired.port()),
    );
    let _ = std::fs::remove_file(&modules);
    assert_eq!(value(&m, "probe_success"), 0.0, "{m}");
    assert_eq!(value(&m, "probe_ip_protocol"), 6.0, "{m}");
    assert!(!m.contains("\nprobe_ssl_"), "{m}");
}

#[test]
fn tls_with_a_ca_file_and_with_verification_off() {
    let (good, good_pem) = tls_server(2020, 2090);
    let (expired, _) = tls_server(2000, 2001);
    let ca = write_file("ca.pem", good_pem.as_bytes());
    let modules = write_file(
        "tls.yml",
        format!(
            "modules:
  https_ca:
    prober: http
    http:
      tls_config:
        ca_file: {ca}
  https_insecure:
    prober: http
    http:
      tls_config:
        insecure_skip_verify: true
  tls_ca:
    prober: tcp
    tcp:
      tls: true
      tls_config:
        ca_file: {ca}
",
            ca = ca.display()
        )
        .as_bytes(),
    );
    let srv = serve(&["--config", modules.to_str().unwrap()]);
    let m = probe(
        &srv,
        "https_ca",
        &format!("https://localhost:{}/", good.port()),
    );
    assert_eq!(value(&m, "probe_success"), 1.0, "{m}");
    assert_eq!(value(&m, "probe_http_ssl"), 1.0);
    assert!(value(&m, "probe_ssl_earliest_cert_expiry") > 3.0e9, "{m}");
    assert!(
        m.contains("probe_ssl_last_chain_info{fingerprint_sha256=\""),
        "{m}"
    );
    assert!(
        m.contains("probe_tls_version_info{version=\"TLS 1.3\"} 1"),
        "{m}"
    );
    assert!(m.contains("probe_tls_cipher_info{cipher=\"TLS_"), "{m}");

    let m = probe(&srv, "tls_ca", &format!("localhost:{}", good.port()));
    assert_eq!(value(&m, "probe_success"), 1.0, "{m}");
    assert!(
        m.contains("probe_tls_version_info{version=\"TLS 1.3\"} 1"),
        "{m}"
    );

    // Expired: refused with the CA file (the chain does not verify) …
    let m = probe(
        &srv,
        "https_ca",
        &format!("https://localhost:{}/", expired.port()),
    );
    assert_eq!(value(&m, "probe_success"), 0.0, "{m}");
    assert!(m.contains("phase=\"tls\""), "{m}");
    // … a success with verification off, as blackbox_exporter's; canreach's verdict is the
    // CLI's with --insecure (open), and its report says what verification would have found.
    let m = probe(
        &srv,
        "https_insecure",
        &format!("https://localhost:{}/", expired.port()),
    );
    assert_eq!(value(&m, "probe_success"), 1.0, "{m}");
    assert!(
        m.contains("canreach_verdict_info{verdict=\"open\"} 1"),
        "{m}"
    );
    let debug = probe(
        &srv,
        "https_insecure&debug=true",
        &format!("https://localhost:{}/", expired.port()),
    );
    assert!(
        debug.contains("tls_not_verified") || debug.contains("NOT VERIFIED"),
        "{debug}"
    );
    assert_eq!(
        value(&m, "probe_ssl_last_chain_expiry_timestamp_seconds"),
        -62_135_596_800.0
    );
    let _ = std::fs::remove_file(&modules);
    let _ = std::fs::remove_file(&ca);
}

#[test]
fn query_response_expects_sends_and_says_when_the_pattern_failed() {
    // A banner, then an echo of one line.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = c.write_all(b"SSH-2.0-test_server\r\n");
                let mut line = Vec::new();
                let mut byte = [0u8; 1];
                while c.read(&mut byte).is_ok_and(|n| n == 1) && byte[0] != b'\n' {
                    line.push(byte[0]);
                }
                let _ = c.write_all(b"got ");
                let _ = c.write_all(&line);
                let _ = c.write_all(b"\n");
            });
        }
    });
    // A banner, then the end of the connection.
    let l2 = TcpListener::bind("127.0.0.1:0").unwrap();
    let banner_only = l2.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut c in l2.incoming().flatten() {
            let _ = c.write_all(b"SSH-2.0-test_server\r\n");
        }
    });
    let modules = write_file(
        "qr.yml",
        b"modules:
  ssh_banner:
    prober: tcp
    tcp:
      query_response:
        - expect: \"^SSH-2.0-([a-z_]+)\"
          send: \"hello ${1}\"
          labels:
            - name: ssh_version
              value: \"${1}\"
        - expect: \"^got hello test_server$\"
  ssh1:
    prober: tcp
    tcp:
      query_response:
        - expect: \"^SSH-1\"
",
    );
    let srv = serve(&["--config", modules.to_str().unwrap()]);
    let m = probe(&srv, "ssh_banner", &addr.to_string());
    assert_eq!(value(&m, "probe_success"), 1.0, "{m}");
    assert_eq!(value(&m, "probe_failed_due_to_regex"), 0.0);
    assert!(
        m.contains("# HELP probe_expect_info Explicit content matched\n"),
        "{m}"
    );
    assert!(
        m.contains("probe_expect_info{ssh_version=\"test_server\"} 1\n"),
        "{m}"
    );
    let m = probe(&srv, "ssh1", &banner_only.to_string());
    assert_eq!(value(&m, "probe_success"), 0.0, "{m}");
    assert_eq!(value(&m, "probe_failed_due_to_regex"), 1.0, "{m}");
    assert!(m.contains("phase=\"query_response\""), "{m}");
    let _ = std::fs::remove_file(&modules);
}

#[test]
fn the_page_own_metrics_and_reports() {
    let srv = serve(&[]);
    let open = holding_listener();
    let closed = closed_port();
    probe(&srv, "tcp_connect", &open.to_string());
    probe(&srv, "canreach", &closed.to_string());
    let (status, page) = get(srv.addr, "/", &[]);
    assert_eq!(status, 200);
    assert!(page.contains(&open.to_string()), "{page}");
    assert!(page.contains(">closed<"), "{page}");
    let id: u64 = page
        .split("report?id=")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .parse()
        .unwrap();
    let (status, report) = get(srv.addr, &format!("/report?id={id}"), &[]);
    assert_eq!(status, 200);
    assert!(report.contains("CLOSED"), "{report}");
    assert!(report.contains("probe_success 0"), "{report}");
    let (status, own) = get(srv.addr, "/metrics", &[]);
    assert_eq!(status, 200);
    assert!(
        own.contains(
            "canreach_probes_total{module=\"tcp_connect\",success=\"true\",verdict=\"open\"} 1"
        ),
        "{own}"
    );
    assert!(own.contains("canreach_probes_in_flight 0"), "{own}");
    assert!(own.contains("process_open_fds "), "{own}");
}

/// A target typed with credentials, and a redirect that carries them, never come back
/// unmasked: not in the debug report, the page, a kept report, nor a refusal.
#[test]
fn secrets_never_come_back() {
    let web = http_server();
    let srv = serve(&[]);
    let target = format!("http://u:hunter2@{web}/creds?token=hunter2");
    let (status, debug) = get(
        srv.addr,
        &format!("/probe?module=http_2xx&debug=true&target={}", enc(&target)),
        &[],
    );
    assert_eq!(status, 200, "{debug}");
    assert!(
        debug.contains("── 2 of 2"),
        "the redirect was followed: {debug}"
    );
    let (_, page) = get(srv.addr, "/", &[]);
    assert!(page.contains("/creds"), "{page}");
    let id = page
        .split("report?id=")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let (_, report) = get(srv.addr, &format!("/report?id={id}"), &[]);
    let (status, refused) = get(
        srv.addr,
        &format!(
            "/probe?module=http_2xx&target={}",
            enc("http://u:hunter2@h:99999/")
        ),
        &[],
    );
    assert_eq!(status, 400, "{refused}");
    for (what, text) in [
        ("debug", &debug),
        ("page", &page),
        ("report", &report),
        ("400", &refused),
    ] {
        assert!(!text.contains("hunter2"), "{what}: {text}");
    }
}

/// The deadline comes from Prometheus's header: a server that never answers HTTP holds the
/// probe until the header less the offset, not longer.
#[test]
fn a_probe_ends_at_the_scrape_deadline_and_sigterm_waits_for_it() {
    let silent = holding_listener();
    let srv = serve(&[]);
    let start = Instant::now();
    let addr = srv.addr;
    let pending = std::thread::spawn(move || {
        get(
            addr,
            &format!("/probe?module=http_2xx&target=http://{silent}/"),
            &[("X-Prometheus-Scrape-Timeout-Seconds", "1.5")],
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    sigterm(srv.pid);
    let (status, m) = pending.join().unwrap();
    let took = start.elapsed();
    assert_eq!(status, 200, "{m}");
    assert_eq!(value(&m, "probe_success"), 0.0, "{m}");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    // The exporter exits by itself once the probe answered.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until
        && std::path::Path::new(&format!("/proc/{}/stat", srv.pid)).exists()
        && !std::fs::read_to_string(format!("/proc/{}/stat", srv.pid))
            .unwrap_or_default()
            .contains(") Z")
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", srv.pid)).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z"),
        "still running: {stat}"
    );
}

#[allow(unsafe_code)]
fn sigterm(pid: u32) {
    // SAFETY: kill has no memory preconditions; the pid is the exporter this test started.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
}

/// Past `--max-concurrent`, requests wait (at most 4 per slot); past that, 503 at once.
#[test]
fn past_the_slots_and_the_queue_a_probe_gets_503() {
    let silent = holding_listener();
    let srv = serve(&["--max-concurrent", "1"]);
    let addr = srv.addr;
    let slow: Vec<_> = (0..5)
        .map(|_| {
            std::thread::spawn(move || {
                get(
                    addr,
                    &format!("/probe?module=http_2xx&target=http://{silent}/"),
                    &[("X-Prometheus-Scrape-Timeout-Seconds", "2.5")],
                )
            })
        })
        .collect();
    // One runs, four wait: the sixth finds the queue full.
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    let (status, body) = get(
        addr,
        &format!("/probe?module=tcp_connect&target={silent}"),
        &[],
    );
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("busy"), "{body}");
    assert!(start.elapsed() < Duration::from_millis(300));
    let answers: Vec<(u16, String)> = slow.into_iter().map(|t| t.join().unwrap()).collect();
    // The first ran to its deadline (2 s); the others, queued behind it, got 503 when no
    // slot came free before their own deadline.
    assert_eq!(
        answers.iter().filter(|(s, _)| *s == 200).count(),
        1,
        "{answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|(s, _)| *s == 503).count(),
        4,
        "{answers:?}"
    );
    let (_, own) = get(addr, "/metrics", &[]);
    assert!(
        own.contains("canreach_probes_refused_total{reason=\"busy\"} 5"),
        "{own}"
    );
}

pub(crate) fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// 10,000 probes, 16 at a time: the exporter's descriptors are as many after as before.
#[test]
fn no_descriptor_leak_over_10000_probes() {
    let open = holding_listener();
    let srv = serve(&[]);
    let target = open.to_string();
    // Warm: the runtime's and the trust store's descriptors are opened by the first probes.
    for _ in 0..20 {
        probe(&srv, "tcp_connect", &target);
    }
    std::thread::sleep(Duration::from_millis(300));
    let before = open_fds(srv.pid);
    let left = Arc::new(std::sync::atomic::AtomicUsize::new(10_000));
    let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (left, failed, target) = (left.clone(), failed.clone(), target.clone());
            let addr = srv.addr;
            std::thread::spawn(move || {
                while left
                    .fetch_update(
                        std::sync::atomic::Ordering::SeqCst,
                        std::sync::atomic::Ordering::SeqCst,
                        |n| n.checked_sub(1),
                    )
                    .is_ok()
                {
                    let (status, body) = get(
                        addr,
                        &format!("/probe?module=tcp_connect&target={target}"),
                        &[],
                    );
                    if status != 200 || !body.contains("probe_success 1") {
                        failed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(failed.load(std::sync::atomic::Ordering::SeqCst), 0);
    // Connections the client closed last are being torn down; inspections end.
    std::thread::sleep(Duration::from_millis(500));
    let after = open_fds(srv.pid);
    assert!(
        after <= before + 2,
        "descriptors: {before} before, {after} after"
    );
}
