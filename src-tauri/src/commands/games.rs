//! Games: the switcher in the top bar and its create / rename / delete.

use postback::model::{ApiError, Game, GameUsage};
use tauri::State;

use crate::state::AppState;

#[tauri::command]
pub async fn list_games(state: State<'_, AppState>) -> Result<Vec<Game>, ApiError> {
    Ok(state.store.games().await?)
}

#[tauri::command]
pub async fn create_game(state: State<'_, AppState>, name: String) -> Result<Game, ApiError> {
    Ok(state.setup.create_game(&name).await?)
}

#[tauri::command]
pub async fn rename_game(state: State<'_, AppState>, game_id: i64, name: String) -> Result<Game, ApiError> {
    Ok(state.setup.rename_game(game_id, &name).await?)
}

/// The window shows this game from now on, also after a restart.
#[tauri::command]
pub async fn switch_game(state: State<'_, AppState>, game_id: i64) -> Result<Game, ApiError> {
    Ok(state.store.set_current_game(game_id).await?)
}

/// What a deletion would remove, for the confirmation.
#[tauri::command]
pub async fn game_usage(state: State<'_, AppState>, game_id: i64) -> Result<GameUsage, ApiError> {
    Ok(state.store.game_usage(game_id).await?)
}

#[tauri::command]
pub async fn delete_game(state: State<'_, AppState>, game_id: i64) -> Result<GameUsage, ApiError> {
    Ok(state.setup.delete_game(game_id).await?)
}
