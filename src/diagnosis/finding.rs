//! The typed findings: [`FindingId`] (made from the catalog, `super::catalog`: the ids are the
//! stable contract, snake_case in JSON and in docs/verdicts.md) and the shape of a finding.

use std::net::SocketAddr;

use super::advice::{Step, StepKind};

/// The findings' documentation: the columns of docs/verdicts.md's findings table (written and
/// checked by a test: nothing else reads it).
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Docs {
    /// How loud it is, and when that varies, how ("warning when cut short").
    pub severity: Severity,
    pub severity_note: Option<&'static str>,
    /// What the check saw.
    pub evidence: &'static str,
    /// What it tells people, in short.
    pub says: &'static str,
    /// The steps it proposes.
    pub advice: &'static str,
}

/// Makes [`FindingId`] from the catalog's entries (`super::catalog`).
macro_rules! define_ids {
    ($(
        $variant:ident = $id:literal, $severity:ident $(($note:literal))? {
            evidence: $evidence:literal,
            says: $says:literal,
            advice: $advice:literal,
            rule: $rule:expr,
        },
    )*) => {
        /// What a finding is about. The order is the order of strength: findings are reported,
        /// and their steps planned, in this order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum FindingId {
            $(#[doc = $evidence] $variant,)*
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

            /// How loud a finding of this id is (a rule may make one quieter: [`Finding::severity`]).
            pub(crate) fn severity(self) -> Severity {
                match self {
                    $(FindingId::$variant => Severity::$severity,)*
                }
            }

            /// Its row of docs/verdicts.md's findings table.
            #[cfg(test)]
            pub(crate) fn docs(self) -> Docs {
                match self {
                    $(FindingId::$variant => Docs {
                        severity: Severity::$severity,
                        severity_note: None $(.or(Some($note)))?,
                        evidence: $evidence,
                        says: $says,
                        advice: $advice,
                    },)*
                }
            }
        }
    };
}

super::catalog::catalog!(define_ids);

/// How loud a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// What a finding that explains the verdict gives the report's one-sentence summary (the
/// summary is written around it: `super::summary`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Headline {
    /// Why the target has its verdict: the words after "db:5432 is rejected: " (or after
    /// "… accepts connections, but the program behind the port fails: ").
    Why(String),
    /// The proxy the application goes through did not open the way: the words after "… goes
    /// through the proxy P (from https_proxy), which does not open the way: ".
    ProxyRefused(String),
}

/// Something the check found: what it means, and the steps it proposes. The steps are a
/// proposal: the planner (`plan::plan`) decides which are given, once each.
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
    /// Set when this finding explains the verdict: its part of the summary. The strongest
    /// finding that has one gives it.
    pub headline: Option<Headline>,
}

impl Finding {
    /// A finding of `id` saying `message`, as loud as its catalog entry says. The message is
    /// escaped here ([`crate::escape::escape`]), once for every format: it quotes outside text
    /// (banners, certificate subjects, headers, command lines), and canreach's own words have
    /// nothing to escape, so escaping the whole sentence is escaping what it quotes.
    pub(crate) fn new(id: FindingId, message: impl Into<String>) -> Finding {
        Finding {
            id,
            severity: id.severity(),
            message: crate::escape::escape_owned(message.into()),
            steps: vec![],
            rules_out: vec![],
            about: None,
            headline: None,
        }
    }

    /// This finding explains the verdict, in these words (see [`Headline::Why`]); `None`: it
    /// does not (then the finding gives no headline).
    pub(crate) fn explains(mut self, why: Option<impl Into<String>>) -> Finding {
        self.headline = why.map(|w| Headline::Why(w.into()));
        self
    }

    /// This finding is the proxy's refusal that explains the verdict (see
    /// [`Headline::ProxyRefused`]); `None`: it does not explain it.
    pub(crate) fn proxy_refused(mut self, why: Option<impl Into<String>>) -> Finding {
        self.headline = why.map(|w| Headline::ProxyRefused(w.into()));
        self
    }

    /// Another severity than the catalog's, where its entry says when (`severity_note`).
    pub(crate) fn severity(mut self, severity: Severity) -> Finding {
        self.severity = severity;
        self
    }

    /// Say which address (the first of those it explains) the finding is about.
    pub(crate) fn about(mut self, address: SocketAddr) -> Finding {
        self.about = Some(address);
        self
    }

    /// Add proposed steps.
    pub(crate) fn steps(mut self, steps: impl IntoIterator<Item = Step>) -> Finding {
        self.steps.extend(steps);
        self
    }

    /// Add step kinds this finding rules out.
    pub(crate) fn rules_out(mut self, kinds: &[StepKind]) -> Finding {
        self.rules_out.extend_from_slice(kinds);
        self
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

    /// docs/verdicts.md's findings table, as the catalog makes it: one row per id, in the
    /// catalog's order (a `|` in a cell is written `\\|`).
    fn findings_table() -> String {
        let cell = |s: &str| s.replace('|', "\\|");
        let mut out = String::from(
            "| id | severity | evidence | message, in short | advice |\n|---|---|---|---|---|\n",
        );
        for id in FindingId::ALL {
            let d = id.docs();
            let severity = match d.severity_note {
                Some(note) => format!("{} ({note})", d.severity.as_str()),
                None => d.severity.as_str().to_string(),
            };
            out.push_str(&format!(
                "| `{}` | {severity} | {} | {} | {} |\n",
                id.as_str(),
                cell(d.evidence),
                cell(d.says),
                cell(d.advice)
            ));
        }
        out
    }

    /// The findings table of docs/verdicts.md is the catalog's, row for row: every id is
    /// documented, nothing else is, and each row says what the catalog says. With
    /// `CANREACH_BLESS=1` the test writes the catalog's table into the file instead.
    #[test]
    fn the_findings_table_is_the_catalog() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/verdicts.md");
        let docs = std::fs::read_to_string(path).unwrap();
        let start = docs
            .find("| id | severity |")
            .expect("docs/verdicts.md has the findings table");
        let len = docs[start..]
            .split_inclusive('\n')
            .take_while(|l| l.starts_with('|'))
            .map(str::len)
            .sum::<usize>();
        let (written, wanted) = (&docs[start..start + len], findings_table());
        if written == wanted {
            return;
        }
        if std::env::var_os("CANREACH_BLESS").is_some_and(|v| v == "1") {
            let blessed = format!("{}{wanted}{}", &docs[..start], &docs[start + len..]);
            std::fs::write(path, blessed).unwrap();
            return;
        }
        let (old, new): (Vec<&str>, Vec<&str>) =
            (written.lines().collect(), wanted.lines().collect());
        let mut diff = String::new();
        for l in old.iter().filter(|l| !new.contains(l)) {
            diff.push_str(&format!("- {l}\n"));
        }
        for l in new.iter().filter(|l| !old.contains(l)) {
            diff.push_str(&format!("+ {l}\n"));
        }
        panic!(
            "docs/verdicts.md's findings table is not the catalog's (src/diagnosis/catalog.rs); \
             run `CANREACH_BLESS=1 cargo test --lib the_findings_table_is_the_catalog` to \
             write it:\n{diff}"
        );
    }
}
