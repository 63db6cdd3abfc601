//! What the app keeps while it runs: jobs that can be cancelled, the demo simulator, and
//! tokens typed for this session only (never written anywhere).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tdp_engine::net::connect::NetworkSettings;
use tdp_engine::{JobControl, Token};

/// A job while it runs: its handle, and where it connects (a new token is checked there).
#[derive(Clone)]
pub struct RunningJob {
    pub control: JobControl,
    pub base_url: String,
    pub org: String,
    pub network: NetworkSettings,
}

pub struct AppState {
    pub demo_requested: bool,
    jobs: Mutex<HashMap<u64, RunningJob>>,
    next_job: AtomicU64,
    pub demo: tokio::sync::Mutex<Option<crate::demo::Demo>>,
    session_tokens: Mutex<HashMap<String, Token>>,
}

impl AppState {
    pub fn new(demo_requested: bool) -> Self {
        AppState {
            demo_requested,
            jobs: Mutex::new(HashMap::new()),
            next_job: AtomicU64::new(1),
            demo: tokio::sync::Mutex::new(None),
            session_tokens: Mutex::new(HashMap::new()),
        }
    }

    pub fn add_job(&self, job: RunningJob) -> u64 {
        let id = self.next_job.fetch_add(1, Ordering::Relaxed);
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, job);
        id
    }

    /// A running job, if it still runs.
    pub fn job(&self, id: u64) -> Option<RunningJob> {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    pub fn end_job(&self, id: u64) {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    pub fn cancel_job(&self, id: u64) -> bool {
        self.job(id).map(|j| j.control.cancel()).is_some()
    }

    pub fn any_job_running(&self) -> bool {
        !self
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    pub fn remember_for_session(&self, account: &str, token: Token) {
        self.session_tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(account.to_string(), token);
    }

    pub fn session_token(&self, account: &str) -> Option<Token> {
        self.session_tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(account)
            .cloned()
    }

    pub fn forget_session_token(&self, account: &str) {
        self.session_tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(account);
    }
}
