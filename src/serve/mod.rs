//! `canreach serve`: a Prometheus exporter that answers blackbox_exporter's `/probe` and says
//! why a probe failed (docs/fleet.md).
//!
//! | module | does |
//! |---|---|
//! | `config` | the module file (blackbox_exporter's YAML), read strictly; the built-in modules |
//! | `probe` | one probe: the target as the prober reads it, the deadline rule, the pipeline per redirect hop |
//! | `metrics` | the result in blackbox_exporter's series, plus `probe_failure_info` and `canreach_verdict_info` |
//! | `server` | axum: `/probe`, `/metrics`, `/`, `/report`; the slots and the queue |
//! | `own` | the exporter's own metrics |
//! | `page` | the HTML page of the last probes |
//! | `allow` | `--allow` |
//!
//! Everything runs on one current-thread runtime: the HTTP server as tasks, the probes on a
//! `LocalSet` beside them (see `server`).

pub(crate) mod allow;
pub(crate) mod config;
pub(crate) mod metrics;
pub(crate) mod own;
pub(crate) mod page;
pub(crate) mod probe;
pub(crate) mod server;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use crate::exit_codes::ExitCode;

/// The flags of `canreach serve`.
#[derive(Debug, Parser)]
#[command(
    name = "canreach serve",
    version,
    about = "A Prometheus exporter: blackbox_exporter's /probe, and why a probe failed",
    after_help = "\
Endpoints:
  /probe?target=HOST:PORT&module=tcp_connect
      blackbox_exporter's metrics, plus probe_failure_info and
      canreach_verdict_info
  /probe?...&debug=true   the full report, then the metrics
  /metrics                the exporter's own metrics
  /                       the last probes, each with its report

Without --config the modules are tcp_connect, http_2xx and canreach (the
whole check). Listening beyond 127.0.0.1 makes this machine a prober for
whoever reaches the port: use --allow. See docs/fleet.md."
)]
pub(crate) struct ServeCli {
    /// Address and port to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9115")]
    pub listen: SocketAddr,

    /// blackbox_exporter's module file (YAML); without it: tcp_connect, http_2xx, canreach
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Seconds kept back from Prometheus's scrape timeout (X-Prometheus-Scrape-Timeout-Seconds)
    #[arg(long, value_name = "SECONDS", default_value = "0.5", value_parser = parse_offset)]
    pub timeout_offset: Duration,

    /// Probes running at once; past it they wait (at most 4 per slot, then 503)
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_concurrent: u32,

    /// Probe only these targets: CIDRs, addresses and names (*.example.com), comma-separated
    #[arg(long, value_name = "TARGETS")]
    pub allow: Vec<String>,
}

fn parse_offset(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !v.is_finite() || !(0.0..=60.0).contains(&v) {
        return Err(format!("`{s}` is out of range: from 0 to 60 seconds"));
    }
    Ok(Duration::from_secs_f64(v))
}

/// Is this command line `canreach serve …`? Only the first argument counts, so every other
/// command line means what it meant before; a host named `serve` is checked as
/// `canreach serve:PORT`, or with any option first (`canreach -t 5s serve 22`).
pub fn wanted(args: &[OsString]) -> bool {
    args.get(1).is_some_and(|a| a == "serve")
}

/// `canreach serve`: parse the flags, read the modules, serve until SIGTERM or Ctrl-C.
/// Returns the process's exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    let (cli, modules, allow) = match setup(args) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    // Many probes at once need more than the usual 1024 descriptors (Go programs, so
    // blackbox_exporter, raise the soft limit at start too).
    let _ = crate::sys::raise_open_file_limit();
    colored::control::set_override(false);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("canreach serve: error: cannot start the async runtime: {e}");
            return ExitCode::Internal.code();
        }
    };
    let (app, jobs) = server::App::new(
        modules,
        allow,
        cli.timeout_offset,
        cli.max_concurrent as usize,
    );
    let local = tokio::task::LocalSet::new();
    let code = local.block_on(&rt, serve(cli.listen, app, jobs));
    // Name lookups abandoned at their deadline must not hold the exit.
    rt.shutdown_timeout(Duration::from_millis(100));
    code
}

/// The flags, the module file and `--allow`; a usage error's exit code (its line written),
/// or 0 after `--help`.
fn setup(args: Vec<OsString>) -> Result<(ServeCli, config::Modules, allow::Allow), i32> {
    let cli = match parse(args, crate::render::stdout_width()) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind::*;
            if matches!(e.kind(), DisplayHelp | DisplayVersion) {
                let _ = e.print();
                return Err(0);
            }
            eprintln!("{}", usage_line(&e));
            return Err(ExitCode::Usage.code());
        }
    };
    let usage = |e: &dyn std::fmt::Display| {
        eprintln!("canreach serve: {e}");
        ExitCode::Usage.code()
    };
    let modules = match &cli.config {
        Some(path) => config::load(path).map_err(|e| usage(&e))?,
        None => config::Modules::builtin(),
    };
    let allow = allow::Allow::parse(&cli.allow).map_err(|e| usage(&e))?;
    Ok((cli, modules, allow))
}

/// Listen on `listen` and serve `app` until SIGTERM or Ctrl-C; the exit code.
async fn serve(
    listen: SocketAddr,
    app: Arc<server::App>,
    jobs: tokio::sync::mpsc::UnboundedReceiver<server::Job>,
) -> i32 {
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "canreach serve: error: cannot listen on {}: {}",
                listen,
                io_words(&e)
            );
            return ExitCode::Internal.code();
        }
    };
    let shown = listener.local_addr().map_or(listen, |a| a);
    let names: Vec<&str> = app.modules.modules.keys().map(String::as_str).collect();
    eprintln!(
        "canreach serve: listening on http://{shown}/ (modules: {}){}",
        crate::escape::escape(&names.join(", ")),
        if app.allow.is_open() {
            "; every target may be probed (no --allow)"
        } else {
            ""
        }
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let worker = tokio::task::spawn_local(server::run_jobs(app.clone(), jobs, stop_rx));
    let served = axum::serve(listener, server::router(app))
        .with_graceful_shutdown(shutdown())
        .await;
    // No new probes; the ones running end within their deadlines.
    let _ = stop_tx.send(());
    let _ = worker.await;
    match served {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("canreach serve: error: {}", io_words(&e));
            ExitCode::Internal.code()
        }
    }
}

/// SIGTERM or Ctrl-C.
async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    eprintln!("canreach serve: stopping: probes in flight finish within their deadlines");
}

fn io_words(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// clap's message folded into one line.
/// `canreach serve …`'s flags (`args` from the program's name on), the help laid out for
/// `columns` (the terminal's, 80 off one), as the CLI's.
fn parse(args: Vec<OsString>, columns: usize) -> Result<ServeCli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let rest = args.into_iter().skip(2);
    ServeCli::command()
        .term_width(columns)
        .try_get_matches_from(std::iter::once(OsString::from("canreach serve")).chain(rest))
        .and_then(|m| ServeCli::from_arg_matches(&m))
}

/// The one line of a usage error. clap quotes what was typed: escaped and masked, as the
/// CLI's usage errors (`escape::line`), so a control or bidi character never reaches stderr.
fn usage_line(e: &clap::Error) -> String {
    format!(
        "canreach serve: {} (see `canreach serve --help`)",
        crate::escape::line(&first_line(&e.to_string()))
    )
}

fn first_line(msg: &str) -> String {
    let text: Vec<&str> = msg
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
        .collect();
    let line = text.join(" ");
    line.strip_prefix("error: ").unwrap_or(&line).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_serve_as_the_first_word_is_the_exporter() {
        let v = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(wanted(&v(&["canreach", "serve"])));
        assert!(wanted(&v(&[
            "canreach",
            "serve",
            "--listen",
            "127.0.0.1:0"
        ])));
        assert!(!wanted(&v(&["canreach", "serve:22"])));
        assert!(!wanted(&v(&["canreach", "-t", "5s", "serve", "22"])));
        assert!(!wanted(&v(&["canreach", "db", "serve"])));
    }

    fn args(a: &[&str]) -> Vec<OsString> {
        ["canreach", "serve"]
            .iter()
            .chain(a)
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn usage_errors_escape_what_was_typed() {
        for bad in [
            "--listen=x\u{202e}y\r\u{c}z",
            "--bogus\u{202e}\r",
            "--max-concurrent=\u{9b}1",
            "--allow",
        ] {
            let e = parse(args(&[bad]), 80).unwrap_err();
            let line = usage_line(&e);
            assert!(
                !line.chars().any(crate::escape::needs_escape),
                "{bad:?} → {line:?}"
            );
            assert!(!line.contains('\n'), "{line:?}");
            assert!(line.starts_with("canreach serve: "), "{line:?}");
        }
    }

    #[test]
    fn the_help_fits_the_width() {
        for columns in [80, 60] {
            let e = parse(args(&["--help"]), columns).unwrap_err();
            for line in e.to_string().lines() {
                assert!(
                    unicode_width::UnicodeWidthStr::width(line) <= columns,
                    "{columns}: {line:?}"
                );
            }
        }
    }

    #[test]
    fn clap_definition_is_valid() {
        use clap::CommandFactory;
        ServeCli::command().debug_assert();
    }
}
