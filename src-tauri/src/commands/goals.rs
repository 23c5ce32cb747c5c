//! Conversion Goals and the X Event Tag Mapping.

use postback::model::{ApiError, Goal};
use postback::setup::{GoalInput, TagCheck, TagInput, TagMapping};
use tauri::State;

use crate::state::AppState;

#[tauri::command]
pub async fn list_goals(state: State<'_, AppState>, game_id: i64) -> Result<Vec<Goal>, ApiError> {
    Ok(state.now().store.goals(game_id).await?)
}

/// Creates (no key) or updates a goal; errors name the form field.
#[tauri::command]
pub async fn save_goal(state: State<'_, AppState>, game_id: i64, input: GoalInput) -> Result<Goal, ApiError> {
    Ok(state.now().setup.save_goal(game_id, &input).await?)
}

#[tauri::command]
pub async fn set_goal_active(
    state: State<'_, AppState>,
    game_id: i64,
    key: String,
    active: bool,
) -> Result<(), ApiError> {
    Ok(state.now().store.set_goal_active(game_id, &key, active).await?)
}

#[tauri::command]
pub async fn delete_goal(state: State<'_, AppState>, game_id: i64, key: String) -> Result<(), ApiError> {
    Ok(state.now().store.delete_goal(game_id, &key).await?)
}

#[tauri::command]
pub async fn reorder_goals(state: State<'_, AppState>, game_id: i64, keys: Vec<String>) -> Result<Vec<Goal>, ApiError> {
    Ok(state.now().setup.reorder_goals(game_id, &keys).await?)
}

#[tauri::command]
pub async fn tag_mapping(state: State<'_, AppState>, config_id: i64) -> Result<TagMapping, ApiError> {
    Ok(state.now().setup.tag_mapping(config_id).await?)
}

/// The as-you-type check of the mapping table (nothing saved).
#[tauri::command]
pub async fn check_tags(
    state: State<'_, AppState>,
    config_id: i64,
    tags: Vec<TagInput>,
) -> Result<Vec<TagCheck>, ApiError> {
    Ok(state.now().setup.check_tags(config_id, &tags).await?)
}

/// Saves the mapping unless a tag is malformed (`field` = `tags.<goal key>`).
#[tauri::command]
pub async fn save_tags(
    state: State<'_, AppState>,
    config_id: i64,
    tags: Vec<TagInput>,
) -> Result<Vec<TagCheck>, ApiError> {
    Ok(state.now().setup.save_tags(config_id, &tags).await?)
}
