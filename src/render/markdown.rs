//! `--format markdown`: the report as a ticket. The same diagnosis as the text report — the
//! evidence ("What was checked", the text renderer's own lines in a code block), the findings,
//! the numbered steps with their commands in code blocks — plus where it was run from
//! ([`HostInfo`]). Every outside string is escaped ([`crate::escape::escape`]) and, in prose,
//! its Markdown punctuation is backslashed so that a name cannot become a link or a heading.

use std::io::{self, Write};

use crate::diagnosis::{Report, Verdict, fmt_duration};
use crate::escape::escape;
use crate::hostinfo::HostInfo;

/// Outside text for Markdown prose: escaped, punctuation that means something backslashed.
pub(crate) fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in escape(s).chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '!' | '~'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Outside text inside a code span: escaped, wrapped in enough backticks.
fn code(s: &str) -> String {
    let s = escape(s);
    let ticks = "`".repeat(longest_run(&s, '`') + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{s}{pad}{ticks}")
}

/// A fenced block whose fence is longer than any run of backticks inside.
fn fenced(w: &mut dyn Write, lang: &str, body: &str, indent: &str) -> io::Result<()> {
    let fence = "`".repeat((longest_run(body, '`') + 1).max(3));
    writeln!(w, "{indent}{fence}{lang}")?;
    for l in body.lines() {
        writeln!(w, "{indent}{l}")?;
    }
    writeln!(w, "{indent}{fence}")
}

fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for ch in s.chars() {
        run = if ch == c { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// Write the ticket: one section per report, then where it was run from.
pub(crate) fn render(reports: &[&Report], host: &HostInfo, w: &mut dyn Write) -> io::Result<()> {
    if let [r] = reports {
        writeln!(
            w,
            "# canreach: {} is {}",
            code(&r.facts.target.display()),
            r.verdict.as_str()
        )?;
    } else {
        let failing = reports
            .iter()
            .filter(|r| r.verdict != Verdict::Open)
            .count();
        writeln!(
            w,
            "# canreach: {} targets, {failing} not open",
            reports.len()
        )?;
        writeln!(w)?;
        writeln!(w, "| target | verdict | why |")?;
        writeln!(w, "|---|---|---|")?;
        for r in reports {
            writeln!(
                w,
                "| {} | {} | {} |",
                code(&r.facts.target.display()),
                r.verdict.as_str(),
                md(&r.summary)
            )?;
        }
    }
    for r in reports {
        writeln!(w)?;
        report(r, reports.len() > 1, w)?;
    }
    writeln!(w)?;
    where_from(host, w)
}

fn report(diag: &Report, several: bool, w: &mut dyn Write) -> io::Result<()> {
    let facts = &diag.facts;
    let h = if several { "###" } else { "##" };
    if several {
        writeln!(
            w,
            "## {} — {}",
            code(&facts.target.display()),
            diag.verdict.as_str()
        )?;
        writeln!(w)?;
    }
    writeln!(w, "{}", md(&diag.summary))?;
    writeln!(w)?;
    writeln!(w, "{h} What was checked")?;
    writeln!(w)?;
    fenced(w, "text", &checked_section(diag)?, "")?;
    if !diag.findings.is_empty() {
        writeln!(w)?;
        writeln!(w, "{h} What this means")?;
        writeln!(w)?;
        for f in &diag.findings {
            writeln!(w, "- {}", md(&f.message))?;
        }
    }
    if !diag.steps.is_empty() {
        writeln!(w)?;
        writeln!(w, "{h} Next steps")?;
        writeln!(w)?;
        for (n, s) in diag.steps.iter().enumerate() {
            let on =
                s.on.as_ref()
                    .map(|m| format!(" — on {}", md(&m.to_string())))
                    .unwrap_or_default();
            writeln!(w, "{}. {}{on}", n + 1, md(&s.text))?;
            if let Some(c) = &s.command {
                writeln!(w)?;
                fenced(w, "sh", c, "   ")?;
            }
        }
    }
    writeln!(w)?;
    writeln!(
        w,
        "_checked in {} (deadline {})_",
        fmt_duration(facts.elapsed),
        fmt_duration(facts.timeout)
    )
}

/// The text report's "What was checked" lines (already escaped by the text renderer; colour
/// is off outside text mode).
fn checked_section(report: &Report) -> io::Result<String> {
    let mut buf = Vec::new();
    super::text::render(report, &mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let body: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("What was checked"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.strip_prefix("  ").unwrap_or(l))
        .collect();
    Ok(body.join("\n"))
}

fn where_from(h: &HostInfo, w: &mut dyn Write) -> io::Result<()> {
    let or_unknown = |s: &Option<String>| s.as_deref().map_or("unknown".to_string(), md);
    writeln!(w, "## Where this was run from")?;
    writeln!(w)?;
    writeln!(w, "- host: {}", or_unknown(&h.host_name))?;
    writeln!(
        w,
        "- system: {}, kernel {}",
        or_unknown(&h.os),
        or_unknown(&h.kernel)
    )?;
    writeln!(w, "- time: {}", h.time_utc)?;
    writeln!(w, "- canreach {}", h.version)?;
    writeln!(w, "- interfaces:")?;
    for (name, addrs) in &h.interfaces {
        let list = if addrs.is_empty() {
            "no address".to_string()
        } else {
            addrs.iter().map(|a| code(a)).collect::<Vec<_>>().join(", ")
        };
        writeln!(w, "  - {}: {list}", code(name))?;
    }
    if h.routes.is_empty() {
        writeln!(w, "- default route: none")?;
    } else {
        for r in &h.routes {
            writeln!(w, "- route: {}", code(r))?;
        }
    }
    let ns = if h.name_servers.is_empty() {
        "none configured".to_string()
    } else {
        h.name_servers
            .iter()
            .map(|s| code(s))
            .collect::<Vec<_>>()
            .join(", ")
    };
    writeln!(w, "- name servers (/etc/resolv.conf): {ns}")?;
    if h.proxies.is_empty() {
        writeln!(w, "- proxy variables: none set")?;
    } else {
        for (k, v) in &h.proxies {
            writeln!(w, "- proxy variable {} = {}", code(k), code(v))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_text_cannot_format_or_escape_the_ticket() {
        assert_eq!(md("a*b_[c](d)"), "a\\*b\\_\\[c\\](d)");
        assert!(!md("x\x1b[31m").contains('\x1b'));
        assert_eq!(code("a`b"), "``a`b``");
        let mut buf = Vec::new();
        fenced(&mut buf, "sh", "echo ```", "").unwrap();
        assert!(String::from_utf8(buf).unwrap().starts_with("````sh\n"));
    }
}
