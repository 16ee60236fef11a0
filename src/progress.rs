//! Progress: the engine emits events; what shows them is behind the [`Progress`] trait.
//!
//! On a terminal, an indicatif bar (rows done of total, rate, ETA, counts per status); when stderr is not a
//! terminal (cron, nohup, CI), one plain line at a steady interval; in tests, nothing. Never prints a token: no
//! event carries one.

use crate::state::RowStatus;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// What the engine tells whoever is watching.
pub trait Progress: Send + Sync {
    /// The run starts: `total` rows to settle in this run.
    fn started(&self, total: u64);
    /// A row is settled (its outcome sent to the state file).
    fn row_done(&self, status: RowStatus);
    /// `rows` more rows to settle than `started` said: they arrived while the run went on (an export's listing).
    fn more(&self, _rows: u64) {}
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

    fn more(&self, rows: u64) {
        self.bar.inc_length(rows);
    }

    fn row_done(&self, status: RowStatus) {
        let mut tally = crate::sync::lock(&self.tally);
        *tally.counts.entry(status).or_default() += 1;
        self.bar.set_message(tally.line());
        self.bar.inc(1);
    }

    fn finished(&self) {
        self.bar.finish_and_clear();
    }
}

/// How progress is shown off a terminal: plain lines, or (`--log-format json`) the job's events as JSON log records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineFormat {
    Plain,
    Json,
}

/// How the process shows progress, set once by the command line ([`configure`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Display {
    pub format: LineFormat,
    /// The interval of the line off a terminal.
    pub every: Duration,
}

/// The interval of the progress line off a terminal.
pub const EVERY: Duration = Duration::from_secs(30);

impl Default for Display {
    fn default() -> Display {
        Display { format: LineFormat::Plain, every: EVERY }
    }
}

static DISPLAY: std::sync::OnceLock<Display> = std::sync::OnceLock::new();

/// Sets how [`for_stderr`] shows progress; the first call wins.
pub fn configure(display: Display) {
    // A second call (a test running two commands in one process) keeps the first: either is a valid display.
    let _ = DISPLAY.set(display);
}

/// What a line says.
struct LineState {
    tally: Tally,
    started: Instant,
    printed: Instant,
}

/// A line at a steady interval, for logs: written when a row settles and the interval has passed, and by a ticker
/// thread when no row settles for a whole interval (a job waiting on an outage still says where it is).
pub struct Lines {
    every: Duration,
    format: LineFormat,
    state: Arc<Mutex<LineState>>,
    /// Ends the ticker when dropped (or sent to).
    ticker: Mutex<Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>>,
}

impl Lines {
    pub fn new(every: Duration) -> Lines {
        Lines::with_format(every, LineFormat::Plain)
    }

    pub fn with_format(every: Duration, format: LineFormat) -> Lines {
        let now = Instant::now();
        let state = LineState { tally: Tally::default(), started: now, printed: now };
        Lines { every, format, state: Arc::new(Mutex::new(state)), ticker: Mutex::new(None) }
    }

    fn print(format: LineFormat, event: &'static str, state: &LineState) {
        let tally = &state.tally;
        let elapsed = state.started.elapsed().as_secs_f64().max(0.001);
        let rate = tally.done as f64 / elapsed;
        match format {
            LineFormat::Plain => eprintln!(
                "progress: {}/{} rows, {rate:.1} rows/s, {:.0}s elapsed: {}",
                tally.done,
                tally.total,
                elapsed,
                tally.line()
            ),
            LineFormat::Json => {
                let count = |status: RowStatus| tally.counts.get(&status).copied().unwrap_or_default();
                tracing::info!(
                    target: "pcbulk::job",
                    event,
                    done = tally.done,
                    total = tally.total,
                    rows_per_sec = rate,
                    elapsed_secs = elapsed,
                    updated = count(RowStatus::Updated),
                    unchanged = count(RowStatus::Unchanged),
                    would_update = count(RowStatus::WouldUpdate),
                    restored = count(RowStatus::Restored),
                    failed = count(RowStatus::Failed),
                    invalid = count(RowStatus::Invalid),
                    conflict = count(RowStatus::Conflict),
                    "job {event}"
                );
            }
        }
    }

    fn lock(state: &Mutex<LineState>) -> std::sync::MutexGuard<'_, LineState> {
        crate::sync::lock(state)
    }

    /// The ticker: a line whenever a whole interval passed without one.
    fn tick(state: Arc<Mutex<LineState>>, every: Duration, format: LineFormat, stop: mpsc::Receiver<()>) {
        while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(every) {
            let mut state = Self::lock(&state);
            if state.printed.elapsed() >= every {
                state.printed = Instant::now();
                Self::print(format, "progress", &state);
            }
        }
    }
}

impl Progress for Lines {
    fn started(&self, total: u64) {
        {
            let mut state = Self::lock(&self.state);
            state.tally.total = total;
            state.started = Instant::now();
            state.printed = Instant::now();
            if self.format == LineFormat::Json {
                Self::print(self.format, "start", &state);
            }
        }
        let (sender, receiver) = mpsc::channel();
        let (state, every, format) = (self.state.clone(), self.every, self.format);
        let thread = std::thread::spawn(move || Self::tick(state, every, format, receiver));
        *crate::sync::lock(&self.ticker) = Some((sender, thread));
    }

    fn more(&self, rows: u64) {
        Self::lock(&self.state).tally.total += rows;
    }

    fn row_done(&self, status: RowStatus) {
        let mut state = Self::lock(&self.state);
        state.tally.done += 1;
        *state.tally.counts.entry(status).or_default() += 1;
        if state.printed.elapsed() >= self.every {
            state.printed = Instant::now();
            Self::print(self.format, "progress", &state);
        }
    }

    fn finished(&self) {
        let ticker = crate::sync::lock(&self.ticker).take();
        if let Some((stop, thread)) = ticker {
            drop(stop);
            // The ticker only prints; a panic in it is no reason to lose the last line.
            let _ = thread.join();
        }
        Self::print(self.format, "end", &Self::lock(&self.state));
    }
}

/// The right display for this process: a bar on a terminal, a line every 30 s otherwise (or as set by
/// [`configure`]); JSON logs get the job's events as JSON records, never a bar.
pub fn for_stderr() -> Box<dyn Progress> {
    let display = DISPLAY.get().copied().unwrap_or_default();
    match display.format {
        LineFormat::Plain if std::io::stderr().is_terminal() => Box::new(Bar::new()),
        format => Box::new(Lines::with_format(display.every, format)),
    }
}
