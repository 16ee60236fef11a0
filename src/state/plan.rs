//! The plan of a job as the state file holds it: every valid row's changes, recorded when the job is planned from
//! the one read of the CSV that is also hashed. The engine applies the plan, never the file read again, so what a
//! job writes is, byte for byte, what was planned and hashed, whatever happens to the file while the job runs or
//! between a kill and the resume.
//!
//! A [`Cursor`] reads the plan in pages over a read-only connection of its own (WAL lets it read beside the
//! recorder, which stays the one writer); each page is its own short read, so the WAL is never held back.

use super::{StateError, StateFile};
use crate::fields::{self, Field};
use crate::input::{Change, Edit};
use rusqlite::{Connection, OpenFlags, params};
use serde_json::{Map, Value};
use std::collections::VecDeque;
use std::path::Path;

/// Rows a page of the cursor holds.
const PAGE: usize = 512;

/// A row's changes as the plan records them: a JSON object `{field: value}`, `null` for `<clear>`, and
/// `{"restore": value}` for a before-value put back (`{}` when the field was absent: the key is removed).
pub fn encode(changes: &[Change]) -> String {
    let object: Map<String, Value> = changes
        .iter()
        .map(|change| {
            let value = match &change.edit {
                Edit::Set(value) => Value::String(value.clone()),
                Edit::Clear => Value::Null,
                Edit::Restore(value) => {
                    Value::Object(value.iter().map(|value| ("restore".to_string(), value.clone())).collect())
                }
            };
            (change.field.name.to_string(), value)
        })
        .collect();
    Value::Object(object).to_string()
}

/// The key of an export row's plan: the row is a read, and its value holds the row's notes (`#domain`,
/// `#companyName`) for the exported CSV.
pub const READ_KEY: &str = "#read";

/// An export row's plan: a read, with its notes.
pub fn encode_read(notes: Map<String, Value>) -> String {
    let mut object = Map::new();
    object.insert(READ_KEY.to_string(), Value::Object(notes));
    Value::Object(object).to_string()
}

/// The notes of an export row's plan; `None` when the plan is not a read.
pub fn read_notes(text: &str) -> Option<Map<String, Value>> {
    match serde_json::from_str::<Map<String, Value>>(text).ok()?.remove(READ_KEY)? {
        Value::Object(notes) => Some(notes),
        _ => None,
    }
}

/// The key of an edited export's row plan that holds the snapshot the row is based on: `{"etag": ..., "profile":
/// {...}}` (the apply copies it at planning, so it never reads the export's state file again).
pub const BASE_KEY: &str = "#base";

/// An edited export's row plan: its changes, as [`encode`] writes them, and the snapshot they are based on.
pub fn encode_threeway(changes: &[Change], etag: Option<&str>, profile: &Value) -> String {
    let mut object: Map<String, Value> = serde_json::from_str(&encode(changes)).unwrap_or_default();
    let mut base = Map::new();
    base.insert("etag".to_string(), etag.map_or(Value::Null, |etag| Value::String(etag.to_string())));
    base.insert("profile".to_string(), profile.clone());
    object.insert(BASE_KEY.to_string(), Value::Object(base));
    Value::Object(object).to_string()
}

/// What a row's plan holds, from one reading of it.
#[derive(Debug, PartialEq)]
pub enum Planned {
    /// An export row's read ([`encode_read`]).
    Read,
    /// Changes ([`encode`]), and the snapshot they are written onto for an edited export's row
    /// ([`encode_threeway`]).
    Changes { changes: Vec<Change>, base: Option<Value> },
}

/// A row's plan, read once: a three-way plan holds a whole profile, which reading the read's notes, the changes and
/// the snapshot in turn parsed three times.
pub fn parse(catalog: &'static [Field], text: &str) -> Result<Planned, String> {
    let mut object = object_of(text)?;
    if matches!(object.get(READ_KEY), Some(Value::Object(_))) {
        return Ok(Planned::Read);
    }
    let base = match object.shift_remove(BASE_KEY) {
        Some(Value::Object(mut base)) => base.shift_remove("profile"),
        _ => None,
    };
    Ok(Planned::Changes { changes: changes_of(catalog, object)?, base })
}

fn object_of(text: &str) -> Result<Map<String, Value>, String> {
    serde_json::from_str(text).map_err(|error| format!("a plan that is not a JSON object: {error}"))
}

/// The changes [`encode`] wrote, with the fields of `catalog`.
pub fn decode(catalog: &'static [Field], text: &str) -> Result<Vec<Change>, String> {
    changes_of(catalog, object_of(text)?)
}

fn changes_of(catalog: &'static [Field], object: Map<String, Value>) -> Result<Vec<Change>, String> {
    object
        .into_iter()
        // `#base`, `#read`: what a plan holds besides its changes.
        .filter(|(name, _)| !name.starts_with('#'))
        .map(|(name, value)| {
            let field =
                fields::lookup(catalog, &name).ok_or_else(|| format!("a plan names an unknown field {name}"))?;
            let edit = match value {
                Value::String(value) => Edit::Set(value),
                Value::Null => Edit::Clear,
                Value::Object(mut object) => Edit::Restore(object.remove("restore")),
                other => return Err(format!("a plan holds {other} for {name}")),
            };
            Ok(Change { field, edit })
        })
        .collect()
}

/// A planned row as the cursor reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanRow {
    pub line: u64,
    pub customer_id: String,
    pub status: String,
    /// `None` for an invalid row, or a row of a job planned by a pcbulk that did not record plans.
    pub plan: Option<String>,
}

/// Which rows a cursor reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rows {
    /// Every row, in line order (comparing the plan with a file).
    All,
    /// The rows still to do: pending, and failed too when they are to be tried again.
    ToDo { retry_failed: bool },
}

/// Reads a job's plan in line order, a page at a time, over its own read-only connection.
pub struct Cursor {
    connection: Connection,
    job: i64,
    rows: Rows,
    after: i64,
    page: VecDeque<PlanRow>,
    exhausted: bool,
}

impl Cursor {
    /// A cursor over the plan of `job` in the state file at `path`.
    pub fn open(path: &Path, job: i64, rows: Rows) -> Result<Cursor, StateError> {
        let unusable = |error: rusqlite::Error| StateError::Unusable {
            path: path.display().to_string(),
            message: format!("cannot read the plan: {error}"),
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(path, flags).map_err(unusable)?;
        connection.busy_timeout(std::time::Duration::from_secs(5)).map_err(unusable)?;
        Ok(Cursor { connection, job, rows, after: 0, page: VecDeque::new(), exhausted: false })
    }

    /// Reads on past the end met so far: rows added since (an export's next page, committed after this cursor
    /// came to the end of the rows it saw) come next, after the last row read.
    pub fn follow(&mut self) {
        self.exhausted = false;
    }

    fn next_page(&mut self) -> Result<(), StateError> {
        let (all, retry_failed) = match self.rows {
            Rows::All => (true, false),
            Rows::ToDo { retry_failed } => (false, retry_failed),
        };
        let mut statement = self.connection.prepare_cached(
            "SELECT line, customer_id, status, plan FROM rows
             WHERE job_id = ?1 AND line > ?2 AND (?3 OR status = 'pending' OR (?4 AND status = 'failed'))
             ORDER BY line LIMIT ?5",
        )?;
        let rows = statement.query_map(params![self.job, self.after, all, retry_failed, PAGE as i64], |row| {
            Ok(PlanRow { line: row.get(0)?, customer_id: row.get(1)?, status: row.get(2)?, plan: row.get(3)? })
        })?;
        for row in rows {
            self.page.push_back(row?);
        }
        self.exhausted = self.page.len() < PAGE;
        if let Some(last) = self.page.back() {
            self.after = last.line as i64;
        }
        Ok(())
    }
}

impl Iterator for Cursor {
    type Item = Result<PlanRow, StateError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.page.is_empty()
            && !self.exhausted
            && let Err(error) = self.next_page()
        {
            self.exhausted = true;
            return Some(Err(error));
        }
        self.page.pop_front().map(Ok)
    }
}

impl StateFile {
    /// How many rows of the job are to be done but hold no plan (a job planned by an older pcbulk).
    pub fn rows_without_plan(&self, job: i64) -> Result<u64, StateError> {
        let count = self.connection.query_row(
            "SELECT COUNT(*) FROM rows WHERE job_id = ?1 AND plan IS NULL AND status IN ('pending', 'failed')",
            params![job],
            |row| row.get(0),
        )?;
        Ok(count)
    }

    /// Records the plans of rows that hold none, in one transaction that stands only if `rows` ends without an
    /// error (the caller makes it end with one when the file read is not the file the job was planned from).
    pub fn fill_plans(
        &mut self,
        job: i64,
        rows: impl Iterator<Item = Result<(u64, String), crate::input::FileError>>,
    ) -> Result<Result<u64, crate::input::FileError>, StateError> {
        let transaction = self.connection.transaction()?;
        let mut filled = 0;
        {
            let mut update =
                transaction.prepare("UPDATE rows SET plan = ?3 WHERE job_id = ?1 AND line = ?2 AND plan IS NULL")?;
            for row in rows {
                let (line, plan) = match row {
                    Ok(row) => row,
                    // Dropping the transaction leaves the file as it was.
                    Err(error) => return Ok(Err(error)),
                };
                filled += update.execute(params![job, line, plan])? as u64;
            }
        }
        transaction.commit()?;
        Ok(Ok(filled))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::CUSTOMER_BILLING;

    #[test]
    fn a_plan_reads_back_as_the_changes_it_was_made_from() {
        let field = |name| fields::lookup(CUSTOMER_BILLING, name).unwrap();
        let changes = vec![
            Change { field: field("email"), edit: Edit::Set("a@example.com".into()) },
            Change { field: field("defaultAddress.city"), edit: Edit::Clear },
            Change { field: field("companyName"), edit: Edit::Restore(Some(Value::Null)) },
            Change { field: field("culture"), edit: Edit::Restore(None) },
        ];
        let decoded = decode(CUSTOMER_BILLING, &encode(&changes)).unwrap();
        assert_eq!(decoded, changes);
    }

    #[test]
    fn one_reading_tells_a_read_from_changes_and_their_snapshot() {
        let email =
            Change { field: fields::lookup(CUSTOMER_BILLING, "email").unwrap(), edit: Edit::Set("a@b.co".into()) };
        assert_eq!(parse(CUSTOMER_BILLING, &encode_read(Map::new())), Ok(Planned::Read));
        let changes = vec![email];
        let plain = Planned::Changes { changes: changes.clone(), base: None };
        assert_eq!(parse(CUSTOMER_BILLING, &encode(&changes)), Ok(plain));
        let profile = serde_json::json!({"email": "old@b.co", "attributes": {"etag": "e1"}});
        let threeway = Planned::Changes { changes: changes.clone(), base: Some(profile.clone()) };
        assert_eq!(parse(CUSTOMER_BILLING, &encode_threeway(&changes, Some("e1"), &profile)), Ok(threeway));
        assert!(parse(CUSTOMER_BILLING, "not json").unwrap_err().contains("not a JSON object"));
    }

    #[test]
    fn a_plan_naming_an_unknown_field_is_refused() {
        assert!(decode(CUSTOMER_BILLING, r#"{"shoeSize": "9"}"#).unwrap_err().contains("shoeSize"));
        assert!(decode(CUSTOMER_BILLING, "[1]").is_err());
    }
}
