//! After the connect, through the binary, against a real kernel: a path-MTU black hole in the
//! namespace lab. The router's link towards the client carries 1300-byte packets and its
//! "fragmentation needed" / "packet too big" is dropped; the server's large certificate flight
//! never arrives. canreach must say `mtu_blackhole` (exit 12), with both attempts as evidence.
//! And a server that is merely slow to answer its ClientHello, across the same lab without
//! the narrow link, must not be called one: it is `open`, named slow.

use crate::common;

use std::io::Write as _;
use std::time::Duration;

use common::*;
use tokio::io::AsyncReadExt;

#[test]
fn a_path_mtu_black_hole_is_named_v4_and_v6() {
    require_lab!();
    let lab = Lab::new();
    lab.black_hole_mtu();
    let tls = common::tls::ca_signed("Lab MTU CA", common::tls::many_names());
    let (acceptor, ca_pem) = (tls.acceptor, tls.ca_pem);
    let ca = std::env::temp_dir().join(format!("canreach-lab-app-{}.pem", std::process::id()));
    std::fs::File::create(&ca)
        .unwrap()
        .write_all(ca_pem.as_bytes())
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    for (bind, target) in [
        (format!("{SERVER_V4}:8443"), format!("{SERVER_V4}:8443")),
        (format!("[{SERVER_V6}]:8444"), format!("[{SERVER_V6}]:8444")),
    ] {
        // Opened inside the server's namespace; served from here.
        let listener = lab.listen(&lab.server, &bind);
        listener.set_nonblocking(true).unwrap();
        let acceptor = acceptor.clone();
        rt.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((s, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(s).await {
                        let mut b = [0u8; 16];
                        let _ =
                            tokio::time::timeout(Duration::from_secs(3), tls.read(&mut b)).await;
                    }
                });
            }
        });
        let r = run_in_env(
            Some(&lab.client),
            &["--json", "--protocol", "tls", &target],
            &[("SSL_CERT_FILE", ca.to_str().unwrap())],
        );
        let v = r.json();
        assert_eq!(r.code, 12, "{target}: {}", r.stdout);
        assert_eq!(v["verdict"], "mtu_blackhole");
        let s = &v["probes"][0]["session"];
        assert!(s["mss_retry"]["completed"].as_bool().unwrap(), "{s}");
        let m = finding(&v, "mtu_blackhole")["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(m.contains("segments of at most"), "{m}");
        assert!(m.contains("while the first still had nothing"), "{m}");
        // Within the deadline, at most one extra round of the handshake's wait.
        assert!(r.took < Duration::from_millis(3500), "{:?}", r.took);
    }
    let _ = std::fs::remove_file(&ca);
}

/// Serve TLS (the lab's many-names certificate) on `bind` inside the server's namespace, each
/// connection after `delay` (a busy server), from `rt`. The CA, as a PEM file.
fn lab_tls_server(
    lab: &Lab,
    rt: &tokio::runtime::Runtime,
    bind: &str,
    delay: Duration,
) -> std::path::PathBuf {
    let tls = common::tls::ca_signed("Lab MTU CA", common::tls::many_names());
    // One file per server: the tests of this binary run at once.
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let ca = std::env::temp_dir().join(format!(
        "canreach-lab-app-{}-{}.pem",
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    std::fs::File::create(&ca)
        .unwrap()
        .write_all(tls.ca_pem.as_bytes())
        .unwrap();
    let listener = lab.listen(&lab.server, bind);
    listener.set_nonblocking(true).unwrap();
    let acceptor = tls.acceptor;
    rt.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        while let Ok((s, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Ok(mut tls) = acceptor.accept(s).await {
                    let mut b = [0u8; 16];
                    let _ = tokio::time::timeout(Duration::from_secs(3), tls.read(&mut b)).await;
                }
            });
        }
    });
    ca
}

/// The case: a server that answers a ClientHello after 1.3 s, on a path with no
/// narrower link. The reduced-MSS connection is opened beside the first at 1 s, but the first
/// is answered first: slow, not a black hole.
#[test]
fn a_slow_tls_server_across_the_lab_is_slow_not_a_black_hole() {
    require_lab!();
    let lab = Lab::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    for (bind, target) in [
        (format!("{SERVER_V4}:8443"), format!("{SERVER_V4}:8443")),
        (format!("[{SERVER_V6}]:8444"), format!("[{SERVER_V6}]:8444")),
    ] {
        let ca = lab_tls_server(&lab, &rt, &bind, Duration::from_millis(1300));
        let r = run_in_env(
            Some(&lab.client),
            &["--json", "--protocol", "tls", &target],
            &[("SSL_CERT_FILE", ca.to_str().unwrap())],
        );
        let _ = std::fs::remove_file(&ca);
        let v = r.json();
        assert_eq!(
            (r.code, v["verdict"].as_str()),
            (0, Some("open")),
            "{target}: {}",
            r.stdout
        );
        let s = &v["probes"][0]["session"];
        assert!(s["mss_retry"].is_null(), "{target}: {s}");
        assert!(s["tls"]["failure"].is_null(), "{target}: {s}");
        let m = finding(&v, "slow_handshake")["message"].as_str().unwrap();
        assert!(
            m.contains("answered the TLS ClientHello only after"),
            "{target}: {m}"
        );
        assert!(
            // Past the 1 s after which the reduced-MSS connection is opened beside the first
            // (the server's 1.3 s count from its accept, a little before the ClientHello left).
            s["tls"]["first_answer_ms"].as_f64().unwrap() > 1000.0,
            "{s}"
        );
        assert!(!ids(&v).contains(&"mtu_blackhole".to_string()), "{target}");
    }
}

/// A slow server behind a real black hole is still a black hole: the reduced-MSS connection,
/// opened at 1 s, is answered 1.3 s later, while the first, answered as long ago, never gets
/// its full-sized segments.
#[test]
fn a_slow_tls_server_behind_a_black_hole_is_still_a_black_hole() {
    require_lab!();
    let lab = Lab::new();
    lab.black_hole_mtu();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let bind = format!("{SERVER_V4}:8443");
    let ca = lab_tls_server(&lab, &rt, &bind, Duration::from_millis(1300));
    let r = run_in_env(
        Some(&lab.client),
        &["--json", "--protocol", "tls", &bind],
        &[("SSL_CERT_FILE", ca.to_str().unwrap())],
    );
    let _ = std::fs::remove_file(&ca);
    let v = r.json();
    assert_eq!(r.code, 12, "{}", r.stdout);
    let s = &v["probes"][0]["session"];
    assert!(
        s["mss_retry"]["opened_ms"].as_f64().unwrap() >= 1000.0,
        "{s}"
    );
    let m = finding(&v, "mtu_blackhole")["message"].as_str().unwrap();
    assert!(m.contains("while the first still had nothing"), "{m}");
    // The kernel saw the end of the server's flight arrive past the gap the dropped
    // full-sized segments left.
    assert!(
        s["tls"]["given_up"]["out_of_order"].as_u64().unwrap() >= 1,
        "{s}"
    );
    assert!(
        !ids(&v).contains(&"slow_handshake".to_string()),
        "{:?}",
        ids(&v)
    );
}
