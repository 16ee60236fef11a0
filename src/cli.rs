//! The command line: clap structs that only parse, and one place that resolves them into the typed
//! configurations the library runs. No other module sees a clap type.

use crate::input::InputConfig;
use crate::validate::{self, ValidateConfig};
use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;

/// How a command ended, as the process exit code says it (see the exit codes in README.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Every row went as asked.
    Clean,
    /// The job could not run or had to stop.
    Failed,
    /// The job ran to its end and some rows are failed, invalid or conflict.
    RowsFailed,
    /// Stopped by the error budget or after a canary; resumable.
    Stopped,
    /// Interrupted; resumable.
    Interrupted,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Clean => 0,
            Exit::Failed => 1,
            Exit::RowsFailed => 2,
            Exit::Stopped => 3,
            Exit::Interrupted => 130,
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "pcbulk",
    version,
    about = "Apply a CSV of changes to Partner Center customer billing profiles, safely"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a CSV offline: header, every cell, duplicates.
    Validate(ValidateArgs),
}

#[derive(Debug, Args)]
pub struct CsvArgs {
    /// The CSV of changes.
    pub csv: PathBuf,
    /// The field separator: `,` by default, `;` for spreadsheets saved in European locales, `tab` for tabs.
    #[arg(long, default_value = ",")]
    pub delimiter: String,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub csv: CsvArgs,
    /// Also write a report with `valid` or `invalid` per row.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// Reads a delimiter as given on the command line.
pub fn parse_delimiter(text: &str) -> anyhow::Result<u8> {
    match text {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        _ if text.len() == 1 && text.is_ascii() && !text.contains(['"', '\n', '\r']) => Ok(text.as_bytes()[0]),
        _ => {
            anyhow::bail!("--delimiter: value \"{text}\": give one character like , or ; (or tab)")
        }
    }
}

fn resolve_input(args: &CsvArgs) -> anyhow::Result<InputConfig> {
    Ok(InputConfig { delimiter: parse_delimiter(&args.delimiter)? })
}

/// Runs a parsed command line to its end.
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Validate(args) => run_validate(args),
    }
}

fn run_validate(args: ValidateArgs) -> anyhow::Result<Exit> {
    let config = ValidateConfig { input: resolve_input(&args.csv)?, csv: args.csv.csv, report: args.report };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let summary = validate::run(&config, &mut out)?;
    out.flush().context("cannot print")?;
    eprintln!(
        "{}: {} rows, {} valid, {} invalid, {} warnings",
        config.csv.display(),
        summary.rows,
        summary.valid,
        summary.invalid,
        summary.warnings
    );
    if let Some(report) = &config.report {
        eprintln!("report: {}", report.display());
    }
    Ok(if summary.clean() { Exit::Clean } else { Exit::RowsFailed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters() {
        assert_eq!(parse_delimiter(",").unwrap(), b',');
        assert_eq!(parse_delimiter(";").unwrap(), b';');
        assert_eq!(parse_delimiter("tab").unwrap(), b'\t');
        assert!(parse_delimiter(";;").is_err());
        assert!(parse_delimiter("\"").is_err());
    }

    #[test]
    fn exit_codes_follow_the_contract() {
        let codes: Vec<u8> =
            [Exit::Clean, Exit::Failed, Exit::RowsFailed, Exit::Stopped, Exit::Interrupted].map(Exit::code).into();
        assert_eq!(codes, [0, 1, 2, 3, 130]);
    }
}
