//! The loopback REST ingest: game servers on this machine post canonical events.
//!
//! `POST /v1/events[?game=ID]` takes one event or an array of up to 1,000, with
//! `Authorization: Bearer <token>`; the answer lists each event as accepted, duplicate or
//! rejected (with the field and the reason). "Accepted" means committed to disk. A request that
//! fails as a whole (400 malformed JSON, 401 token, 413 too large, 415 content type, 404 game,
//! 503 database) enqueues nothing. `GET /v1/health` is for monitors. OpenAPI: `docs/ingest-openapi.yaml`.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::serving::ServerTask;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::net::TcpListener;

use super::group_commit::{self, CommitError, Committed, Job};
use super::Source;
use crate::model::{ConversionEvent, SentBody, SentItem};
use crate::secrets::Secret;
use crate::store::Store;

/// Where the ingest listens unless told otherwise.
pub const INGEST_DEFAULT_PORT: u16 = 47820;
/// Events per request at most.
pub const MAX_EVENTS: usize = 1000;
/// `X-Postback-Source: demo` marks the demo generator's requests.
pub const SOURCE_HEADER: &str = "x-postback-source";
/// Bytes per request body at most (1,000 events of ~1 KiB fit with room to spare).
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// What the Sources page shows about the ingest API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct IngestStatus {
    pub running: bool,
    /// `http://127.0.0.1:47820`.
    pub url: Option<String>,
    /// Why it is not running.
    pub problem: Option<String>,
    /// Events accepted since it started.
    pub accepted: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the ingest API listens on loopback only (127.0.0.1, ::1); {0} is not a loopback address")]
    NotLoopback(SocketAddr),
    #[error("cannot listen on {addr}: {source}; stop what uses the port or choose another address")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

struct Ingest {
    store: Store,
    token: Secret,
    /// Valid events go to the group committer (one synced commit for concurrent requests).
    commits: tokio::sync::mpsc::Sender<Job>,
    /// Events counted as accepted since start (for the window's source view).
    accepted: std::sync::atomic::AtomicU64,
}

/// An ingest server serving in the background until [`RunningIngest::stop`] or drop.
pub struct RunningIngest {
    pub addr: SocketAddr,
    pub base_url: String,
    state: Arc<Ingest>,
    server: crate::serving::ServerTask,
}

impl RunningIngest {
    pub async fn stop(mut self) {
        self.server.stop().await;
    }

    /// Events accepted since the server started.
    pub fn accepted(&self) -> u64 {
        self.state.accepted.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Binds `addr` (loopback only; port 0 picks one) and serves in a background task.
pub async fn start(addr: SocketAddr, store: Store, token: Secret) -> Result<RunningIngest, IngestError> {
    if !addr.ip().is_loopback() {
        return Err(IngestError::NotLoopback(addr));
    }
    let listener = TcpListener::bind(addr).await.map_err(|source| IngestError::Bind { addr, source })?;
    let addr = listener.local_addr().map_err(|source| IngestError::Bind { addr, source })?;
    crate::identity::load_phone_metadata_in_background();
    let commits = group_commit::start(store.clone());
    let state = Arc::new(Ingest { store, token, commits, accepted: Default::default() });
    let app =
        Router::new().route("/v1/events", post(events)).route("/v1/health", get(health)).with_state(state.clone());
    Ok(RunningIngest { base_url: format!("http://{addr}"), addr, state, server: ServerTask::spawn(listener, app) })
}

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": {"status": status.as_u16(), "message": message.into()}}))).into_response()
}

async fn health(State(ingest): State<Arc<Ingest>>) -> Response {
    match ingest.store.queue_counts().await {
        Ok((ready, leased, dead)) => {
            Json(json!({"status": "ok", "queue": {"waiting": ready, "sending": leased, "failed": dead}}))
                .into_response()
        }
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, format!("the database does not answer: {e}")),
    }
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    game: Option<i64>,
}

/// The outcome of one event of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventResult {
    pub index: usize,
    pub event_id: Option<String>,
    /// `accepted`, `duplicate` or `rejected`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The networks an accepted event is not sent to, and why (consent, no click id, not a trigger event…).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub not_forwarded: Vec<String>,
}

/// The answer to `POST /v1/events`, serialised as it is (no JSON tree in between).
#[derive(Serialize)]
struct EventsAnswer<'a> {
    accepted: u64,
    duplicates: u64,
    game_id: i64,
    rejected: u64,
    results: &'a [EventResult],
}

fn authorised(headers: &HeaderMap, token: &Secret) -> bool {
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let Some(given) = given.strip_prefix("Bearer ").map(str::trim) else { return false };
    // Constant time: the comparison says nothing about how much of the token was right.
    let (a, b) = (given.as_bytes(), token.expose().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn events(
    State(ingest): State<Arc<Ingest>>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !authorised(&headers, &ingest.token) {
        return problem(
            StatusCode::UNAUTHORIZED,
            "missing or wrong token: send Authorization: Bearer <the ingest token shown on the Sources page>",
        );
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.trim().to_ascii_lowercase().starts_with("application/json") {
        return problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "send the events as Content-Type: application/json");
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over {} MiB; send at most {MAX_EVENTS} events per request", MAX_BODY / (1024 * 1024)),
        );
    };
    // Read into the events' fields directly: a JSON tree of the whole body cost more than
    // validating it.
    let body: SentBody = match serde_json::from_slice(&bytes) {
        Ok(body) => body,
        Err(e) => {
            return problem(StatusCode::BAD_REQUEST, format!("the body is not valid JSON ({e}); nothing was accepted"))
        }
    };
    let items: Vec<SentItem> = match body {
        SentBody::Many(items) => items,
        SentBody::One(fields) => vec![SentItem::Object(fields)],
        SentBody::Neither => {
            return problem(
                StatusCode::BAD_REQUEST,
                "send one event object or an array of events; nothing was accepted",
            )
        }
    };
    if items.len() > MAX_EVENTS {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{} events in one request; send at most {MAX_EVENTS}; nothing was accepted", items.len()),
        );
    }
    let mut results: Vec<EventResult> = Vec::with_capacity(items.len());
    let mut valid: Vec<ConversionEvent> = Vec::with_capacity(items.len());
    let mut valid_index: Vec<usize> = Vec::with_capacity(items.len());
    let mut seen = std::collections::HashSet::new();
    for (index, item) in items.iter().enumerate() {
        let (event_id, parsed) = match item {
            SentItem::Object(fields) => (fields.event_id_as_sent(), ConversionEvent::from_fields(fields)),
            SentItem::NotObject => (None, Err(ConversionEvent::not_an_object())),
        };
        match parsed {
            Ok(event) if !seen.insert(event.event_id.clone()) => results.push(EventResult {
                index,
                event_id: Some(event.event_id),
                status: "duplicate".into(),
                field: None,
                message: Some("the same event_id appears earlier in this request".into()),
                not_forwarded: Vec::new(),
            }),
            Ok(event) => {
                valid_index.push(index);
                valid.push(event);
                results.push(EventResult {
                    index,
                    event_id,
                    status: String::new(),
                    field: None,
                    message: None,
                    not_forwarded: Vec::new(),
                });
            }
            Err(e) => results.push(EventResult {
                index,
                event_id,
                status: "rejected".into(),
                field: Some(e.field),
                message: Some(e.message),
                not_forwarded: Vec::new(),
            }),
        }
    }
    // The demo generator says so, for the attribution summary; every other client is "ingest".
    let source = match headers.get(SOURCE_HEADER).and_then(|v| v.to_str().ok()) {
        Some("demo") => Source::Demo,
        _ => Source::Ingest,
    };
    let ids: Vec<String> = valid.iter().map(|e| e.event_id.clone()).collect();
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job = Job { game: query.game, events: valid, source, reply };
    let shutting_down = || CommitError::Database("the ingest is shutting down".into());
    let committed = match ingest.commits.send(job).await {
        Ok(()) => answer.await.unwrap_or_else(|_| Err(shutting_down())),
        Err(_) => Err(shutting_down()),
    };
    let Committed { game_id, accepted } = match committed {
        Ok(committed) => committed,
        Err(CommitError::NoGame) => {
            return problem(
                StatusCode::NOT_FOUND,
                "no such game; give ?game=<id> of an existing game (postback games list)",
            )
        }
        // The enqueue is one transaction: nothing of this request was accepted.
        Err(CommitError::Database(e)) => {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("nothing was accepted: the database failed ({e}); retry the request"),
            )
        }
    };
    let mut counts = (0u64, 0u64, 0u64);
    for (id, index) in ids.iter().zip(valid_index) {
        let result = &mut results[index];
        if accepted.queued_events.contains(id) || !accepted.routed_events.contains(id) {
            result.status = "accepted".into();
            result.not_forwarded = accepted.skip_reasons.get(id).cloned().unwrap_or_default();
        } else {
            result.status = "duplicate".into();
            result.message = Some("already accepted within 48 h (same event_id)".into());
        }
    }
    for r in &results {
        match r.status.as_str() {
            "accepted" => counts.0 += 1,
            "duplicate" => counts.1 += 1,
            _ => counts.2 += 1,
        }
    }
    ingest.accepted.fetch_add(counts.0, std::sync::atomic::Ordering::Relaxed);
    Json(EventsAnswer { accepted: counts.0, duplicates: counts.1, game_id, rejected: counts.2, results: &results })
        .into_response()
}
