//! What a check may do: the options the command line (`cli`) and the exporter's modules
//! (`serve::probe`) set, and the stages read. Plain values, no parsing: the command line's
//! flags are turned into these in `cli`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::session::ask::Ask;
use crate::session::protocols::Selection;
use crate::session::status::StatusSet;
use crate::session::tls::Trust;

/// The default deadline for a whole check.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// When to walk the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TraceMode {
    /// For `filtered` and `unreachable` outcomes of the first address.
    Auto,
    /// Always (the first address).
    Always,
    /// Never.
    Never,
}

/// What to speak once connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Protocol {
    /// From the URL's scheme, else the port's usual service (443 → HTTPS, 993 → TLS, …),
    /// else only what the server does unasked.
    #[default]
    Auto,
    /// Only what the server does unasked: reset, close, greeting or silence.
    Tcp,
    /// A TLS handshake.
    Tls,
    /// One HTTP request.
    Http,
    /// A TLS handshake, then one HTTP request.
    Https,
    /// A service's own opening (PostgreSQL, Redis, MySQL …), without credentials.
    Service(Selection),
    /// A UDP target's request: this service's (DNS, NTP, SNMP …), whatever the port.
    Udp(crate::session::protocols::udp_payloads::UdpService),
}

/// What a check may do.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Everything, DNS included, finishes within this.
    pub timeout: Duration,
    pub trace: TraceMode,
    /// When to inspect this machine's listeners and firewall.
    pub local: LocalMode,
    /// What to speak after the connect.
    pub protocol: Protocol,
    /// Follow the proxy the environment names for a URL target, as the application would
    /// (`--no-proxy`: check the direct path instead).
    pub follow_proxy: bool,
    /// What TLS handshakes trust (`--cacert`, `--insecure`).
    pub trust: Trust,
    /// `--expect-status`: the HTTP statuses that count as working (`None`: 2xx and 3xx).
    pub expect_status: Option<StatusSet>,
    /// What a prober asks of the session stage beyond the usual check (`canreach serve`'s
    /// modules: a method and headers, a TLS name or trust store, a dialogue); `None` for the
    /// CLI.
    pub ask: Option<Arc<Ask>>,
    /// The facts are for a report someone reads; `false` (`-q`): only the verdict counts, and
    /// facts that only explain one are not gathered (this machine's firewall: see
    /// `connect::needs_firewall`).
    pub report: bool,
    /// `--payload`: the datagram for UDP targets (`None`: the port's usual service's
    /// request).
    pub payload: Option<Arc<[u8]>>,
}

/// When to inspect this machine (listeners, owners, firewall).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LocalMode {
    /// When the target is one of this machine's addresses (and the firewall for silence).
    Auto,
    /// Always (`--local`).
    Always,
    /// Never (`--no-local`).
    Never,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: DEFAULT_TIMEOUT,
            trace: TraceMode::Auto,
            local: LocalMode::Auto,
            protocol: Protocol::Auto,
            follow_proxy: true,
            trust: Trust::default(),
            expect_status: None,
            ask: None,
            report: true,
            payload: None,
        }
    }
}

/// An address family (`-4`, `-6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    V4,
    V6,
}

impl Family {
    pub(crate) fn admits(self, ip: IpAddr) -> bool {
        match self {
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }

    pub(crate) fn flag(self) -> &'static str {
        match self {
            Family::V4 => "-4",
            Family::V6 => "-6",
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}
