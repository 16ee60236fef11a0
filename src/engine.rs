//! The engine: orchestration only. A reader feeds valid, unsettled rows into a bounded channel; a fixed set of
//! workers (as many as `--concurrency`) take rows and run [`row::process`]; every outcome goes to the state file's
//! recorder. The pace (rate and in-flight bound) lives in the client; the engine never spawns a task per row.
//!
//! Shutdown is injected: the caller's `CancellationToken` stops the reader and the workers take no new row;
//! what is in flight finishes (bounded by a grace period) and is recorded.

pub mod row;

use crate::client::Client;
use crate::input::{self, ChangeRow, InputConfig, Verdict};
use crate::merge::FieldChange;
use crate::progress::Progress;
use crate::state::LineSet;
use crate::state::recorder::RecorderHandle;
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

/// Why the job had to stop before its end.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Halt {
    #[error("credentials refused or revoked: {0}")]
    Credentials(String),
    #[error("the state file cannot be written, so no PUT may go out: {0}")]
    State(String),
    #[error("cannot read the CSV: {0}")]
    Input(String),
}

/// How a run of the engine ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Every row it was given is settled.
    Complete,
    /// The caller cancelled (Ctrl-C); rows not reached stay pending.
    Interrupted,
    /// The job had to stop; rows not reached stay pending.
    Halted(Halt),
}

/// What the engine is given to work on.
pub struct Work {
    pub csv: PathBuf,
    pub input: InputConfig,
    /// Lines already settled: neither read nor written again.
    pub settled: LineSet,
    /// Rows whose PUT an earlier run sent without recording the answer, with the changes it carried.
    pub sent_before: HashMap<u64, Vec<FieldChange>>,
    pub mode: Mode,
    /// How long rows in flight may take to finish after a cancel.
    pub grace: Duration,
}

/// Runs the rows of `work` through the client, recording every outcome.
pub async fn run(
    work: Work,
    client: Client,
    recorder: RecorderHandle,
    progress: Arc<dyn Progress>,
    cancel: CancellationToken,
) -> Ending {
    let workers = client.pace().config().concurrency.get();
    let halt: Arc<Mutex<Option<Halt>>> = Arc::default();
    let stop = cancel.child_token();
    let (sender, receiver) = mpsc::channel::<ChangeRow>(workers * 2);
    let reader = spawn_reader(work.csv.clone(), work.input, work.settled, sender, stop.clone());
    let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
    let shared = Arc::new(Shared { client, recorder, mode: work.mode, sent_before: work.sent_before, progress });
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
    if !drained && tokio::time::timeout(work.grace, drain(&mut tasks)).await.is_err() {
        tasks.abort_all();
        drain(&mut tasks).await;
    }
    let read = reader.await.unwrap_or_else(|error| Err(format!("the reader stopped: {error}")));
    let halted = lock(&halt).take();
    match (halted, read) {
        (Some(halt), _) => Ending::Halted(halt),
        (None, _) if cancel.is_cancelled() => Ending::Interrupted,
        (None, Err(message)) => Ending::Halted(Halt::Input(message)),
        (None, Ok(())) => Ending::Complete,
    }
}

async fn drain(tasks: &mut tokio::task::JoinSet<()>) {
    while tasks.join_next().await.is_some() {}
}

struct Shared {
    client: Client,
    recorder: RecorderHandle,
    mode: Mode,
    sent_before: HashMap<u64, Vec<FieldChange>>,
    progress: Arc<dyn Progress>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The one worker loop: take a row, do it, record it; until the rows run out or the job stops.
async fn work_rows(
    shared: &Shared,
    receiver: &tokio::sync::Mutex<mpsc::Receiver<ChangeRow>>,
    stop: &CancellationToken,
    halt: &Mutex<Option<Halt>>,
) {
    let context = RowContext { client: &shared.client, recorder: &shared.recorder, mode: shared.mode };
    loop {
        // Biased, stop first: once the job stops no new row is taken, even when one waits in the channel (unbiased,
        // each worker went on taking rows after a Ctrl-C half of the time: tests/crash.rs).
        let next = tokio::select! {
            biased;
            () = stop.cancelled() => None,
            row = async { receiver.lock().await.recv().await } => row,
        };
        let Some(row) = next else { return };
        let halted = match row::process(&context, &row, shared.sent_before.get(&row.line).cloned()).await {
            Ok(outcome) => {
                let status = outcome.status;
                match shared.recorder.record(outcome) {
                    Ok(()) => {
                        status.into_iter().for_each(|status| shared.progress.row_done(status));
                        continue;
                    }
                    Err(error) => Halt::State(error.to_string()),
                }
            }
            Err(halt) => halt,
        };
        lock(halt).get_or_insert(halted);
        stop.cancel();
        return;
    }
}

/// Reads the CSV on a blocking thread and sends the rows still to do, in input order.
fn spawn_reader(
    csv: PathBuf,
    config: InputConfig,
    settled: LineSet,
    sender: mpsc::Sender<ChangeRow>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<Result<(), String>> {
    tokio::task::spawn_blocking(move || {
        // Duplicate ids were recorded `invalid` by planning, so they are settled and skipped by line: no need to
        // keep every id in memory again (75 MB at a million rows).
        let reader = input::open(&csv, config).map_err(|error| error.to_string())?.without_duplicate_check();
        for record in reader {
            let record = record.map_err(|error| error.to_string())?;
            let Verdict::Valid(row) = record.verdict else { continue };
            if settled.contains(row.line) {
                continue;
            }
            if stop.is_cancelled() || sender.blocking_send(row).is_err() {
                return Ok(());
            }
        }
        Ok(())
    })
}
