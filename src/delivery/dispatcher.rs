//! The dispatcher: lease a batch per config, send within rate limits, settle the outcomes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::limiter::Limiter;
use super::retry::RetryPolicy;
use super::send::{client, exchange, Exchange};
use super::{now_ms, Credentials};
use crate::model::{ConversionEvent, DeliveryStatus, Network};
use crate::networks::{self, ItemOutcome, PreparedEvent};
use crate::store::{Leased, NewLogEntry, Pause, Settlement, Store, StoreError, StoredConfig};

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

#[derive(Debug, Clone)]
pub struct DispatcherOptions {
    /// Names this dispatcher's leases.
    pub owner: String,
    /// A claim not settled within this time returns to the queue (the dispatcher died).
    pub lease: Duration,
    pub retry: RetryPolicy,
    pub rates: RateSettings,
    pub request_timeout: Duration,
    /// Batches claimed per config and turn, in multiples of the network's request limit.
    pub requests_per_claim: usize,
    /// Delivery log rows older than this are pruned (hourly, while running).
    pub retention: Duration,
    /// When credentials cannot be read for now (locked keychain, X unreachable for a token
    /// refresh), the batch waits this long; attempts are not counted and the config is not paused.
    pub credential_retry: Duration,
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
        }
    }
}

/// Counts of one run, per final status of the attempts made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunReport {
    pub success: u64,
    pub failed: u64,
    pub retried: u64,
    pub dropped_erased: u64,
    pub requests: u64,
    /// Events put back because their credentials could not be read for now.
    pub deferred: u64,
}

impl RunReport {
    fn add(&mut self, other: &RunReport) {
        self.success += other.success;
        self.failed += other.failed;
        self.retried += other.retried;
        self.dropped_erased += other.dropped_erased;
        self.requests += other.requests;
        self.deferred += other.deferred;
    }
}

/// Why the dispatcher stopped.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a delivery task failed: {0}")]
    Task(String),
}

/// What every config's turn needs; cloned into its task.
#[derive(Clone)]
struct Shared {
    store: Store,
    tokens: Arc<Credentials>,
    options: DispatcherOptions,
    http: reqwest::Client,
}

pub struct Dispatcher {
    shared: Shared,
    limiters: HashMap<i64, Limiter>,
}

impl Dispatcher {
    pub fn new(store: Store, tokens: Arc<Credentials>, options: DispatcherOptions) -> Self {
        let http = client(options.request_timeout);
        Self { shared: Shared { store, tokens, options, http }, limiters: HashMap::new() }
    }

    /// Runs until no event of an active config is waiting (now or after a backoff).
    pub async fn run_until_idle(&mut self) -> Result<RunReport, DeliveryError> {
        let mut report = RunReport::default();
        loop {
            let worked = self.turn(&mut report).await?;
            if worked {
                continue;
            }
            match self.shared.store.next_run_at().await? {
                None => return Ok(report),
                Some(at) => tokio::time::sleep(Duration::from_millis((at - now_ms()).clamp(5, 1000) as u64)).await,
            }
        }
    }

    /// Runs until `stop` turns true.
    pub async fn run(&mut self, mut stop: tokio::sync::watch::Receiver<bool>) -> Result<RunReport, DeliveryError> {
        let mut report = RunReport::default();
        let mut last_prune: Option<std::time::Instant> = None;
        while !*stop.borrow() {
            if last_prune.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
                self.shared.store.prune(now_ms(), self.shared.options.retention.as_millis() as i64).await?;
                last_prune = Some(std::time::Instant::now());
            }
            if !self.turn(&mut report).await? {
                let wait = match self.shared.store.next_run_at().await? {
                    Some(at) => Duration::from_millis((at - now_ms()).clamp(5, 500) as u64),
                    None => Duration::from_millis(500),
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => {}
                }
            }
        }
        Ok(report)
    }

    /// One pass over the active configs, each in its own task so that one config's network
    /// round trip overlaps another's database work; true when any event was handled.
    async fn turn(&mut self, report: &mut RunReport) -> Result<bool, DeliveryError> {
        self.shared.store.reclaim_expired_leases(now_ms()).await?;
        let mut tasks = tokio::task::JoinSet::new();
        for stored in self.shared.store.enabled_configs().await? {
            if stored.paused_reason.is_some() {
                continue;
            }
            let mut turn = ConfigTurn {
                shared: self.shared.clone(),
                limiter: self.limiters.remove(&stored.id),
                report: RunReport::default(),
                rng: fastrand::Rng::new(),
            };
            tasks.spawn(async move {
                let worked = turn.run(&stored).await;
                (stored.id, turn.limiter, turn.report, worked)
            });
        }
        let mut worked = false;
        let mut failure = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((id, limiter, r, result)) => {
                    if let Some(limiter) = limiter {
                        self.limiters.insert(id, limiter);
                    }
                    report.add(&r);
                    match result {
                        Ok(w) => worked |= w,
                        Err(e) => failure = Some(DeliveryError::Store(e)),
                    }
                }
                Err(e) => failure = Some(DeliveryError::Task(e.to_string())),
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(worked),
        }
    }
}

/// One config's share of a turn: claim a batch, deliver it, settle it.
struct ConfigTurn {
    shared: Shared,
    limiter: Option<Limiter>,
    report: RunReport,
    rng: fastrand::Rng,
}

impl ConfigTurn {
    async fn run(&mut self, stored: &StoredConfig) -> Result<bool, StoreError> {
        let options = &self.shared.options;
        let limit = networks::batch_limit(stored.config.network()) * options.requests_per_claim.max(1);
        let leased = self
            .shared
            .store
            .claim(stored.id, &options.owner, now_ms(), options.lease.as_millis() as i64, limit)
            .await?;
        if leased.is_empty() {
            return Ok(false);
        }
        let settlement = self.deliver(stored, &leased).await?;
        self.shared.store.settle(&settlement).await?;
        Ok(true)
    }

    /// Waits until the config's limiter lets `units` go. A long wait (X's window spent) first
    /// extends the lease of the batch, so that it is not re-queued while this dispatcher waits.
    async fn limiter_wait(&mut self, stored: &StoredConfig, units: u64, leased: &[i64]) -> Result<(), StoreError> {
        let rates = self.shared.options.rates;
        if !rates.enabled {
            return Ok(());
        }
        if self.limiter.is_none() {
            self.limiter = Some(match stored.config.network() {
                Network::X => {
                    let since = now_ms() - rates.x_window.as_millis() as i64;
                    let recent = self.shared.store.sent_per_second(stored.id, since).await?;
                    Limiter::window(rates.x_events_per_window, rates.x_window, recent)
                }
                _ => Limiter::bucket(rates.requests_per_second, rates.request_burst, now_ms()),
            });
        }
        loop {
            let Some(limiter) = self.limiter.as_mut() else {
                return Ok(());
            };
            let wait = limiter.try_take(units, now_ms());
            if wait.is_zero() {
                return Ok(());
            }
            let lease = self.shared.options.lease;
            if wait > lease / 2 {
                let until = now_ms() + (wait + lease).as_millis() as i64;
                self.shared.store.extend_lease(leased, &self.shared.options.owner, until).await?;
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Delivers one leased batch and says what to write back.
    async fn deliver(&mut self, stored: &StoredConfig, leased: &[Leased]) -> Result<Settlement, StoreError> {
        let network = stored.config.network();
        let now = now_ms();
        let mut settlement = Settlement::default();
        let mut players: Vec<&str> = leased.iter().map(|l| l.player_id.as_str()).collect();
        players.sort_unstable();
        players.dedup();
        let erased = self.shared.store.erased_among(&players).await?;

        // Decide per event: send, drop (erased), or fail without sending.
        // `rows[i]` is the queue row of `prepared[i]`; kept apart so the prepared events need no copy.
        let mut rows: Vec<&Leased> = Vec::with_capacity(leased.len());
        let mut prepared: Vec<PreparedEvent> = Vec::with_capacity(leased.len());
        for row in leased {
            if erased.contains(&row.player_id) {
                settlement.remove.push(row.id);
                self.report.dropped_erased += 1;
                continue;
            }
            let event: ConversionEvent = match serde_json::from_str(&row.payload) {
                Ok(e) => e,
                Err(e) => {
                    self.fail(&mut settlement, stored, row, None, format!("queued event is unreadable: {e}"));
                    continue;
                }
            };
            if let Some(problem) = networks::send_window_problem(network, event.occurred_at, chrono::Utc::now()) {
                self.fail(&mut settlement, stored, row, None, problem);
                continue;
            }
            match networks::prepare(&stored.config, &event, false) {
                Ok(p) => {
                    rows.push(row);
                    prepared.push(p);
                }
                Err(skip) => self.fail(&mut settlement, stored, row, None, format!("not sent: {}", skip.message)),
            }
        }

        let credential = match self.shared.tokens.credential(network, stored.credential_ref.as_deref()).await {
            Err(e) if e.is_transient() => {
                // Not the network's refusal: wait and try again, nothing counted, nothing paused.
                eprintln!("config {}: {e}; retrying in {:?}", stored.id, self.shared.options.credential_retry);
                let at = now + self.shared.options.credential_retry.as_millis() as i64;
                settlement.defer.extend(rows.iter().map(|r| (r.id, at)));
                self.report.deferred += rows.len() as u64;
                return Ok(settlement);
            }
            other => other.map_err(|e| e.to_string()),
        };
        let mut queue: Vec<(Vec<usize>, networks::Request)> = networks::build_requests(&stored.config, &prepared)
            .into_iter()
            .map(|r| {
                let owners = dedup_owners(&r.item_events);
                (owners, r)
            })
            .collect();
        let leased_ids: Vec<i64> = leased.iter().map(|l| l.id).collect();
        let mut paused = false;
        while let Some((owners, request)) = queue.pop() {
            if paused {
                settlement.release.extend(owners.iter().map(|&i| rows[i].id));
                continue;
            }
            // X counts events (not conversions) per window; TikTok and Reddit count requests.
            let units = if network == Network::X { owners.len() as u64 } else { 1 };
            self.limiter_wait(stored, units, &leased_ids).await?;
            self.report.requests += 1;
            let Exchange { classification, http_status, latency_ms } =
                exchange(&self.shared.http, network, &request, credential.as_ref().map_err(Clone::clone)).await;
            for (index, mut outcome) in classification.per_event(&request.item_events) {
                if outcome == ItemOutcome::Resend && owners.len() == 1 {
                    // Already alone in its request: the refusal is this event's own.
                    outcome = ItemOutcome::rejected("the network refused this event without naming a reason");
                }
                let row = rows[index];
                let attempt = row.attempts + 1;
                let mut entry =
                    log_entry(stored, row, attempt, http_status, Some(latency_ms), classification.request_id.clone());
                match outcome {
                    ItemOutcome::Success => {
                        settlement.done.push(row.id);
                        entry.status = DeliveryStatus::Success;
                        self.report.success += 1;
                    }
                    ItemOutcome::Rejected { reason, credential: false } => {
                        settlement.dead.push(row.id);
                        entry.error = Some(reason);
                        self.report.failed += 1;
                    }
                    ItemOutcome::Rejected { reason, credential: true } => {
                        // Nothing is burned: the event waits for new credentials.
                        settlement.release.push(row.id);
                        entry.credential_failure = true;
                        entry.error = Some(reason.clone());
                        settlement.pause =
                            Some(Pause { config_id: stored.id, credential_ref: stored.credential_ref.clone(), reason });
                        paused = true;
                        self.report.failed += 1;
                    }
                    ItemOutcome::Transient { reason, retry_after } => {
                        if attempt >= i64::from(self.shared.options.retry.max_attempts) {
                            settlement.dead.push(row.id);
                            entry.error = Some(format!("gave up after {attempt} attempts: {reason}"));
                            self.report.failed += 1;
                        } else {
                            let delay = self.shared.options.retry.delay(attempt as u32, retry_after, self.rng.f64());
                            settlement.retry.push((row.id, now + delay.as_millis() as i64));
                            entry.status = DeliveryStatus::Retried;
                            entry.error = Some(reason);
                            self.report.retried += 1;
                        }
                    }
                    ItemOutcome::Resend => {
                        // Send this event again alone: its batch failed because of others.
                        let single = networks::build_requests(&stored.config, std::slice::from_ref(&prepared[index]));
                        for mut r in single {
                            r.item_events = vec![index; r.item_events.len()];
                            queue.push((vec![index], r));
                        }
                        continue;
                    }
                }
                settlement.log.push(entry);
            }
        }
        Ok(settlement)
    }

    fn fail(
        &mut self,
        settlement: &mut Settlement,
        stored: &StoredConfig,
        row: &Leased,
        http_status: Option<u16>,
        reason: String,
    ) {
        settlement.dead.push(row.id);
        let mut entry = log_entry(stored, row, row.attempts + 1, http_status, None, None);
        entry.error = Some(reason);
        settlement.log.push(entry);
        self.report.failed += 1;
    }
}

/// The distinct events of a request, in order.
fn dedup_owners(item_events: &[usize]) -> Vec<usize> {
    let mut owners: Vec<usize> = Vec::new();
    for &e in item_events {
        if owners.last() != Some(&e) {
            owners.push(e);
        }
    }
    owners
}

fn log_entry(
    stored: &StoredConfig,
    row: &Leased,
    attempt: i64,
    http_status: Option<u16>,
    latency_ms: Option<i64>,
    request_id: Option<String>,
) -> NewLogEntry {
    NewLogEntry {
        at: now_ms(),
        config_id: stored.id,
        network: stored.config.network(),
        event_name: row.event_name.clone(),
        event_id: row.event_id.clone(),
        player_id: row.player_id.clone(),
        status: DeliveryStatus::Failed,
        http_status,
        latency_ms,
        attempt,
        request_id,
        credential_failure: false,
        error: None,
    }
}
