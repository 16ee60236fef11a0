//! The sandbox: a Partner Center stand-in on 127.0.0.1, for rehearsals (`pcbulk sandbox`, `apply --sandbox`) and
//! for every test of the project.
//!
//! It serves the five profile endpoints with etags and `If-Match`, the token endpoint, the country rules and the
//! address validation; it injects faults on request (latency, a token bucket with 429s, random 500/503, a PUT applied
//! and then answered by a dropped connection, an edit by someone else right after a GET, an outage); and it counts
//! what happened, so tests assert on the server's truth rather than on the client's story.
//!
//! ```no_run
//! # async fn example() -> Result<(), pcbulk::sandbox::SandboxError> {
//! use pcbulk::sandbox::{Sandbox, SandboxConfig};
//! let sandbox = Sandbox::start(SandboxConfig { customers: 10, ..SandboxConfig::default() }).await?;
//! let token = sandbox.mint_token();
//! let id = &sandbox.customer_ids()[0];
//! // GET {sandbox.url()}/v1/customers/{id}/profiles/billing with `Authorization: Bearer {token}` ...
//! assert_eq!(sandbox.counters().total_puts_succeeded(), 0);
//! sandbox.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Code map: `config` (settings), `seed` (generated and read profiles), `state` (the store and etags), `profile`
//! (PUT bodies: rules and comparison), `rules` (country rules, address validation), `auth` (tokens), `faults`,
//! `counters`, `gate` (middleware), `routes` (the API), `listing` (the customers, paged), `side` (`/_sandbox/...`), `respond` (answer shapes),
//! `server` (the accept loop). The `pcbulk sandbox` command line is `cli::sandbox`'s: it resolves its flags into
//! the plain `SandboxConfig` here.
//!
//! Architecture invariant: the sandbox uses nothing of the crate but `crate::wire`; it is a peer of the engine, not a
//! mirror of it. It binds 127.0.0.1 only.

mod auth;
mod config;
mod counters;
mod error;
mod faults;
mod gate;
mod listing;
mod profile;
mod respond;
mod routes;
mod rules;
mod seed;
mod server;
mod side;
mod signin;
mod state;

pub use config::{AcceptedCredentials, Faults, SandboxConfig, StaleEtag, SupportPutPath};
pub use counters::{AlteredField, Counters, FIELD_LIST_CAP};
pub use error::SandboxError;
pub use seed::read_profiles;
pub use signin::SANDBOX_USER;

use crate::wire::PartnerProfileKind;
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Locks `mutex`, taking it back when a panic poisoned it: every table of the sandbox is whole between single
/// updates. The crate's `sync::lock` says the same; this is the sandbox's own copy, since it may use nothing of the
/// crate but `wire`.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the handle, the router and the side endpoints share.
pub(crate) struct Shared {
    store: state::Store,
    tokens: auth::TokenStore,
    faults: faults::FaultState,
    counters: counters::CounterStore,
    codes: respond::CodeStyle,
    support_put_path: SupportPutPath,
    token_resource: String,
    sign_ins: signin::SignIns,
    /// Signs the listing's continuation tokens.
    listing_key: listing::TokenKey,
    /// `http://127.0.0.1:PORT`: the API root and the authority.
    url: String,
    client_id: String,
    client_secret: String,
}

impl Shared {
    fn customer(&self, id: &str) -> Option<Value> {
        match self.store.customer(id) {
            state::Lookup::Found(profile) => Some(profile),
            state::Lookup::Forbidden | state::Lookup::NotFound => None,
        }
    }

    fn mint_token(&self) -> (String, Duration) {
        let lifetime = self.faults.read(Faults::token_lifetime);
        let token = self.tokens.issue_access(lifetime);
        self.counters.record_token(auth::Grant::Minted.name());
        (token, lifetime)
    }

    fn revoke_all(&self) {
        self.tokens.revoke_all();
        self.sign_ins.revoke_all();
    }

    fn set_faults(&self, faults: Faults) -> Result<(), SandboxError> {
        faults.check().map_err(SandboxError::Faults)?;
        self.faults.replace(faults);
        Ok(())
    }

    fn edit_customer(&self, id: &str, path: &str, value: Value) -> Result<Value, SandboxError> {
        match self.store.edit_customer(id, path, value) {
            None => Err(SandboxError::UnknownCustomer(id.to_string())),
            Some(false) => Err(SandboxError::Path { customer_id: id.to_string(), path: path.to_string() }),
            Some(true) => {
                self.counters.record_concurrent_edit(&id.trim().to_ascii_lowercase());
                self.customer(id).ok_or_else(|| SandboxError::UnknownCustomer(id.to_string()))
            }
        }
    }
}

/// A running sandbox. Dropping it stops the server (abruptly); `shutdown()` stops it gracefully.
pub struct Sandbox {
    shared: Arc<Shared>,
    address: SocketAddr,
    url: String,
    credentials: AcceptedCredentials,
    stop: CancellationToken,
    server: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("url", &self.url).finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Seeds the sandbox and starts serving on `127.0.0.1:{config.port}` (0: any free port).
    pub async fn start(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        config.faults.check().map_err(SandboxError::Faults)?;
        let customers = seed_customers(&config)?;
        let port = config.port;
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .map_err(|source| SandboxError::Bind { port, source })?;
        let address = listener.local_addr().map_err(|source| SandboxError::Bind { port, source })?;
        let url = format!("http://{address}");
        let shared = Arc::new(Shared {
            store: state::Store::new(
                config.seed,
                customers,
                &config.forbidden_customers,
                seed::partner_profiles(config.seed),
            ),
            tokens: auth::TokenStore::new(config.credentials.clone()),
            faults: faults::FaultState::new(config.faults.clone(), config.seed),
            counters: counters::CounterStore::default(),
            codes: respond::CodeStyle { as_strings: config.codes_as_strings },
            support_put_path: config.support_put_path,
            token_resource: config.token_resource.trim_end_matches('/').to_string(),
            sign_ins: signin::SignIns::default(),
            listing_key: listing::TokenKey::new(),
            url: url.clone(),
            client_id: config.credentials.client_id.clone(),
            client_secret: config.credentials.client_secret.clone(),
        });
        let stop = CancellationToken::new();
        let server = tokio::spawn(server::serve(listener, routes::router(shared.clone()), stop.clone()));
        Ok(Sandbox { shared, address, url, credentials: config.credentials, stop, server: Some(server) })
    }

    /// The base URL, like `http://127.0.0.1:PORT`: the API root and the token authority.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The token endpoint of `tenant` (any tenant is accepted).
    pub fn token_url(&self, tenant: &str) -> String {
        format!("{}{}", self.url, crate::wire::token_path(tenant))
    }

    /// The credentials the token endpoint accepts.
    pub fn credentials(&self) -> &AcceptedCredentials {
        &self.credentials
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        self.shared.counters.snapshot()
    }

    /// A customer's billing profile as stored (`None` for an unknown or forbidden customer).
    pub fn customer(&self, id: &str) -> Option<Value> {
        self.shared.customer(id)
    }

    /// The seeded customer ids, in seeding order, lower-cased.
    pub fn customer_ids(&self) -> Vec<String> {
        self.shared.store.customer_ids().to_vec()
    }

    /// A partner profile as stored.
    pub fn partner_profile(&self, kind: PartnerProfileKind) -> Option<Value> {
        self.shared.store.partner(kind)
    }

    /// The fault settings in force.
    pub fn faults(&self) -> Faults {
        self.shared.faults.current()
    }

    /// Replaces the fault settings (refused when a value is out of range).
    pub fn set_faults(&self, faults: Faults) -> Result<(), SandboxError> {
        self.shared.set_faults(faults)
    }

    /// Sets the latency of every answer from now on (requests already waiting keep theirs), the other faults and the
    /// token bucket's state left as they are: a service slowing down, or speeding up, while a job runs.
    pub fn set_latency(&self, latency_ms: u64) {
        self.shared.faults.set_latency(latency_ms);
    }

    /// Revokes every access and refresh token at once (the configured refresh token included).
    pub fn revoke_tokens(&self) {
        self.shared.revoke_all();
    }

    /// Approves (or denies) the device sign-in waiting under `user_code`, as the user would in a browser; false
    /// when no sign-in waits under that code.
    pub fn decide_device_code(&self, user_code: &str, approve: bool) -> bool {
        self.shared.sign_ins.decide(user_code, approve)
    }

    /// Every secret the sign-in endpoints handed out (codes, device codes, access and refresh tokens), so a test
    /// can look for any of them where none may be.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.shared.sign_ins.issued()
    }

    /// Issues a valid access token directly, for the current token lifetime.
    pub fn mint_token(&self) -> String {
        self.shared.mint_token().0
    }

    /// Someone else sets `path` (dot-separated, like `defaultAddress.city`) of a customer's profile: the etag
    /// changes. Answers the profile as now stored.
    pub fn edit_customer(&self, id: &str, path: &str, value: impl Into<Value>) -> Result<Value, SandboxError> {
        self.shared.edit_customer(id, path, value.into())
    }

    /// Stops accepting, lets requests in flight finish (a few seconds at most), and returns.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(server) = self.server.take()
            && let Err(error) = server.await
        {
            tracing::debug!(%error, "sandbox: the server task failed");
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The customers of a configuration: generated, then the given ids, then the given profiles.
fn seed_customers(config: &SandboxConfig) -> Result<Vec<Value>, SandboxError> {
    let mut customers: Vec<Value> = seed::generate_ids(config.seed, config.customers)
        .iter()
        .chain(&config.customer_ids)
        .map(|id| seed::generate_profile(config.seed, id))
        .collect();
    for (index, profile) in config.profiles.iter().enumerate() {
        let has_id = profile.get("id").and_then(Value::as_str).is_some_and(|id| !id.trim().is_empty());
        if !profile.is_object() || !has_id {
            return Err(SandboxError::SeedProfile { index, message: "expected an object with a string id".into() });
        }
        customers.push(profile.clone());
    }
    Ok(customers)
}

#[cfg(test)]
mod isolation {
    /// The sandbox is a peer of the engine on the wire, not a mirror of it: it may name nothing of the crate but
    /// `wire` (and itself), so a misunderstanding of the API cannot be copied from one into the other. Checked on
    /// the source, so it stays true as the sandbox grows.
    #[test]
    fn the_sandbox_names_nothing_of_the_crate_but_the_wire_types() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sandbox");
        let files: Vec<_> = std::fs::read_dir(&root).unwrap().map(|entry| entry.unwrap().path()).collect();
        let mut found = Vec::new();
        for file in files.iter().filter(|path| path.extension().is_some_and(|ext| ext == "rs")) {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            // This test's own words are not an import.
            let text = text.split("mod isolation {").next().unwrap_or_default();
            for (number, line) in text.lines().enumerate() {
                let mut rest = line;
                while let Some(at) = rest.find("crate::") {
                    let after = &rest[at + "crate::".len()..];
                    let module: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if module != "wire" && module != "sandbox" && !after.starts_with('{') {
                        found.push(format!("{}:{}: crate::{module}", file.display(), number + 1));
                    }
                    if after.starts_with('{') {
                        found.push(format!("{}:{}: a grouped crate import", file.display(), number + 1));
                    }
                    rest = after;
                }
                if line.contains("super::super") {
                    found.push(format!("{}:{}: super::super", file.display(), number + 1));
                }
            }
        }
        assert!(files.len() > 5, "the sandbox's sources were found: {files:?}");
        assert!(found.is_empty(), "the sandbox names more than the wire types:\n{}", found.join("\n"));
    }
}
