//! Postback Desk desktop shell: opens the engine's store, exposes thin commands to the UI.

pub mod background;
pub mod commands;
pub mod dialogs;
pub mod live;
pub mod rendering;
pub mod sources;
pub mod state;
pub mod switch;

use std::path::PathBuf;

use tauri::{Emitter, Manager, Runtime};

/// Registers the commands on any runtime, so tests can use `tauri::test::mock_builder()`.
pub fn with_commands<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder.invoke_handler(tauri::generate_handler![
        commands::integrations::app_info,
        commands::integrations::list_integrations,
        commands::integrations::set_trigger_events,
        commands::integrations::set_config_enabled,
        commands::games::list_games,
        commands::games::create_game,
        commands::games::rename_game,
        commands::games::update_game,
        commands::games::phone_countries,
        commands::games::switch_game,
        commands::games::game_usage,
        commands::games::delete_game,
        commands::goals::list_goals,
        commands::goals::save_goal,
        commands::goals::set_goal_active,
        commands::goals::delete_goal,
        commands::goals::reorder_goals,
        commands::goals::tag_mapping,
        commands::goals::check_tags,
        commands::goals::save_tags,
        commands::log::log_page,
        commands::log::log_summary,
        commands::log::log_detail,
        commands::log::log_diagnostics,
        commands::log::match_quality,
        commands::log::freshness,
        commands::log::queue_deadlines,
        commands::log::replay_log_rows,
        commands::log::replay_filtered,
        commands::log::alert_threshold,
        commands::log::set_alert_threshold,
        commands::log::pick_export_file,
        commands::log::export_log,
        commands::log::cancel_export,
        commands::sources::ingest_status,
        commands::sources::ingest_token,
        commands::sources::rotate_ingest_token,
        commands::sources::attribution,
        commands::sources::pick_import_file,
        commands::sources::import_file,
        commands::sources::cancel_import,
        commands::sources::save_import_errors,
        commands::sources::demo_start,
        commands::sources::demo_stop,
        commands::sources::demo_status,
        commands::sandbox::sandbox_overview,
        commands::sandbox::set_sandbox_faults,
        commands::sandbox::reset_sandbox,
        commands::tester::check_event,
        commands::tester::send_test_event,
        commands::formats::check_id_format,
        commands::credentials::save_token_integration,
        commands::credentials::authorize_x,
        commands::credentials::cancel_x_authorization,
        commands::credentials::finish_x_connection,
        commands::credentials::disconnect_integration,
        commands::engine::engine_state,
        commands::workspace::workspaces,
        commands::workspace::open_team_workspace,
        commands::workspace::switch_workspace,
        commands::workspace::forget_team_workspace
    ])
}

/// Opens the store in `data_dir` and makes it available to the commands.
pub fn manage_state<R: Runtime, M: Manager<R>>(app: &M, data_dir: PathBuf) -> Result<(), postback::store::StoreError> {
    // Import errors a crashed run left behind (they quote players' data).
    sources::Sources::sweep_import_errors(&data_dir);
    let state = tauri::async_runtime::block_on(state::AppState::open(data_dir))?;
    app.manage(state);
    app.manage(sources::Sources::default());
    Ok(())
}

/// Forwards the delivery engine's state to the window as `engine-state` events, until that
/// delivery ends (a workspace switch starts another).
pub(crate) fn forward_engine_state<R: Runtime>(
    app: &tauri::AppHandle<R>,
    mut engine: tokio::sync::watch::Receiver<postback::model::EngineState>,
) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        while engine.changed().await.is_ok() {
            let state = engine.borrow_and_update().clone();
            let _ = app.emit("engine-state", state);
        }
    });
}

/// Starts what runs beside the window for the open workspace (after [`manage_state`]): the
/// sandbox on `sandbox_addr` (else a free port), delivery, the live log, the ingest API.
pub fn start_services<R: Runtime>(
    app: &tauri::AppHandle<R>,
    data_dir: &std::path::Path,
    sandbox_addr: std::net::SocketAddr,
) {
    let opened = app.state::<state::AppState>().now();
    let background = tauri::async_runtime::block_on(background::start(
        opened.store.clone(),
        opened.credentials.clone(),
        data_dir,
        sandbox_addr,
        opened.is_team(),
    ));
    forward_engine_state(app, background.engine());
    app.manage(live::LiveLog::default());
    app.state::<live::LiveLog>().follow(app, opened.store.clone());
    let sources = app.state::<sources::Sources>();
    tauri::async_runtime::block_on(sources.start_ingest(&opened.store, opened.is_team()));
    app.manage(background);
}

/// Runs the app on the embedded default: local SQLite in the data directory, sandbox networks.
pub fn run() {
    let data_dir = postback::store::default_data_dir();
    let filter = tracing_subscriber::EnvFilter::try_from_env("POSTBACK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("postback=info,postback_desk_lib=info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false).init();
    // A second launch focuses the first window instead of opening a second app on the same data.
    let single_instance = tauri_plugin_single_instance::init(|app, _args, _cwd| {
        if let Some(window) = app.get_webview_window("main") {
            let _ = window.unminimize();
            let _ = window.show();
            let _ = window.set_focus();
        }
    });
    let builder = tauri::Builder::default()
        .plugin(single_instance)
        // The window comes back at its last size and place.
        .plugin(tauri_plugin_window_state::Builder::default().build())
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_notification::init());
    let result = with_commands(builder)
        .setup(move |app| {
            manage_state(app, data_dir.clone())
                .map_err(|e| format!("cannot open the database in {}: {e}", data_dir.display()))?;
            start_services(app.handle(), &data_dir, background::default_sandbox_addr());
            Ok(())
        })
        .build(tauri::generate_context!());
    let result = result.map(|app| {
        app.run(|app, event| {
            if let tauri::RunEvent::Exit = event {
                if let Some(sources) = app.try_state::<sources::Sources>() {
                    sources.remove_import_errors();
                }
            }
        })
    });
    if let Err(e) = result {
        eprintln!("Postback Desk could not start: {e}");
        std::process::exit(1);
    }
}
