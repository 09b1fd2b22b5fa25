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

use std::io::{self, Write};

use colored::{ColoredString, Colorize};

use crate::diagnosis::dns::{error_words, port53_tcp, stub_words, udp53_words};
use crate::diagnosis::session::lines as session_lines;
use crate::diagnosis::silence::HopKind;
use crate::diagnosis::{Diagnosis, Outcome, Severity, Verdict, fmt_duration, fmt_given};
use crate::dns::Lookup;
use crate::escape::{display_name, escape as x};
use crate::facts::Facts;
use crate::target::{Host, PortSource};

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

/// Write the human report, every line within [`super::width`] columns.
pub fn render(facts: &Facts, diag: &Diagnosis, w: &mut dyn Write) -> io::Result<()> {
    let t = &facts.target;
    let (mark, word) = headline(diag.verdict);
    let head = format!("{mark} {word}  ");
    let target = x(&t.display()).into_owned();
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
    let line = format!("{} port {}{port_note}", x(&host), t.port);
    field(w, "target", &line, plain)?;
    // Through a proxy, the name and the addresses below are the proxy's.
    if let Some(v) = &facts.via {
        let line = format!(
            "{} port {} (from {}): the application's way, checked below",
            v.endpoint.host, v.endpoint.port, v.proxy.variable
        );
        field(w, "proxy", &x(&line), plain)?;
        field(w, "direct", &x(&direct_line(v)), dim)?;
    }
    if let Host::Name(name) = &facts.checked().host {
        if let Some(sys) = &facts.dns.system {
            let line = lookup_line(name, sys, "system resolver");
            field(w, "name", &x(&line), plain)?;
        }
        for h in &facts.dns.hosts {
            let line = format!("{} line {}: {}", h.file, h.line, h.text);
            field(w, "", &x(&line), dim)?;
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
            field(w, "", &x(&lookup_line(&shown, &sv.lookup, &who)), plain)?;
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
                field_at(w, "", 2, &x(&chain.join(", ")), dim)?;
            }
            if let Some(p) = &sv.port53 {
                let udp = udp53_words(p.udp);
                let tcp = port53_tcp(&p.tcp);
                field_at(
                    w,
                    "",
                    2,
                    &x(&format!("port 53: TCP {tcp}, UDP {udp}")),
                    plain,
                )?;
            }
        }
        if let (true, Some(direct)) = (facts.dns.servers.is_empty(), &facts.dns.direct) {
            field(w, "", &x(&lookup_line(name, direct, "DNS servers")), plain)?;
        }
    }
    let ip_width = diag
        .addresses
        .iter()
        .map(|a| a.address.ip().to_string().len())
        .max()
        .unwrap_or(0);
    for (a, f) in diag.addresses.iter().zip(&facts.addresses) {
        let ip = format!("{:<ip_width$}  ", a.address.ip().to_string());
        let word = outcome_word(a.outcome);
        let prefix = format!("  {:<9} {ip}{word}  ", "address");
        let at = LABEL + ip_width + 2 + 8 + 2;
        // Continuation lines under the evidence when that leaves room, else under the label.
        let indent = if width() >= at + 24 { at } else { LABEL };
        hanging(w, &prefix, at, indent, &a.describe(), dim)?;
        for (label, line) in f.session.as_ref().map(session_lines).unwrap_or_default() {
            field(w, label, &x(&line), plain)?;
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
        let (verdict, colour): (&str, Style) = match l.alive {
            Some(true) => ("the host is up", green),
            Some(false) => ("the host is unreachable", red),
            None => ("no sign of the host", yellow),
        };
        let prefix = format!("  {:<9} {}: ", "liveness", colour(verdict));
        let at = LABEL + verdict.len() + 2;
        hanging(w, &prefix, at, LABEL, &probes.join(", "), plain)?;
        if let Some(second) = &l.second_syn {
            let what = match (second.outcome, second.elapsed) {
                (Some(o), Some(e)) => format!("{} in {}", o.word(), fmt_duration(e)),
                _ => match l.decided_after {
                    Some(b) => format!("no answer in {}", fmt_duration(b)),
                    None => "no answer".to_string(),
                },
            };
            let line = format!("second SYN to port {}: {what}", facts.checked().port);
            field(w, "", &line, plain)?;
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
                "  {label:<9} hop {:<2} {addr:<ip_width$}  {kind} {took}{note}",
                h.ttl
            )?;
        }
    }

    if let Some(l) = &facts.local {
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
                    field(w, label, &x(&format!("{addr}  {who}")), dim)?;
                    // The command line whole is in the JSON; here, what fits on one line.
                    let cmd = shorten(&x(&p.cmdline), width() - LABEL);
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
                    field(w, label, &x(&format!("{addr}  {who}")), dim)?;
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
        field(w, "firewall", &x(&line), plain)?;
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
                for l in wrap_command(&x(cmd), width() - COMMAND) {
                    writeln!(w, "{}{}", l.0, l.1.cyan())?;
                }
            }
        }
    }
    writeln!(w)?;
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

/// Where the text of a labelled line starts: two spaces, the label in 9, a space.
const LABEL: usize = 12;

/// Where an advised command starts.
const COMMAND: usize = 7;

/// A colour for a wrapped line's text.
type Style = fn(&str) -> ColoredString;

fn plain(s: &str) -> ColoredString {
    s.normal()
}

fn dim(s: &str) -> ColoredString {
    s.dimmed()
}

fn red(s: &str) -> ColoredString {
    s.red()
}

fn green(s: &str) -> ColoredString {
    s.green()
}

fn yellow(s: &str) -> ColoredString {
    s.yellow()
}

/// The columns the report is laid out for.
fn width() -> usize {
    super::width()
}

/// Columns `s` takes on a terminal (wide characters count two; `s` is escaped, so it holds no
/// control character).
fn cols(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

/// `  label     text`, wrapped, continuation lines under the text.
fn field(w: &mut dyn Write, label: &str, text: &str, style: Style) -> io::Result<()> {
    field_at(w, label, 0, text, style)
}

/// The same, the text `extra` columns further in.
fn field_at(
    w: &mut dyn Write,
    label: &str,
    extra: usize,
    text: &str,
    style: Style,
) -> io::Result<()> {
    let prefix = format!("  {label:<9} {:extra$}", "");
    hanging(w, &prefix, LABEL + extra, LABEL + extra, text, style)
}

/// `prefix` (possibly coloured; `at` columns wide) and `text` wrapped after it, continuation
/// lines indented `indent` columns.
fn hanging(
    w: &mut dyn Write,
    prefix: &str,
    at: usize,
    indent: usize,
    text: &str,
    style: Style,
) -> io::Result<()> {
    let first = width().saturating_sub(at).max(1);
    let rest = width().saturating_sub(indent).max(1);
    let mut lines = wrap_hard(text, first).into_iter();
    let Some(head) = lines.next() else {
        return writeln!(w, "{}", prefix.trim_end());
    };
    writeln!(w, "{prefix}{}", style(&head))?;
    let tail: Vec<String> = lines.collect();
    for l in wrap_hard(&tail.join(" "), rest) {
        writeln!(w, "{:indent$}{}", "", style(&l))?;
    }
    Ok(())
}

fn wrap(w: &mut dyn Write, text: &str, indent: usize) -> io::Result<()> {
    for line in wrap_hard(&x(text), width() - indent) {
        writeln!(w, "{:indent$}{line}", "")?;
    }
    Ok(())
}

/// `  1. first line` with continuation lines aligned under the text.
fn wrap_bullet(w: &mut dyn Write, bullet: &str, text: &str) -> io::Result<()> {
    // Width of the bullet as shown, without colour codes.
    let shown = cols(&strip_ansi(bullet));
    let indent = 2 + shown + 1;
    for (i, line) in wrap_hard(&x(text), width() - indent)
        .into_iter()
        .enumerate()
    {
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

/// Greedy word wrap to `width` columns; a word longer than the width stands on its own line.
fn wrap_lines(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && cols(&cur) + 1 + cols(word) > width {
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

/// [`wrap_lines`] for prose: a word longer than the width (a long URL, a name) is cut across
/// lines, so that no line is wider.
pub(super) fn wrap_hard(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut words = Vec::new();
    for word in text.split_whitespace() {
        if cols(word) <= width {
            words.push(word.to_string());
            continue;
        }
        let mut piece = String::new();
        for c in word.chars() {
            let c_cols = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
            if !piece.is_empty() && cols(&piece) + c_cols > width {
                words.push(std::mem::take(&mut piece));
            }
            piece.push(c);
        }
        words.push(piece);
    }
    wrap_lines(&words.join(" "), width)
}

/// `text` cut to `width` columns, `…` at the end when cut.
fn shorten(text: &str, width: usize) -> String {
    if cols(text) <= width {
        return text.to_string();
    }
    let mut out = String::new();
    for c in text.chars() {
        let c_cols = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if cols(&out) + c_cols + 1 > width {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

/// An advised command laid out to paste: `(indent, words)` lines, broken between words with
/// the shell's ` \` continuation, continuation lines two columns further in. A single word
/// wider than the line is kept whole: cut, the command would not run.
fn wrap_command(cmd: &str, width: usize) -> Vec<(String, String)> {
    let lines = wrap_lines(cmd, width.saturating_sub(2).max(1));
    let n = lines.len();
    lines
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let indent = " ".repeat(if i == 0 { COMMAND } else { COMMAND + 2 });
            let l = if i + 1 < n { format!("{l} \\") } else { l };
            (indent, l)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_never_runs_past_the_width() {
        let url = format!("https://example.com/{}", "a".repeat(120));
        let text = format!("The redirect goes to {url} and on, with «wide» 名前 words.");
        for width in [40, 66, 80] {
            let lines = wrap_hard(&text, width);
            assert!(lines.iter().all(|l| cols(l) <= width), "{lines:?}");
            assert_eq!(lines.concat().replace(' ', ""), text.replace(' ', ""));
        }
        // Wide characters count two columns.
        assert_eq!(wrap_hard("名前 名前", 4), ["名前", "名前"]);
    }

    #[test]
    fn a_long_command_line_is_shortened_with_an_ellipsis() {
        let cmd = "postgres -D /var/lib/postgresql/15/main -c config_file=/etc/postgresql/15/main/postgresql.conf";
        let short = shorten(cmd, 68);
        assert_eq!(cols(&short), 68);
        assert!(short.ends_with('…') && cmd.starts_with(short.trim_end_matches('…')));
        assert_eq!(shorten("short", 68), "short");
    }

    #[test]
    fn a_long_command_breaks_between_words_and_still_pastes() {
        let cmd = "canreach --timeout 30s --protocol https https://a-rather-long-host-name.example.com/health";
        let lines = wrap_command(cmd, 73);
        assert!(lines.len() > 1, "{lines:?}");
        for (i, (indent, l)) in lines.iter().enumerate() {
            assert!(indent.len() + cols(l) <= 80, "{l}");
            assert_eq!(l.ends_with(" \\"), i + 1 < lines.len(), "{l}");
        }
        // Joined back as a shell joins continued lines: the same command.
        let joined: Vec<String> = lines
            .iter()
            .map(|(_, l)| l.trim_end_matches(" \\").to_string())
            .collect();
        assert_eq!(joined.join(" "), cmd);
        // One word wider than the line stays whole.
        let one = "x".repeat(90);
        assert_eq!(wrap_command(&one, 73), [(" ".repeat(7), one)]);
    }

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
