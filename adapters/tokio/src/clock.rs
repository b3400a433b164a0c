//! The one place where time enters the adapter.
//!
//! Everything else asks a [`Clock`] for `now` and for the tokio deadline of a core
//! [`Instant`]. Because the clock is `tokio::time::Instant`, tests that
//! call `tokio::time::pause()` drive every heartbeat deterministically.

use std::time::Duration;

use heartbeat_core::Instant;

/// Converts `tokio::time::Instant` to and from the core's microsecond [`Instant`], relative
/// to the moment the clock was created.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: tokio::time::Instant,
}

impl Clock {
    /// A clock whose origin is now.
    #[must_use]
    pub fn new() -> Clock {
        Clock {
            start: tokio::time::Instant::now(),
        }
    }

    /// The current time as the core sees it.
    #[must_use]
    pub fn now(&self) -> Instant {
        self.from_tokio(tokio::time::Instant::now())
    }

    /// A tokio instant as the core sees it (saturating at the origin).
    #[must_use]
    pub fn from_tokio(&self, t: tokio::time::Instant) -> Instant {
        let since = t.saturating_duration_since(self.start);
        Instant::from_micros(u64::try_from(since.as_micros()).unwrap_or(u64::MAX))
    }

    /// The tokio instant of a core deadline. "Never" ([`Instant::MAX`]) maps to about a year
    /// from now, which tokio's timer accepts.
    #[must_use]
    pub fn to_tokio(&self, t: Instant) -> tokio::time::Instant {
        const FAR: Duration = Duration::from_secs(365 * 24 * 3600);
        let now = tokio::time::Instant::now();
        let target = self.start.checked_add(t.since_origin());
        match target {
            Some(target) if target <= now + FAR => target,
            _ => now + FAR,
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn round_trips_under_paused_time() {
        let clock = Clock::new();
        assert_eq!(clock.now(), Instant::ZERO);
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert_eq!(clock.now(), Instant::from_millis(1500));
        let deadline = clock.to_tokio(Instant::from_secs(2));
        assert_eq!(
            deadline - tokio::time::Instant::now(),
            Duration::from_millis(500)
        );
        assert!(clock.to_tokio(Instant::MAX) > tokio::time::Instant::now());
    }
}
