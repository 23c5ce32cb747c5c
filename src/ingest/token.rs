//! The ingest API's bearer token: one per data directory, generated on first use and kept in
//! the OS keychain (never in SQLite); `postback serve --ingest` may take it from
//! `POSTBACK_INGEST_TOKEN` instead.

use std::sync::Arc;

use crate::secrets::{self, Secret, SecretStore, SecretsError};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Keychain(#[from] SecretsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The keychain entry of this data directory's token.
async fn entry_name(store: &Store) -> Result<String, StoreError> {
    let id = match store.meta("instance_id").await? {
        Some(id) => id,
        None => {
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes).map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
            store.set_meta_once("instance_id", &hex::encode(bytes)).await?
        }
    };
    Ok(format!("ingest-{id}"))
}

fn fresh() -> Result<Secret, TokenError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
    Ok(Secret::new(format!("pbd_{}", hex::encode(bytes))))
}

/// The data directory's token, created on first use.
pub async fn load_or_create(store: &Store, keychain: Arc<dyn SecretStore>) -> Result<Secret, TokenError> {
    let name = entry_name(store).await?;
    let key = name.clone();
    if let Some(token) = secrets::blocking(keychain.clone(), move |k| k.get(&key)).await? {
        return Ok(token);
    }
    let token = fresh()?;
    let (key, value) = (name, token.clone());
    secrets::blocking(keychain, move |k| k.set(&key, &value)).await?;
    Ok(token)
}

/// A new token; the old one stops working when the ingest restarts with it.
pub async fn rotate(store: &Store, keychain: Arc<dyn SecretStore>) -> Result<Secret, TokenError> {
    let name = entry_name(store).await?;
    let token = fresh()?;
    let (key, value) = (name, token.clone());
    secrets::blocking(keychain, move |k| k.set(&key, &value)).await?;
    Ok(token)
}
