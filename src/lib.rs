//! canreach: can I reach this host and port — and if not, why, and what do I do about it?
//!
//! The crate is a pipeline; each module is one of its parts:
//!
//! | part | module | does |
//! |---|---|---|
//! | input | [`cli`], [`target`], [`services`], `options` | arguments → a [`target::Target`] and what the check may do |
//! | stages | [`dns`], `connect` (with [`probe`], `liveness`, `trace`), `local`, [`session`], run by `pipeline` | gather [`facts::Facts`]; never print |
//! | shared meaning | `icmp` | the one ICMP table |
//! | knowledge | [`diagnosis`] | facts → verdict, findings, planned steps (pure) |
//! | output | [`render`], [`exit_codes`], [`escape`], `secrets` | diagnosis → text, JSON, a table or Markdown on any `io::Write`; the exit code |
//! | workflows | `workflow`, `hostinfo` | many targets, `--wait`, `-q`, `-4`/`-6`, progress; where a ticket was made |
//! | exporter | [`serve`] | `canreach serve`: blackbox_exporter's `/probe`, and why |
//! | the system | `sys` | every libc call ([`hold_sigint`] for `main`) |
//!
//! [`run`] ties them together for `main`. Public are only the modules `main` and the
//! integration tests (tests/) use; the others are private to the crate, so that the
//! compiler reports what nothing uses.

pub mod cli;
mod connect;
pub mod diagnosis;
pub mod dns;
pub mod escape;
pub mod exit_codes;
pub mod facts;
mod hostinfo;
mod icmp;
mod liveness;
mod local;
mod options;
mod pipeline;
pub mod probe;
pub mod render;
mod secrets;
pub mod serve;
pub mod services;
pub mod session;
mod sys;
pub mod target;
mod trace;
mod workflow;

#[cfg(test)]
mod source_tests;

use std::io::Write;

pub use sys::hold_sigint;

use crate::cli::Cli;
use crate::target::TargetError;
use crate::workflow::input::InputError;

/// Why a run did not produce a verdict.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The input was wrong (a target, the targets file, a duplicate): exit 2.
    #[error(transparent)]
    Usage(#[from] InputError),
    /// The check could not run at all: exit 1.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<TargetError> for RunError {
    fn from(e: TargetError) -> RunError {
        RunError::Usage(InputError::Target(e))
    }
}

/// The fewest open-file descriptors a run needs (stdio, the runtime and its signal pipe, a
/// socket per address, netlink, /proc reads).
const MIN_FILES: u64 = 16;

/// The soft open-file limit before [`run`] raised it.
static RAISED_FROM: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

/// Give the soft open-file limit back as it was before [`run`] raised it: a command run
/// afterwards (`-- COMMAND`) starts with the limit its user set (a program using `select`
/// breaks past 1024 descriptors).
pub fn restore_open_file_limit() {
    if let Some(was) = RAISED_FROM.get() {
        sys::restore_open_file_limit(*was);
    }
}

/// A check that ran: the exit code (the most severe verdict's), and whether the report could
/// be written.
#[derive(Debug)]
pub struct Finished {
    pub code: i32,
    /// Writing the report failed (a closed pipe, a full disk): the verdict stands regardless.
    pub write_error: Option<std::io::Error>,
}

/// Read the targets (arguments and `-f FILE`), check them all (waiting if asked), diagnose,
/// render to `out` (see `workflow`).
pub fn run(cli: &Cli, out: &mut dyn Write) -> Result<Finished, RunError> {
    // As many descriptors as the hard limit allows (`ulimit -n 64` in a shell sets both, and
    // then the run's concurrency is sized to what there is: `workflow::Limits`).
    if let Some(was) = sys::raise_open_file_limit() {
        let _ = RAISED_FROM.set(was);
    }
    // The runtime, its signal driver, the sockets and the local inspection need a handful of
    // descriptors each; below this the runtime itself cannot start (tokio panics then).
    if let Some(n) = sys::open_file_limit().filter(|n| *n < MIN_FILES) {
        return Err(RunError::Internal(anyhow::anyhow!(
            "the open-file limit (ulimit -n) is {n}: canreach needs at least {MIN_FILES} \
             descriptors (EMFILE otherwise); raise it and check again"
        )));
    }
    let services = services::Services::load();
    let mut inputs =
        workflow::input::collect(&cli.targets, cli.file.as_deref(), cli.family(), &services)?;
    if cli.udp {
        for i in &mut inputs {
            i.target.transport = target::Transport::Udp;
        }
    }
    if cli.payload.is_some() && !inputs.iter().any(|i| i.target.transport.is_udp()) {
        return Err(workflow::input::InputError::PayloadWithoutUdp.into());
    }
    if let options::Protocol::Udp(s) = cli.protocol()
        && !inputs.iter().any(|i| i.target.transport.is_udp())
    {
        let name = session::protocols::udp_payloads::TABLE
            .iter()
            .find(|e| e.service == s)
            .map_or("", |e| e.name);
        return Err(workflow::input::InputError::UdpProtocolWithoutUdp(name).into());
    }
    // A protocol spoken over TCP (TLS, HTTP, PostgreSQL …) for targets that are all UDP would
    // be dropped without a word. (`--tcp`, "nothing but the connection", asks nothing of UDP.)
    let tcp_only = matches!(
        cli.protocol(),
        options::Protocol::Tls
            | options::Protocol::Http
            | options::Protocol::Https
            | options::Protocol::Service(_)
    );
    if tcp_only && inputs.iter().all(|i| i.target.transport.is_udp()) {
        let name = clap::ValueEnum::to_possible_value(&cli.protocol)
            .map_or_else(String::new, |v| format!("--protocol {}", v.get_name()));
        return Err(workflow::input::InputError::TcpProtocolWithUdp(name).into());
    }
    let ended = workflow::run(cli, inputs, out)?;
    Ok(Finished {
        code: ended.code,
        write_error: ended.write_error,
    })
}
