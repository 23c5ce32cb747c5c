//! What delivery keeps and for how long: log rows for `DispatcherOptions::retention` (30 days),
//! and failed events' data (payload, player) for replay until the longest network acceptance
//! window has passed, or as long as the user set. Both are pruned hourly by the dispatcher.

use std::time::Duration;

use crate::store::{Store, StoreError};

/// How long failed and given-up events are kept for replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
pub struct FailedRetention {
    /// In days.
    pub days: u32,
    /// Whether this is the default (the longest network acceptance window).
    pub is_default: bool,
}

const DAY_MS: i64 = 24 * 3600 * 1000;

/// The longest a failed event may be kept (a year).
pub const MAX_FAILED_RETENTION_DAYS: u32 = 365;

pub fn default_failed_retention_days() -> u32 {
    (crate::networks::longest_acceptance_window().as_secs() / 86_400) as u32
}

pub async fn failed_retention(store: &Store) -> Result<FailedRetention, StoreError> {
    Ok(match store.failed_retention_ms().await? {
        Some(ms) => FailedRetention { days: u32::try_from(ms / DAY_MS).unwrap_or(u32::MAX), is_default: false },
        None => FailedRetention { days: default_failed_retention_days(), is_default: true },
    })
}

/// Sets how long failed events are kept (`None`: the default). Refuses 0 or more than a year.
pub async fn set_failed_retention(store: &Store, days: Option<u32>) -> Result<FailedRetention, SetRetentionError> {
    if let Some(days) = days {
        if days == 0 || days > MAX_FAILED_RETENTION_DAYS {
            return Err(SetRetentionError::OutOfRange(days));
        }
    }
    store.set_failed_retention_ms(days.map(|d| i64::from(d) * DAY_MS)).await?;
    Ok(failed_retention(store).await?)
}

#[derive(Debug, thiserror::Error)]
pub enum SetRetentionError {
    #[error(
        "failed events are kept 1 to {MAX_FAILED_RETENTION_DAYS} days, not {0}; choose a number of days in that range"
    )]
    OutOfRange(u32),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The hourly prune: old log rows, then failed events past their retention.
pub async fn prune(store: &Store, now_ms: i64, log_retention: Duration) -> Result<(), StoreError> {
    let log_ms = i64::try_from(log_retention.as_millis()).unwrap_or(i64::MAX);
    store.prune(now_ms, log_ms).await?;
    let kept = failed_retention(store).await?;
    let purged = store.purge_failed(now_ms - i64::from(kept.days) * DAY_MS).await?;
    if purged > 0 {
        tracing::info!(purged, days = kept.days, "purged failed events past their retention");
    }
    Ok(())
}
