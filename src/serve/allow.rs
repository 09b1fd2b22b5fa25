//! `--allow`: what this exporter may probe.
//!
//! Without it the exporter is an open prober: anyone who can reach its port can make this
//! machine connect to any host and port it can reach (an internal database, a cloud metadata
//! address, a port scan of the network behind it) and read back what answered. With it, a
//! target is probed only when its host, as written in the target, is an address inside one of
//! the CIDRs, or a name matching one of the patterns (`db.example.com`, `*.example.com`).
//! Names are matched as written, never by what they resolve to: a name outside the patterns
//! is refused even when its addresses are inside a CIDR, and a name inside is probed whatever
//! it resolves to (the patterns trust those names' DNS).

use std::net::IpAddr;

use ipnet::IpNet;

use crate::target::Host;

/// The parsed `--allow` list; empty: everything.
#[derive(Debug, Clone, Default)]
pub(crate) struct Allow {
    nets: Vec<IpNet>,
    names: Vec<Pattern>,
    any: bool,
}

#[derive(Debug, Clone)]
enum Pattern {
    Exact(String),
    /// `*.example.com`: any name under `example.com` (not the name itself).
    Under(String),
}

impl Allow {
    /// Parse the list (comma-separated entries, the flag repeated or not).
    pub fn parse(entries: &[String]) -> Result<Allow, String> {
        let mut allow = Allow::default();
        let mut given = 0;
        for raw in entries.iter().flat_map(|e| e.split(',')) {
            let e = raw.trim();
            if e.is_empty() {
                continue;
            }
            given += 1;
            if e == "*" {
                allow.any = true;
            } else if let Ok(net) = e.parse::<IpNet>() {
                allow.nets.push(net.trunc());
            } else if let Ok(ip) = e.parse::<IpAddr>() {
                allow.nets.push(IpNet::from(ip));
            } else {
                let lower = e.trim_end_matches('.').to_ascii_lowercase();
                let (under, name) = match lower.strip_prefix("*.") {
                    Some(n) => (true, n.to_string()),
                    None => (false, lower.clone()),
                };
                let ok = !name.is_empty()
                    && name.len() <= 253
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
                if !ok {
                    return Err(format!(
                        "--allow: `{}` is neither a CIDR, an address nor a name pattern (db.example.com, *.example.com)",
                        crate::escape::escape(e)
                    ));
                }
                allow.names.push(if under {
                    Pattern::Under(name)
                } else {
                    Pattern::Exact(name)
                });
            }
        }
        if entries.iter().any(|e| !e.trim().is_empty()) && given == 0 {
            return Err("--allow: the list is empty".into());
        }
        if given == 0 {
            allow.any = true;
        }
        Ok(allow)
    }

    /// No list was given: every target is probed.
    pub(crate) fn is_open(&self) -> bool {
        self.any
    }

    /// May `host` be probed?
    pub(crate) fn admits(&self, host: &Host) -> bool {
        if self.any {
            return true;
        }
        match host {
            Host::Ip(ip) => {
                let ip = match ip {
                    IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(*ip, IpAddr::V4),
                    v4 => *v4,
                };
                self.nets.iter().any(|n| n.contains(&ip))
            }
            Host::Name(n) => {
                let n = n.trim_end_matches('.').to_ascii_lowercase();
                self.names.iter().any(|p| match p {
                    Pattern::Exact(e) => *e == n,
                    Pattern::Under(base) => {
                        n.len() > base.len() + 1
                            && n.ends_with(base.as_str())
                            && n.as_bytes()[n.len() - base.len() - 1] == b'.'
                    }
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(s: &str) -> Host {
        match s.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Name(s.into()),
        }
    }

    #[test]
    fn cidrs_addresses_and_name_patterns() {
        let a = Allow::parse(&[
            "10.0.0.0/8,2001:db8::/32".into(),
            "*.example.com".into(),
            "db.test".into(),
            "192.0.2.7".into(),
        ])
        .unwrap();
        assert!(!a.is_open());
        assert!(a.admits(&host("10.1.2.3")));
        assert!(a.admits(&host("::ffff:10.1.2.3")));
        assert!(a.admits(&host("2001:db8::1")));
        assert!(a.admits(&host("192.0.2.7")));
        assert!(!a.admits(&host("192.0.2.8")));
        assert!(!a.admits(&host("169.254.169.254")));
        assert!(a.admits(&host("www.Example.com.")));
        assert!(!a.admits(&host("example.com")));
        assert!(!a.admits(&host("evilexample.com")));
        assert!(a.admits(&host("db.test")));
        assert!(!a.admits(&host("db.test.evil")));
    }

    #[test]
    fn no_list_is_open_and_bad_entries_are_refused() {
        assert!(Allow::parse(&[]).unwrap().is_open());
        assert!(
            Allow::parse(&["*".into()])
                .unwrap()
                .admits(&host("anything"))
        );
        assert!(Allow::parse(&["a b".into()]).is_err());
        assert!(Allow::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(Allow::parse(&[",".into()]).is_err());
    }
}
