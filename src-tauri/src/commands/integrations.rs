use postback::model::{ApiError, AppInfo, ConfigSummary};
use tauri::State;

use crate::state::AppState;

#[tauri::command]
pub async fn app_info(state: State<'_, AppState>) -> Result<AppInfo, ApiError> {
    Ok(AppInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        data_dir: state.data_dir.display().to_string(),
        current_game: postback::sandbox::ensure_demo_game(&state.store, &postback::sandbox_base_url()).await?,
        sandbox_demo: postback::model::SandboxDemo::get(),
    })
}

#[tauri::command]
pub async fn list_integrations(state: State<'_, AppState>, game_id: i64) -> Result<Vec<ConfigSummary>, ApiError> {
    Ok(state.store.integrations(game_id).await?)
}

/// TikTok / Reddit: the events the config forwards (at least one).
#[tauri::command]
pub async fn set_trigger_events(
    state: State<'_, AppState>,
    config_id: i64,
    events: Vec<String>,
) -> Result<Vec<String>, ApiError> {
    Ok(state.setup.set_trigger_events(config_id, &events).await?)
}

/// Off: the config's events are not queued, and those queued wait.
#[tauri::command]
pub async fn set_config_enabled(state: State<'_, AppState>, config_id: i64, enabled: bool) -> Result<(), ApiError> {
    Ok(state.store.set_enabled(config_id, enabled).await?)
}
