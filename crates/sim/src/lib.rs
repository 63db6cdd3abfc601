//! A TDP + S3 simulator speaking real HTTP on 127.0.0.1: `datalake/retrieve` with TDP's auth
//! and error behaviour, and S3 objects behind pre-signed URLs (signature, expiry, Range, ETag,
//! KMS-style ETags, gzip objects), with latency and bandwidth shaping, injected faults and
//! counters readable over HTTP. Used by the tests, the benchmark (tdp-bench), `tdp-download sim`
//! and the app's demo mode. It shares no code with the engine: it is the other side of the wire.

pub mod content;
pub mod corporate;
mod counters;
mod files;
mod search;
mod server;
mod shaping;

pub use counters::{Counters, CountersSnapshot};
pub use files::{demo_files, sim_id, FileKind, FileMeta, SimFile, StoredChecksum, EPOCH_2025_MS};
pub use search::{iso as iso_time, parse_time};
pub use server::Simulator;

use std::time::Duration;

/// Latency and bandwidth of the simulated services.
#[derive(Debug, Clone, Default)]
pub struct Shaping {
    /// Delay before `datalake/retrieve` answers.
    pub api_latency: Duration,
    /// Delay before S3 sends response headers.
    pub s3_first_byte: Duration,
    /// Bytes per second for one S3 stream (None: unlimited).
    pub per_connection_bps: Option<u64>,
    /// Bytes per second for all S3 streams together (None: unlimited).
    pub total_bps: Option<u64>,
}

/// Fault probabilities, each drawn per request from (seed, fileId, attempt), so a run repeats
/// whatever the order of requests.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub api_429: f64,
    pub api_502: f64,
    pub api_503: f64,
    /// Above this many concurrent retrieve calls the API answers 429.
    pub api_concurrency_limit: Option<usize>,
    /// Seconds sent in `Retry-After` with a 429.
    pub retry_after_secs: u64,
    pub s3_500: f64,
    pub s3_slowdown: f64,
    /// The connection is cut after part of the body.
    pub s3_reset: f64,
    /// The body ends early (clean close before Content-Length).
    pub s3_truncate: f64,
    /// The body stops and the connection stays open.
    pub s3_stall: f64,
    /// URLs that expire one second after signing.
    pub short_url_ttl: f64,
    /// One byte of the body is flipped (what a faulty proxy or disk would do).
    pub s3_corrupt: f64,
    /// A file's n-th S3 request answers 412 if it carries If-Match, as if the object had
    /// changed between two requests of one download.
    pub s3_changed_at_request: Option<u64>,
    /// A file's first link is signed an hour before it is handed out, as one fetched before
    /// a laptop slept.
    pub stale_first_url: bool,
    /// S3 answers "Request has expired" whatever the link says (a clock far off).
    pub s3_expired: f64,
    /// From a file's n-th S3 request on, S3 answers 500 to requests that do not start at
    /// byte 0: one range of a split file keeps failing while its first range works.
    pub s3_fail_ranges_from_request: Option<u64>,
}

/// A network outage, as laptops and VPNs cause them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// Every request and every body in flight is cut (Wi-Fi roaming, a VPN reconnect).
    Reset,
    /// Connections are accepted and nothing is answered; bodies stall (a dead route).
    Silent,
}

/// Everything a simulator is started with.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub token: String,
    pub org: String,
    pub seed: u64,
    pub files: Vec<SimFile>,
    /// IDs that exist but the caller may not read (403).
    pub forbidden: Vec<String>,
    pub shaping: Shaping,
    pub faults: Faults,
    /// Lifetime of a pre-signed URL.
    pub url_ttl: Duration,
    /// Bind to this port (0: ephemeral). The S3 side uses its own ephemeral port.
    pub port: u16,
    /// The simulated servers' clock minus this computer's, in seconds: their `Date` headers,
    /// the `X-Amz-Date` they sign and the expiry S3 enforces all follow it.
    pub clock_offset_secs: i64,
    /// The most hits a search pages to (`from + size`), as Elasticsearch's
    /// `index.max_result_window` (10,000 by default).
    pub result_window: usize,
    /// The presigner signs `x-amz-checksum-mode` (`X-Amz-SignedHeaders=host;x-amz-checksum-mode`),
    /// as newer AWS SDK presigners may: a GET without `x-amz-checksum-mode: ENABLED` is then
    /// refused (403 SignatureDoesNotMatch), as S3 refuses a signed header that is missing.
    pub sign_checksum_mode: bool,
}

impl SimConfig {
    pub fn new(files: Vec<SimFile>) -> Self {
        SimConfig {
            token: "sim-token-0123456789".into(),
            org: "demo-org".into(),
            seed: 7,
            files,
            forbidden: Vec::new(),
            shaping: Shaping::default(),
            faults: Faults::default(),
            url_ttl: Duration::from_secs(300),
            port: 0,
            clock_offset_secs: 0,
            result_window: 10_000,
            sign_checksum_mode: false,
        }
    }
}
