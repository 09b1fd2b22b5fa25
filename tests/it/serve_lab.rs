//! `canreach serve` in a namespace lab: 200 probes at once of ports the lab's server drops
//! (nftables), each with Prometheus's scrape timeout header, each answered within it, with
//! the reason, and nothing left open after.

use crate::common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::serve_cli::open_fds;
use common::{InLab, Lab, SERVER_V4, services};

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

/// One GET of the exporter at `addr` (in the lab's client namespace): the whole answer.
fn get_in(lab: &Lab, addr: SocketAddr, path: &str) -> String {
    let mut s = lab.connect(&lab.client, &addr.to_string());
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    answer
}

/// One probe of the exporter at `addr`: the answer.
fn probe_in(lab: &Lab, addr: SocketAddr, module: &str, target: &str) -> String {
    let target: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
    get_in(
        lab,
        addr,
        &format!("/probe?module={module}&target={target}"),
    )
}

#[test]
fn the_tcp_prober_only_connects_to_a_database_port_while_the_canreach_module_speaks_to_it() {
    require_lab!();
    if !services::available(module_path!(), services::PG_BIN, "postgresql-15") {
        return;
    }
    let lab = Lab::new();
    // No pg_hba.conf entry for the client: a startup message would be logged as refused.
    let pg = services::postgres(
        &lab.server,
        SERVER_V4,
        "local all all trust\nhost all all 198.18.9.0/24 scram-sha-256\n",
    );
    let (_srv, _, addr) = serve_in(&lab, &[]);
    let port = format!("{SERVER_V4}:5432");
    // blackbox_exporter's tcp prober: a connect, success when accepted, not a word spoken.
    for _ in 0..3 {
        let body = probe_in(&lab, addr, "tcp_connect", &port);
        assert!(body.contains("\nprobe_success 1\n"), "{body}");
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !pg.log_tail().contains("no pg_hba.conf entry"),
        "the tcp prober spoke PostgreSQL:\n{}",
        pg.log_tail()
    );
    // The canreach module: the CLI's whole check, by the URL's scheme or the port.
    for target in [format!("postgres://app:s3cr3tpw@{SERVER_V4}/orders"), port] {
        let body = probe_in(&lab, addr, "canreach", &target);
        assert!(body.contains("\nprobe_success 0\n"), "{target}: {body}");
        assert!(
            body.contains("probe_failure_info{finding=\"pg_no_hba_entry\""),
            "{target}: {body}"
        );
        assert!(!body.contains("s3cr3tpw"), "{body}");
    }
    // Nor in the debug report or the page of recent probes.
    let url = format!("postgres://app:s3cr3tpw@{SERVER_V4}/orders");
    let debug = probe_in(&lab, addr, "canreach&debug=true", &url);
    assert!(debug.contains("pg_no_hba_entry"), "{debug}");
    let page = get_in(&lab, addr, "/");
    assert!(page.contains("/orders"), "the page lists the probe: {page}");
    for text in [&debug, &page] {
        assert!(!text.contains("s3cr3tpw"), "{text}");
    }
    assert!(
        pg.log_tail().contains("no pg_hba.conf entry"),
        "{}",
        pg.log_tail()
    );
}

#[test]
fn many_probes_of_a_mariadb_port_leave_no_descriptor_open() {
    require_lab!();
    if !services::available(module_path!(), "/usr/sbin/mariadbd", "mariadb-server") {
        return;
    }
    let lab = Arc::new(Lab::new());
    let db = services::mariadb(
        &lab.server,
        SERVER_V4,
        "CREATE USER 'app'@'%' IDENTIFIED BY 'x';\n",
        &["--skip-name-resolve"],
    );
    let (_srv, pid, addr) = serve_in(&lab, &[]);
    let target = format!("{SERVER_V4}:3306");
    // Warm: the runtime's and the trust store's descriptors are opened by the first probes.
    for _ in 0..5 {
        probe_in(&lab, addr, "canreach", &target);
    }
    std::thread::sleep(Duration::from_millis(300));
    let before = open_fds(pid);
    // 320 checks, 8 at a time: each keeps its probe's connection for the MySQL login.
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (lab, target) = (lab.clone(), target.clone());
            std::thread::spawn(move || {
                (0..40)
                    .map(|_| probe_in(&lab, addr, "canreach", &target))
                    .filter(|body| !body.contains("\nprobe_success 1\n"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for w in workers {
        let failed = w.join().unwrap();
        assert!(failed.is_empty(), "{}\n{}", failed[0], db.log_tail());
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = open_fds(pid);
    assert!(
        after <= before + 2,
        "descriptors: {before} before, {after} after"
    );
    // Every check logged in (refused: no such account), and none dropped a handshake: the
    // one connection closed before authentication is the lab's own wait for the port.
    let dropped = |log: &str| {
        log.matches("closed normally without authentication")
            .count()
    };
    let log = std::fs::read_to_string(&db.log).unwrap();
    let denied = log.matches("Access denied for user 'canreach'").count();
    assert!(denied >= 300, "{denied} logins:\n{log}");
    assert!(dropped(&log) <= 1, "{log}");
    // The tcp prober closes before the handshake, once, as blackbox_exporter's does: the
    // connection watched after the connect (the greeting read, nothing said) is the probe's.
    let body = probe_in(&lab, addr, "tcp_connect", &target);
    assert!(body.contains("\nprobe_success 1\n"), "{body}");
    std::thread::sleep(Duration::from_millis(300));
    let after = std::fs::read_to_string(&db.log).unwrap();
    assert_eq!(dropped(&after), dropped(&log) + 1, "{after}");
}
