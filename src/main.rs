//! canreach's entry point: parse arguments, run the check, exit with the verdict's code.
//! The one place (with `cli`'s usage errors) that writes to stderr.

use canreach::cli::Cli;
use canreach::exit_codes::ExitCode;
use canreach::{Finished, RunError};

fn main() {
    let cli = Cli::parse_or_exit();
    colored::control::set_override(!cli.json && cli.use_color());
    let code = match canreach::run(&cli, &mut std::io::stdout().lock()) {
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
    std::process::exit(code);
}
