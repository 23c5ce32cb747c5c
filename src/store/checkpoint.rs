//! WAL checkpoints off the write path. SQLite's automatic checkpoint runs inside the commit
//! that crosses 1,000 WAL pages, so that commit (and every writer queued behind it at the
//! store's write gate) also pays for copying the WAL into the database and syncing it: tens of
//! milliseconds at a time under load. Automatic checkpoints are off instead; after a large
//! commit, a PASSIVE checkpoint runs in a task of its own, which never blocks writers.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::SqlitePool;

/// At most one checkpoint every this long; the WAL grows by a few MB in between under load.
const INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug)]
pub(crate) struct Checkpointer {
    started: Instant,
    /// Milliseconds after `started` of the last checkpoint begun.
    last: AtomicU64,
    running: Arc<AtomicBool>,
}

impl Default for Checkpointer {
    fn default() -> Self {
        Self { started: Instant::now(), last: AtomicU64::new(0), running: Arc::new(AtomicBool::new(false)) }
    }
}

impl Checkpointer {
    /// Starts a checkpoint in the background unless one runs or ran within [`INTERVAL`].
    pub(crate) fn soon(&self, pool: &SqlitePool) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last.load(Ordering::Relaxed);
        if now.saturating_sub(last) < INTERVAL.as_millis() as u64 || self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        self.last.store(now, Ordering::Relaxed);
        let (pool, running) = (pool.clone(), self.running.clone());
        tokio::spawn(async move {
            // PASSIVE: copies what no reader still needs, never waits for or blocks a writer.
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
                tracing::debug!(error = %e, "WAL checkpoint failed; the next one catches up");
            }
            running.store(false, Ordering::Release);
        });
    }
}
