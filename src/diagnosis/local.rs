//! What this machine's listeners and firewall say about a failed connection.
//!
//! Reads `LocalFacts` and `Firewall`: nothing listening (and whether the usual server runs
//! elsewhere), loopback-only, the other family, another address, a container's proxy, hidden
//! owners, and this machine's own firewall rules. One function per finding.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::advice::{Machine, Step, StepKind};
use super::commands::Command;
use super::context::Ctx;
use super::finding::{Finding, FindingId};
use super::outcome::{AddressResult, Evidence, Outcome, Verdict};
use super::words::{errno_name, errno_text, fmt_duration};
use crate::facts::QueueWatch;
use crate::local::Firewall;
use crate::local::nft::{FirewallRule, Hook, NftError, RuleVerdict};
use crate::local::servers::{self, CONTAINER_PROXIES};
use crate::local::{Listener, LocalFacts, Process, is_local};

/// Does a socket listening on `l` accept a connection to `dialled`?
/// `0.0.0.0` takes any IPv4 address of the machine; `::` any address, IPv4 included (Linux's
/// default `net.ipv6.bindv6only = 0`).
pub(crate) fn accepts(l: &Listener, dialled: IpAddr) -> bool {
    if l.address == dialled || l.address.to_canonical() == dialled.to_canonical() {
        return true;
    }
    match l.address {
        IpAddr::V4(a) => a.is_unspecified() && dialled.to_canonical().is_ipv4(),
        IpAddr::V6(a) => a.is_unspecified(),
    }
}

pub(super) fn show(l: &Listener) -> String {
    match l.address {
        IpAddr::V6(a) => format!("[{a}]:{}", l.port),
        a => format!("{a}:{}", l.port),
    }
}

/// [`owner`] at the start of a sentence: a program's name as it is, "A process of …".
pub(super) fn owner_first(l: &Listener) -> String {
    match &l.process {
        Some(_) => owner(l),
        None => owner(l).replacen("a process", "A process", 1),
    }
}

fn owner(l: &Listener) -> String {
    let user = l.user.clone().unwrap_or_else(|| format!("uid {}", l.uid));
    match &l.process {
        Some(p) => format!(
            "{} (pid {}, user {user}, {})",
            p.name,
            p.pid,
            p.exe.as_deref().unwrap_or("executable unknown")
        ),
        None => format!("a process of user {user}"),
    }
}

/// The file name of an executable path, without the kernel's ` (deleted)` mark (a server
/// upgraded under a running process keeps running the old, deleted file).
fn exe_file_name(exe: &str) -> &str {
    let path = exe.strip_suffix(" (deleted)").unwrap_or(exe);
    path.rsplit('/').next().unwrap_or(path)
}

/// The names a process gives itself that are a known server's: its `comm` and the file name
/// of its `argv[0]` (which `exec -a` sets freely; servers that retitle themselves write
/// `postgres: checkpointer`, hence the `:`).
fn claimed_server_names(p: &Process) -> Vec<&str> {
    let argv0 = p.cmdline.split(' ').next().unwrap_or("");
    let argv0 = argv0
        .rsplit('/')
        .next()
        .unwrap_or(argv0)
        .trim_end_matches(':');
    let mut names: Vec<&str> = [p.name.as_str(), argv0]
        .into_iter()
        .filter(|n| servers::for_process(n).is_some())
        .collect();
    names.dedup();
    names
}

/// Does the executable's file name fit the name claimed? The same name; the name cut at
/// `comm`'s 15 characters; the name with a version after it (`python3` runs `python3.11`
/// through a symlink); or another process name of the same server (`mysqld` is a link to
/// `mariadbd`).
fn exe_fits(claimed: &str, exe_name: &str) -> bool {
    if exe_name == claimed || (claimed.len() == 15 && exe_name.starts_with(claimed)) {
        return true;
    }
    let versioned = exe_name.strip_prefix(claimed).is_some_and(|rest| {
        rest.chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
    });
    if versioned {
        return true;
    }
    servers::for_process(claimed)
        .is_some_and(|s| s.processes.contains(&exe_name) || s.executables.contains(&exe_name))
}

/// A listener's process calls itself a known server (by `comm` or `argv[0]`) but the kernel
/// says it runs another executable: `exec -a postgres /tmp/x/evil`, or a program renamed to
/// pass for one. Reported whatever the verdict: it is about who answers on the port.
pub(crate) fn owner_name_mismatch(cx: &Ctx) -> Vec<Finding> {
    let Some(l) = cx.facts.local.as_ref() else {
        return vec![];
    };
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for x in &l.listeners {
        let Some(p) = &x.process else { continue };
        let Some(exe) = p.exe.as_deref() else {
            continue;
        };
        if seen.contains(&p.pid) {
            continue;
        }
        let exe_name = exe_file_name(exe);
        let Some(claimed) = claimed_server_names(p)
            .into_iter()
            .find(|c| !exe_fits(c, exe_name))
        else {
            continue;
        };
        seen.push(p.pid);
        let server = servers::for_process(claimed).map_or("a known server", |s| s.name);
        out.push(
            Finding::new(
                FindingId::OwnerNameMismatch,
                format!(
                    "The process listening on {} calls itself {claimed} (the name of {server}) \
                     but runs {exe} (pid {}, user {}, named {} by the system). A program that \
                     takes a known server's name is not that server: check what it is before \
                     trusting what it answers.",
                    show(x),
                    p.pid,
                    x.user.clone().unwrap_or_else(|| format!("uid {}", x.uid)),
                    p.name,
                ),
            )
            .steps([Step::run(
                StepKind::InspectProgram,
                "See what the process is and who started it",
                Command::ProcessState { pid: p.pid },
                Machine::This,
            )]),
        );
    }
    out
}

/// The listener facts, when the verdict is a failure worth explaining with them.
fn failed_here<'a>(cx: &'a Ctx) -> Option<&'a LocalFacts> {
    (cx.verdict != Verdict::Open)
        .then_some(cx.facts.local.as_ref())
        .flatten()
}

/// The setting that moves the listening address, for the owner (or the port's usual server).
fn listen_setting(l: &LocalFacts, listener: &Listener) -> Option<&'static str> {
    listener
        .process
        .as_ref()
        .and_then(|p| servers::for_process(&p.name))
        .or_else(|| servers::for_port(l.port).next())
        .map(|s| s.listen_setting)
}

/// The wildcard of `ip`'s family: listening there covers `ip` (`::` covers IPv4 too).
fn wildcard_for(ip: IpAddr) -> IpAddr {
    if ip.to_canonical().is_ipv4() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    }
}

/// An address a client can connect to that `l` accepts: never a wildcard.
fn connectable(l: &Listener, dialled: IpAddr, here: &[IpAddr]) -> Option<String> {
    let ip = if l.address.is_unspecified() {
        let v4 = l.address.is_ipv4();
        if dialled.is_loopback() || dialled.to_canonical().is_loopback() {
            if v4 {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            }
        } else {
            *here
                .iter()
                .find(|a| a.is_ipv4() == v4 && !a.is_loopback() && !is_link_local(**a))?
        }
    } else {
        l.address
    };
    Some(match ip {
        IpAddr::V6(a) => format!("[{a}]:{}", l.port),
        a => format!("{a}:{}", l.port),
    })
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// Nothing on this machine listens on the port.
pub(crate) fn nothing_listens_here(cx: &Ctx) -> Option<Finding> {
    let l = failed_here(cx).filter(|l| l.listeners.is_empty())?;
    // With a usual server, the next findings say how to find and start it.
    let steps = l.usual_server_names.is_empty().then(|| {
        Step::about(
            StepKind::StartServer,
            "Start the program that should serve this port, or check the port number the \
             client uses.",
            Machine::This,
        )
    });
    Some(
        Finding::new(
            FindingId::NothingListensHere,
            format!("Nothing on this machine listens on TCP port {}.", l.port),
        )
        .steps(steps)
        // The socket table was read: there is nothing to list, and with no program there a
        // rule forging a reset would change nothing.
        .rules_out(&[StepKind::CheckListening, StepKind::FindResetRule]),
    )
}

/// What shows that a listener's accept queue explains a silence: the queue full in the local
/// inspection's table, or the address's own watch while it was silent (a look found it full,
/// or the kernel counted SYNs dropped at full queues meanwhile).
#[derive(Debug, Clone, Copy)]
enum QueueEvidence<'a> {
    /// The inspection's table: this listener's queue full.
    Table(&'a Listener),
    /// The silent address's own looks and counters.
    Watch(&'a QueueWatch),
}

/// Does a silent address's watch show its listener's queue full, or drops counted by that
/// listener (not `ListenOverflows`: any other listener of the machine raises it)?
fn watch_shows_full(q: &QueueWatch) -> bool {
    [q.first, q.last].iter().flatten().any(|l| l.full()) || q.listener_drops() > Some(0)
}

/// The listeners whose queue explains a failed address's silence, with the evidence: first
/// from the silent addresses' own watches (which need no socket table: under load the
/// inspection may not finish in time), then from the table. One each; `None` for a listener
/// the table does not show.
fn queue_explained<'a>(cx: &'a Ctx) -> Vec<(Option<&'a Listener>, SocketAddr, QueueEvidence<'a>)> {
    let listeners = cx
        .facts
        .local
        .as_ref()
        .map_or(&[][..], |l| &l.listeners[..]);
    // Only silence is a queue's doing: an address that connected in the end is not dropped.
    let silent = |r: &AddressResult| r.outcome != Outcome::Open && r.evidence == Evidence::Silence;
    let mut out: Vec<(Option<&Listener>, SocketAddr, QueueEvidence)> = Vec::new();
    for a in &cx.facts.addresses {
        let Some(q) = a.facts.queue.as_ref().filter(|q| watch_shows_full(q)) else {
            continue;
        };
        let address = a.result.address;
        if !silent(&a.result) {
            continue;
        }
        let x = listeners.iter().find(|x| accepts(x, address.ip()));
        let seen = out.iter().any(|(y, addr, _)| match (x, y) {
            (Some(x), Some(y)) => x == *y,
            _ => *addr == address,
        });
        if !seen {
            out.push((x, address, QueueEvidence::Watch(q)));
        }
    }
    for x in listeners.iter().filter(|x| x.queue_full()) {
        let dialled = cx
            .results()
            .find(|r| silent(r) && accepts(x, r.address.ip()));
        if let Some(r) = dialled
            && !out.iter().any(|(y, _, _)| *y == Some(x))
        {
            out.push((Some(x), r.address, QueueEvidence::Table(x)));
        }
    }
    out
}

/// Does a listener on this machine that takes `ip` have a full accept queue, or had it one
/// while `ip` was silent (so the silence of `ip` is explained by it)?
pub(crate) fn full_queue_for(cx: &Ctx, ip: IpAddr) -> bool {
    let listeners = cx
        .facts
        .local
        .as_ref()
        .map_or(&[][..], |l| &l.listeners[..]);
    let in_table = listeners.iter().any(|x| x.queue_full() && accepts(x, ip));
    let watched = cx.facts.addresses.iter().any(|a| {
        a.result.address.ip() == ip && a.facts.queue.as_ref().is_some_and(watch_shows_full)
    });
    in_table || watched
}

/// A listener that accepts the address dialled has a full accept queue, or had one while the
/// address was silent: the program does not take connections as fast as they come, and the
/// kernel drops new SYNs silently (a silence that looks exactly like a firewall's drop).
/// `docs/ground-truth/beyond-connect.md`.
pub(crate) fn listener_not_accepting(cx: &Ctx) -> Vec<Finding> {
    if cx.verdict == Verdict::Open {
        return vec![];
    }
    let since_boot = cx.facts.local.as_ref().and_then(|l| l.listen_drops);
    queue_explained(cx)
        .into_iter()
        .map(|(x, address, evidence)| {
            let who = x.map_or(format!("The program listening on {address}"), |x| {
                format!("{} listens on {}, but it", owner_first(x), show(x))
            });
            let drops = since_boot.map_or(String::new(), |c| {
                format!(
                    " This machine has dropped {} connection attempts at full accept queues \
                     since it started (ListenOverflows).",
                    c.overflows
                )
            });
            let mut steps: Vec<Step> = inspect_program(x).into_iter().collect();
            steps.push(Step::run(
                StepKind::WatchQueue,
                "Watch its queue: Recv-Q above Send-Q means it is full",
                Command::SsQueue {
                    port: address.port(),
                },
                Machine::This,
            ));
            steps.push(restart(
                x,
                "Restart the program once you know why it hung (its logs say more); if it is \
                 only overloaded, give it more workers or a larger backlog.",
            ));
            Finding::new(
                FindingId::ListenerNotAccepting,
                queue_words(&who, evidence, &drops),
            )
            .steps(steps)
            .explains((cx.verdict == Verdict::Filtered).then_some(
                "the program listening there is not accepting connections as fast as they \
                     come (its accept queue filled up), so the kernel drops new ones silently",
            ))
            .rules_out(&[
                StepKind::FindDropRule,
                StepKind::CheckLocalOutput,
                StepKind::TracePath,
                StepKind::TryOtherPort,
                StepKind::AskOwners,
                StepKind::CheckListening,
            ])
        })
        .collect()
}

/// `listener_not_accepting`'s words: the queue as seen full (in the table, or by the silent
/// address's own looks), or filled for a moment; the drops counted.
fn queue_words(who: &str, evidence: QueueEvidence, drops: &str) -> String {
    let figures = |q: u32, b: Option<u32>| match b {
        Some(b) => format!("{q} waiting, room for {b}"),
        None => format!("{q} waiting"),
    };
    let full = |look: String, counted: &str| {
        format!(
            "{who} is not accepting connections: its accept queue is full ({look}), so the \
             kernel drops new connection attempts without a word — the program is hung or \
             overloaded. A firewall is not needed to explain the silence.{counted}"
        )
    };
    let q = match evidence {
        QueueEvidence::Table(x) => return full(figures(x.queued, x.backlog), drops),
        QueueEvidence::Watch(q) => q,
    };
    // The listener's own count; the machine's (every listener's) only where the kernel does
    // not give the listener's.
    let counted = match (q.listener_drops(), q.overflows) {
        (Some(n), _) if n > 0 => {
            format!(" While this check waited, this listener dropped {n} connection attempts.")
        }
        (None, Some(n)) if n > 0 => format!(
            " While this check waited, the kernel dropped {n} connection attempts at full \
             accept queues on this machine (ListenOverflows)."
        ),
        _ => String::new(),
    };
    let full_look = [q.first, q.last].into_iter().flatten().find(|l| l.full());
    match full_look.or(q.last) {
        Some(look) if look.full() => full(figures(look.queued, look.backlog), &counted),
        room => format!(
            "{who} does not take connections as fast as they come: its accept queue filled up, \
             and the kernel dropped this connection attempt without a word.{counted}{} The \
             program is overloaded (or was stuck for a moment). A firewall is not needed to \
             explain the silence.",
            room.map_or(String::new(), |r| format!(
                " It has room again now ({}).",
                figures(r.queued, r.backlog)
            ))
        ),
    }
}

/// See what a listener's program is doing, when it is known.
pub(super) fn inspect_program(listener: Option<&Listener>) -> Option<Step> {
    let p = listener?.process.as_ref()?;
    Some(Step::run(
        StepKind::InspectProgram,
        "See what the program is doing (a state of D or T, or a long wait, means it is stuck)",
        Command::ProcessState { pid: p.pid },
        Machine::This,
    ))
}

/// Restart a listener's program: its service when it is a usual server with a unit, else in
/// the words given.
pub(super) fn restart(listener: Option<&Listener>, otherwise: &str) -> Step {
    let unit = listener
        .and_then(|x| x.process.as_ref())
        .and_then(|p| servers::for_process(&p.name))
        .and_then(|k| k.unit);
    match unit {
        Some(unit) => Step::run(
            StepKind::RestartServer,
            "Restart it once you know why it hung (its logs say more)",
            Command::SystemctlRestart { unit },
            Machine::This,
        ),
        None => Step::about(
            StepKind::RestartServer,
            otherwise.to_string(),
            Machine::This,
        ),
    }
}

/// The first SYN to a port of this machine went unanswered and the kernel's retransmission,
/// a second later, was accepted, while a program listens there: on this machine nothing but a
/// full accept queue drops a SYN to a listener without a word (or a firewall rule that let the
/// retry pass, which the firewall finding would name). The port works, slowly: each client
/// waits a second or more while the program is this busy.
pub(crate) fn first_syn_dropped(cx: &Ctx) -> Option<Finding> {
    let a = cx.facts.addresses.iter().map(|a| &a.facts).find(|a| {
        a.queue.is_some()
            && a.probe.result == crate::probe::ConnectResult::Connected
            && a.probe.elapsed >= crate::liveness::FIRST_RETRANSMISSION
    })?;
    let q = a.queue.as_ref()?;
    let listener = cx
        .facts
        .local
        .as_ref()
        .and_then(|l| l.listeners.iter().find(|x| accepts(x, a.address().ip())));
    let who = listener.map_or(format!("the program listening on {}", a.address()), |x| {
        format!("{} on {}", owner(x), show(x))
    });
    let looked = q.first.map_or(String::new(), |f| match f.backlog {
        Some(b) => format!(
            " (its queue when looked at: {} waiting, room for {b})",
            f.queued
        ),
        None => format!(" (its queue when looked at: {} waiting)", f.queued),
    });
    Some(
        Finding::new(
            FindingId::FirstSynDropped,
            format!(
                "The first connection attempt to {} got no answer; the kernel's retry was \
                 accepted, {} after the first. On this machine the kernel drops a connection \
                 attempt to a listener without a word when the listener's accept queue is \
                 full: {who} does not take connections as fast as they come{looked}. Each new \
                 client waits a second or more while it is this busy.",
                a.address(),
                fmt_duration(a.probe.elapsed)
            ),
        )
        .steps([
            Step::run(
                StepKind::WatchQueue,
                "Watch its queue: Recv-Q near Send-Q means connections wait to be accepted",
                Command::SsQueue {
                    port: a.address().port(),
                },
                Machine::This,
            ),
            Step::about(
                StepKind::RestartServer,
                "Give the program more workers or a larger backlog (its listen() backlog, and \
                 net.core.somaxconn), or less load.",
                Machine::This,
            ),
        ])
        .rules_out(&[
            StepKind::FindDropRule,
            StepKind::TracePath,
            StepKind::TryOtherPort,
            StepKind::AskOwners,
        ]),
    )
}

/// The port's usual server runs, but not on this port.
pub(crate) fn usual_server_elsewhere(cx: &Ctx) -> Vec<Finding> {
    let Some(l) = failed_here(cx).filter(|l| l.listeners.is_empty()) else {
        return vec![];
    };
    let port = l.port;
    l.usual_servers
        .iter()
        .map(|s| {
            let known = servers::SERVERS.iter().find(|k| k.name == s.server);
            let where_ = match &s.listening {
                Some(socks) if socks.is_empty() => "but listens on no TCP port".to_string(),
                Some(socks) => format!(
                    "and listens on {} — not on port {port}",
                    socks
                        .iter()
                        .map(|a| a.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None if l.privileged => "(where it listens could not be read)".to_string(),
                None => "(where it listens cannot be seen without root)".to_string(),
            };
            let workers = match s.workers.len() {
                0 => String::new(),
                1 => " and 1 worker process".to_string(),
                n => format!(" and {n} worker processes"),
            };
            let mut steps = vec![Step::about(
                StepKind::PointClient,
                format!(
                    "Point the client at the port it really listens on, or change the server's \
                     port setting to {port} and restart it."
                ),
                Machine::This,
            )];
            if s.listening.is_none() && !l.privileged {
                steps.push(Step::run(
                    StepKind::CheckListening,
                    "See its listening sockets",
                    Command::SsOfPid { pid: s.process.pid },
                    Machine::This,
                ));
            }
            if let Some(unit) = known.and_then(|k| k.unit) {
                steps.push(Step::run(
                    StepKind::ServiceStatus,
                    "Look at its service status and configuration",
                    Command::SystemctlStatus { unit },
                    Machine::This,
                ));
            }
            Finding::new(
                FindingId::UsualServerElsewhere,
                format!(
                    "{} is running ({} pid {}{workers}: {}) {where_}.",
                    s.server, s.process.name, s.process.pid, s.process.cmdline
                ),
            )
            .steps(steps)
        })
        .collect()
}

/// The port's usual server (with a systemd unit) is not running.
pub(crate) fn usual_server_not_running(cx: &Ctx) -> Option<Finding> {
    let l = failed_here(cx).filter(|l| l.listeners.is_empty() && l.usual_servers.is_empty())?;
    let port = l.port;
    let units: Vec<&servers::KnownServer> = servers::for_port(port)
        .filter(|k| k.unit.is_some())
        .collect();
    let unit = units.first()?.unit?;
    Some(
        Finding::new(
            FindingId::UsualServerNotRunning,
            format!(
                "{}, which usually serves port {port}, is not running on this machine.",
                units.iter().map(|k| k.name).collect::<Vec<_>>().join(" / ")
            ),
        )
        .steps([
            Step::run(
                StepKind::ServiceStatus,
                "See whether it is installed and why it stopped",
                Command::SystemctlStatus { unit },
                Machine::This,
            ),
            Step::run(
                StepKind::StartServer,
                "Start it",
                Command::SystemctlStart { unit },
                Machine::This,
            ),
            Step::run(
                StepKind::ReadLogs,
                "Read its last log lines",
                Command::Journal { unit },
                Machine::This,
            ),
        ]),
    )
}

/// How the listeners on the port miss an address of this machine that was dialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Miss {
    LoopbackOnly,
    OtherFamily,
    OtherAddress,
}

/// The dialled local addresses no listener accepts, with how they are missed.
fn misses<'a>(cx: &'a Ctx, l: &LocalFacts) -> Vec<(&'a AddressResult, Miss)> {
    if l.listeners.is_empty() {
        return vec![];
    }
    cx.results()
        .filter(|a| a.outcome != Outcome::Open)
        .filter(|a| is_local(a.address.ip(), &l.addresses))
        // Something listens there: a firewall or the backlog is the story.
        .filter(|a| !l.listeners.iter().any(|x| accepts(x, a.address.ip())))
        .map(|a| {
            let dialled = a.address.ip();
            let all_loopback = l.listeners.iter().all(|x| x.address.is_loopback());
            let other_family = l
                .listeners
                .iter()
                .all(|x| x.address.is_ipv4() != dialled.to_canonical().is_ipv4());
            let miss = if all_loopback && !dialled.is_loopback() {
                Miss::LoopbackOnly
            } else if other_family {
                Miss::OtherFamily
            } else {
                Miss::OtherAddress
            };
            (a, miss)
        })
        .collect()
}

/// The finding for each dialled address missed in the way `want`.
fn miss_findings(cx: &Ctx, want: Miss) -> Vec<Finding> {
    let Some(l) = failed_here(cx) else {
        return vec![];
    };
    let port = l.port;
    misses(cx, l)
        .into_iter()
        .filter(|(_, m)| *m == want)
        .map(|(a, _)| {
            let dialled = a.address.ip();
            let list = l.listeners.iter().map(show).collect::<Vec<_>>().join(", ");
            let first = &l.listeners[0];
            let (id, message) = match want {
                Miss::LoopbackOnly => (
                    FindingId::ListensOnLoopbackOnly,
                    format!(
                        "{} listens on port {port} only on loopback ({list}), so connections to \
                         {dialled} — this machine's other address — are refused. Only programs \
                         on this machine can reach it.",
                        owner_first(first)
                    ),
                ),
                Miss::OtherFamily => {
                    let fam = if dialled.to_canonical().is_ipv4() {
                        "IPv6"
                    } else {
                        "IPv4"
                    };
                    (
                        FindingId::ListensOnOtherFamily,
                        format!(
                            "{} listens on port {port} on {fam} only ({list}), but {dialled} was \
                             dialled. Clients that get {dialled} first (as `localhost` often \
                             gives ::1) fail.",
                            owner_first(first)
                        ),
                    )
                }
                Miss::OtherAddress => (
                    FindingId::BoundToOtherAddress,
                    format!(
                        "{} listens on port {port} only on {list}, not on {dialled}: it is bound \
                         to another interface's address.",
                        owner_first(first)
                    ),
                ),
            };
            let any = wildcard_for(dialled);
            let listen = match listen_setting(l, first) {
                Some(s) => format!(
                    "Make it listen on {dialled} too, or on all addresses ({any}) — {} — and \
                     restart it.",
                    s.replace("{addr}", &any.to_string())
                ),
                None => format!(
                    "Make it listen on {dialled} too, or on all addresses ({any}), and restart it."
                ),
            };
            let mut steps = vec![Step::about(StepKind::ListenAddress, listen, Machine::This)];
            if let Some(c) = connectable(first, dialled, &l.addresses) {
                steps.push(Step::about(
                    StepKind::PointClient,
                    format!("Or point the client at {c}, where it does listen."),
                    Machine::This,
                ));
            }
            Finding::new(id, message)
                .steps(steps)
                // The listeners are in the report: no need to send people to `ss`.
                .rules_out(&[StepKind::CheckListening])
        })
        .collect()
}

pub(crate) fn listens_on_loopback_only(cx: &Ctx) -> Vec<Finding> {
    miss_findings(cx, Miss::LoopbackOnly)
}

pub(crate) fn listens_on_other_family(cx: &Ctx) -> Vec<Finding> {
    miss_findings(cx, Miss::OtherFamily)
}

pub(crate) fn bound_to_other_address(cx: &Ctx) -> Vec<Finding> {
    miss_findings(cx, Miss::OtherAddress)
}

/// The port is published by a container runtime's proxy.
pub(crate) fn container_proxy(cx: &Ctx) -> Option<Finding> {
    let l = failed_here(cx)?;
    let port = l.port;
    let (x, p) = l.listeners.iter().find_map(|x| {
        x.process
            .as_ref()
            .filter(|p| CONTAINER_PROXIES.contains(&p.name.as_str()))
            .map(|p| (x, p))
    })?;
    Some(
        Finding::new(
            FindingId::ContainerProxy,
            format!(
                "Port {port} on {} is published by a container runtime's proxy ({}, pid {}): \
                 the real server runs inside a container.",
                show(x),
                p.name,
                p.pid
            ),
        )
        .steps([
            Step::run(
                StepKind::FindContainer,
                "Find the container that publishes the port",
                Command::DockerPublishing { port },
                Machine::This,
            ),
            Step::about(
                StepKind::ListenAddress,
                format!(
                    "Inside the container the server must listen on 0.0.0.0 (or ::), not \
                     127.0.0.1; and `-p 127.0.0.1:{port}:…` publishes it to this machine only."
                ),
                Machine::This,
            ),
        ]),
    )
}

/// A listener's process cannot be seen without root.
pub(crate) fn owner_hidden(cx: &Ctx) -> Option<Finding> {
    let l = failed_here(cx)?;
    let hidden: Vec<&Listener> = l.listeners.iter().filter(|x| x.process.is_none()).collect();
    // As root every process is visible: a missing owner then means the owner search ran out
    // of its time budget (many processes), which the report admits to.
    if hidden.is_empty() || (l.privileged && !l.owner_search_incomplete) {
        return None;
    }
    let on = hidden
        .iter()
        .map(|x| show(x))
        .collect::<Vec<_>>()
        .join(", ");
    let (message, step) = if l.owner_search_incomplete {
        (
            format!(
                "{} listens on {on}; which program it is was not found within the owner \
                 search's time budget (this machine runs many processes).",
                owner_first(hidden[0])
            ),
            Step::run(
                StepKind::CheckListening,
                "See the listener's process",
                Command::SsListening { port: l.port },
                Machine::This,
            ),
        )
    } else {
        (
            format!(
                "{} listens on {on}, but which program it is cannot be seen without root.",
                owner_first(hidden[0])
            ),
            Step::run(
                StepKind::RerunAsRoot,
                "Run again with sudo to see the process",
                Command::CanreachAsRoot {
                    args: cx.checked().input.clone(),
                },
                Machine::This,
            ),
        )
    };
    Some(Finding::new(FindingId::OwnerHidden, message).steps([step]))
}

/// Why this machine's firewall could not be read, in words.
pub(crate) fn unread_words(fw: &Firewall) -> String {
    match &fw.reason {
        None => "unknown reason".into(),
        Some(NftError::NotPermitted(_)) if !fw.privileged => {
            "reading the firewall needs root: run with sudo to include it".into()
        }
        Some(NftError::NotPermitted(said)) => {
            format!("nft was not permitted to read it, even as root ({said})")
        }
        Some(NftError::Missing) => "nft is not installed".into(),
        Some(NftError::Failed(said)) => format!("nft failed ({said})"),
        Some(NftError::BadJson(_)) => "nft's output could not be read".into(),
        Some(NftError::TooLarge(limit)) => {
            format!(
                "the ruleset is too large to read (over {} MiB)",
                limit >> 20
            )
        }
        Some(NftError::TimedOut) => "nft did not finish before the deadline".into(),
        Some(NftError::Io { errno: Some(e) }) => format!(
            "nft could not be run ({} ({}))",
            errno_text(*e),
            errno_name(*e)
        ),
        Some(NftError::Io { errno: None }) => "nft could not be run".into(),
    }
}

/// This machine's firewall could not be read, and it might explain the failure.
pub(crate) fn firewall_not_inspected(cx: &Ctx) -> Option<Finding> {
    cx.failed_first()?;
    let fw = cx.facts.firewall.as_ref().filter(|f| !f.inspected)?;
    Some(
        Finding::new(
            FindingId::FirewallNotInspected,
            format!(
                "This machine's firewall was not inspected: {}.",
                unread_words(fw)
            ),
        )
        .steps([Step::run(
            StepKind::RerunAsRoot,
            "Include it by running as root",
            Command::CanreachAsRoot {
                args: cx.checked().input.clone(),
            },
            Machine::This,
        )]),
    )
}

/// The rules of one hook that stop the port, when the first address failed: the explicit
/// rules, else a drop policy (still worth naming: an accept rule may be missing).
fn hook_rules<'a>(cx: &'a Ctx, hook: Hook) -> Vec<&'a FirewallRule> {
    if cx.failed_first().is_none() {
        return vec![];
    }
    let Some(fw) = cx.facts.firewall.as_ref().filter(|f| f.inspected) else {
        return vec![];
    };
    let rules: Vec<&FirewallRule> = fw.rules.iter().filter(|r| r.hook == hook).collect();
    let explicit: Vec<&FirewallRule> = rules
        .iter()
        .copied()
        .filter(|r| r.handle.is_some())
        .collect();
    if explicit.is_empty() { rules } else { explicit }
}

fn firewall_finding(
    cx: &Ctx,
    id: FindingId,
    shown: &[&FirewallRule],
    whose: &str,
    extra: &str,
    way: &str,
) -> Finding {
    let texts: Vec<String> = shown
        .iter()
        .map(|r| {
            format!(
                "`{}` (table {} {}, chain {})",
                r.text, r.family, r.table, r.chain
            )
        })
        .collect();
    let r = shown[0];
    let mut steps = vec![Step::run(
        StepKind::ShowRule,
        "Show the chain with rule handles",
        Command::NftChain {
            family: r.family.clone(),
            table: r.table.clone(),
            chain: r.chain.clone(),
        },
        Machine::This,
    )];
    if let Some(handle) = r.handle {
        steps.push(Step::run(
            StepKind::DeleteRule,
            "If the rule is not wanted, delete it (and fix wherever it is configured, so it does \
             not return)",
            Command::NftDeleteRule {
                family: r.family.clone(),
                table: r.table.clone(),
                chain: r.chain.clone(),
                handle,
            },
            Machine::This,
        ));
    }
    Finding::new(
        id,
        format!(
            "This machine's own firewall stops {} port {} {whose}: {}.{extra}",
            if cx.checked().transport.is_udp() {
                "UDP"
            } else {
                "TCP"
            },
            cx.port(),
            texts.join("; ")
        ),
    )
    .steps(steps)
    // When the connection failed on its way, this rule is why.
    .explains(
        (cx.verdict != Verdict::Open && !cx.verdict.after_connect())
            .then(|| format!("this machine's own firewall stops the connection on its way {way}")),
    )
    // The cause is here, named: no hunt elsewhere, no walk, no other port.
    .rules_out(&[
        StepKind::CheckLocalOutput,
        StepKind::FindDropRule,
        StepKind::FindRejectRule,
        StepKind::FindResetRule,
        StepKind::TracePath,
        StepKind::TryOtherPort,
        StepKind::AskOwners,
    ])
}

/// A rule of this machine's output chain stops the port.
pub(crate) fn local_firewall_output(cx: &Ctx) -> Option<Finding> {
    let shown = hook_rules(cx, Hook::Output);
    if shown.is_empty() {
        return None;
    }
    let extra = if shown.iter().any(|r| r.verdict == RuleVerdict::Drop) {
        " A drop there looks exactly like silence from the remote side."
    } else {
        ""
    };
    Some(firewall_finding(
        cx,
        FindingId::LocalFirewallOutput,
        &shown,
        "in its output path (what this machine sends)",
        extra,
        "out",
    ))
}

/// A rule of this machine's input chain stops the port (local targets only).
pub(crate) fn local_firewall_input(cx: &Ctx) -> Option<Finding> {
    cx.facts.local.as_ref()?;
    let shown = hook_rules(cx, Hook::Input);
    if shown.is_empty() {
        return None;
    }
    Some(firewall_finding(
        cx,
        FindingId::LocalFirewallInput,
        &shown,
        "in its input path (what this machine receives)",
        "",
        "in",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{AddressFacts, Facts};
    use crate::local::Process;

    fn listener(addr: &str, name: Option<&str>) -> Listener {
        Listener {
            address: addr.parse().unwrap(),
            port: 5432,
            queued: 0,
            backlog: Some(128),
            uid: 105,
            user: Some("postgres".into()),
            process: name.map(|n| Process {
                pid: 812,
                name: n.into(),
                cmdline: format!("/usr/bin/{n}"),
                exe: Some(format!("/usr/bin/{n}")),
            }),
        }
    }

    #[test]
    fn wildcards_accept_their_family_and_dual_stack_accepts_both() {
        let v4any = listener("0.0.0.0", None);
        let v6any = listener("::", None);
        let lo = listener("127.0.0.1", None);
        assert!(accepts(&v4any, "198.18.0.5".parse().unwrap()));
        assert!(!accepts(&v4any, "::1".parse().unwrap()));
        assert!(accepts(&v6any, "198.18.0.5".parse().unwrap()));
        assert!(accepts(&v6any, "::1".parse().unwrap()));
        assert!(accepts(&lo, "127.0.0.1".parse().unwrap()));
        assert!(!accepts(&lo, "198.18.0.5".parse().unwrap()));
    }

    #[test]
    fn the_listen_setting_comes_from_the_owner() {
        let l = LocalFacts {
            port: 5432,
            addresses: vec![],
            listeners: vec![],
            owner_other_listeners: vec![],
            usual_servers: vec![],
            usual_server_names: vec![],
            privileged: true,
            listen_drops: None,
            owner_search_incomplete: false,
            systemd: true,
        };
        let redis = Listener {
            port: 6379,
            ..listener("127.0.0.1", Some("redis-server"))
        };
        assert!(listen_setting(&l, &redis).unwrap().contains("redis.conf"));
        assert!(
            listen_setting(&l, &listener("127.0.0.1", None))
                .unwrap()
                .contains("listen_addresses")
        );
    }

    fn facts_for(local: LocalFacts, firewall: Option<crate::local::Firewall>) -> Facts {
        use crate::probe::{ConnectResult, ProbeFact};
        let services = crate::services::Services::parse("");
        let target = crate::target::parse("127.0.0.1:5432", None, &services).unwrap();
        Facts {
            addresses: vec![AddressFacts::probed(ProbeFact::new(
                "127.0.0.1:5432".parse().unwrap(),
                ConnectResult::Failed {
                    errno: libc::ECONNREFUSED,
                },
                std::time::Duration::from_micros(50),
            ))],
            local: Some(local),
            firewall,
            ..Facts::new(target, std::time::Duration::from_secs(5))
        }
    }

    fn local_with(listeners: Vec<Listener>) -> LocalFacts {
        LocalFacts {
            port: 5432,
            addresses: vec!["127.0.0.1".parse().unwrap()],
            listeners,
            owner_other_listeners: vec![],
            usual_servers: vec![],
            usual_server_names: vec!["PostgreSQL"],
            privileged: true,
            listen_drops: None,
            owner_search_incomplete: false,
            systemd: true,
        }
    }

    fn owned_by(name: &str, cmdline: &str, exe: Option<&str>) -> Listener {
        let mut l = listener("127.0.0.1", Some(name));
        let p = l.process.as_mut().unwrap();
        p.cmdline = cmdline.into();
        p.exe = exe.map(Into::into);
        l
    }

    /// The messages of `owner_name_mismatch` for one listener.
    fn mismatches(l: Listener) -> Vec<String> {
        let f = facts_for(local_with(vec![l.clone(), l]), None);
        let d = crate::diagnosis::diagnose(f.clone());
        d.findings
            .iter()
            .filter(|f| f.id == FindingId::OwnerNameMismatch)
            .map(|f| f.message.clone())
            .collect()
    }

    #[test]
    fn a_process_claiming_a_known_servers_name_is_named_with_its_executable() {
        // `exec -a postgres /tmp/x/evil`: comm says evil, argv[0] postgres.
        let f = mismatches(owned_by("evil", "postgres -D /data", Some("/tmp/x/evil")));
        assert_eq!(f.len(), 1, "once per process");
        let m = &f[0];
        assert!(
            m.contains("calls itself postgres (the name of PostgreSQL)"),
            "{m}"
        );
        assert!(
            m.contains("but runs /tmp/x/evil (pid 812, user postgres"),
            "{m}"
        );
        // A renamed copy: comm and argv[0] say postgres, the kernel says python.
        let f = mismatches(owned_by(
            "postgres",
            "/tmp/x/postgres -c pass",
            Some("/usr/bin/python3.11"),
        ));
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].contains("runs /usr/bin/python3.11"));
    }

    #[test]
    fn real_servers_and_their_usual_shapes_are_not_flagged() {
        for (comm, cmdline, exe) in [
            (
                "postgres",
                "/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main",
                "/usr/lib/postgresql/15/bin/postgres",
            ),
            (
                "postgres",
                "postgres: checkpointer",
                "/usr/lib/postgresql/15/bin/postgres",
            ),
            (
                "nginx",
                "nginx: master process /usr/sbin/nginx",
                "/usr/sbin/nginx",
            ),
            ("python3", "python3 -m http.server", "/usr/bin/python3.11"),
            ("mysqld", "/usr/sbin/mysqld", "/usr/sbin/mariadbd"),
            (
                "redis-server",
                "/usr/bin/redis-server 127.0.0.1:6379",
                "/usr/bin/redis-server (deleted)",
            ),
            // Debian's /usr/bin/redis-server is a link to redis-check-rdb (one program).
            (
                "redis-server",
                "redis-server *:6379",
                "/usr/bin/redis-check-rdb",
            ),
            // Not a known server's name: not a claim (node retitles itself freely).
            ("myapp", "myapp --port 5432", "/usr/bin/node"),
        ] {
            assert!(
                mismatches(owned_by(comm, cmdline, Some(exe))).is_empty(),
                "{comm} {exe}"
            );
        }
        // The executable could not be read: nothing to compare, nothing said.
        assert!(mismatches(owned_by("evil", "postgres", None)).is_empty());
    }

    #[test]
    fn a_sentence_about_an_unnamed_owner_starts_with_a_capital() {
        // Listeners whose process is not known: on the other family, and on the address
        // dialled (with the owner search cut short, then as not root).
        for (addr, incomplete, privileged) in [
            ("::1", false, true),
            ("127.0.0.1", true, true),
            ("127.0.0.1", false, false),
        ] {
            let mut local = local_with(vec![listener(addr, None)]);
            local.owner_search_incomplete = incomplete;
            local.privileged = privileged;
            let d = crate::diagnosis::diagnose(facts_for(local, None));
            let about: Vec<&str> = d
                .findings
                .iter()
                .map(|f| f.message.as_str())
                .filter(|m| m.contains("process of user"))
                .collect();
            assert!(!about.is_empty(), "{addr}: {:?}", d.findings);
            for m in about {
                assert!(m.starts_with("A process of user postgres"), "{m}");
            }
        }
    }

    #[test]
    fn an_owner_is_named_with_its_executable_or_unknown() {
        let l = owned_by(
            "postgres",
            "postgres",
            Some("/usr/lib/postgresql/15/bin/postgres"),
        );
        assert_eq!(
            owner(&l),
            "postgres (pid 812, user postgres, /usr/lib/postgresql/15/bin/postgres)"
        );
        let l = owned_by("postgres", "postgres", None);
        assert_eq!(
            owner(&l),
            "postgres (pid 812, user postgres, executable unknown)"
        );
    }

    #[test]
    fn a_container_proxy_owner_is_named() {
        let f = facts_for(
            local_with(vec![listener("0.0.0.0", Some("docker-proxy"))]),
            None,
        );
        let d = crate::diagnosis::diagnose(f.clone());
        let c = d
            .findings
            .iter()
            .find(|f| f.id == FindingId::ContainerProxy)
            .expect("container_proxy");
        assert!(c.message.contains("docker-proxy, pid 812"));
        let step = d.steps.iter().find(|s| s.findings.contains(&c.id)).unwrap();
        assert_eq!(
            step.command.as_deref(),
            Some("docker ps --filter publish=5432")
        );
    }

    #[test]
    fn nft_io_errors_are_worded_from_the_errno_table() {
        let fw = |errno| crate::local::Firewall {
            inspected: false,
            reason: Some(NftError::Io { errno }),
            privileged: true,
            rules: vec![],
        };
        assert_eq!(
            unread_words(&fw(Some(libc::EMFILE))),
            "nft could not be run (Too many open files (EMFILE))"
        );
        assert_eq!(unread_words(&fw(None)), "nft could not be run");
    }

    #[test]
    fn an_input_rule_is_reported_for_a_local_target_only() {
        let fw = crate::local::Firewall {
            inspected: true,
            reason: None,
            privileged: true,
            rules: vec![crate::local::nft::FirewallRule {
                family: "inet".into(),
                table: "filter".into(),
                chain: "input".into(),
                hook: crate::local::nft::Hook::Input,
                verdict: crate::local::nft::RuleVerdict::Reject,
                text: "tcp dport 5432 reject with tcp reset".into(),
                handle: Some(7),
            }],
        };
        let f = facts_for(
            local_with(vec![listener("0.0.0.0", Some("postgres"))]),
            Some(fw),
        );
        let d = crate::diagnosis::diagnose(f.clone());
        let found = &d.findings;
        assert_eq!(found[0].id, FindingId::LocalFirewallInput);
        assert!(
            found[0]
                .message
                .contains("tcp dport 5432 reject with tcp reset")
        );
        assert!(
            d.summary.contains("this machine's own firewall"),
            "{}",
            d.summary
        );
        // The rule is named and the fix is given; nothing sends people hunting elsewhere.
        let cmds: Vec<&str> = d
            .steps
            .iter()
            .filter_map(|s| s.command.as_deref())
            .collect();
        assert_eq!(
            cmds,
            [
                "sudo nft -a list chain inet filter input",
                "sudo nft delete rule inet filter input handle 7"
            ]
        );
        let remote = Facts { local: None, ..f };
        assert!(
            !crate::diagnosis::diagnose(remote.clone())
                .findings
                .iter()
                .any(|f| f.id == FindingId::LocalFirewallInput),
            "input rules do not concern remote targets"
        );
    }

    #[test]
    fn one_server_with_its_workers_is_one_finding_and_root_sees_where_it_listens() {
        let proc_ = |pid: u32, cmdline: &str| Process {
            pid,
            name: "postgres".into(),
            cmdline: cmdline.into(),
            exe: None,
        };
        let mut l = local_with(vec![]);
        l.usual_servers = vec![crate::local::RunningServer {
            server: "PostgreSQL",
            process: proc_(812, "/usr/lib/postgresql/15/bin/postgres -D /d"),
            listening: Some(vec!["127.0.0.1:5433".parse().unwrap()]),
            workers: vec![813, 814, 815, 816, 817],
        }];
        let d = crate::diagnosis::diagnose(facts_for(l.clone(), None));
        let found: Vec<&Finding> = d
            .findings
            .iter()
            .filter(|f| f.id == FindingId::UsualServerElsewhere)
            .collect();
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].message,
            "PostgreSQL is running (postgres pid 812 and 5 worker processes: \
             /usr/lib/postgresql/15/bin/postgres -D /d) and listens on 127.0.0.1:5433 — not on \
             port 5432."
        );
        // Descriptors unreadable: as root that is no matter of permission.
        l.usual_servers[0].listening = None;
        let d = crate::diagnosis::diagnose(facts_for(l.clone(), None));
        let m = &d
            .findings
            .iter()
            .find(|f| f.id == FindingId::UsualServerElsewhere)
            .unwrap()
            .message;
        assert!(m.ends_with("(where it listens could not be read)."), "{m}");
        assert!(!d.steps.iter().any(|s| s.kind == StepKind::CheckListening));
        l.privileged = false;
        let d = crate::diagnosis::diagnose(facts_for(l, None));
        let m = &d
            .findings
            .iter()
            .find(|f| f.id == FindingId::UsualServerElsewhere)
            .unwrap()
            .message;
        assert!(m.ends_with("cannot be seen without root)."), "{m}");
    }

    #[test]
    fn a_read_firewall_with_no_rule_rules_out_a_forged_reset() {
        let clean = crate::local::Firewall {
            inspected: true,
            reason: None,
            privileged: true,
            rules: vec![],
        };
        let d = crate::diagnosis::diagnose(facts_for(local_with(vec![]), Some(clean)));
        assert_eq!(d.findings[0].id, FindingId::PortClosed);
        assert!(
            !d.findings[0].message.contains("imitates"),
            "{}",
            d.findings[0].message
        );
        let d = crate::diagnosis::diagnose(facts_for(local_with(vec![]), None));
        assert!(d.findings[0].message.contains("reject with tcp reset"));
    }
}
