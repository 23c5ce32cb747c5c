use postback::model::EngineState;
use tauri::{Manager, Runtime};

use crate::background::Background;

/// What the delivery engine is doing now; changes arrive as `engine-state` events.
#[tauri::command]
pub fn engine_state<R: Runtime>(app: tauri::AppHandle<R>) -> EngineState {
    app.try_state::<Background>().map_or(EngineState::Starting, |background| background.engine().borrow().clone())
}
