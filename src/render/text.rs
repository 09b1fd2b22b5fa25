//! The text renderer: what people read and paste into tickets.
//!
//! Layout: a headline with the verdict, what was checked step by step (name → addresses →
//! each address's outcome and evidence), what it means, and numbered next steps with the
//! exact command and the machine to run it on. Colour comes from `colored`, whose global
//! switch `main` sets from `--color` / `NO_COLOR`; this module never decides it.
//!
//! Every string that can carry text from outside (names, records, files, process command
//! lines, nft output — and the findings' messages that quote them) goes through
//! [`crate::escape::escape`] before it is written: a terminal never receives a raw control
//! character from anyone but canreach. Escaping happens before colouring.

use std::io::{self, Write};

use colored::{ColoredString, Colorize};

use crate::diagnosis::dns::{error_words, port53_tcp, stub_words, udp53_words};
use crate::diagnosis::session::lines as session_lines;
use crate::diagnosis::silence::HopKind;
use crate::diagnosis::{Diagnosis, Outcome, Severity, Verdict, fmt_duration};
use crate::dns::Lookup;
use crate::escape::{display_name, escape as x};
use crate::facts::Facts;
use crate::target::{Host, PortSource};

const WIDTH: usize = 78;

/// The direct path beside a proxy, in one line.
fn direct_line(v: &crate::facts::ProxyRoute) -> String {
    if let Some(e) = &v.direct.lookup_error {
        return format!(
            "without the proxy: the name does not resolve ({})",
            error_words(e)
        );
    }
    let each: Vec<String> = v
        .direct
        .probes
        .iter()
        .map(|p| {
            let a = crate::diagnosis::classify(p);
            format!("{} {} ({})", a.address.ip(), a.outcome.word(), a.describe())
        })
        .collect();
    if each.is_empty() {
        "without the proxy: not tried".into()
    } else {
        format!("without the proxy: {}", each.join("; "))
    }
}

/// Write the human report.
pub fn render(facts: &Facts, diag: &Diagnosis, w: &mut dyn Write) -> io::Result<()> {
    let t = &facts.target;
    let (mark, word) = headline(diag.verdict);
    writeln!(w, "{mark} {}  {}", word, x(&t.display()).bold())?;
    wrap(w, &diag.summary, 2)?;

    writeln!(w)?;
    writeln!(w, "{}", "What was checked".bold())?;
    let service = t
        .service
        .as_deref()
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    let port_note = match t.port_source {
        PortSource::Number => service,
        PortSource::Service => format!("{service}, from the service name"),
        PortSource::Scheme => format!("{service}, the URL scheme's usual port"),
    };
    let host = t.host.to_string();
    writeln!(
        w,
        "  {:<9} {} port {}{port_note}",
        "target",
        x(&host),
        t.port
    )?;
    // Through a proxy, the name and the addresses below are the proxy's.
    if let Some(v) = &facts.via {
        let line = format!(
            "{} port {} (from {}): the application's way, checked below",
            v.endpoint.host, v.endpoint.port, v.proxy.variable
        );
        writeln!(w, "  {:<9} {}", "proxy", x(&line))?;
        let direct = direct_line(v);
        writeln!(w, "  {:<9} {}", "direct", x(&direct).dimmed())?;
    }
    if let Host::Name(name) = &facts.checked().host {
        if let Some(sys) = &facts.dns.system {
            writeln!(
                w,
                "  {:<9} {}",
                "name",
                x(&lookup_line(name, sys, "system resolver"))
            )?;
        }
        for h in &facts.dns.hosts {
            let line = format!("{} line {}: {}", h.file, h.line, h.text);
            writeln!(w, "  {:<9} {}", "", x(&line).dimmed())?;
        }
        for sv in &facts.dns.servers {
            let who = match sv.stub {
                Some(kind) => format!("DNS {}, {}", sv.server.ip(), stub_words(kind)),
                None => format!("DNS {}", sv.server.ip()),
            };
            // A name from DNS or resolv.conf is shown by `display_name` (its ASCII form, the
            // Unicode one only when safe); the name as typed is the user's own.
            let shown = sv
                .name_used
                .as_deref()
                .map_or_else(|| name.clone(), display_name);
            writeln!(
                w,
                "  {:<9} {}",
                "",
                x(&lookup_line(&shown, &sv.lookup, &who))
            )?;
            let chain: Vec<String> = sv
                .records
                .iter()
                .filter(|r| r.kind == "CNAME")
                .map(|r| {
                    let from = display_name(r.name.trim_end_matches('.'));
                    let to = display_name(r.data.trim_end_matches('.'));
                    format!("{from} → {to} (TTL {}s)", r.ttl)
                })
                .collect();
            if !chain.is_empty() {
                writeln!(w, "  {:<9}   {}", "", x(&chain.join(", ")).dimmed())?;
            }
            if let Some(p) = &sv.port53 {
                let udp = udp53_words(p.udp);
                let tcp = port53_tcp(&p.tcp);
                writeln!(w, "  {:<9}   port 53: TCP {tcp}, UDP {udp}", "")?;
            }
        }
        if let (true, Some(direct)) = (facts.dns.servers.is_empty(), &facts.dns.direct) {
            writeln!(
                w,
                "  {:<9} {}",
                "",
                x(&lookup_line(name, direct, "DNS servers"))
            )?;
        }
    }
    let width = diag
        .addresses
        .iter()
        .map(|a| a.address.ip().to_string().len())
        .max()
        .unwrap_or(0);
    for (a, f) in diag.addresses.iter().zip(&facts.addresses) {
        writeln!(
            w,
            "  {:<9} {:<width$}  {}  {}",
            "address",
            a.address.ip().to_string(),
            outcome_word(a.outcome),
            a.describe().dimmed()
        )?;
        for (label, line) in f.session.as_ref().map(session_lines).unwrap_or_default() {
            for (i, l) in wrap_lines(&x(&line), WIDTH - 12).into_iter().enumerate() {
                let label = if i == 0 { label } else { "" };
                writeln!(w, "  {label:<9} {l}")?;
            }
        }
    }

    if let Some(l) = &diag.liveness {
        let probes: Vec<String> = l
            .probes
            .iter()
            .map(|p| match (p.outcome, p.elapsed) {
                (Some(o), Some(e)) => {
                    format!("port {} {} in {}", p.port, o.word(), fmt_duration(e))
                }
                _ => format!("port {} no answer", p.port),
            })
            .collect();
        let verdict = match l.alive {
            Some(true) => "the host is up".green(),
            Some(false) => "the host is unreachable".red(),
            None => "no sign of the host".yellow(),
        };
        let line = format!("{verdict}: {}", probes.join(", "));
        for (i, l) in wrap_lines(&line, WIDTH - 12).into_iter().enumerate() {
            let label = if i == 0 { "liveness" } else { "" };
            writeln!(w, "  {label:<9} {l}")?;
        }
        if let Some(second) = &l.second_syn {
            let what = match (second.outcome, second.elapsed) {
                (Some(o), Some(e)) => format!("{} in {}", o.word(), fmt_duration(e)),
                _ => match l.decided_after {
                    Some(b) => format!("no answer in {}", fmt_duration(b)),
                    None => "no answer".to_string(),
                },
            };
            writeln!(
                w,
                "  {:<9} second SYN to port {}: {what}",
                "",
                facts.checked().port
            )?;
        }
    }
    if let Some(p) = &diag.path {
        for (i, h) in p.hops.iter().enumerate() {
            let addr = h.address.map_or("*".to_string(), |a| a.to_string());
            let took = h.elapsed.map(fmt_duration).unwrap_or_default();
            let kind = match h.kind {
                HopKind::TimeExceeded => "router".normal(),
                HopKind::ReachedTarget => "the target".green(),
                HopKind::Unreachable => "unreachable".red(),
                HopKind::NoAnswer => "no answer".red(),
            };
            let note = match (h.kind, p.last_responding) {
                (HopKind::NoAnswer, Some(r)) if h.ttl == r.ttl + 1 => "  ← the SYN goes no further",
                _ => "",
            };
            let label = if i == 0 { "path" } else { "" };
            writeln!(
                w,
                "  {label:<9} hop {:<2} {addr:<width$}  {kind} {took}{note}",
                h.ttl
            )?;
        }
    }

    if let Some(l) = &facts.local {
        if l.listeners.is_empty() {
            writeln!(
                w,
                "  {:<9} {}",
                "here",
                format!("nothing listens on port {}", l.port).red()
            )?;
        }
        for (i, li) in l.listeners.iter().enumerate() {
            let addr = match li.address {
                std::net::IpAddr::V6(a) => format!("[{a}]:{}", li.port),
                a => format!("{a}:{}", li.port),
            };
            let user = li.user.clone().unwrap_or_else(|| format!("uid {}", li.uid));
            let who = match &li.process {
                // The executable, unless the command line already starts with it.
                Some(p) => match p.exe.as_deref() {
                    Some(exe) if !p.cmdline.starts_with(exe) => {
                        format!("{} (pid {}, {user}, {exe}): {}", p.name, p.pid, p.cmdline)
                    }
                    _ => format!("{} (pid {}, {user}): {}", p.name, p.pid, p.cmdline),
                },
                // As root every process is visible: an owner not found is the owner search
                // cut short (or a process gone meanwhile), not a matter of sudo.
                None if l.privileged => format!("a process of {user} (not found)"),
                None => format!("a process of {user} (run with sudo to see which)"),
            };
            let label = if i == 0 { "listening" } else { "" };
            writeln!(w, "  {label:<9} {addr}  {}", x(&who).dimmed())?;
        }
        if !l.owner_other_listeners.is_empty() {
            let others: Vec<String> = l
                .owner_other_listeners
                .iter()
                .map(|li| format!("{}:{}", li.address, li.port))
                .collect();
            writeln!(
                w,
                "  {:<9} the same process also listens on {}",
                "",
                others.join(", ")
            )?;
        }
    }
    if let Some(fw) = &facts.firewall {
        let line = if !fw.inspected {
            format!(
                "not inspected: {}",
                crate::diagnosis::local::unread_words(fw)
            )
        } else if fw.rules.is_empty() {
            format!(
                "no rule of this machine drops or rejects port {}",
                facts.checked().port
            )
        } else {
            let rules: Vec<String> = fw
                .rules
                .iter()
                .map(|r| format!("{}: {}", r.hook, r.text))
                .collect();
            rules.join("; ")
        };
        writeln!(w, "  {:<9} {}", "firewall", x(&line))?;
    }

    let problems: Vec<_> = diag.findings.iter().collect();
    if !problems.is_empty() {
        writeln!(w)?;
        writeln!(w, "{}", "What this means".bold())?;
        for f in &problems {
            let bullet = match f.severity {
                Severity::Error => "•".red(),
                Severity::Warning => "•".yellow(),
                Severity::Info => "•".normal(),
            };
            wrap_bullet(w, &bullet.to_string(), &f.message)?;
        }
    }
    if !diag.steps.is_empty() {
        writeln!(w)?;
        writeln!(w, "{}", "Next steps".bold())?;
        for (i, a) in diag.steps.iter().enumerate() {
            let text = match &a.on {
                Some(on) if a.command.is_some() => format!("{} — on {on}:", a.text),
                _ => a.text.clone(),
            };
            wrap_bullet(w, &format!("{}.", i + 1), &text)?;
            if let Some(cmd) = &a.command {
                writeln!(w, "       {}", x(cmd).cyan())?;
            }
        }
    }
    writeln!(w)?;
    writeln!(
        w,
        "{}",
        format!(
            "checked in {} (deadline {}) · canreach {}",
            fmt_duration(facts.elapsed),
            fmt_duration(facts.timeout),
            env!("CARGO_PKG_VERSION")
        )
        .dimmed()
    )
}

fn headline(v: Verdict) -> (ColoredString, ColoredString) {
    let word = v.as_str().replace('_', " ").to_uppercase();
    match v {
        Verdict::Open => ("✓".green().bold(), word.green().bold()),
        Verdict::Partial | Verdict::Inconclusive => ("!".yellow().bold(), word.yellow().bold()),
        _ => ("✗".red().bold(), word.red().bold()),
    }
}

fn outcome_word(o: Outcome) -> ColoredString {
    let s = format!("{:<8}", o.word());
    match o {
        Outcome::Open => s.green(),
        _ => s.red(),
    }
}

fn lookup_line(name: &str, l: &Lookup, who: &str) -> String {
    let took = fmt_duration(l.elapsed);
    match &l.error {
        Some(e) => format!("{name} → no address: {} ({who}, {took})", error_words(e)),
        None => {
            let addrs: Vec<String> = l.addresses.iter().map(|a| a.to_string()).collect();
            format!("{name} → {}  ({who}, {took})", addrs.join(", "))
        }
    }
}

fn wrap(w: &mut dyn Write, text: &str, indent: usize) -> io::Result<()> {
    for line in wrap_lines(&x(text), WIDTH - indent) {
        writeln!(w, "{:indent$}{line}", "")?;
    }
    Ok(())
}

/// `  1. first line` with continuation lines aligned under the text.
fn wrap_bullet(w: &mut dyn Write, bullet: &str, text: &str) -> io::Result<()> {
    // Width of the bullet as shown, without colour codes.
    let shown = strip_ansi(bullet).chars().count();
    let indent = 2 + shown + 1;
    for (i, line) in wrap_lines(&x(text), WIDTH - indent).into_iter().enumerate() {
        if i == 0 {
            writeln!(w, "  {bullet} {line}")?;
        } else {
            writeln!(w, "{:indent$}{line}", "")?;
        }
    }
    Ok(())
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut in_esc = false;
    for c in s.chars() {
        match (in_esc, c) {
            (false, '\x1b') => in_esc = true,
            (true, 'm') => in_esc = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

/// Greedy word wrap; words longer than the width stand on their own line.
fn wrap_lines(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_width_without_losing_words() {
        let text = "a ".repeat(100);
        let lines = wrap_lines(&text, 10);
        assert!(lines.iter().all(|l| l.len() <= 10));
        assert_eq!(lines.join(" ").split(' ').count(), 100);
        assert_eq!(
            wrap_lines("averyveryverylongword x", 5),
            ["averyveryverylongword", "x"]
        );
    }
}
