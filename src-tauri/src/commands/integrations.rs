use postback::model::{ApiError, AppInfo, ConfigSummary, Game};
use tauri::State;

use crate::state::AppState;

#[tauri::command]
pub async fn app_info(state: State<'_, AppState>) -> Result<AppInfo, ApiError> {
    Ok(AppInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        data_dir: state.data_dir.display().to_string(),
        current_game: state.game.clone(),
        sandbox_demo: postback::model::SandboxDemo::get(),
    })
}

#[tauri::command]
pub async fn list_games(state: State<'_, AppState>) -> Result<Vec<Game>, ApiError> {
    Ok(state.store.games().await?)
}

#[tauri::command]
pub async fn list_integrations(state: State<'_, AppState>, game_id: i64) -> Result<Vec<ConfigSummary>, ApiError> {
    Ok(state.store.integrations(game_id).await?)
}
