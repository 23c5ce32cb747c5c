use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::Network;

/// A game whose player events are forwarded; each game has at most one config per network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Game {
    pub id: i64,
    pub name: String,
    /// The built-in demo game on the sandbox: it stays available (cannot be deleted).
    pub demo: bool,
    /// ISO 3166-1 alpha-2 code (`US`) of the country that phone numbers written without a
    /// country code (`+` or `00`) are read in; `None`: such numbers are not sent.
    #[serde(default)]
    pub default_country: Option<String>,
}

/// What deleting a game removes, for its confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct GameUsage {
    pub game: Game,
    pub configs: u64,
    pub goals: u64,
    /// Conversions not delivered yet (waiting, or failed and kept for replay).
    pub queued: u64,
    pub log_rows: u64,
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
    /// Set while the network gives no answer (epoch ms of the first unanswered send): the
    /// config shows "Offline — waiting for the network" and probes with backoff.
    pub offline_since: Option<i64>,
    /// What the last unanswered send ran into (connection refused, DNS, timeout).
    pub offline_reason: Option<String>,
    /// Conversions waiting to be delivered (a disconnect would discard them).
    pub pending: u64,
    /// What is missing before this config can deliver anything, each with a one-click fix in
    /// the window.
    pub gaps: Vec<SetupGap>,
    /// X: active goals without an event tag (not sent to X).
    pub unmapped_goals: Vec<String>,
    /// A team workspace: the worker that delivers this config (`None` on a local workspace).
    #[serde(default)]
    pub worker: Option<WorkerHold>,
}

/// Which of a team's workers delivers a config, as its card shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct WorkerHold {
    /// The worker's host (and pid); `None` when no worker has taken the config yet.
    pub host: Option<String>,
    /// Since when that worker holds it (epoch ms).
    pub since_ms: Option<i64>,
    /// Whether it delivers it now.
    pub live: bool,
    /// A health warning: no worker has delivered this config for over a minute.
    pub unattended: bool,
}

/// Something a config lacks before it can deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum SetupGap {
    /// TikTok / Reddit forward no event.
    NoTriggerEvents,
    /// The game has no active goal (X sends goals).
    NoGoals,
    /// No active goal has an X event tag.
    NoMappedGoals,
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
    /// Which workspace is open.
    pub workspace: WorkspaceView,
}

/// The workspace the window shows: the local one (this computer's SQLite file) or a team
/// workspace (a shared PostgreSQL database its workers deliver from).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct WorkspaceView {
    /// `None`: the local workspace.
    pub team_id: Option<String>,
    pub name: String,
    /// Where its data is, without credentials ("postback on db.studio.lan").
    pub place: String,
    /// Why the workspace asked for could not be opened (this one was opened instead).
    pub problem: Option<String>,
}

impl WorkspaceView {
    pub fn local() -> Self {
        Self { team_id: None, name: "Local workspace".into(), place: "this computer".into(), problem: None }
    }

    pub fn team(id: &str, name: &str, place: &str) -> Self {
        Self { team_id: Some(id.to_owned()), name: name.to_owned(), place: place.to_owned(), problem: None }
    }
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Success,
    /// Refused for good (the payload, or too old for the network); not retried.
    Failed,
    /// A transient failure with an answer (5xx, 429); another attempt is scheduled.
    Retried,
    /// The network refused the credentials (401/403): the event waits for a rotation.
    Held,
    /// No answer at all (offline, DNS, timeout): the event waits for the network, attempts
    /// not spent.
    Offline,
    /// Transient failures went on past the give-up budget (24 h by default): kept for replay.
    GivenUp,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 6] = [
        DeliveryStatus::Success,
        DeliveryStatus::Failed,
        DeliveryStatus::Retried,
        DeliveryStatus::Held,
        DeliveryStatus::Offline,
        DeliveryStatus::GivenUp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Success => "success",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Retried => "retried",
            DeliveryStatus::Held => "held",
            DeliveryStatus::Offline => "offline",
            DeliveryStatus::GivenUp => "given_up",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s.trim())
    }
}
