//! Settling a claimed batch on PostgreSQL: one transaction writes its requests, its attempts
//! to the log and its rows' new states, every row statement matching the lease token (rows
//! another worker re-claimed after the lease expired are left alone and counted as lost).
//!
//! Erasure and settling exclude each other through one advisory lock: a settle holds it
//! shared for its transaction, an erasure exclusively while it records the player. So a batch
//! in flight on any worker either commits before the erasure (which then finds and scrubs what
//! it wrote) or reads the erasure inside its own transaction (and files the player under no
//! key, their items redacted).

use std::collections::{BTreeMap, HashSet};

use sqlx::{Postgres, QueryBuilder};

use super::{PgStore, StoreError};
use crate::store::rows::{NewLogEntry, SettleReport, Settlement};
use crate::store::settlement::{hourly_counts, keys_unless_erased, row_parts, PreparedSettlement, Rows};

mod shared_sql {
    crate::store::shared::settle::settle!(
        connection = sqlx::PgConnection,
        database = sqlx::Postgres,
        lock_row = " FOR UPDATE"
    );
}
use shared_sql::{apply_config_state, insert_request_items, insert_requests};
pub(super) use shared_sql::{player_items, redact_stored_items};

/// The advisory lock between settles (shared) and erasures (exclusive); an arbitrary constant.
pub(super) const ERASURE_LOCK: i64 = 0x6572_6173_7572_6500; // "erasure"

/// Rows per multi-row INSERT (16 bound values each, far below PostgreSQL's 65,535).
const INSERT_ROWS: usize = 1000;

/// Which of these player keys were erased.
pub(super) async fn erased_keys<'k>(
    tx: &mut sqlx::PgConnection,
    keys: impl Iterator<Item = &'k str>,
) -> Result<HashSet<String>, StoreError> {
    let mut keys: Vec<&str> = keys.collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        return Ok(HashSet::new());
    }
    let erased: Vec<String> =
        sqlx::query_scalar("SELECT player_key FROM erased_player_keys WHERE player_key = ANY($1)")
            .bind(&keys)
            .fetch_all(&mut *tx)
            .await?;
    Ok(erased.into_iter().collect())
}

/// Applies one kind of outcome; returns how many rows the lease token still held.
async fn apply_rows(tx: &mut sqlx::PgConnection, token: &str, at: i64, rows: Rows<'_>) -> Result<u64, StoreError> {
    let result = match rows {
        Rows::Done(ids) => {
            sqlx::query(
                "UPDATE queue SET state = 'done', payload = '', player_id = '', attempts = attempts + 1,
                     lease_token = NULL, lease_until = NULL, settled_at = $2
                 WHERE id = ANY($1) AND lease_token = $3",
            )
            .bind(ids)
            .bind(at)
            .bind(token)
            .execute(&mut *tx)
            .await?
        }
        Rows::Remove(ids) => {
            sqlx::query("DELETE FROM queue WHERE id = ANY($1) AND lease_token = $2")
                .bind(ids)
                .bind(token)
                .execute(&mut *tx)
                .await?
        }
        Rows::Retry(rows) => {
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            let run_at: Vec<i64> = rows.iter().map(|r| r.run_at).collect();
            let failing_since: Vec<i64> = rows.iter().map(|r| r.failing_since).collect();
            sqlx::query(
                "UPDATE queue SET attempts = attempts + 1, lease_token = NULL, lease_until = NULL,
                     run_at = j.run_at, failing_since = j.failing_since
                 FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[]) AS j (id, run_at, failing_since)
                 WHERE queue.id = j.id AND queue.lease_token = $4",
            )
            .bind(ids)
            .bind(run_at)
            .bind(failing_since)
            .bind(token)
            .execute(&mut *tx)
            .await?
        }
        Rows::Defer(rows) => {
            let (ids, run_at): (Vec<i64>, Vec<i64>) = rows.iter().copied().unzip();
            sqlx::query(
                "UPDATE queue SET lease_token = NULL, lease_until = NULL, run_at = j.run_at
                 FROM UNNEST($1::BIGINT[], $2::BIGINT[]) AS j (id, run_at)
                 WHERE queue.id = j.id AND queue.lease_token = $3",
            )
            .bind(ids)
            .bind(run_at)
            .bind(token)
            .execute(&mut *tx)
            .await?
        }
        Rows::Release(ids) => {
            sqlx::query(
                "UPDATE queue SET lease_token = NULL, lease_until = NULL WHERE id = ANY($1) AND lease_token = $2",
            )
            .bind(ids)
            .bind(token)
            .execute(&mut *tx)
            .await?
        }
        Rows::Dead(ids, counted) => {
            sqlx::query(
                "UPDATE queue SET state = 'dead', attempts = attempts + $2, lease_token = NULL, lease_until = NULL,
                     settled_at = $3
                 WHERE id = ANY($1) AND lease_token = $4",
            )
            .bind(ids)
            .bind(i64::from(counted))
            .bind(at)
            .bind(token)
            .execute(&mut *tx)
            .await?
        }
    };
    Ok(result.rows_affected())
}

/// Appends attempts to the delivery log, each under its key in `keys`, and counts them in the
/// hourly totals. Returns each config's first and last new row id, for the live log.
async fn insert_log(
    tx: &mut sqlx::PgConnection,
    entries: &[NewLogEntry],
    keys: &[Option<String>],
    request_ids: &[i64],
) -> Result<BTreeMap<i64, (i64, i64)>, StoreError> {
    let mut ranges: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for (chunk, keys) in entries.chunks(INSERT_ROWS).zip(keys.chunks(INSERT_ROWS)) {
        let mut insert: QueryBuilder<Postgres> = QueryBuilder::new(
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
        // A plain multi-row INSERT returns its rows in the order of its VALUES.
        insert.push(" RETURNING id");
        let ids: Vec<i64> = insert.build_query_scalar().fetch_all(&mut *tx).await?;
        for (id, entry) in ids.into_iter().zip(chunk) {
            let range = ranges.entry(entry.config_id).or_insert((id, id));
            *range = (range.0.min(id), range.1.max(id));
        }
    }
    let hourly = hourly_counts(entries);
    if !hourly.is_empty() {
        let mut upsert: QueryBuilder<Postgres> =
            QueryBuilder::new("INSERT INTO log_hourly (hour, config_id, status, count) ");
        upsert.push_values(&hourly, |mut b, ((hour, config, status), n)| {
            b.push_bind(hour).push_bind(config).push_bind(*status).push_bind(n);
        });
        upsert.push(" ON CONFLICT (hour, config_id, status) DO UPDATE SET count = log_hourly.count + excluded.count");
        upsert.build().execute(&mut *tx).await?;
    }
    Ok(ranges)
}

impl PgStore {
    /// The CPU work of settling (compressing bodies, keying players), before any lock.
    pub fn prepare_settlement(&self, settlement: Settlement) -> Result<PreparedSettlement, StoreError> {
        PreparedSettlement::new(settlement, &self.players)
    }

    /// Applies one batch's outcomes.
    pub async fn settle(&self, s: Settlement) -> Result<SettleReport, StoreError> {
        self.settle_prepared(&self.prepare_settlement(s)?).await
    }

    /// Writes a prepared settlement in one transaction (see the module's notes).
    pub async fn settle_prepared(&self, prepared: &PreparedSettlement) -> Result<SettleReport, StoreError> {
        let s = &prepared.settlement;
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock_shared($1)").bind(ERASURE_LOCK).execute(&mut *tx).await?;
        let erased = erased_keys(&mut tx, prepared.all_keys()).await?;
        let request_ids = insert_requests(&mut tx, &prepared.requests_without(&erased)?).await?;
        insert_request_items(&mut tx, &prepared.unlogged_kept(&erased), &prepared.requests, &request_ids).await?;
        let keys = keys_unless_erased(&prepared.keys, &erased);
        let ranges = insert_log(&mut tx, &s.log, &keys, &request_ids).await?;
        // Delivered at commit, to every process that follows the log (follow.rs): the exact
        // rows, whatever order concurrent settles commit in.
        for (config_id, (first, last)) in ranges {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(super::follow::CHANNEL)
                .bind(super::follow::payload(config_id, first, last))
                .execute(&mut *tx)
                .await?;
        }
        super::traffic::add_traffic(&mut tx, s.at, &s.traffic).await?;
        apply_config_state(&mut tx, s).await?;
        let (mut expected, mut touched) = (0u64, 0u64);
        for rows in row_parts(s, usize::MAX) {
            expected += rows.len() as u64;
            touched += apply_rows(&mut tx, &s.lease_token, s.at, rows).await?;
        }
        tx.commit().await?;
        Ok(SettleReport { lost: expected.saturating_sub(touched) })
    }
}
