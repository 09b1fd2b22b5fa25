//! Where a check was run from, for `--format markdown` (a ticket): host name, OS and kernel,
//! interfaces and addresses, default routes, name servers, proxy variables (values masked),
//! the time in UTC and canreach's version. Gathered only in that mode; `sysinfo` reads the
//! host facts, the routes come from /proc/net/route and /proc/net/ipv6_route.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::secrets::{MASK, mask as mask_secrets};

/// The proxy variables curl, pip, apt and most HTTP clients read.
pub(crate) const PROXY_VARIABLES: [&str; 10] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "ftp_proxy",
    "FTP_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// The facts about this machine a ticket needs. Strings are raw: the renderer escapes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HostInfo {
    pub host_name: Option<String>,
    pub os: Option<String>,
    pub kernel: Option<String>,
    /// Interface name and its addresses (`addr/prefix`), sorted by name.
    pub interfaces: Vec<(String, Vec<String>)>,
    /// `default via GATEWAY dev IFACE`, IPv4 first.
    pub routes: Vec<String>,
    pub name_servers: Vec<String>,
    /// Proxy variables that are set, with their value masked.
    pub proxies: Vec<(String, String)>,
    /// `2026-11-26 07:30:00 UTC`.
    pub time_utc: String,
    pub version: &'static str,
}

impl HostInfo {
    /// Read it all (a few ms; only for Markdown).
    pub(crate) fn gather() -> HostInfo {
        let mut interfaces: Vec<(String, Vec<String>)> =
            sysinfo::Networks::new_with_refreshed_list()
                .map(|nets| {
                    (&nets)
                        .into_iter()
                        .map(|(name, data)| {
                            let mut addrs: Vec<String> =
                                data.ip_networks().iter().map(|n| n.to_string()).collect();
                            addrs.sort();
                            (name.to_string_lossy().into_owned(), addrs)
                        })
                        .collect()
                })
                .unwrap_or_default();
        interfaces.sort();
        let mut routes = std::fs::read_to_string("/proc/net/route")
            .map(|t| default_routes_v4(&t))
            .unwrap_or_default();
        routes.extend(
            std::fs::read_to_string("/proc/net/ipv6_route")
                .map(|t| default_routes_v6(&t))
                .unwrap_or_default(),
        );
        HostInfo {
            host_name: sysinfo::System::host_name().ok(),
            // sysinfo reads these with a blocking `open`: a FIFO there would hang the run.
            os: ["/etc/os-release", "/etc/lsb-release"]
                .iter()
                .all(|p| crate::dns::files::regular_or_absent(std::path::Path::new(p)))
                .then(sysinfo::System::long_os_version)
                .and_then(Result::ok),
            kernel: sysinfo::System::kernel_version().ok(),
            interfaces,
            routes,
            name_servers: crate::dns::files::read_resolv_conf()
                .map(|r| r.nameservers.iter().map(|ip| ip.to_string()).collect())
                .unwrap_or_default(),
            proxies: PROXY_VARIABLES
                .iter()
                .filter_map(|v| {
                    let value = std::env::var(v).ok().filter(|s| !s.is_empty())?;
                    Some((v.to_string(), mask_proxy(&value)))
                })
                .collect(),
            time_utc: utc_now(),
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// A proxy value with any credentials masked: `http://u:***@proxy:3128`, `***@proxy:3128`.
pub(crate) fn mask_proxy(value: &str) -> String {
    let masked = mask_secrets(value).into_owned();
    if masked.contains("://") {
        // A user name alone can be a token too.
        let (scheme, rest) = masked.split_once("://").unwrap_or(("", &masked));
        return match rest.split_once('@') {
            Some((user, host)) if !user.ends_with(MASK) => format!("{scheme}://{MASK}@{host}"),
            _ => masked,
        };
    }
    match masked.rsplit_once('@') {
        Some((_, host)) => format!("{MASK}@{host}"),
        None => masked,
    }
}

/// Default routes from /proc/net/route: `Iface Destination Gateway Flags … Mask …`, addresses
/// as little-endian hex.
pub(crate) fn default_routes_v4(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (iface, dest, gw, mask) = (f.first()?, f.get(1)?, f.get(2)?, f.get(7)?);
            if *dest != "00000000" || *mask != "00000000" {
                return None;
            }
            let gw = u32::from_str_radix(gw, 16).ok()?;
            let gw = Ipv4Addr::from(gw.swap_bytes());
            Some(if gw.is_unspecified() {
                format!("default dev {iface}")
            } else {
                format!("default via {gw} dev {iface}")
            })
        })
        .collect()
}

/// Default routes from /proc/net/ipv6_route: `dest plen src plen nexthop metric ref use flags
/// iface`; the kernel's reject routes on `lo` are left out.
pub(crate) fn default_routes_v6(text: &str) -> Vec<String> {
    const RTF_REJECT: u32 = 0x0200;
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 10 || f[0] != "0".repeat(32) || f[1] != "00" {
                return None;
            }
            let flags = u32::from_str_radix(f[8], 16).ok()?;
            if flags & RTF_REJECT != 0 || f[9] == "lo" {
                return None;
            }
            let gw = Ipv6Addr::from(u128::from_str_radix(f[4], 16).ok()?);
            Some(if gw.is_unspecified() {
                format!("default dev {} (IPv6)", f[9])
            } else {
                format!("default via {gw} dev {} (IPv6)", f[9])
            })
        })
        .collect()
}

/// The time now, `YYYY-MM-DD HH:MM:SS UTC` (civil from days, Howard Hinnant's algorithm).
pub(crate) fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    crate::facts::utc_seconds(i64::try_from(secs).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_from_proc() {
        let v4 = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                  eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
                  eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(default_routes_v4(v4), ["default via 192.168.1.1 dev eth0"]);
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n\
                  00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 lo\n";
        assert_eq!(
            default_routes_v6(v6),
            ["default via fe80::1 dev eth0 (IPv6)"]
        );
    }

    #[test]
    fn proxy_values_are_masked() {
        assert_eq!(
            mask_proxy("http://u:pw@proxy:3128"),
            "http://u:***@proxy:3128"
        );
        assert_eq!(mask_proxy("http://tok@proxy:3128"), "http://***@proxy:3128");
        assert_eq!(mask_proxy("u:pw@proxy:3128"), "***@proxy:3128");
        assert_eq!(mask_proxy("http://proxy:3128"), "http://proxy:3128");
        assert_eq!(mask_proxy("localhost,.internal"), "localhost,.internal");
    }

    #[test]
    fn utc_dates() {
        use crate::facts::utc_seconds as utc;
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_795_000_000), "2026-11-18 11:06:40 UTC");
    }
}
