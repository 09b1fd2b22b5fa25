//! The command line: arguments, their parsing, and the colour decision.
//!
//! Usage errors are printed as one line (`canreach: <what is wrong>`) and exit with code 2;
//! clap's multi-line usage block is for `--help`, not for a typo.

use std::io::IsTerminal;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::exit_codes::ExitCode;
use crate::session::status::StatusSet;
use crate::session::tls::{Trust, TrustStore};

/// The examples of `--help` and of the man page, two-space indented, in columns (the man
/// page keeps them as a block of their own, `.nf`: laid out in columns, not to be filled).
pub const EXAMPLES: &str = "  canreach db.internal 5432        a name and a port
  canreach 127.0.0.1:8080          host:port
  canreach '[::1]:22'              IPv6 with a port
  canreach https://example.com/    a URL (port from the URL or its scheme)
  canreach postgres://u@db/app     (5432, PostgreSQL's usual port)
  canreach --json localhost ssh    JSON for scripts; ssh is a service name
  canreach :5432                   what listens on 5432 here, and can a
                                   client reach it?
  canreach db 5432 cache:6379      several targets, checked at once
  canreach -f targets.txt          targets from a file (one a line,
                                   # comments; - for stdin)
  canreach --wait 60s db 5432 -- ./migrate
                                   wait until open, then run ./migrate
  canreach serve --config blackbox.yml
                                   a Prometheus exporter (docs/fleet.md);
                                   a host named serve: canreach serve:PORT";

/// `--help`'s text after the options: the examples, and the exit codes as
/// `exit_codes::help_text` makes them.
fn after_help() -> String {
    format!(
        "Examples:\n{EXAMPLES}\n\nExit codes:\n{}",
        crate::exit_codes::help_text()
    )
}

/// Can I reach this host and port? If not, why, and what do I do about it?
#[derive(Debug, Parser)]
#[command(
    name = "canreach",
    version,
    about,
    after_help = after_help()
)]
pub struct Cli {
    /// What to check: HOST PORT, HOST:PORT, [IPV6]:PORT, an IPv6 address, or a URL; several
    /// targets are checked at once (a port number, or a service name after a word without a
    /// port, is the port of the word before it)
    #[arg(
        value_name = "TARGET",
        required_unless_present_any = ["file", "completions", "man"]
    )]
    pub targets: Vec<String>,

    /// Read targets from FILE, one a line (`#` comments, blank lines); `-` reads stdin
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: Option<std::path::PathBuf>,

    /// Print one JSON object (schema in docs/json.md) instead of text; JSON Lines for several
    /// targets or with --wait
    #[arg(long, conflicts_with = "format")]
    pub json: bool,

    /// Output format
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,

    /// When to use colour in text output
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Deadline for the whole check: seconds (2.5) or with a unit (500ms, 3s), at most 300s
    #[arg(long, short = 't', value_name = "TIME", default_value = "5s", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// Retry until every target is open or TIME has passed (100ms, doubling up to 2s, between
    /// attempts): 30s, 5m, 1h; at most 24h
    #[arg(long, short = 'w', value_name = "TIME", value_parser = parse_wait)]
    pub wait: Option<Duration>,

    /// Nothing on stdout: the exit code says it all
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Only IPv4 addresses
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,

    /// Only IPv6 addresses
    #[arg(short = '6')]
    pub ipv6: bool,

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
    /// tls, http, https, or a service's own opening without credentials: postgres, redis,
    /// mysql, mongodb, kafka, amqp, smtp, imap, pop3; with -u, the UDP service whose request
    /// to send whatever the port: dns, mdns, ntp, snmp, stun, netbios-ns, memcached, quic,
    /// portmap, coap, syslog, wireguard, radius, tftp
    #[arg(long, value_enum, default_value_t = ProtocolChoice::Auto, value_name = "PROTO")]
    pub protocol: ProtocolChoice,

    /// Stop after the TCP handshake and what the server sends or does right after it (same
    /// as --protocol tcp)
    #[arg(long, conflicts_with = "protocol")]
    pub tcp: bool,

    /// Check over UDP: send the port's usual service a harmless request (DNS, NTP, SNMP,
    /// STUN, …) and read its answer (as udp://HOST:PORT)
    #[arg(long, short = 'u')]
    pub udp: bool,

    /// The datagram to send to UDP targets, in hex (e.g. 0d0a); any reply counts as an answer
    #[arg(long, value_name = "HEX", value_parser = parse_payload)]
    pub payload: Option<Payload>,

    /// Ignore the proxy variables (https_proxy, http_proxy, all_proxy): check the direct path
    /// (by default a URL target is checked through the proxy its application would use)
    #[arg(long)]
    pub no_proxy: bool,

    /// Trust the CA certificates in FILE (PEM) for TLS checks, instead of this machine's
    /// store (as curl --cacert)
    #[arg(long, value_name = "FILE", value_parser = parse_cacert)]
    pub cacert: Option<&'static TrustStore>,

    /// Do not verify TLS certificates (as curl --insecure); the report says what
    /// verification would have found
    #[arg(long, short = 'k')]
    pub insecure: bool,

    /// HTTP statuses that count as working: codes, classes and ranges, comma-separated
    /// (404; 2xx,401; 200-299). Default: 2xx and 3xx; any other is a service error
    #[arg(long, value_name = "LIST", value_parser = parse_expect_status)]
    pub expect_status: Option<StatusSet>,

    /// Print a completion script for SHELL to stdout
    #[arg(long, value_enum, value_name = "SHELL", exclusive = true)]
    pub completions: Option<clap_complete::Shell>,

    /// Print the man page (roff) to stdout
    #[arg(long, exclusive = true)]
    pub man: bool,

    /// Run COMMAND once every target is open (it replaces canreach; its exit code is ours)
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `--payload`'s bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload(pub Vec<u8>);

/// The most a UDP datagram over IPv4 carries (65,535 less the IP and UDP headers).
pub(crate) const PAYLOAD_MAX: usize = 65_507;

/// `--payload HEX`: pairs of hex digits (spaces and a leading `0x` allowed), 1 to
/// [`PAYLOAD_MAX`] bytes.
fn parse_payload(s: &str) -> Result<Payload, String> {
    let digits: String = s
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if digits.is_empty() {
        return Err("give the datagram's bytes in hex, e.g. --payload 0d0a".into());
    }
    if let Some(c) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "`{}` is not a hex digit: give the datagram's bytes in hex, e.g. --payload 0d0a",
            crate::escape::escape(&c.to_string())
        ));
    }
    if digits.len() % 2 == 1 {
        return Err("an odd number of hex digits: give two per byte, e.g. --payload 0d0a".into());
    }
    if digits.len() / 2 > PAYLOAD_MAX {
        return Err(format!(
            "{} bytes: a UDP datagram holds at most {PAYLOAD_MAX}",
            digits.len() / 2
        ));
    }
    let bytes = (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("hex digits"))
        .collect();
    Ok(Payload(bytes))
}

/// `--protocol` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtocolChoice {
    Auto,
    Tcp,
    Tls,
    Http,
    Https,
    #[value(alias = "postgresql")]
    Postgres,
    Redis,
    #[value(alias = "mariadb")]
    Mysql,
    Mongodb,
    Kafka,
    Amqp,
    Smtp,
    Imap,
    Pop3,
    // UDP services (with -u): the names of `udp_payloads::TABLE`.
    Dns,
    Mdns,
    Ntp,
    Snmp,
    Stun,
    NetbiosNs,
    Memcached,
    Quic,
    Portmap,
    Coap,
    Syslog,
    Wireguard,
    Radius,
    Tftp,
}

/// `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The human report (a table first for several targets)
    Text,
    /// JSON (docs/json.md)
    Json,
    /// A ticket: the report in Markdown, with where it was run from
    Markdown,
    /// For Nagios, Icinga, Sensu: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN
    // Monitoring Plugins output (src/render/nagios.rs); bad usage is UNKNOWN too.
    Nagios,
}

/// `--color` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl Cli {
    /// The output format: `--format`, or `--json`.
    pub fn output_format(&self) -> Format {
        match (self.json, self.format) {
            (true, _) => Format::Json,
            (_, Some(f)) => f,
            _ => Format::Text,
        }
    }

    /// `-4` / `-6`.
    pub(crate) fn family(&self) -> Option<crate::options::Family> {
        use crate::options::Family;
        match (self.ipv4, self.ipv6) {
            (true, _) => Some(Family::V4),
            (_, true) => Some(Family::V6),
            _ => None,
        }
    }

    /// `--local` / `--no-local` as the check's mode.
    pub(crate) fn local_mode(&self) -> crate::options::LocalMode {
        use crate::options::LocalMode;
        match (self.local, self.no_local) {
            (true, _) => LocalMode::Always,
            (_, true) => LocalMode::Never,
            _ => LocalMode::Auto,
        }
    }

    /// `--protocol` / `--tcp` as the check's protocol.
    pub(crate) fn protocol(&self) -> crate::options::Protocol {
        use crate::options::Protocol;
        if self.tcp {
            return Protocol::Tcp;
        }
        match self.protocol {
            ProtocolChoice::Auto => Protocol::Auto,
            ProtocolChoice::Tcp => Protocol::Tcp,
            ProtocolChoice::Tls => Protocol::Tls,
            ProtocolChoice::Http => Protocol::Http,
            ProtocolChoice::Https => Protocol::Https,
            service => {
                // The value's own name is a protocol name `Selection` knows.
                let name = service
                    .to_possible_value()
                    .map(|v| v.get_name().to_string())
                    .unwrap_or_default();
                crate::session::protocols::Selection::from_name(&name)
                    .map(Protocol::Service)
                    .or_else(|| {
                        crate::session::protocols::udp_payloads::by_name(&name)
                            .map(|e| Protocol::Udp(e.service))
                    })
                    .unwrap_or(Protocol::Auto)
            }
        }
    }

    /// What each check may do, from the flags.
    pub(crate) fn options(&self) -> crate::options::Options {
        crate::options::Options {
            timeout: self.timeout,
            trace: self.trace_mode(),
            local: self.local_mode(),
            protocol: self.protocol(),
            follow_proxy: !self.no_proxy,
            trust: self.trust(),
            expect_status: self.expect_status,
            ask: None,
            report: !self.quiet,
            payload: self
                .payload
                .as_ref()
                .map(|p| std::sync::Arc::from(p.0.as_slice())),
        }
    }

    /// `--cacert` / `--insecure` as what TLS checks trust.
    pub(crate) fn trust(&self) -> Trust {
        Trust {
            cacert: self.cacert,
            insecure: self.insecure,
        }
    }

    /// `--trace` / `--no-trace` as the check's mode.
    pub(crate) fn trace_mode(&self) -> crate::options::TraceMode {
        use crate::options::TraceMode;
        match (self.trace, self.no_trace) {
            (true, _) => TraceMode::Always,
            (_, true) => TraceMode::Never,
            _ => TraceMode::Auto,
        }
    }

    /// The command line's definition, its help laid out for `columns`.
    pub(crate) fn command_for(columns: usize) -> clap::Command {
        use clap::CommandFactory;
        Cli::command().term_width(columns)
    }

    /// Parse `std::env::args`, or print the one-line error (or help/version) and exit. The
    /// help fits the terminal, or 80 columns off one.
    pub fn parse_or_exit() -> Cli {
        use clap::FromArgMatches;
        let parsed = Cli::command_for(crate::render::stdout_width())
            .try_get_matches()
            .and_then(|m| Cli::from_arg_matches(&m));
        match parsed {
            // `--` ends canreach's arguments and starts a command: it must be followed by one.
            Ok(c) if c.command.is_empty() && std::env::args_os().any(|a| a == "--") => usage_exit(
                "`--` must be followed by a command to run once the targets are open, e.g. `-- ./migrate`",
            ),
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
                // `-t -1s`: clap takes `-1s` for flags; it is a negative duration.
                let args: Vec<String> = std::env::args_os()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect();
                if let Some(line) = negative_duration(&args) {
                    usage_exit(&line)
                }
                // `canreach host -1`: a negative port, not an unknown flag (`-4`/`-6` are
                // flags, so negative numbers cannot be values).
                if let Some(clap::error::ContextValue::String(arg)) =
                    e.get(clap::error::ContextKind::InvalidArg)
                    && e.kind() == UnknownArgument
                    && arg.len() > 1
                    && arg[1..].bytes().all(|b| b.is_ascii_digit())
                {
                    usage_exit(&crate::target::TargetError::PortOutOfRange(arg.clone()).to_string())
                }
                usage_exit(&format!("{} (see `canreach --help`)", usage_line(&e)))
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

/// Was `--format nagios` asked for? Read from the raw arguments, so that a usage error is
/// written in the plugin's terms even when the arguments did not parse (up to `--`, after
/// which the words are a command's).
pub(crate) fn nagios_in_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    let mut prev: Option<std::ffi::OsString> = None;
    for a in args {
        if a == "--" {
            break;
        }
        if a == "--format=nagios" || (a == "nagios" && prev.as_deref() == Some("--format".as_ref()))
        {
            return true;
        }
        prev = Some(a);
    }
    false
}

/// A usage error: `canreach: WHAT` on stderr and exit 2; with `--format nagios`,
/// `CANREACH UNKNOWN: WHAT` on stdout and exit 3 (the guidelines' UNKNOWN is for bad
/// arguments, and a scheduler reads stdout only). One line either way. `what` comes escaped
/// (`usage_line`, `escape::line`).
pub fn usage_exit(what: &str) -> ! {
    if nagios_in_args(std::env::args_os().skip(1)) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", crate::render::nagios::unknown_line(what));
        let _ = out.flush();
        std::process::exit(crate::exit_codes::PluginState::Unknown.code())
    }
    eprintln!("canreach: {what}");
    std::process::exit(ExitCode::Usage.code())
}

/// The man page (roff): clap_mangen's sections, then the examples and the exit codes as
/// preformatted blocks (`.nf`): they are laid out in columns, and `man` would otherwise fill
/// them into run-on text.
pub fn man_page(w: &mut dyn std::io::Write) -> std::io::Result<()> {
    use clap::CommandFactory;
    let cmd = Cli::command().after_help(None::<&str>);
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut page)?;
    let page = String::from_utf8_lossy(&page);
    // Before VERSION, where clap_mangen would have put `--help`'s text as one paragraph.
    let (head, tail) = page.split_at(page.find("\n.SH VERSION").map_or(page.len(), |i| i + 1));
    w.write_all(head.as_bytes())?;
    let exit_codes = crate::exit_codes::help_text();
    for (title, block) in [("EXAMPLES", EXAMPLES), ("\"EXIT STATUS\"", &exit_codes[..])] {
        writeln!(w, ".SH {title}\n.nf")?;
        for line in block.lines() {
            // The page is indented already: the examples' own two columns would only push
            // them past 80.
            writeln!(w, "{}", roff_line(line.strip_prefix("  ").unwrap_or(line)))?;
        }
        writeln!(w, ".fi")?;
    }
    w.write_all(tail.as_bytes())
}

/// One line of text for roff: backslashes, dashes and apostrophes escaped, a leading `.` or
/// `'` (a request) neutralised.
fn roff_line(s: &str) -> String {
    let body = s
        .replace('\\', "\\\\")
        .replace('-', "\\-")
        .replace('\'', "\\*(Aq");
    if body.starts_with(['.', '\'']) {
        format!("\\&{body}")
    } else {
        body
    }
}

/// A value a negative number after `-t`/`--timeout` or `-w`/`--wait` (`-t -1s`), which clap
/// reads as flags: the one line that says so.
fn negative_duration(args: &[String]) -> Option<String> {
    args.windows(2).find_map(|w| {
        let what = match w[0].as_str() {
            "-t" | "--timeout" => "deadline (--timeout)",
            "-w" | "--wait" => "wait (--wait)",
            _ => return None,
        };
        let v = &w[1];
        let negative = v
            .strip_prefix('-')
            .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit() || c == '.'));
        negative.then(|| {
            format!(
                "`{}` is not a valid {what}: give a positive duration, e.g. 5s or 500ms",
                crate::escape::line(v)
            )
        })
    })
}

/// clap's error as one line, safe to print: the values the user typed (which clap quotes
/// verbatim, control characters and all: `--completions $'zsh\rok'`) escaped before the
/// message is folded, then the whole line escaped and masked (`escape::line`).
fn usage_line(e: &clap::Error) -> String {
    use clap::error::ContextValue;
    let mut msg = e.to_string();
    for (_, v) in e.context() {
        let values: Vec<&String> = match v {
            ContextValue::String(s) => vec![s],
            ContextValue::Strings(v) => v.iter().collect(),
            _ => vec![],
        };
        for s in values {
            let shown = crate::escape::escape(s);
            if shown != s.as_str() {
                msg = msg.replace(s.as_str(), &shown);
            }
        }
    }
    crate::escape::line(&first_line(&msg))
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
pub(crate) fn parse_timeout(s: &str) -> Result<Duration, String> {
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

/// `--cacert FILE`: the file's certificates as a trust store, read once when the command line
/// is parsed, so that a file that cannot be used is a usage error (exit 2) before any check.
/// The store lives as long as the process: it is leaked once, which keeps the pipeline's
/// options plain `Copy` values.
fn parse_cacert(s: &str) -> Result<&'static TrustStore, String> {
    let store = TrustStore::from_pem_file(std::path::Path::new(s)).map_err(|e| e.to_string())?;
    Ok(Box::leak(Box::new(store)))
}

/// `--expect-status LIST`.
fn parse_expect_status(s: &str) -> Result<StatusSet, String> {
    StatusSet::parse(s).map_err(|e| e.to_string())
}

/// `--wait`: like `--timeout`, plus minutes and hours (`5m`, `1h`), at most 24 h.
pub(crate) fn parse_wait(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    // Longest suffix first: `ms` before `m` and `s`.
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    parse_number(num, scale, s)
}

fn parse_number(num: &str, scale: f64, s: &str) -> Result<Duration, String> {
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a duration: write 30s, 500ms, 5m or 1h"))?;
    let secs = v * scale;
    if !secs.is_finite() || !(0.001..=86_400.0).contains(&secs) {
        return Err(format!("`{s}` is out of range: from 1ms to 24h"));
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
    fn every_udp_service_is_a_protocol_name_of_its_own() {
        use crate::options::Protocol;
        use crate::session::protocols::udp_payloads::TABLE;
        for e in TABLE {
            let cli = Cli::try_parse_from(["canreach", "-u", "--protocol", e.name, "h", "1"])
                .unwrap_or_else(|err| panic!("{}: {err}", e.name));
            assert_eq!(cli.protocol(), Protocol::Udp(e.service), "{}", e.name);
        }
        let cli = Cli::try_parse_from(["canreach", "--protocol", "redis", "h", "1"]).unwrap();
        assert!(matches!(cli.protocol(), Protocol::Service(_)));
    }

    #[test]
    fn waits() {
        assert_eq!(parse_wait("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_wait("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_wait("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_wait("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_wait("400"), Ok(Duration::from_secs(400)));
        // Past --timeout's 300 s cap, with a unit too (was refused: "not a duration").
        assert_eq!(parse_wait("600s"), Ok(Duration::from_secs(600)));
        assert_eq!(
            parse_wait("90000s").map_err(|e| e.contains("out of range")),
            Err(true)
        );
        assert!(parse_wait("5mm").is_err());
        assert!(parse_wait("25h").is_err());
        assert!(parse_wait("0").is_err());
        assert!(parse_wait("later").is_err());
    }

    #[test]
    fn nagios_is_found_in_raw_arguments_before_a_command() {
        let args =
            |s: &str| -> Vec<std::ffi::OsString> { s.split_whitespace().map(Into::into).collect() };
        assert!(nagios_in_args(args("--format nagios host 22")));
        assert!(nagios_in_args(args("host 22 --format=nagios --bogus")));
        assert!(!nagios_in_args(args("--format json host 22")));
        assert!(!nagios_in_args(args("nagios 22")));
        assert!(!nagios_in_args(args("host 22 -- cmd --format nagios")));
    }

    #[test]
    fn a_negative_duration_is_named_as_one() {
        let args = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        let line = negative_duration(&args("canreach -t -1s localhost 22")).unwrap();
        assert!(line.starts_with("`-1s` is not a valid deadline"), "{line}");
        assert!(negative_duration(&args("canreach --wait -5 db 1")).is_some());
        assert_eq!(negative_duration(&args("canreach -t 5s db -1")), None);
    }

    #[test]
    fn clap_definition_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
