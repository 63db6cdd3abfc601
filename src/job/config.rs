//! What a job is asked to do, and how: the defaults in one place (the CLI's flags and the
//! app's form show them).

use crate::net::connect::NetworkSettings;
use crate::retry::RetryPolicy;
use crate::store::naming::Layout;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The report's name in the destination, unless the job is given another path.
pub const DEFAULT_REPORT: &str = "tdp-download-report.json";
/// The failed IDs of a job, one per line, where the app's "Export failed IDs" puts them
/// (beside the report); an input the app and the CLI take as it is.
pub const FAILED_LIST: &str = "tdp-download-failed.txt";

#[derive(Debug, Clone)]
pub struct JobConfig {
    pub base_url: String,
    pub org: String,
    pub dest: PathBuf,
    pub layout: Layout,
    /// Simultaneous S3 connections.
    pub concurrency: usize,
    /// Most URL look-ups in flight; the lane adapts below it when TDP throttles.
    pub api_concurrency: usize,
    /// JSON report path (a CSV sits beside it); default `<dest>/tdp-download-report.json`.
    pub report: Option<PathBuf>,
    pub retry: RetryPolicy,
    /// Files at least this large are fetched as parallel ranges.
    pub split_threshold: u64,
    pub part_size: u64,
    /// No bytes for this long mid-body is a stall.
    pub read_timeout: Duration,
    pub connect_timeout: Duration,
    /// A pre-signed URL older than this is fetched again before use.
    pub url_max_age: Duration,
    /// A stream's bytes are made durable and journaled after this many bytes...
    pub checkpoint_bytes: u64,
    /// ...or this much time, whichever comes first: what a crash can lose.
    pub checkpoint_interval: Duration,
    /// How long the job waits for a lost network before it stops (a rerun resumes).
    pub network_patience: Duration,
    /// A gzip object may decode to at most this many times its stored size. Deflate cannot
    /// exceed about 1032:1, so only a crafted stream (a "gzip bomb") meets the bound.
    pub gzip_max_ratio: u64,
    /// Extra CAs and an explicit proxy.
    pub network: NetworkSettings,
    /// Keep the computer from sleeping while the job runs.
    pub keep_awake: bool,
    /// When TDP rejects the token mid-job (it took it before): false stops the job (kind
    /// `auth`; the same job with a fresh token resumes it); true waits, in
    /// [`JobState::WaitingForToken`], for
    /// [`JobControl::renew_token`](crate::JobControl::renew_token) and goes on.
    ///
    /// [`JobState::WaitingForToken`]: crate::job::events::JobState::WaitingForToken
    pub wait_for_new_token: bool,
    /// A bandwidth limit for the whole job, bytes per second (the caller may change it while
    /// the job runs: [`JobControl::set_rate_limit`](crate::JobControl::set_rate_limit)).
    pub limit_rate: Option<u64>,
    /// A search job downloads files TDP marks `outdated` (an older version) too; `deleted`
    /// ones never.
    pub include_outdated: bool,
    /// A search job stops (kind `disk-full`) when the bytes its hits still need exceed the
    /// free space of the destination.
    pub space_check: bool,
    /// This job takes only its share of a search's hits, with its own state folder and report
    /// in the shared destination.
    pub shard: Option<crate::job::shard::Shard>,
    /// A repeated EQL search lists only what was indexed since the last sync, less this
    /// overlap (files indexed late by up to this much are still found).
    pub sync_overlap: Duration,
    /// Every this many syncs the listing is full (and always with `full_listing`).
    pub full_every: u32,
    pub full_listing: bool,
    /// The longest file name to give out, in bytes; None asks the file system. For tests.
    #[doc(hidden)]
    pub name_max: Option<usize>,
    /// Files share syncs of the file system where it can (`group_sync`); false: every file
    /// syncs its own part, the journal and its folder. For tests of both.
    #[doc(hidden)]
    pub group_sync: bool,
}

impl JobConfig {
    /// The defaults, in one place: the CLI's flags and the app's form show these.
    pub const DEFAULT_CONCURRENCY: usize = 32;
    pub const MAX_CONCURRENCY: usize = 256;
    pub const DEFAULT_API_CONCURRENCY: usize = 128;
    pub const DEFAULT_READ_TIMEOUT_SECS: u64 = 30;
    pub const DEFAULT_RETRIES: u32 = RetryPolicy::DEFAULT_BUDGET;
    pub const DEFAULT_NETWORK_PATIENCE_SECS: u64 = 15 * 60;
    pub const DEFAULT_SYNC_OVERLAP_SECS: u64 = 6 * 3600;
    pub const DEFAULT_FULL_EVERY: u32 = 10;

    pub fn new(base_url: &str, org: &str, dest: &Path) -> Self {
        JobConfig {
            base_url: base_url.to_string(),
            org: org.to_string(),
            dest: dest.to_path_buf(),
            layout: Layout::Flat,
            concurrency: Self::DEFAULT_CONCURRENCY,
            api_concurrency: Self::DEFAULT_API_CONCURRENCY,
            report: None,
            retry: RetryPolicy::default(),
            split_threshold: 16 << 20,
            part_size: 8 << 20,
            read_timeout: Duration::from_secs(Self::DEFAULT_READ_TIMEOUT_SECS),
            connect_timeout: Duration::from_secs(10),
            url_max_age: Duration::from_secs(240),
            checkpoint_bytes: 8 << 20,
            checkpoint_interval: Duration::from_millis(500),
            gzip_max_ratio: 1100,
            network_patience: Duration::from_secs(Self::DEFAULT_NETWORK_PATIENCE_SECS),
            network: NetworkSettings::default(),
            keep_awake: true,
            wait_for_new_token: false,
            limit_rate: None,
            include_outdated: false,
            space_check: true,
            shard: None,
            sync_overlap: Duration::from_secs(Self::DEFAULT_SYNC_OVERLAP_SECS),
            full_every: Self::DEFAULT_FULL_EVERY,
            full_listing: false,
            name_max: None,
            group_sync: true,
        }
    }

    pub fn report_path(&self) -> PathBuf {
        self.report.clone().unwrap_or_else(|| match self.shard {
            Some(s) => self
                .dest
                .join(format!("tdp-download-report.{}.json", s.name())),
            None => self.dest.join(DEFAULT_REPORT),
        })
    }

    /// The job's state folder: `<dest>/.tdp-download`, or a shard's folder inside it.
    pub fn state_dir(&self) -> PathBuf {
        crate::job::shard::state_dir(&self.dest, self.shard)
    }
}
