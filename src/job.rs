//! A job from start to end: know it again (resume) or plan it, run the engine, write the report, sum it up.
//!
//! A job is identified by the CSV's content hash, the base URL and its kind. Planning records every data line of
//! the CSV in the state file (valid rows `pending`, invalid rows `invalid` with their problems), so the report is
//! whole across resumes. Resuming reads the CSV again and skips the settled lines. A rollback ([`rollback`]) is a
//! job too, planned from the apply job's rows and run the same way (`execute`).

pub mod rollback;

use crate::client::{self, ApiConfig};
use crate::engine::preflight::PreflightConfig;
use crate::engine::{self, Ending, Guard, Mode, Source, Work};
use crate::fields::CUSTOMER_BILLING;
use crate::input::{self, FileError, InputConfig, Problem, Verdict};
use crate::merge::FieldChange;
use crate::progress::Progress;
use crate::report::{self, Preflight};
use crate::state::{Job, JobFigures, JobKind, PlannedRow, Recorder, RowStatus, StateError, StateFile};
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
    pub restart: bool,
    pub retry_failed: bool,
    pub strict: bool,
    pub api: ApiConfig,
    /// How long rows in flight may take to finish after Ctrl-C.
    pub grace: Duration,
    /// Pre-flight of merged addresses (on by default for a dry run).
    pub preflight: PreflightConfig,
    /// `--canary`, `--max-failures`.
    pub guard: Guard,
}

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
    #[error("--strict: {count} invalid rows, nothing was sent:\n{}", .problems.join("\n"))]
    Strict { count: u64, problems: Vec<String> },
    #[error("cannot write the report {path}: {source}")]
    Report { path: String, source: std::io::Error },
    #[error(transparent)]
    Client(#[from] client::ClientError),
    #[error("state file {state} holds no apply job: there is nothing to roll back")]
    NoApply { state: String },
    #[error(
        "the apply job ran against {applied}, this rollback would go to {given}: a rollback goes where its job went \
         (give --base-url {applied})"
    )]
    OtherBaseUrl { applied: String, given: String },
    #[error(
        "the apply job has {count} rows whose PUT may or may not have landed: run the apply again (with \
         --retry-failed) to settle them, then roll back"
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
    pub duration: Duration,
    pub report: PathBuf,
}

/// The SHA-256 of a file's bytes, in hex.
pub fn hash_file(path: &Path) -> Result<String, FileError> {
    let open_error = |source| FileError::Open { path: path.display().to_string(), source };
    let mut file = std::fs::File::open(path).map_err(open_error)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 256 * 1024];
    loop {
        let count = file.read(&mut buffer).map_err(open_error)?;
        if count == 0 {
            break;
        }
        hasher.update(&buffer[..count]);
    }
    Ok(hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect())
}

/// The base URL as a job records it.
pub fn job_target(api: &ApiConfig) -> String {
    api.client.base_url.as_str().trim_end_matches('/').to_string()
}

/// Finds the job to resume, or makes room for a new one.
fn existing_job(state: &mut StateFile, config: &ApplyConfig, hash: &str) -> Result<Option<Job>, JobError> {
    let kind = kind_of(config.mode);
    let Some(job) = state.find_job(kind)? else { return Ok(None) };
    let target = job_target(&config.api);
    let other = if job.csv_hash != hash {
        Some(("CSV", format!("{}, whose content differs from {}", job.csv_path, config.csv.display())))
    } else if job.base_url != target {
        Some(("base URL", job.base_url.clone()))
    } else {
        None
    };
    match other {
        _ if config.restart || config.mode == Mode::DryRun => {
            state.delete_job(job.id)?;
            Ok(None)
        }
        Some((what, found)) => Err(JobError::OtherJob { state: state.path().display().to_string(), what, found }),
        None => Ok(Some(job)),
    }
}

fn kind_of(mode: Mode) -> JobKind {
    match mode {
        Mode::Apply => JobKind::Apply,
        Mode::DryRun => JobKind::DryRun,
    }
}

/// With `--strict`, every problem of the file, before anything is recorded or sent.
fn strict_check(config: &ApplyConfig) -> Result<(), JobError> {
    let (mut count, mut problems) = (0, Vec::new());
    for record in input::open(&config.csv, config.input)? {
        if let Verdict::Invalid(found) = record?.verdict {
            count += 1;
            problems.extend(found.iter().map(ToString::to_string));
        }
    }
    if count > 0 {
        return Err(JobError::Strict { count, problems });
    }
    Ok(())
}

/// Records a new job with every data line of the CSV.
fn plan(state: &mut StateFile, config: &ApplyConfig, hash: &str) -> Result<Job, JobError> {
    if config.strict {
        strict_check(config)?;
    }
    // Duplicates are found by the state file after the rows are in (an index, not a map of every id in memory).
    let reader = input::open(&config.csv, config.input)?.without_duplicate_check();
    let rows = reader.map(|record| {
        record.map(|record| {
            let details = |problems: &[Problem]| problems.iter().map(Problem::detail).collect::<Vec<_>>().join("; ");
            let (status, error) = match &record.verdict {
                Verdict::Valid(_) => (RowStatus::Pending, String::new()),
                Verdict::Invalid(problems) => (RowStatus::Invalid, details(problems)),
            };
            let warnings = details(&record.warnings);
            PlannedRow { line: record.line, customer_id: record.customer_cell, status, error, warnings }
        })
    });
    let csv_path = config.csv.display().to_string();
    let job = state.create_job(kind_of(config.mode), &csv_path, hash, &job_target(&config.api), rows)??;
    state.mark_duplicates(job.id)?;
    Ok(job)
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
    pub mode: Mode,
    pub retry_failed: bool,
    pub grace: Duration,
    pub report: PathBuf,
    pub started: Instant,
    pub preflight: PreflightConfig,
    pub guard: Guard,
}

/// Runs a decided job through the engine to its end (or its interruption), records its figures, writes its report.
pub(crate) async fn execute(
    state: StateFile,
    run: Run,
    api: &ApiConfig,
    progress: Arc<dyn Progress>,
    cancel: CancellationToken,
) -> Result<JobOutcome, JobError> {
    let job = run.job.id;
    let settled = state.settled_lines(job, run.retry_failed)?;
    let sent_before = sent_before(&state, job)?;
    let counts = state.counts(job)?;
    let total: u64 = counts.values().sum::<u64>() - settled.len() as u64;
    if total == 0 && run.job.finished_at.is_some() && run.report.exists() {
        // A finished job run again: nothing to read, write or report anew (a million-row resume in under 3 s).
        state.mark_finished(job)?;
        return Ok(JobOutcome {
            ending: Ending::Complete,
            resumed: run.resumed,
            counts,
            figures: JobFigures::default(),
            duration: run.started.elapsed(),
            report: run.report,
        });
    }
    let client = client::connect(api)?;
    let pace = client.pace().clone();
    let recorder = Recorder::start(state, job);
    let timeline = crate::timeline::Timeline::start(pace.clone(), recorder.handle());
    progress.started(total);
    let work = Work {
        source: run.source,
        settled,
        sent_before,
        mode: run.mode,
        grace: run.grace,
        preflight: run.preflight,
        guard: run.guard,
    };
    let ending = engine::run(work, client, recorder.handle(), progress.clone(), cancel).await;
    progress.finished();
    let minutes = timeline.finish().await;
    let mut state = recorder.finish()?;
    state.add_minutes(job, &minutes)?;
    let figures = JobFigures {
        requests: pace.requests_sent(),
        throttled: pace.throttled(),
        settled_rate: (pace.requests_sent() > 0).then(|| pace.settled_rate()),
    };
    state.finish_job(job, &figures, ending == Ending::Complete)?;
    write_report(&state, job, &run.report)?;
    Ok(JobOutcome {
        ending,
        resumed: run.resumed,
        counts: state.counts(job)?,
        figures,
        duration: run.started.elapsed(),
        report: run.report,
    })
}

/// Runs an apply or a dry run to its end (or its interruption), then writes the report.
pub async fn apply(
    config: &ApplyConfig,
    progress: Arc<dyn Progress>,
    cancel: CancellationToken,
) -> Result<JobOutcome, JobError> {
    let started = Instant::now();
    let hash = hash_file(&config.csv)?;
    let mut state = StateFile::open_for_job(&config.state)?;
    let (job, resumed) = match existing_job(&mut state, config, &hash)? {
        Some(job) => {
            state.touch_job(job.id)?;
            (job, true)
        }
        None => (plan(&mut state, config, &hash)?, false),
    };
    let run = Run {
        job,
        resumed,
        source: Source::Csv { path: config.csv.clone(), input: config.input },
        mode: config.mode,
        retry_failed: config.retry_failed,
        grace: config.grace,
        report: config.report.clone(),
        started,
        preflight: config.preflight,
        guard: config.guard,
    };
    execute(state, run, &config.api, progress, cancel).await
}

/// Writes a job's report from the state file.
pub fn write_report(state: &StateFile, job: i64, path: &Path) -> Result<(), JobError> {
    let report_error = |source| JobError::Report { path: path.display().to_string(), source };
    let preflight = if state.ran_preflight(job)? { Preflight::Ran } else { Preflight::NotRan };
    let mut file = report::ReportFile::create(path, preflight).map_err(report_error)?;
    state.each_row(job, |row| file.write(&report::ReportRow::from(row)))?;
    file.commit().map_err(report_error)
}
