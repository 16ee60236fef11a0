//! Pre-flight: the checks Partner Center would make on an address, made before the night starts.
//!
//! Pure: a country's rules (as `GET /v1/countryvalidationrules/{iso2}` answers them) and a merged profile in, the
//! rules the profile breaks out. The rules are applied to the profile as it will be after the merge, not to the CSV
//! row alone: a row that changes only the postal code is checked against the country the profile will have.

use crate::merge::value_at;
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

/// The countries where Partner Center requires a customer's phone number (600051), newer docs included.
pub const PHONE_REQUIRED_COUNTRIES: &[&str] = &[
    "AM", "AZ", "BY", "HU", "KZ", "KG", "MD", "RU", "TJ", "UZ", "UA", "IN", "BR", "ZA", "PL", "AE", "SA", "TR", "TH",
    "VN", "MM", "IQ", "SS", "VE",
];

/// A country's rules as the service sends them (the fields pre-flight uses).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct CountryRules {
    pub country_code: String,
    pub is_state_required: bool,
    pub is_postal_code_required: bool,
    pub is_city_required: bool,
    pub supported_states_list: Vec<String>,
    pub postal_code_regex: Option<String>,
    pub phone_number_regex: Option<String>,
}

/// Rules ready to check: the service's regexes compiled (one that does not compile is skipped and said so).
#[derive(Clone, Debug)]
pub struct Checks {
    rules: CountryRules,
    postal_code: Option<Regex>,
    phone_number: Option<Regex>,
    /// Regexes of the service that this program cannot use, in words.
    pub skipped: Vec<String>,
}

impl Checks {
    pub fn new(rules: CountryRules) -> Checks {
        let mut skipped = Vec::new();
        let mut compile = |name: &str, pattern: &Option<String>| {
            let pattern = pattern.as_deref().filter(|pattern| !pattern.trim().is_empty())?;
            match Regex::new(pattern) {
                Ok(regex) => Some(regex),
                Err(_) => {
                    skipped.push(format!("the service's {name} pattern {pattern:?} cannot be checked here"));
                    None
                }
            }
        };
        let postal_code = compile("postal code", &rules.postal_code_regex);
        let phone_number = compile("phone number", &rules.phone_number_regex);
        Checks { rules, postal_code, phone_number, skipped }
    }

    pub fn country(&self) -> &str {
        &self.rules.country_code
    }
}

/// The text at a path of the address, trimmed; empty when absent, null or not text.
fn text(profile: &Value, key: &str) -> String {
    match value_at(profile, &["defaultAddress", key]) {
        Value::String(text) => text.trim().to_string(),
        _ => String::new(),
    }
}

/// The country of a merged profile's address, upper-case; empty when it has none.
pub fn country_of(profile: &Value) -> String {
    text(profile, "country").to_ascii_uppercase()
}

/// The rules a merged profile's address breaks, each in words; empty when it passes.
pub fn check(profile: &Value, checks: &Checks) -> Vec<String> {
    let country = country_of(profile);
    let mut broken = Vec::new();
    let (city, state, postal, phone, region) = (
        text(profile, "city"),
        text(profile, "state"),
        text(profile, "postalCode"),
        text(profile, "phoneNumber"),
        text(profile, "region"),
    );
    if checks.rules.is_city_required && city.is_empty() {
        broken.push(format!("city is required in {country}"));
    }
    if checks.rules.is_state_required && state.is_empty() {
        broken.push(format!("state is required in {country}"));
    }
    let states = &checks.rules.supported_states_list;
    if !state.is_empty() && !states.is_empty() && !states.iter().any(|known| known.eq_ignore_ascii_case(&state)) {
        broken.push(format!("state \"{state}\" is not one of {country}'s states"));
    }
    if checks.rules.is_postal_code_required && postal.is_empty() {
        broken.push(format!("postal code is required in {country}"));
    }
    if let Some(regex) = &checks.postal_code
        && !postal.is_empty()
        && !regex.is_match(&postal)
    {
        broken.push(format!("postal code \"{postal}\" does not match {country}'s format ({})", regex.as_str()));
    }
    if phone.is_empty() && PHONE_REQUIRED_COUNTRIES.contains(&country.as_str()) {
        broken.push(format!("a phone number is required for customers in {country} (error 600051)"));
    }
    if let Some(regex) = &checks.phone_number
        && !phone.is_empty()
        && !regex.is_match(&phone)
    {
        broken.push(format!("phone number \"{phone}\" does not match {country}'s format ({})", regex.as_str()));
    }
    if !region.is_empty() && crate::fields::region_refused_in(&country) {
        broken.push(format!("a region on a {country} address is refused (error 27002)"));
    }
    broken
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn us() -> Checks {
        Checks::new(CountryRules {
            country_code: "US".into(),
            is_state_required: true,
            is_postal_code_required: true,
            is_city_required: true,
            supported_states_list: vec!["WA".into(), "TX".into()],
            postal_code_regex: Some(r"^[0-9]{5}(-[0-9]{4})?$".into()),
            phone_number_regex: Some(r"^[0-9 ()+-]{10,}$".into()),
        })
    }

    fn address(fields: Value) -> Value {
        json!({"id": "x", "defaultAddress": fields})
    }

    #[test]
    fn a_good_address_passes() {
        let profile = address(json!({"country": "US", "city": "Seattle", "state": "WA", "postalCode": "98109"}));
        assert!(check(&profile, &us()).is_empty());
    }

    #[test]
    fn each_rule_is_named() {
        let profile = address(
            json!({"country": "US", "city": "", "state": "ZZ", "postalCode": "9810", "region": "West", "phoneNumber": "12"}),
        );
        let broken = check(&profile, &us()).join("; ");
        for expected in [
            "city is required in US",
            "state \"ZZ\" is not one of US's states",
            "postal code \"9810\" does not match US's format",
            "phone number \"12\" does not match",
            "a region on a US address is refused (error 27002)",
        ] {
            assert!(broken.contains(expected), "{expected} in {broken}");
        }
    }

    #[test]
    fn a_phone_is_required_where_partner_center_requires_one() {
        let checks = Checks::new(CountryRules { country_code: "IN".into(), ..CountryRules::default() });
        let without = address(json!({"country": "IN", "city": "Bengaluru"}));
        assert_eq!(check(&without, &checks), ["a phone number is required for customers in IN (error 600051)"]);
        let with = address(json!({"country": "in", "city": "Bengaluru", "phoneNumber": "+91 9876543210"}));
        assert!(check(&with, &checks).is_empty());
    }

    #[test]
    fn a_pattern_this_regex_engine_cannot_read_is_skipped_and_said() {
        let checks = Checks::new(CountryRules {
            country_code: "US".into(),
            postal_code_regex: Some(r"^(?=\d)\d{5}$".into()),
            ..CountryRules::default()
        });
        assert_eq!(checks.skipped.len(), 1);
        assert!(check(&address(json!({"country": "US", "postalCode": "x"})), &checks).is_empty());
    }

    #[test]
    fn the_service_shape_is_read() {
        let rules: CountryRules = serde_json::from_value(json!({
            "countryCode": "CA", "isStateRequired": true, "supportedStatesList": ["ON"], "postalCodeRegex": "^x$",
            "supportedCulturesList": ["en-CA"], "attributes": {"objectType": "CountryValidationRules"}
        }))
        .unwrap();
        assert_eq!(rules.country_code, "CA");
        assert!(rules.is_state_required && !rules.is_city_required);
    }
}
