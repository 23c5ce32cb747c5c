//! Helpers shared by the integration test crates that use the keychain.

use std::sync::Arc;

use postback::connect::Connector;
use postback::delivery::{Credentials, Dispatcher, DispatcherOptions, RunReport};
use postback::ingest::import_ndjson;
use postback::secrets::Keychain;
use postback::store::Store;
use serde_json::{json, Value};

/// The real Secret Service of the test session; fails loudly outside one.
pub fn keychain() -> Arc<Keychain> {
    let keychain = Keychain::system();
    if let Err(e) = keychain.check() {
        panic!("these tests need a Secret Service: run them through scripts/with-keyring.sh ({e})");
    }
    Arc::new(keychain)
}

/// A game on a real SQLite file with the keychain-backed credential lifecycle.
pub struct KeychainGame {
    /// Holds the SQLite files; not every test crate reads it.
    #[allow(dead_code)]
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub game_id: i64,
    pub keychain: Arc<Keychain>,
    pub credentials: Arc<Credentials>,
    pub connector: Connector,
}

pub async fn keychain_game(name: &str) -> KeychainGame {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let game_id = store.create_game(name).await.unwrap().id;
    let keychain = keychain();
    let credentials = Arc::new(Credentials::new(keychain.clone()));
    let connector = Connector::new(store.clone(), credentials.clone());
    KeychainGame { dir, store, game_id, keychain, credentials, connector }
}

impl KeychainGame {
    /// Imports one full-consent purchase with these click ids and delivers until idle.
    pub async fn deliver_purchase(&self, event_id: &str, click_ids: Value) -> RunReport {
        let line = json!({"event_id": event_id, "name": "purchase", "occurred_at": chrono::Utc::now().to_rfc3339(),
                          "player_id": "p1", "consent": "full", "click_ids": click_ids})
        .to_string();
        import_ndjson(&self.store, self.game_id, line.as_bytes(), postback::delivery::now_ms()).await.unwrap();
        Dispatcher::new(self.store.clone(), self.credentials.clone(), DispatcherOptions::default())
            .run_until_idle()
            .await
            .unwrap()
    }
}
