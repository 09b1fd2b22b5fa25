//! Is a program on this machine waiting (every thread asleep), for a client to speak?
//!
//! A new connection to this machine is watched before the client speaks so that a program that takes
//! the connection and hangs up (a proxy whose backend is down, a full server, a wrapper
//! refusing this client) is not called open. Watching for a fixed time after `accept()` was
//! most of an open check (5 ms against `nc -z`'s 1 ms), and a fixed time is a guess either way.
//! The kernel can say instead when the program is done reacting: once every thread of the
//! processes behind the listener (and of their children: a server may fork a process for each
//! connection) has been asleep at one same instant after the accept, the program has gone back
//! to waiting — for the client, for another connection, or for a timer — and whatever it did
//! with the connection before sleeping has already reached the socket. A hang-up after that
//! comes from something new (a timer, a backend's answer), which no short watch could promise
//! to see either.
//!
//! One instant when all were asleep is shown by looking twice: a thread seen asleep (`S`) in both,
//! having run no time slice in between (`schedstat`'s count), slept throughout — a woken
//! thread is runnable (`R`) until it has run. Two intervals of sleep, one per thread, that
//! all overlap: the second look starts after the first ended. The thread and child lists are
//! read again between the looks: a process that forked or started a thread ran, and so did
//! its parent.
//!
//! [`tasks`] and [`look`] read /proc; [`parse_state`], [`parse_runs`] and [`parse_children`]
//! read the bytes and are tested on captured lines.

use std::collections::BTreeSet;

/// The most threads looked at: a server of hundreds of worker processes is not worth the
/// reads (~10 µs a thread, on the check's own thread); its watch ends by time instead.
pub(crate) const MAX_TASKS: usize = 64;

/// How deep children are followed: the processes a server forks for a connection
/// (PostgreSQL's backends, sshd's session), and theirs.
const CHILD_DEPTH: usize = 2;

/// One thread: the process and the thread id.
pub(crate) type TaskId = (u32, u32);

/// What one look saw of a thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TaskState {
    /// Interruptible sleep (`S`), or gone for good (`Z`, `X`): it does nothing until woken.
    pub asleep: bool,
    /// How many times it has been given a CPU (`schedstat`'s third number).
    pub runs: u64,
}

/// Every thread of `pids` and of their children (down to [`CHILD_DEPTH`]), sorted; `None` when
/// a process is gone or unreadable, or there are more than [`MAX_TASKS`].
pub(crate) fn tasks(pids: &[u32]) -> Option<BTreeSet<TaskId>> {
    let mut out = BTreeSet::new();
    let mut level: Vec<u32> = pids.to_vec();
    for depth in 0..=CHILD_DEPTH {
        let mut next = Vec::new();
        for pid in level {
            for tid in crate::sys::task_ids(pid).ok()? {
                if !out.insert((pid, tid)) {
                    continue;
                }
                if out.len() > MAX_TASKS {
                    return None;
                }
                if depth < CHILD_DEPTH {
                    let children = read(&format!("/proc/{pid}/task/{tid}/children"))?;
                    next.extend(parse_children(&children));
                }
            }
        }
        level = next;
    }
    Some(out)
}

/// Each thread's state and run count, in the order of `tasks`; `None` when one is gone or
/// unreadable, or the kernel keeps no run counts (all zero). The first look reads the count
/// before the state, the second the state before the count: a thread seen asleep twice with
/// the same count then slept from the first read to the last (a thread woken and run between
/// a first state and a first count would have its run hidden in the baseline).
pub(crate) fn look(tasks: &BTreeSet<TaskId>, second: bool) -> Option<Vec<TaskState>> {
    let states: Option<Vec<TaskState>> = tasks
        .iter()
        .map(|(pid, tid)| {
            let base = format!("/proc/{pid}/task/{tid}/");
            let (stat, sched) = if second {
                let stat = read(&format!("{base}stat"))?;
                (stat, read(&format!("{base}schedstat"))?)
            } else {
                let sched = read(&format!("{base}schedstat"))?;
                (read(&format!("{base}stat"))?, sched)
            };
            Some(TaskState {
                asleep: matches!(parse_state(&stat)?, b'S' | b'Z' | b'X'),
                runs: parse_runs(&sched)?,
            })
        })
        .collect();
    states.filter(|s| s.iter().any(|t| t.runs != 0))
}

/// Whether every thread slept from the first look to the second (see the module doc).
pub(crate) fn all_asleep(first: &[TaskState], second: &[TaskState]) -> bool {
    first.len() == second.len()
        && first
            .iter()
            .zip(second)
            .all(|(a, b)| a.asleep && b.asleep && a.runs == b.runs)
}

/// The processes to watch for `owners` (the processes found holding the listener): each
/// owner, and its parent when that runs the same program (a pre-forking server's master, whose
/// other workers may take the connection: they are its children, looked at through it).
/// `None` when an owner is a forwarder (see [`FORWARDERS`]).
pub(crate) fn program(owners: &[u32]) -> Option<Vec<u32>> {
    let mut out = owners.to_vec();
    for pid in owners {
        let Some((comm, ppid)) = read(&format!("/proc/{pid}/stat")).and_then(|s| parse_parent(&s))
        else {
            continue;
        };
        if FORWARDERS.iter().any(|f| f.as_bytes() == comm.as_slice()) {
            return None;
        }
        let same = read(&format!("/proc/{ppid}/stat"))
            .and_then(|s| parse_parent(&s))
            .is_some_and(|(parent_comm, _)| parent_comm == comm);
        if ppid > 1 && same && !out.contains(&ppid) {
            out.push(ppid);
        }
    }
    Some(out)
}

/// Programs whose job is to pass a connection on, and whose dial cannot be seen from here: it
/// happens at the far end of a tunnel (`ssh -L`, `kubectl port-forward`), in a container's
/// own network namespace (rootless forwarders), or after a name lookup over UDP (`socat`).
/// Asleep, such a program may be waiting for a backend that will refuse, and then hangs up:
/// its rest proves nothing, and the watch keeps its 5 ms after the accept. (A forwarder that
/// dials with `connect()` in this namespace — docker-proxy, haproxy — is seen by the connect
/// count too.) Names as the kernel keeps them (`comm`, at most 15 bytes).
pub(crate) const FORWARDERS: &[&str] = &[
    "ssh",
    "kubectl",
    "oc",
    "rootlessport",
    "rootlesskit",
    "slirp4netns",
    "pasta",
    "passt",
    "socat",
    "docker-proxy",
    "kube-proxy",
    "haproxy",
    "envoy",
    "sslh",
    "stunnel",
    "stunnel4",
    "inetd",
    "xinetd",
    "systemd",
];

/// Was every thread of the program behind `pids` seen asleep at one instant just now (it
/// waits for something): each thread read twice, the task list read again
/// and `meanwhile` asked between them (blocking, a few reads per thread). `None` when it
/// cannot be told (also when `meanwhile` says so: `None`), `Some(false)` when a thread ran or
/// `meanwhile` saw work in flight.
pub(crate) fn seen_asleep(pids: &[u32], meanwhile: &impl Fn() -> Option<bool>) -> Option<bool> {
    if pids.is_empty() {
        return None;
    }
    let ids = tasks(pids)?;
    // A thread gone between the listing and the look ran (it exited): not asleep.
    let Some(first) = look(&ids, false) else {
        return zero_counts(&ids).then_some(false);
    };
    if !first.iter().all(|t| t.asleep) {
        return Some(false);
    }
    if tasks(pids).is_none_or(|again| again != ids) || !meanwhile()? {
        return Some(false);
    }
    let Some(second) = look(&ids, true) else {
        return Some(false);
    };
    Some(all_asleep(&first, &second))
}

/// `false` when the kernel keeps no run counts here (a look then always fails): whether a
/// failed look may be a thread that went away.
fn zero_counts(ids: &BTreeSet<TaskId>) -> bool {
    ids.iter()
        .find_map(|(pid, tid)| read(&format!("/proc/{pid}/task/{tid}/schedstat")))
        .and_then(|s| parse_runs(&s))
        .is_none_or(|runs| runs != 0)
}

/// The command name and the parent pid of a `/proc/PID/stat` line.
pub(crate) fn parse_parent(stat: &[u8]) -> Option<(Vec<u8>, u32)> {
    let open = stat.iter().position(|b| *b == b'(')?;
    let close = stat.iter().rposition(|b| *b == b')')?;
    let comm = stat.get(open + 1..close)?.to_vec();
    let rest = std::str::from_utf8(stat.get(close + 1..)?).ok()?;
    let ppid = rest.split_ascii_whitespace().nth(1)?.parse().ok()?;
    Some((comm, ppid))
}

/// The state letter of a `/proc/…/stat` line: the first field after the command name, which
/// is in parentheses and may itself hold `)` and spaces, so the *last* `)` ends it.
pub(crate) fn parse_state(stat: &[u8]) -> Option<u8> {
    let close = stat.iter().rposition(|b| *b == b')')?;
    let rest = stat.get(close + 1..)?;
    rest.iter().copied().find(|b| !b.is_ascii_whitespace())
}

/// The run count of a `schedstat` line: `time_on_cpu_ns wait_ns timeslices`.
pub(crate) fn parse_runs(schedstat: &[u8]) -> Option<u64> {
    std::str::from_utf8(schedstat)
        .ok()?
        .split_ascii_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

/// The pids of a `children` file: numbers separated by spaces.
pub(crate) fn parse_children(bytes: &[u8]) -> Vec<u32> {
    String::from_utf8_lossy(bytes)
        .split_ascii_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect()
}

fn read(path: &str) -> Option<Vec<u8>> {
    super::read_proc_file(path, 1 << 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_follows_the_last_parenthesis() {
        // Captured from a python3 listener, and a name holding ") R (".
        let line = b"14366 (python3) S 1 14301 13557 0 -1 4194304 3006 6522 8 1 25 7 4 4 20 0 1 0";
        assert_eq!(parse_state(line), Some(b'S'));
        assert_eq!(parse_state(b"7 (a) R (b) D 1 2 3"), Some(b'D'));
        assert_eq!(parse_state(b"no parenthesis"), None);
        assert_eq!(parse_state(b"1 (x)"), None);
    }

    #[test]
    fn run_counts_and_children_parse_and_bad_bytes_do_not() {
        assert_eq!(parse_runs(b"328174253 83475553 1685\n"), Some(1685));
        assert_eq!(parse_runs(b"328174253 83475553\n"), None);
        assert_eq!(parse_runs(b"\xff\xfe"), None);
        assert_eq!(parse_children(b"14366 18001 \n"), vec![14366, 18001]);
        assert_eq!(parse_children(b""), Vec::<u32>::new());
        assert_eq!(parse_children(b"12 x 13"), vec![12, 13]);
    }

    #[test]
    fn the_parent_and_command_name_parse_whatever_the_name() {
        let line = b"14366 (python3) S 1 14301 13557 0 -1 4194304";
        assert_eq!(parse_parent(line), Some((b"python3".to_vec(), 1)));
        assert_eq!(
            parse_parent(b"9 (a) b (c) S 812 1 1"),
            Some((b"a) b (c".to_vec(), 812))
        );
        assert_eq!(parse_parent(b"9 (x) S"), None);
    }

    #[test]
    fn a_worker_is_watched_with_its_master_but_not_with_a_shell() {
        // `sleep` started by this test binary: a different program, so no parent added.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep runs");
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(program(&[child.id()]), Some(vec![child.id()]));
        let _ = child.kill();
        let _ = child.wait();
        // A process whose parent runs the same program: this test binary's own threads'
        // process has init or the harness as parent, so build the case from /proc: a shell
        // started by a shell is watched with its parent.
        let mut outer = std::process::Command::new("sh")
            .args(["-c", "sh -c 'sleep 30; :'; :"])
            .spawn()
            .expect("sh runs");
        std::thread::sleep(std::time::Duration::from_millis(50));
        let inner = tasks(&[outer.id()])
            .expect("readable")
            .into_iter()
            .map(|(pid, _)| pid)
            .find(|p| {
                *p != outer.id()
                    && read(&format!("/proc/{p}/comm")).as_deref() == Some(b"sh\n".as_slice())
            })
            .expect("the inner shell");
        let watched = program(&[inner]).expect("not a forwarder");
        for (pid, _) in tasks(&[outer.id()]).unwrap_or_default() {
            if pid != outer.id() {
                let _ = std::process::Command::new("kill")
                    .arg(pid.to_string())
                    .status();
            }
        }
        let _ = outer.kill();
        let _ = outer.wait();
        assert_eq!(watched, vec![inner, outer.id()]);
    }

    #[test]
    fn rest_needs_both_looks_asleep_with_no_run_between() {
        let s = |asleep, runs| TaskState { asleep, runs };
        assert!(all_asleep(
            &[s(true, 5), s(true, 9)],
            &[s(true, 5), s(true, 9)]
        ));
        // It ran in between (and fell asleep again).
        assert!(!all_asleep(&[s(true, 5)], &[s(true, 6)]));
        // Woken, not yet run.
        assert!(!all_asleep(&[s(true, 5)], &[s(false, 5)]));
        assert!(!all_asleep(&[s(false, 5)], &[s(true, 5)]));
        assert!(!all_asleep(&[s(true, 5)], &[s(true, 5), s(true, 1)]));
    }

    #[test]
    fn a_sleeping_process_is_seen_asleep_and_a_busy_one_is_not() {
        let mut sleeper = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep runs");
        let mut busy = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .expect("sh runs");
        // Give both a moment to exec and settle (on a loaded machine, as long as it takes).
        std::thread::sleep(std::time::Duration::from_millis(50));
        let settled = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let rest = std::iter::repeat_with(|| {
            let seen = seen_asleep(&[sleeper.id()], &|| Some(true)) == Some(true);
            if !seen {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            seen
        })
        .take_while(|_| std::time::Instant::now() < settled)
        .any(|seen| seen);
        let busy_rest = (0..50).any(|_| seen_asleep(&[busy.id()], &|| Some(true)) == Some(true));
        // Work in flight elsewhere (a connect): not asleep, or not to be told.
        assert_eq!(seen_asleep(&[sleeper.id()], &|| Some(false)), Some(false));
        assert_eq!(seen_asleep(&[sleeper.id()], &|| None), None);
        let _ = sleeper.kill();
        let _ = busy.kill();
        let _ = sleeper.wait();
        let _ = busy.wait();
        assert!(rest, "a process in nanosleep is seen asleep");
        assert!(
            !busy_rest,
            "a process spinning on a CPU is never seen asleep"
        );
        assert_eq!(
            seen_asleep(&[u32::MAX], &|| Some(true)),
            None,
            "no such process"
        );
        assert_eq!(seen_asleep(&[], &|| Some(true)), None, "no process known");
    }

    #[test]
    fn a_parent_is_not_seen_asleep_while_its_child_works() {
        // The shell sleeps in wait() while its child spins: the child is one of its tasks.
        let mut parent = std::process::Command::new("sh")
            .args(["-c", "sh -c 'while :; do :; done'; :"])
            .spawn()
            .expect("sh runs");
        // The shell forks its child soon, but not within any fixed time on a loaded machine.
        let mut ids = tasks(&[parent.id()]).expect("readable");
        for _ in 0..200 {
            if ids.len() >= 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            ids = tasks(&[parent.id()]).expect("readable");
        }
        let busy_rest = (0..50).any(|_| seen_asleep(&[parent.id()], &|| Some(true)) == Some(true));
        // Kill the whole group: the child first.
        for (pid, _) in &ids {
            if *pid != parent.id() {
                let _ = std::process::Command::new("kill")
                    .arg(pid.to_string())
                    .status();
            }
        }
        let _ = parent.kill();
        let _ = parent.wait();
        assert!(ids.len() >= 2, "the child is found: {ids:?}");
        assert!(!busy_rest);
    }
}
