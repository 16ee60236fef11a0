//! Sign-in: `pcbulk login` as the identity platform (v2.0) documents it, and the sign-in it keeps.
//!
//! - [`browser`]: the authorization code flow with PKCE (`S256`), the answer caught by a one-request listener on
//!   127.0.0.1 that the redirect URI names as `http://localhost:PORT`.
//! - [`device`]: the device authorization grant, polled at the service's interval.
//! - [`store`]: where the sign-in is kept (a 0600 file under the user's config directory, the refresh token in the
//!   OS credential store when there is one: [`os_store`]), its renewal lock.
//! - [`claims`]: who signed in, read from the ID token's claims.
//!
//! Both flows end in [`finish`]: the token answer becomes a [`store::SignIn`] to keep (the user's name) and its
//! refresh token; never the access token or the ID token. This module must never print, log or keep a code, a
//! verifier, a device code or a token anywhere but in the store.

pub mod browser;
pub mod claims;
pub mod device;
pub mod os_store;
pub mod store;

use crate::secret::Secret;
use crate::wire::{SignInTokenResponse, TokenErrorBody, sign_in};
use std::time::Duration;
use store::{KeptIn, SignIn};

/// Where and as whom to sign in.
#[derive(Clone, Debug)]
pub struct LoginConfig {
    /// `public` or `china`.
    pub cloud: String,
    /// The authority root, like `https://login.microsoftonline.com`.
    pub authority: String,
    pub tenant: String,
    pub client_id: String,
    /// The token audience: the cloud's API root.
    pub resource: String,
    /// How long the user has to finish in the browser (the device flow takes the service's own limit).
    pub wait: Duration,
}

impl LoginConfig {
    fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.authority.trim_end_matches('/'), path)
    }

    pub fn token_url(&self) -> String {
        self.endpoint(&sign_in::token_path(self.tenant.trim()))
    }

    pub fn scope(&self) -> String {
        sign_in::scope(&self.resource)
    }

    /// The command that runs this sign-in again.
    pub fn login_command(&self) -> String {
        store::login_command(&self.cloud, &self.authority, &self.tenant, &self.client_id)
    }
}

/// Why a sign-in did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("cannot listen on 127.0.0.1 for the browser's answer: {0}")]
    Listen(#[source] std::io::Error),
    #[error("the sign-in was refused ({error}: {description}): run `{command}` again and approve it in the browser")]
    Refused { error: String, description: String, command: String },
    #[error("the browser came back with the answer of another sign-in (its state differs): run `{command}` again")]
    StateMismatch { command: String },
    #[error(
        "no answer came back from the browser within {seconds} s: run `{command}` again, or add --device-code on a \
         machine without a browser"
    )]
    TimedOut { seconds: u64, command: String },
    #[error("the device code expired before it was approved (expired_token): run `{command} --device-code` again")]
    DeviceCodeExpired { command: String },
    #[error(
        "the sign-in was declined on the device page (access_denied): run `{command} --device-code` again and approve it"
    )]
    DeviceCodeDenied { command: String },
    #[error(
        "the token endpoint answered without a refresh token: the app registration must allow offline_access \
         (a public client with the Partner Center API's delegated permission)"
    )]
    NoRefreshToken,
    #[error("the sign-in endpoint answered http {status} without what it should: {excerpt}")]
    Malformed { status: u16, excerpt: String },
    #[error("the sign-in endpoint could not be reached: {0}: try again")]
    Unavailable(String),
    #[error("cannot build the http client for the sign-in")]
    Build(#[source] reqwest::Error),
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// The answer of one POST to a sign-in endpoint.
pub(crate) enum Answer<T> {
    Granted(T),
    /// The service's refusal, in its own words (`error`, first line of `error_description`).
    Refused {
        error: String,
        description: String,
    },
}

/// The HTTP client of a sign-in (no redirects followed: the token endpoints never redirect).
pub(crate) fn http_client() -> Result<reqwest::Client, SignInError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(SignInError::Build)
}

/// POSTs a form and reads the answer as `T` or as the identity platform's refusal.
pub(crate) async fn post_form<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> Result<Answer<T>, SignInError> {
    let response = http.post(url).form(form).send().await;
    let response = response.map_err(|error| SignInError::Unavailable(crate::http::describe_transport(&error)))?;
    let status = response.status().as_u16();
    let body =
        response.bytes().await.map_err(|error| SignInError::Unavailable(crate::http::describe_transport(&error)))?;
    if (200..300).contains(&status) {
        return serde_json::from_slice(&body)
            .map(Answer::Granted)
            .map_err(|_| SignInError::Malformed { status, excerpt: "not the expected json".into() });
    }
    if status == 408 || status == 429 || status >= 500 {
        return Err(SignInError::Unavailable(format!("http {status}")));
    }
    match serde_json::from_slice::<TokenErrorBody>(&body) {
        Ok(refusal) => Ok(Answer::Refused {
            error: crate::http::excerpt(refusal.error.as_bytes()),
            description: first_line(refusal.error_description.as_deref().unwrap_or_default()),
        }),
        Err(_) => Err(SignInError::Malformed { status, excerpt: crate::http::excerpt(&body) }),
    }
}

/// The first line of a description ("AADSTS70000: ..."), without the trace and correlation ids, at most 200 chars.
pub(crate) fn first_line(description: &str) -> String {
    let line = description.lines().map(str::trim).find(|line| !line.is_empty()).unwrap_or("");
    line.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// Turns a granted sign-in into what is kept: the sign-in (to be kept where `kept_in` says) and its refresh token.
pub(crate) fn finish(
    config: &LoginConfig,
    answer: SignInTokenResponse,
    kept_in: KeptIn,
) -> Result<(SignIn, Secret), SignInError> {
    let refresh_token = answer.token.refresh_token.ok_or(SignInError::NoRefreshToken)?;
    let claims = answer.id_token.as_deref().map(claims::read).unwrap_or_default();
    let sign_in = SignIn {
        cloud: config.cloud.clone(),
        authority: config.authority.trim_end_matches('/').to_string(),
        tenant: config.tenant.trim().to_string(),
        client_id: config.client_id.clone(),
        resource: config.resource.clone(),
        user: claims.user,
        user_name: claims.name,
        kept_in,
    };
    Ok((sign_in, Secret::new(refresh_token)))
}
