//! Targets from the command line and from `-f FILE`: grouping words into targets, reading the
//! file, refusing duplicates. Every error is one line (exit 2), with typed text escaped.

use std::fmt;
use std::io::Read;
use std::path::Path;

use crate::services::Services;
use crate::target::{self, Host, PortSource, Target, TargetError, shown};

use crate::options::Family;

/// The most a targets file may hold, in bytes: a list of targets, not a data set.
pub(crate) const MAX_FILE_BYTES: u64 = 1 << 20;

/// The most targets one run checks.
pub(crate) const MAX_TARGETS: usize = 10_000;

/// Where a target was given, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The n-th target on the command line (from 1).
    Argument(usize),
    /// Line n (from 1) of the targets file.
    Line(usize),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Argument(n) => write!(f, "argument {n}"),
            Origin::Line(n) => write!(f, "line {n}"),
        }
    }
}

/// One target to check and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Input {
    pub target: Target,
    pub origin: Origin,
}

/// Why the targets could not be read. Each message is one line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InputError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("{file}, line {line}: {why}")]
    Line {
        file: String,
        line: usize,
        why: String,
    },
    #[error("cannot read {file}: {why}")]
    Unreadable { file: String, why: String },
    #[error("{0} holds no target (only comments or blank lines)")]
    EmptyFile(String),
    #[error("`{target}` is given twice ({first} and {second}): give each target once")]
    Duplicate {
        target: String,
        first: String,
        second: String,
    },
    #[error("{0} targets given: at most {MAX_TARGETS} per run")]
    TooMany(usize),
    #[error("{flag} given, but `{target}` is an {family} address")]
    Family {
        flag: &'static str,
        target: String,
        family: &'static str,
    },
    #[error("{0} does not apply to `:PORT`, which checks every address of this machine")]
    FamilyHere(&'static str),
    #[error("--payload is for UDP targets: add -u, or write the target as udp://HOST:PORT")]
    PayloadWithoutUdp,
    #[error("--protocol {0} is a UDP service: add -u, or write the target as udp://HOST:PORT")]
    UdpProtocolWithoutUdp(&'static str),
    #[error("{0} speaks over TCP, and every target is UDP: drop -u (or udp://)")]
    TcpProtocolWithUdp(String),
}

/// A word that always starts a target of its own: host:port, [v6]:port, a URL, `:PORT`.
fn starts_target(w: &str) -> bool {
    w.contains(':') || w.contains('/')
}

/// A port number as typed, valid or not (`22`, `0`, `-1`, `70000`).
fn is_number(w: &str) -> bool {
    let t = w.strip_prefix('-').unwrap_or(w);
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())
}

/// Does `w` alone carry a port of its own (not merely its URL scheme's usual one)? Words that
/// do not parse count as having one: the next word is then not taken for their port unless it
/// is a number, so the error stays about `w`.
fn has_own_port(w: &str, services: &Services) -> bool {
    match target::parse(w, None, services) {
        Err(TargetError::MissingPort { .. }) => false,
        Ok(t) => t.port_source != PortSource::Scheme,
        Err(_) => true,
    }
}

/// Group command-line words into `(TARGET, PORT)` pairs. The rule: a word is the port of the
/// word before it when it contains no `:` or `/` and it is a port number, or the word before
/// has no port of its own (a bare host, or a URL with only its scheme's port). So
/// `db 5432 cache:6379 localhost ssh` is three targets.
pub(crate) fn group<'a>(
    words: &'a [String],
    services: &Services,
) -> Vec<(&'a str, Option<&'a str>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let cur = words[i].as_str();
        let next = words.get(i + 1).map(String::as_str);
        match next {
            Some(n) if !starts_target(n) && (is_number(n) || !has_own_port(cur, services)) => {
                out.push((cur, Some(n)));
                i += 2;
            }
            _ => {
                out.push((cur, None));
                i += 1;
            }
        }
    }
    out
}

/// Parse the command line's words and the targets file into the list to check.
pub(crate) fn collect(
    words: &[String],
    file: Option<&Path>,
    family: Option<Family>,
    services: &Services,
) -> Result<Vec<Input>, InputError> {
    let mut inputs = Vec::new();
    for (n, (t, p)) in group(words, services).into_iter().enumerate() {
        inputs.push(Input {
            target: target::parse(t, p, services)?,
            origin: Origin::Argument(n + 1),
        });
    }
    if let Some(path) = file {
        let (name, text) = read_file(path)?;
        let before = inputs.len();
        for (n, line) in text.lines().enumerate() {
            if let Some(t) = parse_line(line, services).map_err(|why| InputError::Line {
                file: name.clone(),
                line: n + 1,
                why,
            })? {
                inputs.push(Input {
                    target: t,
                    origin: Origin::Line(n + 1),
                });
            }
        }
        if inputs.len() == before {
            return Err(InputError::EmptyFile(name));
        }
    }
    if inputs.len() > MAX_TARGETS {
        return Err(InputError::TooMany(inputs.len()));
    }
    // One pass with a map, not every pair: 10,000 targets are 50 million pairs.
    let mut seen: std::collections::HashMap<Key, usize> =
        std::collections::HashMap::with_capacity(inputs.len());
    for (j, b) in inputs.iter().enumerate() {
        if let Some(&i) = seen.get(&key(&b.target)) {
            let a = &inputs[i];
            return Err(InputError::Duplicate {
                target: crate::escape::escape(&a.target.display()).into_owned(),
                first: a.origin.to_string(),
                second: b.origin.to_string(),
            });
        }
        seen.insert(key(&b.target), j);
    }
    if let Some(family) = family {
        check_family(&inputs, family)?;
    }
    Ok(inputs)
}

/// What makes two targets the same check: the port, the `:PORT` mode, the transport and the
/// host (names compared as DNS does).
type Key = (
    u16,
    bool,
    crate::target::Transport,
    Result<std::net::IpAddr, String>,
);

fn key(t: &Target) -> Key {
    let host = match &t.host {
        Host::Name(n) => Err(n.trim_end_matches('.').to_ascii_lowercase()),
        Host::Ip(ip) => Ok(*ip),
    };
    (t.port.get(), t.here, t.transport, host)
}

/// `-4` with an IPv6 literal (or `-6` with IPv4) cannot be checked: say so instead of
/// reporting a name error.
fn check_family(inputs: &[Input], family: Family) -> Result<(), InputError> {
    for i in inputs {
        if i.target.here {
            return Err(InputError::FamilyHere(family.flag()));
        }
        if let Host::Ip(ip) = i.target.host
            && !family.admits(ip)
        {
            return Err(InputError::Family {
                flag: family.flag(),
                target: i.target.display(),
                family: if ip.is_ipv4() { "IPv4" } else { "IPv6" },
            });
        }
    }
    Ok(())
}

/// One line of a targets file: `None` for blank lines and comments. A `#` at the start of the
/// line or after a space starts a comment (a URL's `#fragment` has none before it).
fn parse_line(line: &str, services: &Services) -> Result<Option<Target>, String> {
    let text = match line.find(" #").or_else(|| line.find("\t#")) {
        Some(i) => &line[..i],
        None => line,
    };
    let text = text.trim();
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let parsed = match words.as_slice() {
        [t] => target::parse(t, None, services),
        [t, p] => target::parse(t, Some(p), services),
        _ => {
            return Err(format!(
                "`{}` is not a target: write one target a line (HOST PORT, HOST:PORT or a URL)",
                shown(text)
            ));
        }
    };
    parsed.map(Some).map_err(|e| e.to_string())
}

/// The file's name as shown, and its text (`-`: stdin).
fn read_file(path: &Path) -> Result<(String, String), InputError> {
    let stdin = path.as_os_str() == "-";
    let name = if stdin {
        "standard input".to_string()
    } else {
        shown(&path.to_string_lossy())
    };
    let unreadable = |why: String| InputError::Unreadable {
        file: name.clone(),
        why,
    };
    let mut bytes = Vec::new();
    let read = if stdin {
        std::io::stdin()
            .lock()
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
    };
    read.map_err(|e| unreadable(io_words(&e)))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(unreadable(format!(
            "larger than {} KiB: a targets file is a list of targets",
            MAX_FILE_BYTES / 1024
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| unreadable("it is not UTF-8 text".into()))?;
    Ok((name, text))
}

/// An I/O error in a few words, without Rust's `(os error N)`.
fn io_words(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::IsADirectory => "it is a directory".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn grouped(s: &str) -> Vec<(String, Option<String>)> {
        let w = words(s);
        group(&w, &Services::parse(""))
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.map(str::to_string)))
            .collect()
    }

    fn pair(a: &str, b: Option<&str>) -> (String, Option<String>) {
        (a.to_string(), b.map(str::to_string))
    }

    #[test]
    fn a_port_or_service_joins_the_word_before() {
        assert_eq!(grouped("db 5432"), [pair("db", Some("5432"))]);
        assert_eq!(grouped("localhost ssh"), [pair("localhost", Some("ssh"))]);
        assert_eq!(
            grouped("db:5432 cache:6379 https://api/health"),
            [
                pair("db:5432", None),
                pair("cache:6379", None),
                pair("https://api/health", None)
            ]
        );
        assert_eq!(
            grouped("db 5432 cache:6379 web http"),
            [
                pair("db", Some("5432")),
                pair("cache:6379", None),
                pair("web", Some("http"))
            ]
        );
        // A number after a host:port is its (conflicting) port: the error says so.
        assert_eq!(grouped("host:22 23"), [pair("host:22", Some("23"))]);
        // A service name after a host:port is a host of its own.
        assert_eq!(
            grouped("db:5432 ssh"),
            [pair("db:5432", None), pair("ssh", None)]
        );
        // A URL with only its scheme's port takes an explicit one.
        assert_eq!(grouped("https://h 8443"), [pair("https://h", Some("8443"))]);
        assert_eq!(grouped("host -1"), [pair("host", Some("-1"))]);
    }

    #[test]
    fn lines_comments_and_bad_lines() {
        let s = Services::parse("");
        assert_eq!(parse_line("", &s), Ok(None));
        assert_eq!(parse_line("   # a comment", &s), Ok(None));
        let t = parse_line("db 5432  # primary", &s).unwrap().unwrap();
        assert_eq!(t.port.get(), 5432);
        let t = parse_line("https://h/x#frag", &s).unwrap().unwrap();
        assert_eq!(t.port.get(), 443);
        assert!(
            parse_line("a b c", &s)
                .unwrap_err()
                .contains("not a target")
        );
        assert!(parse_line("db", &s).unwrap_err().contains("no port"));
    }

    #[test]
    fn duplicates_are_found_across_forms() {
        let s = Services::parse("");
        let err = collect(&words("DB.example:5432 db.example. 5432"), None, None, &s).unwrap_err();
        assert!(matches!(err, InputError::Duplicate { .. }), "{err}");
        assert!(err.to_string().contains("argument 1 and argument 2"));
    }

    #[test]
    fn family_mismatch_is_a_usage_error() {
        let s = Services::parse("");
        let err = collect(&words("::1 22"), None, Some(Family::V4), &s).unwrap_err();
        assert!(err.to_string().contains("-4 given"), "{err}");
        assert!(collect(&words("127.0.0.1 22"), None, Some(Family::V4), &s).is_ok());
    }
}
