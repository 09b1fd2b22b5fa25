//! Stage 2c: the local side. Who listens on the port on this machine, on which addresses,
//! which process owns it, and what this machine's own firewall does to the port.
//!
//! Runs when the target is this machine (loopback, or an address of a local interface), with
//! `--local`, or for `canreach :PORT`. It reads the socket table ([`sock_diag`], else
//! [`proc_net`]), maps socket
//! inodes to processes through `/proc/PID/fd`, looks for the servers that usually serve the
//! port ([`servers`]), and reads the nftables ruleset ([`nft`]). Nothing here fails the check:
//! without root, other users' sockets show a uid but no process, and the firewall is reported
//! as not inspected. [`idle`] tells the session stage when the program behind a port has gone
//! back to waiting.

pub mod addresses;
pub mod idle;
mod netlink;
pub mod netstat;
pub mod nft;
pub mod proc_net;
pub mod servers;
pub mod shared;
pub mod sock_diag;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use self::nft::{FirewallRule, NftError};
use self::proc_net::{LISTEN, SocketEntry};

/// A process, as far as this user can see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    /// `/proc/PID/comm` (decoded lossily; raw: escape it when printing).
    pub name: String,
    /// `/proc/PID/cmdline`, arguments joined by spaces, secrets masked ([`mask_cmdline`]), at
    /// most [`MAX_CMDLINE`] characters. Raw otherwise: escape it when printing.
    pub cmdline: String,
    /// The executable it runs (`readlink /proc/PID/exe`, decoded lossily; ` (deleted)` at the
    /// end when the file was replaced or removed since). Read only for a listener's owner
    /// (one readlink: the scan of every process must stay cheap); `None` when not read, or
    /// when it could not be (another user's process without root: EACCES). The name a process
    /// shows (`comm`, `argv[0]`) is its own choice; this path is the kernel's. Raw: escape it
    /// when printing.
    pub exe: Option<String>,
}

/// A listening socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub address: IpAddr,
    pub port: u16,
    pub uid: u32,
    /// Connections the kernel completed that the program has not accepted yet (`ss`'s
    /// Recv-Q of a listener; `idiag_rqueue`).
    pub queued: u32,
    /// The most the accept queue holds (`ss`'s Send-Q; `idiag_wqueue`). `None` where the
    /// socket table does not say (the /proc/net/tcp fallback). Past it, SYNs are dropped.
    pub backlog: Option<u32>,
    pub user: Option<String>,
    /// `None` when the owner could not be seen (another user's process, without root).
    pub process: Option<Process>,
}

impl Listener {
    /// Is its accept queue full, so that the kernel drops new SYNs (Recv-Q > Send-Q)?
    pub fn queue_full(&self) -> bool {
        self.backlog.is_some_and(|b| self.queued > b)
    }
}

/// A process of a server that usually serves the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningServer {
    pub server: &'static str,
    pub process: Process,
    /// Its listening sockets, when they could be seen (`None` without permission).
    pub listening: Option<Vec<SocketAddr>>,
}

/// What the firewall inspection found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firewall {
    pub inspected: bool,
    /// Why not, when not (the diagnosis words it).
    pub reason: Option<NftError>,
    /// canreach was root when it tried.
    pub privileged: bool,
    pub rules: Vec<FirewallRule>,
}

/// Everything the local stage learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFacts {
    pub port: u16,
    /// This machine's addresses (all interfaces).
    pub addresses: Vec<IpAddr>,
    /// Listeners on the port.
    pub listeners: Vec<Listener>,
    /// Other ports the same processes listen on (among their fds up to [`FDS_AFTER_OWNER`]
    /// past the one on the port).
    pub owner_other_listeners: Vec<Listener>,
    /// Processes of the servers that usually serve the port (empty when none runs).
    pub usual_servers: Vec<RunningServer>,
    /// The well-known servers for this port, whether running or not (names).
    pub usual_server_names: Vec<&'static str>,
    /// Whether this ran as root (sees every process).
    pub privileged: bool,
    /// SYNs this network namespace dropped at full accept queues since boot.
    pub listen_drops: Option<netstat::ListenCounters>,
    /// The search for the listeners' owning processes ran out of its time budget
    /// ([`OWNER_SEARCH_BUDGET`]) before every owner was found: a listener without a process
    /// may then have an owner this user could see.
    pub owner_search_incomplete: bool,
    /// This machine runs systemd ([`runs_systemd`]): advice may use `systemctl` and
    /// `journalctl` here.
    pub systemd: bool,
}

/// Does this machine run systemd? systemd's own test (`sd_booted`): the directory
/// /run/systemd/system exists. A container or an init-less system has no units to start, so
/// `systemctl` advice would fail there.
pub fn runs_systemd() -> bool {
    std::fs::symlink_metadata("/run/systemd/system").is_ok_and(|m| m.is_dir())
}

/// The most the search for owning processes (`/proc/PID/fd` of every process) may take. On a
/// machine with thousands of processes the scan costs tens of milliseconds, in /proc's order,
/// so the owner is found fast or slowly depending on its pid; past this budget the report says
/// the search was cut short rather than hold a check that takes a few milliseconds.
/// Counted in this thread's CPU time (the scan is system calls), so that a machine busy with
/// other work slows the scan down without cutting it short. A debug build (the tests') spends
/// about ten times as long per process, and gets ten times the budget.
pub const OWNER_SEARCH_BUDGET: std::time::Duration = if cfg!(debug_assertions) {
    std::time::Duration::from_millis(50)
} else {
    std::time::Duration::from_millis(5)
};

/// This thread's CPU time so far (user and system).
#[allow(unsafe_code)]
fn thread_cpu_time() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Is `ip` an address of this machine?
pub fn is_local(ip: IpAddr, addresses: &[IpAddr]) -> bool {
    ip.is_loopback()
        || ip.to_canonical().is_loopback()
        || ip.is_unspecified()
        || addresses.contains(&ip)
}

/// How many TCP connects this machine (this network namespace) has begun: `ActiveOpens` in
/// /proc/net/snmp, a counter that only grows (a few µs to read: no table is walked).
pub fn tcp_active_opens() -> Option<u64> {
    parse_active_opens(&read_proc_file("/proc/net/snmp", 1 << 16).ok()?)
}

/// At most `limit` bytes of a /proc file, in two reads when it fits a page: one into a
/// page-sized buffer, one to see the end. `std::fs::read` asks the size first (0 for /proc)
/// and then reads 32 bytes, 32, 64, …: six system calls for a /proc/PID/stat, at several µs
/// each here, and a check makes dozens of these reads.
pub(crate) fn read_proc_file(path: &str, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    let mut out = Vec::with_capacity(usize::try_from(limit.min(4096)).unwrap_or(4096));
    // A read cut short (the process exited meanwhile) keeps what it got.
    match f.take(limit).read_to_end(&mut out) {
        Err(e) if out.is_empty() => Err(e),
        _ => Ok(out),
    }
}

/// `ActiveOpens` from the text of /proc/net/snmp: the `Tcp:` line of names, then of values.
pub fn parse_active_opens(text: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(text).ok()?;
    let mut tcp = text.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next()?, tcp.next()?);
    let at = names.split_whitespace().position(|n| n == "ActiveOpens")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// This machine's interface addresses (one netlink dump, see [`addresses`]).
pub fn interface_addresses() -> Vec<IpAddr> {
    addresses::read()
}

/// Gather the local facts for `port`, given this machine's interface addresses (blocking: a
/// netlink dump and /proc reads).
pub fn inspect(port: u16, addresses: Vec<IpAddr>) -> LocalFacts {
    inspect_ports(&[port], addresses)
        .pop()
        .expect("one port asked, one answer")
}

/// The local facts of several ports from one socket-table read and one /proc scan (a run of
/// many targets on this machine shares them, see [`shared`]): one [`LocalFacts`] per port, in
/// the order of `ports` (blocking).
pub fn inspect_ports(ports: &[u16], addresses: Vec<IpAddr>) -> Vec<LocalFacts> {
    inspect_ports_within(ports, addresses, OWNER_SEARCH_BUDGET)
}

/// [`inspect_ports`] with `budget` for the owner search (this thread's CPU time).
fn inspect_ports_within(
    ports: &[u16],
    addresses: Vec<IpAddr>,
    budget: std::time::Duration,
) -> Vec<LocalFacts> {
    let privileged = crate::sys::is_root();
    let systemd = runs_systemd();
    // netlink is fast; /proc/net/tcp is the fallback where netlink is not allowed.
    let table = sock_diag::read().unwrap_or_else(|_| proc_net::read());
    let listening: Vec<&SocketEntry> = table.iter().filter(|e| e.state == LISTEN).collect();
    let asked: Vec<&SocketEntry> = listening
        .iter()
        .copied()
        .filter(|e| ports.contains(&e.local.port()))
        .collect();
    let mut usual: Vec<&servers::KnownServer> = Vec::new();
    for s in ports.iter().flat_map(|p| servers::for_port(*p)) {
        if !usual.iter().any(|u| u.name == s.name) {
            usual.push(s);
        }
    }

    let wanted: HashSet<u64> = asked.iter().map(|e| e.inode).collect();
    // The other listeners an owner may hold too ("also listens on").
    let others: HashSet<u64> = listening
        .iter()
        .map(|e| e.inode)
        .filter(|i| !wanted.contains(i))
        .collect();
    let uids: HashSet<u32> = asked.iter().map(|e| e.uid).collect();
    let budget = thread_cpu_time() + budget;
    let scan = scan_processes(
        &Sought {
            wanted: &wanted,
            others: &others,
        },
        &uids,
        &usual,
        budget,
    );

    let users = UserNames::default();
    let listener = |e: &SocketEntry| Listener {
        address: e.local.ip(),
        port: e.local.port(),
        queued: e.queued,
        backlog: e.backlog,
        uid: e.uid,
        user: users.name(e.uid),
        process: scan.owner.get(&e.inode).cloned(),
    };
    // Only worth a read when a listener's queue is full: it then says how often.
    let listen_drops = asked
        .iter()
        .any(|e| listener(e).queue_full())
        .then(netstat::read)
        .flatten();
    ports
        .iter()
        .map(|&port| {
            let listeners: Vec<Listener> = asked
                .iter()
                .filter(|e| e.local.port() == port)
                .map(|e| listener(e))
                .collect();
            let owner_pids: HashSet<u32> = listeners
                .iter()
                .filter_map(|l| l.process.as_ref().map(|p| p.pid))
                .collect();
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
            let usual_here: Vec<&servers::KnownServer> = servers::for_port(port).collect();
            let usual_servers = scan
                .usual
                .iter()
                .filter(|(server, _)| usual_here.iter().any(|s| s.name == *server))
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
            let incomplete = scan.incomplete && listeners.iter().any(|l| l.process.is_none());
            LocalFacts {
                systemd,
                port,
                addresses: addresses.clone(),
                owner_other_listeners,
                usual_servers,
                usual_server_names: usual_here.iter().map(|s| s.name).collect(),
                privileged,
                listen_drops: listen_drops.filter(|_| listeners.iter().any(Listener::queue_full)),
                listeners,
                owner_search_incomplete: incomplete,
            }
        })
        .collect()
}

/// Read this machine's firewall for `port` (blocking: runs `nft`, killed at `deadline`).
/// Never fails: why it could not be read is kept in `reason`.
pub fn firewall(port: u16, deadline: std::time::Instant) -> Firewall {
    firewall_from(nft::read(port, deadline))
}

/// The firewall facts from what reading the ruleset gave.
pub fn firewall_from(read: Result<Vec<FirewallRule>, NftError>) -> Firewall {
    let privileged = crate::sys::is_root();
    match read {
        Ok(rules) => Firewall {
            inspected: true,
            reason: None,
            privileged,
            rules,
        },
        Err(e) => Firewall {
            inspected: false,
            reason: Some(e),
            privileged,
            rules: vec![],
        },
    }
}

/// What the owner search looks for in processes' fds.
struct Sought<'a> {
    /// The listeners of the ports asked about: their owners are wanted.
    wanted: &'a HashSet<u64>,
    /// Every other listening socket: an owner's fds are read on past its wanted socket only
    /// while one of these may still be among them.
    others: &'a HashSet<u64>,
}

#[derive(Default)]
struct Scan {
    /// socket inode → owning process, for the wanted inodes.
    owner: HashMap<u64, Process>,
    /// pid → its socket inodes, for owners and usual servers whose fds could be read.
    inodes_of: HashMap<u32, HashSet<u64>>,
    /// Running processes of the usual servers.
    usual: Vec<(&'static str, Process)>,
    /// The budget ran out before every wanted inode's owner was found.
    incomplete: bool,
    /// Processes whose fds were read only up to [`FIRST_FDS`], none of them wanted.
    deep: Vec<u32>,
}

/// Find the owners of `wanted` socket inodes and the processes of the `usual` servers in
/// /proc. Reads only what can change the report: a process's name only when usual servers are
/// looked for or it owns a wanted socket; fds only while an owner is missing (or of a usual
/// server), first of the processes running as one of the sockets' `uids` (the socket's uid is
/// its creator's; /proc/PID belongs to the process's user), then — only if an owner is still
/// missing — of the others (a process that changed user, a non-dumpable one whose /proc entry
/// is root's). A process's fd scan stops at its first EACCES. The owner search stops at
/// `budget`, this thread's CPU time (`incomplete` then); the usual servers' names are still read.
fn scan_processes(
    sought: &Sought,
    uids: &HashSet<u32>,
    usual: &[&servers::KnownServer],
    budget: std::time::Duration,
) -> Scan {
    let mut scan = Scan::default();
    // Read a few dozen pids at a time: the scan usually stops long before the end.
    let Ok(pids) = crate::sys::proc_pids() else {
        return scan;
    };
    let kernel = kernel_threads();
    let mut later: Vec<u32> = Vec::new();
    let mut out_of_time = false;
    for (n, pid) in pids.filter(|p| !kernel.contains(p)).enumerate() {
        let need_owner = scan.owner.len() < sought.wanted.len() && !out_of_time;
        if !need_owner && usual.is_empty() {
            break;
        }
        // The fd directory, opened once: its owner tells the process's user.
        let dir = need_owner
            .then(|| crate::sys::fd_dir(pid).ok())
            .flatten()
            .filter(|d| uids.is_empty() || d.owner_uid().is_some_and(|u| uids.contains(&u)));
        if need_owner && dir.is_none() {
            later.push(pid);
        }
        visit(&mut scan, pid, sought, usual, dir);
        // The clock is a system call: looked at every few processes (each costs ~10 µs).
        if n % 8 == 7 {
            out_of_time = out_of_time || thread_cpu_time() >= budget;
        }
    }
    for pid in later {
        if scan.owner.len() >= sought.wanted.len() {
            break;
        }
        if out_of_time || thread_cpu_time() >= budget {
            out_of_time = true;
            break;
        }
        visit_fds(&mut scan, pid, sought, None, None, None);
    }
    // The fds past the first FIRST_FDS of the processes that have more, only while an owner
    // is missing: a listener is opened early, and a server holding thousands of connections
    // (a readlink each) is read in full only when no first look found the owner.
    let deep = std::mem::take(&mut scan.deep);
    for pid in deep {
        if scan.owner.len() >= sought.wanted.len() {
            break;
        }
        if out_of_time || thread_cpu_time() >= budget {
            out_of_time = true;
            break;
        }
        visit_fds_from(
            &mut scan,
            pid,
            sought,
            None,
            None,
            None,
            FIRST_FDS,
            usize::MAX,
        );
    }
    scan.incomplete = out_of_time && scan.owner.len() < sought.wanted.len();
    scan
}

/// The kernel's own threads: they hold no file descriptors (no socket of theirs is in any
/// /proc/PID/fd) and have no command line, yet they are most of /proc on a small machine (55
/// of 66 entries here), each costing an open, a listing and a close. They are the children
/// of `kthreadd` (pid 2), listed in one read; nothing is skipped where pid 2 is something else
/// (a PID namespace shows no kernel threads).
fn kernel_threads() -> HashSet<u32> {
    if read_proc(2, "comm", 64) != b"kthreadd\n" {
        return HashSet::new();
    }
    let mut out: HashSet<u32> = idle::parse_children(&read_proc(2, "task/2/children", 1 << 20))
        .into_iter()
        .collect();
    out.insert(2);
    out
}

/// One process of the first pass: its name when usual servers are looked for, its fds when
/// it may own a wanted socket (`dir`, its fd directory, opened) or is a usual server.
fn visit(
    scan: &mut Scan,
    pid: u32,
    sought: &Sought,
    usual: &[&servers::KnownServer],
    dir: Option<crate::sys::FdDir>,
) {
    let comm = if usual.is_empty() {
        None
    } else {
        Some(comm(pid))
    };
    let usual_server = comm
        .as_deref()
        .and_then(|c| usual.iter().find(|s| s.processes.contains(&c)))
        .map(|s| s.name);
    if dir.is_none() && usual_server.is_none() {
        return;
    }
    if usual_server.is_some() {
        // A usual server's listeners are reported whole ("it listens on 5433 instead"); a
        // database opens its files before its sockets, so its fds are read in full (few
        // processes are usual servers).
        visit_fds_from(scan, pid, sought, dir, comm, usual_server, 0, usize::MAX);
    } else {
        visit_fds(scan, pid, sought, dir, comm, usual_server);
    }
}

/// Read a process's socket inodes; record it as the owner of the wanted ones it holds, and as
/// a usual server.
fn visit_fds(
    scan: &mut Scan,
    pid: u32,
    sought: &Sought,
    dir: Option<crate::sys::FdDir>,
    comm: Option<String>,
    usual_server: Option<&'static str>,
) {
    visit_fds_from(scan, pid, sought, dir, comm, usual_server, 0, FIRST_FDS);
}

/// [`visit_fds`] for at most `limit` fds from the `skip`th on; a process cut short without a
/// wanted socket is put on `scan.deep` for a later look at the rest.
#[allow(clippy::too_many_arguments)]
fn visit_fds_from(
    scan: &mut Scan,
    pid: u32,
    sought: &Sought,
    dir: Option<crate::sys::FdDir>,
    comm: Option<String>,
    usual_server: Option<&'static str>,
    skip: usize,
    limit: usize,
) {
    let (mut inodes, cut) = socket_inodes(pid, dir, sought, skip, limit);
    if cut {
        scan.deep.push(pid);
    }
    if let Some(earlier) = scan.inodes_of.get(&pid) {
        inodes.extend(earlier);
    }
    let owns: Vec<u64> = inodes
        .iter()
        .copied()
        .filter(|i| sought.wanted.contains(i))
        .collect();
    if owns.is_empty() && usual_server.is_none() {
        return;
    }
    let process = Process {
        pid,
        name: comm.unwrap_or_else(|| self::comm(pid)),
        cmdline: cmdline(pid),
        exe: if owns.is_empty() { None } else { exe(pid) },
    };
    for i in owns {
        scan.owner.insert(i, process.clone());
    }
    if let Some(s) = usual_server {
        scan.usual.push((s, process.clone()));
    }
    if !inodes.is_empty() {
        scan.inodes_of.insert(pid, inodes);
    }
}

/// `/proc/PID/comm`, decoded lossily: a process may name itself with any bytes (prctl
/// PR_SET_NAME), and a name that is not UTF-8 must not read as no name at all.
fn comm(pid: u32) -> String {
    let raw = read_proc(pid, "comm", 64);
    String::from_utf8_lossy(&raw)
        .trim_end_matches('\n')
        .to_string()
}

/// How many more fds of a process are read once it has shown to own a wanted socket: enough
/// for the other ports it listens on (opened at start, next to it), without reading the
/// connections of a server that holds thousands (a readlink each, 5–10 µs on this project's
/// machine: 256 of them were a quarter of an open check's inspection). Fewer when every
/// listener of the machine is seen.
const FDS_AFTER_OWNER: usize = 32;

/// `/proc/PID/exe`'s target, decoded lossily (`None` when it cannot be read: EACCES for
/// another user's process without root, ENOENT for a kernel thread or a process gone).
fn exe(pid: u32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// How many fds of each process the first look reads (in fd order). A listening socket is
/// opened when a server starts, among its first descriptors; the connections it then holds
/// come after.
const FIRST_FDS: usize = 64;

/// The socket inodes a process holds (empty when its fds cannot be read), reading at most
/// `limit` fds from the `skip`th on, and whether it stopped there with more to read and no
/// `wanted` one seen. Stops at the first fd it may not read (EACCES): the rest are not readable
/// either; and [`FDS_AFTER_OWNER`] fds after the first `wanted` one (its other listeners are
/// then those among them).
fn socket_inodes(
    pid: u32,
    dir: Option<crate::sys::FdDir>,
    sought: &Sought,
    skip: usize,
    limit: usize,
) -> (HashSet<u64>, bool) {
    let mut out = HashSet::new();
    let Some(mut fds) = dir.or_else(|| crate::sys::fd_dir(pid).ok()) else {
        return (out, false);
    };
    // Listeners (wanted or not) this process may also hold, not yet seen among its fds: the
    // v6 twin of a dual-stack listener, another port of the run, another port it serves.
    let mut unseen = sought.wanted.len() + sought.others.len();
    let mut left: Option<usize> = None;
    let mut read = 0;
    // fd 0 is read before the listing: a process whose fds may not be read (another user's;
    // without CAP_SYS_PTRACE, one that is not dumpable) fails there when it has an fd 0, and
    // the listing (the kernel builds an entry for each fd listed, a few dozen a call) is not
    // made for nothing.
    let mut fd0 = None;
    if skip == 0 {
        match fds.link(0) {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return (out, false),
            first => fd0 = Some(first),
        }
    }
    while let Some(fd) = fds.next() {
        if read < skip {
            read += 1;
            continue;
        }
        if left.is_none() && read - skip >= limit {
            return (out, true);
        }
        if let Some(n) = left.as_mut() {
            // Every listener of the machine is among its fds: nothing more to find.
            if *n == 0 || unseen == 0 {
                break;
            }
            *n -= 1;
        }
        read += 1;
        let link = match fd0.take_if(|_| fd == 0) {
            Some(first) => first,
            None => fds.link(fd),
        };
        match link {
            Ok(target) => {
                let inode = std::str::from_utf8(&target)
                    .ok()
                    .and_then(|t| t.strip_prefix("socket:[")?.strip_suffix(']'))
                    .and_then(|n| n.parse::<u64>().ok());
                if let Some(i) = inode {
                    // The allowance starts again at each wanted socket: one process may own
                    // the listeners of several ports of a run, far apart.
                    let listener = sought.wanted.contains(&i) || sought.others.contains(&i);
                    if out.insert(i) && listener {
                        unseen = unseen.saturating_sub(1);
                    }
                    if sought.wanted.contains(&i) {
                        left = Some(FDS_AFTER_OWNER);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => break,
            // The fd was closed meanwhile.
            Err(_) => {}
        }
    }
    (out, false)
}

/// Longest command line kept, in characters (`…` when cut).
pub const MAX_CMDLINE: usize = 512;

/// Most of /proc/PID/cmdline read: far more than is shown, enough for the options that come
/// first; a process may have megabytes of arguments.
const CMDLINE_READ: u64 = 64 << 10;

/// At most `limit` bytes of `/proc/PID/FILE` (empty when unreadable).
fn read_proc(pid: u32, file: &str, limit: u64) -> Vec<u8> {
    read_proc_file(&format!("/proc/{pid}/{file}"), limit).unwrap_or_default()
}

fn cmdline(pid: u32) -> String {
    let raw = read_proc(pid, "cmdline", CMDLINE_READ);
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    mask_cmdline(&args)
}

/// A command line for the report: `args` joined by spaces, secrets masked
/// ([`crate::secrets::mask_args`]: a server's command line is a common place for its
/// password), cut to [`MAX_CMDLINE`] characters. Nothing is escaped here (that is done when
/// printing).
pub fn mask_cmdline(args: &[String]) -> String {
    let joined = crate::secrets::mask_args(args);
    match joined.char_indices().nth(MAX_CMDLINE) {
        Some((cut, _)) => format!("{}…", &joined[..cut]),
        None => joined,
    }
}

/// uid → user name: /etc/passwd first (NSS's "files" source, which comes first on every usual
/// system), then the system's user database (NSS: LDAP, sssd …), cached. `getpwuid_r` reads
/// nsswitch.conf and asks nscd before the file: ~0.2 ms of an open check that takes 2.
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
    std::fs::read("/etc/passwd")
        .ok()
        .and_then(|text| passwd_name(&text, uid))
        .or_else(|| crate::sys::user_name(uid))
}

/// The name of `uid` in the text of a passwd(5) file (`name:x:uid:gid:…`); the first entry
/// counts. Names are shown escaped by the renderers, like everything read from the machine.
fn passwd_name(text: &[u8], uid: u32) -> Option<String> {
    String::from_utf8_lossy(text).lines().find_map(|line| {
        let mut f = line.split(':');
        let name = f.next()?;
        let _password = f.next()?;
        (f.next()?.parse::<u32>().ok()? == uid && !name.is_empty()).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proc_file_is_read_whole_or_up_to_its_limit() {
        let whole = std::fs::read("/proc/self/cmdline").unwrap();
        assert_eq!(
            read_proc_file("/proc/self/cmdline", 1 << 20).unwrap(),
            whole
        );
        assert_eq!(read_proc_file("/proc/self/cmdline", 3).unwrap(), whole[..3]);
        // Past the first page-sized read.
        let path = std::env::temp_dir().join(format!("canreach-read-{}", std::process::id()));
        let big: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &big).unwrap();
        let read = read_proc_file(path.to_str().unwrap(), 1 << 20);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(read.unwrap(), big);
        assert!(read_proc_file("/proc/self/no-such-file", 10).is_err());
    }

    #[test]
    fn active_opens_come_from_the_tcp_lines_of_snmp() {
        let text = b"Ip: Forwarding DefaultTTL\nIp: 1 64\n\
            Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails\n\
            Tcp: 1 200 120000 -1 134589 94384 40150\n\
            Udp: InDatagrams\nUdp: 5\n";
        assert_eq!(parse_active_opens(text), Some(134589));
        assert_eq!(parse_active_opens(b"Tcp: ActiveOpens\n"), None);
        assert_eq!(parse_active_opens(b"\xff"), None);
        let before = tcp_active_opens().expect("readable here");
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        assert!(tcp_active_opens().unwrap() > before);
    }

    #[test]
    fn user_names_come_from_passwd_lines() {
        let text = b"root:x:0:0:root:/root:/bin/bash\n\
                     broken line\n\
                     :x:5:5::/:/bin/sh\n\
                     postgres:x:105:110:PostgreSQL:/var/lib/postgresql:/bin/bash\n\
                     dup:x:105:1::/:/bin/sh\n";
        assert_eq!(passwd_name(text, 0).as_deref(), Some("root"));
        assert_eq!(passwd_name(text, 105).as_deref(), Some("postgres"));
        assert_eq!(passwd_name(text, 5), None);
        assert_eq!(passwd_name(text, 7), None);
        assert_eq!(
            passwd_name(b"\xff\xfe:x:9:9\n", 9).as_deref(),
            Some("\u{fffd}\u{fffd}")
        );
    }

    /// [`inspect`] with time enough to look at every process: these tests find the owner
    /// among the machine's processes, however many run there (the budget's own behaviour is
    /// not what they test).
    fn inspect_unhurried(port: u16) -> LocalFacts {
        inspect_ports_within(
            &[port],
            interface_addresses(),
            std::time::Duration::from_secs(10),
        )
        .pop()
        .unwrap()
    }

    #[test]
    fn finds_its_own_listener_and_owner() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let f = inspect_unhurried(port);
        assert_eq!(f.listeners.len(), 1, "{f:?}");
        let mine = &f.listeners[0];
        assert_eq!(mine.address, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(mine.process.as_ref().unwrap().pid, std::process::id());
    }

    #[test]
    fn an_owner_whose_listener_comes_after_many_fds_is_found_by_the_second_look() {
        // More than FIRST_FDS descriptors before the listener: the first look at this process
        // stops short of it, the look at the rest finds it.
        let files: Vec<std::fs::File> = (0..FIRST_FDS + 40)
            .map(|_| std::fs::File::open("/dev/null").unwrap())
            .collect();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let f = inspect_unhurried(port);
        assert_eq!(f.listeners.len(), 1);
        let p = f.listeners[0].process.as_ref().expect("owner found");
        assert_eq!(p.pid, std::process::id());
        drop(files);
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
    fn command_lines_are_masked() {
        let args: Vec<String> = ["redis-server", "--requirepass", "hunter2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(mask_cmdline(&args), "redis-server --requirepass ***");
        assert_eq!(mask_cmdline(&[]), "");
    }

    #[test]
    fn command_lines_are_bounded() {
        let args: Vec<String> = (0..1000).map(|i| format!("arg{i}")).collect();
        let line = mask_cmdline(&args);
        assert_eq!(line.chars().count(), MAX_CMDLINE + 1);
        assert!(line.ends_with('…'));
        let one = vec!["ü".repeat(2000)];
        assert_eq!(mask_cmdline(&one).chars().count(), MAX_CMDLINE + 1);
    }

    proptest::proptest! {
        #[test]
        fn mask_cmdline_never_panics_and_stays_bounded(args in proptest::collection::vec("\\PC{0,40}", 0..30)) {
            let line = mask_cmdline(&args);
            proptest::prop_assert!(line.chars().count() <= MAX_CMDLINE + 1);
        }
    }

    #[test]
    fn user_names_come_from_the_user_database() {
        assert_eq!(lookup_user(0).as_deref(), Some("root"));
    }
}
