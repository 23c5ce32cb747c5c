//! Games: the switcher in the top bar and its create / edit (name, default country for phone
//! numbers) / delete.

use postback::model::{ApiError, Game, GameUsage};
use tauri::State;

use crate::state::AppState;

#[tauri::command]
pub async fn list_games(state: State<'_, AppState>) -> Result<Vec<Game>, ApiError> {
    Ok(state.now().store.games().await?)
}

/// `default_country`: ISO 3166-1 alpha-2 code for phone numbers written without a country
/// code; absent or empty: none.
#[tauri::command]
pub async fn create_game(
    state: State<'_, AppState>,
    name: String,
    default_country: Option<String>,
) -> Result<Game, ApiError> {
    Ok(state.now().setup.create_game_with_country(&name, default_country.as_deref().unwrap_or_default()).await?)
}

#[tauri::command]
pub async fn rename_game(state: State<'_, AppState>, game_id: i64, name: String) -> Result<Game, ApiError> {
    Ok(state.now().setup.rename_game(game_id, &name).await?)
}

/// The game form: name and default country (empty: none), both checked before either is saved;
/// an error names the field (`name`, `default_country`).
#[tauri::command]
pub async fn update_game(
    state: State<'_, AppState>,
    game_id: i64,
    name: String,
    default_country: Option<String>,
) -> Result<Game, ApiError> {
    Ok(state.now().setup.update_game(game_id, &name, default_country.as_deref().unwrap_or_default()).await?)
}

/// The codes a game's default country can be, for the form's list.
#[tauri::command]
pub fn phone_countries() -> Vec<String> {
    postback::identity::phone_countries()
}

/// The window shows this game from now on, also after a restart.
#[tauri::command]
pub async fn switch_game(state: State<'_, AppState>, game_id: i64) -> Result<Game, ApiError> {
    Ok(state.now().store.set_current_game(game_id).await?)
}

/// What a deletion would remove, for the confirmation.
#[tauri::command]
pub async fn game_usage(state: State<'_, AppState>, game_id: i64) -> Result<GameUsage, ApiError> {
    Ok(state.now().store.game_usage(game_id).await?)
}

#[tauri::command]
pub async fn delete_game(state: State<'_, AppState>, game_id: i64) -> Result<GameUsage, ApiError> {
    Ok(state.now().setup.delete_game(game_id).await?)
}
