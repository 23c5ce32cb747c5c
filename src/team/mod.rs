//! The team workspace: desktops and server workers on one PostgreSQL database. Its key pair
//! (`key.rs`) seals the ad networks' credentials for the workers (`sealed_secrets.rs`);
//! `workspace init` creates it and `workspace status` shows the workers (`workspace.rs`).

mod key;
pub mod known;
mod sealed_secrets;
mod workspace;

pub use key::{WorkspaceKey, WorkspacePublicKey};
pub use sealed_secrets::{NoWorkspaceKey, SealedSecrets};
pub use workspace::{
    attach_workers, first_game, hold_of, init, public_key, running_workers, status, ConfigStatus, TeamStatus,
    WorkerStatus, UNATTENDED_AFTER_MS,
};

use crate::model::ApiError;
use crate::store::StoreError;

/// The setting that holds the workspace's public key (hex).
pub const PUBLIC_KEY_SETTING: &str = "workspace_public_key";

#[derive(Debug, thiserror::Error)]
pub enum TeamError {
    #[error("could not seal the credential (no randomness from the OS)")]
    Seal,
    #[error("a sealed credential does not open with this key file: it was sealed for another workspace or damaged; reconnect the account")]
    Unsealable,
    #[error("the workspace key file is unreadable: {0}")]
    KeyFileUnreadable(&'static str),
    #[error("workspace key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error(
        "{0} exists: a key file is never replaced (it may be the only one that opens a workspace); choose another path"
    )]
    KeyFileExists(String),
    #[error(
        "this database is not a team workspace yet: run `postback workspace init --database URL --key-file PATH` once"
    )]
    NotInitialised,
    #[error("this database is a team workspace already (public key {0}); its workers use the key file made then")]
    AlreadyInitialised(String),
    #[error("the key file belongs to another workspace (its public key is {file}, the database's is {database}); use the key file made by `workspace init` for this database")]
    WrongKey { file: String, database: String },
    #[error("a team workspace lives in PostgreSQL: give --database URL (or POSTBACK_DATABASE_URL)")]
    NotTeam,
    #[error("write the database as postgres://USER:PASSWORD@HOST:5432/DATABASE (add ?sslmode=verify-full for TLS)")]
    BadUrl,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TeamError> for ApiError {
    fn from(e: TeamError) -> Self {
        match e {
            TeamError::Store(inner) => inner.into(),
            other => ApiError::new("team_workspace", other.to_string()),
        }
    }
}
