//! Switching the open workspace in place: the delivery, the live log and the ingest API move
//! to the new store, then the window is told (`workspace-changed`) and reloads its pages. The
//! sandbox keeps running: it belongs to the app, not to a workspace.

use tauri::{Emitter, Manager, Runtime};

use crate::background::{self, Background};
use crate::live::LiveLog;
use crate::sources::Sources;
use crate::state::{AppState, Opened};
use postback::model::WorkspaceView;

/// Makes `next` the open workspace. The previous one's dispatcher stops first (its leased rows
/// go back to its queue), so two workspaces never deliver at once from this window.
pub async fn switch_to<R: Runtime>(app: &tauri::AppHandle<R>, next: Opened) -> WorkspaceView {
    let state = app.state::<AppState>();
    let background = app.state::<Background>();
    let sources = app.state::<Sources>();
    sources.stop_demo();
    let stopped = background.replace_delivery(background::stopped_delivery());
    stopped.stop().await;
    let delivery =
        background::start_delivery(next.store.clone(), next.credentials.clone(), &state.data_dir, next.is_team());
    crate::forward_engine_state(app, delivery.engine.clone());
    let engine = delivery.engine.borrow().clone();
    let _ = background.replace_delivery(delivery);
    let (store, team) = (next.store.clone(), next.is_team());
    let view = next.workspace.clone();
    let previous = state.replace(next);
    app.state::<LiveLog>().follow(app, store.clone());
    sources.start_ingest(&store, team).await;
    // The previous store closes when the last command using it ends.
    drop(previous);
    let _ = app.emit("engine-state", engine);
    let _ = app.emit("workspace-changed", &view);
    view
}
