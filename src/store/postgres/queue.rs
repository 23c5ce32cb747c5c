//! The durable delivery queue on PostgreSQL, for any number of workers at once: dedup by the
//! queue's unique key inside each INSERT (never read-then-write, so the same event ingested
//! through two workers at once is queued once), claims that skip rows another worker holds
//! (`FOR UPDATE SKIP LOCKED`) under a lease token, leases kept and released by token.

use std::collections::HashSet;

use sqlx::{Postgres, QueryBuilder, Row};

use super::{PgStore, StoreError};
use crate::store::rows::*;

/// Rows per multi-row statement (9 bound values each, far below PostgreSQL's 65,535).
const CHUNK: usize = 1000;
/// Attempts of an enqueue that PostgreSQL aborted to break a deadlock with another worker's.
const RETRIES: u32 = 5;

/// A transaction aborted for another's sake (deadlock detected, serialization failure):
/// running it again is the remedy.
fn is_lock_conflict(e: &sqlx::Error) -> bool {
    matches!(e.as_database_error().and_then(|d| d.code()).as_deref(), Some("40P01" | "40001"))
}

type Key<'a> = (i64, &'a str, &'a str);

fn key_of<'a>(d: &'a NewDelivery<'a>) -> Key<'a> {
    (d.config_id, d.event.event_id.as_str(), d.goal_key)
}

/// Inserts `rows`; returns the keys written (new, or settled longer ago than the dedup window
/// and so starting afresh). A key another transaction is inserting waits for its commit and
/// then counts as a repeat: the unique index decides, not an earlier read.
async fn insert_rows(
    tx: &mut sqlx::PgConnection,
    rows: &[&NewDelivery<'_>],
    now_ms: i64,
) -> Result<HashSet<(i64, String, String)>, StoreError> {
    let mut payloads: Vec<std::borrow::Cow<str>> = Vec::with_capacity(rows.len());
    for d in rows {
        payloads.push(match d.payload {
            Some(payload) => payload.into(),
            None => serde_json::to_string(d.event).map_err(|e| StoreError::Corrupt(format!("event: {e}")))?.into(),
        });
    }
    let mut insert: QueryBuilder<Postgres> = QueryBuilder::new(
        "INSERT INTO queue (config_id, event_id, goal_key, event_name, player_id, occurred_at, payload, run_at,
                            enqueued_at) ",
    );
    insert.push_values(rows.iter().zip(&payloads), |mut b, (d, payload)| {
        b.push_bind(d.config_id)
            .push_bind(&d.event.event_id)
            .push_bind(d.goal_key)
            .push_bind(&d.event.name)
            .push_bind(&d.event.player_id)
            .push_bind(d.event.occurred_at.timestamp_millis())
            .push_bind(payload.as_ref())
            .push_bind(now_ms)
            .push_bind(now_ms);
    });
    // A key settled more than 48 h ago starts afresh; a pending one is never reset.
    insert.push(
        " ON CONFLICT (config_id, event_id, goal_key) DO UPDATE SET event_name = excluded.event_name,
             player_id = excluded.player_id, occurred_at = excluded.occurred_at, payload = excluded.payload,
             state = 'ready', attempts = 0, run_at = excluded.run_at, failing_since = NULL,
             lease_token = NULL, lease_until = NULL, enqueued_at = excluded.enqueued_at, settled_at = NULL
         WHERE queue.state <> 'ready' AND queue.enqueued_at < ",
    );
    insert.push_bind(now_ms - DEDUP_WINDOW_MS);
    insert.push(" RETURNING config_id, event_id, goal_key");
    let written: Vec<(i64, String, String)> = insert.build_query_as().fetch_all(&mut *tx).await?;
    Ok(written.into_iter().collect())
}

impl PgStore {
    /// Enqueues conversions, skipping any seen within 48 h. All or nothing, durable once it
    /// returns (the commit is on the server).
    pub async fn enqueue(&self, items: &[NewDelivery<'_>], now_ms: i64) -> Result<EnqueueReport, StoreError> {
        self.enqueue_counted(items, now_ms, |_| Vec::new()).await
    }

    /// [`Self::enqueue`], and in the same transaction the traffic counters `traffic` derives
    /// from what was queued.
    pub async fn enqueue_counted(
        &self,
        items: &[NewDelivery<'_>],
        now_ms: i64,
        traffic: impl Fn(&EnqueueReport) -> Vec<TrafficCount>,
    ) -> Result<EnqueueReport, StoreError> {
        // Repeats within this call are duplicates too; SQL then sees each key once (an
        // INSERT … ON CONFLICT may not touch one row twice).
        let mut seen: HashSet<Key> = HashSet::with_capacity(items.len());
        let unique: Vec<&NewDelivery> = items.iter().filter(|d| seen.insert(key_of(d))).collect();
        let repeats = (items.len() - unique.len()) as u64;
        // Rows keep their arrival order (their ids, which claims follow). Two workers writing
        // overlapping keys in different orders can deadlock; PostgreSQL then aborts one, whose
        // whole transaction is simply run again.
        let mut attempt = 1;
        loop {
            let report = EnqueueReport { duplicates: repeats, ..EnqueueReport::default() };
            match self.enqueue_once(&unique, now_ms, report, &traffic).await {
                Err(StoreError::Sqlx(e)) if attempt < RETRIES && is_lock_conflict(&e) => attempt += 1,
                outcome => return outcome,
            }
        }
    }

    /// One attempt of [`Self::enqueue_counted`]: one transaction.
    async fn enqueue_once(
        &self,
        unique: &[&NewDelivery<'_>],
        now_ms: i64,
        mut report: EnqueueReport,
        traffic: &impl Fn(&EnqueueReport) -> Vec<TrafficCount>,
    ) -> Result<EnqueueReport, StoreError> {
        let mut tx = self.pool.begin().await?;
        let kept = self.claim_once_per_player_goals(&mut tx, unique, now_ms, &mut report).await?;
        let offered = kept.len();
        let mut written = HashSet::with_capacity(kept.len());
        for chunk in kept.chunks(CHUNK) {
            written.extend(insert_rows(&mut tx, chunk, now_ms).await?);
        }
        let mut fresh = 0u64;
        for d in &kept {
            if written.contains(&(d.config_id, d.event.event_id.clone(), d.goal_key.to_owned())) {
                *report.per_config.entry(d.config_id).or_default() += 1;
                report.queued_events.insert(d.event.event_id.clone());
                fresh += 1;
            }
        }
        report.enqueued += fresh;
        report.duplicates += offered as u64 - fresh;
        super::traffic::add_traffic(&mut tx, now_ms, &traffic(&report)).await?;
        tx.commit().await?;
        Ok(report)
    }

    /// Once-per-player goals: the player's first conversion claims the goal, atomically with
    /// the enqueue; later ones (in this call or after, on any worker) are not queued.
    async fn claim_once_per_player_goals<'d>(
        &self,
        tx: &mut sqlx::PgConnection,
        unique: &[&'d NewDelivery<'d>],
        now_ms: i64,
        report: &mut EnqueueReport,
    ) -> Result<Vec<&'d NewDelivery<'d>>, StoreError> {
        let mut kept = Vec::with_capacity(unique.len());
        for &d in unique {
            if !d.once_per_player {
                kept.push(d);
                continue;
            }
            let claimed = sqlx::query(
                "INSERT INTO goal_conversions (goal_id, player_key, event_id, at)
                 SELECT g.id, $1, $2, $3 FROM goals g JOIN configs c ON c.game_id = g.game_id
                 WHERE c.id = $4 AND g.key = $5
                 ON CONFLICT (goal_id, player_key) DO UPDATE SET at = goal_conversions.at
                 WHERE goal_conversions.event_id = excluded.event_id",
            )
            .bind(self.player_key(&d.event.player_id))
            .bind(&d.event.event_id)
            .bind(now_ms)
            .bind(d.config_id)
            .bind(d.goal_key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            // The same event again counts as a duplicate afterwards, not as a second conversion.
            if claimed == 1 {
                kept.push(d);
            } else {
                report.already_converted += 1;
                report.converted_before.insert(d.event.event_id.clone());
            }
        }
        Ok(kept)
    }

    /// Returns expired leases (a worker died or hung mid-batch) to the queue.
    pub async fn reclaim_expired_leases(&self, now_ms: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE queue SET lease_token = NULL, lease_until = NULL WHERE lease_token IS NOT NULL AND lease_until < $1",
        )
        .bind(now_ms)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Keeps the rows of one claim leased until `until`; returns how many the token still holds.
    pub async fn extend_lease(&self, lease_token: &str, until: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query("UPDATE queue SET lease_until = $1 WHERE lease_token = $2")
            .bind(until)
            .bind(lease_token)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Puts every row of one claim back unchanged.
    pub async fn release_lease(&self, lease_token: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query("UPDATE queue SET lease_token = NULL, lease_until = NULL WHERE lease_token = $1")
            .bind(lease_token)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Claims up to `limit` ready rows of a config under `lease_token` until `now + lease_ms`,
    /// oldest first. Rows another worker is claiming at this moment are skipped, never shared.
    pub async fn claim(
        &self,
        config_id: i64,
        lease_token: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Leased>, StoreError> {
        let rows = sqlx::query(
            "UPDATE queue SET lease_token = $1, lease_until = $2
             WHERE id IN (SELECT id FROM queue
                          WHERE config_id = $3 AND state = 'ready' AND lease_token IS NULL AND run_at <= $4
                          ORDER BY run_at, id LIMIT $5 FOR UPDATE SKIP LOCKED)
             RETURNING id, event_id, goal_key, event_name, player_id, payload, attempts, occurred_at, failing_since",
        )
        .bind(lease_token)
        .bind(now_ms + lease_ms)
        .bind(config_id)
        .bind(now_ms)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        crate::store::decode::leased_rows(&rows)
    }

    /// Queue size: (ready, leased, dead).
    pub async fn queue_counts(&self) -> Result<(u64, u64, u64), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) FILTER (WHERE state = 'ready' AND lease_token IS NULL),
                    COUNT(*) FILTER (WHERE state = 'ready' AND lease_token IS NOT NULL),
                    COUNT(*) FILTER (WHERE state = 'dead') FROM queue",
        )
        .fetch_one(&self.pool)
        .await?;
        let count = |i: usize| row.try_get::<i64, _>(i).map(|n| n.max(0) as u64);
        Ok((count(0)?, count(1)?, count(2)?))
    }

    /// The earliest time a waiting row of an active config may run (see the SQLite engine's):
    /// a config with nothing waiting counts for nothing, whatever its offline time.
    pub async fn next_run_at(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(t) FROM (
                 SELECT CASE WHEN w.first IS NULL THEN NULL ELSE GREATEST(w.first, COALESCE(w.offline_until, 0)) END AS t
                 FROM (SELECT (SELECT MIN(q.run_at) FROM queue q
                               WHERE q.config_id = c.id AND q.state = 'ready' AND q.lease_token IS NULL) AS first,
                              c.offline_until
                       FROM configs c WHERE c.enabled AND c.paused_reason IS NULL) AS w
                 UNION ALL
                 SELECT MIN(lease_until) FROM queue WHERE lease_token IS NOT NULL) AS waits",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Lets a paused config deliver again (its credentials changed).
    pub async fn unpause(&self, config_id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE configs SET paused_reason = NULL WHERE id = $1")
            .bind(config_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Pauses a config with a reason a person can act on.
    pub async fn pause(&self, config_id: i64, reason: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE configs SET paused_reason = $1 WHERE id = $2")
            .bind(reason)
            .bind(config_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// How many players were ever erased.
    pub async fn erasure_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM erased_player_keys").fetch_one(&self.pool).await?)
    }

    /// Which of these players were erased (looked up by their keyed hashes).
    pub async fn erased_among(&self, players: &[&str]) -> Result<HashSet<String>, StoreError> {
        if players.is_empty() {
            return Ok(HashSet::new());
        }
        let keyed: std::collections::HashMap<String, &str> = players.iter().map(|p| (self.player_key(p), *p)).collect();
        let keys: Vec<&str> = keyed.keys().map(String::as_str).collect();
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT player_key FROM erased_player_keys WHERE player_key = ANY($1)")
                .bind(&keys)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().filter_map(|k| keyed.get(k)).map(|p| (*p).to_owned()).collect())
    }
}
