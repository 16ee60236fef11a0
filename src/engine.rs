//! The engine: orchestration only. A reader feeds valid, unsettled rows into a bounded channel (the job's plan in
//! the state file for an apply, the apply's written rows for a rollback: a [`Source`]); a fixed set of workers ([`ROWS_PER_REQUEST_SLOT`] for each
//! of `--concurrency`'s request slots) take rows and run [`row::process`], which asks each row's [`Plan`] what to
//! write; every outcome goes to the state file's recorder. The pace (rate and in-flight bound) lives in the client;
//! the engine never spawns a task per row.
//!
//! Shutdown is injected: the caller's `CancellationToken` stops the reader and the workers take no new row;
//! what is in flight finishes (bounded by a grace period) and is recorded.

pub mod arrivals;
pub mod preflight;
pub mod row;

pub use crate::control::{CanaryRow, FORBIDDEN_STREAK, Guard, Halt};
use crate::control::{Control, Next};
use crate::sync::lock;

use crate::budget::MaxFailures;
use crate::client::Client;
use crate::fields::CUSTOMER_BILLING;
use crate::input::{Change, CustomerId};
use crate::merge::FieldChange;
use crate::progress::Progress;
use crate::state::recorder::{Gather, RecorderHandle};
use crate::state::{LineSet, plan};
use row::RowContext;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Whether PUTs are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Apply,
    DryRun,
}

/// How a run of the engine ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Ending {
    /// Every row it was given is settled.
    Complete,
    /// The caller cancelled (Ctrl-C); rows not reached stay pending.
    Interrupted,
    /// The job had to stop; rows not reached stay pending.
    Halted(Halt),
    /// `--canary N`: the first rows are done and the job stopped to let a person look; resumable.
    Canary(Vec<CanaryRow>),
    /// `--max-failures`: more rows failed than the budget allows; the job stopped taking rows; resumable.
    BudgetSpent(MaxFailures),
}

/// Rows in progress for each request the pace lets be in flight (`--concurrency`). A row holds no request while
/// its PUT's intent is made durable, or while it merges and records: with one row a slot, the slots idled through
/// every fsync. With two, the requests in flight stay at `--concurrency` and the slots stay busy (measured in
/// docs/performance.md).
pub const ROWS_PER_REQUEST_SLOT: usize = 2;

/// What a row asks of its profile.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// Apply: set the CSV row's changes ([`crate::merge::merge`]).
    Apply(Vec<Change>),
    /// Rollback: put back the before-values of the changes a job wrote, where they still hold ([`crate::undo`]).
    Restore(Vec<FieldChange>),
    /// Export: read the profile and keep it as the snapshot; nothing is written.
    Read,
    /// An edited export's row: its changes, written onto the snapshot with its etag, or three-way onto the profile
    /// as read after someone else's edit ([`crate::threeway`]).
    ThreeWay(Box<ThreeWay>),
}

/// An edited export's row: the changes of its cells and the snapshot they were made against.
#[derive(Clone, Debug, PartialEq)]
pub struct ThreeWay {
    pub changes: Vec<Change>,
    /// The profile as the export read it (its etag in it).
    pub snapshot: serde_json::Value,
}

/// One row for a worker: the customer and what to do to its profile.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    /// The input line of the row (of the apply's CSV, for a rollback).
    pub line: u64,
    pub customer_id: CustomerId,
    pub plan: Plan,
}

/// Where the rows come from.
pub enum Source {
    /// The plan of a job, read from its state file as the workers go (apply, dry run): the rows as planned and
    /// hashed, never the CSV read again (it may have changed since).
    Plan { state: PathBuf, job: i64, retry_failed: bool },
    /// The plan of a job whose rows are still arriving (an export's listing, a page at a time): read as
    /// [`Source::Plan`], and, once every row there is read, the next page waited for until the last has come.
    Arriving { state: PathBuf, job: i64, arrivals: arrivals::Arrivals },
    /// Rows already in hand, in order (rollback: from the state file).
    Tasks(Vec<Task>),
}

/// What the engine is given to work on.
pub struct Work {
    pub source: Source,
    /// Lines already settled: neither read nor written again.
    pub settled: LineSet,
    /// Rows whose PUT an earlier run sent without recording the answer, with the changes it carried.
    pub sent_before: HashMap<u64, Vec<FieldChange>>,
}

/// How a run behaves, resolved once from the command line (`ApplyConfig::options`, a rollback's own) and passed by
/// reference from there to every row: the one copy of these settings the engine keeps is the one its workers share.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunOptions {
    pub mode: Mode,
    /// On resume, try the rows that failed before again.
    pub retry_failed: bool,
    /// How long rows in flight may take to finish after a cancel.
    pub grace: Duration,
    /// Pre-flight of merged profiles (off for a rollback).
    pub preflight: preflight::PreflightConfig,
    pub guard: Guard,
}

/// Runs the rows of `work` through the client, recording every outcome.
pub async fn run(
    work: Work,
    options: &RunOptions,
    client: Client,
    recorder: RecorderHandle,
    progress: Arc<dyn Progress>,
    cancel: CancellationToken,
) -> Ending {
    let workers = client.pace().config().concurrency.get() * ROWS_PER_REQUEST_SLOT;
    // A slow service's answers come one by one: their intents share a commit (an fsync) instead of one each.
    recorder.gather(Gather::for_workers(workers));
    // Slower still, they come in clumps a latency apart: a commit waits for the next clump.
    let pace = client.pace().clone();
    recorder.follow_latency(Arc::new(move || pace.latency()));
    let stop = cancel.child_token();
    // After a stop no request goes out that is not already on the wire, but the reads that settle a lost PUT.
    let client = client.stopping_with(stop.clone());
    let halt: Arc<Mutex<Option<Halt>>> = Arc::default();
    let (sender, receiver) = mpsc::channel::<Vec<Task>>(2);
    let reader = spawn_reader(work.source, work.settled, options.guard.canary, sender, stop.clone());
    let receiver = Arc::new(tokio::sync::Mutex::new(Feed { receiver, ready: Vec::new().into_iter() }));
    let preflight = options.preflight.ran().then(|| preflight::Preflight::new(options.preflight));
    let shared = Arc::new(Shared {
        client,
        recorder,
        options: *options,
        sent_before: work.sent_before,
        progress,
        preflight,
        control: Mutex::new(Control::new(options.guard)),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (shared, receiver, stop, halt) = (shared.clone(), receiver.clone(), stop.clone(), halt.clone());
        tasks.spawn(async move { work_rows(&shared, &receiver, &stop, &halt).await });
    }
    // The workers hold the only handles on the receiver: once they have all returned (stopped or aborted) it is
    // dropped, so a reader blocked on a full channel gets an error and returns. Kept here, it left the reader
    // blocked for ever after a Ctrl-C and `reader.await` below hung the process (tests/crash.rs).
    drop(receiver);
    let drained = tokio::select! {
        () = drain(&mut tasks) => true,
        () = stop.cancelled() => false,
    };
    // Rows in flight get a grace period to finish and be recorded; after it they stay pending and the next run
    // settles them by reading again.
    if !drained && tokio::time::timeout(options.grace, drain(&mut tasks)).await.is_err() {
        tasks.abort_all();
        drain(&mut tasks).await;
    }
    let read = reader.await.unwrap_or_else(|error| Err(format!("the reader stopped: {error}")));
    let halted = lock(&halt).take();
    let control = std::mem::take(&mut *lock(&shared.control));
    let budget = control.budget();
    let tally = control.finish();
    match (halted, read) {
        (Some(halt), _) => Ending::Halted(halt),
        (None, _) if tally.budget_spent => Ending::BudgetSpent(budget),
        (None, _) if cancel.is_cancelled() => Ending::Interrupted,
        (None, Err(message)) => Ending::Halted(Halt::Input(message)),
        (None, Ok(ReadEnd::CanaryDone)) => Ending::Canary(tally.canary),
        (None, Ok(ReadEnd::AllSent)) => Ending::Complete,
    }
}

async fn drain(tasks: &mut tokio::task::JoinSet<()>) {
    while tasks.join_next().await.is_some() {}
}

struct Shared {
    client: Client,
    recorder: RecorderHandle,
    options: RunOptions,
    sent_before: HashMap<u64, Vec<FieldChange>>,
    progress: Arc<dyn Progress>,
    preflight: Option<preflight::Preflight>,
    /// When the job must stop: asked after each row is recorded.
    control: Mutex<Control>,
}

/// The one worker loop: take a row, do it, record it; until the rows run out or the job stops.
async fn work_rows(
    shared: &Shared,
    receiver: &tokio::sync::Mutex<Feed>,
    stop: &CancellationToken,
    halt: &Mutex<Option<Halt>>,
) {
    let context = RowContext {
        client: &shared.client,
        recorder: &shared.recorder,
        options: &shared.options,
        preflight: shared.preflight.as_ref(),
    };
    loop {
        // Biased, stop first: once the job stops no new row is taken, even when one waits in the channel (unbiased,
        // each worker went on taking rows after a Ctrl-C half of the time: tests/crash.rs).
        let next = tokio::select! {
            biased;
            () = stop.cancelled() => None,
            row = async { receiver.lock().await.next().await } => row,
        };
        let Some(row) = next else { return };
        let halted = match row::process(&context, &row, shared.sent_before.get(&row.line).cloned()).await {
            // The job stopped before the row's next request: it stays as recorded, and this worker is done.
            Err(row::NoOutcome::Stopped) => return,
            Ok(outcome) => {
                let status = outcome.status;
                let next = lock(&shared.control).settle(&row.customer_id.to_string(), &outcome);
                match shared.recorder.record(outcome) {
                    Ok(()) => {
                        shared.progress.row_done(status);
                        match next {
                            Next::Continue => continue,
                            Next::BudgetSpent => {
                                stop.cancel();
                                return;
                            }
                            Next::Halt(halt) => halt,
                        }
                    }
                    Err(error) => Halt::State(error.to_string()),
                }
            }
            Err(row::NoOutcome::Halt(halt)) => halt,
        };
        lock(halt).get_or_insert(halted);
        stop.cancel();
        return;
    }
}

/// Rows go from the reader's thread to the workers in chunks of this many: one wake of a thread a chunk, not a row
/// (a wake a row was a large share of the kernel's time in `apply`: docs/performance.md).
const CHUNK: usize = 64;

/// The workers' end of the reader's channel: the chunk being handed out, then the next.
struct Feed {
    receiver: mpsc::Receiver<Vec<Task>>,
    ready: std::vec::IntoIter<Task>,
}

impl Feed {
    /// The next row; `None` once the reader is done. Cancel-safe: a chunk is taken whole or not at all.
    async fn next(&mut self) -> Option<Task> {
        loop {
            if let Some(task) = self.ready.next() {
                return Some(task);
            }
            self.ready = self.receiver.recv().await?.into_iter();
        }
    }
}

/// How the reader ended.
enum ReadEnd {
    /// Every row still to do was sent.
    AllSent,
    /// The canary's rows were sent and more rows remain.
    CanaryDone,
}

fn spawn_reader(
    source: Source,
    settled: LineSet,
    canary: Option<u64>,
    sender: mpsc::Sender<Vec<Task>>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<Result<ReadEnd, String>> {
    // Sends the rows still to do, in input order, from a blocking thread (the plan is read a page at a time).
    tokio::task::spawn_blocking(move || {
        let mut outbox = Outbox { sender, chunk: Vec::with_capacity(CHUNK), sent: 0, settled, canary, stop };
        match source {
            Source::Plan { state, job, retry_failed } => {
                let mut cursor = open_plan(&state, job, retry_failed)?;
                if let Some(end) = outbox.send_all(tasks_of(&mut cursor))? {
                    return Ok(end);
                }
            }
            Source::Arriving { state, job, mut arrivals } => {
                let mut cursor = open_plan(&state, job, false)?;
                loop {
                    let after = arrivals.before_pass();
                    if let Some(end) = outbox.send_all(tasks_of(&mut cursor))? {
                        return Ok(end);
                    }
                    match after {
                        arrivals::After::Done => break,
                        arrivals::After::Failed(message) => {
                            // The rows that did arrive are read before the job stops with the feed's words.
                            outbox.flush();
                            return Err(message);
                        }
                        arrivals::After::Wait => {}
                    }
                    // The workers take what was read while the next page is waited for.
                    if !outbox.flush() || !arrivals.wait(&outbox.stop, &outbox.sender) {
                        if outbox.stop.is_cancelled() || outbox.sender.is_closed() {
                            return Ok(ReadEnd::AllSent);
                        }
                        // The feed went without saying it was done: never taken for the end of the rows.
                        return Err("the rows' feed ended before its last page".to_string());
                    }
                    cursor.follow();
                }
            }
            Source::Tasks(tasks) => {
                if let Some(end) = outbox.send_all(tasks.into_iter().map(Ok))? {
                    return Ok(end);
                }
            }
        }
        outbox.flush();
        Ok(ReadEnd::AllSent)
    })
}

/// A cursor of its own over the rows of a job's plan still to do.
fn open_plan(state: &std::path::Path, job: i64, retry_failed: bool) -> Result<plan::Cursor, String> {
    plan::Cursor::open(state, job, plan::Rows::ToDo { retry_failed }).map_err(|error| error.to_string())
}

/// The cursor's rows as tasks.
fn tasks_of(cursor: &mut plan::Cursor) -> impl Iterator<Item = Result<Task, String>> + '_ {
    cursor.map(|row| planned_task(row.map_err(|error| error.to_string())?))
}

/// The reader's side of the channel: the chunk being filled, and what decides whether a row is sent.
struct Outbox {
    sender: mpsc::Sender<Vec<Task>>,
    chunk: Vec<Task>,
    /// Rows sent so far (the canary counts them).
    sent: u64,
    settled: LineSet,
    canary: Option<u64>,
    stop: CancellationToken,
}

impl Outbox {
    /// Sends every task still to do; `Some` when the reading is over before the tasks are (a stop, the workers
    /// gone, the canary's rows sent).
    fn send_all(&mut self, tasks: impl Iterator<Item = Result<Task, String>>) -> Result<Option<ReadEnd>, String> {
        for task in tasks {
            let task = task?;
            if self.settled.contains(task.line) {
                continue;
            }
            if self.stop.is_cancelled() {
                return Ok(Some(ReadEnd::AllSent));
            }
            if self.canary.is_some_and(|canary| self.sent >= canary) {
                // A closed channel means the workers are gone; the rows stay to do either way.
                self.flush();
                return Ok(Some(ReadEnd::CanaryDone));
            }
            self.chunk.push(task);
            self.sent += 1;
            if self.chunk.len() == CHUNK && !self.flush() {
                return Ok(Some(ReadEnd::AllSent));
            }
        }
        Ok(None)
    }

    /// Sends the chunk so far (if any); `false` when the workers are gone.
    fn flush(&mut self) -> bool {
        if self.chunk.is_empty() {
            return true;
        }
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
        self.sender.blocking_send(chunk).is_ok()
    }
}

/// A row of the plan as a task; a row the plan does not hold whole is an error that stops the job, never a guess.
fn planned_task(row: plan::PlanRow) -> Result<Task, String> {
    let broken = |what: String| format!("the plan of line {} in the state file {what}", row.line);
    let customer_id = CustomerId::parse(&row.customer_id)
        .ok_or_else(|| broken(format!("holds a customer id that is not a GUID: {:?}", row.customer_id)))?;
    let text = row.plan.as_deref().ok_or_else(|| broken("holds no changes".to_string()))?;
    let plan = match plan::parse(CUSTOMER_BILLING, text).map_err(broken)? {
        plan::Planned::Read => Plan::Read,
        plan::Planned::Changes { changes, base: Some(snapshot) } => {
            Plan::ThreeWay(Box::new(ThreeWay { changes, snapshot }))
        }
        plan::Planned::Changes { changes, base: None } => Plan::Apply(changes),
    };
    Ok(Task { line: row.line, customer_id, plan })
}
