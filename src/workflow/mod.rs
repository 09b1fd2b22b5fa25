//! Workflows around the one check: many targets at once, `--wait`, `-q`, `-4`/`-6`, the
//! progress line, and a command to run once everything is open.
//!
//! | module | does |
//! |---|---|
//! | [`input`] | words and `-f FILE` → targets; duplicates and bad lines refused |
//! | [`resolver`] | one `getaddrinfo` in flight per name; the `-4`/`-6` filter |
//! | [`wait`] | the retry schedule and which verdicts are worth waiting on |
//! | [`progress`] | the spinner on stderr |
//!
//! Every target is checked by its own [`pipeline::gather`] in the one current-thread runtime,
//! under its own deadline (which starts when its check starts, not while it queues). At most
//! [`CONCURRENCY`] checks run at once. Targets that share a remote host run one after another
//! (see [`Runner`]). Nothing else is shared between checks but the in-flight name lookups.

pub mod input;
pub mod progress;
pub mod resolver;
pub mod wait;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Write};
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::cli::{Cli, Format};
use crate::diagnosis::{self, Diagnosis, Verdict};
use crate::escape::escape;
use crate::exit_codes::{ExitCode, PluginState, most_severe};
use crate::facts::{Facts, WaitEnd, Waited};
use crate::local;
use crate::pipeline;
use crate::probe::KernelConnector;
use crate::render;
use crate::target::{Host, Target};

use input::Input;
use progress::Progress;
use resolver::{Lookups, WorkflowResolver};

/// The most checks running at once. Each check opens a socket per address plus a few
/// liveness probes and walk sockets; 16 keeps a run of hundreds of targets well inside the
/// default 1024 open files and away from bursts a firewall would take for a scan.
pub const CONCURRENCY: usize = 16;

/// The most checks of this machine's own addresses running at once. They cross no network and
/// no firewall but this machine's (nothing to look like a scan to), and each holds two or three
/// sockets while it watches the connection's first moments: 64 of them keep well inside 1024
/// open files, and 50 loopback targets are watched at once instead of in four waves.
pub const LOCAL_CONCURRENCY: usize = 64;

/// An address family (`-4`, `-6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn admits(self, ip: IpAddr) -> bool {
        match self {
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }

    pub fn flag(self) -> &'static str {
        match self {
            Family::V4 => "-4",
            Family::V6 => "-6",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// What a target's check is doing, for the progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
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

    pub fn word(self) -> &'static str {
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
pub struct Slot {
    phase: AtomicU8,
    attempts: AtomicU32,
    last: Mutex<Option<Verdict>>,
}

impl Slot {
    pub fn set_phase(&self, p: Phase) {
        self.phase.store(p as u8, Ordering::Relaxed);
    }

    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Relaxed))
    }

    fn record(&self, v: Verdict) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
    }

    pub fn attempts(&self) -> u32 {
        self.attempts.load(Ordering::Relaxed)
    }

    pub fn last(&self) -> Option<Verdict> {
        *self.last.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One finished check.
#[derive(Debug)]
pub struct Checked {
    pub facts: Facts,
    pub diag: Diagnosis,
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
pub struct Runner {
    opts: pipeline::Options,
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
    pub fn new(opts: pipeline::Options, family: Option<Family>, targets: &[Input]) -> Runner {
        let mut count: HashMap<String, usize> = HashMap::new();
        for t in targets {
            if let Some(k) = host_key(&t.target) {
                *count.entry(k).or_default() += 1;
            }
        }
        Runner {
            opts,
            family,
            lookups: Lookups::default(),
            permits: Semaphore::new(CONCURRENCY),
            local_permits: Semaphore::new(LOCAL_CONCURRENCY),
            local: local::shared::PerRun::new(targets.iter().map(|t| t.target.port.get())),
            hosts: count
                .into_iter()
                .filter(|(_, n)| *n > 1)
                .map(|(k, _)| (k, tokio::sync::Mutex::new(())))
                .collect(),
        }
    }

    /// Start reading this machine's listeners and owners when a target is surely this machine
    /// and local inspection is not turned off (see [`local::shared::PerRun::start`]).
    pub fn start_local_reads(&self, inputs: &[Input]) {
        if self.opts.local != pipeline::LocalMode::Never
            && inputs.iter().any(|i| host_key(&i.target).is_none())
        {
            self.local.start();
        }
    }

    /// One check of `target` under `timeout`.
    pub async fn check(&self, target: &Target, timeout: Duration, slot: &Slot) -> Checked {
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
        let opts = pipeline::Options {
            timeout,
            ..self.opts.clone()
        };
        let facts = pipeline::gather_with(
            target.clone(),
            opts,
            &resolver,
            &KernelConnector,
            &self.local,
        )
        .await;
        let diag = diagnosis::diagnose(&facts);
        slot.record(diag.verdict);
        Checked { facts, diag }
    }

    /// Check `target` until it is open, will not change by waiting, or `until` (see [`wait`]).
    /// `changed(from, to, after)` is told each change of verdict. The last check's facts say
    /// how the wait went (`Facts::waited`; `wait` is what the user gave).
    pub async fn wait_for(
        &self,
        target: &Target,
        slot: &Slot,
        until: Instant,
        wait: Duration,
        changed: &dyn Fn(Verdict, Verdict, Duration),
    ) -> Checked {
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
            if last.diag.verdict == Verdict::Open {
                break WaitEnd::Open;
            }
            if !wait::worth_waiting(&last.diag) {
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
            if next.diag.verdict != last.diag.verdict {
                changed(last.diag.verdict, next.diag.verdict, start.elapsed());
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
pub struct Ended {
    pub code: i32,
    pub write_error: Option<io::Error>,
}

/// Run every check of `inputs` (waiting if asked) and write the reports to `out`.
pub fn run(cli: &Cli, inputs: Vec<Input>, out: &mut dyn Write) -> anyhow::Result<Ended> {
    let opts = pipeline::Options {
        timeout: cli.timeout,
        trace: cli.trace_mode(),
        local: cli.local_mode(),
        protocol: cli.protocol(),
        follow_proxy: !cli.no_proxy,
        trust: cli.trust(),
        expect_status: cli.expect_status,
        ask: None,
    };
    let format = cli.output_format();
    let single = inputs.len() == 1 && cli.wait.is_none();
    let runner = Runner::new(opts.clone(), cli.family(), &inputs);
    // Before the runtime is built: the inspection's thread starts meanwhile.
    runner.start_local_reads(&inputs);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let interruptible = cli.wait.is_some() || inputs.len() > 1;
    // Ctrl-C is held back since `main` began (`sys::hold_sigint`): a run that can be
    // interrupted sets up its handler first, then lets a held one through to it; a single
    // check ends by the default action, as before.
    let sigint = if interruptible {
        let _guard = rt.enter();
        // Only built when asked for: tokio's signal driver may lack a descriptor, and a check
        // out of descriptors must end in one clear line (then Ctrl-C just ends it).
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok()
    } else {
        None
    };
    crate::sys::release_sigint();
    let slots: Vec<Slot> = inputs.iter().map(|_| Slot::default()).collect();
    let progress = Progress::new(progress::wanted(cli));
    let sink = &mut io::sink();
    let out: &mut dyn Write = if cli.quiet { sink } else { out };
    let out = RefCell::new(out);
    let write_error: RefCell<Option<io::Error>> = RefCell::new(None);
    let start = Instant::now();

    let checks = rt.block_on(async {
        let until = cli.wait.map(|w| Instant::now() + w);
        let all = futures_util::future::join_all(inputs.iter().zip(&slots).map(|(i, slot)| {
            let runner = &runner;
            let out = &out;
            let write_error = &write_error;
            let progress = &progress;
            async move {
                match until {
                    None => {
                        let c = runner.check(&i.target, opts.timeout, slot).await;
                        slot.set_phase(Phase::Done);
                        c
                    }
                    Some(until) => {
                        let changed =
                            |from: Verdict, to: Verdict, after: Duration| {
                                if cli.quiet {
                                    return;
                                }
                                let r = log_change(format, &i.target, from, to, after, |line| {
                                    match format {
                                        Format::Json => {
                                            let mut o = out.borrow_mut();
                                            writeln!(o, "{line}").and_then(|()| o.flush())
                                        }
                                        _ => {
                                            progress.println(line);
                                            Ok(())
                                        }
                                    }
                                });
                                if let Err(e) = r {
                                    write_error.borrow_mut().get_or_insert(e);
                                }
                            };
                        let wait = cli.wait.unwrap_or_default();
                        let c = runner
                            .wait_for(&i.target, slot, until, wait, &changed)
                            .await;
                        // A wait that ends without the target open says so, whatever the
                        // format (the report's footer says it too).
                        if let (false, Some(line)) = (
                            cli.quiet,
                            c.facts
                                .waited
                                .and_then(|w| gave_up_line(&i.target, c.diag.verdict, &w)),
                        ) {
                            progress.println(&line);
                        }
                        c
                    }
                }
            }
        }));
        let mut sigint = sigint;
        tokio::select! {
            checks = all => Some(checks),
            _ = progress.run(&inputs, &slots, start, until) => None,
            _ = async {
                match sigint.as_mut() {
                    Some(s) => {
                        let _ = s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            } => None,
        }
    });
    progress.clear();
    // Abandoned lookups (a silent name server) must not hold the exit.
    rt.shutdown_background();

    let Some(checks) = checks else {
        interrupted(&inputs, &slots, start.elapsed());
        return Ok(Ended {
            code: ExitCode::Interrupted.code(),
            write_error: None,
        });
    };
    // This machine out of file descriptors says nothing about any target: an internal error.
    if let Some(why) = checks
        .iter()
        .find_map(|c| diagnosis::resource_failure(&c.diag))
    {
        anyhow::bail!(why);
    }
    let verdicts = checks.iter().map(|c| c.diag.verdict);
    let code = match format {
        // A scheduler reads 0–3 (src/exit_codes.rs, PluginState).
        Format::Nagios => PluginState::worst(verdicts).code(),
        _ => ExitCode::from(most_severe(verdicts)).code(),
    };
    let out = out.into_inner();
    let written = write_reports(format, single, &checks, out).and_then(|()| out.flush());
    let write_error = write_error.into_inner().or(written.err());
    Ok(Ended { code, write_error })
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

/// A pretty-printed JSON document on one line, its keys in the contract's order. A JSON
/// string cannot hold a raw newline, so every line break and the indentation after it lie
/// outside strings.
fn one_line(pretty: &str) -> String {
    pretty.lines().map(str::trim_start).collect()
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
            (None, _) => format!("not checked yet ({})", s.phase().word()),
            (Some(v), 1) => format!("{} (1 check)", v.as_str()),
            (Some(v), n) => format!("{} (last of {n} checks)", v.as_str()),
        };
        let _ = writeln!(e, "  {}  {state}", escape(&i.target.display()));
    }
}

/// The reports: one target as before; several as a table and then the report of every target
/// that is not open (text), JSON Lines in input order (JSON), or one ticket (Markdown).
fn write_reports(
    format: Format,
    single: bool,
    checks: &[Checked],
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Json if single => render::json::render(&checks[0].facts, &checks[0].diag, out),
        Format::Json => {
            for c in checks {
                let mut buf = Vec::new();
                render::json::render(&c.facts, &c.diag, &mut buf)?;
                writeln!(out, "{}", one_line(&String::from_utf8_lossy(&buf)))?;
            }
            Ok(())
        }
        Format::Nagios => {
            let rows: Vec<(&Facts, &Diagnosis)> =
                checks.iter().map(|c| (&c.facts, &c.diag)).collect();
            render::nagios::render(&rows, out)
        }
        Format::Markdown => {
            let host = crate::hostinfo::HostInfo::gather();
            let reports: Vec<(&Facts, &Diagnosis)> =
                checks.iter().map(|c| (&c.facts, &c.diag)).collect();
            render::markdown::render(&reports, &host, out)
        }
        Format::Text if checks.len() == 1 => {
            render::text::render(&checks[0].facts, &checks[0].diag, out)
        }
        Format::Text => {
            let rows: Vec<(&Facts, &Diagnosis)> =
                checks.iter().map(|c| (&c.facts, &c.diag)).collect();
            render::table::render(&rows, out)?;
            for c in checks.iter().filter(|c| c.diag.verdict != Verdict::Open) {
                writeln!(out)?;
                render::text::render(&c.facts, &c.diag, out)?;
            }
            Ok(())
        }
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
        let r = Runner::new(pipeline::Options::default(), None, &inputs);
        let mut hosts: Vec<&String> = r.hosts.keys().collect();
        hosts.sort();
        assert_eq!(hosts, ["a.example"]);
    }

    #[test]
    fn json_reports_fold_onto_one_line_in_order() {
        let pretty = "{\n  \"b\": 1,\n  \"a\": \"x  y\"\n}\n";
        assert_eq!(one_line(pretty), "{\"b\": 1,\"a\": \"x  y\"}");
    }
}
