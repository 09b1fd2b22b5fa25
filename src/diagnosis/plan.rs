//! The planner: the findings' proposed steps, strongest first, as the numbered list a person
//! follows. The same step is given once (the later finding is credited on it), and a step that
//! some finding's evidence rules out is not given at all.

use super::advice::{Machine, StepKind};
use super::commands::Command;
use super::finding::{Finding, FindingId};

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
pub(crate) struct Here {
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
pub(crate) fn plan(findings: &[Finding], ruled_out: &[StepKind], here: Here) -> Vec<PlannedStep> {
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
    use super::super::advice::Step;
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
        Finding::new(id, "m").steps(steps)
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
            Finding::new(FindingId::HostDown, "down").rules_out(&[StepKind::FindDropRule]),
            finding(FindingId::PathEndsAfter, vec![hunt.clone()]),
        ];
        assert!(plan(&fs, &[], AS_USER).is_empty());
        let fs = [finding(FindingId::SilentDrop, vec![hunt])];
        assert!(plan(&fs, &[StepKind::FindDropRule], AS_USER).is_empty());
    }
}
