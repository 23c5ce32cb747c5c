//! WAL checkpoints off the write path. SQLite's automatic checkpoint runs inside the commit
//! that crosses 1,000 WAL pages, so that commit (and every writer queued behind it at the
//! store's write gate) also pays for copying the WAL into the database and syncing it: tens of
//! milliseconds at a time under load. Automatic checkpoints are off instead; after a large
//! commit, a PASSIVE checkpoint runs in a task of its own, which never blocks writers.
//!
//! SQLite starts the WAL over only at an instant when no reader still uses it, and under
//! sustained ingest and delivery the pool's overlapping readers never left one: the WAL grew
//! past 2 GB although every page had been copied, and each page read searched a wal-index that
//! large (a write-lock turn of a few statements took tens of milliseconds). So when the WAL is
//! long, a RESTART checkpoint runs at the write gate: it copies only what was written during
//! the background passes, waits briefly for the readers of older pages, and starts the WAL over.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::SqlitePool;

/// At most one checkpoint every this long while writes are light.
const INTERVAL_QUIET: Duration = Duration::from_millis(500);
/// At most one checkpoint every this long under load. Each pass ends with a sync of the
/// database file, and the synced commits of enqueues queue behind it: every 500 ms, a pass
/// copied ~20 MB and commits stalled up to 30 ms behind its sync (WAL restarts at the gate
/// 23–27 ms); every 100 ms, ~4 MB, commits at most 8 ms and no restart over 10 ms.
/// Single-event requests' p99 while delivering 20.6 → 12.4 ms (medians of alternating runs).
const INTERVAL_BUSY: Duration = Duration::from_millis(100);
/// New WAL pages since the last pass from which the writes count as load (4 MiB).
const BUSY_PAGES: i64 = 1000;

/// The wait before the next pass, from the WAL's length at the last two passes (a shorter
/// one than before means the WAL started over in between).
fn interval_after(previous_pages: i64, pages: i64) -> Duration {
    let new_pages = if pages >= previous_pages { pages - previous_pages } else { pages };
    if new_pages >= BUSY_PAGES {
        INTERVAL_BUSY
    } else {
        INTERVAL_QUIET
    }
}

/// A WAL longer than this many pages (4 KiB each) is started over at the write gate, by
/// default: 64 MiB, the size the WAL file is cut back to. Each restart holds the gate while it
/// copies and syncs (6–9 ms on average here, up to 50 ms); with 8 MiB they came more than
/// once a second under load, and each one stalled every request in flight.
pub(crate) const DEFAULT_RESTART_PAGES: i64 = 16384;
/// How long the restart waits for readers of older pages (a long export is one) before it
/// gives up until the next checkpoint.
const RESTART_WAIT_MS: u64 = 50;

#[derive(Debug)]
pub(crate) struct Checkpointer {
    /// A WAL longer than this (pages) is started over.
    restart_pages: i64,
    started: Instant,
    /// Milliseconds after `started` of the last checkpoint begun.
    last: AtomicU64,
    /// The wait after it, in milliseconds ([`interval_after`]).
    interval_ms: Arc<AtomicU64>,
    /// The WAL's length in pages at the last pass.
    wal_pages: Arc<AtomicI64>,
    running: Arc<AtomicBool>,
}

impl Checkpointer {
    pub(crate) fn new(restart_pages: i64) -> Self {
        Self {
            restart_pages,
            started: Instant::now(),
            last: AtomicU64::new(0),
            interval_ms: Arc::new(AtomicU64::new(INTERVAL_QUIET.as_millis() as u64)),
            wal_pages: Arc::new(AtomicI64::new(0)),
            running: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl Checkpointer {
    /// Starts a checkpoint in the background unless one runs or ran within the interval.
    /// `gate` is the store's write gate, held for a restart.
    pub(crate) fn soon(&self, pool: &SqlitePool, gate: &Arc<super::write_gate::WriteGate>, busy_timeout: Duration) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last.load(Ordering::Relaxed);
        let interval = self.interval_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < interval || self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        self.last.store(now, Ordering::Relaxed);
        let (pool, gate, running, restart_pages) =
            (pool.clone(), gate.clone(), self.running.clone(), self.restart_pages);
        let (interval_ms, last_pages) = (self.interval_ms.clone(), self.wal_pages.clone());
        tokio::spawn(async move {
            // PASSIVE: copies what no reader still needs, never waits for or blocks a writer.
            let outcome = passive(&pool).await;
            if let Ok((_, pages, _)) = outcome {
                let previous = last_pages.swap(pages, Ordering::Relaxed);
                interval_ms.store(interval_after(previous, pages).as_millis() as u64, Ordering::Relaxed);
            }
            match outcome {
                Ok((_, wal_pages, _)) if wal_pages > restart_pages => {
                    // A second pass copies what was written during the first, so that the
                    // restart, for which writers wait at the gate, has little left to copy.
                    let _ = passive(&pool).await;
                    let _turn = gate.turn().await;
                    let held = Instant::now();
                    let outcome = restart(&pool, busy_timeout).await;
                    let held_ms = held.elapsed().as_secs_f64() * 1e3;
                    if held_ms > 10.0 || !matches!(outcome, Ok((0, _, _))) {
                        tracing::debug!(?outcome, held_ms, "WAL restart (busy, WAL pages, copied)");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "WAL checkpoint failed; the next one catches up"),
            }
            running.store(false, Ordering::Release);
        });
    }
}

/// A RESTART checkpoint that waits [`RESTART_WAIT_MS`] at most, on a connection whose usual
/// busy timeout is `busy_timeout`.
async fn restart(pool: &SqlitePool, busy_timeout: Duration) -> Result<(i64, i64, i64), sqlx::Error> {
    blocking_checkpoint(pool, "RESTART", RESTART_WAIT_MS, busy_timeout).await
}

/// How long one attempt to empty the WAL waits for readers, and how many attempts are made.
const TRUNCATE_WAIT_MS: u64 = 200;
const TRUNCATE_ATTEMPTS: u32 = 10;

/// Copies the whole WAL into the database and cuts the WAL file to nothing, so that no frame of
/// deleted data stays in it (after an erasure). Each attempt copies what it can beside the
/// writers, then holds the write gate and waits
/// [`TRUNCATE_WAIT_MS`] at most for readers of older pages. True when the WAL was emptied.
pub(crate) async fn truncate(
    pool: &SqlitePool,
    gate: &super::write_gate::WriteGate,
    busy_timeout: Duration,
) -> Result<bool, sqlx::Error> {
    for _ in 0..TRUNCATE_ATTEMPTS {
        // Two PASSIVE passes first, outside the gate: they copy what no reader needs, so the
        // TRUNCATE that writers wait for has little left to copy (after a large write, copying
        // the whole WAL at the gate held a writer up for 5 s).
        passive(pool).await?;
        passive(pool).await?;
        let outcome = {
            let _turn = gate.turn().await;
            blocking_checkpoint(pool, "TRUNCATE", TRUNCATE_WAIT_MS, busy_timeout).await?
        };
        if outcome.0 == 0 {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(false)
}

/// A RESTART or TRUNCATE checkpoint waiting `wait_ms` at most, on a connection whose usual busy
/// timeout is `busy_timeout`.
async fn blocking_checkpoint(
    pool: &SqlitePool,
    mode: &str,
    wait_ms: u64,
    busy_timeout: Duration,
) -> Result<(i64, i64, i64), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    sqlx::query(&format!("PRAGMA busy_timeout = {wait_ms}")).execute(&mut *conn).await?;
    let outcome = sqlx::query_as(&format!("PRAGMA wal_checkpoint({mode})")).fetch_one(&mut *conn).await;
    let restored =
        sqlx::query(&format!("PRAGMA busy_timeout = {}", busy_timeout.as_millis())).execute(&mut *conn).await;
    if restored.is_err() {
        // Never back in the pool with the short timeout.
        conn.close_on_drop();
    }
    outcome
}

/// A PASSIVE checkpoint: (busy, pages in the WAL, pages copied into the database).
async fn passive(pool: &SqlitePool) -> Result<(i64, i64, i64), sqlx::Error> {
    let outcome = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(pool).await;
    tracing::trace!(?outcome, "WAL checkpoint (busy, WAL pages, copied)");
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_come_sooner_while_the_wal_grows_fast() {
        assert_eq!(interval_after(0, 40), INTERVAL_QUIET);
        assert_eq!(interval_after(5000, 5999), INTERVAL_QUIET);
        assert_eq!(interval_after(5000, 6000), INTERVAL_BUSY);
        // Started over in between: all of its pages are new.
        assert_eq!(interval_after(18000, 1200), INTERVAL_BUSY);
        assert_eq!(interval_after(18000, 300), INTERVAL_QUIET);
    }
}
