use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use postback::connect::Connector;
use postback::delivery::Credentials;
use postback::model::WorkspaceView;
use postback::setup::Setup;
use postback::store::Store;
use postback::team::known::{self, KnownWorkspaces};
use postback::watch::Watch;

/// The open workspace: its store, the credential lifecycle (the OS keychain on the local
/// workspace, sealed credentials on a team one) shared with the dispatcher, the set-up
/// operations. The current game lives in the store.
pub struct Opened {
    pub store: Store,
    pub credentials: Arc<Credentials>,
    pub connector: Connector,
    pub setup: Setup,
    pub watch: Watch,
    pub workspace: WorkspaceView,
}

/// What every command can reach: the open workspace (replaced when the user switches) and
/// the data directory, which stays.
pub struct AppState {
    pub data_dir: PathBuf,
    opened: RwLock<Arc<Opened>>,
    /// One switch at a time.
    pub switching: Arc<tokio::sync::Mutex<()>>,
    /// Stops the running export, if any.
    pub export_cancel: std::sync::Mutex<Option<Arc<std::sync::atomic::AtomicBool>>>,
    /// Where the next export goes, as chosen in the save dialog.
    pub export_choice: crate::dialogs::ExportChoice,
}

impl AppState {
    /// Opens the workspace the data directory names (`workspaces.json`): a team workspace
    /// whose URL is in the keychain, else the local SQLite database (created, with the demo
    /// game, on first start). A team workspace that cannot be opened falls back to the local
    /// one, saying why.
    pub async fn open(data_dir: PathBuf) -> Result<Self, postback::store::StoreError> {
        let known = KnownWorkspaces::load(&data_dir);
        let opened = match known.open.as_deref().and_then(|id| known.team(id)) {
            Some(team) => match Opened::team(team.clone()).await {
                Ok(opened) => opened,
                Err(problem) => {
                    tracing::warn!(%problem, "the team workspace could not be opened; opening the local one");
                    let mut local = Opened::local(&data_dir).await?;
                    local.workspace.problem = Some(format!("{} could not be opened: {problem}", team.name));
                    local
                }
            },
            None => Opened::local(&data_dir).await?,
        };
        Ok(Self {
            data_dir,
            opened: RwLock::new(Arc::new(opened)),
            switching: Default::default(),
            export_cancel: Default::default(),
            export_choice: Default::default(),
        })
    }

    /// The open workspace now (a switch replaces it; a command keeps the one it started with).
    pub fn now(&self) -> Arc<Opened> {
        self.opened.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Makes `next` the open workspace; returns the previous one.
    pub fn replace(&self, next: Opened) -> Arc<Opened> {
        std::mem::replace(&mut *self.opened.write().unwrap_or_else(|p| p.into_inner()), Arc::new(next))
    }
}

impl Opened {
    /// The data directory's SQLite database, with the demo game on first start.
    pub async fn local(data_dir: &std::path::Path) -> Result<Self, postback::store::StoreError> {
        let store = Store::open(data_dir).await?;
        postback::sandbox::ensure_demo_game(&store, &postback::sandbox_base_url()).await?;
        // The keychain connects on first use: the sandbox demo works without one.
        let credentials = Arc::new(Credentials::with_system_keychain());
        Ok(Self::with(store, credentials, WorkspaceView::local()))
    }

    /// A team workspace by its URL in the keychain. Credentials are sealed for the workers:
    /// this window writes them and never reads one back.
    pub async fn team(team: known::KnownTeam) -> Result<Self, String> {
        let entry = known::url_entry(&team.id);
        let keychain: Arc<dyn postback::secrets::SecretStore> = Arc::new(postback::secrets::Keychain::system());
        let url = postback::secrets::blocking(keychain, move |k| k.get(&entry))
            .await
            .map_err(|e| e.to_string())?
            .ok_or("its address is no longer in the OS keychain; open it again with its URL")?;
        let store = known::open_team_store(url.expose()).await.map_err(|e| e.to_string())?;
        Self::team_on(store, team).await.map_err(|e| e.to_string())
    }

    /// A team workspace on an opened store.
    pub async fn team_on(store: Store, team: known::KnownTeam) -> Result<Self, postback::team::TeamError> {
        let sealed = postback::team::SealedSecrets::open(store.clone(), None).await?;
        let credentials = Arc::new(Credentials::new(Arc::new(sealed)));
        postback::team::first_game(&store).await?;
        Ok(Self::with(store, credentials, WorkspaceView::team(&team.id, &team.name, &team.place)))
    }

    fn with(store: Store, credentials: Arc<Credentials>, workspace: WorkspaceView) -> Self {
        let connector = Connector::new(store.clone(), credentials.clone());
        let setup = Setup::new(store.clone(), credentials.clone());
        let watch = Watch::new(store.clone());
        Self { store, credentials, connector, setup, watch, workspace }
    }

    pub fn is_team(&self) -> bool {
        self.workspace.team_id.is_some()
    }
}
