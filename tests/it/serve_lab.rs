//! `canreach serve` in a namespace lab: 200 probes at once of ports the lab's server drops
//! (nftables), each with Prometheus's scrape timeout header, each answered within it, with
//! the reason, and nothing left open after.

use crate::common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{InLab, Lab, SERVER_V4};

/// The exporter inside the lab's client namespace; its address there.
fn serve_in(lab: &Lab, args: &[&str]) -> (common::Started, u32, SocketAddr) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", &lab.client, env!("CARGO_BIN_EXE_canreach")])
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn_in_lab()
        .unwrap();
    // `ip netns exec` execs the program: the same pid.
    let pid = child.id();
    let addr = common::exporter_address(&mut child).parse().unwrap();
    (common::Started(child), pid, addr)
}

#[test]
fn two_hundred_probes_of_filtered_ports_each_answer_within_the_scrape_timeout() {
    require_lab!();
    let lab = Lab::new();
    lab.rule(&lab.server, "input", "tcp dport 6000-6199 drop");
    let (_srv, pid, addr) = serve_in(&lab, &["--max-concurrent", "256"]);
    let lab = Arc::new(lab);
    let before = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let start = Instant::now();
    let probes: Vec<_> = (0..200)
        .map(|i| {
            let lab = lab.clone();
            std::thread::spawn(move || {
                let mut s = lab.connect(&lab.client.clone(), &addr.to_string());
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let sent = Instant::now();
                write!(
                    s,
                    "GET /probe?module=tcp_connect&target={SERVER_V4}:{} HTTP/1.1\r\nHost: x\r\n\
                     X-Prometheus-Scrape-Timeout-Seconds: 2\r\nConnection: close\r\n\r\n",
                    6000 + i
                )
                .unwrap();
                let mut body = String::new();
                s.read_to_string(&mut body).unwrap();
                (sent.elapsed(), body)
            })
        })
        .collect();
    let answers: Vec<(Duration, String)> = probes.into_iter().map(|p| p.join().unwrap()).collect();
    let all = start.elapsed();
    let mut verdicts = std::collections::BTreeMap::new();
    for (took, body) in &answers {
        assert!(body.starts_with("HTTP/1.1 200"), "{body}");
        // The deadline is the header less the offset (1.5 s); the scrape gives up at 2 s.
        assert!(*took < Duration::from_secs(2), "answered after {took:?}");
        assert!(body.contains("\nprobe_success 0\n"), "{body}");
        let info = body
            .lines()
            .find(|l| l.starts_with("probe_failure_info{"))
            .unwrap_or_else(|| panic!("no reason: {body}"));
        assert!(info.contains("phase=\"connect\""), "{info}");
        *verdicts.entry(info.to_string()).or_insert(0) += 1;
    }
    eprintln!("200 filtered probes in {all:?}: {verdicts:?}");
    // With the host up (its other ports reset), silence is a drop: `filtered`.
    let filtered: usize = verdicts
        .iter()
        .filter(|(k, _)| k.contains("verdict=\"filtered\""))
        .map(|(_, n)| *n)
        .sum();
    assert!(filtered >= 190, "{verdicts:?}");
    // Nothing left open once the probes are done (the clients' connections closed).
    std::thread::sleep(Duration::from_millis(500));
    let after = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    assert!(
        after <= before + 2,
        "descriptors: {before} before, {after} after"
    );
}
