//! The binary as a user meets it: bad input, exit codes, JSON shape, `--help`.
//! Only loopback is contacted; no root needed.

use crate::common;

use std::net::TcpListener;

use assert_cmd::Command;
use assert_cmd::assert::OutputAssertExt as _;
use predicates::prelude::*;

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

/// A port on 127.0.0.1 where nothing listens, held for as long as the returned socket lives:
/// bound without SO_REUSEADDR and not listening, so no other test can take it, and a connection
/// to it gets a reset.
fn closed_port() -> (socket2::Socket, String) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let port = s.local_addr().unwrap().as_socket().unwrap().port();
    (s, port.to_string())
}

#[test]
fn bad_input_is_one_line_on_stderr_and_exit_2() {
    let long = "a".repeat(300);
    let cases: &[(&[&str], &str)] = &[
        (&["host", "0"], "port 0"),
        (&["host", "-1"], "out of range"),
        (&["host", "70000"], "out of range"),
        (&["host:99999"], "out of range"),
        (&["", "80"], "no host"),
        (&[":", "80"], "no host"),
        (&["bad..name", "80"], "not a valid host name"),
        (&["bad_host!", "80"], "not a valid host name"),
        (&["http://"], "not a valid URL"),
        (&["[::1", "80"], "unclosed"),
        (&["[::1]x"], "after `]`"),
        (&[&long, "80"], "300 characters"),
        (&["host", "nosuchservice"], "unknown port or service"),
        (&["host"], "no port given"),
        (&["host:22", "23"], "two different ports"),
        (&["--timeout", "0", "host", "22"], "out of range"),
        (&["--nosuchflag", "host", "22"], "unexpected argument"),
        (&["host", "22", "extra"], "no port given for extra"),
        (&["--color", "sometimes", "host", "22"], "invalid value"),
    ];
    for (args, says) in cases {
        let out = canreach()
            .args(*args)
            .output()
            .map(common::checked)
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{args:?}: one line, got {stderr:?}"
        );
        assert!(stderr.starts_with("canreach: "), "{args:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{args:?}: expected {says:?} in {stderr:?}"
        );
    }
}

#[test]
fn no_arguments_names_what_is_missing_and_exits_2() {
    let out = canreach().output().map(common::checked).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("<TARGET>"), "{stderr}");
}

#[test]
fn help_lists_forms_and_exit_codes() {
    let out = canreach()
        .arg("--help")
        .output()
        .map(common::checked)
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    // Off a terminal, the help is laid out for 80 columns (issue 21).
    for l in help.lines() {
        assert!(
            unicode_width::UnicodeWidthStr::width(l) <= 80,
            "{} columns: {l}",
            unicode_width::UnicodeWidthStr::width(l)
        );
    }
    insta::assert_snapshot!(help);
}

#[test]
fn version() {
    canreach()
        .arg("--version")
        .output()
        .map(common::checked)
        .unwrap()
        .assert()
        .success()
        .stdout(predicate::str::starts_with("canreach "));
}

#[test]
fn open_port_exits_0_with_the_json_contract() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let bound = l.local_addr().unwrap();
    // Its program takes the connection: one that never does is not open.
    let _l = common::Accepting::start(l);
    let out = canreach()
        .args(["--json", "127.0.0.1", &port])
        .output()
        .map(common::checked)
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema_version"], 2);
    assert_eq!(v["verdict"], "open");
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["target"]["host"], "127.0.0.1");
    assert_eq!(v["target"]["port"], bound.port());
    assert_eq!(v["dns"]["source"], "literal");
    assert_eq!(v["dns"]["addresses"][0], "127.0.0.1");
    let p = &v["probes"][0];
    assert_eq!(p["family"], "ipv4");
    assert_eq!(p["outcome"], "open");
    assert!(p["elapsed_ms"].as_f64().unwrap() >= 0.0);
    assert!(v["summary"].as_str().unwrap().ends_with('.'));
    assert!(v["findings"].as_array().unwrap().is_empty());
    assert!(v["elapsed_ms"].is_number());
}

#[test]
fn closed_port_exits_4_and_explains() {
    let (_held, port) = closed_port();
    let out = canreach()
        .args(["--json", "127.0.0.1", &port])
        .output()
        .map(common::checked)
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "closed");
    let f = &v["findings"][0];
    assert_eq!(f["id"], "port_closed");
    assert_eq!(f["severity"], "error");
    // 127.0.0.1 is this machine: its socket table was read, and says why.
    assert!(v["local"]["listeners"].as_array().unwrap().is_empty());
    assert_eq!(v["findings"][1]["id"], "nothing_listens_here");
    // Its steps are planned once, at the top level, and point back at it.
    let steps = v["findings"][1]["steps"].as_array().unwrap();
    assert!(!steps.is_empty());
    let n = steps[0].as_u64().unwrap() as usize;
    let step = &v["advice"][n - 1];
    assert_eq!(step["step"], n);
    assert!(
        step["findings"]
            .as_array()
            .unwrap()
            .contains(&"nothing_listens_here".into())
    );
}

#[test]
fn text_report_has_headline_steps_and_evidence() {
    let (_held, port) = closed_port();
    canreach()
        .args(["127.0.0.1", &port])
        .output()
        .map(common::checked)
        .unwrap()
        .assert()
        .code(4)
        .stdout(predicate::str::starts_with(format!(
            "✗ CLOSED  127.0.0.1:{port}"
        )))
        .stdout(predicate::str::contains("What was checked"))
        .stdout(predicate::str::contains("TCP reset after"))
        .stdout(predicate::str::contains(format!(
            "nothing listens on port {port}"
        )))
        .stdout(predicate::str::contains("Next steps"))
        .stdout(predicate::str::contains("\x1b[").not());
}

#[test]
fn a_bare_port_shows_who_listens_here() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let _l = common::Accepting::start(l);
    let out = canreach()
        .args(["--json", &format!(":{port}")])
        .output()
        .map(common::checked)
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mine = &v["local"]["listeners"][0];
    assert_eq!(mine["address"], "127.0.0.1");
    assert_eq!(mine["port"], port);
    // This test process owns the socket; its process is visible to its own user.
    assert_eq!(mine["process"]["pid"], std::process::id());
    // `:PORT` checks what `localhost` gives: where that is ::1 too, a listener on 127.0.0.1
    // only leaves it refused (the `localhost` trap); where it is not, ::1 is nobody's
    // concern (tests/it/lab_local.rs).
    let probed: Vec<&str> = v["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["address"].as_str().unwrap())
        .collect();
    assert!(probed.contains(&"127.0.0.1"), "{probed:?}");
    if probed.contains(&"::1") {
        assert_eq!(out.status.code(), Some(3), "{}", v["summary"]);
        let ids: Vec<&str> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap())
            .collect();
        assert!(ids.contains(&"listens_on_other_family"), "{ids:?}");
    } else {
        assert_eq!(out.status.code(), Some(0));
    }
}

#[test]
fn a_bare_port_with_a_dual_stack_listener_is_open_everywhere() {
    let Ok(l) = TcpListener::bind("[::]:0") else {
        return; // no IPv6 on this machine: nothing to show
    };
    let port = l.local_addr().unwrap().port();
    let _l = common::Accepting::start(l);
    let out = canreach()
        .args(["--json", &format!(":{port}")])
        .output()
        .map(common::checked)
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", v["summary"]);
}

#[test]
fn color_is_on_only_when_asked_or_on_a_terminal() {
    let (_held, port) = closed_port();
    canreach()
        .args(["--color", "always", "127.0.0.1", &port])
        .output()
        .map(common::checked)
        .unwrap()
        .assert()
        .stdout(predicate::str::contains("\x1b["));
    // Not a terminal, auto: no colour, whatever NO_COLOR says.
    canreach()
        .env_remove("NO_COLOR")
        .args(["127.0.0.1", &port])
        .output()
        .map(common::checked)
        .unwrap()
        .assert()
        .stdout(predicate::str::contains("\x1b[").not());
    // JSON never has colour.
    canreach()
        .args(["--color", "always", "--json", "127.0.0.1", &port])
        .output()
        .map(common::checked)
        .unwrap()
        .assert()
        .stdout(predicate::str::contains("\x1b[").not());
}

#[test]
fn forms_of_the_target_reach_the_same_port() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let _l = common::Accepting::start(l);
    for args in [
        vec![format!("127.0.0.1:{port}")],
        vec!["127.0.0.1".to_string(), port.to_string()],
        // --tcp: this listener never answers HTTP (that is `service_error`, tested elsewhere).
        vec![format!("http://127.0.0.1:{port}/path?q=1"), "--tcp".into()],
    ] {
        canreach()
            .arg("--json")
            .args(&args)
            .output()
            .map(common::checked)
            .unwrap()
            .assert()
            .code(0);
    }
}

#[test]
fn ipv6_loopback_works_when_the_machine_has_it() {
    let Ok(l) = TcpListener::bind("[::1]:0") else {
        eprintln!("SKIPPED: this machine has no ::1");
        return;
    };
    let port = l.local_addr().unwrap().port().to_string();
    let _l = common::Accepting::start(l);
    canreach()
        .args(["--json", "::1", &port])
        .output()
        .map(common::checked)
        .unwrap()
        .assert()
        .code(0);
    canreach()
        .args([&format!("[::1]:{port}")])
        .output()
        .map(common::checked)
        .unwrap()
        .assert()
        .code(0);
}

#[test]
fn running_out_of_file_descriptors_is_an_internal_error_not_a_verdict() {
    // Six descriptors: the runtime starts, the probe's socket() fails with EMFILE.
    let Ok(out) = std::process::Command::new("prlimit")
        .args([
            "--nofile=6",
            env!("CARGO_BIN_EXE_canreach"),
            "--no-local",
            "127.0.0.1",
            "1",
        ])
        .output()
        .map(common::checked)
    else {
        eprintln!("SKIPPED: no prlimit (util-linux)");
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("EMFILE") && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_closed_pipe_keeps_the_verdicts_exit_code() {
    let (_held, port) = closed_port();
    // `true` exits at once: canreach's report meets a closed pipe (EPIPE), which is no reason
    // to change the answer a script reads from the exit code.
    let out = std::process::Command::new("bash")
        .args([
            "-c",
            &format!(
                "sleep 0.05 | {} --json 127.0.0.1 {port} | true; echo ${{PIPESTATUS[1]}}",
                env!("CARGO_BIN_EXE_canreach")
            ),
        ])
        .output()
        .unwrap();
    let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(
        code,
        "4",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The text report on a terminal `cols` wide (a pseudo-terminal made by `script`, util-linux):
/// the report's lines, colour off.
fn on_a_terminal(cols: u16, args: &str) -> String {
    let out = std::process::Command::new("script")
        .args([
            "-qec",
            &format!(
                "stty rows 40 cols {cols}; {} --color never {args}",
                env!("CARGO_BIN_EXE_canreach")
            ),
            "/dev/null",
        ])
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

/// On a terminal the report wraps at its width; off one (a pipe, every other test) at 80
/// (issue 21, item 16).
#[test]
fn the_report_wraps_at_the_terminals_width() {
    let (_held, port) = closed_port();
    let args = format!(
        "--help; {} 127.0.0.1 {port}",
        env!("CARGO_BIN_EXE_canreach")
    );
    let widest = |s: &str| {
        s.lines()
            .map(unicode_width::UnicodeWidthStr::width)
            .max()
            .unwrap_or(0)
    };
    let narrow = on_a_terminal(60, &args);
    assert!(narrow.contains("What was checked"), "{narrow}");
    assert!(widest(&narrow) <= 60, "{narrow}");
    assert!(widest(&narrow) > 50, "the width is used: {narrow}");
    let wide = on_a_terminal(150, &args);
    assert!(widest(&wide) > 80, "a wide terminal is used: {wide}");
    assert!(widest(&wide) <= 150, "{wide}");
}

/// `canreach --man | man -l -`: the examples and the exit codes stay in their lines and
/// columns (preformatted), and the page fits 80 columns (issue 21, item 19). Read with groff
/// (groff-base), as `man` does.
#[test]
fn the_man_page_keeps_the_examples_and_exit_codes_as_written() {
    let man = canreach().arg("--man").output().unwrap();
    assert_eq!(man.status.code(), Some(0));
    let mut groff = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-rLL=80n", "-P-cbou"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("groff (groff-base) reads the page");
    std::io::Write::write_all(groff.stdin.as_mut().unwrap(), &man.stdout).unwrap();
    drop(groff.stdin.take());
    let out = groff.wait_with_output().unwrap();
    let page = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = page.lines().map(str::trim).collect();
    let exit_codes = canreach::exit_codes::help_text();
    for block in [canreach::cli::EXAMPLES, &exit_codes[..]] {
        for want in block.lines().map(str::trim) {
            assert!(lines.contains(&want), "{want:?} is not a line of:\n{page}");
        }
    }
    for l in page.lines() {
        assert!(unicode_width::UnicodeWidthStr::width(l) <= 80, "{l}");
    }
}
