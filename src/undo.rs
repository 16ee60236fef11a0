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

/// The value at a field's path, `None` when absent.
fn found(catalog: &'static [Field], profile: &Value, field: &str) -> Option<Value> {
    fields::lookup(catalog, field).and_then(|field| merge::slot_at(profile, field.path))
}

/// Whether a field holds a value: equal, or both empty (absent or null: the service may answer either for a field
/// it holds nothing in, and a state file written before absent was told apart from null has null for both).
fn same(found: &Option<Value>, expected: &Option<Value>) -> bool {
    let empty = |slot: &Option<Value>| matches!(slot, None | Some(Value::Null));
    found == expected || (empty(found) && empty(expected))
}

/// A field's value as a message quotes it.
fn shown(slot: &Option<Value>) -> String {
    match slot {
        Some(Value::String(text)) => format!("\"{}\"", quote(text)),
        Some(other) => quote(&other.to_string()),
        None => "absent".to_string(),
    }
}

/// Decides a row's rollback from the profile as read and the changes the job wrote (`before` → `after`).
pub fn restore(profile: Value, written: &[FieldChange]) -> Result<Undone, MergeError> {
    restore_in(CUSTOMER_BILLING, profile, written)
}

/// [`restore`] for a profile whose fields are in `catalog` (a partner profile's, say).
pub fn restore_in(catalog: &'static [Field], profile: Value, written: &[FieldChange]) -> Result<Undone, MergeError> {
    let mut changes = Vec::new();
    for change in written {
        let now = found(catalog, &profile, change.field);
        if same(&now, &change.after) && !same(&now, &change.before) {
            let Some(field) = fields::lookup(catalog, change.field) else { continue };
            changes.push(Change { field, edit: Edit::Restore(change.before.clone()) });
        } else if !same(&now, &change.before) {
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
            FieldChange { field: "defaultAddress.city", before: Some(json!("Redmond")), after: Some(json!("Seattle")) },
            FieldChange { field: "email", before: None, after: Some(json!("new@contoso.com")) },
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
            restore(profile("Seattle", Some("new@contoso.com")), &written()).unwrap()
        else {
            panic!("expected a restore")
        };
        assert_eq!(
            serde_json::to_string(&merged).unwrap(),
            r#"{"id":"c1","defaultAddress":{"city":"Redmond","district":"King"},"x":[1]}"#,
            "the email absent before the job is removed, not set to null"
        );
        assert_eq!(
            changes[0],
            FieldChange { field: "defaultAddress.city", before: Some(json!("Seattle")), after: Some(json!("Redmond")) }
        );
    }

    #[test]
    fn a_row_already_holding_its_before_values_is_restored_without_a_write() {
        assert_eq!(restore(profile("Redmond", None), &written()).unwrap(), Undone::Merged(Merged::Unchanged));
    }

    #[test]
    fn fields_half_restored_get_the_rest_put_back() {
        let Undone::Merged(Merged::Changed { changes, .. }) =
            restore(profile("Redmond", Some("new@contoso.com")), &written()).unwrap()
        else {
            panic!("expected a restore")
        };
        assert_eq!(changes, [FieldChange { field: "email", before: Some(json!("new@contoso.com")), after: None }]);
    }

    #[test]
    fn a_field_changed_by_someone_else_leaves_the_whole_row_alone() {
        let undone = restore(profile("Tacoma", Some("new@contoso.com")), &written()).unwrap();
        assert_eq!(
            undone,
            Undone::Conflict(
                "defaultAddress.city is now \"Tacoma\", the job wrote \"Seattle\": left as found".to_string()
            )
        );
        let undone = restore(profile("Seattle", Some("other@contoso.com")), &written()).unwrap();
        assert!(matches!(undone, Undone::Conflict(message) if message.starts_with("email is now \"other@")));
    }

    #[test]
    fn a_legacy_null_before_value_still_puts_back_null_and_null_and_absent_are_one_to_the_conflict_check() {
        let legacy = [FieldChange { field: "email", before: Some(Value::Null), after: Some(json!("new@contoso.com")) }];
        let Undone::Merged(Merged::Changed { profile: merged, .. }) =
            restore(profile("Seattle", Some("new@contoso.com")), &legacy).unwrap()
        else {
            panic!("expected a restore")
        };
        assert_eq!(merged["email"], Value::Null);
        let mut nulled = profile("Redmond", None);
        nulled["email"] = Value::Null;
        assert_eq!(restore(nulled.clone(), &written()).unwrap(), Undone::Merged(Merged::Unchanged));
    }

    #[test]
    fn rolling_back_twice_writes_once() {
        let read = profile("Seattle", Some("new@contoso.com"));
        let Undone::Merged(Merged::Changed { profile: merged, .. }) = restore(read.clone(), &written()).unwrap() else {
            panic!("expected a restore")
        };
        assert_eq!(restore(merged.clone(), &written()).unwrap(), Undone::Merged(Merged::Unchanged));
    }
}
