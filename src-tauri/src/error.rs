//! Errors as they cross to the window: a kind the UI can match on and a message for people.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct CmdError {
    /// auth, forbidden, network, not-found, keychain, keychain-locked, disk-full,
    /// destination, input, config, busy, internal.
    pub kind: &'static str,
    pub message: String,
}

impl CmdError {
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        CmdError {
            kind,
            message: message.into(),
        }
    }
}

impl From<tdp_engine::credentials::KeychainError> for CmdError {
    fn from(e: tdp_engine::credentials::KeychainError) -> Self {
        use tdp_engine::credentials::KeychainError as K;
        let kind = match e {
            K::Locked => "keychain-locked",
            _ => "keychain",
        };
        CmdError::new(kind, e.to_string())
    }
}

impl From<tdp_engine::tdp::TdpError> for CmdError {
    fn from(e: tdp_engine::tdp::TdpError) -> Self {
        use tdp_engine::tdp::TdpError as T;
        let kind = match &e {
            T::InvalidBaseUrl(_) | T::InsecureBaseUrl(_) | T::MissingOrg => "config",
            T::Unauthorized(_) => "auth",
            T::Forbidden(_) => "forbidden",
            T::NotFound(_) => "not-found",
            T::Network(_) => "network",
            _ => "internal",
        };
        CmdError::new(kind, e.to_string())
    }
}

impl From<tdp_engine::JobError> for CmdError {
    fn from(e: tdp_engine::JobError) -> Self {
        CmdError::new(e.kind(), e.to_string())
    }
}
