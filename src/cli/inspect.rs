//! `pcbulk status` and `pcbulk report`: read the state file, touch nothing else.

use super::Exit;
use super::job::default_state;
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
    /// `pcbulk export`'s reads.
    Export,
}

impl From<Kind> for JobKind {
    fn from(kind: Kind) -> JobKind {
        match kind {
            Kind::Apply => JobKind::Apply,
            Kind::DryRun => JobKind::DryRun,
            Kind::Rollback => JobKind::Rollback,
            Kind::RollbackDryRun => JobKind::RollbackDryRun,
            Kind::Export => JobKind::Export,
        }
    }
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// Where to write the report (with --format csv, a workbook when it ends in .xlsx).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    pub format: Format,
    /// The separator of a CSV report: `,`, `;` or `tab`.
    #[arg(long, default_value = ",")]
    pub delimiter: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Csv,
    Json,
    /// A self-contained page: header, charts, top errors, the rows that need a look.
    Html,
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
    if let Some(reached) = state.pace(job.id)? {
        println!("pace:       {}", reached.line());
    }
    if job.kind == JobKind::Apply
        && let Some(rolled_back) = crate::summary::RolledBack::of(&state, &job)?
    {
        println!("rollback:   {}", rolled_back.words());
    }
    Ok(Exit::Clean)
}

/// `pcbulk report`: writes the report again from the state file.
pub fn report(args: ReportArgs) -> anyhow::Result<Exit> {
    let (state, job) = open(&args.state)?;
    let mut kept = crate::outputs::state_files(state.path());
    kept.push(crate::outputs::Kept { role: "the job's CSV", path: job.csv_path.clone().into() });
    crate::outputs::check(&[crate::outputs::Output { option: "--out", path: args.out.clone() }], &kept)?;
    match args.format {
        Format::Csv => crate::job::write_report(&state, job.id, &args.out, super::parse_delimiter(&args.delimiter)?)?,
        Format::Json => crate::summary::write_file(&args.out, |out| crate::summary::write_json(&state, &job, out))?,
        Format::Html => crate::summary::write_file(&args.out, |out| crate::summary::html::write(&state, &job, out))?,
    }
    eprintln!("report: {}", args.out.display());
    Ok(Exit::Clean)
}
