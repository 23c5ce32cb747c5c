use std::path::PathBuf;
use std::sync::Arc;

use postback::connect::Connector;
use postback::delivery::Credentials;
use postback::model::Game;
use postback::store::Store;

/// What every command can reach: the open store, the game the window shows, and the
/// credential lifecycle (OS keychain) shared with the dispatcher.
pub struct AppState {
    pub store: Store,
    pub game: Game,
    pub data_dir: PathBuf,
    pub credentials: Arc<Credentials>,
    pub connector: Connector,
}

impl AppState {
    /// Opens the database (creating it and the demo game on first start).
    pub async fn open(data_dir: PathBuf) -> Result<Self, postback::store::StoreError> {
        let store = Store::open(&data_dir).await?;
        let game = store.ensure_demo_game(&postback::sandbox_base_url()).await?;
        // The keychain connects on first use: the sandbox demo works without one.
        let credentials = Arc::new(Credentials::with_system_keychain());
        let connector = Connector::new(store.clone(), credentials.clone());
        Ok(Self { store, game, data_dir, credentials, connector })
    }
}
