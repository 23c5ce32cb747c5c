//! The system file dialog (tauri-plugin-dialog). End-to-end tests cannot click a GTK dialog
//! through WebDriver, so `POSTBACK_E2E_SAVE_AS` stands in for the user's choice there.

use postback::watch::export::ExportFormat;
use tauri_plugin_dialog::DialogExt;

pub async fn save_path<R: tauri::Runtime>(app: &tauri::AppHandle<R>, format: ExportFormat) -> Option<String> {
    if let Some(path) = std::env::var_os("POSTBACK_E2E_SAVE_AS") {
        return Some(path.to_string_lossy().into_owned());
    }
    let (name, extension) = match format {
        ExportFormat::Csv => ("CSV", "csv"),
        ExportFormat::Ndjson => ("NDJSON", "ndjson"),
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog().file().add_filter(name, &[extension]).set_file_name(format!("delivery-log.{extension}")).save_file(
        move |path| {
            let _ = tx.send(path.map(|p| p.to_string()));
        },
    );
    rx.await.ok().flatten()
}
