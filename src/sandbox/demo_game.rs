//! The demo game of a first start: three configs pointing at the built-in sandbox, so the app
//! runs end to end with no ad account. Made here, above the store, which knows nothing of the
//! sandbox.

use crate::model::{Game, Goal};
use crate::store::{Store, StoreError};

/// The demo game's name.
pub const DEMO_GAME_NAME: &str = "Sandbox Game";

/// On first start: a demo game whose three configs point at the sandbox at `sandbox_base_url`.
/// Does nothing when any game exists. Returns the current game (the one chosen last).
pub async fn ensure_demo_game(store: &Store, sandbox_base_url: &str) -> Result<Game, StoreError> {
    if let Some(current) = store.current_game().await? {
        return Ok(current);
    }
    let game = match store.create_demo_game(DEMO_GAME_NAME).await {
        Ok(game) => game,
        // Another process of this workspace made it meanwhile.
        Err(StoreError::GameExists(_)) => {
            return store.current_game().await?.ok_or(StoreError::Corrupt("the demo game vanished".into()))
        }
        Err(e) => return Err(e),
    };
    let goals = vec![
        Goal::mapped("launch", "Game launch", "game_launch", "tw-sbx01-launch"),
        Goal::mapped("purchase", "Purchase", "purchase", "tw-sbx01-buy01"),
    ];
    for config in &super::demo_configs(sandbox_base_url, &["game_launch", "purchase"], goals) {
        store.create_config(game.id, config, Some(crate::SANDBOX_CREDENTIAL_REF)).await?;
    }
    Ok(game)
}
