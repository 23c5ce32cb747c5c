//! When to try again after a transient failure.

use std::time::Duration;

/// Retry settings; the defaults suit ad networks' own guidance (back off, honour their wait).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, including the first; the last failure marks the event Failed.
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 8, base: Duration::from_secs(2), cap: Duration::from_secs(15 * 60) }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` after `attempt` failed (1-based), with `jitter` in
    /// [0, 1) spreading retries ±20 %; a wait the network asked for is never shortened.
    pub fn delay(&self, attempt: u32, asked: Option<Duration>, jitter: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let backoff = self.base.saturating_mul(1 << exponent).min(self.cap);
        let spread = backoff.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0));
        match asked {
            Some(wait) => wait.max(spread.min(wait + Duration::from_secs(1))),
            None => spread,
        }
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
        assert_eq!(p.delay(1, None, 0.0), Duration::from_millis(1600));
        assert!(p.delay(1, None, 0.999) < Duration::from_millis(2400));
    }

    #[test]
    fn the_networks_wait_is_honoured() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, Some(Duration::from_secs(60)), 0.5), Duration::from_secs(60));
        assert!(p.delay(5, Some(Duration::from_secs(1)), 0.5) >= Duration::from_secs(1));
    }
}
