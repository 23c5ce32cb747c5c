use postback::model::formats::{self, IdKind};
use postback::model::ApiError;

/// The same id format checks as the CLI, for forms that validate as the user types.
#[tauri::command]
pub fn check_id_format(kind: IdKind, value: String) -> Result<String, ApiError> {
    Ok(formats::check(kind, &value)?)
}
