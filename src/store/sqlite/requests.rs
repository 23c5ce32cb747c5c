//! What was sent and answered, for the log's drill-down: one row per request, shared by the
//! log rows of its batch, body deflate-compressed, credentials never stored (their headers hold
//! `<redacted>`). An erasure replaces the erased player's items in the stored bodies: each item
//! is found by its player through the log row that points at it, or through `request_items`
//! when no log row does.

use super::settle::{player_items, redact_stored_items};
use super::{SqliteStore, StoreError};
use crate::store::rows::*;
use crate::store::settlement::{stored_request, STORED_REQUEST};

impl SqliteStore {
    pub async fn stored_request(&self, id: i64) -> Result<Option<StoredRequest>, StoreError> {
        let row = sqlx::query_as(STORED_REQUEST).bind(id).fetch_optional(&self.pool).await?;
        row.map(|row| stored_request(id, row)).transpose()
    }

    /// Replaces a player's items in the stored requests: those their log rows point at and
    /// those filed in `request_items`, which are then forgotten too.
    pub(super) async fn redact_player_items(&self, player_key: &str) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let by_request = player_items(&mut tx, player_key).await?;
        let redacted = redact_stored_items(&mut tx, by_request).await?;
        sqlx::query("DELETE FROM request_items WHERE player_key = ?").bind(player_key).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(redacted)
    }
}
