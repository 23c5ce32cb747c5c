//! Connect, rotate, reconnect and disconnect. Tokens come in once and go to the keychain; no
//! command ever returns one.

use postback::connect::{Saved, TokenIntegrationInput, XAuthMethod};
use postback::model::ApiError;
use postback::oauth::{SystemBrowser, DEFAULT_BROWSER_TIMEOUT};
use tauri::State;

use crate::state::AppState;

#[tauri::command]
pub async fn save_token_integration(
    state: State<'_, AppState>,
    input: TokenIntegrationInput,
) -> Result<Saved, ApiError> {
    Ok(state.now().connector.save_form(&input).await?)
}

/// Opens the system browser and waits (up to 5 minutes) for the user to approve.
#[tauri::command]
pub async fn authorize_x(
    state: State<'_, AppState>,
    game_id: i64,
    method: XAuthMethod,
    sandbox: bool,
) -> Result<String, ApiError> {
    Ok(state.now().connector.authorize_x(game_id, &method, sandbox, &SystemBrowser, DEFAULT_BROWSER_TIMEOUT).await?)
}

/// Stops a Connect X that is waiting for the browser; `authorize_x` then fails as cancelled.
#[tauri::command]
pub fn cancel_x_authorization(state: State<'_, AppState>) {
    state.now().connector.cancel_x();
}

#[tauri::command]
pub async fn finish_x_connection(
    state: State<'_, AppState>,
    game_id: i64,
    handle: String,
    pixel_id: String,
) -> Result<Saved, ApiError> {
    Ok(state.now().connector.finish_x(game_id, &handle, &pixel_id).await?)
}

/// Refused with code `queued_events` (and the count) while conversions wait, unless the user
/// confirmed discarding them.
#[tauri::command]
pub async fn disconnect_integration(
    state: State<'_, AppState>,
    config_id: i64,
    discard_queued: bool,
) -> Result<(), ApiError> {
    Ok(state.now().connector.disconnect(config_id, discard_queued).await?)
}
