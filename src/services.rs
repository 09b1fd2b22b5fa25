//! Service names and URL schemes to ports: /etc/services plus a small built-in table.
//!
//! Reading the file ([`Services::load`]) is split from parsing its text ([`Services::parse`]) so
//! the parser is tested on fixtures. The built-in table covers URL schemes whose name differs
//! from the /etc/services entry (`postgres://` vs `postgresql`) and machines with no
//! /etc/services at all (minimal containers), so `https://h/` works everywhere.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU16;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// A TCP port one can connect to: 1..=65535. Port 0 is a wildcard for `bind`,
/// never a destination, so the type cannot hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Port(NonZeroU16);

impl Port {
    pub(crate) fn new(n: u16) -> Option<Port> {
        NonZeroU16::new(n).map(Port)
    }
    pub(crate) fn get(self) -> u16 {
        self.0.get()
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where the system's service table lives.
pub(crate) const SERVICES_PATH: &str = "/etc/services";

/// Schemes and service names every user expects to work, whatever /etc/services says.
const BUILTIN: &[(&str, u16)] = &[
    ("http", 80),
    ("https", 443),
    ("ws", 80),
    ("wss", 443),
    ("ftp", 21),
    ("ssh", 22),
    ("sftp", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("smtps", 465),
    ("submission", 587),
    ("dns", 53),
    ("domain", 53),
    ("pop3", 110),
    ("imap", 143),
    ("imaps", 993),
    ("ldap", 389),
    ("ldaps", 636),
    ("rdp", 3389),
    ("mysql", 3306),
    ("mariadb", 3306),
    ("postgres", 5432),
    ("postgresql", 5432),
    ("redis", 6379),
    ("rediss", 6379),
    ("mongodb", 27017),
    ("amqp", 5672),
    ("amqps", 5671),
    ("mqtt", 1883),
    ("mqtts", 8883),
    ("mssql", 1433),
    ("sqlserver", 1433),
    ("git", 9418),
    ("kafka", 9092),
    ("memcached", 11211),
    ("elasticsearch", 9200),
    ("vnc", 5900),
];

/// A name → TCP port table: the text of /etc/services, looked up on demand.
///
/// Building maps of the whole file (~600 entries) cost 0.3 ms, a fifth of an open loopback
/// check, for the one or two lookups a check makes; a lookup scans the text instead (~20 µs).
/// A run of many targets asks for the name of every port: past [`SCANS_BEFORE_INDEX`]
/// lookups the port → name index is built once (10,000 targets spent 0.2 s scanning).
#[derive(Debug, Default)]
pub struct Services {
    text: String,
    /// Port → the first TCP entry's name, as a byte range of `text`.
    by_port: OnceLock<HashMap<u16, std::ops::Range<usize>>>,
    lookups: AtomicU32,
}

/// How many port lookups scan the text before the index is built.
pub(crate) const SCANS_BEFORE_INDEX: u32 = 16;

impl Clone for Services {
    fn clone(&self) -> Services {
        Services::parse(&self.text)
    }
}

impl Services {
    /// Read /etc/services; a missing or unreadable file leaves only the built-in table. Read
    /// as the resolver's files are ([`crate::dns::files::read_bounded`]): a FIFO or a device
    /// put there would otherwise hold the run in `open` or `read` for ever, before any
    /// deadline applies; a file of bad bytes is decoded lossily, line by line.
    pub(crate) fn load() -> Services {
        let bytes = crate::dns::files::read_bounded(
            std::path::Path::new(SERVICES_PATH),
            crate::dns::files::MAX_FILE,
        )
        .unwrap_or_default();
        Services::parse(&String::from_utf8_lossy(&bytes))
    }

    /// The table of the text of a services(5) file: `name port/proto [aliases…] [# comment]`.
    /// Malformed lines are skipped, as glibc does; the first entry of a name or port counts.
    pub fn parse(text: &str) -> Services {
        Services {
            text: text.to_string(),
            by_port: OnceLock::new(),
            lookups: AtomicU32::new(0),
        }
    }

    /// The port → name index, once enough lookups were made to be worth it.
    fn index(&self) -> Option<&HashMap<u16, std::ops::Range<usize>>> {
        if let Some(i) = self.by_port.get() {
            return Some(i);
        }
        if self.lookups.fetch_add(1, Ordering::Relaxed) < SCANS_BEFORE_INDEX {
            return None;
        }
        Some(self.by_port.get_or_init(|| {
            let base = self.text.as_ptr() as usize;
            let mut map = HashMap::new();
            for (port, name, _) in self.entries() {
                let at = name.as_ptr() as usize - base;
                map.entry(port).or_insert(at..at + name.len());
            }
            map
        }))
    }

    /// Every well-formed TCP entry: its port, its canonical name and its aliases.
    fn entries(&self) -> impl Iterator<Item = (u16, &str, std::str::SplitWhitespace<'_>)> {
        self.text.lines().filter_map(|line| {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let name = words.next()?;
            let (port, proto) = words.next()?.split_once('/')?;
            let port = port.parse::<u16>().ok().filter(|_| proto == "tcp")?;
            Some((port, name, words))
        })
    }

    /// The TCP port of a service name (case-insensitive).
    pub(crate) fn port_of(&self, name: &str) -> Option<Port> {
        self.entries()
            .find_map(|(port, canonical, mut aliases)| {
                (canonical.eq_ignore_ascii_case(name)
                    || aliases.any(|n| n.eq_ignore_ascii_case(name)))
                .then_some(port)
            })
            .or_else(|| {
                BUILTIN
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, p)| *p)
            })
            .and_then(Port::new)
    }

    /// The usual port of a URL scheme: a scheme is a service name by another spelling.
    pub(crate) fn scheme_port(&self, scheme: &str) -> Option<Port> {
        self.port_of(scheme)
    }

    /// The service name of a port, for the report ("5432 (postgresql)").
    pub(crate) fn name_of(&self, port: Port) -> Option<&str> {
        let found = match self.index() {
            Some(index) => index.get(&port.get()).map(|r| &self.text[r.clone()]),
            None => self
                .entries()
                .find(|(p, _, _)| *p == port.get())
                .map(|(_, name, _)| name),
        };
        found.or_else(|| {
            BUILTIN
                .iter()
                .find(|(_, p)| *p == port.get())
                .map(|(n, _)| *n)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_aliases_and_skips_junk() {
        let s = Services::parse(
            "# comment\n\
             tcpmux 1/tcp # TCP port service multiplexer\n\
             echo 7/udp\n\
             myapp 7000/tcp myalias other\n\
             broken notaport/tcp\n\
             lonely\n\
             toolarge 70000/tcp\n",
        );
        assert_eq!(s.port_of("tcpmux").map(Port::get), Some(1));
        assert_eq!(
            s.port_of("echo"),
            None,
            "udp-only entries are not TCP ports"
        );
        assert_eq!(s.port_of("MYALIAS").map(Port::get), Some(7000));
        assert_eq!(s.port_of("other").map(Port::get), Some(7000));
        assert_eq!(s.port_of("broken"), None);
        assert_eq!(s.port_of("toolarge"), None);
    }

    #[test]
    fn builtins_work_without_a_file() {
        let s = Services::parse("");
        assert_eq!(s.scheme_port("postgres").map(Port::get), Some(5432));
        assert_eq!(s.scheme_port("https").map(Port::get), Some(443));
        assert_eq!(s.scheme_port("nonesuch"), None);
    }

    #[test]
    fn parses_the_debian_file_fixture() {
        let s = Services::parse(include_str!("../tests/fixtures/services"));
        assert_eq!(s.port_of("postgresql").map(Port::get), Some(5432));
        assert_eq!(s.port_of("domain").map(Port::get), Some(53));
        assert_eq!(s.name_of(Port::new(22).unwrap()), Some("ssh"));
    }

    #[test]
    fn the_index_of_many_lookups_names_ports_as_the_scan_does() {
        let fixture = include_str!("../tests/fixtures/services");
        let indexed = Services::parse(fixture);
        for _ in 0..=SCANS_BEFORE_INDEX {
            indexed.name_of(Port::new(1).unwrap());
        }
        assert!(indexed.index().is_some());
        // Every port of the file (several entries share a port: the first counts), ports it
        // lacks, and the built-in table's.
        let scan = Services::parse(fixture);
        let ports: Vec<u16> = scan.entries().map(|(p, _, _)| p).chain(1..=1100).collect();
        for p in ports.into_iter().filter_map(Port::new) {
            let want = scan
                .entries()
                .find(|(q, _, _)| *q == p.get())
                .map(|(_, n, _)| n)
                .or_else(|| BUILTIN.iter().find(|(_, q)| *q == p.get()).map(|(n, _)| *n));
            assert_eq!(indexed.name_of(p), want, "port {p}");
        }
    }
}
