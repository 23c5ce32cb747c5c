//! Where a command's data lives: the data directory (its SQLite file, the writer lock, private
//! files such as import errors) and, with `--database URL` / `POSTBACK_DATABASE_URL`, a
//! PostgreSQL database that holds the store instead of the file.

use std::fmt;
use std::path::PathBuf;

use crate::store::{Store, StoreError, StoreOptions};

#[derive(Debug, Clone)]
pub struct Workspace {
    pub data_dir: PathBuf,
    /// A `postgres://` URL; `None` is the data directory's SQLite file.
    pub database: Option<String>,
}

impl Workspace {
    /// The workspace's store, with pending migrations applied.
    pub async fn open_store(&self) -> Result<Store, StoreError> {
        match &self.database {
            Some(url) => Store::open_postgres(url, StoreOptions::default()).await,
            None => Store::open(&self.data_dir).await,
        }
    }

    /// Whether this process is the only one that may deliver from it (the SQLite file), so
    /// that the data directory's writer lock applies.
    pub fn is_embedded(&self) -> bool {
        self.database.is_none()
    }
}

/// How a command names the workspace to the user: never with the database's password.
impl fmt::Display for Workspace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.database {
            None => write!(f, "data in {}", self.data_dir.display()),
            Some(url) => match url::Url::parse(url) {
                Ok(url) => write!(
                    f,
                    "PostgreSQL database {} on {}",
                    url.path().trim_start_matches('/'),
                    url.host_str().unwrap_or("the local socket")
                ),
                Err(_) => f.write_str("a PostgreSQL database"),
            },
        }
    }
}
