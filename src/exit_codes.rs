//! Every exit code canreach uses, in one place: `--help` and the man page print
//! [`help_text`], made from it; README.md's and docs/verdicts.md's tables are checked
//! against it by the tests below.
//!
//! 0 is `open` only, so `canreach … && next` works; 1 and 2 are the tool's own failures, as in
//! ripgrep and fd; each failing verdict has its own code from 3 up so that a script can branch
//! on the reason without parsing output.

use crate::diagnosis::Verdict;

/// The process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Open,
    /// The check itself could not run (runtime, an unwritable stdout, local resources).
    Internal,
    /// Bad arguments or target: one line on stderr.
    Usage,
    Partial,
    Closed,
    Rejected,
    Filtered,
    Unreachable,
    DnsError,
    Inconclusive,
    ServiceError,
    TlsError,
    MtuBlackhole,
    /// Ctrl-C during a wait or a run of several targets (128 + SIGINT, as shells report it).
    Interrupted,
}

impl ExitCode {
    /// Every exit code.
    pub(crate) const ALL: [ExitCode; 14] = [
        ExitCode::Open,
        ExitCode::Internal,
        ExitCode::Usage,
        ExitCode::Partial,
        ExitCode::Closed,
        ExitCode::Rejected,
        ExitCode::Filtered,
        ExitCode::Unreachable,
        ExitCode::DnsError,
        ExitCode::Inconclusive,
        ExitCode::ServiceError,
        ExitCode::TlsError,
        ExitCode::MtuBlackhole,
        ExitCode::Interrupted,
    ];

    pub fn code(self) -> i32 {
        match self {
            ExitCode::Open => 0,
            ExitCode::Internal => 1,
            ExitCode::Usage => 2,
            ExitCode::Partial => 3,
            ExitCode::Closed => 4,
            ExitCode::Rejected => 5,
            ExitCode::Filtered => 6,
            ExitCode::Unreachable => 7,
            ExitCode::DnsError => 8,
            ExitCode::Inconclusive => 9,
            ExitCode::ServiceError => 10,
            ExitCode::TlsError => 11,
            ExitCode::MtuBlackhole => 12,
            ExitCode::Interrupted => 130,
        }
    }
}

impl ExitCode {
    /// The verdict this code is for; `None` for canreach's own failures.
    pub(crate) fn verdict(self) -> Option<Verdict> {
        match self {
            ExitCode::Open => Some(Verdict::Open),
            ExitCode::Partial => Some(Verdict::Partial),
            ExitCode::Closed => Some(Verdict::Closed),
            ExitCode::Rejected => Some(Verdict::Rejected),
            ExitCode::Filtered => Some(Verdict::Filtered),
            ExitCode::Unreachable => Some(Verdict::Unreachable),
            ExitCode::DnsError => Some(Verdict::DnsError),
            ExitCode::Inconclusive => Some(Verdict::Inconclusive),
            ExitCode::ServiceError => Some(Verdict::ServiceError),
            ExitCode::TlsError => Some(Verdict::TlsError),
            ExitCode::MtuBlackhole => Some(Verdict::MtuBlackhole),
            ExitCode::Internal | ExitCode::Usage | ExitCode::Interrupted => None,
        }
    }

    /// What the code means in `--help`: the verdict's name (with a word where the name
    /// alone would mislead), or which of canreach's own failures.
    pub(crate) fn meaning(self) -> &'static str {
        match self {
            ExitCode::Inconclusive => {
                "inconclusive (the deadline ended the check before the evidence was in)"
            }
            ExitCode::Internal => "internal error",
            ExitCode::Usage => "usage error",
            ExitCode::Interrupted => "interrupted (Ctrl-C)",
            other => other.verdict().map_or("", Verdict::as_str),
        }
    }
}

/// The widest line of [`help_text`], its two-space indent included: it fits `--help` and
/// the man page at 80 columns.
const HELP_WIDTH: usize = 74;

/// The exit codes as `--help` and the man page show them: the verdicts' codes, canreach's
/// own, then the order of severity, each wrapped within `HELP_WIDTH`, two-space indented.
pub fn help_text() -> String {
    let mut codes = ExitCode::ALL;
    codes.sort_by_key(|c| c.code());
    let listed = |verdicts: bool| -> Vec<String> {
        codes
            .iter()
            .filter(|c| c.verdict().is_some() == verdicts)
            .map(|c| format!("{} {}", c.code(), c.meaning()))
            .collect()
    };
    let order: Vec<&str> = SEVERITY.iter().map(|v| v.as_str()).collect();
    let several = format!(
        "Several targets: the code of the most severe verdict, in this order (least first): {}",
        order.join(", ")
    );
    [listed(true), listed(false), vec![several]]
        .iter()
        .flat_map(|items| wrap(items))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `items` three spaces apart, their words one, in lines of at most [`HELP_WIDTH`].
fn wrap(items: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::from("  ");
    for (i, item) in items.iter().enumerate() {
        for (j, word) in item.split(' ').enumerate() {
            let gap = match (line.trim().is_empty(), i > 0 && j == 0) {
                (true, _) => "",
                (false, true) => "   ",
                (false, false) => " ",
            };
            if !line.trim().is_empty() && line.len() + gap.len() + word.len() > HELP_WIDTH {
                lines.push(std::mem::replace(&mut line, format!("  {word}")));
            } else {
                line.push_str(gap);
                line.push_str(word);
            }
        }
    }
    lines.push(line);
    lines
}

impl From<Verdict> for ExitCode {
    fn from(v: Verdict) -> ExitCode {
        match v {
            Verdict::Open => ExitCode::Open,
            Verdict::Partial => ExitCode::Partial,
            Verdict::Closed => ExitCode::Closed,
            Verdict::Rejected => ExitCode::Rejected,
            Verdict::Filtered => ExitCode::Filtered,
            Verdict::Unreachable => ExitCode::Unreachable,
            Verdict::DnsError => ExitCode::DnsError,
            Verdict::Inconclusive => ExitCode::Inconclusive,
            Verdict::ServiceError => ExitCode::ServiceError,
            Verdict::TlsError => ExitCode::TlsError,
            Verdict::MtuBlackhole => ExitCode::MtuBlackhole,
        }
    }
}

/// A Monitoring Plugins state (`--format nagios`, for Nagios, Icinga, Sensu, Checkmk): the
/// exit codes those schedulers read, 0 to 3, in place of canreach's own.
///
/// The development guidelines keep UNKNOWN for bad arguments and the plugin's own failures,
/// and call a failed name lookup or a timeout CRITICAL: so every verdict but `open` and
/// `partial` is CRITICAL, `inconclusive` included (no address connected within the deadline
/// the check was given; its text still says the reason was not established).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PluginState {
    Ok,
    Warning,
    /// Not a verdict's state: bad usage, an internal error, an interrupted run.
    Unknown,
    Critical,
}

impl PluginState {
    /// The state of one verdict.
    pub(crate) fn of(v: Verdict) -> PluginState {
        match v {
            Verdict::Open => PluginState::Ok,
            // Some addresses work: clients that try the working one first get through.
            Verdict::Partial => PluginState::Warning,
            Verdict::Closed
            | Verdict::Rejected
            | Verdict::Filtered
            | Verdict::Unreachable
            | Verdict::DnsError
            | Verdict::Inconclusive
            | Verdict::ServiceError
            | Verdict::TlsError
            | Verdict::MtuBlackhole => PluginState::Critical,
        }
    }

    /// The exit code the scheduler reads.
    pub fn code(self) -> i32 {
        match self {
            PluginState::Ok => 0,
            PluginState::Warning => 1,
            PluginState::Critical => 2,
            PluginState::Unknown => 3,
        }
    }

    /// The word of the status line.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PluginState::Ok => "OK",
            PluginState::Warning => "WARNING",
            PluginState::Critical => "CRITICAL",
            PluginState::Unknown => "UNKNOWN",
        }
    }

    /// The state of a run of several targets: the worst (CRITICAL above UNKNOWN above
    /// WARNING above OK, as the Monitoring Plugins' own `max_state` ranks them).
    pub(crate) fn worst(verdicts: impl IntoIterator<Item = Verdict>) -> PluginState {
        verdicts
            .into_iter()
            .map(PluginState::of)
            .max()
            .unwrap_or(PluginState::Ok)
    }
}

/// Verdicts from the least to the most severe. A run of several targets exits with the code
/// of its most severe verdict: `open` only when all are open; a target that works for some
/// clients (`partial`) or whose check was cut short (`inconclusive`) ranks below one known to
/// fail; among failures, the further from the service the cause, the more severe (a reset
/// from the host, a reject, silence, no route, no address at all).
pub(crate) const SEVERITY: [Verdict; 11] = [
    Verdict::Open,
    Verdict::Partial,
    Verdict::Inconclusive,
    Verdict::ServiceError,
    Verdict::TlsError,
    Verdict::MtuBlackhole,
    Verdict::Closed,
    Verdict::Rejected,
    Verdict::Filtered,
    Verdict::Unreachable,
    Verdict::DnsError,
];

/// The most severe of `verdicts` ([`SEVERITY`]); `open` for none.
pub(crate) fn most_severe(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
    let rank = |v: &Verdict| SEVERITY.iter().position(|s| s == v).unwrap_or(0);
    verdicts
        .into_iter()
        .max_by_key(rank)
        .unwrap_or(Verdict::Open)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_ranks_every_verdict_once() {
        for v in Verdict::ALL {
            assert_eq!(SEVERITY.iter().filter(|s| **s == v).count(), 1, "{v:?}");
        }
        use Verdict::*;
        assert_eq!(most_severe([Open, Closed, Partial]), Closed);
        assert_eq!(most_severe([Filtered, DnsError, Open]), DnsError);
        assert_eq!(most_severe([Inconclusive, Partial]), Inconclusive);
        assert_eq!(most_severe([Open, Open]), Open);
    }

    /// The verdicts in backquotes of `text` after `start`, up to the first `.` that ends a
    /// sentence, in order.
    fn listed(text: &str, start: &str) -> Vec<String> {
        let from = text
            .find(start)
            .unwrap_or_else(|| panic!("`{start}` not found"));
        let rest = &text[from + start.len()..];
        let end = rest
            .find(". ")
            .or_else(|| rest.find(".\n"))
            .unwrap_or(rest.len());
        rest[..end]
            .split(['`', ' ', ',', '<', '(', ')', '\n'])
            .filter(|w| Verdict::ALL.iter().any(|v| v.as_str() == *w))
            .map(str::to_string)
            .collect()
    }

    /// README, docs/workflows.md and `--help` list the severity order: all of it, as here.
    #[test]
    fn the_documented_severity_order_is_this_one() {
        let all: Vec<String> = SEVERITY.iter().map(|v| v.as_str().to_string()).collect();
        let readme = include_str!("../README.md");
        assert_eq!(
            listed(readme, "most severe verdict:"),
            all[1..],
            "README.md's order"
        );
        let workflows = include_str!("../docs/workflows.md");
        assert_eq!(
            listed(workflows, "from least to most severe:"),
            all,
            "docs/workflows.md's order"
        );
        let help = <crate::cli::Cli as clap::CommandFactory>::command()
            .get_after_help()
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert_eq!(
            listed(&help.replace('\n', " "), "(least first):"),
            all,
            "--help's order"
        );
    }

    /// The rows of the markdown table under `header` in `text`: for each, the verdicts in
    /// backquotes of its first cell and the numbers of its last (`4 / 5 / 6 / 7`).
    fn table(text: &str, header: &str) -> Vec<(Vec<String>, Vec<i32>)> {
        let from = text
            .find(header)
            .unwrap_or_else(|| panic!("`{header}` not found"));
        text[from..]
            .lines()
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|row| {
                let cells: Vec<&str> = row.trim_matches('|').split(" | ").collect();
                let verdicts = cells[0]
                    .split('`')
                    .skip(1)
                    .step_by(2)
                    .map(str::to_string)
                    .collect();
                let codes = cells[cells.len() - 1]
                    .split('/')
                    .map(|n| n.trim().trim_end_matches('|').trim().parse().unwrap())
                    .collect();
                (verdicts, codes)
            })
            .collect()
    }

    /// README's and docs/verdicts.md's tables of verdicts give each verdict once, with its
    /// code here.
    #[test]
    fn the_documented_exit_codes_are_these() {
        for (file, text, header) in [
            (
                "README.md",
                include_str!("../README.md"),
                "| verdict | meaning | exit |",
            ),
            (
                "docs/verdicts.md",
                include_str!("../docs/verdicts.md"),
                "| verdict | when | exit |",
            ),
        ] {
            let mut seen = Vec::new();
            for (verdicts, codes) in table(text, header) {
                assert_eq!(
                    verdicts.len(),
                    codes.len(),
                    "{file}: {verdicts:?} {codes:?}"
                );
                for (v, code) in verdicts.iter().zip(codes) {
                    let verdict = Verdict::ALL
                        .into_iter()
                        .find(|x| x.as_str() == v)
                        .unwrap_or_else(|| panic!("{file}: `{v}` is no verdict"));
                    assert_eq!(code, ExitCode::from(verdict).code(), "{file}: `{v}`");
                    seen.push(verdict);
                }
            }
            assert_eq!(seen.len(), Verdict::ALL.len(), "{file}: {seen:?}");
            assert!(
                Verdict::ALL.iter().all(|v| seen.contains(v)),
                "{file}: {seen:?}"
            );
        }
        // docs/workflows.md gives each verdict's code with the order: `closed` (4).
        let workflows = include_str!("../docs/workflows.md");
        for v in Verdict::ALL {
            let said = format!("`{}` ({})", v.as_str(), ExitCode::from(v).code());
            assert!(workflows.contains(&said), "docs/workflows.md lacks {said}");
        }
    }

    #[test]
    fn help_lists_every_code_once_within_its_width() {
        let text = help_text();
        assert!(
            text.lines()
                .all(|l| l.len() <= HELP_WIDTH && l.starts_with("  "))
        );
        let words: Vec<&str> = text.split_whitespace().collect();
        for c in ExitCode::ALL {
            let first = c.meaning().split(' ').next().unwrap();
            let at = words
                .windows(2)
                .filter(|w| w[0] == c.code().to_string() && w[1] == first)
                .count();
            assert_eq!(at, 1, "{c:?} in {text}");
        }
        // The order of severity is the last paragraph, as SEVERITY has it.
        let order: Vec<&str> = SEVERITY.iter().map(|v| v.as_str()).collect();
        let flowing = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flowing.ends_with(&order.join(", ")), "{flowing}");
    }

    #[test]
    fn plugin_states_follow_the_monitoring_plugins_guidelines() {
        use PluginState as P;
        use Verdict::*;
        let codes: Vec<(Verdict, i32)> = Verdict::ALL
            .iter()
            .map(|v| (*v, P::of(*v).code()))
            .collect();
        for (v, code) in codes {
            let want = match v {
                Open => 0,
                Partial => 1,
                _ => 2,
            };
            assert_eq!(code, want, "{v:?}");
        }
        // UNKNOWN is never a verdict's: only bad usage and internal errors get 3.
        assert!(Verdict::ALL.iter().all(|v| P::of(*v) != P::Unknown));
        assert_eq!(P::Unknown.code(), 3);
        assert_eq!(P::worst([Open, Partial]), P::Warning);
        assert_eq!(P::worst([Partial, DnsError, Open]), P::Critical);
        assert_eq!(P::worst([]), P::Ok);
        // The state never ranks a run below the state of its most severe verdict.
        for a in Verdict::ALL {
            for b in Verdict::ALL {
                assert_eq!(P::worst([a, b]), P::of(most_severe([a, b])), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn every_verdict_has_its_own_code_and_none_is_an_error_code() {
        let mut codes: Vec<i32> = Verdict::ALL
            .iter()
            .map(|v| ExitCode::from(*v).code())
            .collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), Verdict::ALL.len());
        assert!(!codes.contains(&ExitCode::Internal.code()));
        assert!(!codes.contains(&ExitCode::Usage.code()));
    }
}
