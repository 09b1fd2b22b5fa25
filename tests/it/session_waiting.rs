//! The watch of a connection to this machine ends when the program behind the port accepted
//! it and is waiting for the client to speak — every thread of it asleep, the connection
//! still open — and goes on while any of its threads still works. The servers are separate processes (this test binary run again
//! as a server), as a real server is: the program looked at is not the test harness.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{InLab, Lab, ids, run_in};

/// Names the behaviour when this binary runs as a server.
const ROLE: &str = "CANREACH_TEST_SERVER_ROLE";

/// The server side, not a test: the child started by [`Server::start`] runs it (as an
/// ignored test, chosen by name), and it fails when run without a role. Listens on a free
/// loopback port, prints it, and serves every connection.
#[test]
#[ignore = "the server process of session_waiting's tests, which start it"]
fn server_process() {
    let role = std::env::var(ROLE)
        .unwrap_or_else(|_| panic!("runs only as the server of session_waiting's tests ({ROLE})"));
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    println!("port {}", l.local_addr().unwrap().port());
    let mut held = Vec::new();
    for s in l.incoming().flatten() {
        match role.as_str() {
            // A server waiting for its client.
            "hold" => held.push(s),
            // Hands the connection to a worker that computes for a while, then hangs up: the
            // accepting thread is asleep long before the worker is done, so a look at it alone
            // would call the connection open. (2 ms: inside the 5 ms after the accept that
            // the watch falls back to, this proves the look at every thread, not the wait.)
            "work_then_close" => {
                std::thread::spawn(move || {
                    let until = Instant::now() + Duration::from_millis(2);
                    let mut x = 0u64;
                    while Instant::now() < until {
                        x = std::hint::black_box(x.wrapping_add(1));
                    }
                    drop(s);
                });
            }
            // A proxy: dials its backend for each connection and hangs up when that fails.
            r if r.starts_with("proxy_to=") => {
                let backend: std::net::SocketAddr = r["proxy_to=".len()..].parse().unwrap();
                std::thread::spawn(move || {
                    let _ = std::net::TcpStream::connect_timeout(&backend, Duration::from_secs(3));
                    drop(s);
                });
            }
            _ => return,
        }
    }
}

/// A server process, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    exe: std::path::PathBuf,
}

impl Server {
    fn start(role: &str) -> Server {
        Server::start_in(None, role)
    }

    /// The same inside network namespace `ns`.
    fn start_in(ns: Option<&str>, role: &str) -> Server {
        // Under another name: a program whose parent runs the same program is watched with
        // its parent (a pre-forking server's master), and the parent here is the test, busy.
        let me = std::env::current_exe().unwrap();
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("rest-server-{}-{n}", std::process::id());
        let exe = me.with_file_name(name);
        let _ = std::fs::remove_file(&exe);
        std::fs::hard_link(&me, &exe)
            .or_else(|_| crate::common::copy_program(&me, &exe))
            .expect("a copy of the test binary");
        let mut cmd = match ns {
            // `ip netns exec` execs the program: the child is the server.
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let mut child = cmd
            .args([
                "--ignored",
                "--exact",
                "session_waiting::server_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE, role)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn_in_lab()
            .expect("the test binary runs again");
        let out = BufReader::new(child.stdout.take().unwrap());
        let port = out
            .lines()
            .map_while(Result::ok)
            // (After libtest's "test server_process ... " on the same line.)
            .find_map(|l| l.split("port ").nth(1).and_then(|p| p.trim().parse().ok()))
            .expect("the server prints its port");
        Server { child, port, exe }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.exe);
    }
}

/// Held by a test while it runs checks in this machine's own network namespace: a connect
/// begun by another check there (another test's, run in parallel) makes a program's wait
/// unknowable to this one (`local::idle`: any other connect may be the program's own), and a
/// watch whose accept comes late lasts longer and overlaps more of them.
static ROOT_NAMESPACE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn alone_in_this_namespace() -> std::sync::MutexGuard<'static, ()> {
    ROOT_NAMESPACE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Check `target` (inside `ns` if given) up to three times: the program is seen waiting only
/// once the local inspection has found it, which on a loaded machine may come after the
/// window, so one of three checks must show it. Each must be `open`.
fn seen_waiting(ns: Option<&str>, target: &str) -> Result<(), Vec<serde_json::Value>> {
    let mut seen = Vec::new();
    for _ in 0..3 {
        let v = run_in(ns, &["--json", target]).json();
        assert_eq!(v["verdict"], "open", "{v}");
        let session = &v["probes"][0]["session"];
        if let (Some(a), Some(r)) = (
            session["accepted_ms"].as_f64(),
            session["at_rest_ms"].as_f64(),
        ) {
            assert!(r >= a, "waiting after the accept: {session}");
            assert!(
                (session["window_ms"].as_f64().unwrap() - r).abs() < 0.5,
                "the watch ended there: {session}"
            );
            return Ok(());
        }
        seen.push(session.clone());
    }
    Err(seen)
}

#[test]
fn a_program_waiting_for_the_client_ends_the_watch_as_open() {
    let _alone = alone_in_this_namespace();
    let server = Server::start("hold");
    let target = format!("127.0.0.1:{}", server.port);
    if let Err(seen) = seen_waiting(None, &target) {
        panic!("never seen waiting: {seen:?}");
    }
}

/// The worker's 2 ms of computing must end inside the watch's window (8 ms and more) for its
/// hang-up to be seen; on a loaded machine a runnable thread may wait longer than that for a
/// CPU, and the watch then ends at its window, still seeing it work (`open`, never seen waiting).
/// So: never seen waiting for the client while it works, in any check; its hang-up seen in one of three.
#[test]
fn a_worker_still_busy_with_the_connection_is_waited_for() {
    let _alone = alone_in_this_namespace();
    let server = Server::start("work_then_close");
    let target = format!("127.0.0.1:{}", server.port);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let v = run_in(None, &["--json", &target]).json();
        assert!(v["probes"][0]["session"]["at_rest_ms"].is_null(), "{v}");
        if v["verdict"] == "service_error" {
            assert!(ids(&v).contains(&"accepted_then_closed".to_string()), "{v}");
            return;
        }
        assert_eq!(
            v["verdict"], "open",
            "still working at the window's end: {v}"
        );
        seen.push(v);
    }
    panic!("the worker's hang-up was never seen: {seen:#?}");
}

#[test]
fn a_proxy_dialling_its_backend_is_not_called_waiting() {
    require_lab!();
    let lab = Lab::new();
    // The backend's SYNs die in the namespace's own output chain: the proxy's connect stays in
    // flight (SYN_SENT) while every thread of it sleeps. Its backend's refusal could still come
    // and make it hang up: the watch must not end as if it were waiting for its client.
    lab.rule(&lab.client, "output", "tcp dport 9 drop");
    // The control: a server that holds its connections is seen waiting in the same lab.
    let holder = Server::start_in(Some(&lab.client), "hold");
    let held = format!("127.0.0.1:{}", holder.port);
    if let Err(seen) = seen_waiting(Some(&lab.client), &held) {
        panic!("the control was never seen waiting: {seen:?}");
    }
    let server = Server::start_in(Some(&lab.client), "proxy_to=127.0.0.1:9");
    let target = format!("127.0.0.1:{}", server.port);
    let v = run_in(Some(&lab.client), &["--json", &target]).json();
    let session = &v["probes"][0]["session"];
    assert_eq!(v["verdict"], "open", "{v}");
    assert!(session["accepted_ms"].is_number(), "{session}");
    assert!(session["at_rest_ms"].is_null(), "{session}");
}
