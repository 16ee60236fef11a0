//! Tiny servers on 127.0.0.1:0 for the network tests: a scripted API plus token endpoint (axum), and a raw TCP
//! server that can drop a connection without answering.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use pcbulk::auth::{Auth, AuthConfig, Credentials, Secret};
use pcbulk::client::{Client, ClientConfig};
use pcbulk::pace::{Pace, PaceConfig};
use std::collections::{HashMap, VecDeque};
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One scripted answer of the API.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn new(status: u16, body: &str) -> Reply {
        Reply { status, headers: Vec::new(), body: body.to_string(), delay: Duration::ZERO }
    }

    pub fn ok(body: &str) -> Reply {
        Reply::new(200, body)
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_string()));
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// A request the API saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// When it arrived, on tokio's clock.
    pub at: tokio::time::Instant,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|value| value.to_str().unwrap().to_string())
    }

    pub fn request_id(&self) -> String {
        self.header("ms-requestid").expect("an MS-RequestId")
    }
}

/// What the token endpoint does.
#[derive(Default)]
pub struct TokenScript {
    /// Statuses (with a body) answered before any token, in order.
    pub failures: VecDeque<(u16, String)>,
    pub expires_in: u64,
    pub delay: Duration,
}

#[derive(Default)]
struct Shared {
    script: Mutex<VecDeque<Reply>>,
    seen: Mutex<Vec<Seen>>,
    token: Mutex<TokenScript>,
    forms: Mutex<Vec<HashMap<String, String>>>,
}

/// A scripted API and token endpoint on one loopback port.
#[derive(Clone)]
pub struct Server {
    pub url: String,
    shared: Arc<Shared>,
}

impl Server {
    pub async fn start() -> Server {
        let shared = Arc::new(Shared::default());
        shared.token.lock().unwrap().expires_in = 3600;
        let router =
            Router::new().route("/{tenant}/oauth2/token", post(token)).fallback(api).with_state(shared.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Server { url, shared }
    }

    /// Answers to come, in order; once they are used up the API answers 200 `{}`.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.script.lock().unwrap().extend(replies);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    pub fn token_script(&self, edit: impl FnOnce(&mut TokenScript)) {
        edit(&mut self.shared.token.lock().unwrap());
    }

    /// The forms posted to the token endpoint, in order.
    pub fn token_forms(&self) -> Vec<HashMap<String, String>> {
        self.shared.forms.lock().unwrap().clone()
    }
}

async fn api(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let at = tokio::time::Instant::now();
    shared.seen.lock().unwrap().push(Seen { method, path: uri.path().to_string(), headers, body: body.to_vec(), at });
    let reply = shared.script.lock().unwrap().pop_front().unwrap_or_else(|| Reply::ok("{}"));
    tokio::time::sleep(reply.delay).await;
    let mut response = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

/// Tokens `at-1`, `at-2`, ... with refresh tokens `rt-1`, `rt-2`, ...
async fn token(State(shared): State<Arc<Shared>>, Form(form): Form<HashMap<String, String>>) -> Response {
    let issued = {
        let mut forms = shared.forms.lock().unwrap();
        forms.push(form);
        forms.len()
    };
    let (failure, expires_in, delay) = {
        let mut script = shared.token.lock().unwrap();
        (script.failures.pop_front(), script.expires_in, script.delay)
    };
    tokio::time::sleep(delay).await;
    if let Some((status, body)) = failure {
        return (StatusCode::from_u16(status).unwrap(), body).into_response();
    }
    let answer = serde_json::json!({
        "token_type": "Bearer",
        "access_token": format!("at-{issued}"),
        "expires_in": expires_in.to_string(),
        "refresh_token": format!("rt-{issued}"),
    });
    axum::Json(answer).into_response()
}

/// What the raw server does with each connection, in order.
pub enum RawReply {
    /// Read the request, then close without a word.
    Drop,
    /// Answer 200 with this JSON body.
    Ok(&'static str),
}

/// A raw HTTP/1.1 server: one request per connection; keeps each request's head (lower-cased).
pub struct RawServer {
    pub url: String,
    heads: Arc<Mutex<Vec<String>>>,
}

impl RawServer {
    pub async fn start(replies: Vec<RawReply>) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        tokio::spawn(async move {
            let mut replies = VecDeque::from(replies);
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let head = read_request(&mut socket).await;
                seen.lock().unwrap().push(head);
                match replies.pop_front().unwrap_or(RawReply::Ok("{}")) {
                    RawReply::Drop => drop(socket),
                    RawReply::Ok(body) => {
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        socket.write_all(answer.as_bytes()).await.unwrap();
                        socket.shutdown().await.unwrap();
                    }
                }
            }
        });
        RawServer { url, heads }
    }

    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    pub fn request_ids(&self) -> Vec<String> {
        self.heads().iter().map(|head| header_in(head, "ms-requestid").unwrap()).collect()
    }
}

pub fn header_in(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| line.strip_prefix(&format!("{name}: ")).map(str::to_string))
}

/// Reads the head and the body (by content-length) of one request.
async fn read_request(socket: &mut tokio::net::TcpStream) -> String {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = socket.read(&mut chunk).await.unwrap();
        if read == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..read]);
        let text = String::from_utf8_lossy(&buffer).to_lowercase();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = header_in(&text, "content-length").map_or(0, |value| value.trim().parse().unwrap());
            if buffer.len() >= end + 4 + length {
                return text[..end].to_string();
            }
        }
    }
    String::from_utf8_lossy(&buffer).to_lowercase()
}

/// Test pacing: fast backoff so real-clock retries take milliseconds.
pub fn pace(rate: u32, max_attempts: u32) -> Arc<Pace> {
    let mut config = PaceConfig::new(
        NonZeroU32::new(rate).unwrap(),
        NonZeroUsize::new(8).unwrap(),
        NonZeroU32::new(max_attempts).unwrap(),
    );
    config.backoff_base = Duration::from_millis(2);
    config.backoff_max = Duration::from_millis(20);
    Arc::new(Pace::new(config))
}

pub fn quick_auth_config() -> AuthConfig {
    AuthConfig { backoff_base: Duration::from_millis(2), ..AuthConfig::default() }
}

pub fn static_auth(token: &str) -> Arc<Auth> {
    Arc::new(Auth::new(Credentials::Static { token: Secret::new(token) }, AuthConfig::default()).unwrap())
}

pub fn refresh_auth(server: &Server) -> Arc<Auth> {
    let credentials = Credentials::RefreshToken {
        authority: server.url.clone(),
        tenant: "contoso".into(),
        client_id: "app-id".into(),
        client_secret: None,
        refresh_token: Secret::new("rt-0"),
    };
    Arc::new(Auth::new(credentials, quick_auth_config()).unwrap())
}

pub fn client_for(url: &str, auth: Arc<Auth>, pace: Arc<Pace>) -> Client {
    Client::new(ClientConfig::new(url).unwrap(), auth, pace).unwrap()
}
