//! Renderers turn a finished check, a [`crate::diagnosis::Report`], into
//! bytes on any `io::Write`. They decide nothing and never touch the network.
//!
//! The text report and the table are laid out for [`width`] columns: the terminal's width when
//! stdout is one, else [`DEFAULT_WIDTH`] (a file, a pipe, a ticket). `main` sets it once, as it
//! sets colour; renderers only read it.

use std::sync::atomic::{AtomicUsize, Ordering};

pub mod json;
pub(crate) mod markdown;
pub mod nagios;
pub(crate) mod table;
pub mod text;

#[cfg(test)]
mod json_verdicts;
#[cfg(test)]
mod tests;

/// The width of a report that is not on a terminal.
pub(crate) const DEFAULT_WIDTH: usize = 80;

/// Narrower than this, no layout is readable: lines are laid out for this many columns.
const MIN_WIDTH: usize = 40;

static WIDTH: AtomicUsize = AtomicUsize::new(DEFAULT_WIDTH);

/// Lay the text report and the table out for `columns` (at least 40).
pub fn set_width(columns: usize) {
    WIDTH.store(columns.max(MIN_WIDTH), Ordering::Relaxed);
}

/// The columns the text report and the table fit in.
pub(crate) fn width() -> usize {
    WIDTH.load(Ordering::Relaxed)
}

/// The columns of stdout when it is a terminal that knows its size, else [`DEFAULT_WIDTH`]; at
/// least 40.
pub fn stdout_width() -> usize {
    terminal_size::terminal_size_of(std::io::stdout())
        .map(|(w, _)| usize::from(w.0))
        .filter(|w| *w > 0)
        .map_or(DEFAULT_WIDTH, |w| w.max(MIN_WIDTH))
}
