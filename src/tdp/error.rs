//! The TDP API's answers and a search's errors, as the engine acts on them.

use crate::error::{job_wide, ErrorKind, Retry, Scope};
use crate::net::blocked::{Blocked, HttpError, Service};
use crate::net::http_error::describe;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum TdpError {
    #[error("{0:?} is not a valid TDP base URL (expected e.g. https://api.tetrascience.com)")]
    InvalidBaseUrl(String),
    #[error("refusing to send the auth token over plain http to {0}: use https (plain http is allowed only for 127.0.0.1 or localhost)")]
    InsecureBaseUrl(String),
    #[error("the org slug is empty")]
    MissingOrg,
    #[error("no auth token was given")]
    MissingToken,
    #[error("the auth token contains a line break or other characters a token cannot have: copy it again and paste it on one line")]
    InvalidToken,
    #[error(
        "TDP rejected the auth token ({0}). Check the token (it may have expired): with a fresh one, the same job resumes where it stopped, and files already downloaded are not fetched again"
    )]
    Unauthorized(String),
    #[error("access denied in TDP ({0})")]
    Forbidden(String),
    #[error("not found in TDP ({0})")]
    NotFound(String),
    #[error("TDP refused the request ({0})")]
    BadRequest(String),
    #[error("TDP is throttling requests (429)")]
    Throttled { retry_after: Option<Duration> },
    #[error("TDP server error {status} ({message})")]
    Server {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("could not reach TDP: {}", describe(.0))]
    Network(#[source] HttpError),
    #[error(transparent)]
    Blocked(Blocked),
    #[error("unexpected answer from TDP: {0}")]
    Protocol(String),
    #[error("could not set up the HTTP client: {}", describe(.0))]
    Client(#[source] HttpError),
}

impl TdpError {
    /// A request that failed in transport, classified.
    pub fn transport(e: reqwest::Error, host: &str) -> Self {
        match Blocked::from_transport(&e, Service::Tdp, host) {
            Some(b) => TdpError::Blocked(b),
            None => TdpError::Network(Arc::new(e)),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            TdpError::InvalidBaseUrl(_)
            | TdpError::InsecureBaseUrl(_)
            | TdpError::MissingOrg
            | TdpError::MissingToken
            | TdpError::InvalidToken => ErrorKind::Config,
            TdpError::Unauthorized(_) => ErrorKind::Auth,
            TdpError::Forbidden(_) => ErrorKind::Forbidden,
            TdpError::NotFound(_) => ErrorKind::NotFound,
            TdpError::Throttled { .. } => ErrorKind::Throttled,
            TdpError::Server { .. } => ErrorKind::Server,
            TdpError::Network(_) => ErrorKind::Network,
            TdpError::Blocked(b) => b.kind(),
            TdpError::BadRequest(_) | TdpError::Protocol(_) => ErrorKind::Protocol,
            TdpError::Client(_) => ErrorKind::Internal,
        }
    }

    /// Whether every file would get the same answer, so that the job stops with it.
    pub fn scope(&self) -> Scope {
        job_wide(self.kind())
    }

    pub fn retry(&self) -> Retry {
        match self {
            TdpError::Throttled { .. } | TdpError::Server { .. } => Retry::Later,
            TdpError::Network(_) => Retry::Later,
            _ => Retry::No,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            TdpError::Throttled { retry_after } | TdpError::Server { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }
}

/// A search that cannot be run as given, or that failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SearchError {
    #[error("{name:?} is not a fileinfo search parameter{hint}. Known: {known}, metadata.<key>")]
    UnknownParameter {
        name: String,
        hint: String,
        known: String,
    },
    #[error("{0:?} is set by the tool itself while paging: leave it out of the search")]
    PagingParameter(String),
    #[error("the search parameter {0:?} has no value")]
    EmptyValue(String),
    #[error("the EQL search is not usable: {0}")]
    Eql(String),
    #[error("more than {window} files were created at {at}: the fileinfo search cannot page past them (its result window). Narrow the search, or give it as an EQL search (--eql), which pages by file ID")]
    TooManyAtOnce { at: String, window: usize },
    #[error("the search failed: {0}")]
    Tdp(#[from] TdpError),
}

impl SearchError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SearchError::Tdp(e) => e.kind(),
            SearchError::TooManyAtOnce { .. } => ErrorKind::Protocol,
            _ => ErrorKind::Input,
        }
    }
}
