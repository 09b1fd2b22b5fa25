//! The progress line: on a terminal, a check that takes longer than [`DELAY`] shows what it is
//! doing on stderr (an indicatif spinner, redrawn by the runtime's own timer: no thread), and
//! the line is cleared when done, leaving no trace. Never when stderr is not a terminal, with
//! `--json` or with `-q`.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget};
use tokio::time::Instant;

use crate::cli::{Cli, Format};
use crate::escape::escape;

use super::input::Input;
use super::{Phase, Slot};

/// A check quicker than this shows nothing.
pub(crate) const DELAY: Duration = Duration::from_millis(300);
const TICK: Duration = Duration::from_millis(100);

/// Should this run show a progress line?
pub(crate) fn wanted(cli: &Cli) -> bool {
    !cli.quiet
        && !matches!(cli.output_format(), Format::Json | Format::Nagios)
        && std::io::stderr().is_terminal()
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// The spinner, created only once a check has taken [`DELAY`].
#[derive(Debug)]
pub(crate) struct Progress {
    enabled: bool,
    bar: RefCell<Option<ProgressBar>>,
}

impl Progress {
    pub(crate) fn new(enabled: bool) -> Progress {
        Progress {
            enabled,
            bar: RefCell::new(None),
        }
    }

    /// Keep the line up to date; never returns (the caller drops it when the checks end).
    pub(crate) async fn run(
        &self,
        inputs: &[Input],
        slots: &[Slot],
        start: Instant,
        until: Option<Instant>,
    ) {
        if !self.enabled {
            return std::future::pending().await;
        }
        tokio::time::sleep(DELAY).await;
        let bar = ProgressBar::new_spinner();
        bar.set_draw_target(ProgressDrawTarget::stderr());
        *self.bar.borrow_mut() = Some(bar.clone());
        loop {
            bar.set_message(message(inputs, slots, start, until));
            bar.tick();
            tokio::time::sleep(TICK).await;
        }
    }

    /// A line on stderr that stays (a change during a wait), above the spinner.
    pub(crate) fn println(&self, line: &str) {
        match &*self.bar.borrow() {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    /// Remove the line.
    pub(crate) fn clear(&self) {
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.finish_and_clear();
        }
    }
}

/// What the line says: the phase of the first target not done, how many are done, the time
/// a wait has left.
fn message(inputs: &[Input], slots: &[Slot], start: Instant, until: Option<Instant>) -> String {
    let done = slots.iter().filter(|s| s.phase() == Phase::Done).count();
    let busy = inputs
        .iter()
        .zip(slots)
        .find(|(_, s)| !matches!(s.phase(), Phase::Done | Phase::Queued))
        .or_else(|| {
            inputs
                .iter()
                .zip(slots)
                .find(|(_, s)| s.phase() != Phase::Done)
        });
    let mut msg = match busy {
        Some((i, s)) => {
            let last = match (s.phase(), s.last()) {
                (Phase::Waiting, Some(v)) => format!(" ({}, {} checks)", v.as_str(), s.attempts()),
                _ => String::new(),
            };
            format!(
                "{} {}{last}",
                s.phase().as_str(),
                escape(&i.target.display())
            )
        }
        None => "finishing".to_string(),
    };
    if inputs.len() > 1 {
        msg = format!("{done}/{} done · {msg}", inputs.len());
    }
    match until {
        Some(u) => format!(
            "{msg} · {:.0} s left",
            u.saturating_duration_since(Instant::now()).as_secs_f64()
        ),
        None => format!("{msg} · {:.1} s", start.elapsed().as_secs_f64()),
    }
}
