//! Pre-flight during a job: fetch a country's rules once (through the job's own client, auth and pace) and check
//! each merged profile against them; optionally ask the address validation service about the merged address.
//! The rules themselves are pure and live in [`crate::preflight`].

use crate::client::Client;
use crate::merge::{FieldChange, value_at};
use crate::preflight::{self, Checks, CountryRules, Move};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// What pre-flight does in this run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PreflightConfig {
    /// Check every merged address against its country's rules.
    pub rules: bool,
    /// Also send every changed address to `POST /v1/validations/address`.
    pub validate_addresses: bool,
    /// An address the validation service does not verify makes the row invalid, not only a warning.
    pub strict_addresses: bool,
}

impl PreflightConfig {
    pub fn ran(&self) -> bool {
        self.rules || self.validate_addresses
    }
}

/// What pre-flight found for one row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreflightFindings {
    /// Rules the merged profile breaks: the row would be refused.
    pub broken: Vec<String>,
    /// Things worth a look that do not stop the row.
    pub warnings: Vec<String>,
    /// The validation service's first suggested address, as one line.
    pub suggestion: Option<String>,
}

impl PreflightFindings {
    /// The report's `preflight` cell.
    pub fn cell(&self) -> String {
        self.broken.iter().chain(&self.warnings).cloned().collect::<Vec<_>>().join("; ")
    }
}

type Cached = Arc<OnceCell<Result<Arc<Checks>, String>>>;

/// The run's pre-flight: its settings and the rules fetched so far, one fetch per country.
pub struct Preflight {
    pub config: PreflightConfig,
    rules: Mutex<HashMap<String, Cached>>,
}

impl Preflight {
    pub fn new(config: PreflightConfig) -> Preflight {
        Preflight { config, rules: Mutex::new(HashMap::new()) }
    }

    async fn checks(&self, client: &Client, country: &str) -> Result<Arc<Checks>, String> {
        let cell = {
            let mut rules = crate::sync::lock(&self.rules);
            rules.entry(country.to_string()).or_default().clone()
        };
        let fetched = cell
            .get_or_init(|| async {
                let answer = client.get(&crate::wire::country_rules_path(country)).await;
                let fetched = answer.map_err(|error| format!("the rules of {country} could not be read: {error}"))?;
                let rules: CountryRules = serde_json::from_value(fetched.body)
                    .map_err(|error| format!("the rules of {country} could not be understood: {error}"))?;
                Ok(Arc::new(Checks::new(rules)))
            })
            .await;
        fetched.clone()
    }

    /// Checks a merged profile with the changes the row makes (only a row that changes an address field goes to the
    /// validation service).
    pub async fn check(&self, client: &Client, profile: &Value, changes: &[FieldChange]) -> PreflightFindings {
        let changed = |field: &str| changes.iter().any(|change| change.field == field);
        let address_changed = changes.iter().any(|change| change.field.starts_with("defaultAddress."));
        let moved =
            Move { country_changed: changed("defaultAddress.country"), state_given: changed("defaultAddress.state") };
        let mut verdict = PreflightFindings::default();
        let country = preflight::country_of(profile);
        if country.is_empty() {
            return verdict;
        }
        if self.config.rules {
            match self.checks(client, &country).await {
                Ok(checks) => {
                    let findings = preflight::check(profile, &checks, moved);
                    verdict.broken = findings.refused;
                    verdict.warnings.extend(findings.warnings);
                    verdict.warnings.extend(checks.skipped.iter().cloned());
                }
                Err(message) => verdict.warnings.push(message),
            }
        }
        if self.config.validate_addresses && address_changed {
            self.validate_address(client, profile, &mut verdict).await;
        }
        verdict
    }

    async fn validate_address(&self, client: &Client, profile: &Value, verdict: &mut PreflightFindings) {
        let text = |key: &str| value_at(profile, &["defaultAddress", key]).as_str().unwrap_or_default().to_string();
        let body = json!({
            "addressLine1": text("addressLine1"),
            "addressLine2": text("addressLine2"),
            "city": text("city"),
            "state": text("state"),
            "postalCode": text("postalCode"),
            "country": preflight::country_of(profile),
        });
        let answer = match client.post_query(crate::wire::ADDRESS_VALIDATION_PATH, &body).await {
            Ok(answer) => answer.body,
            Err(error) => {
                verdict.warnings.push(format!("address validation could not be asked: {error}"));
                return;
            }
        };
        let status = answer["status"].as_str().unwrap_or("None").to_string();
        verdict.suggestion = answer["suggestedAddresses"].as_array().and_then(|list| list.first()).map(one_line);
        if !matches!(status.as_str(), "Verified" | "VerifiedShippable") {
            let message = answer["validationMessage"].as_str().unwrap_or_default();
            let words = format!(
                "address validation: {status}{}",
                if message.is_empty() { String::new() } else { format!(": {message}") }
            );
            if self.config.strict_addresses { verdict.broken.push(words) } else { verdict.warnings.push(words) }
        }
    }
}

/// An address as one line of plain text: `1 Main St, Suite 5, Seattle, WA 98109, US`.
pub fn one_line(address: &Value) -> String {
    let text = |key: &str| address[key].as_str().unwrap_or_default().trim().to_string();
    let region = [text("state"), text("postalCode")].into_iter().filter(|part| !part.is_empty()).collect::<Vec<_>>();
    [text("addressLine1"), text("addressLine2"), text("addressLine3"), text("city"), region.join(" "), text("country")]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_on_one_line() {
        let address = json!({"addressLine1": "Friedrichstraße 68", "city": "Berlin", "postalCode": "10117", "country": "DE", "state": ""});
        assert_eq!(one_line(&address), "Friedrichstraße 68, Berlin, 10117, DE");
    }
}
