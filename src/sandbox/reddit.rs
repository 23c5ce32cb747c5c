//! Reddit Conversions API v3 simulator: one invalid event refuses the whole batch with a list.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::state::{now_secs, SandboxState};
use super::{before_request, with_injected_wait, REDDIT_TOKEN};
use crate::model::{formats, Network};

const TRACKING_TYPES: [&str; 9] =
    ["PAGE_VISIT", "VIEW_CONTENT", "SEARCH", "ADD_TO_CART", "ADD_TO_WISHLIST", "PURCHASE", "LEAD", "SIGN_UP", "CUSTOM"];

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": {"code": status.as_u16(), "message": message}}))).into_response()
}

fn event_problem(event: &Value, now_ms: i64) -> Option<String> {
    let Some(at) = event.get("event_at").and_then(Value::as_i64) else {
        return Some("event_at must be an integer in epoch milliseconds".into());
    };
    if at < now_ms - 168 * 3600 * 1000 {
        return Some("event_at is older than 7 days".into());
    }
    if at > now_ms + 5 * 60 * 1000 {
        return Some("event_at is more than 5 minutes in the future".into());
    }
    if event.get("action_source").and_then(Value::as_str) != Some("WEBSITE") {
        return Some("invalid action_source".into());
    }
    let kind = event.pointer("/type/tracking_type").and_then(Value::as_str).unwrap_or_default();
    if !TRACKING_TYPES.contains(&kind) {
        return Some(format!("invalid tracking_type '{kind}'"));
    }
    if kind == "CUSTOM" && event.pointer("/type/custom_event_name").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Some("custom_event_name is required for CUSTOM events".into());
    }
    if event.pointer("/metadata/conversion_id").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Some("metadata.conversion_id is required".into());
    }
    if event.pointer("/metadata/value").is_some_and(|v| !v.is_number()) {
        return Some("metadata.value must be a number".into());
    }
    if event.get("click_id").is_none() && event.pointer("/user/email").is_none() {
        return Some("a click_id or a hashed email is required".into());
    }
    None
}

pub async fn conversion_events(
    State(state): State<Arc<SandboxState>>,
    Path(pixel_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(status) = before_request(&state, Network::Reddit).await {
        let injected = match status {
            401 => (StatusCode::UNAUTHORIZED, "Authorization Required").into_response(),
            429 => {
                let mut r = error(StatusCode::TOO_MANY_REQUESTS, "Too many requests");
                r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
                r
            }
            s => error(StatusCode::from_u16(s).unwrap_or(StatusCode::SERVICE_UNAVAILABLE), "Service unavailable"),
        };
        return with_injected_wait(injected, &state, false);
    }
    let token = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let token = token.strip_prefix("Bearer ").unwrap_or_default();
    if !super::token_accepted(token, REDDIT_TOKEN) || state.is_revoked(token) {
        state.count_rejected(Network::Reddit, 1);
        return (StatusCode::UNAUTHORIZED, "Authorization Required").into_response();
    }
    // Pixel ids starting with a2_noaccess play a pixel the token was not made for.
    if formats::reddit_pixel_id(&pixel_id).is_err() || pixel_id.starts_with("a2_noaccess") {
        return error(StatusCode::FORBIDDEN, "The token has no access to this pixel");
    }
    let Ok(doc) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "invalid JSON");
    };
    let events = doc.pointer("/data/events").and_then(Value::as_array).cloned().unwrap_or_default();
    if events.is_empty() || events.len() > 1000 {
        state.count_rejected(Network::Reddit, events.len() as u64);
        return error(StatusCode::BAD_REQUEST, "data.events must hold 1 to 1000 events");
    }
    let now_ms = (now_secs() * 1000) as i64;
    let invalid: Vec<Value> = events
        .iter()
        .filter_map(|e| event_problem(e, now_ms).map(|m| json!({"error_message": m, "event": e})))
        .collect();
    if !invalid.is_empty() {
        state.count_rejected(Network::Reddit, events.len() as u64);
        let message = format!("There were {} invalid conversion events. None were processed.", invalid.len());
        return (StatusCode::BAD_REQUEST, Json(json!({"message": message, "invalid_events": invalid}))).into_response();
    }
    let test_id = doc.pointer("/data/test_id").and_then(Value::as_str);
    state.record_pixel(Network::Reddit, &pixel_id, test_id, &events);
    if test_id.is_some() {
        state.count_test_events(Network::Reddit, events.len() as u64);
    } else {
        state.accept(
            Network::Reddit,
            events.iter().filter_map(|e| e.pointer("/metadata/conversion_id").and_then(Value::as_str)),
        );
    }
    Json(json!({"message": format!("Successfully processed {} conversion events.", events.len())})).into_response()
}
