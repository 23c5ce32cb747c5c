//! Creating a team workspace and reporting on it: what `postback workspace init` and
//! `postback workspace status` (and the window's team view) call.

use std::path::Path;

use serde::Serialize;

use super::{TeamError, WorkspaceKey, WorkspacePublicKey, PUBLIC_KEY_SETTING};
use crate::model::{ConfigSummary, WorkerHold};
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
            // The write may have committed before the connection failed: the file goes only
            // when the database names no key, or another one.
            match store.meta(PUBLIC_KEY_SETTING).await {
                Ok(Some(hex)) if hex == public.to_hex() => Ok(public),
                Ok(_) => {
                    let _ = std::fs::remove_file(key_file);
                    Err(e.into())
                }
                Err(_) => Err(TeamError::KeyFile {
                    path: key_file.display().to_string(),
                    reason: format!(
                        "kept: the database could not say whether it took this key ({e}); run `workspace status`: \
                         if it shows the key in the file's first line, the file is this workspace's, else delete it"
                    ),
                }),
            }
        }
    }
}

/// A worker of the workspace (host, version, started, last seen, running now).
pub type WorkerStatus = crate::store::WorkerRow;

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
    Ok(TeamStatus { public_key: public.to_hex(), workers: rows.workers, configs })
}

/// A config without a delivering worker for this long is a health warning on its card.
pub const UNATTENDED_AFTER_MS: i64 = 60_000;

/// What a config's card says about its worker: who holds it, and whether nobody has delivered
/// it for over a minute (its worker gone that long, or no worker running at all).
pub fn hold_of(holder: Option<&crate::store::ConfigHolder>, workers_running: bool, now_ms: i64) -> WorkerHold {
    let live = holder.is_some_and(|h| h.live);
    let gone_since = holder.and_then(|h| h.last_seen_ms.or(Some(h.since_ms)));
    let unattended = !live
        && match gone_since {
            Some(at) => now_ms - at > UNATTENDED_AFTER_MS,
            // Never taken: a running worker takes it within seconds.
            None => !workers_running,
        };
    WorkerHold { host: holder.and_then(|h| h.host.clone()), since_ms: holder.map(|h| h.since_ms), live, unattended }
}

/// Fills in each config's worker on a team workspace (a local workspace's cards have none).
pub async fn attach_workers(store: &Store, rows: &mut [ConfigSummary], now_ms: i64) -> Result<(), TeamError> {
    if store.engine_name() != "postgres" {
        return Ok(());
    }
    let status = store.team_status().await?;
    let running = status.workers.iter().any(|w| w.live);
    for row in rows.iter_mut() {
        if let Some(config_id) = row.config_id {
            row.worker = Some(hold_of(status.holders.iter().find(|h| h.config_id == config_id), running, now_ms));
        }
    }
    Ok(())
}

/// How many of the team's workers run now.
pub async fn running_workers(store: &Store) -> Result<u32, TeamError> {
    let status = store.team_status().await?;
    Ok(u32::try_from(status.workers.iter().filter(|w| w.live).count()).unwrap_or(u32::MAX))
}

/// The name of the game a window makes on a team workspace that has none yet (the local
/// workspace's first game is the sandbox demo; a team's is its own).
pub const FIRST_GAME_NAME: &str = "First game";

/// The current game of a team workspace, made (empty) when it has no game yet.
pub async fn first_game(store: &Store) -> Result<crate::model::Game, TeamError> {
    if let Some(game) = store.current_game().await? {
        return Ok(game);
    }
    match store.create_game(FIRST_GAME_NAME).await {
        Ok(game) => Ok(game),
        // Another desktop made it meanwhile.
        Err(crate::store::StoreError::GameExists(_)) => {
            store.current_game().await?.ok_or(TeamError::Store(crate::store::StoreError::GameNotFound(0)))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ConfigHolder;

    fn holder(live: bool, since_ms: i64, last_seen_ms: Option<i64>) -> ConfigHolder {
        ConfigHolder { config_id: 1, host: Some("w1".into()), since_ms, live, last_seen_ms }
    }

    #[test]
    fn a_config_is_unattended_after_a_minute_without_a_worker() {
        let now = 1_000_000;
        assert!(!hold_of(Some(&holder(true, 0, Some(0))), true, now).unattended, "held now");
        assert!(!hold_of(Some(&holder(false, 0, Some(now - 30_000))), true, now).unattended, "gone 30 s");
        assert!(hold_of(Some(&holder(false, 0, Some(now - 61_000))), false, now).unattended, "gone over a minute");
        assert!(!hold_of(None, true, now).unattended, "never taken, a worker runs: it takes it within seconds");
        assert!(hold_of(None, false, now).unattended, "never taken and no worker runs");
        let shown = hold_of(Some(&holder(true, 5, Some(now))), true, now);
        assert_eq!((shown.host.as_deref(), shown.since_ms, shown.live), (Some("w1"), Some(5), true));
    }
}
