//! The one owner of the state file while a job runs: a thread that takes messages from the workers and commits
//! them in batches (group commit), so a thousand outcomes cost one transaction, not a thousand.
//!
//! A PUT's intent is committed before the PUT is sent (the worker waits for it): after a crash, a row found already
//! holding its values is `updated` only if its PUT was sent. Outcomes go to an outbox the thread takes whole with
//! the next intent's commit (or a flush, or after `OUTCOME_WAIT`): recording one wakes no thread and costs no fsync
//! of its own. A row is done only once its outcome is committed, so one lost to a crash is simply settled again by
//! the next run.

use super::{RowOutcome, StateError, StateFile, changes_json, now};
use crate::merge::FieldChange;
use crate::sync::lock;
use rusqlite::params;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::oneshot;

/// The most outcomes that wait in the outbox before the recorder is woken to commit them.
const BATCH: usize = 2048;

/// The longest an outcome waits in the outbox when no intent or flush comes to take it along.
const OUTCOME_WAIT: Duration = Duration::from_millis(200);

/// A PUT about to be sent, and the worker waiting for it to be durable.
struct Intent {
    line: u64,
    changes: Vec<FieldChange>,
    done: oneshot::Sender<Result<(), String>>,
}

enum Message {
    /// The intents gathered in one turn of the runtime.
    Intend(Vec<Intent>),
    /// Commit the outbox now: it is full.
    Collect,
    Flush(oneshot::Sender<Result<(), String>>),
    /// The requests sent and 429s met by this run so far (cumulative), for `status` while the job runs.
    Figures {
        requests: u64,
        throttled: u64,
    },
    /// Commit what came before, then stop.
    Stop,
}

/// What the outbox holds: a row's outcome, or the withdrawal of an intent whose PUT was not sent after all (the job
/// stopped first): the row stays as it was, with no PUT in doubt.
enum Settled {
    Outcome(RowOutcome),
    Withdrawn(u64),
}

/// Outcomes recorded and not yet handed to the recorder thread. A worker only pushes to it (no message, so the
/// recorder thread is not woken once per row); the thread takes it whole with the next intent, flush or timeout.
type Outbox = Arc<Mutex<Vec<Settled>>>;

/// Intents of workers woken in the same turn of the runtime (answers that came in together), sent as one message
/// and so committed with one fsync; the first of them sends the lot once the others have had their turn.
type Gathered = Arc<Mutex<Vec<Intent>>>;

/// The handle the workers use to reach the state file.
pub struct Recorder {
    sender: mpsc::Sender<Message>,
    outbox: Outbox,
    gathered: Gathered,
    thread: JoinHandle<Result<StateFile, StateError>>,
}

/// A cheap handle for one worker.
#[derive(Clone)]
pub struct RecorderHandle {
    sender: mpsc::Sender<Message>,
    outbox: Outbox,
    gathered: Gathered,
}

impl Recorder {
    /// Hands the state file to its owner thread for the job `job`.
    pub fn start(state: StateFile, job: i64) -> Recorder {
        let (sender, receiver) = mpsc::channel();
        let outbox = Outbox::default();
        let taken = outbox.clone();
        let thread = std::thread::spawn(move || run(state, job, &receiver, &taken));
        Recorder { sender, outbox, gathered: Gathered::default(), thread }
    }

    pub fn handle(&self) -> RecorderHandle {
        RecorderHandle { sender: self.sender.clone(), outbox: self.outbox.clone(), gathered: self.gathered.clone() }
    }

    /// Commits everything sent so far, stops the thread and gives the state file back.
    pub fn finish(self) -> Result<StateFile, StateError> {
        // A send fails only when the thread has already stopped; the join below then says why.
        let _ = self.sender.send(Message::Stop);
        self.thread.join().map_err(|_| StateError::RecorderGone("the recorder thread panicked".into()))?
    }
}

impl RecorderHandle {
    /// Records, durably, that a PUT with these changes is about to be sent for this row. Outcomes recorded before
    /// it are committed in the same transaction.
    pub async fn intend_put(&self, line: u64, changes: &[FieldChange]) -> Result<(), StateError> {
        let (done, answer) = oneshot::channel();
        let first = {
            let mut gathered = lock(&self.gathered);
            gathered.push(Intent { line, changes: changes.to_vec(), done });
            gathered.len() == 1
        };
        if first {
            // Sent from a task of its own, queued behind the workers already woken: theirs join this batch. No
            // clock is involved: a lone intent goes as soon as the runtime has nothing else ready.
            let (gathered, sender) = (self.gathered.clone(), self.sender.clone());
            tokio::spawn(async move {
                tokio::task::yield_now().await;
                let intents = std::mem::take(&mut *lock(&gathered));
                // A recorder already gone drops the intents, and with them the answer each worker waits for.
                let _ = sender.send(Message::Intend(intents));
            });
        }
        wait(answer).await
    }

    /// Records a row's outcome: committed with the next intent or flush, when `BATCH` outcomes wait, or within
    /// `OUTCOME_WAIT`, whichever comes first. One lost to a crash before that is settled again by the next run.
    pub fn record(&self, outcome: RowOutcome) -> Result<(), StateError> {
        self.settle(Settled::Outcome(outcome))
    }

    fn settle(&self, settled: Settled) -> Result<(), StateError> {
        let waiting = {
            let mut outbox = lock(&self.outbox);
            outbox.push(settled);
            outbox.len()
        };
        match waiting >= BATCH {
            true => self.send(Message::Collect),
            false => Ok(()),
        }
    }

    /// Notes the requests sent and 429s met by this run so far (cumulative): the job's figures in the state file
    /// show them with the next commit, so `status` sees a running job's requests (and a killed job keeps them).
    pub fn note_figures(&self, requests: u64, throttled: u64) -> Result<(), StateError> {
        self.send(Message::Figures { requests, throttled })
    }

    /// Records that the PUT intended for this row was not sent (the job stopped first): the row stays pending with
    /// no PUT in doubt. Committed like an outcome.
    pub fn withdraw_intent(&self, line: u64) -> Result<(), StateError> {
        self.settle(Settled::Withdrawn(line))
    }

    /// Waits until everything sent so far is committed.
    pub async fn flush(&self) -> Result<(), StateError> {
        let (done, answer) = oneshot::channel();
        self.send(Message::Flush(done))?;
        wait(answer).await
    }

    fn send(&self, message: Message) -> Result<(), StateError> {
        self.sender.send(message).map_err(|_| StateError::RecorderGone("the recorder has stopped".into()))
    }
}

async fn wait(answer: oneshot::Receiver<Result<(), String>>) -> Result<(), StateError> {
    match answer.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(message)) => Err(StateError::RecorderGone(message)),
        Err(_) => Err(StateError::RecorderGone("the recorder has stopped".into())),
    }
}

fn run(
    mut state: StateFile,
    job: i64,
    receiver: &mpsc::Receiver<Message>,
    outbox: &Mutex<Vec<Settled>>,
) -> Result<StateFile, StateError> {
    // Once a commit fails (a full disk), every later intent fails too: no PUT goes out unrecorded.
    let mut broken: Option<String> = None;
    let mut batch: Vec<Message> = Vec::new();
    let mut outcomes: Vec<Settled> = Vec::new();
    // The job's `last_moved_at` as last written: it changes once a second at most, so most commits leave it.
    let mut moved_at = String::new();
    // The job's figures before this run, and this run's as last noted and as last written.
    let base: (u64, u64) = state
        .connection
        .query_row("SELECT requests, throttled FROM jobs WHERE id = ?1", params![job], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .unwrap_or_default();
    let (mut noted, mut written) = ((0, 0), (0, 0));
    loop {
        match receiver.recv_timeout(OUTCOME_WAIT) {
            Ok(message) => batch.push(message),
            Err(RecvTimeoutError::Timeout) => {}
            // Every handle and the recorder itself are gone: commit what is left.
            Err(RecvTimeoutError::Disconnected) => batch.push(Message::Stop),
        }
        while !matches!(batch.last(), Some(Message::Stop))
            && let Ok(message) = receiver.try_recv()
        {
            batch.push(message);
        }
        // Taken after the messages: an outcome recorded before a flush or stop was sent is in it.
        std::mem::swap(&mut outcomes, &mut *lock(outbox));
        let stopping = matches!(batch.last(), Some(Message::Stop));
        if batch.is_empty() && outcomes.is_empty() {
            continue;
        }
        for message in &batch {
            if let Message::Figures { requests, throttled } = message {
                noted = (*requests, *throttled);
            }
        }
        // On the way out the run's figures go back to where they were: the job adds its own once, at its end.
        let figures = match stopping {
            true => (written != (0, 0)).then_some(base),
            false => (noted != written).then(|| (base.0 + noted.0, base.1 + noted.1)),
        };
        let stamp = now();
        let moved = stamp != moved_at;
        let result = match &broken {
            Some(message) => Err(message.clone()),
            None => {
                commit(&mut state, job, &stamp, moved, &outcomes, &batch, figures).map_err(|error| error.to_string())
            }
        };
        if result.is_ok() {
            written = if stopping { (0, 0) } else { noted };
        }
        if result.is_ok() && moved {
            moved_at = stamp;
        }
        if let Err(message) = &result {
            broken.get_or_insert_with(|| message.clone());
        }
        outcomes.clear();
        for message in batch.drain(..) {
            match message {
                Message::Intend(intents) => {
                    for intent in intents {
                        let _ = intent.done.send(result.clone());
                    }
                }
                Message::Flush(done) => {
                    let _ = done.send(result.clone());
                }
                Message::Collect | Message::Figures { .. } | Message::Stop => {}
            }
        }
        if stopping {
            break;
        }
    }
    match broken {
        Some(message) => Err(StateError::RecorderGone(message)),
        None => Ok(state),
    }
}

fn commit(
    state: &mut StateFile,
    job: i64,
    stamp: &str,
    moved: bool,
    outcomes: &[Settled],
    batch: &[Message],
    figures: Option<(u64, u64)>,
) -> Result<(), rusqlite::Error> {
    let transaction = state.connection.transaction()?;
    {
        let mut intend = transaction.prepare_cached(
            "UPDATE rows SET put_sent = 1, changed_fields = ?3, before = ?4, after = ?5, updated_at = ?6
             WHERE job_id = ?1 AND line = ?2",
        )?;
        let mut record = transaction.prepare_cached(
            "UPDATE rows SET status = ?3,
                 changed_fields = COALESCE(?4, changed_fields), before = COALESCE(?5, before),
                 after = COALESCE(?6, after), http_status = ?7, error_code = ?8, error = ?9, attempts = ?10,
                 request_id = ?11, correlation_id = ?12, updated_at = ?13,
                 preflight = ?14, suggested_address = ?15
             WHERE job_id = ?1 AND line = ?2",
        )?;
        for message in batch {
            if let Message::Intend(intents) = message {
                for Intent { line, changes, .. } in intents {
                    let (fields, before, after) = describe(changes);
                    intend.execute(params![job, line, fields, before, after, stamp])?;
                }
            }
        }
        let mut withdraw = transaction.prepare_cached(
            "UPDATE rows SET put_sent = 0, changed_fields = NULL, before = NULL, after = NULL, updated_at = ?3
             WHERE job_id = ?1 AND line = ?2 AND status = 'pending'",
        )?;
        for settled in outcomes {
            let outcome = match settled {
                Settled::Outcome(outcome) => outcome,
                Settled::Withdrawn(line) => {
                    withdraw.execute(params![job, line, stamp])?;
                    continue;
                }
            };
            // Changes the row's intent wrote stay as written (`COALESCE`): describing them again was 3% of a row.
            let described =
                (!outcome.changes.is_empty() && !outcome.changes_in_intent).then(|| describe(&outcome.changes));
            let (fields, before, after) = match described {
                Some((fields, before, after)) => (Some(fields), Some(before), Some(after)),
                None => (None, None, None),
            };
            let call = &outcome.call;
            record.execute(params![
                job,
                outcome.line,
                outcome.status.name(),
                fields,
                before,
                after,
                call.http_status,
                call.error_code,
                call.error,
                call.attempts,
                call.request_id,
                call.correlation_id,
                stamp,
                outcome.preflight,
                outcome.suggested_address
            ])?;
        }
    }
    if moved {
        transaction.execute("UPDATE jobs SET last_moved_at = ?2 WHERE id = ?1", params![job, stamp])?;
    }
    if let Some((requests, throttled)) = figures {
        transaction.execute(
            "UPDATE jobs SET requests = ?2, throttled = ?3 WHERE id = ?1",
            params![job, requests, throttled],
        )?;
    }
    transaction.commit()
}

/// The changed fields as the report shows them: names, then before and after as JSON objects.
fn describe(changes: &[FieldChange]) -> (String, String, String) {
    let names: Vec<&str> = changes.iter().map(|change| change.field).collect();
    (names.join(" "), changes_json(changes, |change| &change.before), changes_json(changes, |change| &change.after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{JobFigures, JobKind, PlannedRow, RowStatus};

    #[tokio::test]
    async fn a_runs_figures_show_while_it_runs_and_are_added_once_at_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pcbulk.db");
        let mut state = StateFile::open_for_job(&path).unwrap();
        let row = PlannedRow {
            line: 2,
            customer_id: "c".into(),
            status: RowStatus::Pending,
            error: String::new(),
            warnings: String::new(),
            plan: None,
        };
        let job = state.create_job(JobKind::Apply, "x.csv", "h", "http://127.0.0.1:1", [Ok(row)].into_iter());
        let job = job.unwrap().unwrap();
        state.finish_job(job.id, &JobFigures { requests: 7, throttled: 2, settled_rate: None }, false).unwrap();
        let recorder = Recorder::start(state, job.id);
        let handle = recorder.handle();
        handle.note_figures(5, 1).unwrap();
        handle.flush().await.unwrap();
        let reader = rusqlite::Connection::open(&path).unwrap();
        let figures = |connection: &rusqlite::Connection| -> (u64, u64) {
            let sql = "SELECT requests, throttled FROM jobs WHERE id = ?1";
            connection.query_row(sql, params![job.id], |row| Ok((row.get(0)?, row.get(1)?))).unwrap()
        };
        assert_eq!(figures(&reader), (12, 3), "an earlier run's figures plus this run's so far");
        let state = recorder.finish().unwrap();
        assert_eq!(figures(&reader), (7, 2), "back to before the run: the job adds its own at its end");
        state.finish_job(job.id, &JobFigures { requests: 6, throttled: 1, settled_rate: None }, true).unwrap();
        assert_eq!(figures(&reader), (13, 3));
    }
}
