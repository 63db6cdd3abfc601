//! Storage's (S3's) answers to a pre-signed GET, as the engine acts on them.

use crate::error::{job_wide, ErrorKind, Retry, Scope};
use crate::net::blocked::{Blocked, HttpError, Service};
use crate::net::http_error::describe;
use std::sync::Arc;
use std::time::Duration;

/// Storage's (S3's) answers to a pre-signed GET, as the engine acts on them.
#[derive(Debug, Clone, thiserror::Error)]
pub enum S3Error {
    #[error("the download link expired ({0})")]
    Expired(String),
    #[error("storage refused the download link (signature does not match)")]
    SignatureMismatch,
    #[error("storage denied access ({0})")]
    AccessDenied(String),
    #[error("the file's object is missing from storage")]
    NoSuchKey,
    #[error("the file changed in storage while it was being downloaded")]
    ObjectChanged,
    #[error("the object is empty")]
    Empty,
    #[error("storage is throttling requests ({0})")]
    Throttled(String, Option<Duration>),
    #[error("storage error {0} ({1})")]
    Server(u16, String, Option<Duration>),
    /// A request that failed in transport; never carries the URL (it holds a signature).
    #[error("{}", describe(.0))]
    Network(#[source] HttpError),
    #[error(transparent)]
    Blocked(Blocked),
    /// The body ended before its length.
    #[error("the connection closed after {got} of {total} bytes")]
    Truncated { got: u64, total: u64 },
    #[error("unexpected answer from storage: {0}")]
    Protocol(String),
    /// One part of a composite-checksum object did not match the checksum S3 sent for it.
    #[error("part {part} of {parts} did not match S3's {algorithm} checksum of it")]
    PartMismatch {
        part: u64,
        parts: u64,
        algorithm: &'static str,
    },
}

impl S3Error {
    /// A transport error, with the pre-signed URL taken out.
    pub fn network(e: reqwest::Error) -> Self {
        let host = e
            .url()
            .and_then(|u| u.host_str())
            .unwrap_or("storage")
            .to_string();
        match Blocked::from_transport(&e, Service::Storage, &host) {
            Some(b) => S3Error::Blocked(b),
            None => S3Error::Network(Arc::new(e.without_url())),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            S3Error::Expired(_) | S3Error::SignatureMismatch | S3Error::AccessDenied(_) => {
                ErrorKind::Forbidden
            }
            S3Error::NoSuchKey => ErrorKind::NotFound,
            S3Error::ObjectChanged | S3Error::Empty => ErrorKind::Integrity,
            S3Error::Throttled(..) => ErrorKind::Throttled,
            S3Error::Server(..) => ErrorKind::Server,
            S3Error::Network(_) => ErrorKind::Network,
            S3Error::Blocked(b) => b.kind(),
            S3Error::Truncated { .. } => ErrorKind::Network,
            S3Error::Protocol(_) => ErrorKind::Protocol,
            S3Error::PartMismatch { .. } => ErrorKind::Integrity,
        }
    }

    /// Whether every file would get the same answer, so that the job stops with it.
    pub fn scope(&self) -> Scope {
        job_wide(self.kind())
    }

    pub fn retry(&self) -> Retry {
        match self {
            // A link that stopped working is replaced; credentials behind it may expire
            // before the URL says, so a plain 403 is treated the same.
            S3Error::Expired(_) | S3Error::SignatureMismatch | S3Error::AccessDenied(_) => {
                Retry::FreshUrl
            }
            S3Error::NoSuchKey | S3Error::Blocked(_) => Retry::No,
            S3Error::ObjectChanged | S3Error::Empty => Retry::StartOver,
            S3Error::Throttled(..)
            | S3Error::Server(..)
            | S3Error::Network(_)
            | S3Error::Truncated { .. }
            | S3Error::Protocol(_)
            // Damage in transit: that part alone is fetched again.
            | S3Error::PartMismatch { .. } => Retry::Later,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            S3Error::Throttled(_, ra) | S3Error::Server(_, _, ra) => *ra,
            _ => None,
        }
    }
}
