//! The Delivery log page: keyset pages, the chart, a row's drill-down, diagnostics, replay,
//! export (streamed by Rust to a file the user picks, with progress and cancel), alerts.
//! The window never names an export path: it gets a handle to the file chosen in the dialog.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use postback::deadline::QueueDeadline;
use postback::delivery::now_ms;
use postback::freshness::Freshness;
use postback::model::{ApiError, LogDetail, LogEntry, LogFilter, LogSummary};
use postback::quality::ConfigQuality;
use postback::watch::diagnose::DiagnosticItem;
use postback::watch::export::{self, ExportError, ExportFormat, ExportProgress, ExportTarget};
use tauri::ipc::Channel;
use tauri::State;

use crate::state::AppState;

#[tauri::command]
pub async fn log_page(state: State<'_, AppState>, filter: LogFilter) -> Result<Vec<LogEntry>, ApiError> {
    Ok(state.now().store.log_page(&filter).await?)
}

#[tauri::command]
pub async fn log_summary(state: State<'_, AppState>, filter: LogFilter) -> Result<LogSummary, ApiError> {
    Ok(state.now().store.log_summary(&filter, now_ms()).await?)
}

#[tauri::command]
pub async fn log_detail(state: State<'_, AppState>, id: i64) -> Result<LogDetail, ApiError> {
    Ok(state.now().watch.detail(id).await?)
}

#[tauri::command]
pub async fn log_diagnostics(
    state: State<'_, AppState>,
    config_id: i64,
    filter: LogFilter,
) -> Result<Vec<DiagnosticItem>, ApiError> {
    Ok(state.now().watch.diagnostics(config_id, &filter, now_ms()).await?)
}

/// Each of a game's configs' match quality over `[since, until)` (default: until now), from the
/// hourly match-key counts of what was queued.
#[tauri::command]
pub async fn match_quality(
    state: State<'_, AppState>,
    game_id: i64,
    since_ms: i64,
    until_ms: Option<i64>,
) -> Result<Vec<ConfigQuality>, ApiError> {
    Ok(state.now().watch.quality(game_id, since_ms, until_ms.unwrap_or(now_ms() + 1)).await?)
}

/// Each of a game's configs' delays from event to acceptance (p50, p95) over `[since, until)`
/// and its conversions that went too old, from hourly counts.
#[tauri::command]
pub async fn freshness(
    state: State<'_, AppState>,
    game_id: i64,
    since_ms: i64,
    until_ms: Option<i64>,
) -> Result<Vec<Freshness>, ApiError> {
    Ok(state.now().watch.freshness(game_id, since_ms, until_ms.unwrap_or(now_ms() + 1)).await?)
}

/// Each of a game's configs' queued conversions against the network's acceptance window (the
/// card warns when some close within 24 h).
#[tauri::command]
pub async fn queue_deadlines(state: State<'_, AppState>, game_id: i64) -> Result<Vec<QueueDeadline>, ApiError> {
    Ok(state.now().watch.deadlines(game_id, now_ms()).await?)
}

/// Re-queues the selected rows' conversions (failed or given up) under their own event ids.
#[tauri::command]
pub async fn replay_log_rows(state: State<'_, AppState>, ids: Vec<i64>) -> Result<u64, ApiError> {
    Ok(state.now().store.replay_log_rows(&ids, now_ms()).await?)
}

/// Re-queues every failed or given-up conversion the filter shows.
#[tauri::command]
pub async fn replay_filtered(state: State<'_, AppState>, filter: LogFilter) -> Result<u64, ApiError> {
    Ok(state.now().store.replay_filtered(&filter, now_ms()).await?)
}

#[tauri::command]
pub async fn alert_threshold(state: State<'_, AppState>) -> Result<f64, ApiError> {
    Ok(state.now().watch.alert_threshold().await?)
}

#[tauri::command]
pub async fn set_alert_threshold(state: State<'_, AppState>, threshold: f64) -> Result<f64, ApiError> {
    Ok(state.now().watch.set_alert_threshold(threshold).await?)
}

/// Asks where to save an export with the system dialog; `None` when the user cancels. The path
/// stays here: the window gets a handle for `export_log`.
#[tauri::command]
pub async fn pick_export_file<R: tauri::Runtime>(
    app: tauri::AppHandle<R>,
    state: State<'_, AppState>,
    format: ExportFormat,
) -> Result<Option<ExportTarget>, ApiError> {
    let path = crate::dialogs::save_path(&app, format).await;
    Ok(path.map(|path| state.export_choice.hold(path, format)))
}

/// Writes the filter's rows to the file chosen under `handle` (streamed, flat memory),
/// reporting progress; a cancelled or failed export leaves no partial file behind.
#[tauri::command]
pub async fn export_log(
    state: State<'_, AppState>,
    filter: LogFilter,
    handle: String,
    on_progress: Channel<ExportProgress>,
) -> Result<u64, ApiError> {
    let (path, format) = state.export_choice.take(&handle).ok_or_else(|| {
        ApiError::new("not_found", "no file is chosen for this export; choose where to save it again")
    })?;
    let cancel = Arc::new(AtomicBool::new(false));
    *state.export_cancel.lock().unwrap_or_else(|p| p.into_inner()) = Some(cancel.clone());
    // Players' data: readable by the owner only, as in the data directory.
    let file = postback::private_files::create(&path)
        .map_err(|e| ApiError::new("export_failed", format!("cannot create {}: {e}", path.display())))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let result = export::export(
        &state.now().store,
        &filter,
        format,
        &mut out,
        |written, total| {
            let _ = on_progress.send(ExportProgress { written, total });
        },
        &cancel,
    )
    .await;
    drop(out);
    if result.is_err() {
        let _ = std::fs::remove_file(&path);
    }
    result.map_err(|e| match e {
        ExportError::Cancelled => ApiError::new("cancelled", "the export was cancelled; no file was left behind"),
        other => ApiError::new("export_failed", other.to_string()),
    })
}

#[tauri::command]
pub fn cancel_export(state: State<'_, AppState>) {
    if let Some(flag) = state.export_cancel.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
        flag.store(true, Ordering::Relaxed);
    }
}
