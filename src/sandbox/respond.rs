//! The answers the sandbox gives in their real shapes: Partner Center error bodies (`{code, description, data,
//! source}`), the 429 body with `Retry-After`, and the AAD token error.

use crate::wire::{ErrorBody, ErrorCode, ThrottleBody};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Marks a response the server must not send: the connection is dropped instead (after the PUT was applied).
#[derive(Clone, Copy, Debug)]
pub(crate) struct DropConnection;

/// How error codes are written.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CodeStyle {
    pub as_strings: bool,
}

impl CodeStyle {
    /// A Partner Center error answer.
    pub(crate) fn error(
        self,
        status: StatusCode,
        code: i64,
        description: impl Into<String>,
        data: Vec<Value>,
    ) -> Response {
        let code = if self.as_strings { ErrorCode::Text(code.to_string()) } else { ErrorCode::Number(code) };
        let body = ErrorBody {
            code: Some(code),
            description: Some(description.into()),
            data,
            source: Some("PartnerFD".into()),
        };
        (status, Json(body)).into_response()
    }
}

/// The 429 answer: `Retry-After: N` and `{"statusCode": 429, "message": "Rate limit is exceeded. Try again in N seconds."}`.
pub(crate) fn throttled(retry_after: u64) -> Response {
    let body = ThrottleBody {
        status_code: 429,
        message: format!("Rate limit is exceeded. Try again in {retry_after} seconds."),
    };
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

/// A token endpoint refusal in the AAD shape: `{"error": ..., "error_description": ...}`.
pub(crate) fn token_error(error: &str, description: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": error, "error_description": description}))).into_response()
}
