//! The app's background work on a real data directory: its own sandbox, on another port when
//! the usual one is taken, and the demo (sandbox) configs delivering to it over loopback HTTP.
//! A test binary of its own: the sandbox marker resolves process-wide.

use std::sync::Arc;
use std::time::{Duration, Instant};

use postback::delivery::{now_ms, Credentials};
use postback::model::Network;
use postback::store::Store;
use postback_desk_lib::background;
use serde_json::json;

#[test]
fn a_taken_sandbox_port_moves_the_sandbox_and_sandbox_configs_deliver_to_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Another program holds the port the app asks for (the test's stand-in for 47811).
    let other_program = std::net::TcpListener::bind("127.0.0.1:0").expect("occupy a port");
    let asked = other_program.local_addr().expect("addr");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let store = Store::open(dir.path()).await.expect("store");
        // The demo configs store the usual sandbox URL, credential_ref 'sandbox'.
        let game = postback::sandbox::ensure_demo_game(&store, &postback::sandbox_base_url()).await.expect("demo game");
        let credentials = Arc::new(Credentials::without_keychain());
        let background = background::start(store.clone(), credentials, dir.path(), asked, false).await;

        let (url, notice) = background.sandbox().expect("the app's sandbox runs");
        assert_ne!(url, format!("http://{asked}"), "not on the taken port");
        let notice = notice.expect("the window is told");
        assert!(notice.contains(&format!("Port {}", asked.port())) && notice.contains(url), "{notice}");

        let line = json!({"event_id": "moved-1", "name": "purchase", "occurred_at": chrono::Utc::now().to_rfc3339(),
                          "player_id": "p1", "consent": "full", "click_ids": {"ttclid": "tt-1"}})
        .to_string();
        let report = postback::ingest::import_ndjson(&store, game.id, line.as_bytes(), now_ms()).await.expect("import");
        assert!(report.enqueued >= 1, "{report:?}");

        let sandbox = background.sandbox_state().expect("sandbox state");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let accepted = sandbox.stats().get(&Network::TikTok).map_or(0, |s| s.accepted);
            if accepted >= 1 {
                break;
            }
            assert!(Instant::now() < deadline, "the TikTok sandbox config never reached the app's sandbox at {url}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        drop(background);
        store.close().await;
    });
}
