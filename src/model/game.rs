use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::Network;

/// A game whose player events are forwarded; each game has at most one config per network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Game {
    pub id: i64,
    pub name: String,
}

/// How a config's deliveries have been going recently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Recent attempts succeed.
    Normal,
    /// Recent 401/403 answers and no success since: the credentials need attention.
    CredentialFailures,
    /// No attempt yet, or none in the last 24 hours.
    NoRecentActivity,
}

/// Whether a network is set up for a game; what the Integrations page shows per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationStatus {
    Connected,
    /// Connected, but the network refused the credentials: delivery waits for a rotation.
    Paused,
    NotConnected,
}

/// One row of Settings → Integrations: a network and the game's config for it, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ConfigSummary {
    pub game_id: i64,
    /// The saved config's id; `None` when the game has no config for this network.
    pub config_id: Option<i64>,
    pub network: Network,
    pub display_name: String,
    pub status: IntegrationStatus,
    pub enabled: bool,
    /// The pixel the config reports to; `None` when not connected.
    pub pixel: Option<String>,
    /// API base URL when it is not the real network (the built-in sandbox).
    pub base_url: Option<String>,
    pub health: Health,
    /// TikTok / Reddit: the events that are forwarded.
    pub trigger_events: Vec<String>,
    /// Why delivery is paused, when it is.
    pub paused_reason: Option<String>,
}

/// What the window needs to know about the running app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct AppInfo {
    pub version: String,
    /// Where the database lives (`POSTBACK_DATA_DIR` or the OS data directory).
    pub data_dir: String,
    /// The game the window opens on (the demo "Sandbox Game" on first start).
    pub current_game: Game,
    /// The built-in sandbox's public demo credentials, offered in the Connect forms of
    /// configs that point at the sandbox.
    pub sandbox_demo: SandboxDemo,
}

/// Public demo credentials the sandbox accepts (not secrets: they work nowhere else).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SandboxDemo {
    pub tiktok_token: String,
    pub reddit_token: String,
    pub x_consumer_key: String,
    pub x_consumer_secret: String,
    pub x_client_id: String,
}

impl SandboxDemo {
    pub fn get() -> Self {
        use crate::sandbox::{self, oauth};
        SandboxDemo {
            tiktok_token: sandbox::TIKTOK_TOKEN.into(),
            reddit_token: sandbox::REDDIT_TOKEN.into(),
            x_consumer_key: oauth::X_CONSUMER_KEY.into(),
            x_consumer_secret: oauth::X_CONSUMER_SECRET.into(),
            x_client_id: oauth::X_CLIENT_ID.into(),
        }
    }
}

/// The outcome of one delivery attempt, as the delivery log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Success,
    /// Refused for good, or given up after the last retry.
    Failed,
    /// A transient failure; another attempt is scheduled.
    Retried,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Success => "success",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Retried => "retried",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(DeliveryStatus::Success),
            "failed" => Some(DeliveryStatus::Failed),
            "retried" => Some(DeliveryStatus::Retried),
            _ => None,
        }
    }
}

/// One row of the delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct LogEntry {
    pub id: i64,
    /// Epoch milliseconds (UTC).
    pub at: i64,
    pub config_id: i64,
    pub network: Network,
    pub event_name: String,
    pub event_id: String,
    pub status: DeliveryStatus,
    pub http_status: Option<i64>,
    pub latency_ms: Option<i64>,
    pub attempt: i64,
    /// The network's request / debug id, when it gave one.
    pub request_id: Option<String>,
    pub error: Option<String>,
}
