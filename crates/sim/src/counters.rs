//! What the simulator saw, readable over HTTP at `GET /_sim/counters` and in process.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Counters {
    requests: Mutex<BTreeMap<String, u64>>,
    per_object: Mutex<BTreeMap<String, (usize, usize)>>,
    api_in_flight: AtomicUsize,
    api_peak: AtomicUsize,
    s3_streams: AtomicUsize,
    s3_peak: AtomicUsize,
    bytes_served: AtomicU64,
    s3_with_tdp_headers: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CountersSnapshot {
    /// "endpoint status" -> count, e.g. "retrieve 200", "s3 206".
    pub requests: BTreeMap<String, u64>,
    pub api_peak_concurrent: usize,
    pub s3_peak_streams: usize,
    /// The highest number of concurrent streams seen on any one object.
    pub s3_peak_streams_one_object: usize,
    pub bytes_served: u64,
    pub s3_requests_with_tdp_headers: u64,
}

impl CountersSnapshot {
    pub fn count(&self, key: &str) -> u64 {
        self.requests.get(key).copied().unwrap_or(0)
    }

    /// All requests to one endpoint ("retrieve" or "s3"), whatever their status.
    pub fn total(&self, endpoint: &str) -> u64 {
        self.requests
            .iter()
            .filter(|(k, _)| k.split(' ').next() == Some(endpoint))
            .map(|(_, v)| v)
            .sum()
    }
}

fn raise_peak(peak: &AtomicUsize, now: usize) {
    peak.fetch_max(now, Ordering::Relaxed);
}

impl Counters {
    pub fn request(&self, endpoint: &str, status: u16) {
        let mut map = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(format!("{endpoint} {status}")).or_insert(0) += 1;
    }

    pub fn api_enter(&self) -> usize {
        let now = self.api_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        raise_peak(&self.api_peak, now);
        now
    }

    pub fn api_leave(&self) {
        self.api_in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    pub fn stream_open(&self, key: &str) {
        let now = self.s3_streams.fetch_add(1, Ordering::SeqCst) + 1;
        raise_peak(&self.s3_peak, now);
        let mut map = self.per_object.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(key.to_string()).or_insert((0, 0));
        entry.0 += 1;
        entry.1 = entry.1.max(entry.0);
    }

    pub fn stream_close(&self, key: &str) {
        self.s3_streams.fetch_sub(1, Ordering::SeqCst);
        let mut map = self.per_object.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = map.get_mut(key) {
            entry.0 = entry.0.saturating_sub(1);
        }
    }

    pub fn served(&self, n: u64) {
        self.bytes_served.fetch_add(n, Ordering::Relaxed);
    }

    pub fn tdp_headers_on_s3(&self) {
        self.s3_with_tdp_headers.fetch_add(1, Ordering::Relaxed);
    }

    /// Starts the peaks afresh (e.g. once a job has settled).
    pub fn reset_peaks(&self) {
        self.api_peak.store(0, Ordering::Relaxed);
        self.s3_peak.store(0, Ordering::Relaxed);
        let mut map = self.per_object.lock().unwrap_or_else(|e| e.into_inner());
        for v in map.values_mut() {
            v.1 = v.0;
        }
    }

    pub fn snapshot(&self) -> CountersSnapshot {
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let one_object = self
            .per_object
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|v| v.1)
            .max()
            .unwrap_or(0);
        CountersSnapshot {
            requests,
            api_peak_concurrent: self.api_peak.load(Ordering::Relaxed),
            s3_peak_streams: self.s3_peak.load(Ordering::Relaxed),
            s3_peak_streams_one_object: one_object,
            bytes_served: self.bytes_served.load(Ordering::Relaxed),
            s3_requests_with_tdp_headers: self.s3_with_tdp_headers.load(Ordering::Relaxed),
        }
    }
}
