//! Connecting X from the app: authorise in the browser first, then (X has no pixel discovery)
//! ask for the pixel id. Tokens wait in memory between the two steps, never in the UI.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::input::XAuthMethod;
use super::ConnectError;
use crate::oauth::oauth1::{self, ConsumerKeys};
use crate::oauth::pkce::{self, OAuth2App};
use crate::oauth::{Browser, XOAuthEndpoints, X_OAUTH2_SCOPES};
use crate::secrets::StoredCredential;

/// The loopback callback port for the real X: register `http://127.0.0.1:47812/callback` as a
/// callback URL of the X app. The sandbox accepts any port.
pub const X_CALLBACK_PORT: u16 = 47812;

/// How long authorised tokens wait for the pixel id.
const PENDING_TTL: Duration = Duration::from_secs(15 * 60);

/// Runs the chosen flow against X (or the sandbox at `base_url`).
pub async fn authorize(
    http: &reqwest::Client,
    base_url: Option<&str>,
    method: &XAuthMethod,
    browser: &dyn Browser,
    timeout: Duration,
) -> Result<StoredCredential, ConnectError> {
    method.check()?;
    let endpoints = XOAuthEndpoints::for_base(base_url);
    let port = if base_url.is_some() { 0 } else { X_CALLBACK_PORT };
    Ok(match method {
        XAuthMethod::OAuth1 { consumer_key, consumer_secret } => {
            let consumer = ConsumerKeys { key: consumer_key.trim().to_owned(), secret: consumer_secret.clone() };
            StoredCredential::XOAuth1(oauth1::connect(http, &endpoints, &consumer, browser, port, timeout).await?)
        }
        XAuthMethod::OAuth2 { client_id, client_secret } => {
            let app = OAuth2App {
                client_id: client_id.trim().to_owned(),
                client_secret: client_secret.clone().filter(|s| !s.expose().trim().is_empty()),
            };
            StoredCredential::XOAuth2(
                pkce::connect(http, &endpoints, &app, &X_OAUTH2_SCOPES, browser, port, timeout).await?,
            )
        }
    })
}

struct Pending {
    game_id: i64,
    base_url: Option<String>,
    credential: StoredCredential,
    at: Instant,
}

/// Authorised X credentials waiting for their pixel id, by a random handle.
#[derive(Default)]
pub struct PendingConnections {
    waiting: Mutex<HashMap<String, Pending>>,
}

impl PendingConnections {
    /// Keeps the credential for `game_id`; returns the handle the UI sends back with the pixel id.
    pub fn hold(&self, game_id: i64, base_url: Option<String>, credential: StoredCredential) -> String {
        let handle = format!("{:032x}", fastrand::u128(..));
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        waiting.retain(|_, p| p.at.elapsed() < PENDING_TTL);
        waiting.insert(handle.clone(), Pending { game_id, base_url, credential, at: Instant::now() });
        handle
    }

    /// The API base and credential for the handle (it stays held until [`Self::forget`], so a mistyped pixel
    /// id can be corrected without authorising again).
    pub fn get(&self, handle: &str, game_id: i64) -> Option<(Option<String>, StoredCredential)> {
        let waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        waiting
            .get(handle)
            .filter(|p| p.game_id == game_id && p.at.elapsed() < PENDING_TTL)
            .map(|p| (p.base_url.clone(), p.credential.clone()))
    }

    pub fn forget(&self, handle: &str) {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).remove(handle);
    }
}

/// An unknown or expired handle.
pub fn expired() -> ConnectError {
    ConnectError::Refused {
        field: "connection".into(),
        message: "the X authorisation has expired (15 minutes) or was already used; click Connect X again".into(),
    }
}
