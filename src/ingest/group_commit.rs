//! Group commit for the ingest API: concurrent requests' events are accepted together, in one
//! synced transaction per game, by a single task. A synced commit costs a few milliseconds
//! whatever it holds, so one per request would cap the API at a few hundred requests a second
//! and make concurrent requests queue on SQLite's write lock; together they share it. Each
//! request still hears only after the commit that made its events durable, and a failed commit
//! fails every request in it as a whole (nothing of theirs was accepted).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{accept, Accepted, Source};
use crate::model::ConversionEvent;
use crate::store::{Store, StoreError};

/// Events per group at most: a group is one transaction.
const MAX_GROUP_EVENTS: usize = 5000;

/// One request's valid events, waiting for a commit.
pub struct Job {
    /// The game named by the request; the current game when `None`.
    pub game: Option<i64>,
    pub events: Vec<ConversionEvent>,
    pub source: Source,
    pub reply: oneshot::Sender<Result<Committed, CommitError>>,
}

/// What a commit did for the events of its requests (shared by all of them).
#[derive(Debug, Clone)]
pub struct Committed {
    pub game_id: i64,
    pub accepted: Arc<Accepted>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    #[error("no such game")]
    NoGame,
    #[error("{0}")]
    Database(String),
}

/// Starts the committing task; it ends when every sender is dropped.
pub fn start(store: Store) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel::<Job>(1024);
    tokio::spawn(run(store, rx));
    tx
}

async fn run(store: Store, mut jobs: mpsc::Receiver<Job>) {
    while let Some(first) = jobs.recv().await {
        // Whatever else is already waiting joins this commit.
        let mut batch = vec![first];
        let mut events = batch[0].events.len();
        while events < MAX_GROUP_EVENTS {
            match jobs.try_recv() {
                Ok(job) => {
                    events += job.events.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        // One transaction per game and source; the game's configs are read once per group.
        let mut groups: HashMap<(Option<i64>, Source), Vec<Job>> = HashMap::new();
        for job in batch {
            groups.entry((job.game, job.source)).or_default().push(job);
        }
        for ((game, source), mut group) in groups {
            let all: Vec<ConversionEvent> = group.iter_mut().flat_map(|j| std::mem::take(&mut j.events)).collect();
            let outcome = commit(&store, game, source, &all).await;
            for job in group {
                // The request may have gone (client disconnected): its events stay accepted.
                let _ = job.reply.send(outcome.clone());
            }
        }
    }
}

async fn commit(
    store: &Store,
    game: Option<i64>,
    source: Source,
    events: &[ConversionEvent],
) -> Result<Committed, CommitError> {
    let database = |e: StoreError| CommitError::Database(e.to_string());
    let game = match game {
        Some(id) => match store.game(id).await {
            Ok(game) => game,
            Err(StoreError::GameNotFound(_)) => return Err(CommitError::NoGame),
            Err(e) => return Err(database(e)),
        },
        None => store.current_game().await.map_err(database)?.ok_or(CommitError::NoGame)?,
    };
    let configs: Vec<_> = store.configs(game.id).await.map_err(database)?.into_iter().filter(|c| c.enabled).collect();
    let accepted =
        accept(store, game.id, &configs, events, source, crate::delivery::now_ms()).await.map_err(database)?;
    Ok(Committed { game_id: game.id, accepted: Arc::new(accepted) })
}
