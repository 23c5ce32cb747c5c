//! The dispatcher: claim a batch per config under a lease token, send within rate limits,
//! settle the outcomes. It never stops by itself: store errors and failing tasks are logged,
//! published as [`EngineState::Retrying`] and retried with backoff.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::clock::Clock;
use super::heartbeat::Heartbeat;
use super::limiter::Limiter;
use super::retry::RetryPolicy;
use super::send::{client, exchange, Exchange};
use super::Credentials;
use crate::model::{ConversionEvent, DeliveryStatus, EngineState, Network};
use crate::networks::{self, ItemOutcome, PreparedEvent, Request};
use crate::store::{
    Leased, NewLogEntry, Offline, Pause, RequestRecord, Retry, Settlement, Store, StoreError, StoredConfig,
};

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
}

/// Tasks that failed this many times in a row pause their config instead of looping.
const PANICS_BEFORE_PAUSE: u32 = 3;

/// What every config's turn needs; cloned into its task.
#[derive(Clone)]
struct Shared {
    store: Store,
    tokens: Arc<Credentials>,
    options: DispatcherOptions,
    http: reqwest::Client,
    /// Where delivery's writes run when the dispatcher has a thread of its own (see
    /// [`Dispatcher::run_on_own_thread`]); `None`: where the dispatcher runs.
    writes: Option<tokio::runtime::Handle>,
}

impl Shared {
    /// Runs one of delivery's writes (a claim, a settle) on the writes thread, if any.
    async fn write<T: Send + 'static>(
        &self,
        write: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        match &self.writes {
            None => write.await,
            // A write that panicked, or a runtime gone: as if the database's worker had died
            // (the batch returns to the queue when its lease expires).
            Some(runtime) => runtime.spawn(write).await.map_err(|_| StoreError::Sqlx(sqlx::Error::WorkerCrashed))?,
        }
    }
}

pub struct Dispatcher {
    shared: Shared,
    limiters: HashMap<i64, Limiter>,
    /// Consecutive failed tasks per config.
    task_failures: HashMap<i64, u32>,
    state: watch::Sender<EngineState>,
    claims: u64,
}

impl Dispatcher {
    pub fn new(store: Store, tokens: Arc<Credentials>, options: DispatcherOptions) -> Self {
        let http = client(options.request_timeout);
        let (state, _) = watch::channel(EngineState::Starting);
        Self {
            shared: Shared { store, tokens, options, http, writes: None },
            limiters: HashMap::new(),
            task_failures: HashMap::new(),
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
        let mut report = RunReport::default();
        let mut failures = Failures::default();
        loop {
            let step = async {
                if self.turn(&mut report).await? {
                    return Ok(Some(0));
                }
                Ok::<_, DeliveryError>(self.shared.store.next_run_at().await?)
            };
            match step.await {
                Ok(None) => {
                    self.state.send_replace(EngineState::Stopped);
                    return Ok(report);
                }
                Ok(Some(at)) => {
                    failures.recovered(&self.state);
                    let now = self.clock().now_ms();
                    if at > now && self.clock().is_manual() {
                        self.clock().set_ms(at);
                    } else if at > now {
                        tokio::time::sleep(Duration::from_millis((at - now).clamp(5, 1000) as u64)).await;
                    }
                }
                Err(e) => {
                    report.failed_turns += 1;
                    let wait = failures.failed(&e, self.clock().now_ms(), &self.state);
                    if failures.count > self.shared.options.idle_max_failures {
                        return Err(e);
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
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
            drop(writes);
            report
        })
    }

    /// Runs until `stop` turns true; errors never end it.
    pub async fn run(&mut self, mut stop: watch::Receiver<bool>) -> RunReport {
        let mut report = RunReport::default();
        let mut failures = Failures::default();
        let mut last_prune: Option<std::time::Instant> = None;
        self.state.send_replace(EngineState::Running);
        while !*stop.borrow() {
            if last_prune.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
                let retention = i64::try_from(self.shared.options.retention.as_millis()).unwrap_or(i64::MAX);
                match self.shared.store.prune(self.clock().now_ms(), retention).await {
                    Ok(_) => last_prune = Some(std::time::Instant::now()),
                    Err(e) => tracing::warn!(error = %e, "pruning the delivery log failed; trying again later"),
                }
            }
            let step =
                async {
                    if self.turn(&mut report).await? {
                        return Ok(Duration::ZERO);
                    }
                    let next = self.shared.store.next_run_at().await?;
                    let now = self.clock().now_ms();
                    Ok::<_, DeliveryError>(next.map_or(Duration::from_millis(500), |at| {
                        Duration::from_millis((at - now).clamp(5, 500) as u64)
                    }))
                };
            let wait = match step.await {
                Ok(wait) => {
                    failures.recovered(&self.state);
                    wait
                }
                Err(e) => {
                    report.failed_turns += 1;
                    failures.failed(&e, self.clock().now_ms(), &self.state)
                }
            };
            if !wait.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => {}
                }
            }
        }
        self.state.send_replace(EngineState::Stopped);
        report
    }

    fn next_token(&mut self) -> String {
        self.claims += 1;
        format!("{}:{}:{:08x}", self.shared.options.owner, self.claims, fastrand::u32(..))
    }

    /// One pass over the active configs, each in its own task so that one config's network
    /// round trip overlaps another's database work; true when any event was handled.
    pub async fn turn(&mut self, report: &mut RunReport) -> Result<bool, DeliveryError> {
        let store = self.shared.store.clone();
        let now = self.clock().now_ms();
        store.reclaim_expired_leases(now).await?;
        let load = store.delivery_configs().await?;
        for (config_id, reason) in &load.broken {
            tracing::error!(config_id, %reason, "a config's stored settings cannot be read; pausing it");
            store
                .pause(*config_id, &format!("its stored settings cannot be read ({reason}); save the config again"))
                .await?;
        }
        let mut tasks = tokio::task::JoinSet::new();
        let mut running: HashMap<tokio::task::Id, (i64, String)> = HashMap::new();
        for stored in load.configs {
            if stored.paused_reason.is_some() || stored.offline.until.is_some_and(|until| until > now) {
                continue;
            }
            let token = self.next_token();
            let mut turn = ConfigTurn {
                shared: self.shared.clone(),
                limiter: self.limiters.remove(&stored.id),
                report: RunReport::default(),
                rng: fastrand::Rng::new(),
                token: token.clone(),
            };
            let config_id = stored.id;
            let handle = tasks.spawn(async move {
                let worked = turn.run(&stored).await;
                (turn.limiter, turn.report, worked)
            });
            running.insert(handle.id(), (config_id, token));
        }
        let mut worked = false;
        let mut failures: Vec<String> = Vec::new();
        while let Some(joined) = tasks.join_next_with_id().await {
            let (task_id, outcome) = match joined {
                Ok((id, output)) => (id, Ok(output)),
                Err(e) => (e.id(), Err(e)),
            };
            let Some((config_id, token)) = running.remove(&task_id) else { continue };
            let failure = match outcome {
                Ok((limiter, r, result)) => {
                    if let Some(limiter) = limiter {
                        self.limiters.insert(config_id, limiter);
                    }
                    report.add(&r);
                    match result {
                        Ok(w) => {
                            worked |= w;
                            self.task_failures.remove(&config_id);
                            continue;
                        }
                        Err(StoreError::Corrupt(reason)) => {
                            tracing::error!(config_id, %reason, "queued events cannot be read; pausing the config");
                            let _ = store.release_lease(&token).await;
                            store.pause(config_id, &format!("its queued events cannot be read ({reason})")).await?;
                            continue;
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
            failures.push(failure);
        }
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

/// One request of a batch and the batch rows it carries (`item_events` index into `members`).
struct Job {
    members: Vec<usize>,
    request: Request,
}

/// Builds the requests for some of a batch's conversions, within `max_items` each.
fn jobs(
    config: &crate::model::PostbackConfig,
    prepared: &[PreparedEvent],
    members: &[usize],
    max_items: usize,
) -> Vec<Job> {
    let refs: Vec<&PreparedEvent> = members.iter().map(|&m| &prepared[m]).collect();
    networks::build_requests_within(config, &refs, max_items)
        .into_iter()
        .map(|mut request| {
            // Events enter requests in order, so each request's events are sorted.
            let mut locals = request.item_events.clone();
            locals.dedup();
            for e in request.item_events.iter_mut() {
                *e = locals.binary_search(e).unwrap_or(0);
            }
            Job { members: locals.iter().map(|&l| members[l]).collect(), request }
        })
        .collect()
}

/// Why the rest of a batch is not sent this turn.
enum Halt {
    /// The network refused the credentials: the config pauses.
    Held,
    /// No answer: the config waits for the network.
    Offline(String),
}

/// One config's share of a turn: claim a batch, deliver it, settle it.
struct ConfigTurn {
    shared: Shared,
    limiter: Option<Limiter>,
    report: RunReport,
    rng: fastrand::Rng,
    token: String,
}

impl ConfigTurn {
    async fn run(&mut self, stored: &StoredConfig) -> Result<bool, StoreError> {
        let options = self.shared.options.clone();
        self.ensure_limiter(stored).await?;
        let per_request = self.max_items(stored);
        let limit = per_request * options.requests_per_claim.max(1);
        let lease_ms = i64::try_from(options.lease.as_millis()).unwrap_or(i64::MAX / 2);
        let now = options.clock.now_ms();
        let store = self.shared.store.clone();
        let claim = {
            let (store, token, config_id) = (store.clone(), self.token.clone(), stored.id);
            async move { store.claim(config_id, &token, now, lease_ms, limit).await }
        };
        let leased = self.shared.write(claim).await?;
        if leased.is_empty() {
            return Ok(false);
        }
        let heartbeat = Heartbeat::new(store.clone(), self.token.clone(), options.lease, options.clock.clone());
        let settlement = heartbeat.keep_alive(self.deliver(stored, &leased, per_request)).await?;
        // The CPU work here, at this thread's priority; the writes on the writes thread.
        let prepared = store.prepare_settlement(settlement)?;
        let settle = {
            let store = store.clone();
            async move { store.settle_prepared(&prepared).await }
        };
        let settled = self.shared.write(settle).await?;
        if settled.lost > 0 {
            tracing::warn!(
                config_id = stored.id,
                rows = settled.lost,
                "rows of this batch changed meanwhile (a lease taken over after it expired, or a player erased)"
            );
            self.report.lost_leases += settled.lost;
        }
        Ok(true)
    }

    async fn ensure_limiter(&mut self, stored: &StoredConfig) -> Result<(), StoreError> {
        let rates = self.shared.options.rates;
        if !rates.enabled || self.limiter.is_some() {
            return Ok(());
        }
        let now = self.shared.options.clock.now_ms();
        self.limiter = Some(match stored.config.network() {
            Network::X => {
                let since = now - i64::try_from(rates.x_window.as_millis()).unwrap_or(0);
                let recent = self.shared.store.sent_per_second(stored.id, since).await?;
                Limiter::window(rates.x_events_per_window, rates.x_window, recent)
            }
            _ => Limiter::bucket(rates.requests_per_second, rates.request_burst, now),
        });
        Ok(())
    }

    /// Items per request: the network's batch limit, or less when the rate limit's whole budget
    /// is smaller, so that no request can ever exceed it.
    fn max_items(&self, stored: &StoredConfig) -> usize {
        let batch = networks::batch_limit(stored.config.network());
        match self.limiter.as_ref().and_then(Limiter::item_capacity) {
            Some(capacity) => batch.min(usize::try_from(capacity).unwrap_or(batch)).max(1),
            None => batch,
        }
    }

    /// Waits until the config's limiter lets `units` go (the heartbeat keeps the batch leased).
    async fn limiter_wait(&mut self, units: u64) {
        let clock = self.shared.options.clock.clone();
        while let Some(limiter) = self.limiter.as_mut() {
            let wait = limiter.try_take(units, clock.now_ms());
            if wait.is_zero() {
                return;
            }
            if clock.is_manual() {
                clock.advance(wait);
            } else {
                tokio::time::sleep(wait).await;
            }
        }
    }

    /// Delivers one leased batch and says what to write back.
    async fn deliver(
        &mut self,
        stored: &StoredConfig,
        leased: &[Leased],
        max_items: usize,
    ) -> Result<Settlement, StoreError> {
        let network = stored.config.network();
        let clock = self.shared.options.clock.clone();
        let policy = self.shared.options.retry;
        let store = self.shared.store.clone();
        let mut s = Settlement { lease_token: self.token.clone(), at: clock.now_ms(), ..Settlement::default() };
        let mut players: Vec<&str> = leased.iter().map(|l| l.player_id.as_str()).collect();
        players.sort_unstable();
        players.dedup();
        let mut erasures = store.erasure_count().await?;
        let mut erased = store.erased_among(&players).await?;

        // Decide per conversion: send, drop (erased), or fail without sending.
        // `rows[i]` is the queue row of `prepared[i]`.
        let mut rows: Vec<&Leased> = Vec::with_capacity(leased.len());
        let mut prepared: Vec<PreparedEvent> = Vec::with_capacity(leased.len());
        for row in leased {
            if erased.contains(&row.player_id) {
                s.remove.push(row.id);
                self.report.dropped_erased += 1;
                continue;
            }
            let event: ConversionEvent = match serde_json::from_str(&row.payload) {
                Ok(e) => e,
                Err(e) => {
                    self.fail_unsent(&mut s, stored, row, format!("queued event is unreadable: {e}"));
                    continue;
                }
            };
            if let Some(problem) = networks::send_window_problem(network, event.occurred_at, clock.now()) {
                self.fail_unsent(&mut s, stored, row, problem);
                continue;
            }
            match networks::prepare_goal(&stored.config, &event, &row.goal_key, false) {
                Ok(p) => {
                    rows.push(row);
                    prepared.push(p);
                }
                Err(skip) => self.fail_unsent(&mut s, stored, row, format!("not sent: {}", skip.message)),
            }
        }
        if rows.is_empty() {
            return Ok(s);
        }

        let credential = match self.shared.tokens.credential(network, stored.credential_ref.as_deref()).await {
            Err(e) if e.is_transient() => {
                // Not the network's refusal: wait and try again, nothing counted, nothing paused.
                tracing::warn!(config_id = stored.id, error = %e, "credentials unreadable for now; retrying");
                let at = clock.now_ms() + self.shared.options.credential_retry.as_millis() as i64;
                s.defer.extend(rows.iter().map(|r| (r.id, at)));
                self.report.deferred += rows.len() as u64;
                return Ok(s);
            }
            other => other.map_err(|e| e.to_string()),
        };
        let all: Vec<usize> = (0..rows.len()).collect();
        let mut queue: VecDeque<Job> = jobs(&stored.config, &prepared, &all, max_items).into();
        let mut halt: Option<Halt> = None;
        let mut answered = false;
        while let Some(job) = queue.pop_front() {
            if halt.is_some() {
                s.release.extend(job.members.iter().map(|&i| rows[i].id));
                continue;
            }
            // X counts conversions per window; TikTok and Reddit count requests.
            let units = if network == Network::X { job.request.item_events.len() as u64 } else { 1 };
            self.limiter_wait(units).await;
            if let Some(hook) = &self.shared.options.hooks.before_send {
                let event_ids = job.members.iter().map(|&i| rows[i].event_id.clone()).collect();
                hook(SendContext { config_id: stored.id, event_ids }).await;
            }
            // A player may have been erased while the batch waited: check again, last thing
            // (looking the batch's players up again only when an erasure happened meanwhile).
            let count = store.erasure_count().await?;
            if count != erasures {
                erasures = count;
                erased = store.erased_among(&players).await?;
            }
            let erased_now: Vec<usize> =
                job.members.iter().copied().filter(|&i| erased.contains(&rows[i].player_id)).collect();
            let job = if erased_now.is_empty() {
                job
            } else {
                let (gone, keep): (Vec<usize>, Vec<usize>) =
                    job.members.iter().partition(|&&i| erased_now.contains(&i));
                s.remove.extend(gone.iter().map(|&i| rows[i].id));
                self.report.dropped_erased += gone.len() as u64;
                let mut rebuilt = jobs(&stored.config, &prepared, &keep, max_items);
                let Some(first) = (!rebuilt.is_empty()).then(|| rebuilt.remove(0)) else { continue };
                for rest in rebuilt.into_iter().rev() {
                    queue.push_front(rest);
                }
                first
            };
            self.report.requests += 1;
            let Exchange { classification, http_status, latency_ms, sent_body, answer } =
                exchange(&self.shared.http, network, &job.request, credential.as_ref().map_err(Clone::clone)).await;
            answered |= http_status.is_some();
            let at = clock.now_ms();
            // The log rows of this request point at it (stored once for the batch) and at their item.
            let request_index = (!sent_body.is_empty()).then_some(s.requests.len());
            let mut first_item: Vec<Option<i64>> = vec![None; job.members.len()];
            for (item, &k) in job.request.item_events.iter().enumerate() {
                if let Some(slot) = first_item.get_mut(k).filter(|slot| slot.is_none()) {
                    *slot = Some(item as i64);
                }
            }
            let mut referenced = false;
            for (k, mut outcome) in classification.per_event(&job.request.item_events) {
                let index = job.members[k];
                if outcome == ItemOutcome::Resend && job.members.len() == 1 {
                    // Already alone in its request: the refusal is this event's own.
                    outcome = ItemOutcome::rejected("the network refused this event without naming a reason");
                }
                let row = rows[index];
                let attempt = row.attempts + 1;
                let mut entry = log_entry(stored, row, at, attempt, http_status, Some(latency_ms));
                entry.request_id = classification.request_id.clone();
                entry.request = request_index;
                entry.item_index = request_index.and(first_item.get(k).copied().flatten());
                match outcome {
                    ItemOutcome::Success => {
                        s.done.push(row.id);
                        entry.status = DeliveryStatus::Success;
                        self.report.success += 1;
                    }
                    ItemOutcome::Rejected { reason, credential: false } => {
                        s.dead.push(row.id);
                        entry.error = Some(reason);
                        self.report.failed += 1;
                    }
                    ItemOutcome::Rejected { reason, credential: true } => {
                        // Nothing is burned: the event waits for new credentials.
                        s.release.push(row.id);
                        entry.status = DeliveryStatus::Held;
                        entry.credential_failure = true;
                        entry.error = Some(reason.clone());
                        s.pause =
                            Some(Pause { config_id: stored.id, credential_ref: stored.credential_ref.clone(), reason });
                        halt = Some(Halt::Held);
                        self.report.held += 1;
                    }
                    ItemOutcome::Transient { reason, retry_after } => {
                        let failing_since = row.failing_since.unwrap_or(at);
                        if policy.exhausted(failing_since, at) {
                            s.dead.push(row.id);
                            entry.status = DeliveryStatus::GivenUp;
                            entry.error = Some(format!(
                                "gave up after {} of failures ({attempt} attempts): {reason}",
                                human_duration(policy.give_up_after)
                            ));
                            self.report.given_up += 1;
                        } else {
                            let attempt_no = u32::try_from(attempt).unwrap_or(u32::MAX);
                            let delay = policy.delay(attempt_no, retry_after, self.rng.f64());
                            let run_at = at.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
                            s.retry.push(Retry { id: row.id, run_at, failing_since });
                            entry.status = DeliveryStatus::Retried;
                            entry.error = Some(reason);
                            self.report.retried += 1;
                        }
                    }
                    ItemOutcome::Unanswered { reason } => {
                        // Not an attempt: the row goes back unchanged and the config waits for the
                        // network. Logged once, when the network first went away.
                        s.release.push(row.id);
                        self.report.offline += 1;
                        if halt.is_none() {
                            halt = Some(Halt::Offline(reason.clone()));
                        }
                        if stored.offline.since.is_some() {
                            continue;
                        }
                        entry.status = DeliveryStatus::Offline;
                        entry.latency_ms = None;
                        entry.error = Some(format!("{reason}; waiting for the network"));
                    }
                    ItemOutcome::Resend => {
                        // Send this event again alone: its batch failed because of others.
                        for single in jobs(&stored.config, &prepared, &[index], max_items).into_iter().rev() {
                            queue.push_front(single);
                        }
                        continue;
                    }
                }
                referenced |= entry.request.is_some();
                s.log.push(entry);
            }
            if referenced {
                let answer = answer.as_ref();
                s.requests.push(RequestRecord {
                    at,
                    config_id: stored.id,
                    url: job.request.url.clone(),
                    headers: job.request.redacted_headers(),
                    body: sent_body,
                    response_status: http_status,
                    response_headers: answer.map(|a| a.headers_that_matter()).unwrap_or_default(),
                    response_body: answer.map(|a| a.body.clone()),
                });
            }
        }
        let now = clock.now_ms();
        match halt {
            Some(Halt::Offline(reason)) => {
                let probes = stored.offline.probes + 1;
                let wait = policy.offline_delay(u32::try_from(probes).unwrap_or(u32::MAX), self.rng.f64());
                let until = now.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
                tracing::warn!(config_id = stored.id, %reason, probe_in_ms = wait.as_millis() as u64, "offline — waiting for the network");
                s.offline = Some(Offline::Down {
                    config_id: stored.id,
                    since: stored.offline.since.unwrap_or(now),
                    until,
                    probes,
                    reason,
                });
            }
            _ if answered && stored.offline.since.is_some() => {
                tracing::info!(config_id = stored.id, "the network answers again");
                s.offline = Some(Offline::Up { config_id: stored.id });
            }
            _ => {}
        }
        Ok(s)
    }

    /// A conversion that is never sent (unreadable, too old, no longer routed): Failed, kept
    /// for replay, attempts unchanged.
    fn fail_unsent(&mut self, s: &mut Settlement, stored: &StoredConfig, row: &Leased, reason: String) {
        s.dead_unsent.push(row.id);
        let mut entry = log_entry(stored, row, s.at, row.attempts + 1, None, None);
        entry.error = Some(reason);
        s.log.push(entry);
        self.report.failed += 1;
    }
}

fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s if s >= 1 => format!("{s} s"),
        _ => format!("{} ms", d.as_millis()),
    }
}

fn log_entry(
    stored: &StoredConfig,
    row: &Leased,
    at: i64,
    attempt: i64,
    http_status: Option<u16>,
    latency_ms: Option<i64>,
) -> NewLogEntry {
    NewLogEntry {
        at,
        config_id: stored.id,
        network: stored.config.network(),
        event_name: row.event_name.clone(),
        event_id: row.event_id.clone(),
        goal_key: row.goal_key.clone(),
        player_id: row.player_id.clone(),
        status: DeliveryStatus::Failed,
        http_status,
        latency_ms,
        attempt,
        request_id: None,
        credential_failure: false,
        error: None,
        request: None,
        item_index: None,
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
