//! The delivery queue on both engines: dedup by event id, claims under lease tokens, leases
//! kept and released, traffic counted with the enqueue; and on each engine, two handles (two
//! processes' worth of connections) enqueueing the same events at once.

#[macro_use]
mod engines;

use std::collections::HashSet;

use postback::model::{ConversionEvent, Goal, PostbackConfig, TriggerRule};
use postback::store::{NewDelivery, Store, TrafficCount};
use serde_json::json;

/// A game with a TikTok config; returns (game id, config id).
async fn tiktok_config(store: &Store) -> (i64, i64) {
    let game = store.create_game("Space Miner").await.unwrap();
    let config = PostbackConfig::from_json(&json!({"network": "tiktok", "pixel_code": "CABCD1234EFGH",
        "trigger_events": ["purchase"], "base_url": "http://127.0.0.1:9"}))
    .unwrap();
    (game.id, store.create_config(game.id, &config, Some("ref")).await.unwrap())
}

fn purchases(ids: impl IntoIterator<Item = u32>) -> Vec<ConversionEvent> {
    ids.into_iter()
        .map(|i| {
            ConversionEvent::from_json(&json!({"event_id": format!("e{i}"), "name": "purchase",
                "occurred_at": "2026-11-20T10:15:30Z", "player_id": format!("p{i}"), "consent": "full"}))
            .unwrap()
        })
        .collect()
}

fn purchase(event_id: &str, player: &str) -> ConversionEvent {
    ConversionEvent::from_json(&json!({"event_id": event_id, "name": "purchase",
        "occurred_at": "2026-11-20T10:15:30Z", "player_id": player, "consent": "full"}))
    .unwrap()
}

const NOW: i64 = 1_795_000_000_000;

on_both_engines! {
    async fn enqueue_dedups_by_event_id_within_a_call_and_across_calls(store: Store) {
        let (_, config) = tiktok_config(&store).await;
        let events = purchases([1, 2, 3, 2]);
        let items: Vec<NewDelivery> = events.iter().map(|e| NewDelivery::new(config, e)).collect();
        let first = store.enqueue(&items, NOW).await.unwrap();
        assert_eq!((first.enqueued, first.duplicates), (3, 1));
        assert_eq!(first.per_config.get(&config), Some(&3));
        let again = purchases([3, 4]);
        let items: Vec<NewDelivery> = again.iter().map(|e| NewDelivery::new(config, e)).collect();
        let second = store.enqueue(&items, NOW + 1_000).await.unwrap();
        assert_eq!((second.enqueued, second.duplicates), (1, 1));
        assert_eq!(second.queued_events, HashSet::from(["e4".to_owned()]));
        assert_eq!(store.pending_count(config).await.unwrap(), 4);
        assert_eq!(store.queue_counts().await.unwrap(), (4, 0, 0));
        assert_eq!(store.next_run_at().await.unwrap(), Some(NOW));
    }

    async fn claims_under_two_tokens_never_share_a_row_and_leases_end_by_token(store: Store) {
        let (_, config) = tiktok_config(&store).await;
        let events = purchases(1..=10);
        let items: Vec<NewDelivery> = events.iter().map(|e| NewDelivery::new(config, e)).collect();
        store.enqueue(&items, NOW).await.unwrap();
        let a = store.claim(config, "token-a", NOW, 60_000, 6).await.unwrap();
        let b = store.claim(config, "token-b", NOW, 60_000, 6).await.unwrap();
        assert_eq!((a.len(), b.len()), (6, 4));
        let ids_a: HashSet<i64> = a.iter().map(|l| l.id).collect();
        assert!(b.iter().all(|l| !ids_a.contains(&l.id)), "a row was claimed twice");
        // Oldest first: the first claim has the first six events.
        let mut first: Vec<&str> = a.iter().map(|l| l.event_id.as_str()).collect();
        first.sort_unstable();
        assert_eq!(first, ["e1", "e2", "e3", "e4", "e5", "e6"]);
        assert_eq!(store.queue_counts().await.unwrap(), (0, 10, 0));
        // The next wake-up is the end of the earliest lease.
        assert_eq!(store.next_run_at().await.unwrap(), Some(NOW + 60_000));
        assert_eq!(store.extend_lease("token-a", NOW + 120_000).await.unwrap(), 6);
        assert_eq!(store.release_lease("token-b").await.unwrap(), 4);
        assert!(store.claim(config, "token-c", NOW, 60_000, 10).await.unwrap().len() == 4);
        // Token c's lease ends first (60 s); a's was extended to 120 s.
        assert_eq!(store.reclaim_expired_leases(NOW + 90_000).await.unwrap(), 4);
        assert_eq!(store.reclaim_expired_leases(NOW + 130_000).await.unwrap(), 6);
        assert_eq!(store.queue_counts().await.unwrap(), (10, 0, 0));
        // A paused config is not woken for.
        store.pause(config, "token revoked").await.unwrap();
        assert_eq!(store.next_run_at().await.unwrap(), None);
        store.unpause(config).await.unwrap();
        assert_eq!(store.next_run_at().await.unwrap(), Some(NOW));
    }

    async fn a_once_per_player_goal_queues_each_players_first_conversion_only(store: Store) {
        let (game, config) = tiktok_config(&store).await;
        let first = Goal {
            id: "first".into(),
            name: "First purchase".into(),
            event: "purchase".into(),
            active: true,
            rule: TriggerRule::OncePerPlayer,
            value_filter: None,
            event_tag: None,
        };
        store.save_goal(game, &first).await.unwrap();
        let events = [purchase("e1", "p1"), purchase("e2", "p1"), purchase("e3", "p2")];
        let items: Vec<NewDelivery> = events.iter().map(|e| NewDelivery::new(config, e).for_goal("first", true)).collect();
        let report = store.enqueue(&items, NOW).await.unwrap();
        assert_eq!((report.enqueued, report.already_converted, report.duplicates), (2, 1, 0));
        assert_eq!(report.converted_before, HashSet::from(["e2".to_owned()]));
        // The first event again is a duplicate, not a second conversion.
        let again = [purchase("e1", "p1")];
        let items: Vec<NewDelivery> = again.iter().map(|e| NewDelivery::new(config, e).for_goal("first", true)).collect();
        let report = store.enqueue(&items, NOW + 1).await.unwrap();
        assert_eq!((report.enqueued, report.already_converted, report.duplicates), (0, 0, 1));
    }

    async fn traffic_is_counted_in_the_enqueue_transaction(store: Store) {
        let (game, config) = tiktok_config(&store).await;
        let events = purchases([1, 2, 2]);
        let items: Vec<NewDelivery> = events.iter().map(|e| NewDelivery::new(config, e)).collect();
        let count = |kind: &str, config_id: i64, count: u64| TrafficCount {
            game_id: game,
            source: "ingest".into(),
            config_id,
            kind: kind.into(),
            count,
        };
        store
            .enqueue_counted(&items, NOW, |report| vec![count("arrived", 0, 3), count("queued", config, report.enqueued)])
            .await
            .unwrap();
        store.record_traffic(NOW + 1, &[count("arrived", 0, 2)]).await.unwrap();
        let mut counted = store.traffic(game, NOW - 3_600_000, NOW + 3_600_000).await.unwrap();
        counted.sort_by(|a, b| a.kind.cmp(&b.kind));
        let got: Vec<(&str, i64, u64)> = counted.iter().map(|c| (c.kind.as_str(), c.config_id, c.count)).collect();
        assert_eq!(got, [("arrived", 0, 5), ("queued", config, 2)]);
    }
}

/// Two handles on one database enqueue the same 1,000 events at the same moment: each is
/// queued once in all, and the two reports together say so.
async fn the_same_events_through_two_handles_at_once_are_queued_once(first: Store, second: Store) {
    let (_, config) = tiktok_config(&first).await;
    let events = purchases(1..=1000);
    let run = |store: Store, events: Vec<ConversionEvent>| async move {
        // In chunks, as an import does, so that the two interleave.
        let mut total = (0, 0);
        for chunk in events.chunks(100) {
            let items: Vec<NewDelivery> = chunk.iter().map(|e| NewDelivery::new(config, e)).collect();
            let report = store.enqueue(&items, NOW).await.unwrap();
            total = (total.0 + report.enqueued, total.1 + report.duplicates);
        }
        total
    };
    let (a, b) = tokio::join!(tokio::spawn(run(first.clone(), events.clone())), tokio::spawn(run(second, events)));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.0 + b.0, 1000, "queued: {a:?} + {b:?}");
    assert_eq!(a.1 + b.1, 1000, "duplicates: {a:?} + {b:?}");
    assert_eq!(first.pending_count(config).await.unwrap(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_events_through_two_handles_at_once_are_queued_once_on_sqlite() {
    let (test, second) = engines::open_pair(engines::Engine::Sqlite).await;
    the_same_events_through_two_handles_at_once_are_queued_once(test.store.clone(), second).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_events_through_two_handles_at_once_are_queued_once_on_postgres() {
    let (test, second) = engines::open_pair(engines::Engine::Postgres).await;
    the_same_events_through_two_handles_at_once_are_queued_once(test.store.clone(), second).await;
}

/// Two handles claim from one queue at the same time until it is empty: every row is claimed
/// exactly once.
async fn two_handles_claiming_at_once_never_take_the_same_row(first: Store, second: Store) {
    let (_, config) = tiktok_config(&first).await;
    let events = purchases(1..=1000);
    let items: Vec<NewDelivery> = events.iter().map(|e| NewDelivery::new(config, e)).collect();
    first.enqueue(&items, NOW).await.unwrap();
    let drain = |store: Store, worker: &'static str| async move {
        let mut ids = Vec::new();
        for round in 0.. {
            let token = format!("{worker}-{round}");
            let claimed = store.claim(config, &token, NOW, 60_000, 25).await.unwrap();
            if claimed.is_empty() {
                break;
            }
            ids.extend(claimed.iter().map(|l| l.id));
        }
        ids
    };
    let (a, b) = tokio::join!(tokio::spawn(drain(first.clone(), "a")), tokio::spawn(drain(second, "b")));
    let (a, b) = (a.unwrap(), b.unwrap());
    let all: HashSet<i64> = a.iter().chain(&b).copied().collect();
    assert_eq!(a.len() + b.len(), 1000, "{} + {} claims", a.len(), b.len());
    assert_eq!(all.len(), 1000, "a row was claimed by both");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_claiming_at_once_never_take_the_same_row_on_sqlite() {
    let (test, second) = engines::open_pair(engines::Engine::Sqlite).await;
    two_handles_claiming_at_once_never_take_the_same_row(test.store.clone(), second).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_claiming_at_once_never_take_the_same_row_on_postgres() {
    let (test, second) = engines::open_pair(engines::Engine::Postgres).await;
    two_handles_claiming_at_once_never_take_the_same_row(test.store.clone(), second).await;
}

on_both_engines! {
    /// A config saved (a rotation, a pixel change) while events keep arriving and being queued:
    /// every save succeeds. On SQLite a transaction that read first and then wrote failed at
    /// once with "database is locked" when an enqueue had committed in between (seen in the
    /// window: a token rotation during the demo).
    async fn a_config_saved_while_events_keep_arriving_never_fails(store: Store) {
        let (_, config) = tiktok_config(&store).await;
        let stored = store.config(config).await.unwrap().config;
        // Enqueues commit one after another until the saves are done; each save waits for a
        // fresh commit, so the two interleave whatever the machine's load.
        use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
        let (saving, written) = (std::sync::Arc::new(AtomicBool::new(true)), std::sync::Arc::new(AtomicU32::new(0)));
        let writer = {
            let (store, saving, written) = (store.clone(), saving.clone(), written.clone());
            tokio::spawn(async move {
                while saving.load(Ordering::Relaxed) {
                    let events = purchases([written.load(Ordering::Relaxed)]);
                    let items: Vec<NewDelivery> = events.iter().map(|e| NewDelivery::new(config, e)).collect();
                    store.enqueue(&items, NOW).await.unwrap();
                    written.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        for n in 0..60 {
            while written.load(Ordering::Relaxed) <= n {
                assert!(std::time::Instant::now() < deadline, "the writer stalled at {n}");
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            store.update_config(config, &stored, &format!("ref-{n}")).await.unwrap();
        }
        saving.store(false, Ordering::Relaxed);
        writer.await.unwrap();
    }
}

on_both_engines! {
    /// The waiting conversions' ages, as the acceptance-window warning reads them: the oldest
    /// event time and how many happened before a cutoff; in-flight rows wait too, delivered ones
    /// and other configs' do not.
    async fn queued_age_reads_the_oldest_waiting_conversion_and_those_before_a_cutoff(store: Store) {
        const DAY: i64 = 86_400_000;
        let (game, config) = tiktok_config(&store).await;
        let reddit = PostbackConfig::from_json(&json!({"network": "reddit", "pixel_id": "a2_abc",
            "trigger_events": ["purchase"], "base_url": "http://127.0.0.1:9"}))
        .unwrap();
        let other = store.create_config(game, &reddit, Some("ref2")).await.unwrap();
        let at = |days_ago: i64, id: &str| {
            let when = chrono::DateTime::from_timestamp_millis(NOW - days_ago * DAY).unwrap().to_rfc3339();
            ConversionEvent::from_json(&json!({"event_id": id, "name": "purchase", "occurred_at": when,
                "player_id": "p", "consent": "full"}))
            .unwrap()
        };
        let events = [at(10, "e1"), at(5, "e2"), at(2, "e3"), at(0, "e4")];
        let mut items: Vec<NewDelivery> = events.iter().map(|e| NewDelivery::new(config, e)).collect();
        let older = at(20, "r1");
        items.push(NewDelivery::new(other, &older));
        store.enqueue(&items, NOW).await.unwrap();

        let age = store.queued_age(config, NOW - 3 * DAY).await.unwrap();
        assert_eq!((age.oldest_occurred_ms, age.before_cutoff), (Some(NOW - 10 * DAY), 2));
        assert_eq!(store.queued_age(config, NOW - 30 * DAY).await.unwrap().before_cutoff, 0);

        // In flight still waits; once e1 is delivered, e2 is the oldest.
        let leased = store.claim(config, "t1", NOW, 60_000, 10).await.unwrap();
        assert_eq!(store.queued_age(config, NOW - 3 * DAY).await.unwrap().before_cutoff, 2);
        let e1 = leased.iter().find(|l| l.event_id == "e1").unwrap().id;
        store
            .settle(postback::store::Settlement {
                lease_token: "t1".into(),
                at: NOW + 1,
                done: vec![e1],
                ..Default::default()
            })
            .await
            .unwrap();
        let age = store.queued_age(config, NOW - 3 * DAY).await.unwrap();
        assert_eq!((age.oldest_occurred_ms, age.before_cutoff), (Some(NOW - 5 * DAY), 1));
        let age = store.queued_age(other, NOW - 3 * DAY).await.unwrap();
        assert_eq!((age.oldest_occurred_ms, age.before_cutoff), (Some(NOW - 20 * DAY), 1));
    }
}
