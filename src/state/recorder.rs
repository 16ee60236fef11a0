//! The one owner of the state file while a job runs: a thread that takes messages from the workers and commits
//! them in batches (group commit), so a thousand outcomes cost one transaction, not a thousand.
//!
//! A PUT's intent is committed before the PUT is sent (the worker waits for it): after a crash, a row found already
//! holding its values is `updated` only if its PUT was sent. Outcomes are committed in the next batch; a row is done
//! only once its outcome is committed, so one lost to a crash is simply settled again by the next run.

use super::{RowOutcome, StateError, StateFile, changes_json, now};
use crate::merge::FieldChange;
use rusqlite::params;
use std::sync::mpsc;
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// The most messages one transaction takes.
const BATCH: usize = 2048;

enum Message {
    Intend {
        line: u64,
        changes: Vec<FieldChange>,
        done: oneshot::Sender<Result<(), String>>,
    },
    Record(Box<RowOutcome>),
    Flush(oneshot::Sender<Result<(), String>>),
    /// Commit what came before, then stop.
    Stop,
}

/// The handle the workers use to reach the state file.
pub struct Recorder {
    sender: mpsc::Sender<Message>,
    thread: JoinHandle<Result<StateFile, StateError>>,
}

/// A cheap handle for one worker.
#[derive(Clone)]
pub struct RecorderHandle {
    sender: mpsc::Sender<Message>,
}

impl Recorder {
    /// Hands the state file to its owner thread for the job `job`.
    pub fn start(state: StateFile, job: i64) -> Recorder {
        let (sender, receiver) = mpsc::channel();
        let thread = std::thread::spawn(move || run(state, job, receiver));
        Recorder { sender, thread }
    }

    pub fn handle(&self) -> RecorderHandle {
        RecorderHandle { sender: self.sender.clone() }
    }

    /// Commits everything sent so far, stops the thread and gives the state file back.
    pub fn finish(self) -> Result<StateFile, StateError> {
        // A send fails only when the thread has already stopped; the join below then says why.
        let _ = self.sender.send(Message::Stop);
        self.thread.join().map_err(|_| StateError::RecorderGone("the recorder thread panicked".into()))?
    }
}

impl RecorderHandle {
    /// Records, durably, that a PUT with these changes is about to be sent for this row.
    pub async fn intend_put(&self, line: u64, changes: &[FieldChange]) -> Result<(), StateError> {
        let (done, answer) = oneshot::channel();
        self.send(Message::Intend { line, changes: changes.to_vec(), done })?;
        wait(answer).await
    }

    /// Records a row's outcome in the next batch.
    pub fn record(&self, outcome: RowOutcome) -> Result<(), StateError> {
        self.send(Message::Record(Box::new(outcome)))
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

fn run(mut state: StateFile, job: i64, receiver: mpsc::Receiver<Message>) -> Result<StateFile, StateError> {
    // Once a commit fails (a full disk), every later intent fails too: no PUT goes out unrecorded.
    let mut broken: Option<String> = None;
    let mut stopping = false;
    while !stopping && let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH && !matches!(batch.last(), Some(Message::Stop)) {
            match receiver.try_recv() {
                Ok(message) => batch.push(message),
                Err(_) => break,
            }
        }
        stopping = matches!(batch.last(), Some(Message::Stop));
        let result = match &broken {
            Some(message) => Err(message.clone()),
            None => commit(&mut state, job, &batch).map_err(|error| error.to_string()),
        };
        if let Err(message) = &result {
            broken.get_or_insert_with(|| message.clone());
        }
        for message in batch {
            match message {
                Message::Intend { done, .. } | Message::Flush(done) => {
                    let _ = done.send(result.clone());
                }
                Message::Record(_) | Message::Stop => {}
            }
        }
    }
    match broken {
        Some(message) => Err(StateError::RecorderGone(message)),
        None => Ok(state),
    }
}

fn commit(state: &mut StateFile, job: i64, batch: &[Message]) -> Result<(), rusqlite::Error> {
    let stamp = now();
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
            match message {
                Message::Intend { line, changes, .. } => {
                    let (fields, before, after) = describe(changes);
                    intend.execute(params![job, line, fields, before, after, stamp])?;
                }
                Message::Record(outcome) => {
                    let described = (!outcome.changes.is_empty()).then(|| describe(&outcome.changes));
                    let (fields, before, after) = match described {
                        Some((fields, before, after)) => (Some(fields), Some(before), Some(after)),
                        None => (None, None, None),
                    };
                    let status = outcome.status.map_or("pending", |status| status.name());
                    record.execute(params![
                        job,
                        outcome.line,
                        status,
                        fields,
                        before,
                        after,
                        outcome.http_status,
                        outcome.error_code,
                        outcome.error,
                        outcome.attempts,
                        outcome.request_id,
                        outcome.correlation_id,
                        stamp,
                        outcome.preflight,
                        outcome.suggested_address
                    ])?;
                }
                Message::Flush(_) | Message::Stop => {}
            }
        }
    }
    transaction.execute("UPDATE jobs SET last_moved_at = ?2 WHERE id = ?1", params![job, stamp])?;
    transaction.commit()
}

/// The changed fields as the report shows them: names, then before and after as JSON objects.
fn describe(changes: &[FieldChange]) -> (String, String, String) {
    let names: Vec<&str> = changes.iter().map(|change| change.field).collect();
    (names.join(" "), changes_json(changes, |change| &change.before), changes_json(changes, |change| &change.after))
}
