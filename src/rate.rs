//! A bandwidth limit for the whole job, over all its connections: each chunk read is paid
//! for before the next read, so the senders slow down as TCP's window fills (as curl's
//! `--limit-rate` does). The limit can change while the job runs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How far ahead of the limit a quiet moment lets the job run: a short burst, no more.
const BURST: Duration = Duration::from_millis(250);

#[derive(Debug)]
pub struct RateLimit {
    /// Bytes per second; 0: no limit.
    rate: AtomicU64,
    /// When the bytes taken so far are paid for.
    paid_until: Mutex<Instant>,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            rate: AtomicU64::new(0),
            paid_until: Mutex::new(
                Instant::now()
                    .checked_sub(BURST)
                    .unwrap_or_else(Instant::now),
            ),
        }
    }
}

impl RateLimit {
    /// `None` (or 0) lifts the limit.
    pub fn set(&self, bytes_per_second: Option<u64>) {
        self.rate
            .store(bytes_per_second.unwrap_or(0), Ordering::Relaxed);
    }

    pub fn get(&self) -> Option<u64> {
        Some(self.rate.load(Ordering::Relaxed)).filter(|r| *r > 0)
    }

    /// Takes `n` bytes; returns how long to wait before reading more.
    pub fn take(&self, n: u64) -> Duration {
        let Some(rate) = self.get() else {
            return Duration::ZERO;
        };
        let now = Instant::now();
        let mut paid = self.paid_until.lock().unwrap_or_else(|e| e.into_inner());
        let earliest = now.checked_sub(BURST).unwrap_or(now);
        if *paid < earliest {
            *paid = earliest;
        }
        *paid += Duration::from_secs_f64(n as f64 / rate as f64);
        paid.saturating_duration_since(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_limit_nothing_waits_and_with_one_the_bytes_are_paced() {
        let r = RateLimit::default();
        assert_eq!(r.take(1 << 30), Duration::ZERO);
        r.set(Some(1_000_000));
        // A quiet start allows a quarter second's burst, then each byte waits its turn.
        let first = r.take(250_000);
        assert!(first <= Duration::from_millis(5), "{first:?}");
        let next = r.take(500_000);
        assert!(
            next >= Duration::from_millis(480) && next <= Duration::from_millis(510),
            "{next:?}"
        );
        r.set(None);
        assert_eq!(r.take(1 << 30), Duration::ZERO);
    }
}
