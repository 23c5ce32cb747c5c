//! When a desktop notification is worth it (pure): a config that starts failing on credentials,
//! or the last hour's success rate falling below the user's threshold — each once, not per row.

use std::collections::HashMap;

use crate::model::{Health, LogTotals};

/// What the last evaluation saw, per config.
#[derive(Debug, Clone, Default)]
pub struct AlertState {
    credential: HashMap<i64, bool>,
    /// Epoch ms of the last low-success-rate alert per config.
    low_rate_at: HashMap<i64, i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Alert {
    CredentialFailures { config_id: i64 },
    LowSuccessRate { config_id: i64, rate: f64, threshold: f64 },
}

/// Fewer ended attempts than this in the hour say nothing about a rate.
const MIN_ATTEMPTS: u64 = 10;
const HOUR_MS: i64 = 3_600_000;

impl AlertState {
    /// One config's news since the last look: `health` now, the last hour's totals, the
    /// threshold (0.0–1.0).
    pub fn evaluate(
        &mut self,
        config_id: i64,
        health: Health,
        last_hour: &LogTotals,
        threshold: f64,
        now_ms: i64,
    ) -> Vec<Alert> {
        let mut alerts = Vec::new();
        let failing = health == Health::CredentialFailures;
        let was = self.credential.insert(config_id, failing).unwrap_or(false);
        if failing && !was {
            alerts.push(Alert::CredentialFailures { config_id });
        }
        let ended = last_hour.success + last_hour.failed + last_hour.given_up;
        if let Some(rate) = last_hour.success_rate().filter(|r| ended >= MIN_ATTEMPTS && *r < threshold) {
            let recent = self.low_rate_at.get(&config_id).is_some_and(|at| now_ms - at < HOUR_MS);
            if !recent {
                self.low_rate_at.insert(config_id, now_ms);
                alerts.push(Alert::LowSuccessRate { config_id, rate, threshold });
            }
        }
        alerts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(success: u64, failed: u64) -> LogTotals {
        LogTotals { success, failed, ..LogTotals::default() }
    }

    #[test]
    fn each_alert_fires_once() {
        let mut state = AlertState::default();
        let ok = totals(100, 0);
        assert!(state.evaluate(1, Health::Normal, &ok, 0.9, 0).is_empty());
        assert_eq!(
            state.evaluate(1, Health::CredentialFailures, &ok, 0.9, 1),
            [Alert::CredentialFailures { config_id: 1 }]
        );
        assert!(state.evaluate(1, Health::CredentialFailures, &ok, 0.9, 2).is_empty(), "not again while it lasts");
        assert!(state.evaluate(1, Health::Normal, &ok, 0.9, 3).is_empty());
        assert_eq!(state.evaluate(1, Health::CredentialFailures, &ok, 0.9, 4).len(), 1, "again after it recovered");

        let bad = totals(50, 50);
        assert!(
            matches!(state.evaluate(2, Health::Normal, &bad, 0.9, 0)[..], [Alert::LowSuccessRate { rate, .. }] if rate == 0.5)
        );
        assert!(state.evaluate(2, Health::Normal, &bad, 0.9, 1_000).is_empty(), "once an hour");
        assert_eq!(state.evaluate(2, Health::Normal, &bad, 0.9, HOUR_MS + 1).len(), 1);
        assert!(state.evaluate(3, Health::Normal, &totals(1, 5), 0.9, 0).is_empty(), "too few attempts to judge");
    }
}
