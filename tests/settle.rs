//! Settling a claimed batch on both engines: its attempts logged (and broadcast to live views)
//! with its request stored once, its rows' new states, only under its own lease token, and a
//! player erased while the batch was in flight never written back.

#[macro_use]
mod engines;

use std::collections::BTreeMap;

use postback::model::{ConversionEvent, DeliveryStatus, Network, PostbackConfig};
use postback::store::{
    Leased, NewDelivery, NewLogEntry, Replay, ReplayRefusal, RequestRecord, Retry, Settlement, Store, TrafficCount,
};
use serde_json::json;

const NOW: i64 = 1_795_000_000_000;

async fn tiktok_config(store: &Store) -> i64 {
    let game = store.create_game("Space Miner").await.unwrap();
    let config = PostbackConfig::from_json(&json!({"network": "tiktok", "pixel_code": "CABCD1234EFGH",
        "trigger_events": ["purchase"], "base_url": "http://127.0.0.1:9"}))
    .unwrap();
    store.create_config(game.id, &config, Some("ref")).await.unwrap()
}

/// Events e1..=en of players p1..=pn, queued and claimed under `token`.
async fn claimed(store: &Store, config: i64, n: u32, token: &str) -> Vec<Leased> {
    let events: Vec<ConversionEvent> = (1..=n)
        .map(|i| {
            ConversionEvent::from_json(&json!({"event_id": format!("e{i}"), "name": "purchase",
                "occurred_at": "2026-11-20T10:15:30Z", "player_id": format!("p{i}"), "consent": "full"}))
            .unwrap()
        })
        .collect();
    let items: Vec<NewDelivery> = events.iter().map(|e| NewDelivery::new(config, e)).collect();
    store.enqueue(&items, NOW).await.unwrap();
    store.claim(config, token, NOW, 60_000, n as usize).await.unwrap()
}

/// One request carrying every leased row as an item, and a log entry per row.
fn attempts(config: i64, leased: &[Leased], status: DeliveryStatus) -> (Vec<NewLogEntry>, RequestRecord) {
    let items: Vec<serde_json::Value> = leased
        .iter()
        .map(|l| json!({"event_id": l.event_id, "user": {"external_id": format!("hash-of-{}", l.player_id)}}))
        .collect();
    let request = RequestRecord {
        at: NOW,
        config_id: config,
        network: Network::TikTok,
        item_players: leased.iter().map(|l| l.player_id.clone()).collect(),
        url: "http://127.0.0.1:9/open_api/v1.3/event/track/".into(),
        headers: serde_json::Map::from_iter([("access-token".to_owned(), json!("<redacted>"))]),
        body: serde_json::to_vec(&json!({"event_source": "web", "data": items})).unwrap().into(),
        response_status: Some(200),
        response_headers: BTreeMap::new(),
        response_body: Some(r#"{"code":0}"#.into()),
    };
    let log = leased
        .iter()
        .enumerate()
        .map(|(i, l)| NewLogEntry {
            at: NOW,
            config_id: config,
            network: Network::TikTok,
            event_name: l.event_name.clone(),
            event_id: l.event_id.clone(),
            goal_key: l.goal_key.clone(),
            player_id: l.player_id.clone(),
            status,
            http_status: Some(200),
            latency_ms: Some(12),
            attempt: l.attempts + 1,
            request_id: Some("req-1".into()),
            credential_failure: false,
            error: None,
            request: Some(0),
            item_index: Some(i as i64),
        })
        .collect();
    (log, request)
}

/// The next batch a live view gets (PostgreSQL's come through a notification).
async fn next_batch(
    live: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<Vec<postback::model::LogEntry>>>,
) -> std::sync::Arc<Vec<postback::model::LogEntry>> {
    tokio::time::timeout(std::time::Duration::from_secs(5), live.recv())
        .await
        .expect("the settled rows reach live views within 5 s")
        .expect("a batch")
}

on_both_engines! {
    async fn a_settled_batch_logs_its_attempts_once_and_moves_each_row(store: Store) {
        let config = tiktok_config(&store).await;
        let leased = claimed(&store, config, 4, "t1").await;
        let ids: Vec<i64> = leased.iter().map(|l| l.id).collect();
        let (log, request) = attempts(config, &leased, DeliveryStatus::Success);
        let mut live = store.subscribe_log().await.unwrap();
        let report = store
            .settle(Settlement {
                lease_token: "t1".into(),
                at: NOW + 5,
                done: ids[..2].to_vec(),
                retry: vec![Retry { id: ids[2], run_at: NOW + 30_000, failing_since: NOW }],
                dead: vec![ids[3]],
                log,
                requests: vec![request],
                ..Settlement::default()
            })
            .await
            .unwrap();
        assert_eq!(report.lost, 0);
        // The retried row waits for its time; the dead one waits for a replay.
        assert_eq!(store.queue_counts().await.unwrap(), (1, 0, 1));
        assert_eq!(store.next_run_at().await.unwrap(), Some(NOW + 30_000));
        let rows = next_batch(&mut live).await;
        assert_eq!(rows.len(), 4);
        assert!(rows.windows(2).all(|w| w[0].id < w[1].id), "rows in order");
        assert_eq!(rows[0].event_id, "e1");
        // The request is stored once, readable whole.
        // The first request of a fresh database has id 1 on both engines.
        let stored = store.stored_request(1).await.unwrap().expect("the batch's request is stored");
        assert_eq!(stored.body["data"].as_array().map(Vec::len), Some(4));
        assert_eq!(stored.response_status, Some(200));
        // The delivered events are remembered: enqueued again, they are duplicates.
        let again = claimed(&store, config, 2, "t2").await;
        assert!(again.is_empty(), "delivered rows were claimed again: {again:?}");
    }

    async fn freshness_counts_are_written_with_the_log_one_row_per_bucket_and_read_by_family(store: Store) {
        let config = tiktok_config(&store).await;
        let game = store.config(config).await.unwrap().game_id;
        let leased = claimed(&store, config, 3, "t1").await;
        let (log, request) = attempts(config, &leased, DeliveryStatus::Success);
        let count = |kind: &str| TrafficCount {
            game_id: game,
            source: "delivery".into(),
            config_id: config,
            kind: kind.into(),
            count: 1,
        };
        // Two in the same bucket: one row of 2 (an INSERT may not touch a row twice).
        let traffic = vec![count("fresh:60"), count("fresh:60"), count("fresh:3600"), count("freshly"), count("queued")];
        store
            .settle(Settlement {
                lease_token: "t1".into(),
                at: NOW + 5,
                done: leased.iter().map(|l| l.id).collect(),
                log,
                requests: vec![request],
                traffic,
                ..Settlement::default()
            })
            .await
            .unwrap();
        let mut counted: Vec<(String, u64)> =
            store.traffic(game, NOW - 3_600_000, NOW + 3_600_000).await.unwrap().into_iter().map(|t| (t.kind, t.count)).collect();
        counted.sort();
        let expected = [("fresh:3600".to_owned(), 1), ("fresh:60".to_owned(), 2)];
        assert_eq!(counted, [&expected[..], &[("freshly".to_owned(), 1), ("queued".to_owned(), 1)]].concat());
        // One family read alone (an index range on the kind's prefix, byte order on both engines).
        let mut family = store.traffic_family(game, "fresh:", NOW - 3_600_000, NOW + 3_600_000).await.unwrap();
        family.sort();
        assert_eq!(family, [(config, "fresh:3600".to_owned(), 1), (config, "fresh:60".to_owned(), 2)]);
    }

    async fn a_settle_under_a_lease_taken_over_changes_nothing_and_counts_it_lost(store: Store) {
        let config = tiktok_config(&store).await;
        let leased = claimed(&store, config, 3, "slow").await;
        // The lease expires; another worker takes the rows over.
        assert_eq!(store.reclaim_expired_leases(NOW + 61_000).await.unwrap(), 3);
        assert_eq!(store.claim(config, "fast", NOW + 61_000, 60_000, 10).await.unwrap().len(), 3);
        let report = store
            .settle(Settlement {
                lease_token: "slow".into(),
                at: NOW + 62_000,
                done: leased.iter().map(|l| l.id).collect(),
                ..Settlement::default()
            })
            .await
            .unwrap();
        assert_eq!(report.lost, 3);
        assert_eq!(store.queue_counts().await.unwrap(), (0, 3, 0), "still leased by the new worker");
        assert_eq!(store.release_lease("fast").await.unwrap(), 3);
    }

    async fn a_player_erased_while_the_batch_is_in_flight_is_not_written_back(store: Store) {
        let config = tiktok_config(&store).await;
        let leased = claimed(&store, config, 3, "t1").await;
        // Erased after the claim, before the batch settles.
        let (queued, _) = store.erase_player("p2", NOW + 1).await.unwrap();
        assert_eq!(queued, 1, "the erased player's queued row is removed");
        let (log, request) = attempts(config, &leased, DeliveryStatus::Success);
        let mut live = store.subscribe_log().await.unwrap();
        let report = store
            .settle(Settlement {
                lease_token: "t1".into(),
                at: NOW + 5,
                done: leased.iter().map(|l| l.id).collect(),
                log,
                requests: vec![request],
                ..Settlement::default()
            })
            .await
            .unwrap();
        assert_eq!(report.lost, 1, "the erased row was gone");
        let rows = next_batch(&mut live).await;
        assert_eq!(rows.len(), 3, "every attempt is logged (the erased player's under no key)");
        let text = store.stored_request(1).await.unwrap().expect("stored request").body.to_string();
        assert!(!text.contains("hash-of-p2"), "the erased player's item was stored: {text}");
        assert!(text.contains("hash-of-p1") && text.contains("hash-of-p3"), "{text}");
        assert!(text.contains("asked to be forgotten"), "{text}");
        assert!(store.erased_among(&["p2", "p1"]).await.unwrap().contains("p2"));
    }

    async fn failed_events_are_replayed_and_delivered_or_pending_ones_refused(store: Store) {
        let config = tiktok_config(&store).await;
        let leased = claimed(&store, config, 3, "t1").await;
        let (log, request) = attempts(config, &leased, DeliveryStatus::Success);
        store
            .settle(Settlement {
                lease_token: "t1".into(),
                at: NOW + 5,
                done: vec![leased[0].id],
                dead: vec![leased[1].id, leased[2].id],
                log: log[..1].to_vec(),
                requests: vec![request],
                ..Settlement::default()
            })
            .await
            .unwrap();
        let named = |ids: &[&str]| Replay { config_id: config, since_ms: None, event_ids: ids.iter().map(|s| s.to_string()).collect() };
        assert_eq!(store.replay(&named(&["e1"]), NOW + 10).await.unwrap(), Err(ReplayRefusal::Delivered("e1".into())));
        assert_eq!(store.replay(&named(&["nope"]), NOW + 10).await.unwrap(), Err(ReplayRefusal::Unknown("nope".into())));
        assert_eq!(store.replay(&named(&["e2"]), NOW + 10).await.unwrap(), Ok(1));
        assert_eq!(store.replay(&named(&["e2"]), NOW + 10).await.unwrap(), Err(ReplayRefusal::Pending("e2".into())));
        // Every failed event of the config: e3 is what is left.
        assert_eq!(store.replay(&named(&[]), NOW + 10).await.unwrap(), Ok(1));
        assert_eq!(store.queue_counts().await.unwrap(), (2, 0, 0));
    }

    async fn retention_prunes_old_rows_and_the_limiter_reads_recent_sends(store: Store) {
        let config = tiktok_config(&store).await;
        let leased = claimed(&store, config, 4, "t1").await;
        let (log, request) = attempts(config, &leased, DeliveryStatus::Success);
        store
            .settle(Settlement {
                lease_token: "t1".into(),
                at: NOW + 5,
                done: leased[..3].iter().map(|l| l.id).collect(),
                dead: vec![leased[3].id],
                log,
                requests: vec![request],
                ..Settlement::default()
            })
            .await
            .unwrap();
        // The X limiter's seed: four answered sends in the second of NOW, counted at its end
        // (never earlier than they were sent).
        assert_eq!(store.sent_per_second(config, NOW - 1_000).await.unwrap(), [((NOW / 1000 + 1) * 1000, 4)]);
        assert_eq!(store.last_success(config).await.unwrap(), Some(NOW));
        // The failed-events setting round-trips and resets.
        assert_eq!(store.failed_retention_ms().await.unwrap(), None);
        store.set_failed_retention_ms(Some(86_400_000)).await.unwrap();
        assert_eq!(store.failed_retention_ms().await.unwrap(), Some(86_400_000));
        store.set_failed_retention_ms(None).await.unwrap();
        assert_eq!(store.failed_retention_ms().await.unwrap(), None);
        // 31 days on, with 30 days kept: the log, the request and the dedup memory go.
        let later = NOW + 31 * 86_400_000;
        assert_eq!(store.prune(later, 30 * 86_400_000).await.unwrap(), 4);
        assert!(store.stored_request(1).await.unwrap().is_none());
        assert_eq!(store.sent_per_second(config, NOW - 1_000).await.unwrap(), []);
        assert_eq!(store.purge_failed(later).await.unwrap(), 1);
        assert_eq!(store.queue_counts().await.unwrap(), (0, 0, 0));
        // The delivered events are forgotten: they queue afresh.
        let again = claimed(&store, config, 3, "t2").await;
        assert_eq!(again.len(), 3);
    }
}
