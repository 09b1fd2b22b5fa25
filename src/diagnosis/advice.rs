//! Advice as data, planned once.
//!
//! Findings propose [`Step`]s: what to do (its [`StepKind`]), the exact [`Command`] and the
//! [`Machine`] it runs on. [`plan`] walks the findings strongest first and writes the numbered
//! list a person follows: the same step is given once (the later finding is credited on it),
//! and a step that some finding's evidence rules out is not given at all.

use std::fmt;
use std::net::IpAddr;

use super::commands::Command;
use super::finding::{Finding, FindingId};

/// Where a step is carried out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Machine {
    /// The machine canreach ran on.
    This,
    /// The server behind the target (its host as given: a name or an address).
    Server(String),
    /// A device on the way (a router or firewall), by address.
    Device(IpAddr),
    /// A name server, by address.
    NameServer(IpAddr),
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Machine::This => write!(f, "this machine"),
            Machine::Server(host) => write!(f, "the server ({host})"),
            Machine::Device(ip) => write!(f, "{ip}"),
            Machine::NameServer(ip) => write!(f, "the name server {ip}"),
        }
    }
}

/// What a step is for. Two steps of the same kind on the same machine with the same command
/// are one step; a finding can rule a kind out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepKind {
    /// See who listens on the port.
    CheckListening,
    /// Move the server's listening address.
    ListenAddress,
    /// Point the client elsewhere.
    PointClient,
    /// Start the program that should serve the port.
    StartServer,
    /// Look at what a program is doing, and at its accept queue.
    InspectProgram,
    WatchQueue,
    /// Restart a program that stopped working.
    RestartServer,
    /// Look at a service's status / logs.
    ServiceStatus,
    ReadLogs,
    /// Find the container publishing the port.
    FindContainer,
    /// Hunt for a firewall rule answering with a reset.
    FindResetRule,
    /// Hunt for a firewall rule that rejects.
    FindRejectRule,
    /// Hunt for a firewall rule that drops.
    FindDropRule,
    /// Allow the port in a firewall.
    AllowPort,
    /// Ask the people who run a device or the network.
    AskOwners,
    /// Check that the host is on and has the address.
    CheckHostUp,
    /// Walk the path (traceroute).
    TracePath,
    /// Probe another port of the host.
    TryOtherPort,
    /// Look at this machine's output chain.
    CheckLocalOutput,
    /// Show / delete a rule of this machine's firewall.
    ShowRule,
    DeleteRule,
    /// Routes and networks of this machine.
    CheckRoute,
    ConnectNetwork,
    /// This machine's own settings and limits.
    CheckLocalSettings,
    /// Run canreach again as root.
    RerunAsRoot,
    /// Run canreach again with a longer deadline.
    RerunLonger,
    /// Fix the server's TLS certificate or configuration.
    FixCertificate,
    /// See the certificate chain a TLS server sends.
    ShowCertificates,
    /// Trust a CA (or a self-signed certificate) on this machine.
    TrustCa,
    /// Check the proxy an application would use.
    CheckProxy,
    /// Fix several addresses of a name.
    FixAddresses,
    /// DNS: spelling, the right resolver, the zone, the files.
    CheckSpelling,
    UseInternalResolver,
    AskNameServer,
    CheckDnssec,
    RetryLater,
    SeeApplicationView,
    SeeResolvers,
    FixResolverConfig,
    AddRecord,
    SeeRecords,
    AskStubResolver,
    FixHostsFile,
    SeeNameSources,
    UseFullName,
}

/// One proposed step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub kind: StepKind,
    pub text: String,
    pub command: Option<Command>,
    /// Where it runs (or, for a step without a command, who acts).
    pub on: Option<Machine>,
}

impl Step {
    /// A step in words only. Its words are escaped like a finding's message (they may quote a
    /// name or a command line).
    pub fn say(kind: StepKind, text: impl Into<String>) -> Step {
        Step {
            kind,
            text: crate::escape::escape_owned(text.into()),
            command: None,
            on: None,
        }
    }

    /// A step in words about one machine, without a command.
    pub fn about(kind: StepKind, text: impl Into<String>, on: Machine) -> Step {
        Step {
            on: Some(on),
            ..Step::say(kind, text)
        }
    }

    /// A command to run on a machine.
    pub fn run(kind: StepKind, text: impl Into<String>, command: Command, on: Machine) -> Step {
        Step {
            kind,
            text: crate::escape::escape_owned(text.into()),
            command: Some(command),
            on: Some(on),
        }
    }
}

/// A step as given to the person, numbered by its place in the plan. `text` and `command` are
/// escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStep {
    pub kind: StepKind,
    pub text: String,
    /// The exact command, `sudo` included where needed.
    pub command: Option<String>,
    pub on: Option<Machine>,
    /// The findings that proposed it, first the one it was planned for.
    pub findings: Vec<FindingId>,
}

/// What is known of the machine canreach runs on, for the commands planned for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Here {
    /// canreach is root: commands need no `sudo`.
    pub privileged: bool,
    /// `Some(false)`: this machine does not run systemd (no `systemctl`, no journal); `None`
    /// when not looked at.
    pub systemd: Option<bool>,
}

/// Plan the steps of `findings` (already in order of strength). `ruled_out` adds kinds the
/// facts themselves rule out (a walk that ran needs no traceroute); `here` says what commands
/// on this machine can be: no `sudo` for root, `service` instead of `systemctl` without
/// systemd (a step whose command has no such equivalent, the journal, is not given).
pub fn plan(findings: &[Finding], ruled_out: &[StepKind], here: Here) -> Vec<PlannedStep> {
    // A finding's evidence rules a kind out for the others' proposals, not for its own.
    let ruled = |kind: StepKind, by: FindingId| {
        ruled_out.contains(&kind)
            || findings
                .iter()
                .any(|f| f.id != by && f.rules_out.contains(&kind))
    };
    let mut planned: Vec<PlannedStep> = Vec::new();
    let mut keys: Vec<(StepKind, Option<Machine>, Option<Command>)> = Vec::new();
    for f in findings {
        for s in &f.steps {
            if ruled(s.kind, f.id) {
                continue;
            }
            let on_this = s.on == Some(Machine::This);
            let command = match &s.command {
                Some(c) if on_this && here.systemd == Some(false) => match c.without_systemd() {
                    Some(c) => Some(c),
                    None => continue,
                },
                c => c.clone(),
            };
            // A step in words is the same step whatever its wording: "bind to ::" and
            // "--host 0.0.0.0" from two findings must not both be given.
            let key = (s.kind, s.on.clone(), command.clone());
            if let Some(i) = keys.iter().position(|k| *k == key) {
                if !planned[i].findings.contains(&f.id) {
                    planned[i].findings.push(f.id);
                }
                continue;
            }
            keys.push(key);
            let as_root = here.privileged && on_this;
            planned.push(PlannedStep {
                kind: s.kind,
                text: s.text.clone(),
                // Quoted for the shell by `render`; a control character inside the quotes is
                // then shown escaped (the pasted command names nothing, not something else).
                command: command
                    .as_ref()
                    .map(|c| crate::escape::escape_owned(c.render(as_root))),
                on: s.on.clone(),
                findings: vec![f.id],
            });
        }
    }
    planned
}

#[cfg(test)]
mod tests {
    use super::super::finding::Severity;
    use super::*;

    const AS_USER: Here = Here {
        privileged: false,
        systemd: None,
    };

    #[test]
    fn without_systemd_service_replaces_systemctl_and_the_journal_is_not_advised() {
        let unit = "ssh";
        let fs = [finding(
            FindingId::UsualServerNotRunning,
            vec![
                Step::run(
                    StepKind::StartServer,
                    "Start it",
                    Command::SystemctlStart { unit },
                    Machine::This,
                ),
                Step::run(
                    StepKind::ReadLogs,
                    "Read its log",
                    Command::Journal { unit },
                    Machine::This,
                ),
                Step::run(
                    StepKind::ServiceStatus,
                    "On the server",
                    Command::SystemctlStatus { unit },
                    Machine::Server("db".into()),
                ),
            ],
        )];
        let none = Here {
            privileged: true,
            systemd: Some(false),
        };
        let cmds: Vec<Option<String>> = plan(&fs, &[], none)
            .into_iter()
            .map(|s| s.command)
            .collect();
        assert_eq!(
            cmds,
            [
                Some("service ssh start".to_string()),
                // Another machine's init is not known: systemd's command stays.
                Some("systemctl status ssh".to_string())
            ]
        );
        let with = Here {
            systemd: Some(true),
            ..none
        };
        assert_eq!(plan(&fs, &[], with).len(), 3);
    }

    fn finding(id: FindingId, steps: Vec<Step>) -> Finding {
        Finding::new(id, Severity::Error, "m").steps(steps)
    }

    #[test]
    fn a_step_is_given_once_and_credited_to_both() {
        let ss = || {
            Step::run(
                StepKind::CheckListening,
                "See who listens",
                Command::SsListening { port: 80 },
                Machine::This,
            )
        };
        let fs = [
            finding(FindingId::PortClosed, vec![ss()]),
            finding(FindingId::PartialReachability, vec![ss()]),
        ];
        let p = plan(&fs, &[], AS_USER);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].command.as_deref(), Some("sudo ss -ltnp 'sport = :80'"));
        assert_eq!(
            p[0].findings,
            [FindingId::PortClosed, FindingId::PartialReachability]
        );
        // As root on this machine: no sudo.
        assert_eq!(
            plan(
                &fs,
                &[],
                Here {
                    privileged: true,
                    systemd: None
                }
            )[0]
            .command
            .as_deref(),
            Some("ss -ltnp 'sport = :80'")
        );
    }

    #[test]
    fn words_of_the_same_kind_on_the_same_machine_are_one_step() {
        let fs = [
            finding(
                FindingId::ListensOnOtherFamily,
                vec![Step::about(
                    StepKind::ListenAddress,
                    "bind to ::",
                    Machine::This,
                )],
            ),
            finding(
                FindingId::PartialReachability,
                vec![Step::about(
                    StepKind::ListenAddress,
                    "--host 0.0.0.0",
                    Machine::This,
                )],
            ),
        ];
        let p = plan(&fs, &[], AS_USER);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].text, "bind to ::");
    }

    #[test]
    fn a_stronger_finding_rules_a_kind_out() {
        let hunt = Step::run(
            StepKind::FindDropRule,
            "look for the rule",
            Command::NftGrep {
                port: 80,
                verdict: Some("drop"),
            },
            Machine::Server("h".into()),
        );
        let fs = [
            Finding::new(FindingId::HostDown, Severity::Error, "down")
                .rules_out(&[StepKind::FindDropRule]),
            finding(FindingId::PathEndsAfter, vec![hunt.clone()]),
        ];
        assert!(plan(&fs, &[], AS_USER).is_empty());
        let fs = [finding(FindingId::SilentDrop, vec![hunt])];
        assert!(plan(&fs, &[StepKind::FindDropRule], AS_USER).is_empty());
    }
}
