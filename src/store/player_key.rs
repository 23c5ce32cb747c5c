//! The delivery log never holds a raw player id: it files rows under HMAC-SHA256 of the id with
//! a random key per data directory. The key lives in the OS keychain, like the ingest token,
//! never in the database: the file alone does not say whose rows they are. An erasure computes
//! the same key to find the rows; the erasure list holds keyed hashes only.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::{Sqlite, SqlitePool, Transaction};
use zeroize::Zeroizing;

use super::StoreError;
use crate::secrets::{self, Secret, SecretStore};

/// Where databases before the keychain kept the key (moved out on open, then deleted).
const LEGACY_KEY_NAME: &str = "player_key_v1";

pub struct PlayerKeyer {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for PlayerKeyer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlayerKeyer(<redacted>)")
    }
}

fn parse_key(hex_key: &str) -> Result<Zeroizing<[u8; 32]>, StoreError> {
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

/// This data directory's id (names its keychain entries), created on first open.
async fn instance_id(tx: &mut Transaction<'_, Sqlite>) -> Result<String, StoreError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
    sqlx::query("INSERT OR IGNORE INTO meta (name, value) VALUES ('instance_id', ?)")
        .bind(hex::encode(bytes))
        .execute(&mut **tx)
        .await?;
    Ok(sqlx::query_scalar("SELECT value FROM meta WHERE name = 'instance_id'").fetch_one(&mut **tx).await?)
}

impl PlayerKeyer {
    /// Reads the data directory's key from `keychain`, creating it on first open (or moving it
    /// there from the database of an older version), and moves an older erasure list of raw ids
    /// to keyed hashes. The database's write lock is held throughout, so two processes opening
    /// a new data directory at once agree on one key. Also says whether anything of an older
    /// version was moved out of the database (its WAL then holds the old values).
    pub(super) async fn load_or_create(
        pool: &SqlitePool,
        keychain: Arc<dyn SecretStore>,
    ) -> Result<(Self, bool), StoreError> {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        let entry = format!("player-key-{}", instance_id(&mut tx).await?);
        let name = entry.clone();
        let stored = secrets::blocking(keychain.clone(), move |k| k.get(&name)).await?;
        let legacy: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE name = ?")
            .bind(LEGACY_KEY_NAME)
            .fetch_optional(&mut *tx)
            .await?;
        let key = match stored {
            Some(secret) => parse_key(secret.expose())?,
            None => {
                let key = match &legacy {
                    Some(hex_key) => parse_key(hex_key)?,
                    None => fresh_key()?,
                };
                let value = Secret::new(hex::encode(key.as_ref()));
                secrets::blocking(keychain, move |k| k.set(&entry, &value)).await?;
                key
            }
        };
        let keyer = Self { key };
        if legacy.is_some() {
            sqlx::query("DELETE FROM meta WHERE name = ?").bind(LEGACY_KEY_NAME).execute(&mut *tx).await?;
        }
        let moved_erasures = keyer.move_raw_erasures(&mut tx).await?;
        tx.commit().await?;
        Ok((keyer, legacy.is_some() || moved_erasures))
    }

    /// Databases before keyed erasures listed raw ids: key them, then drop that table.
    async fn move_raw_erasures(&self, tx: &mut Transaction<'_, Sqlite>) -> Result<bool, StoreError> {
        let exists: Option<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'erased_players'")
                .fetch_optional(&mut **tx)
                .await?;
        if exists.is_none() {
            return Ok(false);
        }
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT player_id, erased_at FROM erased_players").fetch_all(&mut **tx).await?;
        for (player, at) in rows {
            sqlx::query("INSERT OR IGNORE INTO erased_player_keys (player_key, erased_at) VALUES (?, ?)")
                .bind(self.key(&player))
                .bind(at)
                .execute(&mut **tx)
                .await?;
        }
        sqlx::query("DROP TABLE erased_players").execute(&mut **tx).await?;
        Ok(true)
    }

    /// 128 bits of HMAC-SHA256 as hex: unique enough to find a player's rows, short on disk.
    pub fn key(&self, player_id: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.key.as_ref()).expect("HMAC takes any key length");
        mac.update(player_id.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}
