//! The ingest API's bearer token: one per data directory, generated on first use and kept in
//! the OS keychain (never in SQLite); `postback serve --ingest` may take it from
//! `POSTBACK_INGEST_TOKEN` instead.

use std::sync::Arc;

use crate::secrets::{self, Secret, SecretStore, SecretsError};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Keychain(#[from] SecretsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A team workspace keeps its token as a keyed hash only.
    #[error(
        "a team workspace's ingest token is kept only as a keyed hash: it was shown once, when it was made; \
         rotate it to get a new one (the old one then stops working)"
    )]
    ShownOnce,
}

/// The keychain entry of this data directory's token.
async fn entry_name(store: &Store) -> Result<String, StoreError> {
    let id = match store.meta("instance_id").await? {
        Some(id) => id,
        None => {
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes).map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
            store.set_meta_once("instance_id", &hex::encode(bytes)).await?
        }
    };
    Ok(format!("ingest-{id}"))
}

fn fresh() -> Result<Secret, TokenError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
    Ok(Secret::new(format!("pbd_{}", hex::encode(bytes))))
}

/// The data directory's token, created on first use.
pub async fn load_or_create(store: &Store, keychain: Arc<dyn SecretStore>) -> Result<Secret, TokenError> {
    let name = entry_name(store).await?;
    let key = name.clone();
    if let Some(token) = secrets::blocking(keychain.clone(), move |k| k.get(&key)).await? {
        return Ok(token);
    }
    let token = fresh()?;
    let (key, value) = (name, token.clone());
    secrets::blocking(keychain, move |k| k.set(&key, &value)).await?;
    Ok(token)
}

/// A new token; the old one stops working when the ingest restarts with it.
pub async fn rotate(store: &Store, keychain: Arc<dyn SecretStore>) -> Result<Secret, TokenError> {
    let name = entry_name(store).await?;
    let token = fresh()?;
    let (key, value) = (name, token.clone());
    secrets::blocking(keychain, move |k| k.set(&key, &value)).await?;
    Ok(token)
}

/// A team workspace's ingest token is kept as a keyed hash (HMAC-SHA256 under
/// [`SHARED_HASH_KEY`]), never in clear: every worker checks a request against it, a
/// desktop or `workspace ingest-token --rotate` sets a new one and shows it once.
const SHARED_HASH: &str = "ingest_token_hash";
const SHARED_HASH_KEY: &str = "ingest_token_key";

fn keyed_hash(key_hex: &str, token: &str) -> Option<String> {
    use hmac::{Hmac, Mac};
    let key = hex::decode(key_hex).ok()?;
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).ok()?;
    mac.update(token.as_bytes());
    Some(hex::encode(mac.finalize().into_bytes()))
}

/// A new ingest token for a shared (team) workspace: its keyed hash replaces the old one in
/// the database (workers follow within [`SHARED_RECHECK`]); the token itself is returned to be
/// shown once.
pub async fn rotate_shared(store: &Store) -> Result<Secret, TokenError> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
    let key = store.set_meta_once(SHARED_HASH_KEY, &hex::encode(key)).await?;
    let token = fresh()?;
    let hash = keyed_hash(&key, token.expose())
        .ok_or_else(|| StoreError::Corrupt("the ingest token's hash key is damaged".into()))?;
    store.set_meta(SHARED_HASH, &hash).await?;
    Ok(token)
}

/// How often a worker re-reads a shared token's hash, so a rotation reaches it.
pub const SHARED_RECHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// What the ingest accepts as `Authorization: Bearer …`.
pub enum IngestAuth {
    /// One token in memory (a desktop's own, or `POSTBACK_INGEST_TOKEN`).
    Token(Secret),
    /// A team workspace's token, checked against its keyed hash in the database.
    Shared { store: Store, hash: tokio::sync::Mutex<Option<SharedHash>> },
    /// Either one: a desktop's own ingest on a team workspace takes the workspace's token and
    /// its keychain token (which its demo generator sends).
    Either(Box<IngestAuth>, Box<IngestAuth>),
}

/// A shared token's (hash key, keyed hash) as last read — `None` when there was none — and
/// when it was read.
type SharedHash = (Option<(String, String)>, std::time::Instant);

impl IngestAuth {
    pub fn shared(store: Store) -> Self {
        IngestAuth::Shared { store, hash: tokio::sync::Mutex::new(None) }
    }

    /// Whether a shared workspace has a token yet (`workspace ingest-token --rotate` makes one).
    pub async fn shared_token_exists(store: &Store) -> Result<bool, StoreError> {
        Ok(store.meta(SHARED_HASH).await?.is_some())
    }

    /// Whether `given` is the token; constant time in what it compares.
    pub async fn accepts(&self, given: &str) -> bool {
        self.check(given).await == Verdict::Accepted
    }

    /// Whether `given` is the token, or that it cannot be told now (a team workspace's hash
    /// could never be read from its database).
    pub async fn check(&self, given: &str) -> Verdict {
        match self {
            IngestAuth::Either(a, b) => match Box::pin(a.check(given)).await {
                Verdict::Accepted => Verdict::Accepted,
                first => match Box::pin(b.check(given)).await {
                    Verdict::Refused => first,
                    second => second,
                },
            },
            IngestAuth::Token(token) => Verdict::of(same(given.as_bytes(), token.expose().as_bytes())),
            IngestAuth::Shared { store, hash } => {
                let mut cached = hash.lock().await;
                let stale = cached.as_ref().is_none_or(|(_, read)| read.elapsed() >= SHARED_RECHECK);
                if stale {
                    let read = async {
                        Ok::<_, StoreError>((store.meta(SHARED_HASH_KEY).await?, store.meta(SHARED_HASH).await?))
                    };
                    match read.await {
                        Ok((Some(key), Some(hash))) => *cached = Some((Some((key, hash)), std::time::Instant::now())),
                        Ok(_) => *cached = Some((None, std::time::Instant::now())),
                        // A database that cannot be read keeps the last hash it gave.
                        Err(e) => {
                            tracing::warn!(error = %e, "the workspace's ingest token could not be read");
                            if cached.is_none() {
                                return Verdict::Unknown(e.to_string());
                            }
                        }
                    }
                }
                let Some((Some((key, expected)), _)) = cached.as_ref() else { return Verdict::Refused };
                Verdict::of(keyed_hash(key, given).is_some_and(|h| same(h.as_bytes(), expected.as_bytes())))
            }
        }
    }
}

/// What a token check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Refused,
    /// The token cannot be checked now (why).
    Unknown(String),
}

impl Verdict {
    fn of(accepted: bool) -> Self {
        if accepted {
            Verdict::Accepted
        } else {
            Verdict::Refused
        }
    }
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
