//! `pcbulk rollback`: resolve the options, run the rollback job on the apply job's state file, sum it up.

use super::job::{default_state, show_plan, summarise, watch_signals};
use super::notify::NotifyArgs;
use super::{ApiArgs, Environment, Exit, PaceArgs, resolve_api, runtime};
use crate::engine::Mode;
use crate::job::rollback::{self, RollbackConfig};
use crate::state::JobKind;
use crate::summary::plan::Show;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The CSV of the job to undo (only to find its state file beside it; the rollback reads the state file).
    pub csv: Option<PathBuf>,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub pace: PaceArgs,
    #[command(flatten)]
    pub notify: NotifyArgs,
    /// The state file of the job [default: the CSV's path with .pcbulk.db appended].
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// The report, a workbook when it ends in .xlsx [default: beside the state file, the job's CSV name with
    /// .rollback.report.csv appended; .rollback.report.xlsx for a workbook].
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// The separator of a CSV report: `,`, `;` or `tab`.
    #[arg(long, default_value = ",")]
    pub delimiter: String,
    /// Reads and checks, no PUT: says per row what would be put back (status would_update).
    #[arg(long)]
    pub dry_run: bool,
    /// Start over even though the state file holds a rollback made for another apply job.
    #[arg(long)]
    pub restart: bool,
    /// On resume, try the rows that failed before again.
    #[arg(long)]
    pub retry_failed: bool,
    /// Seconds rows in flight may take to finish after Ctrl-C.
    #[arg(long, default_value_t = 30)]
    pub grace: u64,
    /// With --dry-run: how many changed rows the plan shows one by one, a number or `all`.
    #[arg(long, value_name = "N|all", default_value = "20")]
    pub show: Show,
}

/// The rollback's configuration: where the job is first (so a missing CSV is said before missing credentials).
fn resolve(args: &RollbackArgs, environment: Environment) -> anyhow::Result<RollbackConfig> {
    let mode = if args.dry_run { Mode::DryRun } else { Mode::Apply };
    let state = match (&args.state, &args.csv) {
        (Some(state), _) => state.clone(),
        (None, Some(csv)) => default_state(csv),
        (None, None) => anyhow::bail!("give the CSV of the job to undo, or --state FILE"),
    };
    Ok(RollbackConfig {
        state,
        report: args.report.clone(),
        mode,
        restart: args.restart,
        retry_failed: args.retry_failed,
        api: resolve_api(&args.api, &args.pace, environment)?,
        grace: Duration::from_secs(args.grace),
        delimiter: super::parse_delimiter(&args.delimiter)?,
    })
}

/// Runs `pcbulk rollback`.
pub fn run(args: RollbackArgs, environment: Environment) -> anyhow::Result<Exit> {
    let runtime = runtime()?;
    runtime.block_on(async {
        let config = resolve(&args, environment)?;
        let notify = super::notify::resolve(&args.notify, environment)?;
        let cancel = CancellationToken::new();
        watch_signals(cancel.clone());
        let progress: Arc<dyn crate::progress::Progress> = Arc::from(crate::progress::for_stderr());
        let outcome = rollback::rollback(&config, progress, cancel).await?;
        let exit = summarise(&config.state, &outcome);
        let kind = if args.dry_run { JobKind::RollbackDryRun } else { JobKind::Rollback };
        show_plan(&config.state, kind, args.show, &outcome);
        super::notify::after_job(notify.as_ref(), &config.state, kind, &outcome.report, None).await;
        Ok(exit)
    })
}
