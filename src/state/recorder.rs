//! The one owner of the state file while a job runs: a thread that takes messages from the workers and commits
//! them in batches (group commit), so a thousand outcomes cost one transaction, not a thousand.
//!
//! One conduit: a queue of messages (intents, outcomes, withdrawals, flushes, figures) behind one mutex, and a bell
//! the thread waits on. Each wake, the thread takes the whole queue and commits it in one transaction, in the order
//! the messages came.
//!
//! A PUT's intent is committed before the PUT is sent (the worker waits for it): after a crash, a row found already
//! holding its values is `updated` only if its PUT was sent. The intents of one turn of the runtime (answers that
//! came in together) share one commit, so one fsync: the first of them rings the bell once the others have had
//! their turn. An outcome rings nothing (recording one wakes no thread and costs no fsync of its own): it rides the
//! next intent's commit, a flush, or waits at most `OUTCOME_WAIT`. A row is done only once its outcome is committed,
//! so one lost to a crash is simply settled again by the next run.
//!
//! A commit wakes the runtime once, however many intents it holds ([`acks`]).

mod acks;

use super::{PlannedRow, RowOutcome, StateError, StateFile, changes_json, now};
use crate::merge::FieldChange;
use crate::sync::lock;
use rusqlite::params;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The most messages that wait in the queue before the recorder is woken to commit them.
const BATCH: usize = 2048;

/// The longest an outcome waits in the queue when no intent or flush comes to take it along.
const OUTCOME_WAIT: Duration = Duration::from_millis(200);

/// What the workers (and the job) tell the recorder. An outcome is moved in whole, not boxed: the messages live in
/// one queue whose room is kept from batch to batch, so a box would be the only allocation a row's outcome costs.
#[allow(clippy::large_enum_variant)]
enum Message {
    /// A PUT about to be sent; the worker waits for its ticket to be durable ([`acks`]).
    Intend { line: u64, changes: Vec<FieldChange>, ticket: u64 },
    /// What became of a row.
    Outcome(RowOutcome),
    /// The PUT intended for this row was not sent after all (the job stopped first): the row stays as it was, with
    /// no PUT in doubt.
    Withdraw(u64),
    /// A page of an export's listing (its rows, where the next page is), and the listing waiting for it to be
    /// durable before the engine may read its rows.
    Page { rows: Vec<PlannedRow>, next_page: Option<String>, done: oneshot::Sender<Result<(), String>> },
    /// Answer once everything before is committed.
    Flush(oneshot::Sender<Result<(), String>>),
    /// The requests sent and 429s met by this run so far (cumulative), for `status` while the job runs.
    Figures { requests: u64, throttled: u64 },
    /// Commit what came before, then stop.
    Stop,
}

/// The queue and whether the thread is wanted now.
#[derive(Default)]
struct Queue {
    messages: Vec<Message>,
    /// Wake the thread now (an intent's turn ended, a flush, a stop, a full queue).
    rung: bool,
    /// An intent of this turn will ring once the turn has run: later intents of the turn only queue.
    turn_open: bool,
    /// The last intent's ticket: tickets follow the order of the queue.
    tickets: u64,
    /// The intents in `messages`.
    intents: usize,
    /// The thread is gathering the intents of a commit ([`gather`]), until this many wait: a turn's end rings
    /// nothing.
    gathering: Option<usize>,
    /// How an idle thread gathers intents; `None`: it commits at once.
    gather: Option<Gather>,
    /// The service's latency now (the pace's measure), which a gather follows ([`Gather::at`]).
    latency: Option<LatencySource>,
    /// The thread is committing (from taking a batch to waiting again); `rung_busy`: it was rung meanwhile, so
    /// the next batch is taken at once, not gathered.
    busy: bool,
    rung_busy: bool,
}

impl Queue {
    /// Wants the thread now (the caller notifies the bell).
    fn ring(&mut self) {
        self.rung = true;
        self.rung_busy |= self.busy;
    }
}

/// How long a recorder woken from idle by an intent waits for more before committing: the service answers slowly,
/// the intents trickle in one by one, and each commit costs an fsync and the wakes of two threads. Gathering them
/// costs no request slot (a row waiting for its intent holds none) and every PUT still waits for its own intent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gather {
    /// Commit once this many intents wait (with fewer row workers than twice this, slots would stand idle).
    pub intents: usize,
    /// Commit once no message has come for this long: the flow of answers has paused.
    pub quiet: Duration,
    /// Never hold the first intent longer than this.
    pub most: Duration,
}

/// The service's latency now, as the pace measures it (`None`: nothing answered yet).
pub type LatencySource = Arc<dyn Fn() -> Option<Duration> + Send + Sync>;

/// The longest a gather that follows the latency waits for a pause in the intents, and for its first intent.
const QUIET_AT_MOST: Duration = Duration::from_millis(40);
const MOST_AT_MOST: Duration = Duration::from_millis(100);

impl Gather {
    /// For a job of `workers` row workers: gathers up to a quarter of them (`None` below 8 workers, `--concurrency`
    /// under 4: too few rows in progress for anything to join), until the flow of answers pauses for 6 ms, at most
    /// 25 ms (measured in docs/performance.md).
    pub fn for_workers(workers: usize) -> Option<Gather> {
        let intents = workers / 4;
        (intents >= 2).then_some(Gather { intents, quiet: Duration::from_millis(6), most: Duration::from_millis(25) })
    }

    /// This gather for a service answering in `latency`. The intents come in clumps, the answers to GETs that went
    /// out together, about one latency apart: a 6 ms pause ends a gather between two clumps, and at 40 ms a commit
    /// held five or six intents. Waiting up to one latency (at most 40 ms) for the next clump, up to two and a half
    /// for the first intent (at most 100 ms) and for twice the intents, a commit holds about 13: half the fsyncs and
    /// 40% of the sleeps, and 13% of a row's CPU (measured in docs/performance.md). Rows waiting for their intent hold no
    /// request slot, so the rate is not touched; a row takes at most 100 ms longer, against two answers of 40 ms or
    /// more. At or below the base's `quiet`, or unmeasured: the base as it is.
    pub fn at(self, latency: Option<Duration>) -> Gather {
        match latency {
            Some(latency) if latency > self.quiet => Gather {
                intents: self.intents * 2,
                quiet: latency.clamp(self.quiet, QUIET_AT_MOST.max(self.quiet)),
                most: (latency.saturating_mul(5) / 2).clamp(self.most, MOST_AT_MOST.max(self.most)),
            },
            _ => self,
        }
    }
}

/// What the thread and every handle share.
#[derive(Default)]
struct Conduit {
    queue: Mutex<Queue>,
    bell: Condvar,
    /// Where the intents learn that they are durable.
    acks: acks::Acks,
    /// Transactions committed: what the batching saves is visible (tests, benches).
    commits: AtomicU64,
}

impl Conduit {
    /// Queues a message; `ring`: wake the thread for it.
    fn send(&self, message: Message, ring: bool) {
        let mut queue = lock(&self.queue);
        queue.messages.push(message);
        if ring || queue.messages.len() >= BATCH {
            queue.ring();
            self.bell.notify_one();
        }
    }
}

/// The handle the workers use to reach the state file.
pub struct Recorder {
    conduit: Arc<Conduit>,
    thread: JoinHandle<Result<StateFile, StateError>>,
}

/// A cheap handle for one worker.
#[derive(Clone)]
pub struct RecorderHandle {
    conduit: Arc<Conduit>,
}

impl Recorder {
    /// Hands the state file to its owner thread for the job `job`.
    pub fn start(state: StateFile, job: i64) -> Recorder {
        let conduit = Arc::new(Conduit::default());
        let shared = conduit.clone();
        let thread = std::thread::spawn(move || run(state, job, &shared));
        Recorder { conduit, thread }
    }

    pub fn handle(&self) -> RecorderHandle {
        RecorderHandle { conduit: self.conduit.clone() }
    }

    /// Transactions committed so far.
    pub fn commits(&self) -> u64 {
        self.conduit.commits.load(Ordering::Relaxed)
    }

    /// Commits everything sent so far, stops the thread and gives the state file back.
    pub fn finish(self) -> Result<StateFile, StateError> {
        self.conduit.send(Message::Stop, true);
        self.thread.join().map_err(|_| StateError::RecorderGone("the recorder thread panicked".into()))?
    }
}

impl RecorderHandle {
    /// Records, durably, that a PUT with these changes is about to be sent for this row. Outcomes recorded before
    /// it are committed in the same transaction, and so are the intents of the same turn of the runtime.
    pub async fn intend_put(&self, line: u64, changes: &[FieldChange]) -> Result<(), StateError> {
        let (ticket, first) = {
            let mut queue = lock(&self.conduit.queue);
            queue.tickets += 1;
            let ticket = queue.tickets;
            queue.messages.push(Message::Intend { line, changes: changes.to_vec(), ticket });
            queue.intents += 1;
            if queue.gathering.is_some_and(|intents| queue.intents >= intents) {
                queue.ring();
                self.conduit.bell.notify_one();
            }
            (ticket, !std::mem::replace(&mut queue.turn_open, true))
        };
        if first {
            // Queued behind the workers already woken: their intents join this one's commit. No clock is involved:
            // a lone intent goes as soon as the runtime has nothing else ready. (Were this future dropped here, the
            // intents would still go within `OUTCOME_WAIT`.)
            tokio::task::yield_now().await;
            let mut queue = lock(&self.conduit.queue);
            queue.turn_open = false;
            if queue.gathering.is_none() {
                queue.ring();
                self.conduit.bell.notify_one();
            }
        }
        self.conduit.acks.durable(ticket).await.map_err(StateError::RecorderGone)
    }

    /// From now on, an idle recorder woken by an intent gathers the intents that follow into its commit as `gather`
    /// says (`None`: commits at once, the default).
    pub fn gather(&self, gather: Option<Gather>) {
        lock(&self.conduit.queue).gather = gather;
    }

    /// From now on, each gather follows the service's latency as `latency` measures it ([`Gather::at`]).
    pub fn follow_latency(&self, latency: LatencySource) {
        lock(&self.conduit.queue).latency = Some(latency);
    }

    /// Records a row's outcome: committed with the next intent or flush, when `BATCH` messages wait, or within
    /// `OUTCOME_WAIT`, whichever comes first. One lost to a crash before that is settled again by the next run.
    pub fn record(&self, outcome: RowOutcome) -> Result<(), StateError> {
        self.conduit.send(Message::Outcome(outcome), false);
        Ok(())
    }

    /// Notes the requests sent and 429s met by this run so far (cumulative): the job's figures in the state file
    /// show them with the next commit, so `status` sees a running job's requests (and a killed job keeps them).
    pub fn note_figures(&self, requests: u64, throttled: u64) -> Result<(), StateError> {
        self.conduit.send(Message::Figures { requests, throttled }, true);
        Ok(())
    }

    /// Records that the PUT intended for this row was not sent (the job stopped first): the row stays pending with
    /// no PUT in doubt. Committed like an outcome.
    pub fn withdraw_intent(&self, line: u64) -> Result<(), StateError> {
        self.conduit.send(Message::Withdraw(line), false);
        Ok(())
    }

    /// Records, durably, a page of an export's listing: its rows and where the next page is (`None`: the last), in
    /// one transaction with what came before it. Its rows are read from the state file once this returns.
    pub async fn record_page(&self, rows: Vec<PlannedRow>, next_page: Option<String>) -> Result<(), StateError> {
        let (done, answer) = oneshot::channel();
        self.conduit.send(Message::Page { rows, next_page, done }, true);
        wait(answer).await
    }

    /// Waits until everything sent so far is committed.
    pub async fn flush(&self) -> Result<(), StateError> {
        let (done, answer) = oneshot::channel();
        self.conduit.send(Message::Flush(done), true);
        wait(answer).await
    }
}

async fn wait(answer: oneshot::Receiver<Result<(), String>>) -> Result<(), StateError> {
    match answer.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(message)) => Err(StateError::RecorderGone(message)),
        Err(_) => Err(StateError::RecorderGone("the recorder has stopped".into())),
    }
}

/// The next batch, into `batch` (empty; its room is kept from batch to batch and handed to the queue): every
/// message queued once the bell rings or `OUTCOME_WAIT` has passed, up to and with a `Stop` (one is added when every
/// handle and the recorder are gone).
fn next_batch(conduit: &Arc<Conduit>, batch: &mut Vec<Message>) {
    let mut queue = lock(&conduit.queue);
    // Rung while it committed: a busy job's intents group on their own, and are not held.
    let idle = !std::mem::replace(&mut queue.rung_busy, false);
    queue.busy = false;
    let (mut queue, _) = conduit
        .bell
        .wait_timeout_while(queue, OUTCOME_WAIT, |queue| !queue.rung)
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    queue.rung = false;
    if idle && queue.intents > 0 {
        queue = gather(conduit, queue);
    }
    std::mem::swap(&mut queue.messages, batch);
    queue.intents = 0;
    queue.busy = true;
    drop(queue);
    if let Some(stop) = batch.iter().position(|message| matches!(message, Message::Stop)) {
        // Nothing is sent after a stop; whatever was is dropped, and its waiter told the recorder has stopped.
        batch.truncate(stop + 1);
    } else if Arc::strong_count(conduit) == 1 {
        batch.push(Message::Stop);
    }
}

/// The thread was idle when an intent's turn ended: the intents that follow join its commit until their flow
/// pauses (no message for `quiet`), `intents` wait, or `most` has passed; a flush or a stop ends it at once.
fn gather<'a>(conduit: &'a Conduit, mut queue: MutexGuard<'a, Queue>) -> MutexGuard<'a, Queue> {
    let Some(gather) = queue.gather else { return queue };
    // Under the queue's lock, the pace's own: nothing takes them the other way round.
    let latency = queue.latency.as_ref().and_then(|latency| latency());
    let Gather { intents, quiet, most } = gather.at(latency);
    let start = Instant::now();
    queue.gathering = Some(intents);
    loop {
        let (seen, elapsed) = (queue.messages.len(), start.elapsed());
        if queue.intents >= intents || elapsed >= most {
            break;
        }
        let (again, _) = conduit
            .bell
            .wait_timeout_while(queue, quiet.min(most - elapsed), |queue| !queue.rung)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        queue = again;
        if queue.rung || queue.messages.len() == seen {
            break;
        }
    }
    queue.gathering = None;
    queue.rung = false;
    queue
}

/// Tells the intents still waiting that the recorder has stopped, however its thread ends (a panic too).
struct Stopped<'a>(&'a acks::Acks);

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

fn run(mut state: StateFile, job: i64, conduit: &Arc<Conduit>) -> Result<StateFile, StateError> {
    let _stopped = Stopped(&conduit.acks);
    // Once a commit fails (a full disk), every later intent fails too: no PUT goes out unrecorded.
    let mut broken: Option<String> = None;
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
    let mut batch = Vec::new();
    loop {
        next_batch(conduit, &mut batch);
        conduit.acks.nudge();
        if batch.is_empty() {
            continue;
        }
        let stopping = matches!(batch.last(), Some(Message::Stop));
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
            None => commit(&mut state, job, &stamp, moved, &batch, figures).map_err(|error| error.to_string()),
        };
        conduit.commits.fetch_add(u64::from(result.is_ok()), Ordering::Relaxed);
        if result.is_ok() {
            written = if stopping { (0, 0) } else { noted };
        }
        if result.is_ok() && moved {
            moved_at = stamp;
        }
        if let Err(message) = &result {
            broken.get_or_insert_with(|| message.clone());
        }
        let intended = batch.iter().rev().find_map(|message| match message {
            Message::Intend { ticket, .. } => Some(*ticket),
            _ => None,
        });
        if let Some(upto) = intended {
            conduit.acks.settle(upto, &result);
        }
        for message in batch.drain(..) {
            if let Message::Page { done, .. } | Message::Flush(done) = message {
                let _ = done.send(result.clone());
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
        let mut snapshot = transaction.prepare_cached(
            "INSERT OR REPLACE INTO snapshots (job_id, customer_id, etag, profile, read_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut withdraw = transaction.prepare_cached(
            "UPDATE rows SET put_sent = 0, changed_fields = NULL, before = NULL, after = NULL, updated_at = ?3
             WHERE job_id = ?1 AND line = ?2 AND status = 'pending'",
        )?;
        for message in batch {
            match message {
                Message::Intend { line, changes, .. } => {
                    let (fields, before, after) = describe(changes);
                    intend.execute(params![job, line, fields, before, after, stamp])?;
                }
                Message::Outcome(outcome) => {
                    record_outcome(&mut record, job, stamp, outcome)?;
                    // An export's read: the profile kept as the snapshot, in the same transaction as its row.
                    if let Some(read) = &outcome.snapshot {
                        snapshot.execute(params![job, read.customer_id, read.etag, read.profile, stamp])?;
                    }
                }
                Message::Withdraw(line) => {
                    withdraw.execute(params![job, line, stamp])?;
                }
                Message::Page { rows, next_page, .. } => {
                    super::export::insert_page(&transaction, job, rows, next_page.as_deref())?;
                }
                Message::Flush(_) | Message::Figures { .. } | Message::Stop => {}
            }
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

/// One row's outcome, through the `record` statement.
fn record_outcome(
    record: &mut rusqlite::CachedStatement<'_>,
    job: i64,
    stamp: &str,
    outcome: &RowOutcome,
) -> rusqlite::Result<usize> {
    // Changes the row's intent wrote stay as written (`COALESCE`): describing them again was 3% of a row.
    let described = (!outcome.changes.is_empty() && !outcome.changes_in_intent).then(|| describe(&outcome.changes));
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
    ])
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
    use tokio::task::JoinHandle;

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

    #[tokio::test]
    async fn the_intents_of_one_turn_share_one_commit() {
        let mut state = StateFile::open_in_memory().unwrap();
        let rows = (2..12).map(|line| {
            let (customer_id, error, warnings) = (format!("c{line}"), String::new(), String::new());
            Ok(PlannedRow { line, customer_id, status: RowStatus::Pending, error, warnings, plan: None })
        });
        let job = state.create_job(JobKind::Apply, "x.csv", "h", "http://127.0.0.1:1", rows).unwrap().unwrap();
        let recorder = Recorder::start(state, job.id);
        let handle = recorder.handle();
        let change = FieldChange { field: "email", before: None, after: Some(serde_json::json!("a@contoso.com")) };
        let intents = (2..12).map(|line| handle.intend_put(line, std::slice::from_ref(&change)));
        let answers = futures::future::join_all(intents).await;
        assert!(answers.iter().all(Result::is_ok));
        assert_eq!(recorder.commits(), 1, "ten intents of one turn, one transaction");
        let state = recorder.finish().unwrap();
        assert_eq!(state.unsettled_puts(job.id).unwrap().len(), 10);
    }

    /// A recorder on a job of ten pending rows, and a change to intend.
    fn started() -> (Recorder, i64, FieldChange) {
        let mut state = StateFile::open_in_memory().unwrap();
        let rows = (2..12).map(|line| {
            let (customer_id, error, warnings) = (format!("c{line}"), String::new(), String::new());
            Ok(PlannedRow { line, customer_id, status: RowStatus::Pending, error, warnings, plan: None })
        });
        let job = state.create_job(JobKind::Apply, "x.csv", "h", "http://127.0.0.1:1", rows).unwrap().unwrap();
        let change = FieldChange { field: "email", before: None, after: Some(serde_json::json!("a@contoso.com")) };
        (Recorder::start(state, job.id), job.id, change)
    }

    /// Intends a PUT of `change` for `line` on a task of its own, which ends once the intent is durable.
    fn spawn_intent(handle: &RecorderHandle, line: u64, change: &FieldChange) -> JoinHandle<Result<(), StateError>> {
        let (handle, change) = (handle.clone(), change.clone());
        tokio::spawn(async move { handle.intend_put(line, &[change]).await })
    }

    /// Waits (a generous minute at most) until the queue is as `ready` says: observable state, no sleep as
    /// synchronisation.
    async fn until(recorder: &Recorder, what: &str, ready: impl Fn(&Queue) -> bool) {
        let waited = tokio::time::timeout(Duration::from_secs(60), async {
            while !ready(&lock(&recorder.conduit.queue)) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        waited.await.unwrap_or_else(|_| panic!("{what}"));
    }

    /// Waits until the thread gathers.
    async fn until_gathering(recorder: &Recorder) {
        until(recorder, "the recorder gathers", |queue| queue.gathering.is_some()).await;
    }

    /// Waits until the thread waits for the bell.
    async fn until_idle(recorder: &Recorder) {
        until(recorder, "the recorder waits", |queue| !queue.busy).await;
    }

    /// A recorder whose gathers end on `intents` intents alone: the pause and the window are an hour.
    fn gathering_by_count(intents: usize) -> (Recorder, RecorderHandle, i64, FieldChange) {
        let (recorder, job, change) = started();
        let handle = recorder.handle();
        let hour = Duration::from_secs(3600);
        handle.gather(Some(Gather { intents, quiet: hour, most: hour }));
        (recorder, handle, job, change)
    }

    /// Waits for the `held` intents, then checks that they and the one that ended their gather, `intents` in all,
    /// went to disk in one transaction.
    async fn in_one_commit(
        recorder: Recorder,
        job: i64,
        held: Vec<JoinHandle<Result<(), StateError>>>,
        intents: usize,
    ) {
        for intent in held {
            intent.await.unwrap().unwrap();
        }
        assert_eq!(recorder.commits(), 1, "{intents} intents of {intents} turns, one transaction");
        let state = recorder.finish().unwrap();
        assert_eq!(state.unsettled_puts(job).unwrap().len(), intents);
    }

    #[tokio::test]
    async fn an_idle_recorder_gathers_intents_of_later_turns_into_one_commit_up_to_its_count() {
        let (recorder, handle, job, change) = gathering_by_count(3);
        until_idle(&recorder).await;
        let first = spawn_intent(&handle, 2, &change);
        until_gathering(&recorder).await;
        let second = spawn_intent(&handle, 3, &change);
        // Neither is durable yet: two intents of three, and the flow has not paused for an hour.
        tokio::task::yield_now().await;
        assert_eq!(recorder.commits(), 0);
        handle.intend_put(4, std::slice::from_ref(&change)).await.unwrap();
        in_one_commit(recorder, job, vec![first, second], 3).await;
    }

    #[tokio::test]
    async fn a_gathered_intent_goes_once_the_flow_pauses_or_the_window_ends_or_a_flush_comes() {
        let (recorder, _, change) = started();
        let handle = recorder.handle();
        let (hour, moment, minute) = (Duration::from_secs(3600), Duration::from_millis(20), Duration::from_secs(60));
        // Nothing joins: the quiet time ends the window. A steady flow would never pause: the window's length ends
        // it. A flush is never held.
        let windows = [(moment, hour, false), (hour, moment, false), (hour, hour, true)];
        for (line, (quiet, most, flush)) in (2..).zip(windows) {
            until_idle(&recorder).await;
            handle.gather(Some(Gather { intents: 8, quiet, most }));
            let held = spawn_intent(&handle, line, &change);
            until_gathering(&recorder).await;
            if flush {
                tokio::time::timeout(minute, handle.flush()).await.expect("a flush ends it").unwrap();
            }
            tokio::time::timeout(minute, held).await.expect("the window ends").unwrap().unwrap();
        }
        assert_eq!(recorder.commits(), 3);
        recorder.finish().unwrap();
    }

    #[tokio::test]
    async fn a_gather_that_follows_a_slow_service_waits_for_twice_the_intents() {
        let (recorder, handle, job, change) = gathering_by_count(2);
        // Slower than the base's quiet: four intents end the gather, not two.
        handle.follow_latency(Arc::new(|| Some(Duration::from_secs(7200))));
        until_idle(&recorder).await;
        let first = spawn_intent(&handle, 2, &change);
        until_gathering(&recorder).await;
        let mut held = vec![first];
        for line in 3..5 {
            held.push(spawn_intent(&handle, line, &change));
            tokio::task::yield_now().await;
        }
        // Three intents of four, and the flow has not paused for an hour: none is durable yet.
        until_queued(&recorder, 3).await;
        assert_eq!(recorder.commits(), 0);
        handle.intend_put(5, std::slice::from_ref(&change)).await.unwrap();
        in_one_commit(recorder, job, held, 4).await;
    }

    /// Waits until `intents` intents wait in the queue.
    async fn until_queued(recorder: &Recorder, intents: usize) {
        until(recorder, "the intents are queued", |queue| queue.intents >= intents).await;
    }

    #[test]
    fn a_gather_follows_the_latency_above_its_quiet_within_its_bounds() {
        let base = Gather { intents: 8, quiet: Duration::from_millis(6), most: Duration::from_millis(25) };
        let ms = Duration::from_millis;
        assert_eq!(base.at(None), base, "nothing answered yet");
        assert_eq!(base.at(Some(ms(3))), base, "as fast as the base's quiet");
        assert_eq!(base.at(Some(ms(6))), base);
        assert_eq!(base.at(Some(ms(8))), Gather { intents: 16, quiet: ms(8), most: ms(25) });
        assert_eq!(base.at(Some(ms(40))), Gather { intents: 16, quiet: ms(40), most: ms(100) });
        assert_eq!(base.at(Some(Duration::from_secs(2))), Gather { intents: 16, quiet: ms(40), most: ms(100) });
    }

    #[test]
    fn a_job_gathers_a_quarter_of_its_row_workers_and_a_small_one_none() {
        assert_eq!(Gather::for_workers(32).map(|gather| gather.intents), Some(8));
        assert_eq!(Gather::for_workers(16).map(|gather| gather.intents), Some(4));
        assert_eq!(Gather::for_workers(8).map(|gather| gather.intents), Some(2));
        assert_eq!(Gather::for_workers(6), None, "--concurrency 3: rows commit at once");
    }
}
