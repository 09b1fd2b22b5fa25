//! The binary against hostile input: control characters and secrets on the command line never
//! reach the terminal or the report. Only loopback is contacted; no root needed.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use assert_cmd::Command;

use crate::common;

fn canreach() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_canreach"));
    // URL targets follow proxy variables: the CI machine's must not decide a test.
    for k in common::PROXY_VARS {
        c.env_remove(k);
    }
    c.env("NO_COLOR", "1")
        .timeout(std::time::Duration::from_secs(20));
    c
}

/// A port on 127.0.0.1 where nothing listens, held while the socket lives (bound, not
/// listening: a connection gets a reset).
fn closed_port() -> (socket2::Socket, u16) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let port = s.local_addr().unwrap().as_socket().unwrap().port();
    (s, port)
}

/// Any byte a terminal could act on, other than the final newline.
fn has_control(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let body = text.strip_suffix('\n').unwrap_or(&text);
    body.chars().any(|c| {
        c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200b}'..='\u{200f}')
    })
}

fn one_usage_line(args: &[&OsStr]) -> String {
    let out = canreach().args(args).output().map(common::checked).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr:?}");
    assert!(stderr.ends_with('\n'));
    assert!(
        !out.stderr.contains(&0x1b),
        "{args:?}: raw ESC in {stderr:?}"
    );
    assert!(!has_control(&out.stderr), "{args:?}: {stderr:?}");
    stderr
}

#[test]
fn control_characters_in_arguments_are_refused_and_shown_escaped() {
    let cases: &[(&str, &str)] = &[
        ("a\x1b[31mb", "80"),
        ("db.example", "\x1b]0;pwned\x07"),
        ("db\rOK  reachable", "80"),
        ("db\nexample", "80"),
        ("http://ex\tample.com", "80"),
        ("exe\u{202e}txt.example", "80"),
        ("a\u{9b}2Jb", "80"),
        ("zero\u{200b}width.example", "80"),
    ];
    for (target, port) in cases {
        let stderr = one_usage_line(&[OsStr::new(target), OsStr::new(port)]);
        assert!(
            stderr.contains("control or invisible character"),
            "{stderr}"
        );
    }
    let stderr = one_usage_line(&[OsStr::new("a\x1b[31mb"), OsStr::new("80")]);
    assert!(
        stderr.contains("a\\x1b[31mb"),
        "the character is named: {stderr}"
    );
}

#[test]
fn bytes_that_are_not_utf8_are_a_usage_error_without_raw_bytes() {
    one_usage_line(&[OsStr::from_bytes(b"db\xff\x1b[2J"), OsStr::new("80")]);
}

#[test]
fn errors_never_echo_a_password_or_token() {
    for target in [
        "postgres://app:s3cr3tpw@db:99999/x",
        "nosuchscheme://app:s3cr3tpw@db/",
        "https://app:s3cr3tpw@bad..host/",
        "https://h:bad/?token=s3cr3tpw",
    ] {
        let stderr = one_usage_line(&[OsStr::new(target)]);
        assert!(!stderr.contains("s3cr3tpw"), "{stderr}");
    }
}

#[test]
fn reports_never_show_a_password_or_token() {
    let (_held, port) = closed_port();
    let target = format!("http://app:s3cr3tpw@127.0.0.1:{port}/x?api_key=s3cr3tpw&page=2");
    for json in [false, true] {
        let mut c = canreach();
        if json {
            c.arg("--json");
        }
        let out = c
            .args([&target, "--timeout", "2s"])
            .output()
            .map(common::checked)
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains("s3cr3tpw"), "{all}");
        assert!(!out.stdout.is_empty(), "a report was written");
        if json {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(
                v["target"]["input"],
                format!("http://app:***@127.0.0.1:{port}/x?api_key=***&page=2")
            );
        }
    }
}

/// What a hostile server puts in everything it sends: a bidi override, an isolate, a C1 CSI,
/// DEL, a zero-width mark.
pub(crate) const HOSTILE: &str = "evil\u{202e}gnp.exe\u{2066}x\u{2069}\u{9b}2J\u{7f}\u{200e}";

/// Every character a terminal acts on or that reorders text, raw in `s` (newlines aside).
pub(crate) fn raw_characters(s: &str) -> Vec<char> {
    s.chars()
        .filter(|c| *c != '\n' && (c.is_control() || canreach::escape::needs_escape(*c)))
        .collect()
}

/// The sentences of a JSON report: what people read.
fn sentences(v: &serde_json::Value) -> Vec<String> {
    let mut out = vec![v["summary"].as_str().unwrap().to_string()];
    for f in v["findings"].as_array().unwrap() {
        out.push(f["message"].as_str().unwrap().to_string());
    }
    for s in v["advice"].as_array().unwrap() {
        out.push(s["text"].as_str().unwrap().to_string());
        if let Some(c) = s["command"].as_str() {
            out.push(c.to_string());
        }
    }
    out
}

/// A greeting, an HTTP answer's head and a certificate's names from real servers on
/// loopback, each full of hostile characters: no format writes one raw, the JSON's sentences
/// are escaped as the text's are, and the redirect's credentials are masked.
#[test]
fn a_hostile_server_is_shown_escaped_in_every_format() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let banner = common::serve_each(|mut s| async move {
        let line = format!("SSH-2.0-{HOSTILE}\r\n");
        let _ = s.write_all(line.as_bytes()).await;
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    });
    let http = common::serve_each(|mut s| async move {
        let mut buf = [0u8; 2048];
        let _ = s.read(&mut buf).await;
        let head = format!(
            "HTTP/1.1 503 Unavailable {HOSTILE}\r\nServer: {HOSTILE}\r\nVia: 1.1 {HOSTILE}\r\n\
             Location: https://admin:s3cr3tpw@host/next?token=s3cr3tpw\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .replace('\u{7f}', "");
        let _ = s.write_all(head.as_bytes()).await;
    });
    let tls = common::tls::ca_signed(&format!("CA {HOSTILE}"), vec!["127.0.0.1".into()]);
    let acceptor = tls.acceptor.clone();
    let tls_addr = common::serve_each(move |s| {
        let acceptor = acceptor.clone();
        async move {
            let _ = acceptor.accept(s).await;
        }
    });
    let targets = [
        format!("127.0.0.1:{}", banner.port()),
        format!("http://127.0.0.1:{}/", http.port()),
        format!("https://127.0.0.1:{}/", tls_addr.port()),
    ];
    for t in &targets {
        for format in [
            &["--format", "text"][..],
            &["--json"],
            &["--format", "markdown"],
        ] {
            let mut args: Vec<&str> = format.to_vec();
            args.extend(["--no-local", "--timeout", "3s", t]);
            // A greeting is watched for a few milliseconds on loopback: on a loaded machine
            // this process's server may send it later. Try again, a few times.
            let r = (0..5)
                .map(|_| common::run_in(None, &args))
                .find(|r| r.stdout.contains("evil"))
                .unwrap_or_else(|| panic!("{args:?}: the server's words were never seen"));
            let all = format!("{}{}", r.stdout, r.stderr);
            assert!(
                raw_characters(&all).is_empty(),
                "{args:?}: raw {:?} in\n{all}",
                raw_characters(&all)
            );
            assert!(!all.contains("s3cr3tpw"), "{args:?}: a secret in\n{all}");
            assert!(!r.stdout.is_empty(), "{args:?}: {}", r.stderr);
            if format[0] == "--json" {
                let v = r.json();
                for s in sentences(&v) {
                    assert!(raw_characters(&s).is_empty(), "{args:?}: {s:?}");
                }
                // What the server sent is quoted, escaped, in a finding.
                assert!(
                    v["findings"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|f| f["message"].as_str().unwrap().contains("\\u{202e}")),
                    "{args:?}: {}",
                    r.stdout
                );
            }
        }
    }
    // The redirect: its data kept, its secrets masked.
    let r = common::run_in(None, &["--json", "--no-local", &targets[1]]);
    let v = r.json();
    let h = &v["probes"][0]["session"]["http"];
    assert_eq!(
        h["location"], "https://admin:***@host/next?token=***",
        "{}",
        r.stdout
    );
    assert!(
        h["server"].as_str().unwrap().contains('\u{202e}'),
        "a data field keeps the value as received: {h}"
    );
    // Several targets: the table, then the reports.
    let mut args = vec!["--no-local", "--timeout", "3s"];
    args.extend(targets.iter().map(String::as_str));
    let r = common::run_in(None, &args);
    assert!(r.stdout.starts_with("TARGET"), "{}", r.stdout);
    assert!(raw_characters(&r.stdout).is_empty(), "{}", r.stdout);
}

/// A program listening on loopback, started with `args` after perl's own (perl ignores them):
/// its command line is what canreach reads from /proc. Killed when dropped.
fn listener_with_args(args: &[&str]) -> (common::Started, u16) {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = std::process::Command::new("perl")
        .args([
            "-MIO::Socket::INET",
            "-e",
            "$s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $ARGV[0], \
             Listen => 5, ReuseAddr => 1) or die $!; $| = 1; print qq(ready\\n); sleep 30",
            &port.to_string(),
        ])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("perl (perl-base) runs the listener");
    let mut child = common::Started(child);
    let mut ready = [0u8; 6];
    std::io::Read::read_exact(child.0.stdout.as_mut().unwrap(), &mut ready).unwrap();
    assert_eq!(&ready, b"ready\n");
    (child, port)
}

/// A listener's command line holding every shape of secret of issue 21 (and a path that is
/// not one, and hostile characters): masked and escaped in the text and JSON reports.
#[test]
fn a_listeners_command_line_shows_no_secret() {
    let (_l, port) = listener_with_args(&[
        "--password",
        "-s3cr3tpw",
        "--env=DB_PASSWORD=s3cr3tpw",
        "--config={\"password\":\"s3cr3tpw\"}",
        "PASSWORD = s3cr3tpw",
        "user:s3cr3tpw@tcp(db:3306)/app",
        "//u:s3cr3tpw@h/",
        "-H",
        "X-Api-Key: s3cr3tpw",
        "-H",
        "Cookie: sid=s3cr3tpw",
        "--credentials",
        "s3cr3tpw",
        "--jwt",
        "s3cr3tpw",
        "--bearer",
        "s3cr3tpw",
        "--cookie",
        "s3cr3tpw",
        "--session-id",
        "s3cr3tpw",
        "--sas",
        "s3cr3tpw",
        "-key",
        "cert.pem",
        HOSTILE,
    ]);
    let target = format!(":{port}");
    let r = common::run_in(None, &["--json", "--tcp", &target]);
    let v = r.json();
    let cmdline = v["local"]["listeners"][0]["process"]["cmdline"]
        .as_str()
        .unwrap_or_else(|| panic!("the listener's owner is seen: {}", r.stdout));
    assert!(!r.stdout.contains("s3cr3tpw"), "{cmdline}");
    assert!(
        cmdline.contains("-key cert.pem"),
        "a path is kept: {cmdline}"
    );
    assert!(cmdline.contains("--sas ***"), "{cmdline}");
    let r = common::run_in(None, &["--tcp", &target]);
    assert!(!r.stdout.contains("s3cr3tpw"), "{}", r.stdout);
    assert!(raw_characters(&r.stdout).is_empty(), "{}", r.stdout);
}

#[test]
fn a_user_and_password_before_the_host_are_never_echoed() {
    let stderr = one_usage_line(&[OsStr::new("u:s3cr3tpw@host")]);
    assert!(!stderr.contains("s3cr3tpw"), "{stderr}");
    assert!(stderr.contains("u:***@host"), "{stderr}");
    let dir = std::env::temp_dir().join(format!("canreach-f-{}", std::process::id()));
    std::fs::write(&dir, "db 5432\nu:s3cr3tpw@host\n").unwrap();
    let stderr = one_usage_line(&[OsStr::new("-f"), dir.as_os_str()]);
    std::fs::remove_file(&dir).unwrap();
    assert!(!stderr.contains("s3cr3tpw"), "{stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");
}

/// clap's own errors repeat the value typed: one line, its control, bidi and invisible
/// characters escaped (issue 21, item 13).
#[test]
fn usage_errors_from_the_argument_parser_are_escaped() {
    for (args, shown) in [
        (
            &["--completions", "zsh\rcanreach: all good\u{c}"][..],
            "zsh\\x0dcanreach: all good\\x0c",
        ),
        (
            &["--completions", "zsh\u{202e}\u{200e}\u{9b}"],
            "zsh\\u{202e}\\u{200e}\\u{9b}",
        ),
        (&["--format", "te\nxt", "db", "1"], "te\\x0axt"),
        // clap drops a DEL from what it repeats: nothing raw either way.
        (&["--color", "a\u{7f}b", "db", "1"], "--color"),
    ] {
        let os: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let stderr = one_usage_line(&os);
        assert!(stderr.contains(shown), "{args:?}: {stderr}");
    }
}

/// `-t -1s`: a negative deadline, not a port (issue 21, item 19).
#[test]
fn a_negative_timeout_is_named_as_a_timeout() {
    let stderr = one_usage_line(&[
        OsStr::new("-t"),
        OsStr::new("-1s"),
        OsStr::new("localhost"),
        OsStr::new("22"),
    ]);
    assert!(stderr.contains("not a valid deadline"), "{stderr}");
    assert!(!stderr.contains("port"), "{stderr}");
}
