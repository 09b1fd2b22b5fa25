//! canreach's entry point: parse arguments, run the check, exit with the verdict's code (or
//! run the command given after `--` once every target is open).
//! The one place (with `cli`'s usage errors) that writes to stderr; every line it writes goes
//! through `escape::line` (secrets masked, control characters escaped).

use std::io::Write;
use std::os::unix::process::CommandExt;

use canreach::cli::{Cli, Format};
use canreach::escape::line;
use canreach::exit_codes::{ExitCode, PluginState};
use canreach::{Finished, RunError};
use clap::CommandFactory;

fn main() {
    // `canreach serve …` is the exporter (only as the first word: every other command line
    // is the check, as before). It handles its own signals, so it comes before SIGINT is held.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if canreach::serve::wanted(&args) {
        std::process::exit(canreach::serve::main(args));
    }
    // First, before any thread starts: a Ctrl-C from now on waits for the run's handler
    // (workflow::run releases it once the handler is set up), so that even one before the
    // first check says where each target stood. A path that does not go through
    // `canreach::run` and lives on must call `sys::release_sigint` (the ones here exit).
    canreach::hold_sigint();
    let cli = Cli::parse_or_exit();
    if cli.completions.is_some() || cli.man {
        std::process::exit(print_generated(&cli));
    }
    colored::control::set_override(cli.output_format() == Format::Text && cli.use_color());
    if cli.output_format() == Format::Text {
        // The terminal's width on a terminal; 80 in a file, a pipe or a ticket.
        canreach::render::set_width(canreach::render::stdout_width());
    }
    // One write for the report, not one per line (the run flushes it, and each line of a
    // `--wait` log).
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let nagios = cli.output_format() == Format::Nagios;
    // With --format nagios, whatever gives no state is UNKNOWN: one line on stdout, exit 3.
    let unknown = |out: &mut dyn Write, what: &str| {
        let _ = writeln!(out, "{}", canreach::render::nagios::unknown_line(what));
        PluginState::Unknown.code()
    };
    let code = match canreach::run(&cli, &mut out) {
        Ok(Finished { code, write_error }) => {
            // A closed pipe (`canreach … | head -1`) is not worth a message, and the verdict
            // still stands: exit with its code (ripgrep's convention).
            if let Some(e) = write_error.filter(|e| e.kind() != std::io::ErrorKind::BrokenPipe) {
                eprintln!(
                    "canreach: error: cannot write the report: {}",
                    line(&e.to_string())
                );
                if nagios {
                    PluginState::Unknown.code()
                } else {
                    ExitCode::Internal.code()
                }
            } else if nagios && code == ExitCode::Interrupted.code() {
                unknown(&mut out, "interrupted before every target was checked")
            } else {
                code
            }
        }
        Err(RunError::Usage(e)) => {
            drop(out);
            canreach::cli::usage_exit(&line(&e.to_string()))
        }
        Err(RunError::Internal(e)) if nagios => unknown(&mut out, &format!("error: {e:#}")),
        Err(RunError::Internal(e)) => {
            eprintln!("canreach: error: {}", line(&format!("{e:#}")));
            ExitCode::Internal.code()
        }
    };
    // Whatever a path left in the buffer (the run flushes its report, and reports the error).
    let _ = out.flush();
    drop(out);
    if code == ExitCode::Open.code() && !cli.command.is_empty() {
        std::process::exit(run_command(&cli.command));
    }
    std::process::exit(code);
}

/// `--completions SHELL` or `--man` to stdout; the exit code.
fn print_generated(cli: &Cli) -> i32 {
    // Generated into memory first: clap_complete panics on a write error (a closed pipe).
    let mut buf = Vec::new();
    let made = match cli.completions {
        Some(shell) => {
            clap_complete::generate(shell, &mut Cli::command(), "canreach", &mut buf);
            Ok(())
        }
        None => canreach::cli::man_page(&mut buf),
    };
    let written = made.and_then(|()| {
        let mut out = std::io::stdout().lock();
        out.write_all(&buf).and_then(|()| out.flush())
    });
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!(
                "canreach: error: cannot write to stdout: {}",
                line(&io_words(&e))
            );
            ExitCode::Internal.code()
        }
        _ => 0,
    }
}

/// Replace canreach by `command` (every target is open); the exit code when that fails.
fn run_command(command: &[String]) -> i32 {
    let _ = std::io::stdout().flush();
    canreach::restore_open_file_limit();
    let err = std::process::Command::new(&command[0])
        .args(&command[1..])
        .exec();
    // exec returns only on failure: 127 when there is no such command, 126 otherwise,
    // as shells do.
    eprintln!(
        "canreach: cannot run `{}`: {}",
        line(&command[0]),
        line(&io_words(&err))
    );
    if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    }
}

/// An I/O error without Rust's `(os error N)`.
fn io_words(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
