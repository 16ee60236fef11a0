//! The merge: a profile as read plus a row's changes gives the profile to write, or "no change".
//!
//! Pure: no I/O, no clock. It works on `serde_json::Value` exactly as read (key order kept), touches only the paths
//! the changes name, and sends every other key back untouched, at any depth, including keys pcbulk does not know.
//! Keys are found without regard to case (the service is case-insensitive on input) and keep the spelling read.

use crate::input::{Change, Edit};
use serde_json::{Map, Value};

/// One field the merge changed.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldChange {
    /// The column name, like `defaultAddress.city`.
    pub field: &'static str,
    /// The value read; `None` when the key was absent (not the same as a `null` value).
    pub before: Option<Value>,
    /// The value written; `None` when the key was removed (a rollback putting back an absent key).
    pub after: Option<Value>,
}

/// A field's value as a person reads it: its JSON, or `(absent)`.
pub fn shown(slot: &Option<Value>) -> String {
    match slot {
        Some(value) => value.to_string(),
        None => "(absent)".to_string(),
    }
}

/// What the merge gives.
#[derive(Clone, Debug, PartialEq)]
pub enum Merged {
    /// Every field already holds what the row asks: nothing to write.
    Unchanged,
    /// The profile to write, and the fields that differ from what was read.
    Changed { profile: Value, changes: Vec<FieldChange> },
}

/// Why a profile cannot take the changes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("the profile read is not a JSON object")]
    NotAnObject,
    #[error("the profile's {0} is not a JSON object, so {1} cannot be set in it")]
    ParentNotAnObject(String, &'static str),
}

/// The value under a key found without regard to case, preferring the exact spelling.
fn get<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object
        .get(key)
        .or_else(|| object.iter().find(|(existing, _)| existing.eq_ignore_ascii_case(key)).map(|(_, value)| value))
}

/// The spelling a key has in the object when it is there in another case than `key`'s; `None` when it is there as
/// spelled, or absent (a read found without regard to case needs no copy of the key: only a write to one does).
fn respelled(object: &Map<String, Value>, key: &str) -> Option<String> {
    if object.contains_key(key) {
        return None;
    }
    object.keys().find(|existing| existing.eq_ignore_ascii_case(key)).cloned()
}

/// The value under a key found without regard to case (the spelling read kept), for writing; `None` when absent.
fn get_mut<'a>(object: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Value> {
    match respelled(object, key) {
        Some(spelling) => object.get_mut(&spelling),
        None => object.get_mut(key),
    }
}

/// Puts a value under a key found without regard to case (the spelling read kept, and the key's place), or under
/// `key` at the end when absent.
fn put(object: &mut Map<String, Value>, key: &str, value: Value) {
    match get_mut(object, key) {
        Some(slot) => *slot = value,
        None => {
            object.insert(key.to_string(), value);
        }
    }
}

/// What a change does to the value at its path.
enum Target {
    Put(Value),
    Remove,
}

/// What a change asks the value at its path to become, given what is there now; `None` when it already holds.
fn wanted(edit: &Edit, current: Option<&Value>) -> Option<Target> {
    match (edit, current) {
        (Edit::Set(value), Some(Value::String(existing))) if existing == value => None,
        (Edit::Set(value), _) => Some(Target::Put(Value::String(value.clone()))),
        // Absent, null or already empty: cleared already.
        (Edit::Clear, None | Some(Value::Null)) => None,
        (Edit::Clear, Some(Value::String(existing))) if existing.is_empty() => None,
        (Edit::Clear, Some(_)) => Some(Target::Put(Value::String(String::new()))),
        // The key was absent: remove it.
        (Edit::Restore(None), None) => None,
        (Edit::Restore(None), Some(_)) => Some(Target::Remove),
        // A null before-value of a state file that did not tell absent from null: an absent field holds it too.
        (Edit::Restore(Some(Value::Null)), None | Some(Value::Null)) => None,
        (Edit::Restore(Some(value)), Some(existing)) if existing == value => None,
        (Edit::Restore(Some(value)), _) => Some(Target::Put(value.clone())),
    }
}

/// Applies one change to `profile` in place; returns the field change when the value differed.
fn apply(profile: &mut Value, change: &Change) -> Result<Option<FieldChange>, MergeError> {
    let Some((leaf, parents)) = change.field.path.split_last() else {
        return Ok(None);
    };
    // Clearing, removing (or restoring null) needs no parent: an absent or null one is left as it is, not made.
    let makes_parents = !matches!(change.edit, Edit::Clear | Edit::Restore(None | Some(Value::Null)));
    let mut object = profile.as_object_mut().ok_or(MergeError::NotAnObject)?;
    for (depth, parent) in parents.iter().enumerate() {
        let absent = get(object, parent).is_none_or(Value::is_null);
        if absent && !makes_parents {
            return Ok(None);
        }
        if absent {
            // Setting a field of an absent (or null) parent adds the parent.
            put(object, parent, Value::Object(Map::new()));
        }
        object = get_mut(object, parent)
            .and_then(Value::as_object_mut)
            .ok_or_else(|| MergeError::ParentNotAnObject(parents[..=depth].join("."), change.field.name))?;
    }
    let current = get(object, leaf);
    let Some(target) = wanted(&change.edit, current) else {
        return Ok(None);
    };
    let before = current.cloned();
    let after = match target {
        Target::Put(after) => {
            put(object, leaf, after.clone());
            Some(after)
        }
        // Every spelling of the key goes (it was absent in all of them, as `get` looks); shifted out, not swapped,
        // so every other key keeps its place and the profile reads as it did before the job.
        Target::Remove if before.is_some() => {
            object.retain(|existing, _| !existing.eq_ignore_ascii_case(leaf));
            None
        }
        Target::Remove => return Ok(None),
    };
    Ok(Some(FieldChange { field: change.field.name, before, after }))
}

/// Merges a row's changes into a profile as read.
pub fn merge(mut profile: Value, changes: &[Change]) -> Result<Merged, MergeError> {
    if !profile.is_object() {
        return Err(MergeError::NotAnObject);
    }
    // Cheap first pass: most re-reads after a crash, and every unchanged row, end here without a write.
    if changes.iter().all(|change| holds(&profile, change)) {
        return Ok(Merged::Unchanged);
    }
    let mut field_changes = Vec::new();
    for change in changes {
        if let Some(field_change) = apply(&mut profile, change)? {
            field_changes.push(field_change);
        }
    }
    if field_changes.is_empty() {
        return Ok(Merged::Unchanged);
    }
    Ok(Merged::Changed { profile, changes: field_changes })
}

/// Whether the profile already holds what the change asks.
pub fn holds(profile: &Value, change: &Change) -> bool {
    let mut current = Some(profile);
    for key in change.field.path {
        current = match current {
            Some(Value::Object(object)) => get(object, key),
            // A null or absent parent holds nothing: a clear holds, a set does not.
            _ => None,
        };
    }
    wanted(&change.edit, current).is_none()
}

/// The value at a field's path in a profile, `None` when a key on the way is absent; keys found without regard to
/// case.
pub fn slot_at(profile: &Value, path: &[&str]) -> Option<Value> {
    let mut current = profile;
    for key in path {
        let Value::Object(object) = current else { return None };
        current = get(object, key)?;
    }
    Some(current.clone())
}

/// The value at a field's path in a profile (`Null` when absent), keys found without regard to case.
pub fn value_at(profile: &Value, path: &[&str]) -> Value {
    let mut current = profile;
    for key in path {
        let found = match current {
            Value::Object(object) => get(object, key),
            _ => None,
        };
        match found {
            Some(value) => current = value,
            None => return Value::Null,
        }
    }
    current.clone()
}

/// The etag of a profile as read: `attributes.etag`.
pub fn etag(profile: &Value) -> Option<&str> {
    let attributes = profile.as_object()?.iter().find(|(key, _)| key.eq_ignore_ascii_case("attributes"))?.1;
    attributes.as_object()?.iter().find(|(key, _)| key.eq_ignore_ascii_case("etag"))?.1.as_str()
}

#[cfg(test)]
mod tests;
