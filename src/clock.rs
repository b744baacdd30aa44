//! Where time comes from: the system clock, a manual clock a test advances
//! by hand, or (feature `tokio`) tokio's clock, which a paused test runtime
//! makes virtual.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::lock::lock;

/// A source of [`Instant`]s shared by a journal, a pool and a fault layer.
///
/// Cloning shares the source: advancing a manual clock advances every clone.
#[derive(Debug, Clone)]
pub struct Clock {
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    System,
    Manual {
        base: Instant,
        offset: Arc<Mutex<Duration>>,
    },
    #[cfg(feature = "tokio")]
    Tokio,
}

impl Clock {
    /// The system's monotonic clock.
    pub fn system() -> Self {
        Clock {
            source: Source::System,
        }
    }

    /// A clock that stands still until [`advance`](Clock::advance) moves it.
    pub fn manual() -> Self {
        Clock {
            source: Source::Manual {
                base: Instant::now(),
                offset: Arc::new(Mutex::new(Duration::ZERO)),
            },
        }
    }

    /// tokio's clock: virtual under a paused runtime (`start_paused`).
    #[cfg(feature = "tokio")]
    pub fn tokio() -> Self {
        Clock {
            source: Source::Tokio,
        }
    }

    /// The current instant.
    pub fn now(&self) -> Instant {
        match &self.source {
            Source::System => Instant::now(),
            Source::Manual { base, offset } => *base + *lock(offset),
            #[cfg(feature = "tokio")]
            Source::Tokio => tokio::time::Instant::now().into_std(),
        }
    }

    /// Moves a manual clock forward by `by`.
    ///
    /// A manual clock goes at most [`Clock::MANUAL_SPAN`] past the moment
    /// it was made: an advance beyond that stops there rather than
    /// overflowing (so `advance(Duration::MAX)` is "as late as it gets").
    /// Has no effect on the system or tokio clocks (advance tokio's with
    /// `tokio::time::advance`).
    pub fn advance(&self, by: Duration) {
        if let Source::Manual { offset, .. } = &self.source {
            let mut offset = lock(offset);
            *offset = offset.saturating_add(by).min(Clock::MANUAL_SPAN);
        }
    }

    /// How far past its start a manual clock can go: 1,000 years of 365
    /// days, far beyond any timeout a test sets, and well within what an
    /// [`Instant`] holds.
    pub const MANUAL_SPAN: Duration = Duration::from_secs(1_000 * 365 * 24 * 60 * 60);

    /// Whether this is a manual clock.
    pub fn is_manual(&self) -> bool {
        matches!(self.source, Source::Manual { .. })
    }
}

impl Default for Clock {
    /// The system clock.
    fn default() -> Self {
        Clock::system()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_saturates_instead_of_overflowing() {
        let clock = Clock::manual();
        let start = clock.now();
        clock.advance(Duration::MAX);
        clock.advance(Duration::MAX);
        assert_eq!(clock.now() - start, Clock::MANUAL_SPAN);
    }

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = Clock::manual();
        let t0 = clock.now();
        assert_eq!(clock.now(), t0);
        clock.clone().advance(Duration::from_millis(250));
        assert_eq!(clock.now() - t0, Duration::from_millis(250));
    }
}
