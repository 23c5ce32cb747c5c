//! The dispatcher's clock: the system clock, or a manual one that tests move forward, so that
//! days of backoff, acceptance windows and give-up budgets can be tested in seconds.
//!
//! Two readings: wall time (epoch milliseconds: what is stored, what networks compare), and a
//! monotonic time that only goes forward, for rate limiters. The wall clock can step back (NTP,
//! a user fixing the time zone); a limiter on it would wait for the lost hour to pass again.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<Mutex<Manual>>>,
}

/// A manual clock's two readings.
#[derive(Debug, Clone, Copy)]
struct Manual {
    wall_ms: i64,
    monotonic_ms: i64,
}

/// The monotonic origin of the system clock: the first reading in this process.
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that stands at `start_ms` until moved.
    pub fn manual(start_ms: i64) -> Self {
        Self { manual: Some(Arc::new(Mutex::new(Manual { wall_ms: start_ms, monotonic_ms: 0 }))) }
    }

    fn read(&self) -> Option<Manual> {
        self.manual.as_ref().map(|m| *m.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn update(&self, change: impl FnOnce(&mut Manual)) {
        if let Some(m) = &self.manual {
            change(&mut m.lock().unwrap_or_else(|p| p.into_inner()));
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match self.read() {
            Some(m) => m.wall_ms,
            None => super::now_ms(),
        }
    }

    /// Milliseconds on a clock that never goes back (comparable only within this process).
    pub fn monotonic_ms(&self) -> i64 {
        match self.read() {
            Some(m) => m.monotonic_ms,
            None => i64::try_from(origin().elapsed().as_millis()).unwrap_or(i64::MAX),
        }
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_millis(self.now_ms()).unwrap_or_default()
    }

    /// Moves a manual clock to `at_ms` (never backwards); a system clock ignores it.
    pub fn set_ms(&self, at_ms: i64) {
        self.update(|m| {
            if at_ms > m.wall_ms {
                m.monotonic_ms = m.monotonic_ms.saturating_add(at_ms - m.wall_ms);
                m.wall_ms = at_ms;
            }
        });
    }

    pub fn advance(&self, by: std::time::Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.update(|m| {
            m.wall_ms = m.wall_ms.saturating_add(by);
            m.monotonic_ms = m.monotonic_ms.saturating_add(by);
        });
    }

    /// Steps a manual clock's wall time by `by_ms` (either way), as NTP or a user does, while
    /// monotonic time stands still.
    pub fn step_wall(&self, by_ms: i64) {
        self.update(|m| m.wall_ms = m.wall_ms.saturating_add(by_ms));
    }

    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wall_step_leaves_monotonic_time_alone() {
        let clock = Clock::manual(10_000);
        clock.advance(std::time::Duration::from_millis(500));
        clock.step_wall(-3_600_000);
        assert_eq!((clock.now_ms(), clock.monotonic_ms()), (10_500 - 3_600_000, 500));
        clock.set_ms(clock.now_ms() + 100);
        assert_eq!(clock.monotonic_ms(), 600, "moving forward moves both");
        let wall = clock.now_ms();
        clock.set_ms(wall - 1_000);
        assert_eq!((clock.now_ms(), clock.monotonic_ms()), (wall, 600), "set_ms never goes backwards");
    }

    #[test]
    fn the_system_clock_is_monotonic() {
        let clock = Clock::system();
        let first = clock.monotonic_ms();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(clock.monotonic_ms() >= first + 5);
    }
}
