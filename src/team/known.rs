//! The team workspaces a desktop knows and which workspace it opens: `workspaces.json` in the
//! data directory (0600) names them; each one's database URL, which holds its password, is in
//! the OS keychain under [`url_entry`], never in a file.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::TeamError;
use crate::store::Store;

const FILE: &str = "workspaces.json";

/// A team workspace this desktop has opened before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct KnownTeam {
    /// Random; names the keychain entry of its URL.
    pub id: String,
    /// What the user called it ("Studio team").
    pub name: String,
    /// Where it is, without credentials ("postback on db.studio.lan").
    pub place: String,
}

/// What the window's workspace switcher shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct WorkspaceList {
    pub current: crate::model::WorkspaceView,
    pub teams: Vec<KnownTeam>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownWorkspaces {
    /// The team workspace the app opens; `None`: the local workspace.
    #[serde(default)]
    pub open: Option<String>,
    #[serde(default)]
    pub teams: Vec<KnownTeam>,
}

/// The keychain entry that holds a team workspace's database URL.
pub fn url_entry(id: &str) -> String {
    format!("team-database-{id}")
}

/// Where a database URL points, for the window: its database and host, never its password.
pub fn place_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{} on {}",
            u.path().trim_start_matches('/'),
            u.host_str().filter(|h| !h.is_empty()).unwrap_or("the local socket")
        ),
        Err(_) => "a PostgreSQL database".to_owned(),
    }
}

impl KnownWorkspaces {
    /// What `data_dir` says; nothing known when there is no file or it is unreadable (the
    /// app then opens its local workspace, which is always there).
    pub fn load(data_dir: &Path) -> Self {
        match std::fs::read(data_dir.join(FILE)) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "workspaces.json is unreadable; opening the local workspace");
                Self::default()
            }),
            Err(_) => Self::default(),
        }
    }

    /// Writes the file whole (a temporary file renamed over it, so a crash keeps the old one).
    pub fn save(&self, data_dir: &Path) -> std::io::Result<()> {
        use std::io::Write;
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let temporary = data_dir.join(format!("{FILE}.new"));
        let mut file = crate::private_files::create(&temporary)?;
        file.write_all(&text)?;
        file.sync_all()?;
        std::fs::rename(&temporary, data_dir.join(FILE))
    }

    pub fn team(&self, id: &str) -> Option<&KnownTeam> {
        self.teams.iter().find(|t| t.id == id)
    }
}

/// A fresh id for a team workspace entry.
pub fn new_id() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// Opens a team workspace's database for a desktop: reachable, and made a team workspace
/// (`workspace init`) — else an error that says which.
pub async fn open_team_store(url: &str) -> Result<Store, TeamError> {
    let parsed = url::Url::parse(url.trim()).map_err(|_| TeamError::BadUrl)?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Err(TeamError::BadUrl);
    }
    let store = Store::open_postgres(url.trim(), crate::store::StoreOptions::default()).await?;
    if let Err(e) = super::public_key(&store).await {
        store.close().await;
        return Err(e);
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_known_workspaces_round_trip_privately_and_name_no_password() {
        let dir = tempfile::tempdir().expect("dir");
        assert_eq!(KnownWorkspaces::load(dir.path()), KnownWorkspaces::default());
        let known = KnownWorkspaces {
            open: Some("ab".into()),
            teams: vec![KnownTeam {
                id: "ab".into(),
                name: "Studio".into(),
                place: place_of("postgres://u:secret@db.lan:5432/pb"),
            }],
        };
        known.save(dir.path()).expect("save");
        assert_eq!(KnownWorkspaces::load(dir.path()), known);
        let text = std::fs::read_to_string(dir.path().join(FILE)).expect("read");
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("pb on db.lan"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FILE)).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        std::fs::write(dir.path().join(FILE), "{not json").expect("write");
        assert_eq!(KnownWorkspaces::load(dir.path()), KnownWorkspaces::default(), "unreadable: the local one");
    }
}
