//! `pcbulk apply`: resolve the options, run the job (against the API or an in-process sandbox), sum it up.

use super::job::{beside, default_state, show_plan, summarise, watch_signals};
use super::notify::NotifyArgs;
use super::sandbox::{customer_ids, sandbox_api_config};
use super::{ApiArgs, CsvArgs, Environment, Exit, PaceArgs, resolve_api, resolve_input, resolve_pace, runtime};
use crate::budget::MaxFailures;
use crate::client::ApiConfig;
use crate::engine::preflight::PreflightConfig;
use crate::engine::{Guard, Mode};
use crate::job::{self, ApplyConfig, Target};
use crate::outputs::{self, Kept, Output};
use crate::sandbox::{Sandbox, SandboxConfig};
use crate::summary::plan::Show;
use crate::threeway::ExcelChanges;
use anyhow::Context;
use clap::Args;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub csv: CsvArgs,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub pace: PaceArgs,
    #[command(flatten)]
    pub notify: NotifyArgs,
    /// The SQLite state file [default: the CSV's path with .pcbulk.db appended].
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// The result report, a workbook when it ends in .xlsx [default: the CSV's path with .report.csv appended;
    /// .report.xlsx for a workbook].
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Reads and merges, no PUT: says per row what would change.
    #[arg(long)]
    pub dry_run: bool,
    /// Runs the job against an in-process sandbox seeded with the CSV's customers (the quickstart).
    #[arg(long)]
    pub sandbox: bool,
    /// Start over even though the state file holds a job for this CSV. Where that job has written rows, their
    /// before-values (and so their rollback) are lost: that needs --yes too.
    #[arg(long)]
    pub restart: bool,
    /// With --restart: yes, forget the record of the rows the job wrote.
    #[arg(long, requires = "restart")]
    pub yes: bool,
    /// On resume, try the rows that failed before again.
    #[arg(long)]
    pub retry_failed: bool,
    /// Refuse to start when any row is invalid.
    #[arg(long)]
    pub strict: bool,
    /// At the end, also write the summary and every row's outcome as JSON (schemas/report-v1.json) to this file.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,
    /// At the end, also write the summary page (self-contained HTML) to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Check every merged address against its country's rules (GET /v1/countryvalidationrules/{iso2}, one request
    /// per country) before writing it, so a dry run and the apply that follows refuse the same rows [default: on].
    #[arg(long, overrides_with = "no_preflight")]
    pub preflight: bool,
    /// Turn pre-flight off.
    #[arg(long)]
    pub no_preflight: bool,
    /// Also send every changed address to POST /v1/validations/address; an address it does not verify is a warning.
    #[arg(long)]
    pub validate_addresses: bool,
    /// With --validate-addresses: an address the service does not verify makes the row invalid.
    #[arg(long)]
    pub strict_addresses: bool,
    /// Apply the first N valid rows (of those this run would do), then stop with a summary so a person can look;
    /// the same command without --canary continues.
    #[arg(long, value_name = "N")]
    pub canary: Option<u64>,
    /// The error budget of this run: N rows, or P% of the rows finished (counted after 20 rows). Once more rows
    /// than that have failed, stop taking rows, finish those in flight, exit 3.
    #[arg(long, value_name = "N|P%")]
    pub max_failures: Option<String>,
    /// Seconds rows in flight may take to finish after Ctrl-C.
    #[arg(long, default_value_t = 30)]
    pub grace: u64,
    /// With --dry-run: how many changed rows the plan shows one by one, a number or `all`.
    #[arg(long, value_name = "N|all", default_value = "20")]
    pub show: Show,
    #[command(flatten)]
    pub edited: EditedArgs,
}

/// How an edited export is applied (`apply`, `validate`).
#[derive(Debug, Args)]
pub struct EditedArgs {
    /// The CSV pcbulk export wrote, when the edited CSV does not find its export by itself (its #export column and
    /// the state files beside it): applied three-way against that export's snapshot.
    #[arg(long, value_name = "EXPORT.csv")]
    pub base: Option<PathBuf>,
    /// In an edited export, apply a change that looks like Excel's doing (leading zeros dropped, scientific
    /// notation, a date) instead of refusing the row as invalid.
    #[arg(long)]
    pub accept_excel_changes: bool,
}

impl EditedArgs {
    pub fn excel(&self) -> ExcelChanges {
        if self.accept_excel_changes { ExcelChanges::Accept } else { ExcelChanges::Refuse }
    }
}

fn resolve(args: &ApplyArgs, api: ApiConfig) -> anyhow::Result<ApplyConfig> {
    let csv = &args.csv.csv;
    let mode = if args.dry_run { Mode::DryRun } else { Mode::Apply };
    // A sandbox rehearsal and a dry run keep their own files, so neither overwrites the record of a real job.
    let flavour = match (args.sandbox, mode) {
        (true, _) => ".sandbox",
        (false, Mode::DryRun) => ".dry-run",
        (false, Mode::Apply) => "",
    };
    let state = match (&args.state, args.sandbox) {
        (Some(state), _) => state.clone(),
        (None, true) => beside(csv, ".sandbox.pcbulk.db"),
        (None, false) => default_state(csv),
    };
    Ok(ApplyConfig {
        csv: csv.clone(),
        input: resolve_input(&args.csv)?,
        state,
        report: args.report.clone().unwrap_or_else(|| beside(csv, &format!("{flavour}.report.{}", extension(csv)))),
        mode,
        restart: args.restart,
        yes: args.yes,
        target: if args.sandbox { Target::Sandbox } else { Target::Service },
        retry_failed: args.retry_failed,
        strict: args.strict,
        api,
        grace: Duration::from_secs(args.grace),
        guard: Guard {
            canary: match args.canary {
                Some(0) => anyhow::bail!("--canary 0: a canary applies at least one row; give N of 1 or more"),
                canary => canary,
            },
            max_failures: match &args.max_failures {
                Some(text) => {
                    Some(text.parse::<MaxFailures>().map_err(|error| anyhow::anyhow!("--max-failures: {error}"))?)
                }
                None => None,
            },
        },
        base: args.edited.base.clone(),
        excel: args.edited.excel(),
        preflight: PreflightConfig {
            // On for apply as for a dry run (issue 15): what the dry run refuses, the apply refuses.
            rules: !args.no_preflight,
            validate_addresses: args.validate_addresses,
            strict_addresses: args.strict_addresses,
        },
    })
}

/// The extension of the default report: a job of a workbook gets a workbook, a job of a CSV a CSV.
fn extension(csv: &Path) -> &'static str {
    if crate::input::is_workbook(csv) { "xlsx" } else { "csv" }
}

/// Runs `pcbulk apply`.
pub fn run(args: ApplyArgs, environment: Environment) -> anyhow::Result<Exit> {
    let runtime = runtime()?;
    runtime.block_on(async {
        let sandbox = match args.sandbox {
            true => Some(start_sandbox(&args.csv.csv, resolve_input(&args.csv)?).await?),
            false => None,
        };
        let api = match &sandbox {
            Some(sandbox) => sandbox_api(sandbox, &args)?,
            None => resolve_api(&args.api, &args.pace, environment)?,
        };
        let config = resolve(&args, api)?;
        let notify = super::notify::resolve(&args.notify, environment)?;
        check_outputs(&config, &args)?;
        let cancel = CancellationToken::new();
        watch_signals(cancel.clone());
        let progress: Arc<dyn crate::progress::Progress> = Arc::from(crate::progress::for_stderr());
        let outcome = job::apply(&config, progress, cancel).await?;
        if let Some(sandbox) = &sandbox {
            let counters = sandbox.counters();
            eprintln!(
                "sandbox: {} successful PUTs, {} fields dropped, {} lost edits (the sandbox stops now)",
                counters.total_puts_succeeded(),
                counters.fields_dropped_count,
                counters.lost_edits
            );
        }
        let exit = summarise(&config.csv, &outcome);
        let kind = if args.dry_run { crate::state::JobKind::DryRun } else { crate::state::JobKind::Apply };
        show_plan(&config.state, kind, args.show, &outcome);
        crate::summary::write_after_job(&config.state, kind, args.summary_json.as_deref(), args.html.as_deref())?;
        let (state, report, page) = (&config.state, &outcome.report, args.html.as_deref());
        super::notify::after_job(notify.as_ref(), state, kind, report, page).await;
        Ok(exit)
    })
}

/// Every file the job writes, checked before anything is sent: none is the CSV, the state file or a device, and
/// each can be written.
fn check_outputs(config: &ApplyConfig, args: &ApplyArgs) -> anyhow::Result<()> {
    let csv = Kept { role: "the input CSV", path: config.csv.clone() };
    outputs::check(&[Output { option: "--state", path: config.state.clone() }], std::slice::from_ref(&csv))?;
    let mut files = vec![Output { option: "--report", path: config.report.clone() }];
    let optional = [("--summary-json", &args.summary_json), ("--html", &args.html)];
    files.extend(optional.into_iter().filter_map(|(option, path)| Some(Output { option, path: path.clone()? })));
    let mut kept = outputs::state_files(&config.state);
    kept.push(csv);
    outputs::check(&files, &kept)?;
    Ok(())
}

async fn start_sandbox(csv: &Path, input: crate::input::InputConfig) -> anyhow::Result<Sandbox> {
    let ids = customer_ids(csv, &input).with_context(|| format!("--sandbox: {}", csv.display()))?;
    let config = SandboxConfig { customer_ids: ids, ..SandboxConfig::default() };
    Sandbox::start(config).await.context("--sandbox: cannot start the sandbox")
}

/// The in-process sandbox as the API, with app credentials through its own token endpoint (a real token flow).
fn sandbox_api(sandbox: &Sandbox, args: &ApplyArgs) -> anyhow::Result<ApiConfig> {
    Ok(sandbox_api_config(sandbox, resolve_pace(&args.pace)?)?)
}
