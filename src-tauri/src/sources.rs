//! The app's event sources: the loopback ingest API (its token in the OS keychain), file
//! imports with progress and cancel, and the demo generator sending through the ingest API.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use postback::ingest::demo::{DemoPlan, DemoStats};
use postback::ingest::server::{self, IngestStatus, RunningIngest, INGEST_DEFAULT_PORT};
use postback::ingest::token::{IngestAuth, TokenError};
use postback::secrets::{Secret, SecretStore};
use postback::store::Store;
use tempfile::NamedTempFile;
use tokio::sync::watch;

struct Demo {
    stop: watch::Sender<bool>,
    stats: Arc<Mutex<DemoStats>>,
}

#[derive(Default)]
pub struct Sources {
    ingest: tokio::sync::Mutex<Option<RunningIngest>>,
    problem: Mutex<Option<String>>,
    demo: Mutex<Option<Demo>>,
    pub import_cancel: Mutex<Option<Arc<AtomicBool>>>,
    /// Every bad line of the last import (NDJSON), for "save all errors": a private file in the
    /// data directory, removed when the next import replaces it and when the app exits.
    import_errors: Mutex<Option<NamedTempFile>>,
}

/// Names of the import-errors files in the data directory: `import-errors-<random>.ndjson`.
const IMPORT_ERRORS_PREFIX: &str = "import-errors-";
const IMPORT_ERRORS_SUFFIX: &str = ".ndjson";

fn keychain() -> Arc<dyn SecretStore> {
    Arc::new(postback::secrets::Keychain::system())
}

impl Sources {
    /// A new, empty file for an import's bad lines in `data_dir`: mode 0600, a name nobody can
    /// guess, created only if absent.
    pub fn new_import_errors(data_dir: &Path) -> std::io::Result<NamedTempFile> {
        tempfile::Builder::new().prefix(IMPORT_ERRORS_PREFIX).suffix(IMPORT_ERRORS_SUFFIX).tempfile_in(data_dir)
    }

    /// Keeps `file` as the last import's errors; the previous file is removed.
    pub fn keep_import_errors(&self, file: NamedTempFile) {
        let old = self.import_errors.lock().unwrap_or_else(|p| p.into_inner()).replace(file);
        drop(old);
    }

    /// The last import's errors, opened for reading (still readable if a newer import replaces
    /// the file meanwhile); `None` before the first import.
    pub fn open_import_errors(&self) -> Option<std::io::Result<std::fs::File>> {
        self.import_errors.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(NamedTempFile::reopen)
    }

    /// Removes the last import's errors file (on exit).
    pub fn remove_import_errors(&self) {
        let old = self.import_errors.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(old);
    }

    /// Removes import-errors files a crashed run left in `data_dir`.
    pub fn sweep_import_errors(data_dir: &Path) {
        let Ok(entries) = std::fs::read_dir(data_dir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(IMPORT_ERRORS_PREFIX) && name.ends_with(IMPORT_ERRORS_SUFFIX) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// Starts the ingest API on its default port (loopback) with the data directory's token
    /// and, on a team workspace, the workspace's token too.
    pub async fn start_ingest(&self, store: &Store, team: bool) {
        let token = match postback::ingest::token::load_or_create(store, keychain()).await {
            Ok(token) => token,
            Err(e) => return self.failed(format!("no ingest token: {e}")),
        };
        self.serve(store, token, team).await;
    }

    async fn serve(&self, store: &Store, token: Secret, team: bool) {
        let addr = SocketAddr::from(([127, 0, 0, 1], INGEST_DEFAULT_PORT));
        let mut slot = self.ingest.lock().await;
        if let Some(old) = slot.take() {
            old.stop().await;
        }
        let auth = match team {
            true => IngestAuth::Either(Box::new(IngestAuth::Token(token)), Box::new(IngestAuth::shared(store.clone()))),
            false => IngestAuth::Token(token),
        };
        let options = server::IngestOptions { addr, auth, exposure: server::Exposure::Loopback };
        match server::start_with(store.clone(), options).await {
            Ok(running) => {
                *slot = Some(running);
                *self.problem.lock().unwrap_or_else(|p| p.into_inner()) = None;
            }
            Err(e) => self.failed(e.to_string()),
        }
    }

    fn failed(&self, reason: String) {
        tracing::warn!(%reason, "the ingest API is not running");
        *self.problem.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
    }

    pub async fn status(&self) -> IngestStatus {
        let slot = self.ingest.lock().await;
        IngestStatus {
            running: slot.is_some(),
            url: slot.as_ref().map(|r| r.base_url.clone()),
            problem: self.problem.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            accepted: slot.as_ref().map_or(0, RunningIngest::accepted),
        }
    }

    /// The token game servers send: this data directory's; a team workspace's is shown only
    /// when it is made ([`TokenError::ShownOnce`]).
    pub async fn token(&self, store: &Store, team: bool) -> Result<Secret, TokenError> {
        match team {
            true => Err(TokenError::ShownOnce),
            false => postback::ingest::token::load_or_create(store, keychain()).await,
        }
    }

    /// A new token. Local: the ingest API restarts with it (the old one stops working at
    /// once). Team: the workspace's, which every worker takes within seconds.
    pub async fn rotate(&self, store: &Store, team: bool) -> Result<Secret, TokenError> {
        if team {
            return postback::ingest::token::rotate_shared(store).await;
        }
        let token = postback::ingest::token::rotate(store, keychain()).await?;
        self.serve(store, token.clone(), false).await;
        Ok(token)
    }

    /// The demo's token: this data directory's, which the app's own ingest takes on both kinds
    /// of workspace.
    async fn demo_token(&self, store: &Store) -> Result<Secret, TokenError> {
        postback::ingest::token::load_or_create(store, keychain()).await
    }

    /// Starts the demo generator on the ingest API; `on_stats` hears its progress.
    pub async fn start_demo(
        &self,
        store: &Store,
        game_id: i64,
        rate: f64,
        on_stats: impl Fn(&DemoStats) + Send + Sync + 'static,
    ) -> Result<(), String> {
        let url = self.status().await.url.ok_or("the ingest API is not running: the demo sends through it")?;
        let token = self.demo_token(store).await.map_err(|e| e.to_string())?;
        let http = postback::delivery::http_client(std::time::Duration::from_secs(10))
            .map_err(|e| format!("the HTTP client cannot be built: {e}"))?;
        let (stop, stopped) = watch::channel(false);
        let stats = Arc::new(Mutex::new(DemoStats::default()));
        {
            let mut demo = self.demo.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(old) = demo.take() {
                let _ = old.stop.send(true);
            }
            *demo = Some(Demo { stop, stats: stats.clone() });
        }
        let target = format!("{url}/v1/events?game={game_id}");
        tauri::async_runtime::spawn(async move {
            postback::ingest::demo::run(
                &http,
                &target,
                &token,
                DemoPlan { rate, duration: None, seed: fastrand::u64(..) },
                stopped,
                |s| {
                    *stats.lock().unwrap_or_else(|p| p.into_inner()) = s.clone();
                    on_stats(s);
                },
            )
            .await;
        });
        Ok(())
    }

    pub fn stop_demo(&self) -> Option<DemoStats> {
        let demo = self.demo.lock().unwrap_or_else(|p| p.into_inner()).take()?;
        let _ = demo.stop.send(true);
        let stats = demo.stats.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Some(stats)
    }

    pub fn demo_running(&self) -> Option<DemoStats> {
        let demo = self.demo.lock().unwrap_or_else(|p| p.into_inner());
        demo.as_ref().map(|d| d.stats.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }
}
