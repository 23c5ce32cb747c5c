//! The SQLite side of the player key (`store/player_key.rs`): this data directory's instance
//! id, and what older versions kept in the file (the key itself, raw erased ids), moved out.

use std::sync::Arc;

use sqlx::{Sqlite, SqlitePool, Transaction};

use super::StoreError;
use crate::secrets::SecretStore;
use crate::store::player_key::PlayerKeyer;

/// Where databases before the keychain kept the key (moved out on open, then deleted).
const LEGACY_KEY_NAME: &str = "player_key_v1";

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

/// Reads the data directory's key from `keychain`, creating it on first open (or moving it
/// there from the database of an older version), and moves an older erasure list of raw ids
/// to keyed hashes. The database's write lock is held throughout, so two processes opening
/// a new data directory at once agree on one key. Also says whether anything of an older
/// version was moved out of the database (its WAL then holds the old values).
pub(super) async fn load_or_create(
    pool: &SqlitePool,
    keychain: Arc<dyn SecretStore>,
) -> Result<(PlayerKeyer, bool), StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let instance = instance_id(&mut tx).await?;
    let legacy: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE name = ?")
        .bind(LEGACY_KEY_NAME)
        .fetch_optional(&mut *tx)
        .await?;
    let keyer = PlayerKeyer::load(keychain, &instance, legacy.as_deref()).await?;
    if legacy.is_some() {
        sqlx::query("DELETE FROM meta WHERE name = ?").bind(LEGACY_KEY_NAME).execute(&mut *tx).await?;
    }
    let moved_erasures = move_raw_erasures(&keyer, &mut tx).await?;
    tx.commit().await?;
    Ok((keyer, legacy.is_some() || moved_erasures))
}

/// Databases before keyed erasures listed raw ids: key them, then drop that table.
async fn move_raw_erasures(keyer: &PlayerKeyer, tx: &mut Transaction<'_, Sqlite>) -> Result<bool, StoreError> {
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
            .bind(keyer.key(&player))
            .bind(at)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query("DROP TABLE erased_players").execute(&mut **tx).await?;
    Ok(true)
}
