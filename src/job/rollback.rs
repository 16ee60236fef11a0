//! A rollback: the job that puts back the before-values of the fields an apply job changed, where they still hold
//! what the job wrote. It lives in the same state file as its apply job (kind `rollback`, or `rollback-dry-run`),
//! its rows are the rows that job `updated` (same line numbers), and it runs through the same engine, worker loop
//! and row process as the apply, with [`Plan::Restore`] instead of the CSV's changes.
//!
//! It never runs against another base URL than its apply job's, never starts while a PUT of the apply job is in
//! doubt (that row's before/after is not known to be the truth), and never resumes a rollback made for another apply.

use super::{JobError, JobOutcome, Run, base_url_of, execute, stored_changes};
use crate::client::ApiConfig;
use crate::engine::{Mode, Plan, RunOptions, Source, Task};
use crate::input::CustomerId;
use crate::outputs::{self, Kept, Output};
use crate::progress::Progress;
use crate::state::{Job, JobKind, PlannedRow, RowStatus, StateFile, WrittenRow};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A rollback (or its dry run), resolved from the command line.
#[derive(Clone, Debug)]
pub struct RollbackConfig {
    /// The state file of the apply job to undo.
    pub state: PathBuf,
    /// The report; by default the apply job's CSV path with `.rollback.report.csv` appended.
    pub report: Option<PathBuf>,
    pub mode: Mode,
    /// Start over even though the state file holds a rollback made for another apply job.
    pub restart: bool,
    pub retry_failed: bool,
    pub api: ApiConfig,
    /// How long rows in flight may take to finish after Ctrl-C.
    pub grace: Duration,
    /// The delimiter of a CSV report (`--delimiter`: a rollback reads no CSV to take it from).
    pub delimiter: u8,
}

/// The report a rollback writes when none is named: beside the state file (wherever the command runs from), named
/// after the apply job's CSV: `updates.csv.rollback.report.csv` (a workbook for a job of a workbook:
/// `updates.xlsx.rollback.report.xlsx`).
pub fn default_report(state: &Path, csv_path: &str, mode: Mode) -> PathBuf {
    let extension = if crate::input::is_workbook(Path::new(csv_path)) { "xlsx" } else { "csv" };
    let suffix = match mode {
        Mode::Apply => format!(".rollback.report.{extension}"),
        Mode::DryRun => format!(".rollback.dry-run.report.{extension}"),
    };
    let csv_name = Path::new(csv_path).file_name().map(|name| name.to_string_lossy().into_owned());
    let name = format!("{}{suffix}", csv_name.unwrap_or_else(|| "pcbulk".to_string()));
    state.parent().unwrap_or(Path::new("")).join(name)
}

/// What a rollback job records as the job it undoes.
fn undoes(apply: &Job) -> String {
    crate::state::rollback_marker(apply)
}

fn kind_of(mode: Mode) -> JobKind {
    match mode {
        Mode::Apply => JobKind::Rollback,
        Mode::DryRun => JobKind::RollbackDryRun,
    }
}

/// The apply job to undo, checked: there is one, it went where this rollback goes, none of its PUTs is in doubt.
fn apply_job(state: &StateFile, config: &RollbackConfig) -> Result<Job, JobError> {
    let display = state.path().display().to_string();
    let apply = state.find_job(JobKind::Apply)?.ok_or(JobError::NoApply { state: display })?;
    let given = base_url_of(&config.api);
    if apply.base_url != given {
        return Err(JobError::OtherBaseUrl { applied: apply.base_url, given });
    }
    let count = state.unsettled_puts(apply.id)?.len();
    if count > 0 {
        return Err(JobError::InDoubt { count });
    }
    Ok(apply)
}

/// The rollback to resume, or room made for a new one.
fn existing_job(state: &mut StateFile, config: &RollbackConfig, apply: &Job) -> Result<Option<Job>, JobError> {
    let Some(job) = state.find_job(kind_of(config.mode))? else { return Ok(None) };
    let same = job.csv_hash == undoes(apply) && job.base_url == apply.base_url;
    if config.restart || config.mode == Mode::DryRun {
        state.delete_job(job.id)?;
        return Ok(None);
    }
    if !same {
        let found = format!("a rollback of the apply job of {} made before this one", job.csv_path);
        let state = state.path().display().to_string();
        return Err(JobError::OtherJob { state, what: "apply job", found });
    }
    Ok(Some(job))
}

/// The rollback's rows: one per row the apply job updated, each `pending`.
fn planned(written: &[WrittenRow]) -> impl Iterator<Item = PlannedRow> + '_ {
    written.iter().map(|row| PlannedRow {
        line: row.line,
        customer_id: row.customer_id.clone(),
        status: RowStatus::Pending,
        error: String::new(),
        warnings: String::new(),
        plan: None,
    })
}

/// Records a new rollback job with its rows.
fn plan(state: &mut StateFile, config: &RollbackConfig, apply: &Job, written: &[WrittenRow]) -> Result<Job, JobError> {
    let rows = planned(written).map(Ok);
    Ok(state.create_job(kind_of(config.mode), &apply.csv_path, &undoes(apply), &apply.base_url, rows)??)
}

/// The rows as the workers take them. A row the apply job updated always had a valid customer id (invariant);
/// one that somehow does not parse is left out, and stays `pending`.
fn tasks(written: Vec<WrittenRow>) -> Vec<Task> {
    written
        .into_iter()
        .filter_map(|row| {
            let customer_id = CustomerId::parse(&row.customer_id)?;
            let plan = Plan::Restore(stored_changes(&row.before, &row.after));
            Some(Task { line: row.line, customer_id, plan })
        })
        .collect()
}

/// Runs a rollback or its dry run to its end (or its interruption), then writes its report.
pub async fn rollback(
    config: &RollbackConfig,
    progress: Arc<dyn Progress>,
    cancel: CancellationToken,
) -> Result<JobOutcome, JobError> {
    let started = Instant::now();
    let mut state = StateFile::open_existing_for_job(&config.state)?;
    let apply = apply_job(&state, config)?;
    let written = state.written_rows(apply.id)?;
    let (job, resumed) = match existing_job(&mut state, config, &apply)? {
        Some(job) => {
            // The apply job may have updated more rows since (it was resumed after an earlier rollback): they join
            // this rollback, so no row is ever worked on that the state file cannot record.
            state.add_rows(job.id, planned(&written))?;
            state.touch_job(job.id)?;
            (job, true)
        }
        None => (plan(&mut state, config, &apply, &written)?, false),
    };
    let report = config.report.clone().unwrap_or_else(|| default_report(&config.state, &apply.csv_path, config.mode));
    let mut kept = outputs::state_files(&config.state);
    kept.push(Kept { role: "the apply job's CSV", path: PathBuf::from(&apply.csv_path) });
    outputs::check(&[Output { option: "--report", path: report.clone() }], &kept)?;
    let run = Run {
        job,
        resumed,
        source: Source::Tasks(tasks(written)),
        options: RunOptions {
            mode: config.mode,
            retry_failed: config.retry_failed,
            grace: config.grace,
            preflight: Default::default(),
            guard: Default::default(),
        },
        report,
        delimiter: config.delimiter,
        started,
        watch: None,
        client: None,
        feed: None,
    };
    execute(state, run, &config.api, progress, cancel).await
}
