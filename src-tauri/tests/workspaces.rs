//! Switching workspaces through real IPC on the mock runtime: a team workspace opened by its
//! URL (the throwaway PostgreSQL cluster of scripts/with-postgres.sh, the URL in the real
//! Secret Service of scripts/with-keyring.sh), then back to the local one and again.

mod ipc;
use ipc::invoke;

use postback::model::{ApiError, AppInfo, EngineState};
use postback::store::{Store, StoreOptions};
use postback::team::known::WorkspaceList;
use serde_json::{json, Value};
use tauri::test::{mock_builder, mock_context, noop_assets};
use tauri::WebviewWindowBuilder;

fn refused(webview: &tauri::WebviewWindow<tauri::test::MockRuntime>, cmd: &str, args: Value) -> ApiError {
    serde_json::from_value(invoke(webview, cmd, args).expect_err("refused")).expect("{code, message, field}")
}

fn list(value: Value) -> WorkspaceList {
    serde_json::from_value(value).expect("WorkspaceList")
}

#[test]
fn a_team_workspace_opens_by_its_url_and_the_window_switches_back_and_forth() {
    let url = std::env::var("POSTBACK_TEST_DATABASE_URL").expect("run under scripts/with-postgres.sh");
    let dir = tempfile::tempdir().expect("tempdir");
    tauri::async_runtime::block_on(async {
        let store = Store::open_postgres(&url, StoreOptions::default()).await.expect("cluster");
        // Made a team workspace once per cluster (another test may have done it).
        match postback::team::init(&store, &dir.path().join("workspace.key")).await {
            Ok(_) | Err(postback::team::TeamError::AlreadyInitialised(_)) => {}
            Err(e) => panic!("{e}"),
        }
        store.close().await;
    });
    let app = postback_desk_lib::with_commands(mock_builder()).build(mock_context(noop_assets())).expect("app builds");
    postback_desk_lib::manage_state(&app, dir.path().to_path_buf()).expect("store opens");
    postback_desk_lib::start_services(app.handle(), dir.path(), "127.0.0.1:0".parse().expect("addr"));
    let webview = WebviewWindowBuilder::new(&app, "main", Default::default()).build().expect("webview");

    let info: AppInfo = serde_json::from_value(invoke(&webview, "app_info", json!({})).unwrap()).unwrap();
    assert_eq!(info.workspace.team_id, None, "the local workspace first");

    let bad = refused(&webview, "open_team_workspace", json!({"name": "Studio", "url": "mysql://db/x"}));
    assert_eq!(bad.field.as_deref(), Some("url"), "{bad:?}");
    let unreachable =
        refused(&webview, "open_team_workspace", json!({"name": "Studio", "url": "postgres://postback@127.0.0.1:1/x"}));
    assert_eq!(unreachable.field.as_deref(), Some("url"));
    assert!(unreachable.message.contains("cannot reach"), "{}", unreachable.message);
    let unnamed = refused(&webview, "open_team_workspace", json!({"name": " ", "url": url}));
    assert_eq!(unnamed.field.as_deref(), Some("name"));

    let opened = list(invoke(&webview, "open_team_workspace", json!({"name": "Studio", "url": url})).expect("opens"));
    let team_id = opened.current.team_id.clone().expect("a team workspace is open");
    assert_eq!(opened.current.name, "Studio");
    assert!(opened.current.place.contains("on 127.0.0.1"), "{}", opened.current.place);
    let info: AppInfo = serde_json::from_value(invoke(&webview, "app_info", json!({})).unwrap()).unwrap();
    assert_eq!(info.workspace.team_id.as_deref(), Some(team_id.as_str()));
    assert_ne!(info.current_game.name, "Sandbox Game", "no sandbox demo game on a team workspace");
    let engine: EngineState = serde_json::from_value(invoke(&webview, "engine_state", json!({})).unwrap()).unwrap();
    assert!(matches!(engine, EngineState::Workers { .. }), "{engine:?}");
    // The URL is in the keychain, not in the data directory's file.
    let file = std::fs::read_to_string(dir.path().join("workspaces.json")).expect("workspaces.json");
    assert!(!file.contains("postgres://"), "{file}");
    let keychain = postback::secrets::Keychain::system();
    let stored = postback::secrets::SecretStore::get(&keychain, &postback::team::known::url_entry(&team_id));
    assert_eq!(stored.expect("keychain").expect("the URL is kept").expose(), url);

    // The workspace's ingest token: kept as a keyed hash, so shown only when made; every worker
    // (any process on the database) accepts the one made here.
    let hidden = refused(&webview, "ingest_token", json!({}));
    assert_eq!(hidden.code, "token_shown_once", "{hidden:?}");
    let token: String = serde_json::from_value(invoke(&webview, "rotate_ingest_token", json!({})).unwrap()).unwrap();
    tauri::async_runtime::block_on(async {
        let store = Store::open_postgres(&url, StoreOptions::default()).await.expect("cluster");
        let workers = postback::ingest::token::IngestAuth::shared(store.clone());
        assert!(workers.accepts(&token).await, "a worker accepts the token made in the window");
        assert!(!workers.accepts("pbd_other").await);
        store.close().await;
    });

    let refused_forget = refused(&webview, "forget_team_workspace", json!({"teamId": team_id}));
    assert!(refused_forget.message.contains("switch to another workspace"), "{}", refused_forget.message);

    let local = list(invoke(&webview, "switch_workspace", json!({"teamId": null})).expect("back to local"));
    assert_eq!(local.current.team_id, None);
    let info: AppInfo = serde_json::from_value(invoke(&webview, "app_info", json!({})).unwrap()).unwrap();
    assert_eq!(info.current_game.name, "Sandbox Game");
    let engine: EngineState = serde_json::from_value(invoke(&webview, "engine_state", json!({})).unwrap()).unwrap();
    assert!(
        matches!(engine, EngineState::Starting | EngineState::Running | EngineState::ReadOnly { .. }),
        "the local dispatcher again: {engine:?}"
    );

    let again = list(invoke(&webview, "switch_workspace", json!({"teamId": team_id})).expect("the team again"));
    assert_eq!(again.current.team_id.as_deref(), Some(team_id.as_str()));
    list(invoke(&webview, "switch_workspace", json!({"teamId": null})).expect("local"));
    let forgotten = list(invoke(&webview, "forget_team_workspace", json!({"teamId": team_id})).expect("forget"));
    assert!(forgotten.teams.is_empty());
    let gone = postback::secrets::SecretStore::get(&keychain, &postback::team::known::url_entry(&team_id));
    assert_eq!(gone.expect("keychain"), None, "the URL left the keychain");
}
