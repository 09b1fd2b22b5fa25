//! `--protocol NAME` for a UDP target: the named service's request on any port. dnsmasq on a
//! port with no usual service (5300) in the lab's server namespace answers a DNS query, and
//! ignores the empty datagram a port with no known service gets.

use crate::common;

use std::process::{Command, Stdio};

use common::*;

/// dnsmasq on 198.18.2.2:5300 in the server namespace, authoritative for `lab`.
fn dnsmasq_on_5300(lab: &Lab) -> Started {
    if Command::new("dnsmasq").arg("--version").output().is_err() {
        panic!("needs dnsmasq (apt-get install dnsmasq-base)");
    }
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.server,
            "dnsmasq",
            "--keep-in-foreground",
        ])
        .args([
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--port=5300",
        ])
        .args(["--user=root", "--pid-file=", "--bind-interfaces"])
        .args(["--listen-address=198.18.2.2", "--local=/lab/"])
        .arg("--host-record=app.lab,198.18.2.2")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Started(child)
}

#[test]
fn protocol_dns_sends_a_dns_query_to_a_udp_port_of_no_usual_service() {
    require_lab!();
    let lab = Lab::new();
    let _dns = dnsmasq_on_5300(&lab);
    let args = [
        "--json",
        "--no-trace",
        "--timeout",
        "3s",
        "-u",
        "--protocol",
        "dns",
        "198.18.2.2",
        "5300",
    ];
    // dnsmasq may take a moment to bind: the first answer counts.
    let mut v = serde_json::Value::Null;
    for _ in 0..40 {
        v = lab.canreach(&args).json();
        if v["verdict"] == "open" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(v["verdict"], "open", "{v}");
    assert_eq!(v["target"]["service"], "dns", "{v}");
    let u = &v["probes"][0]["udp"];
    assert_eq!(u["service"], "dns", "{u}");
    assert_eq!(u["reply"], "answer", "{u}");
    // Without the flag, port 5300 has no usual service: an empty datagram, which dnsmasq
    // ignores — never `open`.
    let v = lab
        .canreach(&[
            "--json",
            "--no-trace",
            "--timeout",
            "2s",
            "-u",
            "198.18.2.2",
            "5300",
        ])
        .json();
    assert_ne!(v["verdict"], "open", "{v}");
    assert_eq!(
        v["probes"][0]["udp"]["service"],
        serde_json::Value::Null,
        "{v}"
    );
}

#[test]
fn a_udp_protocol_for_a_tcp_target_is_one_line_and_exit_2() {
    let r = run_in(None, &["--protocol", "ntp", "127.0.0.1", "123"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stdout, "");
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("--protocol ntp is a UDP service: add -u"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_tcp_protocol_for_udp_targets_is_one_line_and_exit_2() {
    for args in [
        &["-u", "--protocol", "postgres", "127.0.0.1", "5432"][..],
        &["-u", "--protocol", "tls", "127.0.0.1", "853"][..],
        &["--protocol", "https", "udp://127.0.0.1:443"][..],
    ] {
        let r = run_in(None, args);
        assert_eq!(r.code, 2, "{args:?}: {}{}", r.stdout, r.stderr);
        assert_eq!(r.stdout, "", "{args:?}");
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr
                .contains("speaks over TCP, and every target is UDP"),
            "{args:?}: {}",
            r.stderr
        );
    }
}
