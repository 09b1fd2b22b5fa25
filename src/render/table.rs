//! The summary table of a run of several targets: one row per target, in input order —
//! verdict, first address, time, and the reason (the diagnosis's summary), wrapped within the
//! report's width ([`super::width`]).

use std::io::{self, Write};

use colored::Colorize;

use crate::diagnosis::{Report, Verdict, fmt_duration};
use crate::escape::escape;

/// What the table shows of one check, already escaped: a run of many targets keeps this, not
/// the check's facts (a few hundred bytes a row instead of kilobytes).
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub verdict: Verdict,
    cells: [String; 5],
}

impl Row {
    pub(crate) fn new(d: &Report) -> Row {
        let f = &d.facts;
        let address = match f.addresses.as_slice() {
            [] => "-".to_string(),
            [a] => a.result.address.ip().to_string(),
            [a, rest @ ..] => format!("{} +{}", a.result.address.ip(), rest.len()),
        };
        Row {
            verdict: d.verdict,
            cells: [
                escape(&f.target.display()).into_owned(),
                d.verdict.as_str().to_string(),
                address,
                fmt_duration(f.elapsed),
                escape(&d.summary).into_owned(),
            ],
        }
    }
}

/// Write the table.
pub(crate) fn render(rows: &[Row], w: &mut dyn Write) -> io::Result<()> {
    let cells: Vec<&[String; 5]> = rows.iter().map(|r| &r.cells).collect();
    let head = ["TARGET", "VERDICT", "ADDRESS", "TIME", "WHY"];
    let width = |i: usize| {
        cells
            .iter()
            .map(|c| c[i].chars().count())
            .chain([head[i].len()])
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2, w3) = (width(0), width(1), width(2), width(3));
    writeln!(
        w,
        "{}",
        format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {}",
            head[0], head[1], head[2], head[3], head[4]
        )
        .bold()
    )?;
    // WHY wraps in the columns left of the report's width; when fewer than 24 are left, it
    // goes on the lines below its row instead.
    let why_at = w0 + w1 + w2 + w3 + 8;
    let below = super::width() < why_at + 24;
    for r in rows {
        let c = &r.cells;
        let verdict = format!("{:<w1$}", c[1]);
        let verdict = if r.verdict == Verdict::Open {
            verdict.green()
        } else {
            verdict.red().bold()
        };
        let row = format!("{:<w0$}  {verdict}  {:<w2$}  {:>w3$}", c[0], c[2], c[3]);
        if below {
            writeln!(w, "{row}")?;
            for l in super::text::layout::wrap_hard(&c[4], super::width() - 4) {
                writeln!(w, "    {l}")?;
            }
            continue;
        }
        let lines = super::text::layout::wrap_hard(&c[4], super::width() - why_at);
        for (i, l) in lines.iter().enumerate() {
            if i == 0 {
                writeln!(w, "{row}  {l}")?;
            } else {
                writeln!(w, "{:why_at$}{l}", "")?;
            }
        }
    }
    Ok(())
}
