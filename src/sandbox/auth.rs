//! Tokens: the grants of `POST /{tenant}/oauth2/token`, the access tokens they issue, their expiry and revocation.
//!
//! Owns the token tables; never logs a token. Access tokens expire after the lifetime in force when they were issued;
//! refresh tokens stay valid until revoked (a refresh grant issues a new one and keeps the old).

use super::config::AcceptedCredentials;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// The form of a token request (both grants).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TokenRequest {
    #[serde(default)]
    pub grant_type: String,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub resource: Option<String>,
}

/// Which grant issued a token (a counter key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Grant {
    ClientCredentials,
    RefreshToken,
    /// Minted directly through the handle.
    Minted,
}

impl Grant {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Grant::ClientCredentials => "client_credentials",
            Grant::RefreshToken => "refresh_token",
            Grant::Minted => "minted",
        }
    }
}

/// What a successful grant hands out.
#[derive(Debug)]
pub(crate) struct Issued {
    pub access_token: String,
    pub lifetime: Duration,
    pub refresh_token: Option<String>,
}

/// Why a grant was refused, in the AAD error vocabulary.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub error: &'static str,
    pub description: String,
}

impl Refusal {
    fn new(error: &'static str, description: impl Into<String>) -> Refusal {
        Refusal { error, description: description.into() }
    }
}

/// The verdict on a bearer token.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Granted,
    Missing,
    Unknown,
    Expired,
}

struct Tables {
    /// Access token → when it expires.
    access: HashMap<String, Instant>,
    refresh: HashSet<String>,
    /// Access tokens issued by the refresh-token grant (App+User).
    app_user: HashSet<String>,
}

/// The sandbox's token authority.
pub(crate) struct TokenStore {
    credentials: AcceptedCredentials,
    tables: Mutex<Tables>,
}

impl TokenStore {
    pub(crate) fn new(credentials: AcceptedCredentials) -> TokenStore {
        let refresh = HashSet::from([credentials.refresh_token.clone()]);
        TokenStore {
            credentials,
            tables: Mutex::new(Tables { access: HashMap::new(), refresh, app_user: HashSet::new() }),
        }
    }

    /// Carries out a grant.
    pub(crate) fn grant(&self, request: &TokenRequest, lifetime: Duration) -> Result<(Grant, Issued), Refusal> {
        match request.grant_type.as_str() {
            "client_credentials" => {
                self.client_credentials(request, lifetime).map(|issued| (Grant::ClientCredentials, issued))
            }
            "refresh_token" => self.refresh(request, lifetime).map(|issued| (Grant::RefreshToken, issued)),
            "" => Err(Refusal::new("invalid_request", "AADSTS900144: the request body must contain grant_type")),
            other => {
                Err(Refusal::new("unsupported_grant_type", format!("AADSTS70003: unsupported grant type {other:?}")))
            }
        }
    }

    fn client_credentials(&self, request: &TokenRequest, lifetime: Duration) -> Result<Issued, Refusal> {
        self.check_client(request, true)?;
        Ok(Issued { access_token: self.issue_access(lifetime), lifetime, refresh_token: None })
    }

    fn refresh(&self, request: &TokenRequest, lifetime: Duration) -> Result<Issued, Refusal> {
        self.check_client(request, false)?;
        let presented = request.refresh_token.as_deref().unwrap_or_default();
        let new_refresh = new_token("sbx-refresh");
        {
            let mut tables = self.lock();
            if !tables.refresh.contains(presented) {
                return Err(Refusal::new(
                    "invalid_grant",
                    "AADSTS70000: the refresh token is unknown, expired or revoked",
                ));
            }
            tables.refresh.insert(new_refresh.clone());
        }
        let access_token = self.issue_access(lifetime);
        self.lock().app_user.insert(access_token.clone());
        Ok(Issued { access_token, lifetime, refresh_token: Some(new_refresh) })
    }

    /// The client id must match; the secret must match when required, or when sent.
    fn check_client(&self, request: &TokenRequest, secret_required: bool) -> Result<(), Refusal> {
        if request.client_id.as_deref() != Some(self.credentials.client_id.as_str()) {
            return Err(Refusal::new("invalid_client", "AADSTS700016: application not found in the directory"));
        }
        let secret_matches = request.client_secret.as_deref() == Some(self.credentials.client_secret.as_str());
        if (secret_required || request.client_secret.is_some()) && !secret_matches {
            return Err(Refusal::new("invalid_grant", "AADSTS7000215: invalid client secret provided"));
        }
        Ok(())
    }

    /// Issues an access token valid for `lifetime`.
    pub(crate) fn issue_access(&self, lifetime: Duration) -> String {
        let token = new_token("sbx-access");
        let expires_at = Instant::now() + lifetime;
        let mut tables = self.lock();
        tables.access.insert(token.clone(), expires_at);
        token
    }

    /// Issues an App+User access token (as a sign-in's grants do) valid for `lifetime`.
    pub(crate) fn issue_app_user(&self, lifetime: Duration) -> String {
        let token = self.issue_access(lifetime);
        self.lock().app_user.insert(token.clone());
        token
    }

    /// Checks an `Authorization` header's value.
    pub(crate) fn check(&self, authorization: Option<&str>) -> Access {
        let Some(token) = authorization.and_then(bearer_token) else {
            return Access::Missing;
        };
        let mut tables = self.lock();
        match tables.access.get(token) {
            None => Access::Unknown,
            Some(expires_at) if Instant::now() >= *expires_at => {
                tables.access.remove(token);
                Access::Expired
            }
            Some(_) => Access::Granted,
        }
    }

    /// Whether an `Authorization` header's token was issued by the refresh-token grant (App+User).
    pub(crate) fn is_app_user(&self, authorization: Option<&str>) -> bool {
        authorization.and_then(bearer_token).is_some_and(|token| self.lock().app_user.contains(token))
    }

    /// Revokes every access and refresh token, the configured refresh token included.
    pub(crate) fn revoke_all(&self) {
        let mut tables = self.lock();
        tables.access.clear();
        tables.refresh.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        // A panic while holding this lock leaves the tables consistent (every update is a single insert or clear).
        super::lock(&self.tables)
    }
}

fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|token| !token.is_empty())
}

fn new_token(prefix: &str) -> String {
    format!("{prefix}.{}", uuid::Uuid::new_v4().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(grant_type: &str, secret: Option<&str>, refresh_token: Option<&str>) -> TokenRequest {
        TokenRequest {
            grant_type: grant_type.into(),
            client_id: Some(AcceptedCredentials::DEFAULT_CLIENT_ID.into()),
            client_secret: secret.map(Into::into),
            refresh_token: refresh_token.map(Into::into),
            resource: None,
        }
    }

    #[test]
    fn client_credentials_need_the_secret() {
        let store = TokenStore::new(AcceptedCredentials::default());
        let hour = Duration::from_secs(3600);
        assert!(store.grant(&request("client_credentials", Some("sandbox-secret"), None), hour).is_ok());
        let refused = store.grant(&request("client_credentials", Some("wrong"), None), hour);
        assert_eq!(refused.err().map(|r| r.error), Some("invalid_grant"));
        assert!(store.grant(&request("client_credentials", None, None), hour).is_err());
    }

    #[test]
    fn refresh_issues_a_new_refresh_token_and_keeps_the_old() {
        let store = TokenStore::new(AcceptedCredentials::default());
        let hour = Duration::from_secs(3600);
        let first = store.grant(&request("refresh_token", None, Some("sandbox-refresh-token")), hour);
        let new_refresh = first.ok().and_then(|(_, issued)| issued.refresh_token).unwrap_or_default();
        assert!(store.grant(&request("refresh_token", None, Some(&new_refresh)), hour).is_ok());
        assert!(store.grant(&request("refresh_token", None, Some("sandbox-refresh-token")), hour).is_ok());
        store.revoke_all();
        assert!(store.grant(&request("refresh_token", None, Some(&new_refresh)), hour).is_err());
    }

    #[test]
    fn bearer_tokens_are_checked() {
        let store = TokenStore::new(AcceptedCredentials::default());
        let token = store.issue_access(Duration::from_secs(60));
        assert_eq!(store.check(Some(&format!("Bearer {token}"))), Access::Granted);
        assert_eq!(store.check(Some(&format!("bearer {token}"))), Access::Granted);
        assert_eq!(store.check(None), Access::Missing);
        assert_eq!(store.check(Some("Bearer nope")), Access::Unknown);
        let expired = store.issue_access(Duration::ZERO);
        assert_eq!(store.check(Some(&format!("Bearer {expired}"))), Access::Expired);
    }
}
