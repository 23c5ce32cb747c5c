//! The credential store of a team workspace: the same [`SecretStore`] as the OS keychain, over
//! the database's `sealed_secrets` table. Every process seals with the workspace's public key;
//! only a process given the key file (a worker) opens. Calls block on the database like the
//! keychain's on D-Bus: callers go through `secrets::blocking`.

use crate::secrets::{Secret, SecretStore, SecretsError};
use crate::store::Store;

use super::{public_key, TeamError, WorkspaceKey, WorkspacePublicKey};

pub struct SealedSecrets {
    store: Store,
    public: WorkspacePublicKey,
    /// Workers only.
    key: Option<WorkspaceKey>,
    runtime: tokio::runtime::Handle,
}

impl SealedSecrets {
    /// The workspace's sealed credentials; `key` (a worker's key file) must be this
    /// workspace's. Call from within the async runtime.
    pub async fn open(store: Store, key: Option<WorkspaceKey>) -> Result<Self, TeamError> {
        let public = public_key(&store).await?;
        if let Some(key) = &key {
            if key.public_key() != public {
                return Err(TeamError::WrongKey { file: key.public_key().to_hex(), database: public.to_hex() });
            }
        }
        Ok(Self { store, public, key, runtime: tokio::runtime::Handle::current() })
    }

    /// Whether this process can read credentials back (it holds the key file).
    pub fn opens(&self) -> bool {
        self.key.is_some()
    }
}

fn failed(e: impl std::fmt::Display) -> SecretsError {
    SecretsError::Failed(format!("the team workspace's database: {e}"))
}

impl SecretStore for SealedSecrets {
    fn get(&self, reference: &str) -> Result<Option<Secret>, SecretsError> {
        let key = self.key.as_ref().ok_or(SecretsError::SealedForWorkers)?;
        let Some(sealed) = self.runtime.block_on(self.store.sealed_secret(reference)).map_err(failed)? else {
            return Ok(None);
        };
        let unreadable = || SecretsError::Unreadable(reference.to_owned());
        let opened = key.open(&sealed).map_err(|_| unreadable())?;
        let text = std::str::from_utf8(&opened).map_err(|_| unreadable())?;
        Ok(Some(Secret::new(text)))
    }

    fn set(&self, reference: &str, value: &Secret) -> Result<(), SecretsError> {
        let sealed = self.public.seal(value.expose().as_bytes()).map_err(failed)?;
        let now = chrono::Utc::now().timestamp_millis();
        self.runtime.block_on(self.store.put_sealed_secret(reference, &sealed, now)).map_err(failed)
    }

    fn delete(&self, reference: &str) -> Result<(), SecretsError> {
        self.runtime.block_on(self.store.delete_sealed_secret(reference)).map_err(failed)
    }

    /// Sealing needs only the public key, read when this store was opened.
    fn ready(&self) -> Result<(), SecretsError> {
        Ok(())
    }
}

/// The credential store of a PostgreSQL database that is not a team workspace yet: games and
/// goals work, anything that stores a credential says to run `workspace init` first.
pub struct NoWorkspaceKey;

impl SecretStore for NoWorkspaceKey {
    fn get(&self, _reference: &str) -> Result<Option<Secret>, SecretsError> {
        Err(SecretsError::NoWorkspaceKey)
    }

    fn set(&self, _reference: &str, _value: &Secret) -> Result<(), SecretsError> {
        Err(SecretsError::NoWorkspaceKey)
    }

    fn delete(&self, _reference: &str) -> Result<(), SecretsError> {
        Err(SecretsError::NoWorkspaceKey)
    }
}
