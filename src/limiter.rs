//! The API lane's adaptive concurrency, as TCP does it: a slow start that doubles the limit
//! each window until TDP first answers 429, then AIMD (one more per window of successes, half
//! on a 429), so every task backs off together instead of each one hammering the API.

use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Debug)]
struct Inner {
    limit: f64,
    in_flight: usize,
    last_decrease: Instant,
    /// Still in slow start: no 429 seen yet.
    slow_start: bool,
}

#[derive(Debug)]
pub struct AdaptiveLimit {
    inner: Mutex<Inner>,
    notify: Notify,
    min: usize,
    max: usize,
}

/// A slot on the lane; report how the request went, or drop it to release it silently.
pub struct Permit {
    lane: Arc<AdaptiveLimit>,
    started: Instant,
}

impl AdaptiveLimit {
    pub fn new(initial: usize, max: usize) -> Arc<Self> {
        let max = max.max(1);
        Arc::new(AdaptiveLimit {
            inner: Mutex::new(Inner {
                limit: initial.clamp(1, max) as f64,
                in_flight: 0,
                last_decrease: Instant::now(),
                slow_start: true,
            }),
            notify: Notify::new(),
            min: 1,
            max,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current limit (whole requests).
    #[cfg(test)]
    pub fn limit(&self) -> usize {
        self.lock().limit as usize
    }

    pub async fn acquire(self: &Arc<Self>) -> Permit {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut g = self.lock();
                if g.in_flight < (g.limit as usize).max(self.min) {
                    g.in_flight += 1;
                    return Permit {
                        lane: self.clone(),
                        started: Instant::now(),
                    };
                }
            }
            notified.await;
        }
    }
}

impl Permit {
    /// The request succeeded: +1 per success in slow start (doubling per window), else
    /// about +1 per full window.
    pub fn success(self) {
        let mut g = self.lane.lock();
        let step = if g.slow_start {
            1.0
        } else {
            1.0 / g.limit.max(1.0)
        };
        g.limit = (g.limit + step).min(self.lane.max as f64);
    }

    /// The server said 429: multiplicative decrease, once per round of requests (only a
    /// request sent after the last decrease reflects the current limit).
    pub fn throttled(self) {
        let mut g = self.lane.lock();
        if self.started >= g.last_decrease {
            g.limit = (g.limit / 2.0).max(self.lane.min as f64);
            g.last_decrease = Instant::now();
            g.slow_start = false;
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.lane.lock().in_flight -= 1;
        self.lane.notify.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slow_start_then_aimd() {
        let lane = AdaptiveLimit::new(8, 64);
        for _ in 0..8 {
            lane.acquire().await.success();
        }
        assert_eq!(lane.limit(), 16, "doubles in a window during slow start");
        let a = lane.acquire().await;
        let b = lane.acquire().await;
        a.throttled();
        b.throttled(); // sent before the decrease: ignored
        assert_eq!(lane.limit(), 8);
        for _ in 0..8 {
            lane.acquire().await.success();
        }
        assert_eq!(
            lane.limit(),
            8,
            "+1 per window after the first 429: {}",
            lane.limit()
        );
        lane.acquire().await.success();
        assert_eq!(lane.limit(), 9);
        for _ in 0..64 {
            lane.acquire().await.success();
        }
        assert!(lane.limit() <= 64);
    }

    #[tokio::test]
    async fn never_exceeds_the_limit() {
        let lane = AdaptiveLimit::new(2, 2);
        let a = lane.acquire().await;
        let _b = lane.acquire().await;
        let waiter = tokio::spawn({
            let lane = lane.clone();
            async move { lane.acquire().await.success() }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(a);
        waiter.await.unwrap();
    }
}
