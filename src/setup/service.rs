//! Set-up operations the window and the CLI share: each validates with `rules`, then writes.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::rules::{self, GoalInput, TagCheck, TagInput};
use crate::delivery::Credentials;
use crate::model::{formats, ApiError, Game, GameUsage, Goal, InputError, PostbackConfig};
use crate::secrets::{self, SecretsError};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keychain(#[from] SecretsError),
    #[error(transparent)]
    Team(#[from] crate::team::TeamError),
    #[error("the Sandbox Game stays for demos and tests and cannot be deleted; create your own game beside it")]
    DemoGame,
    #[error("{0}")]
    Conflict(String),
}

impl From<SetupError> for ApiError {
    fn from(e: SetupError) -> Self {
        match e {
            SetupError::Input(e) => e.into(),
            SetupError::Store(StoreError::GameExists(name)) => {
                ApiError::new("game_exists", format!("a game named '{name}' already exists; choose another name"))
                    .on_field("name")
            }
            SetupError::Store(e) => e.into(),
            SetupError::Keychain(e) => e.into(),
            SetupError::Team(e) => e.into(),
            SetupError::DemoGame => ApiError::new("demo_game", e.to_string()),
            SetupError::Conflict(m) => ApiError::new("invalid_input", m),
        }
    }
}

/// One goal of the X Event Tag Mapping table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct TagMappingRow {
    pub goal: Goal,
    /// The mapped Single Event Tag; `None`: the goal is not sent to X.
    pub tag: Option<String>,
}

/// An X config's mapping: its pixel and the game's goals with their tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct TagMapping {
    pub config_id: i64,
    pub pixel_id: String,
    pub rows: Vec<TagMappingRow>,
}

pub struct Setup {
    store: Store,
    credentials: Arc<Credentials>,
}

impl Setup {
    pub fn new(store: Store, credentials: Arc<Credentials>) -> Self {
        Self { store, credentials }
    }

    pub async fn create_game(&self, name: &str) -> Result<Game, SetupError> {
        Ok(self.store.create_game(&rules::game_name(name)?).await?)
    }

    pub async fn rename_game(&self, game_id: i64, name: &str) -> Result<Game, SetupError> {
        Ok(self.store.rename_game(game_id, &rules::game_name(name)?).await?)
    }

    /// A new game whose phone numbers without a country code are read in `default_country`
    /// (an ISO 3166-1 alpha-2 code; empty: none).
    pub async fn create_game_with_country(&self, name: &str, default_country: &str) -> Result<Game, SetupError> {
        let name = rules::game_name(name)?;
        let country = rules::default_country(default_country)?;
        Ok(self.store.create_game_in(&name, country.as_deref()).await?)
    }

    /// The game form: its name and default country, both checked before either is saved.
    pub async fn update_game(&self, game_id: i64, name: &str, default_country: &str) -> Result<Game, SetupError> {
        let name = rules::game_name(name)?;
        let country = rules::default_country(default_country)?;
        Ok(self.store.update_game(game_id, &name, country.as_deref()).await?)
    }

    /// Sets the country that the game's phone numbers written without a country code are read
    /// in; empty clears it (such numbers are then not sent).
    pub async fn set_default_country(&self, game_id: i64, default_country: &str) -> Result<Game, SetupError> {
        let country = rules::default_country(default_country)?;
        Ok(self.store.set_default_country(game_id, country.as_deref()).await?)
    }

    /// Deletes a game with its configs, goals, queued events and log, then its configs'
    /// keychain entries. The demo game stays.
    pub async fn delete_game(&self, game_id: i64) -> Result<GameUsage, SetupError> {
        let usage = self.store.game_usage(game_id).await?;
        if usage.game.demo {
            return Err(SetupError::DemoGame);
        }
        let refs = self.store.delete_game(game_id).await?;
        let keychain = self.credentials.keychain();
        for reference in refs.into_iter().filter(|r| r != crate::SANDBOX_CREDENTIAL_REF) {
            if let Some(keychain) = keychain.clone() {
                // Best effort: the configs are gone, an orphaned entry is harmless.
                if let Err(e) = secrets::blocking(keychain, move |k| k.delete(&reference)).await {
                    tracing::warn!(error = %e, "a deleted game's keychain entry could not be removed");
                }
            }
        }
        Ok(usage)
    }

    /// The goals of a game; a goal form checked and saved (new goals go last).
    pub async fn save_goal(&self, game_id: i64, input: &GoalInput) -> Result<Goal, SetupError> {
        let existing = self.store.goals(game_id).await?;
        let goal = rules::goal(input, &existing)?;
        self.store.save_goal(game_id, &goal).await?;
        Ok(goal)
    }

    /// Reorders the game's goals: `keys` must name each of them once.
    pub async fn reorder_goals(&self, game_id: i64, keys: &[String]) -> Result<Vec<Goal>, SetupError> {
        let existing = self.store.goals(game_id).await?;
        let mut sorted_given: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut sorted_have: Vec<&str> = existing.iter().map(|g| g.id.as_str()).collect();
        sorted_given.sort_unstable();
        sorted_have.sort_unstable();
        if sorted_given != sorted_have {
            return Err(SetupError::Conflict("the goals changed meanwhile; reload the page and reorder again".into()));
        }
        self.store.reorder_goals(game_id, keys).await?;
        Ok(self.store.goals(game_id).await?)
    }

    /// The X Event Tag Mapping of an X config.
    pub async fn tag_mapping(&self, config_id: i64) -> Result<TagMapping, SetupError> {
        let stored = self.store.config(config_id).await?;
        let PostbackConfig::X(x) = stored.config else {
            return Err(InputError::new("config", "only X configs map goals to event tags").into());
        };
        let rows = x
            .goals
            .into_iter()
            .map(|g| {
                let tag = g.event_tag.clone();
                TagMappingRow { goal: Goal { event_tag: None, ..g }, tag }
            })
            .collect();
        Ok(TagMapping { config_id, pixel_id: x.pixel_id, rows })
    }

    /// Checks tags as typed (nothing saved).
    pub async fn check_tags(&self, config_id: i64, proposed: &[TagInput]) -> Result<Vec<TagCheck>, SetupError> {
        let mapping = self.tag_mapping(config_id).await?;
        let goals: Vec<Goal> = mapping.rows.into_iter().map(|r| r.goal).collect();
        Ok(rules::check_tags(&mapping.pixel_id, &goals, proposed)?)
    }

    /// Saves the proposed tags when none has a format error (the first error names its goal's
    /// field, `tags.<goal key>`); warnings are returned with the saved checks.
    pub async fn save_tags(&self, config_id: i64, proposed: &[TagInput]) -> Result<Vec<TagCheck>, SetupError> {
        let checks = self.check_tags(config_id, proposed).await?;
        if let Some(bad) = checks.iter().find(|c| c.error.is_some()) {
            let message = bad.error.clone().unwrap_or_default();
            return Err(InputError::new(format!("tags.{}", bad.goal_key), message).into());
        }
        let tags: Vec<(String, Option<String>)> = checks.iter().map(|c| (c.goal_key.clone(), c.tag.clone())).collect();
        self.store.set_goal_tags(config_id, &tags).await?;
        Ok(checks)
    }

    /// TikTok / Reddit: the events they forward (at least one).
    pub async fn set_trigger_events(&self, config_id: i64, events: &[String]) -> Result<Vec<String>, SetupError> {
        let mut triggers: Vec<String> = Vec::new();
        for (i, raw) in events.iter().enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            let event = formats::event_name(raw).map_err(|m| InputError::new(format!("trigger_events.{i}"), m))?;
            if !triggers.contains(&event) {
                triggers.push(event);
            }
        }
        if triggers.is_empty() {
            return Err(
                InputError::new("trigger_events", "choose at least one event to forward (e.g. purchase)").into()
            );
        }
        let stored = self.store.config(config_id).await?;
        if matches!(stored.config, PostbackConfig::X(_)) {
            return Err(InputError::new("trigger_events", "X sends its mapped goals, not trigger events").into());
        }
        self.store.set_trigger_events(config_id, &triggers).await?;
        Ok(triggers)
    }
}
