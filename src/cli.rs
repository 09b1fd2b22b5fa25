//! The command line: arguments, their parsing, and the colour decision.
//!
//! Usage errors are printed as one line (`canreach: <what is wrong>`) and exit with code 2;
//! clap's multi-line usage block is for `--help`, not for a typo.

use std::io::IsTerminal;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::exit_codes::ExitCode;

const AFTER_HELP: &str = "\
Examples:
  canreach db.internal 5432          a name and a port
  canreach 127.0.0.1:8080            host:port
  canreach '[::1]:22'                IPv6 with a port
  canreach https://example.com/      a URL (port from the URL or its scheme)
  canreach postgres://u@db/app       (5432, PostgreSQL's usual port)
  canreach --json localhost ssh      JSON for scripts; ssh is a service name
  canreach :5432                     what listens on 5432 here, and can a client reach it?

Exit codes:
  0 open   3 partial   4 closed   5 rejected   6 filtered   7 unreachable   8 dns_error
  9 inconclusive (the deadline ended the check before the evidence was in)
  10 service_error   11 tls_error   12 mtu_blackhole   (after the connect)
  1 internal error   2 usage error";

/// Can I reach this host and port? If not, why, and what do I do about it?
#[derive(Debug, Parser)]
#[command(name = "canreach", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// What to check: HOST, HOST:PORT, [IPV6]:PORT, an IPv6 address, or a URL
    pub target: String,

    /// Port number (1-65535) or service name (ssh, https, postgresql, ...)
    #[arg(allow_hyphen_values = true)]
    pub port: Option<String>,

    /// Print one JSON object (schema in docs/json.md) instead of text
    #[arg(long)]
    pub json: bool,

    /// When to use colour in text output
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Deadline for the whole check: seconds (2.5) or with a unit (500ms, 3s), at most 300s
    #[arg(long, short = 't', value_name = "TIME", default_value = "5s", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// Walk the path (TTL-limited SYNs) even when the port answers
    #[arg(long, conflicts_with = "no_trace")]
    pub trace: bool,

    /// Never walk the path (by default it is walked for filtered and unreachable verdicts)
    #[arg(long)]
    pub no_trace: bool,

    /// Inspect this machine's listeners even when the target is not one of its addresses
    #[arg(long, conflicts_with = "no_local")]
    pub local: bool,

    /// Do not inspect this machine (its listeners and firewall)
    #[arg(long)]
    pub no_local: bool,

    /// What to speak once connected: auto (from the URL or the port's usual service), tcp,
    /// tls, http, https
    #[arg(long, value_enum, default_value_t = ProtocolChoice::Auto, value_name = "PROTO")]
    pub protocol: ProtocolChoice,

    /// Stop after the TCP handshake and its first moments (same as --protocol tcp)
    #[arg(long, conflicts_with = "protocol")]
    pub tcp: bool,
}

/// `--protocol` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtocolChoice {
    Auto,
    Tcp,
    Tls,
    Http,
    Https,
}

/// `--color` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl Cli {
    /// `--local` / `--no-local` as the pipeline's mode.
    pub fn local_mode(&self) -> crate::pipeline::LocalMode {
        use crate::pipeline::LocalMode;
        match (self.local, self.no_local) {
            (true, _) => LocalMode::Always,
            (_, true) => LocalMode::Never,
            _ => LocalMode::Auto,
        }
    }

    /// `--protocol` / `--tcp` as the pipeline's protocol.
    pub fn protocol(&self) -> crate::pipeline::Protocol {
        use crate::pipeline::Protocol;
        if self.tcp {
            return Protocol::Tcp;
        }
        match self.protocol {
            ProtocolChoice::Auto => Protocol::Auto,
            ProtocolChoice::Tcp => Protocol::Tcp,
            ProtocolChoice::Tls => Protocol::Tls,
            ProtocolChoice::Http => Protocol::Http,
            ProtocolChoice::Https => Protocol::Https,
        }
    }

    /// `--trace` / `--no-trace` as the pipeline's mode.
    pub fn trace_mode(&self) -> crate::pipeline::TraceMode {
        use crate::pipeline::TraceMode;
        match (self.trace, self.no_trace) {
            (true, _) => TraceMode::Always,
            (_, true) => TraceMode::Never,
            _ => TraceMode::Auto,
        }
    }

    /// Parse `std::env::args`, or print the one-line error (or help/version) and exit.
    pub fn parse_or_exit() -> Cli {
        match Cli::try_parse() {
            Ok(c) => c,
            Err(e) => {
                use clap::error::ErrorKind::*;
                if matches!(e.kind(), DisplayHelp | DisplayVersion) {
                    e.exit()
                }
                if e.kind() == DisplayHelpOnMissingArgumentOrSubcommand {
                    let _ = e.print();
                    std::process::exit(ExitCode::Usage.code())
                }
                eprintln!(
                    "canreach: {} (see `canreach --help`)",
                    first_line(&e.to_string())
                );
                std::process::exit(ExitCode::Usage.code())
            }
        }
    }

    /// Colour on or off for text output: `--color`, then `NO_COLOR` (no-color.org), then
    /// whether stdout is a terminal that is not `dumb`.
    pub fn use_color(&self) -> bool {
        match self.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::env::var("TERM").map_or(true, |t| t != "dumb")
                    && std::io::stdout().is_terminal()
            }
        }
    }
}

/// clap's message folded into one line: the text before the usage block, joined.
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

/// `5`, `2.5`, `500ms`, `3s`: a positive duration of at most 300 s.
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a duration: write seconds (5, 2.5) or 500ms"))?;
    let secs = v * scale;
    if !secs.is_finite() || !(0.001..=300.0).contains(&secs) {
        return Err(format!("`{s}` is out of range: from 1ms to 300s"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_timeout("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_timeout("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("-1").is_err());
        assert!(parse_timeout("301").is_err());
        assert!(parse_timeout("NaN").is_err());
        assert!(parse_timeout("soon").is_err());
    }

    #[test]
    fn clap_definition_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
