//! The fleet lab: targets for the exporter tests (`canreach serve` beside blackbox_exporter,
//! Prometheus, a browser), all inside a [`Lab`]'s namespaces.
//!
//! ```text
//!  client  198.18.1.2   blackbox_exporter 127.0.0.1:9115, canreach serve 127.0.0.1:9116,
//!     │                 Prometheus 127.0.0.1:9090, Chromium: all run here (`ip netns exec`)
//!  router  198.18.1.1   rejects TCP 8003 (ICMP admin-prohibited); no ICMP rate limit
//!     │
//!  server  198.18.2.2   8001 open · 8002 closed · 8004 dropped (its own firewall) ·
//!                       8005 reset by the program 5 ms after the accept
//!                       8080 HTTP 200 · 8081 HTTP 503 · 8443 TLS good · 8444 TLS expired
//!                       dnsmasq :53: app.lab → 198.18.2.2, dual.lab → 198.18.2.2 and
//!                       fd00:2::2 (8001 listens on IPv4 only), any other name under lab NXDOMAIN
//! ```
//!
//! The test process reaches the exporters through sockets opened inside the client namespace
//! ([`http_get`]). Every process is started by [`spawn_in`] in its own process group and
//! killed by that id when its [`Proc`] drops (also when the test panics); the servers run on a
//! runtime the [`FleetLab`] owns, and its temporary directory is removed with it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, date_time_ymd,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Lab, SERVER_V4, in_namespace, sh};

/// Where the exporters and Prometheus listen, inside the client namespace.
pub const BLACKBOX: &str = "127.0.0.1:9115";
pub const CANREACH: &str = "127.0.0.1:9116";
pub const PROMETHEUS: &str = "127.0.0.1:9090";

/// The scrape timeout the tests send (`X-Prometheus-Scrape-Timeout-Seconds`): both exporters
/// then give a probe 2.5 s (minus their 0.5 s offset).
pub const SCRAPE_TIMEOUT: &str = "3";

/// A directory under the system's temporary directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("canreach-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A process a test started in its own process group: the group is killed by its id (the
/// process's pid) and the process reaped when dropped, so helpers it forked (Chromium's) go
/// with it.
pub struct Proc {
    pub child: std::process::Child,
    pub name: String,
    /// Its stderr and stdout, for the message when a test fails.
    pub log: PathBuf,
}

impl Proc {
    /// What it wrote so far (the last 4 KiB).
    pub fn log_tail(&self) -> String {
        let s = std::fs::read(&self.log).unwrap_or_default();
        let s = String::from_utf8_lossy(&s[s.len().saturating_sub(4096)..]).into_owned();
        format!("--- {} log ---\n{s}", self.name)
    }

    /// Still running? Asked without reaping it (`WNOWAIT`): until [`Drop`] reaps it, its pid
    /// stays taken, so the process group killed there by that id is surely its own.
    pub fn alive(&mut self) -> bool {
        // SAFETY: a zeroed siginfo_t is valid; waitid(2) on our own child, not reaping it.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let rc = libc::waitid(
                libc::P_PID,
                self.child.id(),
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            );
            rc == 0 && info.si_pid() == 0
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let pgid = self.child.id() as i32;
        // SAFETY: kill(2) on the process group this test created (its leader's pid).
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `program args` inside namespace `ns` (`ip netns exec` execs it: the pid is the
/// program's), its output appended to `log`, in a new process group.
pub fn spawn_in(ns: &str, program: &str, args: &[&str], log: &Path) -> Proc {
    spawn_in_env(ns, program, args, &[], log)
}

/// The same, with environment variables set for it.
pub fn spawn_in_env(
    ns: &str,
    program: &str,
    args: &[&str],
    env: &[(&str, &Path)],
    log: &Path,
) -> Proc {
    spawn_full(ns, program, args, env, None, log)
}

/// The same, its stdout to the file `stdout` when given (else with stderr, to `log`).
pub fn spawn_full(
    ns: &str,
    program: &str,
    args: &[&str],
    env: &[(&str, &Path)],
    stdout: Option<&Path>,
    log: &Path,
) -> Proc {
    use std::os::unix::process::CommandExt;
    let err = std::fs::File::create(log).unwrap();
    let out = match stdout {
        Some(p) => std::fs::File::create(p).unwrap(),
        None => err.try_clone().unwrap(),
    };
    let child = Command::new("ip")
        .args(["netns", "exec", ns, program])
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    Proc {
        child,
        name: program.to_string(),
        log: log.to_path_buf(),
    }
}

/// Is `program` installed (CI installs it; a run without it must fail, not skip, there)?
pub fn require_program(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()));
    assert!(
        found,
        "needs `{program}` (apt-get install --no-install-recommends {package})"
    );
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub took: Duration,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path` from inside namespace `ns` to `addr`, HTTP/1.0 (one answer, then the server
/// closes; no chunked body), with `headers`; everything within `limit`.
pub fn http_get(
    ns: &str,
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
    limit: Duration,
) -> std::io::Result<Reply> {
    let addr: SocketAddr = addr.parse().unwrap();
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let start = Instant::now();
    let raw = in_namespace(ns, move || -> std::io::Result<Vec<u8>> {
        let mut s = std::net::TcpStream::connect_timeout(&addr, limit)?;
        s.set_read_timeout(Some(limit))?;
        s.set_write_timeout(Some(limit))?;
        s.write_all(req.as_bytes())?;
        let mut buf = vec![];
        s.read_to_end(&mut buf)?;
        Ok(buf)
    })?;
    let took = start.elapsed();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("no head: {text:?}"),
        )
    })?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("status: {head:?}"))
        })?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = body.to_string();
    let chunked = |h: &Vec<(String, String)>| {
        h.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
        })
    };
    if chunked(&headers) {
        body = dechunk(&body);
    }
    Ok(Reply {
        status,
        headers,
        body,
        took,
    })
}

/// A chunked body, joined.
fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// Wait until `GET path` on `addr` (in `ns`) answers at all, or fail with the process's log.
pub fn wait_ready(ns: &str, addr: &str, path: &str, proc: &mut Proc, within: Duration) {
    let start = Instant::now();
    loop {
        if http_get(ns, addr, path, &[], Duration::from_secs(1)).is_ok() {
            return;
        }
        assert!(
            proc.alive(),
            "{} exited before answering on {addr}\n{}",
            proc.name,
            proc.log_tail()
        );
        assert!(
            start.elapsed() < within,
            "{} did not answer on {addr} within {within:?}\n{}",
            proc.name,
            proc.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `s` with every byte outside `A-Za-z0-9-._~` percent-encoded (a query value).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One sample of the Prometheus text exposition format.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A scrape's samples, and the `# TYPE` of each family.
#[derive(Debug, Default)]
pub struct Metrics {
    pub samples: Vec<Sample>,
    pub types: BTreeMap<String, String>,
}

impl Metrics {
    /// The names of the families that have samples.
    pub fn names(&self) -> std::collections::BTreeSet<&str> {
        self.samples.iter().map(|s| s.name.as_str()).collect()
    }

    /// The value of the one sample of `name` without labels (or the first one).
    pub fn value(&self, name: &str) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.value)
    }

    pub fn all(&self, name: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }
}

/// Parse the text exposition format (version 0.0.4): `# HELP`/`# TYPE` lines, samples with
/// optional labels (`\\`, `\"`, `\n` escapes) and a value. A malformed line fails the test.
pub fn parse_metrics(text: &str) -> Metrics {
    let mut m = Metrics::default();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(t) = line.strip_prefix("# TYPE ") {
            let (name, kind) = t.split_once(' ').expect("# TYPE name kind");
            m.types.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .unwrap_or_else(|| panic!("sample without value: {line}"));
        let name = &line[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line}"
        );
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices().peekable();
            let end;
            loop {
                // Skip separators.
                while let Some((_, c)) = chars.peek() {
                    if *c == ',' || *c == ' ' {
                        chars.next();
                    } else {
                        break;
                    }
                }
                let Some((i, c)) = chars.next() else {
                    panic!("unclosed labels: {line}")
                };
                if c == '}' {
                    end = Some(i + 1);
                    break;
                }
                let mut key = String::from(c);
                for (_, c) in chars.by_ref() {
                    if c == '=' {
                        break;
                    }
                    key.push(c);
                }
                assert_eq!(chars.next().map(|x| x.1), Some('"'), "label value: {line}");
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, c)) => value.push(c),
                            None => panic!("escape at end: {line}"),
                        },
                        Some((_, '"')) => break,
                        Some((_, c)) => value.push(c),
                        None => panic!("unclosed label value: {line}"),
                    }
                }
                labels.insert(key.trim().to_string(), value);
            }
            rest = &r[end.unwrap()..];
        }
        let value_text = rest.split_whitespace().next().expect("value");
        let value: f64 = match value_text {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        m.samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    m
}

/// A probe target of the lab, what both exporters should say of it, and canreach's reason.
#[derive(Debug, Clone)]
pub struct Case {
    /// What it is, for messages.
    pub what: &'static str,
    pub module: &'static str,
    pub target: String,
    pub success: bool,
    /// `probe_http_status_code` (http module only; 0 when no answer came).
    pub http_status: Option<u16>,
    /// canreach's verdict word.
    pub verdict: &'static str,
    /// The finding named in `probe_failure_info` (failures only).
    pub finding: Option<&'static str>,
    /// The phase named in `probe_failure_info` (failures only).
    pub phase: Option<&'static str>,
}

/// The lab's targets, one of each failure.
pub fn cases() -> Vec<Case> {
    let c = |what, module, target: &str, success, http_status, verdict, why| {
        let (finding, phase) = match why {
            Some((f, p)) => (Some(f), Some(p)),
            None => (None, None),
        };
        Case {
            what,
            module,
            target: target.to_string(),
            success,
            http_status,
            verdict,
            finding,
            phase,
        }
    };
    vec![
        c(
            "open port",
            "tcp_connect",
            "198.18.2.2:8001",
            true,
            None,
            "open",
            None,
        ),
        c(
            "closed port",
            "tcp_connect",
            "198.18.2.2:8002",
            false,
            None,
            "closed",
            Some(("port_closed", "connect")),
        ),
        c(
            "router's reject",
            "tcp_connect",
            "198.18.2.2:8003",
            false,
            None,
            "rejected",
            Some(("firewall_reject_on_path", "connect")),
        ),
        c(
            "silent drop",
            "tcp_connect",
            "198.18.2.2:8004",
            false,
            None,
            "filtered",
            Some(("host_up_port_dropped", "connect")),
        ),
        // Connected, then reset by the program: blackbox_exporter's tcp_connect succeeds, and
        // so must canreach's; its verdict still tells.
        c(
            "reset after the accept",
            "tcp_connect",
            "198.18.2.2:8005",
            true,
            None,
            "service_error",
            None,
        ),
        // blackbox_exporter prefers IPv6 (preferred_ip_protocol: ip6): for a name with both
        // families it probes the IPv6 address, which is refused here; IPv4 would work.
        c(
            "dual-stack name, IPv4 only",
            "tcp_connect",
            "dual.lab:8001",
            false,
            None,
            "partial",
            Some(("port_closed", "connect")),
        ),
        c(
            "NXDOMAIN",
            "tcp_connect",
            "nosuch.lab:80",
            false,
            None,
            "dns_error",
            Some(("dns_nxdomain", "resolve")),
        ),
        c(
            "HTTP 200",
            "http_2xx",
            "http://198.18.2.2:8080/",
            true,
            Some(200),
            "open",
            None,
        ),
        c(
            "HTTP to a closed port",
            "http_2xx",
            "http://198.18.2.2:8002/",
            false,
            Some(0),
            "closed",
            Some(("port_closed", "connect")),
        ),
        c(
            "HTTP 503",
            "http_2xx",
            "http://198.18.2.2:8081/",
            false,
            Some(503),
            "service_error",
            Some(("http_server_error", "http")),
        ),
        c(
            "TLS good",
            "http_2xx",
            "https://app.lab:8443/",
            true,
            Some(200),
            "open",
            None,
        ),
        c(
            "TLS expired",
            "http_2xx",
            "https://app.lab:8444/",
            false,
            Some(0),
            "tls_error",
            Some(("tls_expired", "tls")),
        ),
    ]
}

/// The lab with its servers running, a CA file and a module file both exporters read.
pub struct FleetLab {
    // Dropped in this order: the servers' runtime, dnsmasq, then the namespaces and files.
    rt: Option<tokio::runtime::Runtime>,
    _dns: Proc,
    pub lab: Lab,
    pub dir: TempDir,
    /// The module file (blackbox_exporter's YAML).
    pub modules: PathBuf,
}

impl Drop for FleetLab {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// The module file: blackbox_exporter's own format, as a fleet would have it.
fn module_yaml(ca: &Path) -> String {
    format!(
        "modules:\n  tcp_connect:\n    prober: tcp\n    timeout: 5s\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      tls_config:\n        ca_file: {}\n",
        ca.display()
    )
}

impl FleetLab {
    pub fn new(tag: &str) -> FleetLab {
        require_program("dnsmasq", "dnsmasq-base");
        let lab = Lab::new();
        let dir = TempDir::new(tag);
        // Every exporter in this lab probes the same targets in turn, and a check's path walk
        // draws ICMP from the router too: with the kernel's per-destination ICMP rate limit
        // (about 6 at once, then 1 a second) a later reject could arrive as silence. This lab
        // tests the exporters, not the limit: the router sends every ICMP error.
        sh(&[
            "ip",
            "netns",
            "exec",
            &lab.router,
            "sysctl",
            "-qw",
            "net.ipv4.icmp_ratelimit=0",
            "net.ipv6.icmp.ratelimit=0",
        ]);
        lab.rule(
            &lab.router,
            "forward",
            "tcp dport 8003 reject with icmpx admin-prohibited",
        );
        lab.rule(&lab.server, "input", "tcp dport 8004 drop");
        lab.etc_file(
            &lab.client,
            "resolv.conf",
            "nameserver 198.18.2.2\noptions timeout:1 attempts:1\n",
        );
        lab.etc_file(&lab.client, "hosts", "127.0.0.1 localhost\n");

        let dns = spawn_in(
            &lab.server,
            "dnsmasq",
            &[
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--user=root",
                "--pid-file=",
                "--bind-interfaces",
                "--listen-address=198.18.2.2",
                "--local=/lab/",
                "--host-record=app.lab,198.18.2.2",
                "--host-record=dual.lab,198.18.2.2,fd00:2::2",
            ],
            &dir.path("dnsmasq.log"),
        );

        // The CA, and the two leaves it signs for app.lab: valid until 2099, expired in 2001.
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(DnType::CommonName, "canreach fleet lab CA");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
        let ca_file = dir.path("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let acceptor = |from: i32, to: i32| {
            let key = KeyPair::generate().unwrap();
            let mut params =
                CertificateParams::new(vec!["app.lab".to_string(), SERVER_V4.to_string()]).unwrap();
            params.not_before = date_time_ymd(from, 1, 1);
            params.not_after = date_time_ymd(to, 1, 1);
            let leaf = params.signed_by(&key, &ca).unwrap();
            let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
            tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
        };
        let good = acceptor(2000, 2099);
        let expired = acceptor(2000, 2001);

        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        // Open: connections are taken and held until the peer leaves.
        let open = lab.listen(&lab.server, "198.18.2.2:8001");
        rt.spawn(serve(open, |s| async move {
            let mut s = s;
            let mut b = [0u8; 64];
            let _ = tokio::time::timeout(Duration::from_secs(10), s.read(&mut b)).await;
        }));
        // Reset: the connection is taken, and closed with SO_LINGER 0 5 ms later. Not at once:
        // a reset that can arrive before a client has read its connect's result makes the
        // connect itself fail (ECONNRESET), for blackbox_exporter too, by timing alone.
        let reset = lab.listen(&lab.server, "198.18.2.2:8005");
        rt.spawn(serve(reset, |s| async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
            drop(s);
        }));
        // The dropped port has a listener behind the drop: the firewall alone hides it.
        let dropped = lab.listen(&lab.server, "198.18.2.2:8004");
        rt.spawn(serve(dropped, |_s| async {}));
        let ok = lab.listen(&lab.server, "198.18.2.2:8080");
        rt.spawn(serve(ok, |s| http_answers(s, "200 OK", "ok\n")));
        let down = lab.listen(&lab.server, "198.18.2.2:8081");
        rt.spawn(serve(down, |s| {
            http_answers(s, "503 Service Unavailable", "no backend\n")
        }));
        for (port, acceptor) in [(8443, good), (8444, expired)] {
            let l = lab.listen(&lab.server, &format!("198.18.2.2:{port}"));
            rt.spawn(serve(l, move |s| {
                let acceptor = acceptor.clone();
                async move {
                    if let Ok(tls) = acceptor.accept(s).await {
                        http_answers(tls, "200 OK", "ok over TLS\n").await;
                    }
                }
            }));
        }

        let modules = dir.path("modules.yml");
        std::fs::write(&modules, module_yaml(&ca_file)).unwrap();
        let mut fleet = FleetLab {
            rt: Some(rt),
            _dns: dns,
            lab,
            dir,
            modules,
        };
        fleet.wait_for_dns();
        fleet
    }

    /// dnsmasq answers app.lab (asked from the client namespace, as the exporters will).
    fn wait_for_dns(&mut self) {
        let start = Instant::now();
        loop {
            let r =
                self.lab
                    .canreach(&["--json", "--no-trace", "--timeout", "1", "app.lab", "8001"]);
            if r.json()["verdict"] == "open" {
                return;
            }
            assert!(
                self._dns.alive(),
                "dnsmasq exited\n{}",
                self._dns.log_tail()
            );
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "dnsmasq did not answer app.lab: {}",
                r.stdout
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Start blackbox_exporter on [`BLACKBOX`] in the client namespace with the module file.
    pub fn blackbox(&self) -> Proc {
        require_program(
            "prometheus-blackbox-exporter",
            "prometheus-blackbox-exporter",
        );
        let config = format!("--config.file={}", self.modules.display());
        let listen = format!("--web.listen-address={BLACKBOX}");
        let mut p = spawn_in(
            &self.lab.client,
            "prometheus-blackbox-exporter",
            &[&config, &listen],
            &self.dir.path("blackbox.log"),
        );
        wait_ready(
            &self.lab.client,
            BLACKBOX,
            "/metrics",
            &mut p,
            Duration::from_secs(20),
        );
        p
    }

    /// Start `canreach serve` on [`CANREACH`] in the client namespace with the module file.
    pub fn canreach_serve(&self) -> Proc {
        let bin = env!("CARGO_BIN_EXE_canreach");
        let config = self.modules.display().to_string();
        let mut p = spawn_in(
            &self.lab.client,
            bin,
            &["serve", "--listen", CANREACH, "--config", &config],
            &self.dir.path("canreach-serve.log"),
        );
        wait_ready(
            &self.lab.client,
            CANREACH,
            "/metrics",
            &mut p,
            Duration::from_secs(20),
        );
        p
    }

    /// `GET /probe?target=…&module=…` on the exporter at `addr`, as Prometheus asks it.
    pub fn probe(&self, addr: &str, case: &Case) -> Reply {
        let path = format!(
            "/probe?target={}&module={}",
            urlencode(&case.target),
            urlencode(case.module)
        );
        http_get(
            &self.lab.client,
            addr,
            &path,
            &[("X-Prometheus-Scrape-Timeout-Seconds", SCRAPE_TIMEOUT)],
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("{addr}{path}: {e}"))
    }
}

/// One scrape job of the Prometheus configuration: `module` probed through the exporter at
/// `exporter`, for `targets`, with blackbox_exporter's usual relabelling.
pub struct Job {
    pub name: String,
    pub exporter: String,
    pub module: String,
    pub targets: Vec<String>,
}

/// How often Prometheus scrapes and evaluates rules, and its scrape timeout (sent to the
/// exporter, which gives a probe 0.5 s less).
pub const SCRAPE_INTERVAL_S: u32 = 2;

/// A prometheus.yml for `jobs` with `relabel` (its exporter's address written `EXPORTER`),
/// scraping and evaluating `rules` (a file) every [`SCRAPE_INTERVAL_S`].
pub fn prometheus_yaml(jobs: &[Job], relabel: &str, rules: Option<&Path>) -> String {
    let mut y = format!(
        "global:\n  scrape_interval: {SCRAPE_INTERVAL_S}s\n  scrape_timeout: {SCRAPE_INTERVAL_S}s\n  evaluation_interval: {SCRAPE_INTERVAL_S}s\n"
    );
    if let Some(r) = rules {
        y.push_str(&format!("rule_files:\n  - {}\n", r.display()));
    }
    y.push_str("scrape_configs:\n");
    for j in jobs {
        y.push_str(&format!(
            "  - job_name: {}\n    metrics_path: /probe\n    params:\n      module: [{}]\n    static_configs:\n      - targets:\n",
            j.name, j.module
        ));
        for t in &j.targets {
            y.push_str(&format!("          - '{t}'\n"));
        }
        y.push_str(&relabel.replace("EXPORTER", &j.exporter));
    }
    y
}

/// The fenced `yaml` blocks of docs/fleet.md, in order.
pub fn fleet_doc_yaml() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/fleet.md"))
        .expect("docs/fleet.md");
    let mut blocks = vec![];
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```yaml") => current = Some(String::new()),
            (Some(_), l) if l.starts_with("```") => blocks.extend(current.take()),
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

/// The `relabel_configs` of docs/fleet.md's scrape config, as a job's key (indented 4), the
/// exporter's address (the `replacement` that becomes `__address__`) written `EXPORTER`.
pub fn relabel_from_docs() -> String {
    let blocks = fleet_doc_yaml();
    let config = blocks
        .iter()
        .find(|b| b.contains("scrape_configs:") && b.contains("__param_target"))
        .expect("docs/fleet.md: a prometheus.yml block with scrape_configs and __param_target");
    let lines: Vec<&str> = config.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim_start().starts_with("relabel_configs:"))
        .expect("docs/fleet.md: relabel_configs");
    let indent = |l: &str| l.len() - l.trim_start().len();
    let base = indent(lines[start]);
    let mut out = String::new();
    for l in std::iter::once(lines[start]).chain(
        lines[start + 1..]
            .iter()
            .copied()
            .take_while(|l| l.trim().is_empty() || indent(l) > base),
    ) {
        let l = match l.split_once("replacement:") {
            Some((before, _)) => format!("{before}replacement: EXPORTER"),
            None => l.to_string(),
        };
        out.push_str("    ");
        out.push_str(&l[base.min(l.len())..]);
        out.push('\n');
    }
    assert!(
        out.contains("EXPORTER") && out.contains("target_label: instance"),
        "docs/fleet.md's relabel_configs: {out}"
    );
    out
}

/// The alert rules file of docs/fleet.md (the block that starts with `groups:`).
pub fn rules_from_docs() -> String {
    fleet_doc_yaml()
        .into_iter()
        .find(|b| b.trim_start().starts_with("groups:"))
        .expect("docs/fleet.md: an alert rules block (groups:)")
}

impl FleetLab {
    /// Start Prometheus on [`PROMETHEUS`] in the client namespace with `config`, its storage
    /// in this lab's temporary directory; ready when `/-/ready` says so.
    pub fn prometheus(&self, config: &str) -> Proc {
        require_program("prometheus", "prometheus");
        let file = self.dir.path("prometheus.yml");
        std::fs::write(&file, config).unwrap();
        let data = self.dir.path("prometheus-data");
        let args = [
            format!("--config.file={}", file.display()),
            format!("--storage.tsdb.path={}", data.display()),
            format!("--web.listen-address={PROMETHEUS}"),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut p = spawn_in(
            &self.lab.client,
            "prometheus",
            &args,
            &self.dir.path("prometheus.log"),
        );
        let start = Instant::now();
        loop {
            if let Ok(r) = http_get(
                &self.lab.client,
                PROMETHEUS,
                "/-/ready",
                &[],
                Duration::from_secs(1),
            ) && r.status == 200
            {
                return p;
            }
            assert!(p.alive(), "prometheus exited\n{}", p.log_tail());
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "prometheus not ready\n{}",
                p.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `GET path` of Prometheus's HTTP API: its `data`.
    pub fn api(&self, path: &str) -> serde_json::Value {
        let r = http_get(
            &self.lab.client,
            PROMETHEUS,
            path,
            &[],
            Duration::from_secs(5),
        )
        .unwrap_or_else(|e| panic!("{path}: {e}"));
        let v: serde_json::Value =
            serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.body));
        assert_eq!(v["status"], "success", "{path}: {}", r.body);
        v["data"].clone()
    }

    /// An instant query to Prometheus's HTTP API: the result vector, as
    /// `(labels, value)`.
    pub fn query(&self, q: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        self.api(&format!("/api/v1/query?query={}", urlencode(q)))["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let labels = s["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
                let value = s["value"][1].as_str().unwrap().parse().unwrap();
                (labels, value)
            })
            .collect()
    }
}

/// Accept on `listener` (opened in a namespace) and run `each` for every connection.
async fn serve<F, Fut>(listener: std::net::TcpListener, each: F)
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    listener.set_nonblocking(true).unwrap();
    let l = tokio::net::TcpListener::from_std(listener).unwrap();
    let each = Arc::new(each);
    while let Ok((s, _)) = l.accept().await {
        let each = each.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(10), each(s)).await;
        });
    }
}

/// Answer every request on the connection (keep-alive, up to 8) with `status` and `body`
/// (no body for HEAD).
async fn http_answers<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    status: &'static str,
    body: &'static str,
) {
    for _ in 0..8 {
        let mut buf = vec![0u8; 8192];
        let mut got = 0;
        while !buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf[got..]).await {
                Ok(n) if n > 0 => got += n,
                _ => return,
            }
            if got == buf.len() {
                return;
            }
        }
        let head = format!(
            "HTTP/1.1 {status}\r\nServer: fleet-lab\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let mut out = head.into_bytes();
        if !buf.starts_with(b"HEAD") {
            out.extend_from_slice(body.as_bytes());
        }
        if s.write_all(&out).await.is_err() || s.flush().await.is_err() {
            return;
        }
    }
    let _ = s.shutdown().await;
}
