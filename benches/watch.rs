//! Delivery log viewer figures on this machine: bytes per delivered event after real
//! deliveries to the sandbox; on a 5,000,000-row log, the first filtered page as the window's
//! command produces it (query + JSON serialisation), the 30-day chart query, and a CSV export
//! of 1,000,000 rows (time and RSS); match quality, freshness and queued deadlines. `cargo bench --bench watch` (`BENCH_SCALE=0.1` quick;
//! `-- --database URL` on PostgreSQL, common/mod.rs).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use postback::delivery::{now_ms, Credentials, Dispatcher, DispatcherOptions};
use postback::ingest::demo::Players;
use postback::model::{ConversionEvent, DeliveryStatus, Goal, LogFilter};
use postback::watch::export::{export, ExportFormat};

mod common;
use common::{engine_name, open_store, rss_mb, sandbox_process, scale};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DAY: i64 = 86_400_000;

/// The player key in memory: the figures are the store's, not the Secret Service's.
fn store_options() -> postback::store::StoreOptions {
    postback::store::StoreOptions {
        keychain: Some(Arc::new(postback::secrets::MemoryKeychain::default())),
        ..postback::store::StoreOptions::default()
    }
}

fn percentiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 2], v[(v.len() - 1) * 95 / 100], v[v.len() - 1])
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    postback::tune_allocator();
    let (_sandbox, base_url) = sandbox_process();

    println!("engine: {}", engine_name());
    // 1. Log size per delivered event, after real deliveries of demo players to three networks.
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = open_store(dir.path(), store_options()).await;
    let game = store.create_game("Bench").await.expect("game");
    let goals = vec![
        Goal::mapped("launch", "Launch", "game_launch", "tw-sbx01-launch"),
        Goal::mapped("buy", "Purchase", "purchase", "tw-sbx01-buy01"),
    ];
    let mut configs = Vec::new();
    for config in postback::sandbox::demo_configs(&base_url, &["game_launch", "purchase"], goals) {
        configs.push(store.create_config(game.id, &config, Some("sandbox")).await.expect("config"));
    }
    let empty = store.used_bytes().await.expect("size");
    let enabled: Vec<_> = store.configs(game.id).await.expect("configs");
    let mut players = Players::new(3);
    let now = chrono::Utc::now();
    for _ in 0..scale(100_000, 1000) / 5000 {
        let events: Vec<ConversionEvent> =
            (0..5000).map(|_| ConversionEvent::from_json(&players.next_event(now)).expect("demo event")).collect();
        postback::ingest::accept(&store, game.id, &enabled, events, postback::ingest::Source::Demo, now_ms())
            .await
            .expect("accept");
    }
    let mut options = DispatcherOptions::default();
    options.rates.enabled = false;
    let report = Dispatcher::new(store.clone(), Arc::new(Credentials::without_keychain()), options)
        .run_until_idle()
        .await
        .expect("dispatch");
    // The dedup memory of delivered events is kept 48 h and counts too.
    let used = store.used_bytes().await.expect("size") - empty;
    println!(
        "log size: {} conversions delivered in {} requests; {:.0} bytes per delivered event (log row, its stored \
         request and answer share, hourly counts, indexes, 48 h dedup memory)",
        report.success,
        report.requests,
        used as f64 / report.success.max(1) as f64
    );
    store.close().await;

    // 2. A 5 M-row log.
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = open_store(dir.path(), store_options()).await;
    let game = store.create_game("Bench").await.expect("game");
    let config = postback::sandbox::demo_configs(&base_url, &["purchase"], Vec::new())[0].clone();
    let config_id = store.create_config(game.id, &config, Some("sandbox")).await.expect("config");
    let rows = scale(5_000_000, 1000);
    let now = now_ms();
    let started = Instant::now();
    store.fill_synthetic_log(config_id, rows, now, 30 * DAY).await.expect("fill");
    println!("log: {rows} rows over 30 days written in {:.1} s", started.elapsed().as_secs_f64());

    // The window's first page: the command runs the query and serialises the rows for IPC.
    let filters: Vec<(&str, LogFilter)> = vec![
        ("game, 24 h", LogFilter { game_id: Some(game.id), since_ms: Some(now - DAY), ..LogFilter::default() }),
        ("game, 30 days", LogFilter { game_id: Some(game.id), since_ms: Some(now - 30 * DAY), ..LogFilter::default() }),
        (
            "failed, 7 days",
            LogFilter {
                game_id: Some(game.id),
                statuses: vec![DeliveryStatus::Failed],
                since_ms: Some(now - 7 * DAY),
                ..LogFilter::default()
            },
        ),
        (
            "config × retried, 30 days",
            LogFilter {
                config_id: Some(config_id),
                statuses: vec![DeliveryStatus::Retried],
                since_ms: Some(now - 30 * DAY),
                ..LogFilter::default()
            },
        ),
        (
            "one event id",
            LogFilter { game_id: Some(game.id), event_id: Some("evt-123456".into()), ..LogFilter::default() },
        ),
    ];
    let mut all = Vec::new();
    for (name, filter) in &filters {
        let filter = LogFilter { limit: 200, ..filter.clone() };
        let mut times = Vec::new();
        for _ in 0..40 {
            let started = Instant::now();
            let page = store.log_page(&filter).await.expect("page");
            let json = serde_json::to_vec(&page).expect("json");
            std::hint::black_box(json);
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        all.extend(times.iter().copied());
        let (p50, p95, max) = percentiles(times);
        println!("  first page of 200, {name}: p50 {p50:.2} ms, p95 {p95:.2} ms, max {max:.2} ms");
    }
    let (p50, p95, max) = percentiles(all);
    println!(
        "first filtered page (query + serialisation), all filters: p50 {p50:.2} ms, p95 {p95:.2} ms, max {max:.2} ms"
    );

    let month = LogFilter { game_id: Some(game.id), since_ms: Some(now - 30 * DAY), ..LogFilter::default() };
    let mut times = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        std::hint::black_box(store.log_summary(&month, now).await.expect("summary"));
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let (p50, p95, max) = percentiles(times);
    println!("30-day chart (daily buckets, totals, success rate): p50 {p50:.2} ms, p95 {p95:.2} ms, max {max:.2} ms");

    // Match quality and freshness over the same 30 days: read from the hourly counts that such a
    // log's traffic leaves (three configs, two event names, every key and delay bucket, each hour).
    fill_hourly_counts(&store, game.id, now).await;
    // As autovacuum would after such a write (PostgreSQL; nothing on SQLite).
    store.refresh_statistics().await.expect("statistics");
    let watch = postback::watch::Watch::new(store.clone());
    for name in ["match quality", "freshness"] {
        let mut times = Vec::new();
        for _ in 0..40 {
            let started = Instant::now();
            if name == "freshness" {
                std::hint::black_box(watch.freshness(game.id, now - 30 * DAY, now + 1).await.expect("freshness"));
            } else {
                std::hint::black_box(watch.quality(game.id, now - 30 * DAY, now + 1).await.expect("quality"));
            }
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        let (p50, p95, max) = percentiles(times);
        println!("30-day {name} per config (from hourly counts): p50 {p50:.2} ms, p95 {p95:.2} ms, max {max:.2} ms");
    }

    // Queued conversions against their acceptance windows: a backlog waiting for weeks (a
    // network offline), its event times spread over 30 days, read from the waiting rows' index.
    let backlog = scale(300_000, 1000);
    fill_backlog(&store, &[config_id], backlog, now).await;
    let mut times = Vec::new();
    let mut closing = 0;
    for _ in 0..40 {
        let started = Instant::now();
        let deadlines = watch.deadlines(game.id, now_ms()).await.expect("deadlines");
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        closing = deadlines.iter().map(|d| d.closing).sum();
    }
    let (p50, p95, max) = percentiles(times);
    println!(
        "queued deadlines per config ({backlog} waiting, {closing} closing within 24 h): p50 {p50:.2} ms, p95 {p95:.2} ms, max {max:.2} ms"
    );

    // CSV export of ~1 M rows (the newest 6 days of 30), sampling RSS as it goes.
    let target = scale(1_000_000, 1000);
    let span = (30 * DAY) as f64 * target as f64 / rows as f64;
    let filter = LogFilter { game_id: Some(game.id), since_ms: Some(now - span as i64), ..LogFilter::default() };
    let path = dir.path().join("export.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("file"));
    let before = rss_mb();
    let mut peak = before;
    let cancel = AtomicBool::new(false);
    let started = Instant::now();
    let written = export(&store, &filter, ExportFormat::Csv, &mut out, |_, _| peak = peak.max(rss_mb()), &cancel)
        .await
        .expect("export");
    drop(out);
    let seconds = started.elapsed().as_secs_f64();
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    println!(
        "CSV export: {written} rows ({size:.0} MB) in {seconds:.2} s = {:.0} rows/s; RSS {before:.0} MB before, peak {peak:.0} MB",
        written as f64 / seconds
    );
    store.close().await;
}

/// `n` conversions waiting for each config, their events spread evenly over the last 30 days.
async fn fill_backlog(store: &postback::store::Store, configs: &[i64], n: u64, now_ms: i64) {
    use postback::store::NewDelivery;
    let started = Instant::now();
    let mut players = Players::new(11);
    let now = chrono::DateTime::from_timestamp_millis(now_ms).expect("now");
    let step = 30 * DAY / n as i64;
    for chunk in (0..n).collect::<Vec<u64>>().chunks(5000) {
        let events: Vec<ConversionEvent> = chunk
            .iter()
            .map(|&i| {
                let at = now - chrono::Duration::milliseconds(i as i64 * step);
                let mut doc = players.next_event(at);
                doc["event_id"] = serde_json::Value::from(format!("backlog-{i}"));
                ConversionEvent::from_json(&doc).expect("demo event")
            })
            .collect();
        let items: Vec<NewDelivery> =
            events.iter().flat_map(|e| configs.iter().map(move |&c| NewDelivery::new(c, e))).collect();
        store.enqueue(&items, now_ms).await.expect("enqueue");
    }
    println!("backlog: {n} events × {} configs queued in {:.1} s", configs.len(), started.elapsed().as_secs_f64());
}

/// Every hour of 30 days: for three configs, the match-key counts of two event names and a
/// count in every freshness bucket (what a busy game's traffic leaves; ~120,000 rows).
async fn fill_hourly_counts(store: &postback::store::Store, game_id: i64, now: i64) {
    use postback::quality::{count_kinds, KeySet, MatchKey, Stage};
    use postback::store::TrafficCount;
    let mut keys = KeySet::default();
    for key in MatchKey::ALL {
        keys.insert(key);
    }
    let started = Instant::now();
    for hour in 0..30 * 24 {
        let at = now - hour * 3_600_000;
        let mut counts = Vec::new();
        for config_id in 1..=3 {
            let kinds = ["purchase", "game_launch"]
                .into_iter()
                .flat_map(|name| {
                    [Stage::Queued, Stage::Delivered].into_iter().flat_map(move |stage| count_kinds(keys, name, stage))
                })
                .chain(postback::freshness::BOUNDS_SECS.iter().map(|b| format!("fresh:{b}")));
            counts.extend(kinds.map(|kind| TrafficCount {
                game_id,
                source: "delivery".into(),
                config_id,
                kind,
                count: 100,
            }));
        }
        store.record_traffic(at, &counts).await.expect("counts");
    }
    println!("hourly counts: 30 days × 3 configs written in {:.1} s", started.elapsed().as_secs_f64());
}
