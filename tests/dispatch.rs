//! The delivery engine on both store engines: events imported, delivered by the dispatcher to
//! the sandbox networks over real loopback HTTP, each once; imported again, none sent again.

#[macro_use]
mod engines;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use postback::delivery::{now_ms, Credentials, Dispatcher, DispatcherOptions};
use postback::ingest::import_ndjson;
use postback::model::{Goal, Network};
use postback::sandbox;
use serde_json::json;

fn launches(n: usize) -> String {
    let at = chrono::Utc::now().to_rfc3339();
    (0..n)
        .map(|i| {
            json!({"event_id": format!("launch-{i}"), "name": "game_launch", "occurred_at": at,
                   "player_id": format!("p{i}"), "consent": "full",
                   "click_ids": {"ttclid": "tt", "twclid": "tw", "rdt_cid": "rd"}})
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn options() -> DispatcherOptions {
    let mut o = DispatcherOptions::default();
    o.retry.base = Duration::from_millis(20);
    o.lease = Duration::from_secs(5);
    o
}

on_both_engines! {
    async fn imported_events_reach_all_three_networks_once(store: Store) {
        let sandbox = sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        let game = store.create_game("Test Game").await.unwrap();
        let goals = vec![Goal::mapped("launch", "Launch", "game_launch", "tw-sbx01-launch")];
        for config in sandbox::demo_configs(&sandbox.base_url, &["game_launch", "purchase"], goals) {
            store.create_config(game.id, &config, Some("sandbox")).await.unwrap();
        }
        let report = import_ndjson(&store, game.id, launches(250).as_bytes(), now_ms()).await.unwrap();
        assert_eq!((report.events, report.enqueued, report.duplicates), (250, 750, 0));
        let mut dispatcher = Dispatcher::new(store.clone(), Arc::new(Credentials::without_keychain()), options());
        let run = tokio::time::timeout(Duration::from_secs(60), dispatcher.run_until_idle()).await.unwrap().unwrap();
        assert_eq!((run.success, run.failed, run.retried), (750, 0, 0));
        for network in Network::ALL {
            let stats = sandbox.state.stats().remove(&network).unwrap_or_default();
            assert_eq!((stats.accepted, stats.distinct_event_ids, stats.duplicates), (250, 250, 0), "{network}");
        }
        assert_eq!(store.queue_counts().await.unwrap(), (0, 0, 0));
        // The same file again: every conversion is a duplicate, nothing is sent.
        let again = import_ndjson(&store, game.id, launches(250).as_bytes(), now_ms()).await.unwrap();
        assert_eq!((again.enqueued, again.duplicates), (0, 750));
        let run = dispatcher.run_until_idle().await.unwrap();
        assert_eq!(run.success, 0);
    }
}

/// PostgreSQL: one worker at a time delivers a config. While another holds it, a worker sends
/// nothing of it; once the holder is gone (its connection closed, as when a worker dies), the
/// worker takes it over within seconds and delivers everything once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_held_by_another_worker_is_taken_over_when_that_worker_goes() {
    let (test, other_worker) = engines::open_pair(engines::Engine::Postgres).await;
    let store = test.store.clone();
    let sandbox = sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let game = store.create_game("Test Game").await.unwrap();
    let [tiktok, _, _] = sandbox::demo_configs(&sandbox.base_url, &["game_launch"], Vec::new());
    let config = store.create_config(game.id, &tiktok, Some("sandbox")).await.unwrap();
    import_ndjson(&store, game.id, launches(200).as_bytes(), now_ms()).await.unwrap();
    let held = other_worker.lead_config(config).await.unwrap().expect("the other worker takes the config");
    assert!(store.lead_config(config).await.unwrap().is_none(), "a held config is refused to a second worker");

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut dispatcher = Dispatcher::new(store.clone(), Arc::new(Credentials::without_keychain()), options());
    let worker = tokio::spawn(async move { dispatcher.run(stopped).await });
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sent = |network| sandbox.state.stats().remove(&network).unwrap_or_default();
    assert_eq!(sent(Network::TikTok).requests, 0, "a config another worker holds was sent");
    assert_eq!(store.pending_count(config).await.unwrap(), 200);

    // The holder goes away: its connection closes and the lock with it.
    let gone = std::time::Instant::now();
    drop(held);
    drop(other_worker);
    while sent(Network::TikTok).accepted < 200 {
        assert!(gone.elapsed() < Duration::from_secs(15), "not taken over within 15 s: {:?}", sent(Network::TikTok));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("taken over and delivered {:.2} s after the holder went", gone.elapsed().as_secs_f64());
    assert_eq!((sent(Network::TikTok).distinct_event_ids, sent(Network::TikTok).duplicates), (200, 0));
    stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(5), worker).await.expect("stops").unwrap();
}

/// PostgreSQL: a small X budget (50 conversions per 5 s) holds across workers. Two workers run;
/// the one delivering the config stops right after its first full window's batch, and the one
/// that takes it over counts that batch (X's window seeded from the shared log): no two batches
/// closer than a window together exceed the budget, and every conversion arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_x_budget_holds_across_a_takeover() {
    const BUDGET: u64 = 50;
    const WINDOW: Duration = Duration::from_secs(5);
    let (test, second) = engines::open_pair(engines::Engine::Postgres).await;
    let store = test.store.clone();
    let sandbox = sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    sandbox.state.set_faults(sandbox::Faults {
        x_window_limit: BUDGET,
        x_window_secs: WINDOW.as_secs(),
        ..sandbox::Faults::default()
    });
    let game = store.create_game("Test Game").await.unwrap();
    let goals = vec![Goal::mapped("launch", "Launch", "game_launch", "tw-sbx01-launch")];
    let [_, _, x] = sandbox::demo_configs(&sandbox.base_url, &["game_launch"], goals);
    store.create_config(game.id, &x, Some("sandbox")).await.unwrap();
    import_ndjson(&store, game.id, launches(150).as_bytes(), now_ms()).await.unwrap();

    let mut limited = options();
    limited.rates.x_events_per_window = BUDGET;
    limited.rates.x_window = WINDOW;
    let worker = |store: postback::store::Store| {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut dispatcher = Dispatcher::new(store, Arc::new(Credentials::without_keychain()), limited.clone());
        (stop, tokio::spawn(async move { dispatcher.run(stopped).await }))
    };
    let (stop_first, first) = worker(store.clone());
    // The first worker leads (the second starts once it does).
    let accepted = || sandbox.state.stats().remove(&Network::X).unwrap_or_default().accepted;
    let started = std::time::Instant::now();
    let mut batches: Vec<(std::time::Instant, u64)> = Vec::new();
    let mut seen = 0;
    let mut watch = |batches: &mut Vec<(std::time::Instant, u64)>| {
        let now = accepted();
        if now > seen {
            batches.push((std::time::Instant::now(), now - seen));
            seen = now;
        }
        now
    };
    while watch(&mut batches) < BUDGET {
        assert!(started.elapsed() < Duration::from_secs(15), "the first window's batch never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (stop_second, second_worker) = worker(second.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop_first.send_replace(true);
    tokio::time::timeout(Duration::from_secs(5), first).await.expect("the first worker stops").unwrap();
    while watch(&mut batches) < 150 {
        assert!(started.elapsed() < Duration::from_secs(40), "not all delivered: {batches:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop_second.send_replace(true);
    tokio::time::timeout(Duration::from_secs(5), second_worker).await.expect("the second worker stops").unwrap();

    let x = sandbox.state.stats().remove(&Network::X).unwrap_or_default();
    assert_eq!((x.distinct_event_ids, x.duplicates), (150, 0), "{x:?}");
    // Batches seen (polled every 10 ms) less than a window apart, less the polling's 10 ms and some jitter.
    for (i, (at, n)) in batches.iter().enumerate() {
        let within: u64 = batches[i..]
            .iter()
            .take_while(|(later, _)| later.duration_since(*at) < WINDOW - Duration::from_millis(50))
            .map(|(_, m)| m)
            .sum();
        assert!(within <= BUDGET, "{within} conversions within one window from {n} at batch {i}: {batches:?}");
    }
    eprintln!(
        "batches at {:?} s",
        batches
            .iter()
            .map(|(at, n)| (format!("{:.2}", at.duration_since(started).as_secs_f64()), n))
            .collect::<Vec<_>>()
    );
}

/// PostgreSQL: workers split the configs. One worker starts alone and takes both; once a second
/// worker is running, the first hands one config over between two of its turns, and both
/// deliver, every conversion once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_worker_gets_its_share_of_the_configs() {
    let (test, second) = engines::open_pair(engines::Engine::Postgres).await;
    let store = test.store.clone();
    let sandbox = sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let game = store.create_game("Test Game").await.unwrap();
    let [tiktok, reddit, _] = sandbox::demo_configs(&sandbox.base_url, &["game_launch"], Vec::new());
    store.create_config(game.id, &tiktok, Some("sandbox")).await.unwrap();
    store.create_config(game.id, &reddit, Some("sandbox")).await.unwrap();
    // 8 requests of 1,000 per config at 1 request a second: deliveries last several seconds.
    import_ndjson(&store, game.id, launches(8_000).as_bytes(), now_ms()).await.unwrap();
    let mut slow = options();
    slow.rates.requests_per_second = 1.0;
    slow.rates.request_burst = 1;
    let worker = |store: postback::store::Store| {
        let mut dispatcher = Dispatcher::new(store, Arc::new(Credentials::without_keychain()), slow.clone());
        tokio::spawn(async move { dispatcher.run_until_idle().await })
    };
    let first = worker(store.clone());
    let sent = |network| sandbox.state.stats().remove(&network).unwrap_or_default();
    let alone = std::time::Instant::now();
    while sent(Network::TikTok).requests == 0 || sent(Network::Reddit).requests == 0 {
        assert!(alone.elapsed() < Duration::from_secs(10), "the first worker did not take both configs");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let joined = std::time::Instant::now();
    let second_worker = worker(second.clone());
    let (first, second_report) = tokio::time::timeout(Duration::from_secs(60), async {
        (first.await.unwrap().unwrap(), second_worker.await.unwrap().unwrap())
    })
    .await
    .expect("both workers finish");
    eprintln!(
        "first worker {} conversions, second {} (joined {:.1} s after the first took both, all done {:.1} s later)",
        first.success,
        second_report.success,
        joined.duration_since(alone).as_secs_f64(),
        joined.elapsed().as_secs_f64()
    );
    assert!(second_report.success >= 1_000, "the second worker got no config: {second_report:?}");
    assert!(first.success >= 1_000, "{first:?}");
    assert_eq!(first.success + second_report.success, 16_000);
    for network in [Network::TikTok, Network::Reddit] {
        assert_eq!((sent(network).distinct_event_ids, sent(network).duplicates), (8_000, 0), "{network}");
    }
}
