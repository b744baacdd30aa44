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
    /// An advance past the latest [`Instant`] the platform holds stops
    /// there rather than overflowing, so `advance(Duration::MAX)` means
    /// "as late as it gets": every deadline a pool could compute (it
    /// treats one it cannot compute as "never") is then behind the clock.
    /// Has no effect on the system or tokio clocks (advance tokio's with
    /// `tokio::time::advance`).
    pub fn advance(&self, by: Duration) {
        if let Source::Manual { base, offset } = &self.source {
            let mut offset = lock(offset);
            let target = offset.saturating_add(by);
            *offset = if base.checked_add(target).is_some() {
                target
            } else {
                latest_offset(*base, *offset, target)
            };
        }
    }

    /// Whether this is a manual clock.
    pub fn is_manual(&self) -> bool {
        matches!(self.source, Source::Manual { .. })
    }
}

/// The largest offset from `base` that an [`Instant`] holds, given that
/// `valid` is one and `invalid` is not: a bisection, some hundred steps.
fn latest_offset(base: Instant, mut valid: Duration, mut invalid: Duration) -> Duration {
    while invalid - valid > Duration::from_nanos(1) {
        let mid = valid + (invalid - valid) / 2;
        if base.checked_add(mid).is_some() {
            valid = mid;
        } else {
            invalid = mid;
        }
    }
    valid
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
    fn a_manual_clock_saturates_at_the_latest_instant_instead_of_overflowing() {
        let clock = Clock::manual();
        let start = clock.now();
        clock.advance(Duration::from_secs(5));
        clock.advance(Duration::MAX);
        let latest = clock.now();
        assert!(
            latest.checked_add(Duration::from_nanos(1)).is_none(),
            "not the latest instant"
        );
        clock.advance(Duration::MAX);
        assert_eq!(clock.now(), latest);
        // Any deadline that can be computed from the start is reached.
        let far = start
            .checked_add(Duration::from_secs(2_000 * 365 * 24 * 3600))
            .unwrap();
        assert!(clock.now() >= far);
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
