//! Laying the text report out: labelled lines, wrapping within the report's width (wide
//! characters count two columns), bullets, commands broken so that they still paste, colours.

use std::io::{self, Write};

use colored::{ColoredString, Colorize};

use crate::escape::escape;

/// Where the text of a labelled line starts: two spaces, the label in 9, a space.
pub(super) const LABEL: usize = 12;

/// Where an advised command starts.
pub(super) const COMMAND: usize = 7;

/// A colour for a wrapped line's text.
pub(super) type Style = fn(&str) -> ColoredString;

pub(super) fn plain(s: &str) -> ColoredString {
    s.normal()
}

pub(super) fn dim(s: &str) -> ColoredString {
    s.dimmed()
}

pub(super) fn red(s: &str) -> ColoredString {
    s.red()
}

pub(super) fn green(s: &str) -> ColoredString {
    s.green()
}

pub(super) fn yellow(s: &str) -> ColoredString {
    s.yellow()
}

/// The columns the report is laid out for.
pub(super) fn width() -> usize {
    crate::render::width()
}

/// Columns `s` takes on a terminal (wide characters count two; `s` is escaped, so it holds no
/// control character).
pub(super) fn cols(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

/// `  label     text`, wrapped, continuation lines under the text.
pub(super) fn field(w: &mut dyn Write, label: &str, text: &str, style: Style) -> io::Result<()> {
    field_at(w, label, 0, text, style)
}

/// The same, the text `extra` columns further in.
pub(super) fn field_at(
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
pub(super) fn hanging(
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

pub(super) fn wrap(w: &mut dyn Write, text: &str, indent: usize) -> io::Result<()> {
    for line in wrap_hard(&escape(text), width() - indent) {
        writeln!(w, "{:indent$}{line}", "")?;
    }
    Ok(())
}

/// `  1. first line` with continuation lines aligned under the text.
pub(super) fn wrap_bullet(w: &mut dyn Write, bullet: &str, text: &str) -> io::Result<()> {
    // Width of the bullet as shown, without colour codes.
    let shown = cols(&strip_ansi(bullet));
    let indent = 2 + shown + 1;
    for (i, line) in wrap_hard(&escape(text), width() - indent)
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

pub(super) fn strip_ansi(s: &str) -> String {
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
pub(super) fn wrap_lines(text: &str, width: usize) -> Vec<String> {
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
pub(in crate::render) fn wrap_hard(text: &str, width: usize) -> Vec<String> {
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
pub(super) fn shorten(text: &str, width: usize) -> String {
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
pub(super) fn wrap_command(cmd: &str, width: usize) -> Vec<(String, String)> {
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
