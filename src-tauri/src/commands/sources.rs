//! The Sources page: the ingest API (status, token, rotation), file import with progress,
//! cancel and every error downloadable, the attribution summary, and the demo generator.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use postback::delivery::now_ms;
use postback::ingest::demo::DemoStats;
use postback::ingest::{FileFormat, ImportControl, ImportError, ImportProgress, ImportReport};
use postback::model::ApiError;
use postback::watch::attribution::{self, SourceTraffic};
use tauri::ipc::Channel;
use tauri::{Emitter, Runtime, State};

use postback::ingest::server::IngestStatus;

use crate::sources::Sources;
use crate::state::AppState;

#[tauri::command]
pub async fn ingest_status(sources: State<'_, Sources>) -> Result<IngestStatus, ApiError> {
    Ok(sources.status().await)
}

/// The token game servers send; shown only when the user asks to see or copy it.
#[tauri::command]
pub async fn ingest_token(state: State<'_, AppState>, sources: State<'_, Sources>) -> Result<String, ApiError> {
    let opened = state.now();
    let token = sources.token(&opened.store, opened.is_team()).await.map_err(token_error)?;
    Ok(token.expose().to_owned())
}

fn token_error(e: postback::ingest::token::TokenError) -> ApiError {
    let code = match e {
        postback::ingest::token::TokenError::ShownOnce => "token_shown_once",
        _ => "keychain",
    };
    ApiError::new(code, e.to_string())
}

#[tauri::command]
pub async fn rotate_ingest_token(state: State<'_, AppState>, sources: State<'_, Sources>) -> Result<String, ApiError> {
    let opened = state.now();
    let token = sources.rotate(&opened.store, opened.is_team()).await.map_err(token_error)?;
    Ok(token.expose().to_owned())
}

/// Per source and network over a range: arrived, queued, not forwarded and why.
#[tauri::command]
pub async fn attribution(
    state: State<'_, AppState>,
    game_id: i64,
    since_ms: i64,
    until_ms: Option<i64>,
) -> Result<Vec<SourceTraffic>, ApiError> {
    let store = state.now().store.clone();
    let traffic = store.traffic(game_id, since_ms, until_ms.unwrap_or(now_ms() + 1)).await?;
    let configs = store.integrations(game_id).await?;
    Ok(attribution::summarize(&traffic, &configs))
}

#[tauri::command]
pub async fn pick_import_file<R: Runtime>(app: tauri::AppHandle<R>) -> Option<String> {
    crate::dialogs::open_path(&app).await
}

/// Imports an NDJSON or CSV file into a game: progress on the channel, the first 100 bad lines
/// in the report, all of them kept for `save_import_errors`.
#[tauri::command]
pub async fn import_file(
    state: State<'_, AppState>,
    sources: State<'_, Sources>,
    game_id: i64,
    path: String,
    on_progress: Channel<ImportProgress>,
) -> Result<ImportReport, ApiError> {
    let file = std::fs::File::open(&path)
        .map_err(|e| ApiError::new("invalid_input", format!("cannot read {path}: {e}")).on_field("path"))?;
    let total_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let cancel = Arc::new(AtomicBool::new(false));
    *sources.import_cancel.lock().unwrap_or_else(|p| p.into_inner()) = Some(cancel.clone());
    let errors = Sources::new_import_errors(&state.data_dir)
        .map_err(|e| ApiError::new("storage", format!("cannot write in {}: {e}", state.data_dir.display())))?;
    let mut errors_file = std::io::BufWriter::new(errors.as_file());
    let mut on_error = |e: &postback::ingest::LineError| {
        if serde_json::to_writer(&mut errors_file, e).is_ok() {
            let _ = errors_file.write_all(b"\n");
        }
    };
    let mut on_progress_report = |r: &ImportReport, bytes_read: u64| {
        let _ = on_progress.send(ImportProgress {
            bytes_read,
            total_bytes,
            lines: r.lines,
            events: r.events,
            enqueued: r.enqueued,
            errors: r.error_count,
        });
    };
    let mut control = ImportControl {
        cancel: &cancel,
        on_progress: &mut on_progress_report,
        on_error: &mut on_error,
        keep_errors: 100,
    };
    let input = std::io::BufReader::with_capacity(1 << 16, file);
    let format = FileFormat::of_path(std::path::Path::new(&path));
    let outcome = postback::ingest::import(&state.now().store, game_id, input, format, &mut control, now_ms()).await;
    let _ = errors_file.flush();
    drop(errors_file);
    sources.keep_import_errors(errors);
    match outcome {
        Ok(report) => Ok(report),
        Err(ImportError::Cancelled { report }) => Err(ApiError::new(
            "cancelled",
            format!(
                "cancelled after {} lines: the {} conversions queued from them stay queued",
                report.lines, report.enqueued
            ),
        )),
        Err(e) => Err(ApiError::new("import_failed", e.to_string())),
    }
}

#[tauri::command]
pub fn cancel_import(sources: State<'_, Sources>) {
    if let Some(flag) = sources.import_cancel.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
        flag.store(true, Ordering::Relaxed);
    }
}

/// Saves every bad line of the last import (NDJSON) where the user chooses.
#[tauri::command]
pub async fn save_import_errors<R: Runtime>(
    app: tauri::AppHandle<R>,
    sources: State<'_, Sources>,
) -> Result<Option<String>, ApiError> {
    let Some(from) = sources.open_import_errors() else {
        return Err(ApiError::new("not_found", "no import has run yet"));
    };
    let mut from = from.map_err(|e| ApiError::new("storage", format!("cannot read the import's errors: {e}")))?;
    let Some(to) = crate::dialogs::save_as(&app, "Import errors", "ndjson", "import-errors.ndjson").await else {
        return Ok(None);
    };
    postback::private_files::create(std::path::Path::new(&to))
        .and_then(|mut out| std::io::copy(&mut from, &mut out))
        .map_err(|e| ApiError::new("storage", format!("cannot write {to}: {e}")))?;
    Ok(Some(to))
}

/// Starts the demo generator (through the ingest API) at `rate` events per second.
#[tauri::command]
pub async fn demo_start<R: Runtime>(
    app: tauri::AppHandle<R>,
    state: State<'_, AppState>,
    sources: State<'_, Sources>,
    game_id: i64,
    rate: f64,
) -> Result<(), ApiError> {
    if !(rate > 0.0 && rate <= 1000.0) {
        return Err(ApiError::new("invalid_input", "the rate is 1 to 1000 events per second").on_field("rate"));
    }
    let emitter = app.clone();
    sources
        .start_demo(&state.now().store, game_id, rate, move |stats| {
            let _ = emitter.emit("demo-stats", stats);
        })
        .await
        .map_err(|m| ApiError::new("ingest_down", m))
}

#[tauri::command]
pub fn demo_stop(sources: State<'_, Sources>) -> Option<DemoStats> {
    sources.stop_demo()
}

/// The demo's stats when it runs.
#[tauri::command]
pub fn demo_status(sources: State<'_, Sources>) -> Option<DemoStats> {
    sources.demo_running()
}
