//! `/__sandbox/faults`, `/__sandbox/stats`, `/__sandbox/pixels` and `/__sandbox/reset` (what every
//! request must show first, a loopback `Host` and JSON for changes, is checked in `guard.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::state::{Faults, NetworkStats, SandboxState};

pub async fn get_faults(State(state): State<Arc<SandboxState>>) -> Json<Faults> {
    Json(state.faults())
}

/// Replaces the faults with the posted ones (absent fields take their defaults).
pub async fn set_faults(State(state): State<Arc<SandboxState>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Faults>(&body) {
        Ok(faults) if (0.0..=1.0).contains(&faults.error_rate) && (0.0..=1.0).contains(&faults.x_reject_rate) => {
            state.set_faults(faults.clone());
            Json(faults).into_response()
        }
        Ok(_) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "error_rate and x_reject_rate must be between 0.0 and 1.0"})),
        )
            .into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({"error": format!("invalid faults: {e}")}))).into_response(),
    }
}

pub async fn pixels(State(state): State<Arc<SandboxState>>) -> Json<Vec<super::PixelView>> {
    Json(state.pixels())
}

pub async fn reset(State(state): State<Arc<SandboxState>>) -> Json<serde_json::Value> {
    state.reset();
    Json(json!({"reset": true}))
}

pub async fn stats(State(state): State<Arc<SandboxState>>) -> Json<BTreeMap<String, NetworkStats>> {
    Json(state.stats().into_iter().map(|(n, s)| (n.as_str().to_owned(), s)).collect())
}
