//! Delivery that never loses a conversion, on a real SQLite file and real loopback HTTP to the
//! sandbox: a long outage under a manual clock, panicking tasks, a database that refuses writes
//! for a while, hostile wait headers, two dispatchers on short leases, erasure in flight, rate
//! limits at a small budget, X goals settled one by one, and events too old for a network.

#[macro_use]
mod support;
use support::{events, events_at, fast_options, rig_on, rig_with, x_goals};

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use postback::delivery::{now_ms, Clock, Dispatcher, DispatcherOptions, Hooks, RunReport, SendContext};
use postback::ingest::import_ndjson;
use postback::model::{DeliveryStatus, EngineState, Goal, Network};
use postback::sandbox::{self, Faults};
use postback::store::{Store, StoreOptions};

const DAY_MS: i64 = 24 * 3600 * 1000;

fn launch_goal() -> Vec<Goal> {
    vec![Goal::mapped("launch", "Launch", "game_launch", "tw-sbx01-launch")]
}

/// A laptop offline for three days: no answer is never an attempt, the config probes with
/// backoff capped at a few minutes, and once the network is back every event still inside its
/// network's window arrives exactly once; the one past Reddit's 7 days is Failed, never sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_days_offline_then_every_event_inside_its_window_arrives_once() {
    // The simulated days end now, so that the sandbox (on the real clock) agrees on event ages.
    let start = now_ms() - 3 * DAY_MS;
    let clock = Clock::manual(start);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base_url = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let game = store.create_game("Offline Game").await.unwrap();
    let mut config_ids = Vec::new();
    for config in sandbox::demo_configs(&base_url, &["game_launch"], launch_goal()) {
        config_ids.push(store.create_config(game.id, &config, Some("sandbox")).await.unwrap());
    }
    let at = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339();
    let lines = [
        events_at(1, "game_launch", "five-days-before", Some(&at(start - 5 * DAY_MS))),
        events_at(1, "game_launch", "an-hour-before", Some(&at(start - 3_600_000))),
        events_at(1, "game_launch", "at-the-start", Some(&at(start))),
    ]
    .join("\n");
    let report = import_ndjson(&store, game.id, lines.as_bytes(), start).await.unwrap();
    assert_eq!(report.enqueued, 9);

    let options = DispatcherOptions { clock: clock.clone(), ..DispatcherOptions::default() };
    let mut dispatcher =
        Dispatcher::new(store.clone(), Arc::new(postback::delivery::Credentials::without_keychain()), options);
    let mut run = RunReport::default();
    let mut probes = 0;
    while clock.now_ms() < start + 3 * DAY_MS {
        dispatcher.turn(&mut run).await.unwrap();
        probes += 1;
        let next = store.next_run_at().await.unwrap().expect("events wait");
        assert!(next > clock.now_ms(), "a probe is scheduled in the future");
        assert!(next - clock.now_ms() <= 6 * 60 * 1000, "probes at least every few minutes");
        clock.set_ms(next);
    }
    assert_eq!((run.success, run.retried, run.given_up), (0, 0, 0), "{run:?}");
    assert!(probes > 3 * 24 * 12, "probed every ~5 minutes for three days ({probes})");
    let summaries = store.integrations(game.id).await.unwrap();
    // Offline since the first probe (after the rate limiter's first few milliseconds).
    assert!(
        summaries.iter().all(|s| s.offline_since.is_some_and(|t| (start..start + 1000).contains(&t))),
        "{summaries:?}"
    );
    let reddit_failed = store
        .log_page(&postback::store::LogFilter {
            config_id: Some(config_ids[1]),
            statuses: vec![DeliveryStatus::Failed],
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(reddit_failed.len(), 1, "the 5-day-old event passed Reddit's 7 days while offline");
    assert!(
        reddit_failed[0].error.as_deref().unwrap_or_default().contains("too old for Reddit Ads"),
        "{:?}",
        reddit_failed[0].error
    );

    // The network is back.
    let sandbox = sandbox::start(SocketAddr::from(([127, 0, 0, 1], port))).await.unwrap();
    let done = dispatcher.run_until_idle().await.unwrap();
    assert_eq!(done.success, 8, "{done:?}");
    for (network, expected) in [(Network::TikTok, 3), (Network::Reddit, 2), (Network::X, 3)] {
        let s = sandbox.state.stats().remove(&network).unwrap();
        assert_eq!((s.distinct_event_ids, s.duplicates, s.rejected), (expected, 0, 0), "{network}");
    }
    let delivered = store
        .log_page(&postback::store::LogFilter {
            statuses: vec![DeliveryStatus::Success],
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(delivered.iter().all(|e| e.attempt == 1), "probes while offline are not attempts");
    assert!(store.integrations(game.id).await.unwrap().iter().all(|s| s.offline_since.is_none()));
    sandbox.stop().await;
}

on_both_engines_rig! {
    /// Events past a network's window are Failed with the reason, never sent.
    async fn events_too_old_for_the_network_are_failed_without_sending(engine: Engine) {
        let rig = rig_on(engine, "sandbox", launch_goal()).await;
        let eight_days = (chrono::Utc::now() - chrono::Duration::days(8)).to_rfc3339();
        let month = (chrono::Utc::now() - chrono::Duration::days(31)).to_rfc3339();
        rig.import(&events_at(1, "game_launch", "old", Some(&eight_days))).await;
        rig.import(&events_at(1, "game_launch", "older", Some(&month))).await;
        let run = rig.dispatch(fast_options()).await;
        // Reddit refuses both (7 days); TikTok (28) and X (30) only the month-old one.
        assert_eq!((run.success, run.failed), (2, 4), "{run:?}");
        assert_eq!(rig.stats(Network::Reddit).requests, 0, "nothing was sent to Reddit");
        for (config, name) in [(0, "TikTok Ads"), (1, "Reddit Ads"), (2, "X Ads")] {
            let failed = rig.log(config, Some(DeliveryStatus::Failed)).await;
            assert!(failed.iter().all(|e| e.error.as_deref().unwrap_or_default().contains(&format!("too old for {name}"))));
            assert!(failed.iter().all(|e| e.http_status.is_none()));
        }
    }
}

on_both_engines_rig! {
    /// A task that panics ends neither the dispatcher nor an event: its batch goes back to the
    /// queue and is delivered once the fault is gone; a task that keeps failing pauses its config.
    async fn a_panicking_task_loses_nothing(engine: Engine) {
        let rig = rig_on(engine, "sandbox", launch_goal()).await;
        rig.import(&events(10, "game_launch", "p1")).await;
        let panics_left = Arc::new(AtomicU32::new(2));
        let hook = {
            let left = panics_left.clone();
            move |ctx: SendContext| {
                let left = left.clone();
                Box::pin(async move {
                    if left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
                        panic!("injected bug while sending {} events", ctx.event_ids.len());
                    }
                }) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
            }
        };
        let options = DispatcherOptions { hooks: Hooks { before_send: Some(Arc::new(hook)) }, ..fast_options() };
        let run = rig.dispatch(options).await;
        assert_eq!((run.panics, run.success), (2, 30), "{run:?}");
        for network in Network::ALL {
            let s = rig.stats(network);
            assert_eq!((s.distinct_event_ids, s.duplicates), (10, 0), "{network}");
        }

        // Always panicking: after three failures in a row the config pauses with the reason.
        rig.import(&events(2, "purchase", "p2")).await;
        let tiktok = rig.config_ids[0];
        let always = move |ctx: SendContext| {
            Box::pin(async move {
                if ctx.config_id == tiktok {
                    panic!("always broken");
                }
            }) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        };
        let options = DispatcherOptions { hooks: Hooks { before_send: Some(Arc::new(always)) }, ..fast_options() };
        let run = rig.dispatch(options).await;
        assert_eq!(run.panics, 3, "{run:?}");
        let paused = rig.store.config(tiktok).await.unwrap().paused_reason.unwrap_or_default();
        assert!(paused.contains("always broken") && paused.contains("3 times"), "{paused}");
        assert_eq!(rig.store.pending_count(tiktok).await.unwrap(), 2, "its events are kept");
    }
}

/// The database refuses writes for a while (another process holds the write lock longer than
/// the busy timeout): the dispatcher reports "retrying", backs off, and delivers everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_refuses_writes_for_a_while_stops_nothing() {
    let rig = rig_with("sandbox", launch_goal()).await;
    rig.import(&events(20, "game_launch", "p1")).await;
    let store = Store::open_with(
        rig.dir.path(),
        StoreOptions { busy_timeout: Duration::from_millis(50), ..Default::default() },
    )
    .await
    .unwrap();
    // Another connection takes the write lock and keeps it for 1.5 s.
    let mut blocker = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
        "sqlite://{}",
        rig.dir.path().join(postback::store::DB_FILE).display()
    ))
    .await
    .unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut blocker).await.unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
        blocker
    });
    let mut dispatcher = Dispatcher::new(store, rig.tokens.clone(), fast_options());
    let mut states = dispatcher.subscribe();
    let seen = tokio::spawn(async move {
        let mut retrying = None;
        while states.changed().await.is_ok() {
            if let EngineState::Retrying { reason, .. } = &*states.borrow() {
                retrying.get_or_insert(reason.clone());
            }
        }
        retrying
    });
    let run = dispatcher.run_until_idle().await.expect("recovers by itself");
    drop(dispatcher);
    let _blocker = release.await.unwrap();
    assert!(run.failed_turns >= 1, "{run:?}");
    assert_eq!(run.success, 60);
    let reason = seen.await.unwrap().expect("the window was told delivery is retrying");
    assert!(reason.contains("locked"), "{reason}");
    for network in Network::ALL {
        assert_eq!(rig.stats(network).distinct_event_ids, 20, "{network}");
    }
}

on_both_engines_rig! {
    /// A broken or hostile `Retry-After` / `x-rate-limit-reset` never panics or parks delivery:
    /// every wait is clamped, and the events go out afterwards.
    async fn hostile_wait_headers_are_clamped(engine: Engine) {
        for value in ["18446744073709551615", "9999999999999", "-5", "Fri, 31 Dec 9999 23:59:59 GMT", "soon"] {
            let rig = rig_on(engine, "sandbox", launch_goal()).await;
            rig.import(&events(3, "game_launch", "p1")).await;
            rig.faults(Faults { fail_next: 3, status: 503, retry_after: Some(value.into()), ..Faults::default() });
            let mut options = fast_options();
            options.retry.max_wait = Duration::from_millis(300);
            let run = rig.dispatch(options).await;
            assert_eq!((run.success, run.retried), (9, 9), "{value}: {run:?}");
            for network in Network::ALL {
                let s = rig.stats(network);
                assert_eq!((s.distinct_event_ids, s.duplicates), (3, 0), "{value} {network}");
            }
        }
    }
}

on_both_engines_rig! {
    /// Two dispatchers, a lease shorter than one request: the running batch keeps its lease alive,
    /// so the other never re-claims it — nothing is sent twice, nothing delivered is marked dead.
    async fn two_dispatchers_on_short_leases_never_take_a_running_batch(engine: Engine) {
        let rig = rig_on(engine, "sandbox", launch_goal()).await;
        rig.import(&events(30, "game_launch", "p1")).await;
        rig.faults(Faults { latency_ms: 900, ..Faults::default() });
        let options = |owner: &str| {
            let mut o = fast_options();
            o.owner = owner.into();
            o.lease = Duration::from_millis(300);
            o.requests_per_claim = 1;
            o.rates.enabled = false;
            o
        };
        let mut first = Dispatcher::new(rig.store.clone(), rig.tokens.clone(), options("first"));
        let mut second = Dispatcher::new(rig.store.clone(), rig.tokens.clone(), options("second"));
        let both = async {
            tokio::join!(first.run_until_idle(), async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                second.run_until_idle().await
            })
        };
        // Without a heartbeat the two take each other's batches forever.
        let (a, b) = tokio::time::timeout(Duration::from_secs(60), both).await.expect("both dispatchers finish");
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.success + b.success, 90, "{a:?} {b:?}");
        assert_eq!(a.lost_leases + b.lost_leases, 0);
        for network in Network::ALL {
            let s = rig.stats(network);
            assert_eq!((s.distinct_event_ids, s.duplicates), (30, 0), "{network}: no event sent twice");
        }
        assert_eq!(rig.store.queue_counts().await.unwrap(), (0, 0, 0), "nothing dead, nothing left");
    }
}

on_both_engines_rig! {
    /// A player erased while their events wait to be sent (here: right before the request, after
    /// any rate-limit wait) is not forwarded; the log never holds the raw player id.
    async fn a_player_erased_in_flight_is_not_sent(engine: Engine) {
        let rig = rig_on(engine, "sandbox", launch_goal()).await;
        let line = |event_id: &str, player: &str| {
            serde_json::json!({"event_id": event_id, "name": "game_launch", "occurred_at": chrono::Utc::now().to_rfc3339(),
                "player_id": player, "consent": "full", "click_ids": {"ttclid": "t", "twclid": "w", "rdt_cid": "r"}})
            .to_string()
        };
        let text = [line("e1", "player-alice-7x"), line("e2", "player-bob-9q"), line("e3", "player-alice-7x")].join("\n");
        rig.import(&text).await;
        let store = rig.store.clone();
        let erase = move |_: SendContext| {
            let store = store.clone();
            Box::pin(async move {
                store.erase_player("player-alice-7x", now_ms()).await.unwrap();
            }) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        };
        let options = DispatcherOptions { hooks: Hooks { before_send: Some(Arc::new(erase)) }, ..fast_options() };
        let run = rig.dispatch(options).await;
        // Bob's event on three networks. Alice's conversions are dropped from every batch that
        // held them when she was erased (at least the first sender's two); a config that claims
        // after the erasure never sees hers (how many did depends on the engine's pace).
        assert_eq!(run.success, 3, "{run:?}");
        assert!((2..=6).contains(&run.dropped_erased), "{run:?}");
        for network in Network::ALL {
            assert_eq!(rig.stats(network).distinct_event_ids, 1, "{network}: only bob's event");
        }
        // No log row names a player; bob's rows are filed under a keyed hash, not his id.
        for config in 0..3 {
            for entry in rig.log(config, None).await {
                let text = format!("{entry:?}");
                assert!(!text.contains("player-"), "{text}");
            }
        }
        assert_eq!(rig.store.erase_player("player-bob-9q", now_ms()).await.unwrap(), (0, 3), "erasure finds bob's rows");
    }
}

on_both_engines_rig! {
    /// A rate limit is never exceeded, not even by one batch: with a budget of 100 X events per
    /// window, 300 queued conversions go out as requests of at most 100, one window apart.
    async fn a_small_x_budget_sizes_the_batches(engine: Engine) {
        let rig = rig_on(engine, "sandbox", launch_goal()).await;
        rig.faults(Faults { x_window_limit: 100, x_window_secs: 2, ..Faults::default() });
        rig.import(&events(300, "game_launch", "p1")).await;
        let mut options = fast_options();
        options.rates.x_events_per_window = 100;
        options.rates.x_window = Duration::from_secs(2);
        let started = std::time::Instant::now();
        let run = rig.dispatch(options).await;
        assert_eq!(run.success, 900);
        let x = rig.stats(Network::X);
        assert_eq!((x.accepted, x.rejected, x.largest_batch), (300, 0, 100), "{x:?}");
        assert_eq!(x.requests, 3, "no 429: every request fitted the window");
        assert!(started.elapsed() >= Duration::from_secs(4), "three windows");
    }
}

on_both_engines_rig! {
    /// X: one purchase is two conversions (two goals). X refusing one goal's tag fails only that
    /// conversion; the other is delivered and stays delivered.
    async fn x_refusing_one_goal_does_not_fail_the_other(engine: Engine) {
        let goals = vec![
            Goal::mapped("first", "First purchase", "purchase", "tw-sbx01-buy01"),
            Goal::mapped("any", "Any purchase", "purchase", "tw-other-buy02"),
        ];
        let rig = rig_on(engine, "sandbox", goals).await;
        let report = rig.import(&events(1, "purchase", "p1")).await;
        assert_eq!(report.enqueued, 4, "TikTok, Reddit and one X conversion per goal");
        rig.dispatch(fast_options()).await;
        let x_log = rig.log(2, None).await;
        let by_goal: Vec<(&str, DeliveryStatus)> = x_log.iter().map(|e| (e.goal_key.as_str(), e.status)).collect();
        assert!(by_goal.contains(&("first", DeliveryStatus::Success)), "{by_goal:?}");
        assert!(by_goal.contains(&("any", DeliveryStatus::Failed)), "{by_goal:?}");
        assert_eq!(by_goal.len(), 2);
        assert_eq!(rig.stats(Network::X).distinct_event_ids, 1);
        // Replaying the event re-sends only the refused conversion.
        let replayed = rig
            .store
            .replay(&postback::store::Replay { config_id: rig.config_ids[2], ..Default::default() }, now_ms())
            .await
            .unwrap();
        assert_eq!(replayed, Ok(1));
    }
}

on_both_engines_rig! {
    /// Replay refuses an event that was delivered, and one that is unknown.
    async fn replay_refuses_delivered_events(engine: Engine) {
        let rig = rig_on(engine, "sandbox", x_goals()).await;
        rig.import(&events(1, "game_launch", "p1")).await;
        rig.dispatch(fast_options()).await;
        let replay = postback::store::Replay {
            config_id: rig.config_ids[0],
            event_ids: vec!["game_launch-p1-0".into()],
            ..Default::default()
        };
        let refused = rig.store.replay(&replay, now_ms()).await.unwrap().unwrap_err();
        assert!(refused.to_string().contains("was delivered"), "{refused}");
        let unknown = postback::store::Replay { event_ids: vec!["nope".into()], ..replay };
        assert!(rig.store.replay(&unknown, now_ms()).await.unwrap().is_err());
    }
}

/// A config whose stored settings no longer parse is paused with the reason; the others go on.
#[tokio::test]
async fn a_config_that_cannot_be_read_is_paused_and_the_others_deliver() {
    let rig = rig_with("sandbox", launch_goal()).await;
    rig.import(&events(4, "game_launch", "p1")).await;
    let mut raw = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
        "sqlite://{}",
        rig.dir.path().join(postback::store::DB_FILE).display()
    ))
    .await
    .unwrap();
    sqlx::query("UPDATE configs SET trigger_events = '{broken' WHERE id = ?")
        .bind(rig.config_ids[1])
        .execute(&mut raw)
        .await
        .unwrap();
    let run = rig.dispatch(fast_options()).await;
    assert_eq!(run.success, 8, "TikTok and X deliver: {run:?}");
    let summaries = rig.store.integrations(rig.game_id).await;
    assert!(summaries.is_err(), "the damaged config is reported, not hidden");
    sqlx::query("UPDATE configs SET trigger_events = '[\"game_launch\"]' WHERE id = ?")
        .bind(rig.config_ids[1])
        .execute(&mut raw)
        .await
        .unwrap();
    let reddit = rig.store.config(rig.config_ids[1]).await.unwrap();
    let reason = reddit.paused_reason.unwrap_or_default();
    assert!(reason.contains("cannot be read") && reason.contains("trigger events"), "{reason}");
    assert_eq!(rig.store.pending_count(rig.config_ids[1]).await.unwrap(), 4, "its events are kept");
}
