//! UDP targets against real servers and real failures in the namespace lab: dnsmasq answering
//! DNS and chrony answering NTP (open), a port dropped by nftables on the server (silence:
//! never open, never closed, with the control datagram saying the host does answer closed
//! ports), a port rejected by the router (rejected, naming it), a closed port, and a UDP
//! socket of this machine whose program never answers (named, with its pid).

use crate::common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// dnsmasq on 198.18.2.2:53 in the server namespace, authoritative for `lab`.
fn dnsmasq(lab: &Lab) -> Started {
    let started = common::dnsmasq(lab, &[]);
    wait_open(lab, &["-u", "198.18.2.2", "53"], "dnsmasq");
    started
}

/// chronyd serving NTP on the server namespace's addresses: its own configuration, pid and
/// drift files in a temporary directory, no command socket, and `-x`: it never touches the
/// clock.
fn chrony(lab: &Lab, dir: &std::path::Path) -> Started {
    let chronyd = "/usr/sbin/chronyd";
    if !std::path::Path::new(chronyd).exists() {
        panic!("needs chrony (apt-get install chrony)");
    }
    let conf = dir.join("chrony.conf");
    std::fs::write(
        &conf,
        format!(
            "allow 198.18.0.0/15\nlocal stratum 10\ncmdport 0\nbindcmdaddress /\n\
             pidfile {d}/chronyd.pid\ndriftfile {d}/drift\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.server,
            chronyd,
            "-x",
            "-d",
            "-u",
            "root",
        ])
        .arg("-f")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Started(child);
    wait_open(lab, &["udp://198.18.2.2:123"], "chronyd");
    started
}

/// Wait (up to 4 s) until canreach finds the UDP target open.
fn wait_open(lab: &Lab, target: &[&str], what: &str) {
    for _ in 0..40 {
        let mut args = vec!["--json", "--timeout", "1s"];
        args.extend_from_slice(target);
        if lab.canreach(&args).json()["verdict"] == "open" {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not start");
}

fn message<'a>(v: &'a serde_json::Value, id: &str) -> &'a str {
    finding(v, id)["message"].as_str().unwrap()
}

#[test]
fn dnsmasq_answering_a_dns_query_is_open() {
    require_lab!();
    let lab = Lab::new();
    let _dns = dnsmasq(&lab);
    let r = lab.canreach(&["--json", "-u", "198.18.2.2", "53"]);
    let v = r.json();
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(v["verdict"], "open");
    assert_eq!(v["target"]["transport"], "udp");
    let m = message(&v, "udp_answered");
    assert!(
        m.contains("The DNS service on 198.18.2.2 UDP port 53 answered a DNS query"),
        "{m}"
    );
    assert!(m.contains("NOERROR") || m.contains("REFUSED"), "{m}");
    let u = &v["probes"][0]["udp"];
    assert_eq!(u["service"], "dns");
    assert_eq!(u["reply"], "answer");
    assert_eq!(u["control"], serde_json::Value::Null);
    // The same target over TCP is a TCP target, and says so.
    let tcp = lab.canreach(&["--json", "198.18.2.2", "53"]).json();
    assert_eq!(tcp["target"]["transport"], "tcp");
}

#[test]
fn chrony_answering_an_ntp_client_packet_is_open() {
    require_lab!();
    let lab = Lab::new();
    let dir = tempdir();
    let _ntp = chrony(&lab, &dir.0);
    let r = lab.canreach(&["udp://198.18.2.2:123"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let text = flat(&r.stdout);
    assert!(
        text.contains("UDP 198.18.2.2:123 is open: the NTP service answered."),
        "{text}"
    );
    let v = lab.canreach(&["--json", "udp://198.18.2.2:123"]).json();
    let m = message(&v, "udp_answered");
    assert!(
        m.contains("an NTP client packet") && m.contains("stratum 10"),
        "{m}"
    );
}

#[test]
fn a_port_dropped_by_the_servers_firewall_is_silence_never_open_or_closed() {
    require_lab!();
    let lab = Lab::new();
    lab.rule(&lab.server, "input", "udp dport 5000 drop");
    let r = lab.canreach(&["--json", "--timeout", "2s", "-u", "198.18.2.2", "5000"]);
    let v = r.json();
    assert_eq!(v["verdict"], "inconclusive", "{}", r.stdout);
    assert_eq!(r.code, 9);
    // Within the deadline.
    assert!(r.took < Duration::from_millis(2_500), "{:?}", r.took);
    let m = message(&v, "udp_no_answer");
    assert!(m.contains("does not tell open from filtered"), "{m}");
    // The control: the host answers a closed port, so this one is dropped or ignored.
    assert!(
        m.contains("The host does answer closed ports: a datagram to its UDP port 65533"),
        "{m}"
    );
    assert!(m.contains("sent 2 time(s)"), "{m}");
    // The same facts, raw, in the probe's `udp` object.
    let u = &v["probes"][0]["udp"];
    assert_eq!(u["sent"], 2, "{u}");
    assert_eq!(u["service"], serde_json::Value::Null);
    assert_eq!(u["reply"], serde_json::Value::Null);
    assert_eq!(u["control"]["port"], 65533);
    assert_eq!(u["control"]["result"], "error");
    assert_eq!(u["control"]["icmp"]["type"], 3);
    assert_eq!(u["control"]["icmp"]["code"], 3);
    assert_eq!(u["control"]["icmp"]["from"], "198.18.2.2");
    // The walk, with the check's own datagrams: the router answers hop 1, nothing hop 2
    // (the server's firewall drops them as it drops the check's).
    let hops = v["trace"]["hops"].as_array().expect("a walk");
    assert_eq!(hops[0]["address"], "198.18.1.1", "{}", v["trace"]);
    assert_eq!(hops[0]["kind"], "time_exceeded");
    assert_eq!(v["trace"]["last_responding"]["address"], "198.18.1.1");
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .contains("no reply and no error came back"),
        "{}",
        v["summary"]
    );
}

#[test]
fn a_host_that_drops_every_datagram_gives_no_control_answer_either() {
    require_lab!();
    let lab = Lab::new();
    lab.rule(&lab.server, "input", "meta l4proto udp drop");
    let v = lab
        .canreach(&["--json", "--timeout", "1s", "-u", "198.18.2.2", "5000"])
        .json();
    assert_eq!(v["verdict"], "inconclusive");
    let m = message(&v, "udp_no_answer");
    assert!(
        m.contains("got no answer either: the host sends no port-unreachables"),
        "{m}"
    );
}

#[test]
fn a_port_rejected_by_the_router_is_rejected_naming_the_router() {
    require_lab!();
    let lab = Lab::new();
    lab.rule(&lab.router, "forward", "udp dport 5001 reject");
    let r = lab.canreach(&["--json", "-u", "198.18.2.2", "5001"]);
    let v = r.json();
    assert_eq!(v["verdict"], "rejected", "{}", r.stdout);
    assert_eq!(r.code, 5);
    let m = message(&v, "udp_rejected");
    assert!(
        m.contains("A device on the way, 198.18.1.1, rejected the datagram"),
        "{m}"
    );
    assert!(m.contains("port-unreachable"), "{m}");
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .contains("a firewall on the way, at 198.18.1.1"),
        "{}",
        v["summary"]
    );
}

#[test]
fn a_closed_udp_port_is_closed() {
    require_lab!();
    let lab = Lab::new();
    let r = lab.canreach(&["--json", "udp://198.18.2.2:5002"]);
    let v = r.json();
    assert_eq!(v["verdict"], "closed", "{}", r.stdout);
    assert_eq!(r.code, 4);
    let m = message(&v, "udp_port_closed");
    assert!(
        m.contains("198.18.2.2 answered the datagram with ICMP port-unreachable"),
        "{m}"
    );
    // No TCP words: no reset, no SYN.
    assert!(!r.stdout.contains("TCP reset"), "{}", r.stdout);
}

#[test]
fn a_local_udp_socket_that_never_answers_names_its_program() {
    require_lab!();
    let lab = Lab::new();
    let socket = lab.udp(&lab.client, "198.18.1.2:5003");
    let held = lab.hold(&lab.client, &socket);
    let r = lab.canreach(&["--json", "--timeout", "1500ms", "-u", "198.18.1.2", "5003"]);
    let v = r.json();
    assert_eq!(v["verdict"], "inconclusive", "{}", r.stdout);
    let m = message(&v, "udp_program_silent");
    assert!(
        m.contains(&format!(
            "sleep (pid {}, user root) holds UDP port 5003",
            held.pid
        )),
        "{m}"
    );
    // Nobody reads the socket: the datagrams wait in it.
    assert!(m.contains("bytes it has not read"), "{m}");
    let text = lab.canreach(&["--timeout", "500ms", "-u", "198.18.1.2", "5003"]);
    assert!(
        text.stdout.contains(&format!(
            "UDP port  198.18.1.2:5003 sleep (pid {}",
            held.pid
        )),
        "{}",
        text.stdout
    );
    assert!(
        v["summary"].as_str().unwrap().contains(&format!(
            "sleep (pid {}) holds the port but did not answer",
            held.pid
        )),
        "{}",
        v["summary"]
    );
}

#[test]
fn a_payload_is_sent_as_given_and_any_reply_counts() {
    require_lab!();
    let lab = Lab::new();
    let socket = lab.udp(&lab.server, "198.18.2.2:5004");
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let (n, from) = socket.recv_from(&mut buf).unwrap();
        socket.send_to(&buf[..n], from).unwrap();
        buf[..n].to_vec()
    });
    let v = lab
        .canreach(&["--json", "--payload", "0d0a", "-u", "198.18.2.2", "5004"])
        .json();
    assert_eq!(v["verdict"], "open");
    assert_eq!(echo.join().unwrap(), b"\r\n");
    let m = message(&v, "udp_answered");
    assert!(m.contains("the given datagram (2 bytes)"), "{m}");
}

fn tempdir() -> common::fleet::TempDir {
    common::fleet::TempDir::new("udp")
}

#[test]
fn a_host_the_router_cannot_find_is_unreachable_naming_the_router() {
    require_lab!();
    let lab = Lab::new();
    // Nothing has 198.18.2.99: the router's neighbour lookup fails (~3 s), and it says so.
    let r = lab.canreach(&["--json", "--timeout", "5s", "-u", "198.18.2.99", "53"]);
    let v = r.json();
    assert_eq!(v["verdict"], "unreachable", "{}", r.stdout);
    assert_eq!(r.code, 7);
    let m = message(&v, "udp_unreachable");
    assert!(
        m.contains("198.18.1.1 reported host-unreachable for 198.18.2.99"),
        "{m}"
    );
}

/// A UDP echo on 127.0.0.1 (this test binary's own network namespace), started after
/// `after`: each datagram is sent back until `stop` is dropped.
fn echo_after(after: Duration) -> (u16, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    // The port is found free first, then bound only after `after`.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        std::thread::sleep(after);
        let s = std::net::UdpSocket::bind(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let mut buf = [0u8; 2048];
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok((n, from)) = s.recv_from(&mut buf) {
                let _ = s.send_to(&buf[..n], from);
            }
        }
    });
    (port, stop)
}

#[test]
fn wait_retries_a_udp_target_until_its_server_answers() {
    let (port, stop) = echo_after(Duration::from_millis(800));
    let target = format!("udp://127.0.0.1:{port}");
    let r = run_in(
        None,
        &["--json", "--wait", "10s", "--timeout", "1s", &target],
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let last = r.stdout.lines().last().unwrap();
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(v["verdict"], "open");
    assert_eq!(v["target"]["transport"], "udp");
    assert!(v["wait"]["checks"].as_u64().unwrap() >= 2, "{last}");
}

#[test]
fn a_targets_file_mixes_udp_and_tcp_targets() {
    let (open, stop) = echo_after(Duration::ZERO);
    std::thread::sleep(Duration::from_millis(100));
    let closed = open.wrapping_add(1).max(1024);
    let dir = tempdir();
    let file = dir.0.join("targets.txt");
    std::fs::write(
        &file,
        format!("udp://127.0.0.1:{open}\nudp://127.0.0.1:{closed}\n127.0.0.1 {open}\n"),
    )
    .unwrap();
    let r = run_in(
        None,
        &["--json", "--timeout", "1s", "-f", file.to_str().unwrap()],
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let lines: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    let seen: Vec<(String, String)> = lines
        .iter()
        .map(|v| {
            (
                v["target"]["transport"].as_str().unwrap().to_string(),
                v["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("udp".into(), "open".into()),
            ("udp".into(), "closed".into()),
            // Nothing listens on that port over TCP: the same number, another transport.
            ("tcp".into(), "closed".into()),
        ]
    );
}

/// One `/probe` of `canreach serve`'s `canreach` module: the body.
fn exporter_probe(addr: &str, target: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET /probe?module=canreach&target={target} HTTP/1.1\r\nHost: t\r\n\
         X-Prometheus-Scrape-Timeout-Seconds: 1.5\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out
}

#[test]
fn the_exporters_canreach_module_checks_udp_targets() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_canreach"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = exporter_address(&mut child);
    let _srv = Started(child);
    let (open, stop) = echo_after(Duration::ZERO);
    std::thread::sleep(Duration::from_millis(100));
    let m = exporter_probe(&addr, &format!("udp://127.0.0.1:{open}"));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(m.contains("\nprobe_success 1\n"), "{m}");
    assert!(
        m.contains("canreach_verdict_info{verdict=\"open\"} 1"),
        "{m}"
    );
    let closed = open.wrapping_add(1).max(1024);
    let m = exporter_probe(&addr, &format!("udp://127.0.0.1:{closed}"));
    assert!(m.contains("\nprobe_success 0\n"), "{m}");
    assert!(
        m.contains(
            "probe_failure_info{finding=\"udp_port_closed\",phase=\"connect\",verdict=\"closed\"} 1"
        ),
        "{m}"
    );
    // A socket that never answers: silence, within the scrape's deadline.
    let quiet = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = format!("udp://{}", quiet.local_addr().unwrap());
    let started = std::time::Instant::now();
    let m = exporter_probe(&addr, &target);
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "{:?}",
        started.elapsed()
    );
    assert!(m.contains("\nprobe_success 0\n"), "{m}");
    assert!(
        m.contains("canreach_verdict_info{verdict=\"inconclusive\"} 1"),
        "{m}"
    );
}

#[test]
fn this_machines_own_udp_rules_are_named() {
    require_lab!();
    let lab = Lab::new();
    lab.rule(&lab.client, "output", "udp dport 5006 drop");
    let v = lab
        .canreach(&["--json", "--timeout", "1s", "-u", "198.18.2.2", "5006"])
        .json();
    // An output rule's drop makes the kernel refuse the send at once (EPERM).
    assert_eq!(v["verdict"], "rejected", "{v}");
    assert!(message(&v, "local_policy_reject").contains("refused to send the datagram"));
    let m = message(&v, "local_firewall_output");
    assert!(
        m.contains("This machine's own firewall stops UDP port 5006 in its output path"),
        "{m}"
    );
    assert!(m.contains("udp dport 5006 drop"), "{m}");
    // A port of this machine with no socket on it: the kernel would have answered, so its
    // own input rule is why.
    lab.rule(&lab.client, "input", "udp dport 5007 drop");
    let v = lab
        .canreach(&["--json", "--timeout", "1s", "-u", "198.18.1.2", "5007"])
        .json();
    assert_eq!(v["verdict"], "inconclusive");
    assert!(message(&v, "local_firewall_input").contains("udp dport 5007 drop"));
    assert!(
        message(&v, "udp_no_answer").contains("No program on this machine holds UDP port 5007"),
        "{v}"
    );
}

#[test]
fn a_bad_payload_is_one_line_and_exit_2() {
    for (args, says) in [
        (
            &["-u", "127.0.0.1", "53", "--payload", "zz"][..],
            "is not a hex digit",
        ),
        (
            &["-u", "127.0.0.1", "53", "--payload", "abc"],
            "odd number of hex digits",
        ),
        (
            &["-u", "127.0.0.1", "53", "--payload", ""],
            "give the datagram's bytes in hex",
        ),
        (
            &["127.0.0.1", "53", "--payload", "00"],
            "--payload is for UDP targets",
        ),
        (&["udp://127.0.0.1"], "URL scheme `udp` has no usual port"),
    ] {
        let r = run_in(None, args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}");
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }
}

#[test]
fn ipv6_closed_and_rejected_udp_ports_are_told_apart() {
    require_lab!();
    let lab = Lab::new();
    let v = lab.canreach(&["--json", "udp://[fd00:2::2]:5002"]).json();
    assert_eq!(v["verdict"], "closed", "{v}");
    assert!(message(&v, "udp_port_closed").contains("fd00:2::2 answered the datagram"));
    lab.rule(&lab.router, "forward", "udp dport 5001 reject");
    let v = lab.canreach(&["--json", "udp://[fd00:2::2]:5001"]).json();
    assert_eq!(v["verdict"], "rejected", "{v}");
    assert!(
        message(&v, "udp_rejected").contains("A device on the way, fd00:1::1, rejected"),
        "{v}"
    );
}

#[test]
fn a_reply_that_is_not_the_services_answer_is_open_and_says_so() {
    require_lab!();
    let lab = Lab::new();
    // Something on the NTP port that echoes: a reply, but no NTP server's (mode 3 back).
    let socket = lab.udp(&lab.server, "198.18.2.2:123");
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let (n, from) = socket.recv_from(&mut buf).unwrap();
        socket.send_to(&buf[..n], from).unwrap();
    });
    let v = lab.canreach(&["--json", "-u", "198.18.2.2", "123"]).json();
    echo.join().unwrap();
    assert_eq!(v["verdict"], "open");
    assert_eq!(v["probes"][0]["udp"]["reply"], "other");
    let m = message(&v, "udp_answered");
    assert!(m.contains("answered an NTP client packet"), "{m}");
    assert!(m.contains("but not as NTP does"), "{m}");
}
