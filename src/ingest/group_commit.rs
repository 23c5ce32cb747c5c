//! Group commit for the ingest API: concurrent requests' events are accepted together, in one
//! synced transaction per game, by a single writer, while a router routes the requests that
//! arrive meanwhile. A synced commit costs a few milliseconds whatever it holds, so one per
//! request would cap the API at a few hundred requests a second and make concurrent requests
//! queue on SQLite's write lock; together they share it. Each
//! request still hears only after the commit that made its events durable, and a failed commit
//! fails every request in it as a whole (nothing of theirs was accepted).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Notify};

use super::{accept, Accepted, Source};
use crate::identity::PhoneCountry;
use crate::model::ConversionEvent;
use crate::store::{EnqueueComing, Store, StoreError};

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

/// A group routed and waiting for the writer, with the requests that hear about it.
struct Prepared {
    routed: accept::Routed,
    source: Source,
    replies: Vec<oneshot::Sender<Result<Committed, CommitError>>>,
    /// Tells delivery that this group is on its way to the write gate.
    _coming: Option<EnqueueComing>,
}

/// Routed groups waiting for the writer. A waiting group takes in the requests of its game
/// routed after it: whatever arrived while the writer was busy goes into its next commit.
#[derive(Default)]
struct Handoff {
    waiting: std::sync::Mutex<Waiting>,
    /// The writer has something to take (or the router has finished).
    ready: Notify,
    /// The writer took what waited.
    taken: Notify,
    router_done: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct Waiting {
    groups: Vec<Prepared>,
    events: usize,
}

/// Routed events waiting for the writer at most; the router waits beyond.
const MAX_WAITING_EVENTS: usize = 2 * MAX_GROUP_EVENTS;

impl Handoff {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Starts the committing tasks; they end when every sender is dropped. A router routes the
/// requests that arrive while a writer writes, so that routing's CPU time is not spent between
/// two commits.
///
/// The writer runs on a thread of its own. On the runtime's workers, each of its steps between
/// two statements waited for a worker to finish what it was doing: parsing a request or
/// routing a group, several milliseconds of CPU without a pause. That wait, several times per
/// commit, was about a sixth of the writer's turn, and the writer's turn limits the ingest.
pub fn start(store: Store) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel::<Job>(1024);
    let handoff = Arc::new(Handoff::default());
    tokio::spawn(route_groups(store.clone(), rx, handoff.clone()));
    let on_thread = {
        let (store, handoff) = (store.clone(), handoff.clone());
        tokio::runtime::Builder::new_current_thread().enable_all().build().and_then(|runtime| {
            std::thread::Builder::new()
                .name("postback-ingest-writer".into())
                .spawn(move || runtime.block_on(write_groups(store, handoff)))
        })
    };
    if let Err(e) = on_thread {
        tracing::warn!(error = %e, "no thread for the ingest's writer; it shares the runtime's workers");
        tokio::spawn(write_groups(store, handoff));
    }
    tx
}

async fn route_groups(store: Store, mut jobs: mpsc::Receiver<Job>, handoff: Arc<Handoff>) {
    while let Some(first) = jobs.recv().await {
        // Whatever else is already waiting is routed with it.
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
            let replies: Vec<_> = group.into_iter().map(|job| job.reply).collect();
            let coming = store.enqueue_coming();
            match route_group(&store, game, all).await {
                Ok(routed) => hand_over(&handoff, Prepared { routed, source, replies, _coming: coming }).await,
                Err(e) => reply_all(replies, Err(e)),
            }
        }
    }
    handoff.router_done.store(true, std::sync::atomic::Ordering::Release);
    handoff.ready.notify_one();
}

/// Joins a waiting group of the same game and source when it has room, else waits in line.
async fn hand_over(handoff: &Handoff, prepared: Prepared) {
    loop {
        let taken = handoff.taken.notified();
        {
            let mut waiting = handoff.lock();
            if waiting.events < MAX_WAITING_EVENTS {
                let events = prepared.routed.event_count();
                waiting.events += events;
                let joinable = waiting.groups.iter_mut().find(|w| {
                    w.source == prepared.source
                        && w.routed.game_id() == prepared.routed.game_id()
                        && w.routed.event_count() + events <= MAX_GROUP_EVENTS
                });
                match joinable {
                    Some(group) => {
                        group.routed.absorb(prepared.routed);
                        group.replies.extend(prepared.replies);
                    }
                    None => waiting.groups.push(prepared),
                }
                handoff.ready.notify_one();
                return;
            }
        }
        taken.await;
    }
}

async fn write_groups(store: Store, handoff: Arc<Handoff>) {
    loop {
        let groups = {
            let mut waiting = handoff.lock();
            waiting.events = 0;
            std::mem::take(&mut waiting.groups)
        };
        if groups.is_empty() {
            if handoff.router_done.load(std::sync::atomic::Ordering::Acquire) {
                return;
            }
            handoff.ready.notified().await;
            continue;
        }
        handoff.taken.notify_waiters();
        for Prepared { routed, source, replies, _coming } in groups {
            let game_id = routed.game_id();
            let outcome = accept::write(&store, routed, source, crate::delivery::now_ms())
                .await
                .map(|accepted| Committed { game_id, accepted: Arc::new(accepted) })
                .map_err(|e| CommitError::Database(e.to_string()));
            reply_all(replies, outcome);
        }
    }
}

fn reply_all(replies: Vec<oneshot::Sender<Result<Committed, CommitError>>>, outcome: Result<Committed, CommitError>) {
    for reply in replies {
        // The request may have gone (client disconnected): its events stay accepted.
        let _ = reply.send(outcome.clone());
    }
}

/// Routes one group. Its reads (the game, its configs, which of its players were erased) are
/// independent when the request names the game, so they go to SQLite together: the router
/// routes one group at a time, and a single event's group spent most of its ~1 ms waiting on
/// them one after another.
async fn route_group(
    store: &Store,
    game: Option<i64>,
    events: Vec<ConversionEvent>,
) -> Result<accept::Routed, CommitError> {
    let database = |e: StoreError| CommitError::Database(e.to_string());
    let current = match game {
        Some(_) => None,
        None => Some(store.current_game().await.map_err(database)?.ok_or(CommitError::NoGame)?),
    };
    let game_id = game.or(current.as_ref().map(|g| g.id)).ok_or(CommitError::NoGame)?;
    let players: Vec<&str> = events.iter().map(|e| e.player_id.as_str()).collect();
    let (named, configs, erased) = tokio::join!(
        async {
            match game {
                Some(id) => store.game(id).await.map(Some),
                None => Ok(None), // the current game, read above
            }
        },
        store.configs(game_id),
        store.erased_among(&players)
    );
    let game = match named {
        Err(StoreError::GameNotFound(_)) => return Err(CommitError::NoGame),
        Err(e) => return Err(database(e)),
        Ok(named) => named.or(current),
    };
    // The game's country for phone numbers written without one.
    let phone_country = game.and_then(|g| g.default_country).as_deref().and_then(PhoneCountry::parse);
    let configs: Vec<_> = configs.map_err(database)?.into_iter().filter(|c| c.enabled).collect();
    let erased = erased.map_err(database)?;
    accept::route(game_id, &configs, events, &erased, phone_country).map_err(database)
}
