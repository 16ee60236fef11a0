//! Rollback's pure core: a profile as read plus the changes a job wrote gives the changes that put the
//! before-values back, "already restored", or a conflict naming the value found.
//!
//! Pure: no I/O. It never restores a row in part: when any field the job wrote holds something other than what
//! the job wrote or what was there before, the whole row is left as found. The restore itself is [`merge::merge`]
//! with [`Edit::Restore`], so every field the job did not change goes back untouched.

use crate::fields::{self, CUSTOMER_BILLING, Field};
use crate::input::{Change, Edit, quote};
use crate::merge::{self, FieldChange, MergeError, Merged};
use serde_json::Value;

/// What a rollback makes of one row.
#[derive(Clone, Debug, PartialEq)]
pub enum Undone {
    /// The profile to write (or `Unchanged`: every field already holds its before-value).
    Merged(Merged),
    /// Someone changed a field since the job wrote it: the row is left as found.
    Conflict(String),
}

/// The value at a field's path, `Null` when absent; absent and null are one value to a rollback.
fn found(catalog: &'static [Field], profile: &Value, field: &str) -> Value {
    match fields::lookup(catalog, field) {
        Some(field) => merge::value_at(profile, field.path),
        None => Value::Null,
    }
}

/// A JSON value as a message quotes it.
fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => format!("\"{}\"", quote(text)),
        other => quote(&other.to_string()),
    }
}

/// Decides a row's rollback from the profile as read and the changes the job wrote (`before` → `after`).
pub fn restore(profile: &Value, written: &[FieldChange]) -> Result<Undone, MergeError> {
    restore_in(CUSTOMER_BILLING, profile, written)
}

/// [`restore`] for a profile whose fields are in `catalog` (a partner profile's, say).
pub fn restore_in(catalog: &'static [Field], profile: &Value, written: &[FieldChange]) -> Result<Undone, MergeError> {
    let mut changes = Vec::new();
    for change in written {
        let now = found(catalog, profile, change.field);
        if now == change.after {
            let Some(field) = fields::lookup(catalog, change.field) else { continue };
            changes.push(Change { field, edit: Edit::Restore(change.before.clone()) });
        } else if now != change.before {
            return Ok(Undone::Conflict(format!(
                "{} is now {}, the job wrote {}: left as found",
                change.field,
                shown(&now),
                shown(&change.after)
            )));
        }
    }
    merge::merge(profile, &changes).map(Undone::Merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn written() -> Vec<FieldChange> {
        vec![
            FieldChange { field: "defaultAddress.city", before: json!("Redmond"), after: json!("Seattle") },
            FieldChange { field: "email", before: Value::Null, after: json!("new@contoso.com") },
        ]
    }

    fn profile(city: &str, email: Option<&str>) -> Value {
        let mut profile = json!({"id": "c1", "defaultAddress": {"city": city, "district": "King"}, "x": [1]});
        if let Some(email) = email {
            profile["email"] = json!(email);
        }
        profile
    }

    #[test]
    fn fields_still_holding_what_the_job_wrote_get_their_before_values() {
        let Undone::Merged(Merged::Changed { profile: merged, changes }) =
            restore(&profile("Seattle", Some("new@contoso.com")), &written()).unwrap()
        else {
            panic!("expected a restore")
        };
        assert_eq!(
            merged,
            json!({"id": "c1", "defaultAddress": {"city": "Redmond", "district": "King"}, "x": [1], "email": null})
        );
        assert_eq!(
            changes[0],
            FieldChange { field: "defaultAddress.city", before: json!("Seattle"), after: json!("Redmond") }
        );
    }

    #[test]
    fn a_row_already_holding_its_before_values_is_restored_without_a_write() {
        assert_eq!(restore(&profile("Redmond", None), &written()).unwrap(), Undone::Merged(Merged::Unchanged));
    }

    #[test]
    fn fields_half_restored_get_the_rest_put_back() {
        let Undone::Merged(Merged::Changed { changes, .. }) =
            restore(&profile("Redmond", Some("new@contoso.com")), &written()).unwrap()
        else {
            panic!("expected a restore")
        };
        assert_eq!(changes, [FieldChange { field: "email", before: json!("new@contoso.com"), after: Value::Null }]);
    }

    #[test]
    fn a_field_changed_by_someone_else_leaves_the_whole_row_alone() {
        let undone = restore(&profile("Tacoma", Some("new@contoso.com")), &written()).unwrap();
        assert_eq!(
            undone,
            Undone::Conflict(
                "defaultAddress.city is now \"Tacoma\", the job wrote \"Seattle\": left as found".to_string()
            )
        );
        let undone = restore(&profile("Seattle", Some("other@contoso.com")), &written()).unwrap();
        assert!(matches!(undone, Undone::Conflict(message) if message.starts_with("email is now \"other@")));
    }

    #[test]
    fn rolling_back_twice_writes_once() {
        let read = profile("Seattle", Some("new@contoso.com"));
        let Undone::Merged(Merged::Changed { profile: merged, .. }) = restore(&read, &written()).unwrap() else {
            panic!("expected a restore")
        };
        assert_eq!(restore(&merged, &written()).unwrap(), Undone::Merged(Merged::Unchanged));
    }
}
