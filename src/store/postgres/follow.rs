//! The live log across machines: every settle notifies `postback_log` in its own transaction
//! (so at commit) with each config's first and last new row id, and a process whose window
//! follows the log LISTENs, reads exactly those rows and hands them to its live views. Ids are
//! given at insert and settles commit in any order, so a "rows past the last seen" cursor
//! would skip a slower settle's rows; a range never does. Nothing re-reads the log; a worker
//! that nobody follows only sends the notification.

use std::sync::Arc;

use sqlx::postgres::PgListener;

use super::{PgStore, StoreError};
use crate::model::LogEntry;

/// The notification channel; its payload is `config:first:last` ([`payload`]).
pub(super) const CHANNEL: &str = "postback_log";

/// A notification's payload: a config's new rows, first and last id.
pub(super) fn payload(config_id: i64, first: i64, last: i64) -> String {
    format!("{config_id}:{first}:{last}")
}

fn parse_payload(text: &str) -> Option<(i64, i64, i64)> {
    let mut parts = text.split(':').map(str::parse::<i64>);
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(Ok(config)), Some(Ok(first)), Some(Ok(last)), None) if first <= last => Some((config, first, last)),
        _ => None,
    }
}

impl PgStore {
    /// Follows the log rows every process on this database writes (each settled batch as one
    /// message), from now on. Returns once notifications are being received.
    pub async fn subscribe_log(&self) -> Result<tokio::sync::broadcast::Receiver<Arc<Vec<LogEntry>>>, StoreError> {
        let receiver = self.log_events.subscribe();
        self.following
            .get_or_try_init(|| async {
                let mut listener = PgListener::connect_with(&self.pool).await?;
                listener.listen(CHANNEL).await?;
                let task = tokio::spawn(follow(listener, self.pool.clone(), self.log_events.clone()));
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

async fn follow(mut listener: PgListener, pool: sqlx::PgPool, out: tokio::sync::broadcast::Sender<Arc<Vec<LogEntry>>>) {
    loop {
        // A lost connection is re-established by the listener (notifications in between are
        // missed; the window's next page shows those rows).
        let Ok(notification) = listener.recv().await else {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            continue;
        };
        let Some((config_id, first, last)) = parse_payload(notification.payload()) else { continue };
        match PgStore::log_rows_between(&pool, config_id, first, last).await {
            Ok(rows) if !rows.is_empty() => {
                let _ = out.send(Arc::new(rows));
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "the live log could not read new rows"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_names_a_config_and_its_rows() {
        assert_eq!(parse_payload(&payload(3, 100, 140)), Some((3, 100, 140)));
        for bad in ["3", "3:1", "3:9:1", "x:1:2", "3:1:2:4", ""] {
            assert_eq!(parse_payload(bad), None, "{bad}");
        }
    }
}
