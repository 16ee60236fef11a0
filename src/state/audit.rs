//! The audit trail of `pcbulk partner set`: one row per PUT of a partner profile, with the fields it changed, their
//! before- and after-values, the call's ids and its outcome, so a change can be looked up and rolled back later.
//!
//! The intent is recorded (committed) before the PUT is sent and the outcome after its answer: a row left `pending`
//! is a PUT whose answer was never recorded. Nothing here ever holds a token or a secret; only field values, which
//! are the profile's own.

use super::{CallRecord, StateError, StateFile, changes_json, now};
use crate::merge::FieldChange;
use crate::wire::PartnerProfileKind;
use rusqlite::params;

/// What became of a PUT of a partner profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartnerOutcome {
    /// Recorded before the PUT; still so if the process died before its answer.
    Pending,
    /// The PUT was applied.
    Updated,
    /// The profile had changed since it was read (412, 409, 400 with 2055): read, merged and put again.
    Conflict,
    /// The service refused the PUT, or it could not be made.
    Failed,
    /// The connection dropped after the PUT went out: settled by reading the profile again.
    Unknown,
}

impl PartnerOutcome {
    pub const ALL: [PartnerOutcome; 5] = [
        PartnerOutcome::Pending,
        PartnerOutcome::Updated,
        PartnerOutcome::Conflict,
        PartnerOutcome::Failed,
        PartnerOutcome::Unknown,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PartnerOutcome::Pending => "pending",
            PartnerOutcome::Updated => "updated",
            PartnerOutcome::Conflict => "conflict",
            PartnerOutcome::Failed => "failed",
            PartnerOutcome::Unknown => "unknown",
        }
    }

    pub fn from_name(name: &str) -> Option<PartnerOutcome> {
        Self::ALL.into_iter().find(|outcome| outcome.name() == name)
    }
}

/// The answer to a PUT, as recorded (the trail keeps no attempts: `call.attempts` is not written).
#[derive(Clone, Debug, PartialEq)]
pub struct PartnerAnswer {
    pub outcome: PartnerOutcome,
    pub call: CallRecord,
}

/// A recorded PUT of a partner profile.
#[derive(Clone, Debug, PartialEq)]
pub struct PartnerChange {
    pub id: i64,
    /// `billing`, `legalbusiness`, `organization` or `support`.
    pub kind: String,
    pub base_url: String,
    pub intended_at: String,
    pub finished_at: Option<String>,
    /// The field names, separated by spaces.
    pub changed_fields: String,
    /// JSON objects `{field: value}`.
    pub before: String,
    pub after: String,
    pub outcome: Option<PartnerOutcome>,
    /// The answer's call (no attempts: the trail keeps none).
    pub call: CallRecord,
}

/// Records, durably, that a PUT with these changes is about to be sent; returns the row's id for its outcome.
pub fn record_partner_intent(
    state: &StateFile,
    kind: PartnerProfileKind,
    base_url: &str,
    changes: &[FieldChange],
) -> Result<i64, StateError> {
    let names: Vec<&str> = changes.iter().map(|change| change.field).collect();
    state.connection.execute(
        "INSERT INTO partner_changes (kind, base_url, intended_at, changed_fields, before, after, outcome)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            kind.name(),
            base_url,
            now(),
            names.join(" "),
            changes_json(changes, |change| &change.before),
            changes_json(changes, |change| &change.after),
            PartnerOutcome::Pending.name(),
        ],
    )?;
    Ok(state.connection.last_insert_rowid())
}

/// Records the answer to the PUT of an intent.
pub fn record_partner_answer(state: &StateFile, id: i64, answer: &PartnerAnswer) -> Result<(), StateError> {
    let updated = state.connection.execute(
        "UPDATE partner_changes SET outcome = ?2, finished_at = ?3, http_status = ?4, error_code = ?5, error = ?6,
                request_id = ?7, correlation_id = ?8
         WHERE id = ?1",
        params![
            id,
            answer.outcome.name(),
            now(),
            answer.call.http_status,
            answer.call.error_code,
            answer.call.error,
            answer.call.request_id,
            answer.call.correlation_id,
        ],
    )?;
    if updated == 0 {
        return Err(StateError::RecorderGone(format!("no partner change {id} to record an answer for")));
    }
    Ok(())
}

impl PartnerOutcome {
    /// A PUT whose answer was never recorded (`pending`) or was lost (`unknown`): it may or may not have landed.
    pub fn is_unsettled(self) -> bool {
        matches!(self, PartnerOutcome::Pending | PartnerOutcome::Unknown)
    }
}

/// The PUTs of one kind of partner profile against `base_url` that may or may not have landed, oldest first.
pub fn unsettled_partner_changes(
    state: &StateFile,
    kind: PartnerProfileKind,
    base_url: &str,
) -> Result<Vec<PartnerChange>, StateError> {
    let changes = partner_changes(state, kind)?;
    Ok(changes
        .into_iter()
        .filter(|change| change.base_url == base_url && change.outcome.is_some_and(PartnerOutcome::is_unsettled))
        .collect())
}

/// The recorded PUTs of one kind of partner profile, oldest first.
pub fn partner_changes(state: &StateFile, kind: PartnerProfileKind) -> Result<Vec<PartnerChange>, StateError> {
    let mut statement = state.connection.prepare(
        "SELECT id, kind, base_url, intended_at, finished_at, changed_fields, before, after, outcome, http_status,
                error_code, error, request_id, correlation_id
         FROM partner_changes WHERE kind = ?1 ORDER BY id",
    )?;
    let rows = statement.query_map(params![kind.name()], |row| {
        let outcome: String = row.get(8)?;
        Ok(PartnerChange {
            id: row.get(0)?,
            kind: row.get(1)?,
            base_url: row.get(2)?,
            intended_at: row.get(3)?,
            finished_at: row.get(4)?,
            changed_fields: row.get(5)?,
            before: row.get(6)?,
            after: row.get(7)?,
            outcome: PartnerOutcome::from_name(&outcome),
            call: CallRecord {
                http_status: row.get(9)?,
                error_code: row.get(10)?,
                error: row.get(11)?,
                attempts: None,
                request_id: row.get(12)?,
                correlation_id: row.get(13)?,
            },
        })
    })?;
    rows.collect::<Result<_, _>>().map_err(StateError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change() -> FieldChange {
        FieldChange { field: "telephone", before: Some(json!("4255555555")), after: Some(json!("4255550199")) }
    }

    #[test]
    fn an_intent_then_its_answer() {
        let state = StateFile::open_in_memory().unwrap();
        let id = record_partner_intent(&state, PartnerProfileKind::Support, "http://127.0.0.1:1", &[change()]).unwrap();
        let pending = partner_changes(&state, PartnerProfileKind::Support).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].outcome, Some(PartnerOutcome::Pending));
        assert_eq!(pending[0].before, r#"{"telephone":"4255555555"}"#);
        assert_eq!(pending[0].after, r#"{"telephone":"4255550199"}"#);
        let call = CallRecord {
            http_status: Some(200),
            request_id: Some("r".into()),
            correlation_id: Some("c".into()),
            ..CallRecord::default()
        };
        let answer = PartnerAnswer { outcome: PartnerOutcome::Updated, call };
        record_partner_answer(&state, id, &answer).unwrap();
        let done = &partner_changes(&state, PartnerProfileKind::Support).unwrap()[0];
        assert_eq!(done.outcome, Some(PartnerOutcome::Updated));
        assert_eq!((done.call.http_status, done.call.request_id.as_deref()), (Some(200), Some("r")));
        assert!(done.finished_at.is_some());
        assert!(partner_changes(&state, PartnerProfileKind::Billing).unwrap().is_empty());
        assert!(record_partner_answer(&state, id + 1, &answer).is_err());
    }

    #[test]
    fn a_file_made_before_the_table_gains_it_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.pcbulk.db");
        drop(StateFile::open_for_job(&path).unwrap());
        rusqlite::Connection::open(&path).unwrap().execute_batch("DROP TABLE partner_changes").unwrap();
        let state = StateFile::open_for_job(&path).unwrap();
        record_partner_intent(&state, PartnerProfileKind::Billing, "u", &[change()]).unwrap();
        assert_eq!(partner_changes(&state, PartnerProfileKind::Billing).unwrap().len(), 1);
    }
}
