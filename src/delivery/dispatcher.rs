//! The dispatcher: lease a batch per config, send within rate limits, settle the outcomes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::limiter::Limiter;
use super::retry::RetryPolicy;
use super::send::{client, exchange, Exchange};
use super::{now_ms, TokenSource};
use crate::model::{ConversionEvent, DeliveryStatus, Network};
use crate::networks::{self, ItemOutcome, PreparedEvent};
use crate::store::{Leased, NewLogEntry, Settlement, Store, StoreError, StoredConfig};

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
}

pub struct Dispatcher {
    store: Store,
    tokens: Arc<dyn TokenSource>,
    options: DispatcherOptions,
    http: reqwest::Client,
    limiters: HashMap<i64, Limiter>,
    rng: fastrand::Rng,
}

impl Dispatcher {
    pub fn new(store: Store, tokens: Arc<dyn TokenSource>, options: DispatcherOptions) -> Self {
        let http = client(options.request_timeout);
        Self { store, tokens, options, http, limiters: HashMap::new(), rng: fastrand::Rng::new() }
    }

    /// Runs until no event of an active config is waiting (now or after a backoff).
    pub async fn run_until_idle(&mut self) -> Result<RunReport, StoreError> {
        let mut report = RunReport::default();
        loop {
            let worked = self.turn(&mut report).await?;
            if worked {
                continue;
            }
            match self.store.next_run_at().await? {
                None => return Ok(report),
                Some(at) => tokio::time::sleep(Duration::from_millis((at - now_ms()).clamp(5, 1000) as u64)).await,
            }
        }
    }

    /// Runs until `stop` turns true.
    pub async fn run(&mut self, mut stop: tokio::sync::watch::Receiver<bool>) -> Result<RunReport, StoreError> {
        let mut report = RunReport::default();
        let mut last_prune: Option<std::time::Instant> = None;
        while !*stop.borrow() {
            if last_prune.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
                self.store.prune(now_ms(), self.options.retention.as_millis() as i64).await?;
                last_prune = Some(std::time::Instant::now());
            }
            if !self.turn(&mut report).await? {
                let wait = match self.store.next_run_at().await? {
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

    /// One pass over the active configs; true when any event was handled.
    async fn turn(&mut self, report: &mut RunReport) -> Result<bool, StoreError> {
        self.store.reclaim_expired_leases(now_ms()).await?;
        let mut worked = false;
        for stored in self.store.enabled_configs().await? {
            if stored.paused_reason.is_some() {
                continue;
            }
            let limit = networks::batch_limit(stored.config.network()) * self.options.requests_per_claim.max(1);
            let leased = self
                .store
                .claim(stored.id, &self.options.owner, now_ms(), self.options.lease.as_millis() as i64, limit)
                .await?;
            if leased.is_empty() {
                continue;
            }
            worked = true;
            let settlement = self.deliver(&stored, &leased, report).await?;
            self.store.settle(&settlement).await?;
        }
        Ok(worked)
    }

    async fn limiter_wait(&mut self, stored: &StoredConfig, units: u64) -> Result<(), StoreError> {
        let rates = self.options.rates;
        if !rates.enabled {
            return Ok(());
        }
        if !self.limiters.contains_key(&stored.id) {
            let limiter = match stored.config.network() {
                Network::X => {
                    let since = now_ms() - rates.x_window.as_millis() as i64;
                    let recent = self.store.sent_per_second(stored.id, since).await?;
                    Limiter::window(rates.x_events_per_window, rates.x_window, recent)
                }
                _ => Limiter::bucket(rates.requests_per_second, rates.request_burst, now_ms()),
            };
            self.limiters.insert(stored.id, limiter);
        }
        loop {
            let Some(limiter) = self.limiters.get_mut(&stored.id) else {
                return Ok(());
            };
            let wait = limiter.try_take(units, now_ms());
            if wait.is_zero() {
                return Ok(());
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Delivers one leased batch and says what to write back.
    async fn deliver(
        &mut self,
        stored: &StoredConfig,
        leased: &[Leased],
        report: &mut RunReport,
    ) -> Result<Settlement, StoreError> {
        let network = stored.config.network();
        let now = now_ms();
        let mut settlement = Settlement::default();
        let players: Vec<&str> = leased.iter().map(|l| l.player_id.as_str()).collect();
        let erased = self.store.erased_among(&players).await?;

        // Decide per event: send, drop (erased), or fail without sending.
        let mut ready: Vec<(&Leased, PreparedEvent)> = Vec::with_capacity(leased.len());
        for row in leased {
            if erased.contains(&row.player_id) {
                settlement.remove.push(row.id);
                report.dropped_erased += 1;
                continue;
            }
            let event: ConversionEvent = match serde_json::from_str(&row.payload) {
                Ok(e) => e,
                Err(e) => {
                    self.fail(&mut settlement, stored, row, None, format!("queued event is unreadable: {e}"), report);
                    continue;
                }
            };
            if let Some(problem) = networks::send_window_problem(network, event.occurred_at, chrono::Utc::now()) {
                self.fail(&mut settlement, stored, row, None, problem, report);
                continue;
            }
            match networks::prepare(&stored.config, &event, false) {
                Ok(p) => ready.push((row, p)),
                Err(skip) => {
                    self.fail(&mut settlement, stored, row, None, format!("not sent: {}", skip.message), report)
                }
            }
        }

        let token = self.tokens.token(network, stored.credential_ref.as_deref()).map_err(|e| e.to_string());
        let prepared: Vec<PreparedEvent> = ready.iter().map(|(_, p)| p.clone()).collect();
        let mut queue: Vec<(Vec<usize>, networks::Request)> = networks::build_requests(&stored.config, &prepared)
            .into_iter()
            .map(|r| {
                let owners = dedup_owners(&r.item_events);
                (owners, r)
            })
            .collect();
        let mut paused = false;
        while let Some((owners, request)) = queue.pop() {
            if paused {
                settlement.release.extend(owners.iter().map(|&i| ready[i].0.id));
                continue;
            }
            // X counts events (not conversions) per window; TikTok and Reddit count requests.
            let units = if network == Network::X { owners.len() as u64 } else { 1 };
            self.limiter_wait(stored, units).await?;
            report.requests += 1;
            let Exchange { classification, http_status, latency_ms } =
                exchange(&self.http, network, &request, token.as_deref().map_err(Clone::clone)).await;
            for (index, outcome) in classification.per_event(&request.item_events) {
                let (row, _) = ready[index];
                let attempt = row.attempts + 1;
                let mut entry =
                    log_entry(stored, row, attempt, http_status, Some(latency_ms), classification.request_id.clone());
                match outcome {
                    ItemOutcome::Success => {
                        settlement.remove.push(row.id);
                        entry.status = DeliveryStatus::Success;
                        report.success += 1;
                    }
                    ItemOutcome::Rejected { reason, credential: false } => {
                        settlement.dead.push(row.id);
                        entry.error = Some(reason);
                        report.failed += 1;
                    }
                    ItemOutcome::Rejected { reason, credential: true } => {
                        // Nothing is burned: the event waits for new credentials.
                        settlement.release.push(row.id);
                        entry.credential_failure = true;
                        entry.error = Some(reason.clone());
                        settlement.pause = Some((stored.id, reason));
                        paused = true;
                        report.failed += 1;
                    }
                    ItemOutcome::Transient { reason, retry_after } => {
                        if attempt >= i64::from(self.options.retry.max_attempts) {
                            settlement.dead.push(row.id);
                            entry.error = Some(format!("gave up after {attempt} attempts: {reason}"));
                            report.failed += 1;
                        } else {
                            let delay = self.options.retry.delay(attempt as u32, retry_after, self.rng.f64());
                            settlement.retry.push((row.id, now + delay.as_millis() as i64));
                            entry.status = DeliveryStatus::Retried;
                            entry.error = Some(reason);
                            report.retried += 1;
                        }
                    }
                    ItemOutcome::Resend => {
                        // Send this event again alone: its batch failed because of others.
                        let single = networks::build_requests(&stored.config, std::slice::from_ref(&ready[index].1));
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
        &self,
        settlement: &mut Settlement,
        stored: &StoredConfig,
        row: &Leased,
        http_status: Option<u16>,
        reason: String,
        report: &mut RunReport,
    ) {
        settlement.dead.push(row.id);
        let mut entry = log_entry(stored, row, row.attempts + 1, http_status, None, None);
        entry.error = Some(reason);
        settlement.log.push(entry);
        report.failed += 1;
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
