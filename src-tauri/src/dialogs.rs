//! The system file dialogs (tauri-plugin-dialog). End-to-end tests cannot click a GTK dialog
//! through WebDriver, so `POSTBACK_E2E_SAVE_AS` / `POSTBACK_E2E_OPEN` stand in for the user's
//! choice there.

use std::path::PathBuf;
use std::sync::Mutex;

use postback::watch::export::{ExportFormat, ExportTarget};
use tauri_plugin_dialog::DialogExt;

/// The export file the user chose last, kept here under an opaque handle: the window names it
/// by handle and can never name a path itself (a web view must not truncate or delete files).
#[derive(Default)]
pub struct ExportChoice(Mutex<Option<(String, PathBuf, ExportFormat)>>);

impl ExportChoice {
    /// Holds `path` (replacing an earlier, unused choice) and returns what the window may know.
    pub fn hold(&self, path: String, format: ExportFormat) -> ExportTarget {
        let handle = format!("{:032x}", fastrand::u128(..));
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((handle.clone(), PathBuf::from(&path), format));
        ExportTarget { handle, path, format }
    }

    /// The chosen file behind `handle`, once.
    pub fn take(&self, handle: &str) -> Option<(PathBuf, ExportFormat)> {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match slot.take() {
            Some((held, path, format)) if held == handle => Some((path, format)),
            other => {
                *slot = other;
                None
            }
        }
    }
}

/// Where to save a log export; `None` when the user cancels.
pub async fn save_path<R: tauri::Runtime>(app: &tauri::AppHandle<R>, format: ExportFormat) -> Option<String> {
    let (name, extension) = match format {
        ExportFormat::Csv => ("CSV", "csv"),
        ExportFormat::Ndjson => ("NDJSON", "ndjson"),
    };
    save_as(app, name, extension, &format!("delivery-log.{extension}")).await
}

/// "Save as…"; `None` when the user cancels.
pub async fn save_as<R: tauri::Runtime>(
    app: &tauri::AppHandle<R>,
    kind: &str,
    extension: &str,
    file_name: &str,
) -> Option<String> {
    if let Some(path) = std::env::var_os("POSTBACK_E2E_SAVE_AS") {
        return Some(path.to_string_lossy().into_owned());
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog().file().add_filter(kind, &[extension]).set_file_name(file_name).save_file(move |path| {
        let _ = tx.send(path.map(|p| p.to_string()));
    });
    rx.await.ok().flatten()
}

/// "Open…" for an event file (NDJSON or CSV); `None` when the user cancels.
pub async fn open_path<R: tauri::Runtime>(app: &tauri::AppHandle<R>) -> Option<String> {
    if let Some(path) = std::env::var_os("POSTBACK_E2E_OPEN") {
        return Some(path.to_string_lossy().into_owned());
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog().file().add_filter("Events", &["ndjson", "jsonl", "json", "csv"]).pick_file(move |path| {
        let _ = tx.send(path.map(|p| p.to_string()));
    });
    rx.await.ok().flatten()
}
