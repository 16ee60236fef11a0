//! Profile bodies as JSON: the case-insensitive reading of PUT bodies, the service's rules on a customer billing
//! profile, and the comparison of a PUT body with the stored profile (fields dropped, unmodeled fields altered).
//!
//! Pure: no I/O, no state.

use super::rules::is_phone_required;
use serde_json::{Map, Value};

/// A refusal of a PUT body: an HTTP 400 with this code and description.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub code: i64,
    pub description: String,
    /// The JSON path of the offending field.
    pub field: String,
}

/// "Invalid property".
pub(crate) const CODE_INVALID_PROPERTY: i64 = 3000;
/// "A property has invalid data".
pub(crate) const CODE_INVALID_DATA: i64 = 27002;
/// The longest code in any country's `supportedStatesList` (AU: `NSW`).
const STATE_CODE_MAX: usize = 3;

/// Phone number missing where it is mandatory.
pub(crate) const CODE_PHONE_REQUIRED: i64 = 600051;

impl Invalid {
    fn new(code: i64, field: &str, detail: &str) -> Invalid {
        let headline = match code {
            CODE_INVALID_DATA => "A property has invalid data",
            CODE_PHONE_REQUIRED => "Phone number is required for customers in this country",
            _ => "Invalid property",
        };
        Invalid { code, description: format!("{headline}: {field} {detail}"), field: field.to_string() }
    }
}

/// The paths of a customer billing profile that the SDKs (and pcbulk) model. Every other path, outside `links` and
/// `attributes`, is "unmodeled": a faithful client sends it back unchanged.
const MODELED_PATHS: &[&str] = &[
    "id",
    "firstName",
    "lastName",
    "email",
    "culture",
    "language",
    "companyName",
    "defaultAddress",
    "defaultAddress.country",
    "defaultAddress.region",
    "defaultAddress.city",
    "defaultAddress.state",
    "defaultAddress.addressLine1",
    "defaultAddress.addressLine2",
    "defaultAddress.addressLine3",
    "defaultAddress.postalCode",
    "defaultAddress.firstName",
    "defaultAddress.lastName",
    "defaultAddress.phoneNumber",
];

/// The counter someone else's edit increments.
pub(crate) const EDITS_BY_SOMEONE_ELSE: &str = "extensions.editsBySomeoneElse";

fn is_unmodeled(path: &str) -> bool {
    !(MODELED_PATHS.contains(&path) || path.starts_with("links") || path.starts_with("attributes"))
}

/// Rewrites the keys of `body` (at any depth) to the spelling of `reference`'s keys where they match without regard
/// to case, else to camelCase (first letter lower-cased): the service reads keys case-insensitively.
pub(crate) fn normalise_keys(body: Value, reference: Option<&Value>) -> Value {
    match body {
        Value::Object(fields) => {
            let reference = reference.and_then(Value::as_object);
            let mut normalised = Map::with_capacity(fields.len());
            for (key, value) in fields {
                let key = canonical_key(reference, key);
                let child_reference = reference.and_then(|reference| reference.get(&key));
                normalised.insert(key, normalise_keys(value, child_reference));
            }
            Value::Object(normalised)
        }
        other => other,
    }
}

/// The reference's spelling of `key` (an exact match first: the common case costs one lookup), else camelCase.
fn canonical_key(reference: Option<&Map<String, Value>>, key: String) -> String {
    let Some(reference) = reference else {
        return camel_case(&key);
    };
    if reference.contains_key(&key) {
        return key;
    }
    match reference.keys().find(|known| known.eq_ignore_ascii_case(&key)) {
        Some(known) => known.clone(),
        None => camel_case(&key),
    }
}

fn camel_case(key: &str) -> String {
    let mut chars = key.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Checks a customer billing profile body (keys already normalised) the way the service does.
pub(crate) fn check_customer_billing(body: &Map<String, Value>) -> Result<(), Invalid> {
    check_length(body, "", "firstName", 1, 50)?;
    check_length(body, "", "lastName", 1, 50)?;
    let Some(address) = body.get("defaultAddress").and_then(Value::as_object) else {
        return Err(Invalid::new(CODE_INVALID_PROPERTY, "defaultAddress", "is required and must be an object"));
    };
    let country = match address.get("country") {
        Some(Value::String(country)) if is_iso_country(country) => country.to_ascii_uppercase(),
        _ => {
            return Err(Invalid::new(
                CODE_INVALID_PROPERTY,
                "defaultAddress.country",
                "must be an ISO 3166-1 alpha-2 country code",
            ));
        }
    };
    if country == "US" && address.get("region").and_then(Value::as_str).is_some_and(|region| !region.is_empty()) {
        return Err(Invalid::new(CODE_INVALID_DATA, "defaultAddress.region", "must not be set on a US address"));
    }
    check_length(address, "defaultAddress.", "addressLine1", 1, 200)?;
    // `state`: the codes of the country rules' `supportedStatesList`, three letters at most (AU's `NSW`).
    for (key, min, max) in [("addressLine2", 0, 200), ("addressLine3", 0, 200), ("state", 0, STATE_CODE_MAX)] {
        check_optional_length(address, "defaultAddress.", key, min, max)?;
    }
    for key in ["firstName", "lastName"] {
        check_optional_length(address, "defaultAddress.", key, 1, 50)?;
    }
    let phone = address.get("phoneNumber").and_then(Value::as_str).map(str::trim).unwrap_or_default();
    if phone.is_empty() && is_phone_required(&country) {
        return Err(Invalid::new(
            CODE_PHONE_REQUIRED,
            "defaultAddress.phoneNumber",
            &format!("is required in {country}"),
        ));
    }
    Ok(())
}

/// A required string of `min..=max` characters.
fn check_length(object: &Map<String, Value>, prefix: &str, key: &str, min: usize, max: usize) -> Result<(), Invalid> {
    match object.get(key) {
        Some(Value::String(text)) if (min..=max).contains(&text.chars().count()) => Ok(()),
        _ => Err(Invalid::new(
            CODE_INVALID_DATA,
            &format!("{prefix}{key}"),
            &format!("must be {min} to {max} characters"),
        )),
    }
}

/// An optional string (absent or `null` is fine) of `min..=max` characters.
fn check_optional_length(
    object: &Map<String, Value>,
    prefix: &str,
    key: &str,
    min: usize,
    max: usize,
) -> Result<(), Invalid> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(_) => check_length(object, prefix, key, min, max),
    }
}

/// ISO 3166-1 alpha-2, every officially assigned code.
const ISO_COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ \
BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI \
FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT \
JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ \
MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS \
RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA \
UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

fn is_iso_country(code: &str) -> bool {
    code.len() == 2 && code.chars().all(|c| c.is_ascii_alphabetic()) && {
        let upper = code.to_ascii_uppercase();
        ISO_COUNTRIES.split(' ').any(|known| known == upper)
    }
}

/// What a PUT body does to the stored profile's fields.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Comparison {
    /// Paths present in the stored profile and absent from the body (the shallowest absent path of each subtree).
    pub dropped: Vec<String>,
    /// Unmodeled paths (leaves, or arrays as a whole) whose value the body changes.
    pub unmodeled_altered: Vec<String>,
    /// The body overwrites someone else's edit (`extensions.editsBySomeoneElse` differs from the stored one).
    pub lost_edit: bool,
}

/// Compares a PUT body (keys normalised) with the stored profile.
pub(crate) fn compare(stored: &Value, body: &Value) -> Comparison {
    let mut comparison = Comparison::default();
    compare_at(stored, body, "", &mut comparison);
    let stored_edits = get_path(stored, EDITS_BY_SOMEONE_ELSE);
    comparison.lost_edit = stored_edits.is_some() && stored_edits != get_path(body, EDITS_BY_SOMEONE_ELSE);
    comparison
}

fn compare_at(stored: &Value, body: &Value, prefix: &str, comparison: &mut Comparison) {
    let Value::Object(stored_fields) = stored else {
        return;
    };
    for (key, stored_value) in stored_fields {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match body.get(key) {
            None => comparison.dropped.push(path),
            Some(body_value) if stored_value.is_object() && body_value.is_object() => {
                compare_at(stored_value, body_value, &path, comparison);
            }
            Some(body_value) => {
                if body_value != stored_value && is_unmodeled(&path) {
                    comparison.unmodeled_altered.push(path);
                }
            }
        }
    }
}

/// The value at a dot-separated path.
pub(crate) fn get_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |value, key| value.get(key))
}

/// Sets the value at a dot-separated path, creating the objects on the way; `false` when a non-object is in the way.
pub(crate) fn set_path(value: &mut Value, path: &str, new_value: Value) -> bool {
    let mut keys: Vec<&str> = path.split('.').collect();
    let Some(last) = keys.pop() else {
        return false;
    };
    let mut current = value;
    for key in keys {
        let Some(object) = current.as_object_mut() else {
            return false;
        };
        current = object.entry(key.to_string()).or_insert_with(|| Value::Object(Map::new()));
    }
    match current.as_object_mut() {
        Some(object) if !last.is_empty() => {
            object.insert(last.to_string(), new_value);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn profile() -> Value {
        json!({
            "id": "c1", "firstName": "Ann", "lastName": "Lee", "email": "a@b.c", "customerType": "business",
            "defaultAddress": {"country": "US", "region": null, "city": "Redmond", "state": "WA",
                "addressLine1": "1 Main St", "postalCode": "98052", "firstName": "Ann", "lastName": "Lee",
                "phoneNumber": "4255550100", "district": "North"},
            "extensions": {"segment": "smb", "tags": ["a"], "editsBySomeoneElse": 0},
            "attributes": {"etag": "1", "objectType": "CustomerBillingProfile"}
        })
    }

    fn check(body: &Value) -> Result<(), Invalid> {
        check_customer_billing(body.as_object().unwrap_or(&Map::new()))
    }

    #[test]
    fn keys_are_read_without_regard_to_case() {
        let stored = profile();
        let body = json!({"FirstName": "Bo", "DefaultAddress": {"City": "X", "NewKey": 1}, "Extensions": {"EditsBySomeoneElse": 0}});
        let normalised = normalise_keys(body, Some(&stored));
        assert_eq!(
            normalised,
            json!({"firstName": "Bo", "defaultAddress": {"city": "X", "newKey": 1}, "extensions": {"editsBySomeoneElse": 0}})
        );
    }

    #[test]
    fn a_valid_profile_passes_and_rules_are_enforced() {
        assert_eq!(check(&profile()), Ok(()));
        let mut body = profile();
        set_path(&mut body, "defaultAddress.region", json!("West"));
        assert_eq!(check(&body).map_err(|e| e.code), Err(CODE_INVALID_DATA));
        for (path, value) in [("defaultAddress.country", json!("UK")), ("defaultAddress.country", json!("USA"))] {
            let mut body = profile();
            set_path(&mut body, path, value);
            assert_eq!(check(&body).map_err(|e| e.code), Err(CODE_INVALID_PROPERTY));
        }
        for (path, value) in [
            ("defaultAddress.state", json!("WASH")),
            ("firstName", json!("")),
            ("defaultAddress.addressLine1", json!("")),
        ] {
            let mut body = profile();
            set_path(&mut body, path, value);
            assert_eq!(check(&body).map_err(|e| e.field), Err(path.to_string()));
        }
    }

    #[test]
    fn india_requires_a_phone_number() {
        let mut body = profile();
        set_path(&mut body, "defaultAddress.country", json!("IN"));
        set_path(&mut body, "defaultAddress.phoneNumber", json!(""));
        assert_eq!(check(&body).map_err(|e| e.code), Err(CODE_PHONE_REQUIRED));
    }

    #[test]
    fn a_faithful_body_drops_nothing() {
        let stored = profile();
        let mut body = stored.clone();
        set_path(&mut body, "defaultAddress.city", json!("Seattle"));
        assert_eq!(compare(&stored, &body), Comparison::default());
    }

    #[test]
    fn dropped_and_altered_fields_are_found() {
        let stored = profile();
        let mut body = stored.clone();
        if let Some(address) = body["defaultAddress"].as_object_mut() {
            address.remove("district");
        }
        body.as_object_mut().map(|fields| fields.remove("attributes"));
        set_path(&mut body, "extensions.segment", json!("enterprise"));
        let comparison = compare(&stored, &body);
        assert_eq!(comparison.dropped, vec!["defaultAddress.district", "attributes"]);
        assert_eq!(comparison.unmodeled_altered, vec!["extensions.segment"]);
        assert!(!comparison.lost_edit);
        set_path(&mut body, EDITS_BY_SOMEONE_ELSE, json!(5));
        assert!(compare(&stored, &body).lost_edit);
    }

    #[test]
    fn paths_are_set_and_read() {
        let mut value = json!({"a": {"b": 1}, "n": 2});
        assert!(set_path(&mut value, "a.c.d", json!(true)));
        assert_eq!(get_path(&value, "a.c.d"), Some(&json!(true)));
        assert!(!set_path(&mut value, "n.x", json!(1)));
    }
}
