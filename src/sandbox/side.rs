//! The side endpoints under `/_sandbox/`: the sandbox's own truth and controls, outside the API. No token, never
//! faulted, never counted. Each mirrors a method of the `Sandbox` handle.
//!
//! | endpoint | handle method |
//! | --- | --- |
//! | `GET /_sandbox/counters` | `counters()` |
//! | `GET /_sandbox/customers` | `customer_ids()` |
//! | `GET /_sandbox/customers/{id}` | `customer(id)` |
//! | `POST /_sandbox/customers/{id}/edit` with `{"path": "defaultAddress.city", "value": ...}` | `edit_customer(...)` |
//! | `GET /_sandbox/profiles/{kind}` | `partner_profile(kind)` |
//! | `GET /_sandbox/faults`, `POST /_sandbox/faults` (the whole settings; omitted fields take defaults) | `faults()`, `set_faults(...)` |
//! | `POST /_sandbox/latency` with `{"latency_ms": 1000}` (the latency alone; the token bucket keeps its tokens) | `set_latency(...)` |
//! | `POST /_sandbox/revoke` | `revoke_tokens()` |
//! | `POST /_sandbox/device/approve` with `{"user_code": "ABCD1234", "approve": true}` | `decide_device_code(...)` |
//! | `GET /_sandbox/devicelogin` (the device flow's verification page: says to approve through the above) | |
//! | `POST /_sandbox/token` (answers `{"access_token": ..., "expires_in": ...}`) | `mint_token()` |

use super::Shared;
use super::config::Faults;
use super::error::SandboxError;
use crate::wire::PartnerProfileKind;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

type SharedState = State<Arc<Shared>>;

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_sandbox/counters", get(counters))
        .route("/_sandbox/customers", get(customer_ids))
        .route("/_sandbox/customers/{id}", get(customer))
        .route("/_sandbox/customers/{id}/edit", post(edit_customer))
        .route("/_sandbox/profiles/{kind}", get(partner_profile))
        .route("/_sandbox/faults", get(faults).post(set_faults))
        .route("/_sandbox/latency", post(set_latency))
        .route("/_sandbox/revoke", post(revoke))
        .route("/_sandbox/token", post(mint_token))
        .route("/_sandbox/device/approve", post(decide_device_code))
        .route("/_sandbox/devicelogin", get(device_login))
}

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

async fn counters(State(shared): SharedState) -> Response {
    Json(shared.counters.snapshot()).into_response()
}

async fn customer_ids(State(shared): SharedState) -> Response {
    Json(shared.store.customer_ids()).into_response()
}

async fn customer(State(shared): SharedState, Path(id): Path<String>) -> Response {
    match shared.customer(&id) {
        Some(profile) => Json(profile).into_response(),
        None => problem(StatusCode::NOT_FOUND, format!("no customer with id {id}")),
    }
}

#[derive(Deserialize)]
struct Edit {
    path: String,
    value: Value,
}

async fn edit_customer(
    State(shared): SharedState,
    Path(id): Path<String>,
    edit: Result<Json<Edit>, JsonRejection>,
) -> Response {
    let Ok(Json(edit)) = edit else {
        return problem(StatusCode::BAD_REQUEST, "expected {\"path\": \"a.b\", \"value\": ...}");
    };
    match shared.edit_customer(&id, &edit.path, edit.value) {
        Ok(profile) => Json(profile).into_response(),
        Err(error @ SandboxError::UnknownCustomer(_)) => problem(StatusCode::NOT_FOUND, error.to_string()),
        Err(error) => problem(StatusCode::BAD_REQUEST, error.to_string()),
    }
}

async fn partner_profile(State(shared): SharedState, Path(kind): Path<String>) -> Response {
    match PartnerProfileKind::from_name(&kind).and_then(|kind| shared.store.partner(kind)) {
        Some(profile) => Json(profile).into_response(),
        None => problem(StatusCode::NOT_FOUND, format!("no partner profile {kind:?}")),
    }
}

async fn faults(State(shared): SharedState) -> Response {
    Json(shared.faults.current()).into_response()
}

async fn set_faults(State(shared): SharedState, faults: Result<Json<Faults>, JsonRejection>) -> Response {
    let faults = match faults {
        Ok(Json(faults)) => faults,
        Err(rejection) => return problem(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    match shared.set_faults(faults) {
        Ok(()) => Json(shared.faults.current()).into_response(),
        Err(error) => problem(StatusCode::BAD_REQUEST, error.to_string()),
    }
}

#[derive(Deserialize)]
struct Latency {
    latency_ms: u64,
}

async fn set_latency(State(shared): SharedState, latency: Result<Json<Latency>, JsonRejection>) -> Response {
    let Ok(Json(latency)) = latency else {
        return problem(StatusCode::BAD_REQUEST, "expected {\"latency_ms\": 1000}");
    };
    shared.faults.set_latency(latency.latency_ms);
    Json(shared.faults.current()).into_response()
}

async fn revoke(State(shared): SharedState) -> Response {
    shared.revoke_all();
    StatusCode::NO_CONTENT.into_response()
}

async fn mint_token(State(shared): SharedState) -> Response {
    let (token, lifetime) = shared.mint_token();
    Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": lifetime.as_secs().to_string()}))
        .into_response()
}

#[derive(Deserialize)]
struct Decision {
    user_code: String,
    #[serde(default = "approve_by_default")]
    approve: bool,
}

fn approve_by_default() -> bool {
    true
}

async fn decide_device_code(State(shared): SharedState, decision: Result<Json<Decision>, JsonRejection>) -> Response {
    let Ok(Json(decision)) = decision else {
        return problem(StatusCode::BAD_REQUEST, "expected {\"user_code\": \"ABCD1234\", \"approve\": true}");
    };
    if shared.sign_ins.decide(&decision.user_code, decision.approve) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        problem(StatusCode::NOT_FOUND, format!("no device sign-in waits under the code {}", decision.user_code))
    }
}

async fn device_login() -> &'static str {
    "sandbox: approve a device code with POST /_sandbox/device/approve {\"user_code\": \"...\", \"approve\": true}\n"
}
