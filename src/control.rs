//! What the caller can do to a running job: pause it, resume it, cancel it.

use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A handle on a job, cheap to clone. Pausing stops every transfer at once, keeping every
/// byte that arrived; nothing is charged to any file, and resuming goes on from there.
#[derive(Clone)]
pub struct JobControl {
    cancel: CancellationToken,
    paused: Arc<watch::Sender<bool>>,
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

    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    pub(crate) fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    pub(crate) fn watch_paused(&self) -> watch::Receiver<bool> {
        self.paused.subscribe()
    }
}
