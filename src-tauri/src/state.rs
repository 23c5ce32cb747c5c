use std::path::PathBuf;
use std::sync::Arc;

use postback::connect::Connector;
use postback::delivery::Credentials;
use postback::setup::Setup;
use postback::store::Store;
use postback::watch::Watch;

/// What every command can reach: the open store, the credential lifecycle (OS keychain) shared
/// with the dispatcher, and the set-up operations. The current game lives in the store.
pub struct AppState {
    pub store: Store,
    pub data_dir: PathBuf,
    pub credentials: Arc<Credentials>,
    pub connector: Connector,
    pub setup: Setup,
    pub watch: Watch,
    /// Stops the running export, if any.
    pub export_cancel: std::sync::Mutex<Option<Arc<std::sync::atomic::AtomicBool>>>,
    /// Where the next export goes, as chosen in the save dialog.
    pub export_choice: crate::dialogs::ExportChoice,
}

impl AppState {
    /// Opens the database (creating it and the demo game on first start).
    pub async fn open(data_dir: PathBuf) -> Result<Self, postback::store::StoreError> {
        let store = Store::open(&data_dir).await?;
        postback::sandbox::ensure_demo_game(&store, &postback::sandbox_base_url()).await?;
        // The keychain connects on first use: the sandbox demo works without one.
        let credentials = Arc::new(Credentials::with_system_keychain());
        let connector = Connector::new(store.clone(), credentials.clone());
        let setup = Setup::new(store.clone(), credentials.clone());
        let watch = Watch::new(store.clone());
        Ok(Self {
            store,
            data_dir,
            credentials,
            connector,
            setup,
            watch,
            export_cancel: Default::default(),
            export_choice: Default::default(),
        })
    }
}
