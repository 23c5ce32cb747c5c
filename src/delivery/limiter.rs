//! Rate limiters, pure over an explicit clock so their exactness is testable.
//!
//! TikTok and Reddit: a token bucket (rate per second, burst) counted in requests. X: a sliding
//! window of events (60,000 per 15 minutes by default), seeded after a restart with what the
//! delivery log says was sent in the current window, so a restart never resets the count.

use std::collections::VecDeque;
use std::time::Duration;

/// Milliseconds on the caller's clock.
pub type Millis = i64;

#[derive(Debug, Clone)]
pub enum Limiter {
    /// Generic cell rate algorithm: `interval` ms per unit, up to `burst` units at once.
    Bucket { interval: f64, tolerance: f64, tat: f64 },
    /// At most `limit` units in any `window` ms.
    Window { limit: u64, window: Millis, sent: VecDeque<(Millis, u64)>, total: u64 },
}

impl Limiter {
    /// A token bucket that starts empty: after a restart it never allows a burst on top of what
    /// the previous run may just have sent.
    pub fn bucket(per_second: f64, burst: u32, now: Millis) -> Self {
        let interval = 1000.0 / per_second.max(0.001);
        let tolerance = interval * f64::from(burst.max(1) - 1);
        Limiter::Bucket { interval, tolerance, tat: now as f64 + tolerance + interval }
    }

    /// A sliding window, seeded with recent sends `(time, units)`.
    pub fn window(limit: u64, window: Duration, recent: impl IntoIterator<Item = (Millis, u64)>) -> Self {
        let mut sent: VecDeque<(Millis, u64)> = recent.into_iter().collect();
        sent.make_contiguous().sort_by_key(|(t, _)| *t);
        let total = sent.iter().map(|(_, n)| n).sum();
        Limiter::Window { limit: limit.max(1), window: window.as_millis() as Millis, sent, total }
    }

    /// The most units one request may carry so that it can ever go without breaking the limit
    /// (X: the window's events); `None` when requests are counted, not their items.
    pub fn item_capacity(&self) -> Option<u64> {
        match self {
            Limiter::Bucket { .. } => None,
            Limiter::Window { limit, .. } => Some(*limit),
        }
    }

    /// How long to wait from `now` until `units` may go. Zero means they were taken now.
    /// Callers size requests to [`Self::item_capacity`]; larger demands are clamped to it.
    pub fn try_take(&mut self, units: u64, now: Millis) -> Duration {
        match self {
            Limiter::Bucket { interval, tolerance, tat } => {
                let units = units.max(1) as f64;
                let arrival = (*tat).max(now as f64);
                let new_tat = arrival + *interval * units;
                let allowed_at = new_tat - *tolerance - *interval;
                if allowed_at <= now as f64 {
                    *tat = new_tat;
                    Duration::ZERO
                } else {
                    Duration::from_millis((allowed_at - now as f64).ceil() as u64)
                }
            }
            Limiter::Window { limit, window, sent, total } => {
                let units = units.min(*limit);
                while sent.front().is_some_and(|(t, _)| *t <= now - *window) {
                    if let Some((_, n)) = sent.pop_front() {
                        *total -= n;
                    }
                }
                if *total + units <= *limit {
                    sent.push_back((now, units));
                    *total += units;
                    return Duration::ZERO;
                }
                // Wait until enough of the oldest sends leave the window.
                let mut freed = 0;
                for (t, n) in sent.iter() {
                    freed += n;
                    if *total - freed + units <= *limit {
                        return Duration::from_millis((*t + *window - now + 1).max(1) as u64);
                    }
                }
                Duration::from_millis(*window as u64)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives a limiter with greedy demand for `span` ms and returns the send times.
    fn greedy(limiter: &mut Limiter, units: u64, span: Millis) -> Vec<Millis> {
        let mut now = 0;
        let mut times = Vec::new();
        while now < span {
            let wait = limiter.try_take(units, now);
            if wait.is_zero() {
                times.push(now);
            } else {
                now += wait.as_millis() as Millis;
            }
        }
        times
    }

    #[test]
    fn bucket_holds_rate_and_burst_exactly() {
        let mut limiter = Limiter::bucket(50.0, 100, 0);
        let times = greedy(&mut limiter, 1, 10_000);
        // Starting empty: 50/s sustained, never more than 100 in any second.
        assert!((495..=501).contains(&times.len()), "{}", times.len());
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..].iter().take_while(|u| **u < t + 1000).count();
            assert!(in_window <= 100, "{in_window} in the second after {t}");
        }
    }

    #[test]
    fn window_never_exceeds_its_limit_in_any_window() {
        let mut limiter = Limiter::window(60_000, Duration::from_secs(900), []);
        let mut now = 0;
        let mut sends = Vec::new();
        while now < 3_600_000 {
            if limiter.try_take(500, now).is_zero() {
                sends.push(now);
            } else {
                now += 250;
            }
        }
        assert_eq!(sends.len(), 4 * 120, "four full windows in an hour");
        for (i, t) in sends.iter().enumerate() {
            let in_window = sends[i..].iter().take_while(|u| **u < t + 900_000).count() as u64 * 500;
            assert!(in_window <= 60_000, "{in_window} events in the window from {t}");
        }
    }

    #[test]
    fn window_seeded_after_restart_remembers_recent_sends() {
        let mut limiter = Limiter::window(60_000, Duration::from_secs(900), [(-60_000, 59_500)]);
        assert!(limiter.try_take(500, 0).is_zero());
        let wait = limiter.try_take(500, 0);
        assert_eq!(wait.as_millis(), 840_001, "waits until the seeded sends leave the window");
    }
}
