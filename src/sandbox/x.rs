//! X Conversions API simulator: 400 with indexed errors for invalid conversions (or, with the
//! `x_partial_success` fault, a 200 that processed fewer than sent), rate-limit headers, 429.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::state::{now_secs, SandboxState};
use super::{before_request, oauth, with_injected_wait};
use crate::model::{formats, Network};

fn errors(status: StatusCode, list: Vec<Value>) -> Response {
    (status, Json(json!({"errors": list, "request": {"params": {}}}))).into_response()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    errors(status, vec![json!({"code": code, "message": message})])
}

fn rate_headers(response: &mut Response, limit: u64, remaining: u64, reset: u64) {
    let h = response.headers_mut();
    for (name, value) in
        [("x-rate-limit-limit", limit), ("x-rate-limit-remaining", remaining), ("x-rate-limit-reset", reset)]
    {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            h.insert(name, v);
        }
    }
}

/// The demo bearer token, an issued OAuth 2.0 token, or a valid OAuth 1.0a signature.
fn authenticate(state: &SandboxState, headers: &HeaderMap, method: &str, path: &str) -> Result<(), &'static str> {
    let authorization = oauth::authorization(headers);
    let bearer = authorization.strip_prefix("Bearer ").map(str::trim);
    if bearer.is_some_and(|t| state.is_revoked(t)) {
        return Err("Invalid or expired token.");
    }
    state.oauth.authenticate(authorization, method, &oauth::request_url(headers, path))
}

/// The sandbox ad account every sandbox token can reach.
pub const SANDBOX_ACCOUNT_ID: &str = "18ce54sbx01";

pub async fn accounts(State(state): State<Arc<SandboxState>>, headers: HeaderMap) -> Response {
    if let Err(message) = authenticate(&state, &headers, "GET", "/12/accounts") {
        return error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED_ACCESS", message);
    }
    Json(json!({"data": [{"id": SANDBOX_ACCOUNT_ID, "name": "Sandbox Studio", "approval_status": "ACCEPTED"}],
                "request": {"params": {}}}))
    .into_response()
}

pub async fn user_access(
    State(state): State<Arc<SandboxState>>,
    Path(account_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/12/accounts/{account_id}/authenticated_user_access");
    if let Err(message) = authenticate(&state, &headers, "GET", &path) {
        return error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED_ACCESS", message);
    }
    if account_id != SANDBOX_ACCOUNT_ID {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "Account not found");
    }
    Json(json!({"data": {"user_id": "1234567890", "permissions": ["ACCOUNT_ADMIN", "TWEET_COMPOSER"]},
                "request": {"params": {"account_id": account_id}}}))
    .into_response()
}

fn is_sha256(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn conversion_problem(c: &Value, pixel_id: &str) -> Option<(&'static str, String)> {
    let time = c.get("conversion_time").and_then(Value::as_str).unwrap_or_default();
    if chrono::DateTime::parse_from_rfc3339(time).is_err() || !time.ends_with('Z') {
        return Some(("conversion_time", "Conversion_time must be ISO 8601 in UTC".into()));
    }
    let tag = c.get("event_id").and_then(Value::as_str).unwrap_or_default();
    if formats::x_event_tag(tag).is_err() || formats::x_event_tag_pixel(tag) != Some(pixel_id) {
        return Some(("event_id", format!("Event_id ({tag}) is not a single event tag (SET)")));
    }
    let identifiers = c.get("identifiers").and_then(Value::as_array).cloned().unwrap_or_default();
    let has_match = identifiers.iter().any(|i| {
        i.get("twclid").is_some() || i.get("hashed_email").is_some() || i.get("hashed_phone_number").is_some()
    });
    if !has_match {
        return Some(("identifiers", "At least one user identifier must be provided".into()));
    }
    if identifiers.iter().filter_map(|i| i.get("hashed_email")).any(|v| !is_sha256(v)) {
        return Some(("identifiers", "Hashed_email is not a valid SHA-256 hash".into()));
    }
    if c.get("value").is_some_and(|v| !v.is_string() && !v.is_number()) {
        return Some(("value", "Value must be a number".into()));
    }
    None
}

pub async fn conversions(
    State(state): State<Arc<SandboxState>>,
    Path(pixel_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(status) = before_request(&state, Network::X).await {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let mut response = error(status, "SERVICE_UNAVAILABLE", "Injected failure");
        if status == StatusCode::TOO_MANY_REQUESTS {
            rate_headers(&mut response, 60_000, 0, now_secs() + 1);
        }
        return with_injected_wait(response, &state, true);
    }
    if let Err(message) = authenticate(&state, &headers, "POST", &format!("/12/measurement/conversions/{pixel_id}")) {
        state.count_rejected(Network::X, 1);
        return error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED_ACCESS", message);
    }
    if formats::x_pixel_id(&pixel_id).is_err() {
        return error(StatusCode::FORBIDDEN, "UNAUTHORIZED_ACCESS", "The user has no access to this pixel");
    }
    let Ok(doc) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER", "Invalid JSON body");
    };
    let list = doc.get("conversions").and_then(Value::as_array).cloned().unwrap_or_default();
    if list.len() > 500 {
        state.count_rejected(Network::X, list.len() as u64);
        return error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER", "Conversion count limit is 500");
    }
    if list.is_empty() {
        return error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER", "At least one conversion is required");
    }
    let (limit, remaining, reset) = match state.x_take(list.len() as u64) {
        Ok(window) => window,
        Err((limit, reset)) => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", "Rate limit exceeded");
            rate_headers(&mut response, limit, 0, reset);
            return response;
        }
    };
    let mut problems: Vec<(usize, &str, String)> = list
        .iter()
        .enumerate()
        .filter_map(|(i, c)| conversion_problem(c, &pixel_id).map(|(field, m)| (i, field, m)))
        .collect();
    // The injected partial rejection: some valid conversions X "cannot match", inside a 200.
    let rejected_by_draw: Vec<usize> =
        (0..list.len()).filter(|i| !problems.iter().any(|(p, _, _)| p == i) && state.draw_x_reject()).collect();
    let partial_by_draw = !rejected_by_draw.is_empty();
    for i in rejected_by_draw {
        problems.push((i, "identifiers", "No user could be matched to the given identifiers".into()));
    }
    let error_list: Vec<Value> = problems
        .iter()
        .map(|(i, field, m)| json!({"code": "INVALID_PARAMETER", "message": m, "parameter": format!("conversions[{i}].{field}")}))
        .collect();
    let partial = state.faults().x_partial_success || partial_by_draw;
    if !problems.is_empty() && !partial {
        state.count_rejected(Network::X, list.len() as u64);
        let mut response = errors(StatusCode::BAD_REQUEST, error_list);
        rate_headers(&mut response, limit, remaining, reset);
        return response;
    }
    state.count_rejected(Network::X, problems.len() as u64);
    let keys: Vec<String> = list
        .iter()
        .enumerate()
        .filter(|(i, _)| !problems.iter().any(|(p, _, _)| p == i))
        .map(|(_, c)| {
            let id = c.get("conversion_id").and_then(Value::as_str).unwrap_or_default();
            let tag = c.get("event_id").and_then(Value::as_str).unwrap_or_default();
            format!("{id}/{tag}")
        })
        .collect();
    state.accept(Network::X, keys.iter().map(String::as_str));
    let accepted: Vec<Value> = list
        .iter()
        .enumerate()
        .filter(|(i, _)| !problems.iter().any(|(p, _, _)| p == i))
        .map(|(_, c)| c.clone())
        .collect();
    state.record_pixel(Network::X, &pixel_id, None, &accepted);
    let mut body = json!({"request": {"params": {"account_id": "sandbox"}},
                          "data": {"conversions_processed": keys.len(), "debug_id": format!("sbx-{}", fastrand::u64(..))}});
    if partial && !error_list.is_empty() {
        body["errors"] = Value::from(error_list);
    }
    let mut response = Json(body).into_response();
    rate_headers(&mut response, limit, remaining, reset);
    response
}
