//! Games: create, rename, default country, delete with everything of theirs; the current game
//! and the `meta` settings.
//! The statements are the same on both engines (numbered `$n`
//! parameters, which SQLite reads too); each engine instantiates them with its own connection
//! and row types, because sqlx types every executor by its database.

/// Expands to the games part of an engine's store: `store` is its type, `connection` and `row`
/// its sqlx types, `now` its SQL for the current time as ISO-8601 UTC text, `begin` how a
/// transaction that reads and then writes starts (SQLite: IMMEDIATE, taking the write lock first:
/// a deferred one that read before an enqueue committed could not write, "database is locked").
macro_rules! games {
    (store = $store:ty, connection = $connection:ty, row = $row:ty, now = $now:literal, begin = $begin:literal) => {
        use sqlx::{FromRow, Row};

        use $crate::store::decode::{is_unique_violation, GameRow, GAME_COLUMNS};

        use $crate::store::StoreError;
        use $crate::model::{Game, GameUsage};

        const CURRENT_GAME: &str = "current_game";

        impl $store {
            pub async fn create_game(&self, name: &str) -> Result<Game, StoreError> {
                self.create_game_row(name, false, None).await
            }

            /// A new game with its default country for phone numbers (checked by the caller).
            pub async fn create_game_in(&self, name: &str, default_country: Option<&str>) -> Result<Game, StoreError> {
                self.create_game_row(name, false, default_country).await
            }

            /// A new demo game (the sandbox's, made by a higher layer): marked so the window can say so.
            pub async fn create_demo_game(&self, name: &str) -> Result<Game, StoreError> {
                self.create_game_row(name, true, None).await
            }

            pub(super) async fn create_game_row(
                &self,
                name: &str,
                demo: bool,
                default_country: Option<&str>,
            ) -> Result<Game, StoreError> {
                let inserted =
                    sqlx::query_scalar("INSERT INTO games (name, is_demo, default_country) VALUES ($1, $2, $3) RETURNING id")
                        .bind(name)
                        .bind(demo)
                        .bind(default_country)
                        .fetch_one(&self.pool)
                        .await;
                match inserted {
                    Ok(id) => Ok(Game { id, name: name.to_owned(), demo, default_country: default_country.map(str::to_owned) }),
                    Err(e) if is_unique_violation(&e) => Err(StoreError::GameExists(name.to_owned())),
                    Err(e) => Err(e.into()),
                }
            }

            pub async fn rename_game(&self, game_id: i64, name: &str) -> Result<Game, StoreError> {
                let updated =
                    sqlx::query("UPDATE games SET name = $1 WHERE id = $2").bind(name).bind(game_id).execute(&self.pool).await;
                match updated {
                    Ok(r) if r.rows_affected() == 0 => Err(StoreError::GameNotFound(game_id)),
                    Ok(_) => self.game(game_id).await,
                    Err(e) if is_unique_violation(&e) => Err(StoreError::GameExists(name.to_owned())),
                    Err(e) => Err(e.into()),
                }
            }

            /// Sets (or with `None` clears) the country that the game's phone numbers written without
            /// a country code are read in: an upper-case ISO 3166-1 alpha-2 code, checked by the caller.
            pub async fn set_default_country(&self, game_id: i64, country: Option<&str>) -> Result<Game, StoreError> {
                let updated = sqlx::query("UPDATE games SET default_country = $1 WHERE id = $2")
                    .bind(country)
                    .bind(game_id)
                    .execute(&self.pool)
                    .await?;
                if updated.rows_affected() == 0 {
                    return Err(StoreError::GameNotFound(game_id));
                }
                self.game(game_id).await
            }

            /// The game form's save: name and default country in one statement.
            pub async fn update_game(&self, game_id: i64, name: &str, country: Option<&str>) -> Result<Game, StoreError> {
                let updated = sqlx::query("UPDATE games SET name = $1, default_country = $2 WHERE id = $3")
                    .bind(name)
                    .bind(country)
                    .bind(game_id)
                    .execute(&self.pool)
                    .await;
                match updated {
                    Ok(r) if r.rows_affected() == 0 => Err(StoreError::GameNotFound(game_id)),
                    Ok(_) => self.game(game_id).await,
                    Err(e) if is_unique_violation(&e) => Err(StoreError::GameExists(name.to_owned())),
                    Err(e) => Err(e.into()),
                }
            }

            pub async fn game(&self, game_id: i64) -> Result<Game, StoreError> {
                let row = sqlx::query(&format!("SELECT {GAME_COLUMNS} FROM games WHERE id = $1"))
                    .bind(game_id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(|r| GameRow::from_row(r).map(Game::from)).transpose()?.ok_or(StoreError::GameNotFound(game_id))
            }

            pub async fn games(&self) -> Result<Vec<Game>, StoreError> {
                let rows = sqlx::query(&format!("SELECT {GAME_COLUMNS} FROM games ORDER BY is_demo DESC, lower(name), id"))
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.iter().map(GameRow::from_row).collect::<Result<Vec<_>, _>>()?.into_iter().map(Game::from).collect())
            }

            /// What deleting a game removes, for the confirmation.
            pub async fn game_usage(&self, game_id: i64) -> Result<GameUsage, StoreError> {
                let game = self.game(game_id).await?;
                let row = sqlx::query(
                    "SELECT (SELECT COUNT(*) FROM configs WHERE game_id = $1),
                            (SELECT COUNT(*) FROM goals WHERE game_id = $1),
                            (SELECT COUNT(*) FROM queue q JOIN configs c ON c.id = q.config_id
                             WHERE c.game_id = $1 AND q.state != 'done'),
                            (SELECT COUNT(*) FROM delivery_log l JOIN configs c ON c.id = l.config_id WHERE c.game_id = $1)",
                )
                .bind(game_id)
                .fetch_one(&self.pool)
                .await?;
                Ok(GameUsage {
                    game,
                    configs: row.get::<i64, _>(0) as u64,
                    goals: row.get::<i64, _>(1) as u64,
                    queued: row.get::<i64, _>(2) as u64,
                    log_rows: row.get::<i64, _>(3) as u64,
                })
            }

            /// Deletes a game and everything of it in one transaction: configs (their queues and goal
            /// mappings cascade), goals (and their once-per-player memory), and its delivery log.
            /// Returns the keychain references its configs used, for the caller to remove.
            pub async fn delete_game(&self, game_id: i64) -> Result<Vec<String>, StoreError> {
                let mut tx = self.pool.begin_with($begin).await?;
                let refs: Vec<Option<String>> = sqlx::query_scalar("SELECT credential_ref FROM configs WHERE game_id = $1")
                    .bind(game_id)
                    .fetch_all(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM delivery_log WHERE config_id IN (SELECT id FROM configs WHERE game_id = $1)")
                    .bind(game_id)
                    .execute(&mut *tx)
                    .await?;
                let deleted = sqlx::query("DELETE FROM games WHERE id = $1").bind(game_id).execute(&mut *tx).await?;
                if deleted.rows_affected() == 0 {
                    return Err(StoreError::GameNotFound(game_id));
                }
                sqlx::query("DELETE FROM meta WHERE name = $1 AND value = $2")
                    .bind(CURRENT_GAME)
                    .bind(game_id.to_string())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(refs.into_iter().flatten().collect())
            }

            /// The game the window shows: the one chosen last, else the first.
            pub async fn current_game(&self) -> Result<Option<Game>, StoreError> {
                let chosen: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE name = $1")
                    .bind(CURRENT_GAME)
                    .fetch_optional(&self.pool)
                    .await?;
                if let Some(id) = chosen.and_then(|v| v.parse::<i64>().ok()) {
                    match self.game(id).await {
                        Ok(game) => return Ok(Some(game)),
                        Err(StoreError::GameNotFound(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(self.games().await?.into_iter().next())
            }

            /// A setting kept in the database (`None` when never set).
            pub async fn meta(&self, name: &str) -> Result<Option<String>, StoreError> {
                Ok(sqlx::query_scalar("SELECT value FROM meta WHERE name = $1").bind(name).fetch_optional(&self.pool).await?)
            }

            pub async fn set_meta(&self, name: &str, value: &str) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                )
                .bind(name)
                .bind(value)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            /// Removes a setting (its default applies again).
            pub async fn delete_meta(&self, name: &str) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM meta WHERE name = $1").bind(name).execute(&self.pool).await?;
                Ok(())
            }

            /// Sets a value unless one is there; returns the value that stands (two processes agree).
            pub async fn set_meta_once(&self, name: &str, value: &str) -> Result<String, StoreError> {
                sqlx::query("INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                    .bind(name)
                    .bind(value)
                    .execute(&self.pool)
                    .await?;
                Ok(self.meta(name).await?.unwrap_or_else(|| value.to_owned()))
            }

            pub async fn set_current_game(&self, game_id: i64) -> Result<Game, StoreError> {
                let game = self.game(game_id).await?;
                sqlx::query(
                    "INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                )
                .bind(CURRENT_GAME)
                .bind(game_id.to_string())
                .execute(&self.pool)
                .await?;
                Ok(game)
            }
        }
    };
}
pub(crate) use games;
