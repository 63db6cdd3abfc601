//! Errors as they cross to the window: the engine's kind (the UI matches on its word) and the
//! engine's message for people.

use serde::Serialize;
use tdp_engine::credentials::KeychainError;
use tdp_engine::tdp::client::TdpError;
use tdp_engine::{ErrorKind, JobError};

#[derive(Debug, Clone, Serialize)]
pub struct CmdError {
    pub kind: ErrorKind,
    pub message: String,
}

impl CmdError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        CmdError {
            kind,
            message: message.into(),
        }
    }
}

impl From<KeychainError> for CmdError {
    fn from(e: KeychainError) -> Self {
        let kind = match e {
            KeychainError::Locked => ErrorKind::KeychainLocked,
            _ => ErrorKind::Keychain,
        };
        CmdError::new(kind, e.to_string())
    }
}

impl From<TdpError> for CmdError {
    fn from(e: TdpError) -> Self {
        CmdError::new(e.kind(), e.to_string())
    }
}

impl From<JobError> for CmdError {
    fn from(e: JobError) -> Self {
        CmdError::new(e.kind(), e.to_string())
    }
}
