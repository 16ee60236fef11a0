//! `pcbulk apply`: resolve the options, run the job (against the API or an in-process sandbox), sum it up.

use super::{ApiArgs, CsvArgs, Environment, Exit, PaceArgs, resolve_api, resolve_input, resolve_pace, runtime};
use crate::auth::{Credentials, Secret};
use crate::budget::MaxFailures;
use crate::client::{ApiConfig, ClientConfig};
use crate::engine::preflight::PreflightConfig;
use crate::engine::{Ending, Guard, Mode};
use crate::job::{self, ApplyConfig, JobOutcome, Target};
use crate::outputs::{self, Kept, Output};
use crate::pace::PaceConfig;
use crate::sandbox::{Sandbox, SandboxConfig};
use crate::state::RowStatus;
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
    /// The SQLite state file [default: the CSV's path with .pcbulk.db appended].
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// The result report [default: the CSV's path with .report.csv appended].
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
}

/// A path with a suffix appended to its file name: `updates.csv` → `updates.csv.pcbulk.db`.
pub fn beside(csv: &Path, suffix: &str) -> PathBuf {
    let mut name = csv.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// The default state file of a CSV.
pub fn default_state(csv: &Path) -> PathBuf {
    beside(csv, ".pcbulk.db")
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
        report: args.report.clone().unwrap_or_else(|| beside(csv, &format!("{flavour}.report.csv"))),
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
        preflight: PreflightConfig {
            // On for apply as for a dry run (issue 15): what the dry run refuses, the apply refuses.
            rules: !args.no_preflight,
            validate_addresses: args.validate_addresses,
            strict_addresses: args.strict_addresses,
        },
    })
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
        crate::summary::write_after_job(&config.state, kind, args.summary_json.as_deref(), args.html.as_deref())?;
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
    let ids = super::customer_ids(csv, input).with_context(|| format!("--sandbox: {}", csv.display()))?;
    let config = SandboxConfig { customer_ids: ids, ..SandboxConfig::default() };
    Sandbox::start(config).await.context("--sandbox: cannot start the sandbox")
}

/// The in-process sandbox as the API, with app credentials through its own token endpoint (a real token flow).
fn sandbox_api(sandbox: &Sandbox, args: &ApplyArgs) -> anyhow::Result<ApiConfig> {
    Ok(sandbox_api_config(sandbox, resolve_pace(&args.pace)?)?)
}

/// The API settings of an in-process sandbox (`apply --sandbox`, the tests, the benches): its URL, and app
/// credentials through its own token endpoint, so even a rehearsal runs a real token flow.
pub fn sandbox_api_config(sandbox: &Sandbox, pace: PaceConfig) -> Result<ApiConfig, crate::client::ClientError> {
    let credentials = sandbox.credentials();
    Ok(ApiConfig {
        client: ClientConfig::new(sandbox.url())?,
        credentials: Credentials::ClientCredentials {
            authority: sandbox.url().to_string(),
            tenant: "sandbox-tenant".to_string(),
            client_id: credentials.client_id.clone(),
            client_secret: Secret::new(credentials.client_secret.clone()),
        },
        pace,
    })
}

/// The first Ctrl-C (or SIGTERM) stops the job cleanly; a second Ctrl-C exits at once (the state stays
/// consistent: rows in flight are settled by the next run).
pub(super) fn watch_signals(cancel: CancellationToken) {
    tokio::spawn(async move {
        let mut terminate = terminate_signal();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = async { match terminate.as_mut() { Some(signal) => { signal.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
        eprintln!("stopping: finishing the requests in flight (Ctrl-C again to exit at once)");
        cancel.cancel();
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("exiting at once: the next run settles the rows that were in flight");
            std::process::exit(i32::from(Exit::Interrupted.code()));
        }
    });
}

#[cfg(unix)]
fn terminate_signal() -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok()
}

#[cfg(not(unix))]
fn terminate_signal() -> Option<()> {
    None
}

/// The summary on stderr, and the exit code.
pub(super) fn summarise(subject: &Path, outcome: &JobOutcome) -> Exit {
    let counts: Vec<String> = outcome.counts.iter().map(|(status, count)| format!("{status} {count}")).collect();
    eprintln!("{}: {}", subject.display(), counts.join(", "));
    // No request sent, no pace to speak of.
    let pace = outcome.figures.settled_rate.map(|rate| format!(", pace settled at {rate:.1} requests/s"));
    eprintln!(
        "{:.1}s, {} requests, {} answered 429{}{}",
        outcome.duration.as_secs_f64(),
        outcome.figures.requests,
        outcome.figures.throttled,
        pace.unwrap_or_default(),
        if outcome.resumed { " (resumed)" } else { "" }
    );
    eprintln!("report: {}", outcome.report.display());
    let resume = || eprintln!("to resume: {}", resume_command());
    match &outcome.ending {
        Ending::Interrupted => {
            resume();
            Exit::Interrupted
        }
        Ending::Halted(crate::engine::Halt::InputChanged(words)) => {
            eprintln!("error: {words}");
            Exit::Failed
        }
        Ending::Halted(halt) => {
            eprintln!("error: the job stopped: {halt}");
            resume();
            Exit::Failed
        }
        Ending::Canary(rows) => {
            show_canary(rows);
            eprintln!("to continue: {}", continue_command());
            Exit::Stopped
        }
        Ending::BudgetSpent(budget) => {
            eprintln!(
                "stopped: more than {budget} in this run (--max-failures); rows not reached stay pending. Fix the \
                 cause, then resume with --retry-failed to try the failed rows again:"
            );
            eprintln!("  {} --retry-failed", resume_command());
            Exit::Stopped
        }
        Ending::Complete if outcome.counts.keys().any(|status| status.is_problem()) => Exit::RowsFailed,
        Ending::Complete if outcome.counts.contains_key(&RowStatus::Pending) => Exit::Failed,
        Ending::Complete => Exit::Clean,
    }
}

/// What the canary did, row by row, with the before and after of every field it changed.
fn show_canary(rows: &[crate::engine::CanaryRow]) {
    eprintln!("canary: {} rows done; look at them before the rest runs:", rows.len());
    for row in rows {
        eprintln!("  line {} ({}): {}", row.line, row.customer_id, row.status);
        for change in &row.changes {
            let (before, after) = (crate::merge::shown(&change.before), crate::merge::shown(&change.after));
            eprintln!("    {}: {before} -> {after}", change.field);
        }
        if let Some(error) = &row.error {
            eprintln!("    {error}");
        }
    }
}

/// The command that continues after a canary: the same, without `--canary N`.
fn continue_command() -> String {
    let mut skip_next = false;
    let args: Vec<String> = std::env::args()
        .filter(|arg| {
            let skip = std::mem::take(&mut skip_next) || arg.starts_with("--canary=");
            skip_next = arg == "--canary";
            !skip && arg != "--canary"
        })
        .collect();
    command_line(args)
}

/// The command line as given (secrets never appear on it: they come from the environment).
fn resume_command() -> String {
    command_line(std::env::args().collect())
}

fn command_line(args: Vec<String>) -> String {
    let quote = |arg: String| {
        if arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c)) {
            arg
        } else {
            format!("'{}'", arg.replace('\'', r"'\''"))
        }
    };
    let mut args = args.into_iter();
    let program = args.next().map(|_| "pcbulk".to_string()).unwrap_or_default();
    std::iter::once(program).chain(args.filter(|arg| arg != "--restart").map(quote)).collect::<Vec<_>>().join(" ")
}
