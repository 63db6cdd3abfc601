pub mod doctor;
pub mod expiry;
pub mod folder_status;
pub mod keys;
pub mod preview;
pub mod probe;
