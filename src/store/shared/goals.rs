//! Goals and X event tags.
//! The statements are the same on both engines (numbered `$n`
//! parameters, which SQLite reads too); each engine instantiates them with its own connection
//! and row types, because sqlx types every executor by its database.

/// Expands to the goals part of an engine's store: `store` is its type, `connection` and `row`
/// its sqlx types, `now` its SQL for the current time as ISO-8601 UTC text, `begin` how a
/// transaction that reads and then writes starts (SQLite: IMMEDIATE, taking the write lock first:
/// a deferred one that read before an enqueue committed could not write, "database is locked").
macro_rules! goals {
    (store = $store:ty, connection = $connection:ty, row = $row:ty, now = $now:literal, begin = $begin:literal) => {
        use sqlx::FromRow;

        use $crate::store::decode::{GoalRow, GOAL_COLUMNS};

        use $crate::model::Goal;
        use $crate::store::StoreError;

        impl $store {
            /// The game's goals in their order (no event tags: those belong to an X config).
            pub async fn goals(&self, game_id: i64) -> Result<Vec<Goal>, StoreError> {
                self.game(game_id).await?;
                let rows = sqlx::query(&format!(
                    "SELECT {GOAL_COLUMNS} FROM goals g WHERE g.game_id = $1 ORDER BY g.position, g.id"
                ))
                .bind(game_id)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(|r| Goal::try_from(GoalRow::from_row(r)?)).collect()
            }

            /// Adds a goal at the end, or updates the goal with the same key in place.
            pub async fn save_goal(&self, game_id: i64, goal: &Goal) -> Result<(), StoreError> {
                let mut tx = self.pool.begin_with($begin).await?;
                let position: i64 = sqlx::query_scalar(
                    "SELECT COALESCE((SELECT position FROM goals WHERE game_id = $1 AND key = $2),
                                     (SELECT COALESCE(MAX(position), -1) + 1 FROM goals WHERE game_id = $1))",
                )
                .bind(game_id)
                .bind(&goal.id)
                .fetch_one(&mut *tx)
                .await?;
                super::configs::upsert_goal(&mut tx, game_id, goal, position).await?;
                tx.commit().await?;
                Ok(())
            }

            pub async fn set_goal_active(&self, game_id: i64, key: &str, active: bool) -> Result<(), StoreError> {
                let n = sqlx::query("UPDATE goals SET active = $1 WHERE game_id = $2 AND key = $3")
                    .bind(active)
                    .bind(game_id)
                    .bind(key)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                if n == 0 {
                    return Err(StoreError::GoalNotFound(key.to_owned()));
                }
                Ok(())
            }

            /// Deletes a goal; its X mappings and once-per-player memory go with it.
            pub async fn delete_goal(&self, game_id: i64, key: &str) -> Result<(), StoreError> {
                let n = sqlx::query("DELETE FROM goals WHERE game_id = $1 AND key = $2")
                    .bind(game_id)
                    .bind(key)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                if n == 0 {
                    return Err(StoreError::GoalNotFound(key.to_owned()));
                }
                Ok(())
            }

            /// Puts the game's goals in this order (X sends a multi-goal event's conversions in it).
            pub async fn reorder_goals(&self, game_id: i64, keys: &[String]) -> Result<(), StoreError> {
                let mut tx = self.pool.begin_with($begin).await?;
                for (position, key) in keys.iter().enumerate() {
                    let n = sqlx::query("UPDATE goals SET position = $1 WHERE game_id = $2 AND key = $3")
                        .bind(position as i64)
                        .bind(game_id)
                        .bind(key)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if n == 0 {
                        return Err(StoreError::GoalNotFound(key.clone()));
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            /// Sets (or, with `None`, removes) the Single Event Tags of an X config's goals, in one
            /// transaction; goals not named keep theirs.
            pub async fn set_goal_tags(
                &self,
                config_id: i64,
                tags: &[(String, Option<String>)],
            ) -> Result<(), StoreError> {
                let mut tx = self.pool.begin_with($begin).await?;
                let game_id: i64 = sqlx::query_scalar("SELECT game_id FROM configs WHERE id = $1 AND network = 'x'")
                    .bind(config_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(StoreError::ConfigNotFound(config_id))?;
                for (key, tag) in tags {
                    let goal_id: i64 = sqlx::query_scalar("SELECT id FROM goals WHERE game_id = $1 AND key = $2")
                        .bind(game_id)
                        .bind(key)
                        .fetch_optional(&mut *tx)
                        .await?
                        .ok_or_else(|| StoreError::GoalNotFound(key.clone()))?;
                    sqlx::query("DELETE FROM x_goal_tags WHERE config_id = $1 AND goal_id = $2")
                        .bind(config_id)
                        .bind(goal_id)
                        .execute(&mut *tx)
                        .await?;
                    if let Some(tag) = tag {
                        sqlx::query("INSERT INTO x_goal_tags (config_id, goal_id, event_tag) VALUES ($1, $2, $3)")
                            .bind(config_id)
                            .bind(goal_id)
                            .bind(tag)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            /// Removes an X config's tags that belong to another pixel than `pixel_id` (the pixel
            /// changed); returns how many.
            pub async fn clear_foreign_tags(&self, config_id: i64, pixel_id: &str) -> Result<u64, StoreError> {
                Ok(sqlx::query("DELETE FROM x_goal_tags WHERE config_id = $1 AND event_tag NOT LIKE $2")
                    .bind(config_id)
                    .bind(format!("tw-{pixel_id}-%"))
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }
        }
    };
}
pub(crate) use goals;
