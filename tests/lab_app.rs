//! After the connect, through the binary, against a real kernel: a path-MTU black hole in the
//! namespace lab. The router's link towards the client carries 1300-byte packets and its
//! "fragmentation needed" / "packet too big" is dropped; the server's large certificate flight
//! never arrives. canreach must say `mtu_blackhole` (exit 12), with both attempts as evidence.

mod common;

use std::io::Write as _;
use std::time::Duration;

use common::*;
use tokio::io::AsyncReadExt;

#[test]
fn a_path_mtu_black_hole_is_named_v4_and_v6() {
    require_lab!();
    let lab = Lab::new();
    sh(&[
        "ip",
        "-n",
        &lab.router,
        "link",
        "set",
        "eth0",
        "mtu",
        "1300",
    ]);
    lab.rule(
        &lab.router,
        "output",
        "icmp type destination-unreachable drop\n    icmpv6 type packet-too-big drop",
    );
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
        // Within the deadline, at most one extra round of the handshake's wait.
        assert!(r.took < Duration::from_millis(3500), "{:?}", r.took);
    }
    let _ = std::fs::remove_file(&ca);
}
