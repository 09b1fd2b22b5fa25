//! canreach's entry point: parse arguments, run the check, exit with the verdict's code.

use canreach::RunError;
use canreach::cli::{Cli, EXIT_INTERNAL, EXIT_USAGE};

fn main() {
    let cli = Cli::parse_or_exit();
    colored::control::set_override(!cli.json && cli.use_color());
    let code = match canreach::run(&cli, &mut std::io::stdout().lock()) {
        Ok(code) => code,
        Err(RunError::Usage(e)) => {
            eprintln!("canreach: {e}");
            EXIT_USAGE
        }
        Err(RunError::Internal(e)) => {
            // A closed pipe (`canreach … | head -1`) is not worth a message.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                EXIT_INTERNAL
            } else {
                eprintln!("canreach: error: {e:#}");
                EXIT_INTERNAL
            }
        }
    };
    std::process::exit(code);
}
