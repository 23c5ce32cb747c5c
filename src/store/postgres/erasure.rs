//! Forgetting a player on PostgreSQL, and the stored requests the log's drill-down shows.

use super::settle::{player_items, redact_stored_items, ERASURE_LOCK};
use super::{PgStore, StoreError};
use crate::store::rows::StoredRequest;
use crate::store::settlement::{stored_request, STORED_REQUEST};

impl PgStore {
    /// Forgets a player: future events are skipped, queued ones removed, their items in stored
    /// requests redacted and the log unlinked; the list keeps only the keyed hash of the id.
    /// Returns (queued conversions removed, log rows unlinked). One transaction, holding the
    /// erasure lock exclusively: a batch settling on any worker commits before it (and is
    /// scrubbed here) or reads the erasure in its own transaction (settle.rs).
    pub async fn erase_player(&self, player_id: &str, now_ms: i64) -> Result<(u64, u64), StoreError> {
        let key = self.player_key(player_id);
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(ERASURE_LOCK).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO erased_player_keys (player_key, erased_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(&key)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        let queued = sqlx::query("DELETE FROM queue WHERE player_id = $1 AND state <> 'done'")
            .bind(player_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM goal_conversions WHERE player_key = $1").bind(&key).execute(&mut *tx).await?;
        // The player's items in the stored requests go first (found through the log rows' link
        // and `request_items`), then the link itself.
        let by_request = player_items(&mut tx, &key).await?;
        redact_stored_items(&mut tx, by_request).await?;
        sqlx::query("DELETE FROM request_items WHERE player_key = $1").bind(&key).execute(&mut *tx).await?;
        let logged = sqlx::query("UPDATE delivery_log SET player_key = NULL WHERE player_key = $1")
            .bind(&key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok((queued, logged))
    }

    pub async fn stored_request(&self, id: i64) -> Result<Option<StoredRequest>, StoreError> {
        let row = sqlx::query_as(STORED_REQUEST).bind(id).fetch_optional(&self.pool).await?;
        row.map(|row| stored_request(id, row)).transpose()
    }
}
