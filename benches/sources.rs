//! Event source figures on this machine: ingest throughput measured from a second process
//! (batches of 1,000 events; single-event requests with latency percentiles) while the
//! dispatcher delivers to the sandbox (a third process); a 1,000,000-line NDJSON import in a
//! fresh process (time, RSS early and late, peak); the demo generator's rate. Everything on
//! loopback. `cargo bench --bench sources` (`BENCH_SCALE=0.1` for a quick pass; `-- --database
//! URL` on PostgreSQL, common/mod.rs).

use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use postback::delivery::{now_ms, Credentials, Dispatcher, DispatcherOptions};
use postback::ingest::demo::{DemoPlan, Players};
use postback::model::Goal;
use postback::secrets::Secret;
use postback::store::Store;
use serde_json::{json, Value};

mod common;
use common::{database_server, engine_name, memory_mb, open_store, sandbox_process, scale};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TOKEN: &str = "pbd_bench_token";

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// A store with the demo game's three configs pointing at the sandbox `base_url`.
async fn demo_store(dir: &std::path::Path, base_url: &str) -> (Store, i64) {
    let options = postback::store::StoreOptions {
        keychain: Some(Arc::new(postback::secrets::MemoryKeychain::default())),
        ..postback::store::StoreOptions::default()
    };
    let (store, _) = open_store(dir, options).await;
    let game = store.create_game("Bench").await.expect("game");
    let goals = vec![
        Goal::mapped("launch", "Launch", "game_launch", "tw-sbx01-launch"),
        Goal::mapped("buy", "Purchase", "purchase", "tw-sbx01-buy01"),
    ];
    for config in postback::sandbox::demo_configs(base_url, &["game_launch", "purchase"], goals) {
        store.create_config(game.id, &config, Some("sandbox")).await.expect("config");
    }
    (store, game.id)
}

fn unlimited() -> DispatcherOptions {
    let mut o = DispatcherOptions::default();
    o.rates.enabled = false;
    o
}

/// Runs this bench binary again as another process with `phase` and parses its JSON line.
fn child_phase(phase: &str, env: &[(&str, &str)]) -> Value {
    let mut command = Command::new(std::env::current_exe().expect("bench binary"));
    command.env("BENCH_PHASE", phase).stderr(Stdio::inherit());
    // The phase's own store on the same engine.
    if let Some(server) = database_server() {
        command.env("BENCH_DATABASE_URL", server);
    }
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().expect("child runs");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{phase}: {e}: {text}"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    postback::tune_allocator();
    // POSTBACK_LOG=…: the engine's diagnostics on stderr (with POSTBACK_LOG_SQL=1, every
    // statement and its time), to see where a slow phase waits.
    if let Ok(filter) = std::env::var("POSTBACK_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    match std::env::var("BENCH_PHASE").as_deref() {
        Ok("client") => return client_phase().await,
        Ok("import") => return import_phase().await,
        _ => {}
    }
    let (_sandbox, base_url) = sandbox_process();
    println!("engine: {}", engine_name());
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, game_id) = demo_store(dir.path(), &base_url).await;
    let ingest =
        postback::ingest::server::start("127.0.0.1:0".parse().expect("addr"), store.clone(), Secret::new(TOKEN))
            .await
            .expect("ingest");
    let url = format!("{}/v1/events?game={game_id}", ingest.base_url);

    // 1. Ingest from a second process: alone, then while the dispatcher delivers.
    let batches = scale(100, 10).to_string();
    let singles = scale(20_000, 1000).to_string();
    for delivering in [false, true] {
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        // As the app and `serve` run it: on a thread of its own.
        let dispatcher = delivering.then(|| {
            Dispatcher::new(store.clone(), Arc::new(Credentials::without_keychain()), unlimited())
                .run_on_own_thread(stop)
                .expect("delivery thread")
        });
        let label = if delivering { "while the dispatcher delivers" } else { "dispatcher idle" };
        // BENCH_PAUSE_MS: time to attach a profiler to this process before each batch phase.
        if let Some(ms) = std::env::var("BENCH_PAUSE_MS").ok().and_then(|v| v.parse().ok()) {
            eprintln!("pid {}: batch phase ({label}) in {ms} ms", std::process::id());
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let batched = child_phase("client", &[("BENCH_URL", &url), ("BENCH_MODE", "batch"), ("BENCH_COUNT", &batches)]);
        println!(
            "ingest ({label}), batches of 1,000 from another process (2 connections): {} events in {:.2} s = {:.0} \
             events/s; per request p50 {:.1} ms, p99 {:.1} ms",
            batched["events"], batched["seconds"], batched["per_second"], batched["p50_ms"], batched["p99_ms"]
        );
        // BENCH_ONLY=batches: the batch phases alone (for profiling them).
        let only_batches = std::env::var("BENCH_ONLY").as_deref() == Ok("batches");
        let single = if only_batches {
            json!({})
        } else {
            child_phase("client", &[("BENCH_URL", &url), ("BENCH_MODE", "single"), ("BENCH_COUNT", &singles)])
        };
        println!(
            "ingest ({label}), one event per request from another process (32 connections): {} requests in {:.2} s = \
             {:.0} requests/s; p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms",
            single["events"],
            single["seconds"],
            single["per_second"],
            single["p50_ms"],
            single["p99_ms"],
            single["max_ms"]
        );
        let _ = stop_tx.send(true);
        if let Some(dispatcher) = dispatcher {
            let report = dispatcher.join().expect("dispatcher");
            println!(
                "  meanwhile the dispatcher delivered {} conversions in {} requests to the sandbox",
                report.success, report.requests
            );
        }
    }
    if matches!(std::env::var("BENCH_ONLY").as_deref(), Ok("ingest" | "batches")) {
        return;
    }

    // 2. The demo generator's rate, through the same ingest.
    for rate in [20.0, 200.0] {
        let (_tx, stop) = tokio::sync::watch::channel(false);
        let seconds = (scale(10, 2) as f64).clamp(2.0, 10.0);
        let http = postback::delivery::http_client(Duration::from_secs(10)).expect("HTTP client");
        // A seed per run: the same seed makes the same event ids, which the second run's
        // ingest would answer as duplicates.
        let plan = DemoPlan { rate, duration: Some(Duration::from_secs_f64(seconds)), seed: rate as u64 };
        let stats = postback::ingest::demo::run(&http, &url, &Secret::new(TOKEN), plan, stop, |_| {}).await;
        let achieved = stats.accepted as f64 / (stats.elapsed_ms as f64 / 1000.0);
        println!(
            "demo at {rate}/s for {seconds:.0} s: {} sent, {} accepted = {achieved:.1}/s ({:+.1} %), {} duplicates, {} failed requests",
            stats.sent,
            stats.accepted,
            (achieved / rate - 1.0) * 100.0,
            stats.duplicates,
            stats.failed_requests
        );
    }
    ingest.stop().await;
    store.close().await;

    // 3. Import of a 1 M-line NDJSON file in a fresh process (its RSS is the import's alone).
    let lines = scale(1_000_000, 1000);
    let file = dir.path().join("players.ndjson");
    {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).expect("file"));
        let mut players = Players::new(5);
        let now = chrono::Utc::now();
        for _ in 0..lines {
            serde_json::to_writer(&mut out, &players.next_event(now)).expect("write");
            out.write_all(b"\n").expect("write");
        }
        out.flush().expect("flush");
    }
    let size_mb = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    let imported = child_phase("import", &[("BENCH_FILE", file.to_str().expect("path")), ("BENCH_SANDBOX", &base_url)]);
    println!(
        "import: {lines} NDJSON lines ({size_mb:.0} MB, demo players) in {:.1} s = {:.0} lines/s, {} conversions queued; \
         RSS {:.0} MB at 10 %, {:.0} MB at the end, peak {:.0} MB",
        imported["seconds"],
        lines as f64 / imported["seconds"].as_f64().unwrap_or(1.0),
        imported["enqueued"],
        imported["rss_early_mb"],
        imported["rss_end_mb"],
        imported["peak_mb"]
    );
}

/// The second process: posts to the ingest and prints what it measured as one JSON line.
async fn client_phase() {
    let url = std::env::var("BENCH_URL").expect("BENCH_URL");
    let batch = std::env::var("BENCH_MODE").as_deref() == Ok("batch");
    let count: u64 = std::env::var("BENCH_COUNT").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let (per_request, mut connections) = if batch { (1000, 2) } else { (1, 32) };
    // BENCH_CONNECTIONS: another number of concurrent clients, to see how the figure scales.
    if let Some(n) = std::env::var("BENCH_CONNECTIONS").ok().and_then(|v| v.parse().ok()) {
        connections = n;
    }
    // Bodies are built before the clock starts: the figure is the server's.
    let mut players = Players::new(fastrand::u64(..));
    let now = chrono::Utc::now();
    let bodies: Vec<Vec<u8>> = (0..count)
        .map(|_| {
            let events: Vec<Value> = (0..per_request).map(|_| players.next_event(now)).collect();
            if batch {
                serde_json::to_vec(&events).expect("json")
            } else {
                serde_json::to_vec(&events[0]).expect("json")
            }
        })
        .collect();
    let bodies = Arc::new(std::sync::Mutex::new(bodies));
    if std::env::var("BENCH_PAUSE_MS").is_ok() {
        eprintln!("client: sending");
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (bodies, url) = (bodies.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let http = postback::delivery::http_client(Duration::from_secs(30)).expect("HTTP client");
            let mut latencies = Vec::new();
            loop {
                let Some(body) = bodies.lock().expect("bodies").pop() else { break };
                let sent = Instant::now();
                let response = http
                    .post(&url)
                    .bearer_auth(TOKEN)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("the ingest answers");
                assert!(response.status().is_success(), "HTTP {}", response.status());
                response.bytes().await.expect("body");
                latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("client task"));
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let events = count * per_request;
    println!(
        "{}",
        json!({"events": events, "seconds": seconds, "per_second": events as f64 / seconds,
               "p50_ms": percentile(&latencies, 0.5), "p99_ms": percentile(&latencies, 0.99),
               "max_ms": latencies.last().copied().unwrap_or(0.0)})
    );
}

/// A fresh process imports the file into a fresh data directory.
async fn import_phase() {
    let file = std::env::var("BENCH_FILE").expect("BENCH_FILE");
    let base_url = std::env::var("BENCH_SANDBOX").expect("BENCH_SANDBOX");
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, game_id) = demo_store(dir.path(), &base_url).await;
    let total = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(1);
    let input = std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(&file).expect("file"));
    let cancel = AtomicBool::new(false);
    let mut early = None;
    let mut on_progress = |_: &postback::ingest::ImportReport, bytes: u64| {
        if early.is_none() && bytes * 10 >= total {
            early = Some(memory_mb("VmRSS:"));
        }
    };
    let mut on_error = |e: &postback::ingest::LineError| panic!("line {}: {}: {}", e.line, e.field, e.message);
    let mut control = postback::ingest::ImportControl {
        cancel: &cancel,
        on_progress: &mut on_progress,
        on_error: &mut on_error,
        keep_errors: 100,
    };
    let started = Instant::now();
    let report =
        postback::ingest::import(&store, game_id, input, postback::ingest::FileFormat::Ndjson, &mut control, now_ms())
            .await
            .expect("import");
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"seconds": seconds, "enqueued": report.enqueued, "rss_early_mb": early.unwrap_or(0.0),
               "rss_end_mb": memory_mb("VmRSS:"), "peak_mb": memory_mb("VmHWM:")})
    );
    store.close().await;
}
