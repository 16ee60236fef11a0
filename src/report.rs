//! The result report: one CSV row per data line of the input, in input order.
//!
//! The only code that writes a report. Every cell goes through [`formula_safe`], so a spreadsheet never runs a
//! cell as a formula. The file is created mode 0600 beside its final name and renamed into place when complete,
//! so a crash never leaves half a report where a whole one is expected.

use crate::state::StoredRow;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

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

/// A cell as a spreadsheet will show it, never run: a leading `=`, `+`, `-`, `@` (or tab, carriage return) gets a
/// `'` in front.
pub fn formula_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// Whether the report carries the pre-flight columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreflightColumns {
    Ran,
    NotRan,
}

/// Writes report rows to any sink.
pub struct ReportWriter<W: Write> {
    csv: csv::Writer<W>,
    preflight: PreflightColumns,
}

impl<W: Write> ReportWriter<W> {
    pub fn new(sink: W, preflight: PreflightColumns) -> io::Result<ReportWriter<W>> {
        let mut csv = csv::WriterBuilder::new().from_writer(sink);
        let mut header: Vec<&str> = COLUMNS.to_vec();
        if preflight == PreflightColumns::Ran {
            header.extend(PREFLIGHT_COLUMNS);
        }
        header.push(WARNINGS_COLUMN);
        csv.write_record(&header).map_err(io::Error::from)?;
        Ok(ReportWriter { csv, preflight })
    }

    /// Writes a row straight from the state file (or, for `validate`, as the reader found it); empty strings and
    /// `None`s are empty cells.
    pub fn write(&mut self, row: &StoredRow) -> io::Result<()> {
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
        if self.preflight == PreflightColumns::Ran {
            cells.extend([row.preflight.as_str(), row.suggested_address.as_str()]);
        }
        cells.push(&row.warnings);
        self.csv.write_record(cells.into_iter().map(|cell| formula_safe(cell).into_owned())).map_err(io::Error::from)
    }

    pub fn finish(self) -> io::Result<W> {
        self.csv.into_inner().map_err(|error| error.into_error())
    }
}

/// A report file being written: a temporary file beside `path`, renamed onto it by [`ReportFile::commit`].
pub struct ReportFile {
    path: PathBuf,
    temporary: PathBuf,
    writer: ReportWriter<io::BufWriter<fs::File>>,
}

impl ReportFile {
    pub fn create(path: &Path, preflight: PreflightColumns) -> io::Result<ReportFile> {
        crate::files::refuse_non_regular(path)?;
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".partial");
        let temporary = path.with_file_name(name);
        // A leftover from a crash may carry other permissions: start from nothing.
        let _ = fs::remove_file(&temporary);
        let file = crate::files::create_private(&temporary)?;
        let writer = ReportWriter::new(io::BufWriter::new(file), preflight)?;
        Ok(ReportFile { path: path.to_path_buf(), temporary, writer })
    }

    pub fn write(&mut self, row: &StoredRow) -> io::Result<()> {
        self.writer.write(row)
    }

    /// Flushes the report to disk and puts it in its place.
    pub fn commit(self) -> io::Result<()> {
        let sink = self.writer.finish()?;
        let file = sink.into_inner().map_err(|error| error.into_error())?;
        file.sync_all()?;
        fs::rename(&self.temporary, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{CallRecord, RowStatus};

    #[test]
    fn formulas_are_defused() {
        assert_eq!(formula_safe("=1+1"), "'=1+1");
        assert_eq!(formula_safe("+49 30 1234"), "'+49 30 1234");
        assert_eq!(formula_safe("-x"), "'-x");
        assert_eq!(formula_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(formula_safe("Contoso"), "Contoso");
        assert_eq!(formula_safe(""), "");
    }

    #[test]
    fn the_header_and_a_row_are_pinned() {
        let mut writer = ReportWriter::new(Vec::new(), PreflightColumns::NotRan).unwrap();
        let error = "line 2, column email: value \"=cmd\": not an email address, \"quoted\"".to_string();
        let row = StoredRow {
            call: CallRecord { error: Some(error), ..CallRecord::default() },
            changed_fields: "=HYPERLINK(\"x\")".into(),
            ..StoredRow::new(2, "0b7b8b4c-1d2e-4f5a-9b6c-7d8e9f0a1b2c".into(), RowStatus::Invalid)
        };
        writer.write(&row).unwrap();
        let text = String::from_utf8(writer.finish().unwrap()).unwrap();
        let expected = "line,customer_id,status,changed_fields,before,after,http_status,error_code,error,attempts,\
                        request_id,correlation_id,warnings\n\
                        2,0b7b8b4c-1d2e-4f5a-9b6c-7d8e9f0a1b2c,invalid,\"'=HYPERLINK(\"\"x\"\")\",,,,,\
                        \"line 2, column email: value \"\"=cmd\"\": not an email address, \"\"quoted\"\"\",,,,\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn a_report_file_is_private_and_appears_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.report.csv");
        let mut file = ReportFile::create(&path, PreflightColumns::Ran).unwrap();
        file.write(&StoredRow::new(2, String::new(), RowStatus::Valid)).unwrap();
        assert!(!path.exists());
        file.commit().unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("line,customer_id,status"));
        assert!(text.contains("preflight,suggested_address,warnings\n2,,valid"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
