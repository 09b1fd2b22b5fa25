//! The resolver's files: /etc/hosts and /etc/resolv.conf, each read apart from its parsing.
//!
//! `ip netns exec` bind-mounts /etc/netns/NAME/{hosts,resolv.conf} over these paths, so the lab
//! tests give each namespace its own.
//!
//! Reading is defensive ([`read_bounded`]): these paths are not always plain files (a FIFO or
//! a device put there — by mistake, a container image or someone with write access — would
//! block or never end a naive read), they may be huge, and one line of bad bytes must not hide
//! the good lines around it. Text read here is raw: renderers escape it when printing.

use std::fs::File;
use std::io::Read;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use hickory_resolver::proto::rr::Name;
use thiserror::Error;

pub(crate) const HOSTS_PATH: &str = "/etc/hosts";
pub(crate) const RESOLV_PATH: &str = "/etc/resolv.conf";

/// Largest resolver file read. Real ones are a few KiB; a hosts file of ad-blocking lists can
/// reach a few hundred.
pub(crate) const MAX_FILE: u64 = 1 << 20;

/// Most /etc/hosts lines naming the target kept: more say nothing new, and a hostile file
/// (1 MiB of the same name) must not make a report of tens of thousands of lines.
pub(crate) const MAX_HOSTS_LINES: usize = 64;

/// glibc's limits on what it takes from resolv.conf (`resolv.h`): only the first `MAXNS`
/// name servers are asked, `ndots`, `timeout` and `attempts` are capped. The facts keep what
/// the system actually uses, and a hostile file cannot make the DNS view ask ten thousand
/// servers. Search domains have no limit in glibc ≥ 2.26; each one is a query per server, so
/// they are bounded too.
pub(crate) const MAXNS: usize = 3;
/// `nameserver` lines kept at the most (the first [`MAXNS`] count; the others are reported as
/// ignored).
const MAX_LISTED: usize = 16;
const MAX_SEARCH: usize = 32;
const MAX_NDOTS: usize = 15;
const MAX_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_ATTEMPTS: usize = 5;

/// Why a resolver file was not read.
#[derive(Debug, Error)]
pub(crate) enum FileError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a regular file")]
    NotRegular { path: String },
    #[error("{path} is larger than {limit} bytes")]
    TooLarge { path: String, limit: u64 },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

/// Read `path` whole, at most `limit` bytes, only if it is a regular file.
///
/// Opened with `O_NONBLOCK` so that opening a FIFO (which otherwise waits for a writer) returns
/// at once; then `fstat` on the open descriptor (no race with a swap of the path) must say
/// regular file. Symbolic links are followed: /etc/resolv.conf is usually one.
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    let name = || path.display().to_string();
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|source| FileError::Open {
            path: name(),
            source,
        })?;
    let meta = file.metadata().map_err(|source| FileError::Read {
        path: name(),
        source,
    })?;
    if !meta.is_file() {
        return Err(FileError::NotRegular { path: name() });
    }
    if meta.len() > limit {
        return Err(FileError::TooLarge {
            path: name(),
            limit,
        });
    }
    let mut out = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // The file may grow between fstat and read: read one byte past the limit to notice.
    file.take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|source| FileError::Read {
            path: name(),
            source,
        })?;
    if out.len() as u64 > limit {
        return Err(FileError::TooLarge {
            path: name(),
            limit,
        });
    }
    Ok(out)
}

/// Would opening `path` and reading it end at once: is it a regular file, or absent? Asked
/// before handing a path to a library that opens it with a plain, blocking `open` (glibc's
/// user database reads /etc/nsswitch.conf and /etc/passwd): a FIFO there would hold the
/// thread for ever.
pub(crate) fn regular_or_absent(path: &Path) -> bool {
    match File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f.metadata().is_ok_and(|m| m.is_file()),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// A line of /etc/hosts that names the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsLine {
    pub file: &'static str,
    /// 1-based.
    pub line: usize,
    pub address: IpAddr,
    /// The line as written.
    pub text: String,
}

/// Read /etc/hosts and find `name` in it (missing, unreadable, not a file or too large: no
/// lines).
pub(crate) fn hosts_lines(name: &str) -> Vec<HostsLine> {
    read_bounded(Path::new(HOSTS_PATH), MAX_FILE)
        .map(|b| parse_hosts_bytes(&b, name))
        .unwrap_or_default()
}

/// `parse_hosts` on the file's bytes, decoded line by line: a line with bytes that are not
/// UTF-8 is decoded lossily (U+FFFD), so it neither hides the other lines nor shifts their
/// numbers. (Such a line never names a valid host, but its neighbours may.) At most
/// [`MAX_HOSTS_LINES`].
pub(crate) fn parse_hosts_bytes(bytes: &[u8], name: &str) -> Vec<HostsLine> {
    let want = name.trim_end_matches('.').to_ascii_lowercase();
    bytes
        .split(|b| *b == b'\n')
        .enumerate()
        .filter_map(|(i, raw)| hosts_line(i, &String::from_utf8_lossy(raw), &want))
        .take(MAX_HOSTS_LINES)
        .collect()
}

/// The lines of a hosts(5) text that give an address for `name` (case-insensitive, trailing
/// dot ignored), in file order — the order glibc uses. At most [`MAX_HOSTS_LINES`].
#[cfg(test)]
pub(crate) fn parse_hosts(text: &str, name: &str) -> Vec<HostsLine> {
    let want = name.trim_end_matches('.').to_ascii_lowercase();
    text.lines()
        .enumerate()
        .filter_map(|(i, raw)| hosts_line(i, raw, &want))
        .take(MAX_HOSTS_LINES)
        .collect()
}

/// Line `i` (0-based) if it gives an address for `want` (lowercase, no trailing dot).
fn hosts_line(i: usize, raw: &str, want: &str) -> Option<HostsLine> {
    let line = raw.split('#').next().unwrap_or("");
    let mut words = line.split_whitespace();
    let address: IpAddr = words.next()?.parse().ok()?;
    words
        .any(|w| w.trim_end_matches('.').eq_ignore_ascii_case(want))
        .then(|| HostsLine {
            file: HOSTS_PATH,
            line: i + 1,
            address,
            text: raw.trim().to_string(),
        })
}

/// What resolv.conf says, in the form the report needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub ndots: usize,
    pub timeout: Duration,
    pub attempts: usize,
}

/// Read and parse /etc/resolv.conf. `None` when it cannot be read (see [`read_bounded`]) or
/// has no `nameserver`.
pub(crate) fn read_resolv_conf() -> Option<ResolvConf> {
    parse_resolv_conf(&read_bounded(Path::new(RESOLV_PATH), MAX_FILE).ok()?)
}

/// Parse resolv.conf text with hickory's parser (the same reading the DNS view uses).
///
/// Cleaned line by line first, as glibc reads it — a bad line is skipped, never the file:
/// lines that are not UTF-8 are dropped, and from `search`/`domain` lines the names hickory
/// cannot parse (hickory fails the whole file on one, losing every `nameserver`).
pub(crate) fn parse_resolv_conf(text: &[u8]) -> Option<ResolvConf> {
    let (config, opts) =
        hickory_resolver::system_conf::parse_resolv_conf(clean_resolv_conf(text)).ok()?;
    let mut nameservers: Vec<IpAddr> = Vec::new();
    // glibc takes the first MAXNS `nameserver` lines and ignores the rest; the rest is kept
    // here (bounded) so that the report can say which lines are ignored. The DNS view asks
    // only the first MAXNS (`dns::view`).
    for ns in config.name_servers().iter().take(MAX_LISTED) {
        if !nameservers.contains(&ns.ip) {
            nameservers.push(ns.ip);
        }
    }
    // The ASCII form (`xn--…`): hickory's `Display` would decode it to Unicode, which is
    // shown only when safe, at print time (`escape::display_name`).
    let mut search: Vec<String> = config.domain().map(|d| d.to_ascii()).into_iter().collect();
    search.extend(config.search().iter().map(|n| n.to_ascii()));
    search.dedup();
    search.truncate(MAX_SEARCH);
    Some(ResolvConf {
        nameservers,
        search: search
            .iter()
            .map(|s| s.trim_end_matches('.').to_string())
            .collect(),
        ndots: opts.ndots.min(MAX_NDOTS),
        timeout: opts.timeout.min(MAX_TIMEOUT),
        attempts: opts.attempts.min(MAX_ATTEMPTS),
    })
}

/// The lines of resolv.conf that can be read, with unparseable search names left out.
fn clean_resolv_conf(text: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for raw in text.split(|b| *b == b'\n') {
        let Ok(line) = std::str::from_utf8(raw) else {
            continue;
        };
        let body = line.split(['#', ';']).next().unwrap_or("");
        let mut words = body.split_whitespace();
        match words.next() {
            Some(kw @ ("search" | "domain")) => {
                let good: Vec<&str> = words
                    .filter(|w| *w == "--" || Name::from_str_relaxed(w).is_ok())
                    .collect();
                if !good.is_empty() {
                    out.push_str(kw);
                    out.push(' ');
                    out.push_str(&good.join(" "));
                }
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_name_with_its_line() {
        let text = "127.0.0.1 localhost\n# 198.18.0.1 app.lab\n198.18.2.9  app.lab app  # stale\n::1 ip6-localhost\n198.18.2.10 APP.LAB.\n";
        let lines = parse_hosts(text, "app.lab");
        assert_eq!(lines.len(), 2);
        assert_eq!(
            (lines[0].line, lines[0].address.to_string()),
            (3, "198.18.2.9".to_string())
        );
        assert_eq!(lines[0].text, "198.18.2.9  app.lab app  # stale");
        assert_eq!(lines[1].line, 5, "case and a trailing dot do not matter");
        assert!(parse_hosts(text, "nosuch").is_empty());
        assert!(parse_hosts("garbage line\n", "garbage").is_empty());
    }

    #[test]
    fn reads_servers_search_and_options() {
        let r = parse_resolv_conf(
            b"nameserver 198.18.2.2\nnameserver fd00:2::2\nsearch lab corp.example\noptions ndots:2 timeout:1 attempts:3\n",
        )
        .unwrap();
        assert_eq!(r.nameservers.len(), 2);
        assert_eq!(r.search, ["lab", "corp.example"]);
        assert_eq!(
            (r.ndots, r.timeout, r.attempts),
            (2, Duration::from_secs(1), 3)
        );
        assert_eq!(parse_resolv_conf(b"search lab\n"), None, "no nameserver");
    }

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("canreach-files-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_fifo_is_refused_at_once_not_waited_on() {
        let d = temp_dir("fifo");
        let fifo = d.join("hosts");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let start = std::time::Instant::now();
        let r = read_bounded(&fifo, MAX_FILE);
        assert!(matches!(r, Err(FileError::NotRegular { .. })), "{r:?}");
        assert!(start.elapsed() < Duration::from_secs(1));
        // A directory and a device are not files either.
        assert!(matches!(
            read_bounded(&d, MAX_FILE),
            Err(FileError::NotRegular { .. })
        ));
        assert!(matches!(
            read_bounded(Path::new("/dev/zero"), MAX_FILE),
            Err(FileError::NotRegular { .. })
        ));
        // Asked before a library opens a path with a blocking open.
        assert!(!regular_or_absent(&fifo));
        assert!(!regular_or_absent(&d));
        assert!(!regular_or_absent(Path::new("/dev/zero")));
        assert!(regular_or_absent(&d.join("absent")));
        std::fs::write(d.join("file"), "x").unwrap();
        assert!(regular_or_absent(&d.join("file")));
        assert!(start.elapsed() < Duration::from_secs(1));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_oversized_file_is_refused_and_a_missing_one_is_an_error() {
        let d = temp_dir("big");
        let big = d.join("hosts");
        std::fs::write(&big, vec![b'#'; 4097]).unwrap();
        assert!(matches!(
            read_bounded(&big, 4096),
            Err(FileError::TooLarge { limit: 4096, .. })
        ));
        assert_eq!(read_bounded(&big, 4097).unwrap().len(), 4097);
        assert!(matches!(
            read_bounded(&d.join("nosuch"), MAX_FILE),
            Err(FileError::Open { .. })
        ));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_symlink_to_a_file_is_followed() {
        let d = temp_dir("link");
        std::fs::write(d.join("real"), b"nameserver 198.18.2.2\n").unwrap();
        std::os::unix::fs::symlink(d.join("real"), d.join("resolv.conf")).unwrap();
        let b = read_bounded(&d.join("resolv.conf"), MAX_FILE).unwrap();
        assert_eq!(parse_resolv_conf(&b).unwrap().nameservers.len(), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    const HOSTILE_HOSTS: &[u8] = include_bytes!("../../tests/fixtures/hosts_non_utf8");

    #[test]
    fn a_non_utf8_line_does_not_hide_the_others() {
        let lines = parse_hosts_bytes(HOSTILE_HOSTS, "app.lab");
        let found: Vec<(usize, String)> = lines
            .iter()
            .map(|l| (l.line, l.address.to_string()))
            .collect();
        assert_eq!(
            found,
            [
                (3, "198.18.2.9".to_string()),
                (5, "198.18.2.10".to_string())
            ]
        );
        // The bad line itself is decoded lossily, its number kept.
        let bad = parse_hosts_bytes(HOSTILE_HOSTS, "caf\u{fffd}.lab");
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 2);
    }

    #[test]
    fn one_bad_resolv_conf_line_does_not_lose_the_servers() {
        let r = parse_resolv_conf(
            b"nameserver 198.18.2.2\nsearch \xff\xfe.lab\nsearch good.lab a..b\nnameserver 198.18.2.3\n",
        )
        .unwrap();
        assert_eq!(r.nameservers.len(), 2);
        assert_eq!(r.search, ["good.lab"]);
        let r = parse_resolv_conf(b"domain a..b\nnameserver 198.18.2.2\n").unwrap();
        assert_eq!(r.nameservers.len(), 1);
        assert!(r.search.is_empty());
    }

    #[test]
    fn resolv_conf_is_taken_as_glibc_takes_it() {
        let mut text = String::new();
        for i in 1..=10 {
            text.push_str(&format!("nameserver 198.18.2.{i}\n"));
        }
        text.push_str("options ndots:99 timeout:100000 attempts:1000\n");
        text.push_str(&format!(
            "search {}\n",
            (0..100)
                .map(|i| format!("d{i}.lab"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
        let r = parse_resolv_conf(text.as_bytes()).unwrap();
        // All are kept (bounded); the first MAXNS are the ones asked (`dns::view`).
        assert_eq!(r.nameservers.len(), 10);
        assert_eq!(r.nameservers[2].to_string(), "198.18.2.3");
        assert_eq!(
            (r.ndots, r.timeout, r.attempts),
            (15, Duration::from_secs(30), 5)
        );
        assert_eq!(r.search.len(), MAX_SEARCH);
    }

    #[test]
    fn a_hosts_file_repeating_the_name_gives_a_bounded_list() {
        let text = "198.18.2.9 app.lab\n".repeat(50_000);
        assert_eq!(
            parse_hosts_bytes(text.as_bytes(), "app.lab").len(),
            MAX_HOSTS_LINES
        );
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(b in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_resolv_conf(&b);
            let _ = parse_hosts_bytes(&b, "a");
        }
    }
}
