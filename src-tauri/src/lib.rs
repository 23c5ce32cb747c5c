//! Postback Desk desktop shell: opens the engine's store, exposes thin commands to the UI.

pub mod background;
pub mod commands;
pub mod state;

use std::path::PathBuf;

use tauri::{Manager, Runtime};

/// Registers the commands on any runtime, so tests can use `tauri::test::mock_builder()`.
pub fn with_commands<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder.invoke_handler(tauri::generate_handler![
        commands::integrations::app_info,
        commands::integrations::list_games,
        commands::integrations::list_integrations,
        commands::formats::check_id_format,
        commands::credentials::save_token_integration,
        commands::credentials::authorize_x,
        commands::credentials::cancel_x_authorization,
        commands::credentials::finish_x_connection,
        commands::credentials::disconnect_integration
    ])
}

/// Opens the store in `data_dir` and makes it available to the commands.
pub fn manage_state<R: Runtime, M: Manager<R>>(app: &M, data_dir: PathBuf) -> Result<(), postback::store::StoreError> {
    let state = tauri::async_runtime::block_on(state::AppState::open(data_dir))?;
    app.manage(state);
    Ok(())
}

/// Runs the app on the embedded default: local SQLite in the data directory, sandbox networks.
pub fn run() {
    let data_dir = postback::store::default_data_dir();
    let result = with_commands(tauri::Builder::default())
        .setup(move |app| {
            manage_state(app, data_dir.clone())
                .map_err(|e| format!("cannot open the database in {}: {e}", data_dir.display()))?;
            let state = app.state::<state::AppState>();
            let (store, credentials) = (state.store.clone(), state.credentials.clone());
            let background = tauri::async_runtime::block_on(background::start(store, credentials));
            app.manage(background);
            Ok(())
        })
        .run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("Postback Desk could not start: {e}");
        std::process::exit(1);
    }
}
