//! When the sidecar fetches next: the refresh interval with jitter, so that the pods of a
//! Deployment that started together do not refresh together, and a capped exponential backoff
//! after failures that honours Keeper's `retry_after` when it throttles.

use std::time::Duration;

/// Spread of the interval: each wait is uniformly within ±10% of it.
const JITTER: f64 = 0.1;

/// The first retry after a failure; it doubles up to the refresh interval.
const FIRST_RETRY: Duration = Duration::from_secs(5);

/// The first retry of the init container, which the pod's start waits for: it doubles too.
const FIRST_INIT_RETRY: Duration = Duration::from_secs(1);

/// The refresh schedule of one sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    interval: Duration,
    first_retry: Duration,
}

impl Schedule {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            first_retry: FIRST_RETRY,
        }
    }

    /// The retries of the init container: from 1 s, doubling, each at most `budget`.
    pub fn for_init(budget: Duration) -> Self {
        Self {
            interval: budget,
            first_retry: FIRST_INIT_RETRY,
        }
    }

    /// The wait after a successful fetch; `unit` is a uniform random number in `[0, 1)`.
    pub fn after_success(&self, unit: f64) -> Duration {
        jittered(self.interval, unit)
    }

    /// The wait after the `failures`-th failure in a row (1 for the first): the first retry
    /// (5 s) doubling, capped at the interval, and never shorter than what Keeper asked for.
    pub fn after_failure(
        &self,
        failures: u32,
        retry_after: Option<Duration>,
        unit: f64,
    ) -> Duration {
        let doubling = self
            .first_retry
            .saturating_mul(1u32 << failures.saturating_sub(1).min(16));
        let backoff = jittered(doubling.min(self.interval), unit);
        retry_after.map_or(backoff, |asked| backoff.max(asked))
    }
}

fn jittered(base: Duration, unit: f64) -> Duration {
    let factor = 1.0 - JITTER + 2.0 * JITTER * unit.clamp(0.0, 1.0);
    base.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn success_waits_the_interval_within_ten_percent() {
        let s = Schedule::new(10 * MIN);
        assert_eq!(s.after_success(0.0), 9 * MIN);
        assert_eq!(s.after_success(0.5), 10 * MIN);
        assert_eq!(s.after_success(1.0), 11 * MIN);
    }

    #[test]
    fn failures_back_off_exponentially_up_to_the_interval() {
        let s = Schedule::new(MIN);
        let waits: Vec<u64> = (1..=6)
            .map(|n| s.after_failure(n, None, 0.5).as_secs())
            .collect();
        assert_eq!(waits, [5, 10, 20, 40, 60, 60]);
        assert_eq!(s.after_failure(u32::MAX, None, 0.5), MIN);
    }

    #[test]
    fn throttling_waits_at_least_what_keeper_asked() {
        let s = Schedule::new(10 * MIN);
        assert_eq!(
            s.after_failure(1, Some(Duration::from_secs(30)), 0.5),
            Duration::from_secs(30)
        );
        assert_eq!(
            s.after_failure(6, Some(Duration::from_secs(30)), 0.5),
            Duration::from_secs(160)
        );
    }
}
