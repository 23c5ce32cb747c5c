//! Creating a team workspace and reporting on it: what `postback workspace init` and
//! `postback workspace status` (and the window's team view) call.

use std::path::Path;

use serde::Serialize;

use super::{TeamError, WorkspaceKey, WorkspacePublicKey, PUBLIC_KEY_SETTING};
use crate::store::Store;

/// The workspace's public key; [`TeamError::NotInitialised`] before `workspace init`.
pub async fn public_key(store: &Store) -> Result<WorkspacePublicKey, TeamError> {
    if store.engine_name() != "postgres" {
        return Err(TeamError::NotTeam);
    }
    let stored = store.meta(PUBLIC_KEY_SETTING).await?.ok_or(TeamError::NotInitialised)?;
    WorkspacePublicKey::from_hex(&stored).ok_or(TeamError::NotInitialised)
}

/// Makes the database a team workspace: a new key pair, the private key written to
/// `key_file` (0600, never replacing a file), the public key into the database. Once only.
pub async fn init(store: &Store, key_file: &Path) -> Result<WorkspacePublicKey, TeamError> {
    match public_key(store).await {
        Ok(existing) => return Err(TeamError::AlreadyInitialised(existing.to_hex())),
        Err(TeamError::NotInitialised) => {}
        Err(other) => return Err(other),
    }
    let key = WorkspaceKey::generate();
    let public = key.public_key();
    // The file first: a database that names a public key whose private key was never saved
    // could seal credentials nobody can open.
    key.write_new_file(key_file)?;
    let standing = store.set_meta_once(PUBLIC_KEY_SETTING, &public.to_hex()).await;
    match standing {
        Ok(hex) if hex == public.to_hex() => Ok(public),
        Ok(other) => {
            // Another process initialised it in between: this key opens nothing.
            let _ = std::fs::remove_file(key_file);
            Err(TeamError::AlreadyInitialised(other))
        }
        Err(e) => {
            let _ = std::fs::remove_file(key_file);
            Err(e.into())
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerStatus {
    pub host: String,
    pub version: String,
    pub started_at_ms: i64,
    pub last_seen_ms: i64,
    pub live: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigStatus {
    pub config_id: i64,
    pub game: String,
    pub network: String,
    /// The worker that delivers it now; `None` when none does.
    pub delivered_by: Option<String>,
    /// Since when that worker (or, with none, the last one) held it.
    pub since_ms: Option<i64>,
    pub queued: u64,
    pub paused_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeamStatus {
    pub public_key: String,
    pub workers: Vec<WorkerStatus>,
    pub configs: Vec<ConfigStatus>,
}

/// The workers (live first), each config with who delivers it and what waits.
pub async fn status(store: &Store) -> Result<TeamStatus, TeamError> {
    let public = public_key(store).await?;
    let rows = store.team_status().await?;
    let mut configs = Vec::new();
    for game in store.games().await? {
        for config in store.configs(game.id).await? {
            let holder = rows.holders.iter().find(|h| h.config_id == config.id);
            configs.push(ConfigStatus {
                config_id: config.id,
                game: game.name.clone(),
                network: config.config.network().as_str().to_owned(),
                delivered_by: holder.filter(|h| h.live).map(|h| h.host.clone().unwrap_or_else(|| "a worker".into())),
                since_ms: holder.map(|h| h.since_ms),
                queued: store.pending_count(config.id).await?,
                paused_reason: config.paused_reason.clone(),
            });
        }
    }
    let workers = rows
        .workers
        .into_iter()
        .map(|w| WorkerStatus {
            host: w.host,
            version: w.version,
            started_at_ms: w.started_at_ms,
            last_seen_ms: w.last_seen_ms,
            live: w.live,
        })
        .collect();
    Ok(TeamStatus { public_key: public.to_hex(), workers, configs })
}
