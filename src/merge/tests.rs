use super::*;
use crate::fields::{self, CUSTOMER_BILLING};
use serde_json::json;

fn set(name: &str, value: &str) -> Change {
    Change { field: fields::lookup(CUSTOMER_BILLING, name).unwrap(), edit: Edit::Set(value.to_string()) }
}

fn clear(name: &str) -> Change {
    Change { field: fields::lookup(CUSTOMER_BILLING, name).unwrap(), edit: Edit::Clear }
}

fn profile() -> Value {
    json!({
        "id": "c1",
        "firstName": "Ana",
        "email": "old@contoso.com",
        "defaultAddress": {
            "country": "US",
            "region": null,
            "city": "Redmond",
            "addressLine1": "1 Microsoft Way",
            "district": "King",
            "id": "addr-1"
        },
        "extensions": {"tags": ["a", "b"], "editsBySomeoneElse": 3},
        "links": {"self": {"uri": "/customers/c1/profiles/billing"}},
        "attributes": {"etag": "-2279334701316321663", "objectType": "CustomerBillingProfile"}
    })
}

fn changed(merged: Merged) -> (Value, Vec<FieldChange>) {
    match merged {
        Merged::Changed { profile, changes } => (profile, changes),
        Merged::Unchanged => panic!("expected a change"),
    }
}

#[test]
fn only_named_fields_change_and_order_is_kept() {
    let (merged, changes) = changed(merge(profile(), &[set("defaultAddress.city", "Seattle")]).unwrap());
    let mut expected = profile();
    expected["defaultAddress"]["city"] = json!("Seattle");
    assert_eq!(merged, expected);
    assert_eq!(serde_json::to_string(&merged).unwrap(), serde_json::to_string(&expected).unwrap());
    assert_eq!(
        changes,
        [FieldChange { field: "defaultAddress.city", before: Some(json!("Redmond")), after: Some(json!("Seattle")) }]
    );
}

#[test]
fn a_row_already_in_place_is_unchanged() {
    let changes =
        [set("email", "old@contoso.com"), set("defaultAddress.country", "US"), clear("defaultAddress.region")];
    assert_eq!(merge(profile(), &changes).unwrap(), Merged::Unchanged);
}

#[test]
fn clear_empties_a_value_and_leaves_absent_or_null_alone() {
    let (merged, changes) = changed(
        merge(profile(), &[clear("defaultAddress.city"), clear("defaultAddress.region"), clear("lastName")]).unwrap(),
    );
    assert_eq!(merged["defaultAddress"]["city"], json!(""));
    assert_eq!(merged["defaultAddress"]["region"], Value::Null);
    assert!(merged.get("lastName").is_none());
    assert_eq!(changes.len(), 1);
}

#[test]
fn setting_an_absent_field_adds_it_even_in_an_absent_address() {
    let (merged, changes) =
        changed(merge(json!({"id": "x"}), &[set("defaultAddress.addressLine2", "Suite 5")]).unwrap());
    assert_eq!(merged, json!({"id": "x", "defaultAddress": {"addressLine2": "Suite 5"}}));
    assert_eq!(changes[0].before, None, "absent, not null");
}

#[test]
fn keys_are_found_without_regard_to_case_and_keep_their_spelling() {
    let read = json!({"DefaultAddress": {"City": "Paris"}, "Attributes": {"Etag": "e1"}});
    let (merged, _) = changed(merge(read.clone(), &[set("defaultAddress.city", "Lyon")]).unwrap());
    assert_eq!(merged, json!({"DefaultAddress": {"City": "Lyon"}, "Attributes": {"Etag": "e1"}}));
    assert_eq!(etag(&read), Some("e1"));
}

#[test]
fn a_parent_that_is_not_an_object_is_an_error() {
    let read = json!({"defaultAddress": "1 Main St"});
    let error = merge(read.clone(), &[set("defaultAddress.city", "Lyon")]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the profile's defaultAddress is not a JSON object, so defaultAddress.city cannot be set in it"
    );
    assert_eq!(merge(json!([1]), &[set("email", "a@b.co")]).unwrap_err(), MergeError::NotAnObject);
}

#[test]
fn a_non_string_value_is_replaced() {
    let (merged, changes) = changed(merge(json!({"companyName": 42}), &[set("companyName", "42")]).unwrap());
    assert_eq!(merged["companyName"], json!("42"));
    assert_eq!(changes[0].before, Some(json!(42)));
}

#[test]
fn value_at_reads_paths() {
    assert_eq!(value_at(&profile(), &["defaultAddress", "city"]), json!("Redmond"));
    assert_eq!(value_at(&profile(), &["defaultAddress", "nothing"]), Value::Null);
    assert_eq!(value_at(&profile(), &["email", "deeper"]), Value::Null);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Keys that collide with the catalog (in any case) as well as keys pcbulk does not know.
    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("defaultAddress".to_string()),
            Just("DefaultAddress".to_string()),
            Just("city".to_string()),
            Just("City".to_string()),
            Just("email".to_string()),
            Just("region".to_string()),
            Just("country".to_string()),
            "[a-zA-Z]{1,8}",
        ]
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[ -~]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                proptest::collection::vec((key(), inner), 0..6)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
    }

    fn profile() -> impl Strategy<Value = Value> {
        proptest::collection::vec((key(), json_value()), 0..8)
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect()))
    }

    fn changes() -> impl Strategy<Value = Vec<Change>> {
        let edit = prop_oneof![
            Just(Edit::Clear),
            "[ -~]{0,6}".prop_map(Edit::Set),
            proptest::option::of(json_value()).prop_map(Edit::Restore),
        ];
        let change = (0..CUSTOMER_BILLING.len(), edit)
            .prop_map(|(index, edit)| Change { field: &CUSTOMER_BILLING[index], edit });
        proptest::collection::vec(change, 0..5).prop_map(|mut changes| {
            // A row names each field once: the CSV reader refuses a repeated column.
            let mut seen = std::collections::HashSet::new();
            changes.retain(|change| seen.insert(change.field.name));
            changes
        })
    }

    /// Every (path, leaf value) of a JSON value; objects are walked, anything else is a leaf.
    fn leaves(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<(Vec<String>, Value)>) {
        match value {
            Value::Object(object) if !object.is_empty() => {
                for (key, child) in object {
                    prefix.push(key.clone());
                    leaves(child, prefix, out);
                    prefix.pop();
                }
            }
            other => out.push((prefix.clone(), other.clone())),
        }
    }

    fn get<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
        path.iter().try_fold(value, |current, key| current.as_object()?.get(key))
    }

    /// Whether a path is named by a change (case-insensitively), leads to one, or lies inside one (a named field
    /// holding an object is replaced whole by the string the row sets).
    fn touched(path: &[String], changes: &[Change]) -> bool {
        changes
            .iter()
            .any(|change| path.iter().zip(change.field.path).all(|(key, name)| key.eq_ignore_ascii_case(name)))
    }

    /// Whether a path is touched ([`touched`]) by a change that writes a value: only such a change may add a key (a
    /// clear, or a restore of absent or null, adds no parent for the field it leaves empty).
    fn made(path: &[String], changes: &[Change]) -> bool {
        let writes = |edit: &Edit| match edit {
            Edit::Set(_) => true,
            Edit::Restore(value) => value.as_ref().is_some_and(|value| !value.is_null()),
            Edit::Clear => false,
        };
        changes.iter().filter(|change| writes(&change.edit)).any(|change| touched(path, std::slice::from_ref(change)))
    }

    proptest! {
        #[test]
        fn merge_never_touches_a_path_the_row_does_not_name(read in profile(), changes in changes()) {
            let Ok(Merged::Changed { profile: merged, .. }) = merge(read.clone(), &changes) else { return Ok(()); };
            let mut before = Vec::new();
            leaves(&read, &mut Vec::new(), &mut before);
            for (path, value) in before {
                if !touched(&path, &changes) {
                    prop_assert_eq!(get(&merged, &path), Some(&value), "path {:?}", path);
                }
            }
            let mut after = Vec::new();
            leaves(&merged, &mut Vec::new(), &mut after);
            for (path, _) in after {
                prop_assert!(get(&read, &path).is_some() || made(&path, &changes), "new path {:?}", path);
            }
        }

        #[test]
        fn merging_twice_equals_merging_once(read in profile(), changes in changes()) {
            match merge(read.clone(), &changes) {
                Ok(Merged::Changed { profile: merged, .. }) => {
                    prop_assert_eq!(merge(merged.clone(), &changes), Ok(Merged::Unchanged));
                    for change in &changes {
                        prop_assert!(holds(&merged, change));
                    }
                }
                Ok(Merged::Unchanged) => {
                    for change in &changes {
                        prop_assert!(holds(&read, change));
                    }
                }
                Err(_) => {}
            }
        }
    }
}

#[test]
fn restore_puts_back_a_value_and_a_legacy_null_means_absent_or_null() {
    let field = |name| fields::lookup(CUSTOMER_BILLING, name).unwrap();
    let restore = |name, value: Value| Change { field: field(name), edit: Edit::Restore(Some(value)) };
    let (merged, changes) = changed(
        merge(profile(), &[restore("defaultAddress.city", json!("Bellevue")), restore("email", Value::Null)]).unwrap(),
    );
    assert_eq!(merged["defaultAddress"]["city"], json!("Bellevue"));
    assert_eq!(merged["email"], Value::Null);
    let email = FieldChange { field: "email", before: Some(json!("old@contoso.com")), after: Some(Value::Null) };
    assert_eq!(changes[1], email);
    // Absent, or null, already holds a null before-value; an absent parent is not made for it.
    let in_place = [restore("lastName", Value::Null), restore("defaultAddress.region", Value::Null)];
    assert_eq!(merge(profile(), &in_place).unwrap(), Merged::Unchanged);
    let no_address = json!({"id": "c1"});
    assert_eq!(merge(no_address.clone(), &[restore("defaultAddress.city", Value::Null)]).unwrap(), Merged::Unchanged);
}

#[test]
fn restoring_an_absent_key_removes_it_and_keeps_the_order_of_the_rest() {
    let field = |name| fields::lookup(CUSTOMER_BILLING, name).unwrap();
    let remove = |name| Change { field: field(name), edit: Edit::Restore(None) };
    let read = json!({"id": "c1", "email": "new@contoso.com", "culture": "en-US"});
    let (merged, changes) = changed(merge(read.clone(), &[remove("email")]).unwrap());
    assert_eq!(serde_json::to_string(&merged).unwrap(), r#"{"id":"c1","culture":"en-US"}"#);
    assert_eq!(changes, [FieldChange { field: "email", before: Some(json!("new@contoso.com")), after: None }]);
    assert_eq!(merge(merged.clone(), &[remove("email"), remove("defaultAddress.city")]).unwrap(), Merged::Unchanged);
}

#[test]
fn clearing_a_field_of_an_absent_or_null_parent_beside_a_set_makes_no_parent() {
    let remove =
        Change { field: fields::lookup(CUSTOMER_BILLING, "defaultAddress.city").unwrap(), edit: Edit::Restore(None) };
    let changes = [set("email", "new@contoso.com"), clear("defaultAddress.region"), remove];
    let (merged, written) = changed(merge(json!({"id": "x", "email": "old@contoso.com"}), &changes).unwrap());
    // Not `"defaultAddress": null`: the PUT sends back only what was read, plus what the row sets.
    assert_eq!(serde_json::to_string(&merged).unwrap(), r#"{"id":"x","email":"new@contoso.com"}"#);
    assert_eq!(written.len(), 1);
    let (merged, _) = changed(merge(json!({"email": "old@contoso.com", "defaultAddress": null}), &changes).unwrap());
    assert_eq!(serde_json::to_string(&merged).unwrap(), r#"{"email":"new@contoso.com","defaultAddress":null}"#);
}
