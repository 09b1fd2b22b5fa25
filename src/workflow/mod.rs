//! Workflows around the one check: many targets at once, `--wait`, `-q`, `-4`/`-6`, the
//! progress line, and a command to run once everything is open.
//!
//! | module | does |
//! |---|---|
//! | [`input`] | words and `-f FILE` → targets; duplicates and bad lines refused |
//! | `resolver` | one `getaddrinfo` in flight per name; the `-4`/`-6` filter |
//! | `wait` | the retry schedule and which verdicts are worth waiting on |
//! | `progress` | the spinner on stderr |
//! | `report` | the finished checks' reports, written in input order, kept only as far as the output needs them |
//!
//! Every target is checked by its own [`pipeline::gather_with`] in the one current-thread runtime,
//! under its own deadline (which starts when its check starts, not while it queues). At most
//! [`CONCURRENCY`] checks run at once. Targets that share a remote host run one after another
//! (see [`Runner`]). Nothing else is shared between checks but the in-flight name lookups.

pub(crate) mod input;
mod progress;
mod report;
mod resolver;
mod wait;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::cli::{Cli, Format};
use crate::diagnosis::{self, Report, Verdict};
use crate::escape::escape;
use crate::exit_codes::{ExitCode, PluginState};
use crate::facts::{WaitEnd, Waited};
use crate::local;
use crate::options::{Family, LocalMode, Options};
use crate::pipeline;
use crate::probe::KernelConnector;
use crate::target::{Host, Target};

use input::Input;
use progress::Progress;
use resolver::{Lookups, WorkflowResolver};

/// The most checks of remote hosts running at once. Each check opens a socket per address
/// plus a few liveness probes and walk sockets; 16 stay away from bursts a firewall would
/// take for a scan.
pub(crate) const CONCURRENCY: usize = 16;

/// The most checks of this machine's own addresses running at once. They cross no network and
/// no firewall but this machine's (nothing to look like a scan to), and most of a closed
/// port's check is waiting for the run's shared inspection and firewall read (a few ms each),
/// holding no descriptor: 256 at once keep a sweep of 10,000 ports from waiting in rounds on
/// those reads, within [`LOCAL_FILES`] descriptors each.
pub(crate) const LOCAL_CONCURRENCY: usize = 256;

/// Descriptors kept for the run itself, beside its checks: standard streams, the runtime (its
/// poll, its waker, the signal pipe), the shared inspection (netlink, /proc directories and
/// files), one `nft` (three pipes).
pub(crate) const RESERVED_FILES: u64 = 32;

/// Descriptors one check of a remote host holds at once, usually: a socket per address, four
/// liveness probes, the second SYN, a wave of three TTLs, the name servers' sockets.
pub(crate) const REMOTE_FILES: u64 = 16;

/// Descriptors one check of this machine holds at once: the probe, the session's connection
/// and a second one (a TLS confirmation, a `GET` after an unanswered `HEAD`).
pub(crate) const LOCAL_FILES: u64 = 4;

/// How many checks run at once, sized to the descriptors this process may still open: half of
/// them for checks of remote hosts, half for this machine's, at most [`CONCURRENCY`] and
/// [`LOCAL_CONCURRENCY`]. At least one of each: a check that then finds no descriptor is
/// reported as such (`inconclusive`, `local_error`), and the others are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub remote: usize,
    pub local: usize,
}

impl Limits {
    /// For `free` descriptors.
    pub(crate) fn for_free_files(free: u64) -> Limits {
        let half = free / 2;
        let n =
            |per: u64, most: usize| usize::try_from(half / per).map_or(most, |n| n.clamp(1, most));
        Limits {
            remote: n(REMOTE_FILES, CONCURRENCY),
            local: n(LOCAL_FILES, LOCAL_CONCURRENCY),
        }
    }

    /// From this process's open-file limit (`ulimit -n`, raised to the hard limit at start)
    /// and the descriptors open now.
    pub(crate) fn now() -> Limits {
        let limit = crate::sys::open_file_limit().unwrap_or(1024);
        let open = std::fs::read_dir("/proc/self/fd").map_or(3, |d| d.count() as u64);
        Limits::for_free_files(limit.saturating_sub(open + RESERVED_FILES))
    }
}

/// What a target's check is doing, for the progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Phase {
    Queued = 0,
    Resolving = 1,
    Probing = 2,
    Waiting = 3,
    Done = 4,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            1 => Phase::Resolving,
            2 => Phase::Probing,
            3 => Phase::Waiting,
            4 => Phase::Done,
            _ => Phase::Queued,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Phase::Queued => "queued",
            Phase::Resolving => "resolving",
            Phase::Probing => "probing",
            Phase::Waiting => "waiting for",
            Phase::Done => "done",
        }
    }
}

/// Where one target stands: read by the progress line and on Ctrl-C.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    phase: AtomicU8,
    attempts: AtomicU32,
    last: Mutex<Option<Verdict>>,
}

impl Slot {
    pub(crate) fn set_phase(&self, p: Phase) {
        self.phase.store(p as u8, Ordering::Relaxed);
    }

    pub(crate) fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Relaxed))
    }

    fn record(&self, v: Verdict) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
    }

    pub(crate) fn attempts(&self) -> u32 {
        self.attempts.load(Ordering::Relaxed)
    }

    pub(crate) fn last(&self) -> Option<Verdict> {
        *self.last.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs checks: the bound on concurrency, one-at-a-time per shared remote host, the shared
/// lookups.
///
/// A router sends ICMP errors to one destination at about 6 a second (Linux: a burst of 6,
/// then one per `icmp_ratelimit`, 1 s), and a firewall's `reject` answers are rate-limited
/// alike. Two checks of the same host at once would share that budget, and a reject seen by
/// one could turn into silence (`filtered`) for the other. So targets naming the same remote
/// host (same name or address, different ports) are checked one after another, each after
/// the previous one finished; this machine's addresses and `localhost` (resets from the
/// local kernel, no rate limit) run concurrently.
#[derive(Debug)]
pub(crate) struct Runner {
    opts: Options,
    family: Option<Family>,
    lookups: Lookups,
    permits: Semaphore,
    /// Permits for this machine's targets ([`LOCAL_CONCURRENCY`]).
    local_permits: Semaphore,
    hosts: HashMap<String, tokio::sync::Mutex<()>>,
    /// This machine's listeners and firewall, read once for the checks running together.
    local: local::shared::PerRun,
}

/// The key by which targets share a remote host; `None` for this machine.
fn host_key(t: &Target) -> Option<String> {
    if t.here {
        return None;
    }
    match &t.host {
        Host::Ip(ip) if ip.is_loopback() || ip.is_unspecified() => None,
        Host::Ip(ip) => Some(ip.to_string()),
        Host::Name(n) if crate::dns::is_localhost(n) => None,
        Host::Name(n) => Some(n.trim_end_matches('.').to_ascii_lowercase()),
    }
}

impl Runner {
    /// Checks of `targets`, as many at once as this process's descriptors allow
    /// ([`Limits::now`]).
    pub(crate) fn new(opts: Options, family: Option<Family>, targets: &[Input]) -> Runner {
        Runner::with_limits(opts, family, targets, Limits::now())
    }

    /// Checks of `targets`, at most `limits` at once.
    pub(crate) fn with_limits(
        opts: Options,
        family: Option<Family>,
        targets: &[Input],
        limits: Limits,
    ) -> Runner {
        let mut count: HashMap<String, usize> = HashMap::new();
        for t in targets {
            if let Some(k) = host_key(&t.target) {
                *count.entry(k).or_default() += 1;
            }
        }
        let timeout = opts.timeout;
        Runner {
            opts,
            family,
            lookups: Lookups::default(),
            permits: Semaphore::new(limits.remote),
            local_permits: Semaphore::new(limits.local),
            local: local::shared::PerRun::new(targets.iter().map(|t| t.target.port.get()))
                .patient_for(timeout),
            hosts: count
                .into_iter()
                .filter(|(_, n)| *n > 1)
                .map(|(k, _)| (k, tokio::sync::Mutex::new(())))
                .collect(),
        }
    }

    /// Start reading this machine's listeners and owners when a target is surely this machine
    /// and local inspection is not turned off (see [`local::shared::PerRun::start`]).
    pub(crate) fn start_local_reads(&self, inputs: &[Input]) {
        if self.opts.local != LocalMode::Never
            && inputs.iter().any(|i| host_key(&i.target).is_none())
        {
            self.local.start();
        }
    }

    /// One check of `target` under `timeout`.
    pub(crate) async fn check(&self, target: &Target, timeout: Duration, slot: &Slot) -> Report {
        let key = host_key(target);
        let _host = match key.as_ref().and_then(|k| self.hosts.get(k)) {
            Some(m) => Some(m.lock().await),
            None => None,
        };
        let _permit = match key {
            Some(_) => self.permits.acquire().await,
            None => self.local_permits.acquire().await,
        };
        slot.set_phase(match target.host {
            Host::Ip(_) => Phase::Probing,
            Host::Name(_) => Phase::Resolving,
        });
        let resolver = WorkflowResolver {
            lookups: &self.lookups,
            family: self.family,
            slot,
        };
        let opts = Options {
            timeout,
            ..self.opts.clone()
        };
        // On the heap, and only once the check may run: a check waiting for its turn then
        // holds a few hundred bytes, not the whole pipeline's state (6 KiB).
        let facts = Box::pin(pipeline::gather_with(
            target.clone(),
            opts,
            &resolver,
            &KernelConnector,
            &self.local,
        ))
        .await;
        let report = diagnosis::diagnose(facts);
        slot.record(report.verdict);
        report
    }

    /// Check `target` until it is open, will not change by waiting, or `until` (see `wait`).
    /// `changed(from, to, after)` is told each change of verdict. The last check's facts say
    /// how the wait went (`Facts::waited`; `wait` is what the user gave).
    pub(crate) async fn wait_for(
        &self,
        target: &Target,
        slot: &Slot,
        until: Instant,
        wait: Duration,
        changed: &dyn Fn(Verdict, Verdict, Duration),
    ) -> Report {
        let start = Instant::now();
        let first = self
            .opts
            .timeout
            .min(until.saturating_duration_since(start));
        let mut last = self
            .check(target, first.max(Duration::from_millis(1)), slot)
            .await;
        let mut checks = 1;
        let mut interval = wait::FIRST_INTERVAL;
        let ended = loop {
            if last.verdict == Verdict::Open {
                break WaitEnd::Open;
            }
            if !wait::worth_waiting(&last) {
                break WaitEnd::WillNotChange;
            }
            let Some((at, timeout)) =
                wait::next_attempt(Instant::now(), until, interval, self.opts.timeout)
            else {
                break WaitEnd::TimeUp;
            };
            slot.set_phase(Phase::Waiting);
            tokio::time::sleep_until(at).await;
            let next = self.check(target, timeout, slot).await;
            checks += 1;
            if next.verdict != last.verdict {
                changed(last.verdict, next.verdict, start.elapsed());
            }
            last = next;
            interval = wait::next_interval(interval);
        };
        last.facts.waited = Some(Waited {
            wait,
            timeout: self.opts.timeout,
            took: start.elapsed(),
            checks,
            ended,
        });
        slot.set_phase(Phase::Done);
        last
    }
}

/// How a workflow run ended.
#[derive(Debug)]
pub(crate) struct Ended {
    pub code: i32,
    pub write_error: Option<io::Error>,
}

/// The most targets whose checks are in flight or finished but not yet written: the next
/// target's check starts only while fewer than this many lie between the first unwritten
/// target and it. This bounds the memory of a long run (a check in flight holds a few KiB, a
/// finished one its rendered line) and keeps the output in input order; a slow target holds
/// back at most this many others. Runs with `--wait` check every target at once: each waits
/// until the same instant.
pub(crate) const WINDOW: usize = 1024;

/// Run every check of `inputs` (waiting if asked) and write the reports to `out`: each as soon
/// as every earlier target's is (JSON Lines), or the table once all are done (text).
pub(crate) fn run(cli: &Cli, inputs: Vec<Input>, out: &mut dyn Write) -> anyhow::Result<Ended> {
    let format = cli.output_format();
    let runner = Runner::new(cli.options(), cli.family(), &inputs);
    // Before the runtime is built: the inspection's thread starts meanwhile.
    runner.start_local_reads(&inputs);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let sigint = interrupt_handler(cli, inputs.len(), &rt);
    let slots: Vec<Slot> = inputs.iter().map(|_| Slot::default()).collect();
    let progress = Progress::new(progress::wanted(cli));
    let sink = &mut io::sink();
    let out: &mut dyn Write = if cli.quiet { sink } else { out };
    let keep = report::Keep::for_run(cli.quiet, format, inputs.len(), cli.wait.is_some());
    let reports = RefCell::new(report::Reports::new(keep, format, out));
    let start = Instant::now();
    let checks = Checks {
        cli,
        format,
        inputs: &inputs,
        slots: &slots,
        runner: &runner,
        reports: &reports,
        progress: &progress,
        until: cli.wait.map(|w| Instant::now() + w),
    };
    let finished = rt.block_on(checks.until_done(start, sigint));
    progress.clear();
    // Abandoned lookups (a silent name server) must not hold the exit.
    rt.shutdown_background();
    let reports = reports.into_inner();
    if !finished {
        interrupted(&inputs, &slots, start.elapsed());
        return Ok(Ended {
            code: ExitCode::Interrupted.code(),
            write_error: reports.write_error,
        });
    }
    // A single check this machine could not even make (out of file descriptors) says nothing
    // about its target: an internal error. Among many, such a check is reported as such
    // (`inconclusive`, `local_error`) beside the others.
    if inputs.len() == 1
        && cli.wait.is_none()
        && let Some(why) = reports.resource_failure()
    {
        anyhow::bail!(why.to_string());
    }
    let code = match format {
        // A scheduler reads 0–3 (src/exit_codes.rs, PluginState).
        Format::Nagios => PluginState::worst([reports.worst()]).code(),
        _ => ExitCode::from(reports.worst()).code(),
    };
    let write_error = reports.finish();
    Ok(Ended { code, write_error })
}

/// Ctrl-C is held back since `main` began (`sys::hold_sigint`): a run that can be
/// interrupted (one that waits, or of many targets) sets up its handler first, then lets a
/// held one through to it; a single check ends by the default action, as before.
fn interrupt_handler(
    cli: &Cli,
    targets: usize,
    rt: &tokio::runtime::Runtime,
) -> Option<tokio::signal::unix::Signal> {
    let sigint = if cli.wait.is_some() || targets > 1 {
        let _guard = rt.enter();
        // Only built when asked for: tokio's signal driver may lack a descriptor, and a check
        // out of descriptors must end in one clear line (then Ctrl-C just ends it).
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok()
    } else {
        None
    };
    crate::sys::release_sigint();
    sigint
}

/// The checks of one run, and where their reports and progress go.
struct Checks<'a, 'o> {
    cli: &'a Cli,
    format: Format,
    inputs: &'a [Input],
    slots: &'a [Slot],
    runner: &'a Runner,
    reports: &'a RefCell<report::Reports<'o>>,
    progress: &'a Progress,
    /// The end of `--wait`.
    until: Option<Instant>,
}

impl Checks<'_, '_> {
    /// Every check, with the progress line, until all are done (`true`) or Ctrl-C (`false`).
    async fn until_done(
        &self,
        start: Instant,
        mut sigint: Option<tokio::signal::unix::Signal>,
    ) -> bool {
        tokio::select! {
            () = self.all() => true,
            _ = self.progress.run(self.inputs, self.slots, start, self.until) => false,
            _ = async {
                match sigint.as_mut() {
                    Some(s) => {
                        let _ = s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            } => false,
        }
    }

    /// Every target's check, started in input order while the window has room; each is
    /// written (or kept) when every earlier one is done.
    async fn all(&self) {
        let window = if self.cli.wait.is_some() {
            self.inputs.len()
        } else {
            WINDOW
        };
        let mut running = futures_util::stream::FuturesUnordered::new();
        let mut next = 0;
        loop {
            while next < self.inputs.len() && next < self.reports.borrow().settled() + window {
                running.push(self.one(next));
                next += 1;
            }
            match running.next().await {
                Some((index, c)) => self.reports.borrow_mut().done(index, c),
                None => break,
            }
        }
    }

    /// Target `index`'s check, or its wait.
    async fn one(&self, index: usize) -> (usize, Report) {
        let (i, slot) = (&self.inputs[index], &self.slots[index]);
        let Some(until) = self.until else {
            let c = self
                .runner
                .check(&i.target, self.runner.opts.timeout, slot)
                .await;
            slot.set_phase(Phase::Done);
            return (index, c);
        };
        let (cli, format) = (self.cli, self.format);
        let changed = |from: Verdict, to: Verdict, after: Duration| {
            if cli.quiet {
                return;
            }
            let _ = log_change(format, &i.target, from, to, after, |line| {
                match format {
                    Format::Json => self.reports.borrow_mut().event(line),
                    _ => self.progress.println(line),
                }
                Ok(())
            });
        };
        let wait = cli.wait.unwrap_or_default();
        let c = self
            .runner
            .wait_for(&i.target, slot, until, wait, &changed)
            .await;
        // A wait that ends without the target open says so, whatever the format (the
        // report's footer says it too).
        if let (false, Some(line)) = (
            cli.quiet,
            c.facts
                .waited
                .and_then(|w| gave_up_line(&i.target, c.verdict, &w)),
        ) {
            self.progress.println(&line);
        }
        (index, c)
    }
}

/// The line for a change of verdict during a wait: text for stderr, a JSON object for stdout.
fn log_change(
    format: Format,
    target: &Target,
    from: Verdict,
    to: Verdict,
    after: Duration,
    mut emit: impl FnMut(&str) -> io::Result<()>,
) -> io::Result<()> {
    let line = match format {
        Format::Json => serde_json::json!({
            "event": "change",
            "target": target.input,
            "from": from.as_str(),
            "to": to.as_str(),
            "after_ms": (after.as_secs_f64() * 1e4).round() / 10.0,
        })
        .to_string(),
        _ => format!(
            "canreach: {}: {} → {} after {:.1} s",
            escape(&target.display()),
            from.as_str(),
            to.as_str(),
            after.as_secs_f64()
        ),
    };
    emit(&line)
}

/// The stderr line of a wait that ended without the target open: why, after how long and how
/// many checks, and the time the user gave.
fn gave_up_line(target: &Target, verdict: Verdict, w: &Waited) -> Option<String> {
    let why = match w.ended {
        WaitEnd::Open => return None,
        WaitEnd::TimeUp => "the wait ended",
        WaitEnd::WillNotChange => "stopped waiting: this verdict does not change by waiting",
    };
    let checks = if w.checks == 1 {
        "1 check".to_string()
    } else {
        format!("{} checks", w.checks)
    };
    Some(format!(
        "canreach: {}: still {} — {why} after {:.2} s ({checks}; --wait {})",
        escape(&target.display()),
        verdict.as_str(),
        w.took.as_secs_f64(),
        diagnosis::fmt_given(w.wait)
    ))
}

/// Ctrl-C: where each target stood, on stderr.
fn interrupted(inputs: &[Input], slots: &[Slot], after: Duration) {
    let mut e = io::stderr().lock();
    let _ = writeln!(
        e,
        "canreach: interrupted after {:.1} s; where each target stood:",
        after.as_secs_f64()
    );
    for (i, s) in inputs.iter().zip(slots) {
        let state = match (s.last(), s.attempts()) {
            (None, _) => format!("not checked yet ({})", s.phase().as_str()),
            (Some(v), 1) => format!("{} (1 check)", v.as_str()),
            (Some(v), n) => format!("{} (last of {n} checks)", v.as_str()),
        };
        let _ = writeln!(e, "  {}  {state}", escape(&i.target.display()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::Services;

    fn key(s: &str) -> Option<String> {
        let w: Vec<String> = s.split_whitespace().map(str::to_string).collect();
        let inputs = input::collect(&w, None, None, &Services::parse("")).unwrap();
        host_key(&inputs[0].target)
    }

    #[test]
    fn only_remote_hosts_are_checked_one_port_at_a_time() {
        assert_eq!(key("DB.Example. 5432"), Some("db.example".into()));
        assert_eq!(key("198.18.2.2:22"), Some("198.18.2.2".into()));
        assert_eq!(key("localhost 22"), None);
        assert_eq!(key("127.0.0.1:22"), None);
        assert_eq!(key("[::1]:22"), None);
        assert_eq!(key(":22"), None);
    }

    #[test]
    fn concurrency_is_sized_to_the_free_descriptors() {
        // `ulimit -n 64`, a few open: one remote check at a time, three of this machine's.
        let few = Limits::for_free_files(64 - 5 - RESERVED_FILES);
        assert_eq!(
            few,
            Limits {
                remote: 1,
                local: 3
            }
        );
        assert!(few.local as u64 * LOCAL_FILES <= (64 - 5 - RESERVED_FILES) / 2);
        // None free: still one of each (it will be reported as out of descriptors).
        assert_eq!(
            Limits::for_free_files(0),
            Limits {
                remote: 1,
                local: 1
            }
        );
        // Plenty: the caps.
        assert_eq!(
            Limits::for_free_files(1 << 20),
            Limits {
                remote: CONCURRENCY,
                local: LOCAL_CONCURRENCY
            }
        );
    }

    #[test]
    fn a_runner_locks_only_hosts_named_more_than_once() {
        let w: Vec<String> = [
            "a.example:1",
            "a.example:2",
            "b.example:1",
            "localhost:1",
            "localhost:2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let inputs = input::collect(&w, None, None, &Services::parse("")).unwrap();
        let r = Runner::new(Options::default(), None, &inputs);
        let mut hosts: Vec<&String> = r.hosts.keys().collect();
        hosts.sort();
        assert_eq!(hosts, ["a.example"]);
    }
}
