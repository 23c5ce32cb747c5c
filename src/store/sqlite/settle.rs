//! Settling a claimed batch: its attempts go to the delivery log, then its rows take their new
//! states. While events arrive, in transactions of a few hundred rows: one transaction per
//! batch held SQLite's only write lock for 50–100 ms, and every event a game server sent
//! meanwhile waited behind it; between two small ones, waiting enqueues go first
//! (write_gate.rs).
//!
//! The order keeps a crash part-way safe: attempts are logged before rows leave their lease,
//! so a crash leaves rows leased, sent again once the lease expires (at least once; the
//! networks drop the repeat by event id), never a settled row without its log row.
//!
//! A player erased while their batch was in flight is never written back: each part's
//! transaction holds the write lock from its start and reads the erasure list inside it, so an
//! erasure commits either before (the part files the player's rows under no key and redacts
//! their items) or after (the erasure finds what the part wrote).

use std::collections::{BTreeMap, HashSet};

use sqlx::{QueryBuilder, Sqlite};

use super::queue::{ids_json, insert_ranges};
use super::{SqliteStore, StoreError};
use crate::model::{LogEntry, Network};
use crate::store::rows::{NewLogEntry, SettleReport, Settlement};
use crate::store::settlement::{hourly_counts, keys_unless_erased, log_entry, row_parts, PreparedSettlement, Rows};

/// Applies one part; returns how many rows the lease token still held.
async fn apply_rows(tx: &mut sqlx::SqliteConnection, token: &str, at: i64, rows: Rows<'_>) -> Result<u64, StoreError> {
    let result = match rows {
        Rows::Done(ids) => {
            sqlx::query(
                "UPDATE queue SET state = 'done', payload = '', player_id = '', attempts = attempts + 1,
                     lease_token = NULL, lease_until = NULL, settled_at = ?2
                 WHERE id IN (SELECT value FROM json_each(?1)) AND lease_token = ?3",
            )
            .bind(ids_json(ids))
            .bind(at)
            .bind(token)
            .execute(&mut *tx)
            .await?
        }
        Rows::Remove(ids) => {
            sqlx::query("DELETE FROM queue WHERE id IN (SELECT value FROM json_each(?1)) AND lease_token = ?2")
                .bind(ids_json(ids))
                .bind(token)
                .execute(&mut *tx)
                .await?
        }
        Rows::Retry(rows) => {
            let rows = serde_json::to_string(rows).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query(
                // A join driven by the ids (`+` keeps the planner off the lease index, which would
                // scan the JSON once per leased row): quadratic plans held the write lock for
                // over half a second per 1,000-row retry.
                "UPDATE queue SET attempts = attempts + 1, lease_token = NULL, lease_until = NULL,
                     run_at = j.run_at, failing_since = j.failing_since
                 FROM (SELECT json_extract(value, '$.id') AS id, json_extract(value, '$.run_at') AS run_at,
                              json_extract(value, '$.failing_since') AS failing_since FROM json_each(?1)) AS j
                 WHERE queue.id = j.id AND +queue.lease_token = ?2",
            )
            .bind(rows)
            .bind(token)
            .execute(&mut *tx)
            .await?
        }
        Rows::Defer(rows) => {
            let pairs = serde_json::to_string(rows).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query(
                "UPDATE queue SET lease_token = NULL, lease_until = NULL, run_at = j.run_at
                 FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS run_at
                       FROM json_each(?1)) AS j
                 WHERE queue.id = j.id AND +queue.lease_token = ?2",
            )
            .bind(pairs)
            .bind(token)
            .execute(&mut *tx)
            .await?
        }
        Rows::Release(ids) => {
            sqlx::query(
                "UPDATE queue SET lease_token = NULL, lease_until = NULL
                 WHERE id IN (SELECT value FROM json_each(?1)) AND lease_token = ?2",
            )
            .bind(ids_json(ids))
            .bind(token)
            .execute(&mut *tx)
            .await?
        }
        Rows::Dead(ids, counted) => {
            sqlx::query(
                "UPDATE queue SET state = 'dead', attempts = attempts + ?2, lease_token = NULL, lease_until = NULL,
                     settled_at = ?3
                 WHERE id IN (SELECT value FROM json_each(?1)) AND lease_token = ?4",
            )
            .bind(ids_json(ids))
            .bind(i64::from(counted))
            .bind(at)
            .bind(token)
            .execute(&mut *tx)
            .await?
        }
    };
    Ok(result.rows_affected())
}

/// Which of these player keys were erased, read inside the caller's transaction.
async fn erased_keys<'k>(
    tx: &mut sqlx::SqliteConnection,
    keys: impl Iterator<Item = &'k str>,
) -> Result<HashSet<String>, StoreError> {
    let mut keys: Vec<&str> = keys.collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        return Ok(HashSet::new());
    }
    let list = serde_json::to_string(&keys).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let erased: Vec<String> = sqlx::query_scalar(
        "SELECT player_key FROM erased_player_keys WHERE player_key IN (SELECT value FROM json_each(?))",
    )
    .bind(list)
    .fetch_all(&mut *tx)
    .await?;
    Ok(erased.into_iter().collect())
}

mod shared_sql {
    crate::store::shared::settle::settle!(connection = sqlx::SqliteConnection, database = sqlx::Sqlite, lock_row = "");
}
use shared_sql::{apply_config_state, insert_request_items, insert_requests};
pub(super) use shared_sql::{player_items, redact_stored_items};

impl SqliteStore {
    /// Applies one batch's outcomes (see the module's notes on order and size): prepared, then
    /// written.
    pub async fn settle(&self, s: Settlement) -> Result<SettleReport, StoreError> {
        self.settle_prepared(&self.prepare_settlement(s)?).await
    }

    /// The CPU work of settling (compressing bodies, keying players), without the store's lock:
    /// done on the caller's thread, which may run at a lower priority than the writes.
    pub fn prepare_settlement(&self, settlement: Settlement) -> Result<PreparedSettlement, StoreError> {
        PreparedSettlement::new(settlement, &self.players)
    }

    /// The first part's transaction: the requests (their erased players' items redacted), the
    /// items no log row points at, and the part's log rows. Returns the requests' ids.
    async fn write_requests_and_log(
        &self,
        tx: &mut sqlx::SqliteConnection,
        prepared: &PreparedSettlement,
        entries: &[NewLogEntry],
        keys: &[String],
    ) -> Result<(Vec<i64>, Option<Vec<LogEntry>>), StoreError> {
        let erased = erased_keys(tx, prepared.all_keys()).await?;
        let request_ids = insert_requests(tx, &prepared.requests_without(&erased)?).await?;
        insert_request_items(tx, &prepared.unlogged_kept(&erased), &prepared.requests, &request_ids).await?;
        let logged = self.insert_log(tx, entries, &keys_unless_erased(keys, &erased), &request_ids).await?;
        let s = &prepared.settlement;
        super::traffic::add_traffic(tx, s.at, &s.traffic).await?;
        Ok((request_ids, logged))
    }

    /// A later part's log rows. A player erased since the first part is filed under no key,
    /// and their items in the requests the first part stored are redacted now.
    async fn write_log_part(
        &self,
        tx: &mut sqlx::SqliteConnection,
        entries: &[NewLogEntry],
        keys: &[String],
        request_ids: &[i64],
    ) -> Result<Option<Vec<LogEntry>>, StoreError> {
        let erased = erased_keys(tx, keys.iter().map(String::as_str)).await?;
        if !erased.is_empty() {
            let mut gone: BTreeMap<i64, (Network, Vec<i64>)> = BTreeMap::new();
            for (e, key) in entries.iter().zip(keys) {
                let request = e.request.and_then(|r| request_ids.get(r).copied());
                if let (Some(request), Some(item), true) = (request, e.item_index, erased.contains(key)) {
                    gone.entry(request).or_insert((e.network, Vec::new())).1.push(item);
                }
            }
            redact_stored_items(tx, gone).await?;
        }
        self.insert_log(tx, entries, &keys_unless_erased(keys, &erased), request_ids).await
    }

    /// Writes a prepared settlement. Every row statement matches the settlement's lease token,
    /// so rows another dispatcher re-claimed meanwhile are left alone and counted as lost.
    pub async fn settle_prepared(&self, prepared: &PreparedSettlement) -> Result<SettleReport, StoreError> {
        let PreparedSettlement { settlement: s, keys, .. } = prepared;
        let max_rows = self.write_gate.delivery_part_rows();
        let mut longest_hold_ms = 0f64;
        // 1. The attempts: the requests with the first rows, which refer to them.
        let mut request_ids = Vec::new();
        if !s.log.is_empty() || !s.requests.is_empty() {
            let parts: Vec<(&[NewLogEntry], &[String])> = if s.log.is_empty() {
                vec![(&[], &[])]
            } else {
                s.log.chunks(max_rows).zip(keys.chunks(max_rows)).collect()
            };
            for (index, (entries, keys)) in parts.into_iter().enumerate() {
                let _turn = self.delivery_turn().await;
                let held = std::time::Instant::now();
                // IMMEDIATE: the erasure list read inside is the one in force when it commits.
                let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
                let logged = if index == 0 {
                    let (ids, logged) = self.write_requests_and_log(&mut tx, prepared, entries, keys).await?;
                    request_ids = ids;
                    logged
                } else {
                    self.write_log_part(&mut tx, entries, keys, &request_ids).await?
                };
                tx.commit().await?;
                longest_hold_ms = longest_hold_ms.max(held.elapsed().as_secs_f64() * 1e3);
                if let Some(logged) = logged.filter(|l| !l.is_empty()) {
                    let _ = self.log_events.send(std::sync::Arc::new(logged));
                }
            }
        }
        // 2. The config's state first (a config paused or gone offline is not claimed from
        //    while its rows return to the queue), then the rows' new states.
        let token = s.lease_token.as_str();
        let (mut expected, mut touched) = (0u64, 0u64);
        let parts = row_parts(s, max_rows);
        let config_state = s.pause.is_some() || s.offline.is_some();
        let transactions = parts.len().max(usize::from(config_state));
        for index in 0..transactions {
            let _turn = self.delivery_turn().await;
            let held = std::time::Instant::now();
            let mut tx = self.pool.begin().await?;
            if index == 0 {
                apply_config_state(&mut tx, s).await?;
            }
            if let Some(rows) = parts.get(index) {
                expected += rows.len() as u64;
                touched += apply_rows(&mut tx, token, s.at, *rows).await?;
            }
            tx.commit().await?;
            longest_hold_ms = longest_hold_ms.max(held.elapsed().as_secs_f64() * 1e3);
        }
        if longest_hold_ms > 20.0 {
            tracing::debug!(rows = s.log.len(), longest_hold_ms, "slow settle");
        }
        self.checkpoint_soon();
        Ok(SettleReport { lost: expected.saturating_sub(touched) })
    }

    /// Appends attempts to the delivery log, each filed under its player's keyed hash in `keys`
    /// (one per entry), and counts them in the hourly totals. Returns the rows as the log shows
    /// them.
    async fn insert_log(
        &self,
        tx: &mut sqlx::SqliteConnection,
        entries: &[NewLogEntry],
        keys: &[Option<String>],
        request_ids: &[i64],
    ) -> Result<Option<Vec<LogEntry>>, StoreError> {
        // Rows are copied for live views only while someone follows the log.
        let mut logged = (self.log_events.receiver_count() > 0).then(|| Vec::with_capacity(entries.len()));
        for rows in insert_ranges(entries.len()) {
            let (chunk, keys) = (&entries[rows.clone()], &keys[rows]);
            let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO delivery_log (at, config_id, network, event_name, event_id, goal_key, player_key, status,
                     http_status, latency_ms, attempt, request_id, credential_failure, error, request_ref, item_index) ",
            );
            insert.push_values(chunk.iter().zip(keys), |mut b, (e, key)| {
                b.push_bind(e.at)
                    .push_bind(e.config_id)
                    .push_bind(e.network.as_str())
                    .push_bind(&e.event_name)
                    .push_bind(&e.event_id)
                    .push_bind(&e.goal_key)
                    .push_bind(key)
                    .push_bind(e.status.as_str())
                    .push_bind(e.http_status.map(i64::from))
                    .push_bind(e.latency_ms)
                    .push_bind(e.attempt)
                    .push_bind(&e.request_id)
                    .push_bind(e.credential_failure)
                    .push_bind(&e.error)
                    .push_bind(e.request.and_then(|i| request_ids.get(i).copied()))
                    .push_bind(e.item_index);
            });
            let result = insert.build().execute(&mut *tx).await?;
            // One statement assigns consecutive row ids (we hold the write lock).
            let first = result.last_insert_rowid() - chunk.len() as i64 + 1;
            let Some(logged) = logged.as_mut() else { continue };
            logged.extend(chunk.iter().enumerate().map(|(i, e)| log_entry(first + i as i64, e)));
        }
        let hourly = hourly_counts(entries);
        if !hourly.is_empty() {
            let mut upsert: QueryBuilder<Sqlite> =
                QueryBuilder::new("INSERT INTO log_hourly (hour, config_id, status, count) ");
            upsert.push_values(&hourly, |mut b, ((hour, config, status), n)| {
                b.push_bind(hour).push_bind(config).push_bind(*status).push_bind(n);
            });
            upsert.push(" ON CONFLICT (hour, config_id, status) DO UPDATE SET count = count + excluded.count");
            upsert.build().execute(&mut *tx).await?;
        }
        Ok(logged)
    }
}
