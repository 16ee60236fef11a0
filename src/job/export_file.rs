//! The table an export writes, a CSV or a workbook (`.xlsx`) through the one table sink ([`crate::table`]): exactly
//! what `apply` reads (`customer_id` and the catalog columns), then the note columns (`#companyName`, `#domain` from
//! the listing, and `#export`, whose every cell holds the export's id so an edited copy, saved under any name, sorted
//! or cut, still names its snapshot). In the listing's order.
//!
//! A workbook stores every cell as text in columns formatted as text (`02134` stays `02134`, even typed anew), with
//! the header frozen, an autofilter, sized columns and the note columns set apart; a value longer than a cell holds
//! is refused rather than cut (a cut value read back would be a change).
//!
//! A CSV starts with a UTF-8 byte-order mark (the one sign Excel takes for UTF-8: without it, names like "Müller"
//! open as mojibake; pcbulk's reader skips it) and uses the export's delimiter (`--delimiter`). A cell Excel would
//! run as a formula (`=`, `+`, `-`, `@`) is written with a leading `'` as the report does
//! ([`crate::table::formula_safe`]), and an edited export reads that `'` back off. Values Excel re-types on open
//! (leading zeros, long digit strings, date-like text) cannot be protected in a plain CSV without changing them: they
//! are written as they are, and the three-way apply finds the damage. Either is written beside its name and renamed
//! into place when whole.

use super::export::ExportError;
use crate::fields::{self, CUSTOMER_BILLING, Field};
use crate::state::StateFile;
use crate::state::export::{Export, ExportedRow};
use crate::table::{Column, Format, Kind, MAX_CELL_CHARS, Style, TableFile};
use serde_json::Value;
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

/// Writes the export's table (CSV with `delimiter`, or a workbook when `out` ends in `.xlsx`) from its snapshots;
/// returns the rows written.
pub(super) fn write(
    state: &StateFile,
    job: i64,
    export: &Export,
    out: &Path,
    delimiter: u8,
) -> Result<u64, ExportError> {
    let failed = |source: std::io::Error| ExportError::Write { path: out.display().to_string(), source };
    let columns: Vec<&'static Field> =
        export.columns.iter().filter_map(|name| fields::lookup(CUSTOMER_BILLING, name)).collect();
    // The cells are values to read back: the CSV sink makes them formula-safe, a workbook holds them as text.
    let style = Style { delimiter, formula_safe: true };
    let mut table = TableFile::create(out, &header(&columns), style).map_err(failed)?;
    let workbook = Format::of(out) == Format::Xlsx;
    let mut written = 0;
    let result = state.each_exported(job, |row| {
        written += 1;
        let cells = record(&row, &columns, &export.id);
        if workbook {
            fits_a_cell(&cells, &row.customer_id)?;
        }
        table.write(&cells.iter().map(String::as_str).collect::<Vec<_>>())
    })?;
    result.map_err(failed)?;
    table.commit().map_err(failed)?;
    Ok(written)
}

/// The columns: `customer_id`, the catalog's, the notes from the listing, `#export`.
fn header(columns: &[&'static Field]) -> Vec<Column> {
    let mut header = vec![Column::new("customer_id", Kind::Text)];
    header.extend(columns.iter().map(|field| Column::new(field.name, Kind::Text)));
    header.extend(NOTE_COLUMNS.iter().map(|name| Column::new(*name, Kind::Note)));
    header.push(Column::new(EXPORT_COLUMN, Kind::Note));
    header
}

/// Refuses a value longer than a workbook's cell holds: cut, it would read back as a change.
fn fits_a_cell(cells: &[String], customer_id: &str) -> std::io::Result<()> {
    match cells.iter().find(|cell| cell.chars().count() > MAX_CELL_CHARS) {
        Some(cell) => Err(std::io::Error::other(format!(
            "customer {customer_id} holds a value of {} characters, more than a workbook's cell holds \
             ({MAX_CELL_CHARS}): export to .csv",
            cell.chars().count()
        ))),
        None => Ok(()),
    }
}

/// A row's cells as they are (the sink makes a CSV's formula-safe).
fn record(row: &ExportedRow, columns: &[&'static Field], export_id: &str) -> Vec<String> {
    let profile: Value = serde_json::from_str(&row.profile).unwrap_or(Value::Null);
    let notes = row.notes.as_deref().and_then(crate::state::plan::read_notes).unwrap_or_default();
    let mut cells = vec![row.customer_id.clone()];
    cells.extend(columns.iter().map(|field| cell(&crate::merge::value_at(&profile, field.path))));
    cells.extend(NOTE_COLUMNS.iter().map(|name| cell(notes.get(*name).unwrap_or(&Value::Null))));
    cells.push(export_id.to_string());
    cells
}
