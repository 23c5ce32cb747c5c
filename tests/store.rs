//! The store on both engines (a real SQLite file in a temporary directory, a real PostgreSQL
//! database), and SQLite's own files.

#[macro_use]
mod engines;

use postback::model::{ApiError, Goal, IntegrationStatus, Network, PostbackConfig, XConfig};
use postback::store::{NewDelivery, Store, StoreError, StoreOptions, DB_FILE};
use serde_json::json;

/// A store in a fresh directory with the demo game, and the id of its first config.
async fn demo_store() -> (tempfile::TempDir, Store, i64) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let config = demo_config(&store).await;
    (dir, store, config)
}

/// The demo game in `store`, and the id of its first config.
async fn demo_config(store: &Store) -> i64 {
    let game = postback::sandbox::ensure_demo_game(store, "http://127.0.0.1:9").await.unwrap();
    store.configs(game.id).await.unwrap()[0].id
}

/// A purchase of player `p` at full consent, under `event_id`.
fn purchase(event_id: &str) -> postback::model::ConversionEvent {
    postback::model::ConversionEvent::from_json(&json!({"event_id": event_id, "name": "purchase",
        "occurred_at": "2026-11-20T10:15:30Z", "player_id": "p", "consent": "full"}))
    .unwrap()
}

fn x_config(pixel: &str) -> PostbackConfig {
    PostbackConfig::X(XConfig {
        pixel_id: pixel.into(),
        goals: vec![Goal::mapped("buy", "Purchase", "purchase", &format!("tw-{pixel}-buy01"))],
        base_url: None,
    })
}

#[tokio::test]
async fn migrations_apply_and_the_file_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    assert!(dir.path().join(DB_FILE).exists());
    assert!(store.games().await.unwrap().is_empty());
    store.close().await;
    // Reopening applies nothing new and keeps the data.
    let store = Store::open(dir.path()).await.unwrap();
    store.create_game("Space Miner").await.unwrap();
    store.close().await;
    let store = Store::open(dir.path()).await.unwrap();
    assert_eq!(store.games().await.unwrap()[0].name, "Space Miner");
    assert!(dir.path().join(format!("{DB_FILE}-wal")).exists(), "WAL journal expected");
}

/// Three configs saved with test codes (TikTok's and Reddit's), read back.
async fn save_configs_with_test_codes(store: &Store) -> Vec<postback::store::StoredConfig> {
    let game = store.create_game("Space Miner").await.unwrap();
    let tiktok = PostbackConfig::from_json(&json!({"network": "tiktok", "pixel_code": "CABCD1234EFGH",
        "trigger_events": ["purchase"], "test_event_code": "TEST42", "base_url": "http://127.0.0.1:9"}))
    .unwrap();
    let reddit = PostbackConfig::from_json(&json!({"network": "reddit", "pixel_id": "a2_abcd1234",
        "trigger_events": ["game_launch", "purchase"], "test_id": "T-1"}))
    .unwrap();
    store.create_config(game.id, &tiktok, Some("postback-desk/tiktok/1")).await.unwrap();
    store.create_config(game.id, &reddit, None).await.unwrap();
    store.create_config(game.id, &x_config("oka17"), Some("postback-desk/x/1")).await.unwrap();
    store.configs(game.id).await.unwrap()
}

on_both_engines! {
    async fn configs_round_trip_without_test_codes(store: Store) {
        let stored = save_configs_with_test_codes(&store).await;
        assert_eq!(stored.len(), 3);
        match &stored[0].config {
            PostbackConfig::TikTok(c) => {
                assert_eq!(
                    (c.pixel_code.as_str(), c.trigger_events.as_slice()),
                    ("CABCD1234EFGH", ["purchase".to_owned()].as_slice())
                );
                assert_eq!(c.base_url.as_deref(), Some("http://127.0.0.1:9"));
                assert_eq!(c.test_event_code, None, "test codes are never stored");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(&stored[1].config, PostbackConfig::Reddit(c) if c.test_id.is_none() && c.trigger_events.len() == 2)
        );
        assert_eq!(stored[2].config, x_config("oka17"));
        assert_eq!(stored[0].credential_ref.as_deref(), Some("postback-desk/tiktok/1"));
    }
}

#[tokio::test]
async fn test_codes_never_reach_the_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    save_configs_with_test_codes(&store).await;
    store.close().await;
    let bytes = std::fs::read(dir.path().join(DB_FILE)).unwrap();
    let wal = std::fs::read(dir.path().join(format!("{DB_FILE}-wal"))).unwrap_or_default();
    for needle in ["TEST42", "T-1"] {
        let found = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
        assert!(!found(&bytes) && !found(&wal), "{needle} found in the database");
    }
}

// The set-up side on both engines (engines/mod.rs).
on_both_engines! {
    async fn a_game_has_at_most_one_x_config(store: Store) {
        let game = store.create_game("Space Miner").await.unwrap();
        store.create_config(game.id, &x_config("oka17"), None).await.unwrap();
        let err = store.create_config(game.id, &x_config("zzz99"), None).await.unwrap_err();
        assert!(matches!(err, StoreError::ConfigExists(Network::X)), "{err:?}");
        let api: ApiError = err.into();
        assert_eq!(api.code, "config_exists");
        assert!(api.message.contains("X Ads"), "{}", api.message);
        // The first config is untouched and another game may have its own.
        assert_eq!(store.configs(game.id).await.unwrap()[0].config, x_config("oka17"));
        let other = store.create_game("Other").await.unwrap();
        store.create_config(other.id, &x_config("zzz99"), None).await.unwrap();
    }

    async fn unknown_game_is_a_clear_error(store: Store) {
        let err = store.create_config(404, &x_config("oka17"), None).await.unwrap_err();
        assert!(matches!(err, StoreError::GameNotFound(404)));
    }

    async fn first_start_creates_the_sandbox_game_once(store: Store) {
        let game = postback::sandbox::ensure_demo_game(&store, "http://127.0.0.1:47811").await.unwrap();
        assert_eq!(game.name, postback::sandbox::DEMO_GAME_NAME);
        let again = postback::sandbox::ensure_demo_game(&store, "http://127.0.0.1:47811").await.unwrap();
        assert_eq!(again, game);
        assert_eq!(store.games().await.unwrap().len(), 1);
        let rows = store.integrations(game.id).await.unwrap();
        let networks: Vec<_> = rows.iter().map(|r| (r.network, r.display_name.as_str())).collect();
        assert_eq!(networks, [(Network::TikTok, "TikTok Ads"), (Network::Reddit, "Reddit Ads"), (Network::X, "X Ads")]);
        assert!(rows.iter().all(|r| r.status == IntegrationStatus::Connected && r.enabled));
        assert!(rows.iter().all(|r| r.base_url.as_deref() == Some("http://127.0.0.1:47811")));
    }

    async fn a_missing_network_shows_as_not_connected(store: Store) {
        let game = store.create_game("Space Miner").await.unwrap();
        store.create_config(game.id, &x_config("oka17"), None).await.unwrap();
        let rows = store.integrations(game.id).await.unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].status, IntegrationStatus::NotConnected);
        assert_eq!(rows[0].pixel, None);
        assert_eq!(rows[2].pixel.as_deref(), Some("oka17"));
    }

    async fn integrations_of_an_unknown_game_is_not_found(store: Store) {
        let err = store.integrations(99).await.unwrap_err();
        assert_eq!(ApiError::from(err).code, "not_found");
    }

    async fn games_goals_and_settings_round_trip(store: Store) {
        let game = store.create_game_in("Space Miner", Some("US")).await.unwrap();
        let err = store.create_game("Space Miner").await.unwrap_err();
        assert!(matches!(err, StoreError::GameExists(_)), "{err:?}");
        let renamed = store.update_game(game.id, "Space Miner 2", None).await.unwrap();
        assert_eq!((renamed.name.as_str(), renamed.default_country.as_deref()), ("Space Miner 2", None));
        let other = store.create_game("asteroid hunter").await.unwrap();
        // Names sort without regard to case.
        let names: Vec<String> = store.games().await.unwrap().into_iter().map(|g| g.name).collect();
        assert_eq!(names, ["asteroid hunter", "Space Miner 2"]);
        store.set_current_game(game.id).await.unwrap();
        assert_eq!(store.current_game().await.unwrap().unwrap().id, game.id);

        let buy = Goal { event_tag: None, ..Goal::mapped("buy", "Purchase", "purchase", "") };
        store.save_goal(game.id, &buy).await.unwrap();
        store.save_goal(game.id, &Goal { event_tag: None, ..Goal::mapped("launch", "Launch", "game_launch", "") }).await.unwrap();
        store.set_goal_active(game.id, "buy", false).await.unwrap();
        let goals = store.goals(game.id).await.unwrap();
        assert_eq!(goals.iter().map(|g| (g.id.as_str(), g.active)).collect::<Vec<_>>(), [("buy", false), ("launch", true)]);

        assert_eq!(store.meta("retention").await.unwrap(), None);
        assert_eq!(store.set_meta_once("instance", "a").await.unwrap(), "a");
        assert_eq!(store.set_meta_once("instance", "b").await.unwrap(), "a", "the first value stands");
        store.set_meta("retention", "7").await.unwrap();
        store.set_meta("retention", "9").await.unwrap();
        assert_eq!(store.meta("retention").await.unwrap().as_deref(), Some("9"));

        store.create_config(game.id, &x_config("oka17"), Some("ref-1")).await.unwrap();
        let usage = store.game_usage(game.id).await.unwrap();
        assert_eq!((usage.configs, usage.goals, usage.queued, usage.log_rows), (1, 2, 0, 0), "{usage:?}");
        assert_eq!(store.delete_game(game.id).await.unwrap(), ["ref-1".to_owned()], "its keychain references");
        assert_eq!(store.current_game().await.unwrap().unwrap().id, other.id);
        assert!(matches!(store.game(game.id).await, Err(StoreError::GameNotFound(_))));
    }
}

#[tokio::test]
async fn an_unwritable_data_dir_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let err = Store::open(&file.join("sub")).await.unwrap_err();
    assert!(err.to_string().contains("POSTBACK_DATA_DIR"), "{err}");
}

/// Enqueues write on a connection of their own; closing the store closes it too, and an
/// enqueue after `close` fails instead of opening another.
#[tokio::test]
async fn a_closed_store_accepts_no_more_events() {
    let (dir, store, config) = demo_store().await;
    let (first, second) = (purchase("e1"), purchase("e2"));
    let t0 = 1_795_000_000_000;
    assert_eq!(store.enqueue(&[NewDelivery::new(config, &first)], t0).await.unwrap().enqueued, 1);
    store.close().await;
    assert!(store.enqueue(&[NewDelivery::new(config, &second)], t0).await.is_err());
    let store = Store::open(dir.path()).await.unwrap();
    assert_eq!(store.queue_counts().await.unwrap(), (1, 0, 0), "only the event accepted before close");
}

on_both_engines! {
    async fn an_event_id_is_remembered_for_48_hours_and_then_forgotten(store: Store) {
        use postback::store::{Settlement, DEDUP_WINDOW_MS};
        let config = demo_config(&store).await;
        let event = purchase("e1");
        let t0 = 1_795_000_000_000;
        let one = NewDelivery::new(config, &event);
        assert_eq!(store.enqueue(&[one, one], t0).await.unwrap().enqueued, 1);
        // Delivered: the row stays as dedup memory.
        let leased = store.claim(config, "test", t0, 1000, 10).await.unwrap();
        let done = Settlement { lease_token: "test".into(), done: vec![leased[0].id], ..Settlement::default() };
        assert_eq!(store.settle(done).await.unwrap().lost, 0);
        assert_eq!(store.queue_counts().await.unwrap(), (0, 0, 0));
        assert_eq!(store.enqueue(&[one], t0 + DEDUP_WINDOW_MS - 1).await.unwrap().duplicates, 1);
        assert_eq!(store.enqueue(&[one], t0 + DEDUP_WINDOW_MS + 1).await.unwrap().enqueued, 1);
        assert_eq!(store.queue_counts().await.unwrap().0, 1);
    }
}

on_both_engines! {
    /// One enqueue answers each conversion as the queue holds its key: a pending key is a
    /// duplicate however old, a key settled within 48 h is one, a key settled earlier starts afresh,
    /// and a key new to one config is queued for it whatever other configs hold, across chunks.
    async fn one_enqueue_tells_new_repeated_and_expired_keys_apart(store: Store) {
        use postback::model::ConversionEvent;
        use postback::store::{Settlement, DEDUP_WINDOW_MS};
        let game = postback::sandbox::ensure_demo_game(&store, "http://127.0.0.1:9").await.unwrap();
        let configs = store.configs(game.id).await.unwrap();
        let (a, b) = (configs[0].id, configs[1].id);
        let [pending, recent, expired, new]: [ConversionEvent; 4] = ["pending", "recent", "expired", "new"].map(purchase);
        let t0 = 1_795_000_000_000;
        let t1 = t0 + DEDUP_WINDOW_MS + 1;
        let deliver = |token: &'static str, at: i64| {
            let store = store.clone();
            async move {
                let leased = store.claim(a, token, at, 1000, 10).await.unwrap();
                let done = Settlement {
                    lease_token: token.into(),
                    done: leased.iter().map(|l| l.id).collect(),
                    ..Settlement::default()
                };
                store.settle(done).await.unwrap();
            }
        };
        store.enqueue(&[NewDelivery::new(a, &expired)], t0).await.unwrap();
        deliver("first", t0).await;
        store.enqueue(&[NewDelivery::new(a, &pending)], t0).await.unwrap();
        store.enqueue(&[NewDelivery::new(a, &recent)], t1 - 1000).await.unwrap();
        let leased = store.claim(a, "second", t1 - 1000, 1000, 10).await.unwrap();
        let recent_row: Vec<i64> = leased.iter().filter(|l| l.event_id == "recent").map(|l| l.id).collect();
        let pending_row: Vec<i64> = leased.iter().filter(|l| l.event_id == "pending").map(|l| l.id).collect();
        store.settle(Settlement { lease_token: "second".into(), done: recent_row, ..Settlement::default() }).await.unwrap();
        store.release_lease("second").await.unwrap();
        assert_eq!(pending_row.len(), 1);

        // More new keys for config b than one chunk holds, with the four keys for both configs.
        let many: Vec<ConversionEvent> = (0..1200).map(|i| purchase(&format!("many-{i}"))).collect();
        let mut items: Vec<NewDelivery> = many.iter().map(|e| NewDelivery::new(b, e)).collect();
        for e in [&pending, &recent, &expired, &new] {
            items.push(NewDelivery::new(a, e));
            items.push(NewDelivery::new(b, e));
        }
        let report = store.enqueue(&items, t1).await.unwrap();
        assert_eq!((report.enqueued, report.duplicates), (1200 + 2 + 4, 2));
        assert_eq!(report.per_config.get(&a), Some(&2), "expired and new for a");
        assert_eq!(report.per_config.get(&b), Some(&1204));
        for id in ["pending", "recent", "expired", "new", "many-0", "many-1199"] {
            assert!(report.queued_events.contains(id), "{id} was queued for some config");
        }
        // Ready now: a's pending, expired (afresh) and new; b's 1,204.
        assert_eq!(store.queue_counts().await.unwrap(), (3 + 1204, 0, 0));
        let again = store.enqueue(&items, t1 + 1).await.unwrap();
        assert_eq!((again.enqueued, again.duplicates), (0, items.len() as u64));
        assert!(again.queued_events.is_empty());
    }
}

on_both_engines! {
    /// A settle matches its claim's lease token: rows another dispatcher re-claimed after the lease
    /// expired are left alone (not marked dead, not released) and counted as lost.
    async fn a_settle_touches_only_the_rows_its_lease_token_still_holds(store: Store) {
        use postback::model::ConversionEvent;
        use postback::store::Settlement;
        let config = demo_config(&store).await;
        let events: Vec<ConversionEvent> = (0..3).map(|i| purchase(&format!("e{i}"))).collect();
        let items: Vec<NewDelivery> = events.iter().map(|e| NewDelivery::new(config, e)).collect();
        let t0 = 1_795_000_000_000;
        store.enqueue(&items, t0).await.unwrap();
        let first = store.claim(config, "slow:1", t0, 1000, 10).await.unwrap();
        assert_eq!(first.len(), 3);
        // The lease expires; another dispatcher re-claims and delivers two of them.
        store.reclaim_expired_leases(t0 + 2000).await.unwrap();
        let second = store.claim(config, "fast:1", t0 + 2000, 1000, 2).await.unwrap();
        assert_eq!(second.len(), 2);
        let delivered = Settlement {
            lease_token: "fast:1".into(),
            done: second.iter().map(|l| l.id).collect(),
            ..Settlement::default()
        };
        assert_eq!(store.settle(delivered).await.unwrap().lost, 0);
        // The first dispatcher comes back and would mark everything dead: only its third row is its own.
        let stale = Settlement {
            lease_token: "slow:1".into(),
            dead: first.iter().map(|l| l.id).collect(),
            ..Settlement::default()
        };
        assert_eq!(store.settle(stale).await.unwrap().lost, 3, "the third row went back to the queue at reclaim");
        assert_eq!(store.queue_counts().await.unwrap(), (1, 0, 0), "nothing delivered was marked dead");
        assert_eq!(store.queue_counts().await.unwrap().0, 1);
    }
}

on_both_engines! {
    /// A refusal of the credential a batch was sent with must not pause a config that was rotated
    /// while the batch was in flight.
    async fn a_pause_applies_only_to_the_credential_that_was_refused(store: Store) {
        let game = store.create_game("Rotating").await.unwrap();
        let config_id = store.create_config(game.id, &x_config("pix01"), Some("x-new")).await.unwrap();
        let pause = |reference: &str| postback::store::Settlement {
            pause: Some(postback::store::Pause {
                config_id,
                credential_ref: Some(reference.to_owned()),
                reason: "token revoked".into(),
            }),
            ..Default::default()
        };
        store.settle(pause("x-old")).await.unwrap();
        assert_eq!(store.config(config_id).await.unwrap().paused_reason, None, "rotated meanwhile: not paused");
        store.settle(pause("x-new")).await.unwrap();
        assert_eq!(store.config(config_id).await.unwrap().paused_reason.as_deref(), Some("token revoked"));
        let rows = store.integrations(game.id).await.unwrap();
        let x = rows.iter().find(|r| r.network == Network::X).unwrap();
        assert_eq!((x.status, x.paused_reason.as_deref()), (IntegrationStatus::Paused, Some("token revoked")));
    }
}

fn purchases(prefix: &str, count: usize) -> Vec<postback::model::ConversionEvent> {
    (0..count)
        .map(|i| {
            postback::model::ConversionEvent::from_json(&json!({"event_id": format!("{prefix}{i}"), "name": "purchase",
                "occurred_at": "2026-11-20T10:15:30Z", "player_id": format!("p{i}"), "consent": "full",
                "email": format!("player{i}@example.com")}))
            .unwrap()
        })
        .collect()
}

on_both_engines! {
    /// While events arrive, claims and settles go in parts of a few hundred rows (short turns at
    /// the write lock); a batch several parts long is still claimed oldest first, whole, once, and
    /// settled with one log row per conversion.
    async fn a_batch_larger_than_a_write_part_is_claimed_and_settled_whole(store: Store) {
        use postback::model::{DeliveryStatus, LogFilter};
        use postback::store::{NewLogEntry, Settlement};
        let config = demo_config(&store).await;
        let events = purchases("big", 1100);
        let items: Vec<NewDelivery> = events.iter().map(|e| NewDelivery::new(config, e)).collect();
        let t0 = 1_795_000_000_000;
        // The enqueue itself makes the parts small (events arrived within the last second).
        store.enqueue(&items, t0).await.unwrap();
        let leased = store.claim(config, "big:1", t0, 60_000, 1050).await.unwrap();
        assert_eq!(leased.len(), 1050);
        let ids: std::collections::BTreeSet<i64> = leased.iter().map(|l| l.id).collect();
        assert_eq!(ids.len(), 1050, "no row claimed twice");
        let claimed_events: std::collections::BTreeSet<&str> = leased.iter().map(|l| l.event_id.as_str()).collect();
        assert!(!claimed_events.contains("big1099"), "the newest rows wait for the next claim");
        assert_eq!(store.queue_counts().await.unwrap(), (50, 1050, 0));

        let log = leased
            .iter()
            .map(|l| NewLogEntry {
                at: t0 + 10,
                config_id: config,
                network: Network::TikTok,
                event_name: l.event_name.clone(),
                event_id: l.event_id.clone(),
                goal_key: String::new(),
                player_id: l.player_id.clone(),
                status: DeliveryStatus::Success,
                http_status: Some(200),
                latency_ms: Some(5),
                attempt: 1,
                request_id: None,
                credential_failure: false,
                error: None,
                request: None,
                item_index: None,
            })
            .collect();
        let done = Settlement {
            lease_token: "big:1".into(),
            at: t0 + 10,
            done: leased.iter().map(|l| l.id).collect(),
            log,
            ..Settlement::default()
        };
        assert_eq!(store.settle(done).await.unwrap().lost, 0);
        assert_eq!(store.queue_counts().await.unwrap(), (50, 0, 0), "every claimed row settled");
        let filter = LogFilter { config_id: Some(config), limit: 2000, ..LogFilter::default() };
        let logged = store.log_page(&filter).await.unwrap();
        assert_eq!(logged.len(), 1050, "one log row per settled conversion");
    }
}

/// Readers that keep overlapping (the dispatcher, the ingest's router, the window) never leave
/// SQLite the instant it needs to start the WAL over; the store restarts it at its write gate,
/// so the WAL stays short under sustained writes instead of growing by every page written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_starts_over_under_sustained_writes_and_overlapping_readers() {
    let dir = tempfile::tempdir().unwrap();
    // A threshold of 8 MiB (the default is 64 MiB), so that a few seconds of writes cross it
    // many times.
    let options = StoreOptions { wal_restart_pages: 2048, ..StoreOptions::default() };
    let store = Store::open_with(dir.path(), options).await.unwrap();
    let game = postback::sandbox::ensure_demo_game(&store, "http://127.0.0.1:9").await.unwrap();
    let config = store.configs(game.id).await.unwrap()[0].id;
    // Two readers of their own (as `postback log` beside the app, or a long page of the window)
    // whose read transactions of 20 ms overlap: at every instant one of them holds a snapshot.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let url = format!("sqlite://{}", dir.path().join(DB_FILE).display());
    let mut readers = Vec::new();
    for offset_ms in [0, 10] {
        let (stop, url) = (stop.clone(), url.clone());
        readers.push(tokio::spawn(async move {
            let mut conn: sqlx::SqliteConnection = sqlx::Connection::connect(&url).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(offset_ms)).await;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
                let _: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM games").fetch_one(&mut *tx).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                tx.commit().await.unwrap();
            }
        }));
    }
    // SQLite gives the WAL a new salt each time it starts over (bytes 16..20 of its header).
    let wal = dir.path().join(format!("{DB_FILE}-wal"));
    let salts = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut seen = std::collections::BTreeSet::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(header) = std::fs::read(&wal).map(|bytes| bytes.get(16..20).map(<[u8]>::to_vec)) {
                    seen.extend(header);
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            seen.len()
        })
    };
    // 4 s of writes (rows of about 1 KB): several checkpoint intervals, many restart thresholds.
    let t0 = 1_795_000_000_000;
    let started = std::time::Instant::now();
    let mut round = 0;
    while started.elapsed() < std::time::Duration::from_secs(4) {
        let mut events = purchases(&format!("wal{round}-"), 2000);
        for event in &mut events {
            event.user_agent = Some("Mozilla/5.0 ".repeat(80));
        }
        let items: Vec<NewDelivery> = events.iter().map(|e| NewDelivery::new(config, e)).collect();
        store.enqueue(&items, t0).await.unwrap();
        round += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
    let restarts = salts.await.unwrap().saturating_sub(1);
    assert!(restarts >= 2, "the WAL started over {restarts} times during {round} enqueues of 2,000 rows of 1 KB");
}

#[tokio::test]
async fn postgres_over_tls_verifies_the_server_certificate() {
    let url = engines::fresh_database().await;
    let ca = std::env::var("POSTBACK_TEST_PG_CA").expect("POSTBACK_TEST_PG_CA from scripts/with-postgres.sh");
    let verified = format!("{url}?sslmode=verify-full&sslrootcert={ca}");
    let store = Store::open_postgres(&verified, engines::options()).await.expect("verify-full against the test CA");
    store.create_game("Over TLS").await.unwrap();
    assert_eq!(store.engine_name(), "postgres");
    // The certificate is really checked: without the right root, verify-full is refused.
    let missing = format!("{url}?sslmode=verify-full&sslrootcert={ca}.missing");
    assert!(Store::open_postgres(&missing, engines::options()).await.is_err());
}

#[tokio::test]
async fn postgres_urls_that_cannot_work_say_what_to_fix_without_the_password() {
    let err = Store::open_postgres("postgres://u:hunter2@127.0.0.1:notaport/db", engines::options()).await.unwrap_err();
    assert!(matches!(err, StoreError::BadDatabaseUrl { .. }), "{err:?}");
    assert!(err.to_string().contains("postgres://USER:PASSWORD@HOST"), "{err}");
    let err = Store::open_postgres("postgres://u:hunter2@127.0.0.1:1/db", engines::options()).await.unwrap_err();
    assert!(matches!(err, StoreError::Unreachable { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("127.0.0.1:1") && !message.contains("hunter2"), "{message}");
}
