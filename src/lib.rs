//! canreach: can I reach this host and port — and if not, why, and what do I do about it?
//!
//! The crate is a pipeline; each module is one of its parts:
//!
//! | part | module | does |
//! |---|---|---|
//! | input | [`cli`], [`target`], [`services`] | arguments → a [`target::Target`] |
//! | stages | [`dns`], [`probe`], [`liveness`], [`trace`], [`local`], run by [`pipeline`] | gather [`facts::Facts`]; never print |
//! | shared meaning | [`icmp`] | the one ICMP table |
//! | knowledge | [`diagnosis`] | facts → verdict, findings, planned steps (pure) |
//! | output | [`render`], [`exit_codes`] | diagnosis → text or JSON on any `io::Write`; the exit code |
//!
//! [`run`] ties them together for `main`.

pub mod cli;
pub mod diagnosis;
pub mod dns;
pub mod escape;
pub mod exit_codes;
pub mod facts;
pub mod icmp;
pub mod liveness;
pub mod local;
pub mod pipeline;
pub mod probe;
pub mod render;
pub mod services;
pub mod session;
pub mod sys;
pub mod target;
pub mod trace;

use std::io::Write;

use anyhow::Context;

use crate::cli::Cli;
use crate::target::TargetError;

/// Why a run did not produce a verdict.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The input was wrong: exit 2.
    #[error(transparent)]
    Usage(#[from] TargetError),
    /// The check could not run at all: exit 1.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// A check that ran: the verdict's exit code, and whether the report could be written.
#[derive(Debug)]
pub struct Finished {
    pub code: i32,
    /// Writing the report failed (a closed pipe, a full disk): the verdict stands regardless.
    pub write_error: Option<std::io::Error>,
}

/// Parse the target, run the pipeline, diagnose, render to `out`.
pub fn run(cli: &Cli, out: &mut dyn Write) -> Result<Finished, RunError> {
    let services = services::Services::load();
    let target = target::parse(&cli.target, cli.port.as_deref(), &services)?;
    // One thread is enough: the work is waiting on the network, and a multi-threaded runtime
    // costs start-up time on every check.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let opts = pipeline::Options {
        timeout: cli.timeout,
        trace: cli.trace_mode(),
        local: cli.local_mode(),
        protocol: cli.protocol(),
    };
    let facts = rt.block_on(pipeline::gather(
        target,
        opts,
        &dns::SystemResolver,
        &probe::KernelConnector,
    ));
    // getaddrinfo may still be running on a blocking thread past the deadline: do not wait.
    rt.shutdown_background();
    let diag = diagnosis::diagnose(&facts);
    if let Some(why) = diagnosis::resource_failure(&diag) {
        return Err(RunError::Internal(anyhow::anyhow!(why)));
    }
    let written = if cli.json {
        render::json::render(&facts, &diag, out)
    } else {
        render::text::render(&facts, &diag, out)
    }
    .and_then(|()| out.flush());
    Ok(Finished {
        code: diag.verdict.exit_code(),
        write_error: written.err(),
    })
}
