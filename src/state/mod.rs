//! The state file: one SQLite database that records every job and every row's outcome, so a job resumes after a
//! crash, a kill or a reboot without redoing or double-applying anything, and the report can be written again.
//!
//! The only module that touches SQLite. While a job runs, one thread owns the connection ([`recorder`]) and commits
//! in batches; before that (planning) and after it (status, report) the connection is used directly by the one
//! caller that holds the [`StateFile`]. It never stores a token or a secret: nothing that reaches it holds one.

pub mod audit;
pub mod export;
pub mod minutes;
pub mod pace;
pub mod plan;
pub mod recorder;
mod schema;
pub mod seconds;

use crate::merge::FieldChange;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use minutes::Minute;
pub use recorder::Recorder;
pub use seconds::{RunTimeline, Seconds};

/// The kinds of job a state file holds, each at most once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    Apply,
    DryRun,
    Rollback,
    /// A rollback's dry run: its own kind, so it never disturbs a real rollback under way.
    RollbackDryRun,
    /// `pcbulk export`: a read of every customer's profile, kept as the snapshot (`export`).
    Export,
}

impl JobKind {
    pub fn name(self) -> &'static str {
        match self {
            JobKind::Apply => "apply",
            JobKind::DryRun => "dry-run",
            JobKind::Rollback => "rollback",
            JobKind::RollbackDryRun => "rollback-dry-run",
            JobKind::Export => "export",
        }
    }
}

/// The status of a row, as the report spells it. Typed from the state file to the report and summary writers: a
/// row's status is parsed once, when it is read ([`RowStatus::parse`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RowStatus {
    Pending,
    Updated,
    Unchanged,
    WouldUpdate,
    Failed,
    Invalid,
    Conflict,
    Restored,
    /// `validate`'s report only: the row breaks no rule. Never a job's status (not in [`RowStatus::ALL`]).
    Valid,
}

impl RowStatus {
    /// The statuses a job's rows can have.
    pub const ALL: [RowStatus; 8] = [
        RowStatus::Updated,
        RowStatus::Unchanged,
        RowStatus::WouldUpdate,
        RowStatus::Restored,
        RowStatus::Failed,
        RowStatus::Invalid,
        RowStatus::Conflict,
        RowStatus::Pending,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RowStatus::Pending => "pending",
            RowStatus::Updated => "updated",
            RowStatus::Unchanged => "unchanged",
            RowStatus::WouldUpdate => "would_update",
            RowStatus::Failed => "failed",
            RowStatus::Invalid => "invalid",
            RowStatus::Conflict => "conflict",
            RowStatus::Restored => "restored",
            RowStatus::Valid => "valid",
        }
    }

    /// A job's status by its name (`valid` is none).
    pub fn from_name(name: &str) -> Option<RowStatus> {
        RowStatus::ALL.into_iter().find(|status| status.name() == name)
    }

    /// A status as the state file holds it (of the row on `line`, when one); a name this build does not know is
    /// an error naming it.
    pub fn parse(name: &str, line: Option<u64>) -> Result<RowStatus, StateError> {
        RowStatus::from_name(name).ok_or_else(|| StateError::UnknownStatus {
            status: name.chars().take(40).collect(),
            at: line.map_or(String::new(), |line| format!(" on line {line}")),
        })
    }

    /// Whether a person should look at a row with this status: every status but those of a clean exit
    /// (`updated`, `unchanged`, and a dry run's `would_update` or a rollback's `restored`, which are what those jobs
    /// are for).
    pub fn needs_attention(self) -> bool {
        !matches!(self, RowStatus::Updated | RowStatus::Unchanged | RowStatus::WouldUpdate | RowStatus::Restored)
    }

    /// Whether a row with this status makes the exit code 2.
    pub fn is_problem(self) -> bool {
        matches!(self, RowStatus::Failed | RowStatus::Invalid | RowStatus::Conflict)
    }
}

impl fmt::Display for RowStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for RowStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// The record of a row's or a change's calls, as the state file, the report and the JSON hold it: the status,
/// error code and words of the call a result is quoted by (a row's PUT when it had one, else its GET), the
/// attempts all its calls took (429s not counted), and the ids to find that call in the service's logs.
/// `crate::write::Calls` makes one from the calls a write made.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CallRecord {
    pub http_status: Option<u16>,
    pub error_code: Option<String>,
    pub error: Option<String>,
    pub attempts: Option<u32>,
    pub request_id: Option<String>,
    pub correlation_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state file {path}: {message}")]
    Unusable { path: String, message: String },
    #[error("state file {path} is in use by another pcbulk process")]
    Locked { path: String },
    #[error("state file: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("state file: the recorder stopped: {0}")]
    RecorderGone(String),
    #[error("state file: unknown row status \"{status}\"{at} (written by another version of pcbulk?)")]
    UnknownStatus { status: String, at: String },
}

/// A job as the state file holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub id: i64,
    pub kind: JobKind,
    pub csv_path: String,
    pub csv_hash: String,
    pub base_url: String,
    pub created_at: String,
    pub last_moved_at: Option<String>,
    pub finished_at: Option<String>,
    pub requests: u64,
    pub throttled: u64,
    pub settled_rate: Option<f64>,
}

/// A row as first recorded when the job is planned.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedRow {
    pub line: u64,
    pub customer_id: String,
    pub status: RowStatus,
    pub error: String,
    pub warnings: String,
    /// A valid row's changes ([`plan::encode`]): what the engine applies, never the file read again.
    pub plan: Option<String>,
}

/// What became of a row, as recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct RowOutcome {
    pub line: u64,
    pub status: RowStatus,
    pub changes: Vec<FieldChange>,
    pub call: CallRecord,
    /// Pre-flight's findings (rules broken, warnings), when it ran.
    pub preflight: Option<String>,
    /// The address validation service's first suggestion, as one line.
    pub suggested_address: Option<String>,
    /// `changes` are those of the row's intent, already in the state file: the recorder does not write them again.
    pub changes_in_intent: bool,
    /// An export's read: the profile as read, kept as the snapshot (`export::Snapshot`).
    pub snapshot: Option<export::Snapshot>,
}

impl RowOutcome {
    /// A row's outcome with no change, call or pre-flight recorded yet.
    pub fn new(line: u64, status: RowStatus) -> RowOutcome {
        RowOutcome {
            line,
            status,
            changes: Vec::new(),
            call: CallRecord::default(),
            preflight: None,
            suggested_address: None,
            changes_in_intent: false,
            snapshot: None,
        }
    }

    /// The same outcome, quoting these calls.
    pub fn with_call(self, call: CallRecord) -> RowOutcome {
        RowOutcome { call, ..self }
    }

    /// The same outcome, with these changes (to be written with it).
    pub fn with_changes(self, changes: Vec<FieldChange>) -> RowOutcome {
        RowOutcome { changes, ..self }
    }
}

/// A row a job wrote, as a rollback reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct WrittenRow {
    pub line: u64,
    pub customer_id: String,
    /// `{field: value before the job}`.
    pub before: String,
    /// `{field: value the job wrote}`.
    pub after: String,
}

/// A row as stored: what the report writers write straight (the CSV report, `validate`'s rows too, as read; the
/// JSON report through its `Serialize`, which is that report's row: `before`/`after` as objects, `changed_fields` as
/// a list, an empty cell as null, the pre-flight columns left to the CSV).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct StoredRow {
    pub line: u64,
    pub customer_id: String,
    pub status: RowStatus,
    /// The field names, separated by spaces.
    #[serde(serialize_with = "words")]
    pub changed_fields: String,
    /// JSON objects `{field: value}` (see [`changes_json`]).
    #[serde(serialize_with = "object")]
    pub before: String,
    #[serde(serialize_with = "object")]
    pub after: String,
    #[serde(flatten)]
    pub call: CallRecord,
    #[serde(serialize_with = "empty_as_null")]
    pub warnings: String,
    #[serde(skip)]
    pub preflight: String,
    #[serde(skip)]
    pub suggested_address: String,
}

impl StoredRow {
    /// A row of this status with every other cell empty.
    pub fn new(line: u64, customer_id: String, status: RowStatus) -> StoredRow {
        StoredRow {
            line,
            customer_id,
            status,
            changed_fields: String::new(),
            before: String::new(),
            after: String::new(),
            call: CallRecord::default(),
            warnings: String::new(),
            preflight: String::new(),
            suggested_address: String::new(),
        }
    }
}

fn words<S: serde::Serializer>(text: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(text.split_whitespace())
}

fn object<S: serde::Serializer>(text: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&serde_json::from_str::<Map<String, Value>>(text).unwrap_or_default(), serializer)
}

fn empty_as_null<S: serde::Serializer>(text: &str, serializer: S) -> Result<S::Ok, S::Error> {
    match text.is_empty() {
        true => serializer.serialize_none(),
        false => serializer.serialize_str(text),
    }
}

/// The changes of a row as a JSON object `{field: value}` of one side (`before` or `after`). A field absent on that
/// side is left out of it (its name is in the other side, and in `changed_fields`): `{}` before `{"email": "x"}`
/// means the key was absent, `{"email": null}` that it held null.
pub fn changes_json(changes: &[FieldChange], side: impl Fn(&FieldChange) -> &Option<Value>) -> String {
    let object: Map<String, Value> = changes
        .iter()
        .filter_map(|change| side(change).as_ref().map(|value| (change.field.to_string(), value.clone())))
        .collect();
    Value::Object(object).to_string()
}

/// Changes as the state file stores them (`before` and `after` JSON objects `{field: value}`, see [`changes_json`]),
/// read back: a field named on one side only was absent on the other. Field names are those of `catalog`, and a
/// name it does not know is left out. (Files written before absent was told apart from null hold `null` for both:
/// read as null.)
pub fn decode_changes(catalog: &'static [crate::fields::Field], before: &str, after: &str) -> Vec<FieldChange> {
    let parse = |text: &str| serde_json::from_str::<Map<String, Value>>(text).unwrap_or_default();
    let (before, after) = (parse(before), parse(after));
    let names = after.keys().chain(before.keys().filter(|name| !after.contains_key(*name)));
    names
        .filter_map(|name| {
            let field = crate::fields::lookup(catalog, name)?;
            Some(FieldChange { field: field.name, before: before.get(name).cloned(), after: after.get(name).cloned() })
        })
        .collect()
}

/// What a rollback job records in place of a CSV hash: the apply job it undoes (its CSV hash and when it was
/// made, so a restarted apply of the same CSV is another job).
pub fn rollback_marker(apply: &Job) -> String {
    format!("{}@{}", apply.csv_hash, apply.created_at)
}

/// Now, as RFC 3339 UTC to the second.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// How long a job waits for a state file's lock before it refuses the file as another job's.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_millis(500);

/// The state file, opened by the one caller that uses it now.
pub struct StateFile {
    connection: Connection,
    path: PathBuf,
    /// Held for as long as the file is open for a job: a second job on the same file is refused.
    _lock: Option<std::fs::File>,
}

impl StateFile {
    /// Opens (or creates, mode 0600) a state file for a job, refusing one that another process is using and one
    /// that is not a pcbulk state file (never overwriting it).
    pub fn open_for_job(path: &Path) -> Result<StateFile, StateError> {
        let display = path.display().to_string();
        crate::files::refuse_non_regular(path)
            .map_err(|error| StateError::Unusable { path: display.clone(), message: error.to_string() })?;
        let lock = crate::files::create_or_open_private(path)
            .map_err(|error| StateError::Unusable { path: display.clone(), message: error.to_string() })?;
        // A lock just let go can still be held for a moment by a process being started elsewhere (between its fork
        // and its exec, a child holds every descriptor of its parent, close-on-exec ones too): asked again for a
        // short while before another job's state file is refused.
        let deadline = std::time::Instant::now() + LOCK_PATIENCE;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(std::fs::TryLockError::WouldBlock) => return Err(StateError::Locked { path: display }),
                Err(std::fs::TryLockError::Error(error)) => {
                    return Err(StateError::Unusable { path: display, message: error.to_string() });
                }
            }
        }
        let mut state = Self::open_connection(path, schema::Role::Owner)?;
        state._lock = Some(lock);
        Ok(state)
    }

    /// Opens an existing state file to read it (`status`, `report`).
    pub fn open_existing(path: &Path) -> Result<StateFile, StateError> {
        Self::require_existing(path)?;
        Self::open_connection(path, schema::Role::Reader)
    }

    /// Opens an existing state file for a job that works on what an earlier job recorded (a rollback), never
    /// creating one.
    pub fn open_existing_for_job(path: &Path) -> Result<StateFile, StateError> {
        Self::require_existing(path)?;
        Self::open_for_job(path)
    }

    fn require_existing(path: &Path) -> Result<(), StateError> {
        if path.exists() {
            return Ok(());
        }
        let message = "no such file: has a job run for this CSV? (give --state FILE if it lives elsewhere)";
        Err(StateError::Unusable { path: path.display().to_string(), message: message.to_string() })
    }

    /// An in-memory state, for tests.
    pub fn open_in_memory() -> Result<StateFile, StateError> {
        let connection = Connection::open_in_memory()?;
        schema::prepare(&connection, schema::Role::Owner)
            .map_err(|message| StateError::Unusable { path: ":memory:".into(), message })?;
        Ok(StateFile { connection, path: PathBuf::from(":memory:"), _lock: None })
    }

    fn open_connection(path: &Path, role: schema::Role) -> Result<StateFile, StateError> {
        let unusable = |message: String| StateError::Unusable { path: path.display().to_string(), message };
        let connection = Connection::open(path).map_err(|error| unusable(error.to_string()))?;
        schema::prepare(&connection, role).map_err(unusable)?;
        Ok(StateFile { connection, path: path.to_path_buf(), _lock: None })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The job of this kind, if the file holds one.
    pub fn find_job(&self, kind: JobKind) -> Result<Option<Job>, StateError> {
        let job = self
            .connection
            .query_row(
                "SELECT id, csv_path, csv_hash, base_url, created_at, last_moved_at, finished_at, requests, throttled,
                        settled_rate
                 FROM jobs WHERE kind = ?1",
                params![kind.name()],
                |row| {
                    Ok(Job {
                        id: row.get(0)?,
                        kind,
                        csv_path: row.get(1)?,
                        csv_hash: row.get(2)?,
                        base_url: row.get(3)?,
                        created_at: row.get(4)?,
                        last_moved_at: row.get(5)?,
                        finished_at: row.get(6)?,
                        requests: row.get(7)?,
                        throttled: row.get(8)?,
                        settled_rate: row.get(9)?,
                    })
                },
            )
            .optional()?;
        Ok(job)
    }

    /// The rollback (not its dry run) made for this apply job, if one was started: it names the apply job by
    /// [`rollback_marker`].
    pub fn rollback_of(&self, apply: &Job) -> Result<Option<Job>, StateError> {
        Ok(self.find_job(JobKind::Rollback)?.filter(|rollback| rollback.csv_hash == rollback_marker(apply)))
    }

    /// How many rows of the job a PUT was sent for (or may have been) and that no rollback has restored yet: what
    /// a rollback would still undo, and what deleting the job's record would make impossible to undo.
    pub fn written_count(&self, job: i64) -> Result<u64, StateError> {
        let count = self.connection.query_row(
            "SELECT COUNT(*) FROM rows AS applied WHERE applied.job_id = ?1
                 AND (applied.put_sent = 1 OR applied.status = 'updated')
                 AND NOT EXISTS (SELECT 1 FROM rows AS undone JOIN jobs ON jobs.id = undone.job_id
                                 WHERE jobs.kind = 'rollback' AND undone.line = applied.line
                                   AND undone.status = 'restored')",
            params![job],
            |row| row.get(0),
        )?;
        Ok(count)
    }

    /// Removes a job and its rows.
    pub fn delete_job(&mut self, id: i64) -> Result<(), StateError> {
        let transaction = self.connection.transaction()?;
        transaction.execute("DELETE FROM rows WHERE job_id = ?1", params![id])?;
        transaction.execute("DELETE FROM minutes WHERE job_id = ?1", params![id])?;
        transaction.execute("DELETE FROM seconds WHERE job_id = ?1", params![id])?;
        transaction.execute("DELETE FROM snapshots WHERE job_id = ?1", params![id])?;
        transaction.execute("DELETE FROM exports WHERE job_id = ?1", params![id])?;
        transaction.execute("DELETE FROM jobs WHERE id = ?1", params![id])?;
        transaction.commit()?;
        Ok(())
    }

    /// Records a new job and every row of its plan, in one transaction.
    pub fn create_job(
        &mut self,
        kind: JobKind,
        csv_path: &str,
        csv_hash: &str,
        base_url: &str,
        rows: impl Iterator<Item = Result<PlannedRow, crate::input::FileError>>,
    ) -> Result<Result<Job, crate::input::FileError>, StateError> {
        let created_at = now();
        let transaction = self.connection.transaction()?;
        transaction.execute(
            "INSERT INTO jobs (kind, csv_path, csv_hash, base_url, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![kind.name(), csv_path, csv_hash, base_url, created_at],
        )?;
        let id = transaction.last_insert_rowid();
        {
            let mut insert = transaction.prepare(
                "INSERT INTO rows (job_id, line, customer_id, status, error, warnings, plan)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for row in rows {
                let row = match row {
                    Ok(row) => row,
                    // Dropping the transaction rolls the half-made job back.
                    Err(error) => return Ok(Err(error)),
                };
                let status = row.status.name();
                insert.execute(params![id, row.line, row.customer_id, status, row.error, row.warnings, row.plan])?;
            }
        }
        // In the same transaction: a job killed between its rows and this step was found again on the rerun with
        // its duplicates still pending, and applied them (tests/crash.rs saw a duplicate line updated).
        mark_duplicates(&transaction, id)?;
        transaction.commit()?;
        let job = self.find_job(kind)?.ok_or_else(|| StateError::RecorderGone("the job just made is gone".into()))?;
        Ok(Ok(job))
    }

    /// Adds to a job the planned rows it does not hold yet (by line), leaving the rows it holds as they are; returns
    /// how many were added.
    pub fn add_rows(&mut self, job: i64, rows: impl Iterator<Item = PlannedRow>) -> Result<usize, StateError> {
        let transaction = self.connection.transaction()?;
        let mut added = 0;
        {
            let mut insert = transaction.prepare(
                "INSERT OR IGNORE INTO rows (job_id, line, customer_id, status, error, warnings, plan)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for row in rows {
                added += insert.execute(params![
                    job,
                    row.line,
                    row.customer_id,
                    row.status.name(),
                    row.error,
                    row.warnings,
                    row.plan
                ])?;
            }
        }
        transaction.commit()?;
        Ok(added)
    }

    /// The lines of the job that are settled and must be neither read nor written again.
    pub fn settled_lines(&self, job: i64, retry_failed: bool) -> Result<LineSet, StateError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT line FROM rows WHERE job_id = ?1 AND status NOT IN ('pending', ?2) AND NOT (status = 'failed' AND ?3)",
        )?;
        let skip_failed_too = if retry_failed { "failed" } else { "pending" };
        let mut lines = LineSet::default();
        let mut rows = statement.query(params![job, skip_failed_too, retry_failed])?;
        while let Some(row) = rows.next()? {
            lines.insert(row.get(0)?);
        }
        Ok(lines)
    }

    /// The rows whose PUT was sent in an earlier run without its answer being recorded, with the changes it made.
    pub fn unsettled_puts(&self, job: i64) -> Result<BTreeMap<u64, (String, String)>, StateError> {
        let mut statement = self.connection.prepare(
            "SELECT line, before, after FROM rows WHERE job_id = ?1 AND put_sent = 1 AND status IN ('pending', 'failed')",
        )?;
        let rows = statement.query_map(params![job], |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))))?;
        rows.collect::<Result<_, _>>().map_err(StateError::from)
    }

    /// The rows the job `updated`, with the changes it wrote (JSON objects `{field: value}` of each side), in
    /// input order: what a rollback undoes.
    pub fn written_rows(&self, job: i64) -> Result<Vec<WrittenRow>, StateError> {
        let mut statement = self.connection.prepare(
            "SELECT line, customer_id, COALESCE(before, '{}'), COALESCE(after, '{}') FROM rows
             WHERE job_id = ?1 AND status = 'updated' ORDER BY line",
        )?;
        let rows = statement.query_map(params![job], |row| {
            Ok(WrittenRow { line: row.get(0)?, customer_id: row.get(1)?, before: row.get(2)?, after: row.get(3)? })
        })?;
        rows.collect::<Result<_, _>>().map_err(StateError::from)
    }

    /// How many rows of the job have each status.
    pub fn counts(&self, job: i64) -> Result<BTreeMap<RowStatus, u64>, StateError> {
        let mut statement =
            self.connection.prepare("SELECT status, COUNT(*) FROM rows WHERE job_id = ?1 GROUP BY status")?;
        let mut counts = BTreeMap::new();
        let mut rows = statement.query(params![job])?;
        while let Some(row) = rows.next()? {
            let name: String = row.get(0)?;
            counts.insert(RowStatus::parse(&name, None)?, row.get(1)?);
        }
        Ok(counts)
    }

    /// Calls `each` with every row of the job, in input order.
    pub fn each_row(&self, job: i64, mut each: impl FnMut(StoredRow) -> std::io::Result<()>) -> Result<(), StateError> {
        let mut statement = self.connection.prepare(
            "SELECT line, customer_id, status, changed_fields, before, after, http_status, error_code, error, attempts,
                    request_id, correlation_id, warnings, preflight, suggested_address
             FROM rows WHERE job_id = ?1 ORDER BY line",
        )?;
        let mut rows = statement.query(params![job])?;
        while let Some(row) = rows.next()? {
            let text = |index: usize| row.get::<_, Option<String>>(index).map(Option::unwrap_or_default);
            // An empty cell is no value.
            let some = |index: usize| row.get::<_, Option<String>>(index).map(|text| text.filter(|t| !t.is_empty()));
            let line = row.get(0)?;
            let stored = StoredRow {
                line,
                customer_id: text(1)?,
                status: RowStatus::parse(&text(2)?, Some(line))?,
                changed_fields: text(3)?,
                before: text(4)?,
                after: text(5)?,
                call: CallRecord {
                    http_status: row.get(6)?,
                    error_code: some(7)?,
                    error: some(8)?,
                    attempts: row.get(9)?,
                    request_id: some(10)?,
                    correlation_id: some(11)?,
                },
                warnings: text(12)?,
                preflight: text(13)?,
                suggested_address: text(14)?,
            };
            each(stored).map_err(|error| StateError::RecorderGone(format!("cannot write: {error}")))?;
        }
        Ok(())
    }

    /// Whether pre-flight ran for any row of the job (its report then carries the pre-flight columns).
    pub fn ran_preflight(&self, job: i64) -> Result<bool, StateError> {
        let ran = self.connection.query_row(
            "SELECT EXISTS (SELECT 1 FROM rows WHERE job_id = ?1 AND preflight IS NOT NULL)",
            params![job],
            |row| row.get(0),
        )?;
        Ok(ran)
    }

    /// Records the job's request figures and when it finished.
    pub fn finish_job(&self, job: i64, figures: &JobFigures, finished: bool) -> Result<(), StateError> {
        self.connection.execute(
            "UPDATE jobs SET requests = requests + ?2, throttled = throttled + ?3,
                             settled_rate = COALESCE(?4, settled_rate), last_moved_at = ?5, finished_at = ?6
             WHERE id = ?1",
            params![job, figures.requests, figures.throttled, figures.settled_rate, now(), finished.then(now)],
        )?;
        Ok(())
    }

    /// Marks the job finished again, its figures as they were (a finished job run again did nothing).
    pub fn mark_finished(&self, job: i64) -> Result<(), StateError> {
        self.connection.execute("UPDATE jobs SET finished_at = ?2 WHERE id = ?1", params![job, now()])?;
        Ok(())
    }

    /// Marks the job as started again (a resume).
    pub fn touch_job(&self, job: i64) -> Result<(), StateError> {
        self.connection
            .execute("UPDATE jobs SET last_moved_at = ?2, finished_at = NULL WHERE id = ?1", params![job, now()])?;
        Ok(())
    }
}

/// Request figures of one run of a job.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct JobFigures {
    pub requests: u64,
    pub throttled: u64,
    pub settled_rate: Option<f64>,
}

/// A set of line numbers, one bit per line: a million settled rows cost 125 KB.
#[derive(Clone, Debug, Default)]
pub struct LineSet {
    words: Vec<u64>,
    len: usize,
}

impl LineSet {
    pub fn insert(&mut self, line: u64) {
        let (word, bit) = ((line / 64) as usize, line % 64);
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        if self.words[word] & (1 << bit) == 0 {
            self.len += 1;
        }
        self.words[word] |= 1 << bit;
    }

    pub fn contains(&self, line: u64) -> bool {
        self.words.get((line / 64) as usize).is_some_and(|word| word & (1 << (line % 64)) != 0)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests;

/// Marks every pending row whose customer already appeared on an earlier line `invalid` (the earlier line wins),
/// with the words the reader's own duplicate check uses. Done in SQL, through an index, so planning a job keeps no
/// map of every id in memory; part of the transaction that makes the job (`StateFile::create_job`).
fn mark_duplicates(connection: &Connection, job: i64) -> Result<u64, StateError> {
    let marked = connection.execute(
        "UPDATE rows SET status = 'invalid',
             error = 'column customer_id: value \"' || customer_id || '\": the same customer as line '
                     || (SELECT MIN(earlier.line) FROM rows AS earlier
                         WHERE earlier.job_id = rows.job_id AND lower(earlier.customer_id) = lower(rows.customer_id))
                     || ': the earlier line wins, this one is skipped'
         WHERE job_id = ?1 AND status = 'pending' AND EXISTS (
             SELECT 1 FROM rows AS earlier
             WHERE earlier.job_id = rows.job_id AND lower(earlier.customer_id) = lower(rows.customer_id)
               AND earlier.line < rows.line)",
        params![job],
    )?;
    Ok(marked as u64)
}
