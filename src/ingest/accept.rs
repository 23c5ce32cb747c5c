//! The one path every source takes into the queue: erasure check, routing (trigger events,
//! goals and their rules), consent and identifiers, a durable enqueue, and the per-hour
//! traffic counts behind "why was nothing sent?".

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::model::{ConversionEvent, PostbackConfig, TriggerRule};
use crate::networks;
use crate::store::{NewDelivery, Store, StoreError, StoredConfig, TrafficCount};

/// Where events came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A file (NDJSON or CSV), from the window or `postback import`.
    Import,
    /// The loopback REST ingest API.
    Ingest,
    /// The demo generator.
    Demo,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Import => "import",
            Source::Ingest => "ingest",
            Source::Demo => "demo",
        }
    }
}

/// What happened to a set of events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    pub events: u64,
    /// Conversions queued (an X event may be several).
    pub enqueued: u64,
    /// Conversions already queued or delivered within 48 h.
    pub duplicates: u64,
    /// Deliveries not queued, per reason (`no_identifier`, `consent_none`, …).
    pub skipped: BTreeMap<String, u64>,
    /// Events with at least one conversion queued now.
    pub queued_events: HashSet<String>,
    /// Events that some config wanted (queued now, or duplicates).
    pub routed_events: HashSet<String>,
    /// Per event id, why each config that did not want it said no.
    pub skip_reasons: HashMap<String, Vec<String>>,
}

/// Whether an X goal counts a player only once.
fn once_per_player(config: &PostbackConfig, goal_key: &str) -> bool {
    match config {
        PostbackConfig::X(x) => x.goals.iter().any(|g| g.id == goal_key && g.rule == TriggerRule::OncePerPlayer),
        _ => false,
    }
}

/// Routes and enqueues events of one game for its enabled `configs`.
pub async fn accept(
    store: &Store,
    game_id: i64,
    configs: &[StoredConfig],
    events: &[ConversionEvent],
    source: Source,
    now_ms: i64,
) -> Result<Accepted, StoreError> {
    let mut out = Accepted { events: events.len() as u64, ..Accepted::default() };
    if events.is_empty() {
        return Ok(out);
    }
    let players: Vec<&str> = events.iter().map(|e| e.player_id.as_str()).collect();
    let erased = store.erased_among(&players).await?;
    // Prepared once here to route and check consent and identifiers; X yields one conversion
    // per counting goal, each queued (and later settled) on its own.
    let mut routed: Vec<(&StoredConfig, &ConversionEvent, Vec<String>)> =
        Vec::with_capacity(events.len() * configs.len());
    let mut skipped_per_config: BTreeMap<(i64, &'static str), u64> = BTreeMap::new();
    for event in events {
        let mut identities = networks::IdentityCache::default();
        for stored in configs {
            match networks::admit(&stored.config, event, erased.contains(&event.player_id), &mut identities) {
                Ok(goals) => {
                    out.routed_events.insert(event.event_id.clone());
                    routed.push((stored, event, goals));
                }
                Err(skip) => {
                    *out.skipped.entry(skip.reason.as_str().to_owned()).or_default() += 1;
                    *skipped_per_config.entry((stored.id, skip.reason.as_str())).or_default() += 1;
                    out.skip_reasons.entry(event.event_id.clone()).or_default().push(format!(
                        "{}: {}",
                        stored.config.network().display_name(),
                        skip.message
                    ));
                }
            }
        }
    }
    let wanted: Vec<NewDelivery> = routed
        .iter()
        .flat_map(|(stored, event, keys)| {
            keys.iter().map(move |goal_key| {
                NewDelivery::new(stored.id, event).for_goal(goal_key, once_per_player(&stored.config, goal_key))
            })
        })
        .collect();
    // The traffic counters are written in the enqueue's own transaction: one synced commit.
    let source = source.as_str();
    let arrived = events.len() as u64;
    let queued = store
        .enqueue_counted(&wanted, now_ms, |queued| {
            let count = |config_id: i64, kind: String, count: u64| TrafficCount {
                game_id,
                source: source.to_owned(),
                config_id,
                kind,
                count,
            };
            let mut counts = vec![count(0, "arrived".into(), arrived)];
            counts.extend(queued.per_config.iter().map(|(config_id, n)| count(*config_id, "queued".into(), *n)));
            counts.extend(
                skipped_per_config
                    .iter()
                    .map(|((config_id, reason), n)| count(*config_id, format!("skipped:{reason}"), *n)),
            );
            counts
        })
        .await?;
    out.enqueued = queued.enqueued;
    out.duplicates = queued.duplicates;
    out.queued_events = queued.queued_events;
    if queued.already_converted > 0 {
        *out.skipped.entry("already_converted".to_owned()).or_default() += queued.already_converted;
    }
    // An event whose player had already converted for its goal is accepted and not forwarded
    // for that reason, never a "duplicate" (its event id is new).
    for event_id in queued.converted_before {
        if !out.queued_events.contains(&event_id) {
            out.routed_events.remove(&event_id);
            out.skip_reasons
                .entry(event_id)
                .or_default()
                .push("X Ads: the player already converted for this once-per-player goal".to_owned());
        }
    }
    Ok(out)
}
