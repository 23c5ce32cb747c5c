//! The delivery log never holds a raw player id: it files rows under HMAC-SHA256 of the id with
//! a random key kept in the database. An erasure computes the same key to find the rows; the
//! file alone does not reveal whose rows they are.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::SqlitePool;

use super::StoreError;

const KEY_NAME: &str = "player_key_v1";

pub struct PlayerKeyer {
    key: [u8; 32],
}

impl std::fmt::Debug for PlayerKeyer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlayerKeyer(<redacted>)")
    }
}

impl PlayerKeyer {
    /// Reads the database's key, creating it on first open.
    pub async fn load_or_create(pool: &SqlitePool) -> Result<Self, StoreError> {
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).map_err(|e| StoreError::Corrupt(format!("no randomness for the log key: {e}")))?;
        // Two processes opening a new database at once agree on the first key written.
        sqlx::query("INSERT OR IGNORE INTO meta (name, value) VALUES (?, ?)")
            .bind(KEY_NAME)
            .bind(hex::encode(fresh))
            .execute(pool)
            .await?;
        let stored: String =
            sqlx::query_scalar("SELECT value FROM meta WHERE name = ?").bind(KEY_NAME).fetch_one(pool).await?;
        let key = hex::decode(&stored)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| StoreError::Corrupt("the log's player key is damaged".into()))?;
        Ok(Self { key })
    }

    /// 128 bits of HMAC-SHA256 as hex: unique enough to find a player's rows, short on disk.
    pub fn key(&self, player_id: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(player_id.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}
