//! Games, goals and postback configs.

use sqlx::Row;

use super::{SqliteStore, StoreError};
use crate::model::{
    ConfigSummary, Goal, Health, IntegrationStatus, Network, PostbackConfig, RedditConfig, SetupGap, TikTokConfig,
    XConfig,
};
use crate::store::rows::*;

const CONFIG_COLUMNS: &str =
    "id, game_id, network, pixel, trigger_events, base_url, enabled, credential_ref, paused_reason,
     offline_since, offline_until, offline_probes, offline_reason";

/// Adds or updates a goal of a game by its key; returns the row id.
pub(super) async fn upsert_goal(
    conn: &mut sqlx::SqliteConnection,
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
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
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

fn trigger_json(config: &PostbackConfig) -> Result<String, StoreError> {
    serde_json::to_string(config.trigger_events()).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Saves the goals of an X config and maps those with an event tag to it.
async fn insert_goal_tags(
    conn: &mut sqlx::SqliteConnection,
    game_id: i64,
    config_id: i64,
    goals: &[Goal],
) -> Result<(), StoreError> {
    for (position, goal) in goals.iter().enumerate() {
        let goal_id = upsert_goal(conn, game_id, goal, position as i64).await?;
        if let Some(tag) = &goal.event_tag {
            sqlx::query("INSERT INTO x_goal_tags (config_id, goal_id, event_tag) VALUES (?, ?, ?)")
                .bind(config_id)
                .bind(goal_id)
                .bind(tag)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// What a config lacks before it can deliver anything.
fn setup_gaps(config: &PostbackConfig) -> Vec<SetupGap> {
    match config {
        PostbackConfig::X(x) if !x.goals.iter().any(|g| g.active) => vec![SetupGap::NoGoals],
        PostbackConfig::X(x) if !x.goals.iter().any(|g| g.active && g.event_tag.is_some()) => {
            vec![SetupGap::NoMappedGoals]
        }
        PostbackConfig::X(_) => Vec::new(),
        other if other.trigger_events().is_empty() => vec![SetupGap::NoTriggerEvents],
        _ => Vec::new(),
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl SqliteStore {
    /// Saves a new config. A game has at most one config per network: a second one is refused.
    pub async fn create_config(
        &self,
        game_id: i64,
        config: &PostbackConfig,
        credential_ref: Option<&str>,
    ) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let game_exists: Option<i64> =
            sqlx::query_scalar("SELECT id FROM games WHERE id = ?").bind(game_id).fetch_optional(&mut *tx).await?;
        if game_exists.is_none() {
            return Err(StoreError::GameNotFound(game_id));
        }
        let triggers = trigger_json(config)?;
        let inserted = sqlx::query_scalar(
            "INSERT INTO configs (game_id, network, pixel, trigger_events, base_url, credential_ref)
             VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
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
        let rows = sqlx::query(&format!("SELECT {CONFIG_COLUMNS} FROM configs WHERE id = ?"))
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
        let mut tx = self.pool.begin().await?;
        let game_id: Option<i64> = sqlx::query_scalar("SELECT game_id FROM configs WHERE id = ? AND network = ?")
            .bind(config_id)
            .bind(config.network().as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let game_id = game_id.ok_or(StoreError::ConfigNotFound(config_id))?;
        sqlx::query(
            "UPDATE configs SET pixel = ?, trigger_events = ?, base_url = ?, credential_ref = ?, paused_reason = NULL,
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE id = ?",
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
                sqlx::query("DELETE FROM x_goal_tags WHERE config_id = ?").bind(config_id).execute(&mut *tx).await?;
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
            "UPDATE configs SET trigger_events = ?, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?",
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
        let n = sqlx::query("UPDATE configs SET enabled = ? WHERE id = ?")
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
        let deleted = sqlx::query("DELETE FROM configs WHERE id = ?").bind(config_id).execute(&self.pool).await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::ConfigNotFound(config_id));
        }
        Ok(())
    }

    /// The game's configs, in network order.
    pub async fn configs(&self, game_id: i64) -> Result<Vec<StoredConfig>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {CONFIG_COLUMNS} FROM configs WHERE game_id = ? ORDER BY id"))
            .bind(game_id)
            .fetch_all(&self.pool)
            .await?;
        self.stored_configs(rows).await
    }

    /// Every enabled config of every game, paused ones included; a config whose settings no
    /// longer parse is listed apart with the reason instead of failing the others.
    pub async fn delivery_configs(&self) -> Result<ConfigLoad, StoreError> {
        let rows = sqlx::query(&format!("SELECT {CONFIG_COLUMNS} FROM configs WHERE enabled = 1 ORDER BY id"))
            .fetch_all(&self.pool)
            .await?;
        let mut load = ConfigLoad::default();
        for row in rows {
            let id: i64 = row.try_get("id")?;
            match self.stored_config(&row).await {
                Ok(config) => load.configs.push(config),
                Err(StoreError::Corrupt(reason)) => load.broken.push((id, reason)),
                Err(StoreError::Sqlx(sqlx::Error::ColumnDecode { source, .. })) => {
                    load.broken.push((id, format!("config {id} has a damaged column: {source}")))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(load)
    }

    async fn stored_configs(&self, rows: Vec<sqlx::sqlite::SqliteRow>) -> Result<Vec<StoredConfig>, StoreError> {
        let mut configs = Vec::with_capacity(rows.len());
        for row in rows {
            configs.push(self.stored_config(&row).await?);
        }
        Ok(configs)
    }

    async fn stored_config(&self, row: &sqlx::sqlite::SqliteRow) -> Result<StoredConfig, StoreError> {
        {
            let id: i64 = row.try_get("id")?;
            let game_id: i64 = row.try_get("game_id")?;
            let network_name: String = row.try_get("network")?;
            let network = Network::parse(&network_name)
                .ok_or_else(|| StoreError::Corrupt(format!("config {id} has unknown network '{network_name}'")))?;
            let pixel: String = row.try_get("pixel")?;
            let base_url: Option<String> = row.try_get("base_url")?;
            let triggers: String = row.try_get("trigger_events")?;
            let trigger_events = || -> Result<Vec<String>, StoreError> {
                serde_json::from_str(&triggers)
                    .map_err(|e| StoreError::Corrupt(format!("config {id} trigger events: {e}")))
            };
            let config = match network {
                Network::TikTok => PostbackConfig::TikTok(TikTokConfig {
                    pixel_code: pixel,
                    trigger_events: trigger_events()?,
                    test_event_code: None,
                    base_url,
                }),
                Network::Reddit => PostbackConfig::Reddit(RedditConfig {
                    pixel_id: pixel,
                    trigger_events: trigger_events()?,
                    test_id: None,
                    base_url,
                }),
                Network::X => {
                    PostbackConfig::X(XConfig { pixel_id: pixel, goals: self.x_goals(game_id, id).await?, base_url })
                }
            };
            Ok(StoredConfig {
                id,
                game_id,
                enabled: row.try_get("enabled")?,
                credential_ref: row.try_get("credential_ref")?,
                paused_reason: row.try_get("paused_reason")?,
                offline: OfflineState {
                    since: row.try_get("offline_since")?,
                    until: row.try_get("offline_until")?,
                    probes: row.try_get("offline_probes")?,
                    reason: row.try_get("offline_reason")?,
                },
                config,
            })
        }
    }

    /// Every goal of the game, with this X config's event tag where one is mapped.
    async fn x_goals(&self, game_id: i64, config_id: i64) -> Result<Vec<Goal>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {}, t.event_tag FROM goals g LEFT JOIN x_goal_tags t ON t.goal_id = g.id AND t.config_id = ?
             WHERE g.game_id = ? ORDER BY g.position, g.id",
            super::goals::GOAL_COLUMNS
        ))
        .bind(config_id)
        .bind(game_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| super::goals::goal_of(r, r.try_get("event_tag")?)).collect()
    }

    /// One row per network for Settings → Integrations, with each config's health.
    pub async fn integrations(&self, game_id: i64) -> Result<Vec<ConfigSummary>, StoreError> {
        self.game(game_id).await?;
        let configs = self.configs(game_id).await?;
        let now = chrono::Utc::now().timestamp_millis();
        let mut rows = Vec::with_capacity(Network::ALL.len());
        for network in Network::ALL {
            let stored = configs.iter().find(|c| c.config.network() == network);
            let (health, pending) = match stored {
                Some(c) => (self.health(c.id, now).await?, self.pending_count(c.id).await?),
                None => (Health::NoRecentActivity, 0),
            };
            rows.push(ConfigSummary {
                game_id,
                config_id: stored.map(|c| c.id),
                network,
                display_name: network.display_name().to_owned(),
                status: match stored {
                    Some(c) if c.credential_ref.is_some() && c.paused_reason.is_some() => IntegrationStatus::Paused,
                    Some(c) if c.credential_ref.is_some() => IntegrationStatus::Connected,
                    _ => IntegrationStatus::NotConnected,
                },
                enabled: stored.is_some_and(|c| c.enabled),
                pixel: stored.map(|c| c.config.pixel().to_owned()),
                base_url: stored.and_then(|c| c.config.base_url().map(str::to_owned)),
                health,
                trigger_events: stored.map(|c| c.config.trigger_events().to_vec()).unwrap_or_default(),
                paused_reason: stored.and_then(|c| c.paused_reason.clone()),
                offline_since: stored.and_then(|c| c.offline.since),
                offline_reason: stored.and_then(|c| c.offline.reason.clone()),
                pending,
                gaps: stored.map(|c| setup_gaps(&c.config)).unwrap_or_default(),
                unmapped_goals: match stored.map(|c| &c.config) {
                    Some(PostbackConfig::X(x)) => {
                        x.goals.iter().filter(|g| g.active && g.event_tag.is_none()).map(|g| g.name.clone()).collect()
                    }
                    _ => Vec::new(),
                },
            });
        }
        Ok(rows)
    }
}
