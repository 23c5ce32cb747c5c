//! `postback workspace …`: make a PostgreSQL database a team workspace, show its workers and
//! who delivers what, and rotate its ingest token.

use super::{CliResult, Workspace};
use crate::team::{self, TeamStatus};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum WorkspaceCommand {
    /// Make the --database a team workspace: a key pair whose private key goes to --key-file
    /// (mode 0600; the workers read it) and whose public key goes into the database
    Init,
    /// Workers (host, version, last seen), each config with the worker that delivers it, and
    /// what waits
    Status {
        /// One JSON document instead of the table
        #[arg(long)]
        json: bool,
    },
    /// The ingest token every worker of the team workspace accepts
    IngestToken {
        /// Make a new one (the old one stops working within seconds) and print it: it is kept
        /// only as a keyed hash, so this is the one time it is shown
        #[arg(long, required = true)]
        rotate: bool,
    },
}

pub async fn workspace_command(workspace: &Workspace, command: WorkspaceCommand) -> CliResult {
    if workspace.is_embedded() {
        return Err(team::TeamError::NotTeam.to_string());
    }
    let store = workspace.open_store().await.map_err(|e| e.to_string())?;
    let outcome = match command {
        WorkspaceCommand::Init => init(workspace, &store).await,
        WorkspaceCommand::Status { json } => status(&store, json).await,
        WorkspaceCommand::IngestToken { .. } => rotate_ingest_token(&store).await,
    };
    store.close().await;
    outcome
}

async fn init(workspace: &Workspace, store: &crate::store::Store) -> CliResult {
    let path = workspace.key_file.as_deref().ok_or(
        "give --key-file PATH (or POSTBACK_WORKSPACE_KEY): where to write the workspace's private key for the workers",
    )?;
    let public = team::init(store, path).await.map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::json!({"workspace": workspace.to_string(), "public_key": public.to_hex(),
                           "key_file": path.display().to_string()})
    );
    eprintln!(
        "The private key is in {} (mode 0600). Copy it to each worker and start them with \
         --key-file; keep no other copy where the database's users can read it.",
        path.display()
    );
    Ok(())
}

async fn rotate_ingest_token(store: &crate::store::Store) -> CliResult {
    let token = crate::ingest::token::rotate_shared(store).await.map_err(|e| e.to_string())?;
    println!("{}", token.expose());
    eprintln!(
        "The workers accept this token within {} s; the old one no longer. It is shown only now: give it to the game backends.",
        crate::ingest::token::SHARED_RECHECK.as_secs()
    );
    Ok(())
}

async fn status(store: &crate::store::Store, json: bool) -> CliResult {
    let status = team::status(store).await.map_err(|e| e.to_string())?;
    if json {
        println!("{}", serde_json::to_string(&status).map_err(|e| e.to_string())?);
    } else {
        print!("{}", status_table(&status, crate::delivery::now_ms()));
    }
    Ok(())
}

/// The status as text: workers, then configs.
fn status_table(status: &TeamStatus, now_ms: i64) -> String {
    let ago = |at: i64| match (now_ms - at).max(0) / 1000 {
        s if s < 60 => format!("{s} s ago"),
        s if s < 3600 => format!("{} min ago", s / 60),
        s => format!("{} h ago", s / 3600),
    };
    let mut out = format!("Workspace key {}\n\nWorkers\n", status.public_key);
    if status.workers.is_empty() {
        out.push_str("  none has run yet: start one with `postback serve --key-file PATH`\n");
    }
    for w in &status.workers {
        let state = if w.live { "running".to_owned() } else { format!("gone, last seen {}", ago(w.last_seen_ms)) };
        out.push_str(&format!("  {:<32} {:<8} started {:<12} {state}\n", w.host, w.version, ago(w.started_at_ms)));
    }
    out.push_str("\nConfigs\n");
    for c in &status.configs {
        let by = match (&c.delivered_by, c.since_ms) {
            (Some(host), Some(since)) => format!("delivered by {host} since {}", ago(since)),
            _ => "no worker delivers it".to_owned(),
        };
        let paused = c.paused_reason.as_deref().map(|r| format!(", paused: {r}")).unwrap_or_default();
        out.push_str(&format!(
            "  #{:<4} {:<20} {:<7} {by}; {} queued{paused}\n",
            c.config_id, c.game, c.network, c.queued
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::team::{ConfigStatus, WorkerStatus};

    #[test]
    fn the_status_table_says_who_delivers_what() {
        let status = TeamStatus {
            public_key: "ab12".into(),
            workers: vec![
                WorkerStatus {
                    host: "w1".into(),
                    version: "0.1.0".into(),
                    started_at_ms: 0,
                    last_seen_ms: 110_000,
                    live: true,
                },
                WorkerStatus {
                    host: "w2".into(),
                    version: "0.1.0".into(),
                    started_at_ms: 0,
                    last_seen_ms: 60_000,
                    live: false,
                },
            ],
            configs: vec![
                ConfigStatus {
                    config_id: 3,
                    game: "Galaxy".into(),
                    network: "tiktok".into(),
                    delivered_by: Some("w1".into()),
                    since_ms: Some(90_000),
                    queued: 12,
                    paused_reason: None,
                },
                ConfigStatus {
                    config_id: 4,
                    game: "Galaxy".into(),
                    network: "x".into(),
                    delivered_by: None,
                    since_ms: None,
                    queued: 0,
                    paused_reason: Some("token revoked".into()),
                },
            ],
        };
        let table = status_table(&status, 120_000);
        assert!(table.contains("w1") && table.contains("running"), "{table}");
        assert!(table.contains("gone, last seen 1 min ago"), "{table}");
        assert!(table.contains("delivered by w1 since 30 s ago; 12 queued"), "{table}");
        assert!(table.contains("no worker delivers it; 0 queued, paused: token revoked"), "{table}");
    }
}
