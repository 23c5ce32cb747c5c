//! TikTok Events API 2.0 simulator: errors as HTTP 200 with a non-zero `code`, like the real one.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::state::SandboxState;
use super::{before_request, with_injected_wait, TIKTOK_TOKEN};
use crate::model::{formats, Network};

fn answer(code: i64, message: &str) -> Response {
    let request_id = format!("sbx-{}", fastrand::u64(..));
    Json(json!({"code": code, "message": message, "request_id": request_id, "data": {}})).into_response()
}

/// The first problem of one event, named by its path in the body.
fn event_problem(i: usize, event: &Value) -> Option<String> {
    let at = |field: &str| format!("data[{i}].{field}");
    if event.get("event").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Some(format!("{} is required", at("event")));
    }
    if !event.get("event_time").is_some_and(Value::is_i64) {
        return Some(format!("{} must be an integer (Unix seconds)", at("event_time")));
    }
    if event.get("event_id").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Some(format!("{} is required", at("event_id")));
    }
    let user = event.get("user").and_then(Value::as_object)?;
    for hashed in ["email", "phone", "external_id"] {
        if let Some(v) = user.get(hashed) {
            if !v.as_str().is_some_and(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())) {
                return Some(format!("{} must be a SHA-256 hash", at(&format!("user.{hashed}"))));
            }
        }
    }
    if let Some(props) = event.get("properties") {
        if props.get("value").is_some_and(|v| !v.is_number()) {
            return Some(format!("{} must be a number", at("properties.value")));
        }
        if props.get("value").is_some() != props.get("currency").is_some() {
            return Some(format!("{} and currency go together", at("properties.value")));
        }
    }
    None
}

pub async fn track(State(state): State<Arc<SandboxState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(status) = before_request(&state, Network::TikTok).await {
        let injected = match status {
            429 => answer(40100, "Too many requests. Please retry in some time."),
            401 => answer(40105, "Access token is incorrect or has been revoked."),
            403 => answer(40001, "No permission to operate pixel code."),
            s => (
                StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_GATEWAY),
                Html("<html><body><h1>502 Bad Gateway</h1></body></html>"),
            )
                .into_response(),
        };
        return with_injected_wait(injected, &state, false);
    }
    let token = headers.get("access-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !super::token_accepted(token, TIKTOK_TOKEN) || state.is_revoked(token) {
        let hint = if token.starts_with("Bearer ") { " (no Bearer prefix)" } else { "" };
        state.count_rejected(Network::TikTok, 1);
        return answer(40105, &format!("Access token is incorrect or has been revoked.{hint}"));
    }
    let Ok(doc) = serde_json::from_slice::<Value>(&body) else {
        state.count_rejected(Network::TikTok, 1);
        return answer(40002, "Invalid JSON body.");
    };
    if doc.get("event_source").and_then(Value::as_str) != Some("web") {
        state.count_rejected(Network::TikTok, 1);
        return answer(40002, "event_source: must be web.");
    }
    let pixel = doc.get("event_source_id").and_then(Value::as_str).unwrap_or_default();
    // Pixel codes starting with CNOACCESS play a pixel the token cannot operate.
    if formats::tiktok_pixel_code(pixel).is_err() || pixel.starts_with("CNOACCESS") {
        return answer(40001, "No permission to operate pixel code.");
    }
    let events = doc.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
    if events.is_empty() || events.len() > 1000 {
        state.count_rejected(Network::TikTok, events.len() as u64);
        return answer(40002, "data: must hold 1 to 1000 events.");
    }
    // One invalid event fails the whole request, as on the real API.
    if let Some(problem) = events.iter().enumerate().find_map(|(i, e)| event_problem(i, e)) {
        state.count_rejected(Network::TikTok, events.len() as u64);
        return answer(40002, &format!("Invalid parameter: {problem}"));
    }
    let test_code = doc.get("test_event_code").and_then(Value::as_str);
    state.record_pixel(Network::TikTok, pixel, test_code, &events);
    if test_code.is_some() {
        state.count_test_events(Network::TikTok, events.len() as u64);
    } else {
        state.accept(Network::TikTok, events.iter().filter_map(|e| e.get("event_id").and_then(Value::as_str)));
    }
    answer(0, "OK")
}
