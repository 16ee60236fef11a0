//! Interactive sign-in as the identity platform (v2.0) does it: the authorize endpoint (auto-approving, or refusing
//! when `Faults::sign_in_refused`), the device authorization endpoint with codes a test approves through
//! `/_sandbox/device/approve`, and the v2.0 token endpoint for the authorization code (PKCE `S256` checked), device code
//! and refresh token grants, with refresh-token rotation: each renewal issues a new refresh token, and the one it
//! replaces stops working `Faults::refresh_token_grace_secs` later.
//!
//! Owns the codes, the devices and the rotating refresh tokens; never logs any of them.

use super::Shared;
use super::respond::token_error;
use crate::wire::{DeviceCodeResponse, Seconds, SignInTokenResponse, TokenResponse, sign_in};
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

type SharedState = State<Arc<Shared>>;

/// How long a device code may wait for its approval (the identity platform's documented 15 minutes).
const DEVICE_CODE_LIFETIME: Duration = Duration::from_secs(900);

/// The user every sign-in signs in as.
pub const SANDBOX_USER: &str = "admin@sandbox.onmicrosoft.com";

/// The query of `GET /{tenant}/oauth2/v2.0/authorize`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuthorizeQuery {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    code_challenge: Option<String>,
    #[serde(default)]
    code_challenge_method: Option<String>,
}

/// The form of `POST /{tenant}/oauth2/v2.0/token` and `/devicecode`. Holds secrets: no `Debug`.
#[derive(Default, Deserialize)]
pub(crate) struct SignInRequest {
    #[serde(default)]
    grant_type: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    redirect_uri: Option<String>,
    #[serde(default)]
    code_verifier: Option<String>,
    #[serde(default)]
    device_code: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
}

struct PendingCode {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    tenant: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Approval {
    Pending,
    Approved,
    Denied,
}

struct Device {
    user_code: String,
    client_id: String,
    tenant: String,
    approval: Approval,
    expires_at: Instant,
    interval: Duration,
    last_poll: Option<Instant>,
}

struct Rotating {
    tenant: String,
    /// When a renewal replaced this refresh token; it works until the grace period after that.
    replaced_at: Option<Instant>,
}

#[derive(Default)]
struct Tables {
    codes: HashMap<String, PendingCode>,
    devices: HashMap<String, Device>,
    refresh: HashMap<String, Rotating>,
    /// Every secret handed out (codes, device codes, tokens), for tests that look for leaks.
    issued: Vec<String>,
}

/// The sign-in authority's state.
#[derive(Default)]
pub(crate) struct SignIns {
    tables: Mutex<Tables>,
}

impl SignIns {
    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        // A panic while holding this lock leaves the tables consistent (each update is a single insert or remove).
        super::lock(&self.tables)
    }

    /// Every sign-in refresh token stops working at once (with the tokens of `auth`).
    pub(crate) fn revoke_all(&self) {
        let mut tables = self.lock();
        tables.refresh.clear();
        tables.codes.clear();
        tables.devices.clear();
    }

    /// Approves (or denies) the device code shown as `user_code`; false when none waits under that code.
    pub(crate) fn decide(&self, user_code: &str, approve: bool) -> bool {
        let mut tables = self.lock();
        let wanted = user_code.trim();
        let Some(device) = tables.devices.values_mut().find(|device| device.user_code.eq_ignore_ascii_case(wanted))
        else {
            return false;
        };
        device.approval = if approve { Approval::Approved } else { Approval::Denied };
        true
    }

    pub(crate) fn issued(&self) -> Vec<String> {
        self.lock().issued.clone()
    }

    fn remember(&self, secret: &str) {
        self.lock().issued.push(secret.to_string());
    }
}

/// Where the browser goes back to: only a loopback `http://` address, as the identity platform allows for desktop apps.
fn is_loopback_redirect(uri: &str) -> bool {
    url::Url::parse(uri)
        .is_ok_and(|url| url.scheme() == "http" && matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")))
}

fn redirect(to: &str, pairs: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(to) else {
        return (StatusCode::BAD_REQUEST, "AADSTS50011: the redirect URI is not valid").into_response();
    };
    url.query_pairs_mut().extend_pairs(pairs);
    (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
}

/// `GET /{tenant}/oauth2/v2.0/authorize`: the user signs in and consents at once (or refuses, on request), and the
/// browser is sent back to the loopback redirect with a code.
pub(crate) async fn authorize(
    State(shared): SharedState,
    axum::extract::Path(tenant): axum::extract::Path<String>,
    Query(query): Query<AuthorizeQuery>,
) -> Response {
    if query.client_id != shared.client_id {
        return (StatusCode::BAD_REQUEST, "AADSTS700016: application not found in the directory").into_response();
    }
    if !is_loopback_redirect(&query.redirect_uri) {
        return (StatusCode::BAD_REQUEST, "AADSTS50011: the redirect URI does not match the application's")
            .into_response();
    }
    let state = query.state.as_deref().unwrap_or_default();
    let refuse = |error: &str, description: &str| {
        redirect(
            &query.redirect_uri,
            &[(sign_in::ERROR, error), (sign_in::ERROR_DESCRIPTION, description), (sign_in::STATE, state)],
        )
    };
    let challenge = query.code_challenge.clone().unwrap_or_default();
    if query.response_type != sign_in::RESPONSE_TYPE_CODE
        || query.code_challenge_method.as_deref() != Some(sign_in::CODE_CHALLENGE_METHOD)
        || challenge.is_empty()
    {
        return refuse("invalid_request", "AADSTS9002325: proof key for code exchange (S256) is required");
    }
    if !scope_names(&query.scope, &shared.token_resource) {
        return refuse("invalid_scope", "AADSTS70011: the provided scope is not valid");
    }
    if shared.faults.read(|faults| faults.sign_in_refused) {
        return refuse(sign_in::ACCESS_DENIED, "AADSTS65004: the user declined to consent to access the app");
    }
    let code = new_secret("sbx-code");
    shared.sign_ins.remember(&code);
    let pending =
        PendingCode { client_id: query.client_id.clone(), redirect_uri: query.redirect_uri.clone(), challenge, tenant };
    shared.sign_ins.lock().codes.insert(code.clone(), pending);
    redirect(&query.redirect_uri, &[(sign_in::CODE, &code), (sign_in::STATE, state)])
}

/// `POST /{tenant}/oauth2/v2.0/devicecode`.
pub(crate) async fn device_code(
    State(shared): SharedState,
    axum::extract::Path(tenant): axum::extract::Path<String>,
    form: Result<Form<SignInRequest>, FormRejection>,
) -> Response {
    let Ok(Form(request)) = form else {
        return token_error("invalid_request", "AADSTS900144: the body must be a form with client_id and scope");
    };
    if request.client_id != shared.client_id {
        return token_error("invalid_client", "AADSTS700016: application not found in the directory");
    }
    if !scope_names(&request.scope, &shared.token_resource) {
        return token_error("invalid_scope", "AADSTS70011: the provided scope is not valid");
    }
    let interval = shared.faults.read(|faults| faults.device_code_interval_secs);
    let device_code = new_secret("sbx-device");
    shared.sign_ins.remember(&device_code);
    let user_code: String = uuid::Uuid::new_v4().simple().to_string().chars().take(8).collect();
    let user_code = user_code.to_ascii_uppercase();
    let verification_uri = format!("{}/_sandbox/devicelogin", shared.url);
    let device = Device {
        user_code: user_code.clone(),
        client_id: request.client_id,
        tenant,
        approval: Approval::Pending,
        expires_at: Instant::now() + DEVICE_CODE_LIFETIME,
        interval: Duration::from_secs(interval),
        last_poll: None,
    };
    shared.sign_ins.lock().devices.insert(device_code.clone(), device);
    let message = format!("To sign in, open {verification_uri} and enter the code {user_code} to authenticate.");
    axum::Json(DeviceCodeResponse {
        device_code,
        user_code,
        verification_uri,
        expires_in: Seconds(DEVICE_CODE_LIFETIME.as_secs()),
        interval: Some(Seconds(interval)),
        message: Some(message),
    })
    .into_response()
}

/// `POST /{tenant}/oauth2/v2.0/token`: the grants of a sign-in.
pub(crate) async fn token(State(shared): SharedState, form: Result<Form<SignInRequest>, FormRejection>) -> Response {
    let Ok(Form(request)) = form else {
        shared.counters.record_token_refusal();
        return token_error("invalid_request", "AADSTS900144: the body must be a form with grant_type");
    };
    let verdict = grant(&shared, &request);
    match verdict {
        Ok((grant, tenant)) => {
            shared.counters.record_token(grant);
            axum::Json(issue(&shared, &request.client_id, &tenant)).into_response()
        }
        Err((error, description)) => {
            shared.counters.record_token_refusal();
            token_error(error, description)
        }
    }
}

type Refusal = (&'static str, &'static str);

/// Checks a grant; answers its counter name and the tenant signed in to.
fn grant(shared: &Shared, request: &SignInRequest) -> Result<(&'static str, String), Refusal> {
    if request.client_id != shared.client_id {
        return Err(("invalid_client", "AADSTS700016: application not found in the directory"));
    }
    if request.client_secret.as_ref().is_some_and(|secret| *secret != shared.client_secret) {
        return Err(("invalid_client", "AADSTS7000215: invalid client secret provided"));
    }
    // The scope is required when renewing; redeeming a code or a device code may leave it out (the sign-in's holds).
    let scope_needed = request.grant_type == "refresh_token" || !request.scope.is_empty();
    if scope_needed && !scope_names(&request.scope, &shared.token_resource) {
        return Err(("invalid_scope", "AADSTS70011: the provided scope is not valid"));
    }
    match request.grant_type.as_str() {
        sign_in::GRANT_AUTHORIZATION_CODE => {
            authorization_code(shared, request).map(|tenant| ("authorization_code", tenant))
        }
        sign_in::GRANT_DEVICE_CODE => device(shared, request).map(|tenant| ("device_code", tenant)),
        "refresh_token" => rotate(shared, request).map(|tenant| ("sign_in_refresh", tenant)),
        _ => Err(("unsupported_grant_type", "AADSTS70003: unsupported grant type")),
    }
}

fn authorization_code(shared: &Shared, request: &SignInRequest) -> Result<String, Refusal> {
    let code = request.code.as_deref().unwrap_or_default();
    // A code is good once, right or wrong.
    let Some(pending) = shared.sign_ins.lock().codes.remove(code) else {
        return Err((sign_in::INVALID_GRANT, "AADSTS70008: the authorization code is unknown, used or expired"));
    };
    if pending.client_id != request.client_id || request.redirect_uri.as_deref() != Some(pending.redirect_uri.as_str())
    {
        return Err((sign_in::INVALID_GRANT, "AADSTS50011: the redirect URI does not match the authorization request"));
    }
    let verifier = request.code_verifier.as_deref().unwrap_or_default();
    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != pending.challenge {
        return Err((
            sign_in::INVALID_GRANT,
            "AADSTS501481: the code_verifier does not match the code_challenge of the authorization request",
        ));
    }
    Ok(pending.tenant)
}

fn device(shared: &Shared, request: &SignInRequest) -> Result<String, Refusal> {
    let code = request.device_code.as_deref().unwrap_or_default();
    let now = Instant::now();
    let mut tables = shared.sign_ins.lock();
    let Some(device) = tables.devices.get_mut(code) else {
        return Err((sign_in::EXPIRED_TOKEN, "AADSTS70019: the device code is unknown or expired"));
    };
    if device.client_id != request.client_id {
        return Err(("invalid_client", "AADSTS700016: the device code was issued to another application"));
    }
    let too_soon = device.last_poll.is_some_and(|last| now < last + device.interval);
    device.last_poll = Some(now);
    let verdict = match device.approval {
        _ if now >= device.expires_at => Err((sign_in::EXPIRED_TOKEN, "AADSTS70020: the device code expired")),
        Approval::Denied => Err((sign_in::ACCESS_DENIED, "AADSTS70000: the user declined the sign-in")),
        Approval::Pending if too_soon => Err((sign_in::SLOW_DOWN, "AADSTS70016: polled sooner than the interval")),
        Approval::Pending => {
            Err((sign_in::AUTHORIZATION_PENDING, "AADSTS70016: the user has not yet entered the code"))
        }
        Approval::Approved => Ok(device.tenant.clone()),
    };
    if !matches!(verdict, Err((sign_in::AUTHORIZATION_PENDING | sign_in::SLOW_DOWN, _))) {
        tables.devices.remove(code);
    }
    verdict
}

fn rotate(shared: &Shared, request: &SignInRequest) -> Result<String, Refusal> {
    let presented = request.refresh_token.as_deref().unwrap_or_default();
    let grace = Duration::from_secs(shared.faults.read(|faults| faults.refresh_token_grace_secs));
    let now = Instant::now();
    let mut tables = shared.sign_ins.lock();
    let Some(rotating) = tables.refresh.get_mut(presented) else {
        return Err((sign_in::INVALID_GRANT, "AADSTS70000: the refresh token is unknown, expired or revoked"));
    };
    if rotating.replaced_at.is_some_and(|replaced_at| now >= replaced_at + grace) {
        return Err((sign_in::INVALID_GRANT, "AADSTS70000: the refresh token was replaced by a newer one"));
    }
    rotating.replaced_at.get_or_insert(now);
    Ok(rotating.tenant.clone())
}

/// A new access token (App+User), a new rotating refresh token and an ID token.
fn issue(shared: &Shared, client_id: &str, tenant: &str) -> SignInTokenResponse {
    let lifetime = shared.faults.read(|faults| faults.token_lifetime());
    let access_token = shared.tokens.issue_app_user(lifetime);
    let refresh_token = new_secret("sbx-signin-refresh");
    {
        let mut tables = shared.sign_ins.lock();
        tables.refresh.insert(refresh_token.clone(), Rotating { tenant: tenant.to_string(), replaced_at: None });
        tables.issued.push(access_token.clone());
        tables.issued.push(refresh_token.clone());
    }
    SignInTokenResponse {
        token: TokenResponse {
            access_token,
            token_type: Some("Bearer".into()),
            expires_in: Seconds(lifetime.as_secs()),
            refresh_token: Some(refresh_token),
        },
        id_token: Some(id_token(&shared.url, client_id, tenant)),
    }
}

/// An unsigned JWT with the claims the identity platform puts in an ID token.
fn id_token(url: &str, client_id: &str, tenant: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let header = json!({"typ": "JWT", "alg": "none"});
    let claims = json!({
        "aud": client_id,
        "iss": format!("{url}/{tenant}/v2.0"),
        "iat": now,
        "exp": now + 3600,
        "tid": tenant,
        "oid": "00000000-0000-4000-8000-00000000ad01",
        "preferred_username": SANDBOX_USER,
        "name": "Sandbox Admin",
    });
    let part = |value: &serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
    format!("{}.{}.", part(&header), part(&claims))
}

/// Whether a scope asks for the API (`{resource}/.default`).
fn scope_names(scope: &str, resource: &str) -> bool {
    let wanted = format!("{}/.default", resource.trim_end_matches('/'));
    scope.split_whitespace().any(|item| item.eq_ignore_ascii_case(&wanted))
}

fn new_secret(prefix: &str) -> String {
    format!("{prefix}.{}", uuid::Uuid::new_v4().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_loopback_http_redirect_is_accepted() {
        assert!(is_loopback_redirect("http://localhost:5555"));
        assert!(is_loopback_redirect("http://127.0.0.1:5555/"));
        assert!(!is_loopback_redirect("https://localhost:5555"));
        assert!(!is_loopback_redirect("http://example.com:5555"));
    }

    #[test]
    fn the_scope_must_name_the_api() {
        let resource = crate::wire::TOKEN_RESOURCE;
        assert!(scope_names(&sign_in::scope(resource), resource));
        assert!(!scope_names("openid offline_access", resource));
    }
}
