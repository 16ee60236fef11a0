//! The CSV an export writes: exactly what `apply` reads (`customer_id` and the catalog columns), then the note
//! columns (`#companyName`, `#domain` from the listing, and `#export`, whose every cell holds the export's id so an
//! edited copy, saved under any name, sorted or cut, still names its snapshot). In the listing's order.
//!
//! Excel: the file starts with a UTF-8 byte-order mark (the one sign Excel takes for UTF-8: without it, names like
//! "Müller" open as mojibake); pcbulk's reader skips it. A cell Excel would run as a formula (`=`, `+`, `-`, `@`)
//! is written with a leading `'` as the report does (`report::formula_safe`), and an edited export reads that `'`
//! back off. Values Excel re-types on open (leading zeros, long digit strings, date-like text) cannot be protected
//! in a plain CSV without changing them: they are written as they are, and the three-way apply finds the damage.
//! Written beside its name and renamed into place when whole.

use super::export::ExportError;
use crate::fields::{self, CUSTOMER_BILLING, Field};
use crate::report::formula_safe;
use crate::state::StateFile;
use crate::state::export::{Export, ExportedRow};
use serde_json::Value;
use std::io::Write;
use std::path::Path;

/// The note column that names the export.
pub const EXPORT_COLUMN: &str = "#export";
/// The note columns from the listing, in the order written.
pub const NOTE_COLUMNS: [&str; 2] = ["#companyName", "#domain"];

/// A profile's value as a cell: text as it is, a number or a boolean as written in JSON, absent or null empty.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Writes the export's CSV from its snapshots; returns the rows written.
pub(super) fn write(state: &StateFile, job: i64, export: &Export, out: &Path) -> Result<u64, ExportError> {
    let failed = |source: std::io::Error| ExportError::Write { path: out.display().to_string(), source };
    let columns: Vec<&'static Field> =
        export.columns.iter().filter_map(|name| fields::lookup(CUSTOMER_BILLING, name)).collect();
    let mut temporary = out.as_os_str().to_os_string();
    temporary.push(".partial");
    let temporary = std::path::PathBuf::from(temporary);
    let mut file = std::io::BufWriter::new(crate::files::create_private(&temporary).map_err(failed)?);
    file.write_all(b"\xEF\xBB\xBF").map_err(failed)?;
    let mut csv = csv::Writer::from_writer(file);
    let mut header = vec!["customer_id".to_string()];
    header.extend(columns.iter().map(|field| field.name.to_string()));
    header.extend(NOTE_COLUMNS.iter().map(|name| name.to_string()));
    header.push(EXPORT_COLUMN.to_string());
    csv.write_record(&header).map_err(|error| failed(error.into()))?;
    let mut written = 0;
    let result = state.each_exported(job, |row| {
        written += 1;
        csv.write_record(record(&row, &columns, &export.id)).map_err(std::io::Error::from)
    })?;
    result.map_err(failed)?;
    let mut file = csv.into_inner().map_err(|error| failed(error.into_error()))?;
    file.flush().map_err(failed)?;
    file.get_ref().sync_all().map_err(failed)?;
    std::fs::rename(&temporary, out).map_err(failed)?;
    Ok(written)
}

fn record(row: &ExportedRow, columns: &[&'static Field], export_id: &str) -> Vec<String> {
    let profile: Value = serde_json::from_str(&row.profile).unwrap_or(Value::Null);
    let notes = row.notes.as_deref().and_then(crate::state::plan::read_notes).unwrap_or_default();
    let mut cells = vec![row.customer_id.clone()];
    cells.extend(
        columns.iter().map(|field| formula_safe(&cell(&crate::merge::value_at(&profile, field.path))).into_owned()),
    );
    cells.extend(
        NOTE_COLUMNS.iter().map(|name| formula_safe(&cell(notes.get(*name).unwrap_or(&Value::Null))).into_owned()),
    );
    cells.push(export_id.to_string());
    cells
}
