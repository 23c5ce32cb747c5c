//! What was sent and answered, for the log's drill-down: one row per request, shared by the
//! log rows of its batch, body deflate-compressed, credentials never stored (their headers hold
//! `<redacted>`). An erasure replaces the erased player's items in the stored bodies: each item
//! is found by its player through the log row that points at it, or through `request_items`
//! when no log row does.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{SqliteStore, StoreError};
use crate::model::Network;
use crate::store::rows::*;
use crate::store::settlement::{redacted_body, stored_request, RequestRow, STORED_REQUEST};

/// Replaces items of stored requests, inside the caller's transaction: `(request id, network,
/// item indices)`. Returns how many items were replaced.
pub(super) async fn redact_stored_items(
    tx: &mut sqlx::SqliteConnection,
    items: BTreeMap<i64, (Network, Vec<i64>)>,
) -> Result<u64, StoreError> {
    let mut redacted = 0;
    for (request_id, (network, indices)) in items {
        let stored: Option<Vec<u8>> = sqlx::query_scalar("SELECT body FROM delivery_requests WHERE id = ?")
            .bind(request_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(body) = stored.and_then(|s| redacted_body(network, &s, &indices).transpose()) else { continue };
        sqlx::query("UPDATE delivery_requests SET body = ? WHERE id = ?")
            .bind(body?)
            .bind(request_id)
            .execute(&mut *tx)
            .await?;
        redacted += indices.len() as u64;
    }
    Ok(redacted)
}

/// Files the items that no log row points at under their players: `(request index, item, player
/// key)`, the request index into `request_ids`.
pub(super) async fn insert_request_items(
    tx: &mut sqlx::SqliteConnection,
    items: &[(usize, i64, &str)],
    requests: &[RequestRow],
    request_ids: &[i64],
) -> Result<(), StoreError> {
    for chunk in items.chunks(256) {
        let mut insert: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
            "INSERT OR IGNORE INTO request_items (player_key, request_id, item_index, network) ",
        );
        insert.push_values(chunk, |mut b, (request, item, key)| {
            b.push_bind(*key)
                .push_bind(request_ids.get(*request).copied())
                .push_bind(item)
                .push_bind(requests.get(*request).map(|r| r.network.as_str()));
        });
        insert.build().execute(&mut *tx).await?;
    }
    Ok(())
}

impl SqliteStore {
    pub async fn stored_request(&self, id: i64) -> Result<Option<StoredRequest>, StoreError> {
        let row = sqlx::query_as(STORED_REQUEST).bind(id).fetch_optional(&self.pool).await?;
        row.map(|row| stored_request(id, row)).transpose()
    }

    /// Replaces a player's items in the stored requests: those their log rows point at and
    /// those filed in `request_items`, which are then forgotten too.
    pub(super) async fn redact_player_items(&self, player_key: &str) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let rows = sqlx::query(
            "SELECT request_ref, item_index, network FROM delivery_log
             WHERE player_key = ?1 AND request_ref IS NOT NULL AND item_index IS NOT NULL
             UNION ALL
             SELECT request_id, item_index, network FROM request_items WHERE player_key = ?1",
        )
        .bind(player_key)
        .fetch_all(&mut *tx)
        .await?;
        let mut by_request: BTreeMap<i64, (Network, Vec<i64>)> = BTreeMap::new();
        for r in &rows {
            let network: String = r.try_get("network")?;
            let Some(network) = Network::parse(&network) else { continue };
            by_request
                .entry(r.try_get("request_ref")?)
                .or_insert((network, Vec::new()))
                .1
                .push(r.try_get("item_index")?);
        }
        let redacted = redact_stored_items(&mut tx, by_request).await?;
        sqlx::query("DELETE FROM request_items WHERE player_key = ?").bind(player_key).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(redacted)
    }
}
