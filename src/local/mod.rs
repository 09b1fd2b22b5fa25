//! Stage 2c: the local side. Who listens on the port on this machine, on which addresses,
//! which process owns it, and what this machine's own firewall does to the port.
//!
//! Runs when the target is this machine (loopback, or an address of a local interface), with
//! `--local`, or for `canreach :PORT`. It reads the socket table ([`sock_diag`], else
//! [`proc_net`]), maps socket
//! inodes to processes through `/proc/PID/fd`, looks for the servers that usually serve the
//! port ([`servers`]), and reads the nftables ruleset ([`nft`]). Nothing here fails the check:
//! without root, other users' sockets show a uid but no process, and the firewall is reported
//! as not inspected. [`idle`] tells the session stage when the program behind a port is waiting
//! for the client to speak (every thread asleep).

pub(crate) mod addresses;
pub(crate) mod idle;
mod netlink;
pub(crate) mod netstat;
pub(crate) mod nft;
pub(crate) mod proc_net;
pub mod servers;
pub(crate) mod shared;
pub(crate) mod sock_diag;

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
    pub(crate) fn queue_full(&self) -> bool {
        self.backlog.is_some_and(|b| self.queued > b)
    }
}

/// A running instance of a server that usually serves the port: one per process tree, not
/// one per process (PostgreSQL's checkpointer, walwriter … and nginx's workers are children
/// of the process that listens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningServer {
    pub server: &'static str,
    /// The process that names the instance: the one holding its listening sockets, else the
    /// root of its tree.
    pub process: Process,
    /// The instance's listening sockets (of any of its processes), when they could be seen:
    /// `None` when no process of it let its descriptors be read (another user's, without
    /// root; or gone meanwhile).
    pub listening: Option<Vec<SocketAddr>>,
    /// The pids of its other processes (children of the same server), ascending.
    pub workers: Vec<u32>,
}

/// A listener's accept queue as `ss -ltn` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLook {
    /// Connections waiting to be accepted (Recv-Q).
    pub queued: u32,
    /// Its room (Send-Q); past it new SYNs are dropped.
    pub backlog: Option<u32>,
    /// The packets this listener dropped so far (`sk_drops`: a SYN at its full queue among
    /// them), `None` when the kernel did not say: unlike `ListenOverflows`, no other
    /// listener's.
    pub drops: Option<u32>,
}

impl QueueLook {
    /// Full: the kernel drops new SYNs (Recv-Q > Send-Q).
    pub(crate) fn full(&self) -> bool {
        self.backlog.is_some_and(|b| self.queued > b)
    }
}

/// The listener that takes connections to `address` and its accept queue now (one netlink
/// lookup), with this network namespace's listen-drop counters (/proc/net/netstat: a few
/// hundred µs, so only for a probe already silent). Blocking.
pub(crate) fn queue_look(
    address: SocketAddr,
) -> (Option<QueueLook>, Option<netstat::ListenCounters>) {
    let listener = sock_diag::listener_with_drops(address)
        .ok()
        .flatten()
        .map(|(e, drops)| QueueLook {
            queued: e.queued,
            backlog: e.backlog,
            drops,
        });
    (listener, netstat::read())
}

/// A process of a usual server as the scan found it, before instances are told apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FoundServer {
    pub server: &'static str,
    pub process: Process,
    /// Its parent, from /proc/PID/stat (`None` when unreadable).
    pub ppid: Option<u32>,
    /// Its listening sockets; `None` when its descriptors could not be read.
    pub listening: Option<Vec<SocketAddr>>,
}

/// One [`RunningServer`] per instance: a process whose parent is a process of the same
/// server belongs to its parent's instance (followed up to the root of the tree). Instances
/// come in the order their roots were found.
pub(crate) fn instances(found: &[FoundServer]) -> Vec<RunningServer> {
    let by_pid: HashMap<u32, &FoundServer> = found.iter().map(|f| (f.process.pid, f)).collect();
    let root_of = |f: &FoundServer| {
        let mut at = f;
        // Bounded: a pid cycle cannot happen in /proc, but a read mid-change must not loop.
        for _ in 0..found.len() {
            match at.ppid.and_then(|p| by_pid.get(&p)) {
                Some(parent)
                    if parent.server == at.server && parent.process.pid != at.process.pid =>
                {
                    at = parent
                }
                _ => break,
            }
        }
        at.process.pid
    };
    let mut groups: Vec<(u32, Vec<&FoundServer>)> = Vec::new();
    for f in found {
        let root = root_of(f);
        match groups.iter_mut().find(|(r, _)| *r == root) {
            Some((_, members)) => members.push(f),
            None => groups.push((root, vec![f])),
        }
    }
    groups
        .into_iter()
        .map(|(root, members)| {
            let root_found = by_pid.get(&root).copied().unwrap_or(members[0]);
            let listener = members
                .iter()
                .find(|m| m.listening.as_ref().is_some_and(|l| !l.is_empty()));
            let named = listener.copied().unwrap_or(root_found);
            let listening = if listener.is_some() {
                let mut all: Vec<SocketAddr> = Vec::new();
                for a in members
                    .iter()
                    .filter_map(|m| m.listening.as_ref())
                    .flatten()
                {
                    if !all.contains(a) {
                        all.push(*a);
                    }
                }
                Some(all)
            } else {
                // The root holds a server's listeners: read and empty, it listens nowhere.
                root_found.listening.clone()
            };
            let mut workers: Vec<u32> = members
                .iter()
                .map(|m| m.process.pid)
                .filter(|p| *p != named.process.pid)
                .collect();
            workers.sort_unstable();
            RunningServer {
                server: named.server,
                process: named.process.clone(),
                listening,
                workers,
            }
        })
        .collect()
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
pub(crate) fn runs_systemd() -> bool {
    std::fs::symlink_metadata("/run/systemd/system").is_ok_and(|m| m.is_dir())
}

/// The most the search for owning processes (`/proc/PID/fd` of every process) may take. On a
/// machine with thousands of processes the scan costs tens of milliseconds, in /proc's order,
/// so the owner is found fast or slowly depending on its pid; past this budget the report says
/// the search was cut short rather than hold a check that takes a few milliseconds.
/// Counted in this thread's CPU time (the scan is system calls), so that a machine busy with
/// other work slows the scan down without cutting it short. A debug build (the tests') spends
/// about ten times as long per process, and gets ten times the budget.
pub(crate) const OWNER_SEARCH_BUDGET: std::time::Duration = if cfg!(debug_assertions) {
    std::time::Duration::from_millis(50)
} else {
    std::time::Duration::from_millis(5)
};

/// Whether the owner search may go on past [`OWNER_SEARCH_BUDGET`]. While the check that asked
/// for it is waiting for something else anyway (its probe of a silent port, the session, the
/// watch for the program's accept), going on delays no answer, and a machine with hundreds of
/// processes needs more than the budget to reach a late owner; so the search goes on, up to
/// `until` (shortly before the check's deadline). Once the check is ready to answer, or
/// anything waits on the owners, it calls [`Patience::hurry`]: from then on the budget holds
/// again. Shared by the clones.
#[derive(Debug, Clone)]
pub(crate) struct Patience {
    hurry: std::sync::Arc<std::sync::atomic::AtomicBool>,
    until: std::time::Instant,
    /// Past this instant the search stops whatever its budget: the check is cut there, and
    /// a search that goes on (its thread starved of CPU time under load, its budget unspent)
    /// would lose the listeners it found with it.
    cut: Option<std::time::Instant>,
}

impl Patience {
    /// Patient until `until`, unless hurried sooner; stopped there in any case. (An `until`
    /// already past is no patience: the budget holds, and nothing else stops the search.)
    pub(crate) fn until(until: std::time::Instant) -> Patience {
        Patience {
            hurry: Default::default(),
            until,
            cut: (until > std::time::Instant::now()).then_some(until),
        }
    }

    /// No patience: the budget holds from the start.
    pub(crate) fn none() -> Patience {
        let p = Patience::until(std::time::Instant::now());
        p.hurry();
        p
    }

    /// The check is ready to answer: the search keeps to its budget from now on.
    pub(crate) fn hurry(&self) {
        self.hurry.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Should the search stop, `over_budget` or not?
    fn stop(&self, over_budget: bool) -> bool {
        let now = std::time::Instant::now();
        self.cut.is_some_and(|c| now >= c)
            || over_budget
                && (self.hurry.load(std::sync::atomic::Ordering::Relaxed) || now >= self.until)
    }
}

/// Is `ip` an address of this machine?
pub(crate) fn is_local(ip: IpAddr, addresses: &[IpAddr]) -> bool {
    ip.is_loopback()
        || ip.to_canonical().is_loopback()
        || ip.is_unspecified()
        || addresses.iter().any(|a| crate::icmp::same_host(*a, ip))
}

/// How many TCP connects this machine (this network namespace) has begun: `ActiveOpens` in
/// /proc/net/snmp, a counter that only grows (a few µs to read: no table is walked).
pub(crate) fn tcp_active_opens() -> Option<u64> {
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
pub(crate) fn parse_active_opens(text: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(text).ok()?;
    let mut tcp = text.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next()?, tcp.next()?);
    let at = names.split_whitespace().position(|n| n == "ActiveOpens")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// This machine's interface addresses (one netlink dump, see [`addresses`]).
pub(crate) fn interface_addresses() -> Vec<IpAddr> {
    addresses::read()
}

/// The local facts of several ports from one socket-table read and one /proc scan: one
/// [`LocalFacts`] per port, in the order of `ports` (blocking).
pub(crate) fn inspect_ports(ports: &[u16], addresses: Vec<IpAddr>) -> Vec<LocalFacts> {
    let inspection = Inspection::read(ports);
    ports
        .iter()
        .map(|&port| inspection.facts_for(port, addresses.clone()))
        .collect()
}

/// [`inspect`] for UDP: the sockets bound to `port` and their owners (blocking); `None` when
/// the socket table could not be read (no fallback for UDP): an empty table would claim that
/// no program holds the port.
pub(crate) fn inspect_udp(port: u16, addresses: Vec<IpAddr>) -> Option<LocalFacts> {
    Inspection::read_udp(&[port]).map(|i| i.facts_for(port, addresses))
}

/// One socket-table read and one /proc scan for several ports (a run of many targets on this
/// machine shares them, see [`shared`]). Each port's [`LocalFacts`] are built from it when a
/// check asks ([`Inspection::facts_for`]): a run of 10,000 ports asks for them one at a time,
/// and building all 10,000 at each of its reads took a tenth of its CPU time and 4.5 MB.
#[derive(Debug)]
pub(crate) struct Inspection {
    privileged: bool,
    /// The machine runs systemd (`/run/systemd/system`): advice names `systemctl`, else
    /// `service`.
    systemd: bool,
    /// The listening sockets, of every port.
    listening: Vec<SocketEntry>,
    scan: Scan,
    users: UserNames,
    /// Read only when a listener of the ports has a full accept queue.
    listen_drops: Option<netstat::ListenCounters>,
}

impl Inspection {
    /// Read the socket table and scan /proc for the listeners of `ports` and the ports' usual
    /// servers (blocking).
    pub(crate) fn read(ports: &[u16]) -> Inspection {
        Inspection::read_patient(ports, &Patience::none())
    }

    /// [`Inspection::read`] whose owner search goes on past its budget while `patience`
    /// allows.
    pub(crate) fn read_patient(ports: &[u16], patience: &Patience) -> Inspection {
        Inspection::read_within(ports, OWNER_SEARCH_BUDGET, patience)
    }

    /// [`Inspection::read`] with `budget` for the owner search (this thread's CPU time).
    fn read_within(ports: &[u16], budget: std::time::Duration, patience: &Patience) -> Inspection {
        // netlink is fast; /proc/net/tcp is the fallback where netlink is not allowed.
        let table = sock_diag::read().unwrap_or_else(|_| proc_net::read());
        let listening: Vec<SocketEntry> = table.into_iter().filter(|e| e.state == LISTEN).collect();
        Inspection::of_sockets(listening, ports, budget, patience)
    }

    /// The same for UDP: the sockets bound to `ports` (`listeners` then holds them, their
    /// `queued` the bytes their program has not read), their owners, the usual servers.
    pub(crate) fn read_udp(ports: &[u16]) -> Option<Inspection> {
        let bound: Vec<SocketEntry> = sock_diag::read_udp()
            .ok()?
            .into_iter()
            .filter(|e| e.local.port() != 0)
            .collect();
        Some(Inspection::of_sockets(
            bound,
            ports,
            OWNER_SEARCH_BUDGET,
            &Patience::none(),
        ))
    }

    fn of_sockets(
        listening: Vec<SocketEntry>,
        ports: &[u16],
        budget: std::time::Duration,
        patience: &Patience,
    ) -> Inspection {
        let privileged = crate::sys::is_root();
        let asked: Vec<&SocketEntry> = listening
            .iter()
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
        let budget = crate::sys::thread_cpu_time() + budget;
        let scan = scan_processes(
            &Sought {
                wanted: &wanted,
                others: &others,
            },
            &uids,
            &usual,
            &Budget {
                cpu: budget,
                patience,
            },
        );
        // Only worth a read when a listener's queue is full: it then says how often.
        let listen_drops = asked
            .iter()
            .any(|e| e.backlog.is_some_and(|b| e.queued > b))
            .then(netstat::read)
            .flatten();
        Inspection {
            privileged,
            systemd: runs_systemd(),
            listening,
            scan,
            users: UserNames::default(),
            listen_drops,
        }
    }

    fn listener(&self, e: &SocketEntry) -> Listener {
        Listener {
            address: e.local.ip(),
            port: e.local.port(),
            queued: e.queued,
            backlog: e.backlog,
            uid: e.uid,
            user: self.users.name(e.uid),
            process: self.scan.owner.get(&e.inode).cloned(),
        }
    }

    /// The facts of `port`, one of the ports read, given this machine's interface addresses.
    pub(crate) fn facts_for(&self, port: u16, addresses: Vec<IpAddr>) -> LocalFacts {
        let scan = &self.scan;
        let listening = &self.listening;
        let listeners: Vec<Listener> = listening
            .iter()
            .filter(|e| e.local.port() == port)
            .map(|e| self.listener(e))
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
            .map(|e| self.listener(e))
            .collect();
        let usual_here: Vec<&servers::KnownServer> = servers::for_port(port).collect();
        let found: Vec<FoundServer> = scan
            .usual
            .iter()
            .filter(|(server, _, _)| usual_here.iter().any(|s| s.name == *server))
            .map(|(server, proc_, ppid)| FoundServer {
                server,
                process: proc_.clone(),
                ppid: *ppid,
                listening: scan.fds_read.contains(&proc_.pid).then(|| {
                    let inodes = scan.inodes_of.get(&proc_.pid);
                    listening
                        .iter()
                        .filter(|e| inodes.is_some_and(|i| i.contains(&e.inode)))
                        .map(|e| e.local)
                        .collect()
                }),
            })
            .collect();
        let usual_servers = instances(&found);
        let incomplete = scan.incomplete && listeners.iter().any(|l| l.process.is_none());
        LocalFacts {
            systemd: self.systemd,
            port,
            addresses,
            owner_other_listeners,
            usual_servers,
            usual_server_names: usual_here.iter().map(|s| s.name).collect(),
            privileged: self.privileged,
            listen_drops: self
                .listen_drops
                .filter(|_| listeners.iter().any(Listener::queue_full)),
            listeners,
            owner_search_incomplete: incomplete,
        }
    }
}

/// Read this machine's firewall for `port` (blocking: runs `nft`, killed at `deadline`).
/// Never fails: why it could not be read is kept in `reason`.
pub(crate) fn firewall(port: u16, deadline: std::time::Instant) -> Firewall {
    firewall_from(nft::read(port, deadline))
}

/// [`firewall`] for a UDP port (`udp dport` rules).
pub(crate) fn firewall_udp(port: u16, deadline: std::time::Instant) -> Firewall {
    firewall_from(nft::read_udp(port, deadline))
}

/// The firewall facts from what reading the ruleset gave.
pub(crate) fn firewall_from(read: Result<Vec<FirewallRule>, NftError>) -> Firewall {
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

/// When the owner search stops: past `cpu` (this thread's CPU time), when `patience` says so.
struct Budget<'a> {
    cpu: std::time::Duration,
    patience: &'a Patience,
}

impl Budget<'_> {
    fn spent(&self) -> bool {
        self.patience
            .stop(crate::sys::thread_cpu_time() >= self.cpu)
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

#[derive(Debug, Default)]
struct Scan {
    /// socket inode → owning process, for the wanted inodes.
    owner: HashMap<u64, Process>,
    /// pid → its socket inodes, for owners and usual servers whose fds could be read.
    inodes_of: HashMap<u32, HashSet<u64>>,
    /// Running processes of the usual servers, with their parent.
    usual: Vec<(&'static str, Process, Option<u32>)>,
    /// The processes whose descriptors were read (a usual server with no socket among them
    /// listens nowhere; one whose were not may listen anywhere).
    fds_read: HashSet<u32>,
    /// The budget ran out before every wanted inode's owner was found.
    incomplete: bool,
    /// Processes whose fds were read only in part, with the fd position to go on from:
    /// up to [`FIRST_FDS`] with none of them wanted, or [`FDS_AFTER_OWNER`] past a wanted one
    /// (another wanted socket, the v6 twin of a dual-stack listener, may come later).
    deep: Vec<(u32, usize)>,
}

/// Find the owners of `wanted` socket inodes and the processes of the `usual` servers in
/// /proc. Reads only what can change the report: a process's name only when usual servers are
/// looked for or it owns a wanted socket; fds only while an owner is missing (or of a usual
/// server), first of the processes running as one of the sockets' `uids` (the socket's uid is
/// its creator's; /proc/PID belongs to the process's user), then — only if an owner is still
/// missing — of the others (a process that changed user, a non-dumpable one whose /proc entry
/// is root's). A process's fd scan stops at its first EACCES. The owner search stops when
/// `budget` is spent (`incomplete` then); the usual servers' names are still read.
fn scan_processes(
    sought: &Sought,
    uids: &HashSet<u32>,
    usual: &[&servers::KnownServer],
    budget: &Budget,
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
            out_of_time = out_of_time || budget.spent();
        }
    }
    for pid in later {
        if scan.owner.len() >= sought.wanted.len() {
            break;
        }
        if out_of_time || budget.spent() {
            out_of_time = true;
            break;
        }
        visit_fds(&mut scan, pid, sought, None, None, None);
    }
    // The fds past the first FIRST_FDS of the processes that have more, only while an owner
    // is missing: a listener is opened early, and a server holding thousands of connections
    // (a readlink each) is read in full only when no first look found the owner.
    // A process cut again here (FDS_AFTER_OWNER past a wanted socket met in its rest) is put
    // back on the list, and read on in its turn.
    let mut next = 0;
    while let Some(&(pid, from)) = scan.deep.get(next) {
        next += 1;
        if scan.owner.len() >= sought.wanted.len() {
            break;
        }
        if out_of_time || budget.spent() {
            out_of_time = true;
            break;
        }
        visit_fds_from(&mut scan, pid, sought, None, None, None, from, usize::MAX);
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
    let (mut inodes, cut, read) = socket_inodes(pid, dir, sought, skip, limit);
    if let Some(at) = cut {
        scan.deep.push((pid, at));
    }
    if read {
        scan.fds_read.insert(pid);
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
        let ppid = idle::parse_parent(&read_proc(pid, "stat", 1024)).map(|(_, ppid)| ppid);
        scan.usual.push((s, process.clone(), ppid));
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
/// `limit` fds from the `skip`th on, where it stopped with more to read (past `limit` with no
/// `wanted` one seen, or past the allowance after one), and whether its fds could be read at
/// all. Stops at the first fd it may not read (EACCES): the rest are not readable either; and
/// [`FDS_AFTER_OWNER`] fds after each `wanted` one (its other listeners are then those among
/// them; the rest are read later if an owner is still missing).
fn socket_inodes(
    pid: u32,
    dir: Option<crate::sys::FdDir>,
    sought: &Sought,
    skip: usize,
    limit: usize,
) -> (HashSet<u64>, Option<usize>, bool) {
    let mut out = HashSet::new();
    let Some(mut fds) = dir.or_else(|| crate::sys::fd_dir(pid).ok()) else {
        return (out, None, false);
    };
    // Listeners (wanted or not) this process may also hold, not yet seen among its fds: the
    // v6 twin of a dual-stack listener, another port of the run, another port it serves.
    let mut unseen = sought.wanted.len() + sought.others.len();
    let mut left: Option<usize> = None;
    let mut read = 0;
    let mut denied = false;
    // fd 0 is read before the listing: a process whose fds may not be read (another user's;
    // without CAP_SYS_PTRACE, one that is not dumpable) fails there when it has an fd 0, and
    // the listing (the kernel builds an entry for each fd listed, a few dozen a call) is not
    // made for nothing.
    let mut fd0 = None;
    if skip == 0 {
        match fds.link(0) {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return (out, None, false);
            }
            first => fd0 = Some(first),
        }
    }
    while let Some(fd) = fds.next() {
        if read < skip {
            read += 1;
            continue;
        }
        if left.is_none() && read - skip >= limit {
            return (out, Some(read), true);
        }
        if let Some(n) = left.as_mut() {
            // Every listener of the machine is among its fds: nothing more to find.
            if unseen == 0 {
                break;
            }
            // Past the allowance after a wanted socket: the rest is read later, and only if
            // an owner is still missing then (a second wanted socket further on).
            if *n == 0 {
                return (out, Some(read), true);
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
                if let Some(i) = socket_inode(&target) {
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
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                denied = true;
                break;
            }
            // The fd was closed meanwhile.
            Err(_) => {}
        }
    }
    (out, None, !denied)
}

/// The socket's inode in an fd's link target (`socket:[12345]`); `None` for any other file.
fn socket_inode(target: &[u8]) -> Option<u64> {
    let t = std::str::from_utf8(target).ok()?;
    t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// Longest command line kept, in characters (`…` when cut).
pub(crate) const MAX_CMDLINE: usize = 512;

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
pub(crate) fn mask_cmdline(args: &[String]) -> String {
    let joined = crate::secrets::mask_args(args);
    match joined.char_indices().nth(MAX_CMDLINE) {
        Some((cut, _)) => format!("{}…", &joined[..cut]),
        None => joined,
    }
}

/// uid → user name: /etc/passwd first (NSS's "files" source, which comes first on every usual
/// system), then the system's user database (NSS: LDAP, sssd …), cached. `getpwuid_r` reads
/// nsswitch.conf and asks nscd before the file: ~0.2 ms of an open check that takes 2.
#[derive(Debug, Default)]
struct UserNames {
    // A Mutex, not a RefCell: a run's shared inspection is read by its checks.
    cache: std::sync::Mutex<HashMap<u32, Option<String>>>,
}

impl UserNames {
    fn name(&self, uid: u32) -> Option<String> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(uid)
            .or_insert_with(|| lookup_user(uid))
            .clone()
    }
}

fn lookup_user(uid: u32) -> Option<String> {
    use std::path::Path;
    // Read as the resolver's files are: a FIFO or device at /etc/passwd must cost the name,
    // not hold the inspection for ever.
    let passwd =
        crate::dns::files::read_bounded(Path::new("/etc/passwd"), crate::dns::files::MAX_FILE);
    if let Some(name) = passwd.as_ref().ok().and_then(|text| passwd_name(text, uid)) {
        return Some(name);
    }
    // glibc's user database opens both files with a blocking `open`: asked only when they
    // would be read at once.
    let readable = ["/etc/nsswitch.conf", "/etc/passwd"]
        .iter()
        .all(|p| crate::dns::files::regular_or_absent(Path::new(p)));
    readable.then(|| crate::sys::user_name(uid)).flatten()
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
    fn only_a_socket_link_gives_an_inode() {
        assert_eq!(socket_inode(b"socket:[48213]"), Some(48213));
        assert_eq!(socket_inode(b"pipe:[48213]"), None);
        assert_eq!(socket_inode(b"/dev/null"), None);
        assert_eq!(socket_inode(b"socket:[]"), None);
        assert_eq!(socket_inode(b"socket:[12"), None);
        assert_eq!(socket_inode(b"socket:[\xff]"), None);
    }

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
        Inspection::read_within(
            &[port],
            std::time::Duration::from_secs(10),
            &Patience::none(),
        )
        .facts_for(port, interface_addresses())
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

    /// A patient search stops at the end of its patience even with budget left (a thread
    /// starved under load); none stops it only on its budget.
    #[test]
    fn patience_ends_the_search_at_its_end_whatever_the_budget() {
        let p = Patience::until(std::time::Instant::now() + std::time::Duration::from_millis(30));
        assert!(!p.stop(false) && !p.stop(true));
        std::thread::sleep(std::time::Duration::from_millis(40));
        assert!(p.stop(false));
        let none = Patience::none();
        assert!(!none.stop(false) && none.stop(true));
    }

    #[test]
    fn a_second_listener_far_past_a_first_found_in_the_second_look_is_found_too() {
        // Past FIRST_FDS descriptors, one listener; more than FDS_AFTER_OWNER descriptors
        // after it, a second one of the port: the look at the rest finds the first and stops
        // short of the second; that process is read on again, in its turn.
        let before: Vec<std::fs::File> = (0..FIRST_FDS + 40)
            .map(|_| std::fs::File::open("/dev/null").unwrap())
            .collect();
        let l1 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l1.local_addr().unwrap().port();
        let between: Vec<std::fs::File> = (0..FDS_AFTER_OWNER + 40)
            .map(|_| std::fs::File::open("/dev/null").unwrap())
            .collect();
        let l2 = std::net::TcpListener::bind(("127.0.0.2", port))
            .expect("the same port on another loopback address");
        let f = inspect_unhurried(port);
        assert_eq!(f.listeners.len(), 2, "{f:?}");
        for l in &f.listeners {
            let p = l.process.as_ref().expect("owner found");
            assert_eq!(p.pid, std::process::id(), "{l:?}");
        }
        drop((before, between, l1, l2));
    }

    #[test]
    fn a_second_listener_of_the_port_far_past_the_first_is_found_too() {
        // One listener first, then more than FDS_AFTER_OWNER descriptors, then a second one
        // on the same port (another loopback address, as a v6 twin would be, with no need
        // of IPv6): the look past the first stops short of the second; the owner search must
        // go on to it (it is the owner of an asked listener too).
        let l4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l4.local_addr().unwrap().port();
        let files: Vec<std::fs::File> = (0..FDS_AFTER_OWNER + 40)
            .map(|_| std::fs::File::open("/dev/null").unwrap())
            .collect();
        let l6 = std::net::TcpListener::bind(("127.0.0.2", port))
            .expect("the same port on another loopback address");
        let f = inspect_unhurried(port);
        assert_eq!(f.listeners.len(), 2, "{f:?}");
        for l in &f.listeners {
            let p = l.process.as_ref().expect("owner found");
            assert_eq!(p.pid, std::process::id(), "{l:?}");
        }
        drop((files, l4, l6));
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

    fn found(pid: u32, ppid: u32, cmdline: &str, listening: Option<&[&str]>) -> FoundServer {
        FoundServer {
            server: "PostgreSQL",
            process: Process {
                pid,
                name: "postgres".into(),
                cmdline: cmdline.into(),
                exe: None,
            },
            ppid: Some(ppid),
            listening: listening.map(|l| l.iter().map(|a| a.parse().unwrap()).collect()),
        }
    }

    #[test]
    fn a_servers_worker_processes_are_one_instance_named_by_its_listener() {
        // As /proc lists them: a worker may come before its postmaster.
        let procs = [
            found(
                812,
                1,
                "/usr/lib/postgresql/15/bin/postgres -D /d",
                Some(&["127.0.0.1:5433"]),
            ),
            found(813, 812, "postgres: checkpointer", Some(&[])),
            found(814, 812, "postgres: walwriter", Some(&[])),
            found(815, 812, "postgres: autovacuum launcher", None),
            // Another cluster, not listening (yet): its own instance, named by its root.
            found(900, 1, "postgres -D /other", Some(&[])),
            found(901, 900, "postgres: checkpointer", Some(&[])),
            // A backend forked by a worker: still the first instance.
            found(816, 815, "postgres: autovacuum worker", Some(&[])),
        ];
        let mut order = procs.to_vec();
        order.rotate_left(1);
        for list in [procs.to_vec(), order] {
            let got = instances(&list);
            assert_eq!(got.len(), 2, "{got:?}");
            let main = got.iter().find(|r| r.process.pid == 812).unwrap();
            assert_eq!(main.workers, [813, 814, 815, 816]);
            assert_eq!(
                main.listening,
                Some(vec!["127.0.0.1:5433".parse().unwrap()])
            );
            let other = got.iter().find(|r| r.process.pid == 900).unwrap();
            assert_eq!(other.workers, [901]);
            assert_eq!(other.listening, Some(vec![]), "read, and listening nowhere");
        }
        // Unreadable descriptors everywhere: where it listens is not known.
        let hidden = [
            found(812, 1, "postgres", None),
            found(813, 812, "postgres: x", None),
        ];
        let got = instances(&hidden);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].listening, None);
        // Two servers of the same tree shape stay apart by server.
        let mut redis = found(813, 812, "redis-server", Some(&[]));
        redis.server = "Redis";
        assert_eq!(
            instances(&[found(812, 1, "postgres", Some(&[])), redis]).len(),
            2
        );
    }

    #[test]
    fn user_names_come_from_the_user_database() {
        assert_eq!(lookup_user(0).as_deref(), Some("root"));
    }
}
