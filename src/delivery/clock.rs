//! The dispatcher's clock: the system clock, or a manual one that tests move forward, so that
//! days of backoff, acceptance windows and give-up budgets can be tested in seconds.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that stands at `start_ms` until moved.
    pub fn manual(start_ms: i64) -> Self {
        Self { manual: Some(Arc::new(AtomicI64::new(start_ms))) }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match &self.manual {
            Some(at) => at.load(Ordering::SeqCst),
            None => super::now_ms(),
        }
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_millis(self.now_ms()).unwrap_or_default()
    }

    /// Moves a manual clock to `at_ms` (never backwards); a system clock ignores it.
    pub fn set_ms(&self, at_ms: i64) {
        if let Some(at) = &self.manual {
            at.fetch_max(at_ms, Ordering::SeqCst);
        }
    }

    pub fn advance(&self, by: std::time::Duration) {
        self.set_ms(self.now_ms().saturating_add(i64::try_from(by.as_millis()).unwrap_or(i64::MAX)));
    }

    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }
}
