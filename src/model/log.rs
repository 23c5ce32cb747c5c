//! The delivery log as the window and the CLI read it: filters, rows, chart buckets, detail.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::{DeliveryStatus, Network};

/// Which log rows to show; pages go newest first, continuing `before` (at, id). Lives in the
/// URL hash of the log page, so a view can be reopened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct LogFilter {
    /// Only this game's configs.
    pub game_id: Option<i64>,
    pub config_id: Option<i64>,
    /// Any of these statuses; all when empty.
    pub statuses: Vec<DeliveryStatus>,
    /// Epoch ms, inclusive.
    pub since_ms: Option<i64>,
    /// Epoch ms, exclusive.
    pub until_ms: Option<i64>,
    /// Exactly this event id (the QA question "did my event go out?").
    pub event_id: Option<String>,
    /// Keyset cursor: the (at, id) of the last row of the previous page.
    pub before: Option<(i64, i64)>,
    pub limit: u32,
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
    /// X: the Conversion Goal this conversion reported; empty for TikTok and Reddit.
    pub goal_key: String,
    pub status: DeliveryStatus,
    pub http_status: Option<i64>,
    pub latency_ms: Option<i64>,
    pub attempt: i64,
    /// The network's request / debug id, when it gave one.
    pub request_id: Option<String>,
    pub error: Option<String>,
}

/// Attempts of one chart bar (an hour, or a day over 30 days).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ChartBucket {
    pub start_ms: i64,
    pub success: u64,
    /// Failed and given up.
    pub failed: u64,
    pub retried: u64,
    /// Held for credentials or waiting for the network.
    pub waiting: u64,
}

/// Totals of a time range per status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct LogTotals {
    pub success: u64,
    pub failed: u64,
    pub retried: u64,
    pub held: u64,
    pub offline: u64,
    pub given_up: u64,
}

impl LogTotals {
    pub fn add(&mut self, status: DeliveryStatus, n: u64) {
        match status {
            DeliveryStatus::Success => self.success += n,
            DeliveryStatus::Failed => self.failed += n,
            DeliveryStatus::Retried => self.retried += n,
            DeliveryStatus::Held => self.held += n,
            DeliveryStatus::Offline => self.offline += n,
            DeliveryStatus::GivenUp => self.given_up += n,
        }
    }

    /// Successes among the attempts that ended (success, failed, given up); `None` when none did.
    pub fn success_rate(&self) -> Option<f64> {
        let ended = self.success + self.failed + self.given_up;
        (ended > 0).then(|| self.success as f64 / ended as f64)
    }
}

/// The chart above the table and the totals beside it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct LogSummary {
    /// Bar width: an hour, or a day for ranges over 7 days.
    pub bucket_ms: i64,
    pub buckets: Vec<ChartBucket>,
    pub totals: LogTotals,
    pub success_rate: Option<f64>,
}

/// What the network was sent, credentials redacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct SentRequest {
    pub method: String,
    pub url: String,
    #[ts(type = "Record<string, string>")]
    pub headers: serde_json::Map<String, serde_json::Value>,
    #[ts(type = "unknown")]
    pub body: serde_json::Value,
}

/// What the network answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct NetworkAnswer {
    pub status: Option<u16>,
    pub headers: std::collections::BTreeMap<String, String>,
    pub body: Option<String>,
}

/// Another conversion of the same request, and how it fared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct BatchItem {
    pub log_id: i64,
    pub event_id: String,
    pub goal_key: String,
    pub status: DeliveryStatus,
    pub error: Option<String>,
}

/// The reason of an outcome in plain words, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Explanation {
    pub summary: String,
    pub action: Option<String>,
    /// The request field the network named, when it named one.
    pub field: Option<String>,
}

/// A log row's drill-down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct LogDetail {
    pub entry: LogEntry,
    pub request: Option<SentRequest>,
    pub answer: Option<NetworkAnswer>,
    /// The conversions sent in the same request (this one included).
    pub batch: Vec<BatchItem>,
    /// This conversion's item in the request body.
    pub item_index: Option<i64>,
    pub explanation: Explanation,
    /// The request as a cURL command, credentials redacted.
    pub curl: Option<String>,
}
