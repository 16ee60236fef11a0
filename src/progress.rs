//! Progress: the engine emits events; what shows them is behind the [`Progress`] trait.
//!
//! On a terminal, an indicatif bar (rows done of total, rate, ETA, counts per status); when stderr is not a
//! terminal (cron, nohup, CI), one plain line at a steady interval; in tests, nothing. Never prints a token: no
//! event carries one.

use crate::state::RowStatus;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What the engine tells whoever is watching.
pub trait Progress: Send + Sync {
    /// The run starts: `total` rows to settle in this run.
    fn started(&self, total: u64);
    /// A row is settled (its outcome sent to the state file).
    fn row_done(&self, status: RowStatus);
    /// The run is over.
    fn finished(&self);
}

/// Shows nothing (tests, `--quiet`).
pub struct Silent;

impl Progress for Silent {
    fn started(&self, _total: u64) {}
    fn row_done(&self, _status: RowStatus) {}
    fn finished(&self) {}
}

/// Counts per status, in the order the summary shows them.
#[derive(Default)]
struct Tally {
    total: u64,
    done: u64,
    counts: BTreeMap<RowStatus, u64>,
}

impl Tally {
    fn line(&self) -> String {
        let counts: Vec<String> = self.counts.iter().map(|(status, count)| format!("{status} {count}")).collect();
        counts.join(", ")
    }
}

/// An indicatif bar on a terminal.
pub struct Bar {
    bar: indicatif::ProgressBar,
    tally: Mutex<Tally>,
}

impl Bar {
    pub fn new() -> Bar {
        let bar = indicatif::ProgressBar::new(0);
        let style = indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} rows, {per_sec}, eta {eta} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        Bar { bar, tally: Mutex::new(Tally::default()) }
    }
}

impl Default for Bar {
    fn default() -> Self {
        Bar::new()
    }
}

impl Progress for Bar {
    fn started(&self, total: u64) {
        self.bar.set_length(total);
    }

    fn row_done(&self, status: RowStatus) {
        let mut tally = self.tally.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *tally.counts.entry(status).or_default() += 1;
        self.bar.set_message(tally.line());
        self.bar.inc(1);
    }

    fn finished(&self) {
        self.bar.finish_and_clear();
    }
}

/// A plain line at a steady interval, for logs.
pub struct Lines {
    every: Duration,
    state: Mutex<(Tally, Instant, Instant)>,
}

impl Lines {
    pub fn new(every: Duration) -> Lines {
        let now = Instant::now();
        Lines { every, state: Mutex::new((Tally::default(), now, now)) }
    }

    fn print(tally: &Tally, started: Instant) {
        let elapsed = started.elapsed().as_secs_f64().max(0.001);
        let rate = tally.done as f64 / elapsed;
        eprintln!(
            "progress: {}/{} rows, {rate:.1} rows/s, {:.0}s elapsed: {}",
            tally.done,
            tally.total,
            elapsed,
            tally.line()
        );
    }
}

impl Progress for Lines {
    fn started(&self, total: u64) {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.0.total = total;
        state.1 = Instant::now();
        state.2 = Instant::now();
    }

    fn row_done(&self, status: RowStatus) {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.0.done += 1;
        *state.0.counts.entry(status).or_default() += 1;
        if state.2.elapsed() >= self.every {
            state.2 = Instant::now();
            Self::print(&state.0, state.1);
        }
    }

    fn finished(&self) {
        let state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Self::print(&state.0, state.1);
    }
}

/// The right display for this process: a bar on a terminal, plain lines every 30 s otherwise.
pub fn for_stderr() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() { Box::new(Bar::new()) } else { Box::new(Lines::new(Duration::from_secs(30))) }
}
