//! Real servers for the lab: Debian's PostgreSQL 15, Redis and MariaDB, each started inside a
//! lab's namespaces ([`InLab`]: its network, PID and mount namespaces) as the unprivileged
//! user `nobody`, with its data in a temporary directory removed afterwards. A server is
//! killed by its pid when dropped (and with the lab's PID namespace at the latest).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::fleet::TempDir;
use super::{InLab, Started};

/// `nobody`: the servers run unprivileged (PostgreSQL refuses to run as root).
const NOBODY: u32 = 65534;

pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A server started in a lab, with its directory and log.
pub struct Server {
    pub proc: Started,
    pub log: PathBuf,
    // Dropped after the process (fields drop in order).
    pub dir: TempDir,
}

impl Server {
    /// The last 4 KiB of its log, for a failing test's message.
    pub fn log_tail(&self) -> String {
        let s = std::fs::read(&self.log).unwrap_or_default();
        String::from_utf8_lossy(&s[s.len().saturating_sub(4096)..]).into_owned()
    }
}

/// Is `path` there (CI installs it; elsewhere a missing server skips, or fails with
/// `CANREACH_REQUIRE_LAB=1`)?
pub fn available(test: &str, path: &str, package: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    super::cannot_run(
        test,
        &format!("needs {path} (apt-get install --no-install-recommends {package})"),
    );
    false
}

/// A temporary directory the unprivileged server may write.
fn owned_dir(tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    std::os::unix::fs::chown(&dir.0, Some(NOBODY), Some(NOBODY)).unwrap();
    dir
}

/// `program args` as `nobody`, in namespace `ns` when given (else where the test runs).
fn as_nobody(ns: Option<&str>, program: &str, args: &[&str]) -> Command {
    let mut c = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "setpriv"]);
            c
        }
        None => Command::new("setpriv"),
    };
    c.args([
        &format!("--reuid={NOBODY}"),
        &format!("--regid={NOBODY}"),
        "--clear-groups",
        "--",
        program,
    ])
    .args(args)
    .env("HOME", "/nonexistent")
    .stdin(Stdio::null());
    c
}

/// Start `program args` as `nobody` in namespace `ns`, its output to `log`.
fn start(ns: &str, program: &str, args: &[&str], log: &Path) -> Started {
    let out = std::fs::File::create(log).unwrap();
    Started(
        as_nobody(Some(ns), program, args)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn_in_lab()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}")),
    )
}

/// Wait until `addr` accepts a connection from inside `ns`.
pub fn wait_listening(ns: &str, addr: &str, server: &mut Server, within: Duration) {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let start = Instant::now();
    loop {
        let ok = super::in_namespace(ns, move || {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
        if ok {
            return;
        }
        if let Ok(Some(status)) = server.proc.0.try_wait() {
            panic!("server exited ({status}):\n{}", server.log_tail());
        }
        assert!(
            start.elapsed() < within,
            "{addr} not listening after {within:?}:\n{}",
            server.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// PostgreSQL 15 in namespace `ns`, listening on `ip`:5432, with `hba` as its pg_hba.conf.
pub fn postgres(ns: &str, ip: &str, hba: &str) -> Server {
    postgres_with(ns, ip, hba, false, "", false)
}

/// The same with `conf` added to postgresql.conf.
pub fn postgres_conf(ns: &str, ip: &str, hba: &str, conf: &str) -> Server {
    postgres_with(ns, ip, hba, false, conf, false)
}

/// A standby that stays in recovery (no primary to follow) and serves no one
/// (`hot_standby = off`).
pub fn postgres_standby(ns: &str, ip: &str, hba: &str) -> Server {
    postgres_with(ns, ip, hba, false, "hot_standby = off\n", true)
}

/// The same with TLS on: a self-signed certificate for `db.lab` made with openssl.
pub fn postgres_tls(ns: &str, ip: &str, hba: &str) -> Server {
    postgres_with(ns, ip, hba, true, "", false)
}

/// PostgreSQL with TLS on or off, `conf` added to postgresql.conf, started as a standby
/// (`standby.signal`) when `standby`.
fn postgres_with(ns: &str, ip: &str, hba: &str, tls: bool, conf: &str, standby: bool) -> Server {
    let dir = owned_dir("pg");
    let data = dir.path("data");
    let data_s = data.to_str().unwrap().to_string();
    let out = as_nobody(
        None,
        &format!("{PG_BIN}/initdb"),
        &[
            "-D",
            &data_s,
            "-U",
            "postgres",
            "--auth=trust",
            "-N",
            "-E",
            "UTF8",
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
    let extra = conf;
    let conf = format!(
        "listen_addresses = '{ip}'\nport = 5432\nunix_socket_directories = '{}'\nssl = {}\n\
         fsync = off\nshared_buffers = 16MB\nmax_connections = 20\n",
        dir.0.display(),
        if tls { "on" } else { "off" }
    );
    if tls {
        let out = as_nobody(
            None,
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=db.lab",
                "-keyout",
                &format!("{data_s}/server.key"),
                "-out",
                &format!("{data_s}/server.crt"),
            ],
        )
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "openssl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut c = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
    c.push_str(&conf);
    c.push_str(extra);
    if standby {
        std::fs::write(data.join("standby.signal"), "").unwrap();
        std::os::unix::fs::chown(data.join("standby.signal"), Some(NOBODY), Some(NOBODY)).unwrap();
    }
    std::fs::write(data.join("postgresql.conf"), c).unwrap();
    let log = dir.path("log");
    let proc = start(ns, &format!("{PG_BIN}/postgres"), &["-D", &data_s], &log);
    let mut s = Server { proc, log, dir };
    wait_listening(ns, &format!("{ip}:5432"), &mut s, Duration::from_secs(20));
    // It listens before its startup ends (a connection then gets 57P03, "the database system
    // is starting up"): a primary is ready when its log says so.
    let start = Instant::now();
    while !standby && !s.log_tail().contains("ready to accept connections") {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "not ready:\n{}",
            s.log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    s
}

/// Redis in namespace `ns`, bound to `ip`:6379, with `extra` arguments.
pub fn redis(ns: &str, ip: &str, extra: &[&str]) -> Server {
    redis_in(owned_dir("redis"), ns, ip, extra)
}

/// The same Redis stopped and started again on its directory (its saved data), with
/// `extra` arguments.
pub fn redis_again(server: Server, ns: &str, ip: &str, extra: &[&str]) -> Server {
    let Server { proc, dir, .. } = server;
    drop(proc);
    redis_in(dir, ns, ip, extra)
}

fn redis_in(dir: TempDir, ns: &str, ip: &str, extra: &[&str]) -> Server {
    let d = dir.0.to_str().unwrap().to_string();
    let mut args = vec![
        "--port",
        "6379",
        "--bind",
        ip,
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &d,
    ];
    args.extend_from_slice(extra);
    let log = dir.path("log");
    let proc = start(ns, "/usr/bin/redis-server", &args, &log);
    let mut s = Server { proc, log, dir };
    wait_listening(ns, &format!("{ip}:6379"), &mut s, Duration::from_secs(10));
    s
}

/// MariaDB in namespace `ns` on `ip`:3306: `init` (SQL) runs at start (`--init-file`);
/// `extra` server options.
pub fn mariadb(ns: &str, ip: &str, init: &str, extra: &[&str]) -> Server {
    let dir = owned_dir("mariadb");
    let data = dir.path("data");
    let data_s = data.to_str().unwrap().to_string();
    let out = as_nobody(
        None,
        "/usr/bin/mariadb-install-db",
        &[
            "--no-defaults",
            &format!("--datadir={data_s}"),
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "mariadb-install-db: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let init_file = dir.path("init.sql");
    std::fs::write(&init_file, init).unwrap();
    let mut args = vec![
        "--no-defaults".to_string(),
        format!("--datadir={data_s}"),
        format!("--socket={}", dir.path("sock").display()),
        format!("--pid-file={}", dir.path("pid").display()),
        format!("--bind-address={ip}"),
        "--port=3306".into(),
        format!("--init-file={}", init_file.display()),
        "--skip-log-bin".into(),
        "--innodb-buffer-pool-size=16M".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let log = dir.path("log");
    let proc = start(ns, "/usr/sbin/mariadbd", &args, &log);
    let mut s = Server { proc, log, dir };
    wait_listening(ns, &format!("{ip}:3306"), &mut s, Duration::from_secs(30));
    s
}
