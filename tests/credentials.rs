//! Credentials end to end on a real Secret Service (gnome-keyring under `dbus-run-session`, see
//! scripts/with-keyring.sh), a real SQLite file and the sandbox over loopback: save-time
//! validation with test codes, rotation of a paused config, disconnect, and secrets never
//! reaching SQLite.

mod common;
use common::{keychain, keychain_game, KeychainGame};

use std::net::SocketAddr;
use std::sync::Arc;

use postback::connect::{ConnectError, Connector};
use postback::delivery::{Credentials, Dispatcher, DispatcherOptions};
use postback::ingest::import_ndjson;
use postback::model::{Network, PostbackConfig, RedditConfig, TikTokConfig};
use postback::sandbox::{self, RunningSandbox};
use postback::secrets::{Keychain, Secret, SecretStore, StoredCredential};
use postback::store::Store;
use serde_json::json;

/// A keychain-backed game and the sandbox networks it sends to.
struct Rig {
    game: KeychainGame,
    sandbox: RunningSandbox,
}

impl std::ops::Deref for Rig {
    type Target = KeychainGame;
    fn deref(&self) -> &KeychainGame {
        &self.game
    }
}

async fn rig() -> Rig {
    let sandbox = sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    Rig { game: keychain_game("Keychain Game").await, sandbox }
}

fn tiktok(base: &str, pixel: &str, test_code: Option<&str>) -> PostbackConfig {
    PostbackConfig::TikTok(TikTokConfig {
        pixel_code: pixel.into(),
        trigger_events: vec!["game_launch".into(), "purchase".into()],
        test_event_code: test_code.map(Into::into),
        base_url: Some(base.into()),
    })
}

fn reddit(base: &str, pixel: &str, test_id: Option<&str>) -> PostbackConfig {
    PostbackConfig::Reddit(RedditConfig {
        pixel_id: pixel.into(),
        trigger_events: vec!["purchase".into()],
        test_id: test_id.map(Into::into),
        base_url: Some(base.into()),
    })
}

/// Every byte SQLite wrote for this data dir (database, WAL, shared memory).
fn database_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        all.extend(std::fs::read(entry.unwrap().path()).unwrap_or_default());
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn keychain_round_trip_on_the_real_secret_service() {
    let keychain = keychain();
    let reference = postback::secrets::new_credential_ref(Network::Reddit, 99);
    assert_eq!(keychain.get(&reference).unwrap(), None);
    let value = StoredCredential::Token(Secret::new("round-trip-token")).to_keychain_value();
    keychain.set(&reference, &value).unwrap();
    assert_eq!(keychain.get(&reference).unwrap().map(|s| s.expose().to_owned()), Some(value.expose().to_owned()));
    // A second Keychain (a new D-Bus connection) sees the same entry: it is persisted, not cached.
    assert!(Keychain::system().get(&reference).unwrap().is_some());
    keychain.delete(&reference).unwrap();
    assert_eq!(keychain.get(&reference).unwrap(), None);
    keychain.delete(&reference).expect("deleting an absent entry is not an error");
}

#[tokio::test]
async fn save_validates_with_the_test_code_and_stores_the_token_only_in_the_keychain() {
    let rig = rig().await;
    let token = Secret::new(format!("  {}\n", sandbox::TIKTOK_TOKEN));
    let saved = rig
        .connector
        .save_with_token(rig.game_id, tiktok(&rig.sandbox.base_url, "CKEYCHAIN01", Some("TEST4242")), &token)
        .await
        .expect("the sandbox accepts the demo token");
    assert!(saved.validation.message.contains("accepted the test event"), "{}", saved.validation.message);
    // The one test event went to Test Events, not to live conversions.
    let stats = rig.sandbox.state.stats();
    assert_eq!((stats[&Network::TikTok].test_events, stats[&Network::TikTok].accepted), (1, 0));

    let stored = rig.store.config(saved.config_id).await.unwrap();
    let reference = stored.credential_ref.clone().expect("a keychain reference");
    assert!(reference.starts_with("tiktok-game"), "{reference}");
    let in_keychain = rig.keychain.get(&reference).unwrap().expect("the keychain holds the credential");
    assert_eq!(
        StoredCredential::from_keychain_value(&reference, &in_keychain).unwrap(),
        StoredCredential::Token(Secret::new(sandbox::TIKTOK_TOKEN)),
        "stored trimmed"
    );
    // Neither the token nor the test code is anywhere in SQLite's files.
    let bytes = database_bytes(rig.dir.path());
    assert!(contains(&bytes, &reference), "the reference is stored");
    assert!(!contains(&bytes, sandbox::TIKTOK_TOKEN), "the token must not reach SQLite");
    assert!(!contains(&bytes, "TEST4242"), "the test code must not be stored");
    match &stored.config {
        PostbackConfig::TikTok(c) => assert_eq!(c.test_event_code, None),
        other => panic!("{other:?}"),
    }

    // The dispatcher reads the token from the keychain and delivers.
    let report = rig.deliver_purchase("k1", json!({"ttclid": "tt"})).await;
    assert_eq!(report.success, 1);
    assert_eq!(rig.sandbox.state.stats()[&Network::TikTok].accepted, 1);

    rig.connector.disconnect(saved.config_id, false).await.unwrap();
    assert_eq!(rig.keychain.get(&reference).unwrap(), None, "disconnect removes the keychain entry");
    assert!(rig.store.config_for(rig.game_id, Network::TikTok).await.unwrap().is_none(), "and the config");
}

async fn refused(rig: &Rig, config: PostbackConfig, token: &str) -> (String, String) {
    match rig.connector.save_with_token(rig.game_id, config, &Secret::new(token)).await {
        Err(ConnectError::Refused { field, message }) => (field, message),
        Err(ConnectError::Input(e)) => (e.field, e.message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn refusals_say_what_to_fix_and_save_nothing() {
    let rig = rig().await;
    let base = rig.sandbox.base_url.clone();

    let (field, message) = refused(&rig, tiktok(&base, "CKEYCHAIN01", Some("T1")), "truncated-tok").await;
    assert_eq!(field, "access_token");
    assert!(message.contains("truncated or revoked"), "{message}");

    let (field, message) = refused(&rig, tiktok(&base, "CNOACCESS01", Some("T1")), sandbox::TIKTOK_TOKEN).await;
    assert_eq!(field, "access_token");
    assert!(message.contains("does not belong to this pixel or lacks admin rights"), "{message}");

    let (field, message) = refused(&rig, tiktok(&base, "CKEYCHAIN01", None), "Bearer abc").await;
    assert_eq!(field, "access_token");
    assert!(message.contains("'Bearer '"), "{message}");

    let (field, message) = refused(&rig, tiktok(&base, "CKEYCHAIN01", None), "abc\ndef").await;
    assert_eq!(field, "access_token");
    assert!(message.contains("spaces or line breaks"), "{message}");

    let (field, message) = refused(&rig, reddit(&base, "a2_noaccess1", Some("t_1")), sandbox::REDDIT_TOKEN).await;
    assert_eq!(field, "conversion_access_token");
    assert!(message.contains("no access to this pixel"), "{message}");

    let (field, message) = refused(&rig, reddit(&base, "a2_keychain1", Some("t_1")), "regenerated").await;
    assert_eq!(field, "conversion_access_token");
    assert!(message.contains("wrong or was regenerated"), "{message}");

    assert!(rig.store.configs(rig.game_id).await.unwrap().is_empty(), "nothing saved");
    assert_eq!(rig.sandbox.state.stats()[&Network::TikTok].accepted, 0);
}

#[tokio::test]
async fn rotation_validates_replaces_the_keychain_entry_and_unpauses() {
    let rig = rig().await;
    let saved = rig
        .connector
        .save_with_token(
            rig.game_id,
            reddit(&rig.sandbox.base_url, "a2_rotate1", Some("t_9")),
            &sandbox::REDDIT_TOKEN.into(),
        )
        .await
        .unwrap();
    let old_ref = rig.store.config(saved.config_id).await.unwrap().credential_ref.unwrap();
    // The network revokes the token: delivery pauses, nothing is burned.
    let mut faults = rig.sandbox.state.faults();
    faults.revoked_tokens = vec![sandbox::REDDIT_TOKEN.into()];
    rig.sandbox.state.set_faults(faults);
    let line = json!({"event_id": "r1", "name": "purchase", "occurred_at": chrono::Utc::now().to_rfc3339(),
                      "player_id": "p1", "consent": "full", "click_ids": {"rdt_cid": "rd"}})
    .to_string();
    import_ndjson(&rig.store, rig.game_id, line.as_bytes(), postback::delivery::now_ms()).await.unwrap();
    let mut dispatcher = Dispatcher::new(rig.store.clone(), rig.credentials.clone(), DispatcherOptions::default());
    dispatcher.run_until_idle().await.unwrap();
    let paused = rig.store.config(saved.config_id).await.unwrap();
    assert!(paused.paused_reason.is_some(), "a refused credential pauses the config");

    // Rotating to a token the network refuses changes nothing.
    let err = rig.connector.rotate_token(saved.config_id, &"still-wrong".into(), None).await.unwrap_err();
    assert!(matches!(err, ConnectError::Refused { .. }), "{err:?}");
    assert_eq!(rig.store.config(saved.config_id).await.unwrap().credential_ref.as_deref(), Some(old_ref.as_str()));

    // The network accepts the token again (the user regenerated it): rotation un-pauses.
    let mut faults = rig.sandbox.state.faults();
    faults.revoked_tokens.clear();
    rig.sandbox.state.set_faults(faults);
    rig.connector.rotate_token(saved.config_id, &sandbox::REDDIT_TOKEN.into(), Some("t_10".into())).await.unwrap();
    let rotated = rig.store.config(saved.config_id).await.unwrap();
    let new_ref = rotated.credential_ref.clone().unwrap();
    assert_ne!(new_ref, old_ref);
    assert_eq!(rotated.paused_reason, None);
    assert_eq!(rig.keychain.get(&old_ref).unwrap(), None, "the old entry is removed");
    assert!(rig.keychain.get(&new_ref).unwrap().is_some());
    let report = dispatcher.run_until_idle().await.unwrap();
    assert_eq!(report.success, 1, "the waiting event goes out after rotation");
    rig.connector.disconnect(saved.config_id, false).await.unwrap();
}

/// Fault injection with keyring-core's mock store: a locked keychain at save time stops the
/// save before anything is sent; an unreadable entry is reported without its bytes.
#[tokio::test]
async fn keychain_faults_stop_the_save_and_never_leak_the_value() {
    use keyring_core::mock;
    let store = mock::Store::new().unwrap();
    let inject = |reference: &str, error: keyring_core::Error| {
        let entry = keyring_core::api::CredentialStoreApi::build(
            store.as_ref(),
            postback::secrets::KEYCHAIN_SERVICE,
            reference,
            None,
        )
        .unwrap();
        entry.as_any().downcast_ref::<mock::Cred>().unwrap().set_error(error);
    };
    let keychain = Arc::new(Keychain::with_store(store.clone()));

    inject("postback-desk-probe", keyring_core::Error::NoStorageAccess("the login keyring is locked".into()));
    let dir = tempfile::tempdir().unwrap();
    let db = Store::open(dir.path()).await.unwrap();
    let sb = sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let game_id = db.create_game("Locked").await.unwrap().id;
    let connector = Connector::new(db.clone(), Arc::new(Credentials::new(keychain.clone())));
    let err = connector
        .save_with_token(game_id, tiktok(&sb.base_url, "CLOCKED001", Some("T")), &sandbox::TIKTOK_TOKEN.into())
        .await
        .unwrap_err();
    let api = postback::model::ApiError::from(err);
    assert_eq!(api.code, "keychain_unavailable");
    assert!(api.message.contains("locked") && api.message.contains("unlock it"), "{}", api.message);
    assert_eq!(sb.state.stats()[&Network::TikTok].requests, 0, "nothing sent while the keychain is locked");
    assert!(db.configs(game_id).await.unwrap().is_empty());

    inject("tiktok-bad", keyring_core::Error::BadEncoding(b"super-secret-bytes".to_vec()));
    let err = keychain.get("tiktok-bad").unwrap_err();
    assert!(!format!("{err} {err:?}").contains("super-secret"), "{err:?}");
    assert!(err.to_string().contains("reconnect"), "{err}");
}

/// A keychain that is locked when the dispatcher needs the token delays the batch; it neither
/// burns attempts nor pauses the config, and the event goes out once the keychain answers.
#[tokio::test]
async fn a_locked_keychain_during_delivery_defers_without_pausing() {
    use keyring_core::mock;
    let mock_store = mock::Store::new().unwrap();
    let keychain = Arc::new(Keychain::with_store(mock_store.clone()));
    let dir = tempfile::tempdir().unwrap();
    let db = Store::open(dir.path()).await.unwrap();
    let sb = sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let game_id = db.create_game("Later").await.unwrap().id;
    let credentials = Arc::new(Credentials::new(keychain.clone()));
    let saved = Connector::new(db.clone(), credentials.clone())
        .save_with_token(game_id, tiktok(&sb.base_url, "CLATER0001", Some("T")), &sandbox::TIKTOK_TOKEN.into())
        .await
        .unwrap();
    let reference = db.config(saved.config_id).await.unwrap().credential_ref.unwrap();
    let entry = keyring_core::api::CredentialStoreApi::build(
        mock_store.as_ref(),
        postback::secrets::KEYCHAIN_SERVICE,
        &reference,
        None,
    )
    .unwrap();
    // The next read fails as a locked keychain does (the mock clears the error after one call).
    entry
        .as_any()
        .downcast_ref::<mock::Cred>()
        .unwrap()
        .set_error(keyring_core::Error::NoStorageAccess("the collection is locked".into()));

    let line = json!({"event_id": "l1", "name": "purchase", "occurred_at": chrono::Utc::now().to_rfc3339(),
                      "player_id": "p1", "consent": "full", "click_ids": {"ttclid": "tt"}})
    .to_string();
    import_ndjson(&db, game_id, line.as_bytes(), postback::delivery::now_ms()).await.unwrap();
    let options =
        DispatcherOptions { credential_retry: std::time::Duration::from_millis(100), ..DispatcherOptions::default() };
    let report = Dispatcher::new(db.clone(), credentials, options).run_until_idle().await.unwrap();
    assert_eq!((report.deferred, report.success, report.failed, report.retried), (1, 1, 0, 0));
    assert_eq!(db.config(saved.config_id).await.unwrap().paused_reason, None);
    let log = db.log_page(&postback::store::LogFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(log.iter().map(|e| e.attempt).collect::<Vec<_>>(), [1], "the deferral cost no attempt");
}
