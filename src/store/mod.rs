pub(crate) mod claims;
#[doc(hidden)]
pub mod durable;
pub(crate) mod finalize;
pub mod folder_format;
pub(crate) mod group_sync;
pub(crate) mod journal;
pub(crate) mod lock;
pub(crate) mod naming;
pub(crate) mod paths;
pub(crate) mod sink;
pub mod state;
#[cfg(windows)]
pub mod windows_fs;
