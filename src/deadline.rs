//! Queued conversions against their network's acceptance window: how long the oldest waiting
//! one has left, and how many reach the end of the window within a day (they fail as too old
//! if they still wait then). Pure: the store gives the ages ([`QueuedAge`]).

use serde::Serialize;

use crate::model::Network;
use crate::networks::acceptance_window;
use crate::store::QueuedAge;

/// How early the card warns (and the desktop notifies) before a window closes.
pub const WARN_WITHIN_MS: i64 = 24 * 3_600_000;

/// One config's waiting conversions against its network's window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct QueueDeadline {
    pub config_id: i64,
    pub network: Network,
    /// When the network stops taking the oldest waiting conversion (epoch ms); `None` when
    /// nothing waits.
    pub first_closes_at_ms: Option<i64>,
    /// Waiting conversions whose window closes within 24 h (or has closed).
    pub closing: u64,
    /// The warning in words when some are closing.
    pub warning: Option<String>,
}

/// Waiting conversions that happened before this instant close within [`WARN_WITHIN_MS`].
pub fn cutoff(network: Network, now_ms: i64) -> i64 {
    now_ms + WARN_WITHIN_MS - acceptance_window(network).max_age.num_milliseconds()
}

/// The deadline of `config_id`'s waiting conversions from their ages (read with [`cutoff`]).
pub fn deadline(config_id: i64, network: Network, age: QueuedAge, now_ms: i64) -> QueueDeadline {
    let window = acceptance_window(network).max_age.num_milliseconds();
    let first_closes_at_ms = age.oldest_occurred_ms.map(|at| at + window);
    let warning = first_closes_at_ms.filter(|_| age.before_cutoff > 0).map(|first| {
        let name = network.display_name();
        let n = age.before_cutoff;
        let conversions =
            if n == 1 { "1 queued conversion reaches".to_owned() } else { format!("{n} queued conversions reach") };
        let left = first - now_ms;
        let when = if left <= 0 {
            "the first is past it already".to_owned()
        } else {
            format!("the first in {}", crate::freshness::words(left / 1000))
        };
        format!(
            "{conversions} {name}'s {}-day limit within 24 h ({when}): if they still wait then, they fail as too old. Get them delivered: check why they wait (offline, paused, switched off).",
            acceptance_window(network).max_age.num_days()
        )
    });
    QueueDeadline { config_id, network, first_closes_at_ms, closing: age.before_cutoff, warning }
}

/// Which configs newly have conversions closing, so a desktop notification says so once per
/// episode (again only after the config had none closing).
#[derive(Debug, Default)]
pub struct DeadlineAlerts {
    warned: std::collections::BTreeSet<i64>,
}

impl DeadlineAlerts {
    /// The deadlines to notify about now, of those just read.
    pub fn evaluate<'a>(&mut self, deadlines: &'a [QueueDeadline]) -> Vec<&'a QueueDeadline> {
        let mut fresh = Vec::new();
        for d in deadlines {
            if d.closing == 0 {
                self.warned.remove(&d.config_id);
            } else if self.warned.insert(d.config_id) {
                fresh.push(d);
            }
        }
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000_000;
    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 24 * HOUR;

    #[test]
    fn the_cutoff_is_a_day_before_the_window_ends() {
        // Reddit takes events up to 7 days old: those older than 6 days close within 24 h.
        assert_eq!(cutoff(Network::Reddit, NOW), NOW - 6 * DAY);
        assert_eq!(cutoff(Network::TikTok, NOW), NOW - 27 * DAY);
        assert_eq!(cutoff(Network::X, NOW), NOW - 29 * DAY);
    }

    #[test]
    fn closing_conversions_warn_with_the_time_left() {
        // The oldest happened 6 days 19 h ago: Reddit's window closes in 5 h.
        let age = QueuedAge { oldest_occurred_ms: Some(NOW - 6 * DAY - 19 * HOUR), before_cutoff: 3 };
        let d = deadline(4, Network::Reddit, age, NOW);
        assert_eq!(d.first_closes_at_ms, Some(NOW + 5 * HOUR));
        assert_eq!(d.closing, 3);
        let warning = d.warning.expect("a warning");
        assert!(
            warning.starts_with("3 queued conversions reach Reddit Ads's 7-day limit within 24 h (the first in 5 h)"),
            "{warning}"
        );

        let past = QueuedAge { oldest_occurred_ms: Some(NOW - 8 * DAY), before_cutoff: 1 };
        let warning = deadline(4, Network::Reddit, past, NOW).warning.expect("a warning");
        assert!(warning.starts_with("1 queued conversion reaches"), "{warning}");
        assert!(warning.contains("(the first is past it already)"), "{warning}");
    }

    #[test]
    fn nothing_closing_means_no_warning() {
        let young = QueuedAge { oldest_occurred_ms: Some(NOW - HOUR), before_cutoff: 0 };
        let d = deadline(1, Network::TikTok, young, NOW);
        assert_eq!((d.first_closes_at_ms, d.warning), (Some(NOW - HOUR + 28 * DAY), None));
        let empty = deadline(1, Network::TikTok, QueuedAge::default(), NOW);
        assert_eq!((empty.first_closes_at_ms, empty.closing, empty.warning), (None, 0, None));
    }

    #[test]
    fn a_notification_once_per_episode() {
        let closing = |config_id, closing| QueueDeadline {
            config_id,
            network: Network::TikTok,
            first_closes_at_ms: Some(NOW),
            closing,
            warning: None,
        };
        let mut alerts = DeadlineAlerts::default();
        let first = [closing(1, 2), closing(2, 0)];
        assert_eq!(alerts.evaluate(&first).iter().map(|d| d.config_id).collect::<Vec<_>>(), [1]);
        assert!(alerts.evaluate(&[closing(1, 5)]).is_empty(), "still the same episode");
        assert!(alerts.evaluate(&[closing(1, 0)]).is_empty());
        assert_eq!(alerts.evaluate(&[closing(1, 1)]).len(), 1, "a new episode after none were closing");
    }
}
