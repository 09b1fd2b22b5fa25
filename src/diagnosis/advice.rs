//! Advice as data: findings propose [`Step`]s — what to do (its [`StepKind`]), the exact
//! [`Command`] and the [`Machine`] it runs on. The planner (`super::plan`) turns the proposals
//! of all findings into the numbered list a person follows.

use std::fmt;
use std::net::IpAddr;

use super::commands::Command;

/// Where a step is carried out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Machine {
    /// The machine canreach ran on.
    This,
    /// The server behind the target (its host as given: a name or an address).
    Server(String),
    /// A device on the way (a router or firewall), by address.
    Device(IpAddr),
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Machine::This => write!(f, "this machine"),
            Machine::Server(host) => write!(f, "the server ({host})"),
            Machine::Device(ip) => write!(f, "{ip}"),
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
    pub(crate) fn say(kind: StepKind, text: impl Into<String>) -> Step {
        Step {
            kind,
            text: crate::escape::escape_owned(text.into()),
            command: None,
            on: None,
        }
    }

    /// A step in words about one machine, without a command.
    pub(crate) fn about(kind: StepKind, text: impl Into<String>, on: Machine) -> Step {
        Step {
            on: Some(on),
            ..Step::say(kind, text)
        }
    }

    /// A command to run on a machine.
    pub(crate) fn run(
        kind: StepKind,
        text: impl Into<String>,
        command: Command,
        on: Machine,
    ) -> Step {
        Step {
            kind,
            text: crate::escape::escape_owned(text.into()),
            command: Some(command),
            on: Some(on),
        }
    }
    /// "Find the rule that rejects `port`" on `on`, worded as `text`: the firewall rules
    /// that reject it, listed.
    pub(crate) fn find_reject_rule(text: impl Into<String>, port: u16, on: Machine) -> Step {
        let command = Command::NftGrep {
            port,
            verdict: Some("reject"),
        };
        Step::run(StepKind::FindRejectRule, text, command, on)
    }
}
