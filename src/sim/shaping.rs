//! Bandwidth pacing: a per-stream rate and a rate shared by all streams, both by absolute
//! deadlines so that timer granularity does not accumulate into drift.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// The shared budget of all S3 streams.
#[derive(Debug)]
pub struct TotalPacer {
    bps: Option<u64>,
    next: Mutex<Option<Instant>>,
}

impl TotalPacer {
    pub fn new(bps: Option<u64>) -> Self {
        TotalPacer {
            bps,
            next: Mutex::new(None),
        }
    }

    /// Reserves `n` bytes and returns when their transmission would end at the shared rate.
    fn reserve(&self, n: usize) -> Option<Instant> {
        let bps = self.bps?;
        let now = Instant::now();
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let start = match *next {
            Some(t) if t > now => t,
            _ => now,
        };
        let end = start + Duration::from_secs_f64(n as f64 / bps as f64);
        *next = Some(end);
        Some(end)
    }
}

/// Pacing of one stream.
pub struct StreamPacer {
    bps: Option<u64>,
    started: Instant,
    sent: u64,
}

impl StreamPacer {
    pub fn new(bps: Option<u64>) -> Self {
        StreamPacer {
            bps,
            started: Instant::now(),
            sent: 0,
        }
    }

    /// Waits until `n` more bytes may go out on this stream and in total.
    pub async fn pace(&mut self, n: usize, total: &TotalPacer) {
        if let Some(bps) = self.bps {
            let due =
                self.started + Duration::from_secs_f64((self.sent + n as u64) as f64 / bps as f64);
            tokio::time::sleep_until(due).await;
        }
        if let Some(at) = total.reserve(n) {
            tokio::time::sleep_until(at).await;
        }
        self.sent += n as u64;
    }
}
