//! The durable delivery queue: enqueue with 48 h dedup, atomic batch claims with leases, and
//! settling a batch's outcomes in one transaction.

use std::collections::HashSet;

use sqlx::{QueryBuilder, Row, Sqlite};

use super::{Store, StoreError};
use crate::model::{ConversionEvent, DeliveryStatus, Network};

/// How long a (config, event id) pair is remembered for dedup.
pub const DEDUP_WINDOW_MS: i64 = 48 * 3600 * 1000;
/// Rows per multi-row statement (bound variables stay far below SQLite's limit).
const CHUNK: usize = 1000;

/// What `enqueue` did with the offered events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EnqueueReport {
    pub enqueued: u64,
    /// Same (config, event id) already enqueued within 48 h.
    pub duplicates: u64,
}

/// A claimed queue row.
#[derive(Debug, Clone)]
pub struct Leased {
    pub id: i64,
    pub event_id: String,
    pub event_name: String,
    pub player_id: String,
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: i64,
}

/// One attempt to record in the delivery log.
#[derive(Debug, Clone)]
pub struct NewLogEntry {
    pub at: i64,
    pub config_id: i64,
    pub network: Network,
    pub event_name: String,
    pub event_id: String,
    pub player_id: String,
    pub status: DeliveryStatus,
    pub http_status: Option<u16>,
    pub latency_ms: Option<i64>,
    pub attempt: i64,
    pub request_id: Option<String>,
    pub credential_failure: bool,
    pub error: Option<String>,
}

/// Everything one dispatched batch changes, applied atomically.
#[derive(Debug, Default)]
pub struct Settlement {
    /// Delivered: kept 48 h as 'done' (payload cleared) to remember the event id.
    pub done: Vec<i64>,
    /// Dropped for good without a log row (erased player): deleted.
    pub remove: Vec<i64>,
    /// Transient failure: attempts + 1, back to the queue at `run_at`.
    pub retry: Vec<(i64, i64)>,
    /// Not attempted (paused config): back to the queue unchanged.
    pub release: Vec<i64>,
    /// Not attempted (credentials unreadable for now, e.g. a locked keychain): back to the queue
    /// at `run_at`, attempts unchanged.
    pub defer: Vec<(i64, i64)>,
    /// Given up or refused: kept as 'dead' for replay.
    pub dead: Vec<i64>,
    pub log: Vec<NewLogEntry>,
    /// Pause the config (credential failure).
    pub pause: Option<Pause>,
}

/// A config to pause because the network refused the credential it was sent with.
#[derive(Debug)]
pub struct Pause {
    pub config_id: i64,
    /// The credential the refused request used: a config rotated meanwhile is not paused.
    pub credential_ref: Option<String>,
    pub reason: String,
}

fn ids_json(ids: &[i64]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}

impl Store {
    /// Enqueues events for configs, skipping (config, event id) pairs seen within 48 h.
    /// All or nothing: one transaction.
    pub async fn enqueue(&self, items: &[(i64, &ConversionEvent)], now_ms: i64) -> Result<EnqueueReport, StoreError> {
        // Repeats within this call are duplicates too; SQL then sees each pair once.
        let mut seen: HashSet<(i64, &str)> = HashSet::with_capacity(items.len());
        let unique: Vec<&(i64, &ConversionEvent)> =
            items.iter().filter(|(config, event)| seen.insert((*config, event.event_id.as_str()))).collect();
        let mut report = EnqueueReport { enqueued: 0, duplicates: (items.len() - unique.len()) as u64 };
        let mut tx = self.pool.begin().await?;
        for chunk in unique.chunks(CHUNK) {
            let mut payloads = Vec::with_capacity(chunk.len());
            for (_, event) in chunk {
                payloads.push(serde_json::to_string(event).map_err(|e| StoreError::Corrupt(format!("event: {e}")))?);
            }
            let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO queue (config_id, event_id, event_name, player_id, payload, run_at, enqueued_at) ",
            );
            insert.push_values(chunk.iter().zip(&payloads), |mut b, ((config_id, event), payload)| {
                b.push_bind(*config_id)
                    .push_bind(&event.event_id)
                    .push_bind(&event.name)
                    .push_bind(&event.player_id)
                    .push_bind(payload)
                    .push_bind(now_ms)
                    .push_bind(now_ms);
            });
            // A pair last enqueued more than 48 h ago starts afresh; a newer one is a duplicate.
            insert.push(
                " ON CONFLICT (config_id, event_id) DO UPDATE SET event_name = excluded.event_name,
                     player_id = excluded.player_id, payload = excluded.payload, state = 'ready', attempts = 0,
                     run_at = excluded.run_at, lease_owner = NULL, lease_until = NULL, enqueued_at = excluded.enqueued_at
                 WHERE queue.enqueued_at < ",
            );
            insert.push_bind(now_ms - DEDUP_WINDOW_MS);
            let inserted = insert.build().execute(&mut *tx).await?.rows_affected();
            report.enqueued += inserted;
            report.duplicates += chunk.len() as u64 - inserted;
        }
        tx.commit().await?;
        Ok(report)
    }

    /// Returns expired leases (a dispatcher died mid-batch) to the queue.
    pub async fn reclaim_expired_leases(&self, now_ms: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE queue SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL AND lease_until < ?",
        )
        .bind(now_ms)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Keeps `owner`'s claim on these rows until `until` (a long rate-limit wait).
    pub async fn extend_lease(&self, ids: &[i64], owner: &str, until: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE queue SET lease_until = ? WHERE lease_owner = ? AND id IN (SELECT value FROM json_each(?))",
        )
        .bind(until)
        .bind(owner)
        .bind(ids_json(ids))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Atomically claims up to `limit` ready rows of a config for `owner` until `now + lease_ms`.
    pub async fn claim(
        &self,
        config_id: i64,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Leased>, StoreError> {
        let rows = sqlx::query(
            "UPDATE queue SET lease_owner = ?1, lease_until = ?2
             WHERE id IN (SELECT id FROM queue
                          WHERE config_id = ?3 AND state = 'ready' AND lease_owner IS NULL AND run_at <= ?4
                          ORDER BY run_at, id LIMIT ?5)
             RETURNING id, event_id, event_name, player_id, payload, attempts",
        )
        .bind(owner)
        .bind(now_ms + lease_ms)
        .bind(config_id)
        .bind(now_ms)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut leased: Vec<Leased> = rows
            .iter()
            .map(|r| Leased {
                id: r.get("id"),
                event_id: r.get("event_id"),
                event_name: r.get("event_name"),
                player_id: r.get("player_id"),
                payload: r.get("payload"),
                attempts: r.get("attempts"),
            })
            .collect();
        leased.sort_by_key(|l| l.id);
        Ok(leased)
    }

    /// Applies one batch's outcomes in one transaction: a crash leaves all or none of it.
    pub async fn settle(&self, s: &Settlement) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        if !s.done.is_empty() {
            sqlx::query(
                "UPDATE queue SET state = 'done', payload = '', lease_owner = NULL, lease_until = NULL
                 WHERE id IN (SELECT value FROM json_each(?))",
            )
            .bind(ids_json(&s.done))
            .execute(&mut *tx)
            .await?;
        }
        if !s.remove.is_empty() {
            sqlx::query("DELETE FROM queue WHERE id IN (SELECT value FROM json_each(?))")
                .bind(ids_json(&s.remove))
                .execute(&mut *tx)
                .await?;
        }
        for (pairs, counts) in [(&s.retry, 1), (&s.defer, 0)] {
            if pairs.is_empty() {
                continue;
            }
            let pairs = serde_json::to_string(pairs).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query(
                "UPDATE queue SET attempts = attempts + ?2, lease_owner = NULL, lease_until = NULL,
                     run_at = (SELECT json_extract(j.value, '$[1]') FROM json_each(?1) j WHERE json_extract(j.value, '$[0]') = queue.id)
                 WHERE id IN (SELECT json_extract(value, '$[0]') FROM json_each(?1))",
            )
            .bind(pairs)
            .bind(counts)
            .execute(&mut *tx)
            .await?;
        }
        if !s.release.is_empty() {
            sqlx::query(
                "UPDATE queue SET lease_owner = NULL, lease_until = NULL WHERE id IN (SELECT value FROM json_each(?))",
            )
            .bind(ids_json(&s.release))
            .execute(&mut *tx)
            .await?;
        }
        if !s.dead.is_empty() {
            sqlx::query(
                "UPDATE queue SET state = 'dead', attempts = attempts + 1, lease_owner = NULL, lease_until = NULL
                 WHERE id IN (SELECT value FROM json_each(?))",
            )
            .bind(ids_json(&s.dead))
            .execute(&mut *tx)
            .await?;
        }
        for chunk in s.log.chunks(CHUNK / 2) {
            let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO delivery_log (at, config_id, network, event_name, event_id, player_id, status, http_status,
                     latency_ms, attempt, request_id, credential_failure, error) ",
            );
            insert.push_values(chunk, |mut b, e| {
                b.push_bind(e.at)
                    .push_bind(e.config_id)
                    .push_bind(e.network.as_str())
                    .push_bind(&e.event_name)
                    .push_bind(&e.event_id)
                    .push_bind(&e.player_id)
                    .push_bind(e.status.as_str())
                    .push_bind(e.http_status.map(i64::from))
                    .push_bind(e.latency_ms)
                    .push_bind(e.attempt)
                    .push_bind(&e.request_id)
                    .push_bind(e.credential_failure)
                    .push_bind(&e.error);
            });
            insert.build().execute(&mut *tx).await?;
        }
        if let Some(pause) = &s.pause {
            sqlx::query("UPDATE configs SET paused_reason = ? WHERE id = ? AND credential_ref IS ?")
                .bind(&pause.reason)
                .bind(pause.config_id)
                .bind(&pause.credential_ref)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Queue size: (ready, leased, dead).
    pub async fn queue_counts(&self) -> Result<(u64, u64, u64), StoreError> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(state = 'ready' AND lease_owner IS NULL), 0),
                    COALESCE(SUM(state = 'ready' AND lease_owner IS NOT NULL), 0),
                    COALESCE(SUM(state = 'dead'), 0) FROM queue",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.get::<i64, _>(0) as u64, row.get::<i64, _>(1) as u64, row.get::<i64, _>(2) as u64))
    }

    /// The earliest time a waiting row of an active config may run: its backoff time, or for a
    /// leased row (perhaps of a dispatcher that died) the end of its lease. `None`: nothing waits.
    pub async fn next_run_at(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(CASE WHEN q.lease_owner IS NULL THEN q.run_at ELSE q.lease_until END)
             FROM queue q JOIN configs c ON c.id = q.config_id
             WHERE q.state = 'ready' AND c.enabled = 1 AND c.paused_reason IS NULL",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Puts a config's dead rows back into the queue (after fixing what made them fail).
    pub async fn replay_dead(&self, config_id: i64, now_ms: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE queue SET state = 'ready', attempts = 0, run_at = ? WHERE config_id = ? AND state = 'dead'",
        )
        .bind(now_ms)
        .bind(config_id)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Lets a paused config deliver again (its credentials changed).
    pub async fn unpause(&self, config_id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE configs SET paused_reason = NULL WHERE id = ?").bind(config_id).execute(&self.pool).await?;
        Ok(())
    }

    /// Forgets a player: future events are skipped, queued ones removed, the log scrubbed.
    /// Returns (queued events removed, log rows scrubbed).
    pub async fn erase_player(&self, player_id: &str, now_ms: i64) -> Result<(u64, u64), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT OR IGNORE INTO erased_players (player_id, erased_at) VALUES (?, ?)")
            .bind(player_id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        let queued = sqlx::query("DELETE FROM queue WHERE player_id = ? AND state != 'done'")
            .bind(player_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        // Delivered rows only remember event ids for dedup; they go too (they name the player).
        sqlx::query("DELETE FROM queue WHERE player_id = ?").bind(player_id).execute(&mut *tx).await?;
        let logged = sqlx::query("UPDATE delivery_log SET player_id = NULL WHERE player_id = ?")
            .bind(player_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok((queued, logged))
    }

    /// Which of these players were erased.
    pub async fn erased_among(&self, players: &[&str]) -> Result<std::collections::HashSet<String>, StoreError> {
        if players.is_empty() {
            return Ok(Default::default());
        }
        let list = serde_json::to_string(players).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT player_id FROM erased_players WHERE player_id IN (SELECT value FROM json_each(?))",
        )
        .bind(list)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }
}
