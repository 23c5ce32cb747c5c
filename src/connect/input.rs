//! What the Connect forms send: checked field by field into a config (errors name the field).

use serde::Deserialize;
use ts_rs::TS;

use crate::model::{formats, InputError, Network, PostbackConfig, RedditConfig, TikTokConfig};
use crate::secrets::Secret;

/// The TikTok / Reddit Connect form. The token arrives once and goes to the keychain; the test
/// code is used for the validation request only.
#[derive(Debug, Clone, Deserialize, TS)]
pub struct TokenIntegrationInput {
    pub game_id: i64,
    pub network: Network,
    pub pixel: String,
    pub trigger_events: Vec<String>,
    pub test_code: Option<String>,
    #[ts(type = "string")]
    pub token: Secret,
    /// Send to the built-in sandbox instead of the real network (demos, QA without an account).
    pub sandbox: bool,
}

impl TokenIntegrationInput {
    /// The config to validate and save; `sandbox_url` is where the built-in sandbox listens.
    pub fn to_config(&self, sandbox_url: &str) -> Result<PostbackConfig, InputError> {
        let base_url = self.sandbox.then(|| sandbox_url.to_owned());
        let mut triggers: Vec<String> = Vec::new();
        for event in self.trigger_events.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            if !triggers.iter().any(|t| t == event) {
                triggers.push(event.to_owned());
            }
        }
        if triggers.is_empty() {
            return Err(InputError::new("trigger_events", "choose at least one event to forward (e.g. purchase)"));
        }
        let test_code = self.test_code.as_deref().map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned);
        Ok(match self.network {
            Network::TikTok => PostbackConfig::TikTok(TikTokConfig {
                pixel_code: formats::tiktok_pixel_code(&self.pixel).map_err(|m| InputError::new("pixel", m))?,
                trigger_events: triggers,
                test_event_code: test_code,
                base_url,
            }),
            Network::Reddit => PostbackConfig::Reddit(RedditConfig {
                pixel_id: formats::reddit_pixel_id(&self.pixel).map_err(|m| InputError::new("pixel", m))?,
                trigger_events: triggers,
                test_id: test_code,
                base_url,
            }),
            Network::X => return Err(InputError::new("network", "X connects through OAuth: use Connect X")),
        })
    }
}

/// How to authorise X: the studio's X developer app and the flow it is set up for.
#[derive(Debug, Clone, Deserialize, TS)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum XAuthMethod {
    /// OAuth 1.0a 3-legged with the app's API key and secret (the default).
    #[serde(rename = "oauth1")]
    OAuth1 {
        consumer_key: String,
        #[ts(type = "string")]
        consumer_secret: Secret,
    },
    /// OAuth 2.0 Authorization Code + PKCE with the app's client id (and secret for
    /// confidential clients).
    #[serde(rename = "oauth2")]
    OAuth2 {
        client_id: String,
        #[ts(type = "string | null")]
        client_secret: Option<Secret>,
    },
}

impl XAuthMethod {
    pub fn check(&self) -> Result<(), InputError> {
        let (field, value, secret) = match self {
            XAuthMethod::OAuth1 { consumer_key, consumer_secret } => {
                ("consumer_key", consumer_key, Some(("consumer_secret", consumer_secret)))
            }
            XAuthMethod::OAuth2 { client_id, .. } => ("client_id", client_id, None),
        };
        if value.trim().is_empty() {
            return Err(InputError::new(field, "is required: copy it from your app in the X developer portal"));
        }
        if let Some((field, secret)) = secret {
            if secret.expose().trim().is_empty() {
                return Err(InputError::new(field, "is required: copy it from your app in the X developer portal"));
            }
        }
        Ok(())
    }
}
