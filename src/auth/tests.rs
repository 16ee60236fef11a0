//! Auth: redaction, the renewal margin, how token endpoint answers are read, and a kept sign-in whose refresh token
//! is in an OS store (one in memory) renewed against a rotating token endpoint on 127.0.0.1.

use super::*;

const SECRET: &str = "s3cr3t-value-that-must-not-show";

fn refresh_credentials() -> Credentials {
    Credentials::RefreshToken {
        authority: DEFAULT_AUTHORITY.into(),
        tenant: "contoso.onmicrosoft.com".into(),
        client_id: "client".into(),
        client_secret: Some(Secret::new(SECRET)),
        refresh_token: Secret::new(SECRET),
    }
}

#[test]
fn nothing_that_holds_a_secret_shows_it() {
    let credentials = [
        Credentials::Static { token: Secret::new(SECRET) },
        refresh_credentials(),
        Credentials::ClientCredentials {
            authority: DEFAULT_AUTHORITY.into(),
            tenant: "t".into(),
            client_id: "c".into(),
            client_secret: Secret::new(SECRET),
        },
    ];
    let mut shown = vec![
        format!("{:?}", Secret::new(SECRET)),
        format!("{}", Secret::new(SECRET)),
        format!("{:?}", AccessToken::new(SECRET)),
        format!(
            "{:?}",
            TokenResponse {
                access_token: SECRET.into(),
                token_type: None,
                expires_in: crate::wire::Seconds(1),
                refresh_token: Some(SECRET.into()),
            }
        ),
    ];
    for credentials in credentials {
        shown.push(format!("{credentials:?}"));
        shown.push(format!("{:?}", Auth::new(credentials, AuthConfig::default()).unwrap()));
    }
    for text in shown {
        assert!(!text.contains(SECRET), "{text}");
    }
    assert_eq!(Secret::new(SECRET).expose(), SECRET);
}

#[test]
fn renewal_margin_is_a_tenth_of_the_lifetime_at_most_five_minutes() {
    assert_eq!(margin(Duration::from_secs(3600)), Duration::from_secs(300));
    assert_eq!(margin(Duration::from_secs(600)), Duration::from_secs(60));
    assert_eq!(margin(Duration::from_secs(0)), Duration::ZERO);
}

#[test]
fn a_refusal_keeps_the_error_and_the_first_line_of_its_description() {
    let body = br#"{"error": "invalid_grant", "error_description": "AADSTS70008: The refresh token has expired.\r\nTrace ID: 1\r\nCorrelation ID: 2"}"#;
    let Err(Failure::Fatal(error)) = interpret("refresh token", 400, body) else { panic!("not a refusal") };
    assert!(error.is_fatal());
    let text = error.to_string();
    assert!(text.contains("invalid_grant") && text.contains("AADSTS70008"), "{text}");
    assert!(!text.contains("Trace ID"), "{text}");
}

#[test]
fn a_refusal_without_json_keeps_a_safe_excerpt() {
    let Err(Failure::Fatal(AuthError::Refused { error, description, .. })) =
        interpret("client credentials", 401, b"<html>\nnope</html>")
    else {
        panic!("not a refusal")
    };
    assert_eq!(error, "unreadable answer");
    assert_eq!(description, "<html> nope</html>");
}

#[test]
fn server_failures_are_transient_and_odd_success_is_malformed() {
    for status in [408, 429, 500, 503] {
        assert!(matches!(interpret("refresh token", status, b""), Err(Failure::Transient(_))), "{status}");
    }
    assert!(matches!(interpret("refresh token", 200, b"<html/>"), Err(Failure::Fatal(AuthError::Malformed { .. }))));
    let answer = interpret("refresh token", 200, br#"{"access_token": "a", "expires_in": "3599"}"#).ok().unwrap();
    assert_eq!(answer.expires_in.0, 3599);
}

#[test]
fn the_authority_must_be_https_or_loopback() {
    let mut credentials = refresh_credentials();
    if let Credentials::RefreshToken { authority, .. } = &mut credentials {
        *authority = "http://login.example.com".into();
    }
    assert!(matches!(Auth::new(credentials, AuthConfig::default()), Err(AuthError::Authority(_))));
}

#[tokio::test]
async fn a_static_token_is_served_and_cannot_be_renewed() {
    let auth = Auth::new(Credentials::Static { token: Secret::new("tok") }, AuthConfig::default()).unwrap();
    let token = auth.token().await.unwrap();
    assert_eq!(token.expose(), "tok");
    assert!(!auth.can_renew());
    let error = auth.renew_after_unauthorized(&token).await.unwrap_err();
    assert!(matches!(error, AuthError::CannotRenew));
    assert!(error.is_fatal());
    assert!(error.to_string().contains("cannot be renewed"));
    assert_eq!(auth.renewals(), 0);
}

/// A token endpoint on 127.0.0.1 that rotates: refresh token `rN` gets access token `aN` and refresh token `rN+1`;
/// any other refresh token is refused. Answers its root URL.
async fn rotating_token_endpoint() -> String {
    use axum::{Form, Json, Router, http::StatusCode, response::IntoResponse, routing::post};
    use std::collections::HashMap;
    async fn token(Form(form): Form<HashMap<String, String>>) -> axum::response::Response {
        let presented = form.get("refresh_token").and_then(|token| token.strip_prefix('r'));
        match presented.and_then(|number| number.parse::<u32>().ok()) {
            Some(n) => Json(serde_json::json!({
                "access_token": format!("a{n}"), "token_type": "Bearer", "expires_in": 3600,
                "refresh_token": format!("r{}", n + 1),
            }))
            .into_response(),
            None => (StatusCode::BAD_REQUEST, Json(serde_json::json!({"error": "invalid_grant"}))).into_response(),
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = Router::new().route("/{tenant}/oauth2/v2.0/token", post(token));
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// A kept sign-in whose refresh token is in the OS store is renewed from there and its rotation written back
/// there; when the store breaks mid-way, the rotated token is kept in the file instead and renewals go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_sign_in_in_the_os_store_rotates_there_and_survives_the_store_breaking() {
    use crate::signin::store::{Choice, KeptIn, memory::Memory};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let memory = Arc::new(Memory::default());
    let store = Store::with(dir.path().join("sign-ins"), Some(memory.clone()), Choice::Auto);
    let sign_in = SignIn {
        cloud: "public".into(),
        authority: rotating_token_endpoint().await,
        tenant: "contoso.onmicrosoft.com".into(),
        client_id: "app".into(),
        resource: TOKEN_RESOURCE.into(),
        user: None,
        user_name: None,
        kept_in: KeptIn::Os,
    };
    let path = store.save(&sign_in, &Secret::new("r1")).unwrap().path;
    let account = path.display().to_string();
    let auth = Auth::new(Credentials::SignedIn { store: store.clone(), sign_in }, AuthConfig::default()).unwrap();

    let first = auth.token().await.unwrap();
    assert_eq!(first.expose(), "a1");
    assert_eq!(memory.entries().get(&account).map(String::as_str), Some("r2"), "the rotation went to the OS store");
    assert!(!std::fs::read_to_string(&path).unwrap().contains("\"refresh_token\""), "and not to the file");

    *memory.fail_sets_from.lock().unwrap() = Some(0);
    let second = auth.renew_after_unauthorized(&first).await.unwrap();
    assert_eq!(second.expose(), "a2");
    let kept = store.load_with_token("contoso.onmicrosoft.com").unwrap().unwrap();
    assert_eq!((kept.0.kept_in, kept.1), (KeptIn::File, Secret::new("r3")), "the rotated token kept in the file");
    let third = auth.renew_after_unauthorized(&second).await.unwrap();
    assert_eq!(third.expose(), "a3", "renewed from the file's token");
    assert_eq!(store.load_with_token("contoso.onmicrosoft.com").unwrap().unwrap().1, Secret::new("r4"));
}
