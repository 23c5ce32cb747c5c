//! The workspace switcher: the local workspace and the team workspaces this desktop knows
//! (their URLs in the OS keychain), opening a new one by its URL, switching, forgetting.

use std::sync::Arc;

use postback::model::ApiError;
use postback::secrets::{self, Secret, SecretStore};
use postback::store::StoreError;
use postback::team::known::{self, KnownTeam, KnownWorkspaces};
use postback::team::TeamError;
use tauri::{Manager, Runtime, State};

use crate::state::{AppState, Opened};

use postback::team::known::WorkspaceList as Workspaces;

fn keychain() -> Arc<dyn SecretStore> {
    Arc::new(postback::secrets::Keychain::system())
}

fn listed(state: &AppState) -> Workspaces {
    Workspaces { current: state.now().workspace.clone(), teams: KnownWorkspaces::load(&state.data_dir).teams }
}

fn saved(known: &KnownWorkspaces, state: &AppState) -> Result<(), ApiError> {
    known
        .save(&state.data_dir)
        .map_err(|e| ApiError::new("storage", format!("cannot write in {}: {e}", state.data_dir.display())))
}

/// What went wrong opening a team workspace, on the form field to fix.
fn on_url(e: TeamError) -> ApiError {
    let message = e.to_string();
    match e {
        TeamError::BadUrl
        | TeamError::NotInitialised
        | TeamError::Store(StoreError::BadDatabaseUrl { .. } | StoreError::Unreachable { .. }) => {
            ApiError::new("team_workspace", message).on_field("url")
        }
        other => other.into(),
    }
}

#[tauri::command]
pub fn workspaces(state: State<'_, AppState>) -> Workspaces {
    listed(&state)
}

/// Opens a team workspace by its PostgreSQL URL (checked: reachable and made a team workspace
/// with `postback workspace init`), keeps the URL in the OS keychain and switches to it.
#[tauri::command]
pub async fn open_team_workspace<R: Runtime>(
    app: tauri::AppHandle<R>,
    name: String,
    url: String,
) -> Result<Workspaces, ApiError> {
    off_the_handler(move || open_team(app, name, url)).await
}

/// Runs a switch on a blocking thread of the runtime, driven there to its end. Opening a store
/// runs sqlx's migrations, whose future rustc cannot prove `Send` for every lifetime, which a
/// command's future must be; this one never moves between threads.
async fn off_the_handler<F, W, T>(work: W) -> Result<T, ApiError>
where
    W: FnOnce() -> F + Send + 'static,
    F: std::future::Future<Output = Result<T, ApiError>>,
    T: Send + 'static,
{
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || runtime.block_on(work()))
        .await
        .unwrap_or_else(|e| Err(ApiError::new("internal", format!("the workspace switch did not finish: {e}"))))
}

async fn open_team<R: Runtime>(app: tauri::AppHandle<R>, name: String, url: String) -> Result<Workspaces, ApiError> {
    let name = name.trim().to_owned();
    if name.is_empty() {
        return Err(ApiError::new("invalid_input", "give the workspace a name, e.g. Studio team").on_field("name"));
    }
    let state = app.state::<AppState>();
    let _one = state.switching.clone().lock_owned().await;
    let store = known::open_team_store(&url).await.map_err(on_url)?;
    let team = KnownTeam { id: known::new_id(), name, place: known::place_of(url.trim()) };
    let opened = match Opened::team_on(store.clone(), team.clone()).await {
        Ok(opened) => opened,
        Err(e) => {
            store.close().await;
            return Err(e.into());
        }
    };
    let (entry, value) = (known::url_entry(&team.id), Secret::new(url.trim()));
    secrets::blocking(keychain(), move |k| k.set(&entry, &value)).await?;
    let mut known = KnownWorkspaces::load(&state.data_dir);
    known.teams.push(team.clone());
    known.open = Some(team.id.clone());
    saved(&known, &state)?;
    crate::switch::switch_to(&app, opened).await;
    Ok(listed(&state))
}

/// Switches to a known team workspace (`team_id`) or back to the local one (`None`).
#[tauri::command]
pub async fn switch_workspace<R: Runtime>(
    app: tauri::AppHandle<R>,
    team_id: Option<String>,
) -> Result<Workspaces, ApiError> {
    off_the_handler(move || switch(app, team_id)).await
}

async fn switch<R: Runtime>(app: tauri::AppHandle<R>, team_id: Option<String>) -> Result<Workspaces, ApiError> {
    let state = app.state::<AppState>();
    let _one = state.switching.clone().lock_owned().await;
    let mut known = KnownWorkspaces::load(&state.data_dir);
    let opened = match &team_id {
        None => Opened::local(&state.data_dir).await?,
        Some(id) => {
            let team = known.team(id).cloned().ok_or_else(|| {
                ApiError::new("not_found", "this team workspace is no longer known; open it by its URL")
            })?;
            let name = team.name.clone();
            Opened::team(team)
                .await
                .map_err(|problem| ApiError::new("team_workspace", format!("{name} could not be opened: {problem}")))?
        }
    };
    known.open = team_id;
    saved(&known, &state)?;
    crate::switch::switch_to(&app, opened).await;
    Ok(listed(&state))
}

/// Forgets a team workspace that is not open: its entry and its URL in the keychain.
#[tauri::command]
pub async fn forget_team_workspace(state: State<'_, AppState>, team_id: String) -> Result<Workspaces, ApiError> {
    let _one = state.switching.clone().lock_owned().await;
    if state.now().workspace.team_id.as_deref() == Some(team_id.as_str()) {
        return Err(ApiError::new("invalid_input", "switch to another workspace before forgetting this one"));
    }
    let mut known = KnownWorkspaces::load(&state.data_dir);
    known.teams.retain(|t| t.id != team_id);
    saved(&known, &state)?;
    let entry = known::url_entry(&team_id);
    secrets::blocking(keychain(), move |k| k.delete(&entry)).await?;
    Ok(listed(&state))
}
