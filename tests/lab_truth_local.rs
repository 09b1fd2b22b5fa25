//! Verdicts about this machine and its neighbours that used to be false (issue 21): a socket
//! the kernel connected to itself, a busy listener, a listener that never accepts, PostgreSQL's
//! worker processes, /etc files that are FIFOs, and a v4-mapped target rejected by its host.
//! Each test makes its own namespaces (network; PID and mount where it reads processes).

mod common;

use canreach::probe::Connector;
use common::*;

/// Give namespace `ns` a single ephemeral port: every connect gets it as its source.
fn one_source_port(ns: &str, port: u16) {
    sh(&[
        "ip",
        "netns",
        "exec",
        ns,
        "sysctl",
        "-qw",
        &format!("net.ipv4.ip_local_port_range={port} {port}"),
    ]);
}

/// With one ephemeral port, 40000, a connect to 127.0.0.1:40000 with nothing listening gets
/// source port 40000 and the kernel connects the socket to itself (simultaneous open). That is
/// no server: closed, and why.
#[test]
fn a_socket_connected_to_itself_is_closed_not_open() {
    require_lab!();
    let lab = Lab::new();
    one_source_port(&lab.client, 40000);
    let r = lab.canreach(&["--json", "127.0.0.1", "40000"]);
    let v = r.json();
    assert_eq!(v["verdict"], "closed", "{}", r.stdout);
    assert_eq!(r.code, 4);
    assert_eq!(v["probes"][0]["outcome"], "closed");
    assert!(
        v["probes"][0]["evidence"]
            .as_str()
            .unwrap()
            .starts_with("connected to itself"),
        "{}",
        v["probes"][0]
    );
    assert_eq!(ids(&v), ["connected_to_itself", "nothing_listens_here"]);
    assert!(
        v["probes"][0]["session"].is_null(),
        "no session with itself"
    );
    // The text report says it in words too.
    one_source_port(&lab.client, 40002);
    let r = lab.canreach(&["127.0.0.1", "40002"]);
    assert_eq!(r.code, 4, "{}", r.stdout);
    assert!(r.stdout.contains("CLOSED"), "{}", r.stdout);
    assert!(r.stdout.contains("to itself"), "{}", r.stdout);
}

/// The session stage connects again: a stream the kernel connected to itself would read back
/// its own ClientHello or request as the server's answer. It is refused like a reset.
#[test]
fn the_session_stages_stream_is_not_a_connection_to_itself() {
    require_lab!();
    let lab = Lab::new();
    one_source_port(&lab.client, 40000);
    let got = in_namespace(&lab.client, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let until = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
            canreach::probe::KernelConnector
                .stream("127.0.0.1:40000".parse().unwrap(), until)
                .await
                .map(|s| (s.local_addr().ok(), s.peer_addr().ok()))
                .map_err(|e| e.raw_os_error())
        })
    });
    assert_eq!(got, Err(Some(libc::ECONNREFUSED)));
}

/// `::ffff:198.18.2.2` is 198.18.2.2: its own ICMP port-unreachable comes from the target.
#[test]
fn a_v4_mapped_target_rejected_by_the_host_itself_names_the_host() {
    require_lab!();
    let lab = Lab::new();
    lab.rule(
        &lab.server,
        "input",
        "tcp dport 5432 reject with icmpx port-unreachable",
    );
    let r = lab.canreach(&["--json", "::ffff:198.18.2.2", "5432"]);
    let v = r.json();
    println!("{}", r.stdout);
    assert_eq!(v["verdict"], "rejected", "{}", r.stdout);
    assert_eq!(v["probes"][0]["icmp"]["sender"], "target", "{}", r.stdout);
    assert_eq!(ids(&v), ["firewall_reject_on_host"]);
}
