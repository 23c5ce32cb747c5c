//! The dispatcher: claim a batch per config under a lease token, send within rate limits,
//! settle the outcomes. It never stops by itself: store errors and failing tasks are logged,
//! published as [`EngineState::Retrying`] and retried with backoff.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::clock::Clock;
use super::config_turn::ConfigTurn;
use super::limiter::Limiter;
use super::retry::RetryPolicy;
use super::send::client;
use super::Credentials;
use crate::model::EngineState;
use crate::store::{ConfigLead, Store, StoreError, StoredConfig, WorkerPresence};

/// Rate limits per network account (one config = one account).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateSettings {
    /// TikTok and Reddit: requests per second and burst.
    pub requests_per_second: f64,
    pub request_burst: u32,
    /// X: events per window.
    pub x_events_per_window: u64,
    pub x_window: Duration,
    /// Off for benchmarks against the sandbox.
    pub enabled: bool,
}

impl Default for RateSettings {
    fn default() -> Self {
        Self {
            requests_per_second: 50.0,
            request_burst: 100,
            x_events_per_window: 60_000,
            x_window: Duration::from_secs(15 * 60),
            enabled: true,
        }
    }
}

/// What a test may do right before a request goes out (after any rate-limit wait): play a
/// player's erasure in flight, or a bug that panics.
pub type BeforeSend = Arc<dyn Fn(SendContext) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The request about to be sent.
#[derive(Debug, Clone)]
pub struct SendContext {
    pub config_id: i64,
    pub event_ids: Vec<String>,
}

#[derive(Clone, Default)]
pub struct Hooks {
    pub before_send: Option<BeforeSend>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks").field("before_send", &self.before_send.is_some()).finish()
    }
}

#[derive(Debug, Clone)]
pub struct DispatcherOptions {
    /// Names this dispatcher's lease tokens.
    pub owner: String,
    /// A claim not settled or renewed within this time returns to the queue (the dispatcher
    /// died). A running batch renews it every third of it.
    pub lease: Duration,
    pub retry: RetryPolicy,
    pub rates: RateSettings,
    pub request_timeout: Duration,
    /// Batches claimed per config and turn, in multiples of one request's size.
    pub requests_per_claim: usize,
    /// Delivery log rows older than this are pruned (hourly, while running).
    pub retention: Duration,
    /// When credentials cannot be read for now (locked keychain, X unreachable for a token
    /// refresh), the batch waits this long; attempts are not counted and the config is not paused.
    pub credential_retry: Duration,
    /// `run_until_idle` returns the error after this many failed turns in a row (`run` never).
    pub idle_max_failures: u32,
    pub clock: Clock,
    pub hooks: Hooks,
}

impl Default for DispatcherOptions {
    fn default() -> Self {
        Self {
            owner: format!("dispatcher-{}", std::process::id()),
            lease: Duration::from_secs(120),
            retry: RetryPolicy::default(),
            rates: RateSettings::default(),
            request_timeout: Duration::from_secs(30),
            requests_per_claim: 2,
            retention: Duration::from_secs(30 * 24 * 3600),
            credential_retry: Duration::from_secs(30),
            idle_max_failures: 12,
            clock: Clock::system(),
            hooks: Hooks::default(),
        }
    }
}

/// Counts of one run: the attempts' outcomes and what went wrong on the way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunReport {
    pub success: u64,
    /// Refused for good, or too old for the network.
    pub failed: u64,
    pub retried: u64,
    /// Waiting for new credentials (401/403).
    pub held: u64,
    /// Sent into a network that gave no answer (not attempts).
    pub offline: u64,
    pub given_up: u64,
    pub dropped_erased: u64,
    pub requests: u64,
    /// Conversions put back because their credentials could not be read for now.
    pub deferred: u64,
    /// Rows whose lease another dispatcher had taken over by the time this one settled.
    pub lost_leases: u64,
    /// Delivery tasks that panicked (their batch went back to the queue).
    pub panics: u64,
    /// Turns that failed (store errors, failed tasks) and were retried.
    pub failed_turns: u64,
}

impl RunReport {
    fn add(&mut self, o: &RunReport) {
        self.success += o.success;
        self.failed += o.failed;
        self.retried += o.retried;
        self.held += o.held;
        self.offline += o.offline;
        self.given_up += o.given_up;
        self.dropped_erased += o.dropped_erased;
        self.requests += o.requests;
        self.deferred += o.deferred;
        self.lost_leases += o.lost_leases;
        self.panics += o.panics;
        self.failed_turns += o.failed_turns;
    }
}

/// Why a turn failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Task(String),
    #[error("the HTTP client cannot be built: {0}")]
    HttpClient(String),
}

/// Tasks that failed this many times in a row pause their config instead of looping.
const PANICS_BEFORE_PAUSE: u32 = 3;

/// How long a stop waits for writes in flight before releasing the stopped batches' leases.
const STOP_WRITES_WAIT: Duration = Duration::from_millis(1000);

/// How often expired leases are looked for (a lease lasts minutes).
const RECLAIM_EVERY: Duration = Duration::from_secs(1);
/// How often a held config's lead is checked, and a config another worker holds is asked for:
/// the longest a dead worker's configs wait for another worker (plus its lease time).
const LEAD_CHECK: Duration = Duration::from_secs(2);

/// What every config's turn needs; cloned into its task.
#[derive(Clone)]
pub(super) struct Shared {
    pub(super) store: Store,
    pub(super) tokens: Arc<Credentials>,
    pub(super) options: DispatcherOptions,
    pub(super) http: reqwest::Client,
    /// Where delivery's writes run when the dispatcher has a thread of its own (see
    /// [`Dispatcher::run_on_own_thread`]); `None`: where the dispatcher runs.
    writes: Option<tokio::runtime::Handle>,
    /// Held (shared) by every write in flight; a stop takes it whole to wait for them.
    write_fence: Arc<tokio::sync::RwLock<()>>,
}

impl Shared {
    /// Runs one of delivery's writes (a claim, a settle) in a task of its own, on the writes
    /// thread if any: a config task stopped meanwhile never cuts a write in half.
    pub(super) async fn write<T: Send + 'static>(
        &self,
        write: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let fence = self.write_fence.clone().read_owned().await;
        let write = async move {
            let result = write.await;
            drop(fence);
            result
        };
        let task = match &self.writes {
            None => tokio::spawn(write),
            Some(runtime) => runtime.spawn(write),
        };
        // A write that panicked, or a runtime gone: as if the database's worker had died
        // (the batch returns to the queue when its lease expires).
        task.await.map_err(|_| StoreError::Sqlx(sqlx::Error::WorkerCrashed))?
    }
}

/// What a config's task hands back: its limiter, its counts, and whether it had a batch.
type TaskOutput = (Option<Limiter>, RunReport, Result<bool, StoreError>);

/// The config tasks running now: at most one per config.
#[derive(Default)]
struct Running {
    tasks: tokio::task::JoinSet<TaskOutput>,
    /// Per task: its config and its lease token.
    by_task: HashMap<tokio::task::Id, (i64, String)>,
    configs: HashSet<i64>,
}

impl Running {
    fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

/// What a tick decided.
enum Tick {
    /// Tasks were started; the next tick after this wait.
    Ticked(Duration),
    /// Nothing started; look again after this wait.
    Next(Duration),
    /// An idle run is over.
    Idle,
}

/// How a finished task went.
enum Finished {
    /// It delivered a batch: its config goes again at once.
    Worked(i64),
    /// Nothing to claim: its config waits for the next tick.
    Idle,
    /// It failed; its config waits `wait` (the failure is in the engine state).
    Failed { config_id: i64, error: DeliveryError },
}

pub struct Dispatcher {
    shared: Shared,
    /// Built again before a turn when it could not be built.
    http: Result<reqwest::Client, String>,
    limiters: HashMap<i64, Limiter>,
    /// Consecutive failed tasks per config.
    task_failures: HashMap<i64, u32>,
    /// Configs waiting after a failed task, until this instant.
    held_off: HashMap<i64, tokio::time::Instant>,
    /// The configs this worker delivers, and when each was last seen held (on PostgreSQL one
    /// worker at a time delivers a config: store.lead_config).
    leads: HashMap<i64, (ConfigLead, tokio::time::Instant)>,
    /// When this worker last asked for a config that another worker held.
    lead_asked: HashMap<i64, tokio::time::Instant>,
    /// This worker's presence among the store's workers while it runs, and the most configs
    /// it delivers (its fair share of the active configs among the live workers) with when
    /// that was last counted.
    presence: Option<WorkerPresence>,
    share: Option<(usize, tokio::time::Instant)>,
    last_reclaim: Option<tokio::time::Instant>,
    state: watch::Sender<EngineState>,
    claims: u64,
}

impl Dispatcher {
    pub fn new(store: Store, tokens: Arc<Credentials>, options: DispatcherOptions) -> Self {
        let http = client(options.request_timeout).map_err(|e| e.to_string());
        let (state, _) = watch::channel(EngineState::Starting);
        let shared = Shared {
            store,
            tokens,
            http: http.clone().unwrap_or_default(),
            options,
            writes: None,
            write_fence: Default::default(),
        };
        Self {
            shared,
            http,
            limiters: HashMap::new(),
            task_failures: HashMap::new(),
            held_off: HashMap::new(),
            leads: HashMap::new(),
            lead_asked: HashMap::new(),
            presence: None,
            share: None,
            last_reclaim: None,
            state,
            claims: 0,
        }
    }

    /// Follows what the dispatcher is doing (running, retrying after an error, stopped).
    pub fn subscribe(&self) -> watch::Receiver<EngineState> {
        self.state.subscribe()
    }

    fn clock(&self) -> &Clock {
        &self.shared.options.clock
    }

    /// Runs until no event of an active config is waiting (now or after a backoff). With a
    /// manual clock, waits move the clock instead of sleeping.
    pub async fn run_until_idle(&mut self) -> Result<RunReport, DeliveryError> {
        let (_never, stop) = watch::channel(false);
        self.drive(stop, true).await
    }

    /// [`Dispatcher::run`] on a thread of its own with a single-threaded runtime, at a lower
    /// CPU priority: delivery uses at most one core and yields it to the ingest API and the
    /// window (a game server waits for its acknowledgement; a conversion can wait a second).
    /// The thread ends with the report when `stop` turns true.
    ///
    /// Its claims and settles run on another thread, at the usual priority: they hold the
    /// store's write gate, for which enqueues wait, and at the lower priority the ingest's
    /// busier threads kept preempting them mid-write (a 250-row part held the gate 4 ms at the
    /// median and 30–66 ms at the 99th percentile; now 9–11 ms).
    pub fn run_on_own_thread(
        mut self,
        stop: watch::Receiver<bool>,
    ) -> std::io::Result<std::thread::JoinHandle<RunReport>> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        // Its worker starts here, on the caller's thread, and so keeps the caller's priority.
        let writes = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("postback-delivery-writes")
            .enable_all()
            .build()?;
        self.shared.writes = Some(writes.handle().clone());
        std::thread::Builder::new().name("postback-dispatcher".into()).spawn(move || {
            lower_this_threads_priority();
            let report = runtime.block_on(self.run(stop));
            // Writes were waited for (or given up on) by the stop.
            writes.shutdown_background();
            report
        })
    }

    /// Runs until `stop` turns true (or its sender is dropped); errors never end it. Stopping
    /// takes moments whatever a config waits for: its task is dropped, the writes in flight
    /// end, and its batch is released to be claimed again.
    pub async fn run(&mut self, stop: watch::Receiver<bool>) -> RunReport {
        self.state.send_replace(EngineState::Running);
        // Only an idle run ends with an error.
        self.drive(stop, false).await.unwrap_or_default()
    }

    fn next_token(&mut self) -> String {
        self.claims += 1;
        format!("{}:{}:{:08x}", self.shared.options.owner, self.claims, fastrand::u32(..))
    }

    /// The loop of both runs. Each config has at most one task; a task delivers one batch. A
    /// config that delivered goes again at once; the others get a task at the next tick
    /// (when the queue says something is due, at most 500 ms apart). No task waits for another.
    async fn drive(&mut self, mut stop: watch::Receiver<bool>, until_idle: bool) -> Result<RunReport, DeliveryError> {
        let mut report = RunReport::default();
        let mut failures = Failures::default();
        let mut running = Running::default();
        let mut last_prune: Option<std::time::Instant> = None;
        let mut tick_at = tokio::time::Instant::now();
        // An idle run ends only when, after a tick, its tasks all found nothing.
        let (mut ticked, mut worked_since_tick) = (false, false);
        loop {
            // A dropped sender stops too (the app quitting).
            if *stop.borrow() || stop.has_changed().is_err() {
                self.stop_tasks(running).await;
                self.leave();
                self.state.send_replace(EngineState::Stopped);
                return Ok(report);
            }
            if !until_idle && last_prune.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
                let (store, retention) = (self.shared.store.clone(), self.shared.options.retention);
                tokio::select! {
                    pruned = super::retention::prune(&store, self.clock().now_ms(), retention) => match pruned {
                        Ok(_) => last_prune = Some(std::time::Instant::now()),
                        Err(e) => tracing::warn!(error = %e, "pruning the delivery log failed; trying again later"),
                    },
                    _ = stop.changed() => continue,
                }
            }
            if tokio::time::Instant::now() >= tick_at {
                let idle_check = until_idle && ticked && running.is_empty() && !worked_since_tick;
                let step = async {
                    if idle_check {
                        if let Some(wait) = self.idle_wait().await? {
                            return Ok(Some(wait));
                        }
                    }
                    self.tick(&mut running, until_idle).await.map(Some)
                };
                match step.await {
                    Ok(Some(Tick::Next(wait))) => tick_at = tokio::time::Instant::now() + wait,
                    Ok(Some(Tick::Ticked(wait))) => {
                        (ticked, worked_since_tick) = (true, false);
                        tick_at = tokio::time::Instant::now() + wait;
                    }
                    Ok(Some(Tick::Idle)) | Ok(None) => {
                        self.leave();
                        self.state.send_replace(EngineState::Stopped);
                        return Ok(report);
                    }
                    Err(e) => {
                        report.failed_turns += 1;
                        let wait = failures.failed(&e, self.clock().now_ms(), &self.state);
                        if until_idle && failures.count > self.shared.options.idle_max_failures {
                            self.stop_tasks(running).await;
                            return Err(e);
                        }
                        tick_at = tokio::time::Instant::now() + wait;
                    }
                }
            }
            tokio::select! {
                Some(joined) = running.tasks.join_next_with_id(), if !running.is_empty() => {
                    match self.finished(joined, &mut running, &mut report).await {
                        Ok(Finished::Worked(config_id)) => {
                            failures.recovered(&self.state);
                            worked_since_tick = true;
                            if let Err(e) = self.spawn_configs(&mut running, Some(config_id)).await {
                                report.failed_turns += 1;
                                failures.failed(&e, self.clock().now_ms(), &self.state);
                            }
                        }
                        Ok(Finished::Idle) => failures.recovered(&self.state),
                        Ok(Finished::Failed { config_id, error }) => {
                            report.failed_turns += 1;
                            let wait = failures.failed(&error, self.clock().now_ms(), &self.state);
                            self.held_off.insert(config_id, tokio::time::Instant::now() + wait);
                            if until_idle && failures.count > self.shared.options.idle_max_failures {
                                self.stop_tasks(running).await;
                                return Err(error);
                            }
                        }
                        Err(e) => {
                            report.failed_turns += 1;
                            failures.failed(&e, self.clock().now_ms(), &self.state);
                        }
                    }
                    // An idle run looks again as soon as everything ran (a held-off config
                    // aside): at once after work, else to see whether anything is left.
                    if until_idle && running.is_empty() {
                        tick_at = self.held_off_until().unwrap_or_else(tokio::time::Instant::now);
                    }
                }
                _ = tokio::time::sleep_until(tick_at) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Gives up this worker's configs and presence: other workers may take them at once.
    fn leave(&mut self) {
        self.leads.clear();
        self.presence = None;
        self.share = None;
    }

    /// The most configs this worker delivers: its share of `active` among the live workers
    /// (counted every few seconds), so that workers split the configs between them.
    async fn fair_share(&mut self, store: &Store, active: usize) -> Result<usize, DeliveryError> {
        if self.presence.is_none() {
            self.presence = Some(store.join_workers(&this_worker()).await?);
        }
        let now = tokio::time::Instant::now();
        let workers = match self.share {
            Some((workers, counted)) if now.duration_since(counted) < LEAD_CHECK => workers,
            _ => {
                let workers = usize::try_from(store.live_workers().await?).unwrap_or(1).max(1);
                self.share = Some((workers, now));
                workers
            }
        };
        Ok(active.div_ceil(workers).max(1))
    }

    /// When the first config held off after a failure may go again.
    fn held_off_until(&self) -> Option<tokio::time::Instant> {
        let now = tokio::time::Instant::now();
        self.held_off.values().copied().filter(|at| *at > now).min()
    }

    /// An idle run whose last tick found nothing: `None` to tick now (something is due), a wait
    /// until something is due (a manual clock is moved there instead), or [`Tick::Idle`].
    async fn idle_wait(&mut self) -> Result<Option<Tick>, DeliveryError> {
        let now = self.clock().now_ms();
        Ok(match self.shared.store.next_run_at().await? {
            None => Some(Tick::Idle),
            Some(at) if at > now && self.clock().is_manual() => {
                self.clock().set_ms(at);
                None
            }
            Some(at) if at > now => Some(Tick::Next(Duration::from_millis((at - now).clamp(5, 1000) as u64))),
            // Due, yet the last tick claimed nothing: a held-off config, or a row between two
            // states; look again shortly rather than at once.
            Some(_) if self.held_off_until().is_some() => {
                Some(Tick::Next(self.held_off_until().map_or(Duration::ZERO, |at| at - tokio::time::Instant::now())))
            }
            Some(_) => None,
        })
    }

    /// A tick: every config without a task gets one. Returns the wait until the next tick.
    async fn tick(&mut self, running: &mut Running, until_idle: bool) -> Result<Tick, DeliveryError> {
        self.ensure_http_client()?;
        self.spawn_configs(running, None).await?;
        if until_idle {
            // Decided when the tasks end (or at once when none could start).
            let wait = if running.is_empty() { Duration::from_millis(5) } else { Duration::from_secs(3600) };
            return Ok(Tick::Ticked(wait));
        }
        let now = self.clock().now_ms();
        let next = self.shared.store.next_run_at().await?;
        Ok(Tick::Ticked(
            next.map_or(Duration::from_millis(500), |at| Duration::from_millis((at - now).clamp(5, 500) as u64)),
        ))
    }

    /// A client that could not be built is tried again; until then nothing is sent.
    fn ensure_http_client(&mut self) -> Result<(), DeliveryError> {
        if let Err(previous) = &self.http {
            tracing::warn!(error = %previous, "building the HTTP client again");
            self.http = client(self.shared.options.request_timeout).map_err(|e| e.to_string());
            if let Ok(http) = &self.http {
                self.shared.http = http.clone();
            }
        }
        self.http.as_ref().map(|_| ()).map_err(|e| DeliveryError::HttpClient(e.clone()))
    }

    /// Spawns a task for each active config (or only `only`) that has none running and is not
    /// held off after a failure. Expired leases go back to the queue first.
    async fn spawn_configs(&mut self, running: &mut Running, only: Option<i64>) -> Result<(), DeliveryError> {
        let store = self.shared.store.clone();
        let now = self.clock().now_ms();
        if self.last_reclaim.is_none_or(|at| at.elapsed() >= RECLAIM_EVERY) {
            store.reclaim_expired_leases(now).await?;
            self.last_reclaim = Some(tokio::time::Instant::now());
        }
        let load = store.delivery_configs().await?;
        for (config_id, reason) in &load.broken {
            tracing::error!(config_id, %reason, "a config's stored settings cannot be read; pausing it");
            store
                .pause(*config_id, &format!("its stored settings cannot be read ({reason}); save the config again"))
                .await?;
        }
        let instant = tokio::time::Instant::now();
        self.held_off.retain(|_, until| *until > instant);
        let active: HashSet<i64> = load.configs.iter().map(|c| c.id).collect();
        let share = self.fair_share(&store, active.len()).await?;
        for stored in load.configs {
            let eligible = only.is_none_or(|id| id == stored.id)
                && !running.configs.contains(&stored.id)
                && !self.held_off.contains_key(&stored.id)
                && stored.paused_reason.is_none()
                && stored.offline.until.is_none_or(|until| until <= now);
            if !eligible {
                continue;
            }
            let held = self.leads.contains_key(&stored.id);
            if held && self.leads.len() > share {
                // More than this worker's share (another worker joined): between two of its
                // turns, the config goes to a worker with fewer.
                tracing::info!(config_id = stored.id, share, "handing the config to another worker");
                self.leads.remove(&stored.id);
                self.lead_asked.insert(stored.id, instant);
                continue;
            }
            if (held || self.leads.len() < share) && self.leads_config(&store, stored.id).await? {
                self.spawn_config(running, stored);
            }
        }
        // A config deleted or disabled meanwhile is free for whoever enables it again.
        self.leads.retain(|id, _| active.contains(id));
        Ok(())
    }

    /// Whether this worker delivers the config: a lead it holds (checked every few seconds),
    /// or one it takes now (asked every few seconds while another worker holds it, so a dead
    /// worker's configs are taken over within that time).
    async fn leads_config(&mut self, store: &Store, config_id: i64) -> Result<bool, DeliveryError> {
        let now = tokio::time::Instant::now();
        if let Some((lead, checked)) = self.leads.get_mut(&config_id) {
            if now.duration_since(*checked) < LEAD_CHECK {
                return Ok(true);
            }
            if lead.is_alive().await {
                *checked = now;
                return Ok(true);
            }
            tracing::warn!(config_id, "lost the database connection that held this config; another worker may take it");
            self.leads.remove(&config_id);
        }
        if self.lead_asked.get(&config_id).is_some_and(|at| now.duration_since(*at) < LEAD_CHECK) {
            return Ok(false);
        }
        self.lead_asked.insert(config_id, now);
        match store.lead_config(config_id).await? {
            Some(lead) => {
                if store.engine_name() != "sqlite" {
                    tracing::info!(config_id, "this worker delivers the config now");
                }
                self.leads.insert(config_id, (lead, now));
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn spawn_config(&mut self, running: &mut Running, stored: StoredConfig) {
        let token = self.next_token();
        let mut turn = ConfigTurn {
            shared: self.shared.clone(),
            limiter: self.limiters.remove(&stored.id),
            report: RunReport::default(),
            rng: fastrand::Rng::new(),
            token: token.clone(),
        };
        let config_id = stored.id;
        let handle = running.tasks.spawn(async move {
            let worked = turn.run(&stored).await;
            (turn.limiter, turn.report, worked)
        });
        running.by_task.insert(handle.id(), (config_id, token));
        running.configs.insert(config_id);
    }

    /// Takes in a finished task: its limiter and counts; a failure is logged, its batch
    /// released, and the third failure in a row pauses its config.
    async fn finished(
        &mut self,
        joined: Result<(tokio::task::Id, TaskOutput), tokio::task::JoinError>,
        running: &mut Running,
        report: &mut RunReport,
    ) -> Result<Finished, DeliveryError> {
        let store = self.shared.store.clone();
        let (task_id, outcome) = match joined {
            Ok((id, output)) => (id, Ok(output)),
            Err(e) => (e.id(), Err(e)),
        };
        let Some((config_id, token)) = running.by_task.remove(&task_id) else { return Ok(Finished::Idle) };
        running.configs.remove(&config_id);
        let failure = match outcome {
            Ok((limiter, r, result)) => {
                if let Some(limiter) = limiter {
                    self.limiters.insert(config_id, limiter);
                }
                report.add(&r);
                match result {
                    Ok(worked) => {
                        self.task_failures.remove(&config_id);
                        return Ok(if worked { Finished::Worked(config_id) } else { Finished::Idle });
                    }
                    Err(StoreError::Corrupt(reason)) => {
                        tracing::error!(config_id, %reason, "queued events cannot be read; pausing the config");
                        let _ = store.release_lease(&token).await;
                        store.pause(config_id, &format!("its queued events cannot be read ({reason})")).await?;
                        return Ok(Finished::Idle);
                    }
                    Err(e) => format!("config {config_id}: {e}"),
                }
            }
            Err(join_error) => {
                report.panics += 1;
                let message = panic_message(join_error);
                format!("the delivery task of config {config_id} failed: {message}")
            }
        };
        tracing::error!(config_id, reason = %failure, "a delivery task failed; its batch goes back to the queue");
        if let Err(e) = store.release_lease(&token).await {
            tracing::warn!(config_id, error = %e, "the batch returns when its lease expires");
        }
        let count = self.task_failures.entry(config_id).or_default();
        *count += 1;
        if *count >= PANICS_BEFORE_PAUSE {
            self.task_failures.remove(&config_id);
            let reason = format!(
                "delivery failed {PANICS_BEFORE_PAUSE} times in a row ({failure}); its events are kept — resume it after the cause is fixed"
            );
            store.pause(config_id, &reason).await?;
        }
        Ok(Finished::Failed { config_id, error: DeliveryError::Task(failure) })
    }

    /// Stops every running task wherever it waits (a rate limit, a slow answer), lets writes
    /// in flight finish (a second at most), and releases the stopped batches so that the next
    /// run claims them at once; what was sent meanwhile is sent again under its event id.
    async fn stop_tasks(&mut self, mut running: Running) {
        if running.is_empty() {
            return;
        }
        running.tasks.abort_all();
        while running.tasks.join_next().await.is_some() {}
        let fence = tokio::time::timeout(STOP_WRITES_WAIT, self.shared.write_fence.write()).await;
        if fence.is_err() {
            tracing::warn!("a write was still running at stop; its batch returns when its lease expires");
            return;
        }
        let store = self.shared.store.clone();
        let release = async {
            for (_, token) in running.by_task.values() {
                store.release_lease(token).await?;
            }
            Ok::<_, StoreError>(())
        };
        match tokio::time::timeout(STOP_WRITES_WAIT, release).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "stopped batches return when their leases expire"),
            Err(_) => {
                tracing::warn!("releasing the stopped batches took too long; they return when their leases expire")
            }
        }
    }

    /// One pass over the active configs, each in its own task, waiting for all of them (for
    /// tests that step delivery); true when any event was handled.
    pub async fn turn(&mut self, report: &mut RunReport) -> Result<bool, DeliveryError> {
        self.ensure_http_client()?;
        self.last_reclaim = None;
        let mut running = Running::default();
        self.spawn_configs(&mut running, None).await?;
        let mut worked = false;
        let mut failures: Vec<String> = Vec::new();
        while let Some(joined) = running.tasks.join_next_with_id().await {
            match self.finished(joined, &mut running, report).await? {
                Finished::Worked(_) => worked = true,
                Finished::Idle => {}
                Finished::Failed { error, .. } => failures.push(error.to_string()),
            }
        }
        self.held_off.clear();
        if failures.is_empty() {
            Ok(worked)
        } else {
            Err(DeliveryError::Task(failures.join("; ")))
        }
    }
}

fn panic_message(error: tokio::task::JoinError) -> String {
    if !error.is_panic() {
        return error.to_string();
    }
    let payload = error.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panicked".into())
}

/// A run of failed turns: backoff 250 ms doubling to 30 s, published as `Retrying`.
#[derive(Default)]
struct Failures {
    count: u32,
    since_ms: Option<i64>,
}

impl Failures {
    fn failed(&mut self, error: &DeliveryError, now_ms: i64, state: &watch::Sender<EngineState>) -> Duration {
        self.count += 1;
        let since_ms = *self.since_ms.get_or_insert(now_ms);
        let wait = Duration::from_millis(250)
            .saturating_mul(1 << self.count.min(8).saturating_sub(1))
            .min(Duration::from_secs(30));
        tracing::error!(error = %error, retry_in_ms = wait.as_millis() as u64, failures = self.count, "delivery stopped; retrying");
        state.send_replace(EngineState::Retrying {
            reason: error.to_string(),
            since_ms,
            retry_in_ms: wait.as_millis() as i64,
            failures: self.count,
        });
        wait
    }

    fn recovered(&mut self, state: &watch::Sender<EngineState>) {
        if self.count > 0 {
            tracing::info!(failures = self.count, "delivery resumed");
        }
        *self = Failures::default();
        state.send_if_modified(|s| {
            let changed = *s != EngineState::Running;
            *s = EngineState::Running;
            changed
        });
    }
}

/// Nice +10 for the calling thread only (on Linux a thread is its own scheduling entity).
/// Best effort: delivery runs the same without it, only competing harder for the CPU.
#[cfg(target_os = "linux")]
fn lower_this_threads_priority() {
    // SAFETY: plain syscalls on the calling thread's own id; no memory is shared with them.
    let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10) };
    if result != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "could not lower the dispatcher thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_this_threads_priority() {}

/// How this process is named among a team's workers: its host name and engine version.
fn this_worker() -> crate::store::WorkerLabel {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown host".to_owned());
    crate::store::WorkerLabel {
        host: format!("{host} (pid {})", std::process::id()),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    }
}
