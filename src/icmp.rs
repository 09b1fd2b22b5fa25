//! One meaning per ICMP message: the single table of (type, code) → meaning, for ICMPv4 and
//! ICMPv6, used by the probe's classification, liveness, the path walk and the diagnosis alike.
//!
//! Before this table there were three, and they disagreed (v4 codes 11 and 12, v6 code 2).
//! Sources: RFC 792 and RFC 1812 §5.2.7.1 (v4), RFC 4443 §3 (v6), and what Linux sends for each
//! nftables `reject with …` (`docs/ground-truth/linux-probing.md`).

use std::net::IpAddr;

/// An ICMP / ICMPv6 error the kernel queued for a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmp {
    /// `true` for ICMPv6 (type numbers differ between the two).
    pub v6: bool,
    pub kind: u8,
    pub code: u8,
    /// Who sent it: the device that rejected or could not forward the SYN.
    pub from: Option<IpAddr>,
}

impl Icmp {
    /// An ICMPv4 error of type `kind` and `code` from `from` (an IP address).
    #[cfg(test)]
    pub(crate) fn v4(kind: u8, code: u8, from: &str) -> Icmp {
        Icmp {
            v6: false,
            kind,
            code,
            from: Some(from.parse().unwrap()),
        }
    }

    /// Was it sent by `ip`? A v4-mapped address (`::ffff:198.18.2.2`, what an IPv6 socket
    /// dials for an IPv4 host) and its plain form are one host: the kernel reports the sender
    /// of an ICMPv4 error in the plain form.
    pub(crate) fn sent_by(&self, ip: IpAddr) -> bool {
        self.from.is_some_and(|f| same_host(f, ip))
    }
}

/// Are `a` and `b` one address, in the plain or the v4-mapped form?
pub(crate) fn same_host(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

/// What an ICMP error says about a TCP connection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Meaning {
    /// Port unreachable. For TCP only a firewall sends it: a host answers a closed port with
    /// a reset.
    PortUnreachable,
    /// Administratively prohibited (and its relatives: protocol unreachable, precedence,
    /// failed source policy, reject route): a firewall's reject.
    Prohibited,
    /// The host could not be reached (a failed ARP / neighbour discovery), or a firewall that
    /// imitates that.
    HostUnreachable,
    /// The network could not be reached: no route at that device.
    NetUnreachable,
    /// TTL / hop limit exceeded: a router on the way (the path walk's answer).
    TimeExceeded,
    /// Fragmentation needed (v4 3/4) / packet too big (v6 2): path-MTU discovery.
    PacketTooBig,
    /// Anything else (source route failed, parameter problem, …).
    Other,
}

impl Meaning {
    /// The words people search for.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Meaning::PortUnreachable => "port-unreachable",
            Meaning::Prohibited => "administratively-prohibited",
            Meaning::HostUnreachable => "host-unreachable",
            Meaning::NetUnreachable => "network-unreachable",
            Meaning::TimeExceeded => "time-exceeded",
            Meaning::PacketTooBig => "packet-too-big",
            Meaning::Other => "error",
        }
    }

    /// The device could not deliver to the destination at all (host or network unreachable).
    pub(crate) fn undeliverable(self) -> bool {
        matches!(self, Meaning::HostUnreachable | Meaning::NetUnreachable)
    }

    /// A firewall's reject (port-unreachable or prohibited).
    pub(crate) fn is_reject(self) -> bool {
        matches!(self, Meaning::PortUnreachable | Meaning::Prohibited)
    }
}

impl Icmp {
    /// The meaning of this message (the one table).
    pub(crate) fn meaning(&self) -> Meaning {
        meaning(self.v6, self.kind, self.code)
    }
}

/// The table.
pub(crate) fn meaning(v6: bool, kind: u8, code: u8) -> Meaning {
    use Meaning::*;
    match (v6, kind, code) {
        // ICMPv4 destination unreachable (type 3).
        (false, 3, 3) => PortUnreachable,
        // 2 protocol unreachable (`reject with icmp prot-unreachable`), 9/10 network/host
        // prohibited, 13 communication prohibited, 14 precedence violation, 15 precedence cutoff.
        (false, 3, 2 | 9 | 10 | 13 | 14 | 15) => Prohibited,
        // 1 host unreachable, 7 host unknown, 12 host unreachable for TOS.
        (false, 3, 1 | 7 | 12) => HostUnreachable,
        // 0 net unreachable, 6 net unknown, 11 net unreachable for TOS.
        (false, 3, 0 | 6 | 11) => NetUnreachable,
        (false, 3, 4) => PacketTooBig,
        (false, 11, _) => TimeExceeded,
        // ICMPv6 destination unreachable (type 1).
        (true, 1, 4) => PortUnreachable,
        // 1 administratively prohibited, 5 source address failed policy, 6 reject route.
        (true, 1, 1 | 5 | 6) => Prohibited,
        // 3 address unreachable (neighbour discovery failed).
        (true, 1, 3) => HostUnreachable,
        // 0 no route, 2 beyond the scope of the source address.
        (true, 1, 0 | 2) => NetUnreachable,
        (true, 2, _) => PacketTooBig,
        (true, 3, _) => TimeExceeded,
        _ => Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unreachable_code_has_one_meaning() {
        // v4 type 3: codes 0..=15.
        let v4: Vec<Meaning> = (0..=15).map(|c| meaning(false, 3, c)).collect();
        use Meaning::*;
        assert_eq!(
            v4,
            [
                NetUnreachable,
                HostUnreachable,
                Prohibited,
                PortUnreachable,
                PacketTooBig,
                Other,
                NetUnreachable,
                HostUnreachable,
                Other,
                Prohibited,
                Prohibited,
                NetUnreachable,
                HostUnreachable,
                Prohibited,
                Prohibited,
                Prohibited,
            ]
        );
        let v6: Vec<Meaning> = (0..=6).map(|c| meaning(true, 1, c)).collect();
        assert_eq!(
            v6,
            [
                NetUnreachable,
                Prohibited,
                NetUnreachable,
                HostUnreachable,
                PortUnreachable,
                Prohibited,
                Prohibited,
            ]
        );
        assert_eq!(meaning(false, 11, 0), TimeExceeded);
        assert_eq!(meaning(true, 3, 0), TimeExceeded);
        assert_eq!(meaning(true, 2, 0), PacketTooBig);
        // v6 type 3 is time-exceeded; v4 type 3 is unreachable: the family matters.
        assert_ne!(meaning(false, 3, 0), meaning(true, 3, 0));
    }
}
