//! `--format nagios` through the binary, as a scheduler (Nagios, Icinga) runs it: the status
//! line, the perfdata, the reasons below, and the exit codes 0–3. Loopback servers first (no
//! root); then the namespace lab for what loopback cannot show (a partial answer, a name that
//! does not resolve, a silent drop).

use crate::common;

use std::net::TcpListener;
use std::process::{Command, Stdio};

use common::*;

/// One run of the binary (outside any lab): exit code, stdout, stderr.
fn run(args: &[&str]) -> (i32, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_canreach"));
    for k in PROXY_VARS {
        c.env_remove(k);
    }
    let out = c
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The first line split at its `|`: the status text and the perfdata items (each checked
/// against the guidelines' `'label'=VALUEs;;;0`), as `(label, seconds)`.
fn status_and_perf(first: &str) -> (&str, Vec<(String, f64)>) {
    assert_eq!(first.matches('|').count(), 1, "one `|`: {first}");
    let (status, perf) = first.split_once(" | ").unwrap();
    let items = perf
        .split(' ')
        // A label with a space inside its quotes is one item: rejoin on the quotes.
        .fold(Vec::<String>::new(), |mut acc, w| {
            match acc.last_mut() {
                Some(last) if last.matches('\'').count() % 2 == 1 => {
                    last.push(' ');
                    last.push_str(w);
                }
                _ => acc.push(w.to_string()),
            }
            acc
        })
        .into_iter()
        .map(|item| {
            let (label, rest) = item
                .rsplit_once('=')
                .unwrap_or_else(|| panic!("no `=` in {item}"));
            assert!(
                label.len() > 2 && label.starts_with('\'') && label.ends_with('\''),
                "quoted label: {item}"
            );
            let value = rest
                .strip_suffix("s;;;0")
                .unwrap_or_else(|| panic!("not VALUEs;;;0: {item}"));
            let secs: f64 = value.parse().unwrap_or_else(|_| panic!("value: {item}"));
            assert!(secs >= 0.0, "{item}");
            (label.trim_matches('\'').to_string(), secs)
        })
        .collect();
    (status, items)
}

/// A port on 127.0.0.1 where nothing listens, held while the socket lives (bound, not
/// listening: a connection to it gets a reset).
fn closed_port() -> (socket2::Socket, u16) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let port = s.local_addr().unwrap().as_socket().unwrap().port();
    (s, port)
}

/// A listener on 127.0.0.1 whose connections are taken and held by a thread (a program that
/// accepts and waits for its client).
fn open_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = vec![];
        for s in l.incoming().flatten() {
            held.push(s);
        }
    });
    port
}

#[test]
fn an_open_port_is_ok_exit_0_with_its_times() {
    let port = open_port();
    let (code, out, err) = run(&["--format", "nagios", "127.0.0.1", &port.to_string()]);
    assert_eq!(code, 0, "{out}{err}");
    let first = out.lines().next().unwrap();
    let (status, perf) = status_and_perf(first);
    assert_eq!(
        status,
        format!("CANREACH OK: 127.0.0.1:{port} is open: the connection was accepted.")
    );
    let labels: Vec<&str> = perf.iter().map(|(l, _)| l.as_str()).collect();
    // An IP literal: no name lookup, so no dns phase.
    assert_eq!(labels, ["time", "connect"], "{first}");
    assert!(perf[1].1 <= perf[0].1, "connect within the whole: {first}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn a_closed_port_is_critical_exit_2_with_the_reason_below() {
    let (_held, port) = closed_port();
    let (code, out, _) = run(&["--format", "nagios", "127.0.0.1", &port.to_string()]);
    assert_eq!(code, 2, "{out}");
    let mut lines = out.lines();
    let (status, perf) = status_and_perf(lines.next().unwrap());
    assert!(
        status.starts_with(&format!("CANREACH CRITICAL: 127.0.0.1:{port} is closed")),
        "{status}"
    );
    assert_eq!(perf[0].0, "time");
    let reasons: Vec<&str> = lines.collect();
    assert!(
        reasons[0].starts_with("- 127.0.0.1 answered port") && out.contains("TCP reset"),
        "{out}"
    );
    assert!(reasons.iter().all(|l| l.chars().count() <= 80), "{out}");
    assert!(!out.contains("\x1b"), "{out}");
}

#[test]
fn a_usage_error_is_unknown_exit_3_in_one_line_on_stdout() {
    let cases: &[(&[&str], &str)] = &[
        (&["--format", "nagios", "host", "0"], "port 0"),
        (&["--format=nagios", "host", "70000"], "out of range"),
        (
            &["--format", "nagios", "--nosuchflag", "host", "22"],
            "unexpected argument",
        ),
        (
            &["--format", "nagios", "--json", "host", "22"],
            "cannot be used with",
        ),
        (
            &["--format", "nagios", "host", "22", "--"],
            "must be followed by a command",
        ),
        (&["--format", "nagios", "a|b", "22"], "a\\x7cb"),
        (&["--format", "nagios"], "required"),
    ];
    for (args, says) in cases {
        let (code, out, err) = run(args);
        assert_eq!(code, 3, "{args:?}: {out}{err}");
        assert_eq!(out.lines().count(), 1, "{args:?}: one line, got {out:?}");
        assert!(out.starts_with("CANREACH UNKNOWN: "), "{args:?}: {out}");
        assert!(out.contains(says), "{args:?}: expected {says:?} in {out:?}");
        assert!(
            !out.contains('|'),
            "{args:?}: a `|` would start perfdata: {out}"
        );
        assert!(err.is_empty(), "{args:?}: nothing on stderr, got {err:?}");
    }
    // Without --format nagios the same mistake keeps canreach's own convention.
    let (code, out, err) = run(&["host", "0"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.starts_with("canreach: "), "{err}");
}

#[test]
fn several_targets_share_one_status_line_worst_first_with_perfdata_each() {
    let open = open_port();
    let (_a, closed_a) = closed_port();
    let (_b, closed_b) = closed_port();
    let targets = [
        format!("127.0.0.1:{open}"),
        format!("127.0.0.1:{closed_a}"),
        format!("127.0.0.1:{closed_b}"),
    ];
    let mut args = vec!["--format", "nagios"];
    args.extend(targets.iter().map(String::as_str));
    let (code, out, _) = run(&args);
    assert_eq!(code, 2, "{out}");
    let mut lines = out.lines();
    let (status, perf) = status_and_perf(lines.next().unwrap());
    // The worst first; targets of one verdict in the order given.
    assert_eq!(
        status,
        format!(
            "CANREACH CRITICAL: 3 targets: {} closed, {} closed, {} open",
            targets[1], targets[2], targets[0]
        )
    );
    for t in &targets {
        for phase in ["time", "connect"] {
            let want = format!("{t} {phase}");
            assert!(perf.iter().any(|(l, _)| *l == want), "{want}: {perf:?}");
        }
    }
    let rest: Vec<&str> = lines.collect();
    let heads: Vec<&&str> = rest.iter().filter(|l| l.starts_with('[')).collect();
    assert_eq!(heads.len(), 3, "{out}");
    assert!(heads[0].starts_with(&format!("[CRITICAL] {} is closed", targets[1])));
    assert!(heads[2].starts_with(&format!("[OK] {} is open", targets[0])));

    // All open: OK, exit 0.
    let other = open_port();
    let (code, out, _) = run(&[
        "--format",
        "nagios",
        &targets[0],
        &format!("127.0.0.1:{other}"),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("CANREACH OK: 2 targets: "), "{out}");
}

#[test]
fn partial_is_warning_and_dns_failure_and_silence_are_critical() {
    require_lab!();
    let lab = Lab::new();
    lab.etc_file(
        &lab.client,
        "hosts",
        "127.0.0.1 localhost\n198.18.2.2 dual.lab\nfd00:2::2 dual.lab\n",
    );
    let _l = lab.listen(&lab.server, "198.18.2.2:8080");

    // IPv4 answers, IPv6 is refused: WARNING, exit 1.
    let r = lab.canreach(&["--format", "nagios", "dual.lab", "8080"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let (status, perf) = status_and_perf(r.stdout.lines().next().unwrap());
    assert!(
        status.starts_with("CANREACH WARNING: dual.lab:8080"),
        "{status}"
    );
    let labels: Vec<&str> = perf.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["time", "dns", "connect"], "{status}");
    assert!(
        r.stdout.contains("IPv4 works and IPv6 does not"),
        "{}",
        r.stdout
    );

    // The lab's resolver (the router) has nothing on port 53: the name fails. CRITICAL, not
    // UNKNOWN (the guidelines), exit 2.
    let r = lab.canreach(&["--format", "nagios", "--timeout", "3", "nosuch.lab", "80"]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    let (status, perf) = status_and_perf(r.stdout.lines().next().unwrap());
    assert!(
        status.starts_with("CANREACH CRITICAL: nosuch.lab does not resolve"),
        "{status}"
    );
    assert_eq!(perf[1].0, "dns", "{status}");

    // A silent drop until the deadline: CRITICAL, exit 2, whatever the evidence showed by then.
    lab.rule(&lab.server, "input", "tcp dport 5432 drop");
    let r = lab.canreach(&["--format", "nagios", "--timeout", "1.5", SERVER_V4, "5432"]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    let (status, perf) = status_and_perf(r.stdout.lines().next().unwrap());
    assert!(
        status.starts_with("CANREACH CRITICAL: 198.18.2.2:5432 is filtered"),
        "{status}"
    );
    // No connect time: silence has none.
    assert_eq!(perf.len(), 1, "{status}");

    // The same drop with a deadline too short for the silence to mean anything: the verdict is
    // inconclusive, and still CRITICAL (nothing connected in the time the check was given).
    let r = lab.canreach(&["--format", "nagios", "--timeout", "20ms", SERVER_V4, "5432"]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        r.stdout
            .starts_with("CANREACH CRITICAL: 198.18.2.2:5432 is inconclusive"),
        "{}",
        r.stdout
    );
}
