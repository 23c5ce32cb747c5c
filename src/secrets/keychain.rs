//! The OS keychain behind a small trait: one entry per config credential, named by its
//! `credential_ref`. On Linux the store is the Secret Service (GNOME Keyring, KWallet), on
//! macOS the login keychain, on Windows Credential Manager.
//! Calls block (D-Bus round trips): async callers go through [`blocking`].

use std::sync::{Arc, Mutex};

use keyring_core::{CredentialStore, Error as KeyringError};

use super::{Secret, SecretsError};

/// The keychain "service" every Postback Desk entry is filed under.
pub const KEYCHAIN_SERVICE: &str = "Postback Desk";

pub trait SecretStore: Send + Sync {
    /// The entry's value, or `None` when there is no such entry.
    fn get(&self, reference: &str) -> Result<Option<Secret>, SecretsError>;
    fn set(&self, reference: &str, value: &Secret) -> Result<(), SecretsError>;
    /// Removes the entry; removing an absent entry is not an error.
    fn delete(&self, reference: &str) -> Result<(), SecretsError>;
    /// Fails when entries cannot be written now (checked before anything is sent to a network).
    fn ready(&self) -> Result<(), SecretsError> {
        self.get("postback-desk-probe").map(|_| ())
    }
}

type Connect = fn() -> Result<Arc<CredentialStore>, SecretsError>;

/// A keyring-core store, connected on first use and reconnected after a failed connect, so
/// starting the keyring daemon after the app fixes things without a restart.
pub struct Keychain {
    connect: Connect,
    store: Mutex<Option<Arc<CredentialStore>>>,
}

impl Keychain {
    /// The platform keychain (Secret Service, macOS Keychain, Windows Credential Manager).
    pub fn system() -> Self {
        Keychain { connect: connect_system, store: Mutex::new(None) }
    }

    /// A given keyring-core store, e.g. `keyring_core::mock::Store` to inject failures.
    pub fn with_store(store: Arc<CredentialStore>) -> Self {
        Keychain {
            connect: || Err(SecretsError::Unavailable("store was dropped".into())),
            store: Mutex::new(Some(store)),
        }
    }

    /// Connects now (if not yet connected): how the app and CLI check the keychain up front.
    pub fn check(&self) -> Result<(), SecretsError> {
        self.store().map(|_| ())
    }

    fn store(&self) -> Result<Arc<CredentialStore>, SecretsError> {
        let mut slot = self.store.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(store) = slot.as_ref() {
            return Ok(store.clone());
        }
        let store = (self.connect)()?;
        *slot = Some(store.clone());
        Ok(store)
    }

    fn entry(&self, reference: &str) -> Result<keyring_core::Entry, SecretsError> {
        self.store()?.build(KEYCHAIN_SERVICE, reference, None).map_err(|e| mapped(e, reference))
    }
}

#[cfg(target_os = "linux")]
fn connect_system() -> Result<Arc<CredentialStore>, SecretsError> {
    match zbus_secret_service_keyring_store::Store::new() {
        Ok(store) => Ok(store),
        Err(e) => Err(SecretsError::Unavailable(short(&e))),
    }
}

/// The user's login keychain.
#[cfg(target_os = "macos")]
fn connect_system() -> Result<Arc<CredentialStore>, SecretsError> {
    match apple_native_keyring_store::keychain::Store::new() {
        Ok(store) => Ok(store),
        Err(e) => Err(SecretsError::Unavailable(short(&e))),
    }
}

/// Windows Credential Manager (generic credentials of the signed-in user).
#[cfg(target_os = "windows")]
fn connect_system() -> Result<Arc<CredentialStore>, SecretsError> {
    match windows_native_keyring_store::Store::new() {
        Ok(store) => Ok(store),
        Err(e) => Err(SecretsError::Unavailable(short(&e))),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
fn connect_system() -> Result<Arc<CredentialStore>, SecretsError> {
    Err(SecretsError::Unavailable("this system has no keychain Postback Desk can use".into()))
}

/// Keyring errors as ours. `BadEncoding` / `BadDataFormat` carry the raw bytes: never shown.
fn mapped(e: KeyringError, reference: &str) -> SecretsError {
    match e {
        KeyringError::NoStorageAccess(inner) => SecretsError::Locked(inner.to_string()),
        KeyringError::BadEncoding(_) | KeyringError::BadDataFormat(..) => SecretsError::Unreadable(reference.into()),
        KeyringError::PlatformFailure(inner) => SecretsError::Failed(inner.to_string()),
        other => SecretsError::Failed(short(&other)),
    }
}

fn short(e: &KeyringError) -> String {
    match e {
        KeyringError::BadEncoding(_) | KeyringError::BadDataFormat(..) => "the stored value is unreadable".into(),
        other => other.to_string(),
    }
}

impl SecretStore for Keychain {
    fn get(&self, reference: &str) -> Result<Option<Secret>, SecretsError> {
        match self.entry(reference)?.get_password() {
            Ok(value) => Ok(Some(Secret::new(value))),
            Err(KeyringError::NoEntry) => Ok(None),
            Err(e) => Err(mapped(e, reference)),
        }
    }

    fn set(&self, reference: &str, value: &Secret) -> Result<(), SecretsError> {
        self.entry(reference)?.set_password(value.expose()).map_err(|e| mapped(e, reference))
    }

    fn delete(&self, reference: &str) -> Result<(), SecretsError> {
        match self.entry(reference)?.delete_credential() {
            Ok(()) | Err(KeyringError::NoEntry) => Ok(()),
            Err(e) => Err(mapped(e, reference)),
        }
    }
}

/// Runs a keychain call off the async runtime's worker threads.
pub async fn blocking<T, F>(store: Arc<dyn SecretStore>, call: F) -> Result<T, SecretsError>
where
    T: Send + 'static,
    F: FnOnce(&dyn SecretStore) -> Result<T, SecretsError> + Send + 'static,
{
    tokio::task::spawn_blocking(move || call(store.as_ref()))
        .await
        .unwrap_or_else(|e| Err(SecretsError::Failed(format!("keychain call did not finish: {e}"))))
}
