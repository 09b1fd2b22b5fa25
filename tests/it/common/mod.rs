//! A network lab for tests: three namespaces, client ─ router ─ server, joined by veth pairs.
//!
//! ```text
//!  client  eth0 198.18.1.2/24 fd00:1::2/64
//!     │
//!  router  eth0 198.18.1.1/24 fd00:1::1/64   eth1 198.18.2.1/24 fd00:2::1/64   (forwarding)
//!     │
//!  server  eth0 198.18.2.2/24 fd00:2::2/64
//! ```
//!
//! Only the RFC 2544 range and fd00::/8 are used, there is no route out of the lab, and every
//! namespace is deleted when the [`Lab`] is dropped (also when the test panics). Listeners are
//! opened *inside* a namespace by a helper thread that joins it with `setns`, so the test owns
//! them and no process is left behind. Lab tests need root; without it they say they are
//! skipped — and fail instead when `CANREACH_REQUIRE_LAB=1` (CI).
//!
//! A lab also has a PID namespace and a mount namespace of its own ([`sandbox::LabSandbox`]):
//! canreach run in it ([`run_in`], [`Lab::canreach`], or any `ip netns exec` of a lab's
//! namespace started with [`InLab`]) sees in /proc only the lab's processes, never the
//! machine's or another test's. A listener the test opens is owned by the test process,
//! which the lab does not see; [`Lab::hold`] gives it an owner there.
#![allow(dead_code)]
// The lab joins namespaces (setns) and checks for root: test-only libc calls.
#![allow(unsafe_code)]

pub mod fake_dns;
pub mod fake_services;
pub mod fleet;
pub mod sandbox;
pub mod services;
pub mod tls;

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use sandbox::InLab;

pub const CLIENT_V4: &str = "198.18.1.2";
pub const ROUTER_V4: &str = "198.18.1.1";
pub const ROUTER_V4_SERVER_SIDE: &str = "198.18.2.1";
pub const SERVER_V4: &str = "198.18.2.2";
pub const ABSENT_V4: &str = "198.18.2.99";
pub const CLIENT_V6: &str = "fd00:1::2";
pub const ROUTER_V6: &str = "fd00:1::1";
pub const SERVER_V6: &str = "fd00:2::2";
pub const ABSENT_V6: &str = "fd00:2::99";
/// Not routed anywhere in the lab.
pub const NOWHERE_V4: &str = "198.19.255.1";

/// Why a lab test cannot run here, or `None` when it can.
pub fn lab_unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root (network namespaces)".into());
    }
    for tool in ["ip", "nft"] {
        if Command::new(tool).arg("-V").output().is_err() {
            return Some(format!(
                "needs `{tool}` (apt-get install iproute2 nftables)"
            ));
        }
    }
    None
}

/// Skip (loudly) or fail when the lab cannot run. Call first in every lab test.
#[macro_export]
macro_rules! require_lab {
    () => {
        if let Some(why) = $crate::common::lab_unavailable() {
            $crate::common::cannot_run(module_path!(), &why);
            return;
        }
    };
}

/// A test that cannot run here says so (SKIPPED, on stderr) before it returns — or fails,
/// when `CANREACH_REQUIRE_LAB=1` (CI, where everything it needs is installed).
pub fn cannot_run(test: &str, why: &str) {
    if std::env::var("CANREACH_REQUIRE_LAB").as_deref() == Ok("1") {
        panic!("{test} cannot run but CANREACH_REQUIRE_LAB=1: {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// The three namespaces. Dropping it deletes them.
pub struct Lab {
    pub client: String,
    pub router: String,
    pub server: String,
    files: Vec<PathBuf>,
    /// The lab's own PID and mount namespaces (see [`sandbox::LabSandbox`]).
    sandbox: Option<sandbox::LabSandbox>,
}

/// A veth pair from `a`'s interface `a_if` to `b`'s interface `b_if`.
fn veth(a: &str, a_if: &str, b: &str, b_if: &str) {
    sh(&[
        "ip", "-n", a, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b,
    ]);
}

/// Copy the program `from` to `to`, executable by anyone. The copy is written by `cp`, a
/// process of its own: a file this test process held open for writing would be inherited,
/// for the moment between fork and exec, by every program another test thread starts, and
/// running the copy while one of them still held it fails with "Text file busy" (ETXTBSY).
pub fn copy_program(
    from: impl AsRef<std::path::Path>,
    to: impl AsRef<std::path::Path>,
) -> std::io::Result<()> {
    let st = Command::new("cp")
        .arg("--")
        .arg(from.as_ref())
        .arg(to.as_ref())
        .stderr(std::process::Stdio::inherit())
        .status()?;
    if !st.success() {
        return Err(std::io::Error::other(format!(
            "cp {} {}: {st}",
            from.as_ref().display(),
            to.as_ref().display()
        )));
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(to.as_ref(), std::fs::Permissions::from_mode(0o755))
}

pub fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Lab {
    pub fn new() -> Lab {
        let id = format!(
            "cr{}x{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let mut lab = Lab {
            client: format!("{id}c"),
            router: format!("{id}r"),
            server: format!("{id}s"),
            files: vec![],
            sandbox: None,
        };
        for ns in [&lab.client, &lab.router, &lab.server] {
            sh(&["ip", "netns", "add", ns]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            // No duplicate-address detection, link-local addresses included: a tentative
            // link-local address delays neighbour discovery by seconds in a fresh namespace.
            sh(&[
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
            ]);
        }
        // Create each veth pair directly inside its namespaces: no names in the root namespace.
        veth(&lab.client, "eth0", &lab.router, "eth0");
        veth(&lab.router, "eth1", &lab.server, "eth0");
        let addrs = [
            (&lab.client, "eth0", "198.18.1.2/24", "fd00:1::2/64"),
            (&lab.router, "eth0", "198.18.1.1/24", "fd00:1::1/64"),
            (&lab.router, "eth1", "198.18.2.1/24", "fd00:2::1/64"),
            (&lab.server, "eth0", "198.18.2.2/24", "fd00:2::2/64"),
        ];
        for (ns, dev, v4, v6) in addrs {
            sh(&["ip", "-n", ns, "addr", "add", v4, "dev", dev]);
            sh(&["ip", "-n", ns, "-6", "addr", "add", v6, "dev", dev, "nodad"]);
            sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        // Routes to the other lab subnet only: nothing leads out of the lab.
        sh(&[
            "ip",
            "-n",
            &lab.client,
            "route",
            "add",
            "198.18.2.0/24",
            "via",
            "198.18.1.1",
        ]);
        sh(&[
            "ip",
            "-n",
            &lab.client,
            "-6",
            "route",
            "add",
            "fd00:2::/64",
            "via",
            "fd00:1::1",
        ]);
        sh(&[
            "ip",
            "-n",
            &lab.server,
            "route",
            "add",
            "198.18.1.0/24",
            "via",
            "198.18.2.1",
        ]);
        sh(&[
            "ip",
            "-n",
            &lab.server,
            "-6",
            "route",
            "add",
            "fd00:1::/64",
            "via",
            "fd00:2::1",
        ]);
        sh(&[
            "ip",
            "netns",
            "exec",
            &lab.router,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
            "net.ipv6.conf.all.forwarding=1",
        ]);
        // The client's resolver points at the router, where nothing answers on port 53:
        // a lookup fails fast inside the lab instead of leaving it.
        lab.etc_file(
            &lab.client.clone(),
            "resolv.conf",
            "nameserver 198.18.1.1\noptions timeout:1 attempts:1\n",
        );
        // Made last: it sees the network namespaces above (mounted in /run/netns) in its copy
        // of the mounts.
        let sandbox = sandbox::LabSandbox::new();
        sandbox::register(&[&lab.client, &lab.router, &lab.server], &sandbox);
        lab.sandbox = Some(sandbox);
        lab
    }

    /// Hand `socket` to a process of this lab (a `sleep` holding it as its stdin), in
    /// namespace `ns`: canreach, which sees only the lab's processes, then finds it as the
    /// socket's owner. The test keeps its own copy, to accept on or not.
    pub fn hold(&self, ns: &str, socket: &impl std::os::fd::AsFd) -> Held {
        self.hold_in(ns, socket, &["sleep", "infinity"])
    }

    /// [`Lab::hold`], with the socket as descriptor `at` of the holder and descriptors 0 to
    /// `at - 1` all open on /dev/null: an owner search that reads only a process's first
    /// descriptors does not meet it.
    pub fn hold_at(&self, ns: &str, socket: &impl std::os::fd::AsFd, at: u32) -> Held {
        let script = format!(
            "for fd in $(seq 3 {}); do eval \"exec $fd</dev/null\"; done; \
             exec sleep infinity {at}<&0 0</dev/null",
            at - 1
        );
        self.hold_in(ns, socket, &["bash", "-c", &script])
    }

    fn hold_in(&self, ns: &str, socket: &impl std::os::fd::AsFd, command: &[&str]) -> Held {
        let fd = socket.as_fd().try_clone_to_owned().unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(command)
            .stdin(Stdio::from(fd))
            .stdout(Stdio::null())
            .spawn_in_lab()
            .unwrap();
        let outside = child.id();
        let held = Started(child);
        // Once `ip` has become `sleep`, the pid the lab's /proc shows for it.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let status = std::fs::read_to_string(format!("/proc/{outside}/status")).unwrap();
            if status.starts_with("Name:\tsleep\n") {
                let pid = status
                    .lines()
                    .find_map(|l| l.strip_prefix("NSpid:"))
                    .and_then(|p| p.split_whitespace().last()?.parse().ok())
                    .expect("NSpid in /proc/PID/status");
                return Held { pid, _proc: held };
            }
            assert!(Instant::now() < deadline, "the holder did not start");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Give namespace `ns` its own /etc/FILE (bind-mounted by `ip netns exec`).
    pub fn etc_file(&self, ns: &str, file: &str, text: &str) {
        let dir = PathBuf::from(format!("/etc/netns/{ns}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(file), text).unwrap();
    }

    /// A path-MTU black hole: the router's link towards the client carries 1300-byte packets
    /// only, and the router tells nobody (its ICMP fragmentation-needed and packet-too-big
    /// errors are dropped on the way out).
    pub fn black_hole_mtu(&self) {
        sh(&[
            "ip",
            "-n",
            &self.router,
            "link",
            "set",
            "eth0",
            "mtu",
            "1300",
        ]);
        self.rule(
            &self.router,
            "output",
            "icmp type destination-unreachable drop\n    icmpv6 type packet-too-big drop",
        );
    }

    /// Add one nftables rule in `hook` (input, forward, output) of namespace `ns`.
    pub fn rule(&self, ns: &str, hook: &str, rule: &str) {
        self.nft(
            ns,
            &format!(
                "table inet lab_{hook} {{\n  chain c {{\n    type filter hook {hook} priority 0;\n    {rule}\n  }}\n}}\n"
            ),
        );
    }

    /// Load an nftables ruleset into a namespace.
    pub fn nft(&self, ns: &str, rules: &str) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(rules.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "nft: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A listening socket inside namespace `ns` (IPv6 sockets are v6-only).
    pub fn listen(&self, ns: &str, addr: &str) -> TcpListener {
        self.listen_backlog(ns, addr, 128)
    }

    /// A TCP connection made from inside namespace `ns` (kept open by the caller).
    pub fn connect(&self, ns: &str, addr: &str) -> std::net::TcpStream {
        let addr: SocketAddr = addr.parse().unwrap();
        in_namespace(ns, move || std::net::TcpStream::connect(addr).unwrap())
    }

    /// The same with a chosen accept-queue length (`listen(backlog)`).
    pub fn listen_backlog(&self, ns: &str, addr: &str, backlog: i32) -> TcpListener {
        let addr: SocketAddr = addr.parse().unwrap();
        in_namespace(ns, move || {
            let s = socket2::Socket::new(
                socket2::Domain::for_address(addr),
                socket2::Type::STREAM,
                None,
            )
            .unwrap();
            if addr.is_ipv6() {
                s.set_only_v6(true).unwrap();
            }
            s.set_reuse_address(true).unwrap();
            s.bind(&addr.into()).unwrap();
            s.listen(backlog).unwrap();
            TcpListener::from(s)
        })
    }

    /// A UDP socket bound inside namespace `ns`.
    pub fn udp(&self, ns: &str, addr: &str) -> std::net::UdpSocket {
        let addr: SocketAddr = addr.parse().unwrap();
        in_namespace(ns, move || std::net::UdpSocket::bind(addr).unwrap())
    }

    /// Run canreach in the client namespace. The lab's listeners accept in the kernel and
    /// never answer, so the network tests stop right after the connect (`--tcp`) unless they
    /// choose a protocol: what comes after the connect has its own tests (`app_cli`, `lab_app`).
    pub fn canreach(&self, args: &[&str]) -> Run {
        let mut all: Vec<&str> = args.to_vec();
        if !args
            .iter()
            .any(|a| a.starts_with("--protocol") || *a == "--tcp")
        {
            all.insert(0, "--tcp");
        }
        run_in(Some(&self.client), &all)
    }
}

/// A socket held by a process of a lab ([`Lab::hold`]), until dropped.
pub struct Held {
    /// The holder's pid, as canreach in the lab reports it.
    pub pid: u32,
    _proc: Started,
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Its processes first: they keep the network namespaces alive.
        sandbox::forget(&[&self.client, &self.router, &self.server]);
        drop(self.sandbox.take());
        for ns in [&self.client, &self.router, &self.server] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
            let _ = std::fs::remove_dir_all(format!("/etc/netns/{ns}"));
        }
    }
}

/// Run `f` on a helper thread that has joined network namespace `ns`: sockets it opens belong
/// to that namespace (and stay there), while the test process stays where it is.
pub fn in_namespace<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = File::open(path).unwrap();
        // SAFETY: only this short-lived thread changes namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .unwrap()
}

/// A listener whose program accepts every connection (and holds it) until dropped: on this
/// machine canreach watches for the accept, and a program that never takes a connection is
/// not a working one (`program_not_accepting`).
pub struct Accepting {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Accepting {
    pub fn start(l: std::net::TcpListener) -> Accepting {
        l.set_nonblocking(true).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, _)) => held.push(s),
                    Err(_) => std::thread::sleep(std::time::Duration::from_micros(200)),
                }
            }
        });
        Accepting {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Accepting {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A process a test started: killed (by pid) and reaped when dropped, even on panic.
pub struct Started(pub std::process::Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// dnsmasq on 198.18.2.2:53 in the server namespace, authoritative for `lab` (app.lab is
/// 198.18.2.2), with the `records` given (`--txt-record=…`, `--server=…`); not yet waited for.
pub fn dnsmasq(lab: &Lab, records: &[&str]) -> Started {
    if std::process::Command::new("dnsmasq")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("needs dnsmasq (apt-get install dnsmasq-base)");
    }
    let child = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.server, "dnsmasq"])
        .args(["--keep-in-foreground", "--conf-file=/dev/null"])
        .args(["--no-resolv", "--no-hosts", "--user=root", "--pid-file="])
        .args(["--bind-interfaces", "--listen-address=198.18.2.2"])
        .args(["--local=/lab/", "--host-record=app.lab,198.18.2.2"])
        .args(records)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    Started(child)
}

/// The address `canreach serve` (started with its stderr piped) says it listens on, from its
/// first line; its stderr is then drained, so that it never blocks on a full pipe.
pub fn exporter_address(child: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_string();
    std::thread::spawn(move || for _ in lines {});
    addr
}

/// The finding ids of a JSON report, in order.
pub fn ids(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

/// The finding `id` of a JSON report; panics naming the ones present.
pub fn finding<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("no finding {id} in {:?}", ids(v)))
}

/// The planned steps (`advice[]`) a finding proposed, in plan order.
pub fn steps_for<'a>(v: &'a Value, id: &str) -> Vec<&'a Value> {
    v["advice"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["findings"].as_array().unwrap().iter().any(|f| f == id))
        .collect()
}

/// What no report may contain: a library's debug text.
const DEBUG_TEXT: [&str; 6] = [
    "Query {", "Name(\"", "NetError", "Some(", "None,", "{ name:",
];

/// Every report must be consistent by construction: no finding twice, no step twice, only
/// documented finding ids, no library debug text. Checked for every run of the binary.
pub fn check_report(stdout: &str) {
    // JSON Lines (several targets, `--wait`): every line is a report or a change record.
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() > 1
        && lines
            .iter()
            .all(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v.is_object()))
    {
        for l in lines {
            let v: Value = serde_json::from_str(l).unwrap();
            if v.get("findings").is_some() {
                check_report(l);
            }
        }
        return;
    }
    if let Ok(v) = serde_json::from_str::<Value>(stdout) {
        let findings = v["findings"].as_array().expect("findings[]");
        let mut seen = Vec::new();
        for f in findings {
            let id = f["id"].as_str().unwrap();
            assert!(
                canreach::diagnosis::FindingId::ALL
                    .iter()
                    .any(|k| k.as_str() == id),
                "undocumented finding id {id}"
            );
            let key = (id.to_string(), f["message"].to_string());
            assert!(!seen.contains(&key), "finding {id} twice: {stdout}");
            seen.push(key);
        }
        let mut steps = Vec::new();
        for s in v["advice"].as_array().expect("advice[]") {
            let key = (
                s["text"].to_string(),
                s["command"].to_string(),
                s["on"].to_string(),
            );
            assert!(!steps.contains(&key), "step twice: {key:?}\n{stdout}");
            if !s["command"].is_null() {
                let cmd = (s["command"].to_string(), s["on"].to_string());
                assert!(
                    !steps.iter().any(|(_, c, o)| (c.clone(), o.clone()) == cmd),
                    "command twice: {cmd:?}"
                );
            }
            steps.push(key);
        }
    } else if ["✓ ", "✗ ", "! ", "TARGET"]
        .iter()
        .any(|h| stdout.starts_with(h))
    {
        // A text report (its headline), or the table of several targets: off a terminal,
        // every line of it fits 80 columns (issue 21).
        for l in stdout.lines() {
            let cols = unicode_width::UnicodeWidthStr::width(l);
            assert!(cols <= 80, "a line of {cols} columns: {l}\nin:\n{stdout}");
        }
    }
    if let Some(next) = stdout
        .split("\nNext steps\n")
        .nth(1)
        .filter(|_| serde_json::from_str::<Value>(stdout).is_err())
    {
        // A command with the line before it (which says where it runs): the same command on
        // two machines is two steps.
        let lines: Vec<&str> = next.lines().collect();
        let mut cmds: Vec<(String, &str)> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.starts_with("       "))
            .map(|(i, l)| (lines[i.saturating_sub(1)].trim().to_string(), l.trim()))
            .collect();
        let n = cmds.len();
        cmds.sort_unstable();
        cmds.dedup();
        assert_eq!(cmds.len(), n, "a command twice in:\n{stdout}");
    }
    for d in DEBUG_TEXT {
        assert!(
            !stdout.contains(d),
            "library debug text `{d}` in:\n{stdout}"
        );
    }
}

/// `text` with its line breaks and runs of spaces as single spaces: a phrase of a text
/// report, wherever the report wrapped it.
pub fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// [`check_report`] on the stdout of a run made another way (`assert_cmd`).
pub fn checked(out: Output) -> Output {
    check_report(&String::from_utf8_lossy(&out.stdout));
    out
}

/// One finished run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

/// The proxy variables, both cases. A URL target follows the proxy they name, so every run
/// starts without them: the CI machine's proxy must not decide a test. A test that means to
/// set one passes it in `env` (set after the clearing).
pub const PROXY_VARS: [&str; 8] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// One runtime for every in-process server of a test binary, on its own threads (the binary
/// under test runs as a child process meanwhile).
pub fn server_rt() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// A server on 127.0.0.1 that runs `serve` for every connection (each within 5 s), on
/// [`server_rt`].
pub fn serve_each<F, Fut>(serve: F) -> std::net::SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let serve = std::sync::Arc::new(serve);
    server_rt().block_on(async move {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(tokio::time::timeout(Duration::from_secs(5), serve(s)));
            }
        });
        addr
    })
}

/// [`serve_each`] on 127.0.0.1 and on ::1, the same port: a server for `localhost`, which is
/// both on a stock machine (and in the tests' own /etc/hosts, see [`sandbox`]). The address
/// returned is the IPv4 one.
pub fn serve_each_localhost<F, Fut>(serve: F) -> std::net::SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let serve = std::sync::Arc::new(serve);
    server_rt().block_on(async move {
        // The same port on ::1 is free almost always; another one is tried when it is not.
        for _ in 0..50 {
            let v4 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = v4.local_addr().unwrap();
            let Ok(v6) = tokio::net::TcpListener::bind(("::1", addr.port())).await else {
                continue;
            };
            for l in [v4, v6] {
                let serve = serve.clone();
                tokio::spawn(async move {
                    while let Ok((s, _)) = l.accept().await {
                        tokio::spawn(tokio::time::timeout(Duration::from_secs(5), serve(s)));
                    }
                });
            }
            return addr;
        }
        panic!("no port free on both 127.0.0.1 and ::1 (is IPv6 loopback up?)");
    })
}

/// Run the binary, inside namespace `ns` if given.
pub fn run_in(ns: Option<&str>, args: &[&str]) -> Run {
    run_in_env(ns, args, &[])
}

/// The same, with environment variables set for the run.
pub fn run_in_env(ns: Option<&str>, args: &[&str], env: &[(&str, &str)]) -> Run {
    let bin = env!("CARGO_BIN_EXE_canreach");
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, bin]);
            c
        }
        None => Command::new(bin),
    };
    cmd.args(args).env("NO_COLOR", "1").stdin(Stdio::null());
    for k in PROXY_VARS {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output_in_lab().unwrap();
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    check_report(&stdout);
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        took: start.elapsed(),
    }
}
