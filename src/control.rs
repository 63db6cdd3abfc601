//! What the caller can do to a running job: pause it, resume it, cancel it, give it a new
//! token.

use crate::rate::RateLimit;
use crate::secret::Token;
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A handle on a job, cheap to clone. Pausing stops every transfer at once, keeping every
/// byte that arrived; nothing is charged to any file, and resuming goes on from there.
#[derive(Clone)]
pub struct JobControl {
    cancel: CancellationToken,
    paused: Arc<watch::Sender<bool>>,
    tokens: Arc<watch::Sender<Offer>>,
    rate: Arc<RateLimit>,
    sleep_allowed: Arc<watch::Sender<bool>>,
}

/// The latest token given to the job while it runs, numbered from 1.
#[derive(Clone, Default)]
pub(crate) struct Offer {
    pub version: u64,
    pub token: Option<Token>,
}

impl Default for JobControl {
    fn default() -> Self {
        JobControl::with_cancel(CancellationToken::new())
    }
}

impl JobControl {
    /// Cancelling `cancel` cancels the job.
    pub fn with_cancel(cancel: CancellationToken) -> Self {
        JobControl {
            cancel,
            paused: Arc::new(watch::Sender::new(false)),
            tokens: Arc::new(watch::Sender::new(Offer::default())),
            rate: Arc::new(RateLimit::default()),
            sleep_allowed: Arc::new(watch::Sender::new(false)),
        }
    }

    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    pub fn resume(&self) {
        self.paused.send_replace(false);
    }

    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// A new token for a job that waits for one (`JobConfig::wait_for_new_token`): the job
    /// goes on with it, and with it every later request.
    pub fn renew_token(&self, token: Token) {
        self.tokens.send_modify(|o| {
            o.version += 1;
            o.token = Some(token);
        });
    }

    /// Limits the job's download rate over all its connections, in bytes per second (`None`
    /// lifts it); takes effect at once, also while the job runs.
    pub fn set_rate_limit(&self, bytes_per_second: Option<u64>) {
        self.rate.set(bytes_per_second);
    }

    /// Lets the computer sleep during the job (`true`), or keeps it awake while the job runs
    /// (`false`, the default); takes effect at once. A job started with
    /// `JobConfig::keep_awake` off never holds the computer awake.
    pub fn allow_sleep(&self, allowed: bool) {
        self.sleep_allowed.send_replace(allowed);
    }

    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    pub(crate) fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    pub(crate) fn watch_paused(&self) -> watch::Receiver<bool> {
        self.paused.subscribe()
    }

    pub(crate) fn watch_sleep_allowed(&self) -> watch::Receiver<bool> {
        self.sleep_allowed.subscribe()
    }

    pub(crate) fn rate(&self) -> Arc<RateLimit> {
        self.rate.clone()
    }

    pub(crate) fn watch_tokens(&self) -> watch::Receiver<Offer> {
        self.tokens.subscribe()
    }
}
