//! The Tester page: what a pasted event would send to each of the game's configs, and one test
//! send in a network's test mode. Nothing is queued or logged; the test code is not kept.

use std::time::Duration;

use postback::model::ApiError;
use postback::tester::{self, EventCheck, TestAnswer};
use tauri::State;

use crate::state::AppState;

/// The event in `text` (canonical JSON) checked against each of the game's configs; a text
/// that is not an event comes back as its problem (field and line), not as an error.
#[tauri::command]
pub async fn check_event(state: State<'_, AppState>, game_id: i64, text: String) -> Result<EventCheck, ApiError> {
    Ok(tester::check_for_game(&state.now().store, game_id, &text).await?)
}

/// Sends the event in `text` to config `config_id` under `test_code` and returns the
/// network's answer.
#[tauri::command]
pub async fn send_test_event(
    state: State<'_, AppState>,
    config_id: i64,
    text: String,
    test_code: String,
) -> Result<TestAnswer, ApiError> {
    let event = tester::read_event(&text)?;
    let http = postback::delivery::http_client(Duration::from_secs(20))
        .map_err(|e| ApiError::new("internal", format!("the HTTP client cannot be built: {e}")))?;
    let opened = state.now();
    Ok(tester::send_for_config(&opened.store, &opened.credentials, &http, config_id, &event, &test_code).await?)
}
