//! Connecting accounts: save-time validation, and the credential lifecycle of a config
//! (connect, rotate, reconnect, disconnect) across the OS keychain and SQLite.

mod input;
mod service;
pub mod validate;
pub mod x;

pub use input::{TokenIntegrationInput, XAuthMethod};
pub use service::{Connector, Saved};
pub use validate::{clean_token, validate, Validation};

use crate::model::{ApiError, InputError};
use crate::oauth::OAuthError;
use crate::secrets::SecretsError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Input(#[from] InputError),
    /// The network refused; `field` is what to fix. Nothing was saved.
    #[error("{message}")]
    Refused { field: String, message: String },
    #[error("could not complete the check ({0}); nothing was saved — try again in a minute")]
    Unreachable(String),
    #[error(transparent)]
    Keychain(#[from] SecretsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    /// A team workspace's key or sealed credentials.
    #[error(transparent)]
    Team(#[from] crate::team::TeamError),
    /// The local database could not be opened.
    #[error("{0}")]
    Local(String),
    /// Disconnecting would discard conversions that were not delivered yet.
    #[error("{count} conversions for {} are still waiting to be delivered; disconnecting discards them — confirm to discard them (CLI: --discard-queued), or wait until they are sent", .network.display_name())]
    QueuedEvents { network: crate::model::Network, count: u64 },
}

impl From<ConnectError> for ApiError {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::Input(e) => e.into(),
            ConnectError::Refused { field, message } => ApiError::new("validation_failed", message).on_field(&field),
            ConnectError::Unreachable(_) => ApiError::new("network_unreachable", e.to_string()),
            ConnectError::Keychain(e) => e.into(),
            ConnectError::Store(e) => e.into(),
            ConnectError::OAuth(e) => e.into(),
            ConnectError::Team(e) => e.into(),
            ConnectError::Local(m) => ApiError::new("storage", m),
            ConnectError::QueuedEvents { .. } => ApiError::new("queued_events", e.to_string()),
        }
    }
}
