//! The Tauri commands through real IPC on the mock runtime (no window, no display).

mod ipc;
use ipc::invoke;

use postback::model::{ApiError, AppInfo, ConfigSummary, Network};
use serde_json::{json, Value};
use tauri::test::{mock_builder, mock_context, noop_assets};
use tauri::WebviewWindowBuilder;

fn app(
    dir: &std::path::Path,
) -> (tauri::App<tauri::test::MockRuntime>, tauri::WebviewWindow<tauri::test::MockRuntime>) {
    let app = postback_desk_lib::with_commands(mock_builder()).build(mock_context(noop_assets())).expect("app builds");
    postback_desk_lib::manage_state(&app, dir.to_path_buf()).expect("store opens");
    let webview = WebviewWindowBuilder::new(&app, "main", Default::default()).build().expect("webview");
    (app, webview)
}

#[test]
fn the_window_gets_the_demo_games_three_integrations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_app, webview) = app(dir.path());
    let info: AppInfo =
        serde_json::from_value(invoke(&webview, "app_info", json!({})).expect("app_info")).expect("AppInfo");
    assert_eq!(info.current_game.name, "Sandbox Game");
    assert_eq!(info.data_dir, dir.path().display().to_string());
    let rows: Vec<ConfigSummary> = serde_json::from_value(
        invoke(&webview, "list_integrations", json!({"gameId": info.current_game.id})).expect("list_integrations"),
    )
    .expect("rows");
    assert_eq!(rows.iter().map(|r| r.network).collect::<Vec<_>>(), Network::ALL);
    assert!(dir.path().join("postback.db").exists());
}

#[test]
fn errors_cross_ipc_as_code_and_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_app, webview) = app(dir.path());
    let err = invoke(&webview, "list_integrations", json!({"gameId": 404})).expect_err("unknown game fails");
    let err: ApiError = serde_json::from_value(err).expect("{code, message}");
    assert_eq!(err.code, "not_found");
    assert!(err.message.contains("404"), "{}", err.message);
}

#[test]
fn id_formats_are_checked_by_the_engine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_app, webview) = app(dir.path());
    let ok = invoke(&webview, "check_id_format", json!({"kind": "reddit_pixel_id", "value": "  a2_abcd1234 "}));
    assert_eq!(ok, Ok(json!("a2_abcd1234")));
    let err =
        invoke(&webview, "check_id_format", json!({"kind": "x_event_tag", "value": "tw-oka17"})).expect_err("bad tag");
    let err: ApiError = serde_json::from_value(err).expect("{code, message}");
    assert_eq!(err.code, "invalid_input");
    assert!(err.message.starts_with("event_tag:") && err.message.contains("tw-xxxxx-yyyyy"), "{}", err.message);
}

fn demo_rows(webview: &tauri::WebviewWindow<tauri::test::MockRuntime>) -> Vec<ConfigSummary> {
    let info: AppInfo =
        serde_json::from_value(invoke(webview, "app_info", json!({})).expect("app_info")).expect("info");
    serde_json::from_value(invoke(webview, "list_integrations", json!({"gameId": info.current_game.id})).expect("rows"))
        .expect("rows")
}

#[test]
fn a_bad_connect_form_names_the_field_and_never_echoes_the_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_app, webview) = app(dir.path());
    let game_id = demo_rows(&webview)[0].game_id;
    let input = json!({"game_id": game_id, "network": "reddit", "pixel": "t2_wrong", "trigger_events": ["purchase"],
                       "test_code": "t_1", "token": "very-secret-token-123", "sandbox": true});
    let err = invoke(&webview, "save_token_integration", json!({"input": input})).expect_err("bad pixel");
    let err: ApiError = serde_json::from_value(err).expect("{code, message, field}");
    assert_eq!((err.code.as_str(), err.field.as_deref()), ("invalid_input", Some("pixel")));
    assert!(err.message.contains("a2_"), "{}", err.message);

    // A token the checks refuse is named by field, never quoted back.
    let input = json!({"game_id": game_id, "network": "reddit", "pixel": "a2_good1234", "trigger_events": ["purchase"],
                       "test_code": null, "token": "very-secret token-123", "sandbox": true});
    let err = invoke(&webview, "save_token_integration", json!({"input": input})).expect_err("split token");
    assert!(!err.to_string().contains("very-secret"), "{err}");
    let err: ApiError = serde_json::from_value(err).expect("{code, message, field}");
    assert_eq!(err.field.as_deref(), Some("conversion_access_token"));

    let no_key = json!({"method": "oauth1", "consumer_key": " ", "consumer_secret": "s"});
    let err = invoke(&webview, "authorize_x", json!({"gameId": game_id, "method": no_key, "sandbox": true}))
        .expect_err("no key");
    let err: ApiError = serde_json::from_value(err).expect("ApiError");
    assert_eq!(err.field.as_deref(), Some("consumer_key"));
}

#[test]
fn disconnect_removes_the_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_app, webview) = app(dir.path());
    let tiktok = demo_rows(&webview).into_iter().find(|r| r.network == Network::TikTok).expect("tiktok row");
    let config_id = tiktok.config_id.expect("the demo game has a TikTok config");
    assert_eq!(
        invoke(&webview, "disconnect_integration", json!({"configId": config_id, "discardQueued": false})),
        Ok(Value::Null)
    );
    let after = demo_rows(&webview).into_iter().find(|r| r.network == Network::TikTok).expect("tiktok row");
    assert_eq!((after.config_id, after.status), (None, postback::model::IntegrationStatus::NotConnected));
    let again = invoke(&webview, "disconnect_integration", json!({"configId": config_id, "discardQueued": true}))
        .expect_err("gone");
    assert_eq!(serde_json::from_value::<ApiError>(again).expect("ApiError").code, "not_found");
}

#[test]
fn disconnect_with_waiting_conversions_asks_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_app, webview) = app(dir.path());
    let reddit = demo_rows(&webview).into_iter().find(|r| r.network == Network::Reddit).expect("reddit row");
    let line =
        json!({"event_id": "w1", "name": "purchase", "occurred_at": chrono::Utc::now().to_rfc3339(), "player_id": "p",
                      "consent": "anonymous", "click_ids": {"rdt_cid": "r"}})
        .to_string();
    let store = tauri::async_runtime::block_on(postback::store::Store::open(dir.path())).expect("store");
    let report =
        tauri::async_runtime::block_on(postback::ingest::import_ndjson(&store, reddit.game_id, line.as_bytes(), 0))
            .expect("import");
    assert_eq!(report.enqueued, 1);
    let row = demo_rows(&webview).into_iter().find(|r| r.network == Network::Reddit).expect("reddit row");
    assert_eq!(row.pending, 1, "the card can say what a disconnect would discard");
    let config_id = row.config_id.expect("config");
    let err = invoke(&webview, "disconnect_integration", json!({"configId": config_id, "discardQueued": false}))
        .expect_err("asks first");
    let err: ApiError = serde_json::from_value(err).expect("ApiError");
    assert_eq!(err.code, "queued_events");
    assert!(err.message.contains("1 conversions for Reddit Ads"), "{}", err.message);
    assert_eq!(
        invoke(&webview, "disconnect_integration", json!({"configId": config_id, "discardQueued": true})),
        Ok(Value::Null)
    );
}

#[test]
fn the_engine_state_is_readable_before_the_dispatcher_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_app, webview) = app(dir.path());
    let state = invoke(&webview, "engine_state", json!({})).expect("engine_state");
    assert_eq!(state, json!({"state": "starting"}));
}

#[test]
fn games_goals_tags_and_enable_through_ipc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_app, webview) = app(dir.path());
    let demo = demo_rows(&webview)[0].game_id;
    // A new game becomes current once switched to, and app_info says so.
    let game = invoke(&webview, "create_game", json!({"name": " Moon Miner "})).expect("create");
    assert_eq!(game["name"], "Moon Miner");
    let again = invoke(&webview, "create_game", json!({"name": "Moon Miner"})).expect_err("duplicate");
    let again: ApiError = serde_json::from_value(again).expect("ApiError");
    assert_eq!((again.code.as_str(), again.field.as_deref()), ("game_exists", Some("name")));
    invoke(&webview, "switch_game", json!({"gameId": game["id"]})).expect("switch");
    let info: AppInfo = serde_json::from_value(invoke(&webview, "app_info", json!({})).expect("info")).expect("info");
    assert_eq!(info.current_game.name, "Moon Miner");

    // Goals: a bad event names its field; a good one is listed.
    let bad = json!({"key": null, "name": "Level", "event": "Level Up", "rule": "every_time", "min_value": null,
                     "currency": null, "active": true});
    let err: ApiError = serde_json::from_value(
        invoke(&webview, "save_goal", json!({"gameId": game["id"], "input": bad})).expect_err("bad"),
    )
    .expect("ApiError");
    assert_eq!(err.field.as_deref(), Some("event"));
    let good = json!({"key": null, "name": "First purchase", "event": "purchase", "rule": "once_per_player",
                      "min_value": null, "currency": null, "active": true});
    invoke(&webview, "save_goal", json!({"gameId": game["id"], "input": good})).expect("goal");
    let goals = invoke(&webview, "list_goals", json!({"gameId": game["id"]})).expect("goals");
    assert_eq!(goals[0]["id"], "first-purchase");
    assert_eq!(goals[0]["rule"], "once_per_player");

    // The demo game's X config: its mapping, a malformed tag refused with the goal's field.
    invoke(&webview, "switch_game", json!({"gameId": demo})).expect("back to the demo game");
    let x = demo_rows(&webview).into_iter().find(|r| r.network == Network::X).expect("x row");
    let x_id = x.config_id.expect("x config");
    let mapping = invoke(&webview, "tag_mapping", json!({"configId": x_id})).expect("mapping");
    assert_eq!(mapping["pixel_id"], "sbx01");
    let tags = json!([{"goal_key": "purchase", "tag": "tw-nope"}]);
    let err: ApiError = serde_json::from_value(
        invoke(&webview, "save_tags", json!({"configId": x_id, "tags": tags})).expect_err("bad tag"),
    )
    .expect("ApiError");
    assert_eq!(err.field.as_deref(), Some("tags.purchase"));
    let checked = invoke(
        &webview,
        "check_tags",
        json!({"configId": x_id, "tags": [{"goal_key": "purchase", "tag": "tw-zzz99-buy01"}]}),
    )
    .expect("check");
    assert!(checked[0]["warnings"][0].as_str().expect("warning").contains("another pixel"));

    // Enable / disable, and the demo game stays.
    invoke(&webview, "set_config_enabled", json!({"configId": x_id, "enabled": false})).expect("disable");
    let x = demo_rows(&webview).into_iter().find(|r| r.network == Network::X).expect("x row");
    assert!(!x.enabled);
    let err: ApiError =
        serde_json::from_value(invoke(&webview, "delete_game", json!({"gameId": demo})).expect_err("demo stays"))
            .expect("ApiError");
    assert_eq!(err.code, "demo_game");
    let usage = invoke(&webview, "game_usage", json!({"gameId": game["id"]})).expect("usage");
    assert_eq!(usage["goals"], 1);
    invoke(&webview, "delete_game", json!({"gameId": game["id"]})).expect("delete");
    let games = invoke(&webview, "list_games", json!({})).expect("games");
    assert_eq!(games.as_array().map(Vec::len), Some(1));
}

/// The game form: a new game with a default country, then its name and country edited in one
/// call; a bad code names its field and saves nothing; the form's list of countries.
#[test]
fn the_game_form_sets_the_default_country_for_phone_numbers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_app, webview) = app(dir.path());
    let game = invoke(&webview, "create_game", json!({"name": "Moon Miner", "defaultCountry": "us"})).expect("create");
    assert_eq!(game["default_country"], "US");
    let plain = invoke(&webview, "create_game", json!({"name": "Plain"})).expect("create without");
    assert_eq!(plain["default_country"], Value::Null);
    let id = game["id"].clone();
    let err: ApiError = serde_json::from_value(
        invoke(&webview, "update_game", json!({"gameId": id, "name": "Moon Miner 2", "defaultCountry": "UK"}))
            .expect_err("UK is not ISO 3166-1"),
    )
    .expect("ApiError");
    assert_eq!((err.code.as_str(), err.field.as_deref()), ("invalid_input", Some("default_country")));
    let games = invoke(&webview, "list_games", json!({})).expect("games");
    let listed = games.as_array().expect("list").iter().find(|g| g["id"] == id).expect("listed").clone();
    assert_eq!((listed["name"].as_str(), listed["default_country"].as_str()), (Some("Moon Miner"), Some("US")));
    let saved = invoke(&webview, "update_game", json!({"gameId": id, "name": "Moon Miner 2", "defaultCountry": "gb"}))
        .expect("update");
    assert_eq!((saved["name"].as_str(), saved["default_country"].as_str()), (Some("Moon Miner 2"), Some("GB")));
    let cleared = invoke(&webview, "update_game", json!({"gameId": id, "name": "Moon Miner 2", "defaultCountry": ""}))
        .expect("clear");
    assert_eq!(cleared["default_country"], Value::Null);
    let countries = invoke(&webview, "phone_countries", json!({})).expect("countries");
    let countries: Vec<String> = serde_json::from_value(countries).expect("codes");
    assert!(countries.iter().any(|c| c == "US") && !countries.iter().any(|c| c == "UK"), "{countries:?}");
}

#[test]
fn the_log_commands_answer_with_typed_data_and_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_app, webview) = app(dir.path());
    let game_id = demo_rows(&webview)[0].game_id;
    let filter = json!({"game_id": game_id, "statuses": ["failed", "given_up"], "limit": 50});
    assert_eq!(invoke(&webview, "log_page", json!({"filter": filter})), Ok(json!([])));
    let summary =
        invoke(&webview, "log_summary", json!({"filter": {"game_id": game_id, "since_ms": 0}})).expect("summary");
    assert_eq!(summary["bucket_ms"], 86_400_000, "a long range is charted per day");
    assert_eq!(summary["totals"]["success"], 0);
    let missing: ApiError =
        serde_json::from_value(invoke(&webview, "log_detail", json!({"id": 42})).expect_err("no row"))
            .expect("ApiError");
    assert_eq!(missing.code, "not_found");
    assert_eq!(invoke(&webview, "replay_filtered", json!({"filter": filter})), Ok(json!(0)));
    let bad: ApiError =
        serde_json::from_value(invoke(&webview, "set_alert_threshold", json!({"threshold": 1.5})).expect_err("range"))
            .expect("ApiError");
    assert_eq!(bad.code, "invalid_input");
    assert_eq!(invoke(&webview, "set_alert_threshold", json!({"threshold": 0.75})), Ok(json!(0.75)));
    assert_eq!(invoke(&webview, "alert_threshold", json!({})), Ok(json!(0.75)));
    let x = demo_rows(&webview).into_iter().find(|r| r.network == Network::X).expect("x");
    let diagnostics =
        invoke(&webview, "log_diagnostics", json!({"configId": x.config_id, "filter": {}})).expect("diagnostics");
    assert!(diagnostics.as_array().expect("items").iter().any(|i| i["title"] == "No events arrived"));
}

#[test]
fn the_sources_commands_answer_with_typed_data_and_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_app, webview) = app(dir.path());
    let game_id = demo_rows(&webview)[0].game_id;
    // The mock app runs no setup hook: the ingest is not started, and the page can say so.
    let status = invoke(&webview, "ingest_status", json!({})).expect("status");
    assert_eq!(status["running"], false);
    let bad: ApiError = serde_json::from_value(
        invoke(&webview, "demo_start", json!({"gameId": game_id, "rate": 0})).expect_err("rate"),
    )
    .expect("ApiError");
    assert_eq!((bad.code.as_str(), bad.field.as_deref()), ("invalid_input", Some("rate")));
    let down: ApiError = serde_json::from_value(
        invoke(&webview, "demo_start", json!({"gameId": game_id, "rate": 10})).expect_err("down"),
    )
    .expect("ApiError");
    assert_eq!(down.code, "ingest_down");
    assert_eq!(invoke(&webview, "demo_status", json!({})), Ok(Value::Null));
    assert_eq!(invoke(&webview, "attribution", json!({"gameId": game_id, "sinceMs": 0})), Ok(json!([])));

    // Events imported into the same data directory show up per source and network.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let store = postback::store::Store::open(dir.path()).await.expect("store");
        let now = chrono::Utc::now().to_rfc3339();
        let line = json!({"event_id": "s1", "name": "purchase", "occurred_at": now, "player_id": "p1",
                          "consent": "full", "click_ids": {"ttclid": "tt"}})
        .to_string();
        postback::ingest::import_ndjson(&store, game_id, line.as_bytes(), postback::delivery::now_ms())
            .await
            .expect("import");
        store.close().await;
    });
    let summary = invoke(&webview, "attribution", json!({"gameId": game_id, "sinceMs": 0})).expect("attribution");
    assert_eq!(summary[0]["source"], "import");
    assert_eq!(summary[0]["arrived"], 1);
    let tiktok =
        summary[0]["networks"].as_array().expect("networks").iter().find(|n| n["network"] == "tiktok").cloned();
    assert_eq!(tiktok.expect("tiktok")["queued"], 1);
    let none: ApiError =
        serde_json::from_value(invoke(&webview, "save_import_errors", json!({})).expect_err("no import yet"))
            .expect("ApiError");
    assert_eq!(none.code, "not_found");
}

/// `POSTBACK_E2E_SAVE_AS` stands in for the save dialog; one test at a time may set it.
static SAVE_DIALOG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn choose_in_save_dialog(path: &std::path::Path) -> std::sync::MutexGuard<'static, ()> {
    let guard = SAVE_DIALOG.lock().unwrap_or_else(|p| p.into_inner());
    std::env::set_var("POSTBACK_E2E_SAVE_AS", path);
    guard
}

#[test]
fn an_export_goes_only_to_the_file_chosen_in_the_dialog() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_app, webview) = app(dir.path());
    let filter = json!({"game_id": demo_rows(&webview)[0].game_id, "limit": 5000});

    // A path the web view names is not taken: the file stays as it was.
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "keep me").expect("victim");
    let named = json!({"filter": filter, "format": "csv", "path": victim, "onProgress": "__CHANNEL__:1"});
    invoke(&webview, "export_log", named).expect_err("no path from the web view");
    assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "keep me");
    let unknown = json!({"filter": filter, "handle": "0123456789abcdef", "onProgress": "__CHANNEL__:2"});
    let err: ApiError =
        serde_json::from_value(invoke(&webview, "export_log", unknown).expect_err("unknown handle")).expect("ApiError");
    assert_eq!(err.code, "not_found");

    // The dialog's choice stays in Rust; the window gets a single-use handle and the path to show.
    let chosen = dir.path().join("chosen.csv");
    let target = {
        let _dialog = choose_in_save_dialog(&chosen);
        invoke(&webview, "pick_export_file", json!({"format": "csv"})).expect("pick")
    };
    assert_eq!(target["path"], chosen.display().to_string());
    assert_eq!(target["format"], "csv");
    let handle = target["handle"].as_str().expect("handle").to_owned();
    assert!(handle.len() >= 32 && !handle.contains('/'), "{handle}");
    let export = json!({"filter": filter, "handle": handle, "onProgress": "__CHANNEL__:3"});
    assert_eq!(invoke(&webview, "export_log", export.clone()), Ok(json!(0)));
    assert!(std::fs::read_to_string(&chosen).expect("export").starts_with("time_utc,"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&chosen).expect("export").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "an export of players' data is the owner's only");
    }
    let again: ApiError =
        serde_json::from_value(invoke(&webview, "export_log", export).expect_err("used")).expect("ApiError");
    assert_eq!(again.code, "not_found");
}

#[test]
fn import_errors_are_kept_privately_in_the_data_directory() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    // One a crashed run left behind goes at start.
    std::fs::write(dir.path().join("import-errors-crashed.ndjson"), "{}\n").expect("leftover");
    let (_app, webview) = app(dir.path());
    let game_id = demo_rows(&webview)[0].game_id;
    let errors_files = || -> Vec<std::path::PathBuf> {
        let mut found: Vec<_> = std::fs::read_dir(dir.path())
            .expect("data dir")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("import-errors-")))
            .collect();
        found.sort();
        found
    };
    assert_eq!(errors_files(), Vec::<std::path::PathBuf>::new());

    let events = dir.path().join("events.ndjson");
    std::fs::write(&events, "{\"event_id\": \"bad-1\"}\nnot json\n").expect("events");
    let import = json!({"gameId": game_id, "path": events, "onProgress": "__CHANNEL__:1"});
    let report = invoke(&webview, "import_file", import.clone()).expect("import");
    assert_eq!(report["error_count"], 2, "{report}");
    let first = errors_files();
    assert_eq!(first.len(), 1, "{first:?}");
    let name = first[0].file_name().expect("name").to_string_lossy().into_owned();
    assert!(name.len() > "import-errors-.ndjson".len() + 5, "an unpredictable name: {name}");
    assert_eq!(std::fs::metadata(&first[0]).expect("meta").permissions().mode() & 0o777, 0o600);
    assert!(!std::env::temp_dir().join(format!("postback-import-errors-{}.ndjson", std::process::id())).exists());

    // The next import replaces it; "save all errors" copies the latest where the user chooses.
    invoke(&webview, "import_file", import).expect("import again");
    let second = errors_files();
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(second, first, "the old file is removed");
    let saved = dir.path().join("saved-errors.ndjson");
    let answer = {
        let _dialog = choose_in_save_dialog(&saved);
        invoke(&webview, "save_import_errors", json!({})).expect("save")
    };
    assert_eq!(answer, json!(saved.display().to_string()));
    assert_eq!(std::fs::read_to_string(&saved).expect("saved").lines().count(), 2);
}
