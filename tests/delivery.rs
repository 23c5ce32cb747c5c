//! The delivery engine against the sandbox networks over real loopback HTTP, on a real SQLite
//! file: happy path, fault classes, partial rejections, credential pause, dedup, erasure.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use postback::delivery::{now_ms, Credentials, Dispatcher, DispatcherOptions, RunReport};
use postback::ingest::import_ndjson;
use postback::model::{DeliveryStatus, Goal, Health, Network};
use postback::sandbox::{self, Faults, RunningSandbox};
use postback::store::{LogFilter, Store};
use serde_json::json;

struct Rig {
    _dir: tempfile::TempDir,
    store: Store,
    sandbox: RunningSandbox,
    game_id: i64,
    tokens: Arc<Credentials>,
    config_ids: Vec<i64>,
}

fn x_goals() -> Vec<Goal> {
    vec![
        Goal::mapped("launch", "Launch", "game_launch", "tw-sbx01-launch"),
        // Belongs to another pixel: the sandbox refuses it as X does.
        Goal::mapped("buy", "Purchase", "purchase", "tw-other-buy01"),
    ]
}

async fn rig(credential_ref: &str) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let sandbox = sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let game = store.create_game("Test Game").await.unwrap();
    let configs = sandbox::demo_configs(&sandbox.base_url, &["game_launch", "purchase"], x_goals());
    let mut config_ids = Vec::new();
    for c in &configs {
        config_ids.push(store.create_config(game.id, c, Some(credential_ref)).await.unwrap());
    }
    Rig { _dir: dir, store, sandbox, game_id: game.id, tokens: Arc::new(Credentials::without_keychain()), config_ids }
}

fn events(n: usize, name: &str, player: &str) -> String {
    (0..n)
        .map(|i| {
            json!({"event_id": format!("{name}-{player}-{i}"), "name": name, "occurred_at": chrono::Utc::now().to_rfc3339(),
                   "player_id": player, "consent": "full",
                   "click_ids": {"ttclid": "tt", "twclid": "tw", "rdt_cid": "rd"}, "email": format!("p{i}@example.com"),
                   "value": "1.99", "currency": "USD"})
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn fast_options() -> DispatcherOptions {
    let mut o = DispatcherOptions::default();
    o.retry.base = Duration::from_millis(20);
    o.retry.max_attempts = 3;
    o.lease = Duration::from_secs(5);
    o
}

impl Rig {
    async fn import(&self, text: &str) -> postback::ingest::ImportReport {
        import_ndjson(&self.store, self.game_id, text.as_bytes(), now_ms()).await.unwrap()
    }

    async fn dispatch(&self, options: DispatcherOptions) -> RunReport {
        let mut d = Dispatcher::new(self.store.clone(), self.tokens.clone(), options);
        tokio::time::timeout(Duration::from_secs(60), d.run_until_idle()).await.expect("dispatcher finishes").unwrap()
    }

    fn faults(&self, f: Faults) {
        self.sandbox.state.set_faults(f);
    }

    fn stats(&self, network: Network) -> postback::sandbox::NetworkStats {
        self.sandbox.state.stats().remove(&network).unwrap_or_default()
    }

    async fn log(&self, config: usize, status: Option<DeliveryStatus>) -> Vec<postback::model::LogEntry> {
        let filter =
            LogFilter { config_id: Some(self.config_ids[config]), status, limit: 1000, ..LogFilter::default() };
        self.store.log_page(&filter).await.unwrap()
    }
}

#[tokio::test]
async fn happy_path_for_all_three_networks() {
    let rig = rig("sandbox").await;
    let report = rig.import(&events(250, "game_launch", "p1")).await;
    assert_eq!((report.events, report.enqueued, report.duplicates), (250, 750, 0));
    let run = rig.dispatch(fast_options()).await;
    assert_eq!((run.success, run.failed, run.retried), (750, 0, 0));
    for network in Network::ALL {
        let s = rig.stats(network);
        assert_eq!((s.accepted, s.distinct_event_ids, s.duplicates, s.rejected), (250, 250, 0, 0), "{network}");
    }
    assert_eq!(rig.stats(Network::TikTok).requests, 1, "250 events fit in one TikTok request");
    let log = rig.log(0, Some(DeliveryStatus::Success)).await;
    assert_eq!(log.len(), 250);
    assert!(log.iter().all(|e| e.http_status == Some(200) && e.attempt == 1 && e.request_id.is_some()));
    assert_eq!(rig.store.queue_counts().await.unwrap(), (0, 0, 0));
    assert_eq!(rig.store.health(rig.config_ids[0], now_ms()).await.unwrap(), Health::Normal);
}

#[tokio::test]
async fn server_errors_are_retried_then_failed() {
    let rig = rig("sandbox").await;
    rig.import(&events(5, "game_launch", "p1")).await;
    rig.faults(Faults { error_rate: 1.0, status: 503, ..Faults::default() });
    let run = rig.dispatch(fast_options()).await;
    assert_eq!((run.success, run.retried, run.failed), (0, 30, 15), "3 attempts of 5 events on 3 networks");
    let tiktok = rig.log(0, None).await;
    let attempts: Vec<(i64, DeliveryStatus)> =
        tiktok.iter().filter(|e| e.event_id.ends_with("-0")).map(|e| (e.attempt, e.status)).collect();
    assert_eq!(attempts, [(3, DeliveryStatus::Failed), (2, DeliveryStatus::Retried), (1, DeliveryStatus::Retried)]);
    assert!(tiktok[0].error.as_deref().unwrap_or_default().contains("gave up after 3 attempts"));
    assert_eq!(rig.store.queue_counts().await.unwrap().2, 15, "given-up events wait for replay");
    // After the outage, replay delivers them.
    rig.faults(Faults::default());
    for id in &rig.config_ids {
        rig.store.replay_dead(*id, now_ms()).await.unwrap();
    }
    assert_eq!(rig.dispatch(fast_options()).await.success, 15);
}

#[tokio::test]
async fn tiktok_errors_inside_http_200_are_read_from_the_code() {
    let rig = rig("sandbox").await;
    rig.import(&events(3, "game_launch", "p1")).await;
    // 429 is answered by TikTok as HTTP 200 with code 40100.
    rig.faults(Faults { error_rate: 1.0, status: 429, ..Faults::default() });
    rig.dispatch(DispatcherOptions {
        retry: postback::delivery::retry::RetryPolicy { max_attempts: 1, ..Default::default() },
        ..fast_options()
    })
    .await;
    let log = rig.log(0, None).await;
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|e| e.http_status == Some(200) && e.status == DeliveryStatus::Failed), "{log:?}");
    assert!(log[0].error.as_deref().unwrap_or_default().contains("40100"), "{:?}", log[0].error);
}

#[tokio::test]
async fn x_rate_limit_answer_waits_for_the_reset() {
    let rig = rig("sandbox").await;
    rig.import(&events(2, "game_launch", "p1")).await;
    rig.faults(Faults { error_rate: 1.0, status: 429, ..Faults::default() });
    let started = now_ms();
    let mut d = Dispatcher::new(rig.store.clone(), rig.tokens.clone(), fast_options());
    // One turn only: the retry is scheduled, not yet due.
    let _ = tokio::time::timeout(Duration::from_millis(1500), d.run_until_idle()).await;
    let x_log = rig.log(2, Some(DeliveryStatus::Retried)).await;
    assert!(!x_log.is_empty());
    assert_eq!(x_log[0].http_status, Some(429));
    rig.faults(Faults::default());
    rig.dispatch(fast_options()).await;
    let delivered = rig.log(2, Some(DeliveryStatus::Success)).await;
    assert_eq!(delivered.len(), 2);
    // x-rate-limit-reset is at least the next second: nothing was re-sent before it.
    assert!(delivered.iter().all(|e| e.at >= started + 900), "re-sent too early");
}

#[tokio::test]
async fn x_partial_rejections_fail_only_the_bad_conversions() {
    for partial in [false, true] {
        let rig = rig("sandbox").await;
        rig.faults(Faults { x_partial_success: partial, ..Faults::default() });
        rig.import(&format!("{}\n{}", events(4, "game_launch", "p1"), events(3, "purchase", "p1"))).await;
        rig.dispatch(fast_options()).await;
        let ok = rig.log(2, Some(DeliveryStatus::Success)).await;
        let failed = rig.log(2, Some(DeliveryStatus::Failed)).await;
        assert_eq!((ok.len(), failed.len()), (4, 3), "partial={partial}");
        assert!(
            failed
                .iter()
                .all(|e| e.event_name == "purchase"
                    && e.error.as_deref().unwrap_or_default().contains("single event tag"))
        );
        assert_eq!(rig.stats(Network::X).distinct_event_ids, 4);
        assert_eq!(rig.store.queue_counts().await.unwrap().2, 3, "refused conversions are not retried");
    }
}

#[tokio::test]
async fn a_credential_failure_pauses_the_config_until_rotation() {
    let rig = rig("studio-token").await;
    rig.tokens.set_token("studio-token", "wrong-token");
    rig.import(&events(20, "game_launch", "p1")).await;
    let run = rig.dispatch(fast_options()).await;
    assert_eq!(run.success, 0);
    // One attempt per config, then paused: nothing burned.
    assert_eq!(run.failed, 3 * 20, "{run:?}");
    let (ready, leased, dead) = rig.store.queue_counts().await.unwrap();
    assert_eq!((ready, leased, dead), (60, 0, 0));
    for (i, id) in rig.config_ids.iter().enumerate() {
        assert_eq!(rig.store.health(*id, now_ms()).await.unwrap(), Health::CredentialFailures, "config {i}");
        assert_eq!(
            rig.log(i, Some(DeliveryStatus::Failed)).await[0].http_status.map(|s| s == 401 || s == 200),
            Some(true)
        );
    }
    // Rotate: the right tokens, then un-pause.
    for (network, token) in [
        (Network::TikTok, sandbox::TIKTOK_TOKEN),
        (Network::Reddit, sandbox::REDDIT_TOKEN),
        (Network::X, sandbox::X_TOKEN),
    ] {
        rig.tokens.set_token("studio-token", token);
        let index = Network::ALL.iter().position(|n| *n == network).unwrap();
        rig.store.unpause(rig.config_ids[index]).await.unwrap();
        let run = rig.dispatch(fast_options()).await;
        assert_eq!(run.success, 20, "{network}");
    }
    assert_eq!(rig.store.health(rig.config_ids[0], now_ms()).await.unwrap(), Health::Normal);
}

#[tokio::test]
async fn the_same_event_is_never_enqueued_twice() {
    let rig = rig("sandbox").await;
    let text = events(10, "game_launch", "p1");
    assert_eq!(rig.import(&text).await.enqueued, 30);
    let again = rig.import(&format!("{text}\n{text}")).await;
    assert_eq!((again.enqueued, again.duplicates), (0, 60));
    rig.dispatch(fast_options()).await;
    assert_eq!(rig.stats(Network::Reddit).accepted, 10);
    // Delivered events are remembered too.
    assert_eq!(rig.import(&text).await.enqueued, 0);
}

#[tokio::test]
async fn erased_players_are_never_forwarded_again() {
    let rig = rig("sandbox").await;
    rig.import(&format!("{}\n{}", events(5, "game_launch", "alice"), events(5, "game_launch", "bob"))).await;
    rig.dispatch(fast_options()).await;
    rig.import(&events(3, "purchase", "alice")).await;
    let (queued, scrubbed) = rig.store.erase_player("alice", now_ms()).await.unwrap();
    assert_eq!(queued, 3 * 3, "alice's purchases queued for all three configs");
    assert!(scrubbed >= 15);
    let later = rig.import(&events(2, "game_launch", "alice")).await;
    assert_eq!(later.enqueued, 0);
    assert_eq!(later.skipped.get("player_erased"), Some(&6));
    rig.dispatch(fast_options()).await;
    assert_eq!(rig.stats(Network::TikTok).accepted, 10, "only the events delivered before the erasure");
}

#[tokio::test]
async fn bad_lines_are_reported_and_never_stop_the_good_ones() {
    let rig = rig("sandbox").await;
    let text = format!(
        "{}\n{{not json\n\n{}\n{}",
        events(1, "game_launch", "p"),
        r#"{"event_id": "x", "name": "purchase"}"#,
        events(1, "purchase", "q")
    );
    let report = rig.import(&text).await;
    assert_eq!(report.events, 2);
    let lines: Vec<(u64, &str)> = report.errors.iter().map(|e| (e.line, e.field.as_str())).collect();
    assert_eq!(lines, [(2, "event"), (4, "occurred_at")]);
}

#[tokio::test]
async fn no_answer_is_transient_timeouts_and_refused_connections() {
    let slow = rig("sandbox").await;
    slow.import(&events(2, "game_launch", "p1")).await;
    slow.faults(Faults { latency_ms: 1500, ..Faults::default() });
    let mut options = fast_options();
    options.request_timeout = Duration::from_millis(200);
    options.retry.max_attempts = 1;
    let run = slow.dispatch(options).await;
    assert_eq!(run.failed, 6);
    let log = slow.log(1, None).await;
    assert!(
        log.iter().all(|e| e.http_status.is_none() && e.error.as_deref().unwrap_or_default().contains("timed out")),
        "{log:?}"
    );

    // A network that is not there at all: connection refused, a transient failure.
    let rig = rig("sandbox").await;
    rig.import(&events(1, "game_launch", "p1")).await;
    let Rig { sandbox, store, tokens, config_ids, _dir, .. } = rig;
    sandbox.stop().await;
    let mut options = fast_options();
    options.retry.max_attempts = 1;
    let mut dispatcher = Dispatcher::new(store.clone(), tokens, options);
    assert_eq!(dispatcher.run_until_idle().await.unwrap().failed, 3);
    let filter = LogFilter { config_id: Some(config_ids[0]), limit: 10, ..LogFilter::default() };
    let log = store.log_page(&filter).await.unwrap();
    assert!(
        log[0].http_status.is_none() && log[0].error.as_deref().unwrap_or_default().contains("no answer"),
        "{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_rate_limit_wait_keeps_the_batch_leased() {
    let rig = rig("sandbox").await;
    let mut limited = fast_options();
    limited.owner = "limited".into();
    limited.lease = Duration::from_secs(1);
    limited.rates.x_events_per_window = 2;
    limited.rates.x_window = Duration::from_secs(3);
    // Fill X's window, then queue one more event.
    rig.import(&events(2, "game_launch", "a")).await;
    rig.dispatch(limited.clone()).await;
    rig.import(&events(1, "game_launch", "b")).await;

    let started = std::time::Instant::now();
    let mut waiting = Dispatcher::new(rig.store.clone(), rig.tokens.clone(), limited);
    let first = tokio::spawn(async move { waiting.run_until_idle().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A second dispatcher without limits must not take the batch while the first one waits.
    let mut other = fast_options();
    other.owner = "other".into();
    other.rates.enabled = false;
    rig.dispatch(other).await;
    first.await.unwrap().unwrap();

    assert!(started.elapsed() >= Duration::from_millis(1500), "the window was respected");
    let x = rig.stats(Network::X);
    assert_eq!((x.accepted, x.duplicates), (3, 0), "sent once, by the dispatcher that held the lease");
}
