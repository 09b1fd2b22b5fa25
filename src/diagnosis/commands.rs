//! Every command canreach advises, built in one place from typed parameters.
//!
//! Findings name a [`Command`]; only [`Command::render`] turns it into the text a person pastes.
//! That keeps the same check worded the same way everywhere (the planner can then tell two
//! steps are one), quotes whatever came from outside (`escape::shell_word`: a table can be
//! named `a b;$(id)` through `nft -j -f`), and adds `sudo` only where it is needed and canreach
//! is not already root.

use std::net::IpAddr;

use crate::escape::shell_word as quote;

/// A command template with its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Command {
    /// Every listener on a port, with its process.
    SsListening {
        port: u16,
    },
    /// Every UDP socket bound to a port, with its process.
    SsUdp {
        port: u16,
    },
    /// A listener's accept queue (Recv-Q) against its limit (Send-Q); no process names, so no
    /// root needed.
    SsQueue {
        port: u16,
    },
    /// What a process is doing: its state, how long it runs, where it waits.
    ProcessState {
        pid: u32,
    },
    /// The listening sockets of one process.
    SsOfPid {
        pid: u32,
    },
    /// nftables rules mentioning the port (and a verdict word, when given).
    NftGrep {
        port: u16,
        verdict: Option<&'static str>,
    },
    /// The output-hook chains of the ruleset.
    NftOutputChains,
    /// Every `reject` rule, with the lines before it (its chain).
    NftRejectRules,
    /// One chain with rule handles.
    NftChain {
        family: String,
        table: String,
        chain: String,
    },
    /// Delete one rule by handle.
    NftDeleteRule {
        family: String,
        table: String,
        chain: String,
        handle: u64,
    },
    /// The iptables rules, both families.
    IptablesRules,
    /// The route the system would take.
    IpRouteGet(IpAddr),
    /// A TCP traceroute to the port.
    Traceroute {
        port: u16,
        address: IpAddr,
    },
    /// canreach itself, on another port of the host.
    CanreachPort {
        host: String,
        port: u16,
    },
    /// canreach again, as root.
    CanreachAsRoot {
        args: String,
    },
    /// canreach again with these options (canreach's own, not quoted) before the arguments.
    Canreach {
        options: &'static str,
        args: String,
    },
    /// `dig` as a name server sees it.
    Dig {
        server: Option<IpAddr>,
        name: String,
        mode: DigMode,
    },
    /// What applications get for a name.
    Getent {
        name: String,
    },
    /// What applications get against what DNS says.
    GetentAndDig {
        name: String,
    },
    /// The resolver configuration.
    ResolvConf,
    /// The order of name sources.
    NsswitchHosts,
    /// systemd-resolved's view.
    Resolvectl {
        name: String,
    },
    /// One line of a file.
    ShowLine {
        file: String,
        line: usize,
    },
    SystemctlStatus {
        unit: &'static str,
    },
    SystemctlStart {
        unit: &'static str,
    },
    SystemctlRestart {
        unit: &'static str,
    },
    Journal {
        unit: &'static str,
    },
    /// This machine's clock and its synchronisation.
    Timedatectl,
    /// Refresh this machine's CA certificates.
    UpdateCaCertificates,
    /// The container that publishes a port.
    DockerPublishing {
        port: u16,
    },
    /// The certificate chain a TLS server sends, as openssl shows it (`host` an address or a
    /// name; `server_name` the name asked for, when there is one; through `proxy`, an HTTP
    /// proxy's `host:port`, when the application uses one).
    TlsChain {
        host: String,
        port: u16,
        server_name: Option<String>,
        proxy: Option<String>,
    },
    /// Trust a CA certificate (a PEM file) on this machine: Debian's and Ubuntu's store.
    TrustCa {
        file: &'static str,
    },
    /// `service UNIT status|start|restart`: the init scripts' wrapper, on a machine without
    /// systemd.
    Service {
        unit: &'static str,
        action: &'static str,
    },
    /// The range of source ports this machine hands out, and the ports kept out of it.
    SysctlPortRange,
    /// How many sockets of each kind and state this machine holds (no root needed).
    SsSummary,
    /// This machine's addresses of one family (`ip -6 addr show` when `v6`), with their
    /// states (tentative, deprecated).
    IpAddresses {
        v6: bool,
    },
}

/// What a `dig` asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigMode {
    /// The full answer with its status line.
    Plain,
    /// With DNSSEC checking disabled (`+cd`).
    NoDnssecCheck,
    /// The records the name has.
    Any,
    /// The A and the AAAA records.
    AddressRecords,
}

impl Command {
    /// Does the command need root to say everything (process names, firewall rules)?
    fn needs_root(&self) -> bool {
        use Command::*;
        matches!(
            self,
            SsListening { .. }
                | SsUdp { .. }
                | SsOfPid { .. }
                | NftGrep { .. }
                | NftOutputChains
                | NftRejectRules
                | NftChain { .. }
                | NftDeleteRule { .. }
                | IptablesRules
                | Traceroute { .. }
                | SystemctlStart { .. }
                | SystemctlRestart { .. }
                | ShowLine { .. }
                | CanreachAsRoot { .. }
                | UpdateCaCertificates
                | TrustCa { .. }
        ) || matches!(self, Service { action, .. } if *action != "status")
    }

    /// The same command for a machine without systemd: `service` for `systemctl`; `None` for
    /// what has no equivalent there (the journal).
    pub(crate) fn without_systemd(&self) -> Option<Command> {
        use Command::*;
        let service = |unit: &'static str, action| Some(Service { unit, action });
        match self {
            SystemctlStatus { unit } => service(unit, "status"),
            SystemctlStart { unit } => service(unit, "start"),
            SystemctlRestart { unit } => service(unit, "restart"),
            Journal { .. } => None,
            c => Some(c.clone()),
        }
    }

    /// The command as a person types it; `sudo` in front when it needs root and `as_root` is
    /// false (canreach not root here, or a machine where we cannot know).
    pub(crate) fn render(&self, as_root: bool) -> String {
        use Command::*;
        let body = match self {
            SsListening { port } => format!("ss -ltnp 'sport = :{port}'"),
            SsUdp { port } => format!("ss -lunp 'sport = :{port}'"),
            SsOfPid { pid } => format!("ss -ltnp | grep -w 'pid={pid}'"),
            SsQueue { port } => format!("ss -ltn 'sport = :{port}'"),
            ProcessState { pid } => format!("ps -o pid,stat,etime,wchan:32,args -p {pid}"),
            NftGrep { port, verdict } => match verdict {
                Some(v) => format!("nft list ruleset | grep -n -w -e {port} -e {v}"),
                None => format!("nft list ruleset | grep -n -w {port}"),
            },
            NftOutputChains => "nft list ruleset | grep -n -A3 'hook output'".into(),
            NftRejectRules => "nft list ruleset | grep -n -B3 -w reject".into(),
            NftChain {
                family,
                table,
                chain,
            } => format!(
                "nft -a list chain {} {} {}",
                quote(family),
                quote(table),
                quote(chain)
            ),
            NftDeleteRule {
                family,
                table,
                chain,
                handle,
            } => format!(
                "nft delete rule {} {} {} handle {handle}",
                quote(family),
                quote(table),
                quote(chain)
            ),
            IptablesRules => {
                return if as_root {
                    "iptables -S; ip6tables -S".into()
                } else {
                    "sudo iptables -S; sudo ip6tables -S".into()
                };
            }
            IpRouteGet(a) => format!("ip route get {a}"),
            Traceroute { port, address } => format!("traceroute -T -p {port} {address}"),
            CanreachPort { host, port } => format!("canreach {} {port}", quote(host)),
            CanreachAsRoot { args } => format!("canreach {}", quote_all(args)),
            Canreach { options, args } => format!("canreach {options} {}", quote_all(args)),
            Dig { server, name, mode } => {
                let at = server.map(|s| format!("@{s} ")).unwrap_or_default();
                let n = quote(name);
                match mode {
                    DigMode::Plain => format!("dig {at}{n}"),
                    DigMode::NoDnssecCheck => format!("dig {at}+cd {n}"),
                    DigMode::Any => format!("dig {at}{n} ANY +noall +answer"),
                    DigMode::AddressRecords => format!("dig {at}{n} A; dig {at}{n} AAAA"),
                }
            }
            Getent { name } => format!("getent ahosts {}", quote(name)),
            GetentAndDig { name } => {
                let n = quote(name);
                format!("getent ahosts {n}; dig +short {n}")
            }
            ResolvConf => "cat /etc/resolv.conf".into(),
            NsswitchHosts => "grep '^hosts:' /etc/nsswitch.conf".into(),
            Resolvectl { name } => format!("resolvectl status; resolvectl query {}", quote(name)),
            ShowLine { file, line } => format!("sed -n '{line}p' {}", quote(file)),
            SystemctlStatus { unit } => format!("systemctl status {unit}"),
            SystemctlStart { unit } => format!("systemctl start {unit}"),
            SystemctlRestart { unit } => format!("systemctl restart {unit}"),
            Journal { unit } => format!("journalctl -u {unit} -n 50"),
            DockerPublishing { port } => format!("docker ps --filter publish={port}"),
            Timedatectl => "timedatectl".into(),
            UpdateCaCertificates => "update-ca-certificates".into(),
            TlsChain {
                host,
                port,
                server_name,
                proxy,
            } => {
                let at = match host.parse::<IpAddr>() {
                    Ok(IpAddr::V6(a)) => format!("[{a}]:{port}"),
                    _ => format!("{host}:{port}"),
                };
                let name = server_name
                    .as_deref()
                    .map(|n| format!(" -servername {}", quote(n)))
                    .unwrap_or_default();
                let via = proxy
                    .as_deref()
                    .map(|p| format!(" -proxy {}", quote(p)))
                    .unwrap_or_default();
                format!(
                    "openssl s_client -connect {}{name}{via} -showcerts </dev/null",
                    quote(&at)
                )
            }
            TrustCa { file } => {
                let sudo = if as_root { "" } else { "sudo " };
                return format!(
                    "{sudo}cp {} /usr/local/share/ca-certificates/ && {sudo}update-ca-certificates",
                    quote(file)
                );
            }
            Service { unit, action } => format!("service {unit} {action}"),
            SysctlPortRange => {
                "sysctl net.ipv4.ip_local_port_range net.ipv4.ip_local_reserved_ports".into()
            }
            SsSummary => "ss -s".into(),
            IpAddresses { v6 } => format!("ip -{} addr show", if *v6 { 6 } else { 4 }),
        };
        if self.needs_root() && !as_root {
            format!("sudo {body}")
        } else {
            body
        }
    }
}

/// Each word of a user's arguments, quoted where needed.
fn quote_all(args: &str) -> String {
    args.split_whitespace()
        .map(|w| quote(w).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sudo_only_when_needed_and_not_root() {
        let ss = Command::SsListening { port: 5432 };
        assert_eq!(ss.render(false), "sudo ss -ltnp 'sport = :5432'");
        assert_eq!(ss.render(true), "ss -ltnp 'sport = :5432'");
        let route = Command::IpRouteGet("198.18.0.1".parse().unwrap());
        assert_eq!(route.render(false), "ip route get 198.18.0.1");
        assert_eq!(
            Command::IptablesRules.render(false),
            "sudo iptables -S; sudo ip6tables -S"
        );
    }

    #[test]
    fn tls_commands_show_the_chain_and_trust_a_ca() {
        let chain = Command::TlsChain {
            host: "db.example".into(),
            port: 5433,
            server_name: Some("db.example".into()),
            proxy: None,
        };
        assert_eq!(
            chain.render(false),
            "openssl s_client -connect db.example:5433 -servername db.example -showcerts </dev/null"
        );
        let v6 = Command::TlsChain {
            host: "fd00::2".into(),
            port: 443,
            server_name: None,
            proxy: Some("proxy:3128".into()),
        };
        assert_eq!(
            v6.render(true),
            "openssl s_client -connect '[fd00::2]:443' -proxy proxy:3128 -showcerts </dev/null"
        );
        let trust = Command::TrustCa { file: "CA.crt" };
        assert_eq!(
            trust.render(false),
            "sudo cp CA.crt /usr/local/share/ca-certificates/ && sudo update-ca-certificates"
        );
        assert_eq!(
            trust.render(true),
            "cp CA.crt /usr/local/share/ca-certificates/ && update-ca-certificates"
        );
    }

    #[test]
    fn without_systemd_service_replaces_systemctl() {
        let start = Command::SystemctlStart { unit: "ssh" }.without_systemd();
        assert_eq!(start.unwrap().render(false), "sudo service ssh start");
        let status = Command::SystemctlStatus { unit: "ssh" }.without_systemd();
        assert_eq!(status.unwrap().render(false), "service ssh status");
        assert_eq!(Command::Journal { unit: "ssh" }.without_systemd(), None);
        let ss = Command::SsListening { port: 22 };
        assert_eq!(ss.without_systemd(), Some(ss));
    }

    #[test]
    fn names_from_outside_are_quoted() {
        let dig = Command::Dig {
            server: Some("198.18.0.53".parse().unwrap()),
            name: "$(x)".into(),
            mode: DigMode::Plain,
        };
        assert_eq!(dig.render(false), "dig @198.18.0.53 '$(x)'");
        let table = Command::NftChain {
            family: "inet".into(),
            table: "a b;$(id)".into(),
            chain: "input".into(),
        };
        assert_eq!(
            table.render(true),
            "nft -a list chain inet 'a b;$(id)' input"
        );
    }
}
