//! Where the dispatcher gets the credential behind a config's `credential_ref`: the sandbox's
//! public demo tokens, credentials held in memory (CLI `--token-env`, tests), or the OS keychain.
//! X OAuth 2.0 access tokens are refreshed here shortly before they expire.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::model::Network;
use crate::oauth::{self, OAuthError};
use crate::sandbox;
use crate::secrets::{self, OAuth1Credentials, Secret, SecretStore, SecretsError, StoredCredential};

/// Refresh an OAuth 2.0 access token when it has less than this left (seconds).
const REFRESH_MARGIN_SECS: i64 = 300;

/// What fills a request's credential header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// Sent as is (TikTok `Access-Token`) or as `Bearer` (Reddit, X OAuth 2.0).
    Token(Secret),
    /// Each X request is signed with these (OAuth 1.0a).
    XOAuth1(OAuth1Credentials),
}

impl From<StoredCredential> for Credential {
    /// As stored, without renewing: an X OAuth 2.0 credential sends its current access token.
    fn from(stored: StoredCredential) -> Self {
        match stored {
            StoredCredential::Token(token) => Credential::Token(token),
            StoredCredential::XOAuth1(keys) => Credential::XOAuth1(keys),
            StoredCredential::XOAuth2(c) => Credential::Token(c.access_token),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("no credentials are connected for this config; connect the account in Settings → Integrations")]
    NotConnected,
    #[error("the keychain has no credential '{0}'; reconnect the account in Settings → Integrations")]
    Missing(String),
    #[error(transparent)]
    Keychain(#[from] SecretsError),
    #[error("the stored credential does not fit {0}; reconnect the account")]
    WrongKind(&'static str),
    #[error("could not renew the X access token: {0}")]
    Refresh(#[from] OAuthError),
}

impl CredentialError {
    /// Worth waiting for (a locked or absent keychain, X unreachable during a refresh) rather
    /// than pausing the config until the user reconnects.
    pub fn is_transient(&self) -> bool {
        match self {
            CredentialError::Keychain(e) => !matches!(e, SecretsError::Unreadable(_)),
            CredentialError::Refresh(e) => {
                matches!(e, OAuthError::Unreachable(_) | OAuthError::Malformed(_) | OAuthError::Refused(_))
            }
            CredentialError::NotConnected | CredentialError::Missing(_) | CredentialError::WrongKind(_) => false,
        }
    }
}

pub struct Credentials {
    keychain: Option<Arc<dyn SecretStore>>,
    memory: RwLock<HashMap<String, StoredCredential>>,
    http: super::send::HttpClient,
    /// One refresh at a time, so two config tasks never spend the same refresh token.
    refreshing: tokio::sync::Mutex<()>,
}

impl Credentials {
    /// Sandbox and memory first, then the given keychain.
    pub fn new(keychain: Arc<dyn SecretStore>) -> Self {
        Self::build(Some(keychain))
    }

    /// Sandbox and memory first, then the platform keychain (connected on first use).
    pub fn with_system_keychain() -> Self {
        Self::new(Arc::new(crate::secrets::Keychain::system()))
    }

    /// Sandbox and memory only: a config with a keychain reference pauses as not connected.
    pub fn without_keychain() -> Self {
        Self::build(None)
    }

    fn build(keychain: Option<Arc<dyn SecretStore>>) -> Self {
        Credentials {
            keychain,
            memory: RwLock::new(HashMap::new()),
            http: super::send::HttpClient::new(std::time::Duration::from_secs(20)),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    pub fn keychain(&self) -> Option<Arc<dyn SecretStore>> {
        self.keychain.clone()
    }

    /// Holds a credential in memory under `reference` (never written anywhere).
    pub fn set(&self, reference: &str, credential: StoredCredential) {
        self.memory.write().unwrap_or_else(|p| p.into_inner()).insert(reference.to_owned(), credential);
    }

    pub fn set_token(&self, reference: &str, token: &str) {
        self.set(reference, StoredCredential::Token(Secret::new(token)));
    }

    /// The stored credential behind a reference (memory, then keychain).
    pub async fn stored(&self, reference: &str) -> Result<StoredCredential, CredentialError> {
        if let Some(found) = self.memory.read().unwrap_or_else(|p| p.into_inner()).get(reference) {
            return Ok(found.clone());
        }
        let keychain = self.keychain.clone().ok_or_else(|| CredentialError::Missing(reference.to_owned()))?;
        let key = reference.to_owned();
        let value = secrets::blocking(keychain, move |k| k.get(&key)).await?;
        let value = value.ok_or_else(|| CredentialError::Missing(reference.to_owned()))?;
        Ok(StoredCredential::from_keychain_value(reference, &value)?)
    }

    async fn write_back(&self, reference: &str, credential: &StoredCredential) -> Result<(), CredentialError> {
        let in_memory = {
            let mut memory = self.memory.write().unwrap_or_else(|p| p.into_inner());
            match memory.get_mut(reference) {
                Some(slot) => {
                    *slot = credential.clone();
                    true
                }
                None => false,
            }
        };
        if let (false, Some(keychain)) = (in_memory, self.keychain.clone()) {
            let (key, value) = (reference.to_owned(), credential.to_keychain_value());
            secrets::blocking(keychain, move |k| k.set(&key, &value)).await?;
        }
        Ok(())
    }

    /// The credential for one request to `network`.
    pub async fn credential(&self, network: Network, reference: Option<&str>) -> Result<Credential, CredentialError> {
        let reference = reference.ok_or(CredentialError::NotConnected)?;
        if reference == crate::SANDBOX_CREDENTIAL_REF && !self.memory_has(reference) {
            return Ok(Credential::Token(Secret::new(match network {
                Network::TikTok => sandbox::TIKTOK_TOKEN,
                Network::Reddit => sandbox::REDDIT_TOKEN,
                Network::X => sandbox::X_TOKEN,
            })));
        }
        let stored = self.stored(reference).await?;
        if !stored.fits(network) {
            return Err(CredentialError::WrongKind(network.display_name()));
        }
        match stored {
            StoredCredential::XOAuth2(current) if expiring(current.expires_at) => {
                let _one_at_a_time = self.refreshing.lock().await;
                // Another task may have refreshed while we waited: use what is stored now.
                let latest = match self.stored(reference).await? {
                    StoredCredential::XOAuth2(latest) => latest,
                    _ => return Err(CredentialError::WrongKind(network.display_name())),
                };
                if !expiring(latest.expires_at) {
                    return Ok(Credential::Token(latest.access_token));
                }
                let http = self.http.get().map_err(|e| CredentialError::Refresh(OAuthError::Unreachable(e)))?;
                let renewed = oauth::pkce::refresh(http, &latest).await?;
                let token = renewed.access_token.clone();
                let renewed = StoredCredential::XOAuth2(renewed);
                if let Err(e) = self.write_back(reference, &renewed).await {
                    // The old refresh token is spent: keep the new one in memory rather than lose it.
                    eprintln!("could not store the renewed X token in the keychain ({e}); kept in memory");
                    self.set(reference, renewed);
                }
                Ok(Credential::Token(token))
            }
            other => Ok(other.into()),
        }
    }

    fn memory_has(&self, reference: &str) -> bool {
        self.memory.read().unwrap_or_else(|p| p.into_inner()).contains_key(reference)
    }
}

fn expiring(expires_at: Option<i64>) -> bool {
    expires_at.is_some_and(|at| at - chrono::Utc::now().timestamp() < REFRESH_MARGIN_SECS)
}
