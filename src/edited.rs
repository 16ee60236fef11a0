//! An edited export: how a CSV that came from `pcbulk export` finds the export's snapshot, and each of its records
//! judged three-way against it ([`crate::threeway`]), for the apply's planning and for `validate` alike.
//!
//! Finding the export: the CSV's `#export` column names it (every cell holds the export's id, so a copy saved under
//! another name, sorted or cut, still names it). `--base EXPORT.csv` names the exported file itself (its state file
//! is `EXPORT.csv.pcbulk.db`); without it, the CSV's own default state file (the exported file edited in place), then
//! every `*.pcbulk.db` beside the CSV, is looked at for an export with that id. Nothing found: an error that names
//! every file looked at, and `--base`.
//!
//! The apply copies each changed row's snapshot into its own plan: once planned, it never reads the export's state
//! file again.

use crate::input::{self, ChangeRow, FileError, InputConfig, Problem, Record, Validity};
use crate::state::StateError;
use crate::state::export::Snapshots;
use crate::threeway::{self, Cell, ExcelChanges};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The export an edited CSV is judged against.
pub struct Edited {
    pub snapshots: Snapshots,
    /// The export's state file.
    pub state: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum EditedError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(
        "{csv} came from pcbulk export {id} (its #export column), and no state file holding that export was found \
         (looked at: {looked}). Give --base EXPORT.csv: the file the export wrote, with its state file \
         EXPORT.csv.pcbulk.db beside it"
    )]
    NotFound { csv: String, id: String, looked: String },
    #[error("--base {base}: its state file {state} holds no export (give the CSV that pcbulk export wrote)")]
    NoBase { base: String, state: String },
    #[error("{csv} names export {named} in its #export column, but --base {base} is export {found}")]
    OtherBase { csv: String, named: String, base: String, found: String },
}

/// The default state file of a CSV (as `cli::job::default_state` makes it).
fn state_of(csv: &Path) -> PathBuf {
    let mut name = csv.as_os_str().to_os_string();
    name.push(".pcbulk.db");
    PathBuf::from(name)
}

/// The export `csv` is an edited copy of, or `None` for a plain CSV (no `#export` column and no `--base`).
pub fn find(csv: &Path, input: &InputConfig, base: Option<&Path>) -> Result<Option<Edited>, EditedError> {
    let mut reader = input::open(csv, input)?;
    if base.is_none() && !reader.has_export_column() {
        return Ok(None);
    }
    let mut named = None;
    if reader.has_export_column() {
        reader = reader.with_raw_cells().without_duplicate_check();
        named = reader.find_map(|record| record.ok()?.raw?.export.filter(|id| !id.is_empty()));
    }
    if let Some(base) = base {
        let state = state_of(base);
        let display = |path: &Path| path.display().to_string();
        let Some(snapshots) = Snapshots::open(&state)? else {
            return Err(EditedError::NoBase { base: display(base), state: display(&state) });
        };
        if let Some(named) = named.filter(|named| *named != snapshots.export.id) {
            let found = snapshots.export.id.clone();
            return Err(EditedError::OtherBase { csv: display(csv), named, base: display(base), found });
        }
        return Ok(Some(Edited { snapshots, state }));
    }
    let id = named.unwrap_or_default();
    let mut looked = vec![state_of(csv)];
    let directory = csv.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut beside: Vec<PathBuf> = std::fs::read_dir(directory)
        .map(|entries| entries.filter_map(|entry| Some(entry.ok()?.path())).collect())
        .unwrap_or_default();
    beside.retain(|path| path.to_string_lossy().ends_with(".pcbulk.db") && !looked.contains(path));
    beside.sort();
    looked.extend(beside);
    for state in &looked {
        // A file that is not a state file, or not ours, holds no export: looked at and passed over.
        if let Ok(Some(snapshots)) = Snapshots::open(state)
            && snapshots.export.id == id
        {
            return Ok(Some(Edited { snapshots, state: state.clone() }));
        }
    }
    let looked = looked.iter().map(|path| path.display().to_string()).collect::<Vec<_>>().join(", ");
    Err(EditedError::NotFound { csv: csv.display().to_string(), id, looked })
}

/// A record of an edited export, judged: its verdict (valid with the changes its cells make, none when it is
/// unchanged; or invalid with every problem), and the snapshot profile a changed row is written onto.
pub struct Judged {
    pub record: Record,
    pub snapshot: Option<Value>,
}

/// Judges a record read with raw cells against the export: each cell against the snapshot's value.
pub fn judge(edited: &Edited, mut record: Record, excel: ExcelChanges) -> Result<Judged, StateError> {
    let (Validity::Valid(row), Some(raw)) = (&record.validity, record.raw.take()) else {
        return Ok(Judged { record, snapshot: None });
    };
    let (line, customer_id) = (row.line, row.customer_id);
    let export = &edited.snapshots.export.id;
    let invalid = |message: String, value: Option<String>| {
        let column = Some(if value.is_some() { input::EXPORT_COLUMN } else { "customer_id" }.to_string());
        Validity::Invalid(vec![Problem { line, column, value, message }])
    };
    if let Some(other) = raw.export.filter(|id| !id.is_empty() && id != export) {
        record.validity = invalid(format!("a row of another export (this file is export {export})"), Some(other));
        return Ok(Judged { record, snapshot: None });
    }
    let Some(snapshot) = edited.snapshots.get(&customer_id.to_string())? else {
        let message = format!(
            "customer {customer_id} is not in export {export}: an edited export's rows are applied against what the \
             export read; apply this row from a plain CSV"
        );
        record.validity = invalid(message, None);
        return Ok(Judged { record, snapshot: None });
    };
    let profile: Value = serde_json::from_str(&snapshot.profile).unwrap_or(Value::Null);
    let cells: Vec<Cell<'_>> = raw.cells.iter().map(|(field, text)| Cell { field, text }).collect();
    let planned = threeway::plan_row(line, &profile, &cells, excel);
    record.validity = match planned.problems.is_empty() {
        true => Validity::Valid(ChangeRow { line, customer_id, changes: planned.changes }),
        false => Validity::Invalid(planned.problems),
    };
    Ok(Judged { record, snapshot: Some(profile) })
}
