//! The authorization code flow with PKCE (learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow):
//! a verifier and its `S256` challenge, the sign-in page opened in the browser (its address always printed too), the
//! answer caught by a listener on 127.0.0.1 named in the redirect URI as `http://localhost:PORT` (the identity
//! platform lets a desktop app's loopback redirect take any port), then the code redeemed with the verifier.
//!
//! The listener answers the one request that carries the sign-in's answer and then closes; other requests (a
//! browser's `/favicon.ico`) get a 404. Nothing it receives is logged.

use super::{Answer, LoginConfig, SignInError, http_client, post_form};
use crate::wire::{SignInTokenResponse, sign_in, token_form};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngExt;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::net::Ipv4Addr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The most of a request the listener reads (its request line and headers).
const REQUEST_MAX: usize = 16 * 1024;

/// Whether to try to open a browser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Browser {
    Open,
    /// Only print the address (`--no-browser`, or no display).
    PrintOnly,
}

/// A PKCE pair: the verifier (a secret until redeemed) and its challenge.
pub(crate) struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    /// 32 random bytes as base64url (43 characters, RFC 7636 section 4.1), and `BASE64URL(SHA256(verifier))`.
    pub(crate) fn new() -> Pkce {
        let bytes: [u8; 32] = rand::rng().random();
        let verifier = URL_SAFE_NO_PAD.encode(bytes);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Pkce { verifier, challenge }
    }
}

/// What came back to the redirect.
enum Redirected {
    Code(String),
    Refused { error: String, description: String },
}

/// Signs in through the browser; the address to open goes to `out`.
pub async fn sign_in(
    config: &LoginConfig,
    browser: Browser,
    out: &mut dyn Write,
) -> Result<SignInTokenResponse, SignInError> {
    let command = config.login_command();
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.map_err(SignInError::Listen)?;
    let port = listener.local_addr().map_err(SignInError::Listen)?.port();
    let redirect_uri = format!("http://localhost:{port}");
    let pkce = Pkce::new();
    let state = uuid::Uuid::new_v4().simple().to_string();
    let url = authorize_url(config, &redirect_uri, &state, &pkce.challenge);
    // Best effort: a failed write leaves the browser (if opened) to finish the sign-in.
    let _ = writeln!(out, "to sign in, open this page in a browser (waiting for it on {redirect_uri}):\n{url}");
    let _ = out.flush();
    if browser == Browser::Open {
        open(&url);
    }
    let wait = config.wait;
    let redirected = tokio::time::timeout(wait, listen(&listener, &state))
        .await
        .map_err(|_| SignInError::TimedOut { seconds: wait.as_secs(), command: command.clone() })?
        .map_err(|mismatch| match mismatch {
            Mismatch::State => SignInError::StateMismatch { command: command.clone() },
            Mismatch::Io(error) => SignInError::Listen(error),
        })?;
    let code = match redirected {
        Redirected::Code(code) => code,
        Redirected::Refused { error, description } => return Err(SignInError::Refused { error, description, command }),
    };
    let http = http_client()?;
    let scope = config.scope();
    let form = [
        (token_form::GRANT_TYPE, sign_in::GRANT_AUTHORIZATION_CODE),
        (token_form::CLIENT_ID, config.client_id.as_str()),
        (sign_in::SCOPE, scope.as_str()),
        (sign_in::CODE, code.as_str()),
        (sign_in::REDIRECT_URI, redirect_uri.as_str()),
        (sign_in::CODE_VERIFIER, pkce.verifier.as_str()),
    ];
    match post_form::<SignInTokenResponse>(&http, &config.token_url(), &form).await? {
        Answer::Granted(answer) => Ok(answer),
        Answer::Refused { error, description } => Err(SignInError::Refused { error, description, command }),
    }
}

fn authorize_url(config: &LoginConfig, redirect_uri: &str, state: &str, challenge: &str) -> String {
    let root = format!("{}{}", config.authority.trim_end_matches('/'), sign_in::authorize_path(config.tenant.trim()));
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair(token_form::CLIENT_ID, &config.client_id)
        .append_pair(sign_in::RESPONSE_TYPE, sign_in::RESPONSE_TYPE_CODE)
        .append_pair(sign_in::REDIRECT_URI, redirect_uri)
        .append_pair("response_mode", "query")
        .append_pair(sign_in::SCOPE, &config.scope())
        .append_pair(sign_in::STATE, state)
        .append_pair(sign_in::CODE_CHALLENGE, challenge)
        .append_pair(sign_in::CODE_CHALLENGE_METHOD_FIELD, sign_in::CODE_CHALLENGE_METHOD)
        .append_pair(sign_in::PROMPT, "select_account")
        .finish();
    format!("{root}?{query}")
}

enum Mismatch {
    State,
    Io(std::io::Error),
}

/// Answers requests until one carries the sign-in's answer (a code or an error).
async fn listen(listener: &TcpListener, state: &str) -> Result<Redirected, Mismatch> {
    loop {
        let (mut stream, _) = listener.accept().await.map_err(Mismatch::Io)?;
        let Some(target) = request_target(&mut stream).await else { continue };
        let pairs: Vec<(String, String)> = match target.split_once('?') {
            Some((_, query)) => url::form_urlencoded::parse(query.as_bytes()).into_owned().collect(),
            None => Vec::new(),
        };
        let field = |name: &str| pairs.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone());
        let (code, error) = (field(sign_in::CODE), field(sign_in::ERROR));
        if code.is_none() && error.is_none() {
            respond(&mut stream, "404 Not Found", "not the sign-in's answer").await;
            continue;
        }
        if field(sign_in::STATE).as_deref() != Some(state) {
            respond(&mut stream, "400 Bad Request", "this answer belongs to another sign-in: run pcbulk login again")
                .await;
            return Err(Mismatch::State);
        }
        return Ok(match (code, error) {
            (Some(code), None) => {
                respond(&mut stream, "200 OK", "pcbulk: signed in. You can close this window.").await;
                Redirected::Code(code)
            }
            (_, error) => {
                respond(&mut stream, "200 OK", "pcbulk: the sign-in was refused. You can close this window.").await;
                let description = super::first_line(&field(sign_in::ERROR_DESCRIPTION).unwrap_or_default());
                Redirected::Refused { error: crate::http::excerpt(error.unwrap_or_default().as_bytes()), description }
            }
        });
    }
}

/// Reads a request's head and answers its target (`/?code=...`); `None` for anything that is not a GET.
async fn request_target(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 2048];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") && head.len() < REQUEST_MAX {
        let read = stream.read(&mut buffer).await.ok()?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    let line = head.split(|byte| *byte == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim();
    let mut parts = line.split(' ');
    (parts.next()? == "GET").then_some(())?;
    parts.next().map(str::to_string)
}

async fn respond(stream: &mut TcpStream, status: &str, text: &str) {
    let body = format!("<!doctype html><meta charset=utf-8><title>pcbulk</title><p>{text}</p>\n");
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // Best effort: the browser's page is a courtesy; the sign-in goes on either way.
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Opens the address in the user's browser, where there is one (best effort: the address is printed anyway).
fn open(url: &str) {
    let mut command = if cfg!(target_os = "macos") {
        std::process::Command::new("open")
    } else if cfg!(windows) {
        let mut command = std::process::Command::new("rundll32");
        command.arg("url.dll,FileProtocolHandler");
        command
    } else {
        std::process::Command::new("xdg-open")
    };
    let started = command
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match started {
        // Reaped on a thread of its own: the opener may outlive the sign-in.
        Ok(mut child) => drop(std::thread::spawn(move || child.wait())),
        Err(_) => tracing::info!("no browser could be opened; open the printed address by hand"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_the_s256_of_the_verifier() {
        let pkce = Pkce::new();
        assert_eq!(pkce.verifier.len(), 43);
        assert_eq!(pkce.challenge, URL_SAFE_NO_PAD.encode(Sha256::digest(pkce.verifier.as_bytes())));
        assert_ne!(Pkce::new().verifier, pkce.verifier);
    }
}
