//! Delivery log queries, health and retention, on both engines (a real SQLite file, a real
//! PostgreSQL database).

#[macro_use]
mod engines;

use postback::model::{DeliveryStatus, Health, Network, PostbackConfig, TikTokConfig};
use postback::store::{LogFilter, NewLogEntry, Settlement, Store};

const HOUR: i64 = 3_600_000;
const NOW: i64 = 1_795_169_730_000;

async fn with_config(store: &Store) -> i64 {
    let game = store.create_game("Log Game").await.unwrap();
    store.create_config(game.id, &tiktok_config("CLOG00000001"), None).await.unwrap()
}

fn tiktok_config(pixel_code: &str) -> PostbackConfig {
    PostbackConfig::TikTok(TikTokConfig {
        pixel_code: pixel_code.into(),
        trigger_events: vec!["purchase".into()],
        test_event_code: None,
        base_url: None,
    })
}

fn entry(config_id: i64, at: i64, status: DeliveryStatus, http: Option<u16>, credential: bool) -> NewLogEntry {
    NewLogEntry {
        at,
        config_id,
        network: Network::TikTok,
        event_name: "purchase".into(),
        event_id: format!("e{at}"),
        goal_key: String::new(),
        player_id: "p".into(),
        status,
        http_status: http,
        latency_ms: Some(12),
        attempt: 1,
        request_id: None,
        credential_failure: credential,
        error: None,
        request: None,
        item_index: None,
    }
}

async fn write(store: &Store, entries: Vec<NewLogEntry>) {
    store.settle(Settlement { log: entries, ..Settlement::default() }).await.unwrap();
}

on_both_engines! {
    async fn pages_filter_by_time_and_status_and_continue_by_keyset(store: Store) {
        let config = with_config(&store).await;
        store.fill_synthetic_log(config, 10_000, NOW, 10 * 24 * HOUR).await.unwrap();
        let mut filter = LogFilter {
            since_ms: Some(NOW - 24 * HOUR),
            statuses: vec![DeliveryStatus::Failed],
            limit: 37,
            ..LogFilter::default()
        };
        let mut seen = Vec::new();
        loop {
            let page = store.log_page(&filter).await.unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.iter().all(|e| e.status == DeliveryStatus::Failed && e.at >= NOW - 24 * HOUR));
            filter.before = page.last().map(|e| (e.at, e.id));
            seen.extend(page);
        }
        // One day of ten, one in ten failed.
        assert!((95..=105).contains(&seen.len()), "{}", seen.len());
        assert!(seen.windows(2).all(|w| (w[0].at, w[0].id) > (w[1].at, w[1].id)), "newest first, no repeats");
        let range = LogFilter { since_ms: Some(NOW - 24 * HOUR), until_ms: Some(NOW + 1), ..LogFilter::default() };
        let summary = store.log_summary(&range, NOW).await.unwrap();
        let exact = store.log_count(&LogFilter { statuses: vec![DeliveryStatus::Failed], ..range.clone() }).await.unwrap();
        assert_eq!(exact, seen.len() as u64);
        // The chart's hours start on the hour: its first bar also holds the rows of that hour
        // before `since`.
        assert!(summary.totals.failed >= exact && summary.totals.failed <= exact + 2, "{:?}", summary.totals);
        assert!(summary.totals.success > summary.totals.failed * 7);
        let per_bar: u64 = summary.buckets.iter().map(|b| b.success + b.failed + b.retried + b.waiting).sum();
        let totals = &summary.totals;
        assert_eq!(
            per_bar,
            totals.success + totals.failed + totals.retried + totals.held + totals.offline + totals.given_up
        );
        assert_eq!(summary.bucket_ms, HOUR);
        assert!(summary.buckets.iter().all(|b| b.start_ms % HOUR == 0));
        assert_eq!(summary.buckets.len(), 25);
    }

    async fn health_follows_the_recent_attempts(store: Store) {
        let config = with_config(&store).await;
        assert_eq!(store.health(config, NOW).await.unwrap(), Health::NoRecentActivity);
        write(&store, vec![entry(config, NOW - 2 * HOUR, DeliveryStatus::Success, Some(200), false)]).await;
        assert_eq!(store.health(config, NOW).await.unwrap(), Health::Normal);
        write(&store, vec![entry(config, NOW - HOUR, DeliveryStatus::Held, Some(401), true)]).await;
        assert_eq!(store.health(config, NOW).await.unwrap(), Health::CredentialFailures);
        write(&store, vec![entry(config, NOW - 1000, DeliveryStatus::Success, Some(200), false)]).await;
        assert_eq!(store.health(config, NOW).await.unwrap(), Health::Normal);
        assert_eq!(store.health(config, NOW + 25 * HOUR).await.unwrap(), Health::NoRecentActivity);
    }

    async fn retention_prunes_rows_older_than_30_days(store: Store) {
        let config = with_config(&store).await;
        store.fill_synthetic_log(config, 12_000, NOW, 60 * 24 * HOUR).await.unwrap();
        let removed = store.prune(NOW, 30 * 24 * HOUR).await.unwrap();
        assert!((5_900..=6_100).contains(&removed), "{removed}");
        let oldest = LogFilter { limit: 1000, ..LogFilter::default() };
        let all = store.log_count(&LogFilter::default()).await.unwrap();
        assert_eq!(all, 12_000 - removed);
        assert!(store.log_page(&oldest).await.unwrap().iter().all(|e| e.at >= NOW - 30 * 24 * HOUR));
    }

    /// Every page shape (game without status, game × statuses merged per config, one config ×
    /// status, keyset continuation) returns exactly the rows a plain scan of the whole log would,
    /// newest first: the query plans that make pages fast on a large log must not change them.
    async fn every_page_shape_returns_what_a_full_scan_would(store: Store) {
        let game = store.create_game("Two networks").await.unwrap().id;
        let tiktok = store.create_config(game, &tiktok_config("CLOG00000001"), None).await.unwrap();
        let reddit = store
            .create_config(
                game,
                &PostbackConfig::Reddit(postback::model::RedditConfig {
                    pixel_id: "a2_logtest".into(),
                    trigger_events: vec!["purchase".into()],
                    test_id: None,
                    base_url: None,
                }),
                None,
            )
            .await
            .unwrap();
        let other_game = store.create_game("Other").await.unwrap();
        let other = store.create_config(other_game.id, &tiktok_config("CLOG00000002"), None).await.unwrap();
        for (config, rows) in [(tiktok, 3_000), (reddit, 2_000), (other, 2_500)] {
            store.fill_synthetic_log(config, rows, NOW, 3 * 24 * HOUR).await.unwrap();
        }
        let mut everything = Vec::new();
        let mut all = LogFilter { limit: 5000, ..LogFilter::default() };
        loop {
            let page = store.log_page(&all).await.unwrap();
            let Some(last) = page.last() else { break };
            all.before = Some((last.at, last.id));
            everything.extend(page);
        }
        assert_eq!(everything.len(), 7_500);
        let shapes = [
            LogFilter { game_id: Some(game), ..LogFilter::default() },
            LogFilter {
                game_id: Some(game),
                statuses: vec![DeliveryStatus::Failed, DeliveryStatus::Success],
                since_ms: Some(NOW - 24 * HOUR),
                ..LogFilter::default()
            },
            LogFilter { config_id: Some(reddit), statuses: vec![DeliveryStatus::Retried], ..LogFilter::default() },
            LogFilter { game_id: Some(other_game.id), statuses: vec![DeliveryStatus::Success], ..LogFilter::default() },
        ];
        for shape in shapes {
            let configs: Vec<i64> = match (shape.config_id, shape.game_id) {
                (Some(c), _) => vec![c],
                (None, Some(g)) if g == game => vec![tiktok, reddit],
                _ => vec![other],
            };
            let expected: Vec<i64> = everything
                .iter()
                .filter(|e| configs.contains(&e.config_id))
                .filter(|e| shape.statuses.is_empty() || shape.statuses.contains(&e.status))
                .filter(|e| shape.since_ms.is_none_or(|s| e.at >= s))
                .map(|e| e.id)
                .collect();
            assert!(!expected.is_empty(), "{shape:?}");
            let mut got = Vec::new();
            let mut filter = LogFilter { limit: 97, ..shape.clone() };
            loop {
                let page = store.log_page(&filter).await.unwrap();
                let Some(last) = page.last() else { break };
                filter.before = Some((last.at, last.id));
                got.extend(page.iter().map(|e| e.id));
            }
            assert_eq!(got, expected, "{shape:?}");
        }
    }
}
