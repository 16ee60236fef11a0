//! Seeding: generated customer billing profiles (deterministic from a seed), profiles read from a JSON file, and
//! the partner's four profiles. Customer ids from a CSV come from the command line, read by `input`.
//!
//! Every generated customer profile is valid for its country and carries fields pcbulk does not model (extra keys at
//! the top level, in `defaultAddress`, and a nested `extensions` object), so a client that drops one is caught.
//! Generation never touches etags: the store sets them.

use super::error::SandboxError;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Map, Value, json};
use std::path::Path;

/// One city of a country: city, state code (or `""`), postal code.
type City = (&'static str, &'static str, &'static str);

struct CountryData {
    code: &'static str,
    culture: &'static str,
    cities: &'static [City],
    streets: &'static [&'static str],
    /// The house number goes after the street name (`Hauptstraße 12`) rather than before (`12 Main Street`).
    number_after: bool,
    phone_prefix: &'static str,
    company_suffix: &'static str,
}

/// Eight countries; AU cities are in the states whose code has two letters, since `state` holds at most two.
static COUNTRIES: &[CountryData] = &[
    CountryData {
        code: "US",
        culture: "en-US",
        cities: &[
            ("Redmond", "WA", "98052"),
            ("New York", "NY", "10001"),
            ("Austin", "TX", "78701"),
            ("Washington", "DC", "20001"),
            ("Chicago", "IL", "60601"),
        ],
        streets: &["Main Street", "Microsoft Way", "Pine Street", "Elm Avenue"],
        number_after: false,
        phone_prefix: "425555",
        company_suffix: "Inc.",
    },
    CountryData {
        code: "CA",
        culture: "en-CA",
        cities: &[
            ("Toronto", "ON", "M5H 2N2"),
            ("Vancouver", "BC", "V6B 1A1"),
            ("Montréal", "QC", "H3B 2Y5"),
            ("Calgary", "AB", "T2P 1J9"),
        ],
        streets: &["King Street West", "Granville Street", "Rue Sainte-Catherine"],
        number_after: false,
        phone_prefix: "416555",
        company_suffix: "Ltd.",
    },
    CountryData {
        code: "GB",
        culture: "en-GB",
        cities: &[
            ("London", "", "SW1A 1AA"),
            ("Manchester", "", "M1 1AE"),
            ("Edinburgh", "", "EH1 1YZ"),
            ("Bristol", "", "BS1 4DJ"),
        ],
        streets: &["High Street", "Station Road", "Victoria Road"],
        number_after: false,
        phone_prefix: "+44 20 7946 ",
        company_suffix: "Ltd",
    },
    CountryData {
        code: "DE",
        culture: "de-DE",
        cities: &[("Berlin", "", "10115"), ("München", "", "80331"), ("Hamburg", "", "20095"), ("Köln", "", "50667")],
        streets: &["Hauptstraße", "Bahnhofstraße", "Friedrichstraße"],
        number_after: true,
        phone_prefix: "+49 30 555",
        company_suffix: "GmbH",
    },
    CountryData {
        code: "FR",
        culture: "fr-FR",
        cities: &[("Paris", "", "75008"), ("Lyon", "", "69002"), ("Marseille", "", "13001"), ("Toulouse", "", "31000")],
        streets: &["rue de la Paix", "avenue Victor Hugo", "boulevard Haussmann"],
        number_after: false,
        phone_prefix: "+33 1 42 68 ",
        company_suffix: "SAS",
    },
    CountryData {
        code: "IN",
        culture: "en-IN",
        cities: &[
            ("Bengaluru", "KA", "560001"),
            ("Mumbai", "MH", "400001"),
            ("New Delhi", "DL", "110001"),
            ("Hyderabad", "TG", "500081"),
        ],
        streets: &["MG Road", "Residency Road", "Nehru Place"],
        number_after: false,
        phone_prefix: "+91 987654",
        company_suffix: "Pvt Ltd",
    },
    CountryData {
        code: "AU",
        culture: "en-AU",
        cities: &[("Perth", "WA", "6000"), ("Adelaide", "SA", "5000"), ("Darwin", "NT", "0800")],
        streets: &["Hay Street", "King William Street", "Mitchell Street"],
        number_after: false,
        phone_prefix: "+61 8 9555 ",
        company_suffix: "Pty Ltd",
    },
    CountryData {
        code: "JP",
        culture: "ja-JP",
        cities: &[("Tokyo", "", "100-0005"), ("Osaka", "", "530-0001"), ("Yokohama", "", "220-0012")],
        streets: &["Marunouchi", "Umeda", "Minatomirai"],
        number_after: false,
        phone_prefix: "+81 3-5555-",
        company_suffix: "KK",
    },
];

const FIRST_NAMES: &[&str] =
    &["Ava", "Ben", "Chloé", "Dev", "Emma", "Felix", "Grace", "Hiro", "Isla", "Jonas", "Kavya", "Liam"];
const LAST_NAMES: &[&str] =
    &["Smith", "Tremblay", "Jones", "Müller", "Martin", "Sharma", "Nguyen", "Sato", "Brown", "Patel"];
const COMPANIES: &[&str] = &[
    "Contoso",
    "Fabrikam",
    "Northwind Traders",
    "Tailspin Toys",
    "Adventure Works",
    "Litware",
    "Woodgrove",
    "Alpine Ski House",
];
const SEGMENTS: &[&str] = &["smb", "corporate", "enterprise", "education", "nonprofit"];
const TAGS: &[&str] = &["priority", "migrated", "reseller-managed", "annual", "trial"];

/// One item of a constant, non-empty list.
fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// `count` customer ids, deterministic from `seed`.
pub(crate) fn generate_ids(seed: u64, count: usize) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let bytes: [u8; 16] = rng.random();
            uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
        })
        .collect()
}

/// A customer billing profile for `id`, deterministic from `seed` and `id` (not from the order of seeding).
pub(crate) fn generate_profile(seed: u64, id: &str) -> Value {
    let mut rng = StdRng::seed_from_u64(seed ^ fnv1a(id.as_bytes()));
    let country = pick(&mut rng, COUNTRIES);
    let (first, last) = (*pick(&mut rng, FIRST_NAMES), *pick(&mut rng, LAST_NAMES));
    let person = Person { first, last };
    let company = format!("{} {}", pick(&mut rng, COMPANIES), country.company_suffix);
    let email = format!("{}.{}@{}.example", ascii_slug(person.first), ascii_slug(person.last), ascii_slug(&company));
    let address = generate_address(&mut rng, country, &person, &email);
    let tags: Vec<&str> = (0..rng.random_range(1..3)).map(|_| *pick(&mut rng, TAGS)).collect();
    json!({
        "id": id,
        "firstName": person.first,
        "lastName": person.last,
        "email": email,
        "culture": country.culture,
        "language": &country.culture[..2],
        "companyName": company,
        "customerType": pick(&mut rng, &["commercial", "education"]),
        "defaultAddress": address,
        "extensions": {"segment": pick(&mut rng, SEGMENTS), "tags": tags, "editsBySomeoneElse": 0},
        "links": {"self": {"uri": format!("/v1/customers/{id}/profiles/billing"), "method": "GET", "headers": []}},
        "attributes": {"objectType": "CustomerBillingProfile"},
    })
}

struct Person {
    first: &'static str,
    last: &'static str,
}

/// A valid address of `country`, with the keys no SDK models (`district`, `middleName`, `emailAddress`, `id`);
/// `region` is `null` or absent (never set: a US address refuses it), `addressLine2` sometimes absent.
fn generate_address(rng: &mut StdRng, country: &CountryData, person: &Person, email: &str) -> Map<String, Value> {
    let (city, state, postal_code) = *pick(rng, country.cities);
    let mut address = Map::new();
    address.insert("country".into(), country.code.into());
    if rng.random_bool(0.5) {
        address.insert("region".into(), Value::Null);
    }
    address.insert("city".into(), city.into());
    address.insert("state".into(), state.into());
    address.insert("addressLine1".into(), street_line(rng, country).into());
    if rng.random_bool(0.6) {
        address.insert("addressLine2".into(), format!("Suite {}", rng.random_range(100..999)).into());
    }
    address.insert("postalCode".into(), postal_code.into());
    address.insert("firstName".into(), person.first.into());
    address.insert("lastName".into(), person.last.into());
    let phone = format!("{}{:04}", country.phone_prefix, rng.random_range(0..10_000));
    address.insert("phoneNumber".into(), phone.into());
    address.insert("district".into(), Value::Null);
    address.insert("middleName".into(), pick(rng, &["", "J.", "Marie"]).to_string().into());
    address.insert("emailAddress".into(), email.into());
    address.insert("id".into(), format!("addr-{}", rng.random_range(100_000..999_999)).into());
    address
}

fn street_line(rng: &mut StdRng, country: &CountryData) -> String {
    let number = rng.random_range(1..250);
    let street = pick(rng, country.streets);
    if country.code == "JP" {
        format!("{}-{}-{number} {street}", rng.random_range(1..5), rng.random_range(1..9))
    } else if country.number_after {
        format!("{street} {number}")
    } else {
        format!("{number} {street}")
    }
}

fn ascii_slug(text: &str) -> String {
    let slug: String = text
        .chars()
        .filter_map(|c| match c {
            'ü' => Some('u'),
            'é' => Some('e'),
            c if c.is_ascii_alphanumeric() => Some(c.to_ascii_lowercase()),
            ' ' => Some('-'),
            _ => None,
        })
        .collect();
    slug.trim_matches('-').to_string()
}

/// FNV-1a: a stable hash, so a profile depends on its id the same way in every build.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}

/// The customer billing profiles of a JSON file: an array of objects, each with a string `id`.
pub fn read_profiles(path: &Path) -> Result<Vec<Value>, SandboxError> {
    let seed_file_error = |message: String| SandboxError::SeedFile { path: path.to_path_buf(), message };
    let text =
        std::fs::read_to_string(path).map_err(|source| SandboxError::Read { path: path.to_path_buf(), source })?;
    let value: Value = serde_json::from_str(&text).map_err(|error| seed_file_error(format!("not JSON: {error}")))?;
    let Value::Array(profiles) = value else {
        return Err(seed_file_error("expected an array of customer billing profiles".into()));
    };
    for (index, profile) in profiles.iter().enumerate() {
        if profile.get("id").and_then(Value::as_str).is_none() {
            return Err(seed_file_error(format!("profile {index} has no string id")));
        }
    }
    Ok(profiles)
}

/// The partner's four profiles, from the shapes of the documentation's examples (without etags: the store sets them).
pub(crate) fn partner_profiles(seed: u64) -> [Value; 4] {
    let ids = generate_ids(seed ^ 0x005e_ed0f_9a27, 2);
    let address = json!({"country": "US", "region": null, "city": "Redmond", "state": "WA",
        "addressLine1": "1 Microsoft Way", "addressLine2": "", "postalCode": "98052",
        "firstName": "Gena", "lastName": "Soto", "phoneNumber": "4255550110"});
    let contact = json!({"firstName": "Gena", "lastName": "Soto", "email": "gena@lucernepublishing.example", "phoneNumber": "4255550110"});
    let links = |uri: &str| json!({"self": {"uri": uri, "method": "GET", "headers": []}});
    let billing = json!({
        "companyName": "Lucerne Publishing", "address": address, "primaryContact": contact,
        "purchaseOrderNumber": "9888", "taxId": "91-1144442", "billingCurrency": "USD",
        "profileType": "BillingProfile", "links": links("/profiles/billing"), "attributes": {"objectType": "BillingProfile"},
    });
    let legal = json!({
        "companyName": "Lucerne Publishing", "address": address, "primaryContact": contact,
        "companyApproverAddress": {"country": "US", "city": "Redmond", "state": "WA",
            "addressLine1": "1 Microsoft Way", "addressLine2": "", "postalCode": "98052"},
        "companyApproverEmail": "gena@lucernepublishing.example", "vettingStatus": "authorized", "vettingSubStatus": "none",
        "profileType": "LegalBusinessProfile", "links": links("/profiles/legalbusiness"),
        "attributes": {"objectType": "LegalBusinessProfile"},
    });
    let organization = json!({
        "id": ids[0], "companyName": "Lucerne Publishing", "defaultAddress": address, "tenantId": ids[1],
        "domain": "lucernepublishing.onmicrosoft.com", "email": "partner@lucernepublishing.example",
        "language": "en", "culture": "en-US", "profileType": "OrganizationProfile",
        "links": links("/profiles/organization"), "attributes": {"objectType": "OrganizationProfile"},
    });
    let support = json!({
        "email": "support@lucernepublishing.example", "telephone": "4255555555", "website": "www.lucernepublishing.example",
        "profileType": "support_profile", "links": links("/v1/profiles/support"),
        "attributes": {"objectType": "PartnerSupportProfile"},
    });
    [billing, legal, organization, support]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::profile::check_customer_billing;

    #[test]
    fn generation_is_deterministic_and_valid() {
        let ids = generate_ids(7, 200);
        assert_eq!(ids, generate_ids(7, 200));
        assert_ne!(ids, generate_ids(8, 200));
        let mut countries = std::collections::BTreeSet::new();
        for id in &ids {
            let profile = generate_profile(7, id);
            assert_eq!(profile, generate_profile(7, id));
            let checked = profile.as_object().map(check_customer_billing);
            assert!(matches!(checked, Some(Ok(()))), "{profile}: {checked:?}");
            assert!(profile["extensions"]["editsBySomeoneElse"].is_number());
            assert!(profile["defaultAddress"].get("district").is_some());
            countries.insert(profile["defaultAddress"]["country"].as_str().unwrap_or_default().to_string());
        }
        assert_eq!(countries.len(), 8);
    }

    #[test]
    fn generated_phone_numbers_match_their_country_regex() {
        for id in generate_ids(5, 100) {
            let profile = generate_profile(5, &id);
            let country = profile["defaultAddress"]["country"].as_str().unwrap_or_default();
            let phone = profile["defaultAddress"]["phoneNumber"].as_str().unwrap_or_default();
            let rules = crate::sandbox::rules::country_rules(country).map(|rules| rules.phone_regex);
            let regex = regex::Regex::new(rules.unwrap_or("^$"));
            assert!(regex.is_ok_and(|regex| regex.is_match(phone)), "{country} {phone}");
        }
    }

    #[test]
    fn generated_addresses_pass_the_address_validation() {
        for id in generate_ids(3, 100) {
            let profile = generate_profile(3, &id);
            let address = profile["defaultAddress"].as_object().cloned().unwrap_or_default();
            let answer = crate::sandbox::rules::validate_address(&address);
            assert_eq!(answer["status"], "Verified", "{address:?} {answer}");
        }
    }
}
