//! The statements of settling that are the same on both engines: a batch's requests stored,
//! and its config's own state (paused on a refused credential, off- or online). How the rows
//! and the log are written differs (SQLite in parts at its write gate, PostgreSQL in one
//! transaction with array parameters) and stays with each engine.

/// Expands to `insert_requests` and `apply_config_state` on an engine's `connection` type.
macro_rules! settle {
    (connection = $connection:ty) => {
        use $crate::store::rows::{Offline, Settlement};
        use $crate::store::settlement::RequestRow;
        use $crate::store::StoreError;

        /// Inserts the requests of a settlement; returns their ids in order.
        pub(super) async fn insert_requests(
            tx: &mut $connection,
            requests: &[RequestRow],
        ) -> Result<Vec<i64>, StoreError> {
            let mut ids = Vec::with_capacity(requests.len());
            for r in requests {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO delivery_requests (at, config_id, url, headers, body, response_status, response_headers,
                         response_body)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
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

        /// The config's own state after the batch: paused on a refused credential (unless it
        /// was rotated meanwhile), off- or online.
        pub(super) async fn apply_config_state(tx: &mut $connection, s: &Settlement) -> Result<(), StoreError> {
            if let Some(pause) = &s.pause {
                sqlx::query(
                    "UPDATE configs SET paused_reason = $1 WHERE id = $2 AND credential_ref IS NOT DISTINCT FROM $3",
                )
                .bind(&pause.reason)
                .bind(pause.config_id)
                .bind(&pause.credential_ref)
                .execute(&mut *tx)
                .await?;
            }
            match &s.offline {
                Some(Offline::Down { config_id, since, until, probes, reason }) => {
                    sqlx::query(
                        "UPDATE configs SET offline_since = COALESCE(offline_since, $1), offline_until = $2,
                             offline_probes = $3, offline_reason = $4 WHERE id = $5",
                    )
                    .bind(since)
                    .bind(until)
                    .bind(probes)
                    .bind(reason)
                    .bind(config_id)
                    .execute(&mut *tx)
                    .await?;
                }
                Some(Offline::Up { config_id }) => {
                    sqlx::query(
                        "UPDATE configs SET offline_since = NULL, offline_until = NULL, offline_probes = 0,
                             offline_reason = NULL WHERE id = $1 AND offline_since IS NOT NULL",
                    )
                    .bind(config_id)
                    .execute(&mut *tx)
                    .await?;
                }
                None => {}
            }
            Ok(())
        }
    };
}
pub(crate) use settle;
