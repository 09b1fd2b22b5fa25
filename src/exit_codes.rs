//! Every exit code canreach uses, in one place (the table in README.md and `--help` is this).
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
}

impl ExitCode {
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
        }
    }
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verdict_has_its_own_code_and_none_is_an_error_code() {
        let mut codes: Vec<i32> = Verdict::ALL.iter().map(|v| v.exit_code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), Verdict::ALL.len());
        assert!(!codes.contains(&ExitCode::Internal.code()));
        assert!(!codes.contains(&ExitCode::Usage.code()));
    }
}
