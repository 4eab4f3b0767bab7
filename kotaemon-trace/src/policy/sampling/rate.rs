//! A lock-free rate limiter (GCRA, the token bucket's single-number form): one atomic compare-exchange
//! per decision, no lock and no clock thread.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

fn now_nanos() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Allows `per_second` events per second on average, with bursts of up to `burst` events.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    /// Nanoseconds between events at the sustained rate; `u64::MAX` when the rate is 0.
    interval: u64,
    /// How far ahead of now the theoretical arrival time may run: the burst allowance.
    tolerance: u64,
    /// Theoretical arrival time of the next event, in nanoseconds since the process epoch.
    tat: AtomicU64,
}

impl RateLimiter {
    pub(crate) fn new(per_second: f64, burst: f64) -> Self {
        let interval = if per_second > 0.0 { (1e9 / per_second) as u64 } else { u64::MAX };
        let burst = burst.max(1.0);
        let tolerance = if interval == u64::MAX { 0 } else { (interval as f64 * (burst - 1.0)) as u64 };
        RateLimiter { interval, tolerance, tat: AtomicU64::new(0) }
    }

    /// Continues where `previous` left off: the budget it had spent stays spent. A new limiter starts
    /// with its whole burst available, so one that replaced another at every poll would let an extra
    /// burst through each time.
    pub(crate) fn continue_from(&self, previous: &RateLimiter) {
        self.tat.store(previous.tat.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Takes one event's worth of budget if there is some.
    #[inline]
    pub(crate) fn try_acquire(&self) -> bool {
        self.try_acquire_at(now_nanos())
    }

    fn try_acquire_at(&self, now: u64) -> bool {
        if self.interval == u64::MAX {
            return false;
        }
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let start = tat.max(now);
            if start - now > self.tolerance {
                return false;
            }
            match self.tat.compare_exchange_weak(tat, start + self.interval, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(actual) => tat = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sustained_rate_and_burst() {
        let limiter = RateLimiter::new(10.0, 2.0);
        let t0 = 1_000_000_000;
        assert!(limiter.try_acquire_at(t0));
        assert!(limiter.try_acquire_at(t0), "a burst of 2");
        assert!(!limiter.try_acquire_at(t0));
        assert!(!limiter.try_acquire_at(t0 + 50_000_000));
        assert!(limiter.try_acquire_at(t0 + 100_000_000), "one more after 100 ms at 10/s");
        // Over 10 simulated seconds at a flood, 10/s lets through about 100 (+ the burst).
        let granted = (0..100_000u64).filter(|i| limiter.try_acquire_at(t0 + 100_000_000 + i * 100_000)).count();
        assert!((99..=102).contains(&granted), "{granted}");
    }

    #[test]
    fn zero_rate_allows_nothing() {
        let limiter = RateLimiter::new(0.0, 5.0);
        assert!(!limiter.try_acquire());
    }
}
