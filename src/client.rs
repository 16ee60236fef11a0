//! Client: one HTTP call to the API, with its headers, its retries and the meaning of its answer.
//!
//! Owns the single `reqwest` client (connection pool shared by every worker), the base-URL policy (https, or http on
//! loopback only), the headers of every call, the retry loop of one call through the pace (a permit per attempt),
//! and the classification of answers into [`Fetched`] or a [`CallError`] that knows what the engine should do.
//!
//! It must never resend a PUT that may have landed, never put a token or a request body in a log line, an error or
//! a `Debug` output, never follow a redirect (it would carry the token elsewhere), and knows nothing of rows, CSV,
//! merging or state.

mod classify;
mod error;

pub use crate::http::validate_base_url;
pub use error::{CallError, CallIds, ErrorClass};

use crate::auth::{AccessToken, Auth, Credentials};
use crate::http::{BaseUrlError, describe_transport, out_of_descriptors};
use crate::pace::{Pace, PaceConfig};
use crate::wire::{
    HEADER_APPLICATION, HEADER_CONTRACT_VERSION, HEADER_CORRELATION_ID, HEADER_LOCALE, HEADER_REQUEST_ID,
};
use bytes::Bytes;
use classify::{Meaning, classify, classify_put};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, IF_MATCH, RETRY_AFTER};
use reqwest::{Method, Url};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The value of `MS-PartnerCenter-Application`.
pub const APPLICATION: &str = concat!("pcbulk/", env!("CARGO_PKG_VERSION"));

/// 429s one call waits through before it gives up (they do not use up attempts, but must not loop forever).
pub const MAX_THROTTLES_PER_CALL: u32 = 50;

/// Everything needed to talk to the API, resolved from the command line.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    pub client: ClientConfig,
    pub credentials: Credentials,
    pub pace: PaceConfig,
}

/// Builds the one client of a run: its auth, its pace, its connection pool.
pub fn connect(config: &ApiConfig) -> Result<Client, ClientError> {
    let auth_config = crate::auth::AuthConfig {
        resource: config.client.token_resource.clone(),
        ..crate::auth::AuthConfig::default()
    };
    let auth =
        Auth::new(config.credentials.clone(), auth_config).map_err(|error| ClientError::Auth(error.to_string()))?;
    Client::new(config.client.clone(), Arc::new(auth), Arc::new(Pace::new(config.pace.clone())))
}

/// How the client talks to the API.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The API root, checked by [`validate_base_url`].
    pub base_url: Url,
    /// The whole of one request, answer included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Sent as `MS-PartnerCenter-Application`.
    pub application: String,
    /// How long a run that has never had an answer from the service keeps trying ([`crate::outage`]).
    pub first_answer_within: Duration,
    /// The token audience of this API (the `resource` of the token grants): the cloud's API root.
    pub token_resource: String,
}

impl ClientConfig {
    /// A configuration for `base_url` with the default timeouts (60 s per request, 10 s to connect).
    pub fn new(base_url: &str) -> Result<ClientConfig, ClientError> {
        Ok(ClientConfig {
            base_url: validate_base_url(base_url)?,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            application: APPLICATION.to_string(),
            first_answer_within: crate::outage::FIRST_ANSWER_WITHIN,
            token_resource: crate::wire::TOKEN_RESOURCE.to_string(),
        })
    }
}

/// Why a client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    BaseUrl(#[from] BaseUrlError),
    #[error("the application name {0:?} cannot go in a header")]
    Application(String),
    #[error("cannot build the http client")]
    Build(#[source] reqwest::Error),
    #[error("cannot set up authentication: {0}")]
    Auth(String),
}

/// A successful call.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub status: u16,
    /// The answer's JSON (`null` when the body was empty).
    pub body: serde_json::Value,
    /// The ids of the attempt that succeeded.
    pub ids: CallIds,
    /// Requests of this call that counted as attempts (429s do not).
    pub attempts: u32,
    /// 429s this call waited through.
    pub throttled: u32,
}

/// The API client shared by every worker (`Arc<Client>`, or clones: all share one connection pool).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    config: ClientConfig,
    /// `Accept`, `MS-Contract-Version`, `MS-PartnerCenter-Application`, `X-Locale`.
    fixed_headers: HeaderMap,
    /// The `Authorization` header of the token last used: a token lives an hour and goes on every request, so its
    /// header (a kilobyte or two, checked byte by byte) is made once per token, not once per request.
    bearer: Arc<std::sync::Mutex<Option<(AccessToken, HeaderValue)>>>,
    auth: Arc<Auth>,
    pace: Arc<Pace>,
    outage: Arc<crate::outage::Outage>,
    /// Once cancelled (the job stops), no request that is not already on the wire goes out, but the reads that
    /// settle a PUT whose answer was lost; reads on the wire are abandoned, PUTs on the wire are awaited.
    stop: CancellationToken,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base_url", &self.config.base_url.as_str()).finish_non_exhaustive()
    }
}

/// One logical call, as the retry loop needs it.
struct Request<'a> {
    method: Method,
    url: Url,
    body: Option<Bytes>,
    if_match: Option<HeaderValue>,
    path: &'a str,
    /// Goes on after the job stops: a read that settles a PUT whose answer was lost.
    settles: bool,
    /// A listing's continuation to its next page (`MS-ContinuationToken`).
    continuation: Option<HeaderValue>,
}

/// The progress of one call through its attempts.
struct CallState {
    ids: CallIds,
    /// Answers and failures that count against `max_attempts` (every attempt but a 429).
    attempts: u32,
    throttled: u32,
    renewed: bool,
}

impl CallState {
    /// Counts an attempt; the ids and the count, for the outcome.
    fn count(&mut self) -> (CallIds, u32) {
        self.attempts += 1;
        (self.ids, self.attempts)
    }
}

/// What one attempt brought back.
enum Answer {
    /// No answer: the request failed to connect (`before_sending`), timed out, or the connection dropped.
    Transport {
        detail: String,
        before_sending: bool,
    },
    /// This machine could not make the request: out of file descriptors. Nothing left; no fault of the service.
    Local {
        detail: String,
    },
    /// An answer whose body could not be read to its end.
    BodyLost {
        status: u16,
        detail: String,
    },
    Response {
        status: u16,
        retry_after: Option<String>,
        body: Bytes,
    },
}

/// What the loop does after an attempt.
enum Next {
    Done(Fetched),
    Retry,
}

impl Client {
    /// Builds the one HTTP client (rustls, pooled connections) that every worker shares through clones.
    pub fn new(config: ClientConfig, auth: Arc<Auth>, pace: Arc<Pace>) -> Result<Client, ClientError> {
        validate_base_url(config.base_url.as_str())?;
        let application = HeaderValue::from_str(&config.application)
            .map_err(|_| ClientError::Application(config.application.clone()))?;
        let mut fixed_headers = HeaderMap::new();
        fixed_headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        fixed_headers.insert(HEADER_CONTRACT_VERSION, HeaderValue::from_static("v1"));
        fixed_headers.insert(HEADER_APPLICATION, application);
        fixed_headers.insert(HEADER_LOCALE, HeaderValue::from_static("en-US"));
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            // The retry loop is ours (`call`): reqwest's own (protocol NACKs, an HTTP/2 matter) would only copy every
            // request in case, and a PUT must never be resent behind our back.
            .retry(reqwest::retry::never().max_retries_per_request(0))
            .user_agent(config.application.clone())
            .build()
            .map_err(ClientError::Build)?;
        let outage = Arc::new(crate::outage::Outage::new(config.first_answer_within));
        let stop = CancellationToken::new();
        Ok(Client { http, config, fixed_headers, bearer: Arc::default(), auth, pace, outage, stop })
    }

    /// This client (sharing its pool, pace and auth), stopping with `stop`: see the `stop` field.
    pub fn stopping_with(&self, stop: CancellationToken) -> Client {
        Client { stop, ..self.clone() }
    }

    pub fn pace(&self) -> &Arc<Pace> {
        &self.pace
    }

    /// The run's outage detector (shared by every clone of this client).
    pub fn outage(&self) -> &Arc<crate::outage::Outage> {
        &self.outage
    }

    pub fn auth(&self) -> &Arc<Auth> {
        &self.auth
    }

    /// GETs `path` (below the base URL), retrying 429s, one 401, and transient failures (408, 5xx, timeouts,
    /// dropped connections: with backoff, the same `MS-RequestId`, up to `max_attempts`).
    pub async fn get(&self, path: &str) -> Result<Fetched, CallError> {
        let request = self.request(Method::GET, path, None, None)?;
        self.call(request).await
    }

    /// [`Client::get`] for the read that settles a PUT whose answer was lost: it goes out even after the job
    /// stopped, so the row is recorded as what it is rather than left in doubt.
    pub async fn get_to_settle(&self, path: &str) -> Result<Fetched, CallError> {
        let mut request = self.request(Method::GET, path, None, None)?;
        request.settles = true;
        self.call(request).await
    }

    /// GETs `path` with one query pair (`?name=value`, encoded), like [`Client::get`].
    pub async fn get_with_query(&self, path: &str, (name, value): (&str, &str)) -> Result<Fetched, CallError> {
        let mut request = self.request(Method::GET, path, None, None)?;
        request.url.query_pairs_mut().append_pair(name, value);
        self.call(request).await
    }

    /// [`Client::get_with_query`] for the read that settles a PUT whose answer was lost, like
    /// [`Client::get_to_settle`].
    pub async fn get_with_query_to_settle(
        &self,
        path: &str,
        (name, value): (&str, &str),
    ) -> Result<Fetched, CallError> {
        let mut request = self.request(Method::GET, path, None, None)?;
        request.url.query_pairs_mut().append_pair(name, value);
        request.settles = true;
        self.call(request).await
    }

    /// GETs a page of a listing: `path` with its query pairs, and the continuation of the page before it (the
    /// `MS-ContinuationToken` header), like [`Client::get`]. A page retried after a fault is the same page: the
    /// continuation is sent again unchanged.
    pub async fn get_page(
        &self,
        path: &str,
        query: &[(String, String)],
        continuation: Option<&str>,
    ) -> Result<Fetched, CallError> {
        let mut request = self.request(Method::GET, path, None, None)?;
        request.url.query_pairs_mut().extend_pairs(query);
        request.continuation = continuation.map(HeaderValue::from_str).transpose().map_err(|_| CallError::Invalid {
            detail: "the continuation token cannot go in a header".into(),
            ids: CallIds::fresh(),
        })?;
        self.call(request).await
    }

    /// The API root this client talks to.
    pub fn base_url(&self) -> &Url {
        &self.config.base_url
    }

    /// PUTs `body` to `path` with `If-Match: "<etag>"`, retrying 429s, one 401, and failures to connect.
    ///
    /// The answer's body is checked to be JSON but not kept (`Fetched::body` is `null`): nothing reads it.
    ///
    /// A PUT is never sent twice once it may have landed: after a timeout, a dropped connection, a 408 or a 5xx
    /// this returns [`CallError::OutcomeUnknown`], and the engine settles the row by reading the profile again.
    pub async fn put(&self, path: &str, body: &serde_json::Value, etag: Option<&str>) -> Result<Fetched, CallError> {
        let body = serde_json::to_vec(body).map(Bytes::from).map_err(|error| CallError::Invalid {
            detail: format!("the body cannot be written as json: {error}"),
            ids: CallIds::fresh(),
        })?;
        let request = self.request(Method::PUT, path, Some(body), etag)?;
        self.call(request).await
    }

    /// POSTs `body` to a path that changes nothing on the service (`/v1/validations/address`): retried like a GET.
    pub async fn post_query(&self, path: &str, body: &serde_json::Value) -> Result<Fetched, CallError> {
        let body = serde_json::to_vec(body).map(Bytes::from).map_err(|error| CallError::Invalid {
            detail: format!("the body cannot be written as json: {error}"),
            ids: CallIds::fresh(),
        })?;
        let request = self.request(Method::POST, path, Some(body), None)?;
        self.call(request).await
    }

    fn request<'a>(
        &self,
        method: Method,
        path: &'a str,
        body: Option<Bytes>,
        etag: Option<&str>,
    ) -> Result<Request<'a>, CallError> {
        let invalid = |detail: String| CallError::Invalid { detail, ids: CallIds::fresh() };
        if !path.starts_with('/') || path.contains(['?', '#']) {
            return Err(invalid(format!("the path {path:?} does not start with '/' or holds a query or fragment")));
        }
        // The base URL is checked once (`validate_base_url`); only the path is new. Parsing the joined text again
        // (host, IDNA and all) showed in a row's CPU profile.
        let mut url = self.config.base_url.clone();
        let joined = format!("{}{}", url.path().trim_end_matches('/'), path);
        url.set_path(&joined);
        let if_match = etag
            .map(|etag| HeaderValue::from_str(&quote_etag(etag)))
            .transpose()
            .map_err(|_| invalid("the etag cannot go in an If-Match header".to_string()))?;
        Ok(Request { method, url, body, if_match, path, settles: false, continuation: None })
    }

    /// The retry loop of one call: a permit per attempt; ids as the spec says.
    async fn call(&self, request: Request<'_>) -> Result<Fetched, CallError> {
        let mut call = CallState { ids: CallIds::fresh(), attempts: 0, throttled: 0, renewed: false };
        loop {
            // The permit first, then the token: waiting for the pace (a 429 hold may last a minute) must not
            // outlast the token that goes on the request. A stop ends every wait before the request goes out; a run
            // that gave up on a service that never answered sends nothing more.
            let turn = self
                .unless_stopped(&request, &call, async {
                    self.outage.wait_turn().await?;
                    Ok(self.pace.acquire().await)
                })
                .await?;
            let permit =
                turn.map_err(|detail| CallError::NoService { detail, ids: call.ids, attempts: call.attempts })?;
            let token = self
                .unless_stopped(&request, &call, self.auth.token())
                .await?
                .map_err(|source| CallError::Auth { source, ids: call.ids, attempts: call.attempts })?;
            let authorization =
                self.authorization(&token).map_err(|detail| CallError::Invalid { detail, ids: call.ids })?;
            if self.stopped(&request) {
                return Err(CallError::Stopped { ids: call.ids, attempts: call.attempts });
            }
            // A read on the wire is abandoned at a stop (nothing waits for it); a PUT on the wire is awaited.
            let answer = match request.method {
                Method::PUT => self.send(&request, authorization, call.ids).await,
                _ => self.unless_stopped(&request, &call, self.send(&request, authorization, call.ids)).await?,
            };
            let issued_at = permit.issued_at();
            drop(permit);
            if !matches!(answer, Answer::Local { .. } | Answer::Transport { before_sending: true, .. }) {
                self.pace.count_sent();
            }
            if matches!(answer, Answer::Response { .. } | Answer::BodyLost { .. }) {
                self.outage.on_response();
                self.pace.on_answer(issued_at, matches!(answer, Answer::Response { status: 429, .. }));
            }
            let next = match answer {
                Answer::Response { status, retry_after, body } => {
                    let verdict = match request.method {
                        Method::PUT => classify_put(status, retry_after.as_deref(), &body),
                        _ => classify(status, retry_after.as_deref(), &body),
                    };
                    self.judge(&request, verdict, status, issued_at, &token, &mut call).await?
                }
                Answer::Transport { detail, before_sending } => {
                    call.attempts += 1;
                    self.transient(&request, &mut call, None, None, detail, !before_sending).await?
                }
                Answer::BodyLost { status, detail } => {
                    call.attempts += 1;
                    self.transient(&request, &mut call, Some(status), None, detail, true).await?
                }
                Answer::Local { detail } => {
                    return Err(CallError::Local { detail, ids: call.ids, attempts: call.attempts });
                }
            };
            if let Next::Done(fetched) = next {
                return Ok(fetched);
            }
        }
    }

    /// Whether the job stopped and this request is not one that goes on after a stop.
    fn stopped(&self, request: &Request<'_>) -> bool {
        !request.settles && self.stop.is_cancelled()
    }

    /// `work`, unless the job stops first (then [`CallError::Stopped`]); a settling read waits it out.
    async fn unless_stopped<T>(
        &self,
        request: &Request<'_>,
        call: &CallState,
        work: impl std::future::Future<Output = T>,
    ) -> Result<T, CallError> {
        if request.settles {
            return Ok(work.await);
        }
        tokio::select! {
            biased;
            () = self.stop.cancelled() => Err(CallError::Stopped { ids: call.ids, attempts: call.attempts }),
            done = work => Ok(done),
        }
    }

    /// One attempt on the wire.
    async fn send(&self, request: &Request<'_>, authorization: HeaderValue, ids: CallIds) -> Answer {
        let mut attempt = reqwest::Request::new(request.method.clone(), request.url.clone());
        *attempt.headers_mut() = self.headers(request, authorization, ids);
        *attempt.body_mut() = request.body.clone().map(reqwest::Body::from);
        let response = match self.http.execute(attempt).await {
            Ok(response) => response,
            Err(error) if out_of_descriptors(&error) => {
                let limit = "the process may open no more files or connections (too many open files)";
                return Answer::Local {
                    detail: format!(
                        "{limit}: lower --concurrency (now {}) or raise ulimit -n",
                        self.pace.config().concurrency
                    ),
                };
            }
            Err(error) => {
                let before_sending = error.is_connect() || error.is_builder();
                return Answer::Transport { detail: describe_transport(&error), before_sending };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response.headers().get(RETRY_AFTER).and_then(|value| value.to_str().ok()).map(str::to_string);
        match response.bytes().await {
            Ok(body) => Answer::Response { status, retry_after, body },
            Err(error) => Answer::BodyLost { status, detail: describe_transport(&error) },
        }
    }

    /// The headers of an attempt: the fixed ones made once in `new`, this attempt's ids and token, and the
    /// request's own (`If-Match`, `Content-Type`), in one map sized for them all.
    fn headers(&self, request: &Request<'_>, authorization: HeaderValue, ids: CallIds) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(self.fixed_headers.len() + 5);
        headers.extend(self.fixed_headers.iter().map(|(name, value)| (name.clone(), value.clone())));
        headers.insert(HEADER_REQUEST_ID, uuid_header(ids.request_id));
        headers.insert(HEADER_CORRELATION_ID, uuid_header(ids.correlation_id));
        headers.insert(AUTHORIZATION, authorization);
        if let Some(if_match) = &request.if_match {
            headers.insert(IF_MATCH, if_match.clone());
        }
        if let Some(continuation) = &request.continuation {
            headers.insert(crate::wire::listing::HEADER_CONTINUATION, continuation.clone());
        }
        if request.body.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        headers
    }

    /// The `Authorization` header for `token`, made once per token.
    fn authorization(&self, token: &AccessToken) -> Result<HeaderValue, String> {
        let mut held = crate::sync::lock(&self.bearer);
        if let Some((used, header)) = held.as_ref()
            && used == token
        {
            return Ok(header.clone());
        }
        let header = bearer(token)?;
        *held = Some((token.clone(), header.clone()));
        Ok(header)
    }

    /// Acts on an answer's verdict: done, an error, or a retry (after the wait it calls for).
    async fn judge(
        &self,
        request: &Request<'_>,
        verdict: Meaning,
        status: u16,
        issued_at: Instant,
        token: &AccessToken,
        call: &mut CallState,
    ) -> Result<Next, CallError> {
        if !matches!(verdict, Meaning::Transient { .. }) {
            self.outage.on_answer(issued_at);
        }
        match verdict {
            Meaning::Throttled(retry_after) => self.throttled(request, call, issued_at, retry_after),
            Meaning::Unauthorized { detail } => self.unauthorized(request, call, token, detail).await,
            Meaning::Transient { status, retry_after, detail } => {
                call.attempts += 1;
                let detail = format!("http {status}: {detail}");
                self.transient(request, call, Some(status), retry_after, detail, true).await
            }
            Meaning::Success(body) => {
                let (ids, attempts) = call.count();
                Ok(Next::Done(Fetched { status, body, ids, attempts, throttled: call.throttled }))
            }
            Meaning::Stale { status, code, description } => {
                let (ids, attempts) = call.count();
                Err(CallError::Stale { status, code, description, ids, attempts })
            }
            Meaning::Refused { status, code, description } => {
                let (ids, attempts) = call.count();
                Err(CallError::Refused { status, code, description, ids, attempts })
            }
            Meaning::Malformed { status, excerpt } => {
                let (ids, attempts) = call.count();
                Err(CallError::Malformed { status, excerpt, ids, attempts })
            }
        }
    }

    /// A 429: hold every worker (through the pace) and retry with a new `MS-RequestId`; no attempt used up.
    fn throttled(
        &self,
        request: &Request<'_>,
        call: &mut CallState,
        issued_at: Instant,
        retry_after: Option<Duration>,
    ) -> Result<Next, CallError> {
        call.throttled += 1;
        let wait = retry_after.unwrap_or_else(|| self.pace.backoff(call.throttled).max(Duration::from_secs(1)));
        self.pace.on_throttled(issued_at, wait);
        tracing::debug!(method = %request.method, path = request.path, wait_secs = wait.as_secs_f64(), "429");
        if call.throttled >= MAX_THROTTLES_PER_CALL {
            return Err(CallError::Throttled { throttles: call.throttled, ids: call.ids, attempts: call.attempts });
        }
        call.ids.request_id = Uuid::new_v4();
        Ok(Next::Retry)
    }

    /// A 401: renew the token once (unless another worker already did) and retry with a new `MS-RequestId`.
    async fn unauthorized(
        &self,
        request: &Request<'_>,
        call: &mut CallState,
        token: &AccessToken,
        detail: String,
    ) -> Result<Next, CallError> {
        let (ids, attempts) = call.count();
        if call.renewed {
            return Err(CallError::Unauthorized { detail, ids, attempts });
        }
        call.renewed = true;
        tracing::debug!(method = %request.method, path = request.path, "401: renewing the token");
        self.auth.renew_after_unauthorized(token).await.map_err(|source| CallError::Auth { source, ids, attempts })?;
        call.ids.request_id = Uuid::new_v4();
        Ok(Next::Retry)
    }

    /// A failure that may be transient (already counted as an attempt): retry a GET (or a request that never
    /// left) with the same ids after a backoff, up to `max_attempts`; a PUT that may have landed ends as
    /// [`CallError::OutcomeUnknown`].
    async fn transient(
        &self,
        request: &Request<'_>,
        call: &mut CallState,
        status: Option<u16>,
        retry_after: Option<Duration>,
        detail: String,
        may_have_landed: bool,
    ) -> Result<Next, CallError> {
        let down = match self.outage.on_transient(request.path, &detail) {
            crate::outage::Judged::GiveUp(detail) => {
                return Err(CallError::NoService { detail, ids: call.ids, attempts: call.attempts });
            }
            judged => judged == crate::outage::Judged::Down,
        };
        if down {
            // The service is down, not this row unlucky: the attempt is not held against the call, and the slow
            // probe (`Outage::wait_turn`) paces the retries instead of the backoff.
            call.attempts = call.attempts.saturating_sub(1);
        }
        let (ids, attempts) = (call.ids, call.attempts);
        if request.method == Method::PUT && may_have_landed {
            return Err(CallError::OutcomeUnknown { status, detail, ids, attempts });
        }
        if down {
            return Ok(Next::Retry);
        }
        if attempts >= self.pace.config().max_attempts.get() {
            return Err(CallError::Exhausted { status, detail, ids, attempts });
        }
        let wait = self.pace.retry_delay(attempts, retry_after);
        tracing::debug!(method = %request.method, path = request.path, %detail, attempts, "transient failure, retrying");
        self.unless_stopped(request, call, tokio::time::sleep(wait)).await?;
        Ok(Next::Retry)
    }
}

/// A GUID as a header value (hyphenated, lower case: always visible ASCII).
fn uuid_header(id: Uuid) -> HeaderValue {
    let mut buffer = Uuid::encode_buffer();
    let text = id.hyphenated().encode_lower(&mut buffer);
    // Invariant: a hyphenated GUID is 36 characters of [0-9a-f-], a valid header value.
    HeaderValue::from_str(text).expect("a hyphenated guid is a valid header value")
}

/// The `Authorization` header, marked sensitive so that no `Debug` of the request shows it.
fn bearer(token: &AccessToken) -> Result<HeaderValue, String> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| "the access token holds characters a header cannot carry".to_string())?;
    value.set_sensitive(true);
    Ok(value)
}

/// `If-Match` wants the etag in double quotes; one already quoted is sent as is.
fn quote_etag(etag: &str) -> String {
    if etag.len() >= 2 && etag.starts_with('"') && etag.ends_with('"') {
        etag.to_string()
    } else {
        format!("\"{etag}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::{NonZeroU32, NonZeroUsize};

    #[test]
    fn http_is_refused_unless_the_host_is_loopback() {
        for allowed in [
            "https://api.partnercenter.microsoft.com",
            "http://127.0.0.1:8080",
            "http://127.2.3.4/",
            "http://[::1]:9",
            "http://LOCALHOST:1",
        ] {
            assert!(validate_base_url(allowed).is_ok(), "{allowed}");
        }
        for refused in [
            "http://api.partnercenter.microsoft.com",
            "http://10.0.0.1",
            "http://localhost.evil.com",
            "http://[::2]",
            "ftp://127.0.0.1",
        ] {
            assert!(validate_base_url(refused).is_err(), "{refused}");
        }
        let error = validate_base_url("http://example.com").unwrap_err().to_string();
        assert!(error.contains("loopback") && error.contains("https://"), "{error}");
        assert!(validate_base_url("https://user:pw@example.com").is_err());
    }

    fn client_at(base_url: &str) -> Client {
        let credentials = Credentials::Static { token: crate::auth::Secret::new("t") };
        let auth = Auth::new(credentials, crate::auth::AuthConfig::default()).unwrap();
        let pace = PaceConfig::new(NonZeroU32::MIN, NonZeroUsize::MIN, NonZeroU32::MIN);
        Client::new(ClientConfig::new(base_url).unwrap(), Arc::new(auth), Arc::new(Pace::new(pace))).unwrap()
    }

    #[test]
    fn paths_go_below_the_base_url_and_carry_no_query() {
        let client = client_at("http://127.0.0.1:8080/prefix/");
        let request = client.request(Method::GET, "/v1/customers/c/profiles/billing", None, None).unwrap();
        assert_eq!(request.url.as_str(), "http://127.0.0.1:8080/prefix/v1/customers/c/profiles/billing");
        let root = client_at("http://127.0.0.1:8080");
        assert_eq!(root.request(Method::GET, "/v1/a", None, None).unwrap().url.as_str(), "http://127.0.0.1:8080/v1/a");
        for refused in ["v1/a", "/v1/a?b=c", "/v1/a#b"] {
            let error = client.request(Method::GET, refused, None, None).err().expect(refused);
            assert!(matches!(error, CallError::Invalid { .. }), "{refused}: {error:?}");
        }
    }

    #[test]
    fn the_authorization_header_is_made_once_per_token() {
        let client = client_at("http://127.0.0.1:8080");
        let first = client.authorization(&AccessToken::new("one")).unwrap();
        assert!(first.is_sensitive());
        assert_eq!(client.authorization(&AccessToken::new("one")).unwrap(), first);
        assert_eq!(client.authorization(&AccessToken::new("two")).unwrap(), "Bearer two");
        assert!(client.authorization(&AccessToken::new("bad\ntoken")).is_err());
    }

    #[test]
    fn etags_are_quoted_once() {
        assert_eq!(quote_etag("-2279334701316321663"), "\"-2279334701316321663\"");
        assert_eq!(quote_etag("\"abc\""), "\"abc\"");
        assert_eq!(quote_etag("eyJ2IjoxfQ=="), "\"eyJ2IjoxfQ==\"");
    }
}
