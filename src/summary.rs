//! A job summed up from its state file, for people and scripts: a typed [`Summary`] (header, counts per status,
//! requests and 429s per minute, top error codes), the per-row outcomes as JSON (the contract is
//! `schemas/report-v1.json`), and a self-contained HTML page ([`html`]).
//!
//! It only reads the state file; it never writes one, and it never calls the API.

mod chart;
pub mod html;
pub mod plan;
pub mod shape;

use crate::state::{Job, JobKind, RowStatus, StateError, StateFile, StoredRow};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::path::Path;

/// The value of the `schema` member: bumped with `schemas/report-v1.json` on a change a script could trip over.
pub const SCHEMA: &str = "pcbulk-report-v1";

/// How many error codes the summary lists.
const TOP_ERRORS: usize = 10;

/// The summary of a job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub job: String,
    pub csv: String,
    pub target: String,
    pub started: String,
    pub last_moved: Option<String>,
    pub finished: Option<String>,
    /// From `started` to `finished` (or, for a job that has not finished, to `last_moved`), across resumes.
    pub duration_seconds: Option<u64>,
    pub requests: u64,
    pub throttled: u64,
    pub settled_rate: Option<f64>,
    /// The pace the job reached and what held it back, once a run sent a request (issue 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pace: Option<PaceReached>,
    pub rows: u64,
    /// Every status, zero or not, so a script can read any of them.
    pub counts: BTreeMap<String, u64>,
    pub top_errors: Vec<ErrorCount>,
    pub minutes: Vec<MinuteCount>,
    /// A short job's samples finer than a minute, for the page's pace chart only (not in the JSON).
    #[serde(skip)]
    pub seconds: Option<crate::state::Seconds>,
    /// An apply job's rollback, once one was started: its changes are (being) undone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back: Option<RolledBack>,
}

/// The pace a job reached, as the summary tells it ([`crate::pace::Reached`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaceReached {
    /// `--rate`.
    pub rate: u32,
    /// Requests sent per second over the job (every run added up).
    pub job_rate: f64,
    /// Requests sent per second over the last minute of the last run.
    pub last_minute_rate: f64,
    /// Below 0.9 of `--rate`: `latency`, `throttling` or `outage`; else null.
    pub held_back: Option<crate::pace::HeldBack>,
    /// What held it back, in words; else null.
    pub held_back_words: Option<String>,
    pub seconds: f64,
    pub throttled_secs: f64,
    pub latency_secs: f64,
    pub outage_secs: f64,
    /// `--concurrency`: the most requests in flight the bound allowed.
    pub concurrency: u64,
    pub peak_in_flight: u64,
}

impl PaceReached {
    fn of(reached: &crate::pace::Reached) -> PaceReached {
        let held_back = reached.held_back();
        PaceReached {
            rate: reached.rate,
            job_rate: reached.job_rate(),
            last_minute_rate: reached.last_minute_rate,
            held_back,
            held_back_words: held_back.map(|cause| cause.words(reached)),
            seconds: reached.seconds,
            throttled_secs: reached.throttled_secs,
            latency_secs: reached.latency_secs,
            outage_secs: reached.outage_secs,
            concurrency: reached.concurrency,
            peak_in_flight: reached.peak_in_flight,
        }
    }

    /// The one line: "9.8 requests/s over the job, 10.0 over the last minute, of --rate 10", and the cause.
    pub fn words(&self) -> String {
        let mut words = format!(
            "{:.1} requests/s over the job, {:.1} over the last minute, of --rate {}",
            self.job_rate, self.last_minute_rate, self.rate
        );
        if let Some(cause) = &self.held_back_words {
            words.push_str(&format!("; held back by {cause}"));
        }
        words
    }
}

/// The rollback of an apply job, as the apply's summary tells it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolledBack {
    pub started: String,
    pub finished: Option<String>,
    /// Rows put back as they were.
    pub restored: u64,
    /// Rows changed by someone else since the job: left alone.
    pub conflict: u64,
    /// Rows the rollback has not settled yet (pending or failed).
    pub left: u64,
}

impl RolledBack {
    /// The rollback of `apply`, if one was started.
    pub fn of(state: &StateFile, apply: &Job) -> Result<Option<RolledBack>, StateError> {
        let Some(rollback) = state.rollback_of(apply)? else { return Ok(None) };
        let counts = state.counts(rollback.id)?;
        let count = |status| counts.get(&status).copied().unwrap_or_default();
        Ok(Some(RolledBack {
            started: rollback.created_at,
            finished: rollback.finished_at,
            restored: count(RowStatus::Restored),
            conflict: count(RowStatus::Conflict),
            left: count(RowStatus::Pending) + count(RowStatus::Failed),
        }))
    }

    /// One line for a person.
    pub fn words(&self) -> String {
        let when = match &self.finished {
            Some(finished) => format!("rolled back {finished}"),
            None => format!("a rollback started {} has not finished", self.started),
        };
        format!("{when}: {} restored, {} conflict, {} left", self.restored, self.conflict, self.left)
    }
}

/// An error code and how many rows met it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCount {
    /// The service's code; else `HTTP nnn`; else the status (`invalid`).
    pub code: String,
    /// The message's shape ([`shape::shape`]): the ids, numbers and values inside it replaced, so rows that met
    /// the same error are one group.
    pub description: String,
    pub rows: u64,
}

/// Requests and 429s in one wall-clock minute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinuteCount {
    /// The minute's start, RFC 3339 UTC.
    pub minute: String,
    pub requests: u64,
    pub throttled: u64,
}

/// The key the top errors group by: the service's code, else the HTTP status of a refusal, else the status.
fn error_key(row: &StoredRow) -> String {
    match (&row.call.error_code, row.call.http_status) {
        (Some(code), _) => code.clone(),
        (None, Some(status)) if status >= 400 => format!("HTTP {status}"),
        _ => row.status.name().to_string(),
    }
}

/// The error without the `http nnn: ` and `code: ` prefixes the client puts in front.
fn description(row: &StoredRow) -> String {
    let mut error = row.call.error.as_deref().unwrap_or_default();
    if let Some(status) = row.call.http_status {
        error = error.strip_prefix(&format!("http {status}: ")).unwrap_or(error);
    }
    if let Some(code) = &row.call.error_code {
        error = error.strip_prefix(&format!("{code}: ")).unwrap_or(error);
    }
    error.to_string()
}

/// Reads the job of this kind from a state file.
pub fn find(state: &StateFile, kind: JobKind) -> anyhow::Result<Job> {
    use anyhow::Context;
    state.find_job(kind)?.with_context(|| format!("state file {} holds no {} job", state.path().display(), kind.name()))
}

impl Summary {
    /// Sums the job up; `each_problem` sees every row that needs attention, in input order.
    pub fn read(state: &StateFile, job: &Job, mut each_problem: impl FnMut(StoredRow)) -> Result<Summary, StateError> {
        let counts = state.counts(job.id)?;
        let mut errors: HashMap<(String, String), ErrorCount> = HashMap::new();
        state.each_row(job.id, |row| {
            if row.status.needs_attention() && row.status != RowStatus::Pending {
                let (code, description) = (error_key(&row), shape::shape(&description(&row)));
                let key = (code.clone(), description.clone());
                errors.entry(key).or_insert(ErrorCount { code, description, rows: 0 }).rows += 1;
            }
            if row.status.needs_attention() {
                each_problem(row);
            }
            Ok(())
        })?;
        let mut top_errors: Vec<ErrorCount> = errors.into_values().collect();
        top_errors.sort_by(|a, b| {
            b.rows.cmp(&a.rows).then_with(|| a.code.cmp(&b.code)).then_with(|| a.description.cmp(&b.description))
        });
        top_errors.truncate(TOP_ERRORS);
        let minutes = state.minutes(job.id)?.into_iter().map(minute_count).collect();
        Ok(Summary {
            job: job.kind.name().to_string(),
            csv: job.csv_path.clone(),
            target: job.base_url.clone(),
            started: job.created_at.clone(),
            last_moved: job.last_moved_at.clone(),
            finished: job.finished_at.clone(),
            duration_seconds: seconds_between(&job.created_at, job.finished_at.as_ref().or(job.last_moved_at.as_ref())),
            requests: job.requests,
            throttled: job.throttled,
            settled_rate: job.settled_rate,
            pace: state.pace(job.id)?.as_ref().map(PaceReached::of),
            rows: counts.values().sum(),
            counts: RowStatus::ALL
                .iter()
                .map(|status| (status.name().to_string(), counts.get(status).copied().unwrap_or_default()))
                .collect(),
            top_errors,
            minutes,
            seconds: state.seconds(job.id)?,
            rolled_back: match job.kind {
                JobKind::Apply => RolledBack::of(state, job)?,
                _ => None,
            },
        })
    }

    /// The count of one status.
    pub fn count(&self, status: RowStatus) -> u64 {
        self.counts.get(status.name()).copied().unwrap_or_default()
    }

    /// The job in one line: "All 300 rows updated", or "12 of 300 rows need attention: 9 failed, 3 conflict".
    pub fn verdict(&self) -> Verdict {
        let listed = |statuses: &[RowStatus]| -> Vec<String> {
            let counted = statuses.iter().map(|status| (status, self.count(*status)));
            counted.filter(|(_, n)| *n > 0).map(|(status, n)| format!("{n} {}", words(*status))).collect()
        };
        let attention = [RowStatus::Failed, RowStatus::Invalid, RowStatus::Conflict, RowStatus::Pending];
        let needing: u64 = attention.iter().map(|status| self.count(*status)).sum();
        if needing > 0 {
            let of = crate::words::counted(self.rows, "row");
            let need = if needing == 1 { "needs" } else { "need" };
            let words = format!("{needing} of {of} {need} attention: {}", listed(&attention).join(", "));
            return Verdict { good: false, words };
        }
        let done = listed(&[RowStatus::Updated, RowStatus::Restored, RowStatus::WouldUpdate, RowStatus::Unchanged]);
        let words = match done.as_slice() {
            [] => "No rows".to_string(),
            [only] => format!(
                "All {} {}",
                crate::words::counted(self.rows, "row"),
                only.split_once(' ').map_or("", |(_, name)| name)
            ),
            _ => format!("All {} done: {}", crate::words::counted(self.rows, "row"), done.join(", ")),
        };
        Verdict { good: true, words }
    }
}

/// A job's verdict: whether it needs no look, and in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub good: bool,
    pub words: String,
}

/// A status as a verdict says it.
fn words(status: RowStatus) -> &'static str {
    match status {
        RowStatus::WouldUpdate => "would update",
        status => status.name(),
    }
}

fn minute_count(minute: crate::state::Minute) -> MinuteCount {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(minute.minute).unwrap_or(0) * 60);
    MinuteCount {
        minute: humantime::format_rfc3339_seconds(at).to_string(),
        requests: minute.requests,
        throttled: minute.throttled,
    }
}

fn seconds_between(start: &str, end: Option<&String>) -> Option<u64> {
    let start = humantime::parse_rfc3339(start).ok()?;
    let end = humantime::parse_rfc3339(end?).ok()?;
    Some(end.duration_since(start).ok()?.as_secs())
}

/// Writes `{"schema", "summary", "rows"}` for the job, the rows streamed from the state file in input order.
pub fn write_json(state: &StateFile, job: &Job, out: &mut dyn Write) -> anyhow::Result<()> {
    let summary = Summary::read(state, job, |_| {})?;
    write!(out, "{{\"schema\":\"{SCHEMA}\",\"summary\":{},\"rows\":[", serde_json::to_string(&summary)?)?;
    let mut first = true;
    state.each_row(job.id, |row| {
        let separator = if std::mem::take(&mut first) { "" } else { "," };
        write!(out, "{separator}")?;
        serde_json::to_writer(&mut *out, &row).map_err(io::Error::from)
    })?;
    writeln!(out, "]}}")?;
    Ok(())
}

/// Writes a file whole or not at all (mode 0600, renamed into place once written).
pub fn write_file(path: &Path, write: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>) -> anyhow::Result<()> {
    use anyhow::Context;
    crate::files::refuse_non_regular(path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut partial = path.as_os_str().to_os_string();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    let file = crate::files::create_private(&partial).with_context(|| format!("cannot write {}", path.display()))?;
    let mut sink = io::BufWriter::new(file);
    write(&mut sink).with_context(|| format!("cannot write {}", path.display()))?;
    sink.into_inner().map_err(|error| error.into_error()).and_then(|file| file.sync_all())?;
    std::fs::rename(&partial, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Writes the JSON summary and the HTML page of the job of this kind, as asked (`apply --summary-json`, `--html`).
pub fn write_after_job(
    state_path: &Path,
    kind: JobKind,
    json: Option<&Path>,
    html: Option<&Path>,
) -> anyhow::Result<()> {
    if json.is_none() && html.is_none() {
        return Ok(());
    }
    let state = StateFile::open_existing(state_path)?;
    let job = find(&state, kind)?;
    if let Some(path) = json {
        write_file(path, |out| write_json(&state, &job, out))?;
        eprintln!("summary: {}", path.display());
    }
    if let Some(path) = html {
        write_file(path, |out| html::write(&state, &job, out))?;
        eprintln!("page: {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
