//! `pcbulk validate`: the offline check of a CSV. Reads every record, prints each problem where it was found,
//! and optionally writes a report with `valid` or `invalid` per row. No network, ever.

use crate::input::{self, FileError, InputConfig, Problem, Validity};
use crate::report::{PreflightColumns, ReportFile};
use crate::state::{CallRecord, RowStatus, StoredRow};
use crate::threeway::ExcelChanges;
use std::io::{self, Write};
use std::path::PathBuf;

/// What to validate, resolved from the command line.
#[derive(Clone, Debug)]
pub struct ValidateConfig {
    pub csv: PathBuf,
    pub report: Option<PathBuf>,
    pub input: InputConfig,
    /// `--base EXPORT.csv`: the export an edited CSV is judged against, when its `#export` column does not find it.
    pub base: Option<PathBuf>,
    /// `--accept-excel-changes`.
    pub excel: ExcelChanges,
}

/// The counts of a validation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ValidateSummary {
    pub rows: u64,
    pub valid: u64,
    pub invalid: u64,
    pub warnings: u64,
    /// Rows with a cell that is not UTF-8 (the file's encoding is named once, at the end).
    pub not_utf8: u64,
}

impl ValidateSummary {
    pub fn clean(&self) -> bool {
        self.invalid == 0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("cannot write the report {path}: {source}")]
    Report { path: String, source: io::Error },
    #[error("cannot print: {0}")]
    Output(io::Error),
    #[error(transparent)]
    Refused(#[from] crate::outputs::OutputError),
    #[error(transparent)]
    Edited(#[from] crate::edited::EditedError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
}

/// Checks every record of the file, printing each problem and warning to `out` as it is found.
///
/// An edited export (its `#export` column, or `--base`) is judged cell by cell against the export's values, offline:
/// a row with no changed cell is valid with no changed field; Excel's damage is a problem.
pub fn run(config: &ValidateConfig, out: &mut impl Write) -> Result<ValidateSummary, ValidateError> {
    let edited = crate::edited::find(&config.csv, &config.input, config.base.as_deref())?;
    let mut reader = input::open(&config.csv, &config.input)?;
    if let Some(edited) = &edited {
        reader = reader.with_raw_cells();
        let words =
            format!("an edited export ({}): each cell is compared with the export's value", edited.state.display());
        writeln!(out, "{words}").map_err(ValidateError::Output)?;
    }
    if let Some(path) = &config.report {
        let csv = crate::outputs::Kept { role: "the input CSV", path: config.csv.clone() };
        crate::outputs::check(&[crate::outputs::Output { option: "--report", path: path.clone() }], &[csv])?;
    }
    let report_error = |path: &PathBuf| {
        let path = path.display().to_string();
        move |source| ValidateError::Report { path, source }
    };
    let mut report = match &config.report {
        Some(path) => Some(
            ReportFile::create(path, PreflightColumns::NotRan, config.input.delimiter).map_err(report_error(path))?,
        ),
        None => None,
    };
    let mut summary = ValidateSummary::default();
    for record in reader {
        let record = match &edited {
            Some(edited) => crate::edited::judge(edited, record?, config.excel)?.record,
            None => record?,
        };
        summary.rows += 1;
        summary.warnings += record.warnings.len() as u64;
        for warning in &record.warnings {
            writeln!(out, "warning: {warning}").map_err(ValidateError::Output)?;
        }
        let (status, problems, changed_fields) = match &record.validity {
            Validity::Valid(row) => {
                summary.valid += 1;
                let names: Vec<&str> = row.changes.iter().map(|change| change.field.name).collect();
                (RowStatus::Valid, &[][..], names.join(" "))
            }
            Validity::Invalid(problems) => {
                summary.invalid += 1;
                (RowStatus::Invalid, &problems[..], String::new())
            }
        };
        summary.not_utf8 += u64::from(problems.iter().any(|problem| problem.message == "not valid UTF-8"));
        for problem in problems {
            writeln!(out, "{problem}").map_err(ValidateError::Output)?;
        }
        if let (Some(report), Some(path)) = (report.as_mut(), config.report.as_ref()) {
            let row = StoredRow {
                changed_fields,
                call: CallRecord { error: Some(join(problems)), ..CallRecord::default() },
                warnings: join(&record.warnings),
                ..StoredRow::new(record.line, record.customer_cell, status)
            };
            report.write(&row).map_err(report_error(path))?;
        }
    }
    if let (Some(report), Some(path)) = (report, config.report.as_ref()) {
        report.commit().map_err(report_error(path))?;
    }
    Ok(summary)
}

/// Problems as one report cell: their details, without the line (the report has a line column).
fn join(problems: &[Problem]) -> String {
    problems.iter().map(Problem::detail).collect::<Vec<_>>().join("; ")
}
