//! The wire: what travels between a client and Partner Center (or the sandbox).
//!
//! Header names, paths, and the JSON shapes of errors and tokens. This is the only module the engine and the
//! sandbox share: the sandbox is a peer of the engine, not a mirror of it, so nothing here knows about CSV rows,
//! merging, pacing or state.

pub mod listing;

use serde::{Deserialize, Serialize};
use std::fmt;

/// Identifies one call; a retry of the same call after a transient failure carries the same value.
pub const HEADER_REQUEST_ID: &str = "MS-RequestId";
/// Identifies a call for troubleshooting; fresh per call.
pub const HEADER_CORRELATION_ID: &str = "MS-CorrelationId";
pub const HEADER_CONTRACT_VERSION: &str = "MS-Contract-Version";
pub const HEADER_APPLICATION: &str = "MS-PartnerCenter-Application";
pub const HEADER_LOCALE: &str = "X-Locale";

/// The `resource` form field of both token grants.
pub const TOKEN_RESOURCE: &str = "https://api.partnercenter.microsoft.com";

/// The error code Partner Center sends (with a 400) when an `If-Match` etag is stale.
pub const CODE_ETAG_STALE: i64 = 2055;

/// 403 with this code: "the partner has no commerce relationship with the customer" (partner-center.md, Errors;
/// learn.microsoft.com/partner-center/developer/error-codes). It is about that one customer, not the credentials.
pub const CODE_NO_RELATIONSHIP: i64 = 20002;

/// The 403 codes that name one customer rather than the caller's credentials: a row refused with one fails alone and
/// never counts towards the job's "credentials gone" streak. Only 20002 is documented as such; add others here when
/// the service is seen sending them.
pub const CUSTOMER_SPECIFIC_CODES: &[i64] = &[CODE_NO_RELATIONSHIP];

/// Whether an error code (as the service sent it, number or text) names one customer rather than the credentials.
pub fn is_customer_specific(code: &str) -> bool {
    code.trim().parse::<i64>().is_ok_and(|code| CUSTOMER_SPECIFIC_CODES.contains(&code))
}

/// The path of a customer's billing profile.
pub fn customer_billing_profile_path(customer_id: &str) -> String {
    format!("/v1/customers/{customer_id}/profiles/billing")
}

/// The path of the token endpoint of `tenant`, below the authority.
pub fn token_path(tenant: &str) -> String {
    format!("/{tenant}/oauth2/token")
}

/// The identity platform (v2.0) endpoints of interactive sign-in (`pcbulk login`), below the authority:
/// learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow and v2-oauth2-device-code.
pub mod sign_in {
    /// The authorization endpoint of `tenant` (the browser is sent there).
    pub fn authorize_path(tenant: &str) -> String {
        format!("/{tenant}/oauth2/v2.0/authorize")
    }

    /// The device authorization endpoint of `tenant`.
    pub fn device_code_path(tenant: &str) -> String {
        format!("/{tenant}/oauth2/v2.0/devicecode")
    }

    /// The v2.0 token endpoint of `tenant`: every grant of a sign-in, its renewals included.
    pub fn token_path(tenant: &str) -> String {
        format!("/{tenant}/oauth2/v2.0/token")
    }

    /// The scope of a sign-in: the API's static permissions, a refresh token, and an ID token naming the user.
    pub fn scope(resource: &str) -> String {
        format!("{}/.default offline_access openid profile", resource.trim_end_matches('/'))
    }

    pub const RESPONSE_TYPE_CODE: &str = "code";
    pub const CODE_CHALLENGE_METHOD: &str = "S256";
    pub const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";
    pub const GRANT_DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

    /// Form and query fields of the sign-in requests (with `token_form`'s).
    pub const SCOPE: &str = "scope";
    pub const REDIRECT_URI: &str = "redirect_uri";
    pub const RESPONSE_TYPE: &str = "response_type";
    pub const STATE: &str = "state";
    pub const CODE: &str = "code";
    pub const CODE_VERIFIER: &str = "code_verifier";
    pub const CODE_CHALLENGE: &str = "code_challenge";
    pub const CODE_CHALLENGE_METHOD_FIELD: &str = "code_challenge_method";
    pub const DEVICE_CODE: &str = "device_code";
    pub const PROMPT: &str = "prompt";
    pub const ERROR: &str = "error";
    pub const ERROR_DESCRIPTION: &str = "error_description";

    /// The device flow's answers while polling (RFC 8628 section 3.5).
    pub const AUTHORIZATION_PENDING: &str = "authorization_pending";
    pub const SLOW_DOWN: &str = "slow_down";
    pub const EXPIRED_TOKEN: &str = "expired_token";
    pub const ACCESS_DENIED: &str = "access_denied";
    /// The refusal of a refresh token that is revoked, expired or already replaced.
    pub const INVALID_GRANT: &str = "invalid_grant";
}

/// The answer of the device authorization endpoint. `device_code` is a secret: `Debug` hides it.
#[derive(Clone, Serialize, Deserialize)]
pub struct DeviceCodeResponse {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub expires_in: Seconds,
    /// Seconds between polls; 5 when absent (RFC 8628).
    #[serde(default)]
    pub interval: Option<Seconds>,
    #[serde(default)]
    pub message: Option<String>,
}

impl fmt::Debug for DeviceCodeResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCodeResponse")
            .field("device_code", &"<redacted>")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// The answer of the v2.0 token endpoint to a sign-in grant: a token response with the ID token beside it.
#[derive(Clone, Serialize, Deserialize)]
pub struct SignInTokenResponse {
    #[serde(flatten)]
    pub token: TokenResponse,
    /// A JWT whose claims name the user (`preferred_username`, `name`, `oid`, `tid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl fmt::Debug for SignInTokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignInTokenResponse").field("token", &self.token).finish_non_exhaustive()
    }
}

/// The path of a country's address rules.
pub fn country_rules_path(iso2: &str) -> String {
    format!("/v1/countryvalidationrules/{iso2}")
}

/// The path of the address validation service.
pub const ADDRESS_VALIDATION_PATH: &str = "/v1/validations/address";

/// The partner's own profiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PartnerProfileKind {
    Billing,
    LegalBusiness,
    Organization,
    Support,
}

impl PartnerProfileKind {
    pub const ALL: [PartnerProfileKind; 4] = [
        PartnerProfileKind::Billing,
        PartnerProfileKind::LegalBusiness,
        PartnerProfileKind::Organization,
        PartnerProfileKind::Support,
    ];

    /// The name users type: `billing`, `legalbusiness`, `organization`, `support`.
    pub fn name(self) -> &'static str {
        match self {
            PartnerProfileKind::Billing => "billing",
            PartnerProfileKind::LegalBusiness => "legalbusiness",
            PartnerProfileKind::Organization => "organization",
            PartnerProfileKind::Support => "support",
        }
    }

    pub fn from_name(name: &str) -> Option<PartnerProfileKind> {
        Self::ALL.into_iter().find(|kind| kind.name().eq_ignore_ascii_case(name))
    }

    /// Where the profile is read.
    pub fn get_path(self) -> &'static str {
        match self {
            PartnerProfileKind::Billing => "/v1/profiles/billing",
            PartnerProfileKind::LegalBusiness => "/v1/profiles/legalbusiness",
            PartnerProfileKind::Organization => "/v1/profiles/organization",
            PartnerProfileKind::Support => "/v1/profiles/support",
        }
    }

    /// Where the profile is written. The support profile's PUT: the docs page "Update support profile"
    /// (learn.microsoft.com/partner-center/developer/update-support-profile) says `/v1/profiles/supportprofile`, but
    /// its own answer's self link, the REST reference (learn.microsoft.com/rest/api/partner-center/
    /// manage-account-profiles/update-support-profile) and both official SDKs (.NET
    /// `Source/PartnerSDK/Configuration/PartnerSdkConfiguration.json`, Java
    /// `PartnerSdk/src/main/resources/PartnerSdkConfiguration.json`: `"UpdateSupportProfile": "profiles/support"`)
    /// use `/v1/profiles/support`: that is the path sent first; [`SUPPORT_PUT_PATH_DOCUMENTED`] is the fallback.
    pub fn put_path(self) -> &'static str {
        self.get_path()
    }

    /// The `attributes.objectType` of the profile.
    pub fn object_type(self) -> &'static str {
        match self {
            PartnerProfileKind::Billing => "BillingProfile",
            PartnerProfileKind::LegalBusiness => "LegalBusinessProfile",
            PartnerProfileKind::Organization => "OrganizationProfile",
            PartnerProfileKind::Support => "PartnerSupportProfile",
        }
    }
}

/// The support profile's PUT path the docs page names, tried when `/v1/profiles/support` answers 404 or 405.
pub const SUPPORT_PUT_PATH_DOCUMENTED: &str = "/v1/profiles/supportprofile";

/// The query the docs' example and the .NET SDK (`GetLegalBusinessProfile` with `VettingVersion`, default
/// `Current`) send with the legal business profile's GET (learn.microsoft.com/partner-center/developer/
/// get-legal-business-profile): `?vettingVersion=Current`.
pub const LEGAL_BUSINESS_QUERY: (&str, &str) = ("vettingVersion", "Current");

/// An error code as Partner Center sends it: documented as a string, seen as a number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ErrorCode {
    Number(i64),
    Text(String),
}

impl ErrorCode {
    /// The code as a number, whichever way it was sent.
    pub fn as_number(&self) -> Option<i64> {
        match self {
            ErrorCode::Number(number) => Some(*number),
            ErrorCode::Text(text) => text.trim().parse().ok(),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Number(number) => write!(f, "{number}"),
            ErrorCode::Text(text) => f.write_str(text),
        }
    }
}

/// The body of an error response: `{code, description, data, source}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub code: Option<ErrorCode>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub data: Vec<serde_json::Value>,
    #[serde(default)]
    pub source: Option<String>,
}

/// The body of a 429: `{"statusCode": 429, "message": "Rate limit is exceeded. Try again in 57 seconds."}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleBody {
    pub status_code: u16,
    pub message: String,
}

/// A number of seconds sent either as a JSON number or as a string (token endpoints do both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seconds(pub u64);

impl Serialize for Seconds {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum NumberOrText {
            Number(u64),
            Text(String),
        }
        match NumberOrText::deserialize(deserializer)? {
            NumberOrText::Number(number) => Ok(Seconds(number)),
            NumberOrText::Text(text) => text
                .trim()
                .parse()
                .map(Seconds)
                .map_err(|_| serde::de::Error::custom(format!("not a number of seconds: {text:?}"))),
        }
    }
}

/// The answer of the token endpoint. Holds a secret: `Debug` shows none of it.
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub token_type: Option<String>,
    pub expires_in: Seconds,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The body of a token endpoint's refusal (Azure AD): `{"error": "invalid_grant", "error_description": "AADSTS..."}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenErrorBody {
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
}

/// The form fields of the token grants.
pub mod token_form {
    pub const GRANT_TYPE: &str = "grant_type";
    pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
    pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
    pub const REFRESH_TOKEN: &str = "refresh_token";
    pub const CLIENT_ID: &str = "client_id";
    pub const CLIENT_SECRET: &str = "client_secret";
    pub const RESOURCE: &str = "resource";
}

/// Where Azure AD answers, unless `--authority` says otherwise.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_is_read_as_number_or_string() {
        let body: ErrorBody =
            serde_json::from_str(r#"{"code": 2055, "description": "Etag is no longer valid"}"#).unwrap();
        assert_eq!(body.code.as_ref().and_then(ErrorCode::as_number), Some(2055));
        let body: ErrorBody = serde_json::from_str(r#"{"code": "27002", "data": [], "source": "PartnerFD"}"#).unwrap();
        assert_eq!(body.code.as_ref().and_then(ErrorCode::as_number), Some(27002));
    }

    #[test]
    fn a_relationship_refusal_is_customer_specific() {
        assert!(is_customer_specific("20002") && is_customer_specific(" 20002"));
        assert!(!is_customer_specific("") && !is_customer_specific("401") && !is_customer_specific("x"));
    }

    #[test]
    fn expires_in_is_read_as_number_or_string() {
        let token: TokenResponse = serde_json::from_str(r#"{"access_token": "a", "expires_in": "3599"}"#).unwrap();
        assert_eq!(token.expires_in, Seconds(3599));
        let token: TokenResponse = serde_json::from_str(r#"{"access_token": "a", "expires_in": 60}"#).unwrap();
        assert_eq!(token.expires_in, Seconds(60));
    }

    #[test]
    fn token_debug_is_redacted() {
        let token = TokenResponse {
            access_token: "secret-access".into(),
            token_type: Some("Bearer".into()),
            expires_in: Seconds(1),
            refresh_token: Some("secret-refresh".into()),
        };
        let shown = format!("{token:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn partner_kinds_round_trip_their_names() {
        for kind in PartnerProfileKind::ALL {
            assert_eq!(PartnerProfileKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(PartnerProfileKind::Support.put_path(), "/v1/profiles/support");
    }
}
