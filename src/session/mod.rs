//! What the CLI and the app both do around a job: keychain lookups, the token probe, the
//! connection doctor, a search's preview, a token's expiry warning, a folder's status. The
//! top layer.

pub mod doctor;
pub mod expiry;
pub mod folder_status;
pub mod keys;
pub mod preview;
pub mod probe;
