//! "Waiting for the network" as a state of the job, not a failure of its files.
//!
//! A file whose request failed at the connection level (refused, reset, DNS, timeouts, a
//! stalled body) asks the gate whether the network is there. One probe at a time asks TDP
//! and storage for anything at all; if both answer, the failure was the file's own and it
//! counts against the file as before. If not, the job waits: the gate probes again with a
//! back-off capped at 15 s, no file's budget is charged, durable bytes stay, and every file
//! that failed meanwhile retries for free once the probe succeeds. Past the patience, the job
//! stops (a rerun resumes it).

use crate::job::lifecycle::Lifecycle;
use crate::net::connect::Connector;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use url::Url;

/// What the gate says about a connection-level failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The network answers: the failure was the file's own.
    Online,
    /// The network was gone and is back: retry without charging anything.
    Restored,
    /// The network stayed away longer than the patience: the job stops.
    Lost(Duration),
    Cancelled,
}

struct Probes {
    /// When a probe last found the network there.
    last_ok: Option<Instant>,
    /// When the last outage ended: failures before it were the outage's.
    outage_ended: Option<Instant>,
}

pub(crate) struct NetGate {
    probes: tokio::sync::Mutex<Probes>,
    http: reqwest::Client,
    tdp: Url,
    s3: Mutex<Option<Url>>,
    patience: Duration,
    states: Arc<Lifecycle>,
}

/// How long a successful probe vouches for the network.
const FRESH: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(15);

impl NetGate {
    pub(crate) fn new(
        tdp: Url,
        connector: &Connector,
        patience: Duration,
        probe_timeout: Duration,
        states: Arc<Lifecycle>,
    ) -> Result<Self, reqwest::Error> {
        let http = connector
            .builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(probe_timeout)
            .timeout(probe_timeout)
            .build()?;
        Ok(NetGate {
            probes: tokio::sync::Mutex::new(Probes {
                last_ok: None,
                outage_ended: None,
            }),
            http,
            tdp,
            s3: Mutex::new(None),
            patience,
            states,
        })
    }

    /// Remembers the storage host of a pre-signed URL, to probe it too.
    pub(crate) fn storage_seen(&self, url: &str) {
        let mut s3 = self.s3.lock().unwrap_or_else(|e| e.into_inner());
        if s3.is_none() {
            if let Ok(mut u) = Url::parse(url) {
                // The origin only: never the key or the signature.
                u.set_path("/");
                u.set_query(None);
                *s3 = Some(u);
            }
        }
    }

    /// Called after a connection-level failure that happened at `failed_at`.
    pub(crate) async fn after_failure(
        &self,
        failed_at: Instant,
        cancel: &CancellationToken,
    ) -> Verdict {
        let mut p = tokio::select! {
            p = self.probes.lock() => p,
            _ = cancel.cancelled() => return Verdict::Cancelled,
        };
        if p.outage_ended.is_some_and(|end| end >= failed_at) {
            return Verdict::Restored;
        }
        if p.last_ok
            .is_some_and(|t| t.elapsed() < FRESH && t >= failed_at)
        {
            return Verdict::Online;
        }
        if self.probe().await {
            p.last_ok = Some(Instant::now());
            return Verdict::Online;
        }
        let began = Instant::now();
        tracing::warn!("the network is unreachable: waiting for it");
        self.states.set_waiting(true);
        let mut delay = Duration::from_millis(500);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = cancel.cancelled() => return Verdict::Cancelled,
            }
            if self.probe().await {
                let now = Instant::now();
                p.last_ok = Some(now);
                p.outage_ended = Some(now);
                self.states.set_waiting(false);
                tracing::warn!("the network is back after {:.0?}", began.elapsed());
                return Verdict::Restored;
            }
            if began.elapsed() >= self.patience {
                return Verdict::Lost(began.elapsed());
            }
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }

    /// True when TDP and storage (once known) both answer anything at all, body included.
    async fn probe(&self) -> bool {
        let s3 = self.s3.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let answers = |url: Url| async move {
            match self.http.get(url).send().await {
                Ok(resp) => resp.bytes().await.is_ok(),
                Err(_) => false,
            }
        };
        let mut root = self.tdp.clone();
        root.set_path("/");
        match s3 {
            Some(s3) => {
                let (a, b) = tokio::join!(answers(root), answers(s3));
                a && b
            }
            None => answers(root).await,
        }
    }
}
