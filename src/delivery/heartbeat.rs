//! A running batch keeps its lease: while it is being sent (rate-limit waits, re-sends one by
//! one, slow networks), its lease is renewed every third of its length, so no other dispatcher
//! re-claims rows that are still in flight.

use std::future::Future;
use std::time::Duration;

use super::clock::Clock;
use crate::store::Store;

pub struct Heartbeat {
    store: Store,
    token: String,
    lease: Duration,
    clock: Clock,
}

impl Heartbeat {
    pub fn new(store: Store, token: String, lease: Duration, clock: Clock) -> Self {
        Self { store, token, lease, clock }
    }

    /// Runs `work` to its end, renewing the lease meanwhile.
    pub async fn keep_alive<T>(&self, work: impl Future<Output = T>) -> T {
        tokio::pin!(work);
        let period = (self.lease / 3).max(Duration::from_millis(10));
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = beat.tick() => {
                    let until = self.clock.now_ms().saturating_add(i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX / 2));
                    if let Err(e) = self.store.extend_lease(&self.token, until).await {
                        tracing::warn!(error = %e, "could not renew a batch's lease; it is renewed again shortly");
                    }
                }
            }
        }
    }
}
