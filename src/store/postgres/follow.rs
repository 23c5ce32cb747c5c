//! The live log across machines: every settle notifies `postback_log` with its config id in
//! its own transaction (so at commit), and a process whose window follows the log LISTENs,
//! reads that config's rows past the last it saw, and hands them to its live views. Nothing
//! re-reads the log; a worker that nobody follows only sends the notification.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::postgres::PgListener;

use super::{PgStore, StoreError};
use crate::model::LogEntry;

/// The notification channel; its payload is a config id.
pub(super) const CHANNEL: &str = "postback_log";

/// Rows read per notification at most (a settle writes a few hundred).
const ROWS_PER_READ: i64 = 5000;

impl PgStore {
    /// Follows the log rows every process on this database writes (each settled batch as one
    /// message), from now on. Returns once notifications are being received.
    pub async fn subscribe_log(&self) -> Result<tokio::sync::broadcast::Receiver<Arc<Vec<LogEntry>>>, StoreError> {
        let receiver = self.log_events.subscribe();
        self.following
            .get_or_try_init(|| async {
                let mut listener = PgListener::connect_with(&self.pool).await?;
                listener.listen(CHANNEL).await?;
                // Only rows committed from here on are news; older ones are the pages' to show.
                let floor: i64 =
                    sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM delivery_log").fetch_one(&self.pool).await?;
                let task = tokio::spawn(follow(listener, self.pool.clone(), self.log_events.clone(), floor));
                Ok::<_, StoreError>(FollowTask(task))
            })
            .await?;
        Ok(receiver)
    }
}

/// The listening task; aborted when the store goes.
#[derive(Debug)]
pub struct FollowTask(tokio::task::JoinHandle<()>);

impl Drop for FollowTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn follow(
    mut listener: PgListener,
    pool: sqlx::PgPool,
    out: tokio::sync::broadcast::Sender<Arc<Vec<LogEntry>>>,
    floor: i64,
) {
    let mut seen: HashMap<i64, i64> = HashMap::new();
    loop {
        // A lost connection is re-established by the listener (notifications in between are
        // missed; the window's next page shows those rows).
        let Ok(notification) = listener.recv().await else {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            continue;
        };
        let Ok(config_id) = notification.payload().parse::<i64>() else { continue };
        let after = *seen.get(&config_id).unwrap_or(&floor);
        let rows = match PgStore::log_rows_after(&pool, config_id, after, ROWS_PER_READ).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "the live log could not read new rows");
                continue;
            }
        };
        if let Some(last) = rows.last() {
            seen.insert(config_id, last.id);
            let _ = out.send(Arc::new(rows));
        }
    }
}
