//! A token TDP rejects mid-job, and the new one the user gives: the job waits for it instead
//! of stopping (when `JobConfig::wait_for_new_token` is set), then every request carries it.
//!
//! Tokens are numbered: 0 is the one the job started with, then each given one. A rejection
//! counts against the version the request carried, so a request that was in flight with the
//! old token while the new one arrived does not ask the user again.

use crate::control::Offer;
use crate::job::lifecycle::Lifecycle;
use crate::tdp::client::TdpClient;
use std::sync::Mutex;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub(crate) struct Renewal {
    offers: watch::Receiver<Offer>,
    /// The version TDP rejected, while no newer one is in place.
    rejected: Mutex<Option<u64>>,
}

impl Renewal {
    pub(crate) fn new(offers: watch::Receiver<Offer>) -> Self {
        Renewal {
            offers,
            rejected: Mutex::new(None),
        }
    }

    fn rejected(&self) -> std::sync::MutexGuard<'_, Option<u64>> {
        self.rejected.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// TDP answered 401 to a request that carried token `used`.
    pub(crate) fn rejected_token(&self, used: u64, tdp: &TdpClient, states: &Lifecycle) {
        if tdp.token_version() != used {
            return;
        }
        *self.rejected() = Some(used);
        states.set_token_wanted(true);
    }

    /// Returns at once while the token in place has not been rejected; else when a newer one
    /// is given (and installed). False: cancelled.
    pub(crate) async fn usable(&self, tdp: &TdpClient, cancel: &CancellationToken) -> bool {
        let current = tdp.token_version();
        if *self.rejected() != Some(current) {
            return true;
        }
        let mut offers = self.offers.clone();
        let offer = tokio::select! {
            r = offers.wait_for(|o| o.version > current) => match r {
                Ok(o) => o.clone(),
                // The caller's control is gone: nobody can give a token any more.
                Err(_) => return false,
            },
            _ = cancel.cancelled() => return false,
        };
        if let Some(token) = offer.token {
            tdp.install_token(offer.version, token);
        }
        let mut rejected = self.rejected();
        if *rejected == Some(current) {
            *rejected = None;
        }
        true
    }

    /// TDP took a request that carried token `used`: the job runs again once the token
    /// given is proven, not merely given.
    pub(crate) fn accepted(&self, used: u64, tdp: &TdpClient, states: &Lifecycle) {
        if used > 0 && self.rejected().is_none() && tdp.token_version() == used {
            states.set_token_wanted(false);
        }
    }
}
