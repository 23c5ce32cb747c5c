//! What was sent and answered, for the log's drill-down: one row per request, shared by the
//! log rows of its batch, body deflate-compressed, credentials never stored (their headers hold
//! `<redacted>`). An erasure replaces the erased player's items in the stored bodies: each item
//! is found by its player through the log row that points at it, or through `request_items`
//! when no log row does.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use sqlx::Row;

use super::{SqliteStore, StoreError};
use crate::model::Network;
use crate::store::rows::*;

/// Answers are kept up to this size.
const MAX_ANSWER: usize = 16 * 1024;

pub(super) fn compress(body: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut encoder =
        flate2::write::DeflateEncoder::new(Vec::with_capacity(body.len() / 6), flate2::Compression::fast());
    encoder.write_all(body).and_then(|()| encoder.finish()).map_err(|e| StoreError::Corrupt(format!("compress: {e}")))
}

pub(super) fn decompress(stored: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(stored.len() * 6);
    flate2::read::DeflateDecoder::new(stored)
        .read_to_end(&mut out)
        .map_err(|e| StoreError::Corrupt(format!("a stored request cannot be read: {e}")))?;
    Ok(out)
}

fn truncated(text: &str) -> String {
    match text.char_indices().nth(MAX_ANSWER) {
        Some((cut, _)) => format!("{}… (cut at 16 KiB)", &text[..cut]),
        None => text.to_owned(),
    }
}

/// A request ready for its row: compressed and serialised before the write lock is taken,
/// so that delivery holds the lock only for the insert (compressing a batch's body took
/// milliseconds, while every enqueue waited).
#[derive(Debug, Clone)]
pub(super) struct RequestRow {
    at: i64,
    config_id: i64,
    pub(super) network: Network,
    url: String,
    headers: String,
    body: Vec<u8>,
    response_status: Option<i64>,
    answer_headers: String,
    answer: Option<String>,
}

fn to_json(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl RequestRow {
    pub(super) fn new(r: &RequestRecord) -> Result<Self, StoreError> {
        Ok(Self {
            at: r.at,
            config_id: r.config_id,
            network: r.network,
            url: r.url.clone(),
            headers: to_json(&r.headers)?,
            body: compress(&r.body)?,
            response_status: r.response_status.map(i64::from),
            answer_headers: to_json(&r.response_headers)?,
            answer: r.response_body.as_deref().map(truncated),
        })
    }
}

impl RequestRow {
    /// The same request with some items replaced (their players were erased meanwhile).
    pub(super) fn redacted(&self, indices: &[i64]) -> Result<Self, StoreError> {
        let mut row = self.clone();
        if let Some(body) = redacted_body(self.network, &self.body, indices)? {
            row.body = body;
        }
        Ok(row)
    }
}

/// A stored (compressed) body with the items at `indices` replaced; `None` when the body is not
/// JSON with items (nothing to redact).
fn redacted_body(network: Network, stored: &[u8], indices: &[i64]) -> Result<Option<Vec<u8>>, StoreError> {
    let Ok(mut body) = serde_json::from_slice::<serde_json::Value>(&decompress(stored)?) else { return Ok(None) };
    if crate::networks::redact_items(network, &mut body, indices) == 0 {
        return Ok(None);
    }
    let bytes = serde_json::to_vec(&body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    compress(&bytes).map(Some)
}

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

/// Inserts the requests of a settlement; returns their ids in order.
pub(super) async fn insert_requests(
    tx: &mut sqlx::SqliteConnection,
    requests: &[RequestRow],
) -> Result<Vec<i64>, StoreError> {
    let mut ids = Vec::with_capacity(requests.len());
    for r in requests {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO delivery_requests (at, config_id, url, headers, body, response_status, response_headers, response_body)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(r.at)
        .bind(r.config_id)
        .bind(&r.url)
        .bind(&r.headers)
        .bind(&r.body)
        .bind(r.response_status)
        .bind(&r.answer_headers)
        .bind(&r.answer)
        .fetch_one(&mut *tx)
        .await?;
        ids.push(id);
    }
    Ok(ids)
}

impl SqliteStore {
    pub async fn stored_request(&self, id: i64) -> Result<Option<StoredRequest>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT id, url, headers, body, response_status, response_headers, response_body
             FROM delivery_requests WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("stored request {id}: {e}"));
        let body = decompress(&row.try_get::<Vec<u8>, _>("body")?)?;
        Ok(Some(StoredRequest {
            id,
            url: row.try_get("url")?,
            headers: serde_json::from_str(&row.try_get::<String, _>("headers")?).map_err(corrupt)?,
            body: serde_json::from_slice(&body).map_err(corrupt)?,
            response_status: row.try_get::<Option<i64>, _>("response_status")?.and_then(|s| u16::try_from(s).ok()),
            response_headers: row
                .try_get::<Option<String>, _>("response_headers")?
                .map(|h| serde_json::from_str(&h).map_err(corrupt))
                .transpose()?
                .unwrap_or_default(),
            response_body: row.try_get("response_body")?,
        }))
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
