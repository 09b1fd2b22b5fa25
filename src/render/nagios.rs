//! `--format nagios`: the output of a Monitoring Plugin (Nagios, Icinga, Sensu, Checkmk), after
//! the Monitoring Plugins development guidelines.
//!
//! ```text
//! CANREACH CRITICAL: 198.18.2.2:5432 is rejected: … | 'time'=0.00042s;;;0 'connect'=0.00031s;;;0
//! - A device on the way, 198.18.1.1, rejected the connection to 198.18.2.2 port 5432 …
//! ```
//!
//! The first line is `CANREACH STATE: summary | perfdata`; the findings (the report's reason)
//! follow, one `- ` item each, wrapped at 80 columns. Several targets share the one status
//! line (the worst state, the targets worst first, as many as [`MAX_STATUS`] holds) and
//! each gets its own perfdata labels (while the first line stays within [`MAX_FIRST_LINE`])
//! and block of reasons. The state and exit code are [`PluginState`]'s; this module only writes.
//!
//! A scheduler cuts the text at its first `|` (what follows is perfdata) and keeps a bounded
//! amount (Nagios 4: 8 KiB). So every outside string is escaped ([`crate::escape::escape`]),
//! a `|` in it is written `\x7c` (canreach's own words contain none), and the long output
//! stops before [`MAX_OUTPUT`] bytes with a line saying how much was left out.

use std::io::{self, Write};
use std::time::Duration;

use crate::diagnosis::Report;
use crate::escape::escape;
use crate::exit_codes::{PluginState, SEVERITY};
use crate::probe::ConnectResult;

/// The service name the status line starts with (the guidelines' `SERVICE STATUS:`).
pub(crate) const SERVICE: &str = "CANREACH";

/// The most bytes written: Nagios 4 keeps 8 KiB of a plugin's output and drops the rest
/// without a word.
pub(crate) const MAX_OUTPUT: usize = 8000;

/// The most bytes of the status line's list of targets (several targets): past it the list
/// ends with how many more there are.
pub(crate) const MAX_STATUS: usize = 1000;

/// The most bytes of the first line (status and perfdata): past it the perfdata of the
/// remaining targets is left out, so that the reasons below still fit in [`MAX_OUTPUT`].
pub(crate) const MAX_FIRST_LINE: usize = 4000;

const WIDTH: usize = 80;

/// Text for a plugin's output: escaped, and never a `|` (it would start the perfdata).
fn text(s: &str) -> String {
    escape(s).replace('|', "\\x7c")
}

/// A perfdata label: always in single quotes, a quote inside doubled (`''`), and no `=` (the
/// guidelines forbid it in a label) or `|`.
fn label(s: &str) -> String {
    let t = text(s).replace('=', "\\x3d").replace('\'', "''");
    format!("'{t}'")
}

/// Seconds with microsecond resolution and no trailing zeros: `0.0012`, `1.5`, `0`.
fn seconds(d: Duration) -> String {
    let s = format!("{:.6}", d.as_secs_f64());
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() { "0".into() } else { s.into() }
}

/// The times of one check, by phase, as `(label, time)`: the whole check, then the name
/// lookup (a name only), the connect of the first address that connected (else of the first
/// address tried, when the kernel answered it: a reset or an ICMP error; silence is the
/// deadline, not a time), and the TLS handshake and HTTP exchange on that address.
pub(crate) fn phases(report: &Report) -> Vec<(&'static str, Duration)> {
    let facts = &report.facts;
    let mut out = vec![("time", facts.elapsed)];
    if let Some(sys) = &facts.dns.system {
        out.push(("dns", sys.elapsed));
    }
    let chosen = facts
        .addresses
        .iter()
        .map(|a| &a.facts)
        .find(|a| a.probe.result == ConnectResult::Connected)
        .or(facts.addresses.first().map(|a| &a.facts));
    if let Some(a) = chosen
        && a.probe.result != ConnectResult::TimedOut
    {
        out.push(("connect", a.probe.elapsed));
        if let Some(s) = &a.session {
            if let Some(t) = &s.tls {
                out.push(("tls", t.elapsed));
            }
            if let Some(h) = &s.http {
                out.push(("http", h.elapsed));
            }
        }
    }
    out
}

/// `'label'=0.0012s;;;0` for each phase; `prefix` names the target when there are several.
fn perfdata(report: &Report, prefix: Option<&str>) -> Vec<String> {
    phases(report)
        .into_iter()
        .map(|(name, d)| {
            let l = match prefix {
                Some(p) => label(&format!("{p} {name}")),
                None => label(name),
            };
            format!("{l}={}s;;;0", seconds(d))
        })
        .collect()
}

/// `words` wrapped at [`WIDTH`], the first line after `first`, the rest after `rest`.
fn wrapped(words: &str, first: &str, rest: &str) -> Vec<String> {
    let mut lines = vec![];
    let mut line = first.to_string();
    let mut empty = true;
    for w in words.split(' ').filter(|w| !w.is_empty()) {
        if !empty && line.chars().count() + 1 + w.chars().count() > WIDTH {
            lines.push(std::mem::replace(&mut line, rest.to_string()));
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(w);
        empty = false;
    }
    lines.push(line);
    lines
}

/// The findings of one check as `- ` items, indented by `indent`.
fn reasons(diag: &Report, indent: &str) -> Vec<String> {
    diag.findings
        .iter()
        .flat_map(|f| {
            wrapped(
                &text(&f.message),
                &format!("{indent}- "),
                &format!("{indent}  "),
            )
        })
        .collect()
}

/// Write the plugin output for one check or several (input order given; written worst
/// first). The exit code goes with it: [`PluginState::worst`] of the verdicts.
pub(crate) fn render(checks: &[&Report], w: &mut dyn Write) -> io::Result<()> {
    let state = PluginState::worst(checks.iter().map(|d| d.verdict));
    let (status, perf, long) = match checks {
        [diag] => (text(&diag.summary), perfdata(diag, None), reasons(diag, "")),
        _ => {
            let rank = |d: &Report| SEVERITY.iter().position(|v| *v == d.verdict);
            let mut order: Vec<&Report> = checks.to_vec();
            // Stable: targets of the same verdict keep the order they were given in.
            order.sort_by_key(|d| std::cmp::Reverse(rank(d)));
            let each: Vec<String> = order
                .iter()
                .map(|d| format!("{} {}", text(&d.facts.target.display()), d.verdict.as_str()))
                .collect();
            // Worst first, as many as fit: a scheduler keeps a few KiB of the whole output.
            let mut listed = String::new();
            let mut shown = 0;
            for e in &each {
                if shown > 0 && listed.len() + 2 + e.len() > MAX_STATUS {
                    break;
                }
                if shown > 0 {
                    listed.push_str(", ");
                }
                listed.push_str(e);
                shown += 1;
            }
            if shown < each.len() {
                listed.push_str(&format!(", … {} more", each.len() - shown));
            }
            let status = format!("{} targets: {listed}", checks.len());
            let mut room = MAX_FIRST_LINE.saturating_sub(SERVICE.len() + status.len() + 16);
            let mut perf = Vec::new();
            for d in checks {
                let one = perfdata(d, Some(&d.facts.target.display()));
                let len: usize = one.iter().map(|p| p.len() + 1).sum();
                if len > room {
                    break;
                }
                room -= len;
                perf.extend(one);
            }
            let long = order
                .iter()
                .flat_map(|d| {
                    let head = format!("[{}] ", PluginState::of(d.verdict).as_str());
                    let mut lines = wrapped(&text(&d.summary), &head, "  ");
                    lines.extend(reasons(d, "  "));
                    lines
                })
                .collect();
            (status, perf, long)
        }
    };
    let first = if perf.is_empty() {
        format!("{SERVICE} {}: {status}", state.as_str())
    } else {
        format!(
            "{SERVICE} {}: {status} | {}",
            state.as_str(),
            perf.join(" ")
        )
    };
    let mut used = first.len() + 1;
    writeln!(w, "{first}")?;
    for (i, line) in long.iter().enumerate() {
        // Room kept for the line that says what was cut.
        if used + line.len() + 1 > MAX_OUTPUT - 80 {
            writeln!(
                w,
                "({} more lines left out; run canreach with the same targets for the whole report)",
                long.len() - i
            )?;
            break;
        }
        used += line.len() + 1;
        writeln!(w, "{line}")?;
    }
    Ok(())
}

/// The one line of a run that could not give a state (bad usage, an internal error, an
/// interrupted run): `CANREACH UNKNOWN: what went wrong`. Exit code 3 goes with it.
pub fn unknown_line(what: &str) -> String {
    format!(
        "{SERVICE} {}: {}",
        PluginState::Unknown.as_str(),
        text(&what.replace('\n', " "))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_quoted_and_outside_text_cannot_end_the_text() {
        assert_eq!(label("time"), "'time'");
        assert_eq!(label("db:5432 time"), "'db:5432 time'");
        assert_eq!(label("it's=1|x\x1b"), "'it''s\\x3d1\\x7cx\\x1b'");
        assert_eq!(text("a|b\nc\u{202e}"), "a\\x7cb\\x0ac\\u{202e}");
        assert_eq!(
            unknown_line("bad | input\nhere"),
            "CANREACH UNKNOWN: bad \\x7c input here"
        );
    }

    #[test]
    fn seconds_keep_microseconds_without_trailing_zeros() {
        assert_eq!(seconds(Duration::from_micros(1200)), "0.0012");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5");
        assert_eq!(seconds(Duration::ZERO), "0");
        assert_eq!(seconds(Duration::from_secs(3)), "3");
        assert_eq!(seconds(Duration::from_nanos(400)), "0");
    }
}
