//! `pcbulk status` and `pcbulk report`: read the state file, touch nothing else.

use super::Exit;
use super::apply::default_state;
use crate::state::{Job, JobKind, RowStatus, StateFile};
use anyhow::Context;
use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct StateArgs {
    /// The CSV of the job (its state file is found beside it).
    pub csv: Option<PathBuf>,
    /// The state file, when it is not beside the CSV.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Which job of the state file.
    #[arg(long, value_enum, default_value_t = Kind::Apply)]
    pub job: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Apply,
    DryRun,
    Rollback,
    RollbackDryRun,
}

impl From<Kind> for JobKind {
    fn from(kind: Kind) -> JobKind {
        match kind {
            Kind::Apply => JobKind::Apply,
            Kind::DryRun => JobKind::DryRun,
            Kind::Rollback => JobKind::Rollback,
            Kind::RollbackDryRun => JobKind::RollbackDryRun,
        }
    }
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// Where to write the report.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Csv,
    Json,
}

fn open(args: &StateArgs) -> anyhow::Result<(StateFile, Job)> {
    let path = match (&args.state, &args.csv) {
        (Some(state), _) => state.clone(),
        (None, Some(csv)) => default_state(csv),
        (None, None) => anyhow::bail!("give the CSV of the job, or --state FILE"),
    };
    let state = StateFile::open_existing(&path)?;
    let kind = JobKind::from(args.job);
    let job =
        state.find_job(kind)?.with_context(|| format!("state file {} holds no {} job", path.display(), kind.name()))?;
    Ok((state, job))
}

/// `pcbulk status`: counts per status, rows left, when it started and last moved.
pub fn status(args: StateArgs) -> anyhow::Result<Exit> {
    let (state, job) = open(&args)?;
    let counts = state.counts(job.id)?;
    let total: u64 = counts.values().sum();
    println!("job:        {} of {}", job.kind.name(), job.csv_path);
    println!("target:     {}", job.base_url);
    println!("started:    {}", job.created_at);
    println!("last moved: {}", job.last_moved_at.as_deref().unwrap_or("never"));
    println!("finished:   {}", job.finished_at.as_deref().unwrap_or("no"));
    println!("rows:       {total}, {} left", counts.get(&RowStatus::Pending).copied().unwrap_or_default());
    for status in RowStatus::ALL {
        if let Some(count) = counts.get(&status) {
            println!("  {:<13}{count}", status.name());
        }
    }
    println!("requests:   {}, {} answered 429", job.requests, job.throttled);
    Ok(Exit::Clean)
}

/// `pcbulk report`: writes the report again from the state file.
pub fn report(args: ReportArgs) -> anyhow::Result<Exit> {
    let (state, job) = open(&args.state)?;
    match args.format {
        Format::Csv => crate::job::write_report(&state, job.id, &args.out)?,
        Format::Json => write_json(&state, &job, &args.out)?,
    }
    eprintln!("report: {}", args.out.display());
    Ok(Exit::Clean)
}

fn write_json(state: &StateFile, job: &Job, out: &std::path::Path) -> anyhow::Result<()> {
    use std::io::Write;
    let counts: serde_json::Map<String, serde_json::Value> =
        state.counts(job.id)?.into_iter().map(|(status, count)| (status.name().to_string(), count.into())).collect();
    let file = crate::report::create_private(out).with_context(|| format!("cannot write {}", out.display()))?;
    let mut sink = std::io::BufWriter::new(file);
    let summary = serde_json::json!({
        "job": job.kind.name(), "csv": job.csv_path, "target": job.base_url, "started": job.created_at,
        "last_moved": job.last_moved_at, "finished": job.finished_at, "requests": job.requests,
        "throttled": job.throttled, "settled_rate": job.settled_rate, "counts": counts,
    });
    write!(sink, "{{\"summary\":{summary},\"rows\":[")?;
    let mut first = true;
    state.each_row(job.id, |row| {
        let row = crate::report::ReportRow::from(row);
        let value = serde_json::json!({
            "line": row.line, "customer_id": row.customer_id, "status": row.status,
            "changed_fields": row.changed_fields, "before": row.before, "after": row.after,
            "http_status": row.http_status, "error_code": row.error_code, "error": row.error,
            "attempts": row.attempts, "request_id": row.request_id, "correlation_id": row.correlation_id,
            "warnings": row.warnings,
        });
        let separator = if std::mem::take(&mut first) { "" } else { "," };
        write!(sink, "{separator}{value}")
    })?;
    writeln!(sink, "]}}")?;
    sink.flush()?;
    Ok(())
}
