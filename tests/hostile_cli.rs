//! The binary against hostile input: control characters and secrets on the command line never
//! reach the terminal or the report. Only loopback is contacted; no root needed.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use assert_cmd::Command;

mod common;

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
    let out = canreach().args(args).output().unwrap();
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
        let out = c.args([&target, "--timeout", "2s"]).output().unwrap();
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
