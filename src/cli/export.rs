//! `pcbulk export`: its options resolved into `ExportConfig`, the outputs checked before anything is sent, the
//! export run as a job, its summary.

use super::job::{beside, default_state, summarise, watch_signals};
use super::{ApiArgs, Environment, Exit, PaceArgs, parse_delimiter, resolve_api, runtime};
use crate::fields::{self, CUSTOMER_BILLING, Field};
use crate::input::InputConfig;
use crate::job::export::{Customers, ExportConfig, export};
use crate::outputs::{self, Kept, Output};
use crate::table::Format;
use crate::wire::listing::PAGE_MAX;
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The table to write, a workbook when it ends in .xlsx, else CSV: customer_id, the columns, the note columns
    /// (#companyName, #domain, #export).
    #[arg(long)]
    pub out: PathBuf,
    /// The columns to write, a comma-separated list of the catalog's paths [default: every column].
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
    /// Export only the customers of this CSV's customer_id column, in its order, instead of listing them.
    #[arg(long, value_name = "CSV")]
    pub customers: Option<PathBuf>,
    /// The field separator of the CSVs written (the export, its report) and of --customers.
    #[arg(long, default_value = ",")]
    pub delimiter: String,
    /// Customers per page of the listing (the service serves at most 500).
    #[arg(long, default_value_t = 100)]
    pub page_size: usize,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub pace: PaceArgs,
    /// The SQLite state file, which keeps the snapshot [default: the output's path with .pcbulk.db appended].
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// The report of the reads, a workbook when it ends in .xlsx [default: the output's path with
    /// .export-report.csv appended; .export-report.xlsx for a workbook].
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Export afresh over an earlier export in the state file (an edited copy of that one can no longer be applied
    /// three-way).
    #[arg(long)]
    pub restart: bool,
    /// Seconds reads in flight may take to finish after Ctrl-C.
    #[arg(long, default_value_t = 30)]
    pub grace: u64,
}

/// The `--columns` as catalog fields, each name checked (with the nearest known name when it is not one).
fn resolve_columns(names: &[String]) -> anyhow::Result<Vec<&'static Field>> {
    if names.is_empty() {
        return Ok(CUSTOMER_BILLING.iter().collect());
    }
    let mut columns: Vec<&'static Field> = Vec::new();
    for name in names.iter().map(|name| name.trim()).filter(|name| !name.is_empty()) {
        let field =
            fields::lookup(CUSTOMER_BILLING, name).with_context(|| match fields::suggest(CUSTOMER_BILLING, name) {
                Some(near) => format!("--columns: unknown column {name:?}: did you mean {near}?"),
                None => format!("--columns: unknown column {name:?}"),
            })?;
        if !columns.contains(&field) {
            columns.push(field);
        }
    }
    anyhow::ensure!(!columns.is_empty(), "--columns: name at least one column");
    Ok(columns)
}

/// The extension of the default report: an export to a workbook gets a workbook, to a CSV a CSV.
fn extension(out: &std::path::Path) -> &'static str {
    match Format::of(out) {
        Format::Xlsx => "xlsx",
        Format::Csv => "csv",
    }
}

fn resolve(args: &ExportArgs, api: crate::client::ApiConfig) -> anyhow::Result<ExportConfig> {
    anyhow::ensure!(
        (1..=PAGE_MAX).contains(&args.page_size),
        "--page-size {}: give 1 to {PAGE_MAX} (the service serves at most {PAGE_MAX} a page)",
        args.page_size
    );
    let delimiter = parse_delimiter(&args.delimiter)?;
    let customers = match &args.customers {
        Some(path) => {
            let input = InputConfig { delimiter, sheet: None };
            let ids = super::customer_ids(path, &input).with_context(|| format!("--customers {}", path.display()))?;
            Customers::Ids(ids)
        }
        None => Customers::Listing { page_size: args.page_size },
    };
    Ok(ExportConfig {
        out: args.out.clone(),
        state: args.state.clone().unwrap_or_else(|| default_state(&args.out)),
        report: args
            .report
            .clone()
            .unwrap_or_else(|| beside(&args.out, &format!(".export-report.{}", extension(&args.out)))),
        delimiter,
        columns: resolve_columns(&args.columns)?,
        customers,
        restart: args.restart,
        api,
        grace: Duration::from_secs(args.grace),
    })
}

/// Runs `pcbulk export`.
pub fn run(args: ExportArgs, environment: Environment) -> anyhow::Result<Exit> {
    let runtime = runtime()?;
    runtime.block_on(async {
        let api = resolve_api(&args.api, &args.pace, environment)?;
        let config = resolve(&args, api)?;
        let mut kept: Vec<Kept> =
            args.customers.iter().map(|path| Kept { role: "--customers", path: path.clone() }).collect();
        outputs::check(&[Output { option: "--state", path: config.state.clone() }], &kept)?;
        kept.extend(outputs::state_files(&config.state));
        let files = [
            Output { option: "--out", path: config.out.clone() },
            Output { option: "--report", path: config.report.clone() },
        ];
        outputs::check(&files, &kept)?;
        let cancel = CancellationToken::new();
        watch_signals(cancel.clone());
        let progress: Arc<dyn crate::progress::Progress> = Arc::from(crate::progress::for_stderr());
        let outcome = export(&config, progress, cancel).await?;
        let exit = summarise(&config.out, &outcome.job);
        match outcome.written {
            Some(rows) => eprintln!(
                "export {}: {} written to {} ({}); edit it and run: pcbulk apply {} --dry-run",
                outcome.export_id,
                crate::words::counted(rows, "customer"),
                config.out.display(),
                crate::words::counted(outcome.listing_requests, "listing request"),
                config.out.display()
            ),
            None => eprintln!("export {}: not finished, {} not written", outcome.export_id, config.out.display()),
        }
        Ok(exit)
    })
}
