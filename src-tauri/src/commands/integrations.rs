use postback::model::{ApiError, AppInfo, ConfigSummary};
use tauri::State;

use crate::state::AppState;

#[tauri::command]
pub async fn app_info(state: State<'_, AppState>) -> Result<AppInfo, ApiError> {
    let opened = state.now();
    // A team workspace's first game is its own; the local one's is the sandbox demo.
    let current_game = match opened.is_team() {
        true => postback::team::first_game(&opened.store).await?,
        false => postback::sandbox::ensure_demo_game(&opened.store, &postback::sandbox_base_url()).await?,
    };
    Ok(AppInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        data_dir: state.data_dir.display().to_string(),
        current_game,
        sandbox_demo: postback::model::SandboxDemo::get(),
        workspace: opened.workspace.clone(),
    })
}

/// The game's cards; on a team workspace each with the worker that delivers it.
#[tauri::command]
pub async fn list_integrations(state: State<'_, AppState>, game_id: i64) -> Result<Vec<ConfigSummary>, ApiError> {
    let opened = state.now();
    let mut rows = opened.store.integrations(game_id).await?;
    postback::team::attach_workers(&opened.store, &mut rows, postback::delivery::now_ms()).await?;
    Ok(rows)
}

/// TikTok / Reddit: the events the config forwards (at least one).
#[tauri::command]
pub async fn set_trigger_events(
    state: State<'_, AppState>,
    config_id: i64,
    events: Vec<String>,
) -> Result<Vec<String>, ApiError> {
    Ok(state.now().setup.set_trigger_events(config_id, &events).await?)
}

/// Off: the config's events are not queued, and those queued wait.
#[tauri::command]
pub async fn set_config_enabled(state: State<'_, AppState>, config_id: i64, enabled: bool) -> Result<(), ApiError> {
    Ok(state.now().store.set_enabled(config_id, enabled).await?)
}
