//! The rows and changes the store takes and gives, the same on every engine.

use std::collections::{BTreeMap, HashSet};

use crate::model::{ConversionEvent, DeliveryStatus, Network, PostbackConfig};

/// How long a (config, event id, goal) is remembered for dedup.
pub const DEDUP_WINDOW_MS: i64 = 48 * 3600 * 1000;

/// One conversion to queue: an event for a config (and, for X, one of its goals).
#[derive(Debug, Clone, Copy)]
pub struct NewDelivery<'a> {
    pub config_id: i64,
    /// The X goal this conversion reports; `""` for TikTok and Reddit.
    pub goal_key: &'a str,
    /// The goal counts a player once: queued only if the player has not converted for it yet.
    pub once_per_player: bool,
    pub event: &'a ConversionEvent,
    /// The event as JSON, when the caller serialised it already (once for all its conversions).
    pub payload: Option<&'a str>,
}

impl<'a> NewDelivery<'a> {
    pub fn new(config_id: i64, event: &'a ConversionEvent) -> Self {
        Self { config_id, goal_key: "", once_per_player: false, event, payload: None }
    }

    pub fn with_payload(self, payload: &'a str) -> Self {
        Self { payload: Some(payload), ..self }
    }

    pub fn for_goal(self, goal_key: &'a str, once_per_player: bool) -> Self {
        Self { goal_key, once_per_player, ..self }
    }
}

/// What `enqueue` did with the offered conversions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnqueueReport {
    pub enqueued: u64,
    /// Same (config, event id, goal) already queued, or delivered within 48 h.
    pub duplicates: u64,
    /// Once-per-player goals the player had already converted for: not queued.
    pub already_converted: u64,
    /// The events of those conversions (another event of the player converted first).
    pub converted_before: HashSet<String>,
    /// Conversions queued per config.
    pub per_config: BTreeMap<i64, u64>,
    /// Event ids with at least one conversion queued by this call.
    pub queued_events: HashSet<String>,
}

/// How a delivering worker is named in `workspace status`: its computer and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerLabel {
    pub host: String,
    pub version: String,
}

/// A claimed queue row (decoded alike from both engines' rows: `decode::leased_rows`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Leased {
    pub id: i64,
    pub event_id: String,
    pub goal_key: String,
    pub event_name: String,
    pub player_id: String,
    pub payload: String,
    /// Sends of this row that got an HTTP answer, before this one.
    pub attempts: i64,
    /// Event time, epoch ms.
    pub occurred_at: i64,
    /// First failed answer of the current run of failures; the give-up budget counts from it.
    pub failing_since: Option<i64>,
}

/// One attempt to record in the delivery log. `player_id` is raw here and keyed on write.
#[derive(Debug, Clone)]
pub struct NewLogEntry {
    pub at: i64,
    pub config_id: i64,
    pub network: Network,
    pub event_name: String,
    pub event_id: String,
    pub goal_key: String,
    pub player_id: String,
    pub status: DeliveryStatus,
    pub http_status: Option<u16>,
    pub latency_ms: Option<i64>,
    pub attempt: i64,
    pub request_id: Option<String>,
    pub credential_failure: bool,
    pub error: Option<String>,
    /// The settlement's request (index into `Settlement::requests`) this attempt was part of.
    pub request: Option<usize>,
    /// This conversion's (first) item in that request's body.
    pub item_index: Option<i64>,
}

/// A transient failure with an answer: attempts + 1, back at `run_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Retry {
    pub id: i64,
    pub run_at: i64,
    pub failing_since: i64,
}

/// Everything one claimed batch changes, applied atomically, and only to rows `lease_token`
/// still holds (another dispatcher may have re-claimed an expired lease).
#[derive(Debug, Default)]
pub struct Settlement {
    pub lease_token: String,
    /// When the outcomes were decided.
    pub at: i64,
    /// Delivered: kept 48 h as 'done' (payload and player cleared) to remember the event id.
    pub done: Vec<i64>,
    /// Dropped for good without a log row (erased player): deleted.
    pub remove: Vec<i64>,
    pub retry: Vec<Retry>,
    /// Not attempted, or held (paused config, no answer): back to the queue unchanged.
    pub release: Vec<i64>,
    /// Not attempted (credentials unreadable for now): back at `run_at`, attempts unchanged.
    pub defer: Vec<(i64, i64)>,
    /// Refused or given up after an answer: 'dead' for replay, attempts + 1.
    pub dead: Vec<i64>,
    /// Failed without being sent (too old, unreadable): 'dead', attempts unchanged.
    pub dead_unsent: Vec<i64>,
    pub log: Vec<NewLogEntry>,
    /// What was sent and answered, referenced by the log rows.
    pub requests: Vec<RequestRecord>,
    /// Pause the config (credential failure).
    pub pause: Option<Pause>,
    /// The config's network went away or came back.
    pub offline: Option<Offline>,
    /// Hourly counts written with the log (freshness of the delivered, the expired).
    pub traffic: Vec<TrafficCount>,
}

/// A config to pause because the network refused the credential it was sent with.
#[derive(Debug)]
pub struct Pause {
    pub config_id: i64,
    /// The credential the refused request used: a config rotated meanwhile is not paused.
    pub credential_ref: Option<String>,
    pub reason: String,
}

/// A change of a config's connectivity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offline {
    /// No answer: wait until `until` before probing again.
    Down { config_id: i64, since: i64, until: i64, probes: i64, reason: String },
    /// An answer came: the network is reachable.
    Up { config_id: i64 },
}

/// What settling did: `lost` rows were no longer held by the lease token and stayed untouched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SettleReport {
    pub lost: u64,
}

/// Which dead rows to put back.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    pub config_id: i64,
    /// Only rows that failed or were given up at or after this time.
    pub since_ms: Option<i64>,
    /// Only these event ids (all of a config's dead rows when empty).
    pub event_ids: Vec<String>,
}

/// Why a replay of named events was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayRefusal {
    #[error("event {0} was delivered; the network already has it, so it is not sent again")]
    Delivered(String),
    #[error("event {0} is still queued; it will be delivered without a replay")]
    Pending(String),
    #[error("event {0} is not in this config's queue (unknown, or older than the 48 h dedup memory)")]
    Unknown(String),
}

/// Why a named event cannot be replayed, from its queue rows' states and whether the log
/// shows it delivered; `None`: it failed and may be replayed.
pub(crate) fn replay_refusal(event_id: &str, states: &[String], delivered_earlier: bool) -> Option<ReplayRefusal> {
    if states.iter().any(|s| s == "dead") {
        None
    } else if states.iter().any(|s| s == "done") || delivered_earlier {
        Some(ReplayRefusal::Delivered(event_id.to_owned()))
    } else if states.iter().any(|s| s == "ready") {
        Some(ReplayRefusal::Pending(event_id.to_owned()))
    } else {
        Some(ReplayRefusal::Unknown(event_id.to_owned()))
    }
}

/// A config as saved: the settings plus what the store knows about it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredConfig {
    pub id: i64,
    pub game_id: i64,
    pub enabled: bool,
    /// The keychain entry holding the credential (never the credential itself).
    pub credential_ref: Option<String>,
    /// Why delivery is paused (the network refused the credentials), if it is.
    pub paused_reason: Option<String>,
    /// Whether the network answered lately.
    pub offline: OfflineState,
    pub config: PostbackConfig,
}

/// A config whose network gave no answer: since when, when to probe next, why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfflineState {
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub probes: i64,
    pub reason: Option<String>,
}

/// The configs the dispatcher works on, and those whose stored settings cannot be read (each
/// with the reason; the dispatcher pauses them and goes on with the others).
#[derive(Debug, Default)]
pub struct ConfigLoad {
    pub configs: Vec<StoredConfig>,
    pub broken: Vec<(i64, String)>,
}

/// One request as it went out, and its answer.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub at: i64,
    pub config_id: i64,
    pub network: Network,
    /// Per item of the body, in order, the player it belongs to (so that an erasure finds it).
    pub item_players: Vec<String>,
    pub url: String,
    /// Credential headers redacted.
    pub headers: serde_json::Map<String, serde_json::Value>,
    /// The body exactly as sent.
    pub body: bytes::Bytes,
    pub response_status: Option<u16>,
    pub response_headers: BTreeMap<String, String>,
    pub response_body: Option<String>,
}

/// A stored request read back for the drill-down.
#[derive(Debug, Clone)]
pub struct StoredRequest {
    pub id: i64,
    pub url: String,
    pub headers: serde_json::Map<String, serde_json::Value>,
    pub body: serde_json::Value,
    pub response_status: Option<u16>,
    pub response_headers: BTreeMap<String, String>,
    pub response_body: Option<String>,
}

/// One counter to add to an hour.
/// A config's waiting conversions by age: the oldest one's event time and how many happened
/// before a cutoff.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueuedAge {
    pub oldest_occurred_ms: Option<i64>,
    pub before_cutoff: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficCount {
    pub game_id: i64,
    /// `import`, `ingest`, `demo`.
    pub source: String,
    /// 0 for the game as a whole (`arrived`).
    pub config_id: i64,
    /// `arrived`, `queued`, `skipped:<reason>`; `match:…` (crate::quality) at enqueue;
    /// `fresh:…`, `expired:…` (crate::freshness) at settle.
    pub kind: String,
    pub count: u64,
}
