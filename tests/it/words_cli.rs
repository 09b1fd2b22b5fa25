//! canreach's own words at the edges, through the binary: a TLS alert is told by its standard
//! name and meaning (never rustls's spelling), and a process that calls itself a known server
//! is named with its executable. Servers run on 127.0.0.1 in this test process.

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use common::{check_report, run_in};

/// A server that answers every ClientHello with one fatal TLS alert record of number `alert`.
fn alert_server(alert: u8) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
                let mut buf = [0u8; 4096];
                // The ClientHello (one read is enough: the alert ends the handshake anyway).
                if matches!(s.read(&mut buf), Ok(n) if n > 0) {
                    let _ = s.write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, alert]);
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
        }
    });
    addr
}

fn finding_message(v: &serde_json::Value, id: &str) -> String {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {v}"))["message"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn an_unrecognized_name_alert_is_told_in_canreachs_words() {
    let addr = alert_server(112);
    let url = format!("https://127.0.0.1:{}/", addr.port());
    let run = run_in(None, &["--json", &url]);
    check_report(&run.stdout);
    let v = run.json();
    assert_eq!(v["verdict"], "tls_error", "{v}");
    let m = finding_message(&v, "tls_failed");
    assert!(m.contains("does not know the name"), "{m}");
    assert!(m.contains("alert unrecognized_name"), "{m}");
    assert!(!m.contains("UnrecognisedName"), "rustls's spelling: {m}");
    assert_eq!(
        v["probes"][0]["session"]["tls"]["alert"],
        "unrecognized_name"
    );
    assert!(!run.stdout.contains("AlertReceived"), "{}", run.stdout);

    let text = run_in(None, &[&url]);
    check_report(&text.stdout);
    // The text report wraps its lines.
    let flat = text.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("alert unrecognized_name"), "{}", text.stdout);
    assert!(!text.stdout.contains("UnrecognisedName"), "{}", text.stdout);
    assert!(
        !text.stdout.contains("received fatal alert"),
        "{}",
        text.stdout
    );
}

#[test]
fn a_protocol_version_alert_is_a_mismatch_with_its_standard_name() {
    let addr = alert_server(70);
    let url = format!("https://127.0.0.1:{}/", addr.port());
    let run = run_in(None, &["--json", &url]);
    check_report(&run.stdout);
    let v = run.json();
    let m = finding_message(&v, "tls_protocol_mismatch");
    assert!(m.contains("alert protocol_version"), "{m}");
    assert!(!m.contains("ProtocolVersion"), "{m}");
}

#[test]
fn an_alert_outside_the_registry_keeps_its_number() {
    let addr = alert_server(200);
    let url = format!("https://127.0.0.1:{}/", addr.port());
    let run = run_in(None, &["--json", &url]);
    check_report(&run.stdout);
    let v = run.json();
    let m = finding_message(&v, "tls_failed");
    assert!(m.contains("alert number 200"), "{m}");
    assert!(!m.contains("Unknown("), "{m}");
    assert_eq!(v["probes"][0]["session"]["tls"]["alert"], "alert 200");
}

/// A copy of `sleep` (or `sleep` itself) that holds a listening socket on 127.0.0.1 as its
/// stdin, started as `argv0`: the only process that owns the port. Killed (by its id) on drop.
struct Impostor {
    child: std::process::Child,
    port: u16,
    dir: Option<std::path::PathBuf>,
}

impl Impostor {
    fn start(program: &std::path::Path, argv0: &str, dir: Option<std::path::PathBuf>) -> Self {
        use std::os::unix::process::CommandExt;
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mut cmd = std::process::Command::new(program);
        cmd.arg0(argv0)
            .arg("60")
            .stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(l)));
        // A freshly copied executable can be busy (ETXTBSY) while a child forked by another
        // test thread still holds the copy's write descriptor until it execs: try again.
        let mut tries = 0;
        let child = loop {
            match cmd.spawn() {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                r => break r.unwrap(),
            }
        };
        drop(cmd);
        // The test process no longer holds the socket: the Command (and its copy) is gone.
        Impostor { child, port, dir }
    }
}

impl Drop for Impostor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn sleep_path() -> std::path::PathBuf {
    std::fs::canonicalize("/usr/bin/sleep")
        .or_else(|_| std::fs::canonicalize("/bin/sleep"))
        .unwrap()
}

fn listener_process(v: &serde_json::Value) -> &serde_json::Value {
    &v["local"]["listeners"][0]["process"]
}

#[test]
fn a_process_that_calls_itself_postgres_is_named_with_its_executable() {
    let sleep = sleep_path();
    let imp = Impostor::start(&sleep, "postgres", None);
    let port = imp.port.to_string();
    let run = run_in(None, &["--json", "--tcp", "127.0.0.1", &port]);
    check_report(&run.stdout);
    let v = run.json();
    let p = listener_process(&v);
    if p.is_null() {
        // Without root another user's /proc may hide it; this process is ours, so it is seen.
        panic!("the owner was not found: {v}");
    }
    assert_eq!(p["pid"], imp.child.id());
    assert_eq!(p["exe"], sleep.to_str().unwrap(), "{p}");
    let m = finding_message(&v, "owner_name_mismatch");
    assert!(m.contains("calls itself postgres"), "{m}");
    assert!(m.contains(&format!("but runs {}", sleep.display())), "{m}");
    assert!(m.contains(&format!("pid {}", imp.child.id())), "{m}");
}

#[test]
fn a_hostile_executable_path_is_escaped_in_text_and_kept_exact_in_json() {
    // A copy of sleep in a directory whose name carries an ESC sequence and a bidi override.
    let dir = std::env::temp_dir().join(format!(
        "canreach-words-{}-\u{1b}[31m\u{202e}x",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("evil");
    crate::common::copy_program(sleep_path(), &exe).unwrap();
    let imp = Impostor::start(&exe, "postgres", Some(dir.clone()));
    let port = imp.port.to_string();

    let run = run_in(None, &["--json", "--tcp", "127.0.0.1", &port]);
    check_report(&run.stdout);
    let v = run.json();
    assert_eq!(listener_process(&v)["exe"], exe.to_str().unwrap());
    assert!(finding_message(&v, "owner_name_mismatch").contains("/evil"));
    assert!(!run.stdout.contains('\u{1b}'), "raw ESC in JSON");

    let text = run_in(None, &["--tcp", "127.0.0.1", &port]);
    check_report(&text.stdout);
    assert!(
        !text.stdout.contains('\u{1b}'),
        "raw ESC: {:?}",
        text.stdout
    );
    assert!(!text.stdout.contains('\u{202e}'), "raw bidi override");
    let flat = text.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("calls itself postgres"), "{}", text.stdout);
    assert!(
        text.stdout.contains("\\x1b[31m\\u{202e}x/evil"),
        "{}",
        text.stdout
    );
}
