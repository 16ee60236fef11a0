//! The field catalog: which fields of a profile a CSV column may change, where each lives in the JSON, and the
//! rule its value must follow.
//!
//! Pure: no I/O. A rule only says whether a cell is acceptable and how it is written (country codes upper-case,
//! cultures as `ll-CC`); it never looks at the profile the value will land in.

use std::fmt;

/// What a cell of a field column may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Free text of `min..=max` characters.
    Text { min: usize, max: usize },
    /// An email address.
    Email,
    /// An ISO 3166-1 alpha-2 country code, any case in, upper-case out.
    Country,
    /// A culture like `en-US`.
    Culture,
    /// A language like `en`.
    Language,
    /// A telephone number: digits with the usual separators (`+1 (425) 555-0100`), an optional extension.
    Phone,
    /// A website: a host name with a dot, with or without `http://` or `https://`, an optional path.
    Url,
    /// A currency: three letters (ISO 4217), any case in, upper-case out.
    Currency,
    /// A domain name like `contoso.onmicrosoft.com`.
    Domain,
}

/// A field of a profile that a CSV column names.
#[derive(Debug, PartialEq, Eq)]
pub struct Field {
    /// The column name as the API spells it: `defaultAddress.city`.
    pub name: &'static str,
    /// The keys from the profile's root to the value: `["defaultAddress", "city"]`.
    pub path: &'static [&'static str],
    pub rule: Rule,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// The longest value of a field whose length Partner Center does not document: generous, but a cell past it is
/// almost surely a paste gone wrong.
pub const UNDOCUMENTED_MAX: usize = 256;

const fn text(min: usize, max: usize) -> Rule {
    Rule::Text { min, max }
}

/// The longest state or province code a country's rules list (`supportedStatesList` of
/// `GET /v1/countryvalidationrules/{iso2}`): three letters, Australia's `NSW`, `QLD`, `VIC`, `TAS`, `ACT`. The docs'
/// address rules say `state` holds 0–2 characters (partner-center.md, "Address rules"), the US and CN lists the
/// PowerShell module recorded from the service hold two letters, and AU's states have three (issue 15): offline, the longest documented code is the limit; with pre-flight, the value is checked
/// against the country's own list (the pre-flight module). Unverified: a list with a code longer than three letters.
pub const STATE_CODE_MAX: usize = 3;

/// The fields of a customer's billing profile (`CustomerBillingProfile`) that a CSV may change.
///
/// Lengths are the documented ones (`addressLine1` 1–200, `addressLine2` 0–200, names 1–50; `state` up to
/// [`STATE_CODE_MAX`]);
/// where nothing is documented the limit is [`UNDOCUMENTED_MAX`].
pub static CUSTOMER_BILLING: &[Field] = &[
    Field { name: "firstName", path: &["firstName"], rule: text(1, 50) },
    Field { name: "lastName", path: &["lastName"], rule: text(1, 50) },
    Field { name: "email", path: &["email"], rule: Rule::Email },
    Field { name: "culture", path: &["culture"], rule: Rule::Culture },
    Field { name: "language", path: &["language"], rule: Rule::Language },
    Field { name: "companyName", path: &["companyName"], rule: text(1, UNDOCUMENTED_MAX) },
    Field { name: "defaultAddress.country", path: &["defaultAddress", "country"], rule: Rule::Country },
    Field { name: "defaultAddress.region", path: &["defaultAddress", "region"], rule: text(0, UNDOCUMENTED_MAX) },
    Field { name: "defaultAddress.city", path: &["defaultAddress", "city"], rule: text(0, UNDOCUMENTED_MAX) },
    Field { name: "defaultAddress.state", path: &["defaultAddress", "state"], rule: text(0, STATE_CODE_MAX) },
    Field { name: "defaultAddress.addressLine1", path: &["defaultAddress", "addressLine1"], rule: text(1, 200) },
    Field { name: "defaultAddress.addressLine2", path: &["defaultAddress", "addressLine2"], rule: text(0, 200) },
    Field { name: "defaultAddress.addressLine3", path: &["defaultAddress", "addressLine3"], rule: text(0, 200) },
    Field {
        name: "defaultAddress.postalCode",
        path: &["defaultAddress", "postalCode"],
        rule: text(0, UNDOCUMENTED_MAX),
    },
    Field { name: "defaultAddress.firstName", path: &["defaultAddress", "firstName"], rule: text(1, 50) },
    Field { name: "defaultAddress.lastName", path: &["defaultAddress", "lastName"], rule: text(1, 50) },
    Field { name: "defaultAddress.phoneNumber", path: &["defaultAddress", "phoneNumber"], rule: text(0, 50) },
];

/// The column that names the customer, and the other spellings accepted for it.
pub const CUSTOMER_ID_COLUMNS: [&str; 3] = ["customer_id", "customerId", "customer-tenant-id"];

/// The cell that empties a field.
pub const CLEAR: &str = "<clear>";

/// Finds the field a header names, without regard to case.
pub fn lookup(catalog: &'static [Field], header: &str) -> Option<&'static Field> {
    catalog.iter().find(|field| field.name.eq_ignore_ascii_case(header))
}

/// The known column name nearest to an unknown one, when one is near enough to be a likely typo.
pub fn suggest(catalog: &'static [Field], header: &str) -> Option<&'static str> {
    let wanted = header.to_ascii_lowercase();
    let names = catalog.iter().map(|field| field.name).chain(CUSTOMER_ID_COLUMNS);
    let (best, distance) = names
        .map(|name| (name, edit_distance(&wanted, &name.to_ascii_lowercase())))
        .min_by_key(|(_, distance)| *distance)?;
    // A third of the name may be wrong, but at least two edits are allowed on short names.
    let allowed = (wanted.chars().count() / 3).max(2);
    if distance <= allowed {
        return Some(best);
    }
    // `city` for `defaultAddress.city`: the last segment alone matches.
    catalog
        .iter()
        .find(|field| field.path.last().is_some_and(|last| last.eq_ignore_ascii_case(header)))
        .map(|field| field.name)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// Why a value breaks its field's rule; shown after `value "V": `.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError(pub String);

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn broken(message: impl Into<String>) -> RuleError {
    RuleError(message.into())
}

impl Field {
    /// Checks a trimmed, non-empty value against the field's rule and returns it as it is to be written.
    /// `<clear>` is checked as the empty value it stands for.
    pub fn check(&self, value: &str) -> Result<String, RuleError> {
        match self.rule {
            Rule::Text { min, max } => check_length(value, min, max),
            Rule::Email => check_email(value),
            Rule::Country => check_country(value),
            Rule::Culture => check_culture(value),
            Rule::Language => check_language(value),
            Rule::Phone => check_phone(value),
            Rule::Url => check_url(value),
            Rule::Currency => check_currency(value),
            Rule::Domain => check_domain(value),
        }
    }

    /// Whether `<clear>` (the empty value) is acceptable for this field.
    pub fn check_clear(&self) -> Result<(), RuleError> {
        match self.rule {
            Rule::Text { min: 0, .. } => Ok(()),
            _ => Err(broken(format!("{} cannot be cleared: Partner Center requires a value", self.name))),
        }
    }
}

fn check_length(value: &str, min: usize, max: usize) -> Result<String, RuleError> {
    let length = value.chars().count();
    if length < min {
        return Err(broken(format!("shorter than {min} characters")));
    }
    if length > max {
        return Err(broken(format!("{length} characters, more than the {max} allowed")));
    }
    // Line breaks and tabs are legal in a quoted CSV cell (Alt+Enter in Excel); other control characters are not text.
    if let Some(control) = value.chars().find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(broken(format!("holds the control character U+{:04X}", u32::from(control))));
    }
    Ok(value.to_string())
}

/// The longest email address SMTP allows.
const EMAIL_MAX: usize = 254;

fn check_email(value: &str) -> Result<String, RuleError> {
    if value.chars().count() > EMAIL_MAX {
        return Err(broken(format!("longer than the {EMAIL_MAX} characters an email address may have")));
    }
    let Some((local, domain)) = value.rsplit_once('@') else {
        return Err(broken("not an email address: no @"));
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c) || !c.is_ascii());
    if !local_ok {
        return Err(broken(format!("not an email address: the part before @ ({local:?}) is not valid")));
    }
    if !is_domain(domain) {
        return Err(broken(format!("not an email address: the domain {domain:?} is not valid")));
    }
    Ok(value.to_string())
}

/// Whether `domain` is a dotted host name: labels of letters, digits and inner hyphens, a top level of two or more
/// characters that are not all digits.
fn is_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels.last().is_some_and(|tld| tld.chars().count() >= 2 && !tld.chars().all(|c| c.is_ascii_digit()))
}

/// The longest domain name DNS allows.
const DOMAIN_MAX: usize = 253;

fn check_domain(value: &str) -> Result<String, RuleError> {
    if value.len() > DOMAIN_MAX || !is_domain(value) {
        return Err(broken("not a domain name: use a host name like contoso.onmicrosoft.com"));
    }
    Ok(value.to_string())
}

/// The longest telephone number accepted, separators and extension included.
const PHONE_MAX: usize = 50;

/// `+1 (425) 555-0100`, `425.555.0100`, `+44 20 7946 0000 ext 12`: a leading `+` at most, digits, spaces, and
/// `-().` separators, at least four digits; then an optional extension (`x`, `ext` or `ext.` and digits).
fn check_phone(value: &str) -> Result<String, RuleError> {
    if value.chars().count() > PHONE_MAX {
        return Err(broken(format!("longer than the {PHONE_MAX} characters a telephone number may have")));
    }
    let lower = value.to_ascii_lowercase();
    let (number, extension) = match lower.find(['x', 'e']) {
        Some(at) => (&lower[..at], Some(lower[at..].trim_start_matches("ext.").trim_start_matches("ext"))),
        None => (lower.as_str(), None),
    };
    let extension_ok = extension.is_none_or(|digits| {
        let digits = digits.trim_start_matches('x').trim();
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    });
    let body = number.strip_prefix('+').unwrap_or(number);
    let characters_ok = body.chars().all(|c| c.is_ascii_digit() || " -().".contains(c));
    let digits = body.bytes().filter(u8::is_ascii_digit).count();
    if !extension_ok || !characters_ok || digits < 4 {
        return Err(broken("not a telephone number: use digits with spaces, -, ( ) or . and a leading + at most"));
    }
    Ok(value.to_string())
}

/// The longest website accepted: the length browsers and servers reliably take.
const URL_MAX: usize = 2048;

/// A website as Partner Center shows it to customers: `www.contoso.com` or `https://contoso.com/support`.
/// Written as given (the service's own example has no scheme).
fn check_url(value: &str) -> Result<String, RuleError> {
    if value.chars().count() > URL_MAX {
        return Err(broken(format!("longer than the {URL_MAX} characters a website may have")));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(broken("not a website: it holds a space or a control character"));
    }
    let lower = value.to_ascii_lowercase();
    let with_scheme = if lower.starts_with("http://") || lower.starts_with("https://") {
        value.to_string()
    } else if lower.contains("://") {
        return Err(broken("not a website: the scheme must be http:// or https://"));
    } else {
        format!("https://{value}")
    };
    let wrong = || broken("not a website: use a host name with a dot, like www.contoso.com or https://contoso.com");
    let url = url::Url::parse(&with_scheme).map_err(|_| wrong())?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(broken("not a website: it must not carry a user name or password"));
    }
    match url.host() {
        Some(url::Host::Domain(host)) if is_domain(host) => Ok(value.to_string()),
        _ => Err(wrong()),
    }
}

/// ISO 4217: three letters, written upper-case. (The list of codes changes; Partner Center has the last word.)
fn check_currency(value: &str) -> Result<String, RuleError> {
    if !is_letters(value, 3..=3) {
        return Err(broken("not a currency code: use the three letters of ISO 4217, like USD or EUR"));
    }
    Ok(value.to_ascii_uppercase())
}

fn check_country(value: &str) -> Result<String, RuleError> {
    let upper = value.to_ascii_uppercase();
    if upper == "UK" {
        return Err(broken("not an ISO 3166-1 alpha-2 country code: use GB for the United Kingdom"));
    }
    if upper.len() != 2 || !upper.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(broken("not a country code: use the two letters of ISO 3166-1 alpha-2, like US or DE"));
    }
    if !COUNTRIES.contains(&upper.as_str()) {
        return Err(broken("not an ISO 3166-1 alpha-2 country code"));
    }
    Ok(upper)
}

fn is_letters(text: &str, lengths: std::ops::RangeInclusive<usize>) -> bool {
    lengths.contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphabetic())
}

/// `en-US`, `zh-Hans-CN`, `es-419`: language, optional script, region. Written as `ll-Ssss-CC`.
fn check_culture(value: &str) -> Result<String, RuleError> {
    let parts: Vec<&str> = value.split(['-', '_']).collect();
    let wrong = || broken("not a culture: use a language and a region like en-US");
    let (language, script, region) = match parts.as_slice() {
        [language, region] => (*language, None, *region),
        [language, script, region] if is_letters(script, 4..=4) => (*language, Some(*script), *region),
        _ => return Err(wrong()),
    };
    let region_ok = is_letters(region, 2..=2) || (region.len() == 3 && region.bytes().all(|b| b.is_ascii_digit()));
    if !is_letters(language, 2..=3) || !region_ok {
        return Err(wrong());
    }
    let mut written = language.to_ascii_lowercase();
    if let Some(script) = script {
        written.push('-');
        written.push_str(&script[..1].to_ascii_uppercase());
        written.push_str(&script[1..].to_ascii_lowercase());
    }
    written.push('-');
    written.push_str(&region.to_ascii_uppercase());
    Ok(written)
}

fn check_language(value: &str) -> Result<String, RuleError> {
    if !is_letters(value, 2..=3) {
        return Err(broken("not a language: use a two-letter code like en"));
    }
    Ok(value.to_ascii_lowercase())
}

/// Whether a value of `defaultAddress.region` on an address in `country` is refused by Partner Center
/// (27002 "A property has invalid data" for a US address).
pub fn region_refused_in(country: &str) -> bool {
    country.eq_ignore_ascii_case("US")
}

/// ISO 3166-1 alpha-2, the officially assigned codes.
pub static COUNTRIES: &[&str] = &[
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ", "BA", "BB", "BD",
    "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS", "BT", "BV", "BW", "BY", "BZ", "CA",
    "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE",
    "DJ", "DK", "DM", "DO", "DZ", "EC", "EE", "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA",
    "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK",
    "HM", "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM", "JO", "JP",
    "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT",
    "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS",
    "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ",
    "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS",
    "RU", "RW", "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST",
    "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW",
    "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI", "VN", "VU", "WF", "WS", "YE", "YT", "ZA",
    "ZM", "ZW",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str) -> &'static Field {
        lookup(CUSTOMER_BILLING, name).unwrap()
    }

    #[test]
    fn the_catalog_has_every_column_of_the_contract() {
        assert_eq!(CUSTOMER_BILLING.len(), 17);
        for field in CUSTOMER_BILLING {
            assert_eq!(field.path.join("."), field.name);
        }
        assert_eq!(COUNTRIES.len(), 249);
        assert!(COUNTRIES.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn headers_match_without_regard_to_case() {
        assert_eq!(field("DEFAULTADDRESS.CITY").name, "defaultAddress.city");
        assert_eq!(field("email").name, "email");
        assert!(lookup(CUSTOMER_BILLING, "defaultAddress.cty").is_none());
    }

    #[test]
    fn an_unknown_header_gets_the_nearest_name() {
        assert_eq!(suggest(CUSTOMER_BILLING, "defaultAddress.cty"), Some("defaultAddress.city"));
        assert_eq!(suggest(CUSTOMER_BILLING, "emial"), Some("email"));
        assert_eq!(suggest(CUSTOMER_BILLING, "postalCode"), Some("defaultAddress.postalCode"));
        assert_eq!(suggest(CUSTOMER_BILLING, "customer id"), Some("customer_id"));
        assert_eq!(suggest(CUSTOMER_BILLING, "favourite colour"), None);
    }

    #[test]
    fn countries_are_iso_codes_written_upper_case() {
        let country = field("defaultAddress.country");
        assert_eq!(country.check("de").unwrap(), "DE");
        assert!(country.check("UK").unwrap_err().0.contains("use GB"));
        assert!(country.check("uk").unwrap_err().0.contains("use GB"));
        assert!(country.check("XX").is_err());
        assert!(country.check("USA").is_err());
        assert!(country.check("U1").is_err());
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        let email = field("email");
        for good in ["ap@contoso.com", "first.last+billing@sub.example.co.uk", "o'brien@example.ie"] {
            assert_eq!(email.check(good).unwrap(), good);
        }
        for bad in [
            "contoso.com",
            "@contoso.com",
            "ap@",
            "ap@contoso",
            "ap@@contoso.com",
            "a p@contoso.com",
            "ap@contoso..com",
            "ap@-contoso.com",
            "ap@contoso.c",
            ".ap@contoso.com",
            "ap@contoso.123",
        ] {
            assert!(email.check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cultures_and_languages_are_normalised() {
        assert_eq!(field("culture").check("en-us").unwrap(), "en-US");
        assert_eq!(field("culture").check("zh-hans-cn").unwrap(), "zh-Hans-CN");
        assert_eq!(field("culture").check("es-419").unwrap(), "es-419");
        for bad in ["english", "en", "en-USA", "e-US", "en-U5", "en US"] {
            assert!(field("culture").check(bad).is_err(), "{bad}");
        }
        assert_eq!(field("language").check("EN").unwrap(), "en");
        for bad in ["e", "english", "en-US", "e1"] {
            assert!(field("language").check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn documented_lengths_hold() {
        assert!(field("defaultAddress.addressLine1").check(&"a".repeat(200)).is_ok());
        assert!(field("defaultAddress.addressLine1").check(&"a".repeat(201)).is_err());
        assert!(field("defaultAddress.state").check("WA").is_ok());
        assert!(field("defaultAddress.state").check("NSW").is_ok(), "issue 15: Australia's codes have three letters");
        assert!(field("defaultAddress.state").check("NSWX").is_err());
        assert!(field("defaultAddress.state").check("Washington").is_err());
        assert!(field("defaultAddress.firstName").check(&"é".repeat(50)).is_ok());
        assert!(field("defaultAddress.firstName").check(&"é".repeat(51)).is_err());
        assert!(field("companyName").check("Contoso\u{0007}").is_err());
    }

    #[test]
    fn clear_is_allowed_only_where_empty_is_a_valid_value() {
        assert!(field("defaultAddress.addressLine2").check_clear().is_ok());
        assert!(field("defaultAddress.region").check_clear().is_ok());
        assert!(field("defaultAddress.addressLine1").check_clear().is_err());
        assert!(field("defaultAddress.country").check_clear().is_err());
        assert!(field("email").check_clear().is_err());
    }

    fn rule(rule: Rule) -> Field {
        Field { name: "test", path: &["test"], rule }
    }

    #[test]
    fn telephone_numbers_are_digits_with_separators() {
        let phone = rule(Rule::Phone);
        for good in ["4255555555", "+1 (425) 555-0100", "425.555.0100", "+44 20 7946 0000 ext 12", "425-555-0100 x7"] {
            assert_eq!(phone.check(good).unwrap(), good);
        }
        for bad in ["call me", "12", "++1 425", "425-555-0100 x", "1+425", "425/555", &"1".repeat(51)] {
            assert!(phone.check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn websites_need_a_dotted_host_and_keep_their_spelling() {
        let url = rule(Rule::Url);
        for good in ["www.microsoft.com", "https://contoso.com/support", "http://Contoso.example:8080/a?b=c"] {
            assert_eq!(url.check(good).unwrap(), good);
        }
        for bad in
            ["contoso", "ftp://contoso.com", "https://user:pw@contoso.com", "www.contoso .com", "https://", "127.0.0.1"]
        {
            assert!(url.check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn currencies_and_domains() {
        assert_eq!(rule(Rule::Currency).check("eur").unwrap(), "EUR");
        for bad in ["EU", "EURO", "E1R"] {
            assert!(rule(Rule::Currency).check(bad).is_err(), "{bad}");
        }
        assert_eq!(rule(Rule::Domain).check("contoso.onmicrosoft.com").unwrap(), "contoso.onmicrosoft.com");
        for bad in ["contoso", "contoso..com", "-contoso.com", "https://contoso.com"] {
            assert!(rule(Rule::Domain).check(bad).is_err(), "{bad}");
        }
    }
}
