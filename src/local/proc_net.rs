//! `/proc/net/tcp` and `/proc/net/tcp6`: the kernel's socket table, parsed.
//!
//! [`read`] reads the files; [`parse`] turns their text into [`SocketEntry`]s and is tested on
//! fixtures. Addresses are printed by the kernel as 32-bit words in host byte order (`%08X`),
//! so each word is converted back with `to_ne_bytes`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// TCP_LISTEN in the `st` column.
pub(crate) const LISTEN: u8 = 0x0A;

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SocketEntry {
    pub local: SocketAddr,
    pub state: u8,
    pub uid: u32,
    pub inode: u64,
    /// For a listener: connections waiting to be accepted (the `rx_queue` column).
    pub queued: u32,
    /// For a listener: the accept queue's limit; not in /proc/net/tcp (`None` there).
    pub backlog: Option<u32>,
}

/// Read both tables. A missing or unreadable file (no IPv6, a restricted /proc) gives no rows.
pub(crate) fn read() -> Vec<SocketEntry> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| read_all(p).ok())
        .flat_map(|text| parse(&text))
        .collect()
}

/// Read a /proc table in few, large reads: the kernel walks its whole socket hash table to
/// produce these files, and each small read resumes that walk.
fn read_all(path: &str) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = Vec::with_capacity(256 * 1024);
    let mut chunk = vec![0u8; 256 * 1024];
    loop {
        match f.read(&mut chunk)? {
            0 => break,
            n => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Parse the text of `/proc/net/tcp` or `/proc/net/tcp6`; malformed rows are skipped.
pub fn parse(text: &str) -> Vec<SocketEntry> {
    text.lines().skip(1).filter_map(parse_row).collect()
}

fn parse_row(line: &str) -> Option<SocketEntry> {
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 10 {
        return None;
    }
    let local = parse_addr(f[1])?;
    let state = u8::from_str_radix(f[3], 16).ok()?;
    let uid = f[7].parse().ok()?;
    let inode = f[9].parse().ok()?;
    // tx_queue:rx_queue; for a listener rx_queue is its accept queue's length.
    let queued = f[4]
        .split_once(':')
        .and_then(|(_, rx)| u32::from_str_radix(rx, 16).ok())
        .unwrap_or(0);
    Some(SocketEntry {
        local,
        state,
        uid,
        inode,
        queued,
        backlog: None,
    })
}

fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(ip)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(&ip[i * 8..i * 8 + 8])?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// One `%08X` word back to the bytes it was printed from.
fn word(hex: &str) -> Option<[u8; 4]> {
    u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ipv4_listeners_and_connections() {
        let rows = parse(include_str!("../../tests/fixtures/proc_net_tcp"));
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].local, "127.0.0.1:5432".parse().unwrap());
        assert_eq!(
            (rows[0].state, rows[0].uid, rows[0].inode),
            (LISTEN, 105, 23456)
        );
        assert_eq!(rows[1].local, "0.0.0.0:22".parse().unwrap());
        assert_eq!(
            (rows[0].queued, rows[1].queued),
            (0, 1),
            "rx_queue of a listener"
        );
        assert_eq!(rows[2].state, 0x01, "an established connection");
    }

    #[test]
    fn parses_ipv6_listeners() {
        let rows = parse(include_str!("../../tests/fixtures/proc_net_tcp6"));
        assert_eq!(rows[0].local, "[::1]:8080".parse().unwrap());
        assert_eq!(rows[1].local, "[::]:22".parse().unwrap());
        assert_eq!(rows[2].local, "[fd00:2::2]:443".parse().unwrap());
        assert!(rows.iter().all(|r| r.state == LISTEN));
    }

    #[test]
    fn skips_garbage() {
        assert!(parse("header\nnot a row\n  0: zz:zz 0:0 0A\n").is_empty());
    }

    #[test]
    fn reads_this_machines_table() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        assert!(read().iter().any(|e| e.local == addr && e.state == LISTEN));
    }
}
