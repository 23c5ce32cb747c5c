//! The watch side's operations the window and the CLI share.

use crate::model::{ApiError, LogDetail, LogFilter, LogTotals, NetworkAnswer, SentRequest};
use crate::store::{Store, StoreError};

use super::diagnose::{self, DiagnosticItem};
use super::explain;

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no delivery log row {0}; it may have been pruned (30 days) or its config deleted")]
    NoRow(i64),
    #[error("{0}")]
    Input(String),
}

impl From<WatchError> for ApiError {
    fn from(e: WatchError) -> Self {
        match e {
            WatchError::Store(e) => e.into(),
            WatchError::NoRow(_) => ApiError::new("not_found", e.to_string()),
            WatchError::Input(m) => ApiError::new("invalid_input", m),
        }
    }
}

const ALERT_THRESHOLD: &str = "alert_success_rate";
const DEFAULT_THRESHOLD: f64 = 0.9;

pub struct Watch {
    store: Store,
}

impl Watch {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// A row's drill-down: what was sent (credentials redacted), the answer, the batch, the
    /// reason in plain words and what to do, and a cURL of the request.
    pub async fn detail(&self, log_id: i64) -> Result<LogDetail, WatchError> {
        let (entry, request_ref, item_index) = self.store.log_entry(log_id).await?.ok_or(WatchError::NoRow(log_id))?;
        let stored = match request_ref {
            Some(id) => self.store.stored_request(id).await?,
            None => None,
        };
        let batch = match request_ref {
            Some(id) => self.store.log_batch(id).await?,
            None => Vec::new(),
        };
        let request = stored.as_ref().map(|r| SentRequest {
            method: "POST".into(),
            url: r.url.clone(),
            headers: r.headers.clone(),
            body: r.body.clone(),
        });
        let answer = stored.as_ref().filter(|r| r.response_status.is_some()).map(|r| NetworkAnswer {
            status: r.response_status,
            headers: r.response_headers.clone(),
            body: r.response_body.clone(),
        });
        let explanation = explain::explain(&entry, answer.as_ref());
        let curl = request.as_ref().map(explain::curl);
        Ok(LogDetail { entry, request, answer, batch, item_index, explanation, curl })
    }

    /// One config's diagnostics over a range of the log filter (`since`/`until`).
    pub async fn diagnostics(
        &self,
        config_id: i64,
        filter: &LogFilter,
        now_ms: i64,
    ) -> Result<Vec<DiagnosticItem>, WatchError> {
        let stored = self.store.config(config_id).await?;
        let summaries = self.store.integrations(stored.game_id).await?;
        let summary = summaries
            .iter()
            .find(|s| s.config_id == Some(config_id))
            .ok_or_else(|| WatchError::Input(format!("config {config_id} is not part of its game any more")))?;
        let since = filter.since_ms.unwrap_or(now_ms - 24 * 3_600_000);
        let until = filter.until_ms.unwrap_or(now_ms + 1);
        let traffic = self.store.traffic(stored.game_id, since, until).await?;
        let range = LogFilter {
            config_id: Some(config_id),
            since_ms: Some(since),
            until_ms: Some(until),
            ..LogFilter::default()
        };
        let totals = self.store.log_summary(&range, now_ms).await?.totals;
        let last_success_ms = self.store.last_success(config_id).await?;
        let hours = (until - since) / 3_600_000;
        let words = match hours {
            h if h <= 1 => "the last hour".to_owned(),
            h if h <= 24 => format!("the last {h} hours"),
            h => format!("the last {} days", h / 24),
        };
        Ok(diagnose::diagnose(&diagnose::Facts {
            summary,
            traffic: &traffic,
            totals: &totals,
            last_success_ms,
            range: &words,
        }))
    }

    /// Match quality of each of a game's configs over `[since, until)`, from the queued
    /// conversions' hourly match-key counts (never the log itself).
    pub async fn quality(
        &self,
        game_id: i64,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<crate::quality::ConfigQuality>, WatchError> {
        let configs: Vec<(i64, crate::model::Network)> =
            self.store.configs(game_id).await?.iter().map(|c| (c.id, c.config.network())).collect();
        let traffic = self.store.traffic_family(game_id, crate::quality::COUNT_PREFIX, since_ms, until_ms).await?;
        let counts = traffic.iter().map(|(config, kind, count)| (*config, kind.as_str(), *count));
        Ok(crate::quality::from_counts(counts, &configs))
    }

    /// Freshness of each of a game's configs over `[since, until)`: delays from event to
    /// acceptance (p50, p95) and the conversions that went too old, from hourly counts.
    pub async fn freshness(
        &self,
        game_id: i64,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<crate::freshness::Freshness>, WatchError> {
        let configs: Vec<i64> = self.store.configs(game_id).await?.iter().map(|c| c.id).collect();
        let mut traffic = Vec::new();
        for family in [crate::freshness::FRESH, crate::freshness::EXPIRED] {
            traffic.extend(self.store.traffic_family(game_id, family, since_ms, until_ms).await?);
        }
        let counts = traffic.iter().map(|(config, kind, count)| (*config, kind.as_str(), *count));
        Ok(crate::freshness::from_counts(counts, &configs))
    }

    /// Each of a game's configs' waiting conversions against the network's acceptance window:
    /// when the oldest closes, how many close within 24 h, and the warning. Index reads only.
    pub async fn deadlines(
        &self,
        game_id: i64,
        now_ms: i64,
    ) -> Result<Vec<crate::deadline::QueueDeadline>, WatchError> {
        let mut deadlines = Vec::new();
        for stored in self.store.configs(game_id).await? {
            let network = stored.config.network();
            let age = self.store.queued_age(stored.id, crate::deadline::cutoff(network, now_ms)).await?;
            deadlines.push(crate::deadline::deadline(stored.id, network, age, now_ms));
        }
        Ok(deadlines)
    }

    /// Attempts of the last hour of one config (alerts).
    pub async fn last_hour(&self, config_id: i64, now_ms: i64) -> Result<LogTotals, WatchError> {
        let filter =
            LogFilter { config_id: Some(config_id), since_ms: Some(now_ms - 3_600_000), ..LogFilter::default() };
        Ok(self.store.log_summary(&filter, now_ms).await?.totals)
    }

    /// The success rate (0–1) below which the window notifies.
    pub async fn alert_threshold(&self) -> Result<f64, WatchError> {
        Ok(self.store.meta(ALERT_THRESHOLD).await?.and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_THRESHOLD))
    }

    pub async fn set_alert_threshold(&self, threshold: f64) -> Result<f64, WatchError> {
        if !(0.0..=1.0).contains(&threshold) {
            return Err(WatchError::Input("the threshold is a share between 0 and 1 (e.g. 0.9 for 90 %)".into()));
        }
        self.store.set_meta(ALERT_THRESHOLD, &threshold.to_string()).await?;
        Ok(threshold)
    }
}
