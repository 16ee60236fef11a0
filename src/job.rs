//! A job from start to end: know it again (resume) or plan it, run the engine, write the report, sum it up.
//!
//! A job is identified by the CSV's content hash, the base URL and its kind. Planning records every data line of
//! the CSV in the state file (valid rows `pending`, invalid rows `invalid` with their problems), so the report is
//! whole across resumes, and every valid row's changes (its plan), which is what the engine applies: the CSV is read
//! once to plan, and at a resume only hashed to check it is the file planned (`pinned`). A rollback ([`rollback`]) is a
//! job too, planned from the apply job's rows and run the same way (`execute`).

pub mod export;
mod export_file;
mod pinned;
pub mod rollback;

use crate::client::{self, ApiConfig};
use crate::edited::Edited;
use crate::engine::preflight::PreflightConfig;
use crate::engine::{self, Ending, Guard, Halt, Mode, RunOptions, Source, Work};
use crate::fields::CUSTOMER_BILLING;
use crate::input::{self, FileError, InputConfig, Problem, Record, Validity};
use crate::merge::FieldChange;
use crate::progress::Progress;
use crate::report::{self, PreflightColumns};
use crate::state::recorder::RecorderHandle;
use crate::state::{Job, JobFigures, JobKind, PlannedRow, Recorder, RowStatus, StateError, StateFile, plan};
use crate::threeway::ExcelChanges;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// An apply (or dry run), resolved from the command line.
#[derive(Clone, Debug)]
pub struct ApplyConfig {
    pub csv: PathBuf,
    pub input: InputConfig,
    pub state: PathBuf,
    pub report: PathBuf,
    pub mode: Mode,
    /// `--restart`; over a job that has written rows it needs `yes` too (their rollback is lost).
    pub restart: bool,
    /// `--yes`: the operator has read what `--restart` loses.
    pub yes: bool,
    pub retry_failed: bool,
    pub strict: bool,
    pub api: ApiConfig,
    /// Where the job goes: the service at `api`'s base URL, or an in-process sandbox (a rehearsal).
    pub target: Target,
    /// How long rows in flight may take to finish after Ctrl-C.
    pub grace: Duration,
    /// Pre-flight of merged addresses (on by default for a dry run).
    pub preflight: PreflightConfig,
    /// `--canary`, `--max-failures`.
    pub guard: Guard,
    /// `--base EXPORT.csv`: the export an edited CSV is applied against, when its `#export` column does not find it.
    pub base: Option<PathBuf>,
    /// `--accept-excel-changes`: apply a change that looks like Excel's doing in an edited export.
    pub excel: ExcelChanges,
}

impl ApplyConfig {
    /// How the run behaves, as the engine takes it (built once, passed by reference to every row).
    pub fn options(&self) -> RunOptions {
        RunOptions {
            mode: self.mode,
            retry_failed: self.retry_failed,
            grace: self.grace,
            preflight: self.preflight,
            guard: self.guard,
        }
    }

    /// An apply job over `csv`, its state file and report at these paths, against `api`; everything else as a
    /// caller of the library (a test, a bench) wants it unless it says otherwise: apply mode, no restart, failed rows
    /// not retried, not strict, the service as the target, 30 s of grace, pre-flight as `PreflightConfig::default()`
    /// (off: the command line turns it on), no canary or error budget. The command line sets every field itself.
    pub fn new(csv: PathBuf, state: PathBuf, report: PathBuf, api: ApiConfig) -> ApplyConfig {
        ApplyConfig {
            csv,
            input: InputConfig::default(),
            state,
            report,
            mode: Mode::Apply,
            restart: false,
            yes: false,
            retry_failed: false,
            strict: false,
            api,
            target: Target::Service,
            grace: Duration::from_secs(30),
            preflight: PreflightConfig::default(),
            guard: Guard::default(),
            base: None,
            excel: ExcelChanges::Refuse,
        }
    }
}

/// Where a job's requests go, as its record in the state file says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The API at the configured base URL.
    Service,
    /// An in-process sandbox started for this run (`apply --sandbox`): a fresh one each time, so its job is
    /// planned afresh each time, and it never resumes, replaces or rewrites a job against a real service.
    Sandbox,
}

/// What a job against an in-process sandbox records as its base URL.
pub const SANDBOX_TARGET: &str = "sandbox (in-process)";

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Input(#[from] FileError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(
        "state file {state} holds a job for another {what} ({found}); give --restart to start over (its record is \
         lost), or --state FILE to keep both"
    )]
    OtherJob { state: String, what: &'static str, found: String },
    #[error(
        "{csv} changed since this job was planned ({created}): {what}. Nothing was sent. Put the file back as it \
         was to resume the job, or give --restart to plan it again from the file as it is now{lost}"
    )]
    InputChanged { csv: String, created: String, what: String, lost: String },
    #[error(
        "this job's changes were rolled back (a rollback started {at}: {} restored, {left} left to do; \
         see pcbulk status --state {state}); nothing was sent. To apply the CSV again, give --restart",
        crate::words::counted(*.restored, "row")
    )]
    RolledBack { state: String, at: String, restored: u64, left: u64 },
    #[error(
        "--restart would delete the record of a job that wrote {} ({state}): their before-values, and with \
         them their rollback, would be lost. Roll them back first (pcbulk rollback --state {state}), or give \
         --restart --yes to start over anyway",
        crate::words::counted(*.count, "row")
    )]
    RestartLosesRollback { state: String, count: u64 },
    #[error("--strict: {} invalid, nothing was sent:\n{}", crate::words::counted(*.count, "row"), .problems.join("\n"))]
    Strict { count: u64, problems: Vec<String> },
    #[error("cannot write the report {path}: {source}")]
    Report { path: String, source: std::io::Error },
    #[error(transparent)]
    Client(#[from] client::ClientError),
    #[error(transparent)]
    Output(#[from] crate::outputs::OutputError),
    #[error(transparent)]
    Edited(#[from] crate::edited::EditedError),
    #[error(
        "this CSV is an edited export of {exported}, and the job would go to {target}: an edited export is applied \
         where it was exported from (give --base-url {exported}), or export from {target} again"
    )]
    OtherExportTarget { exported: String, target: String },
    #[error("state file {state} holds no apply job: there is nothing to roll back")]
    NoApply { state: String },
    #[error(
        "the apply job ran against {applied}, this rollback would go to {given}: a rollback goes where its job went \
         (give --base-url {applied})"
    )]
    OtherBaseUrl { applied: String, given: String },
    #[error(
        "the apply job has {} whose PUT may or may not have landed: run the apply again (with \
         --retry-failed) to settle them, then roll back",
        crate::words::counted(*.count as u64, "row")
    )]
    InDoubt { count: usize },
}

/// How a job ended and what it did.
#[derive(Clone, Debug)]
pub struct JobOutcome {
    pub ending: Ending,
    pub resumed: bool,
    pub counts: BTreeMap<RowStatus, u64>,
    pub figures: JobFigures,
    /// The pace the job reached over all its runs and what held it back, once a run sent a request.
    pub pace: Option<crate::pace::Reached>,
    pub duration: Duration,
    pub report: PathBuf,
}

/// The SHA-256 of a file's bytes, in hex.
pub fn hash_file(path: &Path) -> Result<String, FileError> {
    let open_error = |source| FileError::Open { path: path.display().to_string(), source };
    let mut file = input::open_regular(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 256 * 1024];
    loop {
        let count = file.read(&mut buffer).map_err(open_error)?;
        if count == 0 {
            break;
        }
        hasher.update(&buffer[..count]);
    }
    Ok(hex(hasher))
}

fn hex(hasher: Sha256) -> String {
    hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A reader that hashes every byte it hands on: planning reads the CSV once, and the hash is of exactly the bytes
/// the plan was made from.
struct Hashing<R> {
    inner: R,
    hasher: std::rc::Rc<std::cell::RefCell<Sha256>>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let count = self.inner.read(buffer)?;
        self.hasher.borrow_mut().update(&buffer[..count]);
        Ok(count)
    }
}

/// Every record of the CSV, read once; after the last one, an error when the bytes read are not those that hash
/// to `hash` (the file changed between the hash that names the job and this read). A workbook is read whole, and
/// those bytes hashed, before any of its records.
fn read_once(
    path: &Path,
    input: &InputConfig,
    hash: &str,
    edited: bool,
) -> Result<Box<dyn Iterator<Item = Result<Record, FileError>>>, FileError> {
    if input::is_workbook(path) {
        let bytes = input::read_whole(input::open_regular(path)?, path)?;
        let mut hasher = Sha256::new();
        hasher.update(&bytes);
        if hex(hasher) != hash {
            let path = path.display().to_string();
            return Err(FileError::Changed { path, detail: "while it was being read".to_string() });
        }
        let mut reader = input::Reader::<std::io::Empty>::from_workbook(bytes, path, input)?.without_duplicate_check();
        if edited {
            reader = reader.with_raw_cells();
        }
        return Ok(Box::new(reader));
    }
    let hasher = std::rc::Rc::new(std::cell::RefCell::new(Sha256::new()));
    let source = Hashing { inner: input::open_regular(path)?, hasher: hasher.clone() };
    let mut reader = input::Reader::new(std::io::BufReader::with_capacity(64 * 1024, source), input.clone())?
        .without_duplicate_check();
    if edited {
        reader = reader.with_raw_cells();
    }
    let (path, hash) = (path.display().to_string(), hash.to_string());
    let check = std::iter::once_with(move || {
        let read = hex(std::mem::take(&mut *hasher.borrow_mut()));
        (read != hash).then(|| Err(FileError::Changed { path, detail: "while it was being read".to_string() }))
    });
    Ok(Box::new(reader.chain(check.flatten())))
}

/// The base URL as a job records it.
pub fn base_url_of(api: &ApiConfig) -> String {
    api.client.base_url.as_str().trim_end_matches('/').to_string()
}

/// Where an apply goes, as its job records it.
fn job_target(config: &ApplyConfig) -> String {
    match config.target {
        Target::Service => base_url_of(&config.api),
        Target::Sandbox => SANDBOX_TARGET.to_string(),
    }
}

/// Finds the job to resume, or makes room for a new one. A job is deleted only when it has written nothing, or
/// on `--restart` (with `--yes` when it has written rows), or when it is an earlier rehearsal in a sandbox that no
/// longer exists.
fn existing_job(state: &mut StateFile, config: &ApplyConfig, hash: &str) -> Result<Option<Job>, JobError> {
    let kind = kind_of(config.mode);
    let Some(job) = state.find_job(kind)? else { return Ok(None) };
    let target = job_target(config);
    let rehearsed_again = config.target == Target::Sandbox && job.base_url == SANDBOX_TARGET;
    if config.mode == Mode::DryRun || rehearsed_again {
        state.delete_job(job.id)?;
        return Ok(None);
    }
    if config.restart {
        let written = state.written_count(job.id)?;
        if written > 0 && !config.yes {
            return Err(JobError::RestartLosesRollback { state: state.path().display().to_string(), count: written });
        }
        state.delete_job(job.id)?;
        return Ok(None);
    }
    if job.base_url != target {
        let found = job.base_url.clone();
        return Err(JobError::OtherJob { state: state.path().display().to_string(), what: "base URL", found });
    }
    if job.csv_hash == hash {
        // A finished job that was rolled back has nothing to do but claim its rows `updated` again: refused. One
        // with rows left (interrupted, then partly rolled back) resumes, and its next rollback takes the new rows.
        if config.mode == Mode::Apply
            && job.finished_at.is_some()
            && let Some(rollback) = state.rollback_of(&job)?
        {
            let counts = state.counts(rollback.id)?;
            let count = |status| counts.get(&status).copied().unwrap_or_default();
            return Err(JobError::RolledBack {
                state: state.path().display().to_string(),
                at: rollback.created_at,
                restored: count(RowStatus::Restored),
                left: count(RowStatus::Pending) + count(RowStatus::Failed),
            });
        }
        return Ok(Some(job));
    }
    if crate::files::same_file(Path::new(&job.csv_path), &config.csv) {
        let written = state.written_count(job.id)?;
        let lost = match written {
            0 => String::new(),
            count => format!(
                " (the record of the {} it already wrote is then lost, and with it their rollback: roll \
                 them back first, or add --yes)",
                crate::words::counted(count, "row")
            ),
        };
        return Err(JobError::InputChanged {
            csv: config.csv.display().to_string(),
            created: job.created_at.clone(),
            what: pinned::describe_change(state.path(), job.id, &config.csv, &config.input),
            lost,
        });
    }
    let found = format!("it was planned from {}, not from {}", job.csv_path, config.csv.display());
    Err(JobError::OtherJob { state: state.path().display().to_string(), what: "CSV", found })
}

fn kind_of(mode: Mode) -> JobKind {
    match mode {
        Mode::Apply => JobKind::Apply,
        Mode::DryRun => JobKind::DryRun,
    }
}

/// With `--strict`, every problem of the file, before anything is recorded or sent.
fn strict_check(config: &ApplyConfig, edited: Option<&Edited>) -> Result<(), JobError> {
    let (mut count, mut problems) = (0, Vec::new());
    let mut reader = input::open(&config.csv, &config.input)?;
    if edited.is_some() {
        reader = reader.with_raw_cells();
    }
    for record in reader {
        let record = match edited {
            Some(edited) => crate::edited::judge(edited, record?, config.excel)?.record,
            None => record?,
        };
        if let Validity::Invalid(found) = record.validity {
            count += 1;
            problems.extend(found.iter().map(ToString::to_string));
        }
    }
    if count > 0 {
        return Err(JobError::Strict { count, problems });
    }
    Ok(())
}

/// A record of the CSV as planning stores it: valid rows `pending` with their changes, invalid rows `invalid`
/// with their problems.
fn planned_row(record: Record) -> PlannedRow {
    let details = |problems: &[Problem]| problems.iter().map(Problem::detail).collect::<Vec<_>>().join("; ");
    let warnings = details(&record.warnings);
    let (status, error, plan) = match &record.validity {
        Validity::Valid(row) => (RowStatus::Pending, String::new(), Some(plan::encode(&row.changes))),
        Validity::Invalid(problems) => (RowStatus::Invalid, details(problems), None),
    };
    PlannedRow { line: record.line, customer_id: record.customer_cell, status, error, warnings, plan }
}

/// An edited export's record as planning stores it: unchanged (no request, ever), invalid with its problems, or
/// pending with its changes and the snapshot they are written onto.
fn planned_edited(edited: &Edited, record: Record, excel: ExcelChanges) -> Result<PlannedRow, FileError> {
    let line = record.line;
    let judged = crate::edited::judge(edited, record, excel)
        .map_err(|error| FileError::Read { line, message: format!("the export's state file: {error}") })?;
    let mut planned = planned_row(judged.record);
    if let (Some(snapshot), RowStatus::Pending) = (&judged.snapshot, planned.status) {
        let changes = plan::decode(CUSTOMER_BILLING, planned.plan.as_deref().unwrap_or("{}")).unwrap_or_default();
        match changes.is_empty() {
            true => (planned.status, planned.plan) = (RowStatus::Unchanged, None),
            false => planned.plan = Some(plan::encode_threeway(&changes, crate::merge::etag(snapshot), snapshot)),
        }
    }
    Ok(planned)
}

/// Records a new job with every data line of the CSV and every valid row's changes, from one read of the file
/// that must hash to `hash`.
fn plan(state: &mut StateFile, config: &ApplyConfig, hash: &str) -> Result<Job, JobError> {
    let edited = crate::edited::find(&config.csv, &config.input, config.base.as_deref())?;
    if let Some(edited) = &edited
        && edited.snapshots.base_url != job_target(config)
    {
        // Its etags and values are another service's: every row would meet a stale etag and a bogus base.
        return Err(JobError::OtherExportTarget {
            exported: edited.snapshots.base_url.clone(),
            target: job_target(config),
        });
    }
    if config.strict {
        strict_check(config, edited.as_ref())?;
    }
    // Duplicates are found by the state file after the rows are in (an index, not a map of every id in memory).
    let records = read_once(&config.csv, &config.input, hash, edited.is_some())?;
    let rows = records.map(|record| match &edited {
        Some(edited) => record.and_then(|record| planned_edited(edited, record, config.excel)),
        None => record.map(planned_row),
    });
    // Absolute, so that a later command run from another directory (a rollback by --state) finds it.
    let csv_path = std::fs::canonicalize(&config.csv).unwrap_or_else(|_| config.csv.clone()).display().to_string();
    // Its duplicates are marked in the same transaction.
    let job = state.create_job(kind_of(config.mode), &csv_path, hash, &job_target(config), rows)??;
    Ok(job)
}

/// A job planned by a pcbulk that did not record plans gains them from its CSV, read once and checked against the
/// hash the job was planned with.
fn fill_plans(state: &mut StateFile, config: &ApplyConfig, job: &Job) -> Result<(), JobError> {
    if state.rows_without_plan(job.id)? == 0 {
        return Ok(());
    }
    let rows = read_once(&config.csv, &config.input, &job.csv_hash, false)?.filter_map(|record| match record {
        Ok(Record { line, validity: Validity::Valid(row), .. }) => Some(Ok((line, plan::encode(&row.changes)))),
        Ok(_) => None,
        Err(error) => Some(Err(error)),
    });
    state.fill_plans(job.id, rows)??;
    Ok(())
}

/// Changes as the state file stores them, read back (customer billing fields).
pub(crate) fn stored_changes(before: &str, after: &str) -> Vec<FieldChange> {
    crate::state::decode_changes(CUSTOMER_BILLING, before, after)
}

/// The changes of PUTs an earlier run sent without recording their answers.
fn sent_before(state: &StateFile, job: i64) -> Result<HashMap<u64, Vec<FieldChange>>, JobError> {
    let unsettled = state.unsettled_puts(job)?;
    Ok(unsettled.into_iter().map(|(line, (before, after))| (line, stored_changes(&before, &after))).collect())
}

/// A job decided (planned or resumed), ready for the engine.
pub(crate) struct Run {
    pub job: Job,
    pub resumed: bool,
    pub source: Source,
    pub options: RunOptions,
    pub report: PathBuf,
    /// The delimiter of a CSV report: the input's, or `--delimiter` where there is none.
    pub delimiter: u8,
    pub started: Instant,
    /// The CSV an apply was planned from, watched while the job runs (none for a rollback: its rows come from the
    /// state file alone).
    pub watch: Option<pinned::Watch>,
    /// The client the job's planning already made (an export lists through it), else one is made for the run.
    pub client: Option<client::Client>,
    /// Work beside the engine that adds rows to the job while it runs (an export's listing, with
    /// [`Source::Arriving`]).
    pub feed: Option<Feed>,
}

/// Work that adds rows to a job while the engine runs: given the recorder (the one writer of the state file, which
/// commits its pages) and a token cancelled once the engine has stopped, it runs as a task of its own.
pub(crate) type Feed = Box<
    dyn FnOnce(RecorderHandle, CancellationToken) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send,
>;

/// Runs a decided job through the engine to its end (or its interruption), records its figures, writes its report.
pub(crate) async fn execute(
    state: StateFile,
    run: Run,
    api: &ApiConfig,
    progress: Arc<dyn Progress>,
    cancel: CancellationToken,
) -> Result<JobOutcome, JobError> {
    let job = run.job.id;
    let settled = state.settled_lines(job, run.options.retry_failed)?;
    let sent_before = sent_before(&state, job)?;
    let counts = state.counts(job)?;
    let total: u64 = counts.values().sum::<u64>() - settled.len() as u64;
    if total == 0 && run.job.finished_at.is_some() && run.report.exists() {
        // A finished job run again: nothing to read, write or report anew.
        state.mark_finished(job)?;
        return Ok(JobOutcome {
            ending: Ending::Complete,
            resumed: run.resumed,
            counts,
            figures: JobFigures::default(),
            // This run sent nothing: it claims no pace.
            pace: None,
            duration: run.started.elapsed(),
            report: run.report,
        });
    }
    let client = match run.client {
        Some(client) => client,
        None => client::connect(api)?,
    };
    let pace = client.pace().clone();
    let outage = client.outage().clone();
    let recorder = Recorder::start(state, job);
    let timeline = crate::timeline::Timeline::start(pace.clone(), recorder.handle());
    progress.started(total);
    let work = Work { source: run.source, settled, sent_before };
    let (stop, done) = (cancel.child_token(), CancellationToken::new());
    let watching = run.watch.map(|watch| {
        let csv = watch.path().display().to_string();
        (csv, tokio::spawn(watch.run(stop.clone(), done.clone())))
    });
    let feeding = stop.child_token();
    let feed = run.feed.map(|feed| tokio::spawn(feed(recorder.handle(), feeding.clone())));
    let ending = engine::run(work, &run.options, client, recorder.handle(), progress.clone(), stop).await;
    // A Ctrl-C stops the feed at once; once the engine has stopped (a halt), so does the feed (when every row has
    // come, it is done already).
    feeding.cancel();
    if let Some(feed) = feed {
        let _ = feed.await;
    }
    done.cancel();
    let mut changed = None;
    if let Some((csv, watching)) = watching
        && let Ok(Some(what)) = watching.await
    {
        changed = Some((csv, what));
    }
    progress.finished();
    let timeline = timeline.finish().await;
    let mut state = recorder.finish()?;
    state.add_timeline(job, &timeline)?;
    if pace.requests_sent() > 0 {
        state.add_pace(job, &pace.reached(outage.time_down()))?;
    }
    let figures = JobFigures {
        requests: pace.requests_sent(),
        throttled: pace.throttled(),
        settled_rate: (pace.requests_sent() > 0).then(|| pace.settled_rate()),
    };
    state.finish_job(job, &figures, ending == Ending::Complete)?;
    write_report(&state, job, &run.report, run.delimiter)?;
    let ending = match changed {
        // The operator's edit was not applied: said, with exit 1, even when every planned row was done.
        Some((csv, what)) if !cancel.is_cancelled() => {
            Ending::Halted(Halt::InputChanged(changed_words(&csv, &what, &ending)))
        }
        _ => ending,
    };
    Ok(JobOutcome {
        ending,
        resumed: run.resumed,
        counts: state.counts(job)?,
        figures,
        pace: state.pace(job)?,
        duration: run.started.elapsed(),
        report: run.report,
    })
}

fn changed_words(csv: &str, what: &str, ending: &Ending) -> String {
    let done = match ending {
        Ending::Complete => "every row was applied as planned, from the file as it was when the job started",
        _ => "the job stopped taking rows; every row it did was applied as planned, not from the edit",
    };
    format!(
        "{csv} {what} while the job ran: {done}. The report and the state file hold what was applied. To apply the \
         file as it is now, run the same command with --restart"
    )
}

/// Runs an apply or a dry run to its end (or its interruption), then writes the report.
pub async fn apply(
    config: &ApplyConfig,
    progress: Arc<dyn Progress>,
    cancel: CancellationToken,
) -> Result<JobOutcome, JobError> {
    let started = Instant::now();
    let watch = pinned::Watch::before_hashing(&config.csv);
    let hash = hash_file(&config.csv)?;
    let mut state = StateFile::open_for_job(&config.state)?;
    let (job, resumed) = match existing_job(&mut state, config, &hash)? {
        Some(job) => {
            fill_plans(&mut state, config, &job)?;
            state.touch_job(job.id)?;
            (job, true)
        }
        None => (plan(&mut state, config, &hash)?, false),
    };
    let run = Run {
        source: Source::Plan { state: config.state.clone(), job: job.id, retry_failed: config.retry_failed },
        job,
        resumed,
        options: config.options(),
        report: config.report.clone(),
        delimiter: config.input.delimiter,
        started,
        watch: Some(watch.with_hash(&hash)),
        client: None,
        feed: None,
    };
    execute(state, run, &config.api, progress, cancel).await
}

/// Writes a job's report from the state file: a workbook when `path` ends in `.xlsx`, else a CSV separated by
/// `delimiter`.
pub fn write_report(state: &StateFile, job: i64, path: &Path, delimiter: u8) -> Result<(), JobError> {
    let report_error = |source| JobError::Report { path: path.display().to_string(), source };
    let preflight = if state.ran_preflight(job)? { PreflightColumns::Ran } else { PreflightColumns::NotRan };
    let mut file = report::ReportFile::create(path, preflight, delimiter).map_err(report_error)?;
    state.each_row(job, |row| file.write(&row))?;
    file.commit().map_err(report_error)
}
