//! Crash safety: the dispatcher process is killed (SIGKILL) mid-run and restarted; the sandbox
//! (in this test process, so its counts survive) proves every accepted event arrived, with
//! duplicates only of the same event id.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use postback::delivery::now_ms;
use postback::model::{Goal, Network};
use postback::sandbox::{self, Faults};
use postback::store::Store;
use serde_json::json;

const EVENTS: usize = 3000;

fn serve(data_dir: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_postback"))
        .args(["serve", "--until-idle", "--lease-secs", "1", "--data-dir"])
        .arg(data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("postback serve starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_dispatcher_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    // Slow answers, so that the kill lands mid-run.
    sandbox.state.set_faults(Faults { latency_ms: 150, ..Faults::default() });

    let store = Store::open(dir.path()).await.unwrap();
    let game = store.create_game("Crash Test").await.unwrap();
    let goal = Goal::mapped("buy", "Buy", "purchase", "tw-sbx01-buy01");
    for config in sandbox::demo_configs(&sandbox.base_url, &["purchase"], vec![goal]) {
        store.create_config(game.id, &config, Some("sandbox")).await.unwrap();
    }
    let lines: String = (0..EVENTS)
        .map(|i| {
            json!({"event_id": format!("crash-{i}"), "name": "purchase", "occurred_at": chrono::Utc::now().to_rfc3339(),
                   "player_id": format!("p{}", i % 50), "consent": "full", "click_ids": {"ttclid": "t", "twclid": "w", "rdt_cid": "r"}})
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n");
    let report = postback::ingest::import_ndjson(&store, game.id, lines.as_bytes(), now_ms()).await.unwrap();
    assert_eq!(report.enqueued, 3 * EVENTS as u64);
    store.close().await;

    // Kill the dispatcher once some, but not all, events have arrived.
    let mut child = serve(dir.path());
    let started = Instant::now();
    let total = || sandbox.state.stats().values().map(|s| s.accepted).sum::<u64>();
    while total() < 1500 {
        assert!(started.elapsed() < Duration::from_secs(60), "no progress before the kill");
        assert!(child.try_wait().unwrap().is_none(), "dispatcher finished before it could be killed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    let at_kill = total();
    assert!(at_kill < 3 * EVENTS as u64, "killed after everything arrived ({at_kill})");

    // Restart and let it finish; expired leases come back after a second.
    sandbox.state.set_faults(Faults::default());
    let status = tokio::task::spawn_blocking({
        let path = dir.path().to_path_buf();
        move || serve(&path).wait()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(status.success());

    for network in Network::ALL {
        let s = sandbox.state.stats().remove(&network).unwrap();
        assert_eq!(s.distinct_event_ids, EVENTS as u64, "{network}: every event arrived");
        assert_eq!(
            s.accepted,
            s.distinct_event_ids + s.duplicates,
            "{network}: extra deliveries are duplicates of known ids"
        );
        assert_eq!(s.rejected, 0, "{network}");
    }
    let store = Store::open(dir.path()).await.unwrap();
    assert_eq!(store.queue_counts().await.unwrap(), (0, 0, 0), "the queue drained");
    sandbox.stop().await;
}
