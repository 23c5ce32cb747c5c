//! Several `postback serve` workers on one PostgreSQL database, as child processes: 60,000
//! events for two networks, one answer in ten a 503, and one worker killed (SIGKILL) twice
//! during delivery. The sandbox lives in this test process, so its counts survive the kills:
//! every event arrives, repeats only under its own event id, and the dead worker's config is
//! taken over within seconds.

#[macro_use]
mod engines;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use postback::delivery::now_ms;
use postback::model::Network;
use postback::sandbox::{self, Faults, RunningSandbox};
use postback::store::{Store, StoreOptions};
use serde_json::json;

const EVENTS: usize = 60_000;

/// A queue row not yet delivered, for the failure message: config, event, state, attempts,
/// run at, lease token, lease until.
type WaitingRow = (i64, String, String, i64, i64, Option<String>, Option<i64>);
const NETWORKS: [Network; 2] = [Network::TikTok, Network::Reddit];

/// A worker of the team workspace at `url`, with the key file `workspace init` wrote into
/// `key_dir`.
fn worker(url: &str, data_dir: &std::path::Path, key_dir: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_postback"))
        // A short first retry: the backoff's own tests live elsewhere; here a long tail of
        // doubling waits (2 s, 4 s, … after repeated 503s) would only make the run long.
        .args(["--database", url, "serve", "--lease-secs", "3", "--retry-base", "100ms", "--data-dir"])
        .arg(data_dir)
        .arg("--key-file")
        .arg(key_dir.join("workspace.key"))
        .stdout(Stdio::null())
        // Its log, read when it ends by itself.
        .stderr(std::fs::File::create(data_dir.join("worker.log")).expect("worker log"))
        .spawn()
        .expect("postback serve starts")
}

fn accepted(sandbox: &RunningSandbox) -> BTreeMap<Network, u64> {
    let stats = sandbox.state.stats();
    NETWORKS.iter().map(|n| (*n, stats.get(n).map_or(0, |s| s.accepted))).collect()
}

/// Kills `child` once `threshold` events have arrived in all, and returns how long until every
/// network received more (the dead worker's config taken over by the other).
async fn kill_at(sandbox: &RunningSandbox, child: &mut Child, threshold: u64, deadline: Instant) -> Duration {
    while accepted(sandbox).values().sum::<u64>() < threshold {
        assert!(Instant::now() < deadline, "no progress to {threshold}: {:?}", accepted(sandbox));
        if let Some(status) = child.try_wait().expect("worker status") {
            panic!("a worker ended by itself ({status}) before it was killed; see worker.log in its data directory");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let killed = Instant::now();
    let before = accepted(sandbox);
    loop {
        let now = accepted(sandbox);
        if NETWORKS.iter().all(|n| now[n] > before[n] || now[n] as usize >= EVENTS) {
            return killed.elapsed();
        }
        assert!(Instant::now() < deadline, "no takeover after the kill: {now:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_deliver_everything_once_through_kills_and_503s() {
    let url = engines::fresh_database().await;
    let sandbox = sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    sandbox.state.set_faults(Faults { error_rate: 0.1, status: 503, latency_ms: 10, ..Faults::default() });
    let store = Store::open_postgres(&url, StoreOptions::default()).await.unwrap();
    let key_dir = tempfile::tempdir().unwrap();
    postback::team::init(&store, &key_dir.path().join("workspace.key")).await.unwrap();
    let game = store.create_game("Workers").await.unwrap();
    let [tiktok, reddit, _] = sandbox::demo_configs(&sandbox.base_url, &["purchase"], Vec::new());
    for config in [tiktok, reddit] {
        store.create_config(game.id, &config, Some("sandbox")).await.unwrap();
    }
    let at = chrono::Utc::now().to_rfc3339();
    let lines: String = (0..EVENTS)
        .map(|i| {
            json!({"event_id": format!("w-{i}"), "name": "purchase", "occurred_at": at,
                   "player_id": format!("p{}", i % 500), "consent": "full", "click_ids": {"ttclid": "t", "rdt_cid": "r"}})
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n");
    let report = postback::ingest::import_ndjson(&store, game.id, lines.as_bytes(), now_ms()).await.unwrap();
    assert_eq!(report.enqueued, 2 * EVENTS as u64);

    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut a = worker(&url, dirs[0].path(), key_dir.path());
    let mut b = worker(&url, dirs[1].path(), key_dir.path());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(240);
    let first = kill_at(&sandbox, &mut a, 30_000, deadline).await;
    a = worker(&url, dirs[0].path(), key_dir.path());
    let second = kill_at(&sandbox, &mut b, 70_000, deadline).await;
    b = worker(&url, dirs[1].path(), key_dir.path());
    let stats = loop {
        let stats = sandbox.state.stats();
        if NETWORKS.iter().all(|n| stats.get(n).is_some_and(|s| s.distinct_event_ids as usize >= EVENTS)) {
            break stats;
        }
        if Instant::now() >= deadline {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
            let waiting: Vec<WaitingRow> = sqlx::query_as(
                "SELECT config_id, event_id, state, attempts, run_at, lease_token, lease_until FROM queue
                 WHERE state <> 'done' ORDER BY id LIMIT 20",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap();
            panic!("not everything arrived: {stats:?}; not delivered (now {}): {waiting:?}", now_ms());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = started.elapsed();
    for child in [&mut a, &mut b] {
        let _ = child.kill();
        let _ = child.wait();
    }
    for network in NETWORKS {
        let s = &stats[&network];
        assert_eq!(s.distinct_event_ids as usize, EVENTS, "{network}");
        assert_eq!(s.rejected, 0, "{network}");
        // Repeats are re-sends of an unsettled batch after a kill, under the same event id.
        assert_eq!(s.accepted - s.duplicates, EVENTS as u64, "{network}");
    }
    eprintln!(
        "two workers, {EVENTS} events × 2 networks, 10 % 503s, two kills: delivered in {:.1} s; takeover {:.2} s and {:.2} s; repeats {:?}",
        took.as_secs_f64(),
        first.as_secs_f64(),
        second.as_secs_f64(),
        NETWORKS.iter().map(|n| stats[n].duplicates).collect::<Vec<_>>()
    );
    store.close().await;
}

/// The same 1,000 events imported at the same moment through two processes on one database:
/// each conversion is queued once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_file_imported_through_two_processes_at_once_is_queued_once() {
    let url = engines::fresh_database().await;
    let store = Store::open_postgres(&url, StoreOptions::default()).await.unwrap();
    let game = store.create_game("Imports").await.unwrap();
    let [tiktok, reddit, _] = sandbox::demo_configs("http://127.0.0.1:9", &["purchase"], Vec::new());
    let mut configs = Vec::new();
    for config in [tiktok, reddit] {
        configs.push(store.create_config(game.id, &config, Some("sandbox")).await.unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.ndjson");
    let at = chrono::Utc::now().to_rfc3339();
    let lines: Vec<String> = (0..1000)
        .map(|i| {
            json!({"event_id": format!("i-{i}"), "name": "purchase", "occurred_at": at, "player_id": format!("p{i}"),
                   "consent": "full", "click_ids": {"ttclid": "t", "rdt_cid": "r"}})
            .to_string()
        })
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let import = |data: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_postback"))
            .args(["--database", &url, "import"])
            .arg(&file)
            .args(["--game", &game.id.to_string(), "--data-dir"])
            .arg(data)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("postback import starts")
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let children = [import(a.path()), import(b.path())];
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    for config in configs {
        assert_eq!(store.pending_count(config).await.unwrap(), 1000, "config {config}");
    }
    store.close().await;
}
