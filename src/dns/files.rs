//! The resolver's files: /etc/hosts and /etc/resolv.conf, each read apart from its parsing.
//!
//! `ip netns exec` bind-mounts /etc/netns/NAME/{hosts,resolv.conf} over these paths, so the lab
//! tests give each namespace its own.

use std::net::IpAddr;
use std::time::Duration;

pub const HOSTS_PATH: &str = "/etc/hosts";
pub const RESOLV_PATH: &str = "/etc/resolv.conf";

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

/// Read /etc/hosts and find `name` in it (missing file: no lines).
pub fn hosts_lines(name: &str) -> Vec<HostsLine> {
    std::fs::read_to_string(HOSTS_PATH)
        .map(|t| parse_hosts(&t, name))
        .unwrap_or_default()
}

/// The lines of a hosts(5) text that give an address for `name` (case-insensitive, trailing
/// dot ignored), in file order — the order glibc uses.
pub fn parse_hosts(text: &str, name: &str) -> Vec<HostsLine> {
    let want = name.trim_end_matches('.').to_ascii_lowercase();
    text.lines()
        .enumerate()
        .filter_map(|(i, raw)| {
            let line = raw.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let address: IpAddr = words.next()?.parse().ok()?;
            words
                .any(|w| w.trim_end_matches('.').eq_ignore_ascii_case(&want))
                .then(|| HostsLine {
                    file: HOSTS_PATH,
                    line: i + 1,
                    address,
                    text: raw.trim().to_string(),
                })
        })
        .collect()
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

/// Read and parse /etc/resolv.conf. `None` when it cannot be read or has no `nameserver`.
pub fn read_resolv_conf() -> Option<ResolvConf> {
    parse_resolv_conf(&std::fs::read(RESOLV_PATH).ok()?)
}

/// Parse resolv.conf text with hickory's parser (the same reading the DNS view uses).
pub fn parse_resolv_conf(text: &[u8]) -> Option<ResolvConf> {
    let (config, opts) = hickory_resolver::system_conf::parse_resolv_conf(text).ok()?;
    let mut nameservers: Vec<IpAddr> = Vec::new();
    for ns in config.name_servers() {
        if !nameservers.contains(&ns.ip) {
            nameservers.push(ns.ip);
        }
    }
    let mut search: Vec<String> = config.domain().map(|d| d.to_string()).into_iter().collect();
    search.extend(config.search().iter().map(|n| n.to_string()));
    search.dedup();
    Some(ResolvConf {
        nameservers,
        search: search
            .iter()
            .map(|s| s.trim_end_matches('.').to_string())
            .collect(),
        ndots: opts.ndots,
        timeout: opts.timeout,
        attempts: opts.attempts,
    })
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
}
