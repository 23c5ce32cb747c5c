//! Where the dispatcher gets the secret for a config's `credential_ref`.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::model::Network;
use crate::sandbox;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("no credentials are connected for this config; connect the account in Settings → Integrations")]
    NotConnected,
    #[error("no stored credential named '{0}'; reconnect the account")]
    Missing(String),
}

/// Gives the secret behind a credential reference. Implementations must never log it.
pub trait TokenSource: Send + Sync {
    fn token(&self, network: Network, credential_ref: Option<&str>) -> Result<String, CredentialError>;
}

/// The sandbox's public demo tokens for `credential_ref = 'sandbox'`, plus tokens held in
/// memory (set by the CLI from an environment variable, or by tests to rotate credentials).
#[derive(Default)]
pub struct SandboxAndMemoryTokens {
    tokens: RwLock<HashMap<String, String>>,
}

impl SandboxAndMemoryTokens {
    pub fn set(&self, credential_ref: &str, token: &str) {
        self.tokens.write().unwrap_or_else(|p| p.into_inner()).insert(credential_ref.to_owned(), token.to_owned());
    }
}

impl TokenSource for SandboxAndMemoryTokens {
    fn token(&self, network: Network, credential_ref: Option<&str>) -> Result<String, CredentialError> {
        let reference = credential_ref.ok_or(CredentialError::NotConnected)?;
        if let Some(token) = self.tokens.read().unwrap_or_else(|p| p.into_inner()).get(reference) {
            return Ok(token.clone());
        }
        if reference == crate::SANDBOX_CREDENTIAL_REF {
            return Ok(match network {
                Network::TikTok => sandbox::TIKTOK_TOKEN,
                Network::Reddit => sandbox::REDDIT_TOKEN,
                Network::X => sandbox::X_TOKEN,
            }
            .to_owned());
        }
        Err(CredentialError::Missing(reference.to_owned()))
    }
}
