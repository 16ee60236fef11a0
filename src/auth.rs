//! Auth: where the bearer token comes from, and keeping it fresh for a job of many hours.
//!
//! Owns the four token sources (a static token, the refresh-token grant, the client-credentials grant, the sign-in
//! kept by `pcbulk login`), the renewal ahead of expiry, the single renewal in flight shared by every worker, the
//! renewal after a 401, and the newest refresh token: in memory for the refresh-token grant; for a kept sign-in, read
//! from its store and written back there under the tenant's lock, so two processes renewing at once each present the
//! newest.
//!
//! It must never put a secret or a token in a log line, an error message or a `Debug` output, never write a token
//! anywhere but a kept sign-in's store, and never send a request to the API itself (the client does; the token endpoint is not paced).

use crate::http::{BaseUrlError, describe_transport, excerpt, validate_base_url};
use crate::pace::backoff_delay;
use crate::signin::store::{SignIn, Store, StoreError};
use crate::wire::{TOKEN_RESOURCE, TokenErrorBody, TokenResponse, sign_in, token_form, token_path};
use rand::RngExt;
use reqwest::Url;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

pub use crate::wire::DEFAULT_AUTHORITY;

/// The most left of a token's lifetime when it is renewed (else a tenth of the lifetime).
const RENEW_MARGIN_MAX: Duration = Duration::from_secs(300);

/// When a renewal ahead of expiry failed transiently, how long the still-valid token is served before trying again.
pub const RETRY_RENEWAL_AFTER: Duration = Duration::from_secs(30);

/// The longest wait for a connection to the token endpoint (a firewall that drops packets answers nothing).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest `error_description` kept from a token endpoint's refusal.
const DESCRIPTION_MAX: usize = 200;

pub use crate::secret::Secret;

/// A bearer token for the API: cheap to clone, compared to tell a stale one from a renewed one.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(Arc<str>);

impl AccessToken {
    pub fn new(value: &str) -> AccessToken {
        AccessToken(Arc::from(value))
    }

    /// The token itself: only for the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// Where the bearer token comes from (the first source the user gave, see cli.md "Authentication").
#[derive(Clone, Debug)]
pub enum Credentials {
    /// `PCBULK_TOKEN` or `--token-file`: used as is, cannot be renewed.
    Static { token: Secret },
    /// App+User: the refresh-token grant (with a client secret for a confidential app).
    RefreshToken {
        authority: String,
        tenant: String,
        client_id: String,
        client_secret: Option<Secret>,
        refresh_token: Secret,
    },
    /// App only: the client-credentials grant.
    ClientCredentials { authority: String, tenant: String, client_id: String, client_secret: Secret },
    /// App+User: the sign-in kept by `pcbulk login`, renewed at the v2.0 token endpoint with `scope`.
    SignedIn { store: Store, sign_in: SignIn },
}

impl Credentials {
    /// What kind of source this is, in words for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Credentials::Static { .. } => "static token",
            Credentials::RefreshToken { .. } => "refresh token",
            Credentials::ClientCredentials { .. } => "client credentials",
            Credentials::SignedIn { .. } => "stored sign-in",
        }
    }
}

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token endpoint refused the credentials (revoked, expired, wrong secret): fatal for the job.
    #[error("the token endpoint refused the {grant} (http {status}): {error}: {description}")]
    Refused { grant: &'static str, status: u16, error: String, description: String },
    /// A static token met a 401: fatal for the job.
    #[error(
        "the api refused the static token (401) and a static token cannot be renewed: \
         give a fresh PCBULK_TOKEN or --token-file, or a refresh token or client credentials"
    )]
    CannotRenew,
    /// The token endpoint answered with something that is not a token: fatal for the job.
    #[error("the token endpoint answered http {status} without a usable token: {excerpt}")]
    Malformed { status: u16, excerpt: String },
    /// The token endpoint failed (5xx, 429, a timeout or a connection dropped after it was made) through every
    /// attempt.
    #[error("the token endpoint failed {attempts} times, last: {reason}")]
    Unavailable { attempts: u32, reason: String },
    /// No connection to the token endpoint could be made through every attempt (a wrong authority, DNS, a firewall,
    /// nothing listening): fatal, like refused credentials. Retrying row after row only burns the job's time.
    #[error(
        "cannot reach the token endpoint {endpoint} ({attempts} tries, last: {reason}): check --authority, DNS and \
         the firewall"
    )]
    Unreachable { endpoint: String, attempts: u32, reason: String },
    /// This machine may open no more files or connections: no fault of the token endpoint or the credentials.
    #[error("cannot ask the token endpoint: the process may open no more files or connections (too many open files)")]
    OutOfDescriptors,
    /// The kept sign-in was refused (revoked, expired, replaced), or is gone or unreadable: only a new sign-in helps.
    #[error("the sign-in kept for tenant {} {}: sign in again with `{}`", .0.tenant, .0.problem, .0.command)]
    SignInAgain(Box<KeptSignInFailure>),
    #[error("bad authority url")]
    Authority(#[source] BaseUrlError),
    #[error("cannot build the http client for the token endpoint")]
    Build(#[source] reqwest::Error),
}

/// What went wrong with a kept sign-in, and the command that signs in again.
#[derive(Debug)]
pub struct KeptSignInFailure {
    pub tenant: String,
    pub command: String,
    pub problem: KeptSignInProblem,
}

#[derive(Debug, thiserror::Error)]
pub enum KeptSignInProblem {
    #[error("was refused ({error}: {description})")]
    Refused { error: String, description: String },
    #[error("cannot be used: {0}")]
    Store(StoreError),
}

impl AuthError {
    /// True when retrying later cannot help: the credentials themselves are refused or unusable.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, AuthError::Unavailable { .. })
    }
}

/// How the token endpoint is called.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// Per request to the token endpoint.
    pub timeout: Duration,
    /// Tries per renewal when the token endpoint fails transiently.
    pub attempts: NonZeroU32,
    /// The backoff before the second try; doubles after.
    pub backoff_base: Duration,
    /// The `resource` (token audience) both grants ask for: the API root of the cloud (`--cloud`).
    pub resource: String,
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        // Four tries: 1 + 3.
        let attempts = NonZeroU32::MIN.saturating_add(3);
        AuthConfig {
            timeout: Duration::from_secs(30),
            attempts,
            backoff_base: Duration::from_secs(1),
            resource: TOKEN_RESOURCE.to_string(),
        }
    }
}

/// A grant: what to send to the token endpoint, and the HTTP client that sends it (made only for a grant: a static
/// token never calls the endpoint, and a client loads the system's root certificates).
struct Grant {
    endpoint: Url,
    client_id: String,
    client_secret: Option<Secret>,
    refreshes: bool,
    /// A kept sign-in: its refresh token lives in the store, and the v2.0 endpoint takes `scope`, not `resource`.
    signed_in: Option<Kept>,
    http: reqwest::Client,
}

struct Kept {
    store: Store,
    tenant: String,
    scope: String,
    command: String,
}

impl Grant {
    fn name(&self) -> &'static str {
        match (&self.signed_in, self.refreshes) {
            (Some(_), _) => "stored sign-in",
            (None, true) => "refresh token",
            (None, false) => "client credentials",
        }
    }
}

struct HeldToken {
    token: AccessToken,
    /// When to renew; `None` for a static token.
    renew_at: Option<Instant>,
    /// When the token stops working; `None` for a static token (unknown).
    expires_at: Option<Instant>,
}

struct TokenState {
    current: Option<HeldToken>,
    /// The newest refresh token (the grant answers with a new one): in memory only.
    refresh_token: Option<Secret>,
    /// The token endpoint could not be reached through the first renewal: every later caller gets the same answer at
    /// once, instead of each worker trying again in turn (a job of 16 workers waited 16 renewals to stop).
    unreachable: Option<(String, u32, String)>,
}

/// A try at the token endpoint that did not give a token.
enum Failure {
    /// No connection could be made (refused, DNS, a connect timeout).
    NoConnection(String),
    Transient(String),
    Fatal(AuthError),
}

/// The token source shared by every worker (`Arc<Auth>`).
pub struct Auth {
    grant: Option<Grant>,
    config: AuthConfig,
    state: Mutex<TokenState>,
    renewals: AtomicU64,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("grant", &self.grant.as_ref().map(Grant::name).unwrap_or("static token"))
            .field("renewals", &self.renewals())
            .finish_non_exhaustive()
    }
}

impl Auth {
    pub fn new(credentials: Credentials, config: AuthConfig) -> Result<Auth, AuthError> {
        let http = || {
            reqwest::Client::builder()
                .timeout(config.timeout)
                .connect_timeout(config.timeout.min(CONNECT_TIMEOUT))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(AuthError::Build)
        };
        let (grant, state) = match credentials {
            Credentials::Static { token } => {
                let held = HeldToken { token: AccessToken::new(token.expose()), renew_at: None, expires_at: None };
                (None, TokenState { current: Some(held), refresh_token: None, unreachable: None })
            }
            Credentials::RefreshToken { authority, tenant, client_id, client_secret, refresh_token } => {
                let endpoint = token_endpoint(&authority, &tenant)?;
                let grant =
                    Grant { endpoint, client_id, client_secret, refreshes: true, signed_in: None, http: http()? };
                (Some(grant), TokenState { current: None, refresh_token: Some(refresh_token), unreachable: None })
            }
            Credentials::ClientCredentials { authority, tenant, client_id, client_secret } => {
                let endpoint = token_endpoint(&authority, &tenant)?;
                let grant = Grant {
                    endpoint,
                    client_id,
                    client_secret: Some(client_secret),
                    refreshes: false,
                    signed_in: None,
                    http: http()?,
                };
                (Some(grant), TokenState { current: None, refresh_token: None, unreachable: None })
            }
            Credentials::SignedIn { store, sign_in } => {
                let endpoint = endpoint_at(&sign_in.authority, &sign_in::token_path(sign_in.tenant.trim()))?;
                let kept = Kept {
                    store,
                    tenant: sign_in.tenant.clone(),
                    scope: sign_in::scope(&sign_in.resource),
                    command: sign_in.login_command(),
                };
                let grant = Grant {
                    endpoint,
                    client_id: sign_in.client_id,
                    client_secret: None,
                    refreshes: true,
                    signed_in: Some(kept),
                    http: http()?,
                };
                (Some(grant), TokenState { current: None, refresh_token: None, unreachable: None })
            }
        };
        Ok(Auth { grant, config, state: Mutex::new(state), renewals: AtomicU64::new(0) })
    }

    /// A token good for now: the one held, or a new one when less than a tenth of its lifetime (at most 5 minutes)
    /// is left. One renewal at a time: callers that come during a renewal wait for it and share its token.
    ///
    /// When that early renewal fails transiently (the token endpoint is down) and the held token has not expired,
    /// the held token is served and the renewal tried again [`RETRY_RENEWAL_AFTER`] later.
    pub async fn token(&self) -> Result<AccessToken, AuthError> {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        if let Some(held) = &state.current
            && held.renew_at.is_none_or(|at| now < at)
        {
            return Ok(held.token.clone());
        }
        match self.renew(&mut state).await {
            Err(error @ (AuthError::Unavailable { .. } | AuthError::Unreachable { .. })) => {
                let now = Instant::now();
                let Some(held) = state.current.as_mut().filter(|held| held.expires_at.is_some_and(|at| now < at))
                else {
                    return Err(error);
                };
                tracing::warn!(%error, "token renewal failed; the current token is still valid, keeping it for now");
                held.renew_at = held.expires_at.map(|expires_at| expires_at.min(now + RETRY_RENEWAL_AFTER));
                Ok(held.token.clone())
            }
            other => other,
        }
    }

    /// The API answered 401 to `stale`: renew, unless another worker already did (then share its token).
    /// A static token cannot be renewed: [`AuthError::CannotRenew`].
    pub async fn renew_after_unauthorized(&self, stale: &AccessToken) -> Result<AccessToken, AuthError> {
        let mut state = self.state.lock().await;
        if self.grant.is_none() {
            return Err(AuthError::CannotRenew);
        }
        if let Some(held) = &state.current
            && held.token != *stale
        {
            return Ok(held.token.clone());
        }
        self.renew(&mut state).await
    }

    /// Tokens obtained from the token endpoint so far.
    pub fn renewals(&self) -> u64 {
        self.renewals.load(Ordering::Relaxed)
    }

    /// False for a static token.
    pub fn can_renew(&self) -> bool {
        self.grant.is_some()
    }

    /// Asks the token endpoint, retrying transient failures with backoff; keeps the answer in `state`.
    async fn renew(&self, state: &mut TokenState) -> Result<AccessToken, AuthError> {
        let Some(grant) = &self.grant else { return Err(AuthError::CannotRenew) };
        if let Some((endpoint, attempts, reason)) = state.unreachable.clone() {
            return Err(AuthError::Unreachable { endpoint, attempts, reason });
        }
        let attempts = self.config.attempts.get();
        let mut attempt = 1;
        // Whether every try so far failed to connect at all.
        let mut never_connected = true;
        loop {
            let asked_at = Instant::now();
            let failure = self.attempt(grant, state.refresh_token.as_ref()).await;
            never_connected &= matches!(failure, Err(Failure::NoConnection(_)));
            match failure {
                Ok(answer) => return Ok(self.keep(state, answer, asked_at)),
                Err(Failure::Fatal(error)) => return Err(error),
                // Never reached since the job began: a wrong authority, DNS or a firewall, not a passing blip (once a
                // token came from it, a later failure to connect stays transient).
                Err(Failure::NoConnection(reason))
                    if attempt >= attempts && never_connected && self.renewals() == 0 =>
                {
                    let endpoint = endpoint_name(&grant.endpoint);
                    state.unreachable = Some((endpoint.clone(), attempts, reason.clone()));
                    return Err(AuthError::Unreachable { endpoint, attempts, reason });
                }
                Err(Failure::Transient(reason) | Failure::NoConnection(reason)) if attempt >= attempts => {
                    return Err(AuthError::Unavailable { attempts, reason });
                }
                Err(Failure::Transient(reason) | Failure::NoConnection(reason)) => {
                    let jitter = rand::rng().random_range(0.0..=1.0);
                    let wait = backoff_delay(self.config.backoff_base, self.config.backoff_base * 32, attempt, jitter);
                    tracing::warn!(attempt, %reason, wait_secs = wait.as_secs_f64(), "token endpoint failed, retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    fn keep(&self, state: &mut TokenState, answer: TokenResponse, asked_at: Instant) -> AccessToken {
        let lifetime = Duration::from_secs(answer.expires_in.0);
        let token = AccessToken::new(&answer.access_token);
        let renew_at = Some(asked_at + lifetime - margin(lifetime));
        state.current = Some(HeldToken { token: token.clone(), renew_at, expires_at: Some(asked_at + lifetime) });
        if let Some(newest) = answer.refresh_token {
            state.refresh_token = Some(Secret::new(newest));
        }
        self.renewals.fetch_add(1, Ordering::Relaxed);
        tracing::info!(expires_in_secs = lifetime.as_secs(), "access token renewed");
        token
    }

    /// One try: a POST to the token endpoint; for a kept sign-in, with the newest refresh token of its store, under
    /// the tenant's lock, and the one the service hands back written there before the lock is let go.
    async fn attempt(&self, grant: &Grant, refresh_token: Option<&Secret>) -> Result<TokenResponse, Failure> {
        let Some(kept) = &grant.signed_in else { return self.request(grant, refresh_token).await };
        let failed = |problem: KeptSignInProblem| {
            let (tenant, command) = (kept.tenant.clone(), kept.command.clone());
            Failure::Fatal(AuthError::SignInAgain(Box::new(KeptSignInFailure { tenant, command, problem })))
        };
        let gone = |source: StoreError| failed(KeptSignInProblem::Store(source));
        let (store, tenant) = (kept.store.clone(), kept.tenant.clone());
        let locked = tokio::task::spawn_blocking(move || {
            let lock = store.lock(&tenant)?;
            let kept = store.load_with_token(&tenant)?;
            Ok::<_, StoreError>((lock, kept))
        })
        .await
        .map_err(|error| Failure::Transient(format!("the sign-in store could not be read: {error}")))?;
        let (lock, kept_token) = locked.map_err(gone)?;
        let Some((_, refresh_token)) = kept_token else {
            let path = kept.store.path(&kept.tenant).unwrap_or_default();
            return Err(gone(StoreError::Unreadable { path, reason: "it was removed (pcbulk logout)".into() }));
        };
        let answer = match self.request(grant, Some(&refresh_token)).await {
            Err(Failure::Fatal(AuthError::Refused { error, description, .. })) => {
                return Err(failed(KeptSignInProblem::Refused { error, description }));
            }
            other => other?,
        };
        if let Some(newest) = &answer.refresh_token {
            // Written back wherever it lives (a file, or the OS store over D-Bus): blocking, off the runtime.
            let (store, tenant, newest) = (kept.store.clone(), kept.tenant.clone(), Secret::new(newest.as_str()));
            let written = tokio::task::spawn_blocking(move || store.replace_refresh_token(&tenant, &newest))
                .await
                .map_err(|error| Failure::Transient(format!("the sign-in store could not be written: {error}")))?;
            if let Some(warning) = written.map_err(gone)? {
                tracing::warn!("{warning}");
            }
            tracing::info!("the service rotated the refresh token; the kept sign-in now holds the new one");
        }
        drop(lock);
        Ok(answer)
    }

    /// One POST to the token endpoint.
    async fn request(&self, grant: &Grant, refresh_token: Option<&Secret>) -> Result<TokenResponse, Failure> {
        let resource = self.config.resource.as_str();
        let mut form = vec![(token_form::CLIENT_ID, grant.client_id.as_str())];
        match &grant.signed_in {
            Some(kept) => form.push((sign_in::SCOPE, kept.scope.as_str())),
            None => form.push((token_form::RESOURCE, resource)),
        }
        match (grant.refreshes, refresh_token) {
            (true, Some(refresh_token)) => {
                form.push((token_form::GRANT_TYPE, token_form::GRANT_REFRESH_TOKEN));
                form.push((token_form::REFRESH_TOKEN, refresh_token.expose()));
            }
            _ => form.push((token_form::GRANT_TYPE, token_form::GRANT_CLIENT_CREDENTIALS)),
        }
        if let Some(secret) = &grant.client_secret {
            form.push((token_form::CLIENT_SECRET, secret.expose()));
        }
        let response = grant.http.post(grant.endpoint.clone()).form(&form).send().await;
        let response = response.map_err(|error| {
            if crate::http::out_of_descriptors(&error) {
                Failure::Fatal(AuthError::OutOfDescriptors)
            } else if error.is_connect() {
                Failure::NoConnection(describe_transport(&error))
            } else {
                Failure::Transient(describe_transport(&error))
            }
        })?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|error| Failure::Transient(describe_transport(&error)))?;
        interpret(grant.name(), status, &body)
    }
}

/// How much of a lifetime is left when the token is renewed: a tenth, at most 5 minutes.
pub(crate) fn margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(RENEW_MARGIN_MAX)
}

/// The token endpoint as an error names it: scheme, host and port, without the tenant's path.
fn endpoint_name(endpoint: &Url) -> String {
    let host = endpoint.host_str().unwrap_or("?");
    match endpoint.port_or_known_default() {
        Some(port) => format!("{}://{host}:{port}", endpoint.scheme()),
        None => format!("{}://{host}", endpoint.scheme()),
    }
}

fn token_endpoint(authority: &str, tenant: &str) -> Result<Url, AuthError> {
    endpoint_at(authority, &token_path(tenant.trim()))
}

fn endpoint_at(authority: &str, path: &str) -> Result<Url, AuthError> {
    let root = validate_base_url(authority).map_err(AuthError::Authority)?;
    let url = format!("{}{}", root.as_str().trim_end_matches('/'), path);
    Url::parse(&url).map_err(|error| AuthError::Authority(BaseUrlError { url, reason: error.to_string() }))
}

/// Reads the token endpoint's answer: a token, a refusal (never retried), or a transient failure.
fn interpret(grant: &'static str, status: u16, body: &[u8]) -> Result<TokenResponse, Failure> {
    if (200..300).contains(&status) {
        return serde_json::from_slice(body)
            .map_err(|_| Failure::Fatal(AuthError::Malformed { status, excerpt: "not a token response".into() }));
    }
    if status == 408 || status == 429 || status >= 500 {
        return Err(Failure::Transient(format!("http {status}")));
    }
    let refusal = match serde_json::from_slice::<TokenErrorBody>(body) {
        Ok(refusal) => refusal,
        Err(_) => TokenErrorBody { error: "unreadable answer".into(), error_description: Some(excerpt(body)) },
    };
    let description = refusal.error_description.as_deref().map(first_line).unwrap_or_default();
    Err(Failure::Fatal(AuthError::Refused { grant, status, error: excerpt(refusal.error.as_bytes()), description }))
}

/// The first line of an Azure AD description ("AADSTS70008: ..."), without the trace and correlation ids after it.
fn first_line(description: &str) -> String {
    let line = description.lines().map(str::trim).find(|line| !line.is_empty()).unwrap_or("");
    let mut kept: String = line.chars().filter(|c| !c.is_control()).take(DESCRIPTION_MAX).collect();
    if line.chars().count() > DESCRIPTION_MAX {
        kept.push('…');
    }
    kept
}

#[cfg(test)]
mod tests;
