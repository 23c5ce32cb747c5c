//! The sandbox's shared state: injected faults and what it has accepted.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::model::Network;

/// Faults injected at run time through `POST /__sandbox/faults`; every field is optional there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

#[derive(Default)]
struct Inner {
    faults: Faults,
    stats: HashMap<Network, NetworkStats>,
    seen: HashMap<Network, HashSet<String>>,
    x_window: (u64, u64),
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
