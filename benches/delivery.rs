//! Delivery engine figures on this machine: enqueue rate, end-to-end durable delivery to the
//! sandbox (separate process, no rate limit), filtered log page latency on a 5 M-row log, and
//! the dispatcher's memory over 1 M events. Run with `cargo bench --bench delivery`
//! (`BENCH_SCALE=0.1` for a quick pass); on PostgreSQL with `-- --database URL` (common/mod.rs),
//! where delivery runs as two workers.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use postback::delivery::{now_ms, Credentials, Dispatcher, DispatcherOptions};
use postback::model::{ConversionEvent, DeliveryStatus, PostbackConfig, RedditConfig, TikTokConfig};
use postback::store::{LogFilter, NewDelivery, Store, StoreOptions};
use serde_json::json;

mod common;
use common::{engine_name, open_store, rss_mb, sandbox_process, scale};

// The same allocator as the binaries, so the figures are theirs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn event(i: u64) -> ConversionEvent {
    ConversionEvent::from_json(&json!({"event_id": format!("bench-{i}"), "name": "purchase",
        "occurred_at": chrono::Utc::now().to_rfc3339(), "player_id": format!("p{}", i % 10_000), "consent": "full",
        "click_ids": {"ttclid": "E.C.P.abc", "rdt_cid": "rdt-1"}, "email": format!("player{i}@example.com"),
        "value": "4.99", "currency": "USD"}))
    .expect("event")
}

fn tiktok_config(base_url: &str) -> PostbackConfig {
    PostbackConfig::TikTok(TikTokConfig {
        pixel_code: "CBENCH000001".into(),
        trigger_events: vec!["purchase".to_owned()],
        test_event_code: None,
        base_url: Some(base_url.to_owned()),
    })
}

/// The player key in memory: a benchmark measures the store, not the Secret Service (whose
/// first answer in a fresh session is sometimes "locked").
fn bench_options() -> StoreOptions {
    StoreOptions {
        keychain: Some(std::sync::Arc::new(postback::secrets::MemoryKeychain::default())),
        ..StoreOptions::default()
    }
}

/// A store with a game and its TikTok and Reddit configs; on PostgreSQL also what opens a
/// second worker's handle on the same database.
async fn setup(dir: &std::path::Path, base_url: &str) -> (Store, i64, Vec<i64>, Option<(String, StoreOptions)>) {
    // BENCH_CACHE_KIB tries another SQLite page cache size than the default.
    let mut options = bench_options();
    if let Some(kib) = std::env::var("BENCH_CACHE_KIB").ok().and_then(|v| v.parse().ok()) {
        options.cache_kib = kib;
    }
    let (store, database_url) = open_store(dir, options.clone()).await;
    let game = store.create_game("Bench").await.expect("game");
    let triggers = vec!["purchase".to_owned()];
    let url = Some(base_url.to_owned());

    let tiktok = tiktok_config(base_url);
    let reddit = PostbackConfig::Reddit(RedditConfig {
        pixel_id: "a2_bench01".into(),
        trigger_events: triggers,
        test_id: None,
        base_url: url,
    });
    let t = store.create_config(game.id, &tiktok, Some("sandbox")).await.expect("config");
    let r = store.create_config(game.id, &reddit, Some("sandbox")).await.expect("config");
    (store, game.id, vec![t, r], database_url.map(|url| (url, options)))
}

async fn enqueue_all(store: &Store, configs: &[i64], n: u64) -> Duration {
    enqueue_in_batches(store, configs, n, 10_000).await
}

async fn enqueue_in_batches(store: &Store, configs: &[i64], n: u64, batch: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut i = 0;
    while i < n {
        let events: Vec<ConversionEvent> = (i..(i + batch).min(n)).map(event).collect();
        let items: Vec<NewDelivery> =
            events.iter().flat_map(|e| configs.iter().map(move |c| NewDelivery::new(*c, e))).collect();
        let started = Instant::now();
        store.enqueue(&items, now_ms()).await.expect("enqueue");
        total += started.elapsed();
        i += batch;
    }
    total
}

fn unlimited() -> DispatcherOptions {
    let mut o = DispatcherOptions::default();
    o.rates.enabled = false;
    o.requests_per_claim = 4;
    o
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    postback::tune_allocator();
    if let Ok(filter) = std::env::var("BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    if std::env::var("BENCH_PHASE").as_deref() == Ok("memory") {
        let base_url = std::env::var("BENCH_SANDBOX").expect("BENCH_SANDBOX");
        return memory_phase(&base_url).await;
    }
    let (_sandbox, base_url) = sandbox_process();

    // 1. Enqueue + 2. end-to-end delivery.
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _, configs, second_worker) = setup(dir.path(), &base_url).await;
    let n = scale(200_000, 1000);
    println!("engine: {}", engine_name());
    let took = enqueue_all(&store, &configs[..1], n).await;
    println!(
        "enqueue: {n} events in {:.2} s = {:.0} events/s (batches of 10,000, dedup included)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    let took = enqueue_all(&store, &configs[1..], n).await;
    println!(
        "enqueue: {n} more for a second config in {:.2} s = {:.0} events/s",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    // The cost of durable acknowledgements: 1,000 events per commit, synced (FULL) or not
    // (SQLite's choice; PostgreSQL's commits are synchronous).
    let choices: &[bool] = if second_worker.is_some() { &[true] } else { &[true, false] };
    for &durable in choices {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = StoreOptions { durable_enqueue: durable, ..bench_options() };
        let (other, _) = open_store(dir.path(), options).await;
        let game = other.create_game("Durability").await.expect("game");
        let config = other.create_config(game.id, &tiktok_config(&base_url), Some("sandbox")).await.expect("config");
        let m = scale(100_000, 1000);
        let took = enqueue_in_batches(&other, &[config], m, 1_000).await;
        println!(
            "enqueue, 1,000 events per commit, {}: {:.0} events/s ({:.2} ms per commit)",
            match (second_worker.is_some(), durable) {
                (true, _) => "synchronous commit",
                (false, true) => "synchronous=FULL (durable, the default)",
                (false, false) => "synchronous=NORMAL",
            },
            m as f64 / took.as_secs_f64(),
            took.as_secs_f64() * 1000.0 / (m as f64 / 1000.0)
        );
        other.close().await;
    }
    let started = Instant::now();
    let worker = |store: Store| async move {
        let mut dispatcher = Dispatcher::new(store, Arc::new(Credentials::without_keychain()), unlimited());
        dispatcher.run_until_idle().await.expect("dispatch")
    };
    // On PostgreSQL two workers (two processes' worth of connections) share the configs.
    let (report, workers) = match &second_worker {
        None => (worker(store.clone()).await, "one worker".to_owned()),
        Some((url, options)) => {
            let second = Store::open_postgres(url, options.clone()).await.expect("second worker's store");
            let (a, b) = tokio::join!(worker(store.clone()), worker(second.clone()));
            second.close().await;
            let shares = format!("two workers, delivering {} and {}", a.success, b.success);
            (
                postback::delivery::RunReport {
                    success: a.success + b.success,
                    requests: a.requests + b.requests,
                    ..a
                },
                shares,
            )
        }
    };
    let took = started.elapsed();
    println!(
        "end-to-end: {} deliveries ({} requests) to the sandbox in {:.2} s = {:.0} events/s durable (logged, acked; {})",
        report.success,
        report.requests,
        took.as_secs_f64(),
        report.success as f64 / took.as_secs_f64(),
        workers
    );
    store.close().await;
    // `BENCH_PHASE=delivery`: phases 1 and 2 only, e.g. under a profiler.
    if std::env::var("BENCH_PHASE").as_deref() == Ok("delivery") {
        return;
    }

    // 3. Filtered log page on a 5 M-row log.
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _, configs, on_postgres) = setup(dir.path(), &base_url).await;
    let rows = scale(5_000_000, 1000);
    let started = Instant::now();
    let now = now_ms();
    store.fill_synthetic_log(configs[0], rows, now, 30 * 24 * 3600 * 1000).await.expect("fill");
    println!("log: {rows} rows written in {:.1} s", started.elapsed().as_secs_f64());
    let mut timings = Vec::new();
    for round in 0..200 {
        let status = [DeliveryStatus::Failed, DeliveryStatus::Success, DeliveryStatus::Retried][round % 3];
        let since = now - [3_600_000, 86_400_000, 7 * 86_400_000, 30 * 86_400_000][round % 4];
        let mut filter =
            LogFilter { since_ms: Some(since), statuses: vec![status], limit: 100, ..LogFilter::default() };
        let started = Instant::now();
        let page = store.log_page(&filter).await.expect("page");
        // And the next page by keyset.
        filter.before = page.last().map(|e| (e.at, e.id));
        store.log_page(&filter).await.expect("page 2");
        timings.push(started.elapsed().as_secs_f64() * 1000.0 / 2.0);
    }
    timings.sort_by(|a, b| a.total_cmp(b));
    println!(
        "log page (time range × status, newest 100, keyset): p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms over 400 queries",
        timings[timings.len() / 2],
        timings[timings.len() * 95 / 100],
        timings[timings.len() - 1]
    );
    let started = Instant::now();
    let day = LogFilter { since_ms: Some(now - 86_400_000), ..LogFilter::default() };
    let totals = store.log_summary(&day, now).await.expect("summary").totals;
    println!("log totals per status, last 24 h: {:.1} ms {totals:?}", started.elapsed().as_secs_f64() * 1000.0);

    // Erasure on the big log: through the player index, in small transactions, while a
    // writer (the dispatcher's stand-in) keeps committing; its slowest commit is the stall.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                let started = Instant::now();
                store.pause(-1, "bench").await.expect("write");
                slowest = slowest.max(started.elapsed());
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            slowest
        })
    };
    let mut erase_times = Vec::new();
    for player in 0..20 {
        let started = Instant::now();
        // The synthetic log spreads its rows over 100,000 players: 50 rows each on 5 M rows.
        store.erase_player(&format!("player-{player}"), now).await.expect("erase");
        erase_times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let slowest_write = writer.await.expect("writer");
    erase_times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "erase a player on a {rows}-row log: p50 {:.2} ms, max {:.2} ms; a concurrent writer's slowest commit {:.2} ms",
        erase_times[erase_times.len() / 2],
        erase_times[erase_times.len() - 1],
        slowest_write.as_secs_f64() * 1000.0
    );
    store.close().await;

    // 4. Dispatcher memory over 1 M events, in a fresh process: RSS left behind by the phases
    // above (glibc keeps freed memory) must not count. (The engine's own memory is the
    // server's on PostgreSQL: this phase is SQLite's.)
    if on_postgres.is_some() {
        return;
    }
    let child = Command::new(std::env::current_exe().expect("bench binary"))
        .env("BENCH_PHASE", "memory")
        .env("BENCH_SANDBOX", &base_url)
        .stderr(Stdio::inherit())
        .output()
        .expect("memory phase runs");
    print!("{}", String::from_utf8_lossy(&child.stdout));
}

/// Phase 4 alone: enqueue 1 M events, then deliver them while sampling this process's RSS.
async fn memory_phase(base_url: &str) {
    // 4. Dispatcher memory over 1 M events.
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _, configs, _) = setup(dir.path(), base_url).await;
    let n = scale(1_000_000, 1000);
    enqueue_all(&store, &configs[..1], n).await;
    let samples = Arc::new(std::sync::Mutex::new(Vec::<(f64, f64)>::new()));
    let sampler = {
        let samples = samples.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            loop {
                samples.lock().expect("samples").push((started.elapsed().as_secs_f64(), rss_mb()));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    let started = Instant::now();
    let mut dispatcher = Dispatcher::new(store.clone(), Arc::new(Credentials::without_keychain()), unlimited());
    let report = dispatcher.run_until_idle().await.expect("dispatch");
    sampler.abort();
    let samples = samples.lock().expect("samples").clone();
    let tenth = samples.len() / 10;
    let early: Vec<f64> = samples.iter().skip(tenth).take(tenth.max(1)).map(|s| s.1).collect();
    let late: Vec<f64> = samples.iter().rev().take(tenth.max(1)).map(|s| s.1).collect();
    let avg = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let peak = samples.iter().map(|s| s.1).fold(0.0, f64::max);
    println!(
        "memory: {} events in {:.1} s; RSS {:.0} MB at 10–20 % of the run, {:.0} MB in the last 10 %, peak {:.0} MB",
        report.success,
        started.elapsed().as_secs_f64(),
        avg(&early),
        avg(&late),
        peak
    );
    store.close().await;
}
