//! Bandwidth pacing: a per-stream rate and a rate shared by all streams, both by absolute
//! deadlines so that timer granularity does not accumulate into drift.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// The shared budget of all S3 streams: a virtual clock of when the link is next free.
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

    /// Books `n` bytes on the shared link, ending no earlier than `earliest_end` (when the
    /// stream's own rate lets them out), and returns when their transmission ends.
    fn reserve(&self, n: usize, earliest_end: Instant) -> Instant {
        let Some(bps) = self.bps else {
            return earliest_end;
        };
        let d = Duration::from_secs_f64(n as f64 / bps as f64);
        let now = Instant::now();
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        // Capacity left unused in the past is gone: an idle link does not save up bursts.
        let free_from = match *next {
            Some(t) => t.max(now.checked_sub(d).unwrap_or(now)),
            None => now.checked_sub(d).unwrap_or(now),
        };
        let start = free_from.max(earliest_end.checked_sub(d).unwrap_or(earliest_end));
        let end = start + d;
        *next = Some(end);
        end
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

    /// Waits until `n` more bytes may go out on this stream and on the shared link.
    pub async fn pace(&mut self, n: usize, total: &TotalPacer) {
        let own = match self.bps {
            Some(bps) => {
                self.started + Duration::from_secs_f64((self.sent + n as u64) as f64 / bps as f64)
            }
            None => Instant::now(),
        };
        let due = total.reserve(n, own);
        tokio::time::sleep_until(due).await;
        self.sent += n as u64;
    }
}
