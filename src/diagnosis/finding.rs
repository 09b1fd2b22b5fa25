//! The typed findings: every id canreach can report, in the order of the strength of their
//! evidence, and the shape of a finding.
//!
//! The id list is the stable contract (snake_case in JSON, one section each in
//! `docs/verdicts.md`; a test fails when the two differ). Each id has exactly one rule in
//! [`super::rule`]: the `match` there is exhaustive, so an id without a rule does not compile.

use std::net::SocketAddr;

use super::advice::{Step, StepKind};

macro_rules! finding_ids {
    ($($(#[$doc:meta])* $variant:ident => $id:literal,)*) => {
        /// What a finding is about. The order is the order of strength: findings are reported,
        /// and their steps planned, in this order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum FindingId {
            $($(#[$doc])* $variant,)*
        }

        impl FindingId {
            /// Every id, strongest first.
            pub const ALL: &'static [FindingId] = &[$(FindingId::$variant,)*];

            /// The id as in the JSON contract and docs/verdicts.md.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(FindingId::$variant => $id,)*
                }
            }
        }
    };
}

finding_ids! {
    /// This machine's own output chain stops the port: the cause, whatever else is seen.
    LocalFirewallOutput => "local_firewall_output",
    /// This machine's input chain stops the port (local targets).
    LocalFirewallInput => "local_firewall_input",
    /// This machine refused to send (its reject ICMP, EACCES/EPERM).
    LocalPolicyReject => "local_policy_reject",
    /// A listener here whose accept queue is full: the kernel drops new SYNs.
    ListenerNotAccepting => "listener_not_accepting",
    /// A silent probe could not wait long enough to conclude: the verdict is `inconclusive`.
    OutOfTime => "out_of_time",
    /// Large packets vanish on the way: the handshake completed only with a smaller MSS.
    MtuBlackhole => "mtu_blackhole",
    /// A program on this machine did not take the connection (`accept()`) within the watch:
    /// it waits in the accept queue, and clients hang.
    ProgramNotAccepting => "program_not_accepting",
    /// The kernel accepted, then the program reset the connection at once.
    AcceptedThenReset => "accepted_then_reset",
    /// The kernel accepted, then the program closed the connection without a word.
    AcceptedThenClosed => "accepted_then_closed",
    /// The server's greeting is a refusal (MySQL error packet, SMTP 421/554 …).
    ServiceRefuses => "service_refuses",
    /// The proxy the application uses wants credentials (407).
    ProxyAuthRequired => "proxy_auth_required",
    /// The proxy refuses a tunnel to this destination (403).
    ProxyForbidden => "proxy_forbidden",
    /// The proxy could not reach the destination (502, 503, 504).
    ProxyUpstreamFailed => "proxy_upstream_failed",
    /// The proxy did not open a tunnel for another reason (another status, no HTTP answer).
    ProxyConnectFailed => "proxy_connect_failed",
    /// Nothing came back after the client's first message.
    NoReply => "no_reply",
    /// A certificate of the chain has expired.
    TlsExpired => "tls_expired",
    /// A certificate of the chain is not valid yet.
    TlsNotYetValid => "tls_not_yet_valid",
    /// The certificate does not name the host.
    TlsWrongName => "tls_wrong_name",
    /// The server sent a self-signed certificate.
    TlsSelfSigned => "tls_self_signed",
    /// The chain ends at an issuer this machine does not trust.
    TlsUnknownIssuer => "tls_unknown_issuer",
    /// The server does not send its intermediate certificate.
    TlsMissingIntermediate => "tls_missing_intermediate",
    /// The server wants a client certificate.
    TlsClientCertRequired => "tls_client_cert_required",
    /// No common TLS version or cipher suite.
    TlsProtocolMismatch => "tls_protocol_mismatch",
    /// The port answered in something other than TLS.
    NotTls => "not_tls",
    /// Another TLS failure (an alert, a hang-up during the handshake).
    TlsFailed => "tls_failed",
    /// Plain HTTP was sent to a port that speaks TLS.
    ExpectsTls => "expects_tls",
    /// The port answered in something other than HTTP.
    NotHttp => "not_http",
    /// HTTP 5xx: the server, or the proxy in front of it, failed.
    HttpServerError => "http_server_error",
    /// HTTP 4xx for the path asked.
    HttpClientError => "http_client_error",
    /// An HTTP status that `--expect-status` does not list (and no other finding explains).
    HttpUnexpectedStatus => "http_unexpected_status",
    /// The server answered the TLS handshake, but only after the retry's wait (≥ 1 s, more
    /// on a slow path).
    SlowHandshake => "slow_handshake",
    /// `--insecure`: the certificate was not verified; what verification would have said.
    TlsNotVerified => "tls_not_verified",
    /// HTTP 3xx: a redirect, and where it points.
    HttpRedirect => "http_redirect",
    /// The server's greeting, identified.
    ServiceBanner => "service_banner",
    /// An HTTP(S) client here would go through a proxy (or be exempted from it).
    ProxyApplies => "proxy_applies",
    /// Through a proxy: what a direct connection to the destination got (never the verdict).
    DirectPath => "direct_path",
    /// A port of this machine answered only the kernel's retried SYN: its listener's accept
    /// queue was full at the first.
    FirstSynDropped => "first_syn_dropped",
    /// Some addresses of the name work, some do not.
    PartialReachability => "partial_reachability",
    /// The kernel connected canreach's socket to itself: nothing listens on the port.
    ConnectedToItself => "connected_to_itself",
    /// A TCP reset.
    PortClosed => "port_closed",
    /// A reject ICMP from the target itself.
    FirewallRejectOnHost => "firewall_reject_on_host",
    /// A reject ICMP from a device on the way.
    FirewallRejectOnPath => "firewall_reject_on_path",
    /// The reject came only for the kernel's retransmitted SYN: the first met a spent ICMP
    /// rate-limit budget.
    IcmpRateLimited => "icmp_rate_limited",
    /// Host/network unreachable from a device, or this machine's failed neighbour lookup.
    HostUnreachable => "host_unreachable",
    /// No route on this machine.
    NoRoute => "no_route",
    /// Another local error at connect().
    LocalError => "local_error",
    /// The port is quiet on a host that answers on other ports.
    HostUpPortDropped => "host_up_port_dropped",
    /// A router reports the host unreachable on the liveness ports.
    HostDown => "host_down",
    /// Nothing answered before the deadline or the silence bound.
    SilentDrop => "silent_drop",
    /// Nothing about the host answers.
    HostNotAnswering => "host_not_answering",
    /// The walk's last answering hop.
    PathEndsAfter => "path_ends_after",
    /// Not even the first hop answered the walk.
    PathNoAnswer => "path_no_answer",
    /// Nothing listens on the port on this machine.
    NothingListensHere => "nothing_listens_here",
    /// The port's usual server runs, on another port.
    UsualServerElsewhere => "usual_server_elsewhere",
    /// The port's usual server is not running.
    UsualServerNotRunning => "usual_server_not_running",
    /// Listeners on loopback only; another address of this machine was dialled.
    ListensOnLoopbackOnly => "listens_on_loopback_only",
    /// Listeners of the other address family only.
    ListensOnOtherFamily => "listens_on_other_family",
    /// Listeners on another specific address of this machine.
    BoundToOtherAddress => "bound_to_other_address",
    /// The port's owner is a container runtime's proxy.
    ContainerProxy => "container_proxy",
    /// A listener's process calls itself a known server but runs another executable.
    OwnerNameMismatch => "owner_name_mismatch",
    /// A listener's process cannot be seen without root.
    OwnerHidden => "owner_hidden",
    /// This machine's firewall could not be read.
    FirewallNotInspected => "firewall_not_inspected",
    /// The addresses' failures differ.
    AddressesDisagree => "addresses_disagree",
    /// The name does not exist.
    DnsNxdomain => "dns_nxdomain",
    /// The name has no address record.
    DnsNodata => "dns_nodata",
    /// The name server failed.
    DnsServfail => "dns_servfail",
    /// The name server refused.
    DnsRefused => "dns_refused",
    /// No name server answered.
    DnsTimeout => "dns_timeout",
    /// No name server is configured.
    DnsNoNameservers => "dns_no_nameservers",
    /// Any other resolver failure.
    DnsFailed => "dns_failed",
    /// The name has only IPv6 addresses and this machine no IPv6 route.
    Ipv6OnlyName => "ipv6_only_name",
    /// The name is only in /etc/hosts.
    NameOnlyInHosts => "name_only_in_hosts",
    /// An /etc/hosts line overrides DNS.
    HostsOverride => "hosts_override",
    /// Something local (nsswitch, mDNS, a cache) answers instead of DNS.
    SystemDiffersFromDns => "system_differs_from_dns",
    /// The configured name servers disagree.
    ServersDisagree => "servers_disagree",
    /// resolv.conf lists more name servers than glibc uses (MAXNS = 3).
    ExtraNameserversIgnored => "extra_nameservers_ignored",
    /// The name resolved only with a search domain appended.
    SearchDomainUsed => "search_domain_used",
    /// ndots made the resolver try search names first.
    NdotsSearchFirst => "ndots_search_first",
}

/// How loud a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// Something the check found: what it means, and the steps it proposes. The steps are a
/// proposal: the planner ([`super::advice::plan`]) decides which are given, once each.
/// `message` is escaped ([`Finding::new`]): no format shows a raw control or bidi character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub id: FindingId,
    pub severity: Severity,
    pub message: String,
    pub steps: Vec<Step>,
    /// Kinds of step this finding's evidence makes pointless, whoever proposes them (a host
    /// proven down needs no hunt for a firewall rule).
    pub rules_out: Vec<StepKind>,
    /// For a finding about what the kernel said for some addresses: the first of them. Such
    /// findings are reported in the order clients try their addresses, so the verdict's own
    /// evidence comes first.
    pub about: Option<SocketAddr>,
}

impl Finding {
    /// A finding saying `message`. The message is escaped here ([`crate::escape::escape`]), once
    /// for every format: it quotes outside text (banners, certificate subjects, headers,
    /// command lines), and canreach's own words have nothing to escape, so escaping the whole
    /// sentence is escaping what it quotes.
    pub fn new(id: FindingId, severity: Severity, message: impl Into<String>) -> Finding {
        Finding {
            id,
            severity,
            message: crate::escape::escape_owned(message.into()),
            steps: vec![],
            rules_out: vec![],
            about: None,
        }
    }

    /// Say which address (the first of those it explains) the finding is about.
    pub fn about(mut self, address: SocketAddr) -> Finding {
        self.about = Some(address);
        self
    }

    /// Add proposed steps.
    pub fn steps(mut self, steps: impl IntoIterator<Item = Step>) -> Finding {
        self.steps.extend(steps);
        self
    }

    /// Add step kinds this finding rules out.
    pub fn rules_out(mut self, kinds: &[StepKind]) -> Finding {
        self.rules_out.extend_from_slice(kinds);
        self
    }
}

impl PartialEq<&str> for FindingId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for id in FindingId::ALL {
            let s = id.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(
                s.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()),
                "{s}"
            );
        }
    }

    /// docs/verdicts.md documents exactly the ids that exist: every id has its row, and every
    /// id-looking name in the findings table exists.
    #[test]
    fn docs_name_exactly_the_ids_that_exist() {
        let docs = include_str!("../../docs/verdicts.md");
        let table = docs
            .split("## Findings")
            .nth(1)
            .expect("docs/verdicts.md has a `## Findings` section");
        let documented: Vec<&str> = table
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .collect();
        for id in FindingId::ALL {
            assert!(
                documented.contains(&id.as_str()),
                "finding {} is not documented in docs/verdicts.md",
                id.as_str()
            );
        }
        for d in &documented {
            assert!(
                FindingId::ALL.iter().any(|id| id.as_str() == *d),
                "docs/verdicts.md documents `{d}`, which is no finding id"
            );
        }
    }
}
