//! Country rules and address validation: what `GET /v1/countryvalidationrules/{iso2}` and
//! `POST /v1/validations/address` answer, for US, CA, GB, DE, FR, IN, AU and JP.
//!
//! Pure: no I/O, no state. The regexes served to clients are the ones the validation uses, so the two never disagree.

use regex::Regex;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::LazyLock;

/// The countries where Partner Center requires a customer's phone number (the spec's list, newer docs included).
pub(crate) const PHONE_REQUIRED_COUNTRIES: &[&str] = &[
    "AM", "AZ", "BY", "HU", "KZ", "KG", "MD", "RU", "TJ", "UZ", "UA", "IN", "BR", "ZA", "PL", "AE", "SA", "TR", "TH",
    "VN", "MM", "IQ", "SS", "VE",
];

/// Whether `country` (any case) requires a phone number on a customer's billing profile.
pub(crate) fn is_phone_required(country: &str) -> bool {
    PHONE_REQUIRED_COUNTRIES.iter().any(|code| code.eq_ignore_ascii_case(country))
}

/// The countries whose `state` the address validation checks (the spec: US, CA, CN, MX; of ours, US and CA).
const STATE_CHECKED_COUNTRIES: &[&str] = &["US", "CA"];

/// One country's rules, as the service documents them.
#[derive(Debug)]
pub(crate) struct CountryRules {
    pub code: &'static str,
    pub default_culture: &'static str,
    pub city_required: bool,
    pub postal_code_required: bool,
    pub state_required: bool,
    pub vat_id_supported: bool,
    pub phone_regex: &'static str,
    pub postal_regex: &'static str,
    pub cultures: &'static [&'static str],
    pub languages: &'static [&'static str],
    pub states: &'static [&'static str],
}

const US_STATES: &[&str] = &[
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY", "LA",
    "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR",
    "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY",
];
const CA_PROVINCES: &[&str] = &["AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"];
const IN_STATES: &[&str] = &[
    "AN", "AP", "AR", "AS", "BR", "CH", "CT", "DH", "DL", "GA", "GJ", "HP", "HR", "JH", "JK", "KA", "KL", "LA", "LD",
    "MH", "ML", "MN", "MP", "MZ", "NL", "OR", "PB", "PY", "RJ", "SK", "TG", "TN", "TR", "UP", "UT", "WB",
];
const AU_STATES: &[&str] = &["ACT", "NSW", "NT", "QLD", "SA", "TAS", "VIC", "WA"];

const NANP_PHONE: &str = r"^\+?1?[ .-]?\(?[2-9][0-9]{2}\)?[ .-]?[0-9]{3}[ .-]?[0-9]{4}$";

/// The US phone pattern exactly as the service sends it (microsoft/Partner-Center-PowerShell,
/// `test/PowerShell.UnitTests/SessionRecords/GetPartnerCountryValidation.json`): it refuses `+1 425 555 0100`.
const US_PHONE: &str = r"^(1[ \-\/\.]?)?(\((\d{3})\)|(\d{3}))[ \-\/\.]?(\d{3})[ \-\/\.]?(\d{4})$";

static RULES: &[CountryRules] = &[
    CountryRules {
        code: "US",
        default_culture: "en-US",
        city_required: true,
        postal_code_required: true,
        state_required: true,
        vat_id_supported: false,
        phone_regex: US_PHONE,
        postal_regex: r"^[0-9]{5}(-[0-9]{4})?$",
        cultures: &["en-US", "es-US"],
        languages: &["en", "es"],
        states: US_STATES,
    },
    CountryRules {
        code: "CA",
        default_culture: "en-CA",
        city_required: true,
        postal_code_required: true,
        state_required: true,
        vat_id_supported: false,
        phone_regex: NANP_PHONE,
        postal_regex: r"^[ABCEGHJ-NPRSTVXY][0-9][ABCEGHJ-NPRSTV-Z] ?[0-9][ABCEGHJ-NPRSTV-Z][0-9]$",
        cultures: &["en-CA", "fr-CA"],
        languages: &["en", "fr"],
        states: CA_PROVINCES,
    },
    CountryRules {
        code: "GB",
        default_culture: "en-GB",
        city_required: true,
        postal_code_required: true,
        state_required: false,
        vat_id_supported: true,
        phone_regex: r"^(\+44 ?|0)[1-9][0-9 ]{8,11}$",
        postal_regex: r"^(GIR ?0AA|[A-PR-UWYZ]([0-9]{1,2}|[A-HK-Y][0-9][0-9ABEHMNPRV-Y]?|[0-9][A-HJKPSTUW]) ?[0-9][ABD-HJLNP-UW-Z]{2})$",
        cultures: &["en-GB"],
        languages: &["en"],
        states: &[],
    },
    CountryRules {
        code: "DE",
        default_culture: "de-DE",
        city_required: true,
        postal_code_required: true,
        state_required: false,
        vat_id_supported: true,
        phone_regex: r"^(\+49 ?|0)[1-9][0-9 /-]{5,14}$",
        postal_regex: r"^[0-9]{5}$",
        cultures: &["de-DE", "en-US"],
        languages: &["de", "en"],
        states: &[],
    },
    CountryRules {
        code: "FR",
        default_culture: "fr-FR",
        city_required: true,
        postal_code_required: true,
        state_required: false,
        vat_id_supported: true,
        phone_regex: r"^(\+33 ?|0)[1-9]( ?[0-9]{2}){4}$",
        postal_regex: r"^[0-9]{5}$",
        cultures: &["fr-FR", "en-US"],
        languages: &["fr", "en"],
        states: &[],
    },
    CountryRules {
        code: "IN",
        default_culture: "en-IN",
        city_required: true,
        postal_code_required: true,
        state_required: true,
        vat_id_supported: true,
        phone_regex: r"^(\+91[ -]?)?0?[6-9][0-9]{9}$",
        postal_regex: r"^[1-9][0-9]{5}$",
        cultures: &["en-IN", "hi-IN"],
        languages: &["en", "hi"],
        states: IN_STATES,
    },
    CountryRules {
        code: "AU",
        default_culture: "en-AU",
        city_required: true,
        postal_code_required: true,
        state_required: true,
        vat_id_supported: true,
        phone_regex: r"^(\+61 ?|0)[2-478]( ?[0-9]){8}$",
        postal_regex: r"^[0-9]{4}$",
        cultures: &["en-AU"],
        languages: &["en"],
        states: AU_STATES,
    },
    CountryRules {
        code: "JP",
        default_culture: "ja-JP",
        city_required: true,
        postal_code_required: true,
        state_required: false,
        vat_id_supported: false,
        phone_regex: r"^(\+81 ?|0)[0-9]{1,4}-?[0-9]{1,4}-?[0-9]{4}$",
        postal_regex: r"^[0-9]{3}-?[0-9]{4}$",
        cultures: &["ja-JP", "en-US"],
        languages: &["ja", "en"],
        states: &[],
    },
];

/// The compiled postal code regexes, by country code. The patterns are constants: a failure to compile is a bug.
static POSTAL_REGEXES: LazyLock<HashMap<&'static str, Regex>> = LazyLock::new(|| {
    RULES
        .iter()
        .map(|rules| (rules.code, Regex::new(rules.postal_regex).expect("postal code regexes are valid constants")))
        .collect()
});

/// The rules of `iso2` (any case), if the sandbox knows the country.
pub(crate) fn country_rules(iso2: &str) -> Option<&'static CountryRules> {
    RULES.iter().find(|rules| rules.code.eq_ignore_ascii_case(iso2))
}

impl CountryRules {
    /// The rules in the service's JSON shape: the country under `iso2Code` (the docs' CountryValidationRules resource
    /// and the service's recorded answers), and whether the country requires a customer's phone number.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "iso2Code": self.code,
            "customerOrganizationPhoneNumberRequired": is_phone_required(self.code),
            "defaultCulture": self.default_culture,
            "isCityRequired": self.city_required,
            "isPostalCodeRequired": self.postal_code_required,
            "isStateRequired": self.state_required,
            "isVatIdSupported": self.vat_id_supported,
            "phoneNumberRegex": self.phone_regex,
            "postalCodeRegex": self.postal_regex,
            "supportedCulturesList": self.cultures,
            "supportedLanguagesList": self.languages,
            "supportedStatesList": self.states,
            "attributes": {"objectType": "CountryValidationRules"},
        })
    }

    fn postal_code_matches(&self, postal_code: &str) -> bool {
        POSTAL_REGEXES.get(self.code).is_some_and(|regex| regex.is_match(postal_code))
    }

    fn checks_state(&self) -> bool {
        STATE_CHECKED_COUNTRIES.contains(&self.code)
    }
}

/// The fields `POST /v1/validations/address` requires.
pub(crate) const ADDRESS_REQUIRED_FIELDS: &[&str] = &["addressLine1", "city", "state", "postalCode", "country"];

/// The address fields the validation reads and may normalise.
#[derive(Clone, Debug, PartialEq)]
struct AddressFields {
    address_line1: String,
    city: String,
    state: String,
    postal_code: String,
    country: String,
}

/// Validates an address the way the sandbox's `POST /v1/validations/address` does. Deterministic:
///
/// 1. A country without rules (not one of US, CA, GB, DE, FR, IN, AU, JP) → `NotValidated`.
/// 2. The address is normalised: surrounding and repeated spaces removed; a city written all in lower or all in upper
///    case put in title case; `state`, `country` and the postal code upper-cased; street abbreviations written out
///    (`Str.`/`str.` → `Straße` in DE, `St.` → `Street`, `Ave.` → `Avenue`, `Rd.` → `Road` in US, CA, GB, AU,
///    `Av.` → `Avenue`, `Bd` → `Boulevard` in FR).
/// 3. The normalised address is checked: an empty city where the city is required, a postal code that fails the
///    country's `postalCodeRegex`, or (US and CA only) a state that is empty or not in `supportedStatesList`
///    → `None`, with a message naming the field, and no suggestion.
/// 4. An address that normalisation changed → `StreetPartial`, with the normalised address as the first suggestion.
/// 5. Otherwise → `Verified`, with no suggestion.
///
/// `address` is the request body (its keys already in camelCase); the answer is
/// `{originalAddress, suggestedAddresses, status, validationMessage}`.
pub(crate) fn validate_address(address: &Map<String, Value>) -> Value {
    let original = read_fields(address);
    let Some(rules) = country_rules(original.country.trim()) else {
        return answer(address, None, "NotValidated", "address validation is not available for this country");
    };
    let normalised = normalise(&original, rules);
    if let Some(problem) = find_problem(&normalised, rules) {
        return answer(address, None, "None", &problem);
    }
    if normalised == original {
        return answer(address, None, "Verified", "the address is valid");
    }
    let suggestion = with_fields(address, &normalised);
    answer(address, Some(suggestion), "StreetPartial", "the address was normalised: review the suggested address")
}

fn read_fields(address: &Map<String, Value>) -> AddressFields {
    let text = |key: &str| address.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
    AddressFields {
        address_line1: text("addressLine1"),
        city: text("city"),
        state: text("state"),
        postal_code: text("postalCode"),
        country: text("country"),
    }
}

fn with_fields(address: &Map<String, Value>, fields: &AddressFields) -> Value {
    let mut suggestion = address.clone();
    suggestion.insert("addressLine1".into(), fields.address_line1.clone().into());
    suggestion.insert("city".into(), fields.city.clone().into());
    suggestion.insert("state".into(), fields.state.clone().into());
    suggestion.insert("postalCode".into(), fields.postal_code.clone().into());
    suggestion.insert("country".into(), fields.country.clone().into());
    Value::Object(suggestion)
}

fn answer(original: &Map<String, Value>, suggestion: Option<Value>, status: &str, message: &str) -> Value {
    json!({
        "originalAddress": original,
        "suggestedAddresses": suggestion.into_iter().collect::<Vec<_>>(),
        "status": status,
        "validationMessage": message,
    })
}

fn find_problem(address: &AddressFields, rules: &CountryRules) -> Option<String> {
    let country = rules.code;
    if rules.city_required && address.city.is_empty() {
        return Some(format!("the city is required in {country}"));
    }
    if (rules.postal_code_required || !address.postal_code.is_empty())
        && !rules.postal_code_matches(&address.postal_code)
    {
        return Some(format!("the postal code {:?} is not valid in {country}", address.postal_code));
    }
    if rules.checks_state() && !rules.states.contains(&address.state.as_str()) {
        return Some(format!("the state {:?} is not a state of {country}", address.state));
    }
    None
}

fn normalise(address: &AddressFields, rules: &CountryRules) -> AddressFields {
    AddressFields {
        address_line1: expand_abbreviations(&collapse_spaces(&address.address_line1), rules.code),
        city: title_case_if_single_case(&collapse_spaces(&address.city)),
        state: collapse_spaces(&address.state).to_uppercase(),
        postal_code: collapse_spaces(&address.postal_code).to_uppercase(),
        country: address.country.trim().to_uppercase(),
    }
}

fn collapse_spaces(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `"new york"` and `"NEW YORK"` become `"New York"`; a city in mixed case is left as written.
fn title_case_if_single_case(city: &str) -> String {
    let letters = city.chars().filter(|c| c.is_alphabetic());
    let (mut lower, mut upper) = (true, true);
    for letter in letters {
        lower &= letter.is_lowercase();
        upper &= letter.is_uppercase();
    }
    if !(lower || upper) || city.is_empty() {
        return city.to_string();
    }
    let mut titled = String::with_capacity(city.len());
    let mut start_of_word = true;
    for c in city.chars() {
        if start_of_word {
            titled.extend(c.to_uppercase());
        } else {
            titled.extend(c.to_lowercase());
        }
        start_of_word = c == ' ' || c == '-';
    }
    titled
}

fn expand_abbreviations(line: &str, country: &str) -> String {
    let words: Vec<String> = line.split(' ').map(|word| expand_word(word, country)).collect();
    words.join(" ")
}

fn expand_word(word: &str, country: &str) -> String {
    match country {
        "DE" => {
            if word.eq_ignore_ascii_case("str.") {
                return "Straße".into();
            }
            match word.strip_suffix("str.") {
                Some(stem) if !stem.is_empty() => format!("{stem}straße"),
                _ => word.to_string(),
            }
        }
        "US" | "CA" | "GB" | "AU" => match word {
            "St." => "Street".into(),
            "Ave." => "Avenue".into(),
            "Rd." => "Road".into(),
            _ => word.to_string(),
        },
        "FR" => match word {
            "Av." => "Avenue".into(),
            "Bd" | "Bd." => "Boulevard".into(),
            _ => word.to_string(),
        },
        _ => word.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(line1: &str, city: &str, state: &str, postal_code: &str, country: &str) -> Map<String, Value> {
        let value =
            json!({"addressLine1": line1, "city": city, "state": state, "postalCode": postal_code, "country": country});
        value.as_object().cloned().unwrap_or_default()
    }

    fn status(answer: &Value) -> &str {
        answer["status"].as_str().unwrap_or_default()
    }

    #[test]
    fn every_regex_compiles_and_every_country_is_known() {
        assert_eq!(POSTAL_REGEXES.len(), RULES.len());
        for rules in RULES {
            assert!(Regex::new(rules.phone_regex).is_ok(), "{}", rules.code);
        }
        assert_eq!(RULES.len(), 8);
        assert!(country_rules("gb").is_some());
        assert!(country_rules("UK").is_none());
    }

    #[test]
    fn us_rules_hold_dc_and_a_phone_regex() {
        let rules = country_rules("US").map(CountryRules::to_json).unwrap_or_default();
        let states = rules["supportedStatesList"].as_array().cloned().unwrap_or_default();
        assert_eq!(states.len(), 51);
        assert!(states.contains(&json!("DC")));
        assert_eq!(rules["attributes"]["objectType"], "CountryValidationRules");
        let indian_phone = Regex::new(country_rules("IN").map(|r| r.phone_regex).unwrap_or_default());
        assert!(indian_phone.is_ok_and(|regex| regex.is_match("+91 9876543210")));
    }

    #[test]
    fn a_clean_address_is_verified() {
        let answer = validate_address(&address("1 Microsoft Way", "Redmond", "WA", "98052", "US"));
        assert_eq!(status(&answer), "Verified");
        assert_eq!(answer["suggestedAddresses"], json!([]));
    }

    #[test]
    fn a_bad_postal_code_or_state_is_none() {
        assert_eq!(status(&validate_address(&address("1 Main Street", "Redmond", "WA", "9805", "US"))), "None");
        assert_eq!(status(&validate_address(&address("1 Main Street", "Redmond", "XX", "98052", "US"))), "None");
        assert_eq!(status(&validate_address(&address("1 Main Street", "Toronto", "ON", "12345", "CA"))), "None");
        assert_eq!(status(&validate_address(&address("Hauptstraße 5", "Berlin", "", "1011", "DE"))), "None");
    }

    #[test]
    fn a_normalisable_address_is_street_partial_with_a_suggestion() {
        let answer = validate_address(&address("Hauptstr. 5", "berlin", "", "10115", "DE"));
        assert_eq!(status(&answer), "StreetPartial");
        assert_eq!(answer["suggestedAddresses"][0]["addressLine1"], "Hauptstraße 5");
        assert_eq!(answer["suggestedAddresses"][0]["city"], "Berlin");
        assert_eq!(answer["originalAddress"]["city"], "berlin");

        let answer = validate_address(&address("10  Downing St.", "LONDON", "", "sw1a 2aa", "GB"));
        assert_eq!(status(&answer), "StreetPartial");
        assert_eq!(answer["suggestedAddresses"][0]["addressLine1"], "10 Downing Street");
        assert_eq!(answer["suggestedAddresses"][0]["city"], "London");
        assert_eq!(answer["suggestedAddresses"][0]["postalCode"], "SW1A 2AA");
    }

    #[test]
    fn an_unknown_country_is_not_validated() {
        assert_eq!(status(&validate_address(&address("1 Rua", "Lisboa", "", "1000-001", "PT"))), "NotValidated");
    }

    #[test]
    fn phone_required_countries_include_india() {
        assert!(is_phone_required("in"));
        assert!(!is_phone_required("US"));
    }
}
