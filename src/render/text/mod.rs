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
//!
//! Every line fits [`super::width`] columns (80 off a terminal): prose wraps (a word wider than
//! the line is cut across lines), a listener's command line is shortened with `…` (whole in
//! the JSON), and an advised command longer than a line is broken between words with the
//! shell's ` \` continuation, so that it still pastes.

pub(super) mod layout;
mod session;

use std::io::{self, Write};

use colored::{ColoredString, Colorize};

use self::layout::{
    COMMAND, LABEL, Style, cols, dim, field, field_at, green, hanging, plain, red, shorten,
    strip_ansi, width, wrap, wrap_bullet, wrap_command, wrap_hard, wrap_lines, yellow,
};
use self::session::lines as session_lines;
use crate::diagnosis::dns::{error_words, port53_tcp, stub_words, udp53_words};
use crate::diagnosis::views::HopKind;
use crate::diagnosis::views::{Liveness, Path};
use crate::diagnosis::{
    AddressReport, Outcome, Report, Severity, Verdict, fmt_duration, fmt_given,
};
use crate::dns::DnsFacts;
use crate::dns::Lookup;
use crate::escape::{display_name, escape};
use crate::facts::Facts;
use crate::local::{Firewall, LocalFacts};
use crate::target::{Host, PortSource};

/// The direct path beside a proxy, in one line.
fn direct_line(report: &Report, v: &crate::facts::ProxyRoute) -> String {
    if let Some(e) = &v.direct.lookup_error {
        return format!(
            "without the proxy: the name does not resolve ({})",
            error_words(e)
        );
    }
    let each: Vec<String> = report
        .direct
        .iter()
        .map(|a| {
            format!(
                "{} {} ({})",
                a.address.ip(),
                a.outcome.as_str(),
                a.describe()
            )
        })
        .collect();
    if each.is_empty() {
        "without the proxy: not tried".into()
    } else {
        format!("without the proxy: {}", each.join("; "))
    }
}

/// Write the human report, every line within [`super::width`] columns.
pub fn render(report: &Report, w: &mut dyn Write) -> io::Result<()> {
    title(report, w)?;
    writeln!(w)?;
    writeln!(w, "{}", "What was checked".bold())?;
    target_lines(report, w)?;
    if let Host::Name(name) = &report.facts.checked().host {
        name_lines(&report.facts.dns, name, w)?;
    }
    let ip_width = report
        .results()
        .map(|a| a.address.ip().to_string().len())
        .max()
        .unwrap_or(0);
    address_lines(report, ip_width, w)?;
    if let Some(l) = &report.liveness {
        liveness_lines(l, report.facts.checked().port.get(), w)?;
    }
    if let Some(p) = &report.path {
        path_lines(p, ip_width, w)?;
    }
    if let Some(l) = &report.facts.local {
        listener_lines(l, w)?;
    }
    if let Some(fw) = &report.facts.firewall {
        firewall_line(fw, report.facts.checked().port.get(), w)?;
    }
    findings(report, w)?;
    steps(report, w)?;
    writeln!(w)?;
    footer(&report.facts, w)
}

/// The verdict and the target, then the summary.
fn title(report: &Report, w: &mut dyn Write) -> io::Result<()> {
    let (mark, word) = headline(report.verdict);
    let head = format!("{mark} {word}  ");
    let target = escape(&report.facts.target.display()).into_owned();
    for (i, l) in wrap_hard(&target, width() - cols(&strip_ansi(&head)))
        .iter()
        .enumerate()
    {
        if i == 0 {
            writeln!(w, "{head}{}", l.bold())?;
        } else {
            writeln!(w, "  {}", l.bold())?;
        }
    }
    wrap(w, &report.summary, 2)
}

/// The target, its port and where the port came from; the proxy and the direct path.
fn target_lines(report: &Report, w: &mut dyn Write) -> io::Result<()> {
    let facts = &report.facts;
    let t = &facts.target;
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
    let line = format!("{} port {}{port_note}", escape(&host), t.port);
    field(w, "target", &line, plain)?;
    // Through a proxy, the name and the addresses below are the proxy's.
    if let Some(v) = &facts.via {
        let line = format!(
            "{} port {} (from {}): the application's way, checked below",
            v.endpoint.host, v.endpoint.port, v.proxy.variable
        );
        field(w, "proxy", &escape(&line), plain)?;
        field(w, "direct", &escape(&direct_line(report, v)), dim)?;
    }
    Ok(())
}

/// The name as the system resolver, /etc/hosts and each name server gave it.
fn name_lines(dns: &DnsFacts, name: &str, w: &mut dyn Write) -> io::Result<()> {
    if let Some(sys) = &dns.system {
        let line = lookup_line(name, sys, "system resolver");
        field(w, "name", &escape(&line), plain)?;
    }
    for h in &dns.hosts {
        let line = format!("{} line {}: {}", h.file, h.line, h.text);
        field(w, "", &escape(&line), dim)?;
    }
    for sv in &dns.servers {
        let who = match sv.stub {
            Some(kind) => format!("DNS {}, {}", sv.server.ip(), stub_words(kind)),
            None => format!("DNS {}", sv.server.ip()),
        };
        // A name from DNS or resolv.conf is shown by `display_name` (its ASCII form, the
        // Unicode one only when safe); the name as typed is the user's own.
        let shown = sv
            .name_used
            .as_deref()
            .map_or_else(|| name.to_string(), display_name);
        field(
            w,
            "",
            &escape(&lookup_line(&shown, &sv.lookup, &who)),
            plain,
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
            field_at(w, "", 2, &escape(&chain.join(", ")), dim)?;
        }
        if let Some(p) = &sv.port53 {
            let udp = udp53_words(p.udp);
            let tcp = port53_tcp(&p.tcp);
            field_at(
                w,
                "",
                2,
                &escape(&format!("port 53: TCP {tcp}, UDP {udp}")),
                plain,
            )?;
        }
    }
    if let (true, Some(direct)) = (dns.servers.is_empty(), &dns.direct) {
        field(
            w,
            "",
            &escape(&lookup_line(name, direct, "DNS servers")),
            plain,
        )?;
    }
    Ok(())
}

/// Each address: its outcome, the evidence, what happened after the connect.
fn address_lines(report: &Report, ip_width: usize, w: &mut dyn Write) -> io::Result<()> {
    for entry in &report.facts.addresses {
        let (a, f) = (&entry.result, &entry.facts);
        let ip = format!("{:<ip_width$}  ", a.address.ip().to_string());
        let word = outcome_word(a.outcome);
        let prefix = format!("  {:<9} {ip}{word}  ", "address");
        let at = LABEL + ip_width + 2 + 8 + 2;
        // Continuation lines under the evidence when that leaves room, else under the label.
        let indent = if width() >= at + 24 { at } else { LABEL };
        hanging(w, &prefix, at, indent, &a.describe(), dim)?;
        for (label, line) in f.session.as_ref().map(session_lines).unwrap_or_default() {
            field(w, label, &escape(&line), plain)?;
        }
    }
    Ok(())
}

/// Is the host up: its other ports, and the second SYN to this one.
fn liveness_lines(l: &Liveness, port: u16, w: &mut dyn Write) -> io::Result<()> {
    let probes: Vec<String> = l
        .probes
        .iter()
        .map(|p| match (p.outcome, p.elapsed) {
            (Some(o), Some(e)) => {
                format!("port {} {} in {}", p.port, o.as_str(), fmt_duration(e))
            }
            _ => format!("port {} no answer", p.port),
        })
        .collect();
    let (verdict, colour): (&str, Style) = match l.alive {
        Some(true) => ("the host is up", green),
        Some(false) => ("the host is unreachable", red),
        None => ("no sign of the host", yellow),
    };
    let prefix = format!("  {:<9} {}: ", "host", colour(verdict));
    let at = LABEL + verdict.len() + 2;
    hanging(w, &prefix, at, LABEL, &probes.join(", "), plain)?;
    if let Some(second) = &l.second_syn {
        let what = match (second.outcome, second.elapsed) {
            (Some(o), Some(e)) => format!("{} in {}", o.as_str(), fmt_duration(e)),
            _ => match l.decided_after {
                Some(b) => format!("no answer in {}", fmt_duration(b)),
                None => "no answer".to_string(),
            },
        };
        let line = format!("second SYN to port {}: {what}", port);
        field(w, "", &line, plain)?;
    }
    Ok(())
}

/// The path walk, hop by hop.
fn path_lines(p: &Path, ip_width: usize, w: &mut dyn Write) -> io::Result<()> {
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
            "  {label:<9} hop {:<2} {addr:<ip_width$}  {kind} {took}{note}",
            h.ttl
        )?;
    }
    Ok(())
}

/// This machine's listeners on the port and who owns them.
fn listener_lines(l: &LocalFacts, w: &mut dyn Write) -> io::Result<()> {
    if l.listeners.is_empty() {
        field(
            w,
            "here",
            &format!("nothing listens on port {}", l.port),
            red,
        )?;
    }
    for (i, li) in l.listeners.iter().enumerate() {
        let addr = match li.address {
            std::net::IpAddr::V6(a) => format!("[{a}]:{}", li.port),
            a => format!("{a}:{}", li.port),
        };
        let user = li.user.clone().unwrap_or_else(|| format!("uid {}", li.uid));
        let label = if i == 0 { "listening" } else { "" };
        match &li.process {
            Some(p) => {
                // The executable, unless the command line already starts with it.
                let who = match p.exe.as_deref() {
                    Some(exe) if !p.cmdline.starts_with(exe) => {
                        format!("{} (pid {}, {user}, {exe})", p.name, p.pid)
                    }
                    _ => format!("{} (pid {}, {user})", p.name, p.pid),
                };
                field(w, label, &escape(&format!("{addr}  {who}")), dim)?;
                // The command line whole is in the JSON; here, what fits on one line.
                let cmd = shorten(&escape(&p.cmdline), width() - LABEL);
                writeln!(w, "{:LABEL$}{}", "", cmd.dimmed())?;
            }
            None => {
                // As root every process is visible: an owner not found is the owner
                // search cut short (or a process gone meanwhile), not a matter of sudo.
                let who = if l.privileged {
                    format!("a process of {user} (not found)")
                } else {
                    format!("a process of {user} (run with sudo to see which)")
                };
                field(w, label, &escape(&format!("{addr}  {who}")), dim)?;
            }
        }
    }
    if !l.owner_other_listeners.is_empty() {
        let others: Vec<String> = l
            .owner_other_listeners
            .iter()
            .map(|li| format!("{}:{}", li.address, li.port))
            .collect();
        let line = format!("the same process also listens on {}", others.join(", "));
        field(w, "", &line, plain)?;
    }
    Ok(())
}

/// This machine's firewall: the rules for the port, or why it was not read.
fn firewall_line(fw: &Firewall, port: u16, w: &mut dyn Write) -> io::Result<()> {
    let line = if !fw.inspected {
        format!(
            "not inspected: {}",
            crate::diagnosis::local::unread_words(fw)
        )
    } else if fw.rules.is_empty() {
        format!("no rule of this machine drops or rejects port {}", port)
    } else {
        let rules: Vec<String> = fw
            .rules
            .iter()
            .map(|r| format!("{}: {}", r.hook, r.text))
            .collect();
        rules.join("; ")
    };
    field(w, "firewall", &escape(&line), plain)?;
    Ok(())
}

/// "What this means": the findings, strongest first.
fn findings(report: &Report, w: &mut dyn Write) -> io::Result<()> {
    let problems: Vec<_> = report.findings.iter().collect();
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
    Ok(())
}

/// "Next steps": numbered, each with its command laid out to paste.
fn steps(report: &Report, w: &mut dyn Write) -> io::Result<()> {
    if !report.steps.is_empty() {
        writeln!(w)?;
        writeln!(w, "{}", "Next steps".bold())?;
        for (i, a) in report.steps.iter().enumerate() {
            let text = match &a.on {
                Some(on) if a.command.is_some() => format!("{} — on {on}:", a.text),
                _ => a.text.clone(),
            };
            wrap_bullet(w, &format!("{}.", i + 1), &text)?;
            if let Some(cmd) = &a.command {
                for l in wrap_command(&escape(cmd), width() - COMMAND) {
                    writeln!(w, "{}{}", l.0, l.1.cyan())?;
                }
            }
        }
    }
    Ok(())
}

/// How long the check took, under which deadline (and how a --wait went).
fn footer(facts: &Facts<AddressReport>, w: &mut dyn Write) -> io::Result<()> {
    // With --wait, the last check's deadline may be what the wait had left: say so, and how
    // the wait went.
    let (cut, waited) = match &facts.waited {
        Some(v) => {
            let checks = if v.checks == 1 {
                "1 check".to_string()
            } else {
                format!("{} checks", v.checks)
            };
            let wait = fmt_given(v.wait);
            if facts.timeout < v.timeout {
                (
                    format!(", what was left of --wait {wait}"),
                    format!(" · {checks} in {}", fmt_duration(v.took)),
                )
            } else {
                (
                    String::new(),
                    format!(" · {checks} in {} of --wait {wait}", fmt_duration(v.took)),
                )
            }
        }
        None => (String::new(), String::new()),
    };
    let footer = format!(
        "checked in {} (deadline {}{cut}){waited} · canreach {}",
        fmt_duration(facts.elapsed),
        fmt_duration(facts.timeout),
        env!("CARGO_PKG_VERSION")
    );
    for l in wrap_lines(&footer, width()) {
        writeln!(w, "{}", l.dimmed())?;
    }
    Ok(())
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
    let s = format!("{:<8}", o.as_str());
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
