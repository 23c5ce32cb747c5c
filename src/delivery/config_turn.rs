//! One config's share of delivery: claim a batch under a lease token, send it within the
//! config's rate limit, classify the answers, settle. Each runs in a task of its own, so one
//! config's rate-limit wait, slow network or failure never holds up another's.

use std::collections::VecDeque;
use std::time::Duration;

use super::dispatcher::{RunReport, SendContext, Shared};
use super::heartbeat::Heartbeat;
use super::limiter::Limiter;
use super::send::{exchange, Exchange};
use crate::freshness;
use crate::model::{ConversionEvent, DeliveryStatus, Network};
use crate::networks::{self, ItemOutcome, PreparedEvent, Request};
use crate::quality::{self, KeySet};
use crate::store::{
    Leased, NewLogEntry, Offline, Pause, RequestRecord, Retry, Settlement, StoreError, StoredConfig, TrafficCount,
};

/// One request of a batch and the batch rows it carries (`item_events` index into `members`).
pub(super) struct Job {
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
pub(super) struct ConfigTurn {
    pub(super) shared: Shared,
    pub(super) limiter: Option<Limiter>,
    pub(super) report: RunReport,
    pub(super) rng: fastrand::Rng,
    pub(super) token: String,
}

impl ConfigTurn {
    /// Claims and delivers one batch; true when there was one.
    pub(super) async fn run(&mut self, stored: &StoredConfig) -> Result<bool, StoreError> {
        let options = self.shared.options.clone();
        self.ensure_limiter(stored).await?;
        let per_request = self.max_items(stored);
        // A conversion budget per window (X) claims one request's worth: a batch sent in part
        // would keep its sent part unsettled (and re-sent after a stop) until the window opens.
        let requests = match self.limiter.as_ref().and_then(Limiter::item_capacity) {
            Some(_) => 1,
            None => options.requests_per_claim.max(1),
        };
        let limit = per_request * requests;
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
        // Limiters count on the monotonic clock; the log's sends (wall time) are placed on it
        // by their age.
        let (wall, monotonic) = (self.shared.options.clock.now_ms(), self.shared.options.clock.monotonic_ms());
        self.limiter = Some(match stored.config.network() {
            Network::X => {
                let since = wall - i64::try_from(rates.x_window.as_millis()).unwrap_or(0);
                let recent = self.shared.store.sent_per_second(stored.id, since).await?;
                let recent = recent.into_iter().map(|(at, n)| (monotonic - (wall - at).max(0), n));
                Limiter::window(rates.x_events_per_window, rates.x_window, recent)
            }
            _ => Limiter::bucket(rates.requests_per_second, rates.request_burst, monotonic),
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
            let wait = limiter.try_take(units, clock.monotonic_ms());
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
        // `rows[i]` is the queue row of `prepared[i]`, `matched[i]` its match keys and name.
        let mut rows: Vec<&Leased> = Vec::with_capacity(leased.len());
        let mut prepared: Vec<PreparedEvent> = Vec::with_capacity(leased.len());
        let mut matched: Vec<(KeySet, String)> = Vec::with_capacity(leased.len());
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
                let too_old = event.occurred_at < clock.now() - networks::acceptance_window(network).max_age;
                let reason = if too_old { "too_old" } else { "ahead_of_time" };
                s.traffic.push(delivery_count(stored, freshness::expired_kind(reason)));
                self.fail_unsent(&mut s, stored, row, problem);
                continue;
            }
            match networks::prepare_goal(&stored.config, &event, &row.goal_key, false) {
                Ok(p) => {
                    rows.push(row);
                    prepared.push(p);
                    matched.push(match_keys(&stored.config, &event, &row.goal_key));
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
                        s.traffic.push(delivery_count(stored, freshness::fresh_kind(at - row.occurred_at)));
                        let (keys, name) = &matched[index];
                        let kinds = quality::count_kinds(*keys, name, quality::Stage::Delivered);
                        s.traffic.extend(kinds.map(|kind| delivery_count(stored, kind)));
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
                    network,
                    item_players: job
                        .request
                        .item_events
                        .iter()
                        .map(|&k| rows[job.members[k]].player_id.clone())
                        .collect(),
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

/// The match keys a queued conversion carries and the name its counts go under (its X goal, else
/// its event name). A national phone number was already read in the game's country when the
/// event was accepted, so no default country is needed here.
fn match_keys(config: &crate::model::PostbackConfig, event: &ConversionEvent, goal_key: &str) -> (KeySet, String) {
    let keys = networks::Matchability::new(None).keys(config, event);
    let name = if goal_key.is_empty() { &event.name } else { goal_key };
    (keys, name.to_owned())
}

/// One hourly count of a config's deliveries (source `delivery`: no event source's).
fn delivery_count(stored: &StoredConfig, kind: String) -> TrafficCount {
    TrafficCount { game_id: stored.game_id, source: "delivery".into(), config_id: stored.id, kind, count: 1 }
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
