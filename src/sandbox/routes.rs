//! The API the sandbox serves: the five profile endpoints, the country rules, the address validation and the token
//! endpoint, assembled into one router with the counting and gate middleware (and the side endpoints of `side`).
//!
//! Handlers parse and answer; the checks and the writes are the store's.

use super::Shared;
use super::auth::TokenRequest;
use super::config::SupportPutPath;
use super::counters::PutEffects;
use super::gate;
use super::profile::{self, CODE_INVALID_PROPERTY};
use super::respond::{DropConnection, token_error};
use super::rules;
use super::side;
use super::signin;
use super::state::{Applied, Lookup, PutRefusal};
use crate::wire::{self, CODE_ETAG_STALE, CODE_NO_RELATIONSHIP, PartnerProfileKind, Seconds, TokenResponse};
use axum::body::Bytes;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router, middleware};
use serde_json::Value;
use std::sync::Arc;

type SharedState = State<Arc<Shared>>;

/// Not documented by Partner Center for this case: the sandbox's code for an unknown customer.
const CODE_CUSTOMER_NOT_FOUND: i64 = 600002;

/// The whole application: API routes (counted; `/v1` gated) and side endpoints (neither).
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let mut v1: Router<Arc<Shared>> = Router::new()
        .route(super::listing::PATH, get(super::listing::list_customers))
        .route(&wire::customer_billing_profile_path("{id}"), get(get_customer).put(put_customer))
        .route(&wire::country_rules_path("{iso2}"), get(get_country_rules))
        .route(wire::ADDRESS_VALIDATION_PATH, post(validate_address));
    for kind in PartnerProfileKind::ALL {
        let read = move |state: SharedState, query: RawQuery| get_partner(state, kind, query);
        let write = move |state: SharedState, headers: HeaderMap, body: Bytes| put_partner(state, kind, headers, body);
        v1 = match (kind, shared.support_put_path) {
            // The docs' path only: a PUT on `/v1/profiles/support` answers 405 (its GET stays).
            (PartnerProfileKind::Support, SupportPutPath::Documented) => {
                v1.route(kind.get_path(), get(read)).route(wire::SUPPORT_PUT_PATH_DOCUMENTED, put(write))
            }
            _ => v1.route(kind.get_path(), get(read).put(write)),
        };
    }
    let v1 = v1
        .route("/v1/{*rest}", axum::routing::any(unknown_route))
        .route_layer(middleware::from_fn_with_state(shared.clone(), gate::guard));
    Router::new()
        .merge(v1)
        .route(&wire::token_path("{tenant}"), post(issue_token))
        .route(&wire::sign_in::authorize_path("{tenant}"), get(signin::authorize))
        .route(&wire::sign_in::device_code_path("{tenant}"), post(signin::device_code))
        .route(&wire::sign_in::token_path("{tenant}"), post(signin::token))
        .layer(middleware::from_fn_with_state(shared.clone(), gate::count))
        .merge(side::router())
        .with_state(shared)
}

async fn unknown_route(State(shared): SharedState) -> Response {
    shared.codes.error(StatusCode::NOT_FOUND, 404, "Resource not found", Vec::new())
}

async fn get_customer(State(shared): SharedState, Path(id): Path<String>) -> Response {
    let id = id.trim().to_ascii_lowercase();
    match shared.store.customer(&id) {
        Lookup::Found(profile) => {
            shared.counters.record_profile_read(&id);
            let chance = shared.faults.read(|faults| faults.concurrent_edit);
            if shared.faults.roll(chance) && shared.store.edit_concurrently(&id) {
                shared.counters.record_concurrent_edit(&id);
            }
            Json(profile).into_response()
        }
        Lookup::Forbidden => forbidden(&shared),
        Lookup::NotFound => not_found(&shared, &id),
    }
}

async fn put_customer(State(shared): SharedState, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let id = id.trim().to_ascii_lowercase();
    if shared.store.has_customer(&id) {
        shared.counters.record_put_attempt(&id);
    }
    note_request_id(&shared, &id, &headers);
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let result = shared.store.put_customer(&id, if_match(&headers), body);
    answer_put(&shared, &id, result)
}

async fn get_partner(State(shared): SharedState, kind: PartnerProfileKind, RawQuery(query): RawQuery) -> Response {
    let (key, value) = wire::LEGAL_BUSINESS_QUERY;
    if kind == PartnerProfileKind::LegalBusiness
        && query.as_deref().is_some_and(|query| query.split('&').any(|pair| pair == format!("{key}={value}")))
    {
        shared.counters.record_vetting_version_current();
    }
    match shared.store.partner(kind) {
        Some(profile) => Json(profile).into_response(),
        None => shared.codes.error(StatusCode::NOT_FOUND, 404, "Resource not found", Vec::new()),
    }
}

async fn put_partner(
    State(shared): SharedState,
    kind: PartnerProfileKind,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = format!("partner:{}", kind.name());
    shared.counters.record_put_attempt(&key);
    note_request_id(&shared, &key, &headers);
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let result = shared.store.put_partner(kind, if_match(&headers), body);
    answer_put(&shared, &key, result)
}

fn note_request_id(shared: &Shared, key: &str, headers: &HeaderMap) {
    if let Some(request_id) = headers.get(wire::HEADER_REQUEST_ID).and_then(|value| value.to_str().ok()) {
        shared.counters.record_put_request_id(key, request_id);
    }
}

fn if_match(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::IF_MATCH).and_then(|value| value.to_str().ok())
}

/// Counts an applied PUT and answers it (maybe by a dropped connection), or answers the refusal.
fn answer_put(shared: &Shared, key: &str, result: Result<Applied, PutRefusal>) -> Response {
    let applied = match result {
        Ok(applied) => applied,
        Err(refusal) => return refuse(shared, key, refusal),
    };
    let comparison = applied.comparison;
    let effects = PutEffects {
        dropped: comparison.dropped,
        unmodeled_altered: comparison.unmodeled_altered,
        lost_edit: comparison.lost_edit,
    };
    shared.counters.record_put_applied(key, effects);
    let mut response = Json(applied.profile).into_response();
    let chance = shared.faults.read(|faults| faults.drop_after_commit);
    if shared.faults.roll(chance) {
        response.extensions_mut().insert(DropConnection);
    }
    response
}

fn refuse(shared: &Shared, key: &str, refusal: PutRefusal) -> Response {
    let codes = shared.codes;
    match refusal {
        PutRefusal::NotFound => not_found(shared, key),
        PutRefusal::Forbidden => forbidden(shared),
        PutRefusal::MissingIfMatch => codes.error(
            StatusCode::PRECONDITION_FAILED,
            412,
            "Precondition failed: an If-Match header is required",
            Vec::new(),
        ),
        PutRefusal::StaleEtag => match shared.faults.stale_answer() {
            super::faults::StaleAnswer::PreconditionFailed => codes.error(
                StatusCode::PRECONDITION_FAILED,
                412,
                "Precondition failed: the etag does not match",
                Vec::new(),
            ),
            super::faults::StaleAnswer::Code2055 => {
                shared.counters.record_stale_2055();
                codes.error(StatusCode::BAD_REQUEST, CODE_ETAG_STALE, "Etag is no longer valid", Vec::new())
            }
        },
        PutRefusal::Invalid(invalid) => {
            codes.error(StatusCode::BAD_REQUEST, invalid.code, invalid.description, vec![Value::String(invalid.field)])
        }
    }
}

fn not_found(shared: &Shared, id: &str) -> Response {
    let description = format!("Customer {id} was not found");
    shared.codes.error(StatusCode::NOT_FOUND, CODE_CUSTOMER_NOT_FOUND, description, Vec::new())
}

fn forbidden(shared: &Shared) -> Response {
    let description = "The partner has no commerce relationship with this customer";
    shared.codes.error(StatusCode::FORBIDDEN, CODE_NO_RELATIONSHIP, description, Vec::new())
}

async fn get_country_rules(State(shared): SharedState, Path(iso2): Path<String>) -> Response {
    match rules::country_rules(&iso2) {
        Some(country) => Json(country.to_json()).into_response(),
        None => shared.codes.error(
            StatusCode::NOT_FOUND,
            404,
            format!("No validation rules for country {iso2:?}"),
            Vec::new(),
        ),
    }
}

async fn validate_address(State(shared): SharedState, body: Bytes) -> Response {
    let body = serde_json::from_slice(&body).map(|body| profile::normalise_keys(body, None));
    let Ok(Value::Object(address)) = body else {
        let description = "Invalid property: the body must be a JSON object";
        return shared.codes.error(StatusCode::BAD_REQUEST, CODE_INVALID_PROPERTY, description, Vec::new());
    };
    for field in rules::ADDRESS_REQUIRED_FIELDS {
        let value = address.get(*field).and_then(Value::as_str);
        let may_be_empty = *field == "state" || *field == "city" || *field == "postalCode";
        if value.is_none_or(|value| value.trim().is_empty() && !may_be_empty) {
            let description = format!("Invalid property: {field} is required");
            let data = vec![Value::String((*field).to_string())];
            return shared.codes.error(StatusCode::BAD_REQUEST, CODE_INVALID_PROPERTY, description, data);
        }
    }
    Json(rules::validate_address(&address)).into_response()
}

async fn issue_token(State(shared): SharedState, form: Result<Form<TokenRequest>, FormRejection>) -> Response {
    let Ok(Form(request)) = form else {
        shared.counters.record_token_refusal();
        return token_error("invalid_request", "AADSTS900144: the body must be a form with grant_type");
    };
    if request.resource.as_deref().is_some_and(|resource| resource.trim_end_matches('/') != shared.token_resource) {
        shared.counters.record_token_refusal();
        return token_error("invalid_resource", "AADSTS500011: the resource principal was not found in the tenant");
    }
    let lifetime = shared.faults.read(|faults| faults.token_lifetime());
    match shared.tokens.grant(&request, lifetime) {
        Ok((grant, issued)) => {
            shared.counters.record_token(grant.name());
            let body = TokenResponse {
                access_token: issued.access_token,
                token_type: Some("Bearer".into()),
                expires_in: Seconds(issued.lifetime.as_secs()),
                refresh_token: issued.refresh_token,
            };
            Json(with_aad_extras(&body, &shared.token_resource)).into_response()
        }
        Err(refusal) => {
            shared.counters.record_token_refusal();
            token_error(refusal.error, &refusal.description)
        }
    }
}

/// The fields AAD v1 adds around the token: `resource`, `ext_expires_in`, `expires_on`, `not_before` (strings).
fn with_aad_extras(body: &TokenResponse, resource: &str) -> Value {
    let mut value = serde_json::to_value(body).unwrap_or(Value::Null);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    if let Some(fields) = value.as_object_mut() {
        fields.insert("resource".into(), resource.into());
        fields.insert("ext_expires_in".into(), body.expires_in.0.to_string().into());
        fields.insert("expires_on".into(), (now + body.expires_in.0).to_string().into());
        fields.insert("not_before".into(), now.to_string().into());
    }
    value
}
