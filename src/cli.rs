//! The work behind the `postback` commands, kept out of `main` so tests can call it.

use std::path::Path;

use serde_json::json;

use crate::model::{ConversionEvent, InputError, PostbackConfig};
use crate::networks::{self, Preview};

fn read_file(path: &Path, field: &str) -> Result<String, InputError> {
    std::fs::read_to_string(path)
        .map_err(|e| InputError::new(field, format!("cannot read {}: {e}; check the path", path.display())))
}

/// `postback preview --config C --event E`: the request(s) the event would produce.
pub fn preview_files(config_path: &Path, event_path: &Path) -> Result<Preview, InputError> {
    let config = PostbackConfig::from_json_str(&read_file(config_path, "config")?)?;
    let event = ConversionEvent::from_json_str(&read_file(event_path, "event")?)?;
    Ok(networks::preview(&config, &event, false, chrono::Utc::now()))
}

/// The document printed on stderr for invalid input.
pub fn error_json(error: &InputError) -> serde_json::Value {
    json!({ "error": { "field": error.field, "message": error.message } })
}
