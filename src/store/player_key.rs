//! The delivery log never holds a raw player id: it files rows under HMAC-SHA256 of the id with
//! a random key per workspace (data directory or database). On a desktop the key lives in the
//! OS keychain, like the ingest token, never in the SQLite file: the file alone does not say
//! whose rows they are. A team's PostgreSQL database keeps its own key, which every member
//! needs. An erasure computes the same key to find the rows; the erasure list holds keyed
//! hashes only. Shared by both engines; each names its instance (`meta.instance_id`).

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::StoreError;
use crate::secrets::{self, Secret, SecretStore};

pub struct PlayerKeyer {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for PlayerKeyer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlayerKeyer(<redacted>)")
    }
}

pub(super) fn parse_key(hex_key: &str) -> Result<Zeroizing<[u8; 32]>, StoreError> {
    hex::decode(hex_key.trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .map(Zeroizing::new)
        .ok_or_else(|| StoreError::Corrupt("the log's player key in the keychain is damaged".into()))
}

fn fresh_key() -> Result<Zeroizing<[u8; 32]>, StoreError> {
    let mut fresh = Zeroizing::new([0u8; 32]);
    getrandom::fill(fresh.as_mut()).map_err(|e| StoreError::Corrupt(format!("no randomness for the log key: {e}")))?;
    Ok(fresh)
}

impl PlayerKeyer {
    /// Reads the key of workspace `instance` from `keychain`, creating it there on first use
    /// (from `legacy`, a key an older version kept in the database, when there is one). The
    /// caller holds a lock of its database so that two processes agree on one key.
    pub(super) async fn load(
        keychain: Arc<dyn SecretStore>,
        instance: &str,
        legacy: Option<&str>,
    ) -> Result<Self, StoreError> {
        let entry = format!("player-key-{instance}");
        let name = entry.clone();
        let stored = secrets::blocking(keychain.clone(), move |k| k.get(&name)).await?;
        let key = match stored {
            Some(secret) => parse_key(secret.expose())?,
            None => {
                let key = match legacy {
                    Some(hex_key) => parse_key(hex_key)?,
                    None => fresh_key()?,
                };
                let value = Secret::new(hex::encode(key.as_ref()));
                secrets::blocking(keychain, move |k| k.set(&entry, &value)).await?;
                key
            }
        };
        Ok(Self { key })
    }

    /// A new random key as hex (PostgreSQL keeps its key in the database: see postgres/mod.rs).
    pub(super) fn fresh_hex() -> Result<Zeroizing<String>, StoreError> {
        Ok(Zeroizing::new(hex::encode(fresh_key()?.as_ref())))
    }

    pub(super) fn from_hex(hex_key: &str) -> Result<Self, StoreError> {
        Ok(Self { key: parse_key(hex_key)? })
    }

    /// 128 bits of HMAC-SHA256 as hex: unique enough to find a player's rows, short on disk.
    pub fn key(&self, player_id: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.key.as_ref()).expect("HMAC takes any key length");
        mac.update(player_id.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}
