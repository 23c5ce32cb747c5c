//! The sandbox's shared state: injected faults and what it has accepted.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::model::Network;

/// Faults injected at run time through `POST /__sandbox/faults`; every field is optional there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Share of requests (0.0–1.0) answered with `status` instead of being processed.
    pub error_rate: f64,
    /// The status those requests get: 5xx, 429 (with the network's rate-limit headers), 401, 403.
    pub status: u16,
    /// Added to every network request.
    pub latency_ms: u64,
    /// Tokens that no longer work (as if regenerated or revoked by the user).
    pub revoked_tokens: Vec<String>,
    /// X answers refused conversions inside a 200 (`conversions_processed` < sent) instead of a 400.
    pub x_partial_success: bool,
    /// Events X accepts per window before answering 429.
    pub x_window_limit: u64,
    /// Length of X's rate-limit window in seconds (15 minutes on the real API).
    pub x_window_secs: u64,
    /// The next this many requests fail with `status`, whatever `error_rate` says ("for a while").
    pub fail_next: u64,
    /// Sent verbatim as `Retry-After` (and, by X, as `x-rate-limit-reset`) with injected
    /// answers: hostile values test the client's clamping.
    pub retry_after: Option<String>,
    /// Share (0.0–1.0) of otherwise valid X conversions refused one by one inside a 200, as
    /// X does for identifiers it cannot match.
    pub x_reject_rate: f64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            error_rate: 0.0,
            status: 503,
            latency_ms: 0,
            revoked_tokens: Vec::new(),
            x_partial_success: false,
            x_window_limit: 60_000,
            x_window_secs: 900,
            fail_next: 0,
            retry_after: None,
            x_reject_rate: 0.0,
        }
    }
}

/// Per-network counters, as `GET /__sandbox/stats` shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkStats {
    pub requests: u64,
    /// Events (X: conversions) processed, duplicates included.
    pub accepted: u64,
    /// Distinct event ids among the accepted (X: conversion id + event tag).
    pub distinct_event_ids: u64,
    /// Accepted events whose id had been accepted before.
    pub duplicates: u64,
    /// Events refused for their payload or credentials (injected failures are not counted).
    pub rejected: u64,
    /// Events accepted with a test code (not counted above).
    pub test_events: u64,
    /// The most events accepted from one request.
    pub largest_batch: u64,
}

/// What one pixel received, as the network's own Events Manager shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct PixelView {
    pub network: Network,
    pub pixel: String,
    /// Live events (X: conversions) accepted, duplicates included.
    pub events: u64,
    /// Events received under each test code (TikTok test_event_code, Reddit test_id).
    pub test_events: std::collections::BTreeMap<String, u64>,
    /// How many accepted events carried each match key (ttclid, email, phone, ip, …).
    pub match_keys: std::collections::BTreeMap<String, u64>,
    /// Epoch ms of the last accepted event.
    pub last_received_ms: Option<i64>,
}

#[derive(Default)]
struct Inner {
    faults: Faults,
    stats: HashMap<Network, NetworkStats>,
    seen: HashMap<Network, HashSet<String>>,
    x_window: (u64, u64),
    pixels: std::collections::BTreeMap<(Network, String), PixelView>,
}

/// The match keys an accepted network item carries (no values: names only).
fn match_keys(network: Network, item: &serde_json::Value) -> Vec<String> {
    let object_keys = |v: Option<&serde_json::Value>| -> Vec<String> {
        v.and_then(serde_json::Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default()
    };
    match network {
        Network::TikTok => object_keys(item.get("user")),
        Network::Reddit => {
            let mut keys = object_keys(item.get("user"));
            if item.get("click_id").is_some() {
                keys.push("click_id".into());
            }
            keys
        }
        Network::X => item
            .get("identifiers")
            .and_then(serde_json::Value::as_array)
            .map(|ids| ids.iter().flat_map(|i| object_keys(Some(i))).collect())
            .unwrap_or_default(),
    }
}

/// Thread-safe state behind every sandbox route.
pub struct SandboxState {
    inner: Mutex<Inner>,
    rng: Mutex<fastrand::Rng>,
    /// The X authorisation servers' tokens and codes.
    pub oauth: super::oauth::OAuthServer,
}

impl Default for SandboxState {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            rng: Mutex::new(fastrand::Rng::with_seed(0x5eed)),
            oauth: Default::default(),
        }
    }
}

pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

impl SandboxState {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panicking handler must not take the sandbox down with it.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn faults(&self) -> Faults {
        self.lock().faults.clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    pub fn stats(&self) -> HashMap<Network, NetworkStats> {
        let inner = self.lock();
        Network::ALL.iter().map(|n| (*n, inner.stats.get(n).cloned().unwrap_or_default())).collect()
    }

    pub fn is_revoked(&self, token: &str) -> bool {
        self.lock().faults.revoked_tokens.iter().any(|t| t == token)
    }

    /// Whether this request should fail by injection: one of the `fail_next` ones, or drawn
    /// against `error_rate`.
    pub fn draw_fault(&self) -> Option<u16> {
        let faults = {
            let mut inner = self.lock();
            if inner.faults.fail_next > 0 {
                inner.faults.fail_next -= 1;
                return Some(inner.faults.status);
            }
            inner.faults.clone()
        };
        if faults.error_rate <= 0.0 {
            return None;
        }
        let roll = self.rng.lock().unwrap_or_else(|p| p.into_inner()).f64();
        (roll < faults.error_rate).then_some(faults.status)
    }

    pub fn count_request(&self, network: Network) {
        self.lock().stats.entry(network).or_default().requests += 1;
    }

    pub fn count_rejected(&self, network: Network, events: u64) {
        self.lock().stats.entry(network).or_default().rejected += events;
    }

    pub fn count_test_events(&self, network: Network, events: u64) {
        self.lock().stats.entry(network).or_default().test_events += events;
    }

    /// Records what a pixel received: live items (their match keys), or test events under a code.
    pub fn record_pixel(&self, network: Network, pixel: &str, test_code: Option<&str>, items: &[serde_json::Value]) {
        let mut inner = self.lock();
        let view = inner.pixels.entry((network, pixel.to_owned())).or_insert_with(|| PixelView {
            network,
            pixel: pixel.to_owned(),
            events: 0,
            test_events: Default::default(),
            match_keys: Default::default(),
            last_received_ms: None,
        });
        match test_code {
            Some(code) => *view.test_events.entry(code.to_owned()).or_default() += items.len() as u64,
            None => {
                view.events += items.len() as u64;
                for item in items {
                    for key in match_keys(network, item) {
                        *view.match_keys.entry(key).or_default() += 1;
                    }
                }
            }
        }
        view.last_received_ms = Some(now_secs() as i64 * 1000);
    }

    /// Every pixel's view, by network then pixel.
    pub fn pixels(&self) -> Vec<PixelView> {
        self.lock().pixels.values().cloned().collect()
    }

    /// Forgets what was received (counters, pixels, dedup memory) and clears the faults.
    pub fn reset(&self) {
        let mut inner = self.lock();
        *inner = Inner::default();
    }

    /// A draw for X's per-conversion refusal fault.
    pub fn draw_x_reject(&self) -> bool {
        let rate = self.lock().faults.x_reject_rate;
        rate > 0.0 && self.rng.lock().unwrap_or_else(|p| p.into_inner()).f64() < rate
    }

    /// Records accepted events by their dedup keys.
    pub fn accept<'a>(&self, network: Network, keys: impl IntoIterator<Item = &'a str>) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let seen = inner.seen.entry(network).or_default();
        let stats = inner.stats.entry(network).or_default();
        let mut batch = 0;
        for key in keys {
            batch += 1;
            stats.accepted += 1;
            if seen.insert(key.to_owned()) {
                stats.distinct_event_ids += 1;
            } else {
                stats.duplicates += 1;
            }
        }
        stats.largest_batch = stats.largest_batch.max(batch);
    }

    /// X's 15-minute window: takes `events` from it, or returns `Err(reset)` when it is spent.
    /// Returns `(limit, remaining, reset)` for the rate-limit headers.
    pub fn x_take(&self, events: u64) -> Result<(u64, u64, u64), (u64, u64)> {
        let mut inner = self.lock();
        let limit = inner.faults.x_window_limit;
        let length = inner.faults.x_window_secs.max(1);
        let now = now_secs();
        let window_start = now - now % length;
        if inner.x_window.0 != window_start {
            inner.x_window = (window_start, 0);
        }
        let reset = window_start + length;
        if inner.x_window.1 + events > limit {
            return Err((limit, reset));
        }
        inner.x_window.1 += events;
        Ok((limit, limit - inner.x_window.1, reset))
    }
}
