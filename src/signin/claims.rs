//! Who signed in: the claims of the ID token the sign-in's token answer carries. Read, not verified: the token came
//! straight from the token endpoint over TLS, which the OpenID Connect core spec (3.1.3.7) accepts for a client that
//! talks to the token endpoint itself. Only the user's name is kept; the ID token itself never is.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// The claims pcbulk keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claims {
    /// `preferred_username` (else `upn`, else `email`): the account signed in, like `admin@contoso.onmicrosoft.com`.
    pub user: Option<String>,
    /// `name`: the display name.
    pub name: Option<String>,
}

#[derive(Deserialize)]
struct Raw {
    preferred_username: Option<String>,
    upn: Option<String>,
    email: Option<String>,
    name: Option<String>,
}

/// Reads the claims of a JWT; a token that cannot be read gives none (the sign-in still works, `whoami` says less).
pub fn read(id_token: &str) -> Claims {
    let Some(payload) = id_token.split('.').nth(1) else { return Claims::default() };
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')) else { return Claims::default() };
    let Ok(raw) = serde_json::from_slice::<Raw>(&bytes) else { return Claims::default() };
    let clean =
        |value: Option<String>| value.map(|value| value.chars().filter(|c| !c.is_control()).take(200).collect());
    Claims { user: clean(raw.preferred_username.or(raw.upn).or(raw.email)), name: clean(raw.name) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_comes_from_the_claims() {
        let claims = URL_SAFE_NO_PAD.encode(r#"{"preferred_username":"a@b.c","name":"A B","tid":"t"}"#);
        let read = read(&format!("e30.{claims}.sig"));
        assert_eq!(read, Claims { user: Some("a@b.c".into()), name: Some("A B".into()) });
        assert_eq!(super::read("not a jwt"), Claims::default());
        let upn = URL_SAFE_NO_PAD.encode(r#"{"upn":"u@b.c"}"#);
        assert_eq!(super::read(&format!("e30.{upn}.")).user.as_deref(), Some("u@b.c"));
    }
}
