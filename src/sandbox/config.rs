//! The sandbox's settings: what it is seeded with, which credentials it accepts, and the faults it injects.
//!
//! Plain data. `Faults` also travels as JSON through `POST /_sandbox/faults`, so every field has a default and a
//! partial body replaces the settings with defaults for what it leaves out.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// Everything `Sandbox::start` needs. `SandboxConfig::default()` is an empty sandbox on a free port with no faults;
/// the seeding fields add up (generated customers, then the given ids, then the given profiles).
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// The port on 127.0.0.1 (0: any free port). The sandbox never binds another address.
    pub port: u16,
    /// Seeds the generated customers and every random fault, so runs are reproducible.
    pub seed: u64,
    /// How many customers to generate.
    pub customers: usize,
    /// Customer ids to seed, each with a generated profile (the command line reads those of a CSV with `input`).
    pub customer_ids: Vec<String>,
    /// Customer billing profiles to seed as they are (each with an `id`; see `seed::read_profiles`).
    pub profiles: Vec<Value>,
    /// Customers seeded as "no relationship": they exist but answer 403 with code 20002 (no commerce relationship).
    pub forbidden_customers: Vec<String>,
    /// The credentials the token endpoint accepts.
    pub credentials: AcceptedCredentials,
    /// Send error codes as JSON strings (`"2055"`) instead of numbers.
    pub codes_as_strings: bool,
    /// Where the support profile takes a PUT.
    pub support_put_path: SupportPutPath,
    /// The `resource` (token audience) the token endpoint accepts: the public cloud's API root by default, the
    /// 21Vianet one to rehearse `--cloud china`.
    pub token_resource: String,
    /// The faults to inject from the start (changeable later).
    pub faults: Faults,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            port: 0,
            seed: 1,
            customers: 0,
            customer_ids: Vec::new(),
            profiles: Vec::new(),
            forbidden_customers: Vec::new(),
            credentials: AcceptedCredentials::default(),
            codes_as_strings: false,
            support_put_path: SupportPutPath::default(),
            token_resource: crate::wire::TOKEN_RESOURCE.to_string(),
            faults: Faults::default(),
        }
    }
}

/// Where the support profile takes a PUT. The docs page names `/v1/profiles/supportprofile`; the SDKs send it to
/// `/v1/profiles/support` (`wire::PartnerProfileKind::put_path`). Only one is served for PUT, the other answers 405
/// (`/support`, which also serves the GET) or 404 (`/supportprofile`), so a client's fallback is tested both ways.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SupportPutPath {
    /// `PUT /v1/profiles/support`, as the SDKs send it: known to work.
    #[default]
    Sdk,
    /// `PUT /v1/profiles/supportprofile`, as the docs page says.
    Documented,
}

/// The app credentials and the refresh token the token endpoint accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptedCredentials {
    pub client_id: String,
    pub client_secret: String,
    /// Valid from the start (until revoked), like a refresh token a partner admin consented with.
    pub refresh_token: String,
}

impl AcceptedCredentials {
    pub const DEFAULT_CLIENT_ID: &'static str = "sandbox-client";
    pub const DEFAULT_CLIENT_SECRET: &'static str = "sandbox-secret";
    pub const DEFAULT_REFRESH_TOKEN: &'static str = "sandbox-refresh-token";
    /// The tenant the printed lines name; the token endpoint accepts any tenant in its path.
    pub const DEFAULT_TENANT: &'static str = "sandbox-tenant";
}

impl Default for AcceptedCredentials {
    fn default() -> Self {
        AcceptedCredentials {
            client_id: Self::DEFAULT_CLIENT_ID.into(),
            client_secret: Self::DEFAULT_CLIENT_SECRET.into(),
            refresh_token: Self::DEFAULT_REFRESH_TOKEN.into(),
        }
    }
}

/// How a stale `If-Match` is answered (the real service's choice is not documented).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StaleEtag {
    /// 412 Precondition Failed.
    #[default]
    #[serde(rename = "412")]
    PreconditionFailed,
    /// 400 with code 2055 "Etag is no longer valid".
    #[serde(rename = "2055")]
    Code2055,
    /// Either, at random (half and half).
    Mixed,
}

/// The faults the sandbox injects. All off by default; probabilities are in 0..=1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Added to every `/v1` request.
    pub latency_ms: u64,
    /// A random extra delay of up to this many milliseconds.
    pub jitter_ms: u64,
    /// A token bucket over `/v1` requests, in requests per second; `None`: no limit.
    pub rate_limit: Option<f64>,
    /// The most tokens the bucket holds (its burst); `None`: one second's worth (the rate, at least 1). A small
    /// burst makes a strict limiter, which answers 429 to any two requests closer than the rate allows.
    pub rate_burst: Option<f64>,
    /// The probability of a 500 or 503 (half and half) before anything is applied.
    pub error_rate: f64,
    /// The probability that a PUT is applied and then answered by a dropped connection.
    pub drop_after_commit: f64,
    /// The probability that someone else edits a customer's profile right after a GET of it.
    pub concurrent_edit: f64,
    /// How a stale etag is answered.
    pub stale_etag: StaleEtag,
    /// Every `/v1` request answered 503.
    pub outage: bool,
    /// The partner's consent was withdrawn: every `/v1` request answered 403 without a code that names a customer
    /// (the case the job's "credentials gone" streak is for).
    pub consent_withdrawn: bool,
    /// App+User tokens (the refresh-token grant's) signed in without MFA: every `/v1` request with one is answered 401
    /// naming the MFA requirement, as Partner Center does from 1 April 2026 (the exact answer is not documented).
    pub mfa_required: bool,
    /// The lifetime of access tokens issued from now on, in seconds.
    pub token_lifetime_secs: u64,
    /// The authorize endpoint sends the browser back with `access_denied` (the user refused), not a code.
    pub sign_in_refused: bool,
    /// The `interval` of a device code: the seconds a client waits between polls (polling sooner: `slow_down`).
    pub device_code_interval_secs: u64,
    /// How long a sign-in's refresh token still works after a renewal replaced it (0: refused at once).
    pub refresh_token_grace_secs: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency_ms: 0,
            jitter_ms: 0,
            rate_limit: None,
            rate_burst: None,
            error_rate: 0.0,
            drop_after_commit: 0.0,
            concurrent_edit: 0.0,
            stale_etag: StaleEtag::default(),
            outage: false,
            consent_withdrawn: false,
            mfa_required: false,
            token_lifetime_secs: 3600,
            sign_in_refused: false,
            device_code_interval_secs: 5,
            refresh_token_grace_secs: 60,
        }
    }
}

impl Faults {
    pub(crate) fn token_lifetime(&self) -> Duration {
        Duration::from_secs(self.token_lifetime_secs)
    }

    /// Whether any setting lies outside its range (a probability outside 0..=1, a rate not above 0).
    pub(crate) fn check(&self) -> Result<(), String> {
        let probabilities = [
            ("error_rate", self.error_rate),
            ("drop_after_commit", self.drop_after_commit),
            ("concurrent_edit", self.concurrent_edit),
        ];
        for (name, value) in probabilities {
            if !(0.0..=1.0).contains(&value) {
                return Err(format!("{name} must be a probability between 0 and 1, not {value}"));
            }
        }
        match (self.rate_limit, self.rate_burst) {
            (Some(rate), _) if !(rate > 0.0 && rate.is_finite()) => {
                Err(format!("rate_limit must be above 0, not {rate}"))
            }
            (_, Some(burst)) if !(burst >= 1.0 && burst.is_finite()) => {
                Err(format!("rate_burst must be at least 1, not {burst}"))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_faults_body_takes_defaults() {
        let faults: Faults = serde_json::from_str(r#"{"outage": true, "stale_etag": "2055"}"#).unwrap_or_default();
        assert!(faults.outage);
        assert_eq!(faults.stale_etag, StaleEtag::Code2055);
        assert_eq!(faults.token_lifetime_secs, 3600);
    }

    #[test]
    fn out_of_range_faults_are_refused() {
        assert!(Faults { error_rate: 1.5, ..Faults::default() }.check().is_err());
        assert!(Faults { rate_limit: Some(0.0), ..Faults::default() }.check().is_err());
        assert!(Faults { rate_limit: Some(0.5), ..Faults::default() }.check().is_ok());
        assert!(Faults { rate_limit: Some(5.0), rate_burst: Some(0.5), ..Faults::default() }.check().is_err());
        assert!(Faults { rate_limit: Some(5.0), rate_burst: Some(2.0), ..Faults::default() }.check().is_ok());
    }
}
