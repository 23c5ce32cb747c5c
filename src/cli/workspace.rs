//! Where a command's data lives: the data directory (its SQLite file, the writer lock, private
//! files such as import errors) and, with `--database URL` / `POSTBACK_DATABASE_URL`, a
//! PostgreSQL database that holds the store instead of the file: a team workspace, whose
//! credentials are sealed in it for the workers that hold its key file (`--key-file`).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::delivery::Credentials;
use crate::secrets::SecretStore;
use crate::store::{Store, StoreError, StoreOptions};
use crate::team::{SealedSecrets, TeamError, WorkspaceKey};

#[derive(Debug, Clone)]
pub struct Workspace {
    pub data_dir: PathBuf,
    /// A `postgres://` URL; `None` is the data directory's SQLite file.
    pub database: Option<String>,
    /// A team workspace's key file: a worker opens the sealed credentials with it.
    pub key_file: Option<PathBuf>,
}

impl Workspace {
    /// The workspace's store, with pending migrations applied.
    pub async fn open_store(&self) -> Result<Store, StoreError> {
        match &self.database {
            Some(url) => Store::open_postgres(url, StoreOptions::default()).await,
            None => Store::open(&self.data_dir).await,
        }
    }

    /// Where the ad networks' credentials are written and read: the OS keychain for the local
    /// workspace, the database's sealed credentials for a team workspace (read back only with
    /// the key file).
    pub async fn secret_store(&self, store: &Store) -> Result<Arc<dyn SecretStore>, TeamError> {
        if self.database.is_none() {
            return Ok(Arc::new(crate::secrets::Keychain::system()));
        }
        // Not a team workspace yet: games and goals work, storing a credential says what to
        // do; a worker (with a key file) hears it before any complaint about the file.
        match crate::team::public_key(store).await {
            Err(TeamError::NotInitialised) if self.key_file.is_none() => {
                return Ok(Arc::new(crate::team::NoWorkspaceKey));
            }
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        let key = self.key_file.as_deref().map(WorkspaceKey::read_file).transpose()?;
        Ok(Arc::new(SealedSecrets::open(store.clone(), key).await?))
    }

    /// The credentials a command works with (see [`Self::secret_store`]).
    pub async fn credentials(&self, store: &Store) -> Result<Credentials, TeamError> {
        Ok(Credentials::new(self.secret_store(store).await?))
    }

    /// The game commands start from: on the local workspace the sandbox demo game of a first
    /// start; on a PostgreSQL workspace its first game (an empty one when it has none: the
    /// sandbox's configs would send to each worker's own loopback).
    pub async fn first_game(&self, store: &Store) -> Result<crate::model::Game, String> {
        match self.database {
            None => {
                crate::sandbox::ensure_demo_game(store, &crate::sandbox_base_url()).await.map_err(|e| e.to_string())
            }
            Some(_) => crate::team::first_game(store).await.map_err(|e| e.to_string()),
        }
    }

    /// Whether this process is the only one that may deliver from it (the SQLite file), so
    /// that the data directory's writer lock applies.
    pub fn is_embedded(&self) -> bool {
        self.database.is_none()
    }
}

/// How a command names the workspace to the user: never with the database's password.
impl fmt::Display for Workspace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.database {
            None => write!(f, "data in {}", self.data_dir.display()),
            Some(url) => match url::Url::parse(url) {
                Ok(url) => write!(
                    f,
                    "PostgreSQL database {} on {}",
                    url.path().trim_start_matches('/'),
                    url.host_str().unwrap_or("the local socket")
                ),
                Err(_) => f.write_str("a PostgreSQL database"),
            },
        }
    }
}
