//! Erasure that nothing in flight can undo and nothing at rest keeps: a batch being sent while
//! `postback erase` runs writes nothing of the player back; items re-sent one by one are found
//! in their batch's stored request; the erasure list holds keyed hashes; and the database and
//! its WAL hold no trace of the player afterwards. Real SQLite files, real loopback HTTP to the
//! sandbox, the real CLI in a child process (inside the test session's Secret Service).

#[macro_use]
mod support;
use support::{fast_options, rig, rig_on};

use std::process::Command;
use std::time::Duration;

use postback::delivery::{now_ms, Dispatcher};
use postback::identity::sha256_hex;
use postback::model::{Goal, Network};
use postback::sandbox::Faults;
use postback::store::DB_FILE;
use serde_json::json;

const PLAYER: &str = "player-7f3a-erase-me";
const OTHER: &str = "player-2b9c-keep-me";

/// One full-consent event of `player` whose identifiers are all unique to them.
fn event(event_id: &str, name: &str, player: &str) -> String {
    json!({"event_id": event_id, "name": name, "occurred_at": chrono::Utc::now().to_rfc3339(),
           "player_id": player, "consent": "full", "email": format!("{player}@example.com"),
           "ip": "203.0.113.7", "user_agent": "GameClient/1.0",
           "click_ids": {"ttclid": format!("ttclid-{player}"), "twclid": format!("twclid-{player}"),
                         "rdt_cid": format!("rdtcid-{player}")}})
    .to_string()
}

/// What must not be found anywhere once `player` is erased.
fn traces(player: &str) -> Vec<String> {
    vec![
        player.to_owned(),
        sha256_hex(player),
        sha256_hex(&format!("{player}@example.com")),
        format!("ttclid-{player}"),
        format!("twclid-{player}"),
        format!("rdtcid-{player}"),
    ]
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Every stored request body, inflated, read straight from the database file.
async fn stored_request_bodies(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    use sqlx::ConnectOptions;
    use std::io::Read;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(dir.join(DB_FILE)).read_only(true);
    let mut conn = options.connect().await.unwrap();
    let rows: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT id, body FROM delivery_requests").fetch_all(&mut conn).await.unwrap();
    sqlx::Connection::close(conn).await.unwrap();
    assert!(!rows.is_empty(), "requests were stored");
    rows.into_iter()
        .map(|(id, body)| {
            let mut inflated = Vec::new();
            flate2::read::DeflateDecoder::new(&body[..]).read_to_end(&mut inflated).unwrap();
            (format!("request {id}"), inflated)
        })
        .collect()
}

/// The database file and its WAL, as they are on disk now (the store still open).
fn files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    ["", "-wal"]
        .iter()
        .filter_map(|suffix| {
            let name = format!("{DB_FILE}{suffix}");
            std::fs::read(dir.join(&name)).ok().map(|bytes| (name, bytes))
        })
        .collect()
}

/// A 4-second network: `postback erase` runs while the batch is on the wire. Its settle must
/// apply the erasure in its own transaction, and the files must not keep the player.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_during_a_slow_send_leaves_nothing_in_the_files() {
    let rig = rig("sandbox").await;
    let lines = [
        event("evt-a1", "game_launch", PLAYER),
        event("evt-b1", "game_launch", OTHER),
        event("evt-a2", "purchase", PLAYER),
    ];
    rig.import(&lines.join("\n")).await;
    rig.faults(Faults { latency_ms: 4000, ..Faults::default() });

    let mut dispatcher = Dispatcher::new(rig.store.clone(), rig.tokens.clone(), fast_options());
    let delivery = tokio::spawn(async move { dispatcher.run_until_idle().await });
    // The three networks' requests are in flight (each answers after 4 s).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!delivery.is_finished());
    let erase = Command::new(env!("CARGO_BIN_EXE_postback"))
        .args(["--data-dir", rig.dir.path().to_str().unwrap(), "erase", "--player", PLAYER])
        .output()
        .unwrap();
    assert!(erase.status.success(), "{}", String::from_utf8_lossy(&erase.stderr));
    assert!(!delivery.is_finished(), "the erasure ran while the batch was on the wire");
    let run = tokio::time::timeout(Duration::from_secs(30), delivery).await.unwrap().unwrap().unwrap();
    assert!(run.success >= 3, "the other player's events were delivered: {run:?}");

    // Nothing of the player in the database or its WAL, while the store is still open, nor in
    // the stored request bodies (deflated, so read back inflated).
    let mut files = files(rig.dir.path());
    assert!(files.iter().any(|(name, _)| name.ends_with("-wal")), "the WAL is there to be read");
    files.extend(stored_request_bodies(rig.dir.path()).await);
    for (name, bytes) in &files {
        for trace in traces(PLAYER) {
            assert!(!contains(bytes, &trace), "{name} still holds {trace}");
        }
    }
    // The other player's data is still there (the grep can find what it looks for).
    assert!(files.iter().any(|(_, bytes)| contains(bytes, &sha256_hex(&format!("{OTHER}@example.com")))));
    // No log row is filed under the erased player: a second erasure finds none.
    assert_eq!(rig.store.erase_player(PLAYER, now_ms()).await.unwrap(), (0, 0));
}

on_both_engines_rig! {
    /// X refuses one conversion of a batch by index; the other is re-sent alone. Its item in the
    /// batch's stored request has no log row pointing at it, yet an erasure finds and redacts it.
    async fn items_re_sent_one_by_one_are_redacted_in_their_batch_request(engine: Engine) {
        let goals = vec![
            Goal::mapped("launch", "Launch", "game_launch", "tw-sbx01-launch"),
            // Belongs to another pixel: X refuses it, naming its index.
            Goal::mapped("buy", "Purchase", "purchase", "tw-other-buy01"),
        ];
        let rig = rig_on(engine, "sandbox", goals).await;
        rig.import(&[event("evt-a1", "game_launch", PLAYER), event("evt-b1", "purchase", OTHER)].join("\n")).await;
        rig.dispatch(fast_options()).await;
        let x = rig.stats(Network::X);
        assert!(x.requests >= 2, "a batch, then the launch alone: {x:?}");

        let stored_requests = |rig: &support::Rig| {
            let store = rig.store.clone();
            async move {
                let mut bodies = Vec::new();
                for id in 1..=64 {
                    if let Some(request) = store.stored_request(id).await.unwrap() {
                        bodies.push(request.body.to_string());
                    }
                }
                bodies
            }
        };
        let before = stored_requests(&rig).await;
        let batch =
            before.iter().filter(|b| b.contains("conversions") && b.contains(&sha256_hex(&format!("{OTHER}@example.com"))));
        assert!(
            batch.into_iter().any(|b| b.contains(&sha256_hex(&format!("{PLAYER}@example.com")))),
            "the X batch request holds both players before the erasure: {before:?}"
        );

        rig.store.erase_player(PLAYER, now_ms()).await.unwrap();
        for body in stored_requests(&rig).await {
            for trace in traces(PLAYER) {
                assert!(!body.contains(&trace), "a stored request still holds {trace}: {body}");
            }
        }
    }
}
