//! When and how long to wait before trying again: exponential backoff with full jitter,
//! `Retry-After` honoured, and a per-file budget that only attempts without progress use up.

use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// First backoff ceiling; doubles with each failure.
    pub base_delay: Duration,
    /// Largest backoff ceiling.
    pub max_delay: Duration,
    /// Attempts in a row without progress before a file fails.
    pub budget: u32,
    /// The longest `Retry-After` obeyed; a server asking for more gets this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(20),
            budget: Self::DEFAULT_BUDGET,
            max_retry_after: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    pub const DEFAULT_BUDGET: u32 = 8;

    /// The wait after the `failures`-th failure in a row (1-based). `rand01` draws from [0, 1).
    pub fn delay(
        &self,
        failures: u32,
        retry_after: Option<Duration>,
        rand01: &mut dyn FnMut() -> f64,
    ) -> Duration {
        let exp = failures.saturating_sub(1).min(30);
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << exp.min(20))
            .min(self.max_delay);
        let jittered = ceiling.mul_f64(rand01().clamp(0.0, 1.0));
        match retry_after {
            Some(ra) => jittered.max(ra.min(self.max_retry_after)),
            None => jittered,
        }
    }
}

/// Parses `Retry-After`: delta seconds or an HTTP date (relative to `now`).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Counts one file's attempts against the policy's budget.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attempts {
    /// Every attempt, for the report.
    pub total: u32,
    /// Failures since the last attempt that made progress.
    pub stalled: u32,
}

impl Attempts {
    pub fn started(&mut self) {
        self.total += 1;
    }

    /// Records a failure; true while the budget allows another attempt.
    pub fn failed(&mut self, progressed: bool, policy: &RetryPolicy) -> bool {
        if progressed {
            self.stalled = 0;
        }
        self.stalled += 1;
        self.stalled < policy.budget
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_full_jitter() {
        let p = RetryPolicy::default();
        let mut top = || 0.999_999;
        assert!(p.delay(1, None, &mut top) < Duration::from_millis(251));
        assert!(p.delay(3, None, &mut top) > Duration::from_millis(990));
        assert!(p.delay(30, None, &mut top) <= p.max_delay);
        let mut zero = || 0.0;
        assert_eq!(p.delay(5, None, &mut zero), Duration::ZERO);
    }

    #[test]
    fn retry_after_is_a_floor_and_is_capped() {
        let p = RetryPolicy::default();
        let mut zero = || 0.0;
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3)), &mut zero),
            Duration::from_secs(3)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(9999)), &mut zero),
            p.max_retry_after
        );
    }

    #[test]
    fn retry_after_seconds_and_http_date() {
        let now = httpdate::parse_http_date("Wed, 25 Nov 2026 12:00:00 GMT").unwrap();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 12:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 11:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn only_attempts_without_progress_use_the_budget() {
        let p = RetryPolicy {
            budget: 3,
            ..RetryPolicy::default()
        };
        let mut a = Attempts::default();
        assert!(a.failed(false, &p));
        assert!(a.failed(false, &p));
        // Progress resets the count.
        assert!(a.failed(true, &p));
        assert!(a.failed(false, &p));
        assert!(!a.failed(false, &p));
    }
}
