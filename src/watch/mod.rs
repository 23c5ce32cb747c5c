//! The watch side: what the delivery log means (explanations, cURL, diagnostics), its export
//! and the alerts worth a desktop notification.

pub mod alerts;
pub mod attribution;
pub mod diagnose;
pub mod explain;
pub mod export;
mod service;

pub use service::{Watch, WatchError};

/// A UTC time as people read it in logs and exports.
pub fn format_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}
