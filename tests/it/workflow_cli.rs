//! Workflows as a user meets them, on loopback (no root needed): several targets, `-f FILE`,
//! bad input (one line, exit 2), `-q`, `-4`/`-6`, `-- COMMAND`, `--wait`, Markdown,
//! completions and the man page.

use crate::common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use assert_cmd::Command;

fn canreach() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_canreach"));
    // URL targets follow proxy variables: the CI machine's must not decide a test.
    for k in common::PROXY_VARS {
        c.env_remove(k);
    }
    c.env("NO_COLOR", "1").timeout(Duration::from_secs(30));
    c
}

/// A port on 127.0.0.1 where nothing listens (bound, not listening), held while it lives.
fn closed_port() -> (socket2::Socket, String) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let port = s.local_addr().unwrap().as_socket().unwrap().port();
    (s, port.to_string())
}

/// A listener whose program takes its connections (one that never does is not open).
fn open_port() -> (common::Accepting, String) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    (common::Accepting::start(l), port)
}

/// A port open on 127.0.0.1 and on ::1 (loopback only), its connections taken: `localhost`
/// is both on most machines, and the tests' own /etc/hosts says so.
fn open_port_both() -> ((common::Accepting, common::Accepting), String) {
    for _ in 0..50 {
        let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = v4.local_addr().unwrap().port();
        // The same port on ::1 is free almost always; another one is tried when it is not.
        if let Ok(v6) = TcpListener::bind(("::1", port)) {
            let both = (common::Accepting::start(v4), common::Accepting::start(v6));
            return (both, port.to_string());
        }
    }
    panic!("no port free on both 127.0.0.1 and ::1 (is IPv6 loopback up?)");
}

/// One program (perl, a process of its own) listening on `n` loopback ports, one after the
/// other as a server opens its listeners, taking every connection: the ports, and the
/// program, killed when dropped.
fn program_on_ports(n: usize) -> (common::Started, Vec<String>) {
    const SERVER: &str = "use IO::Socket::INET; use IO::Select; $| = 1; \
        my @l = map { IO::Socket::INET->new(Listen => 128, LocalAddr => '127.0.0.1:0') \
            or die $! } 1 .. $ARGV[0]; \
        print join(' ', map { $_->sockport } @l), \"\\n\"; \
        my $s = IO::Select->new(@l); my @held; \
        while (1) { push @held, map { scalar $_->accept } $s->can_read }";
    let mut child = std::process::Command::new("perl")
        .args(["-e", SERVER, &n.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("perl (perl-base) runs the listener");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let ports: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    assert_eq!(ports.len(), n, "{line}");
    (common::Started(child), ports)
}

fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("canreach-wf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn one_usage_line(args: &[&str], stdin: Option<&str>) -> String {
    let mut c = canreach();
    c.args(args);
    if let Some(s) = stdin {
        c.write_stdin(s);
    }
    let out = c.output().map(common::checked).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr:?}");
    assert!(stderr.starts_with("canreach: "), "{args:?}: {stderr}");
    assert!(
        !stderr.trim_end().chars().any(char::is_control),
        "{args:?}: {stderr:?}"
    );
    stderr
}

#[test]
fn bad_input_of_workflows_is_one_line_and_exit_2() {
    let empty = temp_file("empty.txt", b"# only a comment\n\n   \n");
    let badline = temp_file("bad.txt", b"127.0.0.1:22\n# fine\nnot a target at all\n");
    let noport = temp_file("noport.txt", b"db.example\n");
    let control = temp_file("control.txt", b"127.0.0.1:22\nx\x1b[31my 80\n");
    let binary = temp_file("binary.txt", &[0xff, 0xfe, 0x00, 0x41]);
    let dup = temp_file("dup.txt", b"127.0.0.1:22\n");
    let dir = std::env::temp_dir();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["127.0.0.1:22", "127.0.0.1", "22"],
            "given twice (argument 1 and argument 2)",
        ),
        (vec!["localhost:22", "LOCALHOST.", "ssh"], "given twice"),
        (
            vec!["127.0.0.1:22", "-f", dup.to_str().unwrap()],
            "argument 1 and line 1",
        ),
        (vec!["-f", empty.to_str().unwrap()], "holds no target"),
        (
            vec!["-f", "/nonexistent/targets.txt"],
            "cannot read /nonexistent/targets.txt: no such file",
        ),
        (vec!["-f", dir.to_str().unwrap()], "cannot read"),
        (vec!["-f", binary.to_str().unwrap()], "not UTF-8"),
        (
            vec!["-f", badline.to_str().unwrap()],
            "line 3: `not a target at all` is not a target",
        ),
        (
            vec!["-f", noport.to_str().unwrap()],
            "line 1: no port given",
        ),
        (vec!["-f", control.to_str().unwrap()], "line 2:"),
        (
            vec!["127.0.0.1:22", "--"],
            "`--` must be followed by a command",
        ),
        (
            vec!["-4", "::1", "22"],
            "-4 given, but `[::1]:22` is an IPv6 address",
        ),
        (vec!["-6", "127.0.0.1:22"], "-6 given"),
        (vec!["-4", ":22"], "does not apply to `:PORT`"),
        (vec!["-4", "-6", "localhost:22"], "cannot be used with"),
        (vec!["--wait", "0", "localhost:22"], "out of range"),
        (vec!["--wait", "2d", "localhost:22"], "not a duration"),
        (vec!["--format", "yaml", "localhost:22"], "invalid value"),
        (
            vec!["--json", "--format", "text", "localhost:22"],
            "cannot be used with",
        ),
        (vec!["--completions", "tcsh"], "invalid value"),
        (vec!["--man", "localhost:22"], "cannot be used with"),
        (vec!["db:5432", "cache"], "no port given for cache"),
    ];
    for (args, says) in &cases {
        let line = one_usage_line(args, None);
        assert!(
            line.contains(says),
            "{args:?}: expected {says:?} in {line:?}"
        );
    }
    // stdin as the file
    let line = one_usage_line(&["-f", "-"], Some("127.0.0.1:22\n\nfoo bar baz\n"));
    assert!(line.contains("standard input, line 3"), "{line}");
    let line = one_usage_line(&["-f", "-"], Some(""));
    assert!(line.contains("standard input holds no target"), "{line}");
}

#[test]
fn several_targets_a_table_then_the_failing_reports_in_input_order() {
    let (_o, open) = open_port();
    let (_c, closed) = closed_port();
    let out = canreach()
        .args([&format!("127.0.0.1:{open}"), "127.0.0.1", &closed])
        .output()
        .map(common::checked)
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("TARGET"), "{stdout}");
    // One row per target, in input order (a row's reason may wrap onto the lines below it).
    let row = |t: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(t))
            .unwrap_or_else(|| panic!("no row for {t}: {stdout}"))
    };
    let (o, c) = (
        row(&format!("127.0.0.1:{open}")),
        row(&format!("127.0.0.1:{closed}")),
    );
    assert!(o == 1 && o < c, "{stdout}");
    assert!(
        lines[o].contains(" open ") && lines[c].contains(" closed "),
        "{stdout}"
    );
    // Only the closed target's full report follows.
    assert_eq!(stdout.matches("What was checked").count(), 1, "{stdout}");
    assert!(stdout.contains(&format!("✗ CLOSED  127.0.0.1:{closed}")));
}

#[test]
fn json_lines_one_report_per_target_in_input_order() {
    let (_o, open) = open_port();
    let (_c, closed) = closed_port();
    let targets: Vec<String> = vec![
        format!("127.0.0.1:{closed}"),
        format!("127.0.0.1:{open}"),
        format!("localhost:{closed}"),
    ];
    let file = temp_file(
        "list.txt",
        format!("# list\n{}\n\n{}  # open\n", targets[1], targets[2]).as_bytes(),
    );
    let out = canreach()
        .args(["--json", &targets[0], "-f", file.to_str().unwrap()])
        .output()
        .map(common::checked)
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4));
    let reports: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(reports.len(), 3);
    common::check_report(&stdout);
    for (r, t) in reports.iter().zip(&targets) {
        assert_eq!(r["target"]["input"], t.as_str());
    }
    let verdicts: Vec<&str> = reports
        .iter()
        .map(|r| r["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["closed", "open", "closed"]);
}

#[test]
fn targets_checked_together_each_get_their_own_port_s_listeners() {
    // The run's checks share one read of this machine (local::shared): each report must
    // still describe its own port, and the listener's owner (one program owns all six; the
    // test process, where other tests open descriptors all the time, is not a program whose
    // listeners sit together).
    let (program, ports) = program_on_ports(6);
    let (_c, closed) = closed_port();
    let mut args = vec!["--json".to_string()];
    args.extend(ports.iter().map(|p| format!("127.0.0.1:{p}")));
    args.push(format!("127.0.0.1:{closed}"));
    let out = canreach()
        .args(&args)
        .output()
        .map(common::checked)
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{stdout}");
    common::check_report(&stdout);
    let reports: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reports.len(), 7);
    let owner = program.0.id();
    for (r, port) in reports.iter().zip(&ports) {
        let local = &r["local"];
        assert_eq!(local["port"].to_string(), *port, "{r}");
        let l = &local["listeners"].as_array().unwrap()[..];
        assert_eq!(l.len(), 1, "{r}");
        assert_eq!(l[0]["port"].to_string(), *port);
        assert_eq!(l[0]["process"]["pid"], owner, "{r}");
    }
    let last = &reports[6];
    assert_eq!(last["verdict"], "closed");
    assert_eq!(last["local"]["port"].to_string(), closed);
    assert_eq!(last["local"]["listeners"].as_array().map(Vec::len), Some(0));
}

#[test]
fn all_open_exits_0_and_quiet_prints_nothing() {
    let (_a, a) = open_port();
    let (_b, b) = open_port_both();
    let (_c, closed) = closed_port();
    let out = canreach()
        .args(["-q", "127.0.0.1", &a, "localhost", &b])
        .output()
        .map(common::checked)
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    let out = canreach()
        .args(["--quiet", "--json", &format!("127.0.0.1:{closed}")])
        .output()
        .map(common::checked)
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
}

#[test]
fn family_flags_keep_only_that_family() {
    let (_o, open) = open_port();
    let out = canreach()
        .args(["--json", "-4", "localhost", &open])
        .output()
        .map(common::checked)
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for p in v["probes"].as_array().unwrap() {
        assert!(!p["address"].as_str().unwrap().contains(':'), "{p}");
    }
    assert_eq!(out.status.code(), Some(0));
    // localhost has no IPv6 address in /etc/hosts here or has ::1: either way only v6 is
    // probed, and a v4-only listener is not open over it.
    let out = canreach()
        .args(["--json", "-6", "localhost", &open])
        .output()
        .map(common::checked)
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(v["verdict"], "open", "{v}");
    for p in v["probes"].as_array().unwrap() {
        assert!(p["address"].as_str().unwrap().contains(':'), "{p}");
    }
}

#[test]
fn a_command_runs_only_when_every_target_is_open_and_its_code_is_ours() {
    let (_o, open) = open_port();
    let (_c, closed) = closed_port();
    let marker = std::env::temp_dir().join(format!("canreach-ran-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let cmd = format!("echo ran > {}; exit 7", marker.display());
    let out = canreach()
        .args(["-q", &format!("127.0.0.1:{closed}"), "--", "sh", "-c", &cmd])
        .output()
        .map(common::checked)
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(!marker.exists(), "the command ran after a failure");
    let out = canreach()
        .args(["-q", &format!("127.0.0.1:{open}"), "--", "sh", "-c", &cmd])
        .output()
        .map(common::checked)
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(7),
        "the command's exit code is ours"
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "ran\n");
    let _ = std::fs::remove_file(&marker);
    let out = canreach()
        .args(["-q", &format!("127.0.0.1:{open}"), "--", "/nonexistent/cmd"])
        .output()
        .map(common::checked)
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}

#[test]
fn a_wait_that_gives_up_prints_the_last_diagnosis_and_its_code() {
    let (_c, closed) = closed_port();
    let start = Instant::now();
    let out = canreach()
        .args(["--wait", "1500ms", "127.0.0.1", &closed])
        .output()
        .map(common::checked)
        .unwrap();
    let took = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{stdout}");
    assert!(
        stdout.starts_with(&format!("✗ CLOSED  127.0.0.1:{closed}")),
        "{stdout}"
    );
    assert!(
        took >= Duration::from_millis(1000),
        "{took:?}: gave up too early"
    );
    assert!(
        took < Duration::from_millis(3000),
        "{took:?}: waited past --wait"
    );
    // No change to log, but the end of the wait is said, with how long it took (issue 21).
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "canreach: 127.0.0.1:{closed}: still closed — the wait ended after 1."
        )) && stderr.contains("checks; --wait 1500ms)"),
        "{stderr}"
    );
    // The last check's deadline is what the wait had left, and the footer says so.
    assert!(
        common::flat(&stdout).contains("what was left of --wait 1500ms)"),
        "{stdout}"
    );
    let out = canreach()
        .args(["--json", "--wait", "1500ms", "127.0.0.1", &closed])
        .output()
        .map(common::checked)
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["wait"]["ended"], "time_up", "{v}");
    assert_eq!(v["wait"]["wait_ms"], 1500.0);
    assert_eq!(v["wait"]["timeout_ms"], 5000.0);
    assert!(v["wait"]["checks"].as_u64().unwrap() > 1, "{v}");
}

#[test]
fn a_wait_logs_one_change_when_the_port_opens() {
    let (c, closed) = closed_port();
    let port: u16 = closed.parse().unwrap();
    let child = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        drop(c);
        let l = common::Accepting::start(TcpListener::bind(("127.0.0.1", port)).unwrap());
        std::thread::sleep(Duration::from_secs(6));
        drop(l);
    });
    let out = canreach()
        .args(["--json", "--wait", "5s", "127.0.0.1", &closed])
        .output()
        .map(common::checked)
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0]["event"], "change");
    assert_eq!(lines[0]["from"], "closed");
    assert_eq!(lines[0]["to"], "open");
    assert!(lines[0]["after_ms"].as_f64().unwrap() >= 700.0);
    assert_eq!(lines[1]["verdict"], "open");
    child.join().unwrap();
}

#[test]
fn markdown_is_a_ticket_with_where_it_was_run_from_and_no_secret() {
    let (_c, closed) = closed_port();
    let out = canreach()
        .env("https_proxy", "http://alice:hunter2@proxy.internal:3128")
        .env("NO_PROXY", "localhost,.internal")
        .args(["--format", "markdown", "127.0.0.1", &closed])
        .output()
        .map(common::checked)
        .unwrap();
    let md = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4));
    for want in [
        &format!("# canreach: `127.0.0.1:{closed}` is closed") as &str,
        "## What was checked",
        "```text",
        "## What this means",
        "## Next steps",
        "1. ",
        "## Where this was run from",
        "- host: ",
        "kernel ",
        "- interfaces:",
        "`lo`: `127.0.0.1/8`",
        "UTC",
        "proxy variable `https_proxy` = `http://alice:***@proxy.internal:3128`",
        "proxy variable `NO_PROXY` = `localhost,.internal`",
    ] {
        assert!(md.contains(want), "{want:?} missing in:\n{md}");
    }
    assert!(!md.contains("hunter2"));
    assert!(!md.contains('\x1b'));
}

#[test]
fn completions_and_man_page_go_to_stdout() {
    for shell in ["bash", "zsh", "fish"] {
        let out = canreach()
            .args(["--completions", shell])
            .output()
            .map(common::checked)
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("canreach"), "{shell}");
        assert!(text.contains("--wait"), "{shell}: {text}");
        assert!(out.stderr.is_empty());
    }
    let out = canreach()
        .arg("--man")
        .output()
        .map(common::checked)
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let man = String::from_utf8_lossy(&out.stdout);
    assert!(man.contains(".TH canreach 1"), "{man}");
    assert!(man.contains("wait"));
}

#[test]
fn ctrl_c_during_a_wait_stops_at_once_and_says_where_each_target_stood() {
    let (_c, closed) = closed_port();
    let (_o, open) = open_port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_canreach"))
        .args([
            "--wait",
            "60s",
            &format!("127.0.0.1:{closed}"),
            &format!("127.0.0.1:{open}"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Killed and reaped on drop, should an assertion fail first.
    let mut guard = common::Started(child);
    std::thread::sleep(Duration::from_millis(1200));
    // SAFETY: signalling the child this test started (and has not reaped), by its pid.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(guard.0.id() as i32, libc::SIGINT);
    }
    let start = Instant::now();
    let (mut stdout, mut stderr) = (String::new(), String::new());
    use std::io::Read;
    guard
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    guard
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = guard.0.wait().unwrap();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(status.code(), Some(130));
    assert!(stderr.contains("interrupted after"), "{stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{closed}  closed (last of")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("127.0.0.1:{open}  open (1 check)")),
        "{stderr}"
    );
    assert!(stdout.is_empty());
}

/// Ctrl-C before the first check (here while the targets are still being read from stdin)
/// still says where each target stood, and exits 130 (issue 21, item 19).
#[test]
fn ctrl_c_before_the_first_check_still_says_where_each_target_stood() {
    use std::io::{Read, Write};
    let (_c, closed) = closed_port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_canreach"))
        .args(["--wait", "60s", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut guard = common::Started(child);
    // canreach is reading its targets (none written yet): no check has started. The signal
    // is sent once it holds SIGINT back: before that (the program still loading, under load
    // for more than a fixed sleep) the default action would end it, which no program can
    // prevent.
    sigint_held(guard.0.id());
    // SAFETY: signalling the child this test started (and has not reaped), by its pid.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(guard.0.id() as i32, libc::SIGINT);
    }
    std::thread::sleep(Duration::from_millis(100));
    // Then the targets come (to a process that is gone, without the fix: a broken pipe).
    let mut stdin = guard.0.stdin.take().unwrap();
    let _ = writeln!(stdin, "127.0.0.1:{closed}");
    drop(stdin);
    let mut stderr = String::new();
    guard
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = guard.0.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}: {stderr}");
    assert!(stderr.contains("interrupted after"), "{stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{closed}  not checked yet")),
        "{stderr}"
    );
}

/// Wait until process `pid` holds SIGINT back or has a handler for it (its /proc status:
/// `SigBlk`/`SigCgt`, hexadecimal masks, SIGINT their bit 1).
fn sigint_held(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let mask = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
                .unwrap_or(0)
        };
        if (mask("SigBlk:") | mask("SigCgt:")) & (1 << (libc::SIGINT - 1)) != 0 {
            return;
        }
        assert!(Instant::now() < deadline, "SIGINT never held: {status}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A loopback listener that takes every connection and holds it without a byte (a TLS
/// handshake to it waits) until `release` is sent; from then on it closes them.
fn held_until_released() -> (String, std::sync::mpsc::Sender<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    l.set_nonblocking(true).unwrap();
    let (release, released) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        let mut open = true;
        let until = Instant::now() + Duration::from_secs(120);
        while Instant::now() < until {
            if open && released.try_recv().is_ok() {
                open = false;
                held.clear();
            }
            match l.accept() {
                Ok((c, _)) if open => held.push(c),
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    (port, release)
}

#[test]
fn many_json_reports_are_written_as_they_complete_in_input_order() {
    // 9,999 loopback ports (20000-29998: below the ephemeral range, closed unless another
    // program listens there; the verdicts do not matter here), then a check that cannot end
    // until this test lets it: a TLS handshake with a server that holds it. Every earlier
    // report must reach the reader while that last check still waits: written as each
    // completes (in input order, through the bounded window), not all at the end.
    let (port, release) = held_until_released();
    let mut list: String = (20000..29999).map(|p| format!("127.0.0.1:{p}\n")).collect();
    list.push_str(&format!("https://127.0.0.1:{port}/\n"));
    let file = temp_file("ten-thousand.txt", list.as_bytes());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_canreach"))
        .args(["--json", "--no-proxy", "--timeout", "60s", "-f"])
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let input = |line: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["target"]["input"].as_str().unwrap().to_string()
    };
    for p in 20000..29999 {
        let line = lines
            .recv_timeout(Duration::from_secs(50))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("no report for port {p} while the last target's check was held")
            });
        assert_eq!(input(&line), format!("127.0.0.1:{p}"), "input order");
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the last check was still held"
    );
    release.send(()).unwrap();
    let last = lines.recv_timeout(Duration::from_secs(50)).unwrap();
    assert_eq!(input(&last), format!("https://127.0.0.1:{port}/"));
    assert!(lines.recv_timeout(Duration::from_secs(10)).is_err());
    child.wait().unwrap();
}

/// `canreach ARGS` under `prlimit --nofile=LIMIT` (`SOFT:HARD`); `None` without prlimit.
fn with_open_files(limit: &str, args: &[&str]) -> Option<std::process::Output> {
    let out = std::process::Command::new("prlimit")
        .arg(format!("--nofile={limit}"))
        .arg(env!("CARGO_BIN_EXE_canreach"))
        .args(args)
        .output();
    match out {
        Ok(o) => Some(o),
        Err(_) if std::env::var("CANREACH_REQUIRE_LAB").as_deref() == Ok("1") => {
            panic!("needs prlimit (util-linux)")
        }
        Err(_) => {
            eprintln!("SKIPPED: no prlimit (util-linux)");
            None
        }
    }
}

#[test]
fn a_low_open_file_limit_still_checks_every_target() {
    // `ulimit -n 64` in a shell: soft and hard 64. 100 targets, of which 64 at once would
    // have needed more descriptors than that: the run is sized to what there is.
    let (_held, closed) = closed_port();
    let (_l, open) = open_port();
    let mut list: String = (20100..20198).map(|p| format!("127.0.0.1:{p}\n")).collect();
    list.push_str(&format!("127.0.0.1:{closed}\n127.0.0.1:{open}\n"));
    let file = temp_file("hundred.txt", list.as_bytes());
    let Some(out) = with_open_files("64", &["--json", "-f", file.to_str().unwrap()]) else {
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_ne!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    let reports: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reports.len(), 100, "{stdout}");
    for r in &reports {
        assert!(!r.to_string().contains("EMFILE"), "{r}");
    }
    assert_eq!(reports[98]["verdict"], "closed");
    assert_eq!(reports[99]["verdict"], "open");
}

#[test]
fn a_low_soft_open_file_limit_is_raised_to_the_hard_one() {
    // A soft limit of 12 (too few to start) under a hard one of 4096: raised at start.
    let (_held, closed) = closed_port();
    let Some(out) = with_open_files("12:4096", &["--json", "127.0.0.1", &closed]) else {
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "closed");
}

#[test]
fn a_command_run_afterwards_gets_the_open_file_limit_it_was_given() {
    let (_l, open) = open_port();
    let Some(out) = with_open_files(
        "200:4096",
        &["-q", "127.0.0.1", &open, "--", "sh", "-c", "ulimit -Sn"],
    ) else {
        return;
    };
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "200");
}
