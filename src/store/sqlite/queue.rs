//! The durable delivery queue: durable enqueue with 48 h dedup, batch claims under a lease token
//! (settling a batch, which only touches rows the token still holds, is in `settle.rs`).

use std::collections::{HashMap, HashSet};

use sqlx::{QueryBuilder, Row, Sqlite};

use super::{SqliteStore, StoreError};
use crate::store::rows::*;

/// Rows per multi-row statement (bound variables stay far below SQLite's limit).
pub(super) const CHUNK: usize = 1000;
/// Configs probed in one statement for queued keys (each brings up to 1,026 bound values).
const PROBE_CONFIGS: usize = 16;

pub(super) fn ids_json(ids: &[i64]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}

/// The keys among `chunk` that are queued already (pending, or settled within the dedup
/// window): their conversions are duplicates. A key settled longer ago starts afresh. One index
/// probe per key; reading every inserted row back instead (`RETURNING`) cost more than the
/// insert itself.
async fn repeated_keys<'a>(
    tx: &mut sqlx::SqliteConnection,
    chunk: &[&'a NewDelivery<'a>],
    now_ms: i64,
) -> Result<HashSet<(i64, &'a str, &'a str)>, StoreError> {
    let mut per_config: std::collections::BTreeMap<i64, Vec<&str>> = std::collections::BTreeMap::new();
    for d in chunk {
        per_config.entry(d.config_id).or_default().push(d.event.event_id.as_str());
    }
    let per_config: Vec<_> = per_config.into_iter().collect();
    let mut found: Vec<(i64, String, String)> = Vec::new();
    // The configs' probes in one statement (a round trip to SQLite's thread each, otherwise),
    // a few configs at a time so that the bound values stay far below SQLite's limit.
    for configs in per_config.chunks(PROBE_CONFIGS) {
        let mut probe: QueryBuilder<Sqlite> = QueryBuilder::new("");
        for (n, (config_id, event_ids)) in configs.iter().enumerate() {
            if n > 0 {
                probe.push(" UNION ALL ");
            }
            // Bound one by one: the probe compares exactly as the insert's conflict does.
            probe.push("SELECT config_id, event_id, goal_key FROM queue WHERE config_id = ");
            probe.push_bind(*config_id).push(" AND (state = 'ready' OR enqueued_at >= ");
            probe.push_bind(now_ms - DEDUP_WINDOW_MS).push(") AND event_id IN (");
            // The list padded to a power of two (repeating its last id): a few statement
            // shapes, each prepared once and then cached, rather than one for every length.
            let padded = event_ids.len().next_power_of_two().max(16);
            let last = event_ids.last().copied().unwrap_or_default();
            let mut ids = probe.separated(", ");
            for id in event_ids.iter().copied().chain(std::iter::repeat(last)).take(padded) {
                ids.push_bind(id);
            }
            probe.push(")");
        }
        let rows: Vec<(i64, String, String)> = probe.build_query_as().fetch_all(&mut *tx).await?;
        found.extend(rows);
    }
    let mut repeats = HashSet::new();
    if found.is_empty() {
        return Ok(repeats); // the usual case: every key is new
    }
    let found: HashSet<(i64, &str, &str)> = found.iter().map(|(c, e, g)| (*c, e.as_str(), g.as_str())).collect();
    // Keyed by the chunk's own strings, so that the caller can look its conversions up.
    for d in chunk {
        let key = (d.config_id, d.event.event_id.as_str(), d.goal_key);
        if found.contains(&key) {
            repeats.insert(key);
        }
    }
    Ok(repeats)
}

/// Rows per statement of a multi-row INSERT (the queue's, the delivery log's), largest first.
/// An INSERT of any other length is a statement SQLite parses and compiles afresh
/// (`sqlite3Prepare` was 7.7 % of SQLite's time under a batch flood); these few lengths are
/// each prepared once and then cached. Steps of four keep a small commit's statements few:
/// each one is a round trip to SQLite's thread.
const INSERT_ROWS: [usize; 5] = [256, 64, 16, 4, 1];

/// `n` rows as statement lengths from [`INSERT_ROWS`], largest first.
fn insert_lengths(mut n: usize) -> Vec<usize> {
    let mut lengths = Vec::new();
    for size in INSERT_ROWS {
        while n >= size {
            lengths.push(size);
            n -= size;
        }
    }
    lengths
}

/// `n` rows as the index ranges of one INSERT each (see [`INSERT_ROWS`]).
pub(super) fn insert_ranges(n: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    insert_lengths(n).into_iter().scan(0, |start, length| {
        let range = *start..*start + length;
        *start += length;
        Some(range)
    })
}

/// Queues `kept` as if every key were new, the usual case: no lookup before the INSERTs,
/// whose conflict clause already finds each key. True when every row was written; otherwise
/// nothing of it stays (back to the savepoint) and the caller looks the keys up. The lookup
/// before every insert was a tenth of a batch's enqueue.
async fn insert_all_new(
    tx: &mut sqlx::SqliteConnection,
    kept: &[&NewDelivery<'_>],
    now_ms: i64,
) -> Result<bool, StoreError> {
    sqlx::query("SAVEPOINT all_new").execute(&mut *tx).await?;
    let mut written = 0;
    for rows in insert_ranges(kept.len()) {
        written += insert_rows(tx, &kept[rows], now_ms).await?;
    }
    if written == kept.len() as u64 {
        return Ok(true); // released with the transaction's commit
    }
    sqlx::query("ROLLBACK TO all_new").execute(&mut *tx).await?;
    Ok(false)
}

/// Queues conversions `repeated_keys` found new (or settled long ago: those start afresh).
async fn insert_fresh(
    tx: &mut sqlx::SqliteConnection,
    fresh: &[&NewDelivery<'_>],
    now_ms: i64,
) -> Result<(), StoreError> {
    let mut written = 0;
    for rows in insert_ranges(fresh.len()) {
        written += insert_rows(tx, &fresh[rows], now_ms).await?;
    }
    // Under the transaction's write lock nothing changes between the probe and the insert.
    if written != fresh.len() as u64 {
        return Err(StoreError::EnqueueMismatch { written, expected: fresh.len() as u64 });
    }
    Ok(())
}

/// One INSERT of `rows`; returns the rows written.
async fn insert_rows(
    tx: &mut sqlx::SqliteConnection,
    rows: &[&NewDelivery<'_>],
    now_ms: i64,
) -> Result<u64, StoreError> {
    let mut payloads: Vec<std::borrow::Cow<str>> = Vec::with_capacity(rows.len());
    for d in rows {
        payloads.push(match d.payload {
            Some(payload) => payload.into(),
            None => serde_json::to_string(d.event).map_err(|e| StoreError::Corrupt(format!("event: {e}")))?.into(),
        });
    }
    let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
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
            .push_bind(payload)
            .push_bind(now_ms)
            .push_bind(now_ms);
    });
    // A key settled more than 48 h ago starts afresh; a pending one is never reset.
    insert.push(
        " ON CONFLICT (config_id, event_id, goal_key) DO UPDATE SET event_name = excluded.event_name,
             player_id = excluded.player_id, occurred_at = excluded.occurred_at, payload = excluded.payload,
             state = 'ready', attempts = 0, run_at = excluded.run_at, failing_since = NULL,
             lease_token = NULL, lease_until = NULL, enqueued_at = excluded.enqueued_at, settled_at = NULL
         WHERE queue.state != 'ready' AND queue.enqueued_at < ",
    );
    insert.push_bind(now_ms - DEDUP_WINDOW_MS);
    Ok(insert.build().execute(&mut *tx).await?.rows_affected())
}

impl SqliteStore {
    /// Enqueues conversions, skipping any seen within 48 h. All or nothing, and durable once it
    /// returns: the commit is synced to disk (synchronous=FULL) because the caller tells the
    /// event's source that it was accepted.
    pub async fn enqueue(&self, items: &[NewDelivery<'_>], now_ms: i64) -> Result<EnqueueReport, StoreError> {
        self.enqueue_counted(items, now_ms, |_| Vec::new()).await
    }

    /// [`Store::enqueue`], and in the same transaction (one synced commit, not two) the traffic
    /// counters `traffic` derives from what was queued.
    pub async fn enqueue_counted(
        &self,
        items: &[NewDelivery<'_>],
        now_ms: i64,
        traffic: impl Fn(&EnqueueReport) -> Vec<TrafficCount>,
    ) -> Result<EnqueueReport, StoreError> {
        // Repeats within this call are duplicates too; SQL then sees each key once.
        let mut seen: HashSet<(i64, &str, &str)> = HashSet::with_capacity(items.len());
        let unique: Vec<&NewDelivery> =
            items.iter().filter(|d| seen.insert((d.config_id, d.event.event_id.as_str(), d.goal_key))).collect();
        let mut report = EnqueueReport { duplicates: (items.len() - unique.len()) as u64, ..EnqueueReport::default() };
        if unique.is_empty() {
            let counts = traffic(&report);
            self.record_traffic(now_ms, &counts).await?;
            return Ok(report);
        }
        let started = std::time::Instant::now();
        let _turn = self.enqueue_turn().await;
        let gate_ms = started.elapsed().as_secs_f64() * 1e3;
        let mut connection = self.enqueue_connection.lock().await;
        let conn = match &mut *connection {
            Some(conn) => conn,
            None => connection.insert(self.open_enqueue_connection().await?),
        };
        let connection_ms = started.elapsed().as_secs_f64() * 1e3 - gate_ms;
        let mut commit_ms = 0.0;
        let result = async {
            // IMMEDIATE: the write lock from the start, so that what `repeated_keys` reads stays
            // true until the insert (another process cannot write in between).
            let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
            // Once-per-player goals: the player's first conversion claims the goal, atomically
            // with the enqueue; later ones (in this call or after) are not queued.
            let mut kept: Vec<&NewDelivery> = Vec::with_capacity(unique.len());
            for d in unique {
                if !d.once_per_player {
                    kept.push(d);
                    continue;
                }
                let claimed = sqlx::query(
                    "INSERT INTO goal_conversions (goal_id, player_key, event_id, at)
                     SELECT g.id, ?1, ?2, ?3 FROM goals g JOIN configs c ON c.game_id = g.game_id
                     WHERE c.id = ?4 AND g.key = ?5
                     ON CONFLICT (goal_id, player_key) DO UPDATE SET at = at WHERE event_id = excluded.event_id",
                )
                .bind(self.player_key(&d.event.player_id))
                .bind(&d.event.event_id)
                .bind(now_ms)
                .bind(d.config_id)
                .bind(d.goal_key)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                // The same event again counts as a duplicate below, not as a second conversion.
                if claimed == 1 {
                    kept.push(d);
                } else {
                    report.already_converted += 1;
                    report.converted_before.insert(d.event.event_id.clone());
                }
            }
            let offered = kept.len();
            let fresh: Vec<&NewDelivery> = if kept.is_empty() || insert_all_new(&mut tx, &kept, now_ms).await? {
                kept
            } else {
                // Some key was queued already: the keys are looked up first, and only the new
                // ones inserted.
                let mut fresh = Vec::with_capacity(kept.len());
                for chunk in kept.chunks(CHUNK) {
                    let repeats = repeated_keys(&mut tx, chunk, now_ms).await?;
                    let new_keys: Vec<&NewDelivery> = chunk
                        .iter()
                        .copied()
                        .filter(|d| !repeats.contains(&(d.config_id, d.event.event_id.as_str(), d.goal_key)))
                        .collect();
                    insert_fresh(&mut tx, &new_keys, now_ms).await?;
                    fresh.extend(new_keys);
                }
                fresh
            };
            for d in &fresh {
                *report.per_config.entry(d.config_id).or_default() += 1;
                report.queued_events.insert(d.event.event_id.clone());
            }
            report.enqueued += fresh.len() as u64;
            report.duplicates += (offered - fresh.len()) as u64;
            super::traffic::add_traffic(&mut tx, now_ms, &traffic(&report)).await?;
            let committing = std::time::Instant::now();
            tx.commit().await?;
            commit_ms = committing.elapsed().as_secs_f64() * 1e3;
            self.checkpoint_soon();
            Ok::<_, StoreError>(())
        }
        .await;
        if result.is_err() {
            // Opened afresh by the next enqueue: nothing of a failed one stays on it.
            *connection = None;
        }
        let total_ms = started.elapsed().as_secs_f64() * 1e3;
        if total_ms > 50.0 {
            tracing::debug!(events = items.len(), gate_ms, connection_ms, commit_ms, total_ms, "slow enqueue");
        } else {
            tracing::trace!(events = items.len(), gate_ms, connection_ms, commit_ms, total_ms, "enqueue");
        }
        result?;
        Ok(report)
    }

    /// Returns expired leases (a dispatcher died or hung mid-batch) to the queue.
    pub async fn reclaim_expired_leases(&self, now_ms: i64) -> Result<u64, StoreError> {
        let _turn = self.delivery_turn().await;
        Ok(sqlx::query(
            "UPDATE queue SET lease_token = NULL, lease_until = NULL WHERE lease_token IS NOT NULL AND lease_until < ?",
        )
        .bind(now_ms)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Keeps the rows of one claim leased until `until` (the heartbeat of a running batch).
    /// Returns how many rows the token still holds.
    pub async fn extend_lease(&self, lease_token: &str, until: i64) -> Result<u64, StoreError> {
        let _turn = self.delivery_turn().await;
        Ok(sqlx::query("UPDATE queue SET lease_until = ? WHERE lease_token = ?")
            .bind(until)
            .bind(lease_token)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Puts every row of one claim back unchanged (its task failed before settling).
    pub async fn release_lease(&self, lease_token: &str) -> Result<u64, StoreError> {
        let _turn = self.delivery_turn().await;
        Ok(sqlx::query("UPDATE queue SET lease_token = NULL, lease_until = NULL WHERE lease_token = ?")
            .bind(lease_token)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Claims up to `limit` ready rows of a config under `lease_token` until
    /// `now + lease_ms`, oldest first. A token names one claim: use a new one for each.
    pub async fn claim(
        &self,
        config_id: i64,
        lease_token: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<Leased>, StoreError> {
        // In parts, each its own turn at the write lock: while events arrive, short ones, so that
        // an enqueue waits for one part at most, not for a whole batch of thousands of rows.
        let mut claimed = 0;
        while claimed < limit {
            let part = (limit - claimed).min(self.write_gate.delivery_part_rows());
            let turn = self.delivery_turn().await;
            let held = std::time::Instant::now();
            let taken = sqlx::query(
                "UPDATE queue SET lease_token = ?1, lease_until = ?2
                 WHERE id IN (SELECT id FROM queue
                              WHERE config_id = ?3 AND state = 'ready' AND lease_token IS NULL AND run_at <= ?4
                              ORDER BY run_at, id LIMIT ?5)",
            )
            .bind(lease_token)
            .bind(now_ms + lease_ms)
            .bind(config_id)
            .bind(now_ms)
            .bind(part as i64)
            .execute(&self.pool)
            .await?
            .rows_affected() as usize;
            drop(turn);
            if held.elapsed() > std::time::Duration::from_millis(20) {
                tracing::debug!(rows = taken, held_ms = held.elapsed().as_secs_f64() * 1e3, "slow claim");
            }
            claimed += taken;
            if taken < part {
                break;
            }
        }
        // Read once the write lock is free: reading the rows back inside it (RETURNING) held
        // every waiting enqueue up for as long again as the claim itself. The token names this
        // claim alone (a row erased meanwhile is simply not sent).
        let rows = sqlx::query(
            "SELECT id, event_id, goal_key, event_name, player_id, payload, attempts, occurred_at, failing_since
             FROM queue WHERE lease_token = ?1 AND config_id = ?2",
        )
        .bind(lease_token)
        .bind(config_id)
        .fetch_all(&self.pool)
        .await?;
        crate::store::decode::leased_rows(&rows)
    }

    /// Queue size: (ready, leased, dead).
    pub async fn queue_counts(&self) -> Result<(u64, u64, u64), StoreError> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(state = 'ready' AND lease_token IS NULL), 0),
                    COALESCE(SUM(state = 'ready' AND lease_token IS NOT NULL), 0),
                    COALESCE(SUM(state = 'dead'), 0) FROM queue",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.get::<i64, _>(0) as u64, row.get::<i64, _>(1) as u64, row.get::<i64, _>(2) as u64))
    }

    pub async fn queued_age(&self, config_id: i64, cutoff_ms: i64) -> Result<QueuedAge, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT MIN(occurred_at) FROM queue WHERE config_id = ?1 AND state = 'ready'),
                    (SELECT COUNT(*) FROM queue WHERE config_id = ?1 AND state = 'ready' AND occurred_at < ?2)",
        )
        .bind(config_id)
        .bind(cutoff_ms)
        .fetch_one(&self.pool)
        .await?;
        let before: i64 = row.get(1);
        Ok(QueuedAge { oldest_occurred_ms: row.get(0), before_cutoff: u64::try_from(before).unwrap_or(0) })
    }

    /// Conversions of a config still waiting to be delivered (ready or in flight).
    pub async fn pending_count(&self, config_id: i64) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM queue WHERE config_id = ? AND state = 'ready'")
            .bind(config_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    /// The earliest time a waiting row of an active config may run: its backoff time (not before
    /// its config's network is probed again), or the end of a lease (perhaps of a dispatcher
    /// that died). `None`: nothing waits. Index lookups only, per config.
    pub async fn next_run_at(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(t) FROM (
                 SELECT MAX((SELECT MIN(q.run_at) FROM queue q
                             WHERE q.config_id = c.id AND q.state = 'ready' AND q.lease_token IS NULL),
                            COALESCE(c.offline_until, 0)) AS t
                 FROM configs c WHERE c.enabled = 1 AND c.paused_reason IS NULL
                 UNION ALL
                 SELECT MIN(lease_until) FROM queue WHERE lease_token IS NOT NULL)",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Lets a paused config deliver again (its credentials changed).
    pub async fn unpause(&self, config_id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE configs SET paused_reason = NULL WHERE id = ?").bind(config_id).execute(&self.pool).await?;
        Ok(())
    }

    /// Pauses a config with a reason a person can act on (a row that cannot be read, a task
    /// that keeps failing).
    pub async fn pause(&self, config_id: i64, reason: &str) -> Result<(), StoreError> {
        let _turn = self.delivery_turn().await;
        sqlx::query("UPDATE configs SET paused_reason = ? WHERE id = ?")
            .bind(reason)
            .bind(config_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets a player: future events are skipped, queued ones removed, their items in stored
    /// requests redacted and the log unlinked; the list keeps only the keyed hash of the id.
    /// Returns (queued conversions removed, log rows unlinked). The log is updated in small
    /// transactions through its player index, so a dispatcher never waits long for the lock.
    /// Deleted data is overwritten (`secure_delete`) and the WAL copied back and emptied, so
    /// nothing of the player stays readable in the files.
    pub async fn erase_player(&self, player_id: &str, now_ms: i64) -> Result<(u64, u64), StoreError> {
        let key = self.player_key(player_id);
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("INSERT OR IGNORE INTO erased_player_keys (player_key, erased_at) VALUES (?, ?)")
            .bind(&key)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        let queued = sqlx::query("DELETE FROM queue WHERE player_id = ? AND state != 'done'")
            .bind(player_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM goal_conversions WHERE player_key = ?").bind(&key).execute(&mut *tx).await?;
        tx.commit().await?;
        // What the player's items looked like in the stored requests goes first (it needs the
        // log rows' link to find them), then the link itself. A batch settling meanwhile reads
        // the erasure inside its own transaction (settle.rs).
        self.redact_player_items(&key).await?;
        let mut logged = 0;
        loop {
            let n = sqlx::query(
                "UPDATE delivery_log SET player_key = NULL
                 WHERE id IN (SELECT id FROM delivery_log WHERE player_key = ? LIMIT 2000)",
            )
            .bind(&key)
            .execute(&self.pool)
            .await?
            .rows_affected();
            logged += n;
            if n < 2000 {
                break;
            }
        }
        self.empty_wal().await;
        Ok((queued, logged))
    }

    /// How many players were ever erased: when it has not changed since a batch was checked,
    /// no player of the batch was erased meanwhile (one cheap count instead of a lookup).
    pub async fn erasure_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM erased_player_keys").fetch_one(&self.pool).await?)
    }

    /// Which of these players were erased (looked up by their keyed hashes).
    pub async fn erased_among(&self, players: &[&str]) -> Result<HashSet<String>, StoreError> {
        if players.is_empty() {
            return Ok(Default::default());
        }
        let keyed: HashMap<String, &str> = players.iter().map(|p| (self.player_key(p), *p)).collect();
        let list =
            serde_json::to_string(&keyed.keys().collect::<Vec<_>>()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT player_key FROM erased_player_keys WHERE player_key IN (SELECT value FROM json_each(?))",
        )
        .bind(list)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().filter_map(|k| keyed.get(k)).map(|p| (*p).to_owned()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_lengths_cover_every_row_with_the_cached_shapes() {
        for n in [0, 1, 3, 4, 31, 32, 255, 256, 257, 1460, 5000] {
            let lengths = insert_lengths(n);
            assert_eq!(lengths.iter().sum::<usize>(), n, "{n}");
            assert!(lengths.iter().all(|l| INSERT_ROWS.contains(l)), "{n}: {lengths:?}");
            assert!(lengths.windows(2).all(|w| w[0] >= w[1]), "largest first: {lengths:?}");
        }
        // Few statements even for a whole group: 1,460 rows in 5 + 2 + 3 + 1; a small
        // commit's 21 rows in 3.
        assert_eq!(insert_lengths(1460).len(), 11);
        assert_eq!(insert_lengths(21), [16, 4, 1]);
    }
}
