//! The one path every source takes into the queue: erasure check, routing (trigger events,
//! goals and their rules), consent and identifiers, a durable enqueue, and the per-hour
//! traffic counts behind "why was nothing sent?".

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::identity::{self, PhoneCountry};
use crate::model::{ConversionEvent, PostbackConfig, TriggerRule};
use crate::networks;
use crate::quality::{self, KeySet};
use crate::store::{EnqueueReport, NewDelivery, Store, StoreError, StoredConfig, TrafficCount};

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

/// One conversion routing decided on: an event (its index) for a config and goal.
#[derive(Debug, PartialEq, Eq)]
struct Conversion {
    event: usize,
    config_id: i64,
    goal_key: String,
    /// The goal counts a player once.
    once: bool,
    /// The match keys it carries (for the match-quality counts).
    keys: KeySet,
}

/// Traffic counts of match keys among the conversions queued (their event queued, and not a
/// once-per-player goal the player had already converted for): per config and goal (X) or event
/// name, `match:conversions:NAME` and `match:KEY:NAME` (crate::quality).
fn match_key_counts(
    conversions: &[Conversion],
    events: &[ConversionEvent],
    queued: &EnqueueReport,
) -> BTreeMap<(i64, String), u64> {
    let mut counts: BTreeMap<(i64, String), u64> = BTreeMap::new();
    for c in conversions {
        let event = &events[c.event];
        let converted_before = c.once && queued.converted_before.contains(&event.event_id);
        if !queued.queued_events.contains(&event.event_id) || converted_before {
            continue;
        }
        let name = if c.goal_key.is_empty() { event.name.as_str() } else { c.goal_key.as_str() };
        for kind in quality::count_kinds(c.keys, name, quality::Stage::Queued) {
            *counts.entry((c.config_id, kind)).or_default() += 1;
        }
    }
    counts
}

/// Events of one game routed to its configs: what to queue and why the rest is not, each event
/// serialised once for all of its conversions. Worked out before the write, so that the
/// write lock is held only for writing (routing is most of accepting's CPU time).
#[derive(Debug)]
pub struct Routed {
    game_id: i64,
    events: Vec<ConversionEvent>,
    /// Per event, its JSON as queued.
    payloads: Vec<String>,
    conversions: Vec<Conversion>,
    skipped_per_config: BTreeMap<(i64, &'static str), u64>,
    /// What routing decided; the write fills in what was queued.
    decided: Accepted,
}

impl Routed {
    pub fn game_id(&self) -> i64 {
        self.game_id
    }

    pub fn event_count(&self) -> usize {
        self.events.len()
    }

    /// Takes in another group of the same game (its events queue in the same commit).
    pub fn absorb(&mut self, other: Routed) {
        let offset = self.events.len();
        self.events.extend(other.events);
        self.payloads.extend(other.payloads);
        self.conversions.extend(other.conversions.into_iter().map(|c| Conversion { event: c.event + offset, ..c }));
        for (key, n) in other.skipped_per_config {
            *self.skipped_per_config.entry(key).or_default() += n;
        }
        let (mine, theirs) = (&mut self.decided, other.decided);
        mine.events += theirs.events;
        for (reason, n) in theirs.skipped {
            *mine.skipped.entry(reason).or_default() += n;
        }
        mine.routed_events.extend(theirs.routed_events);
        for (event_id, reasons) in theirs.skip_reasons {
            mine.skip_reasons.entry(event_id).or_default().extend(reasons);
        }
    }
}

/// Routes events of one game for its enabled `configs`. Pure: `erased` names the players
/// among them who asked to be erased; `default_country` is the game's country for phone
/// numbers written without one: they are queued read in it (E.164), so a later change of the
/// setting does not change what a queued event means.
pub fn route(
    game_id: i64,
    configs: &[StoredConfig],
    mut events: Vec<ConversionEvent>,
    erased: &HashSet<String>,
    default_country: Option<PhoneCountry>,
) -> Result<Routed, StoreError> {
    if let Some(country) = default_country {
        for event in &mut events {
            identity::localise_phone(event, country);
        }
    }
    let mut decided = Accepted { events: events.len() as u64, ..Accepted::default() };
    let mut conversions = Vec::with_capacity(events.len() * configs.len());
    let mut skipped_per_config: BTreeMap<(i64, &'static str), u64> = BTreeMap::new();
    // X yields one conversion per counting goal, each queued (and later settled) on its own.
    for (index, event) in events.iter().enumerate() {
        let mut matchability = networks::Matchability::new(default_country);
        for stored in configs {
            match networks::admit(&stored.config, event, erased.contains(&event.player_id), &mut matchability) {
                Ok(goals) => {
                    decided.routed_events.insert(event.event_id.clone());
                    let keys = matchability.keys(&stored.config, event);
                    for goal_key in goals {
                        let once = once_per_player(&stored.config, &goal_key);
                        conversions.push(Conversion { event: index, config_id: stored.id, goal_key, once, keys });
                    }
                }
                Err(skip) => {
                    *decided.skipped.entry(skip.reason.as_str().to_owned()).or_default() += 1;
                    *skipped_per_config.entry((stored.id, skip.reason.as_str())).or_default() += 1;
                    decided.skip_reasons.entry(event.event_id.clone()).or_default().push(format!(
                        "{}: {}",
                        stored.config.network().display_name(),
                        skip.message
                    ));
                }
            }
        }
    }
    let payloads = events
        .iter()
        .map(|e| serde_json::to_string(e).map_err(|e| StoreError::Corrupt(format!("event: {e}"))))
        .collect::<Result<_, _>>()?;
    Ok(Routed { game_id, events, payloads, conversions, skipped_per_config, decided })
}

/// Queues what [`route`] decided, with the per-hour traffic counts, in one synced commit.
pub async fn write(store: &Store, routed: Routed, source: Source, now_ms: i64) -> Result<Accepted, StoreError> {
    let Routed { game_id, events, payloads, conversions, skipped_per_config, decided: mut out } = routed;
    if events.is_empty() {
        return Ok(out);
    }
    let wanted: Vec<NewDelivery> = conversions
        .iter()
        .map(|c| {
            NewDelivery::new(c.config_id, &events[c.event])
                .for_goal(&c.goal_key, c.once)
                .with_payload(&payloads[c.event])
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
            let keys = match_key_counts(&conversions, &events, queued);
            counts.extend(keys.into_iter().map(|((config_id, kind), n)| count(config_id, kind, n)));
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

/// Routes and enqueues events of one game for its enabled `configs`: [`route`], then [`write`].
pub async fn accept(
    store: &Store,
    game_id: i64,
    configs: &[StoredConfig],
    events: Vec<ConversionEvent>,
    source: Source,
    now_ms: i64,
) -> Result<Accepted, StoreError> {
    let routed = route_reading_erasures(store, game_id, configs, events).await?;
    write(store, routed, source, now_ms).await
}

/// [`route`], with the erased players among the events and the game's default country read
/// from the store.
pub async fn route_reading_erasures(
    store: &Store,
    game_id: i64,
    configs: &[StoredConfig],
    events: Vec<ConversionEvent>,
) -> Result<Routed, StoreError> {
    let players: Vec<&str> = events.iter().map(|e| e.player_id.as_str()).collect();
    let (erased, game) = tokio::join!(store.erased_among(&players), store.game(game_id));
    let country = game?.default_country.as_deref().and_then(PhoneCountry::parse);
    route(game_id, configs, events, &erased?, country)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::OfflineState;

    fn stored(id: i64, doc: serde_json::Value) -> StoredConfig {
        StoredConfig {
            id,
            game_id: 1,
            enabled: true,
            credential_ref: None,
            paused_reason: None,
            offline: OfflineState::default(),
            config: PostbackConfig::from_json(&doc).expect("config"),
        }
    }

    fn event(i: usize, clicks: serde_json::Value) -> ConversionEvent {
        ConversionEvent::from_json(&serde_json::json!({"event_id": format!("e{i}"), "name": "purchase",
            "occurred_at": "2026-11-20T10:15:30Z", "player_id": format!("p{i}"), "consent": "full", "click_ids": clicks}))
        .expect("event")
    }

    /// Requests routed while the ingest's writer is busy join the group waiting for it: the
    /// joined group queues and answers exactly what routing all their events at once would.
    #[test]
    fn a_group_that_takes_in_another_is_the_group_of_both() {
        let configs = [
            stored(
                1,
                serde_json::json!({"network": "tiktok", "pixel_code": "CABCD1234EFGH", "trigger_events": ["purchase"]}),
            ),
            stored(
                2,
                serde_json::json!({"network": "x", "pixel_id": "oka17",
                "goals": [{"id": "g", "event": "purchase", "event_tag": "tw-oka17-ol288"}]}),
            ),
        ];
        let first: Vec<_> = (0..3).map(|i| event(i, serde_json::json!({"ttclid": "t"}))).collect();
        let second: Vec<_> = (3..6).map(|i| event(i, serde_json::json!({"twclid": "w"}))).collect();
        let erased: HashSet<String> = ["p4".to_owned()].into();
        let mut joined = route(1, &configs, first.clone(), &erased, None).expect("route");
        joined.absorb(route(1, &configs, second.clone(), &erased, None).expect("route"));
        let together = route(1, &configs, [first, second].concat(), &erased, None).expect("route");
        assert_eq!(joined.events, together.events);
        assert_eq!(joined.payloads, together.payloads);
        assert_eq!(joined.conversions, together.conversions);
        assert_eq!(joined.skipped_per_config, together.skipped_per_config);
        assert_eq!(joined.decided, together.decided);
        assert_eq!(joined.conversions.iter().filter(|c| c.event >= 3).count(), 2, "X takes p3 and p5, not erased p4");
    }
}
