//! canreach's entry point: parse arguments, run the check, exit with the verdict's code (or
//! run the command given after `--` once every target is open).
//! The one place (with `cli`'s usage errors) that writes to stderr.

use std::io::Write;
use std::os::unix::process::CommandExt;

use canreach::cli::{Cli, Format};
use canreach::exit_codes::ExitCode;
use canreach::{Finished, RunError};
use clap::CommandFactory;

fn main() {
    let cli = Cli::parse_or_exit();
    if cli.completions.is_some() || cli.man {
        // Generated into memory first: clap_complete panics on a write error (a closed pipe).
        let mut buf = Vec::new();
        let made = match cli.completions {
            Some(shell) => {
                clap_complete::generate(shell, &mut Cli::command(), "canreach", &mut buf);
                Ok(())
            }
            None => clap_mangen::Man::new(Cli::command()).render(&mut buf),
        };
        let written = made.and_then(|()| {
            let mut out = std::io::stdout().lock();
            out.write_all(&buf).and_then(|()| out.flush())
        });
        std::process::exit(match written {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                eprintln!("canreach: error: cannot write to stdout: {}", io_words(&e));
                ExitCode::Internal.code()
            }
            _ => 0,
        });
    }
    colored::control::set_override(cli.output_format() == Format::Text && cli.use_color());
    // One write for the report, not one per line (the run flushes it, and each line of a
    // `--wait` log).
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let code = match canreach::run(&cli, &mut out) {
        Ok(Finished { code, write_error }) => {
            // A closed pipe (`canreach … | head -1`) is not worth a message, and the verdict
            // still stands: exit with its code (ripgrep's convention).
            if let Some(e) = write_error.filter(|e| e.kind() != std::io::ErrorKind::BrokenPipe) {
                eprintln!("canreach: error: cannot write the report: {e}");
                ExitCode::Internal.code()
            } else {
                code
            }
        }
        Err(RunError::Usage(e)) => {
            eprintln!("canreach: {e}");
            ExitCode::Usage.code()
        }
        Err(RunError::Internal(e)) => {
            eprintln!("canreach: error: {e:#}");
            ExitCode::Internal.code()
        }
    };
    // Whatever a path left in the buffer (the run flushes its report, and reports the error).
    let _ = out.flush();
    drop(out);
    if code == ExitCode::Open.code() && !cli.command.is_empty() {
        let _ = std::io::stdout().flush();
        canreach::restore_open_file_limit();
        let err = std::process::Command::new(&cli.command[0])
            .args(&cli.command[1..])
            .exec();
        // exec returns only on failure: 127 when there is no such command, 126 otherwise,
        // as shells do.
        let shown = canreach::escape::escape(&cli.command[0]).into_owned();
        eprintln!("canreach: cannot run `{shown}`: {}", io_words(&err));
        std::process::exit(if err.kind() == std::io::ErrorKind::NotFound {
            127
        } else {
            126
        });
    }
    std::process::exit(code);
}

/// An I/O error without Rust's `(os error N)`.
fn io_words(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
