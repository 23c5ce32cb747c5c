//! The loopback REST ingest: game servers on this machine post canonical events.
//!
//! `POST /v1/events[?game=ID]` takes one event or an array of up to 1,000, with
//! `Authorization: Bearer <token>`; the answer lists each event as accepted, duplicate or
//! rejected (with the field and the reason). "Accepted" means committed to disk. A request that
//! fails as a whole (400 malformed JSON, 401 token, 413 too large, 415 content type, 404 game,
//! 429 busy, 503 database) enqueues nothing. `GET /v1/health` is for monitors. OpenAPI:
//! `docs/ingest-openapi.yaml`.
//!
//! Memory is bounded on every input: at most [`MAX_IN_FLIGHT`] requests and [`BODY_BUDGET`]
//! bytes of bodies at once (429 with `Retry-After` beyond), a body over [`MAX_BODY`] is never
//! buffered, and the body is read into events without materialising more than [`MAX_EVENTS`]
//! of them (see `model::event_fields`). Every refusal reaches the client: what is left of the
//! body is read and discarded first (see [`refuse`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::serving::ServerTask;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::group_commit::{self, CommitError, Committed, Job};
use super::token::{IngestAuth, Verdict};
use super::Source;
use crate::model::{BodyError, ConversionEvent, SentBody, SentItem};
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
/// Requests handled at once at most (the benches' 32 connections fit twice); more get 429.
pub const MAX_IN_FLIGHT: usize = 64;
/// Bytes of request bodies held at once at most, each counted at its `Content-Length` (at
/// [`MAX_BODY`] without one): eight full bodies. More get 429. What a request holds while it is
/// read grows with its body, so this bounds the ingest's memory with [`MAX_IN_FLIGHT`].
pub const BODY_BUDGET: usize = 8 * MAX_BODY;
/// `Retry-After` of a 429, in seconds.
pub const RETRY_AFTER_SECS: u64 = 1;
/// What a refusal reads and discards of a body before it answers, at most: beyond, the
/// connection is closed instead (see [`refuse`]).
const DRAIN_BYTES: u64 = 16 * MAX_BODY as u64;
const DRAIN_TIME: Duration = Duration::from_secs(10);
/// How long a body may take to arrive: a client that stalls mid-body gives its place back.
const BODY_TIME: Duration = Duration::from_secs(30);

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
    #[error(
        "{0} is not a loopback address: the ingest takes events from the network only over HTTPS \
         (--tls-cert and --tls-key) or behind a TLS-terminating proxy (--behind-tls-proxy)"
    )]
    NotLoopback(SocketAddr),
    #[error("{0}")]
    Tls(String),
    #[error("cannot listen on {addr}: {source}; stop what uses the port or choose another address")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

struct Ingest {
    store: Store,
    auth: IngestAuth,
    /// Valid events go to the group committer (one synced commit for concurrent requests).
    commits: tokio::sync::mpsc::Sender<Job>,
    /// Events counted as accepted since start (for the window's source view).
    accepted: std::sync::atomic::AtomicU64,
    /// One permit per request in flight ([`MAX_IN_FLIGHT`]).
    in_flight: Arc<Semaphore>,
    /// One permit per KiB of body in flight ([`BODY_BUDGET`]).
    body_budget: Arc<Semaphore>,
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

/// How the ingest faces the network.
pub enum Exposure {
    /// Loopback only: the desktop's own ingest, and the default.
    Loopback,
    /// Any address, HTTPS with this certificate (see `ingest::tls`).
    Tls(Arc<rustls::ServerConfig>),
    /// Any address, plain HTTP: a TLS-terminating proxy in front takes the clients.
    BehindTlsProxy,
}

pub struct IngestOptions {
    pub addr: SocketAddr,
    pub auth: IngestAuth,
    pub exposure: Exposure,
}

/// Binds `addr` (loopback only; port 0 picks one) and serves in a background task.
pub async fn start(addr: SocketAddr, store: Store, token: Secret) -> Result<RunningIngest, IngestError> {
    start_with(store, IngestOptions { addr, auth: IngestAuth::Token(token), exposure: Exposure::Loopback }).await
}

/// Binds `options.addr` and serves in a background task: a non-loopback address only with TLS
/// or behind a TLS-terminating proxy, never plain HTTP to the network by default.
pub async fn start_with(store: Store, options: IngestOptions) -> Result<RunningIngest, IngestError> {
    let IngestOptions { addr, auth, exposure } = options;
    if !addr.ip().is_loopback() && matches!(exposure, Exposure::Loopback) {
        return Err(IngestError::NotLoopback(addr));
    }
    let listener = TcpListener::bind(addr).await.map_err(|source| IngestError::Bind { addr, source })?;
    let addr = listener.local_addr().map_err(|source| IngestError::Bind { addr, source })?;
    crate::identity::load_phone_metadata_in_background();
    let commits = group_commit::start(store.clone());
    let state = Arc::new(Ingest {
        store,
        auth,
        commits,
        accepted: Default::default(),
        in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        body_budget: Arc::new(Semaphore::new(BODY_BUDGET / 1024)),
    });
    let app = Router::new()
        .route("/v1/events", post(events))
        .route("/v1/health", get(health))
        .fallback(no_such_path)
        .method_not_allowed_fallback(wrong_method)
        .with_state(state.clone());
    let (scheme, server) = match exposure {
        Exposure::Tls(config) => ("https", ServerTask::spawn(crate::serving::TlsListener::new(listener, config), app)),
        Exposure::Loopback | Exposure::BehindTlsProxy => ("http", ServerTask::spawn(listener, app)),
    };
    Ok(RunningIngest { base_url: format!("{scheme}://{addr}"), addr, state, server })
}

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": {"status": status.as_u16(), "message": message.into()}}))).into_response()
}

fn too_large() -> Response {
    problem(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the body is over {} MiB; send at most {MAX_EVENTS} events per request; nothing was accepted",
            MAX_BODY / (1024 * 1024)
        ),
    )
}

fn busy(what: &str) -> Response {
    let mut response = problem(
        StatusCode::TOO_MANY_REQUESTS,
        format!("the ingest is busy ({what}); nothing was accepted; retry after {RETRY_AFTER_SECS} s"),
    );
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    response
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// Answers a refused request once what is left of its body has been read and discarded. A
/// connection closed with unread data is reset by the kernel, and a client that writes its
/// whole body before reading (Python's `http.client`, many SDKs) then gets a broken pipe
/// instead of the answer. Draining is bounded ([`DRAIN_BYTES`], [`DRAIN_TIME`]) and keeps
/// nothing; beyond it, or when the client waits for `100 Continue` (it has sent no body), the
/// answer says `Connection: close`.
async fn refuse(body: Body, headers: &HeaderMap, mut response: Response) -> Response {
    let waits_to_send = headers.get(header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let drainable = content_length(headers).is_none_or(|n| n <= DRAIN_BYTES);
    if waits_to_send || !drainable || !drain(body).await {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Reads a body to its end without keeping it; false when it is longer or slower than allowed.
async fn drain(mut body: Body) -> bool {
    let read_all = async {
        let mut left = DRAIN_BYTES;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            let Some(data) = frame.data_ref() else { continue };
            let Some(rest) = left.checked_sub(data.len() as u64) else { return false };
            left = rest;
        }
        true
    };
    tokio::time::timeout(DRAIN_TIME, read_all).await.unwrap_or(false)
}

enum BodyRead {
    Read(Bytes),
    /// Over [`MAX_BODY`]: the rest, to drain.
    TooLarge(Body),
    Failed(String),
}

/// Reads a body of at most [`MAX_BODY`] bytes into one buffer (sized by `Content-Length`).
async fn read_body(mut body: Body, declared: Option<u64>) -> BodyRead {
    let mut first: Option<Bytes> = None;
    let mut joined: Vec<u8> = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => return BodyRead::Failed(e.to_string()),
        };
        let Ok(data) = frame.into_data() else { continue };
        total += data.len();
        if total > MAX_BODY {
            return BodyRead::TooLarge(body);
        }
        // A body in one frame is used as it is; one in several is copied once into a buffer
        // of its declared size.
        match first.take() {
            None if joined.is_empty() => first = Some(data),
            earlier => {
                if joined.is_empty() {
                    let expected = declared.map_or(0, |n| n as usize).min(MAX_BODY).max(total);
                    joined.reserve_exact(expected);
                    joined.extend_from_slice(&earlier.unwrap_or_default());
                }
                joined.extend_from_slice(&data);
            }
        }
    }
    BodyRead::Read(first.unwrap_or_else(|| Bytes::from(joined)))
}

async fn no_such_path(headers: HeaderMap, body: Body) -> Response {
    let message = "no such endpoint; the ingest API has POST /v1/events and GET /v1/health";
    refuse(body, &headers, problem(StatusCode::NOT_FOUND, message)).await
}

async fn wrong_method(headers: HeaderMap, body: Body) -> Response {
    let message = "this method is not served here; send events with POST /v1/events, check health with GET /v1/health";
    refuse(body, &headers, problem(StatusCode::METHOD_NOT_ALLOWED, message)).await
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

async fn authorised(headers: &HeaderMap, auth: &IngestAuth) -> Verdict {
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let Some(given) = given.strip_prefix("Bearer ").map(str::trim) else { return Verdict::Refused };
    auth.check(given).await
}

async fn events(
    State(ingest): State<Arc<Ingest>>,
    query: Result<Query<EventsQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // Refused at once when full, never queued: a queue of waiting bodies is what this bounds.
    let Ok(_in_flight) = ingest.in_flight.clone().try_acquire_owned() else {
        let what = format!("{MAX_IN_FLIGHT} requests are being handled");
        return refuse(body, &headers, busy(&what)).await;
    };
    match authorised(&headers, &ingest.auth).await {
        Verdict::Accepted => {}
        Verdict::Refused => {
            let message =
                "missing or wrong token: send Authorization: Bearer <the ingest token shown on the Sources page>";
            return refuse(body, &headers, problem(StatusCode::UNAUTHORIZED, message)).await;
        }
        Verdict::Unknown(why) => {
            let message = format!("the token cannot be checked now ({why}); nothing was accepted; retry in a minute");
            return refuse(body, &headers, problem(StatusCode::SERVICE_UNAVAILABLE, message)).await;
        }
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.trim().to_ascii_lowercase().starts_with("application/json") {
        let message = "send the events as Content-Type: application/json";
        return refuse(body, &headers, problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, message)).await;
    }
    let query = match query {
        Ok(Query(query)) => query,
        Err(e) => {
            let message = format!("{e}; give ?game=<id> of an existing game, or no ?game= for the current one");
            return refuse(body, &headers, problem(StatusCode::BAD_REQUEST, message)).await;
        }
    };
    let declared = content_length(&headers);
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return refuse(body, &headers, too_large()).await;
    }
    let kib = declared.map_or(MAX_BODY, |n| n as usize).div_ceil(1024).max(1);
    let Ok(_budget) = ingest.body_budget.clone().try_acquire_many_owned(kib as u32) else {
        let what = format!("{} MiB of request bodies are being read", BODY_BUDGET / (1024 * 1024));
        return refuse(body, &headers, busy(&what)).await;
    };
    let read = tokio::time::timeout(BODY_TIME, read_body(body, declared)).await;
    let bytes = match read.unwrap_or(BodyRead::Failed(format!("not complete after {} s", BODY_TIME.as_secs()))) {
        BodyRead::Read(bytes) => bytes,
        BodyRead::TooLarge(rest) => return refuse(rest, &headers, too_large()).await,
        BodyRead::Failed(e) => {
            let message = format!("the body could not be read ({e}); nothing was accepted; send it again");
            return problem(StatusCode::BAD_REQUEST, message);
        }
    };
    // Read into the events' fields directly: a JSON tree of the whole body cost more than
    // validating it.
    let body = match SentBody::from_slice(&bytes, MAX_EVENTS) {
        Ok(body) => body,
        Err(BodyError::TooManyEvents { max }) => {
            let message = format!("more than {max} events in one request; send at most {max}; nothing was accepted");
            return problem(StatusCode::PAYLOAD_TOO_LARGE, message);
        }
        Err(BodyError::Json(e)) => {
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
    let mut results: Vec<EventResult> = Vec::with_capacity(items.len());
    let mut valid: Vec<ConversionEvent> = Vec::with_capacity(items.len());
    let mut valid_index: Vec<usize> = Vec::with_capacity(items.len());
    let mut seen = std::collections::HashSet::new();
    for (index, item) in items.into_iter().enumerate() {
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
    // The events own their text now: the body is not kept while the commit is awaited.
    drop(bytes);
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
