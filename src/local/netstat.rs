//! `/proc/net/netstat`: the kernel's TCP counters for this network namespace, of which canreach
//! reads the ones that count SYNs dropped at a full accept queue (`ListenOverflows`,
//! `ListenDrops`, as `nstat` names them). [`read`] reads the file (bounded); [`parse`] is tested
//! on a captured fixture.

/// The accept-queue counters, since boot, for this network namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenCounters {
    /// SYNs that found a full accept queue.
    pub overflows: u64,
    /// SYNs dropped on a listener for any reason (overflows included).
    pub drops: u64,
}

/// Read the counters; `None` when the file cannot be read or lacks them.
pub(crate) fn read() -> Option<ListenCounters> {
    let bytes =
        crate::dns::files::read_bounded(std::path::Path::new("/proc/net/netstat"), 64 << 10)
            .ok()?;
    parse(&String::from_utf8_lossy(&bytes))
}

/// `net.ipv4.tcp_syn_linear_timeouts` of this network namespace: how many of a connecting
/// socket's SYN retries come at the first timeout (1 s) before the waits double; `None` where
/// the kernel has no such setting (before Linux 6.7: the waits double from the first retry).
pub fn syn_linear_timeouts() -> Option<u32> {
    let path = std::path::Path::new("/proc/sys/net/ipv4/tcp_syn_linear_timeouts");
    parse_number(&crate::dns::files::read_bounded(path, 64).ok()?)
}

/// A sysctl file's one number.
pub fn parse_number(bytes: &[u8]) -> Option<u32> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

/// Find `TcpExt: … ListenOverflows ListenDrops …` and its line of values.
pub fn parse(text: &str) -> Option<ListenCounters> {
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let names: Vec<&str> = lines.next()?.split_whitespace().collect();
    let values: Vec<&str> = lines.next()?.split_whitespace().collect();
    let get = |name: &str| {
        let i = names.iter().position(|n| *n == name)?;
        values.get(i)?.parse().ok()
    };
    Some(ListenCounters {
        overflows: get("ListenOverflows")?,
        drops: get("ListenDrops")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_listen_counters() {
        let c = parse(include_str!("../../tests/fixtures/proc_net_netstat")).unwrap();
        assert_eq!(
            c,
            ListenCounters {
                overflows: 3,
                drops: 3
            }
        );
        assert_eq!(parse("TcpExt: A B\nTcpExt: 1\n"), None);
        assert_eq!(parse(""), None);
        assert!(read().is_some(), "this machine's own counters");
    }
}
