//! Private data at rest: the data directory and its files are the owner's only, the log's
//! player key lives in the OS keychain (not in the file it keys), an older database's key and
//! raw erasure list move out on open, and failed events' data is purged after its retention.
//! Real SQLite files and the test session's real Secret Service; retention on both engines.

#[macro_use]
mod engines;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use postback::delivery::retention;
use postback::model::ConversionEvent;
use postback::secrets::{Keychain, SecretStore};
use postback::store::{NewDelivery, Settlement, Store, DB_FILE};
use serde_json::json;

const DAY_MS: i64 = 24 * 3600 * 1000;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn purchase(event_id: &str, player: &str) -> ConversionEvent {
    ConversionEvent::from_json(&json!({"event_id": event_id, "name": "purchase",
        "occurred_at": "2026-11-20T10:15:30Z", "player_id": player, "consent": "full",
        "email": format!("{player}@example.com")}))
    .unwrap()
}

/// A store in a fresh directory with the demo game, and the id of its first config.
async fn demo_store(dir: &Path) -> (Store, i64) {
    let store = Store::open(dir).await.unwrap();
    let config = demo_config(&store).await;
    (store, config)
}

/// The demo game in `store`, and the id of its first config.
async fn demo_config(store: &Store) -> i64 {
    let game = postback::sandbox::ensure_demo_game(store, "http://127.0.0.1:9").await.unwrap();
    store.configs(game.id).await.unwrap()[0].id
}

#[tokio::test]
async fn the_data_directory_and_its_files_are_the_owners_only() {
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = root.path().join("postback-desk");
    let (store, config) = demo_store(&dir).await;
    store.enqueue(&[NewDelivery::new(config, &purchase("e1", "p1"))], 1_795_000_000_000).await.unwrap();
    assert_eq!(mode(&dir), 0o700);
    for name in [DB_FILE.to_owned(), format!("{DB_FILE}-wal"), format!("{DB_FILE}-shm")] {
        assert_eq!(mode(&dir.join(&name)), 0o600, "{name}");
    }
    store.close().await;

    // A directory made by an older version (0755, files 0644) is tightened on open.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.join(DB_FILE), std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = Store::open(&dir).await.unwrap();
    assert_eq!((mode(&dir), mode(&dir.join(DB_FILE))), (0o700, 0o600));
    store.close().await;
}

/// The key that files the log under players is not in the database: the file alone does not
/// link log rows to players.
#[tokio::test]
async fn the_log_player_key_lives_in_the_keychain_not_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = demo_store(dir.path()).await;
    let instance = store.meta("instance_id").await.unwrap().expect("an instance id");
    let entry = format!("player-key-{instance}");
    let keychain = Keychain::system();
    let key = keychain.get(&entry).unwrap().expect("the key is in the keychain");
    assert_eq!(store.meta("player_key_v1").await.unwrap(), None);
    let keyed = store.player_key("player-1");
    store.close().await;
    let bytes = std::fs::read(dir.path().join(DB_FILE)).unwrap();
    assert!(!bytes.windows(64).any(|w| w == key.expose().as_bytes()), "the key is not in the file");

    // Reopened, the same key files the same player the same way.
    let store = Store::open(dir.path()).await.unwrap();
    assert_eq!(store.player_key("player-1"), keyed);
    store.close().await;
    keychain.delete(&entry).unwrap();
}

/// A database of an older version kept the key in `meta` and erased players' raw ids: on
/// open the key moves to the keychain and the list to keyed hashes; erasures still hold.
#[tokio::test]
async fn an_older_database_moves_its_key_and_erasure_list_out_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = demo_store(dir.path()).await;
    let instance = store.meta("instance_id").await.unwrap().unwrap();
    let entry = format!("player-key-{instance}");
    let old_key = "ab".repeat(32);
    // As an older version left it: key in meta, no keychain entry, raw ids in erased_players.
    store.set_meta("player_key_v1", &old_key).await.unwrap();
    store.close().await;
    Keychain::system().delete(&entry).unwrap();
    {
        use sqlx::{ConnectOptions, Executor};
        let mut raw =
            sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join(DB_FILE)).connect().await.unwrap();
        raw.execute(
            "CREATE TABLE erased_players (player_id TEXT PRIMARY KEY, erased_at INTEGER NOT NULL) WITHOUT ROWID",
        )
        .await
        .unwrap();
        raw.execute("INSERT INTO erased_players VALUES ('gone-player-42', 1)").await.unwrap();
        sqlx::Connection::close(raw).await.unwrap();
    }

    let store = Store::open(dir.path()).await.unwrap();
    assert_eq!(Keychain::system().get(&entry).unwrap().map(|k| k.expose().to_owned()), Some(old_key));
    assert_eq!(store.meta("player_key_v1").await.unwrap(), None, "the key left the file");
    assert!(!store.erased_among(&["gone-player-42"]).await.unwrap().is_empty(), "still erased");
    store.close().await;
    for file in [DB_FILE.to_owned(), format!("{DB_FILE}-wal")] {
        let bytes = std::fs::read(dir.path().join(&file)).unwrap_or_default();
        assert!(!bytes.windows(14).any(|w| w == b"gone-player-42"), "no raw erased id in {file}");
    }
    Keychain::system().delete(&entry).unwrap();
}

/// Failed events keep their data for replay until the longest acceptance window has passed
/// (or as long as set), then are purged with the dispatcher's hourly prune.
async fn purge_failed_events_by_their_retention(store: &Store) {
    let config = demo_config(store).await;
    let now = postback::delivery::now_ms();
    assert_eq!(
        retention::failed_retention(store).await.unwrap(),
        retention::FailedRetention { days: 30, is_default: true }
    );
    // Two events failed 31 and 10 days ago.
    for (event_id, age_days) in [("old", 31), ("recent", 10)] {
        let at = now - age_days * DAY_MS;
        store.enqueue(&[NewDelivery::new(config, &purchase(event_id, "p"))], at).await.unwrap();
        let leased = store.claim(config, event_id, at, 60_000, 10).await.unwrap();
        let dead = Settlement {
            lease_token: event_id.into(),
            at,
            dead: leased.iter().map(|l| l.id).collect(),
            ..Settlement::default()
        };
        store.settle(dead).await.unwrap();
    }
    assert_eq!(store.queue_counts().await.unwrap().2, 2);
    retention::prune(store, now, std::time::Duration::from_secs(30 * 86_400)).await.unwrap();
    assert_eq!(store.queue_counts().await.unwrap().2, 1, "the 31-day-old failure is purged");

    // Kept 5 days: the 10-day-old one goes too. Out of range: a clear error.
    let err = retention::set_failed_retention(store, Some(0)).await.unwrap_err().to_string();
    assert!(err.contains("1 to 365 days"), "{err}");
    retention::set_failed_retention(store, Some(5)).await.unwrap();
    retention::prune(store, now, std::time::Duration::from_secs(30 * 86_400)).await.unwrap();
    assert_eq!(store.queue_counts().await.unwrap().2, 0);
}

on_both_engines! {
    async fn failed_events_are_purged_after_their_retention(store: Store) {
        purge_failed_events_by_their_retention(&store).await;
    }
}

/// On SQLite the purged payloads are gone from the file too (secure delete).
#[tokio::test]
async fn purged_failed_events_leave_nothing_in_the_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    purge_failed_events_by_their_retention(&store).await;
    store.close().await;
    let bytes = std::fs::read(dir.path().join(DB_FILE)).unwrap();
    assert!(!bytes.windows(13).any(|w| w == b"p@example.com"), "purged payloads are overwritten");
}
