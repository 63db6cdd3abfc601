//! One vocabulary for what went wrong, shared by the report, the events, the CLI's exit codes
//! and the app: a small [`ErrorKind`], whether an error ends a file or the job, and whether a
//! request is worth another try. Each side's own errors live beside it and speak these words:
//! `net::blocked`, `tdp::error`, `storage::error`, `job::error`; each message people read is
//! written there once.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What kind of thing went wrong, as a stable word (`auth`, `not-found`, `disk-full`, ...)
/// that the report's `kind` column, the events, the exit codes and the window all use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The settings are wrong or missing: base URL, org slug, no token.
    Config,
    /// TDP rejected the auth token.
    Auth,
    /// Access denied: by TDP for the org or a file, or by storage for a link.
    Forbidden,
    /// TDP does not know the file ID, or storage has no object for it.
    NotFound,
    /// TDP or storage kept throttling.
    Throttled,
    /// TDP or storage kept answering with server errors.
    Server,
    /// Connections failed, broke or stalled.
    Network,
    /// A TLS connection could not be set up (e.g. a certificate that is not trusted).
    Tls,
    /// The proxy wants credentials, refused them, or would not connect to a host.
    Proxy,
    /// The bytes did not verify (length, MD5, gzip), or the object kept changing.
    Integrity,
    /// The disk is full.
    DiskFull,
    /// The destination cannot be written.
    Destination,
    /// An answer that TDP or storage should not give.
    Protocol,
    /// An input line that is not a file ID, or an input that cannot be read.
    Input,
    /// The OS keychain is not available.
    Keychain,
    /// The OS keychain is locked.
    KeychainLocked,
    /// Another job is using the destination.
    Busy,
    /// Not finished because the job was cancelled.
    Cancelled,
    /// A bug: something that should not happen did.
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::Auth => "auth",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not-found",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Server => "server",
            ErrorKind::Network => "network",
            ErrorKind::Tls => "tls",
            ErrorKind::Proxy => "proxy",
            ErrorKind::Integrity => "integrity",
            ErrorKind::DiskFull => "disk-full",
            ErrorKind::Destination => "destination",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Input => "input",
            ErrorKind::Keychain => "keychain",
            ErrorKind::KeychainLocked => "keychain-locked",
            ErrorKind::Busy => "busy",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Internal => "internal",
        }
    }

    /// The CLI's exit code for an error of this kind that ended `scope` (README table).
    pub fn exit_code(self, scope: Scope) -> u8 {
        match (scope, self) {
            (Scope::File, _) => 1,
            (Scope::Job, ErrorKind::Cancelled) => 130,
            (Scope::Job, _) => 2,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an error ended: one file (the others go on) or the whole job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    File,
    Job,
}

/// Why one file could not be downloaded: its kind and the words for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: ErrorKind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Whether a failed request is worth another try, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Never: the answer will not change.
    No,
    /// After a back-off (network, server, throttling).
    Later,
    /// At once, with a fresh pre-signed URL.
    FreshUrl,
    /// From the start: the object changed.
    StartOver,
}

/// The kinds that no file can get past: the settings, the token, TLS, the proxy.
pub(crate) fn job_wide(kind: ErrorKind) -> Scope {
    match kind {
        ErrorKind::Config | ErrorKind::Auth | ErrorKind::Tls | ErrorKind::Proxy => Scope::Job,
        _ => Scope::File,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_stable_words() {
        for (k, w) in [
            (ErrorKind::Auth, "auth"),
            (ErrorKind::NotFound, "not-found"),
            (ErrorKind::DiskFull, "disk-full"),
            (ErrorKind::KeychainLocked, "keychain-locked"),
        ] {
            assert_eq!(k.as_str(), w);
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{w}\""));
        }
    }

    #[test]
    fn exit_codes_follow_the_scope() {
        assert_eq!(ErrorKind::NotFound.exit_code(Scope::File), 1);
        assert_eq!(ErrorKind::Auth.exit_code(Scope::Job), 2);
        assert_eq!(ErrorKind::Cancelled.exit_code(Scope::Job), 130);
    }
}
