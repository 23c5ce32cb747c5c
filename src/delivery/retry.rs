//! When to try again: after a transient answer (5xx, 429, TikTok 40100), and while a network
//! gives no answer at all.

use std::time::Duration;

use crate::networks::MAX_WAIT;

/// Retry settings; the defaults suit ad networks' own guidance (back off, honour their wait) and
/// a desktop that is offline for a weekend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// First backoff after a transient answer; doubles per attempt.
    pub base: Duration,
    /// Longest backoff between two attempts after transient answers.
    pub cap: Duration,
    /// Transient answers are given up by age, not by count: this long after the first failed
    /// answer of a run of failures, the event is Given up (kept for replay).
    pub give_up_after: Duration,
    /// The longest wait a network's `Retry-After` / reset header is honoured for.
    pub max_wait: Duration,
    /// First wait before probing a network that gave no answer; doubles per probe.
    pub offline_base: Duration,
    /// Longest wait between two probes of an unreachable network.
    pub offline_cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(15 * 60),
            give_up_after: Duration::from_secs(24 * 3600),
            max_wait: MAX_WAIT,
            offline_base: Duration::from_secs(1),
            offline_cap: Duration::from_secs(5 * 60),
        }
    }
}

fn exponential(base: Duration, cap: Duration, step: u32, jitter: f64) -> Duration {
    let exponent = step.saturating_sub(1).min(30);
    let backoff = base.saturating_mul(1u32 << exponent).min(cap);
    backoff.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0))
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` after `attempt` failed (1-based), with `jitter` in
    /// [0, 1) spreading retries ±20 %: the larger of our backoff and the wait the network asked
    /// for (honoured up to `max_wait`). A short `Retry-After` never cuts our backoff: a network
    /// answering 503 with `Retry-After: 1` for a day is tried ever further apart.
    pub fn delay(&self, attempt: u32, asked: Option<Duration>, jitter: f64) -> Duration {
        let backoff = exponential(self.base, self.cap, attempt, jitter);
        match asked.map(|wait| wait.min(self.max_wait)) {
            Some(wait) => wait.max(backoff),
            None => backoff,
        }
    }

    /// The wait before probing an unreachable network again after `probes` unanswered sends.
    pub fn offline_delay(&self, probes: u32, jitter: f64) -> Duration {
        exponential(self.offline_base, self.offline_cap, probes, jitter)
    }

    /// Whether a run of transient failures that began at `failing_since` has used its budget.
    pub fn exhausted(&self, failing_since_ms: i64, now_ms: i64) -> bool {
        let budget = i64::try_from(self.give_up_after.as_millis()).unwrap_or(i64::MAX);
        now_ms.saturating_sub(failing_since_ms) >= budget
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_with_jitter_and_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, None, 0.5), Duration::from_secs(2));
        assert_eq!(p.delay(3, None, 0.5), Duration::from_secs(8));
        assert_eq!(p.delay(30, None, 0.5), Duration::from_secs(900));
        assert_eq!(p.delay(u32::MAX, None, 0.5), Duration::from_secs(900));
        assert_eq!(p.delay(1, None, 0.0), Duration::from_millis(1600));
        assert!(p.delay(1, None, 0.999) < Duration::from_millis(2400));
    }

    #[test]
    fn the_networks_wait_is_honoured_up_to_the_maximum() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, Some(Duration::from_secs(60)), 0.5), Duration::from_secs(60));
        assert_eq!(p.delay(1, Some(Duration::MAX), 0.5), MAX_WAIT);
    }

    #[test]
    fn a_short_network_wait_never_cuts_the_backoff() {
        let p = RetryPolicy::default();
        let asked = Some(Duration::from_secs(1));
        let waits: Vec<Duration> = (1..=10).map(|attempt| p.delay(attempt, asked, 0.5)).collect();
        assert_eq!(waits[0], Duration::from_secs(2));
        assert_eq!(waits[4], Duration::from_secs(32), "attempt 5: 2 s doubled four times, not the network's 1 s");
        assert_eq!(waits[9], Duration::from_secs(900), "capped at 15 min");
        assert!(waits.windows(2).all(|w| w[1] >= w[0]), "attempts grow apart: {waits:?}");
    }

    #[test]
    fn offline_probes_back_off_to_a_few_minutes() {
        let p = RetryPolicy::default();
        assert_eq!(p.offline_delay(1, 0.5), Duration::from_secs(1));
        assert_eq!(p.offline_delay(4, 0.5), Duration::from_secs(8));
        assert_eq!(p.offline_delay(100, 0.5), Duration::from_secs(300));
    }

    #[test]
    fn transient_failures_are_given_up_by_age() {
        let p = RetryPolicy::default();
        let day = 24 * 3600 * 1000;
        assert!(!p.exhausted(0, day - 1));
        assert!(p.exhausted(0, day));
        assert!(!p.exhausted(i64::MAX, i64::MIN), "no overflow on absurd times");
    }
}
