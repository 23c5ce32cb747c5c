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
    NotConnected,
}

/// One row of Settings → Integrations: a network and the game's config for it, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ConfigSummary {
    pub game_id: i64,
    pub network: Network,
    pub display_name: String,
    pub status: IntegrationStatus,
    pub enabled: bool,
    /// The pixel the config reports to; `None` when not connected.
    pub pixel: Option<String>,
    /// API base URL when it is not the real network (the built-in sandbox).
    pub base_url: Option<String>,
    pub health: Health,
}
