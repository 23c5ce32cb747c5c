//! Postback configs, with the goals an X config brings and their event tags.
//! The statements are the same on both engines (numbered `$n`
//! parameters, which SQLite reads too); each engine instantiates them with its own connection
//! and row types, because sqlx types every executor by its database.

/// Expands to the configs part of an engine's store: `store` is its type, `connection` and `row`
/// its sqlx types, `now` its SQL for the current time as ISO-8601 UTC text, `begin` how a
/// transaction that reads and then writes starts (SQLite: IMMEDIATE, taking the write lock first:
/// a deferred one that read before an enqueue committed could not write, "database is locked").
macro_rules! configs {
    (store = $store:ty, connection = $connection:ty, row = $row:ty, now = $now:literal, begin = $begin:literal) => {
        use sqlx::{FromRow, Row};

        use $crate::store::decode::{
            broken_reason, is_unique_violation, trigger_json, ConfigRow, GoalRow, CONFIG_COLUMNS, GOAL_COLUMNS,
        };

        use $crate::store::StoreError;
        use $crate::model::{Goal, Network, PostbackConfig};
        use $crate::store::rows::*;

        /// Adds or updates a goal of a game by its key; returns the row id.
        pub(super) async fn upsert_goal(
            conn: &mut $connection,
            game_id: i64,
            goal: &Goal,
            position: i64,
        ) -> Result<i64, StoreError> {
            let (min_value, currency) = match &goal.value_filter {
                Some(f) => (Some(f.min_value.as_str()), Some(f.currency.as_str())),
                None => (None, None),
            };
            Ok(sqlx::query_scalar(
                "INSERT INTO goals (game_id, key, name, event, active, position, rule, min_value, currency)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (game_id, key) DO UPDATE SET name = excluded.name, event = excluded.event,
                     active = excluded.active, position = excluded.position, rule = excluded.rule,
                     min_value = excluded.min_value, currency = excluded.currency
                 RETURNING id",
            )
            .bind(game_id)
            .bind(&goal.id)
            .bind(&goal.name)
            .bind(&goal.event)
            .bind(goal.active)
            .bind(position)
            .bind(goal.rule.as_str())
            .bind(min_value)
            .bind(currency)
            .fetch_one(conn)
            .await?)
        }

        /// Saves the goals of an X config and maps those with an event tag to it.
        async fn insert_goal_tags(
            conn: &mut $connection,
            game_id: i64,
            config_id: i64,
            goals: &[Goal],
        ) -> Result<(), StoreError> {
            for (position, goal) in goals.iter().enumerate() {
                let goal_id = upsert_goal(conn, game_id, goal, position as i64).await?;
                if let Some(tag) = &goal.event_tag {
                    sqlx::query("INSERT INTO x_goal_tags (config_id, goal_id, event_tag) VALUES ($1, $2, $3)")
                        .bind(config_id)
                        .bind(goal_id)
                        .bind(tag)
                        .execute(&mut *conn)
                        .await?;
                }
            }
            Ok(())
        }

        impl $store {
            /// Saves a new config. A game has at most one config per network: a second one is refused.
            pub async fn create_config(
                &self,
                game_id: i64,
                config: &PostbackConfig,
                credential_ref: Option<&str>,
            ) -> Result<i64, StoreError> {
                let mut tx = self.pool.begin_with($begin).await?;
                let game_exists: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM games WHERE id = $1").bind(game_id).fetch_optional(&mut *tx).await?;
                if game_exists.is_none() {
                    return Err(StoreError::GameNotFound(game_id));
                }
                let triggers = trigger_json(config)?;
                let inserted = sqlx::query_scalar(
                    "INSERT INTO configs (game_id, network, pixel, trigger_events, base_url, credential_ref)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(game_id)
                .bind(config.network().as_str())
                .bind(config.pixel())
                .bind(triggers)
                .bind(config.base_url())
                .bind(credential_ref)
                .fetch_one(&mut *tx)
                .await;
                let config_id: i64 = match inserted {
                    Ok(id) => id,
                    Err(e) if is_unique_violation(&e) => return Err(StoreError::ConfigExists(config.network())),
                    Err(e) => return Err(e.into()),
                };
                if let PostbackConfig::X(x) = config {
                    insert_goal_tags(&mut tx, game_id, config_id, &x.goals).await?;
                }
                tx.commit().await?;
                Ok(config_id)
            }

            /// One config by id.
            pub async fn config(&self, config_id: i64) -> Result<StoredConfig, StoreError> {
                let rows = sqlx::query(&format!("SELECT {CONFIG_COLUMNS} FROM configs WHERE id = $1"))
                    .bind(config_id)
                    .fetch_all(&self.pool)
                    .await?;
                self.stored_configs(rows).await?.pop().ok_or(StoreError::ConfigNotFound(config_id))
            }

            /// The game's config for one network, if it has one.
            pub async fn config_for(&self, game_id: i64, network: Network) -> Result<Option<StoredConfig>, StoreError> {
                Ok(self.configs(game_id).await?.into_iter().find(|c| c.config.network() == network))
            }

            /// Replaces a config's settings and credential reference in one transaction and lets it
            /// deliver again. X goal mappings are replaced only when `config` carries goals, so a
            /// reconnect keeps them.
            pub async fn update_config(
                &self,
                config_id: i64,
                config: &PostbackConfig,
                credential_ref: &str,
            ) -> Result<(), StoreError> {
                let mut tx = self.pool.begin_with($begin).await?;
                let game_id: Option<i64> = sqlx::query_scalar("SELECT game_id FROM configs WHERE id = $1 AND network = $2")
                    .bind(config_id)
                    .bind(config.network().as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                let game_id = game_id.ok_or(StoreError::ConfigNotFound(config_id))?;
                sqlx::query(
                    concat!("UPDATE configs SET pixel = $1, trigger_events = $2, base_url = $3, credential_ref = $4, paused_reason = NULL,
                         updated_at = ", $now, "
                     WHERE id = $5"),
                )
                .bind(config.pixel())
                .bind(trigger_json(config)?)
                .bind(config.base_url())
                .bind(credential_ref)
                .bind(config_id)
                .execute(&mut *tx)
                .await?;
                if let PostbackConfig::X(x) = config {
                    if !x.goals.is_empty() {
                        sqlx::query("DELETE FROM x_goal_tags WHERE config_id = $1").bind(config_id).execute(&mut *tx).await?;
                        insert_goal_tags(&mut tx, game_id, config_id, &x.goals).await?;
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            /// The events a TikTok / Reddit config forwards.
            pub async fn set_trigger_events(&self, config_id: i64, events: &[String]) -> Result<(), StoreError> {
                let json = serde_json::to_string(events).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let n = sqlx::query(
                    concat!("UPDATE configs SET trigger_events = $1, updated_at = ", $now, " WHERE id = $2"),
                )
                .bind(json)
                .bind(config_id)
                .execute(&self.pool)
                .await?
                .rows_affected();
                if n == 0 {
                    return Err(StoreError::ConfigNotFound(config_id));
                }
                Ok(())
            }

            /// Turns a config's delivery on or off: while off, its events are not queued and those
            /// already queued wait.
            pub async fn set_enabled(&self, config_id: i64, enabled: bool) -> Result<(), StoreError> {
                let n = sqlx::query("UPDATE configs SET enabled = $1 WHERE id = $2")
                    .bind(enabled)
                    .bind(config_id)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                if n == 0 {
                    return Err(StoreError::ConfigNotFound(config_id));
                }
                Ok(())
            }

            /// Removes a config; its queued events and goal mappings go with it (the log stays).
            pub async fn delete_config(&self, config_id: i64) -> Result<(), StoreError> {
                let deleted = sqlx::query("DELETE FROM configs WHERE id = $1").bind(config_id).execute(&self.pool).await?;
                if deleted.rows_affected() == 0 {
                    return Err(StoreError::ConfigNotFound(config_id));
                }
                Ok(())
            }

            /// The game's configs, in network order.
            pub async fn configs(&self, game_id: i64) -> Result<Vec<StoredConfig>, StoreError> {
                let rows = sqlx::query(&format!("SELECT {CONFIG_COLUMNS} FROM configs WHERE game_id = $1 ORDER BY id"))
                    .bind(game_id)
                    .fetch_all(&self.pool)
                    .await?;
                self.stored_configs(rows).await
            }

            /// Every enabled config of every game, paused ones included; a config whose settings no
            /// longer parse is listed apart with the reason instead of failing the others.
            pub async fn delivery_configs(&self) -> Result<ConfigLoad, StoreError> {
                let rows = sqlx::query(&format!("SELECT {CONFIG_COLUMNS} FROM configs WHERE enabled ORDER BY id"))
                    .fetch_all(&self.pool)
                    .await?;
                let mut load = ConfigLoad::default();
                for row in rows {
                    let id: i64 = row.try_get("id")?;
                    match self.stored_config(&row).await {
                        Ok(config) => load.configs.push(config),
                        Err(e) => load.broken.push((id, broken_reason(id, e)?)),
                    }
                }
                Ok(load)
            }

            async fn stored_configs(&self, rows: Vec<$row>) -> Result<Vec<StoredConfig>, StoreError> {
                let mut configs = Vec::with_capacity(rows.len());
                for row in rows {
                    configs.push(self.stored_config(&row).await?);
                }
                Ok(configs)
            }

            async fn stored_config(&self, row: &$row) -> Result<StoredConfig, StoreError> {
                let row = ConfigRow::from_row(row)?;
                let x_goals = match row.network()? {
                    Network::X => self.x_goals(row.game_id, row.id).await?,
                    _ => Vec::new(),
                };
                row.into_stored(x_goals)
            }

            /// Every goal of the game, with this X config's event tag where one is mapped.
            async fn x_goals(&self, game_id: i64, config_id: i64) -> Result<Vec<Goal>, StoreError> {
                let rows = sqlx::query(&format!(
                    "SELECT {}, t.event_tag FROM goals g LEFT JOIN x_goal_tags t ON t.goal_id = g.id AND t.config_id = $1
                     WHERE g.game_id = $2 ORDER BY g.position, g.id",
                    GOAL_COLUMNS
                ))
                .bind(config_id)
                .bind(game_id)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(|r| Goal::try_from(GoalRow::from_row(r)?)).collect()
            }
        }
    };
}
pub(crate) use configs;
