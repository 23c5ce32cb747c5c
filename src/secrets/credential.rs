//! What one keychain entry holds, and its encoding there (a small JSON document).

use serde_json::{json, Value};

use super::{Secret, SecretsError};
use crate::model::Network;

/// X OAuth 1.0a user context: the studio's X app keys plus the user's access token (no expiry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth1Credentials {
    pub consumer_key: String,
    pub consumer_secret: Secret,
    pub token: String,
    pub token_secret: Secret,
}

/// X OAuth 2.0 user context: a 2-hour access token renewed with the refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2Credentials {
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub token_url: String,
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    /// Unix seconds; `None` when the server gave no lifetime.
    pub expires_at: Option<i64>,
}

/// A config's credential as stored in the keychain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredCredential {
    /// TikTok access token, Reddit conversion access token, or an X bearer token.
    Token(Secret),
    XOAuth1(OAuth1Credentials),
    XOAuth2(OAuth2Credentials),
}

/// A fresh keychain entry name for a config's credential: `tiktok-game3-9f2c…`. A rotation writes
/// a new entry before the old one is removed, so a crash never leaves a config without one.
pub fn new_credential_ref(network: Network, game_id: i64) -> String {
    format!("{}-game{game_id}-{:016x}", network.as_str(), fastrand::u64(..))
}

fn text(doc: &Value, key: &str) -> Option<String> {
    doc.get(key).and_then(Value::as_str).map(str::to_owned)
}

impl StoredCredential {
    /// The keychain value. The JSON is built here and nowhere else.
    pub fn to_keychain_value(&self) -> Secret {
        let doc = match self {
            StoredCredential::Token(token) => json!({"kind": "token", "token": token.expose()}),
            StoredCredential::XOAuth1(c) => json!({
                "kind": "x_oauth1", "consumer_key": c.consumer_key, "consumer_secret": c.consumer_secret.expose(),
                "token": c.token, "token_secret": c.token_secret.expose(),
            }),
            StoredCredential::XOAuth2(c) => json!({
                "kind": "x_oauth2", "client_id": c.client_id,
                "client_secret": c.client_secret.as_ref().map(Secret::expose),
                "token_url": c.token_url, "access_token": c.access_token.expose(),
                "refresh_token": c.refresh_token.as_ref().map(Secret::expose), "expires_at": c.expires_at,
            }),
        };
        Secret::new(doc.to_string())
    }

    pub fn from_keychain_value(reference: &str, value: &Secret) -> Result<Self, SecretsError> {
        let unreadable = || SecretsError::Unreadable(reference.to_owned());
        let doc: Value = serde_json::from_str(value.expose()).map_err(|_| unreadable())?;
        let need = |key: &str| text(&doc, key).ok_or_else(unreadable);
        match doc.get("kind").and_then(Value::as_str) {
            Some("token") => Ok(StoredCredential::Token(need("token")?.into())),
            Some("x_oauth1") => Ok(StoredCredential::XOAuth1(OAuth1Credentials {
                consumer_key: need("consumer_key")?,
                consumer_secret: need("consumer_secret")?.into(),
                token: need("token")?,
                token_secret: need("token_secret")?.into(),
            })),
            Some("x_oauth2") => Ok(StoredCredential::XOAuth2(OAuth2Credentials {
                client_id: need("client_id")?,
                client_secret: text(&doc, "client_secret").map(Secret::from),
                token_url: need("token_url")?,
                access_token: need("access_token")?.into(),
                refresh_token: text(&doc, "refresh_token").map(Secret::from),
                expires_at: doc.get("expires_at").and_then(Value::as_i64),
            })),
            _ => Err(unreadable()),
        }
    }

    /// Which networks this kind of credential can serve.
    pub fn fits(&self, network: Network) -> bool {
        matches!(
            (self, network),
            (StoredCredential::Token(_), _) | (StoredCredential::XOAuth1(_) | StoredCredential::XOAuth2(_), Network::X)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keychain_value_round_trips_every_kind() {
        let kinds = [
            StoredCredential::Token("t1".into()),
            StoredCredential::XOAuth1(OAuth1Credentials {
                consumer_key: "ck".into(),
                consumer_secret: "cs".into(),
                token: "tk".into(),
                token_secret: "ts".into(),
            }),
            StoredCredential::XOAuth2(OAuth2Credentials {
                client_id: "cid".into(),
                client_secret: None,
                token_url: "http://127.0.0.1:1/2/oauth2/token".into(),
                access_token: "at".into(),
                refresh_token: Some("rt".into()),
                expires_at: Some(1_800_000_000),
            }),
        ];
        for kind in kinds {
            let value = kind.to_keychain_value();
            assert_eq!(StoredCredential::from_keychain_value("r", &value), Ok(kind));
        }
        let garbage = Secret::new("not json");
        assert_eq!(StoredCredential::from_keychain_value("r", &garbage), Err(SecretsError::Unreadable("r".into())));
    }
}
