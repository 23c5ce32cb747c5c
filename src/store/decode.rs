//! What both engines make of their rows: plain column sets (`sqlx::FromRow`, decoded alike
//! from SQLite and PostgreSQL) turned into the model's types, and the rules over stored
//! settings. Only the SQL differs between the engines; this is shared, never copied.

use super::rows::{OfflineState, StoredConfig};
use super::StoreError;
use crate::model::{
    Game, Goal, Network, PostbackConfig, RedditConfig, SetupGap, TikTokConfig, TriggerRule, ValueFilter, XConfig,
};

/// The columns a game is read from.
pub(super) const GAME_COLUMNS: &str = "id, name, is_demo, default_country";

#[derive(sqlx::FromRow)]
pub(super) struct GameRow {
    id: i64,
    name: String,
    is_demo: bool,
    default_country: Option<String>,
}

impl From<GameRow> for Game {
    fn from(r: GameRow) -> Self {
        Game { id: r.id, name: r.name, demo: r.is_demo, default_country: r.default_country }
    }
}

/// The columns a goal is read from (table alias `g`); an X config's query adds `event_tag`.
pub(super) const GOAL_COLUMNS: &str = "g.key, g.name, g.event, g.active, g.rule, g.min_value, g.currency";

#[derive(sqlx::FromRow)]
pub(super) struct GoalRow {
    key: String,
    name: String,
    event: String,
    active: bool,
    rule: String,
    min_value: Option<String>,
    currency: Option<String>,
    #[sqlx(default)]
    event_tag: Option<String>,
}

impl TryFrom<GoalRow> for Goal {
    type Error = StoreError;

    fn try_from(r: GoalRow) -> Result<Self, StoreError> {
        let rule = TriggerRule::parse(&r.rule)
            .ok_or_else(|| StoreError::Corrupt(format!("goal {} has rule '{}'", r.key, r.rule)))?;
        let value_filter = match (r.min_value, r.currency) {
            (Some(min_value), Some(currency)) => Some(ValueFilter { min_value, currency }),
            _ => None,
        };
        Ok(Goal {
            rule,
            id: r.key,
            name: r.name,
            event: r.event,
            active: r.active,
            value_filter,
            event_tag: r.event_tag,
        })
    }
}

/// The columns a config is read from.
pub(super) const CONFIG_COLUMNS: &str =
    "id, game_id, network, pixel, trigger_events, base_url, enabled, credential_ref, paused_reason,
     offline_since, offline_until, offline_probes, offline_reason";

#[derive(sqlx::FromRow)]
pub(super) struct ConfigRow {
    pub(super) id: i64,
    pub(super) game_id: i64,
    network: String,
    pixel: String,
    trigger_events: String,
    base_url: Option<String>,
    enabled: bool,
    credential_ref: Option<String>,
    paused_reason: Option<String>,
    offline_since: Option<i64>,
    offline_until: Option<i64>,
    offline_probes: i64,
    offline_reason: Option<String>,
}

impl ConfigRow {
    pub(super) fn network(&self) -> Result<Network, StoreError> {
        Network::parse(&self.network)
            .ok_or_else(|| StoreError::Corrupt(format!("config {} has unknown network '{}'", self.id, self.network)))
    }

    /// The stored config; an X config's goals (with its tags) are read by the caller.
    pub(super) fn into_stored(self, x_goals: Vec<Goal>) -> Result<StoredConfig, StoreError> {
        let (id, network) = (self.id, self.network()?);
        let trigger_events = || -> Result<Vec<String>, StoreError> {
            serde_json::from_str(&self.trigger_events)
                .map_err(|e| StoreError::Corrupt(format!("config {id} trigger events: {e}")))
        };
        let (pixel, base_url) = (self.pixel.clone(), self.base_url.clone());
        let config = match network {
            Network::TikTok => PostbackConfig::TikTok(TikTokConfig {
                pixel_code: pixel,
                trigger_events: trigger_events()?,
                test_event_code: None,
                base_url,
            }),
            Network::Reddit => PostbackConfig::Reddit(RedditConfig {
                pixel_id: pixel,
                trigger_events: trigger_events()?,
                test_id: None,
                base_url,
            }),
            Network::X => PostbackConfig::X(XConfig { pixel_id: pixel, goals: x_goals, base_url }),
        };
        Ok(StoredConfig {
            id,
            game_id: self.game_id,
            enabled: self.enabled,
            credential_ref: self.credential_ref,
            paused_reason: self.paused_reason,
            offline: OfflineState {
                since: self.offline_since,
                until: self.offline_until,
                probes: self.offline_probes,
                reason: self.offline_reason,
            },
            config,
        })
    }
}

/// A config's trigger events as stored (a JSON array).
pub(super) fn trigger_json(config: &PostbackConfig) -> Result<String, StoreError> {
    serde_json::to_string(config.trigger_events()).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// What a config lacks before it can deliver anything.
pub(super) fn setup_gaps(config: &PostbackConfig) -> Vec<SetupGap> {
    match config {
        PostbackConfig::X(x) if !x.goals.iter().any(|g| g.active) => vec![SetupGap::NoGoals],
        PostbackConfig::X(x) if !x.goals.iter().any(|g| g.active && g.event_tag.is_some()) => {
            vec![SetupGap::NoMappedGoals]
        }
        PostbackConfig::X(_) => Vec::new(),
        other if other.trigger_events().is_empty() => vec![SetupGap::NoTriggerEvents],
        _ => Vec::new(),
    }
}

pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// A damaged config is listed apart with the reason (the dispatcher pauses it), not failed.
pub(super) fn broken_reason(id: i64, e: StoreError) -> Result<String, StoreError> {
    match e {
        StoreError::Corrupt(reason) => Ok(reason),
        StoreError::Sqlx(sqlx::Error::ColumnDecode { source, .. }) => {
            Ok(format!("config {id} has a damaged column: {source}"))
        }
        e => Err(e),
    }
}

/// Claimed queue rows in id order, decoded alike on both engines; a row that cannot be read
/// is named as a corrupt queued row.
pub(super) fn leased_rows<R: sqlx::Row>(rows: &[R]) -> Result<Vec<super::rows::Leased>, StoreError>
where
    for<'r> super::rows::Leased: sqlx::FromRow<'r, R>,
{
    let mut leased = rows
        .iter()
        .map(|r| {
            <super::rows::Leased as sqlx::FromRow<R>>::from_row(r)
                .map_err(|e| StoreError::Corrupt(format!("a queued row cannot be read: {e}")))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    leased.sort_by_key(|l| l.id);
    Ok(leased)
}

/// A config's health from its log's newest success, newest credential refusal and newest hour
/// with any attempt: refusals since the last success, activity within a day, or none.
pub(super) fn health(
    last_success: Option<i64>,
    last_credential: Option<i64>,
    last_hour: Option<i64>,
    now_ms: i64,
) -> crate::model::Health {
    use crate::model::Health;
    const DAY_MS: i64 = 24 * 3600 * 1000;
    // The newest attempt lies in the newest hour with any.
    let last = last_hour.map(|h| h + 3_600_000 - 1);
    match (last, last_credential) {
        (_, Some(cred)) if last_success.is_none_or(|s| s < cred) => Health::CredentialFailures,
        (Some(last), _) if last >= now_ms - DAY_MS => Health::Normal,
        _ => Health::NoRecentActivity,
    }
}

/// The chart of `[since, until)` from hourly counts `(hour, status, count)`: one bar per hour,
/// per day over more than 7 days (at most 62 days of hours' worth of bars), and the totals.
pub(crate) fn summary_of(
    since: i64,
    until: i64,
    counts: &[(i64, crate::model::DeliveryStatus, u64)],
) -> crate::model::LogSummary {
    use crate::model::{ChartBucket, DeliveryStatus, LogSummary, LogTotals};
    const HOUR_MS: i64 = 3_600_000;
    const DAY_MS: i64 = 24 * HOUR_MS;
    let bucket_ms = if until - since > 7 * DAY_MS + HOUR_MS { DAY_MS } else { HOUR_MS };
    let first = since - since.rem_euclid(bucket_ms);
    let count = usize::try_from((until - first + bucket_ms - 1) / bucket_ms).unwrap_or(0).min(24 * 62);
    let mut buckets: Vec<ChartBucket> =
        (0..count).map(|i| ChartBucket { start_ms: first + i as i64 * bucket_ms, ..ChartBucket::default() }).collect();
    let mut totals = LogTotals::default();
    for &(hour, status, n) in counts {
        totals.add(status, n);
        let Some(bucket) = usize::try_from((hour - first) / bucket_ms).ok().and_then(|i| buckets.get_mut(i)) else {
            continue;
        };
        match status {
            DeliveryStatus::Success => bucket.success += n,
            DeliveryStatus::Failed | DeliveryStatus::GivenUp => bucket.failed += n,
            DeliveryStatus::Retried => bucket.retried += n,
            DeliveryStatus::Held | DeliveryStatus::Offline => bucket.waiting += n,
        }
    }
    LogSummary { bucket_ms, buckets, success_rate: totals.success_rate(), totals }
}

#[cfg(test)]
mod tests {
    use super::summary_of;
    use crate::model::DeliveryStatus;

    const HOUR: i64 = 3_600_000;

    #[test]
    fn a_day_is_hourly_bars_and_counts_land_in_their_hour() {
        let since = 100 * 24 * HOUR + 30 * 60_000; // half past midnight
        let counts = [
            (100 * 24 * HOUR, DeliveryStatus::Success, 5),
            (100 * 24 * HOUR + 3 * HOUR, DeliveryStatus::Failed, 2),
            (100 * 24 * HOUR + 3 * HOUR, DeliveryStatus::GivenUp, 1),
            (100 * 24 * HOUR + 4 * HOUR, DeliveryStatus::Held, 4),
        ];
        let summary = summary_of(since, since + 24 * HOUR, &counts);
        assert_eq!(summary.bucket_ms, HOUR);
        assert_eq!(summary.buckets.len(), 25);
        assert_eq!(summary.buckets[0].start_ms, 100 * 24 * HOUR);
        assert_eq!(summary.buckets[0].success, 5);
        assert_eq!(summary.buckets[3].failed, 3);
        assert_eq!(summary.buckets[4].waiting, 4);
        assert_eq!((summary.totals.success, summary.totals.failed, summary.totals.given_up), (5, 2, 1));
    }

    #[test]
    fn more_than_a_week_is_daily_bars() {
        let since = 200 * 24 * HOUR + 5 * HOUR;
        let counts = [
            (200 * 24 * HOUR + 6 * HOUR, DeliveryStatus::Retried, 3),
            (201 * 24 * HOUR + HOUR, DeliveryStatus::Retried, 4),
        ];
        let summary = summary_of(since, since + 30 * 24 * HOUR, &counts);
        assert_eq!(summary.bucket_ms, 24 * HOUR);
        assert_eq!(summary.buckets.len(), 31);
        assert_eq!((summary.buckets[0].retried, summary.buckets[1].retried), (3, 4));
        assert_eq!(summary.totals.retried, 7);
    }
}
