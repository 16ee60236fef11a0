//! Tokens on the wire: the grants' forms, renewal ahead of expiry, single flight, the 401 renewal, and secrecy.

use super::support::{Reply, Server, client_for, pace, quick_auth_config, refresh_auth};
use pcbulk::auth::{Auth, AuthError, Credentials, RETRY_RENEWAL_AFTER, Secret};
use pcbulk::client::CallError;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PATH: &str = "/v1/customers/0f5a3a4e-0000-4000-8000-000000000001/profiles/billing";

fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect()
}

#[tokio::test]
async fn the_client_credentials_grant_posts_the_documented_form() {
    let server = Server::start().await;
    let credentials = Credentials::ClientCredentials {
        authority: format!("{}/", server.url),
        tenant: "contoso.onmicrosoft.com".into(),
        client_id: "app-id".into(),
        client_secret: Secret::new("app-secret"),
    };
    let auth = Auth::new(credentials, quick_auth_config()).unwrap();
    assert_eq!(auth.token().await.unwrap().expose(), "at-1");
    let expected = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", "app-id"),
        ("client_secret", "app-secret"),
        ("resource", "https://api.partnercenter.microsoft.com"),
    ]);
    assert_eq!(server.token_forms(), vec![expected]);
}

#[tokio::test]
async fn the_refresh_grant_always_sends_the_newest_refresh_token() {
    let server = Server::start().await;
    let auth = refresh_auth(&server);
    let first = auth.token().await.unwrap();
    let second = auth.renew_after_unauthorized(&first).await.unwrap();
    auth.renew_after_unauthorized(&second).await.unwrap();
    let forms = server.token_forms();
    let sent: Vec<&str> = forms.iter().map(|form| form["refresh_token"].as_str()).collect();
    assert_eq!(sent, ["rt-0", "rt-1", "rt-2"]);
    assert_eq!(
        forms[0],
        form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "rt-0"),
            ("client_id", "app-id"),
            ("resource", "https://api.partnercenter.microsoft.com"),
        ])
    );
    assert_eq!(auth.renewals(), 3);
}

#[tokio::test]
async fn the_token_is_renewed_when_a_tenth_of_its_lifetime_is_left_at_most_five_minutes() {
    let server = Server::start().await;
    let auth = refresh_auth(&server);
    assert_eq!(auth.token().await.unwrap().expose(), "at-1");
    // Time moves on tokio's clock alone; the renewal itself goes over real loopback once the clock runs again.
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(3600 - 300 - 1)).await;
    assert_eq!(auth.token().await.unwrap().expose(), "at-1", "more than 5 minutes left");
    tokio::time::advance(Duration::from_secs(2)).await;
    tokio::time::resume();
    assert_eq!(auth.token().await.unwrap().expose(), "at-2", "less than 5 minutes left");
    assert_eq!(server.token_forms().len(), 2);

    // A 10-minute token is renewed with a tenth (60 s) left.
    server.token_script(|script| script.expires_in = 600);
    let short = refresh_auth(&server);
    short.token().await.unwrap();
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(539)).await;
    short.token().await.unwrap();
    assert_eq!(short.renewals(), 1);
    tokio::time::advance(Duration::from_secs(2)).await;
    tokio::time::resume();
    short.token().await.unwrap();
    assert_eq!(short.renewals(), 2);
}

#[tokio::test]
async fn twenty_callers_share_one_renewal() {
    let server = Server::start().await;
    server.token_script(|script| script.delay = Duration::from_millis(200));
    let auth = refresh_auth(&server);
    let tokens = futures::future::join_all((0..20).map(|_| auth.token())).await;
    assert!(tokens.iter().all(|token| token.as_ref().unwrap().expose() == "at-1"));
    assert_eq!(server.token_forms().len(), 1, "the token endpoint was hit once");

    let stale = tokens[0].as_ref().unwrap().clone();
    let renewed = futures::future::join_all((0..20).map(|_| auth.renew_after_unauthorized(&stale))).await;
    assert!(renewed.iter().all(|token| token.as_ref().unwrap().expose() == "at-2"));
    assert_eq!(server.token_forms().len(), 2, "twenty 401s for one stale token renew it once");
}

#[tokio::test]
async fn a_401_renews_the_token_once_and_retries() {
    let server = Server::start().await;
    server.script([Reply::new(401, ""), Reply::ok("{}")]);
    let client = client_for(&server.url, refresh_auth(&server), pace(100, 3));
    let fetched = client.get(PATH).await.unwrap();
    let seen = server.seen();
    assert_eq!(seen[0].header("authorization").as_deref(), Some("Bearer at-1"));
    assert_eq!(seen[1].header("authorization").as_deref(), Some("Bearer at-2"));
    assert_ne!(seen[0].request_id(), seen[1].request_id(), "a new MS-RequestId after a 401");
    assert_eq!(fetched.attempts, 2);
    assert_eq!(client.auth().renewals(), 2);
}

#[tokio::test]
async fn a_second_401_fails_the_job() {
    let server = Server::start().await;
    server.script([Reply::new(401, ""), Reply::new(401, "")]);
    let client = client_for(&server.url, refresh_auth(&server), pace(100, 3));
    let error = client.get(PATH).await.unwrap_err();
    assert!(matches!(error, CallError::Unauthorized { attempts: 2, .. }), "{error:?}");
    assert!(error.is_fatal());
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn token_endpoint_failures_are_retried_then_reported() {
    let server = Server::start().await;
    server.token_script(|script| script.failures.extend([(503, String::new()), (500, String::new())]));
    let auth = refresh_auth(&server);
    assert_eq!(auth.token().await.unwrap().expose(), "at-3");

    let server = Server::start().await;
    server.token_script(|script| script.failures.extend((0..10).map(|_| (503, String::new()))));
    let error = refresh_auth(&server).token().await.unwrap_err();
    assert!(matches!(error, AuthError::Unavailable { attempts: 4, .. }), "{error:?}");
    assert!(!error.is_fatal());
    assert_eq!(server.token_forms().len(), 4);
}

#[tokio::test]
async fn a_still_valid_token_is_kept_while_the_token_endpoint_is_down() {
    let server = Server::start().await;
    let auth = refresh_auth(&server);
    assert_eq!(auth.token().await.unwrap().expose(), "at-1");
    server.token_script(|script| script.failures.extend((0..4).map(|_| (503, String::new()))));
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(3600 - 299)).await;
    tokio::time::resume();
    assert_eq!(auth.token().await.unwrap().expose(), "at-1", "renewal failed: the valid token is kept");
    assert_eq!(server.token_forms().len(), 5);
    assert_eq!(auth.token().await.unwrap().expose(), "at-1");
    assert_eq!(server.token_forms().len(), 5, "no new try at once");
    tokio::time::pause();
    tokio::time::advance(RETRY_RENEWAL_AFTER).await;
    tokio::time::resume();
    assert_eq!(auth.token().await.unwrap().expose(), "at-6", "tried again later, and renewed");
}

#[tokio::test]
async fn an_expired_token_is_not_served_when_renewal_fails() {
    let server = Server::start().await;
    let auth = refresh_auth(&server);
    auth.token().await.unwrap();
    server.token_script(|script| script.failures.extend((0..4).map(|_| (503, String::new()))));
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(3601)).await;
    tokio::time::resume();
    let error = auth.token().await.unwrap_err();
    assert!(matches!(error, AuthError::Unavailable { .. }), "{error:?}");
}

#[tokio::test]
async fn revoked_credentials_are_fatal_and_say_why() {
    let server = Server::start().await;
    let refusal = r#"{"error": "invalid_grant", "error_description": "AADSTS700082: The refresh token has expired due to inactivity.\r\nTrace ID: abc\r\nCorrelation ID: def"}"#;
    server.token_script(|script| script.failures.push_back((400, refusal.to_string())));
    server.script([Reply::ok("{}")]);
    let client = client_for(&server.url, refresh_auth(&server), pace(100, 3));
    let error = client.get(PATH).await.unwrap_err();
    assert!(error.is_fatal(), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("invalid_grant") && text.contains("AADSTS700082"), "{text}");
    assert!(!text.contains("rt-0") && !text.contains("Trace ID"), "{text}");
    assert_eq!(server.token_forms().len(), 1, "a refusal is not retried");
    assert!(server.seen().is_empty(), "no API call without a token");
}

/// A tracing writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_token_or_secret_reaches_the_logs_or_the_errors() {
    // A global subscriber, not a thread's default: tracing caches a call site's interest across threads, so a
    // thread-local one misses events whose call sites other tests registered first. Every test's logs land here.
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only test that sets a subscriber");

    let server = Server::start().await;
    server.script([Reply::new(401, ""), Reply::new(503, "<html>x</html>"), Reply::new(401, ""), Reply::new(401, "")]);
    let credentials = Credentials::RefreshToken {
        authority: server.url.clone(),
        tenant: "contoso".into(),
        client_id: "app-id".into(),
        client_secret: Some(Secret::new("app-secret-value")),
        refresh_token: Secret::new("rt-0"),
    };
    let auth = Arc::new(Auth::new(credentials, quick_auth_config()).unwrap());
    let client = client_for(&server.url, auth, pace(100, 3));
    let mut shown = String::new();
    for _ in 0..2 {
        if let Err(error) = client.get(PATH).await {
            shown.push_str(&format!("{error}\n{error:?}\n"));
        }
    }
    shown.push_str(&format!("{client:?}\n{:?}\n", client.auth()));
    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).to_string();
    assert!(logs.contains("access token renewed") && logs.contains("401"), "the logs were captured:\n{logs}");
    shown.push_str(&logs);
    for secret in ["at-1", "at-2", "at-3", "rt-0", "rt-1", "rt-2", "app-secret-value"] {
        assert!(!shown.contains(secret), "{secret} shown in:\n{shown}");
    }
}
