//! The result report: one row per data line of the input, in input order, as CSV or as a workbook (`.xlsx`).
//!
//! The only code that writes a report: its columns and each row's cells, written through [`crate::table`]. Every
//! CSV cell goes through [`formula_safe`], so a spreadsheet never runs a cell as a formula (a workbook's text cells
//! never are). The file is created mode 0600 beside its final name and renamed into place when complete, so a crash
//! never leaves half a report where a whole one is expected.

use crate::state::StoredRow;
use crate::table::{Column, CsvSink, Kind, Style, TableFile};
use std::io::{self, Write};
use std::path::Path;

/// The columns every report has, in order.
pub const COLUMNS: [&str; 12] = [
    "line",
    "customer_id",
    "status",
    "changed_fields",
    "before",
    "after",
    "http_status",
    "error_code",
    "error",
    "attempts",
    "request_id",
    "correlation_id",
];

/// The columns added when pre-flight ran.
pub const PREFLIGHT_COLUMNS: [&str; 2] = ["preflight", "suggested_address"];

/// The last column: warnings that did not stop the row.
pub const WARNINGS_COLUMN: &str = "warnings";

/// A cell as a spreadsheet will show it, never run (the table's rule, kept here for the report's callers).
pub use crate::table::formula_safe;

/// Whether the report carries the pre-flight columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreflightColumns {
    Ran,
    NotRan,
}

/// The report's header: each column with what it holds.
pub fn columns(preflight: PreflightColumns) -> Vec<Column> {
    let kind = |name: &str| match name {
        "line" | "http_status" | "attempts" => Kind::Number,
        "status" => Kind::Status,
        _ => Kind::Text,
    };
    let mut names: Vec<&str> = COLUMNS.to_vec();
    if preflight == PreflightColumns::Ran {
        names.extend(PREFLIGHT_COLUMNS);
    }
    names.push(WARNINGS_COLUMN);
    names.into_iter().map(|name| Column::new(name, kind(name))).collect()
}

/// The report's cells of a row straight from the state file (or, for `validate`, as the reader found it); empty
/// strings and `None`s are empty cells.
fn cells(row: &StoredRow, preflight: PreflightColumns) -> Vec<String> {
    let line = row.line.to_string();
    let call = &row.call;
    let http_status = call.http_status.map(|status| status.to_string()).unwrap_or_default();
    let attempts = call.attempts.map(|attempts| attempts.to_string()).unwrap_or_default();
    fn text(cell: &Option<String>) -> &str {
        cell.as_deref().unwrap_or_default()
    }
    let mut cells: Vec<&str> = vec![
        &line,
        &row.customer_id,
        row.status.name(),
        &row.changed_fields,
        &row.before,
        &row.after,
        &http_status,
        text(&call.error_code),
        text(&call.error),
        &attempts,
        text(&call.request_id),
        text(&call.correlation_id),
    ];
    if preflight == PreflightColumns::Ran {
        cells.extend([row.preflight.as_str(), row.suggested_address.as_str()]);
    }
    cells.push(&row.warnings);
    cells.into_iter().map(str::to_string).collect()
}

/// Writes report rows as CSV to any sink (formula-safe cells, a byte-order mark first).
pub struct ReportWriter<W: Write> {
    csv: CsvSink<W>,
    preflight: PreflightColumns,
}

impl<W: Write> ReportWriter<W> {
    pub fn new(sink: W, preflight: PreflightColumns, delimiter: u8) -> io::Result<ReportWriter<W>> {
        let csv = CsvSink::new(sink, &columns(preflight), Style { delimiter, formula_safe: true })?;
        Ok(ReportWriter { csv, preflight })
    }

    pub fn write(&mut self, row: &StoredRow) -> io::Result<()> {
        let cells = cells(row, self.preflight);
        self.csv.write_row(&cells.iter().map(String::as_str).collect::<Vec<_>>())
    }

    pub fn finish(self) -> io::Result<W> {
        self.csv.into_inner()
    }
}

/// A report file being written (CSV, or a workbook when its path ends in `.xlsx`): a temporary file beside `path`,
/// renamed onto it by [`ReportFile::commit`].
pub struct ReportFile {
    table: TableFile,
    preflight: PreflightColumns,
}

impl ReportFile {
    /// `delimiter` is the CSV's (the input's, or `--delimiter`); a workbook has none.
    pub fn create(path: &Path, preflight: PreflightColumns, delimiter: u8) -> io::Result<ReportFile> {
        let style = Style { delimiter, formula_safe: true };
        Ok(ReportFile { table: TableFile::create(path, &columns(preflight), style)?, preflight })
    }

    pub fn write(&mut self, row: &StoredRow) -> io::Result<()> {
        let cells = cells(row, self.preflight);
        self.table.write(&cells.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Flushes the report to disk and puts it in its place.
    pub fn commit(self) -> io::Result<()> {
        self.table.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{CallRecord, RowStatus};
    use std::fs;

    #[test]
    fn the_header_and_a_row_are_pinned() {
        let mut writer = ReportWriter::new(Vec::new(), PreflightColumns::NotRan, b',').unwrap();
        let error = "line 2, column email: value \"=cmd\": not an email address, \"quoted\"".to_string();
        let row = StoredRow {
            call: CallRecord { error: Some(error), ..CallRecord::default() },
            changed_fields: "=HYPERLINK(\"x\")".into(),
            ..StoredRow::new(2, "0b7b8b4c-1d2e-4f5a-9b6c-7d8e9f0a1b2c".into(), RowStatus::Invalid)
        };
        writer.write(&row).unwrap();
        let text = String::from_utf8(writer.finish().unwrap()).unwrap();
        let expected = "\u{feff}line,customer_id,status,changed_fields,before,after,http_status,error_code,error,attempts,\
                        request_id,correlation_id,warnings\n\
                        2,0b7b8b4c-1d2e-4f5a-9b6c-7d8e9f0a1b2c,invalid,\"'=HYPERLINK(\"\"x\"\")\",,,,,\
                        \"line 2, column email: value \"\"=cmd\"\": not an email address, \"\"quoted\"\"\",,,,\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn a_report_file_is_private_and_appears_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.report.csv");
        let mut file = ReportFile::create(&path, PreflightColumns::Ran, b',').unwrap();
        file.write(&StoredRow::new(2, String::new(), RowStatus::Valid)).unwrap();
        assert!(!path.exists());
        file.commit().unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("\u{feff}line,customer_id,status"));
        assert!(text.contains("preflight,suggested_address,warnings\n2,,valid"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
