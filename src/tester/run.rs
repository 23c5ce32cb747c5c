//! The tester against a workspace: the game's configs, erasures and phone country read from
//! the store, the credential from the keychain or the sealed store. Shared by the window and
//! the CLI.

use chrono::Utc;

use super::check::{check_event, read_event, EventCheck};
use super::send::{send_test, test_request, with_test_code, TestAnswer};
use super::TesterError;
use crate::delivery::Credentials;
use crate::identity::PhoneCountry;
use crate::model::ConversionEvent;
use crate::store::{Store, StoreError};

/// What `text` (canonical JSON) would send to each of `game_id`'s configs; a text that is not
/// an event is answered with its problem, not an error, so the window can show it as the user
/// types. Warnings are dated now.
pub async fn check_for_game(store: &Store, game_id: i64, text: &str) -> Result<EventCheck, TesterError> {
    let event = match read_event(text) {
        Ok(event) => event,
        Err(problem) => return Ok(EventCheck { problem: Some(problem), configs: Vec::new() }),
    };
    let game = store.game(game_id).await?;
    let configs = store.configs(game_id).await?;
    let erased = is_erased(store, &event).await?;
    let country = game.default_country.as_deref().and_then(PhoneCountry::parse);
    Ok(EventCheck { problem: None, configs: check_event(&configs, &event, erased, country, Utc::now()) })
}

/// Sends `event` to config `config_id` in its network's test mode under `test_code`, and
/// returns the network's answer. Nothing is queued, logged or kept.
pub async fn send_for_config(
    store: &Store,
    credentials: &Credentials,
    http: &reqwest::Client,
    config_id: i64,
    event: &ConversionEvent,
    test_code: &str,
) -> Result<TestAnswer, TesterError> {
    let stored = store.config(config_id).await.map_err(|e| match e {
        StoreError::ConfigNotFound(id) => TesterError::NoConfig(id),
        other => other.into(),
    })?;
    let config = with_test_code(&stored.config, test_code)?;
    let game = store.game(stored.game_id).await?;
    let country = game.default_country.as_deref().and_then(PhoneCountry::parse);
    let erased = is_erased(store, event).await?;
    let (request, warnings) = test_request(&config, event, erased, country, Utc::now())?;
    let credential = credentials
        .credential(config.network(), stored.credential_ref.as_deref())
        .await
        .map_err(|e| TesterError::Credentials(e.to_string()))?;
    send_test(http, config.network(), &request, &credential, warnings).await
}

async fn is_erased(store: &Store, event: &ConversionEvent) -> Result<bool, StoreError> {
    Ok(!store.erased_among(&[event.player_id.as_str()]).await?.is_empty())
}
