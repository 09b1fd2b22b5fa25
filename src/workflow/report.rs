//! Where finished checks go: written in input order as soon as every earlier target's check is
//! done, and kept only as far as the output needs them.
//!
//! | output | kept per target |
//! |---|---|
//! | `-q` | nothing (the verdict, for the exit code) |
//! | JSON Lines (`--json`, several targets) | the rendered line, until it is written |
//! | the table (several targets, text) | a [`Row`], and the rendered report of a target not open |
//! | one report, or the Markdown ticket | the whole check |
//!
//! So a run of 10,000 targets with `-q` or `--json` holds the checks in flight and the lines
//! waiting for an earlier target, never all of them ([`super::WINDOW`] bounds both).

use std::collections::BTreeMap;
use std::io::{self, Write};

use crate::cli::Format;
use crate::diagnosis::{Report, Verdict};
use crate::exit_codes::most_severe;
use crate::render;
use crate::render::table::Row;

/// What a run keeps of each check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    /// `-q`: the verdict only.
    Nothing,
    /// JSON Lines: one line per target, written in input order.
    Lines,
    /// Text, several targets: the table's row, and the report of a target not open.
    Table,
    /// One target's report, or the Markdown ticket: the whole check.
    Whole,
}

impl Keep {
    /// For a run of `targets` targets (`wait`: with `--wait`, whose JSON is always lines).
    pub(crate) fn for_run(quiet: bool, format: Format, targets: usize, wait: bool) -> Keep {
        match (quiet, format) {
            (true, _) => Keep::Nothing,
            (false, Format::Json) if targets > 1 || wait => Keep::Lines,
            (false, Format::Text) if targets > 1 => Keep::Table,
            _ => Keep::Whole,
        }
    }
}

/// One finished check, in the form its output needs.
#[derive(Debug)]
enum Done {
    Nothing,
    Line(Vec<u8>),
    Row(Row, Option<Vec<u8>>),
    Whole(Box<Report>),
}

/// The finished checks of a run, in input order.
pub(crate) struct Reports<'o> {
    keep: Keep,
    format: Format,
    out: &'o mut dyn Write,
    /// The index of the first target whose check has not been settled (written or kept).
    next: usize,
    /// Finished checks waiting for an earlier target's.
    waiting: BTreeMap<usize, Done>,
    worst: Verdict,
    rows: Vec<Row>,
    details: Vec<Vec<u8>>,
    whole: Vec<Report>,
    /// The first check this machine could not make for want of a descriptor or memory.
    resource_failure: Option<String>,
    /// The first write that failed; nothing more is written after it.
    pub write_error: Option<io::Error>,
}

impl std::fmt::Debug for Reports<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reports")
            .field("keep", &self.keep)
            .field("next", &self.next)
            .field("waiting", &self.waiting.len())
            .finish()
    }
}

impl<'o> Reports<'o> {
    pub(crate) fn new(keep: Keep, format: Format, out: &'o mut dyn Write) -> Reports<'o> {
        Reports {
            keep,
            format,
            out,
            next: 0,
            waiting: BTreeMap::new(),
            worst: Verdict::Open,
            rows: Vec::new(),
            details: Vec::new(),
            whole: Vec::new(),
            resource_failure: None,
            write_error: None,
        }
    }

    /// How many targets are settled: every one before this index.
    pub(crate) fn settled(&self) -> usize {
        self.next
    }

    /// How many finished checks wait for an earlier target's.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// The most severe verdict so far (`open` before any).
    pub(crate) fn worst(&self) -> Verdict {
        self.worst
    }

    pub(crate) fn resource_failure(&self) -> Option<&str> {
        self.resource_failure.as_deref()
    }

    /// Target `index`'s check is done: render what the output needs, drop the rest, and write
    /// every line whose turn has come.
    pub(crate) fn done(&mut self, index: usize, c: Report) {
        self.worst = most_severe([self.worst, c.verdict]);
        if self.resource_failure.is_none() {
            self.resource_failure = c.resource_failure();
        }
        let done = match self.keep {
            Keep::Nothing => Done::Nothing,
            Keep::Lines => Done::Line(json_line(&c)),
            Keep::Table => {
                let detail = (c.verdict != Verdict::Open).then(|| {
                    let mut buf = Vec::new();
                    // Into memory: cannot fail.
                    let _ = render::text::render(&c, &mut buf);
                    buf
                });
                Done::Row(Row::new(&c), detail)
            }
            Keep::Whole => Done::Whole(Box::new(c)),
        };
        self.waiting.insert(index, done);
        let mut wrote = false;
        while let Some(done) = self.waiting.remove(&self.next) {
            self.next += 1;
            match done {
                Done::Nothing => {}
                Done::Line(line) => {
                    if self.write_error.is_none() {
                        wrote = true;
                        if let Err(e) = self.out.write_all(&line) {
                            self.write_error = Some(e);
                        }
                    }
                }
                Done::Row(row, detail) => {
                    self.rows.push(row);
                    self.details.extend(detail);
                }
                Done::Whole(c) => self.whole.push(*c),
            }
        }
        // Written as they complete: a reader of the stream sees each line now, not at the end.
        if wrote
            && self.write_error.is_none()
            && let Err(e) = self.out.flush()
        {
            self.write_error = Some(e);
        }
    }

    /// A line of its own on the output now (a change of verdict during `--wait`, JSON).
    pub(crate) fn event(&mut self, line: &str) {
        if self.write_error.is_some() {
            return;
        }
        let r = writeln!(self.out, "{line}").and_then(|()| self.out.flush());
        if let Err(e) = r {
            self.write_error = Some(e);
        }
    }

    /// Every check is done: write what was kept (the table and its reports, one report, the
    /// ticket).
    pub(crate) fn finish(mut self) -> Option<io::Error> {
        if self.write_error.is_none() {
            let r = self.write_kept().and_then(|()| self.out.flush());
            if let Err(e) = r {
                self.write_error = Some(e);
            }
        }
        self.write_error
    }

    fn write_kept(&mut self) -> io::Result<()> {
        let out = &mut *self.out;
        match self.keep {
            Keep::Nothing | Keep::Lines => Ok(()),
            Keep::Table => {
                render::table::render(&self.rows, out)?;
                for d in &self.details {
                    writeln!(out)?;
                    out.write_all(d)?;
                }
                Ok(())
            }
            Keep::Whole => match (self.format, self.whole.as_slice()) {
                (_, []) => Ok(()),
                (Format::Markdown, all) => {
                    let host = crate::hostinfo::HostInfo::gather();
                    let reports: Vec<&Report> = all.iter().collect();
                    render::markdown::render(&reports, &host, out)
                }
                (Format::Nagios, all) => {
                    let rows: Vec<&Report> = all.iter().collect();
                    render::nagios::render(&rows, out)
                }
                (Format::Json, [c, ..]) => render::json::render(c, out),
                (Format::Text, [c, ..]) => render::text::render(c, out),
            },
        }
    }
}

/// One target's JSON report on one line, with its newline.
fn json_line(report: &Report) -> Vec<u8> {
    let mut buf = Vec::new();
    // Into memory: cannot fail.
    let _ = render::json::render(report, &mut buf);
    let mut line = one_line(&String::from_utf8_lossy(&buf)).into_bytes();
    line.push(b'\n');
    line
}

/// A pretty-printed JSON document on one line, its keys in the contract's order. A JSON
/// string cannot hold a raw newline, so every line break and the indentation after it lie
/// outside strings.
pub(crate) fn one_line(pretty: &str) -> String {
    pretty.lines().map(str::trim_start).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(port: u16) -> Report {
        let services = crate::services::Services::parse("");
        let target = crate::target::parse(&format!("198.18.0.1:{port}"), None, &services).unwrap();
        let facts = crate::facts::Facts::new(target, std::time::Duration::from_secs(5));
        crate::diagnosis::diagnose(facts)
    }

    fn ports_of(out: &[u8]) -> Vec<u64> {
        String::from_utf8_lossy(out)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["target"]["port"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn a_line_is_written_once_every_earlier_target_is_done() {
        let mut out = Vec::new();
        let mut r = Reports::new(Keep::Lines, Format::Json, &mut out);
        r.done(2, checked(3));
        r.done(1, checked(2));
        assert_eq!((r.settled(), r.waiting()), (0, 2));
        r.done(0, checked(1));
        assert_eq!((r.settled(), r.waiting()), (3, 0));
        r.done(4, checked(5));
        assert_eq!(r.finish().map(|e| e.to_string()), None);
        assert_eq!(ports_of(&out), [1, 2, 3], "the fifth waits for the fourth");
    }

    #[test]
    fn quiet_keeps_nothing_but_the_worst_verdict() {
        let mut out = Vec::new();
        let mut r = Reports::new(Keep::Nothing, Format::Json, &mut out);
        for i in 0..3 {
            r.done(i, checked(1 + i as u16));
        }
        assert_eq!(r.worst(), checked(1).verdict);
        assert!(r.finish().is_none());
        assert!(out.is_empty());
    }

    #[test]
    fn json_reports_fold_onto_one_line_in_order() {
        let pretty = "{\n  \"b\": 1,\n  \"a\": \"x  y\"\n}\n";
        assert_eq!(one_line(pretty), "{\"b\": 1,\"a\": \"x  y\"}");
    }
}
