//! The credential lifecycle of a config. Order of writes, so a crash never strands anything:
//! validate → new keychain entry → SQLite row (in one transaction) → old keychain entry removed.
//! A failed SQLite write removes the new entry again; nothing is saved unless the network accepted.

use std::sync::Arc;

use super::input::{TokenIntegrationInput, XAuthMethod};
use super::validate::{clean_token, token_field, validate};
use super::x::{self, PendingConnections};
use super::{ConnectError, Validation};
use crate::delivery::{Credential, Credentials};
use crate::model::{formats, InputError, Network, PostbackConfig};
use crate::oauth::{Browser, OAuthError};
use crate::secrets::{self, new_credential_ref, Secret, SecretStore, SecretsError, StoredCredential};
use crate::store::Store;

/// A saved config and what the network said about its credential.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
pub struct Saved {
    pub config_id: i64,
    pub validation: Validation,
}

pub struct Connector {
    store: Store,
    credentials: Arc<Credentials>,
    http: crate::delivery::send::HttpClient,
    pending_x: PendingConnections,
    /// Wakes a waiting Connect X when the user cancels it.
    cancel_x: tokio::sync::Notify,
    /// Where configs that choose the built-in sandbox send (the app's sandbox by default).
    sandbox_url: String,
}

impl Connector {
    pub fn new(store: Store, credentials: Arc<Credentials>) -> Self {
        let http = crate::delivery::send::HttpClient::new(std::time::Duration::from_secs(20));
        Connector {
            store,
            credentials,
            http,
            pending_x: PendingConnections::default(),
            cancel_x: Default::default(),
            sandbox_url: crate::sandbox_base_url(),
        }
    }

    /// Points "send to the built-in sandbox" at a sandbox on another address (tests).
    pub fn with_sandbox_url(mut self, url: &str) -> Self {
        self.sandbox_url = url.to_owned();
        self
    }

    fn keychain(&self) -> Result<Arc<dyn SecretStore>, ConnectError> {
        self.credentials
            .keychain()
            .ok_or_else(|| SecretsError::Unavailable("this process runs without a keychain".into()).into())
    }

    /// Fails early, before anything is sent, when the keychain cannot be used.
    async fn keychain_ready(&self) -> Result<Arc<dyn SecretStore>, ConnectError> {
        let keychain = self.keychain()?;
        secrets::blocking(keychain.clone(), |k| k.ready()).await?;
        Ok(keychain)
    }

    /// TikTok or Reddit: checks the pasted token with one test event (carrying the test code
    /// in `config`, which is not stored), then saves. A game's existing config for the network
    /// is updated in place and un-paused.
    pub async fn save_with_token(
        &self,
        game_id: i64,
        config: PostbackConfig,
        token: &Secret,
    ) -> Result<Saved, ConnectError> {
        let network = config.network();
        if network == Network::X {
            return Err(InputError::new("network", "X connects through OAuth: use Connect X").into());
        }
        let token = clean_token(token_field(network), token)?;
        let keychain = self.keychain_ready().await?;
        let validation =
            validate(self.http.get().map_err(ConnectError::Local)?, &config, &Credential::Token(token.clone())).await?;
        let existing = self.store.config_for(game_id, network).await?;
        let config_id = self
            .store_credential(
                keychain,
                game_id,
                existing.map(|c| (c.id, c.credential_ref)),
                &config,
                StoredCredential::Token(token),
            )
            .await?;
        Ok(Saved { config_id, validation })
    }

    /// The TikTok / Reddit Connect form.
    pub async fn save_form(&self, input: &TokenIntegrationInput) -> Result<Saved, ConnectError> {
        self.save_with_token(input.game_id, input.to_config(&self.sandbox_url)?, &input.token).await
    }

    /// Step 1 of Connect X: authorise in the browser, against X or the built-in sandbox.
    /// Returns a handle for [`Self::finish_x`].
    pub async fn authorize_x(
        &self,
        game_id: i64,
        method: &XAuthMethod,
        sandbox: bool,
        browser: &dyn Browser,
        timeout: std::time::Duration,
    ) -> Result<String, ConnectError> {
        self.store.game(game_id).await?;
        let base_url = sandbox.then(|| self.sandbox_url.clone());
        let credential = tokio::select! {
            credential = x::authorize(self.http.get().map_err(ConnectError::Local)?, base_url.as_deref(), method, browser, timeout) => credential?,
            () = self.cancel_x.notified() => return Err(OAuthError::Cancelled.into()),
        };
        Ok(self.pending_x.hold(game_id, base_url, credential))
    }

    /// Ends every Connect X that is waiting for the browser (its listener closes).
    pub fn cancel_x(&self) {
        self.cancel_x.notify_waiters();
    }

    /// Step 2 of Connect X: the pixel id; validates and saves (a reconnect keeps goal mappings).
    pub async fn finish_x(&self, game_id: i64, handle: &str, pixel_id: &str) -> Result<Saved, ConnectError> {
        let (base_url, credential) = self.pending_x.get(handle, game_id).ok_or_else(x::expired)?;
        let saved = self.save_x(game_id, pixel_id, base_url, credential).await?;
        self.pending_x.forget(handle);
        Ok(saved)
    }

    /// New TikTok / Reddit token for an existing config (validated first); un-pauses it.
    pub async fn rotate_token(
        &self,
        config_id: i64,
        token: &Secret,
        test_code: Option<String>,
    ) -> Result<Saved, ConnectError> {
        let stored = self.store.config(config_id).await?;
        let mut config = stored.config.clone();
        match &mut config {
            PostbackConfig::TikTok(c) => c.test_event_code = test_code,
            PostbackConfig::Reddit(c) => c.test_id = test_code,
            PostbackConfig::X(_) => {
                return Err(InputError::new("network", "X tokens are replaced by Reconnect X").into());
            }
        }
        let token = clean_token(token_field(config.network()), token)?;
        let keychain = self.keychain_ready().await?;
        let validation =
            validate(self.http.get().map_err(ConnectError::Local)?, &config, &Credential::Token(token.clone())).await?;
        self.store_credential(
            keychain,
            stored.game_id,
            Some((stored.id, stored.credential_ref)),
            &config,
            StoredCredential::Token(token),
        )
        .await?;
        Ok(Saved { config_id, validation })
    }

    /// X after the OAuth flow: checks the token reaches an ad account, then saves the config
    /// for `pixel_id`. An existing X config of the game keeps its goal mappings (a reconnect).
    pub async fn save_x(
        &self,
        game_id: i64,
        pixel_id: &str,
        base_url: Option<String>,
        credential: StoredCredential,
    ) -> Result<Saved, ConnectError> {
        let pixel_id = formats::x_pixel_id(pixel_id).map_err(|m| InputError::new("pixel_id", m))?;
        let live = Credential::from(credential.clone());
        let keychain = self.keychain_ready().await?;
        let existing = self.store.config_for(game_id, Network::X).await?;
        // No goals here: an update keeps the config's goal mappings as they are.
        let config =
            PostbackConfig::X(crate::model::XConfig { pixel_id: pixel_id.clone(), goals: Vec::new(), base_url });
        let mut validation = validate(self.http.get().map_err(ConnectError::Local)?, &config, &live).await?;
        let previous_pixel = existing.as_ref().map(|c| c.config.pixel().to_owned());
        let config_id = self
            .store_credential(keychain, game_id, existing.map(|c| (c.id, c.credential_ref)), &config, credential)
            .await?;
        // X tags are per pixel (tw-<pixel>-…): another pixel's tags would all be refused.
        if previous_pixel.is_some_and(|p| p != pixel_id) {
            let cleared = self.store.clear_foreign_tags(config_id, &pixel_id).await?;
            if cleared > 0 {
                validation.message.push_str(&format!(
                    ". The {cleared} event tags of the previous pixel were cleared: map the goals to pixel {pixel_id}'s Single Event Tags"
                ));
            }
        }
        Ok(Saved { config_id, validation })
    }

    /// Removes the config (its queue goes with it), then its keychain entry. In this order a
    /// failure never leaves a config pointing at a removed entry; a keychain that refuses the
    /// removal is reported, with the config already gone. Conversions still waiting to be
    /// delivered are discarded only when `discard_queued` says so; otherwise the refusal says
    /// how many there are.
    pub async fn disconnect(&self, config_id: i64, discard_queued: bool) -> Result<(), ConnectError> {
        let stored = self.store.config(config_id).await?;
        let pending = self.store.pending_count(config_id).await?;
        if pending > 0 && !discard_queued {
            return Err(ConnectError::QueuedEvents { network: stored.config.network(), count: pending });
        }
        self.store.delete_config(config_id).await?;
        if let Some(reference) = stored.credential_ref.filter(|r| r != crate::SANDBOX_CREDENTIAL_REF) {
            let keychain = self.keychain()?;
            secrets::blocking(keychain, move |k| k.delete(&reference)).await?;
        }
        Ok(())
    }

    async fn store_credential(
        &self,
        keychain: Arc<dyn SecretStore>,
        game_id: i64,
        existing: Option<(i64, Option<String>)>,
        config: &PostbackConfig,
        credential: StoredCredential,
    ) -> Result<i64, ConnectError> {
        let reference = new_credential_ref(config.network(), game_id);
        let (key, value) = (reference.clone(), credential.to_keychain_value());
        secrets::blocking(keychain.clone(), move |k| k.set(&key, &value)).await?;
        let saved = match &existing {
            Some((config_id, _)) => self.store.update_config(*config_id, config, &reference).await.map(|()| *config_id),
            None => self.store.create_config(game_id, config, Some(&reference)).await,
        };
        let config_id = match saved {
            Ok(id) => id,
            Err(e) => {
                let key = reference.clone();
                let _ = secrets::blocking(keychain, move |k| k.delete(&key)).await;
                return Err(e.into());
            }
        };
        if let Some(old) = existing.and_then(|(_, r)| r).filter(|r| r != crate::SANDBOX_CREDENTIAL_REF) {
            // Best effort: a leftover entry is harmless, the config no longer points at it.
            let _ = secrets::blocking(keychain, move |k| k.delete(&old)).await;
        }
        Ok(config_id)
    }
}
