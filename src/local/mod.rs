//! Stage 2c: the local side. Who listens on the port on this machine, on which addresses,
//! which process owns it, and what this machine's own firewall does to the port.
//!
//! Runs when the target is this machine (loopback, or an address of a local interface), with
//! `--local`, or for `canreach :PORT`. It reads the socket table ([`sock_diag`], else
//! [`proc_net`]), maps socket
//! inodes to processes through `/proc/PID/fd`, looks for the servers that usually serve the
//! port ([`servers`]), and reads the nftables ruleset ([`nft`]). Nothing here fails the check:
//! without root, other users' sockets show a uid but no process, and the firewall is reported
//! as not inspected.

pub mod nft;
pub mod proc_net;
pub mod servers;
pub mod sock_diag;

use std::collections::{HashMap, HashSet};
use std::ffi::CStr;
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use self::nft::{FirewallRule, NftError};
use self::proc_net::{LISTEN, SocketEntry};

/// A process, as far as this user can see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Process {
    pub pid: u32,
    /// `/proc/PID/comm`.
    pub name: String,
    pub cmdline: String,
}

/// A listening socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listener {
    pub address: IpAddr,
    pub port: u16,
    pub family: &'static str,
    pub uid: u32,
    pub user: Option<String>,
    /// `None` when the owner could not be seen (another user's process, without root).
    pub process: Option<Process>,
}

/// A process of a server that usually serves the port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunningServer {
    pub server: &'static str,
    pub process: Process,
    /// Its listening sockets, when they could be seen (`None` without permission).
    pub listening: Option<Vec<SocketAddr>>,
}

/// What the firewall inspection found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Firewall {
    pub inspected: bool,
    /// Why not, when not.
    pub reason: Option<String>,
    pub rules: Vec<FirewallRule>,
}

/// Everything the local stage learnt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalFacts {
    pub port: u16,
    /// This machine's addresses (all interfaces).
    pub addresses: Vec<IpAddr>,
    /// Listeners on the port.
    pub listeners: Vec<Listener>,
    /// Other ports the same processes listen on.
    pub owner_other_listeners: Vec<Listener>,
    /// Processes of the servers that usually serve the port (empty when none runs).
    pub usual_servers: Vec<RunningServer>,
    /// The well-known servers for this port, whether running or not (names).
    pub usual_server_names: Vec<&'static str>,
    /// Whether this ran as root (sees every process).
    pub privileged: bool,
}

/// Is `ip` an address of this machine?
pub fn is_local(ip: IpAddr, addresses: &[IpAddr]) -> bool {
    ip.is_loopback()
        || ip.to_canonical().is_loopback()
        || ip.is_unspecified()
        || addresses.contains(&ip)
}

/// This machine's interface addresses (`getifaddrs`).
pub fn interface_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut ifap) } != 0 {
        return out;
    }
    let mut p = ifap;
    while !p.is_null() {
        // SAFETY: p walks the list getifaddrs returned.
        let ifa = unsafe { &*p };
        if !ifa.ifa_addr.is_null() {
            // SAFETY: ifa_addr points to a sockaddr whose family says its size.
            let ip = unsafe {
                match i32::from((*ifa.ifa_addr).sa_family) {
                    libc::AF_INET => {
                        let sin = &*ifa.ifa_addr.cast::<libc::sockaddr_in>();
                        Some(IpAddr::from(sin.sin_addr.s_addr.to_ne_bytes()))
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*ifa.ifa_addr.cast::<libc::sockaddr_in6>();
                        Some(IpAddr::from(sin6.sin6_addr.s6_addr))
                    }
                    _ => None,
                }
            };
            if let Some(ip) = ip.filter(|ip| !out.contains(ip)) {
                out.push(ip);
            }
        }
        p = ifa.ifa_next;
    }
    // SAFETY: ifap came from a successful getifaddrs.
    unsafe { libc::freeifaddrs(ifap) };
    out
}

/// Gather the local facts for `port` (blocking: file reads and one `nft` run).
pub fn inspect(port: u16) -> LocalFacts {
    // SAFETY: geteuid has no preconditions.
    let privileged = unsafe { libc::geteuid() } == 0;
    // netlink is fast; /proc/net/tcp is the fallback where netlink is not allowed.
    let table = sock_diag::read().unwrap_or_else(|_| proc_net::read());
    let listening: Vec<&SocketEntry> = table.iter().filter(|e| e.state == LISTEN).collect();
    let on_port: Vec<&SocketEntry> = listening
        .iter()
        .copied()
        .filter(|e| e.local.port() == port)
        .collect();
    let usual: Vec<&servers::KnownServer> = servers::for_port(port).collect();

    let wanted: HashSet<u64> = on_port.iter().map(|e| e.inode).collect();
    let scan = scan_processes(&wanted, &usual);

    let users = UserNames::default();
    let listener = |e: &SocketEntry| Listener {
        address: e.local.ip(),
        port: e.local.port(),
        family: if e.local.is_ipv4() { "ipv4" } else { "ipv6" },
        uid: e.uid,
        user: users.name(e.uid),
        process: scan.owner.get(&e.inode).cloned(),
    };
    let listeners: Vec<Listener> = on_port.iter().map(|e| listener(e)).collect();
    let owner_pids: HashSet<u32> = scan.owner.values().map(|p| p.pid).collect();
    let owner_other_listeners = listening
        .iter()
        .filter(|e| e.local.port() != port)
        .filter(|e| {
            scan.inodes_of
                .iter()
                .any(|(pid, inodes)| owner_pids.contains(pid) && inodes.contains(&e.inode))
        })
        .map(|e| listener(e))
        .collect();
    let usual_servers = scan
        .usual
        .iter()
        .map(|(server, proc_)| RunningServer {
            server,
            process: proc_.clone(),
            listening: scan.inodes_of.get(&proc_.pid).map(|inodes| {
                listening
                    .iter()
                    .filter(|e| inodes.contains(&e.inode))
                    .map(|e| e.local)
                    .collect()
            }),
        })
        .collect();
    LocalFacts {
        port,
        addresses: interface_addresses(),
        listeners,
        owner_other_listeners,
        usual_servers,
        usual_server_names: usual.iter().map(|s| s.name).collect(),
        privileged,
    }
}

/// Read this machine's firewall for `port` (blocking: runs `nft`, killed at `deadline`).
/// Never fails: what could not be read is said in `reason`.
pub fn firewall(port: u16, deadline: std::time::Instant) -> Firewall {
    // SAFETY: geteuid has no preconditions.
    let privileged = unsafe { libc::geteuid() } == 0;
    match nft::read(port, deadline) {
        Ok(rules) => Firewall {
            inspected: true,
            reason: None,
            rules,
        },
        Err(e) => Firewall {
            inspected: false,
            reason: Some(match e {
                NftError::NotPermitted(_) if !privileged => {
                    "reading the firewall needs root: run with sudo to include it".to_string()
                }
                other => other.to_string(),
            }),
            rules: vec![],
        },
    }
}

#[derive(Default)]
struct Scan {
    /// socket inode → owning process, for the wanted inodes.
    owner: HashMap<u64, Process>,
    /// pid → its socket inodes, for owners and usual servers whose fds could be read.
    inodes_of: HashMap<u32, HashSet<u64>>,
    /// Running processes of the usual servers.
    usual: Vec<(&'static str, Process)>,
}

/// One pass over /proc: find the owners of `wanted` socket inodes and the processes of the
/// `usual` servers. Unreadable entries (other users without root, processes that exit) are
/// skipped.
fn scan_processes(wanted: &HashSet<u64>, usual: &[&servers::KnownServer]) -> Scan {
    let mut scan = Scan::default();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return scan;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let comm = comm.trim_end();
        let usual_server = usual.iter().find(|s| s.processes.contains(&comm));
        let need_owner = scan.owner.len() < wanted.len();
        if !need_owner && usual_server.is_none() {
            continue;
        }
        let inodes = socket_inodes(pid);
        let owns: Vec<u64> = inodes
            .iter()
            .copied()
            .filter(|i| wanted.contains(i))
            .collect();
        if owns.is_empty() && usual_server.is_none() {
            continue;
        }
        let process = Process {
            pid,
            name: comm.to_string(),
            cmdline: cmdline(pid),
        };
        for i in owns {
            scan.owner.insert(i, process.clone());
        }
        if let Some(s) = usual_server {
            scan.usual.push((s.name, process.clone()));
        }
        if !inodes.is_empty() {
            scan.inodes_of.insert(pid, inodes);
        }
    }
    scan
}

/// The socket inodes a process holds (empty when its fds cannot be read).
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    fds.flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let t = target.to_str()?;
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

fn cmdline(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    raw.split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// uid → user name through the system's user database (NSS), cached.
#[derive(Default)]
struct UserNames {
    cache: std::cell::RefCell<HashMap<u32, Option<String>>>,
}

impl UserNames {
    fn name(&self, uid: u32) -> Option<String> {
        self.cache
            .borrow_mut()
            .entry(uid)
            .or_insert_with(|| lookup_user(uid))
            .clone()
    }
}

fn lookup_user(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: zeroed passwd is valid for getpwuid_r to fill.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: buffers are valid for the call; result points into pwd/buf on success.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: pw_name is a NUL-terminated string inside buf.
    Some(
        unsafe { CStr::from_ptr(pwd.pw_name) }
            .to_string_lossy()
            .into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_its_own_listener_and_owner() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let f = inspect(port);
        assert_eq!(f.listeners.len(), 1, "{f:?}");
        let mine = &f.listeners[0];
        assert_eq!(mine.address, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(mine.process.as_ref().unwrap().pid, std::process::id());
    }

    #[test]
    fn loopback_and_interface_addresses_are_local() {
        let addrs = interface_addresses();
        assert!(addrs.iter().any(|a| a.is_loopback()));
        assert!(is_local("127.0.0.2".parse().unwrap(), &addrs));
        assert!(is_local("::1".parse().unwrap(), &addrs));
        assert!(!is_local("198.18.99.99".parse().unwrap(), &[]));
    }

    #[test]
    fn user_names_come_from_the_user_database() {
        assert_eq!(lookup_user(0).as_deref(), Some("root"));
    }
}
