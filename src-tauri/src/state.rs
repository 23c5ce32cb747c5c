use std::path::PathBuf;

use postback::model::Game;
use postback::store::Store;

/// What every command can reach: the open store and the game the window shows.
pub struct AppState {
    pub store: Store,
    pub game: Game,
    pub data_dir: PathBuf,
}

impl AppState {
    /// Opens the database (creating it and the demo game on first start).
    pub async fn open(data_dir: PathBuf) -> Result<Self, postback::store::StoreError> {
        let store = Store::open(&data_dir).await?;
        let game = store.ensure_demo_game(&postback::sandbox_base_url()).await?;
        Ok(Self { store, game, data_dir })
    }
}
